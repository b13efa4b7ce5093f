"""Toolstack-level calls with libxc-like names, for scripts and front ends.

Each takes the Domain object where libxc takes (xch, domid), and returns what libxc's
function returns (0 or a negative errno) with any outputs after it.
"""
from shadow.abi import xen
from shadow.domctl import do_shadow_op


def xc_shadow_control(domain, sop: int, mb: int = 0, mode: int = 0):
    """XEN_DOMCTL_shadow_op: returns (rc, mb, fault_count)."""
    op = xen.xen_domctl_shadow_op(op=sop, mode=mode, mb=mb)
    rc = do_shadow_op(domain, op)
    stats = getattr(domain.paging, 'stats', {})
    return rc, op.mb, stats.get('shadow_fills', 0) + stats.get('guest_faults', 0)


def xc_shadow_enable(domain) -> int:
    return xc_shadow_control(domain, xen.XEN_DOMCTL_SHADOW_OP_ENABLE)[0]


def xc_shadow_off(domain) -> int:
    return xc_shadow_control(domain, xen.XEN_DOMCTL_SHADOW_OP_OFF)[0]
