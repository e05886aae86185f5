"""Kendall's tau-b kernels and formulas against SciPy, brute force, enumeration and published values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simulation.engine import _kernels
from simulation.engine.seeding import child_seed
from simulation.inference.bootstrap import resample_indices, resample_keys
from simulation.statistics import kendall
from tests import reference


def _groups(x, y):
    gx, n_gx = _kernels.group_ids_rows(np.atleast_2d(np.asarray(x, float)))
    gy, n_gy = _kernels.group_ids_rows(np.atleast_2d(np.asarray(y, float)))
    return gx, n_gx, gy, n_gy


def _tied_datasets():
    """Datasets from untied to heavily tied in both variables, n from 5 to 90."""
    rng = np.random.default_rng(2024)
    out = []
    for n, kx, ky in [(5, 5, 5), (12, 3, 3), (30, 4, 30), (40, 2, 6), (73, 5, 73), (90, 10, 4), (25, 25, 25)]:
        x = rng.integers(0, kx, n).astype(float) if kx < n else rng.normal(size=n)
        y = (0.6 * x + rng.normal(size=n)).round(0) % ky if ky < n else 0.4 * x + rng.normal(size=n)
        out.append((x, y))
    return out


@pytest.mark.parametrize("data", _tied_datasets())
def test_tau_b_equals_scipy(data):
    x, y = data
    assert kendall.tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)


def test_tau_b_rows_and_constant_input():
    x = np.array([[1.0, 2, 3, 4, 5], [1, 1, 1, 1, 1], [3, 1, 2, 2, 5]])
    y = np.array([[2.0, 1, 4, 3, 5], [1, 2, 3, 4, 5], [1, 1, 1, 1, 1]])
    got = kendall.tau_b(x, y)
    assert got[0] == pytest.approx(stats.kendalltau(x[0], y[0]).statistic, abs=1e-12)
    assert np.isnan(got[1]) and np.isnan(got[2])


def test_published_check_values():
    """Kendall (1970) example in SciPy's test suite; R's cor.test example (also SciPy's docstring); Kendall
    (1976) Ex. 4.3 and 3.4 as quoted in R package Kendall (see ../shared/reference/kendall_tau_b.md)."""
    x = [1, 2, 2, 4, 4, 6, 6, 8, 9, 9]
    y = [1, 2, 4, 4, 4, 4, 8, 8, 8, 10]
    assert kendall.tau_b(x, y) == pytest.approx(0.85895569, abs=5e-9)
    x, y = [12, 2, 1, 12, 2], [1, 4, 7, 1, 0]
    assert kendall.tau_b(x, y) == pytest.approx(-0.47140452079103173, abs=1e-14)
    assert kendall.normal_pvalue(x, y) == pytest.approx(0.28274545993277478, abs=1e-14)
    x = [1.5, 1.5, 3, 4, 6, 6, 6, 8, 9.5, 9.5, 11, 12]
    y = [2.5, 2.5, 7, 4.5, 1, 4.5, 6, 11.5, 11.5, 8.5, 8.5, 10]
    s_k = kendall.concordance_rows(*_groups(x, y))[0]
    assert s_k.sum() // 2 == 34
    _, tx = np.unique(x, return_counts=True)
    _, ty = np.unique(y, return_counts=True)
    assert kendall.null_variance_s(tx, ty) == pytest.approx(203.30, abs=0.005)
    a = [2.5, 2.5, 2.5, 2.5, 5, 6.5, 6.5, 10, 10, 10, 10, 10, 14, 14, 14, 16, 17]
    b = [1, 1, 1, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 2, 2]
    assert kendall.concordance_rows(*_groups(a, b))[0].sum() // 2 == 34
    assert kendall.tau_b(a, b) == pytest.approx(34 / math.sqrt(116 * 60), abs=1e-14)


@pytest.mark.parametrize("data", _tied_datasets())
def test_concordance_counts_and_jackknife_equal_brute_force(data):
    """s_k against the O(n^2) sum of signs; each leave-one-out value against SciPy on the data without k."""
    x, y = data
    np.testing.assert_array_equal(kendall.concordance_rows(*_groups(x, y))[0], reference.kendall_s_k(x, y))
    jack = kendall.jackknife(x, y)
    keep = ~np.eye(x.size, dtype=bool)
    expected = [stats.kendalltau(x[k], y[k]).statistic for k in keep]
    np.testing.assert_allclose(jack, expected, rtol=0, atol=1e-12)


def test_jackknife_of_a_point_whose_removal_makes_x_constant():
    x, y = np.array([1.0, 1, 1, 2]), np.array([1.0, 2, 3, 4])
    jack = kendall.jackknife(x, y)
    assert np.isnan(jack[3]) and np.all(np.isfinite(jack[:3]))


@pytest.mark.parametrize("data", _tied_datasets()[1:])
def test_bootstrap_replicates_equal_scipy_on_the_same_resample_indices(data):
    """tau-b of each resample (without the bootstrap-t: :func:`kendall._weighted_s`) against SciPy on the
    resampled data: few and many x values (the last two: 10 x groups with y tied, 25 with both untied)."""
    x, y = data
    seeds = [child_seed(8, 0)]
    theta = kendall.bootstrap_rows(*_groups(x, y), resample_keys(seeds), 60)[0][0]
    idx = resample_indices(seeds, 60, x.size)[0]
    expected = []
    for i in idx:
        xi, yi = x[i], y[i]
        constant = np.all(xi == xi[0]) or np.all(yi == yi[0])
        expected.append(np.nan if constant else stats.kendalltau(xi, yi).statistic)
    np.testing.assert_allclose(theta, expected, rtol=0, atol=1e-12)


def test_bootstrap_marks_constant_resamples_nan():
    x = np.array([0.0, 0, 0, 0, 1])  # many resamples miss the single 1
    y = np.arange(5.0)
    theta = kendall.bootstrap_rows(*_groups(x, y), resample_keys([3]), 200)[0][0]
    idx = resample_indices([3], 200, 5)[0]
    np.testing.assert_array_equal(np.isnan(theta), ~np.any(idx == 4, axis=1))


@pytest.mark.parametrize("data", _tied_datasets())
def test_ase_equals_the_contingency_table_form(data):
    x, y = data
    assert kendall.ase(x, y) == pytest.approx(reference.kendall_ase_table(x, y), rel=1e-10)


@pytest.mark.parametrize(
    ("t", "u"),
    [((2, 3, 1, 1), (3, 1, 2, 1)), ((4, 3), (1, 2, 2, 2)), ((1,) * 7, (2, 2, 3))],
)
def test_null_variance_of_s_equals_full_enumeration(t, u):
    """Every one of the 7! re-pairings of y against fixed x: the variance of S over them is Var0(S)."""
    x = np.repeat(np.arange(len(t)), t).astype(float)
    y = np.repeat(np.arange(len(u)), u).astype(float)
    sx = np.sign(x[:, None] - x[None, :])
    s_all = []
    for p in itertools.permutations(range(7)):
        yp = y[list(p)]
        s_all.append((sx * np.sign(yp[:, None] - yp[None, :])).sum() / 2)
    s_all = np.array(s_all)
    assert s_all.mean() == pytest.approx(0.0, abs=1e-12)
    assert kendall.null_variance_s(t, u) == pytest.approx(s_all.var(), rel=1e-12)


def test_normal_pvalue_equals_scipy_asymptotic_on_tied_data():
    for x, y in _tied_datasets()[1:]:
        ref = stats.kendalltau(x, y, method="asymptotic")
        assert kendall.normal_pvalue(x, y) == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
        one = stats.kendalltau(x, y, method="asymptotic", alternative="greater").pvalue
        assert kendall.normal_pvalue(x, y, "greater") == pytest.approx(one, rel=1e-9, abs=1e-15)


def test_fisher_z_and_ase_intervals_by_hand():
    tau, n, level = 0.3, 40, 0.9
    c = stats.norm.ppf(0.95)
    lo, hi = kendall.fisher_z_ci(tau, n, confidence_level=level)
    half = c * math.sqrt(0.437 / 36)
    assert (float(lo), float(hi)) == pytest.approx((math.tanh(math.atanh(0.3) - half),
                                                    math.tanh(math.atanh(0.3) + half)), abs=1e-15)  # fmt: skip
    lo, hi = kendall.fisher_z_ci(tau, n, confidence_level=level, se=0.1)
    half = c * 0.1 / (1 - 0.09)
    assert (float(lo), float(hi)) == pytest.approx((math.tanh(math.atanh(0.3) - half),
                                                    math.tanh(math.atanh(0.3) + half)), abs=1e-15)  # fmt: skip
    lo, hi = kendall.ase_ci(0.95, 0.1, confidence_level=level)
    assert float(lo) == pytest.approx(0.95 - c * 0.1) and float(hi) == 1.0
    with pytest.raises(ValueError, match=r"`n` must be integer\(s\) >= 5"):
        kendall.fisher_z_ci(0.2, 4)


@pytest.mark.parametrize(("model", "rho"), [("normal", 0.5), ("normal", -0.8), ("t3", 0.5)])
def test_population_tau_against_a_long_simulation(model, rho):
    """Sample tau (untied data) is unbiased for the population tau (a U-statistic), so the mean of 4,000
    samples of n = 60 is within 4.5 SEs of (2/pi) asin(rho) (false-alarm rate 7e-6 per case); the normal's
    Spearman-style (6/pi) asin(rho/2) would be off by 0.15 at rho = 0.5."""
    rng = np.random.default_rng(17)
    m, n = 4000, 60
    cov = np.array([[1.0, rho], [rho, 1.0]])
    z = rng.multivariate_normal([0.0, 0.0], cov, size=(m, n))
    if model == "t3":
        z = z / np.sqrt(rng.chisquare(3, size=(m, n, 1)) / 3)
    taus = kendall.tau_b(z[..., 0], z[..., 1])
    se = taus.std(ddof=1) / math.sqrt(m)
    assert abs(taus.mean() - kendall.population_tau(rho)) < 4.5 * se


# --------------------------------------------------------------------------
# Through the bootstrap engine
# --------------------------------------------------------------------------
def _kendall_scipy(x, y):
    if np.all(x == x[0]) or np.all(y == y[0]):
        return np.nan
    return stats.kendalltau(x, y).statistic


def test_engine_intervals_for_kendall_equal_plain_formulas_on_the_same_resamples(tied_batch):
    """All five bootstrap intervals for tau-b against np.percentile and the textbook formulas on the very
    same resamples, with tau-b, its replicates and its jackknife from SciPy; the studentized one with each
    resample's ASE from the contingency-table reference: ``t* = (atanh tau* - atanh tau) / (ASE* / (1 -
    tau*^2))`` and ``[tanh(z - t*_(1-a/2) se), tanh(z - t*_(a/2) se)]``, ``se = ASE / (1 - tau^2)``."""
    from simulation import bootstrap_ci_averaged

    x, y = tied_batch
    n_boot, level = 150, 0.9
    res = bootstrap_ci_averaged(x, y, n_boot=n_boot, confidence_level=level, seed=21, statistic="kendall_b")
    reps = res.replicates
    assert list(reps["method"].unique()) == ["percentile", "basic", "bca", "normal", "studentized"]
    idx = resample_indices([child_seed(21, r) for r in range(x.shape[0])], n_boot, x.shape[1])
    for r in range(0, x.shape[0], 2):
        xr, yr = x[r], y[r]
        theta = np.array([_kendall_scipy(xr[i], yr[i]) for i in idx[r]])
        theta_hat = _kendall_scipy(xr, yr)
        keep = ~np.eye(x.shape[1], dtype=bool)
        jack = np.array([_kendall_scipy(xr[k], yr[k]) for k in keep])
        ref = reference.intervals_numpy(theta, theta_hat, jack, level)
        se_star = np.array([reference.kendall_ase_table(xr[i], yr[i]) for i in idx[r]]) / (1 - theta**2)
        t = np.sort((np.arctanh(theta) - np.arctanh(theta_hat)) / se_star)
        t_lo, t_hi = np.percentile(t, [5, 95])
        se_hat = reference.kendall_ase_table(xr, yr) / (1 - theta_hat**2)
        z = np.arctanh(theta_hat)
        ref["studentized"] = (np.tanh(z - t_hi * se_hat), np.tanh(z - t_lo * se_hat))
        rows = reps[reps["rep"] == r].set_index("method")
        assert rows["rho_hat"].iloc[0] == pytest.approx(theta_hat, abs=1e-12)
        for method in ("percentile", "basic", "bca", "normal", "studentized"):
            assert rows.loc[method, "status"] == "ok"
            got = (rows.loc[method, "ci_lower"], rows.loc[method, "ci_upper"])
            np.testing.assert_allclose(got, ref[method], rtol=0, atol=1e-10)


def test_statistics_share_the_resample_stream_and_spearman_is_unchanged(tied_pair):
    """The statistic is not part of the stream: the same seed resamples the same pairs for both, so the
    count of valid resamples (constant-x resamples are the same ones) agrees; Spearman's default path and
    ``statistic="spearman"`` are one computation."""
    from simulation import bootstrap_ci_single

    x, y = tied_pair
    s = bootstrap_ci_single(x, y, n_boot=300, seed=4)
    s2 = bootstrap_ci_single(x, y, n_boot=300, seed=4, statistic="spearman")
    k = bootstrap_ci_single(x, y, n_boot=300, seed=4, statistic="kendall_b")
    pd.testing.assert_frame_equal(s.intervals, s2.intervals, check_exact=True)
    assert (s.rho_hat, s.z0, s.acceleration) == (s2.rho_hat, s2.z0, s2.acceleration)
    assert (s.statistic, k.statistic) == ("spearman", "kendall_b")
    assert k.n_boot_valid == s.n_boot_valid
    assert k.rho_hat == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)


def test_unknown_statistic_is_named():
    from simulation import bootstrap_ci_single

    with pytest.raises(ValueError, match=r"`statistic` must be one of \['spearman', 'kendall_b', 'pearson'\] or "
                       r"'package.module:function' \(a statistic of your own\), got 'kendal'"):
        bootstrap_ci_single(np.arange(6.0), np.arange(6.0), n_boot=10, seed=1, statistic="kendal")


# --------------------------------------------------------------------------
# Through the study runner
# --------------------------------------------------------------------------
def _small():
    from simulation.models.scenarios import load_study

    smoke = load_study("smoke")
    return [smoke[0], smoke[8]]  # tied rank mixing (measured truth), continuous Plackett (exact truth)


def _run(**kw):
    from simulation.study.runner import BLOCK_REPS, run_all_ci_scenarios

    opts = {"n_reps": BLOCK_REPS + 20, "n_boot": 40, "confidence_level": 0.9, "seed": 5, "n_jobs": 1,
            "statistics": ("spearman", "kendall_b")} | kw  # fmt: skip
    return run_all_ci_scenarios(_small(), **opts)


def test_runner_tables_with_kendall_are_identical_across_n_jobs_paths_and_resume(tmp_path):
    """Bit-identity as for Spearman: n_jobs, the fallback engine path, and a resumed run; and the Spearman rows
    of a two-statistic run equal a Spearman-only run (the statistic is not in the streams)."""
    base = _run(keep_replicates=True)
    pd.testing.assert_frame_equal(base.coverage, _run(n_jobs=2, keep_replicates=True).coverage, check_exact=True)
    pd.testing.assert_frame_equal(base.coverage, _run(batch_bootstrap=False, chunk_bytes=10_000).coverage,
                                  check_exact=True)  # fmt: skip
    out = tmp_path / "r"
    first = _run(out=out, n_reps=300)
    assert (first.coverage["n_reps"] > 0).all()
    resumed = _run(out=out, resume=True)
    pd.testing.assert_frame_equal(base.coverage, resumed.coverage, check_exact=True)
    spearman_only = _run(statistics="spearman").coverage
    mine = base.coverage[base.coverage["statistic"] == "spearman"].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, spearman_only, check_exact=True)
    # both statistics saw the same datasets: Kendall's replicate tau-b equals SciPy's on Spearman's data
    reps = base.replicates
    sp = reps[(reps["statistic"] == "spearman") & (reps["method"] == "percentile")]
    kd = reps[(reps["statistic"] == "kendall_b") & (reps["method"] == "percentile")]
    np.testing.assert_array_equal(sp["rep"].to_numpy(), kd["rep"].to_numpy())
    x, y, _ = _small()[0].sample(20, child_seed(child_seed(_scenario_root(_small()[0]), 0), 0))
    expected = [stats.kendalltau(x[i], y[i]).statistic for i in range(20)]
    got = kd[kd["scenario"] == _small()[0].key]["rho_hat"].to_numpy()[:20]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def _scenario_root(scenario):
    from simulation.models.scenarios import scenario_seed

    return scenario_seed(5, scenario)


def test_runner_refuses_a_method_kendall_does_not_define_and_an_unknown_statistic():
    from simulation.study.runner import RunError

    with pytest.raises(RunError, match=r"`methods` must be a non-empty subset of \['percentile', .*'wald_ase'\] "
                                       r"\(the methods of \['kendall_b'\]\), got \['fisher_z_bonett_wright'\]"):
        _run(statistics="kendall_b", methods=["fisher_z_bonett_wright"])
    with pytest.raises(RunError, match=r"include none that kendall_b defines \(it defines \['percentile'"):
        _run(methods=["fisher_z_bonett_wright"])
    with pytest.raises(RunError, match=r"`statistics` must be a non-empty list of distinct statistics: names from "
                                       r"\['spearman', 'kendall_b', 'pearson'\] or 'package.module:function' "
                                       r"\(your own\), got \['kendal'\]"):  # fmt: skip
        _run(statistics="kendal")
    res = _run(statistics=("spearman", "kendall_b"), methods=["fisher_z_bonett_wright", "fisher_z_ase", "bca"])
    got = res.coverage.groupby("statistic")["method"].apply(lambda g: list(dict.fromkeys(g))).to_dict()
    assert got == {"kendall_b": ["bca", "fisher_z_ase"], "spearman": ["bca", "fisher_z_bonett_wright"]}


def test_kendall_truth_is_the_written_out_least_squares_fit_and_population_values():
    """The measured expected tau-b: the intercept of the least-squares line of tau-b on the mixing control
    over the very datasets it drew (exact); the continuous models' population tau in closed form."""
    from simulation.models.generators import expected_sample_spearman, tied_cheap_inputs
    from simulation.models.scenarios import Scenario

    counts, c, seed = (8, 8, 8, 6), 0.4, np.random.SeedSequence(3)
    est = lambda inputs: kendall.tau_b_rows(*kendall.inputs_groups(inputs))  # noqa: E731
    truth = expected_sample_spearman("rank_mixing", counts, c, seed, target_mcse=0.0012, chunk=300, estimates=est)
    assert truth.n_reps > 300
    taus, us = [], []
    for step in range(truth.n_reps // 300):
        inputs = tied_cheap_inputs("rank_mixing", 300, counts, c, child_seed(seed, step), truth_control=True)
        taus.append(est(inputs))
        us.append(inputs.truth_control)
    tau, u = np.concatenate(taus), np.concatenate(us)
    (intercept, _), rss, *_ = np.linalg.lstsq(np.column_stack([np.ones_like(u), u]), tau, rcond=None)
    assert truth.value == pytest.approx(intercept, abs=1e-12)
    assert truth.mcse == pytest.approx(math.sqrt(rss[0] / (tau.size - 2) / tau.size), rel=1e-9)
    normal = Scenario(case="t", generator="bivariate_normal", n=30, rho=0.5)
    assert kendall.truth(normal).value == pytest.approx(2 / math.pi * math.asin(2 * math.sin(math.pi / 12)), abs=1e-15)
    assert kendall.truth(normal).mcse == 0.0


def test_plackett_tau_against_a_long_simulation_and_its_symmetry():
    from simulation.models.continuous import plackett_scores, plackett_theta_for

    theta = plackett_theta_for(0.5)
    assert kendall.plackett_tau(theta) == pytest.approx(-kendall.plackett_tau(1 / theta), abs=1e-13)
    assert kendall.plackett_tau(theta, 200) == pytest.approx(kendall.plackett_tau(theta, 800), abs=1e-12)
    x, y = plackett_scores(4000, 60, 0.5, 1)
    taus = kendall.tau_b(x, y)  # untied: sample tau is unbiased for the population tau
    assert abs(taus.mean() - kendall.plackett_tau(theta)) < 4.5 * taus.std(ddof=1) / math.sqrt(taus.size)


def test_kendall_controls_are_on_kendalls_scale():
    """The indicator controls standardize atanh(tau) by sqrt((n - 4) / 0.437): at the truth they fire about as
    often as their nominal levels (with Spearman's sqrt(n - 3) they would sit about 1.5 SD further out and
    almost never fire).  Bivariate normal, n = 60: share of d <= -z (alpha = 0.1) within 0.02 of 0.05."""
    from simulation.models.scenarios import Scenario
    from simulation.statistics.statistic import KENDALL_B
    from simulation.study.estimators import JACKKNIFE_SHIFTS, N_CONTINUOUS, controls

    s = Scenario(case="t", generator="bivariate_normal", n=60, rho=0.3)
    x, y = s.generate(4000, 1)
    tau = kendall.tau_b(x, y)
    c = controls(tau, np.full(tau.shape, 0.1), 60, kendall.truth(s).value, 0.9, KENDALL_B.control_scale(60))
    share = c[:, N_CONTINUOUS + 2 * len(JACKKNIFE_SHIFTS)].mean()  # the first Fisher-z indicator: d <= -z
    assert abs(share - 0.05) < 0.02, share


def test_resample_controls_for_kendall_equal_the_written_out_controls(tied_pair):
    """The statistic-agnostic control kernel equals Spearman's fused one bit for bit (same draws, same order of
    summation), and with Kendall's jackknife the written-out controls of the same resamples."""
    from simulation.statistics.statistic import KENDALL_B

    x, y = tied_pair
    gx, n_gx, gy, n_gy = _groups(x, y)
    keys = resample_keys([child_seed(2, 0)])
    jack_s = _kernels.jackknife_rows(gx, n_gx, gy, n_gy)
    fused = _kernels.bootstrap_rows(gx, n_gx, gy, n_gy, keys, 300, jack_s, True)[1]
    np.testing.assert_array_equal(_kernels.resample_controls_rows(keys, 300, jack_s), fused)
    jack_k = kendall.jackknife_rows(gx, n_gx, gy, n_gy)
    _, controls, _ = KENDALL_B.bootstrap_rows(gx, n_gx, gy, n_gy, keys, 300, jack_k, True,
                                           kendall.tau_b_rows(gx, n_gx, gy, n_gy))  # fmt: skip
    idx = resample_indices([child_seed(2, 0)], 300, x.size)[0]
    keep = ~np.eye(x.size, dtype=bool)
    jack_ref = np.array([stats.kendalltau(x[k], y[k]).statistic for k in keep])
    expected = reference.resample_controls_reference(x, y, idx, jack=jack_ref)
    np.testing.assert_allclose(controls[0], expected, rtol=0, atol=1e-10)


@pytest.mark.slow
def test_kendall_control_variate_estimates_are_unbiased(size_factor):
    """Kendall's headline (control-variate) coverage and mean endpoints of 1,000 bootstrapped datasets agree
    with plain means of 6,000 others (independent seeds) within 4 combined MCSEs, for every method, on a tied
    model and the bivariate normal: 48 comparisons, a false-alarm rate below 0.3% (48 x 2 (1 - Phi(4))).
    ``--full-size``: 5 times the datasets, the same rate."""
    from simulation.models.scenarios import Scenario
    from simulation.study.runner import run_all_ci_scenarios

    for scenario in (
        Scenario(case="t", generator="rank_mixing", n=30, k=4, template="even", rho=0.4),
        Scenario(case="t", generator="bivariate_normal", n=40, rho=0.5),
    ):
        kw = {"n_boot": 200, "n_jobs": -1, "statistics": "kendall_b"}
        cv = run_all_ci_scenarios([scenario], n_reps=1000 * size_factor, seed=21, **kw).coverage
        plain = run_all_ci_scenarios(
            [scenario], n_reps=6000 * size_factor, seed=22, control_variates=False, **kw
        ).coverage
        cv, plain = cv.set_index("method"), plain.set_index("method")
        assert (cv.loc[["percentile", "bca"], "estimator"] == "control_variates").all()
        for method in cv.index:
            for name in ("coverage", "mean_ci_lower", "mean_ci_upper"):
                a, b = cv.loc[method], plain.loc[method]
                z = (a[name] - b[name]) / math.hypot(a[f"{name}_mcse"], b[f"{name}_mcse"])
                assert abs(z) < 4, (scenario.generator, method, name, a[name], b[name], z)
        # the controls earn their keep for Kendall too (they would not, on Spearman's scale)
        assert cv.loc["percentile", "variance_ratio_coverage"] > 1.3


# --------------------------------------------------------------------------
# Tests of independence
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("x", "y"),
    [
        ([1, 1, 1, 2, 2, 2, 3, 3], [1, 1, 2, 2, 2, 3, 3, 3]),
        ([1, 1, 2, 2, 3, 3, 4, 4], [5, 1, 4, 2, 2, 3, 9, 9]),
    ],
)
def test_kendall_permutation_pvalue_against_exhaustive_enumeration(x, y):
    """The Monte Carlo p-value estimates P(|tau*| >= |tau|) over all 8! re-pairings, counted by brute force
    (tau-b of each by SciPy's formula written out: S from signs, the fixed tie totals): within 4.5 binomial
    SEs + 1/(B + 1) (false-alarm rate 7e-6 per case)."""
    x, y = np.array(x, float), np.array(y, float)
    sx = np.sign(x[:, None] - x[None, :])
    tx = sum(c * (c - 1) / 2 for c in np.unique(x, return_counts=True)[1])
    ty = sum(c * (c - 1) / 2 for c in np.unique(y, return_counts=True)[1])
    den = math.sqrt((28 - tx) * (28 - ty))
    obs = (sx * np.sign(y[:, None] - y[None, :])).sum() / 2 / den
    taus = []
    for p in itertools.permutations(range(8)):
        yp = y[list(p)]
        taus.append((sx * np.sign(yp[:, None] - yp[None, :])).sum() / 2 / den)
    taus = np.abs(np.array(taus))
    p_exact = np.mean(taus >= abs(obs) - 1e-12)
    atom = np.mean(np.abs(taus - abs(obs)) < 1e-12)
    assert atom > 0.01, atom  # counting only strictly larger |tau*| would be off by the atom
    assert obs == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    b = 200_000
    p = kendall.permutation_pvalues(x[None], y[None], n_perm=b, seed=4)[0]
    assert abs(p - p_exact) < 4.5 * math.sqrt(p_exact * (1 - p_exact) / b) + 1 / (b + 1)


