"""Every asm/ test kernel boots, runs, reports its own verdict, and powers off cleanly."""
import pytest

from guests.kernels import kernel_names
from shadow.api import run_kernel

KERNELS = kernel_names()


def test_the_kernel_set_is_the_one_the_issue_asks_for():
    assert {'hello', 'exceptions', 'pagetables', 'usermode', 'balloon', 'refused', 'hypercalls',
            'compute'} <= set(KERNELS)


@pytest.mark.parametrize('kernel', KERNELS)
def test_kernel_reports_success_and_powers_off(kernel):
    result = run_kernel(kernel, timeout=60)
    assert result.verdict == 'SUCCESS', result.console
    assert result.exit.clean, (result.exit.describe(), result.console, result.domain.xen_log)


def test_hello_prints_its_greeting():
    result = run_kernel('hello')
    assert 'Hello from a PV guest on pvshadow!' in result.console
