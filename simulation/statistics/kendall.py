"""Kendall's tau-b with ties: kernels (numba) and formulas.

Notation (Kendall 1970, *Rank Correlation Methods*, 4th ed., ch. 3): ``n``
pairs, tie groups of x with sizes ``t`` and of y with sizes ``u``,
``n0 = n (n - 1) / 2``, ``Tx = sum t (t - 1) / 2``, ``Ty = sum u (u - 1) / 2``,
``S`` = concordant minus discordant pairs and

    tau_b = S / sqrt((n0 - Tx) (n0 - Ty)).

Per observation ``s_k = sum_j sign(x_k - x_j) sign(y_k - y_j)``, so
``S = sum_k s_k / 2``; ``t_k``, ``u_k`` are the sizes of k's tie groups.

Every count is an exact integer, so the result does not depend on the order
of summation (the same bit-identity argument as for Spearman's kernels).

* :func:`tau_b_rows`: tau-b of each row in O(n log n) (Knight 1966, JASA
  61:436-439: pairs in y order, discordances counted with a Fenwick tree over
  x's tie groups, as SciPy's ``_kendall_dis`` does; above 65,536 groups over
  blocks of 16, the groups' own weights beside it:
  :func:`simulation.engine._kernels._tree_below`).
* :func:`bootstrap_rows`: tau-b of each paired resample from its
  multiplicities, without re-sorting: with the data's groups known, one pass
  in y order with a Fenwick tree over x's groups gives ``S`` and both tie
  totals of the weighted multiset, O(n log k) for k distinct x values.
* :func:`concordance_rows` and :func:`jackknife_rows`: the ``s_k`` in
  O(n log n) (two Fenwick passes), and from them the exact leave-one-out
  values ``tau_b(-k) = (S - s_k) / sqrt((n0' - Tx + t_k - 1)(n0' - Ty + u_k - 1))``
  with ``n0' = (n - 1)(n - 2) / 2``.
* :func:`ase_rows`: the delta-method (non-null) standard error of tau-b
  (Brown & Benedetti 1977, Psychometrika 42:347-355; Agresti 2010, *Analysis
  of Ordinal Categorical Data*, 2nd ed., §7.1; the ASE of SAS PROC FREQ).
* :func:`null_variance_s`: the exact permutation variance of ``S`` with
  ties in both variables (Kendall 1970, eq. 4.4), and :func:`normal_pvalues`.
* :func:`fisher_z_ci`: Fisher-z intervals with Fieller, Hartley & Pearson's
  variance ``0.437 / (n - 4)`` (1957, Biometrika 44:470-481) or with the ASE;
  :func:`ase_ci`: ``tau_b -+ z ASE`` on tau-b's own scale.
* :func:`population_tau`: ``(2 / pi) asin(rho)`` for elliptical models.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, njit, prange
from numpy.typing import ArrayLike
from scipy import stats
from scipy.special import ndtri

from simulation.core.validation import check_confidence_level, check_paired_data, check_positive_int
from simulation.engine import _kernels
from simulation.engine.pvalues import check_alternative, pvalues_rowwise
from simulation.engine.ranks import group_ids
from simulation.engine.seeding import child_keys
from simulation.models import generators
from simulation.models.scenarios import DEFAULT_TRUTH_MCSE

#: Fieller, Hartley & Pearson's (1957) variance of atanh(tau) for untied bivariate-normal samples:
#: ``FHP_KENDALL / (n - 4)``.
FHP_KENDALL = 0.437
#: Up to this many distinct x values the resample kernel sums the x groups' weights directly instead of
#: using the Fenwick tree (measured faster at 4 groups; see ``benchmarks/bench_kendall.py``).
SMALL_K = 8


# --------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _sum_below(seen, g) -> int:
    """``seen[0] + ... + seen[g - 1]``: the Fenwick query done by hand when there are few groups."""
    total = 0
    for h in range(g):
        total += np.int64(seen[h])
    return total


@njit(cache=True, inline="always")
def _clear(tree, seen, n_gx) -> None:
    """Empty the per-x-group weights and the tree over their blocks before a pass (``tree`` has one more slot
    than there are groups: a pass may use them all as scratch once it is over)."""
    for g in range(_kernels._tree_slots(n_gx)):
        tree[g] = 0
    for g in range(n_gx):
        seen[g] = 0


@njit(cache=True, inline="always")
def _add_y_group(wy, gxy, lo, hi, tree, seen, n_gx, small) -> None:
    """Add the pairs at places ``lo .. hi - 1`` (one y group) to their x groups' weights ``seen`` (and, with
    more than :data:`SMALL_K` x groups, to the tree over them)."""
    for k in range(lo, hi):
        wi = np.int64(wy[k])
        if not small:
            _kernels._block_add(tree, n_gx, gxy[k], wi)
        seen[gxy[k]] += wi


@njit(cache=True)
def _weighted_s(wy, gxy, n_gx, ys, n_gy, tree, seen) -> tuple[int, int, int]:
    """``S``, ``Tx``, ``Ty`` of the multiset with weights ``wy``: copies of one pair tie in both variables.

    The pairs are in y order: ``wy[k]`` weighs the pair at place ``k``, ``gxy[k]`` is its x group, and y
    group ``q`` holds places ``ys[q]:ys[q + 1]``, so every array is read in order.  y groups are visited
    in increasing order; ``tree`` and ``seen`` hold the weight of each x group among the strictly smaller
    y values, so a member of x group ``g`` with weight ``w_i`` meets ``below(g)`` concordant and
    ``earlier - below(g) - seen[g]`` discordant earlier pairs.
    """
    _clear(tree, seen, n_gx)
    s = 0
    ty2 = 0
    earlier = 0
    small = n_gx <= SMALL_K
    if n_gy == wy.shape[0] and small:
        # y untied in the data (the usual case) and few x values: one member per y group, one pass;
        # no branch on w_i = 0 (about a third of a resample's pairs, at random: mispredicted), whose terms are 0
        for k in range(n_gy):
            wi = np.int64(wy[k])  # counts may be bytes: their arithmetic in int64
            gi = gxy[k]
            below = _sum_below(seen, gi)
            s += wi * (2 * below + seen[gi] - earlier)
            ty2 += wi * (wi - 1)
            seen[gi] += wi
            earlier += wi
    elif n_gy == wy.shape[0]:
        # y untied, many x values: the same with the tree (``ys`` may be empty: one pair per y group), and a
        # pair drawn 0 times skipped (it adds 0; the tree's accesses, not the branch, are what cost here)
        for k in range(n_gy):
            wi = np.int64(wy[k])
            if wi == 0:
                continue
            gi = gxy[k]
            s += wi * (2 * _kernels._tree_below(tree, seen, n_gx, gi) + seen[gi] - earlier)
            ty2 += wi * (wi - 1)
            _kernels._block_add(tree, n_gx, gi, wi)
            seen[gi] += wi
            earlier += wi
    else:
        for g in range(n_gy):  # every pair, drawn or not, as above (a pair drawn 0 times adds 0)
            c = 0
            for k in range(ys[g], ys[g + 1]):
                wi = np.int64(wy[k])
                gi = gxy[k]
                if small:  # a few x values: summing them beats the tree's branches
                    below = _sum_below(seen, gi)
                else:
                    below = _kernels._tree_below(tree, seen, n_gx, gi)
                s += wi * (2 * below + seen[gi] - earlier)
                c += wi
            _add_y_group(wy, gxy, ys[g], ys[g + 1], tree, seen, n_gx, small)
            ty2 += c * (c - 1)
            earlier += c
    tx2 = 0
    for g in range(n_gx):
        tx2 += np.int64(seen[g]) * (np.int64(seen[g]) - 1)
    return s, tx2 // 2, ty2 // 2


@njit(cache=True, inline="always")
def _tau_from_counts(s, tx, ty, n) -> float:
    n0 = n * (n - 1) // 2
    if n0 - tx == 0 or n0 - ty == 0:
        return np.nan
    return s / np.sqrt(float(n0 - tx) * float(n0 - ty))


@njit(cache=True)
def _layout(gx, n_gx, gy, n_gy):
    """A row's y order ``yo`` and y groups' bounds ``ys``, x's groups in y order ``gxy`` (32-bit, n <=
    MAX_SAMPLE_SIZE < 2^31), and a tree and x-group weights for its pass (32-bit: they hold weights of at
    most n pairs, or values in [-n, n]; the sums are taken in int64).  With y untied its group ids are its
    ranks, so the order is their inverse (no counting sort)."""
    yo, ys, gxy = _y_layout(gx, gy, n_gy)
    return yo, ys, gxy, np.empty(n_gx + 1, np.int32), np.empty(n_gx, np.int32)


@njit(cache=True)
def _y_layout(gx, gy, n_gy):
    """:func:`_layout`'s ``yo``, ``ys`` and ``gxy`` alone."""
    n = gx.shape[0]
    yo, ys, gxy = np.empty(n, np.int64), np.empty(n + 1, np.int64), np.empty(n, np.int32)
    _layout_into(gx, gy, n_gy, yo, ys, gxy)
    return yo, ys, gxy


