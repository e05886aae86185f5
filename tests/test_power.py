"""Tests of H0: rho_s = 0, power curves and the minimum detectable correlation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simulation.engine import _kernels
from simulation.engine.ranks import spearman_rho_2d
from simulation.models.generators import generate_tied_batch, tie_counts
from simulation.models.scenarios import Scenario, load_study
from simulation.power.curves import (
    PowerSettings,
    _t_approx_reject,
    asymptotic_power,
    minimum_detectable,
    permutation_null,
    permutation_pvalues,
    power_curve,
    pvalues_from_null,
    run_power_study,
    t_approx_pvalues,
)
from tests.reference import spearman_scipy


@pytest.mark.parametrize("y", [np.arange(8.0), np.array([1, 1, 2, 2, 3, 3, 4, 4.0])])
def test_null_variance_is_exactly_one_over_n_minus_1_with_ties(y):
    """All 8! re-pairings of tied x (counts 3, 3, 2) with y: mean 0 and variance exactly 1/(n-1).

    Spearman written out as Pearson's correlation of SciPy midranks, over the whole permutation group.
    """
    x = np.array([0, 0, 0, 1, 1, 1, 2, 2.0])
    rx = stats.rankdata(x) - 4.5
    ry = stats.rankdata(y) - 4.5
    perms = np.array(list(itertools.permutations(range(8))))
    values = (rx[perms] * ry).sum(axis=1) / np.sqrt((rx * rx).sum() * (ry * ry).sum())
    assert values[0] == pytest.approx(spearman_scipy(x, y), abs=1e-12)
    assert abs(values.mean()) < 1e-12
    assert values.var() == pytest.approx(1 / 7, abs=1e-12)


def test_shared_null_of_a_study_template_has_variance_one_over_n_minus_1():
    """100,000 permutations of n = 80, k = 4 heavy_tail: variance within 4.5 SE of 1/79 (FA ~7e-6)."""
    null = permutation_null(tie_counts(80, 4, "heavy_tail"), 100_000, 0)
    se = (1 / 79) * math.sqrt(2 / null.size) * 1.1  # rho is nearly normal: kurtosis ~3 (10% allowance)
    assert abs(null.var() - 1 / 79) < 4.5 * se
    assert abs(null.mean()) < 4.5 * math.sqrt(1 / 79 / null.size)
    np.testing.assert_array_equal(null, np.sort(null))


def test_permutations_are_uniform():
    """Fisher-Yates on Philox: all 120 orderings of 5 items equally likely (chi-square, FA 1e-4)."""
    perm = np.empty(5, np.int64)
    seen = {}
    for p in range(60_000):
        _kernels._permute(np.uint64(7), np.uint64(11), p, 1, perm)
        seen[tuple(perm)] = seen.get(tuple(perm), 0) + 1
    assert len(seen) == 120
    assert stats.chisquare(list(seen.values())).pvalue > 1e-4


def test_pvalues_from_null_count_as_extreme_values():
    null = np.sort(np.array([-0.3, -0.1, 0.0, 0.1, 0.2, 0.3]))
    r = np.array([0.1, -0.3, 0.25])
    brute_two = [(1 + np.sum(np.abs(null) >= abs(v) - 1e-12)) / 7 for v in r]
    brute_greater = [(1 + np.sum(null >= v - 1e-12)) / 7 for v in r]
    brute_less = [(1 + np.sum(null <= v + 1e-12)) / 7 for v in r]
    np.testing.assert_allclose(pvalues_from_null(r, null), brute_two)
    np.testing.assert_allclose(pvalues_from_null(r, null, "greater"), brute_greater)
    np.testing.assert_allclose(pvalues_from_null(r, null, "less"), brute_less)


def test_permutation_test_size_under_heavy_ties():
    """x with k = 4 (heavy tail), y independent: rejection rate at alpha = 0.05 within an exact binomial
    test at level 1e-3 (shared null), and not above alpha for per-dataset nulls (tied y)."""
    counts = tie_counts(80, 4, "heavy_tail")
    x, y = generate_tied_batch("rank_mixing", 4000, counts, 0.0, seed=21)
    p = pvalues_from_null(spearman_rho_2d(x, y), permutation_null(counts, 100_000, 0))
    assert stats.binomtest(int(np.sum(p <= 0.05)), p.size, 0.05).pvalue > 1e-3
    xe, ye = generate_tied_batch("empirical", 400, counts, 0.0, seed=22, pool="example")
    pe = permutation_pvalues(xe, ye, n_perm=199, seed=3)
    # a permutation p-value is exactly valid: P(p <= alpha) <= alpha; one-sided binomial test at 1e-3
    assert stats.binomtest(int(np.sum(pe <= 0.05)), pe.size, 0.05, alternative="greater").pvalue > 1e-3


def test_t_approx_rejection_equals_its_pvalue_rule():
    r = np.random.default_rng(1).uniform(-0.6, 0.6, 5000)
    for alternative in ("two-sided", "greater", "less"):
        np.testing.assert_array_equal(
            _t_approx_reject(r, 40, 0.05, alternative), t_approx_pvalues(r, 40, alternative) <= 0.05
        )


def test_asymptotic_power_has_size_alpha_and_grows():
    assert asymptotic_power(0.0, 80) == pytest.approx(0.05, abs=1e-12)
    assert asymptotic_power(0.0, 80, alternative="greater") == pytest.approx(0.05, abs=1e-12)
    values = asymptotic_power(np.array([0.1, 0.2, 0.3]), 80)
    assert np.all(np.diff(values) > 0)


def test_asymptotic_power_strong_correlation_is_finite_and_symmetric():
    """Deep in the tails SciPy's nct.cdf returns NaN; power must stay finite, symmetric in rho and monotone,
    and equal the direct noncentral-t tail sum where that is finite (rho = 0.5)."""
    rhos = np.array([0.5, 0.8, 0.88, 0.9, 0.99])
    up, down = asymptotic_power(rhos, 30), asymptotic_power(-rhos, 30)
    assert np.all(np.isfinite(up)) and np.all(np.diff(up) >= 0) and up[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(up, down, rtol=1e-12)
    crit, delta = stats.t.ppf(0.975, 28), 0.5 * math.sqrt(28 / 0.75)
    direct = stats.nct.sf(crit, 28, delta) + stats.nct.cdf(-crit, 28, delta)
    assert up[0] == pytest.approx(direct, rel=1e-10)
    assert asymptotic_power(-0.9, 30, alternative="less") == pytest.approx(up[3], rel=1e-9)


def test_untied_normal_power_matches_the_noncentral_t_approximation():
    """Bivariate normal, n = 80: Monte Carlo power of the permutation test within 0.025 of the noncentral-t
    approximation at every grid point.  Not a statistical test: the approximation treats r_s like Pearson's
    r (about 9% smaller variance), which is off by about 0.01 here; MCSE is below 0.004 (20,000 datasets)."""
    s = Scenario(case="t", generator="bivariate_normal", n=80, rho=0.3)
    curve = power_curve(s, PowerSettings(n_reps=20_000, grid=(0.0, 0.1, 0.2, 0.3, 0.4), seed=3))
    wide = curve.pivot_table(index="rho_true", columns="test", values="power")
    assert np.all(np.abs(wide["permutation"] - wide["asymptotic"]) < 0.025)


def test_curve_points_are_the_generated_datasets():
    """The fused power path gives the same Spearman values as generating each grid point's datasets."""
    for s in (load_study("smoke")[0], load_study("smoke")[3], load_study("smoke")[7]):
        settings = PowerSettings(n_reps=50, grid=(0.0, 0.3), seed=2)
        from simulation.engine.seeding import child_seed
        from simulation.models.scenarios import scenario_seed
        from simulation.power.curves import _CurveData

        seed = child_seed(scenario_seed(settings.seed, s), 2)
        data = _CurveData(s, 50, seed)
        rho = 0.3 if s.rho > 0 else -0.3
        (c,) = data.coefficients([rho])
        x, y = Scenario(**{**s.__dict__, "rho": rho}).generate(50, seed)
        np.testing.assert_allclose(data.sample_r(rho, c), spearman_rho_2d(x, y), atol=1e-12)


