# isolation: what a guest kernel does to the hypervisor's edges comes back to it as Xen
# answers it, and nothing else moves (issue 11's findings that need the real CPU).
# - A store to a non-canonical address raises #GP(0), delivered to the kernel (the
#   privileged-op decoder must not take it for an instruction to emulate).
# - With writable page tables, a 2-byte store straddling two L1 entries (one change
#   valid, NX on the first; one refused, a present entry for a hypervisor frame on the
#   second) is refused whole: #PF, both entries as they were (Xen emulates only
#   naturally aligned stores).
# - A read of the vCPU's LDT area (the hypervisor's, supervisor-only) from the kernel
#   raises #PF at that address, once.
# - Long hypercalls are preempted and resumed transparently: mmu_update with 1300
#   requests reports all 1300 done through pdone; a 1100-entry multicall writes every
#   entry's result.
# Any other value, errno or fault is a FAILURE.
.include "pv.inc"

.equ VMASST_CMD_enable, 0
.equ VMASST_TYPE_writable_pagetables, 2
.equ MMUEXT_SET_LDT, 13
.equ MMU_MACHPHYS_UPDATE, 2
.equ LDT_AREA, 0xffff820000010000            # vCPU 0's LDT area (after its GDT area)
.equ NR_UPDATES, 1300
.equ NR_CALLS, 1100
.equ BUFFER_OFFSET, 0x10000                  # into the padding after the stack
.equ LAST_RESULT, 70344                      # (NR_CALLS - 1) * 64 + 8

test_main:
    call non_canonical_store
    call straddling_pt_store
    call ldt_area_read
    call long_mmu_update
    call long_multicall
    ret

non_canonical_store:
    lea rdi, [rip + non_canonical_store_1]
    call expect_fault
    movabs rax, 0x8000000000001000
    mov qword ptr [rax], 0
non_canonical_store_1:  mov rdi, [rip + fault_vector]
    mov esi, 13
    lea rdx, [rip + m_gp]
    call check_eq
    mov rdi, [rip + fault_err]
    xor esi, esi
    lea rdx, [rip + m_gp_err]
    call check_eq
    ret

straddling_pt_store:
    mov edi, VMASST_CMD_enable
    mov esi, VMASST_TYPE_writable_pagetables
    call hc_vm_assist
    # two adjacent scratch pages: the first mapped, the second not
    call scratch_va
    add rax, 0x2000
    mov rbx, rax
    mov edi, 1
    call top_mfn
    shl rax, 12
    or rax, PTE_P | PTE_RW | PTE_A | PTE_D
    mov r13, rax
    mov rdi, rbx
    mov rsi, rax
    call map_va
    lea rdi, [rbx + 0x1000]
    xor esi, esi
    call map_va
    mov rdi, rbx
    call l1e_va
    mov r12, rax                              # the first entry, read-only
    mov r13, [r12]                            # as validation left it
    lea rdi, [rip + straddling_pt_store_1]
    call expect_fault
    mov cx, 0x0180                            # byte 7 of entry 1: NX; byte 0 of entry 2: P
    mov word ptr [r12 + 7], cx
straddling_pt_store_1:  mov rdi, [rip + fault_vector]
    mov esi, 14
    lea rdx, [rip + m_straddle_pf]
    call check_eq
    mov rdi, [r12]
    mov rsi, r13
    lea rdx, [rip + m_straddle_first]
    call check_eq
    mov rdi, [r12 + 8]
    xor esi, esi
    lea rdx, [rip + m_straddle_second]
    call check_eq
    ret

ldt_area_read:
    # an LDT of 2 entries in a zeroed frame, mapped read-only at a scratch page
    mov edi, 2
    call top_mfn
    mov r12, rax
    call scratch_va
    add rax, 0x4000
    mov rbx, rax
    mov rdi, rbx
    mov rsi, r12
    shl rsi, 12
    or rsi, PTE_P
    call map_va
    mov dword ptr [rip + ldt_op], MMUEXT_SET_LDT
    mov [rip + ldt_op + 8], rbx
    mov qword ptr [rip + ldt_op + 16], 2
    lea rdi, [rip + ldt_op]
    mov esi, 1
    xor edx, edx
    mov r10d, DOMID_SELF
    call hc_mmuext_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_set_ldt]
    call check_eq
    lea rdi, [rip + ldt_area_read_1]
    call expect_fault
    movabs rax, LDT_AREA
    mov rax, [rax]
