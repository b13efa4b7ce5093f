# pingpong: two domains bounce an event back and forth over an interdomain event channel.
# The command line says the role and the peer: "rol=0 per=<peer domid>" offers a port
# (EVTCHNOP_alloc_unbound for the peer, the first port after the console's and
# xenstore's: 3); "rol=1 per=<peer domid> prt=<its port>" binds to it
# (EVTCHNOP_bind_interdomain, retried with SCHEDOP_yield until the offer exists; the bind
# raises the new port once, as Xen's does, and that notification is cleared). Then the
# binder sends first and each side, 1000 times ("rnd=" overrides, hex), waits with
# SCHEDOP_poll until its port is pending, clears the bit and sends back. A wrong errno,
# port, or a poll that returns with nothing pending is a FAILURE.
# With "xst=1" the two find each other through the xenstore instead: each reads its
# peer's domid from "peer" in its home (the toolstack writes it), the offerer writes its
# port to "data/port", and the binder reads it from the peer's home, retrying until it
# is there.
# Needs: two domains on one host (tests/test_host.py, or the two configs that
# `pvshadow run pingpong` runs: the pvshadow-run header below).
# pvshadow-run: ../configs/backend.cfg ../configs/frontend.cfg
.include "pv.inc"
.include "xenstore.inc"

.equ KEY_ROLE, 0x3d6c6f72                    # "rol="
.equ KEY_PEER, 0x3d726570                    # "per="
.equ KEY_PORT, 0x3d747270                    # "prt="
.equ KEY_ROUNDS, 0x3d646e72                  # "rnd="
.equ EVTCHNOP_bind_interdomain, 0
.equ EVTCHNOP_send, 4
.equ EVTCHNOP_alloc_unbound, 6
.equ SCHEDOP_poll, 3
.equ EVTCHN_PENDING, shared_info + 2048
.equ DEFAULT_ROUNDS, 1000

.equ KEY_XENSTORE, 0x3d747378               # "xst="

test_main:
    mov edi, KEY_XENSTORE
    call cmdline_hex
    mov [rip + use_xenstore], rax
    test rax, rax
    jz rounds
    call xs_init
rounds:
    mov edi, KEY_ROUNDS
    call cmdline_hex
    test rax, rax
    jnz have_rounds
    mov eax, DEFAULT_ROUNDS
have_rounds:
    mov r14, rax
    cmp qword ptr [rip + use_xenstore], 0
    jnz peer_from_xenstore
    mov edi, KEY_PEER
    call cmdline_hex
    mov r13, rax                              # the peer's domid
    jmp have_peer
peer_from_xenstore:
    lea rsi, [rip + p_peer]
    mov edx, p_peer_end - p_peer
    call xs_read_number
    mov r13, rax
have_peer:
    mov edi, KEY_ROLE
    call cmdline_hex
    test rax, rax
    jnz binder

offerer:
    mov word ptr [rip + unbound_arg], DOMID_SELF
    mov [rip + unbound_arg + 2], r13w
    mov edi, EVTCHNOP_alloc_unbound
    lea rsi, [rip + unbound_arg]
    call hc_event_channel_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_alloc]
    call check_eq
    mov r12d, [rip + unbound_arg + 4]
    mov rdi, r12
    mov esi, 3
    lea rdx, [rip + m_port]
    call check_eq
    cmp qword ptr [rip + use_xenstore], 0
    jz bounce
    lea rsi, [rip + p_port]                   # "data/port" = the port
    mov edx, p_port_end - p_port
    mov rdi, r12
    call xs_write_number
    mov rdi, rax
    mov esi, XS_WRITE
    lea rdx, [rip + m_xs_write]
    call check_eq
    jmp bounce

binder:
    cmp qword ptr [rip + use_xenstore], 0
    jnz port_from_xenstore
    mov edi, KEY_PORT
    call cmdline_hex
    jmp have_port
port_from_xenstore:
    # "/local/domain/<peer>/data/port", read until the offerer has written it
    lea rsi, [rip + p_slash_port]
    mov edx, p_slash_port_end - p_slash_port
    call xs_domain_path
    lea rsi, [rip + xs_path]
    call xs_read_number
have_port:
    mov [rip + inter_arg], r13w
    mov [rip + inter_arg + 4], eax
    mov ebx, 100000
bind_again:
    mov edi, EVTCHNOP_bind_interdomain
    lea rsi, [rip + inter_arg]
    call hc_event_channel_op
    test rax, rax
    jz bound
    mov edi, SCHEDOP_yield
    xor esi, esi
    call hc_sched_op
    dec ebx
    jnz bind_again
    lea rdi, [rip + m_bind]
    call fail
    ret
bound:
    mov r12d, [rip + inter_arg + 8]
    call wait_port                            # the bind's own notification
    call send_port

bounce:
    call wait_port
    call send_port
    dec r14
    jnz bounce
    lea rdi, [rip + m_done]
    call puts
    ret

# wait_port: poll until port r12 is pending, then clear its bit
wait_port:
    mov [rip + poll_ports], r12d
    lea rax, [rip + poll_ports]
    mov [rip + poll_arg], rax
    mov dword ptr [rip + poll_arg + 8], 1
    mov qword ptr [rip + poll_arg + 16], 0
    mov edi, SCHEDOP_poll
    lea rsi, [rip + poll_arg]
    call hc_sched_op
    test rax, rax
    jnz wait_failed
    lea rcx, [rip + EVTCHN_PENDING]
    mov eax, r12d
    lock btr [rcx], rax
    jnc wait_empty
    ret
wait_failed:
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_poll]
    call check_eq
    ret
wait_empty:
    lea rdi, [rip + m_empty]
    call fail
    ret

# send_port: EVTCHNOP_send on port r12
send_port:
    mov [rip + port_arg], r12d
    mov edi, EVTCHNOP_send
    lea rsi, [rip + port_arg]
    call hc_event_channel_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_send]
    call check_eq
    ret

.align 8
use_xenstore: .quad 0
p_peer: .asciz "peer"
p_peer_end:
p_port: .asciz "data/port"
p_port_end:
p_slash_port: .asciz "/data/port"
p_slash_port_end:
m_xs_write: .asciz "XS_WRITE of data/port"
.align 8
unbound_arg: .fill 8, 1, 0
inter_arg: .fill 12, 1, 0
port_arg: .fill 4, 1, 0
.align 8
poll_arg: .fill 24, 1, 0
poll_ports: .fill 4, 1, 0
m_alloc: .asciz "EVTCHNOP_alloc_unbound for the peer"
m_port: .asciz "the offered port is 3"
m_bind: .asciz "EVTCHNOP_bind_interdomain never found the peer's offer"
m_poll: .asciz "SCHEDOP_poll"
m_empty: .asciz "poll returned with the port not pending"
m_send: .asciz "EVTCHNOP_send"
m_done: .asciz "pingpong: every round came back\n"
