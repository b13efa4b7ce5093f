"""Numbers and structures from Xen's public headers (xen/include/public/).

Only facts live here: hypercall numbers, sub-operation codes, error numbers, flags and
the ctypes layouts of the structures a PV x86-64 guest passes to the hypervisor. Each
group names the header it comes from.
"""
import ctypes
from ctypes import c_char, c_int8, c_uint8, c_uint16, c_uint32, c_uint64

# --- xen.h: hypercall numbers ---------------------------------------------------------
HYPERVISOR_set_trap_table = 0
HYPERVISOR_mmu_update = 1
HYPERVISOR_set_gdt = 2
HYPERVISOR_stack_switch = 3
HYPERVISOR_set_callbacks = 4
HYPERVISOR_fpu_taskswitch = 5
HYPERVISOR_sched_op_compat = 6
HYPERVISOR_platform_op = 7
HYPERVISOR_set_debugreg = 8
HYPERVISOR_get_debugreg = 9
HYPERVISOR_update_descriptor = 10
HYPERVISOR_memory_op = 12
HYPERVISOR_multicall = 13
HYPERVISOR_update_va_mapping = 14
HYPERVISOR_set_timer_op = 15
HYPERVISOR_event_channel_op_compat = 16
HYPERVISOR_xen_version = 17
HYPERVISOR_console_io = 18
HYPERVISOR_physdev_op_compat = 19
HYPERVISOR_grant_table_op = 20
HYPERVISOR_vm_assist = 21
HYPERVISOR_update_va_mapping_otherdomain = 22
HYPERVISOR_iret = 23
HYPERVISOR_vcpu_op = 24
HYPERVISOR_set_segment_base = 25
HYPERVISOR_mmuext_op = 26
HYPERVISOR_xsm_op = 27
HYPERVISOR_nmi_op = 28
HYPERVISOR_sched_op = 29
HYPERVISOR_callback_op = 30
HYPERVISOR_xenoprof_op = 31
HYPERVISOR_event_channel_op = 32
HYPERVISOR_physdev_op = 33
HYPERVISOR_hvm_op = 34
HYPERVISOR_sysctl = 35
HYPERVISOR_domctl = 36
HYPERVISOR_kexec_op = 37
NR_hypercalls = 64

HYPERCALL_NAMES = {v: k[len('HYPERVISOR_'):] for k, v in dict(globals()).items()
                   if k.startswith('HYPERVISOR_')}

# --- the Xen release this hypervisor answers as (xen_version, CPUID leaf 0x40000001)
XEN_MAJOR, XEN_MINOR = 4, 19

# --- errno.h (Xen's values match Linux's) -----------------------------------------------
EPERM, ENOENT, ESRCH, EINTR, EIO = 1, 2, 3, 4, 5
E2BIG, EBADF, EAGAIN, ENOMEM, EACCES, EFAULT = 7, 9, 11, 12, 13, 14
EBUSY, EEXIST, ENODEV, EINVAL, ENOSPC, ERANGE = 16, 17, 19, 22, 28, 34
ENOSYS, EOPNOTSUPP = 38, 95

# --- xen.h: domain ids ---------------------------------------------------------------------
DOMID_FIRST_RESERVED = 0x7FF0
DOMID_SELF = 0x7FF0
DOMID_IO = 0x7FF1
DOMID_XEN = 0x7FF2
DOMID_COW = 0x7FF3
DOMID_INVALID = 0x7FF4
DOMID_IDLE = 0x7FFF

# --- xen.h: mmu_update commands (low 2 bits of ptr) ----------------------------------------
MMU_NORMAL_PT_UPDATE = 0
MMU_MACHPHYS_UPDATE = 1
MMU_PT_UPDATE_PRESERVE_AD = 2
MMU_PT_UPDATE_NO_TRANSLATE = 3

# --- xen.h: mmuext_op commands ---------------------------------------------------------------
MMUEXT_PIN_L1_TABLE = 0
MMUEXT_PIN_L2_TABLE = 1
MMUEXT_PIN_L3_TABLE = 2
MMUEXT_PIN_L4_TABLE = 3
MMUEXT_UNPIN_TABLE = 4
MMUEXT_NEW_BASEPTR = 5
MMUEXT_TLB_FLUSH_LOCAL = 6
MMUEXT_INVLPG_LOCAL = 7
MMUEXT_TLB_FLUSH_MULTI = 8
MMUEXT_INVLPG_MULTI = 9
MMUEXT_TLB_FLUSH_ALL = 10
MMUEXT_INVLPG_ALL = 11
MMUEXT_FLUSH_CACHE = 12
MMUEXT_SET_LDT = 13
MMUEXT_NEW_USER_BASEPTR = 15
MMUEXT_CLEAR_PAGE = 16
MMUEXT_COPY_PAGE = 17
MMUEXT_FLUSH_CACHE_GLOBAL = 18
MMUEXT_MARK_SUPER = 19
MMUEXT_UNMARK_SUPER = 20

