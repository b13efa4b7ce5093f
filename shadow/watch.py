"""Watching guest linear addresses for data accesses, with Unicorn memory hooks.

Two users: the guest's own data breakpoints (shadow/debugregs.py, a #DB for the guest)
and a debugger's watchpoints (Domain.add_watchpoint, a stop for the tool). Both are traps:
reported after the instruction that made the access.

Unicorn's memory hooks see machine addresses and fire only for accesses that passed the
page walk, so a watch hooks the bytes its linear address maps in the running guest mode,
found again whenever CR3 or a guest page-table entry changes (a store to those bytes
through another mapping trips it too; one that faults and is emulated by the hypervisor
trips nothing). A stop requested inside a memory hook leaves the instruction torn (the
access done, RIP and the other registers not yet updated; docs/UNICORN.md), so the hook
saves the bytes about to change and stops; the run loop puts them back, executes the
instruction once more, whole, with the hooks quiet, and only then reports the hit.
"""
from typing import Callable, List, NamedTuple

from unicorn import UC_MEM_WRITE



class Watch(NamedTuple):
    va: int                             # aligned linear address
    length: int                         # 1, 2, 4 or 8 bytes
    reads: bool                         # reads trip it too (else writes only)
    tag: int                            # what the owner calls it (a DR number, an id)


class WatchHit(NamedTuple):
    """Watches matched mid-instruction; the run loop finishes it (WatchHooks.finish)."""
    hooks: 'WatchHooks'
    tags: int                           # bit per matched tag
    rip: int                            # the instruction
    va: int                             # linear address of the first matched access
    size: int
    write: bool
    undo: list                          # (machine address, bytes before the access)


class WatchHooks:
    def __init__(self, vcpu, on_hit: Callable[[WatchHit, bool], None]):
        """on_hit(hit, mid_rep) once the instruction has completed; mid_rep says a rep
        string instruction has iterations left (RIP still on it)."""
        self.vcpu = vcpu
        self.on_hit = on_hit
        self.watches: List[Watch] = []
        self._hooked = []               # [watch, machine address or None, hook or None]
        self._cpu = None
        self._quiet_tags = 0            # what the instruction run by finish() touched

    @property
    def active(self) -> bool:
        return bool(self._hooked)

    def set(self, watches: List[Watch]) -> None:
        self.watches = list(watches)
        cpu = self._cpu
        self.unload()
        if cpu is not None:
            self.load(cpu)

    def load(self, cpu) -> None:
        """Hook the watches on the physical CPU (the vCPU is about to run)."""
        if self._cpu is cpu:
            return
        self.unload()
        self._cpu = cpu
        self._hooked = [[w, None, None] for w in self.watches]
        if self._hooked:
            self.mappings_changed()

    def unload(self) -> None:
        cpu, self._cpu = self._cpu, None
        if cpu is not None:
            for _, _, handle in self._hooked:
                if handle is not None:
                    cpu.remove_memory_hook(handle)
        self._hooked = []

    def mappings_changed(self) -> None:
        cpu = self._cpu
        if cpu is None:
            return
        v = self.vcpu
        for entry in self._hooked:
            watch, maddr, handle = entry
            gw = v.domain.paging.debug_walk(v, watch.va)
            now = gw.maddr if gw.ok else None
            if now == maddr:
                continue
            if handle is not None:
                cpu.remove_memory_hook(handle)
                handle = None
            if now is not None:
                # Unicorn matches the access's first byte: widen by 7 so an access that
                # starts below and overlaps is seen too (_on_access checks the overlap).
                handle = cpu.add_memory_hook(now - 7, now + watch.length - 1, watch.reads,
                                             self._on_access)
            entry[1], entry[2] = now, handle

    # --- the hook ---------------------------------------------------------------------------
    def _on_access(self, access: int, maddr: int, size: int) -> None:
        write = access == UC_MEM_WRITE
        tags, va = 0, None
        for watch, watched, _ in self._hooked:
            if watched is not None and (write or watch.reads) and \
                    maddr < watched + watch.length and watched < maddr + size:
                tags |= 1 << watch.tag
                if va is None:
                    va = watch.va + (maddr - watched)
        if not tags:
            return
        v = self.vcpu
        if v.finishing_watch:            # the hooks only record while finish() runs
            self._quiet_tags |= tags
            return
        if v.exit is not None or v.stepping or v.pending_step is not None:
            return
        size = min(size, 4096 - (maddr & 0xFFF))
        undo = [(maddr, bytes(v.domain.mem.view[maddr:maddr + size]))]
        v.pending_step = WatchHit(self, tags, v.cpu.rip, va, size, write, undo)
        v.cpu.stop()

    # --- finishing ----------------------------------------------------------------------------
    def finish(self, hit: WatchHit) -> None:
        """Undo the torn access, run the instruction whole with the hooks quiet, then
        report. If it faulted instead (a shadow fill, or a #PF for the guest), nothing
        is reported: the instruction has not completed."""
        v = self.vcpu
        cpu = v.cpu
        mem = v.domain.mem.view
        for maddr, data in hit.undo:
            mem[maddr:maddr + len(data)] = data
        before = (cpu.rip, cpu.gprs())
        bounces = v.bounces
        v.finishing_watch, self._quiet_tags = True, 0
        try:
            v.domain.paging.prefault_code(v, cpu.rip)
            cpu.run(cpu.rip, count=1)
        finally:
            v.finishing_watch = False
        if v.exit is not None or v.pending_step is not None or v.bounces != bounces:
            return
        after = (cpu.rip, cpu.gprs())
        if after == before:
            return                       # a fault the hypervisor resolved: it runs again
        self.on_hit(hit._replace(tags=self._quiet_tags or hit.tags, rip=before[0]),
                    after[0] == before[0])