def test_kendall_permutation_test_size_with_heavily_tied_x_and_y():
    """n = 12, x in 3 groups of 4, y with 3 values, independent: the permutation test is exactly valid, so its
    rejection rate over 5,000 datasets at alpha = 0.05 passes a one-sided binomial test at level 1e-4."""
    rng = np.random.default_rng(32)
    m = 5000
    x = np.tile(np.repeat([1.0, 2.0, 3.0], 4), (m, 1))
    y = rng.integers(0, 3, size=(m, 12)).astype(float)
    y = y[y.std(axis=1) > 0]
    p = kendall.permutation_pvalues(x[: len(y)], y, n_perm=499, seed=5)
    rejections = int(np.count_nonzero(p <= 0.05))
    assert stats.binomtest(rejections, p.size, 0.05, alternative="greater").pvalue > 1e-4, rejections / p.size


def test_kendall_power_curve_has_size_alpha_at_zero_and_grows():
    """Tied design (x in 3 groups of 10, n = 30) at rho = 0: the data are independent, so Kendall's permutation
    test rejects at rate alpha: |rate - 0.05| < 4 combined SEs (20,000 datasets, and the one shared null of
    20,000 permutations) plus the Monte Carlo p-value's conservative bias 1/(B + 1): false-alarm rate 6e-5.
    The normal approximation is not exact under ties: held to 0.02.  Power grows along the grid, and the
    grid's rho_true is tau's estimand (the expected sample tau-b, measured)."""
    from simulation.models.scenarios import Scenario
    from simulation.power.curves import PowerSettings, power_curve

    s = Scenario(case="size", generator="rank_mixing", n=30, rho=0.3, template="custom", counts=(10, 10, 10))
    settings = PowerSettings(n_reps=20_000, grid=(0.0, 0.3), n_perm=20_000, seed=13)
    curve = power_curve(s, settings, "kendall_b")
    assert set(curve["test"]) == {"permutation", "normal_approx", "asymptotic"}
    asym = curve[curve["test"] == "asymptotic"].set_index("rho_true")["power"]
    assert asym.loc[0.0] == pytest.approx(0.05, abs=1e-12)  # Noether's approximation has size alpha exactly
    simulated = curve[curve["test"] == "normal_approx"].set_index("rho_true")["power"]
    # an approximation of the normal-approximation test's power: within 0.03 of its simulated power here
    # (SE 0.0035), where it uses the null SD of tau-b at tau = 0.24
    assert abs(asym.iloc[1] - simulated.iloc[1]) < 0.03
    at0 = curve[curve["rho_true"] == 0.0].set_index("test")["power"]
    se = math.sqrt(0.05 * 0.95 / settings.n_reps + 0.05 * 0.95 / settings.n_perm)
    assert 0.05 - 4 * se - 1 / (settings.n_perm + 1) < at0["permutation"] < 0.05 + 4 * se
    assert abs(at0["normal_approx"] - 0.05) < 0.02
    strong = curve[curve["rho_true"] != 0.0]
    tau = strong["rho_true"].iloc[0]
    expected = kendall.truth(s).value  # same scenario at its own rho = 0.3
    assert abs(tau - expected) < 0.003  # the curve's measurement (MCSE ~0.0003) against the truth's (0.0005)
    assert (strong.set_index("test")["power"] > at0 + 0.3).all()
    assert (strong["test"] == "asymptotic").any()