def test_minimum_detectable_interpolates_and_uses_the_delta_method():
    s = Scenario(case="t", generator="bivariate_normal", n=60, rho=0.2)
    settings = PowerSettings(n_reps=1000, grid=(0.0, 0.2, 0.4), target_power=0.8, seed=0)
    curve = pd.DataFrame(
        {
            "scenario": s.key,
            "rho_true": [0.0, 0.2, 0.4] * 3,
            "test": ["permutation"] * 3 + ["t_approx"] * 3 + ["asymptotic"] * 3,
            "power": [0.0, 0.6, 0.9, 0.05, 0.3, 0.7, 0.05, 0.5, 0.95],  # two powers inside (0, 1): the line
        }
    )
    mdc = minimum_detectable(curve, s, settings).set_index("test")
    # 0.2 + (0.8 - 0.6) / slope, slope = (0.9 - 0.6) / 0.2 = 1.5; SE = sqrt(0.16 / 1000) / 1.5
    assert mdc.loc["permutation", "rho_star"] == pytest.approx(0.2 + 0.2 / 1.5, abs=1e-12)
    assert mdc.loc["permutation", "rho_star_se"] == pytest.approx(math.sqrt(0.16 / 1000) / 1.5, abs=1e-12)
    assert mdc.loc["t_approx", "status"] == "not_reached" and math.isnan(mdc.loc["t_approx", "rho_star"])
    exact = mdc.loc["asymptotic", "rho_star"]
    assert mdc.loc["asymptotic", "status"] == "ok" and math.isnan(mdc.loc["asymptotic", "rho_star_se"])
    assert mdc.loc["asymptotic", "estimate"] == "noncentral_t_approximation"
    assert mdc.loc["permutation", "estimate"] == "monte_carlo"
    assert asymptotic_power(exact, 60) == pytest.approx(0.8, abs=1e-9)


