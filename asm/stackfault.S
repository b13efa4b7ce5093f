# stackfault: a non-canonical address reached through the stack segment is #SS(0), any
# other non-canonical address #GP(0), as the hardware raises them (QEMU raises #GP for
# both; the hypervisor tells them apart).
# - mov rbx, [rax] with a non-canonical rax: #GP(0);
# - mov rbx, [rbp] with a non-canonical rbp: #SS(0);
# - mov rbx, [rsp + rcx] with a non-canonical sum: #SS(0);
# - mov rbx, [rax + rbp] with a non-canonical rax: #GP(0) (the base register decides);
# - ds:[rbp] is still #SS(0) (CS/DS/ES/SS overrides are ignored in 64-bit mode), fs:[rbp]
#   #GP(0), as XTF's memop-seg test checks.
# A wrong vector or error code is a FAILURE.
.include "pv.inc"

.equ NONCANON, 0x8000000000000000

# expect(rdi = vector, rsi = message): the last fault was that vector with error code 0
expect:
    push rsi
    mov rsi, rdi
    mov rdi, [rip + fault_vector]
    mov rdx, [rsp]
    call check_eq
    mov rdi, [rip + fault_err]
    xor esi, esi
    pop rdx
    jmp check_eq

test_main:
    push rbp
    lea rdi, [rip + after_gp]
    call expect_fault
    movabs rax, NONCANON
    mov rbx, [rax]
after_gp:
    mov edi, 13
    lea rsi, [rip + m_gp]
    call expect

    lea rdi, [rip + after_ss]
    call expect_fault
    movabs rbp, NONCANON
    mov rbx, [rbp]
after_ss:
    mov edi, 12
    lea rsi, [rip + m_ss]
    call expect

    lea rdi, [rip + after_ss_rsp]
    call expect_fault
    movabs rcx, NONCANON
    mov rbx, [rsp + rcx]
after_ss_rsp:
    mov edi, 12
    lea rsi, [rip + m_ss_rsp]
    call expect

    lea rdi, [rip + after_gp_index]
    call expect_fault
    movabs rax, NONCANON
    xor ebp, ebp
    mov rbx, [rax + rbp]
after_gp_index:
    mov edi, 13
    lea rsi, [rip + m_gp_index]
    call expect

    # a DS override is ignored in 64-bit mode (still #SS); FS is a different segment (#GP)
    lea rdi, [rip + after_ds_rbp]
    call expect_fault
    movabs rbp, NONCANON
    .byte 0x3e, 0x48, 0x8b, 0x5d, 0x00         # mov rbx, ds:[rbp] (keystone drops ds:)
after_ds_rbp:
    mov edi, 12
    lea rsi, [rip + m_ds_rbp]
    call expect

    lea rdi, [rip + after_fs_rbp]
    call expect_fault
    movabs rbp, NONCANON
    .byte 0x64, 0x48, 0x8b, 0x5d, 0x00         # mov rbx, fs:[rbp]
after_fs_rbp:
    mov edi, 13
    lea rsi, [rip + m_fs_rbp]
    call expect
    pop rbp
    ret

m_gp: .asciz "a non-canonical [rax] raises #GP(0)"
m_ss: .asciz "a non-canonical [rbp] raises #SS(0)"
m_ss_rsp: .asciz "a non-canonical [rsp + rcx] raises #SS(0)"
m_gp_index: .asciz "a non-canonical [rax + rbp] raises #GP(0)"
m_ds_rbp: .asciz "a non-canonical ds:[rbp] raises #SS(0): the override is ignored"
m_fs_rbp: .asciz "a non-canonical fs:[rbp] raises #GP(0)"
