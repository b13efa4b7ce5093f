"""Issue 11's findings, one test each, in both paging modes: a guest cannot make a frame
the hypervisor writes into a page table, cannot name memory past what the ABI bounds,
cannot hang or crash the hypervisor, and a refused call leaves nothing half done. The
attacker's every hypercall is followed by the frame-ledger audit and a checksum of the
victim domain's memory (tests/hostile.py). The findings that need the real CPU are in
asm/isolation.S."""
import struct

import pytest

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EINVAL
from pvshadow.shadow.evtchn import NR_PORTS
from pvshadow.shadow.hypercall.sched import HUGE_TIMEOUT_NS
from pvshadow.shadow.machine import PageType
from tests.hostile import RW, Pair

pytestmark = pytest.mark.parametrize('paging', ['direct', 'shadow'])


@pytest.fixture
def pair(paging):
    return Pair(paging)


def _phys_area(pair, pfn):
    return pair.attacker.vcpu_op(xen.VCPUOP_register_runstate_phys_area, 0,
                                 struct.pack('<Q', pfn << 12))


# --- 1. the runstate area ---------------------------------------------------------------------
def test_a_runstate_phys_area_cannot_be_registered_in_a_pinned_l1(pair):
    a = pair.attacker
    pfn = a.unmapped_pfn()
    assert a.pin_l1(a.mfn(pfn)) == 0
    assert _phys_area(pair, pfn) == -EINVAL
    assert a.d.mem.frame_u64s(a.mfn(pfn)) == (0,) * 512


def test_a_registered_runstate_phys_area_cannot_become_a_page_table(pair):
    a = pair.attacker
    pfn = a.unmapped_pfn()
    assert _phys_area(pair, pfn) == 0
    assert a.pin_l1(a.mfn(pfn)) == -EINVAL
    assert a.d.frames.type[a.mfn(pfn)] == PageType.WRITABLE


def test_a_runstate_area_held_at_registration_cannot_become_a_page_table(pair):
    a = pair.attacker
    a.d.runstate_policy = 'registration'
    assert a.map(a.scratch, a.mfn(a.unmapped_pfn()) << 12 | RW) == 0
    assert a.vcpu_op(xen.VCPUOP_register_runstate_memory_area, 0,
                     struct.pack('<Q', a.scratch)) == 0
    assert a.map(a.scratch, 0) == 0                   # the guest's own mapping goes
    assert a.pin_l1(a.mfn(a.unmapped_pfn())) == -EINVAL


def test_moving_the_runstate_area_releases_the_old_frame(pair):
    a = pair.attacker
    assert _phys_area(pair, a.unmapped_pfn(1)) == 0
    assert _phys_area(pair, a.unmapped_pfn(2)) == 0
    old = a.mfn(a.unmapped_pfn(1))
    assert (a.d.frames.type_count[old], a.d.frames.count[old]) == (0, 1)


# --- 2. shared_info ---------------------------------------------------------------------------
def test_shared_info_can_never_be_pinned_as_a_page_table(pair):
    a = pair.attacker
    for level in range(4):
        assert a.mmuext(xen.MMUEXT_PIN_L1_TABLE + level, a.d.shared_info_mfn) == -EINVAL


def test_shared_info_may_still_be_mapped_writable(pair):
    a = pair.attacker
    assert a.map(a.scratch, a.d.shared_info_mfn << 12 | RW) == 0


# --- 3. the console and xenstore rings ----------------------------------------------------------
@pytest.mark.parametrize('ring', ['store_ring_mfn', 'console_ring_mfn'])
def test_an_unmapped_ring_cannot_become_a_page_table(pair, ring):
    a = pair.attacker
    mfn = getattr(a.d, ring)
    va = a.va_of_pfn(a.d.pfn_of[mfn])
    assert a.map(va, 0) == 0
    assert a.pin_l1(mfn) == -EINVAL


# --- 4. the cross-domain poll oracle --------------------------------------------------------------
def test_poll_refuses_a_port_that_would_reach_another_domains_memory(pair):
    # the domain built second polls: the first one's frames lie above its shared_info
    spy, other = pair.victim, pair.attacker
    spy.after_call = lambda: pair.host.audit_frames() == [] or pytest.fail('ledger')
    secret = other.mfn(other.unmapped_pfn()) << 12
    port = (secret - (spy.d.shared_info_mfn << 12) - 2048) * 8
    assert NR_PORTS <= port < 1 << 32
    assert spy.poll([port]) == -EINVAL
    assert not spy.v.blocked


def test_poll_refuses_more_than_128_ports(pair):
    assert pair.attacker.poll([1] * 129) == -EINVAL


