"""Where the Arm instructions of an inference go: functions (XNNPACK micro-kernels, TFLite's own
kernels) and kernel kinds, from the plugin's per-block counts.

The plugin counts each translation block's executions inside the profile window (`profile=1`);
the guest hands over its /proc/self/maps, which places each block in a mapped file; the file's
ELF symbol table (LiteRT keeps a .symtab with the micro-kernel names) names the function.
"""

from __future__ import annotations

import bisect
import re
import shutil
import struct
import subprocess
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["KernelCost", "ArmProfile", "elf_functions", "parse_maps", "attribute", "kernel_kind", "KINDS"]

#: kernel kind by function name, first match wins (XNNPACK micro-kernel and operator names, TFLite's ops)
KINDS: tuple[tuple[str, str], ...] = (
    (r"^(void )?tflite::(ops::builtin|optimized_ops|optimized_integer_ops|reference_ops|reference_integer_ops|"
     r"MultiplyByQuantizedMultiplier)", "TFLite's own kernels (not delegated)"),
    (r"^(void )?(torch::executor::native|executorch::kernels|torch::executor::kernels)::", "ExecuTorch's own kernels (not delegated)"),
    (r"xnnpack[^+]*\.so\+\?$", "XNNPACK code its library names no symbol for"),
    (r"dwconv", "depthwise conv"),
    (r"igemm|gemm|conv_hwc|ppmm|spmm", "conv / GEMM (1x1, dense, FC)"),
    (r"maxpool|argmaxpool", "max pool"),
    (r"avgpool|gavgpool|pavgpool|rsum|rdsum|reduce|mean", "average pool / mean"),
    (r"transpose|xx_copy|x8_copy|x32_copy|zip|unpool|pad|fill|memcpy|memmove|memset|x32_packw|pack", "data movement (transpose, pad, pack, copy)"),
    (r"vcvt|requant|quantize", "(de)quantisation"),
    (r"vadd|vsub|vmul|vbinary|vclamp|vrelu|vlrelu|vunary|vhswish|vsigmoid|vtanh|vmax|vmin|vsqr|raddstore|vexp", "elementwise"),
)
RUNTIME = "runtime (interpreter, Python, libc)"

#: analysis op → kernel kind, to set the instruction share beside the share of mult-adds
_GEMM, _DWCONV = "conv / GEMM (1x1, dense, FC)", "depthwise conv"
MAC_KINDS = {"conv2d": _GEMM, "conv2d_group": _GEMM, "conv2d_1x1": _GEMM, "linear": _GEMM, "conv2d_dw": _DWCONV}


@dataclass
class KernelCost:
    function: str
    library: str
    kind: str
    instructions: float  # per inference


@dataclass
class ArmProfile:
    model: str
    precision: str                           # fp32, int8, int16x8
    artifact: str                            # the manifest artifact counted (artifact_kinds: "fp32", "pte_int8", ...)
    cpu: str
    instructions: float                      # per inference, all functions
    kernels: list[KernelCost] = field(default_factory=list)
    kinds: list[dict[str, Any]] = field(default_factory=list)
    unattributed: float = 0.0                # instructions in code no mapped file names
    estimate: dict[str, Any] | None = None   # with a phone: estimated ms (mobiledeploy.estimate), never measured

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "unit": "instructions per inference"}


def kernel_kind(function: str, library: str) -> str:
    """The kind of `function` (a symbol, or 'LIB+?' where LIB's symbol table names none: the executorch wheel's
    XNNPACK library exports only part of its functions)."""
    for pattern, kind in KINDS:
        if re.search(pattern, function):
            return kind
    return RUNTIME


def parse_maps(text: str) -> list[tuple[int, int, int, str]]:
    """Executable file mappings of /proc/self/maps: (start, end, file offset, path), sorted by start."""
    out = []
    for line in text.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and "x" in parts[1] and parts[5].startswith("/"):
            start, end = (int(x, 16) for x in parts[0].split("-"))
            out.append((start, end, int(parts[2], 16), parts[5].strip()))
    return sorted(out)


