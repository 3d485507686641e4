"""The `block_cache` plugin (mobiledeploy/qemu/block_cache.c): built on demand beside the counting plugin, its
output read into per-block records (address, instructions, executions, memory accesses, cache misses, bytes)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import SetupError

__all__ = ["BlockRecord", "parse_blocks", "plugin_path", "plugin_argument"]

SOURCE = Path(__file__).resolve().parent.parent / "qemu" / "block_cache.c"
HEADER = SOURCE.with_name("qemu_plugin_api.h")
#: every input of the build (the source and the headers it includes): the built plugin is cached by their digest
BUILD_INPUTS = (SOURCE, HEADER, SOURCE.with_name("plugin_io.h"))


@dataclass
class BlockRecord:
    address: int
    instructions: int           # in the block
    executions: int             # inside the profile window (all its translations summed)
    accesses: int               # memory accesses by the block's instructions, per window
    misses: tuple[int, int, int]  # lines missed at L1, L2, L3 (a miss at the last level present = memory)
    code: bytes

    def dram_lines(self, levels: int) -> int:
        """Lines fetched from memory: the misses of the last cache level present (1-3)."""
        return self.misses[levels - 1]


def parse_blocks(text: str, skip_main: bool = False) -> list[BlockRecord]:
    """`B` lines, translations of one address merged (their executions and misses summed). With `skip_main`
    the blocks inside the main executable (the `X` range: in a model run the guest's Python interpreter, which
    drives the runs) are left out, as the exact counts leave them out."""
    merged: dict[tuple[int, bytes], BlockRecord] = {}
    main_lo = main_hi = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "X" and skip_main:
            main_lo, main_hi = int(parts[1], 16), int(parts[2], 16)
        if len(parts) != 9 or parts[0] != "B" or main_lo <= int(parts[1], 16) < main_hi:
            continue
        address, code = int(parts[1], 16), bytes.fromhex(parts[8])
        n, execs, accesses, m1, m2, m3 = (int(p) for p in parts[2:8])
        if (address, code) in merged:
            old = merged[(address, code)]
            old.executions += execs
            old.accesses += accesses
            old.misses = (old.misses[0] + m1, old.misses[1] + m2, old.misses[2] + m3)
        else:
            merged[(address, code)] = BlockRecord(address, n, execs, accesses, (m1, m2, m3), code)
    return list(merged.values())


def plugin_path(cache: Path | None = None) -> Path:
    """The built plugin, compiled once per source digest into the toolkit's cache (temp file, then rename)."""
    from ..files import cache_dir

    digest = hashlib.sha256(b"".join(path.read_bytes() for path in BUILD_INPUTS)).hexdigest()[:16]
    out = (cache or cache_dir() / "estimate") / f"block_cache-{digest}.so"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise SetupError("building the block_cache QEMU plugin needs gcc (Debian: apt-get install gcc)")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    proc = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-I", str(HEADER.parent), "-o",
                           str(tmp), str(SOURCE)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise SetupError(f"building the block_cache QEMU plugin failed: {(proc.stderr or '').strip()[:300]}")
    os.replace(tmp, out)
    return out


def plugin_argument(l1_kib: int, l2_kib: int, l3_kib: int, marker: int, line_bytes: int = 64) -> str:
    """The `-plugin` argument (without `out=`) for one cache hierarchy."""
    return f"{plugin_path()},marker={marker},l1={l1_kib},l2={l2_kib},l3={l3_kib},line={line_bytes}"
