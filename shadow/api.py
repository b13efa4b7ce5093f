"""The toolstack-level API front ends use: boot a kernel into a fresh host and run it,
or boot several into one host and run them together.

    from pvshadow.guests.config import DomainSpec
    from pvshadow.shadow.api import run_host
    results = run_host([DomainSpec('pingpong', name='back', cmdline='xst=1 rol=0', peer='front'),
                        DomainSpec('pingpong', name='front', cmdline='xst=1 rol=1', peer='back',
                                   paging='shadow')])
    assert all(r.verdict == 'SUCCESS' and r.exit.clean for r in results)
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

from pvshadow.guests.builder import build_domain
from pvshadow.guests.config import DomainSpec
from pvshadow.guests.kernels import load_kernel
from pvshadow.shadow.domain import Domain
from pvshadow.shadow.exits import Exit, ExitReason
from pvshadow.shadow.host import Host
from pvshadow.shadow.paging.shadow import DEFAULT_POOL_PAGES
from pvshadow.shadow.toolstack import xc_domain_add_target, xc_domain_set_target

PAGING_MODES = ('direct', 'shadow', 'translated')


@dataclass
class RunResult:
    domain: Domain
    exit: Exit

    @property
    def console(self) -> str:
        return self.domain.console.decode('utf-8', 'replace')

    @property
    def verdict(self) -> Optional[str]:
        """The kernel's own verdict: the last 'Test result: X' line on its console, or,
        failing that, on the hypervisor console (console_io after the ring took over)."""
        for text in (self.console, self.domain.console_io.decode('utf-8', 'replace')):
            verdict = None
            for line in text.splitlines():
                if line.startswith('Test result: '):
                    verdict = line.split(':', 1)[1].strip()
            if verdict is not None:
                return verdict
        return None

    @property
    def outcome(self) -> str:
        return outcome(self.verdict, self.exit)


# xtf-runner's exit codes, by the kernel's verdict; CRASH for no verdict, a domain crash,
# a timeout or an internal error (any end but a clean poweroff), whatever was printed.
EXIT_CODES = {'SUCCESS': 0, 'SKIP': 3, 'ERROR': 4, 'FAILURE': 5, 'CRASH': 6}
EXIT_CANNOT_USE = 2


def outcome(verdict: Optional[str], exit_: Exit) -> str:
    """SUCCESS, SKIP, ERROR, FAILURE or CRASH for a run, as xtf-runner judges one."""
    if not exit_.clean or verdict not in EXIT_CODES:
        return 'CRASH'
    return verdict


def exit_code(results) -> int:
    """The worst exit code of several results (a RunResult each)."""
    return max((EXIT_CODES[r.outcome] for r in results), default=0)


def make_host(machine_mb: int) -> Host:
    """A host, or ValueError with one line when this machine cannot map its memory."""
    from unicorn import UcError
    try:
        return Host(machine_mb)
    except (MemoryError, OSError, UcError) as exc:
        raise ValueError(f'cannot map {machine_mb} MiB of machine memory: {exc}') from None


def boot(kernel: str, memory_mb: int = 16, paging: str = 'direct', cmdline: str = '',
         machine_mb: Optional[int] = None, audit: bool = False,
         shadow_pool_pages: int = DEFAULT_POOL_PAGES, vm_event_ring: bool = False,
         console_sink: Optional[Callable[[bytes], None]] = None,
         include_dirs: Sequence[str] = ()) -> Domain:
    """Load a kernel (path or test-kernel name) and build its domain, ready to run.
    Raises guests.image.KernelError with a one-line message for a bad kernel.
    include_dirs: where an asm kernel's .include looks after its own directory."""
    if paging not in PAGING_MODES:
        raise ValueError(f'paging mode {paging!r} is not available (have: {", ".join(PAGING_MODES)})')
    image = load_kernel(kernel, include_dirs=include_dirs)
    pool_mb = shadow_pool_pages // 256 if paging != 'direct' else 0
    host = make_host(machine_mb or max(64, memory_mb * 2 + pool_mb + 32))
    domain = build_domain(host, image, memory_mb=memory_mb, cmdline=cmdline, paging=paging,
                          shadow_pool_pages=shadow_pool_pages, audit=audit,
                          vm_event_ring=vm_event_ring)
    domain.console_sink = console_sink
    return domain


