/*
 * Start of day for the C PV64 kernel: its Xen ELF notes, its own stack, the hypercall page
 * Xen fills, and the event-callback entry that saves the interrupted registers, runs the C
 * handler and returns through HYPERVISOR_iret, as PV kernels do.
 */
#define XEN_ELFNOTE_ENTRY          1
#define XEN_ELFNOTE_HYPERCALL_PAGE 2
#define XEN_ELFNOTE_VIRT_BASE      3
#define XEN_ELFNOTE_PADDR_OFFSET   4
#define XEN_ELFNOTE_XEN_VERSION    5
#define XEN_ELFNOTE_GUEST_OS       6
#define XEN_ELFNOTE_LOADER         8
#define __HYPERVISOR_iret          23

.macro ELFNOTE_HEAD type
    .pushsection .note.Xen, "a", @note
    .balign 4
    .long 2f - 1f
    .long 4f - 3f
    .long \type
1:  .asciz "Xen"
2:  .balign 4
3:
.endm
.macro ELFNOTE_TAIL
4:  .balign 4
    .popsection
.endm
.macro ELFNOTE_STR type, text
    ELFNOTE_HEAD \type
    .asciz "\text"
    ELFNOTE_TAIL
.endm
.macro ELFNOTE_QUAD type, value
    ELFNOTE_HEAD \type
    .quad \value
    ELFNOTE_TAIL
.endm

    ELFNOTE_STR XEN_ELFNOTE_GUEST_OS, pvshadow-c
    ELFNOTE_STR XEN_ELFNOTE_XEN_VERSION, xen-3.0
    ELFNOTE_STR XEN_ELFNOTE_LOADER, generic
    ELFNOTE_QUAD XEN_ELFNOTE_VIRT_BASE, 0xffffffff80000000
    ELFNOTE_QUAD XEN_ELFNOTE_PADDR_OFFSET, 0xffffffff80000000
    ELFNOTE_QUAD XEN_ELFNOTE_ENTRY, _start
    ELFNOTE_QUAD XEN_ELFNOTE_HYPERCALL_PAGE, hypercall_page

    .text
    .globl _start
_start:
    lea     stack_top(%rip), %rsp
    mov     %rsi, %rdi                  /* start_info */
    call    kernel_main
    ud2

/* Xen's bounce frame: RCX, R11, then RIP, CS, RFLAGS, RSP, SS. */
    .globl event_entry
event_entry:
    pop     %rcx
    pop     %r11
    push    %rax
    push    %rcx
    push    %rdx
    push    %rsi
    push    %rdi
    push    %r8
    push    %r9
    push    %r10
    push    %r11
    push    %rbp
    mov     %rsp, %rbp
    and     $-16, %rsp
    call    do_event
    mov     %rbp, %rsp
    pop     %rbp
    pop     %r11
    pop     %r10
    pop     %r9
    pop     %r8
    pop     %rdi
    pop     %rsi
    pop     %rdx
    pop     %rcx
    pop     %rax
    push    $0                          /* iret flags */
    jmp     hypercall_page + __HYPERVISOR_iret * 32

    .balign 4096
    .globl hypercall_page
hypercall_page:
    .fill 4096, 1, 0

    .balign 4096
    .globl shared_info_page
shared_info_page:
    .fill 4096, 1, 0

    .bss
    .balign 16
    .space 16384
stack_top:
    .section .note.GNU-stack, "", @progbits
