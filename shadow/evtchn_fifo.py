"""The FIFO event channel ABI (xen/common/event_fifo.c), which a guest switches to from the
2-level one with EVTCHNOP_init_control, as Linux does.

The guest gives Xen one control block per vCPU (a ready bitmap and one queue head per
priority) and the pages of its event array (one 32-bit word per port: PENDING, MASKED,
LINKED, BUSY and a 17-bit LINK to the next event in its queue). Raising an event sets
PENDING and, unless the port is masked or already queued, links it at the tail of its
vCPU's queue for its priority: into the tail's LINK, or the queue's head if the queue was
empty, in which case the queue's ready bit is set and the vCPU's upcall raised. The guest
consumes queues from the heads; the hypervisor keeps only each queue's tail.

Every frame the hypervisor writes here is held writable (PageTypes.get_writable_frame)
for the rest of the domain's life, so it can never become a page table meanwhile. On a
single CPU, inside the hypervisor, no guest store can race with these updates, so Xen's
cmpxchg loops and BUSY handshake reduce to plain read-modify-writes.
"""
import struct
from typing import List, Optional

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import (EINVAL, ENOENT, ENOSPC, EOPNOTSUPP, EVTCHN_FIFO_BUSY,
                                     EVTCHN_FIFO_LINK_MASK, EVTCHN_FIFO_LINKED,
                                     EVTCHN_FIFO_MASKED, EVTCHN_FIFO_PENDING,
                                     EVTCHN_FIFO_PRIORITY_DEFAULT, EVTCHN_FIFO_PRIORITY_MIN,
                                     EVTCHN_FIFO_MAX_QUEUES)

WORDS_PER_PAGE = 4096 // 4
MAX_EVENT_ARRAY_PAGES = xen.EVTCHN_FIFO_NR_CHANNELS // WORDS_PER_PAGE
CONTROL_BLOCK_SIZE = 72
_READY = xen.evtchn_fifo_control_block.ready.offset
_HEAD = xen.evtchn_fifo_control_block.head.offset
_U32 = struct.Struct('<I')


class FifoQueues:
    """One vCPU's queues: where its control block is, and each queue's tail port."""

    def __init__(self):
        self.control_block: Optional[int] = None      # machine address
        self.tail = [0] * EVTCHN_FIFO_MAX_QUEUES


