"""Acting on another domain (issue 12): the control domain, a domain's target, and Xen's
default XSM policy asked in one place (shadow.xsm). An unprivileged domain's foreign
mmu_update, update_va_mapping_otherdomain, mmuext_op, memory and event-channel ops and
domctls get Xen's errno and change nothing; a privileged domain's foreign mapping holds a
reference on the frame until it is unmapped, so its owner's destruction leaves a zombie.
The frame ledger is audited after every hypercall (tests/hostile.py)."""
import struct

import pytest

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EACCES, EINVAL, EPERM, ESRCH
from pvshadow.shadow.host import Host
from pvshadow.shadow.paging.x86 import pte_mfn
from pvshadow.shadow.toolstack import xc_domain_destroy, xc_domain_set_target
from tests.hostile import RW, Guest

pytestmark = pytest.mark.parametrize('paging', ['direct', 'shadow'])
SECRET = b'the client frame'


class World:
    """A backend, a client and a third domain on one host; the backend is the control
    domain when privileged."""

    def __init__(self, paging, privileged=True):
        self.host = Host(64)
        self.backend = Guest(self.host, paging, privileged=privileged)
        self.client = Guest(self.host, paging)
        self.other = Guest(self.host, paging, memory_mb=4)
        self.client_mfn = self.client.mfn(self.client.unmapped_pfn(1))
        self.client.d.mem.write(self.client_mfn << 12, SECRET)
        self.backend.after_call = self.check

    def check(self):
        problems = self.host.audit_frames()
        assert not problems, '\n'.join(problems[:20])

    def l1e_maddr(self, va):
        b = self.backend
        return b.d.paging.find_l1_entry(b.v.guest_table, va)

    def foreign_update(self, mfn, domid, flags=RW):
        b = self.backend
        b.put(b.buf, xen.mmu_update(ptr=self.l1e_maddr(b.scratch), val=(mfn << 12) | flags))
        return b.call(xen.HYPERVISOR_mmu_update, b.buf, 1, 0, domid)

    def mapped_mfn(self):
        return pte_mfn(self.backend.d.mem.read_u64(self.l1e_maddr(self.backend.scratch)))


@pytest.fixture
def world(paging):
    return World(paging)


@pytest.fixture
def unprivileged(paging):
    return World(paging, privileged=False)


# --- mmu_update with a foreign page owner ---------------------------------------------------------
def test_an_unprivileged_foreign_mmu_update_is_refused_eperm_and_maps_nothing(unprivileged):
    w = unprivileged
    before = w.mapped_mfn(), w.host.frames.count[w.client_mfn]
    assert w.foreign_update(w.client_mfn, w.client.d.domid) == -EPERM
    assert (w.mapped_mfn(), w.host.frames.count[w.client_mfn]) == before


def test_mmu_update_naming_no_domain_or_itself_by_number_is_esrch(world):
    assert world.foreign_update(world.client_mfn, 77) == -ESRCH
    assert world.foreign_update(world.client_mfn, world.backend.d.domid) == -ESRCH


def test_a_control_domain_maps_a_client_frame_and_reads_it(world):
    w = world
    refs = w.host.frames.count[w.client_mfn]
    assert w.foreign_update(w.client_mfn, w.client.d.domid) == 0
    assert w.mapped_mfn() == w.client_mfn
    assert w.host.frames.count[w.client_mfn] == refs + 1
    assert w.backend.v.copy_from_guest(w.backend.scratch, len(SECRET)) == SECRET
    if w.backend.d.paging.name == 'shadow':
        gl1e = w.backend.d.mem.read_u64(w.l1e_maddr(w.backend.scratch))
        assert pte_mfn(w.backend.d.paging._sh_propagate(gl1e)) == w.client_mfn


def test_a_foreign_mapping_still_names_the_frame_owner_it_was_given(world):
    # the frame must belong to the domain named, whatever the caller's rights
    w = world
    assert w.foreign_update(w.client_mfn, w.other.d.domid) == xen.EBUSY * -1
    assert w.mapped_mfn() != w.client_mfn


def test_unmapping_a_foreign_frame_drops_its_reference(world):
    w = world
    refs = w.host.frames.count[w.client_mfn]
    assert w.foreign_update(w.client_mfn, w.client.d.domid) == 0
    b = w.backend
    assert b.mmu_update(w.l1e_maddr(b.scratch), 0) == 0
    assert w.host.frames.count[w.client_mfn] == refs


def test_destroying_the_client_leaves_a_mapped_frame_a_zombie_until_unmapped(world):
    w = world
    b, client = w.backend, w.client.d
    assert w.foreign_update(w.client_mfn, client.domid) == 0
    assert xc_domain_destroy(w.host, client) == 0
    w.check()
    frames = w.host.frames
    assert frames.owner[w.client_mfn] == client.domid and frames.count[w.client_mfn] == 1
    assert client.domid in w.host.zombies
    assert b.v.copy_from_guest(b.scratch, len(SECRET)) == SECRET
    assert b.mmu_update(w.l1e_maddr(b.scratch), 0) == 0
    assert frames.owner[w.client_mfn] == xen.DOMID_INVALID
    assert client.domid not in w.host.domains and client.domid not in w.host.zombies


