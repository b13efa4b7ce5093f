"""Loading a PV kernel from an ELF file with Xen ELF notes (xen/include/public/elfnote.h)."""
import io
import struct


from pvshadow.guests.image import KernelError, KernelImage, check_image
from pvshadow.shadow.abi import xen

NUMERIC_NOTES = {xen.XEN_ELFNOTE_ENTRY: 'ENTRY', xen.XEN_ELFNOTE_HYPERCALL_PAGE: 'HYPERCALL_PAGE',
                 xen.XEN_ELFNOTE_VIRT_BASE: 'VIRT_BASE', xen.XEN_ELFNOTE_PADDR_OFFSET: 'PADDR_OFFSET',
                 xen.XEN_ELFNOTE_INIT_P2M: 'INIT_P2M', xen.XEN_ELFNOTE_HV_START_LOW: 'HV_START_LOW',
                 xen.XEN_ELFNOTE_L1_MFN_VALID: 'L1_MFN_VALID',
                 xen.XEN_ELFNOTE_SUSPEND_CANCEL: 'SUSPEND_CANCEL',
                 xen.XEN_ELFNOTE_MOD_START_PFN: 'MOD_START_PFN',
                 xen.XEN_ELFNOTE_PHYS32_ENTRY: 'PHYS32_ENTRY'}
STRING_NOTES = {xen.XEN_ELFNOTE_XEN_VERSION: 'XEN_VERSION', xen.XEN_ELFNOTE_GUEST_OS: 'GUEST_OS',
                xen.XEN_ELFNOTE_GUEST_VERSION: 'GUEST_VERSION', xen.XEN_ELFNOTE_LOADER: 'LOADER',
                xen.XEN_ELFNOTE_PAE_MODE: 'PAE_MODE', xen.XEN_ELFNOTE_FEATURES: 'FEATURES',
                xen.XEN_ELFNOTE_BSD_SYMTAB: 'BSD_SYMTAB'}


def iter_note_records(blob: bytes):
    """(name, type, desc) of each ELF note record in blob. Parsed here rather than by
    pyelftools, which renames note types 1-5 after GNU notes whatever the owner. Bytes
    left over that cannot hold a record header are a truncated note."""
    pos = 0
    while pos + 12 <= len(blob):
        namesz, descsz, kind = struct.unpack_from('<III', blob, pos)
        pos += 12
        name_end = pos + namesz
        desc_start = pos + ((namesz + 3) & ~3)
        desc_end = desc_start + descsz
        if desc_end > len(blob):
            raise KernelError('truncated ELF note')
        yield blob[pos:name_end].rstrip(b'\0'), kind, blob[desc_start:desc_end]
        pos = desc_start + ((descsz + 3) & ~3)
    if pos < len(blob):
        raise KernelError(f'truncated ELF note header ({len(blob) - pos} bytes left over)')


MAX_PROGRAM_HEADERS = 64
MAX_IMAGE_BYTES = 1 << 30                 # a PV kernel's loaded image, at most


def _program_headers(path: str, elf, size: int) -> list:
    """Every program header, each checked against the file before any is read: the
    table itself and each segment's bytes lie inside the file, and a PT_LOAD's file
    size is at most its memory size."""
    phnum, phentsize, phoff = elf['e_phnum'], elf['e_phentsize'], elf['e_phoff']
    if phnum > MAX_PROGRAM_HEADERS:
        raise KernelError(f'{path}: {phnum} program headers (at most {MAX_PROGRAM_HEADERS})')
    if phnum and (phentsize != 56 or phoff + phnum * phentsize > size):
        raise KernelError(f'{path}: the program headers lie past the end of the file')
    headers = [elf.get_segment(i).header for i in range(phnum)]
    for i, h in enumerate(headers):
        if h['p_type'] not in ('PT_LOAD', 'PT_NOTE'):
            continue
        if h['p_offset'] + h['p_filesz'] > size:
            raise KernelError(f'{path}: segment {i} ({h["p_type"]}) lies past the end of the '
                              f'file ({h["p_offset"]:#x} + {h["p_filesz"]:#x} > {size:#x})')
        if h['p_type'] == 'PT_LOAD' and h['p_filesz'] > h['p_memsz']:
            raise KernelError(f'{path}: segment {i}: file size {h["p_filesz"]:#x} larger than '
                              f'its memory size {h["p_memsz"]:#x}')
    return headers


