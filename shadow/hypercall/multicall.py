"""HYPERVISOR_multicall: a batch of hypercalls, each result written back to its entry."""
from shadow.abi import xen
from shadow.abi.xen import EINVAL

_ENTRY_SIZE = xen.multicall_entry.size()
_NOT_IN_MULTICALL = (xen.HYPERVISOR_iret, xen.HYPERVISOR_multicall)


def do_multicall(v, call_list, nr_calls, *_):
    for i in range(nr_calls):
        va = call_list + i * _ENTRY_SIZE
        entry = v.read_struct(xen.multicall_entry, va)
        if entry.op in _NOT_IN_MULTICALL:
            result = -EINVAL
        else:
            result = v.hypercalls.call(v, entry.op, tuple(entry.args))
        entry.result = result & 0xFFFFFFFFFFFFFFFF
        v.copy_to_guest(va + xen.multicall_entry.result.offset,
                        entry.result.to_bytes(8, 'little'))
        if v.exit is not None:            # shutdown or crash: stop the batch
            break
    return 0
