"""A domain's life on a host after it is built: pause and unpause (nesting, as Xen's
controller pause count), information (getdomaininfo), and destruction.

Destruction is Xen's domain_kill and relinquish_resources: every reference the domain's
vCPUs, pins and hypervisor holds keep is dropped (roots, GDT and LDT pages, runstate
areas, the shared_info, grant and ring holds), its page tables devalidate as their last
type reference goes, its event channels close (the far ends left unbound), its shadows
and any vm_event ring go back to the allocator, and then each frame's allocation
reference is dropped. A frame still referenced from elsewhere stays allocated, owned by
the dying domain, until its last reference goes: the domain is a zombie until then.
"""
from array import array
from dataclasses import dataclass

from pvshadow.shadow.abi.xen import EINVAL, ENOENT, ESRCH
from pvshadow.shadow.exits import Exit, ExitReason
from pvshadow.shadow.hypercall.descriptors import set_gdt
from pvshadow.shadow.segments import destroy_ldt


@dataclass
class DomainInfo:
    """XEN_DOMCTL_getdomaininfo's fields, for one domain."""
    domid: int
    tot_pages: int
    max_pages: int
    shr_pages: int
    paged_pages: int
    nr_online_vcpus: int
    max_vcpu_id: int
    running: bool
    blocked: bool
    paused: bool
    shutdown: bool
    shutdown_code: int
    dying: bool


def pause(d) -> int:
    """XEN_DOMCTL_pausedomain: nests; a paused domain executes nothing."""
    if d.dying:
        return -EINVAL
    d.pause_count += 1
    return 0


def unpause(d) -> int:
    """XEN_DOMCTL_unpausedomain: -EINVAL when not paused by the toolstack."""
    if d.dying or not d.pause_count:
        return -EINVAL
    d.pause_count -= 1
    return 0


def set_target(host, d, target_domid: int) -> int:
    """XEN_DOMCTL_set_target: d becomes privileged over its target (a device model or
    backend domain, shadow.xsm's XSM_TARGET). -ESRCH for no such target, -EINVAL for
    itself or when d already has one; the target stays referenced while d lives."""
    target = host.domains.get(target_domid)
    if target is None or target.dying:
        return -ESRCH
    if target is d or d.target is not None:
        return -EINVAL
    d.target = target
    return 0


def add_target(host, d, target_domid: int) -> int:
    """pvshadow's target set (docs/ABI.md): d gains XSM_TARGET rights over one more
    client (a backend serving several). -ESRCH for no such domain, -EINVAL for itself;
    adding one already there is 0."""
    target = host.domains.get(target_domid)
    if target is None or target.dying:
        return -ESRCH
    if target is d:
        return -EINVAL
    d.targets.add(target)
    return 0


def remove_target(host, d, target_domid: int) -> int:
    """-ENOENT when the domain is not in d's set (XEN_DOMCTL_set_target's one target
    is not removed this way)."""
    target = host.domains.get(target_domid)
    if target is None or target not in d.targets:
        return -ENOENT
    d.targets.discard(target)
    return 0


def release_mappings(d) -> None:
    """What a domain that crashed or is destroyed loses first, as Xen's
    gnttab_release_mappings at domain_kill: every grant it mapped (its host entries
    cleared, the references and pins given back) and every IOMMU mapping its devices had,
    which fault from then on. (Its page tables, and any foreign frame they map, go at
    destruction.)"""
    from pvshadow.shadow.grant_table import release_mappings as gnttab_release_mappings
    gnttab_release_mappings(d)
    d.iommu.release()


def set_max_mem(d, max_kb: int) -> int:
    """XEN_DOMCTL_max_mem. As in Xen, below tot_pages is allowed: the domain may then
    only shrink ("ratchet down") until it fits, every allocation refused meanwhile."""
    d.max_pages = min(max_kb >> 2, 0xFFFFFFFF)
    return 0


def domain_info(d) -> DomainInfo:
    online = [v for v in d.vcpus if v.online]
    ended = d.ended
    return DomainInfo(
        domid=d.domid, tot_pages=d.tot_pages, max_pages=d.max_pages, shr_pages=0,
        paged_pages=0, nr_online_vcpus=len(online), max_vcpu_id=len(d.vcpus) - 1,
        running=bool(d.host.cpu.guest is not None and d.host.cpu.guest.domain is d and
                     d.host.scheduling),
        blocked=bool(online) and all(v.blocked for v in online),
        paused=bool(d.pause_count), shutdown=d.shutdown_code is not None or (
            ended is not None and ended.reason is ExitReason.SHUTDOWN),
        shutdown_code=d.shutdown_code if d.shutdown_code is not None else 0,
        dying=d.dying)


def destroy(host, d) -> int:
    """XEN_DOMCTL_destroydomain. Returns 0; -ESRCH for a domain not on this host."""
    if host.domains.get(d.domid) is not d:
        return -ESRCH
    if d.dying:
        return 0
    d.dying = True
    if d.ended is None:
        d.ended = Exit(ExitReason.SHUTDOWN, shutdown_code=d.shutdown_code or 0,
                       message='destroyed')
    cpu, types, frames = host.cpu, d.types, d.frames
    if cpu.guest is not None and cpu.guest.domain is d:
        cpu.guest.unload_watches()
        cpu.guest = None
    release_mappings(d)
    if d.translated:
        host.sharing.release_domain(d)    # its views, then its shares, drop their references
    for v in d.vcpus:
        v.runstate.destroy()
        destroy_ldt(v)
        set_gdt(v, [], 0)
        for i in (0, 1, 2, 3, 7):
            v.debug.set(i, 0)
        for root in (v.guest_table, v.guest_table_user):
            if root:
                d.paging.put_root(root)
        v.guest_table = v.guest_table_user = 0
        v.online = False
        host.xen.forget_gdt(v)
    d.evtchn.close_all()
    host.store.forget(d)
    d.target = None
    d.targets.clear()
    for other in host.domains.values():
        other.targets.discard(d)
        if other.target is d:
            other.target = None
    owned = frames.owned_by(d.domid)
    for mfn in owned:
        if frames.pinned[mfn]:
            frames.pinned[mfn] = 0
            types.put_page_and_type(mfn)
    for mfn in owned:
        for holder, times in list(types.holds.get(mfn, {}).items()):
            for _ in range(times):
                types.put_writable_frame(mfn, holder)
    d.paging.detach()
    d.shadow_pool.release()
    for ring in ('vm_event_ring_mfn', 'sharing_ring_mfn'):
        mfn = getattr(d, ring, None)
        if mfn is not None:
            types.unmappable.pop(mfn, None)
            types.put_page(mfn)
            setattr(d, ring, None)
    d.sharing_channel = None
    for mfn in owned:
        if frames.allocated[mfn]:
            frames.allocated[mfn] = 0
            types.put_page(mfn)
    d.tot_pages = 0
    d.pfn_of.clear()
    d.p2m = array('Q')
    d.xenheap_frames.clear()
    reap(host)
    cpu.flush_tlb()
    cpu.flush_code_cache()
    return 0


def reap(host) -> None:
    """A dying domain leaves the host once none of its frames is referenced any more."""
    for domid, d in list(host.domains.items()):
        if d.dying and not any(owner == domid for owner in d.frames.owner):
            del host.domains[domid]
            host.zombies.pop(domid, None)
        elif d.dying:
            host.zombies[domid] = d
