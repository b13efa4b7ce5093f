"""Grant tables as Xen has them (issue 17), in both paging modes: each hypercall is
followed by the frame ledger's audit and the mapping checks (tests/grants.py)."""
import struct

import pytest

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EBUSY, EINVAL
from pvshadow.shadow.lifecycle import destroy
from pvshadow.shadow.machine import PageType
from pvshadow.shadow.paging.types import _PAGE_GNTTAB
from pvshadow.shadow.paging.x86 import _PAGE_RW
from tests.grants import GrantHost

pytestmark = pytest.mark.parametrize('paging', ['direct', 'shadow'])
HOST, DEV, RO = xen.GNTMAP_host_map, xen.GNTMAP_device_map, xen.GNTMAP_readonly


@pytest.fixture
def g(paging):
    return GrantHost(paging)


def _granted(g, ref=8, flags=xen.GTF_permit_access, mfn=None):
    g.c.grant(ref, g.b.d.domid, g.mfn if mfn is None else mfn, flags)
    return ref


def _pte(guest, va=None):
    return guest.d.mem.read_u64(guest.d.paging.find_l1_entry(guest.v.current_table(),
                                                             guest.scratch if va is None else va))


def test_a_writable_host_mapping_maps_the_frame_and_holds_a_writable_reference(g):
    ref = _granted(g)
    count = g.host.frames.count[g.mfn]
    op = g.b.map_grant(g.c.d.domid, ref)
    assert op.status == xen.GNTST_okay and op.dev_bus_addr == g.mfn << 12
    assert g.b.mapped_mfn() == g.mfn
    assert _pte(g.b) & _PAGE_GNTTAB and _pte(g.b) & _PAGE_RW
    assert g.host.frames.count[g.mfn] == count + 1
    assert g.host.frames.type[g.mfn] == PageType.WRITABLE
    assert g.c.entry_flags(ref) & (xen.GTF_reading | xen.GTF_writing) == \
        xen.GTF_reading | xen.GTF_writing


def test_unmap_clears_the_entry_the_flags_and_the_reference(g):
    ref = _granted(g)
    count = g.host.frames.count[g.mfn]
    op = g.b.map_grant(g.c.d.domid, ref)
    assert g.b.unmap_grant(op.handle) == xen.GNTST_okay
    assert g.b.mapped_mfn() is None
    assert g.host.frames.count[g.mfn] == count
    assert g.c.entry_flags(ref) & (xen.GTF_reading | xen.GTF_writing) == 0


def test_a_read_only_mapping_is_read_only_and_sets_only_gtf_reading(g):
    ref = _granted(g)
    op = g.b.map_grant(g.c.d.domid, ref, HOST | RO)
    assert op.status == xen.GNTST_okay
    assert not _pte(g.b) & _PAGE_RW
    assert g.c.entry_flags(ref) & (xen.GTF_reading | xen.GTF_writing) == xen.GTF_reading


def test_a_device_mapping_enters_the_mappers_iommu_table_until_unmapped(g):
    ref = _granted(g)
    op = g.b.map_grant(g.c.d.domid, ref, DEV)
    assert op.status == xen.GNTST_okay and op.dev_bus_addr == g.mfn << 12
    assert g.b.d.iommu.lookup(g.mfn) == (g.mfn, True)
    assert g.b.unmap_grant(op.handle, host_addr=0, dev_bus_addr=op.dev_bus_addr) == 0
    assert g.b.d.iommu.lookup(g.mfn) is None


def test_the_iommu_entry_turns_read_only_when_the_last_writable_mapping_goes(g):
    ref, ref2 = _granted(g), _granted(g, 9)
    rw = g.b.map_grant(g.c.d.domid, ref, DEV)
    ro = g.b.map_grant(g.c.d.domid, ref2, DEV | RO)
    assert g.b.d.iommu.lookup(g.mfn) == (g.mfn, True)
    assert g.b.unmap_grant(rw.handle, 0, rw.dev_bus_addr) == 0
    assert g.b.d.iommu.lookup(g.mfn) == (g.mfn, False)
    assert g.b.unmap_grant(ro.handle, 0, ro.dev_bus_addr) == 0


