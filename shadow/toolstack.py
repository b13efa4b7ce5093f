"""Toolstack-level calls with libxc-like names, for scripts and front ends.

Each takes the Domain object where libxc takes (xch, domid), and returns what libxc's
function returns (0 or a negative errno) with any outputs after it.
"""
from pvshadow.shadow.abi import xen
from pvshadow.shadow.domctl import do_shadow_op, vm_event_resume

MAX_VIRT_CPUS = 4                 # what the domain model gives a guest


# --- domain lifecycle (XEN_DOMCTL_createdomain .. max_mem; shadow.lifecycle) -------------------
def xc_domain_create(host, max_pages: int, paging: str = 'direct', max_vcpus: int = 4,
                     vm_event_ring: bool = False, privileged: bool = False):
    """XEN_DOMCTL_createdomain: (0, domain), an empty domain to build a kernel into, or
    (-EINVAL, None) for a vCPU count or paging mode the host cannot give."""
    if not 1 <= max_vcpus <= MAX_VIRT_CPUS or paging not in ('direct', 'shadow', 'translated'):
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
    tracker = domain.mem_access
    if tracker is None:
        return -xen.EOPNOTSUPP             # access_op's answer: PG_mem_access is not enabled
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
    return vm_event_resume(domain)           # without building the domctl structure


def xc_domain_set_access_required(domain, required: bool) -> int:
    from pvshadow.shadow.domctl import do_set_access_required
    return do_set_access_required(domain, required)


def xc_mem_access_shadow_enable(domain) -> int:
    """PG_mem_access shadow mode (the design's step 3), before any access is set."""
    return xc_shadow_control(domain, xen.XEN_DOMCTL_SHADOW_OP_ENABLE,
                             mode=xen.XEN_DOMCTL_SHADOW_ENABLE_MEM_ACCESS)[0]


# --- altp2m (libxc's xc_altp2m.c) -------------------------------------------------------------
def _altp2m(domain, cmd: int, fill=None, lists=None):
    """One HVMOP_altp2m command from the toolstack: (rc, the structure after it)."""
    from pvshadow.shadow.abi import p2m as abi
    from pvshadow.shadow.altp2m import altp2m_op
    a = abi.xen_hvm_altp2m_op(version=abi.HVMOP_ALTP2M_INTERFACE_VERSION, cmd=cmd,
                              domain=domain.domid)
    if fill is not None:
        fill(a.u)
    while True:
        rc = altp2m_op(domain, a, read_guest=lists)
        if rc <= 0:
            return rc, a


def xc_altp2m_set_domain_state(domain, state: bool) -> int:
    from pvshadow.shadow.abi import p2m as abi
    return _altp2m(domain, abi.HVMOP_altp2m_set_domain_state,
                   lambda u: setattr(u.domain_state, 'state', int(state)))[0]


def xc_altp2m_get_domain_state(domain):
    from pvshadow.shadow.abi import p2m as abi
    rc, a = _altp2m(domain, abi.HVMOP_altp2m_get_domain_state)
    return rc, bool(a.u.domain_state.state)


def xc_altp2m_create_view(domain, default_access: int = xen.XENMEM_access_default):
    """(rc, view index)."""
    from pvshadow.shadow.abi import p2m as abi
    rc, a = _altp2m(domain, abi.HVMOP_altp2m_create_p2m,
                    lambda u: setattr(u.view, 'hvmmem_default_access', default_access))
    return rc, a.u.view.view


def xc_altp2m_destroy_view(domain, view: int) -> int:
    from pvshadow.shadow.abi import p2m as abi
    return _altp2m(domain, abi.HVMOP_altp2m_destroy_p2m,
                   lambda u: setattr(u.view, 'view', view))[0]


def xc_altp2m_switch_to_view(domain, view: int) -> int:
    from pvshadow.shadow.abi import p2m as abi
    return _altp2m(domain, abi.HVMOP_altp2m_switch_p2m,
                   lambda u: setattr(u.view, 'view', view))[0]


