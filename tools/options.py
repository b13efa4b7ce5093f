"""Command-line options every pvshadow command shares, each checked when it is parsed so
a bad value is one line and exit 2, never a traceback."""
import argparse
import os
import sys

DEFAULT_TIMEOUT = 60.0
DEFAULT_MEMORY_MB = 16


class OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is one line: 'pvshadow run: <what is wrong>' and exit 2."""

    def error(self, message):
        self.exit(2, f'{self.prog}: {message} (see {self.prog} --help)\n')


def version() -> str:
    try:
        from importlib.metadata import version as dist_version
        return dist_version('pvshadow')
    except Exception:                     # not installed: the source tree's
        return 'source tree'


def _number(kind, text, minimum, what):
    try:
        value = kind(text, 0) if kind is int else kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f'{text!r}: {what}')
    return value


def non_negative_int(text):
    return _number(int, text, 0, 'must be 0 or more')


def non_negative_seconds(text):
    return _number(float, text, 0, 'must be 0 (no watchdog) or more seconds')


def positive_int(text):
    return _number(int, text, 1, 'is not a positive number')


def positive_seconds(text):
    value = _number(float, text, 0, 'is not a positive number of seconds')
    if not value > 0:
        raise argparse.ArgumentTypeError(f'{text!r} is not a positive number of seconds')
    return value


def port(text):
    value = _number(int, text, 0, 'is not a TCP port')
    if value > 65535:
        raise argparse.ArgumentTypeError(f'{text!r} is not a TCP port (0-65535)')
    return value


def shadow_pool(text):
    return _number(int, text, 8, 'the shadow pool needs at least 8 pages')


def machine_limit_mb() -> int:
    """The largest guest this machine can back: the host maps about twice the guest."""
    try:
        total = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') >> 20
    except (ValueError, OSError):
        total = 8192
    return max(64, (total - 256) // 2)


def memory_mb(text):
    value = _number(int, text, 1, 'guest memory must be at least 1 MiB')
    limit = machine_limit_mb()
    if value > limit:
        raise argparse.ArgumentTypeError(f'{value} MiB is more than this machine can back '
                                         f'(at most {limit})')
    return value


def add_guest_options(parser, paging_default='direct', budget=True):
    """--memory, --paging, --cmdline, --audit, --timeout (and --budget): as `run` has them.
    paging_default None: the command has one mode (access: shadow) and no --paging."""
    from pvshadow.shadow.api import PAGING_MODES
    parser.add_argument('--memory', type=memory_mb, default=DEFAULT_MEMORY_MB, metavar='MB',
                        help='guest memory in MiB (default %(default)s)')
    if paging_default is not None:
        parser.add_argument('--paging', default=paging_default, choices=PAGING_MODES,
                            help='direct (the CPU walks the guest tables) or shadow '
                                 '(default %(default)s)')
    parser.add_argument('--cmdline', default='', help='start_info command line')
    add_include_option(parser)
    parser.add_argument('--audit', action='store_true',
                        help='shadow mode: audit every shadow after each shadow fault')
    parser.add_argument('--timeout', type=non_negative_seconds, default=DEFAULT_TIMEOUT,
                        metavar='S', help='wall-clock watchdog in seconds, 0 for none '
                                          '(default %(default)s)')
    if budget:
        parser.add_argument('--budget', type=non_negative_int, default=0, metavar='N',
                            help='stop after N instructions (0: no limit; counting costs '
                                 '~15x)')


def add_include_option(parser) -> None:
    parser.add_argument('-I', dest='include_dirs', action='append', default=[], metavar='DIR',
                        help='where .include looks after the kernel\'s own directory (before '
                             'asm/include)')


def refuse(message: str) -> int:
    print(f'pvshadow: {message}', file=sys.stderr)
    return 2
