"""Xen's page-type rules for PV guests: reference counts, types, and table validation.

A frame is a page table (L1..L4) or writable, never both: every present L1 entry with RW
holds a WRITABLE type reference on the frame it maps, every present Ln entry holds an
L(n-1) type reference on the table below, and a frame's type can change only when its
type count is zero. Validating a table takes these references for every entry; the last
type reference going away releases them again. Functions return 0 or a negative Xen
errno, as the hypercalls that call them do.
"""
import struct
from collections import Counter
from typing import Callable, Dict, Optional

from pvshadow.shadow.abi.xen import EBUSY, EINVAL, EPERM
from pvshadow.shadow.machine import FrameTable, MachineMemory, PageType
from pvshadow.shadow.paging.x86 import (_PAGE_GLOBAL, _PAGE_GUEST_KERNEL, _PAGE_NX, _PAGE_PAT,
                                        _PAGE_PCD, _PAGE_PRESENT, _PAGE_PWT, _PAGE_RW,
                                        _PAGE_USER, _PAGE_ACCESSED, _PAGE_DIRTY, ADDR_MASK,
                                        HIGH_AVAIL_MASK, pte_mfn)

# The first and last L4 slots Xen keeps for itself in every 64-bit PV address space.
ROOT_PAGETABLE_FIRST_XEN_SLOT = 256
ROOT_PAGETABLE_LAST_XEN_SLOT = 271

# What a guest may set (Xen's arch_init_memory base_disallow_mask, inverted): P, RW, US,
# A, D, the software bits 9-11 and 52-62, NX. Everything else in the flag bits is refused.
_GUEST_FLAGS = (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY |
                0xE00 | HIGH_AVAIL_MASK | _PAGE_NX)
_FLAG_BITS = ~ADDR_MASK & (2 ** 64 - 1)
BASE_DISALLOW_MASK = _FLAG_BITS & ~_GUEST_FLAGS
# Bit 62 is _PAGE_GNTTAB, Xen's marker of a grant mapping: an L1 may not claim it. G is
# allowed at L1 (user mappings). PCD/PWT/PAT only for a domain with I/O privileges.
_PAGE_GNTTAB = 1 << 62
PAGE_CACHE_ATTRS = _PAGE_PAT | _PAGE_PCD | _PAGE_PWT
L1_DISALLOW_MASK = (BASE_DISALLOW_MASK | _PAGE_GNTTAB) & ~_PAGE_GLOBAL
# Xen's FASTPATH_FLAG_WHITELIST: flags an L1 update may change without retaking the
# entry's references. _PAGE_GNTTAB is left out, so a grant entry always goes the slow way
# (where dropping it is seen).
L1_FASTPATH_FLAGS = (_PAGE_NX | (HIGH_AVAIL_MASK & ~_PAGE_GNTTAB) | 0xE00 | _PAGE_GLOBAL |
                     _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_USER)
UPPER_DISALLOW_MASK = BASE_DISALLOW_MASK
_L1_DISALLOW_PRIVILEGED = L1_DISALLOW_MASK & ~PAGE_CACHE_ATTRS
# get_page_from_l1e: a frame that is not RAM is MMIO, which a domain without I/O
# privileges may not map (-EPERM); INVALID_MFN itself is -EINVAL.
INVALID_MFN = (1 << 40) - 1

_TABLE_TYPE = {1: PageType.L1, 2: PageType.L2, 3: PageType.L3, 4: PageType.L4}


def is_guest_l4_slot(slot: int) -> bool:
    return not ROOT_PAGETABLE_FIRST_XEN_SLOT <= slot <= ROOT_PAGETABLE_LAST_XEN_SLOT


def adjust_guest_entry(entry: int, level: int) -> int:
    """adjust_guest_l1e..l4e (xen/arch/x86/pv/mm.h) for a 64-bit PV guest, whose kernel
    runs at CPL3 so every present entry is user-accessible in hardware. At L1 a kernel
    mapping (US clear) is marked with the guest-kernel software bit 52 and a user mapping
    gets G (it survives the kernel/user page-table switch); L4 entries get A, which Xen
    cannot sync back from its own per-CPU L4 shadows."""
    if not entry & _PAGE_PRESENT:
        return entry
    if level == 1:
        if not entry & _PAGE_USER:
            entry |= _PAGE_GUEST_KERNEL | _PAGE_USER
        if not entry & _PAGE_GUEST_KERNEL:
            entry |= _PAGE_GLOBAL | _PAGE_USER
        return entry
    if level == 4:
        return entry | _PAGE_ACCESSED | _PAGE_USER
    return entry | _PAGE_USER


