"""The host's scheduler: one physical CPU shared by the vCPUs of every domain.

Round robin over every runnable vCPU of every domain that is neither paused nor ended,
in slices of `slice` instructions on the host's virtual clock (instructions scheduled,
one clock for all domains, as Xen has one system time). With exactly one runnable vCPU
in the whole host and no timer armed anywhere, that vCPU runs unbounded (no count=), at
bare Unicorn's speed. When nothing is runnable the clock jumps to the next deadline; with
no deadline anywhere, every domain still waiting has halted.

A switch between domains goes through the incoming domain's own switch (Domain._switch_to
or, the first time, Domain.first_entry): its CR3 under its own paging mode, its GDT and
LDT, its saved registers and segment bases, its debug state. A domain that shuts down,
crashes or halts ends; the others keep running. A stop that a front end asked for (a
breakpoint, a vm_event for the listener, an mmio for the device model), the budget or
the watchdog ends the run call, to be continued by the next one.
"""
from dataclasses import dataclass
from typing import List, Optional

from pvshadow.shadow.abi import xen
from pvshadow.shadow.cpu import CpuError
from pvshadow.shadow.exits import Exit, ExitReason, interrupted

ENDING = (ExitReason.SHUTDOWN, ExitReason.CRASH, ExitReason.HALT, ExitReason.INTERNAL_ERROR)


@dataclass
class HostExit:
    """One domain's exit on a host run: which domain, which vCPU, why."""
    domid: int
    vcpu: int
    exit: Exit

    def describe(self) -> str:
        return f'd{self.domid}v{self.vcpu}: {self.exit.describe()}'


