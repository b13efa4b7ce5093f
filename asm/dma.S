# dma: the map-not-lookup race (../shared/references/map-not-lookup-gfn-to-mfn.txt) as
# three kernels on one host, and a grant mapping read on the real CPU on the way.
#   rol=0  the backend: privileged over the client (its target set), owner of a DMA
#          engine whose register page (device/dma/mfn in its xenstore home) it maps.
#          It maps the client's granted page (GNTTABOP_map_grant_ref), reads the message
#          there and answers beside it, unmaps; then gets hold of the client's DMA page:
#          by reference (lkp=0: the PV-IOMMU's lookup_foreign_page, a BFN back) or by a
#          bare lookup (lkp=1: XENMEM_get_mfn_from_pfn, an MFN and no reference). Once
#          the client has given the page back and another domain has taken memory, it
#          DMAs its pattern there (through its IOMMU table; with lkp=1, to the raw
#          machine address) and drops its mapping.
#   rol=1  the client: grants a page to the backend, checks the answer in it, publishes
#          the pfn of the page its "device" will write, then balloons that page out.
#   rol=2  another domain: gives back a frame early, then once the client has ballooned,
#          increases its reservation (the allocator hands out the most recently freed
#          frame first), fills the new page with its own data, and after the DMA checks
#          the page is still its own. With lkp=1 it finds the backend's DMA there: the
#          lookup design let a backend write memory of a domain it has no right to.
# The steps are ordered through xenstore nodes under /dma.
# Needs: three domains on one host: configs/dma/{backend,client,other}.cfg (or
# backend-lookup.cfg for the lookup design), which `pvshadow run dma` runs.
# pvshadow-run: ../configs/dma/backend.cfg ../configs/dma/client.cfg ../configs/dma/other.cfg
.include "pv.inc"
.include "xenstore.inc"

.equ KEY_ROLE, 0x3d6c6f72                    # "rol="
.equ KEY_LOOKUP, 0x3d706b6c                  # "lkp="
.equ hc_iommu_op, hypercall_page + 56 * 32
.equ GNTTABOP_map_grant_ref, 0
.equ GNTTABOP_unmap_grant_ref, 1
.equ GNTTABOP_setup_table, 2
.equ GNTMAP_host_map, 2
.equ GTF_permit_access, 1
.equ GREF, 8
.equ XENMEM_increase_reservation, 0
.equ XENMEM_decrease_reservation, 1
.equ XENMEM_get_mfn_from_pfn, 63
.equ MMU_MACHPHYS_UPDATE, 1
.equ IOMMUOP_lookup_foreign_page, 4
.equ IOMMUOP_unmap_foreign_page, 5
.equ IOMMU_OP_rw, 3
.equ DMA_SRC, 0x00
.equ DMA_DST, 0x08
.equ DMA_LEN, 0x10
.equ DMA_CTRL, 0x18
.equ DMA_STATUS, 0x20
.equ DMA_ID, 0x30
.equ DMA_GO, 1
.equ DMA_GO_PHYS, 2
.equ DMA_DONE, 1
.equ MSG_LEN, s_msg_end - s_msg
.equ REPLY_LEN, s_reply_end - s_reply
.equ PATTERN_LEN, s_pattern_end - s_pattern
.equ MINE_LEN, s_mine_end - s_mine

.equ window_reply, window + 0x100
.equ msg_reply, msg_page + 0x100
.equ regs_src, regs + DMA_SRC
.equ regs_dst, regs + DMA_DST
.equ regs_len, regs + DMA_LEN
.equ regs_ctrl, regs + DMA_CTRL
.equ regs_status, regs + DMA_STATUS
.equ regs_id, regs + DMA_ID
.equ gentry, gframe + GREF * 8
.equ gentry_domid, gentry + 2
.equ gentry_frame, gentry + 4
.equ gop_8, gop + 8
.equ gop_12, gop + 12
.equ gop_16, gop + 16
.equ gop_18, gop + 18
.equ gop_20, gop + 20
.equ uop_8, uop + 8
.equ uop_16, uop + 16
.equ uop_20, uop + 20
.equ setup_4, setup + 4
.equ setup_16, setup + 16
.equ iop_2, iop + 2
.equ iop_4, iop + 4
.equ iop_8, iop + 8
.equ iop_16, iop + 16
.equ iop_24, iop + 24
.equ lookup_arg_8, lookup_arg + 8
.equ lookup_arg_16, lookup_arg + 16
.equ reservation_8, reservation + 8
.equ reservation_16, reservation + 16
.equ reservation_24, reservation + 24

# node(path label) -> rsi, edx for the xs_* calls
.macro node name
    lea rsi, [rip + \name]
    mov edx, \name\()_end - \name
.endm

# wait_node(path): until the node exists
.macro wait_node name
    node \name
    call xs_read_number