class FifoEvents:
    def __init__(self, domain):
        self.d = domain
        self.queues = [FifoQueues() for _ in domain.vcpus]
        self.event_array: List[int] = []              # mfns, WORDS_PER_PAGE ports each

    # --- set-up (EVTCHNOP_init_control, EVTCHNOP_expand_array) ----------------------------------
    def _hold(self, mfn: int, what: str) -> int:
        """map_guest_page: a frame of the domain's that can be writable (a PV gfn is an
        mfn), held so for good. -EINVAL otherwise."""
        d = self.d
        if not d.frames.is_valid(mfn):
            return -EINVAL
        return d.types.get_writable_frame(mfn, d.domid, what)

    def map_control_block(self, vcpu_id: int, mfn: int, offset: int) -> int:
        q = self.queues[vcpu_id]
        if q.control_block is not None:
            return -EINVAL
        rc = self._hold(mfn, f'FIFO control block of vCPU {vcpu_id}')
        if rc:
            return rc
        q.control_block = (mfn << 12) + offset
        return 0

    def add_page(self, mfn: int) -> int:
        """add_page_to_event_array: WORDS_PER_PAGE more ports, and the events raised
        while their words did not exist raised now."""
        if len(self.event_array) >= MAX_EVENT_ARRAY_PAGES:
            return -ENOSPC
        rc = self._hold(mfn, 'FIFO event array')
        if rc:
            return rc
        first = len(self.event_array) * WORDS_PER_PAGE
        self.event_array.append(mfn)
        for number in range(first, first + WORDS_PER_PAGE):
            port = self.d.evtchn.ports.get(number)
            if port is not None and port.fifo_pending:
                self.set_pending(number, port)
        return 0

    # --- event words ------------------------------------------------------------------------
    def word_maddr(self, number: int) -> Optional[int]:
        page = number // WORDS_PER_PAGE
        if not 0 <= page < len(self.event_array):
            return None
        return (self.event_array[page] << 12) + (number % WORDS_PER_PAGE) * 4

    def _read(self, maddr: int) -> int:
        return _U32.unpack_from(self.d.mem.view, maddr)[0]

    def _write(self, maddr: int, value: int) -> None:
        _U32.pack_into(self.d.mem.view, maddr, value)

    def _test(self, number: int, bit: int) -> bool:
        maddr = self.word_maddr(number)
        return maddr is not None and bool(self._read(maddr) >> bit & 1)

    # --- the port operations ------------------------------------------------------------------
    def set_pending(self, number: int, port) -> None:
        """evtchn_fifo_set_pending."""
        maddr = self.word_maddr(number)
        if maddr is None:
            port.fifo_pending = True       # raised again when its page arrives
            return
        port.fifo_pending = False
        vcpu_id = port.vcpu
        queues = self.queues[vcpu_id]
        if queues.control_block is None:
            return                         # the guest must not unmask before: dropped
        word = self._read(maddr)
        self._write(maddr, word | 1 << EVTCHN_FIFO_PENDING)
        linked = True
        if not word & (1 << EVTCHN_FIFO_MASKED | 1 << EVTCHN_FIFO_LINKED):
            self._write(maddr, word | 1 << EVTCHN_FIFO_PENDING | 1 << EVTCHN_FIFO_LINKED)
            old = self.queues[port.last_vcpu]
            if old.tail[port.last_priority] == number:
                old.tail[port.last_priority] = 0     # it was a tail: that queue is empty
            port.last_vcpu, port.last_priority = vcpu_id, port.priority
            tail = queues.tail[port.priority]
            linked = bool(tail) and self._set_link(tail, number)
            if not linked:
                self._write(queues.control_block + _HEAD + 4 * port.priority, number)
            queues.tail[port.priority] = number
        if not linked:
            ready = queues.control_block + _READY
            bits = self._read(ready)
            if not bits >> port.priority & 1:
                self._write(ready, bits | 1 << port.priority)
                self.d.evtchn.mark_events_pending(vcpu_id)

    def _set_link(self, tail: int, number: int) -> bool:
        """Link the tail's word to number if the tail is still LINKED (the guest may have
        consumed it); BUSY, Xen's lock against the guest unmasking it, ends clear."""
        maddr = self.word_maddr(tail)
        word = self._read(maddr)
        if not word >> EVTCHN_FIFO_LINKED & 1:
            return False
        self._write(maddr, (word & ~(1 << EVTCHN_FIFO_BUSY | EVTCHN_FIFO_LINK_MASK)) | number)
        return True

    def clear_pending(self, number: int) -> None:
        maddr = self.word_maddr(number)
        if maddr is not None:
            self._write(maddr, self._read(maddr) & ~(1 << EVTCHN_FIFO_PENDING))

    def unmask(self, number: int, port) -> None:
        maddr = self.word_maddr(number)
        if maddr is None:
            return
        word = self._read(maddr) & ~(1 << EVTCHN_FIFO_MASKED)
        self._write(maddr, word)
        if word >> EVTCHN_FIFO_PENDING & 1:
            self.set_pending(number, port)

    def is_pending(self, number: int) -> bool:
        return self._test(number, EVTCHN_FIFO_PENDING)

    def is_busy(self, number: int) -> bool:
        """A port still LINKED on a queue cannot be allocated again."""
        return self._test(number, EVTCHN_FIFO_LINKED)


def set_priority(port, priority: int) -> int:
    if priority > EVTCHN_FIFO_PRIORITY_MIN:
        return -EINVAL
    port.priority = priority               # future events; a queued one stays put
    return 0


def init_control(domain, mfn: int, offset: int, vcpu_id: int) -> int:
    """evtchn_fifo_init_control: the first call switches the domain to FIFO (events
    pending in the 2-level bitmap are kept, to be raised when their page arrives)."""
    if not 0 <= vcpu_id < len(domain.vcpus):
        return -ENOENT
    if offset > 4096 - CONTROL_BLOCK_SIZE or offset & 7:
        return -EINVAL
    ec = domain.evtchn
    if ec.fifo is not None:
        return ec.fifo.map_control_block(vcpu_id, mfn, offset)
    fifo = FifoEvents(domain)
    rc = fifo.map_control_block(vcpu_id, mfn, offset)
    if rc:
        return rc
    for number, port in ec.ports.items():
        port.fifo_pending = ec.is_pending(number)
        port.priority = EVTCHN_FIFO_PRIORITY_DEFAULT
    ec.fifo = fifo
    return 0


def expand_array(domain, mfn: int) -> int:
    fifo = domain.evtchn.fifo
    if fifo is None:
        return -EOPNOTSUPP
    return fifo.add_page(mfn)