class Scheduler:
    def __init__(self, host, slice_: int = 20000):
        self.host = host
        self.slice = slice_
        self.last = None                  # (domid, vcpu_id) that ran last
        self.switches = 0                 # context switches between domains
        self.only = None                  # Domain.run: schedule that domain alone

    # --- who may run ---------------------------------------------------------------------
    def live(self):
        if self.only is not None:
            return [self.only] if self.only.ended is None else []
        return [d for d in self.host.domains.values() if d.ended is None]

    def runnable(self):
        return [(d, v) for d in self.live() if not d.pause_count
                for v in d.vcpus if v.online and not v.blocked]

    def deadlines(self):
        return [t for d in self.live() if not d.pause_count for v in d.vcpus if v.online
                for t in (v.next_deadline(),) if t is not None]

    def others_may_wake(self, v) -> bool:
        """Whether a vCPU about to block could still be woken: another runnable vCPU
        anywhere on the host (it may send an event), or a timer armed anywhere."""
        return any(o is not v for _, o in self.runnable()) or bool(self.deadlines())

    # --- running -------------------------------------------------------------------------
    def run(self, budget: int = 0, timeout: Optional[float] = None,
            only=None) -> List[HostExit]:
        self.only = only
        try:
            return self._run(budget, timeout)
        finally:
            self.only = None

    def _run(self, budget: int, timeout: Optional[float]) -> List[HostExit]:
        host = self.host
        cpu = host.cpu
        clock = host.clock
        exits: List[HostExit] = []
        executed = 0
        host.scheduling = True
        watchdog = cpu.watchdog(timeout)        # one timer for the whole run
        try:
            while True:
                if not self.live():
                    return exits
                now = clock.instructions * xen.NS_PER_INSTRUCTION
                for d in self.live():
                    for v in d.vcpus:
                        if v.online:
                            v.fire_timers(now)
                waiting = [(d, v) for d, v in self.runnable() if v.paused_for_event]
                if waiting:
                    d, v = waiting[0]
                    exits.append(HostExit(d.domid, v.vcpu_id, Exit(
                        ExitReason.VM_EVENT, message=f'd{d.domid}v{v.vcpu_id} is paused '
                        'waiting for a vm_event response')))
                    return exits
                runnable = self.runnable()
                if not runnable:
                    deadlines = self.deadlines()
                    if not deadlines:
                        for d in self.live():
                            if not d.pause_count:
                                self._end(exits, d, d.vcpus[0], Exit(
                                    ExitReason.HALT, message=f'd{d.domid}: every vCPU is '
                                    'blocked with no event source that could wake it'))
                        return exits
                    clock.instructions = max(clock.instructions,
                                             -(-min(deadlines) // xen.NS_PER_INSTRUCTION))
                    continue
                d, v = self._next(runnable)
                start = self._switch(d, v)
                count = self.slice if len(runnable) > 1 else 0
                deadlines = self.deadlines()
                if deadlines:
                    until = max(1, min(deadlines) // xen.NS_PER_INSTRUCTION - clock.instructions)
                    count = min(count, until) if count else until
                if budget:
                    left_budget = budget - executed
                    if left_budget <= 0:
                        exits.append(HostExit(d.domid, v.vcpu_id, Exit(
                            ExitReason.BUDGET, message=f'{budget} instructions executed')))
                        return exits
                    count = min(count, left_budget) if count else left_budget
                if watchdog.fired:
                    exits.append(HostExit(d.domid, v.vcpu_id, Exit(
                        ExitReason.TIMEOUT, message=f'no exit after {timeout:g} s',
                        registers=cpu.dump())))
                    return exits
                try:
                    cpu.run(start, count=count)
                except CpuError as exc:
                    v.exit = d._cpu_error(exc)
                if v.exit is None and cpu.take_interrupt():
                    exits.append(HostExit(d.domid, v.vcpu_id, interrupted(cpu.dump())))
                    return exits
                ran = count if count and not d._reschedule else 1
                clock.instructions += ran
                executed += ran
                d.stats['instructions_scheduled'] += ran
                if v.exit is None:
                    d._finish_steps(v)
                if v.exit is not None:
                    exit_, v.exit = v.exit, None
                    if exit_.reason in ENDING:
                        self._end(exits, d, v, exit_)
                        continue
                    exits.append(HostExit(d.domid, v.vcpu_id, exit_))
                    return exits
                if not count and not d._reschedule and not v.pending_step and watchdog.fired:
                    exits.append(HostExit(d.domid, v.vcpu_id, Exit(
                        ExitReason.TIMEOUT, message=f'no exit after {timeout:g} s',
                        registers=cpu.dump())))
                    return exits
        finally:
            watchdog.cancel()
            host.scheduling = False

    def _next(self, runnable):
        """Round robin: the first runnable (domid, vcpu) after the one that ran last."""
        keys = [(d.domid, v.vcpu_id) for d, v in runnable]
        after = [i for i, k in enumerate(keys) if self.last is not None and k > self.last]
        pick = runnable[after[0] if after else 0]
        self.last = (pick[0].domid, pick[1].vcpu_id)
        return pick

    def _switch(self, d, v) -> int:
        """Load v (of domain d) on the CPU; returns where it resumes."""
        cpu = self.host.cpu
        current = cpu.guest
        if current is not None and current.domain is not d:
            self.switches += 1
        v.exit = None
        d._reschedule = False
        if not v.entered and v is d.vcpus[0]:
            return d.first_entry(v)
        if current is not v:
            d._switch_to(v)
        v.check_events()                  # a vCPU woken by an event takes it now
        return cpu.rip

    def _end(self, exits, d, v, exit_) -> None:
        d.ended = exit_
        if exit_.reason is ExitReason.CRASH or (exit_.reason is ExitReason.SHUTDOWN and
                                                exit_.shutdown_code == xen.SHUTDOWN_crash):
            # A crashed domain runs no more: its grant and IOMMU mappings go now (xl's
            # default on_crash would destroy it; its memory is kept here for inspection).
            from pvshadow.shadow.lifecycle import release_mappings
            release_mappings(d)
        if self.host.cpu.guest is not None and self.host.cpu.guest.domain is d:
            self.host.cpu.guest.saved_state = self.host.cpu.save_state()
        exits.append(HostExit(d.domid, v.vcpu_id, exit_))
