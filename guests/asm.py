"""Building a PV kernel from an asm/ source with keystone (Intel syntax).

Conventions of an asm/ kernel (the shared include sets them up):
- `.include "name"` pulls in asm/include/name (textually, before assembly);
- the image is assembled at VIRT_BASE, entry at the symbol `_start`;
- the symbol `hypercall_page` names a page-aligned page for Xen's stubs.
These play the part of the ELF notes ENTRY, VIRT_BASE and HYPERCALL_PAGE.
"""
import marshal
import os
import re
import select
import signal
import struct
import time
from typing import Optional


from pvshadow import data_dir
from pvshadow.guests.asmcheck import Source, check_instructions, undefined_symbol
from pvshadow.guests.image import KernelError, KernelImage, check_image

VIRT_BASE = 0xFFFFFFFF80000000
INCLUDE_DIR = os.path.join(data_dir('asm'), 'include')
_INCLUDE = re.compile(r'^\s*\.include\s+"([^"]+)"\s*$', re.M)
_SYMBOLS = ('_start', 'hypercall_page')
_LABEL = re.compile(r'^\s*([A-Za-z_][\w$]*):', re.M)
# keystone assembles `mov rsi, -NAME` (a negated symbol) as a memory load from NAME.
_NEGATED_SYMBOL = re.compile(r',\s*[-~]\s*\(?\s*[A-Za-z_]')
# ... and drops all but one symbolic term inside a memory operand: [r14 + A + B] -> [r14 + B].
_MEMORY_OPERAND = re.compile(r'\[([^\]]*)\]')
_TERM = re.compile(r'[A-Za-z_.$][\w.$]*')
_REGISTERS = frozenset(
    ['rip', 'eip'] + [f'r{n}{s}' for n in range(8, 16) for s in ('', 'd', 'w', 'b')] +
    [p + r for r in ('ax', 'bx', 'cx', 'dx', 'si', 'di', 'bp', 'sp') for p in ('r', 'e', '')])


def strip_comments(source: str) -> str:
    """Drop `#` comments (to end of line, outside string literals): keystone only
    accepts them on a line of their own."""
    return '\n'.join((_drop_comment(line) if '#' in line else line).rstrip()
                     for line in source.splitlines())


def _drop_comment(line: str) -> str:
    """The line before its first `#` outside a string literal."""
    hash_at = line.index('#')
    if '"' not in line[:hash_at]:           # no string before it (the common case)
        return line[:hash_at]
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"' and (i == 0 or line[i - 1] != '\\'):
            quoted = not quoted
        elif ch == '#' and not quoted:
            return line[:i]
    return line


MAX_SOURCE_BYTES = 4 << 20            # a source with its includes
MAX_OUTPUT_BYTES = 16 << 20           # what .fill, .space, .rept ... may ask keystone for
MAX_ALIGN = 1 << 20
MAX_REPT = 100_000
ASSEMBLY_SECONDS = 3.0                # keystone runs in a child killed after this


def preprocess(source: str, path: str, depth: int = 0, search=()) -> Source:
    """The source with its includes expanded, each line knowing where it came from.
    `.include "name"` is looked for in the including file's directory, then in `search`
    (the -I directories), then in asm/include; only plain relative names."""
    if depth > 8:
        raise KernelError(f'{path}: includes nested too deeply')
    if '\0' in source:
        line = source[:source.index('\0')].count('\n') + 1
        raise KernelError(f'{path}:{line}: a NUL byte in the source')
    out = Source()
    here = os.path.dirname(os.path.abspath(path))
    for number, line in enumerate(strip_comments(source).split('\n'), 1):
        match = _INCLUDE.match(line)
        if not match:
            out.lines.append(line)
            out.origins.append((path, number))
            continue
        name = match.group(1)
        where = f'{path}:{number}'
        if os.path.isabs(name) or os.path.normpath(name) != name or name.startswith('..'):
            raise KernelError(f'{where}: cannot include {name!r} (a relative name without ..)')
        found = [p for p in (os.path.join(d, name) for d in (here, *search, INCLUDE_DIR))
                 if os.path.isfile(p)]
        if not found:
            raise KernelError(f'{where}: cannot include {name!r} (not beside the kernel, in '
                              f'an -I directory or in asm/include)')
        try:
            with open(found[0], encoding='utf-8') as f:
                text = f.read(MAX_SOURCE_BYTES + 1)
        except (OSError, UnicodeDecodeError):
            raise KernelError(f'{where}: cannot include {name!r}') from None
        if len(text) > MAX_SOURCE_BYTES:
            raise KernelError(f'{where}: include {name!r} is larger than '
                              f'{MAX_SOURCE_BYTES >> 20} MiB')
        out.extend(preprocess(text, found[0], depth + 1, search))
        if sum(map(len, out.lines)) > MAX_SOURCE_BYTES:
            raise KernelError(f'{path}: larger than {MAX_SOURCE_BYTES >> 20} MiB with its '
                              'includes')
    return out


