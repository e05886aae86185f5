"""The columns of every table the package writes: name, meaning and unit, in the order written.

One list per table.  The writers build their tables from these names (and
refuse rows whose columns differ), ``tests/test_columns.py`` checks every
column by name against an independent computation, and the documentation's
table reference is generated from the same lists (``docs/hooks.py``), so a
column cannot be added, renamed or dropped in one place only.

Units: ``scale`` is the statistic's own scale (Spearman's rho, Kendall's
tau-b or a user statistic, as named by the row's ``statistic``);
``proportion`` is a share of datasets in [0, 1]; ``count`` an integer.
"""

from __future__ import annotations

from typing import NamedTuple

from simulation.study.estimators import MEASURES, RATIO_MEASURES


class Column(NamedTuple):
    """One column of a table."""

    name: str
    meaning: str
    unit: str = ""


def names(columns: tuple[Column, ...]) -> tuple[str, ...]:
    """The names of ``columns``, in order."""
    return tuple(c.name for c in columns)


_SCALE = "scale"
_PROP = "proportion"

#: The scenario fields that start the coverage, power and minimum-detectable tables (listed in the table reference).
#:
#: :meta hide-value:
SCENARIO: tuple[Column, ...] = (
    Column("scenario", "the scenario's key: a readable name made of its fields, unique in a study; it also seeds "
           "the scenario's random streams"),
    Column("statistic", "the statistic the row is about: `spearman`, `kendall_b`, `pearson` or a user statistic's "
           "name"),
    Column("case", "the case label from the study file (a study's data set or design)"),
    Column("generator", "the data-generating process (`rank_mixing`, `gaussian_copula`, `log_linear`, `empirical`, "
           "`bivariate_normal`, `bivariate_t`, `plackett`)"),
    Column("n", "sample size of each dataset", "count"),
    Column("k", "distinct x values (n for untied x)", "count"),
    Column("template", "the tie template of x (`even`, `heavy_center`, ..., `custom`, `all_distinct`)"),
    Column("rho", "the target Spearman correlation the generator is calibrated to", "Spearman's rho"),
    Column("estimand", "what `rho_true` is: `population` (exact) or `expected_sample` (the expected sample "
           "statistic at this n and tie structure, measured)"),
)

_MEASURE_MEANING = {
    "mean_ci_lower": ("mean lower endpoint of the interval over the datasets where it is ok", _SCALE),
    "mean_ci_upper": ("mean upper endpoint of the interval over the datasets where it is ok", _SCALE),
    "mean_width": ("mean width (upper minus lower endpoint)", _SCALE),
    "miss_below": ("share of datasets whose interval lies wholly below the truth (upper < `rho_true`)", _PROP),
    "miss_above": ("share of datasets whose interval lies wholly above the truth (lower > `rho_true`)", _PROP),
    "coverage": ("share of datasets whose interval contains the truth (1 - `miss_below` - `miss_above`)", _PROP),
    "coverage_lower_bound": ("coverage of the lower endpoint used alone as a one-sided bound (1 - `miss_above`)",
                             _PROP),
    "coverage_upper_bound": ("coverage of the upper endpoint used alone as a one-sided bound (1 - `miss_below`)",
                             _PROP),
}
_SUFFIX_MEANING = {
    "": "headline estimate of the {m}: the two-phase control-variate estimate where `estimator` says so, "
        "else the plain mean",
    "_mcse": "Monte Carlo standard error of `{name}`",
    "_plain": "plain mean of the {m} over the bootstrapped (bootstrap methods) or cheap-phase (asymptotic "
              "methods) datasets",
    "_plain_mcse": "Monte Carlo standard error of `{name}_plain` (sqrt(p(1-p)/n) for proportions, SD/sqrt(n) "
                   "for means; Morris, White & Crowther 2019, Table 6)",
}


def _measure_columns() -> tuple[Column, ...]:
    out = []
    for name in MEASURES:
        meaning, unit = _MEASURE_MEANING[name]
        for suffix, text in _SUFFIX_MEANING.items():
            if suffix == "":
                text = f"{meaning[0].upper()}{meaning[1:]}; " + text.format(m="measure", name=name)
            else:
                text = text.format(m=meaning.split(" (")[0], name=name)
            out.append(Column(f"{name}{suffix}", text, unit))
    return tuple(out)


