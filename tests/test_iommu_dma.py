"""Per-domain IOMMU tables, the map-by-reference operation, target sets and the DMA
engine (issue 17), in both paging modes, with the frame ledger and mapping checks after
every hypercall (tests/grants.py). The first two tests are the race of the
map-not-lookup thread, with the lookup design and with the map design."""
import pytest

from pvshadow.shadow import dma
from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EBUSY, ENOENT, EPERM
from pvshadow.shadow.lifecycle import destroy, remove_target
from pvshadow.shadow.vcpu import GuestFault
from tests.grants import GrantHost

pytestmark = pytest.mark.parametrize('paging', ['direct', 'shadow'])
PATTERN = b'DMA from the backend\x00' * 8


@pytest.fixture
def g(paging):
    return GrantHost(paging)


def _write(g, engine, bus, physical=False, data=PATTERN):
    """The backend's device copies `data` (staged in one of the backend's own frames,
    reached 1:1 through its IOMMU table) to bus address `bus`."""
    staging = g.b.mfn(g.b.unmapped_pfn(2))
    g.host.mem.write(staging << 12, data)
    return engine.start(staging << 12, bus, len(data), physical=physical)


def test_lookup_semantics_let_the_backends_dma_corrupt_a_domain_created_later(g):
    """The thread's five steps: look up the client's gfn (no reference), the client
    balloons the page out, a new domain receives it, the DMA lands in the new domain."""
    engine = g.host.add_dma_engine(g.b.d)
    rc, mfn = g.b.get_mfn_from_pfn(g.c.d.domid, g.pfn)
    assert (rc, mfn) == (0, g.mfn)
    assert g.c.balloon_out(g.mfn) == 1
    d = g.new_domain()
    assert g.mfn in d.d.p2m                       # reused by the very next allocation
    pfn = list(d.d.p2m).index(g.mfn)
    assert _write(g, engine, mfn << 12, physical=True) == dma.DONE
    assert d.d.mem.read(d.d.p2m[pfn] << 12, len(PATTERN)) == PATTERN   # corrupted


def test_map_semantics_keep_the_frame_a_zombie_and_the_new_domain_untouched(g):
    engine = g.host.add_dma_engine(g.b.d)
    status, bfn = g.b.lookup_foreign(g.c.d.domid, g.pfn)
    assert (status, bfn) == (0, g.mfn)
    assert g.c.balloon_out(g.mfn) == 1
    assert g.host.frames.owner[g.mfn] == g.c.d.domid and g.host.frames.count[g.mfn] == 1
    d = g.new_domain()
    assert g.mfn not in d.d.p2m
    before = [d.d.mem.read(m << 12, 4096) for m in d.d.p2m]
    assert _write(g, engine, bfn << 12) == dma.DONE
    assert g.host.mem.read(g.mfn << 12, len(PATTERN)) == PATTERN     # into the zombie
    assert g.b.iommu_op(xen.IOMMUOP_unmap_foreign_page, bfn=bfn).status == 0
    assert g.host.frames.count[g.mfn] == 0                            # freed at the unmap
    assert [d.d.mem.read(m << 12, 4096) for m in d.d.p2m] == before


def test_dma_after_unmap_faults_and_writes_nothing(g):
    engine = g.host.add_dma_engine(g.b.d)
    _, bfn = g.b.lookup_foreign(g.c.d.domid, g.pfn)
    assert g.b.iommu_op(xen.IOMMUOP_unmap_foreign_page, bfn=bfn).status == 0
    before = g.host.mem.read(g.mfn << 12, 4096)
    assert _write(g, engine, bfn << 12) == dma.FAULTED
    assert engine.reg(dma.FAULT) == bfn << 12 and g.b.d.iommu.faults[-1].bfn == bfn
    assert g.host.mem.read(g.mfn << 12, 4096) == before


def test_a_read_only_bfn_can_be_read_but_a_write_faults(g):
    engine = g.host.add_dma_engine(g.b.d)
    status, bfn = g.b.lookup_foreign(g.c.d.domid, g.pfn, writable=False)
    assert status == 0
    assert _write(g, engine, bfn << 12) == dma.FAULTED
    mine = g.b.mfn(g.b.unmapped_pfn(2))
    assert engine.start(bfn << 12, mine << 12, 64) == dma.DONE


def test_a_page_table_is_never_dma_writable(g):
    engine = g.host.add_dma_engine(g.b.d)
    own_l1 = g.b.d.paging.find_l1_entry(g.b.v.guest_table, g.b.scratch) >> 12
    assert g.b.d.iommu.lookup(own_l1) is None
    assert _write(g, engine, own_l1 << 12) == dma.FAULTED
    client_l1 = g.c.d.paging.find_l1_entry(g.c.v.guest_table, g.c.scratch) >> 12
    status, _ = g.b.lookup_foreign(g.c.d.domid, g.c.d.pfn_of[client_l1])
    assert status == -EBUSY


