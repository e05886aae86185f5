"""SLO and regression checks for benchmark measurements (latency, energy, throughput, ...).

* :func:`slo_compliance`: bootstrap interval of a percentile against a target.
* :func:`regression_check`: baseline vs current: permutation test on the
  difference in means with Cohen's d, and Mann-Whitney U with the
  Vargha-Delaney A effect size and a verdict.
* :func:`threshold_compliance` and :func:`compliance_report`: "at least
  1 - epsilon of the measurements under target" for many metrics, with a
  JSON-ready report.

Resampling and permutations run in numba kernels on Philox streams keyed by
``seed`` (see :mod:`simulation.engine._kernels`), so results are deterministic and
independent of the thread count.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from simulation.core.validation import check_confidence_level, check_positive_int
from simulation.engine import _kernels
from simulation.inference.bootstrap import resample_keys
from simulation.infra.resources import check_resources
from simulation.toolkit.bootstrap import _as_samples

VERDICTS = ("improvement", "no change", "degradation")
#: Vargha & Delaney (2000, J. Educ. Behav. Stat. 25:101-132) thresholds on max(A, 1 - A).
VD_THRESHOLDS = ((0.56, "negligible"), (0.64, "small"), (0.71, "medium"))


def _keys(seed: int) -> tuple[np.uint64, np.uint64]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}")
    key = resample_keys([np.random.SeedSequence(int(seed))])[0]
    return key[0], key[1]


def _json_ready(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, (np.floating, float)):
            v = None if math.isnan(v) else float(v)
        elif isinstance(v, (np.integer,)):
            v = int(v)
        elif isinstance(v, np.bool_):
            v = bool(v)
        out[k] = v
    return out


@dataclasses.dataclass(frozen=True)
class SLOResult:
    """Outcome of :func:`slo_compliance`."""

    percentile: float
    value: float
    ci_lower: float
    ci_upper: float
    confidence_level: float
    target: float
    compliant: bool
    prob_under_target: float
    n_samples: int
    n_resamples: int

    def to_dict(self) -> dict[str, Any]:
        return _json_ready(dataclasses.asdict(self))

    def verdict(self) -> str:
        word = "COMPLIANT" if self.compliant else "NOT COMPLIANT"
        return (
            f"{word}: p{self.percentile:g} = {self.value:.4g}, {self.confidence_level:g} interval "
            f"[{self.ci_lower:.4g}, {self.ci_upper:.4g}] against target {self.target:g} "
            f"(upper bound {'under' if self.compliant else 'not under'} target); bootstrap probability that "
            f"p{self.percentile:g} < target: {self.prob_under_target:.3f} (n = {self.n_samples})"
        )


def slo_compliance(
    measurements: Sequence[float],
    target: float,
    *,
    percentile: float = 95.0,
    confidence_level: float = 0.999,
    n_resamples: int = 10_000,
    seed: int = 42,
) -> SLOResult:
    """Is the ``percentile`` of the measurements under ``target``, with confidence?

    The two-sided percentile-bootstrap interval (Efron & Tibshirani 1993,
    eq. 13.5) of the sample percentile (linear interpolation) at
    ``confidence_level``; compliant when its upper end is under the target
    (a one-sided ``(1 + confidence_level) / 2`` bound).  Also the bootstrap
    probability that the percentile is under the target (the share of
    resampled percentiles below it).  Known to under-cover for high
    percentiles at small n (the README reports measured coverage).
    """
    x = np.sort(_as_samples(measurements, "measurements"))
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not math.isfinite(target):
        raise ValueError(f"`target` must be a finite number, got {target!r}")
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 0 < percentile < 100:
        raise ValueError(f"`percentile` must be a number in (0, 100), got {percentile!r}")
    confidence_level = check_confidence_level(confidence_level)
    n_resamples = check_positive_int(n_resamples, "n_resamples")
    # the resamples' percentiles, a sorted copy and a comparison mask
    check_resources(f"slo_compliance with n_resamples = {n_resamples}", n_resamples * 24.0)
    k0, k1 = _keys(seed)
    prob = percentile / 100
    boot = np.sort(_kernels.bootstrap_quantile(x, k0, k1, n_resamples, prob))
    alpha = 1 - confidence_level
    lower, upper = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return SLOResult(
        percentile=float(percentile),
        value=float(np.quantile(x, prob)),
        ci_lower=float(lower),
        ci_upper=float(upper),
        confidence_level=confidence_level,
        target=float(target),
        compliant=bool(upper < target),
        prob_under_target=float(np.count_nonzero(boot < target) / n_resamples),
        n_samples=int(x.size),
        n_resamples=n_resamples,
    )


@dataclasses.dataclass(frozen=True)
class RegressionResult:
    """Outcome of :func:`regression_check` (``difference`` = mean(current) - mean(baseline))."""

    difference: float
    permutation_pvalue: float
    cohens_d: float
    mannwhitney_u: float
    mannwhitney_pvalue: float
    vargha_delaney_a: float
    effect_magnitude: str
    verdict: str
    n_baseline: int
    n_current: int
    n_permutations: int
    alpha: float
    lower_is_better: bool

    def to_dict(self) -> dict[str, Any]:
        return _json_ready(dataclasses.asdict(self))

    def summary(self) -> str:
        return (
            f"{self.verdict.upper()}: mean change {self.difference:+.4g} (permutation p = "
            f"{self.permutation_pvalue:.4g}, Cohen's d = {self.cohens_d:+.3f}); Mann-Whitney p = "
            f"{self.mannwhitney_pvalue:.4g}, Vargha-Delaney A = {self.vargha_delaney_a:.3f} "
            f"({self.effect_magnitude}); n = {self.n_baseline} vs {self.n_current}"
        )


def vargha_delaney_magnitude(a: float) -> str:
    """``negligible``, ``small``, ``medium`` or ``large`` from max(A, 1 - A) (Vargha & Delaney 2000)."""
    m = max(a, 1 - a)
    for threshold, name in VD_THRESHOLDS:
        if m < threshold:
            return name
    return "large"


def regression_check(
    baseline: Sequence[float],
    current: Sequence[float],
    *,
    n_permutations: int = 10_000,
    alpha: float = 0.05,
    lower_is_better: bool = True,
    seed: int = 42,
) -> RegressionResult:
    """Has ``current`` changed from ``baseline``?

    * Permutation test of equal means: two-sided p-value ``(1 + #{|d*| >= |d|}) / (M + 1)``
      over ``M`` random relabellings (Phipson & Smyth 2010); Cohen's d with the
      pooled SD (Cohen 1988, eq. 2.5.2).
    * Mann-Whitney U (``scipy.stats.mannwhitneyu``, two-sided) and the
      Vargha-Delaney ``A = U_current / (n_b n_c)``, the probability that a
      current measurement exceeds a baseline one (ties half).
    * Verdict: ``no change`` unless the Mann-Whitney p-value is below
      ``alpha`` and the effect is at least small (``max(A, 1 - A) >= 0.56``);
      then ``degradation`` or ``improvement`` by the direction of A and
      ``lower_is_better`` (latency, energy: lower is better).
    """
    b = _as_samples(baseline, "baseline")
    c = _as_samples(current, "current")
    if b.size < 2 or c.size < 2:
        raise ValueError(f"`baseline` and `current` need >= 2 measurements each, got {b.size} and {c.size}")
    n_permutations = check_positive_int(n_permutations, "n_permutations")
    # the null's mean differences, their absolute values and a comparison mask
    check_resources(f"regression_check with n_permutations = {n_permutations}", n_permutations * 24.0)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be a number in (0, 1), got {alpha!r}")
    k0, k1 = _keys(seed)
    values = np.concatenate([b, c])
    diff = float(c.mean() - b.mean())
    null = _kernels.permutation_mean_differences(values, b.size, k0, k1, n_permutations)
    scale = max(1.0, float(np.abs(values).max()))
    count = int(np.count_nonzero(np.abs(null) >= abs(diff) - 1e-12 * scale))
    pooled = math.sqrt(((b.size - 1) * b.var(ddof=1) + (c.size - 1) * c.var(ddof=1)) / (b.size + c.size - 2))
    mw = stats.mannwhitneyu(c, b, alternative="two-sided")
    a = float(mw.statistic) / (b.size * c.size)
    magnitude = vargha_delaney_magnitude(a)
    verdict = "no change"
    if mw.pvalue < alpha and magnitude != "negligible":
        worse = a > 0.5 if lower_is_better else a < 0.5
        verdict = "degradation" if worse else "improvement"
    return RegressionResult(
        difference=diff,
        permutation_pvalue=(1 + count) / (n_permutations + 1),
        cohens_d=diff / pooled if pooled > 0 else math.nan,
        mannwhitney_u=float(mw.statistic),
        mannwhitney_pvalue=float(mw.pvalue),
        vargha_delaney_a=a,
        effect_magnitude=magnitude,
        verdict=verdict,
        n_baseline=int(b.size),
        n_current=int(c.size),
        n_permutations=n_permutations,
        alpha=float(alpha),
        lower_is_better=bool(lower_is_better),
    )


def threshold_compliance(
    values: Sequence[float], target: float, *, epsilon: float = 0.05, confidence_level: float = 0.95
) -> dict[str, Any]:
    """Are at least ``1 - epsilon`` of the measurements under ``target``?

    Returns p95/p99/p99.9, the fraction under target, its one-sided
    Clopper-Pearson lower confidence bound (Clopper & Pearson 1934), and
    ``compliant`` (that bound is at least ``1 - epsilon``) next to
    ``point_compliant`` (the fraction itself is).
    """
    x = _as_samples(values, "values")
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 < epsilon < 1:
        raise ValueError(f"`epsilon` must be a number in (0, 1), got {epsilon!r}")
    confidence_level = check_confidence_level(confidence_level)
    n = x.size
    k = int(np.count_nonzero(x < target))
    lower = float(stats.beta.ppf(1 - confidence_level, k, n - k + 1)) if k > 0 else 0.0
    p95, p99, p999 = np.percentile(x, [95, 99, 99.9])
    return _json_ready(
        {
            "n": n,
            "target": float(target),
            "p95": p95,
            "p99": p99,
            "p99_9": p999,
            "fraction_under_target": k / n,
            "fraction_lower_bound": lower,
            "required_fraction": 1 - epsilon,
            "point_compliant": k / n >= 1 - epsilon,
            "compliant": lower >= 1 - epsilon,
        }
    )


def compliance_report(
    metrics: Mapping[str, Sequence[float]],
    targets: Mapping[str, float],
    *,
    epsilon: float = 0.05,
    confidence_level: float = 0.95,
) -> dict[str, Any]:
    """JSON-ready report over many metrics: overall score, risk level, per-metric details, recommendations.

    ``overall_score``: the share of metrics that are compliant (with
    confidence).  ``risk_level``: ``low`` (all compliant), ``medium`` (every
    metric meets the fraction but some lack the evidence), ``high`` (some
    metric misses the required fraction).
    """
    missing = sorted(set(metrics) - set(targets))
    if missing:
        raise ValueError(f"`targets` lacks metric(s) {missing}")
    if not metrics:
        raise ValueError("`metrics` must hold at least one metric")
    details = {name: threshold_compliance(v, targets[name], epsilon=epsilon, confidence_level=confidence_level)
               for name, v in metrics.items()}  # fmt: skip
    recommendations = []
    for name, d in details.items():
        if not d["point_compliant"]:
            recommendations.append(
                f"{name}: only {d['fraction_under_target']:.1%} under {d['target']:g} (need "
                f"{d['required_fraction']:.1%}); p99 = {d['p99']:.4g}: reduce the tail before release"
            )
        elif not d["compliant"]:
            need = math.ceil(math.log(1 - confidence_level) / math.log(d["required_fraction"]))
            recommendations.append(
                f"{name}: meets the fraction but the {confidence_level:g} lower bound "
                f"({d['fraction_lower_bound']:.3f}) does not; collect more measurements (n = {d['n']}; with no "
                f"misses about {need} are needed)"
            )
    compliant = [d["compliant"] for d in details.values()]
    risk = "low" if all(compliant) else ("medium" if all(d["point_compliant"] for d in details.values()) else "high")
    return {
        "overall_score": sum(compliant) / len(compliant),
        "risk_level": risk,
        "epsilon": epsilon,
        "confidence_level": confidence_level,
        "metrics": details,
        "recommendations": recommendations,
    }
