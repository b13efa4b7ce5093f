"""Xen's PV start-of-day layout (the start_info comment in xen/include/public/xen.h).

The bootstrap virtual region starts at VIRT_BASE and holds, each page-aligned and in
this order: the kernel image, the p2m list [mfn_list, nr_pages], start_info [rsi], the
xenstore ring page, the console ring page, the bootstrap page tables [pt_base, CR3] and
the bootstrap stack [rsp at its top]. The region ends on a 4 MiB boundary with at least
512 KiB of padding after the stack, and maps 1:1 onto the first pseudo-physical frames.
Everything is mapped writable except the page tables, which are read-only.
"""
from array import array
from dataclasses import dataclass

from pvshadow.guests.hypercall_page import hypercall_page
from pvshadow.guests.image import KernelError, KernelImage
from pvshadow.shadow.abi import xen
from pvshadow.shadow.domain import Domain
from pvshadow.shadow.host import Host
from pvshadow.shadow.paging.x86 import (_PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER,
                               make_pte, table_index)

PAGE = 4096
MB2, MB4 = 2 << 20, 4 << 20
# libxenguest's x86_64 lvl_prot: L1 entries are kernel mappings (no US), which Xen's
# adjust_guest_l1e turns into US plus the guest-kernel bit when it validates the tables.
L1_PROT = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED
L1_PROT_RO = _PAGE_PRESENT | _PAGE_ACCESSED
UPPER_PROT = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_USER
START_INFO_MAGIC = b'xen-3.0-x86_64'


def _round_up(value: int, align: int) -> int:
    return (value + align - 1) & ~(align - 1)


def _tables_needed(v_start: int, v_end: int) -> int:
    """Page-table frames to map [v_start, v_end): one L4, and one table per distinct
    512 GiB / 1 GiB / 2 MiB region at L3 / L2 / L1."""
    count = 1
    for shift in (39, 30, 21):
        count += ((v_end - 1) >> shift) - (v_start >> shift) + 1
    return count


@dataclass
class BootLayout:
    v_start: int
    v_end: int
    p2m: int
    start_info: int
    xenstore: int
    console: int
    page_tables: int
    nr_pt_frames: int
    stack: int

    def pfn(self, va: int) -> int:
        return (va - self.v_start) >> 12


def plan_layout(image: KernelImage, nr_pages: int) -> BootLayout:
    v_start = image.virt_base
    if v_start & (PAGE - 1):
        raise KernelError(f'{image.name}: VIRT_BASE {v_start:#x} is not page-aligned')
    if image.start < v_start:
        raise KernelError(f'{image.name}: image starts at {image.start:#x}, below VIRT_BASE '
                          f'{v_start:#x}')
    cursor = _round_up(image.end, PAGE)
    p2m = cursor
    cursor += _round_up(nr_pages * 8, PAGE)
    start_info, xenstore, console = cursor, cursor + PAGE, cursor + 2 * PAGE
    page_tables = cursor + 3 * PAGE
    nr_pt = 1
    while True:
        stack = page_tables + nr_pt * PAGE
        v_end = _round_up(stack + PAGE, MB4)
        if v_end - (stack + PAGE) < 512 * 1024:
            v_end += MB4
        needed = _tables_needed(v_start, v_end)
        if needed <= nr_pt:
            break
        nr_pt = needed
    layout = BootLayout(v_start, v_end, p2m, start_info, xenstore, console, page_tables, nr_pt,
                        stack)
    if layout.pfn(v_end) > nr_pages:
        raise KernelError(f'{image.name}: needs {layout.pfn(v_end) * 4 // 1024} MiB for its boot '
                          f'layout, the domain has {nr_pages * 4 // 1024} MiB')
    return layout


def build_domain(host: Host, image: KernelImage, memory_mb: int = 16, cmdline: str = '',
                 name: str = '', **domain_options) -> Domain:
    """Build a domain for the image; domain_options go to Host.create_domain (paging,
    shadow_pool_pages, audit)."""
    nr_pages = memory_mb * 256
    layout = plan_layout(image, nr_pages)
    d = host.create_domain(max_pages=nr_pages, **domain_options)
    try:
        _build(host, d, image, layout, nr_pages, memory_mb, cmdline, name)
    except BaseException:
        from pvshadow.shadow.lifecycle import destroy
        destroy(host, d)                  # nothing half-built stays on the host
        raise
    return d


