"""The MSRs a PV guest kernel may read and write, as Xen answers them.

A PV kernel runs at CPL3, so rdmsr and wrmsr raise #GP(0) and reach Xen's
emulate_privileged_op, which asks guest_rdmsr / guest_wrmsr (xen/arch/x86/msr.c) and then
the PV list of read_msr / write_msr (xen/arch/x86/pv/emul-priv-op.c). The CPU model here
is Intel's (Unicorn's default), so Xen's Intel branches apply and the AMD-only MSRs #GP.

guest_rdmsr returns the value, or None for the #GP; guest_wrmsr returns False for the
#GP. A write Xen calls "invalid" (a different MISC_ENABLE, say) is dropped, not refused.
Xen's "faking RDMSR" of MSRs the hardware has, for a guest without a #GP handler, is not
modelled: an MSR outside this list always #GPs (docs/ABI.md).
"""
from typing import Optional

from pvshadow.shadow.paging.x86 import is_canonical

MSR_IA32_TSC = 0x10
MSR_IA32_PLATFORM_ID = 0x17
MSR_APIC_BASE = 0x1B
MSR_IA32_FEATURE_CONTROL = 0x3A
MSR_INTEL_PLATFORM_INFO = 0xCE
MSR_IA32_MPERF, MSR_IA32_APERF = 0xE7, 0xE8
MSR_INTEL_MISC_FEATURES_ENABLES = 0x140
MSR_IA32_PERF_STATUS, MSR_IA32_PERF_CTL = 0x198, 0x199
MSR_IA32_THERM_CONTROL, MSR_IA32_THERM_STATUS = 0x19A, 0x19C
MSR_IA32_MISC_ENABLE = 0x1A0
MSR_IA32_ENERGY_PERF_BIAS = 0x1B0
MSR_IA32_DEBUGCTLMSR = 0x1D9
MSR_IA32_CR_PAT = 0x277
MSR_IA32_PERF_CAPABILITIES = 0x345
MSR_EFER = 0xC0000080
MSR_FS_BASE, MSR_GS_BASE, MSR_SHADOW_GS_BASE = 0xC0000100, 0xC0000101, 0xC0000102

APIC_DEFAULT_PHYS_BASE = 0xFEE00000
APIC_BASE_BSP, APIC_BASE_ENABLE = 1 << 8, 1 << 11
IA32_FEATURE_CONTROL_LOCK = 1 << 0
PLATFORM_INFO_CPUID_FAULTING = 1 << 31         # Xen offers CPUID faulting to every PV guest
MISC_FEATURES_CPUID_FAULTING = 1 << 0
XEN_MSR_PAT = 0x0000050100070406
# guest_misc_enable over the CPU's FAST_STRING default: PERF_AVAIL and MONITOR_ENABLE hidden,
# BTS_UNAVAIL, PEBS_UNAVAIL and XTPR_DISABLE shown.
GUEST_MISC_ENABLE = (1 << 0) | (1 << 11) | (1 << 12) | (1 << 23)

# Reads that are zero for a PV guest (PERF_CAPABILITIES: no extra capabilities; the
# P-state and thermal MSRs read as zero outside a cpufreq controller).
_READ_AS_ZERO = {MSR_IA32_PERF_CAPABILITIES, MSR_IA32_PERF_STATUS, MSR_IA32_PERF_CTL,
                 MSR_IA32_THERM_STATUS, MSR_IA32_PLATFORM_ID}
# Writes Xen accepts and drops for a guest that is not the cpufreq controller or a pinned
# hardware domain.
_WRITE_IGNORED = {MSR_IA32_MPERF, MSR_IA32_APERF, MSR_IA32_THERM_CONTROL,
                  MSR_IA32_ENERGY_PERF_BIAS}


def guest_rdmsr(vcpu, msr: int) -> Optional[int]:
    cpu = vcpu.cpu
    if msr == MSR_FS_BASE:
        return cpu.reg('fs_base')
    if msr == MSR_GS_BASE:
        return cpu.reg('gs_base')
    if msr == MSR_SHADOW_GS_BASE:
        return vcpu.gs_base_other
    if msr == MSR_EFER:
        return cpu.efer()
    if msr == MSR_INTEL_PLATFORM_INFO:
        return PLATFORM_INFO_CPUID_FAULTING
    if msr == MSR_INTEL_MISC_FEATURES_ENABLES:
        return MISC_FEATURES_CPUID_FAULTING if vcpu.cpuid_faulting else 0
    if msr == MSR_APIC_BASE:
        return APIC_DEFAULT_PHYS_BASE | APIC_BASE_ENABLE | (0 if vcpu.vcpu_id else APIC_BASE_BSP)
    if msr == MSR_IA32_FEATURE_CONTROL:
        return IA32_FEATURE_CONTROL_LOCK            # VMX is hidden from the policy
    if msr == MSR_IA32_CR_PAT:
        return XEN_MSR_PAT
    if msr == MSR_IA32_MISC_ENABLE:
        return GUEST_MISC_ENABLE
    if msr == MSR_IA32_TSC:
        return cpu.read_tsc()
    if msr in _READ_AS_ZERO:
        return 0
    return None                       # DEBUGCTL among them, as Xen 4.19 answers


def guest_wrmsr(vcpu, msr: int, value: int) -> bool:
    cpu = vcpu.cpu
    if msr in (MSR_FS_BASE, MSR_GS_BASE, MSR_SHADOW_GS_BASE):
        if not is_canonical(value):
            return False
        if msr == MSR_SHADOW_GS_BASE:
            vcpu.gs_base_other = value
        else:
            cpu.set_reg('fs_base' if msr == MSR_FS_BASE else 'gs_base', value)
        return True
    if msr == MSR_EFER:
        return value == cpu.efer()    # Linux writes back the value it read
    if msr == MSR_INTEL_MISC_FEATURES_ENABLES:
        if value & ~MISC_FEATURES_CPUID_FAULTING:
            return False
        vcpu.set_cpuid_faulting(bool(value & MISC_FEATURES_CPUID_FAULTING))
        return True
    if msr == MSR_IA32_MISC_ENABLE or msr in _WRITE_IGNORED:
        return True                   # a different MISC_ENABLE is "invalid": dropped
    return False                      # PLATFORM_INFO is read-only; the rest unknown
