# cpustate: processor state a PV guest sets through Xen. FS and kernel GS bases set with
# set_segment_base are the bases loads go through (bad `which` values and non-canonical
# bases are refused); the user GS selector loads from the GDT and a bad one becomes the
# null selector, as in Xen; fpu_taskswitch(1) makes the next FPU instruction raise #NM,
# fpu_taskswitch(0) lets it run; debug registers read back what was set, an address in
# Xen's area is -EPERM and there is no DR8 (-ENODEV; the breakpoints themselves are
# debugregs.S's); PHYSDEVOP_set_iopl takes 0-3; grant_table_op query_size and
# setup_table hand out a grant frame the guest can map and use. A wrong value, errno or
# a missing or spurious #NM is a FAILURE.
.include "pv.inc"

.equ SEGBASE_FS, 0
.equ SEGBASE_GS_KERNEL, 2
.equ SEGBASE_GS_USER_SEL, 3
.equ PHYSDEVOP_set_iopl, 6
.equ GNTTABOP_setup_table, 2
.equ GNTTABOP_query_size, 6

# set_iopl(edi = level): PHYSDEVOP_set_iopl, which must succeed
set_iopl:
    mov [rip + iopl_arg], edi
    mov edi, PHYSDEVOP_set_iopl
    lea rsi, [rip + iopl_arg]
    call hc_physdev_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_iopl]
    jmp check_eq

test_main:
    # FS and kernel GS bases
    mov edi, SEGBASE_FS
    lea rsi, [rip + fs_var]
    call hc_set_segment_base
    mov rdi, qword ptr fs:[0]
    movabs rsi, 0xf5f5f5f5f5f5f5f5
    lea rdx, [rip + m_fs]
    call check_eq
    mov edi, SEGBASE_GS_KERNEL
    lea rsi, [rip + gs_var]
    call hc_set_segment_base
    mov rdi, qword ptr gs:[0]
    movabs rsi, 0x6565656565656565
    lea rdx, [rip + m_gs]
    call check_eq

    # the user GS selector: Xen's flat user data selector loads; the kernel GS base stays
    mov edi, SEGBASE_GS_USER_SEL
    mov esi, FLAT_USER_SS
    call hc_set_segment_base
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_gs_sel]
    call check_eq
    xor edi, edi
    mov di, gs
    mov esi, FLAT_USER_SS
    lea rdx, [rip + m_gs_sel_loaded]
    call check_eq
    mov rdi, qword ptr gs:[0]
    movabs rsi, 0x6565656565656565
    lea rdx, [rip + m_gs_kept]
    call check_eq
    # a selector outside the GDT: Xen loads the null selector instead, and succeeds
    mov edi, SEGBASE_GS_USER_SEL
    mov esi, 0x1233
    call hc_set_segment_base
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_gs_sel_bad]
    call check_eq
    xor edi, edi
    mov di, gs
    xor esi, esi
    lea rdx, [rip + m_gs_sel_null]
    call check_eq
    mov edi, SEGBASE_FS
    movabs rsi, 0x0000800000000000
    call hc_set_segment_base
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_seg_noncanonical]
    call check_eq
    mov edi, 9
    xor esi, esi
    call hc_set_segment_base
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_seg_bad]
    call check_eq

    # the FPU's task-switched flag
    mov edi, 1
    call hc_fpu_taskswitch
    lea rdi, [rip + nm_resume]
    call expect_fault
    fninit
nm_resume:
    mov rdi, [rip + fault_vector]
    mov esi, 7
    lea rdx, [rip + m_nm]
    call check_eq
    xor edi, edi
    call hc_fpu_taskswitch
    mov qword ptr [rip + fault_vector], -1
    fninit
    mov rdi, [rip + fault_vector]
    mov rsi, -1
    lea rdx, [rip + m_no_nm]
    call check_eq

    # debug registers
    xor edi, edi
    mov esi, 0x401000
    call hc_set_debugreg
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_dr0_set]
    call check_eq
    xor edi, edi
    call hc_get_debugreg
    mov rdi, rax
    mov esi, 0x401000
    lea rdx, [rip + m_dr0_get]
    call check_eq
    xor edi, edi
    movabs rsi, 0xffff800000001000
    call hc_set_debugreg
    mov rdi, rax
    mov rsi, RC_EPERM
    lea rdx, [rip + m_dr0_xen]
    call check_eq
    mov edi, 8
    xor esi, esi
    call hc_set_debugreg
    mov rdi, rax
    mov rsi, RC_ENODEV
    lea rdx, [rip + m_dr8]
    call check_eq

    # I/O privilege level
    mov dword ptr [rip + iopl_arg], 3
    mov edi, PHYSDEVOP_set_iopl
    lea rsi, [rip + iopl_arg]
    call hc_physdev_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_iopl]
    call check_eq
    mov dword ptr [rip + iopl_arg], 4
    mov edi, PHYSDEVOP_set_iopl
    lea rsi, [rip + iopl_arg]
    call hc_physdev_op
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_iopl_bad]
    call check_eq

    # port I/O: #GP while the virtual IOPL is below the kernel's ring (1); emulated once
    # set_iopl covers it, reading all ones (no port is the domain's) and writing nowhere
    xor edi, edi
    call set_iopl
    lea rdi, [rip + io_gp_resume]
    call expect_fault
