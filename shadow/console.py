"""A domain's two output streams as Xen keeps them: the PV console ring (`xl console`),
drained by the hypervisor's backend when the guest notifies it, and console_io (the
hypervisor log, `xl dmesg`). shadow.domain decides which reaches the domain console."""
import struct

from pvshadow.shadow.abi import xen


def console_backend(domain):
    """Drain the PV console ring's output side into the console, in order."""
    def backend():
        mfn = domain.console_ring_mfn
        base = mfn << 12
        mem = domain.mem
        cons = struct.unpack_from('<I', mem.view, base + xen.XENCONS_OUT_CONS)[0]
        prod = struct.unpack_from('<I', mem.view, base + xen.XENCONS_OUT_PROD)[0]
        if (prod - cons) & 0xFFFFFFFF > 2048:
            return                                    # a corrupt ring: ignore it
        out = bytearray()
        while cons != prod:
            out.append(mem.view[base + xen.XENCONS_OUT + (cons & 2047)])
            cons = (cons + 1) & 0xFFFFFFFF
        struct.pack_into('<I', mem.view, base + xen.XENCONS_OUT_CONS, cons)
        if out:
            domain.console_ring_write(bytes(out))
    return backend


def console_io_tail(shown: bytes) -> list:
    """The console_io output already shown, as candidate echoes: from each line start."""
    starts = [0] + [i + 1 for i, byte in enumerate(shown) if byte == 0x0A and i + 1 < len(shown)]
    return [bytes(shown[start:]) for start in starts]


def drop_echo(data: bytes, echoes):
    """The ring output without what repeats the end of console_io's (a line-aligned
    tail of it), and the tails still being repeated (empty once it diverged or ended)."""
    for tail in echoes:
        n = min(len(tail), len(data))
        if n and tail[:n] == data[:n]:
            rest = tail[n:]
            return data[n:], [rest] if rest else []
    return data, []