def test_a_frame_mapped_writable_for_dma_cannot_become_a_page_table(g):
    g.b.lookup_foreign(g.c.d.domid, g.pfn)
    assert g.c.pin_l1(g.mfn) == -xen.EINVAL


def test_a_backend_that_dies_loses_its_mappings_and_its_device_faults(g):
    engine = g.host.add_dma_engine(g.b.d)
    _, bfn = g.b.lookup_foreign(g.c.d.domid, g.pfn)
    ref, granted = 8, g.c.mfn(g.pfn - 1)
    held = g.host.frames.count[granted]
    g.c.grant(ref, g.b.d.domid, granted)
    g.b.map_grant(g.c.d.domid, ref, xen.GNTMAP_device_map)
    assert g.b.d.iommu.lookup(granted) == (granted, True)
    destroy(g.host, g.b.d)
    g.check()
    assert g.host.frames.count[g.mfn] == 1 and g.host.frames.count[granted] == held
    assert engine.start(granted << 12, granted << 12, 16) == dma.FAULTED
    before = g.host.mem.read(g.mfn << 12, 4096)
    assert engine.start(bfn << 12, bfn << 12, 16) == dma.FAULTED
    assert g.host.mem.read(g.mfn << 12, 4096) == before


def test_a_client_that_dies_leaves_its_mapped_frame_until_the_backend_unmaps(g):
    _, bfn = g.b.lookup_foreign(g.c.d.domid, g.pfn)
    destroy(g.host, g.c.d)
    g.check()
    assert g.c.d.domid in g.host.zombies and g.host.frames.owner[bfn] == g.c.d.domid
    assert g.b.iommu_op(xen.IOMMUOP_unmap_foreign_page, bfn=bfn).status == 0
    assert g.c.d.domid not in g.host.domains


def test_a_target_set_of_two_clients_refuses_a_third(g):
    second, third = g.new_domain(), g.new_domain()
    from pvshadow.shadow.lifecycle import add_target
    assert add_target(g.host, g.b.d, second.d.domid) == 0
    assert g.b.lookup_foreign(g.c.d.domid, g.pfn)[0] == 0
    assert g.b.lookup_foreign(second.d.domid, second.unmapped_pfn(3))[0] == 0
    assert g.b.lookup_foreign(third.d.domid, third.unmapped_pfn(3))[0] == -EPERM
    assert g.b.get_mfn_from_pfn(third.d.domid, 3)[0] == -EPERM
    assert remove_target(g.host, g.b.d, second.d.domid) == 0
    assert g.b.lookup_foreign(second.d.domid, second.unmapped_pfn(4))[0] == -EPERM
    assert remove_target(g.host, g.b.d, third.d.domid) == -ENOENT


def test_the_iommu_op_answers_query_caps_and_refuses_unknown_subops(g):
    op = g.b.iommu_op(xen.IOMMUOP_query_caps)
    assert (op.status, op.flags) == (0, xen.IOMMU_QUERY_map_cap)
    assert g.b.iommu_op(99).status == -xen.ENOSYS
    assert g.b.iommu_op(xen.IOMMUOP_unmap_page, bfn=5).status == -ENOENT


def test_map_page_maps_an_own_frame_at_a_chosen_bfn(g):
    engine = g.host.add_dma_engine(g.b.d)
    pfn = g.b.unmapped_pfn(4)
    bfn = 0x100000
    op = g.b.iommu_op(xen.IOMMUOP_map_page, bfn=bfn, gfn=pfn,
                      flags=xen.IOMMU_OP_readable | xen.IOMMU_OP_writeable)
    assert op.status == 0
    assert _write(g, engine, bfn << 12) == dma.DONE
    assert g.host.mem.read(g.b.mfn(pfn) << 12, len(PATTERN)) == PATTERN
    assert g.b.iommu_op(xen.IOMMUOP_unmap_page, bfn=bfn).status == 0
    assert _write(g, engine, bfn << 12) == dma.FAULTED


def test_the_lookup_is_for_privileged_callers_only(g):
    assert g.c.get_mfn_from_pfn(g.b.d.domid, 3)[0] == -EPERM
    assert g.c.lookup_foreign(g.b.d.domid, 3)[0] == -EPERM


def test_only_the_engines_owner_may_map_its_register_page(g):
    from tests.hostile import RW
    engine = g.host.add_dma_engine(g.b.d)
    assert g.c.map(g.c.scratch, engine.mfn << 12 | RW) == -EPERM
    assert g.b.map(g.b.scratch, engine.mfn << 12 | RW) == 0
    assert g.b.map(g.b.scratch, (engine.mfn + 1) << 12 | RW) == -EPERM


