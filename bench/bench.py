"""pvshadow benchmarks: each figure beside its floor on bare Unicorn, measured in the same
process, in paired interleaved rounds on the CPU clock (time.process_time), with the
median and spread (min-max) of each and the goal printed beside it; progress on stderr.

    python3 bench/bench.py [--only NAME ...] [--iterations N] [--repeat R]

boot (issue 15): `pvshadow run hello --memory N` in a child process at 16 MiB, 256 MiB,
  1 GiB and 4 GiB: CPU time, wall time and maximum RSS; bytes of bookkeeping per frame.
compute (a): the `compute` kernel under pvshadow, direct and shadow paging (boot, run,
  report, poweroff), against the same loop on a hook-less Unicorn over the same machine
  memory and guest tables. Ratio bare/pvshadow; goal >= 0.9.
faults (b): 32,768 fresh pages touched under shadow paging; floor: a #PF hook reading
  CR2 from the saved context and writing one PTE. Goal: ratio >= 0.5.
ptwrites (c): a kernel rewriting a PTE in a loop (emulated stores); floor: a store trap
  whose hook writes the entry, skips the instruction in the saved context and flushes
  the TLB once. Goal: ratio >= 0.4.
blow (d): shadow_blow_tables at 1,000 / 5,000 / 10,000 live shadows (linear).
events: mem_access violations answered by an in-process listener, relaxing the frame (as
  xen-access does) or letting the access through once: in the fault hook (floor: the
  fill floor plus a Python call with a request; goal >= 50,000 events/s), and through
  the ring with pause and stop (floor: fill, emu_stop, read RIP, emu_start; goal: ratio
  >= 0.5).
host (issue 12): the compute kernel through the host scheduler, one domain alone (goal
  >= 0.95) and two sharing the CPU.
"""
import argparse
import os
import sys
import time
from array import array

from unicorn import UC_ARCH_X86, UC_MODE_64, UC_PROT_ALL, Uc
from unicorn import unicorn_const as ucc
from unicorn import x86_const as x86

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pvshadow.guests.builder import build_domain          # noqa: E402
from pvshadow.guests.kernels import load_kernel           # noqa: E402
from pvshadow.shadow import api                           # noqa: E402
from pvshadow.shadow.cpu import (CR0_ET, CR0_MP, CR0_NE, CR0_PE, CR0_PG, CR0_WP, CR4_OSFXSR,  # noqa: E402
                        CR4_OSXMMEXCPT, CR4_PAE, EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE, MSR_EFER)
from pvshadow.shadow.host import Host                     # noqa: E402
from pvshadow.shadow.paging.x86 import walk               # noqa: E402


KERNELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'kernels')


def time_pvshadow_compute(iterations: int, paging: str = 'direct',
                          clock=time.perf_counter) -> float:
    domain = api.boot('compute', cmdline=f'iterations={iterations}', paging=paging)
    start = clock()
    exit_ = domain.run(timeout=None)
    elapsed = clock() - start
    if not exit_.clean or b'Test result: SUCCESS' not in domain.console:
        raise SystemExit(f'compute kernel failed under pvshadow: {exit_.describe()}')
    return elapsed


def time_bare_compute(iterations: int, clock=time.perf_counter) -> float:
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
    start = clock()
    uc.emu_start(image.symbols['compute'], image.symbols['compute_end'])
    return clock() - start


def _host_compute(iterations: int, n_domains: int, paging: str = 'direct'):
    """(CPU seconds, host) for n compute domains run together to their end."""
    host = Host(64 + 32 * n_domains)
    domains = [build_domain(host, load_kernel('compute'), memory_mb=16, paging=paging,
                            cmdline=f'iterations={iterations}') for _ in range(n_domains)]
    start = time.process_time()
    exits = host.run()
    elapsed = time.process_time() - start
    if len(exits) != n_domains or not all(e.exit.clean for e in exits) or \
            not all(b'Test result: SUCCESS' in d.console for d in domains):
        raise SystemExit(f'compute on a host failed: {[e.describe() for e in exits]}')
    return elapsed, host, domains


def _bare_cpu(iterations: int) -> float:
    return time_bare_compute(iterations, clock=time.process_time)


