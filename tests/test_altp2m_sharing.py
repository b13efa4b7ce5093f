"""altp2m views and memory sharing on the same frames, in every order (issue 16): the
orders George Dunlap's review lists and the ones found since, each with real guest
accesses (the poke kernel) and the sharing audit, ledger and shadow audits after every
step."""
import pytest

from pvshadow.shadow import toolstack as ts
from pvshadow.shadow.abi import p2m as abi
from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import DOMID_COW, DOMID_INVALID, E2BIG, EBUSY, EINVAL, EOPNOTSUPP
from pvshadow.shadow.exits import ExitReason
from pvshadow.shadow.machine import PageType
from pvshadow.shadow.p2m import INVALID_MFN
from tests.translated_host import FIRST_FREE_GFN, PokeGuest, checks, new_host

A, B, C, O = FIRST_FREE_GFN, FIRST_FREE_GFN + 1, FIRST_FREE_GFN + 2, FIRST_FREE_GFN + 3
RO = xen.XENMEM_access_r
RWX = xen.XENMEM_access_rwx


@pytest.fixture
def pair():
    host = new_host()
    one, two = PokeGuest(host), PokeGuest(host)
    for g, base in ((one, 0x1100), (two, 0x2200)):
        for gfn in (A, B, C, O):
            g.set_contents(gfn, base + gfn - A)
    yield host, one, two
    assert checks(host) == []


def ok(host):
    problems = checks(host)
    assert problems == [], problems[:5]


def share(host, src, sgfn, client, cgfn):
    rc, sh = ts.xc_memshr_nominate_gfn(src.d, sgfn)
    assert rc == 0
    rc, ch = ts.xc_memshr_nominate_gfn(client.d, cgfn)
    assert rc == 0
    assert ts.xc_memshr_share_gfns(src.d, sgfn, sh, client.d, cgfn, ch) == 0
    ok(host)
    return src.frame(sgfn)


def view(g, default=RWX) -> int:
    if not g.d.p2m_state.altp2m_active:
        assert ts.xc_altp2m_set_domain_state(g.d, True) == 0
    rc, idx = ts.xc_altp2m_create_view(g.d, default)
    assert rc == 0
    return idx


def switch(g, idx):
    assert ts.xc_altp2m_switch_to_view(g.d, idx) == 0


def rmap(host, mfn):
    return host.sharing.pages[mfn].rmap


# --- sharing alone --------------------------------------------------------------------------
def test_a_shared_frame_is_cows_typed_shared_with_the_shared_m2p_entry(pair):
    host, one, two = pair
    s = share(host, one, A, two, B)
    frames = host.frames
    assert (frames.owner[s], frames.type[s]) == (DOMID_COW, PageType.SHARED)
    assert host.xen.get_m2p(s) == abi.SHARED_M2P_ENTRY
    assert two.frame(B) == s and two.contents(B) == 0x1100
    assert rmap(host, s) == {(one.domid, 0, A), (two.domid, 0, B)}
    assert frames.count[s] == 1 + 2


def test_reading_a_shared_frame_maps_it_read_only_and_writing_it_unshares(pair):
    host, one, two = pair
    s = share(host, one, A, two, B)
    assert two.read(B) == (0x1100, 0)
    ok(host)
    assert two.write(B, 0xBEEF) == 0
    ok(host)
    assert two.frame(B) != s and two.contents(B) == 0xBEEF
    assert one.contents(A) == 0x1100 and one.frame(A) == s
    # the last reference: made private again, no copy
    assert one.write(A, 0xA1) == 0
    ok(host)
    assert one.frame(A) == s and host.frames.owner[s] == one.domid and s not in host.sharing.pages


def test_handles_come_from_one_host_wide_counter_and_a_wrong_one_is_refused(pair):
    host, one, two = pair
    rc, h1 = ts.xc_memshr_nominate_gfn(one.d, A)
    rc2, h2 = ts.xc_memshr_nominate_gfn(two.d, B)
    assert (rc, rc2) == (0, 0) and h2 == h1 + 1
    assert ts.xc_memshr_nominate_gfn(one.d, A) == (0, h1)           # already shared
    assert ts.xc_memshr_share_gfns(one.d, A, h1 + 7, two.d, B, h2) == \
        abi.XENMEM_SHARING_OP_S_HANDLE_INVALID
    assert ts.xc_memshr_share_gfns(one.d, A, h1, two.d, B, h2 + 7) == \
        abi.XENMEM_SHARING_OP_C_HANDLE_INVALID
    ok(host)


