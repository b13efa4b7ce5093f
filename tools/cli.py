"""pvshadow: run PV kernels on a shadow-paging hypervisor.

    pvshadow run KERNEL [--memory MB] [--paging direct|shadow] [--audit] [--budget N] [--timeout S]

KERNEL is an ELF with Xen notes, an asm/ source (.S), or the name of a test kernel.
Exit status: 0 after a clean poweroff, 1 for any other end (the reason on stderr),
2 for a kernel or argument that cannot be used.
"""
import argparse
import sys

from guests.image import KernelError
from shadow import api
from shadow.exits import format_registers


def _write_console(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def cmd_run(args) -> int:
    try:
        domain = api.boot(args.kernel, memory_mb=args.memory, paging=args.paging,
                          cmdline=args.cmdline, audit=args.audit,
                          shadow_pool_pages=args.shadow_pool, console_sink=_write_console)
    except (KernelError, ValueError) as exc:
        print(f'pvshadow: {exc}', file=sys.stderr)
        return 2
    exit_ = domain.run(budget=args.budget, timeout=args.timeout or None)
    if exit_.clean:
        return 0
    print(f'pvshadow: {exit_.describe()}', file=sys.stderr)
    for line in domain.xen_log:
        print(f'(XEN) {line}', file=sys.stderr)
    if exit_.registers:
        print(format_registers(exit_.registers), file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='pvshadow', description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    run = sub.add_parser('run', help='boot a kernel and show its console')
    run.add_argument('kernel', help='ELF path, asm/ source path, or test-kernel name')
    run.add_argument('--memory', type=int, default=16, metavar='MB', help='guest memory (16)')
    run.add_argument('--paging', default='direct', choices=api.PAGING_MODES,
                     help='direct (the CPU walks the guest tables) or shadow')
    run.add_argument('--audit', action='store_true',
                     help='shadow mode: audit every shadow after each shadow fault')
    run.add_argument('--shadow-pool', type=int, default=1024, metavar='PAGES',
                     help='shadow mode: at most this many shadow pages (1024)')
    run.add_argument('--budget', type=int, default=0, metavar='N',
                     help='stop after N instructions (0: no limit; counting costs ~15x)')
    run.add_argument('--timeout', type=float, default=60.0, metavar='S',
                     help='wall-clock watchdog in seconds (0: none)')
    run.add_argument('--cmdline', default='', help='start_info command line')
    run.set_defaults(func=cmd_run)
    return parser




def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == 'run' and args.memory <= 0:
        parser.error('--memory must be positive')
    if args.command == 'run' and args.shadow_pool < 8:
        parser.error('--shadow-pool needs at least 8 pages')
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
