# remap: changing a live mapping and flushing it. Frame A is mapped and read (the
# translation is now cached), the entry is switched to frame B with update_va_mapping
# without a flush, then MMUEXT_INVLPG_LOCAL; the next read must see B. The same with a
# full TLB flush, and once with UVMF_INVLPG folded into the update. Reading A's contents
# after the flush means a stale translation survived.
.include "pv.inc"

.equ MARK_A, 0xaaaa0000aaaa0000
.equ MARK_B, 0xbbbb0000bbbb0000

# map(rsi = frame machine address, rdx = UVMF flags)
map:
    or rsi, PTE_P | PTE_RW
    mov rdi, [rip + scratch]
    call hc_update_va_mapping
    ret

# mmuext(rdi = cmd) on the scratch address
mmuext:
    mov rsi, [rip + scratch]
    call mmuext1
    ret

test_main:
    call scratch_va
    mov [rip + scratch], rax
    mov rbx, rax
    mov edi, 1
    call top_mfn
    shl rax, 12
    mov r12, rax
    mov edi, 2
    call top_mfn
    shl rax, 12
    mov r13, rax
    # label both frames
    mov rsi, r13
    mov edx, UVMF_INVLPG
    call map
    movabs rax, MARK_B
    mov [rbx], rax
    mov rsi, r12
    mov edx, UVMF_INVLPG
    call map
    movabs rax, MARK_A
    mov [rbx], rax

    # A is live; switch to B without a flush, then invlpg
    mov rax, [rbx]
    mov rsi, r13
    xor edx, edx
    call map
    mov edi, MMUEXT_INVLPG_LOCAL
    call mmuext
    mov rdi, [rbx]
    movabs rsi, MARK_B
    lea rdx, [rip + m_invlpg]
    call check_eq

    # back to A, flush the whole TLB
    mov rax, [rbx]
    mov rsi, r12
    xor edx, edx
    call map
    mov edi, MMUEXT_TLB_FLUSH_LOCAL
    call mmuext
    mov rdi, [rbx]
    movabs rsi, MARK_A
    lea rdx, [rip + m_flush]
    call check_eq

    # to B with the invlpg folded into the update
    mov rax, [rbx]
    mov rsi, r13
    mov edx, UVMF_INVLPG
    call map
    mov rdi, [rbx]
    movabs rsi, MARK_B
    lea rdx, [rip + m_uvmf]
    call check_eq

    # many remaps in a row, each read back
    mov r14d, 200
remap_loop:
    mov rsi, r12
    test r14d, 1
    jz remap_pick
    mov rsi, r13
remap_pick:
    mov edx, UVMF_INVLPG
    call map
    mov rax, [rbx]
    movabs rcx, MARK_A
    test r14d, 1
    jz remap_check
    movabs rcx, MARK_B
remap_check:
    cmp rax, rcx
    jne remap_bad
    dec r14d
    jnz remap_loop
    ret
remap_bad:
    lea rdi, [rip + m_loop]
    call fail
    ret

.align 8
scratch: .quad 0
m_invlpg: .asciz "frame B after update_va_mapping and invlpg"
m_flush: .asciz "frame A after update_va_mapping and a TLB flush"
m_uvmf: .asciz "frame B after update_va_mapping with UVMF_INVLPG"
m_loop: .asciz "a stale translation in the remap loop"
