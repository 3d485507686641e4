"""A user's labelled images: a class-per-folder tree (ROOT/<class>/<image>) or a labels file.

Classes map to the model's outputs in one of three ways, said in `LabelledSet.class_map`: a `classes`
file (one name per line, in output order), folder names that are all integers (the output index itself, as
`0`..`9` for digits), or the sorted folder names (torchvision's `ImageFolder` order). A labels file has one
`PATH LABEL` or `PATH,LABEL` per line, PATH relative to ROOT. Files that are not images or cannot be decoded
are skipped and counted (`skipped`), never fatal unless nothing is left. `--limit N` takes the classes in turn
(the first image of each class, then the second …), so a limit keeps every class.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import ConfigError

__all__ = ["LabelledSet", "find_labelled", "load_labelled"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")


@dataclass
class LabelledSet:
    root: Path
    files: list[Path]  # in evaluation order
    labels: list[int]  # the model output index of each file's class
    classes: dict[int, str]  # output index -> class name, for the classes present
    class_map: str  # "classes file", "integer folder names", "sorted folder names" or "labels file"
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path relative to root, why)
    images: Any = None  # (n, H, W, 3) float32 in [0, 1] once loaded

    def summary(self) -> dict[str, Any]:
        return {"root": str(self.root), "images": len(self.files), "classes": len(self.classes),
                "class_map": self.class_map, "skipped": len(self.skipped),
                "skipped_files": [{"path": p, "why": w} for p, w in self.skipped[:20]]}


def find_labelled(root: str | Path, labels_file: str | Path | None = None, classes_file: str | Path | None = None,
                  limit: int | None = None) -> LabelledSet:
    """The labelled files under `root` (nothing decoded yet); ConfigError for a folder that holds none."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"image folder {root} {'is not a directory' if root.exists() else 'does not exist'}")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")
    names = _read_lines(classes_file, "classes file") if classes_file else None
    if labels_file:
        pairs, skipped = _from_labels_file(root, Path(labels_file))
    else:
        pairs, skipped = _from_folders(root)
    files, labels, class_map, classes = _index_labels(pairs, names, labels_file is not None)
    order = _interleaved(labels)[:limit] if limit else _interleaved(labels)
    return LabelledSet(root, [files[i] for i in order], [labels[i] for i in order], classes, class_map, skipped)


def _read_lines(path: str | Path, what: str) -> list[str]:
    try:
        lines = [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {path} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise ConfigError(f"{what} {path} is empty")
    return lines


def _from_folders(root: Path) -> tuple[list[tuple[Path, str]], list[tuple[str, str]]]:
    """(file, class name) for every image in ROOT/<class>/ (and deeper); files of other kinds are skipped."""
    errors: list[OSError] = []
    pairs, skipped, loose = [], [], []
    for folder, dirs, names in os.walk(root, onerror=errors.append):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = Path(folder).relative_to(root)
        for name in sorted(n for n in names if not n.startswith(".")):
            path = Path(folder) / name
            if rel == Path("."):
                loose.append(name)
            elif path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append((path.relative_to(root).as_posix(), "not an image file"))
            else:
                pairs.append((path, rel.parts[0]))
    if errors:
        raise ConfigError(f"image folder {errors[0].filename or root} cannot be read: {errors[0].strerror or errors[0]}")
    if not pairs:
        if loose:
            raise ConfigError(f"image folder {root} has no class subfolders ({len(loose)} file(s) directly in it): "
                              "lay images out as ROOT/<class>/<image>, or give --labels FILE")
        raise ConfigError(f"image folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)}) in class subfolders")
    return pairs, skipped


def _from_labels_file(root: Path, labels_file: Path) -> tuple[list[tuple[Path, str]], list[tuple[str, str]]]:
    pairs, skipped = [], []
    for number, line in enumerate(_read_lines(labels_file, "labels file"), 1):
        parts = line.replace(",", " ").split()
        if len(parts) != 2:
            raise ConfigError(f"labels file {labels_file} line {number}: expected 'PATH LABEL' or 'PATH,LABEL', got {line!r}")
        path = root / parts[0]
        if not path.is_file():
            skipped.append((parts[0], "listed in the labels file but missing"))
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append((parts[0], "not an image file"))
        else:
            pairs.append((path, parts[1]))
    if not pairs:
        raise ConfigError(f"labels file {labels_file} names no image that exists under {root}")
    return pairs, skipped


def _index_labels(pairs: list[tuple[Path, str]], names: list[str] | None,
                  from_file: bool) -> tuple[list[Path], list[int], str, dict[int, str]]:
    """Each class name as a model output index, and how the names were mapped."""
    present = sorted({label for _, label in pairs})
    if names is not None:
        unknown = [c for c in present if c not in names]
        if unknown:
            raise ConfigError(f"class {unknown[0]!r} is not in the classes file ({len(unknown)} class(es) unknown)")
        index, how = {name: i for i, name in enumerate(names)}, "classes file"
    elif all(c.isdigit() for c in present):
        index = {c: int(c) for c in present}
        how = "integer labels" if from_file else "integer folder names"
    else:
        index, how = {c: i for i, c in enumerate(present)}, "sorted labels" if from_file else "sorted folder names"
    files = [path for path, _ in pairs]
    labels = [index[label] for _, label in pairs]
    return files, labels, how, {index[c]: c for c in present}


def _interleaved(labels: Sequence[int]) -> list[int]:
    """Indices taking the classes in turn: the first of each class, then the second …"""
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    groups = [by_class[k] for k in sorted(by_class)]
    return [g[i] for i in range(max(map(len, groups), default=0)) for g in groups if i < len(g)]


def load_labelled(found: LabelledSet, size: tuple[int, int]) -> LabelledSet:
    """Decode every file as `converters.calibration.load_images` does (RGB, cover-resize, centre crop);
    unreadable ones are skipped and counted. ConfigError when none can be read."""
    from .converters.calibration import load_images

    kept_files, kept_labels, images = [], [], []
    for path, label in zip(found.files, found.labels):
        try:
            images.append(load_images([path], size)[0])
        except ConfigError as exc:
            found.skipped.append((path.relative_to(found.root).as_posix() if path.is_relative_to(found.root)
                                  else str(path), f"cannot be read: {str(exc).split(': ', 1)[-1]}"))
            continue
        kept_files.append(path)
        kept_labels.append(label)
    if not kept_files:
        first = found.skipped[0] if found.skipped else ("", "")
        raise ConfigError(f"no image under {found.root} can be read ({len(found.skipped)} skipped; first: "
                          f"{first[0]}: {first[1]})")
    found.files, found.labels = kept_files, kept_labels
    found.images = np.stack(images).astype(np.float32)
    return found
