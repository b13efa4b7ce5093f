"""pvshadow: run PV kernels on a shadow-paging hypervisor.

    pvshadow run KERNEL [--memory MB] [--paging direct|shadow|translated] [--audit] [--budget N] [--timeout S]
    pvshadow run A.cfg B.cfg ...  (or several KERNELs: one host, every domain together)
    pvshadow access KERNEL --watch {read,write,exec,altp2m_write,altp2m_exec} [--paging shadow|translated]
                   [--frames A-B | --pfns A-B] [--json] [--relax]
    pvshadow trace KERNEL [--paging direct|shadow] [-x FILE] [--log FILE|-] [--gdb PORT]
    pvshadow test [PATH|NAME ...] [-j N] [--paging direct|shadow|both] [--junit FILE]
    pvshadow list
    pvshadow build KERNEL.S [-o KERNEL.elf]

KERNEL is an ELF with Xen notes, an asm/ source (.S), or the name of a test kernel.
Exit status, by the kernel's verdict as xtf-runner gives it: 0 SUCCESS, 3 SKIP, 4 ERROR,
5 FAILURE, 6 CRASH (no verdict line, a domain crash, a timeout, an internal error: any
end but a clean poweroff, the reason on stderr); 2 for a kernel or argument that cannot
be used. With several domains, each console line is prefixed with its domain's name and
the status is the worst of all domains.
"""
import argparse
import functools
import sys

from pvshadow.guests.config import domain_specs, is_config
from pvshadow.guests.image import KernelError
from pvshadow.shadow import api
from pvshadow.shadow.abi import xen
from pvshadow.shadow.exits import ExitReason, format_registers
from pvshadow.tools.interrupt import interruptible
from pvshadow.tools.options import (OneLineParser, add_guest_options, add_include_option, port,
                                    refuse, shadow_pool, version)


def _write_console(data: bytes) -> None:
    sys.stdout.flush()          # what was printed before the guest wrote comes before it
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def parse_rom(text: str):
    """FILE@PFN (PFN decimal or 0x hex)."""
    path, sep, pfn = text.rpartition('@')
    try:
        if not sep or not path:
            raise ValueError
        return path, int(pfn, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r}: expected FILE@PFN') from None


def _add_regions(domain, args) -> str:
    """Load --rom / --romd files; returns an error message or ''."""
    for romd, specs in ((False, args.rom), (True, args.romd)):
        for path, pfn in specs:
            try:
                with open(path, 'rb') as f:
                    data = f.read(1 << 24)
            except OSError as exc:
                return f'{path}: {exc.strerror}'
            rc = domain.add_rom(f'{"romd" if romd else "rom"}:{path}', pfn, data, romd=romd)
            if rc:
                return f'{path}@{pfn:#x}: cannot add the region ({rc}: pfns not in the domain?)'
    return ''


