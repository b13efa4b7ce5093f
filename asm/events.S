# events: event channels as a PV kernel uses them. Binds an IPI to itself and sends it
# (the event callback runs once), masks the port (a send raises nothing) and unmasks it
# with EVTCHNOP_unmask (the pending event arrives), checks EVTCHNOP_status, closes the
# port (sending on it is -EINVAL), connects a loopback interdomain channel (the bind
# itself raises the new port once, as Xen's does for notifications lost meanwhile) and
# sends on it,
# binds VIRQ_TIMER (a second bind is -EEXIST), blocks with an event pending (block
# returns, the event arrives), writes a line through the PV console ring, and reads
# "domid" from xenstore through its ring. A lost, doubled or spurious upcall, a wrong
# status or errno is a FAILURE.
.include "pv.inc"

.equ EVTCHNOP_bind_interdomain, 0
.equ EVTCHNOP_bind_virq, 1
.equ EVTCHNOP_close, 3
.equ EVTCHNOP_send, 4
.equ EVTCHNOP_status, 5
.equ EVTCHNOP_alloc_unbound, 6
.equ EVTCHNOP_bind_ipi, 7
.equ EVTCHNOP_unmask, 9
.equ EVTCHNSTAT_ipi, 5
.equ RC_EEXIST, -17
.equ EVTCHN_PENDING, shared_info + 2048
.equ EVTCHN_MASK, shared_info + 2560
.equ VCPU0_pending_sel, shared_info + 8
.equ SI_store_evtchn, 64
.equ SI_console_evtchn, 80
.equ XS_READ, 2

# evtchn(rdi = cmd, rsi = argument address) -> rax
evtchn:
    call hc_event_channel_op
    ret

# send(edi = port) -> rax
send:
    mov [rip + port_arg], edi
    mov edi, EVTCHNOP_send
    lea rsi, [rip + port_arg]
    call hc_event_channel_op
    ret

test_main:
    # the event callback; events enabled
    lea rdi, [rip + event_entry]
    xor esi, esi
    xor edx, edx
    call hc_set_callbacks
    mov byte ptr [rip + VCPU0_upcall_mask], 0

    # an IPI to ourselves
    mov dword ptr [rip + ipi_arg], 0
    mov edi, EVTCHNOP_bind_ipi
    lea rsi, [rip + ipi_arg]
    call evtchn
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_bind_ipi]
    call check_eq
    mov r12d, dword ptr [rip + ipi_arg + 4]
    mov edi, r12d
    call send
    mov rdi, [rip + upcalls]
    mov esi, 1
    lea rdx, [rip + m_ipi]
    call check_eq

    # masked: nothing arrives; unmask: it does
    mov ecx, r12d
    mov eax, 1
    shl rax, cl
    or [rip + EVTCHN_MASK], rax
    mov edi, r12d
    call send
    mov rdi, [rip + upcalls]
    mov esi, 1
    lea rdx, [rip + m_masked]
    call check_eq
    mov [rip + port_arg], r12d
    mov edi, EVTCHNOP_unmask
    lea rsi, [rip + port_arg]
    call evtchn
    mov rdi, [rip + upcalls]
    mov esi, 2
    lea rdx, [rip + m_unmask]
    call check_eq

    # status of the IPI port
    mov word ptr [rip + status_arg], DOMID_SELF
    mov [rip + status_arg + 4], r12d
    mov edi, EVTCHNOP_status
    lea rsi, [rip + status_arg]
    call evtchn
    mov edi, dword ptr [rip + status_arg + 8]
    mov esi, EVTCHNSTAT_ipi
    lea rdx, [rip + m_status]
    call check_eq

    # closed: sending is -EINVAL
    mov [rip + port_arg], r12d
    mov edi, EVTCHNOP_close
    lea rsi, [rip + port_arg]
    call evtchn
    mov edi, r12d
    call send
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_closed]
    call check_eq

    # a loopback interdomain channel
    mov word ptr [rip + unbound_arg], DOMID_SELF
    mov word ptr [rip + unbound_arg + 2], DOMID_SELF
    mov edi, EVTCHNOP_alloc_unbound
    lea rsi, [rip + unbound_arg]
    call evtchn
    mov eax, dword ptr [rip + unbound_arg + 4]
    mov word ptr [rip + inter_arg], DOMID_SELF
    mov [rip + inter_arg + 4], eax
    mov edi, EVTCHNOP_bind_interdomain
    lea rsi, [rip + inter_arg]
    call evtchn
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_interdomain]
    call check_eq
    mov rdi, [rip + upcalls]
    mov esi, 3
    lea rdx, [rip + m_bind_raises]
    call check_eq
    mov edi, dword ptr [rip + inter_arg + 8]
    call send
    mov rdi, [rip + upcalls]
    mov esi, 4
    lea rdx, [rip + m_loopback]
    call check_eq

    # VIRQ_TIMER, twice
    mov dword ptr [rip + virq_arg], 0
    mov dword ptr [rip + virq_arg + 4], 0
    mov edi, EVTCHNOP_bind_virq
    lea rsi, [rip + virq_arg]
    call evtchn
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_virq]
    call check_eq
    mov edi, EVTCHNOP_bind_virq
    lea rsi, [rip + virq_arg]
    call evtchn
    mov rdi, rax
    mov rsi, RC_EEXIST
    lea rdx, [rip + m_virq_again]
    call check_eq

    # block with an event pending: block returns and the event arrives
    mov byte ptr [rip + VCPU0_upcall_mask], 1
    mov dword ptr [rip + ipi_arg], 0
    mov edi, EVTCHNOP_bind_ipi
    lea rsi, [rip + ipi_arg]
    call evtchn
    mov edi, dword ptr [rip + ipi_arg + 4]
    call send
    mov rdi, [rip + upcalls]
    mov esi, 4
    lea rdx, [rip + m_held]
    call check_eq
    mov edi, SCHEDOP_block
    xor esi, esi
    call hc_sched_op
    mov rdi, [rip + upcalls]
    mov esi, 5
    lea rdx, [rip + m_block]
    call check_eq

    # a line through the PV console ring, between two console_io lines
    lea rdi, [rip + m_before]
    call puts
    mov rax, [rip + start_info_ptr]
    mov rdi, [rax + SI_console_mfn]
    call mfn_to_va
    mov rbx, rax
    lea rsi, [rip + ring_line]
    mov ecx, [rbx + 3084]
