"""A gdb remote-protocol stub over a domain: registers, guest memory, breakpoints,
single-step and continue. A guest fault stops the guest and is reported as SIGSEGV, with
the address in a console message.

    pvshadow trace KERNEL --gdb 1234
    gdb -ex 'target remote :1234'

The subset served: ? g G p P m M c s Z0 z0 Z2 z2 Z4 z4 k D, qSupported, qAttached, qC,
thread queries, H and T, and a target description (qXfer:features:read): gdb's amd64 core, SSE and
segment registers, so gdb sets the architecture itself and shows fs_base and gs_base
(x87 and SSE registers are reported unavailable).
"""
import os
import socket
import sys

from pvshadow.shadow import inspect
from pvshadow.shadow.exits import ExitReason
from pvshadow.shadow.vcpu import GuestFault

SIGINT, SIGTRAP, SIGSEGV = 2, 5, 11
INTERRUPT_BYTE = b'\x03'                 # the remote protocol's Ctrl-C


def _register_layout():
    """(gdb name, our name or None for unavailable, bits, feature, type) in gdb's amd64
    order: the core registers, x87 and SSE (not tracked here: sent as unavailable), then
    the FS and GS bases, which a PV kernel's per-CPU data lives behind."""
    core = [(n, n, 64, 'core', 'int64') for n in (
        'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp',
        'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15')]
    core.append(('rip', 'rip', 64, 'core', 'code_ptr'))
    core.append(('eflags', 'rflags', 32, 'core', 'i386_eflags'))
    core += [(n, n, 32, 'core', 'int32') for n in ('cs', 'ss', 'ds', 'es', 'fs', 'gs')]
    core += [(f'st{i}', None, 80, 'core', 'i387_ext') for i in range(8)]
    core += [(n, None, 32, 'core', 'int') for n in (
        'fctrl', 'fstat', 'ftag', 'fiseg', 'fioff', 'foseg', 'fooff', 'fop')]
    sse = [(f'xmm{i}', None, 128, 'sse', 'uint128') for i in range(16)]
    sse.append(('mxcsr', None, 32, 'sse', 'int'))
    segments = [(n, n, 64, 'segments', 'int64') for n in ('fs_base', 'gs_base')]
    return core + sse + segments


REGISTERS = _register_layout()
WRITABLE = [name for name, *_ in REGISTERS].index('rip') + 1   # rax..r15 and rip


# gdb's i386_eflags flags type (its 64bit-core.xml), so `info registers eflags` names the
# flags that are set.
EFLAGS_FIELDS = (('CF', 0), ('', 1), ('PF', 2), ('AF', 4), ('ZF', 6), ('SF', 7), ('TF', 8),
                 ('IF', 9), ('DF', 10), ('OF', 11), ('NT', 14), ('RF', 16), ('VM', 17),
                 ('AC', 18), ('VIF', 19), ('VIP', 20), ('ID', 21))
EFLAGS_TYPE = ('<flags id="i386_eflags" size="4">' + ''.join(
    f'<field name="{name}" start="{bit}" end="{bit}"/>' for name, bit in EFLAGS_FIELDS) +
    '</flags>')


def _target_xml() -> str:
    features = []
    for feature in ('core', 'sse', 'segments'):
        regs = ''.join(f'<reg name="{name}" bitsize="{bits}" type="{kind}"/>'
                       for name, _, bits, feat, kind in REGISTERS if feat == feature)
        types = EFLAGS_TYPE if feature == 'core' else ''
        features.append(f'<feature name="org.gnu.gdb.i386.{feature}">{types}{regs}</feature>')
    return ('<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">'
            '<target version="1.0"><architecture>i386:x86-64</architecture>'
            + ''.join(features) + '</target>')


TARGET_XML = _target_xml()


