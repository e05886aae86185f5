"""A statistic of your own through the engine (simulation.statistics.custom), and Pearson's r built that way."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numba import njit
from scipy import stats
from scipy.stats import norm

from simulation import bootstrap_ci_averaged, bootstrap_ci_single
from simulation.cli.parser import main
from simulation.core.validation import RunError
from simulation.engine.seeding import child_keys, child_seed
from simulation.inference.bootstrap import resample_indices, resample_keys
from simulation.models.scenarios import Scenario, load_study
from simulation.power.curves import PowerSettings, power_curve, run_power_study
from simulation.statistics import custom, pearson
from simulation.statistics.statistic import PEARSON, Statistic, get_statistic
from simulation.study.runner import run_all_ci_scenarios
from tests import reference, userstats

VALIDATION = load_study("validation")
SMOKE = load_study("smoke")


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.array([stats.pearsonr(a, b).statistic for a, b in zip(x, y, strict=True)])


# --------------------------------------------------------------------------
# Pearson's r against SciPy and written-out references
# --------------------------------------------------------------------------
def test_pearsons_o_n_jackknife_equals_a_written_out_deletion_for_every_tie_pattern():
    """Pearson's leave-one-out values from the full data's centred sums (O(n)) against each deletion written
    out (NumPy's correlation of the n - 1 remaining pairs), n up to 300: untied, ties in x, in both, x with one
    group of n - 1 (its removal leaves x constant: NaN), y likewise, and an outlier carrying nearly all of x's
    spread (recomputed directly).  Within 1e-12: both sides round differently, by about eps |mean| / sd."""
    rng = np.random.default_rng(41)
    for n in (5, 40, 300):
        base = rng.standard_normal(n)
        cases = {
            "untied": (base, 0.4 * base + rng.standard_normal(n)),
            "x tied": (np.round(2 * base), rng.standard_normal(n)),
            "both tied": (rng.integers(0, 4, n) * 1.0, rng.integers(0, 3, n) * 1.0),
            "x: one group of n - 1": (np.r_[np.zeros(n - 1), 1.0], rng.standard_normal(n)),
            "y: one group of n - 1": (rng.standard_normal(n), np.r_[np.full(n - 1, 3.0), 7.0]),
            "outlier": (np.r_[1e6, base[1:]], rng.standard_normal(n)),
        }
        for name, (x, y) in cases.items():
            got = PEARSON.jackknife_rows(*PEARSON.inputs(x[None], y[None]))[0]
            expected = []
            for j in range(n):
                a, b = np.delete(x, j), np.delete(y, j)
                expected.append(np.nan if np.ptp(a) == 0 or np.ptp(b) == 0 else np.corrcoef(a, b)[0, 1])
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12, err_msg=f"{name}, n = {n}")


def test_pearson_estimate_jackknife_and_replicates_equal_scipy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 25))
    y = 0.4 * x + rng.standard_t(3, size=(3, 25))
    xp, yp = PEARSON.inputs(x, y)
    np.testing.assert_allclose(PEARSON.estimate_rows(xp, yp), _pearson_rows(x, y), rtol=0, atol=1e-12)
    keep = ~np.eye(25, dtype=bool)
    jack = np.array([[stats.pearsonr(x[r][k], y[r][k]).statistic for k in keep] for r in range(3)])
    np.testing.assert_allclose(PEARSON.jackknife_rows(xp, yp), jack, rtol=0, atol=1e-12)
    seeds = [child_seed(5, r) for r in range(3)]
    estimate = PEARSON.estimate_rows(xp, yp)
    theta, _, t_star = PEARSON.bootstrap_rows(xp, yp, resample_keys(seeds), 40, jack, False, estimate)
    idx = resample_indices(seeds, 40, 25)
    expected = np.array([[stats.pearsonr(x[r][i], y[r][i]).statistic for i in idx[r]] for r in range(3)])
    np.testing.assert_allclose(theta, expected, rtol=0, atol=1e-12)
    assert t_star.shape == theta.shape and np.isfinite(t_star).all()


def _delta_se(x: np.ndarray, y: np.ndarray) -> float:
    """The delta-method SE of r written with NumPy central moments (mu_jk / sd^(j+k))."""
    u, v = (x - x.mean()) / x.std(), (y - y.mean()) / y.std()
    r = np.mean(u * v)
    m = {jk: np.mean(u ** jk[0] * v ** jk[1]) for jk in [(4, 0), (0, 4), (2, 2), (3, 1), (1, 3)]}
    var = (r * r / 4 * (m[4, 0] + m[0, 4] + 2 * m[2, 2]) + m[2, 2] - r * (m[3, 1] + m[1, 3])) / x.size
    return math.sqrt(var)


def test_pearson_se_equals_numpy_moments_and_the_normal_closed_form():
    rng = np.random.default_rng(2)
    x = rng.exponential(size=50)
    y = x + rng.normal(size=50)
    ones = np.ones(50, np.int64)
    assert pearson.pearson_se(x, y, ones) == pytest.approx(_delta_se(x, y), rel=1e-12)
    counts = rng.multinomial(50, np.full(50, 1 / 50)).astype(np.int64)
    rep = np.repeat(np.arange(50), counts)
    assert pearson.pearson_se(x, y, counts) == pytest.approx(_delta_se(x[rep], y[rep]), rel=1e-12)
    # bivariate normal, population moments: (1 - rho^2) / sqrt(n); n = 200,000 leaves sampling error ~0.3%
    rho, n = 0.6, 200_000
    a, b = rng.normal(size=(2, n))
    xs, ys = a, rho * a + math.sqrt(1 - rho**2) * b
    got = pearson.pearson_se(xs, ys, np.ones(n, np.int64)) * math.sqrt(n)
    assert got == pytest.approx(1 - rho**2, rel=0.02)


@pytest.mark.slow
def test_pearson_se_matches_the_spread_of_r_under_heavy_tails(size_factor):
    """Under a bivariate t with 10 df (finite fourth moments, far from normal-theory SE), the mean delta
    SE matches the SD of r over independent datasets.  The SD estimate of N datasets has relative SE
    about sqrt(1 / (2 N)) (plus the kurtosis of r, small at n = 1000); allow 4.5 of them (false-alarm rate
    about 7e-6) plus 1% for the delta method's O(1/n) bias."""
    n_sets, n = 2000 * size_factor, 1000
    rng = np.random.default_rng(3)
    z = rng.normal(size=(n_sets, 2, n))
    w = np.sqrt(10 / rng.chisquare(10, size=(n_sets, 1, n)))
    x, y = z[:, 0] * w[:, 0], (0.5 * z[:, 0] + math.sqrt(0.75) * z[:, 1]) * w[:, 0]
    xp, yp = PEARSON.inputs(x, y)
    r = PEARSON.estimate_rows(xp, yp)
    se = custom.estimate_rows(xp, yp, pearson.pearson_se)
    normal_theory = (1 - 0.25) / math.sqrt(n)
    assert np.mean(se) > 1.1 * normal_theory  # heavy tails: the normal-theory SE would be far off
    assert np.std(r, ddof=1) / np.mean(se) == pytest.approx(1.0, abs=4.5 * math.sqrt(1 / (2 * n_sets)) + 0.01)


@pytest.mark.parametrize("method", ["percentile", "basic", "BCa"])
def test_pearson_bootstrap_agrees_with_scipy_bootstrap(method):
    """scipy.stats.bootstrap with pearsonr as its statistic, 20,000 resamples each, independent streams:
    endpoints agree within 4.5 sqrt(2) sample-quantile SDs (false-alarm rate 7e-6 per endpoint, as
    test_bootstrap's Spearman comparison)."""
    rng = np.random.default_rng(2018)
    x = rng.normal(size=60)
    y = 0.3 * x + rng.standard_t(5, size=60)
    n_boot, level = 20_000, 0.95
    ours = bootstrap_ci_single(x, y, n_boot=n_boot, confidence_level=level, seed=3, statistic="pearson")
    ref = stats.bootstrap(
        (x, y), lambda a, b, axis: stats.pearsonr(a, b, axis=axis).statistic, paired=True, vectorized=True,
        n_resamples=n_boot, confidence_level=level, method=method, rng=np.random.default_rng(4),
    )  # fmt: skip
    assert ours.rho_hat == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    p = (1 - level) / 2
    tol = 4.5 * math.sqrt(2) * math.sqrt(p * (1 - p) / n_boot) * ref.standard_error / norm.pdf(norm.ppf(p))
    row = ours.intervals.loc[method.lower()]
    assert row["ci_lower"] == pytest.approx(ref.confidence_interval.low, abs=tol)
    assert row["ci_upper"] == pytest.approx(ref.confidence_interval.high, abs=tol)


def test_pearson_intervals_equal_written_out_formulas_on_the_same_resamples():
    """All five bootstrap intervals from np.percentile and plain formulas on the engine's resample indices,
    the studentized one with the NumPy delta SE; Fisher's z with 1 / (n - 3) (Fisher 1921)."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=30)
    y = 0.5 * x + rng.normal(size=30)
    res = bootstrap_ci_single(x, y, n_boot=500, seed=9, statistic="pearson")
    idx = resample_indices([9], 500, 30)[0]
    theta = np.array([stats.pearsonr(x[i], y[i]).statistic for i in idx])
    keep = ~np.eye(30, dtype=bool)
    jack = np.array([stats.pearsonr(x[k], y[k]).statistic for k in keep])
    r = stats.pearsonr(x, y).statistic
    ref = reference.intervals_numpy(theta, r, jack, 0.95)
    for method in ("percentile", "basic", "bca", "normal"):
        assert res.intervals.loc[method, "ci_lower"] == pytest.approx(ref[method][0], abs=1e-12)
        assert res.intervals.loc[method, "ci_upper"] == pytest.approx(ref[method][1], abs=1e-12)
    se_star = np.array([_delta_se(x[i], y[i]) for i in idx])
    t = np.sort((np.arctanh(theta) - np.arctanh(r)) / (se_star / (1 - theta**2)))
    t_lo, t_hi = np.percentile(t, [2.5, 97.5])
    z_se = _delta_se(x, y) / (1 - r * r)
    lo, hi = math.tanh(math.atanh(r) - t_hi * z_se), math.tanh(math.atanh(r) - t_lo * z_se)
    assert res.intervals.loc["studentized", "ci_lower"] == pytest.approx(lo, abs=1e-12)
    assert res.intervals.loc["studentized", "ci_upper"] == pytest.approx(hi, abs=1e-12)
    c = norm.ppf(0.975)
    lo_f, hi_f = PEARSON.asymptotic_ci("fisher_z_pearson", np.array([r]), None, 30, 0.95)
    assert lo_f[0] == pytest.approx(math.tanh(math.atanh(r) - c / math.sqrt(27)), abs=1e-14)
    assert hi_f[0] == pytest.approx(math.tanh(math.atanh(r) + c / math.sqrt(27)), abs=1e-14)


def test_pearson_truth_is_the_population_correlation_for_normal_and_t():
    normal = next(s for s in VALIDATION if s.generator == "bivariate_normal" and s.rho != 0)
    assert pearson.population_r(normal) == pytest.approx(2 * math.sin(math.pi * normal.rho / 6), abs=1e-15)
    t = next(s for s in VALIDATION if s.generator == "bivariate_t" and s.rho != 0)
    # the t model's latent correlation: a long simulation of Pearson's r of its data
    x, y = t.generate(4000, 1)
    r = np.corrcoef(x.ravel(), y.ravel())[0, 1]  # one pooled sample of 4000 n pairs
    assert pearson.population_r(t) == pytest.approx(r, abs=0.02)
    assert pearson.population_r(next(s for s in SMOKE if s.tied)) is None


# --------------------------------------------------------------------------
# The mechanism: a user Spearman equals the built-in one
# --------------------------------------------------------------------------
def test_user_spearman_replicates_equal_the_builtin_kernel(tied_batch):
    """Same resample indices, same formula: replicate values and every interval within 1e-12 (not bit-
    identical: the user statistic sums its midranks in another order)."""
    x, y = tied_batch
    ours = bootstrap_ci_averaged(x, y, n_boot=300, seed=4, statistic=userstats.USER_SPEARMAN)
    builtin = bootstrap_ci_averaged(x, y, n_boot=300, seed=4)
    a, b = ours.replicates, builtin.replicates
    assert list(a["method"]) == list(b["method"])
    for column in ("rho_hat", "ci_lower", "ci_upper", "z0", "acceleration"):
        np.testing.assert_allclose(a[column], b[column], rtol=0, atol=1e-12, equal_nan=True)
    assert list(a["status"]) == list(b["status"])


def test_user_spearman_study_equals_the_builtin_study_on_continuous_models():
    """The whole coverage table, both phases and the control variates: equal to 1e-12 (relative for the
    variance-ratio diagnostics, which are about 7; the continuous models' cheap datasets are the same
    whole datasets, so the two phases see the same data)."""
    scenarios = [s for s in VALIDATION if s.n >= 30][:2]
    opts = {"n_reps": 120, "n_boot": 100, "seed": 3, "n_jobs": 1}
    builtin = run_all_ci_scenarios(scenarios, **opts).coverage
    ours = run_all_ci_scenarios(scenarios, statistics=[userstats.USER_SPEARMAN], **opts).coverage
    ours = ours[ours["method"].isin(builtin["method"])].reset_index(drop=True)
    assert list(ours["method"]) == list(builtin["method"])
    numeric = [c for c in builtin.columns if pd.api.types.is_float_dtype(builtin[c])]
    # at rho = 0 the built-in's expected estimate is exactly 0 (odd symmetry); the user statistic, not declared
    # odd-symmetric, has it measured: the centre and what is scored against it differ there only
    centred = ["coverage_centre", "coverage_centre_mcse", "coverage_bias_eliminated", "coverage_bias_eliminated_mcse"]
    nonzero = (builtin["rho"] != 0).to_numpy()
    assert nonzero.any()
    for column in numeric:
        rows = nonzero if column in centred else np.ones(len(builtin), bool)
        np.testing.assert_allclose(ours[column][rows], builtin[column][rows], rtol=1e-12, atol=1e-12, equal_nan=True,
                                   err_msg=column)


def test_user_spearman_bootstrap_rows_equal_the_builtin_on_tied_models():
    """Tied-x models: the bootstrap phase (without control variates) equals the built-in's to 1e-12;
    the cheap phase draws whole datasets for a statistic of the values, not Spearman's rank-only ones,
    so what it estimates (the mean estimate, bias, SE) is not compared."""
    scenarios = [s for s in SMOKE if s.tied][:2]
    opts = {"n_reps": 80, "n_boot": 100, "seed": 3, "n_jobs": 1, "control_variates": False,
            "methods": ["percentile", "basic", "bca", "normal", "studentized"]}  # fmt: skip
    builtin = run_all_ci_scenarios(scenarios, **opts).coverage
    ours = run_all_ci_scenarios(scenarios, statistics=[userstats.USER_SPEARMAN], **opts).coverage
    for column in ("coverage", "coverage_mcse", "mean_width", "miss_below", "miss_above", "rho_true"):
        np.testing.assert_allclose(ours[column], builtin[column], rtol=0, atol=1e-12, err_msg=column)


def test_slow_path_equals_fast_path():
    """Pearson as a vectorized Python function (SciPy) with a NumPy SE: the same intervals as the numba
    Pearson on the same resamples, and a warning that says how much slower it measured."""

    def r_numpy(x, y, axis=-1):
        return stats.pearsonr(x, y, axis=axis).statistic

    def se_numpy(x, y, axis=-1):
        return np.array([_delta_se(a, b) for a, b in zip(np.atleast_2d(x), np.atleast_2d(y), strict=True)])

    slow = Statistic.from_callable(r_numpy, name="pearson_numpy", se=se_numpy,
                                   z_variances={"pearson": pearson.fisher_variance})  # fmt: skip
    rng = np.random.default_rng(6)
    x = rng.normal(size=(3, 20))
    y = x + rng.normal(size=(3, 20))
    with pytest.warns(UserWarning, match=r"pearson_numpy.*slower per resample"):
        a = bootstrap_ci_averaged(x, y, n_boot=200, seed=2, statistic=slow).replicates
    b = bootstrap_ci_averaged(x, y, n_boot=200, seed=2, statistic="pearson").replicates
    assert list(a["method"]) == list(b["method"])
    for column in ("rho_hat", "ci_lower", "ci_upper", "acceleration"):
        np.testing.assert_allclose(a[column], b[column], rtol=0, atol=1e-12, err_msg=column)
    keys = child_keys(1, 0, 3)
    xp, yp = slow.inputs(x, y)
    np.testing.assert_allclose(slow.user.permutation_rows(xp, yp, keys, 50),
                               PEARSON.user.permutation_rows(xp, yp, keys, 50), rtol=0, atol=1e-12)  # fmt: skip


def test_user_permutation_null_equals_the_builtin_spearman_null(tied_batch):
    """The user kernel's re-pairings are the ones Spearman's permutation null uses for the same keys."""
    from simulation.engine import _kernels
    from simulation.engine.ranks import midranks

    x, y = tied_batch
    keys = child_keys(7, 0, x.shape[0])
    xp, yp = userstats.USER_SPEARMAN.inputs(x, y)
    ours = userstats.USER_SPEARMAN.user.permutation_rows(xp, yp, keys, 200)
    ax, ay = 2 * (midranks(x) - (x.shape[1] + 1) / 2), 2 * (midranks(y) - (x.shape[1] + 1) / 2)
    builtin = _kernels.permutation_null_rows(ax, ay, keys, 200)
    np.testing.assert_allclose(ours, builtin, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------
# Runs, power, analyze
# --------------------------------------------------------------------------
def test_pearson_in_a_study_run_has_its_methods_and_truths():
    normal = [s for s in VALIDATION if s.generator == "bivariate_normal"][:2]
    res = run_all_ci_scenarios(normal, n_reps=60, n_boot=80, statistics="spearman,pearson", n_jobs=1)
    cov = res.coverage
    p = cov[cov["statistic"] == "pearson"]
    assert list(dict.fromkeys(p["method"])) == [*PEARSON.bootstrap_methods, "fisher_z_pearson", "fisher_z_se"]
    for s in normal:
        truth = p.loc[p["scenario"] == s.key, "rho_true"]
        assert (truth == pearson.population_r(s)).all()
    assert res.provenance["identity"]["statistic_digests"] == {"pearson": PEARSON.digest}


def test_a_statistic_that_is_not_a_correlation_runs_on_the_identity_scale():
    s = next(s for s in VALIDATION if s.generator == "bivariate_normal" and s.n >= 30)
    res = run_all_ci_scenarios([s], n_reps=60, n_boot=80, statistics=[userstats.MEAN_DIFFERENCE], n_jobs=1)
    cov = res.coverage
    assert list(cov["method"]) == ["percentile", "basic", "bca", "normal"]  # no SE: no studentized interval
    # E(y - x) = 0 for standard normal margins: the measured truth is 0 within its MCSE
    assert abs(cov["rho_true"].iloc[0]) <= 4.5 * cov["rho_true_mcse"].iloc[0]
    assert cov["coverage"].notna().all()


def test_measured_truth_of_a_user_statistic_meets_its_target():
    s = next(s for s in SMOKE if s.tied)
    truth = custom.measured_truth(PEARSON, s, np.random.SeedSequence(1), 0.002)
    assert 0 < truth.mcse <= 0.002 and truth.n_reps >= custom.TRUTH_BATCH
    x, y = s.generate(20_000, 99)
    independent = np.mean(_pearson_rows(x[:4000], y[:4000]))
    assert truth.value == pytest.approx(independent, abs=4.5 * math.hypot(truth.mcse, np.std(
        _pearson_rows(x[:4000], y[:4000])) / math.sqrt(4000)))


def test_pearson_power_curve_has_its_tests_and_exact_size():
    """At rho = 0 the permutation test's rejection rate is alpha in expectation (exact test): within 4.5
    binomial SDs (false-alarm rate 7e-6); Student's t is exact for the bivariate normal."""
    s = next(s for s in VALIDATION if s.generator == "bivariate_normal" and s.n >= 30)
    settings = PowerSettings(n_reps=2000, grid=(0.0, 0.3), n_perm_tied_y=199, direction="positive")
    curve = power_curve(s, settings, "pearson")
    assert set(curve["test"]) == {"permutation", "t_test"}
    at0 = curve[curve["rho_true"] == 0.0]
    sd = math.sqrt(0.05 * 0.95 / 2000)
    for row in at0.itertuples():
        assert abs(row.power - 0.05) <= 4.5 * sd
    higher = curve[curve["rho_true"] > 0]
    assert (higher["power"] > 0.3).all()
    assert higher["rho_true"].iloc[0] == pytest.approx(2 * math.sin(math.pi * 0.3 / 6))


def test_power_study_with_a_user_statistic_names_it(tmp_path):
    s = [next(s for s in SMOKE if s.tied)]
    settings = PowerSettings(n_reps=200, grid=(0.0, 0.3, 0.6), n_perm=500, n_perm_tied_y=99)
    res = run_power_study(s, settings, statistics=["spearman", userstats.USER_SPEARMAN], n_jobs=1, out=tmp_path / "p")
    assert set(res.power["statistic"]) == {"spearman", "user_spearman"}
    assert set(res.power.loc[res.power["statistic"] == "user_spearman", "test"]) == {"permutation"}
    assert "statistic_digests" in res.provenance["identity"]


# --------------------------------------------------------------------------
# Safety and bad input
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tests.userstats:raises", r"statistic 'raises' on a generated dataset of n = \d+ pairs: the statistic "
                                   r"raised ValueError: boom"),
        ("tests.userstats:first_x", r"outside its bounds \(-1.0, 1.0\)"),
        ("tests.userstats:wrong_signature", r"No matching definition .* \(expected stat\(x, y, counts\) -> float\)"),
        ("tests.userstats:NOT_CALLABLE", r"is a float, not a Statistic"),
        ("tests.userstats:returns_array", r"statistic 'returns_array' on a generated dataset of n = \d+ pairs: the "
                                          r"statistic returned a ndarray, expected a float"),
        ("tests.userstats:returns_text", r"statistic 'returns_text' .*the statistic returned a str_, expected a float"),
        ("tests.userstats:missing", r"has no attribute 'missing'"),
        ("no_such_module_xyz:f", r"cannot import module 'no_such_module_xyz'"),
        ("spearmann", r"names from \['spearman', 'kendall_b', 'pearson'\] or 'package.module:function'"),
    ],
)
def test_bad_statistics_are_refused_before_anything_is_written(spec, message, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RunError, match=message):
        run_all_ci_scenarios(SMOKE[:1], n_reps=10, n_boot=20, statistics=["spearman", spec], out=out, n_jobs=1)
    assert not out.exists()


