# linearpt: read-only linear (recursive) page tables, which Xen allows (CONFIG_PV_LINEAR_PT,
# its default) and Linux-era PV kernels used to reach their own entries.
# - L4 slot 300 pointing at the L4 itself, read-only: accepted; the L1 entry of the
#   scratch page reads through it the same as through the kernel's own mapping.
# - The same entry writable: -EINVAL (a writable linear entry would hand out writable
#   page tables).
# - With writable page tables on, a kernel store through the linear map into the L1 is
#   emulated and applied, as any store into an L1 through a read-only mapping.
# - Slot 301 pointing at the user L4 (another validated L4) read-only: accepted; that
#   L4, now a linear target, may not hold linear entries itself (-EINVAL).
# - Both removed: the tables go back to normal (the user L4 unpins).
# A different errno or value is a FAILURE.
.include "pv.inc"
.include "userspace.inc"

.equ SLOT_SELF, 300
.equ SLOT_OTHER, 301
.equ VMASST_CMD_enable, 0
.equ VMASST_TYPE_writable_pagetables, 2

# l4_update(esi = slot, rdx = value) -> rax: mmu_update of the kernel's L4 slot
l4_update:
    mov rdi, [rip + l4_mfn]
    shl rdi, 12
    lea rdi, [rdi + rsi * 8]
    mov rsi, rdx
    jmp mmu_update1

# linear_l1e(rdi = va) -> rax: the address of va's L1 entry through slot SLOT_SELF:
# sign-extended SLOT_SELF << 39 | va[47:12] >> 9, 8-byte aligned
linear_l1e:
    mov rax, rdi
    shr rax, 12
    movabs rcx, 0xfffffffff
    and rax, rcx
    shl rax, 3
    movabs rcx, 0xffff960000000000       # SLOT_SELF << 39, sign-extended
    or rax, rcx
    ret

test_main:
    call user_space_tables
    lea rsi, [rip + user_blob]
    lea rcx, [rip + user_blob_end]
    sub rcx, rsi
    call user_space_load
    lea rdx, [rip + syscall_entry]
    call user_space_install
    mov rdi, [rip + start_info_ptr]
    mov rdi, [rdi + SI_pt_base]
    call va_maddr
    shr rax, 12
    mov [rip + l4_mfn], rax
    mov rdi, [rip + scratch]
    call l1e_va
    mov [rip + scratch_l1e_va], rax

    # a writable linear entry is refused
    mov esi, SLOT_SELF
    mov rdx, [rip + l4_mfn]
    shl rdx, 12
    or rdx, PTE_P | PTE_RW
    call l4_update
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_writable]
    call check_eq

    # a read-only one is taken
    mov esi, SLOT_SELF
    mov rdx, [rip + l4_mfn]
    shl rdx, 12
    or rdx, PTE_P
    call l4_update
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_self]
    call check_eq
    mov rdi, [rip + scratch]
    call linear_l1e
    mov r12, rax
    mov rdi, [r12]
    mov rax, [rip + scratch_l1e_va]
    mov rsi, [rax]
    lea rdx, [rip + m_read]
    call check_eq

    # a kernel store through it into the L1: emulated, applied
    mov edi, VMASST_CMD_enable
    mov esi, VMASST_TYPE_writable_pagetables
    call hc_vm_assist
    mov rax, [rip + scratch_l1e_va]
    mov rbx, [rax]
    mov rcx, rbx
    and rcx, -3                          # RW cleared
    mov [r12], rcx
    mov rax, [rip + scratch_l1e_va]
    mov rdi, [rax]
    and edi, PTE_RW
    xor esi, esi
    lea rdx, [rip + m_store]
    call check_eq
    mov [r12], rbx
    mov rax, [rip + scratch_l1e_va]
    mov rdi, [rax]
    mov rsi, rbx
    lea rdx, [rip + m_store_back]
    call check_eq

    # a linear entry to another L4; that L4 may then hold none itself
    mov esi, SLOT_OTHER
    mov rdx, [rip + u_l4]
    shl rdx, 12
    or rdx, PTE_P
    call l4_update
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_other]
    call check_eq
    mov rdi, [rip + u_l4]
    shl rdi, 12
    add rdi, 8 * 5
    mov rsi, [rip + l4_mfn]
    shl rsi, 12
    or rsi, PTE_P
    call mmu_update1
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_target]
    call check_eq

    # both gone: the user L4 unpins
    mov esi, SLOT_OTHER
    xor edx, edx
    call l4_update
    mov esi, SLOT_SELF
    xor edx, edx
    call l4_update
    mov edi, MMUEXT_UNPIN_TABLE
    mov rsi, [rip + u_l4]
    call mmuext1
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_unpin]
    call check_eq
    ret

syscall_entry:
    ud2
user_blob:
    ud2
user_blob_end:

.align 8
l4_mfn: .quad 0
scratch_l1e_va: .quad 0
.align 16
kernel_stack: .fill 1024, 1, 0
kernel_stack_top:
m_writable: .asciz "a writable linear L4 entry"
m_self: .asciz "a read-only linear L4 entry to the L4 itself"
m_read: .asciz "the scratch L1 entry read through the linear map"
m_store: .asciz "a kernel store through the linear map into the L1"
m_store_back: .asciz "the entry stored back through the linear map"
m_other: .asciz "a read-only linear entry to another L4"
m_target: .asciz "a linear target holding a linear entry"
m_unpin: .asciz "unpinning the user L4 after the linear entry is gone"
