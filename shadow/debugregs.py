"""A PV vCPU's debug registers: what set_debugreg/get_debugreg keep, with Xen's checks,
and the breakpoints they arm.

Unicorn ignores DR0-7 (writing DR0 and DR7 raises no #DB), so an armed breakpoint is a
Unicorn hook limited to its addresses, costing nothing elsewhere:

- an instruction breakpoint is a code hook on its address: the #DB is a fault, raised
  before the instruction runs, and RF in the flags the guest irets with lets that one
  instruction through (the handler sets it, as on hardware);
- a data breakpoint is a watch (shadow/watch.py): the #DB is a trap, raised after the
  instruction; the watch's notes say how Unicorn's memory hooks are made to serve.

Single-stepping (RFLAGS.TF) is Unicorn's own #DB; DR6.BS is set for it.

MOV SS and POP SS hold off the #DB of a data breakpoint they hit until the end of the next
instruction (the interrupt shadow). If that instruction enters Xen (syscall, int, int3, a
fault), the #DB arrives in Xen's context, where Xen drops it (XSA-260): the guest sees
only its own trap. Otherwise it is the guest's #DB after that instruction.
"""
from typing import NamedTuple

from pvshadow.shadow.abi.xen import EINVAL, ENODEV, EPERM, HYPERVISOR_VIRT_END
from pvshadow.shadow.privop import enters_xen, sets_ss_shadow
from pvshadow.shadow.watch import Watch, WatchHooks

# x86-defns.h: reserved bits, with a CPU policy that has neither RTM nor bus-lock detect
DR6_DEFAULT, DR6_ZEROS = 0xFFFF0FF0, 0x00001000
DR6_HITS = 0xF                          # B0-B3: which breakpoint matched
DR6_BS = 1 << 14                        # single step (RFLAGS.TF)
RFLAGS_TF, RFLAGS_RF = 1 << 8, 1 << 16
DR7_DEFAULT, DR7_ZEROS = 0x00000400, 0x0000D000 | 0x800
DR7_GD = 1 << 13                        # general detect: Xen keeps it for itself
DR7_ACTIVE = 0xFF                       # L0-L3 and G0-G3
RW_EXEC, RW_WRITE, RW_IO, RW_ACCESS = 0, 1, 2, 3
_LENGTH = (1, 2, 8, 4)                  # DR7 LEN encodings 00, 01, 10, 11
TRAP_DEBUG = 1
_KIND_NAMES = {RW_EXEC: 'instruction', RW_WRITE: 'write', RW_ACCESS: 'read/write'}


def breakpoint_addr_ok(address: int) -> bool:
    """Xen's __addr_ok: the lower canonical half, or above the hypervisor's area."""
    return address < (1 << 47) or address >= HYPERVISOR_VIRT_END


def adjust_dr6(value: int) -> int:
    return (value | DR6_DEFAULT) & ~DR6_ZEROS


def adjust_dr7(value: int) -> int:
    return (value & ~DR7_ZEROS) | DR7_DEFAULT


class Breakpoint(NamedTuple):
    index: int
    kind: int                           # RW_EXEC, RW_WRITE or RW_ACCESS
    address: int
    length: int


def armed_breakpoints(dr7: int, addresses) -> list:
    """The breakpoints DR7 enables, each with its aligned address and byte length. An
    instruction breakpoint's LEN is ignored, as it must be 00 to match on hardware."""
    found = []
    for i in range(4):
        if not (dr7 >> (2 * i)) & 3:
            continue
        kind = (dr7 >> (16 + 4 * i)) & 3
        if kind == RW_IO:
            continue                     # refused by set_debugreg without CR4.DE
        length = 1 if kind == RW_EXEC else _LENGTH[(dr7 >> (18 + 4 * i)) & 3]
        found.append(Breakpoint(i, kind, addresses[i] & ~(length - 1), length))
    return found


