# msrs: the MSRs Xen offers a 64-bit PV guest, and CPUID faulting.
# - MSR_INTEL_PLATFORM_INFO reads with bit 31 (CPUID faulting available); writing it #GPs.
# - MSR_INTEL_MISC_FEATURES_ENABLES reads 0; a reserved bit #GPs; bit 0 turns faulting on.
# - APIC_BASE reads 0xfee00900 on vCPU 0, CR_PAT Xen's PAT, MISC_ENABLE Xen's guest value
#   (and a different value written is dropped, not refused); DEBUGCTL #GPs.
# - With faulting on, a kernel cpuid is emulated with Xen's policy (leaf 0x40000000 says
#   "XenVMMXenVMM"), and a user-mode cpuid is #GP(0) at the cpuid itself, which here is
#   not the first instruction of its block; the user program then goes on after it.
#   A forced-emulation cpuid from user mode is #GP(0) at the cpuid after the prefix.
# - With faulting off again, the user's cpuid runs.
# Any other value, a missing fault or a wrong RIP is a FAILURE.
.include "pv.inc"
.include "userspace.inc"

.equ MSR_APIC_BASE, 0x1b
.equ MSR_PLATFORM_INFO, 0xce
.equ MSR_MISC_FEATURES, 0x140
.equ MSR_MISC_ENABLE, 0x1a0
.equ MSR_DEBUGCTL, 0x1d9
.equ MSR_CR_PAT, 0x277
.equ XEN_MSR_PAT_LO, 0x00070406
.equ XEN_MSR_PAT_HI, 0x00000501
.equ GUEST_MISC_ENABLE, 0x801801
.equ VGCF_in_syscall, 0x100

# rdmsr_to(ecx = msr) -> rax: edx:eax
rdmsr64:
    push rdx
    rdmsr
    shl rdx, 32
    or rax, rdx
    pop rdx
    ret

test_main:
    call user_space_tables
    mov ecx, MSR_PLATFORM_INFO
    call rdmsr64
    mov rdi, rax
    mov esi, 0x80000000
    lea rdx, [rip + m_platform_info]
    call check_eq

    mov ecx, MSR_MISC_FEATURES
    call rdmsr64
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_misc_features]
    call check_eq

    lea rdi, [rip + after_wr_platform]
    call expect_fault
    mov ecx, MSR_PLATFORM_INFO
    xor eax, eax
    xor edx, edx
    wrmsr
after_wr_platform:
    mov rdi, [rip + fault_vector]
    mov esi, 13
    lea rdx, [rip + m_wr_platform]
    call check_eq

    lea rdi, [rip + after_wr_reserved]
    call expect_fault
    mov ecx, MSR_MISC_FEATURES
    mov eax, 2
    xor edx, edx
    wrmsr
after_wr_reserved:
    mov rdi, [rip + fault_vector]
    mov esi, 13
    lea rdx, [rip + m_wr_reserved]
    call check_eq

    lea rdi, [rip + after_debugctl]
    call expect_fault
    mov ecx, MSR_DEBUGCTL
    rdmsr
