"""The latency gate's judgement: pure functions over stored samples (a baseline and a candidate).

For every model of the baseline, the candidate/baseline latency ratio is taken on values
normalised by the reference model timed in the same session:

- "rounds" (preferred): per round r, q_r = median(model runs in r) / median(reference runs in r);
  the reference ran in the same interleaved round, so drift and a uniformly slower machine
  cancel. ratio = median(q candidate) / median(q baseline), with a percentile-bootstrap interval
  over rounds (`stats.ratio_of_medians_ci`) and a Mann–Whitney U p-value for information.
- "runs" (fallback when either side has fewer than `min_rounds` rounds): every timed run pooled,
  (median(model)/median(reference)) candidate over baseline, the four samples bootstrapped
  independently (`stats.normalized_ratio_ci`). It ignores variation between sessions, so it
  is the weaker method.

A model regresses only when the WHOLE interval lies above 1 + max_regression (asv's rule:
significant *and* beyond the factor); it improved when the whole interval lies below
1 / (1 + max_regression). An interval that straddles 1 + max_regression is "inconclusive": the
samples cannot tell whether the slowdown is within the threshold (more rounds would); it does not
fail the gate, but it is never called "unchanged". Anything else is "unchanged". Exit codes: 1 when any model regressed,
else 2 when any model could not be judged (missing, failed, too few samples), else 0.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..devices.base import machine_class
from ..errors import ConfigError, MobiledeployError
from ..stats import mann_whitney_u, median, normalized_ratio_ci, paired_ratio_ci, ratio_of_medians_ci
from .baseline import Baseline, ModelSamples
from .status import (FAILED, IMPROVEMENT, INCONCLUSIVE, INSUFFICIENT, MISSING, NEW, OTHER_MACHINE, REGRESSION,
                     UNCHANGED, GateStatus, Judgement, overall, reasons)

__all__ = ["Threshold", "GatePolicy", "ModelVerdict", "Verdict", "judge", "judge_model", "format_change", "UNJUDGED",
           "JUDGED"]

UNJUDGED = (INSUFFICIENT, MISSING, FAILED, OTHER_MACHINE)  # a model with one of these makes the gate exit 2
JUDGED = (REGRESSION, IMPROVEMENT, UNCHANGED, INCONCLUSIVE)
_THRESHOLD = re.compile(r"^(?:median:)?\s*([0-9]*\.?[0-9]+)\s*(%?)$")


@dataclass(frozen=True)
class Threshold:
    """The largest slowdown tolerated, as a fraction: '5%' and '0.05' are both 0.05 (factor 1.05)."""

    fraction: float

    @classmethod
    def parse(cls, text: str | float) -> "Threshold":
        """'5%', '0.05', 'median:5%' (pytest-benchmark's spelling) → Threshold(0.05)."""
        if isinstance(text, (int, float)):
            value, percent = float(text), False
        else:
            match = _THRESHOLD.match(text.strip().lower())
            if not match:
                raise ConfigError(f"--max-regression takes a percentage like 5% or a fraction like 0.05, got {text!r}")
            value, percent = float(match[1]), bool(match[2])
        fraction = value / 100.0 if percent else value
        if not percent and fraction >= 1.0:
            raise ConfigError(f"--max-regression {text!r} reads as {fraction:g}x slower; did you mean {value:g}%?")
        if not 0.0 < fraction < 10.0:
            raise ConfigError(f"--max-regression must be above 0 (got {text!r})")
        return cls(fraction)

    @property
    def factor(self) -> float:
        return 1.0 + self.fraction

    def __str__(self) -> str:
        return f"{self.fraction * 100:g}%"


@dataclass(frozen=True)
class GatePolicy:
    """How to judge. `reference`: the reference model's name (None: the baseline's own);
    `normalise=False` compares raw latencies. `min_rounds`/`min_runs`: below both, a model
    cannot be judged. `n_boot`, `seed`: the bootstrap (deterministic for a seed)."""

    max_regression: Threshold = Threshold(0.05)
    confidence: float = 0.99
    reference: str | None = None
    normalise: bool = True
    min_rounds: int = 3
    min_runs: int = 10
    n_boot: int = 2000
    seed: int = 0
    paired: bool = False  # A/B in one session: judge the per-round ratio candidate/baseline of the same round

    def validate(self) -> "GatePolicy":
        if not 0.5 <= self.confidence < 1.0:
            raise ConfigError(f"--confidence must be in [0.5, 1), got {self.confidence}")
        if self.min_rounds < 2 or self.min_runs < 2 or self.n_boot < 100:
            raise ConfigError("need min_rounds >= 2, min_runs >= 2 and n_boot >= 100")
        return self


@dataclass(kw_only=True)
class ModelVerdict(Judgement):
    """One model's judgement. Ratios are candidate/baseline latency (>1: slower), normalised by the
    reference unless `normalised` is False; `low`/`high` bound the interval at the policy's confidence."""

    name: str
    precision: str
    ratio: float | None = None
    low: float | None = None
    high: float | None = None
    raw_ratio: float | None = None
    p_value: float | None = None
    method: str | None = None
    normalised: bool = False
    baseline_median_ms: float | None = None
    candidate_median_ms: float | None = None
    baseline_rounds: int = 0
    candidate_rounds: int = 0
    baseline_runs: int = 0
    candidate_runs: int = 0
    artifact_changed: bool | None = None


@dataclass
class Verdict:
    """Every model's judgement, the policy, and what the reference says about the machine."""

    models: list[ModelVerdict]
    max_regression: float
    confidence: float
    reference: str | None
    device: str
    baseline_device: str
    machine_ratio: list[float] | None = None  # reference candidate/baseline: point, low, high
    warnings: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[ModelVerdict]:
        return [m for m in self.models if m.status == REGRESSION]

    @property
    def unjudged(self) -> list[ModelVerdict]:
        return [m for m in self.models if m.status in UNJUDGED]

    @property
    def exit_code(self) -> int:
        if self.regressions:
            return 1
        judged = [m for m in self.models if m.status in JUDGED]
        return 2 if self.unjudged or not judged else 0

    @property
    def status(self) -> GateStatus:
        return overall(self.exit_code)

    def summary_line(self) -> str:
        if self.regressions:
            return reasons(self.regressions)
        if self.exit_code == 2:
            problems = self.unjudged or self.models
            if problems and all(m.status == OTHER_MACHINE for m in problems):
                return problems[0].message
            return reasons(problems) or "no model to judge"
        judged = [m for m in self.models if m.status in JUDGED]
        better = [m for m in judged if m.status == IMPROVEMENT]
        unsure = [m for m in judged if m.status == INCONCLUSIVE]
        within = len(judged) - len(unsure)
        return (f"{within} model(s) within +{self.max_regression * 100:g}%"
                + (f", {len(better)} improved" if better else "")
                + (f", {len(unsure)} inconclusive (interval crosses +{self.max_regression * 100:g}%: "
                   f"{', '.join(m.key for m in unsure)}; more rounds would decide)" if unsure else ""))

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "exit_code": self.exit_code, "summary": self.summary_line(),
                "max_regression": self.max_regression, "confidence": self.confidence, "reference": self.reference,
                "device": self.device, "baseline_device": self.baseline_device, "machine_ratio": self.machine_ratio,
                "warnings": list(self.warnings), "models": [asdict(m) for m in self.models]}


