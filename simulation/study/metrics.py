"""Performance measures of interval methods with their Monte Carlo standard errors.

Formulas from Morris, White & Crowther (2019), "Using simulation studies to
evaluate statistical methods", Statistics in Medicine 38:2074-2102, Table 6,
with ``n`` the number of replicates a measure is computed from:

* coverage ``p = mean(lower <= theta <= upper)``, MCSE ``sqrt(p (1 - p) / n)``;
* bias ``mean(theta_hat) - theta``, MCSE ``SE_emp / sqrt(n)``;
* empirical SE ``SE_emp = sd(theta_hat)``, MCSE ``SE_emp / sqrt(2 (n - 1))``;
* a mean endpoint ``mean(L)``, MCSE ``sd(L) / sqrt(n)`` (the MCSE of a mean).

The Wilson (1927, JASA 22:209-212) score interval for a binomial proportion
accompanies each coverage, because at coverages near 1 the normal-theory
``p +- 2 MCSE`` can exceed 1 and has poor coverage itself.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.special import ndtri

from simulation.engine.intervals import STATUS_OK

#: Level of the Wilson interval reported with each coverage.
WILSON_LEVEL = 0.95

#: Row status of a coverage table row: ``ok``, or the flags that apply, joined by ``+`` in this order.
ROW_OK = "ok"
ROW_SOME_FAILED = "some_failed"
ROW_ALL_FAILED = "all_failed"
ROW_OUT_OF_RANGE = "out_of_range"
ROW_RESAMPLES_DROPPED = "resamples_dropped"
ROW_TARGET_NOT_MET = "target_not_met"
ROW_FLAGS = (ROW_ALL_FAILED, ROW_SOME_FAILED, ROW_OUT_OF_RANGE, ROW_RESAMPLES_DROPPED, ROW_TARGET_NOT_MET)


def row_status(flags) -> str:
    """A row's ``status``: ``ok`` when no flag applies, else the flags in :data:`ROW_FLAGS` order joined by
    ``+`` (e.g. ``some_failed+target_not_met``); a reader filters with ``status == "ok"`` or
    ``status.str.contains("target_not_met")``."""
    present = set(flags)
    unknown = present - set(ROW_FLAGS)
    if unknown:
        raise ValueError(f"unknown row flag(s) {sorted(unknown)}; expected {list(ROW_FLAGS)}")
    return "+".join(f for f in ROW_FLAGS if f in present) or ROW_OK


def add_flag(status: str, flag: str) -> str:
    """``status`` with ``flag`` added (see :func:`row_status`)."""
    flags = [] if status == ROW_OK else status.split("+")
    return row_status([*flags, flag])


def wilson_interval(successes: np.ndarray, n: np.ndarray, level: float = WILSON_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval ``(lower, upper)`` for ``successes`` out of ``n`` (NaN where ``n`` is 0).

    ``(p + z^2/(2n) -+ z sqrt(p(1-p)/n + z^2/(4n^2))) / (1 + z^2/n)`` with
    ``z = Phi^-1(1 - (1 - level)/2)`` (Wilson 1927; Brown, Cai & DasGupta
    2001, Statist. Sci. 16:101-133, eq. 4).
    """
    s = np.asarray(successes, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z = float(ndtri(1 - (1 - level) / 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = s / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def interval_performance(replicates: pd.DataFrame, rho_true: float) -> dict[str, float | int | str]:
    """Coverage and interval measures of one method in one scenario.

    Parameters
    ----------
    replicates : pandas.DataFrame
        One row per replicate: ``rho_hat``, ``ci_lower``, ``ci_upper``, ``status``.
    rho_true : float
        The scenario's estimand.

    Returns
    -------
    dict
        ``n_reps``, ``n_failed`` (status not ``ok``), ``coverage`` and
        ``coverage_mcse``, ``coverage_wilson_lower/upper``, ``miss_below``
        (interval entirely below the truth), ``miss_above``,
        ``coverage_lower_bound`` (``P(lower <= theta)``, the coverage of the
        lower bound used alone as a one-sided bound) and
        ``coverage_upper_bound``, mean/SD/MCSE of each endpoint,
        ``mean_width``, ``mean_rho_hat``, ``bias`` and its MCSE,
        ``empirical_se`` and its MCSE, and ``status``: ``ok``,
        ``some_failed`` (measures over the ``ok`` replicates only) or
        ``all_failed`` (measures NaN, which is then the documented value).
    """
    return performance_from_arrays(
        replicates["rho_hat"].to_numpy(),
        replicates["ci_lower"].to_numpy(),
        replicates["ci_upper"].to_numpy(),
        replicates["status"].to_numpy() == STATUS_OK,
        rho_true,
    )


def performance_from_arrays(
    rho_hat: np.ndarray, lower: np.ndarray, upper: np.ndarray, ok: np.ndarray, rho_true: float
) -> dict[str, float | int | str]:
    """:func:`interval_performance` on arrays (one entry per replicate; ``ok`` marks status ``ok``)."""
    n_reps = len(ok)
    lower, upper, rho_hat = lower[ok], upper[ok], rho_hat[ok]
    n = len(lower)
    nan = math.nan
    covered = int(np.count_nonzero((lower <= rho_true) & (rho_true <= upper)))
    below = int(np.count_nonzero(upper < rho_true))
    above = int(np.count_nonzero(lower > rho_true))
    w_lo, w_hi = wilson_interval(np.array(covered), np.array(n))
    p = covered / n if n else nan

    def mean(a: np.ndarray) -> float:
        return float(a.mean()) if a.size else nan

    def sd(a: np.ndarray) -> float:
        return float(a.std(ddof=1)) if a.size > 1 else nan

    emp_se = sd(rho_hat)
    return {
        "n_reps": n_reps,
        "n_failed": n_reps - n,
        "coverage": p,
        "coverage_mcse": math.sqrt(p * (1 - p) / n) if n else nan,
        "coverage_wilson_lower": float(w_lo),
        "coverage_wilson_upper": float(w_hi),
        "miss_below": below / n if n else nan,
        "miss_above": above / n if n else nan,
        "coverage_lower_bound": 1 - above / n if n else nan,
        "coverage_upper_bound": 1 - below / n if n else nan,
        "mean_ci_lower": mean(lower),
        "sd_ci_lower": sd(lower),
        "mean_ci_lower_mcse": sd(lower) / math.sqrt(n) if n > 1 else nan,
        "mean_ci_upper": mean(upper),
        "sd_ci_upper": sd(upper),
        "mean_ci_upper_mcse": sd(upper) / math.sqrt(n) if n > 1 else nan,
        "mean_width": mean(upper - lower),
        "mean_rho_hat": mean(rho_hat),
        "bias": mean(rho_hat) - rho_true,
        "bias_mcse": emp_se / math.sqrt(n) if n > 1 else nan,
        "empirical_se": emp_se,
        "empirical_se_mcse": emp_se / math.sqrt(2 * (n - 1)) if n > 1 else nan,
        "status": ROW_OK if n == n_reps else (ROW_ALL_FAILED if n == 0 else ROW_SOME_FAILED),
    }


def reps_for_coverage_mcse(target: float, coverage: float = 0.95) -> int:
    """Replicates for a coverage MCSE of ``target``: ``p (1 - p) / target^2`` (Morris et al. 2019, eq. 5)."""
    return math.ceil(coverage * (1 - coverage) / target**2)


def reps_for_mean_mcse(target: float, sd: float) -> int:
    """Replicates for an MCSE of ``target`` on a mean whose replicates have SD ``sd``: ``(sd / target)^2``."""
    return math.ceil((sd / target) ** 2)
