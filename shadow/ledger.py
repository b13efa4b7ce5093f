"""The frame ledger: who holds each reference on each frame, recomputed from first
principles and checked against the frame table.

Every general reference and every type reference a frame carries has a holder the
hypervisor can name: the allocation itself, an entry of a validated page table, a pin, a
vCPU's root, its GDT or LDT, or a writable hold the hypervisor took to write into the
frame (shadow.paging.types.get_writable_frame). The ledger lists them; the audit
recomputes each frame's refcount, type count and type from that list and reports every
frame where the frame table disagrees, every reference that crosses an owner (except an
L1 entry of a domain the XSM policy lets map that owner's frames: the control domain, or
a domain whose target the owner is), and every domain whose accounting (tot_pages, p2m)
does not add up. An empty list means the isolation rules hold: no guest can reach,
through its tables or the hypervisor's writes, a frame it may not, and no page table is
writable. (Xen's own audit_domains,
without its locks.)
"""
from array import array
from collections import Counter, defaultdict
from typing import Dict, Iterable, List, NamedTuple, Optional

from pvshadow.shadow.abi.p2m import p2m_ram_shared as _RAM_SHARED
from pvshadow.shadow.abi.xen import DOMID_COW, DOMID_INVALID, DOMID_XEN, INVALID_M2P_ENTRY
from pvshadow.shadow.machine import PT_TYPES, PageType
from pvshadow.shadow.paging.types import _PAGE_GNTTAB, is_guest_l4_slot
from pvshadow.shadow.paging.x86 import _PAGE_PRESENT, _PAGE_RW, ADDR_MASK, pte_mfn

_LEVEL = {PageType.L1: 1, PageType.L2: 2, PageType.L3: 3, PageType.L4: 4}
_BELOW = {2: PageType.L1, 3: PageType.L2, 4: PageType.L3}
_TYPE_OF = {2: PageType.L2, 3: PageType.L3, 4: PageType.L4}


class Ref(NamedTuple):
    holder: str                         # who holds it, in words
    domid: int                          # the domain on whose behalf it is held
    ptype: Optional[PageType]           # the type reference that comes with it, if any


def frame_ledger(frames, types, domains: Iterable) -> Dict[int, List[Ref]]:
    """mfn -> every reference the hypervisor can account for."""
    refs: Dict[int, List[Ref]] = defaultdict(list)
    for mfn in in_use(frames):
        if frames.allocated[mfn]:
            refs[mfn].append(Ref('allocation', frames.owner[mfn], None))
        if frames.pinned[mfn]:
            refs[mfn].append(Ref('pin', frames.owner[mfn], PageType(frames.type[mfn])))
        if frames.type_count[mfn] and frames.type[mfn] in _LEVEL:
            _table_refs(refs, frames, types.mem, mfn, _LEVEL[frames.type[mfn]],
                        frames.owner[mfn])
    for mfn, holders in types.holds.items():
        for holder, n in holders.items():
            refs[mfn].extend([Ref(holder, frames.owner[mfn], PageType.WRITABLE)] * n)
    for d in domains:
        for v in d.vcpus:
            name = f'd{d.domid}v{v.vcpu_id}'
            root_type = None if getattr(d, 'translated', False) else PageType.L4
            for root, what in ((v.guest_table, 'guest_table'), (v.guest_table_user, 'guest_table_user')):
                if root:
                    refs[root].append(Ref(f'{name} {what}', d.domid, root_type))
            for mfn in v.gdt_frames:
                refs[mfn].append(Ref(f'{name} GDT', d.domid, PageType.SEG_DESC))
            for page, mfn in v.ldt_frames.items():
                refs[mfn].append(Ref(f'{name} LDT page {page}', d.domid, PageType.SEG_DESC))
        for mfn, holder, typed in _mapping_refs(d):
            refs[mfn].append(Ref(holder, d.domid, PageType.WRITABLE if typed else None))
    for mfn, holder in _sharing_refs(domains):
        refs[mfn].append(Ref(holder, DOMID_COW, PageType.SHARED))
    return refs


