"""The run loops' wall-clock limit (PhysicalCpu.watchdog)."""
import threading


class Watchdog:
    """A wall-clock limit for a whole run: one thread that, once the time is up, stops
    the CPU, and again every 10 ms until cancelled (a stop asked for between two
    emu_starts is lost), in place of the timer thread Unicorn starts for every emu_start
    given a timeout. No stop is made once cancel() has returned."""

    def __init__(self, uc, seconds: float):
        self.fired = False
        self._done = False
        self._lock = threading.Lock()
        self._wake = threading.Event()
        threading.Thread(target=self._watch, args=(uc, seconds), daemon=True,
                         name='pvshadow-watchdog').start()

    def _watch(self, uc, seconds: float) -> None:
        if self._wake.wait(seconds):
            return
        self.fired = True
        while True:
            with self._lock:
                if self._done:
                    return
                uc.emu_stop()
            if self._wake.wait(0.01):
                return

    def cancel(self) -> None:
        with self._lock:
            self._done = True
        self._wake.set()


class _NoWatchdog:
    """A run without a time limit (the common case: nothing to create or cancel)."""
    fired = False

    def cancel(self) -> None:
        pass


NO_WATCHDOG = _NoWatchdog()
