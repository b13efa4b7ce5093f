"""What a debugger or tracer may ask of a domain: registers, guest memory, the guest walk,
the shadow walk and why it lacks rights, a frame's bookkeeping, counters. Front ends use
these (and Domain's breakpoint/trace API); none of them touches the CPU directly."""
from typing import List

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import ACCESS_NAMES, DOMID_XEN
from pvshadow.shadow.ledger import frame_ledger
from pvshadow.shadow.machine import PageType
from pvshadow.shadow.paging.x86 import (LEVEL_NAMES, PFEC_INSN, PFEC_WRITE, _PAGE_NX, _PAGE_PRESENT,
                               _PAGE_RW, flags_str, pte_mfn, table_index)
from pvshadow.shadow.vcpu import GuestFault


def registers(d) -> dict:
    return d.cpu.dump()


def symbolize(d, address: int) -> str:
    """'name+0x12' for the nearest symbol of the domain's image at or below address (the
    address alone when none is known)."""
    image = getattr(d, 'image', None)
    symbols = image.symbols if image is not None else {}
    below = [(value, name) for name, value in symbols.items() if value <= address]
    if not below or address >= image.end:
        return f'{address:#x}'
    value, name = max(below)
    return f'{address:#x} <{name}+{address - value:#x}>' if address != value else \
        f'{address:#x} <{name}>'


def vcpu_registers(v) -> dict:
    """One vCPU's registers: live when it is on the CPU, else from its saved context
    ({} for a vCPU that has never been brought up). vCPU 0 before its first entry shows
    what the guest will start with: start_info's entry point, stack and rsi, on the flat
    kernel selectors with interrupts enabled."""
    if v.cpu.guest is v:
        return registers(v.domain)
    if not v.entered:
        entry = v.domain.entry
        if v.vcpu_id or entry is None:
            return {}
        rip, rsp, rsi = entry
        regs = dict.fromkeys(('rax', 'rbx', 'rcx', 'rdx', 'rdi', 'rbp', 'r8', 'r9', 'r10',
                              'r11', 'r12', 'r13', 'r14', 'r15', 'cr2', 'fs_base',
                              'gs_base'), 0)
        regs.update(rip=rip, rsp=rsp, rsi=rsi, rflags=0x202, cs=xen.FLAT_KERNEL_CS64,
                    ss=xen.FLAT_KERNEL_SS64, cr3=v.guest_table << 12)
        return regs
    if v.saved_state is not None:
        from pvshadow.shadow.cpu import context_registers
        return context_registers(v.saved_state)
    return {}


def read_virtual(d, va: int, size: int) -> bytes:
    """Guest memory through the running vCPU's current tables; raises GuestFault."""
    return d.running_vcpu().copy_from_guest(va, size)


def write_virtual(d, va: int, data: bytes) -> None:
    """A debugger's write: through the guest's tables, under a transient writable
    reference, so refused for page tables, descriptor pages and frames the domain does
    not own (those change only through the hypervisor's rules)."""
    v = d.running_vcpu()
    pos = 0
    while pos < len(data):
        chunk = min(len(data) - pos, 0x1000 - ((va + pos) & 0xFFF))
        gw = d.paging.debug_walk(v, va + pos)
        if not gw.ok:
            raise GuestFault(f'{va + pos:#x}: {gw.reason}')
        if not d.types.write_frame(gw.maddr, data[pos:pos + chunk], d.domid):
            raise GuestFault(f'{va + pos:#x} is a page table, a descriptor page or not the '
                             'domain\'s')
        d.paging.guest_wrote(gw.maddr, chunk)
        pos += chunk
    d.cpu.flush_code_cache()


def walk_report(d, va: int, access: str = 'read') -> List[str]:
    """Each level of the guest walk: table frame, index, entry, flags; where it stopped."""
    v = d.running_vcpu()
    want = {'read': 0, 'write': PFEC_WRITE, 'fetch': PFEC_INSN}[access]
    gw = d.paging.debug_walk(v, va, want)
    mode = 'kernel' if v.kernel_mode else 'user'
    lines = [f'guest walk of {va:#x} ({access}, {mode} tables, root mfn {v.current_table():#x}):']
    for lv in gw.levels:
        lines.append(f'  {LEVEL_NAMES[lv.level]} mfn {lv.table_mfn:#x} [{lv.index:3}] = '
                     f'{lv.entry:#018x}  {flags_str(lv.entry)}')
    if gw.ok:
        lines.append(f'  -> mfn {gw.mfn:#x} (maddr {gw.maddr:#x}), writable: '
                     f'{"yes" if gw.writable else "no"}, executable: '
                     f'{"yes" if gw.executable else "no"}')
    else:
        lines.append(f'  stopped at {gw.reason}; the guest would see #PF error code '
                     f'{gw.pfec:#x}')
    return lines


