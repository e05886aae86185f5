"""Bootstrap engine: invariances, agreement with references, degenerate cases, errors."""

from __future__ import annotations

import math

import numba
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.stats import norm

from simulation import BOOTSTRAP_METHODS, bootstrap_ci_averaged, bootstrap_ci_single
from simulation.engine.intervals import bootstrap_intervals
from simulation.engine.seeding import child_seed
from simulation.inference.bootstrap import resample_indices
from tests import reference


def test_batch_and_fallback_are_bit_identical(tied_batch):
    x, y = tied_batch
    batch = bootstrap_ci_averaged(x, y, n_boot=300, confidence_level=0.9, seed=11, batch_bootstrap=True)
    fallback = bootstrap_ci_averaged(x, y, n_boot=300, confidence_level=0.9, seed=11, batch_bootstrap=False)
    pd.testing.assert_frame_equal(batch.replicates, fallback.replicates, check_exact=True)
    pd.testing.assert_frame_equal(batch.summary, fallback.summary, check_exact=True)


@pytest.mark.parametrize("chunk_size", [1, 5, 7, 100])
def test_chunk_size_does_not_change_results(tied_batch, chunk_size):
    x, y = tied_batch
    ref = bootstrap_ci_averaged(x, y, n_boot=200, seed=4, batch_bootstrap=True, chunk_size=12)
    got = bootstrap_ci_averaged(x, y, n_boot=200, seed=4, batch_bootstrap=True, chunk_size=chunk_size)
    pd.testing.assert_frame_equal(ref.replicates, got.replicates, check_exact=True)


def test_thread_count_does_not_change_results(tied_batch):
    x, y = tied_batch
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = bootstrap_ci_averaged(x, y, n_boot=200, seed=8, batch_bootstrap=True)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = bootstrap_ci_averaged(x, y, n_boot=200, seed=8, batch_bootstrap=True)
    finally:
        numba.set_num_threads(before)
    pd.testing.assert_frame_equal(one.replicates, many.replicates, check_exact=True)


def test_replicate_depends_only_on_seed_and_index(tied_batch):
    x, y = tied_batch
    full = bootstrap_ci_averaged(x, y, n_boot=150, seed=9).replicates
    single = bootstrap_ci_single(x[5], y[5], n_boot=150, seed=child_seed(9, 5))
    row = full[full["rep"] == 5].set_index("method")
    np.testing.assert_array_equal(row["ci_lower"].to_numpy(), single.intervals["ci_lower"].to_numpy())
    assert single.rho_hat == row["rho_hat"].iloc[0]


def test_same_seed_same_result_different_seed_different(tied_pair):
    x, y = tied_pair
    a = bootstrap_ci_single(x, y, n_boot=100, seed=1)
    b = bootstrap_ci_single(x, y, n_boot=100, seed=1)
    c = bootstrap_ci_single(x, y, n_boot=100, seed=2)
    pd.testing.assert_frame_equal(a.intervals, b.intervals, check_exact=True)
    assert not a.intervals["ci_lower"].equals(c.intervals["ci_lower"])


def test_intervals_equal_plain_numpy_formulas_on_same_resamples(tied_batch):
    """Every method against np.percentile and the textbook formulas on the very same resamples."""
    x, y = tied_batch
    n_boot, level = 400, 0.9
    res = bootstrap_ci_averaged(x, y, n_boot=n_boot, confidence_level=level, seed=21).replicates
    idx = resample_indices([child_seed(21, r) for r in range(x.shape[0])], n_boot, x.shape[1])
    for r in range(x.shape[0]):
        theta = reference.bootstrap_distribution(x[r], y[r], idx[r])
        theta_hat = reference.spearman_scipy(x[r], y[r])
        jack = reference.jackknife(x[r], y[r])
        ref = reference.intervals_numpy(theta, theta_hat, jack, level)
        z0, accel = reference.bca_parts(theta, theta_hat, jack)
        rows = res[res["rep"] == r].set_index("method")
        assert rows["z0"].iloc[0] == pytest.approx(z0, abs=1e-12)
        assert rows["acceleration"].iloc[0] == pytest.approx(accel, abs=1e-12)
        for method in BOOTSTRAP_METHODS:
            assert rows.loc[method, "status"] == "ok"
            got = (rows.loc[method, "ci_lower"], rows.loc[method, "ci_upper"])
            np.testing.assert_allclose(got, ref[method], rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["percentile", "basic", "BCa"])
