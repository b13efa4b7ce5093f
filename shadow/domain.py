"""A PV domain: its vCPUs, its console, its paging mode and the run loop (its memory:
shadow.physmap)."""
import struct
import time
from array import array
from collections import Counter, deque
from typing import Callable, List, Optional

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import DOMID_XEN, EINVAL, EOPNOTSUPP, EPERM
from pvshadow.shadow.console import console_io_tail, drop_echo
from pvshadow.shadow.cpu import CpuError, HypervisorError, PhysicalCpu, RFLAGS_IF
from pvshadow.shadow.debugregs import breakpoint_addr_ok
from pvshadow.shadow.exits import Exit, ExitReason, interrupted
from pvshadow.shadow.hypercall import HypercallTable, default_handlers
from pvshadow.shadow.hypercall.descriptors import set_gdt
from pvshadow.shadow.machine import FrameTable, MachineMemory
from pvshadow.shadow.paging.direct import DirectPaging
from pvshadow.shadow.paging.emulate import single_step
from pvshadow.shadow.paging.shadow import DEFAULT_POOL_PAGES, ShadowPaging, ShadowPool
from pvshadow.shadow.paging.types import PageTypes
from pvshadow.shadow.physmap import DomainMemory, ReverseP2m
from pvshadow.shadow.segments import destroy_ldt, ldt_args_ok, load_ldt, set_ldt
from pvshadow.shadow.vcpu import VCpu
from pvshadow.shadow.watchdog import NO_WATCHDOG
from pvshadow.shadow.watch import Watch, WatchHit
from pvshadow.shadow.xenspace import GDT_LIMIT, TRAMPOLINE_VA, XenSpace, gdt_va

SLICE = 20000                             # instructions a vCPU runs before another gets a turn


class Clock:
    """Virtual time in instructions scheduled: one per host, shared by its domains."""
    __slots__ = ('instructions',)

    def __init__(self):
        self.instructions = 0


