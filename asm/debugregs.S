# debugregs: hardware breakpoints set through set_debugreg, as a PV kernel's debugger
# uses them. DR6 and DR7 start at Xen's defaults. An instruction breakpoint raises #DB
# before the instruction (the frame's RIP is the instruction, DR6.B0 set); RF in the
# flags the handler irets with lets it run once, and it traps again next time; with DR7
# cleared it does not. A breakpointed instruction that faults (a #PF for the guest, or
# one the hypervisor resolves unseen) raises one #DB, the #PF frame carrying RF as a
# fault's does. A write watchpoint raises #DB after the store (the frame's RIP is the
# next instruction) and ignores reads and stores beside it; a read-modify-write applies
# once; a store overlapping the watched bytes traps; rep stosb traps after each
# iteration that writes a watched byte, with RF in the frame while iterations remain;
# after update_va_mapping moves the watched address to another frame, the watchpoint
# follows it. A read/write watchpoint traps on a load. A page-table store that Xen
# emulates (writable page tables) does not trip a watchpoint on the entry. With TF set, #DB follows each
# instruction with DR6.BS set. Refused: an address in Xen's area or non-canonical
# (-EPERM), DR7.GD and I/O breakpoints (-EPERM), upper bits in DR6/DR7 (-EINVAL), DR8
# (-ENODEV); DR4 and DR5 alias DR6 and DR7. A missing, extra or misplaced #DB, or a
# wrong value or errno, is a FAILURE.
.include "pv.inc"

.equ RFLAGS_RF, 0x10000
.equ RFLAGS_TF, 0x100
.equ DR7_L0_EXEC, 0x1
.equ DR7_L1_WRITE8, 0x900004             # L1, RW1=01 (write), LEN1=10 (8 bytes)
.equ DR7_L1_RW8, 0xB00004               # L1, RW1=11 (read/write), LEN1=10 (8 bytes)
.equ VMASST_CMD_enable, 0
.equ VMASST_TYPE_writable_pagetables, 2
.equ DR7_L2_RW4, 0xF000010               # L2, RW2=11 (read/write), LEN2=11 (4 bytes)
.equ DR7_L3_WRITE8, 0x90000040           # L3, RW3=01 (write), LEN3=10 (8 bytes)
.equ DR7_L0_IO, 0x20001                  # L0, RW0=10 (I/O)

# set_dr(rdi = register, rsi = value, rdx = message): set_debugreg, which must succeed
set_dr:
    push rdx
    call hc_set_debugreg
    pop rdx
    mov rdi, rax
    xor esi, esi
    jmp check_eq

# check_dr(rdi = register, rsi = expected, rdx = message): get_debugreg
check_dr:
    push rsi
    push rdx
    call hc_get_debugreg
    pop rdx
    pop rsi
    mov rdi, rax
    jmp check_eq

# refused(rdi = register, rsi = value, rdx = expected errno, rcx = message)
refused:
    push rdx
    push rcx
    call hc_set_debugreg
    pop rdx
    pop rsi
    mov rdi, rax
    jmp check_eq

# check_db(rdi = expected #DB count, rsi = expected frame RIP, rdx = message)
check_db:
    push rsi
    push rdx
    mov rsi, rdi
    mov rdi, [rip + db_count]
    call check_eq
    pop rdx
    pop rsi
    mov rdi, [rip + db_rip]
    jmp check_eq

bp_func:
bp_target:
    inc qword ptr [rip + bp_runs]
    ret

