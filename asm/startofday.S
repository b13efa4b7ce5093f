# startofday: a PV kernel's whole start of day, done the way small PV test frameworks
# (XTF's pv64 environment) do it, with nothing from pv.inc: only Xen's boot ABI (entry
# with RSI = start_info, the hypercall page) and hypercalls. It moves to its own stack,
# maps shared_info, reads its CPUID policy with the forced-emulation prefix (Xen's
# leaves: signature, version), installs a trap table and its event, failsafe and
# syscall callbacks (CALLBACKOP_register) and a kernel stack for bounces, loads its own
# GDT (the frame remapped read-only first, as set_gdt requires) and a data segment from
# it, and then writes everything through the PV console ring (start_info's console
# frame and event channel), one line through console_io in between to show the two
# interleave. Then: int3 comes back through the trap table; an IPI sent to itself is
# delivered to the event callback once; VIRQ_TIMER with a single-shot timer wakes it
# from sched_op block; it builds a user address space (pages of its own image,
# remapped read-only, pinned), drops to user mode with HYPERVISOR_iret, and the user
# program's syscalls come back through the syscall callback with the registers it set.
# A wrong value or an unexpected exception is a FAILURE; each step prints its name.

# --- Xen's ABI: the numbers a PV kernel carries ---------------------------------------
.equ HC_set_trap_table, 0
.equ HC_set_gdt, 2
.equ HC_stack_switch, 3
.equ HC_update_va_mapping, 14
.equ HC_xen_version, 17
.equ HC_console_io, 18
.equ HC_vcpu_op, 24
.equ HC_mmuext_op, 26
.equ HC_sched_op, 29
.equ HC_callback_op, 30
.equ HC_event_channel_op, 32
.equ CONSOLEIO_write, 0
.equ XENVER_version, 0
.equ SCHEDOP_block, 1
.equ SCHEDOP_shutdown, 2
.equ SHUTDOWN_poweroff, 0
.equ CALLBACKOP_register, 0
.equ CALLBACKTYPE_event, 0
.equ CALLBACKTYPE_failsafe, 1
.equ CALLBACKTYPE_syscall, 2
.equ CALLBACKF_mask_events, 1
.equ EVTCHNOP_bind_virq, 1
.equ EVTCHNOP_send, 4
.equ EVTCHNOP_bind_ipi, 7
.equ VIRQ_TIMER, 0
.equ VCPUOP_set_singleshot_timer, 8
.equ MMUEXT_PIN_L4_TABLE, 3
.equ MMUEXT_NEW_USER_BASEPTR, 15
.equ UVMF_INVLPG, 2
.equ VGCF_in_syscall, 0x100
.equ FLAT_KERNEL_SS, 0xe02b
.equ FLAT_USER_CS, 0xe033
.equ FLAT_USER_SS, 0xe02b
.equ SI_shared_info, 40
.equ SI_console_mfn, 72
.equ SI_console_evtchn, 80
.equ SI_mfn_list, 104
.equ M2P_HI, 0xffff8000
.equ KERNEL_BASE, 0xffffffff80000000
.equ PTE_P, 1
.equ PTE_RW, 2
.equ PTE_US, 4
.equ PTE_A, 0x20
.equ PTE_D, 0x40
.equ RFLAGS_IF, 0x200
.equ CONS_OUT_PROD, 3084
.equ CONS_OUT_CONS, 3080
.equ UPCALL_PENDING, shared_info + 0
.equ UPCALL_MASK, shared_info + 1
.equ PENDING_SEL, shared_info + 8
.equ SYSTEM_TIME, shared_info + 48
.equ EVTCHN_PENDING, shared_info + 2048
.equ DATA_DPL0, 0x00cf93000000ffff
.equ SEL_DATA1, 0x0b
.equ USER_CODE_VA, 0x400000
.equ USER_STACK_TOP, 0x402000

# The hypercall page opens the image, so it is page-aligned without an .align.
hypercall_page:
    .fill 4096, 1, 0xcc
