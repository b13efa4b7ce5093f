"""mem_access for PV guests on shadow paging, driven through the toolstack API and an
in-process listener, on the `memaccess` kernel (five writes to `watched`, three calls into
`exec_page`, a direct page-table store). The kernel checks what it sees itself; these
tests check what the listener sees. Shadow audit on throughout."""
import pytest

from pvshadow.guests.kernels import load_kernel
from pvshadow.shadow import api
from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import EINVAL, XENMEM_access_rwx, XENMEM_access_rx
from pvshadow.shadow.exits import ExitReason
from pvshadow.shadow.listener import Listener
from pvshadow.shadow.paging.x86 import walk
from pvshadow.shadow.toolstack import (xc_domain_set_access_required, xc_get_mem_access,
                              xc_hvm_get_mem_access, xc_hvm_set_mem_access,
                              xc_mem_access_resume, xc_mem_access_shadow_enable,
                              xc_set_mem_access)

SYMBOLS = load_kernel('memaccess', extra_symbols=('watched', 'exec_page')).symbols


def boot(cmdline=''):
    return api.boot('memaccess', paging='shadow', audit=True, vm_event_ring=True,
                    cmdline=cmdline)


def mfn_of(d, va):
    return walk(d.mem.read_u64, d.vcpus[0].guest_table, va).mfn


def finish(listener, respond=lambda ev: ev.respond(emulate=True)):
    seen = []
    for event in listener.events(timeout=30):
        seen.append(event)
        respond(event)
    assert listener.exit.clean, listener.exit.describe()
    assert b'Test result: SUCCESS' in listener.domain.console, listener.domain.console
    return seen


def test_a_write_watch_reports_each_write_to_the_page():
    d = boot()
    listener = Listener(d)
    watched = mfn_of(d, SYMBOLS['watched'])
    assert listener.set_access('rx', watched) == 0
    events = finish(listener)
    assert [e.access for e in events] == ['-w-'] * 5
    assert all(e.gfn == watched and e.paused for e in events)
    assert [e.gla for e in events] == [SYMBOLS['watched'] + 8 * i for i in range(5)]
    assert all(e.flags & xen.MEM_ACCESS_GLA_VALID and e.flags & xen.MEM_ACCESS_FAULT_WITH_GLA
               for e in events)
    # "emulate" applies a decoded store as Xen's emulator does: no single steps
    assert d.stats['stores_emulated'] == 5 and d.stats['mem_access_single_steps'] == 0


def test_the_vm_event_exit_names_the_access_the_frame_and_the_address():
    d = boot()
    listener = Listener(d)
    watched = mfn_of(d, SYMBOLS['watched'])
    listener.set_access('rx', watched)
    exit_ = d.run(timeout=30)
    assert exit_.reason is ExitReason.VM_EVENT
    assert exit_.describe() == f'vm_event: -w- on mfn {watched:#x} at {SYMBOLS["watched"]:#x}'


def test_an_in_hook_emulate_answer_is_applied_in_the_faulting_hook():
    """Answered inside the hook, "emulate" needs no second fault: the store is applied
    where the ring's resume would have the retry apply it."""
    d = boot()
    listener = Listener(d)
    listener.set_access('rx', mfn_of(d, SYMBOLS['watched']))
    faults = []
    d.tracer = lambda record: faults.append(record) if record.get('vector') == 14 and \
        record['error_code'] & 2 and \
        SYMBOLS['watched'] <= record['va'] < SYMBOLS['watched'] + 0x1000 else None
    exit_ = listener.run(lambda ev: ev.respond(emulate=True), timeout=30)
    assert exit_.clean and b'Test result: SUCCESS' in d.console, d.console
    assert listener.events_seen == 5 and d.stats['stores_emulated'] == 5
    assert len(faults) == 5, faults


