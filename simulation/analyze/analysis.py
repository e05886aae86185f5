"""Analyze a researcher's dataset: its Spearman correlation, every interval, tests of independence, and how
well each interval method works for a design like it.

Two answers, one call (:func:`analyze`, or ``python -m simulation analyze DATA --x COL --y COL``):

* **The data's answer.**  Complete pairs (rows with a missing or non-finite
  value in either column are dropped and counted), the tie structure of x
  and y, r_s, the eight intervals at the chosen level (five paired-bootstrap
  intervals from 10,000 resamples by default, :func:`simulation.inference.bootstrap.bootstrap_ci_single`,
  and Fisher-z with the Fieller, Bonett-Wright and Pearson variances,
  :func:`simulation.engine.intervals.fisher_z_ci`), and two tests of rho_s = 0: the
  Monte Carlo permutation test that keeps the observed ties of x and y
  (p-value ``(1 + #{|r*| >= |r_s|}) / (B + 1)``, Phipson & Smyth 2010, Stat.
  Appl. Genet. Mol. Biol. 9:39, with its binomial MCSE) and the t
  approximation ``t = r_s sqrt((n - 2) / (1 - r_s^2))`` on n - 2 df
  (Zar 1972, JASA 67:578-580).
* **The design's answer.**  A design-matched study built from the data:
  scenarios with the observed n and x tie counts (in x order), y from (a)
  rank mixing and (b) the empirical pool of the observed y values (n drawn
  without replacement from n values: exactly the data's y values, so its
  ties are the data's), at rho_s = 0, the estimate and the ends of the
  Bonett-Wright interval, each clipped to 97% of the range the generator can
  reach (:func:`simulation.models.generators.reachable_range`).  It runs through
  :func:`simulation.study.runner.run_all_ci_scenarios` (resumable, parallel,
  control-variate estimates) and :func:`simulation.power.curves.run_power_study`
  (the permutation test's power curve in the direction of the estimate and
  the minimum detectable ``|rho_s|`` at 80% power, alpha = 0.05).

The recommendation (:func:`recommend`) is a rule applied to the design's
coverage table, never a judgement without its numbers: among the methods
whose coverage estimate is at least nominal minus Bradley's (1978)
tolerance at every scenario of the design (the design grown until every
coverage MCSE is at most half the tolerance), the shortest mean width, with
the methods indistinguishable from it at this precision named; if none
qualifies, the method whose worst coverage is closest to nominal, and how it
errs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize

from simulation.core.settings import resolve_seed
from simulation.core.validation import (
    RunError,
    check_bool,
    check_confidence_level,
    check_n_jobs,
    check_positive_int,
    check_seed,
)
from simulation.engine.intervals import FISHER_Z_VARIANCES, fisher_z_ci
from simulation.engine.pvalues import pvalues_rowwise
from simulation.engine.ranks import spearman_rho_2d
from simulation.inference.bootstrap import bootstrap_ci_single, resample_keys
from simulation.infra.resources import check_resources
from simulation.infra.storage import (
    hold_folder,
    now,
    prepare_output,
    provenance_record,
    write_json,
    write_parquet,
    write_text,
)
from simulation.models.generators import (
    calibrate_rank_mixing,
    generate_rank_mixing_batch,
    reachable_range,
    tie_counts,
)
from simulation.models.registry import GENERATORS
from simulation.models.scenarios import Scenario
from simulation.power.curves import (
    PowerSettings,
    asymptotic_power,
    permutation_pvalues,
    power_memory,
    run_power_study,
    t_approx_pvalues,
)
from simulation.power.solve import SolveError, solve_interval_n, solve_n
from simulation.present.ademp import CRITERIA, coverage_tolerance
from simulation.present.figures import write_analysis_figure
from simulation.present.report import STATISTIC_LABELS, markdown_table
from simulation.statistics import kendall
from simulation.statistics.registry import check_statistics, identity_statistics, statistic_digests
from simulation.statistics.statistic import Statistic, get_statistic
from simulation.study.columns import DATA_INTERVALS, TESTS, in_order
from simulation.study.runner import block_memory, calibration_memory, default_cheap_ratio, run_all_ci_scenarios

#: The packaged example dataset (``analyze example``): see :func:`example_pairs`.
EXAMPLE = "example"
EXAMPLE_COLUMNS = ("dose", "level")
#: Fewest complete pairs analyzed.
MIN_PAIRS = 10
#: Design-matched generators.
DESIGN_GENERATORS = ("rank_mixing", "empirical")
#: Share of the reachable range the design's correlations are clipped to.
REACH_SHARE = 0.97
POWER_GRID_POINTS = 30
POWER_GRID_MAX = 0.9
INTERVALS_FILE = "data_intervals.parquet"
TESTS_FILE = "tests.parquet"
JSON_FILE = "analysis.json"
REPORT_FILE = "report.md"
POOL_FILE = "y_pool.csv"
FIGURE_NAME = "analysis"
OWNED_FILES = (JSON_FILE, REPORT_FILE, INTERVALS_FILE, TESTS_FILE, POOL_FILE, f"{FIGURE_NAME}.png",
               f"{FIGURE_NAME}.pdf")  # fmt: skip
#: Above this many complete pairs (``AnalysisSettings.scale_above``) an analysis's Monte Carlo sizes shrink in
#: proportion to n, each to at least its floor (:data:`SCALED_FLOORS`), so that a large dataset costs about as
#: much as one of this n per unit of work: every per-dataset step is O(n log n), but 10,000 resamples, 100,000
#: permutations and a design study of 1,500 x 1,000 resamples of 1,000,000 pairs are hours (:func:`scaled_sizes`;
#: the report and ``analysis.json`` state what was asked and what was used).
SCALE_ABOVE_N = 20_000
#: The least each size shrinks to at large n.
SCALED_FLOORS = {"n_boot": 1_000, "n_perm": 1_000, "design_n_reps": 20, "design_n_boot": 100, "power_n_reps": 50,
                 "power_grid_points": 10, "power_n_perm": 1_000}  # fmt: skip
#: The design's targets at large n: the Bonett-Wright interval's ends lie within about 4 / sqrt(n) of the
#: estimate there (0.004 at n = 1,000,000), so their scenarios would repeat the estimate's.
SCALED_DESIGN_POINTS = ("zero", "estimate")
#: Every design target (:func:`design_scenarios`).
DESIGN_POINTS = ("zero", "estimate", "bw_lower", "bw_upper")


@dataclasses.dataclass(frozen=True)
class AnalysisSettings:
    """What defines an analysis's numbers (recorded with every output)."""

    confidence_level: float = 0.95
    n_boot: int = 10_000
    n_perm: int = 100_000
    design_n_reps: int = 1_500
    design_n_boot: int = 1_000
    power_n_reps: int = 4_000
    alpha: float = 0.05
    target_power: float = 0.8
    #: None: ``SEED`` of the settings (20180201), as on the command line.
    seed: int | None = None
    #: Bradley's criterion of the recommendation (:data:`CRITERIA`).
    criterion: str = "stringent"
    #: Grow the design until every coverage MCSE is at most half the criterion's tolerance.
    grow_design: bool = True
    #: The most bootstrapped datasets a growing design scenario gets (a scenario the cap stops short of gets
    #: ``target_not_met`` in its rows, and the run says so).
    design_max_reps: int = 20_000
    #: The statistics analyzed, the first one the report's headline: each gets its estimate, intervals and
    #: tests on the data, its coverage at the design and a recommendation (every statistic adds to the
    #: design study's cost). Kendall's tau-b is computed on the data besides (:data:`ON_DATA_ALSO`).
    statistics: tuple[str, ...] = ("spearman",)
    #: Plan the next study: per statistic, the n at which a study like this one reaches ``target_power``
    #: at the observed correlation, and the n at which its first asymptotic interval has a mean width of
    #: ``plan_width`` (:func:`plan_next_study`).
    plan: bool = True
    plan_width: float = 0.3
    #: Above this many complete pairs the Monte Carlo sizes shrink in proportion to n (:func:`scaled_sizes`);
    #: None: never (an analysis of 1,000,000 pairs at the full sizes takes hours).
    scale_above: int | None = SCALE_ABOVE_N

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", resolve_seed(self.seed))
        object.__setattr__(self, "statistics", check_statistics(self.statistics))
        coverage_tolerance(0.95, self.criterion)
        check_bool(self.grow_design, "grow_design")
        check_confidence_level(self.confidence_level)
        for name in ("n_boot", "n_perm", "design_n_reps", "design_n_boot", "design_max_reps"):
            check_positive_int(getattr(self, name), name)
        if self.design_max_reps < self.design_n_reps:
            raise ValueError(f"`design_max_reps` must be at least `design_n_reps` ({self.design_n_reps}), got "
                             f"{self.design_max_reps}")  # fmt: skip
        check_positive_int(self.power_n_reps, "power_n_reps", minimum=10)
        check_bool(self.plan, "plan")
        if self.scale_above is not None:
            check_positive_int(self.scale_above, "scale_above", minimum=MIN_PAIRS)
        if isinstance(self.plan_width, bool) or not isinstance(self.plan_width, float | int) or not (
                0 < self.plan_width < 2):  # fmt: skip
            raise ValueError(f"`plan_width` must be a number in (0, 2) (an interval's width), got {self.plan_width!r}")
        for name in ("alpha", "target_power"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, float | int) or not 0 < value < 1:
                raise ValueError(f"`{name}` must be a number in (0, 1), got {value!r}")
        check_seed(self.seed)

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        del out["statistics"]
        if self.scale_above == SCALE_ABOVE_N:  # the default (recorded when changed): earlier folders still resume
            del out["scale_above"]
        out |= identity_statistics(self.statistics)
        if digests := statistic_digests(self.statistics):
            out["statistic_digests"] = dict(digests)
        return out


