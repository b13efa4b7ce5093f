"""What a kernel source says about how to run it, in its own header comments:

    # pvshadow: --paging shadow --rom rom.bin@0xf00 --cmdline "rom=f00"
    # pvshadow-run: ../configs/backend.cfg ../configs/frontend.cfg

`pvshadow:` lines give `pvshadow run` options (shell words; a file named by --rom or
--romd is relative to the kernel). `pvshadow-run:` names the kernels or configs to run
instead, together on one host (a kernel that needs a peer domain), relative to the
kernel too. run, test, trace, access and the pytest plugin honour both; options given on
the command line win. Only the first HEADER_LINES lines are read, and only from asm
sources (an ELF has no comments).
"""
import os
import shlex
from dataclasses import dataclass, field
from typing import List

from pvshadow.guests.image import KernelError

HEADER_LINES = 60
FILE_OPTIONS = ('--rom', '--romd')


@dataclass
class KernelHeader:
    options: List[str] = field(default_factory=list)
    domains: List[str] = field(default_factory=list)


def kernel_header(path: str) -> KernelHeader:
    header = KernelHeader()
    if not path.endswith(('.S', '.s', '.asm')) or not os.path.isfile(path):
        return header
    here = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            lines = [f.readline() for _ in range(HEADER_LINES)]
    except OSError:
        return header
    for number, line in enumerate(lines, 1):
        text = line.strip()
        for key, into in (('# pvshadow:', header.options), ('# pvshadow-run:', header.domains)):
            if text.startswith(key):
                try:
                    words = shlex.split(text[len(key):])
                except ValueError as exc:
                    raise KernelError(f'{path}:{number}: {key[2:]} header: {exc}') from None
                into.extend(words)
    header.options = _relative_files(header.options, here)
    header.domains = [w if os.path.isabs(w) else os.path.normpath(os.path.join(here, w))
                      for w in header.domains]
    return header


def _relative_files(words: List[str], here: str) -> List[str]:
    out = []
    for i, word in enumerate(words):
        if i and words[i - 1] in FILE_OPTIONS and '@' in word and not os.path.isabs(word):
            word = os.path.join(here, word)
        out.append(word)
    return out
