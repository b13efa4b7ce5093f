"""An in-process mem_access listener: what xen-access does, as a Python API.

    listener = Listener(domain)                  # PG_mem_access + ring + vm_event enable
    listener.set_access('rx', first_mfn, nr)     # watch writes
    for event in listener.events():              # runs the domain; one event per request
        print(event.describe())
        event.respond(emulate=True)              # or access='rwx', or nothing (resume)
    listener.exit                                # how the domain's run ended

An event not answered by the time the loop asks for the next one is answered with a
plain resume (the vCPU goes on and retries the access).

The fast path, for a listener in this process that answers at once:

    listener.run(lambda event: event.respond(access='rwx'))     # returns the exit

calls the function inside the hypervisor's fault hook for each request, with the same
Event, and applies the answer there: no ring, no pause, no stop and restart of the CPU.
The events and their order are the same as through the ring.
"""
import json
import struct
from typing import Iterator, Optional

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import ACCESS_BY_NAME, ACCESS_NAMES
from pvshadow.shadow.exits import Exit, ExitReason
from pvshadow.shadow.toolstack import (xc_domain_set_access_required, xc_get_mem_access,
                              xc_mem_access_enable, xc_mem_access_resume,
                              xc_mem_access_shadow_enable, xc_set_mem_access)


class ListenerError(Exception):
    pass


def _access_value(access) -> int:
    return ACCESS_BY_NAME[access] if isinstance(access, str) else int(access)


# A request's head as the response needs it (version, flags, reason, vcpu_id,
# altp2m_idx, mem_access.gfn), and a whole response in one pack: the same head, then
# the mem_access flags, the rest zero.
_REQUEST_HEAD = struct.Struct('<IIIIH6xQ')
_RESPONSE = struct.Struct('<IIIIH6xQ16xI%dx' % (xen.vm_event_st.size() - 52))
assert _RESPONSE.size == xen.vm_event_st.size()
_ALTERNATE_P2M, _TOGGLE_SINGLESTEP = (xen.VM_EVENT_FLAG_ALTERNATE_P2M,
                                      xen.VM_EVENT_FLAG_TOGGLE_SINGLESTEP)
_VCPU_PAUSED, _EMULATE = xen.VM_EVENT_FLAG_VCPU_PAUSED, xen.MEM_ACCESS_EMULATE


class Event:
    def __init__(self, listener: 'Listener', request: xen.vm_event_st):
        self.listener = listener
        self.request = request
        self.responded = False

    @property
    def gfn(self) -> int:
        return self.request.mem_access.gfn

    @property
    def gla(self) -> int:
        return self.request.mem_access.gla

    @property
    def offset(self) -> int:
        return self.request.mem_access.offset

    @property
    def flags(self) -> int:
        return self.request.mem_access.flags

    @property
    def access(self) -> str:
        f = self.flags
        return ('r' if f & xen.MEM_ACCESS_R else '-') + ('w' if f & xen.MEM_ACCESS_W else '-') + \
            ('x' if f & xen.MEM_ACCESS_X else '-')

    @property
    def paused(self) -> bool:
        return bool(self.request.flags & xen.VM_EVENT_FLAG_VCPU_PAUSED)

    @property
    def reason(self) -> int:
        return self.request.reason

    @property
    def view(self) -> Optional[int]:
        """The altp2m view the event happened in (None: altp2m is off)."""
        if self.request.flags & xen.VM_EVENT_FLAG_ALTERNATE_P2M:
            return self.request.altp2m_idx
        return None

    def describe(self) -> str:
        """One line, as xen-access prints a mem_access (or single-step) event; with the
        view for a translated domain, as xen-access's altp2m-aware line."""
        translated = getattr(self.listener.domain, 'translated', False)
        if self.reason == xen.VM_EVENT_REASON_SINGLESTEP:
            return (f'Singlestep: rip={self.request.regs.rip:016x}, vcpu '
                    f'{self.request.vcpu_id}, altp2m {self.request.altp2m_idx}')
        f = self.flags
        yn = lambda bit: 'y' if f & bit else 'n'      # noqa: E731
        return (f'PAGE ACCESS: {self.access} for GFN {self.gfn:x} (offset {self.offset:06x}) '
                f'gla {self.gla:016x} (valid: {yn(xen.MEM_ACCESS_GLA_VALID)}; fault in gpt: '
                f'{yn(xen.MEM_ACCESS_FAULT_IN_GPT)}; fault with gla: '
                f'{yn(xen.MEM_ACCESS_FAULT_WITH_GLA)}) (vcpu {self.request.vcpu_id} '
                f'[{"p" if self.paused else "r"}]' +
                (f', altp2m view {self.request.altp2m_idx})' if translated else ')'))

    def as_dict(self) -> dict:
        """The request as the tracer's vm_event event (integers)."""
        from pvshadow.shadow.vm_event import mem_access_record
        return mem_access_record(self.request)

    def to_json(self) -> str:
        return json.dumps(self.as_dict())

    def respond(self, emulate: bool = False, access=None, view: Optional[int] = None,
                toggle_singlestep: bool = False) -> None:
        """Resume the vCPU; optionally change this frame's access first, let the
        faulting instruction through once (MEM_ACCESS_EMULATE), switch the vCPU to an
        altp2m view (VM_EVENT_FLAG_ALTERNATE_P2M), or toggle single-step monitoring."""
        self.listener.respond(self, emulate=emulate, access=access, view=view,
                              toggle_singlestep=toggle_singlestep)

    in_hook = False                      # answered inside the fault hook (Listener.run)
    emulate = False


