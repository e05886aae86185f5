"""The ADEMP report of a coverage study: ``report.md``, ``report.html`` and the same content as JSON.

Morris, White & Crowther (2019, *Statistics in Medicine* 38:2074-2102) structure a simulation study as
**A**\\ ims, **D**\\ ata-generating mechanisms, **E**\\ stimands, **M**\\ ethods and **P**\\ erformance measures;
Siepe et al. (2024, *Psychological Methods*, the ADEMP-PreReg template) add the number of replications and its
justification, the handling of failures, and software and reproducibility.  :func:`ademp` builds that report
from a coverage table and its provenance alone (every number generated, none written by hand), with the
findings first; :func:`ademp_markdown` and :func:`ademp_html` write it (the HTML opens from disk with its
figures embedded and fetches nothing).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from simulation.present.figures import nested_loop_order
from simulation.present.report import STATISTIC_LABELS

#: Bradley's (1978, *Br. J. Math. Stat. Psychol.* 31:144-152) criteria of robustness: an error rate within
#: ``(1 -/+ share) alpha``, so coverage within ``level -/+ share (1 - level)`` (liberal: 0.925-0.975 at 95%;
#: stringent: 0.945-0.955).
CRITERIA = {"stringent": 0.1, "liberal": 0.5}


def coverage_tolerance(confidence_level: float, criterion: str = "stringent") -> float:
    """How far from nominal a coverage may fall and still count: Bradley's ``share * (1 - level)``."""
    if criterion not in CRITERIA:
        raise ValueError(f"`criterion` must be one of {list(CRITERIA)}, got {criterion!r}")
    return CRITERIA[criterion] * (1 - confidence_level)


#: The performance measures of the tables, each with its formula and its Monte Carlo SE (Morris et al. 2019,
#: Table 6; the two-phase estimators' MCSEs from their own variance, see the column reference).
#:
#: :meta hide-value:
MEASURES = (
    ("coverage", "share of datasets whose interval contains the truth", "sqrt(p (1 - p) / n_sim) for a plain "
     "mean; the control-variate estimator's own variance otherwise"),
    ("bias", "mean estimate - truth", "sqrt(EmpSE^2 / n_sim + truth MCSE^2)"),
    ("empirical_se", "SD of the estimates over datasets (EmpSE)", "EmpSE / sqrt(2 (n_sim - 1))"),
    ("mean_width", "mean of upper - lower", "SD(width) / sqrt(n_sim), or the control-variate estimator's"),
    ("miss_below, miss_above", "share of intervals wholly below (above) the truth", "as coverage"),
    ("mean_ci_lower, mean_ci_upper", "mean interval endpoints", "as mean_width"),
    ("model_se", "root mean of the squared SE each method builds its interval from (ModSE; bootstrap methods: the "
     "bootstrap SE)", "sqrt(Var(SE^2) / (4 n_sim ModSE^2))"),
    ("relative_error_model_se", "100 (ModSE / EmpSE - 1), EmpSE on the model SE's scale (Fisher's z for a "
     "fisher_z method)", "100 (ModSE / EmpSE) sqrt(Var(SE^2) / (4 n_sim ModSE^4) + 1 / (2 (n_sim - 1)))"),
    ("mse, rmse", "mean of (estimate - truth)^2, and its root", "sqrt(Var((estimate - truth)^2) / n_sim); "
     "MCSE(MSE) / (2 RMSE)"),
    ("coverage_bias_eliminated", "share of intervals that contain the expected estimate (the truth itself for an "
     "expected-sample estimand; measured beforehand on a stream of its own for a population one)",
     "as coverage; sqrt(p (1 - p) / n_sim) for a population estimand"),
    ("relative_width, relative_precision", "mean width over the reference method's, and 100 ((W_ref / W)^2 - 1)",
     "delta method, with the two widths' covariance on shared datasets"),
)  # fmt: skip


#: A cell (scenario x statistic x method) whose datasets fail more often than this is flagged in the report.
FAILURE_FLAG_RATE = 0.01


