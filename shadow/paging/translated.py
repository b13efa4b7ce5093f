"""Shadow paging for translated PV guests (Xen's PV shadow-translate, with altp2m views).

A translated guest's page-table entries name gfns, and its p2m (shadow.p2m) is
authoritative. The guest's tables are under no PV type rules: the guest writes them as
ordinary memory, and shadow paging keeps up as Xen's shadow code does for HVM guests:

- the walk (guest_walk) translates each table's gfn through the vCPU's view, and a
  table is never a shared frame (a walk that meets one unshares it first);
- _sh_propagate maps the view's effective frame for the leaf gfn with guest rights ∩
  p2m type (ram_ro and ram_shared read-only, mmio_dm and invalid absent) ∩ the view's
  access ∩ "a shadowed guest table is never writable";
- a guest store into a shadowed table traps, is emulated as raw bytes, and every shadow
  of that entry, in every view, is dropped (sh_validate_guest_entry);
- a p2m change drops, in the views it touches, every shadow mapping of the old frame and
  every shadow of it as a table (Xen's shadow_write_p2m_entry).

Shadows are kept per (view, guest table): each view has its own shadow hash, mapping
index and parents, and a vCPU's switch of view loads that view's root (blowing nothing).
The ShadowPaging code runs on the active view's set; `_activate` swaps it in.
"""
import struct
from typing import Dict, List, Optional

from pvshadow.shadow.abi.p2m import p2m_mmio_dm, p2m_ram_ro, p2m_ram_rw, p2m_ram_shared
from pvshadow.shadow.abi.xen import (DOMID_COW, EINVAL, ENOMEM, HYPERVISOR_VIRT_END,
                                     HYPERVISOR_VIRT_START, MEM_ACCESS_FAULT_WITH_GLA)
from pvshadow.shadow.exits import Exit, ExitReason
from pvshadow.shadow.machine import PageType
from pvshadow.shadow.mem_access import PERMITS, SHADOW_RIGHTS, _expressible, access_of_fault
from pvshadow.shadow.p2m import INVALID_MFN
from pvshadow.shadow.paging.shadow import PoolExhausted, ShadowPaging, _walk_access
from pvshadow.shadow.paging.x86 import (ADDR_MASK, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_NX,
                                        _PAGE_PRESENT, _PAGE_PSE, _PAGE_RW, _PAGE_USER,
                                        PFEC_INSN, PFEC_PRESENT, PFEC_RSVD, PFEC_USER,
                                        PFEC_WRITE, GuestWalk, WalkLevel, is_canonical)

_RESERVED = (ADDR_MASK & ~((1 << 40) - 1))
_EXIT_REASON_EPT_VIOLATION = 48
_TRAP_virtualisation = 20


class _Set:
    """One view's shadows."""
    __slots__ = ('shadow_of', 'guest_of', 'parents', 'maps_of')

    def __init__(self):
        self.shadow_of, self.guest_of, self.parents, self.maps_of = {}, {}, {}, {}


class TranslatedWalk:
    """What guest_walk saw: levels as (level, table mfn, index, raw entry), the same with
    each entry's frame translated (what _propagate builds from), the leaf gfn and its
    effective p2m entry, or the error code of the guest's fault."""
    __slots__ = ('levels', 'translated', 'gfn', 'entry', 'pfec', 'reason')

    def __init__(self):
        self.levels, self.translated = [], []
        self.gfn = self.entry = None
        self.pfec, self.reason = 0, ''

    @property
    def ok(self) -> bool:
        return self.entry is not None


