# segsel: the CS and SS a PV kernel sees around Xen's entry points.
# The kernel loads code segments of its own GDT (a 64-bit one, a 32-bit one) and a data
# segment, and checks:
# - after a hypercall, CS and SS are sysret's flat 0xe033 / 0xe02b, whatever was loaded;
# - an exception bounce runs its handler on FLAT_KERNEL_CS/SS, and its frame holds the
#   kernel's own CS (RPL 0, kernel mode) and SS; HYPERVISOR_iret loads them back;
# - a user program in compatibility mode (its own 32-bit CS) doing `syscall` with no
#   syscall32 callback gets #UD at the syscall; with one, the syscall32 callback runs on
#   FLAT_KERNEL_CS with FLAT_USER_CS32 / FLAT_USER_SS32 (0xe023 / 0xe02b) in its frame.
# A different selector anywhere, or a missing trap, is a FAILURE.
.include "pv.inc"
.include "userspace.inc"

.equ CODE64, 0x00af9b000000ffff              # 64-bit code, DPL 0 (Xen makes it 3)
.equ CODE32, 0x00cf9b000000ffff              # 32-bit code
.equ DATA, 0x00cf93000000ffff
.equ SEL64, 0x0b
.equ SEL32, 0x13
.equ SELDATA, 0x1b
.equ FLAT_USER_CS32, 0xe023
.equ CALLBACKOP_register, 0
.equ CALLBACKTYPE_syscall32, 7

# to_cs(rdi = selector): continue at the caller's return address on that code segment
to_cs:
    pop rax
    push rdi
    push rax
    .byte 0x48, 0xcb                         # retfq
    
test_main:
    call user_space_tables
    mov edi, 1
    call top_mfn
    mov r12, rax
    mov rdi, r12
    mov esi, 1
    movabs rdx, CODE64
    call frame_write
    mov rdi, r12
    mov esi, 2
    movabs rdx, CODE32
    call frame_write
    mov rdi, r12
    mov esi, 3
    movabs rdx, DATA
    call frame_write
    mov [rip + frame_list], r12
    lea rdi, [rip + frame_list]
    mov esi, 16
    call hc_set_gdt
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_set_gdt]
    call check_eq
    lea rdi, [rip + my_trap_table]
    call hc_set_trap_table

    # a hypercall returns on the flat selectors
    mov edi, SEL64
    call to_cs
    mov eax, cs
    mov edi, eax
    mov esi, SEL64
    lea rdx, [rip + m_own_cs]
    call check_eq
    mov eax, SELDATA
    mov ss, ax
    xor edi, edi
    xor esi, esi
    call hc_xen_version
    mov eax, cs
    mov edi, eax
    mov esi, FLAT_KERNEL_CS
    lea rdx, [rip + m_sysret_cs]
    call check_eq
    mov eax, ss
    mov edi, eax
    mov esi, FLAT_KERNEL_SS
    lea rdx, [rip + m_sysret_ss]
    call check_eq

    # a bounce runs on FLAT_KERNEL_CS/SS; iret brings the kernel's selectors back
    mov edi, SEL64
    call to_cs
    mov eax, SELDATA
    mov ss, ax
    mov byte ptr [rip + bp_irets], 1
    int3
    mov eax, cs
    mov edi, eax
    mov esi, SEL64
    lea rdx, [rip + m_iret_cs]
    call check_eq
    mov eax, ss
    mov edi, eax
    mov esi, SELDATA
    lea rdx, [rip + m_iret_ss]
    call check_eq
    mov rdi, [rip + seen_frame_cs]
    mov esi, SEL64 & 0xfffc
    lea rdx, [rip + m_frame_cs]
    call check_eq
    mov rdi, [rip + seen_frame_ss]
    mov esi, SELDATA
    lea rdx, [rip + m_frame_ss]
    call check_eq
    mov rdi, [rip + seen_cs]
    mov esi, FLAT_KERNEL_CS
    lea rdx, [rip + m_handler_cs]
    call check_eq
    mov rdi, [rip + seen_ss]
    mov esi, FLAT_KERNEL_SS
    lea rdx, [rip + m_handler_ss]
    call check_eq
    mov edi, FLAT_KERNEL_CS
    call to_cs
    mov eax, FLAT_KERNEL_SS
    mov ss, ax

    # a compatibility-mode user syscall without a syscall32 callback: #UD at it
    lea rsi, [rip + user_blob]
    lea rcx, [rip + user_blob_end]
    sub rcx, rsi
    call user_space_load
    lea rdx, [rip + syscall_entry]
    call user_space_install
    mov edi, USER_CODE_VA
    call user_call
    mov rdi, [rip + seen_vector]
    mov esi, 6
    lea rdx, [rip + m_ud]
    call check_eq
    mov rdi, [rip + seen_rip]
    mov esi, USER_CODE_VA + (user_syscall - user_blob)
    lea rdx, [rip + m_ud_rip]
    call check_eq
    mov rdi, [rip + seen_frame_cs]
    mov esi, SEL32
    lea rdx, [rip + m_ud_cs]
    call check_eq

    # ... and with one, the syscall32 callback on the flat compat selectors
    mov word ptr [rip + cb_arg], CALLBACKTYPE_syscall32
    lea rax, [rip + syscall32_entry]
    mov [rip + cb_arg + 8], rax
    mov edi, CALLBACKOP_register
    lea rsi, [rip + cb_arg]
    call hc_callback_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_register]
    call check_eq
    mov edi, USER_CODE_VA
    call user_call
    mov rdi, [rip + seen_rax]
    mov esi, 7
    lea rdx, [rip + m_sys32_rax]
    call check_eq
    mov rdi, [rip + seen_frame_cs]
    mov esi, FLAT_USER_CS32
    lea rdx, [rip + m_sys32_cs]
    call check_eq
    mov rdi, [rip + seen_frame_ss]
    mov esi, FLAT_KERNEL_SS
    lea rdx, [rip + m_sys32_ss]
    call check_eq
    mov rdi, [rip + seen_rip]
    mov esi, USER_CODE_VA + (user_after_syscall - user_blob)
    lea rdx, [rip + m_sys32_rip]
    call check_eq
    mov rdi, [rip + seen_cs]
    mov esi, FLAT_KERNEL_CS
    lea rdx, [rip + m_sys32_handler_cs]
    call check_eq
    call install_traps
    ret

