"""Two domains on one host, an attacker and a victim, for the isolation tests and the
fuzz test. Neither runs: the attacker's vCPU 0 issues hypercalls straight into the
hypervisor's handlers (as its syscall would, continuations re-issued until done), with
its arguments in its own bootstrap region, and every call is followed by the checks the
isolation rules promise: the frame ledger holds, and the victim's memory is unchanged."""
import struct

from pvshadow.guests.builder import build_domain
from pvshadow.guests.kernels import load_kernel
from pvshadow.shadow.abi import xen
from pvshadow.shadow.host import Host
from pvshadow.shadow.paging.x86 import _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, translate
from pvshadow.shadow.vcpu import NO_RETURN

PAGE = 4096
MEMORY_MB = 8
MAX_CONTINUATIONS = 100_000
RW = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY
HYPERVISOR_VA = 0xFFFF830000000000


class Guest:
    """One built domain and the places in its address space a test needs."""

    def __init__(self, host: Host, paging: str, memory_mb: int = MEMORY_MB,
                 kernel: str = 'hello', **options):
        self.host = host
        self.d = build_domain(host, load_kernel(kernel), memory_mb=memory_mb, paging=paging,
                              **options)
        self.v = self.d.vcpus[0]
        layout = self.d.layout
        self.layout = layout
        # the padding after the bootstrap stack: mapped writable, free for arguments
        self.buf = layout.stack + 2 * PAGE
        self.scratch = layout.stack + 0x40000          # a page to remap at will
        self.readonly = layout.page_tables             # mapped read-only (the tables)
        self.unmapped = layout.v_end + 0x200000
        self.nr_pages = self.d.max_pages
        self.continuations = 0
        self.after_call = None            # run after every hypercall (the pair's checks)

    # --- the guest's memory, written as the guest itself would ---------------------------------
    def maddr(self, va: int) -> int:
        mem = self.d.mem
        return translate(mem.q, self.v.guest_table, va, set_ad=False)

    def poke(self, va: int, data: bytes) -> int:
        pos = 0
        while pos < len(data):
            chunk = min(len(data) - pos, PAGE - ((va + pos) & 0xFFF))
            self.d.mem.write(self.maddr(va + pos), data[pos:pos + chunk])
            pos += chunk
        return va

    def poke_if_mapped(self, va: int, data: bytes) -> None:
        """Write what lands in writable guest memory the guest's tables map; skip the
        rest (an argument buffer that is unmapped, read-only or the hypervisor's)."""
        for pos in range(0, len(data), 8):
            maddr = translate(self.d.mem.q, self.v.current_table(),
                              (va + pos) & 0xFFFFFFFFFFFFFFFF, True, set_ad=False)
            if maddr is not None and self.d.frames.owner[maddr >> 12] == self.d.domid and \
                    (maddr & 0xFFF) <= 0xFF8:
                self.d.mem.write(maddr, data[pos:pos + 8])

    def peek(self, va: int, size: int) -> bytes:
        return self.d.mem.read(self.maddr(va), size)

    def put(self, va: int, struct_obj) -> int:
        return self.poke(va, bytes(struct_obj))

    def unmapped_pfn(self, n: int = 1) -> int:
        """pfn nr_pages - n: outside the bootstrap region, not mapped anywhere."""
        return self.nr_pages - n

    def mfn(self, pfn: int) -> int:
        return self.d.p2m[pfn]

    def va_of_pfn(self, pfn: int) -> int:
        return self.layout.v_start + pfn * PAGE

    # --- hypercalls ----------------------------------------------------------------------------
    def call(self, nr: int, *args) -> int:
        """The hypercall as the guest's syscall makes it, continuations included."""
        v = self.v
        self.host.cpu.guest = v
        args = tuple(a & 0xFFFFFFFFFFFFFFFF for a in args) + (0,) * (6 - len(args))
        for _ in range(MAX_CONTINUATIONS):
            rc = v.hypercalls.call(v, nr, args)
            if v.continuation is None:
                if self.after_call is not None:
                    self.after_call()
                return 0 if rc is NO_RETURN else rc
            (nr, args), v.continuation = v.continuation, None
            args = tuple(args) + (0,) * (6 - len(args))
            self.continuations += 1
        raise AssertionError(f'hypercall {nr} still continuing after {MAX_CONTINUATIONS} rounds')

    def mmuext(self, cmd: int, arg1: int = 0, arg2: int = 0) -> int:
        self.put(self.buf, xen.mmuext_op(cmd=cmd, arg1=arg1, arg2=arg2))
        return self.call(xen.HYPERVISOR_mmuext_op, self.buf, 1, 0, xen.DOMID_SELF)

    def pin_l1(self, mfn: int) -> int:
        return self.mmuext(xen.MMUEXT_PIN_L1_TABLE, mfn)

    def mmu_update(self, ptr: int, val: int, pdone: int = 0) -> int:
        self.put(self.buf, xen.mmu_update(ptr=ptr, val=val))
        return self.call(xen.HYPERVISOR_mmu_update, self.buf, 1, pdone, xen.DOMID_SELF)

    def map(self, va: int, pte: int) -> int:
        return self.call(xen.HYPERVISOR_update_va_mapping, va, pte, xen.UVMF_INVLPG)

    def vcpu_op(self, cmd: int, vcpu: int, arg: bytes = b'') -> int:
        self.poke(self.buf, arg or bytes(8))
        return self.call(xen.HYPERVISOR_vcpu_op, cmd, vcpu, self.buf)

    def poll(self, ports, timeout: int = 0, nr_ports=None) -> int:
        ports_va = self.buf + 0x100
        self.poke(ports_va, struct.pack(f'<{len(ports)}I', *ports))
        self.put(self.buf, xen.sched_poll(ports=ports_va, timeout=timeout,
                                          nr_ports=len(ports) if nr_ports is None else nr_ports))
        return self.call(xen.HYPERVISOR_sched_op, xen.SCHEDOP_poll, self.buf)

    def memory_op(self, cmd: int, extents_va: int, nr: int) -> int:
        self.put(self.buf, xen.xen_memory_reservation(extent_start=extents_va, nr_extents=nr,
                                                      domid=xen.DOMID_SELF))
        return self.call(xen.HYPERVISOR_memory_op, cmd, self.buf)

    def send(self, port: int) -> int:
        self.poke(self.buf, struct.pack('<I', port))
        return self.call(xen.HYPERVISOR_event_channel_op, xen.EVTCHNOP_send, self.buf)


