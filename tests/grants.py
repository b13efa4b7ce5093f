"""A host with a backend, a client and room for a third domain, for the grant, IOMMU and
DMA tests: each domain's hypercalls go straight into the hypervisor's handlers (as in
tests/hostile.py), and every call is followed by the frame ledger's audit and the
mapping checks issue 17 asks for: each maptrack record and IOMMU entry holds a counted
reference, and a frame with no reference is in no IOMMU table, shadow or maptrack."""
import struct

from pvshadow.shadow import grant_table as gnttab
from pvshadow.shadow.abi import xen
from pvshadow.shadow.host import Host
from pvshadow.shadow.lifecycle import add_target
from tests.hostile import Guest

GRANT = xen.GTF_permit_access


class GrantGuest(Guest):
    def __init__(self, host, paging, checks, **options):
        super().__init__(host, paging, **options)
        self.after_call = checks
        self.op_va = self.buf + 0x200

    # --- as granter ---------------------------------------------------------------------------
    def setup_table(self, nr_frames: int = 1) -> int:
        self.put(self.buf + 0x100, xen.gnttab_setup_table(dom=xen.DOMID_SELF, nr_frames=nr_frames,
                                                          frame_list=self.buf + 0x180))
        assert self.call(xen.HYPERVISOR_grant_table_op, xen.GNTTABOP_setup_table,
                         self.buf + 0x100, 1) == 0
        return self.d.grant_frames[0]

    def grant(self, ref: int, domid: int, mfn: int, flags: int = GRANT) -> None:
        """Write the entry as the guest would, into its own grant frame."""
        gt = gnttab.table_of(self.d)
        maddr = gt._entry_maddr(ref)
        if gt.version == 1:
            self.d.mem.write(maddr, struct.pack('<HHI', flags, domid, mfn))
        else:
            self.d.mem.write(maddr, struct.pack('<HHIQ', flags, domid, 0, mfn))

    def entry_flags(self, ref: int) -> int:
        gt = gnttab.table_of(self.d)
        if gt.version == 1:
            return gt.header(ref)[0]
        return struct.unpack('<H', self.d.mem.read(gt._status_maddr(ref), 2))[0]

    # --- as mapper ----------------------------------------------------------------------------------
    def gnttab(self, cmd: int, op, count: int = 1):
        self.put(self.op_va, op)
        rc = self.call(xen.HYPERVISOR_grant_table_op, cmd, self.op_va, count)
        return rc, type(op).from_buffer_copy(self.peek(self.op_va, type(op).size()))

    def map_grant(self, dom: int, ref: int, flags: int = xen.GNTMAP_host_map, host_addr=None):
        rc, op = self.gnttab(xen.GNTTABOP_map_grant_ref, xen.gnttab_map_grant_ref(
            host_addr=self.scratch if host_addr is None else host_addr, flags=flags, ref=ref,
            dom=dom))
        assert rc == 0
        return op

    def unmap_grant(self, handle: int, host_addr=None, dev_bus_addr: int = 0) -> int:
        rc, op = self.gnttab(xen.GNTTABOP_unmap_grant_ref, xen.gnttab_unmap_grant_ref(
            host_addr=self.scratch if host_addr is None else host_addr,
            dev_bus_addr=dev_bus_addr, handle=handle))
        assert rc == 0
        return op.status

    def copy(self, **fields) -> int:
        rc, op = self.gnttab(xen.GNTTABOP_copy, xen.gnttab_copy(**fields))
        assert rc == 0
        return op.status

    def iommu_op(self, subop: int, **fields):
        self.put(self.op_va, xen.pv_iommu_op(subop_id=subop, **fields))
        assert self.call(xen.HYPERVISOR_iommu_op, self.op_va, 1) == 0
        return xen.pv_iommu_op.from_buffer_copy(self.peek(self.op_va, 32))

    def lookup_foreign(self, domid: int, gfn: int, writable: bool = True):
        flags = xen.IOMMU_OP_readable | (xen.IOMMU_OP_writeable if writable else 0)
        op = self.iommu_op(xen.IOMMUOP_lookup_foreign_page, domid=domid, gfn=gfn, flags=flags)
        return op.status, op.bfn

    def get_mfn_from_pfn(self, domid: int, pfn: int):
        self.poke(self.buf + 0x300, struct.pack('<Q', pfn))
        self.poke(self.buf + 0x280, struct.pack('<H6xQQ', domid, 1, self.buf + 0x300))
        rc = self.call(xen.HYPERVISOR_memory_op, xen.XENMEM_get_mfn_from_pfn, self.buf + 0x280)
        return rc, struct.unpack('<Q', self.peek(self.buf + 0x300, 8))[0]

    def balloon_out(self, mfn: int) -> int:
        self.poke(self.buf + 0x300, struct.pack('<Q', mfn))
        return self.memory_op(xen.XENMEM_decrease_reservation, self.buf + 0x300, 1)

    def mapped_mfn(self, va=None):
        """The frame va maps in the guest's current tables (None: not present)."""
        from pvshadow.shadow.paging.x86 import translate
        maddr = translate(self.d.mem.q, self.v.current_table(),
                          self.scratch if va is None else va, set_ad=False)
        return None if maddr is None else maddr >> 12


class GrantHost:
    """Backend b (privileged over client c through the target set) and client c."""

    def __init__(self, paging: str, machine_mb: int = 64):
        self.host = Host(machine_mb)
        self.paging = paging
        self.b = GrantGuest(self.host, paging, self.check)
        self.c = GrantGuest(self.host, paging, self.check, memory_mb=4)
        assert add_target(self.host, self.b.d, self.c.d.domid) == 0
        self.c.setup_table()
        self.pfn = self.c.unmapped_pfn(3)       # a client page, unmapped from its own tables
        self.mfn = self.c.mfn(self.pfn)
        va = self.c.va_of_pfn(self.pfn)
        if self.c.mapped_mfn(va) == self.mfn:
            assert self.c.map(va, 0) == 0

    def new_domain(self, memory_mb: int = 4):
        return GrantGuest(self.host, self.paging, self.check, memory_mb=memory_mb)

    def check(self):
        problems = self.violations()
        assert not problems, '\n'.join(problems[:20])

    def violations(self):
        host = self.host
        problems = host.audit_frames()
        frames = host.frames
        for d in list(host.domains.values()):
            for mfn, holder, _ in gnttab.ledger_refs(d):
                if not frames.count[mfn]:
                    problems.append(f'{holder}: mfn {mfn:#x} has no reference')
            for bfn in list(d.iommu.mapped) + list(d.iommu.grant_counts):
                hit = d.iommu.lookup(bfn)
                if hit is not None and not frames.count[hit[0]]:
                    problems.append(f'd{d.domid} IOMMU bfn {bfn:#x}: a freed frame')
            for target, entries in getattr(d.paging, 'maps_of', {}).items():
                if entries and frames.is_valid(target) and not frames.count[target]:
                    problems.append(f'd{d.domid}: a shadow entry maps freed mfn {target:#x}')
        return problems
