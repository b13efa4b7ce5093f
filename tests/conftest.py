import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def asm_kernel(tmp_path, name, body):
    """Write a one-off asm kernel (with the shared include) and return its path."""
    path = tmp_path / f'{name}.S'
    path.write_text('.include "pv.inc"\n' + body)
    return str(path)
