"""`mobiledeploy export`: a registered model to ONNX, TFLite fp32 and int8, parity proven, with a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ..converters.manifest import Manifest

from .options import CalibrationSeedOpt, FloatLayersOpt, Int16ActivationsOpt, ModelSelection, model_options
from .app import Json, Resolution, Weights, app, print_json
from .console import warn_export_calibration, with_activity


@app.command("export")
@model_options()
def export_cmd(
    selection: ModelSelection,
    resolution: Resolution = "224",
    out: Annotated[Path, typer.Option("--out", "-o", help="Root folder: files go to OUT/<arch-config-HxW>/.")] = Path("artifacts"),
    formats: Annotated[str, typer.Option("--formats", help="Comma-separated: onnx, fp32, int8 (int8 builds fp32 too), int16x8 (TFLite int16 activations, int8 weights; also --int16-activations); pte_fp32, pte_int8: ExecuTorch .pte with the XNNPACK delegate (the executorch extra).")] = "onnx,fp32,int8",
    calibration: Annotated[str, typer.Option("--calibration", help="A directory of images, or 'synthetic' (seeded, offline).")] = "synthetic",
    calib_samples: Annotated[int, typer.Option("--calib-samples", help="Calibration inputs for int8.")] = 32,
    calibration_seed: CalibrationSeedOpt = 0,
    weights: Weights = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when valid artifacts exist.")] = False,
    cosine_floor: Annotated[float, typer.Option("--int8-cosine-floor", help="Fail when int8 vs fp32 cosine is below this.")] = 0.98,
    float_layers: FloatLayersOpt = None,
    int16_activations: Int16ActivationsOpt = False,
    reparameterize: Annotated[bool, typer.Option("--reparameterize", help="Export the deployment form: call the model's own fuse() / reparameterize() / switch_to_deploy() first (timm's convention).")] = False,
    json_out: Json = False,
) -> None:
    """Export to ONNX, TFLite fp32 and TFLite int8, proving at every step that outputs match PyTorch.

    TFLite models take NHWC input (the manifest says so); int8 ones take and return int8 with the scale and zero point recorded in manifest.json. Valid artifacts are reused unless --force.

    Your own model instead of --arch: --model-fn FILE.py:NAME (a callable returning an nn.Module), --onnx FILE.onnx
    or --exported-program FILE.pt2, with --input-shape 1x3xHxW unless the model declares its input.

    Example: mobiledeploy export --arch v1 --g 3 --calibration ./val_images --calib-samples 64 --calibration-seed 1
    Example: mobiledeploy export --model-fn mynet.py:build --set width=32 --input-shape 1x3x224x224 --weights mynet.pt
    Example: mobiledeploy export --onnx mynet.onnx
    Example: mobiledeploy export --arch v1 --g 3 --weights my.pt --float-layers auto:2   # the 2 worst int8 layers in float
    Example: mobiledeploy export --arch mobilevit_xxs --float-layers none   # full-integer int8 (LayerNorms too), for integer-only NPUs
    Example: mobiledeploy export --arch v1 --g 3 --weights my.pt --int16-activations   # + model_int16x8.tflite
    Example: mobiledeploy export --arch v1 --g 3 --formats fp32,int8,pte_fp32,pte_int8
    Example: mobiledeploy export --model-fn mobileone.py:build --reparameterize
    """
    from ..converters import export_model
    from ..converters.progress import StageProgress

    name, config = selection.choice()
    with StageProgress() as progress:
        result = export_model(
            name, config, resolution=resolution, out_dir=out, formats=f"{formats},int16x8" if int16_activations else formats,
            calibration=calibration,
            calib_samples=calib_samples, weights=weights, force=force, progress=with_activity(progress, name), int8_cosine_floor=cosine_floor,
            float_layers=float_layers, calibration_seed=calibration_seed,
            reparameterize=reparameterize,
        )
    warn_export_calibration(result.manifest)
    warn_delegation(result.manifest)
    if json_out:
        print_json({"path": str(result.path), "reused": result.reused, "manifest": result.manifest.to_dict()})
        return
    print_summary(result)


def warn_delegation(manifest: Manifest) -> None:
    """One line per TFLite artifact that does not run as one XNNPACK partition on the host."""
    import sys

    from ..converters.delegation import delegation_summary, fully_delegated

    for key in ("fp32", "int8"):
        entry = manifest.artifacts.get(key)
        found = entry.delegation.to_dict() if entry and entry.delegation else None
        if found and not fully_delegated(found):
            sys.stderr.write(f"mobiledeploy: warning: {key} is not fully delegated on the host: {delegation_summary(found)} "
                             f"(why: manifest.json artifacts.{key}.delegation.why)\n")


def print_summary(result: Any) -> None:
    from rich.console import Console
    from rich.table import Column, Table

    manifest = result.manifest
    console = Console()
    table = Table("format", Column("file", no_wrap=True), "MB", "sha256", "input", "parity", title=str(result.path))
    for key, entry in manifest.artifacts.items():
        io = (entry.inputs or [{}])[0]
        shown_io = f"{io.get('dtype', '')} {io.get('layout', '')} {'x'.join(map(str, io.get('shape', [])))}".strip()
        table.add_row(key, entry.path, f"{(entry.bytes or 0) / 1e6:.1f}", (entry.sha256 or "")[:8], shown_io,
                      _parity_text(manifest.parity.get(key)))
    console.print(table)
    arm = manifest.parity.get("arm") or {}
    if arm.get("skipped"):
        console.print("Arm check skipped: the emulated Arm64 environment is not set up (mobiledeploy qemu setup)")
    elif arm:
        parts = [f"{key} {arm[key]['instructions'] / 1e6:.2f}M instructions" for key in ("fp32", "int8") if key in arm]
        detail = []
        if "fp32" in arm:
            detail.append(f"fp32 vs torch max rel {arm['fp32']['vs_torch']['max_rel']:.1e}")
        if "int8" in arm:
            detail.append(f"int8 vs host {arm['int8']['vs_host_steps']} step(s)")
        console.print(f"Arm check on {arm['device']}: " + ", ".join(parts + detail) + (" — passed" if arm.get("passed") else ""))
    seconds = manifest.stage_seconds.get("total", 0.0)
    how = "reused (sha256 and inputs unchanged)" if result.reused else f"built in {seconds:.1f} s"
    console.print(f"{manifest.arch} {manifest.slug}: {(manifest.macs or 0) / 1e6:.1f} M mult-adds, {how}")


def _parity_text(result: dict[str, Any] | None) -> str:
    if not result:
        return ""
    if "cosine" in result:
        return f"cos {result['cosine']:.4f}, {result['sqnr_db'] or float('inf'):.1f} dB, top-1 {result['top1_agreement']:.0%}"
    return f"max rel {result['max_rel']:.1e}"
