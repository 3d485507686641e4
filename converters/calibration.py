"""Calibration and held-out inputs: images from a directory, or a deterministic synthetic set.

Images are float32 RGB in [0, 1], (N, H, W, 3); `normalise` turns them into what the model
takes: `(x - mean) / std` per channel, laid out NCHW. The same inputs, transposed to NHWC, feed
the TFLite models, so every parity figure compares like with like.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mobiledeploy.errors import ConfigError

__all__ = [
    "IMAGE_SUFFIXES",
    "HOLDOUT_SAMPLES",
    "CalibrationSet",
    "synthetic_images",
    "list_images",
    "image_classes",
    "ImageDraw",
    "draw_images",
    "DEFAULT_CALIBRATION_SEED",
    "load_images",
    "normalise",
    "fingerprint",
    "calibration_set",
    "check_input_memory",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")
HOLDOUT_SAMPLES = 8
DEFAULT_CALIBRATION_SEED = 0  # the draw from a folder (--calibration-seed)
SYNTHETIC = "synthetic"


@dataclass
class CalibrationSet:
    """Normalised NCHW float32 inputs: `calibration` for int8, `holdout` for every parity check."""

    calibration: np.ndarray
    holdout: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)  # the manifest's "calibration" entry
    fingerprint: str = ""  # changes whenever the inputs would


def synthetic_images(n: int, size: tuple[int, int], seed: int) -> np.ndarray:
    """`n` smooth random RGB images in [0, 1], (n, H, W, 3) float32, a pure function of its arguments.

    Each is a coarse random colour field (8x8, bilinearly upsampled) plus a little fine noise:
    closer to natural image statistics than white noise, so calibration ranges are realistic.
    """
    h, w = size
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, 8, 8, 3), dtype=np.float32)
    ys = np.linspace(0.0, 7.0, h, dtype=np.float32)
    xs = np.linspace(0.0, 7.0, w, dtype=np.float32)
    y0, x0 = np.minimum(ys.astype(int), 6), np.minimum(xs.astype(int), 6)
    fy, fx = (ys - y0)[None, :, None, None], (xs - x0)[None, None, :, None]
    rows = coarse[:, y0] * (1 - fy) + coarse[:, y0 + 1] * fy
    smooth = rows[:, :, x0] * (1 - fx) + rows[:, :, x0 + 1] * fx
    noise = rng.normal(0.0, 0.05, (n, h, w, 3)).astype(np.float32)
    return np.clip(smooth + noise, 0.0, 1.0).astype(np.float32)


def list_images(directory: str | Path) -> list[Path]:
    """Image files in `directory` and its subfolders (ImageNet-style: one per class), hidden ones skipped.
    Classes take turns (the first image of each folder, then the second …), so the first N span the
    classes; ConfigError if none or unreadable."""
    groups = list(image_classes(directory).values())
    return [group[i] for i in range(max(map(len, groups), default=0)) for group in groups if i < len(group)]


def image_classes(directory: str | Path) -> dict[str, list[Path]]:
    """The images of `directory` by class, classes sorted: a class is a first-level subfolder (everything
    under it, sorted by path), '.' the images directly in `directory`; ConfigError if none or unreadable."""
    path = Path(directory)
    if not path.exists():
        raise ConfigError(f"calibration directory {path} does not exist")
    if not path.is_dir():
        raise ConfigError(f"calibration source {path} is not a directory (give a directory of images or 'synthetic')")
    errors: list[OSError] = []
    classes: dict[str, list[Path]] = {}
    for root, dirs, names in os.walk(path, onerror=errors.append):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = Path(root).relative_to(path)
        found = sorted(Path(root) / n for n in names if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_SUFFIXES)
        if found:
            classes.setdefault(rel.parts[0] if rel.parts else ".", []).extend(found)
    if errors:
        exc = errors[0]
        raise ConfigError(f"calibration directory {exc.filename or path} cannot be read: {exc.strerror or exc}") from None
    if not classes:
        raise ConfigError(f"calibration directory {path} holds no images ({', '.join(IMAGE_SUFFIXES)}), "
                          "in it or its subfolders")
    return {name: sorted(classes[name]) for name in sorted(classes)}


@dataclass
class ImageDraw:
    """A seeded, class-balanced draw from a folder: `calibration` then `holdout` files, never overlapping."""

    calibration: list[Path]
    holdout: list[Path]
    seed: int
    per_class: dict[str, int]  # calibration images drawn from each class
    files_sha256: str  # of the calibration files' paths relative to the folder, one per line, in draw order


def draw_images(directory: str | Path, samples: int, holdout: int = HOLDOUT_SAMPLES,
                seed: int = DEFAULT_CALIBRATION_SEED) -> ImageDraw:
    """Each class's images in a random order of its own (numpy's PCG64 seeded with (seed, CRC-32 of the class
    name): adding a class leaves the others' draws alone), then the classes in turn: the first drawn of each,
    the second …; the first `samples` calibrate, the next `holdout` are held out. Counts per class differ by at
    most one unless a class runs out. The same folder and seed give the same files."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--calibration-seed must be a non-negative integer, got {seed!r}")
    path = Path(directory)
    drawn = {}
    for name, files in image_classes(path).items():
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        drawn[name] = [files[i] for i in rng.permutation(len(files))]
    groups = list(drawn.values())
    order = [g[i] for i in range(max(map(len, groups), default=0)) for g in groups if i < len(g)]
    calib, held = order[:samples], order[samples:samples + holdout]
    chosen = set(calib)
    per_class = {name: len(chosen.intersection(files)) for name, files in drawn.items()}
    listing = "\n".join(f.relative_to(path).as_posix() for f in calib)
    return ImageDraw(calib, held, seed, per_class, hashlib.sha256(listing.encode()).hexdigest())


