"""pvshadow trace: follow every fault interactively, log it, or let gdb attach.

    pvshadow trace KERNEL [--paging direct|shadow] [-x FILE] [--log FILE|-] [--gdb PORT]

The session installs itself as the domain's tracer: every fault, exception, hypercall,
vm_event and exit reaches `on_event`, which keeps a history, writes the JSON log and asks
the domain to stop when a stop condition matches. Commands (also from a script with -x):

  run / continue / c          run until a stop condition or the end
  step [N] / s [N]            execute N instructions (default 1)
  break fault [guest|shadow|access|pt-write|spurious]
  break hypercall [NAME]      break event          break at ADDR
  watch FRAME                 any fault whose address maps that machine frame
  watch write|access VA [LEN] after each instruction that writes (or reads or writes)
                              those bytes (a watchpoint, 8 bytes by default)
  breaks / delete N|all       list / remove stop conditions
  regs                        disas [ADDR] [N]     x ADDR [N]
  walk VA [read|write|fetch]  shadow VA            frame MFN
  access FRAME TYPE           default-access TYPE  stats
  faults [N]                  the last N faults, one line each
  quit
"""
import cmd
import json
import os
import sys
from collections import deque
from typing import Optional

from capstone import CS_ARCH_X86, CS_MODE_64, Cs

from pvshadow.shadow import inspect
from pvshadow.shadow.abi.xen import ACCESS_BY_NAME, ACCESS_START_DEFAULT
from pvshadow.shadow.exits import ExitReason, format_registers
from pvshadow.shadow.paging.x86 import pfec_str
from pvshadow.shadow.vcpu import GuestFault
from pvshadow.tools.interrupt import interruptible
from pvshadow.tools.tracelog import JsonLog

FAULT_KINDS = ('guest', 'shadow', 'access', 'pt-write', 'spurious')
# Stops after which the guest can go on.
RESUMABLE = (ExitReason.BREAKPOINT, ExitReason.BUDGET, ExitReason.INTERRUPTED)
_md = Cs(CS_ARCH_X86, CS_MODE_64)



