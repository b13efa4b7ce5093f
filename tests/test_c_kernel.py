"""A PV64 kernel written in C against Xen's public ABI, built by the C toolchain at test
time, boots unchanged. It does the start of day as small PV frameworks do (own stack,
shared_info, callbacks, trap table, own GDT), sends itself an event, blocks until a timer
fires and makes a user-mode round trip; its refused calls must get Xen's errno."""
import os
import subprocess

import pytest

from pvshadow.shadow.api import run_kernel
from tests.conftest import ROOT, gnu_toolchain

SRC = os.path.join(ROOT, 'tests', 'c')
CFLAGS = ['-O2', '-ffreestanding', '-fno-pic', '-fno-pie', '-mcmodel=kernel', '-mno-red-zone',
          '-fno-stack-protector', '-fno-asynchronous-unwind-tables', '-nostdlib']


@pytest.fixture(scope='module')
def c_kernel(tmp_path_factory):
    cc, ld = gnu_toolchain('the C PV kernel')
    out = tmp_path_factory.mktemp('c')
    head, main, elf = out / 'head.o', out / 'kernel.o', out / 'kernel.elf'
    subprocess.run([cc, '-c', '-o', str(head), os.path.join(SRC, 'head.S')], check=True)
    subprocess.run([cc, *CFLAGS, '-c', '-o', str(main), os.path.join(SRC, 'kernel.c')], check=True)
    subprocess.run([ld, '-T', os.path.join(SRC, 'kernel.lds'), '-o', str(elf), str(head), str(main)],
                   check=True, capture_output=True)
    return str(elf)


@pytest.mark.parametrize('paging', ['direct', 'shadow'])
def test_the_c_built_kernel_boots_and_reports_success(c_kernel, paging):
    result = run_kernel(c_kernel, paging=paging)
    assert 'Hello from a C-built PV kernel' in result.console
    assert 'failed:' not in result.console, result.console
    assert 'written through the console ring' in result.console
    assert result.verdict == 'SUCCESS' and result.exit.clean
