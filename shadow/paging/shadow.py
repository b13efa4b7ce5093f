"""Shadow paging for PV guests: the CPU walks tables the hypervisor builds from the guest's.

Names follow Xen's shadow code (xen/arch/x86/mm/shadow/) so the two can be read side by
side: sh_page_fault, _sh_propagate, sh_validate_guest_entry, sh_remove_all_mappings,
sh_remove_write_access, shadow_blow_tables. The guest's tables stay under Xen's PV type
rules (shadow.paging.pv); every change to a guest entry reaches entry_changed, so shadows
never go stale. Shadows are built lazily, one per guest table (shared by every parent that
points at that table), from a bounded pool:

- an upper-level shadow entry is present only once the guest entry has been accessed,
  and points at the shadow of the guest's next table;
- a shadow L1 entry = guest rights ∩ page-type rules (page-table frames never writable,
  frames the domain does not own never mapped) ∩ policies (mem_access, read-only regions),
  and stays read-only until the guest entry is dirty, so the first write reaches
  sh_page_fault and sets D as hardware would.
"""
from collections import Counter
from typing import Callable, Dict, List, Optional, Set, Tuple

from pvshadow.shadow.abi.xen import DOMID_XEN, HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START
from pvshadow.shadow.machine import PageType
from pvshadow.shadow.paging.pv import PvPaging
from pvshadow.shadow.mem_access import access_of_fault
from pvshadow.shadow.paging.types import is_guest_l4_slot
from pvshadow.shadow.paging.x86 import (ADDR_MASK, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_NX, _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW,
                               _PAGE_USER, PFEC_INSN, PFEC_PRESENT, PFEC_USER, PFEC_WRITE,
                               make_pte, pte_mfn, set_accessed_dirty,
                               walk)

SHADOW_TABLE_FLAGS = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY
# The fast fill leaves to the general walk any entry with address bits past 40 (reserved)
# or PSE (a superpage, refused for PV; at L1 it is PAT, which only the control domain
# may set, so it goes the general way too).
_FAST_BAIL_BITS = (ADDR_MASK & ~((1 << 40) - 1)) | _PAGE_PSE
DEFAULT_POOL_PAGES = 1024

# An L1 policy takes (target mfn, shadow flags) and returns the flags with rights removed.
L1Policy = Callable[[int, int], int]


def _walk_access(vcpu, error_code: int) -> int:
    """The access a #PF's walk checks: write and fetch from its error code, user from the
    vCPU's guest mode (the guest kernel runs at CPL3 too)."""
    access = error_code & (PFEC_WRITE | PFEC_INSN)
    return access if vcpu.kernel_mode else access | PFEC_USER


class PoolExhausted(Exception):
    pass


class ShadowPool:
    """Hypervisor frames for shadow tables, at most `limit` of them."""

    def __init__(self, frames, mem, limit: int = DEFAULT_POOL_PAGES):
        self.frames = frames
        self.mem = mem
        self.limit = limit
        self.allocated = 0
        self._free: List[int] = []

    def alloc(self) -> int:
        if self._free:
            smfn = self._free.pop()
        elif self.allocated < self.limit and self.frames.free_frames():
            smfn = self.frames.alloc_low(DOMID_XEN)
            self.frames.type[smfn] = PageType.SHADOW
            self.allocated += 1
        else:
            raise PoolExhausted
        self.mem.clear_frame(smfn)
        return smfn

    def free(self, smfn: int) -> None:
        self._free.append(smfn)

    def release(self) -> None:
        """Domain destruction: every pool frame (all free once the shadows are blown)
        goes back to the machine's allocator."""
        for smfn in self._free:
            self.frames.type[smfn] = PageType.NONE
            self.frames.free(smfn)
        self.allocated -= len(self._free)
        self._free = []

    @property
    def in_use(self) -> int:
        return self.allocated - len(self._free)


