"""HYPERVISOR_grant_table_op: enough for a kernel that probes grants (query_size,
setup_table). Grant frames are the domain's, outside its physmap, like shared_info: the
hypervisor holds a writable reference on each for good, so none can become a page table."""
import struct

from shadow.abi import xen
from shadow.abi.xen import ENOSYS


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
            v.copy_to_guest(op.frame_list, struct.pack(f'<{op.nr_frames}Q',
                                                        *d.grant_frames[:op.nr_frames]))
            op.status = xen.GNTST_okay
        v.copy_to_guest(uop, bytes(op))
        return 0
    return -ENOSYS