def xc_altp2m_get_vcpu_p2m_idx(domain, vcpu_id: int):
    from pvshadow.shadow.abi import p2m as abi
    rc, a = _altp2m(domain, abi.HVMOP_altp2m_get_p2m_idx,
                    lambda u: setattr(u.get_vcpu_p2m_idx, 'vcpu_id', vcpu_id))
    return rc, a.u.get_vcpu_p2m_idx.altp2m_idx


def xc_altp2m_set_mem_access(domain, view: int, gfn: int, access: int) -> int:
    from pvshadow.shadow.abi import p2m as abi

    def fill(u):
        u.mem_access.view, u.mem_access.gfn, u.mem_access.access = view, gfn, access
    return _altp2m(domain, abi.HVMOP_altp2m_set_mem_access, fill)[0]


def xc_altp2m_set_mem_access_multi(domain, view: int, gfns, accesses) -> int:
    import struct
    from pvshadow.shadow.abi import p2m as abi
    pfns = struct.pack(f'<{len(gfns)}Q', *gfns)
    acc = bytes(accesses)

    def lists(address: int, size: int) -> bytes:      # the "guest handles" are offsets
        source, base = (pfns, 0) if address < (1 << 40) else (acc, 1 << 40)
        return source[address - base:address - base + size]

    def fill(u):
        m = u.set_mem_access_multi
        m.view, m.nr, m.pfn_list, m.access_list = view, len(gfns), 0, 1 << 40
    return _altp2m(domain, abi.HVMOP_altp2m_set_mem_access_multi, fill, lists)[0]


def xc_altp2m_get_mem_access(domain, view: int, gfn: int):
    from pvshadow.shadow.abi import p2m as abi

    def fill(u):
        u.mem_access.view, u.mem_access.gfn = view, gfn
    rc, a = _altp2m(domain, abi.HVMOP_altp2m_get_mem_access, fill)
    return rc, a.u.mem_access.access


def xc_altp2m_change_gfn(domain, view: int, old_gfn: int, new_gfn: int) -> int:
    from pvshadow.shadow.abi import p2m as abi

    def fill(u):
        u.change_gfn.view, u.change_gfn.old_gfn, u.change_gfn.new_gfn = view, old_gfn, new_gfn
    return _altp2m(domain, abi.HVMOP_altp2m_change_gfn, fill)[0]


def xc_altp2m_set_suppress_ve(domain, view: int, gfn: int, suppress: bool) -> int:
    from pvshadow.shadow.abi import p2m as abi

    def fill(u):
        u.suppress_ve.view, u.suppress_ve.gfn = view, gfn
        u.suppress_ve.suppress_ve = int(suppress)
    return _altp2m(domain, abi.HVMOP_altp2m_set_suppress_ve, fill)[0]


def xc_altp2m_get_suppress_ve(domain, view: int, gfn: int):
    from pvshadow.shadow.abi import p2m as abi

    def fill(u):
        u.suppress_ve.view, u.suppress_ve.gfn = view, gfn
    rc, a = _altp2m(domain, abi.HVMOP_altp2m_get_suppress_ve, fill)
    return rc, bool(a.u.suppress_ve.suppress_ve)


def xc_altp2m_set_vcpu_enable_notify(domain, vcpu_id: int, gfn: int) -> int:
    from pvshadow.shadow.abi import p2m as abi

    def fill(u):
        u.enable_notify.vcpu_id, u.enable_notify.gfn = vcpu_id, gfn
    return _altp2m(domain, abi.HVMOP_altp2m_vcpu_enable_notify, fill)[0]


def xc_altp2m_set_vcpu_disable_notify(domain, vcpu_id: int) -> int:
    from pvshadow.shadow.abi import p2m as abi
    return _altp2m(domain, abi.HVMOP_altp2m_vcpu_disable_notify,
                   lambda u: setattr(u.disable_notify, 'vcpu_id', vcpu_id))[0]


