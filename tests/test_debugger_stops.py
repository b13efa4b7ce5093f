"""A debugger's stops: watchpoints (Domain.add_watchpoint) end the run after the
instruction that touched the watched bytes, breakpoints before the instruction, on
whichever vCPU runs it; the guest sees nothing."""
import pytest

from capstone import CS_ARCH_X86, CS_MODE_64, Cs

from pvshadow.guests.kernels import load_kernel
from pvshadow.shadow import api, inspect
from pvshadow.shadow.exits import ExitReason

SYMBOLS = load_kernel('hello', extra_symbols=('shutdown_reason', 'start_info_ptr')).symbols
_md = Cs(CS_ARCH_X86, CS_MODE_64)


def instruction(domain, rip):
    return next(_md.disasm(inspect.read_virtual(domain, rip, 15), rip, 1))


@pytest.mark.parametrize('paging', ['direct', 'shadow'])
def test_a_write_watchpoint_stops_after_the_store_and_the_run_goes_on(paging):
    d = api.boot('hello', paging=paging)
    wid = d.add_watchpoint(SYMBOLS['shutdown_reason'], 4)
    stop = d.run(timeout=30)
    assert stop.reason is ExitReason.BREAKPOINT
    assert stop.message.startswith(f'watchpoint {wid}: write of 4 bytes at '
                                   f'{SYMBOLS["shutdown_reason"]:#x}')
    rip = int(stop.message.rsplit(' ', 1)[1], 16)
    store = instruction(d, rip)
    assert store.mnemonic == 'mov' and d.cpu.rip == rip + store.size   # a trap: after it
    assert d.run(timeout=30).reason is ExitReason.SHUTDOWN
    assert b'Test result: SUCCESS' in d.console


def test_a_read_watchpoint_stops_on_a_load_and_a_write_one_does_not():
    d = api.boot('hello')
    d.add_watchpoint(SYMBOLS['start_info_ptr'], 8)
    d.add_watchpoint(SYMBOLS['start_info_ptr'], 8, reads=True)
    first = d.run(timeout=30)                 # pv_entry stores it, then reads it back
    assert 'watchpoint 0,1: write' in first.message
    second = d.run(timeout=30)
    assert 'watchpoint 1: read of 8 bytes' in second.message


def test_a_removed_watchpoint_no_longer_stops():
    d = api.boot('hello')
    wid = d.add_watchpoint(SYMBOLS['shutdown_reason'], 4)
    d.remove_watchpoint(wid)
    assert d.run(timeout=30).reason is ExitReason.SHUTDOWN


def test_a_watchpoint_across_a_page_boundary_is_refused():
    d = api.boot('hello')
    with pytest.raises(ValueError):
        d.add_watchpoint(0xFFFFFFFF80000FFC, 8)


def test_a_breakpoint_hit_by_a_second_vcpu_stops_the_run():
    entry = load_kernel('gdt', extra_symbols=('vcpu1_entry',)).symbols['vcpu1_entry']
    d = api.boot('gdt')
    d.add_breakpoint(entry)
    stop = d.run(timeout=30)
    assert stop.reason is ExitReason.BREAKPOINT, stop.describe()
    assert d.cpu.guest.vcpu_id == 1 and d.cpu.rip == entry
