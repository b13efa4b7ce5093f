"""Emulating a guest store into one of its own page tables (Xen's ptwr / sh_x86_emulate).

A page-table frame is never writable in the CPU's view, so a store to it faults. When the
paging mode emulates writes to that level, the instruction is applied here and the new
entry goes through the same validation as mmu_update (write_guest_entry), so refcounts
and shadows follow. The common stores (mov, xchg, cmpxchg) are decoded with capstone and
applied inside the fault hook; any other instruction that writes memory (rep movs/stos,
read-modify-write ALU ops, cmpxchg16b, ...) is single-stepped by the run loop with the
page redirected to a scratch copy, and the copy's changed entries are applied. A write
the validation refuses leaves everything as it was and the guest gets its #PF.
"""
from dataclasses import dataclass
from typing import Optional


from pvshadow.shadow.cpu import ENV_INDEX
from pvshadow.shadow.disasm import X86_OP_IMM, X86_OP_MEM, X86_OP_REG, decode_one
from pvshadow.shadow.paging.x86 import ADDR_MASK, leaf_entry

_ACCUMULATOR = {1: 'al', 2: 'ax', 4: 'eax', 8: 'rax'}
_FAST = {'mov', 'xchg', 'cmpxchg'}
# RFLAGS bits written by CMP
CF, PF, AF, ZF, SF, OF = 1, 1 << 2, 1 << 4, 1 << 6, 1 << 7, 1 << 11


APPLIED, REFUSED = 'applied', 'refused'


@dataclass
class StepRequest:
    """An instruction the fault hook could not finish itself: the run loop single-steps
    it. A page-table store runs on a scratch copy of the table; with grant_flags (a
    mem_access grant) it runs on the frame itself, mapped with those rights."""
    va: int
    table_mfn: int
    level: int
    error_code: int
    grant_flags: int = 0


@dataclass(frozen=True)
class Store:
    """What the fast path needs of a decoded store, cached by instruction bytes."""
    mnemonic: str            # mov, xchg, cmpxchg
    size: int                # bytes stored
    source_reg: Optional[str]
    imm: int
    length: int              # instruction length


def _store_of(insn) -> Optional[Store]:
    mnemonic = insn.mnemonic.split()[-1]          # 'lock cmpxchg' -> 'cmpxchg'
    ops = insn.operands
    if mnemonic not in _FAST or len(ops) != 2:
        return None
    mem_first = ops[0].type == X86_OP_MEM
    mem_op, other = (ops[0], ops[1]) if mem_first else (ops[1], ops[0])
    if mem_op.type != X86_OP_MEM or (mnemonic != 'xchg' and not mem_first):
        return None
    if mem_op.size not in (1, 2, 4, 8):
        return None
    if other.type == X86_OP_IMM:
        return Store(mnemonic, mem_op.size, None, other.imm & ((1 << (mem_op.size * 8)) - 1),
                     insn.size)
    if other.type == X86_OP_REG:
        return Store(mnemonic, mem_op.size, insn.reg_name(other.reg), 0, insn.size)
    return None


_UNDECODED = object()


def _cmp_flags(a: int, b: int, size: int) -> int:
    bits = size * 8
    mask = (1 << bits) - 1
    result = (a - b) & mask
    flags = 0
    if a < b:
        flags |= CF
    if result == 0:
        flags |= ZF
    if result >> (bits - 1):
        flags |= SF
    if ((a ^ b) & (a ^ result)) >> (bits - 1) & 1:
        flags |= OF
    if (a ^ b ^ result) & 0x10:
        flags |= AF
    if bin(result & 0xFF).count('1') % 2 == 0:
        flags |= PF
    return flags


