"""Human-readable summaries of the studies, in Markdown (figures are in :mod:`simulation.present.figures`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a GitHub-flavoured Markdown table (header, rule, one line per row; values as ``str`` gives
    them)."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


#: Short labels of the statistics in tables and figures.
STATISTIC_LABELS = {"spearman": "rho_s", "kendall_b": "tau_b", "pearson": "r"}


def _label_by_statistic(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """``table`` with ``column`` suffixed by its row's statistic (``bca [tau_b]``) when the table holds any
    statistic besides Spearman; unchanged otherwise (a Spearman-only study reads as before)."""
    if "statistic" not in table or set(table["statistic"]) <= {"spearman"}:
        return table
    labels = table["statistic"].map(lambda v: STATISTIC_LABELS.get(v, v))
    return table.assign(**{column: table[column] + " [" + labels + "]"})


def label_statistics(coverage: pd.DataFrame) -> pd.DataFrame:
    """A coverage table with each method labelled by its statistic (see :func:`_label_by_statistic`)."""
    return _label_by_statistic(coverage, "method")


def label_tests(table: pd.DataFrame) -> pd.DataFrame:
    """A power table with each test labelled by its statistic (see :func:`_label_by_statistic`)."""
    return _label_by_statistic(table, "test")


def statistic_comparison(coverage: pd.DataFrame) -> list[str]:
    """Markdown lines comparing the statistics of a run on the same datasets: per statistic and method, the
    mean coverage error, how often the nominal level lies outside the coverage's 95% Monte Carlo interval
    (separately for designs with tied x and all-distinct x), and the mean width in units of the statistic's
    own sampling SD (``mean_width / empirical_se``: raw widths are not comparable, tau-b runs on a smaller
    scale than r_s); then the mean absolute coverage error by tie structure and ``|rho|``."""
    nominal = float(coverage["confidence_level"].iloc[0])
    tied = coverage["template"] != "all_distinct"
    frame = coverage.assign(
        error=coverage["coverage"] - nominal,
        off=(coverage["coverage_upper95"] < nominal) | (coverage["coverage_lower95"] > nominal),
        std_width=coverage["mean_width"] / coverage["empirical_se"],
        ties=np.where(tied, "tied x", "all distinct"),
        k=coverage["k"],
    )
    rows = []
    for (statistic, method), g in frame.groupby(["statistic", "method"], sort=False):
        row = {"statistic": statistic, "method": method}
        for ties, h in g.groupby("ties", sort=False):
            row[f"mean abs error ({ties})"] = f"{h['error'].abs().mean():.3f}"
            row[f"off nominal ({ties})"] = f"{int(h['off'].sum())}/{len(h)}"
        row["width / SE"] = f"{g['std_width'].mean():.2f}"
        rows.append(row)
    by_k = frame.assign(abs_error=frame["error"].abs(), rho_band=frame["rho"].abs().round(2)).pivot_table(
        index=["statistic", "k"], columns="rho_band", values="abs_error", aggfunc="mean", sort=True
    )
    order = {name: i for i, name in enumerate(dict.fromkeys(coverage["statistic"]))}
    by_k = by_k.sort_index(key=lambda idx: idx.map(order) if idx.name == "statistic" else idx)
    by_k.columns = [f"rho_s {c:g}" for c in by_k.columns]
    by_k = by_k.map(lambda v: "–" if pd.isna(v) else f"{v:.3f}").reset_index()
    mcse = float(coverage["coverage_mcse"].median())
    return [
        "## Spearman and Kendall on the same datasets",
        "",
        f"Coverage error = coverage - {nominal:g}; 'off nominal' counts scenarios whose 95% Monte Carlo interval "
        f"excludes the nominal level (about 5% by chance alone); width / SE is the mean interval width over the "
        f"statistic's own sampling SD across datasets (about {2 * 1.96:.2f} for a well-sized interval), so it "
        f"compares the statistics on one scale. Median coverage MCSE {mcse:.4f}.",
        "",
        markdown_table(pd.DataFrame(rows)),
        "",
        "Mean absolute coverage error over the methods, by the number of distinct x values (k = n: all "
        "distinct) and the scenario's |rho_s| target:",
        "",
        markdown_table(by_k),
        "",
    ]


def method_overview(coverage: pd.DataFrame) -> pd.DataFrame:
    """Per method: scenarios, coverage range, how often the nominal level lies outside the coverage's 95%
    Monte Carlo interval, mean width, the median variance ratio of the coverage estimator, failures."""
    rows = []
    for method, g in coverage.groupby("method", sort=False):
        nominal = float(g["confidence_level"].iloc[0])
        rows.append(
            {
                "method": method,
                "scenarios": len(g),
                "mean coverage": f"{g['coverage'].mean():.3f}",
                "min": f"{g['coverage'].min():.3f}",
                "max": f"{g['coverage'].max():.3f}",
                "under-covers": int((g["coverage_upper95"] < nominal).sum()),
                "over-covers": int((g["coverage_lower95"] > nominal).sum()),
                "mean width": f"{g['mean_width'].mean():.3f}",
                "variance ratio": f"{g['variance_ratio_coverage'].median():.1f}",
                "failed replicates": int(g["n_failed"].sum()),
            }
        )
    return pd.DataFrame(rows)


def _asymptotic_clause(coverage: pd.DataFrame) -> str:
    kinds = set(coverage.loc[coverage["method_kind"] == "asymptotic", "estimator"])
    if not kinds:
        return ""
    if kinds == {"plain"}:
        return " Asymptotic methods: plain means over the cheap phase."
    if "plain" not in kinds:
        return (
            " Asymptotic methods: means over the cheap phase with the generator's exact mixing control (plain "
            "means beside them)."
        )
    return (
        " Asymptotic methods: means over the cheap phase, with the generator's exact mixing control where it has "
        "one (column `estimator`)."
    )


def estimator_sentence(coverage: pd.DataFrame) -> str:
    """What the headline numbers are, in one sentence or two (for summaries and figure notes)."""
    kinds = set(coverage.loc[coverage["method_kind"] == "bootstrap", "estimator"])
    if kinds == {"control_variates"}:
        boot = "Bootstrap methods: two-phase control-variate estimates (plain means beside them as `*_plain`)."
    elif kinds & {"control_variates", "control_variates (misses plain)"}:
        boot = (
            "Bootstrap methods: two-phase control-variate estimates, except rows with failed replicates (plain "
            "means; column `estimator`)."
        )
    elif kinds:
        boot = "Bootstrap methods: plain means over the bootstrapped datasets."
    else:
        boot = ""
    return (boot + _asymptotic_clause(coverage)).strip()


def summary_markdown(coverage: pd.DataFrame, provenance: dict[str, Any]) -> str:
    """The ``summary.md`` written beside the tables (methods labelled by statistic when there are several)."""
    raw = coverage
    coverage = label_statistics(coverage)
    ident = provenance.get("identity", {})
    settings = provenance.get("settings", {})
    versions = provenance.get("versions", {})
    level = float(coverage["confidence_level"].iloc[0])
    boot_reps = coverage.loc[coverage["method_kind"] == "bootstrap", "n_reps"]
    if boot_reps.empty:
        boot_reps = coverage["n_reps"]
    lines = [
        f"# Coverage study: {provenance.get('study') or 'custom scenarios'}",
        "",
        f"- scenarios: {coverage['scenario'].nunique()}; bootstrapped datasets per scenario: "
        f"{boot_reps.min()}–{boot_reps.max()}; cheap-phase datasets: {coverage['n_reps_cheap'].min()}–"
        f"{coverage['n_reps_cheap'].max()}; resamples: {ident.get('n_boot')}; "
        f"confidence level: {level:g}; seed: {ident.get('seed')}",
        f"- methods: {', '.join(settings.get('methods', []))}",
        f"- statistics: {', '.join(ident.get('statistics', ['spearman']))}",
        "- truths (`estimand`): " + _estimand_counts(raw),
        f"- versions: {', '.join(f'{k} {v}' for k, v in versions.items())}; commit: {provenance.get('git_commit')}",
        f"- started {provenance.get('started_at')}, finished {provenance.get('finished_at')}",
        *_target_lines(settings),
        "",
        "Coverage is the share of datasets whose interval contains `rho_true` (the scenario's estimand, "
        f"measured to an MCSE of at most {ident.get('truth_mcse')} where it is not exact). "
        + estimator_sentence(coverage)
        + " Every estimate carries its MCSE (Morris, White & Crowther 2019; for the control-variate estimator "
        "from its own variance). A method under-covers (over-covers) in a scenario when the nominal level lies "
        "above (below) the coverage's 95% Monte Carlo interval, estimate ± 1.96 MCSE (expect about 5% of "
        "scenarios by chance alone). `bias` = `mean_rho_hat` - `rho_true`, and its MCSE includes the measured "
        "truth's own (`rho_true_mcse`); for `expected_sample` scenarios the bias is zero by construction (the "
        "truth is the expected estimate), so there the column checks the truth's measurement.",
        "",
        "## By method",
        "",
        markdown_table(method_overview(coverage)),
        "",
        "## Coverage per scenario (± MCSE)",
        "",
    ]
    wide = coverage.assign(
        cell=[f"{c:.3f} ± {m:.3f}" for c, m in zip(coverage["coverage"], coverage["coverage_mcse"], strict=True)]
    ).pivot_table(index=["scenario", "rho_true"], columns="method", values="cell", aggfunc="first", sort=False)
    wide = wide[[m for m in coverage["method"].unique()]].reset_index()
    wide["rho_true"] = wide["rho_true"].map(lambda v: f"{v:g}")
    lines += [markdown_table(wide), ""]
    if "statistic" in raw and raw["statistic"].nunique() > 1:
        lines += statistic_comparison(raw)
    flagged = coverage[coverage["status"] != "ok"]
    if len(flagged):
        columns = ["scenario", "method", "n_failed", "n_out_of_range", "n_reps_resamples_dropped", "status"]
        lines += [
            "## Rows with a status other than `ok`",
            "",
            "`some_failed`/`all_failed`: datasets whose interval failed (`n_failed`); `out_of_range`: intervals "
            "that leave the statistic's range, kept as computed (`n_out_of_range`); `resamples_dropped`: datasets "
            "that dropped more than 5% of their resamples (`n_reps_resamples_dropped`); `target_not_met`: a "
            "precision target not reached.",
            "",
            markdown_table(flagged[[c for c in columns if c in flagged]]),
            "",
        ]
    return "\n".join(lines)


def _estimand_counts(coverage: pd.DataFrame) -> str:
    """Per statistic, how many scenarios are scored against a population value and how many against the
    expected sample statistic at their n (measured where not exact: a user statistic without a closed form)."""
    if "estimand" not in coverage:
        return "not recorded"
    parts = []
    per = coverage.drop_duplicates(["scenario", "statistic"]) if "statistic" in coverage else coverage
    for stat, group in per.groupby("statistic", sort=False) if "statistic" in per else [("spearman", per)]:
        counts = group["estimand"].value_counts()
        parts.append(f"{stat}: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    return "; ".join(parts) + " (`expected_sample`: the expected sample statistic at the scenario's n)"


def _target_lines(settings: dict[str, Any]) -> list[str]:
    """The summary's lines on precision targets: what was asked, the caps, and what was not reached."""
    targets = settings.get("targets") or {}
    if not targets:
        return []
    asked = ", ".join(f"{k} MCSE <= {v:g}" for k, v in targets.items())
    lines = [f"- precision targets: {asked} (caps: {settings.get('max_reps')} bootstrapped datasets per scenario, "
             f"{settings.get('max_rounds')} rounds)"]  # fmt: skip
    short = settings.get("targets_not_met") or {}
    if short.get("rows"):
        w = short["worst"]
        mcse = "undefined" if w.get("mcse") is None else f"{w['mcse']:.4g}"
        lines.append(
            f"- **targets not met** in {short['rows']} row(s) (status `target_not_met`): the worst is {w['measure']} "
            f"MCSE {mcse} against {w['target']:g} ({w['scenario']}, {w['statistic']}, {w['method']})"
        )
    else:
        lines.append("- every targeted MCSE was reached")
    return lines