class TraceSession:
    """Stop conditions, the event history and the log, for one domain or every domain of
    a host. Every event names its domain (domid) and vCPU; `domain` is the one the
    commands look at, and follows each stop to the domain that stopped."""

    def __init__(self, domain, log=None, out=None, host=None, domains=None, timeout=120.0,
                 budget=0):
        self.domain = domain
        self.timeout = timeout or None   # each run's watchdog (None: none)
        self.budget = budget             # each run's instruction budget (0: none)
        self.host = host
        self.domains = list(domains or [domain])
        self.log = log
        self.out = out or sys.stdout
        self.history = deque(maxlen=10000)
        self.conditions = {}             # number -> (kind, argument), numbers kept as gdb's
        self._next_condition = 1
        self.stopped_on: Optional[dict] = None
        self.finished = None             # the exit that ended the domain (every domain)
        self.ended = {}                  # domid -> its exit, on a host of several
        self.listener = None             # a vm_event listener, once access is changed
        for d in self.domains:
            d.tracer = lambda event, d=d: self.on_event(event, d)

    @property
    def several(self) -> bool:
        return len(self.domains) > 1

    def select(self, which: str):
        """The domain a `domain` command or gdb thread names: its domid or its name."""
        for d in self.domains:
            if which in (str(d.domid), f'd{d.domid}', getattr(d, 'name', None)):
                return d
        return None

    # --- events from the hypervisor --------------------------------------------------------------
    def on_event(self, event: dict, d=None) -> None:
        d = d or self.domain
        event.setdefault('domid', d.domid)
        event.setdefault('vcpu', d.running_vcpu().vcpu_id)
        if event['type'] in ('fault', 'exception', 'watchpoint'):
            self.history.append(event)
        if self.log is not None:
            self.log.write(event, d)
        if event['type'] != 'exit' and self._matches(event):
            self.stopped_on = event
            d.request_stop(self.one_line(event))

    def add_condition(self, kind: str, argument) -> int:
        """A stop condition; its number stays its own until it is deleted."""
        number, self._next_condition = self._next_condition, self._next_condition + 1
        self.conditions[number] = (kind, argument)
        return number

    def remove_condition(self, number: int, release: bool = True):
        """(kind, argument) of the condition removed; with release, the domain's
        breakpoint or watchpoint behind it goes too."""
        kind, argument = self.conditions.pop(number)
        if not release:
            return kind, argument
        if kind == 'at':
            self.domain.remove_breakpoint(argument)
        elif kind == 'data':
            self.domain.remove_watchpoint(argument[0])
        return kind, argument

    def _matches(self, event: dict) -> bool:
        kind = event['type']
        for what, arg in self.conditions.values():
            if what == 'fault' and kind == 'fault' and arg in (None, event['kind']):
                return True
            if what == 'hypercall' and kind == 'hypercall' and arg in (None, event['name']):
                return True
            if what == 'event' and kind == 'vm_event':
                return True
            if what == 'at' and kind == 'breakpoint' and event['rip'] == arg:
                return True
            if what == 'watch' and kind == 'fault' and self._frame_of(event['va']) == arg:
                return True
            if what == 'data' and kind == 'watchpoint' and arg[0] in event['ids']:
                return True
        return False

    def _frame_of(self, va: int):
        d = self.domain
        gw = d.paging.debug_walk(d.running_vcpu(), va)
        if gw.ok:
            return gw.mfn
        return gw.levels[-1].entry >> 12 & 0xFFFFFFFFFF if gw.levels and gw.levels[-1].level == 1 \
            and gw.levels[-1].entry & 1 else None

    # --- formatting ------------------------------------------------------------------------------
    def instruction_at(self, rip: int) -> str:
        try:
            code = inspect.read_virtual(self.domain, rip, 15)
        except GuestFault:
            return '(not mapped)'
        insn = next(_md.disasm(code, rip, 1), None)
        return f'{insn.mnemonic} {insn.op_str}'.strip() if insn else '(bad)'

    def one_line(self, event: dict) -> str:
        text = self._describe(event)
        if self.several and 'domid' in event:
            return f'd{event["domid"]}v{event.get("vcpu", 0)}: {text}'
        return text

    def _describe(self, event: dict) -> str:
        kind = event['type']
        if kind == 'fault':
            return (f'{event["kind"]:8} #PF va={event["va"]:#x} ec={event["error_code"]:#x} '
                    f'({pfec_str(event["error_code"])}) rip={event["rip"]:#x} '
                    f'[{self.instruction_at(event["rip"])}] -> {event["action"]}')
        if kind == 'exception':
            ec = f' ec={event["error_code"]:#x}' if event.get('error_code') is not None else ''
            return (f'exception vector {event["vector"]}{ec} rip={event["rip"]:#x} '
                    f'[{self.instruction_at(event["rip"])}] -> {event["action"]}')
        if kind == 'hypercall':
            rc = event['rc']
            rc = 'no return' if rc is None else (f'{rc - (1 << 64)}' if rc >= 1 << 63 else f'{rc}')
            return f'hypercall {event["name"]}({", ".join(hex(a) for a in event["args"][:3])}) -> {rc}'
        if kind == 'vm_event':
            return (f'vm_event {event["access"]} gfn {event["gfn"]:#x} gla {event["gla"]:#x} '
                    f'rip={event["rip"]:#x}')
        if kind == 'watchpoint':
            ids = ','.join(map(str, event['ids']))
            return (f'watchpoint {ids}: {event["access"]} of {event["size"]} bytes at '
                    f'{event["va"]:#x} by rip={event["rip"]:#x} '
                    f'[{self.instruction_at(event["rip"])}], next {event["next_rip"]:#x}')
        if kind == 'breakpoint':
            return (f'breakpoint at {inspect.symbolize(self.domain, event["rip"])} '
                    f'[{self.instruction_at(event["rip"])}]')
        return json.dumps(event)

    def exit_code(self) -> int:
        """By the verdicts of the domains that ended (xtf-runner's codes, shadow.api); 0
        when the session was left before any domain ended."""
        from pvshadow.shadow import api
        ended = [api.RunResult(d, self.ended.get(d.domid) or (
            self.finished if not self.several else None)) for d in self.domains]
        return api.exit_code([r for r in ended if r.exit is not None])

    # --- running -------------------------------------------------------------------------------
    def run(self, budget: int = 0):
        if self.finished is not None:
            return self.finished
        self.stopped_on = None
        budget = budget or self.budget
        timeout = self.timeout
        with interruptible(self.domain.cpu):
            return self._run(budget, timeout)

    def attach_listener(self) -> str:
        """A vm_event listener for the domain, so access changes raise events the tracer
        can stop on (`break event`); '' or why there cannot be one."""
        if self.listener is not None:
            return ''
        from pvshadow.shadow.listener import Listener, ListenerError
        try:
            self.listener = Listener(self.domain)
        except ListenerError as exc:
            return f'no vm_event listener ({exc}): violations relax the frame instead'
        return ''

    def _answer_pending(self) -> None:
        """Let every access waiting on the ring through once (MEM_ACCESS_EMULATE, as
        `pvshadow access` does) and resume the vCPUs it paused."""
        from pvshadow.shadow.listener import Event
        from pvshadow.shadow.toolstack import xc_mem_access_resume
        listener = self.listener
        while (request := listener.ring.get_request()) is not None:
            listener.events_seen += 1
            Event(listener, request).respond(emulate=True)
        if any(v.paused_for_event for v in self.domain.vcpus):
            xc_mem_access_resume(self.domain)

    def _run(self, budget, timeout):
        if not self.several:
            while True:
                if self.listener is not None:
                    self._answer_pending()
                exit_ = self.domain.run(budget=budget, timeout=timeout)
                if exit_.reason is not ExitReason.VM_EVENT or self.listener is None:
                    break                 # an event no condition stopped on: answer, go on
            if exit_.reason not in RESUMABLE:
                self.finished = exit_
            return exit_
        host_exits = self.host.run(budget=budget, timeout=timeout)
        for host_exit in host_exits:
            d = self.host.domains.get(host_exit.domid) or self.select(str(host_exit.domid))
            if host_exit.exit.reason not in RESUMABLE:
                self.ended[host_exit.domid] = host_exit.exit
                if d is not None:
                    self.on_event({'type': 'exit', 'reason': host_exit.exit.reason.value,
                                   'message': host_exit.exit.message,
                                   'shutdown_code': host_exit.exit.shutdown_code,
                                   'rip': host_exit.exit.registers.get('rip', 0),
                                   'vcpu': host_exit.vcpu}, d)
        last = host_exits[-1] if host_exits else None
        if last is not None and last.exit.reason in RESUMABLE:
            self.domain = self.select(str(last.domid)) or self.domain     # focus follows the stop
            return last.exit
        if all(d.domid in self.ended for d in self.domains):
            self.finished = last.exit if last is not None else self.finished
        return last.exit if last is not None else self.finished