def _sharing_refs(domains):
    """(mfn, holder) for the references shared frames' reverse maps hold."""
    for d in domains:
        host = getattr(d, 'host', None)
        if host is not None:
            return list(host.sharing.ledger_refs())
    return []


def _mapping_refs(d):
    """(mfn, holder, writable) for the references d's grant mappings and IOMMU entries
    hold on (usually another domain's) frames."""
    from pvshadow.shadow.grant_table import ledger_refs
    yield from ledger_refs(d)
    yield from d.iommu.ledger_refs()


def in_use(frames) -> List[int]:
    """Frames with an owner or a reference of any kind (the rest are plainly free)."""
    owner, count, type_count, allocated = \
        frames.owner, frames.count, frames.type_count, frames.allocated
    return [mfn for mfn in frames.touched() if owner[mfn] != DOMID_INVALID or count[mfn] or
            type_count[mfn] or allocated[mfn]]


def _table_refs(refs, frames, mem, table: int, level: int, domid: int) -> None:
    for index, entry in enumerate(mem.frame_u64s(table)):
        if not entry & _PAGE_PRESENT or (level == 4 and not is_guest_l4_slot(index)):
            continue
        where = f'L{level} table {table:#x} entry {index}'
        target = pte_mfn(entry)
        if level == 1:
            if entry & _PAGE_GNTTAB or target >= frames.nr_frames:
                continue                 # held by its maptrack record / an I/O frame
            refs[target].append(
                Ref(where, domid, PageType.WRITABLE if entry & _PAGE_RW else None))
        elif target != table:            # a linear entry to its own table holds nothing
            refs[target].append(Ref(where, domid, _upper_ref_type(frames, target, level)))


def _upper_ref_type(frames, target: int, level: int):
    """The type an upper entry's reference holds: the level below, or its own level for
    a linear page-table entry (shadow.paging.types.get_linear_pagetable)."""
    own = _TYPE_OF[level]
    n = len(frames.type)
    return own if 0 <= target < n and frames.type[target] == own else _BELOW[level]


