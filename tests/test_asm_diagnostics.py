"""Assembler diagnostics name the user's file and line: syntax errors, undefined symbols
by name, keystone's pitfalls and its silent miscompiles (checked against capstone's
disassembly); .include looks beside the kernel, then in -I directories, then in
asm/include."""
import pytest

from pvshadow.guests.image import KernelError
from pvshadow.guests.kernels import load_kernel


def _kernel(tmp_path, body, name='k.S'):
    path = tmp_path / name
    path.write_text('.include "pv.inc"\n' + body)
    return str(path)


@pytest.mark.parametrize('body, line, says', [
    ('test_main:\n    mov rax, 1\n    movx rbx, 2\n    ret\n', 4, 'Invalid mnemonic'),
    ('test_main:\n    mov rax, [rip + nowhere]\n    ret\n', 3, "undefined symbol 'nowhere'"),
    ('test_main:\n    rep movsb\n    lea rsi, [rip + stack_top]\n    ret\n', 4,
     "undefined symbol 'stack_top'"),
    ('test_main:\n    call word\n    ret\nword:\n    ret\n', 5, "'word' is an operand-size keyword"),
    ('test_main:\n    mov rax, [rbx+\n    ret\n', 3, 'unclosed memory operand'),
    ('test_main:\n    mov rax, [rbx + ]\n    ret\n', 3, 'incomplete memory operand'),
    ('.equ A, 1\n.equ B, 2\ntest_main:\n    mov rax, [r14 + A + B]\n    ret\n', 5,
     'keystone drops all but one symbol'),
    ('.equ N, 4\ntest_main:\n    mov rsi, -N\n    ret\n', 4, 'negated symbol'),
    ('test_main:\n    ret\nmsg: .ascii "unterminated\n', 4, 'unterminated string'),
])
def test_an_error_names_the_users_file_and_line(tmp_path, body, line, says):
    path = _kernel(tmp_path, body)
    with pytest.raises(KernelError) as info:
        load_kernel(path)
    message = str(info.value)
    assert message.startswith(f'{path}:{line}: '), message
    assert says in message and '\n' not in message


def test_an_error_inside_an_include_names_the_include(tmp_path):
    (tmp_path / 'bad.inc').write_text('helper:\n    ret\n    pushx rax\n')
    path = _kernel(tmp_path, '.include "bad.inc"\ntest_main:\n    ret\n')
    with pytest.raises(KernelError, match=r'bad\.inc:3: keystone cannot assemble it'):
        load_kernel(path)


def test_include_looks_beside_the_kernel_then_in_the_i_directories(tmp_path):
    other = tmp_path / 'lib'
    other.mkdir()
    (other / 'helper.inc').write_text('helper:\n    ret\n')
    path = _kernel(tmp_path, '.include "helper.inc"\ntest_main:\n    call helper\n    ret\n')
    with pytest.raises(KernelError, match="k.S:2: cannot include 'helper.inc'"):
        load_kernel(path)
    assert 'helper' in load_kernel(path, include_dirs=[str(other)]).symbols
    (tmp_path / 'helper.inc').write_text('helper:\n    nop\n    ret\n')
    assert 'helper' in load_kernel(path).symbols          # beside the kernel: found first


def test_every_builtin_kernel_passes_the_instruction_checks():
    from pvshadow.guests.kernels import kernel_names
    for name in kernel_names():
        load_kernel(name)
