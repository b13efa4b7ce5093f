"""HYPERVISOR_hvm_op: the legacy mem_access names, which a PV guest may not use on itself
(the same answer as XENMEM_access_op: -EPERM), and HVMOP_altp2m (shadow.altp2m) for
translated guests, on themselves or, for a privileged or device-model domain, on their
target. Everything else is -ENOSYS."""
from pvshadow.shadow import xsm
from pvshadow.shadow.abi import p2m as abi
from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EINVAL, ENOSYS, EOPNOTSUPP, EPERM, ESRCH

# Commands whose structure carries results back to the caller.
_OUTPUTS = {abi.HVMOP_altp2m_get_domain_state, abi.HVMOP_altp2m_create_p2m,
            abi.HVMOP_altp2m_get_suppress_ve, abi.HVMOP_altp2m_get_mem_access,
            abi.HVMOP_altp2m_get_p2m_idx, abi.HVMOP_altp2m_set_suppress_ve_multi,
            abi.HVMOP_altp2m_set_mem_access_multi}


def do_hvm_op(v, cmd, arg, *_):
    if cmd == xen.HVMOP_set_mem_access:
        v.read_struct(xen.xen_hvm_set_mem_access, arg)
        return -EPERM
    if cmd == xen.HVMOP_get_mem_access:
        v.read_struct(xen.xen_hvm_get_mem_access, arg)
        return -EPERM
    if cmd == abi.HVMOP_altp2m:
        return do_altp2m_op(v, arg)
    return -ENOSYS


def do_altp2m_op(v, arg):
    """do_altp2m_op's order: the structure, its version and padding (-EINVAL), the command
    (-EOPNOTSUPP), the domain (-ESRCH), XSM_TARGET (-EPERM, Xen's "mixed" mode), then
    the command itself (shadow.altp2m)."""
    from pvshadow.shadow.altp2m import altp2m_op
    a = v.read_struct(abi.xen_hvm_altp2m_op, arg)
    if a.pad1 or a.pad2 or a.version != abi.HVMOP_ALTP2M_INTERFACE_VERSION:
        return -EINVAL
    if not abi.HVMOP_altp2m_get_domain_state <= a.cmd <= abi.HVMOP_altp2m_set_visibility:
        return -EOPNOTSUPP
    d = xsm.lookup_domain(v.domain.host, v.domain, a.domain)
    if d is None:
        return -ESRCH
    rc = xsm.default_action(xsm.XSM_TARGET, v.domain, d)
    if rc:
        return rc
    rc = altp2m_op(d, a, read_guest=v.copy_from_guest)
    if a.cmd in _OUTPUTS and rc >= 0:
        v.copy_to_guest(arg, bytes(a))
    if rc > 0:                              # set_mem_access_multi: -ERESTART
        return v.create_continuation(xen.HYPERVISOR_hvm_op, abi.HVMOP_altp2m, arg)
    return rc
