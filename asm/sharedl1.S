# sharedl1: two user address spaces that share an L1 table, switched a thousand times.
# Spaces A and B have their own L4, L3 and L2, but both L2s point at one L1 mapping the
# user code, a shared data page and the stack; each also maps 0x600000 through an L1 of
# its own to an identity page holding 1 (A) or 1000 (B). The user loop adds the identity
# value to the shared page and makes a syscall; the kernel installs the other user base
# pointer and returns. After 1000 rounds the sum must be 500 * 1 + 500 * 1000: a stale
# translation across CR3 switches, or a shadow shared wrongly, changes it.
.include "pv.inc"

.equ USER_CODE_VA, 0x400000
.equ USER_DATA_VA, 0x401000
.equ USER_STACK_TOP, 0x403000
.equ USER_ID_VA, 0x600000
.equ VGCF_in_syscall, 0x100
.equ ROUNDS, 1000
.equ EXPECTED_SUM, 500500
.equ PTE_USER, PTE_P | PTE_RW | PTE_US


# link(rdi = table mfn, rsi = index, rdx = child mfn): a user-accessible entry
link:
    push rdx
    shl rdx, 12
    or rdx, PTE_USER
    call frame_write
    pop rdx
    ret


# pin_l4(rdi = mfn) -> rax
pin_l4:
    mov rsi, rdi
    mov edi, MMUEXT_PIN_L4_TABLE
    call mmuext1
    ret

# user_base(rdi = mfn) -> rax
user_base:
    mov rsi, rdi
    mov edi, MMUEXT_NEW_USER_BASEPTR
    call mmuext1
    ret

test_main:
    call scratch_va
    mov [rip + scratch], rax
    lea rbx, [rip + frames]
    mov r12d, 3
take_frames:
    mov rdi, r12
    call top_mfn
    mov [rbx + r12 * 8 - 24], rax
    inc r12d
    cmp r12d, 17
    jne take_frames
    # frames: 0 L4a 1 L3a 2 L2a 3 L4b 4 L3b 5 L2b 6 L1 shared 7 L1 of A 8 L1 of B
    #         9 code 10 data 11 id A 12 id B 13 stack
    mov rdi, [rbx + 0]
    xor esi, esi
    mov rdx, [rbx + 8]
    call link
    mov rdi, [rbx + 8]
    xor esi, esi
    mov rdx, [rbx + 16]
    call link
    mov rdi, [rbx + 24]
    xor esi, esi
    mov rdx, [rbx + 32]
    call link
    mov rdi, [rbx + 32]
    xor esi, esi
    mov rdx, [rbx + 40]
    call link
    mov rdi, [rbx + 16]
    mov esi, 2
    mov rdx, [rbx + 48]
    call link
    mov rdi, [rbx + 40]
    mov esi, 2
    mov rdx, [rbx + 48]
    call link
    mov rdi, [rbx + 16]
    mov esi, 3
    mov rdx, [rbx + 56]
    call link
    mov rdi, [rbx + 40]
    mov esi, 3
    mov rdx, [rbx + 64]
    call link
    mov rdi, [rbx + 48]
    xor esi, esi
    mov rdx, [rbx + 72]
    call link
    mov rdi, [rbx + 48]
    mov esi, 1
    mov rdx, [rbx + 80]
    call link
    mov rdi, [rbx + 48]
    mov esi, 2
    mov rdx, [rbx + 104]
    call link
    mov rdi, [rbx + 56]
    xor esi, esi
    mov rdx, [rbx + 88]
    call link
    mov rdi, [rbx + 64]
    xor esi, esi
    mov rdx, [rbx + 96]
    call link
    mov rdi, [rbx + 88]
    xor esi, esi
    mov edx, 1
    call frame_write
    mov rdi, [rbx + 96]
    xor esi, esi
    mov edx, 1000
    call frame_write
    # the user program
    mov rsi, [rbx + 72]
    shl rsi, 12
    or rsi, PTE_P | PTE_RW
    mov rdi, [rip + scratch]
    mov edx, UVMF_INVLPG
    call hc_update_va_mapping
    mov rdi, [rip + scratch]
    lea rsi, [rip + user_blob]
    lea rcx, [rip + user_blob_end]
    sub rcx, rsi
    rep movsb
    mov rdi, [rip + scratch]
    xor esi, esi
    mov edx, UVMF_INVLPG
    call hc_update_va_mapping

    mov rdi, [rbx + 0]
    call pin_l4
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_pin_a]
    call check_eq
    mov rdi, [rbx + 24]
    call pin_l4
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_pin_b]
    call check_eq
    mov rdi, [rbx + 0]
    call user_base

    xor edi, edi
    xor esi, esi
    lea rdx, [rip + syscall_entry]
    call hc_set_callbacks
    mov edi, FLAT_KERNEL_SS
    lea rsi, [rip + kernel_stack_top]
    call hc_stack_switch
    mov [rip + saved_kernel_rsp], rsp
    mov edi, USER_CODE_VA
    mov esi, USER_STACK_TOP
    jmp enter_user

back_in_kernel:
    mov rdi, [rip + rounds]
    mov esi, ROUNDS
    lea rdx, [rip + m_rounds]
    call check_eq
    mov rdi, [rip + final_sum]
    mov esi, EXPECTED_SUM
    lea rdx, [rip + m_sum]
    call check_eq
    ret

# syscall: RCX, R11, RIP, CS, RFLAGS, RSP, SS on the kernel stack
syscall_entry:
    inc qword ptr [rip + rounds]
    cmp qword ptr [rip + rounds], ROUNDS
    je syscall_last
    lea rax, [rip + frames]
    mov rdi, [rax + 0]
    test qword ptr [rip + rounds], 1
    jz syscall_switch
    mov rdi, [rax + 24]
syscall_switch:
    call user_base
    pop rcx
    pop r11
    push VGCF_in_syscall
    jmp hc_iret
syscall_last:
    mov [rip + final_sum], rbx
    mov rsp, [rip + saved_kernel_rsp]
    jmp back_in_kernel

user_blob:
    mov rax, [USER_ID_VA]
    add [USER_DATA_VA], rax
    mov rbx, [USER_DATA_VA]
    syscall
    jmp user_blob
user_blob_end:

.align 8
scratch: .quad 0
frames: .fill 14 * 8, 1, 0
saved_kernel_rsp: .quad 0
rounds: .quad 0
final_sum: .quad 0
m_pin_a: .asciz "pinning address space A"
m_pin_b: .asciz "pinning address space B"
m_rounds: .asciz "syscall rounds"
m_sum: .asciz "sum of the identity pages seen across switches"
.align 16
    .fill 8192, 1, 0
kernel_stack_top:
