"""Random sequences of sharing, altp2m and ballooning operations and real guest accesses
over two or three translated domains with several views, checked after every step
against an independent model of what each (domain, view, gfn) holds, and against the
sharing audit, the frame ledger and every view's shadow audit. The model knows nothing
of frames: a gfn holds a value, a view shows its source gfn's value (Xen's remapped-range
reset rule included), and a share makes every gfn that shared the client's contents
share the source's, as share_pages merges the client frame's whole reverse map. A bounded number of examples by default; `-m slow` runs many more."""
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvshadow.shadow import toolstack as ts
from pvshadow.shadow.abi.p2m import INVALID_GFN, MAX_ALTP2M
from pvshadow.shadow.abi.xen import XENMEM_access_r, XENMEM_access_rwx
from pvshadow.shadow.hypercall.memory import release_gfn
from tests.translated_host import FIRST_FREE_GFN, PokeGuest, checks, new_host

GFNS = [FIRST_FREE_GFN + i for i in range(5)]
MAX_VIEWS = 3
EXAMPLES = int(os.environ.get('PVSHADOW_ALTP2M_EXAMPLES', '12'))

gfn = st.sampled_from(GFNS)
dom = st.integers(0, 2)
slot = st.integers(0, MAX_VIEWS)            # 0: the host; n: the domain's n-th live view
value = st.integers(1, (1 << 63) - 1)
OPS = st.one_of(
    st.tuples(st.just('write'), dom, slot, gfn, value),
    st.tuples(st.just('read'), dom, slot, gfn),
    st.tuples(st.just('share'), dom, gfn, dom, gfn),
    st.tuples(st.just('add_physmap'), dom, gfn, dom, gfn),
    st.tuples(st.just('change_gfn'), dom, slot, gfn, gfn),
    st.tuples(st.just('revert'), dom, slot, gfn),
    st.tuples(st.just('release'), dom, gfn),
    st.tuples(st.just('create_view'), dom),
    st.tuples(st.just('destroy_view'), dom, slot),
    st.tuples(st.just('altp2m_off'), dom),
    st.tuples(st.just('restrict'), dom, slot, gfn),
)


class Model:
    """Which contents each domain's gfns show (a token; None: no frame), each token's
    value, and each view's remaps (gfn -> source gfn)."""

    def __init__(self, guests):
        self.values = {}
        self.host = [{} for _ in guests]
        for i in range(len(guests)):
            for g in GFNS:
                self.host[i][g] = self._new(0x1000 * (i + 1) + g)
        self.views = [{} for _ in guests]       # view index -> {'remaps': {}, 'range': [lo, hi]}

    def _new(self, value):
        token = len(self.values)
        self.values[token] = value
        return token

    def source(self, d, idx, g):
        return self.views[d][idx]['remaps'].get(g, g) if idx else g

    def value(self, d, idx, g):
        token = self.host[d].get(self.source(d, idx, g))
        return None if token is None else self.values[token]

    def write(self, d, g, value):
        """A write gives the writer its own contents; the others keep theirs."""
        self.host[d][g] = self._new(value)

    def share(self, sd, sg, cd, cg):
        """Every gfn showing the client's contents now shows the source's."""
        client, source = self.host[cd][cg], self.host[sd][sg]
        for gfns in self.host:
            for g, token in gfns.items():
                if token == client:
                    gfns[g] = source

    def released(self, d, g):
        self.host[d][g] = None
        for v in self.views[d].values():            # p2m_altp2m_propagate_change's reset
            lo, hi = v['range']
            if lo is not None and lo <= g <= hi:
                v['remaps'].clear()
                v['range'] = [None, None]


def _view_of(guest, model, d, slot_):
    """The view a slot names: 0, or the domain's slot-th live view (0 if it has fewer)."""
    live = sorted(model.views[d])
    return live[slot_ - 1] if 0 < slot_ <= len(live) else 0


def _switch(guest, idx):
    v = guest.d.vcpus[0]
    if v.altp2m_idx != idx:
        assert ts.xc_altp2m_switch_to_view(guest.d, idx) == 0


