"""The run loops' wall-clock limit (PhysicalCpu.watchdog).

One thread per CPU, started at its first timed run and kept: each run arms it with its
deadline and disarms it when it ends. A run that ends before its time is up (every
vm_event round trip does) costs two lock acquisitions and wakes no thread, where a
thread per run cost about 170 us of CPU a run.
"""
import os
import threading
import time


class RunLimit:
    """One run's limit: `fired` once the time is up; cancel() when the run ends."""
    __slots__ = ('fired', '_watchdog')

    def __init__(self, watchdog: 'Watchdog'):
        self.fired = False
        self._watchdog = watchdog

    def cancel(self) -> None:
        """After this returns, the watchdog makes no stop for this run."""
        self._watchdog.disarm(self)


class Watchdog:
    """Once a run's time is up it stops the CPU, and again every 10 ms until the run is
    cancelled (a stop asked for between two emu_starts is lost), in place of the timer
    thread Unicorn starts for every emu_start given a timeout."""

    def __init__(self, uc):
        self._uc = uc
        self._pid = None                  # the process its thread runs in

    def _start(self) -> None:
        """The thread, and the lock it shares with the runs: at the first timed run, and
        again in a forked child (which has neither the thread nor a usable lock: the
        thread may have held it when the process forked)."""
        self._cond = threading.Condition(threading.Lock())
        self._run = None                  # the armed RunLimit
        self._deadline = 0.0              # its time.monotonic() deadline
        self._sleeping_until = None       # what the thread waits for (None: a notify)
        self._pid = os.getpid()
        threading.Thread(target=self._watch, daemon=True, name='pvshadow-watchdog').start()

    def arm(self, seconds: float) -> RunLimit:
        if self._pid != os.getpid():
            self._start()
        run = RunLimit(self)
        deadline = time.monotonic() + seconds
        with self._cond:
            self._run, self._deadline = run, deadline
            # The thread sleeping until an earlier time finds the new deadline when it
            # wakes; it is woken only if it would sleep past it.
            if self._sleeping_until is None or deadline < self._sleeping_until:
                self._cond.notify()
        return run

    def disarm(self, run: RunLimit) -> None:
        if self._pid != os.getpid():
            return                        # armed before a fork: no thread here to stop
        with self._cond:
            if self._run is run:
                self._run = None

    def _watch(self) -> None:
        with self._cond:
            while True:
                run = self._run
                if run is None:
                    self._sleeping_until = None
                    self._cond.wait()
                    continue
                now = time.monotonic()
                if now < self._deadline:
                    self._sleeping_until = self._deadline
                    self._cond.wait(self._deadline - now)
                    continue
                run.fired = True
                self._uc.emu_stop()       # under the lock: never after disarm returned
                self._deadline = now + 0.01


class _NoWatchdog:
    """A run without a time limit (the common case: nothing to create or cancel)."""
    fired = False

    def cancel(self) -> None:
        pass


NO_WATCHDOG = _NoWatchdog()