io_gp_insn:
    in al, 0x80
io_gp_resume:
    mov rdi, [rip + fault_vector]
    mov esi, 13
    lea rdx, [rip + m_io_gp]
    call check_eq
    mov rdi, [rip + fault_err]
    xor esi, esi
    lea rdx, [rip + m_io_gp_err]
    call check_eq
    mov rdi, [rip + fault_rip]
    lea rsi, [rip + io_gp_insn]
    lea rdx, [rip + m_io_gp_rip]
    call check_eq
    mov edi, 1
    call set_iopl
    mov qword ptr [rip + fault_vector], -1
    xor eax, eax
    in al, 0x80
    mov rdi, rax
    mov esi, 0xff
    lea rdx, [rip + m_io_inb]
    call check_eq
    mov edx, 0x80
    mov eax, 0x12345678
    in ax, dx
    mov rdi, rax
    mov esi, 0x1234ffff
    lea rdx, [rip + m_io_inw]
    call check_eq
    movabs rax, 0x1122334455667788
    in eax, dx
    mov rdi, rax
    mov esi, 0xffffffff
    lea rdx, [rip + m_io_inl]
    call check_eq
    out 0x80, al
    out dx, eax
    mov rdi, [rip + fault_vector]
    mov rsi, -1
    lea rdx, [rip + m_io_nofault]
    call check_eq
    xor edi, edi
    call set_iopl

    # grant table: none yet, then one frame the guest maps and uses
    mov word ptr [rip + query + 8], DOMID_SELF
    mov edi, GNTTABOP_query_size
    lea rsi, [rip + query]
    mov edx, 1
    call hc_grant_table_op
    mov edi, dword ptr [rip + query + 4]
    mov esi, 4
    lea rdx, [rip + m_gnt_max]
    call check_eq
    mov word ptr [rip + setup], DOMID_SELF
    mov dword ptr [rip + setup + 4], 1
    lea rax, [rip + frame_list]
    mov [rip + setup + 16], rax
    mov edi, GNTTABOP_setup_table
    lea rsi, [rip + setup]
    mov edx, 1
    call hc_grant_table_op
    movsx rdi, word ptr [rip + setup + 8]
    xor esi, esi
    lea rdx, [rip + m_gnt_setup]
    call check_eq
    call scratch_va
    mov rbx, rax
    mov rsi, [rip + frame_list]
    shl rsi, 12
    or rsi, PTE_P | PTE_RW
    mov rdi, rbx
    call map_va
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_gnt_map]
    call check_eq
    mov qword ptr [rbx], 0x6e61
    mov rdi, [rbx]
    mov esi, 0x6e61
    lea rdx, [rip + m_gnt_use]
    call check_eq
    mov edi, GNTTABOP_query_size
    lea rsi, [rip + query]
    mov edx, 1
    call hc_grant_table_op
    mov edi, dword ptr [rip + query]
    mov esi, 1
    lea rdx, [rip + m_gnt_count]
    call check_eq
    ret

.align 8
fs_var: .quad 0xf5f5f5f5f5f5f5f5
gs_var: .quad 0x6565656565656565
iopl_arg: .quad 0
query: .quad 0, 0
setup: .quad 0, 0, 0
frame_list: .quad 0
m_fs: .asciz "a load through the FS base"
m_gs: .asciz "a load through the kernel GS base"
m_gs_sel: .asciz "SEGBASE_GS_USER_SEL of FLAT_USER_DS"
m_gs_sel_loaded: .asciz "GS holds the loaded selector"
m_gs_kept: .asciz "the kernel GS base survives a user selector load"
m_gs_sel_bad: .asciz "SEGBASE_GS_USER_SEL of a selector outside the GDT"
m_gs_sel_null: .asciz "a bad user GS selector loads the null selector"
m_seg_bad: .asciz "set_segment_base with an unknown selector"
m_nm: .asciz "#NM after fpu_taskswitch(1)"
m_no_nm: .asciz "no #NM after fpu_taskswitch(0)"
m_dr0_set: .asciz "set_debugreg DR0"
m_dr0_get: .asciz "get_debugreg DR0"
m_dr0_xen: .asciz "set_debugreg DR0 in Xen's area"
m_seg_noncanonical: .asciz "a non-canonical FS base"
m_io_gp: .asciz "in at virtual IOPL 0 raises #GP"
m_io_gp_err: .asciz "#GP error code for refused port I/O"
m_io_gp_rip: .asciz "#GP RIP is the in instruction"
m_io_inb: .asciz "inb at IOPL 1 reads all ones"
m_io_inw: .asciz "inw replaces only AX"
m_io_inl: .asciz "inl zero-extends into RAX"
m_io_nofault: .asciz "no fault for port I/O at IOPL 1"
m_dr8: .asciz "set_debugreg DR8"
m_iopl: .asciz "PHYSDEVOP_set_iopl 3"
m_iopl_bad: .asciz "PHYSDEVOP_set_iopl 4"
m_gnt_max: .asciz "grant table max_nr_frames"
m_gnt_setup: .asciz "GNTTABOP_setup_table status"
m_gnt_map: .asciz "mapping the grant frame"
m_gnt_use: .asciz "the grant frame holds what was written"
m_gnt_count: .asciz "grant table nr_frames after setup"