@dataclasses.dataclass(frozen=True)
class Sizes:
    """The Monte Carlo sizes an analysis uses at its n (:func:`scaled_sizes`)."""

    #: The settings with the sizes used (``n_boot``, ``n_perm``, ``design_n_reps``, ``design_n_boot``,
    #: ``power_n_reps``, ``grow_design``).
    settings: AnalysisSettings
    power_grid_points: int
    #: Permutations of the power study's shared nulls.
    power_n_perm: int
    design_points: tuple[str, ...]
    #: The design's cheap-phase datasets per scenario (None: Cochran's allocation, the runner's default).
    design_n_reps_cheap: int | None = None
    #: ``n / scale_above`` where the sizes shrank, else None.
    factor: float | None = None
    #: ``(name, asked, used)`` of each size that shrank.
    changes: tuple[tuple[str, Any, Any], ...] = ()

    def as_dict(self) -> dict[str, Any] | None:
        """What ``analysis.json`` records under ``scaled`` (None where nothing shrank)."""
        if self.factor is None:
            return None
        return {"factor": self.factor, "sizes": {name: {"asked": _plain_value(asked), "used": _plain_value(used)}
                                                 for name, asked, used in self.changes}}  # fmt: skip

    def sentence(self, n: int) -> str:
        """The report's and the command line's statement of what shrank ("" where nothing did)."""
        if self.factor is None:
            return ""
        said = ", ".join(f"{name} {_said(asked)} -> {_said(used)}" for name, asked, used in self.changes)
        return (f"n = {n} is {self.factor:.3g} times scale_above = {self.settings.scale_above}, so the Monte Carlo "
                f"sizes shrank in proportion (to their floors at least): {said}. The Monte Carlo errors shown are "
                f"those of the sizes used; give --scale-above (scale_above=) a larger n, or 0 (None) for the full "
                f"sizes, at a cost that grows like n times the sizes.")  # fmt: skip


def _plain_value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _said(v: Any) -> str:
    if isinstance(v, tuple):
        return "+".join(v)
    if isinstance(v, bool):
        return "on" if v else "off"
    return f"{v:,}"


def scaled_sizes(settings: AnalysisSettings, n: int) -> Sizes:
    """The sizes an analysis of ``n`` complete pairs uses: those asked up to ``settings.scale_above`` pairs;
    above it each size divided by ``n / scale_above`` (rounded up), at least its floor
    (:data:`SCALED_FLOORS`) and at most what was asked; the design not grown; its targets 0 and the estimate
    only (:data:`SCALED_DESIGN_POINTS`).  The work of each phase then grows like n times the sizes, about
    constant above ``scale_above`` until the floors bind (the resamples at 10 x ``scale_above``)."""
    from simulation.power.curves import DEFAULT_N_PERM  # the power study's default shared null

    full = Sizes(settings, POWER_GRID_POINTS, DEFAULT_N_PERM, DESIGN_POINTS)
    if settings.scale_above is None or n <= settings.scale_above:
        return full
    factor = n / settings.scale_above

    def shrink(name: str, asked: int) -> int:
        return min(asked, max(SCALED_FLOORS[name], math.ceil(asked / factor)))

    used = {name: shrink(name, getattr(settings, name))
            for name in ("n_boot", "n_perm", "design_n_reps", "design_n_boot", "power_n_reps")}  # fmt: skip
    grid_points, power_n_perm = shrink("power_grid_points", POWER_GRID_POINTS), shrink("power_n_perm", DEFAULT_N_PERM)
    changes = [(name, getattr(settings, name), v) for name, v in used.items() if v != getattr(settings, name)]
    if settings.grow_design:
        changes.append(("grow_design", True, False))
    # the cheap phase's datasets 1:1 with the bootstrapped ones: a block of them is drawn at once (n pairs each)
    cheap_asked = math.ceil(settings.design_n_reps * default_cheap_ratio(settings.design_n_boot))
    changes += [("design_n_reps_cheap", cheap_asked, used["design_n_reps"]),
                ("power_grid_points", POWER_GRID_POINTS, grid_points), ("power_n_perm", DEFAULT_N_PERM, power_n_perm),
                ("design_points", DESIGN_POINTS, SCALED_DESIGN_POINTS)]  # fmt: skip
    changes = [c for c in changes if c[1] != c[2]]
    return Sizes(dataclasses.replace(settings, grow_design=False, **used), grid_points, power_n_perm,
                 SCALED_DESIGN_POINTS, used["design_n_reps"], factor, tuple(changes))  # fmt: skip


# --------------------------------------------------------------------------
# Reading and checking the data
# --------------------------------------------------------------------------
def example_path() -> Path:
    """The packaged example dataset (``simulation/data/example_pairs.csv``)."""
    return Path(str(resources.files("simulation.data").joinpath("example_pairs.csv")))


def example_pairs(n: int = 60, seed: int = 2018, rho: float = 0.35) -> pd.DataFrame:
    """A synthetic dataset shaped like the founding study: ``dose`` (6 levels, heavy centre) and ``level``
    (log-normal, median about 15, rounded to 0.1 so it has ties), rank-mixed to an expected Spearman of
    ``rho``.  The packaged example is ``example_pairs()``; the analyze benchmark uses other ``n``.
    Not the study's data (which are not public)."""

    counts = tie_counts(n, 6, "heavy_center")
    c = calibrate_rank_mixing(rho, counts).coefficient
    x, y = generate_rank_mixing_batch(1, counts, c, np.random.SeedSequence(seed))
    doses = np.array([0.0, 1.2, 2.5, 3.7, 4.9, 6.2])
    dose = doses[np.searchsorted(np.unique(x[0]), x[0])]
    level = np.round(np.exp(np.log(15.0) + 0.6 * y[0]), 1)
    shuffle = np.random.default_rng(seed).permutation(n)
    return pd.DataFrame({"dose": dose[shuffle], "level": level[shuffle]})


def read_pairs(data: str | Path, x: str, y: str, sep: str = ",") -> tuple[pd.DataFrame, str]:
    """Columns ``x`` and ``y`` of a CSV or Parquet file (``"example"``: the packaged dataset), as floats
    with NaN where a value is missing or non-finite, and the data's name (file stem).

    Raises
    ------
    ValueError
        Missing or unreadable file, a column not found (the message lists the
        columns), the same column twice, a value that is not a number.
    """
    path = example_path() if str(data) == EXAMPLE else Path(data)
    if not path.is_file():
        raise ValueError(f"data file {str(data)!r} does not exist (give a CSV or Parquet file, or {EXAMPLE!r})")
    try:
        frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path, sep=sep)
    except Exception as exc:  # pandas and pyarrow raise many types for unreadable files
        raise ValueError(f"data file {str(data)!r} is not a readable CSV or Parquet file: {exc}") from None
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    for option, name in (("--x", x), ("--y", y)):
        if name not in columns:
            hint = ""
            if len(columns) == 1:
                found = [c for c in (";", "\t", "|", " ") if c in columns[0]]
                if found:
                    hint = (f"; the file was read as one column, so its separator is probably {found[0]!r}, not "
                            f"{sep!r}: give it with --sep (sep= in Python)")  # fmt: skip
            raise ValueError(f"column {name!r} ({option}) not found in {str(data)!r}; its columns: {columns}{hint}")
    if x == y:
        raise ValueError(f"--x and --y name the same column {x!r}; give two columns")
    out = {}
    for option, name in (("--x", x), ("--y", y)):
        raw = frame[name]
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna() & raw.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(
                f"column {name!r} ({option}) holds {_shown(raw.iloc[row])} at 0-based position {row} (data row "
                f"{row + 1}), which is not a number "
                f"({int(bad.sum())} such value(s)); only numbers and empty cells are allowed"
            )
        out[name] = values.astype(np.float64)
    return pd.DataFrame(out), path.stem


@dataclasses.dataclass(frozen=True)
class Pairs:
    """The complete pairs of a dataset and what was dropped."""

    x: np.ndarray
    y: np.ndarray
    n_input: int
    #: 0-based positions of the dropped rows among the data rows (0 = the first row after a CSV's header).
    dropped_rows: tuple[int, ...]

    @property
    def n(self) -> int:
        return self.x.size