.endm

# set_node(path, value in edi)
.macro set_node name, value
    mov edi, \value
    node \name
    call xs_write_number
.endm

test_main:
    call xs_init
    mov edi, KEY_ROLE
    call cmdline_hex
    cmp rax, 1
    je client
    cmp rax, 2
    je other

backend:
    wait_node p_peer
    mov r13, rax                              # the client's domid
    mov edi, KEY_LOOKUP
    call cmdline_hex
    mov [rip + lookup], rax
    # the grant: map the client's page over our window, read it, answer, unmap
    wait_node p_gref
    lea rax, [rip + window]
    mov [rip + gop], rax                      # host_addr
    mov dword ptr [rip + gop_8], GNTMAP_host_map
    mov dword ptr [rip + gop_12], GREF      # ref
    mov [rip + gop_16], r13w                # dom
    mov edi, GNTTABOP_map_grant_ref
    lea rsi, [rip + gop]
    mov edx, 1
    call hc_grant_table_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_map_grant]
    call check_eq
    movsx rdi, word ptr [rip + gop_18]
    xor esi, esi
    lea rdx, [rip + m_map_status]
    call check_eq
    lea rsi, [rip + window]
    lea rdi, [rip + s_msg]
    mov ecx, MSG_LEN
    repe cmpsb
    je message_read
    lea rdi, [rip + m_message]
    call fail
message_read:
    lea rsi, [rip + s_reply]
    lea rdi, [rip + window_reply]
    mov ecx, REPLY_LEN
    rep movsb
    lea rax, [rip + window]
    mov [rip + uop], rax                      # host_addr
    mov qword ptr [rip + uop_8], 0          # dev_bus_addr
    mov eax, [rip + gop_20]
    mov [rip + uop_16], eax                 # handle
    mov edi, GNTTABOP_unmap_grant_ref
    lea rsi, [rip + uop]
    mov edx, 1
    call hc_grant_table_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_unmap_grant]
    call check_eq
    movsx rdi, word ptr [rip + uop_20]
    xor esi, esi
    lea rdx, [rip + m_unmap_status]
    call check_eq
    lea rdi, [rip + m_backend_grant]
    call puts
    set_node p_read, 1

    # the client's DMA page: by reference, or by a bare lookup
    wait_node p_gfn
    mov r12, rax
    cmp qword ptr [rip + lookup], 0
    jne backend_lookup
    mov word ptr [rip + iop], IOMMUOP_lookup_foreign_page
    mov word ptr [rip + iop_2], IOMMU_OP_rw
    mov [rip + iop_16], r12                 # gfn
    mov [rip + iop_24], r13w                # domid
    lea rdi, [rip + iop]
    mov esi, 1
    call hc_iommu_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_iommu_op]
    call check_eq
    movsxd rdi, dword ptr [rip + iop_4]
    xor esi, esi
    lea rdx, [rip + m_lookup_foreign]
    call check_eq
    mov r15, [rip + iop_8]
    shl r15, 12                               # the bus address: BFN << 12
    lea rdi, [rip + m_backend_mapped]
    call puts
    jmp backend_have_page
backend_lookup:
    mov [rip + pfn_list], r12
    mov [rip + lookup_arg], r13w
    mov qword ptr [rip + lookup_arg_8], 1
    lea rax, [rip + pfn_list]
    mov [rip + lookup_arg_16], rax
    mov edi, XENMEM_get_mfn_from_pfn
    lea rsi, [rip + lookup_arg]
    call hc_memory_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_get_mfn]
    call check_eq
    mov r15, [rip + pfn_list]
    shl r15, 12                               # the machine address, no reference held
    lea rdi, [rip + m_backend_looked_up]
    call puts
backend_have_page:
    set_node p_mapped, 1

    # the device's registers
    node p_dma_mfn
    call xs_read_number
    mov rsi, rax
    shl rsi, 12
    or rsi, PTE_P | PTE_RW | PTE_A | PTE_D
    lea rdi, [rip + regs]
    call map_va
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_map_regs]
    call check_eq
    mov rdi, [rip + regs_id]
    movabs rsi, 0x31414d4448535650            # "PVSHDMA1"
    lea rdx, [rip + m_dma_id]
    call check_eq

    wait_node p_populated
    lea rsi, [rip + s_pattern]
    lea rdi, [rip + staging]
    mov ecx, PATTERN_LEN
    rep movsb
    lea rdi, [rip + staging]
    call va_maddr                             # our own page: 1:1 in our IOMMU table
    mov [rip + regs_src], rax
    mov [rip + regs_dst], r15
    mov qword ptr [rip + regs_len], PATTERN_LEN
    mov eax, DMA_GO
    cmp qword ptr [rip + lookup], 0
    je backend_go
    mov eax, DMA_GO_PHYS