class ShadowPaging(PvPaging):
    name = 'shadow'

    def __init__(self, domid, types, flush_tlb, xen_l4_slots: Dict[int, int], pool: ShadowPool,
                 on_blow: Callable[[], None] = lambda: None, audit: bool = False,
                 roots_in_use: Callable[[], Set[int]] = set):
        super().__init__(domid, types, flush_tlb)
        self.xen_l4_slots = xen_l4_slots
        self.pool = pool
        self.on_blow = on_blow
        self.roots_in_use = roots_in_use      # guest L4s a vCPU uses: their shadows are pinned
        self.audit_after_fault = audit
        # (guest table mfn, level) -> shadow mfn: a table seen at a lower level through
        # a linear page-table entry has a shadow for each level it is seen at.
        self.shadow_of: Dict[Tuple[int, int], int] = {}
        self.guest_of: Dict[int, Tuple[int, int]] = {}    # shadow mfn -> (guest mfn, level)
        self.parents: Dict[int, Set[int]] = {}            # shadow mfn -> entries pointing at it
        self.maps_of: Dict[int, Set[int]] = {}            # guest frame -> shadow L1 entries mapping it
        self.l1_policies: List[L1Policy] = []
        self.stats = Counter()
        self.last_guest_walk = None                        # the walk behind the last guest fault
        self.regions = None                                # read-only regions (shadow.regions)
        # Counts every change to a guest table the hypervisor makes or sees (an entry
        # rewritten, a table validated or devalidated), so a walk made before a
        # listener ran in the fault hook is known to still hold.
        self.tables_generation = 0
        types.listeners[domid] = self

    def enable_mem_access(self, access) -> None:
        """PG_mem_access: fold the access tracker into every shadow L1 entry."""
        self.access = access
        self.l1_policies.append(access.shadow_policy)
        self.shadow_blow_tables()

    def detach(self) -> None:
        self.shadow_blow_tables(reload=False)
        self.types.listeners.pop(self.domid, None)

    # --- roots ------------------------------------------------------------------------------
    def cr3_for(self, l4_mfn: int) -> int:
        try:
            return self.get_shadow(l4_mfn, 4) << 12
        except PoolExhausted:
            self.reclaim()
            return self.get_shadow(l4_mfn, 4) << 12

    def get_shadow(self, gmfn: int, level: int) -> int:
        smfn = self.shadow_of.get((gmfn, level))
        if smfn is not None:
            return smfn
        smfn = self.pool.alloc()
        if level == 4:
            base = smfn << 12
            for slot, entry in self.xen_l4_slots.items():
                self.mem.write_u64(base + slot * 8, entry)
        self.shadow_of[gmfn, level] = smfn
        self.guest_of[smfn] = (gmfn, level)
        self.parents[smfn] = set()
        self.stats['shadows_made'] += 1
        return smfn

    # --- the fault path -------------------------------------------------------------------------
    def sh_page_fault(self, vcpu, va: int, error_code: int):
        """Walk the guest's tables: a fault they explain is the guest's, returned as the
        error code its walk gives. Otherwise propagate the walk into the shadows and let
        the instruction retry (None)."""
        self.last_guest_walk = None
        self.last_fault_leaf = None
        self.last_outcome = 'guest'
        if HYPERVISOR_VIRT_START <= va < HYPERVISOR_VIRT_END:
            return error_code               # Xen's own mappings: a genuine fault
        access = _walk_access(vcpu, error_code)
        root = vcpu.current_table()
        if self.access is None and self.regions is None:
            filled = self._fast_fill(root, va, access)
            if filled is True:
                return None
            if filled:                      # a rights fault on a present mapping: its pfec
                self.stats['guest_faults'] += 1
                return filled
        mem = self.mem
        gw = None
        if self.access is not None and self.regions is None:
            levels = self._fast_walk(root, va)
            if levels is not None and self._permits(levels, access):
                # The access type is checked before the walk sets accessed/dirty bits:
                # those are writes to guest tables, which the tables' own access may forbid.
                events, generation = self.access.stats['events'], self.tables_generation
                mfn = (levels[3][3] & ADDR_MASK) >> 12
                outcome = self.access.on_fault(vcpu, levels, mfn, va, error_code, True)
                if outcome == 'handled' and vcpu.emulate_once and \
                        self._unchanged_since(vcpu, root, generation):
                    # A listener answered "emulate" inside this hook: what the retry
                    # would do (the same walk, as nothing changed), done in this fault.
                    outcome = self.access.on_fault(vcpu, levels, mfn, va, error_code, True)
                if outcome == 'handled':
                    self.last_outcome = 'access'
                    if vcpu.paused_for_event:         # for prefill at resume, with this
                        vcpu.event_fault = (va, error_code, (root, levels, generation),
                                            vcpu.cpu.fault_rip)
                    return None
                if self.access.stats['events'] == events or \
                        self._walk_holds(vcpu, root, generation):
                    return self._fill(root, levels, access)
                # a listener changed the guest's tables or the root: walk again below
        if self.access is not None:
            # The access type is checked before the walk sets accessed/dirty bits: those
            # are writes to guest tables, which the tables' own access may forbid.
            gw = walk(mem.read_u64, root, va, access, words=mem.q)
            events, generation = self.access.stats['events'], self.tables_generation
            if gw.ok and self.access.on_fault(vcpu, gw.levels, gw.mfn, va,
                                              error_code) == 'handled':
                self.last_outcome = 'access'
                return None
            if gw.ok and (self.access.stats['events'] == events or
                          self._walk_holds(vcpu, root, generation)):
                # Nothing changed the guest's tables or the root (a listener that answered
                # in the hook may have changed access types only): set A/D on this walk.
                gw = set_accessed_dirty(gw, mem.write_u64)
            else:
                gw = None
        if gw is None:
            gw = walk(mem.read_u64, root, va, access, write_u64=mem.write_u64, words=mem.q)
        if gw.ok and not self._reachable(gw):
            # A linear page-table entry can lead the walk into Xen's own tables behind
            # its L4 slots; no shadow is ever built over a hypervisor frame.
            gw.mfn, gw.fault_level = None, 1
            gw.pfec = access | PFEC_PRESENT
            gw.reason = 'a linear walk into the hypervisor\'s page tables'
        if not gw.ok:
            self.stats['guest_faults'] += 1
            self.last_guest_walk = gw
            if len(gw.levels) == 4:
                self.last_fault_leaf = gw.levels[-1].entry
            return gw.pfec
        if self.regions is not None and access & PFEC_WRITE and gw.mfn in self.regions.by_mfn:
            self.regions.on_write_fault(vcpu, gw.mfn, va)
            self.last_outcome = 'mmio'
            return None
        try:
            self._propagate(root, gw.levels)
        except PoolExhausted:
            self.reclaim()
            self._propagate(root, gw.levels)
        self.stats['shadow_fills'] += 1
        self.last_outcome = 'shadow'
        if self.audit_after_fault:
            self.check_audit(self._chain(root, gw.levels))
        return None

    page_fault = sh_page_fault

    def _walk_holds(self, vcpu, root: int, generation: int) -> bool:
        """Whether a walk made at this generation of guest-table changes, from this root,
        still gives what a new one would (a listener may have changed either)."""
        return self.tables_generation == generation and vcpu.current_table() == root

    def _unchanged_since(self, vcpu, root: int, generation: int) -> bool:
        """Whether the fault being handled would retry as it was taken: its walk holds,
        no exit or pause is pending, and RIP still names the faulting instruction."""
        return self._walk_holds(vcpu, root, generation) and vcpu.exit is None and \
            not vcpu.paused_for_event and vcpu.cpu.rip == vcpu.cpu.fault_rip

    def set_levels_ad(self, levels, access: int):
        """Set accessed (and dirty, for a write) on a fast walk's entries, as the CPU's
        walk would; returns the records with the entries as written."""
        q = self.mem.q
        out = []
        for level, table, index, entry in levels:
            want = entry | _PAGE_ACCESSED
            if level == 1 and access & PFEC_WRITE:
                want |= _PAGE_DIRTY
            if want != entry:
                q[(table << 9) + index] = want
            out.append((level, table, index, want))
        return out

    def _fast_fill(self, root: int, va: int, access: int):
        """The common faults, on plain ints and tuples, with the general path's walk, A/D
        updates and propagation (walk, _reachable, _propagate): a present, permitted
        mapping of the domain's own frame is filled (True); a write or fetch that a
        present mapping does not permit (a store into a page table, say) is the guest's,
        and its error code comes back, the upper entries marked accessed as the walk
        marks them (last_fault_leaf: the leaf entry). False, having written nothing, for
        anything else (not present, a foreign or I/O frame, a linear walk), which the
        general path then handles."""
        levels = self._fast_walk(root, va)
        if levels is None:
            return False
        e4, e3, e2, e1 = levels[0][3], levels[1][3], levels[2][3], levels[3][3]
        if access & PFEC_WRITE and not e4 & e3 & e2 & e1 & _PAGE_RW or \
                access & PFEC_INSN and (e4 | e3 | e2 | e1) & _PAGE_NX:   # _permits, inline
            q = self.mem.q
            for _level, table, index, entry in levels[:3]:
                if not entry & _PAGE_ACCESSED:
                    q[(table << 9) + index] = entry | _PAGE_ACCESSED
            self.last_fault_leaf = e1
            return (access & (PFEC_WRITE | PFEC_USER | PFEC_INSN)) | PFEC_PRESENT
        self._fill(root, levels, access)
        return True

    def prefill(self, vcpu, va: int, error_code: int, walk=None) -> None:
        """A vm_event response resumed vCPU: fill the shadow for the access it retries,
        if the listener's answer lets it through with nothing more to do (no event, no
        grant, no A/D write a table's access forbids), so the retry does not fault again.
        Otherwise nothing: the retry faults and is handled as any fault. walk: the
        fault's own (root, levels, generation), used if it still holds."""
        access = _walk_access(vcpu, error_code)
        if walk is not None and self._walk_holds(vcpu, walk[0], walk[2]):
            root, levels = walk[0], walk[1]     # permitted when taken, and nothing changed
        else:
            root = vcpu.current_table()
            levels = self._fast_walk(root, va)
            if levels is None or not self._permits(levels, access):
                return
        if self.regions is not None:
            return
        need = access_of_fault(error_code)
        if self.access is not None and not self.access.allows_silently(
                levels, (levels[3][3] & ADDR_MASK) >> 12, need):
            return
        self._fill(root, levels, access)
        self.stats['prefilled'] += 1

    def _fast_walk(self, root: int, va: int):
        """The walk of va as four (level, table, index, entry) tuples when every level is
        present, has no reserved bit or superpage, and names the domain's own frame (and
        va is canonical); None, having read only, for anything else. Unrolled: a loop's
        tuples and appends cost as much as the reads themselves."""
        q = self.mem.q
        owner = self.frames.owner
        nr = len(owner)
        domid = self.domid
        i4 = (va >> 39) & 511
        e4 = q[(root << 9) + i4]
        if not e4 & _PAGE_PRESENT or e4 & _FAST_BAIL_BITS:
            return None                  # not present, reserved bits or a superpage
        t3 = (e4 & ADDR_MASK) >> 12
        if t3 >= nr or owner[t3] != domid:
            return None                  # a foreign or I/O frame, or a hypervisor table
        i3 = (va >> 30) & 511
        e3 = q[(t3 << 9) + i3]
        if not e3 & _PAGE_PRESENT or e3 & _FAST_BAIL_BITS:
            return None
        t2 = (e3 & ADDR_MASK) >> 12
        if t2 >= nr or owner[t2] != domid:
            return None
        i2 = (va >> 21) & 511
        e2 = q[(t2 << 9) + i2]
        if not e2 & _PAGE_PRESENT or e2 & _FAST_BAIL_BITS:
            return None
        t1 = (e2 & ADDR_MASK) >> 12
        if t1 >= nr or owner[t1] != domid:
            return None
        i1 = (va >> 12) & 511
        e1 = q[(t1 << 9) + i1]
        if not e1 & _PAGE_PRESENT or e1 & _FAST_BAIL_BITS:
            return None
        target = (e1 & ADDR_MASK) >> 12
        if target >= nr or owner[target] != domid or (va >> 47) not in (0, 0x1FFFF):
            return None
        return ((4, root, i4, e4), (3, t3, i3, e3), (2, t2, i2, e2), (1, t1, i1, e1))

    @staticmethod
    def _permits(levels, access: int) -> bool:
        """Whether a present walk grants the access (write: RW at every level; fetch: NX
        at none). The walk does not check US: every PV entry is user-accessible."""
        e4, e3, e2, e1 = levels[0][3], levels[1][3], levels[2][3], levels[3][3]
        return not (access & PFEC_WRITE and not e4 & e3 & e2 & e1 & _PAGE_RW or
                    access & PFEC_INSN and (e4 | e3 | e2 | e1) & _PAGE_NX)

    def _fill(self, root: int, levels, access: int):
        """Set accessed (and dirty, for a write) as the walk would, then propagate a
        fast walk into the shadows; returns None (the instruction retries)."""
        out = self.set_levels_ad(levels, access)
        try:
            self._propagate(root, out)
        except PoolExhausted:
            self.reclaim()
            self._propagate(root, out)
        self.stats['shadow_fills'] += 1
        self.last_outcome = 'shadow'
        if self.audit_after_fault:
            self.check_audit(self._chain(root, out))
        return None

    def _propagate(self, root: int, levels) -> int:
        """Make the shadow chain for one successful guest walk; returns the sl1e address."""
        mem = self.mem
        q = mem.q
        shadow_of = self.shadow_of
        smfn = shadow_of.get((root, 4)) or self.get_shadow(root, 4)
        for level, _table, index, entry in levels[:-1]:
            key = ((entry & ADDR_MASK) >> 12, level - 1)
            child = shadow_of.get(key) or self.get_shadow(*key)
            maddr = (smfn << 12) + index * 8
            want = (child << 12) | (entry & (_PAGE_RW | _PAGE_NX)) | SHADOW_TABLE_FLAGS
            current = q[maddr >> 3]
            if current != want:
                if current & _PAGE_PRESENT:
                    self._unhook(maddr, current, level)
                q[maddr >> 3] = want
                self.parents[child].add(maddr)
            smfn = child
        _level, _table, index, entry = levels[-1]
        maddr = (smfn << 12) + index * 8
        want = self._sh_propagate(entry)
        current = q[maddr >> 3]
        if current != want:
            if current & _PAGE_PRESENT:
                self._unhook(maddr, current, 1)
            q[maddr >> 3] = want
            if want & _PAGE_PRESENT:
                self.maps_of.setdefault((want & ADDR_MASK) >> 12, set()).add(maddr)
        else:
            self.stats['spurious'] += 1
            self.last_outcome = 'spurious'
            self.flush_tlb()
        return maddr

    def _reachable(self, gw) -> bool:
        """Every table below the root, and the frame, the domain's (or one its policy
        lets it map)."""
        owner, domid = self.frames.owner, self.domid
        for lv in gw.levels[1:]:
            if owner[lv.table_mfn] != domid and not self.may_reach(lv.table_mfn):
                return False
        return gw.mfn < len(owner) and owner[gw.mfn] == domid or self.may_reach(gw.mfn)

    def may_reach(self, mfn: int) -> bool:
        """The domain's own frame, or a foreign one its policy lets it map (a validated
        guest entry already holds the reference; this keeps the shadow from trusting
        anything else)."""
        types = self.types
        if not self.frames.is_valid(mfn):
            return types.iomem_permitted(self.domid, mfn)     # a device's registers
        owner = self.frames.owner[mfn]
        return owner == self.domid or types.may_map_foreign(self.domid, owner) or \
            types.grant_mapped(self.domid, mfn)

    def _sh_propagate(self, gl1e: int) -> int:
        """The shadow L1 entry for a present, accessed guest L1 entry."""
        target = (gl1e & ADDR_MASK) >> 12     # a guest entry's frame always fits a PTE
        frames = self.frames
        if target >= frames.nr_frames:      # a device's registers: mapped as the guest says
            if not self.may_reach(target):
                return 0
            return make_pte(target, _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED |
                            (gl1e & (_PAGE_NX | _PAGE_RW | _PAGE_DIRTY)))
        if frames.owner[target] != self.domid and not self.may_reach(target):
            return 0                        # never map what the domain may not reach
        flags = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | (gl1e & _PAGE_NX)
        if gl1e & _PAGE_RW and gl1e & _PAGE_DIRTY and not (
                frames.type_count[target] and frames.type[target] in _PT_TYPES):
            flags |= _PAGE_RW | _PAGE_DIRTY
        for policy in self.l1_policies:
            flags = policy(target, flags)
        if not flags & _PAGE_PRESENT:
            return 0
        if not flags & _PAGE_NX:
            frames.executable[target] = 1
        return (target << 12) | flags

    def explain_l1(self, gl1e: int) -> List[Tuple[str, str]]:
        """Which rights the shadow L1 entry lacks compared with the guest's, and why."""
        reasons = []
        target = pte_mfn(gl1e)
        frames = self.frames
        if not self.may_reach(target):
            return [('present', f'mfn {target:#x} is not the domain\'s')]
        if gl1e & _PAGE_RW:
            if not gl1e & _PAGE_DIRTY:
                reasons.append(('write', 'guest entry not dirty yet (D-bit emulation)'))
            if frames.type_count[target] and frames.type[target] in _PT_TYPES:
                reasons.append(('write', f'mfn {target:#x} is a page table '
                                         f'({PageType(frames.type[target]).name})'))
        flags = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER
        for policy in self.l1_policies:
            after = policy(target, flags)
            name = getattr(policy, 'describe', policy.__name__)
            for bit, right in ((_PAGE_PRESENT, 'present'), (_PAGE_RW, 'write')):
                if flags & bit and not after & bit:
                    reasons.append((right, str(name)))
            if after & _PAGE_NX and not flags & _PAGE_NX:
                reasons.append(('execute', str(name)))
        return reasons

    # --- following guest changes ------------------------------------------------------------------
    def entry_changed(self, table_mfn: int, index: int, level: int, old: int, new: int) -> bool:
        """The CPU walks only shadows: the TLB needs a flush only if a shadow entry built
        from the old guest entry existed (a store into an unshadowed entry costs none)."""
        self.tables_generation += 1
        return self.sh_validate_guest_entry(table_mfn, index, level)

    def sh_validate_guest_entry(self, gmfn: int, index: int, level: int) -> bool:
        """A guest entry changed: drop its shadow entry, in every shadow of the table (it
        is seen at lower levels too through linear entries); the next access rebuilds
        them. True when a shadow entry went (the TLB may cache it)."""
        dropped = False
        for seen_as in range(level, 0, -1):
            smfn = self.shadow_of.get((gmfn, seen_as))
            if smfn is None or seen_as == 4 and not is_guest_l4_slot(index):
                continue                    # an L4's Xen slots are the hypervisor's
            maddr = (smfn << 12) + index * 8
            current = self.mem.read_u64(maddr)
            if current & _PAGE_PRESENT:
                self._unhook(maddr, current, seen_as)
                self.mem.write_u64(maddr, 0)
                dropped = True
        return dropped

    def table_validated(self, gmfn: int, level: int) -> None:
        """A frame became a page table: no shadow may map it writable any more."""
        self.tables_generation += 1
        self.sh_remove_write_access(gmfn)

    def table_devalidated(self, gmfn: int, level: int) -> None:
        """A frame stopped being a page table: its shadow goes, and the read-only
        mappings the page-type rule imposed go with it (they come back writable)."""
        self.tables_generation += 1
        self.sh_destroy_shadow(gmfn)
        self.sh_remove_all_mappings(gmfn)

    def _unhook(self, maddr: int, sentry: int, level: int) -> None:
        target = pte_mfn(sentry)
        if level == 1:
            refs = self.maps_of.get(target)
            if refs is not None:
                refs.discard(maddr)
        else:
            refs = self.parents.get(target)
            if refs is not None:
                refs.discard(maddr)

    # --- removing shadows and mappings --------------------------------------------------------------
    def sh_destroy_shadow(self, gmfn: int) -> None:
        """Destroy every shadow of the guest table gmfn (one per level it is seen at)."""
        for level in (4, 3, 2, 1):
            smfn = self.shadow_of.pop((gmfn, level), None)
            if smfn is not None:
                self._destroy(smfn)

    def _destroy(self, smfn: int) -> None:
        _, level = self.guest_of.pop(smfn)
        base = smfn << 12
        for index, sentry in enumerate(self.mem.frame_u64s(smfn)):
            if sentry & _PAGE_PRESENT and (level != 4 or is_guest_l4_slot(index)):
                self._unhook(base + index * 8, sentry, level)
        for parent_entry in self.parents.pop(smfn):
            self.mem.write_u64(parent_entry, 0)
        self.pool.free(smfn)
        self.stats['shadows_destroyed'] += 1
        self.flush_tlb()

    def sh_remove_all_mappings(self, gmfn: int) -> int:
        """Remove every shadow L1 entry that maps gmfn; returns how many there were."""
        refs = self.maps_of.pop(gmfn, None)
        if not refs:
            return 0
        for maddr in refs:
            self.mem.write_u64(maddr, 0)
        self.flush_tlb()
        return len(refs)

    def sh_remove_write_access(self, gmfn: int) -> int:
        """Make every shadow L1 entry that maps gmfn read-only; returns how many changed."""
        changed = 0
        for maddr in self.maps_of.get(gmfn, ()):
            sentry = self.mem.read_u64(maddr)
            if sentry & _PAGE_RW:
                self.mem.write_u64(maddr, sentry & ~(_PAGE_RW | _PAGE_DIRTY))
                changed += 1
        if changed:
            self.flush_tlb()
        return changed

    def shadow_blow_tables(self, reload: bool = True) -> int:
        """Throw every shadow away (Xen's shadow_blow_tables); returns how many there were."""
        count = len(self.guest_of)
        self._free_all_shadows()
        self.stats['blown'] += 1
        if reload:
            self.on_blow()
        return count

    def _free_all_shadows(self) -> None:
        for smfn in self.guest_of:
            self.pool.free(smfn)
        self.shadow_of.clear()
        self.guest_of.clear()
        self.parents.clear()
        self.maps_of.clear()
        self.flush_tlb()

    def reclaim(self) -> int:
        """The pool is empty: free every shadow except the pinned ones (the roots the vCPUs
        are using), whose guest slots are emptied; the next accesses rebuild the rest.
        Returns how many shadow pages were freed."""
        keep = {self.shadow_of[g, 4] for g in self.roots_in_use() if (g, 4) in self.shadow_of}
        freed = 0
        for smfn, (gmfn, level) in list(self.guest_of.items()):
            if smfn in keep:
                continue
            del self.guest_of[smfn]
            del self.shadow_of[gmfn, level]
            self.parents.pop(smfn, None)
            self.pool.free(smfn)
            freed += 1
        for smfn in keep:
            base = smfn << 12
            for index in range(512):
                if is_guest_l4_slot(index) and self.mem.read_u64(base + index * 8):
                    self.mem.write_u64(base + index * 8, 0)
            self.parents[smfn] = set()
        self.maps_of.clear()
        self.stats['reclaimed'] += freed
        self.flush_tlb()
        return freed

    def invlpg(self, va: int) -> None:
        """Shadows follow every guest change, so a guest invlpg only needs the TLB."""
        self.flush_tlb()

    # --- single-step emulation support --------------------------------------------------------------
    def shadow_l1e_maddr(self, vcpu, va: int) -> int:
        """The shadow L1 entry for va in the running root, building the chain if needed."""
        root = vcpu.current_table()
        gw = walk(self.mem.read_u64, root, va)
        return self._propagate(root, gw.levels)

    def prefault_code(self, vcpu, rip: int) -> None:
        """Before a single step: make sure the instruction's own code is in the shadows,
        so the one counted instruction is the store, not a code-fetch fault."""
        root = vcpu.current_table()
        for va in {rip & ~0xFFF, (rip + 15) & ~0xFFF}:
            gw = walk(self.mem.read_u64, root, va, PFEC_INSN, write_u64=self.mem.write_u64)
            if gw.ok and self._reachable(gw):
                try:
                    self._propagate(root, gw.levels)
                except PoolExhausted:
                    self.reclaim()
                    self._propagate(root, gw.levels)

    def redirect(self, vcpu, va: int, mfn: int, flags: int = 0):
        """Point the shadow L1 entry for va at mfn for one step: writable (a scratch copy),
        or with `flags` added to what the entry already allows (a mem_access grant: the
        instruction may sit in the very page whose access it is granted)."""
        maddr = self.shadow_l1e_maddr(vcpu, va)
        saved = self.mem.read_u64(maddr)
        if not flags:
            flags = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY
        elif saved & _PAGE_PRESENT:
            nx = flags & saved & _PAGE_NX
            flags = (flags | (saved & (_PAGE_RW | _PAGE_DIRTY))) & ~_PAGE_NX | nx
        if not flags & _PAGE_NX and self.frames.is_valid(mfn):
            self.frames.executable[mfn] = 1
        self.mem.write_u64(maddr, make_pte(mfn, flags | _PAGE_USER))
        return lambda: self.mem.write_u64(maddr, saved)

    # --- audit ------------------------------------------------------------------------------------------
    def audit(self) -> List[str]:
        from pvshadow.shadow.paging.audit import audit_shadows
        return audit_shadows(self)

    def audit_entries(self, maddrs) -> List[str]:
        from pvshadow.shadow.paging.audit import audit_entries
        return audit_entries(self, maddrs)

    def _chain(self, root: int, levels) -> List[int]:
        """The shadow entries one guest walk's propagation wrote (L4 down to L1), from
        its (level, table, index, entry) records."""
        chain, smfn = [], self.shadow_of.get((root, 4))
        for level, _table, index, entry in levels:
            if smfn is None:
                break
            chain.append((smfn << 12) + index * 8)
            smfn = self.shadow_of.get((pte_mfn(entry), level - 1)) if level > 1 else None
        return chain

    def check_audit(self, entries: Optional[List[int]] = None) -> None:
        """Raise AuditError for any broken rule: in the given shadow entries (the cheap
        per-fault audit), or everywhere (the full audit)."""
        problems = self.audit() if entries is None else self.audit_entries(entries)
        if problems:
            raise AuditError('; '.join(problems[:5]) + (f' (+{len(problems) - 5} more)'
                                                         if len(problems) > 5 else ''))

    def live_shadows(self) -> int:
        return len(self.guest_of)


class AuditError(AssertionError):
    """A shadow broke a rule: a hypervisor bug, never a guest fault."""


_PT_TYPES = (PageType.L1, PageType.L2, PageType.L3, PageType.L4)
