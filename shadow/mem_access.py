"""mem_access for PV guests on shadow paging (the design in ../shared/references/
mem-access-for-pv-guests.txt, made real).

A tracker holds each machine frame's access type, falling back to the domain default.
_sh_propagate folds it into every shadow L1 entry through `shadow_flags`; sh_page_fault
asks `on_fault` before propagating, so an access the type forbids becomes a vm_event
request (or, with no listener, a crash or a relaxation, as Xen does).

x86 page tables cannot say "write-only" or "execute-only": a frame whose type is w, x or
wx (or n, n2rwx) is not present in the shadows at all; an access its type permits is then
run once, single-stepped, with a temporary mapping that grants exactly that access, and
everything else is a violation. r and rx2rw map read-only and no-execute/executable; rw
maps writable no-execute; rx read-only executable; rwx is unrestricted.
"""
import struct
from typing import Dict, Optional

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import (ACCESS_NAMES, EINVAL, MEM_ACCESS_R, MEM_ACCESS_W, MEM_ACCESS_X,
                            XENMEM_access_default, XENMEM_access_n2rwx, XENMEM_access_rw,
                            XENMEM_access_rwx, XENMEM_access_rx2rw)
from pvshadow.shadow.exits import EventExit, Exit, ExitReason
from pvshadow.shadow.paging.x86 import (_PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_NX, _PAGE_PRESENT, _PAGE_RW,
                               ADDR_MASK, PFEC_INSN, PFEC_WRITE)

R, W, X = MEM_ACCESS_R, MEM_ACCESS_W, MEM_ACCESS_X
PERMITS = {0: 0, 1: R, 2: W, 3: R | W, 4: X, 5: R | X, 6: W | X, 7: R | W | X, 8: R | X, 9: 0}
# What a shadow L1 entry can show for each type: (present, writable, executable).
SHADOW_RIGHTS = {0: (False, False, False), 1: (True, False, False), 2: (False, False, False),
                 3: (True, True, False), 4: (False, False, False), 5: (True, False, True),
                 6: (False, False, False), 7: (True, True, True), 8: (True, False, True),
                 9: (False, False, False)}
CONTINUATION_CHUNK = 256            # frames handled per call before a continuation

RETRY, HANDLED = 'retry', 'handled'


def _wants_ad(level: int, entry: int, need: int) -> bool:
    """Whether a walk for this access sets accessed (or, at the leaf for a write,
    dirty) in this entry: a write to its table."""
    return not entry & _PAGE_ACCESSED or (level == 1 and need == W and not entry & _PAGE_DIRTY)


def _expressible(access: int, need: int) -> bool:
    """Whether a shadow entry can grant this access under this access type (else it is
    let through once under a temporary grant)."""
    present, writable, executable = SHADOW_RIGHTS[access]
    return present and (need != W or writable) and (need != X or executable)


def access_of_fault(error_code: int) -> int:
    if error_code & PFEC_WRITE:
        return W
    if error_code & PFEC_INSN:
        return X
    return R


def rights_str(bits: int) -> str:
    return ('r' if bits & R else '-') + ('w' if bits & W else '-') + ('x' if bits & X else '-')


_RIGHTS = {bits: rights_str(bits) for bits in range(8)}


