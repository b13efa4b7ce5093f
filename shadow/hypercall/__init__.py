"""Hypercall dispatch: one explicit table from Xen's hypercall number to its handler.

The table names each handler by its family module and function; a family is imported at
its first call, so a run pays the import of only the families its kernel uses. A
handler takes (vcpu, a1..a6) from rdi, rsi, rdx, r10, r8, r9 and returns the value for
rax (a negative Xen errno on failure) or NO_RETURN when it set the registers itself. A
guest-memory fault inside a handler becomes -EFAULT; an unknown number, -ENOSYS.
"""
import importlib
from typing import Callable, Dict, Tuple, Union

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EFAULT, ENOSYS
from pvshadow.shadow.vcpu import GuestFault

Handler = Union[Callable, Tuple[str, str]]     # a function, or (family, its name) to import


class HypercallTable:
    def __init__(self, handlers: Dict[int, Handler]):
        self.handlers = dict(handlers)

    def call(self, vcpu, nr: int, args):
        handler = self.handlers.get(nr)
        if handler is None:
            return -ENOSYS
        if type(handler) is tuple:
            handler = self.handlers[nr] = resolve(handler)
        try:
            return handler(vcpu, *args)
        except GuestFault:
            return -EFAULT


def resolve(handler: Handler) -> Callable:
    """The function a table entry names (importing its family the first time)."""
    if type(handler) is not tuple:
        return handler
    family, name = handler
    return getattr(importlib.import_module(f'pvshadow.shadow.hypercall.{family}'), name)


def default_handlers() -> Dict[int, Handler]:
    return {
        xen.HYPERVISOR_set_trap_table: ('traps', 'do_set_trap_table'),
        xen.HYPERVISOR_mmu_update: ('mm', 'do_mmu_update'),
        xen.HYPERVISOR_stack_switch: ('traps', 'do_stack_switch'),
        xen.HYPERVISOR_set_callbacks: ('traps', 'do_set_callbacks'),
        xen.HYPERVISOR_memory_op: ('memory', 'do_memory_op'),
        xen.HYPERVISOR_multicall: ('multicall', 'do_multicall'),
        xen.HYPERVISOR_update_va_mapping: ('mm', 'do_update_va_mapping'),
        xen.HYPERVISOR_update_va_mapping_otherdomain: ('mm', 'do_update_va_mapping_otherdomain'),
        xen.HYPERVISOR_domctl: ('domctl', 'do_domctl'),
        xen.HYPERVISOR_sysctl: ('domctl', 'do_sysctl'),
        xen.HYPERVISOR_xen_version: ('version', 'do_xen_version'),
        xen.HYPERVISOR_console_io: ('console', 'do_console_io'),
        xen.HYPERVISOR_vm_assist: ('mm', 'do_vm_assist'),
        xen.HYPERVISOR_iret: ('traps', 'do_iret'),
        xen.HYPERVISOR_mmuext_op: ('mm', 'do_mmuext_op'),
        xen.HYPERVISOR_sched_op: ('sched', 'do_sched_op'),
        xen.HYPERVISOR_callback_op: ('traps', 'do_callback_op'),
        xen.HYPERVISOR_hvm_op: ('hvm', 'do_hvm_op'),
        xen.HYPERVISOR_vcpu_op: ('vcpu', 'do_vcpu_op'),
        xen.HYPERVISOR_event_channel_op: ('event_channel', 'do_event_channel_op'),
        xen.HYPERVISOR_set_segment_base: ('cpu_state', 'do_set_segment_base'),
        xen.HYPERVISOR_fpu_taskswitch: ('cpu_state', 'do_fpu_taskswitch'),
        xen.HYPERVISOR_set_debugreg: ('cpu_state', 'do_set_debugreg'),
        xen.HYPERVISOR_get_debugreg: ('cpu_state', 'do_get_debugreg'),
        xen.HYPERVISOR_physdev_op: ('cpu_state', 'do_physdev_op'),
        xen.HYPERVISOR_grant_table_op: ('grant_table', 'do_grant_table_op'),
        xen.HYPERVISOR_iommu_op: ('iommu', 'do_iommu_op'),
        xen.HYPERVISOR_set_timer_op: ('sched', 'do_set_timer_op'),
        xen.HYPERVISOR_set_gdt: ('descriptors', 'do_set_gdt'),
        xen.HYPERVISOR_update_descriptor: ('descriptors', 'do_update_descriptor'),
    }
