# foreignmap: a backend maps a page of its client's by reference and writes into it.
# The client ("rol=1") publishes the machine frame of a page holding a secret under
# "data/mfn" in its xenstore home. The backend ("rol=0") reads its peer's domid from
# "peer", waits for that frame number, and maps the client's frame over a page of its
# own with update_va_mapping_otherdomain: the control domain (privileged = 1) or a domain
# whose target the client is gets 0, reads the secret through the mapping on the real
# CPU, writes an answer beside it and unmaps; "exp=1" says the backend is unprivileged
# and must be refused -EPERM instead. The backend then writes "data/done" in the client's
# home: 1 (it wrote) or 2 (it was refused). The client waits for it and checks its page:
# the answer is there after 1, nothing changed after 2.
# Needs: two domains on one host: configs/foreign-back.cfg configs/foreign-client.cfg,
# which `pvshadow run foreignmap` runs (the pvshadow-run header below).
# pvshadow-run: ../configs/foreign-back.cfg ../configs/foreign-client.cfg
.include "pv.inc"
.include "xenstore.inc"

.equ KEY_ROLE, 0x3d6c6f72                    # "rol="
.equ KEY_EXPECT, 0x3d707865                  # "exp="
.equ SECRET_LEN, s_secret_end - s_secret
.equ ANSWER_LEN, s_answer_end - s_answer
.equ ANSWER_AT, 0x100
.equ window_answer, window + ANSWER_AT
.equ secret_answer, secret_page + ANSWER_AT

test_main:
    call xs_init
    mov edi, KEY_ROLE
    call cmdline_hex
    test rax, rax
    jnz client

backend:
    lea rsi, [rip + p_peer]
    mov edx, p_peer_end - p_peer
    call xs_read_number
    mov r13, rax                              # the client's domid
    lea rsi, [rip + p_slash_mfn]
    mov edx, p_slash_mfn_end - p_slash_mfn
    call xs_domain_path
    lea rsi, [rip + xs_path]
    call xs_read_number
    mov r12, rax                              # the client's frame
    mov edi, KEY_EXPECT
    call cmdline_hex
    mov r15, rax                              # 1: this backend must be refused
    # map it over our own window page, writable
    lea rdi, [rip + window]
    mov rsi, r12
    shl rsi, 12
    or rsi, PTE_P | PTE_RW | PTE_A | PTE_D
    mov edx, UVMF_INVLPG
    mov r10, r13
    call hc_update_va_mapping_otherdomain
    test r15, r15
    jnz expect_refusal
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_map]
    call check_eq
    lea rsi, [rip + window]
    lea rdi, [rip + s_secret]
    mov ecx, SECRET_LEN
    repe cmpsb
    je secret_read
    lea rdi, [rip + m_secret]
    call fail
secret_read:
    lea rsi, [rip + s_answer]
    lea rdi, [rip + window_answer]
    mov ecx, ANSWER_LEN
    rep movsb
    lea rdi, [rip + window]                   # unmap: the reference goes back
    xor esi, esi
    call map_va
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_unmap]
    call check_eq
    lea rdi, [rip + m_backend_wrote]
    call puts
    mov byte ptr [rip + s_done_value], 1
    jmp tell_client
expect_refusal:
    mov rdi, rax
    mov rsi, RC_EPERM
    lea rdx, [rip + m_refused]
    call check_eq
    lea rdi, [rip + m_backend_refused]
    call puts
    mov byte ptr [rip + s_done_value], 2
tell_client:
    lea rsi, [rip + p_slash_done]
    mov edx, p_slash_done_end - p_slash_done
    call xs_domain_path                       # ".../data/done" in the client's home
    lea rsi, [rip + xs_path]
    movzx edi, byte ptr [rip + s_done_value]
    call xs_write_number
    mov rdi, rax
    mov esi, XS_WRITE
    lea rdx, [rip + m_xs_write]
    call check_eq
    ret

client:
    lea rdi, [rip + secret_page]
    call va_maddr
    shr rax, 12
    mov r12, rax
    lea rsi, [rip + s_secret]
    lea rdi, [rip + secret_page]
    mov ecx, SECRET_LEN
    rep movsb
    lea rsi, [rip + p_mfn]                    # "data/mfn" = our secret page's frame
    mov edx, p_mfn_end - p_mfn
    mov rdi, r12
    call xs_write_number
    mov rdi, rax
    mov esi, XS_WRITE
    lea rdx, [rip + m_xs_write]
    call check_eq
    lea rsi, [rip + p_done]
    mov edx, p_done_end - p_done
    call xs_read_number
    cmp rax, 1
    je client_check_answer
    mov rdi, rax
    mov esi, 2
    lea rdx, [rip + m_done]
    call check_eq
    cmp byte ptr [rip + secret_answer], 0
    je client_untouched
    lea rdi, [rip + m_touched]
    call fail
client_untouched:
    lea rdi, [rip + m_client_untouched]
    call puts
    ret
client_check_answer:
    lea rsi, [rip + secret_answer]
    lea rdi, [rip + s_answer]
    mov ecx, ANSWER_LEN
    repe cmpsb
    je client_answered
    lea rdi, [rip + m_answer]
    call fail
    ret
client_answered:
    lea rdi, [rip + m_client_answered]
    call puts
    ret

.align 8
s_done_value: .byte 0
p_peer: .asciz "peer"
p_peer_end:
p_mfn: .asciz "data/mfn"
p_mfn_end:
p_done: .asciz "data/done"
p_done_end:
p_slash_mfn: .asciz "/data/mfn"
p_slash_mfn_end:
p_slash_done: .asciz "/data/done"
p_slash_done_end:
s_secret: .ascii "client secret 42"
s_secret_end:
s_answer: .ascii "backend was here"
s_answer_end:
m_map: .asciz "update_va_mapping_otherdomain of the client's frame"
m_unmap: .asciz "unmapping the client's frame"
m_refused: .asciz "update_va_mapping_otherdomain without the right"
m_secret: .asciz "the secret read through the foreign mapping\n"
m_xs_write: .asciz "XS_WRITE"
m_done: .asciz "data/done"
m_touched: .asciz "the client's page changed though the backend was refused\n"
m_answer: .asciz "the backend's answer in the client's page\n"
m_backend_wrote: .asciz "foreignmap: read the client's secret and answered in its page\n"
m_backend_refused: .asciz "foreignmap: refused the client's frame (-EPERM)\n"
m_client_answered: .asciz "foreignmap: the backend's answer is in my page\n"
m_client_untouched: .asciz "foreignmap: my page is untouched\n"
.align 4096
window: .fill 4096, 1, 0
secret_page: .fill 4096, 1, 0
