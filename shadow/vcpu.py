"""A PV vCPU: its guest-visible state, and what happens when the guest needs Xen.

Guest kernel and guest user both run at CPL3 (64-bit PV); the vCPU keeps the mode bit
itself and switches between the kernel and user page tables on every mode change.
Exceptions and guest-user syscalls reach the guest kernel through Xen's PV64 bounce
frame { RCX, R11, [ERRCODE,] RIP, CS, RFLAGS, RSP, SS } (create_bounce_frame in Xen's
x86_64/entry.S); the iret hypercall takes it back down.
"""
import struct
from typing import Optional

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import (DOMID_SELF, EINVAL, FLAT_KERNEL_CS64, FLAT_KERNEL_SS64,
                                     HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START, TI_DPL_MASK,
                                     TI_IF)
from pvshadow.shadow.bounce import (TBF_INTERRUPT, bounce_user_syscall, create_bounce_frame,
                                    do_iret)
from pvshadow.shadow.cpu import RFLAGS_TF, PhysicalCpu
from pvshadow.shadow.cpuid import (CPUID_INSN, FORCED_EMULATION_PREFIX, deliver_pending_gp,
                                   emulate_cpuid, on_cpuid)
from pvshadow.shadow.debugregs import DebugRegisters
# GuestFault and NO_RETURN are exits' (re-exported: the hypercall modules import them here)
from pvshadow.shadow.exits import NO_RETURN, Exit, ExitReason, GuestFault  # noqa: F401
from pvshadow.shadow.paging.emulate import PtWriteEmulator
from pvshadow.shadow.paging.x86 import PFEC_USER, PFEC_WRITE, translate, walk
from pvshadow.shadow.privop import (GP_EMULATED, GP_STACK, emulate_fsgsbase,
                                   general_protection, port_read, port_write)
from pvshadow.shadow.segments import ldt_fault, load_cs_ss, syscall_selectors
from pvshadow.shadow.watch import WatchHooks

TRAP_divide_error, TRAP_debug, TRAP_int3, TRAP_overflow = 0, 1, 3, 4
TRAP_invalid_op, TRAP_double_fault, TRAP_gp_fault, TRAP_page_fault = 6, 8, 13, 14
TRAP_stack_error = 12
VECTORS_WITH_ERROR_CODE = frozenset((8, 10, 11, 12, 13, 14, 17, 21))
# Fault-class exceptions: the hardware pushes RF=1 with them, and Xen's bounce frame
# passes it on (an instruction breakpoint's #DB, a fault too, is the exception).
FAULT_VECTORS = frozenset((0, 5, 6, 7, 10, 11, 12, 13, 14, 16, 17, 19))
TRAP_NAMES = {0: 'divide error', 1: 'debug', 2: 'nmi', 3: 'int3', 4: 'overflow', 5: 'bounds',
              6: 'invalid opcode', 7: 'device not available', 8: 'double fault',
              10: 'invalid TSS', 11: 'segment not present', 12: 'stack error',
              13: 'general protection', 14: 'page fault', 16: 'fpu error',
              17: 'alignment check', 18: 'machine check', 19: 'simd error'}

# vcpu_info field offsets (shadow.abi.xen.vcpu_info)
_UPCALL_PENDING = xen.vcpu_info.evtchn_upcall_pending.offset
_UPCALL_MASK = xen.vcpu_info.evtchn_upcall_mask.offset
_CR2 = xen.vcpu_info.cr2.offset


_ARG_REGS = ('rdi', 'rsi', 'rdx', 'r10', 'r8', 'r9')
PREEMPT_CHUNK = 512                       # items a list hypercall does between preemptions


# What a resolved #PF did, in a tracer's words (shadow.paging's last_outcome).
_OUTCOME_ACTIONS = {'shadow': 'shadow entry filled, instruction retried',
                    'spurious': 'spurious: shadow already right, TLB flushed',
                    'access': 'mem_access: vm_event sent or access let through once',
                    'mmio': 'write to a read-only region: mmio exit'}

