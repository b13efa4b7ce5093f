"""Writing a loaded kernel image out as a PV64 ELF: one PT_LOAD per segment and a PT_NOTE
with the Xen notes (xen/include/public/elfnote.h) a domain builder reads: GUEST_OS,
XEN_VERSION, LOADER, VIRT_BASE, ENTRY, HYPERCALL_PAGE; and, when the image has symbols
(an asm kernel's labels), a section per segment with a symbol table, so gdb and objdump
name addresses. The result loads with guests.elf.load_elf, and on a real Xen toolstack."""
import struct

from pvshadow.guests.image import KernelImage
from pvshadow.shadow.abi import xen

_EHDR = struct.Struct('<16sHHIQQQIHHHHHH')
_PHDR = struct.Struct('<IIQQQQQQ')
_SHDR = struct.Struct('<IIQQQQIIQQ')
_SYM = struct.Struct('<IBBHQQ')
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB = 1, 2, 3
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
STB_GLOBAL, STT_NOTYPE = 1, 0
PT_LOAD, PT_NOTE = 1, 4
PF_X, PF_W, PF_R = 1, 2, 4
EM_X86_64, ET_EXEC = 62, 2


def note(kind: int, desc: bytes, name: bytes = b'Xen\0') -> bytes:
    """One ELF note record, name and descriptor padded to 4 bytes."""
    pad = lambda b: b + b'\0' * (-len(b) % 4)            # noqa: E731
    return struct.pack('<III', len(name), len(desc), kind) + pad(name) + pad(desc)


def xen_notes(image: KernelImage) -> bytes:
    records = [note(xen.XEN_ELFNOTE_GUEST_OS, b'pvshadow\0'),
               note(xen.XEN_ELFNOTE_XEN_VERSION, b'xen-3.0\0'),
               note(xen.XEN_ELFNOTE_LOADER, b'generic\0'),
               note(xen.XEN_ELFNOTE_VIRT_BASE, struct.pack('<Q', image.virt_base)),
               note(xen.XEN_ELFNOTE_ENTRY, struct.pack('<Q', image.entry))]
    if image.hypercall_page is not None:
        records.append(note(xen.XEN_ELFNOTE_HYPERCALL_PAGE,
                            struct.pack('<Q', image.hypercall_page)))
    return b''.join(records)


def write_pv_elf(image: KernelImage, notes: bytes = None, symbols: bool = True) -> bytes:
    """The ELF file's bytes. Segments are placed at page-aligned file offsets congruent
    to their addresses, as a linker would."""
    notes = xen_notes(image) if notes is None else notes
    nr_ph = len(image.segments) + 1
    header_end = _EHDR.size + nr_ph * _PHDR.size
    notes_at = header_end
    cursor = notes_at + len(notes)
    phdrs, bodies = [], []
    for vaddr, body, memsz in image.segments:
        offset = cursor + ((vaddr - cursor) % 0x1000)
        phdrs.append(_PHDR.pack(PT_LOAD, PF_R | PF_W | PF_X, offset, vaddr, vaddr, len(body),
                                memsz, 0x1000))
        bodies.append((offset, body))
        cursor = offset + len(body)
    phdrs.append(_PHDR.pack(PT_NOTE, PF_R, notes_at, 0, 0, len(notes), len(notes), 4))
    out = bytearray(_EHDR.size) + b''.join(phdrs) + notes
    for offset, body in bodies:
        out += bytes(offset - len(out)) + body
    shoff, shnum, shstrndx = 0, 0, 0
    if symbols and image.symbols:
        shoff, shnum, shstrndx = _append_sections(out, image, bodies)
    ident = b'\x7fELF' + bytes([2, 1, 1, 0]) + bytes(8)
    out[:_EHDR.size] = _EHDR.pack(ident, ET_EXEC, EM_X86_64, 1, image.entry, _EHDR.size, shoff,
                                  0, _EHDR.size, _PHDR.size, nr_ph, _SHDR.size, shnum, shstrndx)
    return bytes(out)


def _append_sections(out: bytearray, image: KernelImage, bodies) -> tuple:
    """A section per segment, .symtab, .strtab and .shstrtab at the end of out; returns
    (e_shoff, e_shnum, e_shstrndx)."""
    shstr = bytearray(b'\0')

    def name(text: str) -> int:
        shstr.extend(text.encode() + b'\0')
        return len(shstr) - len(text) - 1
    sections = [bytes(_SHDR.size)]
    spans = []
    for i, ((vaddr, body, memsz), (offset, _)) in enumerate(zip(image.segments, bodies)):
        sections.append(_SHDR.pack(name('.text' if i == 0 else f'.text{i}'), SHT_PROGBITS,
                                   SHF_ALLOC | SHF_WRITE | SHF_EXECINSTR, vaddr, offset,
                                   len(body), 0, 0, 16, 0))
        spans.append((vaddr, vaddr + memsz, i + 1))
    strtab = bytearray(b'\0')
    syms = [bytes(_SYM.size)]
    for sym, value in sorted(image.symbols.items(), key=lambda kv: (kv[1], kv[0])):
        index = next((n for start, end, n in spans if start <= value < end), None)
        if index is None:
            continue
        syms.append(_SYM.pack(len(strtab), STB_GLOBAL << 4 | STT_NOTYPE, 0, index, value, 0))
        strtab.extend(sym.encode() + b'\0')
    symtab_index = len(sections)
    out.extend(bytes(-len(out) % 8))
    symtab_at = len(out)
    out.extend(b''.join(syms))
    strtab_at = len(out)
    out.extend(strtab)
    sections.append(_SHDR.pack(name('.symtab'), SHT_SYMTAB, 0, 0, symtab_at,
                               len(syms) * _SYM.size, symtab_index + 1, 1, 8, _SYM.size))
    sections.append(_SHDR.pack(name('.strtab'), SHT_STRTAB, 0, 0, strtab_at, len(strtab), 0,
                               0, 1, 0))
    shstr_index = len(sections)
    shstr_name = name('.shstrtab')
    shstr_at = len(out)
    out.extend(shstr)
    sections.append(_SHDR.pack(shstr_name, SHT_STRTAB, 0, 0, shstr_at, len(shstr), 0, 0, 1,
                               0))
    out.extend(bytes(-len(out) % 8))
    shoff = len(out)
    out.extend(b''.join(sections))
    return shoff, len(sections), shstr_index
