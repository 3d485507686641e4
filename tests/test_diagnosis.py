"""Export diagnosis: fp32 outputs that vanish or ignore the input are named in one line, not as a cosine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mobiledeploy.converters.diagnosis import degenerate_outputs

CLI = Path(sys.executable).with_name("mobiledeploy")

VANISHING = '''
import torch
from torch import nn


class Vanishing(nn.Module):
    """A classifier whose logits are 1e-10 of what they would be: as torchvision's untouched random init."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(8, 10))

    def forward(self, x):
        return self.body(x) * 1e-10


def build():
    torch.manual_seed(0)
    return Vanishing()
'''


def test_vanishing_and_constant_outputs_are_named_and_real_ones_pass():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(8, 10))
    assert degenerate_outputs(real) is None
    assert "outputs vanish on the 8 held-out inputs (largest |output| 1.0e-10)" in degenerate_outputs(real * 1e-10 / np.abs(real).max())
    constant = np.tile(real[:1], (8, 1)) + rng.normal(scale=1e-7, size=(8, 10))
    assert "(nearly) the same output for each of the 8 held-out inputs" in degenerate_outputs(constant)
    assert "pass --weights" in degenerate_outputs(constant)


@pytest.mark.slow
def test_export_of_a_model_whose_outputs_vanish_says_so_in_one_line(tmp_path):
    (tmp_path / "vanish.py").write_text(VANISHING)
    env = {"PATH": f"{CLI.parent}:/usr/bin:/bin", "HOME": str(Path.home()), "MOBILEDEPLOY_ARM_CHECK": "off",
           "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "200"}
    proc = subprocess.run([str(CLI), "export", "--model-fn", "vanish.py:build", "--input-shape", "1x3x16x16", "--out",
                           "out"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("mobiledeploy:")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert "cannot be checked: the fp32 model's outputs vanish on the 8 held-out inputs" in lines[0], lines[0]
    assert "untrained or randomly initialised weights? pass --weights" in lines[0] and "cosine" not in lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # nothing half-written
