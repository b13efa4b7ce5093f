# ldt: the guest's own LDT through MMUEXT_SET_LDT. A frame holding a flat data descriptor
# (DPL 0, which Xen raises to 3) is mapped read-only and named as a 2-entry LDT; its
# selector (TI set) loads into DS and reads go through it; set_segment_base loads it as
# the user GS selector; the frame, now a descriptor page, can no longer be mapped
# writable (-EBUSY). A selector past the LDT's entries raises #GP(selector); an LDT at an
# unmapped address is accepted and the load raises #PF at that address, as Xen passes it
# on. With the LDT dropped (0 entries) the selector faults. Refused: a base that is not
# page-aligned or in Xen's area, more than 8192 entries (-EINVAL). A wrong value, errno
# or fault is a FAILURE.
.include "pv.inc"

.equ MMUEXT_SET_LDT, 13
.equ DATA_DPL0, 0x00cf93000000ffff
.equ SEL_LDT1, 0x0f                          # index 1, TI, RPL 3
.equ SEL_LDT2, 0x17                          # index 2, TI, RPL 3
.equ SEGBASE_GS_USER_SEL, 3

# set_ldt(rdi = linear address, rsi = entries) -> rax
set_ldt:
    mov dword ptr [rip + ldt_op], MMUEXT_SET_LDT
    mov [rip + ldt_op + 8], rdi
    mov [rip + ldt_op + 16], rsi
    lea rdi, [rip + ldt_op]
    mov esi, 1
    xor edx, edx
    mov r10d, DOMID_SELF
    call hc_mmuext_op
    ret

test_main:
    # the LDT frame: entry 1 is a data segment; mapped read-only at the scratch page
    mov edi, 1
    call top_mfn
    mov r12, rax
    mov rdi, r12
    mov esi, 1
    movabs rdx, DATA_DPL0
    call frame_write
    call scratch_va
    mov rbx, rax
    mov rdi, rbx
    mov rsi, r12
    shl rsi, 12
    or rsi, PTE_P
    call map_va
    mov rdi, rbx
    mov esi, 2
    call set_ldt
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_set_ldt]
    call check_eq

    # the LDT's first use: set_segment_base loads its selector as the user GS selector
    mov edi, SEGBASE_GS_USER_SEL
    mov esi, SEL_LDT1
    call hc_set_segment_base
    xor edi, edi
    mov di, gs
    mov esi, SEL_LDT1
    lea rdx, [rip + m_gs_sel]
    call check_eq
    xor eax, eax
    mov gs, ax

    # an LDT selector loads and reads go through it
    mov ax, SEL_LDT1
    mov ds, ax
    mov rdi, [marker]
    xor eax, eax
    mov ds, ax
    movabs rsi, 0x6c64746d61726b21
    lea rdx, [rip + m_through_ds]
    call check_eq

    # the frame is a descriptor page now: no writable mapping
    lea rdi, [rbx + 4096]
    mov rsi, r12
    shl rsi, 12
    or rsi, PTE_P | PTE_RW
    call map_va
    mov rdi, rax
    mov rsi, RC_EBUSY
    lea rdx, [rip + m_writable]
    call check_eq

    # past the entries: #GP(selector)
    lea rdi, [rip + past_done]
    call expect_fault
    mov ax, SEL_LDT2
    mov ds, ax
past_done:
    mov rdi, [rip + fault_vector]
    mov esi, 13
    lea rdx, [rip + m_past]
    call check_eq
    mov rdi, [rip + fault_err]
    mov esi, 0x14
    lea rdx, [rip + m_past_err]
    call check_eq

    # an LDT at an unmapped page: accepted; the load page-faults at the guest's address
    lea rdi, [rbx + 8192]
    xor esi, esi
    call map_va
    lea rdi, [rbx + 8192]
    mov esi, 2
    call set_ldt
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_set_unmapped]
    call check_eq
    lea rdi, [rip + unmapped_done]
    call expect_fault
    mov ax, SEL_LDT1
    mov ds, ax
unmapped_done:
    xor eax, eax
    mov ds, ax
    mov rdi, [rip + fault_vector]
    mov esi, 14
    lea rdx, [rip + m_unmapped]
    call check_eq
    mov rdi, [rip + fault_cr2]
    lea rsi, [rbx + 8200]
    lea rdx, [rip + m_unmapped_cr2]
    call check_eq

    # no LDT: the selector faults
    xor edi, edi
    xor esi, esi
    call set_ldt
    lea rdi, [rip + none_done]
    call expect_fault
    mov ax, SEL_LDT1
    mov ds, ax
none_done:
    mov rdi, [rip + fault_vector]
    mov esi, 13
    lea rdx, [rip + m_none]
    call check_eq

    # refused (but with no entries the address is not looked at)
    lea rdi, [rbx + 8]
    xor esi, esi
    call set_ldt
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_none_unaligned]
    call check_eq
    lea rdi, [rbx + 8]
    mov esi, 2
    call set_ldt
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_unaligned]
    call check_eq
    movabs rdi, 0xffff800000000000
    mov esi, 2
    call set_ldt
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_xen_area]
    call check_eq
    mov rdi, rbx
    mov esi, 8193
    call set_ldt
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_too_many]
    call check_eq
    ret

.align 8
ldt_op: .quad 0, 0, 0
marker: .quad 0x6c64746d61726b21
m_set_ldt: .asciz "MMUEXT_SET_LDT of 2 entries"
m_through_ds: .asciz "a read through an LDT selector"
m_gs_sel: .asciz "set_segment_base loads the LDT selector into GS"
m_writable: .asciz "a writable mapping of the LDT frame"
m_past: .asciz "a selector past the LDT's entries raises #GP"
m_past_err: .asciz "its #GP error code is the selector"
m_set_unmapped: .asciz "MMUEXT_SET_LDT at an unmapped address"
m_unmapped: .asciz "loading from an unmapped LDT raises #PF"
m_unmapped_cr2: .asciz "that #PF's address is the descriptor's in the guest's LDT"
m_none: .asciz "an LDT selector with no LDT raises #GP"
m_none_unaligned: .asciz "MMUEXT_SET_LDT of no entries at an unaligned address"
m_unaligned: .asciz "MMUEXT_SET_LDT at an unaligned address"
m_xen_area: .asciz "MMUEXT_SET_LDT in Xen's area"
m_too_many: .asciz "MMUEXT_SET_LDT of 8193 entries"