def test_destroying_the_mapping_domain_drops_its_foreign_references(world):
    w = world
    refs = w.host.frames.count[w.client_mfn]
    assert w.foreign_update(w.client_mfn, w.client.d.domid) == 0
    assert xc_domain_destroy(w.host, w.backend.d) == 0
    assert w.host.frames.count[w.client_mfn] == refs
    w.check()


# --- update_va_mapping_otherdomain ------------------------------------------------------------------
def _otherdomain(w, mfn, domid):
    b = w.backend
    return b.call(xen.HYPERVISOR_update_va_mapping_otherdomain, b.scratch, (mfn << 12) | RW,
                  xen.UVMF_INVLPG, domid)


def test_update_va_mapping_otherdomain_needs_the_right(unprivileged):
    w = unprivileged
    assert _otherdomain(w, w.client_mfn, w.client.d.domid) == -EPERM
    assert _otherdomain(w, w.client_mfn, 99) == -ESRCH
    assert w.mapped_mfn() != w.client_mfn


def test_update_va_mapping_otherdomain_maps_for_the_control_domain(world):
    w = world
    assert _otherdomain(w, w.client_mfn, w.client.d.domid) == 0
    assert w.backend.v.copy_from_guest(w.backend.scratch, len(SECRET)) == SECRET


# --- set_target: rights over one domain ----------------------------------------------------------------
def test_set_target_refuses_no_such_domain_itself_and_a_second_target(unprivileged):
    w = unprivileged
    b = w.backend.d
    assert xc_domain_set_target(w.host, b, 99) == -ESRCH
    assert xc_domain_set_target(w.host, b, b.domid) == -EINVAL
    assert xc_domain_set_target(w.host, b, w.client.d.domid) == 0
    assert xc_domain_set_target(w.host, b, w.other.d.domid) == -EINVAL


def test_a_domain_maps_its_targets_frames_and_no_one_elses(unprivileged):
    w = unprivileged
    assert xc_domain_set_target(w.host, w.backend.d, w.client.d.domid) == 0
    other_mfn = w.other.mfn(w.other.unmapped_pfn(1))
    assert w.foreign_update(other_mfn, w.other.d.domid) == -EPERM
    assert w.foreign_update(w.client_mfn, w.client.d.domid) == 0
    assert w.backend.v.copy_from_guest(w.backend.scratch, len(SECRET)) == SECRET


# --- mmuext_op with a foreign owner ------------------------------------------------------------------
def _mmuext(w, cmd, arg1, domid):
    b = w.backend
    b.put(b.buf, xen.mmuext_op(cmd=cmd, arg1=arg1))
    return b.call(xen.HYPERVISOR_mmuext_op, b.buf, 1, 0, domid)


def test_a_foreign_mmuext_op_needs_the_right_and_never_moves_the_callers_base(unprivileged):
    w = unprivileged
    assert _mmuext(w, xen.MMUEXT_PIN_L1_TABLE, w.client_mfn, w.client.d.domid) == -EPERM
    assert not w.host.frames.pinned[w.client_mfn]
    assert xc_domain_set_target(w.host, w.backend.d, w.client.d.domid) == 0
    assert _mmuext(w, xen.MMUEXT_NEW_BASEPTR, w.client_mfn, w.client.d.domid) == -EPERM


def test_a_privileged_domain_pins_a_table_of_its_target(world):
    w = world
    frames = w.host.frames
    free = next(m for m in (w.client.mfn(w.client.unmapped_pfn(n)) for n in range(2, 64))
                if not frames.type_count[m])
    assert _mmuext(w, xen.MMUEXT_PIN_L1_TABLE, free, w.client.d.domid) == 0
    assert w.host.frames.pinned[free]
    assert _mmuext(w, xen.MMUEXT_UNPIN_TABLE, free, w.client.d.domid) == 0


# --- memory_op, event channels and domctl on another domain --------------------------------------------
def _reservation(w, cmd, domid, nr=1):
    b = w.backend
    extents = b.buf + 0x200
    b.put(b.buf, xen.xen_memory_reservation(extent_start=extents, nr_extents=nr, domid=domid))
    return b.call(xen.HYPERVISOR_memory_op, cmd, b.buf)


def _current_reservation(w, domid):
    b = w.backend
    b.poke(b.buf, struct.pack('<H', domid))
    return b.call(xen.HYPERVISOR_memory_op, xen.XENMEM_current_reservation, b.buf)


