"""The run loops' wall-clock limit (PhysicalCpu.watchdog).

One thread for the whole process, started at the first timed run and kept: each run
arms it with its deadline and its CPU, and disarms it when it ends. A run that ends
before its time is up (every vm_event round trip does) costs two lock acquisitions and
wakes no thread, where a thread per run cost about 170 us of CPU a run. The thread holds
a CPU only while one of its runs is armed, so a host that is gone is freed.
"""
import os
import threading
import time

_start_lock = threading.Lock()
_watcher = None                           # the process's Watcher


class RunLimit:
    """One run's limit: `fired` once the time is up; cancel() when the run ends."""
    __slots__ = ('fired', '_watcher')

    def __init__(self, watcher: 'Watcher'):
        self.fired = False
        self._watcher = watcher

    def cancel(self) -> None:
        """After this returns, the watchdog makes no stop for this run."""
        self._watcher.disarm(self)


class Watcher:
    """Once a run's time is up it stops that run's CPU, and again every 10 ms until the
    run is cancelled (a stop asked for between two emu_starts is lost), in place of the
    timer thread Unicorn starts for every emu_start given a timeout."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._armed = {}                  # RunLimit -> [deadline (time.monotonic()), uc]
        self._sleeping_until = None       # what the thread waits for (None: a notify)
        self.forked_away = False          # in a forked child: no thread, its lock unusable
        threading.Thread(target=self._watch, daemon=True, name='pvshadow-watchdog').start()

    def arm(self, uc, seconds: float) -> RunLimit:
        run = RunLimit(self)
        deadline = time.monotonic() + seconds
        with self._cond:
            self._armed[run] = [deadline, uc]
            # The thread sleeping until an earlier time finds the new deadline when it
            # wakes; it is woken only if it would sleep past it.
            if self._sleeping_until is None or deadline < self._sleeping_until:
                self._cond.notify()
        return run

    def disarm(self, run: RunLimit) -> None:
        if self.forked_away:
            return                        # armed before a fork: no thread here to stop it
        with self._cond:
            self._armed.pop(run, None)

    def _watch(self) -> None:
        armed, cond = self._armed, self._cond
        with cond:
            while True:
                if not armed:
                    self._sleeping_until = None
                    cond.wait()
                    continue
                run = min(armed, key=lambda r: armed[r][0])
                entry = armed[run]
                now = time.monotonic()
                if now >= entry[0]:
                    run.fired = True
                    entry[1].emu_stop()   # under the lock: never after disarm returned
                    entry[0] = now + 0.01
                self._sleeping_until = deadline = entry[0]
                del run, entry            # the thread holds no run and no CPU while it waits
                cond.wait(deadline - now)


def arm(uc, seconds: float) -> RunLimit:
    """A limit of `seconds` for a run on `uc`: cancel() it when the run ends. The first
    call in a process (a forked child's included) starts the thread."""
    global _watcher
    watcher = _watcher
    if watcher is None:
        with _start_lock:
            if _watcher is None:
                _watcher = Watcher()
            watcher = _watcher
    return watcher.arm(uc, seconds)


def _after_fork_in_child() -> None:
    """A forked child has no watchdog thread, and the lock may have been held when the
    process forked: the child starts its own at its first timed run."""
    global _watcher, _start_lock
    if _watcher is not None:
        _watcher.forked_away = True
    _watcher, _start_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _NoWatchdog:
    """A run without a time limit (the common case: nothing to create or cancel)."""
    fired = False

    def cancel(self) -> None:
        pass


NO_WATCHDOG = _NoWatchdog()
