"""A domain's memory: its reservation (tot_pages, max_pages), its physmap (the p2m and the
hypervisor's own reverse map), the frames outside it the hypervisor shares with the
guest (shared_info, grant frames), and what the guest may ask of its frames (clear,
copy, give back). Domain inherits it; the fields it uses are Domain's."""
from array import array
from typing import Optional

from pvshadow.shadow.abi.xen import EINVAL, INVALID_M2P_ENTRY
from pvshadow.shadow.machine import NO_PFN, PageType


class DomainMemory:
    def alloc_frame(self) -> Optional[int]:
        """A fresh, scrubbed frame charged to this domain, or None when over reservation."""
        if self.tot_pages >= self.max_pages or not self.frames.free_frames():
            return None
        mfn = self.frames.alloc_recent(self.domid)
        if self.frames.scrub_needed(mfn):
            self.mem.clear_frame(mfn)
        self.tot_pages += 1
        return mfn

    def populate(self, count: int) -> bool:
        """The builder's physmap: pfns 0..count-1, each a fresh frame from the top of
        memory in alloc_frame's order, done in bulk: the frame table, the p2m, the
        reverse map and the M2P are written a run at a time, and no frame is touched
        (fresh frames are zero). False, with nothing taken, when memory is short."""
        if self.tot_pages + count > self.max_pages or self.p2m:
            return False
        frames = self.frames
        if frames.free_frames() < count:
            return False
        # Frames given back earlier come first, one at a time (alloc_recent's order);
        # the rest is a fresh run from the top, written in bulk.
        recent = []
        while frames._freed and len(recent) < count:
            recent.append(self.alloc_frame())
        fresh = count - len(recent)
        mfns = frames.alloc_high_run(fresh, self.domid)
        if len(mfns) != fresh:
            for mfn in recent:
                frames.allocated[mfn] = 0
                self.types.put_page(mfn)
            return False
        self.tot_pages += fresh
        self.p2m = array('Q', recent) + array('Q', mfns)
        for pfn, mfn in enumerate(recent):
            frames.pfn[mfn] = pfn
            self.xen.set_m2p(mfn, pfn)
        if fresh:
            low = mfns[-1]
            pfns = array('I', range(count - 1, len(recent) - 1, -1))  # pfn of mfn low, ...
            frames.pfn[low:low + fresh] = pfns
            self.xen.set_m2p_run(low, array('Q', pfns))
        return True

    def alloc_xenheap_frame(self, holder: str) -> int:
        """A scrubbed frame the domain owns but the hypervisor keeps writable for itself.
        From the top of memory, with the domain's own frames, so a domain's frame numbers
        do not depend on how many shadow frames the hypervisor has taken from the bottom."""
        mfn = self.frames.alloc_high(self.domid)
        if self.frames.scrub_needed(mfn):
            self.mem.clear_frame(mfn)
        rc = self.types.get_writable_frame(mfn, self.domid, holder)
        assert rc == 0, f'a fresh frame refused a writable reference ({rc})'
        self.xenheap_frames.add(mfn)
        return mfn

    def release_xenheap_frame(self, mfn: int, holder: str) -> None:
        """Give back a frame alloc_xenheap_frame made (v2 grant status frames on a
        switch back to v1): the hold and the allocation go, the frame with them unless
        the guest still maps it."""
        self.types.put_writable_frame(mfn, holder)
        self.frames.allocated[mfn] = 0
        self.types.put_page(mfn)
        self.xenheap_frames.discard(mfn)

    def crash(self, message: str) -> None:
        """domain_crash from outside a vCPU's own hook: the running vCPU if it is this
        domain's, else vCPU 0."""
        guest = self.cpu.guest
        v = guest if guest is not None and guest.domain is self else self.vcpus[0]
        v.crash(message)

    def owns(self, mfn: int) -> bool:
        frames = self.frames
        return 0 <= mfn < frames.nr_frames and frames.owner[mfn] == self.domid

    def pfn_valid(self, pfn: int) -> bool:
        return pfn < len(self.p2m) and self.p2m[pfn] != INVALID_M2P_ENTRY

    def set_p2m(self, pfn: int, mfn: int) -> None:
        if pfn >= len(self.p2m):
            self.p2m.extend(array('Q', [INVALID_M2P_ENTRY]) * (pfn + 1 - len(self.p2m)))
        old = self.p2m[pfn]
        if old != INVALID_M2P_ENTRY and self.pfn_of.get(old) == pfn:
            del self.pfn_of[old]
        self.p2m[pfn] = mfn
        self.pfn_of[mfn] = pfn
        self.xen.set_m2p(mfn, pfn)

    def machphys_update(self, mfn: int, pfn: int) -> int:
        """MMU_MACHPHYS_UPDATE: the guest's M2P entry for its frame, which is the guest's
        own bookkeeping. The hypervisor never trusts it: its own lookups use pfn_of."""
        if not self.owns(mfn) or mfn in self.xenheap_frames:
            return -EINVAL
        self.xen.set_m2p(mfn, pfn)
        return 0

    def release_frame(self, mfn: int) -> int:
        """decrease_reservation of one frame (Xen's guest_remove_page): out of the
        physmap, the allocation reference dropped; the frame is freed when its last
        reference goes (a mapping elsewhere: a grant, an IOMMU entry), and until then it
        is still this domain's, charged to it, and never handed to anyone else."""
        frames = self.frames
        if not self.owns(mfn) or not frames.allocated[mfn] or mfn in self.xenheap_frames:
            return -EINVAL
        pfn = self.pfn_of.pop(mfn, None)
        if pfn is not None and self.p2m[pfn] == mfn:
            self.p2m[pfn] = INVALID_M2P_ENTRY
        self.xen.clear_m2p(mfn)
        frames.allocated[mfn] = 0
        self.types.put_page(mfn)          # tot_pages drops when the frame is freed
        return 0

    def frame_freed(self, mfn: int) -> None:
        """One of its frames went back to the allocator: it stops being charged (as
        Xen's free_domheap_pages; a frame others still reference stays charged until
        then). Frames outside the physmap (shared_info, grant frames) never were."""
        if not self.dying and mfn not in self.xenheap_frames:
            self.tot_pages -= 1

    def clear_page(self, mfn: int) -> int:
        if self.types.get_page_and_type(mfn, PageType.WRITABLE, self.domid):
            return -EINVAL
        self.mem.clear_frame(mfn)
        self.types.put_page_and_type(mfn)
        return 0

    def copy_page(self, dst: int, src: int) -> int:
        if not self.types.get_page(src, self.domid):
            return -EINVAL
        rc = self.types.get_page_and_type(dst, PageType.WRITABLE, self.domid)
        if rc == 0:
            self.mem.write(dst << 12, self.mem.read(src << 12, 4096))
            self.types.put_page_and_type(dst)
        self.types.put_page(src)
        return -EINVAL if rc else 0

