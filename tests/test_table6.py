"""The Morris, White & Crowther (2019, Table 6) measures of the coverage table against a written-out
implementation on the datasets themselves.

Bootstrap rows are checked on the stored replicates (``keep_replicates``): every bootstrapped dataset's
intervals.  Asymptotic rows are checked on the cheap phase's datasets, drawn again here from their streams
(Pearson's r: a statistic of the values, whose cheap datasets are the generator's own) and scored with SciPy.
The MCSEs are checked as the others are (``tests/test_twophase.py``): against the spread of the measure over
independent runs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtri

from simulation.engine.seeding import child_seed
from simulation.models.scenarios import Scenario, scenario_seed
from simulation.statistics import pearson
from simulation.study.blocks import BLOCK_REPS, CHEAP_UNIT_BLOCKS, STREAM_CHEAP
from simulation.study.metrics import model_se_measures, mse_measures, relative_width
from simulation.study.runner import run_all_ci_scenarios

Z = float(ndtri(0.975))


def _written_out_ratio(w_a, w_b, ok_a, ok_b):
    """Mean width ratio and its delta-method SE from each dataset's influence value (datasets shared)."""
    n = w_a.size
    k_a, k_b = ok_a.sum(), ok_b.sum()
    a, b = np.where(ok_a, w_a, 0.0), np.where(ok_b, w_b, 0.0)
    mean_a, mean_b = a.sum() / k_a, b.sum() / k_b
    ratio = mean_a / mean_b
    influence = (n / k_a) * a / mean_b - ratio * (n / k_b) * b / mean_b
    return ratio, math.sqrt(influence.var(ddof=1) / n)


@pytest.fixture(scope="module")
def run():
    scenarios = [
        Scenario("t6", "rank_mixing", 25, k=4, template="heavy_center", rho=0.4),
        Scenario("t6", "bivariate_normal", 20, rho=0.5),
    ]
    return run_all_ci_scenarios(scenarios, n_reps=300, n_boot=199, n_reps_cheap=1500, seed=11, n_jobs=1,
                                keep_replicates=True, statistics=["spearman", "kendall_b", "pearson"],
                                reference_method="bca")  # fmt: skip


def test_bootstrap_rows_match_the_written_out_measures_on_the_replicates(run):
    cov, reps = run.coverage, run.replicates
    checked = 0
    for (scenario, statistic), rows in cov.groupby(["scenario", "statistic"]):
        r = reps[(reps.scenario == scenario) & (reps.statistic == statistic)]
        by = {m: g.sort_values("rep") for m, g in r.groupby("method")}
        normal = by["normal"]
        ok = (normal.status == "ok").to_numpy()
        v = (((normal.ci_upper - normal.ci_lower) / (2 * Z)) ** 2).to_numpy()[ok]
        model_se = math.sqrt(v.mean())
        emp = rows.empirical_se.iloc[0]
        ref = by["bca"]
        for method in ("percentile", "basic", "bca", "normal", "studentized"):
            row = rows[rows.method == method].iloc[0]
            assert row.model_se_scale == "estimate"
            assert row.model_se_n_reps == ok.sum()
            assert row.model_se == pytest.approx(model_se, rel=1e-9)
            assert row.model_se_mcse == pytest.approx(math.sqrt(v.var(ddof=1) / (4 * v.size * model_se**2)), rel=1e-6)
            assert row.relative_error_model_se == pytest.approx(100 * (model_se / emp - 1), rel=1e-7, abs=1e-9)
            g = by[method]
            ratio, se = _written_out_ratio(
                (g.ci_upper - g.ci_lower).to_numpy(), (ref.ci_upper - ref.ci_lower).to_numpy(),
                (g.status == "ok").to_numpy(), (ref.status == "ok").to_numpy(),
            )  # fmt: skip
            assert row.reference_method == "bca"
            assert row.relative_width == pytest.approx(ratio, rel=1e-9)
            assert row.relative_width_mcse == pytest.approx(se, rel=1e-6, abs=1e-9)
            assert row.relative_precision == pytest.approx(100 * (ratio**-2 - 1), rel=1e-7, abs=1e-7)
            checked += 1
    assert checked == 30


def _cheap_datasets(scenario, seed, n_reps_cheap, calibration):
    root = scenario_seed(seed, scenario)
    cheap_root = child_seed(root, STREAM_CHEAP)
    xs, ys = [], []
    block = 0
    while n_reps_cheap > 0:
        size = min(BLOCK_REPS, n_reps_cheap)
        x, y = scenario.generate(size, child_seed(cheap_root, block), calibration=calibration)
        xs.append(x)
        ys.append(y)
        n_reps_cheap -= size
        block += 1
        assert block < CHEAP_UNIT_BLOCKS
    return np.concatenate(xs), np.concatenate(ys)


