"""Every column of the coverage table, checked by name against an independent computation.

The reference rebuilds each row from what the run kept or can be redrawn: the
bootstrap methods from the replicate table (``keep_replicates``), the
asymptotic methods and the estimate's summary from the cheap phase's datasets
redrawn on their documented streams (``child_seed(child_seed(scenario_seed,
3), block)``), with plain NumPy means and SDs, SciPy's Wilson interval, and
the scenario's own truth and calibration.  Two runs: without control variates
every headline column must equal its plain mean; with them, the headline
columns must keep the identities that tie the measures together and stay
within a few plain MCSEs of the plain means.

``CHECKS`` names a check for every column of
:data:`simulation.study.runner.COVERAGE_COLUMNS`, the list the table is built from:
a new column without a check fails ``test_every_column_has_a_check``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simulation.engine.intervals import BOOTSTRAP_METHODS, fisher_z_ci
from simulation.engine.seeding import child_seed
from simulation.models.scenarios import DEFAULT_TRUTH_MCSE, load_study, scenario_seed
from simulation.statistics import kendall, spearman
from simulation.study.blocks import BLOCK_REPS, CHEAP_UNIT_BLOCKS, STREAM_CHEAP
from simulation.study.runner import COVERAGE_COLUMNS, run_all_ci_scenarios, statistic_methods

SMOKE = load_study("smoke")
# tied rank mixing (measured truth), tied Gaussian copula, continuous Plackett (exact truth)
SCENARIOS = [SMOKE[0], SMOKE[4], SMOKE[8]]
LEVEL, SEED, N_BOOT = 0.9, 11, 40
N_REPS = BLOCK_REPS + 20  # two bootstrap blocks
N_CHEAP = CHEAP_UNIT_BLOCKS * BLOCK_REPS + 1_000  # two cheap units, the second partial
Z95 = stats.norm.ppf(0.975)
PROPORTIONS = ("miss_below", "miss_above", "coverage", "coverage_lower_bound", "coverage_upper_bound")
MEANS = ("mean_ci_lower", "mean_ci_upper", "mean_width")
RATIOS = ("coverage", "mean_ci_lower", "mean_ci_upper")
#: Headline (control-variate) estimates may differ from the plain mean by at most this many plain MCSEs.
#: The difference of two estimates of one mean from the same data has SD at most the plain MCSE, so
#: each comparison's false-alarm rate is below 2 (1 - Phi(5)) = 6e-7; 8 measures x 48 rows keep the
#: family-wise rate below 2.3e-4.
HEADLINE_SDS = 5.0


STATISTICS = ("spearman", "kendall_b")


def _run(control_variates: bool):
    return run_all_ci_scenarios(
        SCENARIOS, n_reps=N_REPS, n_reps_cheap=N_CHEAP, n_boot=N_BOOT, confidence_level=LEVEL, seed=SEED,
        n_jobs=1, keep_replicates=True, control_variates=control_variates, statistics=STATISTICS,
    )  # fmt: skip


def _cheap_estimates(scenario, statistic):
    """The cheap phase's estimates (and Kendall's ASE), redrawn block by block on the documented streams:
    the same datasets for both statistics."""
    root = child_seed(scenario_seed(SEED, scenario), STREAM_CHEAP)
    full, rest = divmod(N_CHEAP, BLOCK_REPS)
    sizes = [BLOCK_REPS] * full + ([rest] if rest else [])
    blocks = [(size, child_seed(root, b)) for b, size in enumerate(sizes)]
    if statistic == "spearman":
        return scenario.cheap_statistics(blocks)[0], None
    tau, _, ase = kendall.cheap_rows(scenario.cheap_inputs(blocks))
    return tau, ase


def _asymptotic(method, estimate, ase, n, statistic):
    if statistic == "spearman":
        return fisher_z_ci(estimate, n, confidence_level=LEVEL, variance=method.removeprefix("fisher_z_"))
    if method == "fisher_z_fieller":
        return kendall.fisher_z_ci(estimate, n, confidence_level=LEVEL)
    if method == "fisher_z_ase":
        return kendall.fisher_z_ci(estimate, n, confidence_level=LEVEL, se=ase)
    return kendall.ase_ci(estimate, ase, confidence_level=LEVEL)


def _measures(lower, upper, truth) -> dict[str, float]:
    """Plain means, MCSEs and SDs of every measure over the ok replicates (written out)."""
    n = len(lower)
    indicators = {
        "miss_below": upper < truth,
        "miss_above": lower > truth,
        "coverage": (lower <= truth) & (truth <= upper),
        "coverage_lower_bound": lower <= truth,
        "coverage_upper_bound": truth <= upper,
    }
    out: dict[str, float] = {}
    for name, hit in indicators.items():
        p = float(np.mean(hit))
        out[f"{name}_plain"], out[f"{name}_plain_mcse"] = p, math.sqrt(p * (1 - p) / n)
    for name, values in (("mean_ci_lower", lower), ("mean_ci_upper", upper), ("mean_width", upper - lower)):
        sd = float(np.std(values, ddof=1))
        out[f"{name}_plain"], out[f"{name}_plain_mcse"] = float(np.mean(values)), sd / math.sqrt(n)
    out["sd_ci_lower"], out["sd_ci_upper"] = float(np.std(lower, ddof=1)), float(np.std(upper, ddof=1))
    successes = round(out["coverage_plain"] * n)
    ci = stats.binomtest(successes, n).proportion_ci(0.95, method="wilson")
    out["coverage_wilson_lower"], out["coverage_wilson_upper"] = ci.low, ci.high
    return out


def _reference(result) -> pd.DataFrame:
    """One row per (scenario, method) in the table's order, every plain quantity computed afresh."""
    rows = []
    reps = result.replicates
    for s, statistic in ((s, stat) for s in SCENARIOS for stat in STATISTICS):
        calibration = s.calibration()
        truth = (spearman if statistic == "spearman" else kendall).truth(s, DEFAULT_TRUTH_MCSE)
        rho, ase = _cheap_estimates(s, statistic)
        keep = np.isfinite(rho)
        finite = rho[keep]
        se = float(np.std(finite, ddof=1))
        base = {
            "scenario": s.key, "statistic": statistic, "case": s.case, "generator": s.generator, "n": s.n,
            "k": len(s.counts) if s.counts else s.n, "template": s.template, "rho": s.rho, "estimand": s.estimand,
            "rho_true": truth.value, "rho_true_mcse": truth.mcse, "rho_true_n_reps": truth.n_reps,
            "coefficient": calibration.coefficient, "calibration_achieved": calibration.achieved,
            "calibration_mcse": calibration.mcse, "confidence_level": LEVEL, "n_reps_cheap": N_CHEAP,
            "mean_rho_hat": float(np.mean(finite)), "bias": float(np.mean(finite)) - truth.value,
            "bias_mcse": math.sqrt(se**2 / len(finite) + truth.mcse**2), "empirical_se": se,
            "empirical_se_mcse": se / math.sqrt(2 * (len(finite) - 1)),
        }  # fmt: skip
        widths = {}  # each method's (zero-filled widths over its phase's datasets with an estimate, ok)
        for method in statistic_methods(statistic):
            if method in BOOTSTRAP_METHODS:
                mine = reps[(reps["scenario"] == s.key) & (reps["statistic"] == statistic) & (reps["method"] == method)]
                mine = mine.sort_values("rep")
                mine = mine[np.isfinite(mine["rho_hat"].to_numpy())]
                ok = (mine["status"] == "ok").to_numpy()
                widths[method] = (np.where(ok, (mine["ci_upper"] - mine["ci_lower"]).to_numpy(), 0.0), ok, "boot")
            else:
                lo, hi = _asymptotic(method, finite, None if ase is None else ase[keep], s.n, statistic)
                ok = np.isfinite(lo) & np.isfinite(hi)
                widths[method] = (np.where(ok, hi - lo, 0.0), ok, "cheap")
        base |= _mse(finite, truth)
        for method in statistic_methods(statistic):
            n_out = n_dropped = n_reps_dropped = 0
            if method not in BOOTSTRAP_METHODS:
                lower, upper = _asymptotic(method, finite, None if ase is None else ase[keep], s.n, statistic)
                kind, n_boot, n_reps, n_failed = "asymptotic", 0, N_CHEAP, N_CHEAP - len(finite)
            else:
                mine = reps[(reps["scenario"] == s.key) & (reps["statistic"] == statistic) & (reps["method"] == method)]
                mine = mine.sort_values("rep")
                assert len(mine) == N_REPS
                ok = (mine["status"] == "ok").to_numpy()
                lower, upper = mine["ci_lower"].to_numpy()[ok], mine["ci_upper"].to_numpy()[ok]
                kind, n_boot, n_reps, n_failed = "bootstrap", N_BOOT, N_REPS, int(np.count_nonzero(~ok))
                # written out: an ok interval beyond [-1, 1] (past rounding), and the resamples without a value
                n_out = int(np.count_nonzero((lower < -1 - 1e-12) | (upper > 1 + 1e-12)))
                defined = np.isfinite(mine["rho_hat"].to_numpy())
                dropped = N_BOOT - mine["n_boot_valid"].to_numpy()[defined]
                n_dropped, n_reps_dropped = int(dropped.sum()), int(np.count_nonzero(dropped > 0.05 * N_BOOT))
            flags = (["all_failed" if n_failed == n_reps else "some_failed"] if n_failed else []) + (
                ["out_of_range"] if n_out else []) + (["resamples_dropped"] if n_reps_dropped else [])
            row = base | {"method": method, "method_kind": kind, "n_boot": n_boot, "n_reps": n_reps,
                          "n_failed": n_failed, "n_out_of_range": n_out, "n_resamples_dropped": n_dropped,
                          "n_reps_resamples_dropped": n_reps_dropped,
                          "status": "+".join(flags) or "ok"}  # fmt: skip
            model = _model_se(method, statistic, finite, None if ase is None else ase[keep], s.n, widths, se)
            relative = _relative(widths[method], widths["percentile"])
            rows.append(row | _measures(lower, upper, truth.value) | model | relative | {"_bounds": (lower, upper)})
    return pd.DataFrame(rows)


def _mse(finite, truth) -> dict[str, float]:
    """MSE and RMSE of the estimate over the cheap phase, written out (Morris et al. 2019, Table 6)."""
    sq = (finite - truth.value) ** 2
    mse, bias = float(np.mean(sq)), float(np.mean(finite) - truth.value)
    mcse = math.sqrt(np.var(sq, ddof=1) / len(sq) + (2 * bias * truth.mcse) ** 2)
    return {"mse": mse, "mse_mcse": mcse, "rmse": math.sqrt(mse), "rmse_mcse": mcse / (2 * math.sqrt(mse))}


def _model_se(method, statistic, finite, ase, n, widths, emp_se) -> dict[str, float]:
    """The model SE per dataset written out from each method's published formula, and Table 6's measures."""
    if method in BOOTSTRAP_METHODS:
        w, ok, _ = widths["normal"]  # the normal interval is estimate -+ z SD*
        v, scale = (w[ok] / (2 * stats.norm.ppf(1 - (1 - LEVEL) / 2))) ** 2, "estimate"
    else:
        r = finite
        with np.errstate(divide="ignore", invalid="ignore"):
            if statistic == "spearman":
                variance = {"fisher_z_fieller": 1.06 / (n - 3) + 0 * r,
                            "fisher_z_bonett_wright": (1 + r * r / 2) / (n - 3),
                            "fisher_z_pearson": 1 / (n - 3) + 0 * r}[method]  # fmt: skip
                se = np.sqrt(variance)
            else:
                se = {"fisher_z_fieller": np.sqrt(kendall.FHP_KENDALL / (n - 4)) + 0 * r,
                      "fisher_z_ase": ase / (1 - r * r), "wald_ase": ase}[method]  # fmt: skip
        scale = "fisher_z" if method.startswith("fisher_z") else "estimate"
        keep = np.isfinite(se) & widths[method][1] & ((np.abs(r) < 1) if scale == "fisher_z" else True)
        v = se[keep] ** 2
    if scale == "fisher_z":
        z = np.arctanh(finite[np.abs(finite) < 1])
        emp, n_emp = float(np.std(z, ddof=1)), len(z)
    else:
        emp, n_emp = emp_se, len(finite)
    model = math.sqrt(np.mean(v))
    var_v = np.var(v, ddof=1)
    return {
        "model_se_scale": scale, "model_se": model, "model_se_mcse": math.sqrt(var_v / (4 * len(v) * model**2)),
        "model_se_n_reps": len(v), "empirical_se_model_scale": emp,
        "empirical_se_model_scale_mcse": emp / math.sqrt(2 * (n_emp - 1)),
        "relative_error_model_se": 100 * (model / emp - 1),
        "relative_error_model_se_mcse": 100 * model / emp * math.sqrt(var_v / (4 * len(v) * model**4)
                                                                      + 1 / (2 * (n_emp - 1))),
    }  # fmt: skip


