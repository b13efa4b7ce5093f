# hello: the smallest PV kernel. Prints a greeting through HYPERVISOR_console_io and
# reports SUCCESS; anything else (no output, a crash) shows the boot path is broken.
.include "pv.inc"

test_main:
    lea rdi, [rip + greeting]
    call puts
    ret

greeting: .asciz "Hello from a PV guest on pvshadow!\n"
