"""Domain control operations (XEN_DOMCTL_*), as the toolstack issues them.

Only XEN_DOMCTL_shadow_op for now: enable / off, and the shadow allocation. Log-dirty and
translated modes are not modelled and are refused with -EOPNOTSUPP.
"""
from shadow.abi import xen
from shadow.abi.xen import EINVAL, EOPNOTSUPP


def do_shadow_op(domain, sop: xen.xen_domctl_shadow_op) -> int:
    op = sop.op
    shadowed = domain.paging.name == 'shadow'
    if op == xen.XEN_DOMCTL_SHADOW_OP_OFF:
        domain.set_paging_mode('direct')
        return 0
    if op in (xen.XEN_DOMCTL_SHADOW_OP_ENABLE, xen.XEN_DOMCTL_SHADOW_OP_ENABLE_TEST):
        mode = sop.mode if op == xen.XEN_DOMCTL_SHADOW_OP_ENABLE else 0
        if mode:
            return -EOPNOTSUPP            # refcount / log-dirty / translate / external
        if shadowed:
            return -EINVAL                # already enabled
        domain.set_paging_mode('shadow')
        return 0
    if op == xen.XEN_DOMCTL_SHADOW_OP_GET_ALLOCATION:
        sop.mb = domain.shadow_pool.limit // 256
        return 0
    if op == xen.XEN_DOMCTL_SHADOW_OP_SET_ALLOCATION:
        if sop.mb == 0:
            return -EINVAL
        domain.set_shadow_allocation(sop.mb * 256)
        return 0
    if op in (xen.XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, xen.XEN_DOMCTL_SHADOW_OP_ENABLE_TRANSLATE,
              xen.XEN_DOMCTL_SHADOW_OP_CLEAN, xen.XEN_DOMCTL_SHADOW_OP_PEEK):
        return -EOPNOTSUPP
    return -EINVAL
