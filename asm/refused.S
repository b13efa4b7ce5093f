# refused: updates Xen refuses, each with its exact errno, and each leaving everything as
# it was. Mapping a frame the hypervisor owns (-EBUSY); a writable mapping of a page
# table (-EBUSY, while a read-only one is allowed); writing a Xen-private L4 slot
# (-EINVAL); an mmu_update into a frame the guest does not own (-EINVAL); a superpage
# (-EINVAL); pinning a frame that is mapped writable (-EINVAL); a non-L4 base pointer
# (-EINVAL); another domain as foreigndom (-ESRCH); an unknown vm_assist type (-EINVAL);
# an unknown hypercall (-ENOSYS). A different errno, or a change that happened anyway, is
# a FAILURE.
.include "pv.inc"

.equ MMUEXT_PIN_L1_TABLE, 0
.equ PTE_PSE, 0x80

# map_scratch(rsi = pte) -> rax = rc
map_scratch:
    mov rdi, [rip + scratch]
    mov edx, UVMF_INVLPG
    call hc_update_va_mapping
    ret

# scratch_entry -> rax: the scratch L1 entry as the guest reads it
scratch_entry:
    mov rax, [rip + scratch_l1e_va]
    mov rax, [rax]
    ret

# mmu_update_one(rdi = ptr, rsi = val, rdx = foreigndom) -> rax; done count in [done]
mmu_update_one:
    mov [rip + mmu_req], rdi
    mov [rip + mmu_req + 8], rsi
    mov r10, rdx
    mov dword ptr [rip + done], 0xffff
    lea rdi, [rip + mmu_req]
    mov esi, 1
    lea rdx, [rip + done]
    call hc_mmu_update
    ret

test_main:
    call scratch_va
    mov [rip + scratch], rax
    mov rdi, rax
    call l1e_maddr
    mov [rip + scratch_l1e], rax
    mov rdi, [rip + scratch]
    call l1e_va
    mov [rip + scratch_l1e_va], rax
    call scratch_entry
    mov r12, rax                         # the scratch entry before any refusal
    mov rbx, [rip + start_info_ptr]
    mov rbx, [rbx + SI_pt_base]          # the bootstrap L4, readable by the guest
    mov rax, [rbx + 256 * 8]
    movabs rcx, 0x000ffffffffff000
    and rax, rcx
    shr rax, 12
    mov [rip + xen_mfn], rax             # a frame of the M2P's tables: Xen's
    mov rdi, rbx
    call va_maddr
    shr rax, 12
    mov [rip + l4_mfn], rax

    # a frame Xen owns cannot be mapped
    mov rsi, [rip + xen_mfn]
    shl rsi, 12
    or rsi, PTE_P
    call map_scratch
    mov rdi, rax
    mov rsi, RC_EBUSY
    lea rdx, [rip + m_xen_frame]
    call check_eq
    call scratch_entry
    mov rdi, rax
    mov rsi, r12
    lea rdx, [rip + m_unchanged]
    call check_eq

    # a page table cannot be mapped writable; read-only is fine
    mov rsi, [rip + l4_mfn]
    shl rsi, 12
    or rsi, PTE_P | PTE_RW
    call map_scratch
    mov rdi, rax
    mov rsi, RC_EBUSY
    lea rdx, [rip + m_pt_writable]
    call check_eq
    call scratch_entry
    mov rdi, rax
    mov rsi, r12
    lea rdx, [rip + m_unchanged]
    call check_eq
    mov rsi, [rip + l4_mfn]
    shl rsi, 12
    or rsi, PTE_P
    call map_scratch
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_pt_readonly]
    call check_eq
    mov rax, [rip + scratch]
    mov rdi, [rax + 256 * 8]
    mov rsi, [rbx + 256 * 8]
    lea rdx, [rip + m_pt_readonly_read]
    call check_eq
    mov rsi, r12
    call map_scratch

    # the hypervisor's L4 slots are not the guest's to write
    mov rdi, [rip + l4_mfn]
    shl rdi, 12
    add rdi, 256 * 8
    xor esi, esi
    mov edx, DOMID_SELF
    call mmu_update_one
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_xen_slot]
    call check_eq
    mov edi, dword ptr [rip + done]
    xor esi, esi
    lea rdx, [rip + m_done_zero]
    call check_eq
    mov rdi, [rbx + 256 * 8]
    test rdi, rdi
    jnz xen_slot_kept
    lea rdi, [rip + m_xen_slot_kept]
    call fail
