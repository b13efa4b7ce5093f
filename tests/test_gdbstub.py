"""The gdb stub's packets, answered without a socket."""
from pvshadow.shadow import api
from pvshadow.tools.gdbstub import REGISTERS, TARGET_XML, GdbStub
from pvshadow.tools.trace import TraceSession


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
    stub = _stopped_stub()
    g = stub.handle('g')
    rbx = (0x5151).to_bytes(8, 'little').hex()
    assert stub.handle('G' + g[:16] + rbx + g[32:]) == 'OK'
    assert stub.d.cpu.reg('rbx') == 0x5151


def _stopped_stub():
    """A stub whose guest has run to its first hypercall (its vCPU is on the CPU)."""
    stub = stub_for()
    stub.conn = None
    stub.session.add_condition('hypercall', None)
    stub.session.run()
    return stub


def test_before_its_first_entry_vcpu0_shows_the_entry_point_and_stack():
    stub = stub_for()
    d = stub.d
    names = [name for name, *_ in REGISTERS]
    rip, rsp, rsi = d.entry
    for name, want in (('rip', rip), ('rsp', rsp), ('rsi', rsi)):
        assert stub.handle(f'p{names.index(name):x}') == want.to_bytes(8, 'little').hex()


def test_p_reads_the_fs_base():
    stub = _stopped_stub()
    n = [name for name, *_ in REGISTERS].index('fs_base')
    stub.d.cpu.set_reg('fs_base', 0x1234000)
    assert stub.handle(f'p{n:x}') == (0x1234000).to_bytes(8, 'little').hex()


class _Conn:
    """Takes what the stub sends (console output) and acknowledges it."""
    def __init__(self):
        self.sent = []

    def sendall(self, data):
        self.sent.append(data)

    def recv(self, n):
        return b'+'


def _host_stub():
    from pvshadow.guests.config import DomainSpec
    host, domains = api.boot_host([DomainSpec('hello', name='back', memory_mb=4, vcpus=2),
                                   DomainSpec('hello', name='front', memory_mb=4, vcpus=1)])
    return GdbStub(TraceSession(domains[0], host=host, domains=domains), conn=_Conn()), domains


def test_every_vcpu_of_every_domain_is_a_thread_named_by_its_domain():
    stub, (back, front) = _host_stub()
    assert stub.handle('qfThreadInfo') == 'm1,2,3' and stub.handle('qsThreadInfo') == 'l'
    names = [bytes.fromhex(stub.handle(f'qThreadExtraInfo,{t}')).decode() for t in (1, 2, 3)]
    assert names[0].startswith(f'd{back.domid} back vcpu0')
    assert names[1].startswith(f'd{back.domid} back vcpu1')
    assert names[2].startswith(f'd{front.domid} front vcpu0')
    assert stub.handle('T3') == 'OK' and stub.handle('T4') == 'E22'


def test_hg_selects_the_thread_whose_registers_and_memory_gdb_reads():
    stub, (back, front) = _host_stub()
    stub.handle('c')                                  # both run to their end
    assert stub.handle('Hg3') == 'OK' and stub.d is front
    assert stub.handle('Hg9') == 'E22'
    rip = [name for name, *_ in REGISTERS].index('rip')
    assert stub.handle(f'p{rip:x}') != 'x' * 16
    assert stub.handle('Hg0') == 'OK' and stub.thread is None


def test_a_stop_reply_names_the_thread_that_stopped():
    stub, (back, front) = _host_stub()
    stub.session.add_condition('hypercall', 'console_io')
    reply = stub.handle('c')
    assert reply.startswith('T05thread:')
    tid = int(reply.split('thread:')[1].rstrip(';'), 16)
    assert bytes.fromhex(stub.handle(f'qThreadExtraInfo,{tid:x}')).decode().startswith(
        f'd{stub.session.domain.domid} ')
