"""The hypercall page Xen writes for a 64-bit PV kernel: one 32-byte stub per hypercall.

    push %rcx; push %r11; mov $nr, %eax; syscall; pop %r11; pop %rcx; ret
and for HYPERVISOR_iret, which does not return and expects the iret frame on the stack:
    push %rcx; push %r11; push %rax; mov $23, %eax; syscall
The rest of the page is int3 (0xcc).
"""
import struct

from pvshadow.shadow.abi.xen import HYPERVISOR_iret

STUB_SIZE = 32


def hypercall_page() -> bytes:
    page = bytearray(b'\xcc' * 4096)
    for nr in range(4096 // STUB_SIZE):
        if nr == HYPERVISOR_iret:
            stub = b'\x51\x41\x53\x50\xb8' + struct.pack('<I', nr) + b'\x0f\x05'
        else:
            stub = b'\x51\x41\x53\xb8' + struct.pack('<I', nr) + b'\x0f\x05\x41\x5b\x59\xc3'
        page[nr * STUB_SIZE:nr * STUB_SIZE + len(stub)] = stub
    return bytes(page)