def complete_pairs(x: ArrayLike, y: ArrayLike) -> Pairs:
    """Drop pairs with a missing or non-finite value; require >= 10 pairs and non-constant x and y.

    Raises
    ------
    ValueError
        Different lengths, not 1-D numbers, fewer than :data:`MIN_PAIRS`
        complete pairs, or x or y constant (Spearman's rho undefined).
    """
    try:
        xa = np.asarray(x, dtype=np.float64)
        ya = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("`x` and `y` must be 1-D sequences of numbers") from None
    if xa.ndim != 1 or ya.ndim != 1 or xa.size != ya.size:
        raise ValueError(f"`x` and `y` must be 1-D of equal length, got shapes {xa.shape} and {ya.shape}")
    keep = np.isfinite(xa) & np.isfinite(ya)
    dropped = tuple(int(i) for i in np.flatnonzero(~keep))
    xa, ya = xa[keep], ya[keep]
    if xa.size < MIN_PAIRS:
        raise ValueError(
            f"only {xa.size} complete pair(s) after dropping {len(dropped)} row(s) with a missing or non-finite "
            f"value; at least {MIN_PAIRS} are needed"
        )
    for name, values in (("x", xa), ("y", ya)):
        if np.all(values == values[0]):
            raise ValueError(
                f"`{name}` is constant ({values[0]:g}) over the {xa.size} complete pairs: Spearman's rho is undefined"
            )
    return Pairs(xa, ya, keep.size, dropped)


def tie_table(values: np.ndarray) -> pd.DataFrame:
    """Distinct values in increasing order and how often each occurs."""
    distinct, counts = np.unique(values, return_counts=True)
    return pd.DataFrame({"value": distinct, "count": counts})


def _tie_summary(values: np.ndarray) -> dict[str, Any]:
    counts = np.unique(values, return_counts=True)[1]
    return {
        "distinct": int(counts.size),
        "tied_values": int(np.count_nonzero(counts > 1)),
        "largest_group": int(counts.max()),
        "share_in_ties": float(counts[counts > 1].sum() / values.size),
    }


def _subseed(seed: int, stream: int) -> int:
    return int(np.random.SeedSequence([int(seed), 0xA7A1, stream]).generate_state(1, np.uint64)[0] >> 1)


# --------------------------------------------------------------------------
# The data's answer
# --------------------------------------------------------------------------
def _bootstrap_rows(boot) -> list[dict[str, Any]]:
    """The rows of a :class:`~simulation.inference.bootstrap.SingleBootstrapResult`'s intervals, in its method order,
    with their status and flags (``out_of_range``, ``resamples_dropped``)."""
    return [
        {"method": m, "kind": "bootstrap", "ci_lower": float(boot.intervals.loc[m, "ci_lower"]),
         "ci_upper": float(boot.intervals.loc[m, "ci_upper"]), "status": str(boot.intervals.loc[m, "status"]),
         "flags": str(boot.intervals.loc[m, "flags"])}
        for m in boot.intervals.index
    ]  # fmt: skip


def data_intervals(pairs: Pairs, settings: AnalysisSettings) -> tuple[float, pd.DataFrame]:
    """r_s and the eight intervals on the data (``method``, ``kind``, ``ci_lower``, ``ci_upper``, ``status``,
    ``flags``)."""
    boot = bootstrap_ci_single(
        pairs.x, pairs.y, n_boot=settings.n_boot, confidence_level=settings.confidence_level,
        seed=_subseed(settings.seed, 1),
    )  # fmt: skip
    rows = _bootstrap_rows(boot)
    for name in FISHER_Z_VARIANCES:
        lo, hi = fisher_z_ci(boot.rho_hat, pairs.n, confidence_level=settings.confidence_level, variance=name)
        rows.append({"method": f"fisher_z_{name}", "kind": "asymptotic", "ci_lower": float(lo),
                     "ci_upper": float(hi), "status": "ok", "flags": ""})  # fmt: skip
    return boot.rho_hat, pd.DataFrame(rows)


def kendall_on_data(pairs: Pairs, settings: AnalysisSettings) -> tuple[float, pd.DataFrame, pd.DataFrame]:
    """Kendall's tau-b on the data: the estimate, its eight intervals (five bootstrap on the same resamples
    as Spearman's, Fieller's Fisher z, Fisher z with the ASE, tau-b +- z ASE) and its two tests of
    independence (permutation keeping both variables' ties, on the same permutations as Spearman's; the
    tie-corrected normal approximation)."""

    level = settings.confidence_level
    boot = bootstrap_ci_single(
        pairs.x, pairs.y, n_boot=settings.n_boot, confidence_level=level, seed=_subseed(settings.seed, 1),
        statistic="kendall_b",
    )  # fmt: skip
    tau = boot.rho_hat
    rows = _bootstrap_rows(boot)
    ase = kendall.ase(pairs.x, pairs.y)
    for method, (lo, hi) in (
        ("fisher_z_fieller", kendall.fisher_z_ci(tau, pairs.n, confidence_level=level)),
        ("fisher_z_ase", kendall.fisher_z_ci(tau, pairs.n, confidence_level=level, se=ase)),
        ("wald_ase", kendall.ase_ci(tau, ase, confidence_level=level)),
    ):
        rows.append({"method": method, "kind": "asymptotic", "ci_lower": float(lo), "ci_upper": float(hi),
                     "status": "ok", "flags": ""})  # fmt: skip
    p_perm = float(kendall.permutation_pvalues(pairs.x, pairs.y, n_perm=settings.n_perm,
                                               seed=_subseed(settings.seed, 2))[0])  # fmt: skip
    tests = pd.DataFrame(
        [
            {"test": "permutation", "alternative": "two-sided", "p_value": p_perm,
             "p_value_mcse": math.sqrt(p_perm * (1 - p_perm) / settings.n_perm), "n_perm": settings.n_perm},
            {"test": "normal_approx", "alternative": "two-sided", "p_value": kendall.normal_pvalue(pairs.x, pairs.y),
             "p_value_mcse": 0.0, "n_perm": 0},
        ]
    )  # fmt: skip
    return tau, pd.DataFrame(rows), tests


def statistic_on_data(
    pairs: Pairs, settings: AnalysisSettings, statistic: str
) -> tuple[float, pd.DataFrame, pd.DataFrame]:
    """A statistic built from parts (Pearson's r, a user's) on the data: the estimate, its intervals (its
    bootstrap methods on the same resamples as Spearman's, its asymptotic ones) and its tests of
    independence (permutation on the same permutations as Spearman's: two-sided means ``|T*| >= |T|``, for
    a statistic centred at 0 under independence; Student's t where it declares one)."""

    stat = get_statistic(statistic)
    level = settings.confidence_level
    boot = bootstrap_ci_single(
        pairs.x, pairs.y, n_boot=settings.n_boot, confidence_level=level, seed=_subseed(settings.seed, 1),
        statistic=stat,
    )  # fmt: skip
    rows = _bootstrap_rows(boot)
    inputs = stat.inputs(pairs.x[None, :].astype(np.float64), pairs.y[None, :].astype(np.float64))
    estimate, _, extra = stat.cheap_rows(*inputs)
    for method in stat.asymptotic_methods:
        lo, hi = stat.asymptotic_ci(method, estimate, extra, pairs.n, level)
        ok = bool(np.isfinite(lo[0]) and np.isfinite(hi[0]))
        rows.append({"method": method, "kind": "asymptotic", "ci_lower": float(lo[0]), "ci_upper": float(hi[0]),
                     "status": "ok" if ok else "undefined_se", "flags": ""})  # fmt: skip
    null = stat.permutation_rows(inputs, resample_keys([_subseed(settings.seed, 2)]), settings.n_perm)
    p_perm = float(pvalues_rowwise(estimate, null)[0])
    tests = [{"test": "permutation", "alternative": "two-sided", "p_value": p_perm,
              "p_value_mcse": math.sqrt(p_perm * (1 - p_perm) / settings.n_perm), "n_perm": settings.n_perm}]
    if "t_test" in stat.tests:
        tests.append({"test": "t_test", "alternative": "two-sided",
                      "p_value": float(t_approx_pvalues(estimate, pairs.n)[0]), "p_value_mcse": 0.0, "n_perm": 0})
    return float(boot.rho_hat), pd.DataFrame(rows), pd.DataFrame(tests)  # fmt: skip


def independence_tests(pairs: Pairs, rho_hat: float, settings: AnalysisSettings) -> pd.DataFrame:
    """Two-sided tests of rho_s = 0: permutation (ties of x and y kept; Monte Carlo with its MCSE) and t."""
    p_perm = float(permutation_pvalues(pairs.x, pairs.y, n_perm=settings.n_perm, seed=_subseed(settings.seed, 2))[0])
    p_t = float(t_approx_pvalues(np.array([rho_hat]), pairs.n)[0])
    return pd.DataFrame(
        [
            {"test": "permutation", "alternative": "two-sided", "p_value": p_perm,
             "p_value_mcse": math.sqrt(p_perm * (1 - p_perm) / settings.n_perm), "n_perm": settings.n_perm},
            {"test": "t_approx", "alternative": "two-sided", "p_value": p_t, "p_value_mcse": 0.0, "n_perm": 0},
        ]
    )  # fmt: skip


def _spearman_on_data(pairs: Pairs, settings: AnalysisSettings, stat: Statistic):
    rho, intervals = data_intervals(pairs, settings)
    return rho, intervals, independence_tests(pairs, rho, settings)


