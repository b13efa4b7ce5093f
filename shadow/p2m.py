"""A translated guest's physmap: the host p2m and its altp2m views.

The host p2m is the domain's gfn -> mfn array (Domain.p2m) with a type per gfn (ram_rw
unless `types` says otherwise) and the host access (the domain's MemAccess tracker,
keyed by gfn). Views 1..MAX_ALTP2M-1 are sparse: a view holds only the entries it has
been given (a lazily copied host entry, an access set in it, a change_gfn remap); for any
other gfn it shows the host's frame and type with the view's default access. View 0 is
the host p2m itself.

Every view entry remembers its *source*: the host gfn whose frame it shows (its own gfn
for a copied entry, new_gfn for a remap). That is what makes the views safe with sharing
and ballooning: when the host entry of a gfn changes (an unshare's private copy, a
share's merge, a decrease_reservation), every view entry sourced from that gfn follows
it at once, in this one function (set_host_entry), so no view ever names a frame the host
does not (the invariant audit() checks). Xen instead lets a host change overwrite the
entry at the same gfn in each view (access included) and misses remaps pointing at it;
docs/ALTP2M_SHARING.md has the orders where that matters.

Shadows follow through `on_change(views, gfn, old_mfn)`: the paging mode drops what it
built from the old entry in those views.
"""
from array import array
from typing import Callable, Dict, List, NamedTuple, Optional

from pvshadow.shadow.abi.p2m import (INVALID_GFN, MAX_ALTP2M, p2m_invalid, p2m_mmio_dm,
                                     p2m_ram_ro, p2m_ram_rw, p2m_ram_shared)
from pvshadow.shadow.abi.xen import (EBUSY, EINVAL, ESRCH, INVALID_M2P_ENTRY,
                                     XENMEM_access_default, XENMEM_access_rwx)

INVALID_MFN = INVALID_M2P_ENTRY


class Entry(NamedTuple):
    mfn: int
    type: int
    access: int


class ViewEntry:
    __slots__ = ('mfn', 'type', 'access', 'source', 'suppress_ve')

    def __init__(self, mfn: int, type_: int, access: int, source: int, suppress_ve: bool = True):
        self.mfn, self.type, self.access, self.source = mfn, type_, access, source
        self.suppress_ve = suppress_ve

    def as_entry(self) -> Entry:
        return Entry(self.mfn, self.type, self.access)


class View:
    """One alternate p2m: its entries by gfn, its default access, and the range of
    source gfns its remaps use (Xen's min/max_remapped_gfn)."""

    def __init__(self, idx: int, default_access: int):
        self.idx = idx
        self.default_access = default_access
        self.entries: Dict[int, ViewEntry] = {}
        self.by_source: Dict[int, set] = {}       # source gfn -> gfns of entries showing it
        self.remap_min, self.remap_max = INVALID_GFN, 0
        self.visible = True


