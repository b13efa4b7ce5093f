"""HYPERVISOR_memory_op: reservations (the balloon) and physmap population.

For a PV guest (not auto-translated) the frames named here are machine frames: increase
and populate write the new MFNs back into the guest's extent array; decrease takes MFNs.
Only order-0 extents are supported; a larger order does no extent (result 0).

add_to_physmap is refused with -EACCES, as Xen refuses it to every guest that is not
auto-translated: a PV guest finds shared_info through start_info and maps its MFN.
memory_map reports the domain's pseudo-physical map as the toolstack (libxl) gives a PV
guest: one RAM entry covering max_pages.
"""
import struct

from pvshadow.shadow import xsm
from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.p2m import XENMEM_sharing_op, p2m_invalid, p2m_ram_shared
from pvshadow.shadow.abi.xen import E2BIG, EACCES, EINVAL, ENOSYS, EPERM, ESRCH, INVALID_M2P_ENTRY
from pvshadow.shadow.vcpu import GuestFault

_PFN = struct.Struct('<Q')


def _target_ok(v, domid) -> bool:
    return v.domid_ok(domid)


def do_memory_op(v, cmd, arg, *_):
    op = cmd & xen.MEMOP_CMD_MASK
    start = cmd >> 6                       # continuation: first extent still to do
    d = v.domain
    if op == xen.XENMEM_maximum_ram_page:
        return d.frames.nr_frames
    if op in (xen.XENMEM_current_reservation, xen.XENMEM_maximum_reservation):
        domid = struct.unpack('<H', v.copy_from_guest(arg, 2))[0]
        d, rc = xsm.target_domain(v.domain, domid)
        if d is None or rc:
            return rc
        return d.tot_pages if op == xen.XENMEM_current_reservation else d.max_pages
    if op == xen.XENMEM_maximum_gpfn:
        return len(d.p2m) - 1
    if op == xen.XENMEM_machphys_mapping:
        # struct xen_machphys_mapping { v_start, v_end, max_mfn }
        v.copy_to_guest(arg, struct.pack('<3Q', xen.MACH2PHYS_VIRT_START,
                                         xen.MACH2PHYS_VIRT_START + d.frames.nr_frames * 8,
                                         d.frames.nr_frames - 1))
        return 0
    if op == xen.XENMEM_add_to_physmap:
        # struct xen_add_to_physmap { u16 domid, size; u32 space; u64 idx, gpfn; }
        domid, _size, space = struct.unpack('<HHI', v.copy_from_guest(arg, 8))
        if space == xen.XENMAPSPACE_gmfn_foreign:
            return -ENOSYS                 # only through add_to_physmap_batch
        if not _target_ok(v, domid):
            return -ESRCH
        if d.translated:
            return _add_to_physmap(v, arg, space)
        return -EACCES                     # xatp_permission_check: not paging_mode_translate
    if op == xen.XENMEM_memory_map:
        return _memory_map(v, arg)
    if op == xen.XENMEM_get_mfn_from_pfn:
        return _get_mfn_from_pfn(v, arg)
    if op == XENMEM_sharing_op:
        from pvshadow.shadow.hypercall.mem_sharing import do_sharing_memop
        return do_sharing_memop(v, arg)
    if op == xen.XENMEM_access_op:
        # mem_access is for a domain's listener: a guest may not set (or read) its own
        # access (Xen's XSM_DM_PRIV check); its privileged listener goes through
        # shadow.toolstack.
        v.read_struct(xen.xen_mem_access_op, arg)
        return -EPERM
    if op in (xen.XENMEM_increase_reservation, xen.XENMEM_decrease_reservation,
              xen.XENMEM_populate_physmap):
        res = v.read_struct(xen.xen_memory_reservation, arg)
        target, rc = xsm.target_domain(v.domain, res.domid)
        if target is None:
            return start                  # Xen: no such domain, no extent done
        if rc:
            return rc
        if res.extent_order != 0 or start >= res.nr_extents:
            return start

        def resume(i):
            """The rest from extent i, as Xen encodes it: the start in cmd's high bits."""
            return v.create_continuation(xen.HYPERVISOR_memory_op,
                                         op | i << xen.MEMOP_EXTENT_SHIFT, arg)
        if op == xen.XENMEM_decrease_reservation:
            return _decrease(v, target, res, start, resume)
        if target.translated and op == xen.XENMEM_increase_reservation:
            return start                  # frames with no gfn: docs/ALTP2M_SHARING.md
        return _increase(v, target, res, start, op == xen.XENMEM_populate_physmap, resume)
    return -ENOSYS


_E820_RAM = 1
_LOOKUP_MAX = 512


