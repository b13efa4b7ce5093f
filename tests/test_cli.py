"""`pvshadow run`: console output, exit status, and one-line refusals of bad input."""
import os
import sys

import pytest

from tests.cli import pvshadow, pvshadow_process
from tests.conftest import ROOT, asm_kernel


def test_run_hello_prints_the_greeting_and_exits_zero():
    proc = pvshadow_process('run', 'hello')      # the entry point itself, in a fresh interpreter
    assert proc.returncode == 0, proc.stderr
    assert 'Hello from a PV guest on pvshadow!' in proc.stdout
    assert 'Test result: SUCCESS' in proc.stdout


def test_run_accepts_an_asm_path():
    proc = pvshadow('run', os.path.join(ROOT, 'asm', 'hello.S'))
    assert proc.returncode == 0, proc.stderr


def _one_line_refusal(proc, needle):
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0] and 'Traceback' not in proc.stderr


def test_a_missing_file_is_refused_in_one_line(tmp_path):
    _one_line_refusal(pvshadow('run', str(tmp_path / 'missing.elf')), 'no such file')


def test_an_unknown_kernel_name_is_refused_in_one_line():
    _one_line_refusal(pvshadow('run', 'no-such-kernel'), 'no such file or test kernel')


def test_a_malformed_elf_is_refused_in_one_line(tmp_path):
    bad = tmp_path / 'bad.elf'
    bad.write_bytes(b'\x7fELF' + bytes(range(60)))
    _one_line_refusal(pvshadow('run', str(bad)), 'malformed ELF')


def test_a_truncated_elf_is_refused_in_one_line(tmp_path):
    bad = tmp_path / 'short.elf'
    bad.write_bytes(b'\x7fELF\x02\x01\x01')
    _one_line_refusal(pvshadow('run', str(bad)), 'malformed ELF')


def test_an_elf_without_xen_notes_is_refused_in_one_line():
    _one_line_refusal(pvshadow('run', sys.executable), 'ELF')


def test_an_asm_source_that_does_not_assemble_is_refused_in_one_line(tmp_path):
    path = asm_kernel(tmp_path, 'broken', 'test_main:\n    frobnicate rax\n')
    _one_line_refusal(pvshadow('run', path), 'cannot assemble')


def test_a_crash_exits_6_with_reason_registers_and_console_kept(tmp_path):
    path = asm_kernel(tmp_path, 'crash', '''
test_main:
    lea rdi, [rip + before]
    call puts
    xor edi, edi
    call hc_set_trap_table
    ud2
before: .asciz "before the crash\\n"
''')
    proc = pvshadow('run', path)
    assert proc.returncode == 6
    assert 'before the crash' in proc.stdout
    assert 'crash' in proc.stderr and 'Unhandled invalid opcode' in proc.stderr
    assert 'rip=' in proc.stderr


VERDICT_KERNEL = '''
test_main:
    lea rdi, [rip + why]
    call {call}
    ret
why: .asciz "on purpose"
'''


@pytest.mark.parametrize('call, code', [('fail', 5), ('skip', 3)])
def test_run_exits_with_xtf_runners_code_for_the_verdict(tmp_path, call, code):
    path = asm_kernel(tmp_path, call, VERDICT_KERNEL.format(call=call))
    proc = pvshadow('run', path)
    assert proc.returncode == code, proc.stderr


def test_an_error_verdict_exits_4(tmp_path):
    path = asm_kernel(tmp_path, 'error', '''
test_main:
    mov edi, VERDICT_ERROR
    call set_verdict
    ret
''')
    assert pvshadow('run', path).returncode == 4


def test_a_clean_poweroff_without_a_verdict_is_a_crash(tmp_path):
    path = asm_kernel(tmp_path, 'silent', '''
test_main:
    mov edi, SCHEDOP_shutdown
    lea rsi, [rip + reason]
    call hc_sched_op
reason: .long 0
''')
    proc = pvshadow('run', path)
    assert proc.returncode == 6
    assert 'without a "Test result:" line' in proc.stderr


BAD_OPTIONS = [
    ('run', 'hello', '--budget', '-1'), ('run', 'hello', '--timeout', '-1'),
    ('trace', 'hello', '--gdb', '99999'), ('trace', 'hello', '--log', '/nonexistent/x'),
    ('trace', 'hello', '-x', '/'), ('run', 'hello', '--memory', '100000000'),
    ('run', 'hello', '--memory', '0'), ('run', 'hello', '--paging', 'bogus'),
    ('access', 'hello', '--watch', 'write', '--timeout', '-1'),
    ('run', 'hello', '--shadow-pool', '2'), ('trace', 'hello', '--budget', 'x'),
    ('test', '-j', '0'), ('run',), ('bogus-command',),
]


@pytest.mark.parametrize('args', BAD_OPTIONS, ids=' '.join)
def test_a_bad_option_is_one_line_and_exit_2(args):
    proc = pvshadow(*args)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and 'Traceback' not in proc.stderr


def test_a_gdb_port_in_use_is_one_line_and_exit_2():
    import socket
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen(1)
        proc = pvshadow('trace', 'hello', '--gdb', str(busy.getsockname()[1]))
    assert proc.returncode == 2 and 'Address already in use' in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_version_and_the_default_watchdog_in_help():
    assert pvshadow('--version').stdout.startswith('pvshadow ')
    for command in ('run', 'trace', 'access'):
        assert 'default 60.0' in ' '.join(pvshadow(command, '--help').stdout.split())


def test_console_io_after_the_ring_goes_to_the_hypervisor_console_once():
    # startofday writes through its console ring, with one console_io line in between
    proc = pvshadow('run', 'startofday')
    assert proc.returncode == 0
    assert '(this line through console_io)' not in proc.stdout
    assert '(d1)   (this line through console_io)' in proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(set(lines))            # every line once


def test_the_api_keeps_both_console_streams():
    from pvshadow.shadow.api import run_kernel
    result = run_kernel('startofday')
    d = result.domain
    assert b'(this line through console_io)' in d.console_io
    assert b'(this line through console_io)' not in d.console
    assert b'Test result: SUCCESS' in d.console_ring and result.verdict == 'SUCCESS'


def test_xen_log_sends_the_hypervisor_console_to_a_file(tmp_path):
    log = tmp_path / 'xen.log'
    proc = pvshadow('run', 'startofday', '--xen-log', str(log))
    assert proc.returncode == 0 and '(this line through console_io)' not in proc.stderr
    assert log.read_text() == '(d1)   (this line through console_io)\n'