def _kendall_on_data(pairs: Pairs, settings: AnalysisSettings, stat: Statistic):
    return kendall_on_data(pairs, settings)


def _parts_on_data(pairs: Pairs, settings: AnalysisSettings, stat: Statistic):
    return statistic_on_data(pairs, settings, stat.name)


#: A statistic's estimate, intervals and tests on the data: Spearman's and Kendall's own functions (their
#: asymptotic intervals and tests take more than the estimate), the default for any other (Pearson's, a
#: user's: :func:`statistic_on_data`). A new override is a function ``(pairs, settings, statistic) ->
#: (estimate, intervals, tests)`` and a line here.
ON_DATA: dict[str, Callable[[Pairs, AnalysisSettings, Statistic], tuple[float, pd.DataFrame, pd.DataFrame]]] = {
    "spearman": _spearman_on_data,
    "kendall_b": _kendall_on_data,
}
#: Statistics computed on the data beside those of the settings (cheap; their coverage is not simulated).
ON_DATA_ALSO = ("kendall_b",)


# --------------------------------------------------------------------------
# The design's answer
# --------------------------------------------------------------------------
def design_scenarios(
    pairs: Pairs, rho_hat: float, bw: tuple[float, float], pool: str | Path, points: tuple[str, ...] = DESIGN_POINTS
) -> tuple[list[Scenario], pd.DataFrame]:
    """The design-matched scenarios and a table of their targets (asked, clipped to the reachable range), at
    ``points`` of :data:`DESIGN_POINTS`."""
    counts = tuple(int(c) for c in np.unique(pairs.x, return_counts=True)[1])
    wanted = {"zero": 0.0, "estimate": rho_hat, "bw_lower": bw[0], "bw_upper": bw[1]}
    wanted = {label: wanted[label] for label in points}
    scenarios, rows = [], []
    for generator in DESIGN_GENERATORS:
        pool_arg = str(pool) if "pool" in GENERATORS[generator].fields else None
        lo, hi = reachable_range(generator, counts, pool=pool_arg)
        seen = set()
        for label, target in wanted.items():
            rho = float(np.clip(target, REACH_SHARE * lo, REACH_SHARE * hi))
            rho = round(rho, 4)
            rows.append({"generator": generator, "point": label, "rho_asked": target, "rho": rho,
                         "clipped": bool(abs(rho - target) > 5e-5), "reach_lower": lo, "reach_upper": hi})  # fmt: skip
            if rho in seen:
                continue
            seen.add(rho)
            scenarios.append(
                Scenario(case="design", generator=generator, n=pairs.n, rho=rho, k=len(counts), template="custom",
                         counts=counts, pool=pool_arg)
            )  # fmt: skip
    return scenarios, pd.DataFrame(rows)


def against(value: float, threshold: float, digits: int = 4) -> str:
    """``value`` with at least ``digits`` decimals, and as many more as it takes for the printed number to
    fall on the same side of ``threshold`` as the number itself (0.94497 against 0.945 prints 0.94497,
    not 0.9450, which would read as reaching it)."""
    if not (math.isfinite(value) and math.isfinite(threshold)):
        return f"{value:.{digits}f}"
    for d in range(digits, 17):
        text = f"{value:.{d}f}"
        if (float(text) >= threshold) == (value >= threshold):
            return text
    return repr(value)


def recommend(coverage: pd.DataFrame, confidence_level: float, criterion: str = "stringent") -> dict[str, Any]:
    """The recommended method for this design, with the evidence (one row per method).

    The rule does not reward noise.  A method qualifies when its coverage
    *estimate* is at least ``confidence_level - delta`` at every scenario of
    the design (and none is undefined), with ``delta`` Bradley's tolerance
    (:func:`coverage_tolerance`: 0.005 at 95% for ``stringent``, 0.025 for
    ``liberal``); a noisier estimate gets no extra allowance (the earlier
    rule, ``coverage + 2 MCSE >= nominal``, let a method through because its
    MCSE was large).  :func:`analyze` sizes the design so every coverage
    MCSE is at most ``delta / 2``; a method whose worst scenario's coverage
    is within 2 MCSE of the threshold is flagged ``borderline``, and one
    with any coverage MCSE above ``delta / 2`` ``decided = False``
    (imprecise).  Decisions use the unrounded numbers, and the text prints
    as many digits as it takes to agree with them (:func:`against`).  Among the qualifying methods the one
    with the shortest mean width (averaged over the scenarios) is named;
    those whose mean width is within 2 combined MCSEs of it are reported as
    indistinguishable at this precision (``tied_with``), not ranked by
    noise.  If none qualifies, the method whose worst coverage is closest to
    nominal is named as the closest, with which side its misses fall on.
    """
    delta = coverage_tolerance(confidence_level, criterion)
    threshold = confidence_level - delta
    rows = []
    for method, g in coverage.groupby("method", sort=False):
        cov = g["coverage"].to_numpy(dtype=float)
        mcse = g["coverage_mcse"].to_numpy(dtype=float)
        defined = bool(np.all(np.isfinite(cov)))
        worst = int(np.nanargmin(cov)) if np.any(np.isfinite(cov)) else 0
        width_mcse = g["mean_width_mcse"].to_numpy(dtype=float) if "mean_width_mcse" in g else np.zeros(len(g))
        rows.append(
            {
                "method": method,
                "qualifies": defined and bool(np.all(cov >= threshold)),
                # the worst scenario decides qualification, so it alone decides how close the call is
                "borderline": bool(defined and abs(cov[worst] - threshold) < 2 * mcse[worst]),
                "decided": bool(np.all(mcse <= delta / 2)),
                "worst_coverage": float(cov[worst]),
                "worst_coverage_mcse": float(mcse[worst]),
                "worst_at_rho": float(g["rho"].iloc[worst]),
                "worst_at_rho_true": float(g["rho_true"].iloc[worst]),
                "worst_generator": str(g["generator"].iloc[worst]),
                "mean_width": float(g["mean_width"].mean()),
                "mean_width_mcse": float(np.sqrt(np.sum(width_mcse**2)) / len(g)),
                "miss_below": float(g["miss_below"].mean()),
                "miss_above": float(g["miss_above"].mean()),
            }
        )
    evidence = pd.DataFrame(rows)
    rule = (
        f"Rule: Bradley's (1978) {criterion} criterion, coverage at least {confidence_level:g} - {delta:.3g} = "
        f"{threshold:.3g} (error rate at most {1 + CRITERIA[criterion]:g} alpha) at every scenario of the design, "
        f"judged on the estimate; then the shortest mean width."
    )
    base = {"criterion": criterion, "tolerance": delta, "threshold": threshold, "rule": rule, "evidence": evidence}
    qualified = evidence[evidence["qualifies"]]
    if len(qualified):
        best = qualified.loc[qualified["mean_width"].idxmin()]
        others = qualified[qualified["method"] != best["method"]]
        tied = others[
            others["mean_width"] - best["mean_width"]
            < 2 * np.hypot(others["mean_width_mcse"], best["mean_width_mcse"])
        ]
        text = (
            f"**{best['method']}**: its coverage is at least {threshold:.3g} at every scenario of this design "
            f"(lowest {against(best['worst_coverage'], threshold)} ± {best['worst_coverage_mcse']:.4f} at target "
            f"rho_s = {best['worst_at_rho']:.3f} (measured truth {best['worst_at_rho_true']:.4f}), "
            f"{best['worst_generator']}), and its mean width {best['mean_width']:.4f} is the shortest of the "
            f"{len(qualified)} method(s) that qualify ({', '.join(qualified['method'])})."
        )
        if len(tied):
            text += (
                f" Indistinguishable in width at this precision: {', '.join(tied['method'])} (within 2 MCSE of "
                f"{best['method']}'s); any of them is as good a choice."
            )
        near = qualified[qualified["borderline"]]
        if len(near):
            text += (f" Worst coverage within 2 MCSE of the threshold (the verdict could change with more "
                     f"datasets): {', '.join(near['method'])}.")  # fmt: skip
        imprecise = qualified[~qualified["decided"]]
        if len(imprecise):
            text += (f" Imprecise (a coverage MCSE above {delta / 2:.3g}, half the tolerance): "
                     f"{', '.join(imprecise['method'])}.")  # fmt: skip
        return base | {"method": str(best["method"]), "qualified": list(qualified["method"]),
                       "tied_with": list(tied["method"]), "closest": None, "text": text + " " + rule}  # fmt: skip
    defined = evidence[np.isfinite(evidence["worst_coverage"])]
    if not len(defined):
        return base | {"method": None, "qualified": [], "tied_with": [], "closest": None,
                       "text": "No method has a defined coverage at this design; no recommendation."}  # fmt: skip
    closest = defined.loc[(confidence_level - defined["worst_coverage"]).idxmin()]
    side = "below" if closest["miss_below"] > closest["miss_above"] else "above"
    text = (
        f"No method reaches {threshold:.3g} at every scenario of this design. Closest: "
        f"**{closest['method']}**, too narrow at its worst (coverage {against(closest['worst_coverage'], threshold)} ± "
        f"{closest['worst_coverage_mcse']:.4f} at target rho_s = {closest['worst_at_rho']:.3f} (measured truth "
        f"{closest['worst_at_rho_true']:.4f}), {closest['worst_generator']}); its misses fall mostly {side} the "
        f"truth (interval entirely below: {closest['miss_below']:.3f}, above: {closest['miss_above']:.3f}, "
        f"averaged over the design). {rule}"
    )
    return base | {"method": None, "qualified": [], "tied_with": [], "closest": str(closest["method"]),
                   "text": text}  # fmt: skip