# --- xen.h: update_va_mapping flags ----------------------------------------------------------
UVMF_NONE = 0
UVMF_TLB_FLUSH = 1
UVMF_INVLPG = 2
UVMF_FLUSHTYPE_MASK = 3
UVMF_MULTI = 0
UVMF_LOCAL = 0
UVMF_ALL = 4

# --- xen.h: vm_assist ------------------------------------------------------------------------
VMASST_CMD_enable = 0
VMASST_CMD_disable = 1
VMASST_TYPE_4gb_segments = 0
VMASST_TYPE_4gb_segments_notify = 1
VMASST_TYPE_writable_pagetables = 2
VMASST_TYPE_pae_extended_cr3 = 3
VMASST_TYPE_architectural_iopl = 4
VMASST_TYPE_runstate_update_flag = 5
VMASST_TYPE_m2p_strict = 32
# The types Xen accepts from a 64-bit PV guest (arch/x86/include/asm/config.h VM_ASSIST_VALID).
VM_ASSIST_VALID_PV64 = ((1 << VMASST_TYPE_4gb_segments) | (1 << VMASST_TYPE_4gb_segments_notify) |
                        (1 << VMASST_TYPE_writable_pagetables) | (1 << VMASST_TYPE_pae_extended_cr3) |
                        (1 << VMASST_TYPE_architectural_iopl) | (1 << VMASST_TYPE_runstate_update_flag) |
                        (1 << VMASST_TYPE_m2p_strict))

# --- sched.h -----------------------------------------------------------------------------------
SCHEDOP_yield = 0
SCHEDOP_block = 1
SCHEDOP_shutdown = 2
SCHEDOP_poll = 3
SCHEDOP_remote_shutdown = 4
SCHEDOP_shutdown_code = 5
SCHEDOP_watchdog = 6
SHUTDOWN_poweroff = 0
SHUTDOWN_reboot = 1
SHUTDOWN_suspend = 2
SHUTDOWN_crash = 3
SHUTDOWN_watchdog = 4
SHUTDOWN_soft_reset = 5
SHUTDOWN_NAMES = {0: 'poweroff', 1: 'reboot', 2: 'suspend', 3: 'crash', 4: 'watchdog',
                  5: 'soft_reset'}

# --- xen.h: console_io -------------------------------------------------------------------------
CONSOLEIO_write = 0
CONSOLEIO_read = 1

# --- version.h ---------------------------------------------------------------------------------
XENVER_version = 0
XENVER_extraversion = 1
XENVER_compile_info = 2
XENVER_capabilities = 3
XENVER_changeset = 4
XENVER_platform_parameters = 5
XENVER_get_features = 6
XENVER_pagesize = 7
XENVER_guest_handle = 8
XENVER_commandline = 9
XENVER_build_id = 10

# --- features.h --------------------------------------------------------------------------------
XENFEAT_writable_page_tables = 0
XENFEAT_writable_descriptor_tables = 1
XENFEAT_auto_translated_physmap = 2
XENFEAT_supervisor_mode_kernel = 3
XENFEAT_pae_pgdir_above_4gb = 4
XENFEAT_mmu_pt_update_preserve_ad = 5
XENFEAT_highmem_assist = 6
XENFEAT_gnttab_map_avail_bits = 7

# --- callback.h / arch-x86/xen-x86_64.h --------------------------------------------------------
CALLBACKOP_register = 0
CALLBACKOP_unregister = 1
CALLBACKTYPE_event = 0
CALLBACKTYPE_failsafe = 1
CALLBACKTYPE_syscall = 2
CALLBACKTYPE_sysenter_deprecated = 3
CALLBACKTYPE_nmi = 4
CALLBACKTYPE_sysenter = 5
CALLBACKTYPE_syscall32 = 7
CALLBACKF_mask_events = 1

# trap_info.flags: bits 0-1 DPL, bit 2 "clear event enable" (an interrupt gate).
TI_DPL_MASK = 3
TI_IF = 4
# iret_context.flags
VGCF_in_syscall = 1 << 8

# --- memory.h ----------------------------------------------------------------------------------
XENMEM_increase_reservation = 0
XENMEM_decrease_reservation = 1
XENMEM_maximum_ram_page = 2
XENMEM_current_reservation = 3
XENMEM_maximum_reservation = 4
XENMEM_machphys_mfn_list = 5
XENMEM_populate_physmap = 6
XENMEM_add_to_physmap = 7
XENMEM_memory_map = 9
XENMEM_machine_memory_map = 10
XENMEM_machphys_mapping = 12
XENMEM_maximum_gpfn = 14
XENMEM_access_op = 21
XENMAPSPACE_shared_info, XENMAPSPACE_grant_table, XENMAPSPACE_gmfn = 0, 1, 2
XENMAPSPACE_gmfn_range, XENMAPSPACE_gmfn_foreign = 3, 4
MEMOP_CMD_MASK = 0x3F  # the sub-op lives in the low bits; the rest is a continuation start
MEMOP_EXTENT_SHIFT = 6

