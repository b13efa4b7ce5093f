"""The physical CPU's register access, against the binding's own (generic) calls, and
the exception state a stopped run leaves."""
import ctypes

from unicorn import x86_const as x86

from pvshadow.shadow.abi.xen import FLAT_KERNEL_CS64, FLAT_KERNEL_SS64
from pvshadow.shadow.api import boot
from pvshadow.guests.kernels import load_kernel
from pvshadow.shadow.host import Host
from pvshadow.shadow.listener import Listener
from pvshadow.shadow.paging.x86 import walk


def test_set_regs_writes_what_the_binding_reads_back_and_regs_reads_what_it_wrote():
    cpu = Host(16).cpu
    cpu.set_regs(rax=-1, rcx=0x1234_5678_9ABC_DEF0, r11=0x202)
    assert cpu.uc.reg_read_batch([x86.UC_X86_REG_RAX, x86.UC_X86_REG_RCX, x86.UC_X86_REG_R11]) \
        == (0xFFFF_FFFF_FFFF_FFFF, 0x1234_5678_9ABC_DEF0, 0x202)
    cpu.uc.reg_write(x86.UC_X86_REG_RBX, 7)
    assert cpu.regs('rbx', 'rax') == (7, 0xFFFF_FFFF_FFFF_FFFF)


def test_regs_reads_selectors_as_their_16_bits_every_time():
    d = boot('hello')
    d.run(budget=1)                       # the guest's first instruction, in its kernel
    cpu = d.host.cpu
    cpu.set_regs(rax=0xFFFF_FFFF_FFFF_FFFF)
    selectors = (FLAT_KERNEL_CS64, FLAT_KERNEL_SS64)
    assert cpu.regs('rax', 'cs', 'ss') == (0xFFFF_FFFF_FFFF_FFFF, *selectors)
    assert cpu.regs('cs', 'ss') == selectors == \
        cpu.uc.reg_read_batch([x86.UC_X86_REG_CS, x86.UC_X86_REG_SS])


def _cpu_old_exception(cpu) -> int:
    """QEMU's env->old_exception as the CPU holds it now (a context copy of its own)."""
    offset = ctypes.addressof(cpu._old_exception) - cpu._ctx_base
    ctx = cpu.uc.context_save()                     # kept alive while it is read
    base = ctypes.cast(ctx.context, ctypes.c_void_p).value
    return ctypes.c_int.from_address(base + offset).value


def test_a_run_stopped_in_the_fault_hook_ends_with_no_exception_pending():
    # The stop is asked inside the #PF hook, which cleared old_exception in the CPU; an
    # exit address unmapped in the guest's tables would set it again on the way out
    # (docs/UNICORN.md item 23), and the restart could then not trust the hook's copy.
    d = boot('memaccess', paging='shadow', vm_event_ring=True)
    listener = Listener(d)
    watched = walk(d.mem.read_u64, d.vcpus[0].guest_table,
                   load_kernel('memaccess', extra_symbols=('watched',)).symbols['watched']).mfn
    listener.set_access('rx', watched)
    events = 0
    for event in listener.events(timeout=30):
        assert _cpu_old_exception(d.cpu) == -1
        events += 1
        event.respond(access='rwx')
    assert events == 1 and listener.exit.clean, listener.exit.describe()
