"""What a run returns: an exit with a reason, KVM style."""
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Optional


class ExitReason(str, Enum):
    SHUTDOWN = 'shutdown'            # SCHEDOP_shutdown: code says poweroff/reboot/suspend/crash
    CRASH = 'crash'                  # the hypervisor crashed the domain (reason, registers)
    HALT = 'halt'                    # blocked with nothing that could wake it
    VM_EVENT = 'vm_event'            # a request is on the vm_event ring for the listener
    BREAKPOINT = 'breakpoint'        # a tracer or debugger asked to stop
    MMIO = 'mmio'                    # a write to a read-only region, for the device model
    BUDGET = 'budget'                # the instruction budget ran out
    TIMEOUT = 'timeout'              # the wall-clock watchdog fired
    INTERRUPTED = 'interrupted'      # the user asked (Ctrl-C, gdb's interrupt): resumable
    INTERNAL_ERROR = 'internal_error'


@dataclass
class Exit:
    reason: ExitReason
    shutdown_code: Optional[int] = None
    message: str = ''
    registers: dict = field(default_factory=dict)
    mmio: Optional[dict] = None       # address, size, data, direction (mmio exits)
    instruction: bytes = b''          # the bytes at RIP (internal_error exits)

    @property
    def clean(self) -> bool:
        return self.reason is ExitReason.SHUTDOWN and self.shutdown_code == 0

    def describe(self) -> str:
        from pvshadow.shadow.abi.xen import SHUTDOWN_NAMES
        if self.reason is ExitReason.SHUTDOWN:
            text = f'shutdown: {SHUTDOWN_NAMES.get(self.shutdown_code, self.shutdown_code)}'
        else:
            text = self.reason.value
        return f'{text}: {self.message}' if self.message else text


class EventExit(Exit):
    """A VM_EVENT exit whose message is formatted only when read: one is made for every
    request put on a ring, and a listener that answers them rarely reads it."""

    def __init__(self, describe: Callable[..., str], *args):
        self.reason = ExitReason.VM_EVENT
        self.registers = {}
        self._describe = (describe, args)

    @property
    def message(self) -> str:
        describe, args = self._describe
        return describe(*args)


def interrupted(registers: dict) -> Exit:
    """The user stopped the guest (Ctrl-C, a debugger's interrupt): it can go on."""
    return Exit(ExitReason.INTERRUPTED, message='interrupted', registers=registers)


def format_registers(regs: dict) -> str:
    names = [n for n in ('rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10',
                         'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags', 'cs', 'ss', 'cr2', 'cr3')
             if n in regs]
    cells = [f'{n:>6}={regs[n]:016x}' for n in names]
    return '\n'.join('  '.join(cells[i:i + 4]) for i in range(0, len(cells), 4))


class GuestFault(Exception):
    """A hypervisor access to guest memory failed (the hypercall returns -EFAULT)."""


class NoReturn:
    """A hypercall that set the guest's registers itself (iret, a bounce): no rax write."""


NO_RETURN = NoReturn()
