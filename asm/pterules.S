# pterules: the entry rules of Xen's get_page_from_l1e..l4e and adjust_guest_l1e..l4e for
# a 64-bit PV guest, as a guest reading its tables back sees them.
# - Software bits 52-61 of an L1 entry and 52-62 of an upper entry are the guest's: taken.
# - Bit 62 of an L1 entry (Xen's grant-mapping marker) and PCD/PWT/PAT (no I/O
#   privileges) are refused with -EINVAL, as are G/PCD/PWT at L2.
# - An L1 entry naming a frame past the end of RAM is MMIO the domain may not map: -EPERM;
#   INVALID_MFN itself is -EINVAL.
# - Xen writes back adjusted entries: a kernel L1 mapping (US clear) gains US and the
#   guest-kernel bit 52, a user one gains G, L2/L3 entries gain US, L4 entries gain A|US.
# Any other answer, or a refused update that changed the entry, is a FAILURE.
.include "pv.inc"

.equ BIT52, 0x0010000000000000
.equ PTE_PWT, 0x8
.equ PTE_PCD, 0x10
.equ PTE_PAT, 0x80
.equ PTE_G, 0x100
.equ NOT_US, 0xfffffffffffffffb
.equ NOT_A_US, 0xffffffffffffffdb

# map_scratch(rsi = pte) -> rax = rc
map_scratch:
    mov rdi, [rip + scratch]
    mov edx, UVMF_INVLPG
    call hc_update_va_mapping
    ret

# scratch_entry -> rax: the scratch L1 entry as the guest reads it
scratch_entry:
    mov rax, [rip + scratch_l1e_va]
    mov rax, [rax]
    ret

# refused_l1(rsi = extra flags, rdx = message): a kernel mapping of the scratch frame with
# rsi added is refused -EINVAL and leaves the entry as it was.
refused_l1:
    push rdx
    or rsi, [rip + scratch_frame]
    or rsi, PTE_P | PTE_RW
    call map_scratch
    mov rdi, rax
    mov rsi, RC_EINVAL
    mov rdx, [rsp]
    call check_eq
    call scratch_entry
    mov rdi, rax
    mov rsi, r12
    lea rdx, [rip + m_unchanged]
    call check_eq
    pop rdx
    ret