# --------------------------------------------------------------------------
# Power study
# --------------------------------------------------------------------------
def power_summary_markdown(mdc: pd.DataFrame, provenance: dict[str, Any]) -> str:
    """``power_summary.md``: the minimum detectable correlations, one row per scenario and direction (tests
    labelled by statistic when there are several: Kendall's in units of tau-b)."""
    mdc = label_tests(mdc)
    ident = provenance.get("identity", {})
    wide = mdc.assign(
        cell=[
            (f"{r:.3f} (approx.)" if not kind.startswith("monte_carlo")
             else f"{r:.3f} ± {se:.3f}" if se > 0 else f"{r:.3f}")
            if st == "ok" else st
            for r, se, st, kind in zip(mdc["rho_star"], mdc["rho_star_se"], mdc["status"],
                                       mdc.get("estimate", pd.Series(["monte_carlo"] * len(mdc))), strict=True)
        ]
    ).pivot_table(index=["scenario", "direction"], columns="test", values="cell", aggfunc="first", sort=False)
    wide = wide.reset_index()
    lines = [
        f"# Power study: {provenance.get('study') or 'custom scenarios'}",
        "",
        f"- {ident.get('n_reps')} simulated datasets per grid point; |rho| grid "
        f"{min(ident.get('grid', [0]))}–{max(ident.get('grid', [0]))} ({len(ident.get('grid', []))} points); "
        f"alpha {ident.get('alpha')} ({ident.get('alternative')}); target power {ident.get('target_power')}; "
        f"seed {ident.get('seed')}; {ident.get('n_perm')} permutations per shared null",
        f"- commit {provenance.get('git_commit')}; started {provenance.get('started_at')}, "
        f"finished {provenance.get('finished_at')}",
        "",
        "Minimum detectable |rho| at the target power (± Monte Carlo SE by the delta method). The `asymptotic` "
        "column is the noncentral-t **approximation** (marked approx.): it has no Monte Carlo error but is not "
        "exact (on the default study its |rho| differs from the simulated t test's by up to 0.005, median 0.0025; "
        "power by up to 0.02), so no ± is given. `not_reached`: "
        "the target power is not reached on the grid. Kendall's tau-b tests (`[tau_b]`) are `permutation` and "
        "`normal_approx` (the tie-corrected normal approximation), their minimum detectable correlation in units "
        "of tau-b.",
        "",
        markdown_table(wide),
        "",
    ]
    return "\n".join(lines)
