"""HYPERVISOR_grant_table_op: enough for a kernel that probes grants (query_size,
setup_table). Grant frames are the domain's, outside its physmap, like shared_info: the
hypervisor holds a writable reference on each for good, so none can become a page table."""
import struct

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EFAULT, ENOSYS
from pvshadow.shadow.hypercall.mm import guest_addr_ok
from pvshadow.shadow.vcpu import GuestFault


def _handle_okay(va: int, size: int) -> bool:
    """guest_handle_okay for a 64-bit PV guest: the whole range passes __addr_ok on one
    side of the canonical hole. Whether it is mapped is for the copy to find out."""
    last = va + max(size, 1) - 1
    return last < 1 << 64 and guest_addr_ok(va) and guest_addr_ok(last) and \
        (va < 1 << 47) == (last < 1 << 47)


def do_grant_table_op(v, cmd, uop, count, *_):
    d = v.domain
    if cmd == xen.GNTTABOP_query_size:
        op = v.read_struct(xen.gnttab_query_size, uop)
        if v.domid_ok(op.dom):
            op.nr_frames, op.max_nr_frames = len(d.grant_frames), xen.GRANT_TABLE_MAX_FRAMES
            op.status = xen.GNTST_okay
        else:
            op.status = xen.GNTST_bad_domain
        v.copy_to_guest(uop, bytes(op))
        return 0
    if cmd == xen.GNTTABOP_setup_table:
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
    return -ENOSYS
