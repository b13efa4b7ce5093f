"""Numbers and structures for translated guests, altp2m and memory sharing, from Xen's
public headers: hvm/hvm_op.h (HVMOP_altp2m), memory.h (XENMEM_sharing_op), domctl.h
(XEN_DOMCTL_mem_sharing_op) and vm_event.h; p2m type numbers from xen/arch/x86/include/
asm/p2m.h (not public, but what mem_sharing requests carry as p2mt).
"""
import ctypes
from ctypes import c_int32, c_uint8, c_uint16, c_uint32, c_uint64

from pvshadow.shadow.abi.xen import Struct

# --- p2m types (asm/p2m.h's p2m_type_t) ------------------------------------------------
p2m_ram_rw = 0
p2m_invalid = 1
p2m_ram_ro = 3
p2m_mmio_dm = 4
p2m_ram_shared = 12
P2M_TYPE_NAMES = {p2m_ram_rw: 'ram_rw', p2m_invalid: 'invalid', p2m_ram_ro: 'ram_ro',
                  p2m_mmio_dm: 'mmio_dm', p2m_ram_shared: 'ram_shared'}

# hvm/hvm_op.h: HVMOP_set_mem_type's hvmmem_type_t, and the p2m type each becomes
HVMOP_set_mem_type = 8
HVMMEM_ram_rw, HVMMEM_ram_ro, HVMMEM_mmio_dm = 0, 1, 2
P2M_TYPE_OF_HVMMEM = {HVMMEM_ram_rw: p2m_ram_rw, HVMMEM_ram_ro: p2m_ram_ro,
                      HVMMEM_mmio_dm: p2m_mmio_dm}

INVALID_GFN = (1 << 64) - 1
SHARED_M2P_ENTRY = (1 << 64) - 2            # the M2P entry of a shared frame (~0 - 1)

# --- hvm/hvm_op.h: HVMOP_altp2m -----------------------------------------------------------
HVMOP_altp2m = 25
HVMOP_ALTP2M_INTERFACE_VERSION = 0x00000001
HVMOP_altp2m_get_domain_state = 1
HVMOP_altp2m_set_domain_state = 2
HVMOP_altp2m_vcpu_enable_notify = 3
HVMOP_altp2m_create_p2m = 4
HVMOP_altp2m_destroy_p2m = 5
HVMOP_altp2m_switch_p2m = 6
HVMOP_altp2m_set_mem_access = 7
HVMOP_altp2m_change_gfn = 8
HVMOP_altp2m_set_mem_access_multi = 9
HVMOP_altp2m_set_suppress_ve = 10
HVMOP_altp2m_get_suppress_ve = 11
HVMOP_altp2m_get_mem_access = 12
HVMOP_altp2m_vcpu_disable_notify = 13
HVMOP_altp2m_get_p2m_idx = 14
HVMOP_altp2m_set_suppress_ve_multi = 15
HVMOP_altp2m_set_visibility = 16
MAX_ALTP2M = 10                              # Xen's default nr_altp2m


class altp2m_domain_state(Struct):
    _fields_ = [('state', c_uint8)]


class altp2m_vcpu_enable_notify(Struct):
    _fields_ = [('vcpu_id', c_uint32), ('pad', c_uint32), ('gfn', c_uint64)]


class altp2m_vcpu_disable_notify(Struct):
    _fields_ = [('vcpu_id', c_uint32)]


class altp2m_view(Struct):
    _fields_ = [('view', c_uint16), ('hvmmem_default_access', c_uint16)]


class altp2m_mem_access(Struct):
    _fields_ = [('view', c_uint16), ('access', c_uint16), ('pad', c_uint32), ('gfn', c_uint64)]


class altp2m_set_mem_access_multi(Struct):
    _fields_ = [('view', c_uint16), ('pad', c_uint16), ('nr', c_uint32), ('opaque', c_uint64),
                ('pfn_list', c_uint64), ('access_list', c_uint64)]


class altp2m_change_gfn(Struct):
    _fields_ = [('view', c_uint16), ('pad1', c_uint16), ('pad2', c_uint32),
                ('old_gfn', c_uint64), ('new_gfn', c_uint64)]


class altp2m_suppress_ve(Struct):
    _fields_ = [('view', c_uint16), ('suppress_ve', c_uint8), ('pad1', c_uint8),
                ('pad2', c_uint32), ('gfn', c_uint64)]