@lru_cache(maxsize=32)
def elf_functions(path: str) -> tuple[list[int], list[tuple[int, int, str]], list[tuple[int, int, int]]]:
    """FUNC symbols of an ELF64 little-endian file (.symtab, else .dynsym) by virtual address:
    (starts, [(start, size, name)], loadable segments [(file offset, vaddr, file size)])."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return [], [], []
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads = []
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1:  # PT_LOAD
            loads.append((p_offset, p_vaddr, p_filesz))
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    chosen = [s for s in sections if s[1] == 2] or [s for s in sections if s[1] == 11]  # SHT_SYMTAB, SHT_DYNSYM
    funcs: list[tuple[int, int, str]] = []
    for sym in chosen:
        strtab = sections[sym[6]]
        str_off = strtab[4]
        for off in range(sym[4], sym[4] + sym[5], 24):
            name_off, info, _other, shndx, value, size = struct.unpack_from("<IBBHQQ", data, off)
            if info & 0xF == 2 and shndx != 0 and value:
                end = data.index(b"\0", str_off + name_off)
                funcs.append((value, size, data[str_off + name_off:end].decode("utf-8", "replace")))
    funcs.sort()
    return [f[0] for f in funcs], funcs, loads


def _symbolise(maps: list[tuple[int, int, int, str]], address: int) -> tuple[str, str] | None:
    starts = [m[0] for m in maps]
    i = bisect.bisect_right(starts, address) - 1
    if i < 0 or address >= maps[i][1]:
        return None
    start, _end, offset, path = maps[i]
    file_offset = address - start + offset
    lib = Path(path).name
    try:
        keys, funcs, loads = elf_functions(path)
    except (OSError, struct.error, ValueError):
        return f"{lib}+0x{file_offset:x}", lib
    segment = next(((o, v) for o, v, size in loads if o <= file_offset < o + size), None)
    file_address = file_offset - segment[0] + segment[1] if segment else file_offset
    j = bisect.bisect_right(keys, file_address) - 1
    if j >= 0 and file_address < funcs[j][0] + max(funcs[j][1], 1):
        return funcs[j][2], lib
    return f"{lib}+?", lib


def attribute(blocks: list[tuple[int, int, int]], maps_text: str, runs: int, *, model: str = "", precision: str = "",
              artifact: str = "", cpu: str = "", macs_by_op: dict[str, int] | None = None) -> ArmProfile:
    """Instructions per inference by function and kind (blocks counted over `runs` inferences)."""
    maps = parse_maps(maps_text)
    per_function: dict[tuple[str, str], float] = defaultdict(float)
    unattributed = 0.0
    for address, n_insns, execs in blocks:
        cost = n_insns * execs / runs
        where = _symbolise(maps, address)
        if where is None:
            unattributed += cost
        else:
            per_function[where] += cost
    names = _demangle([f for f, _ in per_function])
    kernels = sorted((KernelCost(names.get(f, f), lib, kernel_kind(names.get(f, f), lib), cost)
                      for (f, lib), cost in per_function.items()), key=lambda k: -k.instructions)
    total = sum(k.instructions for k in kernels) + unattributed
    by_kind: dict[str, float] = defaultdict(float)
    for k in kernels:
        by_kind[k.kind] += k.instructions
    macs_total = sum((macs_by_op or {}).values())
    mac_share: dict[str, float] = defaultdict(float)
    for op, macs in (macs_by_op or {}).items():
        if macs_total and op in MAC_KINDS:
            mac_share[MAC_KINDS[op]] += macs / macs_total
    kinds = [{"kind": kind, "instructions": value, "share": value / total if total else 0.0,
              "mac_share": mac_share.get(kind, 0.0) if macs_by_op else None,
              "instructions_per_mac": value / (mac_share[kind] * macs_total) if mac_share.get(kind) else None}
             for kind, value in sorted(by_kind.items(), key=lambda kv: -kv[1])]
    return ArmProfile(model=model, precision=precision, artifact=artifact, cpu=cpu, instructions=total, kernels=kernels,
                      kinds=kinds, unattributed=unattributed)


def _demangle(names: list[str]) -> dict[str, str]:
    mangled = [n for n in names if n.startswith("_Z")]
    tool = shutil.which("c++filt")
    if not mangled or tool is None:
        return {}
    proc = subprocess.run([tool], input="\n".join(mangled), capture_output=True, text=True, timeout=60)
    plain = proc.stdout.splitlines()
    return dict(zip(mangled, plain)) if len(plain) == len(mangled) else {}