# --------------------------------------------------------------------------
# The whole analysis
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StatisticResult:
    """One statistic's answer: its estimate, intervals and tests on the data, and, for a statistic of the
    design study, its coverage at the design and the recommendation (None for one computed on the data
    only)."""

    name: str
    label: str
    #: How the report writes its estimate (``r_s``, ``tau_b``, ``r``; a user statistic's name).
    symbol: str
    estimate: float
    intervals: pd.DataFrame
    tests: pd.DataFrame
    coverage: pd.DataFrame | None = None
    recommendation: dict[str, Any] | None = None

    def to_dict(self, min_detectable: pd.DataFrame) -> dict[str, Any]:
        out = {"statistic": self.name, "label": self.label, "estimate": self.estimate,
               "intervals": _records(self.intervals), "tests": _records(self.tests)}  # fmt: skip
        if self.coverage is not None:
            out |= {"coverage": _records(self.coverage[_COVERAGE_COLUMNS]), "min_detectable": _records(min_detectable),
                    "recommendation": _recommendation_dict(self.recommendation)}  # fmt: skip
        return out


@dataclasses.dataclass(frozen=True)
class Analysis:
    """Everything :func:`analyze` found; ``to_dict()`` is what ``analysis.json`` holds.

    ``results`` holds one :class:`StatisticResult` per statistic analyzed, in the order of
    ``settings.statistics`` (then those computed on the data only); ``rho_hat``, ``intervals``, ``tests``,
    ``coverage`` and ``recommendation`` are the first's (Spearman's by default).
    """

    name: str
    columns: tuple[str, str]
    n_input: int
    n_used: int
    dropped_rows: tuple[int, ...]
    x_ties: pd.DataFrame
    y_ties: dict[str, Any]
    #: Spearman's rho on the data: the design's targets are set from it (the generators are calibrated to
    #: Spearman's rho), whichever statistics are analyzed.
    rho_s: float
    results: tuple[StatisticResult, ...]
    design: pd.DataFrame
    power: pd.DataFrame
    min_detectable: pd.DataFrame
    settings: AnalysisSettings
    provenance: dict[str, Any]
    out: Path | None
    #: The next study's n per statistic and target (:func:`plan_next_study`); None with ``settings.plan`` off.
    plan: pd.DataFrame | None = None
    #: What shrank at this n (:meth:`Sizes.as_dict`): None where the sizes asked were used.
    scaled: dict[str, Any] | None = None
    #: The report's sentence on it ("" where nothing shrank).
    scaled_text: str = ""

    def result(self, statistic: str) -> StatisticResult:
        """The result of ``statistic`` (a name of ``results``)."""
        for r in self.results:
            if r.name == statistic:
                return r
        raise KeyError(f"statistic {statistic!r} was not analyzed; the results are of {[r.name for r in self.results]}")

    @property
    def rho_hat(self) -> float:
        """The first statistic's estimate (Spearman's rho by default)."""
        return self.results[0].estimate

    @property
    def intervals(self) -> pd.DataFrame:
        return self.results[0].intervals

    @property
    def tests(self) -> pd.DataFrame:
        return self.results[0].tests

    @property
    def coverage(self) -> pd.DataFrame:
        return self.results[0].coverage

    @property
    def recommendation(self) -> dict[str, Any]:
        return self.results[0].recommendation

    def _deprecated(self, old: str, new: str) -> None:
        warnings.warn(f"Analysis.{old} is deprecated: use {new} (removed in the next release)", DeprecationWarning,
                      stacklevel=3)  # fmt: skip

    def _kendall(self) -> StatisticResult | None:
        return next((r for r in self.results if r.name == "kendall_b"), None)

    @property
    def tau_hat(self) -> float:
        self._deprecated("tau_hat", 'result("kendall_b").estimate')
        return self._kendall().estimate if self._kendall() else math.nan

    @property
    def kendall_intervals(self) -> pd.DataFrame | None:
        self._deprecated("kendall_intervals", 'result("kendall_b").intervals')
        return self._kendall().intervals if self._kendall() else None

    @property
    def kendall_tests(self) -> pd.DataFrame | None:
        self._deprecated("kendall_tests", 'result("kendall_b").tests')
        return self._kendall().tests if self._kendall() else None

    @property
    def kendall_coverage(self) -> pd.DataFrame | None:
        self._deprecated("kendall_coverage", 'result("kendall_b").coverage')
        return self._kendall().coverage if self._kendall() else None

    @property
    def kendall_recommendation(self) -> dict[str, Any] | None:
        self._deprecated("kendall_recommendation", 'result("kendall_b").recommendation')
        return self._kendall().recommendation if self._kendall() else None

    @property
    def others(self) -> dict[str, dict[str, Any]]:
        self._deprecated("others", "results")
        return {r.name: {"estimate": r.estimate, "intervals": r.intervals, "tests": r.tests, "coverage": r.coverage,
                         "recommendation": r.recommendation}
                for r in self.results[1:] if r.name not in ("spearman", "kendall_b")}  # fmt: skip

    def min_detectable_rho(self, statistic: str | None = None) -> pd.DataFrame:
        """The permutation test's minimum detectable correlation per design generator (direction of the
        estimate) of ``statistic`` (in its units; default the first statistic's)."""
        md = self.min_detectable
        keep = (md["test"] == "permutation") & (md["statistic"] == (statistic or self.results[0].name))
        return md[keep].reset_index(drop=True)

    def to_dict(self) -> dict[str, Any]:
        first = self.results[0]
        kendall_ = self._kendall()
        return {
            "data": self.name,
            "x": self.columns[0],
            "y": self.columns[1],
            "n_input": self.n_input,
            "n_used": self.n_used,
            "n_dropped": len(self.dropped_rows),
            # one numbering everywhere: 0-based positions among the data rows (as ``Analysis.dropped_rows``)
            "dropped_positions": list(self.dropped_rows),
            # deprecated (1-based data row numbers, as written before); removed in the next release
            "dropped_rows": [i + 1 for i in self.dropped_rows],
            "x_ties": _records(self.x_ties),
            "y_ties": self.y_ties,
            "rho_s": self.rho_s,
            "results": [r.to_dict(self.min_detectable_rho(r.name)) for r in self.results],
            "design": _records(self.design),
            # the first statistic's, as before ``results`` (kept for readers of earlier files)
            "rho_hat": first.estimate,
            "intervals": _records(first.intervals),
            "tests": _records(first.tests),
            "coverage": _records(first.coverage[_COVERAGE_COLUMNS]),
            "min_detectable": _records(self.min_detectable_rho()),
            "recommendation": _recommendation_dict(first.recommendation),
            # deprecated duplicates of ``results`` (removed in the next release)
            "kendall_b": {"tau_hat": kendall_.estimate, "intervals": _records(kendall_.intervals),
                          "tests": _records(kendall_.tests)}
            | ({"min_detectable": _records(self.min_detectable_rho("kendall_b")),
                "coverage": _records(kendall_.coverage[_COVERAGE_COLUMNS]),
                "recommendation": _recommendation_dict(kendall_.recommendation)}
               if kendall_.coverage is not None else {}) if kendall_ else {},
            "statistics": {r.name: {k: v for k, v in r.to_dict(self.min_detectable_rho(r.name)).items()
                                    if k not in ("statistic", "label")}
                           for r in self.results[1:] if r.name != "kendall_b"},
            "plan": None if self.plan is None else _records(self.plan),
            "settings": self.settings.as_dict(),
            "scaled": self.scaled,
            "provenance": self.provenance,
        }  # fmt: skip


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _recommendation_dict(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k != "evidence"} | {"evidence": _records(rec["evidence"])}


_COVERAGE_COLUMNS = ["scenario", "generator", "rho_true", "method", "coverage", "coverage_mcse", "miss_below",
                     "miss_above", "mean_width", "n_reps", "estimator"]  # fmt: skip


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _digest(pairs: Pairs) -> str:
    h = hashlib.sha256(np.ascontiguousarray(pairs.x).tobytes() + np.ascontiguousarray(pairs.y).tobytes())
    return h.hexdigest()[:16]


def _power_grid(n: int, design: pd.DataFrame, alpha: float, points: int = POWER_GRID_POINTS) -> tuple[float, ...]:
    """|rho| grid of the power curves: ``points`` steps from 0 to where the noncentral-t
    approximation's power reaches 0.999, times 1.25 (so the curve's top is on the grid at any n), at most
    :data:`POWER_GRID_MAX` and 97% of what both generators can reach."""

    reach = float(np.min(np.minimum(-design["reach_lower"], design["reach_upper"])))
    top = min(POWER_GRID_MAX, REACH_SHARE * reach)
    f = lambda r: float(asymptotic_power(r, n, alpha)) - 0.999  # noqa: E731
    if f(top) > 0:
        top = min(top, 1.25 * optimize.brentq(f, 1e-6, top, xtol=1e-6))
    return tuple(float(v) for v in np.round(np.linspace(0.0, top, points + 1), 4))


