# cr4: the virtual CR4 Xen keeps for a PV guest (pv_fixup_guest_cr4). mov from CR4 shows
# Xen's PAE, OSFXSR and OSXMMEXCPT and none of the guest-controlled bits at start;
# rdfsbase then raises #UD. A mov to CR4 sets FSGSBASE and tries PGE and VMXE: FSGSBASE
# reads back set, the others dropped, without a #GP. rdfsbase and wrfsbase then work
# (a non-canonical base is #GP at the wrfsbase; the 32-bit forms zero-extend),
# in agreement with set_segment_base; clearing FSGSBASE brings the #UD back. TSD, DE and
# OSXSAVE read back as written. Any other value or a missing fault is a FAILURE.
.include "pv.inc"

.equ CR4_TSD, 1 << 2
.equ CR4_DE, 1 << 3
.equ CR4_PAE, 1 << 5
.equ CR4_PGE, 1 << 7
.equ CR4_OSFXSR, 1 << 9
.equ CR4_OSXMMEXCPT, 1 << 10
.equ CR4_VMXE, 1 << 13
.equ CR4_FSGSBASE, 1 << 16
.equ CR4_OSXSAVE, 1 << 18
.equ CR4_START, CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT
.equ CR4_TRIED, CR4_START | CR4_FSGSBASE | CR4_PGE | CR4_VMXE
.equ CR4_WITH_BASE, CR4_START | CR4_FSGSBASE
.equ CR4_GUEST_BITS, CR4_START | CR4_TSD | CR4_DE | CR4_OSXSAVE
.equ SEGBASE_FS, 0
.equ FS_ONE, 0x1234000
.equ FS_TWO, 0x5678000

test_main:
    mov rdi, cr4
    mov esi, CR4_START
    lea rdx, [rip + m_start]
    call check_eq

    lea rdi, [rip + after_ud1]
    call expect_fault
    rdfsbase rax
after_ud1:
    mov rdi, [rip + fault_vector]
    mov esi, 6
    lea rdx, [rip + m_ud1]
    call check_eq

    mov eax, CR4_TRIED
    mov cr4, rax
    mov rdi, cr4
    mov esi, CR4_WITH_BASE
    lea rdx, [rip + m_with_base]
    call check_eq

    mov edi, SEGBASE_FS
    mov esi, FS_ONE
    call hc_set_segment_base
    rdfsbase rdi
    mov esi, FS_ONE
    lea rdx, [rip + m_rdfsbase]
    call check_eq
    mov eax, FS_TWO
    wrfsbase rax
    mov ecx, 0xc0000100                       # MSR_FS_BASE, as Xen emulates rdmsr of it
    rdmsr
    shl rdx, 32
    or rax, rdx
    mov rdi, rax
    mov esi, FS_TWO
    lea rdx, [rip + m_wrfsbase]
    call check_eq
    lea rdi, [rip + after_gp]
    call expect_fault
    movabs rax, 0x0000800000000000
wrfs_noncanonical:
    wrfsbase rax
after_gp:
    mov rdi, [rip + fault_vector]
    mov esi, 13
    lea rdx, [rip + m_gp]
    call check_eq
    mov rdi, [rip + fault_rip]
    lea rsi, [rip + wrfs_noncanonical]
    lea rdx, [rip + m_gp_rip]
    call check_eq
    mov r8d, 0x5000
    wrgsbase r8d                              # the 32-bit form zero-extends
    rdgsbase rdi
    mov esi, 0x5000
    lea rdx, [rip + m_gs32]
    call check_eq

    mov eax, CR4_START
    mov cr4, rax
    lea rdi, [rip + after_ud2]
    call expect_fault
    rdfsbase rax
after_ud2:
    mov rdi, [rip + fault_vector]
    mov esi, 6
    lea rdx, [rip + m_ud2]
    call check_eq

    mov eax, CR4_GUEST_BITS
    mov cr4, rax
    mov rdi, cr4
    mov esi, CR4_GUEST_BITS
    lea rdx, [rip + m_guest_bits]
    call check_eq
    mov eax, CR4_START
    mov cr4, rax
    ret

m_start: .asciz "CR4 at start: Xen's PAE, OSFXSR, OSXMMEXCPT only"
m_ud1: .asciz "rdfsbase without CR4.FSGSBASE raises #UD"
m_with_base: .asciz "CR4 after setting FSGSBASE, PGE and VMXE: FSGSBASE only"
m_rdfsbase: .asciz "rdfsbase reads the base set_segment_base set"
m_wrfsbase: .asciz "wrfsbase sets the base rdmsr reads"
m_ud2: .asciz "rdfsbase after clearing CR4.FSGSBASE raises #UD"
m_gp: .asciz "wrfsbase of a non-canonical base raises #GP"
m_gp_rip: .asciz "the #GP is at the wrfsbase"
m_gs32: .asciz "wrgsbase r8d then rdgsbase"
m_guest_bits: .asciz "TSD, DE and OSXSAVE read back as written"