# --- arch-x86/xen-x86_64.h: selectors and the hypervisor's virtual area --------------------
FLAT_RING3_CS32 = 0xE023
FLAT_RING3_CS64 = 0xE033
FLAT_RING3_DS32 = 0xE02B
FLAT_RING3_DS64 = 0x0000
FLAT_RING3_SS32 = 0xE02B
FLAT_RING3_SS64 = 0xE02B
FLAT_KERNEL_CS64 = FLAT_RING3_CS64
FLAT_KERNEL_DS64 = FLAT_RING3_DS64
FLAT_KERNEL_SS64 = FLAT_RING3_SS64
FLAT_USER_CS64 = FLAT_RING3_CS64
FLAT_USER_DS64 = FLAT_RING3_DS64
FLAT_USER_SS64 = FLAT_RING3_SS64
FIRST_RESERVED_GDT_PAGE = 14
FIRST_RESERVED_GDT_ENTRY = FIRST_RESERVED_GDT_PAGE * 512

HYPERVISOR_VIRT_START = 0xFFFF800000000000
HYPERVISOR_VIRT_END = 0xFFFF880000000000
MACH2PHYS_VIRT_START = 0xFFFF800000000000   # RO_MPT_VIRT_START
MACH2PHYS_VIRT_END = 0xFFFF804000000000
INVALID_M2P_ENTRY = (1 << 64) - 1

# --- elfnote.h -----------------------------------------------------------------------------------
XEN_ELFNOTE_INFO = 0
XEN_ELFNOTE_ENTRY = 1
XEN_ELFNOTE_HYPERCALL_PAGE = 2
XEN_ELFNOTE_VIRT_BASE = 3
XEN_ELFNOTE_PADDR_OFFSET = 4
XEN_ELFNOTE_XEN_VERSION = 5
XEN_ELFNOTE_GUEST_OS = 6
XEN_ELFNOTE_GUEST_VERSION = 7
XEN_ELFNOTE_LOADER = 8
XEN_ELFNOTE_PAE_MODE = 9
XEN_ELFNOTE_FEATURES = 10
XEN_ELFNOTE_BSD_SYMTAB = 11
XEN_ELFNOTE_HV_START_LOW = 12
XEN_ELFNOTE_L1_MFN_VALID = 13
XEN_ELFNOTE_SUSPEND_CANCEL = 14
XEN_ELFNOTE_INIT_P2M = 15
XEN_ELFNOTE_MOD_START_PFN = 16
XEN_ELFNOTE_SUPPORTED_FEATURES = 17
XEN_ELFNOTE_PHYS32_ENTRY = 18

# --- xen.h: start_info flags ---------------------------------------------------------------------
SIF_PRIVILEGED = 1 << 0
SIF_INITDOMAIN = 1 << 1
SIF_MULTIBOOT_MOD = 1 << 2
SIF_MOD_START_PFN = 1 << 3
SIF_VIRT_P2M_4TOOLS = 1 << 4
MAX_GUEST_CMDLINE = 1024


# --- structures ------------------------------------------------------------------------------------
class Struct(ctypes.LittleEndianStructure):
    """A Xen structure: byte layout from the C header, read and written as bytes."""

    @classmethod
    def size(cls):
        return ctypes.sizeof(cls)

    def pack(self):
        return bytes(self)


class start_info(Struct):
    _fields_ = [
        ('magic', c_char * 32),
        ('nr_pages', c_uint64),
        ('shared_info', c_uint64),      # machine address of the shared_info page
        ('flags', c_uint32),
        ('store_mfn', c_uint64),
        ('store_evtchn', c_uint32),
        ('console_mfn', c_uint64),      # union console { domU { mfn; evtchn } }
        ('console_evtchn', c_uint32),
        ('pt_base', c_uint64),          # virtual address of the bootstrap L4
        ('nr_pt_frames', c_uint64),
        ('mfn_list', c_uint64),         # virtual address of the p2m list
        ('mod_start', c_uint64),
        ('mod_len', c_uint64),
        ('cmd_line', c_char * MAX_GUEST_CMDLINE),
        ('first_p2m_pfn', c_uint64),
        ('nr_p2m_frames', c_uint64),
    ]


class vcpu_time_info(Struct):
    _fields_ = [('version', c_uint32), ('pad0', c_uint32), ('tsc_timestamp', c_uint64),
                ('system_time', c_uint64), ('tsc_to_system_mul', c_uint32),
                ('tsc_shift', c_int8), ('flags', c_uint8), ('pad1', c_uint8 * 2)]


class vcpu_info(Struct):
    _fields_ = [('evtchn_upcall_pending', c_uint8), ('evtchn_upcall_mask', c_uint8),
                ('evtchn_pending_sel', c_uint64),
                ('cr2', c_uint64), ('arch_pad', c_uint64),   # struct arch_vcpu_info
                ('time', vcpu_time_info)]


XEN_LEGACY_MAX_VCPUS = 32


class shared_info(Struct):
    _fields_ = [('vcpu_info', vcpu_info * XEN_LEGACY_MAX_VCPUS),
                ('evtchn_pending', c_uint64 * 64),
                ('evtchn_mask', c_uint64 * 64),
                ('wc_version', c_uint32), ('wc_sec', c_uint32), ('wc_nsec', c_uint32),
                ('wc_sec_hi', c_uint32),
                # struct arch_shared_info
                ('max_pfn', c_uint64), ('pfn_to_mfn_frame_list_list', c_uint64),
                ('nmi_reason', c_uint64), ('p2m_cr3', c_uint64), ('p2m_vaddr', c_uint64),
                ('p2m_generation', c_uint64)]