def test_a_watched_page_table_reports_the_walks_dirty_bit_write_as_a_fault_in_gpt():
    """With a default that lets tables be written, a table with an access type of its own
    still refuses the walk's accessed/dirty write: the first store to `watched` sets the
    dirty bit in its L1 entry, an event on the table (MEM_ACCESS_FAULT_IN_GPT)."""
    d = boot()
    listener = Listener(d)
    l1 = walk(d.mem.read_u64, d.vcpus[0].guest_table, SYMBOLS['watched']).levels[-1].table_mfn
    assert listener.set_access('rx', l1) == 0
    gpt = [e for e in finish(listener) if e.flags & xen.MEM_ACCESS_FAULT_IN_GPT]
    assert gpt and all(e.gfn == l1 and e.access == '-w-' for e in gpt)
    assert ((SYMBOLS['watched'] >> 12) & 511) * 8 in [e.offset for e in gpt]


def test_an_exec_watch_reports_each_fetch_from_the_page():
    d = boot()
    listener = Listener(d)
    listener.set_access('rw', mfn_of(d, SYMBOLS['exec_page']))
    events = finish(listener)
    # three calls of a two-instruction function: each instruction fetched is a violation
    page = SYMBOLS['exec_page']
    assert [e.access for e in events] == ['--x'] * 6
    assert [e.gla for e in events] == [page, page + 5] * 3
    assert [e.request.regs.rip for e in events] == [page, page + 5] * 3


def test_a_listener_that_relaxes_after_the_first_event_sees_one():
    d = boot()
    listener = Listener(d)
    watched = mfn_of(d, SYMBOLS['watched'])
    listener.set_access('rx', watched)
    events = finish(listener, respond=lambda ev: ev.respond(access='rwx'))
    assert len(events) == 1 and listener.get_access(watched) == 'rwx'


def test_rx2rw_turns_read_write_on_the_first_write_without_an_event():
    d = boot()
    listener = Listener(d)
    watched = mfn_of(d, SYMBOLS['watched'])
    listener.set_access('rx2rw', watched)
    assert finish(listener) == []
    assert listener.get_access(watched) == 'rw'


def test_n2rwx_reports_once_without_pausing_and_becomes_rwx():
    d = boot()
    listener = Listener(d)
    watched = mfn_of(d, SYMBOLS['watched'])
    listener.set_access('n2rwx', watched)
    events = finish(listener)
    assert len(events) == 1 and not events[0].paused
    assert events[0].access == '-w-'
    assert listener.get_access(watched) == 'rwx'


def test_changing_the_default_mid_run_blows_every_shadow_and_the_guest_goes_on():
    d = boot()
    listener = Listener(d)
    listener.set_access('rx', mfn_of(d, SYMBOLS['watched']))
    counts = []

    def change_default(event):
        if not counts:
            assert d.paging.live_shadows() > 2
            blown = d.paging.stats['blown']
            assert listener.set_default_access('rwx') == 0
            assert d.paging.stats['blown'] == blown + 1
            counts.append(d.paging.live_shadows())
        event.respond(emulate=True)
    finish(listener, respond=change_default)
    assert counts == [1]                   # just the root the running vCPU needs
    assert xc_get_mem_access(d, xen.ACCESS_START_DEFAULT) == (0, XENMEM_access_rwx)


def test_access_required_without_a_listener_crashes_naming_the_vcpu_and_frame():
    d = boot()
    assert xc_mem_access_shadow_enable(d) == 0
    assert xc_domain_set_access_required(d, True) == 0
    watched = mfn_of(d, SYMBOLS['watched'])
    assert xc_set_mem_access(d, XENMEM_access_rx, watched, 1) == 0
    exit_ = d.run(timeout=30)
    assert exit_.reason is ExitReason.CRASH
    assert 'vCPU 0' in exit_.message and f'{watched:#x}' in exit_.message


def test_without_access_required_or_a_listener_the_frame_is_relaxed_and_the_guest_goes_on():
    d = boot()
    assert xc_mem_access_shadow_enable(d) == 0
    watched = mfn_of(d, SYMBOLS['watched'])
    assert xc_set_mem_access(d, XENMEM_access_rx, watched, 1) == 0
    exit_ = d.run(timeout=30)
    assert exit_.clean and b'Test result: SUCCESS' in d.console
    assert xc_get_mem_access(d, watched) == (0, XENMEM_access_rwx)


def test_access_required_with_a_listener_delivers_events():
    d = boot()
    listener = Listener(d, access_required=True)
    listener.set_access('rx', mfn_of(d, SYMBOLS['watched']))
    assert len(finish(listener)) == 5


