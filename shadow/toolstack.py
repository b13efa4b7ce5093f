"""Toolstack-level calls with libxc-like names, for scripts and front ends.

Each takes the Domain object where libxc takes (xch, domid), and returns what libxc's
function returns (0 or a negative errno) with any outputs after it.
"""
from pvshadow.shadow.abi import xen
from pvshadow.shadow.domctl import do_shadow_op

MAX_VIRT_CPUS = 4                 # what the domain model gives a guest


# --- domain lifecycle (XEN_DOMCTL_createdomain .. max_mem; shadow.lifecycle) -------------------
def xc_domain_create(host, max_pages: int, paging: str = 'direct', max_vcpus: int = 4,
                     vm_event_ring: bool = False, privileged: bool = False):
    """XEN_DOMCTL_createdomain: (0, domain), an empty domain to build a kernel into, or
    (-EINVAL, None) for a vCPU count or paging mode the host cannot give."""
    if not 1 <= max_vcpus <= MAX_VIRT_CPUS or paging not in ('direct', 'shadow'):
        return -xen.EINVAL, None
    return 0, host.create_domain(max_pages=max_pages, paging=paging,
                                 vm_event_ring=vm_event_ring, max_vcpus=max_vcpus,
                                 privileged=privileged)


def xc_domain_destroy(host, domain) -> int:
    from pvshadow.shadow.lifecycle import destroy
    return destroy(host, domain)


def xc_domain_pause(domain) -> int:
    from pvshadow.shadow.lifecycle import pause
    return pause(domain)


def xc_domain_unpause(domain) -> int:
    from pvshadow.shadow.lifecycle import unpause
    return unpause(domain)


def xc_domain_getinfo(domain):
    """XEN_DOMCTL_getdomaininfo: (0, DomainInfo)."""
    from pvshadow.shadow.lifecycle import domain_info
    return 0, domain_info(domain)


def xc_domain_setmaxmem(domain, max_kb: int) -> int:
    """XEN_DOMCTL_max_mem (shadow.lifecycle.set_max_mem)."""
    from pvshadow.shadow.lifecycle import set_max_mem
    return set_max_mem(domain, max_kb)


def xc_domain_set_target(host, domain, target_domid: int) -> int:
    """XEN_DOMCTL_set_target: domain gets XSM_TARGET rights over target_domid."""
    from pvshadow.shadow.lifecycle import set_target
    return set_target(host, domain, target_domid)


def xc_domain_add_target(host, domain, target_domid: int) -> int:
    """pvshadow's target set (docs/GRANTS_IOMMU.md): one more client domain serves."""
    from pvshadow.shadow.lifecycle import add_target
    return add_target(host, domain, target_domid)


def xc_domain_remove_target(host, domain, target_domid: int) -> int:
    from pvshadow.shadow.lifecycle import remove_target
    return remove_target(host, domain, target_domid)


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


# --- mem_access (libxc's xc_mem_access.c / xc_domain.c names) ---------------------------------
def xc_set_mem_access(domain, access: int, first_pfn: int, nr: int) -> int:
    """XENMEM_access_op set_access, re-issued from the continuation index until done."""
    from pvshadow.shadow.abi.xen import EOPNOTSUPP
    tracker = domain.mem_access
    if tracker is None:
        return -EOPNOTSUPP                 # access_op's answer: PG_mem_access is not enabled
    start = 0
    while True:                            # access_op's set_access, without the structure
        rc = tracker.set_access(first_pfn, nr, access, start)
        if rc <= 0:
            return rc
        start = rc


def xc_get_mem_access(domain, pfn: int):
    """(rc, access) of one frame, or of the default for pfn == ~0."""
    from pvshadow.shadow.mem_access import access_op
    op = xen.xen_mem_access_op(op=xen.XENMEM_access_op_get_access, domid=domain.domid, pfn=pfn)
    rc = access_op(domain, op)
    return rc, op.access


def xc_hvm_set_mem_access(domain, access: int, first_pfn: int, nr: int) -> int:
    """The legacy HVMOP_set_mem_access path: the same semantics as xc_set_mem_access."""
    from pvshadow.shadow.mem_access import hvm_set_mem_access
    start = 0
    while True:
        rc = hvm_set_mem_access(domain, xen.xen_hvm_set_mem_access(
            domid=domain.domid, hvmmem_access=access, nr=nr, first_pfn=first_pfn), start)
        if rc <= 0:
            return rc
        start = rc


def xc_hvm_get_mem_access(domain, pfn: int):
    from pvshadow.shadow.mem_access import hvm_get_mem_access
    hop = xen.xen_hvm_get_mem_access(domid=domain.domid, pfn=pfn)
    rc = hvm_get_mem_access(domain, hop)
    return rc, hop.hvmmem_access


def _vm_event_op(domain, op: int):
    from pvshadow.shadow.domctl import do_vm_event_op
    vop = xen.xen_domctl_vm_event_op(op=op, mode=xen.XEN_DOMCTL_VM_EVENT_OP_MONITOR)
    return do_vm_event_op(domain, vop), vop.port


def xc_mem_access_enable(domain):
    """Connect a listener: (rc, port, ring) where ring is the listener's end."""
    from pvshadow.shadow.vm_event import ListenerRing
    rc, port = _vm_event_op(domain, xen.XEN_VM_EVENT_ENABLE)
    ring = ListenerRing(domain.mem, domain.vm_event_ring_mfn) if rc == 0 else None
    return rc, port, ring


def xc_mem_access_disable(domain) -> int:
    return _vm_event_op(domain, xen.XEN_VM_EVENT_DISABLE)[0]


def xc_mem_access_resume(domain) -> int:
    return _vm_event_op(domain, xen.XEN_VM_EVENT_RESUME)[0]


def xc_domain_set_access_required(domain, required: bool) -> int:
    from pvshadow.shadow.domctl import do_set_access_required
    return do_set_access_required(domain, required)


def xc_mem_access_shadow_enable(domain) -> int:
    """PG_mem_access shadow mode (the design's step 3), before any access is set."""
    return xc_shadow_control(domain, xen.XEN_DOMCTL_SHADOW_OP_ENABLE,
                             mode=xen.XEN_DOMCTL_SHADOW_ENABLE_MEM_ACCESS)[0]