def xc_altp2m_set_visibility(domain, view: int, visible: bool) -> int:
    from pvshadow.shadow.abi import p2m as abi

    def fill(u):
        u.set_visibility.altp2m_idx, u.set_visibility.visible = view, int(visible)
    return _altp2m(domain, abi.HVMOP_altp2m_set_visibility, fill)[0]


def xc_hvm_set_mem_type(domain, hvmmem_type: int, first_pfn: int, nr: int) -> int:
    """HVMOP_set_mem_type for a translated domain (shadow.p2m.P2m.set_type): ram_rw and
    ram_ro on RAM, mmio_dm on gfns with no frame (ram_rw turns such a gfn back into a
    plain hole). Every gfn is checked before any changes: all or nothing."""
    from pvshadow.shadow.abi import p2m as abi
    from pvshadow.shadow.p2m import INVALID_MFN
    p2m = getattr(domain, 'p2m_state', None)
    if p2m is None or hvmmem_type not in abi.P2M_TYPE_OF_HVMMEM:
        return -xen.EINVAL
    type_ = abi.P2M_TYPE_OF_HVMMEM[hvmmem_type]
    plan = [(gfn, abi.p2m_invalid if type_ == abi.p2m_ram_rw and
             p2m.host(gfn).mfn == INVALID_MFN else type_)
            for gfn in range(first_pfn, first_pfn + nr)]
    if any(p2m.set_type(gfn, want, check_only=True) for gfn, want in plan):
        return -xen.EINVAL
    for gfn, want in plan:
        p2m.set_type(gfn, want)
    return 0


# --- memory sharing (libxc's xc_memshr.c) ------------------------------------------------------
def _memshr(caller, op: int, domid: int, fill=None):
    """One XENMEM_sharing_op as `caller` (the toolstack's domain: the control domain when
    None, i.e. the host itself) issues it: (rc, the structure after it)."""
    from pvshadow.shadow.abi import p2m as abi
    from pvshadow.shadow.hypercall.mem_sharing import sharing_op
    mso = abi.xen_mem_sharing_op(op=op, domain=domid)
    if fill is not None:
        fill(mso.u)
    return sharing_op(caller, mso), mso


class _Toolstack:
    """The toolstack's own identity when no control domain runs one: privileged, on the
    given host, never a target of anything."""
    is_privileged = True
    target = None
    targets = frozenset()

    def __init__(self, host):
        self.host = host


def _caller(domain):
    return _Toolstack(domain.host)


def xc_memshr_control(domain, enable: bool) -> int:
    from pvshadow.shadow.hypercall.mem_sharing import sharing_control
    return sharing_control(domain, enable)


def xc_memshr_nominate_gfn(domain, gfn: int):
    """(rc, handle)."""
    from pvshadow.shadow.abi import p2m as abi
    rc, mso = _memshr(_caller(domain), abi.XENMEM_sharing_op_nominate_gfn, domain.domid,
                      lambda u: setattr(u.nominate, 'gfn', gfn))
    return rc, mso.u.nominate.handle


def xc_memshr_nominate_gref(domain, gref: int):
    """(rc, handle) for the gfn the domain's grant entry gref names."""
    from pvshadow.shadow.abi import p2m as abi
    rc, mso = _memshr(_caller(domain), abi.XENMEM_sharing_op_nominate_gref, domain.domid,
                      lambda u: setattr(u.nominate, 'gfn', gref))
    return rc, mso.u.nominate.handle


def xc_memshr_share_grefs(source, source_gref: int, source_handle: int, client,
                          client_gref: int, client_handle: int) -> int:
    from pvshadow.shadow.abi import p2m as abi
    flag = abi.XENMEM_SHARING_OP_FIELD_IS_GREF_FLAG
    return xc_memshr_share_gfns(source, flag | source_gref, source_handle, client,
                                flag | client_gref, client_handle)


