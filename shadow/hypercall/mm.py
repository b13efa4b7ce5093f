"""Page-table hypercalls: mmu_update, update_va_mapping, mmuext_op, vm_assist.

Each delegates the page-table work to the domain's paging mode (direct or shadow), so the
same guest sees the same results in both.
"""
import struct

from shadow.abi import xen
from shadow.abi.xen import EINVAL, ENOSYS, ESRCH
from shadow.segments import set_ldt
from shadow.vcpu import GuestFault


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


def do_mmu_update(v, ureqs, count, pdone, foreigndom, *_):
    if not v.domid_ok(foreigndom):
        return -ESRCH
    count, done = _start_done(v, count, pdone)
    paging = v.domain.paging
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
            rc = paging.pt_update(req.ptr & ~7, req.val,
                                  preserve_ad=cmd == xen.MMU_PT_UPDATE_PRESERVE_AD)
        elif cmd == xen.MMU_MACHPHYS_UPDATE:
            rc = v.domain.machphys_update(req.ptr >> 12, req.val)
        else:
            rc = -ENOSYS
        if rc:
            break
    else:
        i = count
    _report_done(v, pdone, done + i)
    return rc


def do_update_va_mapping(v, va, val, flags, *_):
    if not guest_addr_ok(va):
        return -EINVAL                    # __addr_ok: non-canonical, or the hypervisor's
    paging = v.domain.paging
    rc = paging.update_va_mapping(v.current_table(), va, val)
    if rc:
        return rc
    flush = flags & xen.UVMF_FLUSHTYPE_MASK
    if flush == xen.UVMF_TLB_FLUSH:
        v.domain.flush_tlb()
    elif flush == xen.UVMF_INVLPG:
        paging.invlpg(va)
    return 0


def do_mmuext_op(v, uops, count, pdone, foreigndom, *_):
    if not v.domid_ok(foreigndom):
        return -ESRCH
    count, done = _start_done(v, count, pdone)
    rc = 0
    i = 0
    for i in range(count):
        if v.preempt_check(i):
            _report_done(v, pdone, done + i)
            return v.create_continuation(xen.HYPERVISOR_mmuext_op, uops + i * _MMUEXT_OP_SIZE,
                                         (count - i) | MMU_UPDATE_PREEMPTED, pdone, foreigndom)
        op = v.read_struct(xen.mmuext_op, uops + i * _MMUEXT_OP_SIZE)
        rc = mmuext_one(v, op)
        if rc:
            break
    else:
        i = count
    _report_done(v, pdone, done + i)
    return rc


def mmuext_one(v, op) -> int:
    paging = v.domain.paging
    cmd = op.cmd
    if xen.MMUEXT_PIN_L1_TABLE <= cmd <= xen.MMUEXT_PIN_L4_TABLE:
        return paging.pin(op.arg1, cmd - xen.MMUEXT_PIN_L1_TABLE)
    if cmd == xen.MMUEXT_UNPIN_TABLE:
        return paging.unpin(op.arg1)
    if cmd == xen.MMUEXT_NEW_BASEPTR:
        return v.set_guest_table(op.arg1, user=False)
    if cmd == xen.MMUEXT_NEW_USER_BASEPTR:
        return v.set_guest_table(op.arg1, user=True)
    if cmd in (xen.MMUEXT_TLB_FLUSH_LOCAL, xen.MMUEXT_TLB_FLUSH_MULTI, xen.MMUEXT_TLB_FLUSH_ALL):
        v.domain.flush_tlb()
        return 0
    if cmd in (xen.MMUEXT_INVLPG_LOCAL, xen.MMUEXT_INVLPG_MULTI, xen.MMUEXT_INVLPG_ALL):
        paging.invlpg(op.arg1)
        return 0
    if cmd in (xen.MMUEXT_FLUSH_CACHE, xen.MMUEXT_FLUSH_CACHE_GLOBAL):
        return 0                          # no caches to write back
    if cmd == xen.MMUEXT_SET_LDT:
        return set_ldt(v, op.arg1, op.arg2)
    if cmd == xen.MMUEXT_CLEAR_PAGE:
        return v.domain.clear_page(op.arg1)
    if cmd == xen.MMUEXT_COPY_PAGE:
        return v.domain.copy_page(op.arg1, op.arg2)
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
