"""Finding a kernel: an ELF path, an asm/ source path, or the name of a test kernel."""
import os

from pvshadow import data_dir
from pvshadow.guests.asm import load_asm
from pvshadow.guests.elf import load_elf
from pvshadow.guests.image import KernelError, KernelImage

ASM_DIR = data_dir('asm')
MAX_KERNEL_BYTES = 64 << 20


def kernel_names():
    return sorted(name[:-2] for name in os.listdir(ASM_DIR) if name.endswith('.S'))


def resolve(spec: str) -> str:
    if os.path.exists(spec):
        return spec
    candidate = os.path.join(ASM_DIR, spec + '.S')
    if os.sep not in spec and not spec.endswith(('.S', '.elf')) and os.path.exists(candidate):
        return candidate
    if os.sep in spec or '.' in os.path.basename(spec):
        raise KernelError(f'{spec}: no such file')
    raise KernelError(f'{spec}: no such file or test kernel (known: {", ".join(kernel_names())})')


def load_kernel(spec: str, extra_symbols=(), include_dirs=()) -> KernelImage:
    path = resolve(spec)
    if os.path.isdir(path):
        raise KernelError(f'{path}: is a directory')
    try:
        with open(path, 'rb') as f:
            data = f.read(MAX_KERNEL_BYTES + 1)
    except OSError as exc:
        raise KernelError(f'{path}: {exc.strerror}') from None
    if len(data) > MAX_KERNEL_BYTES:
        raise KernelError(f'{path}: larger than {MAX_KERNEL_BYTES >> 20} MiB')
    if data[:4] == b'\x7fELF':
        return load_elf(path, data)
    if path.endswith(('.S', '.s', '.asm')):
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise KernelError(f'{path}: not a text assembly source') from None
        return load_asm(path, text, extra_symbols, include_dirs)
    raise KernelError(f'{path}: neither an ELF file nor an assembly source (.S)')
