"""Translated domains on one host for the altp2m and sharing tests. Each runs the `poke`
kernel, which stops at a breakpoint and, each time it is run again, makes the one memory
access its mailbox asks for: real guest loads and stores through its own page tables,
the shadows of the vCPU's current view and the p2m. After every step the checks issue 16
asks for: the sharing audit, the frame ledger, and every view's shadow audit."""
import struct

from pvshadow.guests.builder import build_domain
from pvshadow.guests.kernels import load_kernel
from pvshadow.shadow.exits import ExitReason
from pvshadow.shadow.host import Host
from pvshadow.shadow.p2m import INVALID_MFN

OP_WRITE, OP_READ, OP_DONE = 1, 2, 3
MEMORY_MB = 4
FIRST_FREE_GFN = 0x200              # past the bootstrap region: RAM the kernel never uses


class PokeGuest:
    def __init__(self, host: Host, memory_mb: int = MEMORY_MB, vm_event_ring: bool = False):
        self.host = host
        image = load_kernel('poke')
        self.d = build_domain(host, image, memory_mb=memory_mb, paging='translated',
                              audit=True, vm_event_ring=vm_event_ring)
        self.poll = image.symbols['poll']
        self.mbox_gfn = (image.symbols['mbox_op'] - image.virt_base) >> 12
        cpu = host.cpu
        if cpu.guest is not None and cpu.guest.entered:     # another domain was running
            cpu.guest.saved_state = cpu.save_state()
            cpu.guest.unload_watches()
            cpu.guest = None
        exit_ = self.run()
        assert exit_.reason is ExitReason.BREAKPOINT, (exit_.describe(), self.d.console)

    def run(self):
        """Run this domain on the host's one CPU (its context switched in, as the
        scheduler would) until its next stop at `poll`."""
        v = self.d.vcpus[0]
        if v.entered and self.host.cpu.guest is not v:
            self.d._switch_to(v)
        self.d.add_breakpoint(self.poll)            # the CPU's hook is by address: only
        try:                                        # the running domain's may be there
            return self.d.run(timeout=20)
        finally:
            self.d.remove_breakpoint(self.poll)

    @property
    def domid(self) -> int:
        return self.d.domid

    def _mbox(self, op: int, gfn: int = 0, offset: int = 0, value: int = 0) -> None:
        mfn = self.d.p2m[self.mbox_gfn]
        self.d.mem.write(mfn << 12, struct.pack('<4Q', op, gfn, offset, value))

    def _result(self):
        mfn = self.d.p2m[self.mbox_gfn]
        result, status = struct.unpack('<2Q', self.d.mem.read((mfn << 12) + 32, 16))
        return result, status

    def step(self, op: int, gfn: int, offset: int, value: int):
        """One access by the guest; returns the exit and (result, fault vector or 0)."""
        self._mbox(op, gfn, offset, value)
        exit_ = self.run()
        return exit_, self._result()

    def write(self, gfn: int, value: int, offset: int = 0) -> int:
        """The guest's store; 0, or the fault vector it took."""
        exit_, (_, status) = self.step(OP_WRITE, gfn, offset, value)
        assert exit_.reason is ExitReason.BREAKPOINT, (exit_.describe(), self.d.console)
        return status

    def read(self, gfn: int, offset: int = 0):
        """The guest's load: (value, 0), or (None, fault vector)."""
        exit_, (result, status) = self.step(OP_READ, gfn, offset, 0)
        assert exit_.reason is ExitReason.BREAKPOINT, (exit_.describe(), self.d.console)
        return (None, status) if status else (result, 0)

    def finish(self):
        self._mbox(OP_DONE)
        v = self.d.vcpus[0]
        if self.host.cpu.guest is not v:
            self.d._switch_to(v)
        return self.d.run(timeout=20)

    # --- what the hypervisor holds, read directly ----------------------------------------------
    def frame(self, gfn: int, view: int = 0) -> int:
        return self.d.p2m_state.lookup(view, gfn).mfn

    def contents(self, gfn: int, view: int = 0):
        mfn = self.frame(gfn, view)
        if mfn == INVALID_MFN:
            return None
        return struct.unpack('<Q', self.d.mem.read(mfn << 12, 8))[0]

    def set_contents(self, gfn: int, value: int) -> None:
        self.d.mem.write(self.frame(gfn) << 12, struct.pack('<Q', value))


class ForkGuest(PokeGuest):
    """A fork of a PokeGuest (XENMEM_sharing_op_fork): the same kernel, stopped where its
    parent stopped, its memory fetched from the parent as it touches it."""

    def __init__(self, parent: PokeGuest, child):
        self.host, self.d = parent.host, child
        self.poll, self.mbox_gfn = parent.poll, parent.mbox_gfn

    def _mbox(self, op: int, gfn: int = 0, offset: int = 0, value: int = 0) -> None:
        if self.d.p2m_state.host(self.mbox_gfn).mfn == INVALID_MFN:
            assert self.host.sharing.fork_page(self.d, self.mbox_gfn, write=True)
        super()._mbox(op, gfn, offset, value)


def checks(host: Host) -> list:
    """Every invariant: sharing (rmap, counts, ownership, read-only everywhere, views
    following their sources), the frame ledger, each domain's shadows in every view."""
    problems = host.sharing.audit() + host.audit_frames()
    for d in host.domains.values():
        if getattr(d, 'translated', False) and not d.dying:
            problems += [f'd{d.domid} {p}' for p in d.paging.audit()]
    return problems


def new_host(machine_mb: int = 64) -> Host:
    return Host(machine_mb)