# --- judging --------------------------------------------------------------------------------------

def format_change(ratio: float) -> str:
    """1.123 → '+12.3%', 0.95 → '-5.0%'."""
    return f"{(ratio - 1.0) * 100:+.1f}%"


def _median_ms(samples: ModelSamples) -> float | None:
    """Median (ms) of every timed run."""
    pooled = samples.pooled_us()
    return median(pooled) / 1000.0 if pooled else None


def _round_values(samples: ModelSamples, ref: ModelSamples | None) -> list[float]:
    """Per-round medians (us), divided by the reference's median of the same round when there is one."""
    medians = samples.round_medians_us()
    if ref is None:
        return list(medians.values())
    ref_medians = ref.round_medians_us()
    return [v / ref_medians[r] for r, v in medians.items() if ref_medians.get(r, 0.0) > 0.0]


def judge_model(base: ModelSamples, cand: ModelSamples | None, base_ref: ModelSamples | None,
                cand_ref: ModelSamples | None, policy: GatePolicy) -> ModelVerdict:
    """Judge one model; `base_ref`/`cand_ref` are None when not normalising."""
    verdict = ModelVerdict(key=base.key, name=base.name, precision=base.precision, status=INSUFFICIENT, message="",
                           normalised=base_ref is not None,
                           baseline_median_ms=_median_ms(base), baseline_rounds=len(base.round_medians_us()),
                           baseline_runs=len(base.pooled_us()))
    if cand is None:
        verdict.status, verdict.message = MISSING, "not in the candidate results"
        return verdict
    verdict.candidate_median_ms = _median_ms(cand)
    verdict.candidate_rounds, verdict.candidate_runs = len(cand.round_medians_us()), len(cand.pooled_us())
    verdict.artifact_changed = bool(base.sha256 and cand.sha256) and base.sha256 != cand.sha256
    if not cand.rounds:
        verdict.status = FAILED
        verdict.message = f"no successful run in the candidate ({cand.failures[0] if cand.failures else 'no samples'})"
        return verdict
    if verdict.normalised and (cand_ref is None or not cand_ref.rounds):
        verdict.status, verdict.message = FAILED, "the reference model has no successful run in the candidate"
        return verdict
    if verdict.baseline_median_ms and verdict.candidate_median_ms:
        verdict.raw_ratio = verdict.candidate_median_ms / verdict.baseline_median_ms
    interval = _interval(base, cand, base_ref, cand_ref, policy, verdict)
    if interval is None:
        verdict.message = (f"too few samples: {verdict.baseline_rounds}/{verdict.candidate_rounds} rounds and "
                           f"{verdict.baseline_runs}/{verdict.candidate_runs} runs (baseline/candidate); "
                           f"need {policy.min_rounds} rounds or {policy.min_runs} runs on each side")
        return verdict
    verdict.ratio, verdict.low, verdict.high = interval
    _decide(verdict, policy)
    return verdict