def _build(host, d, image, layout, nr_pages, memory_mb, cmdline, name) -> None:
    if not d.populate(nr_pages):
        raise KernelError(f'machine memory too small for a {memory_mb} MiB domain')
    mem = d.mem

    def write_va(va: int, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            chunk = min(len(data) - pos, PAGE - ((va + pos) & 0xFFF))
            mfn = d.p2m[layout.pfn(va + pos)]
            mem.write((mfn << 12) + ((va + pos) & 0xFFF), data[pos:pos + chunk])
            pos += chunk

    for vaddr, body, _memsz in image.segments:
        write_va(vaddr, body)
    if image.hypercall_page is not None:
        # the page holding the address the note gives, as Xen's builder fills it
        write_va(image.hypercall_page & ~(PAGE - 1), hypercall_page())
    # A translated guest's "p2m list" is the identity (its frames are its gfns), as
    # Xen's builder leaves it for an auto-translated guest.
    write_va(layout.p2m, array('Q', range(nr_pages)).tobytes() if d.translated
             else d.p2m[:nr_pages].tobytes())
    root = _build_page_tables(d, layout)

    from pvshadow.shadow.console import console_backend
    from pvshadow.shadow.xenstore import xenstore_backend
    d.console_ring_mfn = d.p2m[layout.pfn(layout.console)]
    d.store_ring_mfn = d.p2m[layout.pfn(layout.xenstore)]
    # The backends write into the rings: they hold them writable, so the guest can never
    # turn a ring into a page table (Xen's backends map them writable the same way).
    for mfn, holder in ((d.console_ring_mfn, 'console backend'),
                        (d.store_ring_mfn, 'xenstore backend')):
        rc = d.types.get_writable_frame(mfn, d.domid, holder)
        if rc:
            raise RuntimeError(f'the {holder} ring refused a writable reference ({rc})')
    d.console_evtchn = d.evtchn.backend_port(console_backend(d))
    d.store_evtchn = d.evtchn.backend_port(xenstore_backend(d))
    d.name = name or f'pvshadow-d{d.domid}'
    host.store.introduce(d, d.name)
    shared_info, store, console = d.shared_info_mfn, d.store_ring_mfn, d.console_ring_mfn
    if d.translated:
        # Everything the guest is told names a gfn: shared_info is placed just past its
        # RAM (where XENMEM_add_to_physmap would put it), the rings at their pfns.
        shared_info = nr_pages
        d.p2m_state.set_host_entry(shared_info, d.shared_info_mfn)
        store, console = layout.pfn(layout.xenstore), layout.pfn(layout.console)
    si = xen.start_info(magic=START_INFO_MAGIC, nr_pages=nr_pages,
                        shared_info=shared_info << 12, flags=0,
                        store_mfn=store, store_evtchn=d.store_evtchn,
                        console_mfn=console, console_evtchn=d.console_evtchn,
                        pt_base=layout.page_tables, nr_pt_frames=layout.nr_pt_frames,
                        mfn_list=layout.p2m, cmd_line=cmdline.encode()[:xen.MAX_GUEST_CMDLINE - 1])
    write_va(layout.start_info, bytes(si))
    shared = xen.shared_info.max_pfn.offset
    mem.write_u64((d.shared_info_mfn << 12) + shared, nr_pages)

    v = d.vcpus[0]
    rc = v.set_guest_table(root, user=False)
    if rc:
        raise RuntimeError(f'bootstrap page tables failed validation ({rc})')
    d.entry = (image.entry, layout.stack + PAGE, layout.start_info)
    d.layout = layout
    d.image = image


def _build_page_tables(d: Domain, layout: BootLayout) -> int:
    """Map [v_start, v_end) 1:1 onto pfns, page-table frames read-only; returns the L4
    (what a base pointer names: its mfn, or for a translated guest its gfn, whose
    entries name gfns and whose tables it may write as ordinary memory)."""
    mem = d.mem
    frame = (lambda pfn: pfn) if d.translated else (lambda pfn: d.p2m[pfn])
    pt_pfns = iter(range(layout.pfn(layout.page_tables),
                         layout.pfn(layout.page_tables) + layout.nr_pt_frames))
    pt_first = layout.pfn(layout.page_tables)
    pt_last = pt_first + layout.nr_pt_frames

    def next_table() -> int:
        return d.p2m[next(pt_pfns)]

    l4 = next_table()
    tables = {}                        # (level, prefix) -> mfn

    def table_for(level: int, va: int, parent: int) -> int:
        key = (level, va >> (12 + 9 * level))
        if key not in tables:
            tables[key] = next_table()
            slot = (parent << 12) + table_index(va, level + 1) * 8
            mem.write_u64(slot, make_pte(frame(d.pfn_of[tables[key]]), UPPER_PROT))
        return tables[key]

    va = layout.v_start
    while va < layout.v_end:             # one L1 table's run of entries at a time
        l1 = table_for(1, va, table_for(2, va, table_for(3, va, l4)))
        run_end = min(layout.v_end, (va | (MB2 - 1)) + 1)
        first, end = layout.pfn(va), layout.pfn(run_end)
        targets = range(first, end) if d.translated else d.p2m[first:end]
        entries = array('Q', [(target << 12) | L1_PROT for target in targets])
        if not d.translated:            # the page-table frames in this run: read-only
            for pfn in range(max(first, pt_first), min(end, pt_last)):
                entries[pfn - first] = make_pte(frame(pfn), L1_PROT_RO)
        mem.write((l1 << 12) + table_index(va, 1) * 8, entries.tobytes())
        va = run_end
    return frame(d.pfn_of[l4])