xen_slot_kept:

    # an mmu_update into a frame the guest does not own
    mov rdi, [rip + xen_mfn]
    shl rdi, 12
    xor esi, esi
    mov edx, DOMID_SELF
    call mmu_update_one
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_foreign_table]
    call check_eq

    # a superpage in an L2 entry (PSE): not for PV guests
    mov rdi, [rip + scratch]
    mov esi, 2
    call pte_maddr
    mov rdi, rax
    mov rsi, [rip + l4_mfn]
    shl rsi, 12
    or rsi, PTE_P | PTE_PSE
    mov edx, DOMID_SELF
    call mmu_update_one
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_pse]
    call check_eq

    # pinning a frame that is mapped writable
    mov edi, 1
    call top_mfn
    mov r13, rax
    mov rsi, r13
    shl rsi, 12
    or rsi, PTE_P | PTE_RW
    call map_scratch
    mov edi, MMUEXT_PIN_L1_TABLE
    mov rsi, r13
    call mmuext1
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_pin_writable]
    call check_eq

    # a data frame as the base pointer
    mov edi, MMUEXT_NEW_BASEPTR
    mov rsi, r13
    call mmuext1
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_baseptr]
    call check_eq
    mov rsi, r12
    call map_scratch

    # another domain as foreigndom
    mov rdi, [rip + scratch_l1e]
    mov rsi, r12
    mov edx, 5
    call mmu_update_one
    mov rdi, rax
    mov rsi, RC_ESRCH
    lea rdx, [rip + m_foreigndom]
    call check_eq

    # vm_assist: an unknown type
    xor edi, edi
    mov esi, 10
    call hc_vm_assist
    mov rdi, rax
    mov rsi, RC_EINVAL
    lea rdx, [rip + m_vm_assist]
    call check_eq

    # an unknown hypercall
    call hc_unknown
    mov rdi, rax
    mov rsi, RC_ENOSYS
    lea rdx, [rip + m_enosys]
    call check_eq
    ret

.equ hc_unknown, hypercall_page + 50 * 32

.align 8
scratch: .quad 0
scratch_l1e: .quad 0
scratch_l1e_va: .quad 0
xen_mfn: .quad 0
l4_mfn: .quad 0
mmu_req: .quad 0, 0
done: .quad 0
m_xen_frame: .asciz "mapping a frame Xen owns"
m_unchanged: .asciz "a refused update leaves the entry unchanged"
m_pt_writable: .asciz "a writable mapping of a page table"
m_pt_readonly: .asciz "a read-only mapping of a page table"
m_pt_readonly_read: .asciz "reading the L4 through a read-only mapping"
m_xen_slot: .asciz "mmu_update of a Xen-private L4 slot"
m_done_zero: .asciz "success count of a refused mmu_update"
m_xen_slot_kept: .asciz "the Xen L4 slot survives a refused write"
m_foreign_table: .asciz "mmu_update into a frame the guest does not own"
m_pse: .asciz "a superpage L2 entry"
m_pin_writable: .asciz "pinning a frame mapped writable as an L1"
m_baseptr: .asciz "a data frame as the base pointer"
m_foreigndom: .asciz "mmu_update with another domain as foreigndom"
m_vm_assist: .asciz "vm_assist of an unknown type"
m_enosys: .asciz "an unknown hypercall"
