"""The descriptor pages a PV guest gives Xen, and its LDT.

Frames used as descriptor tables (GDT or LDT) take the descriptor-page type, so no
writable mapping of them can exist (a writable mapping is refused, as for page tables),
and every descriptor is checked as Xen's check_descriptor does for a 64-bit PV guest:
code and data segments only, their DPL raised to 3 (the guest kernel's ring), nothing
else but empty entries.

The LDT is named by a guest linear address and mapped lazily, as Xen does: the vCPU's LDT
area (after its GDT area) starts empty, and the #PF the CPU takes there when it loads an
LDT selector maps the guest's page behind it, typed as a descriptor page (map_ldt_page).
If the guest's page is not there, the guest gets that #PF at its own LDT address.
"""
import struct

from pvshadow.shadow.abi.xen import (EINVAL, FIRST_RESERVED_GDT_ENTRY, FLAT_KERNEL_CS64,
                                     FLAT_KERNEL_SS64, FLAT_RING3_CS32, FLAT_RING3_SS32,
                                     HYPERVISOR_VIRT_END)
from pvshadow.shadow.machine import PageType
from pvshadow.shadow.paging.x86 import PFEC_USER, walk
from pvshadow.shadow.xenspace import LDT_PAGES, LDT_SELECTOR, ldt_va

_DPL3 = 3 << 45
DESC_S = 1 << 44                # code/data, not system
DESC_P = 1 << 47


def check_descriptor(desc: int):
    """The descriptor as it may be installed, or None (Xen's check_descriptor, 64-bit)."""
    if desc == 0 or not desc & DESC_P:
        return desc                             # empty or not present: harmless
    if not desc & DESC_S:
        return None                             # system descriptors (gates, TSS, LDT)
    return desc | _DPL3


def take_descriptor_page(d, mfn: int) -> bool:
    """Type a frame as a descriptor page, checking (and fixing up) every descriptor.
    Never for a translated guest: its shadows hold no type references, so a writable
    mapping of the frame could outlive the check (it runs on Xen's reserved selectors)."""
    if getattr(d, 'translated', False) or \
            d.types.get_page_and_type(mfn, PageType.SEG_DESC, d.domid):
        return False
    checked = [check_descriptor(x) for x in d.mem.frame_u64s(mfn)]
    if None in checked:
        d.types.put_page_and_type(mfn)
        return False
    d.mem.write(mfn << 12, struct.pack('<512Q', *checked))
    return True


# --- the LDT ----------------------------------------------------------------------------------
def ldt_args_ok(base: int, entries: int) -> bool:
    """MMUEXT_SET_LDT's checks: page aligned, at most 8192 entries, a guest address."""
    if not entries:
        return True
    return not base & 0xFFF and entries <= LDT_PAGES * 512 and \
        (base < (1 << 47) or base >= HYPERVISOR_VIRT_END)


def set_ldt(v, base: int, entries: int) -> int:
    """MMUEXT_SET_LDT: Xen's checks, then the new table (mapped as the CPU uses it)."""
    if not entries:
        base = 0                            # no LDT: the address is not looked at
    if not ldt_args_ok(base, entries):
        return -EINVAL
    if (base, entries) != (v.ldt_base, v.ldt_ents):
        destroy_ldt(v)
        v.ldt_base, v.ldt_ents = base, entries
        load_ldt(v)
    return 0


def load_ldt(v) -> None:
    """LDTR for the running vCPU: the LDT area, with the guest's limit (Xen's load_LDT)."""
    if v.cpu.guest is v:
        v.cpu.load_ldt(LDT_SELECTOR, ldt_va(v.vcpu_id), v.ldt_ents * 8 - 1) if v.ldt_ents \
            else v.cpu.load_ldt(0, 0, 0)


def destroy_ldt(v) -> None:
    """Unmap the LDT pages mapped so far and drop their descriptor-page type."""
    d = v.domain
    if not v.ldt_frames:
        return
    area = ldt_va(v.vcpu_id)
    for page, mfn in v.ldt_frames.items():
        d.xen.unmap(area + page * 4096)
        d.types.put_page_and_type(mfn)
    v.ldt_frames = {}
    d.flush_tlb()


def ldt_fault(v, va: int, error_code: int) -> bool:
    """A #PF in this vCPU's LDT area (the CPU loading an LDT selector): map the guest's
    page there (Xen's pv_map_ldt_shadow_page) and retry, or hand the guest its fault.
    False if va is not in the area."""
    offset = va - ldt_va(v.vcpu_id)
    if not 0 <= offset < LDT_PAGES * 4096:
        return False
    if error_code & PFEC_USER:
        # An explicit access by the guest (its kernel runs at CPL3 too), not the CPU
        # loading a descriptor: the area is the hypervisor's, supervisor-only, and Xen
        # maps LDT pages only for implicit accesses. The guest gets its #PF, once.
        v.inject_page_fault(va, error_code)
        return True
    if offset >> 3 >= v.ldt_ents:
        v.inject_trap(13, offset & ~3)
        return True
    if not map_ldt_page(v, offset >> 12):
        v.inject_page_fault(v.ldt_base + offset, error_code)
    return True


