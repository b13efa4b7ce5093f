# ptwloop (benchmark): rewrite one L1 entry `iterations` times (from the command line)
# with plain stores, under VMASST_TYPE_writable_pagetables: each store is trapped and
# emulated by the hypervisor.
.include "pv.inc"

.equ VMASST_CMD_enable, 0
.equ VMASST_TYPE_writable_pagetables, 2

test_main:
    mov edi, VMASST_CMD_enable
    mov esi, VMASST_TYPE_writable_pagetables
    call hc_vm_assist
    mov rsi, [rip + start_info_ptr]
    add rsi, SI_cmd_line
    xor r12d, r12d
parse:
    movzx eax, byte ptr [rsi]
    sub al, 0x30
    cmp al, 9
    ja parsed
    imul r12, r12, 10
    add r12, rax
    inc rsi
    jmp parse
parsed:
    call scratch_va
    mov rdi, rax
    call l1e_maddr
    mov rdi, rax
    call maddr_to_va
    mov rbx, rax                          # the scratch L1 entry, mapped read-only
    mov r13, [rbx]
    mov r14, r13
    xor r14, PTE_A                        # two valid values of the same entry
rewrite:
    test r12, r12
    jz rewritten
    mov [rbx], r14
    mov [rbx], r13
    sub r12, 2
    jg rewrite
rewritten:
    ret
