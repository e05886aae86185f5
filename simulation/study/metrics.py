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


# --------------------------------------------------------------------------
# Morris et al. (2019) Table 6: the measures beyond coverage, from sums
# --------------------------------------------------------------------------
def model_se_measures(mean_v: float, var_v: float, k: int, emp_se: float, n_emp: int) -> dict[str, float]:
    """Model SE and the relative error in it, with MCSEs (Morris, White & Crowther 2019, Table 6).

    ``mean_v``, ``var_v``: the mean and the sample variance of the squared model SEs ``v_i`` of the ``k``
    datasets that have one; ``emp_se``: the empirical SE on the same scale, from ``n_emp`` datasets.

    * ``ModSE = sqrt(mean v)``, MCSE ``sqrt(Var(v) / (4 k ModSE^2))``;
    * relative error ``100 (ModSE / EmpSE - 1)``, MCSE
      ``100 (ModSE / EmpSE) sqrt(Var(v) / (4 k ModSE^4) + 1 / (2 (n_emp - 1)))``.

    When ``emp_se`` comes from other datasets than the ``v_i`` (the cheap phase's ``N`` for a bootstrap
    method's ``M``) the two errors are independent and the formula's sum of their squares is exact to
    first order; on the same datasets it is Morris et al.'s, which ignores their correlation.
    """
    nan = math.nan
    mean = mean_v
    if not (mean > 0) or k < 2:
        return {"model_se": math.sqrt(mean) if mean >= 0 else nan, "model_se_mcse": nan,
                "relative_error_model_se": nan, "relative_error_model_se_mcse": nan}  # fmt: skip
    model_se = math.sqrt(mean)
    ratio = model_se / emp_se if emp_se > 0 else nan
    return {
        "model_se": model_se,
        "model_se_mcse": math.sqrt(var_v / (4 * k * mean)),
        "relative_error_model_se": 100 * (ratio - 1),
        "relative_error_model_se_mcse": 100 * ratio * math.sqrt(var_v / (4 * k * mean * mean) + 1 / (2 * (n_emp - 1)))
        if n_emp > 1 else nan,
    }  # fmt: skip


def mse_measures(mean_sq_err: float, var_sq_err: float, n: int, bias: float, truth_mcse: float = 0.0) -> dict:
    """MSE ``mean((theta_hat - theta)^2)`` and RMSE with MCSEs (Morris et al. 2019, Table 6).

    ``var_sq_err``: the sample variance of ``(theta_hat - theta)^2`` over the ``n`` datasets.  MCSE of the
    MSE ``sqrt(var_sq_err / n + (2 bias truth_mcse)^2)``: the second term is a measured truth's error
    (``d MSE / d theta = -2 bias``; 0 for an exact truth); of the RMSE ``MCSE(MSE) / (2 RMSE)`` (delta method).
    """
    if n < 2:
        return {"mse": mean_sq_err if n else math.nan, "mse_mcse": math.nan, "rmse": math.nan, "rmse_mcse": math.nan}
    mse_mcse = math.sqrt(max(var_sq_err, 0.0) / n + (2 * bias * truth_mcse) ** 2)
    rmse = math.sqrt(max(mean_sq_err, 0.0))
    return {"mse": mean_sq_err, "mse_mcse": mse_mcse, "rmse": rmse,
            "rmse_mcse": mse_mcse / (2 * rmse) if rmse > 0 else math.nan}  # fmt: skip


def relative_width(sums: tuple[float, float], k: tuple[int, int], var_log: float) -> dict[str, float]:
    """A method's mean width relative to a reference method's, with its MCSE (delta method).

    ``sums``: each method's sum of widths over its phase's datasets (0 where its interval failed), ``k`` of
    them ok, so each mean width is ``W = sum / k``; ``var_log``: the variance of ``log R``, ``R = W / W_ref``,
    with the ``k`` held fixed: ``n Var(w_i / S - w_ref,i / S_ref)`` over the ``n`` datasets both methods
    share (their covariance included), or ``n Var(w_i) / S^2 + n_ref Var(w_ref,i) / S_ref^2`` for methods
    of different phases (independent datasets).  MCSE of ``R``: ``R sqrt(var_log)``.  The relative precision
    of the intervals, ``100 (R^-2 - 1)``: Morris et al.'s (2019, Table 6) relative precision
    ``100 ((SE_ref / SE)^2 - 1)`` with a Wald interval's width ``2 z SE`` in place of the SE (every method of a
    statistic scores the same estimate, so the relative precision of the estimates themselves is 0); MCSE
    ``200 R^-2 sqrt(var_log)``.
    """
    nan = math.nan
    (s1, s2), (k1, k2) = sums, k
    if not (s1 > 0 and s2 > 0 and k1 > 0 and k2 > 0 and math.isfinite(var_log)):
        return {"relative_width": nan, "relative_width_mcse": nan, "relative_precision": nan,
                "relative_precision_mcse": nan}  # fmt: skip
    ratio = (s1 / k1) / (s2 / k2)
    sd_log = math.sqrt(max(var_log, 0.0))
    precision = ratio**-2
    return {"relative_width": ratio, "relative_width_mcse": ratio * sd_log,
            "relative_precision": 100 * (precision - 1), "relative_precision_mcse": 200 * precision * sd_log}

