"""pvshadow benchmarks: ratios against bare Unicorn, measured in one process.

    python3 bench/bench.py [--iterations N] [--repeat R]

compute: the `compute` kernel under pvshadow (boot, run, report, poweroff) against the
same instructions on a bare Unicorn over the same machine memory and the same guest page
tables, with no hooks at all. The ratio is bare time / pvshadow time (1.0: no overhead).
"""
import argparse
import os
import sys
import time

from unicorn import UC_ARCH_X86, UC_MODE_64, UC_PROT_ALL, Uc
from unicorn import x86_const as x86

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from guests.builder import build_domain          # noqa: E402
from guests.kernels import load_kernel           # noqa: E402
from shadow import api                           # noqa: E402
from shadow.cpu import (CR0_ET, CR0_MP, CR0_NE, CR0_PE, CR0_PG, CR0_WP, CR4_OSFXSR,  # noqa: E402
                        CR4_OSXMMEXCPT, CR4_PAE, EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE, MSR_EFER)
from shadow.host import Host                     # noqa: E402
from shadow.paging.x86 import walk               # noqa: E402


def time_pvshadow_compute(iterations: int) -> float:
    domain = api.boot('compute', cmdline=f'iterations={iterations}')
    start = time.perf_counter()
    exit_ = domain.run(timeout=None)
    elapsed = time.perf_counter() - start
    if not exit_.clean or b'Test result: SUCCESS' not in domain.console:
        raise SystemExit(f'compute kernel failed under pvshadow: {exit_.describe()}')
    return elapsed


def time_bare_compute(iterations: int) -> float:
    """The kernel's compute loop on a hook-less Unicorn, over the guest's own tables."""
    image = load_kernel('compute', extra_symbols=('compute', 'compute_end', 'iterations'))
    host = Host(64)
    domain = build_domain(host, image)
    l4 = domain.vcpus[0].guest_table
    gw = walk(domain.mem.read_u64, l4, image.symbols['iterations'])
    domain.mem.write_u64(gw.maddr, iterations)
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map_ptr(0, host.mem.size, UC_PROT_ALL, host.mem.host_address)
    uc.reg_write(x86.UC_X86_REG_CR4, uc.reg_read(x86.UC_X86_REG_CR4) | CR4_PAE | CR4_OSFXSR |
                 CR4_OSXMMEXCPT)
    uc.reg_write(x86.UC_X86_REG_MSR, (MSR_EFER, EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE))
    uc.reg_write(x86.UC_X86_REG_CR0, CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG)
    uc.reg_write(x86.UC_X86_REG_CR3, l4 << 12)
    uc.reg_write(x86.UC_X86_REG_RSP, domain.layout.stack + 4096)
    start = time.perf_counter()
    uc.emu_start(image.symbols['compute'], image.symbols['compute_end'])
    return time.perf_counter() - start


def bench_compute(iterations: int, repeat: int) -> None:
    pv = min(time_pvshadow_compute(iterations) for _ in range(repeat))
    bare = min(time_bare_compute(iterations) for _ in range(repeat))
    instructions = iterations * 7
    print(f'compute ({iterations:,} iterations, ~{instructions / 1e6:,.0f}M instructions, best of {repeat}):')
    print(f'  bare Unicorn {bare:.3f} s ({instructions / bare / 1e6:,.0f} MIPS)   '
          f'pvshadow {pv:.3f} s ({instructions / pv / 1e6:,.0f} MIPS)')
    print(f'  ratio bare/pvshadow = {bare / pv:.3f}   (goal >= 0.9)')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--iterations', type=int, default=30_000_000)
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args(argv)
    bench_compute(args.iterations, args.repeat)
    return 0


if __name__ == '__main__':
    sys.exit(main())
