"""HYPERVISOR_event_channel_op: ports within the domain (loopback interdomain, IPIs,
VIRQs) and the notifications to the hypervisor's console and xenstore backends."""
import struct

from pvshadow.shadow import evtchn_fifo, xsm
from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import ENOSYS
from pvshadow.shadow.evtchn import Port


def _port_arg(v, arg) -> int:
    return struct.unpack('<I', v.copy_from_guest(arg, 4))[0]


def do_event_channel_op(v, cmd, arg, *_):
    ec = v.domain.evtchn
    if cmd == xen.EVTCHNOP_send:
        return ec.send(_port_arg(v, arg))
    if cmd == xen.EVTCHNOP_unmask:
        return ec.unmask(_port_arg(v, arg))
    if cmd == xen.EVTCHNOP_close:
        return ec.close(_port_arg(v, arg))
    if cmd == xen.EVTCHNOP_alloc_unbound:
        op = v.read_struct(xen.evtchn_alloc_unbound, arg)
        d, rc = xsm.target_domain(v.domain, op.dom)   # another domain's port: its toolstack's
        if rc:
            return rc
        return _reply(v, arg, op, d.evtchn.alloc_unbound(op.remote_dom))
    if cmd == xen.EVTCHNOP_bind_interdomain:
        op = v.read_struct(xen.evtchn_bind_interdomain, arg)
        return _reply(v, arg, op, ec.bind_interdomain(op.remote_dom, op.remote_port), 'local_port')
    if cmd == xen.EVTCHNOP_bind_virq:
        op = v.read_struct(xen.evtchn_bind_virq, arg)
        return _reply(v, arg, op, ec.bind_virq(op.virq, op.vcpu))
    if cmd == xen.EVTCHNOP_bind_ipi:
        op = v.read_struct(xen.evtchn_bind_ipi, arg)
        if op.vcpu >= len(v.domain.vcpus):
            return -xen.ENOENT
        return _reply(v, arg, op, ec.alloc(Port(xen.EVTCHNSTAT_ipi, vcpu=op.vcpu)))
    if cmd == xen.EVTCHNOP_status:
        op = v.read_struct(xen.evtchn_status, arg)
        d, rc = xsm.target_domain(v.domain, op.dom)
        if rc:
            return rc
        ec = d.evtchn
        if not ec.port_is_valid(op.port):
            return -xen.EINVAL            # Xen's port_is_valid
        port = ec.ports.get(op.port)
        if port is None:
            op.status, op.vcpu, op.u = xen.EVTCHNSTAT_closed, 0, 0
        else:
            op.status, op.vcpu = port.state, port.vcpu
            op.u = port.virq if port.state == xen.EVTCHNSTAT_virq else \
                port.remote_dom | (port.remote_port << 32)
        v.copy_to_guest(arg, bytes(op))
        return 0
    if cmd == xen.EVTCHNOP_init_control:
        op = v.read_struct(xen.evtchn_init_control, arg)
        op.link_bits = xen.EVTCHN_FIFO_LINK_BITS
        rc = evtchn_fifo.init_control(v.domain, op.control_gfn, op.offset, op.vcpu)
        if rc == 0:
            v.copy_to_guest(arg, bytes(op))
        return rc
    if cmd == xen.EVTCHNOP_expand_array:
        op = v.read_struct(xen.evtchn_expand_array, arg)
        return evtchn_fifo.expand_array(v.domain, op.array_gfn)
    if cmd == xen.EVTCHNOP_set_priority:
        op = v.read_struct(xen.evtchn_set_priority, arg)
        if not ec.port_is_valid(op.port):
            return -xen.EINVAL
        if ec.fifo is None:
            return -ENOSYS                # the 2-level ABI has no priorities
        port = ec.ports.get(op.port)
        if port is None:                  # a free port: checked, then reset when used
            return evtchn_fifo.set_priority(Port(0), op.priority)
        return evtchn_fifo.set_priority(port, op.priority)
    return -ENOSYS


def _reply(v, arg, op, port: int, field: str = 'port') -> int:
    """Write the new port into the guest's structure, or pass an errno through."""
    if port < 0:
        return port
    setattr(op, field, port)
    v.copy_to_guest(arg, bytes(op))
    return 0
