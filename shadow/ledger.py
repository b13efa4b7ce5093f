"""The frame ledger: who holds each reference on each frame, recomputed from first
principles and checked against the frame table.

Every general reference and every type reference a frame carries has a holder the
hypervisor can name: the allocation itself, an entry of a validated page table, a pin, a
vCPU's root, its GDT or LDT, or a writable hold the hypervisor took to write into the
frame (shadow.paging.types.get_writable_frame). The ledger lists them; the audit
recomputes each frame's refcount, type count and type from that list and reports every
frame where the frame table disagrees, every reference that crosses an owner, and every
domain whose accounting (tot_pages, p2m) does not add up. An empty list means the
isolation rules hold: no guest can reach, through its tables or the hypervisor's writes,
a frame it does not own, and no page table is writable. (Xen's own audit_domains,
without its locks.)
"""
from collections import defaultdict
from typing import Dict, Iterable, List, NamedTuple, Optional

from shadow.abi.xen import DOMID_INVALID, DOMID_XEN, INVALID_M2P_ENTRY
from shadow.machine import PT_TYPES, PageType
from shadow.paging.types import is_guest_l4_slot
from shadow.paging.x86 import _PAGE_PRESENT, _PAGE_RW, pte_mfn

_LEVEL = {PageType.L1: 1, PageType.L2: 2, PageType.L3: 3, PageType.L4: 4}
_BELOW = {2: PageType.L1, 3: PageType.L2, 4: PageType.L3}


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
            _table_refs(refs, types.mem, mfn, _LEVEL[frames.type[mfn]], frames.owner[mfn])
    for mfn, holders in types.holds.items():
        for holder, n in holders.items():
            refs[mfn].extend([Ref(holder, frames.owner[mfn], PageType.WRITABLE)] * n)
    for d in domains:
        for v in d.vcpus:
            name = f'd{d.domid}v{v.vcpu_id}'
            for root, what in ((v.guest_table, 'guest_table'), (v.guest_table_user, 'guest_table_user')):
                if root:
                    refs[root].append(Ref(f'{name} {what}', d.domid, PageType.L4))
            for mfn in v.gdt_frames:
                refs[mfn].append(Ref(f'{name} GDT', d.domid, PageType.SEG_DESC))
            for page, mfn in v.ldt_frames.items():
                refs[mfn].append(Ref(f'{name} LDT page {page}', d.domid, PageType.SEG_DESC))
    return refs


def in_use(frames) -> List[int]:
    """Frames with an owner or a reference of any kind (the rest are plainly free)."""
    return [mfn for mfn, (owner, count, type_count, allocated) in enumerate(zip(
        frames.owner, frames.count, frames.type_count, frames.allocated))
        if owner != DOMID_INVALID or count or type_count or allocated]


def _table_refs(refs, mem, table: int, level: int, domid: int) -> None:
    for index, entry in enumerate(mem.frame_u64s(table)):
        if not entry & _PAGE_PRESENT or (level == 4 and not is_guest_l4_slot(index)):
            continue
        where = f'L{level} table {table:#x} entry {index}'
        if level == 1:
            refs[pte_mfn(entry)].append(
                Ref(where, domid, PageType.WRITABLE if entry & _PAGE_RW else None))
        else:
            refs[pte_mfn(entry)].append(Ref(where, domid, _BELOW[level]))


def audit_frames(frames, types, domains) -> List[str]:
    """Every way the frame table disagrees with the ledger, as sentences."""
    domains = list(domains)
    by_id = {d.domid: d for d in domains}
    refs = frame_ledger(frames, types, domains)
    problems: List[str] = []
    for mfn, held in refs.items():
        if not frames.is_valid(mfn):
            problems.append(f'{held[0].holder} names mfn {mfn:#x}, past the end of memory')
    for mfn in sorted(set(in_use(frames)) | {m for m in refs if frames.is_valid(m)}):
        held = refs.get(mfn, ())
        owner, count, type_count = frames.owner[mfn], frames.count[mfn], frames.type_count[mfn]
        at = f'mfn {mfn:#x} (owner {_owner(owner)}, type {PageType(frames.type[mfn]).name})'
        if not held:
            if count or type_count:
                problems.append(f'{at}: refcount {count}, type count {type_count}, '
                                'but nothing holds a reference')
            elif owner != DOMID_INVALID:
                problems.append(f'{at}: free but still owned')
            continue
        if count != len(held):
            problems.append(f'{at}: refcount {count}, held by {len(held)}: {_names(held)}')
        typed = [r for r in held if r.ptype is not None]
        if type_count != len(typed):
            problems.append(f'{at}: type count {type_count}, type references held by '
                            f'{len(typed)}: {_names(typed)}')
        wrong = [r for r in typed if r.ptype != frames.type[mfn]]
        if wrong:
            problems.append(f'{at}: {_names(wrong)} hold {wrong[0].ptype.name} references')
        crossing = [r for r in held if r.domid != owner]
        if crossing:
            problems.append(f'{at}: referenced on behalf of another domain by {_names(crossing)}')
        if owner == DOMID_XEN:
            if len(held) != 1 or held[0].holder != 'allocation':
                problems.append(f'{at}: a hypervisor frame referenced by {_names(held)}')
        elif owner not in by_id:
            problems.append(f'{at}: owned by no domain on this host')
        if frames.type[mfn] in PT_TYPES and type_count and \
                any(r.ptype == PageType.WRITABLE for r in held):
            problems.append(f'{at}: a page table with a writable reference')
    for d in domains:
        problems.extend(_domain_accounts(d, frames))
    return problems


def _domain_accounts(d, frames) -> List[str]:
    problems = []
    owned = [m for m, (owner, allocated) in enumerate(zip(frames.owner, frames.allocated))
             if owner == d.domid and allocated and m not in d.xenheap_frames]
    if len(owned) != d.tot_pages:
        problems.append(f'd{d.domid}: tot_pages {d.tot_pages}, but it owns {len(owned)} '
                        'allocated frames')
    if d.tot_pages > d.max_pages:
        problems.append(f'd{d.domid}: tot_pages {d.tot_pages} over max_pages {d.max_pages}')
    for pfn, mfn in enumerate(d.p2m):
        if mfn == INVALID_M2P_ENTRY:
            continue
        if not frames.is_valid(mfn) or frames.owner[mfn] != d.domid:
            problems.append(f'd{d.domid}: p2m[{pfn:#x}] = {mfn:#x}, a frame it does not own')
        elif d.pfn_of.get(mfn) != pfn:
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
