# privop: privileged instructions in a PV kernel, which Xen emulates after their #GP.
# CR0 reads back with the TS bit fpu_taskswitch set, clts clears it, a CR0 write changing
# only TS is taken and one changing WP is refused (#GP); CR2 holds the last #PF address
# and can be written; CR3 is the kernel root's machine address, and writing the same root
# back works while a writable data page is refused (it cannot become a page table); CR4 shows PAE. rdmsr and
# wrmsr reach FS_BASE (loads go through the new base), GS_BASE and SHADOW_GS_BASE (the
# values set_segment_base set) and EFER (LMA set; rewriting it unchanged is accepted);
# an unknown MSR and a non-canonical base are #GP. mov to and from DR0-7 follow
# set_debugreg (DR7 reads 0x400; DR8 does not exist). wbinvd does nothing; hlt keeps its
# #GP. A wrong value, a missing or extra fault, is a FAILURE.
.include "pv.inc"

.equ CR0_TS, 8
.equ CR0_WP, 0x10000
.equ CR4_PAE, 0x20
.equ EFER_LMA, 0x400
.equ MSR_EFER, 0xc0000080
.equ MSR_FS_BASE, 0xc0000100
.equ MSR_GS_BASE, 0xc0000101
.equ MSR_SHADOW_GS_BASE, 0xc0000102
.equ SEGBASE_GS_USER, 1
.equ SEGBASE_GS_KERNEL, 2

# no_fault(rdi = message): fail if a fault was recorded since expect_fault armed it
no_fault:
    mov rsi, rdi
    mov rdi, [rip + fault_vector]
    mov rdx, rsi
    mov rsi, -1
    mov qword ptr [rip + fault_resume], 0
    jmp check_eq

# gp_taken(rdi = message): fail unless the armed handler saw a #GP
gp_taken:
    mov rdx, rdi
    mov rdi, [rip + fault_vector]
    mov esi, 13
    jmp check_eq

test_main:
    # CR0 and TS
    mov edi, 1
    call hc_fpu_taskswitch
    lea rdi, [rip + cr0_read_done]
    call expect_fault
    mov rax, cr0
cr0_read_done:
    mov rbx, rax
    lea rdi, [rip + m_cr0_read]
    call no_fault
    mov rdi, rbx
    and edi, CR0_TS
    mov esi, CR0_TS
    lea rdx, [rip + m_cr0_ts]
    call check_eq
    clts
    mov rax, cr0
    mov rdi, rax
    and edi, CR0_TS
    xor esi, esi
    lea rdx, [rip + m_clts]
    call check_eq
    or rax, CR0_TS
    mov cr0, rax
    mov rdi, cr0
    and edi, CR0_TS
    mov esi, CR0_TS
    lea rdx, [rip + m_cr0_write_ts]
    call check_eq
    clts
    lea rdi, [rip + cr0_wp_done]
    call expect_fault
    mov rax, cr0
    and rax, -65537
    mov cr0, rax
cr0_wp_done:
    lea rdi, [rip + m_cr0_wp]
    call gp_taken

    # CR2: the last #PF address, and writable
    lea rdi, [rip + pf_done]
    call expect_fault
    movabs rax, 0x0000000012345000
    mov rax, [rax]
pf_done:
    mov rdi, cr2
    mov esi, 0x12345000
    lea rdx, [rip + m_cr2_pf]
    call check_eq
    mov eax, 0x5000
    mov cr2, rax
    mov rdi, cr2
    mov esi, 0x5000
    lea rdx, [rip + m_cr2_write]
    call check_eq

    # CR3: the kernel root; writing it back is a new baseptr; a non-table frame is refused
    mov rdi, [rip + start_info_ptr]
    mov rdi, [rdi + SI_pt_base]
    call va_maddr
    and rax, -4096
    mov r12, rax
    mov rdi, cr3
    mov rsi, r12
    lea rdx, [rip + m_cr3_read]
    call check_eq
    lea rdi, [rip + cr3_same_done]
    call expect_fault
    mov cr3, r12
cr3_same_done:
    lea rdi, [rip + m_cr3_same]
    call no_fault
    lea rdi, [rip + fs_target]               # a data page, mapped writable
    call va_maddr
    and rax, -4096
    mov r13, rax
    lea rdi, [rip + cr3_bad_done]
    call expect_fault
    mov cr3, r13