def test_pearson_asymptotic_rows_match_the_cheap_datasets_scored_with_scipy(run):
    cov = run.coverage
    rows = cov[(cov.statistic == "pearson") & (cov.generator == "bivariate_normal")]
    scenario = Scenario("t6", "bivariate_normal", 20, rho=0.5)
    x, y = _cheap_datasets(scenario, 11, int(rows.n_reps_cheap.iloc[0]), scenario.calibration())
    r = np.array([stats.pearsonr(a, b).statistic for a, b in zip(x, y, strict=True)])
    theta = rows.rho_true.iloc[0]
    ones = np.ones(scenario.n, np.int64)
    se = np.array([pearson.pearson_se(a, b, ones) for a, b in zip(x, y, strict=True)])
    z = np.arctanh(r)
    n = scenario.n
    # MSE and RMSE
    mse = mse_measures(float(np.mean((r - theta) ** 2)), float(np.var((r - theta) ** 2, ddof=1)), r.size,
                       float(r.mean() - theta))  # fmt: skip
    row = rows[rows.method == "fisher_z_pearson"].iloc[0]
    assert row.mse == pytest.approx(mse["mse"], rel=1e-9)
    assert row.mse_mcse == pytest.approx(mse["mse_mcse"], rel=1e-6)
    assert row.rmse == pytest.approx(math.sqrt(np.mean((r - theta) ** 2)), rel=1e-9)
    # Fisher's variance 1/(n - 3): the model SE is exact, its MCSE 0
    assert row.model_se_scale == "fisher_z"
    assert row.model_se == pytest.approx(1 / math.sqrt(n - 3), rel=1e-12)
    assert row.empirical_se_model_scale == pytest.approx(np.std(z, ddof=1), rel=1e-9)
    assert row.relative_error_model_se == pytest.approx(100 * (1 / math.sqrt(n - 3) / np.std(z, ddof=1) - 1), rel=1e-7)
    # the delta-method SE on z's scale: se / (1 - r^2)
    row = rows[rows.method == "fisher_z_se"].iloc[0]
    v = (se / (1 - r * r)) ** 2
    assert row.model_se == pytest.approx(math.sqrt(v.mean()), rel=1e-9)
    want = model_se_measures(float(v.mean()), float(v.var(ddof=1)), v.size, float(np.std(z, ddof=1)), z.size)
    assert row.relative_error_model_se_mcse == pytest.approx(want["relative_error_model_se_mcse"], rel=1e-6)
    # the two asymptotic methods' widths on the same datasets
    lo1, hi1 = np.tanh(z - Z / math.sqrt(n - 3)), np.tanh(z + Z / math.sqrt(n - 3))
    lo2, hi2 = np.tanh(z - Z * np.sqrt(v)), np.tanh(z + Z * np.sqrt(v))
    assert row.coverage_plain == pytest.approx(np.mean((lo2 <= theta) & (theta <= hi2)), abs=1e-12)
    ok = np.ones(r.size, bool)
    ratio, ratio_se = _written_out_ratio(hi2 - lo2, hi1 - lo1, ok, ok)
    assert row.relative_width / rows[rows.method == "fisher_z_pearson"].iloc[0].relative_width == pytest.approx(
        ratio, rel=1e-9)  # both against the same (bootstrap) reference
    # population estimand: bias-eliminated coverage, the share of intervals containing the measured centre
    assert row.estimand == "population" and row.coverage_centre_mcse > 0
    centre = row.coverage_centre
    p = np.mean((lo2 <= centre) & (centre <= hi2))
    assert row.coverage_bias_eliminated == pytest.approx(p, abs=1e-12)
    assert row.coverage_bias_eliminated_mcse == pytest.approx(math.sqrt(p * (1 - p) / r.size), rel=1e-9)


def _r_density(r: float, rho: float, n: int) -> float:
    """The exact density of Pearson's r in bivariate normal samples (Hotelling 1953, eq. 1.8)."""
    from scipy import special

    log_c = math.lgamma(n - 1) - math.lgamma(n - 0.5)
    return ((n - 2) * math.exp(log_c) * (1 - rho * rho) ** ((n - 1) / 2) * (1 - r * r) ** ((n - 4) / 2)
            / (math.sqrt(2 * math.pi) * (1 - rho * r) ** (n - 1.5))
            * special.hyp2f1(0.5, 0.5, n - 0.5, (1 + rho * r) / 2))  # fmt: skip