def test_add_physmap_fills_a_hole_and_refuses_a_populated_gfn(pair):
    host, one, two = pair
    rc, h = ts.xc_memshr_nominate_gfn(one.d, A)
    hole = two.d.max_pages + 5
    assert ts.xc_memshr_add_to_physmap(one.d, A, h, two.d, hole) == -EINVAL  # sharing off
    assert ts.xc_memshr_control(two.d, True) == 0
    assert ts.xc_memshr_add_to_physmap(one.d, A, h, two.d, B) == \
        abi.XENMEM_SHARING_OP_C_HANDLE_INVALID
    assert ts.xc_memshr_add_to_physmap(one.d, A, h, two.d, hole) == 0
    ok(host)
    assert two.read(hole) == (0x1100, 0)
    # the hole was never charged: its private copy needs room under max_pages
    assert ts.xc_domain_setmaxmem(two.d, (two.d.max_pages + 1) * 4) == 0
    assert two.write(hole, 5) == 0 and one.contents(A) == 0x1100
    ok(host)


def test_range_share_shares_every_pair_it_can(pair):
    host, one, two = pair
    assert ts.xc_memshr_range_share(one.d, two.d, A, C) == -EINVAL     # the client's off
    assert ts.xc_memshr_control(two.d, True) == 0
    assert ts.xc_memshr_range_share(one.d, two.d, A, C) == 0
    ok(host)
    for gfn in (A, B, C):
        assert one.frame(gfn) == two.frame(gfn)
        assert two.contents(gfn) == 0x1100 + gfn - A


def test_a_page_table_or_a_frame_held_elsewhere_is_never_nominated(pair):
    host, one, two = pair
    table = one.d.vcpus[0].guest_table                 # the root: a shadowed guest table
    gfn = one.d.pfn_of[table]
    assert ts.xc_memshr_nominate_gfn(one.d, gfn)[0] == -EINVAL
    assert one.d.types.get_page(one.frame(C), one.domid)     # a reference someone holds
    assert ts.xc_memshr_nominate_gfn(one.d, C)[0] == -E2BIG
    one.d.types.put_page(one.frame(C))
    assert ts.xc_memshr_nominate_gfn(one.d, one.d.max_pages + 1)[0] == -EINVAL   # no frame
    ok(host)


def test_sharing_needs_a_translated_domain():
    from pvshadow.guests.builder import build_domain
    from pvshadow.guests.kernels import load_kernel
    host = new_host()
    pv = build_domain(host, load_kernel('hello'), memory_mb=4, paging='shadow')
    assert ts.xc_memshr_nominate_gfn(pv, 10)[0] == -EOPNOTSUPP
    assert ts.xc_altp2m_set_domain_state(pv, True) == -EOPNOTSUPP


# --- altp2m alone ------------------------------------------------------------------------------
def test_a_view_shows_the_host_lazily_with_its_default_access(pair):
    host, one, _ = pair
    idx = view(one, RO)
    assert idx == 1 and one.d.p2m_state.views[1].entries == {}
    assert ts.xc_altp2m_get_mem_access(one.d, idx, A) == (0, RO)
    assert ts.xc_altp2m_get_mem_access(one.d, 0, A) == (0, RWX)
    switch(one, idx)
    assert one.read(A) == (0x1100, 0)
    assert A in one.d.p2m_state.views[1].entries                       # copied on the fault
    ok(host)


