"""Read-only regions (ROM, ROMD): reads at full speed, writes as mmio exits to a device
model, unemulatable writes as internal_error, on the `rom` kernel under shadow paging."""

from pvshadow.shadow import api
from pvshadow.shadow.abi.xen import EOPNOTSUPP
from pvshadow.shadow.exits import ExitReason
from tests.cli import pvshadow

CONTENT = b'ROM-TEST' + bytes(range(8, 64))
ROM_PFN, ROMD_PFN = 0xF00, 0xF01


def boot(extra=''):
    d = api.boot('rom', paging='shadow', audit=True,
                 cmdline=f'rom={ROM_PFN:x} rmd={ROMD_PFN:x} inc=1 {extra}')
    assert d.add_rom('rom', ROM_PFN, CONTENT) == 0
    assert d.add_rom('romd', ROMD_PFN, CONTENT, romd=True) == 0
    return d


def plus_one(domain, mmio):
    if mmio['romd']:
        domain.write_physical(mmio['address'], (mmio['data'] + 1).to_bytes(mmio['size'], 'little'))


def test_reads_run_and_writes_exit_to_the_device_model_with_address_size_and_data():
    d = boot()
    seen = []
    exit_ = api.run_with_device_model(d, plus_one, on_mmio=seen.append, timeout=30)
    assert exit_.clean and b'Test result: SUCCESS' in d.console, d.console
    assert [(m['address'], m['size'], m['data'], m['direction'], m['romd']) for m in seen] == [
        ((ROM_PFN << 12) + 8, 8, 0x1234, 'write', False),
        ((ROMD_PFN << 12) + 16, 8, 0x5678, 'write', True)]
    assert d.paging.regions.stats['mmio_exits'] == 2


def test_a_rom_write_changes_nothing():
    d = boot()
    api.run_with_device_model(d, plus_one, timeout=30)
    assert d.mem.read(d.p2m[ROM_PFN] << 12, len(CONTENT)) == CONTENT


def test_the_run_returns_an_mmio_exit_and_continues_after_the_instruction():
    d = boot()
    first = d.run(timeout=30)
    assert first.reason is ExitReason.MMIO and first.mmio['data'] == 0x1234
    assert d.cpu.rip == first.mmio['rip'] + 4          # mov [rbx + 8], rax is 4 bytes


def test_an_unemulatable_write_ends_with_internal_error_and_its_bytes():
    d = boot('brk=1')
    exit_ = api.run_with_device_model(d, plus_one, timeout=30)
    assert exit_.reason is ExitReason.INTERNAL_ERROR
    assert 'straddles the end of the region frame' in exit_.message
    assert exit_.instruction[:7] == bytes.fromhex('488983fc0f0000')   # mov [rbx+0xffc], rax
    assert b'came back' not in d.console


def test_the_retry_option_leaves_the_guest_retrying():
    d = boot('brk=1')
    d.paging.regions.retry_unemulatable = True
    exit_ = api.run_with_device_model(d, plus_one, timeout=0.25)   # ~17,000 retries by then
    assert exit_.reason is ExitReason.TIMEOUT
    assert d.paging.regions.stats['unemulatable'] > 10


def test_a_hypercall_cannot_write_into_a_rom():
    d = boot()
    v = d.vcpus[0]
    from pvshadow.shadow.vcpu import GuestFault
    d.run(timeout=30)                    # the kernel mapped the ROM at its scratch address
    import pytest
    scratch = d.layout.page_tables + (d.layout.nr_pt_frames + 4) * 4096
    with pytest.raises(GuestFault):
        v.copy_to_guest(scratch, b'x')


def test_regions_need_shadow_paging():
    d = api.boot('rom')
    assert d.add_rom('rom', ROM_PFN, CONTENT) == -EOPNOTSUPP


def test_pvshadow_run_prints_each_mmio_exit_when_asked(tmp_path):
    rom = tmp_path / 'rom.bin'
    rom.write_bytes(CONTENT)
    proc = pvshadow('run', 'rom', '--rom', f'{rom}@{ROM_PFN:#x}', '--romd', f'{rom}@{ROMD_PFN:#x}',
                    '--trace-mmio', '--cmdline', f'rom={ROM_PFN:x} rmd={ROMD_PFN:x}', timeout=60)
    mmio = [line for line in proc.stderr.splitlines() if line.startswith('mmio:')]
    assert len(mmio) == 2 and 'gpa 0xf00008' in mmio[0] and 'data 0x1234' in mmio[0]
    assert 'gpa 0xf01010' in mmio[1] and 'data 0x5678' in mmio[1]
    assert 'Test result: SUCCESS' in proc.stdout and proc.returncode == 0
