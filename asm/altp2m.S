# altp2m: a translated kernel using HVMOP_altp2m on itself (Xen's "mixed" mode). It turns
# altp2m on, makes a view in which gfn A shows page B's frame (change_gfn), switches to
# it and reads and writes through A, switches back and finds B changed and A untouched;
# checks the errnos for destroying a view in use, one that is gone and switching to one
# that does not exist; then a view where page C is read-only: with no listener the write
# is let through and the view's access for C relaxed to rwx, as Xen does.
# pvshadow: --paging translated
.include "pv.inc"
.include "translated.inc"

.equ HVMOP_altp2m, 25
.equ ALTP2M_get_domain_state, 1
.equ ALTP2M_set_domain_state, 2
.equ ALTP2M_create_p2m, 4
.equ ALTP2M_destroy_p2m, 5
.equ ALTP2M_switch_p2m, 6
.equ ALTP2M_set_mem_access, 7
.equ ALTP2M_change_gfn, 8
.equ ALTP2M_get_mem_access, 12
.equ ALTP2M_get_p2m_idx, 14
.equ ACCESS_r, 1
.equ ACCESS_rwx, 7
.equ MARK_A, 0x4141414141414141
.equ MARK_B, 0x4242424242424242
.equ MARK_W, 0x5757575757575757
.equ RC_EBUSY, -EBUSY
.equ RC_EINVAL, -EINVAL

test_main:
    push r12
    call clear_u
    mov edi, ALTP2M_get_domain_state
    call altp2m
    movzx edi, byte ptr [rip + aop + 16]
    xor esi, esi
    lea rdx, [rip + m_off]
    call check_eq

    call clear_u
    mov byte ptr [rip + aop + 16], 1
    mov edi, ALTP2M_set_domain_state
    lea rdx, [rip + m_on]
    call altp2m_ok

    # view 1: everything rwx, gfn A showing page B
    mov edi, ACCESS_rwx
    call create_view
    mov r12, rax
    mov rdi, r12
    mov esi, 1
    lea rdx, [rip + m_first_view]
    call check_eq

    call clear_u
    mov [rip + aop + 16], r12w
    lea rdi, [rip + page_a]
    call va_gfn
    mov [rip + aop + 24], rax
    lea rdi, [rip + page_b]
    call va_gfn
    mov [rip + aop + 32], rax
    mov edi, ALTP2M_change_gfn
    lea rdx, [rip + m_change]
    call altp2m_ok

    mov rdi, r12
    call switch_view
    call clear_u
    mov edi, ALTP2M_get_p2m_idx
    call altp2m
    movzx edi, word ptr [rip + aop + 20]
    mov rsi, r12
    lea rdx, [rip + m_idx]
    call check_eq

    mov rdi, [rip + page_a]
    movabs rsi, MARK_B
    lea rdx, [rip + m_view_reads_b]
    call check_eq
    movabs rax, MARK_W
    mov [rip + page_a], rax

    # a view a vCPU uses cannot go
    call clear_u
    mov [rip + aop + 16], r12w
    mov edi, ALTP2M_destroy_p2m
    mov rsi, RC_EBUSY
    lea rdx, [rip + m_destroy_busy]
    call altp2m_rc

    xor edi, edi
    call switch_view
    mov rdi, [rip + page_a]
    movabs rsi, MARK_A
    lea rdx, [rip + m_host_a]
    call check_eq
    mov rdi, [rip + page_b]
    movabs rsi, MARK_W
    lea rdx, [rip + m_host_b]
    call check_eq

    call clear_u
    mov [rip + aop + 16], r12w
    mov edi, ALTP2M_destroy_p2m
    lea rdx, [rip + m_destroy]
    call altp2m_ok
    call clear_u
    mov [rip + aop + 16], r12w
    mov edi, ALTP2M_destroy_p2m
    mov rsi, RC_EBUSY
    lea rdx, [rip + m_destroy_gone]
    call altp2m_rc
    call clear_u
    mov word ptr [rip + aop + 16], 5
    mov edi, ALTP2M_switch_p2m
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_switch_none]
    call altp2m_rc

    # view 1 again: page C read-only in it
    mov edi, ACCESS_rwx
    call create_view
    mov r12, rax
    call clear_u
    mov [rip + aop + 16], r12w
    mov word ptr [rip + aop + 18], ACCESS_r
    lea rdi, [rip + page_c]
    call va_gfn
    mov [rip + aop + 24], rax
    mov edi, ALTP2M_set_mem_access
    lea rdx, [rip + m_set_access]
    call altp2m_ok
    mov rdi, r12
    call switch_view
    mov qword ptr [rip + page_c], 0x99
    mov rdi, [rip + page_c]
    mov esi, 0x99
    lea rdx, [rip + m_relaxed_write]
    call check_eq
    call clear_u
    mov [rip + aop + 16], r12w
    lea rdi, [rip + page_c]
    call va_gfn
    mov [rip + aop + 24], rax
    mov edi, ALTP2M_get_mem_access
    lea rdx, [rip + m_get_access]
    call altp2m_ok
    movzx edi, word ptr [rip + aop + 18]
    mov esi, ACCESS_rwx
    lea rdx, [rip + m_relaxed]
    call check_eq

    xor edi, edi
    call switch_view
    call clear_u
    mov edi, ALTP2M_set_domain_state
    lea rdx, [rip + m_off_again]
    call altp2m_ok
    pop r12
    ret

