"""Confidence intervals for Spearman's rho: bootstrap methods and Fisher-z.

Bootstrap intervals are computed row-wise from a bootstrap distribution
(``theta*``), the estimate ``theta_hat`` and the leave-one-pair-out
jackknife values, all held in arrays of shape ``(m, ...)``.  Every reduction
runs in a kernel with a fixed summation order and everything else is
element-wise, so a row's interval does not depend on how many rows are
processed together.

Degenerate cases: one policy for every method
---------------------------------------------
A method's interval is either computed from well-defined ingredients or is
``NaN`` with a ``status`` naming the cause; nothing is replaced silently.

==========================  ==========================================================
status                      meaning
==========================  ==========================================================
``ok``                      interval computed
``nan_estimate``            the data have constant x or y: no ``rho_hat`` (all methods)
``too_few_resamples``       fewer than ``min_valid`` resamples had a Spearman value
                            (resamples with constant x or y are dropped and counted;
                            all methods)
``constant_bootstrap``      every valid resample gave the same value (all methods)
``bca_bias_undefined``      BCa only: all resamples lie on one side of ``rho_hat``,
                            so ``z0 = +-inf``
``bca_accel_undefined``     BCa only: the jackknife values are all equal (or one is
                            undefined), so the acceleration is 0/0
``studentized_infinite``    studentized only: a quantile of ``t*`` it needs is
                            infinite (more than alpha/2 of the valid resamples have
                            ``|r*| = 1`` on one side, and ``atanh(+-1)`` is infinite)
``undefined_se``            asymptotic intervals in the replicate table only: the
                            standard error the interval needs (Kendall's ASE, a
                            statistic's own ``se``) is undefined or infinite
==========================  ==========================================================

Two conditions do not fail an interval but are reported with it (``flags`` of
:func:`simulation.inference.bootstrap.bootstrap_ci_single`; counts and ``status`` flags
of a study's rows):

* ``out_of_range``: the interval leaves the statistic's range ([-1, 1] for a
  correlation).  The basic and normal intervals are not
  transformation-respecting and can (Davison & Hinkley 1997, *Bootstrap
  Methods and their Application*, §5.2-5.3); they are kept as their formulas
  give them, not clipped: clipping would change their width, never whether
  they cover a truth inside the range, and the study measures the published
  formulas.  Kendall's ASE interval is the exception, clipped to [-1, 1] as
  documented at :func:`simulation.statistics.kendall.ase_ci`.
* ``resamples_dropped``: more than :data:`DROPPED_RESAMPLES_THRESHOLD` of the
  resamples had no finite statistic (constant x or y in the resample, or a
  NaN or infinite value); the interval is that of the resamples where the
  statistic is defined, a bootstrap distribution conditioned on that event.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr, ndtri

from simulation.core.validation import check_confidence_level
from simulation.engine import _kernels

#: The bootstrap interval methods, in table order (:func:`bootstrap_intervals` computes all five).
BOOTSTRAP_METHODS: tuple[str, ...] = ("percentile", "basic", "bca", "normal", "studentized")

STATUS_OK = "ok"
STATUS_NAN_ESTIMATE = "nan_estimate"
STATUS_TOO_FEW = "too_few_resamples"
STATUS_CONSTANT = "constant_bootstrap"
STATUS_BCA_BIAS = "bca_bias_undefined"
STATUS_BCA_ACCEL = "bca_accel_undefined"
STATUS_STUDENTIZED_INFINITE = "studentized_infinite"
STATUS_UNDEFINED_SE = "undefined_se"
#: A user statistic raised an exception on the dataset (the run counts it and goes on; ``replay`` shows it).
STATUS_RAISED = "statistic_raised"
STATUSES: tuple[str, ...] = (
    STATUS_OK,
    STATUS_NAN_ESTIMATE,
    STATUS_TOO_FEW,
    STATUS_CONSTANT,
    STATUS_BCA_BIAS,
    STATUS_BCA_ACCEL,
    STATUS_STUDENTIZED_INFINITE,
    STATUS_UNDEFINED_SE,
    STATUS_RAISED,
)

#: A replicate needs at least this fraction of its resamples to have a
#: Spearman value (x and y not constant) for its intervals to be reported.
MIN_VALID_FRACTION = 0.5


#: A dataset whose bootstrap dropped more than this share of its resamples (no statistic: constant x or
#: y in the resample, or a non-finite value) is counted in ``n_reps_resamples_dropped`` and flags its
#: row: its intervals are those of the resamples where the statistic is defined, a bootstrap
#: distribution conditioned on that event.
DROPPED_RESAMPLES_THRESHOLD = 0.05
#: An endpoint beyond the statistic's range by at most this much is rounding (a sum-based Pearson r of
#: exactly collinear data is 1 + 2e-16), not an interval that leaves the range.
RANGE_TOLERANCE = 1e-12


def out_of_range(lower: np.ndarray, upper: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    """Whether each interval leaves ``bounds`` (by more than :data:`RANGE_TOLERANCE`); False where NaN."""
    with np.errstate(invalid="ignore"):
        return (np.asarray(lower) < bounds[0] - RANGE_TOLERANCE) | (np.asarray(upper) > bounds[1] + RANGE_TOLERANCE)


def interval_flags(lower: float, upper: float, bounds: tuple[float, float], n_boot_valid: int, n_boot: int) -> str:
    """What to know about one computed interval: ``""``, or ``out_of_range`` (it leaves ``bounds``; kept as
    its formula gives it) and ``resamples_dropped`` (more than :data:`DROPPED_RESAMPLES_THRESHOLD` of the
    resamples had no finite statistic), joined by ``+``."""
    flags = []
    if bool(out_of_range(lower, upper, bounds)):
        flags.append("out_of_range")
    if n_boot - n_boot_valid > DROPPED_RESAMPLES_THRESHOLD * n_boot:
        flags.append("resamples_dropped")
    return "+".join(flags)


@dataclasses.dataclass(frozen=True)
class RowIntervals:
    """Intervals of ``m`` rows: per method ``(ci_lower, ci_upper, status)`` plus diagnostics."""

    rho_hat: np.ndarray
    intervals: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    n_boot_valid: np.ndarray
    z0: np.ndarray
    acceleration: np.ndarray
    #: ``(m, 4)`` exact control variates of the resampling noise (mean 0; see
    #: :func:`simulation.engine._kernels.bootstrap_rows`); None where not computed.
    resample_controls: np.ndarray | None = None


#: Fewest resamples per dataset at which the bootstrap intervals are defined: a standard deviation and an
#: interpolated quantile need two values (:func:`min_valid_resamples`); one resample would fail every
#: interval of every dataset, so ``n_boot`` below this is refused at the boundary.
MIN_N_BOOT = 2


def min_valid_resamples(n_boot: int) -> int:
    """Smallest number of valid resamples for which intervals are reported."""
    return max(2, math.ceil(MIN_VALID_FRACTION * n_boot))


def bootstrap_intervals(
    theta: np.ndarray,
    theta_hat: np.ndarray,
    jack: np.ndarray,
    confidence_level: float,
    *,
    studentized: bool = True,
    t_star: np.ndarray | None = None,
    z_se: np.ndarray | None = None,
    transform: str = "fisher_z",
) -> RowIntervals:
    """All bootstrap intervals of ``m`` rows.

    Parameters
    ----------
    theta : ndarray, shape (m, n_boot)
        Bootstrap replicates of rho, NaN for dropped resamples (infinite values are dropped too, and
        counted: ``n_boot_valid`` excludes them).
    theta_hat : ndarray, shape (m,)
        Estimates from the original data.
    jack : ndarray, shape (m, n)
        Leave-one-pair-out jackknife estimates.
    confidence_level : float
        Two-sided level ``1 - alpha``.
    studentized : bool, default True
        Also the studentized interval, which is specific to a correlation
        (its pivot lives on the Fisher-z scale); False for other statistics.
    t_star, z_se : ndarray, optional
        For a statistic whose SE is not a function of its value (Kendall's
        tau-b): each resample's ``t* = (atanh theta* - atanh theta_hat) /
        se*`` ``(m, n_boot)`` (NaN where undefined) and ``se(atanh theta_hat)``
        ``(m,)``; the studentized interval is then
        ``[tanh(z_hat - t*_(1-alpha/2) z_se), tanh(z_hat - t*_(alpha/2) z_se)]``
        with the same quantile rule.  Without them, Spearman's Bonett-Wright
        form below.
    transform : {"fisher_z", "identity"}
        The scale of the pivot with given ``t_star``: ``atanh``/``tanh`` for
        a correlation, none for another statistic (``z_se`` is then its SE).

    Returns
    -------
    RowIntervals

    Notes
    -----
    With ``q(p)`` the linear-interpolation quantile of the valid ``theta*``
    and ``z_p = Phi^{-1}(p)`` (Efron & Tibshirani 1993, *An Introduction to
    the Bootstrap*):

    * percentile: ``[q(alpha/2), q(1 - alpha/2)]`` (eq. 13.5);
    * basic: ``[2 theta_hat - q(1 - alpha/2), 2 theta_hat - q(alpha/2)]``
      (Davison & Hinkley 1997, eq. 5.6);
    * normal: ``theta_hat -+ z_{1-alpha/2} * sd(theta*)`` (eq. 13.1, bootstrap
      SE with ddof = 1);
    * BCa: ``[q(a1), q(a2)]`` with ``a_j = Phi(z0 + (z0 + z)/(1 - a (z0 + z)))``,
      ``z`` = ``z_{alpha/2}`` or ``z_{1-alpha/2}`` (eq. 14.9); bias correction
      ``z0 = Phi^{-1}((#{theta* < theta_hat} + #{theta* = theta_hat}/2) / B)``
      (eq. 14.14 with ties counted as half, as in ``scipy.stats.bootstrap``);
      acceleration from the jackknife (eq. 14.15);
    * studentized (bootstrap-t on the Fisher-z scale; Efron & Tibshirani
      1993, §12.5 and §12.6 on variance-stabilized bootstrap-t; Davison &
      Hinkley 1997, §5.2.1, eq. 5.7): with ``z = atanh(r)`` and
      ``se(r) = sqrt((1 + r^2/2) / (n - 3))`` (Bonett & Wright 2000,
      Psychometrika 65:23-28, eq. 6), each resample gives
      ``t* = (z* - z_hat) / se(r*)`` and the interval is
      ``[tanh(z_hat - t*_(1-alpha/2) se(r_hat)), tanh(z_hat - t*_(alpha/2) se(r_hat))]``.
      The Bonett-Wright variance is used because it depends on ``r``, so
      ``t*`` is truly studentized; Fieller's ``1.06 / (n - 3)`` is constant,
      and with it the interval would reduce to the basic interval on the z
      scale.  ``n - 3`` cancels between ``t*`` and ``se(r_hat)``, so only
      ``sqrt(1 + r^2/2)`` is computed.  It costs one pass over the sorted
      resamples (:func:`simulation.engine._kernels.studentized_quantile_rows`).
    """
    m, n_boot = theta.shape
    alpha = 1.0 - confidence_level
    if np.isinf(theta).any():  # a non-finite resample value is dropped and counted like an undefined one
        theta = np.where(np.isinf(theta), np.nan, theta)
    sorted_theta = np.sort(theta, axis=1)  # NaNs last
    n_valid, sd, prop_below, accel = _kernels.summarize_rows(sorted_theta, theta_hat, jack)

    z0 = ndtri(prop_below)
    z_lo, z_hi = ndtri(alpha / 2), ndtri(1 - alpha / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        # undefined z0 or acceleration propagate as NaN and get a status below
        bca_lo = ndtr(z0 + (z0 + z_lo) / (1 - accel * (z0 + z_lo)))
        bca_hi = ndtr(z0 + (z0 + z_hi) / (1 - accel * (z0 + z_hi)))
    probs = np.empty((m, 4))
    probs[:, 0] = alpha / 2
    probs[:, 1] = 1 - alpha / 2
    probs[:, 2] = bca_lo
    probs[:, 3] = bca_hi
    q = _kernels.quantile_rows(sorted_theta, n_valid, probs)

    # Row-level failures shared by every method, in order of precedence.
    common = np.full(m, STATUS_OK, dtype=object)
    last = sorted_theta[np.arange(m), np.maximum(n_valid - 1, 0)]
    common[(n_valid >= 1) & (sorted_theta[:, 0] == last)] = STATUS_CONSTANT
    common[n_valid < min_valid_resamples(n_boot)] = STATUS_TOO_FEW
    common[np.isnan(theta_hat)] = STATUS_NAN_ESTIMATE
    bca_status = common.copy()
    ok = common == STATUS_OK
    bca_status[ok & np.isnan(accel)] = STATUS_BCA_ACCEL
    bca_status[ok & ~np.isfinite(z0)] = STATUS_BCA_BIAS

    half = z_hi * sd
    raw = {
        "percentile": (q[:, 0], q[:, 1], common),
        "basic": (2 * theta_hat - q[:, 1], 2 * theta_hat - q[:, 0], common),
        "bca": (q[:, 2], q[:, 3], bca_status),
        "normal": (theta_hat - half, theta_hat + half, common),
    }
    if studentized and t_star is not None:
        raw["studentized"] = _studentized_from_t(t_star, theta_hat, z_se, alpha, common, transform)
    elif studentized:
        raw["studentized"] = _studentized(sorted_theta, n_valid, theta_hat, alpha, common)
    intervals = {}
    for method, (lower, upper, status) in raw.items():
        bad = status != STATUS_OK
        intervals[method] = (
            np.where(bad, np.nan, lower),
            np.where(bad, np.nan, upper),
            status.astype(str),
        )
    return RowIntervals(
        rho_hat=theta_hat,
        intervals=intervals,
        n_boot_valid=n_valid,
        z0=z0,
        acceleration=accel,
    )


def _studentized(sorted_theta, n_valid, theta_hat, alpha, common):
    """Studentized (bootstrap-t) interval on the Fisher-z scale; see :func:`bootstrap_intervals`."""
    m = theta_hat.shape[0]
    probs = np.empty((m, 2))
    probs[:, 0] = alpha / 2
    probs[:, 1] = 1 - alpha / 2
    t = _kernels.studentized_quantile_rows(sorted_theta, n_valid, theta_hat, probs)
    with np.errstate(invalid="ignore", divide="ignore"):
        z_hat = np.arctanh(theta_hat)
        scale = np.sqrt(1 + 0.5 * theta_hat * theta_hat)
        lower = np.tanh(z_hat - t[:, 1] * scale)
        upper = np.tanh(z_hat - t[:, 0] * scale)
    status = common.copy()
    status[(common == STATUS_OK) & ~(np.isfinite(t).all(axis=1) & np.isfinite(z_hat))] = STATUS_STUDENTIZED_INFINITE
    return lower, upper, status


def _studentized_from_t(t_star, theta_hat, z_se, alpha, common, transform="fisher_z"):
    """Bootstrap-t on the Fisher-z scale from given ``t*`` and ``se(z_hat)`` (see :func:`bootstrap_intervals`):
    the valid ``t*`` sorted (+-inf at the ends), type-7 quantiles; a quantile that touches an infinite
    value is infinite and flagged."""
    m = theta_hat.shape[0]
    sorted_t = np.sort(t_star, axis=1)  # NaN last
    n_valid = np.count_nonzero(~np.isnan(sorted_t), axis=1)
    probs = np.empty((m, 2))
    probs[:, 0] = alpha / 2
    probs[:, 1] = 1 - alpha / 2
    with np.errstate(invalid="ignore"):
        t = _kernels.quantile_rows(sorted_t, n_valid, probs)
    forward, back = (np.arctanh, np.tanh) if transform == "fisher_z" else (np.asarray, np.asarray)
    with np.errstate(invalid="ignore", divide="ignore"):
        z_hat = forward(theta_hat)
        lower = back(z_hat - t[:, 1] * z_se)
        upper = back(z_hat - t[:, 0] * z_se)
    status = common.copy()
    finite = np.isfinite(t).all(axis=1) & np.isfinite(z_hat) & np.isfinite(z_se)
    status[(common == STATUS_OK) & ~finite] = STATUS_STUDENTIZED_INFINITE
    return lower, upper, status


# --------------------------------------------------------------------------
# Asymptotic Fisher-z intervals
# --------------------------------------------------------------------------


def _var_fieller(r: np.ndarray, n: np.ndarray) -> np.ndarray:
    return 1.06 / (n - 3)


def _var_bonett_wright(r: np.ndarray, n: np.ndarray) -> np.ndarray:
    return (1 + r**2 / 2) / (n - 3)


def _var_pearson(r: np.ndarray, n: np.ndarray) -> np.ndarray:
    return 1.0 / (n - 3) + 0 * r


#: Variance of ``atanh(r_s)`` by name; each name is its source.
FISHER_Z_VARIANCES = {
    "fieller": _var_fieller,
    "bonett_wright": _var_bonett_wright,
    "pearson": _var_pearson,
}


def fisher_z_ci(
    rho_hat: ArrayLike,
    n: ArrayLike,
    *,
    confidence_level: float = 0.95,
    variance: str = "fieller",
) -> tuple[np.ndarray, np.ndarray]:
    """Asymptotic confidence interval for Spearman's rho on the Fisher-z scale.

    ``[tanh(z - c se), tanh(z + c se)]`` with ``z = atanh(rho_hat)``,
    ``c = Phi^{-1}(1 - alpha/2)`` and ``se = sqrt(variance(rho_hat, n))``.

    Parameters
    ----------
    rho_hat : array_like
        Sample Spearman correlations in [-1, 1]; NaN gives NaN.
    n : array_like of int
        Sample sizes, each >= 4; broadcast against ``rho_hat``.
    confidence_level : float, default 0.95
        Two-sided level, in (0, 1).
    variance : {"fieller", "bonett_wright", "pearson"}
        * ``"fieller"``: ``1.06 / (n - 3)``, Fieller, Hartley & Pearson
          (1957), Biometrika 44, 470-481.
        * ``"bonett_wright"``: ``(1 + rho_hat**2 / 2) / (n - 3)``, Bonett &
          Wright (2000), Psychometrika 65, 23-28, eq. 6.
        * ``"pearson"``: ``1 / (n - 3)``, the variance for Pearson's r under
          bivariate normality (Fisher 1921), as a baseline.

    Returns
    -------
    (lower, upper) : tuple of ndarray
        Broadcast shape of the inputs (0-d arrays for scalar inputs).  At
        ``|rho_hat| = 1`` the interval degenerates to the point ``rho_hat``.

    Notes
    -----
    No tie adjustment is offered: Pearson's correlation of midranks has null
    variance exactly ``1/(n - 1)`` whatever the ties, so the "tie correction"
    of earlier scripts, which inflated this variance, has no basis.
    """
    confidence_level = check_confidence_level(confidence_level)
    if variance not in FISHER_Z_VARIANCES:
        raise ValueError(f"`variance` must be one of {sorted(FISHER_Z_VARIANCES)}, got {variance!r}")
    r = np.asarray(rho_hat, dtype=np.float64)
    n_arr = np.asarray(n)
    if not np.issubdtype(n_arr.dtype, np.integer) or np.any(n_arr < 4):
        raise ValueError(f"`n` must be integer(s) >= 4, got {n!r}")
    if np.any(np.abs(r[~np.isnan(r)]) > 1):
        raise ValueError(f"`rho_hat` must lie in [-1, 1] (or be NaN), got {rho_hat!r}")
    se = np.sqrt(FISHER_Z_VARIANCES[variance](r, n_arr.astype(np.float64)))
    c = ndtri(1 - (1 - confidence_level) / 2)
    with np.errstate(divide="ignore"):
        z = np.arctanh(r)
    return np.tanh(z - c * se), np.tanh(z + c * se)
