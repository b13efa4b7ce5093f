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
    """A pytest run over a user's directory in a fresh interpreter, as a user starts it
    (plugins from their entry points), without the plugins this suite itself uses that
    are not the user's concern (hypothesis's, pytest-benchmark's: 0.7 s of imports)."""
    return subprocess.run([sys.executable, '-m', 'pytest', '-p', 'pvshadow', '-p',
                           'no:cacheprovider', '-p', 'no:hypothesispytest', '-p',
                           'no:benchmark', '-rs', *args, str(directory)],
                          cwd=directory, capture_output=True, text=True, timeout=300)


@pytest.fixture
def user_dir(pytester, monkeypatch):
    """A user's scratch directory for pytest_here: no plugin loads there but pvshadow's
    (not this suite's hypothesis, xdist and the rest)."""
    monkeypatch.setenv('PYTEST_DISABLE_PLUGIN_AUTOLOAD', '1')
    return pytester


def pytest_here(pytester, *args):
    """The same run inside this process (pytester), as pytest tests its own plugins: the
    session, collection and reports are pytest's own, without starting an interpreter."""
    result = pytester.runpytest_inprocess('-p', 'pvshadow.tools.pytest_plugin', '-p',
                                          'no:cacheprovider', '-rs', *args)
    return result.ret, result.stdout.str()


def test_a_users_kernel_is_collected_and_passes_in_both_modes(user_dir):
    user_dir.path.joinpath('test_mine.S').write_text(MINE)
    ret, out = pytest_here(user_dir, '-v')
    assert ret == 0, out
    assert 'test_mine.S::direct PASSED' in out
    assert 'test_mine.S::shadow PASSED' in out


def test_it_works_under_xdist(tmp_path):
    pytest.importorskip('xdist')
    (tmp_path / 'test_mine.S').write_text(MINE)
    (tmp_path / 'two.pvk.S').write_text(MINE)
    proc = pytest_in(tmp_path, '-n', '2')
    assert proc.returncode == 0, proc.stdout
    assert '4 passed' in proc.stdout


def test_a_failure_fails_with_the_console_and_a_skip_skips_with_its_reason(user_dir):
    user_dir.path.joinpath('test_fails.S').write_text(FAILING)
    user_dir.path.joinpath('test_skips.S').write_text(SKIPPING)
    ret, out = pytest_here(user_dir)
    assert ret == 1
    assert 'FAILURE: test_fails.S (direct)' in out
    assert 'the frame moved' in out
    assert 'no hardware for it' in out
    assert '2 failed, 2 skipped' in out


def test_the_ini_option_chooses_the_files_and_modes(user_dir):
    user_dir.path.joinpath('mine.kernel.S').write_text(MINE)
    user_dir.path.joinpath('test_ignored.S').write_text(FAILING)
    user_dir.path.joinpath('pytest.ini').write_text('[pytest]\npvshadow_kernels = *.kernel.S\n'
                                                    'pvshadow_paging = shadow\n')
    ret, out = pytest_here(user_dir, '-v')
    assert ret == 0, out
    assert 'mine.kernel.S::shadow PASSED' in out and '1 passed' in out


def test_the_fixture_drives_a_kernel_from_python(pvshadow):
    result = pvshadow.run('hello', paging='shadow')
    assert result.verdict == 'SUCCESS'
    d = pvshadow.boot('hello')
    assert pvshadow.inspect.registers(d) is not None