test_main:
    call scratch_va
    mov [rip + scratch], rax
    mov rdi, rax
    call l1e_va
    mov [rip + scratch_l1e_va], rax
    call scratch_entry
    mov r12, rax                         # the scratch entry before the test
    movabs rcx, 0x000ffffffffff000
    and rax, rcx
    mov [rip + scratch_frame], rax

    # a kernel mapping with a software bit: taken, and read back with US and bit 52
    movabs rsi, 0x0080000000000000       # bit 55
    or rsi, [rip + scratch_frame]
    or rsi, PTE_P | PTE_RW
    mov r13, rsi
    call map_scratch
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_soft_l1]
    call check_eq
    call scratch_entry
    mov rdi, rax
    mov rsi, r13
    or rsi, PTE_US
    movabs rax, BIT52
    or rsi, rax
    lea rdx, [rip + m_kernel_adjusted]
    call check_eq

    # a user mapping: read back with G
    mov rsi, [rip + scratch_frame]
    or rsi, PTE_P | PTE_RW | PTE_US
    mov r13, rsi
    call map_scratch
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_user_l1]
    call check_eq
    call scratch_entry
    mov rdi, rax
    mov rsi, r13
    or rsi, PTE_G
    lea rdx, [rip + m_user_adjusted]
    call check_eq
    mov rsi, r12
    call map_scratch

    # refused at L1: the grant bit and the cache attributes
    movabs rsi, 0x4000000000000000
    lea rdx, [rip + m_gnttab]
    call refused_l1
    mov esi, PTE_PCD
    lea rdx, [rip + m_pcd]
    call refused_l1
    mov esi, PTE_PWT
    lea rdx, [rip + m_pwt]
    call refused_l1
    mov esi, PTE_PAT
    lea rdx, [rip + m_pat]
    call refused_l1

    # frames that are not RAM
    movabs rsi, 0x00007ffffff000         # mfn 0x7ffffff: 512 GiB up
    or rsi, PTE_P
    call map_scratch
    mov rdi, rax
    mov rsi, RC_EPERM
    lea rdx, [rip + m_past_ram]
    call check_eq
    movabs rsi, 0x000ffffffffff000       # INVALID_MFN
    or rsi, PTE_P
    call map_scratch
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_invalid_mfn]
    call check_eq
    call scratch_entry
    mov rdi, rax
    mov rsi, r12
    lea rdx, [rip + m_unchanged]
    call check_eq

    # the scratch page's L2 entry: bit 62 is the guest's there, G is not
    mov rdi, [rip + scratch]
    mov esi, 2
    call pte_maddr
    mov r14, rax
    mov rdi, rax
    call maddr_to_va
    mov r15, rax                         # the L2 entry as the guest reads it
    mov rbx, [r15]
    mov rdi, r14
    movabs rsi, 0x4000000000000000
    or rsi, rbx
    call mmu_update1
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_soft_l2]
    call check_eq
    mov rdi, [r15]
    movabs rsi, 0x4000000000000000
    or rsi, rbx
    lea rdx, [rip + m_soft_l2_kept]
    call check_eq
    mov rdi, r14
    mov rsi, rbx
    or rsi, PTE_G
    call mmu_update1
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_global_l2]
    call check_eq
    mov rdi, r14
    mov rsi, rbx
    call mmu_update1
    mov rdi, [r15]
    mov rsi, rbx
    lea rdx, [rip + m_l2_restored]
    call check_eq

    # an L2 entry written without US reads back with it
    mov rdi, r14
    mov rsi, rbx
    movabs rax, NOT_US
    and rsi, rax
    call mmu_update1
    mov rdi, [r15]
    mov rsi, rbx
    lea rdx, [rip + m_l2_user]
    call check_eq

    # the scratch page's L4 entry, written without A and US, reads back with both
    mov rdi, [rip + scratch]
    mov esi, 4
    call pte_maddr
    mov r14, rax
    mov rdi, rax
    call maddr_to_va
    mov r15, rax
    mov rbx, [r15]
    mov rdi, r14
    mov rsi, rbx
    movabs rax, NOT_A_US
    and rsi, rax
    call mmu_update1
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_l4_update]
    call check_eq
    mov rdi, [r15]
    mov rsi, rbx
    or rsi, PTE_A | PTE_US
    lea rdx, [rip + m_l4_adjusted]
    call check_eq
    ret

.align 8
scratch: .quad 0
scratch_l1e_va: .quad 0
scratch_frame: .quad 0
m_soft_l1: .asciz "an L1 entry with software bit 55"
m_kernel_adjusted: .asciz "a kernel L1 entry reads back with US and bit 52"
m_user_l1: .asciz "a user L1 entry"
m_user_adjusted: .asciz "a user L1 entry reads back with G"
m_unchanged: .asciz "a refused update leaves the entry unchanged"
m_gnttab: .asciz "an L1 entry with bit 62 (_PAGE_GNTTAB)"
m_pcd: .asciz "an L1 entry with PCD"
m_pwt: .asciz "an L1 entry with PWT"
m_pat: .asciz "an L1 entry with PAT"
m_past_ram: .asciz "an L1 entry naming a frame past the end of RAM"
m_invalid_mfn: .asciz "an L1 entry naming INVALID_MFN"
m_soft_l2: .asciz "an L2 entry with software bit 62"
m_soft_l2_kept: .asciz "the L2 entry keeps its software bit"
m_global_l2: .asciz "an L2 entry with G"
m_l2_restored: .asciz "the L2 entry restored"
m_l2_user: .asciz "an L2 entry written without US reads back with it"
m_l4_update: .asciz "rewriting an L4 entry without A and US"
m_l4_adjusted: .asciz "an L4 entry reads back with A and US"