def audit_frames(frames, types, domains) -> List[str]:
    """Every way the frame table disagrees with the ledger, as sentences. The counts are
    recomputed into flat arrays and compared whole; only frames that disagree are looked
    at one by one (with their holders named), so the audit is cheap enough to run after
    every hypercall. The L1 tables that map only their own domain's RAM (nearly all of
    them) are counted together, as arrays (numpy); every other entry one by one."""
    import numpy as np                   # here: inspecting one frame needs no numpy
    domains = list(domains)
    n = frames.nr_frames
    owner = frames.owner
    # References other than allocations and bulk-counted L1 entries, one at a time.
    count = array('I', bytes(4 * n))
    type_count = array('I', bytes(4 * n))
    claimed: Dict[int, set] = defaultdict(set)        # mfn -> types referenced as
    problems: List[str] = []

    def take(mfn: int, domid: int, ptype, holder, foreign_ok: bool = False) -> None:
        if not 0 <= mfn < n:
            problems.append(f'{holder()} names mfn {mfn:#x}, past the end of memory')
            return
        count[mfn] += 1
        if owner[mfn] != domid and not (foreign_ok and types.may_map_foreign(domid, owner[mfn])):
            problems.append(f'{_at(frames, mfn)}: referenced on behalf of d{domid} by {holder()}')
        if ptype is not None:
            type_count[mfn] += 1
            claimed[mfn].add(ptype)

    if not frames.fresh_is_pristine():
        problems.append('a frame never handed out has an owner, a reference or a type')
    mem = types.mem
    from pvshadow.shadow.grant_table import host_entries
    grant_entries = {}
    for d in domains:
        grant_entries.update(host_entries(d))
    for mfn in _indices(frames.pinned, 1):
        take(mfn, owner[mfn], PageType(frames.type[mfn]), lambda: 'a pin')
    mapped_writable = bytearray(n)          # L1 entries' typed references, as a column
    tables = sorted(m for t in PT_TYPES for m in _indices(frames.type, t)
                    if frames.type_count[m])
    owner_np = _column(owner, np.uint16)
    bulk = _OwnL1s(mem, owner_np, n, [m for m in tables if frames.type[m] == PageType.L1])
    for mfn in tables:
        if mfn in bulk.tables:
            continue
        level, domid = _LEVEL[frames.type[mfn]], owner[mfn]
        entries = mem.frame_u64s(mfn)
        present = np.flatnonzero(np.frombuffer(mem.read(mfn << 12, 4096), np.uint64)
                                 & _PAGE_PRESENT).tolist()
        for index in present:
            entry = entries[index]
            target = (entry & ADDR_MASK) >> 12
            if level > 1:
                if target == mfn or level == 4 and not is_guest_l4_slot(index):
                    continue                  # a linear entry to its own table; Xen's slots
                typed = _upper_ref_type(frames, target, level)
                if typed is _TYPE_OF[level] and entry & _PAGE_RW:
                    problems.append(f'{_at(frames, mfn)} entry {index}: a writable linear '
                                    f'page-table entry')
            elif entry & _PAGE_GNTTAB:
                if grant_entries.get((mfn << 12) + index * 8) != target:
                    problems.append(f'{_at(frames, mfn)} entry {index}: a grant entry '
                                    f'for mfn {target:#x} with no live host mapping')
                continue                 # its reference is its maptrack record's
            elif target < n and owner[target] == domid:
                count[target] += 1       # the common case: an own frame, without a call
                if entry & _PAGE_RW:
                    type_count[target] += 1
                    mapped_writable[target] = 1
                continue
            elif target >= n and types.iomem_permitted(domid, target):
                continue                 # a device's registers: no reference
            else:
                typed = PageType.WRITABLE if entry & _PAGE_RW else None
            if 0 <= target < n and owner[target] == domid:
                count[target] += 1
                if typed is not None:
                    type_count[target] += 1
                    claimed[target].add(typed)
            else:                             # only an L1 entry may map a foreign frame
                take(target, domid, typed, lambda: f'L{level} table {mfn:#x} entry {index}',
                     foreign_ok=level == 1)
    for mfn, holders in types.holds.items():
        for holder, times in holders.items():
            for _ in range(times):
                take(mfn, owner[mfn] if 0 <= mfn < n else -1, PageType.WRITABLE, lambda: holder)
    for d in domains:
        for v in d.vcpus:
            name = f'd{d.domid}v{v.vcpu_id}'
            root_type = None if getattr(d, 'translated', False) else PageType.L4
            for root in (v.guest_table, v.guest_table_user):
                if root:
                    take(root, d.domid, root_type, lambda: f'{name} root')
            for mfn in list(v.gdt_frames) + list(v.ldt_frames.values()):
                take(mfn, d.domid, PageType.SEG_DESC, lambda: f'{name} GDT/LDT')
        for mfn, holder, typed in _mapping_refs(d):
            # a grant or IOMMU mapping holds the reference on behalf of the frame's owner
            take(mfn, owner[mfn] if 0 <= mfn < n else -1,
                 PageType.WRITABLE if typed else None, lambda: holder)
    for mfn, holder in _sharing_refs(domains):
        take(mfn, DOMID_COW, PageType.SHARED, lambda: holder)
    allocated = _column(frames.allocated, np.uint8)
    want = np.frombuffer(count, np.uint32) + bulk.count + allocated
    want_t = np.frombuffer(type_count, np.uint32) + bulk.type_count
    have, have_t = _column(frames.count, np.uint32), _column(frames.type_count, np.uint32)
    wrong = np.flatnonzero((want != have) | (want_t != have_t))
    if len(wrong):
        ledger = frame_ledger(frames, types, domains)
        for mfn in wrong.tolist():
            held = ledger.get(mfn, ())
            problems.append(f'{_at(frames, mfn)}: refcount {have[mfn]}, type count '
                            f'{have_t[mfn]}; held by {want[mfn]} ({_names(held) or "nothing"}), '
                            f'{want_t[mfn]} of them typed')
    mapped_writable = np.frombuffer(mapped_writable, np.uint8).astype(bool) | bulk.writable
    type_column = _column(frames.type, np.uint8)
    for mfn in np.flatnonzero(mapped_writable & (type_column != PageType.WRITABLE)).tolist():
        claimed[mfn].add(PageType.WRITABLE)   # (the rest agree with their frames' type)
    for mfn, kinds in claimed.items():
        if mapped_writable[mfn]:
            kinds.add(PageType.WRITABLE)
        if kinds != {frames.type[mfn]}:
            problems.append(f'{_at(frames, mfn)}: referenced as '
                            f'{", ".join(sorted(k.name for k in kinds))}')
        elif frames.type[mfn] in PT_TYPES and PageType.WRITABLE in kinds:
            problems.append(f'{_at(frames, mfn)}: a page table with a writable reference')
    by_id = {d.domid for d in domains}
    owned = Counter()                   # domid -> frames it owns with a reference left
    for lo, hi in frames.touched_ranges():
        domids, times = np.unique(owner_np[lo:hi], return_counts=True)
        owned.update(dict(zip(domids.tolist(), times.tolist())))
        # An allocated frame's count includes its allocation (the comparison above holds
        # it to that), so only a frame without one can be owned and unreferenced.
        loose = (allocated[lo:hi] == 0) & (owner_np[lo:hi] != DOMID_INVALID) & \
            (have[lo:hi] == 0)
        for mfn in (np.flatnonzero(loose) + lo).tolist():
            problems.append(f'{_at(frames, mfn)}: free but still owned')
            owned[owner[mfn]] -= 1
    owned.pop(DOMID_INVALID, None)
    for mfn in np.flatnonzero(owner_np == DOMID_XEN).tolist():
        refs = frames.count[mfn]
        if refs and (refs != 1 or not frames.allocated[mfn] or frames.type_count[mfn]):
            problems.append(f'{_at(frames, mfn)}: a hypervisor frame with refcount {refs}, '
                            f'type count {frames.type_count[mfn]}')
    for mfn in np.flatnonzero(owner_np == DOMID_COW).tolist():
        if frames.count[mfn] and not frames.allocated[mfn]:
            problems.append(f'{_at(frames, mfn)}: a shared frame without its allocation')
    for who in set(owned) - by_id - {DOMID_XEN, DOMID_COW}:
        for mfn in np.flatnonzero(owner_np == who).tolist():
            if frames.count[mfn]:
                problems.append(f'{_at(frames, mfn)}: owned by no domain on this host')
    for d in domains:
        xenheap = sum(1 for m in d.xenheap_frames if owner[m] == d.domid and frames.count[m])
        problems.extend(_domain_accounts(d, frames, owned[d.domid] - xenheap))
    return problems