def _relative(mine, ref) -> dict[str, float]:
    """Mean width over the reference's (``percentile``): each mean over its ok intervals, the MCSE from each
    dataset's influence on the ratio (one sum over shared datasets, two independent terms across phases)."""
    (a, ok_a, phase_a), (b, ok_b, phase_b) = mine, ref
    mean_a, mean_b = a.sum() / ok_a.sum(), b.sum() / ok_b.sum()
    ratio = mean_a / mean_b
    ia, ib = a * len(a) / ok_a.sum() / mean_a, b * len(b) / ok_b.sum() / mean_b  # each with mean 1
    if phase_a == phase_b:
        var_log = np.var(ia - ib, ddof=1) / len(a)
    else:
        var_log = np.var(ia, ddof=1) / len(a) + np.var(ib, ddof=1) / len(b)
    sd = math.sqrt(max(var_log, 0.0))
    return {"reference_method": "percentile", "relative_width": ratio, "relative_width_mcse": ratio * sd,
            "relative_precision": 100 * (ratio**-2 - 1), "relative_precision_mcse": 200 * ratio**-2 * sd}


@pytest.fixture(scope="module")
def runs():
    plain, cv = _run(False), _run(True)
    return {False: (plain.coverage, _reference(plain)), True: (cv.coverage, _reference(cv)),
            "replicates": cv.replicates}  # fmt: skip


def _same(got: pd.Series, expected: pd.Series) -> None:
    if not (pd.api.types.is_numeric_dtype(got) and pd.api.types.is_numeric_dtype(expected)):
        assert got.tolist() == expected.tolist()
    else:
        np.testing.assert_allclose(got.to_numpy(float), expected.to_numpy(float), rtol=1e-9, atol=1e-12)