class P2m:
    def __init__(self, domain):
        self.d = domain
        self.types: Dict[int, int] = {}            # host gfn -> type, when not ram_rw
        self.views: List[Optional[View]] = [None] * MAX_ALTP2M
        self.altp2m_active = False
        self.host_ve: set = set()                  # host gfns whose #VE is not suppressed
        self.on_change: Callable = lambda views, gfn, old_mfn: None
        self.sharing = None                        # the host's MemSharing, set by the host

    # --- the host p2m -----------------------------------------------------------------------
    def host(self, gfn: int) -> Entry:
        d = self.d
        mfn = d.p2m[gfn] if 0 <= gfn < len(d.p2m) else INVALID_MFN
        if mfn == INVALID_MFN:
            return Entry(INVALID_MFN, self.types.get(gfn, p2m_invalid), XENMEM_access_rwx)
        access = d.mem_access.host_get(gfn) if d.mem_access is not None else XENMEM_access_rwx
        return Entry(mfn, self.types.get(gfn, p2m_ram_rw), access)

    def set_host_entry(self, gfn: int, mfn: int, type_: int = p2m_ram_rw) -> None:
        """Change (or, with INVALID_MFN, drop) the host entry of gfn: the sharing rmap,
        the M2P and reverse map, every view entry sourced from gfn, and the shadows of
        every view follow. The frame references are the caller's."""
        d = self.d
        old = self.host(gfn)
        if old.type == p2m_ram_shared:
            self.sharing.rmap_del(old.mfn, (d.domid, 0, gfn))
        elif old.mfn != INVALID_MFN and d.pfn_of.get(old.mfn) == gfn:
            del d.pfn_of[old.mfn]
        if mfn != INVALID_MFN and type_ != p2m_ram_shared:
            d.set_p2m(gfn, mfn)                   # the array, the reverse map and the M2P
        elif gfn < len(d.p2m) or mfn != INVALID_MFN or type_ == p2m_mmio_dm:
            if gfn >= len(d.p2m):
                d.p2m.extend(array('Q', [INVALID_MFN]) * (gfn + 1 - len(d.p2m)))
            d.p2m[gfn] = mfn
        if type_ == p2m_ram_rw or mfn == INVALID_MFN and type_ != p2m_mmio_dm:
            self.types.pop(gfn, None)             # mmio_dm: the device model's, no frame
        else:
            self.types[gfn] = type_
        if type_ == p2m_ram_shared:
            self.sharing.rmap_add(mfn, (d.domid, 0, gfn))
        self._propagate_change(gfn, mfn, type_)
        self.on_change(None, gfn, old.mfn)

    def _propagate_change(self, gfn: int, mfn: int, type_: int) -> None:
        """p2m_altp2m_propagate_change, by source: entries showing gfn follow its new
        frame and type, keeping their own access; a dropped host entry inside a view's
        remapped range resets that view, as Xen does."""
        for view in self.views[1:]:
            if view is None:
                continue
            if mfn == INVALID_MFN and view.remap_min <= gfn <= view.remap_max:
                self.reset_view(view.idx)
                continue
            for vgfn in list(view.by_source.get(gfn, ())):
                entry = view.entries[vgfn]
                if mfn == INVALID_MFN:
                    self._drop(view, vgfn)
                else:
                    self._put(view, vgfn, ViewEntry(mfn, type_, entry.access, gfn,
                                                    entry.suppress_ve))
            # the views' shadows of these gfns: on_change(None, ...) covers every view

    def set_type(self, gfn: int, type_: int, check_only: bool = False) -> int:
        """HVMOP_set_mem_type's transitions: RAM between ram_rw and ram_ro, and a gfn
        with no frame to or from mmio_dm (the device model's); -EINVAL for the rest (a
        shared gfn, or RAM made mmio_dm)."""
        host = self.host(gfn)
        if host.mfn != INVALID_MFN and host.type in (p2m_ram_rw, p2m_ram_ro) and \
                type_ in (p2m_ram_rw, p2m_ram_ro):
            if not check_only:
                self.set_host_entry(gfn, host.mfn, type_)
            return 0
        if host.mfn == INVALID_MFN and type_ in (p2m_mmio_dm, p2m_invalid):
            if not check_only:
                self.set_host_entry(gfn, INVALID_MFN, type_)
            return 0
        return -EINVAL

    # --- views ------------------------------------------------------------------------------------
    def view(self, idx: int) -> Optional[View]:
        return self.views[idx] if 0 < idx < MAX_ALTP2M else None

    def lookup(self, idx: int, gfn: int) -> Entry:
        """The effective entry of gfn in view idx (0: the host), without copying."""
        view = self.view(idx) if idx else None
        if view is None:
            return self.host(gfn)
        entry = view.entries.get(gfn)
        if entry is not None:
            return entry.as_entry()
        host = self.host(gfn)
        if host.mfn == INVALID_MFN:
            return host
        return Entry(host.mfn, host.type, view.default_access)

    def lookup_populating(self, idx: int, gfn: int, write: bool) -> Entry:
        """lookup, but a fork's missing gfn is first fetched from its parent
        (MemSharing.fork_page: shared for a read, copied for a write)."""
        entry = self.lookup(idx, gfn)
        if entry.mfn == INVALID_MFN and entry.type == p2m_invalid and \
                getattr(self.d, 'fork_parent', None) is not None and \
                self.sharing.fork_page(self.d, gfn, write):
            entry = self.lookup(idx, gfn)
        return entry

    def materialize(self, idx: int, gfn: int) -> Optional[ViewEntry]:
        """p2m_altp2m_get_or_propagate: the view's own entry for gfn, copied from the
        host with the view's default access on first use (None: the host has none)."""
        view = self.views[idx]
        entry = view.entries.get(gfn)
        if entry is None:
            host = self.host(gfn)
            if host.mfn == INVALID_MFN:
                return None
            entry = ViewEntry(host.mfn, host.type, view.default_access, gfn,
                              suppress_ve=gfn not in self.host_ve)
            self._put(view, gfn, entry)
        return entry

    def _put(self, view: View, gfn: int, entry: ViewEntry) -> None:
        old = view.entries.get(gfn)
        if old is not None:
            self._unlink(view, gfn, old)
        view.entries[gfn] = entry
        view.by_source.setdefault(entry.source, set()).add(gfn)
        if entry.type == p2m_ram_shared:
            self.sharing.rmap_add(entry.mfn, (self.d.domid, view.idx, gfn))

    def _unlink(self, view: View, gfn: int, entry: ViewEntry) -> None:
        gfns = view.by_source.get(entry.source)
        if gfns is not None:
            gfns.discard(gfn)
            if not gfns:
                del view.by_source[entry.source]
        if entry.type == p2m_ram_shared:
            self.sharing.rmap_del(entry.mfn, (self.d.domid, view.idx, gfn))

    def _drop(self, view: View, gfn: int) -> None:
        entry = view.entries.pop(gfn, None)
        if entry is not None:
            self._unlink(view, gfn, entry)

    def create_view(self, default_access: int) -> int:
        """p2m_init_next_altp2m: the index of a new view, or -EINVAL (none free, or an
        access out of range)."""
        if default_access > XENMEM_access_default:
            return -EINVAL
        if default_access == XENMEM_access_default:
            default_access = self.d.mem_access.default if self.d.mem_access else XENMEM_access_rwx
        for idx in range(1, MAX_ALTP2M):
            if self.views[idx] is None:
                self.views[idx] = View(idx, default_access)
                return idx
        return -EINVAL

    def reset_view(self, idx: int) -> None:
        """p2m_reset_altp2m: every entry (and the references they hold) goes; the view's
        shadows are blown."""
        view = self.views[idx]
        for gfn in list(view.entries):
            self._drop(view, gfn)
        view.remap_min, view.remap_max = INVALID_GFN, 0
        self.on_change((idx,), None, None)

    def destroy_view(self, idx: int, in_use) -> int:
        if not 0 < idx < MAX_ALTP2M or self.views[idx] is None or in_use(idx):
            return -EBUSY
        self.reset_view(idx)
        self.views[idx] = None
        return 0

    def flush_views(self) -> None:
        """p2m_flush_altp2m (altp2m turned off): every view goes."""
        for idx in range(1, MAX_ALTP2M):
            if self.views[idx] is not None:
                self.reset_view(idx)
                self.views[idx] = None

    def set_view_access(self, idx: int, gfn: int, access: int) -> int:
        """p2m_set_altp2m_mem_access: the view's entry for gfn (copied from the host if it
        has none) gets access; -ESRCH when the host has no such gfn."""
        view = self.views[idx]
        if access == XENMEM_access_default:
            access = view.default_access
        entry = self.materialize(idx, gfn)
        if entry is None:
            return -ESRCH
        entry.access = access
        self.on_change((idx,), gfn, entry.mfn)
        return 0

    def change_gfn(self, idx: int, old_gfn: int, new_gfn: int) -> int:
        """p2m_change_altp2m_gfn: view idx shows new_gfn's host frame at old_gfn (new_gfn
        ~0: old_gfn goes back to the host's). -EINVAL: no such view, or new_gfn has no
        host frame."""
        view = self.view(idx)
        if view is None:
            return -EINVAL
        if new_gfn == INVALID_GFN:
            entry = view.entries.get(old_gfn)
            if entry is not None:
                self._drop(view, old_gfn)
                self.on_change((idx,), old_gfn, entry.mfn)
            return 0
        if self.host(old_gfn).mfn == INVALID_MFN and old_gfn not in view.entries:
            return -EINVAL                       # AP2MGET_prepopulate found nothing
        source = self.host(new_gfn)
        if source.mfn == INVALID_MFN:
            return -EINVAL
        old = view.entries.get(old_gfn)
        access = old.access if old is not None else view.default_access
        self._put(view, old_gfn, ViewEntry(source.mfn, source.type, access, new_gfn))
        view.remap_min = min(view.remap_min, new_gfn)
        view.remap_max = max(view.remap_max, new_gfn)
        self.on_change((idx,), old_gfn, old.mfn if old is not None else self.host(old_gfn).mfn)
        return 0

    def source(self, idx: int, gfn: int) -> int:
        """The host gfn whose frame view idx shows at gfn (its own, unless remapped)."""
        view = self.view(idx) if idx else None
        entry = view.entries.get(gfn) if view is not None else None
        return entry.source if entry is not None else gfn

    def audit(self) -> List[str]:
        """Every view entry shows its source's host frame and type."""
        problems = []
        for view in self.views[1:]:
            if view is None:
                continue
            for gfn, entry in view.entries.items():
                host = self.host(entry.source)
                if (host.mfn, host.type) != (entry.mfn, entry.type):
                    problems.append(f'd{self.d.domid} view {view.idx} gfn {gfn:#x}: names mfn '
                                    f'{entry.mfn:#x} ({entry.type}) but its source gfn '
                                    f'{entry.source:#x} is mfn {host.mfn:#x} ({host.type})')
                if gfn not in view.by_source.get(entry.source, ()):
                    problems.append(f'd{self.d.domid} view {view.idx} gfn {gfn:#x}: missing '
                                    'from its source index')
        return problems
