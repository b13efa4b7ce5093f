# balloon: giving frames back and taking them again through memory_op. Reads the current
# and maximum reservation; decreases by one frame (the count drops, the M2P entry goes
# invalid, mapping the frame is refused); increases by one (a scrubbed frame comes back,
# usable after MMU_MACHPHYS_UPDATE); asks for more than the maximum (nothing granted);
# populates a pfn with populate_physmap (the M2P names it); and releases a frame that is
# still mapped (it stays readable until unmapped, then is gone). Any count, errno or
# content that differs is a FAILURE.
.include "pv.inc"

.equ XENMEM_increase_reservation, 0
.equ XENMEM_decrease_reservation, 1
.equ XENMEM_maximum_ram_page, 2
.equ XENMEM_current_reservation, 3
.equ XENMEM_maximum_reservation, 4
.equ XENMEM_populate_physmap, 6
.equ MMU_MACHPHYS_UPDATE, 1

# memop(rdi = cmd, rsi = nr extents, rdx = first extent value) -> rax; extent in [extent]
memop:
    mov [rip + extent], rdx
    lea rax, [rip + extent]
    mov [rip + reservation], rax
    mov [rip + reservation + 8], rsi
    mov qword ptr [rip + reservation + 16], 0
    mov word ptr [rip + reservation + 24], DOMID_SELF
    lea rsi, [rip + reservation]
    call hc_memory_op
    ret

current_reservation:
    mov edi, XENMEM_current_reservation
    lea rsi, [rip + domid_self]
    call hc_memory_op
    ret

# map_scratch(rsi = pte) -> rax = rc
map_scratch:
    mov rdi, [rip + scratch]
    call map_va
    ret

test_main:
    call scratch_va
    mov [rip + scratch], rax
    mov r12, [rip + start_info_ptr]
    mov r13, [r12 + SI_nr_pages]

    call current_reservation
    mov rdi, rax
    mov rsi, r13
    lea rdx, [rip + m_current]
    call check_eq
    mov edi, XENMEM_maximum_reservation
    lea rsi, [rip + domid_self]
    call hc_memory_op
    mov rdi, rax
    mov rsi, r13
    lea rdx, [rip + m_maximum]
    call check_eq
    mov edi, XENMEM_maximum_ram_page
    xor esi, esi
    call hc_memory_op
    test rax, rax
    jg max_ram_ok
    lea rdi, [rip + m_max_ram]
    call fail
max_ram_ok:

    # decrease by the last frame
    lea rdi, [r13 - 1]
    call pfn_to_mfn
    mov r14, rax
    mov edi, XENMEM_decrease_reservation
    mov esi, 1
    mov rdx, r14
    call memop
    mov rdi, rax
    mov esi, 1
    lea rdx, [rip + m_decrease]
    call check_eq
    call current_reservation
    mov rdi, rax
    lea rsi, [r13 - 1]
    lea rdx, [rip + m_current_after_decrease]
    call check_eq
    movabs rax, 0xffff800000000000
    mov rdi, [rax + r14 * 8]
    mov rsi, -1
    lea rdx, [rip + m_m2p_invalid]
    call check_eq
    mov rsi, r14
    shl rsi, 12
    or rsi, PTE_P | PTE_RW
    call map_scratch
    mov rdi, rax
    mov rsi, RC_EBUSY
    lea rdx, [rip + m_map_released]
    call check_eq

    # increase by one: a scrubbed frame, usable once the M2P names it
    mov edi, XENMEM_increase_reservation
    mov esi, 1
    xor edx, edx
    call memop
    mov rdi, rax
    mov esi, 1
    lea rdx, [rip + m_increase]
    call check_eq
    mov r15, [rip + extent]
    mov rdi, r15
    shl rdi, 12
    or rdi, MMU_MACHPHYS_UPDATE
    lea rsi, [r13 - 1]
    call mmu_update1
    mov rsi, r15
    shl rsi, 12
    or rsi, PTE_P | PTE_RW
    call map_scratch
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_map_new]
    call check_eq
    mov rbx, [rip + scratch]
    mov rdi, [rbx + 0x800]
    xor esi, esi
    lea rdx, [rip + m_scrubbed]
    call check_eq
    mov qword ptr [rbx], 0x600d
    mov rdi, [rbx]
    mov esi, 0x600d
    lea rdx, [rip + m_use_new]
    call check_eq
    call current_reservation
    mov rdi, rax
    mov rsi, r13
    lea rdx, [rip + m_current_after_increase]
    call check_eq

    # over the maximum: nothing granted
    mov edi, XENMEM_increase_reservation
    mov esi, 1
    xor edx, edx
    call memop
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_over_max]
    call check_eq

    # populate_physmap: give back pfn nr-2, then populate it again
    lea rdi, [r13 - 2]
    call pfn_to_mfn
    mov edi, XENMEM_decrease_reservation
    mov esi, 1
    mov rdx, rax
    call memop
    mov edi, XENMEM_populate_physmap
    mov esi, 1
    lea rdx, [r13 - 2]
    call memop
    mov rdi, rax
    mov esi, 1
    lea rdx, [rip + m_populate]
    call check_eq
    mov rcx, [rip + extent]
    movabs rax, 0xffff800000000000
    mov rdi, [rax + rcx * 8]
    lea rsi, [r13 - 2]
    lea rdx, [rip + m_populate_m2p]
    call check_eq

    # release the frame mapped at scratch: still readable until unmapped, then gone
    mov edi, XENMEM_decrease_reservation
    mov esi, 1
    mov rdx, r15
    call memop
    mov rdi, rax
    mov esi, 1
    lea rdx, [rip + m_release_mapped]
    call check_eq
    mov rdi, [rbx]
    mov esi, 0x600d
    lea rdx, [rip + m_still_mapped]
    call check_eq
    xor esi, esi
    call map_scratch
    mov rsi, r15
    shl rsi, 12
    or rsi, PTE_P
    call map_scratch
    mov rdi, rax
    mov rsi, RC_EBUSY
    lea rdx, [rip + m_gone]
    call check_eq
    ret

.align 8
scratch: .quad 0
extent: .quad 0
reservation: .quad 0, 0, 0, 0
domid_self: .word DOMID_SELF
m_current: .asciz "current_reservation at boot"
m_maximum: .asciz "maximum_reservation at boot"
m_max_ram: .asciz "maximum_ram_page is positive"
m_decrease: .asciz "decrease_reservation of one frame"
m_current_after_decrease: .asciz "current_reservation after decrease"
m_m2p_invalid: .asciz "M2P entry of a released frame"
m_map_released: .asciz "mapping a released frame"
m_increase: .asciz "increase_reservation of one frame"
m_map_new: .asciz "mapping the new frame"
m_scrubbed: .asciz "a new frame is scrubbed"
m_use_new: .asciz "the new frame holds what is written"
m_current_after_increase: .asciz "current_reservation after increase"
m_over_max: .asciz "increase_reservation over the maximum"
m_populate: .asciz "populate_physmap of one pfn"
m_populate_m2p: .asciz "M2P of a populated frame names its pfn"
m_release_mapped: .asciz "decrease_reservation of a mapped frame"
m_still_mapped: .asciz "a released frame stays readable while mapped"
m_gone: .asciz "mapping a released frame after its last mapping went"