def test_an_unprivileged_domain_cannot_grow_or_read_another_reservation(unprivileged):
    w = unprivileged
    client = w.client.d
    pages, free = client.tot_pages, w.host.frames.free_frames()
    assert _reservation(w, xen.XENMEM_increase_reservation, client.domid) == -EPERM
    assert (client.tot_pages, w.host.frames.free_frames()) == (pages, free)
    assert _current_reservation(w, client.domid) == -EPERM
    assert _current_reservation(w, 99) == -ESRCH
    assert _reservation(w, xen.XENMEM_increase_reservation, 99) == 0


def test_a_privileged_domain_grows_its_targets_reservation(world):
    w = world
    client = w.client.d
    client.max_pages += 1
    pages = client.tot_pages
    assert _reservation(w, xen.XENMEM_increase_reservation, client.domid) == 1
    assert client.tot_pages == pages + 1
    mfn = struct.unpack('<Q', w.backend.peek(w.backend.buf + 0x200, 8))[0]
    assert w.host.frames.owner[mfn] == client.domid
    assert _current_reservation(w, client.domid) == pages + 1


def test_an_event_channel_in_another_domain_needs_the_right(unprivileged):
    w = unprivileged
    b = w.backend
    b.put(b.buf, xen.evtchn_alloc_unbound(dom=w.client.d.domid, remote_dom=b.d.domid))
    assert b.call(xen.HYPERVISOR_event_channel_op, xen.EVTCHNOP_alloc_unbound, b.buf) == -EPERM
    assert xc_domain_set_target(w.host, b.d, w.client.d.domid) == 0
    assert b.call(xen.HYPERVISOR_event_channel_op, xen.EVTCHNOP_alloc_unbound, b.buf) == 0
    port = xen.evtchn_alloc_unbound.from_buffer_copy(b.peek(b.buf, 8)).port
    far = w.client.d.evtchn.ports[port]
    assert (far.state, far.remote_dom) == (xen.EVTCHNSTAT_unbound, b.d.domid)


def _domctl(w, cmd, domid, payload=b'', version=xen.XEN_DOMCTL_INTERFACE_VERSION):
    b = w.backend
    b.poke(b.buf, bytes(xen.xen_domctl(cmd=cmd, interface_version=version, domain=domid)) +
           payload.ljust(128, b'\0'))
    return b.call(xen.HYPERVISOR_domctl, b.buf)


def test_domctl_checks_the_version_then_the_domain_then_privilege(unprivileged):
    w = unprivileged
    client = w.client.d
    assert _domctl(w, xen.XEN_DOMCTL_pausedomain, client.domid, version=0x10) == -EACCES
    assert _domctl(w, xen.XEN_DOMCTL_pausedomain, 99) == -ESRCH
    assert _domctl(w, xen.XEN_DOMCTL_pausedomain, client.domid) == -EPERM
    assert _domctl(w, xen.XEN_DOMCTL_set_target, w.backend.d.domid,
                   struct.pack('<H', client.domid)) == -EPERM
    assert client.pause_count == 0 and w.backend.d.target is None


def test_the_control_domain_pauses_and_targets_through_domctl(world):
    w = world
    client, other = w.client.d, w.other.d
    assert _domctl(w, xen.XEN_DOMCTL_pausedomain, client.domid) == 0
    assert client.pause_count == 1
    assert _domctl(w, xen.XEN_DOMCTL_unpausedomain, client.domid) == 0
    assert _domctl(w, xen.XEN_DOMCTL_pausedomain, w.backend.d.domid) == -EINVAL
    assert _domctl(w, xen.XEN_DOMCTL_set_target, other.domid,
                   struct.pack('<H', client.domid)) == 0
    assert other.target is client
    assert _domctl(w, xen.XEN_DOMCTL_set_target, other.domid,
                   struct.pack('<H', client.domid)) == -EINVAL
    assert _domctl(w, xen.XEN_DOMCTL_destroydomain, other.domid) == 0 and other.dying


def test_sysctl_checks_the_version_then_privilege(world, unprivileged):
    for w, expect in ((unprivileged, -EPERM), (world, -xen.ENOSYS)):
        b = w.backend
        b.poke(b.buf, struct.pack('<II', 1, 0x10) + bytes(128))
        assert b.call(xen.HYPERVISOR_sysctl, b.buf) == -EACCES
        b.poke(b.buf, struct.pack('<II', 1, xen.XEN_SYSCTL_INTERFACE_VERSION) + bytes(128))
        assert b.call(xen.HYPERVISOR_sysctl, b.buf) == expect


def test_mark_super_is_eopnotsupp_as_on_xen_4_19(world):
    for cmd in (xen.MMUEXT_MARK_SUPER, xen.MMUEXT_UNMARK_SUPER):
        assert _mmuext(world, cmd, world.client_mfn, xen.DOMID_SELF) == -xen.EOPNOTSUPP