def _get_mfn_from_pfn(v, arg):
    """pvshadow's XENMEM_get_mfn_from_pfn (docs/ABI.md): XenGT's lookup, the design the
    map-not-lookup thread argues against, kept to show the race. struct { domid_t domid;
    u16 pad[3]; u64 nr_pfns; u64 pfn_list } : each pfn of the client is replaced by its
    MFN (INVALID_MFN for none), and no reference is taken: the answer may be stale the
    moment it is given. For the control domain or one privileged over the client
    (XSM_DM_PRIV); at most 512 pfns a call (-E2BIG)."""
    domid, _pad, nr, pfn_list = struct.unpack('<H6sQQ', v.copy_from_guest(arg, 24))
    client = xsm.lookup_domain(v.domain.host, v.domain, domid)
    if client is None:
        return -ESRCH
    rc = xsm.default_action(xsm.XSM_DM_PRIV, v.domain, client)
    if rc:
        return rc
    if nr > _LOOKUP_MAX:
        return -E2BIG
    pfns = struct.unpack(f'<{nr}Q', v.copy_from_guest(pfn_list, nr * 8)) if nr else ()
    mfns = [client.p2m[p] if client.pfn_valid(p) else xen.INVALID_M2P_ENTRY for p in pfns]
    if nr:
        v.copy_to_guest(pfn_list, struct.pack(f'<{nr}Q', *mfns))
    return 0


def _memory_map(v, arg):
    """struct xen_memory_map { u32 nr_entries; handle buffer } of packed 20-byte e820 entries."""
    capacity, buffer = struct.unpack('<I4xQ', v.copy_from_guest(arg, 16))
    entries = [(0, v.domain.max_pages << 12, _E820_RAM)]
    entries = entries[:capacity]
    v.copy_to_guest(buffer, b''.join(struct.pack('<QQI', *e) for e in entries))
    v.copy_to_guest(arg, struct.pack('<I', len(entries)))
    return 0


def _increase(v, d, res, start, populate, resume):
    """increase_reservation / populate_physmap: returns the extents done (Xen's nr_done).
    An extent slot that cannot be read (populate) or written (the new MFN) stops the
    call before that extent's frame is allocated, so nothing is charged for it. The
    frames are d's: the caller's own, or its target's."""
    for i in range(start, res.nr_extents):
        if v.preempt_check(i - start):
            return resume(i)
        slot = res.extent_start + i * 8
        try:
            gpfn = _PFN.unpack(v.copy_from_guest(slot, 8))[0] if populate else None
            if res.extent_start:
                v.translate(slot, write=True)     # the MFN can be written back
                v.translate(slot + 7, write=True)
        except GuestFault:
            return i
        if populate and (gpfn >= d.max_pages * 4 or d.pfn_valid(gpfn) or
                         d.translated and d.p2m_state.host(gpfn).type != p2m_invalid):
            return i
        mfn = d.alloc_frame()
        if mfn is None:
            return i
        if d.translated:
            d.p2m_state.set_host_entry(gpfn, mfn)
            continue                      # a translated guest is not told the mfn
        if populate:
            d.set_p2m(gpfn, mfn)
        if res.extent_start:
            try:
                v.copy_to_guest(slot, _PFN.pack(mfn))
            except GuestFault:
                return i                  # as Xen: the frame stays the domain's
    return res.nr_extents


def _decrease(v, d, res, start, resume):
    for i in range(start, res.nr_extents):
        if v.preempt_check(i - start):
            return resume(i)
        try:
            frame = _PFN.unpack(v.copy_from_guest(res.extent_start + i * 8, 8))[0]
        except GuestFault:
            return i
        if (release_gfn(d, frame) if d.translated else d.release_frame(frame)):
            return i
    return res.nr_extents


def release_gfn(d, gfn: int) -> int:
    """decrease_reservation of a translated guest's gfn (guest_remove_page): out of the
    p2m first (views and shadows follow), then the frame's allocation reference; a
    shared gfn drops its share (the frame goes with its last)."""
    p2m = d.p2m_state
    entry = p2m.host(gfn)
    if entry.type == p2m_ram_shared:
        return d.host.sharing.unshare(d, gfn, destroy=True)
    if entry.mfn == INVALID_M2P_ENTRY or entry.mfn in d.xenheap_frames or \
            not d.owns(entry.mfn) or not d.frames.allocated[entry.mfn]:
        return -EINVAL
    p2m.set_host_entry(gfn, INVALID_M2P_ENTRY)
    return d.release_frame(entry.mfn)


def _add_to_physmap(v, arg, space: int) -> int:
    """XENMEM_add_to_physmap for a translated guest: XENMAPSPACE_shared_info puts the
    shared_info frame at gpfn (whatever RAM was there is given back). Other spaces are
    not modelled (-ENOSYS)."""
    d = v.domain
    idx, gpfn = struct.unpack('<QQ', v.copy_from_guest(arg + 8, 16))
    if space != xen.XENMAPSPACE_shared_info:
        return -ENOSYS
    if idx != 0 or gpfn >= d.max_pages * 4:
        return -EINVAL
    p2m = d.p2m_state
    for old_gfn, mfn in enumerate(d.p2m):
        if mfn == d.shared_info_mfn:
            p2m.set_host_entry(old_gfn, INVALID_M2P_ENTRY)     # it moves
    old = p2m.host(gpfn)
    if old.mfn != INVALID_M2P_ENTRY:
        release_gfn(d, gpfn)
    p2m.set_host_entry(gpfn, d.shared_info_mfn)
    return 0
