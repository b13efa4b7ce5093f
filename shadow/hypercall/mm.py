"""Page-table hypercalls: mmu_update, update_va_mapping, mmuext_op, vm_assist.

Each delegates the page-table work to the domain's paging mode (direct or shadow), so the
same guest sees the same results in both.
"""
import struct

from pvshadow.shadow.abi import xen
from pvshadow.shadow import xsm
from pvshadow.shadow.abi.xen import EINVAL, ENOSYS, EOPNOTSUPP, EPERM, ESRCH
from pvshadow.shadow.segments import set_ldt
from pvshadow.shadow.vcpu import GuestFault


def guest_addr_ok(va: int) -> bool:
    """Xen's __addr_ok for a 64-bit PV guest: below the canonical hole, or above the
    hypervisor's area."""
    return va < 1 << 47 or xen.HYPERVISOR_VIRT_END <= va < 1 << 64

MMU_UPDATE_PREEMPTED = 1 << 31
_MMU_UPDATE_SIZE = xen.mmu_update.size()
_MMUEXT_OP_SIZE = xen.mmuext_op.size()


def _start_done(v, count, pdone) -> tuple:
    """(count, done so far): a continuation carries the count left with
    MMU_UPDATE_PREEMPTED and the count done so far in *pdone."""
    if not count & MMU_UPDATE_PREEMPTED:
        return count, 0
    done = 0
    if pdone:
        try:
            done = struct.unpack('<I', v.copy_from_guest(pdone, 4))[0]
        except GuestFault:
            pass                          # Xen ignores a failed read of the count too
    return count & ~MMU_UPDATE_PREEMPTED & 0xFFFFFFFF, done


def _report_done(v, pdone, done):
    """The count done goes back through pdone; as in Xen, a failed copy is ignored (the
    updates stand and the hypercall's own result is returned)."""
    if pdone:
        try:
            v.copy_to_guest(pdone, struct.pack('<I', done & 0xFFFFFFFF))
        except GuestFault:
            pass


def _owners(v, foreigndom):
    """(pt_owner, pg_owner) for mmu_update's foreigndom, or (None, None) for -ESRCH: the
    low 16 bits name the owner of the frames the new entries map (get_pg_owner), the high
    16 bits, if set, the owner of the page tables plus one."""
    host, d = v.domain.host, v.domain
    pt_owner = d
    if foreigndom >> 16:
        pt_owner = xsm.lookup_domain(host, d, (foreigndom >> 16) - 1)
        if pt_owner is None:
            return None, None
    return pt_owner, xsm.get_pg_owner(host, d, foreigndom & 0xFFFF)


def _may_update(d, pt_owner, pg_owner) -> int:
    """xsm_mmu_update(XSM_TARGET, d, pt_owner, pg_owner)."""
    return xsm.default_action(xsm.XSM_TARGET, d, pg_owner) or \
        xsm.default_action(xsm.XSM_TARGET, d, pt_owner)


def do_mmu_update(v, ureqs, count, pdone, foreigndom, *_):
    foreigndom &= 0xFFFFFFFF              # an unsigned int in Xen's prototype
    pt_owner, pg_owner = _owners(v, foreigndom)
    if pg_owner is None:
        return -ESRCH
    count, done = _start_done(v, count, pdone)
    d = v.domain
    foreign = pt_owner is not d or pg_owner is not d
    rc = 0
    i = 0
    for i in range(count):
        if v.preempt_check(i):
            _report_done(v, pdone, done + i)
            return v.create_continuation(xen.HYPERVISOR_mmu_update, ureqs + i * _MMU_UPDATE_SIZE,
                                         (count - i) | MMU_UPDATE_PREEMPTED, pdone, foreigndom)
        req = v.read_struct(xen.mmu_update, ureqs + i * _MMU_UPDATE_SIZE)
        cmd = req.ptr & 7
        if cmd in (xen.MMU_NORMAL_PT_UPDATE, xen.MMU_PT_UPDATE_PRESERVE_AD):
            rc = foreign and _may_update(d, pt_owner, pg_owner)
            if not rc:
                rc = pt_owner.paging.pt_update(req.ptr & ~7, req.val,
                                               preserve_ad=cmd == xen.MMU_PT_UPDATE_PRESERVE_AD,
                                               pg_owner=pg_owner.domid if foreign else None)
        elif cmd == xen.MMU_MACHPHYS_UPDATE:
            rc = pg_owner is not d and xsm.default_action(xsm.XSM_TARGET, d, pg_owner)
            if not rc:
                rc = pg_owner.machphys_update(req.ptr >> 12, req.val)
        else:
            rc = -ENOSYS
        if rc:
            break
    else:
        i = count
    _report_done(v, pdone, done + i)
    return rc


def do_update_va_mapping(v, va, val, flags, *_):
    return _update_va_mapping(v, va, val, flags, v.domain)


