"""Memory sharing between translated domains (Xen's mem_sharing.c, safe with altp2m).

A shared frame belongs to DOMID_COW, is typed SHARED (never a page table), has the M2P
entry SHARED_M2P_ENTRY, and is read-only in every shadow (its p2m type is ram_shared).
Its reverse map lists every (domain, view, gfn) whose own p2m entry names it: the host
p2m's entries (view 0) and the views' entries, copied or remapped (shadow.p2m keeps them
here as it changes them). Each rmap entry holds one general and one type reference, so
the frame's count is 1 (the allocation) + the rmap's size, and it is freed when the last
entry goes.

A write through any mapping unshares (unshare): the writer's host gfn gets a private
copy (or the frame itself, made private again, when every rmap entry is that gfn's), and
every view entry sourced from that gfn follows at once. Out of memory, the request goes
on the domain's sharing ring with the vCPU paused, or the domain is crashed (Xen's
mem_sharing_notify_enomem).
"""
from typing import Dict, List, Optional, Set, Tuple

from pvshadow.shadow.abi.p2m import (SHARED_M2P_ENTRY, XENMEM_SHARING_OP_C_HANDLE_INVALID,
                                     XENMEM_SHARING_OP_S_HANDLE_INVALID, p2m_ram_rw,
                                     p2m_ram_shared)
from pvshadow.shadow.abi.xen import DOMID_COW, E2BIG, EBUSY, EINVAL, ENOMEM, ENOSYS
from pvshadow.shadow.machine import NO_PFN, PageType
from pvshadow.shadow.p2m import INVALID_MFN

Key = Tuple[int, int, int]           # (domid, view, gfn)


class SharedPage:
    __slots__ = ('handle', 'rmap')

    def __init__(self, handle: int):
        self.handle = handle
        self.rmap: Set[Key] = set()


