"""Figures for papers: coverage, endpoints and widths of a coverage study; power curves and minimum detectable rho.

Every figure is drawn from a results table alone (``coverage.parquet``,
``power.parquet``, ``min_detectable.parquet``), so ``python -m simulation
plot RESULTS`` can redraw it at any time.  Each method keeps one colour
(Okabe & Ito's colour-blind-safe palette, and grey for the eighth, as
yellow is too faint on white), one marker and one line style
everywhere, so the figures stay readable in grayscale.

Drawing is cheap by construction: a figure is laid out once (constrained
layout, then frozen) and rendered to PNG and PDF in memory; several figures
render concurrently in worker processes (:func:`write_figures`), and only
the parent writes files (atomically).
"""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulation.infra.parallel import parallel_map
from simulation.infra.storage import atomic_write
from simulation.present.report import STATISTIC_LABELS, estimator_sentence, label_statistics, label_tests

#: Per-method style: colour, marker, line style.
#:
#: :meta hide-value:
METHOD_STYLES: dict[str, tuple[str, str, Any]] = {
    "percentile": ("#000000", "o", "-"),
    "basic": ("#E69F00", "s", "--"),
    "bca": ("#0072B2", "^", "-."),
    "normal": ("#009E73", "D", ":"),
    "studentized": ("#999999", "h", (0, (3, 1, 1, 1))),
    "fisher_z_fieller": ("#D55E00", "v", "-"),
    "fisher_z_bonett_wright": ("#CC79A7", "P", "--"),
    "fisher_z_pearson": ("#56B4E9", "X", "-."),
    # Kendall's tau-b only
    "fisher_z_ase": ("#8C564B", "d", "--"),
    "wald_ase": ("#BCBD22", "<", ":"),
}
#: Per-test style in the power figures.
TEST_STYLES: dict[str, tuple[str, str, Any]] = {
    "permutation": ("#000000", "o", "-"),
    "t_approx": ("#E69F00", "s", "--"),
    "asymptotic": ("#0072B2", "^", ":"),
    "normal_approx": ("#009E73", "D", "-."),
}
#: The figures every coverage run draws, in drawing order: the nested-loop plots of the coverage and of the
#: mean width (every scenario on one axis, ordered by the study's factors; :func:`nested_loop_figure`), and
#: the mean endpoints against the truth, one panel per case.
FIGURES = ("nested_loop_coverage", "nested_loop_mean_width", "endpoints")
#: The panels by case (``plot --kind panels``): coverage, endpoints and widths with scenarios side by side.
PANEL_FIGURES = ("coverage", "endpoints", "widths")
#: The figures of a power study.
POWER_FIGURES = ("power_curves", "min_detectable")
FORMATS = ("png", "pdf")
DPI = 150


def _style(method: str, styles: dict[str, tuple[str, str, Any]] = METHOD_STYLES) -> tuple[str, str, Any]:
    """A method's colour, marker and line style; a method labelled with a statistic other than Spearman
    keeps its colour: ``x`` markers and dashes for Kendall's (``bca [tau_b]``), ``+`` and dots for any
    other (Pearson's, a user's)."""
    base, _, statistic = method.partition(" [")
    colour, marker, line = styles.get(base, ("#444444", "*", "-"))
    if statistic.startswith("tau_b"):
        return colour, "x", (0, (4, 2))
    if statistic and not statistic.startswith("rho_s"):
        return colour, "+", (0, (1, 1.5))
    return colour, marker, line


# --------------------------------------------------------------------------
# Layout shared by the panel figures
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
    import matplotlib  # deferred: matplotlib loads only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib loads only when a figure is drawn

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


def _panel_figure(frame: pd.DataFrame, ylabel: str, draw, note: str | None = None):
    """One panel per (case, generator) with scenarios on the x axis; ``draw(ax, panel, pos)`` adds the data;
    ``note`` (what the estimates are) goes under the legend."""
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
    # one legend for all panels, below them, so that it never hides data
    handles, labels = axes[0].get_legend_handles_labels()
    ncol = min(len(labels), 9)
    legend = fig.legend(handles, labels, loc="outside lower center", fontsize=7, ncol=ncol, frameon=False)
    if note:  # wrapped to the figure's width (about 16 characters of 7-point italics per inch)
        width = int(16 * fig.get_figwidth())
        legend.set_title(textwrap.fill(note, width), prop={"size": 7, "style": "italic"})
    return fig


def _estimator_note(coverage: pd.DataFrame) -> str | None:
    if "estimator" not in coverage:
        return None

    return estimator_sentence(coverage).replace("`", "")