def cmd_run(args) -> int:
    if len(args.kernel) > 1 or is_config(args.kernel[0]):
        return run_several(args)
    args.kernel = args.kernel[0]
    regions = args.rom or args.romd
    paging = 'shadow' if regions else args.paging    # regions need shadow paging
    try:
        domain = api.boot(args.kernel, memory_mb=args.memory, paging=paging,
                          cmdline=args.cmdline, audit=args.audit,
                          shadow_pool_pages=args.shadow_pool, console_sink=_write_console,
                          include_dirs=args.include_dirs)
    except (KernelError, ValueError) as exc:
        print(f'pvshadow: {exc}', file=sys.stderr)
        return 2
    domain.runstate_policy = args.runstate_policy
    xen_console = hypervisor_console([domain], args.xen_log)
    error = _add_regions(domain, args) if regions else ''
    if error:
        print(f'pvshadow: {error}', file=sys.stderr)
        return 2
    if regions:
        domain.paging.regions.retry_unemulatable = args.retry_unemulatable

    def trace_mmio(m):
        if args.trace_mmio:
            print(f'mmio: {m["direction"]} {m["size"]} bytes at gpa {m["address"]:#x} '
                  f'(gla {m["gla"]:#x}, rip {m["rip"]:#x}) data {m["data"]:#x} '
                  f'[{m["region"]}]', file=sys.stderr, flush=True)
    with interruptible(domain.cpu):
        exit_ = api.run_with_device_model(domain, on_mmio=trace_mmio, budget=args.budget,
                                          timeout=args.timeout or None)
    xen_console.flush_partial()
    if exit_.reason is ExitReason.INTERRUPTED:
        return report_interrupt(domain, exit_)
    if exit_.instruction:
        print(f'pvshadow: instruction bytes {exit_.instruction.hex()}', file=sys.stderr)
    result = api.RunResult(domain, exit_)
    if not exit_.clean:
        print(f'pvshadow: {exit_.describe()}', file=sys.stderr)
        if 'rip' in exit_.registers:
            from pvshadow.shadow import inspect
            print(f'pvshadow: at {inspect.symbolize(domain, exit_.registers["rip"])}',
                  file=sys.stderr)
        for line in domain.xen_log:
            print(f'(XEN) {line}', file=sys.stderr)
        if exit_.registers:
            print(format_registers(exit_.registers), file=sys.stderr)
    elif result.outcome == 'CRASH':
        print('pvshadow: the kernel powered off without a "Test result:" line',
              file=sys.stderr)
    return api.exit_code([result])


EXIT_INTERRUPTED = 130                # a shell's code for a run ended by SIGINT


def report_interrupt(domain, exit_) -> int:
    """Where the guest was when Ctrl-C stopped it, and the shell's code for SIGINT."""
    from pvshadow.shadow import inspect
    rip = exit_.registers.get('rip', 0)
    v = domain.running_vcpu()
    print(f'\npvshadow: interrupted: d{domain.domid}v{v.vcpu_id} at '
          f'{inspect.symbolize(domain, rip)}', file=sys.stderr)
    if exit_.registers:
        print(format_registers(exit_.registers), file=sys.stderr)
    return EXIT_INTERRUPTED


class PrefixedConsole:
    """Whole lines from each domain's console, each prefixed with the domain's name
    (`template` places it: 'back: ' for consoles, '(d1) ' for the hypervisor console)."""

    def __init__(self, out, template: str = '{name}: '):
        self.out = out
        self.template = template
        self.partial = {}

    def __call__(self, name: str, data: bytes) -> None:
        text = self.partial.pop(name, b'') + data
        *lines, rest = text.split(b'\n')
        prefix = self.template.format(name=name).encode()
        for line in lines:
            self.out.write(prefix + line + b'\n')
        if rest:
            self.partial[name] = rest
        self.out.flush()

    def flush_partial(self) -> None:
        for name, rest in self.partial.items():
            self.out.write(self.template.format(name=name).encode() + rest + b'\n')
        self.partial.clear()
        self.out.flush()


def hypervisor_console(domains, path=None):
    """Send each domain's console_io output, once its PV console ring is in use, to the
    hypervisor console: stderr (or the file `path`), each line with Xen's "(d1) " prefix.
    Returns what to flush at the end."""
    out = open(path, 'ab') if path else sys.stderr.buffer
    console = PrefixedConsole(out, '(d{name}) ')
    for d in domains:
        d.hypervisor_console_sink = lambda data, d=d: console(str(d.domid), data)
    return console


def run_several(args) -> int:
    """Every kernel or config into one host, run together."""
    if args.rom or args.romd or args.budget:
        print('pvshadow: --rom, --romd and --budget take a single kernel', file=sys.stderr)
        return 2
    try:
        specs = domain_specs(args.kernel, args.memory, args.paging, args.cmdline)
        console = PrefixedConsole(sys.stdout.buffer)
        host, domains = api.boot_host(specs, console_sink=console)
    except (KernelError, ValueError) as exc:
        print(f'pvshadow: {exc}', file=sys.stderr)
        return 2
    xen_console = hypervisor_console(domains, args.xen_log)
    with interruptible(host.cpu):
        results = api.run_host_booted(host, domains, timeout=args.timeout or None)
    console.flush_partial()
    xen_console.flush_partial()
    stopped = [r for r in results if r.exit.reason is ExitReason.INTERRUPTED]
    if stopped:
        return report_interrupt(stopped[0].domain, stopped[0].exit)
    for result in results:
        d = result.domain
        verdict = result.verdict
        who = d.name if d.name == f'd{d.domid}' else f'{d.name} (d{d.domid})'
        print(f'pvshadow: {who}: {verdict or "no verdict"}; '
              f'{result.exit.describe()}', file=sys.stderr)
        if result.outcome != 'SUCCESS':
            for line in d.xen_log:
                print(f'(XEN) {d.name}: {line}', file=sys.stderr)
    return api.exit_code(results)