@pytest.mark.parametrize('case, status', [
    ('no flags', xen.GNTST_bad_gntref), ('no such domain', xen.GNTST_bad_domain),
    ('ref out of range', xen.GNTST_bad_gntref), ('granted to another', xen.GNTST_general_error),
    ('writable of a read-only grant', xen.GNTST_general_error),
    ('not the granters frame', xen.GNTST_bad_page), ('no L1 at host_addr', xen.GNTST_general_error),
])
def test_a_refused_map_says_why_and_holds_nothing(g, case, status):
    ref = _granted(g, flags=xen.GTF_permit_access | (xen.GTF_readonly if 'read-only' in case else 0),
                   mfn=g.b.mfn(g.b.unmapped_pfn(2)) if 'frame' in case else None)
    if case == 'granted to another':
        g.c.grant(ref, g.b.d.domid + 7, g.mfn)
    before = bytes(g.host.frames.count)
    op = g.b.map_grant(0x7777 if case == 'no such domain' else g.c.d.domid,
                       5000 if 'range' in case else ref, 0 if case == 'no flags' else HOST,
                       host_addr=g.b.unmapped if 'L1' in case else None)
    assert op.status == status
    assert bytes(g.host.frames.count) == before
    assert g.b.d.grants is None or not g.b.d.grants.maptrack
    assert g.c.entry_flags(ref) & (xen.GTF_reading | xen.GTF_writing) == 0


def test_a_page_table_cannot_be_mapped_writable_through_a_grant(g):
    l1 = g.c.d.paging.find_l1_entry(g.c.v.guest_table, g.c.scratch) >> 12
    ref = _granted(g, mfn=l1)
    assert g.b.map_grant(g.c.d.domid, ref).status == xen.GNTST_general_error
    assert g.b.map_grant(g.c.d.domid, ref, HOST | RO).status == xen.GNTST_okay


def test_a_frame_mapped_writable_through_a_grant_cannot_become_a_page_table(g):
    ref = _granted(g)
    g.b.map_grant(g.c.d.domid, ref)
    assert g.c.pin_l1(g.mfn) == -EINVAL


def test_a_second_unmap_and_a_stale_handle_are_bad_handles(g):
    op = g.b.map_grant(g.c.d.domid, _granted(g))
    assert g.b.unmap_grant(op.handle) == xen.GNTST_okay
    assert g.b.unmap_grant(op.handle) == xen.GNTST_bad_handle
    assert g.b.unmap_grant(77) == xen.GNTST_bad_handle


def test_unmap_at_the_wrong_address_or_bus_address_is_refused_and_keeps_the_mapping(g):
    op = g.b.map_grant(g.c.d.domid, _granted(g), HOST | DEV)
    assert g.b.unmap_grant(op.handle, host_addr=g.b.buf) == xen.GNTST_general_error
    assert g.b.unmap_grant(op.handle, 0, dev_bus_addr=op.dev_bus_addr + 4096) == \
        xen.GNTST_bad_dev_addr
    assert g.b.mapped_mfn() == g.mfn
    assert g.b.unmap_grant(op.handle, dev_bus_addr=op.dev_bus_addr) == xen.GNTST_okay


def test_unmap_and_replace_moves_another_mapping_into_the_grants_entry(g):
    op = g.b.map_grant(g.c.d.domid, _granted(g))
    other = g.b.layout.stack
    frame = g.b.mapped_mfn(other)
    assert frame is not None
    rc, res = g.b.gnttab(xen.GNTTABOP_unmap_and_replace, xen.gnttab_unmap_and_replace(
        host_addr=g.b.scratch, new_addr=other, handle=op.handle))
    assert (rc, res.status) == (0, xen.GNTST_okay)
    assert g.b.mapped_mfn() == frame and g.b.mapped_mfn(other) is None


