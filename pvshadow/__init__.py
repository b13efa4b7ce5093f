"""pvshadow: a shadow-paging hypervisor for paravirtualised x86-64 guests, on Unicorn.

One import namespace: the hypervisor is pvshadow.shadow, the domain builder
pvshadow.guests, the front ends pvshadow.tools, and the built-in test kernels and configs
are the package data pvshadow.asm and pvshadow.configs. In a checkout those directories
sit at the top of the repository, beside this one: the namespace then reaches them
there, so the tree runs without being installed.
"""
import os

_here = os.path.dirname(os.path.abspath(__file__))
_checkout = os.path.dirname(_here)
if os.path.isfile(os.path.join(_checkout, 'pyproject.toml')) and \
        os.path.isdir(os.path.join(_checkout, 'shadow', 'paging')):
    __path__.append(_checkout)


def data_dir(name: str) -> str:
    """Where the package's data directory `name` (asm, configs) is, installed or not."""
    for base in __path__:
        path = os.path.join(base, name)
        if os.path.isdir(path):
            return path
    raise FileNotFoundError(f'pvshadow has no {name}/ directory')
