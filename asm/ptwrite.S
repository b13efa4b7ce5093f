# ptwrite: a guest that writes its own L1 table directly (VMASST_TYPE_writable_pagetables,
# Xen's "writable page tables") and touches what it mapped. The L1 page is mapped
# read-only, so each store traps and the hypervisor emulates it after validating the new
# entry: mov, xchg, lock cmpxchg (taken and not taken), a read-modify-write `and`,
# rep stosq and cmpxchg16b. A store that maps a frame Xen owns is refused: the guest gets
# the #PF of a write to a read-only page and the entry is unchanged. rep movsq too. Wrong contents,
# registers, flags or error codes are FAILUREs.
.include "pv.inc"

.equ VMASST_CMD_enable, 0
.equ VMASST_TYPE_writable_pagetables, 2
.equ NOT_RW, ~PTE_RW
.equ PTE_PRW, PTE_P | PTE_RW
.equ PATTERN_A, 0xa1a1a1a1a1a1a1a1
.equ PATTERN_B, 0xb2b2b2b2b2b2b2b2

# invlpg_scratch: MMUEXT_INVLPG_LOCAL of the scratch page, as Xen wants after a change
invlpg_scratch:
    push rdi
    push rax
    mov rdi, [rip + scratch]
    call invlpg_va
    pop rax
    pop rdi
    ret

test_main:
    mov edi, VMASST_CMD_enable
    mov esi, VMASST_TYPE_writable_pagetables
    call hc_vm_assist
    call scratch_va
    mov [rip + scratch], rax
    mov rbx, rax
    mov rdi, rax
    call l1e_va
    mov r12, rax                          # the scratch L1 entry, mapped read-only
    mov r13, [r12]                        # its boot value
    mov edi, 1
    call top_mfn
    shl rax, 12
    mov r14, rax                          # frame A's machine address
    mov edi, 2
    call top_mfn
    shl rax, 12
    mov r15, rax                          # frame B's machine address

    # mov: map A, write through it
    lea rax, [r14 + PTE_PRW]
    mov [r12], rax
    call invlpg_scratch
    movabs rax, PATTERN_A
    mov [rbx], rax
    mov rdi, [rbx]
    movabs rsi, PATTERN_A
    lea rdx, [rip + m_mov]
    call check_eq
    mov rdi, [r12]
    movabs rax, 0x000ffffffffff000
    and rdi, rax
    mov rsi, r14
    lea rdx, [rip + m_mov_entry]
    call check_eq

    # xchg: map B, the old entry comes back in the register
    lea rax, [r15 + PTE_PRW]
    xchg [r12], rax
    call invlpg_scratch
    movabs rcx, 0x000ffffffffff000
    and rax, rcx
    mov rdi, rax
    mov rsi, r14
    lea rdx, [rip + m_xchg_old]
    call check_eq
    movabs rax, PATTERN_B
    mov [rbx], rax

    # lock cmpxchg, taken: B -> A
    mov rax, [r12]
    lea rcx, [r14 + PTE_PRW]
    lock cmpxchg [r12], rcx
    setz dl
    movzx edi, dl
    mov esi, 1
    lea rdx, [rip + m_cmpxchg_zf]
    call check_eq
    call invlpg_scratch
    mov rdi, [rbx]
    movabs rsi, PATTERN_A
    lea rdx, [rip + m_cmpxchg_taken]
    call check_eq

    # cmpxchg, not taken: nothing changes, rax gets the current entry
    mov rsi, [r12]
    mov rax, 0x1234
    lea rcx, [r15 + PTE_PRW]
    lock cmpxchg [r12], rcx
    setz dl
    mov r8, rax
    movzx edi, dl
    xor esi, esi
    lea rdx, [rip + m_cmpxchg_nz]
    call check_eq
    mov rdi, r8
    mov rsi, [r12]
    lea rdx, [rip + m_cmpxchg_rax]
    call check_eq
    mov rdi, [rbx]
    movabs rsi, PATTERN_A
    lea rdx, [rip + m_cmpxchg_kept]
    call check_eq

    # a read-modify-write: clear RW with `and`; a write then faults P|W
    mov rax, NOT_RW
    and [r12], rax
    call invlpg_scratch
    mov rdi, [r12]
    and edi, PTE_RW
    xor esi, esi
    lea rdx, [rip + m_and]
    call check_eq
    lea rdi, [rip + and_resume]
    call expect_fault
    mov qword ptr [rbx], 0
