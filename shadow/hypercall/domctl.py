"""HYPERVISOR_domctl and HYPERVISOR_sysctl from a guest: the toolstack's domain and system
control, for the control domain.

Xen's order: the interface version first (-EACCES), then the domain the op names
(-ESRCH), then XSM (every op is XSM_PRIV by default: -EPERM for anyone but the control
domain). Served: pausedomain, unpausedomain, destroydomain, max_mem, set_target, and
pvshadow's add_target/remove_target (a target set, docs/ABI.md); the
rest of domctl.h is -ENOSYS here (docs/ABI.md), and the toolstack's Python API
(shadow.toolstack) covers more. sysctl: the version (-EACCES), then XSM_PRIV (-EPERM); no
sysctl command is served (-ENOSYS for the control domain).
"""
import struct

from pvshadow.shadow import lifecycle, xsm
from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.p2m import XEN_DOMCTL_MEM_SHARING_CONTROL, XEN_DOMCTL_mem_sharing_op
from pvshadow.shadow.abi.xen import EACCES, EINVAL, ENOSYS, ESRCH


def do_domctl(v, arg, *_):
    op = v.read_struct(xen.xen_domctl, arg)
    if op.interface_version != xen.XEN_DOMCTL_INTERFACE_VERSION:
        return -EACCES
    caller, host = v.domain, v.domain.host
    target = None
    if op.cmd != xen.XEN_DOMCTL_createdomain:
        target = host.domains.get(op.domain)      # by number: DOMID_SELF names nobody
        if target is None:
            return -ESRCH
    rc = xsm.default_action(xsm.XSM_PRIV, caller, target)
    if rc:
        return rc
    u = arg + xen.XEN_DOMCTL_U
    if op.cmd == xen.XEN_DOMCTL_pausedomain:
        return -EINVAL if target is caller else lifecycle.pause(target)
    if op.cmd == xen.XEN_DOMCTL_unpausedomain:
        return lifecycle.unpause(target)
    if op.cmd == xen.XEN_DOMCTL_destroydomain:
        return -EINVAL if target is caller else lifecycle.destroy(host, target)
    if op.cmd == xen.XEN_DOMCTL_max_mem:
        max_kb, = struct.unpack('<Q', v.copy_from_guest(u, 8))
        return lifecycle.set_max_mem(target, max_kb)
    if op.cmd == xen.XEN_DOMCTL_set_target:
        other, = struct.unpack('<H', v.copy_from_guest(u, 2))
        return lifecycle.set_target(host, target, other)
    if op.cmd == XEN_DOMCTL_mem_sharing_op:
        # struct xen_domctl_mem_sharing_op { u8 op; union { u8 enable; } u; }
        sub, enable = struct.unpack('<BB', v.copy_from_guest(u, 2))
        if sub != XEN_DOMCTL_MEM_SHARING_CONTROL:
            return -ENOSYS
        from pvshadow.shadow.hypercall.mem_sharing import sharing_control
        return sharing_control(target, bool(enable))
    if op.cmd in (xen.XEN_DOMCTL_pvshadow_add_target, xen.XEN_DOMCTL_pvshadow_remove_target):
        other, = struct.unpack('<H', v.copy_from_guest(u, 2))
        change = lifecycle.add_target if op.cmd == xen.XEN_DOMCTL_pvshadow_add_target \
            else lifecycle.remove_target
        return change(host, target, other)
    return -ENOSYS


def do_sysctl(v, arg, *_):
    """struct xen_sysctl { u32 cmd; u32 interface_version; union u; }."""
    cmd, version = struct.unpack('<II', v.copy_from_guest(arg, 8))
    if version != xen.XEN_SYSCTL_INTERFACE_VERSION:
        return -EACCES
    rc = xsm.default_action(xsm.XSM_PRIV, v.domain)
    return rc or -ENOSYS
