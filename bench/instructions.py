#!/usr/bin/env python3
"""Instructions an event costs, counted by valgrind's cachegrind: deterministic where the
clock is not, for comparing two versions of a Python path.

    python3 bench/instructions.py                      # every scenario, this checkout
    python3 bench/instructions.py ring-relax --root ../other-checkout

Each scenario runs twice, each time in a process of its own under cachegrind: with the
work it measures and without it (the same domain, the same touches, unwatched; or no
faults, no stores), and prints the difference per event. Python's hash seed is fixed
and modules are byte-compiled before counting, so a rerun gives the same figure to
within a few hundred instructions. A count is not a time: Python code runs at fewer
instructions a cycle than Unicorn's, so a ratio of counts is not a ratio of times.
bench.py gives the times.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# scenario: (what one unit of it is, units, the code run with `n` units in `root`)
SCENARIOS = {
    'ring-relax': ('vm_event through the ring, answered rwx', 1024, 'events', 'relax'),
    'ring-emulate': ('vm_event through the ring, answered emulate', 1024, 'events', 'emulate'),
    'in-hook-relax': ('vm_event to the in-hook listener, answered rwx', 1024, 'in-hook', 'relax'),
    'fault': ('shadow fault fill', 8192, 'faults', ''),
    'store-shadow': ('emulated page-table store, shadow', 4000, 'stores', 'shadow'),
    'store-direct': ('emulated page-table store, direct', 4000, 'stores', 'direct'),
}

_CHILD = r'''
import sys
root, kind, arg, n, on = sys.argv[1:4] + [int(sys.argv[4]), sys.argv[5] == '1']
sys.path[:0] = [root, root + '/bench']
import bench
if kind in ('events', 'in-hook'):
    from pvshadow.shadow.listener import Listener
    def events(pages, watch, answer):
        domain, datas = bench.prepare_touch(max(pages // 512, 1), min(pages, 512), pages, 1,
                                            write=True, distinct=True, memory_mb=64)
        listener = Listener(domain)
        if watch:
            for mfn in datas[1:]:
                listener.set_access('rx', mfn)
        if kind == 'in-hook':
            listener.run(answer, timeout=None)
        else:
            for event in listener.events(timeout=None):
                answer(event)
    emulate = lambda ev: ev.respond(emulate=True)
    events(64, True, emulate)             # first-use imports (capstone), in both runs
    events(n, on, (lambda ev: ev.respond(access='rwx')) if arg == 'relax' else emulate)
elif kind == 'faults':
    bench.run_touch(64, 512, n if on else 0, 1)
else:
    import os
    from pvshadow.shadow import api
    d = api.boot(os.path.join(root, 'bench/kernels/ptwloop.S'), cmdline=str(n if on else 0),
                 paging=arg)
    exit_ = d.run(timeout=None)
    assert exit_.clean, exit_.describe()
'''


def count(root: str, kind: str, arg: str, n: int, on: bool) -> int:
    """cachegrind's instruction count for one run of the child."""
    env = dict(os.environ, PYTHONHASHSEED='0')
    env.pop('PYTHONDONTWRITEBYTECODE', None)
    cmd = [sys.executable, '-c', _CHILD, root, kind, arg, str(n), '1' if on else '0']
    subprocess.run(cmd, env=env, check=True, capture_output=True)      # byte-compile first
    out = subprocess.run(['valgrind', '--tool=cachegrind', '--cache-sim=no',
                          '--cachegrind-out-file=/dev/null'] + cmd,
                         env=env, check=True, capture_output=True, text=True).stderr
    match = re.search(r'I\s+refs:\s+([\d,]+)', out)
    if match is None:
        raise SystemExit(f'no instruction count in valgrind\'s output:\n{out[-2000:]}')
    return int(match.group(1).replace(',', ''))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('scenarios', nargs='*', metavar='SCENARIO',
                        help=f'any of {", ".join(SCENARIOS)} (default: every one)')
    parser.add_argument('--root', default=os.path.dirname(HERE),
                        help='the checkout to measure (default: this one)')
    args = parser.parse_args(argv)
    if shutil.which('valgrind') is None:
        print('instructions.py needs valgrind (cachegrind)', file=sys.stderr)
        return 2
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f'no scenario {", ".join(unknown)} (there are {", ".join(SCENARIOS)})')
    root = os.path.abspath(args.root)
    for name in args.scenarios or SCENARIOS:
        what, n, kind, arg = SCENARIOS[name]
        print(f'  {name}: counting', file=sys.stderr, flush=True)
        per = (count(root, kind, arg, n, True) - count(root, kind, arg, n, False)) / n
        print(f'{name}: {per:,.0f} instructions per {what} ({n:,} of them, {root})',
              flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
