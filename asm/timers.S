# timers: VIRQ_TIMER from the instruction clock. With VIRQ_TIMER bound and events on, a
# single-shot timer wakes a blocked vCPU (one timer upcall); a periodic timer interrupts a
# busy loop again and again; set_timer_op arms the single shot too; sched_op poll on a
# quiet port returns once its timeout has passed; vcpu_info's system_time moves forward
# and its version is even when read; a single shot in the past with
# VCPU_SSHOTTMR_future is -ETIME. A missing or extra upcall, time standing still, or a
# wrong errno is a FAILURE.
.include "pv.inc"

.equ EVTCHNOP_bind_virq, 1
.equ EVTCHNOP_bind_ipi, 7
.equ SCHEDOP_poll, 3
.equ VCPUOP_set_periodic_timer, 6
.equ VCPUOP_stop_periodic_timer, 7
.equ VCPUOP_set_singleshot_timer, 8
.equ RC_ETIME, -62
.equ VCPU0_time_version, shared_info + 32
.equ VCPU0_system_time, shared_info + 48
.equ EVTCHN_PENDING, shared_info + 2048
.equ VCPU0_pending_sel, shared_info + 8

# now -> rax: vcpu_info's system_time
now:
    mov rax, [rip + VCPU0_system_time]
    ret

test_main:
    lea rdi, [rip + event_entry]
    xor esi, esi
    xor edx, edx
    call hc_set_callbacks
    mov edi, EVTCHNOP_bind_virq
    lea rsi, [rip + virq_arg]
    call hc_event_channel_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_bind]
    call check_eq

    # a single shot wakes a blocked vCPU
    call now
    add rax, 100000
    mov [rip + sshot], rax
    mov edi, VCPUOP_set_singleshot_timer
    xor esi, esi
    lea rdx, [rip + sshot]
    call hc_vcpu_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_sshot]
    call check_eq
    mov r12, [rip + sshot]
    mov edi, SCHEDOP_block
    xor esi, esi
    call hc_sched_op
    mov rdi, [rip + timer_upcalls]
    mov esi, 1
    lea rdx, [rip + m_woken]
    call check_eq
    call now
    cmp rax, r12
    jae time_moved
    lea rdi, [rip + m_time]
    call fail
time_moved:
    mov rdi, [rip + VCPU0_time_version]
    and edi, 1
    xor esi, esi
    lea rdx, [rip + m_version]
    call check_eq

    # a periodic timer interrupts a busy loop
    mov qword ptr [rip + period], 50000
    mov edi, VCPUOP_set_periodic_timer
    xor esi, esi
    lea rdx, [rip + period]
    call hc_vcpu_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_periodic]
    call check_eq
busy:
    cmp qword ptr [rip + timer_upcalls], 4
    jb busy
    mov edi, VCPUOP_stop_periodic_timer
    xor esi, esi
    xor edx, edx
    call hc_vcpu_op
    mov r13, [rip + timer_upcalls]

    # set_timer_op, then block
    call now
    lea rdi, [rax + 30000]
    call hc_set_timer_op
    mov edi, SCHEDOP_block
    xor esi, esi
    call hc_sched_op
    mov rdi, [rip + timer_upcalls]
    lea rsi, [r13 + 1]
    lea rdx, [rip + m_timer_op]
    call check_eq

    # poll on a quiet port: back after the timeout
    mov edi, EVTCHNOP_bind_ipi
    lea rsi, [rip + ipi_arg]
    call hc_event_channel_op
    mov eax, dword ptr [rip + ipi_arg + 4]
    mov [rip + poll_port], eax
    lea rax, [rip + poll_port]
    mov [rip + poll_arg], rax
    mov dword ptr [rip + poll_arg + 8], 1
    call now
    add rax, 20000
    mov [rip + poll_arg + 16], rax
    mov r12, rax
    mov edi, SCHEDOP_poll
    lea rsi, [rip + poll_arg]
    call hc_sched_op
    call now
    cmp rax, r12
    jae polled
    lea rdi, [rip + m_poll]
    call fail
polled:

    # a single shot in the past, required to be in the future
    mov qword ptr [rip + sshot], 1
    mov dword ptr [rip + sshot + 8], 1
    mov edi, VCPUOP_set_singleshot_timer
    xor esi, esi
    lea rdx, [rip + sshot]
    call hc_vcpu_op
    mov rdi, rax
    mov rsi, RC_ETIME
    lea rdx, [rip + m_etime]
    call check_eq
    ret

# The event callback: count timer upcalls, clear the pending state, return.
event_entry:
    pop rcx
    pop r11
    inc qword ptr [rip + timer_upcalls]
    mov byte ptr [rip + VCPU0_upcall_pending], 0
    mov qword ptr [rip + VCPU0_pending_sel], 0
    mov qword ptr [rip + EVTCHN_PENDING], 0
    jmp iret_to_frame

.align 8
virq_arg: .long 0, 0, 0, 0
ipi_arg: .quad 0
poll_port: .quad 0
poll_arg: .quad 0, 0, 0
sshot: .quad 0, 0
period: .quad 0
timer_upcalls: .quad 0
m_bind: .asciz "binding VIRQ_TIMER"
m_sshot: .asciz "VCPUOP_set_singleshot_timer"
m_woken: .asciz "one timer upcall wakes the blocked vCPU"
m_time: .asciz "system_time reached the deadline"
m_version: .asciz "the time version is even"
m_periodic: .asciz "VCPUOP_set_periodic_timer"
m_timer_op: .asciz "set_timer_op and block: one more upcall"
m_poll: .asciz "poll returned after its timeout"
m_etime: .asciz "a single shot in the past with VCPU_SSHOTTMR_future"