def test_the_ring_page_is_invisible_to_the_guest():
    d = boot()
    ring = d.vm_event_ring_mfn
    assert d.frames.owner[ring] == xen.DOMID_XEN and ring not in d.p2m
    si = walk(d.mem.read_u64, d.vcpus[0].guest_table, d.entry[2]).maddr
    d.mem.write(si + xen.start_info.cmd_line.offset, f'ring={ring:x}\0'.encode())
    exit_ = d.run(timeout=30)
    assert exit_.clean and b'Test result: SUCCESS' in d.console, d.console


def test_a_page_table_store_under_a_write_forbidding_access_raises_an_event():
    d = boot()
    listener = Listener(d)
    # the kernel stores into the L1 entry of its scratch page (past the bootstrap stack)
    layout = d.layout
    scratch_va = layout.page_tables + (layout.nr_pt_frames + 4) * 4096
    table = walk(d.mem.read_u64, d.vcpus[0].guest_table, scratch_va).levels[-1].table_mfn
    listener.set_access('rx', table)
    events = finish(listener)
    writes = [e for e in events if e.gfn == table]
    assert writes and all(e.access == '-w-' for e in writes)
    assert any(e.offset == (scratch_va >> 12 & 511) * 8 for e in writes)


def test_a_range_with_a_foreign_frame_is_refused_whole():
    d = boot()
    assert xc_mem_access_shadow_enable(d) == 0
    top = max(m for m in range(d.frames.nr_frames) if d.owns(m))
    assert d.owns(top - 1) and not d.owns(top + 1)
    assert xc_set_mem_access(d, XENMEM_access_rx, top - 1, 3) == -EINVAL
    assert xc_get_mem_access(d, top - 1) == (0, XENMEM_access_rwx)
    assert xc_get_mem_access(d, top) == (0, XENMEM_access_rwx)


def test_a_long_range_continues_until_done():
    d = boot()
    assert xc_mem_access_shadow_enable(d) == 0
    first = min(d.p2m)
    nr = 1000
    assert all(d.owns(first + i) for i in range(nr))
    assert xc_set_mem_access(d, XENMEM_access_rx, first, nr) == 0
    assert all(xc_get_mem_access(d, first + i)[1] == XENMEM_access_rx for i in range(nr))


def test_the_legacy_hvmop_names_do_the_same():
    d = boot()
    assert xc_mem_access_shadow_enable(d) == 0
    watched = mfn_of(d, SYMBOLS['watched'])
    assert xc_hvm_set_mem_access(d, XENMEM_access_rx, watched, 1) == 0
    assert xc_hvm_get_mem_access(d, watched) == (0, XENMEM_access_rx)
    assert xc_get_mem_access(d, watched) == (0, XENMEM_access_rx)
    assert xc_hvm_set_mem_access(d, XENMEM_access_rx, 0, 1) == -EINVAL


def test_setting_access_needs_pg_mem_access_mode():
    d = boot()
    from pvshadow.shadow.abi.xen import EOPNOTSUPP
    assert xc_set_mem_access(d, XENMEM_access_rx, min(d.p2m), 1) == -EOPNOTSUPP


@pytest.mark.parametrize('access, shows', [('n', (False, False, False)), ('r', (True, False, False)),
                                           ('w', (False, False, False)), ('rw', (True, True, False)),
                                           ('x', (False, False, False)), ('rx', (True, False, True)),
                                           ('wx', (False, False, False)), ('rwx', (True, True, True)),
                                           ('rx2rw', (True, False, True)), ('n2rwx', (False, False, False))])
def test_each_access_type_maps_to_the_nearest_stricter_shadow(access, shows):
    from pvshadow.shadow.mem_access import SHADOW_RIGHTS
    assert SHADOW_RIGHTS[xen.ACCESS_BY_NAME[access]] == shows


def test_write_only_pages_let_writes_through_and_report_reads():
    d = boot()
    listener = Listener(d)
    listener.set_access('w', mfn_of(d, SYMBOLS['watched']))
    events = finish(listener)
    assert [e.access for e in events] == ['r--'] * 5     # the five reads back; no write events


@pytest.mark.parametrize('answer', [lambda ev: ev.respond(emulate=True),
                                    lambda ev: ev.respond(access='rwx'),
                                    lambda ev: None])
