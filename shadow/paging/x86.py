"""x86-64 4-level paging: PTE bits, pure helpers, and one guest walker.

The walker follows KVM's shape: it returns a record of every level it read and, when
the access is refused, the fault to inject as data (error code, faulting level). A guest
fault is never a Python exception. PV specifics: the guest's U/S bit is irrelevant for a
64-bit PV guest (kernel and user both run at CPL3 and are separated by page-table
switches), so the walk grants user access everywhere and only reports the guest mode in
the error code, as Xen does.
"""
from dataclasses import dataclass, field
from typing import Callable, List, NamedTuple, Optional

_PAGE_PRESENT = 1 << 0
_PAGE_RW = 1 << 1
_PAGE_USER = 1 << 2
_PAGE_PWT = 1 << 3
_PAGE_PCD = 1 << 4
_PAGE_ACCESSED = 1 << 5
_PAGE_DIRTY = 1 << 6
_PAGE_PSE = 1 << 7
_PAGE_PAT = 1 << 7            # at L1 the PSE position is PAT
_PAGE_GLOBAL = 1 << 8
_PAGE_NX = 1 << 63
_PAGE_GUEST_KERNEL = 1 << 52  # Xen's software bit: a 64-bit PV guest's kernel mapping
ADDR_MASK = 0x000FFFFFFFFFF000
HIGH_AVAIL_MASK = 0x7FF0000000000000   # bits 52-62: software-available in hardware

# Page-fault error code bits (PFEC_*)
PFEC_PRESENT = 1 << 0
PFEC_WRITE = 1 << 1
PFEC_USER = 1 << 2
PFEC_RSVD = 1 << 3
PFEC_INSN = 1 << 4

LEVEL_NAMES = {4: 'L4', 3: 'L3', 2: 'L2', 1: 'L1'}
_FLAG_NAMES = ((_PAGE_PRESENT, 'P'), (_PAGE_RW, 'RW'), (_PAGE_USER, 'US'), (_PAGE_PWT, 'PWT'),
               (_PAGE_PCD, 'PCD'), (_PAGE_ACCESSED, 'A'), (_PAGE_DIRTY, 'D'), (_PAGE_PSE, 'PSE'),
               (_PAGE_GLOBAL, 'G'), (_PAGE_NX, 'NX'))


def pte_mfn(entry: int) -> int:
    return (entry & ADDR_MASK) >> 12


def pte_flags(entry: int) -> int:
    return entry & ~ADDR_MASK


def make_pte(mfn: int, flags: int) -> int:
    pte = (mfn << 12) | flags
    assert pte_mfn(pte) == mfn, f'mfn {mfn:#x} does not fit a PTE'
    return pte


def table_index(va: int, level: int) -> int:
    return (va >> (12 + 9 * (level - 1))) & 511


def is_canonical(va: int) -> bool:
    top = va >> 47
    return top == 0 or top == 0x1FFFF


def canonical(va: int) -> int:
    """Sign-extend a 48-bit address."""
    va &= (1 << 48) - 1
    return va | 0xFFFF000000000000 if va >> 47 else va


def va_of(indices) -> int:
    """The virtual address of L4/L3/L2/L1 indices (most significant first)."""
    va = 0
    for index in indices:
        va = (va << 9) | index
    return canonical(va << 12)


def flags_str(entry: int) -> str:
    names = [name for bit, name in _FLAG_NAMES if entry & bit]
    return ' '.join(names) if names else '-'


def pfec_str(pfec: int) -> str:
    parts = ['P' if pfec & PFEC_PRESENT else 'NP', 'W' if pfec & PFEC_WRITE else 'R',
             'U' if pfec & PFEC_USER else 'K']
    if pfec & PFEC_RSVD:
        parts.append('RSVD')
    if pfec & PFEC_INSN:
        parts.append('I')
    return '|'.join(parts)


