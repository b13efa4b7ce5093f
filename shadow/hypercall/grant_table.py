"""HYPERVISOR_grant_table_op: setup_table and query_size, map_grant_ref, unmap_grant_ref,
unmap_and_replace, copy, set_version, get_version and get_status_frames (the grant
work itself is shadow.grant_table). Grant frames (and v2 status frames) are the domain's,
outside its physmap, like shared_info: the hypervisor holds a writable reference on each
for good, so none can become a page table. transfer, dump_table, swap_grant_ref and
cache_flush are -ENOSYS (docs/ABI.md).

As Xen: an op array is processed one op at a time, each op's status written back; a
bad op array is -EFAULT; a long array is preempted into a continuation."""
import struct

from pvshadow.shadow import grant_table as gnttab
from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EFAULT, EINVAL, ENOSYS
from pvshadow.shadow.hypercall.mm import guest_addr_ok
from pvshadow.shadow.vcpu import GuestFault


def _handle_okay(va: int, size: int) -> bool:
    """guest_handle_okay for a 64-bit PV guest: the whole range passes __addr_ok on one
    side of the canonical hole. Whether it is mapped is for the copy to find out."""
    last = va + max(size, 1) - 1
    return last < 1 << 64 and guest_addr_ok(va) and guest_addr_ok(last) and \
        (va < 1 << 47) == (last < 1 << 47)


def _each(v, cmd, uop, count, struct_type, one):
    """Xen's per-op loop: read op i, do it, write it back; preempted between ops."""
    size = struct_type.size()
    count &= 0xFFFFFFFF
    if count > 512 and not _handle_okay(uop, count * size):
        return -EFAULT
    for i in range(count):
        if i and v.preempt_check(i):
            return v.create_continuation(xen.HYPERVISOR_grant_table_op, cmd,
                                         uop + i * size, count - i)
        try:
            op = v.read_struct(struct_type, uop + i * size)
        except GuestFault:
            return -EFAULT
        one(op)
        try:
            v.copy_to_guest(uop + i * size, bytes(op))
        except GuestFault:
            return -EFAULT
    return 0


def do_grant_table_op(v, cmd, uop, count, *_):
    d = v.domain
    cmd &= 0xFFFFFFFF
    if cmd == xen.GNTTABOP_query_size:
        return _query_size(v, uop)
    if cmd == xen.GNTTABOP_setup_table:
        return _setup_table(v, uop)
    if cmd == xen.GNTTABOP_map_grant_ref:
        return _each(v, cmd, uop, count, xen.gnttab_map_grant_ref,
                     lambda op: gnttab.map_grant_ref(v, op))
    if cmd == xen.GNTTABOP_unmap_grant_ref:
        def unmap(op):
            op.status = gnttab.unmap(v, op.handle, op.host_addr, op.dev_bus_addr)
        return _each(v, cmd, uop, count, xen.gnttab_unmap_grant_ref, unmap)
    if cmd == xen.GNTTABOP_unmap_and_replace:
        def replace(op):
            # Xen: a host mapping only; with new_addr 0 the entry is just cleared.
            op.status = gnttab.unmap(v, op.handle, op.host_addr, 0, op.new_addr or None) \
                if op.host_addr else xen.GNTST_general_error
        return _each(v, cmd, uop, count, xen.gnttab_unmap_and_replace, replace)
    if cmd == xen.GNTTABOP_copy:
        def copy(op):
            op.status = gnttab.copy(v, op)
        return _each(v, cmd, uop, count, xen.gnttab_copy, copy)
    if cmd == xen.GNTTABOP_set_version:
        if count != 1:
            return -EINVAL
        op = v.read_struct(xen.gnttab_set_version, uop)
        rc = gnttab.set_version(d, op.version)
        op.version = gnttab.table_of(d).version
        v.copy_to_guest(uop, bytes(op))
        return rc
    if cmd == xen.GNTTABOP_get_version:
        if count != 1:
            return -EINVAL
        op = v.read_struct(xen.gnttab_get_version, uop)
        target = d if op.dom == xen.DOMID_SELF else d.host.domains.get(op.dom)
        if target is None:
            return -xen.ESRCH
        if target is not d and not d.is_privileged:
            return -xen.EPERM
        op.version = gnttab.table_of(target).version
        v.copy_to_guest(uop, bytes(op))
        return 0
    if cmd == xen.GNTTABOP_get_status_frames:
        if count != 1:
            return -EINVAL
        return _get_status_frames(v, uop)
    return -ENOSYS


def _query_size(v, uop):
    d = v.domain
    op = v.read_struct(xen.gnttab_query_size, uop)
    if v.domid_ok(op.dom):
        op.nr_frames, op.max_nr_frames = len(d.grant_frames), xen.GRANT_TABLE_MAX_FRAMES
        op.status = xen.GNTST_okay
    else:
        op.status = xen.GNTST_bad_domain
    v.copy_to_guest(uop, bytes(op))
    return 0


def _setup_table(v, uop):
    d = v.domain
    op = v.read_struct(xen.gnttab_setup_table, uop)
    if not _handle_okay(op.frame_list, op.nr_frames * 8):
        return -EFAULT                # guest_handle_okay: outside the guest's range
    if not v.domid_ok(op.dom):
        op.status = xen.GNTST_bad_domain
    elif op.nr_frames > xen.GRANT_TABLE_MAX_FRAMES:
        op.status = xen.GNTST_general_error
    else:
        while len(d.grant_frames) < op.nr_frames:
            if not d.frames.free_frames():
                op.status = xen.GNTST_general_error       # gnttab_grow_table failed
                v.copy_to_guest(uop, bytes(op))
                return 0
            d.grant_frames.append(d.alloc_xenheap_frame('grant table'))
        if not gnttab.grow_status_frames(d):
            op.status = xen.GNTST_general_error
            v.copy_to_guest(uop, bytes(op))
            return 0
        # As Xen: the table has grown; a frame number that cannot be copied out is
        # GNTST_bad_virt_addr in the status, not a failed hypercall.
        op.status = xen.GNTST_okay
        for i, mfn in enumerate(d.grant_frames[:op.nr_frames]):
            try:
                v.copy_to_guest(op.frame_list + i * 8, struct.pack('<Q', mfn))
            except GuestFault:
                op.status = xen.GNTST_bad_virt_addr
                break                 # as Xen since 4.17: the first failure ends it
    v.copy_to_guest(uop, bytes(op))
    return 0


def _get_status_frames(v, uop):
    """The v2 status frames' MFNs: GNTST_general_error for a v1 table or more frames
    than it has, as Xen."""
    d = v.domain
    op = v.read_struct(xen.gnttab_get_status_frames, uop)
    if not v.domid_ok(op.dom):
        op.status = xen.GNTST_bad_domain
    else:
        gt = gnttab.table_of(d)
        if gt.version != 2 or op.nr_frames > len(gt.status_frames):
            op.status = xen.GNTST_general_error
        elif not _handle_okay(op.frame_list, op.nr_frames * 8):
            return -EFAULT
        else:
            op.status = xen.GNTST_okay
            try:
                v.copy_to_guest(op.frame_list, struct.pack(f'<{op.nr_frames}Q',
                                                           *gt.status_frames[:op.nr_frames]))
            except GuestFault:
                op.status = xen.GNTST_bad_virt_addr
    v.copy_to_guest(uop, bytes(op))
    return 0
