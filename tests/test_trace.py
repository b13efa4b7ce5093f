"""`pvshadow trace`: script mode, the same at an interactive prompt, the JSON log, and a
real gdb attached to the stub."""
import json
import os
import shutil
import socket
import subprocess

import pytest

from pvshadow.guests.kernels import load_kernel
from pvshadow.shadow import api
from tests.cli import ForkedCommand, pvshadow
from tests.conftest import ROOT

HELLO = load_kernel('hello', extra_symbols=('pv_entry', 'start_info_ptr'))
ENTRY = HELLO.entry
HYPERCALL_PAGE = HELLO.hypercall_page      # executed, never written: mapped RW, not dirty
# A page-table kernel: stop at its first guest fault, look at the walks, then finish.
COMMANDS = ['break fault guest', 'run', 'faults 3', 'walk 0x1000',
            f'shadow {HYPERCALL_PAGE:#x}', 'step', 'regs', 'stats', 'quit']


def trace(*args, stdin=None, timeout=120):
    return pvshadow('trace', *args, input=stdin, timeout=timeout)


def run_script(tmp_path, commands, kernel='pagetables'):
    script = tmp_path / 'script'
    script.write_text('\n'.join(commands) + '\n')
    proc = trace(kernel, '-x', str(script))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_script_mode_shows_the_guest_walk_the_shadow_walk_and_the_fault_history(tmp_path):
    out = run_script(tmp_path, COMMANDS)
    assert 'stopped: guest    #PF' in out and "bounced to the guest's #PF handler" in out
    assert 'guest walk of 0x1000' in out and 'stopped at L4: not present' in out
    assert f'shadow walk of {HYPERCALL_PAGE:#x}' in out
    assert 'write removed: guest entry not dirty yet (D-bit emulation)' in out
    assert 'shadow entry filled, instruction retried' in out       # the history
    assert 'faults: guest 1' in out and 'shadow_fills' in out


def test_the_shadow_walk_names_mem_access_as_the_reason(tmp_path):
    d = api.boot('hello', paging='shadow')
    from pvshadow.shadow.paging.x86 import walk
    mfn = walk(d.mem.read_u64, d.vcpus[0].guest_table, ENTRY).mfn
    out = run_script(tmp_path, [f'access {mfn:#x} rx', 'break fault', 'run', f'shadow {ENTRY:#x}',
                                f'frame {mfn:#x}', 'quit'], kernel='hello')
    assert 'write removed: mem_access' in out, out
    assert 'access rx' in out


def test_a_fault_stop_prints_the_summary_and_the_instruction(tmp_path):
    out = run_script(tmp_path, ['break fault shadow', 'run', 'disas', 'quit'], kernel='hello')
    assert 'stopped: shadow   #PF' in out and f'rip={ENTRY:#x} [jmp ' in out
    assert '=> 0x' in out


def test_breakpoints_at_an_address_and_on_hypercalls(tmp_path):
    out = run_script(tmp_path, [f'break at {ENTRY:#x}', 'run', 'break hypercall console_io',
                                'delete 1', 'run', 'quit'], kernel='hello')
    assert f'stopped: breakpoint at {ENTRY:#x}' in out
    assert 'stopped: hypercall console_io(' in out


def test_the_prompt_gives_the_same_output_as_the_script(tmp_path):
    pexpect = pytest.importorskip('pexpect')
    from tests.cli import PtyCommand
    script_out = run_script(tmp_path, COMMANDS)
    child = PtyCommand('trace', 'pagetables', timeout=60,
                       env={'TERM': 'dumb', 'PROMPT_TOOLKIT_NO_CPR': '1'})
    child.expect_exact('(pvshadow) ')
    typed = []
    for command in COMMANDS:
        child.sendline(command)
        if command == 'quit':
            child.expect(pexpect.EOF)
            typed.append(child.before)
        else:
            child.expect_exact('(pvshadow) ')
            typed.append(child.before)
    assert child.close() == 0
    seen = '\n'.join(part.replace('\r\n', '\n') for part in typed)
    for line in script_out.splitlines():
        if line.strip():
            assert line in seen, f'missing at the prompt: {line!r}'


def test_the_log_has_one_line_per_event_and_every_fault_once(tmp_path):
    log = tmp_path / 'trace.jsonl'
    proc = trace('pagetables', '--log', str(log))
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]
    validator = log_validator()
    for event in events:
        validator.validate(event)
    assert [e['seq'] for e in events] == list(range(len(events)))
    assert events[-1]['type'] == 'exit' and events[-1]['reason'] == 'shutdown'
    # every fault once: the same run in-process, counted by the hypervisor
    d = api.boot('pagetables', paging='shadow')
    d.run()
    faults = [e for e in events if e['type'] == 'fault']
    assert sum(e['kind'] == 'shadow' for e in faults) == d.paging.stats['shadow_fills']
    assert sum(e['kind'] == 'guest' for e in faults) == d.paging.stats['guest_faults']
    assert len({(e['va'], e['rip'], e['kind'], e['error_code']) for e in faults}) <= len(faults)
    assert any(e['type'] == 'hypercall' and e['name'] == 'mmu_update' for e in events)


def log_validator():
    """The log's JSON Schema (2020-12), checked as a schema itself first."""
    from jsonschema import Draft202012Validator
    schema = json.loads(open(os.path.join(ROOT, 'docs', 'trace-log.schema.json')).read())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_the_schema_rejects_what_is_not_a_log_line():
    validator = log_validator()
    assert not validator.is_valid({'nonsense': 1})
    line = {'type': 'breakpoint', 'seq': 0, 'domid': 1, 'vcpu': 0, 'instructions': 5,
            'rip': '0xffffffff80001000'}
    assert validator.is_valid(line)
    assert not validator.is_valid(dict(line, rip=18446744071562072064))    # not a string
    assert not validator.is_valid({k: v for k, v in line.items() if k != 'rip'})


