# compute: a compute-bound kernel for the benchmark and a check of plain execution. An
# LCG runs `iterations` times (1,000,000 unless the command line says `iterations=N`),
# folding each value into a 64-entry table in memory. With the default count the final
# value and the table's sum must equal the constants Python computed; a different value
# means the CPU or memory misbehaved.
.include "pv.inc"

.equ SEED, 0x123456789
.equ DEFAULT_ITERATIONS, 1000000
.equ EXPECT_X, 0xb14ddd5fd479bbc9
.equ EXPECT_SUM, 0x65e94bea1ef6a6a0

# parse_iterations: the first run of digits in the command line, if any.
parse_iterations:
    mov rsi, [rip + start_info_ptr]
    add rsi, SI_cmd_line
    xor eax, eax
    xor ecx, ecx
parse_skip:
    movzx edx, byte ptr [rsi]
    test dl, dl
    jz parse_done
    sub dl, 0x30
    cmp dl, 9
    jbe parse_digit
    inc rsi
    jmp parse_skip
parse_digit:
    movzx edx, byte ptr [rsi]
    sub dl, 0x30
    cmp dl, 9
    ja parse_done
    imul rax, rax, 10
    add rax, rdx
    inc ecx
    inc rsi
    jmp parse_digit
parse_done:
    test ecx, ecx
    jz parse_default
    mov [rip + iterations], rax
    ret
parse_default:
    mov qword ptr [rip + iterations], DEFAULT_ITERATIONS
    ret

test_main:
    call parse_iterations
    call compute
    lea rdi, [rip + m_value]
    call puts
    mov rdi, [rip + result]
    call print_hex
    lea rdi, [rip + m_newline]
    call puts
    cmp qword ptr [rip + iterations], DEFAULT_ITERATIONS
    jne test_main_done
    mov rdi, [rip + result]
    movabs rsi, EXPECT_X
    lea rdx, [rip + m_x]
    call check_eq
    lea rsi, [rip + table]
    xor eax, eax
    xor ecx, ecx
sum_loop:
    add rax, [rsi + rcx * 8]
    inc ecx
    cmp ecx, 64
    jne sum_loop
    mov rdi, rax
    movabs rsi, EXPECT_SUM
    lea rdx, [rip + m_sum]
    call check_eq
test_main_done:
    ret

compute:
    mov rcx, [rip + iterations]
    movabs rax, SEED
    movabs r8, 6364136223846793005
    movabs r9, 1442695040888963407
    lea rsi, [rip + table]
compute_loop:
    imul rax, r8
    add rax, r9
    mov rdx, rax
    shr rdx, 58
    xor [rsi + rdx * 8], rax
    dec rcx
    jnz compute_loop
compute_end:
    mov [rip + result], rax
    ret

.align 8
iterations: .quad 0
result: .quad 0
table: .fill 512, 1, 0
m_value: .asciz "final value "
m_newline: .asciz "\n"
m_x: .asciz "final LCG value"
m_sum: .asciz "sum of the table"