def test_agrees_with_scipy_bootstrap_within_monte_carlo_error(method):
    """Independent resamples, so endpoints differ by Monte Carlo error only.

    The SD of a bootstrap quantile estimate is sqrt(p (1 - p) / B) / f(q_p)
    (Efron & Tibshirani 1993, §19.3); with a near-normal bootstrap
    distribution of SD s, f(q_p) = phi(z_p) / s.  The two estimates are
    independent, so their difference has sqrt(2) times that SD; we allow 4.5
    SDs: a two-sided false-alarm rate of 7e-6 per endpoint.
    """
    rng = np.random.default_rng(2018)
    x = reference.tied_x(rng, [19, 18, 18, 18])
    y = -0.15 * x + rng.normal(size=73)
    n_boot, level = 20000, 0.95
    ours = bootstrap_ci_single(x, y, n_boot=n_boot, confidence_level=level, seed=3)
    ref = stats.bootstrap(
        (x, y),
        reference.spearman_vectorized,
        paired=True,
        vectorized=True,
        n_resamples=n_boot,
        confidence_level=level,
        method=method,
        rng=np.random.default_rng(4),
    )
    p = (1 - level) / 2
    s = ref.standard_error
    tol = 4.5 * np.sqrt(2) * np.sqrt(p * (1 - p) / n_boot) * s / norm.pdf(norm.ppf(p))
    row = ours.intervals.loc[method.lower()]
    assert row["ci_lower"] == pytest.approx(ref.confidence_interval.low, abs=tol)
    assert row["ci_upper"] == pytest.approx(ref.confidence_interval.high, abs=tol)


def test_bca_agrees_with_scipy_on_skewed_data_where_its_corrections_are_large():
    """n = 16, x in 4 tied groups, y = exp(1.5 x + noise): r_s = 0.958, z0 = 0.31, a = -0.088, so BCa's
    lower endpoint sits 0.025 above the percentile one and a sign error in either correction moves it by
    0.025 (acceleration) or 0.16 (bias correction), far beyond the tolerance (checked below).

    Tolerance per endpoint, distribution-free (the bootstrap distribution of a rank correlation on 16
    tied pairs is discrete): each side is an independent B = 50,000 bootstrap whose endpoint is the
    order statistic near position alpha_1 B, alpha_1 = Phi(z0 + (z0 + z) / (1 - a (z0 + z))) (Efron &
    Tibshirani 1993, eq. 14.10).  That position has SD H = sqrt(B alpha_1 (1 - alpha_1) + (B d alpha_1)^2)
    (a sample quantile, plus z0's own Monte Carlo error sqrt(p0 (1 - p0) / B) / phi(z0) carried through
    d alpha_1 / d z0); the two positions differ by at most 4.5 sqrt(2) H with a false-alarm rate of 7e-6,
    so the endpoints differ by at most the spread of SciPy's order statistics over that window.
    """
    rng = np.random.default_rng(8)
    x = reference.tied_x(rng, [4, 4, 4, 4])
    y = np.exp(1.5 * x + 0.5 * rng.normal(size=16))
    n_boot, level = 50_000, 0.95
    ours = bootstrap_ci_single(x, y, n_boot=n_boot, confidence_level=level, seed=3)
    ref = stats.bootstrap(
        (x, y), reference.spearman_vectorized, paired=True, vectorized=True, n_resamples=n_boot,
        confidence_level=level, method="BCa", rng=np.random.default_rng(4),
    )  # fmt: skip
    theta = np.sort(ref.bootstrap_distribution)
    z0, a = ours.z0, ours.acceleration
    assert z0 > 0.25 and a < -0.07  # the corrections are large here

    def alpha_1(z0, a, z):
        w = z0 + z
        return norm.cdf(z0 + w / (1 - a * w))

    def order_statistic(position):
        return theta[min(max(int(round(position)), 0), n_boot - 1)]

    p0 = norm.cdf(z0)
    z0_se = math.sqrt(p0 * (1 - p0) / n_boot) / norm.pdf(z0)
    for z, got, expected in (
        (norm.ppf((1 - level) / 2), ours.intervals.loc["bca", "ci_lower"], ref.confidence_interval.low),
        (norm.ppf((1 + level) / 2), ours.intervals.loc["bca", "ci_upper"], ref.confidence_interval.high),
    ):
        p = alpha_1(z0, a, z)
        d_p = (alpha_1(z0 + 1e-4, a, z) - alpha_1(z0 - 1e-4, a, z)) / 2e-4 * z0_se
        window = 4.5 * math.sqrt(2) * math.sqrt(n_boot * p * (1 - p) + (n_boot * d_p) ** 2)
        tol = order_statistic(p * n_boot + window) - order_statistic(p * n_boot - window)
        assert got == pytest.approx(expected, abs=tol)
        # the comparison can fail: either sign error moves the endpoint beyond the tolerance
        for wrong in (alpha_1(-z0, a, z), alpha_1(z0, -a, z)):
            assert abs(np.quantile(theta, wrong) - expected) > tol