ldt_area_read_1:  mov rdi, [rip + fault_vector]
    mov esi, 14
    lea rdx, [rip + m_ldt_pf]
    call check_eq
    mov rdi, [rip + fault_cr2]
    movabs rsi, LDT_AREA
    lea rdx, [rip + m_ldt_cr2]
    call check_eq
    ret

long_mmu_update:
    # NR_UPDATES copies of "pfn 0's M2P entry is pfn 0": valid, cheap, many
    xor edi, edi
    call pfn_to_mfn
    shl rax, 12
    or rax, MMU_MACHPHYS_UPDATE
    call scratch_va
    lea rdi, [rax + BUFFER_OFFSET]
    mov rbx, rdi
    xor edi, edi
    call pfn_to_mfn
    shl rax, 12
    or rax, MMU_MACHPHYS_UPDATE
    mov ecx, NR_UPDATES
    mov rdi, rbx
long_mmu_update_1:  mov [rdi], rax
    mov qword ptr [rdi + 8], 0
    add rdi, 16
    dec ecx
    jnz long_mmu_update_1
    mov dword ptr [rip + mmu_done], 0
    mov rdi, rbx
    mov esi, NR_UPDATES
    lea rdx, [rip + mmu_done]
    mov r10d, DOMID_SELF
    call hc_mmu_update
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_long_rc]
    call check_eq
    mov edi, [rip + mmu_done]
    mov esi, NR_UPDATES
    lea rdx, [rip + m_long_done]
    call check_eq
    ret

long_multicall:
    # NR_CALLS entries of xen_version(XENVER_version), each result preset to -1
    call scratch_va
    lea rbx, [rax + BUFFER_OFFSET]
    mov rdi, rbx
    mov ecx, NR_CALLS
    mov edx, __HYPERVISOR_xen_version
long_multicall_1:  mov [rdi], rdx
    mov qword ptr [rdi + 8], -1
    mov qword ptr [rdi + 16], 0
    add rdi, 64
    dec ecx
    jnz long_multicall_1
    xor edi, edi
    call hc_xen_version
    mov r12, rax                              # what every entry must hold
    mov rdi, rbx
    mov esi, NR_CALLS
    call hc_multicall
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_multicall_rc]
    call check_eq
    mov rdi, [rbx + 8]
    mov rsi, r12
    lea rdx, [rip + m_multicall_first]
    call check_eq
    mov rdi, [rbx + LAST_RESULT]
    mov rsi, r12
    lea rdx, [rip + m_multicall_last]
    call check_eq
    ret

ldt_op: .fill 24, 1, 0
m_gp: .asciz "a non-canonical store raises #GP"
m_gp_err: .asciz "the #GP's error code is 0"
m_straddle_pf: .asciz "a store straddling a valid and a refused L1 entry raises #PF"
m_straddle_first: .asciz "the straddling store left the first entry unchanged"
m_straddle_second: .asciz "the straddling store left the second entry unchanged"
m_set_ldt: .asciz "MMUEXT_SET_LDT of 2 entries"
m_ldt_pf: .asciz "a kernel read of the LDT area raises #PF"
m_ldt_cr2: .asciz "the #PF names the LDT-area address"
m_long_rc: .asciz "mmu_update of 1300 requests returns 0"
m_long_done: .asciz "mmu_update of 1300 requests reports 1300 done"
m_multicall_rc: .asciz "a 1100-entry multicall returns 0"
m_multicall_first: .asciz "the first multicall entry holds xen_version's result"
m_multicall_last: .asciz "the last multicall entry holds xen_version's result"
