"""Shadow mode as a mode: switching on and off, the audit, the bounded pool, removal ops."""
import pytest

from pvshadow.shadow import api
from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EINVAL, EOPNOTSUPP
from pvshadow.shadow.exits import ExitReason
from pvshadow.shadow.paging.shadow import AuditError
from pvshadow.shadow.paging.x86 import _PAGE_RW
from pvshadow.shadow.toolstack import xc_shadow_control, xc_shadow_enable, xc_shadow_off


def booted(kernel='hello', **kwargs):
    return api.boot(kernel, **kwargs)


def test_shadow_op_enables_shadow_paging_on_a_direct_domain_before_it_runs():
    d = booted('pagetables')
    assert xc_shadow_enable(d) == 0 and d.paging.name == 'shadow'
    exit_ = d.run(timeout=30)
    assert exit_.clean and b'Test result: SUCCESS' in d.console
    assert d.paging.stats['shadow_fills'] > 0


def test_shadow_op_switches_modes_at_run_time_between_runs(tmp_path):
    from tests.conftest import asm_kernel
    path = asm_kernel(tmp_path, 'yielder', '''
test_main:
    mov edi, SCHEDOP_block
    xor esi, esi
    call hc_sched_op
    lea rdi, [rip + msg]
    call puts
    ret
msg: .asciz "after the switch\\n"
''')
    d = api.boot(path)
    assert d.run(timeout=10).reason is ExitReason.HALT
    assert xc_shadow_enable(d) == 0
    d.vcpus[0].set_upcall_mask(1)
    exit_ = d.run(timeout=10)
    assert exit_.clean and b'after the switch' in d.console
    assert d.paging.stats['shadow_fills'] > 0
    assert xc_shadow_off(d) == 0 and d.paging.name == 'direct'


def test_shadow_op_refuses_what_it_does_not_model():
    d = booted()
    assert xc_shadow_control(d, xen.XEN_DOMCTL_SHADOW_OP_ENABLE,
                             mode=xen.XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY)[0] == -EOPNOTSUPP
    assert xc_shadow_enable(d) == 0
    assert xc_shadow_enable(d) == -EINVAL


def test_shadow_allocation_is_read_and_set_in_megabytes():
    d = booted(paging='shadow')
    rc, mb, _ = xc_shadow_control(d, xen.XEN_DOMCTL_SHADOW_OP_GET_ALLOCATION)
    assert rc == 0 and mb == 4
    assert xc_shadow_control(d, xen.XEN_DOMCTL_SHADOW_OP_SET_ALLOCATION, mb=2)[0] == 0
    assert d.shadow_pool.limit == 512


def test_the_audit_reports_a_corrupted_shadow_entry():
    d = booted('hello', paging='shadow')
    assert d.run(timeout=10).clean
    sp = d.paging
    assert sp.audit() == []
    maddr = next(m for refs in sp.maps_of.values() for m in refs
                 if not d.mem.read_u64(m) & _PAGE_RW and sp._sh_propagate(
                     d.mem.read_u64(m)) is not None)
    d.mem.write_u64(maddr, d.mem.read_u64(maddr) | _PAGE_RW)
    problems = sp.audit()
    assert any('shadow grants write access but guest does not' in p or
               'writable before the guest entry is dirty' in p or
               'propagation rules forbid it' in p for p in problems), problems
    with pytest.raises(AuditError):
        sp.check_audit()


def test_the_audit_reports_a_shadow_pointing_at_the_wrong_frame():
    d = booted('hello', paging='shadow')
    d.run(timeout=10)
    sp = d.paging
    maddr = next(iter(next(iter(sp.maps_of.values()))))
    d.mem.write_u64(maddr, d.mem.read_u64(maddr) ^ (1 << 12))
    assert any('shadow maps mfn' in p for p in sp.audit())


def test_the_audit_reports_a_shadow_l4_whose_xen_slot_was_cleared():
    d = booted('hello', paging='shadow')
    d.run(timeout=10)
    sp = d.paging
    smfn = next(s for s, (_, level) in sp.guest_of.items() if level == 4)
    slot = next(i for i, value in sp.xen_l4_slots.items() if value)
    d.mem.write_u64((smfn << 12) + slot * 8, 0)       # not present: still checked
    assert any(f'slot {slot}: Xen slot differs' in p for p in sp.audit())


def test_a_small_pool_reclaims_unpinned_shadows_instead_of_failing():
    d = booted('usermode', paging='shadow', shadow_pool_pages=6, audit=True)
    exit_ = d.run(timeout=30)
    assert exit_.clean and b'Test result: SUCCESS' in d.console
    assert d.paging.stats['reclaimed'] > 0 and d.paging.stats['blown'] == 0
    assert d.shadow_pool.allocated <= 6


def test_reclaim_keeps_the_shadows_of_the_roots_in_use():
    d = booted('sharedl1', paging='shadow', audit=True)
    assert d.run(timeout=30).clean
    sp = d.paging
    roots = {sp.shadow_of[g, 4] for g in (d.vcpus[0].guest_table, d.vcpus[0].guest_table_user)}
    freed = sp.reclaim()
    assert freed > 0 and set(sp.guest_of) == roots
    assert sp.audit() == []


def test_shadow_blow_tables_leaves_only_what_the_next_access_rebuilds():
    d = booted('pagetables', paging='shadow')
    d.run(timeout=10)
    sp = d.paging
    assert sp.live_shadows() > 1
    sp.shadow_blow_tables(reload=False)
    assert sp.live_shadows() == 0 and sp.maps_of == {}


def test_sh_remove_all_mappings_and_write_access_follow_the_back_references():
    d = booted('hello', paging='shadow')
    d.run(timeout=10)
    sp = d.paging
    gmfn, refs = next((g, r) for g, r in sp.maps_of.items()
                      if any(d.mem.read_u64(m) & _PAGE_RW for m in r))
    assert sp.sh_remove_write_access(gmfn) >= 1
    assert all(not d.mem.read_u64(m) & _PAGE_RW for m in refs)
    count = len(refs)
    assert sp.sh_remove_all_mappings(gmfn) == count
    assert gmfn not in sp.maps_of and sp.audit() == []


def test_the_per_fault_audit_checks_the_entries_it_is_given():
    d = booted('hello', paging='shadow')
    assert d.run(timeout=10).clean
    sp = d.paging
    leaf = next(m for refs in sp.maps_of.values() for m in refs if not d.mem.read_u64(m) & _PAGE_RW)
    other = next(m for refs in sp.maps_of.values() for m in refs if m != leaf)
    d.mem.write_u64(leaf, d.mem.read_u64(leaf) | _PAGE_RW)
    sp.check_audit([other])                      # an untouched entry: nothing to report
    with pytest.raises(AuditError):
        sp.check_audit([leaf])


def test_with_auditing_on_the_whole_shadow_is_audited_when_the_run_returns():
    d = booted('hello', paging='shadow', audit=True)
    exit_ = d.run(timeout=10)
    assert exit_.clean
    sp = d.paging
    leaf = next(m for refs in sp.maps_of.values() for m in refs if not d.mem.read_u64(m) & _PAGE_RW)
    d.mem.write_u64(leaf, d.mem.read_u64(leaf) | _PAGE_RW)
    audited = d._audit_at_exit(exit_)
    assert audited.reason.value == 'internal_error' and 'shadow audit' in audited.message
