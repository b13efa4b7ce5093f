"""The run loop ends with an exit that says why: shutdown codes, crash, halt, budget."""
import pytest

from pvshadow.shadow.abi.xen import SHUTDOWN_crash, SHUTDOWN_reboot
from pvshadow.shadow.api import run_kernel
from pvshadow.shadow.exits import ExitReason
from tests.conftest import asm_kernel


def run_body(tmp_path, body, **kwargs):
    return run_kernel(asm_kernel(tmp_path, 'k', body), **kwargs)


def shutdown_body(reason):
    return f'''
test_main:
    mov dword ptr [rip + reason], {reason}
    mov edi, SCHEDOP_shutdown
    lea rsi, [rip + reason]
    call hc_sched_op
    ud2
reason: .long 0
'''


def test_poweroff_is_a_clean_shutdown(tmp_path):
    result = run_body(tmp_path, 'test_main:\n    ret\n')
    assert result.exit.reason is ExitReason.SHUTDOWN and result.exit.shutdown_code == 0
    assert result.exit.clean


def test_reboot_and_crash_codes_are_reported(tmp_path):
    for code in (SHUTDOWN_reboot, SHUTDOWN_crash):
        result = run_body(tmp_path, shutdown_body(code))
        assert result.exit.reason is ExitReason.SHUTDOWN
        assert result.exit.shutdown_code == code and not result.exit.clean


def test_an_unhandled_fault_crashes_the_domain_with_registers(tmp_path):
    result = run_body(tmp_path, '''
test_main:
    xor edi, edi
    call hc_set_trap_table
    mov rax, qword ptr [0x2000]
''')
    assert result.exit.reason is ExitReason.CRASH
    assert 'Unhandled page fault' in result.exit.message
    assert result.exit.registers['cr2'] == 0x2000


def test_a_bounce_frame_that_cannot_be_written_crashes_the_domain(tmp_path):
    result = run_body(tmp_path, '''
test_main:
    mov rsp, 0x1000
    ud2
''')
    assert result.exit.reason is ExitReason.CRASH
    assert 'bounce frame' in result.exit.message


def test_block_with_nothing_to_wake_it_halts(tmp_path):
    result = run_body(tmp_path, '''
test_main:
    mov edi, SCHEDOP_block
    xor esi, esi
    call hc_sched_op
    ret
''')
    assert result.exit.reason is ExitReason.HALT


def test_an_instruction_budget_ends_a_spinning_guest(tmp_path):
    result = run_body(tmp_path, 'test_main:\nspin:\n    jmp spin\n', budget=100_000)
    assert result.exit.reason is ExitReason.BUDGET


def test_the_watchdog_ends_a_spinning_guest(tmp_path):
    result = run_body(tmp_path, 'test_main:\nspin:\n    jmp spin\n', timeout=0.3)
    assert result.exit.reason is ExitReason.TIMEOUT


def test_an_unknown_hypercall_returns_enosys(tmp_path):
    result = run_body(tmp_path, '''
test_main:
    call hypercall_page_60
    mov rdi, rax
    mov rsi, RC_ENOSYS
    lea rdx, [rip + msg]
    call check_eq
    ret
.equ hypercall_page_60, hypercall_page + 60 * 32
msg: .asciz "hypercall 60"
''')
    assert result.verdict == 'SUCCESS', result.console


@pytest.mark.hypervisor_error_expected
def test_a_hypervisor_bug_in_an_invalid_opcode_hook_is_an_internal_error_naming_it(
        tmp_path, monkeypatch):
    """The binding turns a raising #UD hook into Unicorn's invalid-instruction error; the
    exit names the hypervisor's exception instead, with its traceback in the Xen log."""
    from pvshadow.shadow.vcpu import VCpu

    def broken(self):
        raise RuntimeError('a bug in the #UD path')
    monkeypatch.setattr(VCpu, 'on_invalid_opcode', broken)
    result = run_body(tmp_path, 'test_main:\n    ud2\n')
    assert result.exit.reason is ExitReason.INTERNAL_ERROR
    assert 'hypervisor error: RuntimeError: a bug in the #UD path' in result.exit.describe()
    assert result.domain.stats['hypervisor_errors'] == 1


@pytest.mark.hypervisor_error_expected
@pytest.mark.parametrize('path, method, body', [
    ('fault', 'on_exception', 'test_main:\n    mov rax, [0]\n    ret\n'),
    ('hypercall', 'on_syscall', 'test_main:\n    xor edi, edi\n    call hc_sched_op\n    ret\n')])
def test_a_hypervisor_bug_in_the_fault_or_hypercall_hook_is_an_internal_error_naming_it(
        tmp_path, monkeypatch, path, method, body):
    """These two hooks are registered with libunicorn directly, without the binding's
    guard: their own catches the exception and stops the CPU, and the exit names it."""
    from pvshadow.shadow.vcpu import VCpu

    def broken(self, *args):
        raise RuntimeError(f'a bug in the {path} path')
    monkeypatch.setattr(VCpu, method, broken)
    result = run_body(tmp_path, body)
    assert result.exit.reason is ExitReason.INTERNAL_ERROR
    assert f'hypervisor error: RuntimeError: a bug in the {path} path' in result.exit.describe()
    assert result.domain.stats['hypervisor_errors'] == 1
