"""The physical CPU: the one place that owns the Unicorn instance.

It runs in long mode with the CPU's own MMU walking whatever tables CR3 names, hooks
`syscall` and every interrupt/exception, and hands each to the vCPU currently loaded
(`guest.on_syscall()`, `guest.on_exception(vector, error_code, is_software)`). Faults the
hypervisor resolves are resolved inside the hook: no emu_stop/emu_start per fault.

Two Unicorn facts shape this file (../shared/unicorn-facts/): a hooked exception leaves
env->old_exception set, so the next fault would turn into a double fault; and the
hardware #PF error code is not passed to the hook. Both live in the saved CPU context,
which the exception hook reads and patches in place. A third, found here: #UD never
reaches the interrupt hook (Unicorn stops with UC_ERR_INSN_INVALID) unless a
UC_HOOK_INSN_INVALID hook takes it. A fourth: port I/O never faults, so `in`/`out` go
to `guest.on_port_in`/`on_port_out`, and a refusal is made into a precise #GP with an
I/O breakpoint (_init_io_trap).
"""
import ctypes
import operator
import struct
from typing import Optional

from unicorn import (UC_ARCH_X86, UC_HOOK_CODE, UC_HOOK_INSN, UC_HOOK_INSN_INVALID, UC_HOOK_INTR,
                     UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE, UC_MODE_64, UC_PROT_ALL, Uc, UcError)
from unicorn import unicorn_const as ucc
from unicorn import x86_const as x86

from pvshadow.shadow.abi.xen import vm_event_regs_x86
from pvshadow.shadow.machine import MachineMemory
from pvshadow.shadow.watchdog import NO_WATCHDOG, arm as arm_watchdog

try:                                     # the binding's handle on libunicorn (2.1.x)
    from unicorn.unicorn_py3.unicorn import uclib as _uclib
except ImportError:                      # pragma: no cover - other binding layouts
    from unicorn.unicorn import _uc as _uclib
_UC_REG_WRITE = _uclib.uc_reg_write
_UC_REG_WRITE_BATCH = _uclib.uc_reg_write_batch
_UC_REG_READ = _uclib.uc_reg_read
_UC_REG_READ_BATCH = _uclib.uc_reg_read_batch
_UC_CONTEXT_SAVE = _uclib.uc_context_save
_UC_CONTEXT_RESTORE = _uclib.uc_context_restore
_UC_EMU_STOP = _uclib.uc_emu_stop
_UC_EMU_START = _uclib.uc_emu_start
# libunicorn's callback types for the hooks added directly (_add_direct_hook)
_HOOK_INTR = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)
_HOOK_SYSCALL = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
_uc_hook_h = ctypes.c_size_t

CR0_PE, CR0_MP, CR0_ET, CR0_NE, CR0_WP, CR0_PG = 1, 2, 0x10, 0x20, 1 << 16, 1 << 31
CR4_PAE, CR4_OSFXSR, CR4_OSXMMEXCPT = 1 << 5, 1 << 9, 1 << 10
CR4_FSGSBASE = 1 << 16
MSR_EFER = 0xC0000080
EFER_SCE, EFER_LME, EFER_LMA, EFER_NXE = 1, 1 << 8, 1 << 10, 1 << 11

RFLAGS_TF, RFLAGS_IF, RFLAGS_DF = 1 << 8, 1 << 9, 1 << 10
RFLAGS_IOPL, RFLAGS_NT, RFLAGS_RF, RFLAGS_VM, RFLAGS_AC = 3 << 12, 1 << 14, 1 << 16, 1 << 17, 1 << 18

GPRS = ('rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp',
        'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15')
REG = {name: getattr(x86, 'UC_X86_REG_' + name.upper()) for name in
       GPRS + ('rip', 'rflags', 'cs', 'ss', 'ds', 'es', 'fs', 'gs', 'fs_base', 'gs_base',
               'cr0', 'cr2', 'cr3', 'cr4')}
# registers uc_reg_read fills as 64 bits, which reg() reads with no binding layer
_REG64 = {REG[name] for name in GPRS + ('rip', 'rflags', 'fs_base', 'gs_base', 'cr0', 'cr2',
                                        'cr3', 'cr4')}
# QEMU's order of env->regs[]
_ENV_ORDER = ('rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi',
              'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15')
_GPRS16 = struct.Struct('<16Q')
ENV_INDEX = {name: i for i, name in enumerate(_ENV_ORDER)}   # fault_gpr's names
_SNAPSHOT_NAMES = _ENV_ORDER + ('rip', 'rflags', 'cr2', 'cr3', 'fs_base', 'gs_base')
_CONTEXT_NAMES = _SNAPSHOT_NAMES + ('cs', 'ss')
# vm_event_regs_x86 after its 16 general registers: rflags, (dr7), rip, (cr0), cr2, cr3;
# then fs_base and gs_base further on
_EVENT_RFLAGS_TO_CR3 = struct.Struct('<Q8xQ8xQQ')
_EVENT_FS_BASE = vm_event_regs_x86.fs_base.offset
_EVENT_FS_GS = struct.Struct('<QQ')
assert (vm_event_regs_x86.rflags.offset, vm_event_regs_x86.rip.offset,
        vm_event_regs_x86.cr2.offset, vm_event_regs_x86.cr3.offset,
        vm_event_regs_x86.gs_base.offset) == (128, 144, 160, 168, _EVENT_FS_BASE + 8)