class Domain(DomainMemory):
    def __init__(self, domid: int, mem: MachineMemory, frames: FrameTable, types: PageTypes,
                 xenspace: XenSpace, cpu: PhysicalCpu, max_pages: int, scratch_mfn: int,
                 paging: str = 'direct', shadow_pool_pages: int = DEFAULT_POOL_PAGES,
                 audit: bool = False, vm_event_ring: bool = False, max_vcpus: int = 4,
                 clock=None):
        self.domid = domid
        self.mem = mem
        self.frames = frames
        self.types = types
        self.xen = xenspace
        self.cpu = cpu
        self.max_pages = max_pages
        self.tot_pages = 0
        self.p2m = array('Q')             # pfn -> mfn (INVALID_M2P_ENTRY: none)
        self.vm_assist = 0
        self.shutdown_code: Optional[int] = None
        # Two streams, as on Xen: console_io goes to the hypervisor's console (`xl
        # dmesg`), the PV console ring is the domain's console (`xl console`). `console`
        # is what a user reads as the domain's output: the ring's bytes, and console_io's
        # until the guest first uses its ring; later console_io bytes go to the
        # hypervisor console only (`hypervisor_console_sink`, e.g. stderr with "(d1) ").
        # `console_io` and `console_ring` keep each stream whole.
        self.console = bytearray()
        self.console_io = bytearray()
        self.console_ring = bytearray()
        self._ring_echo = []               # console_io output the ring may be repeating
        self.console_sink: Optional[Callable[[bytes], None]] = None
        self.hypervisor_console_sink: Optional[Callable[[bytes], None]] = None
        self.xen_log: List[str] = []
        self.stats = Counter()            # hypervisor events: emulated writes, ...
        self.hypercalls = HypercallTable(default_handlers())
        self.scratch_mfn = scratch_mfn
        self.audit = audit
        self.shadow_pool = ShadowPool(frames, mem, shadow_pool_pages)
        # A translated guest (paging 'translated'): its entries and hypercalls name gfns,
        # its p2m (with altp2m views) is authoritative, and it runs in shadow mode.
        self.translated = paging == 'translated'
        self.mem_access = None            # MemAccess once PG_mem_access is enabled
        if self.translated:
            from pvshadow.shadow.p2m import P2m
            self.p2m_state = P2m(self)
        self.paging = self._make_paging(paging)
        if self.translated:
            from pvshadow.shadow.mem_access import TranslatedMemAccess
            self.mem_access = TranslatedMemAccess(self)   # the p2m's access, always on
        # The vm_event ring page: the hypervisor's, outside the guest's physmap, and a
        # guest that tries to map it gets -EPERM.
        self.vm_event_ring_mfn = None
        if vm_event_ring:
            self.vm_event_ring_mfn = frames.alloc(DOMID_XEN)
            mem.clear_frame(self.vm_event_ring_mfn)
            types.unmappable[self.vm_event_ring_mfn] = EPERM
        # Frames the hypervisor gives the domain outside its physmap and writes into
        # itself (Xen's share_xen_page_with_guest): shared_info, grant-table frames. Each
        # holds a permanent writable type reference, so the guest can map them but never
        # type them as a page table; they are not charged to tot_pages.
        self.xenheap_frames = set()
        self.pfn_of = ReverseP2m(self)    # mfn -> pfn: the hypervisor's own reverse p2m
        # shared_info: the guest finds it through start_info.shared_info.
        self.shared_info_mfn = self.alloc_xenheap_frame('shared_info')
        self.runstate_policy = 'each-switch'      # or 'registration' (shadow.runstate)
        self.clock = clock if clock is not None else Clock()   # the host's, when shared
        self.ended: Optional[Exit] = None     # how the domain ended (on a multi-domain host)
        self.pause_count = 0                  # XEN_DOMCTL_pausedomain nests
        self.dying = False                    # destroyed; a zombie while frames are held
        self.is_privileged = False            # the control domain (shadow.xsm)
        self.target = None                    # XEN_DOMCTL_set_target: the domain it serves
        self.targets = set()                  # pvshadow's target set: more clients it serves
        self.grants = None                    # shadow.grant_table.GrantTable, on first use
        self._iommu = None                    # what its devices reach: self.iommu
        self.iomem = set()                    # machine frames past RAM it may map (devices)
        self.slice = SLICE
        self.vcpus: List[VCpu] = [VCpu(self, i, cpu) for i in range(max_vcpus)]
        for v in self.vcpus:
            v.set_upcall_mask(1)
        self._reschedule = False
        from pvshadow.shadow.evtchn import EventChannels
        self.evtchn = EventChannels(self)
        self.console_ring_mfn = self.store_ring_mfn = None
        self.console_evtchn = self.store_evtchn = 0
        self.store_events = deque()       # xenstore watch events waiting for ring room
        self.store_busy = False           # the xenstore backend is answering this domain
        self.grant_frames: List[int] = []
        self.entry = None                 # (rip, rsp, rsi) for the first entry
        # Front ends: a callable that receives every fault, exception, hypercall, vm_event
        # and exit as a dict (None: tracing off, and it costs one attribute check).
        self.tracer: Optional[Callable[[dict], None]] = None
        self.breakpoints = {}             # va -> CPU hook handle
        self.skip_breakpoint = None
        self.watchpoints = {}                 # id -> Watch: a debugger's, not the guest's

    @property
    def iommu(self):
        """What the domain's devices reach (shadow.iommu), made at its first use: most
        domains have no device, and a short run need not import it."""
        if self._iommu is None:
            from pvshadow.shadow.iommu import Iommu
            self._iommu = Iommu(self)
        return self._iommu

    # --- paging mode -------------------------------------------------------------------------
    def _make_paging(self, mode: str):
        if self.translated:
            if mode not in ('shadow', 'translated'):
                raise ValueError('a translated guest runs in shadow mode only')
            from pvshadow.shadow.paging.translated import TranslatedPaging
            return TranslatedPaging(self, self.types, self.flush_tlb, self.xen.l4_slots,
                                    self.shadow_pool, on_blow=self._reload_roots,
                                    audit=self.audit, roots_in_use=self._roots_in_use)
        if mode == 'direct':
            return DirectPaging(self.domid, self.types, self.flush_tlb)
        if mode == 'shadow':
            return ShadowPaging(self.domid, self.types, self.flush_tlb, self.xen.l4_slots,
                                self.shadow_pool, on_blow=self._reload_roots, audit=self.audit,
                                roots_in_use=self._roots_in_use)
        raise ValueError(f'unknown paging mode {mode!r} (direct, shadow, translated)')

    def set_paging_mode(self, mode: str) -> None:
        """Switch between direct and shadow paging, at creation or between runs."""
        if mode == self.paging.name or self.translated and mode == 'translated':
            return
        new = self._make_paging(mode)
        new.mappings_changed = self.paging.mappings_changed
        self.paging.detach()
        self.paging = new
        self.mem_access = None
        self._reload_roots()

    def add_rom(self, name: str, first_pfn: int, data: bytes, romd: bool = False) -> int:
        """Back guest frames from first_pfn with data as a read-only region (ROM) or a
        device-model-written one (ROMD); writes become mmio exits. Shadow paging only."""
        from pvshadow.shadow.regions import Regions
        if self.paging.name != 'shadow' or self.translated:
            return -EOPNOTSUPP
        if self.paging.regions is None:
            self.paging.regions = Regions(self)
        return self.paging.regions.add(name, first_pfn, data, romd)

    def write_physical(self, gpa: int, data: bytes) -> None:
        """The device model writing guest memory (a ROMD frame, say) by guest address."""
        if not self.pfn_valid(gpa >> 12) or \
                not self.types.write_frame((self.p2m[gpa >> 12] << 12) | (gpa & 0xFFF), data,
                                           self.domid):
            self.log(f'device-model write of {len(data)} bytes at gpa {gpa:#x} refused: '
                     'not a frame the domain may have written')
            return
        self.cpu.flush_code_cache()

    def enable_mem_access(self) -> None:
        """PG_mem_access shadow mode: shadow paging plus the access tracker."""
        from pvshadow.shadow.mem_access import MemAccess
        self.set_paging_mode('shadow')
        if self.mem_access is None:
            self.mem_access = MemAccess(self)
            self.paging.enable_mem_access(self.mem_access)

    def _roots_in_use(self):
        return {root for v in getattr(self, 'vcpus', ()) for root in
                (v.guest_table, v.guest_table_user) if root}

    def set_shadow_allocation(self, pages: int) -> None:
        """Resize the shadow pool; shrinking below what is in use blows the shadows."""
        if pages < self.shadow_pool.in_use and self.paging.name == 'shadow':
            self.paging.shadow_blow_tables()
        self.shadow_pool.limit = max(pages, 8)

    def _reload_roots(self) -> None:
        v = self.vcpus[0] if hasattr(self, 'vcpus') else None
        if v is not None and v.entered and self.cpu.guest is v:
            v.load_cr3()

    def flush_tlb(self) -> None:
        self.cpu.flush_tlb()

    def features(self) -> int:
        bits = 1 << xen.XENFEAT_mmu_pt_update_preserve_ad
        if self.translated:
            bits |= 1 << xen.XENFEAT_auto_translated_physmap
        return bits

    # --- console and log ---------------------------------------------------------------------
    def console_write(self, data: bytes) -> None:
        """Bytes for the domain's console (what stdout shows)."""
        self.console += data
        if self.console_sink is not None:
            self.console_sink(data)

    def console_io_write(self, data: bytes) -> None:
        """HYPERVISOR_console_io: the domain's console until it uses its ring, the
        hypervisor console from then on."""
        self.console_io += data
        if not self.console_ring:
            self.console_write(data)
        elif self.hypervisor_console_sink is not None:
            self.hypervisor_console_sink(data)

    def console_ring_write(self, data: bytes) -> None:
        """What the guest wrote to its PV console ring. A guest that writes every line
        both ways (XTF's printk) repeats on the ring, when it first uses it, the lines
        the domain console has already shown from console_io: they are shown once."""
        first = not self.console_ring
        self.console_ring += data
        if first:
            self._ring_echo = console_io_tail(self.console_io)
        if self._ring_echo:
            data, self._ring_echo = drop_echo(data, self._ring_echo)
        if data:
            self.console_write(data)

    def log(self, message: str) -> None:
        self.xen_log.append(message)

    # --- scheduling outcomes -------------------------------------------------------------------
    def shutdown(self, v: VCpu, reason: int) -> None:
        self.shutdown_code = reason
        v.request_exit(Exit(ExitReason.SHUTDOWN, shutdown_code=reason))

    def timers_armed(self) -> bool:
        for v in self.vcpus:
            if v.online and v.has_deadline():
                return True
        return False

    @property
    def virtual_time(self) -> int:
        return self.clock.instructions

    @virtual_time.setter
    def virtual_time(self, value: int) -> None:
        self.clock.instructions = value

    def now_ns(self) -> int:
        return self.virtual_time * xen.NS_PER_INSTRUCTION

    def update_time(self, v: VCpu) -> None:
        """vcpu_info.time, with Xen's version protocol (odd while it changes)."""
        base = v.vcpu_info_maddr + xen.vcpu_info.time.offset
        version = self.mem.read_u64(base) & 0xFFFFFFFF
        self.mem.write(base, struct.pack('<I', (version + 1) & 0xFFFFFFFF))
        self.mem.write_u64(base + xen.vcpu_time_info.system_time.offset,
                           self.now_ns() & 0xFFFFFFFFFFFFFFFF)
        self.mem.write(base, struct.pack('<I', (version + 2) & 0xFFFFFFFF))

    def block(self, v: VCpu) -> None:
        host = getattr(self, 'host', None)
        if self.timers_armed() or any(o is not v and o.online and not o.blocked
                                      for o in self.vcpus) or \
                (host is not None and host.scheduling and host.others_may_wake(v)):
            v.blocked = True                  # another vCPU can run meanwhile
            v.runstate.change(xen.RUNSTATE_blocked, self.virtual_time)
            return self.reschedule()
        v.request_exit(Exit(ExitReason.HALT, message=f'd{self.domid}v{v.vcpu_id} blocked with '
                            'no event source that could wake it'))

    # --- vCPUs -------------------------------------------------------------------------------
    def initialise_vcpu(self, v: VCpu, ctx) -> int:
        """VCPUOP_initialise: a secondary vCPU's registers, tables, GDT, debug registers,
        traps and callbacks (Xen's arch_set_info_guest, for what PV kernels pass)."""
        # Every field is checked before anything is taken, and what was taken is given
        # back on a later refusal: a refused context leaves the vCPU as it was.
        if not all(breakpoint_addr_ok(ctx.debugreg[i]) for i in range(4)) or \
                ctx.debugreg[6] >> 32 or ctx.debugreg[7] >> 32 or \
                not ldt_args_ok(ctx.ldt_base, ctx.ldt_ents) or \
                ctx.gdt_ents > xen.FIRST_RESERVED_GDT_ENTRY:
            return -EINVAL
        root = ctx.ctrlreg[3] >> 12
        rc = self.paging.get_root(root)
        if rc:
            return rc
        rc = set_gdt(v, list(ctx.gdt_frames), ctx.gdt_ents)
        if rc == 0:
            rc = set_ldt(v, ctx.ldt_base, ctx.ldt_ents)
            if rc == 0 and any(v.debug.set(i, ctx.debugreg[i]) for i in (0, 1, 2, 3, 6, 7)):
                rc = -EINVAL
            if rc:
                set_ldt(v, 0, 0)
                set_gdt(v, [], 0)
                for i in (0, 1, 2, 3, 6, 7):
                    v.debug.set(i, 0)
        if rc:
            self.paging.put_root(root)
            return rc
        v.guest_table = root
        v.kernel_mode = True
        v.trap_ctxt = [(0, 0)] * 256
        for ti in ctx.trap_ctxt:
            if ti.address:
                v.trap_ctxt[ti.vector] = (ti.address, ti.flags)
        v.event_callback = ctx.event_callback_eip
        v.failsafe_callback = ctx.failsafe_callback_eip
        v.syscall_callback = ctx.syscall_callback_eip
        v.kernel_ss, v.kernel_sp = ctx.kernel_ss, ctx.kernel_sp
        r = ctx.user_regs
        v.start_regs = {name: getattr(r, name) for name in (
            'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11',
            'r12', 'r13', 'r14', 'r15', 'rip')}
        v.start_regs['rflags'] = (r.rflags & ~(3 << 12)) | 0x202
        v.start_regs['fs_base'], v.start_regs['gs_base'] = ctx.fs_base, ctx.gs_base_kernel
        v.initialised = True
        return 0

    def vcpu_up(self, v: VCpu) -> None:
        if not v.online:
            v.online = True
            v.blocked = False
            v.runstate.change(xen.RUNSTATE_runnable, self.virtual_time)
            self.reschedule()

    def vcpu_down(self, v: VCpu) -> None:
        if v.online:
            v.online = False
            v.runstate.change(xen.RUNSTATE_offline, self.virtual_time)
            self.reschedule()

    def reschedule(self) -> None:
        """Inside a hook: stop the CPU so the scheduler picks again (no exit)."""
        self._reschedule = True
        self.cpu.stop()

    def _multi(self) -> bool:
        """Whether the run needs slices: a vCPU but the first online, or a timer to keep
        (asked at every restart: no list built)."""
        vcpus = self.vcpus
        for v in vcpus[1:]:
            if v.online:
                return True
        first = vcpus[0]
        return first.online and first.has_deadline()

    def _switch_to(self, v: VCpu) -> None:
        cpu = self.cpu
        current = cpu.guest
        if current is v:
            return
        now = self.virtual_time
        if current is not None and current.entered:
            current.saved_state = cpu.save_state()
            if current.online and not current.blocked:
                current.runstate.change(xen.RUNSTATE_runnable, now)
        if current is not None:
            current.unload_watches()
        cpu.guest = v
        self._load_gdt(v)
        v.load_watches(cpu)
        if v.saved_state is not None:
            cpu.restore_state(v.saved_state)
            # The root is loaded afresh, as Xen's write_ptbase does at each switch: the
            # saved CR3 may name a shadow blown or a view left while the vCPU was
            # descheduled, and a restored context brings no TLB flush (without one, the
            # next vCPU's accesses could hit the last one's translations).
            v.load_cr3()
        else:
            regs = dict(v.start_regs)
            rip = regs.pop('rip')
            cpu.set_regs(**regs)
            cpu.rip = rip
            v.load_cr3()
            load_ldt(v)
            v.entered = True
        v.runstate.change(xen.RUNSTATE_running, now)
        v.runstate.update()

    def first_entry(self, v: VCpu) -> int:
        """vCPU 0's first entry, from the CPU's reset state (another domain's vCPU may
        have left it at CPL3): the iret frame to start_info's entry point on the
        hypervisor stack; returns the trampoline address to start at."""
        cpu = self.cpu
        current = cpu.guest
        if current is not None and current is not v and current.entered:
            current.saved_state = cpu.save_state()
            current.unload_watches()
        cpu.reset()
        cpu.guest = v
        self._load_gdt(v)
        v.load_watches(cpu)
        rip, rsp, rsi = self.entry
        cpu.set_regs(rsi=rsi, rsp=self.xen.iret_frame_to(rip, rsp, RFLAGS_IF | 2))
        v.load_cr3()
        v.entered = True
        v.runstate.change(xen.RUNSTATE_running, self.virtual_time)
        return TRAMPOLINE_VA

    def _load_gdt(self, v: VCpu) -> None:
        if self.xen.install_gdt(v):
            self.flush_tlb()
        self.cpu.load_gdt(gdt_va(v.vcpu_id), GDT_LIMIT)

    def destroy(self) -> None:
        """Drop what the domain's vCPUs hold (runstate frames, LDT pages)."""
        for v in self.vcpus:
            v.runstate.destroy()
            destroy_ldt(v)

    # --- running -----------------------------------------------------------------------------------
    # --- debugging and tracing ------------------------------------------------------------------
    def add_breakpoint(self, va: int) -> None:
        if va not in self.breakpoints:
            self.breakpoints[va] = self.cpu.add_code_breakpoint(va)

    def remove_breakpoint(self, va: int) -> None:
        handle = self.breakpoints.pop(va, None)
        if handle is not None:
            self.cpu.remove_code_breakpoint(handle)

    def add_watchpoint(self, va: int, length: int = 8, reads: bool = False) -> int:
        """A debugger's watchpoint (the guest does not see it): the run stops after each
        instruction that writes, or with reads also reads, any of the length bytes at
        va (within one page). Returns its id for remove_watchpoint."""
        if not 1 <= length <= 4096 - (va & 0xFFF):
            raise ValueError('a watchpoint covers 1 to 4096 bytes within one page')
        free = [i for i in range(64) if i not in self.watchpoints]
        if not free:
            raise ValueError('64 watchpoints at most')
        self.watchpoints[free[0]] = Watch(va, length, reads, free[0])
        self._set_watchpoints()
        return free[0]

    def remove_watchpoint(self, wid: int) -> None:
        if self.watchpoints.pop(wid, None) is not None:
            self._set_watchpoints()

    def _set_watchpoints(self) -> None:
        for v in self.vcpus:
            v.watchpoints.set(list(self.watchpoints.values()))
            v.watches_changed()

    def watchpoint_hit(self, v: VCpu, hit: WatchHit) -> None:
        ids = [i for i in self.watchpoints if hit.tags >> i & 1]
        event = {'type': 'watchpoint', 'ids': ids, 'va': hit.va, 'size': hit.size,
                 'access': 'write' if hit.write else 'read', 'rip': hit.rip,
                 'next_rip': self.cpu.rip}
        if self.tracer is not None:
            self.tracer(event)
        else:
            self.request_stop(f'watchpoint {",".join(map(str, ids))}: {event["access"]} of '
                              f'{hit.size} bytes at {hit.va:#x} by the instruction at '
                              f'{hit.rip:#x}')

    def running_vcpu(self) -> VCpu:
        """The vCPU on the CPU (the one a stop happened on), else vCPU 0."""
        return self.cpu.guest or self.vcpus[0]

    def request_stop(self, message: str) -> None:
        """From a tracer callback: end the current run with a breakpoint exit once the
        event being reported has been handled (on the vCPU that raised it)."""
        v = self.running_vcpu()
        v.request_exit(Exit(ExitReason.BREAKPOINT, message=message))

    def run(self, budget: int = 0, timeout: Optional[float] = None) -> Exit:
        """Run the domain until it needs a decision outside the CPU; returns the exit.

        budget > 0 bounds the instructions executed (Unicorn counts each one, ~15x slower);
        timeout (seconds) is a wall-clock watchdog.
        """
        exit_ = self._run(budget, timeout)
        if self.audit and self.paging.name == 'shadow':
            exit_ = self._audit_at_exit(exit_)
        if self.tracer is not None:
            self.tracer({'type': 'exit', 'reason': exit_.reason.value, 'message': exit_.message,
                         'shutdown_code': exit_.shutdown_code,
                         'rip': exit_.registers.get('rip', self.cpu.rip)})
        return exit_

    def _run(self, budget: int, timeout: Optional[float]) -> Exit:
        if self.vcpus[0].entered and self._multi():
            return self._run_scheduled(budget, timeout)
        v = self.vcpus[0]
        cpu = self.cpu
        v.exit = None
        if v.paused_for_event:
            return Exit(ExitReason.VM_EVENT, message=f'd{self.domid}v{v.vcpu_id} is paused '
                        'waiting for a vm_event response')
        if not v.entered:
            start = self.first_entry(v)
        elif cpu.guest is not v:
            self._switch_to(v)                  # another domain's vCPU was on the CPU
            start = cpu.rip
        else:
            # Still on the CPU since it stopped: its GDT, LDT and watches are loaded, and
            # whatever changes them while it is the CPU's guest (set_gdt, the debug
            # registers, watchpoints, CPUID faulting) reloads them itself. Run from where
            # the CPU is: cpu.run reads it from the context copy it takes.
            start = cpu.rip if self.breakpoints else None
        if start in self.breakpoints:
            self.skip_breakpoint = start        # continuing from a breakpoint stop
        began = time.monotonic() if timeout else 0.0
        spurious = 0
        watchdog = cpu.watchdog(timeout) if timeout else NO_WATCHDOG   # one for the run
        try:
            while not watchdog.fired:
                try:
                    cpu.run(start, count=budget)
                except CpuError as exc:
                    return self._cpu_error(exc)
                if v.exit is not None:
                    return v.exit
                if cpu.take_interrupt():
                    return interrupted(cpu.dump())
                if v.pending_step is None:
                    if self._multi():
                        watchdog.cancel()
                        left = timeout - (time.monotonic() - began) if timeout else None
                        return self._run_scheduled(budget, max(left, 1e-3) if timeout else None)
                    if budget or watchdog.fired or spurious >= 3:
                        break
                    # A stop nobody asked for (left over from a counted single step over a
                    # hypercall): carry on from where the CPU is.
                    spurious += 1
                    start = cpu.rip
                    continue
                spurious = 0
                self._finish_steps(v)
                if v.exit is not None:
                    return v.exit
                start = cpu.rip
        finally:
            watchdog.cancel()
        if budget and not watchdog.fired:
            return Exit(ExitReason.BUDGET, message=f'{budget} instructions executed',
                        registers=cpu.dump())
        if watchdog.fired:
            return Exit(ExitReason.TIMEOUT, message=f'no exit after {timeout:g} s',
                        registers=cpu.dump())
        return Exit(ExitReason.INTERNAL_ERROR, message='the CPU stopped with no exit reason',
                    registers=cpu.dump())

    def _audit_at_exit(self, exit_: Exit) -> Exit:
        """With auditing on, each fault checks the shadow entries it wrote; the whole of
        every live shadow is checked here, when the run returns."""
        problems = self.paging.audit()
        if not problems:
            return exit_
        self.stats['hypervisor_errors'] += 1
        self.log('shadow audit at exit:\n' + '\n'.join(problems[:20]))
        return Exit(ExitReason.INTERNAL_ERROR, message='shadow audit: ' + problems[0] +
                    (f' (+{len(problems) - 1} more)' if len(problems) > 1 else ''),
                    registers=exit_.registers)

    def _cpu_error(self, exc: CpuError) -> Exit:
        if isinstance(exc, HypervisorError):
            self.stats['hypervisor_errors'] += 1
            self.log(exc.traceback)
        return Exit(ExitReason.INTERNAL_ERROR, message=str(exc), registers=self.cpu.dump())

    def _finish_steps(self, v: VCpu) -> None:
        """What a hook stopped the CPU for: a page-table store to single-step, or an
        instruction a data breakpoint caught halfway."""
        while v.pending_step is not None and v.exit is None:
            req, v.pending_step = v.pending_step, None
            if isinstance(req, WatchHit):
                req.hooks.finish(req)
                continue
            try:
                refused = single_step(self, v, req, self.scratch_mfn)
            except CpuError as exc:
                v.exit = self._cpu_error(exc)
                return
            if refused and v.exit is None:
                self.log(f'emulated page-table write refused: {refused}')
                v.inject_page_fault(req.va, req.error_code)

    def _run_scheduled(self, budget: int, timeout: Optional[float]) -> Exit:
        """More than one vCPU, or a timer to keep: the host's scheduler, for this domain
        alone (shadow.scheduler); its exit is this run's."""
        exits = self.host.scheduler.run(budget, timeout, only=self)
        self.ended = None                 # a lone domain may be run again after any exit
        if not exits:
            return Exit(ExitReason.INTERNAL_ERROR, message='the scheduler stopped with no exit')
        return exits[-1].exit
