"""The frame table's allocator: fresh frames handed out untouched, freed frames scrubbed
by their next user and reused first, bulk runs in the single allocator's order, and a
bounded number of bytes of bookkeeping per machine frame."""
from hypothesis import given
from hypothesis import strategies as st

from pvshadow.shadow.abi.xen import DOMID_INVALID
from pvshadow.shadow.machine import NO_PFN, FrameTable

DOM = 1


def test_fresh_frames_need_no_scrub():
    frames = FrameTable(16)
    assert not frames.scrub_needed(frames.alloc(DOM))
    assert not frames.scrub_needed(frames.alloc_high(DOM))


def test_a_freed_frame_is_reused_first_and_scrubbed_by_its_next_user():
    frames = FrameTable(16)
    a = frames.alloc(DOM)
    frames.alloc(DOM)
    frames.count[a] = 0
    frames.free(a)
    assert frames.owner[a] == DOMID_INVALID and frames.pfn[a] == NO_PFN
    assert frames.alloc(DOM) == a
    assert frames.scrub_needed(a) and not frames.scrub_needed(a)


def test_alloc_high_takes_the_top_and_a_freed_frame_only_when_the_fresh_range_is_gone():
    frames = FrameTable(4)
    low = frames.alloc(DOM)
    frames.free(low)
    assert [frames.alloc_high(DOM) for _ in range(3)] == [3, 2, 1]
    assert frames.alloc_high(DOM) == low
    assert frames.free_frames() == 0


def test_a_run_is_handed_out_in_alloc_highs_order_with_the_same_bookkeeping():
    one, many = FrameTable(64), FrameTable(64)
    singles = [one.alloc_high(DOM) for _ in range(10)]
    run = list(many.alloc_high_run(10, DOM))
    assert run == singles
    for column in ('owner', 'type', 'type_count', 'count', 'allocated', 'pinned'):
        assert list(getattr(one, column)) == list(getattr(many, column)), column
    assert many.free_frames() == one.free_frames()


def test_a_run_longer_than_the_fresh_range_takes_nothing():
    frames = FrameTable(8)
    assert len(frames.alloc_high_run(9, DOM)) == 0 and frames.free_frames() == 8


def test_bookkeeping_stays_within_64_bytes_a_frame():
    frames = FrameTable(1024)
    per_frame = sum(len(bytes(getattr(frames, column))) for column in
                    ('owner', 'type', 'type_count', 'count', 'pinned', 'allocated', 'pfn',
                     'scrub')) / 1024
    assert per_frame <= 64


@given(st.lists(st.sampled_from([0x7FF2, 0x7FF4, 1, 2, 0xF27F, 0x7F7F, 0xF2F2, 0x7FF3]),
                min_size=1, max_size=64), st.sampled_from([0x7FF2, 1, 0xF2F2, 0x7F7F]))
def test_owned_by_finds_exactly_a_domains_frames_whatever_their_neighbours_bytes(owners, domid):
    """The byte search must not take two neighbours' bytes for one owner."""
    frames = FrameTable(len(owners))
    for mfn, owner in enumerate(owners):
        frames.owner[mfn] = owner
    assert frames.owned_by(domid) == [m for m, owner in enumerate(owners) if owner == domid]
