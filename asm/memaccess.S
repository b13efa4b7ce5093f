# memaccess: a kernel for mem_access listeners to watch. It writes five values into its
# `watched` page and reads them back, calls a function on its `exec_page` three times,
# writes a scratch L1 entry directly (writable page tables) and touches the new mapping,
# and asks XENMEM_access_op and HVMOP_set_mem_access about itself (a guest may not: -EPERM).
# With `ring=<hex mfn>` on the command line it also tries to map that frame, its vm_event
# ring page, with update_va_mapping and mmu_update, and must get -EPERM. Every check holds
# whether or not a listener watches: a listener's events must never change what the guest
# sees.
.include "pv.inc"

.equ VMASST_CMD_enable, 0
.equ VMASST_TYPE_writable_pagetables, 2
.equ XENMEM_access_op, 21
.equ HVMOP_set_mem_access, 12
.equ PTE_PRW, PTE_P | PTE_RW
.equ MARK, 0x4d41524b

test_main:
    # five writes into the watched page, then read them back
    lea rbx, [rip + watched]
    mov qword ptr [rbx], 1
    mov qword ptr [rbx + 8], 2
    mov qword ptr [rbx + 16], 3
    mov qword ptr [rbx + 24], 4
    mov qword ptr [rbx + 32], 5
    mov rdi, [rbx]
    add rdi, [rbx + 8]
    add rdi, [rbx + 16]
    add rdi, [rbx + 24]
    add rdi, [rbx + 32]
    mov esi, 15
    lea rdx, [rip + m_watched]
    call check_eq

    # three calls into the exec page
    xor r12d, r12d
    call exec_fn
    add r12, rax
    call exec_fn
    add r12, rax
    call exec_fn
    add r12, rax
    mov rdi, r12
    mov esi, 21
    lea rdx, [rip + m_exec]
    call check_eq

    # a direct store into an L1 table, then a touch through the new mapping
    mov edi, VMASST_CMD_enable
    mov esi, VMASST_TYPE_writable_pagetables
    call hc_vm_assist
    call scratch_va
    mov r13, rax
    mov rdi, rax
    call l1e_va
    mov r14, rax
    mov r15, [r14]
    mov edi, 1
    call top_mfn
    shl rax, 12
    add rax, PTE_PRW
    mov [r14], rax
    mov rdi, r13
    call invlpg_va
    mov qword ptr [r13], MARK
    mov rdi, [r13]
    mov esi, MARK
    lea rdx, [rip + m_ptwrite]
    call check_eq
    mov [r14], r15
    mov rdi, r13
    call invlpg_va

    # a guest asking about its own access
    mov byte ptr [rip + access_op], 1
    mov word ptr [rip + access_op + 2], DOMID_SELF
    mov edi, XENMEM_access_op
    lea rsi, [rip + access_op]
    call hc_memory_op
    mov rdi, rax
    mov rsi, RC_EPERM
    lea rdx, [rip + m_access_op]
    call check_eq
    mov word ptr [rip + access_op], DOMID_SELF
    mov edi, HVMOP_set_mem_access
    lea rsi, [rip + access_op]
    call hc_hvm_op
    mov rdi, rax
    mov rsi, RC_EPERM
    lea rdx, [rip + m_hvmop]
    call check_eq

    # the ring page, if the command line names it
    call ring_mfn
    test rax, rax
    jz done
    mov r12, rax
    mov rdi, r13
    mov rsi, r12
    shl rsi, 12
    or rsi, PTE_P
    call map_va
    mov rdi, rax
    mov rsi, RC_EPERM
    lea rdx, [rip + m_ring_uvm]
    call check_eq
    mov rdi, r13
    call l1e_maddr
    mov rdi, rax
    mov rsi, r12
    shl rsi, 12
    or rsi, PTE_P
    call mmu_update1
    mov rdi, rax
    mov rsi, RC_EPERM
    lea rdx, [rip + m_ring_mmu]
    call check_eq
done:
    ret

# ring_mfn -> rax: the hex number after "ring=" on the command line, or 0
ring_mfn:
    mov rsi, [rip + start_info_ptr]
    add rsi, SI_cmd_line
find:
    cmp byte ptr [rsi], 0
    je none
    cmp dword ptr [rsi], 0x676e6972        # "ring"
    jne next
    cmp byte ptr [rsi + 4], 0x3d           # "="
    je found
next:
    inc rsi
    jmp find
found:
    add rsi, 5
    xor eax, eax
digit:
    movzx ecx, byte ptr [rsi]
    sub ecx, 0x30
    cmp ecx, 9
    jbe add_digit
    movzx ecx, byte ptr [rsi]
    or ecx, 0x20
    sub ecx, 0x57
    cmp ecx, 10
    jb parsed
    cmp ecx, 15
    ja parsed
add_digit:
    shl rax, 4
    add rax, rcx
    inc rsi
    jmp digit
none:
    xor eax, eax
parsed:
    ret

.align 8
access_op: .quad 0, 0
m_watched: .asciz "the watched page holds what was written"
m_exec: .asciz "three calls into the exec page"
m_ptwrite: .asciz "a mapping made by a direct page-table store"
m_access_op: .asciz "XENMEM_access_op from the guest itself"
m_hvmop: .asciz "HVMOP_set_mem_access from the guest itself"
m_ring_uvm: .asciz "update_va_mapping of the vm_event ring page"
m_ring_mmu: .asciz "mmu_update mapping the vm_event ring page"

.align 4096
watched:
    .fill 4096, 1, 0
exec_page:
exec_fn:
    mov eax, 7
    ret
.align 4096
