"""Benchmark targets from existing artifacts (an export's folder, a .tflite file), interleaved rounds, and
`run_bench` (time, then store). Exporting first is the orchestrator's part (`mobiledeploy.measure`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .artifact_kinds import PRECISIONS, suffix_of
from .devices.base import Device, new_result, new_run_id
from .errors import ConfigError, ExportError, MobiledeployError
from .records import BenchOptions, BenchTarget, ErrorKind, ExportInputs, RunResult, error_kind_of

if TYPE_CHECKING:
    from .converters.manifest import Manifest

__all__ = ["BenchTarget", "BenchOptions", "ExportInputs", "BenchRun", "targets_from_export", "runtime_artifacts",
           "target_from_file", "run_interleaved",
           "run_bench", "parse_precisions"]

Progress = Callable[[str], None]


@dataclass
class BenchRun:
    """What `run_bench` did: every result (stored), where, and the error that stopped the device."""

    results: list[RunResult]
    db_path: Path
    session_id: str
    device_error: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 all ran; 2 a setup step is missing (no benchmark binary to be had); 1 a run failed."""
        if self.ok:
            return 0
        return 2 if any(r.error_kind == ErrorKind.SETUP for r in self.results) else 1

    def raise_for_setup(self) -> "BenchRun":
        """SetupError (one line, exit 2) when the runs stopped on a setup step; the runs stay stored as failed.
        Commands that judge what was measured (compare, guidelines, gate) call it: nothing can be judged."""
        from .errors import SetupError

        failed = next((r for r in self.results if r.error_kind == ErrorKind.SETUP), None)
        if failed is not None:
            raise SetupError(failed.error or "a setup step is missing")
        return self


def parse_precisions(text: str | Sequence[str]) -> tuple[str, ...]:
    """The precisions of a `--formats` value (a comma list, or a sequence), in order, each once; ConfigError
    for one that is not in `artifact_kinds.PRECISIONS`."""
    items = [f.strip().lower() for f in (text.split(",") if isinstance(text, str) else text) if f.strip()]
    bad = [f for f in items if f not in PRECISIONS]
    if bad or not items:
        raise ConfigError(f"--formats takes a comma list of {', '.join(PRECISIONS)} (got {text!r})")
    return tuple(dict.fromkeys(items))


def runtime_artifacts(runtimes: Sequence[str | None], precisions: Sequence[str]) -> dict[tuple[str | None, str], str]:
    """(runtime, precision) → the manifest artifact it times, for the precisions each runtime times (onnxruntime:
    fp32 only); ConfigError for a runtime that times none of `precisions`."""
    from .runtimes import artifact_for, runtime_class

    found: dict[tuple[str | None, str], str] = {}
    for runtime in runtimes:
        times = [p for p in precisions if runtime is None or p in runtime_class(runtime).artifacts] or precisions[:1]
        found.update({(runtime, p): artifact_for(runtime, p) for p in times})  # raises for a runtime that times none
    return found


def targets_from_export(folder: str | Path, manifest: Manifest, precisions: Sequence[str],
                        runtimes: Sequence[str | None] = (None,), identity: dict[str, Any] | None = None,
                        arch: str | None = None, config: dict[str, Any] | None = None,
                        resolution: tuple[int, int] | None = None) -> list[BenchTarget]:
    """The targets of an exported artifact folder (its manifest): one per runtime and precision, runtime first.
    `identity` (weights, calibration, a user's model's sha256) is recorded with every run."""
    identity = dict(identity or {})
    name = manifest.slug or Path(folder).name
    if source_sha256 := manifest.source_sha256:  # a user's model: named the same across edits of its file (a gate pairs them)
        identity["source_sha256"] = source_sha256
        name = name.replace(f"-m{source_sha256[:8]}", "")
    targets = []
    for (runtime, precision), key in runtime_artifacts(runtimes, precisions).items():
        entry = manifest.artifacts.get(key)
        if not entry:
            raise ExportError(f"the export of {manifest.arch or arch} has no {key} artifact")
        targets.append(BenchTarget(
            name=name,
            artifact=Path(folder) / entry.path,
            precision=precision,
            sha256=entry.sha256,
            macs=manifest.macs,
            config={"arch": manifest.arch or arch, **(manifest.config or config or {}), **identity},
            resolution=tuple(manifest.resolution or resolution),  # type: ignore[arg-type]
            runtime=runtime,
        ))
    return targets


def target_from_file(path: Path, runtime: str | None = None) -> BenchTarget:
    """A --model file: its precision from the input dtype, MACs from a manifest.json beside it if any."""
    from .files import sha256_file
    from .runtimes import runtime_class

    if not path.is_file():
        raise ConfigError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".tflite", ".pte"):
        raise ConfigError(f"--model takes a .tflite (or, with --runtime executorch, .pte) file (got {path.name}); "
                          "export ONNX models first")
    reads = {suffix_of(key) for key in runtime_class(runtime).artifacts.values()} if runtime else {".tflite"}
    if suffix not in reads:
        kinds = " or ".join(sorted(s.lstrip(".").upper() for s in reads))
        raise ConfigError(f"--runtime {runtime} times {kinds} models: give --onnx FILE.onnx or a model to export")
    # a .pte names its precision only in its file name (the export's model_int8.pte); its manifest, read below, says it
    precision = _tflite_precision(path) if suffix == ".tflite" else ("int8" if "int8" in path.name else "fp32")
    target = BenchTarget(name=path.stem, artifact=path.resolve(), precision=precision, sha256=sha256_file(path),
                         runtime=runtime)
    from .converters.manifest import manifest_beside

    manifest = manifest_beside(path.resolve())
    if manifest and (found := manifest.entry_of_file(path.name, target.sha256)) is not None:
        target.name = manifest.slug or target.name
        target.precision = found[0] if found[0] in PRECISIONS else target.precision
        target.macs = manifest.macs
        target.config = {"arch": manifest.arch, **manifest.config}
        target.resolution = tuple(manifest.resolution) if manifest.resolution else None
    return target