def is_reserved(entry: int, level: int, max_phys_bits: int = 40) -> bool:
    """Hardware-reserved bits set: physical address above MAXPHYADDR, or PSE in an L4."""
    if (entry & ADDR_MASK) >> max_phys_bits:
        return True
    return level == 4 and bool(entry & _PAGE_PSE)


class WalkLevel(NamedTuple):
    """One level a walk read (a tuple: the fault path makes one per level per fault)."""
    level: int
    table_mfn: int
    index: int
    entry: int

    @property
    def entry_maddr(self) -> int:
        return (self.table_mfn << 12) + self.index * 8


@dataclass
class GuestWalk:
    """What a walk saw: every level read, and either a frame or the fault to inject."""
    va: int
    access: int                        # PFEC_WRITE / PFEC_USER / PFEC_INSN wanted
    levels: List[WalkLevel] = field(default_factory=list)
    mfn: Optional[int] = None          # the data frame, when the walk succeeded
    writable: bool = True              # RW at every level
    executable: bool = True            # NX clear at every level
    pfec: int = 0                      # the error code the guest sees, when it faults
    fault_level: Optional[int] = None
    reason: str = ''

    @property
    def ok(self) -> bool:
        return self.mfn is not None

    @property
    def maddr(self) -> int:
        return (self.mfn << 12) | (self.va & 0xFFF)

    def leaf(self) -> WalkLevel:
        return self.levels[-1]


def walk(read_u64: Callable[[int], int], l4_mfn: int, va: int, access: int = 0,
         write_u64: Optional[Callable[[int, int], None]] = None, nx_enabled: bool = True,
         max_phys_bits: int = 40, words=None) -> GuestWalk:
    """Walk the 4-level tables rooted at l4_mfn for va with the wanted access.

    access holds PFEC_WRITE / PFEC_USER / PFEC_INSN. With write_u64 given, the walk sets
    accessed and dirty bits as the CPU this runs on does: the accessed bit of each upper
    entry as it is used (even when the walk then faults lower down), and the leaf's
    accessed bit, with its dirty bit for a write, only when the access succeeds. words, a
    uint64 view of machine memory (MachineMemory.q), reads entries without a call each.
    """
    gw = GuestWalk(va=va, access=access)
    if not is_canonical(va):
        gw.reason = 'non-canonical address'
        gw.pfec = access & (PFEC_WRITE | PFEC_USER | PFEC_INSN)
        gw.fault_level = 4
        return gw
    table = l4_mfn
    levels = gw.levels
    reserved_mask = ADDR_MASK & ~((1 << max_phys_bits) - 1)     # is_reserved's address bits
    for level, shift in ((4, 39), (3, 30), (2, 21), (1, 12)):
        index = (va >> shift) & 511
        maddr = (table << 12) + index * 8
        entry = words[maddr >> 3] if words is not None else read_u64(maddr)
        if not entry & _PAGE_PRESENT:
            levels.append(WalkLevel(level, table, index, entry))
            return _fault(gw, level, access, present=False, why='not present')
        if entry & reserved_mask or (level == 4 and entry & _PAGE_PSE) or \
                (entry & _PAGE_NX and not nx_enabled):
            levels.append(WalkLevel(level, table, index, entry))
            return _fault(gw, level, access, present=True, why='reserved bit set', rsvd=True)
        if entry & _PAGE_PSE and level in (3, 2):
            levels.append(WalkLevel(level, table, index, entry))
            return _fault(gw, level, access, present=True, why='superpage (not supported for PV)',
                          rsvd=True)
        if not entry & _PAGE_RW:
            gw.writable = False
        if entry & _PAGE_NX:
            gw.executable = False
        if level > 1 and write_u64 is not None and not entry & _PAGE_ACCESSED:
            entry |= _PAGE_ACCESSED
            write_u64(maddr, entry)
        levels.append(WalkLevel(level, table, index, entry))
        table = (entry & ADDR_MASK) >> 12
    if access & PFEC_WRITE and not gw.writable:
        return _fault(gw, 1, access, present=True, why='write to a read-only mapping')
    if access & PFEC_INSN and not gw.executable:
        return _fault(gw, 1, access, present=True, why='fetch from a no-execute mapping')
    gw.mfn = table
    if write_u64 is not None:
        leaf = gw.levels[-1]
        want = leaf.entry | _PAGE_ACCESSED | (_PAGE_DIRTY if access & PFEC_WRITE else 0)
        if want != leaf.entry:
            write_u64(leaf.entry_maddr, want)
            gw.levels[-1] = leaf._replace(entry=want)
    return gw


