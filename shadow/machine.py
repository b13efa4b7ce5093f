"""Machine memory and the frame table: the single truth for who owns which frame.

Machine memory is one anonymous mapping (committed lazily by the OS) that the CPU layer
hands to Unicorn with mem_map_ptr, so the hypervisor reads and writes guest frames
through a memoryview without a Unicorn call. The frame table is a set of flat arrays
indexed by machine frame number (Xen's struct page_info, one column per field).
"""
import ctypes
import itertools
import mmap
import struct
from array import array
from enum import IntEnum
from typing import List, NewType

from pvshadow.shadow.abi.xen import DOMID_INVALID, DOMID_XEN

Mfn = NewType('Mfn', int)
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

_u64 = struct.Struct('<Q')


class PageType(IntEnum):
    """A frame's type (Xen's PGT_*): it is one of these at a time, while type_count > 0."""
    NONE = 0
    L1 = 1
    L2 = 2
    L3 = 3
    L4 = 4
    SEG_DESC = 5
    SHARED = 6          # a frame shared between domains, owned by DOMID_COW (mem_sharing)
    WRITABLE = 7
    SHADOW = 8          # a hypervisor frame holding a shadow page table


PT_TYPES = (PageType.L1, PageType.L2, PageType.L3, PageType.L4)


