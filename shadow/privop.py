"""Privileged instructions from a PV guest, as Xen's emulate_privileged_op treats them.

A PV guest kernel runs at CPL3, so its privileged instructions raise #GP(0) and reach
Xen, which emulates some for it (the guest kernel counts as ring 0 there; user mode
gets the #GP):

- mov from CR0 (the real one, with the guest's TS), CR2 (its last #PF address), CR3 (its
  kernel root, as mfn << 12), CR4 (Xen's virtual one); mov to CR0 changing only TS (as
  fpu_taskswitch), to CR2, to CR3 (a new kernel root, as MMUEXT_NEW_BASEPTR), to CR4; clts;
- rdmsr / wrmsr of the MSRs Xen offers a PV guest (shadow.msr);
- mov from / to DR0-7, with set_debugreg's rules (-ENODEV: #UD, other refusals: #GP);
- wbinvd: nothing to do, no cache is the domain's.

cli and sti, in either guest mode, do nothing when the virtual IOPL allows them (Xen's
priv_op_validate) and keep their #GP otherwise. Anything else keeps its #GP: other CR
bits, hlt. CR4 is Xen's virtual CR4
(guest_cr4): reads show it, writes keep the guest-controlled bits and drop the rest.

Port I/O is different: Unicorn performs it at any privilege level, so the CPU hands each
access here (port_read / port_write) and turns a refusal into the #GP. It is allowed when
the guest's virtual IOPL (PHYSDEVOP_set_iopl) covers its mode: the kernel counts as ring
1 (ring 0 with VMASST_TYPE_architectural_iopl), user mode as ring 3. A domain with no I/O
ports of its own (every domain here) then reads all ones, and its writes go nowhere.
"""
from typing import Optional


from pvshadow.shadow.abi.xen import ENODEV, VMASST_TYPE_architectural_iopl
from pvshadow.shadow.disasm import X86_OP_MEM, X86_OP_REG, decode_one
from pvshadow.shadow.msr import guest_rdmsr, guest_wrmsr
from pvshadow.shadow.paging.x86 import is_canonical
CR0_TS = 1 << 3
TRAP_invalid_op = 6
_MASK64 = (1 << 64) - 1



# --- port I/O ------------------------------------------------------------------------------
def architectural_iopl(domain) -> bool:
    """VMASST_TYPE_architectural_iopl: the kernel is ring 0 for I/O and owns the IOPL in
    the flags it irets with and sees in its frames."""
    return bool(domain.vm_assist >> VMASST_TYPE_architectural_iopl & 1)


def iopl_ok(vcpu) -> bool:
    """Xen's iopl_ok: the virtual IOPL against the guest's ring."""
    if vcpu.kernel_mode:
        ring = 0 if architectural_iopl(vcpu.domain) else 1
    else:
        ring = 3
    return ring <= vcpu.iopl


def port_read(vcpu, port: int, size: int) -> Optional[int]:
    """The value an `in` of size bytes reads, or None for a #GP."""
    if not iopl_ok(vcpu):
        return None
    return (1 << (8 * size)) - 1                 # no port is the domain's: all ones


def port_write(vcpu, port: int, size: int, value: int) -> bool:
    """Whether an `out` may go ahead (to nowhere); False for a #GP."""
    return iopl_ok(vcpu)


def decode(vcpu, rip: int):
    """The guest instruction at rip (capstone, with details), or None."""
    return decode_one(vcpu.emulator.fetch_code(rip), rip)


def sets_ss_shadow(vcpu, rip: int) -> bool:
    """mov ss, x or pop ss: the instruction after it runs in the interrupt shadow."""
    insn = decode(vcpu, rip)
    return insn is not None and insn.mnemonic in ('mov', 'pop') and bool(insn.operands) and \
        insn.operands[0].type == X86_OP_REG and insn.reg_name(insn.operands[0].reg) == 'ss'


_ENTERS_XEN = {'syscall', 'sysenter', 'int', 'int1', 'int3', 'into', 'ud2', 'hlt'}


def enters_xen(vcpu, rip: int) -> bool:
    """Whether the instruction at rip transfers to the hypervisor by its nature."""
    insn = decode(vcpu, rip)
    return insn is None or insn.mnemonic in _ENTERS_XEN


# --- #SS or #GP ------------------------------------------------------------------------------
_STACK_BASES = {'rsp', 'esp', 'rbp', 'ebp'}
_PUSHES = {'push', 'pushfq', 'pushf', 'call'}
_POPS = {'pop', 'popfq', 'popf', 'ret', 'retf', 'iretq', 'iret'}