class trap_info(Struct):
    _fields_ = [('vector', c_uint8), ('flags', c_uint8), ('cs', c_uint16),
                ('address', c_uint64)]


class mmu_update(Struct):
    _fields_ = [('ptr', c_uint64), ('val', c_uint64)]


class mmuext_op(Struct):
    _fields_ = [('cmd', c_uint32), ('arg1', c_uint64), ('arg2', c_uint64)]


class multicall_entry(Struct):
    _fields_ = [('op', c_uint64), ('result', c_uint64), ('args', c_uint64 * 6)]


class callback_register(Struct):
    _fields_ = [('type', c_uint16), ('flags', c_uint16), ('address', c_uint64)]


class callback_unregister(Struct):
    _fields_ = [('type', c_uint16), ('_unused', c_uint16)]


class iret_context(Struct):
    _fields_ = [(name, c_uint64) for name in
                ('rax', 'r11', 'rcx', 'flags', 'rip', 'cs', 'rflags', 'rsp', 'ss')]


class sched_shutdown(Struct):
    _fields_ = [('reason', c_uint32)]


class xen_feature_info(Struct):
    _fields_ = [('submap_idx', c_uint32), ('submap', c_uint32)]


class xen_memory_reservation(Struct):
    _fields_ = [('extent_start', c_uint64), ('nr_extents', c_uint64),
                ('extent_order', c_uint32), ('mem_flags', c_uint32), ('domid', c_uint16)]


class xen_platform_parameters(Struct):
    _fields_ = [('virt_start', c_uint64)]


class xen_machphys_mfn_list(Struct):
    _fields_ = [('max_extents', c_uint32), ('extent_start', c_uint64)]


# Layout checks against the sizes the C headers give: a wrong field here would silently
# break the ABI, so fail at import.
for _struct, _size in ((start_info, 1168), (vcpu_info, 64), (vcpu_time_info, 32),
                       (shared_info, 3136), (trap_info, 16), (mmu_update, 16), (mmuext_op, 24),
                       (multicall_entry, 64), (callback_register, 16), (iret_context, 72),
                       (xen_memory_reservation, 32)):
    assert ctypes.sizeof(_struct) == _size, (_struct.__name__, ctypes.sizeof(_struct))
assert shared_info.evtchn_pending.offset == 2048
assert shared_info.wc_version.offset == 3072
assert start_info.cmd_line.offset == 128


# --- domctl.h: shadow control -------------------------------------------------------------------
XEN_DOMCTL_createdomain, XEN_DOMCTL_destroydomain = 1, 2
XEN_DOMCTL_pausedomain, XEN_DOMCTL_unpausedomain, XEN_DOMCTL_getdomaininfo = 3, 4, 5
XEN_DOMCTL_max_mem = 11
XEN_DOMCTL_shadow_op = 10
XEN_DOMCTL_SHADOW_OP_OFF = 0
XEN_DOMCTL_SHADOW_OP_ENABLE_TEST = 1
XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY = 2
XEN_DOMCTL_SHADOW_OP_ENABLE_TRANSLATE = 3
XEN_DOMCTL_SHADOW_OP_CLEAN = 11
XEN_DOMCTL_SHADOW_OP_PEEK = 12
XEN_DOMCTL_SHADOW_OP_GET_ALLOCATION = 30
XEN_DOMCTL_SHADOW_OP_SET_ALLOCATION = 31
XEN_DOMCTL_SHADOW_OP_ENABLE = 32
XEN_DOMCTL_SHADOW_ENABLE_REFCOUNT = 1 << 1
XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY = 1 << 2
XEN_DOMCTL_SHADOW_ENABLE_TRANSLATE = 1 << 3
XEN_DOMCTL_SHADOW_ENABLE_EXTERNAL = 1 << 4


XEN_DOMCTL_set_target = 46
XEN_DOMCTL_INTERFACE_VERSION = 0x17         # Xen 4.19
XEN_SYSCTL_INTERFACE_VERSION = 0x15         # Xen 4.17 to 4.20


class xen_domctl(Struct):
    """The header of struct xen_domctl; the union u follows at offset 16 (128 bytes)."""
    _fields_ = [('cmd', c_uint32), ('interface_version', c_uint32), ('domain', c_uint16),
                ('_pad', c_uint16 * 3)]


XEN_DOMCTL_U = 16                           # offsetof(struct xen_domctl, u)
XEN_DOMCTL_SIZE = 16 + 128


class xen_domctl_shadow_op(Struct):
    _fields_ = [('op', c_uint32), ('mode', c_uint32), ('mb', c_uint32),
                ('dirty_bitmap', c_uint64), ('pages', c_uint64),
                ('fault_count', c_uint32), ('dirty_count', c_uint32)]


assert ctypes.sizeof(xen_domctl_shadow_op) == 40