class altp2m_suppress_ve_multi(Struct):
    _fields_ = [('view', c_uint16), ('suppress_ve', c_uint8), ('pad1', c_uint8),
                ('first_error', c_int32), ('first_gfn', c_uint64), ('last_gfn', c_uint64)]


class altp2m_get_vcpu_p2m_idx(Struct):
    _fields_ = [('vcpu_id', c_uint32), ('altp2m_idx', c_uint16)]


class altp2m_set_visibility(Struct):
    _fields_ = [('altp2m_idx', c_uint16), ('visible', c_uint8), ('pad', c_uint8)]


class altp2m_u(ctypes.Union):
    _pack_ = 8
    _fields_ = [('domain_state', altp2m_domain_state), ('enable_notify', altp2m_vcpu_enable_notify),
                ('view', altp2m_view), ('mem_access', altp2m_mem_access),
                ('change_gfn', altp2m_change_gfn),
                ('set_mem_access_multi', altp2m_set_mem_access_multi),
                ('suppress_ve', altp2m_suppress_ve), ('suppress_ve_multi', altp2m_suppress_ve_multi),
                ('disable_notify', altp2m_vcpu_disable_notify),
                ('get_vcpu_p2m_idx', altp2m_get_vcpu_p2m_idx),
                ('set_visibility', altp2m_set_visibility), ('pad', c_uint8 * 64)]


class xen_hvm_altp2m_op(Struct):
    _fields_ = [('version', c_uint32), ('cmd', c_uint32), ('domain', c_uint16),
                ('pad1', c_uint16), ('pad2', c_uint32), ('u', altp2m_u)]


assert ctypes.sizeof(xen_hvm_altp2m_op) == 80
assert xen_hvm_altp2m_op.u.offset == 16

# --- memory.h: XENMEM_sharing_op ------------------------------------------------------------
XENMEM_sharing_op = 22
XENMEM_sharing_op_nominate_gfn = 0
XENMEM_sharing_op_nominate_gref = 1
XENMEM_sharing_op_share = 2
XENMEM_sharing_op_debug_gfn = 3
XENMEM_sharing_op_debug_mfn = 4
XENMEM_sharing_op_debug_gref = 5
XENMEM_sharing_op_add_physmap = 6
XENMEM_sharing_op_audit = 7
XENMEM_sharing_op_range_share = 8
XENMEM_sharing_op_fork = 9
XENMEM_sharing_op_fork_reset = 10
XENMEM_SHARING_OP_S_HANDLE_INVALID = -10
XENMEM_SHARING_OP_C_HANDLE_INVALID = -9
XENMEM_SHARING_OP_FIELD_IS_GREF_FLAG = 1 << 62
XENMEM_FORK_RESET_STATE = 1 << 2
XENMEM_FORK_RESET_MEMORY = 1 << 3


class sharing_nominate(Struct):
    _fields_ = [('gfn', c_uint64), ('handle', c_uint64)]     # gfn overlays grant_ref


class sharing_share(Struct):
    _fields_ = [('source_gfn', c_uint64), ('source_handle', c_uint64), ('client_gfn', c_uint64),
                ('client_handle', c_uint64), ('client_domain', c_uint16)]


class sharing_range(Struct):
    _fields_ = [('first_gfn', c_uint64), ('last_gfn', c_uint64), ('opaque', c_uint64),
                ('client_domain', c_uint16), ('_pad', c_uint16 * 3)]


class sharing_debug(Struct):
    _fields_ = [('gfn', c_uint64)]                            # gfn, mfn or gref


class sharing_fork(Struct):
    _fields_ = [('parent_domain', c_uint16), ('flags', c_uint16), ('pad', c_uint32)]


class sharing_u(ctypes.Union):
    _fields_ = [('nominate', sharing_nominate), ('share', sharing_share),
                ('range', sharing_range), ('debug', sharing_debug), ('fork', sharing_fork)]


class xen_mem_sharing_op(Struct):
    _fields_ = [('op', c_uint8), ('_pad0', c_uint8), ('domain', c_uint16), ('_pad1', c_uint32),
                ('u', sharing_u)]


assert ctypes.sizeof(xen_mem_sharing_op) == 48
assert xen_mem_sharing_op.u.offset == 8

# --- domctl.h: XEN_DOMCTL_mem_sharing_op ---------------------------------------------------------
XEN_DOMCTL_mem_sharing_op = 57
XEN_DOMCTL_MEM_SHARING_CONTROL = 0
