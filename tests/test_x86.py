"""PTE arithmetic and the guest walker, without Unicorn: memory is a dict of qwords."""
from pvshadow.shadow.paging.x86 import (_PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_NX, _PAGE_PRESENT, _PAGE_PSE,
                               _PAGE_RW, _PAGE_USER, PFEC_INSN, PFEC_PRESENT, PFEC_RSVD,
                               PFEC_USER, PFEC_WRITE, canonical, flags_str, is_canonical,
                               make_pte, pfec_str, pte_mfn, table_index, translate, va_of,
                               walk)

P, RW, US, A, D = _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, _PAGE_ACCESSED, _PAGE_DIRTY
VA = 0xFFFFFFFF80201000


class Memory(dict):
    def read(self, maddr):
        return self.get(maddr, 0)

    def write(self, maddr, value):
        self[maddr] = value


def tables(l4=P | RW, l3=P | RW, l2=P | RW, l1=P | RW, va=VA, data_mfn=0x99):
    """A 4-level mapping of va with the given flags at each level (frames 1-4)."""
    mem = Memory()
    mem[(1 << 12) + table_index(va, 4) * 8] = make_pte(2, l4)
    mem[(2 << 12) + table_index(va, 3) * 8] = make_pte(3, l3)
    mem[(3 << 12) + table_index(va, 2) * 8] = make_pte(4, l2)
    mem[(4 << 12) + table_index(va, 1) * 8] = make_pte(data_mfn, l1)
    return mem


def test_make_pte_round_trips_frame_and_flags():
    pte = make_pte(0x12345, P | RW | _PAGE_NX)
    assert pte_mfn(pte) == 0x12345
    assert flags_str(pte) == 'P RW NX'


def test_table_index_splits_an_address_into_four_indices():
    assert [table_index(VA, lvl) for lvl in (4, 3, 2, 1)] == [511, 510, 1, 1]
    assert va_of([511, 510, 1, 1]) == VA


def test_canonical_addresses():
    assert is_canonical(0x00007FFFFFFFF000) and is_canonical(0xFFFF800000000000)
    assert not is_canonical(0x0000800000000000)
    assert canonical(0x0000800000000000) == 0xFFFF800000000000


def test_walk_of_a_mapped_address_returns_every_level_and_the_frame():
    mem = tables()
    gw = walk(mem.read, 1, VA | 0x123)
    assert gw.ok and gw.mfn == 0x99 and gw.maddr == (0x99 << 12) | 0x123
    assert [lv.level for lv in gw.levels] == [4, 3, 2, 1]
    assert [lv.table_mfn for lv in gw.levels] == [1, 2, 3, 4]


def test_walk_stops_at_the_first_non_present_level_with_error_code_zero():
    mem = tables(l2=0)
    gw = walk(mem.read, 1, VA)
    assert not gw.ok and gw.fault_level == 2 and gw.pfec == 0
    assert len(gw.levels) == 3


def test_write_through_a_read_only_upper_level_faults_present_write():
    mem = tables(l3=P)
    gw = walk(mem.read, 1, VA, PFEC_WRITE)
    assert not gw.ok and gw.pfec == PFEC_PRESENT | PFEC_WRITE


def test_user_bit_is_irrelevant_for_pv_but_the_mode_shows_in_the_error_code():
    mem = tables(l1=P)          # no US anywhere: still reachable from guest user mode
    assert walk(mem.read, 1, VA, PFEC_USER).ok
    gw = walk(mem.read, 1, VA, PFEC_USER | PFEC_WRITE)
    assert gw.pfec == PFEC_PRESENT | PFEC_WRITE | PFEC_USER
    assert pfec_str(gw.pfec) == 'P|W|U'


def test_fetch_from_no_execute_faults_with_the_instruction_bit():
    mem = tables(l2=P | RW | _PAGE_NX)
    gw = walk(mem.read, 1, VA, PFEC_INSN)
    assert gw.pfec == PFEC_PRESENT | PFEC_INSN


def test_superpages_and_reserved_bits_fault_with_rsvd():
    assert walk(tables(l2=P | RW | _PAGE_PSE).read, 1, VA).pfec & PFEC_RSVD
    mem = tables()
    mem[(4 << 12) + table_index(VA, 1) * 8] = make_pte(0x99, P) | (1 << 45)   # above MAXPHYADDR
    assert walk(mem.read, 1, VA).pfec == PFEC_PRESENT | PFEC_RSVD


def test_walk_sets_leaf_accessed_and_dirty_only_when_the_access_succeeds():
    mem = tables()
    walk(mem.read, 1, VA, 0, write_u64=mem.write)
    leaf = mem[(4 << 12) + table_index(VA, 1) * 8]
    assert leaf & A and not leaf & D
    walk(mem.read, 1, VA, PFEC_WRITE, write_u64=mem.write)
    assert mem[(4 << 12) + table_index(VA, 1) * 8] & D
    ro = tables(l1=P)
    walk(ro.read, 1, VA, PFEC_WRITE, write_u64=ro.write)
    assert not ro[(4 << 12) + table_index(VA, 1) * 8] & A


def test_non_canonical_address_faults_without_reading_tables():
    gw = walk(Memory().read, 1, 0x0000800000000000)
    assert not gw.ok and gw.levels == []


def test_walk_sets_upper_accessed_bits_even_when_a_lower_level_faults():
    mem = tables(l1=0)
    gw = walk(mem.read, 1, VA, 0, write_u64=mem.write)
    assert not gw.ok
    assert mem[(1 << 12) + table_index(VA, 4) * 8] & A
    assert mem[(3 << 12) + table_index(VA, 2) * 8] & A


def _words(mem: Memory, frames: int = 0x100):
    """The dict memory as a uint64 view of `frames` frames, as MachineMemory.q is."""
    words = memoryview(bytearray(frames << 12)).cast('Q')
    for maddr, value in mem.items():
        words[maddr >> 3] = value
    return words


def test_translate_agrees_with_walk_on_the_address_and_the_accessed_dirty_bits():
    for flags in (P | RW, P, P | RW | A | D, 0):
        for access in (0, PFEC_WRITE):
            by_walk, by_translate = tables(l3=flags | P, l1=flags), tables(l3=flags | P, l1=flags)
            gw = walk(by_walk.read, 1, VA | 0x10, access, write_u64=by_walk.write)
            words = _words(by_translate)
            maddr = translate(words, 1, VA | 0x10, write=bool(access))
            assert maddr == (gw.maddr if gw.ok else None)
            assert all(words[a >> 3] == v for a, v in by_walk.items())


def test_translate_without_set_ad_writes_nothing():
    mem = tables()
    words = _words(mem)
    assert translate(words, 1, VA, write=True, set_ad=False) == 0x99 << 12
    assert all(words[a >> 3] == v for a, v in mem.items())


def test_translate_refuses_a_frame_past_the_end_of_memory_at_any_level():
    assert translate(_words(tables(data_mfn=0x100)), 1, VA) is None
    past = tables()
    past[(2 << 12) + table_index(VA, 3) * 8] = make_pte(0x1000, P | RW)
    assert translate(_words(past), 1, VA) is None