class MemSharing:
    """The host's shared frames."""

    def __init__(self, host):
        self.host = host
        self.frames = host.frames
        self.pages: Dict[int, SharedPage] = {}
        self._next_handle = 1                 # Xen's get_next_handle: a 64-bit counter
        self.stats = {'shared': 0, 'saved': 0, 'unshared': 0}

    # --- the reverse map (shadow.p2m calls these) ---------------------------------------------
    def rmap_add(self, mfn: int, key: Key) -> None:
        page = self.pages[mfn]
        if key in page.rmap:
            return
        page.rmap.add(key)
        self.frames.count[mfn] += 1
        self.frames.type_count[mfn] += 1

    def rmap_del(self, mfn: int, key: Key) -> None:
        """Drop key's references; the frame goes with its last rmap entry. A frame made
        private again (no longer in `pages`) has had its references settled already."""
        page = self.pages.get(mfn)
        if page is None or key not in page.rmap:
            return
        page.rmap.discard(key)
        frames = self.frames
        frames.type_count[mfn] -= 1
        if not page.rmap:
            del self.pages[mfn]
            frames.type[mfn] = PageType.NONE
            frames.allocated[mfn] = 0
            self.host.types.put_page(mfn)      # the allocation reference
        self.host.types.put_page(mfn)          # this entry's

    # --- operations ---------------------------------------------------------------------------
    def nominate(self, d, gfn: int) -> Tuple[int, int]:
        """nominate_page: (0, handle), or (-errno, 0). An already shared gfn gives its
        handle. Refused (-EINVAL): no frame, a type other than ram_rw, a frame the
        hypervisor shares with the guest, a page table (shadowed now, or typed), or a gfn
        some view maps to another frame or with other rights (as Xen's 2016 check).
        -E2BIG: another reference holds the frame (a grant, a foreign or IOMMU mapping)."""
        p2m = d.p2m_state
        host = p2m.host(gfn)
        if host.mfn == INVALID_MFN:
            return -EINVAL, 0
        if host.type == p2m_ram_shared:
            return 0, self.pages[host.mfn].handle
        if host.type != p2m_ram_rw:
            return -EINVAL, 0
        mfn, frames = host.mfn, self.frames
        if mfn in d.xenheap_frames or frames.owner[mfn] != d.domid or \
                not frames.allocated[mfn] or frames.type_count[mfn] or \
                d.paging.is_guest_table(mfn):
            return -EINVAL, 0
        for view in p2m.views[1:]:
            entry = view.entries.get(gfn) if view is not None else None
            if entry is not None and (entry.mfn != mfn or entry.access != host.access):
                return -EINVAL, 0
        if frames.count[mfn] != 1:
            return -E2BIG, 0
        # page_make_sharable: the frame leaves the domain (and its tot_pages)
        frames.owner[mfn] = DOMID_COW
        frames.type[mfn] = PageType.SHARED
        frames.pfn[mfn] = NO_PFN
        d.tot_pages -= 1
        self.host.xen.set_m2p(mfn, SHARED_M2P_ENTRY)
        page = SharedPage(self._next_handle)
        self._next_handle += 1
        self.pages[mfn] = page
        self.stats['shared'] += 1
        p2m.set_host_entry(gfn, mfn, p2m_ram_shared)
        return 0, page.handle

    def _shared(self, d, gfn: int, handle: int) -> Optional[int]:
        host = d.p2m_state.host(gfn)
        if host.type != p2m_ram_shared:
            return None
        page = self.pages.get(host.mfn)
        return host.mfn if page is not None and page.handle == handle else None

    def share(self, sd, sgfn: int, sh: int, cd, cgfn: int, ch: int) -> int:
        """share_pages: every rmap entry of the client's frame moves to the source's and
        the client's frame is freed."""
        smfn = self._shared(sd, sgfn, sh)
        cmfn = self._shared(cd, cgfn, ch)
        s_entry, c_entry = sd.p2m_state.host(sgfn), cd.p2m_state.host(cgfn)
        if s_entry.mfn == c_entry.mfn and s_entry.type == p2m_ram_shared:
            return 0                          # already the same frame
        if smfn is None:
            return XENMEM_SHARING_OP_S_HANDLE_INVALID
        if cmfn is None:
            return XENMEM_SHARING_OP_C_HANDLE_INVALID
        self._merge(cmfn, smfn)
        self.stats['saved'] += 1
        return 0

    def _merge(self, cmfn: int, smfn: int) -> None:
        """Point every host entry naming cmfn at smfn; the views follow their sources, and
        cmfn's last rmap entry frees it."""
        for domid, view, gfn in sorted(self.pages[cmfn].rmap):
            if view == 0:
                self.host.domains[domid].p2m_state.set_host_entry(gfn, smfn, p2m_ram_shared)

    def add_physmap(self, sd, sgfn: int, sh: int, cd, cgfn: int) -> int:
        """add_to_physmap: the client's empty gfn shows the source's shared frame."""
        smfn = self._shared(sd, sgfn, sh)
        if smfn is None:
            return XENMEM_SHARING_OP_S_HANDLE_INVALID
        if cd.p2m_state.host(cgfn).mfn != INVALID_MFN or cgfn >= cd.max_pages * 4:
            return XENMEM_SHARING_OP_C_HANDLE_INVALID
        cd.p2m_state.set_host_entry(cgfn, smfn, p2m_ram_shared)
        return 0

    def range_share(self, sd, cd, first: int, last: int, start: int = 0) -> int:
        """range_share: nominate and share each gfn of [first, last] in both domains,
        skipping what cannot be shared; -ENOMEM stops it."""
        for gfn in range(start or first, last + 1):
            rc, sh = self.nominate(sd, gfn)
            if rc == -ENOMEM:
                return rc
            if rc == 0:
                rc, ch = self.nominate(cd, gfn)
                if rc == 0:
                    self.share(sd, gfn, sh, cd, gfn, ch)
        return 0

    def unshare(self, d, gfn: int, destroy: bool = False) -> int:
        """__mem_sharing_unshare_page for host gfn: 0 (done, or not shared), or -ENOMEM
        with nothing changed. destroy: the gfn is being given back (no copy)."""
        p2m = d.p2m_state
        host = p2m.host(gfn)
        if host.type != p2m_ram_shared:
            return 0
        mfn = host.mfn
        page = self.pages[mfn]
        if destroy:
            p2m.set_host_entry(gfn, INVALID_MFN)
            return 0
        mine = {k for k in page.rmap if k[0] == d.domid and p2m.source(k[1], k[2]) == gfn}
        if mine == page.rmap:
            # the last user: page_make_private, no copy
            if d.tot_pages >= d.max_pages:
                return -ENOMEM
            del self.pages[mfn]
            frames = self.frames
            n = len(page.rmap)
            frames.count[mfn] -= n
            frames.type_count[mfn] = 0
            frames.type[mfn] = PageType.NONE
            frames.owner[mfn] = d.domid
            d.tot_pages += 1
            p2m.set_host_entry(gfn, mfn, p2m_ram_rw)
        else:
            new = d.alloc_frame()
            if new is None:
                return -ENOMEM
            mem = self.host.mem
            mem.write(new << 12, mem.read(mfn << 12, 4096))
            p2m.set_host_entry(gfn, new, p2m_ram_rw)
        self.stats['unshared'] += 1
        return 0

    def release_domain(self, d) -> None:
        """Domain destruction: its views, then its host entries, drop their references;
        a fork lets its parent go."""
        p2m = d.p2m_state
        p2m.flush_views()
        for gfn, type_ in list(p2m.types.items()):
            if type_ == p2m_ram_shared:
                p2m.set_host_entry(gfn, INVALID_MFN)
        parent, d.fork_parent = getattr(d, 'fork_parent', None), None
        if parent is not None and parent.pause_count:
            parent.pause_count -= 1

    # --- forks ----------------------------------------------------------------------------------
    def fork(self, cd, pd) -> int:
        """XENMEM_sharing_op_fork: cd (paused, translated, still empty) becomes a fork of
        pd, which it keeps paused: pd's vCPU state and settings are copied, and cd's
        memory comes from pd on fault (fork_page). -EBUSY: cd not paused; -EINVAL: not
        empty, already a fork, or another vCPU count."""
        if not cd.pause_count:
            return -EBUSY
        if getattr(cd, 'fork_parent', None) is not None or cd.tot_pages or \
                len(cd.vcpus) != len(pd.vcpus) or cd is pd:
            return -EINVAL
        cd.fork_parent = pd
        cd.max_pages = pd.max_pages
        pd.pause_count += 1                       # domain_pause(parent), until cd goes
        rc = copy_settings(self.host, cd, pd)
        if rc:
            cd.fork_parent = None
            pd.pause_count -= 1
        return rc

    def fork_page(self, d, gfn: int, write: bool) -> bool:
        """mem_sharing_fork_page: give a fork the gfn it faulted on. A read shares the
        nearest ancestor's frame (nominated there); a write, or a frame that cannot be
        shared (a page table, one held elsewhere), is copied. False: no ancestor has RAM
        there, or no memory for the copy."""
        parent = getattr(d, 'fork_parent', None)
        if not write:
            while parent is not None and not parent.dying:
                rc, handle = self.nominate(parent, gfn)
                if rc == 0:
                    return self.add_physmap(parent, gfn, handle, d, gfn) == 0
                parent = getattr(parent, 'fork_parent', None)
            parent = d.fork_parent
        while parent is not None and not parent.dying:
            host = parent.p2m_state.host(gfn)
            if host.mfn != INVALID_MFN and host.type in (p2m_ram_rw, p2m_ram_shared) and \
                    host.mfn not in parent.xenheap_frames:
                new = d.alloc_frame()
                if new is None:
                    return False
                mem = self.host.mem
                mem.write(new << 12, mem.read(host.mfn << 12, 4096))
                d.p2m_state.set_host_entry(gfn, new)
                return True
            parent = getattr(parent, 'fork_parent', None)
        return False

    def fork_reset(self, d, reset_state: bool, reset_memory: bool) -> int:
        """mem_sharing_fork_reset: the fork's own plain pages (those that could be shared
        again) go back, to be fetched from the parent afresh; shared entries and pages
        held elsewhere (its roots) stay. reset_state copies the parent's vCPU state again.
        -ENOSYS: not a fork."""
        from pvshadow.shadow.hypercall.memory import release_gfn
        parent = getattr(d, 'fork_parent', None)
        if parent is None:
            return -ENOSYS
        if reset_memory:
            frames = self.frames
            for gfn, mfn in enumerate(d.p2m):
                if mfn != INVALID_MFN and d.p2m_state.types.get(gfn, p2m_ram_rw) == p2m_ram_rw \
                        and mfn not in d.xenheap_frames and frames.count[mfn] == 1 and \
                        not d.paging.is_guest_table(mfn):
                    release_gfn(d, gfn)
        if reset_state:
            return copy_settings(self.host, d, parent)
        return 0

    # --- the audit -------------------------------------------------------------------------------
    def audit(self) -> List[str]:
        """The sharing invariants (docs/ALTP2M_SHARING.md), as sentences: each shared
        frame's rmap is exactly the set of materialized entries naming it, its counts are
        1 + that size, it is COW-owned and SHARED-typed with the shared M2P entry, and no
        shadow maps it writable; each domain's views show their sources' frames."""
        problems = []
        frames = self.frames
        naming: Dict[int, Set[Key]] = {}
        for d in self.host.domains.values():
            p2m = getattr(d, 'p2m_state', None)
            if p2m is None:
                continue
            problems += p2m.audit()
            for gfn, type_ in p2m.types.items():
                if type_ == p2m_ram_shared:
                    naming.setdefault(d.p2m[gfn], set()).add((d.domid, 0, gfn))
            for view in p2m.views[1:]:
                if view is None:
                    continue
                for gfn, entry in view.entries.items():
                    if entry.type == p2m_ram_shared:
                        naming.setdefault(entry.mfn, set()).add((d.domid, view.idx, gfn))
            problems += [f'd{d.domid}: {p}' for p in d.paging.shared_writable(self.pages)]
        for mfn in set(naming) - set(self.pages):
            problems.append(f'mfn {mfn:#x}: named ram_shared by {sorted(naming[mfn])} but not '
                            'a shared frame')
        for mfn, page in self.pages.items():
            want = naming.get(mfn, set())
            if page.rmap != want:
                problems.append(f'shared mfn {mfn:#x}: rmap {sorted(page.rmap)}, entries naming '
                                f'it {sorted(want)}')
            if frames.count[mfn] != 1 + len(want) or frames.type_count[mfn] != len(want):
                problems.append(f'shared mfn {mfn:#x}: count {frames.count[mfn]}, type count '
                                f'{frames.type_count[mfn]}, for {len(want)} rmap entries')
            if frames.owner[mfn] != DOMID_COW or frames.type[mfn] != PageType.SHARED:
                problems.append(f'shared mfn {mfn:#x}: owner {frames.owner[mfn]:#x}, type '
                                f'{frames.type[mfn]}')
            if self.host.xen.get_m2p(mfn) != SHARED_M2P_ENTRY:
                problems.append(f'shared mfn {mfn:#x}: M2P entry is not SHARED_M2P_ENTRY')
        return problems

    def ledger_refs(self):
        """(mfn, holder) for the references the rmap holds (shadow.ledger)."""
        for mfn, page in self.pages.items():
            for domid, view, gfn in page.rmap:
                yield mfn, f'd{domid} view {view} gfn {gfn:#x} (shared)'


