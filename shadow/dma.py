"""A DMA engine: a device a backend kernel drives through one mmio page of registers,
every access it makes going through its owner's IOMMU table (shadow.iommu).

The register page is a machine frame past the end of RAM; its owner is given I/O-memory
permission over it (Xen's iomem_permission), maps it with an ordinary L1 entry, and its
loads and stores reach the device model synchronously (Unicorn's mmio_map), inside the
instruction. Registers, 64 bits each, at these offsets:

  0x00 SRC    bus address to read from        0x18 CTRL   write GO (1) or GO_PHYS (2)
  0x08 DST    bus address to write to         0x20 STATUS IDLE 0, DONE 1, FAULT 2
  0x10 LEN    bytes (at most 64 KiB)          0x28 FAULT  the bus address that faulted
  0x30 ID     reads "PVSHDMA1"

GO copies through the IOMMU: every page of the source must be readable and every page of
the destination writable in the owner's table, or nothing is written, the fault is
recorded (in the IOMMU's fault list and here) and STATUS says FAULT. GO_PHYS is the
unsafe design the map-not-lookup thread argues against: the addresses are machine
addresses, trusted as given (only kept inside machine memory, so the model itself cannot
fail); a backend that looked a frame up without a reference DMAs wherever it was told.
"""
import struct
from typing import List, Optional

SRC, DST, LEN, CTRL, STATUS, FAULT, ID = 0x00, 0x08, 0x10, 0x18, 0x20, 0x28, 0x30
GO, GO_PHYS = 1, 2
IDLE, DONE, FAULTED = 0, 1, 2
MAX_LEN = 64 << 10
MAGIC = int.from_bytes(b'PVSHDMA1', 'little')


class DmaEngine:
    def __init__(self, host, owner, mfn: int):
        self.host = host
        self.owner = owner
        self.mfn = mfn                       # the register page's machine frame
        self.regs = bytearray(4096)
        struct.pack_into('<Q', self.regs, ID, MAGIC)
        self.log: List[dict] = []            # every transfer and its outcome
        host.cpu.map_mmio(mfn << 12, 4096, self._read, self._write)

    # --- the mmio page ----------------------------------------------------------------------------
    def _read(self, offset: int, size: int) -> int:
        if offset + size > 4096:
            return 0
        return int.from_bytes(self.regs[offset:offset + size], 'little')

    def _write(self, offset: int, size: int, value: int) -> None:
        if offset + size > 4096 or offset in (STATUS, FAULT, ID):
            return                           # read-only registers ignore stores
        self.regs[offset:offset + size] = (value & ((1 << 8 * size) - 1)).to_bytes(size, 'little')
        if offset == CTRL and value in (GO, GO_PHYS):
            self.start(self.reg(SRC), self.reg(DST), self.reg(LEN), physical=value == GO_PHYS)

    def reg(self, offset: int) -> int:
        return struct.unpack_from('<Q', self.regs, offset)[0]

    # --- a transfer ---------------------------------------------------------------------------------
    def start(self, src: int, dst: int, length: int, physical: bool = False) -> int:
        """One transfer; returns the STATUS it leaves."""
        status, fault = self._transfer(src, dst, length, physical)
        struct.pack_into('<QQ', self.regs, STATUS, status, fault or 0)
        self.log.append({'src': src, 'dst': dst, 'len': length, 'physical': physical,
                         'status': ('done', 'done', 'fault')[status], 'fault': fault})
        return status

    def _transfer(self, src: int, dst: int, length: int, physical: bool):
        if length > MAX_LEN or not length:
            return FAULTED, src
        mem = self.host.mem
        reads = self._pages(src, length, False, physical)
        if isinstance(reads, int):
            return FAULTED, reads
        writes = self._pages(dst, length, True, physical)
        if isinstance(writes, int):
            return FAULTED, writes
        data = b''.join(mem.read(maddr, n) for maddr, n in reads)
        pos = 0
        for maddr, n in writes:
            mem.write(maddr, data[pos:pos + n])
            pos += n
        self.host.cpu.flush_code_cache()
        return DONE, None

    def _pages(self, bus: int, length: int, write: bool, physical: bool):
        """[(maddr, bytes)] covering [bus, bus + length), or the bus address that faults."""
        out = []
        end = bus + length
        while bus < end:
            n = min(end - bus, 4096 - (bus & 0xFFF))
            if physical:
                mfn: Optional[int] = bus >> 12 if bus + n <= self.host.mem.size else None
            else:
                mfn = self.owner.iommu.translate(bus >> 12, write)
            if mfn is None:
                return bus
            out.append(((mfn << 12) | (bus & 0xFFF), n))
            bus += n
        return out
