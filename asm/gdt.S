# gdt: the guest's own GDT. A frame holding a flat data descriptor (DPL 0, which Xen
# raises to 3) becomes the GDT with set_gdt; a selector from it loads into DS and memory
# reads through it; the frame can no longer be mapped writable (-EBUSY) but can be read;
# update_descriptor rewrites an entry (a second data segment then loads); a system
# descriptor (a call gate) is refused with -EINVAL both ways. Each vCPU has its own GDT:
# vCPU 1, started by VCPUOP_initialise with a GDT frame of its own, loads its selectors
# and not vCPU 0's, and vCPU 0 keeps its own. A selector that does not load, a writable
# mapping granted, a gate accepted, or one vCPU seeing the other's GDT is a FAILURE.
.include "pv.inc"

.equ DATA_DPL0, 0x00cf93000000ffff          # flat data, DPL 0 (Xen makes it DPL 3)
.equ CALL_GATE, 0x0000ec0000000000          # a 32-bit call gate: a system descriptor
.equ SEL_DATA1, 0x0b                        # index 1, RPL 3
.equ SEL_DATA2, 0x13                        # index 2, RPL 3
.equ SEL_DATA3, 0x1b                        # index 3, RPL 3
.equ CTX_TRAP0, CTX_TRAP_CTXT               # trap_ctxt[0]: vector, flags, cs, address
.equ CTX_TRAP0_CS, CTX_TRAP_CTXT + 2
.equ CTX_TRAP0_ADDRESS, CTX_TRAP_CTXT + 8

test_main:
    mov edi, 1
    call top_mfn
    mov r12, rax                            # the GDT frame
    mov rdi, r12
    mov esi, 1
    movabs rdx, DATA_DPL0
    call frame_write
    mov [rip + frame_list], r12
    lea rdi, [rip + frame_list]
    mov esi, 16
    call hc_set_gdt
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_set_gdt]
    call check_eq
    mov ax, SEL_DATA1
    mov ds, ax
    mov rdi, [marker]
    movabs rsi, 0x6764746d61726b21
    lea rdx, [rip + m_through_ds]
    call check_eq
    xor eax, eax
    mov ds, ax

    # the GDT frame is a descriptor page now: read-only for the guest
    call scratch_va
    mov rbx, rax
    mov rdi, rbx
    mov rsi, r12
    shl rsi, 12
    or rsi, PTE_P | PTE_RW
    call map_va
    mov rdi, rax
    mov rsi, RC_EBUSY
    lea rdx, [rip + m_writable]
    call check_eq
    mov rdi, rbx
    mov rsi, r12
    shl rsi, 12
    or rsi, PTE_P
    call map_va
    mov rdi, [rbx + 8]
    movabs rsi, 0x00cff3000000ffff
    lea rdx, [rip + m_dpl]
    call check_eq
    mov rdi, rbx
    xor esi, esi
    call map_va

    # update_descriptor: entry 2 becomes a data segment
    mov rdi, r12
    shl rdi, 12
    add rdi, 16
    movabs rsi, DATA_DPL0
    call hc_update_descriptor
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_update]
    call check_eq
    mov ax, SEL_DATA2
    mov ds, ax
    xor eax, eax
    mov ds, ax

    # a call gate is refused, by update_descriptor and in a new GDT
    mov rdi, r12
    shl rdi, 12
    add rdi, 24
    movabs rsi, CALL_GATE
    call hc_update_descriptor
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_gate]
    call check_eq
    mov edi, 2
    call top_mfn
    mov r13, rax
    mov rdi, r13
    mov esi, 1
    movabs rdx, CALL_GATE
    call frame_write
    mov [rip + frame_list], r13
    lea rdi, [rip + frame_list]
    mov esi, 16
    call hc_set_gdt
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_gate_gdt]
    call check_eq

    # each vCPU has its own GDT: vCPU 1 starts (VCPUOP_initialise) with frame C, where
    # entry 3 is a data segment and entry 1 is empty, the reverse of vCPU 0's
    mov edi, 3
    call top_mfn
    mov r14, rax
    mov rdi, r14
    mov esi, 3
    movabs rdx, DATA_DPL0
    call frame_write
    lea rdi, [rip + ctx]
    lea rsi, [rip + vcpu1_entry]
    lea rdx, [rip + vcpu1_stack_top]
    call kernel_vcpu_context
    lea r8, [rip + ctx]
    mov byte ptr [r8 + CTX_TRAP0], 13
    mov word ptr [r8 + CTX_TRAP0_CS], FLAT_KERNEL_CS
    lea rax, [rip + vcpu1_gp]
    mov [r8 + CTX_TRAP0_ADDRESS], rax
    mov [r8 + CTX_GDT_FRAMES], r14
    mov qword ptr [r8 + CTX_GDT_ENTS], 512
    mov edi, VCPUOP_initialise
    mov esi, 1
    lea rdx, [rip + ctx]
    call hc_vcpu_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_initialise]
    call check_eq
    mov edi, VCPUOP_up
    mov esi, 1
    xor edx, edx
    call hc_vcpu_op
