# movss: a data breakpoint hit by MOV SS is held off until the end of the next
# instruction (the interrupt shadow), as XTF's XSA-260 test checks.
# - mov ss, [watched]; nop: #DB after the nop, not after the mov.
# - mov ss, [watched]; int3: the int3 enters Xen, so the #DB arrives in Xen's context and
#   is dropped: the guest sees its #BP and nothing else.
# - from user mode, mov ss, [watched]; syscall: the syscall callback runs, and no #DB.
# A #DB in the wrong place, or one that should have been dropped, is a FAILURE or ERROR.
.include "pv.inc"
.include "userspace.inc"

.equ DR7_L0_RW4, 0xF0001                 # L0, RW0=11 (read/write), LEN0=11 (4 bytes)
.equ USER_SS_VA, USER_STACK_TOP - 0x100   # in the user's (writable) stack page

# set_dr(rdi = register, rsi = value): set_debugreg, which must succeed
set_dr:
    call hc_set_debugreg
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_set_dr]
    jmp check_eq

test_main:
    call user_space_tables
    mov eax, ss
    mov [rip + ss_value], eax
    xor edi, edi
    lea rsi, [rip + ss_value]
    call set_dr
    mov edi, 7
    mov esi, DR7_L0_RW4
    call set_dr

    # the #DB comes after the instruction following the mov ss
    lea rdi, [rip + after_nop]
    call expect_fault
    mov ss, [rip + ss_value]
    nop
after_nop:
    mov rdi, [rip + fault_vector]
    mov esi, 1
    lea rdx, [rip + m_db]
    call check_eq
    mov rdi, [rip + fault_rip]
    lea rsi, [rip + after_nop]
    lea rdx, [rip + m_db_rip]
    call check_eq

    # an int3 in the shadow: #BP only (a second fault would be unexpected: ERROR)
    lea rdi, [rip + after_int3]
    call expect_fault
    mov ss, [rip + ss_value]
    int3
after_int3:
    mov rdi, [rip + fault_vector]
    mov esi, 3
    lea rdx, [rip + m_bp]
    call check_eq
    nop
    nop

    # user mode: a syscall in the shadow reaches the syscall callback, no #DB
    xor edi, edi
    mov esi, USER_SS_VA
    call set_dr
    mov rdi, [rip + u_stack]
    mov esi, 480                          # USER_SS_VA in the stack page
    mov edx, [rip + ss_value]
    call frame_write
    lea rsi, [rip + user_blob]
    lea rcx, [rip + user_blob_end]
    sub rcx, rsi
    call user_space_load
    lea rdx, [rip + syscall_entry]
    call user_space_install
    mov edi, USER_CODE_VA
    call user_call
    mov rdi, [rip + syscall_rax]
    mov esi, 5
    lea rdx, [rip + m_syscall]
    call check_eq
    mov edi, 7
    xor esi, esi
    call set_dr
    ret

syscall_entry:
    mov [rip + syscall_rax], rax
    jmp user_return

user_blob:
    mov ecx, USER_SS_VA
    mov eax, 5
    mov ss, [rcx]
    syscall
    ud2
user_blob_end:

.align 8
ss_value: .quad 0
syscall_rax: .quad 0
.align 16
kernel_stack: .fill 4096, 1, 0
kernel_stack_top:
m_set_dr: .asciz "set_debugreg"
m_db: .asciz "a data breakpoint on mov ss raises #DB"
m_db_rip: .asciz "the #DB comes after the next instruction"
m_bp: .asciz "an int3 in the shadow is the guest's #BP"
m_syscall: .asciz "a syscall in the shadow reaches the callback"
