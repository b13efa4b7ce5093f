"""Ctrl-C that stops a running guest at once.

Python runs a signal handler only between bytecodes, and a guest loop runs inside
Unicorn's C code: SIGINT would wait for the next hook. So the C-level handler's wakeup
byte (signal.set_wakeup_fd) is read by a watcher thread, which stops the CPU the way
Unicorn's own watchdog does (PhysicalCpu.interrupt); the run loop then returns an
INTERRUPTED exit and the front end reports it. No KeyboardInterrupt is raised.
"""
import os
import signal
import threading
from contextlib import contextmanager


@contextmanager
def interruptible(cpu):
    """While inside, Ctrl-C interrupts the guest on cpu instead of raising."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    done = threading.Event()

    def watch():
        while not done.is_set():
            try:
                data = os.read(read_end, 64)
            except OSError:
                return
            if not data or done.is_set():
                return
            if signal.SIGINT in data:
                cpu.interrupt()

    previous_handler = signal.signal(signal.SIGINT, lambda *_: cpu.interrupt())
    previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    watcher = threading.Thread(target=watch, name='pvshadow-interrupt', daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGINT, previous_handler)
        os.write(write_end, b'\0')         # wake the watcher so it sees done
        watcher.join(timeout=1)
        os.close(write_end)
        os.close(read_end)
