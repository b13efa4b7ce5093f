"""pvshadow test and pvshadow list: many kernels as a regression run, the way xtf-runner
runs XTF's tests.

Each (kernel, paging mode) runs as its own `pvshadow run` process, N at a time (forked
from this one, whose interpreter and imports it shares, so a kernel costs no interpreter
start: the process per kernel keeps one kernel's crash from touching the others); a kernel
whose header names the domains to run (`# pvshadow-run:`) runs once, as that host. The
outcome is read from the process's exit code (SUCCESS 0, SKIP 3, ERROR 4, FAILURE 5,
CRASH 6, and 2 for a kernel that cannot be used, counted as ERROR); the run prints a
live progress line on a terminal, then one line per kernel under "Combined test
results:", and exits with the worst code. --junit writes the same as JUnit XML.
"""
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import List, Optional

from pvshadow.guests.header import kernel_header
from pvshadow.guests.image import KernelError
from pvshadow.guests.kernels import ASM_DIR, kernel_names, resolve
from pvshadow.shadow.api import EXIT_CODES
from pvshadow.tools.options import positive_int, positive_seconds

OUTCOME_OF_CODE = {code: name for name, code in EXIT_CODES.items()}
OUTCOME_OF_CODE[2] = 'ERROR'               # a kernel or option pvshadow cannot use
SEVERITY = ('SUCCESS', 'SKIP', 'ERROR', 'FAILURE', 'CRASH')


@dataclass
class Job:
    kernel: str                           # a path
    name: str
    paging: Optional[str]                 # None: the kernel's header names its host
    outcome: str = ''
    seconds: float = 0.0
    output: str = ''

    @property
    def label(self) -> str:
        return f'{self.name}-{self.paging}' if self.paging else self.name


def describe(path: str) -> str:
    """A kernel's one-line description: the first sentence of its header comment."""
    words = []
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            for line in f:
                if not line.startswith('#') or line.startswith('# pvshadow'):
                    break
                words.append(line[1:].strip())
                if '. ' in line or line.rstrip().endswith('.'):
                    break
    except OSError:
        return ''
    text = ' '.join(words)
    text = text.split(': ', 1)[1] if ': ' in text.split(' ', 1)[0] + ' ' else text
    return text.split('. ')[0].rstrip('.')


def is_kernel_file(path: str) -> bool:
    if path.endswith(('.S', '.s', '.asm')):
        return True
    try:
        with open(path, 'rb') as f:
            return f.read(4) == b'\x7fELF'
    except OSError:
        return False


def collect(specs: List[str]) -> List[str]:
    """Kernel paths from names, files and directories (searched for asm sources and
    ELF files); every built-in kernel when none is given."""
    if not specs:
        return [os.path.join(ASM_DIR, name + '.S') for name in kernel_names()]
    paths = []
    for spec in specs:
        if os.path.isdir(spec):
            for root, dirs, files in os.walk(spec):
                dirs[:] = sorted(d for d in dirs if d != 'include')
                paths += [os.path.join(root, f) for f in sorted(files)
                          if is_kernel_file(os.path.join(root, f))]
        else:
            paths.append(resolve(spec))
    return paths


def plan(paths: List[str], paging: str) -> List[Job]:
    modes = ('direct', 'shadow') if paging == 'both' else (paging,)
    jobs = []
    for path in paths:
        name = os.path.splitext(os.path.basename(path))[0]
        header = kernel_header(path)
        if header.domains:
            jobs.append(Job(path, name, None))
        elif _translated(header.options):
            jobs.append(Job(path, name, 'translated'))     # it runs no other way
        else:
            jobs += [Job(path, name, mode) for mode in modes]
    return jobs


def _translated(options: List[str]) -> bool:
    return any(word == '--paging' and nxt == 'translated'
               for word, nxt in zip(options, options[1:]))


def _run_argv(job: Job, timeout: float) -> List[str]:
    argv = ['run', job.kernel, '--timeout', str(timeout)]
    return argv + ['--paging', job.paging] if job.paging else argv


def run_job(job: Job, timeout: float) -> Job:
    """One job in a fresh `pvshadow run` process (for callers that may have threads, as
    pytest does: cmd_test forks instead)."""
    import subprocess                    # (not on `pvshadow run`'s path: 2.5 ms a start)
    cmd = [sys.executable, '-m', 'pvshadow'] + _run_argv(job, timeout)
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30,
                              stdin=subprocess.DEVNULL, errors='replace')
        job.outcome = OUTCOME_OF_CODE.get(proc.returncode, 'CRASH')
        job.output = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        job.outcome = 'CRASH'
        job.output = f'{exc.stdout or ""}{exc.stderr or ""}\npvshadow test: no answer in time'
    job.seconds = time.monotonic() - start
    return job