def test_cli_refuses_a_bad_statistic_with_exit_2(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "smoke", "--n-reps", "10", "--n-boot", "20", "--statistic", "tests.userstats:raises",
                 "--out", str(out), "--quiet", "--no-plots"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "statistic 'raises'" in err and "boom" in err and "Traceback" not in err
    assert not out.exists()
    with pytest.raises(SystemExit) as exc:  # argparse: neither a built-in name nor package.module:function
        main(["run", "smoke", "--statistic", "spearmann"])
    assert exc.value.code == 2


def test_cli_runs_a_user_statistic_in_worker_processes(tmp_path):
    out = tmp_path / "run"
    code = main(["run", "smoke", "--n-reps", "20", "--n-boot", "30", "--n-jobs", "2", "--statistic",
                 "spearman,tests.userstats:USER_SPEARMAN", "--out", str(out), "--quiet", "--no-plots"])  # fmt: skip
    assert code == 0
    cov = pd.read_parquet(out / "coverage.parquet")
    assert set(cov["statistic"]) == {"spearman", "user_spearman"}
    local = run_all_ci_scenarios(SMOKE, n_reps=20, n_boot=30, n_jobs=1,
                                 statistics="spearman,tests.userstats:USER_SPEARMAN").coverage  # fmt: skip
    pd.testing.assert_frame_equal(cov, local, check_exact=True)


def test_resume_with_a_changed_statistic_is_refused(tmp_path):
    out = tmp_path / "run"
    first = Statistic.from_numba(userstats.spearman_counts, name="mine", prepare=custom.dense_ranks)
    run_all_ci_scenarios(SMOKE[:1], n_reps=10, n_boot=20, statistics=[first], out=out, n_jobs=1)

    @njit(cache=False)
    def changed(x, y, counts):
        return 0.5 * userstats.spearman_counts(x, y, counts)

    second = Statistic.from_numba(changed, name="mine", prepare=custom.dense_ranks)
    assert second.digest != first.digest
    from simulation.statistics import statistic as registry

    registry.STATISTICS.pop("mine")  # a new session: the name is free again
    with pytest.raises(RunError, match="statistic_digests"):
        run_all_ci_scenarios(SMOKE[:1], n_reps=10, n_boot=20, statistics=[second], out=out, n_jobs=1, resume=True)
    registry.STATISTICS.pop("mine", None)


def test_a_name_taken_by_a_builtin_or_another_statistic_is_refused():
    with pytest.raises(RunError, match="taken by a built-in statistic"):
        run_all_ci_scenarios(SMOKE[:1], n_reps=10, n_boot=20, n_jobs=1,
                             statistics=[Statistic.from_numba(pearson.pearson_r, name="spearman")])  # fmt: skip


def test_non_finite_values_get_a_status_not_a_silent_nan():
    x = np.array([[1.0, 1, 1, 1, 1, 1], [1, 2, 3, 4, 5, 6]])
    y = np.array([[1.0, 2, 3, 4, 5, 7], [2, 1, 4, 3, 6, 5]])
    res = bootstrap_ci_averaged(x, y, n_boot=50, seed=1, statistic="pearson").replicates
    first = res[res["rep"] == 0]
    assert first["rho_hat"].isna().all() and (first["status"] == "nan_estimate").all()
    assert (res.loc[res["rep"] == 1, "status"] == "ok").any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"transform": "log"}, "`transform` must be one of"),
        ({"transform": "identity", "z_variances": {"a": pearson.fisher_variance}}, "need transform='fisher_z'"),
        ({"bounds": (0.0, 1.0)}, "`bounds` must be \\(-1, 1\\)"),
        ({"tests": ("t_test",)}, "includes 'permutation'"),
        ({"se": np.mean}, "`se` must be a numba.njit function"),
        ({"name": "bad name"}, "`name` of a statistic"),
    ],
)
def test_bad_parts_are_refused_with_a_message(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Statistic.from_numba(pearson.pearson_r, **({"name": "p2"} | kwargs))


def test_from_numba_refuses_a_python_function():
    with pytest.raises(TypeError, match="from_callable"):
        Statistic.from_numba(lambda x, y, c: 0.0, name="py")


def test_get_statistic_loads_a_spec_once_and_registers_it():
    stat = get_statistic("tests.userstats:spearman_counts")
    assert stat.name == "spearman_counts" and stat.user.spec == "tests.userstats:spearman_counts"
    assert get_statistic("spearman_counts") is stat


def test_a_scenario_with_a_user_statistic_keeps_the_streams_of_spearman():
    """The statistic is not part of the streams: the user Spearman's replicates (bootstrap phase) equal the
    built-in's for the same run seed, so two statistics are a paired comparison."""
    s = Scenario(case="t", generator="rank_mixing", n=20, rho=0.3, template="custom", counts=(5, 5, 5, 5))
    a = run_all_ci_scenarios([s], n_reps=30, n_boot=40, keep_replicates=True, n_jobs=1).replicates
    b = run_all_ci_scenarios([s], n_reps=30, n_boot=40, keep_replicates=True, n_jobs=1,
                             statistics=[userstats.USER_SPEARMAN]).replicates  # fmt: skip
    a = a[a["method"].isin(["percentile", "bca"])].reset_index(drop=True)
    b = b[b["method"].isin(["percentile", "bca"])].reset_index(drop=True)
    np.testing.assert_allclose(b["ci_lower"], a["ci_lower"], rtol=0, atol=1e-12)


def test_the_tutorial_example_somers_d_equals_scipy(tmp_path, monkeypatch):
    """The "My own statistic" tutorial's worked example, saved as the module it says and imported: Somers' d of
    y given x equals scipy.stats.somersd(x, y) on tied data, on the data and on resamples given as counts (the
    docs tests run the page; this checks that what it computes is right)."""
    import importlib
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "own-statistic.md").read_text()
    (block,) = re.findall(r'```python title="mystats.py"\n(.*?)```', text, flags=re.S)
    (tmp_path / "readme_mystats.py").write_text(block)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("readme_mystats")
    namespace = vars(module)
    stat = namespace["SOMERS_D"]
    rng = np.random.default_rng(12)
    x = rng.integers(0, 4, size=30).astype(float)
    y = np.round(0.4 * x + rng.normal(size=30), 1)
    f = namespace["somers_d"]
    assert f(x, y, np.ones(30, np.int64)) == pytest.approx(stats.somersd(x, y).statistic, abs=1e-12)
    idx = resample_indices([3], 20, 30)[0]
    counts = [np.bincount(i, minlength=30).astype(np.int64) for i in idx]
    got = [f(x, y, c) for c in counts]
    assert got == pytest.approx([stats.somersd(x[i], y[i]).statistic for i in idx], abs=1e-12)
    res = bootstrap_ci_single(x, y, n_boot=200, seed=3, statistic=stat)
    assert list(res.intervals.index) == ["percentile", "basic", "bca", "normal"]