def non_canonical_stack_access(vcpu, insn) -> bool:
    """Whether the #GP(0) the CPU raised at insn is really the hardware's #SS(0): QEMU
    raises #GP for every non-canonical address, the hardware #SS for one reached through
    the stack segment (a memory operand based on RSP or RBP, or push, pop, call, ret)."""
    cpu = vcpu.cpu
    stack = False
    for op in insn.operands:
        if op.type != X86_OP_MEM:
            continue
        base = insn.reg_name(op.mem.base) if op.mem.base else None
        segment = insn.reg_name(op.mem.segment) if op.mem.segment else None
        if base == 'rip' or segment in ('fs', 'gs'):
            return False                      # RIP-relative, or FS/GS: not the stack
        # (a CS, DS, ES or SS override is ignored in 64-bit mode: the base decides)
        address = (cpu.reg(base) if base else 0) + op.mem.disp
        if op.mem.index:
            address += cpu.reg(insn.reg_name(op.mem.index)) * op.mem.scale
        if not is_canonical(address & _MASK64):
            if base not in _STACK_BASES:
                return False                  # a non-stack operand faults first: #GP
            stack = True
    if stack:
        return True
    rsp = cpu.reg('rsp')
    if insn.mnemonic in _PUSHES:
        return not is_canonical((rsp - 8) & _MASK64)
    if insn.mnemonic in _POPS:
        return not is_canonical(rsp)
    if insn.mnemonic == 'leave':
        return not is_canonical(cpu.reg('rbp'))
    return False


# --- the rest ----------------------------------------------------------------------------
class _Refused(Exception):
    """Not emulated: the guest gets the #GP (or the vector given)."""

    def __init__(self, vector: int = 13):
        self.vector = vector


GP_EMULATED, GP_STACK = 'emulated', 'stack'


def general_protection(vcpu) -> str:
    """After #GP(0), the instruction decoded once: GP_EMULATED (done, or turned into
    another exception for the guest), GP_STACK (the hardware's answer is #SS(0)), or ''
    to deliver the #GP."""
    insn = decode(vcpu, vcpu.cpu.rip)
    if insn is None:
        return ''
    if emulate_privileged_op(vcpu, insn):
        return GP_EMULATED
    return GP_STACK if non_canonical_stack_access(vcpu, insn) else ''


def emulate_privileged_op(vcpu, insn) -> bool:
    """True if the instruction was emulated (RIP moved on) or turned into another
    exception for the guest; False to deliver the #GP. Only cli and sti are looked at in
    guest user mode."""
    cpu = vcpu.cpu
    rip = insn.address
    try:
        if not _emulate(vcpu, insn):
            return False
    except _Refused as refused:
        if refused.vector == 13:
            return False
        vcpu.inject_trap(refused.vector)
        return True
    cpu.rip = rip + insn.size
    return True


def _emulate(vcpu, insn) -> bool:
    cpu = vcpu.cpu
    name = insn.mnemonic
    if name in ('cli', 'sti'):
        # Xen's priv_op_validate: allowed by the virtual IOPL, cli and sti do nothing
        # (Xen leaves the upcall mask alone, "fast & loose"); otherwise the #GP stands.
        return iopl_ok(vcpu)
    if not vcpu.kernel_mode:
        return False
    if name == 'mov' and len(insn.operands) == 2:
        if any(op.type != X86_OP_REG for op in insn.operands):
            return False              # a memory operand (a non-canonical store, say): #GP
        dst, src = (insn.reg_name(op.reg) for op in insn.operands)
        if src[:2] in ('cr', 'dr') and dst[:2] not in ('cr', 'dr'):
            cpu.set_reg(dst, _read_control(vcpu, src))
            return True
        if dst[:2] in ('cr', 'dr'):
            _write_control(vcpu, dst, cpu.reg(src))
            return True
        return False
    if name == 'clts':
        cpu.set_reg('cr0', cpu.reg('cr0') & ~CR0_TS)
        return True
    if name == 'rdmsr':
        value = guest_rdmsr(vcpu, cpu.reg('ecx') & 0xFFFFFFFF)
        if value is None:
            raise _Refused()
        cpu.set_regs(rax=value & 0xFFFFFFFF, rdx=value >> 32)
        return True
    if name == 'wrmsr':
        rax, rcx, rdx = cpu.regs('rax', 'rcx', 'rdx')
        if not guest_wrmsr(vcpu, rcx & 0xFFFFFFFF, (rdx & 0xFFFFFFFF) << 32 | rax & 0xFFFFFFFF):
            raise _Refused()
        return True
    return name == 'wbinvd'