#: ``coverage.parquet``: one row per scenario x statistic x method (its columns: the table reference).
#:
#: :meta hide-value:
COVERAGE: tuple[Column, ...] = (
    *SCENARIO,
    Column("rho_true", "the truth the intervals are scored against, on the statistic's scale (see `estimand`)",
           _SCALE),
    Column("rho_true_mcse", "Monte Carlo standard error of `rho_true` (0 when exact)", _SCALE),
    Column("rho_true_n_reps", "datasets that measured `rho_true` (0 when exact)", "count"),
    Column("coefficient", "the generator's calibrated coefficient (mixing weight, latent correlation, ...)"),
    Column("calibration_achieved", "the expected sample Spearman at `coefficient`, as calibration estimated it",
           "Spearman's rho"),
    Column("calibration_mcse", "Monte Carlo standard error of `calibration_achieved` (0 when exact)",
           "Spearman's rho"),
    Column("method", "the interval method (`percentile`, `basic`, `bca`, `normal`, `studentized`, "
           "`fisher_z_fieller`, ...)"),
    Column("method_kind", "`bootstrap` or `asymptotic`"),
    Column("confidence_level", "nominal two-sided confidence level", _PROP),
    Column("n_boot", "bootstrap resamples per dataset (0 for asymptotic methods)", "count"),
    Column("n_reps", "datasets behind the row's plain estimates: the bootstrap phase's M for bootstrap methods, "
           "the cheap phase's N for asymptotic ones", "count"),
    Column("n_reps_cheap", "datasets of the scenario's cheap phase (N)", "count"),
    Column("n_failed", "datasets where the estimate was undefined or this method's interval failed", "count"),
    *_measure_columns(),
    *(Column(f"variance_ratio_{m}", f"plain variance of `{m}` over the headline's: (`{m}_plain_mcse` / "
             f"`{m}_mcse`)^2, how many times fewer datasets the headline needed", "ratio") for m in RATIO_MEASURES),
    *(c for m in RATIO_MEASURES for c in (
        Column(f"residual_share_{m}", f"share a of `{m}`'s plain variance left to the bootstrapped datasets, "
               "with MCSE^2 = sigma^2 (a / M + b / N)", "ratio"),
        Column(f"cheap_share_{m}", f"share b of `{m}`'s plain variance paid by the cheap phase (same formula)",
               "ratio"),
    )),
    Column("sd_ci_lower", "SD of the lower endpoint over the datasets where the interval is ok", _SCALE),
    Column("sd_ci_upper", "SD of the upper endpoint over the datasets where the interval is ok", _SCALE),
    Column("estimator", "which estimator the headline columns show: `control_variates`, `control_variates (misses "
           "plain)` (too few expected misses per half for a one-sided regression) or `plain`"),
    Column("coverage_lower95", "lower end of the 95% Monte Carlo interval of `coverage` (estimate - 1.96 MCSE, "
           "at least 0)", _PROP),
    Column("coverage_upper95", "upper end of that interval (at most 1)", _PROP),
    Column("coverage_wilson_lower", "lower end of the Wilson 95% interval of the plain count of covering datasets",
           _PROP),
    Column("coverage_wilson_upper", "upper end of the Wilson 95% interval", _PROP),
    Column("mean_rho_hat", "mean of the estimate over the cheap phase's datasets", _SCALE),
    Column("bias", "`mean_rho_hat` - `rho_true` (0 by construction for `expected_sample`: a check of the truth "
           "there)", _SCALE),
    Column("bias_mcse", "Monte Carlo standard error of `bias`: sqrt(SE^2 / N + `rho_true_mcse`^2)", _SCALE),
    Column("empirical_se", "SD of the estimate over the cheap phase's datasets", _SCALE),
    Column("empirical_se_mcse", "Monte Carlo standard error of `empirical_se`: SE / sqrt(2 (N - 1))", _SCALE),
    Column("model_se_scale", "the scale of the method's model SE: `estimate` (the statistic's own) or `fisher_z` "
           "(the SE of atanh of the estimate)"),
    Column("model_se", "the model SE: the root mean square of the SE the method builds its interval from "
           "(Morris, White & Crowther 2019, Table 6): bootstrap methods the bootstrap SE (the SD of the resampled "
           "estimates, (upper - lower) / 2z of the `normal` interval) over the bootstrapped datasets; an "
           "asymptotic method its own SE (a Fisher-z variance's square root, Kendall's ASE, a delta-method SE) "
           "over the cheap phase, leaving out datasets whose SE is not finite (|estimate| = 1 on Fisher's z)",
           "scale of `model_se_scale`"),
    Column("model_se_mcse", "Monte Carlo standard error of `model_se`: sqrt(Var(SE^2) / (4 k ModSE^2))",
           "scale of `model_se_scale`"),
    Column("model_se_n_reps", "datasets behind `model_se` (k)", "count"),
    Column("empirical_se_model_scale", "the empirical SE on the model SE's scale: `empirical_se`, or on Fisher's z "
           "the SD of atanh(estimate) over the cheap phase's datasets with |estimate| < 1",
           "scale of `model_se_scale`"),
    Column("empirical_se_model_scale_mcse", "Monte Carlo standard error of `empirical_se_model_scale`: "
           "SE / sqrt(2 (N' - 1))", "scale of `model_se_scale`"),
    Column("relative_error_model_se", "relative error in the model SE, 100 (`model_se` / `empirical_se_model_scale` "
           "- 1) (Morris et al. 2019, Table 6): positive when the method's SE is too large (intervals too wide), "
           "negative when too small", "percent"),
    Column("relative_error_model_se_mcse", "Monte Carlo standard error of `relative_error_model_se`: "
           "100 (ModSE / EmpSE) sqrt(Var(SE^2) / (4 k ModSE^4) + 1 / (2 (N' - 1)))", "percent"),
    Column("mse", "mean squared error of the estimate, mean((estimate - `rho_true`)^2), over the cheap phase",
           "squared scale"),
    Column("mse_mcse", "Monte Carlo standard error of `mse`: sqrt(Var((estimate - truth)^2) / N + (2 `bias` "
           "`rho_true_mcse`)^2)", "squared scale"),
    Column("rmse", "root mean squared error, sqrt(`mse`)", _SCALE),
    Column("rmse_mcse", "Monte Carlo standard error of `rmse`: `mse_mcse` / (2 `rmse`)", _SCALE),
    Column("coverage_bias_eliminated", "bias-eliminated coverage, the share of intervals that contain the expected "
           "estimate `coverage_centre` (Morris et al. 2019, Table 6): for an `expected_sample` estimand the truth is "
           "the expected estimate, so it equals `coverage`; for a `population` estimand the plain share of the ok "
           "intervals that contain the expected estimate, measured before the datasets are scored", _PROP),
    Column("coverage_bias_eliminated_mcse", "Monte Carlo standard error of `coverage_bias_eliminated`: "
           "`coverage_mcse` for an `expected_sample` estimand, else sqrt(p (1 - p) / n_ok) (the centre's own "
           "error, `coverage_centre_mcse`, not included)", _PROP),
    Column("coverage_centre", "the expected estimate at the scenario's n that `coverage_bias_eliminated` is "
           "scored against: `rho_true` for an `expected_sample` estimand; for a `population` one the mean "
           "estimate over datasets of a stream of its own, measured to the truth's precision (exactly the truth "
           "at rho = 0 for an odd-symmetric statistic)", _SCALE),
    Column("coverage_centre_mcse", "Monte Carlo standard error of `coverage_centre`", _SCALE),
    Column("reference_method", "the method `relative_width` and `relative_precision` compare with (`run "
           "--reference-method`; `percentile` unless named)"),
    Column("relative_width", "the plain mean width over the reference method's on the same datasets (methods of one "
           "phase) or on independent ones (a bootstrap and an asymptotic method); NaN where the statistic lacks "
           "the reference method", "ratio"),
    Column("relative_width_mcse", "Monte Carlo standard error of `relative_width` by the delta method, with the "
           "covariance of the two widths on shared datasets", "ratio"),
    Column("relative_precision", "relative precision of the interval, 100 ((W_ref / W)^2 - 1): Morris et al.'s "
           "relative precision with the width 2 z SE in place of the SE (the methods of a statistic share one "
           "estimate, whose own relative precision is 0)", "percent"),
    Column("relative_precision_mcse", "Monte Carlo standard error of `relative_precision`: 200 (W_ref / W)^2 "
           "sd(log(W / W_ref))", "percent"),
    Column("n_out_of_range", "bootstrapped datasets whose interval (computed, kept as its formula gives it) "
           "leaves the statistic's range, [-1, 1] for a correlation (0 for asymptotic methods)", "count"),
    Column("n_resamples_dropped", "resamples, over the row's bootstrapped datasets, without a finite statistic "
           "(constant x or y in the resample, or a NaN or infinite value), left out of the bootstrap distribution "
           "(0 for asymptotic methods)", "count"),
    Column("n_reps_resamples_dropped", "bootstrapped datasets that dropped more than 5% of their resamples "
           "(`DROPPED_RESAMPLES_THRESHOLD`): their intervals condition on the resamples where the statistic is "
           "defined", "count"),
    Column("status", "`ok`, or the flags that apply joined by `+`: `all_failed` or `some_failed` (some datasets' "
           "intervals failed: the row's means are over the others), `out_of_range` (`n_out_of_range` > 0), "
           "`resamples_dropped` (`n_reps_resamples_dropped` > 0), `target_not_met` (a precision target of the run "
           "was not reached: a cap stopped it; see the provenance's `targets_not_met`)"),
)