.equ iret_stub, hypercall_page + 23 * 32

_start:
    lea rsp, [rip + stack_top]
    mov [rip + start_info], rsi
    # shared_info over the page the image reserves for it
    lea rdi, [rip + shared_info]
    mov rsi, [rsi + SI_shared_info]
    or rsi, PTE_P | PTE_RW | PTE_A | PTE_D
    mov edx, UVMF_INVLPG
    mov eax, HC_update_va_mapping
    call hypercall
    test rax, rax
    jnz no_shared_info
    # the CPUID policy, before any trap table, through Xen's forced-emulation prefix
    mov eax, 0x40000000
    xor ecx, ecx
    .byte 0x0f, 0x0b, 0x78, 0x65, 0x6e
    cpuid
    mov [rip + xen_leaf0], eax
    mov [rip + xen_leaf0 + 4], ebx
    mov [rip + xen_leaf0 + 8], ecx
    mov [rip + xen_leaf0 + 12], edx
    mov eax, 0x40000001
    xor ecx, ecx
    .byte 0x0f, 0x0b, 0x78, 0x65, 0x6e
    cpuid
    mov [rip + xen_leaf1], eax
    mov eax, 1
    xor ecx, ecx
    .byte 0x0f, 0x0b, 0x78, 0x65, 0x6e
    cpuid
    mov [rip + leaf1_ecx], ecx
    lea rdi, [rip + trap_table]
    mov eax, HC_set_trap_table
    call hypercall
    mov ebx, CALLBACKTYPE_event
    lea rcx, [rip + event_entry]
    xor edx, edx
    call register_callback
    mov ebx, CALLBACKTYPE_failsafe
    lea rcx, [rip + failsafe_entry]
    xor edx, edx
    call register_callback
    mov ebx, CALLBACKTYPE_syscall
    lea rcx, [rip + syscall_entry]
    mov edx, CALLBACKF_mask_events
    call register_callback
    mov edi, FLAT_KERNEL_SS
    lea rsi, [rip + kernel_stack_top]
    mov eax, HC_stack_switch
    call hypercall
    call console_init
    lea rdi, [rip + m_hello]
    call puts
    call check_alignment
    call check_cpuid
    call own_gdt
    call interleave
    call breakpoint_trap
    call ipi_to_self
    call timer_wakes_block
    call user_round_trip
    jmp finish

no_shared_info:
    # no console yet: say it through console_io and stop
    mov edi, CONSOLEIO_write
    mov esi, m_no_shared_info_end - m_no_shared_info
    lea rdx, [rip + m_no_shared_info]
    mov eax, HC_console_io
    call hypercall
    jmp power_off

# hypercall(rax = number, rdi, rsi, rdx, r10, r8 = arguments): through the page's stub
hypercall:
    push rcx
    push r11
    shl rax, 5
    lea rcx, [rip + hypercall_page]
    add rax, rcx
    call rax
    pop r11
    pop rcx
    ret

# register_callback(ebx = type, rcx = address, edx = flags)
register_callback:
    mov word ptr [rip + cb_arg], bx
    mov word ptr [rip + cb_arg + 2], dx
    mov [rip + cb_arg + 8], rcx
    mov edi, CALLBACKOP_register
    lea rsi, [rip + cb_arg]
    mov eax, HC_callback_op
    call hypercall
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_callback]
    jmp check

# mfn_to_va(rdi = mfn) -> rax: where the boot mapping puts a frame (via the M2P)
mfn_to_va:
    mov rax, M2P_HI
    shl rax, 32
    mov rax, [rax + rdi * 8]
    shl rax, 12
    push rdx
    movabs rdx, KERNEL_BASE
    add rax, rdx
    pop rdx
    ret

