"""Building a PV kernel from an asm/ source with keystone (Intel syntax).

Conventions of an asm/ kernel (the shared include sets them up):
- `.include "name"` pulls in asm/include/name (textually, before assembly);
- the image is assembled at VIRT_BASE, entry at the symbol `_start`;
- the symbol `hypercall_page` names a page-aligned page for Xen's stubs.
These play the part of the ELF notes ENTRY, VIRT_BASE and HYPERCALL_PAGE.
"""
import os
import re
import struct

from keystone import KS_ARCH_X86, KS_MODE_64, Ks, KsError

from guests.image import KernelError, KernelImage

VIRT_BASE = 0xFFFFFFFF80000000
INCLUDE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'asm',
                           'include')
_INCLUDE = re.compile(r'^\s*\.include\s+"([^"]+)"\s*$', re.M)
_SYMBOLS = ('_start', 'hypercall_page')
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
    out = []
    for line in source.splitlines():
        quoted = False
        for i, ch in enumerate(line):
            if ch == '"' and (i == 0 or line[i - 1] != '\\'):
                quoted = not quoted
            elif ch == '#' and not quoted:
                line = line[:i]
                break
        out.append(line.rstrip())
    return '\n'.join(out)


def preprocess(source: str, path: str, depth: int = 0) -> str:
    if depth > 8:
        raise KernelError(f'{path}: includes nested too deeply')

    def include(match):
        name = match.group(1)
        inc_path = os.path.join(INCLUDE_DIR, name)
        try:
            with open(inc_path) as f:
                return preprocess(f.read(), inc_path, depth + 1)
        except OSError:
            raise KernelError(f'{path}: cannot include {name!r}') from None
    return _INCLUDE.sub(include, strip_comments(source))


def _load_asm(path: str, text: str, extra_symbols: tuple):
    source = preprocess(text, path)
    check_pitfalls(source, path)
    # Symbol addresses come from a trailer of .quad directives read back after assembly.
    aligned = tuple(name for name in _PAGE_ALIGNED if re.search(rf'^{name}:', source, re.M))
    names = tuple(dict.fromkeys(_SYMBOLS + aligned + extra_symbols))
    trailer = ''.join(f'\n.quad {sym}' for sym in names)
    for _attempt in range(3):
        code = assemble(source + trailer, VIRT_BASE, path)
        body, tail = code[:-8 * len(names)], code[-8 * len(names):]
        symbols = dict(zip(names, struct.unpack(f'<{len(names)}Q', tail)))
        misplaced = [name for name in aligned if symbols[name] & 0xFFF]
        if not misplaced:
            return body, symbols
    # keystone has been seen, once in a long test run, to ignore an .align 4096.
    raise KernelError(f'{path}: keystone placed {", ".join(misplaced)} off a page boundary '
                      f'({symbols[misplaced[0]]:#x}) three times')


def check_pitfalls(source: str, path: str) -> None:
    """Refuse the spellings keystone assembles into something else without a word."""
    for number, line in enumerate(source.splitlines(), 1):
        if line.lstrip().startswith('.'):
            continue
        if _NEGATED_SYMBOL.search(line):
            raise KernelError(f'{path}:{number}: keystone reads a negated symbol operand as a '
                              f'memory load; define the constant with .equ instead: {line.strip()}')
        for operand in _MEMORY_OPERAND.findall(line):
            symbols = [t for t in _TERM.findall(operand)
                       if t.lower() not in _REGISTERS and not t.lower().startswith(('qword', 'dword'))]
            if len(symbols) > 1:
                raise KernelError(f'{path}:{number}: keystone drops all but one symbol in a '
                                  f'memory operand; combine them with .equ: {line.strip()}')


def assemble(source: str, base: int, path: str = '<asm>') -> bytes:
    try:
        encoding, _ = Ks(KS_ARCH_X86, KS_MODE_64).asm(source, base)
    except KsError as exc:
        raise KernelError(f'{path}: keystone cannot assemble it: {exc}') from None
    if not encoding:
        raise KernelError(f'{path}: assembled to nothing')
    return bytes(encoding)


# Labels the include places on page boundaries: checked after every assembly.
_PAGE_ALIGNED = ('hypercall_page', 'shared_info')
_cache = {}


def load_asm(path: str, text: str, extra_symbols=()) -> KernelImage:
    """Assemble a kernel; extra_symbols names labels whose addresses a tool needs.
    Results are cached per source text, so a test that boots one kernel many times
    assembles it once."""
    key = (text, tuple(extra_symbols))
    if key not in _cache:
        _cache[key] = _load_asm(path, text, tuple(extra_symbols))
    body, symbols = _cache[key]
    entry, hypercall_page = symbols['_start'], symbols['hypercall_page']
    return KernelImage(name=path, segments=[(VIRT_BASE, body, len(body))], entry=entry,
                       virt_base=VIRT_BASE, hypercall_page=hypercall_page,
                       notes={'GUEST_OS': 'pvshadow-asm', 'XEN_VERSION': 'xen-3.0',
                              'LOADER': 'generic', 'ENTRY': entry, 'VIRT_BASE': VIRT_BASE,
                              'HYPERCALL_PAGE': hypercall_page},
                       symbols=dict(symbols))
