"""The run loops' wall-clock watchdog: one thread a process, armed for each timed run."""
import gc
import os
import threading
import time
import weakref

from pvshadow.shadow.listener import Listener
from pvshadow.shadow.watchdog import Watcher, arm
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
    run = Watcher().arm(uc, 0.02)
    assert _wait_for(lambda: uc.stops >= 2)     # again every 10 ms
    assert run.fired
    run.cancel()
    stops = uc.stops
    time.sleep(0.05)
    assert uc.stops == stops


def test_a_run_cancelled_in_time_is_never_stopped_and_the_next_run_is():
    uc = CountingCpu()
    watcher = Watcher()
    first = watcher.arm(uc, 0.05)
    first.cancel()
    second = watcher.arm(uc, 0.1)     # a later deadline than the one the thread sleeps to
    assert _wait_for(lambda: second.fired)
    second.cancel()
    assert not first.fired and uc.stops >= 1


def test_two_cpus_runs_at_once_are_each_stopped_at_their_own_time():
    early, late = CountingCpu(), CountingCpu()
    watcher = Watcher()
    slow = watcher.arm(late, 0.3)
    fast = watcher.arm(early, 0.02)
    assert _wait_for(lambda: fast.fired)
    assert not slow.fired and late.stops == 0
    fast.cancel()
    assert _wait_for(lambda: slow.fired)
    slow.cancel()


def test_timed_runs_share_one_thread_and_a_finished_host_is_freed(monkeypatch):
    d = boot()
    listener = Listener(d)
    listener.set_access('rx', mfn_of(d, SYMBOLS['watched']))
    started = []
    start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, 'start', lambda t: started.append(t) or start(t))
    runs = 0
    for event in listener.events(timeout=30):      # a timed run for each event
        event.respond(emulate=True)
        runs += 1
    assert runs >= 5 and listener.exit.clean
    assert len(started) <= 1                       # the process's first timed run's
    engine = weakref.ref(d.cpu.uc)
    del d, listener, event
    gc.collect()
    assert engine() is None             # the thread holds no CPU between runs


def test_a_forked_child_gets_a_watchdog_thread_of_its_own():
    uc = CountingCpu()
    arm(uc, 30).cancel()                       # the parent's thread exists
    pid = os.fork()
    if pid == 0:                               # the child: that thread is not there
        run = arm(uc, 0.02)
        os._exit(0 if _wait_for(lambda: run.fired) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
