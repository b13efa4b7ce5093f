"""Several domains on one host: the host's scheduler runs the vCPUs of every domain on
the one CPU, each domain under its own paging mode."""
import pytest

from pvshadow.guests.builder import build_domain
from pvshadow.guests.kernels import load_kernel
from pvshadow.shadow.host import Host

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


@pytest.mark.parametrize('modes', MODES, ids='-'.join)
def test_two_domains_using_ldts_find_their_own_after_every_switch(modes):
    """Their vCPU 0s share the hypervisor's GDT/LDT area: each switch-in maps that
    vCPU's LDT pages there again (slices of ten instructions: dozens of switches)."""
    host = Host(160)
    host.scheduler.slice = 10
    domains = [_boot(host, 'ldt', paging) for paging in modes]
    exits = host.run(timeout=30)
    assert all(e.exit.clean for e in exits), [e.describe() for e in exits]
    assert [_verdict(d) for d in domains] == ['SUCCESS'] * 2
    assert host.scheduler.switches > 20


def test_a_domain_that_crashes_leaves_the_others_running():
    host = Host(160)
    crasher = _boot(host, 'hello', 'direct')
    crasher.entry = (0, crasher.entry[1], crasher.entry[2])      # jumps to address 0
    survivor = _boot(host, 'timers', 'shadow')
    exits = {e.domid: e.exit for e in host.run(timeout=60)}
    assert not exits[crasher.domid].clean
    assert exits[survivor.domid].clean and _verdict(survivor) == 'SUCCESS'


def test_a_paused_domain_executes_nothing_while_the_others_run():
    from pvshadow.shadow.toolstack import xc_domain_pause, xc_domain_unpause
    host = Host(160)
    paused = _boot(host, 'timers', 'direct')
    other = _boot(host, 'timers', 'shadow')
    host.run(budget=50000)
    assert xc_domain_pause(paused) == 0
    ran = paused.stats['instructions_scheduled']
    exits = host.run(timeout=60)
    assert [e.domid for e in exits] == [other.domid] and _verdict(other) == 'SUCCESS'
    assert paused.stats['instructions_scheduled'] == ran and _verdict(paused) is None
    assert xc_domain_unpause(paused) == 0
    assert [e.domid for e in host.run(timeout=60)] == [paused.domid]
    assert _verdict(paused) == 'SUCCESS'


@pytest.mark.parametrize('modes', MODES, ids='-'.join)
def test_two_kernels_ping_pong_an_interdomain_event_1000_times(modes):
    host = Host(128)
    offerer = _boot_with(host, 'pingpong', modes[0], 'rol=0 per=2')
    binder = _boot_with(host, 'pingpong', modes[1], 'rol=1 per=1 prt=3')
    exits = host.run(timeout=120)
    assert all(e.exit.clean for e in exits) and len(exits) == 2
    for d in (offerer, binder):
        assert 'pingpong: every round came back' in d.console.decode()
        assert _verdict(d) == 'SUCCESS'
    assert host.scheduler.switches >= 2000       # each round trip is two switches


def _boot_with(host, kernel, paging, cmdline):
    return build_domain(host, load_kernel(kernel), memory_mb=8, paging=paging, cmdline=cmdline)


def _two_domains():
    host = Host(64)
    return host, _boot(host, 'hello', 'direct'), _boot(host, 'hello', 'direct')


def test_binding_needs_a_port_offered_to_this_domain():
    from pvshadow.shadow.abi.xen import EINVAL, ESRCH
    _, a, b = _two_domains()
    offered = a.evtchn.alloc_unbound(b.domid)
    not_for_b = a.evtchn.alloc_unbound(a.domid)
    assert b.evtchn.bind_interdomain(a.domid, not_for_b) == -EINVAL
    assert b.evtchn.bind_interdomain(77, offered) == -ESRCH
    assert b.evtchn.bind_interdomain(a.domid, 0xFFFFFFFF) == -EINVAL
    assert b.evtchn.bind_interdomain(a.domid, offered) > 0


def test_sending_across_domains_marks_the_far_port_and_closing_unbinds_it():
    from pvshadow.shadow.abi import xen
    _, a, b = _two_domains()
    offered = a.evtchn.alloc_unbound(b.domid)
    local = b.evtchn.bind_interdomain(a.domid, offered)
    assert b.evtchn.is_pending(local)              # the bind's own notification
    assert b.evtchn.send(local) == 0 and a.evtchn.is_pending(offered)
    assert b.evtchn.close(local) == 0
    far = a.evtchn.ports[offered]
    assert (far.state, far.remote_dom) == (xen.EVTCHNSTAT_unbound, b.domid)


def test_destroying_a_domain_gives_every_frame_back():
    from pvshadow.shadow.toolstack import xc_domain_destroy
    for paging in ('direct', 'shadow'):
        host = Host(128)
        free = host.frames.free_frames()
        d = _boot(host, 'ptwrite', paging)
        assert host.audit_frames() == []
        d.run(timeout=30)
        assert xc_domain_destroy(host, d) == 0
        assert host.audit_frames() == []
        assert host.frames.free_frames() == free
        assert d.domid not in host.domains


