"""The vm_event ring (Xen's shared-ring layout in one frame): requests in order, a full
ring's overflow held back and put on as responses free slots, responses back in order."""
from pvshadow.shadow.abi import xen
from pvshadow.shadow.machine import MachineMemory
from pvshadow.shadow.vm_event import REQ_PROD, RING_SIZE, RSP_PROD, ListenerRing, VmEventChannel

RING_MFN = 3


def _request(n: int) -> xen.vm_event_st:
    req = xen.vm_event_st(version=xen.VM_EVENT_INTERFACE_VERSION,
                          reason=xen.VM_EVENT_REASON_MEM_ACCESS, vcpu_id=n % 4)
    req.mem_access.gfn = 0x1000 + n
    return req


def _rings():
    mem = MachineMemory(8)
    return VmEventChannel(mem, RING_MFN), ListenerRing(mem, RING_MFN)


def test_requests_arrive_in_order_and_a_full_ring_holds_the_rest_back():
    channel, listener = _rings()
    for n in range(RING_SIZE + 3):
        channel.put_request(_request(n))
    seen = []
    while (req := listener.get_request()) is not None:
        seen.append(req.mem_access.gfn)
    assert seen == [0x1000 + n for n in range(RING_SIZE)]
    assert len(channel.backlog) == 3


def test_responses_come_back_in_order_and_free_slots_for_the_held_back_requests():
    channel, listener = _rings()
    for n in range(RING_SIZE + 3):
        channel.put_request(_request(n))
    for _ in range(RING_SIZE):
        req = listener.get_request()
        rsp = xen.vm_event_st(version=xen.VM_EVENT_INTERFACE_VERSION, vcpu_id=req.vcpu_id,
                              flags=xen.VM_EVENT_FLAG_VCPU_PAUSED)
        rsp.mem_access.gfn = req.mem_access.gfn
        listener.put_response(rsp)
    responses = channel.take_responses()
    assert [gfn for _, _, _, gfn, _ in responses] == [0x1000 + n for n in range(RING_SIZE)]
    assert not channel.backlog
    rest = []
    while (req := listener.get_request()) is not None:
        rest.append(req.mem_access.gfn)
    assert rest == [0x1000 + n for n in range(RING_SIZE, RING_SIZE + 3)]


def test_the_indices_wrap_past_the_ring_size_many_times():
    channel, listener = _rings()
    for n in range(5 * RING_SIZE + 1):
        channel.put_request(_request(n))
        req = listener.get_request()
        assert req.mem_access.gfn == 0x1000 + n and listener.get_request() is None
        listener.put_response(req)
        assert [gfn for _, _, _, gfn, _ in channel.take_responses()] == [0x1000 + n]


def test_the_indices_run_on_past_two_to_the_32():
    channel, listener = _rings()
    start = (1 << 32) - 3                    # as if 2**32 - 3 events had gone before
    for field in (REQ_PROD, RSP_PROD):
        at = channel.base + field
        channel.mem.view[at:at + 4] = start.to_bytes(4, 'little')
    channel.rsp_cons = listener.req_cons = start
    for n in range(RING_SIZE):
        channel.put_request(_request(n))
    requests = listener.take_requests()
    assert [req.mem_access.gfn for req in requests] == [0x1000 + n for n in range(RING_SIZE)]
    assert listener.take_requests() == [] and listener.req_cons == RING_SIZE - 3
    for req in requests:
        listener.put_response(req)
    assert [gfn for _, _, _, gfn, _ in channel.take_responses()] == \
        [0x1000 + n for n in range(RING_SIZE)]
    assert channel.take_responses() == [] and channel.rsp_cons == RING_SIZE - 3
