# touch (benchmark): hook a page-table tree the harness planted (an L3 at window_l3_mfn)
# into L4 slot 1 with mmu_update, then read (or, with touch_write set, write) one qword of
# each of touch_count pages, stride_pages apart, starting at 0x8000000000. Under shadow
# paging each first touch is a shadow fault.
.include "pv.inc"

.equ WINDOW, 0x8000000000

test_main:
    mov rax, [rip + window_l3_mfn]
    test rax, rax
    jz touch_done
    mov rdi, [rip + start_info_ptr]
    mov rdi, [rdi + SI_pt_base]
    call va_maddr
    add rax, 8                            # L4 slot 1
    mov [rip + mmu_req], rax
    mov rax, [rip + window_l3_mfn]
    shl rax, 12
    or rax, PTE_P | PTE_RW | PTE_US | PTE_A
    mov [rip + mmu_req + 8], rax
    lea rdi, [rip + mmu_req]
    mov esi, 1
    xor edx, edx
    mov r10d, DOMID_SELF
    call hc_mmu_update
    test rax, rax
    jnz touch_refused
    mov rcx, [rip + touch_count]
    mov rdx, [rip + stride_pages]
    shl rdx, 12
    movabs rsi, WINDOW
    mov r8, [rip + touch_write]
touch_loop:
    test rcx, rcx
    jz touch_done
    test r8, r8
    jnz touch_store
    mov rax, [rsi]
    jmp touch_next
touch_store:
    mov [rsi], rcx
touch_next:
    add rsi, rdx
    dec rcx
    jmp touch_loop
touch_refused:
    lea rdi, [rip + m_refused]
    call fail
touch_done:
    ret

.align 8
window_l3_mfn: .quad 0
touch_count: .quad 0
stride_pages: .quad 1
touch_write: .quad 0
mmu_req: .quad 0, 0
m_refused: .asciz "hooking the planted tree"
