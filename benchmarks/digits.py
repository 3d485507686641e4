"""A real trained model for the accuracy checks: ShuffleNet v1 0.25x g=3 at 64x64 on scikit-learn's digits.

scikit-learn ships the UCI optical-recognition digits (1797 images, 8x8 grey, 0..16, ten classes), so nothing
is downloaded. Every image is written as an 8x8 grey PNG into a class-per-folder tree (`train/` and `test/`,
a seeded stratified split) and read back through the toolkit's own image loading (`converters.calibration`:
RGB, bilinear resize to 64x64, the model's mean/std), so the model is trained on exactly what
`mobiledeploy accuracy` and `export --calibration` feed it. Seeded: the same weights bytes on every run of
one machine's torch build.

    python -m benchmarks.digits OUT      # OUT/weights.pt, OUT/train/<digit>/*.png, OUT/test/<digit>/*.png
"""

from __future__ import annotations

import argparse
import sys
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ARCH = "shufflenet_v1"
CONFIG: dict[str, Any] = {"g": 3, "scale": 0.25, "num_classes": 10}
RESOLUTION = 64  # at 32x32 the same training reached 0.90-0.92 top-1 on the held-out fifth, at 64x64 0.967
BATCH = 32
TEST_SHARE = 0.2
EPOCHS = 8


@dataclass
class DigitsModel:
    weights: Path  # the trained state_dict
    train_dir: Path  # class-per-folder PNGs the model was trained on (calibrate with these)
    test_dir: Path  # held-out class-per-folder PNGs (evaluate on these)
    arch: str = ARCH
    config: dict[str, Any] = field(default_factory=lambda: dict(CONFIG))
    resolution: int = RESOLUTION
    train_seconds: float = 0.0
    host_top1: float = 0.0  # torch fp32 top-1 on test_dir, measured right after training

    def model_ref(self) -> str:
        return f"{self.arch}:" + ",".join(f"{k}={v}" for k, v in self.config.items())


def write_digits(out: Path, seed: int = 0) -> tuple[Path, Path]:
    """The digits as 8x8 grey PNGs, OUT/train/<d>/ and OUT/test/<d>/, a seeded stratified split."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    for label in range(10):
        index = np.flatnonzero(digits.target == label)
        rng.shuffle(index)
        n_test = int(round(len(index) * TEST_SHARE))
        for part, chosen in (("test", index[:n_test]), ("train", index[n_test:])):
            folder = out / part / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for i in chosen:
                pixels = np.round(digits.images[i] * (255.0 / 16.0)).astype(np.uint8)
                Image.fromarray(pixels, mode="L").save(folder / f"{i:04d}.png")
    return out / "train", out / "test"


def load_folder(folder: Path, mean: Any, std: Any) -> tuple[np.ndarray, np.ndarray]:
    """(NCHW normalised inputs, labels) of a class-per-folder tree of digits, as the toolkit reads images."""
    from mobiledeploy.converters.calibration import load_images, normalise

    files = sorted(folder.glob("*/*.png"))
    labels = np.array([int(f.parent.name) for f in files])
    return normalise(load_images(files, (RESOLUTION, RESOLUTION)), mean, std), labels


def train(x: np.ndarray, y: np.ndarray, seed: int = 0, epochs: int = EPOCHS) -> Any:
    """The zoo model trained with Adam (lr 0.003, cosine to 0) in batches of BATCH, the last partial one dropped (a
    batch of a few images upsets BatchNorm). Random shifts of 1-2 pixels as augmentation made it worse (0.94)."""
    import torch

    from mobiledeploy.registry import build_model

    torch.manual_seed(seed)
    model = build_model(ARCH, seed=seed, **CONFIG)
    data, target = torch.from_numpy(x), torch.from_numpy(y)
    steps = epochs * (len(x) // BATCH)
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x) - BATCH + 1, BATCH):
            idx = order[start:start + BATCH]
            loss = torch.nn.functional.cross_entropy(model(data[idx]), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def train_digits(out: Path, seed: int = 0, epochs: int = EPOCHS) -> DigitsModel:
    """Write the image folders, train, save OUT/weights.pt; the model's torch top-1 on the test folder."""
    import torch

    from mobiledeploy.registry import get_spec

    out.mkdir(parents=True, exist_ok=True)
    train_dir, test_dir = write_digits(out, seed)
    spec = get_spec(ARCH)
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two cores shared with the rest of the suite
    try:
        model = train(*load_folder(train_dir, spec.mean, spec.std), seed=seed, epochs=epochs)
        x, y = load_folder(test_dir, spec.mean, spec.std)
        with torch.no_grad():
            top1 = float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - start
    torch.save(model.state_dict(), out / "weights.pt")
    return DigitsModel(out / "weights.pt", train_dir, test_dir, train_seconds=seconds, host_top1=top1)


#: the unit whose bottleneck activations `make_fragile` turns into outliers, and by how much
FRAGILE_UNIT, FRAGILE_CHANNELS, FRAGILE_GAIN = "stage2.1", (0,), 300.0


def make_fragile(weights: Path, out: Path, unit: str = FRAGILE_UNIT, channels: tuple[int, ...] = FRAGILE_CHANNELS,
                 gain: float = FRAGILE_GAIN) -> Path:
    """The trained model with the same fp32 function but outlier activations: `unit`'s bn1 scale and shift of
    `channels` times `gain` (its ReLU output there `gain`x larger: relu(k*x) = k*relu(x) for k > 0, positive
    homogeneity), and the depthwise conv's filters reading those channels (after the channel shuffle, a
    permutation) divided by `gain`. One int8 scale for that ReLU output then rounds the other channels to a few
    steps. Saved as a state_dict at `out`."""
    import torch

    from mobiledeploy.models.common import load_weights
    from mobiledeploy.registry import build_model

    model = build_model(ARCH, seed=0, **CONFIG)
    load_weights(model, str(weights))
    block = model.get_submodule(unit)
    mid = block.bn1.num_features
    position = block.shuffle(torch.arange(mid, dtype=torch.float32).reshape(1, mid, 1, 1)).flatten().long().tolist()
    with torch.no_grad():
        for c in channels:
            block.bn1.weight[c] *= gain
            block.bn1.bias[c] *= gain
            block.dwconv.weight[position.index(c)] /= gain
    torch.save(model.state_dict(), out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args()
    trained = train_digits(args.out, args.seed, args.epochs)
    print(json.dumps({"weights": str(trained.weights), "model": trained.model_ref(), "resolution": RESOLUTION,
                      "train_seconds": round(trained.train_seconds, 1), "torch_top1": trained.host_top1}))


if __name__ == "__main__":
    from mobiledeploy.signals import run_script

    sys.exit(run_script(main, "digits"))
