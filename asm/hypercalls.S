# hypercalls: the hypercalls the other kernels do not lean on. xen_version (version,
# extraversion, capabilities, get_features), callback_op register (and its refusals),
# multicall (three calls, each result written back, a nested multicall refused inside the
# batch; and a batch ending in HYPERVISOR_iret, which is performed and ends it, as Xen's
# mc_exit),
# vm_assist enable/disable, sched_op yield, console_io read, memory_op add_to_physmap
# (refused to PV guests with -EACCES, as Xen does) and memory_map (one RAM entry). A wrong value or errno is a
# FAILURE.
.include "pv.inc"

.equ KERNEL_CS_RPL0, FLAT_KERNEL_CS & ~3       # an iret frame that stays in kernel mode
.equ MC_RAX, 0x5eed
.equ MC_RCX, 0x1111
.equ MC_R11, 0x2222

.equ XENVER_version, 0
.equ XENVER_extraversion, 1
.equ XENVER_capabilities, 3
.equ XENVER_get_features, 6
.equ XENVER_pagesize, 7
.equ CALLBACKOP_register, 0
.equ CALLBACKOP_unregister, 1
.equ CALLBACKTYPE_event, 0
.equ CALLBACKTYPE_syscall, 2
.equ CALLBACKF_mask_events, 1
.equ VMASST_CMD_enable, 0
.equ VMASST_CMD_disable, 1
.equ VMASST_TYPE_writable_pagetables, 2
.equ CONSOLEIO_read, 1
.equ XENMEM_add_to_physmap, 7
.equ XENMEM_memory_map, 9
.equ XENMAPSPACE_shared_info, 0

test_main:
    # xen_version
    mov edi, XENVER_version
    xor esi, esi
    call hc_xen_version
    shr rax, 16
    mov rdi, rax
    mov esi, 4
    lea rdx, [rip + m_major]
    call check_eq
    mov edi, XENVER_pagesize
    xor esi, esi
    call hc_xen_version
    mov rdi, rax
    mov esi, 4096
    lea rdx, [rip + m_pagesize]
    call check_eq
    mov edi, XENVER_capabilities
    lea rsi, [rip + capabilities]
    call hc_xen_version
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_caps_rc]
    call check_eq
    mov rdi, qword ptr [rip + capabilities]
    movabs rsi, 0x2e332d6e6578       # "xen-3." as little-endian bytes, masked below
    movabs rax, 0xffffffffffff
    and rdi, rax
    lea rdx, [rip + m_caps]
    call check_eq
    mov edi, XENVER_extraversion
    lea rsi, [rip + extraversion]
    call hc_xen_version
    movzx edi, byte ptr [rip + extraversion]
    mov esi, 0x2e
    lea rdx, [rip + m_extra]
    call check_eq
    mov dword ptr [rip + features], 0
    mov edi, XENVER_get_features
    lea rsi, [rip + features]
    call hc_xen_version
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_features_rc]
    call check_eq
    mov edi, dword ptr [rip + features + 4]
    and edi, 0x20                     # XENFEAT_mmu_pt_update_preserve_ad
    mov esi, 0x20
    lea rdx, [rip + m_features]
    call check_eq
    mov edi, 99
    xor esi, esi
    call hc_xen_version
    mov rdi, rax
    mov rsi, RC_ENOSYS
    lea rdx, [rip + m_xenver_bad]
    call check_eq

    # callback_op
    mov word ptr [rip + cbreg], CALLBACKTYPE_syscall
    mov word ptr [rip + cbreg + 2], CALLBACKF_mask_events
    lea rax, [rip + test_main]
    mov [rip + cbreg + 8], rax
    mov edi, CALLBACKOP_register
    lea rsi, [rip + cbreg]
    call hc_callback_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_cb_register]
    call check_eq
    mov word ptr [rip + cbreg], 42
    mov edi, CALLBACKOP_register
    lea rsi, [rip + cbreg]
    call hc_callback_op
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_cb_bad_type]
    call check_eq
    mov word ptr [rip + cbreg], CALLBACKTYPE_event
    mov edi, CALLBACKOP_unregister
    lea rsi, [rip + cbreg]
    call hc_callback_op
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_cb_unregister]
    call check_eq

    # multicall: console write, xen_version, and a nested multicall (refused) in the batch
    mov qword ptr [rip + mc0], __HYPERVISOR_console_io
    mov qword ptr [rip + mc0 + 16], CONSOLEIO_write
    lea rax, [rip + mc_text_end]
    lea rcx, [rip + mc_text]
    sub rax, rcx
    mov [rip + mc0 + 24], rax
    mov [rip + mc0 + 32], rcx
    mov qword ptr [rip + mc1], __HYPERVISOR_xen_version
    mov qword ptr [rip + mc1 + 16], XENVER_pagesize
    mov qword ptr [rip + mc2], __HYPERVISOR_multicall
    mov qword ptr [rip + mc0 + 8], 0x77
    mov qword ptr [rip + mc1 + 8], 0x77
    mov qword ptr [rip + mc2 + 8], 0x77
    lea rdi, [rip + mc0]
    mov esi, 3
    call hc_multicall
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_mc_rc]
    call check_eq
    mov rdi, [rip + mc0 + 8]
    xor esi, esi
    lea rdx, [rip + m_mc0]
    call check_eq
    mov rdi, [rip + mc1 + 8]
    mov esi, 4096
    lea rdx, [rip + m_mc1]
    call check_eq
    mov rdi, [rip + mc2 + 8]
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_mc2]
    call check_eq

    # a multicall ending in HYPERVISOR_iret: the iret is performed and ends the batch (Xen's
    # mc_exit). It pops { rax, r11, rcx, flags, rip, cs, rflags, rsp, ss } from the stack
    # pointer at the syscall, after the stub's push rcx; push r11: so the batch is entered
    # with a jmp, the frame from rcx up on the stack, and r11 and rcx holding what the
    # frame's rax and r11 slots get
    mov qword ptr [rip + mc0], __HYPERVISOR_xen_version
    mov qword ptr [rip + mc0 + 16], XENVER_pagesize
    mov qword ptr [rip + mc1], __HYPERVISOR_iret
    mov qword ptr [rip + mc2], __HYPERVISOR_xen_version
    mov qword ptr [rip + mc2 + 16], XENVER_pagesize
    mov qword ptr [rip + mc0 + 8], 0x77
    mov qword ptr [rip + mc1 + 8], 0x77
    mov qword ptr [rip + mc2 + 8], 0x77
    mov [rip + mc_saved_rsp], rsp
    push FLAT_KERNEL_SS
    push qword ptr [rip + mc_saved_rsp]
    pushfq
    push KERNEL_CS_RPL0
    lea rax, [rip + after_mc_iret]
    push rax
    push 0                                    # flags: r11 and rcx come from the frame
    push MC_RCX
    mov r11d, MC_RAX                          # pushed by the stub into the rax slot
    mov ecx, MC_R11                           # ... and into the r11 slot
    lea rdi, [rip + mc0]
    mov esi, 3
    jmp hc_multicall