WATCH_ACCESS = {'write': 'rx', 'exec': 'rw', 'read': 'wx',
                'altp2m_write': 'rx', 'altp2m_exec': 'rw'}


def parse_range(text: str):
    """'A-B' or 'A' (decimal or 0x hex) -> (first, count)."""
    try:
        first, _, last = text.partition('-')
        first_n = int(first, 0)
        last_n = int(last, 0) if last else first_n
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a frame or a range A-B') from None
    if last_n < first_n:
        raise argparse.ArgumentTypeError(f'{text!r}: the range ends before it starts')
    return first_n, last_n - first_n + 1


def cmd_access(args) -> int:
    """Watch a kernel's memory as xen-access does: print each event and answer it."""
    from pvshadow.shadow.listener import Listener, ListenerError
    console = sys.stderr.buffer if args.json else sys.stdout.buffer

    def write_console(data: bytes) -> None:
        sys.stdout.flush()      # the events printed before the guest wrote come before it
        console.write(data)
        console.flush()
    altp2m = args.watch.startswith('altp2m_')
    if args.paging == 'direct' or altp2m and args.paging != 'translated':
        print(f'pvshadow: --watch {args.watch} needs --paging '
              f'{"translated" if altp2m else "shadow or translated"}', file=sys.stderr)
        return 2
    try:
        domain = api.boot(args.kernel, memory_mb=args.memory, paging=args.paging,
                          cmdline=args.cmdline, audit=args.audit, vm_event_ring=True,
                          console_sink=write_console, include_dirs=args.include_dirs)
        listener = Listener(domain)
    except (KernelError, ValueError, ListenerError) as exc:
        print(f'pvshadow: {exc}', file=sys.stderr)
        return 2
    access = WATCH_ACCESS[args.watch]
    view = None
    if altp2m:
        if args.frames is not None or args.pfns is not None:
            print('pvshadow: an altp2m watch covers every gfn (its view\'s default access)',
                  file=sys.stderr)
            return 2
        view = listener.altp2m_watch(access)
    elif args.frames is None and args.pfns is None:
        listener.set_default_access(access)
    if args.frames is not None:
        first, count = args.frames
        rc = listener.set_access(access, first, count)
        if rc:
            print(f'pvshadow: cannot watch mfns {first:#x}-{first + count - 1:#x}: error {rc} '
                  '(frames the domain does not own?)', file=sys.stderr)
            return 2
    if args.pfns is not None:
        first, count = args.pfns
        for pfn in range(first, first + count):
            if not domain.pfn_valid(pfn):
                print(f'pvshadow: pfn {pfn:#x} is not in the domain', file=sys.stderr)
                return 2
            # a translated guest's access types are keyed by gfn: its pfn is one
            listener.set_access(access, pfn if domain.translated else domain.p2m[pfn], 1)
    from pvshadow.tools.tracelog import JsonLog
    log = JsonLog(sys.stdout) if args.json else None
    xen_console = hypervisor_console([domain])
    with interruptible(domain.cpu):
        for event in listener.events(timeout=args.timeout or None):
            if log is not None:
                log.write(event.as_dict(), domain)    # the shape of trace's vm_event lines
            else:
                sys.stdout.write(event.describe() + '\n')
                sys.stdout.flush()
            if view is not None:
                # xen-access's altp2m loop: the access runs in view 0, one instruction
                # single-stepped, then the vCPU goes back to the watching view
                if event.reason == xen.VM_EVENT_REASON_SINGLESTEP:
                    if log is None:
                        sys.stdout.write(f'\tSwitching altp2m to view {view}!\n')
                    event.respond(view=view, toggle_singlestep=True)
                elif event.view is not None:
                    event.respond(view=0, toggle_singlestep=True)
                else:
                    event.respond()
                continue
            if args.relax:
                event.respond(access='rwx')
            else:
                event.respond(emulate=True)
    xen_console.flush_partial()
    exit_ = listener.exit
    print(f'pvshadow: {listener.events_seen} events; {exit_.describe()}', file=sys.stderr)
    if exit_.reason is ExitReason.INTERRUPTED:
        return EXIT_INTERRUPTED
    return api.exit_code([api.RunResult(domain, exit_)])