def test_altp2m_errnos_are_xens(pair):
    host, one, _ = pair
    assert ts.xc_altp2m_create_view(one.d)[0] == -EOPNOTSUPP          # not active
    idx = view(one)
    assert ts.xc_altp2m_destroy_view(one.d, 0) == -EBUSY
    switch(one, idx)
    assert ts.xc_altp2m_destroy_view(one.d, idx) == -EBUSY             # a vCPU uses it
    assert ts.xc_altp2m_switch_to_view(one.d, 9) == -EINVAL
    assert ts.xc_altp2m_change_gfn(one.d, idx, A, one.d.max_pages + 9) == -EINVAL
    assert ts.xc_altp2m_set_mem_access(one.d, 7, A, RO) == -EINVAL
    for _ in range(abi.MAX_ALTP2M - 2):
        assert ts.xc_altp2m_create_view(one.d)[0] == 0
    assert ts.xc_altp2m_create_view(one.d)[0] == -EINVAL               # all views in use
    assert ts.xc_altp2m_get_vcpu_p2m_idx(one.d, 0) == (0, idx)
    switch(one, 0)
    ok(host)


def test_change_gfn_remaps_and_reverts(pair):
    host, one, _ = pair
    idx = view(one)
    assert ts.xc_altp2m_change_gfn(one.d, idx, O, A) == 0
    switch(one, idx)
    assert one.read(O) == (0x1100, 0)
    assert one.write(O, 0x77) == 0
    switch(one, 0)
    assert one.read(A) == (0x77, 0) and one.read(O) == (0x1103, 0)
    assert ts.xc_altp2m_change_gfn(one.d, idx, O, abi.INVALID_GFN) == 0
    switch(one, idx)
    assert one.read(O) == (0x1103, 0)
    ok(host)


# --- sharing and views, in every order -------------------------------------------------------------
@pytest.mark.parametrize('copied', [False, True], ids=['no-view-entry', 'lazily-copied'])
def test_share_then_remap(pair, copied):
    host, one, two = pair
    idx = view(one)
    if copied:
        switch(one, idx)
        assert one.read(A) == (0x1100, 0)              # view 1 copies the entry for A
        switch(one, 0)
    s = share(host, two, B, one, A)                    # one's A now shows two's frame
    assert ts.xc_altp2m_change_gfn(one.d, idx, O, A) == 0
    ok(host)
    assert (one.domid, idx, O) in rmap(host, s)        # the reverse map sees the remap
    switch(one, idx)
    assert one.read(O) == (0x2201, 0)
    assert one.write(O, 0xD00D) == 0                   # unshares one's host gfn A
    ok(host)
    assert two.contents(B) == 0x2201                   # the other domain is untouched
    assert one.contents(A) == 0xD00D and one.contents(O, idx) == 0xD00D
    if copied:
        assert one.contents(A, idx) == 0xD00D          # the copied entry followed too
    switch(one, 0)
    assert one.read(A) == (0xD00D, 0)


@pytest.mark.parametrize('role', ['source', 'client'])
def test_remap_then_share(pair, role):
    host, one, two = pair
    idx = view(one)
    assert ts.xc_altp2m_change_gfn(one.d, idx, O, A) == 0
    old = one.frame(A)
    s = share(host, one, A, two, B) if role == 'source' else share(host, two, B, one, A)
    assert one.frame(O, idx) == s                      # the remap follows its source
    if role == 'client':
        assert host.frames.owner[old] == DOMID_INVALID     # the client's frame is free ...
        for sp in one.d.paging._sets.values():
            assert old not in sp.maps_of               # ... and no shadow maps it
    switch(one, idx)
    expected = 0x1100 if role == 'source' else 0x2201
    assert one.read(O) == (expected, 0)
    assert one.write(O, 0xFEED) == 0
    ok(host)
    assert two.contents(B) == expected                 # never the other domain's frame
    assert one.contents(A) == 0xFEED
    assert host.frames.owner[one.frame(A)] == one.domid


def test_nominating_a_gfn_a_view_maps_differently_is_refused_as_xen_does(pair):
    host, one, _ = pair
    idx = view(one)
    assert ts.xc_altp2m_set_mem_access(one.d, idx, A, RO) == 0
    assert ts.xc_memshr_nominate_gfn(one.d, A)[0] == -EINVAL           # other rights
    assert ts.xc_altp2m_change_gfn(one.d, idx, B, C) == 0
    assert ts.xc_memshr_nominate_gfn(one.d, B)[0] == -EINVAL           # another frame
    assert ts.xc_memshr_nominate_gfn(one.d, C)[0] == 0                 # C itself may be
    ok(host)


