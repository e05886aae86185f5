"""Two-phase studies: cheap statistics, measured truth, mergeable moments, the cross-fitted control-variate
estimator against a written-out reference, its unbiasedness and the calibration of its MCSEs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from simulation.engine import _kernels
from simulation.engine.intervals import BOOTSTRAP_METHODS, fisher_z_ci
from simulation.engine.moments import Moments
from simulation.engine.ranks import group_ids, spearman_rho_2d
from simulation.engine.seeding import child_seed
from simulation.inference.bootstrap import resample_indices
from simulation.models.generators import rank_statistics, tied_cheap_inputs
from simulation.models.scenarios import Scenario, load_study, scenario_seed
from simulation.statistics import spearman
from simulation.study.blocks import (
    ALL_METHODS,
    ASYMPTOTIC_METHODS,
    BLOCK_REPS,
    CHEAP_UNIT_BLOCKS,
    STREAM_CHEAP,
    STREAM_DATA,
    STREAM_RESAMPLES,
)
from simulation.study.estimators import CONTROL_SETS, CROSSFIT_FOLDS, RIDGE, controls, crossfit_estimate
from simulation.study.metrics import interval_performance
from simulation.study.runner import run_all_ci_scenarios
from tests import reference

SMOKE = load_study("smoke")
TIED_MODELS = {
    "rank_mixing": Scenario(case="t", generator="rank_mixing", n=40, k=5, template="heavy_center", rho=0.3),
    "gaussian_copula": Scenario(case="t", generator="gaussian_copula", n=40, k=6, template="even", rho=-0.2),
    "log_linear": Scenario(
        case="t", generator="log_linear", n=40, k=4, template="heavy_tail", rho=0.3, y_median=15, y_iqr=10
    ),
    "empirical": Scenario(case="t", generator="empirical", n=40, k=5, template="even", rho=0.3, pool="example"),
}


@pytest.mark.parametrize("scenario", SMOKE, ids=lambda s: s.generator)
def test_rank_statistics_of_generated_data_equal_the_kernels_on_x_and_y(scenario):
    """What the controls see of a dataset is exactly Spearman's rho and the jackknife SE of its x and y."""
    x, y, inputs = scenario.sample(300, 17)
    rho, se = rank_statistics(inputs)
    np.testing.assert_array_equal(rho, spearman_rho_2d(x, y))
    jack = _kernels.jackknife_rows(*group_ids(x, y))
    np.testing.assert_array_equal(se, [_kernels.jackknife_se(j) for j in jack])
    gx, gy = scenario.generate(300, 17)
    np.testing.assert_array_equal(x, gx)
    np.testing.assert_array_equal(y, gy)


@pytest.mark.parametrize("model", list(TIED_MODELS))
def test_cheap_datasets_have_the_distribution_of_generated_ones(model):
    """Means and SDs of rho_hat and of its jackknife SE over 40,000 datasets of each path agree.

    Two-sample z statistics (SE of a SD: sd / sqrt(2 n)), |z| < 4 each: a false-alarm rate of 6e-5 per
    statistic, 1e-3 for the 16 here.
    """
    scenario = TIED_MODELS[model]
    full = np.column_stack(rank_statistics(scenario.sample(40_000, 3)[2]))
    cheap = np.column_stack(rank_statistics(scenario.cheap_inputs(40_000, 4)))
    for j in range(2):
        a, b = full[:, j], cheap[:, j]
        z_mean = (a.mean() - b.mean()) / math.sqrt(a.var() / a.size + b.var() / b.size)
        z_sd = (a.std() - b.std()) / math.sqrt(a.var() / (2 * a.size) + b.var() / (2 * b.size))
        assert abs(z_mean) < 4 and abs(z_sd) < 4, (j, z_mean, z_sd)


def test_measured_truth_matches_brute_force_and_its_control_has_mean_zero():
    """The control-variate truth agrees with a plain mean over 400,000 datasets (4 combined SEs), and
    the control's own mean is within 4 SEs of 0 (false-alarm rate about 1e-4 for the pair)."""
    scenario = TIED_MODELS["rank_mixing"]
    truth = spearman.truth(scenario, 0.0003)
    assert truth.mcse <= 0.0003 and truth.n_reps > 0
    from simulation.models.generators import tied_cheap_inputs

    inputs = tied_cheap_inputs("rank_mixing", 400_000, scenario.counts, scenario.calibration().coefficient, 99,
                               truth_control=True)  # fmt: skip
    rho, _ = rank_statistics(inputs, jackknife=False)
    se = rho.std() / math.sqrt(rho.size)
    assert abs(truth.value - rho.mean()) < 4 * math.sqrt(truth.mcse**2 + se**2)
    u = inputs.truth_control
    assert abs(u.mean()) < 4 * u.std() / math.sqrt(u.size)
    assert abs(truth.value - scenario.rho) < 0.01  # calibration aimed at rho
    exact = spearman.truth(load_study("smoke")[3])  # bivariate normal: population estimand, exact
    assert (exact.value, exact.mcse, exact.n_reps) == (0.5, 0.0, 0)