@njit(cache=True)
def _layout_into(gx, gy, n_gy, yo, ys, gxy) -> None:
    """:func:`_layout`'s ``yo``, ``ys`` and ``gxy`` into the arrays given."""
    n = gx.shape[0]
    if n_gy == n:
        for q in range(ys.shape[0]):  # the bounds and the order, where asked (empty: not needed)
            ys[q] = q
        if yo.shape[0] == 0:
            for i in range(n):
                gxy[gy[i]] = gx[i]
            return
        for i in range(n):
            yo[gy[i]] = i
            gxy[gy[i]] = gx[i]
    else:
        _kernels._grouped_order(gy, n_gy, yo, ys)
        _in_order_into(gx, yo, gxy)


@njit(cache=True)
def _in_order(gx, order):
    """``gx[order[k]]`` for every place ``k``: x's groups in y order, 32-bit (n <= MAX_SAMPLE_SIZE < 2^31)."""
    out = np.empty(order.shape[0], np.int32)
    _in_order_into(gx, order, out)
    return out


@njit(cache=True)
def _in_order_into(gx, order, out) -> None:
    """:func:`_in_order` into ``out``."""
    for k in range(order.shape[0]):
        out[k] = gx[order[k]]


@njit(cache=True)
def _row_tau(gx, n_gx, gy, n_gy) -> float:
    """tau-b of one row."""
    yo, ys, gxy, tree, seen = _layout(gx, n_gx, gy, n_gy)
    s, tx, ty = _weighted_s(np.ones(gx.shape[0], np.int32), gxy, n_gx, ys, n_gy, tree, seen)
    return _tau_from_counts(s, tx, ty, gx.shape[0])


@njit(cache=True, parallel=True)
def tau_b_rows(gx, n_gx, gy, n_gy) -> np.ndarray:
    """tau-b ``(m,)`` of each row from tie-group ids; NaN where x or y is constant."""
    m = gx.shape[0]
    out = np.empty(m, np.float64)
    for r in prange(m):
        out[r] = _row_tau(gx[r], n_gx[r], gy[r], n_gy[r])
    return out


@njit(cache=True)
def _resample_setup(gx, n_gx, gy, n_gy, with_t, tau_hat):
    """What every resample of one row reads (:func:`bootstrap_rows`): the y groups' bounds (empty with y
    untied, where every pass goes along y pair by pair), each observation's place in y order, x's groups in
    y order (32-bit), y's groups, and with ``with_t`` Fisher's z of the row's tau-b ``tau_hat``."""
    z_hat = np.arctanh(tau_hat) if with_t else np.nan
    n = gx.shape[0]
    if n_gy == n:  # y untied: its group ids are the places, and no pass reads the order or the bounds
        ys, gxy = np.empty(0, np.int64), np.empty(n, np.int32)
        _layout_into(gx, gy, n_gy, np.empty(0, np.int32), ys, gxy)
        return ys, gy.astype(np.int32), gxy, gy, gx, z_hat
    yo, ys, gxy = _y_layout(gx, gy, n_gy)  # no tree or weights: each resample's pass has its own
    return ys, _places(yo), gxy, gy, gx, z_hat


@njit(cache=True, error_model="numpy")
def _resample_range(n_gx, n_gy, key, lo, hi, setup, with_t, out, t_out) -> None:
    """Resamples ``lo .. hi - 1`` of one row: tau-b into ``out[b]``, with ``with_t`` the bootstrap-t into
    ``t_out[b]`` (NumPy's division: a resample with ``|tau*| = 1`` has an infinite SE, not an error, as in
    the parallel loop this body came from).  A resample is counted straight in y order (each draw's place,
    then the counts, as in Spearman's kernel), so the passes that follow read every array in order."""
    ys, place, gxy, gy, gx, z_hat = setup
    n = place.shape[0]
    if n > _kernels.BYTE_COUNTS_ABOVE:
        _resample_bytes(n_gx, n_gy, key, lo, hi, setup, with_t, out, t_out)
        return
    tree = np.empty(n_gx + 1, np.int32)  # weights of x groups: at most n < 2^31; sums are taken in int64
    seen = np.empty(n_gx, np.int32)
    w = np.zeros(n, np.int32)
    draws = np.empty(n, np.int32)
    sk = np.empty(n if with_t else 0, np.int32)  # |s_k| <= n, and the pass's partial values within 3n < 2^31
    usize = np.empty(n_gy if with_t and n_gy < n else 0, np.int64)  # y untied: the counts are the sizes
    term = np.empty(n if with_t and n > ASE_TERMS_FIRST_ABOVE and n_gy < n else 0, np.float64)
    for b in range(lo, hi):
        _kernels._draw_resample(key[0], key[1], b, _kernels.STREAM_BOOTSTRAP, draws)
        for j in range(n):  # each draw's place, then the counts: as Spearman's kernel (see there)
            draws[j] = place[draws[j]]
        w[:] = 0
        for j in range(n):
            w[draws[j]] += 1
        if with_t:  # S, the tie totals and every copy's s_k in one pass
            s, tx, ty = _weighted_counts(w, gxy, n_gx, ys, n_gy, sk, usize, tree, seen)
        else:
            s, tx, ty = _weighted_s(w, gxy, n_gx, ys, n_gy, tree, seen)
        tau = _tau_from_counts(s, tx, ty, n)
        out[b] = tau
        if with_t and np.isfinite(tau):
            ase = _weighted_ase(w, gxy, ys, n_gy, gy, gx, sk, seen, usize, place, n, tx, ty, tau, term)
            se = ase / (1.0 - tau * tau)
            if abs(tau) == 1.0:
                t_out[b] = np.inf if tau > 0 else -np.inf
            elif se > 0.0:
                t_out[b] = (np.arctanh(tau) - z_hat) / se