def test_destroying_one_of_three_running_domains_leaves_the_others_to_succeed():
    from pvshadow.shadow.toolstack import xc_domain_destroy
    host = Host(160)
    a, b, c = (_boot(host, 'timers', m) for m in ('direct', 'shadow', 'direct'))
    stop = host.run(budget=30000)
    assert stop[-1].exit.reason.value == 'budget'
    assert xc_domain_destroy(host, b) == 0
    assert host.audit_frames() == []
    exits = host.run(timeout=60)
    assert sorted(e.domid for e in exits) == [a.domid, c.domid]
    assert _verdict(a) == _verdict(c) == 'SUCCESS'
    assert host.audit_frames() == []


def test_pause_nests_and_unpause_needs_a_pause():
    from pvshadow.shadow.abi.xen import EINVAL
    from pvshadow.shadow.toolstack import xc_domain_getinfo, xc_domain_pause, xc_domain_unpause
    host = Host(64)
    d = _boot(host, 'hello', 'direct')
    assert xc_domain_unpause(d) == -EINVAL
    assert xc_domain_pause(d) == xc_domain_pause(d) == 0
    assert xc_domain_unpause(d) == 0 and xc_domain_getinfo(d)[1].paused
    assert xc_domain_unpause(d) == 0 and not xc_domain_getinfo(d)[1].paused
    info = xc_domain_getinfo(d)[1]
    assert (info.tot_pages, info.max_pages, info.dying) == (d.tot_pages, d.max_pages, False)


@pytest.mark.parametrize('modes', MODES, ids='-'.join)
def test_run_host_boots_a_backend_and_frontend_that_meet_through_the_xenstore(modes):
    from pvshadow.guests.config import DomainSpec
    from pvshadow.shadow.api import run_host
    back, front = modes
    # ten round trips once they have met (rnd= is hex): the thousand are the test above's
    results = run_host([
        DomainSpec('pingpong', name='back', memory_mb=8, cmdline='xst=1 rol=0 rnd=a',
                   peer='front', paging=back),
        DomainSpec('pingpong', name='front', memory_mb=8, cmdline='xst=1 rol=1 rnd=a',
                   peer='back', paging=front)])
    assert [(r.domain.name, r.verdict) for r in results] == [('back', 'SUCCESS'),
                                                             ('front', 'SUCCESS')]
    assert all(r.exit.clean for r in results)


def test_createdomain_refuses_a_vcpu_count_or_paging_mode_it_cannot_give():
    from pvshadow.shadow.abi import xen
    from pvshadow.shadow.toolstack import xc_domain_create
    host = Host(64)
    assert xc_domain_create(host, 256, max_vcpus=0) == (-xen.EINVAL, None)
    assert xc_domain_create(host, 256, max_vcpus=5) == (-xen.EINVAL, None)
    assert xc_domain_create(host, 256, paging='nested') == (-xen.EINVAL, None)
    assert host.domains == {}
    rc, d = xc_domain_create(host, 256, max_vcpus=2)
    assert rc == 0 and len(d.vcpus) == 2


FOREIGN_MODES = [('direct', 'direct'), ('shadow', 'shadow'), ('shadow', 'direct'),
                 ('direct', 'shadow')]


def _foreign_pair(back_paging, client_paging, back_cmdline='rol=0', **back_rights):
    from pvshadow.guests.config import DomainSpec
    from pvshadow.shadow.api import boot_host, run_host_booted
    host, domains = boot_host([
        DomainSpec('foreignmap', name='back', memory_mb=8, cmdline=back_cmdline, peer='client',
                   paging=back_paging, **back_rights),
        DomainSpec('foreignmap', name='client', memory_mb=8, cmdline='rol=1', peer='back',
                   paging=client_paging)])
    results = run_host_booted(host, domains)
    assert host.audit_frames() == []
    return [(r.verdict, r.exit.clean) for r in results], [r.domain.console.decode() for r in results]


@pytest.mark.parametrize('modes', FOREIGN_MODES, ids='-'.join)
def test_the_control_domain_maps_its_clients_page_on_the_cpu_and_answers_in_it(modes):
    verdicts, (back, client) = _foreign_pair(*modes, privileged=True)
    assert verdicts == [('SUCCESS', True), ('SUCCESS', True)], back + client
    assert "read the client's secret and answered in its page" in back
    assert "the backend's answer is in my page" in client


@pytest.mark.parametrize('modes', FOREIGN_MODES[:2], ids='-'.join)
def test_a_domain_whose_target_is_the_client_maps_it_too(modes):
    verdicts, _ = _foreign_pair(*modes, target='client')
    assert verdicts == [('SUCCESS', True), ('SUCCESS', True)]


@pytest.mark.parametrize('modes', FOREIGN_MODES[:2], ids='-'.join)
def test_an_unprivileged_backend_is_refused_and_the_client_page_is_untouched(modes):
    verdicts, (back, client) = _foreign_pair(*modes, back_cmdline='rol=0 exp=1')
    assert verdicts == [('SUCCESS', True), ('SUCCESS', True)], back + client
    assert "refused the client's frame (-EPERM)" in back
    assert 'my page is untouched' in client