class _Child:
    """One job's `pvshadow run`, forked from this process: its stdout and stderr come
    back through pipes, its exit code through waitpid."""

    def __init__(self, job: Job, timeout: float):
        self.job, self.started = job, time.monotonic()
        self.deadline = self.started + timeout + 30
        self.output = {}                     # read end -> bytes read so far
        ends = [os.pipe(), os.pipe()]
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:
            _child_main(job, timeout, ends)  # never returns
        for read_end, write_end in ends:
            os.close(write_end)
            self.output[read_end] = b''
        self.out_fd, self.err_fd = ends[0][0], ends[1][0]
        self.open_fds = set(self.output)     # the pipes not at their end yet

    def read(self, fd: int) -> None:
        data = os.read(fd, 1 << 16)
        if data:
            self.output[fd] += data
        else:
            os.close(fd)
            self.open_fds.discard(fd)

    def finish(self, killed: bool = False) -> Job:
        """Reap the child (killing it first if asked) and fill in the job."""
        if killed:
            # what the pipes hold now, without waiting for an end that a process the
            # child started (an assembler, say) could keep from coming
            os.kill(self.pid, signal.SIGKILL)
            for fd in list(self.open_fds):
                os.set_blocking(fd, False)
                try:
                    while fd in self.open_fds:
                        self.read(fd)
                except BlockingIOError:
                    os.close(fd)
                    self.open_fds.discard(fd)
        for fd in list(self.open_fds):
            while fd in self.open_fds:
                self.read(fd)
        _, status = os.waitpid(self.pid, 0)
        job = self.job
        text = (self.output[self.out_fd] + self.output[self.err_fd]).decode(errors='replace')
        if killed:
            job.outcome, job.output = 'CRASH', text + '\npvshadow test: no answer in time'
        else:
            code = os.waitstatus_to_exitcode(status)
            job.outcome, job.output = OUTCOME_OF_CODE.get(code, 'CRASH'), text
        job.seconds = time.monotonic() - self.started
        return job


def _child_main(job: Job, timeout: float, ends) -> None:
    for (read_end, write_end), fd in zip(ends, (1, 2)):
        os.close(read_end)
        os.dup2(write_end, fd)
        os.close(write_end)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    run_as_process(cli_main, _run_argv(job, timeout))


def cli_main(argv):
    from pvshadow.tools.cli import main
    return main(argv)


