"""Every asm/ test kernel boots, runs, reports its own verdict, and powers off cleanly."""
import pytest

import os

from pvshadow.guests.kernels import ASM_DIR, kernel_names
from pvshadow.shadow.api import run_kernel

def _needs_a_harness(name):
    """Kernels whose header says "Needs:" get their setup from their own tests."""
    with open(os.path.join(ASM_DIR, name + '.S')) as f:
        return 'Needs:' in f.read(2000)


def _translated(name):
    """Kernels whose header asks for --paging translated run only that way."""
    with open(os.path.join(ASM_DIR, name + '.S')) as f:
        return '--paging translated' in f.read(4000)


KERNELS = [name for name in kernel_names()
           if not _needs_a_harness(name) and not _translated(name)]
TRANSLATED_KERNELS = [name for name in kernel_names()
                      if _translated(name) and not _needs_a_harness(name)]


def test_the_kernel_set_is_the_one_the_issues_ask_for():
    assert {'hello', 'exceptions', 'pagetables', 'usermode', 'balloon', 'refused', 'hypercalls',
            'compute', 'ptwrite', 'accessdirty', 'remap', 'sharedl1', 'ptreuse',
            'events', 'cpustate', 'timers', 'gdt', 'debugregs', 'startofday', 'privop', 'ldt',
            'isolation'} <= set(KERNELS)


@pytest.mark.parametrize('kernel', KERNELS)
def test_kernel_reports_success_and_powers_off_alike_in_both_modes(kernel):
    """SUCCESS and a clean poweroff under direct and under shadow paging (with the shadow
    audit on in both), with the same console and the same exit."""
    results = {paging: run_kernel(kernel, timeout=60, paging=paging, audit=True)
               for paging in ('direct', 'shadow')}
    for paging, result in results.items():
        assert result.verdict == 'SUCCESS', (paging, result.console)
        assert result.exit.clean, (paging, result.exit.describe(), result.console,
                                   result.domain.xen_log)
    direct, shadow = results['direct'], results['shadow']
    assert direct.console == shadow.console
    assert direct.exit.describe() == shadow.exit.describe()


@pytest.mark.parametrize('kernel', TRANSLATED_KERNELS)
def test_translated_kernel_reports_success_and_powers_off(kernel):
    result = run_kernel(kernel, timeout=60, paging='translated', audit=True)
    assert result.verdict == 'SUCCESS', result.console
    assert result.exit.clean, (result.exit.describe(), result.console, result.domain.xen_log)
    host = result.domain.host
    assert host.audit_frames() == [] and host.sharing.audit() == []


def test_the_translated_kernels_are_there():
    assert {'translated', 'altp2m'} <= set(TRANSLATED_KERNELS)


def test_hello_prints_its_greeting():
    result = run_kernel('hello')
    assert 'Hello from a PV guest on pvshadow!' in result.console


def test_console_io_shows_until_the_ring_is_used_then_goes_to_the_hypervisor_console():
    d = run_kernel('events').domain
    lines = d.console.decode().splitlines()
    assert lines.index('written through the PV console ring') == \
        lines.index('console_io before the ring') + 1
    assert 'console_io after the ring' not in lines            # Xen's `xl dmesg`, not the console
    assert b'console_io after the ring' in d.console_io


def test_a_kernel_that_prints_only_through_the_ring_shows_every_step_in_order():
    """startofday has no pv.inc: its whole output, verdict included, goes through the
    PV console ring, with one console_io line between two ring lines (which, the ring in
    use, goes to the hypervisor console as on Xen)."""
    lines = run_kernel('startofday').console.splitlines()
    steps = [line for line in lines if line.startswith('startofday: ')]
    assert [s.split(': ', 1)[1].split()[0] for s in steps] == \
        ['own', 'CPUID', 'own', 'the', 'int3', 'an', 'VIRQ_TIMER', 'user']
    ring = lines.index('startofday: the ring, then console_io, then the ring')
    assert lines[ring + 1] == '  (and the ring again)'        # console_io went to Xen's log
    assert lines[-1] == 'Test result: SUCCESS'


def test_a_line_written_both_ways_before_the_ring_is_used_shows_once():
    """XTF's printk writes every line through console_io and the ring: the ring's first
    output repeats what console_io already showed, and is shown once."""
    d = run_kernel('hello').domain
    d.console.clear()
    d.console_io_write(b'--- Xen Test Framework ---\n')
    d.console_ring_write(b'--- Xen Test Framework ---\n')
    d.console_io_write(b'Hello World\n')
    d.console_ring_write(b'Hello World\n')
    assert bytes(d.console) == b'--- Xen Test Framework ---\nHello World\n'
    assert bytes(d.console_io).endswith(b'--- Xen Test Framework ---\nHello World\n')
    assert bytes(d.console_ring) == b'--- Xen Test Framework ---\nHello World\n'


def test_ring_output_that_differs_from_console_io_is_all_shown():
    d = run_kernel('hello').domain
    d.console.clear()
    d.console_ring_write(b'something else\n')
    assert bytes(d.console) == b'something else\n'