# va_to_mfn(rdi = va in the image) -> rax (via start_info's mfn_list)
va_to_mfn:
    movabs rax, KERNEL_BASE
    push rdi
    sub rdi, rax
    shr rdi, 12
    mov rax, [rip + start_info]
    mov rax, [rax + SI_mfn_list]
    mov rax, [rax + rdi * 8]
    pop rdi
    ret

# map_readonly(rdi = va of an image page): so Xen can type it (page table, descriptors)
map_readonly:
    push rdi
    call va_to_mfn
    mov rsi, rax
    shl rsi, 12
    or rsi, PTE_P | PTE_A
    mov edx, UVMF_INVLPG
    mov eax, HC_update_va_mapping
    call hypercall
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_readonly]
    call check
    pop rdi
    ret

# send(edi = port)
send:
    mov [rip + port_arg], edi
    mov edi, EVTCHNOP_send
    lea rsi, [rip + port_arg]
    mov eax, HC_event_channel_op
    jmp hypercall

# --- the PV console ring --------------------------------------------------------------
console_init:
    mov rax, [rip + start_info]
    mov rdi, [rax + SI_console_mfn]
    call mfn_to_va
    mov [rip + console], rax
    mov rax, [rip + start_info]
    mov eax, dword ptr [rax + SI_console_evtchn]
    mov [rip + console_port], eax
    ret

# puts(rdi = NUL-terminated string): into the ring's out[], then notify
puts:
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    mov rbx, [rip + console]
    mov ecx, dword ptr [rbx + CONS_OUT_PROD]
puts_next:
    movzx edx, byte ptr [rdi]
    test dl, dl
    jz puts_done
    mov eax, ecx
    sub eax, dword ptr [rbx + CONS_OUT_CONS]
    cmp eax, 2048
    jb puts_room
    mov dword ptr [rbx + CONS_OUT_PROD], ecx
    push rdi
    mov edi, [rip + console_port]
    call send
    pop rdi
    jmp puts_next
puts_room:
    mov eax, ecx
    and eax, 2047
    mov [rbx + 1024 + rax], dl
    inc ecx
    inc rdi
    jmp puts_next
puts_done:
    mov dword ptr [rbx + CONS_OUT_PROD], ecx
    mov edi, [rip + console_port]
    call send
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    ret

# print_hex(rdi = value)
print_hex:
    push rdi
    push rcx
    push rdx
    push rsi
    lea rsi, [rip + hexbuf + 2]
    mov ecx, 16
print_hex_digit:
    mov rdx, rdi
    shr rdx, 60
    add dl, 0x30
    cmp dl, 0x3a
    jb print_hex_put
    add dl, 0x27
print_hex_put:
    mov [rsi], dl
    inc rsi
    shl rdi, 4
    dec ecx
    jnz print_hex_digit
    lea rdi, [rip + hexbuf]
    call puts
    pop rsi
    pop rdx
    pop rcx
    pop rdi
    ret

# check(rdi = actual, rsi = expected, rdx = what): a FAILURE unless equal
check:
    cmp rdi, rsi
    je check_ok
    push rdi
    push rsi
    lea rdi, [rip + m_failed]
    call puts
    mov rdi, rdx
    call puts
    lea rdi, [rip + m_got]
    call puts
    mov rdi, [rsp + 8]
    call print_hex
    lea rdi, [rip + m_expected]
    call puts
    mov rdi, [rsp]
    call print_hex
    lea rdi, [rip + m_newline]
    call puts
    mov qword ptr [rip + failures], 1
    pop rsi
    pop rdi
check_ok:
    ret

# --- the steps --------------------------------------------------------------------------
check_alignment:
    lea rdi, [rip + gdt_page]
    and edi, 0xfff
    xor esi, esi
    lea rdx, [rip + m_aligned]
    call check
    lea rdi, [rip + user_code]
    and edi, 0xfff
    xor esi, esi
    lea rdx, [rip + m_aligned]
    jmp check

