"""Xen's page-type rules (shadow.paging.types) on a small frame table, without a CPU."""
import pytest

from pvshadow.shadow.abi.xen import DOMID_XEN, EBUSY, EINVAL
from pvshadow.shadow.machine import FrameTable, MachineMemory, PageType
from pvshadow.shadow.paging.types import PageTypes
from pvshadow.shadow.paging.x86 import _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, make_pte

P, RW = _PAGE_PRESENT, _PAGE_RW
DOM = 1


@pytest.fixture
def world():
    mem = MachineMemory(64)
    frames = FrameTable(64)
    freed = []
    types = PageTypes(mem, frames, {256: 0xABC007}, lambda mfn, owner: freed.append(mfn))
    mine = [frames.alloc(DOM) for _ in range(8)]
    xen_frame = frames.alloc(DOMID_XEN)
    return mem, frames, types, mine, xen_frame, freed


def chain(mem, mine):
    """L4 -> L3 -> L2 -> L1 -> data, slot 0 at each level; returns (l4, l3, l2, l1, data)."""
    l4, l3, l2, l1, data = mine[:5]
    for table, child in ((l4, l3), (l3, l2), (l2, l1), (l1, data)):
        mem.write_u64(table << 12, make_pte(child, P | RW))
    return l4, l3, l2, l1, data


def test_validating_an_l4_types_the_whole_tree_and_fills_xen_slots(world):
    mem, frames, types, mine, _, _ = world
    l4, l3, l2, l1, data = chain(mem, mine)
    assert types.get_page_and_type(l4, PageType.L4, DOM) == 0
    assert [PageType(frames.type[m]) for m in (l4, l3, l2, l1, data)] == \
        [PageType.L4, PageType.L3, PageType.L2, PageType.L1, PageType.WRITABLE]
    assert mem.read_u64((l4 << 12) + 256 * 8) == 0xABC007
    assert mem.read_u64(l1 << 12) & _PAGE_USER       # 64-bit PV: entries made user-accessible


def test_a_writable_frame_cannot_become_a_page_table(world):
    mem, frames, types, mine, _, _ = world
    l4, l3, l2, l1, data = chain(mem, mine)
    assert types.get_page_type(l1, PageType.WRITABLE, DOM) == 0
    assert types.get_page_and_type(l4, PageType.L4, DOM) == -EINVAL
    assert all(frames.type_count[m] == 0 for m in (l4, l3, l2)), 'a failed validation leaks refs'


def test_a_page_table_cannot_be_mapped_writable(world):
    mem, frames, types, mine, _, _ = world
    l4, l3, l2, l1, data = chain(mem, mine)
    types.get_page_and_type(l4, PageType.L4, DOM)
    assert types.get_page_from_entry(make_pte(l2, P | RW), 1, DOM) == -EBUSY
    assert types.get_page_from_entry(make_pte(l2, P), 1, DOM) == 0


def test_a_frame_of_another_owner_cannot_be_mapped(world):
    _, _, types, _, xen_frame, _ = world
    assert types.get_page_from_entry(make_pte(xen_frame, P), 1, DOM) == -EBUSY


def test_xen_l4_slots_are_refused(world):
    mem, _, types, mine, _, _ = world
    l4 = chain(mem, mine)[0]
    types.get_page_and_type(l4, PageType.L4, DOM)
    assert types.mod_entry(l4, 256, 4, 0, DOM) == -EINVAL
    assert mem.read_u64((l4 << 12) + 256 * 8) == 0xABC007


def test_dropping_the_last_reference_devalidates_the_tree(world):
    mem, frames, types, mine, _, _ = world
    l4, l3, l2, l1, data = chain(mem, mine)
    types.get_page_and_type(l4, PageType.L4, DOM)
    types.put_page_and_type(l4)
    assert all(frames.type_count[m] == 0 for m in (l4, l3, l2, l1, data))
    assert types.get_page_type(l1, PageType.WRITABLE, DOM) == 0


def test_mod_entry_moves_references_from_the_old_frame_to_the_new(world):
    mem, frames, types, mine, _, _ = world
    l4, l3, l2, l1, data = chain(mem, mine)
    other = mine[5]
    types.get_page_and_type(l4, PageType.L4, DOM)
    assert types.mod_entry(l1, 0, 1, make_pte(other, P | RW), DOM) == 0
    assert frames.type_count[data] == 0 and frames.type_count[other] == 1