class MachineMemory:
    """Byte-addressed machine memory: maddr = mfn << 12 | offset."""

    def __init__(self, nr_frames: int):
        self.nr_frames = nr_frames
        self.size = nr_frames << PAGE_SHIFT
        self._map = mmap.mmap(-1, self.size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.view = memoryview(self._map)
        # The same memory as 64-bit words (q[maddr >> 3]): the fault path's reads and
        # writes of page-table entries, at C speed, without a Python call each.
        self.q = self.view.cast('Q')
        self.host_address = ctypes.addressof(ctypes.c_char.from_buffer(self._map))

    def read(self, maddr: int, size: int) -> bytes:
        return bytes(self.view[maddr:maddr + size])

    def write(self, maddr: int, data: bytes) -> None:
        self.view[maddr:maddr + len(data)] = data

    def read_u64(self, maddr: int) -> int:
        return _u64.unpack_from(self._map, maddr)[0]

    def write_u64(self, maddr: int, value: int) -> None:
        _u64.pack_into(self._map, maddr, value)

    def frame_u64s(self, mfn: int):
        """All 512 entries of a frame, for table validation and walks."""
        return struct.unpack_from('<512Q', self._map, mfn << PAGE_SHIFT)

    def clear_frame(self, mfn: int) -> None:
        base = mfn << PAGE_SHIFT
        self.view[base:base + PAGE_SIZE] = bytes(PAGE_SIZE)

    def close(self):
        self.q.release()
        self.view.release()
        try:
            self._map.close()
        except BufferError:
            pass  # Unicorn may still hold the pointer; the mapping dies with the process


NO_PFN = 0xFFFFFFFF                    # FrameTable.pfn of a frame in no physmap


class FrameTable:
    """Per machine frame: owner domain, type, type count, general refcount, pinned,
    allocated, the pfn its owner's physmap gives it, and whether it must be scrubbed
    before its next use, and whether a mapping ever made it executable: 19 bytes a
    frame, in flat arrays.

    The allocator hands out frames never used since the machine memory was mapped (zero,
    as the anonymous mapping gives them, so never cleared: touching them would commit
    host memory) from a fresh range, low end up (alloc) or high end down (alloc_high),
    and takes freed frames back on a stack that alloc reuses first, most recent first.
    A freed frame is marked for scrubbing, which its next user does (scrub_needed).
    Guests' frames come from alloc_recent: freed frames first."""

    def __init__(self, nr_frames: int):
        self.nr_frames = nr_frames
        self.owner = array('H', [DOMID_INVALID]) * nr_frames
        self.type = bytearray(nr_frames)
        self.type_count = array('I', [0]) * nr_frames
        self.count = array('I', [0]) * nr_frames
        self.pinned = bytearray(nr_frames)
        self.allocated = bytearray(nr_frames)
        self.pfn = array('I', [NO_PFN]) * nr_frames
        self.scrub = bytearray(nr_frames)
        # Mapped executable by a shadow since the machine started (never cleared): only
        # such a frame can have translated code the CPU would run stale after the
        # hypervisor writes it (PvPaging.may_hold_code).
        self.executable = bytearray(nr_frames)
        self._lo, self._hi = 0, nr_frames   # the fresh range
        self._freed = array('I')            # freed frames; the last is reused first

    def is_valid(self, mfn: int) -> bool:
        return 0 <= mfn < self.nr_frames

    def touched(self):
        """Every frame that ever left the fresh range: the rest have never been handed out,
        so they have no owner, reference or type (what a whole-table scan may skip, once
        fresh_is_pristine has said so)."""
        return itertools.chain.from_iterable(range(*r) for r in self.touched_ranges())

    def owned_by(self, domid: int) -> List[int]:
        """The frames domid owns, in order: a byte search of the owner column, each hit
        kept where it starts an element (C speed; the column has a frame per 2 bytes)."""
        raw, pattern, found = self.owner.tobytes(), domid.to_bytes(2, 'little'), []
        i = raw.find(pattern)
        while i >= 0:
            if i & 1:
                i = raw.find(pattern, i + 1)
                continue
            found.append(i >> 1)
            i = raw.find(pattern, i + 2)
        return found

    def touched_ranges(self):
        """touched(), as (first, end) ranges of frame numbers."""
        return (0, self._lo), (self._hi, self.nr_frames)

    def fresh_is_pristine(self) -> bool:
        """Whether every frame of the fresh range is as the table began: no owner, no
        reference, no type, not allocated (checked a column slice at a time)."""
        lo, hi = self._lo, self._hi
        n = hi - lo
        if n <= 0:
            return True
        def all_zero(column) -> bool:       # the slice's bytes, compared in C
            part = memoryview(column)[lo:hi]
            return part.tobytes() == bytes(part.nbytes)
        return self.owner[lo:hi].tobytes() == array('H', [DOMID_INVALID]).tobytes() * n and \
            all(map(all_zero, (self.count, self.type_count, self.allocated, self.type,
                               self.pinned)))

    def free_frames(self) -> int:
        return self._hi - self._lo + len(self._freed)

    def alloc(self, owner: int) -> Mfn:
        """Hand out one free frame to owner (a domid or DOMID_XEN); raises MemoryError."""
        if self._freed:
            return self._claim(self._freed.pop(), owner)
        if self._lo < self._hi:
            self._lo += 1
            return self._claim(self._lo - 1, owner)
        raise MemoryError('machine memory exhausted')

    def alloc_high(self, owner: int) -> Mfn:
        """A frame from the top of the fresh range (keeps guest frames away from mfn ==
        pfn), or the longest-freed frame once the fresh range is gone."""
        if self._lo < self._hi:
            self._hi -= 1
            return self._claim(self._hi, owner)
        if self._freed:
            return self._claim(self._freed.pop(0), owner)
        raise MemoryError('machine memory exhausted')

    def alloc_low(self, owner: int) -> Mfn:
        """A hypervisor frame (shadows): from the bottom of the fresh range while it
        lasts, so frames guests gave back go to guests (alloc_recent) in the same order
        whatever the paging mode."""
        if self._lo < self._hi:
            self._lo += 1
            return self._claim(self._lo - 1, owner)
        return self.alloc(owner)

    def alloc_recent(self, owner: int) -> Mfn:
        """A guest's frame: the most recently freed one first (as a real allocator's
        free list would, so a frame given back is the very next one handed out: the
        map-not-lookup race shows at once), else from the top of the fresh range."""
        if self._freed:
            return self._claim(self._freed.pop(), owner)
        return self.alloc_high(owner)

    def alloc_high_run(self, count: int, owner: int) -> range:
        """count fresh frames from the top at once, in alloc_high's order (descending),
        or an empty range if the fresh range is shorter."""
        if count <= 0 or self._hi - self._lo < count:
            return range(0)
        top = self._hi
        self._hi -= count
        low = self._hi
        self.owner[low:top] = array('H', [owner]) * count
        self.type[low:top] = bytes(count)
        self.type_count[low:top] = array('I', [0]) * count
        self.count[low:top] = array('I', [1]) * count
        self.allocated[low:top] = b'\x01' * count
        self.pinned[low:top] = bytes(count)
        return range(top - 1, low - 1, -1)

    def _claim(self, mfn: int, owner: int) -> Mfn:
        self.owner[mfn] = owner
        self.type[mfn] = PageType.NONE
        self.type_count[mfn] = 0
        self.count[mfn] = 1          # the allocation reference (Xen's PGC_allocated)
        self.allocated[mfn] = 1
        self.pinned[mfn] = 0
        return Mfn(mfn)

    def scrub_needed(self, mfn: int) -> bool:
        """Whether a frame just handed out may hold a previous user's data (and is now
        taken to be cleared by the caller)."""
        needed = self.scrub[mfn]
        self.scrub[mfn] = 0
        return bool(needed)

    def free(self, mfn: int) -> None:
        assert self.type_count[mfn] == 0, f'freeing mfn {mfn:#x} with type references'
        self.owner[mfn] = DOMID_INVALID
        self.type[mfn] = PageType.NONE
        self.count[mfn] = 0
        self.allocated[mfn] = 0
        self.pinned[mfn] = 0
        self.pfn[mfn] = NO_PFN
        self.scrub[mfn] = 1
        self._freed.append(mfn)

    def is_xen(self, mfn: int) -> bool:
        return self.owner[mfn] == DOMID_XEN