class MemAccess:
    """The access tracker of one domain, and what happens on a violation."""

    def __init__(self, domain):
        self.domain = domain
        self.default = XENMEM_access_rwx
        self.tracker: Dict[int, int] = {}
        self.access_required = False
        self.channel = None                  # VmEventChannel when a listener is connected
        # An in-process listener answering inside the fault hook (Listener.run): called
        # with each request, returns whether to emulate; no ring, pause or CPU stop.
        self.in_hook = None
        self.stats = {'violations': 0, 'events': 0, 'relaxed': 0, 'granted_once': 0}
        self._request = bytearray(xen.vm_event_st.size())     # _send's, reused

    view = None                              # the altp2m view an event comes from

    # --- the tracker ---------------------------------------------------------------------
    def get(self, mfn: int) -> int:
        return self.tracker.get(mfn, self.default)

    host_get = get

    def valid(self, frame: int) -> bool:
        """Whether set/get_access may name this frame (a PV domain's own mfn)."""
        return self.domain.owns(frame)

    def set_default(self, access: int) -> None:
        self.default = access
        self.domain.paging.shadow_blow_tables()

    def set_one(self, mfn: int, access: int) -> None:
        if access == XENMEM_access_default:
            self.tracker.pop(mfn, None)
        else:
            self.tracker[mfn] = access
        self.domain.paging.sh_remove_all_mappings(mfn)

    def set_access(self, first: int, nr: int, access: int, start: int = 0) -> int:
        """XENMEM_access_op set_access. first == ~0 sets the default. Returns 0 when done,
        the index to continue from (> 0), or -EINVAL: an access type out of range, or a
        frame the domain does not own anywhere in the range (then nothing changes)."""
        if access > XENMEM_access_default:
            return -EINVAL
        if first == xen.ACCESS_START_DEFAULT:
            if access == XENMEM_access_default:
                return -EINVAL
            self.set_default(access)
            return 0
        owns = self.valid
        if nr == 1 and start == 0:                  # a listener's answer: one frame
            if not owns(first):
                return -EINVAL
            self.set_one(first, access)
            return 0
        if start == 0 and not all(owns(first + i) for i in range(nr)):
            return -EINVAL
        end = min(nr, start + CONTINUATION_CHUNK)
        for i in range(start, end):
            self.set_one(first + i, access)
        return end if end < nr else 0

    def get_access(self, pfn: int):
        """(rc, access) for one frame, or the default for pfn == ~0."""
        if pfn == xen.ACCESS_START_DEFAULT:
            return 0, self.default
        if not self.valid(pfn):
            return -EINVAL, 0
        return 0, self.host_get(pfn)

    # --- shadows -------------------------------------------------------------------------------
    def shadow_policy(self, target: int, flags: int) -> int:
        """The L1 policy _sh_propagate applies: rights the access type cannot show go."""
        present, writable, executable = SHADOW_RIGHTS[self.get(target)]
        if not present:
            return 0
        if not writable:
            flags &= ~(_PAGE_RW | _PAGE_DIRTY)
        if not executable:
            flags |= _PAGE_NX
        return flags

    shadow_policy.describe = 'mem_access'      # how ShadowPaging.explain_l1 names it

    # --- faults ---------------------------------------------------------------------------------
    def on_fault(self, vcpu, levels, mfn: int, va: int, error_code: int,
                 leaf_walk: bool = False) -> str:
        """The guest's tables allow this access (levels: the walk's (level, table, index,
        entry) records; mfn: the frame); does the frame's access type? RETRY lets
        sh_page_fault propagate; HANDLED means an event, a crash or a single step. A
        listener's "emulate" covers the whole access: the walk's A/D updates and the
        access itself. leaf_walk: levels is a four-level walk to a 4 KiB leaf, whose
        A/D bits a grant sets without walking again."""
        need = access_of_fault(error_code)
        emulate, vcpu.emulate_once = vcpu.emulate_once, False
        if not emulate:
            gpt = self._gpt_violation(vcpu, levels, va, need)
            if gpt is not None:
                return gpt
        return self._check(vcpu, mfn, va & 0xFFF, va, need, xen.MEM_ACCESS_FAULT_WITH_GLA,
                           emulate=emulate, levels=levels if leaf_walk else None)

    def _tables_unwatched(self, levels) -> bool:
        """Whether no table of this walk can refuse the walk's A/D writes: the default
        lets tables be written and none of them has an access type of its own (the
        common case, decided without reading each table's type)."""
        if not PERMITS[self.default] & W:
            return False
        tracker = self.tracker
        for _level, table_mfn, _index, _entry in levels:
            if table_mfn in tracker:
                return False
        return True

    def _tables_refusing_ad(self, levels, need: int):
        """(table, index) of each entry whose A/D write this walk needs and whose table's
        access type refuses writes; each asked when reached (an answer for one table may
        change the next one's type). Callers ask _tables_unwatched first: the common
        case then makes no generator."""
        for level, table_mfn, index, entry in levels:
            if _wants_ad(level, entry, need) and not PERMITS[self.get(table_mfn)] & W:
                yield table_mfn, index

    def _gpt_violation(self, vcpu, levels, va: int, need: int) -> Optional[str]:
        """The walk is about to set A/D bits in a guest table: a write to that table."""
        if self._tables_unwatched(levels):
            return None
        for table_mfn, index in self._tables_refusing_ad(levels, need):
            if self._check(vcpu, table_mfn, index * 8, va, W,
                           xen.MEM_ACCESS_FAULT_IN_GPT) is HANDLED:
                return HANDLED
        return None

    def allows_silently(self, levels, mfn: int, need: int) -> bool:
        """Whether on_fault would let this walk's access through with no event, grant or
        state change (every A/D-wanting table writable, the frame's access expressible
        in a shadow)."""
        if not self._tables_unwatched(levels) and \
                next(self._tables_refusing_ad(levels, need), None) is not None:
            return False
        access = self.get(mfn)
        return bool(PERMITS[access] & need) and _expressible(access, need)

    def allow_pt_write(self, vcpu, table_mfn: int, va: int, in_fault_hook: bool = True) -> bool:
        """An emulated store into a guest page table honours the table's access.
        in_fault_hook: asked from the #PF hook, before any register was written (else
        after a single step)."""
        emulate, vcpu.emulate_once = vcpu.emulate_once, False
        return self._check(vcpu, table_mfn, va & 0xFFF, va, W, xen.MEM_ACCESS_FAULT_WITH_GLA,
                           emulating=True, emulate=emulate, in_fault_hook=in_fault_hook) is RETRY

    def _check(self, vcpu, mfn: int, offset: int, va: int, need: int, kind: int,
               emulating: bool = False, emulate: bool = False,
               in_fault_hook: bool = True, levels=None) -> str:
        access = self.get(mfn)
        if PERMITS[access] & need:
            if emulating or _expressible(access, need):
                return RETRY
            return self._grant_once(vcpu, mfn, va, need, levels)
        if emulate:
            # Let this access through once: a page-table store goes ahead; a data access
            # runs under a grant.
            return RETRY if emulating else self._grant_once(vcpu, mfn, va, need, levels)
        if vcpu.step_grant and not emulating:
            # The instruction already runs under one grant and needs another: an event
            # here would be answered by a grant the next fault (the first one again)
            # consumes, forever. A store is emulated; anything else ends the run
            # (request_step: internal_error), as docs/MEM_ACCESS.md says.
            return self._grant_once(vcpu, mfn, va, need, levels)
        self.stats['violations'] += 1
        if access == XENMEM_access_rx2rw and need == W:
            self.set_one(mfn, XENMEM_access_rw)
            return RETRY
        if access == XENMEM_access_n2rwx:
            self.set_one(mfn, XENMEM_access_rwx)
            if self.channel is not None:
                self._send(vcpu, mfn, offset, va, need, kind, pause=False,
                           in_fault_hook=in_fault_hook)
            return RETRY
        if self.channel is None:
            if self.access_required:
                vcpu.crash(f'Memory access permissions failure, no vm_event listener: '
                           f'vCPU {vcpu.vcpu_id} of d{self.domain.domid}, mfn {mfn:#x} '
                           f'({rights_str(need)} against {ACCESS_NAMES[access]})')
                return HANDLED
            self.stats['relaxed'] += 1
            self.set_one(mfn, XENMEM_access_rwx)
            return RETRY
        emulate_answer = self._send(vcpu, mfn, offset, va, need, kind, pause=True,
                                    in_fault_hook=in_fault_hook)
        if emulate_answer is None:
            return HANDLED                 # on the ring: the vCPU waits for the answer
        # Answered inside this hook (Listener.run): what the ring's resume would do next.
        if emulate_answer:
            vcpu.emulate_once = True       # the access runs again and is let through once
            return HANDLED
        if PERMITS[self.get(mfn)] & need:
            # relaxed: the retry would pass this check, so go on in this very fault
            return self._check(vcpu, mfn, offset, va, need, kind, emulating,
                               in_fault_hook=False)
        return HANDLED                     # a plain resume: the access faults again

    def _grant_once(self, vcpu, frame: int, va: int, need: int, levels=None) -> str:
        """Run the faulting instruction once with a mapping that grants `need`; the walk
        sets its accessed/dirty bits first, as the access itself would (on the fault's
        own four-level walk when levels is given). frame: the key the access type was
        read by (a PV guest's mfn, a translated guest's gfn, which its paging mode turns
        into the frame)."""
        self.stats['granted_once'] += 1
        paging = self.domain.paging
        mfn = paging.frame_of(vcpu, frame)
        if mfn is None:
            return RETRY
        pfec = PFEC_WRITE if need == W else PFEC_INSN if need == X else 0
        if levels is not None:
            paging.set_levels_ad(levels, pfec)
        else:
            paging.set_walk_ad(vcpu, va, pfec)
        if need == W and self._store_now(vcpu, mfn, va):
            return HANDLED                 # emulated as Xen does: no single step
        from pvshadow.shadow.paging.emulate import StepRequest
        flags = _PAGE_PRESENT | _PAGE_ACCESSED | (_PAGE_RW | _PAGE_DIRTY if need == W else 0)
        if need != X:
            flags |= _PAGE_NX
        vcpu.request_step(StepRequest(va, mfn, 0, 0, grant_flags=flags))
        return HANDLED

    def _store_now(self, vcpu, mfn: int, va: int) -> bool:
        """Apply the store at RIP to frame mfn, as Xen's emulator would; False (nothing
        done) for an instruction this path does not decode."""
        if not vcpu.emulator.emulate_store(va, mfn):
            return False
        self.domain.paging.guest_wrote((mfn << 12) | (va & 0xFFF), 8)
        return True

    def _emulate_at_resume(self, v, va: int, error_code: int, walk, rip: int) -> bool:
        """An "emulate" answer to a paused write: the store the vCPU would retry, applied
        now, as its retry would apply it, when nothing changed since its fault (its walk
        holds, it is the CPU's vCPU with RIP still on the faulting instruction, no step
        or single-step monitoring pending, and the frame still refuses the write),
        so the retry does not fault again. False: left to the retry."""
        paging = self.domain.paging
        root, levels, generation = walk
        if access_of_fault(error_code) != W or v.cpu.guest is not v or \
                v.pending_step is not None or v.monitor_step or \
                not paging._walk_holds(v, root, generation) or v.cpu.rip != rip:
            return False
        mfn = (levels[3][3] & ADDR_MASK) >> 12
        if PERMITS[self.get(mfn)] & W:
            return False                   # writes let through as well: the retry fills
        paging.set_levels_ad(levels, PFEC_WRITE)
        if not self._store_now(v, mfn, va):
            return False                   # the retry single-steps it under a grant
        self.stats['granted_once'] += 1
        return True

    def _send(self, vcpu, mfn: int, offset: int, va: int, need: int, kind: int,
              pause: bool, in_fault_hook: bool) -> Optional[bool]:
        """Put the request on the ring (None), or hand it to the in-hook listener and
        return its answer (whether to emulate). in_fault_hook: the registers are still
        the exception hook's saved copy (read without another context copy)."""
        req = self._request
        flags = _VCPU_PAUSED if pause else 0
        if self.view is not None:
            flags |= xen.VM_EVENT_FLAG_ALTERNATE_P2M
        _REQUEST_HEAD.pack_into(req, 0, xen.VM_EVENT_INTERFACE_VERSION, flags,
                                xen.VM_EVENT_REASON_MEM_ACCESS, vcpu.vcpu_id, self.view or 0,
                                mfn, offset, va, need | _GLA_VALID | kind)
        vcpu.cpu.pack_event_regs(req, _REQUEST_REGS, in_fault_hook)
        in_hook = self.in_hook if pause else None
        if in_hook is None:
            self.channel.put_request(req)
        self.stats['events'] += 1
        if in_hook is not None or self.domain.tracer is not None:
            # (the ring's common case builds no structure)
            request = _vm_event_st.from_buffer_copy(req)
            if self.domain.tracer is not None:
                from pvshadow.shadow.vm_event import mem_access_record
                self.domain.tracer(mem_access_record(request))
            if in_hook is not None:
                # answered now: whether to emulate (a register the listener wrote through
                # the CPU marks the exception hook's context copy stale)
                return bool(in_hook(request))
        if pause:
            vcpu.paused_for_event = True
        vcpu.request_exit(EventExit(_describe_request, need, mfn, va, pause))

    # --- the listener's side ------------------------------------------------------------------
    def resume(self) -> int:
        """XEN_VM_EVENT_RESUME: act on every response on the ring."""
        if self.channel is None:
            return -EINVAL
        vcpus = self.domain.vcpus
        for flags, vcpu_id, altp2m_idx, _gfn, access_flags in self.channel.take_responses():
            if vcpu_id >= len(vcpus):
                continue
            v = vcpus[vcpu_id]
            if access_flags & _EMULATE:
                v.emulate_once = True
            if flags & _RESPONSE_EXTRAS:
                apply_response_flags(v, flags, altp2m_idx)
            if flags & _VCPU_PAUSED:
                v.paused_for_event = False
                fault, v.event_fault = v.event_fault, None
                if fault is None:
                    continue
                # The access the vCPU retries: filled now if the answer lets it through
                # silently, or emulated now if the answer says so and nothing changed,
                # so that it does not fault a second time.
                va, error_code, walk, rip = fault
                if not v.emulate_once:
                    self.domain.paging.prefill(v, va, error_code, walk)
                elif self._emulate_at_resume(v, va, error_code, walk, rip):
                    v.emulate_once = False
        return 0


