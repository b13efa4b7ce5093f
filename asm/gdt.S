# gdt: the guest's own GDT. A frame holding a flat data descriptor (DPL 0, which Xen
# raises to 3) becomes the GDT with set_gdt; a selector from it loads into DS and memory
# reads through it; the frame can no longer be mapped writable (-EBUSY) but can be read;
# update_descriptor rewrites an entry (a second data segment then loads); a system
# descriptor (a call gate) is refused with -EINVAL both ways. A selector that does not
# load, a writable mapping granted, or a gate accepted is a FAILURE.
.include "pv.inc"

.equ DATA_DPL0, 0x00cf93000000ffff          # flat data, DPL 0 (Xen makes it DPL 3)
.equ CALL_GATE, 0x0000ec0000000000          # a 32-bit call gate: a system descriptor
.equ SEL_DATA1, 0x0b                        # index 1, RPL 3
.equ SEL_DATA2, 0x13                        # index 2, RPL 3

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
    ret

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
