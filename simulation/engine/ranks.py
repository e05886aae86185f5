"""Validated wrappers around the tie-aware Spearman kernels."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numpy.typing import ArrayLike

from simulation.core.validation import check_paired_data
from simulation.engine import _kernels


def midranks(a: ArrayLike) -> np.ndarray:
    """Average ranks (midranks) along the last axis.

    Parameters
    ----------
    a : array_like, shape (n,) or (m, n)
        Finite values.

    Returns
    -------
    numpy.ndarray
        Same shape, float64; tied values share the mean of the ranks they
        occupy, exactly as ``scipy.stats.rankdata(a, method="average", axis=-1)``.

    References
    ----------
    Kendall, M. & Gibbons, J. D. (1990). Rank Correlation Methods, 5th ed., §3.
    """
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] < 1:
        raise ValueError(f"`a` must have shape (n,) or (m, n) with n >= 1, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("`a` contains NaN or infinite values; only finite values are allowed")
    out = _kernels.midranks_rows(np.atleast_2d(arr))
    return out[0] if arr.ndim == 1 else out


#: Rows at least this long are ordered by NumPy's sort, one row at a time (several times the kernels' merge
#: sort, which numbers a batch of short rows in parallel; one row's order is held at a time).
NUMPY_SORT_FROM = 65_536


#: Rows at least this long, when few, are sorted on up to as many threads as there are rows (NumPy's sort
#: lets go of the GIL).  Below it a thread pool cost more than it saved: the kernels' threads, idle but
#: not yet asleep after a parallel call, took the cores (one dataset at n = 327,680: 1-4 ms slower).
THREADED_SORT_FROM = 524_288


def _orders(x: np.ndarray, y: np.ndarray, threads: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.argsort(x, axis=1)`` and ``np.argsort(y, axis=1)``; rows of at least :data:`THREADED_SORT_FROM`
    values sorted in a pool of ``threads`` threads, each into its own row (the same orders: the sort does
    not depend on the thread)."""
    m, n = x.shape
    if n < THREADED_SORT_FROM or threads < 2:
        return np.argsort(x, axis=1), np.argsort(y, axis=1)
    with ThreadPoolExecutor(min(threads, 2 * m)) as pool:
        orders = list(pool.map(np.argsort, [*x, *y]))
    # one dataset's orders as they come (a copy into arrays made beforehand measured 2-5 ms at 1,310,720)
    return tuple(o[0][None] if m == 1 else np.stack(o) for o in (orders[:m], orders[m:]))


def group_ids(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tie-group ids and counts of validated ``(m, n)`` arrays (kernel inputs).

    Rows of at least :data:`NUMPY_SORT_FROM` values, or fewer rows than threads (one dataset on the data),
    are ordered by NumPy's sort and then numbered; each row's ids are the same either way (tied values get
    one id whatever their order).
    """
    m, n = x.shape
    threads = numba.get_num_threads()
    if m < threads:  # x's and y's rows numbered in one parallel call
        g, n_g = np.empty((2 * m, n), np.int64), np.empty(2 * m, np.int64)
        _kernels.group_ids_of_order_rows(x, y, *_orders(x, y, threads), g, n_g, np.empty((2 * m, n), np.uint8))
        return g[:m], n_g[:m], g[m:], n_g[m:]
    if n >= NUMPY_SORT_FROM:
        out = []
        scratch = np.empty(n, np.uint8)
        for a in (x, y):
            gid = np.empty((m, n), np.int64)
            n_groups = np.empty(m, np.int64)
            for r in range(m):
                n_groups[r] = _kernels.group_ids_of_order(a[r], np.argsort(a[r]), gid[r], scratch)
            out += [gid, n_groups]
        return out[0], out[1], out[2], out[3]
    gx, n_gx = _kernels.group_ids_rows(x)
    gy, n_gy = _kernels.group_ids_rows(y)
    return gx, n_gx, gy, n_gy


def spearman_rho_2d(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Spearman's rank correlation of each row pair, tie-aware.

    Parameters
    ----------
    x, y : array_like, shape (m, n)
        Paired finite observations; row ``r`` of ``x`` pairs with row ``r`` of ``y``.

    Returns
    -------
    numpy.ndarray, shape (m,)
        Pearson's correlation of midranks for each row (equal to
        ``scipy.stats.spearmanr`` row by row); NaN for a row where x or y is
        constant, never 0.

    References
    ----------
    Kendall, M. & Gibbons, J. D. (1990). Rank Correlation Methods, 5th ed.,
    eq. 3.9 (Pearson's formula applied to midranks handles ties exactly).
    """
    xa, ya = check_paired_data(x, y, ndim=2, min_n=2)
    return _kernels.spearman_rows(*group_ids(xa, ya))
