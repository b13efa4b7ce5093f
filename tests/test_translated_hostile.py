"""A translated guest attacking through the interfaces issue 16 added: HVMOP_altp2m on
itself with arbitrary arguments, XENMEM_sharing_op and mmu_update by guest-physical
address, then a real access. Every call answers with an errno or succeeds; none raises
out of the hypervisor, and afterwards the sharing audit, the frame ledger and every
view's shadow audit hold, and the other domain's memory is untouched."""
import struct

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pvshadow.shadow.abi import p2m as abi
from pvshadow.shadow.abi import xen
from pvshadow.shadow.exits import ExitReason
from tests.translated_host import FIRST_FREE_GFN, OP_READ, OP_WRITE, PokeGuest, checks, new_host

u64 = st.integers(0, (1 << 64) - 1)
small = st.integers(0, 20)
gfnish = st.one_of(st.integers(0, 0x800), u64)
CALL = st.one_of(
    st.tuples(st.just('altp2m'), st.sampled_from([1, 0, 2]), small, st.integers(0, 0xFFFF),
              st.lists(st.one_of(small, gfnish), min_size=6, max_size=6)),
    st.tuples(st.just('sharing'), st.integers(0, 12), st.sampled_from([0x7FF0, 1, 2, 9]),
              st.lists(gfnish, min_size=5, max_size=5)),
    st.tuples(st.just('mmu'), gfnish, u64),
    st.tuples(st.just('access'), st.integers(0, 1), st.integers(0, 8)),
)


def _arg(guest) -> int:
    """A guest-virtual buffer: the second half of the poke kernel's mailbox page."""
    return guest.d.image.virt_base + (guest.mbox_gfn << 12) + 0x800


def _put(guest, data: bytes) -> int:
    guest.d.mem.write((guest.d.p2m[guest.mbox_gfn] << 12) + 0x800, data)
    return _arg(guest)


def call(guest, op):
    """One call through the domain's hypercall table, as the guest's syscall reaches it
    (a guest-memory fault in a handler is -EFAULT there)."""
    v = guest.d.vcpus[0]
    kind = op[0]
    if kind == 'altp2m':
        _, version, cmd, domain, words = op
        a = abi.xen_hvm_altp2m_op(version=version, cmd=cmd,
                                  domain=0x7FF0 if domain % 3 == 0 else domain)
        raw = bytearray(bytes(a))
        struct.pack_into('<6Q', raw, 16, *[w & ((1 << 64) - 1) for w in words])
        return guest.d.hypercalls.call(v, xen.HYPERVISOR_hvm_op,
                                       (abi.HVMOP_altp2m, _put(guest, bytes(raw))))
    if kind == 'sharing':
        _, sub, domid, words = op
        raw = bytearray(48)
        struct.pack_into('<BxH', raw, 0, sub, domid)
        struct.pack_into('<5Q', raw, 8, *words)
        return guest.d.hypercalls.call(v, xen.HYPERVISOR_memory_op,
                                       (abi.XENMEM_sharing_op, _put(guest, bytes(raw))))
    if kind == 'mmu':
        _, ptr, val = op
        arg = _put(guest, struct.pack('<2Q', ptr & ~3, val))
        return guest.d.hypercalls.call(v, xen.HYPERVISOR_mmu_update,
                                       (arg, 1, 0, xen.DOMID_SELF))
    _, write, gfn_off = op
    if getattr(guest, 'crashed_itself', False):
        return 0
    exit_, (_, status) = guest.step(OP_WRITE if write else OP_READ, FIRST_FREE_GFN + gfn_off,
                                    0, 0x55 if write else 0)
    if exit_.reason is not ExitReason.BREAKPOINT:
        # An earlier call rewrote the attacker's own code or stack: mmu_update on a frame
        # that is no page table is a plain write, as in Xen. Its crash is its own.
        guest.crashed_itself = True
    return status


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(CALL, min_size=1, max_size=12))
@example(ops=[('mmu', 0x340, 0), ('access', 0, 0)])     # zeroes its own code, then crashes
@example(ops=[('mmu', 0x10000, 0), ('altp2m', 1, 0, 0, [0] * 6)])   # unmaps its argument page
def test_a_translated_guests_calls_keep_isolation(ops):
    host = new_host()
    victim, attacker = PokeGuest(host), PokeGuest(host)
    before = victim.d.mem.read(victim.d.p2m[FIRST_FREE_GFN] << 12, 4096)
    victim_frames = [m for m in victim.d.p2m]
    for op in ops:
        rc = call(attacker, op)
        assert isinstance(rc, int), (op, rc)
        problems = checks(host)
        assert problems == [], (op, problems[:5])
    assert victim.d.mem.read(victim.d.p2m[FIRST_FREE_GFN] << 12, 4096) == before
    assert [m for m in victim.d.p2m] == victim_frames
    assert victim.read(FIRST_FREE_GFN)[1] == 0