def _interval(base: ModelSamples, cand: ModelSamples, base_ref: ModelSamples | None, cand_ref: ModelSamples | None,
              policy: GatePolicy, verdict: ModelVerdict) -> tuple[float, float, float] | None:
    kw = dict(confidence=policy.confidence, n_boot=policy.n_boot, seed=policy.seed)
    if policy.paired:  # both timed in the same rounds: each round's ratio cancels the machine's state then
        m_base, m_cand = base.round_medians_us(), cand.round_medians_us()
        common = [r for r in m_cand if m_base.get(r, 0.0) > 0.0]
        if len(common) >= policy.min_rounds:
            verdict.method = "paired rounds"
            num, den = [m_cand[r] for r in common], [m_base[r] for r in common]
            verdict.p_value = mann_whitney_u(num, den)[1]
            return paired_ratio_ci(num, den, **kw)
    q_base, q_cand = _round_values(base, base_ref), _round_values(cand, cand_ref)
    if min(len(q_base), len(q_cand)) >= policy.min_rounds:
        verdict.method = "rounds"
        verdict.p_value = mann_whitney_u(q_cand, q_base)[1]
        return ratio_of_medians_ci(q_cand, q_base, **kw)
    pooled = [base.pooled_us(), cand.pooled_us()]
    if base_ref is not None and cand_ref is not None:
        pooled += [base_ref.pooled_us(), cand_ref.pooled_us()]
    if min(len(p) for p in pooled) < policy.min_runs:
        return None
    verdict.method = "runs"
    if base_ref is None or cand_ref is None:
        verdict.p_value = mann_whitney_u(pooled[1], pooled[0])[1]
        return ratio_of_medians_ci(pooled[1], pooled[0], **kw)
    scale_b, scale_c = _median_ms(base_ref), _median_ms(cand_ref)
    verdict.p_value = mann_whitney_u([t / scale_c for t in pooled[1]], [t / scale_b for t in pooled[0]])[1]
    return normalized_ratio_ci(pooled[1], pooled[3], pooled[0], pooled[2], **kw)


def _decide(verdict: ModelVerdict, policy: GatePolicy) -> None:
    factor, conf = policy.max_regression.factor, f"{policy.confidence:.0%}"
    assert verdict.ratio is not None and verdict.low is not None and verdict.high is not None
    span = f"{conf} interval {format_change(verdict.low)} … {format_change(verdict.high)}"
    change = format_change(verdict.ratio)
    if verdict.low > factor:
        verdict.status = REGRESSION
        verdict.message = f"{change} slower ({span}, all above the +{policy.max_regression} threshold)"
    elif verdict.high < 1.0 / factor:
        verdict.status = IMPROVEMENT
        verdict.message = f"{change} faster ({span}, all below {format_change(1.0 / factor)})"
    elif verdict.high > factor:
        verdict.status = INCONCLUSIVE
        verdict.message = (f"{change} ({span}): the interval straddles the +{policy.max_regression} threshold, "
                           "so these samples cannot tell; more rounds would")
    else:
        verdict.status = UNCHANGED
        verdict.message = f"{change} ({span}): no significant change beyond +{policy.max_regression}"


def _reference_name(baseline: Baseline, policy: GatePolicy) -> str | None:
    if not policy.normalise:
        return None
    return policy.reference or baseline.reference


