# ptreuse: a page table freed and its frame reused as data. Frame F is filled as an L1
# mapping data frame D, hooked into the kernel's L2 with mmu_update (F becomes an L1 and
# cannot be mapped writable), used, then unhooked: F is no longer a page table, so it can
# be mapped writable and filled with data, and the address it served faults. Finally F is
# filled as an L1 again and rehooked. A stale shadow of F, a refused writable mapping
# after the unhook, or an access that still works through the old table is a bug.
.include "pv.inc"

.equ HOLE_INDEX, 200                      # an L2 slot the bootstrap region does not use
.equ MARK_D, 0xd0d0d0d0d0d0d0d0
.equ MARK_F, 0xf0f0f0f0f0f0f0f0
.equ DATA_PTE, PTE_P | PTE_RW

# set_l2(rsi = value): mmu_update of the hole's L2 entry -> rax
set_l2:
    mov rdi, [rip + l2e]
    call mmu_update1
    ret

# map_scratch(rsi = pte) -> rax
map_scratch:
    mov rdi, [rip + scratch]
    call map_va
    ret

test_main:
    call scratch_va
    mov [rip + scratch], rax
    mov rbx, rax
    movabs rax, KERNEL_BASE + HOLE_INDEX * 0x200000
    mov [rip + hole], rax
    mov rdi, rax
    mov esi, 2
    call pte_maddr
    mov [rip + l2e], rax
    mov edi, 1
    call top_mfn
    shl rax, 12
    mov r12, rax                          # F
    mov edi, 2
    call top_mfn
    shl rax, 12
    mov r13, rax                          # D

    # D gets a mark; F becomes an L1 mapping D at the hole
    lea rsi, [r13 + DATA_PTE]
    call map_scratch
    movabs rax, MARK_D
    mov [rbx], rax
    lea rsi, [r12 + DATA_PTE]
    call map_scratch
    lea rax, [r13 + DATA_PTE]
    mov [rbx], rax
    xor esi, esi
    call map_scratch
    lea rsi, [r12 + DATA_PTE]
    call set_l2
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_hook]
    call check_eq
    mov rax, [rip + hole]
    mov rdi, [rax]
    movabs rsi, MARK_D
    lea rdx, [rip + m_through]
    call check_eq
    lea rsi, [r12 + DATA_PTE]
    call map_scratch
    mov rdi, rax
    mov rsi, RC_EBUSY
    lea rdx, [rip + m_pt_locked]
    call check_eq

    # unhook: F is data again; the hole faults
    xor esi, esi
    call set_l2
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_unhook]
    call check_eq
    lea rsi, [r12 + DATA_PTE]
    call map_scratch
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_reuse]
    call check_eq
    movabs rax, MARK_F
    mov [rbx], rax
    mov [rbx + 8], rax
    mov rdi, [rbx + 8]
    movabs rsi, MARK_F
    lea rdx, [rip + m_data]
    call check_eq
    lea rdi, [rip + hole_resume]
    call expect_fault
    mov rax, [rip + hole]
    mov rax, [rax]
hole_resume:
    mov rdi, [rip + fault_vector]
    mov esi, 14
    lea rdx, [rip + m_hole_faults]
    call check_eq
    mov rdi, [rip + fault_err]
    xor esi, esi
    lea rdx, [rip + m_hole_err]
    call check_eq

    # F as an L1 again: data in it that is not a valid entry is refused...
    lea rsi, [r12 + DATA_PTE]
    call set_l2
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_garbage]
    call check_eq
    # ...until it is cleaned, while it is still mapped writable it is refused too
    xor eax, eax
    mov ecx, 512
    mov rdi, rbx
    rep stosq
    lea rax, [r13 + DATA_PTE]
    mov [rbx], rax
    lea rsi, [r12 + DATA_PTE]
    call set_l2
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_still_writable]
    call check_eq
    xor esi, esi
    call map_scratch
    lea rsi, [r12 + DATA_PTE]
    call set_l2
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_rehook]
    call check_eq
    mov rax, [rip + hole]
    mov rdi, [rax]
    movabs rsi, MARK_D
    lea rdx, [rip + m_through_again]
    call check_eq
    xor esi, esi
    call set_l2
    ret

.align 8
scratch: .quad 0
hole: .quad 0
l2e: .quad 0
m_hook: .asciz "hooking F into the L2"
m_through: .asciz "D through F"
m_pt_locked: .asciz "a writable mapping of F while it is an L1"
m_unhook: .asciz "unhooking F"
m_reuse: .asciz "a writable mapping of F once it is not a table"
m_data: .asciz "F holds data"
m_hole_faults: .asciz "the old address faults"
m_hole_err: .asciz "the old address faults not-present"
m_garbage: .asciz "hooking F while it holds data that is not a valid table"
m_still_writable: .asciz "hooking F while it is mapped writable"
m_rehook: .asciz "hooking F again once clean and unmapped"
m_through_again: .asciz "D through F again"