def test_methods_that_need_an_se_name_what_is_missing():
    with pytest.raises(RunError, match=r"include none that mean_difference defines .*studentized need the "
                                       r"statistic's standard error, which mean_difference does not supply"):
        run_all_ci_scenarios(VALIDATION[:1], n_reps=10, n_boot=20, n_jobs=1, methods="studentized",
                             statistics=["spearman", userstats.MEAN_DIFFERENCE])  # fmt: skip


@njit(cache=False)
def _always_nan(x, y, counts):
    return np.nan


def test_more_bad_parts_and_results_are_named(monkeypatch):
    """Bounds in the wrong order, a non-callable variance, a `prepare` that raises or reshapes, a Python
    statistic that does not reduce per dataset, and a statistic undefined on every dataset."""
    with pytest.raises(ValueError, match=r"`bounds` must be \(lower, upper\) with lower < upper, got \(0.5, 0.2\)"):
        Statistic.from_numba(pearson.pearson_r, name="p3", transform="identity", bounds=(0.5, 0.2))
    with pytest.raises(TypeError, match="`z_variances` must map names to functions"):
        Statistic.from_numba(pearson.pearson_r, name="p3", z_variances={"a": 3})
    x, y = np.arange(12.0), np.arange(12.0)[::-1].copy()

    def boom(a, b):
        raise ZeroDivisionError("no")

    raising = Statistic.from_numba(pearson.pearson_r, name="p_prep_raises", prepare=boom)
    with pytest.raises(ValueError, match=r"statistic 'p_prep_raises' .* `prepare` raised ZeroDivisionError: no"):
        bootstrap_ci_single(x, y, n_boot=20, seed=1, statistic=raising)
    reshaping = Statistic.from_numba(pearson.pearson_r, name="p_prep_shape", prepare=lambda a, b: (a[:, :3], b))
    with pytest.raises(ValueError, match=r"`prepare` must return x and y of shape \(m, n\) as given, got \(1, 3\)"):
        bootstrap_ci_single(x, y, n_boot=20, seed=1, statistic=reshaping)
    not_reducing = Statistic.from_callable(lambda a, b, axis=-1: a, name="p_no_reduce")
    with pytest.raises(ValueError, match=r"returned shape \(1, 12\) for one dataset .* it must reduce along `axis`"):
        bootstrap_ci_single(x, y, n_boot=20, seed=1, statistic=not_reducing)
    constant = Statistic.from_callable(lambda a, b, axis=-1: 0.5, name="p_scalar")
    with pytest.raises(ValueError, match=r"returned 1 values for 12 datasets \(the leave-one-out datasets\)"):
        bootstrap_ci_averaged(np.tile(x, (3, 1)), np.tile(y, (3, 1)), n_boot=20, seed=1, statistic=constant)
    monkeypatch.setattr(custom, "TRUTH_BATCH", 50)
    monkeypatch.setattr(custom, "TRUTH_MAX", 100)
    undefined = Statistic.from_numba(_always_nan, name="p_nan")
    s = next(s for s in SMOKE if s.tied)
    with pytest.raises(ValueError, match=rf"statistic 'p_nan' is undefined on every dataset of scenario '{s.key}'"):
        custom.measured_truth(undefined, s, np.random.SeedSequence(1), 0.01)


