"""`mobiledeploy accuracy`: top-1/top-5 of every artifact of an export on a labelled image folder."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer

from .app import ArtifactsRoot, Json, Resolution, Weights, app, print_json, set_activity
from .options import (CalibrationSeedOpt, DbOpt, FloatLayersOpt, Int16ActivationsOpt, ModelSelection, ReportOpt,
                      model_options)


@app.command("accuracy")
@model_options()
def accuracy_cmd(
    images: Annotated[Path, typer.Argument(help="Labelled images: IMAGES/<class>/<image>, or any files with --labels.")],
    selection: ModelSelection,
    resolution: Resolution = "224",
    weights: Weights = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="A labels file: one 'PATH LABEL' (or PATH,LABEL) "
                                                   "per line, PATH relative to IMAGES.")] = None,
    classes: Annotated[Optional[Path], typer.Option("--classes", help="The model's class names, one per line in output "
                                                    "order (default: integer folder names are the output index, other "
                                                    "names are taken sorted).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Evaluate N images, the classes taken in turn.")] = None,
    per_layer: Annotated[int, typer.Option("--per-layer", help="Also each int8 op's error against fp32 on the first N "
                                           "images, worst first (table, and a plot with --report).")] = 0,
    devices: Annotated[Optional[list[str]], typer.Option("--device", "-d", help="Where to run, repeatable: local (always: "
                                                         "torch, ONNX, TFLite) and qemu:CPU (the TFLite files on an "
                                                         "emulated Arm core).")] = None,
    calibration: Annotated[str, typer.Option("--calibration", help="int8 calibration of the export: a directory of "
                                             "images, or 'synthetic'.")] = "synthetic",
    calib_samples: Annotated[int, typer.Option("--calib-samples", help="Calibration inputs for int8.")] = 32,
    calibration_seed: CalibrationSeedOpt = 0,
    out: ArtifactsRoot = None,
    float_layers: FloatLayersOpt = None,
    int16_activations: Int16ActivationsOpt = False,
    cosine_floor: Annotated[float, typer.Option("--int8-cosine-floor", help="The export's int8 parity floor.")] = 0.98,
    db: DbOpt = None,
    report: ReportOpt = None,
    json_out: Json = False,
) -> None:
    """Top-1 and top-5 of torch fp32, ONNX, TFLite fp32 and TFLite int8 on labelled images, with 95% Wilson
    intervals, and the paired fp32-vs-int8 difference with McNemar's exact test. With --device qemu:CPU the
    TFLite files also run on an emulated Arm core, and int8 there is compared with int8 here image by image.

    The model is exported first (or its valid export reused), as `mobiledeploy export` would with the same
    options. Images are resized to the model's input and normalised with its mean/std. Unreadable files are
    skipped and counted. The evaluation is stored in the results database.

    Example: mobiledeploy accuracy ./val --arch v1 --g 3 --scale 0.25 --set num_classes=10 --resolution 32 --weights digits.pt --device qemu:cortex-a76
    Example: mobiledeploy accuracy ./val --model-fn mynet.py:build --weights mynet.pt --limit 500 --json
    """
    import functools

    from ..accuracy_session import AccuracyRequest, accuracy_session
    from ..preflight import check_db, check_output_dir
    from .console import warn_export_calibration

    check_output_dir(report, "--report")
    check_db(db)
    name, config = selection.choice()
    req = AccuracyRequest(images=images, name=name, config=config, resolution=resolution, weights=weights,
                          labels=labels, classes=classes, limit=limit, per_layer=per_layer,
                          devices=tuple(devices or ["local"]), calibration=calibration, calib_samples=calib_samples,
                          out=out, int16_activations=int16_activations,
                          export_options={"float_layers": float_layers, "int8_cosine_floor": cosine_floor,
                                          "calibration_seed": calibration_seed})
    result = accuracy_session(req, db, functools.partial(_export_display, name), ImageProgress,
                              exported=warn_export_calibration)
    for warning in result["warnings"]:
        import sys

        sys.stderr.write(f"mobiledeploy: warning: {warning}\n")
    if report is not None:
        from ..accuracy_report import write_accuracy_report

        result["report_files"] = {k: str(v) for k, v in write_accuracy_report(report, result).items()}
    if json_out:
        print_json(result)
        return
    print_accuracy(result)


@contextmanager
def _export_display(name: str) -> Iterator[Any]:
    """The export's stages on stderr, each also naming what an interrupt interrupted."""
    from ..converters.progress import StageProgress
    from .console import with_activity

    with StageProgress() as progress:
        yield with_activity(progress, name)


class ImageProgress:
    """A bar per artifact and device on a terminal (stderr); without one, a line as each one ends."""

    def __enter__(self) -> "ImageProgress":
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                             console=self.console, disable=not self.console.is_terminal)
        self.bars.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bars.__exit__(*exc)

    def __call__(self, label: str, total: int) -> Any:
        import sys
        import time

        set_activity(f"accuracy: {label}")
        task, start, done = self.bars.add_task(label, total=total), time.perf_counter(), [0]

        def tick(n: int) -> None:
            self.bars.advance(task, n)
            done[0] += n
            if done[0] >= total and not self.console.is_terminal:
                sys.stderr.write(f"✓ {label}: {total} images, {time.perf_counter() - start:.1f} s\n")

        return tick


def print_accuracy(result: dict[str, Any]) -> None:
    from rich.table import Table

    from ..accuracy_report import (LAYER_COLUMNS, PAIRED_COLUMNS, RESULT_COLUMNS, arm_lines, layer_rows, paired_rows,
                                   result_rows, summary)
    from .console import stdout_console

    console = stdout_console()
    for key, line in summary(result).items():
        if line:
            console.print(f"{key}: {line}", highlight=False, soft_wrap=True)
    for rows, columns, title in ((result_rows(result), RESULT_COLUMNS, "accuracy (measured)"),
                                 (paired_rows(result), PAIRED_COLUMNS, "fp32 vs int8, paired"),
                                 (layer_rows(result)[:10], LAYER_COLUMNS, "int8 error per layer, worst first (measured)")):
        if rows:
            table = Table(*[header for _, header, _ in columns], title=title)
            for row in rows:
                table.add_row(*[row[key] for key, _, _ in columns])
            console.print(table)
    for line in arm_lines(result):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"stored as evaluation {result['evaluation_id']}", highlight=False)