def test_log_to_stdout_keeps_everything_else_off_it(tmp_path):
    script = tmp_path / 'script'
    script.write_text('break hypercall console_io\nrun\nregs\ndelete all\nrun\nquit\n')
    proc = trace('hello', '--log', '-', '-x', str(script))
    assert proc.returncode == 0
    validator = log_validator()
    lines = proc.stdout.splitlines()
    assert lines and all(validator.is_valid(json.loads(line)) for line in lines)
    assert 'Hello from a PV guest' in proc.stderr and 'stopped: hypercall' in proc.stderr


def test_log_numbers_are_strings_and_rc_is_the_signed_errno(tmp_path):
    log = tmp_path / 'trace.jsonl'
    assert trace('refused', '--log', str(log)).returncode == 0
    events = [json.loads(line) for line in log.read_text().splitlines()]
    calls = [e for e in events if e['type'] == 'hypercall']
    assert all(isinstance(a, str) and a.startswith('0x') for e in calls for a in e['args'])
    assert any(isinstance(e['rc'], int) and e['rc'] < 0 for e in calls)   # refused: -errno
    assert all(e['domid'] == 1 and e['vcpu'] == 0 for e in events)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


needs_gdb = pytest.mark.skipif(shutil.which('gdb') is None, reason='no gdb on this machine')


def run_gdb(kernel, *commands):
    """Serve kernel (or a list of kernels or configs) with `pvshadow trace --gdb`, run the
    system gdb in batch mode on it with these commands (after `target remote`), and
    return what gdb printed."""
    port = free_port()
    kernels = kernel if isinstance(kernel, list) else [kernel]
    server = ForkedCommand('trace', *kernels, '--gdb', port)
    try:
        assert 'waiting for gdb' in server.stdout.readline()
        args = ['gdb', '-nx', '-batch', '-ex', f'target remote 127.0.0.1:{port}']
        for command in commands:
            args += ['-ex', command]
        gdb = subprocess.run(args + ['-ex', 'kill'], capture_output=True, text=True,
                             timeout=60)
        return gdb.stdout, gdb.stderr
    finally:
        server.wait(timeout=30)


@needs_gdb
def test_gdb_attaches_breaks_at_the_entry_steps_and_reads_memory():
    out, err = run_gdb('hello', f'break *{ENTRY:#x}', 'continue', 'info registers rip',
                       'stepi', 'info registers rip', 'x/2bx $rip')
    assert f'Breakpoint 1, {ENTRY:#018x}' in out, out + err
    assert f'rip            {ENTRY:#x}' in out
    assert f'rip            {HELLO.symbols["pv_entry"]:#x}' in out   # jmp pv_entry
    assert '0x48\t0x89' in out                                 # mov [rip+x], rsi


@needs_gdb
def test_a_gdb_hardware_watchpoint_stops_after_the_store():
    target = HELLO.symbols['start_info_ptr']
    out, err = run_gdb('hello', f'watch *(long *){target:#x}', 'continue', 'info registers rip')
    assert 'Hardware watchpoint 1' in out, out + err
    assert 'Old value = 0' in out and 'New value = ' in out, out
    # stopped after `mov [rip + start_info_ptr], rsi` (7 bytes) at pv_entry
    assert f'rip            {HELLO.symbols["pv_entry"] + 7:#x}' in out, out


@needs_gdb
def test_gdb_learns_the_architecture_and_sees_the_segment_bases():
    # no `set architecture` anywhere: the target description says it
    cpustate = load_kernel('cpustate', extra_symbols=('fs_var', 'nm_resume'))
    out, err = run_gdb('cpustate', f'break *{cpustate.symbols["nm_resume"]:#x}', 'continue',
                       'show architecture', 'info registers fs_base rip')
    assert 'i386:x86-64' in out, out + err
    assert f'fs_base        {cpustate.symbols["fs_var"]:#x}' in out, out   # set_segment_base


def test_the_trace_prompt_watches_a_variable(tmp_path):
    out = run_script(tmp_path, [f'watch write {HELLO.symbols["start_info_ptr"]:#x}', 'run',
                                'breaks', 'delete 1', 'run', 'quit'], kernel='hello')
    assert f'watchpoint 0: write of 8 bytes at {HELLO.symbols["start_info_ptr"]:#x}' in out, out
    assert f'1: watchpoint write {HELLO.symbols["start_info_ptr"]:#x} 8' in out
    assert 'Test result: SUCCESS' in out


def test_the_log_names_each_debug_register_hit(tmp_path):
    log = tmp_path / 'trace.jsonl'
    proc = trace('debugregs', '--log', str(log))
    assert proc.returncode == 0, proc.stderr
    hits = [json.loads(line) for line in log.read_text().splitlines()]
    hits = [e for e in hits if e['type'] == 'exception' and e['vector'] == 1]
    actions = [e['action'] for e in hits]
    assert sum('DR0 (instruction' in a for a in actions) == 4
    assert sum('DR1 (write' in a for a in actions) == 11
    assert sum('DR2 (read/write' in a for a in actions) == 1
    assert sum('DR3 (write' in a for a in actions) == 2
    assert sum(a.startswith('single step (DR6.BS)') for a in actions) == 3
