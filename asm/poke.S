# poke: a translated kernel that makes the memory accesses a test asks for. It waits at
# `poll` (the test's breakpoint), then does what its mailbox says: write or read a qword
# of a gfn (mapped at its scratch page by a plain store into its own L1 entry), the
# fault vector in `status` when the access faults (0 when not), or report its verdict
# (at once, when no harness is there to fill the mailbox).
# Needs: a harness (tests/translated_host.py) that fills the mailbox at each stop.
# pvshadow: --paging translated
.include "pv.inc"
.include "translated.inc"

.equ OP_WRITE, 1
.equ OP_READ, 2
.equ OP_DONE, 3
.equ PTE_PRW, PTE_P | PTE_RW | PTE_A | PTE_D

test_main:
    push r12
    push r13
    push r14
    call scratch_va
    mov r13, rax
    mov rdi, rax
    call l1e_va_t
    mov r14, rax
poll:
    nop
    mov rax, [rip + mbox_op]
    cmp rax, OP_DONE
    je poke_done
    test rax, rax                   # run alone, with no harness: nothing to do
    jz poke_done
    mov qword ptr [rip + mbox_status], 0
    mov rax, [rip + mbox_gfn]
    shl rax, 12
    or rax, PTE_PRW
    mov [r14], rax
    mov rdi, r13
    call invlpg_va
    mov r12, r13
    add r12, [rip + mbox_offset]
    lea rdi, [rip + poke_after]
    call expect_fault
    mov rax, [rip + mbox_op]
    cmp rax, OP_WRITE
    jne poke_read
    mov rax, [rip + mbox_value]
    mov [r12], rax
    jmp poke_ok
poke_read:
    mov rax, [r12]
    mov [rip + mbox_result], rax
poke_ok:
    mov qword ptr [rip + fault_vector], -1
poke_after:
    mov rax, [rip + fault_vector]
    cmp rax, -1
    je poll
    mov [rip + mbox_status], rax
    jmp poll
poke_done:
    pop r14
    pop r13
    pop r12
    ret

.balign 4096
mbox_op: .quad 0
mbox_gfn: .quad 0
mbox_offset: .quad 0
mbox_value: .quad 0
mbox_result: .quad 0
mbox_status: .quad 0
.balign 4096