class _RegisterBatch:
    """A fixed list of registers, read or written with one libunicorn call. Its ids and
    value slots are built once per list of names: the binding's reg_read_batch and
    reg_write_batch build both, and look up each register's class, on every call (about
    6 us for three registers, against 1.5 here). Every register REG names is one the
    binding reads and writes as 64 bits; a selector is written into the low 16 bits of a
    slot that only ever holds that selector, so the rest stays zero."""
    __slots__ = ('count', 'ids', 'values', 'pointers')

    def __init__(self, names):
        self.count = count = len(names)
        self.ids = (ctypes.c_int * count)(*(REG[name] for name in names))
        self.values = (ctypes.c_uint64 * count)()
        base = ctypes.addressof(self.values)
        self.pointers = (ctypes.c_void_p * count)(*(base + 8 * i for i in range(count)))


def context_registers(ctx) -> dict:
    """The registers a saved context holds (a vCPU off the CPU), named as dump() names them."""
    return {name: ctx.reg_read(getattr(x86, f'UC_X86_REG_{name.upper()}'))
            for name in _CONTEXT_NAMES}

# The port-I/O trap (_init_io_trap): CPUX86State.hflags follows regs[16], eip, eflags,
# cc_dst/src/src2, cc_op and df; HF_IOBPT (bit 24) makes blocks check I/O breakpoints.
_HFLAGS_AFTER_REGS = 16 * 8 + 8 + 8 + 3 * 8 + 4 + 4
_HF_IOBPT = 1 << 24
_HF_LONG_MODE = (1 << 7) | (1 << 14)                 # PE, LMA
_DR7_IO_BREAKPOINT_3 = 0x400 | (1 << 6) | (2 << 28)  # L3, R/W3 = I/O, 1 byte
_NO_PORT = 0x10010
# env->segs[] (SegmentCache: u32 selector, u64 base, u32 limit, u32 flags) follows hflags
# and hflags2; the hflags bits a CS/SS load changes.
_SEGMENT_CACHE = struct.Struct('<I4xQII')
_SEG_CS, _SEG_SS = 1, 2
_HF_CPL, _HF_CS32, _HF_SS32, _HF_ADDSEG = 3, 1 << 4, 1 << 5, 1 << 6
_HF_LMA, _HF_CS64 = 1 << 14, 1 << 15
_DESC_L, _DESC_B, _DESC_G = 1 << 21, 1 << 22, 1 << 23     # in the descriptor's high dword


def _desc_base(desc: int) -> int:
    return (desc >> 16) & 0xFFFFFF | ((desc >> 56) & 0xFF) << 24


def _desc_limit(desc: int) -> int:
    limit = desc & 0xFFFF | (desc >> 32) & 0xF0000
    return (limit << 12) | 0xFFF if desc >> 32 & _DESC_G else limit
_LDT_DESCRIPTOR_FLAGS = (1 << 15) | (2 << 8)      # present, system type 2 (LDT)

_SYSCALL_LEN = 2


def _reg_id(name: str) -> int:
    """Unicorn's id for any x86 register name capstone prints (eax, r8d, al, ...)."""
    REG[name] = getattr(x86, 'UC_X86_REG_' + name.upper())
    return REG[name]


_CONTEXT_FIELDS = None     # (context size, DR0's offset, env->regs', {name: offset})


def _locate_context_fields(uc, ctx, base: int):
    """Where a saved context (CPUX86State) holds DR0 (error_code, exception_is_int,
    exception_next_eip, dr[8], 4 pointers, old_exception: the exception state is found
    from it), the 16 general registers, and rip, cr2, cr3 and the FS/GS bases: each found
    by writing a marker into the register and searching the saved bytes for it. The
    registers are left as they were (rflags is computed lazily by QEMU, so it always
    comes from the binding)."""
    marker = 0x1122334455667788
    uc.reg_write(x86.UC_X86_REG_DR0, marker)
    uc.context_update(ctx)
    dr0 = ctypes.string_at(base, ctx.size).find(struct.pack('<Q', marker))
    uc.reg_write(x86.UC_X86_REG_DR0, 0)
    if dr0 < 0:
        raise CpuError('cannot locate the exception state in the Unicorn context')
    before = uc.reg_read_batch([REG[reg] for reg in _ENV_ORDER])
    markers = [0x5A5A000000000000 | (i << 8) | 0xA5 for i in range(16)]
    uc.reg_write_batch([(REG[reg], value) for reg, value in zip(_ENV_ORDER, markers)])
    uc.context_update(ctx)
    raw = ctypes.string_at(base, ctx.size)
    uc.reg_write_batch([(REG[reg], value) for reg, value in zip(_ENV_ORDER, before)])
    first = raw.find(struct.pack('<Q', markers[0]))
    if first < 0 or raw[first:first + 128] != struct.pack('<16Q', *markers):
        raise CpuError('cannot locate the general registers in the Unicorn context')
    env_at = {}
    for name, marker in (('rip', 0x7A7A0000DEAD1000), ('cr2', 0x7B7B0000DEAD2000),
                         ('cr3', 0x00000000DEAD3000), ('fs_base', 0x7D7D0000DEAD4000),
                         ('gs_base', 0x7E7E0000DEAD5000)):
        before = uc.reg_read(REG[name])
        uc.reg_write(REG[name], marker)
        uc.context_update(ctx)
        at = ctypes.string_at(base, ctx.size).find(struct.pack('<Q', marker))
        uc.reg_write(REG[name], before)
        if at < 0:
            raise CpuError(f'cannot locate {name} in the Unicorn context')
        env_at[name] = at
    return ctx.size, dr0, first, env_at