def copy_settings(host, cd, pd) -> int:
    """A fork's vCPUs take the parent's state (registers and the PV settings Xen's
    copy_vcpu_settings carries), its roots are the fork's own copies of the parent's,
    and its shared_info sits at the parent's gfn with the parent's contents."""
    cpu = host.cpu
    current = cpu.guest
    if current is not None and current.entered:          # off the CPU, state kept
        current.saved_state = cpu.save_state()
        current.unload_watches()
        cpu.guest = None
    for gfn, mfn in enumerate(pd.p2m):
        if mfn == pd.shared_info_mfn:
            if cd.p2m_state.host(gfn).mfn == INVALID_MFN:
                cd.p2m_state.set_host_entry(gfn, cd.shared_info_mfn)
            host.mem.write(cd.shared_info_mfn << 12, host.mem.read(mfn << 12, 4096))
    cd.vm_assist = pd.vm_assist
    for pv, cv in zip(pd.vcpus, cd.vcpus):
        for name in ('kernel_mode', 'event_callback', 'failsafe_callback', 'syscall_callback',
                     'syscall_disables_events', 'kernel_ss', 'kernel_sp', 'gs_base_other',
                     'guest_cr4', 'iopl', 'online', 'initialised', 'blocked'):
            setattr(cv, name, getattr(pv, name))
        cv.trap_ctxt = list(pv.trap_ctxt)
        cv.other_callbacks = dict(pv.other_callbacks)
        if not pv.entered or pv.saved_state is None:
            continue
        for attr in ('guest_table', 'guest_table_user'):
            root = getattr(pv, attr)
            old = getattr(cv, attr)
            if old:
                cd.paging.put_root(old)
                setattr(cv, attr, 0)
            if not root:
                continue
            gfn = pd.pfn_of.get(root)
            mfn = cd.paging.root_frame(gfn) if gfn is not None else None
            if mfn is None or cd.paging.get_root(mfn):
                return -ENOMEM
            setattr(cv, attr, mfn)
        cpu.restore_state(pv.saved_state)              # a copy of the parent's context
        cv.saved_state = cpu.save_state()
        cv.entered = True
    return 0