def test_a_write_through_one_view_gives_both_views_the_private_copy(pair):
    host, one, two = pair
    v1, v2 = view(one), view(one)
    s = share(host, two, B, one, A)
    for idx in (v1, v2):
        switch(one, idx)
        assert one.read(A) == (0x2201, 0)
    assert {(one.domid, v1, A), (one.domid, v2, A)} <= rmap(host, s)
    switch(one, v1)
    assert one.write(A, 0x5151) == 0
    ok(host)
    switch(one, v2)
    assert one.read(A) == (0x5151, 0)
    assert one.contents(A, v1) == one.contents(A, v2) == 0x5151
    assert two.contents(B) == 0x2201 and rmap(host, s) == {(two.domid, 0, B)}


def test_an_unshare_keeps_each_views_own_access(pair):
    host, one, two = pair
    v1, v2 = view(one), view(one)
    share(host, two, B, one, A)
    assert ts.xc_altp2m_set_mem_access(one.d, v1, A, RO) == 0
    switch(one, v2)
    assert one.write(A, 0x99) == 0                     # unshared through view 2
    ok(host)
    assert ts.xc_altp2m_get_mem_access(one.d, v1, A) == (0, RO)   # Xen overwrites it
    assert one.contents(A, v1) == 0x99


def test_destroying_a_view_and_turning_altp2m_off_drop_exactly_their_references(pair):
    host, one, two = pair
    v1 = view(one)
    s = share(host, two, B, one, A)
    assert ts.xc_altp2m_change_gfn(one.d, v1, O, A) == 0
    switch(one, v1)
    assert one.read(A) == (0x2201, 0)
    switch(one, 0)
    before = host.frames.count[s]
    assert ts.xc_altp2m_destroy_view(one.d, v1) == 0
    ok(host)
    assert host.frames.count[s] == before - 2          # (v1, A) and (v1, O)
    v2 = view(one)
    assert ts.xc_altp2m_change_gfn(one.d, v2, O, A) == 0
    assert ts.xc_altp2m_set_domain_state(one.d, False) == 0
    ok(host)
    assert rmap(host, s) == {(one.domid, 0, A), (two.domid, 0, B)}


def test_giving_back_a_shared_gfn_drops_its_share_and_the_last_frees_the_frame(pair):
    from pvshadow.shadow.hypercall.memory import release_gfn
    host, one, two = pair
    s = share(host, one, A, two, B)
    assert release_gfn(two.d, B) == 0
    ok(host)
    assert two.frame(B) == INVALID_MFN and one.contents(A) == 0x1100
    assert two.read(B) == (None, 14)
    assert release_gfn(one.d, A) == 0
    ok(host)
    assert host.frames.owner[s] == DOMID_INVALID


def test_giving_back_a_gfn_inside_a_views_remapped_range_resets_the_view(pair):
    from pvshadow.shadow.hypercall.memory import release_gfn
    host, one, _ = pair
    idx = view(one)
    assert ts.xc_altp2m_change_gfn(one.d, idx, O, A) == 0
    assert ts.xc_altp2m_set_mem_access(one.d, idx, C, RO) == 0
    assert release_gfn(one.d, A) == 0
    ok(host)
    assert one.d.p2m_state.views[idx].entries == {}        # p2m_reset_altp2m
    switch(one, idx)
    assert one.read(O) == (0x1103, 0)                      # O shows its own frame again
    assert one.read(A) == (None, 14)


def test_unshare_out_of_memory_with_no_sharing_ring_crashes_the_domain(pair):
    host, one, two = pair
    share(host, two, B, one, A)
    one.d.max_pages = one.d.tot_pages
    exit_, _ = one.step(1, A, 0, 7)
    assert exit_.reason is ExitReason.CRASH and 'out of memory unsharing' in exit_.message
    assert two.contents(B) == 0x2201
    ok(host)