check_cpuid:
    lea rdi, [rip + m_cpuid]
    call puts
    mov edi, dword ptr [rip + xen_leaf0 + 4]
    mov esi, 0x566e6558
    lea rdx, [rip + m_cpuid_signature]
    call check
    mov edi, dword ptr [rip + xen_leaf0 + 8]
    mov esi, 0x65584d4d
    lea rdx, [rip + m_cpuid_signature]
    call check
    mov edi, dword ptr [rip + xen_leaf0 + 12]
    mov esi, 0x4d4d566e
    lea rdx, [rip + m_cpuid_signature]
    call check
    cmp dword ptr [rip + xen_leaf0], 0x40000002
    setae dil
    movzx edi, dil
    mov esi, 1
    lea rdx, [rip + m_cpuid_max]
    call check
    mov edi, XENVER_version
    xor esi, esi
    mov eax, HC_xen_version
    call hypercall
    mov edi, dword ptr [rip + xen_leaf1]
    mov esi, eax
    lea rdx, [rip + m_cpuid_version]
    call check
    mov edi, dword ptr [rip + leaf1_ecx]
    shr edi, 31
    mov esi, 1
    lea rdx, [rip + m_cpuid_hypervisor]
    jmp check

own_gdt:
    lea rdi, [rip + m_gdt]
    call puts
    movabs rax, DATA_DPL0
    mov [rip + gdt_page + 8], rax
    lea rdi, [rip + gdt_page]
    call map_readonly
    lea rdi, [rip + gdt_page]
    call va_to_mfn
    mov [rip + frame_list], rax
    lea rdi, [rip + frame_list]
    mov esi, 16
    mov eax, HC_set_gdt
    call hypercall
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_set_gdt]
    call check
    mov ax, SEL_DATA1
    mov ds, ax
    mov rdi, [marker]
    xor eax, eax
    mov ds, ax
    movabs rsi, 0x6764746d61726b21
    lea rdx, [rip + m_through_ds]
    jmp check

interleave:
    lea rdi, [rip + m_ring_before]
    call puts
    mov edi, CONSOLEIO_write
    mov esi, m_console_io_end - m_console_io
    lea rdx, [rip + m_console_io]
    mov eax, HC_console_io
    call hypercall
    lea rdi, [rip + m_ring_after]
    jmp puts

breakpoint_trap:
    lea rdi, [rip + m_int3]
    call puts
    int3
    mov rdi, [rip + int3_count]
    mov esi, 1
    lea rdx, [rip + m_int3_back]
    jmp check

ipi_to_self:
    lea rdi, [rip + m_ipi]
    call puts
    mov dword ptr [rip + ipi_arg], 0
    mov edi, EVTCHNOP_bind_ipi
    lea rsi, [rip + ipi_arg]
    mov eax, HC_event_channel_op
    call hypercall
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_bind_ipi]
    call check
    mov eax, dword ptr [rip + ipi_arg + 4]
    mov [rip + ipi_port], rax
    mov byte ptr [rip + UPCALL_MASK], 0
    mov edi, eax
    call send
    mov rdi, [rip + ipi_events]
    mov esi, 1
    lea rdx, [rip + m_ipi_delivered]
    jmp check

timer_wakes_block:
    lea rdi, [rip + m_timer]
    call puts
    mov dword ptr [rip + virq_arg], VIRQ_TIMER
    mov dword ptr [rip + virq_arg + 4], 0
    mov edi, EVTCHNOP_bind_virq
    lea rsi, [rip + virq_arg]
    mov eax, HC_event_channel_op
    call hypercall
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_bind_virq]
    call check
    mov eax, dword ptr [rip + virq_arg + 8]
    mov [rip + timer_port], rax
    # masked while arming, so the wake-up can only come through block
    mov byte ptr [rip + UPCALL_MASK], 1
    mov rax, [rip + SYSTEM_TIME]
    add rax, 200000
    mov [rip + sshot_arg], rax
    mov qword ptr [rip + sshot_arg + 8], 0
    mov edi, VCPUOP_set_singleshot_timer
    xor esi, esi
    lea rdx, [rip + sshot_arg]
    mov eax, HC_vcpu_op
    call hypercall
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_sshot]
    call check
    mov rdi, [rip + timer_events]
    xor esi, esi
    lea rdx, [rip + m_no_timer_yet]
    call check
    mov edi, SCHEDOP_block
    xor esi, esi
    mov eax, HC_sched_op
    call hypercall
    mov rdi, [rip + timer_events]
    mov esi, 1
    lea rdx, [rip + m_timer_woke]
    call check
    mov rdi, [rip + SYSTEM_TIME]
    cmp rdi, [rip + sshot_arg]
    setae dil
    movzx edi, dil
    mov esi, 1
    lea rdx, [rip + m_timer_late_enough]
    jmp check

