"""Entering the guest kernel the way Xen's create_bounce_frame does, and leaving it with
HYPERVISOR_iret (xen/arch/x86/pv/traps.c, iret.c, x86_64/entry.S).

A bounce pushes { RCX, R11, [ERRCODE,] RIP, CS, RFLAGS, RSP, SS } on the guest kernel's
stack (the one it runs on, or the kernel stack stack_switch named when it was in user
mode), masks events when the trap asks it, and continues at the handler on
FLAT_KERNEL_CS/SS. A user-mode syscall bounces to the syscall (or syscall32) callback
with the entry point's selectors in the frame; HYPERVISOR_iret pops its frame and loads
the selectors it holds.
"""
import struct
from typing import Optional

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import (CALLBACKTYPE_syscall32, FLAT_KERNEL_CS64, FLAT_KERNEL_SS64,
                                     HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START)
from pvshadow.shadow.cpu import (RFLAGS_AC, RFLAGS_DF, RFLAGS_IF, RFLAGS_NT, RFLAGS_RF,
                                 RFLAGS_TF, RFLAGS_VM)
from pvshadow.shadow.exits import NO_RETURN, GuestFault
from pvshadow.shadow.privop import architectural_iopl
from pvshadow.shadow.segments import load_cs_ss, syscall_selectors

# Bounce flags (Xen's TBF_*)
TBF_EXCEPTION_ERRCODE = 2
TBF_INTERRUPT = 8                       # the bounce masks event delivery
TRAP_invalid_op = 6


def create_bounce_frame(v, handler: int, bounce_flags: int,
                        error_code: Optional[int] = None, rcx: Optional[int] = None,
                        r11: Optional[int] = None, resume_flag: bool = False,
                        selectors: Optional[tuple] = None) -> None:
    """Push { RCX, R11, [ERRCODE,] RIP, CS, RFLAGS, RSP, SS } on the guest kernel stack
    and continue at handler in guest kernel mode, on FLAT_KERNEL_CS/SS. resume_flag
    sets RF in the frame's RFLAGS, as the hardware does for a fault; selectors: the
    (CS, SS) a syscall entry frames instead of the loaded ones."""
    cpu = v.cpu
    rip = cpu.rip
    v.bounces += 1
    v.debug.resumed = None
    rsp, rflags, cs, ss, saved_rcx, saved_r11 = cpu.regs('rsp', 'rflags', 'cs', 'ss', 'rcx', 'r11')
    loaded = (cs, ss)
    if selectors is not None:
        cs, ss = selectors
    if rcx is None:
        rcx, r11 = saved_rcx, saved_r11
    if v.kernel_mode:
        stack = rsp
        cs &= ~3                                  # tell the guest it was in kernel mode
    else:
        v.toggle_guest_mode()
        stack = v.kernel_sp
    stack &= ~0xF
    if HYPERVISOR_VIRT_START <= stack < HYPERVISOR_VIRT_END + 60:
        return v.crash(f'bounce frame at {stack:#x} would be in the hypervisor area')
    saved_mask = v.upcall_mask()
    if bounce_flags & TBF_INTERRUPT:
        v.set_upcall_mask(1)
    frame_rflags = (rflags & ~RFLAGS_IF) | (0 if saved_mask else RFLAGS_IF)
    if resume_flag:
        frame_rflags |= RFLAGS_RF
    if architectural_iopl(v.domain):
        frame_rflags |= v.iopl << 12       # the guest sees its virtual IOPL
    frame = [ss, rsp, frame_rflags, (saved_mask << 32) | (cs & 0xFFFF), rip]
    if error_code is not None:
        frame.append(error_code)
    frame += [r11, rcx]
    frame.reverse()
    stack -= 8 * len(frame)
    try:
        v.copy_to_guest(stack, struct.pack(f'<{len(frame)}Q', *frame))
    except GuestFault as fault:
        return v.crash(f'fault writing the bounce frame: {fault}')
    rflags &= ~(RFLAGS_AC | RFLAGS_VM | RFLAGS_RF | RFLAGS_NT | RFLAGS_TF)
    cpu.set_regs(rsp=stack, rflags=rflags)
    load_cs_ss(v, FLAT_KERNEL_CS64, FLAT_KERNEL_SS64, loaded)
    cpu.rip = handler


def bounce_user_syscall(v) -> None:
    """A guest-user syscall goes to the registered syscall callback in kernel mode
    (syscall32 from compatibility-mode code), with the hardware's rcx (return
    address) and r11 (rflags) and the entry point's selectors in the frame. With no
    callback it is #UD at the syscall, as Xen's switch_to_kernel does."""
    cpu = v.cpu
    rflags, cs = cpu.regs('rflags', 'cs')
    selectors = syscall_selectors(v, cs)
    callback = v.syscall_callback if selectors[0] == FLAT_KERNEL_CS64 else \
        v.other_callbacks.get(CALLBACKTYPE_syscall32, (0, 0))[0]
    if not callback:
        cpu.rip = cpu.rip - 2
        return v.inject_trap(TRAP_invalid_op)
    v.create_bounce_frame(callback, TBF_INTERRUPT if v.syscall_disables_events else 0,
                             rcx=cpu.rip, r11=rflags, selectors=selectors)
    cpu.set_reg('rflags', cpu.reg('rflags') & ~RFLAGS_DF)


def do_iret(v):
    """HYPERVISOR_iret: pop { RAX, R11, RCX, FLAGS, RIP, CS, RFLAGS, RSP, SS }."""
    cpu = v.cpu
    rsp = cpu.reg('rsp')
    try:
        ctx = v.read_struct(xen.iret_context, rsp)
    except GuestFault as fault:
        v.crash(f'Fault while reading IRET context from guest stack: {fault}')
        return NO_RETURN
    if ctx.cs & 3 == 3:
        if not v.guest_table_user:
            v.crash('Guest switching to user mode with no user page tables')
            return NO_RETURN
        v.toggle_guest_mode()
    if architectural_iopl(v.domain):
        v.iopl = (ctx.rflags >> 12) & 3      # the IOPL the kernel irets with is its own
    regs = dict(rax=ctx.rax, rsp=ctx.rsp,
                rflags=(ctx.rflags & ~((3 << 12) | RFLAGS_VM)) | RFLAGS_IF)
    if not ctx.flags & xen.VGCF_in_syscall:
        regs.update(r11=ctx.r11, rcx=ctx.rcx)
    cs, ss = (ctx.cs & 0xFFFF) | 3, (ctx.ss & 0xFFFF) | 3
    if not load_cs_ss(v, cs, ss):
        # Xen's iretq faults there and the domain crashes (no failsafe bounce here).
        v.crash(f'iret to CS {cs:#x} / SS {ss:#x}, which the CPU refuses')
        return NO_RETURN
    cpu.set_regs(**regs)
    cpu.rip = ctx.rip
    if ctx.rflags & (RFLAGS_RF | RFLAGS_TF):
        v.debug.note_iret(ctx.rip, ctx.rflags)
    v.set_upcall_mask(0 if ctx.rflags & RFLAGS_IF else 1)
    return NO_RETURN