def rom_device_model(domain, mmio: dict) -> None:
    """The plain device model: ROM writes are dropped, ROMD writes go to the frame."""
    if mmio['romd']:
        domain.write_physical(mmio['address'], mmio['data'].to_bytes(mmio['size'], 'little'))


def run_with_device_model(domain, device_model=rom_device_model, on_mmio=None, **run_kwargs):
    """Run, handing each mmio exit to the device model and carrying on after it; returns
    the first exit of any other kind."""
    while True:
        exit_ = domain.run(**run_kwargs)
        if exit_.reason is not ExitReason.MMIO:
            return exit_
        if on_mmio is not None:
            on_mmio(exit_.mmio)
        device_model(domain, exit_.mmio)


def run_kernel(kernel: str, budget: int = 0, timeout: Optional[float] = 60.0, **kwargs) -> RunResult:
    domain = boot(kernel, **kwargs)
    return RunResult(domain, domain.run(budget=budget, timeout=timeout))


# --- several domains on one host -------------------------------------------------------------
def boot_host(specs: Sequence[DomainSpec], machine_mb: Optional[int] = None,
              console_sink: Optional[Callable[[str, bytes], None]] = None):
    """(host, domains): every spec built into one fresh host, in order (domids 1, 2, ...),
    each `peer` written to its domain's xenstore home as the peer's domid, each `target` set
(XEN_DOMCTL_set_target), each of `targets` added to its target set, each of `devices`
    attached (its register frame in its xenstore home), `privileged` making the control
    domain. console_sink,
    if given, receives (domain name, bytes) as each console writes."""
    names = [spec.name or f'd{i + 1}' for i, spec in enumerate(specs)]
    if len(set(names)) != len(names):
        raise ValueError(f'two domains share a name: {", ".join(names)}')
    images = [load_kernel(spec.kernel) for spec in specs]
    total = sum(spec.memory_mb for spec in specs)
    host = make_host(machine_mb or max(64, total * 2 + 8 * len(specs) + 32))
    domains = []
    for spec, name, image in zip(specs, names, images):
        d = build_domain(host, image, memory_mb=spec.memory_mb, cmdline=spec.cmdline,
                         name=name, paging=spec.paging, max_vcpus=spec.vcpus,
                         privileged=spec.privileged)
        if console_sink is not None:
            d.console_sink = lambda data, name=name: console_sink(name, data)
        domains.append(d)
    by_name = {d.name: d for d in domains}
    for spec, d in zip(specs, domains):
        if spec.peer:
            if spec.peer not in by_name:
                raise ValueError(f'{d.name}: peer {spec.peer!r} is not one of the domains')
            host.store.write(f'{host.store.home(d.domid)}/peer', str(by_name[spec.peer].domid))
        if spec.target:
            if spec.target not in by_name:
                raise ValueError(f'{d.name}: target {spec.target!r} is not one of the domains')
            rc = xc_domain_set_target(host, d, by_name[spec.target].domid)
            if rc:
                raise ValueError(f'{d.name}: cannot target {spec.target!r} (errno {-rc})')
        for name in spec.targets:
            if name not in by_name or by_name[name] is d:
                raise ValueError(f'{d.name}: target {name!r} is not one of the other domains')
            xc_domain_add_target(host, d, by_name[name].domid)
        for device in spec.devices:
            engine = host.add_dma_engine(d)
            host.store.write(f'{host.store.home(d.domid)}/device/{device}/mfn', str(engine.mfn))
    return host, domains


def run_host(specs: Sequence[DomainSpec], timeout: Optional[float] = 60.0,
             **boot_kwargs) -> List[RunResult]:
    """Boot every spec into one host, run them all until each has ended (or the
    watchdog fires); one RunResult a domain, in the specs' order."""
    host, domains = boot_host(specs, **boot_kwargs)
    return run_host_booted(host, domains, timeout=timeout)


def run_host_booted(host, domains, timeout: Optional[float] = 60.0) -> List[RunResult]:
    """Run a host boot_host made; one RunResult a domain, in order."""
    ended: Dict[int, Exit] = {}
    for host_exit in host.run(timeout=timeout):
        ended[host_exit.domid] = host_exit.exit
    unfinished = Exit(ExitReason.TIMEOUT, message='still running when the run stopped')
    return [RunResult(d, ended.get(d.domid, unfinished)) for d in domains]