# --- memory.h: XENMEM_access_op ---------------------------------------------------------------------
XENMEM_access_op_set_access = 0
XENMEM_access_op_get_access = 1
XENMEM_access_n, XENMEM_access_r, XENMEM_access_w, XENMEM_access_rw = 0, 1, 2, 3
XENMEM_access_x, XENMEM_access_rx, XENMEM_access_wx, XENMEM_access_rwx = 4, 5, 6, 7
XENMEM_access_rx2rw, XENMEM_access_n2rwx, XENMEM_access_default = 8, 9, 10
ACCESS_NAMES = {0: 'n', 1: 'r', 2: 'w', 3: 'rw', 4: 'x', 5: 'rx', 6: 'wx', 7: 'rwx', 8: 'rx2rw',
                9: 'n2rwx', 10: 'default'}
ACCESS_BY_NAME = {name: value for value, name in ACCESS_NAMES.items()}
ACCESS_START_DEFAULT = (1 << 64) - 1        # pfn ~0: the domain's default access


class xen_mem_access_op(Struct):
    _fields_ = [('op', c_uint8), ('access', c_uint8), ('domid', c_uint16), ('nr', c_uint32),
                ('pfn', c_uint64)]


# --- hvm/hvm_op.h: the legacy names, kept as aliases ------------------------------------------
HVMOP_set_mem_access = 12
HVMOP_get_mem_access = 13


class xen_hvm_set_mem_access(Struct):
    _fields_ = [('domid', c_uint16), ('hvmmem_access', c_uint16), ('nr', c_uint32),
                ('first_pfn', c_uint64)]


class xen_hvm_get_mem_access(Struct):
    _fields_ = [('domid', c_uint16), ('hvmmem_access', c_uint16), ('pfn', c_uint64)]


# --- domctl.h: vm_event and access_required --------------------------------------------------------
XEN_DOMCTL_vm_event_op = 56
XEN_DOMCTL_set_access_required = 64
XEN_VM_EVENT_ENABLE = 0
XEN_VM_EVENT_DISABLE = 1
XEN_VM_EVENT_RESUME = 2
XEN_DOMCTL_VM_EVENT_OP_PAGING = 1
XEN_DOMCTL_VM_EVENT_OP_MONITOR = 2
XEN_DOMCTL_VM_EVENT_OP_SHARING = 3
# The PG_mem_access shadow mode the mem_access-for-PV design proposes; not in upstream Xen's
# domctl.h, so this bit is pvshadow's own.
XEN_DOMCTL_SHADOW_ENABLE_MEM_ACCESS = 1 << 5


class xen_domctl_vm_event_op(Struct):
    _fields_ = [('op', c_uint32), ('mode', c_uint32), ('port', c_uint32)]


# --- vm_event.h (VM_EVENT_INTERFACE_VERSION 1) -------------------------------------------------------
VM_EVENT_INTERFACE_VERSION = 1
VM_EVENT_FLAG_VCPU_PAUSED = 1 << 0
VM_EVENT_FLAG_FOREIGN = 1 << 1
VM_EVENT_FLAG_DUMMY = 1 << 2
VM_EVENT_FLAG_TOGGLE_SINGLESTEP = 1 << 4  # response: single-step monitoring on/off
VM_EVENT_FLAG_ALTERNATE_P2M = 1 << 7      # request: in view altp2m_idx; response: switch to it
VM_EVENT_REASON_UNKNOWN = 0
VM_EVENT_REASON_MEM_ACCESS = 1
VM_EVENT_REASON_MEM_SHARING = 2
VM_EVENT_REASON_SINGLESTEP = 7
MEM_ACCESS_R = 1 << 0
MEM_ACCESS_W = 1 << 1
MEM_ACCESS_X = 1 << 2
MEM_ACCESS_GLA_VALID = 1 << 3
MEM_ACCESS_FAULT_WITH_GLA = 1 << 4
MEM_ACCESS_FAULT_IN_GPT = 1 << 5
MEM_ACCESS_EMULATE = 1 << 6
MEM_ACCESS_EMULATE_NOWRITE = 1 << 7


class vm_event_regs_x86(Struct):
    _fields_ = [(name, c_uint64) for name in (
        'rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12',
        'r13', 'r14', 'r15', 'rflags', 'dr7', 'rip', 'cr0', 'cr2', 'cr3', 'cr4', 'sysenter_cs',
        'sysenter_esp', 'sysenter_eip', 'msr_efer', 'msr_star', 'msr_lstar', 'fs_base',
        'gs_base')] + [('cs_arbytes', c_uint32), ('_pad', c_uint32)]


class vm_event_mem_access(Struct):
    _fields_ = [('gfn', c_uint64), ('offset', c_uint64), ('gla', c_uint64), ('flags', c_uint32),
                ('_pad', c_uint32)]


class vm_event_sharing(Struct):
    _fields_ = [('gfn', c_uint64), ('p2mt', c_uint32), ('_pad', c_uint32)]