# --- 5. the xenstore ring cannot hang the hypervisor ------------------------------------------------
def test_a_consumer_ahead_of_its_producer_is_a_corrupt_ring_and_is_ignored(pair):
    a = pair.attacker
    base = a.d.store_ring_mfn << 12
    mem = a.d.mem
    struct.pack_into('<I', mem.view, base + xen.XENSTORE_REQ_CONS, 0x10000)
    assert a.send(a.d.store_evtchn) == 0
    assert struct.unpack_from('<I', mem.view, base + xen.XENSTORE_RSP_PROD)[0] == 0
    assert any('xenstore ring corrupted' in line for line in a.d.xen_log)


def test_a_request_too_long_for_the_ring_is_not_waited_for(pair):
    a = pair.attacker
    base = a.d.store_ring_mfn << 12
    mem = a.d.mem
    mem.write(base + xen.XENSTORE_REQ, struct.pack('<4I', xen.XS_READ, 1, 0, 5000))
    struct.pack_into('<I', mem.view, base + xen.XENSTORE_REQ_PROD, 1024)
    assert a.send(a.d.store_evtchn) == 0
    assert struct.unpack_from('<I', mem.view, base + xen.XENSTORE_RSP_PROD)[0] == 0


def test_a_long_mmu_update_is_preempted_and_resumed(pair):
    a = pair.attacker
    mfn = a.mfn(0)
    reqs = b''.join(bytes(xen.mmu_update(ptr=mfn << 12 | xen.MMU_MACHPHYS_UPDATE, val=0))
                    for _ in range(1300))
    a.poke(a.buf + 0x1000, reqs)
    done = a.buf + 0x800
    a.poke(done, bytes(4))
    assert a.call(xen.HYPERVISOR_mmu_update, a.buf + 0x1000, 1300, done, xen.DOMID_SELF) == 0
    assert struct.unpack('<I', a.peek(done, 4))[0] == 1300
    assert a.continuations == 2


# --- 6. nothing a guest passes raises out of the hypervisor ------------------------------------------
def test_poll_on_port_0xffffffff_is_einval(pair):
    assert pair.attacker.poll([0xFFFFFFFF]) == -EINVAL


def test_a_single_shot_timer_at_the_end_of_time_is_in_the_past(pair):
    a = pair.attacker
    arg = bytes(xen.vcpu_set_singleshot_timer(timeout_abs_ns=(1 << 64) - 1))
    assert a.vcpu_op(xen.VCPUOP_set_singleshot_timer, 0, arg) == 0
    assert a.v.singleshot == 0                        # s_time_t -1: fires at once
    a.v.fire_timers(a.d.now_ns())
    assert a.v.singleshot is None


def test_a_huge_set_timer_op_fires_in_100ms(pair):
    a = pair.attacker
    assert a.call(xen.HYPERVISOR_set_timer_op, (1 << 64) - 1) == 0
    assert a.v.singleshot == a.d.now_ns() + HUGE_TIMEOUT_NS


def test_a_periodic_timer_after_a_long_idle_catches_up_in_one_step(pair):
    a = pair.attacker
    assert a.vcpu_op(xen.VCPUOP_set_periodic_timer, 0, struct.pack('<Q', 1000)) == 0
    a.v.fire_timers(1 << 62)                          # 2^52 periods: not one loop each
    assert a.v.periodic[1] > 1 << 62


# --- 7. refusals leave nothing half done, with Xen's errnos ---------------------------------------
def test_mmu_update_with_an_unmapped_pdone_applies_and_returns_0(pair):
    a = pair.attacker
    target = a.mfn(a.unmapped_pfn())
    assert a.mmu_update(target << 12 | 8, 0x1234, pdone=a.unmapped) == 0
    assert a.d.mem.read_u64((target << 12) + 8) == 0x1234


def test_increase_reservation_into_a_read_only_array_allocates_nothing(pair):
    a = pair.attacker
    a.d.max_pages += 4
    tot, free = a.d.tot_pages, a.host.frames.free_frames()
    assert a.memory_op(xen.XENMEM_increase_reservation, a.readonly, 1) == 0
    assert (a.d.tot_pages, a.host.frames.free_frames()) == (tot, free)


def test_increase_reservation_into_an_unmapped_array_allocates_nothing(pair):
    a = pair.attacker
    a.d.max_pages += 4
    tot = a.d.tot_pages
    assert a.memory_op(xen.XENMEM_increase_reservation, a.unmapped, 1) == 0
    assert a.d.tot_pages == tot


def test_a_refused_vcpu_initialise_takes_no_gdt_frame(pair):
    a = pair.attacker
    gdt = a.mfn(a.unmapped_pfn())
    ctx = xen.vcpu_guest_context(ldt_ents=8193, gdt_ents=1)
    ctx.gdt_frames[0] = gdt
    ctx.ctrlreg[3] = a.v.guest_table << 12
    a.poke(a.buf + 0x1000, bytes(ctx))
    assert a.call(xen.HYPERVISOR_vcpu_op, xen.VCPUOP_initialise, 1, a.buf + 0x1000) == -EINVAL
    frames = a.d.frames
    assert (frames.type_count[gdt], frames.count[gdt]) == (0, 1)
    assert not a.d.vcpus[1].gdt_frames