def _from_reference(col):
    """The column equals the reference's column of the same name (or ``source``), in both runs."""

    def check(table, ref, cv):
        _same(table[col], ref[col])

    return check


def _headline(name):
    def check(table, ref, cv):
        if not cv:
            _same(table[name], ref[f"{name}_plain"])
            return
        gap = (table[name] - ref[f"{name}_plain"]).abs()
        assert (gap <= HEADLINE_SDS * ref[f"{name}_plain_mcse"] + 1e-12).all(), gap.max()
        # the identities that tie the measures hold for the headline estimates too (linear in the measure)
        cv_rows = table["estimator"] == "control_variates"
        t = table[cv_rows]
        if name == "coverage":
            _same(t["coverage"], 1 - t["miss_below"] - t["miss_above"])
        elif name == "coverage_lower_bound":
            _same(t[name], 1 - t["miss_above"])
        elif name == "coverage_upper_bound":
            _same(t[name], 1 - t["miss_below"])
        elif name == "mean_width":
            _same(t[name], t["mean_ci_upper"] - t["mean_ci_lower"])

    return check


def _headline_mcse(name):
    def check(table, ref, cv):
        if not cv:
            _same(table[f"{name}_mcse"], ref[f"{name}_plain_mcse"])
            return
        assert (table[f"{name}_mcse"] > 0).all()
        plain_rows = table["estimator"] == "plain"
        _same(table.loc[plain_rows, f"{name}_mcse"], ref.loc[plain_rows, f"{name}_plain_mcse"])

    return check


def _variance_ratio(name):
    def check(table, ref, cv):
        expected = (table[f"{name}_plain_mcse"] / table[f"{name}_mcse"]) ** 2
        _same(table[f"variance_ratio_{name}"], expected)
        if not cv:
            _same(table[f"variance_ratio_{name}"], pd.Series(1.0, index=table.index))

    return check


def _shares(name, which):
    def check(table, ref, cv):
        residual, cheap = table[f"residual_share_{name}"], table[f"cheap_share_{name}"]
        if not cv:
            _same(residual if which == "residual" else cheap, pd.Series(1.0 if which == "residual" else 0.0,
                                                                       index=table.index))  # fmt: skip
            return
        # MCSE^2 = (residual share) sigma^2 / N + (cheap share) sigma^2 / N_cheap, sigma^2 = N plain MCSE^2
        n = table["n_reps"] - table["n_failed"]
        implied = residual + cheap * n / table["n_reps_cheap"]
        _same(1 / table[f"variance_ratio_{name}"], implied)
        # a useless control leaves the residual variance (n - 2 degrees of freedom) at most n / (n - 2) times
        # the plain binomial variance (n in its denominator)
        assert ((residual > 0) & (residual <= n / (n - 2) + 1e-9) & (cheap >= 0)).all()

    return check


def _estimator(table, ref, cv):
    if not cv:
        assert (table["estimator"] == "plain").all()
        return
    # every dataset ok: control variates wherever a control exists (the tied generators' mixing control; the
    # bootstrap phase's controls for every generator)
    has_control = table["generator"].isin(["rank_mixing", "gaussian_copula"]) | (table["method_kind"] == "bootstrap")
    expected = np.where(has_control & (table["n_failed"] == 0), "control_variates", "plain")
    assert table["estimator"].tolist() == expected.tolist()


def _coverage_interval(which):
    def check(table, ref, cv):
        sign = -1 if which == "lower95" else 1
        expected = (table["coverage"] + sign * Z95 * table["coverage_mcse"]).clip(0, 1)
        _same(table[f"coverage_{which}"], expected)

    return check


CHECKS = {col: _from_reference(col) for col in COVERAGE_COLUMNS if col not in ("coverage_lower95", "coverage_upper95")}
for _name in (*PROPORTIONS, *MEANS):
    CHECKS[_name] = _headline(_name)
    CHECKS[f"{_name}_mcse"] = _headline_mcse(_name)
for _name in RATIOS:
    CHECKS[f"variance_ratio_{_name}"] = _variance_ratio(_name)
    CHECKS[f"residual_share_{_name}"] = _shares(_name, "residual")
    CHECKS[f"cheap_share_{_name}"] = _shares(_name, "cheap")
CHECKS["estimator"] = _estimator


def _bias_eliminated(which):
    """The coverage itself for an expected-sample estimand; for a population one, the share of the ok intervals
    (written out above, both phases) that contain the table's centre, with its binomial MCSE."""

    def check(table, ref, cv):
        expected = table["estimand"] == "expected_sample"
        _same(table.loc[expected, f"coverage_bias_eliminated{which}"], table.loc[expected, f"coverage{which}"])
        population = table[~expected]
        assert len(population) > 0
        for i, row in population.iterrows():
            lower, upper = ref.loc[i, "_bounds"]
            c = row["coverage_centre"]
            p = float(np.mean((lower <= c) & (c <= upper)))
            want = p if which == "" else math.sqrt(p * (1 - p) / len(lower))
            assert row[f"coverage_bias_eliminated{which}"] == pytest.approx(want, rel=1e-12, abs=1e-15)

    return check