def test_a_self_referencing_table_is_refused_not_recursed(world):
    mem, _, types, mine, _, _ = world
    l4 = mine[0]
    mem.write_u64(l4 << 12, make_pte(l4, P | RW))
    assert types.get_page_and_type(l4, PageType.L4, DOM) == -EINVAL


def test_a_frame_is_freed_when_its_last_reference_goes(world):
    _, frames, types, mine, _, freed = world
    data = mine[7]
    assert types.get_page(data, DOM)
    frames.allocated[data] = 0
    types.put_page(data)          # the allocation reference
    assert not freed
    types.put_page(data)          # the mapping's reference
    assert freed == [data]


# --- Xen's entry rules for a 64-bit PV guest (get_page_from_lNe, adjust_guest_lNe) --------
from pvshadow.shadow.abi.xen import EPERM  # noqa: E402
from pvshadow.shadow.paging.types import adjust_guest_entry, disallowed_flags  # noqa: E402
from pvshadow.shadow.paging.x86 import (_PAGE_ACCESSED, _PAGE_GLOBAL, _PAGE_GUEST_KERNEL,  # noqa: E402
                                        _PAGE_NX, _PAGE_PAT, _PAGE_PCD, _PAGE_PSE, _PAGE_PWT)

BIT = lambda n: 1 << n  # noqa: E731


@pytest.mark.parametrize('bit', range(52, 62))
def test_software_bits_52_to_61_are_the_guests_at_l1(bit):
    assert not disallowed_flags(P | RW | BIT(bit), 1)


def test_bit_62_is_refused_at_l1_as_xens_grant_marker_but_allowed_above():
    assert disallowed_flags(P | BIT(62), 1)
    for level in (2, 3, 4):
        assert not disallowed_flags(P | BIT(62), level)


@pytest.mark.parametrize('flag', [_PAGE_PCD, _PAGE_PWT, _PAGE_PAT])
def test_cache_attributes_at_l1_need_io_privileges(flag):
    assert disallowed_flags(P | flag, 1)
    assert not disallowed_flags(P | flag, 1, io_privileged=True)


@pytest.mark.parametrize('flag', [_PAGE_PCD, _PAGE_PWT, _PAGE_PSE, _PAGE_GLOBAL])
def test_upper_entries_refuse_cache_superpage_and_global_bits(flag):
    for level in (2, 3, 4):
        assert disallowed_flags(P | flag, level)


def test_global_and_nx_are_allowed_at_l1():
    assert not disallowed_flags(P | _PAGE_GLOBAL | _PAGE_NX, 1)


def test_a_kernel_l1_entry_gains_user_and_the_guest_kernel_bit():
    assert adjust_guest_entry(P | RW, 1) == P | RW | _PAGE_USER | _PAGE_GUEST_KERNEL


def test_a_user_l1_entry_gains_global():
    assert adjust_guest_entry(P | _PAGE_USER, 1) == P | _PAGE_USER | _PAGE_GLOBAL


def test_upper_entries_gain_user_and_l4_entries_accessed_too():
    assert adjust_guest_entry(P | RW, 2) == P | RW | _PAGE_USER
    assert adjust_guest_entry(P | RW, 3) == P | RW | _PAGE_USER
    assert adjust_guest_entry(P | RW, 4) == P | RW | _PAGE_USER | _PAGE_ACCESSED


def test_a_not_present_entry_is_left_alone():
    for level in (1, 2, 3, 4):
        assert adjust_guest_entry(RW, level) == RW


def test_an_l1_entry_past_the_end_of_ram_is_eperm_and_invalid_mfn_einval(world):
    mem, _, types, mine, _, _ = world
    assert types.get_page_from_entry(make_pte(4096, P), 1, DOM) == -EPERM
    assert types.get_page_from_entry(make_pte((1 << 40) - 1, P), 1, DOM) == -EINVAL
    assert types.get_page_from_entry(make_pte(4096, P), 2, DOM) == -EINVAL