class Listener:
    def __init__(self, domain, access_required: bool = False):
        self.domain = domain
        if domain.mem_access is None:
            rc = xc_mem_access_shadow_enable(domain)
            if rc:
                raise ListenerError(f'PG_mem_access shadow mode: {rc}')
        rc, self.port, self.ring = xc_mem_access_enable(domain)
        if rc:
            raise ListenerError(f'vm_event enable: {rc} (was the domain created with its '
                                'vm_event ring page?)')
        if access_required:
            xc_domain_set_access_required(domain, True)
        self.exit: Optional[Exit] = None
        self.events_seen = 0

    def set_access(self, access, first_mfn: int, nr: int = 1) -> int:
        return xc_set_mem_access(self.domain, _access_value(access), first_mfn, nr)

    def set_default_access(self, access) -> int:
        return xc_set_mem_access(self.domain, _access_value(access), xen.ACCESS_START_DEFAULT, 0)

    def get_access(self, mfn: int) -> str:
        rc, value = xc_get_mem_access(self.domain, mfn)
        if rc:
            raise ListenerError(f'get_access of mfn {mfn:#x}: {rc}')
        return ACCESS_NAMES[value]

    def respond(self, event: Event, emulate: bool = False, access=None,
                view: Optional[int] = None, toggle_singlestep: bool = False) -> None:
        if event.responded:
            return
        _version, req_flags, reason, vcpu_id, req_view, gfn = \
            _REQUEST_HEAD.unpack_from(event.request)
        if access is not None:
            if req_flags & _ALTERNATE_P2M and req_view:      # the event's altp2m view
                from pvshadow.shadow.toolstack import xc_altp2m_set_mem_access
                xc_altp2m_set_mem_access(self.domain, req_view, gfn, _access_value(access))
            else:
                xc_set_mem_access(self.domain, _access_value(access), gfn, 1)
        flags = (_ALTERNATE_P2M if view is not None else 0) | \
            (_TOGGLE_SINGLESTEP if toggle_singlestep else 0)
        if event.in_hook:
            if flags:
                from pvshadow.shadow.mem_access import apply_response_flags
                apply_response_flags(self.domain.vcpus[vcpu_id], flags, view or 0)
            event.emulate, event.responded = emulate, True
            return
        # as xen-access answers: a zeroed response with the request's reason, vCPU and
        # gfn, its pause flag, and what the answer asks
        self.ring.put_response(_RESPONSE.pack(
            xen.VM_EVENT_INTERFACE_VERSION, req_flags & _VCPU_PAUSED | flags, reason, vcpu_id,
            view or 0, gfn, _EMULATE if emulate else 0))
        event.responded = True

    def altp2m_watch(self, default_access) -> int:
        """xen-access's altp2m modes: altp2m on, a view whose every gfn has
        default_access, every vCPU switched to it; returns the view."""
        from pvshadow.shadow.toolstack import (xc_altp2m_create_view,
                                               xc_altp2m_set_domain_state,
                                               xc_altp2m_switch_to_view)
        rc = xc_altp2m_set_domain_state(self.domain, True)
        if rc == 0:
            rc, view = xc_altp2m_create_view(self.domain, _access_value(default_access))
        if rc == 0:
            rc = xc_altp2m_switch_to_view(self.domain, view)
        if rc:
            raise ListenerError(f'altp2m view: {rc} (a translated domain is needed)')
        return view

    def run(self, on_event, timeout: Optional[float] = 60.0, budget: int = 0) -> Exit:
        """Run the domain, calling on_event(event) inside the fault hook for each request
        (an event it does not answer is a plain resume); returns how the run ended."""
        access = self.domain.mem_access

        def in_hook(request) -> bool:
            event = Event(self, request)
            event.in_hook = True
            self.events_seen += 1
            on_event(event)
            return event.emulate
        access.in_hook = in_hook
        try:
            self.exit = self.domain.run(budget=budget, timeout=timeout)
        finally:
            access.in_hook = None
        return self.exit

    def events(self, timeout: Optional[float] = 60.0, budget: int = 0) -> Iterator[Event]:
        """Run the domain, yielding each vm_event request; ends when the domain's run
        ends for any other reason (self.exit says which)."""
        while True:
            exit_ = self.domain.run(budget=budget, timeout=timeout)
            if exit_.reason is not ExitReason.VM_EVENT:
                self.exit = exit_
                return
            for request in self.ring.take_requests():
                event = Event(self, request)
                self.events_seen += 1
                yield event
                if not event.responded:
                    event.respond()
            xc_mem_access_resume(self.domain)