def apply(op, guests, model, host):
    kind = op[0]
    if kind in ('write', 'read'):
        d, idx = op[1], _view_of(guests[op[1]], model, op[1], op[2])
        g = guests[d]
        _switch(g, idx)
        want = model.value(d, idx, op[3])
        if kind == 'write':
            status = g.write(op[3], op[4])
            assert status == (0 if want is not None else 14), (op, status)
            if want is not None:
                model.write(d, model.source(d, idx, op[3]), op[4])
        else:
            assert g.read(op[3]) == ((want, 0) if want is not None else (None, 14)), op
    elif kind in ('share', 'add_physmap'):
        sd, sg, cd, cg = op[1:]
        if sd == cd:
            return
        src, client = guests[sd], guests[cd]
        rc, sh = ts.xc_memshr_nominate_gfn(src.d, sg)
        if rc:
            return
        if kind == 'add_physmap':
            ts.xc_memshr_control(client.d, True)
            if model.host[cd][cg] is None and \
                    ts.xc_memshr_add_to_physmap(src.d, sg, sh, client.d, cg) == 0:
                model.host[cd][cg] = model.host[sd][sg]       # a hole: nothing else shares it
            return
        rc, ch = ts.xc_memshr_nominate_gfn(client.d, cg)
        if rc == 0:
            assert ts.xc_memshr_share_gfns(src.d, sg, sh, client.d, cg, ch) == 0
            model.share(sd, sg, cd, cg)
    elif kind == 'change_gfn':
        d, idx = op[1], _view_of(guests[op[1]], model, op[1], op[2])
        if not idx:
            return
        old, new = op[3], op[4]
        rc = ts.xc_altp2m_change_gfn(guests[d].d, idx, old, new)
        if model.host[d][new] is None:
            assert rc != 0
        if rc == 0:
            view = model.views[d][idx]
            view['remaps'][old] = new
            lo, hi = view['range']
            view['range'] = [new if lo is None else min(lo, new), new if hi is None else max(hi, new)]
    elif kind == 'revert':
        d, idx = op[1], _view_of(guests[op[1]], model, op[1], op[2])
        if idx:
            assert ts.xc_altp2m_change_gfn(guests[d].d, idx, op[3], INVALID_GFN) == 0
            model.views[d][idx]['remaps'].pop(op[3], None)
    elif kind == 'release':
        d, g = op[1], op[2]
        rc = release_gfn(guests[d].d, g)
        assert (rc == 0) == (model.host[d][g] is not None), (op, rc)
        if rc == 0:
            model.released(d, g)
    elif kind == 'create_view':
        d = op[1]
        if len(model.views[d]) >= MAX_VIEWS:
            return
        if not guests[d].d.p2m_state.altp2m_active:
            assert ts.xc_altp2m_set_domain_state(guests[d].d, True) == 0
        rc, idx = ts.xc_altp2m_create_view(guests[d].d, XENMEM_access_rwx)
        assert rc == 0 and 0 < idx < MAX_ALTP2M
        model.views[d][idx] = {'remaps': {}, 'range': [None, None]}
    elif kind == 'destroy_view':
        d, idx = op[1], _view_of(guests[op[1]], model, op[1], op[2])
        if idx:
            _switch(guests[d], 0)
            assert ts.xc_altp2m_destroy_view(guests[d].d, idx) == 0
            del model.views[d][idx]
    elif kind == 'altp2m_off':
        d = op[1]
        assert ts.xc_altp2m_set_domain_state(guests[d].d, False) == 0
        model.views[d].clear()
    elif kind == 'restrict':
        # a view's access read-only: with no listener a write relaxes it, as Xen does
        d, idx = op[1], _view_of(guests[op[1]], model, op[1], op[2])
        if idx and model.host[d][model.source(d, idx, op[3])] is not None:
            ts.xc_altp2m_set_mem_access(guests[d].d, idx, op[3], XENMEM_access_r)


def compare(guests, model):
    for d, g in enumerate(guests):
        for idx in [0] + sorted(model.views[d]):
            for gfn_ in GFNS:
                assert g.contents(gfn_, idx) == model.value(d, idx, gfn_), (d, idx, hex(gfn_))


def run_sequence(ops):
    host = new_host(96)
    guests = [PokeGuest(host) for _ in range(3)]
    for g in guests:
        ts.xc_domain_setmaxmem(g.d, (g.d.max_pages + 64) * 4)
    model = Model(guests)
    for d, g in enumerate(guests):
        for gfn_ in GFNS:
            g.set_contents(gfn_, model.value(d, 0, gfn_))
    for op in ops:
        apply(op, guests, model, host)
        problems = checks(host)
        assert problems == [], (op, problems[:5])
        compare(guests, model)


SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])


@settings(max_examples=EXAMPLES, **SETTINGS)
@given(st.lists(OPS, min_size=1, max_size=20))
def test_random_sharing_and_altp2m_sequences_match_the_model(ops):
    run_sequence(ops)


@pytest.mark.slow
@settings(max_examples=1000, **SETTINGS)
@given(st.lists(OPS, min_size=1, max_size=40))
def test_many_random_sharing_and_altp2m_sequences_match_the_model(ops):
    run_sequence(ops)
