"""The run loops' wall-clock watchdog: one thread per CPU, armed for each timed run."""
import os
import threading
import time

from pvshadow.shadow.listener import Listener
from pvshadow.shadow.watchdog import Watchdog
from tests.test_mem_access import SYMBOLS, boot, mfn_of


class CountingCpu:
    def __init__(self):
        self.stops = 0

    def emu_stop(self):
        self.stops += 1


def _wait_for(condition, seconds=5.0):
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        time.sleep(0.005)
    return condition()


def test_a_run_whose_time_is_up_is_stopped_until_it_is_cancelled():
    uc = CountingCpu()
    run = Watchdog(uc).arm(0.02)
    assert _wait_for(lambda: uc.stops >= 2)     # again every 10 ms
    assert run.fired
    run.cancel()
    stops = uc.stops
    time.sleep(0.05)
    assert uc.stops == stops


def test_a_run_cancelled_in_time_is_never_stopped_and_the_next_run_is():
    uc = CountingCpu()
    watchdog = Watchdog(uc)
    first = watchdog.arm(0.05)
    first.cancel()
    second = watchdog.arm(0.1)        # a later deadline than the one the thread sleeps to
    assert _wait_for(lambda: second.fired)
    second.cancel()
    assert not first.fired and uc.stops >= 1


def test_many_timed_runs_share_one_watchdog_thread():
    d = boot()
    listener = Listener(d)
    listener.set_access('rx', mfn_of(d, SYMBOLS['watched']))
    before = {t for t in threading.enumerate() if t.name == 'pvshadow-watchdog'}
    runs = 0
    for event in listener.events(timeout=30):      # a timed run for each event
        event.respond(emulate=True)
        runs += 1
    assert runs >= 5 and listener.exit.clean
    started = {t for t in threading.enumerate() if t.name == 'pvshadow-watchdog'} - before
    assert len(started) == 1


def test_a_forked_child_gets_a_watchdog_thread_of_its_own():
    uc = CountingCpu()
    watchdog = Watchdog(uc)
    watchdog.arm(30).cancel()                  # the parent's thread exists
    pid = os.fork()
    if pid == 0:                               # the child: that thread is not there
        run = watchdog.arm(0.02)
        os._exit(0 if _wait_for(lambda: run.fired) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