# --- linear (recursive) page tables: CONFIG_PV_LINEAR_PT --------------------------------------
def test_a_read_only_entry_may_map_its_own_table_without_a_reference(world):
    mem, frames, types, mine, _, _ = world
    l4 = mine[0]
    mem.write_u64(l4 << 12, make_pte(l4, P))
    assert types.get_page_and_type(l4, PageType.L4, DOM) == 0
    assert frames.type_count[l4] == 1 and types.linear == {}


def test_a_linear_entry_to_another_validated_table_takes_its_references(world):
    mem, frames, types, mine, _, _ = world
    a, b = mine[0], mine[1]
    assert types.get_page_and_type(b, PageType.L4, DOM) == 0
    assert types.get_page_and_type(a, PageType.L4, DOM) == 0
    assert types.mod_entry(a, 3, 4, make_pte(b, P), DOM) == 0
    assert frames.type_count[b] == 2 and types.linear == {a: 1, b: -1}
    assert types.mod_entry(a, 3, 4, 0, DOM) == 0
    assert frames.type_count[b] == 1 and types.linear == {}


def test_a_writable_linear_entry_is_refused(world):
    mem, frames, types, mine, _, _ = world
    a, b = mine[0], mine[1]
    assert types.get_page_and_type(b, PageType.L4, DOM) == 0
    assert types.get_page_and_type(a, PageType.L4, DOM) == 0
    assert types.mod_entry(a, 3, 4, make_pte(b, P | RW), DOM) == -EINVAL


def test_linear_entries_do_not_chain(world):
    mem, frames, types, mine, _, _ = world
    a, b, c = mine[0], mine[1], mine[2]
    for t in (a, b, c):
        assert types.get_page_and_type(t, PageType.L4, DOM) == 0
    assert types.mod_entry(a, 3, 4, make_pte(b, P), DOM) == 0
    assert types.mod_entry(b, 3, 4, make_pte(c, P), DOM) == -EINVAL     # b is a target
    assert types.mod_entry(c, 3, 4, make_pte(a, P), DOM) == -EINVAL     # a holds one


def test_dropping_a_table_with_a_linear_entry_releases_its_target(world):
    mem, frames, types, mine, _, _ = world
    a, b = mine[0], mine[1]
    assert types.get_page_and_type(b, PageType.L4, DOM) == 0
    assert types.get_page_and_type(a, PageType.L4, DOM) == 0
    assert types.mod_entry(a, 3, 4, make_pte(b, P), DOM) == 0
    types.put_page_and_type(a)
    assert frames.type_count[a] == 0 and frames.type_count[b] == 1 and types.linear == {}


def test_validating_an_l1_takes_each_entrys_references_and_adjusts_it_as_xen_does(world):
    """The validation's inline path (own RAM frames) and its general one (here a frame
    of another owner, refused) agree with get_page_from_entry and adjust_guest_entry."""
    from pvshadow.shadow.paging.types import adjust_guest_entry
    from pvshadow.shadow.paging.x86 import _PAGE_GLOBAL, _PAGE_NX
    mem, frames, types, mine, xen_frame, _ = world
    l1, ro, rw, user = mine[:4]
    entries = {0: make_pte(ro, P | _PAGE_NX), 1: make_pte(rw, P | RW),
               2: make_pte(user, P | RW | _PAGE_USER), 3: make_pte(rw, P | RW | _PAGE_GLOBAL)}
    for index, entry in entries.items():
        mem.write_u64((l1 << 12) + index * 8, entry)
    assert types.get_page_and_type(l1, PageType.L1, DOM) == 0
    assert [frames.count[m] for m in (ro, rw, user)] == [2, 3, 2]
    assert [frames.type_count[m] for m in (ro, rw, user)] == [0, 2, 1]
    assert [frames.executable[m] for m in (ro, rw, user)] == [0, 1, 1]
    assert [mem.read_u64((l1 << 12) + i * 8) for i in entries] == \
        [adjust_guest_entry(e, 1) for e in entries.values()]
    types.put_page_and_type(l1)
    assert [frames.count[m] for m in (ro, rw, user)] == [1, 1, 1]
    mem.write_u64((l1 << 12) + 8 * 8, make_pte(xen_frame, P))
    assert types.get_page_and_type(l1, PageType.L1, DOM) == -EBUSY
    assert [frames.count[m] for m in (ro, rw, user)] == [1, 1, 1]     # all given back
    assert [frames.type_count[m] for m in (ro, rw, user)] == [0, 0, 0]
