"""Cycles per execution of a basic block on one core's pipeline, from LLVM's scheduling models (llvm-mca).

The block's bytes are disassembled by llvm-mc (one line per instruction, so an encoding it cannot read is
known by its line), then every block is one llvm-mca code region, iterated: the block's steady-state cost
(Total Cycles / Iterations) with its loop-carried dependencies, as when the block is a loop body. A block
llvm-mc or llvm-mca cannot read is returned as None: the caller reports it as uncovered, never as zero.
Debian's llvm-14 gives `llvm-mca`/`llvm-mc`; LLVM 14 has its own scheduling models for cortex-a53, a55, a57,
kryo, falkor, exynos and others, and uses the Cortex-A57 model for cortex-a72 ... a78 and x1/x2
(llvm/lib/Target/AArch64/AArch64.td, `ProcessorModel<"cortex-a76", CortexA57Model, ...>`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Iterable

from ..errors import SetupError

__all__ = ["block_cycles", "disassemble", "require_tools", "ITERATIONS", "MATTR"]

ITERATIONS = 200
#: every feature the emulated cores give XNNPACK (dot product on cortex-a76): decoding must not depend on -mcpu
MATTR = "+neon,+fullfp16,+dotprod,+rcpc,+lse,+crc,+rdm,+aes,+sha2"
CHUNK = 400   # regions per llvm-mca process
_INVALID = re.compile(r"<stdin>:(\d+):\d+: (?:warning|error): invalid instruction encoding")
_REGION = re.compile(r"\[(\d+)\] Code Region - b(\d+)\s+Iterations:\s+(\d+)\s+Instructions:\s+\d+\s+Total Cycles:\s+(\d+)")
_ERROR_LINE = re.compile(r"<stdin>:(\d+):\d+: error")


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(f"{name}-14")
    if found is None:
        raise SetupError(f"{name} is not installed (Debian: apt-get install llvm; `make arm` does it)")
    return found


def require_tools() -> None:
    """SetupError (one line, with the package) unless llvm-mc and llvm-mca are installed."""
    _tool("llvm-mc")
    _tool("llvm-mca")


def disassemble(codes: list[bytes]) -> list[list[str] | None]:
    """Assembly lines per block (A64, 4 bytes an instruction); None for a block with an unreadable encoding."""
    lines, owner = [], []
    for i, code in enumerate(codes):
        for at in range(0, len(code) - len(code) % 4, 4):
            lines.append(" ".join(f"0x{b:02x}" for b in code[at:at + 4]))
            owner.append(i)
    proc = subprocess.run([_tool("llvm-mc"), "--disassemble", "-triple=aarch64", f"-mattr={MATTR}"],
                          input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=600)
    invalid = {int(m.group(1)) - 1 for m in _INVALID.finditer(proc.stderr)}
    text = iter(ln.strip().replace("\t", " ") for ln in proc.stdout.splitlines()
                if ln.strip() and not ln.strip().startswith("."))
    out: list[list[str] | None] = [[] for _ in codes]
    for n, o in enumerate(owner):
        asm = None if n in invalid else next(text, None)
        if asm is None:
            out[o] = None
        elif out[o] is not None:
            out[o].append(asm)
    for i, code in enumerate(codes):
        if out[i] is not None and (len(code) % 4 or len(out[i]) != len(code) // 4):
            out[i] = None
    return out


def block_cycles(blocks: list[list[str] | None], mcpu: str) -> list[float | None]:
    """Steady-state cycles per execution of each block on `mcpu` (None where the model cannot read it)."""
    result: list[float | None] = [None] * len(blocks)
    todo = [i for i, b in enumerate(blocks) if b]
    for start in range(0, len(todo), CHUNK):
        _mca_chunk(blocks, todo[start:start + CHUNK], mcpu, result)
    return result


def _mca_chunk(blocks: list[list[str] | None], chunk: list[int], mcpu: str, result: list[float | None]) -> None:
    """One llvm-mca process for `chunk`; a region it rejects is dropped (left None) and the rest run again."""
    while chunk:
        text, first_line = _regions(blocks, chunk)
        proc = subprocess.run([_tool("llvm-mca"), "-mtriple=aarch64", f"-mcpu={mcpu}", f"-mattr={MATTR}",
                               f"-iterations={ITERATIONS}", "-resource-pressure=false", "-instruction-info=false"],
                              input=text, capture_output=True, text=True, timeout=600)
        if proc.returncode == 0:
            for m in _REGION.finditer(proc.stdout):
                result[int(m.group(2))] = int(m.group(4)) / int(m.group(3))
            return
        rejected = {_region_at(first_line, int(m.group(1))) for m in _ERROR_LINE.finditer(proc.stderr)}
        rejected.discard(None)
        if not rejected:
            if "unsupported" in proc.stderr or "error" in proc.stderr:
                rejected = {chunk[0]} if len(chunk) == 1 else set()
            if not rejected:  # unexplained: split the chunk in two until the culprit is alone
                half = len(chunk) // 2
                if half == 0:
                    return
                _mca_chunk(blocks, chunk[:half], mcpu, result)
                chunk = chunk[half:]
                continue
        chunk = [i for i in chunk if i not in rejected]


def _regions(blocks: list[list[str] | None], chunk: Iterable[int]) -> tuple[str, list[tuple[int, int]]]:
    parts, first_line, line = [], [], 1
    for i in chunk:
        body = blocks[i] or []
        first_line.append((line, i))
        parts += [f"# LLVM-MCA-BEGIN b{i}", *body, "# LLVM-MCA-END"]
        line += len(body) + 2
    return "\n".join(parts) + "\n", first_line


def _region_at(first_line: list[tuple[int, int]], line: int) -> int | None:
    owner = None
    for start, i in first_line:
        if start > line:
            break
        owner = i
    return owner