# record(rsp + 8 = frame { RCX, R11, RIP, CS, RFLAGS, RSP, SS }, with rax saved below it)
record_frame:
    mov rax, [rsp + 8 + 16]
    mov [rip + seen_rip], rax
    mov rax, [rsp + 8 + 24]
    and eax, 0xffff
    mov [rip + seen_frame_cs], rax
    mov rax, [rsp + 8 + 48]
    mov [rip + seen_frame_ss], rax
    mov eax, cs
    mov [rip + seen_cs], rax
    mov eax, ss
    mov [rip + seen_ss], rax
    ret

bp_handler:
    mov qword ptr [rip + seen_vector], 3
    call record_frame
    pop rcx
    pop r11
    jmp iret_to_frame

ud_handler:
    mov qword ptr [rip + seen_vector], 6
    call record_frame
    jmp user_return

syscall_entry:                               # the 64-bit syscall callback: not expected
    lea rdi, [rip + m_syscall64]
    call fail
    jmp user_return

syscall32_entry:
    mov [rip + seen_rax], rax
    call record_frame
    jmp user_return

# The user program: 64-bit at first, it moves to its 32-bit code segment and makes a
# syscall there (mov eax, 7 ; syscall, as raw bytes).
user_blob:
    push SEL32
    lea rax, [rip + user_compat]
    push rax
    .byte 0x48, 0xcb                         # retfq
user_compat:
    .byte 0xb8, 7, 0, 0, 0                   # mov eax, 7
user_syscall:
    .byte 0x0f, 0x05                         # syscall
user_after_syscall:
    .byte 0xeb, 0xfe                         # jmp $
user_blob_end:

.align 8
my_trap_table:
    .byte 3, 3
    .word FLAT_KERNEL_CS
    .long 0
    .quad bp_handler
    .byte 6, 0
    .word FLAT_KERNEL_CS
    .long 0
    .quad ud_handler
    .quad 0, 0
frame_list: .quad 0
cb_arg: .quad 0, 0
seen_vector: .quad 0
seen_rip: .quad 0
seen_frame_cs: .quad 0
seen_frame_ss: .quad 0
seen_cs: .quad 0
seen_ss: .quad 0
seen_rax: .quad 0
bp_irets: .byte 0
.align 16
kernel_stack: .fill 4096, 1, 0
kernel_stack_top:
m_set_gdt: .asciz "set_gdt"
m_own_cs: .asciz "CS after a far return to the kernel's own 64-bit segment"
m_sysret_cs: .asciz "CS after a hypercall"
m_sysret_ss: .asciz "SS after a hypercall"
m_iret_cs: .asciz "CS after HYPERVISOR_iret from the int3 handler"
m_iret_ss: .asciz "SS after HYPERVISOR_iret from the int3 handler"
m_frame_cs: .asciz "CS in the int3 bounce frame"
m_frame_ss: .asciz "SS in the int3 bounce frame"
m_handler_cs: .asciz "CS in the int3 handler"
m_handler_ss: .asciz "SS in the int3 handler"
m_ud: .asciz "a compat syscall with no syscall32 callback raises #UD"
m_ud_rip: .asciz "the #UD is at the syscall"
m_ud_cs: .asciz "CS in the #UD frame"
m_register: .asciz "CALLBACKOP_register syscall32"
m_sys32_rax: .asciz "rax in the syscall32 callback"
m_sys32_cs: .asciz "CS in the syscall32 frame"
m_sys32_ss: .asciz "SS in the syscall32 frame"
m_sys32_rip: .asciz "RIP in the syscall32 frame"
m_sys32_handler_cs: .asciz "CS in the syscall32 callback"
m_syscall64: .asciz "the 64-bit syscall callback ran for a compat syscall"
