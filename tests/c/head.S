/*
 * Start of day for the C PV64 kernel: its Xen ELF notes, its own stack, the hypercall page
 * Xen fills, and the event-callback entry that saves the interrupted registers, runs the C
 * handler and returns through HYPERVISOR_iret, as PV kernels do.
 */
#include "../gnu/xen_elfnote.h"

#define __HYPERVISOR_iret          23

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

/* #UD through the trap table: count it and step over the 2-byte ud2. */
    .globl ud_entry
ud_entry:
    pop     %rcx
    pop     %r11
    addq    $2, (%rsp)
    incl    ud_events(%rip)
    push    $0
    jmp     hypercall_page + __HYPERVISOR_iret * 32

/*
 * run_user(rip, rsp): HYPERVISOR_iret into guest user mode; returns (to the C caller, with
 * its callee-saved registers) when the user program makes a syscall, whose RAX it returns.
 */
    .globl run_user
run_user:
    push    %rbx
    push    %rbp
    push    %r12
    push    %r13
    push    %r14
    push    %r15
    mov     %rsp, kernel_rsp(%rip)
    push    $0xe02b                     /* FLAT_USER_SS */
    push    %rsi
    push    $0x202                      /* IF: events stay enabled */
    push    $0xe033                     /* FLAT_USER_CS */
    push    %rdi
    push    $0                          /* iret flags */
    jmp     hypercall_page + __HYPERVISOR_iret * 32

/* The syscall callback, entered on the stack_switch stack: back to run_user's caller. */
    .globl syscall_entry
syscall_entry:
    mov     kernel_rsp(%rip), %rsp
    pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %rbp
    pop     %rbx
    ret

/* The user program: a syscall with a value the kernel checks. */
    .globl user_entry
user_entry:
    mov     $0x5157, %eax
    syscall
    ud2

    .balign 4096
    .globl hypercall_page
hypercall_page:
    .fill 4096, 1, 0

    .balign 4096
    .globl shared_info_page
shared_info_page:
    .fill 4096, 1, 0

    .balign 4096
    .globl console_page
console_page:
    .fill 4096, 1, 0

    .balign 4096
    .globl gdt_page
gdt_page:
    .quad 0, 0x00cf92000000ffff         /* entry 1: flat data, DPL 0 (Xen raises it to 3) */
    .fill 4096 - 16, 1, 0

    .data
    .globl ud_events
ud_events:  .long 0
kernel_rsp: .quad 0

    .bss
    .balign 4096
    .globl user_stack_top, syscall_stack_top, stack_top
    .space 4096
user_stack_top:
    .space 8192
syscall_stack_top:
    .space 16384
stack_top:
    .section .note.GNU-stack, "", @progbits