def _tflite_precision(path: Path) -> str:
    """int8 when the model takes integer input (full-integer quantization), fp32 for float input."""
    from .runtimes.litert import input_details

    try:
        dtypes = {d["dtype"].__name__ for d in input_details(path)}
    except Exception:  # not a readable model: the run will say so
        return "other"
    if dtypes & {"int8", "uint8"}:
        return "int8"
    return "fp32" if dtypes <= {"float32", "float16"} else "other"


def run_interleaved(device: Device, targets: Sequence[BenchTarget], options: BenchOptions, rounds: int = 1,
                    progress: Progress | None = None, *, on_start: Callable[[BenchTarget, int], RunResult] | None = None,
                    on_result: Callable[[RunResult], None] | None = None) -> list[RunResult]:
    """Round r runs every target once, in order A B … on even rounds and … B A on odd ones.

    `on_start(target, round)` may return a placeholder RunResult (e.g. already stored as failed): its
    run_id, allocated once there, is the id the device's run gets. Once the device is gone or unreachable, the targets
    left are recorded as failed without trying them.
    """
    results: list[RunResult] = []
    fatal: str | None = None
    total, done = rounds * len(targets), 0
    for round_index in range(rounds):
        order = list(targets) if round_index % 2 == 0 else list(reversed(targets))
        for target in order:
            done += 1
            if progress:
                progress(f"[{done}/{total}] {target.name} {target.precision} on {device.uri}"
                         + (f" (round {round_index + 1}/{rounds})" if rounds > 1 else ""))
            placeholder = on_start(target, round_index) if on_start else None
            run_id = placeholder.run_id if placeholder is not None else new_run_id()
            if fatal:
                result = new_result(target, options, device.uri, run_id).failed(f"not run: {fatal}")
                result.observed["error_type"] = "NotRun"
                result.error_kind = ErrorKind.NOT_RUN.value
            else:
                result = device.run(target, options, run_id)
            result.round = round_index
            if _ends_the_device(result):
                fatal = result.error
            if on_result:
                on_result(result)
            results.append(result)
    return results


def run_bench(device_uri: str, targets: Sequence[BenchTarget], options: BenchOptions, *, rounds: int = 1,
              db: str | Path | None = None, adb_server: str | None = None,
              progress: Progress | None = None, collected: list[RunResult] | None = None) -> BenchRun:
    """Open the device, time every target (interleaved rounds), store every run as it ends.

    `collected`, when given, receives each result as it is stored, so a caller that is interrupted
    still knows what was measured.

    Device faults (adb missing, unknown serial, device gone, disk full, runner failing) become
    failed results, stored like any other; only bad input (an unknown device URI) raises.
    """
    from .devices import check_options, open_device
    from .qemu.env import EmulatorMissingError
    from .results import ResultsStore, git_commit

    from .devices.kinds import runtime_for

    options.validate()
    check_options(device_uri, options)
    targets = [replace(t, runtime=runtime_for(device_uri, t.runtime)) for t in targets]
    session = new_run_id()
    with ResultsStore(db) as store:
        git = git_commit()
        def record(result: RunResult) -> None:
            result.session_id = session
            store.finish(result, git=git)
            if collected is not None:
                collected.append(result)

        def begin(target: BenchTarget, round_index: int) -> RunResult:
            placeholder = new_result(target, options, device_uri)
            placeholder.round, placeholder.session_id = round_index, session
            store.begin(placeholder, git=git)
            return placeholder

        try:
            device = open_device(device_uri, adb_server=adb_server)
        except (ConfigError, EmulatorMissingError):  # bad input, or a setup step to run: not a device fault
            raise
        except MobiledeployError as exc:
            return _all_failed(device_uri, targets, options, rounds, exc, begin, record, store.path, session)
        try:
            try:
                device.info()
            except MobiledeployError as exc:
                return _all_failed(device_uri, targets, options, rounds, exc, begin, record, store.path, session)
            results = run_interleaved(device, targets, options, rounds, progress, on_start=begin, on_result=record)
        finally:
            try:
                device.cleanup()
            finally:
                device.close()
    fatal = next((r.error for r in results if _ends_the_device(r)), None)
    return BenchRun(results, store.path, session, fatal)


def _ends_the_device(result: RunResult) -> bool:
    return result.error_kind is not None and ErrorKind(result.error_kind).ends_the_device


def _all_failed(device_uri: str, targets: Sequence[BenchTarget], options: BenchOptions, rounds: int,
                exc: MobiledeployError, begin: Callable[[BenchTarget, int], RunResult],
                record: Callable[[RunResult], None], db_path: Path, session: str) -> BenchRun:
    from .devices.local import local_versions

    message = " ".join(str(exc).split())
    results = []
    for round_index in range(rounds):
        for target in targets:
            placeholder = begin(target, round_index)
            result = new_result(target, options, device_uri, placeholder.run_id).failed(message)
            result.versions = local_versions()
            result.round = round_index
            result.observed["error_type"] = type(exc).__name__
            result.error_kind = error_kind_of(exc)
            record(result)
            results.append(result)
    return BenchRun(results, db_path, session, message)