def test_summary_is_derived_from_ok_replicates(tied_batch):
    x, y = tied_batch
    res = bootstrap_ci_averaged(x, y, n_boot=120, seed=2)
    reps = res.replicates
    for method in BOOTSTRAP_METHODS:
        ok = reps[(reps["method"] == method) & (reps["status"] == "ok")]
        s = res.summary.loc[method]
        assert s["n_reps"] == x.shape[0]
        assert s["n_failed"] == x.shape[0] - len(ok)
        assert s["mean_ci_lower"] == pytest.approx(np.mean(ok["ci_lower"]), rel=1e-14)
        assert s["sd_ci_upper"] == pytest.approx(np.std(ok["ci_upper"], ddof=1), rel=1e-12)
        assert s["mean_width"] == pytest.approx(np.mean(ok["ci_upper"] - ok["ci_lower"]), rel=1e-14)


# ---------------------------------------------------------------- degenerate data


def test_constant_x_gives_nan_estimate_status_for_every_method():
    res = bootstrap_ci_single(np.ones(10), np.arange(10.0), n_boot=50, seed=0)
    assert np.isnan(res.rho_hat)
    assert (res.intervals["status"] == "nan_estimate").all()
    assert res.intervals[["ci_lower", "ci_upper"]].isna().all().all()


def test_dropped_resamples_are_counted_and_too_few_flagged():
    # One x value apart: a resample misses it with P = 0.8^5 = 0.33, so about
    # 1/3 of the resamples are dropped and counted, and intervals are still reported.
    res = bootstrap_ci_single([0.0, 0, 0, 0, 1], [1.0, 2, 3, 4, 5], n_boot=400, seed=1)
    assert 80 < res.n_boot - res.n_boot_valid < 200
    assert (res.intervals["status"].drop(["bca", "studentized"]) == "ok").all()
    # A resample holding the x = 1 pair and one repeated x = 0 pair has r* = 1, whose z is
    # infinite; such resamples are far more than 2.5% here, so the studentized interval is undefined.
    assert res.intervals.loc["studentized", "status"] == "studentized_infinite"
    # Leaving out the single x = 1 makes x constant: the jackknife, hence BCa, is undefined.
    assert np.isnan(res.acceleration)
    assert res.intervals.loc["bca", "status"] == "bca_accel_undefined"
    # x needs pair 3 and y needs pair 0: valid with P = 1 - 2(3/4)^4 + (1/2)^4 = 0.43 < 1/2.
    res = bootstrap_ci_single([0.0, 0, 0, 1], [1.0, 0, 0, 0], n_boot=400, seed=1)
    assert 120 < res.n_boot_valid < 200
    assert (res.intervals["status"] == "too_few_resamples").all()
    assert res.intervals[["ci_lower", "ci_upper"]].isna().all().all()


def test_constant_bootstrap_distribution_is_flagged():
    # Perfect monotone association: every valid resample has rho = 1.
    x = np.array([1.0, 2, 3, 4, 5, 6])
    res = bootstrap_ci_single(x, 2 * x, n_boot=100, seed=3)
    assert res.rho_hat == 1.0
    assert (res.intervals["status"] == "constant_bootstrap").all()
    assert res.intervals["ci_lower"].isna().all()


def test_bca_policy_on_synthetic_distributions():
    """BCa-only failures leave the other methods untouched and are never set to zero."""
    theta = np.array([[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]])
    theta_hat = np.array([0.25, 0.05])  # row 1: every resample above the estimate
    jack = np.array([[0.2, 0.2, 0.2, 0.2, 0.2], [0.1, 0.2, 0.3, 0.2, 0.25]])  # row 0: flat
    rows = bootstrap_intervals(theta, theta_hat, jack, 0.9)
    assert np.isnan(rows.acceleration[0]) and rows.z0[0] == 0.0
    assert rows.intervals["bca"][2].tolist() == ["bca_accel_undefined", "bca_bias_undefined"]
    assert np.isnan(rows.intervals["bca"][0]).all()
    assert rows.intervals["percentile"][2].tolist() == ["ok", "ok"]
    assert rows.intervals["percentile"][0][1] == pytest.approx(0.1 + 0.05 * 3 * 0.1, abs=1e-15)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"n_boot": 0}, ValueError, r"`n_boot` must be an integer >= 2, got 0"),
        ({"n_boot": 2.5}, TypeError, r"`n_boot` must be an integer"),
        ({"confidence_level": 1.0}, ValueError, r"`confidence_level` must be in \(0, 1\), got 1.0"),
        ({"confidence_level": -0.1}, ValueError, r"`confidence_level` must be in \(0, 1\)"),
        ({"seed": -3}, ValueError, r"`seed` must be a non-negative integer, got -3"),
        ({"seed": "a"}, TypeError, r"`seed` must be a non-negative integer or a numpy.random.SeedSequence"),
    ],
)
def test_single_argument_errors(tied_pair, kwargs, exc, match):
    x, y = tied_pair
    with pytest.raises(exc, match=match):
        bootstrap_ci_single(x, y, **({"n_boot": 10} | kwargs))