@njit(cache=True)
def _resample_bytes(n_gx, n_gy, key, lo, hi, setup, with_t, out, t_out) -> None:
    """:func:`_resample_range` above ``BYTE_COUNTS_ABOVE`` pairs: the counts in bytes (Spearman's kernel: see
    :func:`simulation.engine._kernels._place_counts`); with x untied an x group's weight is its one pair's
    count, so bytes hold the groups' weights too (a quarter of the memory that the pass reads and writes at
    random).  A resample with a count past 255 is computed again in int32."""
    n = setup[1].shape[0]
    if n_gx == n:
        wrapped = _resample_counted(n_gx, n_gy, key, lo, hi, setup, with_t, out, t_out, np.zeros(n, np.uint8),
                                    np.empty(n_gx, np.uint8))  # fmt: skip
    else:
        wrapped = _resample_counted(n_gx, n_gy, key, lo, hi, setup, with_t, out, t_out, np.zeros(n, np.uint8),
                                    np.empty(n_gx, np.int32))  # fmt: skip
    for b in wrapped:  # a count passed 255: the resample again in int32
        _resample_counted(n_gx, n_gy, key, b, b + 1, setup, with_t, out, t_out, np.zeros(n, np.int32),
                          np.empty(n_gx, np.int32))  # fmt: skip


@njit(cache=True, error_model="numpy")
def _resample_counted(n_gx, n_gy, key, lo, hi, setup, with_t, out, t_out, w, seen) -> np.ndarray:
    """:func:`_resample_range` with the counts in ``w`` and the x groups' weights in ``seen`` (int32, or
    bytes: :func:`simulation.engine._kernels._place_counts`); returns the resamples whose counts did not
    fit (their results are left to the caller).  Its loop repeats :func:`_resample_range`'s: that one stays
    as it is for n up to ``BYTE_COUNTS_ABOVE`` because calling this function, or an inlined helper for the
    shared lines, measured 7-20% slower per resample at n = 80."""
    ys, place, gxy, gy, gx, z_hat = setup
    n = place.shape[0]
    tree = np.empty(n_gx + 1, np.int32)  # weights of x groups: at most n < 2^31; sums are taken in int64
    buf = _kernels.draw_buffer()
    no_ell, no_sums = np.empty(0), np.empty(4)
    sk = np.empty(n if with_t else 0, np.int32)  # |s_k| <= n, and the pass's partial values within 3n < 2^31
    usize = np.empty(n_gy if with_t and n_gy < n else 0, np.int64)  # y untied: the counts are the sizes
    term = np.empty(n if with_t and n > ASE_TERMS_FIRST_ABOVE and n_gy < n else 0, np.float64)
    wrapped = np.empty(hi - lo, np.int64)
    n_wrapped = 0
    for b in range(lo, hi):
        if not _kernels._place_counts(key, b, place, buf, w, no_ell, no_sums):
            wrapped[n_wrapped] = b
            n_wrapped += 1
            continue
        if with_t:  # S, the tie totals and every copy's s_k in one pass
            s, tx, ty = _weighted_counts(w, gxy, n_gx, ys, n_gy, sk, usize, tree, seen)
        else:
            s, tx, ty = _weighted_s(w, gxy, n_gx, ys, n_gy, tree, seen)
        tau = _tau_from_counts(s, tx, ty, n)
        out[b] = tau
        if with_t and np.isfinite(tau):
            ase = _weighted_ase(w, gxy, ys, n_gy, gy, gx, sk, seen, usize, place, n, tx, ty, tau, term)
            se = ase / (1.0 - tau * tau)
            if abs(tau) == 1.0:
                t_out[b] = np.inf if tau > 0 else -np.inf
            elif se > 0.0:
                t_out[b] = (np.arctanh(tau) - z_hat) / se
    return wrapped[:n_wrapped]


def bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, with_t=False, tau_hat=None) -> tuple[np.ndarray, np.ndarray]:
    """tau-b of ``n_boot`` paired resamples per row ``(m, n_boot)``, drawn exactly as Spearman's
    (:func:`simulation.engine._kernels.bootstrap_rows`: the same indices for the same keys); NaN where a resample
    has constant x or constant y.

    With ``with_t`` also each resample's bootstrap-t statistic on Fisher's z,
    ``t* = (atanh tau* - atanh tau_hat) / (ASE* / (1 - tau*^2))``, with the
    resample's own delta-method ASE (:func:`_weighted_ase`; Davison & Hinkley
    1997, §5.2.1); NaN where undefined, +-inf where ``|tau*| = 1``.  Without,
    the second array is empty ``(m, 0)``.  ``tau_hat`` ``(m,)``: the rows' tau-b where the caller has it
    (:func:`fixed_rows`), else computed here.
    """
    if tau_hat is None:
        tau_hat = tau_b_rows(gx, n_gx, gy, n_gy) if with_t else np.zeros(gx.shape[0])
    return _bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, with_t, np.asarray(tau_hat, np.float64),
                           get_num_threads())  # fmt: skip


@njit(cache=True, parallel=True)
def _bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, with_t, tau_hat, threads) -> tuple[np.ndarray, np.ndarray]:
    """:func:`bootstrap_rows` given the rows' tau-b, on ``threads`` threads
    (:func:`simulation.engine._kernels.resample_parts`)."""
    m, n = gx.shape
    out = np.empty((m, n_boot), np.float64)
    t_out = np.full((m, n_boot if with_t else 0), np.nan)
    parts = _kernels.resample_parts(m, n_boot, threads)
    if parts == 1:  # at least as many rows as tasks: a row per task
        for r in prange(m):
            setup = _resample_setup(gx[r], n_gx[r], gy[r], n_gy[r], with_t, tau_hat[r])
            _resample_range(n_gx[r], n_gy[r], keys[r], 0, n_boot, setup, with_t, out[r], t_out[r])
    else:  # few rows: each row's y order once, its resamples in parts across the threads
        for r in range(m):
            setup = _resample_setup(gx[r], n_gx[r], gy[r], n_gy[r], with_t, tau_hat[r])
            for part in prange(parts):
                lo, hi = _kernels._part_bounds(part, parts, n_boot)
                _resample_range(n_gx[r], n_gy[r], keys[r], lo, hi, setup, with_t, out[r], t_out[r])
    return out, t_out


@njit(cache=True)
def _weighted_counts(wy, gxy, n_gx, ys, n_gy, out, usize, tree, seen) -> tuple[int, int, int]:
    """``S``, ``Tx``, ``Ty`` as :func:`_weighted_s` (the pairs in y order, as there) and, in the same pass,
    ``out[k] = sum_j w_j sign(x_k - x_j) sign(y_k - y_j)`` for the pair at place ``k`` (copies of k itself
    tie: 0), the weight of each y group in ``usize`` (with y untied only where ``usize`` is not empty: the
    groups' weights are then ``wy``) and of each x group in ``seen``.

    One pass over y groups in increasing order.  Before a group is added, the weights of each x group
    among the strictly smaller y values give k's smaller-y partners (``below`` concordant, ``above``
    discordant: ``f_k = below - above``, and ``S = sum_k w_k f_k``); after it is added, the same query
    (``below'``, ``above'``, now counting y values <= y_k) leaves the strictly larger-y partners to the
    final x-group totals: ``P(g) - below'`` with smaller x (discordant) and ``N - P(g) - t_g - above'``
    with larger x (concordant), ``P(g)`` the weight of the x groups below ``g`` and ``t_g`` of ``g``.
    So ``s_k = f_k + below' - above' + (N - 2 P(g_k) - t_{g_k})``: the last term is added once the pass
    is over.  (Knight 1966's counting, with the per-observation split of Brown & Benedetti 1977.)
    """
    n = gxy.shape[0]
    _clear(tree, seen, n_gx)
    s = 0
    ty2 = 0
    earlier = 0
    small = n_gx <= SMALL_K
    sizes = usize.shape[0] > 0  # with y untied a resample's y groups' weights are its counts: none kept
    if n_gy == n and small:
        # y untied in the data and few x values: one member per y group, so below' = below, above' = above
        # no branch on w_i = 0: their terms are 0, and their out[i] is set to 0 below
        for k in range(n):
            wi = np.int64(wy[k])
            if sizes:
                usize[k] = wi
            gi = gxy[k]
            below = _sum_below(seen, gi)
            f = 2 * below + seen[gi] - earlier
            s += wi * f
            out[k] = 2 * f
            ty2 += wi * (wi - 1)
            seen[gi] += wi
            earlier += wi
    elif n_gy == n:
        # y untied, many x values: the same with the tree, and a pair drawn 0 times skipped (its terms are
        # 0 and its out[k] is set to 0 below; the tree's accesses, not the branch, are what cost here)
        for k in range(n):
            wi = np.int64(wy[k])
            if sizes:
                usize[k] = wi
            if wi == 0:
                continue
            gi = gxy[k]
            f = 2 * _kernels._tree_below(tree, seen, n_gx, gi) + seen[gi] - earlier
            s += wi * f
            out[k] = 2 * f
            ty2 += wi * (wi - 1)
            _kernels._block_add(tree, n_gx, gi, wi)
            seen[gi] += wi
            earlier += wi
    else:
        for g in range(n_gy):  # every pair, drawn or not, as above
            c = 0
            for k in range(ys[g], ys[g + 1]):
                wi = np.int64(wy[k])
                gi = gxy[k]
                below = _sum_below(seen, gi) if small else _kernels._tree_below(tree, seen, n_gx, gi)
                f = 2 * below + seen[gi] - earlier
                s += wi * f
                out[k] = f
                c += wi
            _add_y_group(wy, gxy, ys[g], ys[g + 1], tree, seen, n_gx, small)
            earlier += c
            for k in range(ys[g], ys[g + 1]):
                gi = gxy[k]
                below = _sum_below(seen, gi) if small else _kernels._tree_below(tree, seen, n_gx, gi)
                out[k] += 2 * below + seen[gi] - earlier  # below' - above'
            usize[g] = c
            ty2 += c * (c - 1)
    # the larger-y partners' share that needs the final totals: N - 2 P(g) - t_g, per x group
    tx2 = 0
    prefix = 0
    for g in range(n_gx):
        tx2 += np.int64(seen[g]) * (np.int64(seen[g]) - 1)
        tree[g] = earlier - 2 * prefix - seen[g]
        prefix += np.int64(seen[g])
    for k in range(n):
        out[k] = out[k] + tree[gxy[k]] if wy[k] != 0 else 0
    return s, tx2 // 2, ty2 // 2


#: Above this n, :func:`_weighted_ase` with y tied makes its terms along y first and then sums them (one
#: random access per pair instead of three); up to it, and with y untied, in one pass in observation order.
ASE_TERMS_FIRST_ABOVE = 65_536


@njit(cache=True)
def _weighted_ase(wy, gxy, ys, n_gy, gy, gx, sk, tsize, usize, place, n, tx, ty, tau, term) -> float:
    """The delta-method ASE (see :func:`ase`) of the multiset with weights ``wy`` (``n`` copies in all), the
    pairs in y order as in :func:`_weighted_counts`: every copy of the pair at place ``k`` is a unit with
    concordance ``sk[k]`` and the weighted sizes ``tsize[gxy[k]]``, ``usize[q]`` of its tie groups (``q``
    its y group, ``gy[i]`` for observation ``i``; with y untied the group's weight is the pair's, ``wy[k]``,
    and ``usize`` and ``ys`` are not read); ``sum t^2 = 2 Tx + n`` and ``sum u^2 = 2 Ty + n``.  The
    terms are summed in observation order (``place[i]`` the place of observation ``i``), the order of the
    sum that gave the published tables; above :data:`ASE_TERMS_FIRST_ABOVE` pairs with y tied they are
    first made along y into ``term``.  With y untied they are made in observation order at every n, each
    pair's x group read in order (``gx[i]``, where ``gxy[place[i]]`` is a random access), so no ``term``
    array is needed: at n = 1,310,720 the same time per resample within the noise (7.8 against 8.6 ns per
    pair with x in 4 groups, 17.1 against 16.7 all distinct) and 10.5 MB less per part."""
    wr = float(n * n - (2 * tx + n))
    wc = float(n * n - (2 * ty + n))
    if wr == 0.0 or wc == 0.0:
        return np.nan
    ww = np.sqrt(wr * wc)
    total = 0.0
    # no branch on w_k = 0 (sk[k] is 0 there and d finite, so the term is exactly +0.0)
    untied_y = n_gy == place.shape[0]
    if place.shape[0] <= ASE_TERMS_FIRST_ABOVE:
        for i in range(place.shape[0]):
            k = place[i]
            u = np.int64(wy[k]) if untied_y else usize[gy[i]]
            d = 2.0 * ww * sk[k] + tau * (tsize[gxy[k]] * wc + u * wr)
            total += wy[k] * d * d
    elif untied_y:  # in observation order, pair i's x group read in order (gx[i] = gxy[place[i]])
        for i in range(place.shape[0]):
            k = place[i]
            d = 2.0 * ww * sk[k] + tau * (tsize[gx[i]] * wc + np.int64(wy[k]) * wr)
            total += wy[k] * d * d
    else:
        for q in range(n_gy):
            for k in range(ys[q], ys[q + 1]):
                d = 2.0 * ww * sk[k] + tau * (tsize[gxy[k]] * wc + usize[q] * wr)
                term[k] = wy[k] * d * d
    if place.shape[0] > ASE_TERMS_FIRST_ABOVE and not untied_y:
        for i in range(place.shape[0]):
            total += term[place[i]]
    var = (total - float(n) ** 3 * tau * tau * (wr + wc) ** 2) / ww**4
    return np.sqrt(max(var, 0.0))


@njit(cache=True)
def _places(order):
    """``place[order[k]] = k``: each observation's place in y order, 32-bit (n <= MAX_SAMPLE_SIZE < 2^31)."""
    place = np.empty(order.shape[0], np.int32)
    for k in range(order.shape[0]):
        place[order[k]] = k
    return place


@njit(cache=True)
def _row_concordance(gx, n_gx, gy, n_gy, out) -> None:
    """``out[i] = s_i`` of observation ``i`` of one row (all weights 1)."""
    n = gx.shape[0]
    yo, ys, gxy, tree, seen = _layout(gx, n_gx, gy, n_gy)
    sk = np.empty(n, np.int64)
    _weighted_counts(np.ones(n, np.int32), gxy, n_gx, ys, n_gy, sk, np.empty(n_gy, np.int64), tree, seen)
    for k in range(n):
        out[yo[k]] = sk[k]


@njit(cache=True, parallel=True)
def concordance_rows(gx, n_gx, gy, n_gy) -> np.ndarray:
    """``s_k`` of every observation of every row ``(m, n)``, int64."""
    m, n = gx.shape
    out = np.empty((m, n), np.int64)
    for r in prange(m):
        _row_concordance(gx[r], n_gx[r], gy[r], n_gy[r], out[r])
    return out


@njit(cache=True)
def _group_sizes(gid, n_groups, sizes) -> None:
    for g in range(n_groups):
        sizes[g] = 0
    for i in range(gid.shape[0]):
        sizes[gid[i]] += 1


@njit(cache=True, parallel=True)
def jackknife_rows(gx, n_gx, gy, n_gy) -> np.ndarray:
    """Exact leave-one-pair-out tau-b ``(m, n)`` from the ``s_k``; NaN where the rest has constant x or y."""
    m, n = gx.shape
    out = np.empty((m, n), np.float64)
    for r in prange(m):
        sk = np.empty(n, np.int64)
        _row_concordance(gx[r], n_gx[r], gy[r], n_gy[r], sk)
        tsize = np.empty(n_gx[r], np.int64)
        usize = np.empty(n_gy[r], np.int64)
        _group_sizes(gx[r], n_gx[r], tsize)
        _group_sizes(gy[r], n_gy[r], usize)
        s2 = 0
        for k in range(n):
            s2 += sk[k]
        tx = 0
        for g in range(n_gx[r]):
            tx += tsize[g] * (tsize[g] - 1) // 2
        ty = 0
        for g in range(n_gy[r]):
            ty += usize[g] * (usize[g] - 1) // 2
        for k in range(n):
            s_minus = s2 // 2 - sk[k]
            out[r, k] = _tau_from_counts(s_minus, tx - (tsize[gx[r, k]] - 1), ty - (usize[gy[r, k]] - 1), n - 1)
    return out


@njit(cache=True)
def _row_fixed(gx, n_gx, gy, n_gy, jack) -> tuple[float, float]:
    """tau-b of one row and its delta-method ASE (NaN where tau-b is undefined), and where ``jack`` is not
    empty the leave-one-pair-out values into it (as :func:`jackknife_rows`), from one layout and one pass
    for the ``s_k`` (:func:`_weighted_counts`; with every weight 1 ``seen`` and ``usize`` hold the x and y
    groups' sizes)."""
    return _row_fixed_into(gx, n_gx, gy, n_gy, jack, _fixed_work_in_kernel(gx.shape[0], n_gx, n_gy))


@njit(cache=True)
def _row_fixed_into(gx, n_gx, gy, n_gy, jack, work) -> tuple[float, float]:
    """:func:`_row_fixed` in the work arrays ``work`` (:func:`_fixed_work`)."""
    n = gx.shape[0]
    yo, ys, gxy, tree, seen, w, sk, usize, term = work
    untied_y = n_gy == n  # every y group's size is 1: ``ys`` and ``usize`` are empty
    _layout_into(gx, gy, n_gy, yo, ys, gxy)
    w[:] = 1
    s, tx, ty = _weighted_counts(w, gxy, n_gx, ys, n_gy, sk, usize, tree, seen)
    tau = _tau_from_counts(s, tx, ty, n)
    s2 = 0
    if jack.shape[0] > 0:
        for k in range(n):
            s2 += sk[k]
    if n > ASE_TERMS_FIRST_ABOVE:
        if untied_y:
            return tau, _fixed_in_order(gx, gy, sk, seen, s2, tx, ty, tau, jack)
        return tau, _fixed_along_y(yo, ys, n_gy, gxy, sk, seen, usize, s2, tx, ty, tau, jack, term)
    if jack.shape[0] > 0:
        for k in range(n):
            i = yo[k]
            u = 1 if untied_y else usize[gy[i]]
            jack[i] = _tau_from_counts(s2 // 2 - sk[k], tx - (seen[gx[i]] - 1), ty - (u - 1), n - 1)
    ase = _weighted_ase(w, gxy, ys, n_gy, gy, gx, sk, seen, usize, _places(yo), n, tx, ty, tau, term[:0])
    return tau, (ase if np.isfinite(tau) else np.nan)


def _fixed_work(n, n_gx, n_gy):
    """The work arrays of :func:`_row_fixed_into`: the layout's (:func:`_layout`; the order 32-bit, n <=
    MAX_SAMPLE_SIZE < 2^31), the weights (all 1: bytes), the ``s_k`` (32-bit: ``|s_k| < n``, the pass's
    partial values within ``3 n``), the y groups' sizes and the ASE's terms (only above
    :data:`ASE_TERMS_FIRST_ABOVE` pairs).  With y untied the groups' bounds and sizes are empty (each
    group is one pair), and above :data:`ASE_TERMS_FIRST_ABOVE` pairs the order and the terms too
    (:func:`_fixed_in_order`).  At n = 1,310,720 with y untied, 12 MB where 64-bit orders, counts and
    bounds and the terms took 63.  Called as Python, NumPy's arrays (a large dataset's:
    :func:`fixed_rows`); compiled, the kernel's (:data:`_fixed_work_in_kernel`)."""
    grouped_y = n_gy < n
    in_order = n > ASE_TERMS_FIRST_ABOVE and not grouped_y  # :func:`_fixed_in_order`: no order, no terms
    return (np.empty(0 if in_order else n, np.int32), np.empty(n + 1 if grouped_y else 0, np.int64),
            np.empty(n, np.int32), np.empty(n_gx + 1, np.int32), np.empty(n_gx, np.int32), np.empty(n, np.uint8),
            np.empty(n, np.int32), np.empty(n_gy if grouped_y else 0, np.int64),
            np.empty(n if n > ASE_TERMS_FIRST_ABOVE and grouped_y else 0, np.float64))  # fmt: skip


_fixed_work_in_kernel = njit(cache=True)(_fixed_work)


@njit(cache=True)
def _fixed_in_order(gx, gy, sk, tsize, s2, tx, ty, tau, jack) -> float:
    """:func:`_fixed_along_y` with y untied: pair ``i``'s place in y order is its y rank ``gy[i]``, so the
    pass goes in observation order, reads each pair's ``s_k`` at its place (one random access per pair, where
    the pass along y writes its leave-one-out value and its term at random places) and sums the terms as it
    goes, in observation order: the same sum, bit for bit, without the terms' array or the order.  Every y
    group's size is 1.  With the 32-bit and byte work arrays of :func:`_fixed_work`, :func:`fixed_rows` of
    one dataset at n = 1,310,720 takes 14 ms with x in 4 groups and 44 ms with x all distinct, against 26
    and 56 ms along y with 64-bit arrays (4.3 and 10.9 ms against 3.4 and 9.9 at 327,680)."""
    n = gx.shape[0]
    untied_x = tsize.shape[0] == n
    with_jack = jack.shape[0] > 0
    wr = float(n * n - (2 * tx + n))
    wc = float(n * n - (2 * ty + n))
    defined = wr != 0.0 and wc != 0.0
    ww = np.sqrt(wr * wc) if defined else 0.0
    total = 0.0
    for i in range(n):
        k = gy[i]
        t_g = 1 if untied_x else tsize[gx[i]]
        if with_jack:
            jack[i] = _tau_from_counts(s2 // 2 - sk[k], tx - (t_g - 1), ty, n - 1)
        d = 2.0 * ww * sk[k] + tau * (t_g * wc + 1 * wr)
        total += d * d
    if not defined or not np.isfinite(tau):
        return np.nan
    var = (total - float(n) ** 3 * tau * tau * (wr + wc) ** 2) / ww**4
    return np.sqrt(max(var, 0.0))


@njit(cache=True)
def _fixed_along_y(yo, ys, n_gy, gxy, sk, tsize, usize, s2, tx, ty, tau, jack, term) -> float:
    """:func:`_row_fixed` above :data:`ASE_TERMS_FIRST_ABOVE` pairs: the leave-one-pair-out values (where
    ``jack`` is not empty) and the ASE's terms in one pass along y, each written at its observation's place
    ``yo[k]``, so that the terms are then summed in observation order (the order of :func:`_weighted_ase`,
    whose value this is bit for bit) without the places' array; the pass reads every array in order and
    writes two at random places, where observation order would read five at random places.  With x untied
    every x group's size is 1, which the pass takes as known instead of reading it at each pair's group (at
    n = 1,310,720, 15.6 -> 6.7 ms; 2.4 -> 1.2 ms at 327,680).  Every weight is 1 (``w d^2`` there is
    ``d^2`` here); NaN where tau-b is undefined."""
    n = yo.shape[0]
    untied_x = tsize.shape[0] == n
    untied_y = n_gy == n  # one pair per y group, of size 1 (``ys`` and ``usize`` are empty)
    with_jack = jack.shape[0] > 0
    wr = float(n * n - (2 * tx + n))
    wc = float(n * n - (2 * ty + n))
    defined = wr != 0.0 and wc != 0.0
    ww = np.sqrt(wr * wc) if defined else 0.0
    for q in range(n_gy):
        u = 1 if untied_y else usize[q]
        ty_q = ty - (u - 1)
        for k in range(q if untied_y else ys[q], q + 1 if untied_y else ys[q + 1]):
            i = yo[k]
            t_g = 1 if untied_x else tsize[gxy[k]]
            if with_jack:
                jack[i] = _tau_from_counts(s2 // 2 - sk[k], tx - (t_g - 1), ty_q, n - 1)
            d = 2.0 * ww * sk[k] + tau * (t_g * wc + u * wr)
            term[i] = d * d
    if not defined or not np.isfinite(tau):
        return np.nan
    total = 0.0
    for i in range(n):
        total += term[i]
    var = (total - float(n) ** 3 * tau * tau * (wr + wc) ** 2) / ww**4
    return np.sqrt(max(var, 0.0))


@njit(cache=True, parallel=True)
def _fixed_rows(gx, n_gx, gy, n_gy, with_jack, on_z) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """tau-b ``(m,)``, with ``with_jack`` the leave-one-out values ``(m, n)`` (else ``(m, 0)``), and the ASE
    ``(m,)`` or with ``on_z`` the SE of ``atanh(tau-b)`` (:func:`_z_se_rows`), per row (:func:`_row_fixed`)."""
    m, n = gx.shape
    tau = np.empty(m, np.float64)
    jack = np.empty((m, n if with_jack else 0), np.float64)
    se = np.empty(m, np.float64)
    for r in prange(m):
        t, ase = _row_fixed(gx[r], n_gx[r], gy[r], n_gy[r], jack[r])
        tau[r] = t
        se[r] = ase
    return tau, jack, (_z_se_rows(tau, se) if on_z else se)


@njit(cache=True)
def _z_se_rows(tau, ase) -> np.ndarray:
    """The SE of ``atanh(tau-b)``, ``ASE / (1 - tau^2)`` per row (IEEE's quotient written out where
    ``1 - tau^2 = +0``: no warning when run as Python)."""
    out = np.empty(tau.shape[0], np.float64)
    for r in range(tau.shape[0]):
        d = 1 - tau[r] * tau[r]
        out[r] = ase[r] / d if d != 0 else (np.inf if ase[r] > 0 else np.nan)
    return out


def fixed_rows(gx, n_gx, gy, n_gy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """tau-b ``(m,)``, the leave-one-pair-out values ``(m, n)`` and the SE of ``atanh(tau-b)`` ``(m,)`` of
    each row from one layout and one pass for the ``s_k`` (:func:`_row_fixed`), equal bit for bit to
    :func:`tau_b_rows`, :func:`jackknife_rows` and :func:`z_se_rows`: what a dataset's bootstrap needs
    before its first resample.

    One row of more than :data:`simulation.engine._kernels.NUMPY_WORK_ABOVE` pairs is worked in arrays from
    NumPy (see there)."""
    m, n = gx.shape
    if m != 1 or n <= _kernels.NUMPY_WORK_ABOVE:
        return _fixed_rows(gx, n_gx, gy, n_gy, True, True)
    jack = np.empty((1, n), np.float64)
    tau, ase = _row_fixed_into(gx[0], n_gx[0], gy[0], n_gy[0], jack[0], _fixed_work(n, n_gx[0], n_gy[0]))
    return np.array([tau]), jack, _z_se_rows(np.array([tau]), np.array([ase]))


@njit(cache=True)
def ase_rows(gx, n_gx, gy, n_gy) -> np.ndarray:
    """Delta-method ASE of tau-b per row (see :func:`ase`); NaN where tau-b is undefined."""
    return _fixed_rows(gx, n_gx, gy, n_gy, False, False)[2]


@njit(cache=True)
def z_se_rows(gx, n_gx, gy, n_gy) -> np.ndarray:
    """The delta-method SE of ``atanh(tau-b)`` per row, ``ASE / (1 - tau^2)`` (the bootstrap-t's scale:
    :func:`bootstrap_rows`), from one pass that gives both; NaN where tau-b is undefined, inf at ``|tau| = 1``."""
    return _fixed_rows(gx, n_gx, gy, n_gy, False, True)[2]


@njit(cache=True, parallel=True)
def _jackknife_se_rows(jack) -> np.ndarray:
    out = np.empty(jack.shape[0], np.float64)
    for r in prange(jack.shape[0]):
        out[r] = _kernels.jackknife_se(jack[r])
    return out


@njit(cache=True, parallel=True)
def ordered_tau_rows(gx, n_gx, order, gy_sorted, n_gy) -> np.ndarray:
    """tau-b of rows whose y order is given: observation ``order[r, k]`` holds the ``k``-th smallest y, in y
    tie group ``gy_sorted[r, k]`` (non-decreasing in ``k``): the datasets of a mixing generator at one
    coefficient without building y (the power curves' common random numbers)."""
    m, n = gx.shape
    out = np.empty(m, np.float64)
    for r in prange(m):
        ys = np.empty(n + 1, np.int64)
        g = 0
        ys[0] = 0
        for k in range(1, n):
            if gy_sorted[r, k] != gy_sorted[r, k - 1]:
                g += 1
                ys[g] = k
        ys[g + 1] = n
        tree = np.empty(n_gx[r] + 1, np.int64)
        seen = np.empty(n_gx[r], np.int64)
        s, tx, ty = _weighted_s(np.ones(n, np.int32), _in_order(gx[r], order[r]), n_gx[r], ys, n_gy[r], tree, seen)
        out[r] = _tau_from_counts(s, tx, ty, n)
    return out


@njit(cache=True, parallel=True)
def permutation_null_rows(gx, n_gx, gy, n_gy, keys, n_perm) -> np.ndarray:
    """tau-b of ``n_perm`` random re-pairings of each row ``(m, n_perm)``, both variables' ties kept.

    Re-pairing ``p`` of row ``r`` pairs x of observation ``perm[j]`` with y of
    observation ``j``, ``perm`` from :func:`simulation.engine._kernels._permute`
    with key ``keys[r]`` (the same permutations Spearman's null uses for the
    same keys, so the two tests are paired too).  The tie totals do not
    change under re-pairing; only ``S`` is recomputed, O(n log k) each.
    """
    m, n = gx.shape
    out = np.empty((m, n_perm), np.float64)
    for r in range(m):
        # the row's y order once; each re-pairing's x groups are then written straight in y order (place k
        # holds y of observation yo[k] and x of perm[yo[k]]), so the count reads every array in order
        yo, ys, _, _, _ = _layout(gx[r], n_gx[r], gy[r], n_gy[r])
        yo32 = yo.astype(np.int32)  # 32-bit (n <= MAX_SAMPLE_SIZE < 2^31): fewer bytes at random places
        gx32 = gx[r].astype(np.int32)
        ones = np.ones(n, np.int32)
        for p in prange(n_perm):
            perm = np.empty(n, np.int32)
            _kernels._permute(keys[r, 0], keys[r, 1], p, _kernels.STREAM_PERMUTATION, perm)
            gxp = np.empty(n, np.int32)
            for k in range(n):
                gxp[k] = gx32[perm[yo32[k]]]
            tree = np.empty(n_gx[r] + 1, np.int32)
            seen = np.empty(n_gx[r], np.int32)
            s, tx, ty = _weighted_s(ones, gxp, n_gx[r], ys, n_gy[r], tree, seen)
            out[r, p] = _tau_from_counts(s, tx, ty, n)
    return out


# --------------------------------------------------------------------------
# Validated wrappers and formulas
# --------------------------------------------------------------------------
def tau_b(x: ArrayLike, y: ArrayLike) -> np.ndarray | float:
    """Kendall's tau-b of one dataset ``(n,)`` or of each row of ``(m, n)`` arrays, ties in both allowed.

    Equal to ``scipy.stats.kendalltau(x, y).statistic`` (variant ``"b"``); NaN where x or y is constant.
    """
    ndim = np.ndim(x)
    xa, ya = check_paired_data(np.atleast_2d(x), np.atleast_2d(y), ndim=2, min_n=2)
    out = tau_b_rows(*group_ids(xa, ya))
    return float(out[0]) if ndim == 1 else out


def jackknife(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Leave-one-pair-out tau-b of one dataset ``(n,)`` (exact, O(n log n))."""
    xa, ya = check_paired_data(x, y, ndim=1, min_n=3)
    return jackknife_rows(*group_ids(xa[None], ya[None]))[0]


def ase(x: ArrayLike, y: ArrayLike) -> float:
    """Delta-method standard error of tau-b (Brown & Benedetti 1977; Agresti 2010, §7.1).

    With ``w_r = n^2 - sum t^2``, ``w_c = n^2 - sum u^2``, ``w = sqrt(w_r w_c)``
    (tie groups of x and y; a value seen once is a group of 1):

        ASE^2 = {sum_k (2 w s_k + tau_b (t_k w_c + u_k w_r))^2 - n^3 tau_b^2 (w_r + w_c)^2} / w^4.
    """
    xa, ya = check_paired_data(x, y, ndim=1, min_n=3)
    return float(ase_rows(*group_ids(xa[None], ya[None]))[0])


def null_variance_s(x_counts: ArrayLike, y_counts: ArrayLike) -> float:
    """Exact permutation variance of ``S`` with tie groups of sizes ``x_counts`` and ``y_counts``.

    Kendall (1970), *Rank Correlation Methods*, eq. 4.4 (also in SciPy's
    ``kendalltau`` and R's ``cor.test``)::

        Var0(S) = [n(n-1)(2n+5) - sum t(t-1)(2t+5) - sum u(u-1)(2u+5)] / 18
                + [sum t(t-1)] [sum u(u-1)] / [2 n (n-1)]
                + [sum t(t-1)(t-2)] [sum u(u-1)(u-2)] / [9 n (n-1)(n-2)]
    """
    t = np.asarray(x_counts, dtype=np.float64)
    u = np.asarray(y_counts, dtype=np.float64)
    n = t.sum()
    if u.sum() != n or n < 3:
        raise ValueError(f"`x_counts` and `y_counts` must each sum to the same n >= 3, got {t.sum():g} and {u.sum():g}")
    v0 = n * (n - 1) * (2 * n + 5)
    vt = np.sum(t * (t - 1) * (2 * t + 5))
    vu = np.sum(u * (u - 1) * (2 * u + 5))
    v1 = np.sum(t * (t - 1)) * np.sum(u * (u - 1)) / (2 * n * (n - 1))
    v2 = np.sum(t * (t - 1) * (t - 2)) * np.sum(u * (u - 1) * (u - 2)) / (9 * n * (n - 1) * (n - 2))
    return float((v0 - vt - vu) / 18 + v1 + v2)


def normal_pvalue(x: ArrayLike, y: ArrayLike, alternative: str = "two-sided") -> float:
    """p-value of H0: independence from ``S / sqrt(Var0(S))`` against the standard normal (no continuity
    correction), the asymptotic test of SciPy's ``kendalltau`` and R's ``cor.test(exact = FALSE)``."""
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"`alternative` must be one of ['two-sided', 'greater', 'less'], got {alternative!r}")
    xa, ya = check_paired_data(x, y, ndim=1, min_n=3)
    gx, n_gx, gy, n_gy = group_ids(xa[None], ya[None])
    s = int(concordance_rows(gx, n_gx, gy, n_gy)[0].sum()) // 2
    var = null_variance_s(np.bincount(gx[0]), np.bincount(gy[0]))
    if var <= 0:
        return math.nan
    z = s / math.sqrt(var)
    if alternative == "greater":
        return float(stats.norm.sf(z))
    if alternative == "less":
        return float(stats.norm.cdf(z))
    return float(2 * stats.norm.sf(abs(z)))


def permutation_pvalues(
    x: ArrayLike, y: ArrayLike, *, n_perm: int = 9999, seed: int = 0, alternative: str = "two-sided"
) -> np.ndarray:
    """Permutation p-values of H0: independence for tau-b of each row of ``(m, n)`` arrays, ties in x and y
    kept: ``(1 + #{null as extreme as tau}) / (n_perm + 1)``, counting ties with the observed value as
    extreme (as :func:`simulation.power.curves.permutation_pvalues` does for Spearman, with the same streams: row
    ``r`` from ``child_seed(seed, r)``)."""

    xa, ya = check_paired_data(np.atleast_2d(x), np.atleast_2d(y), ndim=2, min_n=3)
    n_perm = check_positive_int(n_perm, "n_perm")
    check_alternative(alternative)
    groups = group_ids(xa, ya)
    nulls = permutation_null_rows(*groups, child_keys(seed, 0, xa.shape[0]), n_perm)
    return pvalues_rowwise(tau_b_rows(*groups), nulls, alternative)


def normal_critical_tau(x_counts: ArrayLike, y_counts: ArrayLike, alpha: float, alternative: str) -> float:
    """The ``|tau-b|`` at which the normal approximation ``S / sqrt(Var0(S))`` (:func:`normal_pvalue`) rejects at
    ``alpha``: ``z sqrt(Var0(S)) / sqrt((n0 - Tx)(n0 - Ty))`` for tie counts ``x_counts``, ``y_counts``."""
    t = np.asarray(x_counts, dtype=np.float64)
    u = np.asarray(y_counts, dtype=np.float64)
    n = t.sum()
    n0 = n * (n - 1) / 2
    den = math.sqrt((n0 - np.sum(t * (t - 1)) / 2) * (n0 - np.sum(u * (u - 1)) / 2))
    tail = alpha / 2 if alternative == "two-sided" else alpha
    return float(stats.norm.isf(tail) * math.sqrt(null_variance_s(t, u)) / den)


def fisher_z_ci(
    tau: ArrayLike, n: ArrayLike, *, confidence_level: float = 0.95, se: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fisher-z interval for Kendall's tau-b.

    Without ``se``: ``tanh(atanh tau -+ z sqrt(0.437 / (n - 4)))`` (Fieller,
    Hartley & Pearson 1957; recommended by Bonett & Wright 2000, Psychometrika
    65:23-28; derived for untied bivariate-normal samples).  With ``se`` (the
    ASE of tau-b): ``tanh(atanh tau -+ z se / (1 - tau^2))`` (the delta method
    through ``d atanh(t) / dt = 1 / (1 - t^2)``).
    """
    level = check_confidence_level(confidence_level)
    tau = _check_tau(tau)
    n = np.asarray(n)
    if np.any(n < 5):
        raise ValueError(f"`n` must be integer(s) >= 5 for Kendall's Fisher-z interval, got {n!r}")
    c = float(ndtri(1 - (1 - level) / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.arctanh(tau)
        half = c * (np.sqrt(FHP_KENDALL / (n - 4)) if se is None else np.asarray(se, float) / (1 - tau * tau))
        return np.tanh(z - half), np.tanh(z + half)


def ase_ci(tau: ArrayLike, se: ArrayLike, *, confidence_level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """``tau_b -+ z ASE`` on tau-b's own scale, clipped to [-1, 1] (what SAS PROC FREQ and DescTools print,
    unclipped): the clip changes no coverage of a truth inside [-1, 1], only the width.  ``tau`` must lie in
    [-1, 1] and ``se`` be >= 0 (NaN gives NaN); a ValueError names the value otherwise."""
    level = check_confidence_level(confidence_level)
    c = float(ndtri(1 - (1 - level) / 2))
    tau = _check_tau(tau)
    se = np.asarray(se, dtype=np.float64)
    if np.any(se[~np.isnan(se)] < 0):
        raise ValueError(f"`se` must be >= 0 (or NaN), got {se.tolist() if se.ndim else float(se)!r}")
    half = c * se
    return np.clip(tau - half, -1.0, 1.0), np.clip(tau + half, -1.0, 1.0)


def _check_tau(tau: ArrayLike) -> np.ndarray:
    """``tau`` as float64, each in [-1, 1] (past rounding: 1e-12) or NaN (an undefined estimate gives a NaN
    interval)."""
    tau = np.asarray(tau, dtype=np.float64)
    if np.any(np.abs(tau[~np.isnan(tau)]) > 1 + 1e-12):
        raise ValueError(f"`tau` must lie in [-1, 1] (or be NaN), got {tau.tolist() if tau.ndim else float(tau)!r}")
    return tau


def inputs_groups(inputs) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tie-group ids ``(gx, n_gx, gy, n_gy)`` of the datasets of a :class:`~simulation.models.generators.RankInputs`
    (y's group of each observation from its score's rank)."""
    gx = np.ascontiguousarray(inputs.x_group, dtype=np.int64)
    scores = np.asarray(inputs.y_score)
    rank = np.argsort(np.argsort(scores, axis=1, kind="stable"), axis=1, kind="stable")
    groups = np.broadcast_to(inputs.y_group_of_rank, scores.shape)
    gy = np.ascontiguousarray(np.take_along_axis(groups, rank, axis=1), dtype=np.int64)
    n_gx = np.ascontiguousarray(inputs.n_x_groups, dtype=np.int64)
    n_gy = np.ascontiguousarray(np.broadcast_to(inputs.n_y_groups, (scores.shape[0],)), dtype=np.int64)
    return gx, n_gx, gy, n_gy


def cheap_rows(inputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """tau-b, its jackknife SE and its ASE ``(m,)`` each, for the datasets of a ``RankInputs``."""
    tau, jack, ase = _fixed_rows(*inputs_groups(inputs), True, False)  # one pass for the three
    return tau, _jackknife_se_rows(jack), ase


def plackett_tau(theta: float, nodes: int = 400) -> float:
    """Kendall's tau of Plackett's copula with odds ratio ``theta``:
    ``tau = 1 - 4 int int dC/du dC/dv du dv`` (Nelsen 2006, *An Introduction to Copulas*, 2nd ed., Theorem
    5.1.1 / eq. 5.1.12), by Gauss-Legendre quadrature on ``nodes^2`` points (no closed form; the R package
    CopulaInference's ``tauplackett`` integrates the same way).  ``tau(1/theta) = -tau(theta)``."""
    if theta == 1.0:
        return 0.0
    x, wts = np.polynomial.legendre.leggauss(nodes)
    u = (x + 1) / 2
    w = wts / 2
    uu, vv = np.meshgrid(u, u, indexing="ij")
    a = theta - 1.0
    b = 1.0 + a * (uu + vv)
    root = np.sqrt(b * b - 4.0 * theta * a * uu * vv)
    # dC/du of C = (b - root) / (2a): (a - (b a - 2 theta a v) / root) / (2a) = (1 - (b - 2 theta v) / root) / 2
    du = (1.0 - (b - 2.0 * theta * vv) / root) / 2.0
    dv = (1.0 - (b - 2.0 * theta * uu) / root) / 2.0
    return float(1.0 - 4.0 * np.sum(w[:, None] * w[None, :] * du * dv))


def population_tau(rho: ArrayLike) -> np.ndarray:
    """Kendall's tau of an elliptical distribution (bivariate normal, bivariate t) with correlation
    (shape) parameter ``rho``: ``(2 / pi) asin(rho)`` (Lindskog, McNeil & Schmock 2003, "Kendall's tau for
    elliptical distributions", Theorem 2; Kruskal 1958 for the normal)."""
    return 2.0 / np.pi * np.arcsin(np.asarray(rho, dtype=np.float64))


# --------------------------------------------------------------------------
# The estimand of a scenario
# --------------------------------------------------------------------------
def truth(scenario, target_mcse: float = DEFAULT_TRUTH_MCSE, *, calibration=None) -> generators.Truth:
    """Kendall's tau-b estimand of ``scenario``'s data-generating process (the calibration stays on Spearman).

    ``population``: exact, the population tau of the continuous model
    (``(2/pi) asin`` of the latent correlation for the normal, the t and
    the untied Gaussian copula; Plackett by quadrature,
    :func:`plackett_tau`).  ``expected_sample``: the
    expected sample tau-b at the calibrated coefficient, measured like
    :func:`simulation.statistics.spearman.truth` on the same streams (the same datasets), with the same
    mixing control variate.
    """
    if scenario.estimand == "population":
        rho_s, model = float(scenario.rho), scenario.model
        if model.copula == "plackett":
            value = plackett_tau(model.plackett_theta(rho_s))
        else:  # elliptical (normal, t, untied Gaussian copula): tau of the latent correlation
            value = float(population_tau(model.latent(rho_s, scenario.df)))
        return generators.Truth(value, 0.0, 0)
    coefficient = (calibration or scenario.calibration()).coefficient
    return generators.expected_sample_spearman(
        scenario.generator, scenario.counts, coefficient, scenario._truth_seed(), target_mcse=target_mcse,
        pool=scenario.pool, estimates=lambda inputs: tau_b_rows(*inputs_groups(inputs)),
    )  # fmt: skip
