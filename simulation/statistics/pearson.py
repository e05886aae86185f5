"""Pearson's r, written as a user statistic (:meth:`simulation.statistics.statistic.Statistic.from_numba`).

Nothing here is private to the engine: :data:`simulation.statistics.statistic.PEARSON`
is ``Statistic.from_numba(pearson_r, se=pearson_se, ...)`` with the public
parts, so every test run exercises the user-statistic mechanism with a real
statistic.

* :func:`pearson_r`: the product-moment correlation of a resample given as
  counts (a weighted correlation with integer weights; Pearson 1896).
* :func:`pearson_se`: the delta-method standard error of r for a general
  bivariate distribution (no normality), from the fourth moments of the
  standardized variables ``u, v``::

      Var(r) ~ (1/n) [ (r^2 / 4)(m40 + m04 + 2 m22) + m22 - r (m31 + m13) ]

  with ``m_jk = mean(u^j v^k)``: the delta-method variance of r for any
  distribution with finite fourth moments (Kendall & Stuart 1977, *The
  Advanced Theory of Statistics*, vol. 1, 4th ed., ch. 10, the sampling
  variance of r in terms of the moments ``mu_jk``, divided through by the
  standard deviations; Hawkins 1989, The American Statistician 43:235-237,
  derives the same limit with U-statistics).  ``tests/test_custom.py``
  checks it against an independent simulation of r's variance under a
  heavy-tailed t and against the normal closed form.  Under
  bivariate normality ``m40 = m04 = 3``, ``m22 = 1 + 2 rho^2``, ``m31 = m13 =
  3 rho`` and it reduces to ``(1 - rho^2)^2 / n``.  It is what the studentized
  bootstrap and the ``fisher_z_se`` interval need: a standard error that is
  a function of the resample, not only of r.
* Asymptotic interval ``fisher_z_pearson``: Fisher's z with variance
  ``1 / (n - 3)`` (Fisher 1921, Metron 1:3-32), exact in the limit under
  bivariate normality; the same name and formula as Spearman's baseline.
* Truth: the population correlation where it is known in closed form (the
  bivariate normal, ``2 sin(pi rho_s / 6)`` of the target Spearman (Pearson
  1907); the bivariate t, whose correlation is its shape parameter for df > 2);
  elsewhere the expected sample r, measured.
* Tests: ``permutation`` and ``t_test`` (``t = r sqrt((n - 2) / (1 - r^2))``
  on n - 2 df, exact under bivariate normality; Fisher 1915).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _moments(x, y, counts):
    """Weighted means, standardized fourth moments and r of ``(x, y)`` with integer weights ``counts``."""
    n = x.shape[0]
    sw = 0.0
    mx = 0.0
    my = 0.0
    for i in range(n):
        w = counts[i]
        sw += w
        mx += w * x[i]
        my += w * y[i]
    mx /= sw
    my /= sw
    sxx = 0.0
    syy = 0.0
    sxy = 0.0
    for i in range(n):
        w = counts[i]
        if w == 0:
            continue
        dx = x[i] - mx
        dy = y[i] - my
        sxx += w * dx * dx
        syy += w * dy * dy
        sxy += w * dx * dy
    return sw, mx, my, sxx, syy, sxy


@njit(cache=True)
def pearson_r(x, y, counts):
    """Pearson's r of the resample with pair ``i`` drawn ``counts[i]`` times; NaN when x or y is constant."""
    sw, mx, my, sxx, syy, sxy = _moments(x, y, counts)
    if sxx <= 0.0 or syy <= 0.0:
        return np.nan
    return sxy / math.sqrt(sxx * syy)


#: Below this share of the full data's sum of squares, a leave-one-out sum of squares is recomputed directly:
#: the update ``S - n/(n-1) d_j^2`` loses ``log10(S / S_(-j))`` digits to cancellation, so it keeps at least
#: 12 of float64's 15-16 (relative error below about 2e-13 of r's terms).
JACKKNIFE_RECOMPUTE_SHARE = 1e-3


