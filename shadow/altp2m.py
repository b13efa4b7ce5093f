"""altp2m: alternate views of a translated domain's p2m (HVMOP_altp2m, Xen's altp2m.c and
hvm.c's do_altp2m_op), on shadow paging.

The views themselves live in shadow.p2m; this is the operation: the preamble's checks and
errnos as Xen orders them, each command, and the vCPUs' view switches. A switch loads
the view's shadow root (shadows are kept per view), so nothing is blown. A guest may use
it on itself (Xen's "mixed" mode), a privileged or device-model domain on its target.
"""
import struct
from typing import Callable, Optional

from pvshadow.shadow.abi import p2m as abi
from pvshadow.shadow.abi.xen import (EINVAL, EOPNOTSUPP, ESRCH, XENMEM_access_default)
from pvshadow.shadow.p2m import INVALID_MFN

MULTI_CHUNK = 0x40                     # Xen's stride between preemption checks


def vcpus_in(d, idx: int) -> int:
    return sum(1 for v in d.vcpus if v.altp2m_idx == idx and v.online)


def switch_vcpu(v, idx: int) -> bool:
    """p2m_switch_vcpu_altp2m_by_id: False (nothing done) for a view that does not exist."""
    p2m = v.domain.p2m_state
    if not p2m.altp2m_active or not 0 <= idx < abi.MAX_ALTP2M or \
            idx and p2m.views[idx] is None:
        return False
    if v.altp2m_idx != idx:
        v.altp2m_idx = idx
        if v.entered:
            v.load_cr3()                  # only if it is the vCPU on the CPU
    return True


def set_domain_state(d, state: bool) -> int:
    p2m = d.p2m_state
    if bool(state) == p2m.altp2m_active:
        return 0
    p2m.altp2m_active = bool(state)
    for v in d.vcpus:
        v.altp2m_idx = 0
        v.ve_info_gfn = None
    if not state:
        p2m.flush_views()
    for v in d.vcpus:
        if v.entered:
            v.load_cr3()                  # only the vCPU on the CPU loads it now
    return 0


def altp2m_op(d, a: abi.xen_hvm_altp2m_op, read_guest: Optional[Callable] = None) -> int:
    """One HVMOP_altp2m command on domain d (already looked up and permitted); outputs go
    into `a`. read_guest(address, size) reads the caller's memory (set_mem_access_multi's
    lists). Returns 0, a positive continuation (set_mem_access_multi: a.u's opaque is
    updated), or -errno."""
    p2m = getattr(d, 'p2m_state', None)
    if p2m is None:
        return -EOPNOTSUPP                       # not a translated guest (is_hvm_domain)
    cmd = a.cmd
    if cmd not in (abi.HVMOP_altp2m_get_domain_state, abi.HVMOP_altp2m_set_domain_state) \
            and not p2m.altp2m_active:
        return -EOPNOTSUPP
    u = a.u
    if cmd == abi.HVMOP_altp2m_get_domain_state:
        u.domain_state.state = int(p2m.altp2m_active)
        return 0
    if cmd == abi.HVMOP_altp2m_set_domain_state:
        return set_domain_state(d, bool(u.domain_state.state))
    if cmd == abi.HVMOP_altp2m_vcpu_enable_notify:
        n = u.enable_notify
        if n.pad or n.vcpu_id >= len(d.vcpus):
            return -EINVAL
        v = d.vcpus[n.vcpu_id]
        if v.ve_info_gfn is not None or p2m.host(n.gfn).mfn == INVALID_MFN:
            return -EINVAL                        # altp2m_vcpu_enable_ve
        v.ve_info_gfn = n.gfn
        return 0
    if cmd == abi.HVMOP_altp2m_vcpu_disable_notify:
        if u.disable_notify.vcpu_id >= len(d.vcpus):
            return -EINVAL
        d.vcpus[u.disable_notify.vcpu_id].ve_info_gfn = None
        return 0
    if cmd == abi.HVMOP_altp2m_create_p2m:
        idx = p2m.create_view(u.view.hvmmem_default_access)
        if idx < 0:
            return idx
        u.view.view = idx
        return 0
    if cmd == abi.HVMOP_altp2m_destroy_p2m:
        return p2m.destroy_view(u.view.view, lambda idx: vcpus_in(d, idx) > 0)
    if cmd == abi.HVMOP_altp2m_switch_p2m:
        idx = u.view.view
        if idx >= abi.MAX_ALTP2M or idx and (p2m.views[idx] is None or
                                             not p2m.views[idx].visible):
            return -EINVAL
        for v in d.vcpus:
            switch_vcpu(v, idx)
        return 0
    if cmd in (abi.HVMOP_altp2m_set_suppress_ve, abi.HVMOP_altp2m_get_suppress_ve):
        s = u.suppress_ve
        if s.pad1 or s.pad2:
            return -EINVAL
        if cmd == abi.HVMOP_altp2m_set_suppress_ve:
            return set_suppress_ve(p2m, s.view, s.gfn, s.gfn, bool(s.suppress_ve))
        rc, value = get_suppress_ve(p2m, s.view, s.gfn)
        if rc == 0:
            s.suppress_ve = int(value)
        return rc
    if cmd == abi.HVMOP_altp2m_set_suppress_ve_multi:
        s = u.suppress_ve_multi
        if s.pad1 or s.first_gfn > s.last_gfn:
            return -EINVAL
        rc = set_suppress_ve(p2m, s.view, s.first_gfn, min(s.last_gfn, (1 << 28) - 1),
                             bool(s.suppress_ve), multi=s)
        return rc
    if cmd == abi.HVMOP_altp2m_set_mem_access:
        m = u.mem_access
        if m.pad:
            return -EINVAL
        return set_mem_access(d, m.view, m.gfn, m.access)
    if cmd == abi.HVMOP_altp2m_set_mem_access_multi:
        m = u.set_mem_access_multi
        if m.pad or m.opaque > m.nr:
            return -EINVAL
        if read_guest is None:
            return -EINVAL
        for i in range(m.opaque, m.nr):
            if i > m.opaque and (i - m.opaque) % MULTI_CHUNK == 0:
                m.opaque = i
                return i                          # -ERESTART: the caller continues
            gfn, = struct.unpack('<Q', read_guest(m.pfn_list + 8 * i, 8))
            access, = read_guest(m.access_list + i, 1)
            rc = set_mem_access(d, m.view, gfn, access)
            if rc:
                return rc
        m.opaque = 0
        return 0
    if cmd == abi.HVMOP_altp2m_get_mem_access:
        m = u.mem_access
        if m.pad:
            return -EINVAL
        rc, access = get_mem_access(d, m.view, m.gfn)
        if rc == 0:
            m.access = access
        return rc
    if cmd == abi.HVMOP_altp2m_change_gfn:
        c = u.change_gfn
        if c.pad1 or c.pad2:
            return -EINVAL
        return p2m.change_gfn(c.view, c.old_gfn, c.new_gfn)
    if cmd == abi.HVMOP_altp2m_get_p2m_idx:
        g = u.get_vcpu_p2m_idx
        if g.vcpu_id >= len(d.vcpus):
            return -EINVAL
        g.altp2m_idx = d.vcpus[g.vcpu_id].altp2m_idx
        return 0
    if cmd == abi.HVMOP_altp2m_set_visibility:
        s = u.set_visibility
        if s.pad:
            return -EINVAL
        if s.altp2m_idx >= abi.MAX_ALTP2M or s.altp2m_idx and p2m.views[s.altp2m_idx] is None:
            return -EINVAL
        if s.altp2m_idx:
            p2m.views[s.altp2m_idx].visible = bool(s.visible)
        return 0
    return -EOPNOTSUPP