def test_power_study_is_reproducible_across_jobs_and_resumes(tmp_path):
    scenarios = load_study("smoke")[:3]
    settings = PowerSettings(n_reps=200, grid=(0.0, 0.2, 0.4), n_perm=2000, seed=9)
    a = run_power_study(scenarios, settings, n_jobs=1)
    b = run_power_study(scenarios[::-1], settings, n_jobs=2)
    key = ["scenario", "rho_true", "test"]
    pd.testing.assert_frame_equal(
        a.power.sort_values(key).reset_index(drop=True),
        b.power.sort_values(key).reset_index(drop=True),
        check_exact=True,
    )
    out = tmp_path / "p"
    run_power_study(scenarios[:2], settings, n_jobs=1, out=out)
    resumed = run_power_study(scenarios, settings, n_jobs=1, out=out, resume=True)
    assert resumed.provenance["scenarios_computed"] == 1
    pd.testing.assert_frame_equal(resumed.power, a.power, check_exact=True)
    assert (out / "min_detectable.parquet").exists() and (out / "power_summary.md").exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_power": 1.0}, r"`target_power` must be a number in \(0, 1\), got 1.0"),
        ({"grid": ()}, "`grid` must hold at least two correlations"),
        ({"grid": (0.0, 1.0)}, r"`grid` must be increasing values of \|rho\| in \[0, 1\)"),
        ({"alpha": 0.0}, r"`alpha` must be a number in \(0, 1\)"),
        ({"direction": "up"}, "`direction` must be one of"),
        ({"n_reps": 3}, "`n_reps` must be an integer >= 10"),
    ],
)
def test_power_settings_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PowerSettings(**kwargs)


def test_asymptotic_power_rejects_rho_of_one():
    with pytest.raises(ValueError, match=r"`rho` must lie in \(-1, 1\)"):
        asymptotic_power(1.0, 30)


def test_pool_of_exactly_n_values_shares_one_null(tmp_path):
    """A pool of exactly n values gives every dataset the same y values, so one null serves all: the test
    keeps its size (P(p <= alpha) <= alpha for a permutation test; 4-sigma binomial tolerance) and its power
    grows with rho."""
    values = np.repeat([1.0, 2.0, 3.0, 5.0, 8.0], 4)  # n = 20, y tied
    pool = tmp_path / "pool.csv"
    pool.write_text("y\n" + "\n".join(map(str, values)) + "\n")
    s = Scenario(case="p", generator="empirical", n=20, rho=0.4, k=4, template="custom", counts=(5, 5, 5, 5),
                 pool=str(pool))  # fmt: skip
    settings = PowerSettings(n_reps=4000, grid=(0.0, 0.4), n_perm=20_000, seed=2)
    curve = power_curve(s, settings)
    perm = curve[curve["test"] == "permutation"].set_index("rho_true")["power"]
    assert perm[0.0] <= 0.05 + 4 * math.sqrt(0.05 * 0.95 / 4000)
    assert perm[0.4] > perm[0.0] + 0.1