@njit(cache=True)
def jackknife(x, y):
    """Pearson's r without each pair in turn, ``(n,)``, in O(n): from the full data's centred sums,
    ``S_xx(-j) = S_xx - n/(n-1) dx_j^2``, ``S_yy(-j)`` likewise and ``S_xy(-j) = S_xy - n/(n-1) dx_j dy_j``
    (the leave-one-out update of centred sums of squares and products: removing a point moves the mean by
    ``dx_j / (n - 1)``; e.g. Chan, Golub & LeVeque 1983, *The American Statistician* 37:242, the pairwise
    update).  Where a leave-one-out sum of squares is below :data:`JACKKNIFE_RECOMPUTE_SHARE` of the full
    one (the left-out pair carries nearly all of a variable's spread) the value is recomputed directly by
    :func:`pearson_r` with the pair's count 0, so that x or y becoming constant gives NaN as the direct
    computation does.  Equal to the direct leave-one-out values to about 1e-13 (``tests/test_custom.py``)."""
    n = x.shape[0]
    out = np.empty(n, np.float64)
    ones = np.ones(n, np.int64)
    sw, mx, my, sxx, syy, sxy = _moments(x, y, ones)
    f = sw / (sw - 1.0)
    for j in range(n):
        dx = x[j] - mx
        dy = y[j] - my
        sxx_j = sxx - f * dx * dx
        syy_j = syy - f * dy * dy
        if sxx_j <= JACKKNIFE_RECOMPUTE_SHARE * sxx or syy_j <= JACKKNIFE_RECOMPUTE_SHARE * syy:
            ones[j] = 0
            out[j] = pearson_r(x, y, ones)
            ones[j] = 1
            continue
        out[j] = (sxy - f * dx * dy) / math.sqrt(sxx_j * syy_j)
    return out


@njit(cache=True)
def pearson_se(x, y, counts):
    """Delta-method SE of r without normality (see the module docstring); NaN when x or y is constant."""
    sw, mx, my, sxx, syy, sxy = _moments(x, y, counts)
    if sxx <= 0.0 or syy <= 0.0:
        return np.nan
    r = sxy / math.sqrt(sxx * syy)
    sdx = math.sqrt(sxx / sw)
    sdy = math.sqrt(syy / sw)
    m40 = 0.0
    m04 = 0.0
    m22 = 0.0
    m31 = 0.0
    m13 = 0.0
    for i in range(x.shape[0]):
        w = counts[i]
        if w == 0:
            continue
        u = (x[i] - mx) / sdx
        v = (y[i] - my) / sdy
        uu = u * u
        vv = v * v
        m40 += w * uu * uu
        m04 += w * vv * vv
        m22 += w * uu * vv
        m31 += w * uu * u * v
        m13 += w * u * vv * v
    m40 /= sw
    m04 /= sw
    m22 /= sw
    m31 /= sw
    m13 /= sw
    var = (0.25 * r * r * (m40 + m04 + 2.0 * m22) + m22 - r * (m31 + m13)) / sw
    return math.sqrt(var) if var > 0.0 else np.nan


def fisher_variance(r: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Fisher's (1921) variance of ``atanh(r)``: ``1 / (n - 3)``."""
    return 1.0 / (np.asarray(n, dtype=np.float64) - 3) + 0 * np.asarray(r, dtype=np.float64)


def population_r(scenario) -> float | None:
    """Pearson's population correlation of ``scenario`` where it is known in closed form, else None.

    The bivariate normal: ``2 sin(pi rho_s / 6)`` for its target Spearman
    ``rho_s`` (Pearson 1907; the inverse of Kruskal 1958, eq. 5.4).  The
    bivariate t: its shape parameter (its correlation for df > 2).  Other
    models (Plackett with exponential margins, the tied-x generators):
    None, so the expected sample r is measured.
    """

    if scenario.estimand != "population" or not scenario.model.elliptical_data:
        return None
    return scenario.model.latent(float(scenario.rho), scenario.df)