def test_summary_compares_the_statistics_on_one_scale():
    """With both statistics the summary has a comparison section whose rows are every (statistic, method) and
    whose width column is mean_width / empirical_se recomputed from the table; a Spearman-only summary has none."""
    from simulation.present.report import summary_markdown

    res = _run(n_reps=120)
    text = summary_markdown(res.coverage, res.provenance)
    assert "## Spearman and Kendall on the same datasets" in text
    section = text.split("## Spearman and Kendall on the same datasets")[1]
    cov = res.coverage
    for (stat, method), g in cov.groupby(["statistic", "method"], sort=False):
        expected = f"{(g['mean_width'] / g['empirical_se']).mean():.2f}"
        line = next(ln for ln in section.splitlines() if ln.startswith(f"| {stat} | {method} |"))
        assert line.rstrip(" |").endswith(expected), (line, expected)
    only = _run(n_reps=120, statistics="spearman")
    assert "Spearman and Kendall" not in summary_markdown(only.coverage, only.provenance)


def test_kendall_fisher_z_coverage_for_the_bivariate_normal_against_a_plain_simulation():
    """Bivariate normal, n = 40, rho_s = 0.5: the runner's coverage of Fieller's and the ASE Fisher-z intervals
    for tau-b (its cheap phase with the generator's streams) against a plain NumPy simulation of the same
    intervals on independent datasets (tau by counting pairs, the ASE written out from the pairs' signs,
    truth (2/pi) asin(rho)); within 4 combined MCSEs each (false-alarm rate 1.3e-4 for the two)."""
    from simulation.models.scenarios import Scenario
    from simulation.study.runner import run_all_ci_scenarios

    s = Scenario(case="t", generator="bivariate_normal", n=40, rho=0.5)
    res = run_all_ci_scenarios([s], n_reps=200, n_reps_cheap=20_000, n_boot=20, seed=8, n_jobs=1,
                               statistics="kendall_b", methods=["fisher_z_fieller", "fisher_z_ase"])  # fmt: skip
    cov = res.coverage.set_index("method")
    rho = 2 * math.sin(math.pi * 0.5 / 6)
    truth = 2 / math.pi * math.asin(rho)
    rng = np.random.default_rng(77)
    m, n = 20_000, 40
    a = rng.standard_normal((m, n))
    x, y = a, rho * a + math.sqrt(1 - rho * rho) * rng.standard_normal((m, n))
    tau = reference.kendall_tau_rows(x, y)  # untied: tau-a = tau-b
    z = stats.norm.ppf(0.975)
    # the ASE of untied data: w_r = w_c = n^2 - n, s_k from the signs, tau-b = tau-a
    i, j = np.triu_indices(n, k=1)
    sgn = np.sign(x[:, i] - x[:, j]) * np.sign(y[:, i] - y[:, j])
    s_k = np.zeros((m, n))
    np.add.at(s_k.T, i, sgn.T)
    np.add.at(s_k.T, j, sgn.T)
    w = n * n - n
    d = 2 * w * s_k + tau[:, None] * (2 * w)  # v_k = t_k w_c + u_k w_r = 2 w (groups of one)
    ase = np.sqrt(((d * d).sum(axis=1) - n**3 * tau**2 * (2 * w) ** 2) / w**4)
    for method, half in (("fisher_z_fieller", z * math.sqrt(0.437 / (n - 4)) * np.ones(m)),
                         ("fisher_z_ase", z * ase / (1 - tau**2))):  # fmt: skip
        lo, hi = np.tanh(np.arctanh(tau) - half), np.tanh(np.arctanh(tau) + half)
        p = np.mean((lo <= truth) & (truth <= hi))
        se = math.sqrt(p * (1 - p) / m)
        row = cov.loc[method]
        assert abs(row["coverage"] - p) < 4 * math.hypot(se, row["coverage_mcse"]), (method, row["coverage"], p)