def ademp(
    coverage: pd.DataFrame, provenance: Mapping[str, Any], failures: pd.DataFrame | None = None
) -> dict[str, Any]:
    """The ADEMP report of a coverage study as plain data (JSON-ready, and ordered by lists, not by keys, so
    that it reads the same after a JSON round trip with sorted keys): ``findings`` (sentences) and one
    entry per heading (``aims``, ``data_generating_mechanisms``, ``estimands``, ``methods``,
    ``performance_measures``, ``replications``, ``failures``, ``software``).  ``failures``: the run's failure
    ledger (``failures.parquet``), for the failure rates."""
    ident = provenance.get("identity", {})
    settings = provenance.get("settings", {})
    level = float(coverage["confidence_level"].iloc[0])
    return {
        "title": f"Simulation study: {provenance.get('study') or 'custom scenarios'}",
        "findings": _findings(coverage, level),
        "aims": provenance.get("aims") or (
            "Not stated in the study file (a study file states its aims in `#` lines at its top). The study "
            f"estimates the coverage, width and misses of {coverage['method'].nunique()} interval methods"
            f" at the {level:g} level."
        ),
        "data_generating_mechanisms": _mechanisms(coverage),
        "estimands": _estimands(coverage, ident),
        "methods": _methods(coverage, ident, level),
        "performance_measures": [
            {"measure": name, "definition": definition, "mcse": mcse} for name, definition, mcse in MEASURES
        ],
        "replications": _replications(coverage, settings),
        "failures": _failures(coverage, failures),
        "software": {
            "versions": [[k, v] for k, v in provenance.get("versions", {}).items()],
            "source_digest": provenance.get("source_digest"),
            "git_commit": provenance.get("git_commit"),
            "git_modified": provenance.get("git_modified"),
            "seed": ident.get("seed"),
            "reproduce": _command(provenance, coverage),
        },
    }


def _findings(coverage: pd.DataFrame, level: float) -> list[str]:
    """Per statistic: how many scenarios each method covers within Bradley's liberal band, and the scenario
    farthest from nominal with its MCSE."""
    tolerance = coverage_tolerance(level, "liberal")
    out = []
    per = coverage.groupby("statistic", sort=False) if "statistic" in coverage else [("spearman", coverage)]
    for statistic, part in per:
        label = STATISTIC_LABELS.get(statistic, statistic)
        n = part["scenario"].nunique()
        inside = {m: int((abs(g["coverage"] - level) <= tolerance).sum())
                  for m, g in part.groupby("method", sort=False)}  # fmt: skip
        best = max(inside.values())
        always = [m for m, k in inside.items() if k == n]
        worst = part.loc[(part["coverage"] - level).abs().idxmax()]
        sentence = (
            f"{label}: of {len(inside)} methods, "
            + (f"{', '.join(always)} cover within Bradley's liberal band ({level - tolerance:.3f}–"
               f"{level + tolerance:.3f}) in all {n} scenarios" if always else
               f"none covers within Bradley's liberal band ({level - tolerance:.3f}–{level + tolerance:.3f}) in all "
               f"{n} scenarios; the most, {best}, "
               + ", ".join(m for m, k in inside.items() if k == best))
            + f". The farthest from {level:g}: {worst['method']} at {worst['coverage']:.3f} (MCSE "
            f"{worst['coverage_mcse']:.3f}) in {worst['scenario']}."
        )  # fmt: skip
        out.append(sentence + _model_se_sentence(part))
    return out


def _model_se_sentence(part: pd.DataFrame) -> str:
    """The largest relative error in the model SE (Morris et al. 2019) among a statistic's rows, with its MCSE;
    empty for tables written before that column."""
    if "relative_error_model_se" not in part or part["relative_error_model_se"].isna().all():
        return ""
    # one row per model SE: the bootstrap methods share the bootstrap SE
    rows = part.drop_duplicates(["scenario", "model_se_scale", "model_se"])
    worst = rows.loc[rows["relative_error_model_se"].abs().idxmax()]
    who = "the bootstrap SE" if worst["method_kind"] == "bootstrap" else f"{worst['method']}'s SE"
    return (f" The largest relative error in a model SE: {who}, {worst['relative_error_model_se']:+.1f}% (MCSE "
            f"{worst['relative_error_model_se_mcse']:.1f}) in {worst['scenario']}.")


