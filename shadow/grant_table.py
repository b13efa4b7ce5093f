"""Grant tables (xen/common/grant_table.c) for PV domains: the granter's shared entries
(v1 or v2, with v2's status frames), its active entries, and the mapper's maptrack.

A grant of a PV domain names a machine frame. Mapping it takes references, and the
maptrack record of the mapping holds them until the unmap (or the mapper's death):

  a host mapping      one general reference, plus a WRITABLE type reference if writable
  a device mapping    the same again

so a page table can never be mapped writable, a frame granted writable and mapped cannot
become a page table, and a ballooned-out frame stays allocated (charged to its owner) for
as long as any mapping of it lives. A host mapping is an L1 entry the hypervisor writes
into the mapper's tables, marked _PAGE_GNTTAB; it takes no reference of its own (the
record's is it). A guest that overwrites such an entry itself drops the record's host
reference with it, and is crashed for it, as Xen does (put_page_from_l1e). Every mapping
of another domain's frame also enters the mapper's IOMMU table at BFN = MFN (Xen's
maptrack_tree: read-only while only read-only mappings remain), so the mapper's devices
reach exactly the frames it holds a mapping of.

The map, unmap and copy functions return a GNTST_* status, as the op's status field
carries it; set_version returns 0 or a negative errno, as the hypercall does.
"""
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import (EBUSY, EINVAL, ENOMEM, GNTMAP_application_map, GNTMAP_contains_pte, GNTMAP_device_map,
                                     GNTMAP_host_map, GNTMAP_readonly, GNTST_bad_copy_arg,
                                     GNTST_bad_dev_addr, GNTST_bad_domain, GNTST_bad_gntref,
                                     GNTST_bad_handle, GNTST_bad_page, GNTST_general_error,
                                     GNTST_no_space, GNTST_okay, GNTST_permission_denied,
                                     GTF_permit_access, GTF_reading, GTF_readonly, GTF_sub_page,
                                     GTF_type_mask, GTF_writing)
from pvshadow.shadow.machine import PageType
from pvshadow.shadow.paging.types import _PAGE_GNTTAB, adjust_guest_entry
from pvshadow.shadow.paging.x86 import (_PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_NX, _PAGE_PRESENT, _PAGE_RW,
                                        _PAGE_USER, make_pte, pte_mfn)

MAPTRACK_LIMIT = 1024                  # handles per mapping domain
_PAGE_AVAIL = 0xE00                    # the guest's bits 9-11 (GNTMAP_guest_avail)
_U16, _U32, _U64 = struct.Struct('<H'), struct.Struct('<I'), struct.Struct('<Q')
HOST, DEVICE = 'host', 'device'


@dataclass
class Active:
    """active_grant_entry: who has the grant pinned, which frame, and how."""
    domid: int
    mfn: int
    pins: Dict[str, int] = field(default_factory=lambda: {'hr': 0, 'hw': 0, 'dr': 0, 'dw': 0})

    def pinned(self) -> bool:
        return any(self.pins.values())

    def writable(self) -> bool:
        return bool(self.pins['hw'] or self.pins['dw'])


@dataclass
class Mapping:
    """A maptrack record: the grant (granter, ref) mapped, how, the frame, and where the
    host entry is (the machine address of the L1 entry)."""
    granter: int
    ref: int
    flags: int
    mfn: int
    pte: Optional[int] = None
    host_ref: bool = True          # False once the guest dropped the host entry itself

    def halves(self) -> List[str]:
        """The halves still mapped (and pinned)."""
        return [k for k, bit in ((HOST, GNTMAP_host_map), (DEVICE, GNTMAP_device_map))
                if self.flags & bit]

    def holds(self) -> List[str]:
        """The halves that hold references."""
        return [k for k in self.halves() if k == DEVICE or self.host_ref]