def _read_notes(path: str, data: bytes, headers) -> dict:
    notes = {}
    blobs = [data[h['p_offset']:h['p_offset'] + h['p_filesz']] for h in headers
             if h['p_type'] == 'PT_NOTE']
    for blob in blobs:
        try:
            records = list(iter_note_records(blob))
        except KernelError as exc:
            raise KernelError(f'{path}: {exc}') from None
        for name, kind, desc in records:
            if name != b'Xen':
                continue
            if kind in NUMERIC_NOTES:
                if len(desc) not in (4, 8):
                    raise KernelError(f'{path}: Xen note {NUMERIC_NOTES[kind]} has a '
                                      f'{len(desc)}-byte value')
                notes[NUMERIC_NOTES[kind]] = struct.unpack('<Q' if len(desc) == 8 else '<I', desc)[0]
            elif kind in STRING_NOTES:
                notes[STRING_NOTES[kind]] = desc.split(b'\0', 1)[0].decode('ascii', 'replace')
            else:
                notes[f'NOTE_{kind}'] = desc.hex()
    return notes


def _section_notes(path: str, elf, data: bytes) -> list:
    """SHT_NOTE sections' bytes, for a kernel whose notes have no PT_NOTE segment."""
    if elf['e_shnum'] > 256 or elf['e_shoff'] + elf['e_shnum'] * elf['e_shentsize'] > len(data):
        return []
    blobs = []
    for section in elf.iter_sections():
        if section['sh_type'] == 'SHT_NOTE' and \
                section['sh_offset'] + section['sh_size'] <= len(data):
            blobs.append({'p_type': 'PT_NOTE', 'p_offset': section['sh_offset'],
                          'p_filesz': section['sh_size']})
    return blobs


MAX_SYMBOLS = 1 << 17


def _symbols(elf, size: int) -> dict:
    from elftools.common.exceptions import ELFError
    """name -> address from .symtab, for debuggers and crash dumps; a table that does not
    fit the file, or is absurdly large, is ignored (the kernel runs without names)."""
    try:
        if elf['e_shnum'] > 256 or elf['e_shoff'] + elf['e_shnum'] * elf['e_shentsize'] > size:
            return {}
        table = elf.get_section_by_name('.symtab')
        if table is None or table['sh_offset'] + table['sh_size'] > size or \
                table.num_symbols() > MAX_SYMBOLS:
            return {}
        return {sym.name: sym['st_value'] for sym in table.iter_symbols()
                if sym.name and sym['st_info']['type'] in ('STT_NOTYPE', 'STT_FUNC',
                                                           'STT_OBJECT')
                and sym['st_shndx'] != 'SHN_UNDEF'}
    except (ELFError, struct.error, ValueError, KeyError, IndexError, OverflowError,
            TypeError, AttributeError, UnicodeDecodeError):
        return {}


def load_elf(path: str, data: bytes) -> KernelImage:
    # pyelftools is loaded only when an ELF is (the built-in kernels are assembled)
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    try:
        elf = ELFFile(io.BytesIO(data))
        if elf.elfclass != 64 or elf['e_machine'] != 'EM_X86_64':
            raise KernelError(f'{path}: not an x86-64 ELF (class {elf.elfclass}, '
                              f'machine {elf["e_machine"]})')
        headers = _program_headers(path, elf, len(data))
        note_headers = [h for h in headers if h['p_type'] == 'PT_NOTE'] or \
            _section_notes(path, elf, data)
        notes = _read_notes(path, data, note_headers)
        loads = [h for h in headers if h['p_type'] == 'PT_LOAD']
        segments_raw = [(h['p_paddr'], data[h['p_offset']:h['p_offset'] + h['p_filesz']],
                         h['p_memsz']) for h in loads]
        e_entry = elf['e_entry']
    except ELFError as exc:
        raise KernelError(f'{path}: malformed ELF: {exc}') from None
    except (struct.error, ValueError, KeyError, IndexError, OverflowError, TypeError) as exc:
        raise KernelError(f'{path}: malformed ELF: {exc}') from None
    if not notes:
        raise KernelError(f'{path}: not a Xen PV kernel (no Xen ELF notes)')
    if notes.get('XEN_VERSION', 'xen-3.0') != 'xen-3.0':
        raise KernelError(f'{path}: unsupported XEN_VERSION {notes["XEN_VERSION"]!r}')
    if not segments_raw:
        raise KernelError(f'{path}: no loadable segments')
    virt_base = notes.get('VIRT_BASE', 0)
    paddr_offset = notes.get('PADDR_OFFSET', virt_base)
    # Xen places a segment at its physical address moved into the virtual base.
    segments = [((paddr - paddr_offset + virt_base) & 0xFFFFFFFFFFFFFFFF, body, memsz)
                for paddr, body, memsz in segments_raw]
    image = KernelImage(name=path, segments=segments, entry=notes.get('ENTRY', e_entry),
                        virt_base=virt_base, hypercall_page=notes.get('HYPERCALL_PAGE'),
                        notes=notes, symbols=_symbols(elf, len(data)))
    check_image(image, MAX_IMAGE_BYTES)
    return image
