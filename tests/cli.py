"""The command line as the tests run it: `pvshadow ARGS` in a forked copy of the test
process, calling the same main() that `python -m pvshadow` calls.

A forked child is a process like the real one (its own exit status, its own fds 0-2,
its own signals, nothing it does reaches the test's memory) but it skips what a fresh
interpreter pays on every call, starting Python and importing Unicorn, keystone and the
hypervisor: about 0.13 s a call, against a run of a few milliseconds. The few tests
about the entry point itself (`python -m pvshadow`, the installed script) start a real
interpreter with subprocess.
"""
import io
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

from pvshadow.tools.runner import cli_main, run_as_process
from tests.conftest import ROOT


def _become_the_command(args, cwd, stdin_fd=0, out_fd=1, err_fd=2, env=None):
    """In the child: fds 0-2 on the given ones, env's variables set, then the command as
    a process of its own (pvshadow.tools.runner.run_as_process, what `pvshadow test`
    forks too); never returns."""
    try:
        for fd, target in ((stdin_fd, 0), (out_fd, 1), (err_fd, 2)):
            if fd != target:
                os.dup2(fd, target)
        os.chdir(cwd)
        os.environ.update(env or {})
    except BaseException:
        os._exit(70)
    run_as_process(cli_main, args)


def _before_fork() -> None:
    """Nothing of ours left buffered for the child to write again, and the command
    line's parser built here, once, for every child to inherit (as `pvshadow test`'s
    jobs do)."""
    from pvshadow.tools.cli import build_parser
    build_parser()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (ValueError, io.UnsupportedOperation):
            pass


def _wait(pid: int, timeout: float) -> int:
    """The child's status as subprocess gives it (-N for a signal), or TimeoutExpired."""
    deadline = time.monotonic() + timeout
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise subprocess.TimeoutExpired(['pvshadow'], timeout)
            if pidfd is not None:
                select.select([pidfd], [], [], left)
            else:
                time.sleep(min(left, 0.002))
    finally:
        if pidfd is not None:
            os.close(pidfd)


def pvshadow(*args, timeout=120, input=None, cwd=ROOT) -> subprocess.CompletedProcess:
    """Run `pvshadow ARGS` (input: text for its stdin, else /dev/null); its exit status
    and text output, as subprocess.run(capture_output=True, text=True) gives them."""
    args = [str(a) for a in args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryFile() as stdin:
        if input is not None:
            stdin.write(input.encode())
            stdin.seek(0)
            stdin_fd = stdin.fileno()
        else:
            stdin_fd = os.open(os.devnull, os.O_RDONLY)
        _before_fork()
        pid = os.fork()
        if pid == 0:
            _become_the_command(args, cwd, stdin_fd, out.fileno(), err.fileno())
        if input is None:
            os.close(stdin_fd)
        returncode = _wait(pid, timeout)
        out.seek(0)
        err.seek(0)
        text = [f.read().decode('utf-8', 'replace') for f in (out, err)]
    return subprocess.CompletedProcess(['pvshadow', *args], returncode, *text)


class ForkedCommand:
    """`pvshadow ARGS` running beside the test, as subprocess.Popen(stdout=PIPE, text=True)
    would give it: its stdout to read, wait() and kill(); stderr stays the test's."""

    def __init__(self, *args, cwd=ROOT):
        read_end, write_end = os.pipe()
        stdin_fd = os.open(os.devnull, os.O_RDONLY)
        _before_fork()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(read_end)
            _become_the_command([str(a) for a in args], cwd, stdin_fd, write_end, 2)
        os.close(write_end)
        os.close(stdin_fd)
        self.stdout = os.fdopen(read_end, encoding='utf-8')
        self.returncode = None

    def wait(self, timeout=None) -> int:
        if self.returncode is None:
            self.returncode = _wait(self.pid, 1e9 if timeout is None else timeout)
            self.stdout.close()
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)
            self.wait()


class PtyCommand:
    """`pvshadow ARGS` at a terminal of its own: forked as the other commands are, on a
    pseudo-terminal that is its controlling terminal (so ^C typed there is its SIGINT),
    driven through pexpect on the master side. env: variables set in the child only."""

    def __init__(self, *args, cwd=ROOT, env=None, timeout=30, dimensions=(24, 80)):
        import pty
        import termios
        from pexpect import fdpexpect
        _before_fork()
        self.pid, fd = pty.fork()
        if self.pid == 0:                     # (pty.fork has put fds 0-2 on the terminal)
            _become_the_command([str(a) for a in args], cwd, env=env)
        termios.tcsetwinsize(fd, dimensions)
        self.fd = fd
        self.child = fdpexpect.fdspawn(fd, encoding='utf-8', timeout=timeout)
        self.exitstatus = None

    def __getattr__(self, name):              # expect, sendline, before, ...
        return getattr(self.child, name)

    def sendintr(self) -> None:
        """^C, as typed at the terminal: the line discipline makes it SIGINT."""
        self.child.send('\x03')

    def close(self, timeout: float = 30) -> int:
        if self.exitstatus is None:
            self.exitstatus = _wait(self.pid, timeout)
            os.close(self.fd)
        return self.exitstatus


def pvshadow_process(*args, timeout=120, **kwargs) -> subprocess.CompletedProcess:
    """`python -m pvshadow ARGS` in a fresh interpreter: for what is about the entry point."""
    return subprocess.run([sys.executable, '-m', 'pvshadow', *map(str, args)], cwd=ROOT,
                          text=True, capture_output=True, timeout=timeout, **kwargs)
