"""One x86-64 decoder for the hypervisor (capstone, with operand details), loaded on first
use: a run that never emulates an instruction does not pay for importing capstone."""

# capstone's operand kinds (capstone.x86_const, stable across its versions)
X86_OP_REG, X86_OP_IMM, X86_OP_MEM = 1, 2, 3

_decoder = None
_CsError = Exception


def decoder():
    global _decoder, _CsError
    if _decoder is None:
        from capstone import CS_ARCH_X86, CS_MODE_64, Cs, CsError
        _decoder = Cs(CS_ARCH_X86, CS_MODE_64)
        _decoder.detail = True
        _CsError = CsError
    return _decoder


def decode_one(code: bytes, address: int):
    """The first instruction in code, at address, or None (undecodable or empty)."""
    md = _decoder or decoder()
    try:
        return next(md.disasm(code, address, 1), None)
    except _CsError:
        return None