def _mechanisms(coverage: pd.DataFrame) -> dict[str, Any]:
    """The factors the scenarios vary, their levels, the fixed fields, and the design type."""
    order, factors = nested_loop_order(coverage)
    first = coverage.drop_duplicates("scenario")
    levels = {f: [_plain(v) for v in pd.unique(order[f])] for f in factors}
    fixed = [[f, _plain(first[f].iloc[0])] for f in ("case", "generator", "template", "k", "n", "rho")
             if f in first and f not in factors]  # fmt: skip
    n = len(order)
    full = math.prod(len(v) for v in levels.values()) if levels else 1
    if n == full:
        design = "fully factorial"
    elif _one_at_a_time(order, factors):
        design = "one factor at a time"
    else:
        design = f"partly factorial ({n} of the {full} combinations of the levels)"
    return {"conditions": n, "design": design, "factors": [[f, v] for f, v in levels.items()], "fixed": fixed,
            "generators": sorted(first["generator"].unique())}  # fmt: skip


def _one_at_a_time(order: pd.DataFrame, factors: list[str]) -> bool:
    """Whether every scenario differs from the first in at most one factor."""
    base = order.iloc[0]
    return len(factors) > 1 and all(
        sum(not _same(row[f], base[f]) for f in factors) <= 1 for _, row in order.iterrows()
    )


def _same(a: Any, b: Any) -> bool:
    return (pd.isna(a) and pd.isna(b)) or a == b


