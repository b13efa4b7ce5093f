"""The package: one import namespace (pvshadow), the kernels, includes and configs shipped
as package data, and a non-editable install that runs a kernel."""
import os
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT


BUILD_WHEEL = 'import sys; from setuptools import build_meta; build_meta.build_wheel(sys.argv[1])'


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp('wheel')
    # The project's build backend (pyproject.toml), called as a frontend calls it: with
    # the setuptools already installed (0.6 s), else through pip's isolated build
    # environment (4 s: it installs setuptools first).
    for command in ([sys.executable, '-c', BUILD_WHEEL, str(out)],
                    [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w', str(out),
                     ROOT]):
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
        if not proc.returncode:
            break
    if proc.returncode:
        pytest.skip(f'cannot build a wheel here: {proc.stderr.strip()[-200:]}')
    return zipfile.ZipFile(next(out.glob('*.whl')))


def test_the_wheel_installs_one_top_level_package(wheel):
    tops = {name.split('/')[0] for name in wheel.namelist()}
    assert {t for t in tops if not t.endswith('.dist-info')} == {'pvshadow'}


def test_the_wheel_ships_the_kernels_includes_and_configs(wheel):
    names = set(wheel.namelist())
    for name in ('pvshadow/asm/hello.S', 'pvshadow/asm/include/pv.inc',
                 'pvshadow/asm/include/xenstore.inc', 'pvshadow/asm/rom.bin',
                 'pvshadow/configs/backend.cfg', 'pvshadow/shadow/paging/shadow.py',
                 'pvshadow/tools/cli.py', 'pvshadow/__main__.py'):
        assert name in names, name
    entry_points = next(n for n in names if n.endswith('entry_points.txt'))
    text = wheel.read(entry_points).decode()
    assert 'pvshadow = pvshadow.tools.cli:main' in text
    assert 'pvshadow = pvshadow.tools.pytest_plugin' in text


@pytest.mark.slow
def test_a_venv_install_runs_hello_and_has_no_top_level_shadow(tmp_path):
    venv = tmp_path / 'v'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / 'bin' / 'pip'), 'install', '-q', ROOT],
                         capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-2000:]
    run = subprocess.run([str(venv / 'bin' / 'pvshadow'), 'run', 'hello'], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and 'Test result: SUCCESS' in run.stdout
    mine = tmp_path / 'mine.S'
    mine.write_text('.include "pv.inc"\ntest_main:\n    ret\n')
    own = subprocess.run([str(venv / 'bin' / 'pvshadow'), 'run', str(mine)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert own.returncode == 0, own.stderr
    shadow = subprocess.run([str(venv / 'bin' / 'python'), '-c', 'import shadow'],
                            cwd=tmp_path, capture_output=True, text=True)
    assert shadow.returncode != 0 and "No module named 'shadow'" in shadow.stderr
    assert not os.path.exists(tmp_path / 'shadow')
