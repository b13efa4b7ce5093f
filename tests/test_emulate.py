"""The page-table-store emulator's caches: a store is decoded once per instruction, and
decoded again when its instruction's bytes change."""
import pytest

from pvshadow.shadow.api import run_kernel
from tests.conftest import asm_kernel

REWRITTEN_STORE = '''
.equ VMASST_CMD_enable, 0
.equ VMASST_TYPE_writable_pagetables, 2
.equ store_modrm, store_site + 2
test_main:
    mov edi, VMASST_CMD_enable
    mov esi, VMASST_TYPE_writable_pagetables
    call hc_vm_assist
    call scratch_va
    mov rdi, rax
    call l1e_maddr
    mov rdi, rax
    call maddr_to_va
    mov rbx, rax                     # the scratch L1 entry, mapped read-only
    mov r13, [rbx]
    mov r14, r13
    xor r14, PTE_A                   # two valid values of the entry: r14, then r13
    xor r12d, r12d
    mov byte ptr [rip + store_modrm], 0x33   # the code page dirty before the first store,
                                              # so only the bytes tell the rewrite apart
store_site:
    mov [rbx], r14                   # 4c 89 33; rewritten below to 4c 89 2b (r13)
    inc r12d
    cmp r12d, 2
    je second
    mov rdi, [rbx]
    mov rsi, r14
    lea rdx, [rip + m_first]
    call check_eq
    mov byte ptr [rip + store_modrm], 0x2b
    jmp store_site
second:
    mov rdi, [rbx]
    mov rsi, r13
    lea rdx, [rip + m_second]
    call check_eq
    ret
m_first: .asciz "the entry after the first store"
m_second: .asciz "the entry after the rewritten store"
'''


@pytest.mark.parametrize('paging', ['direct', 'shadow'])
def test_a_store_whose_instruction_was_rewritten_is_decoded_again(tmp_path, paging):
    result = run_kernel(asm_kernel(tmp_path, 'rewritten', REWRITTEN_STORE), paging=paging,
                        audit=True, timeout=30)
    assert result.verdict == 'SUCCESS', result.console
    assert result.domain.stats['pt_writes_emulated'] == 2
