"""The hypervisor's own virtual area, present in every PV address space (L4 slots 256-271).

- slot 256, RO_MPT_VIRT_START: the machine-to-phys table, read-only and user-accessible,
  as Xen maps it into every 64-bit PV guest;
- slot 260, the per-domain area: one GDT area per vCPU id (16 pages, at 32-page strides
  as Xen's GDT_LDT_VCPU_VA_SHIFT; page 14 holds Xen's reserved flat descriptors,
  FLAT_RING3_CS64 and friends), mapping the guest frames of the vCPU loaded last;
- slot 261, hypervisor text: the supervisor-only trampoline that enters the guest at CPL3
  with an iretq, and its stack.

Every frame here is owned by DOMID_XEN and none is user-accessible except the M2P.
"""
import struct
from typing import Optional

from pvshadow.shadow.abi.xen import (DOMID_XEN, FIRST_RESERVED_GDT_PAGE, FLAT_RING3_CS32, FLAT_RING3_CS64,
                            FLAT_RING3_SS64, INVALID_M2P_ENTRY, MACH2PHYS_VIRT_START)
from pvshadow.shadow.machine import FrameTable, MachineMemory, PAGE_SIZE
from pvshadow.shadow.paging.x86 import (_PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_NX, _PAGE_PRESENT, _PAGE_RW,
                               _PAGE_USER, make_pte, table_index)

GDT_VIRT_START = 0xFFFF820000000000       # PERDOMAIN_VIRT_START: GDT/LDT area
GDT_PAGES = 16
GDT_LIMIT = GDT_PAGES * PAGE_SIZE - 1
GDT_VCPU_PAGES = 32                       # a vCPU's GDT and LDT pages


LDT_PAGES = 16                            # 8192 descriptors
# an LDT page: writable, supervisor-only (the CPU sets descriptors' accessed bits)
_LDT_PAGE_FLAGS = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_NX
_GDT_RUN = struct.Struct(f'<{GDT_PAGES}Q')
_LDT_RUN = struct.Struct(f'<{LDT_PAGES}Q')
_NO_LDT = bytes(_LDT_RUN.size)
LDT_SELECTOR = (7168 + 10) << 3           # Xen's LDT_ENTRY, in its reserved GDT page


def gdt_va(vcpu_id: int) -> int:
    return GDT_VIRT_START + vcpu_id * GDT_VCPU_PAGES * PAGE_SIZE


def ldt_va(vcpu_id: int) -> int:
    """Where the CPU reads a vCPU's LDT: the 16 pages after its GDT (Xen's LDT_VIRT_START)."""
    return gdt_va(vcpu_id) + GDT_PAGES * PAGE_SIZE
XEN_TEXT_START = 0xFFFF82D080000000
TRAMPOLINE_VA = XEN_TEXT_START
XEN_STACK_VA = XEN_TEXT_START + 0x1000
HYPERVISOR_CS64 = 0xE008

_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY


def _descriptor(access: int, flags: int) -> int:
    """A flat segment descriptor; the accessed bit is preset so the CPU never has to
    write the (read-only) GDT when it loads a selector."""
    return 0xFFFF | (access << 40) | (0xF << 48) | (flags << 52)