def _describe_request(need: int, mfn: int, va: int, paused: bool) -> str:
    """The message of a mem_access request's VM_EVENT exit."""
    return f'{_RIGHTS[need]} on mfn {mfn:#x} at {va:#x}{"" if paused else " (vCPU not paused)"}'


def apply_response_flags(v, flags: int, altp2m_idx: int) -> None:
    """What any vm_event response may ask besides its own reason's answer: a switch of
    altp2m view (an invalid one is ignored, as Xen does) and toggling single-step
    monitoring (RFLAGS.TF, owned by the monitor while it is on)."""
    if flags & xen.VM_EVENT_FLAG_ALTERNATE_P2M and \
            getattr(v.domain, 'p2m_state', None) is not None:
        from pvshadow.shadow.altp2m import switch_vcpu
        switch_vcpu(v, altp2m_idx)
    if flags & xen.VM_EVENT_FLAG_TOGGLE_SINGLESTEP:
        from pvshadow.shadow.cpu import RFLAGS_TF
        v.monitor_step = not v.monitor_step
        cpu = v.cpu
        if v.entered and cpu.guest is v:
            rflags = cpu.reg('rflags')
            cpu.set_reg('rflags', rflags | RFLAGS_TF if v.monitor_step else rflags & ~RFLAGS_TF)