def load_images(files: Sequence[Path], size: tuple[int, int]) -> np.ndarray:
    """Decode, scale to cover (H, W) keeping the aspect ratio, centre-crop: (n, H, W, 3) in [0, 1]."""
    try:
        from PIL import Image
    except ImportError:
        raise ConfigError("reading calibration images needs Pillow (pip install pillow)") from None
    h, w = size
    out = np.empty((len(files), h, w, 3), dtype=np.float32)
    for i, file in enumerate(files):
        try:
            with Image.open(file) as img:
                img = img.convert("RGB")
                scale = max(h / img.height, w / img.width)
                sw, sh = max(w, round(img.width * scale)), max(h, round(img.height * scale))
                img = img.resize((sw, sh), Image.Resampling.BILINEAR)
                left, top = (sw - w) // 2, (sh - h) // 2
                out[i] = np.asarray(img.crop((left, top, left + w, top + h)), dtype=np.float32) / 255.0
        except OSError as exc:
            raise ConfigError(f"calibration image {file} cannot be read: {exc}") from None
    return out


def normalise(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(n, H, W, 3) in [0, 1] → (n, 3, H, W) float32, `(x - mean) / std` per channel."""
    m = np.asarray(mean, dtype=np.float32).reshape(1, 1, 1, 3)
    s = np.asarray(std, dtype=np.float32).reshape(1, 1, 1, 3)
    return np.ascontiguousarray(((images - m) / s).transpose(0, 3, 1, 2), dtype=np.float32)


def fingerprint(source: str | Path, samples: int, seed: int = 0, holdout: int = HOLDOUT_SAMPLES,
                calibration_seed: int = DEFAULT_CALIBRATION_SEED) -> str:
    """A digest that changes whenever `calibration_set` would return other inputs (decodes nothing): for a
    folder, the draw's seed and the drawn files' names and bytes."""
    if str(source) == SYNTHETIC:
        return f"synthetic:{samples}:{seed}:{holdout}"
    draw = draw_images(source, samples, holdout, calibration_seed)
    digest = hashlib.sha256(f"{samples}:{seed}:{holdout}:draw{calibration_seed}".encode())
    for file in draw.calibration + draw.holdout:
        name = file.relative_to(source).as_posix()
        digest.update(name.encode() + b"\0" + hashlib.sha256(file.read_bytes()).digest())
    return "dir:" + digest.hexdigest()


def calibration_set(
    source: str | Path,
    samples: int,
    size: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
    seed: int = 0,
    holdout: int = HOLDOUT_SAMPLES,
    calibrate: bool = True,
    calibration_seed: int = DEFAULT_CALIBRATION_SEED,
) -> CalibrationSet:
    """Calibration inputs and held-out inputs, never overlapping.

    `source` is 'synthetic' (seeds `seed` and `seed + 1`) or a directory of images: a class-balanced draw
    seeded with `calibration_seed` (`draw_images`) gives `samples` images to calibrate and `holdout` more to
    hold out; when the directory has no images left over, the held-out set is synthetic (recorded in `info`).
    Without `calibrate` (no int8 asked) the calibration inputs are not made: the held-out ones are the same.
    """
    if samples < 1:
        raise ConfigError(f"calibration needs at least 1 sample, got {samples}")
    digest = fingerprint(source, samples, seed, holdout, calibration_seed)
    if str(source) == SYNTHETIC:
        held = synthetic_images(holdout, size, seed + 1)
        calib = synthetic_images(samples, size, seed) if calibrate else held[:0]
        info = {"source": SYNTHETIC, "samples": samples if calibrate else 0, "seed": seed,
                "holdout": {"source": SYNTHETIC, "samples": holdout}}
        return _with_note(CalibrationSet(normalise(calib, mean, std), normalise(held, mean, std), info, digest),
                          calibrate, samples)
    draw = draw_images(source, samples, holdout, calibration_seed)
    held = load_images(draw.holdout, size) if draw.holdout else synthetic_images(holdout, size, seed + 1)
    calib = load_images(draw.calibration, size) if calibrate else held[:0]
    info = {"source": str(Path(source).resolve()), "samples": len(calib), "requested_samples": samples, "seed": seed,
            "draw": {"method": "class-balanced, a seeded random order per class, classes in turn",
                     "calibration_seed": draw.seed, "per_class": draw.per_class, "files_sha256": draw.files_sha256},
            "holdout": {"source": "directory" if draw.holdout else SYNTHETIC, "samples": len(held)}}
    if calibrate and len(draw.calibration) < samples:
        info["warning"] = (f"calibrated on {len(draw.calibration)} image(s), fewer than the {samples} asked for "
                           f"(--calib-samples): int8 ranges from so few images can be far off")
    return _with_note(CalibrationSet(normalise(calib, mean, std), normalise(held, mean, std), info, digest),
                      calibrate, samples)


def _with_note(inputs: CalibrationSet, calibrate: bool, samples: int) -> CalibrationSet:
    """Without `calibrate` (an export with no int8) the info says no calibration inputs were made."""
    if not calibrate:
        inputs.info.update(samples=0, requested_samples=samples, note="no int8 asked: no calibration inputs made")
    return inputs


#: while synthetic inputs are made and normalised, about this many copies of the final arrays exist at once
_PEAK_COPIES = 4


def check_input_memory(size: tuple[int, int], samples: int, holdout: int = HOLDOUT_SAMPLES) -> None:
    """Refuse (ConfigError) input arrays that cannot fit: `samples` calibration and `holdout` held-out
    NCHW float32 images of `size`, against half the memory this machine has free now (/proc/meminfo)."""
    h, w = size
    nbytes = (samples + holdout) * 3 * h * w * 4
    free = _available_bytes()
    if free is None or nbytes * _PEAK_COPIES <= free // 2:
        return
    gib = 1 << 30
    raise ConfigError(f"input {h}x{w} with {samples} calibration and {holdout} held-out samples needs "
                      f"{nbytes / gib:.1f} GiB of input arrays (~{nbytes * _PEAK_COPIES / gib:.0f} GiB while they are "
                      f"made), more than half the {free / gib:.1f} GiB this machine has free: give a smaller "
                      "input shape, fewer --calib-samples, or no int8")


def _available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None