class vm_event_st(Struct):
    """vm_event_request_t and vm_event_response_t. The union u is 32 bytes (its largest
    member, mem_access); mem_sharing overlays its start."""
    _fields_ = [('version', c_uint32), ('flags', c_uint32), ('reason', c_uint32),
                ('vcpu_id', c_uint32), ('altp2m_idx', c_uint16), ('_pad', c_uint16 * 3),
                ('mem_access', vm_event_mem_access),
                ('regs', vm_event_regs_x86)]

    @property
    def mem_sharing(self) -> 'vm_event_sharing':
        return vm_event_sharing.from_buffer(self, vm_event_st.mem_access.offset)


# io/ring.h: a shared ring: req_prod, req_event, rsp_prod, rsp_event, 48 bytes of padding,
# then the entries; the number of entries is the largest power of two that fits.
RING_HEADER_SIZE = 64

assert ctypes.sizeof(vm_event_st) == 312
assert vm_event_st.mem_access.offset == 24
assert ctypes.sizeof(xen_mem_access_op) == 16
assert ctypes.sizeof(xen_hvm_set_mem_access) == 16


# --- vcpu.h -------------------------------------------------------------------------------------------
VCPUOP_initialise = 0
VCPUOP_up = 1
VCPUOP_down = 2
VCPUOP_is_up = 3
VCPUOP_get_runstate_info = 4
VCPUOP_register_runstate_memory_area = 5
VCPUOP_register_runstate_phys_area = 14
RUNSTATE_running, RUNSTATE_runnable, RUNSTATE_blocked, RUNSTATE_offline = 0, 1, 2, 3
RUNSTATE_NAMES = {0: 'running', 1: 'runnable', 2: 'blocked', 3: 'offline'}
VGCF_IN_KERNEL = 1 << 2


class vcpu_runstate_info(Struct):
    _fields_ = [('state', ctypes.c_int32), ('state_entry_time', c_uint64),
                ('time', c_uint64 * 4)]


class cpu_user_regs(Struct):
    """arch-x86/xen-x86_64.h: the registers of a vcpu_guest_context."""
    _fields_ = [(n, c_uint64) for n in ('r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10',
                                        'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi')] + [
        ('error_code', c_uint32), ('entry_vector', c_uint32), ('rip', c_uint64),
        ('cs', c_uint16), ('_pad0', c_uint16), ('saved_upcall_mask', c_uint8),
        ('_pad1', c_uint8 * 3), ('rflags', c_uint64), ('rsp', c_uint64), ('ss', c_uint16),
        ('_pad2', c_uint16 * 3), ('es', c_uint16), ('_pad3', c_uint16 * 3), ('ds', c_uint16),
        ('_pad4', c_uint16 * 3), ('fs', c_uint16), ('_pad5', c_uint16 * 3), ('gs', c_uint16),
        ('_pad6', c_uint16 * 3)]


class vcpu_guest_context(Struct):
    _fields_ = [('fpu_ctxt', c_uint8 * 512), ('flags', c_uint64), ('user_regs', cpu_user_regs),
                ('trap_ctxt', trap_info * 256), ('ldt_base', c_uint64), ('ldt_ents', c_uint64),
                ('gdt_frames', c_uint64 * 16), ('gdt_ents', c_uint64), ('kernel_ss', c_uint64),
                ('kernel_sp', c_uint64), ('ctrlreg', c_uint64 * 8), ('debugreg', c_uint64 * 8),
                ('event_callback_eip', c_uint64), ('failsafe_callback_eip', c_uint64),
                ('syscall_callback_eip', c_uint64), ('vm_assist', c_uint64),
                ('fs_base', c_uint64), ('gs_base_kernel', c_uint64), ('gs_base_user', c_uint64)]


assert ctypes.sizeof(vcpu_runstate_info) == 48
assert ctypes.sizeof(cpu_user_regs) == 200
assert ctypes.sizeof(vcpu_guest_context) == 5168


# --- event_channel.h ------------------------------------------------------------------------------
EVTCHNOP_bind_interdomain, EVTCHNOP_bind_virq, EVTCHNOP_bind_pirq = 0, 1, 2
EVTCHNOP_close, EVTCHNOP_send, EVTCHNOP_status, EVTCHNOP_alloc_unbound = 3, 4, 5, 6
EVTCHNOP_bind_ipi, EVTCHNOP_bind_vcpu, EVTCHNOP_unmask = 7, 8, 9
EVTCHNOP_init_control, EVTCHNOP_expand_array, EVTCHNOP_set_priority = 11, 12, 13
# The FIFO ABI
EVTCHN_FIFO_PRIORITY_DEFAULT, EVTCHN_FIFO_PRIORITY_MIN = 7, 15
EVTCHN_FIFO_MAX_QUEUES = EVTCHN_FIFO_PRIORITY_MIN + 1
EVTCHN_FIFO_PENDING, EVTCHN_FIFO_MASKED, EVTCHN_FIFO_LINKED, EVTCHN_FIFO_BUSY = 31, 30, 29, 28
EVTCHN_FIFO_LINK_BITS = 17
EVTCHN_FIFO_LINK_MASK = (1 << EVTCHN_FIFO_LINK_BITS) - 1
EVTCHN_FIFO_NR_CHANNELS = 1 << EVTCHN_FIFO_LINK_BITS
EVTCHNSTAT_closed, EVTCHNSTAT_unbound, EVTCHNSTAT_interdomain = 0, 1, 2
EVTCHNSTAT_pirq, EVTCHNSTAT_virq, EVTCHNSTAT_ipi = 3, 4, 5
VIRQ_TIMER, VIRQ_DEBUG, VIRQ_CONSOLE = 0, 1, 2
NR_VIRQS = 24


