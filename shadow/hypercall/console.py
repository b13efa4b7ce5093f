"""HYPERVISOR_console_io: the hypervisor console (Domain.console_io_write says where the
bytes show: the domain's console until the guest uses its PV console ring)."""
from pvshadow.shadow.abi.xen import CONSOLEIO_read, CONSOLEIO_write, EINVAL, ENOSYS

MAX_WRITE = 1 << 20


def do_console_io(v, cmd, count, buf, *_):
    if cmd == CONSOLEIO_write:
        if count > MAX_WRITE:
            return -EINVAL
        v.domain.console_io_write(v.copy_from_guest(buf, count))
        return 0
    if cmd == CONSOLEIO_read:
        return 0                         # no console input: zero bytes read
    return -ENOSYS