def test_a_population_estimands_centre_is_the_expected_estimate_and_scores_the_replicates(run):
    """Pearson's r at rho_s = 0.5, n = 20, bivariate normal: the centre of bias-eliminated coverage against E(r)
    by quadrature of r's exact density (within 4 of its MCSEs: false alarm 6e-5), and every bootstrap method's
    bias-eliminated coverage written out on the replicates; Spearman's and Kendall's centres against their
    exact expectations."""
    from scipy import integrate

    cov, reps = run.coverage, run.replicates
    rows = cov[(cov.generator == "bivariate_normal")]
    pearson_row = rows[rows.statistic == "pearson"].iloc[0]
    r_pop = 2 * math.sin(math.pi * 0.5 / 6)  # the target is Spearman's 0.5: Pearson's r = 2 sin(pi rho_s / 6)
    assert pearson_row.rho_true == pytest.approx(r_pop, abs=1e-12)
    expected = integrate.quad(lambda r: r * _r_density(r, r_pop, 20), -1, 1, epsabs=1e-13, limit=200)[0]
    assert abs(pearson_row.coverage_centre - expected) <= 4 * pearson_row.coverage_centre_mcse
    assert 0 < pearson_row.coverage_centre_mcse <= 0.0005
    # without ties tau-b's estimate is unbiased (a U-statistic), and E r_s = ((n - 2) rho_s + 3 tau) / (n + 1)
    # (Kendall & Gibbons 1990, Rank Correlation Methods, eq. 9.18): exact references for the other two centres
    tau = 2 / math.pi * math.asin(r_pop)
    exact = {"pearson": expected, "kendall_b": tau, "spearman": (18 * 0.5 + 3 * tau) / 21}
    for statistic, g in rows.groupby("statistic"):
        assert g.coverage_centre.nunique() == 1
        assert abs(g.coverage_centre.iloc[0] - exact[statistic]) <= 4 * g.coverage_centre_mcse.iloc[0], statistic
        r = reps[(reps.scenario == g.scenario.iloc[0]) & (reps.statistic == statistic)]
        for method in ("percentile", "basic", "bca", "normal", "studentized"):
            if method not in set(r.method):
                continue
            m = r[(r.method == method) & (r.status == "ok")]
            c = g.coverage_centre.iloc[0]
            p = np.mean((m.ci_lower <= c) & (c <= m.ci_upper))
            row = g[g.method == method].iloc[0]
            assert row.coverage_bias_eliminated == pytest.approx(p, abs=1e-12), (statistic, method)


def test_expected_sample_rows_take_the_coverage_as_bias_eliminated_coverage(run):
    cov = run.coverage
    tied = cov[cov.estimand == "expected_sample"]
    assert len(tied) > 0
    np.testing.assert_array_equal(tied.coverage_bias_eliminated, tied.coverage)
    np.testing.assert_array_equal(tied.coverage_bias_eliminated_mcse, tied.coverage_mcse)


def test_relative_width_against_itself_is_one_with_no_error():
    out = relative_width((5.0, 5.0), (90, 90), 0.0)
    assert out["relative_width"] == 1.0 and out["relative_width_mcse"] == 0.0 and out["relative_precision"] == 0.0


def test_reported_mcses_of_the_new_measures_match_their_spread_over_independent_runs():
    """40 independent runs of one tied scenario: the SD of each measure over the runs against the
    root-mean-square of its reported MCSE.  With 40 runs the SD's relative SE is about 1/sqrt(78) = 0.11, so
    the ratio lies in [0.62, 1.38] (3.3 of those SEs on each side) with a false-alarm rate of about 0.1% per
    measure."""
    scenario = Scenario("t6", "rank_mixing", 20, k=4, template="even", rho=0.3)
    values: dict[str, list[tuple[float, float]]] = {}
    for seed in range(40):
        cov = run_all_ci_scenarios([scenario], n_reps=100, n_boot=99, n_reps_cheap=1000, seed=1000 + seed, n_jobs=1,
                                   statistics=["spearman"], control_variates=False).coverage  # fmt: skip
        for method, measure in [("bca", "relative_width"), ("normal", "relative_error_model_se"),
                                ("fisher_z_bonett_wright", "relative_error_model_se"),
                                ("fisher_z_fieller", "relative_width"), ("percentile", "rmse")]:  # fmt: skip
            row = cov[cov.method == method].iloc[0]
            values.setdefault(f"{method}:{measure}", []).append((row[measure], row[f"{measure}_mcse"]))
    for name, pairs in values.items():
        est, mcse = np.array(pairs).T
        ratio = est.std(ddof=1) / math.sqrt(np.mean(mcse**2))
        assert 0.62 <= ratio <= 1.38, f"{name}: SD over runs / RMS MCSE = {ratio:.3f}"
