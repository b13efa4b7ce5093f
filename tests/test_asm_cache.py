"""The on-disk cache of assembled kernels: a kernel assembled once is read back, without
keystone, by the next process; a damaged or foreign entry is assembled again."""
import os

import pytest

from pvshadow.guests import asm
from pvshadow.guests.kernels import load_kernel
from tests.conftest import asm_kernel

BODY = 'test_main:\n    mov eax, 0x1234\n    ret\n'


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    monkeypatch.delenv('PVSHADOW_NO_CACHE', raising=False)
    monkeypatch.setattr(asm, '_cache', {})          # as a new process starts
    return tmp_path / 'cache' / 'pvshadow' / 'asm'


def _entries(cache_dir):
    return sorted(os.listdir(cache_dir)) if cache_dir.exists() else []


def test_a_kernel_assembled_once_is_read_back_without_keystone(tmp_path, cache_home,
                                                                monkeypatch):
    path = asm_kernel(tmp_path, 'k', BODY)
    first = load_kernel(path)
    assert len(_entries(cache_home)) == 1
    monkeypatch.setattr(asm, '_cache', {})
    monkeypatch.setattr(asm, 'assemble', lambda *a, **k: pytest.fail('assembled again'))
    again = load_kernel(path)
    assert again.segments == first.segments and again.symbols == first.symbols


@pytest.mark.parametrize('damage', [b'', b'\x00garbage', b'{"body": "00"}'])
def test_a_damaged_entry_is_assembled_again(tmp_path, cache_home, monkeypatch, damage):
    path = asm_kernel(tmp_path, 'k', BODY)
    first = load_kernel(path)
    [entry] = _entries(cache_home)
    (cache_home / entry).write_bytes(damage)
    monkeypatch.setattr(asm, '_cache', {})
    again = load_kernel(path)
    assert again.segments == first.segments and again.symbols == first.symbols
    assert (cache_home / entry).read_bytes() != damage          # and written afresh