def test_unshare_out_of_memory_waits_on_the_sharing_ring_until_memory_is_made(pair):
    host, one, two = pair
    share(host, two, B, one, A)
    rc, ring = ts.xc_memshr_ring_enable(one.d)
    assert rc == 0
    one.d.max_pages = one.d.tot_pages
    exit_, _ = one.step(1, A, 0, 7)
    assert exit_.reason is ExitReason.VM_EVENT
    req = ring.get_request()
    assert (req.reason, req.mem_sharing.gfn, req.mem_sharing.p2mt) == \
        (xen.VM_EVENT_REASON_MEM_SHARING, A, abi.p2m_ram_shared)
    assert req.flags & xen.VM_EVENT_FLAG_VCPU_PAUSED and one.d.vcpus[0].paused_for_event
    assert ts.xc_domain_setmaxmem(one.d, (one.d.max_pages + 16) * 4) == 0
    ring.put_response(req)
    assert ts.xc_memshr_domain_resume(one.d) == 0
    exit_ = one.run()
    assert exit_.reason is ExitReason.BREAKPOINT
    assert one.contents(A) == 7 and two.contents(B) == 0x2201
    ok(host)


def test_destroying_a_domain_with_views_and_shares_leaves_the_other_whole(pair):
    from pvshadow.shadow.lifecycle import destroy
    host, one, two = pair
    idx = view(one)
    s = share(host, one, A, two, B)
    assert ts.xc_altp2m_change_gfn(one.d, idx, O, A) == 0
    switch(one, idx)
    assert one.read(O) == (0x1100, 0)
    destroy(host, one.d)
    ok(host)
    assert rmap(host, s) == {(two.domid, 0, B)}
    assert two.read(B) == (0x1100, 0) and two.write(B, 3) == 0
    assert host.frames.owner[s] == two.domid            # the last user: private again
    assert one.domid not in host.domains
    ok(host)


def test_the_view_switch_in_response_loop(pair):
    """xen-access's altp2m_write: a restricted view; each write event is answered by a
    switch to view 0 with single-stepping on, the step by a switch back."""
    from pvshadow.shadow.listener import Listener
    host = pair[0]
    g = PokeGuest(host, vm_event_ring=True)
    listener = Listener(g.d)
    watching = listener.altp2m_watch('rx')
    g._mbox(1, C, 0, 0xCAFE)
    seen = []
    g.d.add_breakpoint(g.poll)
    for event in listener.events(timeout=20):
        seen.append((event.reason, event.view))
        if event.reason == xen.VM_EVENT_REASON_SINGLESTEP:
            event.respond(view=watching, toggle_singlestep=True)
        else:
            assert event.view == watching and event.access == '-w-'
            event.respond(view=0, toggle_singlestep=True)
    g.d.remove_breakpoint(g.poll)
    assert listener.exit.reason is ExitReason.BREAKPOINT
    assert g.contents(C) == 0xCAFE
    assert (xen.VM_EVENT_REASON_MEM_ACCESS, watching) in seen
    assert (xen.VM_EVENT_REASON_SINGLESTEP, 0) in seen
    assert g.d.vcpus[0].altp2m_idx == watching and not g.d.vcpus[0].monitor_step


def test_a_switch_between_domains_leaves_none_of_the_others_translations(pair):
    """Each vCPU switch reloads CR3, which flushes the TLB: the same virtual address in
    the next domain never reaches the last one's frame."""
    host, one, two = pair
    assert one.write(A, 1) == 0 and two.write(A, 2) == 0
    assert one.read(A) == (1, 0) and two.read(A) == (2, 0)
    assert one.contents(A) == 1 and two.contents(A) == 2


# --- p2m types and views without sharing ---------------------------------------------------------
def test_a_write_to_ram_ro_is_dropped_and_the_instruction_completes(pair):
    host, one, _ = pair
    assert ts.xc_hvm_set_mem_type(one.d, abi.HVMMEM_ram_ro, A, 1) == 0
    assert one.read(A) == (0x1100, 0)
    assert one.write(A, 0x42) == 0                      # no fault, nothing written
    assert one.contents(A) == 0x1100
    assert ts.xc_hvm_set_mem_type(one.d, abi.HVMMEM_ram_rw, A, 1) == 0
    assert one.write(A, 0x42) == 0 and one.contents(A) == 0x42
    ok(host)


