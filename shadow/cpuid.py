"""CPUID as Xen answers it to a PV guest.

A PV kernel asks for its CPUID policy with the forced-emulation prefix, `ud2; .ascii
"xen"; cpuid` (Linux's xen_cpuid, XTF's pv_cpuid): the #UD reaches Xen, which emulates the
cpuid (emulate_forced_invalid_op, guest_cpuid) and resumes after it. Xen's own leaves sit
at 0x40000000 (cpuid_hypervisor_leaves). A bare `cpuid` runs on the CPU, as on hardware
without CPUID faulting.

The other leaves are the CPU model's (Unicorn's), with what Xen's PV policy changes at
leaf 1: the hypervisor bit set; MONITOR, VMX and SMX hidden.

CPUID faulting: Xen offers it to every PV guest (MSR_INTEL_PLATFORM_INFO bit 31, enabled
per vCPU in MSR_INTEL_MISC_FEATURES_ENABLES, shadow.msr). With it on, a bare cpuid traps to
Xen: from guest user mode it is #GP(0), from the guest kernel it is emulated with the
policy (pv_emul_cpuid), so the kernel sees Xen's leaves too. A forced-emulation cpuid from
guest user mode is #GP(0) at the cpuid too (emulate_forced_invalid_op).
"""
import functools

from pvshadow.shadow.abi.xen import XEN_MAJOR, XEN_MINOR

from unicorn import UC_ARCH_X86, UC_MODE_64, Uc
from unicorn import x86_const as x86

FORCED_EMULATION_PREFIX = b'\x0f\x0bxen'     # ud2 ; .ascii "xen"
CPUID_INSN = b'\x0f\xa2'
XEN_CPUID_FIRST_LEAF = 0x40000000
XEN_CPUID_MAX_NUM_LEAVES = 5
XEN_CPUID_SIGNATURE = (0x566E6558, 0x65584D4D, 0x4D4D566E)     # "XenV" "MMXe" "nVMM"
XEN_CPUID_FEAT1_MMU_PT_UPDATE_PRESERVE_AD = 1 << 0
XEN_MSR_BASE = 0x40000000                    # where an HVM guest writes the hypercall page MSR
_LEAF1_ECX_HIDDEN = (1 << 3) | (1 << 5) | (1 << 6)   # MONITOR, VMX, SMX
_LEAF1_ECX_HYPERVISOR = 1 << 31
_MASK32 = 0xFFFFFFFF


@functools.lru_cache(maxsize=256)
def cpu_model_cpuid(leaf: int, subleaf: int) -> tuple:
    """What `cpuid` returns on the CPU model the guest runs on (a scratch Unicorn)."""
    uc = _scratch()
    uc.reg_write(x86.UC_X86_REG_RAX, leaf)
    uc.reg_write(x86.UC_X86_REG_RCX, subleaf)
    uc.emu_start(0, len(CPUID_INSN))
    return tuple(uc.reg_read(r) & _MASK32 for r in (x86.UC_X86_REG_RAX, x86.UC_X86_REG_RBX,
                                                    x86.UC_X86_REG_RCX, x86.UC_X86_REG_RDX))


@functools.lru_cache(maxsize=1)
def _scratch() -> Uc:
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0, 0x1000)
    uc.mem_write(0, CPUID_INSN)
    return uc


def xen_leaf(index: int, subleaf: int, version: tuple, machine_address_bits: int) -> tuple:
    """Leaf 0x40000000 + index, as Xen fills them for a PV domain."""
    if index == 0:
        return (XEN_CPUID_FIRST_LEAF + XEN_CPUID_MAX_NUM_LEAVES,) + XEN_CPUID_SIGNATURE
    if index == 1:
        major, minor = version
        return ((major << 16) | minor, 0, 0, 0)
    if index == 2:
        return (1, XEN_MSR_BASE, XEN_CPUID_FEAT1_MMU_PT_UPDATE_PRESERVE_AD, 0)
    if index == 5 and subleaf == 0:
        return (0, machine_address_bits, 0, 0)      # PV: the widest machine address
    return (0, 0, 0, 0)                              # TSC mode 0, HVM leaf, beyond the limit


def guest_cpuid(leaf: int, subleaf: int, version: tuple, machine_address_bits: int) -> tuple:
    leaf &= _MASK32
    subleaf &= _MASK32
    if XEN_CPUID_FIRST_LEAF <= leaf < XEN_CPUID_FIRST_LEAF + 0x10000:
        return xen_leaf(leaf - XEN_CPUID_FIRST_LEAF, subleaf, version, machine_address_bits)
    a, b, c, d = cpu_model_cpuid(leaf, subleaf)
    if leaf == 1:
        c = (c & ~_LEAF1_ECX_HIDDEN) | _LEAF1_ECX_HYPERVISOR
    return (a, b, c, d)


def emulate_cpuid(vcpu) -> None:
    """The policy's answer for rax/rcx into rax, rbx, rcx, rdx."""
    cpu = vcpu.cpu
    leaf, subleaf = cpu.regs('rax', 'rcx')
    mem_bits = (vcpu.domain.mem.size - 1).bit_length()
    a, b, c, d = guest_cpuid(leaf, subleaf, (XEN_MAJOR, XEN_MINOR), mem_bits)
    cpu.set_regs(rax=a, rbx=b, rcx=c, rdx=d)


def on_cpuid(vcpu) -> bool:
    """A bare cpuid about to run; True when the hypervisor took it (the CPU skips it)."""
    if not vcpu.cpuid_faulting:
        return False                  # the CPU model answers, as without faulting
    if vcpu.kernel_mode:
        emulate_cpuid(vcpu)
        return True
    # #GP(0) on the cpuid: delivered before the next instruction runs (PhysicalCpu.
    # watch_user_instructions), the only point where a hook can redirect the CPU.
    vcpu.pending_gp_rip = vcpu.cpu.rip
    return True


def deliver_pending_gp(vcpu) -> bool:
    """Before the instruction after a faulting cpuid: the guest's #GP, at the cpuid."""
    rip = vcpu.pending_gp_rip
    if rip is None:
        return False
    vcpu.pending_gp_rip = None
    vcpu.cpu.rip = rip
    vcpu.inject_trap(13, 0)
    return True
