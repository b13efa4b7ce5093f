"""What both paging modes share: a PV guest's tables under Xen's type rules.

Pinning, base pointers, mmu_update and update_va_mapping are the same in direct and shadow
mode: they validate against shadow.paging.types and return the same errnos. Every change
to a guest entry goes through write_guest_entry, so a mode can follow it (shadow mode
revalidates its shadows there).
"""
from typing import Optional

from pvshadow.shadow.abi.xen import EINVAL, VMASST_TYPE_writable_pagetables
from pvshadow.shadow.machine import PageType
from pvshadow.shadow.paging.types import PageTypes
from pvshadow.shadow.paging.x86 import (PFEC_INSN, PFEC_USER, _PAGE_PRESENT, GuestWalk, pte_mfn, table_index,
                                        translate, walk)

LEVEL_OF = {PageType.L1: 1, PageType.L2: 2, PageType.L3: 3, PageType.L4: 4}
PIN_TYPES = {0: PageType.L1, 1: PageType.L2, 2: PageType.L3, 3: PageType.L4}


class PvPaging:
    name = 'pv'

    def __init__(self, domid: int, types: PageTypes, flush_tlb):
        self.domid = domid
        self.types = types
        self.mem = types.mem
        self.frames = types.frames
        self.flush_tlb = flush_tlb
        self.mappings_changed = None     # called after a guest entry changes (watchpoints)

    # --- what a mode provides -------------------------------------------------------------
    def cr3_for(self, l4_mfn: int) -> int:
        raise NotImplementedError

    def page_fault(self, vcpu, va: int, error_code: int) -> Optional[int]:
        """Resolve a #PF the hypervisor caused (None), or return the error code the
        guest's own tables give for it."""
        raise NotImplementedError

    def entry_changed(self, table_mfn: int, index: int, level: int, old: int, new: int) -> bool:
        """A guest entry was rewritten (after validation); True when a translation the
        CPU may have cached is gone, so the TLB must be flushed. The CPU walks the guest's
        tables here: any entry that was present may be cached."""
        return bool(old & _PAGE_PRESENT)

    def invlpg(self, va: int) -> None:
        # The Python binding has no single-page flush; a full flush is ~2 µs.
        self.flush_tlb()

    def prefault_code(self, vcpu, rip: int) -> None:
        """Before a single step: nothing to do when the CPU walks the guest's tables."""

    def emulates_writes_to(self, level: int, vm_assist: int) -> bool:
        """Whether a guest-kernel store into a page table of this level, through a
        read-only mapping, is emulated: Xen's writable page tables cover L1 tables only,
        in both modes, so shadow mode never changes what the guest sees."""
        return level == 1 and bool(vm_assist >> VMASST_TYPE_writable_pagetables & 1)

    last_guest_walk = None            # a mode that walked the guest's tables for a fault
    last_fault_leaf = None            # the L1 entry behind the last guest fault, if present
    access = None                     # MemAccess, in shadow mode with PG_mem_access
    last_outcome = 'guest'            # what the last page_fault did (for tracers)
    regions = None                    # read-only regions: shadow paging only

    translated = False                # guest entries name gfns (shadow.paging.translated)

    def detach(self) -> None:
        """The domain leaves this mode."""

    def cr3_for_vcpu(self, v) -> int:
        return self.cr3_for(v.current_table())

    def root_frame(self, frame: int) -> Optional[int]:
        """The machine frame a base-pointer hypercall names (a PV guest names mfns)."""
        return frame

    def translate_va(self, vcpu, va: int, write: bool = False) -> Optional[int]:
        """The machine address behind va in vcpu's current tables, for the hypervisor's
        own reads and writes (no accessed/dirty update), or None."""
        return translate(self.mem.q, vcpu.current_table(), va, write, set_ad=False)

    def debug_walk(self, vcpu, va: int, access: int = 0) -> GuestWalk:
        """A walk of va for front ends and watchpoints (nothing written)."""
        return walk(self.mem.read_u64, vcpu.current_table(), va, access)

    def set_walk_ad(self, vcpu, va: int, access: int) -> None:
        """The accessed/dirty bits a walk of va for this access sets, as the CPU would."""
        walk(self.mem.read_u64, vcpu.current_table(), va, access, write_u64=self.mem.write_u64)

    def frame_of(self, vcpu, frame: int) -> Optional[int]:
        """The machine frame a frame number from the guest's view names (a PV guest
        names mfns)."""
        return frame

    def guest_wrote(self, maddr: int, size: int) -> None:
        """The hypervisor wrote guest memory directly: a mode that shadows tables without
        type rules follows (a PV table is never written this way)."""

    def code_written(self, vcpu, va: int, mfn: int, size: int) -> None:
        """The hypervisor wrote size bytes of frame mfn at va behind the CPU's back (an
        emulated store): drop any translated code the CPU holds of them. Only a frame some
        mapping ever made executable can have any (FrameTable.executable). The CPU finds
        a frame's translations by an address that maps it executable now, and drops every
        alias's with them (they are kept by physical page); with no such mapping of va
        (a write-only watch, say), the whole translation cache goes."""
        if not self.frames.executable[mfn]:
            return
        cpu = vcpu.cpu
        if walk(self.mem.read_u64, self.cr3_for_vcpu(vcpu) >> 12, va,
                PFEC_INSN | PFEC_USER).ok:
            cpu.invalidate_code(va, size)
        else:
            cpu.flush_code_cache()

    def code_page(self, vcpu, rip: int):
        """(frame, ((entry word, entry) at each level)) of the code page at rip, or None:
        the emulator's fetch, re-validated by those entries."""
        gw = walk(self.mem.read_u64, vcpu.current_table(), rip, PFEC_INSN)
        if not gw.ok:
            return None
        return gw.mfn, tuple((lv.entry_maddr >> 3, lv.entry) for lv in gw.levels)

    # --- roots ------------------------------------------------------------------------------
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
    def table_level(self, mfn: int):
        """The level of a validated page table, or None."""
        if mfn < self.frames.nr_frames and self.frames.type_count[mfn]:
            return LEVEL_OF.get(self.frames.type[mfn])
        return None

    def write_guest_entry(self, table_mfn: int, index: int, level: int, new: int,
                          preserve_ad: bool = False, pg_owner: Optional[int] = None) -> int:
        """mod_lNe_entry, then let the mode follow the change. pg_owner: the domain whose
        frame a new L1 entry maps, when a hypercall named a foreign one."""
        q = self.mem.q
        word = (table_mfn << 9) + index
        old = q[word]
        rc = self.types.mod_entry(table_mfn, index, level, new, self.domid, preserve_ad,
                                  pg_owner)
        if rc == 0:
            if self.entry_changed(table_mfn, index, level, old, q[word]):
                self.flush_tlb()
            if self.mappings_changed is not None:
                self.mappings_changed()
        return rc

    def write_guest_entries(self, table_mfn: int, level: int, changes) -> int:
        """Several entries of one table, all or nothing (a single-stepped instruction that
        rewrote more than one): nothing is written unless every new entry validates."""
        if len(changes) == 1:
            (index, new), = changes.items()
            return self.write_guest_entry(table_mfn, index, level, new)
        base = table_mfn << 12
        olds = {i: self.mem.read_u64(base + i * 8) for i in changes}
        rc = self.types.mod_entries(table_mfn, level, changes, self.domid)
        if rc:
            return rc
        for index, old in olds.items():
            self.entry_changed(table_mfn, index, level, old, self.mem.read_u64(base + index * 8))
        self.flush_tlb()
        if self.mappings_changed is not None:
            self.mappings_changed()
        return 0

    def pt_update(self, ptr: int, val: int, preserve_ad: bool = False,
                  pg_owner: Optional[int] = None) -> int:
        """MMU_NORMAL_PT_UPDATE: ptr is the machine address of the entry to write, in one
        of this domain's frames."""
        mfn = ptr >> 12
        types = self.types
        if not types.get_page(mfn, self.domid):
            return -EINVAL
        try:
            level = self.table_level(mfn)
            if level is not None:
                return self.write_guest_entry(mfn, (ptr & 0xFFF) >> 3, level, val, preserve_ad,
                                              pg_owner if level == 1 else None)
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
        if self.table_level(table) != 1:
            return None
        return (table << 12) + table_index(va, 1) * 8

    def update_va_mapping(self, l4_mfn: int, va: int, val: int,
                          pg_owner: Optional[int] = None) -> int:
        maddr = self.find_l1_entry(l4_mfn, va)
        if maddr is None:
            return -EINVAL
        return self.write_guest_entry(maddr >> 12, (maddr & 0xFFF) >> 3, 1, val,
                                      pg_owner=pg_owner)