test_main:
    lea rdi, [rip + db_trap_table]
    call hc_set_trap_table
    mov edi, 6
    mov esi, 0xffff0ff0
    lea rdx, [rip + m_dr6_default]
    call check_dr
    mov edi, 7
    mov esi, 0x400
    lea rdx, [rip + m_dr7_default]
    call check_dr

    # an instruction breakpoint: a fault before the instruction, once per execution
    xor edi, edi
    lea rsi, [rip + bp_target]
    lea rdx, [rip + m_set_dr0]
    call set_dr
    mov edi, 7
    mov esi, DR7_L0_EXEC
    lea rdx, [rip + m_set_dr7]
    call set_dr
    call bp_func
    mov edi, 1
    lea rsi, [rip + bp_target]
    lea rdx, [rip + m_bp_first]
    call check_db
    mov rdi, [rip + db_dr6]
    mov esi, 0xffff0ff1
    lea rdx, [rip + m_bp_dr6]
    call check_eq
    mov rdi, [rip + bp_runs]
    mov esi, 1
    lea rdx, [rip + m_bp_runs]
    call check_eq
    call bp_func
    mov edi, 2
    lea rsi, [rip + bp_target]
    lea rdx, [rip + m_bp_again]
    call check_db
    mov edi, 7
    xor esi, esi
    lea rdx, [rip + m_clear_dr7]
    call set_dr
    call bp_func
    mov edi, 2
    lea rsi, [rip + bp_target]
    lea rdx, [rip + m_bp_off]
    call check_db
    mov rdi, [rip + bp_runs]
    mov esi, 3
    lea rdx, [rip + m_bp_runs]
    call check_eq

    # a write watchpoint over 8 bytes: a trap after the instruction
    mov qword ptr [rip + db_count], 0
    mov qword ptr [rip + db_rip], 0
    mov edi, 1
    lea rsi, [rip + watched]
    lea rdx, [rip + m_set_dr1]
    call set_dr
    mov edi, 7
    mov esi, DR7_L1_WRITE8
    lea rdx, [rip + m_set_dr7]
    call set_dr
    mov rax, [rip + watched]
    xor edi, edi
    xor esi, esi
    lea rdx, [rip + m_wp_read]
    call check_db
    mov qword ptr [rip + watched], 0x1234
wp_store_next:
    mov edi, 1
    lea rsi, [rip + wp_store_next]
    lea rdx, [rip + m_wp_store]
    call check_db
    mov rdi, [rip + db_dr6]
    mov esi, 0xffff0ff2
    lea rdx, [rip + m_wp_dr6]
    call check_eq
    mov rdi, [rip + watched]
    mov esi, 0x1234
    lea rdx, [rip + m_wp_value]
    call check_eq
    mov rdi, [rip + db_rflags]
    and edi, RFLAGS_RF
    xor esi, esi
    lea rdx, [rip + m_wp_rf]
    call check_eq
    add qword ptr [rip + watched], 1
wp_add_next:
    mov edi, 2
    lea rsi, [rip + wp_add_next]
    lea rdx, [rip + m_wp_add]
    call check_db
    mov rdi, [rip + watched]
    mov esi, 0x1235
    lea rdx, [rip + m_wp_add_once]
    call check_eq
    lea rbx, [rip + watched]
    mov qword ptr [rbx + 8], 7
    mov edi, 2
    lea rsi, [rip + wp_add_next]
    lea rdx, [rip + m_wp_beside]
    call check_db
    mov dword ptr [rbx - 2], 0x55
wp_overlap_next:
    mov edi, 3
    lea rsi, [rip + wp_overlap_next]
    lea rdx, [rip + m_wp_overlap]
    call check_db
    lea rdi, [rbx - 4]
    mov ecx, 16
    mov al, 0xab
    cld
wp_rep:
    rep stosb
    mov edi, 11
    lea rsi, [rip + wp_rep]
    lea rdx, [rip + m_wp_rep]
    call check_db
    mov rdi, [rip + watched]
    movabs rsi, 0xabababababababab
    lea rdx, [rip + m_wp_rep_value]
    call check_eq
    mov rdi, [rip + db_rflags]
    and edi, RFLAGS_RF
    mov esi, RFLAGS_RF
    lea rdx, [rip + m_wp_rep_rf]
    call check_eq
    mov edi, 7
    xor esi, esi
    lea rdx, [rip + m_clear_dr7]
    call set_dr

    # a read/write watchpoint over 4 bytes traps on a load
    mov qword ptr [rip + db_count], 0
    mov edi, 2
    lea rsi, [rip + rw_var]
    lea rdx, [rip + m_set_dr2]
    call set_dr
    mov edi, 7
    mov esi, DR7_L2_RW4
    lea rdx, [rip + m_set_dr7]
    call set_dr
    mov eax, dword ptr [rip + rw_var]
