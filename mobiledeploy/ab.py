"""A/B: baseline artifacts from another git revision (exported by that revision's own code) or from
a folder, measured side by side with the candidate's on the same device in one run.

`gate --against REV|DIR` needs no stored numbers and no machine class: base and head share the
machine, its state and its noise. On `qemu:` devices the judgement is on exact instruction
counts; elsewhere the candidate and baseline artifacts are timed interleaved, round by round, and
judged with the gate's ratio-of-medians bootstrap.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .errors import ConfigError, ExportError

__all__ = ["baseline_targets", "revision_exports", "folder_targets", "export_argv", "input_argv", "check_against", "resolve_revision"]

Progress = Callable[[str], None]


def export_argv(ref: str, out: Path, inputs: Sequence[str] = ()) -> list[str]:
    """`mobiledeploy export` arguments that rebuild `ref` ('v1:g=3,scale=0.5,resolution=224') into `out`;
    `inputs`: the candidate's own export inputs (`input_argv`), so both sides are built from the same ones."""
    from .registry import get_spec, parse_model_ref

    arch, config = parse_model_ref(ref)
    argv = ["export", *_model_argv(get_spec(arch)), "--out", str(out), "--json", *inputs]
    if "input_shape" in config:
        argv += ["--input-shape", str(config.pop("input_shape"))]
    resolution = config.pop("resolution", None)
    if resolution is not None:
        argv += ["--resolution", "x".join(map(str, resolution)) if isinstance(resolution, (list, tuple)) else str(resolution)]
    for key, value in config.items():
        argv += ["--set", f"{key}={value}"]
    return argv


def input_argv(weights: str | None, export: Any = None) -> list[str]:
    """`export` options for other weights or calibration than the defaults (absolute paths: it runs elsewhere)."""
    from .records import ExportInputs

    argv = ["--weights", str(Path(weights).absolute())] if weights else []
    export = export or ExportInputs()
    if str(export.calibration) != ExportInputs.calibration:
        argv += ["--calibration", str(Path(export.calibration).absolute())]
    if export.calib_samples != ExportInputs.calib_samples:
        argv += ["--calib-samples", str(export.calib_samples)]
    return argv


def _model_argv(spec: Any) -> list[str]:
    """How `export` names the model: --arch, or a user's own by its absolute path (the export runs elsewhere)."""
    if spec.source is None:
        return ["--arch", spec.name]
    source = spec.source
    if source["kind"] == "callable":
        where, _, fn = source["ref"].rpartition(":")
        return ["--model-fn", f"{source['path']}:{fn}" if where.endswith(".py") else source["ref"]]
    return ["--onnx" if source["kind"] == "onnx" else "--exported-program", source["path"]]


def _git(repo: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise ConfigError("--against REV needs git") from None
    if proc.returncode != 0:
        raise ConfigError(" ".join((proc.stderr or proc.stdout).split()) or f"git {' '.join(args)} failed")
    return proc.stdout.strip()


def resolve_revision(rev: str, repo: Path | None = None) -> tuple[Path, str]:
    """(repository root, full commit id) of `rev` in the git repository around `repo` (default: cwd)."""
    try:
        root = Path(_git(repo or Path.cwd(), "rev-parse", "--show-toplevel"))
    except ConfigError:
        raise ConfigError(f"--against {rev!r}: not a folder, and {repo or Path.cwd()} is not in a git repository") from None
    try:
        commit = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}") if rev else ""
    except ConfigError:
        commit = ""
    if not commit:
        raise ConfigError(f"--against {rev!r} is not a commit of {root} (nor a folder of artifacts)")
    return root, commit


def check_against(against: str) -> None:
    """Before any export: the folder holds artifacts, or the revision exists."""
    if Path(against).is_dir():
        folder_targets(Path(against))
    else:
        resolve_revision(against)