def test_copy_between_a_grant_and_the_callers_own_frame(g):
    ref = _granted(g)
    g.c.d.mem.write(g.mfn << 12, b'from the client')
    mine = g.b.mfn(g.b.unmapped_pfn(2))
    assert g.b.copy(source=xen.gnttab_copy_ptr(u=ref, domid=g.c.d.domid, offset=0),
                    dest=xen.gnttab_copy_ptr(u=mine, domid=xen.DOMID_SELF, offset=100),
                    len=15, flags=xen.GNTCOPY_source_gref) == xen.GNTST_okay
    assert g.b.d.mem.read((mine << 12) + 100, 15) == b'from the client'
    assert g.c.entry_flags(ref) & (xen.GTF_reading | xen.GTF_writing) == 0


@pytest.mark.parametrize('case, status', [
    ('read-only grant as destination', xen.GNTST_general_error),
    ('past the page', xen.GNTST_bad_copy_arg),
    ('a frame of another domain by number', xen.GNTST_permission_denied),
    ('a bad reference', xen.GNTST_bad_gntref),
])
def test_a_refused_copy_says_why_and_writes_nothing(g, case, status):
    ref = _granted(g, flags=xen.GTF_permit_access | (xen.GTF_readonly if 'read-only' in case else 0))
    mine = g.b.mfn(g.b.unmapped_pfn(2))
    g.b.d.mem.write(mine << 12, b'mine')
    before = g.c.d.mem.read(g.mfn << 12, 4096)
    src = xen.gnttab_copy_ptr(u=mine, domid=g.c.d.domid if 'number' in case else xen.DOMID_SELF)
    dst = xen.gnttab_copy_ptr(u=999 if 'reference' in case else ref, domid=g.c.d.domid,
                              offset=4000 if 'past' in case else 0)
    assert g.b.copy(source=src, dest=dst, len=200, flags=xen.GNTCOPY_dest_gref) == status
    assert g.c.d.mem.read(g.mfn << 12, 4096) == before


def test_version_2_has_status_frames_and_keeps_the_flags_there(g):
    rc, op = g.c.gnttab(xen.GNTTABOP_set_version, xen.gnttab_set_version(version=2))
    assert (rc, op.version) == (0, 2)
    rc, op = g.c.gnttab(xen.GNTTABOP_get_version, xen.gnttab_get_version(dom=xen.DOMID_SELF))
    assert (rc, op.version) == (0, 2)
    rc, op = g.c.gnttab(xen.GNTTABOP_get_status_frames, xen.gnttab_get_status_frames(
        nr_frames=1, dom=xen.DOMID_SELF, frame_list=g.c.buf + 0x400))
    assert (rc, op.status) == (0, xen.GNTST_okay)
    status_mfn = struct.unpack('<Q', g.c.peek(g.c.buf + 0x400, 8))[0]
    assert status_mfn == g.c.d.grants.status_frames[0]
    ref = _granted(g)
    m = g.b.map_grant(g.c.d.domid, ref)
    assert m.status == xen.GNTST_okay and g.b.mapped_mfn() == g.mfn
    assert struct.unpack('<H', g.c.d.mem.read((status_mfn << 12) + ref * 2, 2))[0] == \
        xen.GTF_reading | xen.GTF_writing
    rc, op = g.c.gnttab(xen.GNTTABOP_set_version, xen.gnttab_set_version(version=1))
    assert rc == -EBUSY
    assert g.b.unmap_grant(m.handle) == xen.GNTST_okay
    rc, op = g.c.gnttab(xen.GNTTABOP_set_version, xen.gnttab_set_version(version=1))
    assert (rc, g.c.d.grants.status_frames) == (0, [])
    rc, op = g.c.gnttab(xen.GNTTABOP_get_status_frames, xen.gnttab_get_status_frames(
        nr_frames=1, dom=xen.DOMID_SELF, frame_list=g.c.buf + 0x400))
    assert op.status == xen.GNTST_general_error