@pytest.mark.slow
def test_kendall_reported_mcse_is_calibrated(size_factor):
    """R = 100 independent runs (500 with ``--full-size``) of 200 bootstrapped datasets, Kendall's tau-b: the SD
    of each headline estimate over the runs over its root-mean-square reported MCSE lies within 4 / sqrt(2 (R - 1)) of 1
    (0.28 at R = 100, 0.13 at 500) for coverage and the lower endpoint of percentile, BCa and two asymptotic
    methods: 8 ratios at 4 SEs, a false-alarm rate of about 5e-4."""
    from simulation.models.scenarios import Scenario
    from simulation.study.runner import run_all_ci_scenarios

    scenario = Scenario(case="t", generator="rank_mixing", n=30, k=5, template="even", rho=0.3)
    n_runs = 100 * size_factor
    bound = 4 / math.sqrt(2 * (n_runs - 1))
    methods = ["percentile", "bca", "fisher_z_fieller", "fisher_z_ase"]
    rows = [
        run_all_ci_scenarios([scenario], n_reps=200, n_boot=100, seed=3000 + i, n_jobs=1, statistics="kendall_b",
                             methods=methods).coverage
        for i in range(n_runs)
    ]  # fmt: skip
    table = pd.concat(rows)
    for method in methods:
        g = table[table["method"] == method]
        for name in ("coverage", "mean_ci_lower"):
            ratio = g[name].std() / math.sqrt((g[f"{name}_mcse"] ** 2).mean())  # Morris et al. 2019, Table 6
            assert abs(ratio - 1) < bound, (method, name, ratio)


