"""Ctrl-C at a terminal stops a running guest at once: `run` reports where it was and
exits 130, `trace` comes back to its prompt, `access` prints its summary; never a
KeyboardInterrupt traceback."""
import time

import pexpect

from tests.cli import PtyCommand
from tests.test_gdb_workflow import LOOP


def _spawn(tmp_path, *args):
    kernel = tmp_path / 'loop.S'
    kernel.write_text(LOOP)
    # a terminal that never answers prompt_toolkit's cursor-position request: without
    # NO_CPR the prompt waits 2 s for the answer before drawing
    return PtyCommand(*args[:1], kernel, *args[1:], env={'PROMPT_TOOLKIT_NO_CPR': '1'},
                      timeout=20, dimensions=(40, 200))


# The guest prints, then reaches its spin loop within a few instructions: a tenth of a
# second is margin enough for the interrupt to find it there.
SPINNING = 0.1


def test_ctrl_c_ends_run_within_a_second_with_130_and_where_the_guest_was(tmp_path):
    child = _spawn(tmp_path, 'run', '--timeout', '0')
    child.expect('looping now')
    time.sleep(SPINNING)
    sent = time.monotonic()
    child.sendintr()
    child.expect(pexpect.EOF)
    took = time.monotonic() - sent
    child.close()
    assert child.exitstatus == 130 and took < 1, (child.exitstatus, took)
    assert 'interrupted: d1v0 at' in child.before and '<spin>' in child.before
    assert 'rip=' in child.before and 'Traceback' not in child.before


def test_ctrl_c_in_trace_returns_to_the_prompt(tmp_path):
    child = _spawn(tmp_path, 'trace', '--timeout', '0')
    child.expect(r'\(pvshadow\)')
    child.sendline('run')
    child.expect('looping now')
    time.sleep(SPINNING)
    child.sendintr()
    child.expect(r'interrupted: d1v0 at \S+ <spin>')
    child.expect(r'\(pvshadow\)')
    child.sendline('quit')
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and 'Traceback' not in child.before


def test_ctrl_c_in_access_prints_the_summary(tmp_path):
    child = _spawn(tmp_path, 'access', '--watch', 'write', '--relax', '--timeout', '0')
    child.expect('looping now')
    time.sleep(SPINNING)
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert 'events; interrupted' in child.before and 'Traceback' not in child.before


def test_ctrl_c_ends_a_test_run_with_130_and_what_had_finished(tmp_path):
    kernel = tmp_path / 'loop.S'
    kernel.write_text(LOOP)
    child = PtyCommand('test', kernel, 'hello', '--paging', 'direct', '-j', '2', timeout=30)
    child.expect(r'hello-direct\s+SUCCESS')       # the live progress line: hello is done
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert 'pvshadow test: interrupted with' in child.before
    assert 'hello-direct   SUCCESS' in child.before and 'Traceback' not in child.before
