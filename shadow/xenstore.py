"""A minimal xenstore shared by the host's domains, and each domain's ring to it.

The store is a flat map from absolute paths to values. A domain's relative paths are
under /local/domain/<domid>/, where its `domid` and `name` are written when it is built.
Served: XS_READ, XS_WRITE, XS_MKDIR, XS_RM, XS_DIRECTORY, XS_WATCH / XS_UNWATCH (a watch
fires once when set, then for every write or removal at or under its path, as an
XS_WATCH_EVENT message on the watcher's ring), XS_GET_DOMAIN_PATH. Anything else gets a
well-formed XS_ERROR ("ENOSYS"); a missing node "ENOENT". Permissions and transactions
are not modelled: every domain may read and write every path.

The ring's indices are the guest's and untrusted (xenstored's check_indexes): a producer
more than a ring ahead of its consumer is a corrupt ring and is ignored, a request that
cannot fit in the ring is never waited for, and a reply or event is written only when the
response ring has room for it (an event waits in the domain's queue until then), so every
notification does at most a ring's worth of work.
"""
import struct
from typing import Dict, List, Tuple

from pvshadow.shadow.abi import xen

RING_SIZE = 1024
XS_DIRECTORY, XS_READ, XS_WATCH, XS_UNWATCH = 1, 2, 4, 5
XS_GET_DOMAIN_PATH, XS_WRITE, XS_MKDIR, XS_RM = 10, 11, 12, 13
XS_WATCH_EVENT, XS_ERROR = 15, 16
_HEADER = struct.Struct('<4I')


class XenStore:
    def __init__(self):
        self.nodes: Dict[str, str] = {}
        self.watches: List[Tuple[object, str, str]] = []   # (domain, path, token)

    @staticmethod
    def home(domid: int) -> str:
        return f'/local/domain/{domid}'

    def absolute(self, domain, path: str) -> str:
        path = path.rstrip('/') or '/'
        return path if path.startswith('/') else f'{self.home(domain.domid)}/{path}'

    def introduce(self, domain, name: str) -> None:
        home = self.home(domain.domid)
        self.write(f'{home}/domid', str(domain.domid))
        self.write(f'{home}/name', name)

    def write(self, path: str, value: str) -> None:
        self.nodes[path] = value
        self._fire(path)

    def remove(self, path: str) -> bool:
        gone = [p for p in self.nodes if p == path or p.startswith(path + '/')]
        for p in gone:
            del self.nodes[p]
        if gone:
            self._fire(path)
        return bool(gone)

    def children(self, path: str) -> List[str]:
        prefix = path.rstrip('/') + '/'
        names = {p[len(prefix):].split('/', 1)[0] for p in self.nodes if p.startswith(prefix)}
        return sorted(names)

    def exists(self, path: str) -> bool:
        return path in self.nodes or bool(self.children(path))

    def forget(self, domain) -> None:
        """Domain destruction: its watches go, and so does its home."""
        self.watches = [w for w in self.watches if w[0] is not domain]
        self.remove(self.home(domain.domid))

    def _fire(self, path: str) -> None:
        for domain, watched, token in self.watches:
            if path == watched or path.startswith(watched.rstrip('/') + '/') or \
                    watched.startswith(path + '/'):
                queue_event(domain, path, token)

    # --- one request ------------------------------------------------------------------------
    def request(self, domain, kind: int, body: bytes) -> Tuple[int, bytes]:
        """(reply kind, payload) for one request from domain."""
        parts = body.split(b'\0')
        text = [p.decode('utf-8', 'replace') for p in parts]
        path = self.absolute(domain, text[0]) if text and text[0] else ''
        if kind == XS_READ:
            if path not in self.nodes:
                return XS_ERROR, b'ENOENT\0'
            return XS_READ, self.nodes[path].encode()
        if kind == XS_WRITE:
            value = body.split(b'\0', 1)[1] if b'\0' in body else b''
            self.write(path, value.decode('utf-8', 'replace'))
            return XS_WRITE, b'OK\0'
        if kind == XS_MKDIR:
            if not self.exists(path):
                self.write(path, '')
            return XS_MKDIR, b'OK\0'
        if kind == XS_RM:
            return (XS_RM, b'OK\0') if self.remove(path) else (XS_ERROR, b'ENOENT\0')
        if kind == XS_DIRECTORY:
            if not self.exists(path):
                return XS_ERROR, b'ENOENT\0'
            return XS_DIRECTORY, b''.join(n.encode() + b'\0' for n in self.children(path))
        if kind in (XS_WATCH, XS_UNWATCH) and len(text) >= 2:
            token = text[1]
            if kind == XS_WATCH:
                self.watches.append((domain, path, token))
                queue_event(domain, path, token)          # a new watch fires once
            else:
                self.watches = [w for w in self.watches if w != (domain, path, token)]
            return kind, b'OK\0'
        if kind == XS_GET_DOMAIN_PATH:
            return XS_GET_DOMAIN_PATH, self.home(int(text[0]) if text[0].isdigit() else
                                                 domain.domid).encode() + b'\0'
        return XS_ERROR, b'ENOSYS\0'