class GrantTable:
    """One domain's grant table: its grants (as granter) and its maptrack (as mapper)."""

    def __init__(self, d):
        self.d = d
        self.version = 1
        self.status_frames: List[int] = []
        self.active: Dict[int, Active] = {}
        self.maptrack: Dict[int, Mapping] = {}
        self._free_handles: List[int] = []
        self._next_handle = 0

    # --- the granter's shared entries ------------------------------------------------------
    @property
    def entry_size(self) -> int:
        return xen.GRANT_ENTRY_V1_SIZE if self.version == 1 else xen.GRANT_ENTRY_V2_SIZE

    def nr_entries(self) -> int:
        return len(self.d.grant_frames) * 4096 // self.entry_size

    def _entry_maddr(self, ref: int) -> int:
        offset = ref * self.entry_size
        return (self.d.grant_frames[offset >> 12] << 12) + (offset & 0xFFF)

    def header(self, ref: int):
        """(flags, domid) of a shared entry."""
        raw = _U32.unpack(self.d.mem.read(self._entry_maddr(ref), 4))[0]
        return raw & 0xFFFF, raw >> 16

    def frame(self, ref: int) -> int:
        maddr = self._entry_maddr(ref)
        if self.version == 1:
            return _U32.unpack(self.d.mem.read(maddr + 4, 4))[0]
        return _U64.unpack(self.d.mem.read(maddr + 8, 8))[0]

    def frame_mfn(self, ref: int) -> int:
        """The machine frame an entry grants: its frame field, which a translated
        granter writes as a gfn (its host p2m's RAM; anything else names no frame)."""
        frame = self.frame(ref)
        if not getattr(self.d, 'translated', False):
            return frame
        from pvshadow.shadow.abi.p2m import p2m_ram_ro, p2m_ram_rw
        entry = self.d.p2m_state.host(frame)
        return entry.mfn if entry.type in (p2m_ram_rw, p2m_ram_ro) else -1

    def _status_maddr(self, ref: int) -> int:
        if self.version == 1:
            return self._entry_maddr(ref)
        return (self.status_frames[ref * 2 >> 12] << 12) + (ref * 2 & 0xFFF)

    def _or_status(self, ref: int, bits: int) -> None:
        maddr = self._status_maddr(ref)
        self.d.mem.write(maddr, _U16.pack(_U16.unpack(self.d.mem.read(maddr, 2))[0] | bits))

    def _clear_status(self, ref: int, bits: int) -> None:
        if self.d.dying or ref >= self.nr_entries():
            return                           # its frames are gone (or the table shrank)
        maddr = self._status_maddr(ref)
        self.d.mem.write(maddr, _U16.pack(_U16.unpack(self.d.mem.read(maddr, 2))[0] & ~bits))

    def set_status(self, act: Optional[Active], ref: int, readonly: bool, mapper: int,
                   mapping: bool = True) -> int:
        """_set_status: an unpinned entry must permit access to the mapper (a whole page
        for a mapping); a writable use of a read-only grant is refused. Sets GTF_reading
        (and GTF_writing) where the granter sees them."""
        flags, domid = self.header(ref)
        mask = GTF_type_mask | (GTF_sub_page if mapping else 0)
        if act is None and ((flags & mask) != GTF_permit_access or domid != mapper):
            return GNTST_general_error
        if not readonly and flags & GTF_readonly:
            return GNTST_general_error
        self._or_status(ref, GTF_reading | (0 if readonly else GTF_writing))
        return GNTST_okay

    def reduce_status_for_pin(self, ref: int, act: Active) -> None:
        if not act.writable():
            self._clear_status(ref, GTF_writing)
        if not act.pinned():
            self._clear_status(ref, GTF_reading)
            self.active.pop(ref, None)

    # --- the mapper's maptrack -------------------------------------------------------------------
    def get_handle(self) -> Optional[int]:
        if self._free_handles:
            return self._free_handles.pop()
        if self._next_handle >= MAPTRACK_LIMIT:
            return None
        self._next_handle += 1
        return self._next_handle - 1

    def put_handle(self, handle: int) -> None:
        self.maptrack.pop(handle, None)
        self._free_handles.append(handle)


def table_of(d) -> GrantTable:
    if d.grants is None:
        d.grants = GrantTable(d)
    return d.grants


def _pins(flags: int) -> List[str]:
    ro = flags & GNTMAP_readonly
    return ([('dr' if ro else 'dw')] if flags & GNTMAP_device_map else []) + \
        ([('hr' if ro else 'hw')] if flags & GNTMAP_host_map else [])


def _pte_for(flags: int, mfn: int) -> int:
    """grant_to_pte_flags, then adjust_guest_l1e."""
    pte_flags = _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_GNTTAB | _PAGE_NX
    if flags & GNTMAP_application_map:
        pte_flags |= _PAGE_USER
    if not flags & GNTMAP_readonly:
        pte_flags |= _PAGE_RW
    return adjust_guest_entry(make_pte(mfn, pte_flags), 1)