def judge(baseline: Baseline, candidate: Baseline, policy: GatePolicy | None = None) -> Verdict:
    """Judge every model of the baseline against the candidate's samples of it."""
    policy = (policy or GatePolicy()).validate()
    reference = _reference_name(baseline, policy)
    verdict = Verdict([], policy.max_regression.fraction, policy.confidence, reference, candidate.device,
                      baseline.device)
    other_machine = _other_machine(baseline, candidate)
    if other_machine:
        verdict.models = [ModelVerdict(key=m.key, name=m.name, precision=m.precision, status=OTHER_MACHINE,
                                       message=other_machine)
                          for m in baseline.models.values() if m.name != reference]
        return verdict
    if reference is not None and not any(m.name == reference for m in baseline.models.values()):
        verdict.warnings.append(f"the baseline has no samples of the reference {reference}: nothing can be judged")
    for base in baseline.models.values():
        if base.name == reference:
            continue
        base_ref = baseline.samples_of(reference, base.precision)
        cand_ref = candidate.samples_of(reference, base.precision)
        if reference is not None and base_ref is None:
            verdict.models.append(ModelVerdict(key=base.key, name=base.name, precision=base.precision, status=INSUFFICIENT,
                                               message=f"the baseline has no samples of the reference {reference}"))
            continue
        verdict.models.append(judge_model(base, candidate.models.get(base.key), base_ref, cand_ref, policy))
    for cand in candidate.models.values():
        if cand.key not in baseline.models and cand.name != reference:
            verdict.models.append(ModelVerdict(key=cand.key, name=cand.name, precision=cand.precision, status=NEW,
                                               message="not in the baseline (not judged)",
                                               candidate_median_ms=_median_ms(cand)))
    _describe_machine(verdict, baseline, candidate, reference, policy)
    return verdict


def _other_machine(baseline: Baseline, candidate: Baseline) -> str | None:
    """Why the two sessions cannot be compared: recorded on different machine classes (None: they can)."""
    old, new = machine_class(baseline.device_info), machine_class(candidate.device_info)
    if old is None or new is None or old == new:
        return None
    return (f"the baseline was recorded on another machine class ({old}; this one: {new}): the latency ratios "
            "between models differ across CPUs, so nothing is judged; record a baseline for this class "
            "with --update-baseline (a --baseline folder keeps one per class)")


def _on_this_host(device: str) -> bool:
    """A device whose model/SoC facts are this host's (they differ between CI machines without meaning)."""
    from ..devices.kinds import kind_of

    try:
        return kind_of(device).host_cpus
    except MobiledeployError:  # a stored baseline of a device kind this version does not know
        return False


def _describe_machine(verdict: Verdict, baseline: Baseline, candidate: Baseline, reference: str | None,
                      policy: GatePolicy) -> None:
    """The reference's own candidate/baseline ratio (machine speed), and warnings on what differs."""
    if reference is not None:
        base_ref, cand_ref = baseline.samples_of(reference, "fp32"), candidate.samples_of(reference, "fp32")
        if base_ref and cand_ref and base_ref.pooled_us() and cand_ref.pooled_us():
            point, low, high = ratio_of_medians_ci(cand_ref.pooled_us(), base_ref.pooled_us(),
                                                   confidence=policy.confidence, n_boot=policy.n_boot, seed=policy.seed)
            verdict.machine_ratio = [point, low, high]
            if base_ref.sha256 and cand_ref.sha256 and base_ref.sha256 != cand_ref.sha256:
                verdict.warnings.append(f"the reference artifact {reference} changed (sha256): normalisation "
                                        "would hide a slowdown that hits every model, the reference included")
    if machine_class(baseline.device_info) is None and machine_class(candidate.device_info) is not None:
        verdict.warnings.append("the baseline does not record its machine class (CPU and instruction sets), so it "
                                "may come from another kind of machine: re-record it with --update-baseline")
    if baseline.device != candidate.device:
        verdict.warnings.append(f"baseline measured on {baseline.device}, candidate on {candidate.device}")
    for key in ("model", "soc", "abi"):
        old, new = baseline.device_info.get(key), candidate.device_info.get(key)
        if old and new and old != new and not _on_this_host(baseline.device):
            verdict.warnings.append(f"device {key} differs: baseline {old!r}, candidate {new!r}")
    for key in ("threads", "runs", "warmup", "cpu_mask"):
        old, new = baseline.bench_options.get(key), candidate.bench_options.get(key)
        if old is not None and new is not None and old != new:
            verdict.warnings.append(f"bench option {key} differs: baseline {old}, candidate {new}")
