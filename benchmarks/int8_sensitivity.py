"""How much int8-sized noise a seeded zoo model's fp32 function amplifies: the weights' share of an int8 cosine.

    python benchmarks/int8_sensitivity.py [--models "repvit_m1@224;efficientvit_m0@224"] [--bn-estimated] [--json]
    python benchmarks/int8_sensitivity.py --bn-estimated --write   # the table to benchmarks/results/int8_sensitivity.md

Per model, in its deployment form (re-parameterised when it can be), on the export's 8 held-out synthetic inputs
(`converters/calibration.py`, seed 1), all in torch fp32 (measured, no converter involved):

- `cosine_input_step`: the logits' cosine against the clean run when the input alone gets uniform noise of one int8
  step (its min-max range / 255, what full-integer int8 rounds the input to);
- `cosine_every_layer`: the same noise, one step of each output's own per-tensor range, at every Conv2d and Linear
  output (what per-tensor int8 activations round to; weights left exact);
- `cosine_int8_weights`: every Conv2d and Linear weight rounded as the int8 export rounds it (per output channel,
  symmetric, max |w| / 127), activations exact;
- `largest_activation`: the largest |value| of the last feature map, and `one_hot_softmax`: the share of attention
  rows whose largest probability is over 0.99 (a softmax that has become an argmax), over every `Tensor.softmax`.

A model whose fp32 function turns one rounding step into a cosine well below 1 cannot reach the export's 0.98 int8
floor with any quantiser of int8 activations. `--bn-estimated` first re-estimates every BatchNorm's running
statistics on 64 other synthetic images (seed 1000, train-mode forward, cumulative average) instead of the seeded
identity statistics (`models/common.py` init_weights), as a trained network's statistics would normalise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT = "repvit_m1@224;efficientvit_m0@224;mobilevit_xxs@256;mobilenet_v3_large@224;levit_128s@224"
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _images(n: int, size: int, seed: int) -> Any:
    import torch

    from mobiledeploy.converters.calibration import normalise, synthetic_images

    return torch.from_numpy(normalise(synthetic_images(n, (size, size), seed), MEAN, STD))


def estimate_bn(model: Any, size: int) -> int:
    """Every BatchNorm's running statistics from 64 synthetic images (seed 1000); returns how many."""
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
        m.train()
    with torch.no_grad():
        for batch in _images(64, size, 1000).split(16):
            model(batch)
    model.eval()
    return len(bns)


def _model(name: str, size: int, bn: bool) -> Any:
    from mobiledeploy.models.common import deploy_form
    from mobiledeploy.registry import build_from_config

    model = build_from_config(name, {})  # seeded (seed 0), as `export` builds it
    model.eval()
    if bn:
        estimate_bn(model, size)
    deploy_form(model)
    return model


def _round_weights(model: Any) -> None:
    """Every Conv2d/Linear weight to its per-output-channel symmetric int8 grid (max |w| / 127), in place."""
    import torch

    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            w = m.weight.data
            scale = w.abs().flatten(1).amax(1).clamp_min(1e-30).view(-1, *[1] * (w.dim() - 1)) / 127
            m.weight.data = (w / scale).round() * scale


def sensitivity(name: str, size: int, bn: bool = False) -> dict[str, Any]:
    import torch

    model, x = _model(name, size, bn), _images(8, size, 1)
    noisy = {"on": False}
    softmaxes: list[float] = []

    def step_noise(module: Any, inputs: Any, out: Any) -> Any:
        if noisy["on"]:
            return out + (torch.rand_like(out) - 0.5) * (out.max() - out.min()) / 255
        return None

    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.register_forward_hook(step_noise)
    plain = torch.Tensor.softmax

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        p = plain(self, *args, **kwargs)
        softmaxes.append(float((p.amax(-1) > 0.99).float().mean()))
        return p

    cos = lambda a, b: float(torch.nn.functional.cosine_similarity(a.flatten(1), b.flatten(1)).mean())  # noqa: E731
    torch.manual_seed(0)
    with torch.no_grad():
        torch.Tensor.softmax = counted  # type: ignore[method-assign]
        try:
            clean = model(x)
        finally:
            torch.Tensor.softmax = plain  # type: ignore[method-assign]
        features = model.features(x) if hasattr(model, "features") else None
        noisy["on"] = True
        every = model(x)
        noisy["on"] = False
        step = model(x + (torch.rand_like(x) - 0.5) * (x.max() - x.min()) / 255)
        _round_weights(model)
        rounded = model(x)
    return {"model": name, "resolution": size, "bn_estimated": bn, "cosine_input_step": cos(clean, step),
            "cosine_every_layer": cos(clean, every), "cosine_int8_weights": cos(clean, rounded),
            "largest_activation": float(features.abs().max()) if features is not None else None,
            "one_hot_softmax": sum(softmaxes) / len(softmaxes) if softmaxes else None, "softmaxes": len(softmaxes)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT, help="semicolon list of NAME@RESOLUTION")
    parser.add_argument("--bn-estimated", action="store_true", help="also with BatchNorm statistics re-estimated")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--write", action="store_true", help="also write the table to benchmarks/results/int8_sensitivity.md")
    args = parser.parse_args(argv)
    rows = []
    for ref in args.models.split(";"):
        name, _, size = ref.partition("@")
        for bn in (False, True) if args.bn_estimated else (False,):
            rows.append(sensitivity(name, int(size or 224), bn))
            print(f"{ref}{' (BN estimated)' if bn else ''}: done", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    table = _table(rows)
    print(table, end="")
    if args.write:
        _write(table, argv if argv is not None else sys.argv[1:])
    return 0


RESULT = Path(__file__).resolve().parent / "results" / "int8_sensitivity.md"


def _write(table: str, argv: list[str]) -> None:
    """The table and the commit it measured to RESULT (README embeds it), written whole then renamed."""
    import subprocess
    import time

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=RESULT.parents[2], capture_output=True, text=True).stdout.strip()
    text = table + (f"\nRows by `python benchmarks/int8_sensitivity.py {' '.join(argv)}` on commit {commit} "
                    f"({time.strftime('%Y-%m-%d')}); seeded weights, synthetic inputs, one noise draw (torch seed 0).\n")
    tmp = RESULT.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(RESULT)


def _table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | BN statistics | cosine, one step at the input | cosine, one step at every conv/linear | "
          "cosine, int8 weights | largest activation | one-hot softmax rows |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        hot = f"{r['one_hot_softmax']:.1%} of {r['softmaxes']}" if r["softmaxes"] else "—"
        big = f"{r['largest_activation']:.3g}" if r["largest_activation"] is not None else "—"
        lines.append(f"| {r['model']}@{r['resolution']} | {'estimated' if r['bn_estimated'] else 'seeded (identity)'} | "
                     f"{r['cosine_input_step']:.4f} | {r['cosine_every_layer']:.4f} | {r['cosine_int8_weights']:.4f} | {big} | "
                     f"{hot} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "int8_sensitivity"))
