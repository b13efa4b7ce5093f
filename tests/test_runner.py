"""`pvshadow test` and `pvshadow list`: a regression run over many kernels, judged and
reported as xtf-runner does."""
import os
import xml.etree.ElementTree as ET

from pvshadow.guests.kernels import kernel_names
from tests.conftest import ROOT, asm_kernel
from tests.test_cli import pvshadow

FAILING = '''
test_main:
    lea rdi, [rip + why]
    call fail
    ret
why: .asciz "on purpose"
'''


def _combined(stdout):
    lines = stdout.splitlines()
    at = lines.index('Combined test results:')
    return dict(line.rsplit(None, 1) for line in lines[at + 1:])


def test_every_builtin_kernel_passes_in_both_modes():
    proc = pvshadow('test', os.path.join(ROOT, 'asm'), '-j', '2', timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    results = _combined(proc.stdout)
    assert set(results.values()) == {'SUCCESS'}
    for name in kernel_names():
        assert f'{name}-direct' in results and f'{name}-shadow' in results or \
            name in results or f'{name}-translated' in results


def test_a_failing_kernel_makes_the_run_exit_5_and_is_reported(tmp_path):
    failing = asm_kernel(tmp_path, 'failing', FAILING)
    junit = tmp_path / 'results.xml'
    proc = pvshadow('test', 'hello', failing, '--paging', 'shadow', '--junit', str(junit))
    assert proc.returncode == 5
    assert _combined(proc.stdout) == {'hello-shadow': 'SUCCESS', 'failing-shadow': 'FAILURE'}
    assert '--- failing-shadow: FAILURE' in proc.stdout and 'on purpose' in proc.stdout
    suite = ET.parse(junit).getroot()
    assert (suite.get('tests'), suite.get('failures')) == ('2', '1')
    failed = [c for c in suite if c.find('failure') is not None]
    assert [c.get('name') for c in failed] == ['failing-shadow']


def test_a_directory_is_searched_for_sources_and_elfs(tmp_path):
    from pvshadow.guests.elfwrite import write_pv_elf
    from pvshadow.guests.kernels import load_kernel
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'hello.elf').write_bytes(write_pv_elf(load_kernel('hello')))
    asm_kernel(tmp_path, 'failing', FAILING)
    (tmp_path / 'notes.txt').write_text('not a kernel')
    proc = pvshadow('test', str(tmp_path), '--paging', 'direct')
    assert _combined(proc.stdout) == {'failing-direct': 'FAILURE', 'hello-direct': 'SUCCESS'}


def test_list_names_every_builtin_kernel_with_a_line_about_it():
    proc = pvshadow('list')
    assert proc.returncode == 0
    lines = dict(line.split(None, 1) for line in proc.stdout.splitlines())
    assert sorted(lines) == kernel_names()
    assert lines['hello'] == 'the smallest PV kernel'


def test_bad_runner_options_are_one_line_and_exit_2():
    for args in (('-j', '0'), ('--timeout', '-1'), ('no-such-kernel',)):
        proc = pvshadow('test', *args)
        assert proc.returncode == 2, args
        assert 'Traceback' not in proc.stderr
