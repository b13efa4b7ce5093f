"""The shadow audit: every live shadow entry checked against the guest's tables and the
propagation rules. Each rule that fails comes back as a sentence naming the entry."""
from typing import List

from pvshadow.shadow.abi.xen import DOMID_XEN
from pvshadow.shadow.machine import PageType
from pvshadow.shadow.paging.types import is_guest_l4_slot
from pvshadow.shadow.paging.x86 import (_PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_NX, _PAGE_PRESENT, _PAGE_RW,
                               pte_mfn)


def audit_shadows(sp) -> List[str]:
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
        guest = mem.frame_u64s(gmfn)
        for index, sentry in enumerate(mem.frame_u64s(smfn)):
            maddr = (smfn << 12) + index * 8
            if level == 4 and not is_guest_l4_slot(index):
                if sentry != sp.xen_l4_slots.get(index, 0):
                    problems.append(f'{where} slot {index}: Xen slot differs from the hypervisor\'s')
                continue
            if not sentry & _PAGE_PRESENT:
                continue
            gentry = guest[index]
            at = f'{where} entry {index}'
            if not gentry & _PAGE_PRESENT:
                problems.append(f'{at}: shadow present but guest entry not present')
                continue
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
                continue
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
    for target, refs in sp.maps_of.items():
        for maddr in refs:
            sentry = mem.read_u64(maddr)
            if not sentry & _PAGE_PRESENT or pte_mfn(sentry) != target:
                problems.append(f'mappings of mfn {target:#x}: stale back-reference at {maddr:#x}')
    return problems
