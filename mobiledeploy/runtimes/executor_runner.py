"""ExecuTorch on a phone with the user's own `executor_runner` (`bench --device adb:SERIAL --runtime executorch
--runner PATH`): the `adb:` device's `executorch` runtime.

ExecuTorch publishes no prebuilt runner for Android; users build `examples/portable/executor_runner` (or the
XNNPACK one) for their phone. This runtime pushes that binary once per sha256 (`bin/<sha256>/executor_runner`, as
`benchmark_model` is), asks its `--help` once (gflags lists its flags: a binary that names no `--model_path` and
`--num_executions` is not a runner), pushes the .pte and runs

    executor_runner --model_path=M --num_executions=N --cpu_threads=T [--etdump_path=E]

with every word quoted by the transport. What it prints (ExecuTorch 1.x, examples/portable/executor_runner/
executor_runner.cpp; ET_LOG lines are `I 00:00:00.123456 executorch:FILE:LINE] message`):

    Model executed successfully N time(s) in T ms.     → runs = N, mean_ms = T / N  (parsed)
    ETDump written to file 'E'.                         → E pulled; per-op times read by ExecuTorch's Inspector
                                                          when the executorch extra is installed (parsed)

Not parsed, because the runner does not print them: per-run timings (only the total over N executions, so no
median, spread or percentiles), init and first-inference times, memory. Warm-up: the runner has none of its own;
the first of the N executions is timed with the rest.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..artifact_kinds import artifacts_read_as
from ..errors import ConfigError, RunnerError, SetupError
from ..files import sha256_file

if TYPE_CHECKING:
    from ..records import BenchOptions, BenchTarget, RunResult
    from .base import Transport

__all__ = ["ExecutorRunnerRuntime", "parse_runner_output", "RUNNER_NAME"]

RUNNER_NAME = "executor_runner"
_EXECUTED = re.compile(r"Model executed successfully (\d+) time\(s\)(?: in ([0-9.]+) ms)?\.")
_ETDUMP = re.compile(r"ETDump written to file '([^']+)'")
_ERROR = re.compile(r"^E [0-9:.]+ executorch:\S+\] (.*)$")


def parse_runner_output(text: str) -> dict[str, Any]:
    """{"executions", "total_ms" (None when the runner printed no time), "etdump" (its path or None), "error"
    (its last E line or None)} from executor_runner's output."""
    done = _EXECUTED.search(text)
    etdump = _ETDUMP.search(text)
    errors = [m.group(1) for m in map(_ERROR.match, text.splitlines()) if m]
    return {"executions": int(done.group(1)) if done else None,
            "total_ms": float(done.group(2)) if done and done.group(2) else None,
            "etdump": etdump.group(1) if etdump else None, "error": errors[-1] if errors else None}