def test_update_va_mapping_at_a_non_canonical_address_is_einval(pair):
    a = pair.attacker
    before = a.peek(a.scratch, 8)
    alias = a.scratch & ((1 << 48) - 1)               # bit 47 set, upper bits clear
    assert a.map(alias, a.d.shared_info_mfn << 12 | RW) == -EINVAL
    assert a.map(0xFFFF800000000000, 0) == -EINVAL    # the hypervisor's own area
    assert a.peek(a.scratch, 8) == before


def test_a_grant_frame_cannot_be_given_back_with_decrease_reservation(pair):
    a = pair.attacker
    frame_list = a.buf + 0x800
    a.put(a.buf + 0x100, xen.gnttab_setup_table(dom=xen.DOMID_SELF, nr_frames=1,
                                                frame_list=frame_list))
    assert a.call(xen.HYPERVISOR_grant_table_op, xen.GNTTABOP_setup_table, a.buf + 0x100, 1) == 0
    grant = struct.unpack('<Q', a.peek(frame_list, 8))[0]
    assert grant == a.d.grant_frames[0]
    assert a.memory_op(xen.XENMEM_decrease_reservation, frame_list, 1) == 0
    assert a.d.frames.owner[grant] == a.d.domid and a.pin_l1(grant) == -EINVAL


def test_a_grant_frame_given_back_keeps_tot_pages_and_the_grant_list_true(pair):
    a = pair.attacker
    frame_list = a.buf + 0x800
    a.put(a.buf + 0x100, xen.gnttab_setup_table(dom=xen.DOMID_SELF, nr_frames=1,
                                                frame_list=frame_list))
    assert a.call(xen.HYPERVISOR_grant_table_op, xen.GNTTABOP_setup_table, a.buf + 0x100, 1) == 0
    pages, grants = a.d.tot_pages, list(a.d.grant_frames)
    assert a.memory_op(xen.XENMEM_decrease_reservation, frame_list, 1) == 0
    assert (a.d.tot_pages, a.d.grant_frames) == (pages, grants)
    assert a.call(xen.HYPERVISOR_grant_table_op, xen.GNTTABOP_setup_table, a.buf + 0x100, 1) == 0
    assert struct.unpack('<Q', a.peek(frame_list, 8))[0] == grants[0]


def _setup_table_status(a, frame_list):
    a.put(a.buf + 0x100, xen.gnttab_setup_table(dom=xen.DOMID_SELF, nr_frames=1,
                                                frame_list=frame_list))
    rc = a.call(xen.HYPERVISOR_grant_table_op, xen.GNTTABOP_setup_table, a.buf + 0x100, 1)
    return rc, xen.gnttab_setup_table.from_buffer_copy(
        a.peek(a.buf + 0x100, xen.gnttab_setup_table.size())).status


def test_setup_table_with_an_unwritable_frame_list_answers_bad_virt_addr(pair):
    # Xen grows the table, then finds the copy-out fails: rc 0, GNTST_bad_virt_addr; the
    # frame is the domain's grant table from then on (ledger-checked after the call).
    a = pair.attacker
    assert _setup_table_status(a, a.readonly) == (0, xen.GNTST_bad_virt_addr)
    assert _setup_table_status(a, a.unmapped) == (0, xen.GNTST_bad_virt_addr)
    assert len(a.d.grant_frames) == 1
    assert _setup_table_status(a, a.buf + 0x800)[1] == xen.GNTST_okay
    assert len(a.d.grant_frames) == 1


def test_setup_table_with_a_frame_list_outside_the_guest_range_is_efault(pair):
    a = pair.attacker
    from tests.hostile import HYPERVISOR_VA
    assert _setup_table_status(a, HYPERVISOR_VA)[0] == -xen.EFAULT
    assert _setup_table_status(a, 0x0000900000000000)[0] == -xen.EFAULT
    assert a.d.grant_frames == []


def test_a_forged_m2p_entry_does_not_move_the_hypervisors_p2m(pair):
    a = pair.attacker
    victim_pfn, other_pfn = a.unmapped_pfn(1), a.unmapped_pfn(2)
    mfn, other = a.mfn(victim_pfn), a.mfn(other_pfn)
    assert a.mmu_update(mfn << 12 | xen.MMU_MACHPHYS_UPDATE, other_pfn) == 0
    a.poke(a.buf + 0x800, struct.pack('<Q', mfn))
    assert a.memory_op(xen.XENMEM_decrease_reservation, a.buf + 0x800, 1) == 1
    assert a.d.p2m[other_pfn] == other
    assert a.d.p2m[victim_pfn] == xen.INVALID_M2P_ENTRY
