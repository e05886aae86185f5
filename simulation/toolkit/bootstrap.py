"""Bootstrap intervals for measurements: small-sample CIs, campaign aggregation, a deterministic BCa bound.

Everything here is deterministic: randomness comes only from the ``seed``
(or ``run_id``) argument, so the same inputs give the same bytes.
Interval formulas are those of :func:`simulation.engine.intervals.bootstrap_intervals`
(Efron & Tibshirani 1993, eqs. 13.5, 14.9-14.15; Davison & Hinkley 1997,
eq. 5.6), shared with the Spearman engine.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from simulation.core.validation import check_confidence_level, check_positive_int
from simulation.engine.intervals import bootstrap_intervals
from simulation.infra.resources import check_resources

log = logging.getLogger(__name__)

TOOLKIT_METHODS = ("percentile", "basic", "bca")
WARN_ONE = "1 sample: no interval can be computed; collect at least 3 samples"
WARN_TWO = "2 samples: the interval is unreliable; collect at least 3 samples"
WARN_NO_SPREAD = "all samples are equal: the interval is the single value"
_CHUNK_VALUES = 8 * 2**20
_TIE_TOL = 1e-12


@dataclasses.dataclass(frozen=True)
class BootstrapResult:
    """A bootstrap confidence interval and its context.

    Attributes
    ----------
    mean : float
        Sample mean.
    std : float or None
        Sample standard deviation (ddof = 1); None for one sample (it has none).
    estimate : float
        The statistic on the sample (equals ``mean`` for the default statistic).
    ci_lower, ci_upper : float or None
        The interval for the statistic; None when it cannot be computed (one
        sample, or the method is undefined for these data: ``warning`` says why).
    n_samples : int
    confidence_level : float
    method : str
    warning : str or None
        Why the interval is missing or unreliable; None when neither.
    """

    mean: float
    std: float | None
    estimate: float
    ci_lower: float | None
    ci_upper: float | None
    n_samples: int
    confidence_level: float
    method: str
    warning: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the fields; a missing value is None, never NaN)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in dataclasses.asdict(self).items()}


def _as_samples(samples, name: str = "samples") -> np.ndarray:
    try:
        arr = np.asarray(samples, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{name}` must be a sequence of numbers, got {type(samples).__name__}") from exc
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D sequence of numbers, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` contains NaN or infinite values; only finite values are allowed")
    return arr


def _check_method(method: str) -> str:
    if method not in TOOLKIT_METHODS:
        raise ValueError(f"`method` must be one of {list(TOOLKIT_METHODS)}, got {method!r}")
    return method


def bootstrap_ci(
    samples: Sequence[float] | np.ndarray,
    *,
    statistic: Callable[..., Any] = np.mean,
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    method: str = "percentile",
    seed: int = 42,
) -> BootstrapResult:
    """Bootstrap confidence interval of ``statistic`` with small-sample warnings.

    Parameters
    ----------
    samples : sequence of float
        Finite measurements.
    statistic : callable
        ``statistic(array, axis=-1)``, vectorized like NumPy's reductions
        (``np.mean``, ``np.median``, ``lambda a, axis: np.percentile(a, 95, axis=axis)``).
    n_resamples : int
        Bootstrap resamples (drawn with ``numpy.random.default_rng(seed)``).
    confidence_level : float
        Two-sided level in (0, 1).
    method : {"percentile", "basic", "bca"}
    seed : int

    Returns
    -------
    BootstrapResult
        One sample: no interval (``ci_lower`` and ``ci_upper`` None, ``std``
        None) and a warning that it cannot be computed.  Two samples: an interval and a warning that it is
        unreliable.  Three or more: no warning.  All samples equal: the
        interval is that value, with a note.
    """
    x = _as_samples(samples)
    n_resamples = check_positive_int(n_resamples, "n_resamples")
    # the resamples' statistics and a sorted copy; the index draws go in batches
    check_resources(f"bootstrap_ci with n_resamples = {n_resamples}", n_resamples * 24.0 + 8.0 * x.size * 4)
    confidence_level = check_confidence_level(confidence_level)
    method = _check_method(method)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer, got {seed!r}")
    n = x.size
    estimate = float(statistic(x, axis=-1))
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else None
    common = {"mean": mean, "std": std, "estimate": estimate, "n_samples": n}
    common |= {"confidence_level": confidence_level, "method": method}
    if n == 1:
        return BootstrapResult(ci_lower=None, ci_upper=None, warning=WARN_ONE, **common)
    if np.all(x == x[0]):
        return BootstrapResult(ci_lower=estimate, ci_upper=estimate, warning=WARN_NO_SPREAD, **common)
    rng = np.random.default_rng(int(seed))
    # chunks of at most ~8 M values bound memory; consecutive integer draws equal one big draw
    rows_per_chunk = max(1, _CHUNK_VALUES // n)
    theta = np.concatenate(
        [
            np.asarray(statistic(x[rng.integers(0, n, size=(min(rows_per_chunk, n_resamples - start), n))], axis=-1))
            for start in range(0, n_resamples, rows_per_chunk)
        ]
    ).astype(np.float64)
    if method == "bca":
        keep = ~np.eye(n, dtype=bool)
        jack = np.concatenate(
            [
                np.asarray(statistic(np.tile(x, (len(block), 1))[keep[block]].reshape(len(block), n - 1), axis=-1))
                for block in np.array_split(np.arange(n), max(1, n // rows_per_chunk + 1))
            ]
        ).astype(np.float64)
    else:
        jack = np.full(n, np.nan)  # only BCa uses the jackknife
    rows = bootstrap_intervals(
        theta[None, :], np.array([estimate]), jack[None, :], confidence_level, studentized=False
    )
    lower, upper, status = (v[0] for v in rows.intervals[method])
    warning = WARN_TWO if n == 2 else None
    if status != "ok":
        warning = f"{warning + '; ' if warning else ''}{method} interval undefined ({status})"
    return BootstrapResult(ci_lower=_value(lower), ci_upper=_value(upper), warning=warning, **common)


def _value(v: float) -> float | None:
    """A finite endpoint as float; an undefined one (NaN) as None."""
    return None if math.isnan(v) else float(v)


def compute_metric_ci(values: Sequence[float], metric_name: str = "", confidence_level: float = 0.95) -> dict:
    """JSON-serializable percentile-bootstrap interval of the mean of one metric (1000 resamples, seed 42)."""
    return {"metric": metric_name} | bootstrap_ci(values, confidence_level=confidence_level).to_dict()


def aggregate_campaign_results(
    results: Mapping[str, Sequence[Mapping[str, Any]]] | pd.DataFrame,
    *,
    confidence_level: float = 0.95,
    config_column: str = "config",
    method: str = "percentile",
    n_resamples: int = 1000,
    seed: int = 42,
) -> pd.DataFrame:
    """One row per configuration x metric, with a bootstrap interval of the mean across cycles.

    Parameters
    ----------
    results : mapping or pandas.DataFrame
        ``{config: [cycle_record, ...]}`` with each record a mapping
        ``metric -> value``, or a tidy DataFrame with one row per cycle and a
        ``config_column``.  Every numeric metric is aggregated (energy,
        throughput, tokens, time to first token, inter-token latency, ...);
        non-numeric fields are ignored.

    Returns
    -------
    pandas.DataFrame
        ``config``, ``metric``, ``n_cycles`` (cycles with a value), the
        :class:`BootstrapResult` fields, and ``note`` (e.g. the metric is
        missing in some cycles, which are skipped).
    """
    if isinstance(results, pd.DataFrame):
        if config_column not in results.columns:
            raise ValueError(f"`results` has no column {config_column!r}; columns: {list(results.columns)}")
        groups = {str(k): g.drop(columns=config_column).to_dict("records") for k, g in results.groupby(config_column)}
    elif isinstance(results, Mapping):
        groups = {str(k): list(v) for k, v in results.items()}
    else:
        raise TypeError(f"`results` must be a mapping or a pandas DataFrame, got {type(results).__name__}")
    rows = []
    for config, cycles in groups.items():
        metrics: list[str] = []
        for record in cycles:
            if not isinstance(record, Mapping):
                raise TypeError(f"config {config!r}: each cycle must be a mapping of metric -> value, got {record!r}")
            for key, value in record.items():
                if _is_number(value) and math.isfinite(value) and key not in metrics:
                    metrics.append(key)
        for metric in metrics:
            values = [r[metric] for r in cycles if _is_number(r.get(metric)) and math.isfinite(r[metric])]
            missing = len(cycles) - len(values)
            note = f"missing or non-finite in {missing} of {len(cycles)} cycles (skipped)" if missing else ""
            result = bootstrap_ci(
                values, confidence_level=confidence_level, method=method, n_resamples=n_resamples, seed=seed
            )
            head = {"config": config, "metric": metric, "n_cycles": len(values)}
            rows.append(head | result.to_dict() | {"note": note})
    return pd.DataFrame(rows)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


# --------------------------------------------------------------------------
# Deterministic BCa lower bound for scores in [0, 1]
# --------------------------------------------------------------------------
def _run_id_seed(run_id: str) -> int:
    if not isinstance(run_id, str) or len(run_id) < 8:
        raise ValueError(f"`run_id` must be a string of at least 8 hexadecimal characters, got {run_id!r}")
    try:
        return int(run_id[:8], 16)
    except ValueError:
        raise ValueError(f"`run_id` must start with 8 hexadecimal characters, got {run_id!r}") from None


#: BCa bias-correction conventions: ``strict`` counts the bootstrap values strictly below the estimate
#: (Efron & Tibshirani 1993, eq. 14.14 as printed; seed 004's specified computation), ``half`` counts values
#: equal to it as half (Davison & Hinkley 1997, §5.3.2; ``scipy.stats.bootstrap``; this package's engine,
#: :mod:`simulation.engine.intervals`).  They differ only when many resamples equal the estimate (small n, discrete
#: scores), where ``strict`` biases ``z0`` downward.
BCA_CONVENTIONS = ("strict", "half")
#: Status of a BCa bound whose bias correction is undefined (every bootstrap value on one side of the
#: estimate): the same name as the engine's (:data:`simulation.engine.intervals.STATUS_BCA_BIAS`).
STATUS_BCA_BIAS_UNDEFINED = "bca_bias_undefined"


@dataclasses.dataclass(frozen=True)
class LowerBound:
    """A BCa lower bound with how it was computed (:func:`lower_bound_95`)."""

    bound: float
    #: ``ok``; ``bca_bias_undefined`` (every bootstrap mean on one side of the mean: the bound is the plain
    #: percentile at ``tail``, stated here instead of silently); ``too_few_scores`` (bound 0.0);
    #: ``constant`` (all scores equal: the bound is their mean).
    status: str
    z0: float
    acceleration: float
    #: The quantile level of the bootstrap means that gave the bound.
    level: float
    convention: str


def compute_lower_bound_95(
    scores: Sequence[float],
    *,
    run_id: str,
    n_resamples: int = 1000,
    tail: float = 0.025,
    convention: str = "strict",
) -> float:
    """The bound of :func:`lower_bound_95` (its ``bound``); see there.  ``convention="strict"`` (the default)
    is seed 004's specified computation and keeps its byte-identical bounds."""
    return lower_bound_95(scores, run_id=run_id, n_resamples=n_resamples, tail=tail, convention=convention).bound