def test_a_store_to_mmio_dm_leaves_as_an_mmio_exit(pair):
    host, one, _ = pair
    hole = one.d.max_pages + 3
    assert ts.xc_hvm_set_mem_type(one.d, abi.HVMMEM_mmio_dm, A, 1) == -EINVAL   # RAM
    assert ts.xc_hvm_set_mem_type(one.d, abi.HVMMEM_mmio_dm, hole, 1) == 0
    exit_, _ = one.step(1, hole, 0x18, 0xABCD)
    assert exit_.reason is ExitReason.MMIO
    assert (exit_.mmio['address'], exit_.mmio['data'], exit_.mmio['size']) == \
        ((hole << 12) + 0x18, 0xABCD, 8)
    assert one.run().reason is ExitReason.BREAKPOINT      # the store completed
    ok(host)


def test_switching_views_keeps_each_views_shadows(pair):
    host, one, _ = pair
    idx = view(one)
    assert one.read(A) == (0x1100, 0)
    switch(one, idx)
    assert one.read(A) == (0x1100, 0)
    paging = one.d.paging
    before = {k: dict(s.shadow_of) for k, s in paging._sets.items()}
    blown = paging.stats['blown']
    switch(one, 0)
    switch(one, idx)
    assert paging.stats['blown'] == blown
    assert {k: dict(s.shadow_of) for k, s in paging._sets.items()} == before
    ok(host)


def test_a_view_violation_on_an_unsuppressed_gfn_is_a_ve_while_the_semaphore_is_free(pair):
    import struct
    host, one, _ = pair
    ve_page = O
    idx = view(one)
    assert ts.xc_altp2m_set_mem_access(one.d, idx, C, RO) == 0
    assert ts.xc_altp2m_get_suppress_ve(one.d, idx, C) == (0, True)       # Xen's default
    assert ts.xc_altp2m_set_suppress_ve(one.d, idx, C, False) == 0
    assert ts.xc_altp2m_set_vcpu_enable_notify(one.d, 0, ve_page) == 0
    assert ts.xc_altp2m_set_vcpu_enable_notify(one.d, 0, ve_page) == -EINVAL   # already on
    one.set_contents(ve_page, 0)
    switch(one, idx)
    assert one.write(C, 0x77) == 20                      # #VE, and nothing written
    assert one.contents(C) == 0x1102
    info = one.d.mem.read(one.frame(ve_page) << 12, 34)
    reason, semaphore, qualification, gla, gpa, eptp = struct.unpack('<IIQQQH', info)
    assert (reason, semaphore, qualification, gpa >> 12, eptp) == \
        (48, 0xFFFFFFFF, xen.MEM_ACCESS_W, C, idx)
    # the semaphore is still set: no second #VE; with no listener the access relaxes
    assert one.write(C, 0x78) == 0 and one.contents(C) == 0x78
    assert ts.xc_altp2m_set_vcpu_disable_notify(one.d, 0) == 0
    ok(host)


# --- forks -------------------------------------------------------------------------------------------
def fork_of(host, parent):
    from tests.translated_host import ForkGuest
    rc, child = ts.xc_domain_create(host, parent.d.max_pages, paging='translated',
                                    max_vcpus=len(parent.d.vcpus))
    assert rc == 0
    assert ts.xc_memshr_fork(parent.d, child) == -16          # -EBUSY: the child runs
    assert ts.xc_domain_pause(child) == 0
    assert ts.xc_memshr_fork(parent.d, child) == 0
    assert ts.xc_domain_unpause(child) == 0
    ok(host)
    return ForkGuest(parent, child)


def test_a_fork_reads_its_parents_memory_shared_and_writes_its_own_copy(pair):
    host, one, _ = pair
    child = fork_of(host, one)
    assert one.d.pause_count == 1                     # the parent waits while it lives
    assert child.read(A) == (0x1100, 0)
    ok(host)
    assert child.frame(A) == one.frame(A) and host.frames.owner[one.frame(A)] == DOMID_COW
    assert child.write(A, 0xC0FFEE) == 0 and child.write(B, 0xB0B) == 0
    ok(host)
    assert one.contents(A) == 0x1100 and one.contents(B) == 0x1101
    assert child.contents(A) == 0xC0FFEE and child.contents(B) == 0xB0B
    assert child.read(C) == (0x1102, 0)


