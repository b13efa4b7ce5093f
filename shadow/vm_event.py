"""The vm_event ring: requests from the hypervisor to a listener, responses back.

The ring lives in one hypervisor-owned frame with Xen's shared-ring layout (io/ring.h):
free-running producer indices req_prod / rsp_prod (and the *_event fields), 48 bytes of
padding, then a power-of-two number of vm_event_st entries (8 for version 1's 312 bytes).
Requests and responses share the slots, as in Xen. The hypervisor side (`VmEventChannel`)
puts requests and consumes responses; `ListenerRing` is the other end, used by the
in-process listener the toolstack API hands out.
"""
import struct
from collections import deque
from typing import Optional

from pvshadow.shadow.abi import xen
from pvshadow.shadow.machine import MachineMemory

_ENTRY = xen.vm_event_st.size()
RING_SIZE = 1 << ((4096 - xen.RING_HEADER_SIZE) // _ENTRY).bit_length() - 1
_IDX = struct.Struct('<I')
_SLOTS = xen.RING_HEADER_SIZE              # the entries follow the shared-ring header
REQ_PROD, REQ_EVENT, RSP_PROD, RSP_EVENT = 0, 4, 8, 12

_MASK = 0xFFFFFFFF                         # the indices are free-running 32-bit counters

# What the hypervisor acts on in a response, read in one unpack: (flags, vcpu_id,
# altp2m_idx, gfn, access_flags) -- the union's first field is mem_access's gfn (and
# mem_sharing's), and past its offset and gla come its flags.
_RESPONSE = struct.Struct('<4xI4xIH6xQ16xI')
assert (xen.vm_event_st.flags.offset, xen.vm_event_st.vcpu_id.offset,
        xen.vm_event_st.altp2m_idx.offset, xen.vm_event_st.mem_access.offset,
        xen.vm_event_mem_access.flags.offset) == (4, 12, 16, 24, 24)


class SharedRing:
    def __init__(self, mem: MachineMemory, mfn: int):
        self.mem = mem
        self.base = mfn << 12

    def index(self, field: int) -> int:
        return _IDX.unpack_from(self.mem.view, self.base + field)[0]

    def slot(self, idx: int) -> int:
        return self.base + _SLOTS + (idx % RING_SIZE) * _ENTRY

    def read(self, idx: int) -> xen.vm_event_st:
        return xen.vm_event_st.from_buffer_copy(self.mem.view, self.slot(idx))   # one copy

    def push(self, field: int, entry, cons: Optional[int] = None) -> bool:
        """entry (a vm_event_st, or its 312 bytes) into the slot the producer index at
        field names, then that index on: a memoryview copy and two index moves, once per
        event. With cons (the consumer's index), only if the ring has room; returns
        whether it was put."""
        view, base = self.mem.view, self.base
        prod = _IDX.unpack_from(view, base + field)[0]
        if cons is not None and (prod - cons) & _MASK >= RING_SIZE:
            return False
        slot = base + _SLOTS + (prod % RING_SIZE) * _ENTRY
        view[slot:slot + _ENTRY] = memoryview(entry).cast('B')
        _IDX.pack_into(view, base + field, (prod + 1) & _MASK)
        return True


class VmEventChannel(SharedRing):
    """The hypervisor's end: requests out, responses in."""

    def __init__(self, mem: MachineMemory, mfn: int):
        super().__init__(mem, mfn)
        mem.clear_frame(mfn)
        self.rsp_cons = 0
        self.backlog = deque()           # requests waiting for a free slot

    def put_request(self, req) -> None:
        """req (a vm_event_st, or its bytes) on the ring if a slot is free and nothing
        waits before it; else a copy of it queued. (A slot is free once the response
        that reused it has been consumed.)"""
        if self.backlog or not self.push(REQ_PROD, req, self.rsp_cons):
            self.backlog.append(bytes(req))

    def flush_backlog(self) -> None:
        while self.backlog and self.push(REQ_PROD, self.backlog[0], self.rsp_cons):
            self.backlog.popleft()

    def take_responses(self) -> list:
        """Each response the listener has put since the last call, in order, as a tuple
        (flags, vcpu_id, altp2m_idx, gfn, access_flags); then the held-back requests
        that now fit."""
        view, prod, cons = self.mem.view, self.index(RSP_PROD), self.rsp_cons
        out = []
        while cons != prod:
            out.append(_RESPONSE.unpack_from(view, self.slot(cons)))
            cons = (cons + 1) & _MASK
        self.rsp_cons = cons
        if self.backlog:
            self.flush_backlog()
        return out


class ListenerRing(SharedRing):
    """The listener's end (xen-access's view of the ring): requests in, responses out."""

    def __init__(self, mem: MachineMemory, mfn: int):
        super().__init__(mem, mfn)
        self.req_cons = self.index(RSP_PROD)

    def get_request(self) -> Optional[xen.vm_event_st]:
        cons = self.req_cons
        if cons == self.index(REQ_PROD):
            return None
        self.req_cons = (cons + 1) & _MASK
        return self.read(cons)

    def take_requests(self) -> list:
        """Every request put since the last take, in order (xen-access's inner loop)."""
        view, cons, prod = self.mem.view, self.req_cons, self.index(REQ_PROD)
        out = []
        while cons != prod:
            out.append(xen.vm_event_st.from_buffer_copy(view, self.slot(cons)))
            cons = (cons + 1) & _MASK
        self.req_cons = cons
        return out

    def put_response(self, rsp) -> None:
        """rsp: a vm_event_st, or its bytes."""
        self.push(RSP_PROD, rsp)


def mem_access_record(req) -> dict:
    """A mem_access request as the tracer's vm_event event (and `pvshadow access --json`'s
    line): one shape for both, with integers (shadow's front ends format them)."""
    ma, flags = req.mem_access, req.mem_access.flags
    access = ''.join(letter if flags & bit else '-' for letter, bit in (
        ('r', xen.MEM_ACCESS_R), ('w', xen.MEM_ACCESS_W), ('x', xen.MEM_ACCESS_X)))
    return {'type': 'vm_event', 'reason': 'mem_access', 'vcpu': req.vcpu_id, 'gfn': ma.gfn,
            'offset': ma.offset, 'gla': ma.gla, 'access': access,
            'paused': bool(req.flags & xen.VM_EVENT_FLAG_VCPU_PAUSED),
            'gla_valid': bool(flags & xen.MEM_ACCESS_GLA_VALID),
            'fault_with_gla': bool(flags & xen.MEM_ACCESS_FAULT_WITH_GLA),
            'fault_in_gpt': bool(flags & xen.MEM_ACCESS_FAULT_IN_GPT), 'rip': req.regs.rip}