and_resume:
    mov rdi, [rip + fault_err]
    mov esi, 3
    lea rdx, [rip + m_and_fault]
    call check_eq

    # rep stosq: write the entry (B, writable) with a string store
    lea rax, [r15 + PTE_PRW]
    mov rdi, r12
    mov ecx, 1
    cld
    rep stosq
    call invlpg_scratch
    mov rdi, [rbx]
    movabs rsi, PATTERN_B
    lea rdx, [rip + m_stos]
    call check_eq

    # rep movsq: copy an entry (A, writable) from memory into the table
    lea rax, [r14 + PTE_PRW]
    mov [rip + movs_src], rax
    lea rsi, [rip + movs_src]
    mov rdi, r12
    mov ecx, 1
    rep movsq
    call invlpg_scratch
    mov rdi, [rbx]
    movabs rsi, PATTERN_A
    lea rdx, [rip + m_movs]
    call check_eq
    lea rax, [r15 + PTE_PRW]
    mov [r12], rax
    call invlpg_scratch

    # cmpxchg16b on the aligned pair holding the entry: swap in A, keep the neighbour
    mov rsi, r12
    and rsi, -16
    mov [rip + pair_base], rsi
    mov rax, [rsi]
    mov rdx, [rsi + 8]
    mov rbx, rax
    mov rcx, rdx
    cmp rsi, r12
    jne pair_high
    lea rbx, [r14 + PTE_PRW]
    jmp pair_go
pair_high:
    lea rcx, [r14 + PTE_PRW]
pair_go:
    lock cmpxchg16b [rsi]
    setz dl
    movzx edi, dl
    mov esi, 1
    lea rdx, [rip + m_cx16]
    call check_eq
    call invlpg_scratch
    mov rbx, [rip + scratch]
    mov rdi, [rbx]
    movabs rsi, PATTERN_A
    lea rdx, [rip + m_cx16_map]
    call check_eq

    # refused: a store that maps a frame Xen owns faults, and the entry stays
    mov r8, [r12]
    mov rax, [rip + start_info_ptr]
    mov rax, [rax + SI_pt_base]
    mov rax, [rax + 256 * 8]
    movabs rcx, 0x000ffffffffff000
    and rax, rcx
    or rax, PTE_P
    lea rdi, [rip + refused_resume]
    call expect_fault
    mov [r12], rax
refused_resume:
    mov rdi, [rip + fault_err]
    mov esi, 3
    lea rdx, [rip + m_refused]
    call check_eq
    mov rdi, [r12]
    mov rsi, r8
    lea rdx, [rip + m_refused_kept]
    call check_eq

    # put the boot mapping back
    mov [r12], r13
    call invlpg_scratch
    ret

.align 8
scratch: .quad 0
pair_base: .quad 0
movs_src: .quad 0
m_mov: .asciz "frame A through a mapping made by mov"
m_mov_entry: .asciz "the entry mov wrote"
m_xchg_old: .asciz "xchg returns the old entry"
m_cmpxchg_zf: .asciz "cmpxchg taken sets ZF"
m_cmpxchg_taken: .asciz "frame A after a taken cmpxchg"
m_cmpxchg_nz: .asciz "cmpxchg not taken clears ZF"
m_cmpxchg_rax: .asciz "cmpxchg not taken loads the entry into rax"
m_cmpxchg_kept: .asciz "cmpxchg not taken changes nothing"
m_and: .asciz "and cleared RW in the entry"
m_and_fault: .asciz "a write after RW was cleared faults P|W"
m_stos: .asciz "frame B through a mapping made by rep stosq"
m_movs: .asciz "frame A through a mapping made by rep movsq"
m_cx16: .asciz "cmpxchg16b taken sets ZF"
m_cx16_map: .asciz "frame A through a mapping made by cmpxchg16b"
m_refused: .asciz "a store mapping Xen's frame faults P|W"
m_refused_kept: .asciz "a refused store leaves the entry"