def lower_bound_95(
    scores: Sequence[float],
    *,
    run_id: str,
    n_resamples: int = 1000,
    tail: float = 0.025,
    convention: str = "strict",
) -> LowerBound:
    """Deterministic BCa lower confidence bound on the mean of ``scores`` in [0, 1].

    The specified computation (kept as the default because downstream gates
    depend on it): the BCa-adjusted ``tail = 2.5%`` percentile of
    ``n_resamples`` bootstrap means.  **That is the lower end of a two-sided
    95% interval, i.e. a one-sided 97.5% lower bound, not a one-sided 95%
    bound.**  Pass ``tail=0.05`` for a true one-sided 95% bound.

    BCa (Efron & Tibshirani 1993, §14.3): ``a1 = Phi(z0 + (z0 + z)/(1 - a (z0 + z)))``
    with ``z = Phi^-1(tail)``, bias correction ``z0 = Phi^-1(#{means < mean} / B)``
    (eq. 14.14; ``convention="half"`` adds half the means equal to the mean,
    Davison & Hinkley 1997, §5.3.2, as the engine does: see
    :data:`BCA_CONVENTIONS`) and jackknife acceleration ``a`` (eq. 14.15); the
    bound is the ``a1`` quantile (linear interpolation) of the bootstrap means.
    When every bootstrap mean lies on one side of the mean ``z0`` is
    undefined; the bound is then the plain percentile at ``tail`` and
    ``status`` says ``bca_bias_undefined``.
    "Below" is meant in exact arithmetic: a bootstrap mean within 1e-12 of
    the mean (rounding of an equal sum) is not below it, so a uniform shift
    of the scores cannot flip ties and move ``z0``.

    Parameters
    ----------
    scores : sequence of float
        Values in [0, 1], no NaN.
    run_id : str
        Hexadecimal run identifier; the only randomness is
        ``numpy.random.default_rng(int(run_id[:8], 16))``, so identical
        inputs give a byte-identical bound.
    n_resamples : int
    tail : float
        Lower tail probability in (0, 0.5).
    convention : {"strict", "half"}
        How bootstrap means equal to the mean count in ``z0``.

    Returns
    -------
    LowerBound
        ``bound`` 0.0 when there are fewer than 5 scores (with a WARNING log naming the
        count and the run id); the mean itself when all scores are equal (no
        resampling); otherwise the bound.
    """
    if convention not in BCA_CONVENTIONS:
        raise ValueError(f"`convention` must be one of {list(BCA_CONVENTIONS)}, got {convention!r}")
    seed = _run_id_seed(run_id)
    n_resamples = check_positive_int(n_resamples, "n_resamples")
    if isinstance(tail, bool) or not isinstance(tail, (int, float)) or not 0 < tail < 0.5:
        raise ValueError(f"`tail` must be a number in (0, 0.5), got {tail!r}")
    x = _as_samples(scores, "scores") if len(scores) else np.empty(0)
    if np.any((x < 0) | (x > 1)):
        raise ValueError(f"`scores` must lie in [0, 1], got values from {x.min()!r} to {x.max()!r}")
    n = x.size
    if n < 5:
        log.warning("compute_lower_bound_95: only %d cases (need >= 5) for run %s; returning 0.0", n, run_id)
        return LowerBound(0.0, "too_few_scores", math.nan, math.nan, math.nan, convention)
    mean = float(x.mean())
    if np.all(x == x[0]):
        return LowerBound(mean, "constant", math.nan, math.nan, math.nan, convention)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, n, size=(n_resamples, n))].mean(axis=1)
    # strictly below in exact arithmetic: resamples with the data's own multiset of values equal the
    # mean exactly, but floating sums can land an ulp away; differences under 1e-12 count as equal
    below = np.count_nonzero(means < mean - _TIE_TOL) / n_resamples
    if convention == "half":
        below += 0.5 * np.count_nonzero(np.abs(means - mean) <= _TIE_TOL) / n_resamples
    z0 = float(ndtri(below)) if 0 < below < 1 else math.copysign(math.inf, below - 0.5)
    jack = (x.sum() - x) / (n - 1)
    d = jack.mean() - jack
    denom = 6 * float(np.sum(d * d)) ** 1.5
    a = float(np.sum(d**3)) / denom if denom > 0 else 0.0
    z = float(ndtri(tail))
    if not math.isfinite(z0):  # every bootstrap mean on one side: the plain percentile, and say so
        return LowerBound(float(np.quantile(means, tail)), STATUS_BCA_BIAS_UNDEFINED, z0, a, tail, convention)
    level = float(ndtr(z0 + (z0 + z) / (1 - a * (z0 + z))))
    return LowerBound(float(np.quantile(means, level)), "ok", z0, a, level, convention)