cr3_bad_done:
    lea rdi, [rip + m_cr3_bad]
    call gp_taken
    mov rdi, cr3
    mov rsi, r12
    lea rdx, [rip + m_cr3_kept]
    call check_eq

    # CR4
    mov rdi, cr4
    and edi, CR4_PAE
    mov esi, CR4_PAE
    lea rdx, [rip + m_cr4]
    call check_eq

    # MSRs: FS_BASE both ways, GS bases as set_segment_base set them, EFER
    lea rax, [rip + fs_target]
    mov rdx, rax
    shr rdx, 32
    mov ecx, MSR_FS_BASE
    wrmsr
    mov rdi, qword ptr fs:[0]
    movabs rsi, 0xf00df00df00df00d
    lea rdx, [rip + m_fs_write]
    call check_eq
    mov ecx, MSR_FS_BASE
    rdmsr
    shl rdx, 32
    or rax, rdx
    mov rdi, rax
    lea rsi, [rip + fs_target]
    lea rdx, [rip + m_fs_read]
    call check_eq
    mov edi, SEGBASE_GS_KERNEL
    lea rsi, [rip + fs_target]
    call hc_set_segment_base
    mov edi, SEGBASE_GS_USER
    movabs rsi, 0x0000000077770000
    call hc_set_segment_base
    mov ecx, MSR_GS_BASE
    rdmsr
    shl rdx, 32
    or rax, rdx
    mov rdi, rax
    lea rsi, [rip + fs_target]
    lea rdx, [rip + m_gs_read]
    call check_eq
    mov ecx, MSR_SHADOW_GS_BASE
    rdmsr
    shl rdx, 32
    or rax, rdx
    mov rdi, rax
    mov esi, 0x77770000
    lea rdx, [rip + m_shadow_gs_read]
    call check_eq
    mov ecx, MSR_EFER
    rdmsr
    mov rbx, rax
    mov rdi, rax
    and edi, EFER_LMA
    mov esi, EFER_LMA
    lea rdx, [rip + m_efer]
    call check_eq
    lea rdi, [rip + efer_same_done]
    call expect_fault
    mov rax, rbx
    xor edx, edx
    mov ecx, MSR_EFER
    wrmsr
efer_same_done:
    lea rdi, [rip + m_efer_same]
    call no_fault
    lea rdi, [rip + msr_unknown_done]
    call expect_fault
    mov ecx, 0x1234
    rdmsr
msr_unknown_done:
    lea rdi, [rip + m_msr_unknown]
    call gp_taken
    lea rdi, [rip + msr_noncanonical_done]
    call expect_fault
    xor eax, eax
    mov edx, 0x8000
    mov ecx, MSR_FS_BASE
    wrmsr
msr_noncanonical_done:
    lea rdi, [rip + m_msr_noncanonical]
    call gp_taken

    # debug registers through mov
    mov rdi, dr7
    mov esi, 0x400
    lea rdx, [rip + m_dr7]
    call check_eq
    lea rax, [rip + fs_target]
    mov dr0, rax
    xor edi, edi
    call hc_get_debugreg
    mov rdi, rax
    lea rsi, [rip + fs_target]
    lea rdx, [rip + m_dr0]
    call check_eq
    lea rdi, [rip + dr_xen_done]
    call expect_fault
    movabs rax, 0xffff800000001000
    mov dr1, rax
dr_xen_done:
    lea rdi, [rip + m_dr_xen]
    call gp_taken

    # wbinvd does nothing; hlt is not emulated
    lea rdi, [rip + wbinvd_done]
    call expect_fault
    wbinvd
wbinvd_done:
    lea rdi, [rip + m_wbinvd]
    call no_fault
    lea rdi, [rip + hlt_done]
    call expect_fault
    hlt
hlt_done:
    lea rdi, [rip + m_hlt]
    call gp_taken
    ret

.align 8
fs_target: .quad 0xf00df00df00df00d
m_cr0_read: .asciz "mov from CR0 is emulated"
m_cr0_ts: .asciz "CR0.TS after fpu_taskswitch(1)"
m_clts: .asciz "CR0.TS after clts"
m_cr0_write_ts: .asciz "CR0.TS after a CR0 write setting it"
m_cr0_wp: .asciz "a CR0 write clearing WP is refused with #GP"
m_cr2_pf: .asciz "CR2 is the last #PF address"
m_cr2_write: .asciz "CR2 reads back what was written"
m_cr3_read: .asciz "CR3 is the kernel root"
m_cr3_same: .asciz "writing the same root to CR3"
m_cr3_bad: .asciz "CR3 to a writable data page is refused with #GP"
m_cr3_kept: .asciz "CR3 after the refused write"
m_cr4: .asciz "CR4.PAE"
m_fs_write: .asciz "a load through the FS base wrmsr set"
m_fs_read: .asciz "rdmsr FS_BASE"
m_gs_read: .asciz "rdmsr GS_BASE is the kernel's GS base"
m_shadow_gs_read: .asciz "rdmsr SHADOW_GS_BASE is the user's GS base"
m_efer: .asciz "EFER.LMA"
m_efer_same: .asciz "wrmsr EFER unchanged"
m_msr_unknown: .asciz "rdmsr of an unknown MSR is refused with #GP"
m_msr_noncanonical: .asciz "a non-canonical FS base is refused with #GP"
m_dr7: .asciz "mov from DR7"
m_dr0: .asciz "mov to DR0 seen by get_debugreg"
m_dr_xen: .asciz "mov to DR1 of an address in Xen's area is refused with #GP"
m_wbinvd: .asciz "wbinvd does nothing"
m_hlt: .asciz "hlt raises #GP"