def notify_enomem(d, vcpu, gfn: int) -> None:
    """mem_sharing_notify_enomem: the vCPU waits on the sharing ring for its listener to
    make room (then retries the write), or, with no listener, the domain is crashed."""
    from pvshadow.shadow.abi import xen
    from pvshadow.shadow.exits import Exit, ExitReason
    channel = getattr(d, 'sharing_channel', None)
    if channel is None:
        vcpu.crash(f'out of memory unsharing gfn {gfn:#x} of d{d.domid}, and no listener '
                   'on the sharing ring')
        return
    req = xen.vm_event_st(version=xen.VM_EVENT_INTERFACE_VERSION,
                          flags=xen.VM_EVENT_FLAG_VCPU_PAUSED,
                          reason=xen.VM_EVENT_REASON_MEM_SHARING, vcpu_id=vcpu.vcpu_id)
    req.mem_sharing.gfn = gfn
    req.mem_sharing.p2mt = p2m_ram_shared
    channel.put_request(req)
    vcpu.paused_for_event = True
    vcpu.request_exit(Exit(ExitReason.VM_EVENT,
                           message=f'out of memory unsharing gfn {gfn:#x}: on the sharing ring'))


def sharing_ring_op(d, vop) -> int:
    """XEN_DOMCTL_VM_EVENT_OP_SHARING: enable (a hypervisor ring page), disable, resume
    (each paused response lets its vCPU retry)."""
    from pvshadow.shadow.abi import xen
    from pvshadow.shadow.abi.xen import EBUSY, DOMID_XEN
    from pvshadow.shadow.vm_event import VmEventChannel
    if vop.op == xen.XEN_VM_EVENT_ENABLE:
        if not d.translated:
            return -EINVAL
        if getattr(d, 'sharing_channel', None) is not None:
            return -EBUSY
        if getattr(d, 'sharing_ring_mfn', None) is None:
            d.sharing_ring_mfn = d.frames.alloc(DOMID_XEN)
            d.types.unmappable[d.sharing_ring_mfn] = xen.EPERM
        d.sharing_channel = VmEventChannel(d.mem, d.sharing_ring_mfn)
        vop.port = 0
        return 0
    channel = getattr(d, 'sharing_channel', None)
    if channel is None:
        return -EINVAL
    if vop.op == xen.XEN_VM_EVENT_DISABLE:
        d.sharing_channel = None
        for v in d.vcpus:
            v.paused_for_event = False
        return 0
    if vop.op == xen.XEN_VM_EVENT_RESUME:
        for flags, vcpu_id, *_ in channel.take_responses():
            if vcpu_id < len(d.vcpus) and flags & xen.VM_EVENT_FLAG_VCPU_PAUSED:
                d.vcpus[vcpu_id].paused_for_event = False
        return 0
    return -EINVAL