def shadow_report(d, va: int) -> List[str]:
    """Each level of the shadow walk the CPU makes, and for the L1 entry which rights the
    shadow lacks compared with the guest's entry, and why."""
    sp = d.paging
    if sp.name != 'shadow':
        return [f'{sp.name} paging: the CPU walks the guest\'s own tables (see walk)']
    table = d.cpu.reg('cr3') >> 12
    lines = [f'shadow walk of {va:#x} (shadow root mfn {table:#x}, '
             f'shadow of guest L4 {sp.guest_of.get(table, ("?",))[0]:#x}):']
    gw = d.paging.debug_walk(d.running_vcpu(), va)
    for level in (4, 3, 2, 1):
        index = table_index(va, level)
        entry = d.mem.read_u64((table << 12) + index * 8)
        lines.append(f'  {LEVEL_NAMES[level]} smfn {table:#x} [{index:3}] = {entry:#018x}  '
                     f'{flags_str(entry)}')
        if not entry & _PAGE_PRESENT:
            guest_present = len(gw.levels) >= 5 - level and gw.levels[4 - level].entry & 1
            lines.append('  not present in the shadow' + (
                ': not built yet (the next access faults and fills it)' if guest_present
                else ': the guest entry is not present either'))
            return lines
        table = pte_mfn(entry)
    gl1e = gw.levels[-1].entry if len(gw.levels) == 4 else 0
    removed = []
    if gl1e & _PAGE_RW and not entry & _PAGE_RW:
        removed.append('write')
    if not gl1e & _PAGE_NX and entry & _PAGE_NX:
        removed.append('execute')
    lines.append(f'  -> mfn {table:#x}; guest L1 entry {gl1e:#018x} {flags_str(gl1e)}')
    if not removed:
        lines.append('  the shadow grants everything the guest entry does')
    for right, why in sp.explain_l1(gl1e):
        lines.append(f'  {right} removed: {why}')
    return lines


def frame_report(d, mfn: int) -> List[str]:
    frames = d.frames
    if not frames.is_valid(mfn):
        return [f'mfn {mfn:#x} is beyond machine memory ({frames.nr_frames:#x} frames)']
    owner = frames.owner[mfn]
    owner_name = 'xen' if owner == DOMID_XEN else ('free' if not frames.count[mfn] else
                                                   f'd{owner}')
    lines = [f'mfn {mfn:#x}: owner {owner_name}, type {PageType(frames.type[mfn]).name}, '
             f'type count {frames.type_count[mfn]}, refcount {frames.count[mfn]}, '
             f'pinned {"yes" if frames.pinned[mfn] else "no"}, '
             f'allocated {"yes" if frames.allocated[mfn] else "no"}']
    if owner == d.domid:
        pfn = d.pfn_of.get(mfn)
        lines.append(f'  pfn {pfn:#x}' if pfn is not None else '  not in the physmap')
    held = frame_ledger(frames, d.types, d.host.domains.values()).get(mfn, ())
    if held:
        lines.append('  held by: ' + ', '.join(
            r.holder + (f' ({r.ptype.name})' if r.ptype is not None else '') for r in held))
    if d.mem_access is not None:
        lines.append(f'  access {ACCESS_NAMES[d.mem_access.get(mfn)]}'
                     f'{"" if mfn in d.mem_access.tracker else " (the default)"}')
    sp = d.paging
    if sp.name == 'shadow':
        for level in (4, 3, 2, 1):
            smfn = sp.shadow_of.get((mfn, level))
            if smfn is not None:
                lines.append(f'  shadowed as an L{level} table by smfn {smfn:#x}')
        maps = sorted(sp.maps_of.get(mfn, ()))
        lines.append(f'  mapped by {len(maps)} shadow L1 entries' +
                     (': ' + ', '.join(f'smfn {m >> 12:#x}[{(m & 0xFFF) >> 3}]' for m in maps[:8])
                      if maps else ''))
        if mfn in sp.guest_of:
            lines.append(f'  this is a shadow of guest mfn {sp.guest_of[mfn][0]:#x}')
    return lines


def stats(d) -> dict:
    out = {'paging': d.paging.name}
    out.update(d.stats)
    sp = d.paging
    if sp.name == 'shadow':
        out.update({f'shadow_{k}' if not k.startswith('shadow') else k: v
                    for k, v in sp.stats.items()})
        out['live_shadow_pages'] = sp.live_shadows()
        out['shadow_pool'] = f'{d.shadow_pool.in_use}/{d.shadow_pool.limit}'
    if d.mem_access is not None:
        out.update({f'mem_access_{k}': v for k, v in d.mem_access.stats.items()})
    return out