# --- map ----------------------------------------------------------------------------------------
def map_grant_ref(v, op) -> None:
    """GNTTABOP_map_grant_ref for one op, in Xen's order of checks; fills status, handle
    and dev_bus_addr. Nothing is left taken on a failure."""
    ld = v.domain
    host = ld.host
    flags = op.flags
    pins = _pins(flags)
    if not pins:
        op.status = GNTST_bad_gntref
        return
    rd = host.domains.get(op.dom)
    if rd is None or rd.dying:
        op.status = GNTST_bad_domain
        return
    lgt, rgt = table_of(ld), table_of(rd)
    handle = lgt.get_handle()
    if handle is None:
        op.status = GNTST_no_space
        return
    status = _map(v, ld, rd, lgt, rgt, op, pins, handle)
    op.status = status
    if status != GNTST_okay:
        lgt.put_handle(handle)


def _map(v, ld, rd, lgt, rgt, op, pins, handle) -> int:
    ref, flags = op.ref, op.flags
    readonly = bool(flags & GNTMAP_readonly)
    if ref >= rgt.nr_entries():
        return GNTST_bad_gntref
    act = rgt.active.get(ref)
    if act is not None and act.domid != ld.domid:
        return GNTST_general_error
    types = ld.types
    new_act = act is None
    if new_act or (not readonly and not act.writable()):
        rc = rgt.set_status(act, ref, readonly, ld.domid)
        if rc:
            return rc
        if new_act:
            mfn = rgt.frame_mfn(ref)
            if not types.frames.is_valid(mfn) or types.frames.owner[mfn] != rd.domid or \
                    not types.frames.count[mfn]:
                rgt.reduce_status_for_pin(ref, Active(ld.domid, 0))
                return GNTST_bad_page                   # get_paged_frame
            act = rgt.active[ref] = Active(ld.domid, mfn)
    for pin in pins:
        act.pins[pin] += 1
    mfn = act.mfn
    taken = []                              # (type?) references, to undo on failure

    def undo(rc):
        for typed in reversed(taken):
            types.put_mapping(mfn, typed)
        if pte_written is not None:
            _clear_host_pte(ld, pte_written)
        for pin in pins:
            act.pins[pin] -= 1
        rgt.reduce_status_for_pin(ref, act)
        return rc

    pte_written = None
    for half in ([DEVICE] if flags & GNTMAP_device_map else []) + \
            ([HOST] if flags & GNTMAP_host_map else []):
        if readonly:
            ok = types.get_page(mfn, rd.domid)
        else:
            ok = types.get_page_and_type(mfn, PageType.WRITABLE, rd.domid) == 0
        if not ok:
            return undo(GNTST_general_error)         # could_not_pin
        taken.append(not readonly)
    if flags & GNTMAP_host_map:
        pte_written, rc = _create_host_mapping(v, op.host_addr, flags, mfn)
        if rc:
            pte_written = None
            return undo(rc)
    if ld is not rd:
        ld.iommu.grant_map(mfn, readonly)
    lgt.maptrack[handle] = Mapping(rd.domid, ref, flags, mfn, pte_written)
    op.dev_bus_addr = mfn << 12
    op.handle = handle
    return GNTST_okay


def _create_host_mapping(v, addr: int, flags: int, mfn: int):
    """create_grant_pv_mapping: (the L1 entry's machine address, status). addr is a
    linear address in the current address space, or with GNTMAP_contains_pte the machine
    address of an L1 entry in one of the mapper's L1 tables."""
    d = v.domain
    if flags & GNTMAP_contains_pte:
        if addr & 7:
            return None, GNTST_general_error
        maddr = addr
    else:
        maddr = d.paging.find_l1_entry(v.current_table(), addr)
        if maddr is None:
            return None, GNTST_general_error
    table = maddr >> 12
    frames = d.frames
    if not frames.is_valid(table) or frames.owner[table] != d.domid or \
            d.paging.table_level(table) != 1:
        return None, GNTST_general_error
    old = d.mem.read_u64(maddr)
    d.mem.write_u64(maddr, _pte_for(flags, mfn))
    _entry_rewritten(d, maddr, old)
    if old & _PAGE_PRESENT:
        d.types.put_page_from_entry(old, 1, table)
    return maddr, GNTST_okay


def _entry_rewritten(d, maddr: int, old: int) -> None:
    paging = d.paging
    new = d.mem.read_u64(maddr)
    if paging.entry_changed(maddr >> 12, (maddr & 0xFFF) >> 3, 1, old, new):
        d.flush_tlb()
    if paging.mappings_changed is not None:
        paging.mappings_changed()


def _clear_host_pte(d, maddr: int) -> None:
    old = d.mem.read_u64(maddr)
    d.mem.write_u64(maddr, 0)
    _entry_rewritten(d, maddr, old)


# --- unmap --------------------------------------------------------------------------------------
def unmap(v, handle: int, host_addr: int, dev_bus_addr: int, new_addr: Optional[int] = None) -> int:
    """unmap_common and unmap_common_complete for one op: drops the host half when
    host_addr names it, the device half when dev_bus_addr does; the handle goes when
    neither is left. new_addr (unmap_and_replace): the linear address whose mapping moves
    into host_addr's entry (and is cleared)."""
    ld = v.domain
    lgt = table_of(ld)
    m = lgt.maptrack.get(handle)
    if m is None:
        return GNTST_bad_handle
    rd = ld.host.domains.get(m.granter)
    if rd is None:
        ld.crash('unmap of a grant whose granter is gone')
        return GNTST_general_error
    rgt = table_of(rd)
    act = rgt.active.get(m.ref)
    if act is None:
        return GNTST_bad_handle
    if dev_bus_addr and m.flags & GNTMAP_device_map and dev_bus_addr != m.mfn << 12:
        return GNTST_bad_dev_addr
    done = []
    if host_addr and m.flags & GNTMAP_host_map:
        rc = _replace_host_mapping(v, m, host_addr, new_addr)
        if rc:
            return rc
        done.append(HOST)
    if dev_bus_addr and m.flags & GNTMAP_device_map:
        done.append(DEVICE)
    for half in done:
        release_half(ld, rd, m, half)
    if not m.flags & (GNTMAP_host_map | GNTMAP_device_map):
        lgt.put_handle(handle)
        if ld is not rd:
            ld.iommu.grant_unmap(m.mfn, bool(m.flags & GNTMAP_readonly))
    return GNTST_okay


def release_half(ld, rd, m: Mapping, half: str) -> None:
    """unmap_common_complete for one half: its references and its pin."""
    readonly = m.flags & GNTMAP_readonly
    types = ld.types
    if half in m.holds():
        types.put_mapping(m.mfn, not readonly)
    bit = GNTMAP_host_map if half == HOST else GNTMAP_device_map
    m.flags &= ~bit
    if half == HOST:
        m.pte = None
    pin = ('h' if half == HOST else 'd') + ('r' if readonly else 'w')
    rgt = table_of(rd)
    act = rgt.active.get(m.ref)
    if act is not None:
        act.pins[pin] -= 1
        rgt.reduce_status_for_pin(m.ref, act)


def _replace_host_mapping(v, m: Mapping, addr: int, new_addr: Optional[int]) -> int:
    """replace_grant_pv_mapping: the entry at addr must still be this grant's mapping of
    this frame; it is cleared, or takes over new_addr's entry (which is cleared)."""
    d = v.domain
    if m.flags & GNTMAP_contains_pte:
        maddr = addr if not addr & 7 else None
    else:
        maddr = d.paging.find_l1_entry(v.current_table(), addr)
    if maddr is None or maddr != m.pte:
        return GNTST_general_error
    entry = d.mem.read_u64(maddr)
    if (entry ^ _pte_for(m.flags, m.mfn)) & ~_PAGE_AVAIL:
        return GNTST_general_error          # not this grant's entry (flags differ)
    replacement = 0
    if new_addr is not None:
        # steal_linear_address: whatever new_addr's entry holds moves here, a grant
        # entry included (whose record then follows it: XSA-234's case)
        source = d.paging.find_l1_entry(v.current_table(), new_addr)
        if source is None:
            return GNTST_general_error
        replacement = d.mem.read_u64(source)
        d.mem.write_u64(source, 0)
        _entry_rewritten(d, source, replacement)
        if replacement & _PAGE_GNTTAB:
            for other in table_of(d).maptrack.values():
                if other.pte == source:
                    other.pte = maddr
    d.mem.write_u64(maddr, replacement)
    _entry_rewritten(d, maddr, entry)
    return GNTST_okay


def grant_pte_dropped(d, table_mfn: int, entry: int) -> None:
    """The guest itself overwrote (or devalidated) a host grant entry: its reference
    went with it (put_page_from_l1e), so the record's host half is over, and the guest is
    crashed for it unless it is already going."""
    gt = d.grants
    mfn = pte_mfn(entry)
    if gt is not None:
        for m in gt.maptrack.values():
            if m.pte is not None and m.pte >> 12 == table_mfn and m.mfn == mfn:
                # The grant stays pinned, and its unmap fails, as in Xen ("undestroyable
                # active grants"): the mapper's death releases it.
                m.pte = None
                m.host_ref = False
                break
    if not d.dying and d.shutdown_code is None:
        d.crash('attempt to implicitly unmap a granted PTE')


def release_mappings(d) -> None:
    """gnttab_release_mappings: a dying mapper loses every mapping it holds."""
    gt = d.grants
    if gt is None:
        return
    for handle, m in list(gt.maptrack.items()):
        rd = d.host.domains.get(m.granter)
        if m.pte is not None:
            entry = d.mem.read_u64(m.pte)
            if entry & _PAGE_GNTTAB and pte_mfn(entry) == m.mfn:
                _clear_host_pte(d, m.pte)
        readonly = bool(m.flags & GNTMAP_readonly)
        for half in m.halves():
            if rd is not None:
                release_half(d, rd, m, half)
            elif half in m.holds():
                d.types.put_mapping(m.mfn, not readonly)
        if rd is not d:
            d.iommu.grant_unmap(m.mfn, readonly)
        gt.put_handle(handle)


# --- copy ---------------------------------------------------------------------------------------
def copy(v, op) -> int:
    """gnttab_copy_one: a frame named by grant (granted to the caller) or by its own MFN
    (DOMID_SELF only), read-only for the source and writable for the destination."""
    if not op.len:
        return GNTST_okay
    ld = v.domain
    bufs = []
    try:
        for ptr, gref, readonly in ((op.source, op.flags & xen.GNTCOPY_source_gref, True),
                                    (op.dest, op.flags & xen.GNTCOPY_dest_gref, False)):
            if ptr.domid != xen.DOMID_SELF and not gref:
                return GNTST_permission_denied
            dom = ld if ptr.domid == xen.DOMID_SELF else ld.host.domains.get(ptr.domid)
            if dom is None or dom.dying:
                return GNTST_bad_domain
        for ptr, gref, readonly in ((op.source, op.flags & xen.GNTCOPY_source_gref, True),
                                    (op.dest, op.flags & xen.GNTCOPY_dest_gref, False)):
            dom = ld if ptr.domid == xen.DOMID_SELF else ld.host.domains[ptr.domid]
            rc, buf = _claim(ld, dom, ptr.u, gref, readonly)
            if rc:
                return rc
            bufs.append(buf)
        if op.source.offset + op.len > 4096 or op.dest.offset + op.len > 4096:
            return GNTST_bad_copy_arg
        (src, _), (dst, _) = bufs[0][:2], bufs[1][:2]
        mem = ld.mem
        mem.write((dst << 12) + op.dest.offset,
                  mem.read((src << 12) + op.source.offset, op.len))
        return GNTST_okay
    finally:
        for buf in reversed(bufs):
            _release_claim(ld, *buf)