def _centre(which):
    """The truth for an expected-sample estimand; for a population one a mean estimate on a stream of its own,
    which agrees with the cheap phase's mean estimate within 4 of their combined MCSEs (false alarm 6e-5 per
    row)."""

    def check(table, ref, cv):
        expected = table["estimand"] == "expected_sample"
        _same(table.loc[expected, f"coverage_centre{which}"], table.loc[expected, f"rho_true{which}"])
        population = table[~expected]
        assert ((population["coverage_centre_mcse"] > 0) | (population["rho"] == 0)).all()
        at_zero = population[population["rho"] == 0]
        _same(at_zero["coverage_centre"], at_zero["rho_true"])  # odd symmetry: exactly the truth
        se = np.hypot(population["coverage_centre_mcse"], population["empirical_se"] / np.sqrt(N_CHEAP))
        assert (np.abs(population["coverage_centre"] - population["mean_rho_hat"]) <= 4 * se).all()

    return check


def _rounded_mcse(name, atol):
    """The relative width's MCSEs, from the stored endpoints' second moments: the variance of a difference of
    two methods' widths is a difference of the endpoints' (co)variances, which keeps about 1e-10 of their
    size in rounding, so a ratio whose MCSE is exactly 0 (`basic` against `percentile`: equal widths) comes
    out as about 1e-10 (``atol``: 1e-9 on the ratio's scale, 200 times that for a percentage)."""

    def check(table, ref, cv):
        np.testing.assert_allclose(table[name].to_numpy(float), ref[name].to_numpy(float), rtol=1e-9, atol=atol)

    return check


CHECKS["relative_width_mcse"] = _rounded_mcse("relative_width_mcse", 1e-9)
CHECKS["relative_precision_mcse"] = _rounded_mcse("relative_precision_mcse", 2e-7)
CHECKS["coverage_bias_eliminated"] = _bias_eliminated("")
CHECKS["coverage_bias_eliminated_mcse"] = _bias_eliminated("_mcse")
CHECKS["coverage_centre"] = _centre("")
CHECKS["coverage_centre_mcse"] = _centre("_mcse")
CHECKS["coverage_lower95"] = _coverage_interval("lower95")
CHECKS["coverage_upper95"] = _coverage_interval("upper95")


def test_every_column_has_a_check():
    assert list(CHECKS) and set(CHECKS) == set(COVERAGE_COLUMNS)


def test_table_has_exactly_the_listed_columns(runs):
    for table, ref in (runs[False], runs[True]):
        assert list(table.columns) == list(COVERAGE_COLUMNS)
        keys = ["scenario", "statistic", "method"]
        assert table[keys].values.tolist() == ref[keys].values.tolist()
        assert set(table["statistic"]) == set(STATISTICS)


def test_replicate_tables_asymptotic_intervals_are_the_formulas_on_the_bootstrap_datasets(runs):
    """The asymptotic rows of ``replicates.parquet``: each statistic's interval formula applied to the
    bootstrapped datasets, redrawn on their documented stream (child 0 of the scenario's root, block b), with
    the estimate by SciPy and Kendall's ASE from the redrawn data."""
    from simulation.study.blocks import STREAM_DATA

    reps = runs["replicates"]
    for s in SCENARIOS:
        root = child_seed(scenario_seed(SEED, s), STREAM_DATA)
        xs, ys = zip(*(s.sample(m, child_seed(root, b))[:2] for b, m in enumerate((BLOCK_REPS, N_REPS - BLOCK_REPS))),
                     strict=True)  # fmt: skip
        x, y = np.concatenate(xs), np.concatenate(ys)
        for statistic in STATISTICS:
            mine = reps[(reps["scenario"] == s.key) & (reps["statistic"] == statistic)]
            if statistic == "spearman":
                est = np.array([stats.spearmanr(a, b).statistic for a, b in zip(x, y, strict=True)])
                ase = None
            else:
                est = np.array([stats.kendalltau(a, b).statistic for a, b in zip(x, y, strict=True)])
                ase = np.array([kendall.ase(a, b) for a, b in zip(x, y, strict=True)])
            for method in statistic_methods(statistic):
                if method in BOOTSTRAP_METHODS:
                    continue
                rows = mine[mine["method"] == method].sort_values("rep")
                np.testing.assert_allclose(rows["rho_hat"], est, rtol=0, atol=1e-12)
                lower, upper = _asymptotic(method, est, ase, s.n, statistic)
                np.testing.assert_allclose(rows["ci_lower"], lower, rtol=0, atol=1e-12)
                np.testing.assert_allclose(rows["ci_upper"], upper, rtol=0, atol=1e-12)


