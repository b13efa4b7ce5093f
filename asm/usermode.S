# usermode: a drop to guest user mode and syscalls back. The kernel builds a user address
# space (its own L4/L3/L2/L1, a code page and a stack page, not mapping the kernel), pins
# it, installs it with NEW_USER_BASEPTR, registers a syscall callback and a kernel stack,
# and enters user mode with HYPERVISOR_iret. The user program makes a syscall (the
# kernel returns to it with iret), touches a kernel address (a user-mode #PF: the kernel
# is not mapped there), and makes a second syscall that ends the round trip. Wrong frame
# contents, a missing U bit in the error code, or a crash are failures.
.include "pv.inc"
.include "userspace.inc"

.equ VGCF_in_syscall, 0x100



test_main:
    call user_space_tables
    lea rsi, [rip + user_blob]
    lea rcx, [rip + user_blob_end]
    sub rcx, rsi
    call user_space_load
    lea rdx, [rip + syscall_entry]
    call user_space_install

    # a user-mode fault on a kernel address resumes in user code
    mov rax, USER_CODE_VA + (user_after_fault - user_blob)
    mov rdi, rax
    call expect_fault

    # user mode until its second syscall (user_return)
    mov edi, USER_CODE_VA
    call user_call
    mov rdi, [rip + sys1_rax]
    mov esi, 1
    lea rdx, [rip + m_sys1]
    call check_eq
    mov rdi, [rip + sys1_rcx]
    mov esi, USER_CODE_VA + (user_after_sys1 - user_blob)
    lea rdx, [rip + m_sys1_rcx]
    call check_eq
    mov rdi, [rip + sys1_rip]
    mov esi, USER_CODE_VA + (user_after_sys1 - user_blob)
    lea rdx, [rip + m_sys1_rip]
    call check_eq
    mov rdi, [rip + sys1_cs]
    and edi, 0xffff
    mov esi, FLAT_USER_CS
    lea rdx, [rip + m_sys1_cs]
    call check_eq
    mov rdi, [rip + fault_vector]
    mov esi, 14
    lea rdx, [rip + m_user_pf]
    call check_eq
    mov rdi, [rip + fault_err]
    mov esi, 4
    lea rdx, [rip + m_user_pf_err]
    call check_eq
    mov rdi, [rip + fault_cr2]
    movabs rsi, KERNEL_BASE
    lea rdx, [rip + m_user_pf_cr2]
    call check_eq
    mov rdi, [rip + sys2_rbx]
    mov esi, 0x5eed
    lea rdx, [rip + m_sys2]
    call check_eq
    ret

# The syscall callback: RCX, R11, RIP, CS, RFLAGS, RSP, SS on the kernel stack.
syscall_entry:
    cmp rax, 1
    jne syscall_second
    mov [rip + sys1_rax], rax
    mov rax, [rsp]
    mov [rip + sys1_rcx], rax
    mov rax, [rsp + 16]
    mov [rip + sys1_rip], rax
    mov rax, [rsp + 24]
    mov [rip + sys1_cs], rax
    pop rcx
    pop r11
    push VGCF_in_syscall
    jmp hc_iret
syscall_second:
    mov [rip + sys2_rbx], rbx
    jmp user_return

# The user program (position-independent; copied to USER_CODE_VA).
user_blob:
    mov eax, 1
    syscall
user_after_sys1:
    movabs rbx, KERNEL_BASE
    mov rcx, [rbx]
user_after_fault:
    mov ebx, 0x5eed
    mov eax, 2
    syscall
    ud2
user_blob_end:

.align 8
sys1_rax: .quad 0
sys1_rcx: .quad 0
sys1_rip: .quad 0
sys1_cs: .quad 0
sys2_rbx: .quad 0
m_sys1: .asciz "rax of the user's syscall"
m_sys1_rcx: .asciz "frame RCX holds the user return address"
m_sys1_rip: .asciz "frame RIP of the user syscall"
m_sys1_cs: .asciz "frame CS of a user-mode syscall (RPL3)"
m_user_pf: .asciz "a user access to a kernel address raises #PF"
m_user_pf_err: .asciz "#PF error code in user mode (U, read, not present)"
m_user_pf_cr2: .asciz "#PF CR2 in user mode"
m_sys2: .asciz "user registers reach the second syscall"
.align 16
    .fill 8192, 1, 0
kernel_stack_top:
