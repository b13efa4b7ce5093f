"""Issue 17's race as kernels (asm/dma.S, configs/dma/): a backend privileged over its
client, a client that grants a page and balloons another out, and a third domain that
takes memory afterwards. With map semantics every domain reports SUCCESS and the third
domain's page is untouched; with the backend's lookup option the third domain finds the
backend's DMA in its memory and reports it. Paging modes are mixed every way; the frame
ledger holds at the end of every run."""
import os

import pytest

from pvshadow.guests.config import load_config
from pvshadow.shadow.api import boot_host, run_host_booted

CONFIGS = os.path.join(os.path.dirname(__file__), '..', 'configs', 'dma')
MODES = [('direct', 'direct'), ('shadow', 'shadow'), ('shadow', 'direct'), ('direct', 'shadow')]


def _run(backend: str, backend_paging: str, others_paging: str):
    specs = [load_config(os.path.join(CONFIGS, f'{name}.cfg'))
             for name in (backend, 'client', 'other')]
    specs[0].paging = backend_paging
    specs[1].paging = specs[2].paging = others_paging
    host, domains = boot_host(specs)
    for d in domains:
        d.audit = True
    results = run_host_booted(host, domains)
    assert host.audit_frames() == []
    return host, [(r.verdict, r.exit.clean) for r in results], \
        [r.domain.console.decode() for r in results]


@pytest.mark.parametrize('modes', MODES, ids='-'.join)
def test_with_map_semantics_the_third_domain_is_untouched(modes):
    host, verdicts, (back, client, other) = _run('backend', *modes)
    assert verdicts == [('SUCCESS', True)] * 3, back + client + other
    assert "read the client's granted page and answered in it" in back
    assert 'went through its IOMMU mapping' in back
    assert "found the backend's answer in its granted page" in client
    assert "new page is untouched" in other
    engine, = host.devices.values()
    assert [t['status'] for t in engine.log] == ['done']


@pytest.mark.parametrize('modes', MODES[:2], ids='-'.join)
def test_with_lookup_semantics_the_backends_dma_corrupts_the_third_domain(modes):
    _, verdicts, (back, client, other) = _run('backend-lookup', *modes)
    assert verdicts == [('SUCCESS', True), ('SUCCESS', True), ('FAILURE', True)]
    assert 'went to the raw machine address it looked up' in back
    assert "my new page holds another domain's DMA" in other
