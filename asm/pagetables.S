# pagetables: a guest changing its own mappings through update_va_mapping, mmu_update
# and mmuext_op, then touching them. Maps frame A at a scratch address and writes it;
# checks the accessed/dirty bits the walk set; remaps to B and back to A by mmu_update +
# invlpg and reads each frame's own pattern; unmaps and sees a not-present #PF; maps
# read-only (write faults P|W) and no-execute (fetch faults P|I); updates the M2P. A
# stale translation, a lost update, or a wrong error code or CR2 is a FAILURE.
.include "pv.inc"

.equ MMU_NORMAL_PT_UPDATE, 0
.equ MMU_MACHPHYS_UPDATE, 1
.equ PATTERN_A, 0x5a5a5a5a0000000a
.equ PATTERN_B, 0x5b5b5b5b0000000b

# map_scratch(rsi = pte value): update_va_mapping(scratch, rsi, UVMF_INVLPG); rax = rc
map_scratch:
    push rdi
    mov rdi, [rip + scratch]
    call map_va
    pop rdi
    ret

test_main:
    call scratch_va
    mov [rip + scratch], rax
    mov rbx, rax
    mov r12, [rip + start_info_ptr]
    mov rdi, [r12 + SI_nr_pages]
    dec rdi
    mov [rip + pfn_a], rdi
    call pfn_to_mfn
    mov [rip + mfn_a], rax
    mov rdi, [r12 + SI_nr_pages]
    sub rdi, 2
    call pfn_to_mfn
    mov [rip + mfn_b], rax

    # 1. map A, write its pattern
    mov rsi, [rip + mfn_a]
    shl rsi, 12
    or rsi, PTE_P | PTE_RW
    call map_scratch
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_map_a]
    call check_eq
    movabs rax, PATTERN_A
    mov [rbx], rax

    # 2. the walk set A and D in the guest's L1 entry
    mov rdi, rbx
    call l1e_maddr
    mov [rip + l1e], rax
    mov rdi, rbx
    call l1e_va
    mov [rip + l1e_ptr], rax
    mov rdi, [rax]
    and edi, PTE_A | PTE_D
    mov esi, PTE_A | PTE_D
    lea rdx, [rip + m_ad]
    call check_eq

    # 3. remap to B, write B's pattern; mmu_update back to A, invlpg, read A's pattern
    mov rsi, [rip + mfn_b]
    shl rsi, 12
    or rsi, PTE_P | PTE_RW
    call map_scratch
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_map_b]
    call check_eq
    movabs rax, PATTERN_B
    mov [rbx], rax
    mov rdi, [rbx]
    movabs rsi, PATTERN_B
    lea rdx, [rip + m_read_b]
    call check_eq

    mov rdi, [rip + l1e]
    or rdi, MMU_NORMAL_PT_UPDATE
    mov rsi, [rip + mfn_a]
    shl rsi, 12
    or rsi, PTE_P | PTE_RW
    call mmu_update1
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_mmu_update]
    call check_eq
    mov edi, dword ptr [rip + mmu_done]
    mov esi, 1
    lea rdx, [rip + m_done]
    call check_eq
    mov rdi, rbx
    call invlpg_va
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_invlpg]
    call check_eq
    mov rdi, [rbx]
    movabs rsi, PATTERN_A
    lea rdx, [rip + m_read_a]
    call check_eq

    # 4. unmap, then touch: #PF, not present, CR2 = scratch
    xor esi, esi
    call map_scratch
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_unmap]
    call check_eq
    lea rdi, [rip + unmapped_resume]
    call expect_fault
    mov rax, [rbx]