def test_a_hypercall_buffer_on_the_devices_registers_is_efault(g):
    """The hypervisor's copies to and from a guest reach RAM only: a buffer the backend
    maps onto its device's register page (past the end of RAM) is -EFAULT, both ways."""
    from tests.hostile import RW
    engine = g.host.add_dma_engine(g.b.d)
    assert g.b.map(g.b.scratch, engine.mfn << 12 | RW) == 0
    assert g.b.call(xen.HYPERVISOR_xen_version, xen.XENVER_extraversion, g.b.scratch) == \
        -xen.EFAULT
    assert g.b.call(xen.HYPERVISOR_event_channel_op, xen.EVTCHNOP_send, g.b.scratch) == \
        -xen.EFAULT
    with pytest.raises(GuestFault, match='maps a frame past the end of RAM'):
        g.b.v.translate(g.b.scratch)


CRASHING = '''.include "pv.inc"
test_main:
    mov dword ptr [rip + shutdown_reason], SHUTDOWN_crash
    mov edi, SCHEDOP_shutdown
    lea rsi, [rip + shutdown_reason]
    call hc_sched_op
    ud2
'''


def test_a_backend_that_crashes_loses_its_mappings_when_it_ends(paging, tmp_path):
    from tests.grants import GrantGuest
    kernel = tmp_path / 'crashing.S'
    kernel.write_text(CRASHING)
    g = GrantHost(paging)
    crasher = GrantGuest(g.host, paging, g.check, kernel=str(kernel))
    from pvshadow.shadow.lifecycle import add_target
    add_target(g.host, crasher.d, g.c.d.domid)
    engine = g.host.add_dma_engine(crasher.d)
    _, bfn = crasher.lookup_foreign(g.c.d.domid, g.pfn)
    g.c.grant(8, crasher.d.domid, g.c.mfn(g.pfn - 1))
    assert crasher.map_grant(g.c.d.domid, 8, xen.GNTMAP_host_map | xen.GNTMAP_device_map).status == 0
    held = g.host.frames.count[g.mfn]
    ends = {e.domid: e.exit for e in g.host.run(timeout=30)}
    assert ends[crasher.d.domid].shutdown_code == xen.SHUTDOWN_crash
    g.check()
    assert g.host.frames.count[g.mfn] == held - 1 and not crasher.d.grants.maptrack
    assert engine.start(bfn << 12, bfn << 12, 16) == dma.FAULTED


def _domctl_target(guest, cmd, domain, target):
    import struct
    guest.poke(guest.buf + 0x400, bytes(xen.xen_domctl(
        cmd=cmd, interface_version=xen.XEN_DOMCTL_INTERFACE_VERSION, domain=domain)) +
        struct.pack('<H', target) + bytes(126))
    return guest.call(xen.HYPERVISOR_domctl, guest.buf + 0x400)


def test_the_control_domain_manages_target_sets_with_domctls(paging):
    from tests.grants import GrantGuest
    g = GrantHost(paging)
    control = GrantGuest(g.host, paging, g.check, memory_mb=4, privileged=True)
    third = g.new_domain()
    b, c = g.b.d.domid, g.c.d.domid
    assert _domctl_target(g.b, xen.XEN_DOMCTL_pvshadow_add_target, b, third.d.domid) == -EPERM
    assert _domctl_target(control, xen.XEN_DOMCTL_pvshadow_add_target, b, third.d.domid) == 0
    assert g.b.lookup_foreign(third.d.domid, third.unmapped_pfn(3))[0] == 0
    assert _domctl_target(control, xen.XEN_DOMCTL_pvshadow_add_target, b, b) == -xen.EINVAL
    assert _domctl_target(control, xen.XEN_DOMCTL_pvshadow_add_target, b, 0x7777) == -xen.ESRCH
    assert _domctl_target(control, xen.XEN_DOMCTL_pvshadow_remove_target, b, c) == 0
    assert g.b.lookup_foreign(c, g.pfn)[0] == -EPERM
    assert _domctl_target(control, xen.XEN_DOMCTL_pvshadow_remove_target, b, c) == -ENOENT


def test_making_a_device_mapping_executable_in_place_is_an_ordinary_update(g):
    """Flipping NX on a mapping of the device's registers takes mod_l1_entry's fast path
    (same frame, same rights): the frame is past RAM, which no per-frame record covers."""
    from pvshadow.shadow.paging.x86 import _PAGE_NX, _PAGE_PRESENT, _PAGE_RW, make_pte
    engine = g.host.add_dma_engine(g.b.d)
    flags = _PAGE_PRESENT | _PAGE_RW
    assert g.b.map(g.b.scratch, make_pte(engine.mfn, flags | _PAGE_NX)) == 0
    assert g.b.map(g.b.scratch, make_pte(engine.mfn, flags)) == 0
    assert g.b.map(g.b.scratch, make_pte(engine.mfn, flags | _PAGE_NX)) == 0
