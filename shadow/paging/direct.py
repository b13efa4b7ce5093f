"""Direct paging, the reference mode: the CPU walks the guest's own validated tables.

Guest page-table updates go through mmu_update / update_va_mapping / mmuext_op under
Xen's type rules; with VMASST_TYPE_writable_pagetables, a guest store to an L1 table is
trapped and emulated as Xen's ptwr does. A refused update returns the Xen errno and
changes nothing.
"""
from pvshadow.shadow.paging.pv import PvPaging
from pvshadow.shadow.paging.x86 import (_PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_NX, _PAGE_PRESENT, _PAGE_RW,
                                        _PAGE_USER, make_pte, walk)


class DirectPaging(PvPaging):
    name = 'direct'

    def cr3_for(self, l4_mfn: int) -> int:
        """What the CPU's CR3 holds for a guest root: the guest's own L4."""
        return l4_mfn << 12

    def page_fault(self, vcpu, va: int, error_code: int):
        """The CPU walked the guest's own tables: every #PF is the guest's as it stands."""
        return error_code

    def redirect(self, vcpu, va: int, scratch_mfn: int, flags: int = 0):
        """Point the guest's own L1 entry for va at a scratch frame for one single-step;
        returns what puts it back."""
        gw = walk(self.mem.read_u64, vcpu.current_table(), va)
        maddr = gw.levels[-1].entry_maddr
        saved = self.mem.read_u64(maddr)
        if not flags & _PAGE_NX:
            self.frames.executable[scratch_mfn] = 1
        self.mem.write_u64(maddr, make_pte(scratch_mfn, (flags or _PAGE_PRESENT | _PAGE_RW |
                                                         _PAGE_ACCESSED | _PAGE_DIRTY) | _PAGE_USER))
        return lambda: self.mem.write_u64(maddr, saved)
