"""HYPERVISOR_sched_op (yield, block, poll, shutdown) and HYPERVISOR_set_timer_op."""
import struct

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EINVAL, ENOSYS, SCHEDOP_block, SCHEDOP_shutdown, SCHEDOP_shutdown_code, SCHEDOP_yield

SCHED_POLL_MAX_PORTS = 128                # Xen refuses to poll more (-EINVAL)
STIME_MAX = (1 << 63) - 1                 # s_time_t's largest value
STIME_DELTA_MAX = (1 << 62) - 1
HUGE_TIMEOUT_NS = 100_000_000


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
        if op.nr_ports > SCHED_POLL_MAX_PORTS:
            return -EINVAL
        ports = struct.unpack(f'<{op.nr_ports}I', v.copy_from_guest(op.ports, 4 * op.nr_ports))
        ec = v.domain.evtchn
        if not all(ec.port_is_valid(p) for p in ports):
            return -EINVAL
        if any(ec.is_pending(p) for p in ports):
            return 0
        if op.timeout:
            v.poll_deadline = max(0, s_time(op.timeout))
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


def s_time(value: int) -> int:
    """A guest's 64-bit time as Xen's signed s_time_t (a deadline "before 1970" is past)."""
    return value - (1 << 64) if value >> 63 else value


def do_set_timer_op(v, timeout, *_):
    """HYPERVISOR_set_timer_op: the vCPU's single-shot timer (0 stops it). A timeout
    wrapped negative or absurdly far ahead fires in 100 ms instead (Xen's Linux
    workaround)."""
    if not timeout:
        v.singleshot = None
        return 0
    now = v.domain.now_ns()
    deadline = s_time(timeout)
    if deadline < 0 or deadline - now >= STIME_MAX >> 2:
        deadline = now + HUGE_TIMEOUT_NS
    v.singleshot = deadline
    v.domain.reschedule()                 # the run loop counts toward the deadline
    return 0