def _history():
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    path = os.path.expanduser('~/.pvshadow_history')
    try:
        open(path, 'a').close()
        return FileHistory(path)
    except OSError:
        return InMemoryHistory()


class Usage(Exception):
    """A command's arguments were wrong: the message is a sentence for the user."""


class TraceConsole(cmd.Cmd):
    intro = 'pvshadow trace: "help" lists the commands, "run" starts the guest.'
    prompt = '(pvshadow) '

    def __init__(self, session: TraceSession, stdin=None, stdout=None):
        super().__init__(stdin=stdin, stdout=stdout)
        if stdin is not None:
            self.use_rawinput = False
            self.prompt = ''
            self.intro = None
        self.session = session

    @property
    def d(self):
        """The domain the commands look at (`domain` changes it; a stop moves it)."""
        return self.session.domain

    def say(self, text: str) -> None:
        self.stdout.write(text + '\n')

    def cmdloop(self, intro=None):
        """At a terminal, prompt_toolkit reads the commands (history kept across sessions,
        Tab completes command names); scripts and pipes use cmd's own loop."""
        if not self.use_rawinput or not sys.stdin.isatty():
            return super().cmdloop(intro)
        try:
            from prompt_toolkit import PromptSession
        except ImportError:
            return super().cmdloop(intro)
        from prompt_toolkit.completion import Completer, Completion
        console = self

        class Arguments(Completer):
            def get_completions(self, document, complete_event):
                before = document.text_before_cursor
                words = before.split()
                current = '' if before.endswith(' ') or not words else words.pop()
                for word in console.completions(words, current):
                    yield Completion(word, start_position=-len(current))
        reader = PromptSession(history=_history(), completer=Arguments())
        if intro or self.intro:
            self.say(intro or self.intro)
        stop = False
        while not stop:
            try:
                line = reader.prompt(self.prompt)
            except KeyboardInterrupt:
                continue
            except EOFError:
                line = 'quit'
            stop = self.onecmd(line)

    def emptyline(self):
        return False

    def default(self, line):
        self.say(f'unknown command: {line.split()[0]} (help lists them)')

    # --- arguments -------------------------------------------------------------------------------
    def completions(self, words: list, current: str) -> list:
        """What Tab offers for the word being typed after `words`: command names first,
        then each command's own arguments (fault kinds, hypercall names, access types,
        symbols, domains)."""
        from pvshadow.shadow.abi.xen import HYPERCALL_NAMES
        commands = sorted(name[3:].replace('_', '-') for name in self.get_names()
                          if name.startswith('do_') and name != 'do_EOF')
        symbols = sorted(getattr(getattr(self.d, 'image', None), 'symbols', {}))
        access_types = list(ACCESS_BY_NAME)
        if not words:
            options = commands
        else:
            command, args = words[0], words[1:]
            options = {
                ('break', 0): ['fault', 'hypercall', 'event', 'at'],
                ('watch', 0): ['write', 'access'],
                ('access', 1): access_types, ('default-access', 0): access_types,
                ('domain', 0): [str(d.domid) for d in self.session.domains] +
                               [d.name for d in self.session.domains if getattr(d, 'name', '')],
                ('delete', 0): ['all'] + [str(n) for n in self.session.conditions],
                ('disas', 0): symbols, ('x', 0): symbols, ('walk', 0): symbols,
                ('walk', 1): ['read', 'write', 'fetch'], ('shadow', 0): symbols,
            }.get((command, len(args)), [])
            if command == 'break' and len(args) == 1:
                options = {'fault': list(FAULT_KINDS), 'at': symbols,
                           'hypercall': sorted(set(HYPERCALL_NAMES.values()))}.get(args[0], [])
            if command == 'watch' and len(args) == 1 and args[0] in ('write', 'access'):
                options = symbols
        return [word for word in options if word.startswith(current)]

    def address(self, text: str) -> int:
        """A number, or a symbol of the domain's kernel (SYMBOL or SYMBOL+OFFSET)."""
        base, plus, offset = text.partition('+')
        try:
            return int(text, 0)
        except ValueError:
            pass
        symbols = getattr(getattr(self.d, 'image', None), 'symbols', {})
        if base not in symbols:
            raise Usage(f'{text!r} is neither an address nor a symbol of the kernel')
        return symbols[base] + (self.number(offset) if plus else 0)

    @staticmethod
    def number(text: str) -> int:
        try:
            return int(text, 0)
        except ValueError:
            raise Usage(f'{text!r} is not a number') from None

    @staticmethod
    def words(arg: str, needed: int, usage: str) -> list:
        words = arg.split()
        if len(words) < needed:
            raise Usage(f'{usage.split()[0]} needs {usage.split(" ", 1)[1]}')
        return words

    def onecmd(self, line):
        try:
            return super().onecmd(line)
        except Usage as exc:
            self.say(str(exc))
        except (ValueError, IndexError, KeyError) as exc:
            self.say(f'error: {exc}')
        except GuestFault as exc:
            self.say(f'cannot read guest memory: {exc}')
        return False

    # --- running -----------------------------------------------------------------------------
    def _report(self, exit_) -> None:
        s = self.session
        if exit_.reason is ExitReason.BREAKPOINT:
            event = s.stopped_on
            self.say(f'stopped: {s.one_line(event) if event else exit_.message}')
            rip = self.d.cpu.rip
            self.say(f'  next: {rip:#x}: {s.instruction_at(rip)}')
        elif exit_.reason is ExitReason.BUDGET:
            rip = self.d.cpu.rip
            self.say(f'{rip:#x}: {s.instruction_at(rip)}')
        elif exit_.reason is ExitReason.INTERRUPTED:
            rip = self.d.cpu.rip
            self.say(f'interrupted: d{self.d.domid}v{self.d.running_vcpu().vcpu_id} at '
                     f'{inspect.symbolize(self.d, rip)}: {s.instruction_at(rip)}')
        else:
            self.say(f'domain ended: {exit_.describe()}')

    def do_run(self, arg):
        """run: run until a stop condition matches or the domain ends"""
        self._report(self.session.run())

    do_continue = do_c = do_run

    def do_step(self, arg):
        """step [N]: execute N instructions (default 1)"""
        n = self.number(arg.strip()) if arg.strip() else 1
        if n <= 0:
            raise Usage('step takes a positive number of instructions')
        self._report(self.session.run(budget=n))

    do_s = do_step

    def do_break(self, arg):
        """break fault [guest|shadow|access|pt-write|spurious] | hypercall [NAME] | event | at ADDR"""
        words = arg.split()
        if not words:
            return self.say('break what? fault, hypercall, event or at ADDR')
        what, rest = words[0], words[1:]
        if what == 'fault':
            kind = rest[0] if rest else None
            if kind is not None and kind not in FAULT_KINDS:
                return self.say(f'fault kinds: {", ".join(FAULT_KINDS)}')
            number = self.session.add_condition('fault', kind)
        elif what == 'hypercall':
            number = self.session.add_condition('hypercall', rest[0] if rest else None)
        elif what == 'event':
            number = self.session.add_condition('event', None)
        elif what == 'at' and rest:
            addr = self.address(rest[0])
            self.d.add_breakpoint(addr)
            number = self.session.add_condition('at', addr)
            return self.say(f'stop condition {number}: at {inspect.symbolize(self.d, addr)}')
        else:
            return self.say('break what? fault, hypercall, event or at ADDR')
        self.say(f'stop condition {number}: {arg.strip()}')

    def do_watch(self, arg):
        """watch FRAME: stop on any fault whose address maps that machine frame
watch write|access VA [LEN]: stop after each instruction that writes (or reads or
writes) LEN bytes at VA (8 by default), as a data watchpoint"""
        words = self.words(arg, 1, 'watch a frame, or write|access and an address')
        if words[0] in ('write', 'access'):
            words = self.words(arg, 2, f'watch {words[0]} an address')
            va = self.address(words[1])
            length = self.number(words[2]) if len(words) > 2 else 8
            try:
                wid = self.d.add_watchpoint(va, length, reads=words[0] == 'access')
            except ValueError as exc:
                return self.say(f'cannot watch that: {exc}')
            number = self.session.add_condition('data', (wid, f'{words[0]} {va:#x} {length}'))
        else:
            number = self.session.add_condition('watch', self.number(words[0]))
        self.say(f'stop condition {number}: watch {arg.strip()}')

    def do_breaks(self, arg):
        """breaks: list the stop conditions"""
        for n, (what, value) in self.session.conditions.items():
            if what == 'data':
                what, value = 'watchpoint', value[1]
            shown = inspect.symbolize(self.d, value) if what == 'at' else \
                f'{value:#x}' if isinstance(value, int) else (value or 'any')
            self.say(f'{n}: {what} {shown}')

    def do_delete(self, arg):
        """delete N | all: remove stop conditions (the others keep their numbers)"""
        conds = self.session.conditions
        target = self.words(arg, 1, 'delete a condition number, or all')[0]
        victims = list(conds) if target == 'all' else [self.number(target)]
        for number in victims:
            if number not in conds:
                return self.say(f'no stop condition {number} (breaks lists them)')
            self.session.remove_condition(number)

    # --- looking -------------------------------------------------------------------------------
    def do_regs(self, arg):
        """regs: the vCPU's registers"""
        regs = inspect.registers(self.d)
        self.say(format_registers(regs))
        v = self.d.running_vcpu()
        self.say(f'vCPU {v.vcpu_id}, guest mode: {"kernel" if v.kernel_mode else "user"}, '
                 f'kernel root mfn {v.guest_table:#x}, user root mfn {v.guest_table_user:#x}')

    def do_disas(self, arg):
        """disas [ADDR] [N]: N instructions from ADDR (default: 8 from RIP, marked =>)"""
        words = arg.split()
        rip = self.d.cpu.rip
        addr = self.address(words[0]) if words else rip
        count = self.number(words[1]) if len(words) > 1 else 8
        code = inspect.read_virtual(self.d, addr, 15 * count)
        for n, insn in enumerate(_md.disasm(code, addr)):
            if n >= count:
                break
            mark = '=>' if insn.address == rip else '  '
            self.say(f'{mark} {insn.address:#x}: {insn.bytes.hex():20} {insn.mnemonic} {insn.op_str}')

    def do_x(self, arg):
        """x ADDR [N]: N qwords of guest memory (default 4)"""
        words = self.words(arg, 1, 'x an address')
        addr = self.address(words[0])
        count = self.number(words[1]) if len(words) > 1 else 4
        data = inspect.read_virtual(self.d, addr, 8 * count)
        for i in range(count):
            self.say(f'{addr + 8 * i:#x}: {int.from_bytes(data[8 * i:8 * i + 8], "little"):#018x}')

    def do_walk(self, arg):
        """walk VA [read|write|fetch]: each level of the guest's walk"""
        words = self.words(arg, 1, 'walk a virtual address')
        access = words[1] if len(words) > 1 else 'read'
        if access not in ('read', 'write', 'fetch'):
            raise Usage(f'walk checks a read, write or fetch, not {access!r}')
        for line in inspect.walk_report(self.d, self.address(words[0]), access):
            self.say(line)

    def do_shadow(self, arg):
        """shadow VA: each level of the shadow walk, and the rights the shadow removed"""
        va = self.address(self.words(arg, 1, 'shadow a virtual address')[0])
        for line in inspect.shadow_report(self.d, va):
            self.say(line)

    def do_frame(self, arg):
        """frame MFN: owner, type, counts, access, the shadows that map it"""
        mfn = self.number(self.words(arg, 1, 'frame a machine frame number')[0])
        for line in inspect.frame_report(self.d, mfn):
            self.say(line)

    def do_access(self, arg):
        """access FRAME TYPE: set one machine frame's mem_access type (n r w rw x rx wx rwx rx2rw n2rwx)"""
        from pvshadow.shadow.toolstack import xc_set_mem_access
        frame, kind = self.words(arg, 2, 'access a frame and an access type')[:2]
        if kind not in ACCESS_BY_NAME:
            raise Usage(f'access types: {" ".join(ACCESS_BY_NAME)}')
        self._listen()
        rc = xc_set_mem_access(self.d, ACCESS_BY_NAME[kind], self.number(frame), 1)
        self.say('ok' if rc == 0 else f'refused: {rc}')

    def do_default_access(self, arg):
        """default-access TYPE: the domain's default mem_access type (blows every shadow)"""
        from pvshadow.shadow.toolstack import xc_set_mem_access
        kind = self.words(arg, 1, 'default-access an access type')[0]
        if kind not in ACCESS_BY_NAME:
            raise Usage(f'access types: {" ".join(ACCESS_BY_NAME)}')
        self._listen()
        rc = xc_set_mem_access(self.d, ACCESS_BY_NAME[kind], ACCESS_START_DEFAULT, 0)
        self.say('ok' if rc == 0 else f'refused: {rc}')

    def _listen(self) -> None:
        from pvshadow.shadow.toolstack import xc_mem_access_shadow_enable
        why = self.session.attach_listener() if not self.session.several else 'several domains'
        if why and self.d.mem_access is None:
            xc_mem_access_shadow_enable(self.d)
        if why:
            self.say(why)

    def do_stats(self, arg):
        """stats: faults by kind, shadow pages, blown tables, events"""
        by_kind = {}
        for event in self.session.history:
            key = event.get('kind', f'vector {event.get("vector")}')
            by_kind[key] = by_kind.get(key, 0) + 1
        self.say('faults: ' + (', '.join(f'{k} {v}' for k, v in sorted(by_kind.items())) or 'none'))
        for key, value in inspect.stats(self.d).items():
            self.say(f'{key}: {value}')

    def do_faults(self, arg):
        """faults [N]: the last N faults (default 10): kind, VA, error code, RIP, instruction, action"""
        n = self.number(arg.strip()) if arg.strip() else 10
        for event in list(self.session.history)[-n:]:
            self.say(self.session.one_line(event))

    def do_domain(self, arg):
        """domain [ID|NAME]: list the host's domains, or look at one (regs, walk, break at ...)"""
        session = self.session
        if arg.strip():
            d = session.select(arg.strip())
            if d is None:
                self.say(f'no domain {arg.strip()} (domain lists them)')
                return
            session.domain = d
        for d in session.domains:
            ended = session.ended.get(d.domid) or d.ended
            state = ended.describe() if ended is not None else \
                'paused' if d.pause_count else 'running'
            mark = '*' if d is session.domain else ' '
            self.say(f'{mark} d{d.domid} {getattr(d, "name", "")}: {len(d.vcpus)} vCPUs, '
                     f'{d.paging.name} paging, {state}')

    def do_quit(self, arg):
        """quit"""
        return True

    do_q = do_exit = do_EOF = do_quit

    def precmd(self, line):
        # 'default-access' is a valid command name with a dash
        return line.replace('default-access', 'default_access', 1) if line.startswith('default-access') else line


