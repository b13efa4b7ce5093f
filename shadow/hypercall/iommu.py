"""__HYPERVISOR_iommu_op (56): pvshadow's PV-IOMMU, after XenServer's never-merged
interface (docs/ABI.md, docs/GRANTS_IOMMU.md). iommu_op(ops, count): an array of 32-byte
pv_iommu_op, each answered in its status field (0 or a negative errno); the call returns
0, or -EFAULT for an op it cannot read or write back.

  query_caps               flags out: IOMMU_QUERY_map_cap
  map_page                 the caller's own pfn `gfn` at `bfn` (readable, writeable)
  unmap_page               the caller's explicit mapping at `bfn`
  lookup_foreign_page      client `domid`'s pfn `gfn` by reference; `bfn` out (= the MFN);
                           for the control domain or one whose target set holds the client
  unmap_foreign_page       drops one such mapping at `bfn`
"""
from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EFAULT, EINVAL, ENOSYS, ESRCH
from pvshadow.shadow.iommu import may_map_client
from pvshadow.shadow.vcpu import GuestFault

_SIZE = xen.pv_iommu_op.size()


def do_iommu_op(v, uops, count, *_):
    count &= 0xFFFFFFFF
    for i in range(count):
        if i and v.preempt_check(i):
            return v.create_continuation(xen.HYPERVISOR_iommu_op, uops + i * _SIZE, count - i)
        try:
            op = v.read_struct(xen.pv_iommu_op, uops + i * _SIZE)
        except GuestFault:
            return -EFAULT
        op.status = iommu_one(v.domain, op)
        try:
            v.copy_to_guest(uops + i * _SIZE, bytes(op))
        except GuestFault:
            return -EFAULT
    return 0


def iommu_one(d, op) -> int:
    flags = op.flags
    readable, writable = flags & xen.IOMMU_OP_readable, flags & xen.IOMMU_OP_writeable
    if op.subop_id == xen.IOMMUOP_query_caps:
        op.flags = xen.IOMMU_QUERY_map_cap
        return 0
    if op.subop_id == xen.IOMMUOP_map_page:
        if not readable or not d.pfn_valid(op.gfn):
            return -EINVAL
        return d.iommu.map_frame(op.bfn, d.p2m[op.gfn], d.domid, bool(writable), foreign=False)
    if op.subop_id == xen.IOMMUOP_unmap_page:
        return d.iommu.unmap_frame(op.bfn, foreign=False)
    if op.subop_id == xen.IOMMUOP_lookup_foreign_page:
        client = d.host.domains.get(op.domid)
        if client is None or client.dying or client is d:
            return -ESRCH if client is None or client.dying else -EINVAL
        rc = may_map_client(d, client)
        if rc:
            return rc
        if not readable or not client.pfn_valid(op.gfn):
            return -EINVAL
        mfn = client.p2m[op.gfn]
        rc = d.iommu.map_frame(mfn, mfn, client.domid, bool(writable), foreign=True)
        if rc == 0:
            op.bfn = mfn
        return rc
    if op.subop_id == xen.IOMMUOP_unmap_foreign_page:
        return d.iommu.unmap_frame(op.bfn, foreign=True)
    return -ENOSYS
