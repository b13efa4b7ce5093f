import os
import shutil
import sys

import numpy  # noqa: F401 - the ledger audit's, imported once here for every forked child
import pytest
from hypothesis import settings

pytest_plugins = ['pytester']         # the pytest plugin's own tests run pytest in-process

# The same hypothesis settings under CI as on a developer's machine (with CI set it would
# switch to its `ci` profile, whose fixed examples happen to include three 4 s fuzz
# sequences): new examples on every run, and a failure prints the blob that replays it.
# The differential oracle fixes its own examples (derandomize).
settings.register_profile('pvshadow', settings.get_profile('default'), print_blob=True)
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'pvshadow'))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def asm_kernel(tmp_path, name, body):
    """Write a one-off asm kernel (with the shared include) and return its path."""
    path = tmp_path / f'{name}.S'
    path.write_text('.include "pv.inc"\n' + body)
    return str(path)


def gnu_toolchain(what):
    """(cc, ld) for building a test kernel, or skip the test saying what could not be built."""
    cc, ld = shutil.which('cc') or shutil.which('gcc'), shutil.which('ld')
    if not cc or not ld:
        pytest.skip(f'no GNU toolchain (cc and ld) on this machine to build {what}')
    return cc, ld


@pytest.fixture(autouse=True)
def frame_ledger_after_every_run(monkeypatch, request):
    """Every domain run in the suite ends with the frame-ledger audit (shadow.ledger) over
    its whole host: a reference without a holder, a frame referenced across owners or a
    writable page table fails the test that ran it, whatever that test checks itself."""
    from pvshadow.shadow.domain import Domain
    run = Domain.run

    def audited_run(self, *args, **kwargs):
        exit_ = run(self, *args, **kwargs)
        problems = self.host.audit_frames()
        assert not problems, 'frame ledger after the run:\n' + '\n'.join(problems[:20])
        if 'hypervisor_error_expected' not in request.keywords:
            assert not self.stats['hypervisor_errors'], '\n'.join(self.xen_log[-3:])
        return exit_
    monkeypatch.setattr(Domain, 'run', audited_run)
