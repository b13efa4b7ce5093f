"""XENMEM_sharing_op (memory_op 22) and XEN_DOMCTL_mem_sharing_op: memory sharing between
translated domains (shadow.mem_sharing), for the control domain or a domain privileged
over the one named (XSM_DM_PRIV), as mem_sharing_memop checks in Xen's order: audit
first (the number of problems it found), then the domain (-ESRCH), XSM (-EPERM), a
domain that is not translated (-EOPNOTSUPP; sharing turns itself on for one that is),
then the operation. The client of share and add_physmap must have sharing on (-EINVAL).
"""
from pvshadow.shadow import xsm
from pvshadow.shadow.abi import p2m as abi
from pvshadow.shadow.abi.xen import EINVAL, EOPNOTSUPP, EPERM, ESRCH

_GREF = abi.XENMEM_SHARING_OP_FIELD_IS_GREF_FLAG
_FORK_WITH_IOMMU_ALLOWED, _FORK_BLOCK_INTERRUPTS = 1 << 0, 1 << 1


def sharing_control(d, enable: bool) -> int:
    """mem_sharing_control: only a translated domain can share."""
    if enable and not d.translated:
        return -EOPNOTSUPP
    d.sharing_enabled = bool(enable)
    return 0


def _client(caller, domid: int):
    """(client domain, 0) for share, add_physmap and range_share, or (None, -errno): it
    must exist and not be the caller (-ESRCH / -EPERM), pass XSM_DM_PRIV, and have
    sharing on (-EINVAL)."""
    cd = xsm.lookup_domain(caller.host, caller, domid)
    if cd is None or cd is caller:
        return None, -ESRCH if cd is None else -EPERM
    rc = xsm.default_action(xsm.XSM_DM_PRIV, caller, cd)
    if rc:
        return None, rc
    if not getattr(cd, 'sharing_enabled', False):
        return None, -EINVAL
    return cd, 0


def gref_to_gfn(d, gref: int):
    """mem_sharing_gref_to_gfn: (0, the gfn a translated granter's entry names), or
    (-EINVAL, None) for a ref past its table."""
    from pvshadow.shadow.grant_table import table_of
    gt = table_of(d)
    if gref >= gt.nr_entries():
        return -EINVAL, None
    return 0, gt.frame(gref)


def sharing_op(caller, mso: abi.xen_mem_sharing_op) -> int:
    """One XENMEM_sharing_op; outputs (a handle, a continuation's opaque) go into mso."""
    host = caller.host
    sharing = host.sharing
    if mso.op == abi.XENMEM_sharing_op_audit:
        return len(sharing.audit())
    d = xsm.lookup_domain(host, caller, mso.domain)
    if d is None:
        return -ESRCH
    if d is caller:
        return -EPERM                      # rcu_lock_live_remote_domain_by_id: not oneself
    rc = xsm.default_action(xsm.XSM_DM_PRIV, caller, d)
    if rc:
        return rc
    if not getattr(d, 'sharing_enabled', False):
        rc = sharing_control(d, True)
        if rc:
            return rc
    op, u = mso.op, mso.u
    if op == abi.XENMEM_sharing_op_nominate_gfn:
        rc, u.nominate.handle = sharing.nominate(d, u.nominate.gfn)
        return rc
    if op == abi.XENMEM_sharing_op_nominate_gref:
        rc, gfn = gref_to_gfn(d, u.nominate.gfn & 0xFFFFFFFF)     # grant_ref overlays gfn
        if rc:
            return rc
        rc, u.nominate.handle = sharing.nominate(d, gfn)
        return rc
    if op in (abi.XENMEM_sharing_op_share, abi.XENMEM_sharing_op_add_physmap):
        s = u.share
        cd, rc = _client(caller, s.client_domain)
        if rc:
            return rc
        sgfn, cgfn = s.source_gfn, s.client_gfn
        if sgfn & _GREF:
            rc, sgfn = gref_to_gfn(d, sgfn & ~_GREF)
            if rc:
                return rc
        if cgfn & _GREF:
            rc, cgfn = gref_to_gfn(cd, cgfn & ~_GREF)
            if rc:
                return rc
        if op == abi.XENMEM_sharing_op_share:
            return sharing.share(d, sgfn, s.source_handle, cd, cgfn, s.client_handle)
        return sharing.add_physmap(d, sgfn, s.source_handle, cd, cgfn)
    if op == abi.XENMEM_sharing_op_range_share:
        r = u.range
        if any(r._pad) or r.opaque and not r.first_gfn <= r.opaque <= r.last_gfn:
            return -EINVAL
        cd, rc = _client(caller, r.client_domain)
        if rc:
            return rc
        if r.first_gfn > r.last_gfn or r.last_gfn >= max(len(d.p2m), len(cd.p2m)) + (1 << 20):
            return -EINVAL
        rc = sharing.range_share(d, cd, r.first_gfn, min(r.last_gfn, len(d.p2m) - 1),
                                 r.opaque)
        r.opaque = 0
        return rc
    if op == abi.XENMEM_sharing_op_debug_gfn:
        entry = d.p2m_state.host(u.debug.gfn)
        d.log(f'mem_sharing debug: d{d.domid} gfn {u.debug.gfn:#x} -> mfn {entry.mfn:#x}, '
              f'type {abi.P2M_TYPE_NAMES.get(entry.type, entry.type)}')
        return 0
    if op == abi.XENMEM_sharing_op_fork:
        f = u.fork
        if f.pad or f.flags & ~(_FORK_WITH_IOMMU_ALLOWED | _FORK_BLOCK_INTERRUPTS):
            return -EINVAL
        pd = xsm.lookup_domain(host, caller, f.parent_domain)
        if pd is None or pd is caller:
            return -ESRCH if pd is None else -EPERM
        if len(pd.vcpus) != len(d.vcpus):
            return -EINVAL
        if not getattr(pd, 'sharing_enabled', False):
            rc = sharing_control(pd, True)
            if rc:
                return rc
        return sharing.fork(d, pd)
    if op == abi.XENMEM_sharing_op_fork_reset:
        f = u.fork
        resets = abi.XENMEM_FORK_RESET_STATE | abi.XENMEM_FORK_RESET_MEMORY
        if f.pad or not f.flags & resets or f.flags & ~resets:
            return -EINVAL
        return sharing.fork_reset(d, bool(f.flags & abi.XENMEM_FORK_RESET_STATE),
                                  bool(f.flags & abi.XENMEM_FORK_RESET_MEMORY))
    if op in (abi.XENMEM_sharing_op_debug_gref, abi.XENMEM_sharing_op_debug_mfn):
        return -EOPNOTSUPP                 # docs/ALTP2M_SHARING.md: not built
    return -EINVAL


def do_sharing_memop(v, arg):
    mso = v.read_struct(abi.xen_mem_sharing_op, arg)
    rc = sharing_op(v.domain, mso)
    if rc >= 0 and mso.op in (abi.XENMEM_sharing_op_nominate_gfn,
                              abi.XENMEM_sharing_op_range_share):
        v.copy_to_guest(arg, bytes(mso))
    return rc