def test_kendall_bad_input_messages_name_the_value():
    from simulation.models.scenarios import Scenario
    from simulation.study.runner import RunError

    x, y = np.arange(8.0), np.arange(8.0)[::-1]
    allowed = r"\['two-sided', 'greater', 'less'\]"
    with pytest.raises(ValueError, match=rf"`alternative` must be one of {allowed}, got 'both'"):
        kendall.normal_pvalue(x, y, "both")
    with pytest.raises(ValueError, match=r"`alternative` must be one of .*, got 'up'"):
        kendall.permutation_pvalues(x, y, n_perm=10, alternative="up")
    with pytest.raises(ValueError, match=r"`x_counts` and `y_counts` must each sum to the same n >= 3, got 5 and 6"):
        kendall.null_variance_s((2, 3), (3, 3))
    tiny = Scenario(case="t", generator="rank_mixing", n=4, rho=0.2, template="custom", counts=(2, 2))
    from simulation.study.runner import run_all_ci_scenarios

    with pytest.raises(RunError, match=r"Kendall's tau-b intervals need n >= 5; scenario '.*n4.*' has n = 4"):
        run_all_ci_scenarios([tiny], n_reps=10, n_boot=10, statistics="kendall_b", n_jobs=1)


@pytest.mark.parametrize("tied_y", [False, True])
def test_permutation_null_pairs_x_of_perm_j_with_y_of_j(tied_y):
    """Re-pairing ``p`` pairs x of observation ``perm[j]`` with y of observation ``j`` (``perm`` from
    ``_permute`` with the row's key, the permutations Spearman's null uses): each null value against SciPy's
    tau-b of those pairs, with x and y in random observation order so that y order and index order differ."""
    rng = np.random.default_rng(21)
    n, n_perm = 37, 12
    x = rng.integers(0, 4, n).astype(float)
    y = rng.integers(0, 6, n).astype(float) if tied_y else rng.standard_normal(n)
    keys = resample_keys([np.random.SeedSequence(5)])
    gx, n_gx = _kernels.group_ids_rows(x[None, :])
    gy, n_gy = _kernels.group_ids_rows(y[None, :])
    null = kendall.permutation_null_rows(gx, n_gx, gy, n_gy, keys, n_perm)[0]
    for p in range(n_perm):
        perm = np.empty(n, np.int64)
        _kernels._permute(keys[0, 0], keys[0, 1], p, _kernels.STREAM_PERMUTATION, perm)
        assert null[p] == pytest.approx(stats.kendalltau(x[perm], y).statistic, abs=1e-12)