class evtchn_alloc_unbound(Struct):
    _fields_ = [('dom', c_uint16), ('remote_dom', c_uint16), ('port', c_uint32)]


class evtchn_bind_interdomain(Struct):
    _fields_ = [('remote_dom', c_uint16), ('remote_port', c_uint32), ('local_port', c_uint32)]


class evtchn_bind_virq(Struct):
    _fields_ = [('virq', c_uint32), ('vcpu', c_uint32), ('port', c_uint32)]


class evtchn_bind_ipi(Struct):
    _fields_ = [('vcpu', c_uint32), ('port', c_uint32)]


class evtchn_init_control(Struct):
    _fields_ = [('control_gfn', c_uint64), ('offset', c_uint32), ('vcpu', c_uint32),
                ('link_bits', c_uint8), ('_pad', c_uint8 * 7)]


class evtchn_expand_array(Struct):
    _fields_ = [('array_gfn', c_uint64)]


class evtchn_set_priority(Struct):
    _fields_ = [('port', c_uint32), ('priority', c_uint32)]


class evtchn_fifo_control_block(Struct):
    _fields_ = [('ready', c_uint32), ('_rsvd', c_uint32),
                ('head', c_uint32 * EVTCHN_FIFO_MAX_QUEUES)]


class evtchn_status(Struct):
    _fields_ = [('dom', c_uint16), ('port', c_uint32), ('status', c_uint32), ('vcpu', c_uint32),
                ('u', c_uint64)]


# --- io/console.h and io/xs_wire.h: the rings start_info names ------------------------------------
XENCONS_IN, XENCONS_OUT = 0, 1024                 # char in[1024], out[2048]
XENCONS_IN_CONS, XENCONS_IN_PROD, XENCONS_OUT_CONS, XENCONS_OUT_PROD = 3072, 3076, 3080, 3084
XENSTORE_REQ, XENSTORE_RSP = 0, 1024              # char req[1024], rsp[1024]
XENSTORE_REQ_CONS, XENSTORE_REQ_PROD, XENSTORE_RSP_CONS, XENSTORE_RSP_PROD = 2048, 2052, 2056, 2060
XS_READ, XS_ERROR = 2, 16

assert ctypes.sizeof(evtchn_status) == 24 and ctypes.sizeof(evtchn_bind_interdomain) == 12


# --- segments, FPU, debug registers, I/O privilege (xen-x86_64.h, physdev.h) ------------------------
SEGBASE_FS, SEGBASE_GS_USER, SEGBASE_GS_KERNEL, SEGBASE_GS_USER_SEL = 0, 1, 2, 3
PHYSDEVOP_set_iopl = 6

# --- grant_table.h ---------------------------------------------------------------------------------
GNTTABOP_map_grant_ref, GNTTABOP_unmap_grant_ref, GNTTABOP_setup_table = 0, 1, 2
GNTTABOP_transfer, GNTTABOP_copy, GNTTABOP_query_size = 4, 5, 6
GNTTABOP_unmap_and_replace, GNTTABOP_set_version = 7, 8
GNTTABOP_get_status_frames, GNTTABOP_get_version = 9, 10
GNTST_okay, GNTST_general_error, GNTST_bad_domain, GNTST_bad_gntref = 0, -1, -2, -3
GNTST_bad_handle, GNTST_bad_virt_addr, GNTST_bad_dev_addr = -4, -5, -6
GNTST_no_device_space, GNTST_permission_denied, GNTST_bad_page = -7, -8, -9
GNTST_bad_copy_arg, GNTST_address_too_big, GNTST_eagain, GNTST_no_space = -10, -11, -12, -13
GRANT_TABLE_MAX_FRAMES = 4
GNTTAB_NR_RESERVED_ENTRIES = 8
# grant entry flags (GTF_*); GTF_reading/GTF_writing are the hypervisor's
GTF_invalid, GTF_permit_access, GTF_accept_transfer, GTF_transitive = 0, 1, 2, 3
GTF_type_mask = 3
GTF_readonly, GTF_reading, GTF_writing = 1 << 2, 1 << 3, 1 << 4
GTF_PWT, GTF_PCD, GTF_PAT, GTF_sub_page = 1 << 5, 1 << 6, 1 << 7, 1 << 8
# map flags (GNTMAP_*)
GNTMAP_device_map, GNTMAP_host_map, GNTMAP_readonly = 1 << 0, 1 << 1, 1 << 2
GNTMAP_application_map, GNTMAP_contains_pte = 1 << 3, 1 << 4
GNTCOPY_source_gref, GNTCOPY_dest_gref = 1 << 0, 1 << 1
GRANT_ENTRY_V1_SIZE, GRANT_ENTRY_V2_SIZE = 8, 16


