"""Debug-register arithmetic: Xen's reserved-bit rules and what DR7 arms."""
from pvshadow.shadow.debugregs import (RW_ACCESS, RW_EXEC, RW_WRITE, Breakpoint, adjust_dr6, adjust_dr7,
                              armed_breakpoints, breakpoint_addr_ok)


def test_dr6_reads_its_reserved_bits_as_ones_and_bit_12_as_zero():
    assert adjust_dr6(0) == 0xFFFF0FF0
    assert adjust_dr6(0x1001) == 0xFFFF0FF1


def test_dr7_forces_bit_10_on_and_the_rtm_and_reserved_bits_off():
    assert adjust_dr7(0) == 0x400
    assert adjust_dr7(0xD801) == 0x401


def test_breakpoint_addresses_may_be_user_or_kernel_but_not_xens_or_non_canonical():
    assert breakpoint_addr_ok(0x401000)
    assert breakpoint_addr_ok(0xFFFFFFFF80001000)
    assert not breakpoint_addr_ok(0xFFFF800000001000)
    assert not breakpoint_addr_ok(0x0000800000000000)


def test_dr7_with_no_enable_bits_arms_nothing():
    assert armed_breakpoints(0x400 | (1 << 16), [0x1000] * 4) == []


def test_an_instruction_breakpoint_ignores_len_and_keeps_its_address():
    assert armed_breakpoints(0x2 | (3 << 18), [0x1003, 0, 0, 0]) == [
        Breakpoint(0, RW_EXEC, 0x1003, 1)]


def test_a_data_breakpoint_is_aligned_down_to_its_length():
    dr7 = (1 << 2) | (RW_WRITE << 20) | (2 << 22) | (1 << 6) | (RW_ACCESS << 28) | (3 << 30)
    assert armed_breakpoints(dr7, [0, 0x2005, 0, 0x3007]) == [
        Breakpoint(1, RW_WRITE, 0x2000, 8), Breakpoint(3, RW_ACCESS, 0x3004, 4)]


def test_io_breakpoints_are_never_armed():
    assert armed_breakpoints(0x1 | (2 << 16), [0x60, 0, 0, 0]) == []