def map_ldt_page(v, page: int) -> bool:
    """Map page `page` of the guest's LDT into the vCPU's LDT area, unless it is there
    already (Xen's pv_map_ldt_shadow_page). False if the guest's page is not present, not
    the domain's, or cannot be a descriptor page."""
    if page in v.ldt_frames:
        return True
    d = v.domain
    gw = walk(d.mem.read_u64, v.guest_table, v.ldt_base + page * 4096)   # the kernel's view
    if not (gw.ok and d.owns(gw.mfn) and take_descriptor_page(d, gw.mfn)):
        return False
    d.xen.map_ldt_page(v.vcpu_id, page, gw.mfn)
    v.ldt_frames[page] = gw.mfn
    d.flush_tlb()
    return True


# --- CS and SS on the way back to the guest ---------------------------------------------------
# Xen's entry points frame a guest's syscall with fixed selectors, whatever the guest had
# loaded: lstar_enter (64-bit code) FLAT_KERNEL_CS64 / FLAT_KERNEL_SS, cstar_enter
# (compatibility-mode code) FLAT_USER_CS32 / FLAT_USER_SS32; restore_all_guest returns
# with sysretq or sysretl, which load exactly those. A bounce loads FLAT_KERNEL_CS/SS;
# HYPERVISOR_iret loads its frame's, with RPL 3.
_DESC_L = 1 << 53
_DESC_CODE = 1 << 43
_DESC_CONFORMING = 1 << 42
_DESC_WRITABLE = 1 << 41


def descriptor(v, selector: int) -> int:
    """The descriptor a selector names for vCPU v (0 when there is none)."""
    index = selector >> 3
    if selector & 4:
        mfn = v.ldt_frames.get(index // 512)
    elif index >= FIRST_RESERVED_GDT_ENTRY:
        index -= FIRST_RESERVED_GDT_ENTRY
        mfn = v.domain.xen.gdt_frame if index < 512 else None
    else:
        mfn = v.gdt_frames[index // 512] if index < v.gdt_entries else None
    return 0 if mfn is None else v.domain.mem.read_u64((mfn << 12) + (index % 512) * 8)


def is_compat_code(v, cs: int) -> bool:
    """Whether the code segment cs runs compatibility-mode (32-bit) code."""
    desc = descriptor(v, cs)
    return bool(desc & DESC_P and desc & _DESC_CODE and not desc & _DESC_L)


def syscall_selectors(v, cs: int):
    """(CS, SS) Xen frames a syscall from code segment cs with, and sysret returns to."""
    if cs != FLAT_KERNEL_CS64 and is_compat_code(v, cs):
        return FLAT_RING3_CS32, FLAT_RING3_SS32
    return FLAT_KERNEL_CS64, FLAT_KERNEL_SS64


def load_cs_ss(v, cs: int, ss: int, now=None) -> bool:
    """Load CS and SS as an iretq or sysret to the guest does; False when the CPU would
    refuse them (a #GP in Xen's iretq; nothing is loaded). now: the (cs, ss) already
    loaded, if known."""
    cpu = v.cpu
    if now is None:
        now = cpu.regs('cs', 'ss')
    if now == (cs, ss):
        return True
    cs_desc, ss_desc = descriptor(v, cs), descriptor(v, ss)
    if not (_code_ok(cs, cs_desc) and _stack_ok(ss, ss_desc)):
        return False
    cpu.load_code_and_stack(cs, cs_desc, ss, ss_desc)
    return True


def _dpl(desc: int) -> int:
    return (desc >> 45) & 3


def _code_ok(selector: int, desc: int) -> bool:
    """iretq to CPL3: a present code segment, DPL 3 (or conforming), RPL 3."""
    return selector & 3 == 3 and selector & ~3 != 0 and bool(desc & DESC_P) and \
        bool(desc & DESC_S) and bool(desc & _DESC_CODE) and \
        (_dpl(desc) == 3 or bool(desc & _DESC_CONFORMING))


def _stack_ok(selector: int, desc: int) -> bool:
    """iretq to CPL3: a present writable data segment with DPL 3 and RPL 3."""
    return selector & 3 == 3 and selector & ~3 != 0 and bool(desc & DESC_P) and \
        bool(desc & DESC_S) and not desc & _DESC_CODE and bool(desc & _DESC_WRITABLE) and \
        _dpl(desc) == 3
