"""The command-line options that several commands share, defined once (help texts included)."""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from ..devices.kinds import device_help, runtimes_help
from .app import Alpha, ExportedProgramFile, Groups, InputShape, ModelFn, OnnxFile, Options, Scale

__all__ = ["DeviceOpt", "RuntimeOpt", "RuntimesOpt", "AdbServerOpt", "DbOpt", "ThreadsOpt", "RoundsOpt", "RunsOpt", "WarmupOpt", "CpuMaskOpt",
           "BinaryOpt", "RunnerOpt", "ReportOpt", "AcceleratorOpt", "FullDelegationOpt", "DispatchLibraryOpt", "accelerator_options",
           "ModelSelection", "model_options", "ARCH_HELP"]

DeviceOpt = Annotated[str, typer.Option("--device", "-d", help=device_help() + (
    " bench, compare, gate and profile also take several phones at once: adb:A,adb:B, or a DeviceFarmer farm's: "
    "'stf:https://farm/?model=Pixel*&sdk=>=30&count=3' (token in $STF_TOKEN; see README, A lab of phones)."))]
PhoneOpt = Annotated[Optional[str], typer.Option(
    "--phone", help="qemu:CPU only: also estimate ms on this phone profile (pixel4, sd820, rpi5, ...; "
    "estimates, never measured ms).")]
RuntimeOpt = Annotated[Optional[str], typer.Option(
    "--runtime", help=f"How models are timed on the device ({runtimes_help()}); a comma list times the model with "
    "each, interleaved (local: litert,onnxruntime). litert, benchmark_model and counted time the .tflite, "
    "onnxruntime the fp32 model.onnx.")]
RuntimesOpt = Annotated[Optional[str], typer.Option(
    "--runtimes", help="Comma list of runtimes timing every model, interleaved in the session (local: litert,onnxruntime; "
    "onnxruntime times fp32 only); each model is set against the baseline of its runtime. Default: the device's.")]
AdbServerOpt = Annotated[Optional[str], typer.Option(
    "--adb-server", help="A remote adb server as HOST[:PORT] (device farms); default $ANDROID_ADB_SERVER_ADDRESS.")]
DbOpt = Annotated[Optional[str], typer.Option(
    "--db", help="Results database (default $MOBILEDEPLOY_DB or ~/.local/share/mobiledeploy/results.db).")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="Interpreter threads (default: the suite's, else 1).")]
RoundsOpt = Annotated[Optional[int], typer.Option(
    "--rounds", help="Interleaved rounds: every model once per round (A B …, then … B A). Default 3; 1 on qemu: devices.")]
RunsOpt = Annotated[Optional[int], typer.Option("--runs", help="Timed runs per model per round (default 20; 3 on qemu:).")]
WarmupOpt = Annotated[Optional[int], typer.Option("--warmup", help="Untimed warm-up runs per model per round (default 3; 1 on qemu:).")]
CpuMaskOpt = Annotated[str, typer.Option("--cpu-mask", help="auto (the fastest cores) or a hex CPU mask like f0.")]
BinaryOpt = Annotated[Optional[str], typer.Option(
    "--benchmark-binary", help="arm64 benchmark_model for adb devices (default $MOBILEDEPLOY_BENCHMARK_MODEL, else "
    "LiteRT's official build for the phone, downloaded once into ~/.cache/mobiledeploy/<version>/<abi>/).")]
RunnerOpt = Annotated[Optional[str], typer.Option(
    "--runner", help="adb devices, --runtime executorch: your executor_runner built for the phone (ExecuTorch's "
    "examples/portable/executor_runner); pushed once per sha256.")]
AcceleratorOpt = Annotated[str, typer.Option(
    "--accelerator", help="adb devices: where benchmark_model runs the model: cpu, gpu or npu (LiteRT's tool; "
    "gpu pushes its accelerator library, npu needs --dispatch-library).")]
FullDelegationOpt = Annotated[bool, typer.Option(
    "--require-full-delegation", help="adb devices: fail a run that leaves any node off the accelerator.")]
DispatchLibraryOpt = Annotated[Optional[str], typer.Option(
    "--dispatch-library", help="--accelerator npu: the vendor's dispatch library (a file here, pushed; or the folder "
    "holding it on the phone).")]


