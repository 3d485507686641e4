"""Reading what the `insn_count` plugin wrote: phase boundaries into instructions per phase."""

from __future__ import annotations

from dataclasses import dataclass, field

from .guest import MARK, PHASES

__all__ = ["Counts", "parse_counts", "CountsError"]


class CountsError(ValueError):
    """The plugin's output does not hold the markers a complete guest run issues."""


@dataclass
class Counts:
    """Instructions of each phase, the marker bracket's own cost already subtracted."""

    bracket: int                      # instructions of an empty bracket (marker, marker), subtracted below
    init: int                         # Interpreter() + allocate_tensors()
    first: int                        # the first invoke()
    warmup: list[int] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)
    vcpus: int = 1                    # guest threads seen by the end
    total: int | None = None          # the whole process, when it exited normally
    blocks: list[tuple[int, int, int]] = field(default_factory=list)  # profile: (address, insns, executions)


def parse_counts(text: str) -> Counts:
    pairs: dict[int, list[int]] = {code: [] for code in PHASES.values()}
    open_at: dict[int, int] = {}
    vcpus, total = 1, None
    blocks: list[tuple[int, int, int]] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "M" and len(parts) == 5:
            code, phase, count, vcpus = (int(p) for p in parts[1:])
            if code != MARK:
                continue
            if phase in open_at:
                pairs.setdefault(phase, []).append(count - open_at.pop(phase))
            else:
                open_at[phase] = count
        elif parts[0] == "P" and len(parts) == 4:
            blocks.append((int(parts[1], 16), int(parts[2]), int(parts[3])))
        elif parts[0] == "E" and len(parts) == 3:
            total, vcpus = int(parts[1]), max(vcpus, int(parts[2]))
    if not pairs[PHASES["null"]] or not pairs[PHASES["init"]] or not pairs[PHASES["first"]] or not pairs[PHASES["run"]]:
        missing = [name for name, code in PHASES.items() if name != "warmup" and not pairs[code]]
        raise CountsError(f"the counting plugin saw no complete {', '.join(missing)} phase")
    bracket = min(pairs[PHASES["null"]])
    net = lambda values: [v - bracket for v in values]  # noqa: E731
    return Counts(bracket=bracket, init=net(pairs[PHASES["init"]])[0], first=net(pairs[PHASES["first"]])[0],
                  warmup=net(pairs[PHASES["warmup"]]), runs=net(pairs[PHASES["run"]]), vcpus=vcpus, total=total,
                  blocks=blocks)