@pytest.mark.parametrize(("kx", "tied_y"), [(3, False), (3, True), (12, False), (12, True), (0, False), (0, True)])
def test_bootstrap_t_equals_each_resamples_contingency_table_ase(kx, tied_y):
    """Each resample's tau-b against SciPy and its bootstrap-t ``(atanh tau* - atanh tau) / (ASE* / (1 -
    tau*^2))`` against the contingency-table ASE of the resampled pairs: few x values (summed directly), many
    (the Fenwick tree; with untied y the pairs drawn 0 times are skipped) and all distinct, tied and untied
    y, the data in random order so that y order and observation order differ."""
    rng = np.random.default_rng(kx + 100 * tied_y)
    n, n_boot = 40, 25
    x = rng.integers(0, kx, n).astype(float) if kx else rng.standard_normal(n)
    y = (0.3 * x + rng.normal(size=n)).round(0) if tied_y else 0.3 * x + rng.standard_normal(n)
    seeds = [child_seed(9, kx)]
    theta, t_star = kendall.bootstrap_rows(*_groups(x, y), resample_keys(seeds), n_boot, True)
    tau_hat = stats.kendalltau(x, y).statistic
    for b, i in enumerate(resample_indices(seeds, n_boot, n)[0]):
        tau = stats.kendalltau(x[i], y[i]).statistic
        assert theta[0, b] == pytest.approx(tau, abs=1e-12)
        se = reference.kendall_ase_table(x[i], y[i]) / (1 - tau**2)
        assert t_star[0, b] == pytest.approx((np.arctanh(tau) - np.arctanh(tau_hat)) / se, rel=1e-9, abs=1e-12)