def singlestep_event(v) -> None:
    """VM_EVENT_REASON_SINGLESTEP after one instruction of a monitored vCPU: on the
    ring, the vCPU paused (hvm_monitor_debug's single-step request)."""
    access = v.domain.mem_access
    if access is None or access.channel is None:
        v.monitor_step = False
        return
    req = xen.vm_event_st(version=xen.VM_EVENT_INTERFACE_VERSION,
                          flags=xen.VM_EVENT_FLAG_VCPU_PAUSED,
                          reason=xen.VM_EVENT_REASON_SINGLESTEP, vcpu_id=v.vcpu_id)
    p2m = getattr(v.domain, 'p2m_state', None)
    if p2m is not None and p2m.altp2m_active:
        req.altp2m_idx = v.altp2m_idx
        req.flags |= xen.VM_EVENT_FLAG_ALTERNATE_P2M
    v.cpu.snapshot_into(req.regs, True)
    access.channel.put_request(req)
    access.stats['events'] += 1
    v.paused_for_event = True
    v.request_exit(Exit(ExitReason.VM_EVENT, message=f'single step at {req.regs.rip:#x}'))


class TranslatedMemAccess(MemAccess):
    """mem_access of a translated domain: keyed by gfn, per view. The tracker and
    default are the host p2m's access; `view` (set by the fault path) says which view an
    access type is read from or relaxed in, and goes into the request."""

    def host_get(self, gfn: int) -> int:
        return self.tracker.get(gfn, self.default)

    def _tables_unwatched(self, levels) -> bool:
        return False                    # a view's types are not in the host's tracker

    def get(self, gfn: int) -> int:
        if self.view:
            return self.domain.p2m_state.lookup(self.view, gfn).access
        return self.host_get(gfn)

    def valid(self, gfn: int) -> bool:
        from pvshadow.shadow.p2m import INVALID_MFN
        return self.domain.p2m_state.host(gfn).mfn != INVALID_MFN

    def set_default(self, access: int) -> None:
        self.default = access
        self.domain.paging.p2m_changed((0,), None, None)

    def set_one(self, gfn: int, access: int) -> None:
        if self.view:
            self.domain.p2m_state.set_view_access(self.view, gfn, access)
        else:
            self.set_host(gfn, access)

    def set_host(self, gfn: int, access: int) -> None:
        if access == XENMEM_access_default:
            self.tracker.pop(gfn, None)
        else:
            self.tracker[gfn] = access
        self.domain.paging.p2m_changed((0,), gfn, self.domain.p2m_state.host(gfn).mfn)