rw_load_next:
    mov edi, 1
    lea rsi, [rip + rw_load_next]
    lea rdx, [rip + m_rw_load]
    call check_db
    mov rdi, [rip + db_dr6]
    mov esi, 0xffff0ff4
    lea rdx, [rip + m_rw_dr6]
    call check_eq
    mov edi, 7
    xor esi, esi
    lea rdx, [rip + m_clear_dr7]
    call set_dr

    # a watchpoint watches its linear address: after a remap it fires for the new frame,
    # and the old frame, mapped at the next page, is no longer watched
    call scratch_va
    mov rbx, rax
    mov edi, 1
    call top_mfn
    mov r12, rax
    mov edi, 2
    call top_mfn
    mov r13, rax
    mov rdi, rbx
    mov rsi, r12
    shl rsi, 12
    or rsi, PTE_P | PTE_RW
    mov edx, UVMF_INVLPG
    call hc_update_va_mapping
    mov qword ptr [rip + db_count], 0
    mov edi, 3
    mov rsi, rbx
    lea rdx, [rip + m_set_dr3]
    call set_dr
    mov edi, 7
    mov esi, DR7_L3_WRITE8
    lea rdx, [rip + m_set_dr7]
    call set_dr
    mov qword ptr [rbx], 1
    mov rdi, [rip + db_count]
    mov esi, 1
    lea rdx, [rip + m_remap_before]
    call check_eq
    mov rdi, rbx
    mov rsi, r13
    shl rsi, 12
    or rsi, PTE_P | PTE_RW
    mov edx, UVMF_INVLPG
    call hc_update_va_mapping
    mov qword ptr [rbx], 2
    mov rdi, [rip + db_count]
    mov esi, 2
    lea rdx, [rip + m_remap_after]
    call check_eq
    lea rdi, [rbx + 4096]
    mov rsi, r12
    shl rsi, 12
    or rsi, PTE_P | PTE_RW
    mov edx, UVMF_INVLPG
    call hc_update_va_mapping
    mov qword ptr [rbx + 4096], 3
    mov rdi, [rip + db_count]
    mov esi, 2
    lea rdx, [rip + m_remap_old]
    call check_eq
    mov edi, 7
    xor esi, esi
    lea rdx, [rip + m_clear_dr7]
    call set_dr

    # an instruction breakpoint on an instruction that page-faults: the guest's #PF
    # handler maps the page and returns with the frame's RF (set, as for any fault), so
    # the breakpoint does not fire a second time
    call scratch_va
    lea rbx, [rax + 8192]
    mov [rip + pf_va], rbx
    mov rdi, rbx
    xor esi, esi
    mov edx, UVMF_INVLPG
    call hc_update_va_mapping
    mov edi, 4
    call top_mfn
    shl rax, 12
    or rax, PTE_P | PTE_RW
    mov [rip + pf_pte], rax
    lea rdi, [rip + pf_trap_table]
    call hc_set_trap_table
    mov qword ptr [rip + db_count], 0
    xor edi, edi
    lea rsi, [rip + pf_insn]
    lea rdx, [rip + m_set_dr0]
    call set_dr
    mov edi, 7
    mov esi, DR7_L0_EXEC
    lea rdx, [rip + m_set_dr7]
    call set_dr
pf_insn:
    mov rax, [rbx]
    mov edi, 1
    lea rsi, [rip + pf_insn]
    lea rdx, [rip + m_pf_bp_once]
    call check_db
    mov rdi, [rip + pf_count]
    mov esi, 1
    lea rdx, [rip + m_pf_count]
    call check_eq
    mov rdi, [rip + pf_rflags]
    and edi, RFLAGS_RF
    mov esi, RFLAGS_RF
    lea rdx, [rip + m_pf_rf]
    call check_eq
    # the same for a store to that page, whose entry is not dirty yet: under shadow
    # paging it faults in the hypervisor first (D-bit emulation), invisibly to the guest
    xor edi, edi
    lea rsi, [rip + pf_store]
    lea rdx, [rip + m_set_dr0]
    call set_dr