@pytest.mark.skipif(
    __import__("os").environ.get("NUMBA_DISABLE_JIT") == "1", reason="140,000 pairs: compiled kernels only"
)
@pytest.mark.parametrize("pattern", ["pairs, y untied", "pairs, y tied", "all distinct"])
def test_trees_over_blocks_of_groups_above_the_threshold_against_scipy(pattern):
    """More x groups than ``TREE_BLOCKS_ABOVE`` (70,000 values each twice, or 140,000 distinct), so the trees
    are over blocks of 16 groups (with pairs a group's own count is nonzero when its twin is queried) and a
    resample's counts are bytes (``BYTE_COUNTS_ABOVE``; with x untied Kendall's x groups' weights too):
    Kendall's tau-b, a few leave-one-out values and resamples (with and without the bootstrap-t, which
    count S in different passes) against SciPy, the resamples' t* against the ASE of each resampled dataset
    (:func:`kendall.ase`: the data's own pass, y tied by the copies), and Spearman's leave-one-out values
    against the rho of the data without the pair and its resamples against SciPy."""
    from simulation.engine.ranks import group_ids, spearman_rho_2d

    k = 70_000
    assert k > _kernels.TREE_BLOCKS_ABOVE and 2 * k > _kernels.BYTE_COUNTS_ABOVE
    rng = np.random.default_rng(70)
    x = rng.standard_normal(2 * k) if pattern == "all distinct" else np.repeat(np.arange(k, dtype=float), 2)
    x = rng.permutation(x)
    n = x.size
    y = 0.4 * x / k + rng.standard_normal(n)
    if pattern == "pairs, y tied":
        y = y.round(1)
    ids = group_ids(x[None], y[None])
    assert kendall.tau_b_rows(*ids)[0] == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    k_jack = kendall.jackknife_rows(*ids)[0]
    s_jack = _kernels.jackknife_rows(*ids)
    for i in rng.choice(n, 3, replace=False):
        xi, yi = np.delete(x, i), np.delete(y, i)
        assert k_jack[i] == pytest.approx(stats.kendalltau(xi, yi).statistic, abs=1e-12)
        assert s_jack[0, i] == pytest.approx(spearman_rho_2d(xi[None], yi[None])[0], abs=1e-12)
    seeds = [child_seed(70, len(pattern))]
    keys = resample_keys(seeds)
    theta, t_star = (a[0] for a in kendall.bootstrap_rows(*ids, keys, 3, True))
    np.testing.assert_array_equal(kendall.bootstrap_rows(*ids, keys, 3, False)[0][0], theta)  # no t*: S alone
    rho = _kernels.bootstrap_rows(*ids, keys, 3, s_jack, False)[0][0]
    z_hat = np.arctanh(kendall.tau_b_rows(*ids)[0])
    for b, i in enumerate(resample_indices(seeds, 3, n)[0]):
        assert theta[b] == pytest.approx(stats.kendalltau(x[i], y[i]).statistic, abs=1e-12)
        assert rho[b] == pytest.approx(stats.spearmanr(x[i], y[i]).statistic, abs=1e-12)
        # t* from the resample's counts against the ASE of the resampled data itself (its copies tie in y)
        se = kendall.ase(x[i], y[i]) / (1 - theta[b] ** 2)
        assert t_star[b] == pytest.approx((np.arctanh(theta[b]) - z_hat) / se, rel=1e-9)