backend_go:
    mov [rip + regs_ctrl], rax
    mov rdi, [rip + regs_status]
    mov esi, DMA_DONE
    lea rdx, [rip + m_dma_status]
    call check_eq
    cmp qword ptr [rip + lookup], 0
    jne backend_dma_said
    mov word ptr [rip + iop], IOMMUOP_unmap_foreign_page
    lea rdi, [rip + iop]
    mov esi, 1
    call hc_iommu_op
    movsxd rdi, dword ptr [rip + iop_4]
    xor esi, esi
    lea rdx, [rip + m_unmap_foreign]
    call check_eq
    lea rdi, [rip + m_backend_dma]
    call puts
    jmp backend_done
backend_dma_said:
    lea rdi, [rip + m_backend_dma_phys]
    call puts
backend_done:
    set_node p_dma, 1
    ret

client:
    wait_node p_peer
    mov r13, rax                              # the backend's domid
    # a grant table of one frame, mapped here so we can write our entry
    mov word ptr [rip + setup], DOMID_SELF
    mov dword ptr [rip + setup_4], 1
    lea rax, [rip + frame_list]
    mov [rip + setup_16], rax
    mov edi, GNTTABOP_setup_table
    lea rsi, [rip + setup]
    mov edx, 1
    call hc_grant_table_op
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_setup]
    call check_eq
    mov rsi, [rip + frame_list]
    shl rsi, 12
    or rsi, PTE_P | PTE_RW | PTE_A | PTE_D
    lea rdi, [rip + gframe]
    call map_va
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_map_gframe]
    call check_eq
    lea rsi, [rip + s_msg]
    lea rdi, [rip + msg_page]
    mov ecx, MSG_LEN
    rep movsb
    lea rdi, [rip + msg_page]
    call va_maddr
    shr rax, 12
    mov [rip + gentry_frame], eax    # frame
    mov [rip + gentry_domid], r13w   # domid
    mov word ptr [rip + gentry], GTF_permit_access
    set_node p_gref, GREF
    mov rax, [rip + start_info_ptr]
    mov r12, [rax + SI_nr_pages]
    sub r12, 2                                # the page our "device" will be told to write
    mov rdi, r12
    node p_gfn
    call xs_write_number
    wait_node p_read
    lea rsi, [rip + msg_reply]
    lea rdi, [rip + s_reply]
    mov ecx, REPLY_LEN
    repe cmpsb
    je client_answered
    lea rdi, [rip + m_reply]
    call fail
client_answered:
    movzx edi, word ptr [rip + gentry]
    mov esi, GTF_permit_access
    lea rdx, [rip + m_gtf_cleared]
    call check_eq
    lea rdi, [rip + m_client_grant]
    call puts
    wait_node p_mapped
    wait_node p_room
    mov rdi, r12
    call give_back
    mov rdi, r12
    call pfn_to_mfn
    mov [rip + extent], rax
    mov edi, XENMEM_decrease_reservation
    call reserve
    mov rdi, rax
    mov esi, 1
    lea rdx, [rip + m_decrease]
    call check_eq
    lea rdi, [rip + m_client_ballooned]
    call puts
    set_node p_ballooned, 1
    ret

other:
    mov rax, [rip + start_info_ptr]
    mov r12, [rax + SI_nr_pages]
    dec r12                                   # our top page, given back early
    mov rdi, r12
    call give_back
    mov rdi, r12
    call pfn_to_mfn
    mov [rip + extent], rax
    mov edi, XENMEM_decrease_reservation
    call reserve
    mov rdi, rax
    mov esi, 1
    lea rdx, [rip + m_decrease]
    call check_eq
    set_node p_room, 1
    wait_node p_ballooned
    mov qword ptr [rip + extent], 0
    mov edi, XENMEM_increase_reservation
    call reserve
    mov rdi, rax
    mov esi, 1
    lea rdx, [rip + m_increase]
    call check_eq
    mov r14, [rip + extent]
    mov rdi, r14
    shl rdi, 12
    or rdi, MMU_MACHPHYS_UPDATE
    mov rsi, r12
    call mmu_update1
    call scratch_va
    mov rbx, rax
    mov rdi, rbx
    mov rsi, r14
    shl rsi, 12
    or rsi, PTE_P | PTE_RW | PTE_A | PTE_D
    call map_va
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_map_new]
    call check_eq
    lea rsi, [rip + s_mine]
    mov rdi, rbx
    mov ecx, MINE_LEN
    rep movsb
    set_node p_populated, 1
    wait_node p_dma
    mov rsi, rbx
    lea rdi, [rip + s_mine]
    mov ecx, MINE_LEN
    repe cmpsb
    je other_untouched
    lea rdi, [rip + m_corrupted]
    call fail
    ret