def queue_event(domain, path: str, token: str) -> None:
    """An XS_WATCH_EVENT for the domain, written to its ring as soon as there is room."""
    payload = path.encode() + b'\0' + token.encode() + b'\0'
    if len(payload) + _HEADER.size <= RING_SIZE:
        domain.store_events.append(_HEADER.pack(XS_WATCH_EVENT, 0, 0, len(payload)) + payload)
        if domain.store_ring_mfn is not None and not domain.store_busy:
            flush_events(domain)


def flush_events(domain) -> None:
    ring = _Ring(domain)
    if ring.corrupt():
        return
    sent = False
    while domain.store_events and ring.put(domain.store_events[0]):
        domain.store_events.popleft()
        sent = True
    ring.commit()
    if sent:
        domain.evtchn.set_pending(domain.store_evtchn)


class _Ring:
    """The response side of a domain's store ring, written back once."""

    def __init__(self, domain):
        self.mem = domain.mem
        self.base = domain.store_ring_mfn << 12
        self.rsp_cons = self._rd(xen.XENSTORE_RSP_CONS)
        self.rsp = self._rd(xen.XENSTORE_RSP_PROD)

    def _rd(self, offset: int) -> int:
        return struct.unpack_from('<I', self.mem.view, self.base + offset)[0]

    def corrupt(self) -> bool:
        return (self.rsp - self.rsp_cons) & 0xFFFFFFFF > RING_SIZE

    def put(self, message: bytes) -> bool:
        if ((self.rsp - self.rsp_cons) & 0xFFFFFFFF) + len(message) > RING_SIZE:
            return False
        view, base = self.mem.view, self.base + xen.XENSTORE_RSP
        for i, byte in enumerate(message):
            view[base + ((self.rsp + i) & (RING_SIZE - 1))] = byte
        self.rsp = (self.rsp + len(message)) & 0xFFFFFFFF
        return True

    def commit(self) -> None:
        struct.pack_into('<I', self.mem.view, self.base + xen.XENSTORE_RSP_PROD, self.rsp)


def xenstore_backend(domain):
    """The hypervisor's end of the domain's xenstore channel: answer what is on the ring."""
    def backend():
        store = domain.host.store
        mem, base = domain.mem, domain.store_ring_mfn << 12
        rd = lambda off: struct.unpack_from('<I', mem.view, base + off)[0]      # noqa: E731
        cons, prod = rd(xen.XENSTORE_REQ_CONS), rd(xen.XENSTORE_REQ_PROD)
        ring = _Ring(domain)
        if (prod - cons) & 0xFFFFFFFF > RING_SIZE or ring.corrupt():
            domain.log(f'd{domain.domid}: xenstore ring corrupted (req {cons:#x}..{prod:#x}, '
                       f'rsp {ring.rsp_cons:#x}..{ring.rsp:#x}): ignored')
            return
        answered = False
        domain.store_busy = True
        try:
            while domain.store_events and ring.put(domain.store_events[0]):
                domain.store_events.popleft()
                answered = True
            while (prod - cons) & 0xFFFFFFFF >= _HEADER.size:
                header = bytes(mem.view[base + xen.XENSTORE_REQ + ((cons + i) & 1023)]
                               for i in range(_HEADER.size))
                kind, req_id, tx_id, length = _HEADER.unpack(header)
                if _HEADER.size + length > RING_SIZE:
                    domain.log(f'd{domain.domid}: xenstore request of {length} bytes cannot '
                               'fit the ring: ignored')
                    break
                if (prod - cons) & 0xFFFFFFFF < _HEADER.size + length:
                    break
                body = bytes(mem.view[base + xen.XENSTORE_REQ + ((cons + 16 + i) & 1023)]
                             for i in range(length))
                reply_kind, payload = store.request(domain, kind, body)
                if not ring.put(_HEADER.pack(reply_kind, req_id, tx_id, len(payload)) + payload):
                    break                     # no room for the answer: wait for the guest
                cons = (cons + _HEADER.size + length) & 0xFFFFFFFF
                answered = True
                while domain.store_events and ring.put(domain.store_events[0]):
                    domain.store_events.popleft()
        finally:
            domain.store_busy = False
        ring.commit()
        struct.pack_into('<I', mem.view, base + xen.XENSTORE_REQ_CONS, cons)
        if answered:
            domain.evtchn.set_pending(domain.store_evtchn)
    return backend