@pytest.mark.parametrize("column", COVERAGE_COLUMNS)
@pytest.mark.parametrize("cv", [False, True], ids=["plain", "control_variates"])
def test_column(runs, column, cv):
    table, ref = runs[cv]
    CHECKS[column](table, ref, cv)


# --------------------------------------------------------------------------
# power.parquet and min_detectable.parquet
# --------------------------------------------------------------------------
POWER_SCENARIOS = [SMOKE[0], SMOKE[8]]  # tied rank mixing at rho -0.2 (searched downwards), continuous Plackett
POWER_GRID = (0.0, 0.2, 0.4, 0.6)


@pytest.fixture(scope="module")
def power_run():
    from simulation.power.curves import PowerSettings, run_power_study

    settings = PowerSettings(n_reps=400, n_perm=400, grid=POWER_GRID, seed=3)
    result = run_power_study(POWER_SCENARIOS, settings, n_jobs=1, statistics=STATISTICS)
    return result, settings


def _scenario_info(table: pd.DataFrame, col: str) -> None:
    by_key = {s.key: s for s in POWER_SCENARIOS}
    if col == "statistic":
        per_scenario = table.groupby("scenario", sort=False)["statistic"].apply(lambda v: list(dict.fromkeys(v)))
        assert all(v == list(STATISTICS) for v in per_scenario)
        return
    expected = []
    for key in table["scenario"]:
        s = by_key[key]
        info = {"scenario": s.key, "case": s.case, "generator": s.generator, "n": s.n,
                "k": len(s.counts) if s.counts else s.n, "template": s.template, "rho": s.rho, "estimand": s.estimand}
        expected.append(info[col])
    _same(table[col], pd.Series(expected, index=table.index))


def _plackett_rejections(settings) -> dict[tuple[float, str], int]:
    """Rejections of the Plackett scenario, its datasets redrawn on the power stream (index 2 under the
    scenario's root) and tested with SciPy's Spearman p-value (the t approximation) and a brute-force count
    against the shared permutation null; for Kendall, SciPy's asymptotic tau-b p-value (the normal
    approximation with the tie-corrected variance) on the same datasets, keyed by the population tau."""
    import dataclasses

    from simulation.power.curves import permutation_null

    s = POWER_SCENARIOS[1]
    seed = child_seed(scenario_seed(settings.seed, s), 2)
    null = permutation_null((1,) * s.n, settings.n_perm, settings.seed)
    out = {}
    for g in POWER_GRID:
        x, y = dataclasses.replace(s, rho=g).generate(settings.n_reps, seed)
        res = [stats.spearmanr(xi, yi) for xi, yi in zip(x, y, strict=True)]
        r = np.array([v.statistic for v in res])
        out[(g, "t_approx")] = int(np.count_nonzero(np.array([v.pvalue for v in res]) <= settings.alpha))
        extreme = (np.abs(null)[None, :] >= np.abs(r)[:, None] * (1 - 1e-12)).sum(axis=1)
        out[(g, "permutation")] = int(np.count_nonzero((1 + extreme) / (settings.n_perm + 1) <= settings.alpha))
        tau_true = kendall.truth(dataclasses.replace(s, rho=g)).value
        p_kendall = np.array([stats.kendalltau(a, b, method="asymptotic").pvalue for a, b in zip(x, y, strict=True)])
        out[(tau_true, "normal_approx")] = int(np.count_nonzero(p_kendall <= settings.alpha))
    return out