class revision_exports:
    """`with revision_exports(REV) as export: export(ref, formats)` → that revision's artifact folder.

    The revision is checked out in a throwaway worktree (removed at the end, with its artifacts);
    its own package layout (pyproject's package-dir) is linked into place there, and its CLI runs
    with the same Python, offline like any export.
    """

    def __init__(self, rev: str, repo: Path | None = None, progress: Progress | None = None,
                 inputs: Sequence[str] = ()) -> None:
        self.repo, self.commit = resolve_revision(rev, repo)
        self.rev = rev
        self.progress = progress or (lambda message: None)
        self.inputs = list(inputs)

    def __enter__(self) -> Callable[[str, list[str]], Path]:
        self.tmp = Path(tempfile.mkdtemp(prefix="mobiledeploy-against-"))
        self.src = self.tmp / "src"
        self.progress(f"checking out {self.rev} ({self.commit[:12]}) in a throwaway worktree")
        _git(self.repo, "worktree", "add", "--detach", str(self.src), self.commit)
        try:
            _link_package_dirs(self.src)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self.export

    def export(self, ref: str, formats: list[str]) -> Path:
        out = self.tmp / "artifacts"
        argv = [sys.executable, "-m", "mobiledeploy", *export_argv(ref, out, self.inputs), "--formats", ",".join(["onnx", *formats])]
        self.progress(f"exporting {ref} with {self.rev}'s code")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["MOBILEDEPLOY_ARM_CHECK"] = "off"  # throwaway artifacts: only measured, never shipped (two emulated runs saved)
        proc = subprocess.run(argv, cwd=self.src, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            last = next((ln for ln in reversed(proc.stderr.splitlines()) if ln.strip()), f"exit {proc.returncode}")
            raise ExportError(f"exporting {ref} at {self.rev} failed: {last.removeprefix('mobiledeploy: error: ')}")
        try:
            return Path(json.loads(proc.stdout)["path"])
        except (ValueError, KeyError, TypeError):
            raise ExportError(f"exporting {ref} at {self.rev} printed no artifact folder") from None

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["git", "-C", str(self.repo), "worktree", "remove", "--force", str(self.src)],
                       capture_output=True, timeout=120)
        shutil.rmtree(self.tmp, ignore_errors=True)
        subprocess.run(["git", "-C", str(self.repo), "worktree", "prune"], capture_output=True, timeout=120)


def _link_package_dirs(src: Path) -> None:
    """Make `python -m mobiledeploy` in `src` import that revision's own subpackages (package-dir)."""
    try:
        project = tomllib.loads((src / "pyproject.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"the revision has no readable pyproject.toml: {exc}") from None
    mapping = project.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    for package, folder in mapping.items():
        if not package.startswith("mobiledeploy."):
            continue
        link = src / Path(*package.split("."))
        if not link.exists():
            link.symlink_to(Path(os.path.relpath(src / folder, link.parent)))


def folder_targets(folder: Path) -> dict[str, Path]:
    """slug → artifact folder for every manifest.json in `folder` or its direct subfolders."""
    from .converters.manifest import manifest_beside

    found = {}
    for path in [folder / "manifest.json", *sorted(folder.glob("*/manifest.json"))]:
        if (manifest := manifest_beside(path)) and manifest.slug:
            found[manifest.slug] = path.parent
    if not found:
        raise ConfigError(f"--against {folder}: no exported artifacts (manifest.json) in it or its subfolders")
    return found


def baseline_targets(against: str, candidates: list[Any], refs: dict[str, str],
                     progress: Progress | None = None, inputs: Sequence[str] = ()) -> Iterator[list[Any]]:
    """Yield the baseline BenchTargets matching `candidates` (same slug and precision), named '<slug>@base'.
    A revision exports them from the candidates' `inputs` (weights, calibration: `input_argv`)."""
    from .bench import target_from_file

    folder = Path(against)
    by_slug: dict[str, Path] = {}
    if folder.is_dir():
        by_slug = folder_targets(folder)
        yield _match(candidates, lambda slug, precision: by_slug.get(slug), target_from_file, against)
        return
    with revision_exports(against, progress=progress, inputs=inputs) as export:
        precisions_of: dict[str, list[str]] = {}
        for c in candidates:
            precisions_of.setdefault(c.name, []).append(c.precision)
        exported = {slug: export(refs[slug], precisions) for slug, precisions in precisions_of.items()}
        yield _match(candidates, lambda slug, precision: exported.get(slug), target_from_file, against)


def _match(candidates: list[Any], folder_of: Callable[[str, str], Path | None], load: Callable[[Path], Any],
           against: str) -> list[Any]:
    from .converters.manifest import manifest_beside

    out = []
    for c in candidates:
        folder = folder_of(c.name, c.precision)
        manifest = manifest_beside(folder / "manifest.json") if folder else None
        entry = manifest.artifacts.get(c.precision) if manifest else None
        if not entry:
            raise ConfigError(f"--against {against}: no {c.precision} artifact of {c.name}")
        target = load(folder / entry.path)
        out.append(replace(target, name=f"{c.name}@base", precision=c.precision))
    return out