def _load_asm(path: str, text: str, extra_symbols: tuple, search=()):
    source = preprocess(text, path, search=search)
    text = source.text
    # Symbol addresses come from a trailer of .quad directives read back after assembly.
    aligned = tuple(name for name in _PAGE_ALIGNED if re.search(rf'^{name}:', text, re.M))
    # every label, so debuggers, crash dumps and written ELFs can name addresses
    labels = tuple(_LABEL.findall(text))
    names = tuple(dict.fromkeys(_SYMBOLS + aligned + extra_symbols + labels))
    missing = [name for name in _SYMBOLS if not re.search(
        rf'^\s*{name}:|^\s*\.(?:equ|set)\s+{name}\s*,', text, re.M)]
    if missing:
        raise KernelError(f'{path}: no {" or ".join(missing)} label (pv.inc defines both)')
    trailer = ''.join(f'\n.quad {sym}' for sym in names)
    cached = _disk_cache_get(text + trailer)
    if cached is not None:
        return cached
    # What keystone would hang or crash on, or silently get wrong: only a source about
    # to be assembled needs the check (a cached one passed it; a change of these rules
    # changes _DISK_CACHE_VERSION).
    check_pitfalls(source, path)
    for _attempt in range(3):
        code = assemble(text + trailer, VIRT_BASE, path, source)
        body, tail = code[:-8 * len(names)], code[-8 * len(names):]
        symbols = dict(zip(names, struct.unpack(f'<{len(names)}Q', tail)))
        misplaced = [name for name in aligned if symbols[name] & 0xFFF]
        if not misplaced:
            _disk_cache_put(text + trailer, body, symbols)
            return body, symbols
    # keystone has been seen, once in a long test run, to ignore an .align 4096.
    raise KernelError(f'{path}: keystone placed {", ".join(misplaced)} off a page boundary '
                      f'({symbols[misplaced[0]]:#x}) three times')


_DIRECTIVE = re.compile(r'^\s*(?:[\w.$]+:\s*)?(\.[a-z0-9]+)\b(.*)$', re.I)


def _literal(text: str):
    """A plain integer literal, or None (an expression: bounded by the time limit)."""
    try:
        return int(text.strip(), 0)
    except ValueError:
        return None


def check_directive(directive: str, args: str, where: str, line: str) -> int:
    """The bytes a sizing directive asks for (0 when unknown); refuses what keystone would
    hang or crash on: huge fills, alignments and repeat counts."""
    parts = args.split(',')
    first = _literal(parts[0]) if parts and parts[0].strip() else None
    directive = directive.lower()
    if directive in ('.fill', '.space', '.skip', '.zero'):
        size = _literal(parts[1]) if directive == '.fill' and len(parts) > 1 else 1
        size = min(max(size or 1, 1), 8)
        if first is not None and (first < 0 or first * size > MAX_OUTPUT_BYTES):
            raise KernelError(f'{where}: {directive} of {first:#x} bytes is too large (at most '
                              f'{MAX_OUTPUT_BYTES:#x}): {line.strip()}')
        return (first or 0) * size
    if directive in ('.align', '.balign', '.p2align'):
        alignment = 1 << first if directive == '.p2align' and first is not None and \
            0 <= first < 64 else first
        if first is not None and not 0 <= (alignment or 0) <= MAX_ALIGN:
            raise KernelError(f'{where}: an alignment of {first:#x} is too large (at most '
                              f'{MAX_ALIGN:#x}): {line.strip()}')
        return alignment or 0
    if directive == '.rept' and first is not None and not 0 <= first <= MAX_REPT:
        raise KernelError(f'{where}: .rept {first} repeats too often (at most {MAX_REPT})')
    return 0


