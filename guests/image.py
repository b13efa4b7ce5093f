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