class DebugRegisters:
    def __init__(self, vcpu):
        self.vcpu = vcpu
        self.dr = [0, 0, 0, 0]
        self.dr6 = DR6_DEFAULT
        self.dr7 = DR7_DEFAULT
        self.breakpoints = []
        self.resume_at = None           # RF: the instruction breakpoint to let through once
        self.resumed = None             # ...and the one let through, until it completes
        self.step_after_iret = None     # TF: the early #DB to drop (note_iret)
        self._hooks = []                # instruction breakpoints' code hooks
        self.watch = WatchHooks(vcpu, self._data_hit)
        self._cpu = None

    # --- the hypercalls ------------------------------------------------------------------
    def set(self, reg: int, value: int) -> int:
        """set_debugreg: -EPERM for an address Xen owns or a privileged DR7 bit, -EINVAL
        for upper bits in DR6/DR7, -ENODEV for no such register (DR4/DR5 alias DR6/DR7,
        the guest's CR4.DE being clear)."""
        if reg < 4:
            if not breakpoint_addr_ok(value):
                return -EPERM
            self.dr[reg] = value
        elif reg in (4, 6):
            if value >> 32:
                return -EINVAL
            self.dr6 = adjust_dr6(value)
            return 0
        elif reg in (5, 7):
            if value >> 32:
                return -EINVAL
            value = adjust_dr7(value)
            if value & DR7_GD:
                return -EPERM
            if value & DR7_ACTIVE and any(((value >> (16 + 4 * i)) & 3) == RW_IO
                                          for i in range(4)):
                return -EPERM            # I/O breakpoints need CR4.DE
            self.dr7 = value
        else:
            return -ENODEV
        self._rearm()
        return 0

    def get(self, reg: int) -> int:
        if reg < 4:
            return self.dr[reg]
        if reg in (4, 6):
            return self.dr6
        if reg in (5, 7):
            return self.dr7
        return -ENODEV

    # --- arming -------------------------------------------------------------------------
    def _rearm(self) -> None:
        self.breakpoints = armed_breakpoints(self.dr7, self.dr)
        self.unload()
        cpu = self.vcpu.cpu
        if cpu.guest is self.vcpu:
            self.load(cpu)

    def load(self, cpu) -> None:
        """Put this vCPU's breakpoints on the physical CPU (it is about to run)."""
        if self._cpu is cpu:
            return
        self.unload()
        self._cpu = cpu
        for bp in self.breakpoints:
            if bp.kind == RW_EXEC:
                self._hooks.append(cpu.add_code_hook(bp.address, self._on_instruction))
        self.watch.watches = [Watch(bp.address, bp.length, bp.kind == RW_ACCESS, bp.index)
                              for bp in self.breakpoints if bp.kind != RW_EXEC]
        self.watch.load(cpu)
        self.vcpu.watches_changed()

    def unload(self) -> None:
        cpu, self._cpu = self._cpu, None
        if cpu is not None and self._hooks:
            cpu.remove_hooks(self._hooks)
        self._hooks = []
        if cpu is not None:
            self.watch.unload()
            self.vcpu.watches_changed()

    # --- hooks ----------------------------------------------------------------------------
    def _on_instruction(self, address: int) -> None:
        if self.vcpu.finishing_watch:
            return                       # a watch hit being finished: already checked
        if self.resume_at == address:
            self.resume_at = None        # RF: this instruction runs once unchecked
            self.resumed = address
            return
        v = self.vcpu
        if v.exit is not None or v.stepping:
            return
        hits = 0
        for bp in self.breakpoints:
            if bp.kind == RW_EXEC and bp.address == address:
                hits |= 1 << bp.index
        self.raise_debug(hits)          # a fault: RIP stays on the instruction

    def _data_hit(self, hit, mid_rep: bool) -> None:
        if not mid_rep and sets_ss_shadow(self.vcpu, hit.rip):
            return self._after_ss_shadow(hit.tags)
        self.raise_debug(hit.tags, resume_flag=mid_rep)

    def _after_ss_shadow(self, hits: int) -> None:
        """The data breakpoint of a MOV/POP SS: run the next instruction first (the run
        loop is stopped here), then the #DB, or nothing if it entered Xen."""
        v = self.vcpu
        cpu = v.cpu
        if enters_xen(v, cpu.rip):
            return                       # the instruction runs when the CPU resumes
        bounces = v.bounces
        v.finishing_watch = True         # its own accesses are inside the shadow too
        try:
            for _ in range(4):           # a fault the hypervisor resolves runs it again
                rip = cpu.rip
                v.domain.paging.prefault_code(v, rip)
                cpu.run(rip, count=1)
                if v.exit is not None or v.pending_step is not None or v.bounces != bounces:
                    return               # a fault or event: the #DB lands in Xen, dropped
                if cpu.rip != rip:
                    break
            else:
                return
        finally:
            v.finishing_watch = False
        self.raise_debug(hits)

    def fault_retried(self, rip: int) -> None:
        """A fault the hypervisor resolved restarts the instruction: one let through by RF
        is still let through (on hardware the fault's frame carries RF=1)."""
        if rip == self.resumed:
            self.resume_at = rip

    # --- the trap -------------------------------------------------------------------------
    def raise_debug(self, hits: int, resume_flag: bool = False) -> None:
        """Record which breakpoints matched in DR6 (B0-B3 replaced, the other bits kept,
        as Xen's x86_merge_dr6) and bounce #DB to the guest (RF in the frame for a trap
        between two iterations of a rep string instruction)."""
        self.dr6 = adjust_dr6((self.dr6 & ~DR6_HITS) | hits)
        v = self.vcpu
        tracer = v.domain.tracer
        if tracer is not None:
            which = ' '.join(f'DR{bp.index} ({_KIND_NAMES[bp.kind]} {bp.address:#x})'
                             for bp in self.breakpoints if hits >> bp.index & 1)
            tracer({'type': 'exception', 'vector': TRAP_DEBUG, 'rip': v.cpu.rip,
                    'dr6': self.dr6, 'action': f'debug register hit: {which}: #DB to the guest'})
        v.inject_trap(TRAP_DEBUG, resume_flag=resume_flag)

    def single_step(self) -> bool:
        """A #DB trap for RFLAGS.TF (Unicorn raises it after the instruction): DR6.BS
        accumulates, the breakpoint bits clear, as Xen's x86_merge_dr6. False if it was
        the early trap note_iret expects, dropped."""
        if self.step_after_iret == self.vcpu.cpu.rip:
            self.step_after_iret = None
            return False
        self.dr6 = adjust_dr6((self.dr6 & ~DR6_HITS) | DR6_BS)
        self.vcpu.inject_trap(TRAP_DEBUG)
        return True

    def note_iret(self, rip: int, rflags: int) -> None:
        """HYPERVISOR_iret to rip with these flags. RF lets an instruction breakpoint
        there through once. With TF, Unicorn (QEMU rechecks TF at the end of `syscall`)
        raises #DB before the first instruction runs; Xen returns with iretq, after which
        the trap comes after that instruction, so the early one is dropped."""
        self.resume_at = rip if rflags & RFLAGS_RF else None
        self.step_after_iret = rip if rflags & RFLAGS_TF else None