# altp2m(rdi = cmd) -> rax: HVMOP_altp2m on DOMID_SELF with the union as the caller left it
altp2m:
    mov dword ptr [rip + aop], 1
    mov [rip + aop + 4], edi
    mov word ptr [rip + aop + 8], DOMID_SELF
    mov edi, HVMOP_altp2m
    lea rsi, [rip + aop]
    jmp hc_hvm_op

# altp2m_rc(rdi = cmd, rsi = the return code it must give, rdx = message)
altp2m_rc:
    push rdx
    push rsi
    call altp2m
    pop rsi
    pop rdx
    mov rdi, rax
    jmp check_eq

# altp2m_ok(rdi = cmd, rdx = message): the command must return 0
altp2m_ok:
    xor esi, esi
    jmp altp2m_rc

# create_view(rdi = default access) -> rax: a new view
create_view:
    call clear_u
    mov [rip + aop + 18], di
    mov edi, ALTP2M_create_p2m
    lea rdx, [rip + m_create]
    call altp2m_ok
    movzx eax, word ptr [rip + aop + 16]
    ret

# switch_view(rdi = view)
switch_view:
    call clear_u
    mov [rip + aop + 16], di
    mov edi, ALTP2M_switch_p2m
    lea rdx, [rip + m_switch]
    jmp altp2m_ok

clear_u:
    push rdi
    push rcx
    push rax
    lea rdi, [rip + aop + 16]
    mov ecx, 64
    xor eax, eax
    rep stosb
    pop rax
    pop rcx
    pop rdi
    ret


m_off: .asciz "altp2m is off at boot"
m_on: .asciz "set_domain_state(1)"
m_create: .asciz "create_p2m"
m_first_view: .asciz "the first view made is view 1"
m_change: .asciz "change_gfn(A -> B)"
m_switch: .asciz "switch_p2m"
m_idx: .asciz "get_p2m_idx names the view switched to"
m_view_reads_b: .asciz "in the view, gfn A shows page B"
m_destroy_busy: .asciz "destroying the view in use is -EBUSY"
m_host_a: .asciz "back in view 0, page A is untouched"
m_host_b: .asciz "the write through the view's gfn A reached page B"
m_destroy: .asciz "destroy_p2m of an unused view"
m_destroy_gone: .asciz "destroying a view that is gone is -EBUSY, as Xen"
m_switch_none: .asciz "switching to a view that does not exist is -EINVAL"
m_set_access: .asciz "set_mem_access(view, C, r)"
m_relaxed_write: .asciz "with no listener, the write to C goes through"
m_get_access: .asciz "get_mem_access(view, C)"
m_relaxed: .asciz "the view's access for C was relaxed to rwx"
m_off_again: .asciz "set_domain_state(0)"

.balign 8
aop: .fill 80, 1, 0

.balign 4096
page_a: .quad MARK_A
.balign 4096
page_b: .quad MARK_B
.balign 4096
page_c: .quad 0
.balign 4096
