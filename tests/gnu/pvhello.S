/*
 * A PV64 kernel built with the GNU toolchain (as + ld), carrying its Xen ELF notes in a
 * .note.Xen section as real PV kernels do. It prints a greeting through the hypercall
 * page Xen fills at HYPERCALL_PAGE, reads the Xen version, and powers off.
 */
#include "xen_elfnote.h"

#define __HYPERVISOR_console_io  18
#define __HYPERVISOR_xen_version 17
#define __HYPERVISOR_sched_op    29

    ELFNOTE_STR XEN_ELFNOTE_GUEST_OS, pvshadow-gnu
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
    lea     greeting(%rip), %rdx
    mov     $(greeting_end - greeting), %esi
    xor     %edi, %edi
    call    hypercall_page + __HYPERVISOR_console_io * 32

    xor     %edi, %edi                  /* XENVER_version */
    xor     %esi, %esi
    call    hypercall_page + __HYPERVISOR_xen_version * 32
    lea     verdict_fail(%rip), %rdx
    mov     $(verdict_fail_end - verdict_fail), %esi
    shr     $16, %eax
    cmp     $4, %eax                    /* a 4.x hypervisor */
    jne     1f
    lea     verdict_ok(%rip), %rdx
    mov     $(verdict_ok_end - verdict_ok), %esi
1:  xor     %edi, %edi
    call    hypercall_page + __HYPERVISOR_console_io * 32

    mov     $2, %edi                    /* SCHEDOP_shutdown */
    lea     shutdown_reason(%rip), %rsi /* SHUTDOWN_poweroff */
    call    hypercall_page + __HYPERVISOR_sched_op * 32
    ud2

    .balign 4096
    .globl hypercall_page
hypercall_page:
    .fill 4096, 1, 0

    .data
greeting:       .ascii "Hello from a GNU-built PV kernel\n"
greeting_end:
verdict_ok:     .ascii "Test result: SUCCESS\n"
verdict_ok_end:
verdict_fail:   .ascii "Test result: FAILURE\n"
verdict_fail_end:
    .balign 8
shutdown_reason: .long 0

    .bss
    .balign 16
    .space 8192
stack_top:
