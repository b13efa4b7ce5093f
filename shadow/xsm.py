"""Who may act on whom: Xen's default XSM policy (xen/include/xsm/dummy.h), in one place.

Every hypercall, domctl or toolstack call that acts on a domain other than the caller asks
`default_action`, with the action Xen's hook for that operation asserts:

  XSM_HOOK     anyone
  XSM_TARGET   the domain itself, a domain whose target it is (XEN_DOMCTL_set_target's one,
               or one of pvshadow's target set), or the control domain
  XSM_DM_PRIV  a domain whose target it is (a device model), or the control domain
  XSM_PRIV     the control domain only

A refusal is -EPERM, as Xen's. The xenstore domain (XSM_XS_PRIV) is not modelled: the store
lives in the hypervisor here, so XSM_XS_PRIV asks what XSM_DM_PRIV asks.
"""
from pvshadow.shadow.abi.xen import DOMID_SELF, EPERM, ESRCH

XSM_HOOK, XSM_DM_PRIV, XSM_TARGET, XSM_PRIV, XSM_XS_PRIV = range(5)


def default_action(action: int, src, target=None) -> int:
    """xsm_default_action: 0 when src may do the action to target, else -EPERM."""
    if action == XSM_HOOK:
        return 0
    if action == XSM_TARGET and src is target:
        return 0
    if action in (XSM_TARGET, XSM_DM_PRIV, XSM_XS_PRIV) and target is not None and \
            (src.target is target or target in src.targets):
        return 0
    return 0 if src.is_privileged else -EPERM


def may_map_foreign(src, owner) -> bool:
    """Whether src's page tables may hold a reference to owner's frame (the XSM_TARGET
    check mmu_update and update_va_mapping_otherdomain make on the page owner)."""
    return default_action(XSM_TARGET, src, owner) == 0


def lookup_domain(host, caller, domid: int):
    """rcu_lock_domain_by_any_id: DOMID_SELF is the caller; a domain being destroyed is
    gone; None for no such domain."""
    if domid == DOMID_SELF:
        return caller
    d = host.domains.get(domid)
    return None if d is None or d.dying else d


def target_domain(caller, domid: int):
    """(domain, errno) for an op that names a domain: rcu_lock_domain_by_any_id (None and
    -ESRCH for no such domain), then the XSM_TARGET check (the domain and -EPERM)."""
    d = lookup_domain(caller.host, caller, domid)
    if d is None:
        return None, -ESRCH
    return d, default_action(XSM_TARGET, caller, d)


def get_pg_owner(host, caller, domid: int):
    """get_pg_owner (mm.c): the owner of the frames an mmu_update or mmuext_op names.
    Naming oneself by number is refused, as Xen refuses it ("Cannot specify itself as
    foreign domain"); DOMID_IO and DOMID_XEN are not modelled. None means -ESRCH."""
    if domid == DOMID_SELF:
        return caller
    if domid == caller.domid:
        return None
    return lookup_domain(host, caller, domid)
