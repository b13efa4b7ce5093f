"""A PV64 ELF built by the GNU toolchain (as + ld) with Xen ELF notes boots unchanged."""
import os
import subprocess

import pytest

from pvshadow.guests.kernels import load_kernel
from pvshadow.shadow.api import run_kernel
from tests.conftest import ROOT, gnu_toolchain

SRC = os.path.join(ROOT, 'tests', 'gnu', 'pvhello.S')
LDS = os.path.join(ROOT, 'tests', 'gnu', 'pvhello.lds')


@pytest.fixture(scope='module')
def gnu_kernel(tmp_path_factory):
    cc, ld = gnu_toolchain('the PV ELF')
    out = tmp_path_factory.mktemp('gnu')
    obj, elf = out / 'pvhello.o', out / 'pvhello.elf'
    subprocess.run([cc, '-c', '-o', str(obj), SRC], check=True)
    subprocess.run([ld, '-T', LDS, '-o', str(elf), str(obj)], check=True)
    return str(elf)


def test_the_xen_notes_are_read(gnu_kernel):
    image = load_kernel(gnu_kernel)
    assert image.notes['GUEST_OS'] == 'pvshadow-gnu'
    assert image.notes['XEN_VERSION'] == 'xen-3.0'
    assert image.virt_base == 0xFFFFFFFF80000000
    assert image.hypercall_page == image.notes['HYPERCALL_PAGE']
    assert image.entry == image.notes['ENTRY']


def test_the_gnu_built_kernel_runs_and_reports_success(gnu_kernel):
    result = run_kernel(gnu_kernel)
    assert 'Hello from a GNU-built PV kernel' in result.console
    assert result.verdict == 'SUCCESS' and result.exit.clean