def test_measured_truth_equals_a_written_out_least_squares_fit_on_the_same_draws():
    """Exact, not statistical: on the datasets the truth drew (chunks on child_seed(seed, step)), the
    control-variate estimate is the intercept of the least-squares line of r on the control u (whose
    mean is exactly 0), and its MCSE is the residual SD (n - 2 degrees of freedom) over sqrt(n)
    (Glasserman 2004, §4.1.1).  A wrong sign of the correction moves the value by 2 beta mean(u)."""
    from simulation.models.generators import expected_sample_spearman, tied_cheap_inputs

    counts, coefficient, seed, chunk = (20, 8, 8, 6), 0.4, np.random.SeedSequence(77), 300
    truth = expected_sample_spearman("rank_mixing", counts, coefficient, seed, target_mcse=0.0009, chunk=chunk)
    assert truth.n_reps > chunk  # several chunks were merged
    r, u = [], []
    for step in range(truth.n_reps // chunk):
        inputs = tied_cheap_inputs("rank_mixing", chunk, counts, coefficient, child_seed(seed, step),
                                   truth_control=True)  # fmt: skip
        r.append(rank_statistics(inputs, jackknife=False)[0])
        u.append(inputs.truth_control)
    r, u = np.concatenate(r), np.concatenate(u)
    design = np.column_stack([np.ones_like(u), u])
    (intercept, slope), rss, *_ = np.linalg.lstsq(design, r, rcond=None)
    assert truth.value == pytest.approx(intercept, abs=1e-12)
    assert truth.mcse == pytest.approx(math.sqrt(rss[0] / (r.size - 2) / r.size), rel=1e-9)
    assert abs(slope * u.mean()) > 1e-4  # 0.0009 here: a sign error would miss by 0.0019, not 1e-12


def test_moments_merge_in_order_equals_numpy_on_all_rows():
    rng = np.random.default_rng(5)
    values = rng.normal(size=(2300, 5)) * [1, 10, 0.1, 3, 1] + [0, 5, -2, 100, 0.3]
    parts = [Moments.of(values[i : i + 500]) for i in range(0, 2300, 500)]
    merged = parts[0]
    for p in parts[1:]:
        merged = merged.merge(p)
    assert merged.n == 2300
    np.testing.assert_allclose(merged.mean, values.mean(axis=0), rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(merged.covariance(), np.cov(values, rowvar=False), rtol=1e-11, atol=1e-11)
    again = Moments.from_record(merged.to_record())
    np.testing.assert_array_equal(again.m2, merged.m2)
    sel = merged.select([3, 1])
    np.testing.assert_allclose(sel.covariance(), np.cov(values[:, [3, 1]], rowvar=False), rtol=1e-11)


@pytest.mark.parametrize("n_folds", [2, 4])
@pytest.mark.parametrize("ridge", [0.0, 0.1, (0.0, 0.3, 0.05)])
def test_crossfit_estimate_equals_the_written_out_reference(n_folds, ridge):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(301, 3))
    y = 0.5 + x @ [0.7, -0.2, 0.0] + rng.normal(scale=0.3, size=301)
    x_cheap = rng.normal(size=(4000, 3))
    fold = np.arange(301) % n_folds
    parts = [fold == k for k in range(n_folds)]
    folds = [Moments.of(np.column_stack([x[h], y[h]])) for h in parts]
    got = crossfit_estimate(folds, Moments.of(x_cheap), [0, 1, 2], 3, ridge=ridge)
    want = reference.crossfit_reference([x[h] for h in parts], [y[h] for h in parts], x_cheap, ridge=ridge)
    np.testing.assert_allclose(got[:2], want, rtol=1e-10)
    assert got.mcse**2 == pytest.approx(got.boot_variance + got.cheap_variance, rel=1e-12)
    # a control without variance carries no information: it is dropped, not inverted
    x[:, 2] = 1.0
    folds = [Moments.of(np.column_stack([x[h], y[h]])) for h in parts]
    cheap = Moments.of(np.column_stack([x_cheap[:, :2], np.ones(4000)]))
    got = crossfit_estimate(folds, cheap, [0, 1, 2], 3, ridge=ridge)
    kept = ridge[:2] if isinstance(ridge, tuple) else ridge  # the dropped control's penalty goes with it
    want = reference.crossfit_reference([x[h, :2] for h in parts], [y[h] for h in parts], x_cheap[:, :2], ridge=kept)
    np.testing.assert_allclose(got[:2], want, rtol=1e-10)


def test_crossfit_estimate_with_exact_controls_equals_the_written_out_reference():
    """Exact controls of the folds (mean 0, no cheap-phase term) and of the cheap phase (adjusting its
    means and covariance) against the lstsq reference; a cheap exact control without variance
    (continuous generators: zeros) changes nothing."""
    rng = np.random.default_rng(12)
    m, big_n = 401, 5000
    x = rng.normal(size=(m, 2))
    e = rng.normal(size=(m, 2))
    y = 0.2 + x @ [0.7, -0.2] + e @ [0.3, 0.1] + rng.normal(scale=0.2, size=m)
    u_cheap = rng.normal(size=big_n)
    x_cheap = np.column_stack([0.9 * u_cheap + 0.3 * rng.normal(size=big_n), rng.normal(size=big_n)])
    parts = [np.arange(m) % 4 == k for k in range(4)]
    folds = [Moments.of(np.column_stack([x[h], e[h], y[h]])) for h in parts]
    cheap = Moments.of(np.column_stack([x_cheap, u_cheap]))
    got = crossfit_estimate(folds, cheap, [0, 1], 4, exact_index=[2, 3], cheap_exact_index=[2])
    want = reference.crossfit_reference(
        [x[h] for h in parts], [y[h] for h in parts], x_cheap, [e[h] for h in parts], u_cheap[:, None]
    )
    np.testing.assert_allclose(got[:2], want, rtol=1e-10)
    unadjusted = crossfit_estimate(folds, cheap, [0, 1], 4, exact_index=[2, 3])
    assert unadjusted.cheap_variance > 3 * got.cheap_variance  # u explains most of the first control
    zeros = Moments.of(np.column_stack([x_cheap, np.zeros(big_n)]))
    assert crossfit_estimate(folds, zeros, [0, 1], 4, exact_index=[2, 3], cheap_exact_index=[2]) == unadjusted
    # a fold below MIN_FOLD datasets: no cross-fitted estimate
    small = [Moments.of(np.column_stack([x[h], e[h], y[h]])[:9]) for h in parts]
    assert crossfit_estimate(small, cheap, [0, 1], 4, exact_index=[2, 3]) is None


def test_table_equals_the_two_phase_estimator_written_out_from_replicates():
    """End to end: the plain columns are the plain means of the replicate table, and the headline
    columns are the cross-fitted estimator computed with NumPy from the very datasets of both phases."""
    scenario = SMOKE[0]
    n_reps, n_cheap = 700, 3000
    res = run_all_ci_scenarios(
        [scenario], n_reps=n_reps, n_boot=60, seed=8, n_jobs=1, n_reps_cheap=n_cheap, keep_replicates=True
    )
    cov = res.coverage.set_index("method")
    reps = res.replicates
    truth = cov["rho_true"].iloc[0]
    root = scenario_seed(8, scenario)
    # controls of the bootstrapped datasets, block by block, then of the cheap phase
    # and the exact controls: the resample controls (from the resample indices) times the jackknife SE,
    # and the mixing draws' u of the cheap phase
    x_boot, e_boot = [], []
    for b, m in ((0, BLOCK_REPS), (1, n_reps - BLOCK_REPS)):
        x, y, inputs = scenario.sample(m, child_seed(child_seed(root, STREAM_DATA), b))
        rho, se = rank_statistics(inputs)
        x_boot.append(controls(rho, se, scenario.n, truth, 0.95))
        seeds = [child_seed(child_seed(child_seed(root, STREAM_RESAMPLES), b), r) for r in range(m)]
        idx = resample_indices(seeds, 60, scenario.n)
        e_boot.append([se[r] * reference.resample_controls_reference(x[r], y[r], idx[r]) for r in range(m)])
    x_boot, e_boot = np.vstack(x_boot), np.vstack(e_boot)
    x_cheap, u_cheap = [], []
    cheap_root = child_seed(root, STREAM_CHEAP)
    c = scenario.calibration().coefficient
    for b in range(-(-n_cheap // BLOCK_REPS)):
        m = min(BLOCK_REPS, n_cheap - b * BLOCK_REPS)
        assert b < CHEAP_UNIT_BLOCKS
        inputs = tied_cheap_inputs(
            scenario.generator, [(m, child_seed(cheap_root, b))], scenario.counts, c, truth_control=True
        )
        rho, se = rank_statistics(inputs)
        x_cheap.append(controls(rho, se, scenario.n, truth, 0.95))
        u_cheap.append(inputs.truth_control)
    x_cheap, u_cheap = np.vstack(x_cheap), np.concatenate(u_cheap)[:, None]
    parts = [np.arange(n_reps) % CROSSFIT_FOLDS == k for k in range(CROSSFIT_FOLDS)]
    for method in ("percentile", "bca", "studentized"):
        r = reps[reps["method"] == method]
        plain = interval_performance(r, truth)
        row = cov.loc[method]
        assert row["n_failed"] == plain["n_failed"] == 0
        for name in ("coverage", "miss_below", "mean_ci_lower", "mean_ci_upper", "mean_width"):
            assert row[f"{name}_plain"] == pytest.approx(plain[name], abs=1e-12)
        assert row["coverage_plain_mcse"] == pytest.approx(plain["coverage_mcse"], abs=1e-12)
        assert row["mean_ci_lower_plain_mcse"] == pytest.approx(plain["mean_ci_lower_mcse"], abs=1e-12)
        assert row["sd_ci_upper"] == pytest.approx(plain["sd_ci_upper"], abs=1e-12)
        lower, upper = r["ci_lower"].to_numpy(), r["ci_upper"].to_numpy()
        measures = {
            "coverage": ((lower <= truth) & (truth <= upper)).astype(float),
            "mean_ci_lower": lower,
            "mean_ci_upper": upper,
        }
        for name, y in measures.items():
            kind = "indicators" if name == "coverage" else "continuous"
            cols = CONTROL_SETS[kind]
            exact = None if kind == "indicators" else [e_boot[h] for h in parts]
            want = reference.crossfit_reference(
                [x_boot[h][:, cols] for h in parts], [y[h] for h in parts], x_cheap[:, cols], exact,
                u_cheap=u_cheap, ridge=RIDGE[kind],
            )  # fmt: skip
            assert (row[name], row[f"{name}_mcse"]) == pytest.approx(want, rel=1e-9, abs=1e-12), (method, name)
    asym = cov.loc["fisher_z_fieller"]
    assert asym["n_reps"] == n_cheap and asym["mean_rho_hat"] == pytest.approx(x_cheap[:, 0].mean(), abs=1e-13)
    # the asymptotic methods: every cheap dataset, with u as an exact control (one-sample lstsq)
    lower, upper = fisher_z_ci(x_cheap[:, 0], scenario.n, confidence_level=0.95, variance="fieller")
    design = np.column_stack([np.ones(n_cheap), u_cheap])
    for name, y in (("mean_ci_lower", lower), ("mean_ci_upper", upper)):
        coef = np.linalg.lstsq(design, y, rcond=None)[0]
        want = (y.mean() - coef[1] * u_cheap.mean(), np.std(y - design @ coef, ddof=1) / math.sqrt(n_cheap))
        assert (asym[name], asym[f"{name}_mcse"]) == pytest.approx(want, rel=1e-9), name
        assert asym[f"{name}_plain"] == pytest.approx(y.mean(), rel=1e-12)
    assert asym["estimator"] == "control_variates" and asym["variance_ratio_mean_ci_lower"] > 10


def test_blocks_are_compact_and_hold_no_replicates_unless_asked(tmp_path):
    res = run_all_ci_scenarios(SMOKE[:2], n_reps=600, n_boot=30, seed=1, n_jobs=1, out=tmp_path / "r")
    files = sorted((tmp_path / "r" / "blocks").rglob("*.parquet"))
    assert [f.name[0] for f in files].count("c") == 2 and not any("replicates" in f.name for f in files)
    assert all(f.stat().st_size < 60_000 for f in files)  # moments of 40 columns, four folds: ~25 KB
    assert res.provenance["block_bytes"] == sum(f.stat().st_size for f in files)


def test_plain_estimates_without_control_variates():
    res = run_all_ci_scenarios(SMOKE[:1], n_reps=300, n_boot=30, seed=1, n_jobs=1, control_variates=False)
    cov = res.coverage
    assert (cov["estimator"] == "plain").all() and (cov["n_reps_cheap"] == 300).all()
    np.testing.assert_array_equal(cov["coverage"], cov["coverage_plain"])
    np.testing.assert_array_equal(cov["variance_ratio_coverage"], np.ones(len(cov)))


@pytest.mark.slow
def test_control_variate_estimates_are_unbiased(size_factor):
    """Four models: the headline estimates of 1,000 bootstrapped datasets agree with plain means of 6,000
    others (independent seeds) within 4 combined MCSEs, for coverage and both mean endpoints of the five
    bootstrap methods, and of the three asymptotic methods (their cheap phase with the mixing control
    against 6,000 plain datasets): 96 comparisons, a false-alarm rate below 0.7% (96 x 2 (1 - Phi(4))).
    ``--full-size``: 5 times the datasets, the same rate; a bias 2.2 times smaller is detectable."""
    for scenario in (
        TIED_MODELS["rank_mixing"], TIED_MODELS["gaussian_copula"], TIED_MODELS["empirical"],
        Scenario(case="t", generator="bivariate_normal", n=40, rho=0.5),
    ):  # fmt: skip
        cv = run_all_ci_scenarios([scenario], n_reps=1000 * size_factor, n_boot=200, seed=21, n_jobs=-1).coverage
        plain = run_all_ci_scenarios(
            [scenario], n_reps=6000 * size_factor, n_boot=200, seed=22, n_jobs=-1, control_variates=False
        ).coverage
        cv, plain = cv.set_index("method"), plain.set_index("method")
        for method in ALL_METHODS:
            if method in BOOTSTRAP_METHODS or scenario.generator != "bivariate_normal":  # m >= 960; u exists
                assert cv.loc[method, "estimator"] == "control_variates", (scenario.generator, method)
            for name in ("coverage", "mean_ci_lower", "mean_ci_upper"):
                a, b = cv.loc[method], plain.loc[method]
                z = (a[name] - b[name]) / math.hypot(a[f"{name}_mcse"], b[f"{name}_mcse"])
                assert abs(z) < 4, (scenario.generator, method, name, a[name], b[name], z)


@pytest.mark.slow
def test_reported_mcse_is_calibrated(size_factor):
    """R = 200 independent runs (1,000 with ``--full-size``) of 200 bootstrapped datasets: the SD of the
    headline estimates over the runs, divided by their root-mean-square reported MCSE (the "average
    model SE" of Morris, White & Crowther 2019, Stat. Med. 38:2074-2102, Table 6: the square root of the
    mean reported variance), lies within 4 / sqrt(2 (R - 1)) of 1 (0.2 at R = 200, 0.09 at 1,000) for
    coverage, the lower endpoint and the miss below (control-variate, like the coverage) of every bootstrap
    method, and
    for the same measures of the asymptotic methods (their cheap phase with the mixing control; misses
    too).  The SD of R values has a relative SE of 1/sqrt(2 (R - 1)), so the bound is 4 SEs: a
    false-alarm rate about 1.5e-3 for the 24 ratios.  The mean of the MCSEs would not do: a reported
    variance is unbiased, its square root is not (Jensen), and for a rare miss (2 expected in 200) the
    plain ``sqrt(p (1 - p) / m)`` averages 8-10% below the SD it estimates."""
    n_runs = 200 * size_factor
    bound = 4 / math.sqrt(2 * (n_runs - 1))
    scenario = Scenario(case="t", generator="rank_mixing", n=30, k=5, template="even", rho=0.3)
    rows = [
        run_all_ci_scenarios([scenario], n_reps=200, n_boot=100, seed=1000 + i, n_jobs=1).coverage
        for i in range(n_runs)
    ]
    table = pd.concat(rows)
    for method in ("percentile", "basic", "bca", "normal", "studentized"):
        g = table[table["method"] == method]
        assert (g["estimator"] == "control_variates").all()
        for name in ("coverage", "mean_ci_lower", "miss_below"):
            ratio = g[name].std() / math.sqrt((g[f"{name}_mcse"] ** 2).mean())
            assert abs(ratio - 1) < bound, (method, name, ratio)
    for method in ASYMPTOTIC_METHODS:
        g = table[table["method"] == method]
        assert (g["estimator"] == "control_variates").all()
        for name in ("coverage", "mean_ci_lower", "miss_below"):
            ratio = g[name].std() / math.sqrt((g[f"{name}_mcse"] ** 2).mean())
            assert abs(ratio - 1) < bound, (method, name, ratio)


@pytest.mark.parametrize("model", ["rank_mixing", "log_linear"])
def test_one_pass_template_kernel_equals_the_general_cheap_path(model):
    """The fused kernel (noise -> rho, jackknife SE) gives what RankInputs give for the same draws."""
    from simulation.models.generators import rank_statistics, tied_cheap_inputs, tied_cheap_statistics

    scenario = TIED_MODELS[model]
    blocks = [(500, child_seed(7, 0)), (123, child_seed(7, 1))]
    c = scenario.calibration().coefficient
    fused = tied_cheap_statistics(model, blocks, scenario.counts, c)
    general = rank_statistics(tied_cheap_inputs(model, blocks, scenario.counts, c))
    np.testing.assert_array_equal(fused[0], general[0])
    np.testing.assert_allclose(fused[1], general[1], rtol=1e-13)
    with_control = tied_cheap_inputs(model, blocks, scenario.counts, c, truth_control=True)
    np.testing.assert_allclose(fused[2], with_control.truth_control, rtol=0, atol=1e-14)


def test_scenario_sizes_give_each_scenario_its_own_phases():
    """A scenario with its own (n_reps, n_reps_cheap) gets exactly the rows it gets when run alone with those
    sizes; the others keep the common sizes; a key that names no scenario, or N < M, is refused."""
    from simulation.core.validation import RunError

    two = SMOKE[:2]
    own = {two[1].key: (300, 900)}
    both = run_all_ci_scenarios(two, n_reps=100, n_reps_cheap=400, n_boot=100, seed=4, scenario_sizes=own, n_jobs=1)
    alone = run_all_ci_scenarios(two[1:], n_reps=300, n_reps_cheap=900, n_boot=100, seed=4, n_jobs=1)
    first = run_all_ci_scenarios(two[:1], n_reps=100, n_reps_cheap=400, n_boot=100, seed=4, n_jobs=1)
    cov = both.coverage
    pd.testing.assert_frame_equal(
        cov[cov["scenario"] == two[1].key].reset_index(drop=True), alone.coverage.reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(
        cov[cov["scenario"] == two[0].key].reset_index(drop=True), first.coverage.reset_index(drop=True)
    )
    with pytest.raises(RunError, match="not a scenario of this study"):
        run_all_ci_scenarios(two, n_reps=100, n_boot=100, scenario_sizes={"nope": (100, 100)})
    with pytest.raises(RunError, match="n_reps_cheap"):
        run_all_ci_scenarios(two, n_reps=100, n_boot=100, scenario_sizes={two[0].key: (300, 200)})
    with pytest.raises(RunError, match="must be \\(n_reps, n_reps_cheap\\)"):
        run_all_ci_scenarios(two, n_reps=100, n_boot=100, scenario_sizes={two[0].key: 300})
    with pytest.raises(RunError, match="must map scenario keys"):
        run_all_ci_scenarios(two, n_reps=100, n_boot=100, scenario_sizes=[(100, 100)])