wait_vcpu1:
    cmp qword ptr [rip + v1_done], 0
    jne vcpu1_done
    mov edi, SCHEDOP_yield
    xor esi, esi
    call hc_sched_op
    jmp wait_vcpu1
vcpu1_done:
    mov rdi, [rip + v1_read]
    movabs rsi, 0x6764746d61726b21
    lea rdx, [rip + m_v1_own]
    call check_eq
    mov rdi, [rip + v1_gp_err]
    mov esi, 0x08
    lea rdx, [rip + m_v1_other]
    call check_eq
    # vCPU 0 still sees its own GDT
    mov ax, SEL_DATA1
    mov ds, ax
    mov rdi, [marker]
    xor eax, eax
    mov ds, ax
    movabs rsi, 0x6764746d61726b21
    lea rdx, [rip + m_v0_own]
    call check_eq
    lea rdi, [rip + v0_after_gp]
    call expect_fault
    mov ax, SEL_DATA3
    mov ds, ax
v0_after_gp:
    xor eax, eax
    mov ds, ax
    mov rdi, [rip + fault_err]
    mov esi, 0x18
    lea rdx, [rip + m_v0_other]
    call check_eq
    ret

# vCPU 1: load its own selector and read through it, then vCPU 0's (a #GP), then spin.
vcpu1_entry:
    mov ax, SEL_DATA3
    mov ds, ax
    mov rax, [marker]
    xor ecx, ecx
    mov ds, cx
    mov [rip + v1_read], rax
    mov ax, SEL_DATA1
    mov ds, ax
vcpu1_after_gp:
    xor eax, eax
    mov ds, ax
    mov qword ptr [rip + v1_done], 1
vcpu1_spin:
    pause
    jmp vcpu1_spin

vcpu1_gp:
    pop rcx
    pop r11
    pop rax
    mov [rip + v1_gp_err], rax
    lea rax, [rip + vcpu1_after_gp]
    mov [rsp], rax
    jmp iret_to_frame

.align 8
frame_list: .quad 0
marker: .quad 0x6764746d61726b21
m_set_gdt: .asciz "set_gdt of one frame"
m_through_ds: .asciz "a read through a selector from the guest's GDT"
m_writable: .asciz "a writable mapping of the GDT frame"
m_dpl: .asciz "the descriptor's DPL raised to 3"
m_update: .asciz "update_descriptor of a data segment"
m_gate: .asciz "update_descriptor of a call gate"
m_gate_gdt: .asciz "set_gdt of a frame holding a call gate"
m_initialise: .asciz "VCPUOP_initialise of vCPU 1 with its own GDT"
m_v1_own: .asciz "vCPU 1 reads through a selector from its own GDT"
m_v1_other: .asciz "vCPU 1 loading a selector only vCPU 0's GDT has (#GP error code)"
m_v0_own: .asciz "vCPU 0 still reads through its own GDT's selector"
m_v0_other: .asciz "vCPU 0 loading a selector only vCPU 1's GDT has (#GP error code)"
v1_done: .quad 0
v1_read: .quad 0
v1_gp_err: .quad -1
.align 16
ctx: .fill 5168, 1, 0
.align 16
    .fill 4096, 1, 0
vcpu1_stack_top:
