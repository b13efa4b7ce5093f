"""Per-domain IOMMU tables: what a domain's devices may reach, by bus frame number (BFN).

A PV domain's table has three sources, looked up in this order:

  explicit mappings   made with pvshadow's __HYPERVISOR_iommu_op (map_page of its own
                      frame at a BFN it picks, lookup_foreign_page of a client's gfn at a
                      BFN the hypervisor picks, = the MFN). Each holds one general
                      reference on its frame, and a WRITABLE type reference if writable.
  grant mappings      every grant of another domain the domain has mapped, at BFN = MFN,
                      writable while one writable mapping remains (Xen's maptrack_tree
                      counts); the maptrack records hold the references.
  its own frames      1:1 while allocated and typed writable or untyped (Xen's
                      need_iommu_pt_sync rule: a frame that becomes a page table or a
                      descriptor page leaves the table; a ballooned-out frame too).

A frame with no reference is therefore in no table. Functions return 0 or a negative
Xen errno.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from pvshadow.shadow.abi.xen import EBUSY, EINVAL, ENOENT, ENOSPC, EPERM
from pvshadow.shadow.machine import PageType

MAX_EXPLICIT = 4096                     # explicit mappings per domain


@dataclass
class IommuMapping:
    mfn: int
    writable: bool
    foreign: bool                       # a client's frame (lookup_foreign_page)
    count: int = 1                      # the same frame looked up again at its BFN


@dataclass
class IommuFault:
    bfn: int
    write: bool
    reason: str


class Iommu:
    def __init__(self, d):
        self.d = d
        self.mapped: Dict[int, IommuMapping] = {}        # bfn -> explicit mapping
        self.grant_counts: Dict[int, List[int]] = {}     # mfn -> [readonly, writable]
        self.faults: List[IommuFault] = []

    # --- lookups --------------------------------------------------------------------------
    def lookup(self, bfn: int) -> Optional[Tuple[int, bool]]:
        """(mfn, writable) for a BFN the domain's devices may reach, or None."""
        m = self.mapped.get(bfn)
        if m is not None:
            return m.mfn, m.writable
        counts = self.grant_counts.get(bfn)
        if counts is not None:
            return bfn, counts[1] > 0
        d = self.d
        frames = d.frames
        if d.dying or not frames.is_valid(bfn) or frames.owner[bfn] != d.domid or \
                not frames.allocated[bfn] or bfn in d.xenheap_frames:
            return None
        if frames.type_count[bfn] and frames.type[bfn] != PageType.WRITABLE:
            return None                  # a page table or descriptor page: unmapped
        if d.translated and d.paging.is_guest_table(bfn):
            return bfn, False            # a translated guest's shadowed table: never DMA-written
        return bfn, True

    def translate(self, bfn: int, write: bool) -> Optional[int]:
        """The MFN a device access reaches, or None (and the fault recorded)."""
        hit = self.lookup(bfn)
        if hit is None:
            self.faults.append(IommuFault(bfn, write, 'not mapped'))
            return None
        mfn, writable = hit
        if write and not writable:
            self.faults.append(IommuFault(bfn, write, 'read-only'))
            return None
        return mfn

    # --- grant mappings (shadow.grant_table) ----------------------------------------------------
    def grant_map(self, mfn: int, readonly: bool) -> None:
        self.grant_counts.setdefault(mfn, [0, 0])[0 if readonly else 1] += 1

    def grant_unmap(self, mfn: int, readonly: bool) -> None:
        counts = self.grant_counts.get(mfn)
        if counts is None:
            return
        counts[0 if readonly else 1] -= 1
        if not any(counts):
            del self.grant_counts[mfn]

    # --- explicit mappings (the iommu_op) --------------------------------------------------------
    def map_frame(self, bfn: int, mfn: int, owner: int, writable: bool, foreign: bool) -> int:
        """Take the references and enter the mapping; a second lookup of the same frame
        at its BFN counts up. -EBUSY for a BFN in use by something else, or a frame that
        cannot be writable (a page table); -EINVAL for a frame owner does not hold."""
        types = self.d.types
        current = self.mapped.get(bfn)
        if current is not None and (current.mfn != mfn or current.writable != writable or
                                    not foreign or not current.foreign):
            return -EBUSY
        if current is None and (self.lookup(bfn) is not None or len(self.mapped) >= MAX_EXPLICIT):
            return -EBUSY if len(self.mapped) < MAX_EXPLICIT else -ENOSPC
        if not types.frames.is_valid(mfn) or not types.get_page(mfn, owner):
            return -EINVAL
        if writable and types.get_page_type(mfn, PageType.WRITABLE, owner):
            types.put_page(mfn)
            return -EBUSY
        if current is None:
            self.mapped[bfn] = IommuMapping(mfn, writable, foreign)
        else:
            current.count += 1
        return 0

    def unmap_frame(self, bfn: int, foreign: bool) -> int:
        m = self.mapped.get(bfn)
        if m is None or m.foreign != foreign:
            return -ENOENT
        m.count -= 1
        if not m.count:
            del self.mapped[bfn]
        self._put(m)
        return 0

    def _put(self, m: IommuMapping) -> None:
        self.d.types.put_mapping(m.mfn, m.writable)

    def release(self) -> None:
        """A dying domain's devices lose every explicit mapping (the grant ones go with
        gnttab_release_mappings)."""
        for bfn, m in list(self.mapped.items()):
            for _ in range(m.count):
                self._put(m)
            del self.mapped[bfn]

    def ledger_refs(self):
        """(mfn, holder, typed) for every reference the explicit mappings hold."""
        for bfn, m in self.mapped.items():
            for i in range(m.count):
                yield m.mfn, f'd{self.d.domid} IOMMU bfn {bfn:#x}', m.writable


def may_map_client(caller, client) -> int:
    """The privilege rule for a map (or lookup) of a client's memory: the control domain,
    or a domain whose target set holds the client. 0 or -EPERM."""
    if caller.is_privileged or client is caller.target or client in caller.targets:
        return 0
    return -EPERM