def disallowed_flags(entry: int, level: int, io_privileged: bool = False) -> int:
    if level == 1:
        return entry & (L1_DISALLOW_MASK & ~PAGE_CACHE_ATTRS if io_privileged
                        else L1_DISALLOW_MASK)
    return entry & UPPER_DISALLOW_MASK


class PageTypes:
    """Type and general reference counting over one frame table."""

    def __init__(self, mem: MachineMemory, frames: FrameTable, xen_l4_slots: Dict[int, int],
                 on_free: Callable[[int, int], None]):
        self.mem = mem
        self.frames = frames
        self.xen_l4_slots = xen_l4_slots
        self.on_free = on_free          # (mfn, its last owner): back to the allocator
        # Whether a domain's tables may reference another's frame (the host's XSM policy).
        self.may_map_foreign = lambda domid, owner: False
        # Whether a domain may choose cache attributes (cache_flush_permitted: I/O
        # privileges; here the control domain).
        self.io_privileged = lambda domid: False
        # Whether a domain may map a machine frame past RAM (a device's registers: Xen's
        # iomem_access_permitted); such an entry holds no reference.
        self.iomem_permitted = lambda domid, mfn: False
        # A host grant entry (_PAGE_GNTTAB) the guest itself dropped: (domid, table, entry)
        # (shadow.grant_table.grant_pte_dropped).
        self.grant_pte_dropped = lambda domid, table_mfn, entry: None
        # Whether a domain holds a host grant mapping of a frame (shadow mode may map it).
        self.grant_mapped = lambda domid, mfn: False
        # Per domain: told when one of its frames becomes or stops being a page table
        # (shadow mode follows this): table_validated(mfn, level), table_devalidated(...).
        self.listeners = {}
        # Hypervisor frames a guest must never map, with the errno it gets (vm_event rings).
        self.unmappable = {}
        # Linear (recursive) page tables, Xen's linear_pt_count: > 0, how many linear
        # entries a table holds; < 0, how many linear entries point at it. One or the
        # other, never both, so they cannot chain or cycle.
        self.linear: Dict[int, int] = {}
        self._validating = set()        # tables whose validation is under way
        # mfn -> Counter(holder name): the writable references the hypervisor holds on
        # guest frames it writes into (shared_info, rings, runstate areas): the ledger
        # names them.
        self.holds: Dict[int, Counter] = {}

    # --- general references ------------------------------------------------------------
    def get_page(self, mfn: int, domid: int) -> bool:
        frames = self.frames
        if not frames.is_valid(mfn) or frames.owner[mfn] != domid or frames.count[mfn] == 0:
            return False
        frames.count[mfn] += 1
        return True

    def put_page(self, mfn: int) -> None:
        frames = self.frames
        frames.count[mfn] -= 1
        if frames.count[mfn] == 0:
            owner = frames.owner[mfn]
            frames.free(mfn)
            self.on_free(mfn, owner)

    # --- type references ------------------------------------------------------------------
    def get_page_type(self, mfn: int, ptype: PageType, domid: int) -> int:
        frames = self.frames
        if frames.type_count[mfn]:
            if frames.type[mfn] != ptype:
                return -EINVAL           # "Bad type": in use as something else
            frames.type_count[mfn] += 1
            return 0
        # Claim the type before validating, so a table that (directly or not) points at
        # itself meets a type conflict instead of recursing.
        frames.type[mfn] = ptype
        frames.type_count[mfn] = 1
        if ptype in _LEVEL_OF:
            self._validating.add(mfn)
            try:
                rc = self.validate_table(mfn, _LEVEL_OF[ptype], domid)
            finally:
                self._validating.discard(mfn)
            if rc:
                frames.type[mfn] = PageType.NONE
                frames.type_count[mfn] = 0
                return rc
            listener = self.listeners.get(domid)
            if listener is not None:
                listener.table_validated(mfn, _LEVEL_OF[ptype])
        return 0

    def put_page_type(self, mfn: int) -> None:
        frames = self.frames
        assert frames.type_count[mfn] > 0, f'type count underflow on mfn {mfn:#x}'
        frames.type_count[mfn] -= 1
        if frames.type_count[mfn] == 0:
            ptype = frames.type[mfn]
            if ptype in _LEVEL_OF:
                self.devalidate_table(mfn, _LEVEL_OF[ptype])
            frames.type[mfn] = PageType.NONE
            listener = self.listeners.get(frames.owner[mfn])
            if ptype in _LEVEL_OF and listener is not None:
                listener.table_devalidated(mfn, _LEVEL_OF[ptype])

    def get_page_and_type(self, mfn: int, ptype: PageType, domid: int) -> int:
        if not self.get_page(mfn, domid):
            return -EINVAL
        rc = self.get_page_type(mfn, ptype, domid)
        if rc:
            self.put_page(mfn)
        return rc

    def put_page_and_type(self, mfn: int) -> None:
        self.put_page_type(mfn)
        self.put_page(mfn)

    def put_mapping(self, mfn: int, writable: bool) -> None:
        """What a mapping gives back: its reference, and its WRITABLE type reference if
        it was writable (an L1 entry, a grant mapping, an IOMMU mapping)."""
        if writable:
            self.put_page_and_type(mfn)
        else:
            self.put_page(mfn)

    # --- frames the hypervisor writes into ------------------------------------------------------
    def get_writable_frame(self, mfn: int, domid: int, holder: str) -> int:
        """The one rule for a guest frame the hypervisor will write on the guest's behalf:
        take a general and a WRITABLE type reference (get_page_and_type(PGT_writable_page)),
        so the frame cannot be, or later become, a page table or descriptor page while it
        is held. Refused (-EINVAL) for another owner's frame or one typed otherwise."""
        if not self.frames.is_valid(mfn):
            return -EINVAL
        rc = self.get_page_and_type(mfn, PageType.WRITABLE, domid)
        if rc == 0:
            self.holds.setdefault(mfn, Counter())[holder] += 1
        return rc

    def put_writable_frame(self, mfn: int, holder: str) -> None:
        held = self.holds[mfn]
        held[holder] -= 1
        if not held[holder]:
            del held[holder]
            if not held:
                del self.holds[mfn]
        self.put_page_and_type(mfn)

    def write_frame(self, maddr: int, data: bytes, domid: int) -> bool:
        """A one-off hypervisor write into a guest frame (a hypercall's result, a runstate
        update walked at switch-in): done under a transient writable reference, or not at
        all. The write stays within the frame maddr names."""
        mfn = maddr >> 12
        if (maddr & 0xFFF) + len(data) > 0x1000 or \
                not self.frames.is_valid(mfn) or self.get_page_and_type(mfn, PageType.WRITABLE, domid):
            return False
        self.mem.write(maddr, data)
        self.put_page_and_type(mfn)
        return True

    # --- entries ------------------------------------------------------------------------
    def get_page_from_entry(self, entry: int, level: int, domid: int,
                            pg_owner: Optional[int] = None, table_mfn: Optional[int] = None) -> int:
        """Take the references a present entry at this level needs (get_page_from_lNe).
        An L1 entry maps a frame of pg_owner: the table's own domain unless an
        mmu_update or update_va_mapping_otherdomain named a foreign one, whose right to
        it the hypercall has checked (shadow.xsm)."""
        # l1_disallow_mask: the cache attributes are checked apart, so the privilege
        # lookup is made only for an L1 entry that carries them (a store per fault here)
        if disallowed_flags(entry, level, io_privileged=True) or \
                level == 1 and entry & PAGE_CACHE_ATTRS and not self.io_privileged(domid):
            return -EINVAL
        mfn = pte_mfn(entry)
        if not self.frames.is_valid(mfn):
            if level == 1 and mfn != INVALID_MFN and \
                    self.iomem_permitted(domid if pg_owner is None else pg_owner, mfn):
                return 0                 # a device's registers: no reference to take
            return -EPERM if level == 1 and mfn != INVALID_MFN else -EINVAL
        if mfn in self.unmappable:
            return -self.unmappable[mfn]
        if level == 1:
            # Xen: a frame of another owner, or one that cannot be writable, "could not
            # pin" -> -EBUSY.
            owner = domid if pg_owner is None else pg_owner
            if not self.get_page(mfn, owner):
                return -EBUSY
            if entry & _PAGE_RW and self.get_page_type(mfn, PageType.WRITABLE, owner):
                self.put_page(mfn)
                return -EBUSY
            if not entry & _PAGE_NX:
                self.frames.executable[mfn] = 1     # direct mode's CPU may run code from it
            return 0
        rc = self.get_page_and_type(mfn, _TABLE_TYPE[level - 1], domid)
        if rc == -EINVAL and table_mfn is not None and \
                self.get_linear_pagetable(entry, level, table_mfn, domid):
            rc = 0
        return rc

    def get_linear_pagetable(self, entry: int, level: int, table_mfn: int, domid: int) -> bool:
        """define_get_linear_pagetable (CONFIG_PV_LINEAR_PT, Xen's default): a read-only
        entry may map a validated table of its own level and domain, the table it is in
        included (which takes no reference). A table holding linear entries cannot be
        mapped linearly itself, nor the other way round."""
        if entry & _PAGE_RW:
            return False
        mfn = pte_mfn(entry)
        if mfn == table_mfn:
            return True
        frames = self.frames
        if self.linear.get(table_mfn, 0) < 0 or self.linear.get(mfn, 0) > 0 or \
                frames.type[mfn] != _TABLE_TYPE[level] or not frames.type_count[mfn] or \
                mfn in self._validating or not self.get_page(mfn, domid):
            return False
        frames.type_count[mfn] += 1
        self.linear[table_mfn] = self.linear.get(table_mfn, 0) + 1
        self.linear[mfn] = self.linear.get(mfn, 0) - 1
        return True

    def put_page_from_entry(self, entry: int, level: int, table_mfn: Optional[int] = None) -> None:
        mfn = pte_mfn(entry)
        if level == 1:
            if not self.frames.is_valid(mfn):
                return                   # an I/O-memory entry held nothing
            self.put_mapping(mfn, bool(entry & _PAGE_RW))
            if entry & _PAGE_GNTTAB and table_mfn is not None:
                self.grant_pte_dropped(self.frames.owner[table_mfn], table_mfn, entry)
            return
        if mfn == table_mfn:
            return                       # a linear entry to its own table holds nothing
        if self.frames.type[mfn] == _TABLE_TYPE[level]:
            self._drop_linear(table_mfn, 1)
            self._drop_linear(mfn, -1)
        self.put_page_and_type(mfn)

    def _drop_linear(self, mfn: int, step: int) -> None:
        left = self.linear.get(mfn, 0) - step
        if left:
            self.linear[mfn] = left
        else:
            self.linear.pop(mfn, None)

    # --- whole tables -----------------------------------------------------------------------
    def validate_table(self, mfn: int, level: int, domid: int) -> int:
        entries = self.mem.frame_u64s(mfn)
        if level == 1:
            return self._validate_l1(mfn, entries, domid)
        base = mfn << 12
        taken = []
        for index in [i for i, entry in enumerate(entries) if entry & _PAGE_PRESENT]:
            if level == 4 and not is_guest_l4_slot(index):
                continue
            entry = entries[index]
            rc = self.get_page_from_entry(entry, level, domid, table_mfn=mfn)
            if rc:
                for i in reversed(taken):
                    self.put_page_from_entry(entries[i], level, mfn)
                return rc
            taken.append(index)
            adjusted = adjust_guest_entry(entry, level)
            if adjusted != entry:
                self.mem.write_u64(base + index * 8, adjusted)
        if level == 4:
            self.install_xen_l4_slots(mfn)
        return 0

    def _validate_l1(self, mfn: int, entries, domid: int) -> int:
        """validate_table for an L1. The common entry, a RAM frame of the table's own
        domain with no cache attributes and no conflicting type, takes its references
        inline (get_page, then get_page_type(WRITABLE) if RW); any other goes through
        get_page_from_entry. The adjusted entries are written back in one store."""
        frames = self.frames
        owner, count, type_count = frames.owner, frames.count, frames.type_count
        types, executable, n = frames.type, frames.executable, frames.nr_frames
        unmappable, writable = self.unmappable, PageType.WRITABLE
        taken = []
        adjusted = None
        for index, entry in enumerate(entries):
            if not entry & _PAGE_PRESENT:
                continue
            target = (entry & ADDR_MASK) >> 12
            if not entry & L1_DISALLOW_MASK and target < n and owner[target] == domid and \
                    count[target] and target not in unmappable and \
                    (not entry & _PAGE_RW or not type_count[target] or types[target] == writable):
                count[target] += 1
                if entry & _PAGE_RW:
                    if not type_count[target]:
                        types[target] = writable
                    type_count[target] += 1
                if not entry & _PAGE_NX:
                    executable[target] = 1      # direct mode's CPU may run code from it
            else:
                rc = self.get_page_from_entry(entry, 1, domid, table_mfn=mfn)
                if rc:
                    for i in reversed(taken):
                        self.put_page_from_entry(entries[i], 1, mfn)
                    if adjusted is not None:    # as Xen leaves them: adjusted in place
                        self.mem.write(mfn << 12, struct.pack('<512Q', *adjusted))
                    return rc
            taken.append(index)
            new = entry if entry & _PAGE_USER else entry | _PAGE_GUEST_KERNEL | _PAGE_USER
            if not new & _PAGE_GUEST_KERNEL:        # adjust_guest_entry(entry, 1), inline
                new |= _PAGE_GLOBAL | _PAGE_USER
            if new != entry:
                if adjusted is None:
                    adjusted = list(entries)
                adjusted[index] = new
        if adjusted is not None:
            self.mem.write(mfn << 12, struct.pack('<512Q', *adjusted))
        return 0

    def devalidate_table(self, mfn: int, level: int) -> None:
        entries = self.mem.frame_u64s(mfn)
        for index in [i for i, entry in enumerate(entries) if entry & _PAGE_PRESENT]:
            if level != 4 or is_guest_l4_slot(index):
                self.put_page_from_entry(entries[index], level, mfn)

    def install_xen_l4_slots(self, l4_mfn: int) -> None:
        """init_xen_l4_slots: the hypervisor's own slots, the same in every address space."""
        base = l4_mfn << 12
        for slot in range(ROOT_PAGETABLE_FIRST_XEN_SLOT, ROOT_PAGETABLE_LAST_XEN_SLOT + 1):
            self.mem.write_u64(base + slot * 8, self.xen_l4_slots.get(slot, 0))

    def mod_entry(self, table_mfn: int, index: int, level: int, new: int, domid: int,
                  preserve_ad: bool = False, pg_owner: Optional[int] = None) -> int:
        """mod_lNe_entry: replace one entry of a validated table, keeping counts right."""
        if level == 4 and not is_guest_l4_slot(index):
            return -EINVAL               # "L4 update in Xen-private area"
        word = (table_mfn << 9) + index
        q = self.mem.q
        old = q[word]
        if preserve_ad:
            new |= old & (_PAGE_ACCESSED | _PAGE_DIRTY)
        if level == 1 and old & new & _PAGE_PRESENT and not (old ^ new) & ~L1_FASTPATH_FLAGS \
                and pg_owner is None:
            # mod_l1_entry's fast path for sufficiently similar mappings: the same frame
            # with the same rights, only accessed/dirty/user/global/NX or the guest's own
            # bits differ, so the references the old entry holds serve the new one.
            if new & _L1_DISALLOW_PRIVILEGED:     # disallowed_flags(new, 1, True), inline
                return -EINVAL
            target = pte_mfn(new)
            if not new & _PAGE_NX and target < self.frames.nr_frames:   # not a device's
                self.frames.executable[target] = 1
            q[word] = adjust_guest_entry(new, 1)
            return 0
        if new & _PAGE_PRESENT:
            rc = self.get_page_from_entry(new, level, domid, pg_owner, table_mfn)
            if rc:
                return rc
            new = adjust_guest_entry(new, level)
        q[word] = new
        if old & _PAGE_PRESENT:
            self.put_page_from_entry(old, level, table_mfn)
        return 0

    def mod_entries(self, table_mfn: int, level: int, changes: Dict[int, int], domid: int) -> int:
        """Several entries of one validated table at once, all or nothing (an emulated
        instruction that rewrote more than one entry): every new entry's references are
        taken before any entry is written."""
        base = table_mfn << 12
        taken = []
        for index, new in changes.items():
            if level == 4 and not is_guest_l4_slot(index):
                rc = -EINVAL
            elif new & _PAGE_PRESENT:
                rc = self.get_page_from_entry(new, level, domid, table_mfn=table_mfn)
            else:
                rc = 0
            if rc:
                for i in taken:
                    self.put_page_from_entry(changes[i], level, table_mfn)
                return rc
            if new & _PAGE_PRESENT:
                taken.append(index)
        for index, new in changes.items():
            old = self.mem.read_u64(base + index * 8)
            self.mem.write_u64(base + index * 8, adjust_guest_entry(new, level))
            if old & _PAGE_PRESENT:
                self.put_page_from_entry(old, level, table_mfn)
        return 0


_LEVEL_OF = {PageType.L1: 1, PageType.L2: 2, PageType.L3: 3, PageType.L4: 4}