@pytest.mark.parametrize("counts", [(10, 10, 10), (22, 2, 2, 2, 2)])
def test_permutation_test_has_size_alpha_at_rho_zero_on_tied_designs(counts):
    """At rho = 0 the generator's coefficient is exactly 0, so the data are independent and the permutation
    test's rejection rate is alpha.  Two sources of error: the 20,000 datasets (binomial SE) and the one
    null of ``n_perm`` permutations that every dataset shares (its tail share at the critical value has the
    same binomial form in ``n_perm``, and moves every dataset's p-value together); |rate - 0.05| < 4
    combined SEs (false alarm 6e-5 per design), with the Monte Carlo p-value's conservative bias (at most
    1 / (n_perm + 1)) allowed for."""
    s = Scenario(case="size", generator="rank_mixing", n=30, rho=0.3, template="custom", counts=counts)
    settings = PowerSettings(n_reps=20_000, grid=(0.0, 0.3), n_perm=100_000, seed=13)
    from simulation.power.curves import _CurveData

    assert _CurveData(s, 10, 0).coefficients([0.0, -0.3, 0.3])[0] == 0.0
    curve = power_curve(s, settings)
    size = curve[(curve["test"] == "permutation") & (curve["rho_true"] == 0.0)]["power"].iloc[0]
    se = math.sqrt(0.05 * 0.95 / settings.n_reps + 0.05 * 0.95 / settings.n_perm)
    assert 0.05 - 4 * se - 1 / (settings.n_perm + 1) < size < 0.05 + 4 * se


@pytest.mark.parametrize(
    ("x", "y"),
    [
        ([1, 1, 1, 2, 2, 2, 3, 3], [1, 1, 2, 2, 2, 3, 3, 3]),  # both heavily tied: |r*| = |r| has large mass
        ([1, 1, 2, 2, 3, 3, 4, 4], [5, 1, 4, 2, 2, 3, 9, 9]),
    ],
)
def test_permutation_pvalue_against_exhaustive_enumeration_on_tied_data(x, y):
    """The Monte Carlo p-value estimates P(|r*| >= |r|) (ties counted as extreme) over all 8! re-pairings,
    counted by brute force: |p_mc - p_exact| < 4.5 binomial SEs + 1/(B + 1) (false alarm 7e-6 per case).
    Counting only strictly larger |r*| would be off by the atom at |r|, 0.016-0.019 here: over 3 times the
    tolerance."""
    x, y = np.array(x, float), np.array(y, float)
    rx, ry = stats.rankdata(x) - 4.5, stats.rankdata(y) - 4.5
    r_obs = (rx @ ry) / math.sqrt((rx @ rx) * (ry @ ry))
    perms = np.array(list(itertools.permutations(range(8))))
    r_all = (ry[perms] @ rx) / math.sqrt((rx @ rx) * (ry @ ry))
    p_exact = np.mean(np.abs(r_all) >= abs(r_obs) - 1e-12)
    atom = np.mean(np.abs(np.abs(r_all) - abs(r_obs)) < 1e-12)
    assert atom > 0.015  # the case is one where the convention matters
    b = 200_000
    p = permutation_pvalues(x[None], y[None], n_perm=b, seed=4)[0]
    assert abs(p - p_exact) < 4.5 * math.sqrt(p_exact * (1 - p_exact) / b) + 1 / (b + 1)