class VCpu:
    def __init__(self, domain, vcpu_id: int, cpu: PhysicalCpu):
        self.domain = domain
        self.vcpu_id = vcpu_id
        self.cpu = cpu
        self.kernel_mode = True
        self.guest_table = 0              # L4 mfn of the kernel address space
        self.guest_table_user = 0         # L4 mfn of the user address space (0: none)
        self.trap_ctxt = [(0, 0)] * 256   # (address, flags) per vector: the virtual IDT
        self.event_callback = 0
        self.failsafe_callback = 0
        self.syscall_callback = 0
        self.syscall_disables_events = False
        self.kernel_ss = FLAT_KERNEL_SS64
        self.kernel_sp = 0
        self.other_callbacks = {}         # syscall32, sysenter, nmi: recorded, never raised
        self.gs_base_other = 0            # the GS base of the mode not running (swapgs)
        self.guest_cr4 = 0                # the guest-controlled bits of its virtual CR4
        self.cpuid_faulting = False       # MSR_INTEL_MISC_FEATURES_ENABLES bit 0
        self.pending_gp_rip = None        # a user cpuid's #GP, due before the next instruction
        self.debug = DebugRegisters(self)
        self.watchpoints = WatchHooks(      # a debugger's, which the guest does not see
            self, lambda hit, mid_rep: self.domain.watchpoint_hit(self, hit))
        self.finishing_watch = False      # a watch hit's instruction is being re-run
        self.bounces = 0                  # exceptions and events delivered to the guest
        self.singleshot = None            # deadline (ns of virtual time) or None
        self.periodic = None              # (period ns, next deadline) or None
        self.poll_deadline = None         # sched_op poll's timeout
        self.iopl = 0
        self._cr2 = 0
        self.gdt_frames = []              # the guest's GDT (typed descriptor pages)
        self.gdt_entries = 0
        self.ldt_base = 0                 # the guest's LDT: linear address, entries
        self.ldt_ents = 0
        self.ldt_frames = {}              # LDT page -> the frame mapped there so far
        self.entered = False
        self.exit: Optional[Exit] = None
        self.hypercalls = domain.hypercalls
        self.pending_step = None          # a page-table store for the run loop to single-step
        self.stepping = False
        self.step_grant = False           # ... and it runs under a mem_access grant
        self.paused_for_event = False     # waiting for a vm_event response
        self.event_fault = None           # (va, error code, walk, rip) of the access it waits on
        self.online = vcpu_id == 0
        self.initialised = vcpu_id == 0
        self.blocked = False
        self.saved_state = None           # the CPU context while another vCPU runs
        self.start_regs = None            # registers for a secondary vCPU's first entry
        from pvshadow.shadow.runstate import Runstate
        self.runstate = Runstate(self, 0)
        self.emulate_once = False         # the listener asked to let the next access through
        self.emulator = PtWriteEmulator(self)
        self.continuation = None          # (hypercall nr, args) the guest will re-issue
        self.altp2m_idx = 0               # the p2m view it runs in (translated guests)
        self.ve_info_gfn = None           # its #VE information page (altp2m notify)
        self.monitor_step = False         # a listener's single-step monitoring (TF is ours)

    # --- vcpu_info ----------------------------------------------------------------------------
    @property
    def vcpu_info_maddr(self) -> int:
        return (self.domain.shared_info_mfn << 12) + self.vcpu_id * 64

    def upcall_mask(self) -> int:
        return self.domain.mem.view[self.vcpu_info_maddr + _UPCALL_MASK]

    def set_upcall_mask(self, value: int) -> None:
        self.domain.mem.view[self.vcpu_info_maddr + _UPCALL_MASK] = value

    def upcall_pending(self) -> int:
        return self.domain.mem.view[self.vcpu_info_maddr + _UPCALL_PENDING]

    def set_cr2(self, va: int) -> None:
        """The guest's CR2, kept as Xen keeps ctrlreg[2] and shown in vcpu_info."""
        self._cr2 = va
        self.domain.mem.write_u64(self.vcpu_info_maddr + _CR2, va)

    def cr2(self) -> int:
        return self._cr2

    # --- guest memory -------------------------------------------------------------------------
    def current_table(self) -> int:
        return self.guest_table if self.kernel_mode else self.guest_table_user

    def translate(self, va: int, write: bool = False) -> int:
        """The machine address behind a guest virtual address, as a hypervisor access
        through the guest's current tables sees it (A/D bits set as hardware would)."""
        if HYPERVISOR_VIRT_START <= va < HYPERVISOR_VIRT_END:
            raise GuestFault(f'{va:#x} is in the hypervisor area')
        mem = self.domain.mem
        paging = self.domain.paging
        if paging.translated:
            maddr = paging.guest_translate(self, va, write)
            if maddr is None:
                raise GuestFault(f'{va:#x}: no {"writable " if write else ""}RAM behind it '
                                 'in the guest\'s tables and p2m')
            return maddr
        maddr = translate(mem.q, self.current_table(), va, write)
        if maddr is None:
            gw = walk(mem.read_u64, self.current_table(), va, PFEC_WRITE if write else 0)
            # a walk translate() refused though it succeeds: its frame is past RAM
            raise GuestFault(f'{va:#x}: ' + (gw.reason if not gw.ok else
                                              'maps a frame past the end of RAM'))
        d = self.domain
        owner = d.frames.owner[maddr >> 12]
        if owner != d.domid and not d.types.may_map_foreign(d.domid, owner):
            raise GuestFault(f'{va:#x} maps a frame the domain may not reach')
        regions = self.domain.paging.regions
        if write and regions is not None and maddr >> 12 in regions.by_mfn:
            raise GuestFault(f'{va:#x} is in a read-only region')
        return maddr

    def copy_from_guest(self, va: int, size: int) -> bytes:
        out = bytearray()
        mem = self.domain.mem
        while size > 0:
            chunk = min(size, 0x1000 - (va & 0xFFF))
            maddr = self.translate(va)
            out += mem.view[maddr:maddr + chunk]
            va, size = va + chunk, size - chunk
        return bytes(out)

    def copy_to_guest(self, va: int, data: bytes) -> None:
        """Through the guest's tables, each frame under a transient writable reference."""
        d = self.domain
        pos = 0
        while pos < len(data):
            chunk = min(len(data) - pos, 0x1000 - (va & 0xFFF))
            maddr = self.translate(va, write=True)
            # a foreign frame the domain maps (shadow.xsm) is written as its owner's
            if not d.types.write_frame(maddr, data[pos:pos + chunk], d.frames.owner[maddr >> 12]):
                raise GuestFault(f'{va:#x} maps a frame that may not be written')
            d.paging.guest_wrote(maddr, chunk)       # a translated guest's shadows follow
            va, pos = va + chunk, pos + chunk

    def read_u64(self, va: int) -> int:
        return struct.unpack('<Q', self.copy_from_guest(va, 8))[0]

    def read_struct(self, cls, va: int):
        return cls.from_buffer_copy(self.copy_from_guest(va, cls.size()))

    def read_array(self, cls, va: int, count: int):
        size = cls.size()
        raw = self.copy_from_guest(va, size * count)
        return [cls.from_buffer_copy(raw, i * size) for i in range(count)]

    # --- mode switches ----------------------------------------------------------------------
    def load_cr3(self) -> None:
        if self.cpu.guest not in (None, self):
            return          # another vCPU is on the CPU: this one's root loads at its switch-in
        self.cpu.set_cr3(self.domain.paging.cr3_for_vcpu(self))
        if self.domain.paging.mappings_changed is not None:
            self.mappings_changed()

    # --- watches (the guest's data breakpoints, a debugger's watchpoints) ----------------------
    def load_watches(self, cpu) -> None:
        self.debug.load(cpu)
        self.watchpoints.load(cpu)
        self.watches_changed()
        cpu.watch_user_instructions(self.cpuid_faulting)

    def unload_watches(self) -> None:
        self.debug.unload()
        self.watchpoints.unload()
        self.watches_changed()
        self.cpu.watch_user_instructions(False)

    def watches_changed(self) -> None:
        """Page-table writes tell the loaded vCPU's watches to follow their addresses;
        with none, the write path makes no call."""
        if self.cpu.guest is self:
            active = self.debug.watch.active or self.watchpoints.active
            self.domain.paging.mappings_changed = self.mappings_changed if active else None

    def mappings_changed(self) -> None:
        for hooks in (self.debug.watch, self.watchpoints):
            if hooks.active:
                hooks.mappings_changed()

    def toggle_guest_mode(self) -> None:
        """Kernel <-> user: swap page tables and GS bases, as Xen's toggle_guest_mode."""
        self.kernel_mode = not self.kernel_mode
        gs = self.cpu.reg('gs_base')
        self.cpu.set_reg('gs_base', self.gs_base_other)
        self.gs_base_other = gs
        self.load_cr3()

    # --- stopping --------------------------------------------------------------------------
    def request_exit(self, exit_: Exit) -> None:
        if self.exit is None:
            self.exit = exit_
        self.cpu.stop()

    def request_step(self, req) -> None:
        """Ask the run loop to single-step the faulting store (see paging.emulate)."""
        if self.stepping:
            what = ('needs a second page granted by mem_access (e.g. a read watch over the '
                    'code that reads)' if req.grant_flags else 'writes a second page-table page')
            return self.request_exit(Exit(ExitReason.INTERNAL_ERROR,
                                          message=f'the single-stepped instruction {what}; '
                                                  'cannot emulate',
                                          registers=self.cpu.dump()))
        self.pending_step = req
        self.cpu.stop()

    def crash(self, message: str) -> None:
        """domain_crash: the domain ends with a crash exit and a register dump."""
        self.domain.log(f'domain_crash: d{self.domain.domid}v{self.vcpu_id}: {message}')
        self.request_exit(Exit(ExitReason.CRASH, message=message, registers=self.cpu.dump()))

    # --- exceptions ---------------------------------------------------------------------------
    def on_exception(self, vector: int, error_code: int, software: bool) -> None:
        if self.exit is not None:
            return self.cpu.stop()
        if self.pending_gp_rip is not None and deliver_pending_gp(self):
            return                        # the faulting cpuid's #GP comes first
        tracer = self.domain.tracer
        if tracer is not None:
            rip = self.cpu.rip
        if software:
            self._software_interrupt(vector)
            if tracer is not None:
                tracer({'type': 'exception', 'vector': vector, 'software': True, 'rip': rip,
                        'action': 'int N'})
            return
        if vector == TRAP_page_fault:
            cr2 = self.cpu.fault_cr2
            if self.ldt_ents and ldt_fault(self, cr2, error_code):
                return
            paging = self.domain.paging
            guest_error = paging.page_fault(self, cr2, error_code)
            if guest_error is None:
                if self.debug.resumed is not None:
                    self.debug.fault_retried(self.cpu.rip)
                if tracer is None:
                    return                # the common case: a shadow fill, nobody watching
                kind = paging.last_outcome
                action = _OUTCOME_ACTIONS.get(kind, kind)
            elif guest_error & PFEC_WRITE and self.emulator.try_emulate(
                    cr2, guest_error, paging.last_fault_leaf):
                kind, action = 'pt-write', 'page-table store emulated'
            else:
                self.inject_page_fault(cr2, guest_error)
                kind, action = 'guest', 'bounced to the guest\'s #PF handler'
                error_code = guest_error
            if tracer is not None:
                tracer({'type': 'fault', 'kind': kind, 'vector': 14, 'va': cr2,
                        'error_code': error_code, 'rip': rip, 'action': action})
            return
        action = 'bounced to the guest'
        gp = general_protection(self) if vector == TRAP_gp_fault and error_code == 0 else ''
        if gp == GP_EMULATED:
            action = 'privileged instruction emulated'
        elif gp == GP_STACK:
            self.inject_trap(TRAP_stack_error, 0)
            action = 'a non-canonical stack access: #SS(0) to the guest'
        elif vector in VECTORS_WITH_ERROR_CODE:
            self.inject_trap(vector, error_code)
        elif vector == TRAP_debug and self.monitor_step:
            from pvshadow.shadow.mem_access import singlestep_event
            singlestep_event(self)                 # the listener's step, not the guest's
            action = 'single step: a vm_event for the listener'
        elif vector == TRAP_debug:                 # the only #DB Unicorn raises itself: TF
            if self.debug.single_step():
                action = 'single step (DR6.BS): bounced to the guest'
            else:
                action = 'single step: the early trap after HYPERVISOR_iret, dropped'
        else:
            self.inject_trap(vector)
        if tracer is not None:
            tracer({'type': 'exception', 'vector': vector, 'error_code': error_code,
                    'rip': rip, 'action': action if self.exit is None else 'domain crashed'})

    def on_breakpoint(self, address: int) -> None:
        d = self.domain
        if d.skip_breakpoint == address:
            d.skip_breakpoint = None           # resuming from this very breakpoint
            return
        if d.tracer is not None:
            d.tracer({'type': 'breakpoint', 'rip': address})
        else:
            d.request_stop(f'breakpoint at {address:#x}')

    def on_invalid_opcode(self) -> None:
        """#UD, as Unicorn reports it. icebp (0xf1), which Unicorn does not implement,
        is what the hardware makes of it: a #DB trap after the instruction. A cpuid
        behind Xen's forced-emulation prefix is emulated, as Xen does for PV guests."""
        if self.exit is not None:
            return self.cpu.stop()
        rip = self.cpu.rip
        code = self.emulator.fetch_code(rip)
        if code[:1] == b'\xf1':
            self.cpu.rip = rip + 1
            return self.inject_trap(TRAP_debug)
        if emulate_fsgsbase(self, rip):
            return
        fep_cpuid = FORCED_EMULATION_PREFIX + CPUID_INSN
        if code.startswith(fep_cpuid):
            if self.cpuid_faulting and not self.kernel_mode:
                # emulate_forced_invalid_op: #GP in place of #UD, at the cpuid
                self.cpu.rip = rip + len(FORCED_EMULATION_PREFIX)
                return self.inject_trap(TRAP_gp_fault, 0)
            return self._forced_cpuid(rip + len(fep_cpuid))
        return self.inject_trap(TRAP_invalid_op)

    def _forced_cpuid(self, next_rip: int) -> None:
        emulate_cpuid(self)
        self.cpu.rip = next_rip
        if self.cpu.reg('rflags') & RFLAGS_TF:
            self.debug.single_step()      # pv_emul_instruction_done: the step's #DB

    # --- CPUID faulting (shadow.cpuid) ----------------------------------------------------------
    def on_cpuid(self) -> bool:
        return self.exit is None and on_cpuid(self)

    def on_user_instruction(self) -> None:
        deliver_pending_gp(self)

    def set_cpuid_faulting(self, on: bool) -> None:
        self.cpuid_faulting = on
        if self.cpu.guest is self:
            self.cpu.watch_user_instructions(on)

    def on_port_in(self, port: int, size: int):
        """An `in`: the value it reads, or None for a #GP (shadow/privop.py)."""
        return port_read(self, port, size)

    def on_port_out(self, port: int, size: int, value: int) -> bool:
        return port_write(self, port, size, value)

    def _software_interrupt(self, vector: int) -> None:
        """`int N`: vectors 3 and 4 have DPL3 gates in Xen's IDT; the others fault with
        #GP((N << 3) | 2) unless the guest's own trap-table DPL permits (permit_softint)."""
        if vector in (TRAP_int3, TRAP_overflow):
            return self.inject_trap(vector)
        address, flags = self.trap_ctxt[vector]
        if (flags & TI_DPL_MASK) >= (1 if self.kernel_mode else 3):
            return self.inject_trap(vector)
        self.cpu.rip = self.cpu.rip - 2            # a #GP points at the int instruction
        return self.inject_trap(TRAP_gp_fault, (vector << 3) | 2)

    def inject_page_fault(self, cr2: int, error_code: int) -> None:
        """The guest's own #PF: CR2 goes to vcpu_info, the U bit says the guest mode."""
        self.set_cr2(cr2)
        error_code &= ~PFEC_USER
        if not self.kernel_mode:
            error_code |= PFEC_USER
        self.inject_trap(TRAP_page_fault, error_code)

    def inject_trap(self, vector: int, error_code: Optional[int] = None,
                    resume_flag: Optional[bool] = None) -> None:
        address, flags = self.trap_ctxt[vector]
        if not address:
            ec = f', ec={error_code:04x}' if error_code is not None else ''
            return self.crash(f'Unhandled {TRAP_NAMES.get(vector, "trap")} fault/trap '
                              f'[#{vector}{ec}]')
        bounce = TBF_INTERRUPT if flags & TI_IF else 0
        if resume_flag is None:
            resume_flag = vector in FAULT_VECTORS
        self.create_bounce_frame(address, bounce, error_code, resume_flag=resume_flag)

    def create_bounce_frame(self, handler: int, bounce_flags: int, *args, **how) -> None:
        create_bounce_frame(self, handler, bounce_flags, *args, **how)

    # --- syscall: hypercalls from guest kernel, system calls from guest user -----------------
    def on_syscall(self) -> None:
        cpu = self.cpu
        if self.exit is not None:
            return cpu.stop()
        if not self.kernel_mode:
            return bounce_user_syscall(self)
        nr, a1, a2, a3, a4, a5, a6 = cpu.hypercall_registers()
        tracer = self.domain.tracer
        if tracer is not None:
            rip = cpu.rip
        rc = self.hypercalls.call(self, nr, (a1, a2, a3, a4, a5, a6))
        if tracer is not None:
            tracer({'type': 'hypercall', 'nr': nr, 'name': xen.HYPERCALL_NAMES.get(nr, str(nr)),
                    'args': [a1, a2, a3, a4, a5], 'rc': None if rc is NO_RETURN else rc,
                    'rip': rip})
        if rc is not NO_RETURN:
            # As the hardware syscall/sysret pair does: rcx = return address, r11 = rflags,
            # and sysret's flat CS and SS, whatever the guest had loaded.
            rflags, cs, ss = cpu.regs('rflags', 'cs', 'ss')
            cpu.set_regs(rax=rc, rcx=cpu.rip, r11=rflags)
            if (cs, ss) != (FLAT_KERNEL_CS64, FLAT_KERNEL_SS64):
                load_cs_ss(self, *syscall_selectors(self, cs), (cs, ss))
        elif self.continuation is not None:
            nr, args = self.continuation
            self.continuation = None
            cpu.set_regs(rax=nr, **dict(zip(_ARG_REGS, args)))
            cpu.rip = cpu.rip - 2             # the syscall runs again: the CPU gets a turn
        self.check_events()

    # --- preemption ---------------------------------------------------------------------------
    def preempt_check(self, done: int) -> bool:
        """hypercall_preempt_check: a long hypercall gives the CPU back (and so the run's
        watchdog its chance) after every PREEMPT_CHUNK items, as a continuation."""
        return done > 0 and done % PREEMPT_CHUNK == 0

    def create_continuation(self, nr: int, *args):
        """hypercall_create_continuation: the guest re-executes the syscall with these
        arguments in rdi, rsi, rdx, r10, r8, r9."""
        self.continuation = (nr, args)
        return NO_RETURN

    def has_deadline(self) -> bool:
        """next_deadline() is not None, without building its list (asked at every run)."""
        return self.singleshot is not None or self.poll_deadline is not None or \
            bool(self.periodic)

    def next_deadline(self):
        deadlines = [t for t in (self.singleshot, self.poll_deadline,
                                 self.periodic[1] if self.periodic else None) if t is not None]
        return min(deadlines) if deadlines else None

    def fire_timers(self, now: int) -> None:
        """Raise VIRQ_TIMER for every timer due by now; wake a poll that timed out."""
        d = self.domain
        due = False
        if self.singleshot is not None and self.singleshot <= now:
            self.singleshot, due = None, True
        if self.periodic is not None and self.periodic[1] <= now:
            period, deadline = self.periodic
            deadline += ((now - deadline) // period + 1) * period
            self.periodic, due = (period, deadline), True
        if due:
            port = d.evtchn.virqs.get((xen.VIRQ_TIMER, self.vcpu_id))
            if port is not None:
                d.evtchn.set_pending(port)
        if self.poll_deadline is not None and self.poll_deadline <= now:
            self.poll_deadline = None
            if self.blocked:
                self.blocked = False
                self.runstate.change(xen.RUNSTATE_runnable, now)
        d.update_time(self)

    def check_events(self) -> None:
        """On the way back to the guest (Xen's test_guest_events): an upcall pending and
        not masked goes to the event callback, masking further upcalls."""
        mem = self.domain.mem.view
        info = self.vcpu_info_maddr
        if self.exit is None and mem[info + _UPCALL_PENDING] and not mem[info + _UPCALL_MASK] \
                and self.event_callback and self.cpu.guest is self:
            self.create_bounce_frame(self.event_callback, TBF_INTERRUPT)

    def do_iret(self):
        return do_iret(self)

    # --- state for the guest ----------------------------------------------------------------
    def set_guest_table(self, mfn: int, user: bool) -> int:
        """MMUEXT_NEW_BASEPTR / NEW_USER_BASEPTR: take the new root's reference first,
        then drop the old one; reload CR3 if the running mode uses it."""
        paging = self.domain.paging
        if user and mfn == 0:
            rc = 0
        else:
            mfn = paging.root_frame(mfn)          # a translated guest names a gfn
            if mfn is None:
                return -EINVAL
            rc = paging.get_root(mfn)
            if rc:
                return rc
        old = self.guest_table_user if user else self.guest_table
        if user:
            self.guest_table_user = mfn
        else:
            self.guest_table = mfn
        if self.kernel_mode != user:
            self.load_cr3()
        if old:
            paging.put_root(old)
        return rc

    def domid_ok(self, domid: int) -> bool:
        return domid in (DOMID_SELF, self.domain.domid)

