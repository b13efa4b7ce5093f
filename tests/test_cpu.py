"""The physical CPU's register access, against the binding's own (generic) calls."""
from unicorn import x86_const as x86

from pvshadow.shadow.abi.xen import FLAT_KERNEL_CS64, FLAT_KERNEL_SS64
from pvshadow.shadow.api import boot
from pvshadow.shadow.host import Host


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