class ExecutorRunnerRuntime:
    """Times a .pte with the user's executor_runner on a phone reached by `transport`."""

    name = "executorch"
    artifacts = artifacts_read_as(".pte")

    def __init__(self, device: "Transport") -> None:
        self.transport = device
        self._installed: dict[str, tuple[str, set[str]]] = {}  # sha256 → (remote path, flags its --help names)

    def run(self, target: "BenchTarget", options: "BenchOptions", result: "RunResult", workdir: str) -> None:
        if not options.runner:
            raise ConfigError("--runtime executorch on a phone needs --runner PATH: ExecuTorch's executor_runner "
                              "built for it (examples/portable/executor_runner)")
        remote_bin, flags = self._install(Path(options.runner).expanduser(), result.observed)
        self.transport.make_workdir(workdir)
        remote_model = f"{workdir}/{Path(target.artifact).name}"
        self.transport.push(Path(target.artifact), remote_model)
        words: list[Any] = [remote_bin, f"--model_path={remote_model}", f"--num_executions={options.runs}"]
        if "cpu_threads" in flags:
            words.append(f"--cpu_threads={options.threads}")
        etdump = f"{workdir}/model.etdump"
        if "etdump_path" in flags:
            words.append(f"--etdump_path={etdump}")
        proc = self.transport.shell(words, timeout=self.transport.run_timeout_s, check=False, what="executor_runner",
                                    on_timeout=lambda m: RunnerError(f"{m}: executor_runner did not finish"))
        parsed = parse_runner_output(f"{proc.stdout}\n{proc.stderr}")
        if proc.returncode != 0 or parsed["executions"] is None:
            why = parsed["error"] or f"exit status {proc.returncode}, no 'Model executed successfully' line"
            raise RunnerError(f"executor_runner failed on {Path(target.artifact).name}: {why[:300]}")
        if parsed["total_ms"] is None:
            raise RunnerError("executor_runner printed no time ('Model executed successfully N time(s).' only): "
                              "build it from ExecuTorch 0.5 or later, which prints 'in T ms'")
        self._fill(result, parsed, options)
        if parsed["etdump"]:  # the path asked for (the printed one is the same on a phone)
            result.op_profile, result.observed["etdump"] = self._etdump(etdump)

    def _fill(self, result: "RunResult", parsed: dict[str, Any], options: "BenchOptions") -> None:
        result.status, result.error = "ok", None
        result.runs, result.warmup = parsed["executions"], 0
        result.mean_ms = parsed["total_ms"] / parsed["executions"]
        result.median_ms = result.mean_ms  # the runner prints one total: the mean is the only central figure
        result.observed.update(runner=RUNNER_NAME, timing="mean of one total over every execution (no per-run times)")

    def _install(self, local: Path, config: dict[str, Any]) -> tuple[str, set[str]]:
        """Push the runner unless the phone has it (bin/<sha256>/executor_runner); its flags from --help, once."""
        sha = sha256_file(local)
        config.update(runner_binary=str(local), runner_sha256=sha, runner_pushed=False)
        if sha not in self._installed:
            remote = f"{self.transport.remote_root}/bin/{sha}/{RUNNER_NAME}"
            have = self.transport.shell(["sha256sum", remote], check=False, what="sha256sum")
            if have.returncode != 0 or have.stdout.split()[:1] != [sha]:
                self.transport.shell(["mkdir", "-p", remote.rpartition("/")[0]])
                self.transport.push(local, remote)
                self.transport.shell(["chmod", "755", remote])
                config["runner_pushed"] = True
            self._installed[sha] = (remote, self._flags(remote, local))
        return self._installed[sha]

    def _flags(self, remote: str, local: Path) -> set[str]:
        """The flags the runner's gflags --help lists; SetupError when it lists no --model_path/--num_executions."""
        proc = self.transport.shell([remote, "--help"], check=False, what="executor_runner --help")
        flags = set(re.findall(r"-(\w+) \(", f"{proc.stdout}\n{proc.stderr}"))
        if not {"model_path", "num_executions"} <= flags:
            raise SetupError(f"--runner {local} is not ExecuTorch's executor_runner: its --help names no "
                             "-model_path and -num_executions flags")
        return flags

    def _etdump(self, remote: str) -> tuple[list[dict[str, Any]] | None, dict[str, Any]]:
        """Pull the ETDump; its per-kernel rows (`pte_profile.rows_from_etdump`, the executorch extra), else why not."""
        from .pte_profile import rows_from_etdump

        with tempfile.TemporaryDirectory(prefix="mobiledeploy-etdump-") as tmp:
            local = Path(tmp) / "model.etdump"
            self.transport.pull(remote, local)
            record: dict[str, Any] = {"bytes": local.stat().st_size}
            try:
                rows = rows_from_etdump(local)
            except Exception as exc:  # not an ETDump, or no executorch here: the run's timing stands
                return None, {**record, "parsed": False, "why": " ".join(str(exc).split())[:200] or type(exc).__name__}
        return rows, {**record, "parsed": True}