# --------------------------------------------------------------------------
# Coverage study
# --------------------------------------------------------------------------
def coverage_figure(coverage: pd.DataFrame):
    """Coverage per method with ±2 MCSE bars against the nominal level, one panel per case."""
    coverage = label_statistics(coverage)
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

    return _panel_figure(coverage, "coverage (±2 MCSE)", draw, _estimator_note(coverage))


def endpoints_figure(coverage: pd.DataFrame):
    """Averaged interval endpoints per scenario and method, with the true value."""
    coverage = label_statistics(coverage)
    methods = list(coverage["method"].unique())

    def draw(ax, panel, pos):
        for j, method in enumerate(methods):
            g = panel[panel["method"] == method]
            colour, marker, _ = _style(method)
            x = np.array([pos[k] for k in g["scenario"]]) + _dodge(j, len(methods))
            ax.vlines(x, g["mean_ci_lower"], g["mean_ci_upper"], color=colour, lw=1.2, label=method)
            # both ends in one artist: the markers of lower and upper endpoints
            ax.plot(np.r_[x, x], np.r_[g["mean_ci_lower"], g["mean_ci_upper"]], marker, color=colour, ms=3)
        truth = panel.drop_duplicates("scenario")
        ax.plot([pos[k] for k in truth["scenario"]], truth["rho_true"], "_", color="k", ms=12, mew=1.5, label="truth")
        ax.axhline(0, color="0.8", lw=0.6)

    return _panel_figure(coverage, "mean interval endpoints", draw, _estimator_note(coverage))


def widths_figure(coverage: pd.DataFrame):
    """Mean interval width per scenario and method."""
    coverage = label_statistics(coverage)
    methods = list(coverage["method"].unique())

    def draw(ax, panel, pos):
        for method in methods:
            g = panel[panel["method"] == method]
            colour, marker, line = _style(method)
            ax.plot([pos[k] for k in g["scenario"]], g["mean_width"], marker=marker, ls=line, color=colour,
                    ms=3.5, lw=0.9, label=method)  # fmt: skip

    return _panel_figure(coverage, "mean interval width", draw, _estimator_note(coverage))


# --------------------------------------------------------------------------
# Power study
# --------------------------------------------------------------------------
def power_curves_figure(power: pd.DataFrame, test: str = "permutation"):
    """Power against ``|rho|`` with ±2 MCSE bands, one panel per case and template, one curve per scenario."""
    import matplotlib  # deferred: matplotlib loads only when a figure is drawn

    data = power[power["test"] == test]
    if "statistic" not in data:
        data = data.assign(statistic="spearman")
    several = data["statistic"].nunique() > 1
    order = list(dict.fromkeys(data["statistic"]))
    # (positive, negative direction) line styles per statistic, Spearman's first
    styles = [("-", "--"), ("-.", ":"), ((0, (1, 1.5)), (0, (5, 1, 1, 1, 1, 1)))]
    groups = list(data.groupby(["case", "template"], sort=False))
    fig, axes = _grid(len(groups))
    cmap = matplotlib.colormaps["viridis"]
    for ax, ((case, template), g) in zip(axes, groups, strict=False):
        scenario_keys = list(g["scenario"].unique())
        for key, statistic in dict.fromkeys(zip(g["scenario"], g["statistic"], strict=True)):
            j = scenario_keys.index(key)
            mine = g[(g["scenario"] == key) & (g["statistic"] == statistic)]
            c = mine.assign(mag=lambda d: d["rho_true"].abs()).sort_values("mag")
            colour = cmap(j / max(1, len(scenario_keys) - 1) * 0.9)
            label = f"k={c['k'].iloc[0]}" if template != "all_distinct" else f"n={c['n'].iloc[0]}"
            if several:
                label += " " + STATISTIC_LABELS.get(statistic, statistic)
            pair = styles[min(order.index(statistic), len(styles) - 1)]
            for _sign, part in c.groupby(np.sign(c["rho_true"]).replace(0, 1), sort=False):
                positive = part["rho_true"].iloc[-1] >= 0
                ls = pair[0] if positive else pair[1]
                ax.plot(part["mag"], part["power"], ls, color=colour, lw=1, label=label)
                ax.fill_between(
                    part["mag"], part["power"] - 2 * part["power_mcse"], part["power"] + 2 * part["power_mcse"],
                    color=colour, alpha=0.25, lw=0,
                )  # fmt: skip
                label = None
        ax.axhline(0.8, color="0.4", ls=":", lw=1)
        ax.set_title(f"{case}, {template.replace('_', ' ')} ({test})", fontsize=9)
        ax.set_xlabel("|true value| (each statistic in its own units)" if several else "|rho| (true correlation)")
        ax.set_ylabel("power (±2 MCSE)")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6, ncol=2, loc="lower right")
    return fig


def min_detectable_figure(mdc: pd.DataFrame):
    """Minimum detectable ``|rho|`` per scenario (±2 SE), grouped like the coverage figures (tests labelled by
    statistic when there are several; Kendall's in units of tau-b)."""
    mdc = label_tests(mdc)
    tests = list(mdc["test"].unique())

    def draw(ax, panel, pos):
        for j, test in enumerate(tests):
            g = panel[(panel["test"] == test) & (panel["status"] == "ok")]
            colour, marker, _ = _style(test, TEST_STYLES)
            x = np.array([pos[k] for k in g["scenario"]]) + _dodge(j, len(tests))
            label = f"{test} (approximation)" if test.startswith("asymptotic") else test
            ax.errorbar(x, g["rho_star"], yerr=2 * g["rho_star_se"].fillna(0), fmt=marker, ms=3.5, color=colour,
                        elinewidth=0.8, label=label)  # fmt: skip

    frame = mdc.assign(method=mdc["test"])
    return _panel_figure(frame, "minimum detectable |rho|", draw)


#: Figure name (the file stem) -> function drawing it from its table.
# --------------------------------------------------------------------------
# Nested-loop plot (Rücker & Schwarzer 2014)
# --------------------------------------------------------------------------
#: The scenario fields a study varies, outermost first when they have as many levels.
FACTORS = ("case", "generator", "template", "k", "n", "rho")


def measures_of(coverage: pd.DataFrame) -> list[str]:
    """The measures of a coverage table that a nested-loop plot can draw: the columns with an MCSE beside them."""
    return [c for c in coverage.columns if f"{c}_mcse" in coverage.columns]


