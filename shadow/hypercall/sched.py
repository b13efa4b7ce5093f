"""HYPERVISOR_sched_op (yield, block, poll, shutdown) and HYPERVISOR_set_timer_op."""
import struct

from shadow.abi import xen
from shadow.abi.xen import EINVAL, ENOSYS, SCHEDOP_block, SCHEDOP_shutdown, SCHEDOP_shutdown_code, SCHEDOP_yield


def do_sched_op(v, cmd, arg, *_):
    if cmd == SCHEDOP_yield:
        if any(o is not v and o.online and not o.blocked for o in v.domain.vcpus):
            v.domain.reschedule()
        return 0
    if cmd == SCHEDOP_block:
        # Xen enables event delivery, then blocks unless an event is already pending.
        v.set_upcall_mask(0)
        if not v.upcall_pending():
            v.domain.block(v)
        return 0
    if cmd == xen.SCHEDOP_poll:
        op = v.read_struct(xen.sched_poll, arg)
        ports = struct.unpack(f'<{op.nr_ports}I', v.copy_from_guest(op.ports, 4 * op.nr_ports))
        if any(v.domain.evtchn.is_pending(p) for p in ports):
            return 0
        if op.timeout:
            v.poll_deadline = op.timeout
        v.domain.block(v)                 # unlike block, poll leaves the upcall mask alone
        return 0
    if cmd in (SCHEDOP_shutdown, SCHEDOP_shutdown_code):
        reason = v.read_struct(xen.sched_shutdown, arg).reason
        if reason > xen.SHUTDOWN_soft_reset:
            return -EINVAL
        if cmd == SCHEDOP_shutdown_code:
            v.domain.shutdown_code = reason
            return 0
        v.domain.shutdown(v, reason)
        return 0
    return -ENOSYS


def do_set_timer_op(v, timeout, *_):
    """HYPERVISOR_set_timer_op: the vCPU's single-shot timer (0 stops it)."""
    v.singleshot = timeout or None
    if v.singleshot is not None:
        v.domain.reschedule()             # the run loop counts toward the deadline
    return 0
