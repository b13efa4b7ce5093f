"""The system gdb against `pvshadow trace --gdb`, as a user drives it: what attach
shows, a guest fault stop that continues, an interrupt of a looping guest, eflags by
name, and a second gdb after the first detached."""
import shutil
import signal
import subprocess
import time

from tests.cli import ForkedCommand
from tests.test_trace import ENTRY, free_port, needs_gdb, run_gdb

LOOP = '''.include "pv.inc"
test_main:
    lea rdi, [rip + hello]
    call puts
spin:
    jmp spin
hello: .asciz "looping now\\n"
'''


def _server(kernel, port):
    server = ForkedCommand('trace', kernel, '--gdb', port, '--timeout', '0')
    assert 'waiting for gdb' in server.stdout.readline()
    return server


def _gdb_args(port, *commands):
    args = ['gdb', '-nx', '-batch', '-ex', 'set pagination off',
            '-ex', f'target remote 127.0.0.1:{port}']
    for command in commands:
        args += ['-ex', command]
    return args


@needs_gdb
def test_attach_shows_the_entry_point_a_stack_and_eflags_by_name():
    out, err = run_gdb('hello', 'info registers rip rsp eflags')
    assert f'rip            {ENTRY:#x}' in out, out + err
    rsp = next(line for line in out.splitlines() if line.startswith('rsp'))
    assert int(rsp.split()[1], 16) != 0
    assert '[ IF ]' in out


@needs_gdb
def test_an_interrupt_stops_a_looping_guest(tmp_path):
    kernel = tmp_path / 'loop.S'
    kernel.write_text(LOOP)
    port = free_port()
    server = _server(str(kernel), port)
    try:
        # gdb's output line by line (stdbuf), to see when it has attached and continued
        line_buffered = ['stdbuf', '-oL'] if shutil.which('stdbuf') else []
        gdb = subprocess.Popen(line_buffered + _gdb_args(port, 'continue', 'info registers rip',
                                                         'kill'),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = ''
        while line_buffered and ' in ?? ()' not in seen:      # attached, at the entry
            line = gdb.stdout.readline()
            assert line, gdb.stderr.read()
            seen += line
        time.sleep(0.3 if line_buffered else 2)     # continued, and spinning by now
        gdb.send_signal(signal.SIGINT)
        out, err = gdb.communicate(timeout=30)
        out = seen + out
    finally:
        server.wait(timeout=30)
    assert 'received signal SIGINT' in out, out + err
    from pvshadow.guests.kernels import load_kernel
    spin = load_kernel(str(kernel)).symbols['spin']
    assert f'rip            {spin:#x}' in out


@needs_gdb
def test_after_a_guest_fault_stop_continue_goes_on():
    out, err = run_gdb('exceptions', 'continue', 'continue', 'continue')
    assert out.count('received signal SIGSEGV') >= 1, out + err
    stops = out.count('received signal') + out.count('exited normally')
    assert stops >= 2, out + err                   # it went on past the first stop


@needs_gdb
def test_a_second_gdb_attaches_after_the_first_detaches():
    port = free_port()
    server = _server('hello', port)
    try:
        first = subprocess.run(_gdb_args(port, 'info registers rip', 'detach'),
                               capture_output=True, text=True, timeout=60)
        second = subprocess.run(_gdb_args(port, 'info registers rip', 'kill'),
                                capture_output=True, text=True, timeout=60)
    finally:
        server.wait(timeout=30)
    assert f'rip            {ENTRY:#x}' in first.stdout
    assert f'rip            {ENTRY:#x}' in second.stdout, second.stdout + second.stderr


def test_build_writes_an_elf_that_runs_and_gives_gdb_the_symbols(tmp_path):
    from tests.test_cli import pvshadow
    elf = tmp_path / 'hello.elf'
    proc = pvshadow('build', 'hello', '-o', str(elf))
    assert proc.returncode == 0, proc.stderr
    run = pvshadow('run', str(elf))
    assert run.returncode == 0 and 'Test result: SUCCESS' in run.stdout
    if shutil.which('gdb') is None:
        return                            # the ELF ran; gdb's half needs gdb
    port = free_port()
    server = _server(str(elf), port)
    try:
        gdb = subprocess.run(['gdb', '-nx', '-batch', '-ex', f'file {elf}', '-ex',
                              f'target remote 127.0.0.1:{port}', '-ex', 'break test_main',
                              '-ex', 'continue', '-ex', 'kill'],
                             capture_output=True, text=True, timeout=60)
    finally:
        server.wait(timeout=30)
    assert 'Breakpoint 1, 0x' in gdb.stdout and 'in test_main ()' in gdb.stdout, \
        gdb.stdout + gdb.stderr


def test_build_refuses_what_is_not_an_asm_source(tmp_path):
    from tests.test_cli import pvshadow
    elf = tmp_path / 'hello.elf'
    pvshadow('build', 'hello', '-o', str(elf))
    proc = pvshadow('build', str(elf))
    assert proc.returncode == 2 and 'build takes an asm source' in proc.stderr
