"""`mobiledeploy accuracy`: the statistics, the labelled folder, bad input, and the trained digits model end to end
(fp32 >= 95% top-1, int8 within 1 point, int8 on the emulated cortex-a76 identical to the host's)."""

from __future__ import annotations

import json
import math
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mobiledeploy.errors import ConfigError
from mobiledeploy.labelled import find_labelled, load_labelled
from mobiledeploy.proportions import mcnemar_exact, paired_difference, wilson_interval
from tests.cli_checks import one_error_line

CLI = Path(sys.executable).with_name("mobiledeploy")


def run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"PATH": f"{CLI.parent}:/usr/bin:/bin", "HOME": str(Path.home()), "COLUMNS": "200", "NO_COLOR": "1",
           "MOBILEDEPLOY_DB": str(tmp_path / "results.db"), "MOBILEDEPLOY_ARM_CHECK": "off", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([str(CLI), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


def png(path: Path, value: int = 128, size: int = 8) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), value, dtype=np.uint8), mode="L").save(path)
    return path


# --- statistics ---------------------------------------------------------------------------------------

def test_wilson_interval_closed_forms_at_the_ends():
    z2 = 1.959963984540054 ** 2
    low, high = wilson_interval(0, 10)
    assert math.isclose(low, 0.0, abs_tol=1e-15) and math.isclose(high, z2 / (10 + z2), rel_tol=1e-12)  # 0.2775
    low, high = wilson_interval(10, 10)
    assert math.isclose(low, 10 / (10 + z2), rel_tol=1e-12) and math.isclose(high, 1.0)
    low, high = wilson_interval(50, 100)
    assert math.isclose(low, 0.4038, abs_tol=1e-4) and math.isclose(high, 0.5962, abs_tol=1e-4)


def test_mcnemar_exact_is_the_binomial_tail():
    assert math.isclose(mcnemar_exact(1, 9), 2 * (1 + 10) / 1024)
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)
    assert mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0
    first = [True] * 90 + [True] * 2 + [False] * 8
    second = [True] * 90 + [False] * 2 + [True] * 8
    diff = paired_difference(first, second)
    assert diff["only_first"] == 2 and diff["only_second"] == 8 and math.isclose(diff["difference"], 0.06)
    assert diff["low"] < 0.06 < diff["high"] and math.isclose(diff["p_value"], mcnemar_exact(2, 8))


# --- the labelled folder ------------------------------------------------------------------------------

def test_class_folders_skip_what_is_not_an_image_and_take_classes_in_turn(tmp_path):
    for label, count in (("0", 3), ("1", 1), ("2", 2)):
        for i in range(count):
            png(tmp_path / label / f"{i}.png", 40 * i)
    (tmp_path / "1" / "notes.txt").write_text("not an image")
    (tmp_path / "2" / "broken.png").write_bytes(b"not a png")
    found = find_labelled(tmp_path, limit=4)
    assert [f.relative_to(tmp_path).as_posix() for f in found.files] == ["0/0.png", "1/0.png", "2/0.png", "0/1.png"]
    assert found.labels == [0, 1, 2, 0] and found.class_map == "integer folder names"
    assert found.skipped == [("1/notes.txt", "not an image file")]
    everything = load_labelled(find_labelled(tmp_path), (16, 16))
    assert len(everything.files) == 6 and everything.images.shape == (6, 16, 16, 3)
    assert [p for p, _ in everything.skipped] == ["1/notes.txt", "2/broken.png"]


def test_names_map_to_outputs_sorted_or_through_a_classes_file(tmp_path):
    for name in ("dog", "cat"):
        png(tmp_path / "imgs" / name / "a.png")
    assert find_labelled(tmp_path / "imgs").classes == {0: "cat", 1: "dog"}
    (tmp_path / "classes.txt").write_text("bird\ndog\ncat\n")
    found = find_labelled(tmp_path / "imgs", classes_file=tmp_path / "classes.txt")
    assert found.classes == {1: "dog", 2: "cat"} and found.class_map == "classes file"
    (tmp_path / "classes.txt").write_text("bird\ndog\n")
    with pytest.raises(ConfigError, match="class 'cat' is not in the classes file"):
        find_labelled(tmp_path / "imgs", classes_file=tmp_path / "classes.txt")


def test_a_labels_file_names_images_anywhere(tmp_path):
    png(tmp_path / "a.png")
    png(tmp_path / "sub" / "b.png")
    (tmp_path / "labels.csv").write_text("a.png,3\nsub/b.png,7\ngone.png,1\n")
    found = find_labelled(tmp_path, labels_file=tmp_path / "labels.csv")
    assert found.labels == [3, 7] and found.skipped == [("gone.png", "listed in the labels file but missing")]