#: ``replicates.parquet`` (``run --replicates``): one row per scenario x statistic x dataset x bootstrap method.
#:
#: :meta hide-value:
REPLICATES: tuple[Column, ...] = (
    Column("scenario", "the scenario's key"),
    Column("statistic", "the statistic"),
    Column("rep", "the dataset's index in the scenario's bootstrap phase", "count"),
    Column("method", "the bootstrap method"),
    Column("rho_hat", "the statistic of the dataset", _SCALE),
    Column("ci_lower", "the interval's lower endpoint (NaN when it failed)", _SCALE),
    Column("ci_upper", "the interval's upper endpoint (NaN when it failed)", _SCALE),
    Column("status", "`ok` or why the interval failed (`nan_estimate`, `too_few_resamples`, `constant_bootstrap`, "
           "`bca_bias_undefined`, `bca_accel_undefined`, `studentized_infinite`, `undefined_se`, `statistic_raised`: "
           "a user statistic raised on the dataset)"),
    Column("n_boot_valid", "resamples with a defined statistic (the others had constant x or y)", "count"),
    Column("z0", "BCa's bias correction (NaN where undefined)"),
    Column("acceleration", "BCa's jackknife acceleration (NaN where undefined)"),
)

#: ``failures.parquet``: the failure ledger, one row per dataset, method and reason that did not give a usable
#: result (written by every run; empty when nothing failed).
#:
#: :meta hide-value:
FAILURES: tuple[Column, ...] = (
    Column("scenario", "the scenario's key"),
    Column("statistic", "the statistic"),
    Column("method", "the interval method, or `estimate` for the dataset's estimate itself"),
    Column("replicate", "the dataset's index in its phase (`python -m simulation replay` regenerates a bootstrap "
           "phase's dataset)", "count"),
    Column("phase", "`bootstrap` (the bootstrapped datasets) or `cheap` (the cheap phase: asymptotic methods)"),
    Column("reason", "`nan_estimate` (the estimate is not finite), an interval's status (`too_few_resamples`, "
           "`constant_bootstrap`, `bca_bias_undefined`, `bca_accel_undefined`, `studentized_infinite`, "
           "`undefined_se`), `out_of_range` (an ok interval that leaves the statistic's range, kept as computed), "
           "`resamples_dropped` (more than 5% of the dataset's resamples without a finite statistic) or "
           "`statistic_raised` (a user statistic raised an exception on the dataset or its resamples: the dataset "
           "counts as one without an estimate, with method `estimate`)"),
)

