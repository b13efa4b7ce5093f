"""HYPERVISOR_vcpu_op: bring vCPUs up and down, and their runstate areas."""
import struct

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EEXIST, EINVAL, ENOENT, ENOSYS
from pvshadow.shadow.hypercall.sched import STIME_DELTA_MAX, s_time


def do_vcpu_op(v, cmd, vcpuid, arg, *_):
    d = v.domain
    if vcpuid >= len(d.vcpus):
        return -ENOENT
    target = d.vcpus[vcpuid]
    if cmd == xen.VCPUOP_initialise:
        if target.initialised:
            return -EEXIST
        return d.initialise_vcpu(target, v.read_struct(xen.vcpu_guest_context, arg))
    if cmd == xen.VCPUOP_up:
        if not target.initialised:
            return -EINVAL
        d.vcpu_up(target)
        return 0
    if cmd == xen.VCPUOP_down:
        d.vcpu_down(target)
        return 0
    if cmd == xen.VCPUOP_is_up:
        return int(target.online)
    if cmd == xen.VCPUOP_get_runstate_info:
        v.copy_to_guest(arg, bytes(target.runstate.info))
        return 0
    if cmd == xen.VCPUOP_register_runstate_memory_area:
        va = struct.unpack('<Q', v.copy_from_guest(arg, 8))[0]
        return target.runstate.register_va(v, va)
    if cmd == xen.VCPUOP_set_singleshot_timer:
        op = v.read_struct(xen.vcpu_set_singleshot_timer, arg)
        if op.flags & xen.VCPU_SSHOTTMR_future and op.timeout_abs_ns < d.now_ns():
            return -xen.ETIME
        target.singleshot = max(0, s_time(op.timeout_abs_ns))     # a past deadline fires now
        d.update_time(target)
        d.reschedule()                    # the run loop counts toward the deadline
        return 0
    if cmd == xen.VCPUOP_stop_singleshot_timer:
        target.singleshot = None
        return 0
    if cmd == xen.VCPUOP_set_periodic_timer:
        period = struct.unpack('<Q', v.copy_from_guest(arg, 8))[0]
        if period < 1000 or period > STIME_DELTA_MAX:
            return -EINVAL
        target.periodic = (period, d.now_ns() + period)
        d.update_time(target)
        d.reschedule()
        return 0
    if cmd == xen.VCPUOP_stop_periodic_timer:
        target.periodic = None
        return 0
    if cmd == xen.VCPUOP_register_runstate_phys_area:
        gpa = struct.unpack('<Q', v.copy_from_guest(arg, 8))[0]
        return target.runstate.register_phys(gpa)
    return -ENOSYS
