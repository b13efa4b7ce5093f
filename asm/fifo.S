# fifo: the FIFO event channel ABI, switched to from the 2-level one as Linux does.
# - Before the switch: set_priority is -ENOSYS, expand_array -EOPNOTSUPP.
# - init_control: a missing vCPU -ENOENT; an offset that crosses the page or is not
#   8-byte aligned -EINVAL; a frame the domain does not own, or a page table, -EINVAL;
#   then the control block is taken (link_bits 17), and a second one for vCPU 0 -EINVAL.
# - An IPI sent before the event array has a page stays pending; expand_array raises it:
#   its word PENDING|LINKED, head[7] names it, ready bit 7 and the upcall flag set.
# - set_priority 3 moves its next event to queue 3; priority 16 and a bad port -EINVAL.
# - Two events on one queue are linked: the first one's LINK names the second.
# - A masked port's event is PENDING but not queued; EVTCHNOP_unmask queues it.
# Each event is consumed as a guest does: the word cleared, head and ready bit reset.
# A different errno, word, head or ready bit is a FAILURE.
.include "pv.inc"

.equ EVTCHNOP_bind_ipi, 7
.equ EVTCHNOP_unmask, 9
.equ EVTCHNOP_send, 4
.equ EVTCHNOP_init_control, 11
.equ EVTCHNOP_expand_array, 12
.equ EVTCHNOP_set_priority, 13
.equ RC_EOPNOTSUPP, -95
.equ RC_ENOENT, -2
.equ PENDING, 0x80000000
.equ MASKED, 0x40000000
.equ LINKED, 0x20000000
.equ CB_READY, 0
.equ CB_HEAD, 8

# evtchn(rdi = cmd, rsi = argument) -> rax
evtchn:
    call hc_event_channel_op
    ret

# mfn_of(rdi = va) -> rax: the frame behind a kernel address
mfn_of:
    call va_maddr
    shr rax, 12
    ret

# init_control(rdi = mfn, esi = offset, edx = vcpu) -> rax
init_control:
    mov [rip + ic_arg], rdi
    mov [rip + ic_arg + 8], esi
    mov [rip + ic_arg + 12], edx
    mov byte ptr [rip + ic_arg + 16], 0
    mov edi, EVTCHNOP_init_control
    lea rsi, [rip + ic_arg]
    jmp evtchn

# set_priority(edi = port, esi = priority) -> rax
set_priority:
    mov [rip + prio_arg], edi
    mov [rip + prio_arg + 4], esi
    mov edi, EVTCHNOP_set_priority
    lea rsi, [rip + prio_arg]
    jmp evtchn

# send(edi = port) -> rax
send:
    mov [rip + port_arg], edi
    mov edi, EVTCHNOP_send
    lea rsi, [rip + port_arg]
    jmp evtchn

# bind_ipi -> rax: a new IPI port on vCPU 0
bind_ipi:
    mov dword ptr [rip + ipi_arg], 0
    mov edi, EVTCHNOP_bind_ipi
    lea rsi, [rip + ipi_arg]
    call evtchn
    mov eax, [rip + ipi_arg + 4]
    ret

# consume(edi = port, esi = priority): what a guest does with the head event
consume:
    lea rax, [rip + event_array]
    mov dword ptr [rax + rdi * 4], 0
    lea rax, [rip + control_block]
    mov dword ptr [rax + CB_HEAD + rsi * 4], 0
    btr dword ptr [rax + CB_READY], esi
    mov byte ptr [rip + VCPU0_upcall_pending], 0
    ret

# ready -> rax: the control block's ready bits
ready:
    mov eax, [rip + control_block]
    ret

# head(edi = priority) -> rax: the queue's head
head:
    lea rax, [rip + control_block]
    mov eax, [rax + CB_HEAD + rdi * 4]
    ret

# event_word(edi = port) -> rax
event_word:
    lea rax, [rip + event_array]
    mov eax, [rax + rdi * 4]
    ret

