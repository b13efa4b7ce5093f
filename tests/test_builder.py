"""The start-of-day layout and the hypercall page follow Xen's."""
import struct

from pvshadow.guests.builder import build_domain, plan_layout
from pvshadow.guests.hypercall_page import hypercall_page
from pvshadow.guests.kernels import load_kernel
from pvshadow.shadow.abi import xen
from pvshadow.shadow.host import Host
from pvshadow.shadow.paging.x86 import _PAGE_RW, walk


def test_hypercall_stubs_are_xens_64bit_pv_stubs():
    page = hypercall_page()
    console = page[18 * 32:18 * 32 + 14]
    assert console == b'\x51\x41\x53\xb8' + struct.pack('<I', 18) + b'\x0f\x05\x41\x5b\x59\xc3'
    iret = page[23 * 32:23 * 32 + 11]
    assert iret == b'\x51\x41\x53\x50\xb8' + struct.pack('<I', 23) + b'\x0f\x05'


def test_boot_layout_is_ordered_aligned_and_padded():
    image = load_kernel('hello')
    lay = plan_layout(image, 4096)
    order = [lay.p2m, lay.start_info, lay.xenstore, lay.console, lay.page_tables, lay.stack]
    assert order == sorted(order) and all(a % 4096 == 0 for a in order)
    assert image.end <= lay.p2m
    assert lay.v_end % (4 << 20) == 0 and lay.v_end - (lay.stack + 4096) >= 512 * 1024


def test_start_info_and_mappings_match_the_layout():
    host = Host(64)
    d = build_domain(host, load_kernel('hello'), memory_mb=16, cmdline='console=hvc0')
    lay = d.layout
    rip, rsp, rsi = d.entry
    assert rsi == lay.start_info and rsp == lay.stack + 4096
    l4 = d.vcpus[0].guest_table
    gw = walk(d.mem.read_u64, l4, lay.start_info)
    si = xen.start_info.from_buffer_copy(d.mem.read(gw.maddr, xen.start_info.size()))
    assert si.magic == b'xen-3.0-x86_64' and si.nr_pages == 4096
    assert si.pt_base == lay.page_tables and si.mfn_list == lay.p2m
    assert si.shared_info == d.shared_info_mfn << 12
    assert si.cmd_line == b'console=hvc0'
    assert not walk(d.mem.read_u64, l4, lay.page_tables).levels[-1].entry & _PAGE_RW
    assert walk(d.mem.read_u64, l4, lay.stack).levels[-1].entry & _PAGE_RW
    # the p2m list the guest reads is the hypervisor's, and the M2P inverts it
    p2m = struct.unpack('<4Q', d.mem.read(walk(d.mem.read_u64, l4, lay.p2m).maddr, 32))
    assert list(p2m) == list(d.p2m[:4])
    assert all(host.xen.get_m2p(mfn) == pfn for pfn, mfn in enumerate(d.p2m[:64]))
    assert list(d.p2m[:4]) != [0, 1, 2, 3], 'machine frames should not be identity-mapped'


def test_a_build_that_fails_leaves_nothing_on_the_host():
    import pytest
    from pvshadow.guests.builder import build_domain
    from pvshadow.guests.image import KernelError
    from pvshadow.guests.kernels import load_kernel
    from pvshadow.shadow.host import Host
    host = Host(16)
    free = host.frames.free_frames()
    with pytest.raises(KernelError, match='machine memory too small'):
        build_domain(host, load_kernel('hello'), memory_mb=32)
    assert host.frames.free_frames() == free and host.domains == {}
    assert host.audit_frames() == []
