"""`pvshadow run` with several kernels or xl-style configs: one host, every domain's
console prefixed with its name, the exit status the worst of all domains."""
import os

from tests.conftest import ROOT, asm_kernel
from pvshadow.guests.kernels import load_kernel
from tests.test_cli import pvshadow
from tests.test_trace import needs_gdb, run_gdb

CONFIGS = [os.path.join(ROOT, 'configs', name) for name in ('backend.cfg', 'frontend.cfg')]
# a shorter pair (one exchange, not a thousand) for what is about the tracer's view of
# several domains
FOREIGN = [os.path.join(ROOT, 'configs', name)
           for name in ('foreign-back.cfg', 'foreign-client.cfg')]


def test_a_backend_and_a_frontend_find_each_other_through_the_xenstore_and_exit_zero():
    proc = pvshadow('run', *CONFIGS)
    assert proc.returncode == 0, proc.stderr
    assert 'backend: Test result: SUCCESS' in proc.stdout
    assert 'frontend: Test result: SUCCESS' in proc.stdout
    assert 'pingpong: every round came back' in proc.stdout


def test_every_console_line_names_its_domain():
    proc = pvshadow('run', 'hello', 'timers')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    assert all(line.startswith(('d1: ', 'd2: ')) for line in proc.stdout.splitlines())


def test_one_domain_crashing_makes_the_status_6_and_the_other_still_succeeds(tmp_path):
    crash = asm_kernel(tmp_path, 'crash', '''
test_main:
    xor edi, edi
    call hc_set_trap_table
    ud2
''')
    proc = pvshadow('run', 'timers', crash)
    assert proc.returncode == 6
    assert 'd1: Test result: SUCCESS' in proc.stdout
    assert 'pvshadow: d1: SUCCESS; shutdown: poweroff' in proc.stderr
    assert 'pvshadow: d2: no verdict; crash' in proc.stderr, proc.stderr


def test_a_failure_verdict_makes_the_status_5(tmp_path):
    failing = asm_kernel(tmp_path, 'failing', '''
test_main:
    lea rdi, [rip + why]
    call fail
    ret
why: .asciz "on purpose"
''')
    proc = pvshadow('run', 'hello', failing)
    assert proc.returncode == 5
    assert 'd2: Test result: FAILURE' in proc.stdout


def test_a_config_naming_an_absent_peer_is_refused_in_one_line():
    proc = pvshadow('run', CONFIGS[0])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["pvshadow: backend: peer 'frontend' is not "
                                                "one of the domains"]


def test_a_missing_config_is_refused_in_one_line(tmp_path):
    proc = pvshadow('run', CONFIGS[0], str(tmp_path / 'absent.cfg'))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert 'absent.cfg' in proc.stderr and 'Traceback' not in proc.stderr


def test_trace_follows_several_domains_and_names_each_events_domain(tmp_path):
    from tests.test_trace import trace
    script = tmp_path / 'script'
    script.write_text('domain\nbreak hypercall sched_op\nrun\ndomain 2\nregs\ndelete all\n'
                      'run\ndomain\nquit\n')
    proc = trace(*FOREIGN, '-x', str(script))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert '* d1 back: 1 vCPUs, shadow paging, running' in out
    assert '  d2 client: 1 vCPUs, direct paging, running' in out
    assert 'stopped: d1v0: hypercall sched_op(' in out or 'stopped: d2v0: hypercall sched_op(' in out
    assert '* d2 client: 1 vCPUs, direct paging' in out
    assert 'd1 back: 1 vCPUs, shadow paging, shutdown: poweroff' in out
    assert 'client: Test result: SUCCESS' in out


def test_the_trace_log_of_several_domains_names_the_domain_of_every_event(tmp_path):
    import json
    from tests.test_trace import trace
    log = tmp_path / 'log.jsonl'
    proc = trace(*FOREIGN, '--log', str(log))
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert {e['domid'] for e in events} == {1, 2}
    assert all('vcpu' in e for e in events)
    assert sorted(e['domid'] for e in events if e['type'] == 'exit') == [1, 2]


@needs_gdb
def test_gdb_sees_one_thread_per_vcpu_named_by_its_domain():
    out, err = run_gdb(CONFIGS, 'info threads', 'thread 2', 'info registers rip')
    assert 'Thread 1 (d1 backend vcpu0 runnable)' in out, out + err
    assert 'Thread 2 (d2 frontend vcpu0 runnable)' in out
    assert '[Switching to thread 2 (Thread 2)]' in out
    entry = load_kernel('pingpong').entry
    assert f'rip            {entry:#x}' in out             # before its first entry