def _power_check(col):
    def check(table, settings):
        if col in ("scenario", "case", "generator", "n", "k", "template", "rho", "estimand", "statistic"):
            _scenario_info(table, col)
            return
        mc = table["test"] != "asymptotic"
        spear = table["statistic"] == "spearman"
        if col == "test":
            per_point = table.groupby(["scenario", "statistic", "rho_true"])["test"].apply(list)
            for (_, stat, _), tests in per_point.items():
                assert tests == (["permutation", "t_approx", "asymptotic"] if stat == "spearman"
                                 else ["permutation", "normal_approx", "asymptotic"])  # fmt: skip
        elif col == "rho_true":
            for s in POWER_SCENARIOS:
                sign = -1.0 if s.rho < 0 else 1.0  # direction "observed"
                mine = table[(table["scenario"] == s.key) & (table["test"] == "permutation")]
                got = mine.loc[mine["statistic"] == "spearman", "rho_true"]
                assert got.tolist() == [sign * g for g in POWER_GRID]
                tau = mine.loc[mine["statistic"] == "kendall_b", "rho_true"].to_numpy()
                truths = [kendall.truth(dataclasses.replace(s, rho=sign * g)) for g in POWER_GRID]
                # exact for the population estimand; measured on the curve's 400 datasets with the mixing
                # control (MCSE about 0.002 here) for the tied one: 5 MCSEs of the curve's and the truth's
                tol = 0.0 if s.estimand == "population" else 0.012
                np.testing.assert_allclose(tau, [t.value for t in truths], rtol=0, atol=tol + 1e-14)
        elif col == "n_reps":
            assert (table.loc[mc, "n_reps"] == settings.n_reps).all() and (table.loc[~mc, "n_reps"] == 0).all()
        elif col == "rejections":
            assert (table.loc[~mc, "rejections"] == -1).all()
            plackett = table[mc & (table["scenario"] == POWER_SCENARIOS[1].key)]
            expected = _plackett_rejections(settings)
            got = {(r.rho_true, r.test): r.rejections for r in plackett.itertuples()
                   if not (r.statistic == "kendall_b" and r.test == "permutation")}  # fmt: skip
            assert got == expected
        elif col == "power":
            _same(table.loc[mc, "power"], table.loc[mc, "rejections"] / settings.n_reps)
            # the noncentral t, written with the CDF (the code uses survival functions)
            t = table[~mc & spear]
            n = t["n"].to_numpy()
            rho = t["rho_true"].to_numpy()
            crit = stats.t.ppf(1 - settings.alpha / 2, n - 2)
            delta = rho * np.sqrt(n - 2) / np.sqrt(1 - rho**2)
            expected = 1 - stats.nct.cdf(crit, n - 2, delta) + stats.nct.cdf(-crit, n - 2, delta)
            np.testing.assert_allclose(t["power"], expected, rtol=1e-7, atol=1e-10)
            # Kendall's (Noether 1987): tau-b ~ N(tau, sd0^2), sd0 from Kendall's (1970) null variance of S
            # with untied y (both scenarios' y are continuous), written with the CDF
            for s in POWER_SCENARIOS:
                k = table[~mc & ~spear & (table["scenario"] == s.key)]
                t_counts = np.array(s.counts if s.tied else (1,) * s.n, dtype=float)
                n0 = s.n * (s.n - 1) / 2
                var_s = (s.n * (s.n - 1) * (2 * s.n + 5) - np.sum(t_counts * (t_counts - 1) * (2 * t_counts + 5))) / 18
                sd0 = math.sqrt(var_s) / math.sqrt((n0 - np.sum(t_counts * (t_counts - 1)) / 2) * n0)
                c = stats.norm.ppf(1 - settings.alpha / 2) * sd0
                tau = k["rho_true"].to_numpy()
                expected = 1 - stats.norm.cdf((c - tau) / sd0) + stats.norm.cdf((-c - tau) / sd0)
                np.testing.assert_allclose(k["power"], expected, rtol=1e-9, atol=1e-12)
        elif col == "power_mcse":
            p = table.loc[mc, "power"]
            _same(table.loc[mc, "power_mcse"], np.sqrt(p * (1 - p) / settings.n_reps))
            assert (table.loc[~mc, "power_mcse"] == 0).all()
        else:
            raise AssertionError(f"no check for power column {col!r}")

    return check


def _expected_min_detectable(power: pd.DataFrame, settings) -> pd.DataFrame:
    """Linear interpolation of the simulated power at the target (first grid point at or above it), delta-method
    SE ``sqrt(t (1 - t) / N) / slope``; the noncentral t's root by bisection."""
    rows = []
    target = settings.target_power
    for (key, statistic, test), g in power.groupby(["scenario", "statistic", "test"], sort=False):
        g = g.assign(mag=g["rho_true"].abs()).sort_values("mag")
        mag, pw = g["mag"].to_numpy(), g["power"].to_numpy()
        sign = 1.0 if (g["rho_true"] >= 0).all() else -1.0
        row = {"scenario": key, "statistic": statistic, "test": test,
               "direction": "positive" if sign > 0 else "negative",
               "target_power": target, "alpha": settings.alpha, "alternative": settings.alternative,
               "search_lo": mag[0], "search_hi": mag[-1], "power_at_search_hi": pw[-1],
               "n_reps": 0 if test == "asymptotic" else settings.n_reps,
               "estimate": "monte_carlo" if test != "asymptotic" else
               "noncentral_t_approximation" if statistic == "spearman" else "normal_approximation"}  # fmt: skip
        reached = np.nonzero(pw >= target)[0]
        if reached.size == 0:
            row |= {"rho_star": math.nan, "rho_star_se": math.nan, "status": "not_reached"}
        elif reached[0] == 0:
            row |= {"rho_star": mag[0], "rho_star_se": math.nan, "status": "at_grid_start"}
        elif test == "asymptotic" and statistic == "spearman":
            n = int(g["n"].iloc[0])
            crit = stats.t.ppf(1 - settings.alpha / 2, n - 2)

            def power_at(m, n=n, crit=crit, sign=sign):
                d = sign * m * math.sqrt(n - 2) / math.sqrt(1 - m * m)
                return 1 - stats.nct.cdf(crit, n - 2, d) + stats.nct.cdf(-crit, n - 2, d)

            lo, hi = mag[0], mag[-1]
            for _ in range(200):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if power_at(mid) < target else (lo, mid)
            row |= {"rho_star": (lo + hi) / 2, "rho_star_se": math.nan, "status": "ok"}
        else:
            i = reached[0]
            slope = (pw[i] - pw[i - 1]) / (mag[i] - mag[i - 1])
            star = mag[i - 1] + (target - pw[i - 1]) / slope
            near = [j for j in range(max(i - 2, 0), min(i + 2, len(mag))) if 0 < pw[j] < 1 and mag[j] < 1]
            if test != "asymptotic" and len(near) >= 3:  # written out: least squares of probit on atanh
                x, y = np.arctanh(mag[near]), stats.norm.ppf(pw[near])
                b = float(np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2))
                fitted = math.tanh((stats.norm.ppf(target) - (y.mean() - b * x.mean())) / b)
                if b > 0 and mag[i - 1] <= fitted <= mag[i]:
                    star = fitted
                    slope = stats.norm.pdf(stats.norm.ppf(target)) * b / (1 - star * star)
                    row["estimate"] = "monte_carlo_probit"
            se = math.nan if test == "asymptotic" else math.sqrt(target * (1 - target) / settings.n_reps) / slope
            row |= {"rho_star": star, "rho_star_se": se, "status": "ok"}
        rows.append(row)
    return pd.DataFrame(rows)


