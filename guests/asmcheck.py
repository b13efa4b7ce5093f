"""Assembler diagnostics: a kernel source's lines traced back to the file and line they
came from (through .include), and the checks that turn keystone's silence or its
line-less errors into a sentence about the user's line.

keystone reports an error without a line, and assembles some malformed operands into
something else without a word (`mov rax, [rbx+` becomes `[rbx]`). So, when keystone
refuses a source, each instruction line is assembled on its own (with every symbol
resolved to a stand-in) to find the one it refuses; an undefined symbol is named; and
every instruction keystone accepted is disassembled with capstone and must use every
register its source line names.
"""
import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple


REGISTERS = frozenset(
    ['rip'] + [f'r{n}{s}' for n in range(8, 16) for s in ('', 'd', 'w', 'b')] +
    [p + r for r in ('ax', 'bx', 'cx', 'dx', 'si', 'di', 'bp', 'sp') for p in ('r', 'e', '')] +
    ['al', 'bl', 'cl', 'dl', 'ah', 'bh', 'ch', 'dh', 'sil', 'dil', 'bpl', 'spl'] +
    [f'xmm{n}' for n in range(16)] + [f'cr{n}' for n in (0, 2, 3, 4, 8)] +
    [f'dr{n}' for n in range(8)] + ['cs', 'ds', 'es', 'fs', 'gs', 'ss'])
KEYWORDS = frozenset(['ptr', 'byte', 'word', 'dword', 'qword', 'xmmword', 'offset', 'rep',
                      'repe', 'repne', 'repz', 'repnz', 'lock', 'short', 'near', 'far'])
_IDENTIFIER = re.compile(r'(?<![\w.$])([A-Za-z_.$][\w.$]*)')
_LABEL_DEF = re.compile(r'^\s*([A-Za-z_.$][\w.$]*):')
_CONSTANT_DEF = re.compile(r'^\s*\.(?:equ|set)\s+([A-Za-z_.$][\w.$]*)\s*,', re.I)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_DIRECTIVE_LINE = re.compile(r'^\s*\.')


@dataclass
class Source:
    """Preprocessed source lines, each with the (file, line) it came from."""
    lines: List[str] = field(default_factory=list)
    origins: List[Tuple[str, int]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return '\n'.join(self.lines)

    def where(self, number: int) -> str:
        """'file:line' of the 1-based line number in the preprocessed text."""
        if 1 <= number <= len(self.origins):
            path, line = self.origins[number - 1]
            return f'{path}:{line}'
        return '<trailer>'

    def extend(self, other: 'Source') -> None:
        self.lines += other.lines
        self.origins += other.origins


def instruction_text(line: str) -> str:
    """The instruction on a line, without a leading label; '' for none."""
    match = _LABEL_DEF.match(line)
    text = line[match.end():] if match else line
    return '' if _DIRECTIVE_LINE.match(text) else text.strip()


def incomplete_operand(text: str) -> Optional[str]:
    """Why an operand is malformed in a way keystone assembles silently, or None."""
    if text.count('[') != text.count(']'):
        return 'an unclosed memory operand'
    for operand in re.findall(r'\[([^\]]*)\]', text):
        stripped = operand.strip()
        if not stripped or stripped[-1] in '+-*' or stripped[0] in '+*':
            return f'an incomplete memory operand [{operand}]'
    if re.search(r'[+\-*,]\s*$', text):
        return 'an operand cut short'
    return None


_PREFIXES = {'rep', 'repe', 'repz', 'repne', 'repnz', 'lock', 'data16', 'addr32'}


def undefined_symbol(source: Source) -> Optional[Tuple[str, int]]:
    """(name, line number) of the first symbol used but never defined."""
    defined = set()
    for line in source.lines:
        for pattern in (_LABEL_DEF, _CONSTANT_DEF):
            match = pattern.match(line)
            if match:
                defined.add(match.group(1))
    for number, line in enumerate(source.lines, 1):
        text = _STRING.sub('""', line)
        label = _LABEL_DEF.match(text)
        if label:
            text = text[label.end():]
        constant = _CONSTANT_DEF.match(text)
        if constant:
            text = text[constant.end():]
        words = _IDENTIFIER.findall(text)
        if not words:
            continue
        # the first word is the mnemonic or directive, after any prefix (rep movsb)
        operands = words[2:] if words[0].lower() in _PREFIXES else words[1:]
        for word in operands:
            if word.lower() in REGISTERS or word.lower() in KEYWORDS or word in defined:
                continue
            return word, number
    return None


def _resolve_anything(symbol, value):
    value[0] = 0x1000
    return True


def check_instructions(source: Source, failed: bool = False) -> Optional[Tuple[int, str]]:
    """(line number, why) for the first instruction that is malformed, that keystone
    assembles without a register its source names, or (when the whole source `failed`)
    that keystone refuses on its own; None when every one is right. Runs keystone: call
    it in the sandboxed child (guests.asm)."""
    from capstone import CS_ARCH_X86, CS_MODE_64, Cs
    from keystone import KS_ARCH_X86, KS_MODE_64, Ks, KsError
    ks = Ks(KS_ARCH_X86, KS_MODE_64)
    ks.sym_resolver = _resolve_anything
    md = Cs(CS_ARCH_X86, CS_MODE_64)
    constants = None
    for number, line in enumerate(source.lines, 1):
        text = instruction_text(line)
        if not text:
            continue
        why = incomplete_operand(text)
        if why:
            return number, f'{why}: {text}'
        try:
            encoding, _ = ks.asm(text, 0x100000)
        except KsError as exc:
            if not failed:
                continue                  # needs its context (an .equ expression): fine whole
            if constants is None:
                constants = '\n'.join(l for l in source.lines if _CONSTANT_DEF.match(l))
            try:
                ks.asm(constants + '\n' + text, 0x100000)
                continue
            except KsError:
                return number, f'keystone cannot assemble it ({exc}): {text}'
        if not encoding:
            continue
        insns = list(md.disasm(bytes(encoding), 0x100000))
        shown = ' '.join(f'{i.mnemonic} {i.op_str}' for i in insns).lower()
        named = {w.lower() for w in _IDENTIFIER.findall(_STRING.sub('', text))[1:]
                 if w.lower() in REGISTERS}
        missing = sorted(r for r in named if not re.search(rf'\b{r}\b', shown))
        if missing:
            return number, (f'keystone assembled it as "{shown}", without '
                            f'{", ".join(missing)}: {text}')
    return None
