"""Two-phase estimation of interval performance with control variates, from mergeable moments.

A scenario's datasets come in two phases.  The bootstrap phase has ``m``
datasets with every interval computed (the expensive part); the cheap
phase has ``N`` further datasets of the same data-generating process with
only Spearman's rho and its jackknife SE (a few microseconds each).  Both
phases compute the same *controls* ``X`` of each dataset: fixed functions of
``rho_hat``, the jackknife SE, ``n``, the truth and the confidence level
(:func:`controls`).  For a measure ``Y`` of a bootstrap method (an endpoint,
a coverage indicator, ...) the regression estimator of double sampling is

    Y_hat = mean_m(Y) - beta' (mean_m(X) - mean_N(X)),

``beta`` the least-squares coefficients of ``Y`` on ``X`` (Cochran 1977,
*Sampling Techniques*, 3rd ed., §12.6, eq. 12.49, double sampling for
regression; Glasserman 2004, *Monte Carlo Methods in Financial Engineering*,
§4.1.2, multiple controls with estimated coefficients; Gorodetsky, Geraci,
Eldred & Jakeman 2020, J. Comput. Phys. 408:109257, approximate control
variates: control means estimated from a larger, cheap sample).

Cross-fitting
-------------
With ``beta`` fitted on the same datasets, the estimator has an O(1/m) bias
and the in-sample residual variance understates its variance: with ``m =
200`` and indicator controls, the spread of the estimates over 300
independent runs was 1.4 times the reported MCSE.  So the bootstrapped
datasets are split by index modulo :data:`CROSSFIT_FOLDS` (4) into folds;
each fold's mean is corrected with ``beta`` fitted on the other three
(K-fold cross-fitting, Chernozhukov et al. 2018, Econometrics J. 21:C1-C68,
§3, Definition 3.1), and the folds' estimates are averaged.  Because
``beta_(-k)`` is independent of fold ``k`` and of the (independent) cheap
phase, each fold's estimate is exactly unbiased, and its residual variance,
computed with the other folds' ``beta``, is an honest out-of-sample one.
The reported MCSE is

    sqrt( sum_k w_k^2 s_k^2 / m_k + beta_bar' Sigma_X beta_bar / N ),

``w_k = m_k / m``, ``s_k^2`` fold ``k``'s residual variance under the other
folds' coefficients, ``beta_bar = sum_k w_k beta_(-k)``, ``Sigma_X`` the
cheap phase's covariance of the controls.  Four folds rather than two: each
``beta`` is fitted on three quarters of the datasets instead of half, which
at ``m = 200`` lowers the held-out residual share of coverage from 0.29 to
0.24 with the same controls (10 scenarios x 5 methods, median).  With two
halves, over 300 runs of 200 datasets (and 120 of 500, 60 of 1000) the ratio
of the estimates' SD to the mean MCSE was 0.83-1.08.  With four folds and the
twelve indicators, over 1,000 runs of 200 datasets (n = 30, 100 resamples) the
ratio of the SD to the root-mean-square MCSE was 1.00-1.05 for coverage and
0.98-1.04 for the lower endpoint (five bootstrap methods; the SD's own SE is
0.022), and to the mean MCSE over 1,000 runs of a default scenario (n = 73)
1.01-1.05 (``tests/test_twophase.py``, ``test_reported_mcse_is_calibrated``).  The plain
mean over all ``m`` datasets and its MCSE stay beside the headline
(``*_plain``), with their ratio of variances.

Controls
--------
Chosen on the default study (variance ratios with held-out halves of 6,000
bootstrapped datasets, 500 resamples, three scenarios):

* endpoints and widths: ``rho_hat``, ``rho_hat^2``, ``rho_hat^3``, ``s``,
  ``s rho_hat``, ``s^2``, with ``s`` the jackknife SE (ratios on mean
  endpoints: percentile 67-73, basic 67-97, BCa 42-45, normal 230-290,
  studentized 72-77; ``rho_hat`` alone gives 33-110);
* coverage and misses: twelve indicators, ``d_J <= t`` at ``t = -z + s`` and
  ``z - s`` for ``s`` in :data:`JACKKNIFE_SHIFTS` (-0.3, -0.15, 0, 0.15,
  0.35), and ``d <= -z``, ``d <= z``, with ``d_J = (rho_hat - rho) / s``,
  ``d = (atanh rho_hat - atanh rho) sqrt(n - 3)`` and ``z = Phi^-1(1 -
  alpha/2)``; their regressions are ridge regressions on the correlation
  scale with penalty 0.1 (:data:`RIDGE`).  A method's interval covers when
  ``d_J`` lies between two thresholds of its own that vary a little from
  dataset to dataset; the dense grid of ``d_J`` thresholds around ``+-z``
  follows that step, and the penalty keeps the coefficients of its rare
  indicators (1-5% of datasets) from fitting noise in a few hundred
  datasets.  Held-out residual share of coverage (the lower the better;
  median over 10 scenarios: 5 of the default study, 3 continuous of the
  validation study, two tied at n = 30 and 40; x 5 methods; 20,000
  bootstrapped datasets each, 1,000 resamples, subsamples of ``m``): the
  earlier eight indicators (``d`` and ``d_J`` at ``-z, -z + 0.35, z - 0.35,
  z``) with two halves gave 0.29 at ``m = 200`` and 0.17 at ``m = 2,000``;
  the same with four folds and the penalty 0.22 and 0.18; the twelve with
  four folds and the penalty 0.19 and 0.13.  On the default study's own run
  (88 scenarios, 200 + 5,120 datasets) the median reported coverage variance
  ratio of the bootstrap methods went from 3.5 to 5.2.  Tried and dropped:
  the jackknife's acceleration (skewness of the influence values) and its
  products with the indicators (no gain); smooth steps ``Phi((t - d_J) /
  h)`` (0.14 at ``m = 1,000`` but unstable at 200: a step with almost no
  variance in a training fold gets a huge coefficient); the controls'
  covariance taken from the cheap phase instead of the training folds
  (worse, 0.75 at ``m = 200``: the training folds' own covariance cancels
  much of the noise in their cross-covariance with the measure).

Exact controls
--------------
Two further kinds of control have a known expectation (0), so their means
cost nothing and they need no cheap phase:

* in the bootstrap phase, the *resample controls*
  (:func:`simulation.engine._kernels.bootstrap_rows`): Hermite polynomials 1-4 of
  each resample's standardized linear approximation, averaged over the ``B``
  resamples, minus their exact expectations, times ``s``.  They see the
  bootstrap's own Monte Carlo noise, which no dataset-level control can
  (Davison, Hinkley & Schechtman 1986, Biometrika 73:555-566; Davison &
  Hinkley 1997, §9.3).  They serve the endpoints and widths: on the default
  study (4 scenarios, 4,000 bootstrapped datasets, 500 resamples, held-out
  halves) the endpoints' ratios went from 43-77 (BCa 43-45) with the six
  dataset-level controls to 92-230 (BCa 92-101; normal 2,500-3,800).  Then
  ``sin(w T)``, ``cos(w T)``, ``sin(2 w T)`` and ``cos(2 w T)`` of the same
  ``T`` (``w = 0.6``; exact expectations from the characteristic function):
  BCa's endpoints keep the Monte Carlo noise of its bias correction ``z0``,
  a count of resamples below the estimate, a step in ``T`` that Hermite
  polynomials of degree 4 follow poorly.  On 6 default scenarios (2,000
  bootstrapped datasets, 500 resamples) BCa's residual share of the mean
  endpoints went from 0.0097-0.0110 to 0.0069-0.0079 and the percentile's
  from 0.0056-0.0063 to 0.0043-0.0051, and the +-0.001 tier of the default
  study from 55-57 to 47-50 s (``benchmarks/bench_tier.py``).  Their regression
  coefficients carry a ridge penalty of 0.1 (:data:`RIDGE`): unpenalized,
  a few wild BCa endpoints at n = 15 (all-distinct x) made the held-out
  residual share of BCa's lower endpoint 1.29, worse than no control; with
  the penalty it is 0.13 there (0.11 with the Hermite controls alone), and on
  the default study BCa's share is 0.0077 instead of 0.0075.  With ``z0`` itself as
  a regressor (no control: its expectation is unknown) BCa's share would be
  0.0067.  Sines and cosines of three to five multiples of ``w`` gained
  nothing more for BCa, sines alone less.  The coverage indicators gain
  nothing from any of the eight (residual share 0.1232 against 0.1226 at
  3,000 datasets) and do not use them;
* in the cheap phase, the generator's mixing control ``u = mean_i a_i
  erf(b_i / sqrt 2)`` (odd in the noise, :class:`~simulation.models.generators.RankInputs`;
  zeros for continuous generators, where it is dropped).  The cheap phase's
  control means are adjusted by it, ``mean_X - Gamma mean_u`` with
  ``Gamma`` their least-squares coefficients on ``u`` over the cheap phase,
  and ``Sigma_X`` above becomes the residual covariance of ``X`` given
  ``u``: ``u`` explains 98-99% of the variance of ``rho_hat`` at n = 73-82,
  so the cheap phase's term for the endpoints shrinks about 50-fold (to 2%
  of the plain variance per cheap dataset).  ``Gamma`` is fitted on the
  same cheap datasets (a bias of order ``1 / N``, with ``N`` in the tens of
  thousands).

The variance of an estimate is reported as two shares of the plain
variance ``sigma^2``: ``MCSE^2 = sigma^2 (a / m + b / N)``, ``a`` the
residual share (``residual_share_*``) and ``b`` the cheap phase's share
(``cheap_share_*``), which is what an allocation of ``m`` and ``N`` needs
(:func:`simulation.cli.commands.two_phase_allocation`).

A method with failed replicates in a scenario is estimated plainly (the
controls' mean over the ``ok`` replicates is not the cheap phase's), and the
row says so (``estimator``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy.special import ndtri

from simulation.engine.moments import Moments

#: Shifts of the jackknife indicators' thresholds towards the centre from +-z (measured, see the docstring).
JACKKNIFE_SHIFTS = (-0.3, -0.15, 0.0, 0.15, 0.35)
#: Shifts of the Fisher-z indicators' thresholds.
FISHER_SHIFTS = (0.0,)
CONTINUOUS_CONTROLS = ("rho_hat", "rho_hat^2", "rho_hat^3", "jackknife_se", "rho_hat*jackknife_se", "jackknife_se^2")
N_CONTINUOUS = len(CONTINUOUS_CONTROLS)
N_INDICATORS = 2 * (len(JACKKNIFE_SHIFTS) + len(FISHER_SHIFTS))  # d_J, then d: below -z + shift, below z - shift
N_CONTROLS = N_CONTINUOUS + N_INDICATORS
#: Folds of the bootstrapped datasets for cross-fitting (dataset index modulo this; a divisor of the
#: block size, so that a block's local index has the global residue).
CROSSFIT_FOLDS = 4
#: Per-dataset measures of an interval, as stored: the first four; the others follow linearly.
STORED_MEASURES = ("ci_lower", "ci_upper", "miss_below", "miss_above")
#: Measures estimated for each method (column stems in ``coverage.parquet``).
MEASURES = (
    "mean_ci_lower",
    "mean_ci_upper",
    "mean_width",
    "miss_below",
    "miss_above",
    "coverage",
    "coverage_lower_bound",
    "coverage_upper_bound",
)
#: For each measure: coefficients on the stored measures, a constant, and which controls serve it.
_LINEAR = {
    "mean_ci_lower": ((1, 0, 0, 0), 0.0, "continuous"),
    "mean_ci_upper": ((0, 1, 0, 0), 0.0, "continuous"),
    "mean_width": ((-1, 1, 0, 0), 0.0, "continuous"),
    "miss_below": ((0, 0, 1, 0), 0.0, "indicators"),
    "miss_above": ((0, 0, 0, 1), 0.0, "indicators"),
    "coverage": ((0, 0, -1, -1), 1.0, "indicators"),
    "coverage_lower_bound": ((0, 0, 0, -1), 1.0, "indicators"),
    "coverage_upper_bound": ((0, 0, -1, 0), 1.0, "indicators"),
}
CONTROL_SETS = {
    "continuous": np.arange(N_CONTINUOUS),
    "indicators": np.arange(N_CONTINUOUS, N_CONTROLS),
}
#: Exact controls of a bootstrapped dataset (expectation 0, no cheap phase needed): the jackknife SE
#: times each resample control of :func:`simulation.engine._kernels.bootstrap_rows` (the trigonometric ones less
#: their Hermite terms of degree 1-4).
HERMITE_CONTROLS = ("jackknife_se*He1", "jackknife_se*He2", "jackknife_se*He3", "jackknife_se*He4")
TRIG_CONTROLS = ("jackknife_se*sin(wT)", "jackknife_se*cos(wT)", "jackknife_se*sin(2wT)", "jackknife_se*cos(2wT)")
RESAMPLE_CONTROLS = HERMITE_CONTROLS + TRIG_CONTROLS
N_RESAMPLE_CONTROLS = len(RESAMPLE_CONTROLS)
#: Ridge penalty of each control set's regression, on the correlation scale (``(C + diag(lambda))^-1 c``),
#: one for all its regressors or one for each: for the endpoints none on the dataset-level and Hermite
#: controls (they explain 98-99% of an endpoint) and 0.1 on the trigonometric ones, which carry little
#: variance and, unpenalized, fitted the few wild BCa endpoints of n = 15 (an endpoint's residual share
#: up to 1.29); 0.1 on the indicators, whose rare events make unpenalized coefficients noisy at a few
#: hundred datasets (measured, see the docstring).
RIDGE: dict[str, float | tuple[float, ...]] = {
    "continuous": (0.0,) * (N_CONTINUOUS + len(HERMITE_CONTROLS)) + (0.1,) * len(TRIG_CONTROLS),
    "indicators": 0.1,
}
#: Columns before the measures in a bootstrap block: the controls, then the exact resample controls.
BOOT_CONTROLS = N_CONTROLS + N_RESAMPLE_CONTROLS
#: Exact controls of a cheap-phase dataset: the mixing draws' ``u`` (zeros for continuous generators).
CHEAP_EXACT_CONTROLS = ("mixing_u",)
#: Columns before the measures in a cheap unit: the controls, then its exact controls.
CHEAP_CONTROLS = N_CONTROLS + len(CHEAP_EXACT_CONTROLS)
#: Which exact resample controls serve each control set (columns of a bootstrap block).
EXACT_SETS = {
    "continuous": np.arange(N_CONTROLS, BOOT_CONTROLS),
    "indicators": np.arange(0),
}
CHEAP_EXACT_INDEX = np.arange(N_CONTROLS, CHEAP_CONTROLS)
#: Measures that are proportions (plain MCSE ``sqrt(p (1 - p) / n)``, Morris et al. 2019, Table 6).
PROPORTIONS = frozenset({"miss_below", "miss_above", "coverage", "coverage_lower_bound", "coverage_upper_bound"})
#: Measures whose ratio of plain to control-variate variance, and the two shares of that variance
#: (``residual_share_*``: a, ``cheap_share_*``: b with ``MCSE^2 = sigma^2 (a / m + b / N)``), are reported.
RATIO_MEASURES = ("coverage", "mean_ci_lower", "mean_ci_upper")
ESTIMATOR_CV = "control_variates"
#: Written by earlier versions when the misses were estimated plainly beside control-variate coverage
#: (read in older tables only).
ESTIMATOR_CV_MISSES_PLAIN = "control_variates (misses plain)"
ESTIMATOR_PLAIN = "plain"
#: One-sided measures: a miss on one side, and the coverage of one bound.  They take the same estimator
#: as the coverage (the regression estimate is linear in the measure, so ``coverage = 1 - miss_below -
#: miss_above`` holds in every row).  Measured on three tied designs (n = 30, 80, 20), 150 independent
#: runs each at m = 100 and 200 bootstrapped datasets: SD over the runs / root-mean-square reported MCSE
#: of the control-variate misses 0.89-1.16 (mean 1.04), of the coverage 0.96-1.10 (mean 1.05).
ONE_SIDED = frozenset({"miss_below", "miss_above", "coverage_lower_bound", "coverage_upper_bound"})
#: Condition cut-off of the least-squares solve (relative to the largest singular value).
RCOND = 1e-10
#: Fewest datasets per fold for a cross-fitted estimate.
MIN_FOLD = 10


def indicator_thresholds(confidence_level: float, shifts: Sequence[float] = JACKKNIFE_SHIFTS) -> np.ndarray:
    """The thresholds ``t`` of the indicator controls, ascending: ``-z + s`` and ``z - s`` for each shift
    ``s`` (:data:`JACKKNIFE_SHIFTS` for ``d_J``, :data:`FISHER_SHIFTS` for ``d``)."""
    z = float(ndtri(1 - (1 - confidence_level) / 2))
    return np.array([-z + s for s in shifts] + [z - s for s in shifts[::-1]])


def controls(
    rho_hat: np.ndarray,
    jackknife_se: np.ndarray,
    n: int,
    rho_true: float,
    confidence_level: float,
    scale: float | None = None,
    transform: str = "fisher_z",
) -> np.ndarray:
    """The control variates ``(m, N_CONTROLS)`` of datasets with these ``rho_hat`` and jackknife SEs.

    Fixed functions of the data (and of ``n``, the truth and the level), the
    same in both phases.  An undefined jackknife SE (NaN: a leave-one-out
    sample with constant x or y) counts as 0, and ``d_J`` of a zero SE is
    ``+-inf`` (0 when ``rho_hat`` equals the truth), so every control is finite.
    ``scale`` standardizes ``atanh(rho_hat) - atanh(rho_true)`` for the
    indicator thresholds: ``sqrt(n - 3)`` by default (Spearman), the
    statistic's own for another (:meth:`simulation.statistics.statistic.Statistic.control_scale`).
    ``transform="identity"`` (a statistic that is not a correlation): no Fisher-z
    scale exists, so the last two indicators standardize by the jackknife SE too
    (duplicates of two ``d_J`` indicators: they cost nothing, the ridge penalty
    shares the coefficient between the copies).
    """
    r = np.asarray(rho_hat, dtype=np.float64)
    s = np.nan_to_num(np.asarray(jackknife_se, dtype=np.float64), nan=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = r - rho_true
        if transform == "identity":
            d = np.where(s > 0, diff / np.where(s > 0, s, 1.0), np.sign(diff) * np.inf)
        elif scale is not None:
            d = (np.arctanh(r) - math.atanh(rho_true)) * scale
        elif n > 3:
            d = (np.arctanh(r) - math.atanh(rho_true)) * math.sqrt(n - 3)
        else:
            d = np.sign(r - rho_true) * np.inf
        diff = r - rho_true
        d_j = np.where(s > 0, diff / np.where(s > 0, s, 1.0), np.sign(diff) * np.inf)
    columns = [r, r * r, r * r * r, s, s * r, s * s]
    columns += [(d_j <= v).astype(np.float64) for v in indicator_thresholds(confidence_level)]
    columns += [(d <= v).astype(np.float64) for v in indicator_thresholds(confidence_level, FISHER_SHIFTS)]
    return np.column_stack(columns)


def interval_measures(lower: np.ndarray, upper: np.ndarray, ok: np.ndarray, rho_true: float) -> np.ndarray:
    """The stored measures ``(m, 4)`` of one method: lower, upper, miss below, miss above; 0 where not ok."""
    lo = np.where(ok, lower, 0.0)
    hi = np.where(ok, upper, 0.0)
    below = (ok & (upper < rho_true)).astype(np.float64)
    above = (ok & (lower > rho_true)).astype(np.float64)
    return np.column_stack([lo, hi, below, above])


def _measure_vector(first: int, name: str, dim: int) -> tuple[np.ndarray, float]:
    """Coefficients (over all ``dim`` columns) and constant of measure ``name`` whose stored measures
    start at column ``first``."""
    coef, offset, _ = _LINEAR[name]
    a = np.zeros(dim)
    a[first : first + 4] = coef
    return a, offset


def _with_measure(moments: Moments, n_controls: int, a: np.ndarray, offset: float) -> Moments:
    """Moments of ``[controls, a'v + offset]``: the controls and one measure."""
    dim = moments.dim
    matrix = np.zeros((n_controls + 1, dim))
    matrix[:n_controls, :n_controls] = np.eye(n_controls)
    matrix[n_controls] = a
    return moments.linear(matrix, np.concatenate([np.zeros(n_controls), [offset]]))


def _coefficients(
    train: Moments, x_index: np.ndarray, y_index: int, ridge: float | tuple[float, ...] = 0.0
) -> np.ndarray | None:
    """Least-squares coefficients of column ``y_index`` on ``x_index`` (see :func:`_betas`)."""
    beta = _betas(train, x_index, train.m2[x_index, y_index][:, None], ridge)
    return None if beta is None else beta[:, 0]


def _betas(
    train: Moments, x_index: np.ndarray, cross: np.ndarray, ridge: float | tuple[float, ...] = 0.0
) -> np.ndarray | None:
    """Least-squares coefficients ``(len(x_index), q)`` of ``q`` responses on the columns ``x_index``, from
    the responses' cross-products with those columns, ``cross`` ``(len(x_index), q)`` (0 for controls without
    variance), solved on the correlation scale, ``(C + diag(ridge))^+ c``, with a rank-truncated
    pseudo-inverse (``ridge`` one penalty for all, or one per regressor); None below ``MIN_FOLD`` rows."""
    if train.n < MIN_FOLD:
        return None
    sxx = train.m2.take(x_index, 0).take(x_index, 1)
    scale = np.sqrt(np.clip(np.diag(sxx), 0.0, None))
    beta = np.zeros(cross.shape)
    keep = scale > 1e-12 * max(1.0, float(scale.max(initial=0.0)))
    if not keep.any():
        return beta
    penalty = ridge  # a float serves every regressor; a tuple (one per regressor) loses the dropped ones
    if not keep.all():
        sxx, cross, scale = sxx[keep][:, keep], cross[keep], scale[keep]
        if isinstance(ridge, tuple):
            penalty = tuple(v for v, k in zip(ridge, keep, strict=True) if k)
    corr = np.ascontiguousarray(sxx / np.outer(scale, scale))
    inverse = _truncated_inverse(corr.tobytes(), corr.shape[0], penalty)
    beta[keep] = (inverse @ (cross / scale[:, None])) / scale[:, None]
    return beta


@functools.lru_cache(maxsize=512)
def _truncated_inverse(corr: bytes, k: int, ridge: tuple[float, ...] | float = 0.0) -> np.ndarray:
    """The rank-truncated pseudo-inverse (singular values below ``RCOND`` times the largest dropped) of
    ``C + diag(ridge)`` (one penalty for all, or one per row), ``C`` the ``k x k`` correlation matrix whose
    float64 bytes are ``corr`` (ridge
    regression, Hoerl & Kennard 1970, Technometrics 12:55-67, on standardized regressors).  Memoized on
    those exact bytes: every measure of every method of a scenario regresses on the same controls, so one
    decomposition serves them all, with the very numbers each would have computed."""
    matrix = np.frombuffer(corr, dtype=np.float64).reshape(k, k) + np.diag(np.broadcast_to(ridge, (k,)))
    u, sing, vt = np.linalg.svd(matrix)
    rank = int(np.count_nonzero(sing > RCOND * sing[0]))
    inverse = (vt[:rank].T / sing[:rank]) @ u[:, :rank].T
    inverse.setflags(write=False)
    return inverse


def _residual_variance(fold: Moments, x_index: np.ndarray, y_index: int, beta: np.ndarray) -> float:
    """Variance (ddof 1) of ``y - beta' x`` over the rows of ``fold``."""
    idx = np.concatenate([x_index, [y_index]])
    w = np.concatenate([-beta, [1.0]])
    return max(float(w @ fold.m2.take(idx, 0).take(idx, 1) @ w), 0.0) / (fold.n - 1)


class CrossFit(NamedTuple):
    """A cross-fitted two-phase estimate: the value, its MCSE, and the two terms of its variance."""

    estimate: float
    mcse: float
    #: ``sum_k w_k^2 s_k^2 / m_k``: the bootstrapped datasets' residual term.
    boot_variance: float
    #: ``beta_bar' Sigma beta_bar / N``: the cheap phase's term.
    cheap_variance: float


def _cheap_means(cheap: Moments, x_index: np.ndarray, exact_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means of the controls ``x_index`` over the cheap phase and their covariance, both adjusted by the
    cheap phase's exact controls ``exact_index`` (known mean 0): ``mean_X - Gamma mean_U`` and ``S_XX -
    Gamma S_UX`` with ``Gamma = S_XU S_UU^+`` (Glasserman 2004, §4.1.2, multiple controls); unadjusted
    when there are none or they have no variance."""
    m2 = cheap.m2
    mean = cheap.mean[x_index]
    sxx = m2.take(x_index, 0).take(x_index, 1)
    if exact_index.size:
        suu = m2.take(exact_index, 0).take(exact_index, 1)
        if np.any(np.diag(suu) > 0):
            gamma = m2.take(x_index, 0).take(exact_index, 1) @ np.linalg.pinv(suu, rcond=RCOND, hermitian=True)
            mean = mean - gamma @ cheap.mean[exact_index]
            sxx = sxx - gamma @ m2.take(exact_index, 0).take(x_index, 1)
    return mean, sxx / (cheap.n - 1)


def _others(folds: Sequence[Moments], k: int) -> Moments:
    """The moments of every fold but ``k``, merged in fold order."""
    out = None
    for j, fold in enumerate(folds):
        if j != k:
            out = fold if out is None else out.merge(fold)
    return out


def crossfit_estimate(
    folds: Sequence[Moments],
    cheap: Moments,
    x_index: Sequence[int],
    y_index: int,
    *,
    exact_index: Sequence[int] = (),
    cheap_exact_index: Sequence[int] = (),
    cheap_means: tuple[np.ndarray, np.ndarray] | None = None,
    ridge: float | tuple[float, ...] = 0.0,
) -> CrossFit | None:
    """Cross-fitted two-phase regression estimate of column ``y_index`` (see the module docstring).

    ``folds``: moments over the folds of the bootstrapped datasets (two or
    more; controls and the measure), each corrected with the coefficients
    fitted on the others; ``cheap``: moments over the cheap phase.  Columns
    ``x_index`` are controls whose means come from the cheap phase (the same
    columns there), adjusted by the cheap phase's exact controls
    ``cheap_exact_index``; columns ``exact_index`` of the folds are exact
    controls (expectation 0, nothing to estimate).  ``ridge``: the penalty of
    the regressions (:data:`RIDGE`).  None when it cannot be formed (a fold
    below ``MIN_FOLD`` datasets, or fewer than two cheap-phase datasets).
    ``cheap_means``: :func:`_cheap_means` of these arguments, when the caller
    already has it.
    """
    unit = np.zeros((1, folds[0].dim))
    unit[0, y_index] = 1.0
    fits = crossfit_estimates(
        folds, cheap, x_index, unit, np.zeros(1), exact_index=exact_index, cheap_exact_index=cheap_exact_index,
        cheap_means=cheap_means, ridge=ridge,
    )  # fmt: skip
    return None if fits is None else fits[0]


def crossfit_estimates(
    folds: Sequence[Moments],
    cheap: Moments,
    x_index: Sequence[int],
    vectors: np.ndarray,
    offsets: np.ndarray,
    *,
    exact_index: Sequence[int] = (),
    cheap_exact_index: Sequence[int] = (),
    cheap_means: tuple[np.ndarray, np.ndarray] | None = None,
    ridge: float | tuple[float, ...] = 0.0,
    others: Sequence[Moments] | None = None,
) -> list[CrossFit] | None:
    """:func:`crossfit_estimate` of ``q`` measures at once, each a linear function ``vectors[i]' v +
    offsets[i]`` of a dataset's columns ``v`` (``vectors`` ``(q, dim)``), all on the same controls: one
    solve per fold serves them all.  ``others``: each fold's complement (:func:`_others`), when the caller
    already has them.  None when the estimates cannot be formed."""
    x_index = np.asarray(x_index, dtype=np.int64)
    exact_index = np.asarray(exact_index, dtype=np.int64)
    regressors = np.concatenate([x_index, exact_index])
    m = sum(fold.n for fold in folds)
    if cheap.n < 2 or len(folds) < 2 or min(fold.n for fold in folds) < MIN_FOLD:
        return None
    others = [_others(folds, k) for k in range(len(folds))] if others is None else others
    a = vectors.T  # (dim, q)
    betas = [_betas(train, regressors, train.m2[regressors] @ a, ridge) for train in others]
    if cheap_means is None:
        cheap_means = _cheap_means(cheap, x_index, np.asarray(cheap_exact_index, dtype=np.int64))
    x_cheap, sigma_x = cheap_means
    target = np.concatenate([x_cheap, np.zeros(exact_index.size)])
    q = vectors.shape[0]
    estimate, boot_variance, beta_bar = np.zeros(q), np.zeros(q), np.zeros((regressors.shape[0], q))
    for fold, beta in zip(folds, betas, strict=True):
        w = fold.n / m
        estimate += w * (vectors @ fold.mean + offsets - (fold.mean[regressors] - target) @ beta)
        # the residual variance of y - beta'x over the fold: y'y - 2 beta'xy + beta'xx beta (ddof 1)
        m2_x = fold.m2[regressors]
        yy = np.einsum("qd,de,qe->q", vectors, fold.m2, vectors)
        xy = m2_x @ a
        xx = m2_x[:, regressors]
        residual = yy - 2 * np.einsum("rq,rq->q", beta, xy) + np.einsum("rq,rq->q", beta, xx @ beta)
        boot_variance += w * w * np.maximum(residual, 0.0) / (fold.n - 1) / fold.n
        beta_bar += w * beta
    beta_x = beta_bar[: x_index.size]
    cheap_variance = np.maximum(np.einsum("rq,rq->q", beta_x, sigma_x @ beta_x), 0.0) / cheap.n
    return [
        CrossFit(float(e), math.sqrt(float(b + c)), float(b), float(c))
        for e, b, c in zip(estimate, boot_variance, cheap_variance, strict=True)
    ]


def exact_control_estimate(moments: Moments, x_index: Sequence[int], y_index: int) -> CrossFit | None:
    """Control-variate estimate of column ``y_index`` from one sample with exact controls ``x_index``
    (expectation 0): ``mean(y) - beta' mean(x)``, ``beta`` the least-squares coefficients on the same
    sample, MCSE the residual SD over ``sqrt(N)`` (Glasserman 2004, §4.1.1, eqs. 4.2-4.5; the bias and
    the optimism of the MCSE from fitting ``beta`` in-sample are of order ``1 / N``).  The cheap
    phase's estimator for the asymptotic methods.  None below ``MIN_FOLD`` rows, and when no control
    varies (continuous generators have none): the plain mean is the estimate then."""
    x_index = np.asarray(x_index, dtype=np.int64)
    if not np.any(np.diag(moments.m2)[x_index] > 0):
        return None
    beta = _coefficients(moments, x_index, y_index)
    if beta is None:
        return None
    variance = _residual_variance(moments, x_index, y_index, beta) / moments.n
    estimate = float(moments.mean[y_index] - beta @ moments.mean[x_index])
    return CrossFit(estimate, math.sqrt(variance), variance, 0.0)


def plain_estimate(sum_y: float, sum_y2: float, n_ok: int) -> tuple[float, float, float]:
    """Mean, its MCSE ``sd / sqrt(n)`` and the SD (ddof 1) from raw sums over ``n_ok`` replicates."""
    if n_ok == 0:
        return math.nan, math.nan, math.nan
    mean = sum_y / n_ok
    if n_ok < 2:
        return mean, math.nan, math.nan
    var = max(sum_y2 - n_ok * mean * mean, 0.0) / (n_ok - 1)
    return mean, math.sqrt(var / n_ok), math.sqrt(var)


def _plain_measure(
    sums: tuple[np.ndarray, np.ndarray], a: np.ndarray, offset: float, name: str, n_ok: int
) -> tuple[float, float, float]:
    """Plain mean, MCSE and SD of a measure ``a'v + offset`` over the ``n_ok`` ok replicates (whose
    stored measures are the only non-zero ones), from the raw ``sums`` (:meth:`Moments.sums`)."""
    s1_all, s2_all = sums
    s1 = float(a @ s1_all) + offset * n_ok
    s2 = float(a @ s2_all @ a) + 2 * offset * float(a @ s1_all) + offset * offset * n_ok
    mean, mcse, sd = plain_estimate(s1, s2, n_ok)
    if name in PROPORTIONS and n_ok > 0:
        p = min(max(mean, 0.0), 1.0)
        mcse = math.sqrt(p * (1 - p) / n_ok)
    return mean, mcse, sd


def method_performance(
    folds: Sequence[Moments],
    cheap: Moments,
    method_index: int,
    n_ok: int,
    *,
    n_controls: int,
    control_variates: bool,
    confidence_level: float,
    single_phase: bool = False,
    cache: dict | None = None,
) -> dict[str, float | int | str]:
    """Every measure of one method: headline (cross-fitted control-variate estimate where possible) and plain.

    ``folds``: moments over the :data:`CROSSFIT_FOLDS` folds of the phase's
    datasets with a finite estimate: ``n_controls`` control columns (for a bootstrap block
    :data:`BOOT_CONTROLS`: the controls, then the exact resample controls),
    then the 4 stored measures of each method; ``n_ok`` of the datasets have
    an ``ok`` interval for this method (the stored measures of the others
    are 0).  ``cheap``: moments over the cheap phase of its first
    :data:`CHEAP_CONTROLS` columns (the controls, then its exact controls).
    The control-variate estimator is used when ``control_variates`` is set
    and every dataset is ok; otherwise the plain mean, and ``estimator`` says
    which; every measure of a row takes the same estimator, so the row's
    coverage and misses agree (``coverage = 1 - miss_below - miss_above``
    to rounding).  ``single_phase``: the method's datasets are the cheap
    phase itself (``folds[0]``, the asymptotic methods), estimated with its
    exact controls alone (:func:`exact_control_estimate`).  ``cache``: one dict
    shared by the calls for one scenario's methods (the same ``cheap``), so
    that what they share is computed once.
    """
    cache = {} if cache is None else cache
    folds = tuple(folds)
    key = ("total", *map(id, folds))
    if key not in cache:
        total = functools.reduce(Moments.merge, folds)
        cache[key] = (folds, total, total.sums())  # the folds are held so that their ids stay theirs
    _, total, sums = cache[key]
    first = n_controls + 4 * method_index
    use_cv = control_variates and n_ok == total.n and n_ok > 0
    out: dict[str, float | int | str] = {}
    plain, headline = {}, {}
    by_kind: dict[str, list[str]] = {}  # the cross-fitted measures, by the controls that serve them
    vectors = {}
    for name in MEASURES:
        a, offset = vectors[name] = _measure_vector(first, name, total.dim)
        plain[name] = _plain_measure(sums, a, offset, name, n_ok)
        headline[name] = None
        if use_cv:
            if single_phase:
                one = _with_measure(total, n_controls, a, offset)
                headline[name] = exact_control_estimate(one, CHEAP_EXACT_INDEX, n_controls)
                continue
            by_kind.setdefault(_LINEAR[name][2], []).append(name)
    if by_kind and ("others", *map(id, folds)) not in cache:
        cache["others", *map(id, folds)] = [_others(folds, k) for k in range(len(folds))]
    for kind, names in by_kind.items():
        if ("cheap", kind) not in cache:
            cache["cheap", kind] = _cheap_means(cheap, CONTROL_SETS[kind], CHEAP_EXACT_INDEX)
        fits = crossfit_estimates(
            folds, cheap, CONTROL_SETS[kind], np.array([vectors[name][0] for name in names]),
            np.array([vectors[name][1] for name in names]), exact_index=EXACT_SETS[kind],
            cheap_exact_index=CHEAP_EXACT_INDEX, cheap_means=cache["cheap", kind], ridge=RIDGE[kind],
            others=cache["others", *map(id, folds)],
        )  # fmt: skip
        for i, name in enumerate(names):
            headline[name] = None if fits is None else fits[i]
    cv_used = use_cv and all(headline[name] is not None for name in MEASURES)
    fits = {name: headline[name] if cv_used else None for name in MEASURES}
    for name in MEASURES:
        mean, mcse, _ = plain[name]
        fit = fits[name]
        out[name] = fit.estimate if fit is not None else mean
        out[f"{name}_mcse"] = fit.mcse if fit is not None else mcse
        out[f"{name}_plain"] = mean
        out[f"{name}_plain_mcse"] = mcse
    for name in RATIO_MEASURES:
        plain_mcse, mcse = out[f"{name}_plain_mcse"], out[f"{name}_mcse"]
        out[f"variance_ratio_{name}"] = (plain_mcse / mcse) ** 2 if mcse and mcse > 0 else math.nan
    for name in RATIO_MEASURES:
        fit = fits[name]
        sigma2 = out[f"{name}_plain_mcse"] ** 2 * n_ok if n_ok else math.nan
        if fit is not None and sigma2 > 0:
            out[f"residual_share_{name}"] = fit.boot_variance * total.n / sigma2
            out[f"cheap_share_{name}"] = fit.cheap_variance * cheap.n / sigma2
        else:
            out[f"residual_share_{name}"], out[f"cheap_share_{name}"] = 1.0, 0.0
    out["sd_ci_lower"] = plain["mean_ci_lower"][2]
    out["sd_ci_upper"] = plain["mean_ci_upper"][2]
    out["estimator"] = ESTIMATOR_CV if cv_used else ESTIMATOR_PLAIN
    return out
