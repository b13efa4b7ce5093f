"""A loadable PV kernel, whatever it was built from."""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple


class KernelError(Exception):
    """A kernel file that cannot be used: the message is one line for the user."""


@dataclass
class KernelImage:
    name: str
    segments: List[Tuple[int, bytes, int]]    # (virtual address, file bytes, memory size)
    entry: int
    virt_base: int
    hypercall_page: Optional[int] = None
    notes: Dict[str, object] = field(default_factory=dict)
    symbols: Dict[str, int] = field(default_factory=dict)

    @property
    def start(self) -> int:
        return min(vaddr for vaddr, _, _ in self.segments)

    @property
    def end(self) -> int:
        return max(vaddr + memsz for vaddr, _, memsz in self.segments)


def check_image(image: KernelImage, max_bytes: int) -> None:
    """What every loader checks before a builder may trust the image (Xen's libelf
    elf_xen_addr_calc_check): the segments fit the address space without overlapping,
    the whole image is at most max_bytes, and the entry point and the hypercall page
    lie inside it. Raises KernelError with one line."""
    spans = sorted((vaddr, vaddr + memsz) for vaddr, _, memsz in image.segments)
    for start, end in spans:
        if end > 1 << 64:
            raise KernelError(f'{image.name}: a segment at {start:#x} runs past the end of '
                              'the address space')
    for (start, end), (next_start, _) in zip(spans, spans[1:]):
        if next_start < end:
            raise KernelError(f'{image.name}: segments at {start:#x} and {next_start:#x} '
                              'overlap')
    if image.end - image.start > max_bytes:
        raise KernelError(f'{image.name}: the image spans {image.end - image.start:#x} bytes '
                          f'(at most {max_bytes:#x})')
    if not image.start <= image.entry < image.end:
        raise KernelError(f'{image.name}: entry point {image.entry:#x} is outside the image '
                          f'[{image.start:#x}, {image.end:#x})')
    hypercall_page = image.hypercall_page
    if hypercall_page is not None and not image.start <= hypercall_page < image.end:
        raise KernelError(f'{image.name}: hypercall page {hypercall_page:#x} is outside the '
                          f'image [{image.start:#x}, {image.end:#x})')
