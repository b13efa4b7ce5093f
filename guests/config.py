"""xl-style domain configuration files: what to build, one domain a file.

    name = "backend"
    kernel = "pingpong"          # a test-kernel name, an asm/ source or a PV ELF
    memory = 8                   # MiB
    vcpus = 2                    # the most it may bring up (4 when absent)
    extra = "xst=1 rol=0"        # the command line (cmdline = ... too)
    paging = "shadow"            # pvshadow: direct or shadow
    peer = "frontend"            # pvshadow: written to the domain's xenstore home as the
                                 # other domain's domid, so the two can find each other
    privileged = 1               # pvshadow: the control domain (may act on every domain)
    target = "frontend"          # pvshadow: XEN_DOMCTL_set_target, rights over that domain
    targets = "client other"     # pvshadow: a target set (add_target), rights over each
    devices = "dma"              # pvshadow: a DMA engine it drives (shadow.dma); its
                                 # register page's frame is in its home: device/dma/mfn
    type = "pv"                  # xl's; only "pv" is accepted
    loader = "generic"           # xl's legacy key (XTF's configs carry it): ignored

Values are xl's: quoted strings, integers; `#` starts a comment. A relative kernel path
is taken from the file's directory. An unknown key or a bad value is refused with a
one-line message.
"""
import ast
import os
from dataclasses import dataclass

from pvshadow.guests.image import KernelError

PAGING_MODES = ('direct', 'shadow', 'translated')


@dataclass
class DomainSpec:
    kernel: str
    name: str = ''
    memory_mb: int = 16
    vcpus: int = 4                # the most vCPUs the kernel may bring up
    cmdline: str = ''
    paging: str = 'direct'
    peer: str = ''
    privileged: bool = False
    target: str = ''
    targets: tuple = ()
    devices: tuple = ()


_KEYS = {'name': str, 'kernel': str, 'memory': int, 'vcpus': int, 'extra': str,
         'cmdline': str, 'paging': str, 'peer': str, 'privileged': int, 'target': str,
         'targets': str, 'devices': str, 'type': str, 'loader': str}
DEVICES = ('dma',)


def is_config(path: str) -> bool:
    return path.endswith('.cfg')


def load_config(path: str) -> DomainSpec:
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read(1 << 20)
    except (OSError, UnicodeDecodeError) as exc:
        raise KernelError(f'{path}: {getattr(exc, "strerror", None) or exc}') from None
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        key, sep, raw = (part.strip() for part in line.partition('='))
        if not sep or key not in _KEYS:
            raise KernelError(f'{path}:{number}: expected one of {", ".join(_KEYS)} = value')
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise KernelError(f'{path}:{number}: {raw!r} is not a quoted string or a number') from None
        if not isinstance(value, _KEYS[key]) or isinstance(value, bool):
            raise KernelError(f'{path}:{number}: {key} wants a {_KEYS[key].__name__}')
        values[key] = value
    if 'kernel' not in values:
        raise KernelError(f'{path}: no kernel = "..." line')
    kernel = values['kernel']
    beside = os.path.join(os.path.dirname(path), kernel)
    if not os.path.isabs(kernel) and os.path.exists(beside):
        kernel = beside
    spec = DomainSpec(kernel=kernel, name=values.get('name', ''),
                      memory_mb=values.get('memory', 16), vcpus=values.get('vcpus', 4),
                      cmdline=values.get('extra', values.get('cmdline', '')),
                      paging=values.get('paging', 'direct'), peer=values.get('peer', ''),
                      privileged=bool(values.get('privileged', 0)),
                      target=values.get('target', ''),
                      targets=tuple(values.get('targets', '').replace(',', ' ').split()),
                      devices=tuple(values.get('devices', '').replace(',', ' ').split()))
    for device in spec.devices:
        if device not in DEVICES:
            raise KernelError(f'{path}: devices may name {", ".join(DEVICES)}, not {device!r}')
    if values.get('type', 'pv') != 'pv':
        raise KernelError(f'{path}: type must be "pv" (only PV guests run here), '
                          f'not {values["type"]!r}')
    if spec.paging not in PAGING_MODES:
        raise KernelError(f'{path}: paging must be direct, shadow or translated, not {spec.paging!r}')
    if values.get('privileged', 0) not in (0, 1):
        raise KernelError(f'{path}: privileged must be 0 or 1')
    if spec.memory_mb <= 0 or not 1 <= spec.vcpus <= 4:
        raise KernelError(f'{path}: memory must be positive and vcpus 1 to 4')
    return spec


def domain_specs(kernels, memory_mb: int = 16, paging: str = 'direct',
                 cmdline: str = '') -> list:
    """A DomainSpec for each of a command line's kernels: a config file as it says, a
    kernel with the command line's options."""
    return [load_config(k) if is_config(k) else
            DomainSpec(kernel=k, memory_mb=memory_mb, paging=paging, cmdline=cmdline)
            for k in kernels]
