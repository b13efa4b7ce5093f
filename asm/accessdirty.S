# accessdirty: the accessed and dirty bits the guest sees in its own entries. A fresh
# mapping without A/D; a read sets A (not D) in the L1 entry and A in the L2 entry above
# it; a write sets D; clearing A and D with mmu_update and touching again sets A alone,
# then D again on a write. Under shadow paging these bits are emulated, so a difference
# from what the CPU does in direct mode is a bug.
.include "pv.inc"

# read_l1e -> rax: the scratch L1 entry as the guest reads it
read_l1e:
    mov rax, [rip + l1e_ptr]
    mov rax, [rax]
    ret

# set_l1e(rsi = value): mmu_update of the scratch L1 entry, then invlpg
set_l1e:
    mov rdi, [rip + l1e_maddr_v]
    call mmu_update1
    mov rdi, [rip + scratch]
    call invlpg_va
    ret

test_main:
    call scratch_va
    mov [rip + scratch], rax
    mov rbx, rax
    mov rdi, rax
    call l1e_maddr
    mov [rip + l1e_maddr_v], rax
    mov rdi, rax
    call maddr_to_va
    mov [rip + l1e_ptr], rax
    mov rdi, rbx
    mov esi, 2
    call pte_maddr
    mov rdi, rax
    call maddr_to_va
    mov [rip + l2e_va], rax
    mov edi, 1
    call top_mfn
    shl rax, 12
    or rax, PTE_P | PTE_RW
    mov r12, rax                          # frame A, present and writable, no A or D

    # a fresh mapping: neither A nor D
    mov rsi, r12
    call set_l1e
    call read_l1e
    mov rdi, rax
    and edi, PTE_A | PTE_D
    xor esi, esi
    lea rdx, [rip + m_fresh]
    call check_eq

    # a read: A, not D; A in the L2 entry too
    mov rax, [rbx]
    call read_l1e
    mov rdi, rax
    and edi, PTE_A | PTE_D
    mov esi, PTE_A
    lea rdx, [rip + m_read]
    call check_eq
    mov rax, [rip + l2e_va]
    mov rdi, [rax]
    and edi, PTE_A
    mov esi, PTE_A
    lea rdx, [rip + m_l2_a]
    call check_eq

    # a write: D
    mov qword ptr [rbx], 7
    call read_l1e
    mov rdi, rax
    and edi, PTE_A | PTE_D
    mov esi, PTE_A | PTE_D
    lea rdx, [rip + m_write]
    call check_eq

    # cleared again: a read sets A alone, a write then sets D
    mov rsi, r12
    call set_l1e
    mov rax, [rbx]
    call read_l1e
    mov rdi, rax
    and edi, PTE_A | PTE_D
    mov esi, PTE_A
    lea rdx, [rip + m_read_again]
    call check_eq
    mov rdi, [rbx]
    mov esi, 7
    lea rdx, [rip + m_kept]
    call check_eq
    mov qword ptr [rbx], 8
    call read_l1e
    mov rdi, rax
    and edi, PTE_A | PTE_D
    mov esi, PTE_A | PTE_D
    lea rdx, [rip + m_write_again]
    call check_eq

    # a write as the first access sets both
    mov rsi, r12
    call set_l1e
    mov qword ptr [rbx], 9
    call read_l1e
    mov rdi, rax
    and edi, PTE_A | PTE_D
    mov esi, PTE_A | PTE_D
    lea rdx, [rip + m_first_write]
    call check_eq
    ret

.align 8
scratch: .quad 0
l1e_maddr_v: .quad 0
l1e_ptr: .quad 0
l2e_va: .quad 0
m_fresh: .asciz "A/D of a fresh mapping"
m_read: .asciz "A/D after a read"
m_l2_a: .asciz "A in the L2 entry after a read"
m_write: .asciz "A/D after a write"
m_read_again: .asciz "A/D after clearing them and reading"
m_kept: .asciz "the frame kept its contents"
m_write_again: .asciz "A/D after writing again"
m_first_write: .asciz "A/D when a write is the first access"