#: ``power/power.parquet``: one row per scenario x statistic x test x grid point.
#:
#: :meta hide-value:
POWER: tuple[Column, ...] = (
    *SCENARIO,
    Column("rho_true", "the grid point: the true correlation on the statistic's scale", _SCALE),
    Column("test", "the test (`permutation`, `t_approx` for Spearman; `permutation`, `normal_approx`, "
           "`asymptotic` for Kendall; ...)"),
    Column("power", "share of datasets whose test rejects at `alpha`", _PROP),
    Column("power_mcse", "Monte Carlo standard error of `power` (0 for the `asymptotic` approximation)", _PROP),
    Column("rejections", "datasets that rejected", "count"),
    Column("n_reps", "datasets at the grid point (0 for the `asymptotic` approximation)", "count"),
)

#: ``power/min_detectable.parquet``: one row per scenario x statistic x test x direction.
#:
#: :meta hide-value:
MIN_DETECTABLE: tuple[Column, ...] = (
    *SCENARIO,
    Column("test", "the test"),
    Column("direction", "`positive` or `negative` correlations"),
    Column("target_power", "the power asked for", _PROP),
    Column("alpha", "the test's level", _PROP),
    Column("alternative", "`two-sided`, `greater` or `less`"),
    Column("search_lo", "smallest |correlation| of the grid searched", _SCALE),
    Column("search_hi", "largest |correlation| of the grid searched", _SCALE),
    Column("power_at_search_hi", "power at `search_hi` (below `target_power`: raise the grid's end)", _PROP),
    Column("n_reps", "datasets per grid point", "count"),
    Column("estimate", "`monte_carlo_probit` (read off a probit curve in atanh |rho| fitted to the simulated powers "
           "around the crossing), `monte_carlo` (interpolated linearly between the two grid points around it, where "
           "fewer than three powers inside (0, 1) are near it), or an approximation without simulation: "
           "`noncentral_t_approximation` (Spearman), `normal_approximation` (Kendall)"),
    Column("rho_star", "the minimum detectable |correlation|: where the power curve crosses `target_power` (NaN "
           "when not reached)", _SCALE),
    Column("rho_star_se", "its standard error by the delta method (NaN for an approximation)", _SCALE),
    Column("status", "`ok`, `not_reached` (the curve stays below the target) or `at_grid_start`"),
)