def _plain(value: Any) -> Any:
    """A JSON-ready level: NaN as None, NumPy scalars as Python numbers."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _estimands(coverage: pd.DataFrame, ident: Mapping[str, Any]) -> list[dict[str, Any]]:
    per = coverage.drop_duplicates(["scenario", "statistic"]) if "statistic" in coverage else coverage
    out = []
    for statistic, g in per.groupby("statistic", sort=False) if "statistic" in per else [("spearman", per)]:
        counts = g["estimand"].value_counts().to_dict() if "estimand" in g else {}
        out.append({
            "statistic": statistic,
            "estimands": [[str(k), int(v)] for k, v in counts.items()],
            "truth": "the population value where it is exact (MCSE 0); else the expected sample statistic at "
                     f"the scenario's n and ties, measured to an MCSE of at most {ident.get('truth_mcse')}",
            "largest_truth_mcse": float(g["rho_true_mcse"].max()) if "rho_true_mcse" in g else None,
        })  # fmt: skip
    return out


def _methods(coverage: pd.DataFrame, ident: Mapping[str, Any], level: float) -> list[dict[str, Any]]:
    rows = coverage.drop_duplicates(["statistic", "method"] if "statistic" in coverage else ["method"])
    return [{"statistic": r.get("statistic", "spearman"), "method": r["method"], "kind": r["method_kind"],
             "parameters": (f"{ident.get('n_boot')} resamples, {level:g} level" if r["method_kind"] == "bootstrap"
                            else f"{level:g} level")}
            for _, r in rows.iterrows()]  # fmt: skip


def _replications(coverage: pd.DataFrame, settings: Mapping[str, Any]) -> dict[str, Any]:
    boot = coverage[coverage["method_kind"] == "bootstrap"]
    boot = boot if len(boot) else coverage
    targets = settings.get("targets") or {}
    asked = ", ".join(f"{k} <= {v:g}" for k, v in targets.items())
    return {
        "bootstrapped_datasets": [int(boot["n_reps"].min()), int(boot["n_reps"].max())],
        "cheap_datasets": [int(coverage["n_reps_cheap"].min()), int(coverage["n_reps_cheap"].max())],
        "why": (f"grown per scenario until each MCSE target was met ({asked}),"
                f" at most {settings.get('max_reps')} bootstrapped datasets" if targets else
                "fixed by the run's --n-reps and --n-reps-cheap; the MCSEs below say what they give"),
        "largest_coverage_mcse": float(coverage["coverage_mcse"].max()),
        "median_coverage_mcse": float(coverage["coverage_mcse"].median()),
    }  # fmt: skip


def _failures(coverage: pd.DataFrame, ledger: pd.DataFrame | None) -> dict[str, Any]:
    """The handling policy, the counts, and the cells whose failure rate (datasets of the ledger over the
    cell's datasets) exceeds :data:`FAILURE_FLAG_RATE`."""
    flagged = coverage[coverage["status"] != "ok"]
    out = {
        "policy": "a dataset whose estimate is not finite, or whose interval cannot be computed, is left out of "
                  "that method's means and counted (`n_failed`; status `some_failed`, `all_failed`); a user "
                  "statistic that raises on a dataset (or its resamples) is counted the same way "
                  "(`statistic_raised`) and the run goes on; an interval "
                  "outside the statistic's range is kept as computed and counted (`out_of_range`); a dataset that "
                  "dropped more than 5% of its resamples is kept and counted (`resamples_dropped`); every such "
                  "dataset is listed in `failures.parquet` with its reason, and `python -m simulation replay` "
                  "regenerates it",
        "failed_datasets": int(coverage["n_failed"].sum()),
        "out_of_range_intervals": int(coverage.get("n_out_of_range", pd.Series(dtype=float)).sum()),
        "rows_flagged": [[str(k), int(v)] for k, v in flagged["status"].value_counts().items()],
        "flag_rate": FAILURE_FLAG_RATE,
        "by_reason": [],
        "cells_above_rate": [],
    }  # fmt: skip
    if ledger is None or ledger.empty:
        return out
    out["by_reason"] = [[str(k), int(v)] for k, v in ledger["reason"].value_counts().items()]
    size = coverage.set_index(["scenario", "statistic", "method"])
    for (scenario, statistic, method, phase), g in ledger.groupby(["scenario", "statistic", "method", "phase"],
                                                                   sort=False):  # fmt: skip
        if method == "estimate" or (scenario, statistic, method) not in size.index:
            continue
        n = size.loc[(scenario, statistic, method), "n_reps" if phase == "bootstrap" else "n_reps_cheap"]
        rate = g["replicate"].nunique() / float(n)
        if rate > FAILURE_FLAG_RATE:
            out["cells_above_rate"].append([scenario, statistic, method, round(rate, 4)])
    return out


def _command(provenance: Mapping[str, Any], coverage: pd.DataFrame) -> str:
    ident = provenance.get("identity", {})
    study = provenance.get("study") or "STUDY.csv"
    boot = coverage[coverage["method_kind"] == "bootstrap"]
    n_reps = int((boot if len(boot) else coverage)["n_reps"].max())
    parts = ["python -m simulation run", str(study), f"--n-reps {n_reps}", f"--n-boot {ident.get('n_boot')}",
             f"--seed {ident.get('seed')}"]  # fmt: skip
    if ident.get("statistics"):
        parts.append(f"--statistic {','.join(ident['statistics'])}")
    return " ".join(parts) + f"  # package source {provenance.get('source_digest')}"


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------
HEADINGS = (
    ("aims", "Aims"),
    ("data_generating_mechanisms", "Data-generating mechanisms"),
    ("estimands", "Estimands"),
    ("methods", "Methods"),
    ("performance_measures", "Performance measures"),
    ("replications", "Number of replications"),
    ("failures", "Handling of failures"),
    ("software", "Software and reproducibility"),
)


def _lines(key: str, value: Any) -> list[str]:
    """One section's Markdown lines."""
    if key == "aims":
        return [str(value)]
    if key == "data_generating_mechanisms":
        lines = [f"{value['conditions']} conditions, {value['design']}; generators: {', '.join(value['generators'])}."]
        lines += [f"- {f}: {', '.join('–' if v is None else str(v) for v in levels)}" for f, levels in
                  value["factors"]]  # fmt: skip
        if value["fixed"]:
            lines.append("- fixed: " + ", ".join(f"{k} = {v}" for k, v in value["fixed"]))
        return lines
    if key == "estimands":
        return [f"- {e['statistic']}: " + ", ".join(f"{k} in {v} scenarios" for k, v in e["estimands"])
                + f"; {e['truth']} (largest truth MCSE {e['largest_truth_mcse']:.2g})." for e in value]  # fmt: skip
    if key == "methods":
        return [f"- {m['statistic']}: {m['method']} ({m['kind']}; {m['parameters']})" for m in value]
    if key == "performance_measures":
        return [f"- `{m['measure']}`: {m['definition']}; MCSE {m['mcse']}" for m in value] + [
            "", "Formulas and their MCSEs: Morris, White & Crowther (2019), Table 6."]
    if key == "replications":
        return [f"Bootstrapped datasets per scenario: {value['bootstrapped_datasets'][0]}–"
                f"{value['bootstrapped_datasets'][1]}; cheap-phase datasets: {value['cheap_datasets'][0]}–"
                f"{value['cheap_datasets'][1]}; {value['why']}. Coverage MCSE: median "
                f"{value['median_coverage_mcse']:.4f}, largest {value['largest_coverage_mcse']:.4f}."]  # fmt: skip
    if key == "failures":
        flagged = ", ".join(f"{k} {v}" for k, v in value["rows_flagged"]) or "none"
        reasons = ", ".join(f"{k} {v}" for k, v in value["by_reason"]) or "none"
        cells = value["cells_above_rate"]
        lines = [f"Policy: {value['policy']}.", "",
                 f"Failed datasets: {value['failed_datasets']}; intervals out of range: "
                 f"{value['out_of_range_intervals']}; rows flagged: {flagged}. The ledger by reason: {reasons}.",
                 "", f"Cells (scenario x statistic x method) whose datasets fail more often than "
                 f"{value['flag_rate']:.0%}: {len(cells)}" + ("." if not cells else ":")]  # fmt: skip
        lines += [f"- {s} ({st}), {m}: {r:.1%}" for s, st, m, r in cells[:20]]
        if len(cells) > 20:
            lines.append(f"- ... and {len(cells) - 20} more (failures.parquet)")
        return lines
    versions = ", ".join(f"{k} {v}" for k, v in value["versions"])
    return [f"- versions: {versions}", f"- package source: {value['source_digest']}; commit: {value['git_commit']}"
            f" (uncommitted changes: {value['git_modified']})", f"- seed: {value['seed']}",
            f"- reproduce: `{value['reproduce']}`"]  # fmt: skip


def ademp_markdown(report: Mapping[str, Any]) -> str:
    """``report.md``: the findings, then one section per ADEMP-PreReg heading."""
    lines = [f"# {report['title']}", "", "## Findings", ""]
    lines += [f"- {s}" for s in report["findings"]] + [""]
    for key, heading in HEADINGS:
        lines += [f"## {heading}", "", *_lines(key, report[key]), ""]
    return "\n".join(lines)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:58em;margin:1em auto;padding:0 1em;line-height:1.45}"
        "img{max-width:100%;height:auto}code{font-size:90%}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}")


def ademp_html(report: Mapping[str, Any], figures: Mapping[str, bytes] | None = None) -> str:
    """``report.html``: the same report as one static page, ``figures`` (name: PNG bytes) embedded as data
    URIs, no script and nothing fetched; readable at a laptop's width."""
    body = [f"<h1>{html.escape(report['title'])}</h1>", "<h2>Findings</h2>", "<ul>"]
    body += [f"<li>{html.escape(s)}</li>" for s in report["findings"]] + ["</ul>"]
    for key, heading in HEADINGS:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        items = _lines(key, report[key])
        listed = [line[2:] for line in items if line.startswith("- ")]
        prose = [line for line in items if line and not line.startswith("- ")]
        body += [f"<p>{_inline(p)}</p>" for p in prose]
        if listed:
            body += ["<ul>", *[f"<li>{_inline(item)}</li>" for item in listed], "</ul>"]
    for name, png in (figures or {}).items():
        data = base64.b64encode(png).decode()
        body.append(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(name)}</figcaption></figure>")  # fmt: skip
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(report['title'])}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")  # fmt: skip


def _inline(text: str) -> str:
    """Markdown's inline code as HTML (the rest escaped)."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