def memory_snapshot(d):
    """Which frames the domain owns, and every byte in them (but its grant frames, where
    the hypervisor marks a grant in use with GTF_reading/GTF_writing)."""
    owned = d.frames.owned_by(d.domid)
    runs, start = [], None                 # runs of consecutive frames, one slice each
    for prev, mfn in zip([None] + owned, owned + [None]):
        if mfn is not None and mfn in d.grant_frames:
            mfn = None
        if start is None:
            start = mfn
        elif mfn != prev + 1:
            runs.append((start, prev + 1))
            start = mfn
    view = d.mem.view
    return owned, b''.join(view[a << 12:b << 12] for a, b in runs)


def grant_read_only(victim, ref: int, domid: int, mfn: int) -> None:
    """The victim's grant entry ref, written as the victim would: read-only to domid."""
    from pvshadow.shadow.grant_table import table_of
    gt = table_of(victim.d)
    victim.d.mem.write(gt._entry_maddr(ref), struct.pack(
        '<HHI', xen.GTF_permit_access | xen.GTF_readonly, domid, mfn))


class Pair:
    """An attacker and a victim on one host."""

    def __init__(self, paging: str, machine_mb: int = 64):
        self.host = Host(machine_mb)
        self.attacker = Guest(self.host, paging)
        self.victim = Guest(self.host, paging, memory_mb=4)
        # The victim grants the attacker read-only access to a data page (ref 8) and to
        # its root page table (ref 9), and a page to a domain that is not there (ref 10).
        v = self.victim
        v.put(v.buf + 0x100, xen.gnttab_setup_table(dom=xen.DOMID_SELF, nr_frames=1,
                                                    frame_list=v.buf + 0x180))
        assert v.call(xen.HYPERVISOR_grant_table_op, xen.GNTTABOP_setup_table,
                      v.buf + 0x100, 1) == 0
        attacker = self.attacker.d.domid
        grant_read_only(v, 8, attacker, v.mfn(v.unmapped_pfn(1)))
        grant_read_only(v, 9, attacker, v.v.guest_table)
        grant_read_only(v, 10, 0x7777, v.mfn(v.unmapped_pfn(2)))
        self.victim_memory = memory_snapshot(self.victim.d)
        self.attacker.after_call = self.check

    def check(self):
        problems = self.violations()
        assert not problems, '\n'.join(problems[:20])

    def violations(self):
        problems = self.host.audit_frames()
        if memory_snapshot(self.victim.d) != self.victim_memory:
            problems.append('the victim domain\'s memory changed')
        return problems
