"""Is `converters/reparam.py`'s check sound? The deployed (re-parameterised) form against the training form, on the
inputs it checks today (N(0,1) noise) and on realistic ones (the export's synthetic images, normalised as the model
expects, `converters/calibration.py`), for the zoo's re-parameterisable models, with seeded and with re-estimated
BatchNorm statistics (`int8_sensitivity.estimate_bn`, as a trained network's would be).

    python benchmarks/reparam_tolerance.py [--quick] [--models "mobileone_s0@224;repvit_m1@224"] [--json FILE]

Per row (measured, torch on this host): the largest |deployed − training| (both float32) over the output range
(`max_rel`, what the check judges), the training form's own float32 rounding (against its float64 run), the
tolerance the check now allows (the larger of `REPARAM_TOLERANCE` and `ROUNDING_FACTOR` x that rounding; the old
check allowed 1e-4 on noise), and the largest activation the training form reaches on those inputs. `--quick`: every model at 64x64.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

FULL = "mobileone_s0@224;repvit_m1@224;fastvit_t8@256;efficientvit_m0@224"


def _inputs(kind: str, size: int, mean: Any, std: Any) -> Any:
    import torch

    from mobiledeploy.converters.calibration import normalise, synthetic_images

    if kind == "noise":
        return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    return torch.from_numpy(normalise(synthetic_images(8, (size, size), 1), mean, std))


def _largest_activation(model: Any, x: Any) -> float:
    import torch

    found = [0.0]

    def hook(module: Any, inputs: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            found[0] = max(found[0], float(out.detach().abs().max()))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return found[0]


def rows_of(name: str, size: int) -> list[dict[str, Any]]:
    import torch

    from mobiledeploy.converters.reparam import REPARAM_TOLERANCE, ROUNDING_FACTOR
    from mobiledeploy.models.common import deploy_form
    from mobiledeploy.registry import build_from_config, get_spec

    from benchmarks.int8_sensitivity import estimate_bn

    spec, rows = get_spec(name), []
    for bn in ("seeded", "estimated"):
        trained = build_from_config(name, {}).eval()
        if bn == "estimated":
            estimate_bn(trained, size)
        deployed = copy.deepcopy(trained)
        deploy_form(deployed)
        for kind in ("noise", "images"):
            x = _inputs(kind, size, spec.mean, spec.std)
            with torch.no_grad():
                before, after = trained(x), deployed(x)
                exact = copy.deepcopy(trained).double()(x.double())
            span = float(exact.max() - exact.min()) or 1.0
            rounding = float((before.double() - exact).abs().max()) / span
            rows.append({"model": name, "resolution": size, "bn": bn, "inputs": kind,
                         "max_rel": float((after - before).abs().max()) / span, "fp32_rounding": rounding,
                         "tolerance": max(REPARAM_TOLERANCE, ROUNDING_FACTOR * rounding),
                         "largest_activation": _largest_activation(trained, x)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()),  # the first paragraph
                                     epilog="Example: python -m benchmarks.reparam_tolerance --quick")
    parser.add_argument("--quick", action="store_true", help="every model at 64x64")
    parser.add_argument("--models", help="semicolon list of NAME@RESOLUTION")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for item in (args.models or FULL).split(";"):
        name, _, size = item.partition("@")
        rows += rows_of(name, 64 if args.quick else int(size or 224))
    print("| model | input | BN statistics | inputs | deployed vs training / output range | training fp32 vs fp64 | "
          "tolerance now | passes | largest activation |")
    print("|---|---:|---|---|---:|---:|---:|---|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['resolution']} | {r['bn']} | {r['inputs']} | {r['max_rel']:.3g} | "
              f"{r['fp32_rounding']:.3g} | {r['tolerance']:.3g} | {'yes' if r['max_rel'] <= r['tolerance'] else 'NO'} "
              f"(old check {'yes' if r['max_rel'] <= 1e-4 else 'NO'}) | {r['largest_activation']:.3g} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "reparam_tolerance"))