def set_mem_access(d, idx: int, gfn: int, access: int) -> int:
    """p2m_set_mem_access in a view (0: the host's, the domain's MemAccess tracker)."""
    p2m = d.p2m_state
    if access > XENMEM_access_default:
        return -EINVAL
    if idx == 0:
        if p2m.host(gfn).mfn == INVALID_MFN:
            return -EINVAL
        d.mem_access.set_host(gfn, access)
        return 0
    if p2m.view(idx) is None:
        return -EINVAL
    return p2m.set_view_access(idx, gfn, access)


def get_mem_access(d, idx: int, gfn: int):
    p2m = d.p2m_state
    if idx and p2m.view(idx) is None:
        return -EINVAL, 0
    entry = p2m.lookup(idx, gfn)
    if entry.mfn == INVALID_MFN:
        return -ESRCH, 0
    return 0, entry.access


def set_suppress_ve(p2m, idx: int, first: int, last: int, value: bool, multi=None) -> int:
    """p2m_set_suppress_ve(_multi): the #VE suppress bit of each gfn in a view; a gfn with
    no frame is -ESRCH (recorded as first_error by the multi form, which goes on)."""
    if idx and p2m.view(idx) is None:
        return -EINVAL
    for gfn in range(first, last + 1):
        if idx:
            entry = p2m.materialize(idx, gfn)
            rc = -ESRCH if entry is None else 0
            if entry is not None:
                entry.suppress_ve = value
        elif p2m.host(gfn).mfn == INVALID_MFN:
            rc = -ESRCH
        else:
            rc = 0
            if value:
                p2m.host_ve.discard(gfn)
            else:
                p2m.host_ve.add(gfn)
        if rc:
            if multi is None:
                return rc
            if not multi.first_error:
                multi.first_error = rc
    if multi is not None:
        multi.first_gfn = last + 1
    return 0


def get_suppress_ve(p2m, idx: int, gfn: int):
    if idx and p2m.view(idx) is None:
        return -EINVAL, False
    if idx:
        view = p2m.views[idx]
        entry = view.entries.get(gfn)
        if entry is not None:
            return 0, entry.suppress_ve
    if p2m.host(gfn).mfn == INVALID_MFN:
        return -ESRCH, False
    return 0, gfn not in p2m.host_ve
