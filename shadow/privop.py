"""Port I/O from a PV guest, as Xen's emulate_privileged_op treats it.

A PV guest runs with the real IOPL at 0, so on hardware `in` and `out` raise #GP(0) and
reach Xen, which lets them through when the guest's virtual IOPL (PHYSDEVOP_set_iopl)
covers its mode: the kernel counts as ring 1 (ring 0 with VMASST_TYPE_architectural_iopl),
user mode as ring 3. A domain with no I/O ports of its own (every domain here) then reads
all ones, and its writes go nowhere; otherwise the #GP goes to the guest.

Unicorn performs port I/O at any privilege level, so the CPU hands each access to these
functions (shadow/cpu.py's I/O trap turns a refusal into the #GP).
"""
from typing import Optional

from shadow.abi.xen import VMASST_TYPE_architectural_iopl


def iopl_ok(vcpu) -> bool:
    """Xen's iopl_ok: the virtual IOPL against the guest's ring."""
    if vcpu.kernel_mode:
        ring = 0 if vcpu.domain.vm_assist >> VMASST_TYPE_architectural_iopl & 1 else 1
    else:
        ring = 3
    return ring <= vcpu.iopl


def port_read(vcpu, port: int, size: int) -> Optional[int]:
    """The value an `in` of size bytes reads, or None for a #GP."""
    if not iopl_ok(vcpu):
        return None
    return (1 << (8 * size)) - 1                 # no port is the domain's: all ones


def port_write(vcpu, port: int, size: int, value: int) -> bool:
    """Whether an `out` may go ahead (to nowhere); False for a #GP."""
    return iopl_ok(vcpu)
