"""Event channels (Xen's 2-level ABI): per-port state, the pending and mask bitmaps in
shared_info, each vCPU's pending selector and upcall flags in its vcpu_info, and delivery
through the guest's event callback when its upcall mask allows.

The hypervisor's own ends sit behind ports too: the console and xenstore rings that
start_info names are interdomain channels whose other end is a backend here, called when
the guest notifies it (EVTCHNOP_send); the xenstore's is shadow/xenstore.py.
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EEXIST, EINVAL, ENOENT, ENOSPC

NR_PORTS = 64 * 64
_PENDING = xen.shared_info.evtchn_pending.offset
_MASK = xen.shared_info.evtchn_mask.offset
_SEL = xen.vcpu_info.evtchn_pending_sel.offset


@dataclass
class Port:
    state: int
    vcpu: int = 0
    virq: int = -1
    remote_dom: int = 0
    remote_port: int = 0
    backend: Optional[Callable[[], None]] = None     # the hypervisor's end of a channel
    # The FIFO ABI (shadow.evtchn_fifo): its priority, the queue it was last linked on,
    # and an event raised while its event word did not exist yet.
    priority: int = xen.EVTCHN_FIFO_PRIORITY_DEFAULT
    last_vcpu: int = 0
    last_priority: int = 0
    fifo_pending: bool = False


class EventChannels:
    def __init__(self, domain):
        self.d = domain
        self.ports: Dict[int, Port] = {}
        self.virqs: Dict[tuple, int] = {}            # (virq, vcpu) -> port
        self.fifo = None                              # FifoEvents once the guest switches

    # --- bitmaps ----------------------------------------------------------------------------
    def _bit(self, base: int, port: int):
        # Every caller has checked the port against the ABI first; this is the last line
        # that keeps a port from naming memory past the bitmap in shared_info.
        if not 0 <= port < NR_PORTS:
            raise ValueError(f'event channel port {port} is out of range')
        return (self.d.shared_info_mfn << 12) + base + (port // 64) * 8, 1 << (port % 64)

    def _test(self, base: int, port: int) -> bool:
        addr, bit = self._bit(base, port)
        return bool(self.d.mem.read_u64(addr) & bit)

    def _set(self, base: int, port: int, on: bool) -> bool:
        addr, bit = self._bit(base, port)
        word = self.d.mem.read_u64(addr)
        self.d.mem.write_u64(addr, word | bit if on else word & ~bit)
        return bool(word & bit)

    @staticmethod
    def port_is_valid(number: int) -> bool:
        """Within the 2-level ABI's ports (Xen's port_is_valid, every bucket allocated)."""
        return 0 <= number < NR_PORTS

    def is_pending(self, number: int) -> bool:
        if self.fifo is not None:
            return self.fifo.is_pending(number)
        return self._test(_PENDING, number)

    # --- ports ------------------------------------------------------------------------------
    def alloc(self, port: Port) -> int:
        fifo = self.fifo
        for number in range(1, NR_PORTS):
            if number not in self.ports and not (fifo is not None and fifo.is_busy(number)):
                self.ports[number] = port
                return number
        return -ENOSPC

    def set_pending(self, number: int) -> None:
        """evtchn_set_pending: mark the port, and if unmasked raise the vCPU's upcall."""
        port = self.ports.get(number)
        if port is None:
            return
        if self.fifo is not None:
            return self.fifo.set_pending(number, port)
        if self._set(_PENDING, number, True) or self._test(_MASK, number):
            return
        self._raise(port.vcpu, number // 64)

    def _raise(self, vcpu_id: int, word: int) -> None:
        v = self.d.vcpus[vcpu_id]
        sel = v.vcpu_info_maddr + _SEL
        self.d.mem.write_u64(sel, self.d.mem.read_u64(sel) | (1 << word))
        self.mark_events_pending(vcpu_id)

    def mark_events_pending(self, vcpu_id: int) -> None:
        """vcpu_mark_events_pending: the upcall flag, and a blocked vCPU woken."""
        v = self.d.vcpus[vcpu_id]
        self.d.mem.view[v.vcpu_info_maddr + xen.vcpu_info.evtchn_upcall_pending.offset] = 1
        if v.blocked:
            v.blocked = False
            v.runstate.change(xen.RUNSTATE_runnable, self.d.virtual_time)

    def _domain(self, domid: int):
        """The domain a port's far end lives in (this one, or another on the host)."""
        if domid in (xen.DOMID_SELF, self.d.domid):
            return self.d
        host = getattr(self.d, 'host', None)
        return host.domains.get(domid) if host is not None else None

    def send(self, number: int) -> int:
        port = self.ports.get(number)
        if port is None:
            return -EINVAL
        if port.state == xen.EVTCHNSTAT_interdomain:
            if port.backend is not None:
                port.backend()
            else:
                remote = self._domain(port.remote_dom)
                if remote is not None and remote.ended is None:
                    remote.evtchn.set_pending(port.remote_port)
        elif port.state == xen.EVTCHNSTAT_ipi:
            self.set_pending(number)
        return 0                                        # unbound: nothing to notify

    def unmask(self, number: int) -> int:
        port = self.ports.get(number)
        if port is None:
            return -EINVAL
        if self.fifo is not None:
            self.fifo.unmask(number, port)
            return 0
        if self._set(_MASK, number, False) and self._test(_PENDING, number):
            self._raise(port.vcpu, number // 64)
        return 0

    def close(self, number: int) -> int:
        port = self.ports.get(number)
        if port is None or port.backend is not None:
            return -EINVAL                              # the backends' channels stay
        del self.ports[number]
        # evtchn_free: a pending event must not greet the port's next user
        if self.fifo is not None:
            self.fifo.clear_pending(number)
        else:
            self._set(_PENDING, number, False)
        if port.state == xen.EVTCHNSTAT_virq:
            self.virqs.pop((port.virq, port.vcpu), None)
        if port.state == xen.EVTCHNSTAT_interdomain:
            remote = self._domain(port.remote_dom)
            other = remote.evtchn.ports.get(port.remote_port) if remote is not None else None
            if other is not None:
                # the far end stays allocated, unbound, for this domain to bind again
                other.state, other.remote_dom, other.remote_port = (
                    xen.EVTCHNSTAT_unbound, self.d.domid, 0)
        return 0

    def bind_virq(self, virq: int, vcpu: int) -> int:
        if virq >= xen.NR_VIRQS:
            return -EINVAL
        if vcpu >= len(self.d.vcpus):
            return -ENOENT
        if (virq, vcpu) in self.virqs:
            return -EEXIST
        number = self.alloc(Port(xen.EVTCHNSTAT_virq, vcpu=vcpu, virq=virq))
        if number > 0:
            self.virqs[(virq, vcpu)] = number
        return number

    def alloc_unbound(self, remote_dom: int) -> int:
        """A port another domain (or this one) may bind to (EVTCHNOP_alloc_unbound)."""
        if remote_dom == xen.DOMID_SELF:
            remote_dom = self.d.domid
        return self.alloc(Port(xen.EVTCHNSTAT_unbound, remote_dom=remote_dom))

    def bind_interdomain(self, remote_dom: int, remote_port: int) -> int:
        """Connect a new local port to remote_dom's unbound port that names this domain
        (Xen's evtchn_bind_interdomain, errnos included)."""
        remote = self._domain(remote_dom)
        if remote is None or remote.ended is not None:
            return -xen.ESRCH
        other = remote.evtchn.ports.get(remote_port) if self.port_is_valid(remote_port) else None
        if other is None or other.state != xen.EVTCHNSTAT_unbound or \
                other.remote_dom != self.d.domid:
            return -EINVAL
        number = self.alloc(Port(xen.EVTCHNSTAT_interdomain, remote_dom=remote.domid,
                                 remote_port=remote_port))
        if number > 0:
            other.state, other.remote_dom, other.remote_port = (
                xen.EVTCHNSTAT_interdomain, self.d.domid, number)
            # Xen: notifications on the unbound port may have been lost; always raise one
            self.set_pending(number)
        return number

    def close_all(self) -> None:
        """Domain destruction: every port closed, the far ends left unbound."""
        for number in list(self.ports):
            self.ports[number].backend = None
            self.close(number)

    def backend_port(self, backend: Callable[[], None]) -> int:
        """A channel whose other end is the hypervisor (console, xenstore)."""
        return self.alloc(Port(xen.EVTCHNSTAT_interdomain, remote_dom=0, backend=backend))
