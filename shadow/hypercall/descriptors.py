"""HYPERVISOR_set_gdt and HYPERVISOR_update_descriptor: the guest's own GDT.

Frames given to set_gdt take the descriptor-page type, so no writable mapping of them can
exist (a writable mapping is refused, as for page tables), and every descriptor is checked
as Xen's check_descriptor does for a 64-bit PV guest: code and data segments only, their
DPL raised to 3 (the guest kernel's ring), nothing else but empty entries. The frames are
mapped into the vCPU's GDT area below Xen's reserved page (supervisor-only), where the
CPU reads them.
"""
import struct

from shadow.abi.xen import EINVAL, FIRST_RESERVED_GDT_ENTRY
from shadow.machine import PageType

_DPL3 = 3 << 45
_S = 1 << 44                    # code/data, not system
_P = 1 << 47


def check_descriptor(desc: int):
    """The descriptor as it may be installed, or None (Xen's check_descriptor, 64-bit)."""
    if desc == 0 or not desc & _P:
        return desc                             # empty or not present: harmless
    if not desc & _S:
        return None                             # system descriptors (gates, TSS, LDT)
    return desc | _DPL3


def gdt_descriptor(v, selector: int):
    """The descriptor a selector names in this vCPU's GDT (its own entries, then Xen's
    reserved ones), or None when it is outside the table."""
    index = selector >> 3
    if selector & 4:
        return None                             # LDT selectors: no LDT is modelled
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
    if desc is None or not desc & _P or not desc & _S or (desc >> 45) & 3 != 3:
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
        if d.types.get_page_and_type(mfn, PageType.SEG_DESC, d.domid):
            break
        descs = d.mem.frame_u64s(mfn)
        checked = [check_descriptor(x) for x in descs]
        if None in checked:
            d.types.put_page_and_type(mfn)
            break
        d.mem.write(mfn << 12, struct.pack('<512Q', *checked))
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
