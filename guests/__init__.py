"""The domain builder: PV kernels from Xen ELF images or asm/ sources, laid out as Xen does."""