@pytest.mark.parametrize(("kx", "tied_y"), [(3, False), (40, False), (40, True), (0, False)])
def test_resamples_counted_in_bytes_equal_int32_and_a_count_past_255_is_handed_back(kx, tied_y):
    """Above ``BYTE_COUNTS_ABOVE`` pairs a resample is counted in bytes (with x untied the x groups' weights
    too): here called directly at n = 300, the byte kernel's tau-b and bootstrap-t equal the int32 kernels'
    (the one a resample with a count past 255 takes, and the one below the threshold) bit for bit, few and
    many x values, tied and untied y.  With every pair sent to one place each count passes 255: the byte
    kernel hands every resample back (for the int32 kernel) and writes nothing."""
    rng = np.random.default_rng(kx + 7 * tied_y)
    n, n_boot = 300, 12
    x = rng.integers(0, kx, n).astype(float) if kx else rng.standard_normal(n)
    y = (0.3 * x + rng.normal(size=n)).round(0) if tied_y else 0.3 * x + rng.standard_normal(n)
    gx, n_gx, gy, n_gy = (a[0] for a in _groups(x, y))
    setup = kendall._resample_setup(gx, n_gx, gy, n_gy, True, kendall.tau_b_rows(*_groups(x, y))[0])
    key = resample_keys([child_seed(5, kx)])[0]
    seen8 = np.uint8 if n_gx == n else np.int32
    out, t_out = np.full(n_boot, np.nan), np.full(n_boot, np.nan)
    kendall._resample_range(n_gx, n_gy, key, 0, n_boot, setup, True, out, t_out)  # n = 300: int32
    results = [(out, t_out)]
    for w, seen in ((np.int32, np.int32), (np.uint8, np.int32), (np.uint8, seen8)):
        out, t_out = np.full(n_boot, np.nan), np.full(n_boot, np.nan)
        wrapped = kendall._resample_counted(n_gx, n_gy, key, 0, n_boot, setup, True, out, t_out,
                                            np.zeros(n, w), np.empty(n_gx, seen))  # fmt: skip
        assert wrapped.size == 0
        results.append((out, t_out))
    for out, t_out in results[1:]:
        np.testing.assert_array_equal(out, results[0][0])
        np.testing.assert_array_equal(t_out, results[0][1])
    assert np.isfinite(results[0][0]).all()
    one_place = (setup[0], np.zeros(n, np.int32)) + setup[2:]
    out, t_out = np.full(n_boot, np.nan), np.full(n_boot, np.nan)
    wrapped = kendall._resample_counted(n_gx, n_gy, key, 3, 9, one_place, True, out, t_out,
                                        np.zeros(n, np.uint8), np.empty(n_gx, np.int32))  # fmt: skip
    np.testing.assert_array_equal(wrapped, np.arange(3, 9))
    assert np.isnan(out).all() and np.isnan(t_out).all()


@pytest.mark.parametrize("pattern", ["untied", "x in 4 groups", "both tied"])
def test_fixed_rows_above_the_threshold_equal_the_per_observation_passes_bit_for_bit(pattern):
    """Above ``ASE_TERMS_FIRST_ABOVE`` pairs :func:`kendall.fixed_rows` makes the leave-one-out values and
    the ASE's terms in one pass along y (:func:`kendall._fixed_along_y`; with y untied in observation
    order, :func:`kendall._fixed_in_order`, in work arrays without the order and the terms): its values
    equal :func:`jackknife_rows`' (a loop of its own) and its SE equals the ASE of the resamples' kernel
    (:func:`kendall._weighted_ase` with its 64-bit arrays, terms summed through each observation's place)
    with every weight 1, over ``1 - tau^2``, bit for bit."""
    rng = np.random.default_rng(43)
    n = kendall.ASE_TERMS_FIRST_ABOVE + 4_465
    x = rng.integers(0, 4, n).astype(float) if pattern != "untied" else rng.standard_normal(n)
    y = 0.3 * x + rng.standard_normal(n)
    if pattern == "both tied":
        y = y.round(1)
    ids = _groups(x, y)
    tau, jack, z_se = kendall.fixed_rows(*ids)
    np.testing.assert_array_equal(jack, kendall.jackknife_rows(*ids))
    np.testing.assert_array_equal(tau, kendall.tau_b_rows(*ids))
    gx, n_gx, gy, n_gy = (a[0] for a in ids)
    yo, ys, gxy, tree, seen = kendall._layout(gx, n_gx, gy, n_gy)
    w, sk, usize = np.ones(n, np.int32), np.empty(n, np.int64), np.empty(n_gy, np.int64)
    s, tx, ty = kendall._weighted_counts(w, gxy, n_gx, ys, n_gy, sk, usize, tree, seen)
    t = kendall._tau_from_counts(s, tx, ty, n)
    places = kendall._places(yo)
    ase = kendall._weighted_ase(w, gxy, ys, n_gy, gy, gx, sk, seen, usize, places, n, tx, ty, t, np.empty(n))
    assert t == tau[0] and 0.1 < t < 0.5 and ase > 0
    assert z_se[0] == ase / (1 - t * t)
    assert kendall.ase_rows(*ids)[0] == ase


def test_fixed_rows_equal_tau_jackknife_and_z_se_each_on_its_own_bit_for_bit():
    """:func:`kendall.fixed_rows` (one pass for the ``s_k``) gives what :func:`tau_b_rows`,
    :func:`jackknife_rows` and :func:`z_se_rows` give separately, bit for bit, over a batch of tie patterns:
    both untied, both tied, few x values, one x group of n - 1 (a leave-one-out value NaN), y a copy of x
    (tau = 1) and x constant (all NaN)."""
    rng = np.random.default_rng(41)
    n = 60
    rows = [
        (rng.standard_normal(n), rng.standard_normal(n)),
        (rng.integers(0, 6, n).astype(float), rng.integers(0, 5, n).astype(float)),
        (rng.integers(0, 3, n).astype(float), rng.standard_normal(n)),
        (np.r_[np.zeros(n - 1), 1.0], rng.standard_normal(n)),
        (np.arange(n, dtype=float), np.arange(n, dtype=float)),
        (np.ones(n), rng.standard_normal(n)),
    ]
    ids = _groups(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]))
    tau, jack, z_se = kendall.fixed_rows(*ids)
    np.testing.assert_array_equal(tau, kendall.tau_b_rows(*ids))
    np.testing.assert_array_equal(jack, kendall.jackknife_rows(*ids))
    np.testing.assert_array_equal(z_se, kendall.z_se_rows(*ids))
    assert tau[4] == 1.0 and np.isnan(tau[5]) and np.isnan(jack[5]).all() and np.isnan(jack[3, -1])