after_mc_iret:
    mov [rip + mc_after_rax], rax
    mov [rip + mc_after_rcx], rcx
    mov [rip + mc_after_r11], r11
    mov [rip + mc_after_rsp], rsp
    mov rdi, [rip + mc_after_rax]
    mov esi, MC_RAX
    lea rdx, [rip + m_mc_iret_rax]
    call check_eq
    mov rdi, [rip + mc_after_rcx]
    mov esi, MC_RCX
    lea rdx, [rip + m_mc_iret_rcx]
    call check_eq
    mov rdi, [rip + mc_after_r11]
    mov esi, MC_R11
    lea rdx, [rip + m_mc_iret_r11]
    call check_eq
    mov rdi, [rip + mc_after_rsp]
    mov rsi, [rip + mc_saved_rsp]
    lea rdx, [rip + m_mc_iret_rsp]
    call check_eq
    mov rdi, [rip + mc0 + 8]
    mov esi, 4096
    lea rdx, [rip + m_mc_before_iret]
    call check_eq
    mov rdi, [rip + mc1 + 8]
    mov esi, MC_RAX
    lea rdx, [rip + m_mc_iret_result]
    call check_eq
    mov rdi, [rip + mc2 + 8]
    mov esi, 0x77
    lea rdx, [rip + m_mc_after_iret]
    call check_eq

    # vm_assist enable / disable a valid type; an unknown command
    mov edi, VMASST_CMD_enable
    mov esi, VMASST_TYPE_writable_pagetables
    call hc_vm_assist
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_vmassist_on]
    call check_eq
    mov edi, VMASST_CMD_disable
    mov esi, VMASST_TYPE_writable_pagetables
    call hc_vm_assist
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_vmassist_off]
    call check_eq
    mov edi, 7
    mov esi, VMASST_TYPE_writable_pagetables
    call hc_vm_assist
    mov rdi, rax
    mov rsi, RC_ENOSYS
    lea rdx, [rip + m_vmassist_cmd]
    call check_eq

    # sched_op yield; console_io read (nothing to read)
    mov edi, SCHEDOP_yield
    xor esi, esi
    call hc_sched_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_yield]
    call check_eq
    mov edi, CONSOLEIO_read
    mov esi, 16
    lea rdx, [rip + extraversion]
    call hc_console_io
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_console_read]
    call check_eq

    # memory_op add_to_physmap of shared_info: a PV guest is not translated (-EACCES)
    mov word ptr [rip + xatp], DOMID_SELF
    mov dword ptr [rip + xatp + 4], XENMAPSPACE_shared_info
    mov qword ptr [rip + xatp + 16], 0x100
    mov edi, XENMEM_add_to_physmap
    lea rsi, [rip + xatp]
    call hc_memory_op
    mov rdi, rax
    mov rsi, RC_EACCES
    lea rdx, [rip + m_xatp]
    call check_eq

    # memory_op memory_map: one RAM entry from 0 covering at least nr_pages
    mov dword ptr [rip + memmap], 4
    lea rax, [rip + e820]
    mov qword ptr [rip + memmap + 8], rax
    mov edi, XENMEM_memory_map
    lea rsi, [rip + memmap]
    call hc_memory_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_memmap_rc]
    call check_eq
    mov edi, dword ptr [rip + memmap]
    mov esi, 1
    lea rdx, [rip + m_memmap_n]
    call check_eq
    mov edi, dword ptr [rip + e820 + 16]
    mov esi, 1
    lea rdx, [rip + m_memmap_type]
    call check_eq
    mov rax, [rip + start_info_ptr]
    mov rax, [rax + SI_nr_pages]
    shl rax, 12
    mov rcx, [rip + e820 + 8]
    xor edi, edi
    cmp rcx, rax
    setb dil
    xor esi, esi
    lea rdx, [rip + m_memmap_size]
    call check_eq
    ret

