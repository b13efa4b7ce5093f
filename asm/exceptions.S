# exceptions: every exception a PV guest handles, bounced through Xen's PV64 frame and
# returned through HYPERVISOR_iret. For each of #DE #DB #BP #UD #GP #PF and `int N`, the
# kernel triggers it, its handler records the vector, error code, frame RIP and frame CS,
# and resumes at a chosen label. A bug shows as a wrong vector, error code, RIP or CR2,
# as a frame CS without kernel RPL 0, or as a crash of the domain.
.include "pv.inc"

test_main:
    lea rdi, [rip + trap_table]
    call hc_set_trap_table
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_set_trap_table]
    call check_eq

    # --- #DE: div by zero faults at the div -------------------------------------------
    lea rax, [rip + de_resume]
    mov [rip + resume_at], rax
    xor edx, edx
    mov eax, 1
    xor ecx, ecx
de_insn:
    div rcx
de_resume:
    mov rdi, [rip + seen_vector]
    mov esi, 0
    lea rdx, [rip + m_de]
    call check_eq
    mov rdi, [rip + seen_rip]
    lea rsi, [rip + de_insn]
    lea rdx, [rip + m_de_rip]
    call check_eq

    # --- #DB: icebp (int1) ------------------------------------------------------------------
    lea rax, [rip + db_resume]
    mov [rip + resume_at], rax
    mov qword ptr [rip + seen_vector], -1
    int1
db_resume:
    mov rdi, [rip + seen_vector]
    mov esi, 1
    lea rdx, [rip + m_db]
    call check_eq

    # --- #BP: int3 is a trap, the frame RIP is after it ------------------------------------
    lea rax, [rip + bp_after]
    mov [rip + resume_at], rax
    mov qword ptr [rip + seen_vector], -1
    int3
bp_after:
    mov rdi, [rip + seen_vector]
    mov esi, 3
    lea rdx, [rip + m_bp]
    call check_eq
    mov rdi, [rip + seen_rip]
    lea rsi, [rip + bp_after]
    lea rdx, [rip + m_bp_rip]
    call check_eq

    # --- #UD: ud2 ----------------------------------------------------------------------------
    lea rax, [rip + ud_resume]
    mov [rip + resume_at], rax
    mov qword ptr [rip + seen_vector], -1
ud_insn:
    ud2
ud_resume:
    mov rdi, [rip + seen_vector]
    mov esi, 6
    lea rdx, [rip + m_ud]
    call check_eq
    mov rdi, [rip + seen_rip]
    lea rsi, [rip + ud_insn]
    lea rdx, [rip + m_ud_rip]
    call check_eq

    # --- #GP(0): hlt is privileged, and the guest kernel runs at CPL3 --------------------
    lea rax, [rip + gp_resume]
    mov [rip + resume_at], rax
    mov qword ptr [rip + seen_vector], -1
gp_insn:
    hlt
gp_resume:
    mov rdi, [rip + seen_vector]
    mov esi, 13
    lea rdx, [rip + m_gp]
    call check_eq
    mov rdi, [rip + seen_err]
    xor esi, esi
    lea rdx, [rip + m_gp_err]
    call check_eq
    mov rdi, [rip + seen_rip]
    lea rsi, [rip + gp_insn]
    lea rdx, [rip + m_gp_rip]
    call check_eq

    # --- #PF: read of an unmapped address: error code 0 (not present, read, kernel) -----
    lea rax, [rip + pf_resume]
    mov [rip + resume_at], rax
    mov qword ptr [rip + seen_vector], -1
pf_insn:
    mov rax, qword ptr [0x1000]
pf_resume:
    mov rdi, [rip + seen_vector]
    mov esi, 14
    lea rdx, [rip + m_pf]
    call check_eq
    mov rdi, [rip + seen_err]
    xor esi, esi
    lea rdx, [rip + m_pf_err]
    call check_eq
    mov rdi, [rip + VCPU0_cr2]
    mov esi, 0x1000
    lea rdx, [rip + m_pf_cr2]
    call check_eq
    mov rdi, [rip + seen_rip]
    lea rsi, [rip + pf_insn]
    lea rdx, [rip + m_pf_rip]
    call check_eq

    # --- #PF: write to the bootstrap L4, which Xen maps read-only: P|W -----------------
    lea rax, [rip + pfw_resume]
    mov [rip + resume_at], rax
    mov rbx, [rip + start_info_ptr]
    mov rbx, [rbx + SI_pt_base]
    mov qword ptr [rbx], 0
pfw_resume:
    mov rdi, [rip + seen_err]
    mov esi, 3
    lea rdx, [rip + m_pfw_err]
    call check_eq
    mov rdi, [rip + VCPU0_cr2]
    mov rsi, rbx
    lea rdx, [rip + m_pfw_cr2]
    call check_eq

    # --- the frame says "kernel mode": CS with RPL 0 --------------------------------------
    mov rdi, [rip + seen_cs]
    and edi, 0xffff
    mov esi, 0xe030
    lea rdx, [rip + m_cs]
    call check_eq

    # --- int 0x80 through a DPL3 gate reaches its handler, RIP after the int ------------
    lea rax, [rip + int80_after]
    mov [rip + resume_at], rax
    mov qword ptr [rip + seen_vector], -1
    int 0x80
int80_after:
    mov rdi, [rip + seen_vector]
    mov esi, 0x80
    lea rdx, [rip + m_int80]
    call check_eq

    # --- int 0x81 through a DPL0 gate: #GP((0x81 << 3) | 2) at the int --------------------
    lea rax, [rip + int81_resume]
    mov [rip + resume_at], rax
    mov qword ptr [rip + seen_vector], -1
int81_insn:
    int 0x81
int81_resume:
    mov rdi, [rip + seen_vector]
    mov esi, 13
    lea rdx, [rip + m_int81]
    call check_eq
    mov rdi, [rip + seen_err]
    mov esi, 0x40a
    lea rdx, [rip + m_int81_err]
    call check_eq
    mov rdi, [rip + seen_rip]
    lea rsi, [rip + int81_insn]
    lea rdx, [rip + m_int81_rip]
    call check_eq

    # --- registers survive a bounce and an iret --------------------------------------------
    lea rax, [rip + regs_resume]
    mov [rip + resume_at], rax
    mov r12, 0x1122334455667788
    mov rcx, 0x0badc0de
    ud2
regs_resume:
    mov rdi, r12
    mov rsi, 0x1122334455667788
    lea rdx, [rip + m_r12]
    call check_eq
    mov rdi, rcx
    mov esi, 0x0badc0de
    lea rdx, [rip + m_rcx]
    call check_eq
    ret

# Handlers: the stack holds RCX, R11, [error code,] RIP, CS, RFLAGS, RSP, SS.
h_de:
    mov qword ptr [rip + seen_vector], 0
    jmp trap_noerr
h_db:
    mov qword ptr [rip + seen_vector], 1
    jmp trap_noerr
h_bp:
    mov qword ptr [rip + seen_vector], 3
    jmp trap_noerr
h_ud:
    mov qword ptr [rip + seen_vector], 6
    jmp trap_noerr
h_gp:
    mov qword ptr [rip + seen_vector], 13
    jmp trap_err
h_pf:
    mov qword ptr [rip + seen_vector], 14
    jmp trap_err
h_int80:
    mov qword ptr [rip + seen_vector], 0x80
    jmp trap_noerr
h_int81:
    mov qword ptr [rip + seen_vector], 0x81
    jmp trap_noerr

trap_err:
    pop rcx
    pop r11
    pop rax
    mov [rip + seen_err], rax
    jmp trap_common
trap_noerr:
    pop rcx
    pop r11
    mov qword ptr [rip + seen_err], -1
trap_common:
    mov rax, [rsp]
    mov [rip + seen_rip], rax
    mov rax, [rsp + 8]
    mov [rip + seen_cs], rax
    mov rax, [rip + resume_at]
    mov [rsp], rax
    jmp iret_to_frame

.align 8
trap_table:
    .byte 0, 0
    .word FLAT_KERNEL_CS
    .long 0
    .quad h_de
    .byte 1, 0
    .word FLAT_KERNEL_CS
    .long 0
    .quad h_db
    .byte 3, 3
    .word FLAT_KERNEL_CS
    .long 0
    .quad h_bp
    .byte 6, 0
    .word FLAT_KERNEL_CS
    .long 0
    .quad h_ud
    .byte 13, 0
    .word FLAT_KERNEL_CS
    .long 0
    .quad h_gp
    .byte 14, 0
    .word FLAT_KERNEL_CS
    .long 0
    .quad h_pf
    .byte 0x80, 3
    .word FLAT_KERNEL_CS
    .long 0
    .quad h_int80
    .byte 0x81, 0
    .word FLAT_KERNEL_CS
    .long 0
    .quad h_int81
    .quad 0, 0

resume_at: .quad 0
seen_vector: .quad -1
seen_err: .quad 0
seen_rip: .quad 0
seen_cs: .quad 0
m_set_trap_table: .asciz "set_trap_table"
m_de: .asciz "#DE vector"
m_de_rip: .asciz "#DE frame RIP at the div"
m_db: .asciz "#DB vector"
m_bp: .asciz "#BP vector"
m_bp_rip: .asciz "#BP frame RIP after int3"
m_ud: .asciz "#UD vector"
m_ud_rip: .asciz "#UD frame RIP at ud2"
m_gp: .asciz "#GP vector"
m_gp_err: .asciz "#GP error code"
m_gp_rip: .asciz "#GP frame RIP at hlt"
m_pf: .asciz "#PF vector"
m_pf_err: .asciz "#PF error code (not present, read)"
m_pf_cr2: .asciz "#PF CR2 in vcpu_info"
m_pf_rip: .asciz "#PF frame RIP"
m_pfw_err: .asciz "#PF error code (write to read-only page table)"
m_pfw_cr2: .asciz "#PF CR2 of the page-table write"
m_cs: .asciz "frame CS of a kernel-mode fault"
m_int80: .asciz "int 0x80 through a DPL3 gate"
m_int81: .asciz "int 0x81 through a DPL0 gate raises #GP"
m_int81_err: .asciz "#GP error code of int 0x81"
m_int81_rip: .asciz "#GP frame RIP at int 0x81"
m_r12: .asciz "r12 across a bounce"
m_rcx: .asciz "rcx across a bounce (restored by iret)"