pf_store:
    mov [rbx], rax
    mov edi, 2
    lea rsi, [rip + pf_store]
    lea rdx, [rip + m_pf_store_once]
    call check_db
    mov edi, 7
    xor esi, esi
    lea rdx, [rip + m_clear_dr7]
    call set_dr
    call install_traps
    lea rdi, [rip + db_trap_table]
    call hc_set_trap_table

    # a page-table store Xen emulates does not trip a write watchpoint over the entry
    # (Xen writes it through its own mapping); the guest's own load of the entry trips a
    # read/write one
    mov edi, VMASST_CMD_enable
    mov esi, VMASST_TYPE_writable_pagetables
    call hc_vm_assist
    call scratch_va
    lea rdi, [rax + 12288]
    call l1e_va
    mov r12, rax
    mov r13, [r12]
    mov qword ptr [rip + db_count], 0
    mov edi, 1
    mov rsi, r12
    lea rdx, [rip + m_set_dr1]
    call set_dr
    mov edi, 7
    mov esi, DR7_L1_WRITE8
    lea rdx, [rip + m_set_dr7]
    call set_dr
    mov [r12], r13
    mov rdi, [rip + db_count]
    xor esi, esi
    lea rdx, [rip + m_pt_store]
    call check_eq
    mov edi, 7
    mov esi, DR7_L1_RW8
    lea rdx, [rip + m_set_dr7]
    call set_dr
    mov rax, [r12]
    mov rdi, [rip + db_count]
    mov esi, 1
    lea rdx, [rip + m_pt_load]
    call check_eq
    mov edi, 7
    xor esi, esi
    lea rdx, [rip + m_clear_dr7]
    call set_dr

    # single-stepping: with TF set by popfq, #DB after each instruction, DR6.BS set; the
    # handler clears TF in the frame on the third
    mov qword ptr [rip + db_count], 0
    mov qword ptr [rip + step_left], 3
    pushfq
    or qword ptr [rsp], RFLAGS_TF
    popfq
    nop
    nop
    nop
step_last:
    nop
    mov edi, 3
    lea rsi, [rip + step_last]
    lea rdx, [rip + m_step]
    call check_db
    mov rdi, [rip + db_dr6]
    mov esi, 0xffff4ff0
    lea rdx, [rip + m_step_dr6]
    call check_eq

    # what Xen refuses
    xor edi, edi
    movabs rsi, 0xffff800000001000
    mov rdx, RC_EPERM
    lea rcx, [rip + m_dr0_xen]
    call refused
    xor edi, edi
    movabs rsi, 0x0000800000000000
    mov rdx, RC_EPERM
    lea rcx, [rip + m_dr0_noncanonical]
    call refused
    mov edi, 7
    mov esi, 0x2000
    mov rdx, RC_EPERM
    lea rcx, [rip + m_dr7_gd]
    call refused
    mov edi, 7
    mov esi, DR7_L0_IO
    mov rdx, RC_EPERM
    lea rcx, [rip + m_dr7_io]
    call refused
    mov edi, 7
    movabs rsi, 0x100000000
    mov rdx, RC_EINVAL
    lea rcx, [rip + m_dr7_upper]
    call refused
    mov edi, 6
    movabs rsi, 0x100000000
    mov rdx, RC_EINVAL
    lea rcx, [rip + m_dr6_upper]
    call refused
    mov edi, 8
    xor esi, esi
    mov rdx, RC_ENODEV
    lea rcx, [rip + m_dr8]
    call refused
    mov edi, 8
    mov rsi, RC_ENODEV
    lea rdx, [rip + m_get_dr8]
    call check_dr

    # DR4 and DR5 are DR6 and DR7 (the guest's CR4.DE is clear)
    mov edi, 4
    xor esi, esi
    lea rdx, [rip + m_set_dr4]
    call set_dr
    mov edi, 6
    mov esi, 0xffff0ff0
    lea rdx, [rip + m_dr4_alias]
    call check_dr
    mov edi, 5
    mov esi, 0x400
    lea rdx, [rip + m_dr5_alias]
    call check_dr
    ret

# #DB: count it, note the frame's RIP and DR6, and return with RF set (which lets an
# instruction breakpoint's instruction run). Every register is preserved.
db_entry:
    pop rcx
    pop r11
    push rax
    push rcx
    push r11
    push rdi
    inc qword ptr [rip + db_count]
    mov rax, [rsp + 32]
    mov [rip + db_rip], rax
    mov rax, [rsp + 48]
    mov [rip + db_rflags], rax
    mov edi, 6
    call hc_get_debugreg
    mov [rip + db_dr6], rax
    or qword ptr [rsp + 48], RFLAGS_RF
    cmp qword ptr [rip + step_left], 0
    je db_return
    dec qword ptr [rip + step_left]
    jnz db_return
    and qword ptr [rsp + 48], -257
db_return:
    pop rdi
    pop r11
    pop rcx
    pop rax
    jmp iret_to_frame

