"""Loading a PV kernel from an ELF file with Xen ELF notes (xen/include/public/elfnote.h)."""
import io
import struct

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from guests.image import KernelError, KernelImage
from shadow.abi import xen

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
    pyelftools, which renames note types 1-5 after GNU notes whatever the owner."""
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


def _read_notes(elf: ELFFile, path: str) -> dict:
    notes = {}
    blobs = [s.data() for s in elf.iter_segments() if s['p_type'] == 'PT_NOTE']
    if not blobs:
        blobs = [s.data() for s in elf.iter_sections() if s['sh_type'] == 'SHT_NOTE']
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


def load_elf(path: str, data: bytes) -> KernelImage:
    try:
        elf = ELFFile(io.BytesIO(data))
        if elf.elfclass != 64 or elf['e_machine'] != 'EM_X86_64':
            raise KernelError(f'{path}: not an x86-64 ELF (class {elf.elfclass}, '
                              f'machine {elf["e_machine"]})')
        notes = _read_notes(elf, path)
        loads = [s for s in elf.iter_segments() if s['p_type'] == 'PT_LOAD']
        segments_raw = [(s['p_paddr'], s['p_vaddr'], s.data(), s['p_memsz']) for s in loads]
    except ELFError as exc:
        raise KernelError(f'{path}: malformed ELF: {exc}') from None
    except (struct.error, ValueError, KeyError, IndexError) as exc:
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
                for paddr, _vaddr, body, memsz in segments_raw]
    entry = notes.get('ENTRY', elf['e_entry'])
    image = KernelImage(name=path, segments=segments, entry=entry, virt_base=virt_base,
                        hypercall_page=notes.get('HYPERCALL_PAGE'), notes=notes)
    if not image.start <= entry < image.end:
        raise KernelError(f'{path}: entry point {entry:#x} is outside the image')
    return image