user_round_trip:
    lea rdi, [rip + m_user]
    call puts
    # L4[0] -> L3, L3[0] -> L2, L2[2] -> L1 (0x400000), L1[0] = code, L1[1] = stack
    lea rdi, [rip + user_l3]
    call va_to_mfn
    shl rax, 12
    or rax, PTE_P | PTE_RW | PTE_US | PTE_A
    mov [rip + user_l4], rax
    lea rdi, [rip + user_l2]
    call va_to_mfn
    shl rax, 12
    or rax, PTE_P | PTE_RW | PTE_US | PTE_A
    mov [rip + user_l3], rax
    lea rdi, [rip + user_l1]
    call va_to_mfn
    shl rax, 12
    or rax, PTE_P | PTE_RW | PTE_US | PTE_A
    mov [rip + user_l2 + 16], rax
    lea rdi, [rip + user_code]
    call va_to_mfn
    shl rax, 12
    or rax, PTE_P | PTE_US | PTE_A
    mov [rip + user_l1], rax
    lea rdi, [rip + user_stack]
    call va_to_mfn
    shl rax, 12
    or rax, PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D
    mov [rip + user_l1 + 8], rax
    lea rdi, [rip + user_code]
    lea rsi, [rip + user_program]
    mov ecx, user_program_end - user_program
    rep movsb
    lea rdi, [rip + user_l4]
    call map_readonly
    lea rdi, [rip + user_l3]
    call map_readonly
    lea rdi, [rip + user_l2]
    call map_readonly
    lea rdi, [rip + user_l1]
    call map_readonly
    mov edi, MMUEXT_PIN_L4_TABLE
    call user_l4_op
    lea rdx, [rip + m_pin]
    call check
    mov edi, MMUEXT_NEW_USER_BASEPTR
    call user_l4_op
    lea rdx, [rip + m_user_baseptr]
    call check
    # HYPERVISOR_iret to user mode: { flags, RIP, CS, RFLAGS, RSP, SS }
    mov [rip + kernel_rsp], rsp
    push FLAT_USER_SS
    push USER_STACK_TOP
    push RFLAGS_IF
    push FLAT_USER_CS
    push USER_CODE_VA
    push 0
    jmp iret_stub
back_from_user:
    mov rdi, [rip + user_first]
    mov esi, 0x1111
    lea rdx, [rip + m_user_first]
    call check
    mov rdi, [rip + user_second]
    mov esi, 0x2222
    lea rdx, [rip + m_user_second]
    call check
    mov rdi, [rip + user_cs]
    and edi, 3
    mov esi, 3
    lea rdx, [rip + m_user_cs]
    jmp check

# user_l4_op(edi = mmuext cmd) -> rdi = result, rsi = 0
user_l4_op:
    mov [rip + mmuext_arg], edi
    lea rdi, [rip + user_l4]
    call va_to_mfn
    mov [rip + mmuext_arg + 8], rax
    lea rdi, [rip + mmuext_arg]
    mov esi, 1
    xor edx, edx
    mov r10d, 0x7ff0
    mov eax, HC_mmuext_op
    call hypercall
    mov rdi, rax
    xor esi, esi
    ret