@pytest.mark.parametrize("layout, message", [
    ({}, r"holds no images .* in class subfolders"),
    ({"a.png": 1, "b.png": 2}, r"has no class subfolders \(2 file\(s\) directly in it\): lay images out as ROOT/<class>/<image>"),
])
def test_bad_folders_fail_in_one_line_before_any_export(tmp_path, layout, message):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in layout:
        png(folder / name)
    with pytest.raises(ConfigError, match=message):
        find_labelled(folder)
    proc = run(["accuracy", str(folder), "--arch", "v1", "--g", "3", "--scale", "0.25", "--resolution", "32"], tmp_path)
    assert "error: image folder" in one_error_line(proc)
    assert not (tmp_path / "artifacts").exists() and not (tmp_path / "results.db").exists()


def _digit_folders(root: Path, counts: dict[str, int]) -> Path:
    for label, count in counts.items():
        for i in range(count):
            png(root / label / f"{i:03d}.png", i % 256, size=4)
    return root


def test_calibration_draw_is_class_balanced_seeded_and_random_within_each_class(tmp_path):
    from mobiledeploy.converters.calibration import draw_images

    root = _digit_folders(tmp_path / "train", {"0": 40, "1": 40, "2": 40, "3": 5})
    draw = draw_images(root, 30, holdout=8, seed=0)
    assert draw.per_class == {"0": 9, "1": 8, "2": 8, "3": 5}  # classes in turn; class 3 has only 5 images
    assert sum(draw.per_class.values()) == len(draw.calibration) == 30 and len(draw.holdout) == 8
    assert not set(draw.calibration) & set(draw.holdout)
    names = [f.relative_to(root).as_posix() for f in draw.calibration]
    assert names != sorted(names) and any(n.split("/")[1] >= "010.png" for n in names)  # not the first images
    again = draw_images(root, 30, holdout=8, seed=0)
    assert again.calibration == draw.calibration and again.files_sha256 == draw.files_sha256
    other = draw_images(root, 30, holdout=8, seed=1)
    assert other.calibration != draw.calibration and other.files_sha256 != draw.files_sha256
    assert sorted(other.per_class.values()) == sorted(draw.per_class.values())  # still balanced
    with pytest.raises(ConfigError, match="--calibration-seed must be a non-negative integer"):
        draw_images(root, 30, seed=-1)


def test_calibration_draw_recorded_and_the_fingerprint_follows_the_seed(tmp_path):
    from mobiledeploy.converters.calibration import calibration_set, fingerprint

    root = _digit_folders(tmp_path / "train", {"a": 12, "b": 12})
    inputs = calibration_set(root, 6, (4, 4), (0.5,) * 3, (0.25,) * 3, calibration_seed=7)
    draw = inputs.info["draw"]
    assert draw["calibration_seed"] == 7 and draw["per_class"] == {"a": 3, "b": 3} and len(draw["files_sha256"]) == 64
    assert inputs.info["source"] == str(root.resolve()) and inputs.calibration.shape == (6, 3, 4, 4)
    assert inputs.fingerprint == fingerprint(root, 6, calibration_seed=7) != fingerprint(root, 6, calibration_seed=8)
    held = calibration_set(root, 6, (4, 4), (0.5,) * 3, (0.25,) * 3, calibration_seed=7, calibrate=False)
    assert np.array_equal(held.holdout, inputs.holdout) and held.info["samples"] == 0