def _min_detectable_check(col):
    def check(table, power, settings):
        if col in ("scenario", "case", "generator", "n", "k", "template", "rho", "estimand", "statistic"):
            _scenario_info(table, col)
            return
        keys = ["scenario", "statistic", "test"]
        expected = _expected_min_detectable(power, settings).set_index(keys)
        expected = expected.loc[list(zip(*(table[k] for k in keys), strict=True))].reset_index()
        assert table["test"].tolist() == expected["test"].tolist()
        if col == "rho_star":
            np.testing.assert_allclose(table[col], expected[col], rtol=0, atol=1e-9)
        else:
            _same(table[col], expected[col])

    return check


def test_every_power_column_has_a_check_and_the_tables_have_exactly_them(power_run):
    from simulation.power.curves import MIN_DETECTABLE_COLUMNS, POWER_COLUMNS

    result, _ = power_run
    assert list(result.power.columns) == list(POWER_COLUMNS)
    assert list(result.min_detectable.columns) == list(MIN_DETECTABLE_COLUMNS)
    assert (result.min_detectable["status"] == "ok").any() and (result.min_detectable["status"] != "ok").any()


def _power_columns():
    from simulation.power.curves import POWER_COLUMNS

    return POWER_COLUMNS


def _min_detectable_columns():
    from simulation.power.curves import MIN_DETECTABLE_COLUMNS

    return MIN_DETECTABLE_COLUMNS


@pytest.mark.parametrize("column", _power_columns())
def test_power_column(power_run, column):
    result, settings = power_run
    _power_check(column)(result.power, settings)


@pytest.mark.parametrize("column", _min_detectable_columns())
def test_min_detectable_column(power_run, column):
    result, settings = power_run
    _min_detectable_check(column)(result.min_detectable, result.power, settings)


def test_in_order_keeps_a_writer_to_its_column_list():
    """``columns.in_order``: the same columns in another order are put in the list's order; a missing or an
    unexpected column is an error naming it (a writer and its list disagree), never a silently different
    table."""
    from simulation.study import columns

    frame = pd.DataFrame({"test": ["t"], "alternative": ["two-sided"], "p_value": [0.5], "p_value_mcse": [0.0],
                          "n_perm": [0]})  # fmt: skip
    shuffled = frame[["p_value", "test", "n_perm", "alternative", "p_value_mcse"]]
    assert list(columns.in_order(shuffled, columns.TESTS, "tests").columns) == list(columns.names(columns.TESTS))
    with pytest.raises(RuntimeError, match=r"missing \['n_perm'\], unexpected \[\]"):
        columns.in_order(frame.drop(columns="n_perm"), columns.TESTS, "tests")
    with pytest.raises(RuntimeError, match=r"missing \[\], unexpected \['extra'\]"):
        columns.in_order(frame.assign(extra=1), columns.TESTS, "tests")


def test_the_written_column_lists_are_the_documented_ones():
    """The names the writers use are those of :mod:`simulation.study.columns` (what the reference documents)."""
    from simulation.power import curves as power
    from simulation.study import blocks, columns, runner

    assert runner.COVERAGE_COLUMNS == columns.names(columns.COVERAGE)
    assert power.POWER_COLUMNS == columns.names(columns.POWER)
    assert power.MIN_DETECTABLE_COLUMNS == columns.names(columns.MIN_DETECTABLE)
    assert blocks.REPLICATE_COLUMNS == columns.names(columns.REPLICATES)
    for _file, _row, cols in columns.TABLES.values():
        assert all(c.meaning and c.name.isidentifier() for c in cols)