unmapped_resume:
    mov rdi, [rip + fault_vector]
    mov esi, 14
    lea rdx, [rip + m_unmapped_pf]
    call check_eq
    mov rdi, [rip + fault_err]
    xor esi, esi
    lea rdx, [rip + m_unmapped_err]
    call check_eq
    mov rdi, [rip + fault_cr2]
    mov rsi, rbx
    lea rdx, [rip + m_unmapped_cr2]
    call check_eq

    # 5. read-only mapping: reads work, a write faults P|W
    mov rsi, [rip + mfn_a]
    shl rsi, 12
    or rsi, PTE_P
    call map_scratch
    mov rdi, [rbx]
    movabs rsi, PATTERN_A
    lea rdx, [rip + m_read_ro]
    call check_eq
    lea rdi, [rip + ro_resume]
    call expect_fault
    mov qword ptr [rbx], 1
ro_resume:
    mov rdi, [rip + fault_err]
    mov esi, 3
    lea rdx, [rip + m_ro_err]
    call check_eq
    mov rdi, [rbx]
    movabs rsi, PATTERN_A
    lea rdx, [rip + m_ro_kept]
    call check_eq

    # 6. executable, then no-execute: the fetch faults P|I at the scratch address
    mov rsi, [rip + mfn_a]
    shl rsi, 12
    or rsi, PTE_P | PTE_RW
    call map_scratch
    mov byte ptr [rbx], 0xc3
    call rbx
    mov rsi, [rip + mfn_a]
    shl rsi, 12
    or rsi, PTE_P
    movabs rax, 0x8000000000000000
    or rsi, rax
    call map_scratch
    lea rdi, [rip + nx_resume]
    call expect_fault
    call rbx
nx_resume_ret:
    nop
nx_resume:
    add rsp, 8
    mov rdi, [rip + fault_err]
    mov esi, 0x11
    lea rdx, [rip + m_nx_err]
    call check_eq
    mov rdi, [rip + fault_rip]
    mov rsi, rbx
    lea rdx, [rip + m_nx_rip]
    call check_eq

    # 7. MMU_MACHPHYS_UPDATE rewrites the M2P entry the guest reads
    mov rdi, [rip + mfn_a]
    shl rdi, 12
    or rdi, MMU_MACHPHYS_UPDATE
    mov esi, 0x1234
    call mmu_update1
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_machphys]
    call check_eq
    movabs rax, 0xffff800000000000
    mov rcx, [rip + mfn_a]
    mov rdi, [rax + rcx * 8]
    mov esi, 0x1234
    lea rdx, [rip + m_m2p]
    call check_eq
    mov rdi, [rip + mfn_a]
    shl rdi, 12
    or rdi, MMU_MACHPHYS_UPDATE
    mov rsi, [rip + pfn_a]
    call mmu_update1
    ret

.align 8
scratch: .quad 0
pfn_a: .quad 0
mfn_a: .quad 0
mfn_b: .quad 0
l1e: .quad 0
l1e_ptr: .quad 0
m_map_a: .asciz "update_va_mapping of frame A"
m_ad: .asciz "accessed and dirty bits after a write"
m_map_b: .asciz "update_va_mapping of frame B"
m_read_b: .asciz "frame B's pattern through the remapped address"
m_mmu_update: .asciz "mmu_update of the L1 entry"
m_done: .asciz "mmu_update success count"
m_invlpg: .asciz "mmuext_op INVLPG_LOCAL"
m_read_a: .asciz "frame A's pattern after mmu_update and invlpg"
m_unmap: .asciz "update_va_mapping to not-present"
m_unmapped_pf: .asciz "touching an unmapped page raises #PF"
m_unmapped_err: .asciz "#PF error code of an unmapped read"
m_unmapped_cr2: .asciz "CR2 of an unmapped read"
m_read_ro: .asciz "read through a read-only mapping"
m_ro_err: .asciz "#PF error code of a write to a read-only mapping"
m_ro_kept: .asciz "a refused write leaves memory unchanged"
m_nx_err: .asciz "#PF error code of a fetch from a no-execute mapping"
m_nx_rip: .asciz "#PF RIP of a no-execute fetch"
m_machphys: .asciz "MMU_MACHPHYS_UPDATE"
m_m2p: .asciz "M2P entry after MMU_MACHPHYS_UPDATE"