def do_update_va_mapping_otherdomain(v, va, val, flags, domid, *_):
    """The L1 entry is the caller's; the frame it maps is domid's (a foreign mapping, for
    a domain the XSM policy lets map domid's memory)."""
    pg_owner = xsm.get_pg_owner(v.domain.host, v.domain, domid & 0xFFFF)     # a domid_t
    if pg_owner is None:
        return -ESRCH
    return _update_va_mapping(v, va, val, flags, pg_owner)


def _update_va_mapping(v, va, val, flags, pg_owner):
    if not guest_addr_ok(va):
        return -EINVAL                    # __addr_ok: non-canonical, or the hypervisor's
    d = v.domain
    if pg_owner is not d:
        rc = xsm.default_action(xsm.XSM_TARGET, d, pg_owner)
        if rc:
            return rc
    paging = d.paging
    rc = paging.update_va_mapping(v.current_table(), va, val,
                                  pg_owner=None if pg_owner is d else pg_owner.domid)
    if rc:
        return rc
    flush = flags & xen.UVMF_FLUSHTYPE_MASK
    if flush == xen.UVMF_TLB_FLUSH:
        d.flush_tlb()
    elif flush == xen.UVMF_INVLPG:
        paging.invlpg(va)
    return 0


def do_mmuext_op(v, uops, count, pdone, foreigndom, *_):
    d = v.domain
    pg_owner = xsm.get_pg_owner(d.host, d, foreigndom & 0xFFFF)      # as get_pg_owner's domid_t
    if pg_owner is None:
        return -ESRCH
    if pg_owner is not d:
        rc = xsm.default_action(xsm.XSM_TARGET, d, pg_owner)      # xsm_mmuext_op
        if rc:
            return rc
    count, done = _start_done(v, count, pdone)
    rc = 0
    i = 0
    for i in range(count):
        if v.preempt_check(i):
            _report_done(v, pdone, done + i)
            return v.create_continuation(xen.HYPERVISOR_mmuext_op, uops + i * _MMUEXT_OP_SIZE,
                                         (count - i) | MMU_UPDATE_PREEMPTED, pdone, foreigndom)
        op = v.read_struct(xen.mmuext_op, uops + i * _MMUEXT_OP_SIZE)
        rc = mmuext_one(v, op, pg_owner)
        if rc:
            break
    else:
        i = count
    _report_done(v, pdone, done + i)
    return rc


# Commands that act on the caller's own vCPU or address space: Xen refuses them -EPERM
# when a foreign page owner is named.
_OWN_ONLY = (xen.MMUEXT_NEW_BASEPTR, xen.MMUEXT_NEW_USER_BASEPTR, xen.MMUEXT_SET_LDT)


def mmuext_one(v, op, pg_owner=None) -> int:
    d = v.domain
    owner = pg_owner or d
    paging = d.paging
    cmd = op.cmd
    if owner is not d and cmd in _OWN_ONLY:
        return -EPERM
    if xen.MMUEXT_PIN_L1_TABLE <= cmd <= xen.MMUEXT_PIN_L4_TABLE:
        return owner.paging.pin(op.arg1, cmd - xen.MMUEXT_PIN_L1_TABLE)
    if cmd == xen.MMUEXT_UNPIN_TABLE:
        return owner.paging.unpin(op.arg1)
    if cmd == xen.MMUEXT_NEW_BASEPTR:
        return v.set_guest_table(op.arg1, user=False)
    if cmd == xen.MMUEXT_NEW_USER_BASEPTR:
        return v.set_guest_table(op.arg1, user=True)
    if cmd in (xen.MMUEXT_TLB_FLUSH_LOCAL, xen.MMUEXT_TLB_FLUSH_MULTI, xen.MMUEXT_TLB_FLUSH_ALL):
        d.flush_tlb()
        return 0
    if cmd in (xen.MMUEXT_INVLPG_LOCAL, xen.MMUEXT_INVLPG_MULTI, xen.MMUEXT_INVLPG_ALL):
        paging.invlpg(op.arg1)
        return 0
    if cmd in (xen.MMUEXT_FLUSH_CACHE, xen.MMUEXT_FLUSH_CACHE_GLOBAL):
        return 0                          # no caches to write back
    if cmd == xen.MMUEXT_SET_LDT:
        return set_ldt(v, op.arg1, op.arg2)
    if cmd == xen.MMUEXT_CLEAR_PAGE:
        return owner.clear_page(op.arg1)
    if cmd == xen.MMUEXT_COPY_PAGE:
        return owner.copy_page(op.arg1, op.arg2)
    if cmd in (xen.MMUEXT_MARK_SUPER, xen.MMUEXT_UNMARK_SUPER):
        return -EOPNOTSUPP                # superpage tracking went with Xen 4.19's PV superpages
    return -ENOSYS


def do_vm_assist(v, cmd, kind, *_):
    if kind >= 64 or not (xen.VM_ASSIST_VALID_PV64 >> kind) & 1:
        return -EINVAL
    if cmd == xen.VMASST_CMD_enable:
        v.domain.vm_assist |= 1 << kind
        return 0
    if cmd == xen.VMASST_CMD_disable:
        v.domain.vm_assist &= ~(1 << kind)
        return 0
    return -ENOSYS