def _unterminated(line: str) -> bool:
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"' and (i == 0 or line[i - 1] != '\\'):
            quoted = not quoted
    return quoted


_KEYWORD_LABEL = re.compile(r'\s*(byte|word|dword|qword|xword|tbyte|oword|ptr)\s*:', re.I)


def check_pitfalls(source: Source, path: str) -> None:
    """Refuse the spellings keystone assembles into something else without a word, and
    the inputs it hangs or crashes on, naming the file and line each came from."""
    total = 0
    for number, line in enumerate(source.lines, 1):
        where = source.where(number)
        if _unterminated(line):
            raise KernelError(f'{where}: unterminated string: {line.strip()}')
        directive = _DIRECTIVE.match(line)
        if directive:
            total += check_directive(directive.group(1), directive.group(2), where, line)
            if total > MAX_OUTPUT_BYTES:
                raise KernelError(f'{where}: the image grows too large (over '
                                  f'{MAX_OUTPUT_BYTES:#x} bytes)')
        if line.lstrip().startswith('.'):
            continue
        label = _KEYWORD_LABEL.match(line)
        if label:
            raise KernelError(f'{where}: {label.group(1)!r} is an operand-size keyword to '
                              f'keystone, which drops the whole source with it as a label; '
                              f'rename it')
        if _NEGATED_SYMBOL.search(line):
            raise KernelError(f'{where}: keystone reads a negated symbol operand as a '
                              f'memory load; define the constant with .equ instead: {line.strip()}')
        for operand in _MEMORY_OPERAND.findall(line):
            symbols = [t for t in _TERM.findall(operand)
                       if t.lower() not in _REGISTERS and not t.lower().startswith(('qword', 'dword'))]
            if len(symbols) > 1:
                raise KernelError(f'{where}: keystone drops all but one symbol in a '
                                  f'memory operand; combine them with .equ: {line.strip()}')


def _keystone(text: str, base: int, source: Optional[Source]) -> bytes:
    """In the child: b'O' + the encoding; b'L<line>\\t' + why for a line the checks
    refuse (guests.asmcheck); b'E' + keystone's message when no line could be named."""
    from keystone import KS_ARCH_X86, KS_MODE_64, Ks, KsError
    try:
        encoding, _ = Ks(KS_ARCH_X86, KS_MODE_64).asm(text, base)
    except KsError as exc:
        found = check_instructions(source, failed=True) if source is not None else None
        if found:
            return f'L{found[0]}\t{found[1]}'.encode()
        return b'E' + str(exc).encode()
    encoding = bytes(encoding or b'')
    if len(encoding) > MAX_OUTPUT_BYTES:
        return b'E' + f'the image is larger than {MAX_OUTPUT_BYTES:#x} bytes'.encode()
    found = check_instructions(source) if source is not None else None
    if found:
        return f'L{found[0]}\t{found[1]}'.encode()
    return b'O' + encoding


def assemble(text: str, base: int, path: str = '<asm>', source: Optional[Source] = None) -> bytes:
    """keystone, in a forked child with a time limit: keystone hangs or crashes on some
    inputs and cannot be interrupted in-process. The child is always reaped. With the
    preprocessed source, errors name the user's file and line."""
    data = _sandboxed(lambda: _keystone(text, base, source), path)
    if data[:1] == b'L':
        number, why = data[1:].decode(errors='replace').split('\t', 1)
        raise KernelError(f'{source.where(int(number))}: {why}')
    if data[:1] == b'E':
        message = data[1:].decode(errors='replace')
        undefined = undefined_symbol(source) if source is not None and \
            'SYMBOL_MISSING' in message else None
        if undefined:
            name, number = undefined
            raise KernelError(f'{source.where(number)}: undefined symbol {name!r}')
        raise KernelError(f'{path}: keystone cannot assemble it: {message}')
    if len(data) == 1:
        raise KernelError(f'{path}: assembled to nothing')
    return data[1:]


