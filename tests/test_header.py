"""Kernels that need options say so in their own header (`# pvshadow:` and
`# pvshadow-run:`), so every kernel in asm/ passes standalone under `pvshadow run`."""
import os

import pytest

from pvshadow.guests.header import kernel_header
from pvshadow.guests.image import KernelError
from tests.conftest import ROOT
from tests.test_cli import pvshadow


def test_header_options_are_shell_words_with_files_relative_to_the_kernel(tmp_path):
    path = tmp_path / 'k.S'
    path.write_text('# k: a kernel\n# pvshadow: --paging shadow --rom r.bin@0x10 --cmdline "a=1 b=2"\n'
                    '# pvshadow-run: one.cfg /abs/two.cfg\n.include "pv.inc"\n')
    header = kernel_header(str(path))
    assert header.options == ['--paging', 'shadow', '--rom', f'{tmp_path}/r.bin@0x10',
                              '--cmdline', 'a=1 b=2']
    assert header.domains == [f'{tmp_path}/one.cfg', '/abs/two.cfg']


def test_a_header_with_an_unbalanced_quote_is_refused_in_one_line(tmp_path):
    path = tmp_path / 'k.S'
    path.write_text('# pvshadow: --cmdline "a=1\n')
    with pytest.raises(KernelError, match=r'k.S:1: pvshadow: header'):
        kernel_header(str(path))


KERNELS_WITH_A_HEADER = sorted(
    name[:-2] for name in os.listdir(os.path.join(ROOT, 'asm')) if name.endswith('.S') and
    (kernel_header(os.path.join(ROOT, 'asm', name)).options or
     kernel_header(os.path.join(ROOT, 'asm', name)).domains))


def test_the_kernels_that_need_options_are_there():
    assert {'rom', 'runstate', 'pingpong', 'foreignmap', 'dma', 'poke'} <= \
        set(KERNELS_WITH_A_HEADER)


@pytest.mark.parametrize('kernel', KERNELS_WITH_A_HEADER)
def test_kernels_that_need_options_pass_standalone(kernel):
    proc = pvshadow('run', kernel)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'Test result: SUCCESS' in proc.stdout


def test_the_command_line_wins_over_the_header():
    # the each-switch policy misses updates in user mode: the kernel proves it fails
    proc = pvshadow('run', 'runstate', '--runstate-policy', 'each-switch')
    assert proc.returncode == 5 and 'Test result: FAILURE' in proc.stdout


def test_every_builtin_kernel_source_parses_its_header():
    for name in os.listdir(os.path.join(ROOT, 'asm')):
        if name.endswith('.S'):
            kernel_header(os.path.join(ROOT, 'asm', name))


def test_every_builtin_kernel_runs_in_one_of_the_kernel_tests():
    """Each asm/ kernel passes in test_kernels (both modes, or translated) or here
    (standalone, its header's options), so `pvshadow test asm` would pass whole."""
    from tests.test_kernels import KERNELS, TRANSLATED_KERNELS
    from pvshadow.guests.kernels import kernel_names
    assert set(kernel_names()) == set(KERNELS) | set(TRANSLATED_KERNELS) | \
        set(KERNELS_WITH_A_HEADER)
