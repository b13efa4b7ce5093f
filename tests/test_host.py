"""Several domains on one host: the host's scheduler runs the vCPUs of every domain on
the one CPU, each domain under its own paging mode."""
import pytest

from guests.builder import build_domain
from guests.kernels import load_kernel
from shadow.host import Host

MODES = [('direct', 'direct'), ('shadow', 'shadow'), ('direct', 'shadow')]


def _boot(host, kernel, paging, memory_mb=8):
    return build_domain(host, load_kernel(kernel), memory_mb=memory_mb, paging=paging)


def _verdict(d):
    lines = [line for line in d.console.decode().splitlines() if line.startswith('Test result:')]
    return lines[-1].split(':', 1)[1].strip() if lines else None


@pytest.mark.parametrize('paging', ['direct', 'shadow'])
def test_a_domain_created_after_another_has_run_boots_and_succeeds(paging):
    host = Host(128)
    first = _boot(host, 'hello', paging)
    assert first.run(timeout=30).clean
    second = _boot(host, 'exceptions', paging)
    exit_ = second.run(timeout=30)
    assert exit_.clean, exit_.describe()
    assert _verdict(second) == 'SUCCESS'


@pytest.mark.parametrize('modes', MODES, ids='-'.join)
def test_three_domains_run_together_to_their_own_verdicts(modes):
    host = Host(160)
    domains = [_boot(host, kernel, paging) for kernel, paging in
               zip(('timers', 'compute', 'ptwrite'), modes + ('shadow',))]
    exits = host.run(timeout=60)
    assert sorted(e.domid for e in exits) == [d.domid for d in domains]
    assert all(e.exit.clean for e in exits), [e.describe() for e in exits]
    assert [_verdict(d) for d in domains] == ['SUCCESS'] * 3
    assert host.scheduler.switches > 2          # they took turns


def test_a_domain_that_crashes_leaves_the_others_running():
    host = Host(160)
    crasher = _boot(host, 'hello', 'direct')
    crasher.entry = (0, crasher.entry[1], crasher.entry[2])      # jumps to address 0
    survivor = _boot(host, 'timers', 'shadow')
    exits = {e.domid: e.exit for e in host.run(timeout=60)}
    assert not exits[crasher.domid].clean
    assert exits[survivor.domid].clean and _verdict(survivor) == 'SUCCESS'


def test_a_paused_domain_executes_nothing_while_the_others_run():
    host = Host(160)
    paused = _boot(host, 'compute', 'direct')
    other = _boot(host, 'timers', 'direct')
    paused.pause_count = 1
    exits = host.run(timeout=60)
    assert [e.domid for e in exits] == [other.domid]
    assert not paused.vcpus[0].entered and paused.console == bytearray()