def _sandboxed(work, path: str) -> bytes:
    """work() in a forked child, killed after ASSEMBLY_SECONDS; its bytes."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:                                       # the child
        try:
            os.close(read_end)
            data = work()
            with os.fdopen(write_end, 'wb') as out:
                out.write(data)
        finally:
            os._exit(0)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + ASSEMBLY_SECONDS
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                raise KernelError(f'{path}: keystone did not finish within '
                                  f'{ASSEMBLY_SECONDS:g} s')
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    data = b''.join(chunks)
    if not data:
        why = f'signal {os.WTERMSIG(status)}' if os.WIFSIGNALED(status) else 'no answer'
        raise KernelError(f'{path}: keystone crashed assembling it ({why})')
    return data


# Labels the include places on page boundaries: checked after every assembly.
_PAGE_ALIGNED = ('hypercall_page', 'shared_info')
_cache = {}
# Assembled kernels are also kept on disk, keyed by the preprocessed source (includes
# and the symbol trailer in it) and this format's version, so a kernel is assembled once
# per machine, not once per run: keystone in its sandbox is most of a short run's time.
_DISK_CACHE_VERSION = 2                 # 2: marshal, not JSON (json's import is 2 ms a run)

try:                                    # the built-in SHA-256: hashlib would load OpenSSL
    from _sha2 import sha256            # first, 3 ms of every run's start (3.12+)
except ImportError:
    try:
        from _sha256 import sha256      # (3.11)
    except ImportError:
        from hashlib import sha256


def _disk_cache_path(text: str) -> Optional[str]:
    if os.environ.get('PVSHADOW_NO_CACHE'):
        return None
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    digest = sha256(f'{_DISK_CACHE_VERSION}\0{text}'.encode()).hexdigest()
    return os.path.join(base, 'pvshadow', 'asm', digest + '.marshal')


def _disk_cache_get(text: str):
    path = _disk_cache_path(text)
    try:
        with open(path, 'rb') as f:
            body, symbols = marshal.load(f)
        if not isinstance(body, bytes) or not all(
                isinstance(k, str) and isinstance(v, int) for k, v in symbols.items()):
            return None
        return body, symbols
    except (OSError, TypeError, ValueError, EOFError, AttributeError):
        return None                      # absent, unreadable or damaged: assemble again


def _disk_cache_put(text: str, body: bytes, symbols: dict) -> None:
    path = _disk_cache_path(text)
    if path is None:
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f'{path}.{os.getpid()}.tmp'
        with open(tmp, 'wb') as f:
            marshal.dump((bytes(body), dict(symbols)), f)
        os.replace(tmp, path)
    except OSError:
        pass                             # a read-only home: no cache, nothing lost


def load_asm(path: str, text: str, extra_symbols=(), include_dirs=()) -> KernelImage:
    """Assemble a kernel; extra_symbols names labels whose addresses a tool needs;
    include_dirs are searched (after the kernel's own directory) by .include. Results
    are cached per source and place, so a test that boots one kernel many times
    assembles it once."""
    key = (text, os.path.dirname(os.path.abspath(path)), tuple(extra_symbols),
           tuple(include_dirs))
    if key not in _cache:
        _cache[key] = _load_asm(path, text, tuple(extra_symbols), tuple(include_dirs))
    body, symbols = _cache[key]
    entry, hypercall_page = symbols['_start'], symbols['hypercall_page']
    image = KernelImage(name=path, segments=[(VIRT_BASE, body, len(body))], entry=entry,
                       virt_base=VIRT_BASE, hypercall_page=hypercall_page,
                       notes={'GUEST_OS': 'pvshadow-asm', 'XEN_VERSION': 'xen-3.0',
                              'LOADER': 'generic', 'ENTRY': entry, 'VIRT_BASE': VIRT_BASE,
                              'HYPERCALL_PAGE': hypercall_page},
                       symbols=dict(symbols))
    check_image(image, MAX_OUTPUT_BYTES)
    return image