_vm_event_st = xen.vm_event_st
_EMULATE, _VCPU_PAUSED = xen.MEM_ACCESS_EMULATE, xen.VM_EVENT_FLAG_VCPU_PAUSED
# what apply_response_flags acts on
_RESPONSE_EXTRAS = xen.VM_EVENT_FLAG_ALTERNATE_P2M | xen.VM_EVENT_FLAG_TOGGLE_SINGLESTEP
_GLA_VALID = xen.MEM_ACCESS_GLA_VALID

# A mem_access request is written into one reused buffer with two packs: this one
# (version, flags, reason, vcpu_id, altp2m_idx, then the mem_access member: gfn, offset,
# gla, flags) and the registers (PhysicalCpu.pack_event_regs). The fields neither
# writes stay zero.
_REQUEST_HEAD = struct.Struct('<IIIIH6xQQQI4x')
_REQUEST_REGS = xen.vm_event_st.regs.offset
assert _REQUEST_HEAD.size == _REQUEST_REGS == 56


def access_op(domain, op: xen.xen_mem_access_op, start: int = 0) -> int:
    """XENMEM_access_op for a target domain, as its privileged listener issues it. set
    returns 0, a continuation index (> 0) to re-issue from, or -errno; get fills op.access."""
    from pvshadow.shadow.abi.xen import EOPNOTSUPP, ENOSYS
    access = domain.mem_access
    if access is None:
        return -EOPNOTSUPP                 # PG_mem_access shadow mode is not enabled
    if op.op == xen.XENMEM_access_op_set_access:
        return access.set_access(op.pfn, op.nr, op.access, start)
    if op.op == xen.XENMEM_access_op_get_access:
        rc, value = access.get_access(op.pfn)
        op.access = value
        return rc
    return -ENOSYS


def hvm_set_mem_access(domain, hop: xen.xen_hvm_set_mem_access, start: int = 0) -> int:
    """HVMOP_set_mem_access: the legacy name, the same operation."""
    return access_op(domain, xen.xen_mem_access_op(
        op=xen.XENMEM_access_op_set_access, access=hop.hvmmem_access, domid=hop.domid,
        nr=hop.nr, pfn=hop.first_pfn), start)


def hvm_get_mem_access(domain, hop: xen.xen_hvm_get_mem_access) -> int:
    op = xen.xen_mem_access_op(op=xen.XENMEM_access_op_get_access, domid=hop.domid, pfn=hop.pfn)
    rc = access_op(domain, op)
    hop.hvmmem_access = op.access
    return rc
