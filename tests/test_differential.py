"""The differential oracle: generated page-table trees and access sequences run under
direct paging (the CPU walks the guest's tables) and shadow paging (the CPU walks the
hypervisor's shadows, with the audit after every fault). Every access must end the same
way (success, or the same #PF error code and CR2), and the accessed/dirty bits the guest
finds in its entries afterwards must match. A failing case is printed by name."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvshadow.shadow.paging.x86 import (_PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_NX, _PAGE_PRESENT, _PAGE_RW,
                               _PAGE_USER)
from tests.oracle.harness import (WINDOW_SLOTS, Config, describe_access, describe_outcome,
                                  run_case)


def flag_set(*bits):
    """Any subset of the bits, drawn as one integer (shrinking towards none of them)."""
    return st.integers(0, (1 << len(bits)) - 1).map(
        lambda m: sum(bit for i, bit in enumerate(bits) if m >> i & 1))


# Half the upper-level entries are fully permissive, so the leaf's rights decide often.
UPPER_FLAGS = st.one_of(st.just(_PAGE_RW | _PAGE_USER),
                        flag_set(_PAGE_RW, _PAGE_USER, _PAGE_NX, _PAGE_ACCESSED))
LEAF_FLAGS = flag_set(_PAGE_RW, _PAGE_USER, _PAGE_NX, _PAGE_ACCESSED, _PAGE_DIRTY)
# The strategies a case draws from, built once (hypothesis's cost is per strategy object
# as much as per draw).
ONE_IN_EIGHT = st.integers(0, 7)
UP_TO = {n: st.integers(0, n - 1) for n in (1, 2, 3)}
ONE_OR_TWO, ONE_TO_THREE = st.integers(1, 2), st.integers(1, 3)
PAGES = st.lists(st.tuples(st.sampled_from(WINDOW_SLOTS), st.integers(0, 1), st.integers(0, 1),
                           st.integers(0, 2)), min_size=1, max_size=3)
STEPS = {n: st.lists(st.tuples(UP_TO[n], st.integers(0, 2), st.booleans()),
                     min_size=2, max_size=12) for n in (1, 2, 3)}


@st.composite
def configs(draw):
    n3, n2, n1 = (draw(ONE_OR_TWO) for _ in range(3))
    ndata = draw(ONE_TO_THREE)

    def table(indices, children, flags):
        out = {}
        for index in indices:
            if draw(ONE_IN_EIGHT) == 0:
                continue                              # not present
            out[index] = (draw(UP_TO[children]), _PAGE_PRESENT | draw(flags))
        return out

    cfg = Config(l4=table(WINDOW_SLOTS, n3, UPPER_FLAGS),
                 l3s=[table((0, 1), n2, UPPER_FLAGS) for _ in range(n3)],
                 l2s=[table((0, 1), n1, UPPER_FLAGS) for _ in range(n2)],
                 l1s=[table((0, 1, 2), ndata, LEAF_FLAGS) for _ in range(n1)],
                 ndata=ndata)
    # A few pages, many accesses over them: an earlier access builds the shadow a later
    # one goes through, which is where stale or over-generous shadows show.
    pages = draw(PAGES)
    steps = draw(STEPS[len(pages)])
    cfg.accesses = [pages[p] + (kind, user) for p, kind, user in steps]
    return cfg


def check_same(cfg):
    d_pin, d_out, d_final = run_case(cfg, 'direct')
    s_pin, s_out, s_final = run_case(cfg, 'shadow')
    assert d_pin == s_pin == 0, f'pin: direct {d_pin}, shadow {s_pin}\n{cfg.describe()}'
    for access, d, s in zip(cfg.accesses, d_out, s_out):
        assert d == s, (f'{describe_access(access)}: direct {describe_outcome(d)}, '
                        f'shadow {describe_outcome(s)}\n{cfg.describe()}')
    assert d_final == s_final, (
        'entries differ afterwards:\n' + '\n'.join(
            f'  entry {i}: direct {d:#x} shadow {s:#x}'
            for i, (d, s) in enumerate(zip(d_final, s_final)) if d != s) + '\n' + cfg.describe())


COMMON = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=200, **COMMON)
@given(configs())
def test_direct_and_shadow_paging_agree_on_every_access(cfg):
    check_same(cfg)


@pytest.mark.slow
@settings(max_examples=2000, **dict(COMMON, derandomize=False))
@given(configs())
def test_direct_and_shadow_paging_agree_on_many_more_cases(cfg):
    check_same(cfg)
