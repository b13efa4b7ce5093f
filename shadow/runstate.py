"""vCPU runstate: the state a vCPU is in and the time spent in each, and the guest's copy
of it (the runstate area), updated whenever the vCPU is switched in.

An area registered by virtual address (VCPUOP_register_runstate_memory_area) has two
policies, chosen per domain (../shared/references/runstate-area-translation.txt):

- `each-switch` (Xen's classic behaviour): the address is walked in whatever page tables
  are current when the vCPU is switched in. A vCPU switched in while its user tables do
  not map the area (KPTI) misses that update: "failed to walk page-table va ..." is
  logged and the update skipped.
- `registration`: the address is walked once, at registration, and the frame is held
  with a writable type reference (so it can never be a page table meanwhile); every
  update goes there, whatever tables are current. Re-registration moves the reference;
  domain destruction drops it. An each-switch update writes under a transient writable
  reference, so it too never lands in a page table.

VCPUOP_register_runstate_phys_area names the area by guest frame and offset (the
interface the thread argues for): held the same way, under either policy, and while it is
registered the virtual-address area is not serviced. Time is the domain's virtual clock:
instructions scheduled.
"""
from typing import Optional

from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EINVAL

POLICIES = ('each-switch', 'registration')
AREA_SIZE = xen.vcpu_runstate_info.size()
NO_AREA = (1 << 64) - 1


class Runstate:
    def __init__(self, vcpu, now: int):
        self.vcpu = vcpu
        self.info = xen.vcpu_runstate_info(state=xen.RUNSTATE_offline, state_entry_time=now)
        self.va: Optional[int] = None         # area by virtual address
        self.held: Optional[int] = None       # machine address the area is held at
        self.phys = False                     # held through the physical interface
        self.updates = 0
        self.missed = 0

    def change(self, state: int, now: int) -> None:
        info = self.info
        info.time[info.state] += now - info.state_entry_time
        info.state = state
        info.state_entry_time = now

    # --- registration -------------------------------------------------------------------------
    @property
    def holder(self) -> str:
        return f'runstate d{self.vcpu.domain.domid}v{self.vcpu.vcpu_id}'

    def _hold(self, maddr: Optional[int]) -> int:
        """Hold the area's frame writable (it is written at every switch-in), dropping
        the frame held before; a frame that is, or is pinned as, a page table or a
        descriptor page is refused."""
        d = self.vcpu.domain
        if maddr is not None and d.types.get_writable_frame(maddr >> 12, d.domid, self.holder):
            return -EINVAL
        self._release()
        self.held = maddr
        return 0

    def _release(self) -> None:
        if self.held is not None:
            self.vcpu.domain.types.put_writable_frame(self.held >> 12, self.holder)
            self.held = None

    def register_va(self, caller, va: int) -> int:
        if (va & 0xFFF) + AREA_SIZE > 0x1000:
            return -EINVAL                    # the area may not cross a page boundary
        d = self.vcpu.domain
        if self.phys:
            self.va = va                      # not serviced while a physical area exists
            return 0
        if d.runstate_policy == 'registration':
            maddr = d.paging.translate_va(caller, va, write=True)
            if maddr is None or d.frames.owner[maddr >> 12] != d.domid:
                return -EINVAL
            rc = self._hold(maddr)
            if rc:
                return rc
        else:
            self._release()
        self.va = va
        self.update()
        return 0

    def register_phys(self, gpa: int) -> int:
        d = self.vcpu.domain
        if gpa == NO_AREA:
            self._release()
            self.phys = False
            return 0
        if (gpa & 0xFFF) + AREA_SIZE > 0x1000 or not d.pfn_valid(gpa >> 12):
            return -EINVAL
        rc = self._hold((d.p2m[gpa >> 12] << 12) | (gpa & 0xFFF))
        if rc == 0:
            self.phys = True
            self.update()
        return rc

    def destroy(self) -> None:
        self._release()

    # --- updates ---------------------------------------------------------------------------------
    def update(self) -> None:
        """Copy the runstate into the guest's area (at switch-in and registration)."""
        d = self.vcpu.domain
        if self.held is not None:
            maddr = self.held
        elif self.va is not None:
            maddr = d.paging.translate_va(self.vcpu, self.va, write=True)
            if maddr is None or d.frames.owner[maddr >> 12] != d.domid:
                self.missed += 1
                d.log(f'd{d.domid}v{self.vcpu.vcpu_id} failed to walk page-table va '
                      f'{self.va:#x} ({"kernel" if self.vcpu.kernel_mode else "user"} tables): '
                      'runstate update skipped')
                return
            if not d.types.write_frame(maddr, bytes(self.info), d.domid):
                self.missed += 1
                d.log(f'd{d.domid}v{self.vcpu.vcpu_id} runstate area at {self.va:#x} is in a '
                      'frame that may not be written: runstate update skipped')
                return
            self.updates += 1
            return
        else:
            return
        d.mem.write(maddr, bytes(self.info))
        self.updates += 1
