"""The toolstack-level API front ends use: boot a kernel into a fresh host and run it."""
from dataclasses import dataclass
from typing import Callable, Optional

from guests.builder import build_domain
from guests.kernels import load_kernel
from shadow.domain import Domain
from shadow.exits import Exit
from shadow.host import Host
from shadow.paging.shadow import DEFAULT_POOL_PAGES

PAGING_MODES = ('direct', 'shadow')


@dataclass
class RunResult:
    domain: Domain
    exit: Exit

    @property
    def console(self) -> str:
        return self.domain.console.decode('utf-8', 'replace')

    @property
    def verdict(self) -> Optional[str]:
        """The kernel's own verdict: the last 'Test result: X' line it printed."""
        verdict = None
        for line in self.console.splitlines():
            if line.startswith('Test result: '):
                verdict = line.split(':', 1)[1].strip()
        return verdict


def boot(kernel: str, memory_mb: int = 16, paging: str = 'direct', cmdline: str = '',
         machine_mb: Optional[int] = None, audit: bool = False,
         shadow_pool_pages: int = DEFAULT_POOL_PAGES, vm_event_ring: bool = False,
         console_sink: Optional[Callable[[bytes], None]] = None) -> Domain:
    """Load a kernel (path or test-kernel name) and build its domain, ready to run.
    Raises guests.image.KernelError with a one-line message for a bad kernel."""
    if paging not in PAGING_MODES:
        raise ValueError(f'paging mode {paging!r} is not available (have: {", ".join(PAGING_MODES)})')
    image = load_kernel(kernel)
    pool_mb = shadow_pool_pages // 256 if paging == 'shadow' else 0
    host = Host(machine_mb or max(64, memory_mb * 2 + pool_mb + 32))
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
    from shadow.exits import ExitReason
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