def _claim(ld, dom, u: int, gref: bool, readonly: bool):
    """(status, (mfn, readonly, granter or None, ref)): a frame held for one copy."""
    types = ld.types
    if gref:
        u &= 0xFFFFFFFF                      # the union's grant_ref_t
        gt = table_of(dom)
        if u >= gt.nr_entries():
            return GNTST_bad_gntref, None
        act = gt.active.get(u)
        if act is not None and act.domid != ld.domid:
            return GNTST_general_error, None
        rc = gt.set_status(act, u, readonly, ld.domid, mapping=False)
        if rc:
            return rc, None
        mfn = act.mfn if act is not None else gt.frame_mfn(u)
        pin = 'dr' if readonly else 'dw'     # held as a transient device pin
        act = gt.active.setdefault(u, Active(ld.domid, mfn))
        act.pins[pin] += 1
        if act.mfn == mfn and types.get_page(mfn, dom.domid):
            if readonly or types.get_page_type(mfn, PageType.WRITABLE, dom.domid) == 0:
                return GNTST_okay, (mfn, readonly, dom, u)
            types.put_page(mfn)
            rc = GNTST_general_error
        else:
            rc = GNTST_bad_page
        act.pins[pin] -= 1
        gt.reduce_status_for_pin(u, act)
        return rc, None
    mfn = u                                  # a PV domain's gmfn is its MFN
    if not types.frames.is_valid(mfn) or not types.get_page(mfn, dom.domid):
        return GNTST_bad_page, None
    if not readonly and types.get_page_type(mfn, PageType.WRITABLE, dom.domid):
        types.put_page(mfn)
        return GNTST_general_error, None
    return GNTST_okay, (mfn, readonly, None, None)


def _release_claim(ld, mfn, readonly, granter, ref) -> None:
    ld.types.put_mapping(mfn, not readonly)
    if granter is not None:
        gt = table_of(granter)
        act = gt.active.get(ref)
        if act is not None:
            act.pins['dr' if readonly else 'dw'] -= 1
            gt.reduce_status_for_pin(ref, act)


# --- versions -----------------------------------------------------------------------------------
def set_version(d, version: int) -> int:
    """GNTTABOP_set_version: 1 or 2 (-EINVAL otherwise); -EBUSY while any grant beyond
    the reserved ones is pinned. v2 gets status frames (-ENOMEM without), v1 gives them
    back. The shared entries are cleared, the reserved ones carried over, as Xen does."""
    gt = table_of(d)
    if version not in (1, 2):
        return -EINVAL
    if version == gt.version:
        return 0
    if any(act.pinned() for ref, act in gt.active.items()):
        return -EBUSY
    frames = d.frames
    if version == 1 and any(frames.count[m] != 2 or frames.type_count[m] != 1
                            for m in gt.status_frames):
        return -EBUSY          # gnttab_unpopulate_status_frames: the guest still maps one
    reserved = [(gt.header(r), gt.frame(r)) for r in
                range(min(xen.GNTTAB_NR_RESERVED_ENTRIES, gt.nr_entries()))]
    old = gt.version
    gt.version = version
    if not grow_status_frames(d):
        gt.version = old
        return -ENOMEM
    for mfn in d.grant_frames:
        d.mem.clear_frame(mfn)
    if version == 1:
        for mfn in gt.status_frames:
            d.release_xenheap_frame(mfn, 'grant status')
        gt.status_frames = []
    for ref, ((flags, domid), frame) in enumerate(reserved):
        maddr = gt._entry_maddr(ref)
        d.mem.write(maddr, _U32.pack((flags & ~(GTF_reading | GTF_writing)) | domid << 16))
        if version == 1:
            d.mem.write(maddr + 4, _U32.pack(frame & 0xFFFFFFFF))
        else:
            d.mem.write(maddr + 8, _U64.pack(frame))
    return 0


def grow_status_frames(d) -> bool:
    """A v2 table grown by setup_table needs status frames for its new entries."""
    gt = table_of(d)
    if gt.version != 2:
        return True
    want = (gt.nr_entries() * 2 + 4095) // 4096
    while len(gt.status_frames) < want:
        if not d.frames.free_frames():
            return False
        gt.status_frames.append(d.alloc_xenheap_frame('grant status'))
    return True


def ledger_refs(d):
    """(mfn, holder, typed) for every reference d's maptrack holds (shadow.ledger)."""
    gt = d.grants
    if gt is None:
        return
    for handle, m in gt.maptrack.items():
        for half in m.holds():
            yield m.mfn, f'd{d.domid} maptrack handle {handle} ({half})', \
                not m.flags & GNTMAP_readonly


def host_mapped(d, mfn: int) -> bool:
    """Whether d holds a live host mapping of mfn (its shadows may then map the frame)."""
    gt = d.grants
    return gt is not None and any(m.pte is not None and m.mfn == mfn
                                  for m in gt.maptrack.values())


def host_entries(d) -> Dict[int, int]:
    """The machine addresses of d's live host grant entries -> the frame each maps."""
    gt = d.grants
    if gt is None:
        return {}
    return {m.pte: m.mfn for m in gt.maptrack.values() if m.pte is not None}