@pytest.mark.parametrize("name", ["spearman", "kendall_b", "pearson"])
def test_every_statistic_permutation_null_is_the_statistic_on_the_shared_repairings(name):
    """The protocol's permutation null, for a built-in's tie-group inputs as for one built from parts: the
    statistic (SciPy's) of x re-paired by the key's permutations with y, ties in both variables kept."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 4, size=(2, 15)).astype(np.float64)
    y = np.round(rng.normal(size=(2, 15)), 1)
    stat = get_statistic(name)
    keys = child_keys(11, 0, 2)
    null = stat.permutation_rows(stat.inputs(x, y), keys, 40)
    scipy_stat = {"spearman": stats.spearmanr, "kendall_b": stats.kendalltau, "pearson": stats.pearsonr}[name]
    for r in range(2):
        perms = custom._permutations(keys[r], 40, 15)
        expected = [scipy_stat(x[r][p], y[r]).statistic for p in perms]
        np.testing.assert_allclose(null[r], expected, rtol=0, atol=1e-12)


def test_a_user_jackknife_above_its_budget_warns_once_and_one_with_jackknife_never(monkeypatch):
    """Without ``jackknife=`` the leave-one-out values are n evaluations of the statistic: above
    JACKKNIFE_BUDGET_N the engine says so once per statistic and process, naming n and the budget; at the
    budget, or with the statistic's own jackknife, it is silent.  (The budget is lowered so that the
    jackknife computed here stays small; the message and threshold logic are the same.)"""
    import warnings

    monkeypatch.setattr(custom, "JACKKNIFE_BUDGET_N", 60)
    monkeypatch.setattr(custom, "_JACKKNIFE_WARNED", set())
    rng = np.random.default_rng(4)
    plain = userstats.PLAIN_SPEARMAN
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, y = plain.user.prepared(rng.normal(size=(1, 60)), rng.normal(size=(1, 60)))
        plain.jackknife_rows(x, y)  # n = 60: at the budget, silent
        x, y = PEARSON.user.prepared(rng.normal(size=(1, 61)), rng.normal(size=(1, 61)))
        PEARSON.jackknife_rows(x, y)  # its own O(n) jackknife: silent at any n
    x, y = plain.user.prepared(rng.normal(size=(1, 61)), rng.normal(size=(1, 61)))
    with pytest.warns(custom.JackknifeCostWarning) as caught:
        plain.jackknife_rows(x, y)
    text = str(caught[0].message)
    assert "'plain_spearman'" in text and "n = 61" in text and "budget of n = 60" in text and "jackknife=" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain.jackknife_rows(x, y)  # once per statistic and process


def test_a_study_warns_up_front_at_its_largest_n(monkeypatch):
    """The runner checks the largest n of its scenarios before any work (not only the first scenario's)."""
    from simulation.statistics.registry import validate_statistics

    monkeypatch.setattr(custom, "_JACKKNIFE_WARNED", set())
    small = min(VALIDATION, key=lambda s: s.n)
    with pytest.warns(custom.JackknifeCostWarning, match=r"n = 20,000"):
        validate_statistics(["tests.userstats:PLAIN_SPEARMAN"], small, n_max=20_000)
    assert custom.JACKKNIFE_BUDGET_N == 10_000
