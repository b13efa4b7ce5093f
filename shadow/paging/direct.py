"""Direct paging, the reference mode: the CPU walks the guest's own validated tables.

Guest page-table updates go through mmu_update / update_va_mapping / mmuext_op only, under
Xen's type rules (shadow.paging.types). A refused update returns the Xen errno and
changes nothing.
"""
from shadow.abi.xen import EINVAL
from shadow.machine import PageType
from shadow.paging.types import PageTypes
from shadow.paging.x86 import _PAGE_PRESENT, pte_mfn, table_index

_LEVEL_OF = {PageType.L1: 1, PageType.L2: 2, PageType.L3: 3, PageType.L4: 4}
PIN_TYPES = {0: PageType.L1, 1: PageType.L2, 2: PageType.L3, 3: PageType.L4}


class DirectPaging:
    name = 'direct'

    def __init__(self, domid: int, types: PageTypes, flush_tlb):
        self.domid = domid
        self.types = types
        self.mem = types.mem
        self.frames = types.frames
        self.flush_tlb = flush_tlb

    # --- roots ------------------------------------------------------------------------------
    def cr3_for(self, l4_mfn: int) -> int:
        """What the CPU's CR3 holds for a guest root: the guest's own L4."""
        return l4_mfn << 12

    def get_root(self, mfn: int) -> int:
        """Take the L4 type reference a vCPU's guest_table holds."""
        return self.types.get_page_and_type(mfn, PageType.L4, self.domid)

    def put_root(self, mfn: int) -> None:
        self.types.put_page_and_type(mfn)

    # --- pinning ------------------------------------------------------------------------------
    def pin(self, mfn: int, level: int) -> int:
        frames = self.frames
        if not frames.is_valid(mfn) or frames.owner[mfn] != self.domid:
            return -EINVAL
        if frames.pinned[mfn]:
            return -EINVAL              # "mfn already pinned"
        rc = self.types.get_page_and_type(mfn, PIN_TYPES[level], self.domid)
        if rc == 0:
            frames.pinned[mfn] = 1
        return rc

    def unpin(self, mfn: int) -> int:
        frames = self.frames
        if not frames.is_valid(mfn) or frames.owner[mfn] != self.domid or not frames.pinned[mfn]:
            return -EINVAL              # "mfn not pinned"
        frames.pinned[mfn] = 0
        self.types.put_page_and_type(mfn)
        self.flush_tlb()
        return 0

    # --- entry updates --------------------------------------------------------------------------
    def pt_update(self, ptr: int, val: int, preserve_ad: bool = False) -> int:
        """MMU_NORMAL_PT_UPDATE: ptr is the machine address of the entry to write."""
        mfn = ptr >> 12
        types, frames = self.types, self.frames
        if not types.get_page(mfn, self.domid):
            return -EINVAL
        try:
            if frames.type_count[mfn] and frames.type[mfn] in _LEVEL_OF:
                level = _LEVEL_OF[PageType(frames.type[mfn])]
                old = self.mem.read_u64(ptr)
                rc = types.mod_entry(mfn, (ptr & 0xFFF) >> 3, level, val, self.domid, preserve_ad)
                if rc == 0 and old & _PAGE_PRESENT:
                    self.flush_tlb()
                return rc
            # Not a page table: an ordinary write, if the frame may be writable.
            if types.get_page_type(mfn, PageType.WRITABLE, self.domid):
                return -EINVAL
            self.mem.write_u64(ptr, val)
            types.put_page_type(mfn)
            return 0
        finally:
            types.put_page(mfn)

    def find_l1_entry(self, l4_mfn: int, va: int):
        """guest_map_l1e: the machine address of the L1 entry mapping va, or None."""
        table = l4_mfn
        for level in (4, 3, 2):
            entry = self.mem.read_u64((table << 12) + table_index(va, level) * 8)
            if not entry & _PAGE_PRESENT:
                return None
            table = pte_mfn(entry)
        if self.frames.type[table] != PageType.L1 or not self.frames.type_count[table]:
            return None
        return (table << 12) + table_index(va, 1) * 8

    def update_va_mapping(self, l4_mfn: int, va: int, val: int) -> int:
        maddr = self.find_l1_entry(l4_mfn, va)
        if maddr is None:
            return -EINVAL
        return self.types.mod_entry(maddr >> 12, (maddr & 0xFFF) >> 3, 1, val, self.domid)

    # --- faults and TLB -----------------------------------------------------------------------
    def page_fault(self, vcpu, va: int, error_code: int) -> bool:
        """Direct mode resolves nothing itself: every #PF is the guest's."""
        return False

    def invlpg(self, va: int) -> None:
        # The Python binding has no single-page flush; a full flush is ~2 µs.
        self.flush_tlb()