def cmd_build(args) -> int:
    """An asm kernel as a PV64 ELF: Xen notes, the loaded segment, a symbol table."""
    import os
    from pvshadow.guests.elfwrite import write_pv_elf
    from pvshadow.guests.kernels import load_kernel, resolve
    try:
        path = resolve(args.kernel)
        if not path.endswith(('.S', '.s', '.asm')):
            return refuse(f'{path}: build takes an asm source (.S)')
        image = load_kernel(path, include_dirs=args.include_dirs)
    except KernelError as exc:
        return refuse(str(exc))
    out = args.output or os.path.splitext(os.path.basename(path))[0] + '.elf'
    try:
        with open(out, 'wb') as f:
            f.write(write_pv_elf(image))
    except OSError as exc:
        return refuse(f'{out}: {exc.strerror}')
    print(f'pvshadow: wrote {out} ({len(image.symbols)} symbols, entry {image.entry:#x})',
          file=sys.stderr)
    return 0


def cmd_trace(args) -> int:
    from pvshadow.tools.trace import main_trace
    return main_trace(args)


class _VersionAction(argparse.Action):
    """--version, looked up only when asked for (importlib.metadata costs a short run
    a tenth of its time)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f'pvshadow {version()}')
        parser.exit(0)


@functools.lru_cache(maxsize=1)
def build_parser() -> argparse.ArgumentParser:
    """The command line's parser, built once a process: a forked `pvshadow test` job (or
    a test's forked command) parses with its parent's, without argparse's 9 ms of set-up
    (most of it gettext looking for translations of its messages)."""
    parser = OneLineParser(prog='pvshadow', description=__doc__.split('\n\n')[0])
    parser.add_argument('--version', action=_VersionAction, nargs=0,
                        help="show the program's version number and exit")
    sub = parser.add_subparsers(dest='command', required=True)
    run = sub.add_parser('run', help='boot a kernel and show its console')
    run.add_argument('kernel', nargs='+',
                     help='ELF path, asm/ source path, test-kernel name, or xl-style .cfg; '
                          'several run together on one host')
    add_guest_options(run)
    run.add_argument('--shadow-pool', type=shadow_pool, default=1024, metavar='PAGES',
                     help='shadow mode: at most this many shadow pages (default %(default)s)')
    run.add_argument('--rom', type=parse_rom, action='append', default=[], metavar='FILE@PFN',
                     help='back guest frames from PFN with FILE, read-only: writes are mmio '
                          'exits and are dropped (implies --paging shadow)')
    run.add_argument('--romd', type=parse_rom, action='append', default=[], metavar='FILE@PFN',
                     help='the same, but writes reach the frame (a ROMD device)')
    run.add_argument('--trace-mmio', action='store_true', help='print each mmio exit')
    run.add_argument('--retry-unemulatable', action='store_true',
                     help='leave the guest retrying a region write that cannot be emulated '
                          'instead of ending with internal_error')
    run.add_argument('--xen-log', metavar='FILE',
                     help='append the hypervisor console (console_io once the guest uses its '
                          'console ring) to FILE instead of stderr')
    run.add_argument('--runstate-policy', choices=('each-switch', 'registration'),
                     default='each-switch',
                     help='when a runstate area registered by virtual address is walked: at '
                          'each switch, as Xen does (each-switch), or once (registration)')
    run.set_defaults(func=cmd_run)

    access = sub.add_parser('access', help='watch a kernel\'s memory accesses (mem_access)',
                            description=cmd_access.__doc__)
    access.add_argument('kernel', help='ELF path, asm/ source path, or test-kernel name')
    access.add_argument('--watch', required=True, choices=sorted(WATCH_ACCESS),
                        help='the access that raises an event: write (access rx), exec (rw), '
                             'read (wx); altp2m_write and altp2m_exec (a translated kernel) '
                             'watch in an altp2m view of that access, each access run in view '
                             '0 for one single-stepped instruction, as xen-access does')
    where = access.add_mutually_exclusive_group()
    where.add_argument('--frames', type=parse_range, metavar='A-B',
                       help='machine frames to watch (default: every frame, via the default access)')
    where.add_argument('--pfns', type=parse_range, metavar='A-B',
                       help='pseudo-physical frames to watch, through the domain\'s p2m')
    access.add_argument('--json', action='store_true',
                        help='one JSON object per event on stdout (the console goes to stderr)')
    access.add_argument('--relax', action='store_true',
                        help='answer by making the frame rwx (one event per frame, as xen-access '
                             'does) instead of letting each access through once')
    add_guest_options(access, paging_default='shadow', budget=False)
    access.set_defaults(func=cmd_access)

    trace = sub.add_parser('trace', help='follow every fault interactively, log it, or attach gdb')
    trace.add_argument('kernel', nargs='+',
                       help='ELF path, asm/ source path, test-kernel name, or xl-style .cfg; '
                            'several run together on one host (`domain` picks one)')
    add_guest_options(trace, paging_default='shadow')
    trace.add_argument('-x', dest='script', metavar='FILE', help='run tracer commands from FILE')
    trace.add_argument('--log', metavar='FILE', help='write every event as JSON lines (- for stdout)')
    trace.add_argument('--gdb', type=port, metavar='PORT', help='serve the gdb remote protocol')
    trace.set_defaults(func=cmd_trace)
    build = sub.add_parser('build', help='write an asm kernel as a PV64 ELF with symbols',
                           description=cmd_build.__doc__)
    build.add_argument('kernel', help='asm/ source path or test-kernel name')
    add_include_option(build)
    build.add_argument('-o', dest='output', metavar='FILE',
                       help='the ELF to write (default: the source\'s name with .elf, here)')
    build.set_defaults(func=cmd_build)
    from pvshadow.tools.runner import add_parsers
    add_parsers(sub)
    parser.commands = {'run': run, 'access': access, 'trace': trace}
    return parser




def _header_argv(parser, argv):
    """argv with the kernel's own header options placed first, so the command line's
    win; (argv, the header's domains). Options the command does not take are left out."""
    from pvshadow.guests.header import kernel_header
    from pvshadow.guests.kernels import resolve
    args = parser.parse_args(argv)
    kernels = args.kernel if isinstance(getattr(args, 'kernel', None), list) else \
        [getattr(args, 'kernel', None)]
    if args.command not in ('run', 'trace', 'access') or len(kernels) != 1 or \
            kernels[0] is None or is_config(kernels[0]):
        return argv, []
    try:
        header = kernel_header(resolve(kernels[0]))
    except KernelError:
        return argv, []                   # the command itself reports a bad kernel
    known = parser.commands[args.command]._option_string_actions
    kept, words = [], header.options
    i = 0
    while i < len(words):
        action = known.get(words[i])
        takes = 1 if action is not None and action.nargs is None and action.const is None else 0
        if action is not None:
            kept += words[i:i + 1 + takes]
        i += 1 + takes
    return [argv[0]] + kept + argv[1:], header.domains if args.command != 'access' else []


def main(argv=None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    header_domains = []
    if argv and argv[0] in parser.commands:
        argv, header_domains = _header_argv(parser, argv)
    args = parser.parse_args(argv)
    if header_domains:
        args.kernel = header_domains
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