def test_data_errors():
    with pytest.raises(ValueError, match="same shape"):
        bootstrap_ci_single(np.arange(6.0), np.arange(7.0), n_boot=10)
    with pytest.raises(ValueError, match="`x` contains NaN"):
        bootstrap_ci_single([1.0, np.nan, 3, 4, 5], np.arange(5.0), n_boot=10)
    with pytest.raises(ValueError, match="`y` contains NaN or infinite"):
        bootstrap_ci_single(np.arange(5.0), [1.0, np.inf, 3, 4, 5], n_boot=10)
    with pytest.raises(ValueError, match=r"sample size n must be >= 4 .* got 3"):
        bootstrap_ci_single(np.arange(3.0), np.arange(3.0), n_boot=10)
    with pytest.raises(ValueError, match=r"`x` must have shape \(n_reps, n\)"):
        bootstrap_ci_averaged(np.arange(6.0), np.arange(6.0), n_boot=10)
    with pytest.raises(TypeError, match="`x` must be numeric"):
        bootstrap_ci_single(["a", "b", "c", "d"], np.arange(4.0), n_boot=10)


def test_averaged_argument_errors(tied_batch):
    x, y = tied_batch
    with pytest.raises(TypeError, match="`batch_bootstrap` must be True or False, got 1"):
        bootstrap_ci_averaged(x, y, n_boot=10, batch_bootstrap=1)
    with pytest.raises(ValueError, match="`chunk_size` must be an integer >= 1, got 0"):
        bootstrap_ci_averaged(x, y, n_boot=10, chunk_size=0)


def test_empty_batch_is_rejected():
    with pytest.raises(ValueError, match=r"at least one replicate \(n_reps >= 1\), got 0"):
        bootstrap_ci_averaged(np.zeros((0, 6)), np.zeros((0, 6)), n_boot=10)


# ---------------------------------------------------------------- studentized (bootstrap-t on Fisher's z)


def _studentized(theta: np.ndarray, theta_hat: float, level: float = 0.95):
    rows = bootstrap_intervals(theta[None, :], np.array([theta_hat]), np.linspace(-0.1, 0.1, 9)[None, :], level)
    lower, upper, status = (v[0] for v in rows.intervals["studentized"])
    return lower, upper, status


def test_studentized_equals_the_written_out_formula_even_when_t_is_not_monotone_in_r():
    """Near r_hat = -1, t* = (atanh r* - atanh r_hat) / sqrt(1 + r*^2/2) decreases in r* somewhere,
    so the kernel must sort t*; the reference keeps n in the SE to show that n - 3 cancels."""
    rng = np.random.default_rng(3)
    for theta_hat, spread in ((0.31, 0.1), (-0.99999, 1.5), (0.999999, 1.5)):
        theta = np.clip(theta_hat + spread * rng.standard_normal(999), -0.999, 0.999)
        t = (np.arctanh(np.sort(theta)) - np.arctanh(theta_hat)) / np.sqrt(1 + np.sort(theta) ** 2 / 2)
        monotone = bool(np.all(np.diff(t) >= 0))
        assert monotone == (theta_hat == 0.31), "the cases must cover both kernel branches"
        lower, upper, status = _studentized(theta, theta_hat)
        ref = reference.studentized_interval(theta, theta_hat, 57, 0.95)
        assert status == "ok"
        np.testing.assert_allclose((lower, upper), ref, rtol=0, atol=1e-12)


def test_studentized_with_resamples_at_plus_or_minus_one():
    """r* = 1 has t* = +inf; it keeps its rank.  Below alpha/2 of the resamples the interval is
    finite and equals the formula; above, the needed quantile is infinite and the status says so."""
    rng = np.random.default_rng(8)
    base = np.clip(0.6 + 0.15 * rng.standard_normal(1000), -0.99, 0.99)
    few = base.copy()
    few[:10] = 1.0  # 1% of the resamples
    lower, upper, status = _studentized(few, 0.6)
    assert status == "ok" and np.isfinite([lower, upper]).all()
    np.testing.assert_allclose((lower, upper), reference.studentized_interval(few, 0.6, 80, 0.95), atol=1e-12)
    many = base.copy()
    many[:60] = 1.0  # 6% > 2.5%: the 97.5% quantile of t* is +inf
    lower, upper, status = _studentized(many, 0.6)
    assert status == "studentized_infinite" and np.isnan(lower) and np.isnan(upper)
    minus = base.copy()
    minus[:60] = -1.0  # the 2.5% quantile of t* is -inf: again undefined
    assert _studentized(minus, 0.6)[2] == "studentized_infinite"