class gnttab_setup_table(Struct):
    _fields_ = [('dom', c_uint16), ('nr_frames', c_uint32), ('status', ctypes.c_int16),
                ('frame_list', c_uint64)]


class gnttab_query_size(Struct):
    _fields_ = [('nr_frames', c_uint32), ('max_nr_frames', c_uint32), ('dom', c_uint16),
                ('status', ctypes.c_int16)]


class gnttab_map_grant_ref(Struct):
    _fields_ = [('host_addr', c_uint64), ('flags', c_uint32), ('ref', c_uint32),
                ('dom', c_uint16), ('status', ctypes.c_int16), ('handle', c_uint32),
                ('dev_bus_addr', c_uint64)]


class gnttab_unmap_grant_ref(Struct):
    _fields_ = [('host_addr', c_uint64), ('dev_bus_addr', c_uint64), ('handle', c_uint32),
                ('status', ctypes.c_int16)]


class gnttab_unmap_and_replace(Struct):
    _fields_ = [('host_addr', c_uint64), ('new_addr', c_uint64), ('handle', c_uint32),
                ('status', ctypes.c_int16)]


class gnttab_copy_ptr(Struct):
    _fields_ = [('u', c_uint64),                 # union { grant_ref_t ref; xen_pfn_t gmfn; }
                ('domid', c_uint16), ('offset', c_uint16)]


class gnttab_copy(Struct):
    _fields_ = [('source', gnttab_copy_ptr), ('dest', gnttab_copy_ptr), ('len', c_uint16),
                ('flags', c_uint16), ('status', ctypes.c_int16)]


class gnttab_set_version(Struct):
    _fields_ = [('version', c_uint32)]


class gnttab_get_status_frames(Struct):
    _fields_ = [('nr_frames', c_uint32), ('dom', c_uint16), ('status', ctypes.c_int16),
                ('frame_list', c_uint64)]


class gnttab_get_version(Struct):
    _fields_ = [('dom', c_uint16), ('pad', c_uint16), ('version', c_uint32)]


assert ctypes.sizeof(gnttab_setup_table) == 24 and ctypes.sizeof(gnttab_query_size) == 12
assert ctypes.sizeof(gnttab_map_grant_ref) == 32 and ctypes.sizeof(gnttab_unmap_grant_ref) == 24
assert ctypes.sizeof(gnttab_unmap_and_replace) == 24 and ctypes.sizeof(gnttab_copy) == 40
assert ctypes.sizeof(gnttab_get_status_frames) == 16 and ctypes.sizeof(gnttab_get_version) == 8

# --- pvshadow extensions (docs/ABI.md): the PV-IOMMU, after XenServer's, and the lookup --------
HYPERVISOR_iommu_op = 56                     # XenServer's number; never upstream
IOMMUOP_query_caps, IOMMUOP_map_page, IOMMUOP_unmap_page = 1, 2, 3
IOMMUOP_lookup_foreign_page, IOMMUOP_unmap_foreign_page = 4, 5
IOMMU_OP_readable, IOMMU_OP_writeable = 1 << 0, 1 << 1
IOMMU_QUERY_map_cap = 1 << 0                 # query_caps: map/unmap are available


class pv_iommu_op(Struct):
    """32 bytes: subop_id, flags, status, then the subop's (bfn, gfn, domid) union."""
    _fields_ = [('subop_id', c_uint16), ('flags', c_uint16), ('status', ctypes.c_int32),
                ('bfn', c_uint64), ('gfn', c_uint64), ('domid', c_uint16),
                ('ioserver', c_uint16), ('_pad', c_uint32)]


assert ctypes.sizeof(pv_iommu_op) == 32
# The unsafe design the map-not-lookup thread argues against: XenGT's gfn -> mfn lookup
# (XENMEM_get_mfn_from_pfn), with no reference taken. struct { domid_t domid; u16 pad[3];
# u64 nr_pfns; handle pfn_list (in: pfns, out: mfns) }.
XENMEM_get_mfn_from_pfn = 63                 # the last number memory_op can carry (MEMOP_CMD_MASK)
# Target sets: XEN_DOMCTL_set_target holds one target; these add and remove more.
XEN_DOMCTL_pvshadow_add_target = 0x8001
XEN_DOMCTL_pvshadow_remove_target = 0x8002


# --- vcpu.h / xen.h: timers and time ------------------------------------------------------------
VCPUOP_set_periodic_timer = 6
VCPUOP_stop_periodic_timer = 7
VCPUOP_set_singleshot_timer = 8
VCPUOP_stop_singleshot_timer = 9
VCPU_SSHOTTMR_future = 1
ETIME = 62
NS_PER_INSTRUCTION = 1                  # the virtual clock: one nanosecond an instruction


class vcpu_set_singleshot_timer(Struct):
    _fields_ = [('timeout_abs_ns', c_uint64), ('flags', c_uint32)]


class sched_poll(Struct):
    _fields_ = [('ports', c_uint64), ('nr_ports', c_uint32), ('timeout', c_uint64)]

assert ctypes.sizeof(evtchn_init_control) == 24
assert ctypes.sizeof(evtchn_fifo_control_block) == 72
