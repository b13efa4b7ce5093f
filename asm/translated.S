# translated: a translated (auto_translated_physmap) PV kernel. Its page-table entries
# name gfns: it finds the feature advertised, writes five values into its `watched`
# page and reads them back, rewrites a scratch L1 entry with a plain store (no writable
# page-table assist: a translated guest writes its tables as memory) and with
# mmu_update (a guest-physical address), touches each mapping, and points the entry at
# a gfn past its RAM, which must fault. Every check holds whether or not a listener
# watches (`pvshadow access translated --watch altp2m_write`).
# pvshadow: --paging translated
.include "pv.inc"
.include "translated.inc"

.equ XENVER_get_features, 6
.equ XENFEAT_auto_translated_physmap, 2
.equ PTE_PRW, PTE_P | PTE_RW | PTE_A | PTE_D
.equ MARK, 0x54524e53
.equ NO_RAM_GFN, 0xfffff

test_main:
    push r12
    push r13
    push r14
    push r15
    # the feature a translated guest is given
    lea rsi, [rip + features]
    mov edi, XENVER_get_features
    call hc_xen_version
    mov edi, [rip + features + 4]
    shr edi, XENFEAT_auto_translated_physmap
    and edi, 1
    mov esi, 1
    lea rdx, [rip + m_feature]
    call check_eq

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

    # a plain store into the scratch page's L1 entry: it now maps `target`
    call scratch_va
    mov r13, rax
    mov rdi, rax
    call l1e_va_t
    mov r14, rax
    mov r15, [r14]
    lea rdi, [rip + target]
    call va_gfn
    shl rax, 12
    or rax, PTE_PRW
    mov r12, rax
    mov [r14], rax
    mov rdi, r13
    call invlpg_va
    mov rdi, [r13]
    mov esi, MARK
    lea rdx, [rip + m_store_read]
    call check_eq
    mov qword ptr [r13], 0x77
    mov rdi, [rip + target]
    mov esi, 0x77
    lea rdx, [rip + m_store_write]
    call check_eq

    # the same through mmu_update, which names the entry by its guest-physical address
    mov qword ptr [r14], 0
    mov rdi, r13
    call invlpg_va
    mov rdi, r14
    call va_gfn
    shl rax, 12
    mov rcx, r14
    and ecx, 0xfff
    or rax, rcx
    mov [rip + mmu_req], rax
    mov [rip + mmu_req + 8], r12
    lea rdi, [rip + mmu_req]
    mov esi, 1
    lea rdx, [rip + mmu_count]
    mov r10d, DOMID_SELF
    call hc_mmu_update
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_mmu_rc]
    call check_eq
    mov rdi, r13
    call invlpg_va
    mov rdi, [r13]
    mov esi, 0x77
    lea rdx, [rip + m_mmu_read]
    call check_eq

    # an entry naming a gfn with no frame behind it: the guest's own #PF
    movabs rax, NO_RAM_GFN << 12 | PTE_PRW
    mov [r14], rax
    mov rdi, r13
    call invlpg_va
    lea rdi, [rip + after_no_ram]
    call expect_fault
    mov rax, [r13]
after_no_ram:
    mov rdi, [rip + fault_vector]
    mov esi, 14
    lea rdx, [rip + m_no_ram]
    call check_eq

    mov [r14], r15
    mov rdi, r13
    call invlpg_va
    pop r15
    pop r14
    pop r13
    pop r12
    ret



m_feature: .asciz "XENFEAT_auto_translated_physmap advertised"
m_watched: .asciz "the watched page holds what was written"
m_store_read: .asciz "a plain store into an L1 entry maps the gfn it names"
m_store_write: .asciz "a write through the new mapping reaches that gfn's page"
m_mmu_rc: .asciz "mmu_update by guest-physical address"
m_mmu_read: .asciz "mmu_update's entry maps the gfn it names"
m_no_ram: .asciz "an entry naming a gfn with no frame gives the guest #PF"

.balign 8
features: .long 0, 0
mmu_req: .quad 0, 0
mmu_count: .quad 0

.balign 4096
watched: .fill 4096, 1, 0
target: .quad MARK
.balign 4096