class XenSpace:
    def __init__(self, mem: MachineMemory, frames: FrameTable):
        self.mem = mem
        self.frames = frames
        self.l4_slots = {}
        self._l3 = {}
        self._alloc_m2p()
        self.zero_frame = self._xen_frame()
        self.gdt_frame = self._xen_frame()
        self.trampoline_frame = self._xen_frame()
        self.stack_frame = self._xen_frame()
        self._fill_gdt()
        self.mem.write(self.trampoline_frame << 12, b'\x48\xcf')      # iretq
        self._gdt_mapped = {}            # vCPU id -> (vCPU, its frames) in that area
        self._gdt_packed = {}            # vCPU -> (its GDT frames, their area entries)
        self._area_l1es = {}             # vCPU id -> maddr of its area's first L1 entry
        self.map_gdt(0, [])
        self.map(TRAMPOLINE_VA, self.trampoline_frame, _PAGE_PRESENT | _PAGE_ACCESSED)
        self.map(XEN_STACK_VA, self.stack_frame, _TABLE | _PAGE_NX)

    def _xen_frame(self) -> int:
        mfn = self.frames.alloc(DOMID_XEN)
        self.mem.clear_frame(mfn)
        return mfn

    def _alloc_m2p(self):
        nr = (self.frames.nr_frames * 8 + PAGE_SIZE - 1) // PAGE_SIZE
        self.m2p_frames = [self._xen_frame() for _ in range(nr)]
        assert self.m2p_frames == list(range(self.m2p_frames[0], self.m2p_frames[0] + nr))
        self.m2p_maddr = self.m2p_frames[0] << 12
        self.mem.write(self.m2p_maddr, b'\xff' * (nr * PAGE_SIZE))
        self.map_run(MACH2PHYS_VIRT_START, self.m2p_frames[0], nr,
                     _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX)

    def _fill_gdt(self):
        base = self.gdt_frame << 12
        for selector, desc in ((HYPERVISOR_CS64, _descriptor(0x9B, 0xA)),
                               (FLAT_RING3_CS32, _descriptor(0xFB, 0xC)),
                               (FLAT_RING3_SS64, _descriptor(0xF3, 0xC)),
                               (FLAT_RING3_CS64, _descriptor(0xFB, 0xA))):
            index = (selector >> 3) - FIRST_RESERVED_GDT_PAGE * 512
            self.mem.write_u64(base + index * 8, desc)

    # --- GDT areas --------------------------------------------------------------------------
    def map_gdt(self, vcpu_id: int, frames) -> None:
        """A vCPU's GDT area: its frames first, writable but supervisor-only as Xen maps
        them (the CPU sets descriptors' accessed bits; the guest at CPL3 cannot reach
        them), then empty pages, and Xen's reserved page."""
        self.mem.write(self._area_l1e(vcpu_id), self._gdt_run(frames))
        self._gdt_mapped[vcpu_id] = None

    def _gdt_run(self, frames) -> bytes:
        entries = []
        for page in range(GDT_PAGES):
            flags = _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_NX
            if page < len(frames):
                frame = frames[page]
                flags |= _PAGE_RW | _PAGE_DIRTY
            else:
                frame = self.gdt_frame if page == FIRST_RESERVED_GDT_PAGE else self.zero_frame
            entries.append(make_pte(frame, flags))
        return _GDT_RUN.pack(*entries)

    def _area_l1e(self, vcpu_id: int) -> int:
        """The L1 entry of a vCPU's first GDT page: its GDT and LDT pages follow it in the
        same table (the areas are 32 pages each from a 2 MiB boundary, 16 to a table).
        The hypervisor's tables are never freed, so each area's is found once."""
        maddr = self._area_l1es.get(vcpu_id)
        if maddr is None:
            maddr = self._area_l1es[vcpu_id] = self._l1e_maddr(gdt_va(vcpu_id), create=_TABLE)
        return maddr

    def install_gdt(self, v) -> bool:
        """Make v's area map v's GDT frames and the LDT pages it has mapped so far
        (another domain's vCPU with the same id may have used it); True if the mappings
        changed (the caller flushes the TLB). Each vCPU's GDT entries are packed once
        for each set of frames it loads (a switch between domains rewrites the area)."""
        frames = tuple(v.gdt_frames)
        key = (v, frames)
        previous = self._gdt_mapped.get(v.vcpu_id)
        if previous == key:
            return False
        packed = self._gdt_packed.get(v)
        if packed is None or packed[0] != frames:
            packed = self._gdt_packed[v] = (frames, self._gdt_run(frames))
        area = self._area_l1e(v.vcpu_id)
        if previous is not None and previous[0] is not v:
            # another vCPU's area before: this one's LDT pages too, GDT and LDT one store
            ldt = v.ldt_frames
            self.mem.write(area, packed[1] + (_NO_LDT if not ldt else _LDT_RUN.pack(*(
                0 if ldt.get(page) is None else make_pte(ldt[page], _LDT_PAGE_FLAGS)
                for page in range(LDT_PAGES)))))
        else:
            self.mem.write(area, packed[1])
        self._gdt_mapped[v.vcpu_id] = key
        return True

    def forget_gdt(self, v) -> None:
        """v's domain is going: if v's frames are what its area maps, map nothing there."""
        self._gdt_packed.pop(v, None)
        previous = self._gdt_mapped.get(v.vcpu_id)
        if previous is not None and previous[0] is v:
            self.map_gdt(v.vcpu_id, [])
            for page in range(LDT_PAGES):
                self.unmap(ldt_va(v.vcpu_id) + page * PAGE_SIZE)

    def map_ldt_page(self, vcpu_id: int, page: int, mfn: int) -> None:
        self.map(ldt_va(vcpu_id) + page * PAGE_SIZE, mfn, _LDT_PAGE_FLAGS)

    def unmap(self, va: int) -> None:
        maddr = self._l1e_maddr(va, create=None)
        if maddr is not None:
            self.mem.write_u64(maddr, 0)

    def map_run(self, va: int, mfn: int, count: int, flags: int) -> None:
        """map() for count pages from va onto count frames from mfn: each L1 table's share
        of the run written as one store (the M2P of a 4 GiB machine is 2,048 pages)."""
        while count:
            n = min(count, 512 - table_index(va, 1))
            self.mem.write(self._l1e_maddr(va, create=_TABLE | flags & _PAGE_USER),
                           struct.pack(f'<{n}Q', *(make_pte(mfn + i, flags) for i in range(n))))
            va, mfn, count = va + n * PAGE_SIZE, mfn + n, count - n

    def map(self, va: int, mfn: int, flags: int) -> None:
        """Map one hypervisor page; intermediate tables are hypervisor frames too."""
        self.mem.write_u64(self._l1e_maddr(va, create=_TABLE | flags & _PAGE_USER),
                           make_pte(mfn, flags))

    def _l1e_maddr(self, va: int, create: Optional[int]) -> Optional[int]:
        """The machine address of va's L1 entry in the hypervisor's tables; missing
        tables are made with the flags `create`, or with None there is no entry."""
        slot = table_index(va, 4)
        if slot not in self.l4_slots:
            if create is None:
                return None
            self.l4_slots[slot] = make_pte(self._xen_frame(), create)
        table = self.l4_slots[slot] >> 12 & 0xFFFFFFFFFF
        for level in (3, 2):
            maddr = (table << 12) + table_index(va, level) * 8
            entry = self.mem.read_u64(maddr)
            if not entry & _PAGE_PRESENT:
                if create is None:
                    return None
                entry = make_pte(self._xen_frame(), create)
                self.mem.write_u64(maddr, entry)
            table = entry >> 12 & 0xFFFFFFFFFF
        return (table << 12) + table_index(va, 1) * 8

    # --- M2P ------------------------------------------------------------------------------
    def set_m2p(self, mfn: int, pfn: int) -> None:
        self.mem.write_u64(self.m2p_maddr + mfn * 8, pfn)

    def set_m2p_run(self, first_mfn: int, pfns) -> None:
        """M2P entries for frames first_mfn, first_mfn + 1, ... (an array('Q'))."""
        self.mem.write(self.m2p_maddr + first_mfn * 8, pfns.tobytes())

    def get_m2p(self, mfn: int) -> int:
        return self.mem.read_u64(self.m2p_maddr + mfn * 8)

    def clear_m2p(self, mfn: int) -> None:
        self.set_m2p(mfn, INVALID_M2P_ENTRY)

    # --- entering the guest -----------------------------------------------------------------
    def iret_frame_to(self, rip: int, rsp: int, rflags: int) -> int:
        """Write an iretq frame to CPL3 on the hypervisor stack; returns its virtual address."""
        frame = struct.pack('<5Q', rip, FLAT_RING3_CS64, rflags, rsp, FLAT_RING3_SS64)
        offset = PAGE_SIZE - len(frame)
        self.mem.write((self.stack_frame << 12) + offset, frame)
        return XEN_STACK_VA + offset