def test_the_in_hook_listener_sees_the_same_events_as_the_ring(answer):
    """Listener.run answers inside the fault hook; Listener.events through the ring with
    a pause and a CPU stop per event. The same kernel gives the same event stream."""
    streams = []
    for fast in (False, True):
        d = boot()
        listener = Listener(d)
        listener.set_access('rx', mfn_of(d, SYMBOLS['watched']))
        listener.set_access('rw', mfn_of(d, SYMBOLS['exec_page']))
        seen = []

        def on_event(event):
            seen.append(event.to_json())
            if len(seen) > 200:
                event.respond(access='rwx')      # a plain resume forever: stop it
            else:
                answer(event)
        if fast:
            exit_ = listener.run(on_event, timeout=30)
        else:
            for event in listener.events(timeout=30):
                on_event(event)
            exit_ = listener.exit
        assert exit_.clean, exit_.describe()
        streams.append(seen)
    assert streams[0] == streams[1] and streams[0]


@pytest.mark.parametrize('relax, prefilled', [(True, True), (False, False)])
def test_a_resume_that_lets_the_access_through_fills_its_shadow_before_the_retry(relax, prefilled):
    """A relaxing answer on the ring fills the shadow at resume (the retry does not fault
    again); a plain resume leaves the retry to fault and ask again."""
    d = boot()
    listener = Listener(d)
    listener.set_access('rx', mfn_of(d, SYMBOLS['watched']))
    answers = 0
    for event in listener.events(timeout=30):
        answers += 1
        if relax or answers > 3:
            event.respond(access='rwx')
        else:
            event.respond()
    assert listener.exit.clean, listener.exit.describe()
    assert (d.paging.stats['prefilled'] == answers) is prefilled
    assert d.paging.audit() == []


@pytest.mark.parametrize('rip_moved', [False, True])
def test_an_emulate_answer_applies_the_store_at_resume_unless_the_vcpu_moved(rip_moved):
    """"Emulate" on the ring: the store the vCPU would retry is applied at resume (no
    second fault at that address), as the retry would; if RIP is no longer the faulting
    instruction, it is left to the retry."""
    d = boot()
    listener = Listener(d)
    listener.set_access('rx', mfn_of(d, SYMBOLS['watched']))
    faults = []
    page_fault = d.paging.page_fault
    d.paging.page_fault = lambda v, cr2, error_code: faults.append(cr2) or \
        page_fault(v, cr2, error_code)
    for event in listener.events(timeout=30):
        faults.clear()
        event.respond(emulate=True)
        if rip_moved:
            rip = d.cpu.rip
            d.cpu.rip = rip + 0x1000        # not the faulting instruction while it resumes
            xc_mem_access_resume(d)
            d.cpu.rip = rip
        else:
            xc_mem_access_resume(d)
        d.run(budget=1)                     # the retry, or the instruction after the store
        assert (event.gla in faults) is rip_moved, faults
        break
    assert d.stats['stores_emulated'] == 1   # at resume, or by the retry


@pytest.mark.parametrize('tables_changed', [False, True])
def test_the_resume_fill_reuses_the_faults_walk_only_if_no_guest_table_changed(tables_changed):
    """The walk the fault made is kept for the fill at resume; a guest-table change in
    between (the generation count) makes the fill walk again."""
    d = boot()
    listener = Listener(d)
    listener.set_access('rx', mfn_of(d, SYMBOLS['watched']))
    walks = []
    fast_walk = d.paging._fast_walk
    for event in listener.events(timeout=30):
        if tables_changed:
            d.paging.tables_generation += 1
        walks.clear()
        d.paging._fast_walk = lambda root, va: walks.append(va) or fast_walk(root, va)
        event.respond(access='rwx')
        xc_mem_access_resume(d)             # what events() does next, watched here
        d.paging._fast_walk = fast_walk
        assert walks == ([event.gla] if tables_changed else []), walks
        break
    assert d.paging.stats['prefilled'] == 1