#: ``analyze``'s ``data_intervals.parquet``: Spearman's intervals for the data, one row per method.
#:
#: :meta hide-value:
DATA_INTERVALS: tuple[Column, ...] = (
    Column("method", "the interval method"),
    Column("kind", "`bootstrap` or `asymptotic`"),
    Column("ci_lower", "lower endpoint", "Spearman's rho"),
    Column("ci_upper", "upper endpoint", "Spearman's rho"),
    Column("status", "`ok` or why the interval failed"),
    Column("flags", "for a computed interval: empty, or `out_of_range` (it leaves [-1, 1], kept as its formula "
           "gives it) and `resamples_dropped` (more than 5% of the resamples had no statistic), joined by `+`"),
)

#: ``analyze``'s ``tests.parquet``: Spearman's tests of rho_s = 0 for the data.
#:
#: :meta hide-value:
TESTS: tuple[Column, ...] = (
    Column("test", "`permutation` (both variables' ties kept) or `t_approx`"),
    Column("alternative", "`two-sided`, `greater` or `less`"),
    Column("p_value", "the p-value", _PROP),
    Column("p_value_mcse", "Monte Carlo standard error of a permutation p-value (0 for `t_approx`)", _PROP),
    Column("n_perm", "permutations drawn (0 for `t_approx`)", "count"),
)

#: ``toolkit-study``'s ``toolkit_study.parquet``: one row per check x sample size.
#:
#: :meta hide-value:
TOOLKIT_STUDY: tuple[Column, ...] = (
    Column("check", "which toolkit procedure is checked (`p95_interval`, `mean_interval`, `bca_lower_bound`, "
           "`regression_size`, `regression_power`)"),
    Column("n", "sample size of each simulated measurement campaign", "count"),
    Column("parameter", "the procedure's own parameter (quantile, level, SLO threshold, ...)"),
    Column("truth", "the true value an interval or bound is scored against (NaN for the tests)"),
    Column("nominal", "the rate the procedure promises: coverage, or a test's size (NaN for power)", _PROP),
    Column("estimate", "the rate observed over the replicates", _PROP),
    Column("mcse", "Monte Carlo standard error of `estimate`", _PROP),
    Column("wilson_lower", "lower end of the Wilson 95% interval of `estimate`", _PROP),
    Column("wilson_upper", "upper end of the Wilson 95% interval", _PROP),
    Column("n_reps", "replicates", "count"),
)

#: Every table: file (relative to its results folder), what a row is, and its columns (the table reference
#: shows them all).
#:
#: :meta hide-value:
TABLES: dict[str, tuple[str, str, tuple[Column, ...]]] = {
    "coverage": ("coverage.parquet", "scenario x statistic x method", COVERAGE),
    "replicates": ("replicates.parquet (with `--replicates`)", "scenario x statistic x dataset x bootstrap method",
                   REPLICATES),
    "failures": ("failures.parquet", "scenario x statistic x method x dataset x reason", FAILURES),
    "power": ("power/power.parquet", "scenario x statistic x test x grid point", POWER),
    "min_detectable": ("power/min_detectable.parquet", "scenario x statistic x test x direction", MIN_DETECTABLE),
    "data_intervals": ("data_intervals.parquet (`analyze`)", "Spearman interval method", DATA_INTERVALS),
    "tests": ("tests.parquet (`analyze`)", "Spearman test", TESTS),
    "toolkit_study": ("toolkit_study.parquet (`toolkit-study`)", "check x sample size", TOOLKIT_STUDY),
}


def in_order(table, columns: tuple[Column, ...], what: str):
    """``table`` (a DataFrame) with exactly ``columns``, in their order; RuntimeError naming the difference
    otherwise (a writer and its column list disagree: a bug, not bad input)."""
    expected = list(names(columns))
    if list(table.columns) != expected:
        missing = [c for c in expected if c not in table.columns]
        extra = [c for c in table.columns if c not in expected]
        if missing or extra:
            raise RuntimeError(f"{what} has columns {list(table.columns)}; missing {missing}, unexpected {extra}")
        table = table[expected]
    return table
