"""The host: machine memory, frame table, the one physical CPU, and its domains."""
from typing import List

from pvshadow.shadow.abi.xen import DOMID_XEN
from pvshadow.shadow.cpu import PhysicalCpu
from pvshadow.shadow.domain import Clock, Domain
from pvshadow.shadow.machine import FrameTable, MachineMemory
from pvshadow.shadow.paging.shadow import DEFAULT_POOL_PAGES
from pvshadow.shadow.paging.types import PageTypes
from pvshadow.shadow.scheduler import HostExit, Scheduler
from pvshadow.shadow.xenspace import GDT_LIMIT, GDT_VIRT_START, XenSpace
from pvshadow.shadow.xenstore import XenStore
from pvshadow.shadow.xsm import may_map_foreign

DEFAULT_MACHINE_MB = 256


class Host:
    @property
    def sharing(self):
        """The frames shared between translated domains (shadow.mem_sharing), made at
        its first use: a host of PV domains alone never imports it."""
        if self._sharing is None:
            from pvshadow.shadow.mem_sharing import MemSharing
            self._sharing = MemSharing(self)
        return self._sharing

    def __init__(self, machine_mb: int = DEFAULT_MACHINE_MB):
        nr_frames = machine_mb * 256
        self.mem = MachineMemory(nr_frames)
        self.frames = FrameTable(nr_frames)
        self.xen = XenSpace(self.mem, self.frames)
        self.cpu = PhysicalCpu(self.mem)
        self.cpu.load_gdt(GDT_VIRT_START, GDT_LIMIT)
        self.types = PageTypes(self.mem, self.frames, self.xen.l4_slots, self._frame_freed)
        self.types.may_map_foreign = self.may_map_foreign
        self.types.io_privileged = self.io_privileged
        self.types.iomem_permitted = self.iomem_permitted
        self.types.grant_pte_dropped = self._grant_pte_dropped
        self.types.grant_mapped = self._grant_mapped
        self.devices = {}                 # mmio mfn -> device model (shadow.dma)
        self._sharing = None              # frames shared between translated domains
        self.domains = {}
        self.zombies = {}                 # destroyed domains whose frames are still held
        self.store = XenStore()           # one xenstore for every domain
        self._next_domid = 1
        self.clock = Clock()              # one virtual clock for every domain
        self.scheduler = Scheduler(self)
        self.scheduling = False           # inside run(): blocking is a host-wide question
        # One scratch frame for single-stepping emulated stores (one CPU, one at a time).
        self.scratch_mfn = self.frames.alloc(DOMID_XEN)

    def _frame_freed(self, mfn: int, owner: int) -> None:
        # A stale TLB entry must never reach a frame that has gone back to the allocator.
        self.xen.clear_m2p(mfn)
        self.cpu.flush_tlb()
        d = self.domains.get(owner)
        if d is not None:
            d.frame_freed(mfn)
        if owner in self.zombies:
            from pvshadow.shadow.lifecycle import reap
            reap(self)                    # that zombie's last held frame may just have gone

    def may_map_foreign(self, domid: int, owner: int) -> bool:
        """Whether domain domid's page tables may reference a frame owner owns
        (shadow.xsm: the control domain, or owner is domid's target)."""
        src, dst = self.domains.get(domid), self.domains.get(owner)
        return src is not None and dst is not None and may_map_foreign(src, dst)

    def io_privileged(self, domid: int) -> bool:
        """cache_flush_permitted: a domain with I/O resources may pick cache attributes
        in its L1 entries. Only the control domain holds any here."""
        d = self.domains.get(domid)
        return d is not None and d.is_privileged

    def iomem_permitted(self, domid: int, mfn: int) -> bool:
        d = self.domains.get(domid)
        return d is not None and mfn in d.iomem

    def _grant_pte_dropped(self, domid: int, table_mfn: int, entry: int) -> None:
        d = self.domains.get(domid)
        if d is not None:
            from pvshadow.shadow.grant_table import grant_pte_dropped
            grant_pte_dropped(d, table_mfn, entry)

    def _grant_mapped(self, domid: int, mfn: int) -> bool:
        from pvshadow.shadow.grant_table import host_mapped
        d = self.domains.get(domid)
        return d is not None and host_mapped(d, mfn)

    def add_dma_engine(self, owner):
        """A DMA engine for owner (shadow.dma): its register page is the next machine
        frame past RAM, which owner is given I/O-memory permission over."""
        from pvshadow.shadow.dma import DmaEngine
        mfn = self.frames.nr_frames + len(self.devices)
        engine = DmaEngine(self, owner, mfn)
        self.devices[mfn] = engine
        owner.iomem.add(mfn)
        return engine

    def create_domain(self, max_pages: int, paging: str = 'direct',
                      shadow_pool_pages: int = DEFAULT_POOL_PAGES, audit: bool = False,
                      vm_event_ring: bool = False, max_vcpus: int = 4,
                      privileged: bool = False) -> Domain:
        domid = self._next_domid
        self._next_domid += 1
        d = Domain(domid, self.mem, self.frames, self.types, self.xen, self.cpu, max_pages,
                   self.scratch_mfn, paging=paging, shadow_pool_pages=shadow_pool_pages,
                   audit=audit, vm_event_ring=vm_event_ring, clock=self.clock,
                   max_vcpus=max_vcpus)
        d.host = self
        if d.translated:
            d.p2m_state.sharing = self.sharing
        d.is_privileged = privileged
        self.domains[domid] = d
        return d

    def audit_frames(self):
        """The frame ledger's audit over every domain here (shadow.ledger): [] when every
        reference on every frame has a holder and no frame crosses an owner."""
        from pvshadow.shadow.ledger import audit_frames
        return audit_frames(self.frames, self.types, self.domains.values())

    # --- running every domain ---------------------------------------------------------------
    def run(self, budget: int = 0, timeout=None) -> List[HostExit]:
        """Run every domain on the one CPU until all have ended (shutdown, crash, halt)
        or a front end's stop, the budget or the watchdog ends the call; returns each
        domain exit on the way (shadow.scheduler). A single domain may also be run on its
        own with Domain.run."""
        return self.scheduler.run(budget, timeout)

    def others_may_wake(self, v) -> bool:
        return self.scheduler.others_may_wake(v)
