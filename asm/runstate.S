# runstate: a vCPU's runstate area under KPTI-style page tables (user tables that do not
# map the kernel). vCPU 0 builds such a user address space, registers its runstate area
# (a kernel data page) by virtual address, or by guest-physical address with phy=1 on the
# command line, brings vCPU 1 up spinning in the kernel so the two are switched every
# slice, then runs a long loop in user mode and comes back with a syscall. The area must
# show vCPU 0 running, with time spent running and waiting. Which updates were missed is
# the harness's to check (tests/test_runstate.py): under the each-switch policy the
# switches into user mode cannot reach the area. Needs: its test (the policy is the
# domain's), or the header's --runstate-policy registration under pvshadow run.
# pvshadow: --paging shadow --runstate-policy registration
.include "pv.inc"

.equ USER_CODE_VA, 0x400000
.equ USER_STACK_TOP, 0x402000
.equ PTE_USER, PTE_P | PTE_RW | PTE_US
.equ VCPUOP_is_up, 3
.equ VCPUOP_register_runstate_memory_area, 5
.equ VCPUOP_register_runstate_phys_area, 14
.equ KEY_PHYS, 0x3d796870                  # "phy="
.equ LOOPS, 200000

# link(rdi = table mfn, rsi = index, rdx = child mfn): a user-accessible entry
link:
    push rdx
    shl rdx, 12
    or rdx, PTE_USER
    call frame_write
    pop rdx
    ret

test_main:
    # the user address space: L4 -> L3 -> L2 -> L1 -> code and stack; no kernel mapping
    lea rbx, [rip + frames]
    mov r12d, 3
take:
    mov rdi, r12
    call top_mfn
    mov [rbx + r12 * 8 - 24], rax
    inc r12d
    cmp r12d, 9
    jne take
    mov rdi, [rbx]
    xor esi, esi
    mov rdx, [rbx + 8]
    call link
    mov rdi, [rbx + 8]
    xor esi, esi
    mov rdx, [rbx + 16]
    call link
    mov rdi, [rbx + 16]
    mov esi, 2
    mov rdx, [rbx + 24]
    call link
    mov rdi, [rbx + 24]
    xor esi, esi
    mov rdx, [rbx + 32]
    call link
    mov rdi, [rbx + 24]
    mov esi, 1
    mov rdx, [rbx + 40]
    call link
    call scratch_va
    mov r13, rax
    mov rsi, [rbx + 32]
    shl rsi, 12
    or rsi, PTE_P | PTE_RW
    mov rdi, r13
    call map_va
    mov rdi, r13
    lea rsi, [rip + user_blob]
    lea rcx, [rip + user_blob_end]
    sub rcx, rsi
    rep movsb
    mov rdi, r13
    xor esi, esi
    call map_va
    mov edi, MMUEXT_PIN_L4_TABLE
    mov rsi, [rbx]
    call mmuext1
    mov edi, MMUEXT_NEW_USER_BASEPTR
    mov rsi, [rbx]
    call mmuext1

    # register the runstate area: by guest-physical address with phy=1, else by address
    mov edi, KEY_PHYS
    call cmdline_hex
    test rax, rax
    jnz by_phys
    lea rax, [rip + rs_area]
    mov [rip + area_arg], rax
    mov edi, VCPUOP_register_runstate_memory_area
    jmp do_register
by_phys:
    lea rdi, [rip + rs_area]
    call va_maddr
    mov rcx, rax
    shr rax, 12
    movabs rdx, 0xffff800000000000
    mov rax, [rdx + rax * 8]              # the frame's pfn from the M2P
    shl rax, 12
    and ecx, 0xfff
    or rax, rcx
    mov [rip + area_arg], rax
    mov edi, VCPUOP_register_runstate_phys_area
do_register:
    xor esi, esi
    lea rdx, [rip + area_arg]
    call hc_vcpu_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_register]
    call check_eq

    # vCPU 1: kernel mode, the bootstrap tables, spinning
    lea rdi, [rip + ctx]
    lea rsi, [rip + vcpu1_entry]
    lea rdx, [rip + vcpu1_stack_top]
    call kernel_vcpu_context
    mov edi, VCPUOP_initialise
    mov esi, 1
    lea rdx, [rip + ctx]
    call hc_vcpu_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_initialise]
    call check_eq
    mov edi, VCPUOP_up
    mov esi, 1
    xor edx, edx
    call hc_vcpu_op
    mov edi, VCPUOP_is_up
    mov esi, 1
    xor edx, edx
    call hc_vcpu_op
    mov rdi, rax
    mov esi, 1
    lea rdx, [rip + m_is_up]
    call check_eq

    # a long stay in user mode, across many switches
    xor edi, edi
    xor esi, esi
    lea rdx, [rip + syscall_entry]
    call hc_set_callbacks
    mov edi, FLAT_KERNEL_SS
    lea rsi, [rip + kernel_stack_top]
    call hc_stack_switch
    mov [rip + saved_rsp], rsp
    mov edi, USER_CODE_VA
    mov esi, USER_STACK_TOP
    jmp enter_user
back:
    # the area: vCPU 0 running, with time running and time waiting for vCPU 1
    mov edi, dword ptr [rip + rs_area]
    xor esi, esi
    lea rdx, [rip + m_state]
    call check_eq
    cmp qword ptr [rip + rs_area + 16], 0
    jne ran
    lea rdi, [rip + m_time_running]
    call fail
ran:
    cmp qword ptr [rip + rs_area + 24], 0
    jne waited
    lea rdi, [rip + m_time_runnable]
    call fail
waited:
    ret

syscall_entry:
    mov rsp, [rip + saved_rsp]
    jmp back

vcpu1_entry:
    pause
    jmp vcpu1_entry

user_blob:
    mov ecx, LOOPS
user_loop:
    dec ecx
    jnz user_loop
    syscall
    ud2
user_blob_end:

.align 8
frames: .fill 6 * 8, 1, 0
area_arg: .quad 0
saved_rsp: .quad 0
m_register: .asciz "registering the runstate area"
m_initialise: .asciz "VCPUOP_initialise of vCPU 1"
m_is_up: .asciz "VCPUOP_is_up of vCPU 1"
m_state: .asciz "the area says running"
m_time_running: .asciz "the area shows no time running"
m_time_runnable: .asciz "the area shows no time waiting for vCPU 1"
.align 64
rs_area: .fill 64, 1, 0
.align 16
ctx: .fill 5168, 1, 0
.align 16
    .fill 4096, 1, 0
vcpu1_stack_top:
    .fill 8192, 1, 0
kernel_stack_top:
