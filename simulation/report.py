"""Human-readable outputs of a coverage study: a Markdown summary and figures for papers.

Figures (PNG and PDF, one figure per file) are drawn from ``coverage.parquet``
alone, so ``python -m simulation plot RESULTS`` can redraw them at any time.
Each method keeps one colour (Okabe & Ito's colour-blind-safe palette, and
the yellow of Paul Tol's high-contrast scheme for the eighth), one marker and
one line style everywhere, so the figures stay readable in grayscale.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulation.storage import atomic_write

#: Per-method style: colour, marker, line style.
METHOD_STYLES: dict[str, tuple[str, str, Any]] = {
    "percentile": ("#000000", "o", "-"),
    "basic": ("#E69F00", "s", "--"),
    "bca": ("#0072B2", "^", "-."),
    "normal": ("#009E73", "D", ":"),
    "studentized": ("#DDAA33", "h", (0, (3, 1, 1, 1))),
    "fisher_z_fieller": ("#D55E00", "v", "-"),
    "fisher_z_bonett_wright": ("#CC79A7", "P", "--"),
    "fisher_z_pearson": ("#56B4E9", "X", "-."),
}
FIGURES = ("coverage", "endpoints", "widths")


def _style(method: str) -> tuple[str, str, Any]:
    return METHOD_STYLES.get(method, ("#777777", "*", "-"))


def _markdown_table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def method_overview(coverage: pd.DataFrame) -> pd.DataFrame:
    """Per method: scenarios, coverage range, and how often the nominal level lies outside the Wilson interval."""
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
                "under-covers": int((g["coverage_wilson_upper"] < nominal).sum()),
                "over-covers": int((g["coverage_wilson_lower"] > nominal).sum()),
                "mean width": f"{g['mean_width'].mean():.3f}",
                "failed replicates": int(g["n_failed"].sum()),
            }
        )
    return pd.DataFrame(rows)


def summary_markdown(coverage: pd.DataFrame, provenance: dict[str, Any]) -> str:
    """The ``summary.md`` written beside the tables."""
    ident = provenance.get("identity", {})
    settings = provenance.get("settings", {})
    versions = provenance.get("versions", {})
    level = float(coverage["confidence_level"].iloc[0])
    lines = [
        f"# Coverage study: {provenance.get('study') or 'custom scenarios'}",
        "",
        f"- scenarios: {coverage['scenario'].nunique()}; replicates per scenario: "
        f"{coverage['n_reps'].min()}–{coverage['n_reps'].max()}; resamples: {ident.get('n_boot')}; "
        f"confidence level: {level:g}; seed: {ident.get('seed')}",
        f"- methods: {', '.join(settings.get('methods', []))}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in versions.items())}; commit: {provenance.get('git_commit')}",
        f"- started {provenance.get('started_at')}, finished {provenance.get('finished_at')}",
        "",
        "Coverage is the share of replicates whose interval contains `rho_true` (the scenario's estimand); "
        "MCSE and the Wilson 95% interval per Morris, White & Crowther (2019). A method under-covers "
        "(over-covers) in a scenario when the nominal level lies above (below) that Wilson interval "
        "(expect about 5% of scenarios by chance alone).",
        "",
        "## By method",
        "",
        _markdown_table(method_overview(coverage)),
        "",
        "## Coverage per scenario (± MCSE)",
        "",
    ]
    wide = coverage.assign(
        cell=[f"{c:.3f} ± {m:.3f}" for c, m in zip(coverage["coverage"], coverage["coverage_mcse"], strict=True)]
    ).pivot_table(index=["scenario", "rho_true"], columns="method", values="cell", aggfunc="first", sort=False)
    wide = wide[[m for m in coverage["method"].unique()]].reset_index()
    wide["rho_true"] = wide["rho_true"].map(lambda v: f"{v:g}")
    lines += [_markdown_table(wide), ""]
    failed = coverage[coverage["status"] != "ok"]
    if len(failed):
        lines += [
            "## Rows with failed replicates",
            "",
            _markdown_table(failed[["scenario", "method", "n_failed", "status"]]),
            "",
        ]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------
def _panels(coverage: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One panel per (case, generator); scenarios grouped by template (in order of appearance), then by k."""
    out = []
    for (case, generator), g in coverage.groupby(["case", "generator"], sort=False):
        template_rank = {t: i for i, t in enumerate(g["template"].unique())}
        order = g.assign(_t=g["template"].map(template_rank)).sort_values(["_t", "k", "n", "rho"], kind="stable")
        out.append((f"{case} ({generator})", order.drop(columns="_t")))
    return out


def _scenario_axis(panel: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Scenario keys in order and their tick labels (k for tied x, else n and rho)."""
    first = panel.drop_duplicates("scenario")
    labels = []
    for row in first.itertuples(index=False):
        if row.template == "all_distinct":
            labels.append(f"n={row.n}\nρ={row.rho:g}" if row.case.startswith("validation") else "distinct")
        else:
            labels.append(f"{row.k}")
    return list(first["scenario"]), labels


def _template_spans(panel: pd.DataFrame, ax) -> None:
    first = panel.drop_duplicates("scenario").reset_index(drop=True)
    if (first["template"] == "all_distinct").all():
        return
    for template, g in first.groupby("template", sort=False):
        lo, hi = g.index.min(), g.index.max()
        ax.annotate(
            template.replace("_", " "),
            xy=((lo + hi) / 2, 1.0),
            xycoords=("data", "axes fraction"),
            ha="center",
            va="bottom",
            fontsize=7,
        )
        if lo > 0:
            ax.axvline(lo - 0.5, color="0.8", lw=0.6)


def _grid(n_panels: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = 1 if n_panels == 1 else 2
    nrows = -(-n_panels // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(6.5 * ncols, 3.4 * nrows), squeeze=False, layout="constrained"
    )
    for ax in axes.ravel()[n_panels:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def _dodge(i: int, n_methods: int) -> float:
    return (i - (n_methods - 1) / 2) * min(0.8 / n_methods, 0.12)


def _save(fig, path_stem: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    written = []
    for fmt in ("png", "pdf"):
        path = path_stem.with_suffix(f".{fmt}")
        atomic_write(path, lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight"))
        written.append(path)
    plt.close(fig)
    return written


def _panel_figure(frame: pd.DataFrame, path_stem: Path, ylabel: str, draw, **legend) -> list[Path]:
    """One panel per (case, generator) with scenarios on the x axis; ``draw(ax, panel, pos)`` adds the data."""
    panels = _panels(frame)
    fig, axes = _grid(len(panels))
    for ax, (title, panel) in zip(axes, panels, strict=False):
        keys, labels = _scenario_axis(panel)
        draw(ax, panel, {k: i for i, k in enumerate(keys)})
        ax.set_xticks(range(len(keys)), labels, fontsize=7)
        ax.set_title(title, fontsize=9, pad=12)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("k distinct x values, by template" if labels and labels[0].isdigit() else "scenario")
        _template_spans(panel, ax)
    axes[0].legend(fontsize=7, **legend)
    return _save(fig, path_stem)


def plot_coverage(coverage: pd.DataFrame, out: Path) -> list[Path]:
    """Coverage per method with ±2 MCSE bars against the nominal level, one panel per case."""
    methods = list(coverage["method"].unique())
    level = float(coverage["confidence_level"].iloc[0])

    def draw(ax, panel, pos):
        for j, method in enumerate(methods):
            g = panel[panel["method"] == method]
            colour, marker, _ = _style(method)
            x = np.array([pos[k] for k in g["scenario"]]) + _dodge(j, len(methods))
            ax.errorbar(
                x, g["coverage"], yerr=2 * g["coverage_mcse"], fmt=marker, ms=3.5, color=colour,
                elinewidth=0.8, capsize=0, label=method,
            )  # fmt: skip
        ax.axhline(level, color="0.3", ls="--", lw=1)

    return _panel_figure(coverage, out / "coverage", "coverage (±2 MCSE)", draw, ncol=2, loc="lower left")


def plot_endpoints(coverage: pd.DataFrame, out: Path) -> list[Path]:
    """Averaged interval endpoints per scenario and method, with the true value."""
    methods = list(coverage["method"].unique())

    def draw(ax, panel, pos):
        for j, method in enumerate(methods):
            g = panel[panel["method"] == method]
            colour, marker, _ = _style(method)
            x = np.array([pos[k] for k in g["scenario"]]) + _dodge(j, len(methods))
            ax.vlines(x, g["mean_ci_lower"], g["mean_ci_upper"], color=colour, lw=1.2, label=method)
            ax.plot(x, g["mean_ci_lower"], marker, color=colour, ms=3)
            ax.plot(x, g["mean_ci_upper"], marker, color=colour, ms=3)
        truth = panel.drop_duplicates("scenario")
        ax.plot([pos[k] for k in truth["scenario"]], truth["rho_true"], "_", color="k", ms=12, mew=1.5, label="truth")
        ax.axhline(0, color="0.8", lw=0.6)

    return _panel_figure(coverage, out / "endpoints", "mean interval endpoints", draw, ncol=2, loc="lower left")


def plot_widths(coverage: pd.DataFrame, out: Path) -> list[Path]:
    """Mean interval width per scenario and method."""
    methods = list(coverage["method"].unique())

    def draw(ax, panel, pos):
        for method in methods:
            g = panel[panel["method"] == method]
            colour, marker, line = _style(method)
            ax.plot([pos[k] for k in g["scenario"]], g["mean_width"], marker=marker, ls=line, color=colour,
                    ms=3.5, lw=0.9, label=method)  # fmt: skip

    return _panel_figure(coverage, out / "widths", "mean interval width", draw, ncol=2)


def plot_all(coverage: pd.DataFrame, out: str | os.PathLike[str], figures: Sequence[str] = FIGURES) -> list[Path]:
    """Draw every figure of a coverage table into ``out`` (PNG and PDF each)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    drawers = {"coverage": plot_coverage, "endpoints": plot_endpoints, "widths": plot_widths}
    written = []
    for name in figures:
        written += drawers[name](coverage, out)
    return written


# --------------------------------------------------------------------------
# Power study
# --------------------------------------------------------------------------
TEST_STYLES = {
    "permutation": ("#000000", "o", "-"),
    "t_approx": ("#E69F00", "s", "--"),
    "asymptotic": ("#0072B2", "^", ":"),
}


def power_summary_markdown(mdc: pd.DataFrame, provenance: dict[str, Any]) -> str:
    """``power_summary.md``: the minimum detectable correlations, one row per scenario and direction."""
    ident = provenance.get("identity", {})
    wide = mdc.assign(
        cell=[
            f"{r:.3f} ± {se:.3f}" if st == "ok" and se > 0 else (f"{r:.3f}" if st == "ok" else st)
            for r, se, st in zip(mdc["rho_star"], mdc["rho_star_se"], mdc["status"], strict=True)
        ]
    ).pivot_table(index=["scenario", "direction"], columns="test", values="cell", aggfunc="first", sort=False)
    wide = wide.reset_index()
    lines = [
        f"# Power study: {provenance.get('study') or 'custom scenarios'}",
        "",
        f"- {ident.get('n_sims')} simulated datasets per grid point; |rho| grid "
        f"{min(ident.get('grid', [0]))}–{max(ident.get('grid', [0]))} ({len(ident.get('grid', []))} points); "
        f"alpha {ident.get('alpha')} ({ident.get('alternative')}); target power {ident.get('target_power')}; "
        f"seed {ident.get('seed')}; {ident.get('n_perm')} permutations per shared null",
        f"- commit {provenance.get('git_commit')}; started {provenance.get('started_at')}, "
        f"finished {provenance.get('finished_at')}",
        "",
        "Minimum detectable |rho| at the target power (± Monte Carlo SE by the delta method; the asymptotic "
        "noncentral-t value has no Monte Carlo error). `not_reached`: the target power is not reached on the grid.",
        "",
        _markdown_table(wide),
        "",
    ]
    return "\n".join(lines)


def plot_power_curves(power: pd.DataFrame, out: Path, test: str = "permutation") -> list[Path]:
    """Power against |rho| with ±2 MCSE bands, one panel per case and template, one curve per scenario."""
    import matplotlib

    data = power[power["test"] == test]
    groups = list(data.groupby(["case", "template"], sort=False))
    fig, axes = _grid(len(groups))
    cmap = matplotlib.colormaps["viridis"]
    for ax, ((case, template), g) in zip(axes, groups, strict=False):
        keys = list(g["scenario"].unique())
        for j, key in enumerate(keys):
            c = g[g["scenario"] == key].assign(mag=lambda d: d["rho"].abs()).sort_values("mag")
            colour = cmap(j / max(1, len(keys) - 1) * 0.9)
            label = f"k={c['k'].iloc[0]}" if template != "all_distinct" else f"n={c['n'].iloc[0]}"
            for _sign, part in c.groupby(np.sign(c["rho"]).replace(0, 1), sort=False):
                ls = "-" if part["rho"].iloc[-1] >= 0 else "--"
                ax.plot(part["mag"], part["power"], ls, color=colour, lw=1, label=label)
                ax.fill_between(
                    part["mag"], part["power"] - 2 * part["power_mcse"], part["power"] + 2 * part["power_mcse"],
                    color=colour, alpha=0.25, lw=0,
                )  # fmt: skip
                label = None
        ax.axhline(0.8, color="0.4", ls=":", lw=1)
        ax.set_title(f"{case}, {template.replace('_', ' ')} ({test})", fontsize=9)
        ax.set_xlabel("|rho| (true correlation)")
        ax.set_ylabel("power (±2 MCSE)")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6, ncol=2, loc="lower right")
    return _save(fig, out / "power_curves")


def plot_min_detectable(mdc: pd.DataFrame, out: Path) -> list[Path]:
    """Minimum detectable |rho| per scenario (±2 SE), grouped like the coverage figures."""
    tests = list(mdc["test"].unique())

    def draw(ax, panel, pos):
        for j, test in enumerate(tests):
            g = panel[(panel["test"] == test) & (panel["status"] == "ok")]
            colour, marker, _ = TEST_STYLES.get(test, ("#777777", "*", "-"))
            x = np.array([pos[k] for k in g["scenario"]]) + _dodge(j, len(tests))
            ax.errorbar(x, g["rho_star"], yerr=2 * g["rho_star_se"].fillna(0), fmt=marker, ms=3.5, color=colour,
                        elinewidth=0.8, label=test)  # fmt: skip

    frame = mdc.assign(method=mdc["test"], rho=mdc["observed_rho"])
    return _panel_figure(frame, out / "min_detectable", "minimum detectable |rho|", draw)
