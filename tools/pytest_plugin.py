"""pvshadow's pytest plugin: keep a PV test kernel as a regression test.

Kernel files are collected as tests: `test_*.S` and `*.pvk.S` by default, or the glob
patterns of the `pvshadow_kernels` ini option. Each runs once per paging mode of
`pvshadow_paging` (default: direct shadow), or once as the host its `# pvshadow-run:`
header names; its header's options apply, as under `pvshadow run`. The kernel's verdict
decides: SUCCESS passes, SKIP skips with the kernel's reason, FAILURE, ERROR and CRASH
(no verdict, a crash, the watchdog `pvshadow_timeout`) fail with the console's tail.
Items are ordinary pytest items, so `-n auto` (pytest-xdist), -k and sharding work.

The `pvshadow` fixture is for kernels driven from Python: `pvshadow.boot(kernel, ...)`,
`pvshadow.run(kernel, ...)`, `pvshadow.run_host(specs)`, `pvshadow.inspect`,
`pvshadow.Listener`, `pvshadow.toolstack`.

Loaded by its entry point (pytest11 `pvshadow`), or explicitly: `pytest -p pvshadow`.
"""
import fnmatch
import os
import types

import pytest

DEFAULT_PATTERNS = ['test_*.S', '*.pvk.S']
DEFAULT_PAGING = ['direct', 'shadow']
CONSOLE_TAIL = 40


def pytest_addoption(parser):
    parser.addini('pvshadow_kernels', 'glob patterns of kernel files collected as tests',
                  type='args', default=DEFAULT_PATTERNS)
    parser.addini('pvshadow_paging', 'paging modes each kernel runs under',
                  type='args', default=DEFAULT_PAGING)
    parser.addini('pvshadow_timeout', 'watchdog for each kernel run, in seconds', default='60')


def pytest_collect_file(file_path, parent):
    patterns = parent.config.getini('pvshadow_kernels')
    if any(fnmatch.fnmatch(file_path.name, pattern) for pattern in patterns):
        return KernelFile.from_parent(parent, path=file_path)
    return None


class KernelFile(pytest.File):
    def collect(self):
        from pvshadow.guests.header import kernel_header
        from pvshadow.guests.image import KernelError
        try:
            header = kernel_header(str(self.path))
        except KernelError as exc:
            raise self.CollectError(str(exc)) from None
        modes = [None] if header.domains else self.config.getini('pvshadow_paging')
        for mode in modes:
            yield KernelItem.from_parent(self, name=mode or 'host', paging=mode,
                                         header=header)


class KernelFailed(Exception):
    """The kernel's outcome was not SUCCESS."""

    def __init__(self, outcome: str, console: str):
        super().__init__(outcome)
        self.outcome, self.console = outcome, console


class KernelItem(pytest.Item):
    def __init__(self, *, paging, header, **kwargs):
        super().__init__(**kwargs)
        self.paging = paging
        self.header = header

    def runtest(self):
        timeout = float(self.config.getini('pvshadow_timeout'))
        outcome, console = run_kernel_file(str(self.path), self.paging, self.header, timeout)
        if outcome == 'SKIP':
            reasons = [line.split(':', 1)[1].strip() for line in console.splitlines()
                       if line.startswith('skipped:')]
            pytest.skip(reasons[-1] if reasons else 'the kernel reported SKIP')
        if outcome != 'SUCCESS':
            raise KernelFailed(outcome, console)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, KernelFailed):
            tail = '\n'.join(excinfo.value.console.splitlines()[-CONSOLE_TAIL:])
            return f'{excinfo.value.outcome}: {self.path.name} ({self.name})\n{tail}'
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f'pvshadow kernel {self.path.name} [{self.name}]'


def run_kernel_file(path: str, paging, header, timeout: float):
    """(outcome, console and reasons) for one kernel run. A kernel whose header gives
    options or a host runs as `pvshadow run` does, in a child process; the rest run in
    this process."""
    from pvshadow.guests.image import KernelError
    from pvshadow.shadow import api
    if header.options or header.domains:
        from pvshadow.tools.runner import Job, run_job
        job = run_job(Job(path, os.path.basename(path), paging), timeout)
        return job.outcome, job.output
    try:
        result = api.run_kernel(path, paging=paging, timeout=timeout)
    except KernelError as exc:
        return 'ERROR', str(exc)
    console = result.console
    if not result.exit.clean:
        console += f'\n{result.exit.describe()}'
    return result.outcome, console


@pytest.fixture
def pvshadow():
    """pvshadow's Python API, for kernels driven from a test."""
    from pvshadow.shadow import api, inspect, toolstack
    from pvshadow.shadow.listener import Listener
    return types.SimpleNamespace(boot=api.boot, run=api.run_kernel, run_host=api.run_host,
                                 boot_host=api.boot_host, inspect=inspect,
                                 Listener=Listener, toolstack=toolstack)