class GdbStub:
    def __init__(self, session, conn):
        self.session = session
        self.conn = conn
        self.thread = None               # Hg: the thread registers and memory come from
        self.buffer = b''
        self.watches = {}                # (Z kind, address, length) -> watchpoint id
        if ('fault', 'guest') not in session.conditions.values():
            session.add_condition('fault', 'guest')

    # --- packets ------------------------------------------------------------------------------
    def read_packet(self):
        while True:
            while b'$' not in self.buffer:
                chunk = self.conn.recv(4096)
                if not chunk:
                    return None
                self.buffer += chunk
            start = self.buffer.index(b'$')
            end = self.buffer.find(b'#', start)
            if end < 0 or len(self.buffer) < end + 3:
                chunk = self.conn.recv(4096)
                if not chunk:
                    return None
                self.buffer += chunk
                continue
            data = self.buffer[start + 1:end]
            self.buffer = self.buffer[end + 3:]
            self.conn.sendall(b'+')
            return data.decode('latin-1')

    def send(self, data: str) -> None:
        checksum = sum(data.encode('latin-1')) & 0xFF
        self.conn.sendall(f'${data}#{checksum:02x}'.encode('latin-1'))
        ack = self.conn.recv(1)
        if ack == b'$':                       # no-ack peers: keep what came
            self.buffer = ack + self.buffer

    def console(self, text: str) -> None:
        self.send('O' + text.encode().hex())

    # --- threads: one per vCPU of every domain ------------------------------------------------------
    def threads(self):
        """[(thread id, domain, vCPU)], ids from 1 in domain then vCPU order (stable: a
        domain's vCPUs are fixed when it is created)."""
        pairs = [(d, v) for d in self.session.domains for v in d.vcpus]
        return [(tid, d, v) for tid, (d, v) in enumerate(pairs, 1)]

    def selected(self):
        """(domain, vCPU) for register and memory packets: the Hg thread, else the vCPU
        that last ran in the session's domain."""
        for tid, d, v in self.threads():
            if tid == self.thread:
                return d, v
        d = self.session.domain
        return d, d.running_vcpu()

    @property
    def d(self):
        return self.selected()[0]

    def current_thread(self) -> int:
        d, v = self.selected()
        return next(tid for tid, d2, v2 in self.threads() if v2 is v)

    def thread_info(self, tid: int) -> str:
        for t, d, v in self.threads():
            if t == tid:
                state = 'offline' if not v.online else 'blocked' if v.blocked else 'runnable'
                return f'd{d.domid} {getattr(d, "name", "")} vcpu{v.vcpu_id} {state}'
        return ''

    # --- registers -------------------------------------------------------------------------------
    def registers(self) -> dict:
        regs = dict(inspect.vcpu_registers(self.selected()[1]))
        regs.setdefault('ds', 0)
        for seg in ('ds', 'es', 'fs', 'gs'):
            regs.setdefault(seg, 0)
        return regs

    def _register_hex(self, entry, regs) -> str:
        name, ours, bits, _, _ = entry
        if ours is None or ours not in regs:
            return 'xx' * (bits // 8)            # unavailable
        return (regs[ours] & ((1 << bits) - 1)).to_bytes(bits // 8, 'little').hex()

    def all_registers(self) -> str:
        regs = self.registers()
        return ''.join(self._register_hex(entry, regs) for entry in REGISTERS)

    def one_register(self, n: int) -> str:
        if n >= len(REGISTERS):
            return 'E45'
        return self._register_hex(REGISTERS[n], self.registers())

    def set_register(self, n: int, value_hex: str) -> str:
        raw = bytes.fromhex(value_hex)
        v = self.selected()[1]
        if v.cpu.guest not in (v, None):
            return 'E45'                     # off the CPU: its saved context is not writable here
        if n < WRITABLE and len(raw) == 8:
            name, value = REGISTERS[n][1], int.from_bytes(raw, 'little')
            if name == 'rip':
                self.d.cpu.rip = value
            else:
                self.d.cpu.set_reg(name, value)
            return 'OK'
        return 'E45'

    def set_all_registers(self, data: str) -> str:
        """G: the general registers and rip from the packet (the rest is not writable
        here and is left as it is)."""
        pos = 0
        for n, (_, _, bits, _, _) in enumerate(REGISTERS):
            chunk = data[pos:pos + bits // 4]
            pos += bits // 4
            if n < WRITABLE and len(chunk) == 16 and 'x' not in chunk:
                self.set_register(n, chunk)
        return 'OK'

    # --- running -----------------------------------------------------------------------------------
    def stop_reply(self, exit_) -> str:
        """The reply to c or s: the signal, with the thread (vCPU) that stopped."""
        self.thread = None               # registers follow the vCPU that stopped
        reply = self._stop_reply(exit_)
        if reply[0] == 'S':
            reply = f'T{reply[1:]}thread:{self.current_thread():x};'
        elif reply[0] == 'T':
            reply += f'thread:{self.current_thread():x};'
        return reply

    def _stop_reply(self, exit_) -> str:
        if exit_.reason is ExitReason.BREAKPOINT:
            event = self.session.stopped_on or {}
            if event.get('type') == 'watchpoint':
                kind = 'awatch' if event['access'] == 'read' or any(
                    k[0] == '4' and self.watches[k] in event['ids'] for k in self.watches) \
                    else 'watch'
                return f'T{SIGTRAP:02x}{kind}:{event["va"]:x};'

            if event.get('type') == 'fault':
                self.console(f'guest page fault at {event["va"]:#x} (error code '
                             f'{event["error_code"]:#x}) from {event["rip"]:#x}\n')
                return f'S{SIGSEGV:02x}'
            return f'S{SIGTRAP:02x}'
        if exit_.reason is ExitReason.BUDGET:
            return f'S{SIGTRAP:02x}'
        if exit_.reason is ExitReason.INTERRUPTED:
            return f'S{SIGINT:02x}'
        self.console(f'domain ended: {exit_.describe()}\n')
        return f'W{(exit_.shutdown_code or 0) & 0xFF:02x}' if exit_.reason is \
            ExitReason.SHUTDOWN else f'X{SIGSEGV:02x}'

    def resume(self, step: bool) -> str:
        """Run (one instruction when stepping) while a thread watches the connection for
        gdb's interrupt byte; the stop reply."""
        import select
        import threading
        done = threading.Event()
        wake_r, wake_w = os.pipe()      # ends the watcher's select the moment the run stops
        cpu = self.session.domain.cpu

        def watch():
            while not done.is_set():
                try:
                    if wake_r in select.select([self.conn, wake_r], [], [])[0]:
                        return
                except (OSError, ValueError):
                    return
                try:
                    byte = self.conn.recv(1, socket.MSG_PEEK)
                except OSError:
                    return
                if byte == INTERRUPT_BYTE:
                    self.conn.recv(1)
                    cpu.interrupt()
                elif not byte:
                    return                # gdb went away: the run ends by itself
                else:
                    done.wait()           # a packet for after the stop: leave it queued
        watcher = threading.Thread(target=watch, daemon=True) \
            if isinstance(self.conn, socket.socket) else None
        if watcher is not None:
            watcher.start()
        try:
            exit_ = self.session.run(budget=1 if step else 0)
        finally:
            done.set()
            os.write(wake_w, b'x')
            if watcher is not None:
                watcher.join(timeout=1)
            os.close(wake_r)
            os.close(wake_w)
        return self.stop_reply(exit_)

    def _remove_conditions(self, matching) -> None:
        """Drop the session's stop conditions matching(kind, value) (the breakpoint or
        watchpoint behind each is the caller's to remove)."""
        for number, (kind, value) in list(self.session.conditions.items()):
            if matching(kind, value):
                self.session.remove_condition(number, release=False)

    def watchpoint(self, insert: bool, packet: str) -> str:
        """Z2/z2 (write) and Z4/z4 (access) ADDR,LEN: the domain's watchpoints. Z3 (reads
        only) is not offered: like x86 debug registers, a watch sees writes, or both."""
        kind, addr, length = packet[1], *(int(x, 16) for x in packet.split(',')[1:3])
        key = (kind, addr, length)
        if insert:
            try:
                self.watches[key] = self.d.add_watchpoint(addr, length, reads=kind == '4')
            except ValueError:
                return 'E22'
            self.session.add_condition('data', (self.watches[key], f'gdb {key}'))
        elif key in self.watches:
            wid = self.watches.pop(key)
            self._remove_conditions(lambda kind, value: kind == 'data' and value[0] == wid)
        return 'OK'

    def handle(self, packet: str):
        """The reply to one packet, or None to end the session."""
        kind = packet[:1]
        if packet == '?':
            return f'T{SIGTRAP:02x}thread:{self.current_thread():x};'
        if kind == 'g':
            return self.all_registers()
        if kind == 'p':
            return self.one_register(int(packet[1:], 16))
        if kind == 'P':
            n, value = packet[1:].split('=')
            return self.set_register(int(n, 16), value)
        if kind == 'G':
            return self.set_all_registers(packet[1:])
        if kind == 'm':
            addr, length = (int(x, 16) for x in packet[1:].split(','))
            try:
                return self.selected()[1].copy_from_guest(addr, length).hex()
            except GuestFault:
                return 'E14'
        if kind == 'M':
            where, data = packet[1:].split(':')
            addr = int(where.split(',')[0], 16)
            try:
                inspect.write_virtual(self.d, addr, bytes.fromhex(data))
                return 'OK'
            except GuestFault:
                return 'E14'
        if kind in ('Z', 'z') and packet[1:2] in ('2', '4'):
            return self.watchpoint(kind == 'Z', packet)
        if kind in ('Z', 'z') and packet[1:2] == '0':
            addr = int(packet.split(',')[1], 16)
            if kind == 'Z':
                self.d.add_breakpoint(addr)
                self.session.add_condition('at', addr)
            else:
                self.d.remove_breakpoint(addr)
                self._remove_conditions(lambda what, value: (what, value) == ('at', addr))
            return 'OK'
        if kind in ('c', 'C'):
            # C sig: continue with the signal a guest-fault stop reported; the fault was
            # already on its way to the guest's handler, so it is delivered either way
            return self.resume(step=False)
        if kind in ('s', 'S'):
            return self.resume(step=True)
        if packet == 'vCont?':
            return 'vCont;c;C;s;S'
        if packet.startswith('vCont;'):
            actions = [a.split(':')[0] for a in packet[6:].split(';')]
            return self.resume(step=any(a[:1] in ('s', 'S') for a in actions))
        if kind in ('k', 'D'):
            return None if kind == 'k' else 'OK'
        if packet.startswith('qSupported'):
            return 'PacketSize=4000;qXfer:features:read+'
        if packet.startswith('qXfer:features:read:target.xml:'):
            offset, length = (int(x, 16) for x in packet.rsplit(':', 1)[1].split(','))
            chunk = TARGET_XML[offset:offset + length]
            return ('l' if offset + length >= len(TARGET_XML) else 'm') + chunk
        if packet == 'qAttached':
            return '1'
        if packet == 'qC':
            return f'QC{self.current_thread():x}'
        if packet == 'qfThreadInfo':
            return 'm' + ','.join(f'{tid:x}' for tid, _, _ in self.threads())
        if packet == 'qsThreadInfo':
            return 'l'
        if packet.startswith('qThreadExtraInfo,'):
            return self.thread_info(int(packet.split(',')[1], 16)).encode().hex()
        if kind == 'H':
            tid = int(packet[2:], 16) if packet[2:] not in ('', '-1') else 0
            if packet[1] != 'g':
                return 'OK'
            if tid and not self.thread_info(tid):
                return 'E22'
            self.thread = tid or None
            return 'OK'
        if kind == 'T':
            return 'OK' if self.thread_info(int(packet[1:], 16)) else 'E22'
        return ''


def serve(session, port: int, ready=None, out=None) -> int:
    """Serve one gdb connection on 127.0.0.1:port; returns when gdb detaches or kills."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(('127.0.0.1', port))
    except OSError as exc:
        listener.close()
        print(f'pvshadow: cannot serve gdb on 127.0.0.1:{port}: {exc.strerror}', file=sys.stderr)
        return 2
    listener.listen(1)
    print(f'pvshadow: waiting for gdb on 127.0.0.1:{listener.getsockname()[1]}', flush=True,
          file=out or sys.stdout)
    if ready is not None:
        ready(listener.getsockname()[1])
    try:
        while True:                       # after a detach, the next gdb may attach
            conn, _ = listener.accept()
            # the ack and the reply are two small writes: without this, Nagle holds the
            # reply until gdb's delayed ack (40 ms a packet, a second for an attach)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not _serve_connection(session, conn):
                return 0
    finally:
        listener.close()


def _serve_connection(session, conn) -> bool:
    """One gdb session; False once gdb killed the target (the stub ends)."""
    stub = GdbStub(session, conn)
    try:
        while True:
            packet = stub.read_packet()
            if packet is None:            # gdb went away: wait for another, unless the
                return session.finished is None     # guest has ended
            reply = stub.handle(packet)
            if reply is None:
                return False              # k: the target is killed
            stub.send(reply)
            if packet[:1] == 'D':
                return True
    except OSError:
        return True
    finally:
        conn.close()