def set_accessed_dirty(gw: GuestWalk, write_u64: Callable[[int, int], None]) -> GuestWalk:
    """What walk(..., write_u64=...) would have written for the same successful walk: A
    on every upper entry that lacks it, A (and D for a write) on the leaf. For a walk
    made without write_u64 whose tables nothing has changed since."""
    levels = gw.levels
    for i, lv in enumerate(levels):
        want = lv.entry | _PAGE_ACCESSED
        if lv.level == 1 and gw.access & PFEC_WRITE:
            want |= _PAGE_DIRTY
        if want != lv.entry:
            write_u64(lv.entry_maddr, want)
            levels[i] = lv._replace(entry=want)
    return gw


def translate(words, l4_mfn: int, va: int, write: bool = False, set_ad: bool = True,
              max_phys_bits: int = 40) -> Optional[int]:
    """The machine address behind va, or None: walk()'s answer, and its A/D updates for a
    read or write unless set_ad is False, without building the walk record (the
    hypervisor's own accesses). words: machine memory as uint64s (MachineMemory.q); a
    frame past its end, at any level, is no translation."""
    if (va >> 47) not in (0, 0x1FFFF):
        return None
    limit = len(words) >> 9
    table = l4_mfn
    rw = True
    for shift in (39, 30, 21):
        index = (table << 9) + ((va >> shift) & 511)
        entry = words[index]
        if not entry & _PAGE_PRESENT or entry & _PAGE_PSE or (entry & ADDR_MASK) >> max_phys_bits:
            return None
        if not entry & _PAGE_RW:
            rw = False
        if set_ad and not entry & _PAGE_ACCESSED:
            words[index] = entry | _PAGE_ACCESSED
        table = (entry & ADDR_MASK) >> 12
        if table >= limit:
            return None
    index = (table << 9) + ((va >> 12) & 511)
    entry = words[index]
    if not entry & _PAGE_PRESENT or (entry & ADDR_MASK) >> max_phys_bits or \
            write and not (rw and entry & _PAGE_RW):
        return None
    frame = (entry & ADDR_MASK) >> 12
    if frame >= limit:
        return None
    if set_ad:
        want = entry | _PAGE_ACCESSED | (_PAGE_DIRTY if write else 0)
        if want != entry:
            words[index] = want
    return (frame << 12) | (va & 0xFFF)


def leaf_entry(words, l4_mfn: int, va: int) -> Optional[int]:
    """The L1 entry a walk of va reaches through present, non-superpage upper entries
    (present or not), read through a uint64 view of machine memory; None when an upper
    level stops the walk or names a frame past it. Nothing is written."""
    table = l4_mfn
    limit = len(words) >> 9
    for shift in (39, 30, 21):
        entry = words[(table << 9) + ((va >> shift) & 511)]
        if not entry & _PAGE_PRESENT or entry & _PAGE_PSE:
            return None
        table = (entry & ADDR_MASK) >> 12
        if table >= limit:
            return None
    return words[(table << 9) + ((va >> 12) & 511)]


def _fault(gw: GuestWalk, level: int, access: int, present: bool, why: str,
           rsvd: bool = False) -> GuestWalk:
    pfec = access & (PFEC_WRITE | PFEC_USER | PFEC_INSN)
    if present:
        pfec |= PFEC_PRESENT
    if rsvd:
        pfec |= PFEC_RSVD
    gw.pfec = pfec
    gw.fault_level = level
    gw.reason = f'{LEVEL_NAMES[level]}: {why}'
    return gw