def analyze(
    x: ArrayLike,
    y: ArrayLike,
    *,
    settings: AnalysisSettings | None = None,
    out: str | Path | None = None,
    name: str = "data",
    columns: tuple[str, str] = ("x", "y"),
    n_jobs: int = -1,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    plots: bool = True,
    wait_for_lock: float | None = 0.0,
    allow_code_change: bool = False,
) -> Analysis:
    """Analyze one paired dataset: its intervals and tests, and a design-matched coverage and power study.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        The pairs; pairs with a missing or non-finite value are dropped (and
        counted).  At least 10 complete pairs, neither column constant.
    settings : AnalysisSettings, optional
        Confidence level, resamples, permutations, the design study's sizes, seed.
    out : path, optional
        Results folder: ``report.md``, ``analysis.json``, ``data_intervals.parquet``,
        ``tests.parquet``, ``analysis.png``/``.pdf``, ``y_pool.csv`` (the
        empirical pool), ``design/`` (the coverage study) and ``power/``.
        ``None``: a temporary folder, deleted after (the pool must be a file).
    name, columns : optional
        The data's name and column names, for the report.
    n_jobs, resume, overwrite, progress, plots, wait_for_lock, allow_code_change : optional
        As for :func:`simulation.study.runner.run_all_ci_scenarios`; ``plots`` draws the figure.

    Returns
    -------
    Analysis

    Raises
    ------
    ValueError
        Bad data (see :func:`complete_pairs`) or settings; nothing is written.
    RunError
        ``out`` holds an analysis and neither ``resume`` nor ``overwrite`` is set, or other settings.
    """

    settings = settings or AnalysisSettings()
    pairs = complete_pairs(x, y)
    if resume and overwrite:
        raise RunError("resume=True and overwrite=True exclude each other")
    used = scaled_sizes(settings, pairs.n).settings
    check_resources(f"an analysis of n = {pairs.n} ({used.n_boot} resamples, {used.n_perm} permutations; "
                    f"design {used.design_n_reps} x {used.design_n_boot}; power {used.power_n_reps})",
                    analysis_memory(pairs.n, settings, check_n_jobs(n_jobs)))  # fmt: skip
    if out is None:
        with tempfile.TemporaryDirectory() as tmp:
            return dataclasses.replace(
                _analyze(pairs, settings, Path(tmp), name, columns, n_jobs, False, False, progress, plots), out=None
            )
    return _analyze(pairs, settings, Path(out), name, columns, n_jobs, resume, overwrite, progress, plots,
                    wait_for_lock, allow_code_change=allow_code_change)  # fmt: skip


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters for a message."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


#: Bytes per observation the intervals and tests on the data hold (their kernels draw the resamples and
#: permutations themselves): at most 100 measured at n = 1,000,000 for Spearman's and Kendall's bootstrap and
#: permutation test (maximum resident set size over the process's base).
ON_DATA_BYTES_PER_OBSERVATION = 160


def analysis_memory(n: int, settings: AnalysisSettings, n_jobs: int) -> float:
    """Bytes an analysis needs at most (nothing is allocated), at the sizes it uses (:func:`scaled_sizes`): on
    the data, O(n) work arrays, the replicates and the permutation null; the design study's workers, each
    bootstrapping one dataset (``design_n_boot x (n + 10)``), holding a block of datasets or calibrating a
    design scenario (``DEFAULT_N_CAL`` datasets of n pairs, as many pairs as at n = 2,000 above it), or holding a power
    curve's datasets and nulls (:func:`~simulation.power.curves.power_memory`), whichever is larger."""
    workers = (os.cpu_count() or 1) if n_jobs < 0 else n_jobs
    sizes = scaled_sizes(settings, n)
    settings = sizes.settings
    # the resamples and permutations are drawn inside the kernels: O(n) work arrays and the replicates
    on_data = ON_DATA_BYTES_PER_OBSERVATION * n + 8.0 * 10 * settings.n_boot + 24.0 * settings.n_perm
    calibration = calibration_memory(n)
    # a design block holds at most BLOCK_REPS datasets of n pairs (the cheap phase's: Cochran's allocation, or
    # as many as the bootstrapped ones at large n)
    cheap = sizes.design_n_reps_cheap or math.ceil(settings.design_n_reps * default_cheap_ratio(settings.design_n_boot))
    design = workers * max(8.0 * settings.design_n_boot * (n + 10), calibration, block_memory(cheap, n))
    power = power_memory(PowerSettings(n_reps=settings.power_n_reps, n_perm=sizes.power_n_perm, seed=0), n, n_jobs)
    return on_data + max(design, power)


class _Phases:
    """A progress bar over an analysis's phases (shown with ``progress``) and each phase's seconds, which
    ``analysis.json``'s provenance records under ``phase_seconds``: where the time went."""

    def __init__(self, names: list[str], progress: bool) -> None:
        from tqdm.auto import tqdm  # deferred: loads only for an analysis

        self.bar = tqdm(total=len(names), desc="analyze", unit="phase", disable=not progress,
                        bar_format="{desc}: {n_fmt}/{total_fmt} phases |{bar}| {elapsed} {postfix}")  # fmt: skip
        self.seconds: dict[str, float] = {}
        self._name: str | None = None
        self._started = 0.0

    def start(self, name: str) -> None:
        self._close_phase()
        self._name, self._started = name, time.perf_counter()
        self.bar.set_postfix_str(name)

    def _close_phase(self) -> None:
        if self._name is not None:
            self.seconds[self._name] = round(time.perf_counter() - self._started, 3)
            self.bar.update(1)
            self._name = None

    def close(self) -> None:
        self._close_phase()
        self.bar.set_postfix_str("done")
        self.bar.close()


def _analyze(pairs, settings, out, name, columns, n_jobs, resume, overwrite, progress, plots, wait_for_lock=0.0, *,
             allow_code_change=False):  # fmt: skip
    started = now()
    sizes = scaled_sizes(settings, pairs.n)
    used = sizes.settings
    identity = {"data_digest": _digest(pairs), "columns": list(columns)} | settings.as_dict()
    if sizes.factor is not None:
        identity["scaled"] = sizes.as_dict()
    names = (*settings.statistics, *(s for s in ON_DATA_ALSO if s not in settings.statistics))
    phases = _Phases([f"{n} on the data" for n in names] + ["design study", "power study"]
                     + (["planning"] if settings.plan else []) + ["report"], progress)  # fmt: skip
    with hold_folder(out, wait_for_lock):
        prepare_output(out, identity, resume=resume, overwrite=overwrite, owned=OWNED_FILES,
                       allow_code_change=allow_code_change)  # fmt: skip
        on_data = {}
        for n in names:
            phases.start(f"{n} on the data")
            on_data[n] = ON_DATA.get(n, _parts_on_data)(pairs, used, get_statistic(n))
        phases.start("design study")
        # the design's targets: Spearman's rho on the data and its Bonett-Wright interval (the generators
        # are calibrated to Spearman's rho), whichever statistics are analyzed
        rho_s = float(spearman_rho_2d(pairs.x[None, :], pairs.y[None, :])[0])
        bw = fisher_z_ci(rho_s, pairs.n, confidence_level=settings.confidence_level, variance="bonett_wright")
        pool = out / POOL_FILE
        write_text(pool, "y\n" + "\n".join(repr(float(v)) for v in pairs.y) + "\n")
        scenarios, design = design_scenarios(pairs, rho_s, (float(bw[0]), float(bw[1])), pool, sizes.design_points)
        flags = {"resume": resume, "overwrite": overwrite, "allow_code_change": allow_code_change}
        study = _design_study(used, sizes.design_n_reps_cheap, out, name, scenarios, n_jobs, progress, flags)
        phases.start("power study")
        pw = _power_study(pairs, used, sizes, out, name, scenarios, design, n_jobs, progress, flags)
        results = []
        for n in names:
            stat = get_statistic(n)
            coverage = recommendation = None
            if n in settings.statistics:
                coverage = study.coverage[study.coverage["statistic"] == n].reset_index(drop=True)
                recommendation = recommend(coverage, settings.confidence_level, settings.criterion)
            results.append(StatisticResult(n, stat.label, stat.symbol or n, *on_data[n], coverage=coverage,
                                           recommendation=recommendation))  # fmt: skip
        if settings.plan:
            phases.start("planning")
        plan = plan_next_study(pairs, rho_s, used, n_jobs) if settings.plan else None
        phases.start("report")
        provenance = provenance_record(f"analyze:{name}", identity, started)
        result = Analysis(
            name=name, columns=tuple(columns), n_input=pairs.n_input, n_used=pairs.n, dropped_rows=pairs.dropped_rows,
            x_ties=tie_table(pairs.x), y_ties=_tie_summary(pairs.y), rho_s=rho_s, results=tuple(results),
            design=design, power=pw.power, min_detectable=pw.min_detectable, settings=used,
            provenance=provenance, out=out, plan=plan, scaled=sizes.as_dict(), scaled_text=sizes.sentence(pairs.n),
        )  # fmt: skip
        write_parquet(out / INTERVALS_FILE, in_order(result.intervals, DATA_INTERVALS, INTERVALS_FILE),
                      provenance)  # fmt: skip
        write_parquet(out / TESTS_FILE, in_order(result.tests, TESTS, TESTS_FILE), provenance)
        write_text(out / REPORT_FILE, report_markdown(result))
        if plots:
            write_analysis_figure(pairs.x, pairs.y, result, out / FIGURE_NAME)
        phases.close()
        provenance["phase_seconds"] = phases.seconds
        write_json(out / JSON_FILE, result.to_dict())
        return result