_PATCH_KERNEL = '''
.equ patch_imm, patch_site + 1
test_main:
    call patch_site                  # translated and run once: 1
    mov rdi, rax
    mov esi, 1
    lea rdx, [rip + m_before]
    call check_eq
{store}
    call patch_site                  # must run the new bytes: 2
    mov rdi, rax
    mov esi, 2
    lea rdx, [rip + m_after]
    call check_eq
    ret
.align 64
patch_site:
    mov eax, 1
    ret
m_before: .asciz "patch_site before the store"
m_alias: .asciz "mapping the alias"
m_after: .asciz "patch_site after the emulated store"
'''
PATCHED_CODE = _PATCH_KERNEL.format(store='''\
    mov byte ptr [rip + patch_imm], 2    # a store into this very code page''')


def _emulate_stores_into_patch_site(tmp_path, source: str, in_hook: bool):
    """Run a kernel with patch_site's frame write-watched, every store answered
    "emulate" in the hook or through the ring; it must report SUCCESS."""
    from tests.conftest import asm_kernel
    path = asm_kernel(tmp_path, 'patch', source)
    symbols = load_kernel(path, extra_symbols=('patch_site',)).symbols
    d = api.boot(path, paging='shadow', audit=True, vm_event_ring=True)
    listener = Listener(d)
    listener.set_access('rx', mfn_of(d, symbols['patch_site']))
    answer = lambda ev: ev.respond(emulate=True)        # noqa: E731
    if in_hook:
        exit_ = listener.run(answer, timeout=30)
    else:
        for event in listener.events(timeout=30):
            answer(event)
        exit_ = listener.exit
    assert exit_.clean, exit_.describe()
    assert b'Test result: SUCCESS' in d.console, d.console
    return d


@pytest.mark.parametrize('in_hook', [False, True])
def test_an_emulated_store_into_code_already_run_takes_effect(tmp_path, in_hook):
    """A write-watched code page, the store answered "emulate": the hypervisor writes the
    bytes, and the CPU must not keep running its old translation of them."""
    d = _emulate_stores_into_patch_site(tmp_path, PATCHED_CODE, in_hook)
    assert d.stats['stores_emulated'] >= 1


ALIASED_CODE = _PATCH_KERNEL.format(store='''\
    call scratch_va
    mov rbx, rax                     # a second, data-only (NX) mapping of the code frame
    lea rdi, [rip + patch_site]
    call va_maddr
    and rax, -4096
    or rax, PTE_P | PTE_RW | PTE_A | PTE_D
    bts rax, 63
    mov rsi, rax
    mov rdi, rbx
    call map_va
    mov rdi, rax
    xor esi, esi
    lea rdx, [rip + m_alias]
    call check_eq
    lea rax, [rip + patch_imm]
    and eax, 0xfff
    mov byte ptr [rbx + rax], 2      # the store, through the alias''')


@pytest.mark.parametrize('in_hook', [False, True])
def test_an_emulated_store_through_a_data_alias_of_code_takes_effect(tmp_path, in_hook):
    """The watched store goes through a second mapping of the code frame that cannot
    fetch (NX): the CPU finds no translation by that address, so the hypervisor must
    drop the frame's translations some other way."""
    d = _emulate_stores_into_patch_site(tmp_path, ALIASED_CODE, in_hook)
    assert d.stats['stores_emulated'] == 1


def test_an_emulated_store_into_a_frame_never_executable_keeps_the_translations(tmp_path):
    """Only a frame some mapping made executable can have translated code: a store into
    a data frame mapped NX everywhere drops nothing."""
    from tests.conftest import asm_kernel
    path = asm_kernel(tmp_path, 'patch', PATCHED_CODE)
    d = api.boot(path, paging='shadow', audit=True, vm_event_ring=True)
    dropped = []
    d.cpu.flush_code_cache = lambda: dropped.append('all')
    d.cpu.invalidate_code = lambda va, size: dropped.append(va)
    data_mfn = d.types.frames.nr_frames - 1
    assert not d.types.frames.executable[data_mfn]
    d.paging.code_written(d.vcpus[0], 0x1000, data_mfn, 8)
    assert dropped == []
    symbols_mfn = mfn_of(d, load_kernel(path, extra_symbols=('patch_site',))
                         .symbols['patch_site'])
    assert d.types.frames.executable[symbols_mfn]      # the kernel's text, mapped executable