def nested_loop_order(coverage: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The scenarios of a coverage table in nested-loop order, with the factors that vary among them.

    The factors are the scenario fields with more than one level (:data:`FACTORS`), the one with the fewest
    levels outermost (ties in :data:`FACTORS`' order); the scenarios are sorted by them, numbers by value
    and names in the order the study lists them (Rücker & Schwarzer 2014, *BMC Medical Research Methodology*
    14:129).  Returns one row per scenario (``scenario`` and the factors) and the factors, outermost first.
    """
    first = coverage.drop_duplicates("scenario").reset_index(drop=True)
    factors = [f for f in FACTORS if f in first and first[f].nunique(dropna=False) > 1]
    factors.sort(key=lambda f: first[f].nunique(dropna=False))  # stable: FACTORS' order among equals
    keys = {}
    for f in factors:
        if pd.api.types.is_numeric_dtype(first[f]):
            keys[f] = first[f].astype(float).fillna(-np.inf)  # all-distinct x (no k) before any k
        else:
            keys[f] = first[f].map({v: i for i, v in enumerate(pd.unique(first[f]))})
    order = first.assign(**{f"_{f}": keys[f] for f in factors}).sort_values([f"_{f}" for f in factors],
                                                                          kind="stable")  # fmt: skip
    return order[["scenario", *factors]].reset_index(drop=True), factors


def _level_text(value: Any) -> str:
    if isinstance(value, float) and np.isnan(value):
        return "–"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:g}" if isinstance(value, float | np.floating) else str(value).replace("_", " ")


def nested_loop_figure(coverage: pd.DataFrame, measure: str = "coverage"):
    """A nested-loop plot of ``measure``: every scenario on one axis in nested-loop order
    (:func:`nested_loop_order`), one step line per method with its ±2 MCSE band, one panel per statistic,
    the nominal level for coverage, and the factors' levels drawn as steps below (Rücker & Schwarzer 2014)."""
    import matplotlib  # deferred: matplotlib loads only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib loads only when a figure is drawn

    if measure not in measures_of(coverage):
        raise ValueError(f"`measure` must be one of {measures_of(coverage)} (a column with its MCSE), got {measure!r}")
    order, factors = nested_loop_order(coverage)
    position = {key: i for i, key in enumerate(order["scenario"])}
    statistics = list(pd.unique(coverage["statistic"])) if "statistic" in coverage else ["spearman"]
    fig, axes = plt.subplots(
        len(statistics) + 1, 1, sharex=True, squeeze=False, layout="constrained",
        figsize=(7.0, 2.6 * len(statistics) + 0.45 * max(len(factors), 1) + 0.6),
        height_ratios=[*([3.0] * len(statistics)), 0.5 * max(len(factors), 1)],
    )  # fmt: skip
    axes = axes[:, 0]
    x = np.arange(len(order))
    for ax, statistic in zip(axes, statistics, strict=False):
        part = coverage[coverage["statistic"] == statistic] if "statistic" in coverage else coverage
        if part.groupby("scenario")[measure].nunique(dropna=False).max() <= 1:  # a measure of the estimate
            part = part.drop_duplicates("scenario").assign(method="estimate (every method)")
        for method, g in part.groupby("method", sort=False):
            g = g.assign(_x=g["scenario"].map(position)).sort_values("_x")
            colour, marker, line = _style(str(method))
            value, mcse = g[measure].to_numpy(float), g[f"{measure}_mcse"].to_numpy(float)
            ax.step(g["_x"], value, where="mid", color=colour, ls=line, lw=1.0, label=str(method))
            ax.fill_between(g["_x"], value - 2 * mcse, value + 2 * mcse, step="mid", color=colour, alpha=0.12,
                            lw=0)  # fmt: skip
        if measure.startswith("coverage") and "confidence_level" in part:
            ax.axhline(float(part["confidence_level"].iloc[0]), color="0.3", ls="--", lw=0.8)
        label = STATISTIC_LABELS.get(statistic, statistic)
        ax.set_ylabel(f"{measure.replace('_', ' ')}\n({label}; ±2 MCSE)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, ncol=4, frameon=False, loc="best")
    steps = axes[-1]
    for i, factor in enumerate(reversed(factors)):  # innermost at the top, next to the data
        levels = list(pd.unique(order[factor]))
        code = order[factor].map({v: j for j, v in enumerate(levels)}).to_numpy(float)
        base = i * 1.5
        height = code / max(len(levels) - 1, 1)
        steps.step(x, base + height, where="mid", color="0.2", lw=0.9)
        steps.text(-0.02, base + 0.5, factor, transform=steps.get_yaxis_transform(), ha="right", va="center",
                   fontsize=7)  # fmt: skip
        runs = np.flatnonzero(np.r_[True, order[factor].to_numpy()[1:] != order[factor].to_numpy()[:-1]])
        if len(runs) <= 24:  # the levels where they change, while they fit
            for start in runs:
                steps.text(max(start - 0.4, 0.0), base + height[start] + 0.12, _level_text(order[factor].iloc[start]),
                           fontsize=5.5, color="0.25")  # fmt: skip
        else:
            ends = sorted(levels, key=lambda v: -np.inf if pd.isna(v) else v) if pd.api.types.is_numeric_dtype(
                order[factor]) else levels  # fmt: skip
            steps.text(1.0, base + 0.5, f" {_level_text(ends[0])} … {_level_text(ends[-1])}", fontsize=5.5,
                       transform=steps.get_yaxis_transform(), va="center", color="0.25")  # fmt: skip
    steps.set_yticks([])
    steps.set_ylim(-0.3, 1.5 * max(len(factors), 1))
    for side in ("top", "right", "left"):
        steps.spines[side].set_visible(False)
    steps.set_xlabel(f"{len(order)} scenarios in nested-loop order (their factors below, outermost at the top)",
                     fontsize=7)  # fmt: skip
    steps.set_xticks([])
    return fig


# --------------------------------------------------------------------------
# Lolly plot (Morris, White & Crowther 2019)
# --------------------------------------------------------------------------
def lolly_figure(coverage: pd.DataFrame, measure: str = "coverage", scenario: str | None = None):
    """A lolly plot of ``measure`` in one scenario: one row per method, the estimate as a dot on a stick from
    the reference value (the nominal level for coverage, 0 for a bias, else the methods' median) and its 95%
    Monte Carlo interval (±1.96 MCSE) as a bar; one panel per statistic (Morris, White & Crowther 2019,
    *Statistics in Medicine* 38:2074, Fig. 5).  ``scenario``: its key (needed when the table holds several)."""
    import matplotlib  # deferred: matplotlib loads only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib loads only when a figure is drawn

    if measure not in measures_of(coverage):
        raise ValueError(f"`measure` must be one of {measures_of(coverage)} (a column with its MCSE), got {measure!r}")
    keys = list(pd.unique(coverage["scenario"]))
    if scenario is None and len(keys) == 1:
        scenario = keys[0]
    if scenario not in keys:
        shown = ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else "")
        raise ValueError(f"`scenario` must be one of the table's {len(keys)} scenario keys ({shown}), got {scenario!r}")
    part = coverage[coverage["scenario"] == scenario]
    statistics = list(pd.unique(part["statistic"])) if "statistic" in part else ["spearman"]
    rows = max(part.groupby("statistic" if "statistic" in part else "scenario")["method"].nunique())
    fig, axes = plt.subplots(1, len(statistics), squeeze=False, sharex=True, layout="constrained",
                             figsize=(3.35 * len(statistics), 0.28 * rows + 1.0))  # fmt: skip
    for ax, statistic in zip(axes[0], statistics, strict=False):
        g = part[part["statistic"] == statistic] if "statistic" in part else part
        value, mcse = g[measure].to_numpy(float), g[f"{measure}_mcse"].to_numpy(float)
        if measure.startswith("coverage") and "confidence_level" in g:
            reference = float(g["confidence_level"].iloc[0])
        elif measure.startswith("bias"):
            reference = 0.0
        else:
            reference = float(np.nanmedian(value))
        y = np.arange(len(g))[::-1]
        colours = [_style(str(m))[0] for m in g["method"]]
        ax.hlines(y, reference, value, color=colours, lw=0.8)
        ax.errorbar(value, y, xerr=1.96 * mcse, fmt="none", ecolor=colours, elinewidth=2.2, alpha=0.45)
        ax.scatter(value, y, color=colours, s=14, zorder=3)
        ax.axvline(reference, color="0.3", ls="--", lw=0.8)
        ax.set_yticks(y, [str(m).replace("_", " ") for m in g["method"]], fontsize=7)
        ax.set_title(STATISTIC_LABELS.get(statistic, statistic), fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel(f"{measure.replace('_', ' ')} (95% Monte Carlo interval)", fontsize=7)
    fig.suptitle(scenario, fontsize=7)
    return fig


# --------------------------------------------------------------------------
# Zip plot (Morris, White & Crowther 2019)
# --------------------------------------------------------------------------
#: Colours of a zip plot's intervals: covering, and missing the truth (Okabe & Ito).
ZIP_COLOURS = ("#0072B2", "#D55E00")


def zip_order(lower: np.ndarray, upper: np.ndarray, truth: float) -> tuple[np.ndarray, np.ndarray]:
    """The ranking of a zip plot: each interval's ``|truth - midpoint| / half-width`` (``|z| / z_(1-a/2)`` for a
    Wald interval, and at most 1 exactly when the interval covers) and its fractional centile in [0, 100]
    (``100 (rank - 0.5) / m``, ties by index), so the covering intervals lie below the missing ones."""
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.abs(truth - (lower + upper) / 2) / ((upper - lower) / 2)
    distance = np.where(np.isnan(distance), np.where(lower == upper, np.where(lower == truth, 0.0, np.inf), np.inf),
                        distance)  # fmt: skip
    order = np.argsort(distance, kind="stable")
    centile = np.empty(len(distance))
    centile[order] = 100 * (np.arange(len(distance)) + 0.5) / max(len(distance), 1)
    return distance, centile


def zip_figure(replicates: pd.DataFrame, coverage: pd.DataFrame, scenario: str | None = None,
               statistic: str | None = None):  # fmt: skip
    """A zip plot of one scenario under one statistic (Morris, White & Crowther 2019, *Statistics in Medicine*
    38:2074, Fig. 4): one panel per method, every ok interval of the bootstrapped datasets as a horizontal
    line at the fractional centile of its distance from the truth (:func:`zip_order`), blue where it covers
    and vermilion where it misses, the truth as a vertical line, and the coverage over these datasets with its
    95% Monte Carlo interval (Wilson) as horizontal lines: the covering intervals reach the coverage line.
    ``replicates``: ``replicates.parquet`` (``run --replicates``); ``coverage``: the truth of each row."""
    import matplotlib  # deferred: matplotlib loads only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib loads only when a figure is drawn
    from scipy.stats import binomtest  # deferred: loads only when a zip plot is drawn

    keys = list(pd.unique(replicates["scenario"]))
    if scenario is None and len(keys) == 1:
        scenario = keys[0]
    if scenario not in keys:
        shown = ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else "")
        raise ValueError(f"`scenario` must be one of the replicate table's {len(keys)} scenario keys ({shown}), "
                         f"got {scenario!r}")  # fmt: skip
    part = replicates[replicates["scenario"] == scenario]
    statistics = list(pd.unique(part["statistic"]))
    statistic = statistics[0] if statistic is None else statistic
    if statistic not in statistics:
        raise ValueError(f"`statistic` must be one of {statistics} (the scenario's), got {statistic!r}")
    part = part[part["statistic"] == statistic]
    row = coverage[(coverage["scenario"] == scenario) & (coverage["statistic"] == statistic)]
    truth = float(row["rho_true"].iloc[0])
    level = float(row["confidence_level"].iloc[0])
    methods = list(pd.unique(part["method"]))
    ncols = min(len(methods), 4)
    nrows = -(-len(methods) // ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, sharey=True, layout="constrained",
                             figsize=(1.75 * ncols, 1.9 * nrows + 0.5))  # fmt: skip
    for ax, method in zip(axes.flat, methods, strict=False):
        g = part[(part["method"] == method) & (part["status"] == "ok")]
        lower, upper = g["ci_lower"].to_numpy(float), g["ci_upper"].to_numpy(float)
        distance, centile = zip_order(lower, upper, truth)
        covers = (lower <= truth) & (truth <= upper)
        for hit, colour in ((True, ZIP_COLOURS[0]), (False, ZIP_COLOURS[1])):
            mask = covers == hit
            ax.hlines(centile[mask], lower[mask], upper[mask], color=colour, lw=0.5)
        m = len(g)
        p = covers.mean() if m else np.nan
        wilson = binomtest(int(covers.sum()), m).proportion_ci(0.95, method="wilson") if m else None
        w_lo, w_hi = (wilson.low, wilson.high) if wilson is not None else (np.nan, np.nan)
        ax.axvline(truth, color="0.2", lw=0.8)
        ax.axhline(100 * level, color="0.2", ls=":", lw=0.8)
        for edge in (w_lo, w_hi):
            ax.axhline(100 * float(edge), color="#009E73", ls="--", lw=0.8)
        mcse = np.sqrt(p * (1 - p) / m) if m else np.nan
        ax.set_title(f"{method.replace('_', ' ')}\n{p:.3f} (MCSE {mcse:.3f}), m = {m}", fontsize=6)
        ax.set_ylim(0, 100)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(methods):]:
        ax.set_visible(False)
    fig.supxlabel(f"{STATISTIC_LABELS.get(statistic, statistic)}: the intervals (the truth {truth:.3f} as a line)",
                  fontsize=7)  # fmt: skip
    fig.supylabel("fractional centile of |truth - midpoint| / half-width", fontsize=7)
    fig.suptitle(f"{scenario}: {ZIP_LEGEND}", fontsize=6)
    return fig


#: The zip plot's legend in words (its colours and lines).
ZIP_LEGEND = "blue covers, vermilion misses; dotted: nominal level; dashed: Wilson 95% interval of the coverage"


def plot_zip(
    replicates: pd.DataFrame, coverage: pd.DataFrame, out: str | os.PathLike[str], scenario: str | None = None,
    statistic: str | None = None,
) -> list[Path]:
    """Draw the zip plot of ``scenario`` under ``statistic`` (:func:`zip_figure`) into ``out``: ``zip.png`` and
    ``.pdf``."""
    fig = zip_figure(replicates, coverage, scenario, statistic)  # checks the arguments before anything is written
    return write_figure(fig, out, "zip")


def write_figure(fig, out: str | os.PathLike[str], stem: str) -> list[Path]:
    """``fig`` written (atomically) as ``<out>/<stem>.png`` and ``.pdf``, then closed."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, data in _figure_bytes(fig).items():
        path = out / f"{stem}.{fmt}"
        atomic_write(path, lambda tmp, data=data: tmp.write_bytes(data))
        written.append(path)
    return written


BUILDERS: dict[str, Callable[[pd.DataFrame], Any]] = {
    "coverage": coverage_figure,
    "endpoints": endpoints_figure,
    "widths": widths_figure,
    "power_curves": power_curves_figure,
    "min_detectable": min_detectable_figure,
}
#: The name prefix of a nested-loop plot's files: ``nested_loop_<measure>.png|pdf``.
NESTED_LOOP = "nested_loop_"


# --------------------------------------------------------------------------
# Rendering and writing
# --------------------------------------------------------------------------
def render(name: str, table: pd.DataFrame) -> dict[str, bytes]:
    """Figure ``name`` of ``table`` as PNG and PDF bytes (pure: runs in any process).

    The layout is computed once, for the first format, then frozen, so the
    second format does not lay the figure out again; constrained layout
    already keeps every label inside the figure, so no tight bounding box
    (another full draw) is needed.
    """
    if name.startswith(NESTED_LOOP):  # nested_loop_<measure>
        return _figure_bytes(nested_loop_figure(table, name.removeprefix(NESTED_LOOP)))
    return _figure_bytes(BUILDERS[name](table))


def _figure_bytes(fig) -> dict[str, bytes]:
    """``fig`` as PNG and PDF bytes (laid out once, for the first format), then closed."""
    import matplotlib.pyplot as plt  # deferred: matplotlib loads only when a figure is drawn

    out = {}
    try:
        for fmt in FORMATS:
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, dpi=DPI)
            fig.set_layout_engine("none")
            out[fmt] = buffer.getvalue()
    finally:
        plt.close(fig)
    return out


#: About how long one figure of a coverage table takes to render on one core (0.4-1.5 s measured for the
#: built-in studies): with ``n_jobs < 0`` a few such figures render in this process, since starting worker
#: processes (each importing pandas, matplotlib and this package, 2-3 s) would cost more than it saves.
FIGURE_SECONDS = 0.6
#: About how long a power figure takes per scenario (one panel each: 8.8 s for the default study's 88
#: scenarios, measured): the default study's two render in parallel, a small study's in this process.
POWER_FIGURE_SECONDS_PER_SCENARIO = 0.06


def write_figures(
    jobs: Sequence[tuple[str, pd.DataFrame]], out: str | os.PathLike[str], *, n_jobs: int = 1,
    seconds_each: float = FIGURE_SECONDS,
) -> list[Path]:  # fmt: skip
    """Render each ``(name, table)`` (concurrently with ``n_jobs`` > 1, or with ``n_jobs < 0`` where the
    figures' estimated time, ``seconds_each`` per figure, is more than a few seconds) and write
    ``<out>/<name>.png|pdf``.

    Workers only render; the parent writes every file atomically.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rendered: dict[int, dict[str, bytes]] = {}
    parallel_map(
        render,
        [((name, table), {}) for name, table in jobs],
        n_jobs=n_jobs,
        progress=False,
        on_result=rendered.__setitem__,
        desc="figures",
        work_seconds=seconds_each * len(jobs),
    )
    written = []
    for i, (name, _) in enumerate(jobs):
        for fmt, data in rendered[i].items():
            path = out / f"{name}.{fmt}"
            atomic_write(path, lambda tmp, data=data: tmp.write_bytes(data))
            written.append(path)
    return written


def plot_all(
    coverage: pd.DataFrame, out: str | os.PathLike[str], figures: Sequence[str] = FIGURES, *, n_jobs: int = 1
) -> list[Path]:
    """Draw every figure of a coverage table into ``out`` (PNG and PDF each)."""
    return write_figures([(name, coverage) for name in figures], out, n_jobs=n_jobs)


def plot_nested_loop(coverage: pd.DataFrame, out: str | os.PathLike[str], measure: str = "coverage") -> list[Path]:
    """Draw the nested-loop plot of ``measure`` (:func:`nested_loop_figure`) into ``out``:
    ``nested_loop_<measure>.png`` and ``.pdf``."""
    if measure not in measures_of(coverage):
        raise ValueError(f"`measure` must be one of {measures_of(coverage)} (a column with its MCSE), got {measure!r}")
    return write_figures([(NESTED_LOOP + measure, coverage)], out)


def plot_lolly(
    coverage: pd.DataFrame, out: str | os.PathLike[str], measure: str = "coverage", scenario: str | None = None
) -> list[Path]:
    """Draw the lolly plot of ``measure`` in ``scenario`` (:func:`lolly_figure`) into ``out``:
    ``lolly_<measure>.png`` and ``.pdf``."""
    fig = lolly_figure(coverage, measure, scenario)  # checks the arguments before anything is written
    return write_figure(fig, out, f"lolly_{measure}")


def plot_power(
    power: pd.DataFrame, min_detectable: pd.DataFrame, out: str | os.PathLike[str], *, n_jobs: int = 1
) -> list[Path]:
    """Draw the power curves and the minimum detectable correlations into ``out`` (PNG and PDF each)."""
    seconds = POWER_FIGURE_SECONDS_PER_SCENARIO * max(1, power["scenario"].nunique() if "scenario" in power else 1)
    return write_figures([("power_curves", power), ("min_detectable", min_detectable)], out, n_jobs=n_jobs,
                         seconds_each=seconds)  # fmt: skip


# --------------------------------------------------------------------------
# analyze: the data, coverage at its design, power
# --------------------------------------------------------------------------
GENERATOR_MARKERS = {"rank_mixing": "o", "empirical": "s"}


def analysis_figure(x: np.ndarray, y: np.ndarray, analysis):
    """Three panels: the data (x jittered within its tie groups), coverage +- 2 MCSE by method at the
    design's scenarios, and the permutation test's power curve with the observed ``|estimate|`` marked: of the
    analysis's first statistic (Spearman's by default), the others' power curves dashed."""
    import matplotlib.pyplot as plt  # deferred: matplotlib loads only when a figure is drawn

    fig, (ax_data, ax_cov, ax_pow) = plt.subplots(1, 3, figsize=(13, 4.2), layout="constrained")
    distinct = np.unique(x)
    gap = float(np.min(np.diff(distinct))) if distinct.size > 1 else 1.0
    jitter = np.random.default_rng(0).uniform(-0.25 * gap, 0.25 * gap, x.size)
    ax_data.scatter(x + jitter, y, s=12, color="#000000", alpha=0.6, linewidths=0)
    x_name, y_name = analysis.columns
    first = analysis.results[0]
    ax_data.set(xlabel=f"{x_name} (jittered within tie groups)", ylabel=y_name,
                title=f"n = {analysis.n_used}, {first.symbol} = {first.estimate:.3f}")  # fmt: skip

    cov = analysis.coverage
    methods = [m for m in METHOD_STYLES if m in set(cov["method"])]
    order = cov.drop_duplicates("scenario").sort_values(["generator", "rho"], ascending=[False, True])
    keys = list(order["scenario"])  # rank_mixing first, then by target rho
    for j, key in enumerate(keys):
        g = cov[cov["scenario"] == key].set_index("method").reindex(methods)
        pos = np.arange(len(methods)) + (j - (len(keys) - 1) / 2) * 0.8 / max(len(keys), 1)
        colors = [_style(m)[0] for m in methods]
        ax_cov.errorbar(pos, g["coverage"], yerr=2 * g["coverage_mcse"], fmt="none", ecolor=colors, elinewidth=1)
        ax_cov.scatter(pos, g["coverage"], c=colors, marker=GENERATOR_MARKERS.get(g["generator"].iloc[0], "o"), s=14)
    level = float(analysis.settings.confidence_level)
    ax_cov.axhline(level, color="#555555", linestyle="--", linewidth=1)
    threshold = analysis.recommendation.get("threshold")
    if threshold is not None:  # the recommendation's criterion (Bradley 1978), see analyze.analysis.recommend
        ax_cov.axhline(threshold, color="#555555", linestyle=":", linewidth=1)
    ax_cov.set_xticks(np.arange(len(methods)), [m.replace("fisher_z_", "z_") for m in methods], rotation=45,
                      ha="right")  # fmt: skip
    ax_cov.set(ylabel="coverage ± 2 MCSE")
    ax_cov.set_title("coverage at this design (o rank mixing, □ empirical y)\ndashed: nominal; dotted: the "
                     "recommendation's criterion", fontsize=9)  # fmt: skip

    pw = analysis.power
    perm = pw[(pw["test"] == "permutation") & (pw["statistic"] == first.name)]
    for key, g in perm.groupby("scenario", sort=False):
        gen = cov.loc[cov["scenario"] == key, "generator"]
        label = gen.iloc[0] if len(gen) else key
        mag, power, se = g["rho_true"].abs(), g["power"], g["power_mcse"]
        color = "#000000" if label == "rank_mixing" else "#0072B2"
        ax_pow.plot(mag, power, marker=GENERATOR_MARKERS.get(label, "o"), markersize=3, label=label, color=color)
        ax_pow.fill_between(mag, power - 2 * se, power + 2 * se, alpha=0.2, color=color)
        # the other statistics' permutation tests on the same datasets, against the same strength |rho_s|
        # (their curves share the grid's order, row for row)
        for k, (stat, other) in enumerate(pw[(pw["test"] == "permutation") & (pw["scenario"] == key)
                                            & (pw["statistic"] != first.name)].groupby("statistic", sort=False)):
            ax_pow.plot(mag.to_numpy(), other["power"].to_numpy(), linestyle=("--", ":", "-.")[k % 3], color=color,
                        linewidth=1, label=f"{label}, {stat}")  # fmt: skip
    ax_pow.axvline(abs(first.estimate), color="#D55E00", linestyle=":",
                   label=f"|{first.symbol}| = {abs(first.estimate):.3f}")  # fmt: skip
    ax_pow.axhline(analysis.settings.target_power, color="#555555", linestyle="--", linewidth=1)
    ax_pow.set(xlabel=f"|{STATISTIC_LABELS.get(first.name, first.name)}| (true: the generator's strength)",
               ylabel="power", ylim=(0, 1.02),
               title=f"permutation test, alpha = {analysis.settings.alpha:g}")  # fmt: skip
    ax_pow.legend(loc="lower right", fontsize=8)
    return fig


def write_analysis_figure(x: np.ndarray, y: np.ndarray, analysis, stem: str | os.PathLike[str]) -> list[Path]:
    """Draw :func:`analysis_figure` and write ``<stem>.png`` and ``<stem>.pdf`` atomically."""
    written = []
    for fmt, data in _figure_bytes(analysis_figure(x, y, analysis)).items():
        path = Path(f"{stem}.{fmt}")
        atomic_write(path, lambda tmp, data=data: tmp.write_bytes(data))
        written.append(path)
    return written