def _read_control(vcpu, reg: str) -> int:
    cpu = vcpu.cpu
    n = int(reg[2:])
    if reg.startswith('dr'):
        value = vcpu.debug.get(n)
        if value == -ENODEV:
            raise _Refused(TRAP_invalid_op)
        return value & _MASK64
    if n == 0:
        return cpu.reg(reg)
    if n == 4:
        return guest_cr4(vcpu.guest_cr4, cpu.reg('cr4'))
    if n == 2:
        return vcpu.cr2()
    if n == 3:
        return vcpu.guest_table << 12
    raise _Refused()


def _write_control(vcpu, reg: str, value: int) -> None:
    cpu = vcpu.cpu
    n = int(reg[2:])
    if reg.startswith('dr'):
        rc = vcpu.debug.set(n, value)
        if rc:
            raise _Refused(TRAP_invalid_op if rc == -ENODEV else 13)
    elif n == 0:
        if (value ^ cpu.reg('cr0')) & ~CR0_TS:
            raise _Refused()                 # only TS may change
        cpu.set_reg('cr0', value)
    elif n == 2:
        vcpu.set_cr2(value)
    elif n == 3:
        if vcpu.set_guest_table(value >> 12, user=False):
            raise _Refused()
    elif n == 4:
        set_guest_cr4(vcpu, value)
    else:
        raise _Refused()


# Xen's virtual CR4 for a PV guest (pv_fixup_guest_cr4): the guest controls TSD, DE,
# FSGSBASE and OSXSAVE (its CPUID policy offers all four here), sees Xen's PAE, MCE,
# OSFXSR and OSXMMEXCPT, and nothing else; a write of any other bit is dropped, not
# refused. Of the guest's bits only FSGSBASE reaches the real CR4 (rd/wr{fs,gs}base #UD
# without it); TSD and DE are kept for the guest to read back (docs/ABI.md).
CR4_TSD, CR4_DE, CR4_PAE, CR4_MCE = 1 << 2, 1 << 3, 1 << 5, 1 << 6
CR4_OSFXSR, CR4_OSXMMEXCPT, CR4_FSGSBASE, CR4_OSXSAVE = 1 << 9, 1 << 10, 1 << 16, 1 << 18
PV_CR4_GUEST_MASK = CR4_TSD | CR4_DE | CR4_FSGSBASE | CR4_OSXSAVE
PV_CR4_GUEST_VISIBLE_MASK = CR4_PAE | CR4_MCE | CR4_OSFXSR | CR4_OSXMMEXCPT


def guest_cr4(guest_bits: int, real_cr4: int) -> int:
    """What mov from CR4 shows a PV guest."""
    return (guest_bits & PV_CR4_GUEST_MASK) | (real_cr4 & PV_CR4_GUEST_VISIBLE_MASK)


def set_guest_cr4(vcpu, value: int) -> None:
    vcpu.guest_cr4 = value & PV_CR4_GUEST_MASK


# rd/wr{fs,gs}base: the real CR4.FSGSBASE stays clear, so each one is #UD and emulated here
# when the guest's virtual CR4 allows it. QEMU's wrfsbase would take a non-canonical base
# the hardware refuses (docs/UNICORN.md item 15); here it is #GP(0), as on Xen.
_FSGSBASE = {'rdfsbase': 'fs_base', 'rdgsbase': 'gs_base',
             'wrfsbase': 'fs_base', 'wrgsbase': 'gs_base'}
_REG64 = {f'e{r}': f'r{r}' for r in ('ax', 'bx', 'cx', 'dx', 'si', 'di', 'bp', 'sp')}
_REG64.update({f'r{n}d': f'r{n}' for n in range(8, 16)})


def emulate_fsgsbase(vcpu, rip: int) -> bool:
    """After #UD: True if the instruction at rip is an rd/wr{fs,gs}base the guest's
    CR4.FSGSBASE allows, now emulated (or turned into its #GP)."""
    if not vcpu.guest_cr4 & CR4_FSGSBASE:
        return False
    insn = decode(vcpu, rip)
    if insn is None or insn.mnemonic not in _FSGSBASE or not insn.operands:
        return False
    cpu = vcpu.cpu
    base = _FSGSBASE[insn.mnemonic]
    name = insn.reg_name(insn.operands[0].reg)
    mask = _MASK64 if name not in _REG64 else 0xFFFFFFFF
    reg = _REG64.get(name, name)
    if insn.mnemonic.startswith('rd'):
        cpu.set_reg(reg, cpu.reg(base) & mask)
    else:
        value = cpu.reg(reg) & mask
        if not is_canonical(value):
            vcpu.inject_trap(13, 0)
            return True
        cpu.set_reg(base, value)
    cpu.rip = rip + insn.size
    return True
