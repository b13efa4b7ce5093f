# userptwrite: a page-table store from guest user mode is an ordinary #PF, never emulated.
# With VMASST_TYPE_writable_pagetables on, Xen emulates a store into a page table through
# its read-only mapping only in guest kernel mode (fixup_page_fault checks
# guest_kernel_mode before the ptwr path); from user mode it is a #PF with P|W|U bounced
# to the kernel. The kernel builds a user address space whose L1 also maps itself
# read-only at 0x402000, enters user mode, and the user program stores a valid entry into
# slot 3 of that L1: the kernel must see #PF, error code 7, CR2 0x402018, and the user
# must then read the slot back as 0. The kernel then makes the same store through its own
# read-only mapping of the table, which is emulated and applied. A store that is applied
# from user mode, or a wrong error code, is a FAILURE.
.include "pv.inc"
.include "userspace.inc"

.equ VGCF_in_syscall, 0x100
.equ USER_L1_VA, 0x402000
.equ SLOT3, USER_L1_VA + 24
.equ VMASST_CMD_enable, 0
.equ VMASST_TYPE_writable_pagetables, 2
.equ PTE_PU, PTE_P | PTE_US



test_main:
    call user_space_tables
    mov rdi, [rip + u_l1]                     # the L1 maps itself, read-only, at 0x402000
    mov esi, 2
    mov rdx, [rip + u_l1]
    shl rdx, 12
    or rdx, PTE_P | PTE_US
    call frame_write
    # the value the stores write: the stack frame again, read-only
    mov rax, [rip + u_stack]
    shl rax, 12
    or rax, PTE_PU
    mov [rip + entry_value], rax
    mov [rip + user_value], rax
    mov edi, VMASST_CMD_enable
    mov esi, VMASST_TYPE_writable_pagetables
    call hc_vm_assist
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
    mov esi, PTE_P | PTE_RW | PTE_US
    lea rdx, [rip + m_user_pf_err]
    call check_eq
    mov rdi, [rip + fault_cr2]
    mov esi, SLOT3
    lea rdx, [rip + m_user_pf_cr2]
    call check_eq
    mov rdi, [rip + sys2_rbx]
    xor esi, esi
    lea rdx, [rip + m_sys2]
    call check_eq
    # the same store from kernel mode, through a read-only mapping: emulated and applied
    call scratch_va
    mov rdi, rax
    mov rsi, [rip + u_l1]
    shl rsi, 12
    or rsi, PTE_P
    mov edx, UVMF_INVLPG
    call hc_update_va_mapping
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_map_l1]
    call check_eq
    call scratch_va
    mov rbx, [rip + entry_value]
    mov [rax + 24], rbx
    mov rdi, [rax + 24]
    movabs rcx, 0x000ffffffffff001
    and rdi, rcx
    mov rsi, rbx
    and rsi, rcx
    lea rdx, [rip + m_kernel_store]
    call check_eq
    # writable page tables cover L1 tables only: a kernel store into an L2 through a
    # read-only mapping is the kernel's own #PF, in shadow mode as in direct mode
    call scratch_va
    mov rdi, rax
    mov rsi, [rip + u_l2]
    shl rsi, 12
    or rsi, PTE_P
    mov edx, UVMF_INVLPG
    call hc_update_va_mapping
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_map_l2]
    call check_eq
    lea rdi, [rip + after_l2_store]
    call expect_fault
    call scratch_va
    mov rbx, [rip + entry_value]
    mov [rax + 40], rbx
after_l2_store:
    mov rdi, [rip + fault_vector]
    mov esi, 14
    lea rdx, [rip + m_l2_pf]
    call check_eq
    mov rdi, [rip + fault_err]
    and edi, PTE_P | PTE_RW
    mov esi, PTE_P | PTE_RW
    lea rdx, [rip + m_l2_pf_err]
    call check_eq
    call scratch_va
    mov rdi, [rax + 40]
    xor esi, esi
    lea rdx, [rip + m_l2_slot]
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
    mov rcx, SLOT3
    mov rbx, [rip + user_value]
    mov [rcx], rbx
user_after_fault:
    mov rbx, [rcx]
    mov eax, 2
    syscall
    ud2
.align 8
user_value: .quad 0
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
m_user_pf: .asciz "a user store into its page table raises #PF"
m_user_pf_err: .asciz "#PF error code of the user store (P|W|U)"
m_user_pf_cr2: .asciz "#PF CR2 of the user store"
m_sys2: .asciz "the slot the user stored into is still empty"
m_map_l1: .asciz "a kernel read-only mapping of the user L1"
m_kernel_store: .asciz "the kernel store into the L1, emulated and applied"
m_map_l2: .asciz "a kernel read-only mapping of the user L2"
m_l2_pf: .asciz "a kernel store into an L2 raises #PF"
m_l2_pf_err: .asciz "#PF error code of the L2 store (P|W)"
m_l2_slot: .asciz "the L2 slot stays empty"
entry_value: .quad 0
.align 16
    .fill 8192, 1, 0
kernel_stack_top:
