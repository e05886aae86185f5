"""Kernels against slow references (SciPy) on heavily tied data and real resamples.

Sizes are small so that this file also runs with ``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from simulation import midranks, spearman_rho_2d
from simulation.engine import _kernels
from simulation.engine.ranks import group_ids
from simulation.engine.seeding import child_seed
from simulation.inference.bootstrap import resample_indices, resample_keys
from tests import reference


def _boot(x, y, seeds, n_boot):
    """The bootstrap kernel's ``(theta, resample controls)`` for rows ``x, y``."""
    ids = group_ids(x, y)
    return _kernels.bootstrap_rows(*ids, resample_keys(seeds), n_boot, _kernels.jackknife_rows(*ids), True)


def _hermite_1_to_4(t: np.ndarray) -> np.ndarray:
    return np.stack([t, t**2 - 1, t**3 - 3 * t, t**4 - 6 * t**2 + 3], axis=-1)


def test_resample_controls_match_a_slow_reference(tied_batch):
    # mean over resamples of He_k(T), T the standardized linear approximation sum_i w_i ell_i with
    # ell_i = mean(jack) - jack_i (centred), minus E He_k(T) from the moments of ell (exact formulas)
    x, y = tied_batch
    n_boot, n = 50, x.shape[1]
    seeds = [child_seed(5, r) for r in range(x.shape[0])]
    _, got = _boot(x, y, seeds, n_boot)
    idx = resample_indices(seeds, n_boot, n)
    for r in range(x.shape[0]):
        want = reference.resample_controls_reference(x[r], y[r], idx[r])
        np.testing.assert_allclose(got[r], want, rtol=0, atol=1e-9)


def test_resample_control_expectations_are_exact_by_enumeration():
    # n = 6: all 6^6 resamples enumerated; the mean of each control's function of T over them is its
    # expectation exactly (He_1..He_4, then sin and cos of w T and 2 w T)
    n = 6
    jack = np.array([0.1, 0.2, 0.15, 0.12, 0.18, 0.9])  # one outlier: skewed and heavy-tailed influence
    ell = np.empty(n)
    expect = np.zeros(_kernels.N_RESAMPLE_CONTROLS)
    scale = _kernels._influence_moments(jack, ell, expect)
    grid = np.stack(np.meshgrid(*[np.arange(n)] * n, indexing="ij"), axis=-1).reshape(-1, n)
    t = ell[grid].sum(axis=1) / scale
    w = _kernels.RESAMPLE_OMEGA
    trig = np.stack([np.sin(w * t), np.cos(w * t), np.sin(2 * w * t), np.cos(2 * w * t)], axis=-1)
    enumerated = np.concatenate([_hermite_1_to_4(t).mean(axis=0), trig.mean(axis=0)])
    np.testing.assert_allclose(enumerated, expect, rtol=0, atol=1e-12)
    assert expect[0] == expect[1] == 0.0 and min(abs(expect[2:])) > 0.01  # none trivially 0
    # the characteristic function's n-th power is not the Gaussian limit: the exactness is what is tested
    gaussian = [0.0, np.exp(-(w**2) / 2), 0.0, np.exp(-2 * w**2)]
    assert np.max(np.abs(expect[4:] - gaussian)) > 0.01


def test_resample_controls_are_zero_where_the_jackknife_is_undefined():
    # x has one value apart from the rest: leaving that pair out gives constant x (NaN jackknife value)
    x = np.array([[0.0, 0, 0, 0, 1, 0, 0, 0]])
    y = np.arange(8.0)[None, :]
    _, got = _boot(x, y, [child_seed(0, 0)], 30)
    np.testing.assert_array_equal(got, np.zeros((1, _kernels.N_RESAMPLE_CONTROLS)))


def test_midranks_equal_scipy_rankdata_on_ties():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 5, size=(20, 40)).astype(float)
    np.testing.assert_array_equal(midranks(a), stats.rankdata(a, method="average", axis=-1))
    np.testing.assert_array_equal(midranks(a[0]), stats.rankdata(a[0], method="average"))


def test_midranks_rejects_nan():
    with pytest.raises(ValueError, match="`a` contains NaN"):
        midranks([1.0, np.nan, 2.0])


@pytest.mark.parametrize("levels", [(2, 2), (4, 3), (4, 40), (10, 80)])
def test_spearman_rho_2d_matches_scipy_on_ties(levels):
    kx, ky = levels
    rng = np.random.default_rng(kx * 100 + ky)
    x = rng.integers(0, kx, size=(50, 80)).astype(float)
    y = rng.integers(0, ky, size=(50, 80)) + 0.3 * x
    got = spearman_rho_2d(x, y)
    ref = np.array([reference.spearman_scipy(x[i], y[i]) for i in range(50)])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


def test_spearman_constant_row_is_nan_not_zero():
    x = np.array([[1.0, 1, 1, 1, 1], [1, 2, 3, 4, 5], [1, 2, 2, 3, 3]])
    y = np.array([[1.0, 2, 3, 4, 5], [7, 7, 7, 7, 7], [5, 1, 4, 2, 2]])
    got = spearman_rho_2d(x, y)
    assert np.isnan(got[0]) and np.isnan(got[1])
    assert got[2] == pytest.approx(stats.spearmanr(x[2], y[2]).statistic, abs=1e-14)


def test_spearman_rho_2d_errors():
    with pytest.raises(ValueError, match="same shape"):
        spearman_rho_2d(np.zeros((2, 5)), np.zeros((2, 6)))
    with pytest.raises(ValueError, match=r"`x` must have shape \(n_reps, n\)"):
        spearman_rho_2d(np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="`y` contains NaN"):
        spearman_rho_2d(np.zeros((1, 5)), np.full((1, 5), np.inf))


def test_bootstrap_kernel_equals_scipy_on_actual_resamples(tied_batch):
    x, y = tied_batch
    n_boot = 40
    seeds = [child_seed(3, r) for r in range(x.shape[0])]
    got = _boot(x, y, seeds, n_boot)[0]
    idx = resample_indices(seeds, n_boot, x.shape[1])
    for r in range(x.shape[0]):
        ref = reference.bootstrap_distribution(x[r], y[r], idx[r])
        np.testing.assert_allclose(got[r], ref, rtol=0, atol=1e-12)


def test_bootstrap_kernel_drops_constant_resamples():
    # One x value apart: resamples that miss pair 4 have constant x and must be NaN.
    x = np.array([[0.0, 0, 0, 0, 1]])
    y = np.array([[1.0, 2, 3, 4, 5]])
    seeds = [child_seed(0, 0)]
    got = _boot(x, y, seeds, 60)[0][0]
    idx = resample_indices(seeds, 60, 5)[0]
    constant = ~np.any(idx == 4, axis=1)
    assert 5 < constant.sum() < 55
    np.testing.assert_array_equal(np.isnan(got), constant)
    ref = reference.bootstrap_distribution(x[0], y[0], idx)
    np.testing.assert_allclose(got[~constant], ref[~constant], rtol=0, atol=1e-14)


# Random123 known-answer vectors (kat_vectors): counter[4], key[2] -> output[4].
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize(("ctr", "key", "expected"), PHILOX_KAT)
def test_philox4x32_10_known_answers(ctr, key, expected):
    out = _kernels.philox4x32_10(*(np.uint64(c) for c in ctr), *(np.uint64(k) for k in key))
    assert tuple(int(v) for v in out) == expected


@pytest.mark.parametrize("n", [5, 7, 73])
def test_resample_indices_are_uniform(n):
    """Chi-square goodness of fit of the index distribution; false-alarm rate 1e-4 per n."""
    idx = resample_indices([child_seed(1, r) for r in range(4)], 2000, n)
    counts = np.bincount(idx.ravel(), minlength=n)
    assert counts.size == n
    assert stats.chisquare(counts).pvalue > 1e-4
    # successive draws are not associated: chi-square test of independence on (draw j, draw j+1)
    pairs = np.zeros((n, n))
    np.add.at(pairs, (idx[..., :-1].ravel(), idx[..., 1:].ravel()), 1)
    assert stats.chi2_contingency(pairs).pvalue > 1e-4


def test_replicate_streams_differ_and_are_reproducible():
    a = resample_indices([child_seed(1, 0), child_seed(1, 1)], 50, 30)
    b = resample_indices([child_seed(1, 1)], 50, 30)
    np.testing.assert_array_equal(a[1], b[0])
    assert np.mean(a[0] == a[1]) < 0.1  # independent streams agree on about 1/30 of draws


def test_jackknife_kernel_equals_scipy(tied_batch):
    x, y = tied_batch
    got = _kernels.jackknife_rows(*group_ids(x, y))
    for r in range(x.shape[0]):
        np.testing.assert_allclose(got[r], reference.jackknife(x[r], y[r]), rtol=0, atol=1e-12)


def test_quantile_kernel_equals_numpy_percentile():
    rng = np.random.default_rng(5)
    theta = np.sort(rng.normal(size=(3, 57)), axis=1)
    probs = np.array([[0.025, 0.975, 0.5, 0.0], [1.0, 0.3, 0.71, 0.0001], [0.5, 0.5, 0.5, 0.5]])
    got = _kernels.quantile_rows(theta, np.full(3, 57), probs)
    ref = np.array([np.percentile(theta[r], 100 * probs[r]) for r in range(3)])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-14)


def test_midranks_shape_error():
    with pytest.raises(ValueError, match=r"`a` must have shape \(n,\) or \(m, n\)"):
        midranks(np.zeros((2, 2, 2)))


@pytest.mark.parametrize("warm", [False, True])
def test_mixed_order_spearman_matches_scipy(warm):
    """Calibration kernel: y placed by the order of c*a + s*b (tied y from a sorted pool) vs SciPy."""
    rng = np.random.default_rng(12)
    m, n, c = 6, 25, 0.35
    x = rng.integers(0, 4, (m, n)).astype(float)
    a, b = rng.standard_normal((m, n)), rng.standard_normal((m, n))
    y_sorted = np.sort(rng.integers(0, 9, (m, n)).astype(float), axis=1)
    mixed = c * a + np.sqrt(1 - c * c) * b
    y = np.empty((m, n))
    np.put_along_axis(y, np.argsort(mixed, axis=1), y_sorted, axis=1)
    ax = 2 * _kernels.midranks_rows(x) - (n + 1)
    ay = 2 * _kernels.midranks_rows(y_sorted) - (n + 1)
    # warm: start from unrelated permutations, which the insertion sort must repair
    order = np.array([rng.permutation(n) for _ in range(m)], dtype=np.int64)
    got = _kernels.mixed_order_spearman_rows(c, a, b, ax, ay, order, warm)
    np.testing.assert_allclose(got, [reference.spearman_scipy(x[r], y[r]) for r in range(m)], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.take_along_axis(mixed, order, axis=1), np.sort(mixed, axis=1))


def test_mixed_order_spearman_far_warm_start_equals_cold():
    """A warm start from the reversed order (n^2 / 2 inversions, past the insertion sort's shift budget, so
    the row is sorted afresh) and from a nearly sorted one both give the cold result and order exactly."""
    rng = np.random.default_rng(5)
    m, n, c = 3, 400, -0.6
    x = rng.integers(0, 5, (m, n)).astype(float)
    a, b = rng.standard_normal((m, n)), rng.standard_normal((m, n))
    ax = 2 * _kernels.midranks_rows(x) - (n + 1)
    ay = np.tile(2 * np.arange(n, dtype=np.float64) + 1 - n, (m, 1))
    cold_order = np.zeros((m, n), dtype=np.int64)
    cold = _kernels.mixed_order_spearman_rows(c, a, b, ax, ay, cold_order, False)
    assert n * (n - 1) / 2 > _kernels.WARM_SHIFTS_PER_ELEMENT * n  # the reversed start exceeds the budget
    nearly = cold_order.copy()
    nearly[:, [10, 11]] = nearly[:, [11, 10]]
    for start in (cold_order[:, ::-1].copy(), nearly):
        got = _kernels.mixed_order_spearman_rows(c, a, b, ax, ay, start, True)
        np.testing.assert_array_equal(got, cold)
        np.testing.assert_array_equal(start, cold_order)


def _group_constant_rows(rng, m, n, k, tied_y):
    """Rows as the tied generators draw them: x in groups 0..k-1 (every group used once at least, one group
    of n - k + 1 where ``k`` is small), the score ``a`` and x's midrank deviation constant within a group."""
    x = np.concatenate([np.arange(k), rng.integers(0, k, n - k)]) if k > 2 else np.r_[np.zeros(n - 1), 1]
    x = np.array([rng.permutation(x) for _ in range(m)], dtype=np.int64)
    ax = 2 * _kernels.midranks_rows(x.astype(float)) - (n + 1)
    a = ax / n
    b = rng.standard_normal((m, n))
    y_sorted = np.sort(rng.integers(0, 7, (m, n)).astype(float), axis=1) if tied_y else None
    ay = (2 * _kernels.midranks_rows(y_sorted) - (n + 1) if tied_y
          else np.tile(2 * np.arange(n, dtype=np.float64) + 1 - n, (m, 1)))  # fmt: skip
    return x, a, b, ax, ay, y_sorted


@pytest.mark.parametrize("k", [2, 3, 7, _kernels.MERGE_MAX_GROUPS])
@pytest.mark.parametrize("tied_y", [False, True])
def test_merged_spearman_matches_scipy_and_the_sort_bit_for_bit(k, tied_y):
    """The merge of x's groups (the scores sorted within each group once) against SciPy on the datasets it
    stands for, and bit for bit against the sorting kernel, over coefficients of both signs and 0; one
    group of n - 1 at k = 2."""
    rng = np.random.default_rng(40 + k + 100 * tied_y)
    m, n = 5, 60
    x, a, b, ax, ay, y_sorted = _group_constant_rows(rng, m, n, k, tied_y)
    bg, starts, a_group, ax_group, sxx, syy, ok = _kernels.group_sorted_noise(a, b, ax, ay, x, k)
    assert ok
    np.testing.assert_array_equal(np.diff(starts, axis=1), [np.bincount(row, minlength=k) for row in x])
    for c in (0.0, 0.3, -0.71, 0.97):
        got = _kernels.merged_spearman_rows(c, bg, starts, a_group, ax_group, ay, sxx, syy)
        order = np.zeros((m, n), dtype=np.int64)
        np.testing.assert_array_equal(got, _kernels.mixed_order_spearman_rows(c, a, b, ax, ay, order, False))
        mixed = c * a + np.sqrt(1 - c * c) * b
        y = np.empty((m, n))
        np.put_along_axis(y, np.argsort(mixed, axis=1), y_sorted if tied_y else np.arange(n) + np.zeros((m, 1)),
                          axis=1)  # fmt: skip
        np.testing.assert_allclose(got, [reference.spearman_scipy(x[r], y[r]) for r in range(m)], rtol=0,
                                   atol=1e-12)  # fmt: skip


def test_group_sorted_noise_refuses_a_score_that_varies_within_a_group():
    """A score not constant within x's groups (the Gaussian copula's latent x) is reported, so the caller
    sorts instead."""
    rng = np.random.default_rng(8)
    x, a, b, ax, ay, _ = _group_constant_rows(rng, 3, 30, 4, False)
    a = a.copy()
    a[1, 7] += 1e-9
    assert not _kernels.group_sorted_noise(a, b, ax, ay, x, 4)[-1]


def test_indices_beyond_16_bits_use_whole_words_and_stay_uniform():
    """n > 2^16 takes the 32-bit Lemire path: every index in range, counts uniform over 8 bins (chi2, FA 1e-4)."""
    n = 70_001
    idx = resample_indices([np.random.SeedSequence(9)], 2, n)[0].ravel()
    assert idx.min() >= 0 and idx.max() < n
    counts = np.bincount(idx * 8 // n, minlength=8)
    assert stats.chisquare(counts).pvalue > 1e-4


def test_jackknife_equals_direct_leave_one_out_bit_for_bit():
    """The O(n k) jackknife equals Spearman of each leave-one-out sample exactly (integer arithmetic),
    with ties in x and y, untied y, and samples that become constant (NaN)."""
    rng = np.random.default_rng(31)
    for _ in range(60):
        n = int(rng.integers(4, 25))
        x = rng.integers(0, int(rng.integers(1, n + 1)), n).astype(float)
        y = rng.standard_normal(n) if rng.random() < 0.4 else rng.integers(0, int(rng.integers(1, n + 1)), n) * 1.0
        jack = _kernels.jackknife_rows(*group_ids(x[None], y[None]))[0]
        direct = [spearman_rho_2d(np.delete(x, i)[None], np.delete(y, i)[None])[0] for i in range(n)]
        np.testing.assert_array_equal(jack, direct)


def test_jackknife_equals_direct_leave_one_out_bit_for_bit_for_every_tie_pattern_up_to_n_300():
    """The O(n log n) jackknife (Fenwick trees over x's groups) against the direct leave-one-out Spearman, bit
    for bit, at sizes where x has many groups: all distinct in both, ties in both, one group of n - 1 in x
    (its removal leaves x constant: NaN) or in y, x in two groups, and y untied with x in many groups."""
    rng = np.random.default_rng(83)
    for n in (40, 150, 300):
        patterns = {
            "distinct": (rng.permutation(n).astype(float), rng.standard_normal(n)),
            "both tied": (rng.integers(0, n // 3, n).astype(float), rng.integers(0, n // 4, n).astype(float)),
            "x: one group of n - 1": (np.r_[np.zeros(n - 1), 1.0], rng.standard_normal(n)),
            "y: one group of n - 1": (rng.standard_normal(n), np.r_[np.ones(n - 1), 2.0]),
            "x in two groups": (rng.integers(0, 2, n).astype(float), rng.integers(0, n // 2, n).astype(float)),
            "x many groups, y untied": (rng.integers(0, n // 2, n).astype(float), rng.standard_normal(n)),
        }
        for name, (x, y) in patterns.items():
            jack = _kernels.jackknife_rows(*group_ids(x[None], y[None]))[0]
            direct = [spearman_rho_2d(np.delete(x, i)[None], np.delete(y, i)[None])[0] for i in range(n)]
            np.testing.assert_array_equal(jack, direct, err_msg=f"{name}, n = {n}")


def test_bootstrap_replicates_equal_scipy_with_tied_and_untied_x_and_y():
    """Each resample's rho from the y-ordered counts equals SciPy's Spearman of the resampled pairs, for
    few, many and all-distinct x values, tied and untied y, and n around the 8 draws a Philox block gives (the engine
    draws two blocks at a time while more than 8 indices are missing)."""
    rng = np.random.default_rng(47)
    for case in range(24):
        n = [7, 8, 9, 16, 17, 30][case % 6]
        x = rng.integers(0, [2, 4, n][case % 3], n).astype(float)
        y = rng.standard_normal(n) if case % 2 else rng.integers(0, 3, n).astype(float)
        seeds = [child_seed(11, case)]
        theta, _ = _boot(x[None], y[None], seeds, 40)
        idx = resample_indices(seeds, 40, n)[0]
        np.testing.assert_allclose(theta[0], reference.bootstrap_distribution(x, y, idx), rtol=0, atol=1e-12)
    for case in range(12):  # x untied (its layout: xs is 0..n, xp the inverse of gxy), y tied and untied
        n = [7, 8, 9, 16, 17, 30][case % 6]
        x = rng.standard_normal(n)
        y = rng.integers(0, 3, n).astype(float) if case < 6 else rng.standard_normal(n)
        seeds = [child_seed(12, case)]
        theta, _ = _boot(x[None], y[None], seeds, 40)
        idx = resample_indices(seeds, 40, n)[0]
        np.testing.assert_allclose(theta[0], reference.bootstrap_distribution(x, y, idx), rtol=0, atol=1e-12)


def test_score_ranks_count_and_fall_back_to_a_stable_sort_on_ties():
    scores = np.array([[0.3, -1.0, 2.5, 0.0], [1.0, 1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(_kernels.score_ranks_rows(scores), [[2, 0, 3, 1], [1, 2, 0, 3]])


def test_cheap_statistics_equal_spearman_and_jackknife_se(tied_batch):
    x, y = tied_batch
    gx, n_gx, gy, n_gy = group_ids(x, y)
    # y given by scores whose ranks are y's (ties broken by position) and y's tie group of each rank
    order = np.argsort(y, axis=1, kind="mergesort")
    scores = np.empty_like(y)
    np.put_along_axis(scores, order, np.arange(y.shape[1], dtype=float)[None, :].repeat(len(y), 0), axis=1)
    group_of_rank = np.take_along_axis(gy, order, axis=1)
    rho, se = _kernels.cheap_statistics_rows(gx, n_gx, scores, group_of_rank, n_gy, True)
    np.testing.assert_array_equal(rho, _kernels.spearman_rows(gx, n_gx, gy, n_gy))
    jack = _kernels.jackknife_rows(gx, n_gx, gy, n_gy)
    ref = np.sqrt((x.shape[1] - 1) / x.shape[1] * ((jack - jack.mean(1, keepdims=True)) ** 2).sum(1))
    np.testing.assert_allclose(se, ref, rtol=1e-12)
    no_se = _kernels.cheap_statistics_rows(gx, n_gx, scores, group_of_rank, n_gy, False)
    np.testing.assert_array_equal(no_se[0], rho)
    assert np.isnan(no_se[1]).all()


def test_cheap_statistics_with_untied_y_and_many_x_groups_equal_the_direct_jackknife():
    """The untied-y kernel (y's ranks in closed form, Fenwick trees over x's groups) against the jackknife
    SE of the direct leave-one-out values, with x in few, many and all-distinct groups."""
    rng = np.random.default_rng(19)
    for n, k in ((30, 3), (120, 60), (200, 200)):
        x = rng.integers(0, k, (4, n)).astype(float)
        y = rng.standard_normal((4, n))
        gx, n_gx, gy, n_gy = group_ids(x, y)
        assert (n_gy == n).all()
        rho, se = _kernels.cheap_statistics_rows(gx, n_gx, y, np.tile(np.arange(n), (4, 1)), n_gy, True)
        for r in range(4):
            direct = np.array([spearman_rho_2d(np.delete(x[r], i)[None], np.delete(y[r], i)[None])[0]
                               for i in range(n)])  # fmt: skip
            expected = np.sqrt((n - 1) / n * ((direct - direct.mean()) ** 2).sum())
            assert se[r] == pytest.approx(expected, rel=1e-12), (n, k, r)
            assert rho[r] == spearman_rho_2d(x[r][None], y[r][None])[0]


def test_column_moments_equal_numpy():
    values = np.random.default_rng(2).normal(size=(37, 4)) + [1.0, -3.0, 0.0, 50.0]
    mean, m2 = np.empty(4), np.empty((4, 4))
    _kernels.column_moments(values, mean, m2)
    np.testing.assert_allclose(mean, values.mean(0), rtol=1e-14)
    np.testing.assert_allclose(m2 / 36, np.cov(values, rowvar=False), rtol=1e-12)


@pytest.mark.parametrize(
    "seed",
    [
        0,
        2**40 + 3,
        np.random.SeedSequence([3, 2**33, 7]),
        np.random.SeedSequence([1, 2, 3, 4, 5, 6, 7, 8, 9]),
        np.random.SeedSequence(123, pool_size=8),
        child_seed(child_seed(np.random.SeedSequence([20180201, 4, 5, 6, 7]), 1), 4),
    ],
)
def test_child_keys_equal_numpy_seed_sequence(seed):
    """The kernel's SeedSequence hashing gives the keys NumPy gives each child (entropy of any length,
    big integers, other pool sizes, nested spawn keys)."""
    from simulation.engine.seeding import child_keys

    want = resample_keys([child_seed(seed, r) for r in range(300)])
    np.testing.assert_array_equal(child_keys(seed, 0, 300), want)
    np.testing.assert_array_equal(child_keys(seed, 120, 130), want[120:130])


def test_resample_controls_off_leave_the_resamples_unchanged(tied_batch):
    x, y = tied_batch
    ids = group_ids(x, y)
    keys = resample_keys([child_seed(6, r) for r in range(x.shape[0])])
    jack = _kernels.jackknife_rows(*ids)
    theta_on, on = _kernels.bootstrap_rows(*ids, keys, 30, jack, True)
    theta_off, off = _kernels.bootstrap_rows(*ids, keys, 30, jack, False)
    np.testing.assert_array_equal(theta_on, theta_off)
    assert np.all(off == 0) and np.all(np.any(on != 0, axis=1))


def test_sample_size_limit_of_the_exact_integer_sums():
    """Just below the limit the exact-integer kernel equals SciPy; above it the boundary refuses (beyond
    2,097,151 the int64 sums wrap silently: the kernel then returns NaN or a wrong value)."""
    from scipy import stats

    from simulation.core.validation import MAX_SAMPLE_SIZE, check_paired_data
    from simulation.models.generators import rank_statistics, score_rank_inputs

    rng = np.random.default_rng(3)
    x = rng.normal(size=MAX_SAMPLE_SIZE)
    y = 0.3 * x + rng.normal(size=MAX_SAMPLE_SIZE)
    r, _ = rank_statistics(score_rank_inputs(x[None], y[None]), jackknife=False)
    assert r[0] == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    check_paired_data(x, y, ndim=1)
    big = np.zeros(MAX_SAMPLE_SIZE + 1)
    with pytest.raises(ValueError, match=r"sample size n must be at most 2,000,000 .*got 2,000,001"):
        check_paired_data(big, big, ndim=1)


KNOWN_INDICES = [[9, 2, 4, 2, 1, 8, 0, 7, 0, 7], [8, 5, 8, 1, 9, 0, 7, 2, 6, 6]]


def test_reference_philox_matches_the_published_known_answers():
    for ctr, key, expected in PHILOX_KAT:
        assert reference.philox4x32_10(ctr, key) == expected


@pytest.mark.parametrize("n", [5, 8, 9, 17, 73, 40_000, 65_536, 70_001])
def test_resample_indices_equal_the_written_out_stream(n):
    """The engine's indices equal Philox + Lemire written out in Python integers, draw for draw.  At
    n = 40,000 Lemire rejects 39% of the 16-bit words (2^16 mod n = 25,536), so dropping the rejection
    step, or the order of the half-words, changes most draws; 70,001 takes the 32-bit path."""
    seeds = [np.random.SeedSequence(2026), child_seed(7, 3)]
    n_boot = 3 if n < 1000 else 1
    got = resample_indices(seeds, n_boot, n)
    for r, seed in enumerate(seeds):
        key = tuple(int(k) for k in seed.generate_state(2, np.uint32))
        for b in range(n_boot):
            assert got[r, b].tolist() == reference.resample_draws(key, b, n), (n, r, b)


def test_resample_index_known_answer_vector():
    """A pinned vector (computed once with ``reference.resample_draws`` from the key
    ``SeedSequence(2026).generate_state(2, uint32)``): catches a change of the key derivation or counter
    layout that the engine and a reference could share."""
    got = resample_indices([np.random.SeedSequence(2026)], 2, 10)[0]
    assert got.tolist() == KNOWN_INDICES


@pytest.mark.parametrize("n", [3, 5, 7, 73, 40_000, 65_535])
def test_lemire_acceptance_is_exactly_uniform_over_every_16_bit_word(n):
    """Brute force over all 2^16 words: after rejection every index in [0, n) comes from exactly
    floor(2^16 / n) words (Lemire 2019, Theorem 1): the exact uniformity that rejection buys."""
    nn = np.uint64(n)
    threshold = (np.uint64(1 << 16) - nn) % nn
    draws = np.zeros(1, np.int64)
    counts = np.zeros(n, np.int64)
    for word in range(1 << 16):
        if _kernels._lemire_accept(np.uint64(word), nn, threshold, draws, 0, _kernels._MASK16, _kernels._SHIFT16):
            counts[draws[0]] += 1
    assert (counts == (1 << 16) // n).all()


@pytest.mark.parametrize("statistic", ["spearman", "kendall_b"])
def test_one_row_split_in_parts_equals_the_row_in_a_batch_bit_for_bit(statistic):
    """A single dataset's resamples are split into parts across threads (:func:`resample_parts`, at most one
    per thread); each resample, the studentized values and the resample controls (summed in resample order)
    equal those of the same dataset computed as one row of a batch, where it is not split, whatever the
    threads the kernel is told it runs on (1, 3: parts of unequal size, 16)."""
    from simulation.statistics import kendall
    from simulation.statistics.statistic import get_statistic

    stat = get_statistic(statistic)
    rng = np.random.default_rng(17)
    m, n, n_boot = 20, 90, 203  # 203 resamples: parts of unequal size
    x = rng.integers(0, 5, (m, n)).astype(float)
    y = np.round(rng.standard_normal((m, n)) + 0.3 * x, 1)
    keys = resample_keys([np.random.SeedSequence(3 + r) for r in range(m)])
    assert _kernels.resample_parts(1, n_boot) == _kernels.RESAMPLE_TASKS and _kernels.resample_parts(m, n_boot) == 1
    assert _kernels.resample_parts(1, n_boot, 3) == 3
    ids = group_ids(x, y)
    jack = stat.jackknife_rows(*ids)
    estimate = stat.estimate_rows(*ids)
    batch = stat.bootstrap_rows(*ids, keys, n_boot, jack, True, estimate)
    for r in (0, 7, 19):
        one = stat.bootstrap_rows(*(a[r : r + 1] for a in ids), keys[r : r + 1], n_boot, jack[r : r + 1], True,
                                  estimate[r : r + 1])  # fmt: skip
        for got, want in zip(one, batch, strict=True):
            if want is not None:
                np.testing.assert_array_equal(got[0], want[r])
        row = tuple(a[r : r + 1] for a in ids) + (keys[r : r + 1], n_boot)
        for threads in (1, 3, 16):
            if statistic == "spearman":
                theta, controls = _kernels._bootstrap_rows(*row, jack[r : r + 1], True, threads)
                np.testing.assert_array_equal(controls[0], batch[1][r])
            else:
                theta, t_star = kendall._bootstrap_rows(*row, True, estimate[r : r + 1], threads)
                np.testing.assert_array_equal(t_star[0], batch[2][r])
            np.testing.assert_array_equal(theta[0], batch[0][r])


@pytest.mark.parametrize("rows", ["one", "one, sorted on threads", "many"])
def test_group_ids_by_numpy_sort_equal_the_kernels_and_dense_ranks(monkeypatch, rows):
    """Long rows (and one dataset) are ordered by NumPy's sort and then numbered: the ids equal the kernel's
    merge-sort path and SciPy's dense ranks - 1, ties (with -0.0 beside 0.0) in x and y; one dataset's x
    and y sorted on threads (:func:`ranks._orders`) give the same ids."""
    import numba

    from simulation.engine import ranks

    monkeypatch.setattr(ranks, "NUMPY_SORT_FROM", 8)  # every row counts as long
    n = 50
    if rows == "one, sorted on threads":
        monkeypatch.setattr(ranks, "THREADED_SORT_FROM", 8)
        both = np.random.default_rng(4).standard_normal((2, n))
        np.testing.assert_array_equal(np.concatenate(ranks._orders(both[:1], both[1:], 2)), np.argsort(both, axis=1))
    rng = np.random.default_rng(3)
    m = 4 * numba.get_num_threads() if rows == "many" else 1
    x = rng.integers(-2, 3, (m, n)).astype(float)
    x[x == 0] = rng.choice([0.0, -0.0], size=int((x == 0).sum()))
    y = np.round(rng.standard_normal((m, n)), 1)
    gx, n_gx, gy, n_gy = ranks.group_ids(x, y)
    for a, g, n_g in ((x, gx, n_gx), (y, gy, n_gy)):
        ref, n_ref = _kernels.group_ids_rows(a)
        np.testing.assert_array_equal(g, ref)
        np.testing.assert_array_equal(n_g, n_ref)
        np.testing.assert_array_equal(g, stats.rankdata(a, method="dense", axis=1) - 1)


def test_a_resample_count_past_255_is_detected_and_counted_again_in_int32():
    """A resample's counts are bytes (:func:`_kernels._place_counts`): with every observation sent to one
    place its count, n = 300, wraps, the total falls short of n, and the same draws counted in int32 put
    all n at that place; with a row's real places every count fits and equals the drawn indices' counts at
    their places (:func:`_kernels.resample_indices`, which fills an n-long array)."""
    n = 300
    key = resample_keys([7])[0]
    ell, sums = np.empty(0), np.empty(4)
    w = np.zeros(n, np.uint8)
    assert not _kernels._place_counts(key, 0, np.zeros(n, np.int32), _kernels.draw_buffer(), w, ell, sums)
    wide = np.zeros(n, np.int32)
    assert _kernels._place_counts(key, 0, np.zeros(n, np.int32), _kernels.draw_buffer(), wide, ell, sums)
    assert wide[0] == n and not wide[1:].any()
    place = np.random.default_rng(1).permutation(n).astype(np.int32)
    assert _kernels._place_counts(key, 3, place, _kernels.draw_buffer(), w, ell, sums)
    idx = resample_indices([7], 4, n)[0, 3]
    np.testing.assert_array_equal(w, np.bincount(place[idx], minlength=n))


@pytest.mark.parametrize("n", [300, 303, 65_537])
def test_counts_drawn_in_chunks_equal_the_whole_draw_and_its_linear_approximation_bit_for_bit(n):
    """:func:`_kernels._place_counts` draws a resample a chunk at a time: for chunks of 1, 16 and 4,096
    indices (seams inside Philox blocks, 16-bit halves up to n = 2^16 and 32-bit words above), int32 and
    byte counts, its counts equal those of the whole draw (:func:`_kernels.resample_indices`), and its four
    partial sums equal the sums written out here and give :func:`_kernels._resample_t` of the whole draw's
    places, bit for bit (n % 4 of 0 and 3: the last draws go to sum 0)."""
    key = resample_keys([7])[0]
    place = np.random.default_rng(1).permutation(n).astype(np.int32)
    rng = np.random.default_rng(2)
    ell = rng.standard_normal(n)
    idx = resample_indices([7], 2, n)[0]
    want = np.zeros((2, 4))  # written out: draw g to sum g % 4, the last n % 4 to sum 0, in draw order
    for b in range(2):
        for g, i in enumerate(idx[b]):
            want[b, g % 4 if g < n - n % 4 else 0] += ell[place[i]]
    for chunk in (1, 16, 4096) if n < 1000 else (4096,):
        for b in range(2):
            for dtype in (np.int32, np.uint8):
                w, sums = np.zeros(n, dtype), np.empty(4)
                assert _kernels._place_counts(key, b, place, _kernels.draw_buffer(chunk), w, ell, sums)
                np.testing.assert_array_equal(w, np.bincount(place[idx[b]], minlength=n))
                whole = _kernels._resample_t(ell, place[idx[b]].astype(np.int32), 1.5)
                assert ((sums[0] + sums[1]) + (sums[2] + sums[3])) / 1.5 == whole, (chunk, b, dtype)
                np.testing.assert_array_equal(sums, want[b])


@pytest.mark.skipif(
    __import__("os").environ.get("NUMBA_DISABLE_JIT") == "1", reason="600,000 pairs: compiled kernels only"
)
def test_pairs_below_in_both_variables_equal_kendalls_concordance_counts_past_every_level():
    """:func:`_kernels._count_below` at n = 600,000 (three superblocks of 2^18 ranks, so every level of its
    running totals is read past its first entry; the leave-one-out tests reach only the first superblock):
    for untied x and y, pair i's concordance count is ``s_i = 4 B_i + n - 1 - 2 q_i - 2 p_i`` (``B_i`` the
    pairs below it in both variables, ``q_i``, ``p_i`` its y and x ranks), with ``s_i`` from Kendall's own
    counting (:func:`simulation.statistics.kendall.concordance_rows`, a tree over the x groups)."""
    from simulation.statistics import kendall

    n = 600_000
    rng = np.random.default_rng(17)
    x = rng.standard_normal(n)
    y = x + rng.standard_normal(n)
    ids = group_ids(x[None], y[None])
    gx, gy = ids[0][0], ids[2][0]
    assert ids[1][0] == n and ids[3][0] == n
    yo = np.empty(n, np.int64)
    yo[gy] = (np.arange(n, dtype=np.int64) << 32) | gx
    below = np.empty(n, np.int64)
    _kernels._count_below(yo, n, below)
    s = kendall.concordance_rows(*ids)[0]
    want = (s - n + 1 + 2 * gy + 2 * gx) // 4
    np.testing.assert_array_equal(below[gy], want)


def test_spearman_of_counts_past_255_equals_scipy_on_the_repeated_pairs():
    """The int32 path of a resample (a count past 255) and the byte path give Spearman's rho of the
    multiset: SciPy's on the pairs repeated by their counts, tied and untied y, few and many x groups."""
    rng = np.random.default_rng(255)
    n = 300
    for kx, tied_y in ((3, False), (40, True), (0, False)):
        x = rng.integers(0, kx, n).astype(float) if kx else rng.standard_normal(n)
        y = np.round(rng.standard_normal(n), 1) if tied_y else rng.standard_normal(n)
        gx, n_gx, gy, n_gy = (a[0] for a in group_ids(x[None], y[None]))
        pos, gxy, xp, xs, ys = _kernels._row_layout(gx, n_gx, gy, n_gy)
        for big in (False, True):
            # a resample of n draws; with big, 260 of them are pair 5 (a count past a byte's 255)
            counts = np.bincount(rng.integers(0, n, n - 260 * big), minlength=n)
            counts[5] += 260 * big
            wide = np.zeros(n, np.int32)
            wide[pos] = counts
            ax = np.empty(_kernels._deviation_slots(n_gx), np.int32)
            got = _kernels._rho_grouped(wide, n, xp, xs, n_gx, gxy, ys, n_gy, ax)
            want = stats.spearmanr(np.repeat(x, counts), np.repeat(y, counts)).statistic
            assert got == pytest.approx(want, abs=1e-12), (kx, tied_y, big)
            assert (counts.max() > 255) == big
            if not big:
                assert _kernels._rho_grouped(wide.astype(np.uint8), n, xp, xs, n_gx, gxy, ys, n_gy, ax) == got


def test_spearman_resamples_counted_in_bytes_equal_int32_bit_for_bit():
    """Above ``BYTE_COUNTS_ABOVE`` pairs Spearman's resamples are counted in bytes: here called directly at
    n = 300, the byte kernel's rho and linear approximations (the controls' input) equal the int32 kernel's
    bit for bit, few and many x groups, tied and untied y; with every pair sent to one place (each count
    past 255) the byte kernel counts again in int32 and still agrees."""
    rng = np.random.default_rng(256)
    n, n_boot = 300, 12
    key = resample_keys([9])[0]
    for kx, tied_y in ((3, False), (40, True), (0, False)):
        x = rng.integers(0, kx, n).astype(float) if kx else rng.standard_normal(n)
        y = np.round(rng.standard_normal(n), 1) if tied_y else rng.standard_normal(n)
        ids = group_ids(x[None], y[None])
        gx, n_gx, gy, n_gy = (a[0] for a in ids)
        setup = _kernels._resample_setup(gx, n_gx, gy, n_gy, _kernels.jackknife_rows(*ids)[0], True)
        assert setup[7] > 0  # the linear approximations are computed
        for s in (setup, (np.zeros(n, np.int32),) + setup[1:]):
            out, t = np.full(n_boot, np.nan), np.zeros(n_boot)
            _kernels._resample_range(key, 0, n_boot, n_gx, n_gy, s, out, t)  # n = 300: int32
            results = [(out, t)]
            for dtype in (np.int32, np.uint8):
                out, t = np.full(n_boot, np.nan), np.zeros(n_boot)
                _kernels._resample_counted(key, 0, n_boot, n_gx, n_gy, s, out, t, np.zeros(n, dtype))
                results.append((out, t))
            for out, t in results[1:]:
                np.testing.assert_array_equal(out, results[0][0])
                np.testing.assert_array_equal(t, results[0][1])
        assert np.isfinite(results[0][0]).sum() == 0  # one place: x constant in every resample