other_untouched:
    lea rdi, [rip + m_other_untouched]
    call puts
    ret

# give_back(rdi = pfn): drop the bootstrap region's own mapping of the page, so that
# decrease_reservation frees it (a frame still mapped stays allocated and charged)
give_back:
    shl rdi, 12
    movabs rax, KERNEL_BASE
    add rdi, rax
    xor esi, esi
    call map_va                               # -EINVAL when not mapped at all: fine
    ret

# reserve(edi = XENMEM_increase/decrease_reservation) -> rax: one order-0 extent, [extent]
reserve:
    lea rax, [rip + extent]
    mov [rip + reservation], rax
    mov qword ptr [rip + reservation_8], 1
    mov qword ptr [rip + reservation_16], 0
    mov word ptr [rip + reservation_24], DOMID_SELF
    lea rsi, [rip + reservation]
    call hc_memory_op
    ret

.align 8
lookup: .quad 0
extent: .quad 0
reservation: .quad 0, 0, 0, 0
gop: .fill 32, 1, 0                           # struct gnttab_map_grant_ref
uop: .fill 24, 1, 0                           # struct gnttab_unmap_grant_ref
setup: .fill 24, 1, 0                         # struct gnttab_setup_table
frame_list: .quad 0
iop: .fill 32, 1, 0                           # struct pv_iommu_op
lookup_arg: .fill 24, 1, 0                    # XENMEM_get_mfn_from_pfn's argument
pfn_list: .quad 0
p_peer: .asciz "peer"
p_peer_end:
p_dma_mfn: .asciz "device/dma/mfn"
p_dma_mfn_end:
p_gref: .asciz "/dma/gref"
p_gref_end:
p_read: .asciz "/dma/read"
p_read_end:
p_gfn: .asciz "/dma/gfn"
p_gfn_end:
p_mapped: .asciz "/dma/mapped"
p_mapped_end:
p_room: .asciz "/dma/room"
p_room_end:
p_ballooned: .asciz "/dma/ballooned"
p_ballooned_end:
p_populated: .asciz "/dma/populated"
p_populated_end:
p_dma: .asciz "/dma/done"
p_dma_end:
s_msg: .ascii "a message in a granted page"
s_msg_end:
s_reply: .ascii "read through the grant mapping"
s_reply_end:
s_pattern: .ascii "the backend's DMA was here!!"
s_pattern_end:
s_mine: .ascii "the other domain's own data"
s_mine_end:
m_map_grant: .asciz "GNTTABOP_map_grant_ref"
m_map_status: .asciz "map_grant_ref status"
m_message: .asciz "the client's message read through the grant mapping"
m_unmap_grant: .asciz "GNTTABOP_unmap_grant_ref"
m_unmap_status: .asciz "unmap_grant_ref status"
m_iommu_op: .asciz "iommu_op"
m_lookup_foreign: .asciz "lookup_foreign_page status"
m_get_mfn: .asciz "XENMEM_get_mfn_from_pfn"
m_map_regs: .asciz "mapping the DMA engine's registers"
m_dma_id: .asciz "the DMA engine's ID register"
m_dma_status: .asciz "the DMA engine's status"
m_unmap_foreign: .asciz "unmap_foreign_page status"
m_setup: .asciz "GNTTABOP_setup_table"
m_map_gframe: .asciz "mapping the grant table frame"
m_reply: .asciz "the backend's answer in the granted page"
m_gtf_cleared: .asciz "the grant entry's flags after the unmap"
m_decrease: .asciz "decrease_reservation"
m_increase: .asciz "increase_reservation"
m_map_new: .asciz "mapping the new frame"
m_corrupted: .asciz "my new page holds another domain's DMA: with a lookup and no reference, a backend wrote memory it has no right to (the unsafe design)"
m_backend_grant: .asciz "dma: backend read the client's granted page and answered in it\n"
m_backend_mapped: .asciz "dma: backend mapped the client's page by reference (lookup_foreign_page)\n"
m_backend_looked_up: .asciz "dma: backend looked the client's page up (an MFN, no reference)\n"
m_backend_dma: .asciz "dma: backend's DMA went through its IOMMU mapping; mapping dropped\n"
m_backend_dma_phys: .asciz "dma: backend's DMA went to the raw machine address it looked up\n"
m_client_grant: .asciz "dma: client found the backend's answer in its granted page\n"
m_client_ballooned: .asciz "dma: client gave its DMA page back (decrease_reservation)\n"
m_other_untouched: .asciz "dma: other domain's new page is untouched\n"
.align 4096
window: .fill 4096, 1, 0
regs: .fill 4096, 1, 0
msg_page: .fill 4096, 1, 0
staging: .fill 4096, 1, 0
gframe: .fill 4096, 1, 0
