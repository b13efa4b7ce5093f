"""`pvshadow test` and `pvshadow list`: a regression run over many kernels, judged and
reported as xtf-runner does."""
import os
import xml.etree.ElementTree as ET

from pvshadow.guests.header import kernel_header
from pvshadow.guests.kernels import kernel_names
from pvshadow.tools.runner import collect, plan
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


def test_the_builtin_directory_plans_every_kernel_in_the_modes_it_runs_in():
    jobs = plan(collect([os.path.join(ROOT, 'asm')]), 'both')
    labels = [job.label for job in jobs]
    assert len(labels) == len(set(labels))
    for name in kernel_names():
        header = kernel_header(os.path.join(ROOT, 'asm', name + '.S'))
        if header.domains:
            assert name in labels                      # once, as the host it names
        elif '--paging translated' in ' '.join(header.options):
            assert f'{name}-translated' in labels and f'{name}-direct' not in labels
        else:
            assert f'{name}-direct' in labels and f'{name}-shadow' in labels


def test_plain_header_translated_and_host_kernels_pass_through_the_runner():
    """One of each kind of job, two at a time (every kernel passing on its own is
    tests/test_kernels.py's and tests/test_header.py's)."""
    proc = pvshadow('test', 'hello', 'runstate', 'translated', 'foreignmap', '-j', '2')
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert _combined(proc.stdout) == {
        'hello-direct': 'SUCCESS', 'hello-shadow': 'SUCCESS', 'runstate-direct': 'SUCCESS',
        'runstate-shadow': 'SUCCESS', 'translated-translated': 'SUCCESS', 'foreignmap': 'SUCCESS'}


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
