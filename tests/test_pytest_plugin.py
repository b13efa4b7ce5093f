"""The pytest plugin: a user's kernels collected as tests from a scratch directory, their
verdicts mapped to pytest outcomes, under pytest-xdist too."""
import subprocess
import sys

import pytest

MINE = '''.include "pv.inc"
test_main:
    mov rdi, 2
    mov rsi, 2
    lea rdx, [rip + what]
    call check_eq
    ret
what: .asciz "two is two"
'''
FAILING = '''.include "pv.inc"
test_main:
    lea rdi, [rip + why]
    call puts
    lea rdi, [rip + why]
    call fail
    ret
why: .asciz "the frame moved\\n"
'''
SKIPPING = '''.include "pv.inc"
test_main:
    lea rdi, [rip + why]
    call skip
    ret
why: .asciz "no hardware for it"
'''


def pytest_in(directory, *args):
    return subprocess.run([sys.executable, '-m', 'pytest', '-p', 'pvshadow', '-p',
                           'no:cacheprovider', '-rs', *args, str(directory)],
                          cwd=directory, capture_output=True, text=True, timeout=300)


def test_a_users_kernel_is_collected_and_passes_in_both_modes(tmp_path):
    (tmp_path / 'test_mine.S').write_text(MINE)
    proc = pytest_in(tmp_path, '-v')
    assert proc.returncode == 0, proc.stdout
    assert 'test_mine.S::direct PASSED' in proc.stdout
    assert 'test_mine.S::shadow PASSED' in proc.stdout


def test_it_works_under_xdist(tmp_path):
    pytest.importorskip('xdist')
    (tmp_path / 'test_mine.S').write_text(MINE)
    (tmp_path / 'two.pvk.S').write_text(MINE)
    proc = pytest_in(tmp_path, '-n', '2')
    assert proc.returncode == 0, proc.stdout
    assert '4 passed' in proc.stdout


def test_a_failure_fails_with_the_console_and_a_skip_skips_with_its_reason(tmp_path):
    (tmp_path / 'test_fails.S').write_text(FAILING)
    (tmp_path / 'test_skips.S').write_text(SKIPPING)
    proc = pytest_in(tmp_path)
    assert proc.returncode == 1
    assert 'FAILURE: test_fails.S (direct)' in proc.stdout
    assert 'the frame moved' in proc.stdout
    assert 'no hardware for it' in proc.stdout
    assert '2 failed, 2 skipped' in proc.stdout


def test_the_ini_option_chooses_the_files_and_modes(tmp_path):
    (tmp_path / 'mine.kernel.S').write_text(MINE)
    (tmp_path / 'test_ignored.S').write_text(FAILING)
    (tmp_path / 'pytest.ini').write_text('[pytest]\npvshadow_kernels = *.kernel.S\n'
                                         'pvshadow_paging = shadow\n')
    proc = pytest_in(tmp_path, '-v')
    assert proc.returncode == 0, proc.stdout
    assert 'mine.kernel.S::shadow PASSED' in proc.stdout and '1 passed' in proc.stdout


def test_the_fixture_drives_a_kernel_from_python(pvshadow):
    result = pvshadow.run('hello', paging='shadow')
    assert result.verdict == 'SUCCESS'
    d = pvshadow.boot('hello')
    assert pvshadow.inspect.registers(d) is not None
