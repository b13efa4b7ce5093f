"""Per-vCPU processor state a PV guest sets through Xen: segment bases, the FPU's
task-switched flag, debug registers (shadow/debugregs.py arms them), I/O privilege
level."""
import struct

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EINVAL, ENOSYS
from pvshadow.shadow.hypercall.descriptors import descriptor_base, gdt_descriptor, loads_as_data_segment
from pvshadow.shadow.paging.x86 import is_canonical
from pvshadow.shadow.segments import map_ldt_page

CR0_TS = 1 << 3


def do_set_segment_base(v, which, base, *_):
    # Hypercalls come only from guest kernel mode (a user syscall bounces to the guest), so
    # the CPU holds the kernel GS base and the user one waits in gs_base_other.
    cpu = v.cpu
    if which in (xen.SEGBASE_FS, xen.SEGBASE_GS_KERNEL, xen.SEGBASE_GS_USER) and \
            not is_canonical(base):
        return -EINVAL
    if which == xen.SEGBASE_FS:
        cpu.set_reg('fs_base', base)
    elif which == xen.SEGBASE_GS_KERNEL:
        cpu.set_reg('gs_base', base)
    elif which == xen.SEGBASE_GS_USER:
        v.gs_base_other = base
    elif which == xen.SEGBASE_GS_USER_SEL:
        selector = base & 0xFFFF
        _load_user_gs_selector(v, selector | 3 if selector > 3 else selector)
    else:
        return -EINVAL
    return 0


def _load_user_gs_selector(v, selector):
    """Xen does swapgs; mov sel, %gs; swapgs, loading the null selector if the mov faults:
    the user GS base becomes the descriptor's, the kernel's is untouched, and the call
    succeeds either way."""
    # an LDT descriptor is read once its page is mapped (typed and checked: DPL raised)
    mapped = not selector & 4 or (selector >> 3) < v.ldt_ents and map_ldt_page(v, selector >> 12)
    desc = gdt_descriptor(v, selector) if mapped else None
    if selector & ~3 == 0 or not loads_as_data_segment(desc):
        selector, user_base = 0, 0
    else:
        user_base = descriptor_base(desc)
    cpu = v.cpu
    kernel_base = cpu.reg('gs_base')
    cpu.set_reg('gs', selector)           # may reload the hidden base from the descriptor
    cpu.set_reg('gs_base', kernel_base)
    v.gs_base_other = user_base


def do_fpu_taskswitch(v, set_ts, *_):
    cr0 = v.cpu.reg('cr0')
    v.cpu.set_reg('cr0', cr0 | CR0_TS if set_ts else cr0 & ~CR0_TS)
    return 0


def do_set_debugreg(v, reg, value, *_):
    return v.debug.set(reg, value)


def do_get_debugreg(v, reg, *_):
    return v.debug.get(reg)


def do_physdev_op(v, cmd, arg, *_):
    if cmd == xen.PHYSDEVOP_set_iopl:
        iopl = struct.unpack('<I', v.copy_from_guest(arg, 4))[0]
        if iopl > 3:
            return -EINVAL
        v.iopl = iopl
        return 0
    return -ENOSYS
