"""The frame ledger sees what it promises to see: each kind of broken bookkeeping planted
in a freshly built domain comes back as a problem naming the frame."""
from collections import Counter

import pytest

from pvshadow.shadow.host import Host
from pvshadow.shadow.ledger import frame_ledger
from pvshadow.shadow.machine import PageType
from tests.hostile import RW, Guest


@pytest.fixture
def guest():
    return Guest(Host(32), 'direct')


def _problems(g):
    return g.host.audit_frames()


def test_a_freshly_built_domain_has_a_clean_ledger(guest):
    assert _problems(guest) == []


def test_a_reference_nobody_holds_is_reported(guest):
    mfn = guest.mfn(guest.unmapped_pfn())
    guest.d.frames.count[mfn] += 1
    assert any(f'mfn {mfn:#x}' in p and 'refcount 2' in p for p in _problems(guest))


@pytest.mark.parametrize('column', ['owner', 'count', 'type_count', 'allocated', 'pinned'])
def test_a_frame_never_handed_out_with_any_state_is_reported(guest, column):
    """The audit scans frame by frame only those that ever left the allocator's fresh
    range; the rest are checked whole, so a stray write there is still seen."""
    frames = guest.d.frames
    mfn = (frames._lo + frames._hi) // 2
    getattr(frames, column)[mfn] = 1
    assert 'a frame never handed out has an owner, a reference or a type' in _problems(guest)


def test_a_pte_written_behind_validation_is_reported(guest):
    l1 = guest.d.p2m[guest.layout.pfn(guest.layout.page_tables) + 3]
    guest.d.mem.write_u64((l1 << 12) + 511 * 8, 0 << 12 | RW)      # mfn 0: the hypervisor's
    problems = _problems(guest)
    assert any('mfn 0x0 ' in p and 'on behalf of d' in p for p in problems)


def test_a_writable_reference_on_a_page_table_is_reported(guest):
    l1 = guest.d.p2m[guest.layout.pfn(guest.layout.page_tables) + 3]
    guest.d.types.holds.setdefault(l1, Counter())['planted'] += 1
    guest.d.frames.count[l1] += 1
    guest.d.frames.type_count[l1] += 1
    assert any('referenced as' in p for p in _problems(guest))


def test_tot_pages_that_do_not_add_up_are_reported(guest):
    guest.d.tot_pages -= 1
    assert any('tot_pages' in p for p in _problems(guest))


def test_the_ledger_names_every_holder_of_a_frame(guest):
    d = guest.d
    holders = [r.holder for r in frame_ledger(d.frames, d.types, [d])[d.shared_info_mfn]]
    assert holders == ['allocation', 'shared_info']
    root = [r for r in frame_ledger(d.frames, d.types, [d])[d.vcpus[0].guest_table]]
    assert {r.ptype for r in root} == {None, PageType.L4}
    assert 'd1v0 guest_table' in [r.holder for r in root]


def test_a_writable_mapping_of_a_frame_not_typed_writable_is_reported(guest):
    """Even with the counts made to agree: a writable L1 entry is a WRITABLE type
    reference, which a frame of another type (here none) cannot carry."""
    mfn = guest.mfn(guest.unmapped_pfn())
    frames, mem = guest.d.frames, guest.d.mem
    l1 = guest.d.p2m[guest.layout.pfn(guest.layout.page_tables) + 3]
    was = mem.frame_u64s(l1)[511] >> 12 & 0xFFFFFFFFFF
    mem.write_u64((l1 << 12) + 511 * 8, mfn << 12 | RW)    # was mapping another frame
    for m, delta in ((was, -1), (mfn, 1)):
        frames.count[m] += delta
        frames.type_count[m] += delta
    assert any(f'mfn {mfn:#x} (owner d1, type NONE): referenced as WRITABLE' in p
               for p in _problems(guest)), _problems(guest)


def test_an_owned_frame_without_any_reference_is_reported(guest):
    mfn = guest.mfn(guest.unmapped_pfn())
    guest.d.frames.allocated[mfn] = 0
    guest.d.frames.count[mfn] = 0
    assert any(f'mfn {mfn:#x}' in p and 'free but still owned' in p for p in _problems(guest))


def test_a_hypervisor_frame_with_a_second_reference_is_reported(guest):
    frames = guest.d.frames
    mfn = guest.d.shared_info_mfn if frames.owner[guest.d.shared_info_mfn] == 0x7FF2 else \
        next(m for m in range(frames.nr_frames) if frames.owner[m] == 0x7FF2)
    frames.count[mfn] += 1
    assert any(f'mfn {mfn:#x}' in p and 'a hypervisor frame with refcount 2' in p
               for p in _problems(guest))


def test_a_frame_owned_by_a_domain_not_on_the_host_is_reported(guest):
    mfn = guest.mfn(guest.unmapped_pfn())
    guest.d.frames.owner[mfn] = 77
    assert any(f'mfn {mfn:#x}' in p and 'owned by no domain on this host' in p
               for p in _problems(guest))


def test_a_p2m_entry_the_reverse_map_disagrees_with_is_reported(guest):
    pfn = guest.unmapped_pfn()
    guest.d.frames.pfn[guest.mfn(pfn)] = pfn + 1
    assert any(f'p2m[{pfn:#x}]' in p and 'reverse map says' in p for p in _problems(guest))


def test_a_p2m_entry_naming_a_frame_the_domain_does_not_own_is_reported(guest):
    pfn = guest.unmapped_pfn()
    guest.d.p2m[pfn] = 0                                  # the hypervisor's
    assert any(f'p2m[{pfn:#x}] = 0x0, a frame it does not own' in p for p in _problems(guest))
