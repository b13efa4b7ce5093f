"""The gdb stub's packets, answered without a socket."""
from shadow import api
from tools.gdbstub import REGISTERS, TARGET_XML, GdbStub
from tools.trace import TraceSession


def stub_for(kernel='hello'):
    return GdbStub(TraceSession(api.boot(kernel)), conn=None)


def test_the_target_description_names_amd64_with_the_segment_bases():
    stub = stub_for()
    assert 'qXfer:features:read+' in stub.handle('qSupported:multiprocess+')
    first = stub.handle(f'qXfer:features:read:target.xml:0,{40:x}')     # hex, as gdb sends
    assert first[0] == 'm' and first[1:] == TARGET_XML[:40]
    rest = stub.handle(f'qXfer:features:read:target.xml:{40:x},{len(TARGET_XML):x}')
    assert rest[0] == 'l' and first[1:] + rest[1:] == TARGET_XML
    assert '<architecture>i386:x86-64</architecture>' in TARGET_XML
    assert 'org.gnu.gdb.i386.segments' in TARGET_XML and 'name="fs_base"' in TARGET_XML


def test_g_sends_every_register_of_the_description_unavailable_ones_as_xx():
    g = stub_for().handle('g')
    assert len(g) == sum(bits // 4 for _, _, bits, _, _ in REGISTERS)
    st0 = [name for name, *_ in REGISTERS].index('st0')
    offset = sum(bits // 4 for _, _, bits, _, _ in REGISTERS[:st0])
    assert g[offset:offset + 20] == 'x' * 20


def test_G_writes_the_general_registers():
    stub = stub_for()
    g = stub.handle('g')
    rbx = (0x5151).to_bytes(8, 'little').hex()
    assert stub.handle('G' + g[:16] + rbx + g[32:]) == 'OK'
    assert stub.d.cpu.reg('rbx') == 0x5151


def test_p_reads_the_fs_base():
    stub = stub_for()
    n = [name for name, *_ in REGISTERS].index('fs_base')
    stub.d.cpu.set_reg('fs_base', 0x1234000)
    assert stub.handle(f'p{n:x}') == (0x1234000).to_bytes(8, 'little').hex()