.align 8
features: .long 0, 0
xatp: .fill 24, 1, 0
memmap: .quad 0, 0
e820: .fill 80, 1, 0
cbreg: .quad 0, 0
mc0: .fill 64, 1, 0
mc1: .fill 64, 1, 0
mc2: .fill 64, 1, 0
capabilities: .fill 1024, 1, 0
extraversion: .fill 16, 1, 0
mc_text: .ascii "written from inside a multicall\n"
mc_text_end:
m_major: .asciz "xen_version major"
m_pagesize: .asciz "XENVER_pagesize"
m_caps_rc: .asciz "XENVER_capabilities"
m_caps: .asciz "capabilities start with xen-3."
m_extra: .asciz "extraversion starts with a dot"
m_features_rc: .asciz "XENVER_get_features"
m_features: .asciz "mmu_pt_update_preserve_ad advertised"
m_xenver_bad: .asciz "an unknown xen_version command"
m_cb_register: .asciz "callback_op register syscall"
m_cb_bad_type: .asciz "callback_op register of an unknown type"
m_cb_unregister: .asciz "callback_op unregister of the event callback"
m_mc_rc: .asciz "multicall"
m_mc0: .asciz "multicall entry 0 (console write)"
m_mc1: .asciz "multicall entry 1 (xen_version pagesize)"
m_mc2: .asciz "multicall entry 2 (a nested multicall is refused)"
m_mc_iret_rax: .asciz "rax after an iret in a multicall (the frame's)"
m_mc_iret_rcx: .asciz "rcx after an iret in a multicall (the frame's)"
m_mc_iret_r11: .asciz "r11 after an iret in a multicall (the frame's)"
m_mc_iret_rsp: .asciz "rsp after an iret in a multicall (the frame's)"
m_mc_before_iret: .asciz "the entry before the iret ran"
m_mc_iret_result: .asciz "the iret entry's result is the frame's rax"
m_mc_after_iret: .asciz "the entry after the iret did not run"
.align 8
mc_saved_rsp: .quad 0
mc_after_rax: .quad 0
mc_after_rcx: .quad 0
mc_after_r11: .quad 0
mc_after_rsp: .quad 0
m_vmassist_on: .asciz "vm_assist enable writable_pagetables"
m_vmassist_off: .asciz "vm_assist disable writable_pagetables"
m_vmassist_cmd: .asciz "vm_assist with an unknown command"
m_yield: .asciz "sched_op yield"
m_console_read: .asciz "console_io read"
m_xatp: .asciz "add_to_physmap of shared_info (PV: -EACCES)"
m_memmap_rc: .asciz "memory_map"
m_memmap_n: .asciz "memory_map entry count"
m_memmap_type: .asciz "memory_map entry is RAM"
m_memmap_size: .asciz "memory_map covers nr_pages (1 = too small)"
