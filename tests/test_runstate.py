"""Several vCPUs and the runstate area under KPTI-style page tables (the `runstate`
kernel): the each-switch policy misses updates while the vCPU is in user mode and says
so; the registration-time policy and the physical-address interface never do; a held
frame reference moves on re-registration and goes at domain destruction."""
from pvshadow.shadow import api
from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EEXIST, ENOENT
from pvshadow.shadow.hypercall.vcpu import do_vcpu_op


def run(policy, cmdline=''):
    d = api.boot('runstate', paging='shadow', audit=True, cmdline=cmdline)
    d.runstate_policy = policy
    exit_ = d.run(timeout=60)
    assert exit_.clean, exit_.describe()
    return d


def test_each_switch_policy_misses_updates_in_user_mode_and_logs_them():
    d = run('each-switch')
    rs = d.vcpus[0].runstate
    assert rs.missed > 0 and rs.updates > 0
    assert any('failed to walk page-table va' in line and '(user tables)' in line
               for line in d.xen_log)
    # the kernel finds its area stale: what the policy costs a KPTI guest
    assert b'the area shows no time' in d.console


def test_registration_time_policy_never_misses_an_update():
    d = run('registration')
    rs = d.vcpus[0].runstate
    assert rs.missed == 0 and rs.updates > 10
    assert b'Test result: SUCCESS' in d.console and not d.xen_log


def test_the_physical_interface_never_misses_under_either_policy():
    for policy in ('each-switch', 'registration'):
        d = run(policy, 'phy=1')
        assert d.vcpus[0].runstate.missed == 0 and d.vcpus[0].runstate.phys
        assert b'Test result: SUCCESS' in d.console, (policy, d.console)


def test_two_vcpus_alternate_and_account_each_state():
    d = run('registration')
    v0, v1 = (v.runstate.info for v in d.vcpus[:2])
    assert v0.time[xen.RUNSTATE_running] > 0 and v0.time[xen.RUNSTATE_runnable] > 0
    assert v1.time[xen.RUNSTATE_running] > 0 and v1.time[xen.RUNSTATE_runnable] > 0
    assert v0.state == xen.RUNSTATE_running


def test_the_held_reference_moves_on_reregistration_and_goes_at_destruction():
    d = run('registration')
    v0 = d.vcpus[0]
    rs = v0.runstate
    held = rs.held >> 12
    count = d.frames.count[held]
    other = d.layout.stack                        # another page the kernel owns
    assert rs.register_va(v0, other) == 0
    moved = rs.held >> 12
    assert moved != held and d.frames.count[held] == count - 1
    count_moved = d.frames.count[moved]
    d.destroy()
    assert d.frames.count[moved] == count_moved - 1 and rs.held is None


def test_an_area_crossing_a_page_is_refused():
    d = run('registration')
    from pvshadow.shadow.abi.xen import EINVAL
    assert d.vcpus[0].runstate.register_va(d.vcpus[0], d.layout.stack + 4090) == -EINVAL


def test_vcpu_op_refuses_a_missing_vcpu_and_a_second_initialise():
    d = run('registration')
    v0 = d.vcpus[0]
    assert do_vcpu_op(v0, xen.VCPUOP_is_up, 9, 0) == -ENOENT
    assert do_vcpu_op(v0, xen.VCPUOP_initialise, 1, 0) == -EEXIST
    assert do_vcpu_op(v0, xen.VCPUOP_is_up, 1, 0) == 1
