"""Read-only regions: guest frames a device model backs as ROM or ROMD (the KVM
read-only memslot thread, ../shared/references/readonly-memslots.txt).

Reads run at full speed: the shadows map the frames read-only (an L1 policy). A write
never changes the frame: it faults, the store is decoded (mov of a register or an
immediate, as the page-table-store emulator does), and the run ends with an mmio exit
(guest-physical address, size, data, direction) after the instruction. ROM writes are
then discarded; for ROMD the device model decides, and may change what later reads see
(`Domain.write_physical`). A store that cannot be decoded, or that straddles the end of
the frame, ends the run with an internal_error exit carrying the instruction bytes (or,
with `retry_unemulatable`, leaves the guest retrying it). Regions need shadow paging:
direct paging cannot keep a guest-writable mapping read-only.
"""
from dataclasses import dataclass
from typing import Dict

from pvshadow.shadow.abi.xen import EBUSY, EINVAL, EOPNOTSUPP
from pvshadow.shadow.exits import Exit, ExitReason
from pvshadow.shadow.machine import PageType
from pvshadow.shadow.paging.x86 import _PAGE_DIRTY, _PAGE_RW


@dataclass
class Region:
    name: str
    first_pfn: int
    nr: int
    romd: bool


class Regions:
    def __init__(self, domain):
        self.domain = domain
        self.by_mfn: Dict[int, Region] = {}
        self.retry_unemulatable = False
        self.stats = {'mmio_exits': 0, 'unemulatable': 0}

    def add(self, name: str, first_pfn: int, data: bytes, romd: bool = False) -> int:
        d = self.domain
        if d.paging.name != 'shadow':
            return -EOPNOTSUPP
        nr = max(1, (len(data) + 0xFFF) >> 12)
        if not all(d.pfn_valid(first_pfn + i) for i in range(nr)):
            return -EINVAL
        mfns = [d.p2m[first_pfn + i] for i in range(nr)]
        if any(d.frames.type_count[mfn] and d.frames.type[mfn] != PageType.WRITABLE
               for mfn in mfns):
            return -EBUSY                 # a page table or descriptor page: never written
        region = Region(name, first_pfn, nr, romd)
        for i, mfn in enumerate(mfns):
            chunk = data[i << 12:(i + 1) << 12]
            d.types.write_frame(mfn << 12, chunk.ljust(4096, b'\0'), d.domid)
            self.by_mfn[mfn] = region
            d.paging.sh_remove_all_mappings(mfn)
        if self.shadow_policy not in d.paging.l1_policies:
            d.paging.l1_policies.append(self.shadow_policy)
        d.cpu.flush_code_cache()
        return 0

    def shadow_policy(self, target: int, flags: int) -> int:
        if target in self.by_mfn:
            return flags & ~(_PAGE_RW | _PAGE_DIRTY)
        return flags

    shadow_policy.describe = 'read-only region (ROM/ROMD)'

    def on_write_fault(self, vcpu, mfn: int, va: int) -> None:
        """A guest store into a region frame: an mmio exit, or why it cannot be one."""
        region = self.by_mfn[mfn]
        d = self.domain
        emulator = vcpu.emulator
        rip = vcpu.cpu.rip
        code = emulator.fetch_code(rip)
        store = emulator.decode_store(code, rip) if code else None
        offset = va & 0xFFF
        if store is None or store.mnemonic != 'mov' or offset + store.size > 0x1000:
            self.stats['unemulatable'] += 1
            if self.retry_unemulatable:
                return                    # the guest retries the store, as it asked
            why = ('straddles the end of the region frame' if store is not None and
                   offset + store.size > 0x1000 else 'is not a store the emulator decodes')
            vcpu.request_exit(Exit(ExitReason.INTERNAL_ERROR,
                                   message=f'the write to {region.name} at {va:#x} {why}',
                                   registers=vcpu.cpu.dump(), instruction=code))
            return
        value = vcpu.cpu.reg(store.source_reg) if store.source_reg else store.imm
        pfn = d.pfn_of[mfn]
        mmio = {'address': (pfn << 12) | offset, 'gla': va, 'size': store.size,
                'data': value & ((1 << (8 * store.size)) - 1), 'direction': 'write',
                'region': region.name, 'romd': region.romd, 'rip': rip}
        vcpu.cpu.rip = rip + store.length
        self.stats['mmio_exits'] += 1
        vcpu.request_exit(Exit(ExitReason.MMIO, message=f'{store.size}-byte write to '
                               f'{region.name} at {mmio["address"]:#x}', mmio=mmio))
