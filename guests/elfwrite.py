"""Writing a loaded kernel image out as a PV64 ELF: one PT_LOAD per segment and a PT_NOTE
with the Xen notes (xen/include/public/elfnote.h) a domain builder reads: GUEST_OS,
XEN_VERSION, LOADER, VIRT_BASE, ENTRY, HYPERCALL_PAGE. The result loads with
guests.elf.load_elf, and on a real Xen toolstack."""
import struct

from guests.image import KernelImage
from shadow.abi import xen

_EHDR = struct.Struct('<16sHHIQQQIHHHHHH')
_PHDR = struct.Struct('<IIQQQQQQ')
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


def write_pv_elf(image: KernelImage, notes: bytes = None) -> bytes:
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
    ident = b'\x7fELF' + bytes([2, 1, 1, 0]) + bytes(8)
    out = bytearray(_EHDR.pack(ident, ET_EXEC, EM_X86_64, 1, image.entry, _EHDR.size, 0, 0,
                               _EHDR.size, _PHDR.size, nr_ph, 64, 0, 0))
    out += b''.join(phdrs) + notes
    for offset, body in bodies:
        out += bytes(offset - len(out)) + body
    return bytes(out)