def test_fork_reset_drops_the_forks_own_pages_and_it_fetches_them_again(pair):
    host, one, _ = pair
    child = fork_of(host, one)
    assert child.write(A, 0xC0FFEE) == 0
    assert ts.xc_memshr_fork_reset(child.d, reset_state=False, reset_memory=True) == 0
    ok(host)
    assert child.frame(A) == INVALID_MFN
    assert child.read(A) == (0x1100, 0)               # from the parent again
    assert ts.xc_memshr_fork_reset(one.d) == -38      # -ENOSYS: not a fork
    ok(host)


def test_destroying_a_fork_lets_its_parent_go(pair):
    from pvshadow.shadow.lifecycle import destroy
    host, one, _ = pair
    child = fork_of(host, one)
    assert child.read(A) == (0x1100, 0)
    destroy(host, child.d)
    ok(host)
    assert one.d.pause_count == 0
    assert one.write(A, 5) == 0 and one.contents(A) == 5
    ok(host)


def test_a_translated_guest_gets_no_descriptor_pages(pair):
    """Its shadows hold no type references, so a writable mapping of a frame could
    outlive a descriptor-page check: set_gdt and the LDT are refused (it runs on Xen's
    reserved selectors), and nothing typed is ever written through its mappings."""
    from pvshadow.shadow.hypercall.descriptors import set_gdt
    from pvshadow.shadow.segments import take_descriptor_page
    host, one, _ = pair
    mfn = one.frame(C)
    assert set_gdt(one.d.vcpus[0], [mfn], 16) == -EINVAL
    assert not take_descriptor_page(one.d, mfn)
    assert host.frames.type_count[mfn] == 0
    ok(host)


def test_nominate_and_share_by_grant_reference(pair):
    """A translated granter's entries name gfns: nominate_gref and share by grant
    reference resolve them (mem_sharing_gref_to_gfn)."""
    import struct
    host, one, two = pair
    for g, gfn in ((one, A), (two, B)):
        g.d.grant_frames.append(g.d.alloc_xenheap_frame('grant table'))
        g.d.mem.write((g.d.grant_frames[0] << 12) + 5 * 8,
                      struct.pack('<HHI', xen.GTF_permit_access, 0, gfn))
    ts.xc_memshr_control(two.d, True)
    rc, sh = ts.xc_memshr_nominate_gref(one.d, 5)
    rc2, ch = ts.xc_memshr_nominate_gref(two.d, 5)
    assert (rc, rc2) == (0, 0)
    assert ts.xc_memshr_share_grefs(one.d, 5, sh, two.d, 5, ch) == 0
    ok(host)
    assert two.frame(B) == one.frame(A) and two.read(B) == (0x1100, 0)
    assert ts.xc_memshr_nominate_gref(one.d, 4096)[0] == -EINVAL        # past the table
    ok(host)


def test_a_translated_granters_entry_names_a_gfn_a_pv_mapper_gets_its_frame():
    import struct
    from tests.grants import GrantGuest
    host = new_host()
    granter = PokeGuest(host)
    mapper = GrantGuest(host, 'shadow', lambda: None)
    granter.d.grant_frames.append(granter.d.alloc_xenheap_frame('grant table'))
    granter.d.mem.write((granter.d.grant_frames[0] << 12) + 7 * 8,
                        struct.pack('<HHI', xen.GTF_permit_access, mapper.d.domid, A))
    op = mapper.map_grant(granter.domid, 7)
    assert op.status == 0
    assert mapper.mapped_mfn() == granter.frame(A)
    assert mapper.unmap_grant(op.handle) == 0
    ok(host)


def test_after_a_view_event_the_toolstacks_set_access_is_the_hosts(pair):
    """The view an event came from is the event's: a later XENMEM_access_op names the
    host p2m's access."""
    host, one, _ = pair
    idx = view(one)
    assert ts.xc_altp2m_set_mem_access(one.d, idx, C, RO) == 0
    switch(one, idx)
    assert one.write(C, 1) == 0                      # a violation in view 1, relaxed there
    assert ts.xc_set_mem_access(one.d, RO, B, 1) == 0
    assert ts.xc_get_mem_access(one.d, B) == (0, RO)
    assert ts.xc_altp2m_get_mem_access(one.d, idx, B) == (0, RWX)
    ok(host)
