"""The host half of the differential oracle: plant generated page tables and an access
script in the probe kernel, run it under a paging mode, and read back what happened."""
import os
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

from pvshadow.guests.builder import build_domain
from pvshadow.guests.kernels import load_kernel
from pvshadow.shadow.host import Host
from pvshadow.shadow.paging.x86 import flags_str, make_pte, pfec_str, walk

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'probe.S')
SYMBOLS = ('test_root_mfn', 'script_count', 'script', 'results', 'pin_rc')
KINDS = ('read', 'write', 'fetch')
WINDOW_SLOTS = (1, 2)                     # L4 slots of the generated window
KERNEL_SLOT = 511


@dataclass
class Config:
    """A generated tree: each table maps index -> (child number, flags)."""
    l4: Dict[int, Tuple[int, int]]
    l3s: List[Dict[int, Tuple[int, int]]]
    l2s: List[Dict[int, Tuple[int, int]]]
    l1s: List[Dict[int, Tuple[int, int]]]
    ndata: int
    accesses: List[Tuple[int, int, int, int, int, bool]] = field(default_factory=list)

    def describe(self) -> str:
        lines = []
        for name, tables, child in (('L4', [self.l4], 'L3'), ('L3', self.l3s, 'L2'),
                                    ('L2', self.l2s, 'L1'), ('L1', self.l1s, 'data')):
            for n, table in enumerate(tables):
                for index, (target, flags) in sorted(table.items()):
                    lines.append(f'{name}#{n}[{index}] = {child}#{target} {flags_str(flags)}')
        return '\n'.join(lines)


def access_va(slot, i3, i2, i1, offset=0x18) -> int:
    return (slot << 39) | (i3 << 30) | (i2 << 21) | (i1 << 12) | offset


def describe_access(access) -> str:
    slot, i3, i2, i1, kind, user = access
    return (f'{KINDS[kind]} {"user" if user else "kernel"} {access_va(slot, i3, i2, i1):#x} '
            f'(L4[{slot}] L3[{i3}] L2[{i2}] L1[{i1}])')


def describe_outcome(outcome) -> str:
    status, cr2 = outcome
    return 'ok' if status == 0 else f'#PF {pfec_str(status & 0xFF)} cr2={cr2:#x}'


def run_case(config: Config, paging: str):
    """Outcomes [(status, cr2)] of every access, and every generated entry afterwards."""
    image = load_kernel(PROBE, extra_symbols=SYMBOLS)
    host = Host(64)
    audit = paging == 'shadow' and os.environ.get('PVSHADOW_ORACLE_AUDIT', '1') != '0'
    d = build_domain(host, image, memory_mb=8, paging=paging, audit=audit)
    mem = d.mem
    boot_l4 = d.vcpus[0].guest_table
    pfns = iter(range(len(d.p2m) - 1, 0, -1))

    def frame():
        return d.p2m[next(pfns)]

    root = frame()
    l3s = [frame() for _ in config.l3s]
    l2s = [frame() for _ in config.l2s]
    l1s = [frame() for _ in config.l1s]
    data = [frame() for _ in range(config.ndata)]
    for mfn in data:
        mem.write(mfn << 12, b'\xc3' * 4096)
    mem.write_u64((root << 12) + KERNEL_SLOT * 8, mem.read_u64((boot_l4 << 12) + KERNEL_SLOT * 8))
    entries = []
    for table_mfn, table, children in [(root, config.l4, l3s)] + \
            [(m, t, l2s) for m, t in zip(l3s, config.l3s)] + \
            [(m, t, l1s) for m, t in zip(l2s, config.l2s)] + \
            [(m, t, data) for m, t in zip(l1s, config.l1s)]:
        for index, (target, flags) in table.items():
            maddr = (table_mfn << 12) + index * 8
            mem.write_u64(maddr, make_pte(children[target], flags))
            entries.append(maddr)

    def poke(symbol, blob):
        gw = walk(mem.read_u64, boot_l4, image.symbols[symbol])
        mem.write(gw.maddr, blob)

    def peek(symbol, size):
        gw = walk(mem.read_u64, boot_l4, image.symbols[symbol])
        return mem.read(gw.maddr, size)

    poke('test_root_mfn', struct.pack('<Q', root))
    poke('script_count', struct.pack('<Q', len(config.accesses)))
    script = b''.join(struct.pack('<QQ', access_va(s, a, b, c), kind | (0x100 if user else 0))
                      for s, a, b, c, kind, user in config.accesses)
    poke('script', script)
    exit_ = d.run(timeout=30)
    if not exit_.clean:
        raise AssertionError(f'probe kernel under {paging}: {exit_.describe()}\n'
                             f'{d.console.decode()}\n{config.describe()}')
    pin_rc = struct.unpack('<q', peek('pin_rc', 8))[0]
    raw = peek('results', 16 * len(config.accesses))
    outcomes = [struct.unpack_from('<QQ', raw, 16 * i) for i in range(len(config.accesses))]
    final = [mem.read_u64(maddr) for maddr in entries]
    return pin_rc, outcomes, final      # (with audit on, a clean exit is a clean full audit)