def xc_memshr_share_gfns(source, source_gfn: int, source_handle: int, client, client_gfn: int,
                         client_handle: int) -> int:
    from pvshadow.shadow.abi import p2m as abi

    def fill(u):
        s = u.share
        s.source_gfn, s.source_handle, s.client_gfn = source_gfn, source_handle, client_gfn
        s.client_handle, s.client_domain = client_handle, client.domid
    return _memshr(_caller(source), abi.XENMEM_sharing_op_share, source.domid, fill)[0]


def xc_memshr_add_to_physmap(source, source_gfn: int, source_handle: int, client,
                             client_gfn: int) -> int:
    from pvshadow.shadow.abi import p2m as abi

    def fill(u):
        s = u.share
        s.source_gfn, s.source_handle, s.client_gfn = source_gfn, source_handle, client_gfn
        s.client_domain = client.domid
    return _memshr(_caller(source), abi.XENMEM_sharing_op_add_physmap, source.domid, fill)[0]


def xc_memshr_range_share(source, client, first_gfn: int, last_gfn: int) -> int:
    from pvshadow.shadow.abi import p2m as abi

    def fill(u):
        u.range.first_gfn, u.range.last_gfn, u.range.client_domain = first_gfn, last_gfn, \
            client.domid
    return _memshr(_caller(source), abi.XENMEM_sharing_op_range_share, source.domid, fill)[0]


def xc_memshr_debug_gfn(domain, gfn: int) -> int:
    from pvshadow.shadow.abi import p2m as abi
    return _memshr(_caller(domain), abi.XENMEM_sharing_op_debug_gfn, domain.domid,
                   lambda u: setattr(u.debug, 'gfn', gfn))[0]


def xc_memshr_fork(parent, child, flags: int = 0) -> int:
    """XENMEM_sharing_op_fork: child (created empty, translated, paused) becomes a fork
    of parent, which stays paused while the child lives."""
    from pvshadow.shadow.abi import p2m as abi

    def fill(u):
        u.fork.parent_domain, u.fork.flags = parent.domid, flags
    return _memshr(_caller(child), abi.XENMEM_sharing_op_fork, child.domid, fill)[0]


def xc_memshr_fork_reset(child, reset_state: bool = True, reset_memory: bool = True) -> int:
    from pvshadow.shadow.abi import p2m as abi
    flags = (abi.XENMEM_FORK_RESET_STATE if reset_state else 0) | \
        (abi.XENMEM_FORK_RESET_MEMORY if reset_memory else 0)
    return _memshr(_caller(child), abi.XENMEM_sharing_op_fork_reset, child.domid,
                   lambda u: setattr(u.fork, 'flags', flags))[0]


def xc_memshr_audit(host) -> int:
    """The number of sharing invariants broken (0: all hold; host.sharing.audit() names them)."""
    return len(host.sharing.audit())


def _sharing_ring(domain, op: int):
    from pvshadow.shadow.domctl import do_vm_event_op
    vop = xen.xen_domctl_vm_event_op(op=op, mode=xen.XEN_DOMCTL_VM_EVENT_OP_SHARING)
    return do_vm_event_op(domain, vop)


def xc_memshr_ring_enable(domain):
    """(rc, ring): the sharing ring's listener end."""
    from pvshadow.shadow.vm_event import ListenerRing
    rc = _sharing_ring(domain, xen.XEN_VM_EVENT_ENABLE)
    return rc, (ListenerRing(domain.mem, domain.sharing_ring_mfn) if rc == 0 else None)


def xc_memshr_ring_disable(domain) -> int:
    return _sharing_ring(domain, xen.XEN_VM_EVENT_DISABLE)


def xc_memshr_domain_resume(domain) -> int:
    return _sharing_ring(domain, xen.XEN_VM_EVENT_RESUME)