# The user program: two syscalls, rbx carrying a value each time (copied to 0x400000).
user_program:
    mov ebx, 0x1111
    syscall
    mov ebx, 0x2222
    syscall
    ud2
user_program_end:

finish:
    lea rdi, [rip + m_result]
    call puts
    lea rdi, [rip + m_success]
    cmp qword ptr [rip + failures], 0
    je finish_print
    lea rdi, [rip + m_failure]
finish_print:
    call puts
power_off:
    mov dword ptr [rip + shutdown_arg], SHUTDOWN_poweroff
    mov edi, SCHEDOP_shutdown
    lea rsi, [rip + shutdown_arg]
    mov eax, HC_sched_op
    call hypercall
    ud2

# --- entry points Xen bounces to: RCX and R11 on top of the frame -----------------------
# The syscall callback (events masked): the first syscall returns to user mode, the
# second ends the round trip on the kernel stack saved before leaving.
syscall_entry:
    mov rax, [rsp + 24]
    mov [rip + user_cs], rax
    cmp qword ptr [rip + user_first], 0
    jne syscall_second
    mov [rip + user_first], rbx
    pop rcx
    pop r11
    push VGCF_in_syscall
    jmp iret_stub
syscall_second:
    mov [rip + user_second], rbx
    mov rsp, [rip + kernel_rsp]
    mov byte ptr [rip + UPCALL_MASK], 0
    jmp back_from_user

# The event callback (events masked on entry): take the pending ports of word 0 and
# count the ones this kernel bound.
event_entry:
    pop rcx
    pop r11
    push rax
    push rdx
    mov byte ptr [rip + UPCALL_PENDING], 0
    xor eax, eax
    xchg [rip + PENDING_SEL], rax
    xor eax, eax
    xchg [rip + EVTCHN_PENDING], rax
    mov rdx, [rip + ipi_port]
    bt rax, rdx
    jnc event_not_ipi
    inc qword ptr [rip + ipi_events]
event_not_ipi:
    mov rdx, [rip + timer_port]
    test rdx, rdx
    jz event_done
    bt rax, rdx
    jnc event_done
    inc qword ptr [rip + timer_events]
event_done:
    pop rdx
    pop rax
    jmp iret_frame

failsafe_entry:
    lea rdi, [rip + m_failsafe]
    call puts
    mov qword ptr [rip + failures], 1
    jmp finish

int3_entry:
    pop rcx
    pop r11
    inc qword ptr [rip + int3_count]
    jmp iret_frame

# iret_frame: back to the interrupted context (flags 0: RCX/R11 from the stub)
iret_frame:
    push 0
    jmp iret_stub

unexpected_entry:
    lea rdi, [rip + m_unexpected]
    call puts
    mov rdi, [rsp + 16]
    call print_hex
    lea rdi, [rip + m_space]
    call puts
    mov rdi, [rsp + 24]
    call print_hex
    lea rdi, [rip + m_close]
    call puts
    mov qword ptr [rip + failures], 1
    jmp finish

trap_table:
    .byte 0, 0
    .word 0xe033
    .long 0
    .quad unexpected_entry
    .byte 3, 3
    .word 0xe033
    .long 0
    .quad int3_entry
    .byte 6, 0
    .word 0xe033
    .long 0
    .quad unexpected_entry
    .byte 13, 0
    .word 0xe033
    .long 0
    .quad unexpected_entry
    .byte 14, 0
    .word 0xe033
    .long 0
    .quad unexpected_entry
    .quad 0, 0

.align 8
start_info: .quad 0
console: .quad 0
console_port: .quad 0
failures: .quad 0
cb_arg: .quad 0, 0
port_arg: .quad 0
ipi_arg: .quad 0
ipi_port: .quad 0
ipi_events: .quad 0
virq_arg: .quad 0, 0
timer_port: .quad 0
timer_events: .quad 0
sshot_arg: .quad 0, 0
int3_count: .quad 0
xen_leaf0: .quad 0, 0
xen_leaf1: .quad 0
leaf1_ecx: .quad 0
frame_list: .quad 0
marker: .quad 0x6764746d61726b21
mmuext_arg: .quad 0, 0, 0
kernel_rsp: .quad 0
user_first: .quad 0
user_second: .quad 0
user_cs: .quad 0
shutdown_arg: .quad 0
hexbuf: .ascii "0x0000000000000000"
    .byte 0
