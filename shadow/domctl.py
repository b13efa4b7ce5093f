"""Domain control operations (XEN_DOMCTL_*), as the toolstack issues them.

XEN_DOMCTL_shadow_op (enable / off, the shadow allocation, and the PG_mem_access mode),
XEN_DOMCTL_vm_event_op (the monitor ring: enable, disable, resume) and
XEN_DOMCTL_set_access_required. Log-dirty and translated modes are refused -EOPNOTSUPP.
"""
from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EBUSY, EINVAL, ENODEV, EOPNOTSUPP


def do_shadow_op(domain, sop: xen.xen_domctl_shadow_op) -> int:
    op = sop.op
    shadowed = domain.paging.name == 'shadow'
    if op == xen.XEN_DOMCTL_SHADOW_OP_OFF:
        if domain.translated:
            return -EINVAL                # a translated guest cannot leave shadow mode
        domain.set_paging_mode('direct')
        return 0
    if op in (xen.XEN_DOMCTL_SHADOW_OP_ENABLE, xen.XEN_DOMCTL_SHADOW_OP_ENABLE_TEST):
        mode = sop.mode if op == xen.XEN_DOMCTL_SHADOW_OP_ENABLE else 0
        if mode == xen.XEN_DOMCTL_SHADOW_ENABLE_MEM_ACCESS:
            if domain.mem_access is not None:
                return -EINVAL            # already enabled
            domain.enable_mem_access()
            return 0
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


def do_vm_event_op(domain, vop: xen.xen_domctl_vm_event_op) -> int:
    """The monitor ring (mem_access listener). ENABLE needs the ring page the domain was
    created with and PG_mem_access shadow mode; it fills vop.port."""
    from pvshadow.shadow.vm_event import VmEventChannel
    if vop.mode == xen.XEN_DOMCTL_VM_EVENT_OP_SHARING:
        from pvshadow.shadow.mem_sharing import sharing_ring_op
        return sharing_ring_op(domain, vop)
    if vop.mode != xen.XEN_DOMCTL_VM_EVENT_OP_MONITOR:
        return -EOPNOTSUPP                # the paging ring is not modelled
    access = domain.mem_access
    if vop.op == xen.XEN_VM_EVENT_ENABLE:
        if domain.vm_event_ring_mfn is None:
            return -ENODEV                # no ring page: the creation flag was not given
        if access is None:
            return -EOPNOTSUPP            # PG_mem_access shadow mode is not enabled
        if access.channel is not None:
            return -EBUSY
        access.channel = VmEventChannel(domain.mem, domain.vm_event_ring_mfn)
        vop.port = 0
        return 0
    if access is None or access.channel is None:
        return -EINVAL
    if vop.op == xen.XEN_VM_EVENT_DISABLE:
        access.channel = None
        for v in domain.vcpus:
            v.paused_for_event = False
        return 0
    if vop.op == xen.XEN_VM_EVENT_RESUME:
        return vm_event_resume(domain)
    return -EINVAL


def vm_event_resume(domain) -> int:
    """XEN_VM_EVENT_RESUME on the monitor ring (the toolstack calls it directly)."""
    access = domain.mem_access
    if access is None or access.channel is None:
        return -EINVAL
    return access.resume()


def do_set_access_required(domain, required: bool) -> int:
    if domain.mem_access is None:
        return -EOPNOTSUPP
    domain.mem_access.access_required = bool(required)
    return 0
