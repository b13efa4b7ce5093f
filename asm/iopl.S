# iopl: cli, sti and port I/O under the virtual IOPL, as Xen's emulate_privileged_op.
# - At IOPL 0, cli is #GP at the cli.
# - At IOPL 1 (the kernel's ring for I/O), cli and sti do nothing: no fault, the event
#   upcall mask unchanged, and pushf still shows IF (the real flag, always set).
# - A refused port access faults with the RIP of the in/out itself, also when it is not
#   the first instruction of its block and a hook has just redirected the CPU (an int3
#   bounce and HYPERVISOR_iret right before it, in the same run).
# A missing or spurious fault, a wrong RIP or a changed upcall mask is a FAILURE.
.include "pv.inc"

.equ PHYSDEVOP_set_iopl, 6
.equ RFLAGS_IF, 0x200

# set_iopl(edi = level)
set_iopl:
    mov [rip + iopl_arg], edi
    mov edi, PHYSDEVOP_set_iopl
    lea rsi, [rip + iopl_arg]
    call hc_physdev_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_iopl]
    jmp check_eq

# iret_to(rdi = address): HYPERVISOR_iret to address in kernel mode, on this stack as it
# was before the call
iret_to:
    lea rax, [rsp + 8]
    push FLAT_KERNEL_SS
    push rax
    pushfq
    push FLAT_KERNEL_CS & 0xfffc
    push rdi
    jmp iret_to_frame

test_main:
    lea rdi, [rip + after_cli0]
    call expect_fault
cli0:
    cli
after_cli0:
    mov rdi, [rip + fault_vector]
    mov esi, 13
    lea rdx, [rip + m_cli0]
    call check_eq
    mov rdi, [rip + fault_rip]
    lea rsi, [rip + cli0]
    lea rdx, [rip + m_cli0_rip]
    call check_eq

    mov edi, 1
    call set_iopl
    movzx ebx, byte ptr [rip + VCPU0_upcall_mask]
    mov qword ptr [rip + fault_vector], -1
    cli
    movzx edi, byte ptr [rip + VCPU0_upcall_mask]
    mov esi, ebx
    lea rdx, [rip + m_cli_mask]
    call check_eq
    pushfq
    pop rdi
    and edi, RFLAGS_IF
    mov esi, RFLAGS_IF
    lea rdx, [rip + m_pushf]
    call check_eq
    sti
    movzx edi, byte ptr [rip + VCPU0_upcall_mask]
    mov esi, ebx
    lea rdx, [rip + m_sti_mask]
    call check_eq
    mov rdi, [rip + fault_vector]
    mov rsi, -1
    lea rdx, [rip + m_no_fault]
    call check_eq

    # back to IOPL 0: a port read deep in a block, right after a redirected run
    xor edi, edi
    call set_iopl
    lea rdi, [rip + in_block]
    call iret_to                          # RIP written in the iret hypercall's hook
in_block:
    lea rdi, [rip + after_in]
    call expect_fault
    mov edx, 0x80
    nop
    xor eax, eax
port_in:
    in al, dx
after_in:
    mov rdi, [rip + fault_vector]
    mov esi, 13
    lea rdx, [rip + m_in]
    call check_eq
    mov rdi, [rip + fault_rip]
    lea rsi, [rip + port_in]
    lea rdx, [rip + m_in_rip]
    call check_eq

    lea rdi, [rip + out_block]
    call iret_to
out_block:
    lea rdi, [rip + after_out]
    call expect_fault
    mov edx, 0x80
    mov eax, 0x12
    nop
port_out:
    out dx, al
after_out:
    mov rdi, [rip + fault_vector]
    mov esi, 13
    lea rdx, [rip + m_out]
    call check_eq
    mov rdi, [rip + fault_rip]
    lea rsi, [rip + port_out]
    lea rdx, [rip + m_out_rip]
    call check_eq
    ret

.align 8
iopl_arg: .long 0, 0
m_iopl: .asciz "PHYSDEVOP_set_iopl"
m_cli0: .asciz "cli at IOPL 0 raises #GP"
m_cli0_rip: .asciz "the #GP is at the cli"
m_cli_mask: .asciz "cli at IOPL 1 leaves the upcall mask"
m_pushf: .asciz "pushf shows IF after cli"
m_sti_mask: .asciz "sti at IOPL 1 leaves the upcall mask"
m_no_fault: .asciz "cli and sti at IOPL 1 do not fault"
m_in: .asciz "in at IOPL 0 raises #GP"
m_in_rip: .asciz "the #GP is at the in, mid-block"
m_out: .asciz "out at IOPL 0 raises #GP"
m_out_rip: .asciz "the #GP is at the out, mid-block"