def main_trace(args) -> int:
    from pvshadow.guests.config import domain_specs, is_config
    from pvshadow.guests.image import KernelError
    from pvshadow.shadow import api
    log_file = None
    kernels = args.kernel if isinstance(args.kernel, list) else [args.kernel]
    several = len(kernels) > 1 or is_config(kernels[0])
    out = sys.stderr.buffer if args.log == '-' else sys.stdout.buffer
    from pvshadow.tools.cli import PrefixedConsole, hypervisor_console
    prefixed = PrefixedConsole(out)

    def console(name, data):
        if several:
            prefixed(name, data)         # whole lines, each with its domain's name
        else:
            out.write(data)
            out.flush()
    try:
        if several:
            specs = domain_specs(kernels, args.memory, args.paging, args.cmdline)
            host, domains = api.boot_host(specs, console_sink=console)
        else:
            domains = [api.boot(kernels[0], memory_mb=args.memory, paging=args.paging,
                                cmdline=args.cmdline, audit=args.audit, vm_event_ring=True,
                                console_sink=lambda data: console('', data),
                                include_dirs=args.include_dirs)]
            host = domains[0].host
    except (KernelError, ValueError) as exc:
        print(f'pvshadow: {exc}', file=sys.stderr)
        return 2
    try:
        script = open(args.script) if args.script else None
        if args.log:
            log_file = JsonLog(sys.stdout if args.log == '-' else open(args.log, 'w'))
    except OSError as exc:
        print(f'pvshadow: {exc.filename}: {exc.strerror}', file=sys.stderr)
        return 2
    session = TraceSession(domains[0], log=log_file, host=host, domains=domains,
                           timeout=args.timeout, budget=args.budget)
    xen_console = hypervisor_console(domains)
    try:
        # with the log on stdout, everything else a person reads goes to stderr
        people = sys.stderr if args.log == '-' else sys.stdout
        if args.gdb is not None:
            from pvshadow.tools.gdbstub import serve
            return serve(session, args.gdb, out=people)
        if args.log and not args.script:
            exit_ = session.run()
            while session.several and session.finished is None and \
                    exit_.reason is ExitReason.BREAKPOINT:
                exit_ = session.run()
            print(f'pvshadow: {exit_.describe()}', file=sys.stderr)
            if exit_.reason is ExitReason.INTERRUPTED:
                return 130
            return session.exit_code()
        try:
            if script is not None:
                with script:
                    TraceConsole(session, stdin=script, stdout=people).cmdloop()
            else:
                TraceConsole(session, stdout=people).cmdloop()
        except KeyboardInterrupt:          # Ctrl-C outside a run, in a script or a pipe
            print(file=sys.stderr)
            return 130
        return session.exit_code()
    finally:
        prefixed.flush_partial()
        xen_console.flush_partial()
        if log_file is not None:
            log_file.close()