def test_permutation_test_size_with_heavily_tied_x_and_y():
    """n = 12, x in 3 groups of 4, y with 3 values, independent: the permutation test is exactly valid
    (P(p <= alpha) <= alpha, whatever the ties), so its rejection rate over 10,000 datasets at alpha =
    0.05 must not exceed alpha by a one-sided binomial test at level 1e-4 (the false-alarm rate).
    Counting only strictly larger |r*| (dropping the atom at |r|) gives about 0.068 here, 8 SEs above."""
    rng = np.random.default_rng(31)
    m = 10_000
    x = np.tile(np.repeat([1.0, 2.0, 3.0], 4), (m, 1))
    y = rng.integers(0, 3, size=(m, 12)).astype(float)
    keep = y.std(axis=1) > 0  # a constant y has no p-value (NaN, counted apart)
    p = permutation_pvalues(x[keep], y[keep], n_perm=999, seed=5)
    rejections = int(np.count_nonzero(p <= 0.05))
    assert stats.binomtest(rejections, p.size, 0.05, alternative="greater").pvalue > 1e-4, rejections / p.size


def test_a_p_value_equal_to_alpha_rejects():
    """With 19 permutations the smallest p-value is 1/20 = alpha = 0.05 exactly: at rho_s = 0.95 and n = 15
    nearly every dataset is beyond every permuted value, so the permutation test rejects at p = alpha (the
    rule is p <= alpha; with p < alpha it would never reject here)."""
    s = Scenario(case="edge", generator="bivariate_normal", n=15, rho=0.95)
    settings = PowerSettings(n_reps=200, grid=(0.0, 0.95), n_perm=19, seed=3)
    curve = power_curve(s, settings)
    perm = curve[(curve["test"] == "permutation") & (curve["rho_true"] == 0.95)]["power"].iloc[0]
    assert perm > 0.9


def test_the_minimum_detectable_correlation_follows_the_powers_bend_between_grid_points():
    """Fed the exact power of Pearson's t test (quadrature of r's density) on grids of step 0.1 and 0.05, the
    probit curve's crossing is within 1e-3 of the exact root and several times closer than the straight line
    between the two grid points around it; a grid with fewer than three powers inside (0, 1) near the
    crossing falls back to that line, labelled ``monte_carlo``."""
    from scipy import optimize

    from simulation.power.curves import PROBIT_FIT, probit_crossing
    from tests.test_solve import exact_t_test_power

    for n, step in ((20, 0.1), (40, 0.1), (80, 0.1), (40, 0.05)):
        grid = np.round(np.arange(0, 0.95, step), 10)
        power = np.array([exact_t_test_power(r, n) for r in grid])
        exact = optimize.brentq(lambda r, n=n: exact_t_test_power(r, n) - 0.8, 0.01, 0.95, xtol=1e-12)
        i = int(np.nonzero(power >= 0.8)[0][0])
        line = grid[i - 1] + (0.8 - power[i - 1]) * (grid[i] - grid[i - 1]) / (power[i] - power[i - 1])
        fitted, slope = probit_crossing(grid, power, i, 0.8)
        assert abs(fitted - exact) < 1e-3 and abs(fitted - exact) < abs(line - exact) / 2.5, (n, step)
        h = 1e-6  # the slope it reports is the exact power's, to the fit's accuracy
        true_slope = (exact_t_test_power(exact + h, n) - exact_t_test_power(exact - h, n)) / (2 * h)
        assert slope == pytest.approx(true_slope, rel=0.05)
    s = Scenario(case="c", generator="rank_mixing", n=60, rho=0.3, k=4, template="even")
    settings = PowerSettings(n_reps=1000, grid=(0.0, 0.2, 0.4, 0.6))
    curve = pd.DataFrame({"scenario": s.key, "rho_true": [0.0, 0.2, 0.4, 0.6], "test": ["permutation"] * 4,
                          "power": [0.05, 0.6, 0.85, 1.0]})  # fmt: skip
    mdc = minimum_detectable(curve, s, settings).set_index("test")
    assert mdc.loc["permutation", "estimate"] == PROBIT_FIT
    x, y = np.arctanh([0.0, 0.2, 0.4]), stats.norm.ppf([0.05, 0.6, 0.85])  # written out: least squares
    b = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)
    a = y.mean() - b * x.mean()
    assert mdc.loc["permutation", "rho_star"] == pytest.approx(math.tanh((stats.norm.ppf(0.8) - a) / b), abs=1e-12)
