"""The host's xenstore: one tree for every domain, relative paths under each domain's
home, watches that fire on writes at or below them, and a ring whose indices are never
trusted."""
import struct

import pytest

from pvshadow.guests.builder import build_domain
from pvshadow.guests.kernels import load_kernel
from pvshadow.shadow.abi import xen
from pvshadow.shadow.host import Host
from pvshadow.shadow.xenstore import (XS_DIRECTORY, XS_ERROR, XS_GET_DOMAIN_PATH, XS_MKDIR, XS_READ,
                             XS_RM, XS_UNWATCH, XS_WATCH, XS_WRITE, XenStore)


class _Dom:
    """What XenStore.request needs of a domain, without booting one."""
    def __init__(self, domid):
        self.domid = domid
        self.store_events = __import__('collections').deque()
        self.store_ring_mfn = None
        self.store_busy = False


@pytest.fixture
def store():
    return XenStore()


def test_a_relative_path_is_under_the_requesting_domains_home(store):
    d = _Dom(3)
    assert store.request(d, XS_WRITE, b'data/port\x005') == (XS_WRITE, b'OK\0')
    assert store.nodes['/local/domain/3/data/port'] == '5'
    assert store.request(d, XS_READ, b'data/port\0') == (XS_READ, b'5')


def test_an_absolute_path_reaches_another_domains_home(store):
    store.write('/local/domain/1/data/port', '7')
    assert store.request(_Dom(2), XS_READ, b'/local/domain/1/data/port\0') == (XS_READ, b'7')


def test_reading_a_missing_node_is_enoent(store):
    assert store.request(_Dom(1), XS_READ, b'nothing\0') == (XS_ERROR, b'ENOENT\0')


def test_directory_lists_children_once_each_in_order(store):
    d = _Dom(1)
    for path in (b'a/x', b'a/y/z', b'a/y/w'):
        store.request(d, XS_WRITE, path + b'\0v')
    assert store.request(d, XS_DIRECTORY, b'a\0') == (XS_DIRECTORY, b'x\0y\0')


def test_mkdir_makes_an_empty_node_and_keeps_an_existing_one(store):
    d = _Dom(1)
    store.request(d, XS_MKDIR, b'dir\0')
    assert store.nodes['/local/domain/1/dir'] == ''
    store.request(d, XS_WRITE, b'dir\0kept')
    store.request(d, XS_MKDIR, b'dir\0')
    assert store.nodes['/local/domain/1/dir'] == 'kept'


def test_rm_removes_a_subtree_and_a_missing_one_is_enoent(store):
    d = _Dom(1)
    store.request(d, XS_WRITE, b'a/b\0v')
    assert store.request(d, XS_RM, b'a\0') == (XS_RM, b'OK\0')
    assert not store.exists('/local/domain/1/a')
    assert store.request(d, XS_RM, b'a\0') == (XS_ERROR, b'ENOENT\0')


def _events(d):
    out = []
    for message in d.store_events:
        kind, _, _, length = struct.unpack_from('<4I', message)
        out.append((kind, message[16:16 + length]))
    return out


def test_a_watch_fires_once_when_set_and_for_each_write_below_it(store):
    watcher, writer = _Dom(1), _Dom(2)
    store.request(watcher, XS_WATCH, b'/local/domain/2/data\0tok\0')
    store.request(writer, XS_WRITE, b'data/port\x009')
    store.request(writer, XS_WRITE, b'elsewhere\x009')
    assert _events(watcher) == [(15, b'/local/domain/2/data\0tok\0'),
                                (15, b'/local/domain/2/data/port\0tok\0')]


def test_unwatch_stops_the_events(store):
    d = _Dom(1)
    store.request(d, XS_WATCH, b'x\0t\0')
    assert store.request(d, XS_UNWATCH, b'x\0t\0') == (XS_UNWATCH, b'OK\0')
    d.store_events.clear()
    store.request(d, XS_WRITE, b'x\0v')
    assert _events(d) == []


def test_get_domain_path_names_the_home_of_the_asked_domain(store):
    assert store.request(_Dom(1), XS_GET_DOMAIN_PATH, b'4\0') == \
        (XS_GET_DOMAIN_PATH, b'/local/domain/4\0')


def test_an_unknown_request_is_a_well_formed_enosys(store):
    assert store.request(_Dom(1), 99, b'') == (XS_ERROR, b'ENOSYS\0')


def test_forgetting_a_domain_drops_its_home_and_its_watches(store):
    d = _Dom(5)
    store.introduce(d, 'five')
    store.request(d, XS_WATCH, b'/\0t\0')
    store.forget(d)
    assert not store.exists('/local/domain/5') and store.watches == []


def test_a_built_domain_finds_its_domid_and_name_in_its_home():
    host = Host(64)
    d = build_domain(host, load_kernel('hello'), memory_mb=8, name='greeter')
    assert host.store.nodes[f'/local/domain/{d.domid}/name'] == 'greeter'
    assert host.store.nodes[f'/local/domain/{d.domid}/domid'] == str(d.domid)


def test_a_ring_whose_response_producer_runs_ahead_is_left_alone():
    from pvshadow.shadow.xenstore import xenstore_backend
    host = Host(64)
    d = build_domain(host, load_kernel('hello'), memory_mb=8)
    base = d.store_ring_mfn << 12
    before = bytes(d.mem.view[base:base + 4096])
    struct.pack_into('<I', d.mem.view, base + xen.XENSTORE_RSP_PROD, 0x10000)
    struct.pack_into('<I', d.mem.view, base + xen.XENSTORE_REQ_PROD, 16)
    xenstore_backend(d)()
    after = bytes(d.mem.view[base:base + 4096])
    assert after[:xen.XENSTORE_REQ_PROD] == before[:xen.XENSTORE_REQ_PROD]   # nothing answered
