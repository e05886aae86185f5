"""p-values of an observed statistic against permutation null samples (Phipson & Smyth 2010).

The count of null values as extreme as the observed one, plus one, over the null sample's size plus
one: ``(1 + #{null as extreme as r}) / (M + 1)``, never 0 (Phipson & Smyth 2010, *Statistical
Applications in Genetics and Molecular Biology* 9:39, eq. 2).  Arrays only: these functions know no
statistic and no model.
"""

from __future__ import annotations

import numpy as np

ALTERNATIVES = ("two-sided", "greater", "less")


def check_alternative(alternative: str) -> str:
    """``alternative`` itself, if one of :data:`ALTERNATIVES`; else a ValueError naming it."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"`alternative` must be one of {list(ALTERNATIVES)}, got {alternative!r}")
    return alternative


def pvalues_from_null(
    r: np.ndarray, null_sorted: np.ndarray, alternative: str = "two-sided", *, abs_sorted: np.ndarray | None = None
) -> np.ndarray:
    """Permutation p-values ``(1 + #{null as extreme as r}) / (M + 1)`` against one sorted null sample.

    Two-sided uses ``|rho|`` (the null is symmetric: reversing y's ranks maps rho
    to -rho).  A relative tolerance of 1e-12 counts null values equal to the
    observed value as "as extreme" despite rounding.  ``abs_sorted``:
    ``sort(|null|)`` when already at hand (callers that test many batches).
    """
    check_alternative(alternative)
    r = np.asarray(r, dtype=np.float64)
    m = null_sorted.shape[0]
    tol = 1e-12
    if alternative == "greater":
        count = m - np.searchsorted(null_sorted, r - tol, side="left")
    elif alternative == "less":
        count = np.searchsorted(null_sorted, r + tol, side="right")
    else:
        if abs_sorted is None:
            abs_sorted = np.sort(np.abs(null_sorted))
        count = m - np.searchsorted(abs_sorted, np.abs(r) - tol, side="left")
    p = (1.0 + count) / (m + 1.0)
    return np.where(np.isnan(r), np.nan, p)


def pvalues_rowwise(r: np.ndarray, nulls: np.ndarray, alternative: str = "two-sided") -> np.ndarray:
    """Like :func:`pvalues_from_null`, but dataset ``i`` against its own null sample ``nulls[i]``."""
    tol = 1e-12
    r = np.asarray(r, dtype=np.float64)[:, None]
    if alternative == "greater":
        count = np.count_nonzero(nulls >= r - tol, axis=1)
    elif alternative == "less":
        count = np.count_nonzero(nulls <= r + tol, axis=1)
    else:
        count = np.count_nonzero(np.abs(nulls) >= np.abs(r) - tol, axis=1)
    p = (1.0 + count) / (nulls.shape[1] + 1.0)
    return np.where(np.isnan(r[:, 0]), np.nan, p)