def accelerator_options(accelerator: str, require_full_delegation: bool, dispatch_library: str | None) -> dict:
    """The BenchOptions fields of the three accelerator options."""
    return {"accelerator": accelerator.strip().lower(), "require_full_delegation": require_full_delegation,
            "dispatch_library": dispatch_library}
ReportOpt = Annotated[Optional[Path], typer.Option("--report", help="Also write an HTML + Markdown report with plots to DIR.")]
FloatLayersOpt = Annotated[Optional[str], typer.Option(
    "--float-layers", help="Which int8 layers stay in float. Default: every LayerNorm's ops (full-integer LayerNorm "
    "loses the variance: MobileViT-XXS cosine 0.90 instead of 0.995); a net without LayerNorm is full-integer. "
    "none: full-integer int8, LayerNorms too, which integer-only accelerators require (Coral's Edge TPU takes only "
    "fully 8-bit quantized models, coral.ai/docs/edgetpu/models-intro). auto (the layer adding the most error on the "
    "calibration inputs), auto:N (the N worst), or comma-separated names as `accuracy --per-layer` shows them, or "
    "globs ('*layer_normalization*'): those instead of the default. Another export folder (-fl…); the manifest "
    "records the names kept in float and why.")]
Int16ActivationsOpt = Annotated[bool, typer.Option(
    "--int16-activations", help="Also make TFLite's int16x8 file (int16 activations, int8 weights: model_int16x8.tflite), "
    "a choice beside --float-layers for layers int8 cannot hold; runs on TFLite's own kernels, not XNNPACK.")]
CalibrationSeedOpt = Annotated[int, typer.Option(
    "--calibration-seed", help="Seed of the calibration draw from a --calibration folder: a random, class-balanced "
    "choice of --calib-samples images (each class in its own seeded order, classes in turn); recorded in the manifest.")]


# --- the model a command exports (export, accuracy, bench, profile) ------------------------------------------
ARCH_HELP = "Architecture or alias (see `mobiledeploy models`)."


@dataclass(frozen=True)
class ModelSelection:
    """The options that name the one model a command exports: a zoo --arch with its configuration, or the user's
    own (--model-fn, --onnx, --exported-program, with --input-shape)."""

    arch: str | None = None
    model_fn: str | None = None
    onnx: str | None = None
    exported_program: str | None = None
    input_shape: str | None = None
    g: int | None = None
    scale: float | None = None
    alpha: float | None = None
    options: list[str] | None = None

    def config(self) -> dict[str, Any]:
        """The configuration the user gave (--g, --scale, --alpha, --set), unset ones left to the defaults."""
        from .app import model_config

        return model_config(self.g, self.scale, self.alpha, self.options)

    def choice(self) -> tuple[str, dict[str, Any]]:
        """(registry name, config) of the one model given; ConfigError when none or several are."""
        from .app import model_choice

        return model_choice(self.arch, self.model_fn, self.onnx, self.exported_program, self.config(),
                            self.input_shape)


def model_options(arch_help: str = ARCH_HELP) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The model-selection options, declared once for every command that exports a model: the command takes one
    `selection: ModelSelection` parameter, and Typer sees --arch, --model-fn, --onnx, --exported-program,
    --input-shape, --g, --scale, --alpha and --set where that parameter stands. `arch_help`: the command's own
    words for --arch."""
    group: dict[str, Any] = {
        "arch": Annotated[Optional[str], typer.Option("--arch", "-a", help=arch_help)], "model_fn": ModelFn,
        "onnx": OnnxFile, "exported_program": ExportedProgramFile, "input_shape": InputShape, "g": Groups,
        "scale": Scale, "alpha": Alpha, "options": Options}

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        hints = typing.get_type_hints(func, include_extras=True)
        params: list[inspect.Parameter] = []
        for p in inspect.signature(func).parameters.values():
            if p.name == "selection":
                params += [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                             annotation=annotation) for name, annotation in group.items()]
            else:
                params.append(p.replace(annotation=hints.get(p.name, p.annotation)))

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            return func(selection=ModelSelection(**{name: kwargs.pop(name) for name in group}), **kwargs)

        command.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate
