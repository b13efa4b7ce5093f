"""HYPERVISOR_hvm_op: only the legacy mem_access names, which a PV guest may not use on
itself (the same answer as XENMEM_access_op: -EPERM). Everything else is -ENOSYS."""
from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import ENOSYS, EPERM


def do_hvm_op(v, cmd, arg, *_):
    if cmd == xen.HVMOP_set_mem_access:
        v.read_struct(xen.xen_hvm_set_mem_access, arg)
        return -EPERM
    if cmd == xen.HVMOP_get_mem_access:
        v.read_struct(xen.xen_hvm_get_mem_access, arg)
        return -EPERM
    return -ENOSYS