class TranslatedPaging(ShadowPaging):
    translated = True

    def __init__(self, domain, *args, **kwargs):
        super().__init__(domain.domid, *args, **kwargs)
        self.domain = domain
        self.p2m = domain.p2m_state
        self.p2m.on_change = self.p2m_changed
        self._sets: Dict[int, _Set] = {}
        self.view = None
        self._activate(0)
        self.types.listeners.pop(self.domid, None)     # no PV type rules here
        self.stats['unshared_on_write'] = 0

    # --- views --------------------------------------------------------------------------------
    def _activate(self, idx: int) -> None:
        if idx == self.view:
            return
        s = self._sets.get(idx)
        if s is None:
            s = self._sets[idx] = _Set()
        self.shadow_of, self.guest_of, self.parents, self.maps_of = \
            s.shadow_of, s.guest_of, s.parents, s.maps_of
        self.view = idx

    def _each_view(self, views=None):
        """Activate each view's set in turn (those given, or all), then the first again."""
        was = self.view
        for idx in list(self._sets) if views is None else views:
            if idx in self._sets:
                self._activate(idx)
                yield idx
        self._activate(was)

    def cr3_for_vcpu(self, v) -> int:
        self._activate(v.altp2m_idx)
        return self.cr3_for(v.current_table())

    def is_guest_table(self, mfn: int) -> bool:
        for s in self._sets.values():
            so = s.shadow_of
            if (mfn, 1) in so or (mfn, 2) in so or (mfn, 3) in so or (mfn, 4) in so:
                return True
        return False

    def get_shadow(self, gmfn: int, level: int) -> int:
        fresh = (gmfn, level) not in self.shadow_of and not self.is_guest_table(gmfn)
        smfn = super().get_shadow(gmfn, level)
        if fresh:
            for _ in self._each_view():      # a new table: no view may keep it writable
                self.sh_remove_write_access(gmfn)
        return smfn

    # --- the p2m's changes --------------------------------------------------------------------------
    def p2m_changed(self, views, gfn, old_mfn) -> None:
        """shadow_write_p2m_entry: in the views touched (None: all), drop every shadow
        mapping of the old frame and every shadow of it as a table; a reset view (gfn
        None) loses all its shadows. Reloads CR3 when a root shadow went."""
        reload = False
        for idx in self._each_view(views):
            if gfn is None:
                reload |= bool(self.guest_of)
                self._free_all_shadows()
                continue
            if old_mfn is None or old_mfn == INVALID_MFN:
                continue
            self.sh_remove_all_mappings(old_mfn)
            if (old_mfn, 4) in self.shadow_of:
                reload = True
            self.sh_destroy_shadow(old_mfn)
        self.tables_generation += 1
        if reload:
            self.on_blow()

    def shadow_blow_tables(self, reload: bool = True) -> int:
        count = 0
        for _ in self._each_view():
            count += len(self.guest_of)
            self._free_all_shadows()
        self.stats['blown'] += 1
        if reload:
            self.on_blow()
        return count

    def reclaim(self) -> int:
        freed = 0
        active = self.view
        for idx in self._each_view():
            if idx != active:
                freed += len(self.guest_of)
                self._free_all_shadows()
        return freed + super().reclaim()

    def detach(self) -> None:
        self.shadow_blow_tables(reload=False)

    def live_shadows(self) -> int:
        return sum(len(s.guest_of) for s in self._sets.values())

    # --- the guest walk ---------------------------------------------------------------------------
    def table_frame(self, gfn: int) -> Optional[int]:
        """The machine frame of a guest table at gfn in the active view: never a shared
        frame (unshared first), always the domain's own RAM; None for anything else."""
        entry = self.p2m.lookup_populating(self.view, gfn, True)
        if entry.type == p2m_ram_shared:
            source = self._source(gfn)
            if self.p2m.sharing.unshare(self.domain, source):
                return None                       # out of memory: a fault the guest sees
            entry = self.p2m.lookup(self.view, gfn)
        if entry.mfn == INVALID_MFN or entry.type not in (p2m_ram_rw, p2m_ram_ro) or \
                self.frames.owner[entry.mfn] != self.domid or \
                not self.guest_writable(entry.mfn):
            return None
        return entry.mfn

    def guest_writable(self, mfn: int) -> bool:
        """Whether the guest may write the frame as memory: untyped, or typed writable
        (a ring or area the hypervisor also writes). Anything the type system protects
        is never written by a translated guest's walk, stores or mapping."""
        frames = self.frames
        return not frames.type_count[mfn] or frames.type[mfn] == PageType.WRITABLE

    def _source(self, gfn: int) -> int:
        """The host gfn whose frame the active view shows at gfn."""
        return self.p2m.source(self.view, gfn)

    def guest_walk(self, root: int, va: int, access: int, set_ad: bool) -> TranslatedWalk:
        """Walk the guest's tables for va in the active view (KVM's walker shape). With
        set_ad, accessed bits are set on the way and the leaf's A (and D for a write) on
        success, as the CPU would."""
        gw = TranslatedWalk()
        pfec = access & (PFEC_WRITE | PFEC_USER | PFEC_INSN)
        if not is_canonical(va):
            gw.pfec, gw.reason = pfec, 'non-canonical address'
            return gw
        q = self.mem.q
        table = root
        rw, nx = True, False
        for level, shift in ((4, 39), (3, 30), (2, 21), (1, 12)):
            index = (va >> shift) & 511
            entry = q[(table << 9) + index]
            gw.levels.append((level, table, index, entry))
            if not entry & _PAGE_PRESENT:
                gw.pfec, gw.reason = pfec, f'L{level}: not present'
                return gw
            if entry & _RESERVED or entry & _PAGE_PSE:
                gw.pfec, gw.reason = pfec | PFEC_PRESENT | PFEC_RSVD, f'L{level}: reserved bit'
                return gw
            rw &= bool(entry & _PAGE_RW)
            nx |= bool(entry & _PAGE_NX)
            gfn = (entry & ADDR_MASK) >> 12
            if level > 1:
                child = self.table_frame(gfn)
                if child is None:
                    gw.pfec, gw.reason = pfec, f'L{level}: table gfn {gfn:#x} is not RAM'
                    return gw
                if set_ad and not entry & _PAGE_ACCESSED:
                    entry |= _PAGE_ACCESSED
                    q[(table << 9) + index] = entry
                    gw.levels[-1] = (level, table, index, entry)
                gw.translated.append((level, table, index, (entry & ~ADDR_MASK) | (child << 12)))
                table = child
        if access & PFEC_WRITE and not rw or access & PFEC_INSN and nx:
            gw.pfec = pfec | PFEC_PRESENT
            gw.reason = 'write to a read-only mapping' if access & PFEC_WRITE and not rw \
                else 'fetch from a no-execute mapping'
            return gw
        level, table, index, entry = gw.levels[-1]
        gw.gfn = (entry & ADDR_MASK) >> 12
        effective = self.p2m.lookup_populating(self.view, gw.gfn, bool(access & PFEC_WRITE))
        if effective.mfn != INVALID_MFN and self.view:
            effective = self.p2m.materialize(self.view, gw.gfn)     # the lazy copy
        gw.entry = effective
        if effective.mfn == INVALID_MFN and effective.type != p2m_mmio_dm:
            gw.entry = None
            gw.pfec, gw.reason = pfec | PFEC_PRESENT, f'gfn {gw.gfn:#x} has no frame'
            return gw
        if set_ad:
            want = entry | _PAGE_ACCESSED | (_PAGE_DIRTY if access & PFEC_WRITE else 0)
            if want != entry:
                q[(table << 9) + index] = entry = want
                gw.levels[-1] = (level, table, index, entry)
        mfn = gw.entry.mfn if gw.entry.mfn != INVALID_MFN else 0
        gw.translated.append((1, table, index, (entry & ~ADDR_MASK) | (mfn << 12)))
        return gw

    def _walk_vcpu(self, vcpu, va: int, access: int, set_ad: bool) -> TranslatedWalk:
        """guest_walk of va in the vCPU's view and current tables."""
        self._activate(vcpu.altp2m_idx)
        return self.guest_walk(vcpu.current_table(), va, access, set_ad)

    # --- the fault path ---------------------------------------------------------------------------
    def sh_page_fault(self, vcpu, va: int, error_code: int):
        self.last_guest_walk = self.last_fault_leaf = None
        self.last_outcome = 'guest'
        if HYPERVISOR_VIRT_START <= va < HYPERVISOR_VIRT_END:
            return error_code
        self._activate(vcpu.altp2m_idx)
        access = _walk_access(vcpu, error_code)
        root = vcpu.current_table()
        gw = self.guest_walk(root, va, access, set_ad=False)
        if not gw.ok:
            self.stats['guest_faults'] += 1
            self.last_guest_walk = gw
            return gw.pfec
        need = access_of_fault(error_code)
        entry = gw.entry
        if entry.type == p2m_mmio_dm:
            return self._mmio(vcpu, gw, va)
        if need == 2 and entry.type == p2m_ram_shared:
            return self._unshare_on_write(vcpu, gw)
        mem_access = self.domain.mem_access
        # An "emulate" answer lets this access through once, its walk's table writes
        # included, as MemAccess.on_fault does for PV.
        emulate, vcpu.emulate_once = vcpu.emulate_once, False
        if not emulate and not PERMITS[entry.access] & need and self.view and \
                vcpu.ve_info_gfn is not None and not entry.suppress_ve and \
                self._deliver_ve(vcpu, gw, va, need):
            self.last_outcome = 've'
            return None
        # the view this fault's access types are read and relaxed in: for these checks
        # only (a toolstack call later means the host's)
        mem_access.view = self.view if self.p2m.altp2m_active else None
        try:
            outcome = None
            if not emulate:
                # the walk is about to set accessed/dirty bits: writes to those tables,
                # which the view's access for their gfns may forbid (fault in GPT)
                outcome = mem_access._gpt_violation(vcpu, self._gpt_levels(gw), va, need)
            if outcome is None and not (PERMITS[entry.access] & need and
                                        _expressible(entry.access, need)):
                outcome = mem_access._check(vcpu, gw.gfn, va & 0xFFF, va, need,
                                            MEM_ACCESS_FAULT_WITH_GLA, emulate=emulate)
        finally:
            mem_access.view = None
        if outcome == 'handled':
            self.last_outcome = 'access'
            return None
        if outcome is not None:
            self._activate(vcpu.altp2m_idx)
            gw = self.guest_walk(root, va, access, set_ad=False)    # a listener may have
            if not gw.ok:                                           # changed anything
                return gw.pfec
            entry = gw.entry
        if need == 2:
            if entry.type == p2m_ram_ro:
                return self._discard_write(vcpu, va)
            if self.is_guest_table(entry.mfn):
                return self._emulate_table_store(vcpu, va, entry.mfn, error_code)
        gw = self.guest_walk(root, va, access, set_ad=True)
        if not gw.ok:
            return gw.pfec
        self._fill_translated(vcpu, root, gw)
        self.stats['shadow_fills'] += 1
        self.last_outcome = 'shadow'
        if self.audit_after_fault:
            self.check_audit(self._chain(root, gw.translated))
        return None

    page_fault = sh_page_fault

    def _deliver_ve(self, vcpu, gw, va: int, need: int) -> bool:
        """A violation of the view's access on a gfn whose #VE is not suppressed goes to
        the guest as a virtualization exception (vector 20) when its #VE information
        page is free (semaphore 0): the page gets exit reason 48 (EPT violation), the
        semaphore set, the access as the exit qualification's R/W/X bits, the linear and
        guest-physical addresses and the view (Xen's ve_info). False: not delivered (the
        semaphore is still set), the usual vm_event path goes on."""
        page = self.p2m.host(vcpu.ve_info_gfn)
        if page.mfn == INVALID_MFN or page.type != p2m_ram_rw or \
                self.frames.owner[page.mfn] != self.domid:
            return False
        base = page.mfn << 12
        mem = self.mem
        if int.from_bytes(mem.read(base + 4, 4), 'little'):
            return False
        mem.write(base, struct.pack('<IIQQQH', _EXIT_REASON_EPT_VIOLATION, 0xFFFFFFFF, need,
                                    va, (gw.gfn << 12) | (va & 0xFFF), self.view))
        self.guest_wrote(base, 34)
        vcpu.inject_trap(_TRAP_virtualisation)
        self.stats['ve_delivered'] += 1
        return True

    def _gpt_levels(self, gw):
        """The walk's (level, table gfn, index, entry) records, for the GPT check: each
        table named by its gfn, as a translated guest's access types are."""
        gfn = self.domain.pfn_of.get(gw.levels[0][1])
        out = []
        for level, _table, index, entry in gw.levels:
            out.append((level, gfn, index, entry))
            gfn = (entry & ADDR_MASK) >> 12
        return out

    def _unshare_on_write(self, vcpu, gw):
        """A write to a shared frame: unshare the host gfn this view shows, then the
        store retries on the private copy. Out of memory: the sharing ring's request,
        or the domain crashed."""
        source = self._source(gw.gfn)
        rc = self.p2m.sharing.unshare(self.domain, source)
        if rc == -ENOMEM:
            from pvshadow.shadow.mem_sharing import notify_enomem
            notify_enomem(self.domain, vcpu, source)
        else:
            self.stats['unshared_on_write'] += 1
        self.last_outcome = 'unshare'
        return None

    def _discard_write(self, vcpu, va: int):
        """A write to ram_ro: dropped, the instruction completes (Xen's HVM handling)."""
        store = vcpu.emulator.store_at(vcpu.cpu.fault_rip)
        if store is None:
            vcpu.crash(f'a write to read-only RAM at {va:#x} by an instruction pvshadow '
                       'cannot decode')
            return None
        vcpu.cpu.rip = vcpu.cpu.fault_rip + store.length
        self.stats['ro_writes_discarded'] += 1
        self.last_outcome = 'discarded'
        return None

    def _mmio(self, vcpu, gw, va: int):
        """mmio_dm: the device model's. A decodable store leaves as an mmio exit (the
        instruction completed); anything else ends the run (internal_error)."""
        emulator = vcpu.emulator
        rip = vcpu.cpu.fault_rip
        store = emulator.store_at(rip)
        if store is None or store.mnemonic != 'mov':
            vcpu.request_exit(Exit(ExitReason.INTERNAL_ERROR,
                                   message=f'an access to mmio_dm gfn {gw.gfn:#x} at {va:#x} '
                                           'that is not a store pvshadow decodes'))
            return None
        value = vcpu.cpu.reg(store.source_reg) if store.source_reg else store.imm
        address = (gw.gfn << 12) | (va & 0xFFF)
        vcpu.cpu.rip = rip + store.length
        vcpu.request_exit(Exit(ExitReason.MMIO, message=f'{store.size}-byte write to mmio_dm '
                               f'at {address:#x}',
                               mmio={'address': address, 'gla': va, 'size': store.size,
                                     'data': value & ((1 << (8 * store.size)) - 1),
                                     'direction': 'write', 'region': 'mmio_dm', 'romd': False,
                                     'rip': rip}))
        self.last_outcome = 'mmio'
        return None

    def _emulate_table_store(self, vcpu, va: int, mfn: int, error_code: int):
        """A store into a shadowed guest table: applied as raw bytes, then every shadow
        of the entries it touched, in every view, is dropped. A store the emulator does
        not decode unshadows the table (Xen's fallback), unless it is a root in use."""
        emulator = vcpu.emulator
        rip = vcpu.cpu.fault_rip
        store = emulator.store_at(rip)
        if store is not None and (va & 0xFFF) + store.size <= 0x1000:
            from pvshadow.shadow.paging.emulate import APPLIED
            if emulator._fast(store, va, mfn, 0, in_fault_hook=True) is APPLIED:
                vcpu.cpu.rip = rip + store.length
                self.table_written(mfn, va & 0xFFF, store.size)
                self.stats['pt_writes_emulated'] += 1
                self.last_outcome = 'emulated'
                return None
        roots = {r for v in self.domain.vcpus for r in (v.guest_table, v.guest_table_user) if r}
        if mfn in roots:
            vcpu.crash(f'an instruction pvshadow cannot emulate wrote the top-level table '
                       f'at mfn {mfn:#x}')
            return None
        for _ in self._each_view():
            self.sh_destroy_shadow(mfn)
        self.stats['unshadowed'] += 1
        return None

    def table_written(self, mfn: int, offset: int, size: int) -> None:
        """sh_validate_guest_entry in every view for the entries bytes [offset, +size)
        of guest table mfn cover."""
        self.tables_generation += 1
        dropped = False
        for _ in self._each_view():
            for index in range(offset >> 3, ((offset + size - 1) >> 3) + 1):
                # the table's level is unknown here: every level it is seen at
                dropped |= self.sh_validate_guest_entry(mfn, index, 4)
        if dropped:
            self.flush_tlb()
        if self.mappings_changed is not None:
            self.mappings_changed()

    def _sh_propagate(self, gl1e: int) -> int:
        """The shadow L1 entry for a translated leaf (gl1e carries the machine frame;
        self._leaf is its p2m entry in the active view)."""
        leaf = self._leaf
        target = (gl1e & ADDR_MASK) >> 12
        if leaf.mfn != target or leaf.type not in (p2m_ram_rw, p2m_ram_ro, p2m_ram_shared):
            return 0
        owner = self.frames.owner[target]
        if owner != self.domid and not (owner == DOMID_COW and leaf.type == p2m_ram_shared):
            return 0
        present, writable, executable = SHADOW_RIGHTS[leaf.access]
        if not present:
            return 0
        flags = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | (gl1e & _PAGE_NX)
        if gl1e & _PAGE_RW and gl1e & _PAGE_DIRTY and writable and leaf.type == p2m_ram_rw \
                and not self.is_guest_table(target) and self.guest_writable(target):
            flags |= _PAGE_RW | _PAGE_DIRTY
        if not executable:
            flags |= _PAGE_NX
        elif not flags & _PAGE_NX:
            self.frames.executable[target] = 1
        return (target << 12) | flags

    def prefill(self, vcpu, va: int, error_code: int, walk=None) -> None:
        """A resumed vCPU's retry simply faults again here."""

    # --- accesses the hypervisor makes for the guest ---------------------------------------------
    def guest_translate(self, vcpu, va: int, write: bool) -> Optional[int]:
        """copy_to/from_guest's translation: the machine address behind va in the vCPU's
        view, a shared frame unshared first for a write; None when the guest's tables or
        p2m give none (or a write to ram_ro)."""
        access = PFEC_WRITE if write else 0
        gw = self._walk_vcpu(vcpu, va, access, set_ad=True)
        if not gw.ok or gw.entry.mfn == INVALID_MFN:
            return None
        if write and gw.entry.type == p2m_ram_shared:
            if self.p2m.sharing.unshare(self.domain, self._source(gw.gfn)):
                return None
            gw = self._walk_vcpu(vcpu, va, access, set_ad=True)
            if not gw.ok:
                return None
        if write and gw.entry.type != p2m_ram_rw:
            return None
        return (gw.entry.mfn << 12) | (va & 0xFFF)

    def guest_wrote(self, maddr: int, size: int) -> None:
        """The hypervisor wrote guest memory: a shadowed table's shadows follow."""
        mfn = maddr >> 12
        if self.is_guest_table(mfn):
            self.table_written(mfn, maddr & 0xFFF, size)

    def translate_va(self, vcpu, va: int, write: bool = False) -> Optional[int]:
        return self.guest_translate(vcpu, va, write)

    def debug_walk(self, vcpu, va: int, access: int = 0) -> GuestWalk:
        """The walk as x86.walk reports it (raw guest entries; the frame is the view's)."""
        was = self.view
        tw = self._walk_vcpu(vcpu, va, access, set_ad=False)
        self._activate(was)
        gw = GuestWalk(va=va, access=access,
                       levels=[WalkLevel(*lv) for lv in tw.levels], pfec=tw.pfec,
                       reason=tw.reason)
        if tw.ok and tw.entry.mfn != INVALID_MFN:
            gw.mfn = tw.entry.mfn
        elif tw.ok:
            gw.reason = f'gfn {tw.gfn:#x} is mmio_dm'
        gw.writable = all(e & _PAGE_RW for _l, _t, _i, e in tw.levels)
        gw.executable = not any(e & _PAGE_NX for _l, _t, _i, e in tw.levels)
        return gw

    def find_l1_entry(self, l4_mfn: int, va: int):
        return None                    # no PV grant mapping by PTE for a translated guest

    def code_page(self, vcpu, rip: int):
        """(frame, ((entry word, entry), ...)) of the code page at rip, for the emulator."""
        gw = self._walk_vcpu(vcpu, rip, PFEC_INSN, set_ad=False)
        if not gw.ok or gw.entry.mfn == INVALID_MFN:
            return None
        return gw.entry.mfn, tuple(((t << 9) + i, e) for _l, t, i, e in gw.levels)

    def set_walk_ad(self, vcpu, va: int, access: int) -> None:
        self._walk_vcpu(vcpu, va, access, set_ad=True)

    def frame_of(self, vcpu, gfn: int) -> Optional[int]:
        entry = self.p2m.lookup(vcpu.altp2m_idx, gfn)
        return None if entry.mfn == INVALID_MFN else entry.mfn

    def shadow_l1e_maddr(self, vcpu, va: int) -> int:
        return self._fill_translated(vcpu, vcpu.current_table(),
                                     self._walk_vcpu(vcpu, va, 0, set_ad=False))

    def prefault_code(self, vcpu, rip: int) -> None:
        self._activate(vcpu.altp2m_idx)
        root = vcpu.current_table()
        for va in {rip & ~0xFFF, (rip + 15) & ~0xFFF}:
            gw = self.guest_walk(root, va, PFEC_INSN, set_ad=True)
            if gw.ok and gw.entry.mfn != INVALID_MFN:
                self._fill_translated(vcpu, root, gw)

    def _fill_translated(self, vcpu, root: int, gw) -> int:
        """_propagate a successful walk in the vCPU's view (reclaiming once if the pool
        is dry); returns the shadow L1 entry's address."""
        self._leaf = gw.entry
        try:
            return self._propagate(root, gw.translated)
        except PoolExhausted:
            self.reclaim()
            self._activate(vcpu.altp2m_idx)
            return self._propagate(root, gw.translated)

    # --- what a PV guest does with hypercalls, on gfns -------------------------------------------
    def root_frame(self, gfn: int) -> Optional[int]:
        """NEW_BASEPTR names a gfn: its host frame, which must be the domain's RAM."""
        entry = self.p2m.lookup_populating(0, gfn, True)
        if entry.mfn == INVALID_MFN or entry.type not in (p2m_ram_rw, p2m_ram_ro) or \
                self.frames.owner[entry.mfn] != self.domid:
            return None
        return entry.mfn

    def get_root(self, mfn: int) -> int:
        return 0 if self.types.get_page(mfn, self.domid) else -EINVAL

    def put_root(self, mfn: int) -> None:
        self.types.put_page(mfn)

    def pin(self, mfn: int, level: int) -> int:
        return -EINVAL                 # no PV type system for a translated guest's tables

    def unpin(self, mfn: int) -> int:
        return -EINVAL

    def table_level(self, mfn: int):
        return None

    def pt_update(self, ptr: int, val: int, preserve_ad: bool = False,
                  pg_owner: Optional[int] = None) -> int:
        """MMU_NORMAL_PT_UPDATE for a translated guest: ptr is a guest-physical address,
        val an entry naming a gfn; written as the guest would store it."""
        if pg_owner not in (None, self.domid) or ptr & 7:
            return -EINVAL
        entry = self.p2m.host(ptr >> 12)
        if entry.type == p2m_ram_shared:
            if self.p2m.sharing.unshare(self.domain, ptr >> 12):
                return -ENOMEM
            entry = self.p2m.host(ptr >> 12)
        if entry.mfn == INVALID_MFN or entry.type != p2m_ram_rw or \
                self.frames.owner[entry.mfn] != self.domid or \
                not self.guest_writable(entry.mfn):
            return -EINVAL
        maddr = (entry.mfn << 12) | (ptr & 0xFFF)
        if preserve_ad:
            val = val | (self.mem.q[maddr >> 3] & (_PAGE_ACCESSED | _PAGE_DIRTY))
        self.mem.q[maddr >> 3] = val
        self.guest_wrote(maddr, 8)
        return 0

    def update_va_mapping(self, l4_mfn: int, va: int, val: int,
                          pg_owner: Optional[int] = None) -> int:
        self._activate(0)
        q = self.mem.q
        table = l4_mfn
        for shift in (39, 30, 21):
            e = q[(table << 9) + ((va >> shift) & 511)]
            if not e & _PAGE_PRESENT:
                return -EINVAL
            table = self.table_frame((e & ADDR_MASK) >> 12)
            if table is None:
                return -EINVAL
        maddr = (table << 12) + ((va >> 12) & 511) * 8
        q[maddr >> 3] = val
        self.guest_wrote(maddr, 8)
        return 0

    def write_guest_entry(self, *args, **kwargs) -> int:
        return -EINVAL

    def emulates_writes_to(self, level: int, vm_assist: int) -> bool:
        return False

    # --- audit (shadow.paging.audit) ---------------------------------------------------------------
    def audit(self) -> List[str]:
        from pvshadow.shadow.paging.audit import audit_translated
        return audit_translated(self)

    def audit_entries(self, maddrs) -> List[str]:
        from pvshadow.shadow.paging.audit import audit_translated_entries
        return audit_translated_entries(self, maddrs)

    def shared_writable(self, pages) -> List[str]:
        """Shadow entries, in any view, that map a shared frame writable."""
        out = []
        for idx, s in self._sets.items():
            for mfn in pages:
                for maddr in s.maps_of.get(mfn, ()):
                    if self.mem.q[maddr >> 3] & _PAGE_RW:
                        out.append(f'view {idx}: shadow entry {maddr:#x} maps shared mfn '
                                   f'{mfn:#x} writable')
        return out