ring_copy:
    movzx edx, byte ptr [rsi]
    test dl, dl
    jz ring_done
    mov eax, ecx
    and eax, 2047
    mov [rbx + 1024 + rax], dl
    inc ecx
    inc rsi
    jmp ring_copy
ring_done:
    mov [rbx + 3084], ecx
    mov rax, [rip + start_info_ptr]
    mov edi, dword ptr [rax + SI_console_evtchn]
    call send
    lea rdi, [rip + m_after]
    call puts

    # xenstore: read "domid"
    mov rax, [rip + start_info_ptr]
    mov rdi, [rax + SI_store_mfn]
    call mfn_to_va
    mov rbx, rax
    lea rsi, [rip + xs_request]
    mov ecx, xs_request_end - xs_request
    mov rdi, rbx
    rep movsb
    mov dword ptr [rbx + 2052], xs_request_end - xs_request
    mov rax, [rip + start_info_ptr]
    mov edi, dword ptr [rax + SI_store_evtchn]
    call send
    mov edi, dword ptr [rbx + 1024]
    mov esi, XS_READ
    lea rdx, [rip + m_xs_type]
    call check_eq
    movzx edi, byte ptr [rbx + 1024 + 16]
    mov esi, 0x31
    lea rdx, [rip + m_xs_value]
    call check_eq
    ret

# The event callback: RCX, R11, RIP, CS, RFLAGS, RSP, SS; events masked on entry.
event_entry:
    pop rcx
    pop r11
    inc qword ptr [rip + upcalls]
    mov byte ptr [rip + VCPU0_upcall_pending], 0
    mov qword ptr [rip + VCPU0_pending_sel], 0
    mov qword ptr [rip + EVTCHN_PENDING], 0
    jmp iret_to_frame

.align 8
upcalls: .quad 0
port_arg: .quad 0
ipi_arg: .quad 0
unbound_arg: .quad 0
inter_arg: .quad 0, 0
virq_arg: .quad 0, 0
status_arg: .quad 0, 0, 0
xs_request:
    .long XS_READ, 7, 0, 6
    .asciz "domid"
xs_request_end:
m_bind_ipi: .asciz "EVTCHNOP_bind_ipi"
m_ipi: .asciz "one upcall for the IPI"
m_masked: .asciz "no upcall while the port is masked"
m_unmask: .asciz "the pending event arrives on unmask"
m_status: .asciz "EVTCHNOP_status of the IPI port"
m_closed: .asciz "send on a closed port"
m_interdomain: .asciz "EVTCHNOP_bind_interdomain loopback"
m_loopback: .asciz "an upcall through the loopback channel"
m_bind_raises: .asciz "binding raises the new local port once (Xen: lost notifications)"
m_virq: .asciz "EVTCHNOP_bind_virq VIRQ_TIMER"
m_virq_again: .asciz "binding VIRQ_TIMER twice"
m_held: .asciz "no upcall while events are masked"
m_block: .asciz "block returns and the pending event arrives"
m_before: .asciz "console_io before the ring\n"
ring_line: .asciz "written through the PV console ring\n"
m_after: .asciz "console_io after the ring\n"
m_xs_type: .asciz "xenstore reply type"
m_xs_value: .asciz "xenstore domid"