def test_a_guest_that_overwrites_a_grant_entry_itself_is_crashed_and_the_reference_goes(g):
    op = g.b.map_grant(g.c.d.domid, _granted(g))
    count = g.host.frames.count[g.mfn]
    assert g.b.map(g.b.scratch, 0) == 0
    assert g.b.v.exit is not None and g.b.v.exit.reason.value == 'crash'
    assert g.host.frames.count[g.mfn] == count - 1
    assert g.b.unmap_grant(op.handle) == xen.GNTST_general_error


def test_a_dying_mapper_loses_every_mapping(g):
    ref = _granted(g)
    count = g.host.frames.count[g.mfn]
    g.b.map_grant(g.c.d.domid, ref, HOST | DEV)
    destroy(g.host, g.b.d)
    g.check()
    assert g.host.frames.count[g.mfn] == count
    assert g.c.entry_flags(ref) & (xen.GTF_reading | xen.GTF_writing) == 0


def test_a_dead_clients_mapped_frame_is_a_zombie_until_the_backend_unmaps(g):
    op = g.b.map_grant(g.c.d.domid, _granted(g))
    destroy(g.host, g.c.d)
    g.check()
    assert g.host.frames.owner[g.mfn] == g.c.d.domid and g.c.d.domid in g.host.zombies
    assert g.b.unmap_grant(op.handle) == xen.GNTST_okay
    assert g.c.d.domid not in g.host.domains and g.host.frames.count[g.mfn] == 0


def test_a_ballooned_out_mapped_frame_stays_charged_and_is_not_handed_out(g):
    op = g.b.map_grant(g.c.d.domid, _granted(g))
    pages = g.c.d.tot_pages
    assert g.c.balloon_out(g.mfn) == 1
    assert g.c.d.tot_pages == pages and not g.c.d.pfn_valid(g.pfn)
    d = g.new_domain()
    assert g.mfn not in d.d.p2m
    assert g.b.unmap_grant(op.handle) == xen.GNTST_okay
    assert g.c.d.tot_pages == pages - 1 and g.host.frames.count[g.mfn] == 0


def test_unmap_and_replace_that_steals_a_grant_entry_keeps_its_type_reference(g):
    """XSA-234: the stolen grant entry moves, its mapping's writable reference stays, and
    an unmap at the old address finds no grant entry there."""
    first = g.b.map_grant(g.c.d.domid, _granted(g))
    second_frame = g.c.mfn(g.pfn - 1)
    g.c.grant(9, g.b.d.domid, second_frame)
    other = g.b.layout.stack
    second = g.b.map_grant(g.c.d.domid, 9, HOST | RO, host_addr=other)
    rc, res = g.b.gnttab(xen.GNTTABOP_unmap_and_replace, xen.gnttab_unmap_and_replace(
        host_addr=other, new_addr=g.b.scratch, handle=second.handle))
    assert (rc, res.status) == (0, xen.GNTST_okay)
    assert g.b.mapped_mfn(other) == g.mfn and g.b.mapped_mfn() is None
    assert g.b.unmap_grant(first.handle) == xen.GNTST_general_error
    assert g.c.pin_l1(g.mfn) == -EINVAL
    assert g.b.unmap_grant(first.handle, host_addr=other) == xen.GNTST_okay


def test_version_1_is_refused_while_the_guest_maps_a_status_frame(g):
    """XSA-255: the status frames cannot be freed under the guest's mapping."""
    g.c.gnttab(xen.GNTTABOP_set_version, xen.gnttab_set_version(version=2))
    status_mfn = g.c.d.grants.status_frames[0]
    assert g.c.map(g.c.scratch, status_mfn << 12 | 0x61) == 0
    rc, _ = g.c.gnttab(xen.GNTTABOP_set_version, xen.gnttab_set_version(version=1))
    assert rc == -EBUSY and g.c.d.grants.status_frames == [status_mfn]
    assert g.c.map(g.c.scratch, 0) == 0
    rc, _ = g.c.gnttab(xen.GNTTABOP_set_version, xen.gnttab_set_version(version=1))
    assert rc == 0 and g.c.d.grants.status_frames == []
