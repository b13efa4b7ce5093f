"""The tracer's console as a user meets it: argument errors as sentences, symbols where
addresses go, stop-condition numbers that stay put, Tab completion of arguments, and
`break event` after an access change."""
from pvshadow.shadow import api
from tests.test_trace import run_script
from pvshadow.tools.trace import TraceConsole, TraceSession


def _console():
    return TraceConsole(TraceSession(api.boot('hello')))


def test_argument_errors_are_sentences(tmp_path):
    out = run_script(tmp_path, ['walk', 'x zzz', 'frame', 'delete 7', 'step -1',
                                'walk 0x1000 sideways', 'access 0x10 purple', 'quit'],
                     kernel='hello')
    for sentence in ('walk needs a virtual address',
                     "'zzz' is neither an address nor a symbol of the kernel",
                     'frame needs a machine frame number',
                     'no stop condition 7 (breaks lists them)',
                     'step takes a positive number of instructions',
                     "walk checks a read, write or fetch, not 'sideways'",
                     'access types: n r w rw x rx wx rwx rx2rw n2rwx default'):
        assert sentence in out, (sentence, out)
    assert 'Error' not in out and 'Traceback' not in out


def test_break_at_takes_a_symbol_and_the_stop_names_it(tmp_path):
    out = run_script(tmp_path, ['break at test_main', 'run', 'quit'], kernel='hello')
    assert 'stop condition 1: at 0xffffffff80007000 <test_main>' in out
    assert 'stopped: breakpoint at 0xffffffff80007000' in out


def test_deleting_a_condition_keeps_the_others_numbers(tmp_path):
    out = run_script(tmp_path, ['break fault', 'break hypercall', 'break event', 'delete 2',
                                'breaks', 'break hypercall sched_op', 'breaks', 'quit'],
                     kernel='hello')
    lines = out.splitlines()
    assert lines[3:5] == ['1: fault any', '3: event any']       # the first listing
    assert 'stop condition 4: hypercall sched_op' in lines
    assert lines[-3:] == ['1: fault any', '3: event any', '4: hypercall sched_op']


def test_break_event_stops_after_an_access_change(tmp_path):
    out = run_script(tmp_path, ['default-access rx', 'break event', 'run', 'delete 1', 'run',
                                'quit'], kernel='hello')
    assert 'stopped: vm_event -w-' in out
    assert 'Test result: SUCCESS' in out and 'domain ended: shutdown: poweroff' in out


def test_tab_completes_arguments_not_command_names():
    console = _console()
    assert console.completions([], 'de') == ['default-access', 'delete']
    assert console.completions(['break'], '') == ['fault', 'hypercall', 'event', 'at']
    assert console.completions(['break', 'fault'], 's') == ['shadow', 'spurious']
    assert 'mmu_update' in console.completions(['break', 'hypercall'], 'mmu')
    assert 'test_main' in console.completions(['break', 'at'], 'test_')
    assert console.completions(['walk', 'test_main'], 'f') == ['fetch']
    assert console.completions(['default-access'], 'rx') == ['rx', 'rx2rw']
