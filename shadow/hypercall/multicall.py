"""HYPERVISOR_multicall: a batch of hypercalls, each result written back to its entry. A
nested multicall is refused (-EINVAL); an iret is performed and ends the batch, as Xen's
mc_exit."""
from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EINVAL
from pvshadow.shadow.vcpu import NO_RETURN, GuestFault

_ENTRY_SIZE = xen.multicall_entry.size()


def do_multicall(v, call_list, nr_calls, *_):
    """Each entry's result is written back as it completes. A long batch is preempted
    between entries, and an entry that itself needs a continuation has its arguments
    rewritten in place, so the batch resumes at that entry (Xen's do_multicall)."""
    nr_calls &= 0xFFFFFFFF
    for i in range(nr_calls):
        va = call_list + i * _ENTRY_SIZE
        if v.preempt_check(i):
            return v.create_continuation(xen.HYPERVISOR_multicall, va, nr_calls - i)
        entry = v.read_struct(xen.multicall_entry, va)
        if entry.op == xen.HYPERVISOR_multicall:
            result = -EINVAL              # "Multicall reentry is disallowed"
        elif entry.op == xen.HYPERVISOR_iret:
            return _iret_ends_the_batch(v, entry, va)
        else:
            result = v.hypercalls.call(v, entry.op, tuple(entry.args))
        if v.continuation is not None:
            nr, args = v.continuation
            v.continuation = None
            entry.op = nr
            for n, arg in enumerate(args):
                entry.args[n] = arg & 0xFFFFFFFFFFFFFFFF
            v.copy_to_guest(va, bytes(entry))
            return v.create_continuation(xen.HYPERVISOR_multicall, va, nr_calls - i)
        if result is NO_RETURN:
            result = 0
        entry.result = result & 0xFFFFFFFFFFFFFFFF
        v.copy_to_guest(va + xen.multicall_entry.result.offset,
                        entry.result.to_bytes(8, 'little'))
        if v.exit is not None:            # shutdown or crash: stop the batch
            break
    return 0


def _iret_ends_the_batch(v, entry, va):
    """HYPERVISOR_iret inside a batch (pv_do_multicall_call's mc_exit): the iret is
    performed from the frame at the guest's stack pointer, its result (the frame's rax)
    goes back to the entry as best it can, and the batch ends there, the guest resuming
    where the frame says."""
    result = v.hypercalls.call(v, entry.op, tuple(entry.args))
    if result is NO_RETURN:
        result = v.cpu.reg('rax')         # what do_iret restored
    try:
        v.copy_to_guest(va + xen.multicall_entry.result.offset,
                        (result & 0xFFFFFFFFFFFFFFFF).to_bytes(8, 'little'))
    except GuestFault:
        pass                              # Xen: "nothing, best effort only"
    return NO_RETURN
