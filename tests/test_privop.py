"""Port I/O rules: Xen's iopl_ok against the guest's ring, and what an allowed access does."""
from types import SimpleNamespace

import pytest

from pvshadow.shadow.abi.xen import VMASST_TYPE_architectural_iopl
from pvshadow.shadow.privop import iopl_ok, port_read, port_write


def vcpu(kernel_mode, iopl, architectural=False):
    domain = SimpleNamespace(vm_assist=(1 << VMASST_TYPE_architectural_iopl) if architectural else 0)
    return SimpleNamespace(kernel_mode=kernel_mode, iopl=iopl, domain=domain, cpu=None)


@pytest.mark.parametrize('iopl, allowed', [(0, False), (1, True), (2, True), (3, True)])
def test_the_kernel_counts_as_ring_1(iopl, allowed):
    assert iopl_ok(vcpu(True, iopl)) is allowed


@pytest.mark.parametrize('iopl, allowed', [(0, False), (1, False), (2, False), (3, True)])
def test_user_mode_needs_iopl_3(iopl, allowed):
    assert iopl_ok(vcpu(False, iopl)) is allowed


def test_with_architectural_iopl_the_kernel_is_ring_0():
    assert iopl_ok(vcpu(True, 0, architectural=True))


def test_an_allowed_read_returns_all_ones_of_its_size_and_a_refused_one_none():
    assert [port_read(vcpu(True, 1), 0x80, n) for n in (1, 2, 4)] == [0xFF, 0xFFFF, 0xFFFFFFFF]
    assert port_read(vcpu(True, 0), 0x80, 1) is None
    assert port_write(vcpu(True, 1), 0x80, 1, 0) and not port_write(vcpu(False, 1), 0x80, 1, 0)


# --- cli and sti (priv_op_validate) ---------------------------------------------------------
from pvshadow.shadow.disasm import decode_one  # noqa: E402
from pvshadow.shadow.privop import _emulate  # noqa: E402


def _insn(code: bytes):
    return decode_one(code, 0x1000)


@pytest.mark.parametrize('code', [b'\xfa', b'\xfb'])
@pytest.mark.parametrize('kernel_mode, iopl, emulated', [
    (True, 0, False), (True, 1, True), (False, 1, False), (False, 2, False), (False, 3, True)])
def test_cli_and_sti_do_nothing_when_the_virtual_iopl_allows_them(code, kernel_mode, iopl, emulated):
    assert _emulate(vcpu(kernel_mode, iopl), _insn(code)) is emulated


def test_other_privileged_instructions_stay_refused_in_user_mode():
    assert _emulate(vcpu(False, 3), _insn(b'\x0f\x06')) is False      # clts