m_no_shared_info: .ascii "startofday: cannot map shared_info\n"
m_no_shared_info_end:
m_console_io: .ascii "  (this line through console_io)\n"
m_console_io_end:
m_hello: .asciz "startofday: own stack, shared_info, trap table, callbacks, PV console ring\n"
m_gdt: .asciz "startofday: own GDT\n"
m_cpuid: .asciz "startofday: CPUID through the forced-emulation prefix\n"
m_cpuid_signature: .asciz "CPUID 0x40000000 signature XenVMMXenVMM"
m_cpuid_max: .asciz "CPUID 0x40000000 max leaf"
m_cpuid_version: .asciz "CPUID 0x40000001 against XENVER_version"
m_cpuid_hypervisor: .asciz "CPUID 1 hypervisor bit"
m_ring_before: .asciz "startofday: the ring, then console_io, then the ring\n"
m_ring_after: .asciz "  (and the ring again)\n"
m_int3: .asciz "startofday: int3 through the trap table\n"
m_ipi: .asciz "startofday: an IPI to itself\n"
m_timer: .asciz "startofday: VIRQ_TIMER wakes sched_op block\n"
m_user: .asciz "startofday: user mode and back\n"
m_result: .asciz "Test result: "
m_success: .asciz "SUCCESS\n"
m_failure: .asciz "FAILURE\n"
m_failed: .asciz "failed: "
m_got: .asciz " (got "
m_expected: .asciz ", expected "
m_newline: .asciz ")\n"
m_unexpected: .asciz "unexpected exception, frame (error code/RIP, RIP/CS): "
m_space: .asciz " "
m_close: .asciz "\n"
m_failsafe: .asciz "failsafe callback entered\n"
m_callback: .asciz "CALLBACKOP_register"
m_readonly: .asciz "remapping an image page read-only"
m_aligned: .asciz "page alignment of the image's page-sized data"
m_set_gdt: .asciz "set_gdt"
m_through_ds: .asciz "a read through DS loaded from its own GDT"
m_int3_back: .asciz "int3 handled once and returned"
m_bind_ipi: .asciz "EVTCHNOP_bind_ipi"
m_ipi_delivered: .asciz "the IPI delivered once"
m_bind_virq: .asciz "EVTCHNOP_bind_virq VIRQ_TIMER"
m_sshot: .asciz "VCPUOP_set_singleshot_timer"
m_no_timer_yet: .asciz "no timer event before blocking"
m_timer_woke: .asciz "the timer event woke block"
m_timer_late_enough: .asciz "system_time at or past the deadline"
m_pin: .asciz "MMUEXT_PIN_L4_TABLE of the user tables"
m_user_baseptr: .asciz "MMUEXT_NEW_USER_BASEPTR"
m_user_first: .asciz "rbx of the first user syscall"
m_user_second: .asciz "rbx of the second user syscall"
m_user_cs: .asciz "CS RPL of a user-mode syscall"
# Page-sized data: shared_info's place, the GDT frame, the user address space.
.align 4096
shared_info:
    .fill 4096, 1, 0
gdt_page:
    .fill 4096, 1, 0
user_l4:
    .fill 4096, 1, 0
user_l3:
    .fill 4096, 1, 0
user_l2:
    .fill 4096, 1, 0
user_l1:
    .fill 4096, 1, 0
user_code:
    .fill 4096, 1, 0
user_stack:
    .fill 4096, 1, 0
.align 16
    .fill 8192, 1, 0
kernel_stack_top:
    .fill 16384, 1, 0
stack_top:
