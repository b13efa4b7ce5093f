"""The shadow audit: shadow entries checked against the guest's tables and the propagation
rules; each rule that fails comes back as a sentence naming the entry. The full audit
covers every live shadow (O(live shadows x 512)); the per-fault one only the entries the
fault wrote (O(levels)), with the full one at the end of the run and on demand."""
from typing import List

from pvshadow.shadow.abi.xen import DOMID_XEN
from pvshadow.shadow.machine import PageType
from pvshadow.shadow.paging.types import is_guest_l4_slot
from pvshadow.shadow.paging.x86 import (_PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_NX, _PAGE_PRESENT, _PAGE_RW,
                               pte_mfn)


_XEN_SLOTS = [i for i in range(512) if not is_guest_l4_slot(i)]


def audit_shadows(sp) -> List[str]:
    """The full audit: every live shadow, every entry, and the back-references."""
    problems: List[str] = []
    mem, frames = sp.mem, sp.frames
    for smfn, (gmfn, level) in sp.guest_of.items():
        where = f'shadow L{level} mfn {smfn:#x} (guest mfn {gmfn:#x})'
        if frames.owner[smfn] != DOMID_XEN or frames.type[smfn] != PageType.SHADOW:
            problems.append(f'{where}: the shadow frame is not a hypervisor shadow frame')
        if sp.shadow_of.get((gmfn, level)) != smfn:
            problems.append(f'{where}: missing from the shadow hash')
        real = sp.table_level(gmfn)
        if real is None or level > real:
            # seen at its own level, or lower through linear page-table entries
            problems.append(f'{where}: the guest frame is no longer a table of level '
                            f'{level} or above')
        guest, shadow = mem.frame_u64s(gmfn), mem.frame_u64s(smfn)
        # a not-present shadow entry agrees with any guest entry: only the present ones,
        # and an L4's Xen slots, have anything to check
        present = [i for i, sentry in enumerate(shadow) if sentry & _PAGE_PRESENT]
        for index in sorted(set(present).union(_XEN_SLOTS)) if level == 4 else present:
            problems.extend(_check_entry(sp, smfn, gmfn, level, index, shadow[index],
                                         guest[index]))
    for target, refs in sp.maps_of.items():
        for maddr in refs:
            sentry = mem.read_u64(maddr)
            if not sentry & _PAGE_PRESENT or pte_mfn(sentry) != target:
                problems.append(f'mappings of mfn {target:#x}: stale back-reference at {maddr:#x}')
    return problems


def audit_entries(sp, maddrs, check=None) -> List[str]:
    """The cheap audit after a fault (Xen's per-operation audit): only the shadow entries
    it wrote, each against its guest entry and the propagation rules (check: a paging
    mode's own rules, _check_entry's by default)."""
    check = check or _check_entry
    problems: List[str] = []
    q = sp.mem.q
    for maddr in maddrs:
        smfn, index = maddr >> 12, (maddr & 0xFFF) >> 3
        owner = sp.guest_of.get(smfn)
        if owner is None:
            problems.append(f'shadow entry {maddr:#x}: not in a live shadow')
            continue
        gmfn, level = owner
        problems.extend(check(sp, smfn, gmfn, level, index, q[maddr >> 3],
                              q[(gmfn << 9) + index]))
    return problems


def _check_entry(sp, smfn: int, gmfn: int, level: int, index: int, sentry: int,
                 gentry: int) -> List[str]:
    """One shadow entry against its guest entry and the rules of _sh_propagate."""
    where = f'shadow L{level} mfn {smfn:#x} (guest mfn {gmfn:#x})'
    maddr = (smfn << 12) + index * 8
    if level == 4 and not is_guest_l4_slot(index):
        if sentry != sp.xen_l4_slots.get(index, 0):
            return [f'{where} slot {index}: Xen slot differs from the hypervisor\'s']
        return []
    if not sentry & _PAGE_PRESENT:
        return []
    at = f'{where} entry {index}'
    if not gentry & _PAGE_PRESENT:
        return [f'{at}: shadow present but guest entry not present']
    problems = []
    if not gentry & _PAGE_ACCESSED:
        problems.append(f'{at}: shadow present before the guest entry was accessed')
    if sentry & _PAGE_RW and not gentry & _PAGE_RW:
        problems.append(f'{at}: shadow grants write access but guest does not')
    if gentry & _PAGE_NX and not sentry & _PAGE_NX:
        problems.append(f'{at}: shadow grants execute but guest does not')
    if level > 1:
        child = pte_mfn(sentry)
        if sp.shadow_of.get((pte_mfn(gentry), level - 1)) != child:
            problems.append(f'{at}: shadow points at mfn {child:#x}, not the shadow of '
                            f'guest table {pte_mfn(gentry):#x}')
        elif maddr not in sp.parents.get(child, ()):
            problems.append(f'{at}: missing back-reference from its child shadow')
        return problems
    target = pte_mfn(sentry)
    if target != pte_mfn(gentry):
        problems.append(f'{at}: shadow maps mfn {target:#x}, guest maps {pte_mfn(gentry):#x}')
    if not sp.may_reach(target):
        problems.append(f'{at}: shadow maps mfn {target:#x}, which the domain does not own')
    if sentry & _PAGE_RW:
        if not gentry & _PAGE_DIRTY:
            problems.append(f'{at}: shadow writable before the guest entry is dirty')
        if sp.table_level(target) is not None:
            problems.append(f'{at}: shadow maps page table mfn {target:#x} writable')
        allowed = sp._sh_propagate(gentry)
        if not allowed & _PAGE_RW:
            problems.append(f'{at}: shadow writable though the propagation rules '
                            'forbid it')
    if maddr not in sp.maps_of.get(target, ()):
        problems.append(f'{at}: missing from the mappings of mfn {target:#x}')
    return problems


# --- translated guests (shadow.paging.translated): one shadow set per altp2m view ------------
def audit_translated(sp) -> List[str]:
    """Every live shadow entry, in every view, against the guest entry and the view's
    p2m: an upper entry points at the shadow of the table its gfn names in that view; a
    leaf maps that view's effective frame, with no right the rules withhold."""
    problems: List[str] = []
    q = sp.mem.q
    for idx in sp._each_view():
        for smfn, (gmfn, level) in sp.guest_of.items():
            for index in range(512):
                if level == 4 and not is_guest_l4_slot(index):
                    continue
                sentry = q[(smfn << 9) + index]
                if sentry & _PAGE_PRESENT:
                    problems += [f'view {idx}: {p}' for p in _check_translated(
                        sp, smfn, gmfn, level, index, sentry, q[(gmfn << 9) + index])]
    return problems


def audit_translated_entries(sp, maddrs) -> List[str]:
    """The per-fault audit of a translated guest: the entries one fill wrote, in the
    active view."""
    return audit_entries(sp, maddrs, _check_translated)


def _check_translated(sp, smfn, gmfn, level, index, sentry, gentry) -> List[str]:
    from pvshadow.shadow.abi.p2m import p2m_ram_rw
    from pvshadow.shadow.abi.xen import DOMID_COW
    from pvshadow.shadow.mem_access import SHADOW_RIGHTS
    if not sentry & _PAGE_PRESENT:
        return []
    at = f'shadow L{level} {smfn:#x} (guest {gmfn:#x}) entry {index}'
    if not gentry & _PAGE_PRESENT or not gentry & _PAGE_ACCESSED:
        return [f'{at}: present, but the guest entry is not present and accessed']
    gfn = pte_mfn(gentry)
    entry = sp.p2m.lookup(sp.view, gfn)
    problems = []
    if sentry & _PAGE_RW and not gentry & _PAGE_RW:
        problems.append(f'{at}: writable where the guest entry is not')
    if level > 1:
        if sp.shadow_of.get((entry.mfn, level - 1)) != pte_mfn(sentry):
            problems.append(f'{at}: does not point at the shadow of gfn {gfn:#x} '
                            f'(mfn {entry.mfn:#x} in view {sp.view})')
        return problems
    target = pte_mfn(sentry)
    if target != entry.mfn:
        problems.append(f'{at}: maps mfn {target:#x}, but gfn {gfn:#x} is mfn '
                        f'{entry.mfn:#x} in view {sp.view}')
    if sentry & _PAGE_RW and (entry.type != p2m_ram_rw or sp.is_guest_table(target) or
                              not SHADOW_RIGHTS[entry.access][1] or
                              not gentry & _PAGE_DIRTY):
        problems.append(f'{at}: writable, but the rules withhold write from mfn '
                        f'{target:#x} ({entry.type}, access {entry.access})')
    if not SHADOW_RIGHTS[entry.access][0]:
        problems.append(f'{at}: present under access {entry.access}')
    if sp.frames.owner[target] not in (sp.domid, DOMID_COW):
        problems.append(f'{at}: maps mfn {target:#x}, which is not the domain\'s')
    return problems