class PtWriteEmulator:
    def __init__(self, vcpu):
        self.vcpu = vcpu
        self.cpu = vcpu.cpu
        # (root, code page) -> (page maddr, the walk's (entry maddr, entry) at each level):
        # reused while those entries are unchanged, so a store loop walks its code once.
        self._code_pages = {}
        self._decoded = {}                   # instruction bytes -> Store or None
        self._stores = {}                    # (root, rip) -> (mapping checks, maddr, bytes, Store)

    def try_emulate(self, va: int, error_code: int, leaf: Optional[int] = None) -> bool:
        """True when the fault was a page-table store this mode emulates (applied now, or
        queued for single-stepping); False leaves the #PF to the guest. leaf is the L1
        entry the paging mode's walk for this fault found, if it walked."""
        v = self.vcpu
        if not v.kernel_mode:
            return False          # Xen's ptwr path is for guest kernel mode only: a user
                                  # store into a page table is the guest's own #PF
        d = v.domain
        paging = d.paging
        mem = d.mem
        if leaf is None and (va >> 47) in (0, 0x1FFFF):
            leaf = leaf_entry(mem.q, v.current_table(), va)     # a mode that did not walk
        if leaf is None or not leaf & 1:
            return False
        table_mfn = (leaf & ADDR_MASK) >> 12
        level = paging.table_level(table_mfn)
        if level is None or not paging.emulates_writes_to(level, d.vm_assist):
            return False
        if paging.access is not None and not paging.access.allow_pt_write(v, table_mfn, va):
            return True                    # a vm_event, a crash, or the vCPU paused
        rip = self.cpu.fault_rip                # try_emulate runs in the #PF hook
        store = self.store_at(rip)
        if store is not None:
            outcome = self._fast(store, va, table_mfn, level, in_fault_hook=True)
            if outcome is APPLIED:
                self.cpu.rip = rip + store.length
                return True
            if outcome is REFUSED:
                return False
        v.request_step(StepRequest(va, table_mfn, level, error_code))
        return True

    def store_at(self, rip: int) -> Optional[Store]:
        """The store the instruction at rip makes, or None: fetch_code and decode_store,
        remembered per (root, rip) while the code page's mapping and the instruction's
        bytes are unchanged (a store loop decodes its store once)."""
        v = self.vcpu
        mem = v.domain.mem
        key = (v.current_table(), rip, v.altp2m_idx)
        hit = self._stores.get(key)
        if hit is not None:
            checks, maddr, code, store = hit
            q = mem.q
            for word, entry in checks:
                if q[word] != entry:
                    break
            else:
                if mem.view[maddr:maddr + len(code)] == code:
                    return store
        code = self.fetch_code(rip)
        store = self.decode_store(code, rip) if code else None
        page = self._code_pages.get((key[0], rip >> 12, key[2]))
        if code and page is not None and (rip & 0xFFF) + len(code) <= 0x1000:
            if len(self._stores) > 256:
                self._stores.clear()
            self._stores[key] = (page[1], page[0] + (rip & 0xFFF), code, store)
        return store

    def fetch_code(self, rip: int) -> bytes:
        v = self.vcpu
        mem = v.domain.mem
        key = (v.current_table(), rip >> 12, v.altp2m_idx)
        hit = self._code_pages.get(key)
        if hit is not None:
            q = mem.q
            for word, entry in hit[1]:
                if q[word] != entry:
                    hit = None
                    break
        if hit is None:
            page = v.domain.paging.code_page(v, rip)
            if page is None:
                return b''
            hit = (page[0] << 12, page[1])
            if len(self._code_pages) > 64:
                self._code_pages.clear()
            self._code_pages[key] = hit
        offset = rip & 0xFFF
        if offset <= 0x1000 - 15:
            return mem.read(hit[0] + offset, 15)
        try:
            return v.copy_from_guest(rip, 15)
        except Exception:
            return mem.read(hit[0] + offset, 0x1000 - offset)

    def decode_store(self, code: bytes, rip: int) -> Optional[Store]:
        store = self._decoded.get(code, _UNDECODED)
        if store is not _UNDECODED:
            return store
        insn = decode_one(code, rip)
        store = _store_of(insn) if insn is not None else None
        if len(self._decoded) > 256:
            self._decoded.clear()
        self._decoded[code] = store
        return store

    def emulate_store(self, va: int, mfn: int) -> bool:
        """Apply the store at RIP to data frame mfn directly (a mem_access "emulate"):
        True when it was a mov/xchg/cmpxchg this path decodes, False to single-step it."""
        if not self.vcpu.domain.frames.is_valid(mfn):
            return False                   # a device's registers: not memory to write
        rip = self.cpu.rip
        store = self.store_at(rip)
        if store is None or self._fast(store, va, mfn, 0) is not APPLIED:
            return False
        self.vcpu.domain.paging.code_written(self.vcpu, va, mfn, store.size)
        self.cpu.rip = rip + store.length
        return True

    # --- the fast path: mov / xchg / cmpxchg into one table -----------------------------------
    def _fast(self, store: Store, va: int, table_mfn: int, level: int,
              in_fault_hook: bool = False):
        """APPLIED, REFUSED (validation said no), or None (this path cannot do it). Level 0
        is a plain data frame: the bytes are written as they are."""
        size = store.size
        if (va & 0xFFF) + size > 0x1000:
            return None
        cpu = self.cpu
        if not store.source_reg:
            value = store.imm
        elif in_fault_hook and store.source_reg in ENV_INDEX:   # the hook's saved context
            value = cpu.fault_gpr(store.source_reg)
        else:
            value = cpu.reg(store.source_reg) & ((1 << (size * 8)) - 1)
        maddr = (table_mfn << 12) | (va & 0xFFF)
        d = self.vcpu.domain
        if store.mnemonic == 'mov':          # the common case: nothing but the store
            if level == 0:
                d.mem.write(maddr, value.to_bytes(size, 'little'))
            elif not self._store(table_mfn, level, va & 0xFFF, size, value):
                return REFUSED
            d.stats['pt_writes_emulated' if level else 'stores_emulated'] += 1
            return APPLIED
        mem = d.mem
        if size == 8 and not maddr & 7:
            old = mem.q[maddr >> 3]
        else:
            old = int.from_bytes(mem.read(maddr, size), 'little')
        updates = {}
        if store.mnemonic == 'cmpxchg':
            acc_name = _ACCUMULATOR[size]
            acc = cpu.reg(acc_name)
            flags = cpu.reg('rflags') & ~(CF | PF | AF | ZF | SF | OF)
            flags |= _cmp_flags(acc, old, size)
            updates['rflags'] = flags
            if acc != old:
                updates[acc_name] = old
                value = None                       # no store
        elif store.mnemonic == 'xchg':
            updates[store.source_reg] = old
        if level == 0:
            if value is not None:
                self.vcpu.domain.mem.write(maddr, value.to_bytes(size, 'little'))
        elif value is not None and not self._store(table_mfn, level, va & 0xFFF, size, value):
            return REFUSED
        for name, val in updates.items():
            cpu.set_reg(name, val)
        self.vcpu.domain.stats['pt_writes_emulated' if level else 'stores_emulated'] += 1
        return APPLIED

    def _store(self, table_mfn: int, level: int, offset: int, size: int, value: int) -> bool:
        """Merge the stored bytes into the entry they touch and write it validated. As
        Xen's ptwr_emulated_update (and the shadow code for PV guests), only a naturally
        aligned store is emulated: a misaligned one, which could straddle two entries,
        is refused whole and the guest gets its #PF."""
        if offset & (size - 1):
            return False
        d = self.vcpu.domain
        index = offset >> 3
        if size == 8:
            return d.paging.write_guest_entry(table_mfn, index, level, value) == 0
        entry = bytearray(d.mem.read((table_mfn << 12) + index * 8, 8))
        entry[offset & 7:(offset & 7) + size] = value.to_bytes(size, 'little')
        return d.paging.write_guest_entry(table_mfn, index, level,
                                          int.from_bytes(entry, 'little')) == 0


def single_step(domain, vcpu, req: StepRequest, scratch_mfn: int) -> Optional[str]:
    """Run one instruction with the page-table page at req.va redirected to a scratch copy,
    then apply the entries it changed. Returns None, or why the store was refused."""
    if req.grant_flags:
        _step_with(domain, vcpu, req.va, req.table_mfn, req.grant_flags)
        domain.stats['mem_access_single_steps'] += 1
        return None
    cpu = domain.cpu
    mem = domain.mem
    mem.write(scratch_mfn << 12, mem.read(req.table_mfn << 12, 4096))
    saved = cpu.save_state()
    _step_with(domain, vcpu, req.va, scratch_mfn, 0)
    domain.stats['pt_writes_single_stepped'] += 1
    if vcpu.exit is not None:
        return None
    before, after = mem.frame_u64s(req.table_mfn), mem.frame_u64s(scratch_mfn)
    if domain.paging.access is not None and before != after and \
            not domain.paging.access.allow_pt_write(vcpu, req.table_mfn, req.va,
                                                    in_fault_hook=False):
        cpu.restore_state(saved)
        return None
    changes = {index: after[index] for index in range(512) if before[index] != after[index]}
    if changes:
        rc = domain.paging.write_guest_entries(req.table_mfn, req.level, changes)
        if rc:
            cpu.restore_state(saved)
            return f'entries {sorted(changes)} of the L{req.level} table at mfn ' \
                f'{req.table_mfn:#x}: {rc}'
    return None


def _step_with(domain, vcpu, va: int, mfn: int, flags: int) -> None:
    """Execute the instruction at RIP once with va mapped to mfn (flags: see redirect),
    the code page already in the translations, then put the mapping back."""
    cpu = domain.cpu
    domain.paging.prefault_code(vcpu, cpu.rip)
    restore = domain.paging.redirect(vcpu, va, mfn, flags)
    cpu.flush_tlb()
    vcpu.stepping = True
    vcpu.step_grant = bool(flags)
    try:
        cpu.run(cpu.rip, count=1)
    finally:
        vcpu.stepping = vcpu.step_grant = False
        restore()
        cpu.flush_tlb()
