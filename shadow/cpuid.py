"""CPUID as Xen answers it to a PV guest.

A PV kernel asks for its CPUID policy with the forced-emulation prefix, `ud2; .ascii
"xen"; cpuid` (Linux's xen_cpuid, XTF's pv_cpuid): the #UD reaches Xen, which emulates the
cpuid (emulate_forced_invalid_op, guest_cpuid) and resumes after it. Xen's own leaves sit
at 0x40000000 (cpuid_hypervisor_leaves). A bare `cpuid` runs on the CPU, as on hardware
without CPUID faulting.

The other leaves are the CPU model's (Unicorn's), with what Xen's PV policy changes at
leaf 1: the hypervisor bit set; MONITOR, VMX and SMX hidden.
"""
import functools

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
