"""Trap table, callbacks, kernel stack, and the iret hypercall."""
from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import (CALLBACKF_mask_events, CALLBACKOP_register, CALLBACKOP_unregister,
                            CALLBACKTYPE_event, CALLBACKTYPE_failsafe, CALLBACKTYPE_nmi,
                            CALLBACKTYPE_syscall, CALLBACKTYPE_syscall32, CALLBACKTYPE_sysenter,
                            EINVAL, ENOSYS)

TRAP_INFO_SIZE = xen.trap_info.size()


def do_set_trap_table(v, traps, *_):
    """Read trap_info entries until one with address 0; a NULL table clears them all."""
    if traps == 0:
        v.trap_ctxt = [(0, 0)] * 256
        return 0
    for i in range(256):
        ti = v.read_struct(xen.trap_info, traps + i * TRAP_INFO_SIZE)
        if ti.address == 0:
            break
        v.trap_ctxt[ti.vector] = (ti.address, ti.flags)
    return 0


def do_set_callbacks(v, event_address, failsafe_address, syscall_address, *_):
    register_callback(v, CALLBACKTYPE_event, event_address, 0)
    register_callback(v, CALLBACKTYPE_failsafe, failsafe_address, 0)
    register_callback(v, CALLBACKTYPE_syscall, syscall_address, CALLBACKF_mask_events)
    return 0


def register_callback(v, kind, address, flags) -> int:
    if kind == CALLBACKTYPE_event:
        v.event_callback = address
    elif kind == CALLBACKTYPE_failsafe:
        v.failsafe_callback = address
    elif kind == CALLBACKTYPE_syscall:
        v.syscall_callback = address
        v.syscall_disables_events = bool(flags & CALLBACKF_mask_events)
    elif kind in (CALLBACKTYPE_syscall32, CALLBACKTYPE_sysenter, CALLBACKTYPE_nmi):
        v.other_callbacks[kind] = (address, flags)
    else:
        return -EINVAL
    return 0


def do_callback_op(v, cmd, arg, *_):
    if cmd == CALLBACKOP_register:
        reg = v.read_struct(xen.callback_register, arg)
        return register_callback(v, reg.type, reg.address, reg.flags)
    if cmd == CALLBACKOP_unregister:
        unreg = v.read_struct(xen.callback_unregister, arg)
        if unreg.type == CALLBACKTYPE_nmi:
            v.other_callbacks.pop(CALLBACKTYPE_nmi, None)
            return 0
        return -EINVAL                   # event, failsafe and syscall stay registered
    return -ENOSYS


def do_stack_switch(v, ss, rsp, *_):
    v.kernel_ss = ss | 3
    v.kernel_sp = rsp
    return 0


def do_iret(v, *_):
    return v.do_iret()