#: The search range's upper end of the next study's n (:func:`plan_next_study`).
PLAN_MAX_N = 2000
#: The fast test of each built-in statistic in the planning lines (a user statistic's: its t test where it
#: declares one, else its permutation test).
PLAN_TESTS = {"spearman": "t_approx", "kendall_b": "normal_approx", "pearson": "t_test"}


def plan_sizes(settings: AnalysisSettings) -> dict[str, int]:
    """The planning solves' sizes, in proportion to the analysis's own (at the defaults: 400 datasets per
    evaluation of the power solve's bracket and 1,000 in its confirmation, from ``power_n_reps`` 4,000; 100 per
    evaluation of the width solve, times 25 for its asymptotic interval, from ``design_n_reps`` 1,500), at
    least the solves' minimum of 50."""
    return {"power_reps": max(50, min(400, settings.power_n_reps // 10)),
            "power_confirm": max(50, min(1000, settings.power_n_reps // 4)),
            "width_reps": max(50, min(100, settings.design_n_reps // 15))}  # fmt: skip


def plan_design(pairs: Pairs, rho_s: float) -> Scenario:
    """A design like the data's for the next study: the rank-mixing generator at Spearman's rho of the data
    (within its reachable range), x's tie groups as proportions of n (all distinct where more than half the
    values are), its ``n`` replaced by the solve (:func:`simulation.power.solve.design_at`)."""
    counts = tuple(int(c) for c in np.unique(pairs.x, return_counts=True)[1])
    if len(counts) > pairs.n / 2:
        return Scenario(case="plan", generator="rank_mixing", n=pairs.n, rho=round(rho_s, 4), template="all_distinct")
    lo, hi = reachable_range("rank_mixing", counts)
    rho = round(float(np.clip(rho_s, REACH_SHARE * lo, REACH_SHARE * hi)), 4)
    return Scenario(case="plan", generator="rank_mixing", n=pairs.n, rho=rho, k=len(counts), template="custom",
                    counts=counts)  # fmt: skip


def plan_next_study(pairs: Pairs, rho_s: float, settings: AnalysisSettings, n_jobs: int = 1) -> pd.DataFrame:
    """Per statistic of ``settings``, the n at which a study like this one (:func:`plan_design`) reaches
    ``settings.target_power`` with the statistic's fast test at the observed correlation
    (:func:`simulation.power.solve.solve_n`), and the n at which its first asymptotic interval has a mean
    width of ``settings.plan_width`` (:func:`simulation.power.solve.solve_interval_n`), each with its 95%
    interval, searched in n = max(10, groups of x) to :data:`PLAN_MAX_N`.  A target the range cannot reach is
    a row with status ``not_reached`` and the reason, not an error."""
    design = plan_design(pairs, rho_s)
    lo = max(10, design.k or 0)
    sizes = plan_sizes(settings)
    rows = []
    for name in settings.statistics:
        stat = get_statistic(name)
        test = PLAN_TESTS.get(name, "t_test" if "t_test" in stat.tests else "permutation")
        method = stat.asymptotic_methods[0] if stat.asymptotic_methods else "percentile"
        jobs = [("power", test, lambda stat=stat, test=test: solve_n(
                    design, target_power=settings.target_power, statistic=stat, test=test, alpha=settings.alpha,
                    n_range=(lo, PLAN_MAX_N), seed=_subseed(settings.seed, 41), reps=sizes["power_reps"],
                    confirm_reps=sizes["power_confirm"])),
                ("width", method, lambda stat=stat, method=method: solve_interval_n(
                    design, method=method, width=settings.plan_width, statistic=stat, n_range=(lo, PLAN_MAX_N),
                    confidence_level=settings.confidence_level, reps=sizes["width_reps"],
                    seed=_subseed(settings.seed, 42), confirm_reps=sizes["width_reps"], n_jobs=n_jobs))]  # fmt: skip
        for target, how, solve in jobs:
            value = settings.target_power if target == "power" else float(settings.plan_width)
            row = {"statistic": name, "target": target, "value": value, "test_or_method": how, "rho": design.rho}
            try:
                found = solve()
            except SolveError as exc:
                rows.append(row | {"n": None, "n_lower": None, "n_upper": None, "status": "not_reached",
                                   "note": str(exc)})  # fmt: skip
                continue
            rows.append(row | {"n": found.answer, "n_lower": found.root_lower, "n_upper": found.root_upper,
                               "status": "ok", "note": ""})  # fmt: skip
    return pd.DataFrame(rows)


def _design_study(settings, n_reps_cheap, out, name, scenarios, n_jobs, progress, flags):
    """The design-matched coverage study: every statistic of the settings on the same datasets."""
    return run_all_ci_scenarios(
        scenarios, n_reps=settings.design_n_reps, n_reps_cheap=n_reps_cheap, n_boot=settings.design_n_boot,
        confidence_level=settings.confidence_level, seed=settings.seed, out=out / "design", n_jobs=n_jobs,
        target_mcse=(coverage_tolerance(settings.confidence_level, settings.criterion) / 2
                     if settings.grow_design else None), max_reps=settings.design_max_reps,
        progress=progress, study=f"analyze:{name}", statistics=settings.statistics, **flags,
    )  # fmt: skip


def _power_study(pairs, settings, sizes, out, name, scenarios, design, n_jobs, progress, flags):
    """The power study at the estimate's scenarios."""
    estimate = design[design["point"] == "estimate"].set_index("generator")["rho"]
    at_estimate = [s for s in scenarios if s.rho == estimate[s.generator]]
    power_settings = PowerSettings(
        n_reps=settings.power_n_reps, grid=_power_grid(pairs.n, design, settings.alpha, sizes.power_grid_points),
        alpha=settings.alpha, target_power=settings.target_power, seed=settings.seed, n_perm=sizes.power_n_perm,
    )  # fmt: skip
    return run_power_study(at_estimate, power_settings, n_jobs=n_jobs, out=out / "power", progress=progress,
                           study=f"analyze:{name}", statistics=settings.statistics, **flags)  # fmt: skip


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------
def _fmt(v: float, digits: int = 3) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _generator_order(column: pd.Series) -> pd.Series:
    return column.map(DESIGN_GENERATORS.index) if column.name == "generator" else column


def _coverage_by_scenario(cov: pd.DataFrame, methods: list[str], header: str) -> pd.DataFrame:
    """Coverage ± MCSE, one row per method and one column per design scenario, headed
    ``<generator> <header>`` with ``{rho}`` the target and ``{truth}`` the measured truth ± its MCSE."""
    cols = {}
    for (generator, rho), g in cov.groupby(["generator", "rho"], sort=False):
        truth = f"{float(g['rho_true'].iloc[0]):.4f} ± {float(g['rho_true_mcse'].iloc[0]):.4f}"
        cols[f"{generator} " + header.format(rho=rho, truth=truth)] = {
            m: f"{c:.3f} ± {e:.3f}" for m, c, e in zip(g["method"], g["coverage"], g["coverage_mcse"], strict=True)
        }
    return pd.DataFrame(cols).reindex(methods).reset_index(names="method")


def report_markdown(a: Analysis) -> str:
    """One page a researcher can paste from: the first statistic's answer, what the design could detect,
    then each further statistic's section."""
    s = a.settings
    level = f"{100 * s.confidence_level:g}%"
    first = a.results[0]
    x_name, y_name = a.columns
    lines = [f"# {first.label} of `{y_name}` with `{x_name}` ({a.name})", "", _data_sentence(a), ""]
    if a.scaled_text:
        lines += [f"**Sizes scaled for a large n.** {a.scaled_text}", ""]
    lines += _headline(first, level, s)
    lines += ["", "## Recommendation", "", first.recommendation["text"], "",
              f"## Intervals on the data ({level}; bootstrap: {s.n_boot} paired resamples, seed {s.seed})", "",
              _interval_table(first.intervals), ""]  # fmt: skip
    lines += _design_section(a, first)
    lines += _detect_section(a)
    lines += _plan_section(a)
    for r in a.results[1:]:
        lines += _statistic_section(r, level, s)
    lines += [
        "",
        "## What this does and does not show",
        "",
        "The coverage table is a simulation at this study's n and tie structure under two models of how y depends "
        "on x; it shows how each method behaves for a design like this one, not that any interval computed on "
        "these data contains the true correlation. A method that covers under both models is a safer choice; "
        "neither model is claimed to be how these data arose. The minimum detectable correlation is a property "
        "of the design, not evidence about the observed effect.",
        "",
        f"Settings: {level} intervals; {s.n_boot} bootstrap resamples and {s.n_perm} permutations on the data; "
        f"design study of {s.design_n_reps} bootstrapped datasets per scenario"
        f"{' (grown to the precision above)' if s.grow_design else ''} x {s.design_n_boot} resamples; power from "
        f"{s.power_n_reps} datasets per grid point at alpha = {s.alpha:g}, target power {s.target_power:g}; "
        f"recommendation by Bradley's {s.criterion} criterion; seed {s.seed}. Data digest "
        f"{a.provenance['identity']['data_digest']}.",
    ]
    return "\n".join(lines) + "\n"


def _data_sentence(a: Analysis) -> str:
    dropped = len(a.dropped_rows)
    return (
        f"n = {a.n_used} complete pairs"
        + (f" ({dropped} of {a.n_input} rows dropped for a missing or non-finite value, at 0-based positions "
           f"{', '.join(str(i) for i in a.dropped_rows[:20])}{' ...' if dropped > 20 else ''}: position 0 is the "
           f"first data row, the line after a CSV's header; `dropped_rows` in Python and `dropped_positions` in "
           f"analysis.json hold the same numbers)" if dropped
           else " (no rows dropped)")
        + f"; x has {len(a.x_ties)} distinct values (counts {' '.join(map(str, a.x_ties['count']))}), y has "
        f"{a.y_ties['distinct']} ({a.y_ties['share_in_ties']:.0%} of values in ties)."
    )  # fmt: skip


def _interval_table(iv: pd.DataFrame) -> str:
    return markdown_table(iv.assign(ci_lower=iv["ci_lower"].map(_fmt), ci_upper=iv["ci_upper"].map(_fmt)))


def _chosen_interval(r: StatisticResult, level: str, closest_note: str) -> list[str]:
    """The recommended interval (or the closest to nominal) of a statistic of the design study."""
    rec = r.recommendation
    chosen = rec["method"] or rec["closest"]
    if chosen is None:
        return []
    by = r.intervals.set_index("method")
    what = "recommended" if rec["method"] else f"closest to nominal (none qualifies{closest_note})"
    return [f"{level} interval for {r.symbol}, {chosen} ({what}): ({_fmt(by.loc[chosen, 'ci_lower'])}, "
            f"{_fmt(by.loc[chosen, 'ci_upper'])})."]  # fmt: skip


def _tests_sentence(r: StatisticResult, s: AnalysisSettings) -> str:
    """The tests of independence (two-sided), the permutation test first with its Monte Carlo error."""
    parts = []
    for t in r.tests.itertuples():
        if t.test == "permutation":
            parts.append(f"permutation p = {t.p_value:.4g} (MCSE {t.p_value_mcse:.2g}, {s.n_perm} permutations "
                         "keeping the ties of x and y)")  # fmt: skip
        else:
            parts.append(f"{t.test.replace('_', ' ')} p = {t.p_value:.4g}")
    return f"Tests of independence (two-sided): {'; '.join(parts)}."


def _headline(r: StatisticResult, level: str, s: AnalysisSettings) -> list[str]:
    return [f"**{r.symbol} = {r.estimate:.4f}**", *_chosen_interval(r, level, "; see below"), "",
            _tests_sentence(r, s)]  # fmt: skip


def _design_section(a: Analysis, r: StatisticResult) -> list[str]:
    """The design-matched study and the first statistic's coverage at it."""
    s = a.settings
    lines = [
        "## Coverage at this design",
        "",
        f"Design-matched study: n = {a.n_used}, x's tie counts as observed; y by rank mixing and from the observed "
        f"y values (empirical pool), at targets set from Spearman's rho on the data ({a.rho_s:.4f}) and its "
        f"Bonett-Wright interval; {s.design_n_reps} bootstrapped datasets per scenario x {s.design_n_boot} "
        f"resamples (grown until every coverage MCSE is at most {r.recommendation['tolerance'] / 2:.4f} unless "
        f"turned off); columns by target rho_s with {r.symbol}'s measured truth (± its MCSE). "
        f"Coverage ± MCSE (headline estimator; see `design/summary.md`):",
        "",
    ]  # fmt: skip
    cov = r.coverage.sort_values(["generator", "rho"], key=_generator_order, kind="stable")
    table = _coverage_by_scenario(cov, list(dict.fromkeys(cov["method"])), "target {rho:.3f} (truth {truth})")
    width = cov.groupby("method", sort=False)["mean_width"].mean()
    table["mean width"] = table["method"].map(lambda m: _fmt(width.get(m, math.nan)))
    lines += [markdown_table(table), ""]
    clipped = a.design[a.design["clipped"]]
    if len(clipped):
        lines += ["Clipped to the reachable range: " + "; ".join(
            f"{c.generator} {c.point} {c.rho_asked:.3f} -> {c.rho:.3f}" for c in clipped.itertuples()) + ".", ""]
    return lines


def _detect_section(a: Analysis) -> list[str]:
    """The minimum detectable correlation of each statistic's permutation test, per design generator."""
    s = a.settings
    first = a.results[0].coverage
    generator_of = dict(zip(first["scenario"], first["generator"], strict=True))
    lines = ["## What this design could detect", ""]
    for k, name in enumerate(s.statistics):
        for r in a.min_detectable_rho(name).itertuples():
            gen = generator_of.get(r.scenario, r.scenario)
            if k == 0 and r.status == "ok":
                lines.append(f"- {gen}: minimum detectable |{_parameter(name)}| = {r.rho_star:.3f} (± "
                             f"{r.rho_star_se:.3f}) for {s.target_power:.0%} power, permutation test, alpha = "
                             f"{s.alpha:g}, {r.alternative}, {r.direction} direction.")  # fmt: skip
            elif k == 0:
                lines.append(f"- {gen}: {r.status} (power {r.power_at_search_hi:.2f} at |{_parameter(name)}| = "
                             f"{r.search_hi:.2f}).")  # fmt: skip
            else:
                what = (f"{r.rho_star:.3f} (± {r.rho_star_se:.3f})" if r.status == "ok"
                        else f"{r.status} (power {r.power_at_search_hi:.2f} at {r.search_hi:.2f})")  # fmt: skip
                lines.append(f"- {gen}, {name}'s permutation test: minimum detectable |{name}| = {what}, in its "
                             "own units, on the same datasets.")  # fmt: skip
    return lines


def _plan_section(a: Analysis) -> list[str]:
    """One line per statistic and target: the n a study like this one would need."""
    if a.plan is None:
        return []
    lines = ["", "## Planning the next study", "",
             f"A study like this one (x's tie groups as proportions of n; the rank-mixing model at rho_s = "
             f"{a.plan['rho'].iloc[0]:g}, the data's; n searched up to {PLAN_MAX_N}) would need:", ""]  # fmt: skip
    for r in a.plan.itertuples():
        what = (f"power {r.value:g} with the {r.test_or_method} test at alpha = {a.settings.alpha:g}"
                if r.target == "power" else f"a mean {r.test_or_method} interval width of {r.value:g}")  # fmt: skip
        answer = (f"n = {int(r.n)} (95% interval of the root {r.n_lower:.0f}-{r.n_upper:.0f})" if r.status == "ok"
                  else f"not reached: {r.note}")  # fmt: skip
        lines.append(f"- {r.statistic}, {what}: {answer}.")
    return lines


def _parameter(name: str) -> str:
    """How the report writes a statistic's true value (``rho_s``, ``tau_b``, ``r``; else its name)."""
    return STATISTIC_LABELS.get(name, name)


def _statistic_section(r: StatisticResult, level: str, s: AnalysisSettings) -> list[str]:
    """A further statistic's section: the estimate, tests, intervals and, if it is in the design study, its
    coverage at the design and recommendation."""
    lines = ["", f"## {r.label} on the same data", "", f"**{r.symbol} = {r.estimate:.4f}**. " + _tests_sentence(r, s)
             + f" {level} intervals (bootstrap on the same {s.n_boot} resamples as the first statistic's):", "",
             _interval_table(r.intervals)]  # fmt: skip
    if r.coverage is None:
        return lines + ["", "Which of its methods covers at this design is not simulated here: add it to the "
                            f"analysis's statistics (`--statistic {','.join((*s.statistics, r.name))}`; the design "
                            "study then takes longer)."]  # fmt: skip
    cov = r.coverage.sort_values(["generator", "rho"], key=_generator_order, kind="stable")
    table = _coverage_by_scenario(cov, list(dict.fromkeys(cov["method"])),
                                  f"target rho_s {{rho:.3f}} ({r.name} truth {{truth}})")  # fmt: skip
    return lines + ["", *_chosen_interval(r, level, ""), "",
                    f"Coverage of {r.name}'s intervals at this design (the same datasets as the first statistic's; "
                    f"its truth is its own estimand at the generator's Spearman-calibrated strength):", "",
                    markdown_table(table), "", r.recommendation["text"]]  # fmt: skip
