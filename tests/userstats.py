"""User statistics for the tests, written as a researcher would (importable as ``tests.userstats:NAME``).

``spearman_counts`` is Spearman's rho computed from a resample's counts, independently of the
package's kernels: the data arrive as tie-group ids (``prepare=dense_ranks``), each group's weighted
count gives its midrank (``cumulative count before it + (count + 1) / 2``), and rho is the weighted
Pearson correlation of the midranks (Kendall 1970, *Rank Correlation Methods*, ch. 3: Spearman's rho with
ties is Pearson's r of the midranks).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from simulation.engine.intervals import FISHER_Z_VARIANCES
from simulation.statistics import pearson, spearman
from simulation.statistics.custom import dense_ranks
from simulation.statistics.statistic import Statistic


@njit(cache=True)
def _centred_midranks(ids, counts, total):
    k = 0
    for i in range(ids.shape[0]):
        k = max(k, int(ids[i]) + 1)
    ranks = np.zeros(k)
    for i in range(ids.shape[0]):
        ranks[int(ids[i])] += counts[i]
    below = 0.0
    for g in range(k):
        size = ranks[g]
        ranks[g] = below + (size + 1.0) / 2.0 - (total + 1.0) / 2.0
        below += size
    return ranks


@njit(cache=True)
def spearman_counts(x, y, counts):
    """Spearman's rho of a resample given as counts, x and y as tie-group ids."""
    total = 0.0
    for i in range(counts.shape[0]):
        total += counts[i]
    rx = _centred_midranks(x, counts, total)
    ry = _centred_midranks(y, counts, total)
    sxy = 0.0
    sxx = 0.0
    syy = 0.0
    for i in range(x.shape[0]):
        w = counts[i]
        if w == 0:
            continue
        a = rx[int(x[i])]
        b = ry[int(y[i])]
        sxy += w * a * b
        sxx += w * a * a
        syy += w * b * b
    if sxx == 0.0 or syy == 0.0:
        return np.nan
    return sxy / math.sqrt(sxx * syy)


@njit(cache=True)
def spearman_bw_se(x, y, counts):
    """Bonett & Wright's (2000) SE of atanh(r_s) times (1 - r_s^2): the SE of r_s itself."""
    r = spearman_counts(x, y, counts)
    n = 0.0
    for i in range(counts.shape[0]):
        n += counts[i]
    return math.sqrt((1.0 + r * r / 2.0) / (n - 3.0)) * (1.0 - r * r)


def spearman_truth(scenario) -> float:
    """The built-in Spearman's truth of the scenario (so the tables are comparable)."""
    return spearman.truth(scenario).value


USER_SPEARMAN = Statistic.from_numba(
    spearman_counts,
    name="user_spearman",
    se=spearman_bw_se,
    prepare=dense_ranks,
    truth=spearman_truth,
    z_variances=dict(FISHER_Z_VARIANCES),
)


@njit(cache=True)
def raises(x, y, counts):
    """A statistic that raises."""
    raise ValueError("boom")


@njit(cache=True)
def first_x(x, y, counts):
    """Not a correlation: out of the bounds (-1, 1) on most data."""
    return x[0] * 100.0 + 5.0


@njit("float64(float64[:], float64[:], float64[:])")
def wrong_signature(x, y, counts):
    """Compiled for float counts only: the engine cannot call it."""
    return 0.0


@njit(cache=True)
def mean_difference(x, y, counts):
    """A statistic that is not a correlation (identity transform): mean of y - x."""
    s = 0.0
    w = 0.0
    for i in range(x.shape[0]):
        s += counts[i] * (y[i] - x[i])
        w += counts[i]
    return s / w


MEAN_DIFFERENCE = Statistic.from_numba(mean_difference, name="mean_difference", transform="identity", bounds=None)

NOT_CALLABLE = 3.0


@njit(cache=True)
def returns_array(x, y, counts):
    """Returns the wrong type: an array."""
    return x * 2.0


def returns_text(x, y, axis=-1):
    """A Python statistic that returns the wrong type."""
    return "rho"


@njit(cache=True)
def spearman_nan_when_first_thrice(x, y, counts):
    """Spearman's rho, except NaN on a resample that draws the first pair 3 or more times (about 7.5% of
    the resamples at n = 20: P(Binomial(20, 1/20) >= 3) = 0.0755)."""
    if counts[0] >= 3:
        return np.nan
    return spearman_counts(x, y, counts)


#: A statistic undefined on about 7.5% of the resamples at n = 20 (nothing else wrong with it).
SOMETIMES_NAN = Statistic.from_numba(spearman_nan_when_first_thrice, name="sometimes_nan", prepare=dense_ranks)


@njit(cache=True)
def spearman_plain(x, y, counts):
    """:func:`spearman_counts` under another name: a user Spearman with no truth and no declarations."""
    return spearman_counts(x, y, counts)


#: A hand-written Spearman without ``truth=``: scored against the expected sample value at n.
PLAIN_SPEARMAN = Statistic.from_numba(spearman_plain, name="plain_spearman", prepare=dense_ranks)


@njit(cache=True)
def spearman_odd(x, y, counts):
    """:func:`spearman_counts` once more, declared odd-symmetric."""
    return spearman_counts(x, y, counts)


#: The same, declared odd-symmetric: its truth at rho = 0 is exactly 0.
ODD_SPEARMAN = Statistic.from_numba(spearman_odd, name="odd_spearman", prepare=dense_ranks, odd_symmetric=True)


def log_y(x, y):
    """x as it is, y on the log scale (y > 0)."""
    return x, np.log(y)


#: Pearson's r of x and log y with Student's t test: under the ``log_linear`` generator log y is linear in x
#: with normal errors, so the t test's power is a noncentral t probability (an exact reference for a tied x).
LOG_PEARSON = Statistic.from_numba(pearson.pearson_r, name="log_pearson", prepare=log_y,
                                   tests=("permutation", "t_test"), odd_symmetric=True)  # fmt: skip
