"""Reading what the `insn_count` plugin wrote: phase boundaries into instructions per phase.

A phase's count is what ran between its two markers outside the guest's main executable (the
Python interpreter that drives the run): the model's kernels, the runtime, libc and the marker
call itself (the empty bracket, subtracted). The interpreter's own share varies from call to call
with its bytecode specialisation and allocator, never with the model, so leaving it out makes the
count repeat exactly; `harness` keeps it, for the record.
"""

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
    started_in_phases: int = 0        # guest threads started between the first and the last marker (work in a phase)
    total: int | None = None          # the whole process, when it exited normally
    blocks: list[tuple[int, int, int]] = field(default_factory=list)  # profile: (address, insns, executions)
    harness: list[int] = field(default_factory=list)  # the interpreter's instructions inside each measured run


def parse_counts(text: str) -> Counts:
    pairs: dict[int, list[int]] = {code: [] for code in PHASES.values()}
    harness: list[int] = []
    open_at: dict[int, tuple[int, int]] = {}
    vcpus, total, at_marks = 1, None, []
    blocks: list[tuple[int, int, int]] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "M" and len(parts) in (5, 6):
            code, phase, count, vcpus, in_main = (int(p) for p in [*parts[1:], "0"][:5])
            at_marks.append(vcpus)
            if code != MARK:
                continue
            if phase in open_at:
                start, start_main = open_at.pop(phase)
                pairs.setdefault(phase, []).append((count - start) - (in_main - start_main))
                if phase == PHASES["run"]:
                    harness.append(in_main - start_main)
            else:
                open_at[phase] = (count, in_main)
        elif parts[0] == "P" and len(parts) == 4:
            blocks.append((int(parts[1], 16), int(parts[2]), int(parts[3])))
        elif parts[0] == "E" and len(parts) in (3, 4):
            total, vcpus = int(parts[1]), max(vcpus, int(parts[2]))
    if not pairs[PHASES["null"]] or not pairs[PHASES["init"]] or not pairs[PHASES["first"]] or not pairs[PHASES["run"]]:
        missing = [name for name, code in PHASES.items() if name != "warmup" and not pairs[code]]
        raise CountsError(f"the counting plugin saw no complete {', '.join(missing)} phase")
    bracket = min(pairs[PHASES["null"]])
    net = lambda values: [v - bracket for v in values]  # noqa: E731
    return Counts(bracket=bracket, init=net(pairs[PHASES["init"]])[0], first=net(pairs[PHASES["first"]])[0],
                  warmup=net(pairs[PHASES["warmup"]]), runs=net(pairs[PHASES["run"]]), vcpus=vcpus,
                  started_in_phases=at_marks[-1] - at_marks[0], total=total,
                  blocks=blocks, harness=harness)