test_main:
    mov edi, 1
    xor esi, esi
    call set_priority
    mov rdi, rax
    mov rsi, RC_ENOSYS
    lea rdx, [rip + m_prio_2l]
    call check_eq
    lea rdi, [rip + event_array]
    call mfn_of
    mov [rip + array_mfn], rax
    mov [rip + ea_arg], rax
    mov edi, EVTCHNOP_expand_array
    lea rsi, [rip + ea_arg]
    call evtchn
    mov rdi, rax
    mov rsi, RC_EOPNOTSUPP
    lea rdx, [rip + m_expand_2l]
    call check_eq

    lea rdi, [rip + control_block]
    call mfn_of
    mov r12, rax
    mov rdi, r12
    xor esi, esi
    mov edx, 9
    call init_control
    mov rdi, rax
    mov rsi, RC_ENOENT
    lea rdx, [rip + m_no_vcpu]
    call check_eq
    mov rdi, r12
    mov esi, 4096 - 64
    xor edx, edx
    call init_control
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_crosses]
    call check_eq
    mov rdi, r12
    mov esi, 4
    xor edx, edx
    call init_control
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_misaligned]
    call check_eq
    mov edi, 0x7ffffff
    xor esi, esi
    xor edx, edx
    call init_control
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_not_ram]
    call check_eq
    mov rdi, [rip + start_info_ptr]
    mov rdi, [rdi + SI_pt_base]
    call mfn_of
    mov rdi, rax
    xor esi, esi
    xor edx, edx
    call init_control
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_page_table]
    call check_eq

    mov rdi, r12
    xor esi, esi
    xor edx, edx
    call init_control
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_init]
    call check_eq
    movzx edi, byte ptr [rip + ic_arg + 16]
    mov esi, 17
    lea rdx, [rip + m_link_bits]
    call check_eq
    mov rdi, r12
    xor esi, esi
    xor edx, edx
    call init_control
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_twice]
    call check_eq

    # an event before the array has a page: held, raised by expand_array
    call bind_ipi
    mov r13d, eax
    mov edi, r13d
    call send
    call ready
    mov edi, eax
    xor esi, esi
    lea rdx, [rip + m_held]
    call check_eq
    mov edi, EVTCHNOP_expand_array
    lea rsi, [rip + ea_arg]
    call evtchn
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_expand]
    call check_eq
    mov edi, r13d
    call event_word
    mov edi, eax
    mov esi, PENDING | LINKED
    lea rdx, [rip + m_word]
    call check_eq
    mov edi, 7
    call head
    mov edi, eax
    mov esi, r13d
    lea rdx, [rip + m_head7]
    call check_eq
    call ready
    mov edi, eax
    mov esi, 1 << 7
    lea rdx, [rip + m_ready7]
    call check_eq
    movzx edi, byte ptr [rip + VCPU0_upcall_pending]
    mov esi, 1
    lea rdx, [rip + m_upcall]
    call check_eq
    mov edi, r13d
    mov esi, 7
    call consume

    # priorities
    mov edi, r13d
    mov esi, 3
    call set_priority
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_prio]
    call check_eq
    mov edi, r13d
    mov esi, 16
    call set_priority
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_prio16]
    call check_eq
    mov edi, 1 << 20
    xor esi, esi
    call set_priority
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_prio_port]
    call check_eq
    mov edi, r13d
    call send
    mov edi, 3
    call head
    mov edi, eax
    mov esi, r13d
    lea rdx, [rip + m_head3]
    call check_eq
    call ready
    mov edi, eax
    mov esi, 1 << 3
    lea rdx, [rip + m_ready3]
    call check_eq
    mov edi, r13d
    mov esi, 3
    call consume

    # two events on queue 7: linked
    call bind_ipi
    mov r14d, eax
    call bind_ipi
    mov r15d, eax
    mov edi, r14d
    call send
    mov edi, r15d
    call send
    mov edi, 7
    call head
    mov edi, eax
    mov esi, r14d
    lea rdx, [rip + m_head_first]
    call check_eq
    mov edi, r14d
    call event_word
    mov edi, eax
    mov esi, PENDING | LINKED
    or esi, r15d
    lea rdx, [rip + m_link]
    call check_eq
    mov edi, r15d
    call event_word
    mov edi, eax
    mov esi, PENDING | LINKED
    lea rdx, [rip + m_second]
    call check_eq
    mov edi, r15d
    mov esi, 7
    call consume
    mov edi, r14d
    mov esi, 7
    call consume

    # a masked port: pending, not queued, until EVTCHNOP_unmask
    lea rax, [rip + event_array]
    mov dword ptr [rax + r14 * 4], MASKED
    mov edi, r14d
    call send
    mov edi, r14d
    call event_word
    mov edi, eax
    mov esi, PENDING | MASKED
    lea rdx, [rip + m_masked]
    call check_eq
    call ready
    mov edi, eax
    xor esi, esi
    lea rdx, [rip + m_masked_ready]
    call check_eq
    mov [rip + port_arg], r14d
    mov edi, EVTCHNOP_unmask
    lea rsi, [rip + port_arg]
    call evtchn
    mov edi, r14d
    call event_word
    mov edi, eax
    mov esi, PENDING | LINKED
    lea rdx, [rip + m_unmasked]
    call check_eq
    call ready
    mov edi, eax
    mov esi, 1 << 7
    lea rdx, [rip + m_unmasked_ready]
    call check_eq
    mov edi, r14d
    mov esi, 7
    call consume
    ret

.align 8
ic_arg: .quad 0, 0, 0
ea_arg: .quad 0
prio_arg: .quad 0
port_arg: .quad 0
ipi_arg: .quad 0
array_mfn: .quad 0
m_prio_2l: .asciz "set_priority under the 2-level ABI"
m_expand_2l: .asciz "expand_array under the 2-level ABI"
m_no_vcpu: .asciz "init_control for a missing vCPU"
m_crosses: .asciz "init_control with a block crossing the page"
m_misaligned: .asciz "init_control with a misaligned block"
m_not_ram: .asciz "init_control on a frame that is not RAM"
m_page_table: .asciz "init_control on a page table"
m_init: .asciz "init_control"
m_link_bits: .asciz "link_bits"
m_twice: .asciz "a second control block for vCPU 0"
m_held: .asciz "no ready bit while the port has no event word"
m_expand: .asciz "expand_array"
m_word: .asciz "the held event's word after expand_array"
m_head7: .asciz "head[7] names it"
m_ready7: .asciz "ready bit 7"
m_upcall: .asciz "the upcall flag"
m_prio: .asciz "set_priority 3"
m_prio16: .asciz "set_priority 16"
m_prio_port: .asciz "set_priority of a port past the ABI"
m_head3: .asciz "the next event on queue 3"
m_ready3: .asciz "ready bit 3"
m_head_first: .asciz "head[7] names the first of two events"
m_link: .asciz "the first event links to the second"
m_second: .asciz "the second event's word"
m_masked: .asciz "a masked port's event: pending, not linked"
m_masked_ready: .asciz "no ready bit for a masked port"
m_unmasked: .asciz "EVTCHNOP_unmask queues it"
m_unmasked_ready: .asciz "ready bit 7 after the unmask"
.align 4096
control_block: .fill 4096, 1, 0
event_array: .fill 4096, 1, 0
