"""HYPERVISOR_set_gdt and HYPERVISOR_update_descriptor: the guest's own GDT (its LDT and
the descriptor checks are shadow/segments.py's).

Frames given to set_gdt take the descriptor-page type, so no writable mapping of them can
exist (a writable mapping is refused, as for page tables), and every descriptor is checked
as Xen's check_descriptor does for a 64-bit PV guest: code and data segments only, their
DPL raised to 3 (the guest kernel's ring), nothing else but empty entries. The frames are
mapped into the vCPU's GDT area below Xen's reserved page (supervisor-only), where the
CPU reads them.
"""
import struct

from pvshadow.shadow.abi.xen import EINVAL, FIRST_RESERVED_GDT_ENTRY
from pvshadow.shadow.machine import PageType
from pvshadow.shadow.paging.x86 import walk
from pvshadow.shadow.segments import DESC_P, DESC_S, check_descriptor, take_descriptor_page

def gdt_descriptor(v, selector: int):
    """The descriptor a selector names in this vCPU's GDT (its own entries, then Xen's
    reserved ones) or LDT, or None when it is outside the table."""
    index = selector >> 3
    if selector & 4:
        if index >= v.ldt_ents:
            return None
        gw = walk(v.domain.mem.read_u64, v.guest_table, v.ldt_base + index * 8)
        return v.domain.mem.read_u64(gw.maddr) if gw.ok else None
    if index >= FIRST_RESERVED_GDT_ENTRY:
        xen = v.domain.xen
        offset = (index - FIRST_RESERVED_GDT_ENTRY) * 8
        return xen.mem.read_u64((xen.gdt_frame << 12) + offset) if offset < 4096 else None
    if index >= v.gdt_entries:
        return None
    return v.domain.mem.read_u64((v.gdt_frames[index // 512] << 12) + index % 512 * 8)


def loads_as_data_segment(desc) -> bool:
    """Whether `mov sel, %gs` at the guest kernel's CPL 3 succeeds with this descriptor:
    present, code or data, DPL 3, and readable if code."""
    if desc is None or not desc & DESC_P or not desc & DESC_S or (desc >> 45) & 3 != 3:
        return False
    is_code, readable = desc >> 43 & 1, desc >> 41 & 1
    return not is_code or readable


def descriptor_base(desc: int) -> int:
    return (desc >> 16 & 0xFFFFFF) | (desc >> 56 & 0xFF) << 24


def do_set_gdt(v, frame_list, entries, *_):
    if entries > FIRST_RESERVED_GDT_ENTRY:
        return -EINVAL
    nr = (entries + 511) // 512
    frames = list(struct.unpack(f'<{nr}Q', v.copy_from_guest(frame_list, 8 * nr))) if nr else []
    return set_gdt(v, frames, entries)


def set_gdt(v, frames, entries: int) -> int:
    """Xen's pv_set_gdt, for the hypercall and VCPUOP_initialise: type and check every
    frame, then drop the old ones and map the new."""
    d = v.domain
    if entries > FIRST_RESERVED_GDT_ENTRY or len(frames) < (entries + 511) // 512:
        return -EINVAL
    frames = frames[:(entries + 511) // 512]
    taken = []
    for mfn in frames:
        if not take_descriptor_page(d, mfn):
            break
        taken.append(mfn)
    if len(taken) != len(frames):
        for mfn in taken:
            d.types.put_page_and_type(mfn)
        return -EINVAL
    for mfn in v.gdt_frames:
        d.types.put_page_and_type(mfn)
    v.gdt_frames = taken
    v.gdt_entries = entries
    if v.cpu.guest is v or v.cpu.guest is None:
        d.xen.install_gdt(v)
        d.flush_tlb()
    return 0


def do_update_descriptor(v, maddr, desc, *_):
    d = v.domain
    mfn = maddr >> 12
    if maddr & 7 or not d.frames.is_valid(mfn):
        return -EINVAL
    checked = check_descriptor(desc)
    if checked is None:
        return -EINVAL
    # As Xen: a live descriptor page is written in place; any other frame must be one the
    # guest could write anyway (not a page table), so it is taken as writable.
    in_use_as_gdt = d.frames.type_count[mfn] and d.frames.type[mfn] == PageType.SEG_DESC
    if d.types.get_page_and_type(mfn, PageType.SEG_DESC if in_use_as_gdt else PageType.WRITABLE,
                                 d.domid):
        return -EINVAL
    d.mem.write_u64(maddr, checked)
    d.types.put_page_and_type(mfn)
    d.flush_tlb()
    return 0