def run_as_process(main, argv: List[str]) -> None:
    """The rest of a forked child's life, as a fresh `pvshadow ARGV` process would live
    it on the fds 0-2 its caller set up: sys streams opened on them afresh, Python's
    default signal handling, main(argv); then the exit status a process would have (an
    uncaught exception's traceback and 1). Never returns."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.stdin = sys.__stdin__ = open(0, encoding='utf-8', closefd=False)
        sys.stdout = sys.__stdout__ = open(1, 'w', encoding='utf-8', closefd=False)
        sys.stderr = sys.__stderr__ = open(2, 'w', encoding='utf-8', errors='backslashreplace',
                                           closefd=False, buffering=1)
        sys.argv = ['pvshadow', *argv]
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        if code is None:
            code = 0
        elif not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
    except BaseException:                    # noqa: B902 - reported, as a process would
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code & 0xFF)


def run_forked(jobs: List[Job], timeout: float, parallel: int):
    """Run the jobs, `parallel` children at a time; yields each job as it finishes. On
    KeyboardInterrupt (the terminal's SIGINT reaches the children too, which stop) the
    running ones are reaped and the interrupt goes on up."""
    import select
    pending, running = list(jobs), {}
    try:
        while pending or running:
            while pending and len(running) < parallel:
                child = _Child(pending.pop(0), timeout)
                running[child.pid] = child
            fds = {fd: child for child in running.values() for fd in child.open_fds}
            wait = max(0.0, min(c.deadline for c in running.values()) - time.monotonic())
            for fd in select.select(list(fds), [], [], wait)[0] if fds else ():
                fds[fd].read(fd)
            now = time.monotonic()
            for pid, child in list(running.items()):
                if not child.open_fds or now > child.deadline:
                    del running[pid]
                    yield child.finish(killed=bool(child.open_fds))
    finally:
        for child in running.values():
            child.finish()


def write_junit(path: str, jobs: List[Job]) -> None:
    import xml.etree.ElementTree as ET
    failures = sum(j.outcome in ('FAILURE', 'CRASH') for j in jobs)
    errors = sum(j.outcome == 'ERROR' for j in jobs)
    suite = ET.Element('testsuite', name='pvshadow', tests=str(len(jobs)),
                       failures=str(failures), errors=str(errors),
                       skipped=str(sum(j.outcome == 'SKIP' for j in jobs)),
                       time=f'{sum(j.seconds for j in jobs):.3f}')
    for job in jobs:
        case = ET.SubElement(suite, 'testcase', classname='pvshadow', name=job.label,
                             time=f'{job.seconds:.3f}')
        tail = '\n'.join(job.output.splitlines()[-40:])
        if job.outcome == 'SKIP':
            ET.SubElement(case, 'skipped', message='SKIP').text = tail
        elif job.outcome in ('FAILURE', 'CRASH'):
            ET.SubElement(case, 'failure', message=job.outcome).text = tail
        elif job.outcome == 'ERROR':
            ET.SubElement(case, 'error', message='ERROR').text = tail
    ET.ElementTree(suite).write(path, encoding='utf-8', xml_declaration=True)


def cmd_test(args) -> int:
    try:
        jobs = plan(collect(args.kernels), args.paging)
    except KernelError as exc:
        print(f'pvshadow: {exc}', file=sys.stderr)
        return 2
    if not jobs:
        print('pvshadow: no kernels found', file=sys.stderr)
        return 2
    live = sys.stderr.isatty()
    done = 0
    width = max(len(j.label) for j in jobs) + 2
    import pvshadow.tools.cli                # noqa: F401 - imported once, for every child
    try:
        for job in run_forked(jobs, args.timeout, args.jobs):
            done += 1
            if live:
                print(f'\r[{done}/{len(jobs)}] {job.label:{width}} {job.outcome:8}', end='',
                      file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        # the kernels running got the terminal's SIGINT too, and stop; the rest never start
        finished = sum(1 for job in jobs if job.outcome)
        print(f'\npvshadow test: interrupted with {finished} of {len(jobs)} finished',
              file=sys.stderr)
        for job in jobs:
            if job.outcome:
                print(f'{job.label:{width}} {job.outcome}')
        return 130
    if live:
        print(file=sys.stderr)
    for job in jobs:
        if job.outcome != 'SUCCESS':
            print(f'--- {job.label}: {job.outcome}')
            print('\n'.join(job.output.splitlines()[-20:]))
    print('Combined test results:')
    for job in jobs:
        print(f'{job.label:{width}} {job.outcome}')
    if args.junit:
        write_junit(args.junit, jobs)
    worst = max(jobs, key=lambda j: SEVERITY.index(j.outcome)).outcome
    return EXIT_CODES[worst]


def cmd_list(args) -> int:
    names = kernel_names()
    width = max(map(len, names)) + 2
    for name in names:
        print(f'{name:{width}} {describe(os.path.join(ASM_DIR, name + ".S"))}')
    return 0


def add_parsers(sub) -> None:
    test = sub.add_parser('test', help='run many kernels as a regression run (xtf-runner style)',
                          description=__doc__.split('\n\n')[0])
    test.add_argument('kernels', nargs='*', metavar='PATH|NAME',
                      help='kernels, or directories to search (default: every built-in kernel)')
    test.add_argument('-j', dest='jobs', type=positive_int, default=os.cpu_count() or 1,
                      metavar='N', help='kernels run at once (default: the number of CPUs)')
    test.add_argument('--paging', choices=('direct', 'shadow', 'translated', 'both'),
                      default='both',
                      help='the paging mode(s) each kernel runs under (both: direct and '
                           'shadow; a kernel whose header asks for translated runs so)')
    test.add_argument('--timeout', type=positive_seconds, default=60.0, metavar='S',
                      help='watchdog for each kernel, in seconds (60)')
    test.add_argument('--junit', metavar='FILE', help='also write the results as JUnit XML')
    test.set_defaults(func=cmd_test)
    listing = sub.add_parser('list', help='the built-in kernels, each with a line about it')
    listing.set_defaults(func=cmd_list)