after_debugctl:
    mov rdi, [rip + fault_vector]
    mov esi, 13
    lea rdx, [rip + m_debugctl]
    call check_eq

    mov ecx, MSR_APIC_BASE
    call rdmsr64
    mov rdi, rax
    mov esi, 0xfee00900
    lea rdx, [rip + m_apic_base]
    call check_eq

    mov ecx, MSR_CR_PAT
    call rdmsr64
    mov rdi, rax
    movabs rsi, 0x0000050100070406
    lea rdx, [rip + m_pat]
    call check_eq

    mov ecx, MSR_MISC_ENABLE
    xor eax, eax
    xor edx, edx
    wrmsr                                # "invalid": dropped without a #GP
    call rdmsr64
    mov rdi, rax
    mov esi, GUEST_MISC_ENABLE
    lea rdx, [rip + m_misc_enable]
    call check_eq

    # CPUID faulting on
    mov ecx, MSR_MISC_FEATURES
    mov eax, 1
    xor edx, edx
    wrmsr
    call rdmsr64
    mov rdi, rax
    mov esi, 1
    lea rdx, [rip + m_faulting_on]
    call check_eq
    mov eax, 0x40000000
    xor ecx, ecx
    cpuid
    mov edi, ebx
    mov esi, 0x566e6558                  # "XenV"
    lea rdx, [rip + m_kernel_cpuid]
    call check_eq

    lea rsi, [rip + user_blob]
    lea rcx, [rip + user_blob_end]
    sub rcx, rsi
    call user_space_load
    lea rdx, [rip + syscall_entry]
    call user_space_install
    mov edi, USER_CODE_VA + (user_after_gp - user_blob)
    call expect_fault
    mov edi, USER_CODE_VA
    call user_call
    mov rdi, [rip + fault_vector]
    mov esi, 13
    lea rdx, [rip + m_user_gp]
    call check_eq
    mov rdi, [rip + fault_err]
    xor esi, esi
    lea rdx, [rip + m_user_gp_err]
    call check_eq
    mov rdi, [rip + fault_rip]
    mov esi, USER_CODE_VA + (user_cpuid - user_blob)
    lea rdx, [rip + m_user_gp_rip]
    call check_eq
    mov rdi, [rip + user_r12]
    mov esi, 7
    lea rdx, [rip + m_user_before]
    call check_eq
    mov rdi, [rip + user_r13]
    xor esi, esi
    lea rdx, [rip + m_user_after]
    call check_eq
    mov rdi, [rip + user_rbx]
    mov esi, 0x12345678
    lea rdx, [rip + m_user_rbx]
    call check_eq

    # faulting off: a user cpuid runs again
    mov ecx, MSR_MISC_FEATURES
    xor eax, eax
    xor edx, edx
    wrmsr
    mov edi, USER_CODE_VA
    call user_call
    mov rdi, [rip + user_rbx]
    mov esi, 0x12345678
    lea rdx, [rip + m_user_cpuid_runs]
    call check_eq_not

    # faulting on again: a forced-emulation cpuid from user mode is #GP at the cpuid
    mov ecx, MSR_MISC_FEATURES
    mov eax, 1
    xor edx, edx
    wrmsr
    mov edi, USER_CODE_VA + (user_after_fep - user_blob)
    call expect_fault
    mov edi, USER_CODE_VA + (user_fep - user_blob)
    call user_call
    mov rdi, [rip + fault_vector]
    mov esi, 13
    lea rdx, [rip + m_fep_gp]
    call check_eq
    mov rdi, [rip + fault_rip]
    mov esi, USER_CODE_VA + (user_fep_cpuid - user_blob)
    lea rdx, [rip + m_fep_gp_rip]
    call check_eq
    mov ecx, MSR_MISC_FEATURES
    xor eax, eax
    xor edx, edx
    wrmsr
    ret

# check_eq_not(rdi, rsi, rdx = message): FAILURE when equal
check_eq_not:
    cmp rdi, rsi
    jne check_eq_not_ok
    mov rdi, rdx
    call fail
check_eq_not_ok:
    ret

# The syscall callback: the user's report, rax = 1.
syscall_entry:
    mov [rip + user_rbx], rbx
    mov [rip + user_r12], r12
    mov [rip + user_r13], r13
    jmp user_return

# The user program: cpuid in the middle of a block, then report through a syscall.
user_blob:
    mov ebx, 0x12345678
    mov r12d, 7
    xor r13d, r13d
    xor eax, eax
    xor ecx, ecx
user_cpuid:
    cpuid
    mov r13d, 9                          # must not run before the #GP
user_after_gp:
    mov eax, 1
    syscall
    ud2
user_fep:
    xor eax, eax
    .byte 0x0f, 0x0b, 0x78, 0x65, 0x6e       # ud2; .ascii "xen"
user_fep_cpuid:
    cpuid
user_after_fep:
    mov eax, 1
    syscall
    ud2
user_blob_end:

.align 8
user_rbx: .quad 0
user_r12: .quad 0
user_r13: .quad 0
.align 16
kernel_stack: .fill 4096, 1, 0
kernel_stack_top:
m_platform_info: .asciz "MSR_INTEL_PLATFORM_INFO offers CPUID faulting"
m_misc_features: .asciz "MSR_INTEL_MISC_FEATURES_ENABLES starts clear"
m_wr_platform: .asciz "writing MSR_INTEL_PLATFORM_INFO #GPs"
m_wr_reserved: .asciz "a reserved MISC_FEATURES_ENABLES bit #GPs"
m_debugctl: .asciz "reading DEBUGCTL #GPs"
m_apic_base: .asciz "APIC_BASE on vCPU 0"
m_pat: .asciz "CR_PAT reads Xen's PAT"
m_misc_enable: .asciz "MISC_ENABLE reads Xen's value after a dropped write"
m_faulting_on: .asciz "CPUID faulting reads back on"
m_kernel_cpuid: .asciz "a kernel cpuid under faulting is Xen's policy"
m_user_gp: .asciz "a user cpuid under faulting raises #GP"
m_user_gp_err: .asciz "its error code"
m_user_gp_rip: .asciz "the #GP is at the cpuid"
m_user_before: .asciz "the instruction before the cpuid ran"
m_user_after: .asciz "the instruction after the cpuid did not run"
m_user_rbx: .asciz "the faulting cpuid left rbx alone"
m_user_cpuid_runs: .asciz "without faulting a user cpuid runs"
m_fep_gp: .asciz "a user forced-emulation cpuid under faulting raises #GP"
m_fep_gp_rip: .asciz "the #GP is at the cpuid after the prefix"