def _column(column, dtype):
    """A copy of a frame-table column as a numpy array (a copy: a view would pin the
    column's buffer, which must stay free to change)."""
    import numpy as np
    return np.frombuffer(column, dtype).copy()


class _OwnL1s:
    """The L1 tables every present entry of which maps a RAM frame of the table's own
    domain, with no grant entry among them: each entry is one reference on its target
    (and a WRITABLE one if RW), counted for all such tables at once."""

    def __init__(self, mem, owner, n: int, l1s: List[int]):
        import numpy as np
        self.count = self.type_count = 0
        self.writable = False
        self.tables = set()
        if not l1s:
            return
        entries = np.frombuffer(b''.join(mem.view[m << 12:(m + 1) << 12] for m in l1s),
                                np.uint64).reshape(len(l1s), 512)
        present = (entries & _PAGE_PRESENT) != 0
        targets = (entries & ADDR_MASK) >> 12
        in_ram = targets < n
        own = owner[np.where(present & in_ram, targets, 0)] == \
            owner[np.array(l1s)][:, None]
        clean = ~(present & ((entries & _PAGE_GNTTAB) != 0)).any(axis=1) & \
            (~present | (in_ram & own)).all(axis=1)
        if not clean.any():
            return
        self.tables = {m for m, ok in zip(l1s, clean.tolist()) if ok}
        mapped = present & clean[:, None]
        writable = mapped & ((entries & _PAGE_RW) != 0)
        self.count = np.bincount(targets[mapped].astype(np.intp), minlength=n)
        self.type_count = np.bincount(targets[writable].astype(np.intp), minlength=n)
        self.writable = self.type_count != 0


