"""The README's CI examples are the commands the project's CI and tests run.

The GitHub Actions block under "The exact gate" has three `mobiledeploy gate` steps. The first must
be what `make test` (so `.ci/run`) ends with; the pull request's A/B step and the phone's step are
run here as written, with only what a test cannot have replaced: the base revision (HEAD), the
model (a smaller ShuffleNet, so the test stays short), report paths, and the phone's serial.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "mobiledeploy"]
SMALL = "v1:g=3,scale=0.25,resolution=64"


def ci_block(readme: str) -> str:
    """The ```yaml block that follows 'GitHub Actions' in the README."""
    match = re.search(r"GitHub Actions.*?```yaml\n(.*?)```", readme, re.S)
    assert match, "README: no GitHub Actions yaml block"
    return match.group(1)


def mobiledeploy_steps(block: str) -> dict[str, list[list[str]]]:
    """job → the argv (after `mobiledeploy`) of each `run:` step that calls .venv/bin/mobiledeploy.

    A `run:` value continued on more-indented lines is one YAML plain scalar: its lines are joined. An
    Actions expression `${{ x }}` is kept as one word, `${{x}}`."""
    jobs: dict[str, list[list[str]]] = {}
    job = None
    lines = block.splitlines()
    for i, line in enumerate(lines):
        if m := re.match(r"^  ([\w-]+):\s*$", line):
            job = m.group(1)
            jobs[job] = []
        m = re.match(r"^(\s*)(?:- )?run: (.*)$", line)
        if not m or job is None:
            continue
        text, indent = m.group(2), len(m.group(1))
        for more in lines[i + 1:]:
            if not more.strip() or len(more) - len(more.lstrip()) <= indent + 2:
                break
            text += " " + more.strip()
        text = re.sub(r"\$\{\{\s*(.*?)\s*\}\}", r"${{\1}}", text)  # Actions fills these in before the shell splits
        words = shlex.split(text.split(" #")[0])
        if words and words[0].endswith("/mobiledeploy"):
            jobs[job].append(words[1:])
    return jobs


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def replaced(argv: list[str], **values: str) -> list[str]:
    """argv with the value of each `--name` option replaced (underscores for dashes in the keyword)."""
    out = list(argv)
    for key, value in values.items():
        name = "--" + key.replace("_", "-")
        out[out.index(name) + 1] = value
    return out


@pytest.fixture(scope="module")
def steps() -> dict[str, list[list[str]]]:
    return mobiledeploy_steps(ci_block((REPO / "README.md").read_text()))


def test_the_block_is_read_as_three_gates():
    block = ci_block((REPO / "README.md").read_text())
    jobs = mobiledeploy_steps(block)
    assert [(job, [argv[0] for argv in argvs]) for job, argvs in jobs.items()] == [
        ("arm-instructions", ["gate"]), ("pull-request", ["gate"]), ("phone", ["gate"])]
    # A continued `run:` is one command, and a `cat` step is not one of ours.
    assert jobs["pull-request"][0][-4:] == ["--junit", "ab.xml", "--markdown", "ab.md"]
    assert mobiledeploy_steps("jobs:\n  x:\n    steps:\n      - run: cat a.md\n") == {"x": []}


def test_the_push_job_is_the_gate_make_test_ends_with(steps):
    make = subprocess.run(["make", "-n", "--no-print-directory", "gate", "GATE_REPORT=gate.md", "GATE_JUNIT=gate.xml"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert make.returncode == 0, make.stderr
    [line] = [ln for ln in make.stdout.splitlines() if "/mobiledeploy gate " in ln]
    make_argv = shlex.split(line)[1:]
    [readme_argv] = steps["arm-instructions"]
    assert readme_argv == make_argv
    assert (REPO / option(readme_argv, "--baseline")).is_file()
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)  # .ci/run is `make test`, which ends with `make gate`
    recipe = (REPO / "Makefile").read_text().split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert recipe.rstrip().endswith("$(MAKE) --no-print-directory gate")


@pytest.mark.qemu
@pytest.mark.slow
def test_the_pull_request_job_passes_head_against_itself(steps, arm_env, results_db, tmp_path):
    """The README's A/B step, base = HEAD: that revision's code exports the baseline in a throwaway
    worktree, both are counted on the emulated core, and the same code gives the same counts."""
    [readme_argv] = steps["pull-request"]
    assert option(readme_argv, "--against") == "${{github.event.pull_request.base.sha}}"
    argv = replaced(readme_argv, against="HEAD", model=SMALL, junit=str(tmp_path / "ab.xml"),
                    markdown=str(tmp_path / "ab.md"))
    proc = subprocess.run([*CLI, *argv, "--json"], cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "CI": ""})
    assert proc.returncode == 0, proc.stderr
    verdict = json.loads(proc.stdout)
    formats = option(readme_argv, "--formats").split(",")
    assert verdict["status"] == "pass" and sorted(e["precision"] for e in verdict["entries"]) == sorted(formats)
    for entry in verdict["entries"]:
        assert entry["status"] == "unchanged" and abs(entry["ratio"] - 1) < 1e-4, entry
    assert 'failures="0"' in (tmp_path / "ab.xml").read_text()
    assert "pass" in (tmp_path / "ab.md").read_text()
    assert "mobiledeploy-against" not in subprocess.run(["git", "worktree", "list"], cwd=REPO, capture_output=True,
                                                        text=True).stdout  # the worktree is gone


@pytest.mark.adb
def test_the_phone_job_runs_over_real_adb(steps, adb_env, fake_device, tmp_path):
    """The phone step as written, through the Debian adb client to the tests' device-side server: the
    committed folder has no baseline for that phone, so it cannot judge (exit 2) and says how to record one,
    and its Markdown report says so too."""
    [readme_argv] = steps["phone"]
    assert option(readme_argv, "--device") == "adb:${{vars.PHONE_SERIAL}}"
    (tmp_path / "benchmarks").symlink_to(REPO / "benchmarks")  # the step runs at the checkout's root
    argv = replaced(readme_argv, device=f"adb:{fake_device.serial}")
    proc = subprocess.run([*CLI, *argv], cwd=tmp_path, capture_output=True, text=True, env=adb_env.env, timeout=180)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("mobiledeploy: error: no baseline for this machine class") and "Traceback" not in proc.stderr
    report = (tmp_path / option(readme_argv, "--markdown")).read_text()
    assert "cannot judge" in report and "--update-baseline" in report
    assert shutil.which("adb") == adb_env.adb