class ReverseP2m:
    """mfn -> pfn for the domain's own frames (the frame table's pfn column, read only
    where the domain owns the frame), with the dict methods the hypervisor uses."""

    def __init__(self, domain):
        self.d = domain

    def get(self, mfn: int, default=None):
        frames = self.d.frames
        if not frames.is_valid(mfn) or frames.owner[mfn] != self.d.domid:
            return default
        pfn = frames.pfn[mfn]
        return default if pfn == NO_PFN else pfn

    def __getitem__(self, mfn: int) -> int:
        pfn = self.get(mfn)
        if pfn is None:
            raise KeyError(mfn)
        return pfn

    def __setitem__(self, mfn: int, pfn: int) -> None:
        self.d.frames.pfn[mfn] = pfn

    def __delitem__(self, mfn: int) -> None:
        self.d.frames.pfn[mfn] = NO_PFN

    def pop(self, mfn: int, default=None):
        pfn = self.get(mfn, default)
        if pfn is not default:
            self.d.frames.pfn[mfn] = NO_PFN
        return pfn

    def clear(self) -> None:
        frames = self.d.frames
        for mfn in self.d.p2m:
            if mfn != INVALID_M2P_ENTRY and frames.is_valid(mfn) and \
                    frames.owner[mfn] == self.d.domid:
                frames.pfn[mfn] = NO_PFN