def _indices(column, value: int, lo: int = 0, hi: Optional[int] = None):
    """Where a flat column holds value, found by the column's own (C) search."""
    hi = len(column) if hi is None else hi
    index = column.index
    i = lo
    while True:
        try:
            i = index(value, i, hi)
        except ValueError:
            return
        yield i
        i += 1


def _at(frames, mfn: int) -> str:
    return f'mfn {mfn:#x} (owner {_owner(frames.owner[mfn])}, ' \
        f'type {PageType(frames.type[mfn]).name})'


def _domain_accounts(d, frames, owned: int) -> List[str]:
    """tot_pages counts every frame the domain owns outside the xenheap (owned, counted
    by the caller): allocated, or given back but still referenced (Xen frees, and
    uncharges, only at the last reference)."""
    problems = []
    owner = frames.owner
    if not d.dying and owned != d.tot_pages:
        problems.append(f'd{d.domid}: tot_pages {d.tot_pages}, but it owns {owned} frames')
    if d.tot_pages > d.max_pages:
        problems.append(f'd{d.domid}: tot_pages {d.tot_pages} over max_pages {d.max_pages}')
    shared = getattr(d, 'p2m_state', None)
    shared = {} if shared is None else shared.types
    n, reverse, domid = frames.nr_frames, frames.pfn, d.domid   # d.pfn_of's column
    p2m = d.p2m
    if p2m and not shared:
        import numpy as np
        # nothing shared: the owner and reverse map of every frame at once, and pfn by
        # pfn only if something disagrees (a hole included)
        mfns = _column(p2m, np.uint64)
        if (mfns < n).all():
            mfns = mfns.astype(np.intp)
            if (_column(owner, np.uint16)[mfns] == domid).all() and \
                    (_column(reverse, np.uint32)[mfns] == np.arange(len(mfns))).all():
                p2m = ()
    for pfn, mfn in enumerate(p2m):
        if mfn == INVALID_M2P_ENTRY or shared and shared.get(pfn) == _RAM_SHARED:
            continue
        if not 0 <= mfn < n or owner[mfn] != domid:
            problems.append(f'd{d.domid}: p2m[{pfn:#x}] = {mfn:#x}, a frame it does not own')
        elif reverse[mfn] != pfn:
            problems.append(f'd{d.domid}: p2m[{pfn:#x}] = {mfn:#x}, reverse map says '
                            f'{d.pfn_of.get(mfn)}')
    for mfn in d.xenheap_frames:
        if frames.owner[mfn] != d.domid:
            problems.append(f'd{d.domid}: its shared frame {mfn:#x} changed owner')
    return problems


def _owner(owner: int) -> str:
    return {DOMID_XEN: 'xen', DOMID_INVALID: 'none'}.get(owner, f'd{owner}')


def _names(held) -> str:
    return ', '.join(r.holder for r in held)