def _env_reader(offsets):
    """(first offset, a Struct, an itemgetter): the Struct unpacks the 64-bit fields at
    these context offsets from the first one on, in offset order, in one call; the
    getter puts them back in the order given."""
    order = sorted(range(len(offsets)), key=offsets.__getitem__)
    first = at = offsets[order[0]]
    fmt = '<'
    for i in order:
        fmt += f'{offsets[i] - at}xQ'
        at = offsets[i] + 8
    return first, struct.Struct(fmt), operator.itemgetter(*(order.index(i)
                                                            for i in range(len(offsets))))


class CpuError(Exception):
    """Unicorn refused to go on (an internal error, not a guest fault)."""


class HypervisorError(CpuError):
    """A Python exception raised by the hypervisor inside a CPU hook: a bug, reported as
    an internal-error exit with its traceback in the Xen log."""

    def __init__(self, exc: BaseException):
        import traceback
        super().__init__(f'hypervisor error: {type(exc).__name__}: {exc}')
        self.traceback = ''.join(traceback.format_exception(exc))


class PhysicalCpu:
    def __init__(self, mem: MachineMemory):
        self.mem = mem
        self.uc = uc = Uc(UC_ARCH_X86, UC_MODE_64)
        uc.mem_map_ptr(0, mem.size, UC_PROT_ALL, mem.host_address)
        # A run ends only when a hook stops the CPU: exit points on, and none set. An
        # `until` address would be looked up as code at the end of every emu_start, to
        # drop its translation; an address the guest's tables do not map then makes a
        # failed page walk that leaves env->old_exception set (docs/UNICORN.md item 23).
        uc.ctl_exits_enabled(True)
        self._uch = uc._uch          # libunicorn's handle, for the calls made directly
        self.guest = None            # the vCPU whose hooks run; set by the scheduler
        self._in_syscall = False
        self._stopped = False
        self._double_faults = 0
        self._io_refused = None      # (rip, rax) of a port access being turned into #GP
        self._init_exception_state()
        self._init_long_mode()
        self._init_io_trap()
        self._add_direct_hook(UC_HOOK_INTR, _HOOK_INTR, self._on_interrupt)
        self._add_direct_hook(UC_HOOK_INSN, _HOOK_SYSCALL, self._on_syscall,
                              ctypes.c_int(x86.UC_X86_INS_SYSCALL))
        uc.hook_add(UC_HOOK_INSN, self._on_port_in, None, 1, 0, x86.UC_X86_INS_IN)
        uc.hook_add(UC_HOOK_INSN, self._on_port_out, None, 1, 0, x86.UC_X86_INS_OUT)
        uc.hook_add(UC_HOOK_INSN, self._on_cpuid, None, 1, 0, x86.UC_X86_INS_CPUID)
        uc.hook_add(UC_HOOK_INSN_INVALID, self._on_invalid_opcode)
        self._user_insn_hook = None  # watch_user_instructions
        self._code_hook_depth = 0    # inside a UC_HOOK_CODE callback (the rip setter)
        self._in_exception_hook = False  # inside _on_interrupt's handling (the rip setter)
        # RIP written through libunicorn directly: the binding's generic path costs 2.6 us
        # (reg_write) and 6.3 us (reg_write_batch) against 1.0 and 1.4 here.
        self._rip_value = ctypes.c_uint64()
        self._rip_pointer = ctypes.byref(self._rip_value)
        self._rip_ids = (ctypes.c_int * 1)(x86.UC_X86_REG_RIP)
        self._rip_pointers = (ctypes.c_void_p * 1)(ctypes.addressof(self._rip_value))
        self._rip_read = ctypes.c_uint64()         # RIP and RFLAGS read the same direct way
        self._rip_read_pointer = ctypes.byref(self._rip_read)
        self._reg_value = ctypes.c_uint64()
        self._reg_pointer = ctypes.byref(self._reg_value)
        self._rflags_value = ctypes.c_uint64()
        self._rflags_pointer = ctypes.byref(self._rflags_value)
        self._read_batches = {}          # names -> _RegisterBatch, for regs()
        self._write_batches = {}         # and for set_regs()
        # The CPU as it comes out of reset into long mode, at CPL0: every vCPU's first
        # entry starts from it (the previous vCPU may have left the CPU at CPL3).
        self._reset_state = uc.context_save()
        self._gdtr = None                # (base, limit) last loaded, None: unknown

    # --- set-up -------------------------------------------------------------------------
    def _init_exception_state(self):
        """Views into a saved context of the fields the hooks read and patch: env->
        error_code, exception_is_int and old_exception; the general registers; rip, cr2,
        cr3 and the FS/GS bases. Their offsets are libunicorn's layout of CPUX86State,
        found once a process (_locate_context_fields)."""
        global _CONTEXT_FIELDS
        uc = self.uc
        ctx = uc.context_save()
        base = ctypes.cast(ctx.context, ctypes.c_void_p).value
        if _CONTEXT_FIELDS is None or _CONTEXT_FIELDS[0] != ctx.size:
            _CONTEXT_FIELDS = _locate_context_fields(uc, ctx, base)
        _, dr0, first, env_at = _CONTEXT_FIELDS
        self._ctx = ctx
        self._ctx_handle = ctx.context       # for libunicorn's context calls, made directly
        self._ctx_base = base
        self._error_code = ctypes.c_int.from_address(base + dr0 - 16)
        self._is_int = ctypes.c_int.from_address(base + dr0 - 12)
        self._old_exception = ctypes.c_int.from_address(base + dr0 + 64 + 32)
        # env->regs[16] (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8-r15): read from the
        # saved context, 16 registers cost one context_update instead of 16 binding calls.
        self._gprs_at = first
        # the 16 registers as bytes, for a copy into a request without a ctypes call
        self._gprs_bytes = memoryview((ctypes.c_char * 128).from_address(base + first)).cast('B')
        self._env_at = env_at
        # rip, cr2, cr3 and the FS/GS bases in one unpack from the saved bytes
        self._ctx_bytes = memoryview((ctypes.c_char * ctx.size).from_address(base)).cast('B')
        self._env_first, self._env_values, self._env_order = _env_reader(
            [env_at[name] for name in ('rip', 'cr2', 'cr3', 'fs_base', 'gs_base')])
        self._cr2 = ctypes.c_uint64.from_address(base + self._env_at['cr2'])
        self._rip = ctypes.c_uint64.from_address(base + self._env_at['rip'])
        self.fault_cr2 = self.fault_rip = 0
        self.ctx_fresh = False                  # the saved copy still holds the CPU's state
        self._copy_at_stop = False              # ... and the CPU stopped right after it

    def _init_long_mode(self):
        uc = self.uc
        # Unicorn starts with FSGSBASE set; it stays clear, so rd/wr{fs,gs}base always
        # raise #UD: the vCPU emulates them once the guest's virtual CR4 has FSGSBASE
        # (shadow.privop.emulate_fsgsbase), with the canonical check QEMU lacks.
        uc.reg_write(x86.UC_X86_REG_CR4, (uc.reg_read(x86.UC_X86_REG_CR4) | CR4_PAE | CR4_OSFXSR |
                                          CR4_OSXMMEXCPT) & ~CR4_FSGSBASE)
        efer = uc.reg_read(x86.UC_X86_REG_MSR, MSR_EFER)
        uc.reg_write(x86.UC_X86_REG_MSR, (MSR_EFER, efer | EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE))
        cr0 = uc.reg_read(x86.UC_X86_REG_CR0) & ~0x4   # clear EM: SSE available
        uc.reg_write(x86.UC_X86_REG_CR0, cr0 | CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG)

    def _init_io_trap(self):
        """Unicorn lets `in` and `out` through at any privilege level, so a refused port
        access could not fault. QEMU does check I/O breakpoints, precisely, after each
        port access in blocks translated with hflags.IOBPT: keep one armed that never
        matches (DR3 on a port past 0xffff) and point it at the port when the guest may
        not touch it; the resulting #DB becomes the #GP the hardware would raise."""
        uc = self.uc
        self._hflags_at = self._gprs_at + _HFLAGS_AFTER_REGS
        uc.reg_write(x86.UC_X86_REG_DR3, _NO_PORT)
        uc.reg_write(x86.UC_X86_REG_DR7, _DR7_IO_BREAKPOINT_3)
        ctx = self._ctx
        uc.context_update(ctx)
        hflags = ctypes.c_uint32.from_address(self._ctx_base + self._hflags_at)
        if hflags.value & _HF_LONG_MODE != _HF_LONG_MODE:
            raise CpuError('cannot locate hflags in the Unicorn context')
        hflags.value |= _HF_IOBPT
        uc.context_restore(ctx)
        self._hflags = hflags
        self._segs_at = self._hflags_at + 8
        before = uc.reg_read(x86.UC_X86_REG_CS)
        uc.reg_write(x86.UC_X86_REG_CS, 0x5A5A)          # in 64-bit mode: the selector only
        uc.context_update(ctx)
        found = ctypes.c_uint32.from_address(self._ctx_base + self._segs_at + _SEG_CS * 24).value
        uc.reg_write(x86.UC_X86_REG_CS, before)
        if found != 0x5A5A:
            raise CpuError('cannot locate the segment registers in the Unicorn context')

    def load_gdt(self, base: int, limit: int):
        """GDTR, written only when it changes (a restart reloads the running vCPU's)."""
        if self._gdtr != (base, limit):
            self.ctx_fresh = False
            self.uc.reg_write(x86.UC_X86_REG_GDTR, (0, base, limit, 0))
            self._gdtr = (base, limit)

    def load_ldt(self, selector: int, base: int, limit: int):
        """LDTR as lldt of a present LDT descriptor would leave it (or null)."""
        flags = _LDT_DESCRIPTOR_FLAGS if selector else 0
        self.ctx_fresh = False
        self.uc.reg_write(x86.UC_X86_REG_LDTR, (selector, base, limit, flags))

    # --- hooks ----------------------------------------------------------------------------
    def _on_interrupt(self, _handle, vector, _user):
        # Registered with libunicorn directly (_add_direct_hook), as _on_syscall is.
        try:
            handle = self._ctx_handle
            if _UC_CONTEXT_SAVE(self._uch, handle):
                raise CpuError('saving the CPU context failed')
            error_code = self._error_code.value & 0xFFFFFFFF
            software = self._is_int.value != 0
            self.fault_cr2 = self._cr2.value        # what a #PF left in CR2, without a reg_read
            self.fault_rip = self._rip.value        # the faulting instruction, likewise
            self._old_exception.value = -1
            if _UC_CONTEXT_RESTORE(self._uch, handle):
                raise CpuError('restoring the CPU context failed')
            self.ctx_fresh = True                   # the saved copy is the CPU's, until a write
            if self._io_refused is not None and vector == 1:
                # the I/O breakpoint _refuse_port pointed at the port: undo the access's
                # effect on RAX and fault on the instruction instead
                rip, rax = self._io_refused
                self._io_refused = None
                self.ctx_fresh = False
                self.uc.reg_write(x86.UC_X86_REG_DR3, _NO_PORT)
                self.uc.reg_write(x86.UC_X86_REG_RAX, rax)
                self.rip = rip
                vector, error_code, software = 13, 0, False
            if vector == 8 and not software:
                # Nothing here delivers through an IDT, so a hardware #DF can only be Unicorn
                # folding a fault into a stale earlier one (seen when a run is restarted after
                # a stop requested inside this hook). With the state cleared, retrying the
                # instruction raises the real fault with its own error code.
                self._double_faults += 1
                if self._double_faults <= 3:
                    return
            self._double_faults = 0
            self._in_exception_hook = True
            try:
                self.guest.on_exception(vector, error_code, software)
            finally:
                self._in_exception_hook = False
            # A stop asked here ends the run right after this hook, with nothing else run:
            # if no register was written since the copy was restored, the CPU stops in the
            # state the copy holds (old_exception cleared), and the restart need take none.
            self._copy_at_stop = self._stopped and self.ctx_fresh
        except BaseException as exc:
            self._hook_raised(exc)

    def _on_invalid_opcode(self, uc, _user):
        # Unicorn never raises #UD to the interrupt hook: an undefined opcode (ud2, and
        # also icebp, which it does not implement) stops emulation unless this hook
        # answers True. RIP is at the instruction.
        self.guest.on_invalid_opcode()
        return True

    def _clear_pending_exception(self) -> int:
        # A stop requested inside a hook can leave env->old_exception set too, and the
        # first fault after restarting would then arrive as a double fault. (And the
        # I/O trap's hflags bit stays set, whatever the run before did.) Returns RIP.
        if self._copy_at_stop and self.ctx_fresh:
            # The exception hook stopped the CPU and nothing has written it since: its
            # copy is the CPU's state. (The copy is never restored here: the CPU has left
            # its execution loop since, which recomputed RFLAGS.)
            self._copy_at_stop = False
            if self._hflags.value & _HF_IOBPT and self._old_exception.value == -1:
                return self._rip.value
        self._copy_at_stop = False
        handle = self._ctx_handle
        if _UC_CONTEXT_SAVE(self._uch, handle):
            raise CpuError('saving the CPU context failed')
        if self._old_exception.value != -1 or not self._hflags.value & _HF_IOBPT:
            self._old_exception.value = -1
            self._hflags.value |= _HF_IOBPT
            if _UC_CONTEXT_RESTORE(self._uch, handle):
                raise CpuError('restoring the CPU context failed')
        return self._rip.value            # where the CPU is (the copy just taken says)

    def add_code_breakpoint(self, va: int):
        """Call guest.on_breakpoint(va) whenever the instruction at va is about to run."""
        return self.add_code_hook(va, lambda address: self.guest.on_breakpoint(address))

    def remove_code_breakpoint(self, handle) -> None:
        self.remove_hooks([handle])

    def add_code_hook(self, va: int, callback):
        """callback(va) whenever the instruction at va is about to run. A hook limited to
        one address costs nothing elsewhere; translated blocks must be flushed for it to
        apply to them (unicorn-facts item 8)."""
        handle = self.uc.hook_add(UC_HOOK_CODE,
                                  lambda uc, address, size, user: self._in_code_hook(callback, address),
                                  None, va, va)
        self.uc.ctl_flush_tb()
        return handle

    def add_memory_hook(self, begin: int, end: int, reads_too: bool, callback):
        """callback(access, maddr, size) before each data write (and read) whose first
        byte is in [begin, end]. Unicorn gives memory hooks machine (physical) addresses,
        not linear ones; instruction fetches are not data accesses. Translated blocks
        check memory hooks as they run, so no flush is needed beyond the TLB's."""
        kinds = UC_HOOK_MEM_WRITE | (UC_HOOK_MEM_READ if reads_too else 0)
        handle = self.uc.hook_add(
            kinds, lambda uc, access, address, size, value, user: callback(access, address, size),
            None, begin, end)
        self.flush_tlb()
        return handle

    def remove_memory_hook(self, handle) -> None:
        self.uc.hook_del(handle)

    def remove_hooks(self, handles) -> None:
        for handle in handles:
            self.uc.hook_del(handle)
        self.uc.ctl_flush_tb()

    def _on_port_in(self, uc, port, size, _user):
        value = self.guest.on_port_in(port, size)
        if value is None:
            self._refuse_port(port)
            return 0
        return value

    def _on_port_out(self, uc, port, size, value, _user):
        if not self.guest.on_port_out(port, size, value):
            self._refuse_port(port)

    def _refuse_port(self, port: int) -> None:
        uc = self.uc
        self.ctx_fresh = False
        self._io_refused = (uc.reg_read(x86.UC_X86_REG_RIP), uc.reg_read(x86.UC_X86_REG_RAX))
        uc.reg_write(x86.UC_X86_REG_DR3, port)

    def _on_cpuid(self, uc, _user):
        # Unicorn syncs RIP to the cpuid before this hook; True skips the instruction.
        return bool(self.guest.on_cpuid())

    def watch_user_instructions(self, on: bool) -> None:
        """Call guest.on_user_instruction() before every instruction in the lower
        (guest-user) half while on. An instruction hook cannot fault its own instruction:
        the rest of its translated block would run first (unicorn-facts: a RIP written in
        an instruction hook takes effect at the end of the block). An instruction hook on
        the next instruction can, because Unicorn checks for an exit right after it. It
        costs a Python call per instruction, so it is on only while a guest needs it
        (CPUID faulting, docs/UNICORN.md)."""
        if on == (self._user_insn_hook is not None):
            return
        if on:
            self._user_insn_hook = self.uc.hook_add(
                UC_HOOK_CODE, lambda uc, address, size, user: self._in_code_hook(
                    lambda _: self.guest.on_user_instruction(), address),
                None, 0, 0x00007FFFFFFFFFFF)
        else:
            self.uc.hook_del(self._user_insn_hook)
            self._user_insn_hook = None
        self.uc.ctl_flush_tb()

    def read_tsc(self) -> int:
        """The time-stamp counter the guest's rdtsc reads."""
        return self.uc.reg_read(x86.UC_X86_REG_MSR, 0x10)

    def _on_syscall(self, _handle, _user):
        self._in_syscall = True
        try:
            self.guest.on_syscall()
        except BaseException as exc:
            self._hook_raised(exc)
        finally:
            self._in_syscall = False

    def _hook_raised(self, exc: BaseException) -> None:
        """What the binding's hook wrapper does with an exception from a hook: keep the
        first for run() to raise, and stop the CPU."""
        uc = self.uc
        if uc._hook_exception is None:
            uc._hook_exception = exc
        self._copy_at_stop = False
        _UC_EMU_STOP(self._uch)

    def _add_direct_hook(self, htype: int, functype, callback, *extra) -> None:
        """A hook registered with libunicorn itself, its callback given libunicorn's
        arguments: the binding's hook_add puts two Python frames of its own (a guard and
        an adapter) before every call, and these run for every fault and hypercall. The
        callback must catch its own exceptions (_hook_raised)."""
        handle = _uc_hook_h()
        fptr = functype(callback)
        rc = _uclib.uc_hook_add(self._uch, ctypes.byref(handle), htype, fptr, None,
                                ctypes.c_uint64(1), ctypes.c_uint64(0), *extra)
        if rc:
            raise CpuError(f'adding a hook failed: {UcError(rc)}')
        self.uc._callbacks[handle.value] = fptr        # kept alive with the binding's own

    # --- registers --------------------------------------------------------------------------
    def reg(self, name: str) -> int:
        reg_id = REG[name] if name in REG else _reg_id(name)
        if reg_id in _REG64:
            if _UC_REG_READ(self._uch, reg_id, self._reg_pointer):
                raise CpuError(f'reading {name} failed')
            return self._reg_value.value
        return self.uc.reg_read(reg_id)

    def set_reg(self, name: str, value: int) -> None:
        self.ctx_fresh = False
        if name in REG:                  # every register REG names is written as 64 bits
            self._reg_value.value = value & 0xFFFFFFFFFFFFFFFF
            if _UC_REG_WRITE(self._uch, REG[name], self._reg_pointer):
                raise CpuError(f'writing {name} failed')
            return
        self.uc.reg_write(_reg_id(name), value & 0xFFFFFFFFFFFFFFFF)

    def regs(self, *names) -> tuple:
        batch = self._read_batches.get(names)
        if batch is None:
            batch = self._read_batches[names] = _RegisterBatch(names)
        rc = _UC_REG_READ_BATCH(self._uch, batch.ids, batch.pointers, batch.count)
        if rc:
            raise UcError(rc)
        return tuple(batch.values)

    def set_regs(self, **values):
        self.ctx_fresh = False
        names = tuple(values)
        batch = self._write_batches.get(names)
        if batch is None:
            batch = self._write_batches[names] = _RegisterBatch(names)
        batch.values[:] = [v & 0xFFFFFFFFFFFFFFFF for v in values.values()]
        rc = _UC_REG_WRITE_BATCH(self._uch, batch.ids, batch.pointers, batch.count)
        if rc:
            raise UcError(rc)

    def fault_gpr(self, name: str) -> int:
        """A 64-bit general register as the exception hook's saved context holds it
        (valid inside that hook, before any register is written): no binding call."""
        return ctypes.c_uint64.from_address(
            self._ctx_base + self._gprs_at + 8 * ENV_INDEX[name]).value

    def gprs(self) -> tuple:
        """The 16 general registers in env order (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi,
        r8-r15), from a fresh copy of the CPU context (valid inside hooks and between
        runs, when Unicorn has written them back)."""
        self.uc.context_update(self._ctx)
        return _GPRS16.unpack_from(ctypes.string_at(self._ctx_base + self._gprs_at, 128))

    def hypercall_registers(self):
        """rax (number) and the six argument registers rdi, rsi, rdx, r10, r8, r9."""
        g = self.gprs()
        return g[0], g[7], g[6], g[2], g[10], g[8], g[9]

    @property
    def rip(self) -> int:
        """The guest's next instruction; inside the syscall hook, the one after syscall."""
        if _UC_REG_READ(self._uch, x86.UC_X86_REG_RIP, self._rip_read_pointer):
            raise CpuError('reading RIP failed')
        rip = self._rip_read.value
        return rip + _SYSCALL_LEN if self._in_syscall else rip

    @rip.setter
    def rip(self, value: int) -> None:
        if self._in_exception_hook and self.ctx_fresh:
            # The exception hook's copy is the CPU's state: the new RIP goes into it, and
            # the CPU goes on from there when the hook returns, as from an exception
            # return. uc_reg_write of RIP would also make Unicorn leave its execution
            # loop and enter it again (quit_request), a few microseconds a store.
            self._rip.value = value & 0xFFFFFFFFFFFFFFFF
            if _UC_CONTEXT_RESTORE(self._uch, self._ctx_handle):
                raise CpuError('restoring the CPU context failed')
            return
        self.ctx_fresh = False
        # Unicorn adds the syscall length after the syscall hook returns.
        if self._in_syscall:
            value -= _SYSCALL_LEN
        self._rip_value.value = value & 0xFFFFFFFFFFFFFFFF
        if self._code_hook_depth:
            # The exit after a code hook must not resync RIP to the hooked instruction:
            # uc_reg_write sets skip_sync_pc_on_exit, which that exit clears.
            rc = _UC_REG_WRITE(self._uch, x86.UC_X86_REG_RIP, self._rip_pointer)
        else:
            # Anywhere else uc_reg_write's skip_sync_pc_on_exit would stay set for the rest
            # of the run and every later memory and I/O hook would see a stale RIP
            # (docs/UNICORN.md item 18); the batch call does not set it.
            rc = _UC_REG_WRITE_BATCH(self._uch, self._rip_ids, self._rip_pointers, 1)
        if rc:
            raise CpuError(f'writing RIP failed: Unicorn error {rc}')

    def _in_code_hook(self, callback, address):
        self._code_hook_depth += 1
        try:
            return callback(address)
        finally:
            self._code_hook_depth -= 1

    def snapshot(self) -> dict:
        """General registers, rip, rflags, cr2, cr3 and the FS/GS bases (a crash dump's),
        read as snapshot_into reads them."""
        regs = vm_event_regs_x86()
        self.snapshot_into(regs)
        return {name: getattr(regs, name) for name in _SNAPSHOT_NAMES}

    def snapshot_into(self, regs, in_fault_hook: bool = False) -> None:
        """Fill a vm_event_regs_x86 as pack_event_regs does."""
        self.pack_event_regs(memoryview(regs).cast('B'), 0, in_fault_hook)

    def pack_event_regs(self, buf, at: int, in_fault_hook: bool = False) -> None:
        """Write a vm_event_regs_x86 into buf at `at`: the general registers (its first
        16 fields are QEMU's env->regs order, one slice copy), rip, rflags, cr2, cr3 and
        the FS/GS bases, from a fresh context copy; dr7 and cr0 are written as zero, and
        the fields after cr3 up to fs_base are left as they are. in_fault_hook: the
        exception hook's own copy still holds (no register written since), so none is
        made."""
        if not (in_fault_hook and self.ctx_fresh):
            self.uc.context_update(self._ctx)
        buf[at:at + 128] = self._gprs_bytes
        rip, cr2, cr3, fs_base, gs_base = self._env_order(
            self._env_values.unpack_from(self._ctx_bytes, self._env_first))
        if self._in_syscall:
            rip += _SYSCALL_LEN
        if _UC_REG_READ(self._uch, x86.UC_X86_REG_RFLAGS, self._rflags_pointer):
            raise CpuError('reading RFLAGS failed')
        _EVENT_RFLAGS_TO_CR3.pack_into(buf, at + 128, self._rflags_value.value, rip, cr2, cr3)
        _EVENT_FS_GS.pack_into(buf, at + _EVENT_FS_BASE, fs_base, gs_base)

    def dump(self) -> dict:
        values = self.snapshot()
        values['cs'] = self.uc.reg_read(x86.UC_X86_REG_CS)
        values['ss'] = self.uc.reg_read(x86.UC_X86_REG_SS)
        return values

    def reset(self) -> None:
        """Back to the state after power-on (long mode, CPL0, nothing loaded)."""
        self.ctx_fresh = False
        self.uc.context_restore(self._reset_state)
        self._gdtr = None
        self.flush_tlb()

    def save_state(self):
        """The whole CPU state, to undo an emulated instruction."""
        return self.uc.context_save()

    def restore_state(self, state) -> None:
        self._gdtr = None
        self.ctx_fresh = False
        self.uc.context_restore(state)

    def load_code_and_stack(self, cs: int, cs_desc: int, ss: int, ss_desc: int) -> None:
        """Load CS and SS with their descriptors' hidden state, as iretq or sysret would
        (the caller has checked the descriptors). Unicorn's reg_write of CS or SS in
        64-bit mode sets only the selector (docs/UNICORN.md item 17), so the segment
        caches and QEMU's hflags (CPL, CS32, CS64, SS32) are written in the saved
        context, which is then restored; a compatibility-mode CS switches the CPU to
        32-bit code."""
        uc, ctx, base = self.uc, self._ctx, self._ctx_base
        uc.context_update(ctx)
        hflags = self._hflags.value
        cs_flags, ss_flags = cs_desc >> 32, ss_desc >> 32
        for index, selector, desc in ((_SEG_CS, cs, cs_desc), (_SEG_SS, ss, ss_desc)):
            _SEGMENT_CACHE.pack_into((ctypes.c_char * 24).from_address(
                base + self._segs_at + index * 24), 0, selector, _desc_base(desc),
                _desc_limit(desc), desc >> 32)
        hflags &= ~(_HF_CPL | _HF_CS32 | _HF_SS32 | _HF_CS64 | _HF_ADDSEG)
        if hflags & _HF_LMA and cs_flags & _DESC_L:
            hflags |= _HF_CS32 | _HF_CS64
        elif cs_flags & _DESC_B:
            hflags |= _HF_CS32
        hflags |= (ss_flags >> 13) & 3                    # CPL = SS.DPL
        if ss_flags & _DESC_B:
            hflags |= _HF_SS32
        self._hflags.value = hflags
        uc.context_restore(ctx)

    def efer(self) -> int:
        return self.uc.reg_read(x86.UC_X86_REG_MSR, MSR_EFER)

    def set_cr3(self, maddr: int) -> None:
        """Load a new root; flushes the TLB as the hardware does."""
        self.ctx_fresh = False
        self.uc.reg_write(x86.UC_X86_REG_CR3, maddr)

    def flush_tlb(self) -> None:
        self.uc.ctl(ucc.UC_CTL_TLB_FLUSH, ucc.UC_CTL_IO_WRITE)

    def flush_code_cache(self) -> None:
        self.uc.ctl_flush_tb()

    def map_mmio(self, maddr: int, size: int, read, write) -> None:
        """A device's registers at a machine address past RAM: loads call read(offset,
        size) for their value, stores call write(offset, size, value), inside the
        instruction (the binding keeps a callback's exception for run() to report)."""
        self.uc.mmio_map(maddr, size, lambda _uc, off, n, _ud: read(off, n), None,
                         lambda _uc, off, n, value, _ud: write(off, n, value), None)

    def invalidate_code(self, va: int, size: int) -> None:
        """Memory written behind the CPU's back: drop translations of those bytes, in case
        they were code. Inside the exception hook this leaves QEMU's exception state set,
        so the next fault would arrive as a double fault (docs/UNICORN.md item 20): it is
        cleared again here. (uc_mem_write would not do: it drops no translation.)"""
        self.uc.ctl_remove_cache(va, va + size)
        self._copy_at_stop = False          # the CPU's state is not the copy's any more
        self._clear_pending_exception()

    # --- running ------------------------------------------------------------------------------
    interrupted = False                 # interrupt() was called: the run loops end

    def interrupt(self) -> None:
        """Stop the guest from anywhere (a signal's watcher thread, a debugger's socket
        thread): the CPU stops at the next block and the run loop returns an
        INTERRUPTED exit. Safe from another thread: Unicorn's own watchdog stops the CPU
        the same way."""
        self.interrupted = True
        self.uc.emu_stop()

    def take_interrupt(self) -> bool:
        """Whether an interrupt is pending; clears it."""
        pending, self.interrupted = self.interrupted, False
        return pending

    def watchdog(self, seconds: Optional[float]):
        """A wall-clock limit for one run (shadow.watchdog): cancel() it when the run ends."""
        return arm_watchdog(self.uc, seconds) if seconds else NO_WATCHDOG

    def run(self, rip: Optional[int], count: int = 0, timeout_us: int = 0) -> bool:
        """Run from rip (None: from where the CPU is) until a hook stops the CPU; True if
        it stopped on request."""
        if self.interrupted:
            return True                   # asked to stop before it started: run nothing
        self._stopped = False
        here = self._clear_pending_exception()
        if rip is None:
            rip = here
        if count:
            # count= works by instrumenting each instruction as it is translated; blocks
            # already in the cache were translated without that and would run to their
            # end (a single step would run a whole block).
            self.uc.ctl_flush_tb()
        # libunicorn directly, as the binding's emu_start does it: the binding's hook
        # wrapper keeps what a hook raised in _hook_exception and stops the CPU.
        uc = self.uc
        uc._hook_exception = None
        status = _UC_EMU_START(self._uch, rip, 0, timeout_us, count)   # `until`: unused
        raised = uc._hook_exception
        if raised is not None:
            # No guest input should get this far; if one does, the run ends with an
            # internal error, not a traceback. (A hook that raised can also make Unicorn
            # fail, an invalid-instruction hook that did not answer True: the hook's
            # exception is the real story.)
            raise HypervisorError(raised) from raised
        if status:
            raise CpuError(str(UcError(status)))
        return self._stopped

    def stop(self) -> None:
        self._stopped = True
        _UC_EMU_STOP(self._uch)             # cannot fail once the engine exists