def _median_spread(values):
    values = sorted(values)
    return values[len(values) // 2], values[0], values[-1]


def bench_host(iterations: int, repeat: int) -> None:
    one, two, bare_one, bare_two = [], [], [], []
    shares, switches = [], []
    two_iterations = max(iterations // 10, 100_000)  # sliced by count: ~15x per instruction
    for round_ in range(repeat):
        print(f'  host round {round_ + 1}/{repeat}', file=sys.stderr, flush=True)
        bare_one.append(_bare_cpu(iterations))
        one.append(_host_compute(iterations, 1)[0])
        bare_two.append(_bare_cpu(two_iterations))
        t, host, domains = _host_compute(two_iterations, 2)
        two.append(t)
        counts = [d.stats['instructions_scheduled'] for d in domains]
        shares.append(counts[0] / max(1, sum(counts)))
        switches.append(host.scheduler.switches)
    ratios = [b / p for b, p in zip(bare_one, one)]
    r, lo, hi = _median_spread(ratios)
    print(f'(host) one compute domain through the host scheduler, {iterations:,} iterations, '
          f'{repeat} paired rounds: ratio bare/pvshadow median {r:.3f} (spread {lo:.3f}-'
          f'{hi:.3f})   (goal >= 0.95)')
    ratios2 = [2 * b / p for b, p in zip(bare_two, two)]
    r2, lo2, hi2 = _median_spread(ratios2)
    s, slo, shi = _median_spread(shares)
    sw, _, _ = _median_spread(switches)
    per_switch = [(p - 2 * b) / max(1, n) * 1e6 for b, p, n in zip(bare_two, two, switches)]
    c, clo, chi = _median_spread(per_switch)
    print(f'  two compute domains, {two_iterations:,} iterations each: ratio 2*bare/pvshadow '
          f'median {r2:.3f} (spread {lo2:.3f}-{hi2:.3f}); first domain\'s share of the '
          f'instructions {s:.3f} ({slo:.3f}-{shi:.3f}); {sw:,} domain switches; '
          f'{c:,.1f} us of overhead per switch ({clo:,.1f}-{chi:,.1f}), slicing by '
          'instruction count included')


def _child_usage(argv):
    """Run argv; (CPU seconds, wall seconds, max RSS MB, stdout) of that child alone
    (os.wait4 gives one child's rusage; RUSAGE_CHILDREN would be the largest so far)."""
    import subprocess
    began = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - began
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024, out, proc.returncode


def _run_hello(memory_mb: int):
    """`pvshadow run hello --memory N` in a child: (CPU seconds, wall seconds, max RSS MB)."""
    cpu, wall, rss, out, rc = _child_usage([sys.executable, '-m', 'pvshadow', 'run', 'hello',
                                            '--memory', str(memory_mb)])
    if rc or 'Test result: SUCCESS' not in out:
        raise SystemExit(f'hello --memory {memory_mb} failed: {out[-300:]}')
    return cpu, wall, rss


def _interpreter_rss_mb() -> float:
    return _child_usage([sys.executable, '-c', 'pass'])[2]


def bench_boot(repeat: int, sizes=(16, 256, 1024, 4096)) -> None:
    """Boot time and memory of a whole `pvshadow run hello`, at several guest sizes,
    interleaved rounds; and the frame table's bookkeeping per machine frame."""
    from pvshadow.shadow.machine import FrameTable
    results = {size: [] for size in sizes}
    interpreter = []                     # `python -c pass` in the same rounds: the CPU floor
    for round_ in range(repeat):
        print(f'  boot round {round_ + 1}/{repeat}', file=sys.stderr, flush=True)
        interpreter.append(_child_usage([sys.executable, '-c', 'pass'])[0])
        for size in sizes:
            results[size].append(_run_hello(size))
    table = FrameTable(4096)
    per_frame = sum(len(bytes(column)) for column in vars(table).values()   # every column
                    if isinstance(column, (array, bytearray)) and len(column) == 4096) / 4096
    base = _interpreter_rss_mb()
    for size in sizes:
        cpu = _median_spread([r[0] for r in results[size]])
        wall = _median_spread([r[1] for r in results[size]])
        rss = _median_spread([r[2] for r in results[size]])
        floor = _median_spread(interpreter)[0]
        goals = {16: f'(goal: < 0.15 s CPU; the interpreter alone took {floor:.3f} s CPU in '
                     'the same rounds)', 4096: '(goal: wall < 1 s, RSS < 250 MB)'}
        print(f'(boot) pvshadow run hello --memory {size}: CPU {cpu[0]:.3f} s '
              f'({cpu[1]:.3f}-{cpu[2]:.3f}), wall {wall[0]:.3f} s ({wall[1]:.3f}-{wall[2]:.3f}), '
              f'max RSS {rss[0]:.0f} MB ({rss[0] - base:.0f} above the interpreter\'s '
              f'{base:.0f})   {goals.get(size, "")}')
    print(f'(boot) frame-table bookkeeping: {per_frame:.0f} bytes a machine frame   '
          '(goal <= 64)')


def bench_compute(iterations: int, repeat: int) -> None:
    """Paired rounds on the CPU clock: in each, the bare loop, then pvshadow direct and
    shadow (boot, run, report, poweroff); the ratio of each round, median and spread."""
    times = {'bare': [], 'direct': [], 'shadow': []}
    for round_ in range(repeat):
        print(f'  compute round {round_ + 1}/{repeat}', file=sys.stderr, flush=True)
        times['bare'].append(time_bare_compute(iterations, clock=time.process_time))
        for paging in ('direct', 'shadow'):
            times[paging].append(time_pvshadow_compute(iterations, paging,
                                                       clock=time.process_time))
    bare, blo, bhi = _median_spread(times['bare'])
    instructions = iterations * 7
    print(f'(a) compute ({iterations:,} iterations, ~{instructions / 1e6:,.0f}M instructions, '
          f'{repeat} paired rounds, CPU time): bare Unicorn median {bare:.3f} s ({blo:.3f}-'
          f'{bhi:.3f}, {instructions / bare / 1e6:,.0f} MIPS)')
    for paging in ('direct', 'shadow'):
        pv = _median_spread(times[paging])[0]
        r, lo, hi = _median_spread([b / p for b, p in zip(times['bare'], times[paging])])
        print(f'  pvshadow {paging:6} median {pv:.3f} s   ratio bare/pvshadow median {r:.3f} '
              f'(spread {lo:.3f}-{hi:.3f})   (goal >= 0.9)')


# --- (b) and (d): a planted tree of page tables, touched page by page ---------------------------
def plant_tree(domain, image, n_l1: int, entries_per_l1: int, distinct: bool = False):
    """An L3 -> L2s -> n_l1 L1s tree in the domain's top frames, every L1 entry mapping one
    data frame (or, distinct, a frame of its own); returns (L3 mfn, data mfns)."""
    from pvshadow.shadow.paging.x86 import make_pte
    mem = domain.mem
    pfns = iter(range(len(domain.p2m) - 1, 0, -1))
    take = lambda: domain.p2m[next(pfns)]        # noqa: E731
    upper = 0x27                                   # P RW US A
    leaf = 0x67 | 1 << 63                          # P RW US A D NX: data, as a W^X kernel maps it
    data = take()
    l3 = take()
    l2s = [take() for _ in range((n_l1 + 511) // 512)]
    for i, l2 in enumerate(l2s):
        mem.write_u64((l3 << 12) + i * 8, make_pte(l2, upper))
    datas = [data]
    for n in range(n_l1):
        l1 = take()
        mem.write_u64((l2s[n // 512] << 12) + (n % 512) * 8, make_pte(l1, upper))
        if distinct:
            frames = [take() for _ in range(entries_per_l1)]
            datas += frames
            mem.write(l1 << 12, b''.join(make_pte(f, leaf).to_bytes(8, 'little') for f in frames))
        else:
            entry = make_pte(data, leaf).to_bytes(8, 'little')
            mem.write(l1 << 12, entry * entries_per_l1)
    return l3, datas


def prepare_touch(n_l1: int, entries_per_l1: int, touches: int, stride: int, paging='shadow',
                  pool_pages=1024, memory_mb=64, write=False, distinct=False):
    """The touch kernel over a planted tree, ready to run: (domain, data mfns)."""
    image = load_kernel(os.path.join(KERNELS, 'touch.S'),
                        extra_symbols=('window_l3_mfn', 'touch_count', 'stride_pages',
                                       'touch_write'))
    host = Host(memory_mb * 2 + pool_pages // 256 + 32)
    domain = build_domain(host, image, memory_mb=memory_mb, paging=paging,
                          shadow_pool_pages=pool_pages, vm_event_ring=True)
    l3, datas = plant_tree(domain, image, n_l1, entries_per_l1, distinct)
    if write:
        # Commit the host pages behind the data frames now: the first store into a fresh
        # anonymous page costs the host (not pvshadow) tens of microseconds, and varies.
        q = domain.mem.q
        for mfn in datas:
            q[mfn << 9] = 0
    l4 = domain.vcpus[0].guest_table
    for symbol, value in (('window_l3_mfn', l3), ('touch_count', touches),
                          ('stride_pages', stride), ('touch_write', int(write))):
        gw = walk(domain.mem.read_u64, l4, image.symbols[symbol])
        domain.mem.write_u64(gw.maddr, value)
    return domain, datas


def run_touch(n_l1: int, entries_per_l1: int, touches: int, stride: int, **kwargs):
    """Boot the touch kernel over a planted tree and run it; returns (seconds, domain)."""
    domain, _ = prepare_touch(n_l1, entries_per_l1, touches, stride, **kwargs)
    start = time.perf_counter()
    exit_ = domain.run(timeout=None)
    elapsed = time.perf_counter() - start
    if not exit_.clean or b'Test result: SUCCESS' not in domain.console:
        raise SystemExit(f'touch kernel failed: {exit_.describe()} {domain.console!r}')
    return elapsed, domain


def trivial_fill_rate(n: int = 20000) -> float:
    """unicorn-facts item 3: a #PF hook that reads CR2 from the saved context and fills
    one identity PTE (the fault floor)."""
    uc, end = _touch_floor(min(n, 16384 - 1024), None)
    start = time.process_time()
    uc.emu_start(0x1000, end)
    return min(n, 16384 - 1024) / (time.process_time() - start)


def _bare_pf_machine(code_asm: str, pages_mapped: int, readonly_page=None):
    """A bare Unicorn with identity-mapped 4-level tables over 64 MiB (the first
    pages_mapped pages present, readonly_page present but read-only), the code assembled
    at 0x1000, and the saved context's exception state, CR2 and RIP located as
    pvshadow's CPU layer locates them: (uc, ctx, old_exception, cr2, rip, code length,
    the L1 tables' base)."""
    import ctypes
    import struct
    from keystone import KS_ARCH_X86, KS_MODE_64, Ks
    P, RW = 1, 2
    pml4, pdpt, pd, pt = 0x100000, 0x101000, 0x102000, 0x110000
    pages = 16384
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0, 128 << 20)
    uc.mem_write(pml4, struct.pack('<Q', pdpt | P | RW))
    uc.mem_write(pdpt, struct.pack('<Q', pd | P | RW))
    uc.mem_write(pd, b''.join(struct.pack('<Q', (pt + j * 0x1000) | P | RW) for j in range(32)))
    uc.mem_write(pt, b''.join(
        struct.pack('<Q', (i << 12) | P | (0 if i == readonly_page else RW)) if i < pages_mapped
        else b'\0' * 8 for i in range(pages)))
    uc.reg_write(x86.UC_X86_REG_CR3, pml4)
    uc.reg_write(x86.UC_X86_REG_CR4, uc.reg_read(x86.UC_X86_REG_CR4) | CR4_PAE)
    uc.reg_write(x86.UC_X86_REG_CR0, uc.reg_read(x86.UC_X86_REG_CR0) | CR0_PG | CR0_WP | CR0_PE)
    code = bytes(Ks(KS_ARCH_X86, KS_MODE_64).asm(code_asm, 0x1000)[0])
    uc.mem_write(0x1000, code)
    uc.reg_write(x86.UC_X86_REG_DR0, 0x1122334455667788)
    ctx = uc.context_save()
    base = ctypes.cast(ctx.context, ctypes.c_void_p).value
    dr0 = ctypes.string_at(base, ctx.size).find(struct.pack('<Q', 0x1122334455667788))
    old = ctypes.c_int.from_address(base + dr0 + 96)
    slots = {}
    for name, reg, marker in (('cr2', x86.UC_X86_REG_CR2, 0x7B7B0000DEAD2000),
                              ('rip', x86.UC_X86_REG_RIP, 0x7A7A0000DEAD1000)):
        uc.reg_write(reg, marker)
        uc.context_update(ctx)
        slots[name] = ctypes.c_uint64.from_address(
            base + ctypes.string_at(base, ctx.size).find(struct.pack('<Q', marker)))
        uc.reg_write(reg, 0)
    return uc, ctx, old, slots['cr2'], slots['rip'], code, pt


def store_trap_rate(n: int = 40000) -> float:
    """The page-table-store floor: a store into a read-only page traps (#PF), and the
    hook reads CR2 and RIP from the saved context, writes the stored value into the
    page, moves RIP past the 3-byte instruction in that context and flushes the TLB."""
    import struct
    from unicorn import UC_HOOK_INTR
    table_page = 0x300
    uc, ctx, old, cr2_slot, rip_slot, code, _ = _bare_pf_machine(
        f'mov rcx, {n}; mov rbx, {table_page << 12}; mov r14, 0x1067;'
        ' l: mov qword ptr [rbx], r14; dec rcx; jnz l; hlt', 1024, readonly_page=table_page)
    value = struct.pack('<Q', 0x1067)

    def intr(uc, intno, _):
        uc.context_update(ctx)
        old.value = -1
        cr2 = cr2_slot.value
        rip_slot.value += 3                 # mov qword ptr [rbx], r14
        uc.context_restore(ctx)
        uc.mem_write(cr2 & ~7, value)
        uc.ctl(ucc.UC_CTL_TLB_FLUSH, ucc.UC_CTL_IO_WRITE)
    uc.hook_add(UC_HOOK_INTR, intr)
    start = time.process_time()
    uc.emu_start(0x1000, 0x1000 + len(code) - 1)
    return n / (time.process_time() - start)


def _touch_floor(n: int, on_fault):
    """The touch loop over n fresh pages on a bare Unicorn; on_fault(uc, cr2), if given,
    after the hook has read CR2 from the saved context and written the identity PTE.
    Returns (uc, code end) ready to run from 0x1000."""
    import struct
    from unicorn import UC_HOOK_INTR
    P, RW = 1, 2
    uc, ctx, old, cr2_slot, _rip, code, pt = _bare_pf_machine(
        f'mov rcx, {n}; mov rsi, 0x400000; l: mov rax, qword ptr [rsi];'
        ' add rsi, 0x1000; dec rcx; jnz l; hlt', 1024)
    pack = struct.Struct('<Q').pack

    def fill(uc, intno, _):
        uc.context_update(ctx)
        old.value = -1
        cr2 = cr2_slot.value
        uc.context_restore(ctx)
        uc.mem_write(pt + 8 * (cr2 >> 12), pack((cr2 & ~0xfff) | P | RW))

    def fill_and_call(uc, intno, _):
        fill(uc, intno, _)
        on_fault(uc, cr2_slot.value)
    uc.hook_add(UC_HOOK_INTR, fill if on_fault is None else fill_and_call)
    return uc, 0x1000 + len(code) - 1


def in_hook_call_rate(n: int = 12000) -> float:
    """The in-hook listener's floor: the fill floor plus a Python call with a request
    (a small object) to a listener that answers it."""
    class Request:
        __slots__ = ('gla', 'answer')

        def __init__(self, gla):
            self.gla, self.answer = gla, None

    def listener(req):
        req.answer = 'rwx'

    uc, end = _touch_floor(n, lambda uc, cr2: listener(Request(cr2)))
    start = time.process_time()
    uc.emu_start(0x1000, end)
    return n / (time.process_time() - start)


def stop_restart_rate(n: int = 12000) -> float:
    """The ring path's floor: each fault fills its PTE and stops the CPU; the run
    loop reads RIP and starts it again there."""
    uc, end = _touch_floor(n, lambda uc, cr2: uc.emu_stop())
    rip = 0x1000
    start = time.process_time()
    while rip != end:
        uc.emu_start(rip, end)
        rip = uc.reg_read(x86.UC_X86_REG_RIP)
    return n / (time.process_time() - start)


def bench_faults(repeat: int) -> None:
    """Paired rounds on the CPU clock: in each, the floor, the touch run and the same run
    without touches (subtracted); the ratio of each round, median and spread."""
    n_l1, per = 64, 512
    touches = n_l1 * per
    ratios, rates, floors, fills = [], [], [], 0
    for round_ in range(repeat):
        print(f'  faults round {round_ + 1}/{repeat}', file=sys.stderr, flush=True)
        floor = trivial_fill_rate()
        base = run_touch(n_l1, per, 0, 1)[0]
        t, d = run_touch(n_l1, per, touches, 1)
        fills = d.paging.stats['shadow_fills']
        rate = touches / (t - base)
        rates.append(rate)
        floors.append(floor)
        ratios.append(rate / floor)
    r, lo, hi = _median_spread(ratios)
    rate, floor = _median_spread(rates)[0], _median_spread(floors)[0]
    print(f'(b) shadow faults: {touches:,} fresh pages touched, {fills:,} shadow fills, '
          f'{rate:,.0f} faults/s ({1e6 / rate:.1f} us); floor (a #PF hook reading CR2 from '
          f'the saved context and writing one PTE) {floor:,.0f}/s ({1e6 / floor:.1f} us); '
          f'ratio median {r:.2f} (spread {lo:.2f}-{hi:.2f}), {repeat} paired rounds, CPU '
          'time   (goal >= 0.5)')


def bench_ptwrites(repeat: int, writes: int = 60000) -> None:
    """Paired rounds on the CPU clock: each round runs the loop with 0 and with `writes`
    stores; median and spread of the rates."""
    kernel = os.path.join(KERNELS, 'ptwloop.S')

    def timed(n, paging):
        d = api.boot(kernel, cmdline=str(n), paging=paging)
        start = time.process_time()
        exit_ = d.run(timeout=None)
        if not exit_.clean:
            raise SystemExit(f'ptwloop failed: {exit_.describe()}')
        return time.process_time() - start, d
    for paging in ('shadow', 'direct'):
        rates, floors, emulated = [], [], 0
        for round_ in range(repeat):
            print(f'  ptwrites {paging} round {round_ + 1}/{repeat}', file=sys.stderr, flush=True)
            floors.append(store_trap_rate())
            base = timed(0, paging)[0]
            t, d = timed(writes, paging)
            emulated = d.stats['pt_writes_emulated']
            rates.append(emulated / (t - base))
        r, lo, hi = _median_spread(rates)
        ratio, rlo, rhi = _median_spread([a / b for a, b in zip(rates, floors)])
        floor = _median_spread(floors)[0]
        print(f'(c) emulated page-table writes ({paging}): {emulated:,} stores, {r:,.0f}/s '
              f'({1e6 / r:.1f} us; spread {lo:,.0f}-{hi:,.0f}); floor (trap, write the entry, '
              f'skip the instruction, one TLB flush) {floor:,.0f}/s ({1e6 / floor:.1f} us); '
              f'ratio median {ratio:.2f} ({rlo:.2f}-{rhi:.2f}), {repeat} paired rounds, CPU '
              'time   (goal: ratio >= 0.4)')


def bench_blow(repeat: int, sizes=(1000, 5000, 10000)) -> None:
    """shadow_blow_tables at several numbers of live shadows, interleaved rounds on the
    CPU clock: median and spread."""
    times = {size: [] for size in sizes}
    blown = {}
    for round_ in range(repeat):
        print(f'  blow round {round_ + 1}/{repeat}', file=sys.stderr, flush=True)
        for shadows in sizes:
            _, domain = run_touch(shadows, 1, shadows, 512, pool_pages=shadows + 256,
                                  memory_mb=64)
            sp = domain.paging
            start = time.process_time()
            blown[shadows] = sp.shadow_blow_tables(reload=False)
            times[shadows].append(time.process_time() - start)
    for shadows in sizes:
        t, lo, hi = _median_spread(times[shadows])
        print(f'(d) shadow_blow_tables: {blown[shadows]:,} live shadow pages, median '
              f'{t * 1e3:.2f} ms ({lo * 1e3:.2f}-{hi * 1e3:.2f}), '
              f'{t / blown[shadows] * 1e6:.3f} us per shadow page, CPU time   (linear)')


def bench_events(repeat: int, pages: int = 4096) -> None:
    """mem_access events through the in-process listener, two ways of answering."""
    from pvshadow.shadow.listener import Listener
    n_l1 = pages // 512

    def timed(watch: bool, answer, in_hook: bool = False):
        domain, datas = prepare_touch(n_l1, 512, pages, 1, write=True, distinct=True,
                                      memory_mb=64)
        listener = Listener(domain)
        if watch:
            for mfn in datas[1:]:
                listener.set_access('rx', mfn)
        start = time.process_time()
        count = 0
        if in_hook:
            listener.run(answer, timeout=None)
            count = listener.events_seen
        else:
            for event in listener.events(timeout=None):
                count += 1
                answer(event)
        elapsed = time.process_time() - start
        if not listener.exit.clean:
            raise SystemExit(f'events: {listener.exit.describe()}')
        return elapsed, count
    for name, answer in (('relax (xen-access)', lambda ev: ev.respond(access='rwx')),
                         ('emulate once', lambda ev: ev.respond(emulate=True))):
        for in_hook, how in ((False, 'ring + pause + stop'), (True, 'in-hook listener')):
            rates, floors, count = [], [], 0
            for round_ in range(repeat):     # paired: the unwatched run and the floor beside each
                print(f'  events {name}, {how}: round {round_ + 1}/{repeat}', file=sys.stderr,
                      flush=True)
                floors.append(in_hook_call_rate() if in_hook else stop_restart_rate())
                # the unwatched run before and after the watched one: their mean cancels a
                # drift across the round, and one slow run weighs half
                before = timed(False, None, in_hook)[0]
                t, count = timed(True, answer, in_hook)
                base = (before + timed(False, None, in_hook)[0]) / 2
                rates.append(count / max(t - base, 1e-9))
            r, lo, hi = _median_spread(rates)
            ratio, rlo, rhi = _median_spread([a / b for a, b in zip(rates, floors)])
            floor = _median_spread(floors)[0]
            if in_hook:
                what, goal = 'an in-hook call (fill + a Python call with a request)', \
                    '(goal >= 50,000 events/s)'
            else:
                what, goal = 'stop + restart (fill, emu_stop, read RIP, emu_start)', \
                    '(goal: ratio >= 0.5)'
            print(f'(events) {how}, {name}: {count:,} events, {r:,.0f} events/s '
                  f'({1e6 / r:.1f} us; spread {lo:,.0f}-{hi:,.0f}); floor {what} '
                  f'{floor:,.0f}/s ({1e6 / floor:.1f} us); ratio median {ratio:.2f} '
                  f'({rlo:.2f}-{rhi:.2f}), {repeat} paired rounds, CPU time   {goal}')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--only', nargs='*',
                        choices=('boot', 'compute', 'faults', 'ptwrites', 'blow', 'events',
                                 'host'),
                        default=('boot', 'compute', 'faults', 'ptwrites', 'blow', 'events',
                                 'host'))
    parser.add_argument('--iterations', type=int, default=30_000_000)
    parser.add_argument('--repeat', type=int, default=5)
    args = parser.parse_args(argv)
    if 'boot' in args.only:
        bench_boot(args.repeat)
    if 'compute' in args.only:
        bench_compute(args.iterations, args.repeat)
    if 'faults' in args.only:
        bench_faults(args.repeat)
    if 'ptwrites' in args.only:
        bench_ptwrites(args.repeat)
    if 'blow' in args.only:
        bench_blow(args.repeat)
    if 'events' in args.only:
        bench_events(args.repeat)
    if 'host' in args.only:
        bench_host(args.iterations, args.repeat)
    return 0


if __name__ == '__main__':
    sys.exit(main())