# #PF for the breakpointed load: map the page, note the frame's RFLAGS, retry.
pf_entry:
    pop rcx
    pop r11
    push rax
    push rcx
    push r11
    push rdi
    push rsi
    push rdx
    inc qword ptr [rip + pf_count]
    mov rax, [rsp + 72]
    mov [rip + pf_rflags], rax
    mov rdi, [rip + pf_va]
    mov rsi, [rip + pf_pte]
    mov edx, UVMF_INVLPG
    call hc_update_va_mapping
    pop rdx
    pop rsi
    pop rdi
    pop r11
    pop rcx
    pop rax
    add rsp, 8
    jmp iret_to_frame

pf_trap_table:
    .byte 14, 0
    .word FLAT_KERNEL_CS
    .long 0
    .quad pf_entry
    .quad 0, 0

db_trap_table:
    .byte 1, 0
    .word FLAT_KERNEL_CS
    .long 0
    .quad db_entry
    .quad 0, 0

.align 8
db_count: .quad 0
db_rip: .quad 0
db_dr6: .quad 0
bp_runs: .quad 0
db_rflags: .quad 0
pf_va: .quad 0
pf_pte: .quad 0
pf_count: .quad 0
pf_rflags: .quad 0
step_left: .quad 0
pad: .quad 0, 0
watched: .quad 0
beside: .quad 0
rw_var: .quad 0
m_dr6_default: .asciz "DR6 at start"
m_dr7_default: .asciz "DR7 at start"
m_set_dr0: .asciz "set_debugreg DR0 (a kernel address)"
m_set_dr1: .asciz "set_debugreg DR1"
m_set_dr2: .asciz "set_debugreg DR2"
m_set_dr3: .asciz "set_debugreg DR3"
m_remap_before: .asciz "#DB for a store to the watched page"
m_remap_after: .asciz "#DB for a store to the watched address after a remap"
m_remap_old: .asciz "no #DB for the frame the watched address no longer maps"
m_set_dr7: .asciz "set_debugreg DR7"
m_clear_dr7: .asciz "set_debugreg DR7 = 0"
m_bp_first: .asciz "#DB count and RIP at the instruction breakpoint"
m_bp_dr6: .asciz "DR6 after the instruction breakpoint"
m_bp_runs: .asciz "runs of the breakpointed instruction"
m_bp_again: .asciz "#DB the next time the instruction runs"
m_bp_off: .asciz "no #DB with DR7 clear"
m_wp_read: .asciz "no #DB for a read under a write watchpoint"
m_wp_store: .asciz "#DB after the watched store"
m_wp_dr6: .asciz "DR6 after the watchpoint"
m_wp_value: .asciz "the watched store's value"
m_wp_add: .asciz "#DB after the read-modify-write"
m_wp_add_once: .asciz "the read-modify-write applied once"
m_wp_beside: .asciz "no #DB for a store beside the watched bytes"
m_wp_overlap: .asciz "#DB for a store overlapping the watched bytes"
m_wp_rep: .asciz "#DB per rep stosb iteration on the watched bytes"
m_wp_rep_value: .asciz "the watched bytes after rep stosb"
m_rw_load: .asciz "#DB after a load under a read/write watchpoint"
m_rw_dr6: .asciz "DR6 after the read/write watchpoint"
m_wp_rf: .asciz "RF in the frame of a data breakpoint trap"
m_wp_rep_rf: .asciz "RF in the frame of a trap between rep iterations"
m_pf_bp_once: .asciz "one #DB for a breakpointed instruction that page-faults"
m_pf_store_once: .asciz "one #DB for a breakpointed store that takes a hidden fault"
m_pf_count: .asciz "#PF count on the breakpointed instruction"
m_pf_rf: .asciz "RF in the #PF frame"
m_pt_store: .asciz "no #DB for a page-table store the hypervisor emulates"
m_pt_load: .asciz "#DB for a load of the watched page-table entry"
m_step: .asciz "#DB after each single-stepped instruction"
m_step_dr6: .asciz "DR6 after single steps (BS)"
m_dr0_xen: .asciz "DR0 in Xen's area"
m_dr0_noncanonical: .asciz "DR0 non-canonical"
m_dr7_gd: .asciz "DR7.GD"
m_dr7_io: .asciz "an I/O breakpoint without CR4.DE"
m_dr7_upper: .asciz "DR7 upper bits"
m_dr6_upper: .asciz "DR6 upper bits"
m_dr8: .asciz "set_debugreg DR8"
m_get_dr8: .asciz "get_debugreg DR8"
m_set_dr4: .asciz "set_debugreg DR4"
m_dr4_alias: .asciz "DR4 written through to DR6"
m_dr5_alias: .asciz "DR5 reads DR7"