def test_nothing_readable_is_one_line(tmp_path):
    (tmp_path / "images" / "0").mkdir(parents=True)
    (tmp_path / "images" / "0" / "x.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ConfigError, match=r"no image under .* can be read \(1 skipped; first: 0/x.png: cannot be read"):
        load_labelled(find_labelled(tmp_path / "images"), (8, 8))


# --- the trained model, end to end ------------------------------------------------------------------------

@pytest.mark.slow
def test_trained_digits_model_classifies(digits_model):
    trained = digits_model.trained
    assert trained.host_top1 >= 0.95, trained
    assert digits_model.export.manifest.calibration["samples"] == 64


@pytest.mark.slow
@pytest.mark.qemu
def test_accuracy_on_host_and_arm_int8_within_a_point_and_identical_on_arm(digits_model, arm_env, tmp_path):
    proc = run(["accuracy", str(digits_model.trained.test_dir), *digits_model.cli_model_args(), "--device",
                "qemu:cortex-a76", "--json", "--report", str(tmp_path / "report")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    top1 = {f"{r['artifact']}@{r['device']}": r["top1"] for r in report["results"]}
    assert sorted(top1) == ["fp32@local", "fp32@qemu:cortex-a76", "int8@local", "int8@qemu:cortex-a76", "onnx@local",
                            "torch@local"]
    n = report["images"]["images"]
    assert n == len(list(digits_model.trained.test_dir.glob("*/*.png"))) > 300 and all(t["n"] == n for t in top1.values())
    assert top1["torch@local"]["accuracy"] >= 0.95 and top1["torch@local"]["low"] < 0.95 + 0.03
    assert top1["torch@local"]["correct"] == top1["onnx@local"]["correct"] == top1["fp32@local"]["correct"]
    assert abs(top1["int8@local"]["accuracy"] - top1["fp32@local"]["accuracy"]) <= 0.01
    paired = {(p["first"], p["second"]): p for p in report["paired"]}
    fp32_int8 = paired[("fp32@local", "int8@local")]
    assert fp32_int8["difference"] == pytest.approx(top1["int8@local"]["accuracy"] - top1["fp32@local"]["accuracy"])
    arm = {a["artifact"]: a for a in report["arm"]}
    assert arm["int8"]["identical"] and arm["int8"]["unit"] == "quantisation steps", arm["int8"]
    assert arm["fp32"]["predictions_differing"] == 0 and arm["fp32"]["max_difference"] < 1e-5
    rows = sqlite3.connect(tmp_path / "results.db").execute(
        "SELECT artifact, device, top1 FROM accuracy WHERE evaluation_id = ?", (report["evaluation_id"],)).fetchall()
    assert sorted((a, d) for a, d, _ in rows) == sorted(tuple(k.split("@")) for k in top1)
    md = (tmp_path / "report" / "accuracy.md").read_text()
    assert "McNemar" in md and f"identical outputs on all {n} images" in md
    assert (tmp_path / "report" / "accuracy.html").is_file()
    assert report["warnings"] == []  # calibrated on training digits: the test digits look like them


@pytest.mark.slow
def test_labels_that_the_model_does_not_have_store_nothing(digits_model, tmp_path):
    png(tmp_path / "images" / "12" / "a.png")
    proc = run(["accuracy", str(tmp_path / "images"), *digits_model.cli_model_args()], tmp_path)
    line = one_error_line(proc)
    assert "the labels do not match the model's classes: class index 12 but the model has 10 outputs" in line
    assert not (tmp_path / "results.db").exists()


NOT_CLASSIFIERS = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, out: str) -> None:
        super().__init__()
        self.out, self.conv, self.head = out, nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 1 if out == "scalar" else 3)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return y if self.out == "nchw" else self.head(y.mean((2, 3)))


def segmentation():
    return Net("nchw")


def regression():
    return Net("scalar")


def three_classes():
    return Net("classes")
'''


def test_a_model_that_is_no_classifier_is_one_line_before_any_export_and_stores_nothing(tmp_path):
    (tmp_path / "net.py").write_text(NOT_CLASSIFIERS)
    png(tmp_path / "images" / "0" / "a.png")
    png(tmp_path / "images" / "7" / "b.png")
    proc = run(["accuracy", str(tmp_path / "images"), "--model-fn", "net.py:segmentation", "--input-shape",
                "1x3x16x16"], tmp_path)
    assert one_error_line(proc) == ("mobiledeploy: error: net.py:segmentation has no classification output (outputs: "
                                    "1x8x16x16); accuracy needs one output of shape 1xK, K the number of classes")
    assert not (tmp_path / "results.db").exists() and not (tmp_path / "artifacts").exists()  # checked before export


@pytest.mark.parametrize("builder, message", [
    ("regression", r"^net.py:regression has no classification output \(outputs: 1x1\)"),
    ("three_classes", r"^the labels do not match the model's classes: class index 7 but the model has 3 outputs"),
])
def test_a_scalar_output_or_labels_beyond_the_outputs_are_refused(tmp_path, monkeypatch, builder, message):
    from mobiledeploy.accuracy import check_classifier, output_shapes
    from mobiledeploy.registry import register_source

    (tmp_path / "net.py").write_text(NOT_CLASSIFIERS)
    monkeypatch.chdir(tmp_path)
    name = register_source(f"net.py:{builder}")
    shapes = output_shapes(name, {"input_shape": "1x3x16x16"}, "224")
    assert shapes == ([[1, 1]] if builder == "regression" else [[1, 3]])
    with pytest.raises(ConfigError, match=message):
        check_classifier(shapes, [0, 7], f"net.py:{builder}")
    assert check_classifier([[1, 10]], [0, 7], "digits") == 10


def test_evaluation_images_unlike_the_calibration_inputs_are_named():
    from mobiledeploy.accuracy import calibration_mismatch
    from mobiledeploy.converters.calibration import synthetic_images

    from mobiledeploy.converters.manifest import Manifest

    manifest = Manifest(calibration={"source": "synthetic", "samples": 8, "seed": 0}, resolution=[16, 16])
    assert calibration_mismatch(manifest, synthetic_images(8, (16, 16), seed=3)) is None
    dark = np.zeros((8, 16, 16, 3), dtype=np.float32)
    dark[:, 4:12, 6:10] = 1.0  # white strokes on black, as the digits
    line = calibration_mismatch(manifest, dark)
    assert line.startswith("the evaluation images do not look like the int8 calibration inputs (synthetic): mean pixel 0.12")
    assert "--calibration DIR" in line
