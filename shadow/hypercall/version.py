"""HYPERVISOR_xen_version."""
from pvshadow.shadow.abi import xen
from pvshadow.shadow.abi.xen import ENOSYS, XEN_MAJOR, XEN_MINOR

EXTRAVERSION = b'.0-pvshadow'
CAPABILITIES = b'xen-3.0-x86_64 '


def _string(value: bytes, size: int) -> bytes:
    return value[:size - 1].ljust(size, b'\0')


def do_xen_version(v, cmd, arg, *_):
    if cmd == xen.XENVER_version:
        return (XEN_MAJOR << 16) | XEN_MINOR
    if cmd == xen.XENVER_extraversion:
        v.copy_to_guest(arg, _string(EXTRAVERSION, 16))
        return 0
    if cmd == xen.XENVER_capabilities:
        v.copy_to_guest(arg, _string(CAPABILITIES, 1024))
        return 0
    if cmd == xen.XENVER_compile_info:
        # struct xen_compile_info { char compiler[64], compile_by[16], compile_domain[32], compile_date[32]; }
        v.copy_to_guest(arg, _string(b'python', 64) + _string(b'pvshadow', 16) +
                        _string(b'', 32) + _string(b'', 32))
        return 0
    if cmd == xen.XENVER_changeset:
        v.copy_to_guest(arg, _string(b'pvshadow', 64))
        return 0
    if cmd == xen.XENVER_platform_parameters:
        v.copy_to_guest(arg, bytes(xen.xen_platform_parameters(virt_start=xen.HYPERVISOR_VIRT_START)))
        return 0
    if cmd == xen.XENVER_get_features:
        info = v.read_struct(xen.xen_feature_info, arg)
        if info.submap_idx != 0:
            info.submap = 0
        else:
            info.submap = v.domain.features()
        v.copy_to_guest(arg, bytes(info))
        return 0
    if cmd == xen.XENVER_pagesize:
        return 4096
    if cmd == xen.XENVER_guest_handle:
        v.copy_to_guest(arg, bytes(16))
        return 0
    if cmd == xen.XENVER_commandline:
        v.copy_to_guest(arg, bytes(1024))
        return 0
    return -ENOSYS
