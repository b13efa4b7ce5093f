# probe: the guest half of the differential oracle (tests/test_differential.py). The
# harness writes a page-table tree rooted at test_root_mfn and a script of accesses into
# this kernel's memory before it runs. The kernel pins the root, makes it its kernel and
# user base pointer (the root shares the kernel's L3, so this code stays mapped), then
# performs each access (read, write or fetch, in guest kernel or guest user mode) and
# records its outcome: 0, or 0x100 | the #PF error code, with CR2. Any other exception is
# an ERROR. The harness compares the outcomes of direct and shadow paging.
.include "pv.inc"

.equ VGCF_in_syscall, 0x100
.equ MAX_ACCESSES, 64

test_main:
    mov edi, MMUEXT_PIN_L4_TABLE
    mov rsi, [rip + test_root_mfn]
    call mmuext1
    mov [rip + pin_rc], rax
    test rax, rax
    jnz probe_pin_failed
    mov edi, MMUEXT_NEW_BASEPTR
    mov rsi, [rip + test_root_mfn]
    call mmuext1
    mov edi, MMUEXT_NEW_USER_BASEPTR
    mov rsi, [rip + test_root_mfn]
    call mmuext1
    lea rdi, [rip + probe_traps]
    call hc_set_trap_table
    xor edi, edi
    xor esi, esi
    lea rdx, [rip + probe_syscall]
    call hc_set_callbacks
    mov edi, FLAT_KERNEL_SS
    lea rsi, [rip + probe_kstack_top]
    call hc_stack_switch

    xor r12d, r12d                        # access index
probe_loop:
    cmp r12, [rip + script_count]
    jae probe_done
    mov rax, r12
    shl rax, 4
    lea rcx, [rip + script]
    mov rdi, [rcx + rax]                  # va
    mov rsi, [rcx + rax + 8]              # kind | mode << 8
    mov [rip + saved_rsp], rsp
    mov qword ptr [rip + outcome], 0
    mov qword ptr [rip + outcome_cr2], 0
    test esi, 0x100
    jnz probe_user
    call access_kernel
    jmp probe_after
probe_user:
    push FLAT_USER_SS
    lea rax, [rip + probe_ustack_top]
    push rax
    push 0x202
    push FLAT_USER_CS
    lea rax, [rip + access_user]
    push rax
    push 0
    jmp hc_iret
probe_after:
    mov rsp, [rip + saved_rsp]
    mov rax, r12
    shl rax, 4
    lea rcx, [rip + results]
    mov rdx, [rip + outcome]
    mov [rcx + rax], rdx
    mov rdx, [rip + outcome_cr2]
    mov [rcx + rax + 8], rdx
    inc r12
    jmp probe_loop
probe_done:
    ret
probe_pin_failed:
    lea rdi, [rip + m_pin]
    call puts
    ret

# access_kernel(rdi = va, sil = kind: 0 read, 1 write, 2 fetch)
access_kernel:
    cmp sil, 1
    je access_kernel_write
    ja access_kernel_fetch
    mov rax, [rdi]
    ret
access_kernel_write:
    movabs rax, 0xc3c3c3c3c3c3c3c3
    mov [rdi], rax
    ret
access_kernel_fetch:
    call rdi
    ret

# access_user: the same in guest user mode, then a syscall back to the kernel
access_user:
    cmp sil, 1
    je access_user_write
    ja access_user_fetch
    mov rax, [rdi]
    jmp access_user_done
access_user_write:
    movabs rax, 0xc3c3c3c3c3c3c3c3
    mov [rdi], rax
    jmp access_user_done
access_user_fetch:
    call rdi
access_user_done:
    syscall
    ud2

# the user access finished: back in kernel mode on the kernel stack
probe_syscall:
    jmp probe_after

# #PF from either mode: record and continue with the next access (already in kernel mode)
probe_pf:
    mov rax, [rsp + 16]
    or rax, 0x100
    mov [rip + outcome], rax
    mov rax, [rip + VCPU0_cr2]
    mov [rip + outcome_cr2], rax
    jmp probe_after

.align 8
probe_traps:
    .byte 14, 0
    .word FLAT_KERNEL_CS
    .long 0
    .quad probe_pf
    .quad 0, 0
saved_rsp: .quad 0
outcome: .quad 0
outcome_cr2: .quad 0
pin_rc: .quad 0
test_root_mfn: .quad 0
script_count: .quad 0
script: .fill MAX_ACCESSES * 16, 1, 0
results: .fill MAX_ACCESSES * 16, 1, 0
m_pin: .asciz "the generated tables failed validation\n"
.align 16
    .fill 4096, 1, 0
probe_kstack_top:
    .fill 4096, 1, 0
probe_ustack_top:
