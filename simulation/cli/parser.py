"""Command line: ``python -m simulation``.

Thin layer: parse, validate, call the public API.  Invalid input exits with
status 2 and one message, without a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from simulation.core.settings import CONFIG_ENV_VAR, Settings, load_settings
from simulation.core.version import __version__
from simulation.infra.resources import SKIP_ENV as SKIP_RESOURCE_ENV


class CliError(Exception):
    """An input problem reported as one line and exit status 2."""


def _checked(convert, ok, allowed: str):
    """An argparse type: ``convert`` the text, then require ``ok(value)``; the error says what is allowed."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}")
        return value

    return parse


_positive_int = _checked(int, lambda v: v >= 1, "an integer >= 1")
#: ``--n-boot``: the bootstrap intervals need two resamples (:data:`simulation.engine.intervals.MIN_N_BOOT`).
_n_boot = _checked(int, lambda v: v >= 2, "an integer >= 2 (an interval needs two resamples)")
_level = _checked(float, lambda v: 0 < v < 1, "a number in (0, 1)")
_seed = _checked(int, lambda v: v >= 0, "a non-negative integer")
_n_jobs = _checked(int, lambda v: v != 0, "a non-zero integer (-1: all cores)")
_mcse = _checked(float, lambda v: 0 < v < 0.5, "a number in (0, 0.5)")
_finite = _checked(float, math.isfinite, "a finite number")
_percent = _checked(float, lambda v: 0 < v < 100, "a number in (0, 100)")


def _method_list(text: str) -> tuple[str, ...]:
    # deferred: numba kernels load only when an option needs them, not for --help
    from simulation.statistics.statistic import STATISTICS

    # deferred: the study layer loads only when an option needs it, not for --help
    from simulation.study.runner import statistic_methods

    known = list(dict.fromkeys(m for stat in STATISTICS for m in statistic_methods(stat)))
    # a user statistic's (checked against it later); each name once, whoever defines it
    known = list(dict.fromkeys([*known, "fisher_z_se", "wald_se", "fisher_z_<name>"]))
    methods = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in methods if m not in known and not m.startswith("fisher_z_")]
    if unknown or not methods:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(known)}, got {text!r}")
    return methods


class _Deprecated(argparse.Action):
    """An option's old name: stores into the new one's destination and says, on stderr, what to use."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"warning: {option_string} is deprecated and will be removed in the next release; use {self.new}",
              file=sys.stderr)  # fmt: skip
        setattr(namespace, self.dest, values)


_wait = _checked(float, lambda v: v >= 0 and math.isfinite(v), "a number of seconds >= 0")


def _plan_target(text: str) -> str:
    """``plan --target``: ``MEASURE=MCSE`` as for ``run``, or (deprecated) a bare 95% half-width."""
    if "=" in text:
        return _target(text)
    return _mcse(text) and text


def _target(text: str) -> str:
    # deferred: the study layer loads only when an option needs it, not for --help
    from simulation.study.runner import check_targets

    try:
        check_targets([text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("`targets`: ")) from None
    return text


def _statistic_list(text: str) -> tuple[str, ...]:
    # deferred: numba kernels load only when an option needs them, not for --help
    from simulation.statistics.statistic import BUILTIN

    names = tuple(v.strip() for v in text.split(",") if v.strip())
    if not names or any(v not in BUILTIN and ":" not in v for v in names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"expected distinct names from {','.join(BUILTIN)} or package.module:function (a statistic of "
            f"your own), comma-separated, got {text!r}"
        )
    return names  # a user statistic is imported and checked when the command starts


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "study",
        nargs="?",
        default="karwowski2018",
        help="built-in study (karwowski2018, tie_sweep, validation, smoke) or a scenario CSV file "
        "(default: karwowski2018)",
    )
    p.add_argument("--n-reps", type=_positive_int, help="bootstrapped datasets per scenario (default: N_REPS)")
    p.add_argument("--n-boot", type=_n_boot, help="resamples per dataset (default: N_BOOT)")
    p.add_argument("--confidence-level", type=_level, help="default: CONFIDENCE_LEVEL")
    p.add_argument("--seed", type=_seed, help="default: SEED")
    p.add_argument("--n-jobs", type=_n_jobs, help="worker processes, -1 = all cores (default: N_JOBS)")
    _add_backend_arguments(p)


def _add_allow_code_change(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-code-change", action="store_true",
                   help="let --resume continue results computed by another version of this package's code "
                   "(only for a change that cannot alter the numbers; recorded in the manifest and tables)")


def _add_backend_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend", choices=["local", "dask"], default="local",
        help="local cores (default) or a Dask distributed cluster (needs --scheduler)",
    )  # fmt: skip
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m simulation``."""
    parser = argparse.ArgumentParser(
        prog="python -m simulation",
        description=(
            "Monte Carlo studies of bootstrap and asymptotic confidence intervals for "
            "Spearman's rho with heavily tied x. Commands that compute read their settings from ./config.py, "
            "executed as Python and announced on the first line (or $SIMULATION_CONFIG, else packaged defaults)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", help="config.py to read instead of the default (a Python file: it is executed)")
    parser.add_argument("--skip-resource-check", action="store_true",
                        help="compute even where the memory or disk the sizes need exceeds what this machine has "
                        "(also SIMULATION_SKIP_RESOURCE_CHECK=1)")
    parser.add_argument("--no-config", action="store_true",
                        help="read no config file: the packaged defaults (also SIMULATION_CONFIG=off)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run an interval-coverage study (default: karwowski2018, 200 x 1000, all methods)",
        description=(
            "Bootstrap and Fisher-z interval coverage for every scenario of a study. Writes "
            "coverage.parquet, summary.md and figures (PNG, PDF) under --out (default results/<study>)."
        ),
    )
    _add_run_arguments(run)
    run.add_argument("--methods", type=_method_list, help="comma-separated interval methods (default: all)")
    run.add_argument("--reference-method", default="percentile", metavar="METHOD",
                     help="the interval method the relative widths and precisions compare with (default: percentile)")
    run.add_argument(
        "--statistic", type=_statistic_list, default=None,
        help="comma-separated statistics: spearman (default; tie_sweep: spearman,kendall_b), kendall_b, pearson, "
        "or your own as package.module:function (a numba stat(x, y, counts), a Statistic, or a Python "
        "stat(x, y, axis=-1); the current folder is importable)",
    )  # fmt: skip
    run.add_argument("--out", help="results folder (default: results/<study name>)")
    run.add_argument("--wait-for-lock", type=_wait, default=0.0, metavar="SECONDS",
                     help="wait this long if another run holds --out (default 0: refuse, naming it)")  # fmt: skip
    run.add_argument("--resume", action="store_true", help="reuse results in --out, compute only what is missing")
    run.add_argument("--overwrite", action="store_true", help="delete earlier results in --out first")
    _add_allow_code_change(run)
    run.add_argument("--replicates", action="store_true", help="also write replicates.parquet (every interval)")
    run.add_argument(
        "--target-mcse", type=_mcse, help="add replicates until every coverage MCSE is below this (e.g. 0.005)"
    )
    run.add_argument(
        "--target", type=_target, action="append", metavar="MEASURE=MCSE",
        help="precision target, repeatable: coverage, mean_ci_lower, mean_ci_upper, mean_width, miss_below, "
        "miss_above, or endpoints (both means), e.g. --target endpoints=0.0003 --target coverage=0.002; after a "
        "first round of --n-reps, each scenario gets its own allocation of both phases until every target holds",
    )  # fmt: skip
    run.add_argument(
        "--max-reps", type=_positive_int, default=20_000,
        help="cap on bootstrapped datasets per scenario for --target and --target-mcse (default 20000)",
    )  # fmt: skip
    run.add_argument(
        "--n-reps-cheap", type=_positive_int,
        help="cheap-phase datasets per scenario, >= --n-reps (default: --n-reps times the optimal allocation)",
    )  # fmt: skip
    run.add_argument(
        "--no-control-variates", action="store_true",
        help="headline estimates are plain means (the control-variate ones are then not computed)",
    )  # fmt: skip
    run.add_argument(
        "--truth-mcse", type=_mcse,
        help="precision of a measured truth (default 0.0005, or --target-mcse / 4 if smaller)",
    )  # fmt: skip
    run.add_argument("--no-plots", action="store_true", help="skip the figures")
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    cache = sub.add_parser(
        "cache",
        help="where the cache of calibrations and truths is (shared by every results folder), or --clear it",
        description="Calibrations and measured truths are kept in a user cache (SPEARMAN_SIM_CACHE, else "
        "~/.cache/spearman-tied-sim) so that no run measures them twice; entries are keyed by the scenario, "
        "the statistic, the precision and the code's version.",
    )  # fmt: skip
    cache.add_argument("--clear", action="store_true", help="delete every entry")

    plan = sub.add_parser(
        "plan",
        help="replicates needed for a target precision, and the expected runtime",
        description=(
            "Datasets needed so that each targeted measure's Monte Carlo standard error (MCSE) is at most "
            "--target, the same unit and the same allocation as `run --target` (the 95%% half-width, 1.96 "
            "MCSE, is printed beside it); the runtime is extrapolated from a short timing run on this machine."
        ),
    )
    _add_run_arguments(plan)
    plan.add_argument(
        "--target", type=_plan_target, action="append", metavar="MEASURE=MCSE",
        help="precision target(s) to plan for, as for `run --target`: an MCSE, e.g. coverage=0.002 or "
        "endpoints=0.0003; each one a row (default: the study tiers of 95%% half-widths ±0.01, ±0.002, "
        "±0.001 of the mean endpoints at 500 resamples). A bare number is read as a 95%% half-width of "
        "the mean endpoints (deprecated: write endpoints=MCSE)",
    )
    plan.add_argument(
        "--pilot-reps", type=_positive_int, default=200, help="bootstrapped datasets per scenario in the pilot (200)"
    )
    plan.add_argument("--workers", type=_positive_int, action="append", help="also estimate for N cores (repeatable)")
    plan.add_argument(
        "--statistic", type=_statistic_list, default=None,
        help="comma-separated statistics to plan for: spearman (default; tie_sweep: spearman,kendall_b), "
        "kendall_b, pearson, or package.module:function",
    )  # fmt: skip

    solve = sub.add_parser(
        "solve",
        help="the smallest n at which a test reaches a stated power, or an interval a width or honest coverage, "
        "under a design's ties",
        description=(
            "Stochastic root-finding for n: the power of the test at chosen n (growing numbers of datasets), a "
            "probit GLM in sqrt(n) over the evaluations, the answer with its 95%% interval, and a confirmation run. "
            "The design is one scenario of a study (its n is replaced by the search; its ties scale with n). "
            "Writes solve.json, solve_evaluations.parquet and solve.png/pdf under --out (default "
            "results/<study>/solve)."
        ),
    )
    solve.add_argument("study", help="study name or CSV file holding the design")
    solve.add_argument("--scenario", help="the design's scenario key (needed when the study holds several)")
    solve.add_argument("--unknown", choices=["n", "rho", "k"], default="n",
                       help="what to solve for: n (default); rho: the minimum detectable correlation at the "
                       "design's n; k: the fewest distinct x values of the design's tie template at its n (both "
                       "a power target)")  # fmt: skip
    solve.add_argument("--power", type=_level, help="the target power (0.8 unless --width or --coverage)")
    solve.add_argument("--width", type=float, help="instead of a power: the target mean width of --method's "
                       "interval")  # fmt: skip
    solve.add_argument("--coverage", action="store_true", help="instead of a power: the n at which --method's "
                       "coverage enters Bradley's liberal band (0.925-0.975 at 95%%)")  # fmt: skip
    solve.add_argument("--method", help="the interval method of --width or --coverage (percentile, bca, "
                       "fisher_z_bonett_wright, ...)")  # fmt: skip
    solve.add_argument("--n-boot", type=_positive_int, default=1000,
                       help="bootstrap resamples per dataset for --width or --coverage (1000)")
    solve.add_argument("--confidence-level", type=_level, default=0.95,
                       help="the interval's level for --width or --coverage (0.95)")
    solve.add_argument("--statistic", default="spearman",
                       help="spearman (default), kendall_b, pearson, or your own as package.module:function")
    solve.add_argument("--test",
                       help="the test: permutation (default); t_approx (Spearman), normal_approx (Kendall), "
                       "t_test (Pearson)")  # fmt: skip
    solve.add_argument("--alpha", type=_level, default=0.05, help="test level (0.05)")
    solve.add_argument("--alternative", choices=["two-sided", "greater", "less"], default="two-sided")
    solve.add_argument("--n-range", default="20,400", help="the search range lo,hi (20,400)")
    solve.add_argument("--reps", type=_positive_int,
                       help="datasets per evaluation of the first stage; each refining round doubles them (400 for a "
                       "power; 200 bootstrapped datasets for --width or --coverage)")
    solve.add_argument("--confirm-reps", type=_checked(int, lambda v: v >= 50, "an integer >= 50"),
                       help="datasets of the confirmation run at the answer (4000 for a power; 1000 bootstrapped "
                       "datasets for --width or --coverage; --unknown k has none)")
    solve.add_argument("--seed", type=_seed, help="default: SEED")
    solve.add_argument("--out", help="results folder (default: results/<study>/solve)")

    power = sub.add_parser(
        "power",
        help="power curves and the minimum detectable correlation of every scenario",
        description=(
            "Monte Carlo power of the permutation and t-approximation tests of rho_s = 0 over a grid of true "
            "correlations (common random numbers), the noncentral-t approximation, and the minimum detectable "
            "|rho| at the target power. Writes power.parquet, min_detectable.parquet, power_summary.md and "
            "figures under --out (default results/<study>/power)."
        ),
    )
    power.add_argument("study", nargs="?", default="karwowski2018", help="study name or CSV file")
    power.add_argument("--n-reps", type=_positive_int, default=10_000, help="datasets per grid point (10000)")
    power.add_argument("--n-sims", type=_positive_int, dest="n_reps", action=_Deprecated, new="--n-reps",
                       help=argparse.SUPPRESS)  # renamed in 0.1.0; kept for one release  # fmt: skip
    power.add_argument(
        "--statistic", type=_statistic_list, default=None,
        help="comma-separated statistics: spearman (default; tie_sweep: spearman,kendall_b), kendall_b, pearson, "
        "or package.module:function (same datasets; a user statistic is tested by permutation)",
    )  # fmt: skip
    power.add_argument("--grid-max", type=_level, default=0.6, help="largest |rho| of the grid (0.6)")
    power.add_argument("--grid-step", type=_level, default=0.02, help="grid step (0.02)")
    power.add_argument("--alpha", type=_level, default=0.05, help="test level (0.05)")
    power.add_argument("--alternative", choices=["two-sided", "greater", "less"], default="two-sided")
    power.add_argument(
        "--direction", choices=["observed", "positive", "negative", "both"], default="observed",
        help="sign of rho to search: that of the scenario's observed correlation (default), or as given",
    )  # fmt: skip
    power.add_argument("--target-power", type=_level, default=0.8, help="power for the minimum detectable rho (0.8)")
    power.add_argument("--n-perm", type=_positive_int, default=100_000, help="permutations of each shared null")
    power.add_argument("--seed", type=_seed, help="default: SEED")
    power.add_argument("--n-jobs", type=_n_jobs, help="worker processes, -1 = all cores (default: N_JOBS)")
    power.add_argument("--out", help="results folder (default: results/<study>/power)")
    power.add_argument("--wait-for-lock", type=_wait, default=0.0, metavar="SECONDS",
                       help="wait this long if another run holds --out (default 0: refuse, naming it)")  # fmt: skip
    _add_backend_arguments(power)
    power.add_argument("--resume", action="store_true", help="reuse results in --out, compute only what is missing")
    power.add_argument("--overwrite", action="store_true", help="delete earlier results in --out first")
    _add_allow_code_change(power)
    power.add_argument("--no-plots", action="store_true", help="skip the figures")
    power.add_argument("--quiet", action="store_true", help="no progress bar")

    an = sub.add_parser(
        "analyze",
        help="analyze a dataset: r_s, every interval, tests, and coverage and power at its own design",
        description=(
            "Spearman's r_s of two columns of a CSV or Parquet file ('example': the packaged example, columns "
            "dose and level), its eight intervals and tests of rho_s = 0, and a design-matched simulation (the "
            "observed n and tie counts of x; y by rank mixing and from the observed values) giving each method's "
            "coverage, the power curve, the minimum detectable |rho_s| and a recommended interval. Writes "
            "report.md, analysis.json, Parquet tables and a figure under --out (default results/analyze/<file stem>)."
        ),
    )
    an.add_argument("data", help="CSV or Parquet file, or 'example'")
    an.add_argument("--x", help="column of x (the tied one, e.g. a dose); required unless DATA is 'example'")
    an.add_argument("--y", help="column of y; required unless DATA is 'example'")
    an.add_argument("--sep", default=",", help="field separator of a CSV file (default ','; e.g. ';' or '\\t')")
    an.add_argument("--out", help="results folder (default: results/analyze/<data file stem>)")
    an.add_argument("--wait-for-lock", type=_wait, default=0.0, metavar="SECONDS",
                    help="wait this long if another run holds --out (default 0: refuse, naming it)")  # fmt: skip
    an.add_argument("--confidence-level", type=_level, help="interval level (default: CONFIDENCE_LEVEL)")
    an.add_argument("--n-boot", type=_n_boot, default=10_000, help="resamples for the data's intervals (10000)")
    an.add_argument("--n-perm", type=_positive_int, default=100_000, help="permutations of the test (100000)")
    an.add_argument("--design-reps", type=_positive_int, default=1_500,
                    help="bootstrapped datasets per design scenario (1500)")  # fmt: skip
    an.add_argument("--design-boot", type=_n_boot, default=1_000, help="resamples in the design study (1000)")
    an.add_argument("--power-reps", type=_checked(int, lambda v: v >= 10, "an integer >= 10"), default=4_000,
                    help="datasets per power grid point (4000)")  # fmt: skip
    an.add_argument("--seed", type=_seed, help="default: SEED")
    an.add_argument("--criterion", choices=["stringent", "liberal"], default="stringent",
                    help="Bradley's (1978) criterion for the recommendation: coverage >= nominal - 0.1 alpha "
                    "(stringent, default) or - 0.5 alpha (liberal)")
    an.add_argument(
        "--statistic", type=_statistic_list, default=None,
        help="comma-separated statistics analyzed, the first the report's headline: spearman (default), kendall_b, "
        "pearson or package.module:function; each gets intervals, tests, coverage at the design and a "
        "recommendation (each adds to the design study's time). tau-b on the data is always reported",
    )  # fmt: skip
    an.add_argument("--no-plan", action="store_true",
                    help="skip the planning lines (the n a study like this one needs for the target power at the "
                    "observed correlation, and for --plan-width)")  # fmt: skip
    an.add_argument("--plan-width", type=float, default=0.3,
                    help="the mean interval width the planning line solves for (0.3)")
    an.add_argument("--design-max-reps", type=_positive_int, default=20_000,
                    help="the most bootstrapped datasets a growing design scenario gets (20000)")
    an.add_argument("--no-grow-design", action="store_true",
                    help="keep --design-reps as given instead of growing the design until every coverage MCSE is "
                    "at most half the criterion's tolerance")
    an.add_argument("--scale-above", type=_checked(int, lambda v: v == 0 or v >= 10, "0 or an integer >= 10"),
                    default=20_000, metavar="N",
                    help="above N complete pairs the Monte Carlo sizes shrink in proportion to n, to floors (1000 "
                    "resamples and permutations, a design of 20 x 100), stated in the report (default 20000; 0: "
                    "never, at a cost that grows like n times the sizes)")  # fmt: skip
    an.add_argument("--n-jobs", type=_n_jobs, help="worker processes, -1 = all cores (default: N_JOBS)")
    an.add_argument("--resume", action="store_true", help="reuse results in --out, compute only what is missing")
    an.add_argument("--overwrite", action="store_true", help="delete earlier results in --out first")
    _add_allow_code_change(an)
    an.add_argument("--no-plots", action="store_true", help="skip the figure")
    an.add_argument("--quiet", action="store_true", help="no progress bar")

    slo = sub.add_parser(
        "slo",
        help="is a percentile of the measurements under a target? (bootstrap interval)",
        description="Bootstrap interval of a percentile of the measurements (a one-column CSV or Parquet file) "
        "against a target; compliant when the interval's upper end is under the target.",
    )
    slo.add_argument("measurements", help="CSV (one column, optional header) or Parquet file")
    slo.add_argument("--target", type=_finite, required=True, help="the SLO threshold, in the measurements' unit")
    slo.add_argument("--percentile", type=_percent, default=95.0, help="percentile to check (95)")
    slo.add_argument("--confidence-level", type=_level, default=0.999, help="interval level (0.999)")
    slo.add_argument("--n-resamples", type=_positive_int, default=10_000, help="bootstrap resamples (10000)")
    slo.add_argument("--seed", type=_seed, default=42, help="seed (42)")
    slo.add_argument("--json", action="store_true", help="print the JSON report instead of the verdict")

    reg = sub.add_parser(
        "regression",
        help="has a benchmark changed between a baseline and a current sample?",
        description="Permutation test on the difference in means (with Cohen's d) and Mann-Whitney U with the "
        "Vargha-Delaney A effect size; verdict improvement / no change / degradation.",
    )
    reg.add_argument("baseline", help="CSV or Parquet file of baseline measurements")
    reg.add_argument("current", help="CSV or Parquet file of current measurements")
    reg.add_argument("--alpha", type=_level, default=0.05, help="test level (0.05)")
    reg.add_argument("--n-permutations", type=_positive_int, default=10_000, help="permutations (10000)")
    reg.add_argument("--higher-is-better", action="store_true", help="e.g. throughput (default: lower is better)")
    reg.add_argument("--seed", type=_seed, default=42, help="seed (42)")
    reg.add_argument("--json", action="store_true", help="print the JSON report instead of the verdict")

    ts = sub.add_parser(
        "toolkit-study",
        help="coverage and size of the measurement toolkit's intervals and tests (known truths)",
        description="Monte Carlo checks: p95 and mean bootstrap intervals for exponential data, the BCa lower "
        "bound for bounded scores, size and power of the permutation regression test.",
    )
    ts.add_argument("--n-reps", type=_positive_int, default=2000, help="replicates per check (2000)")
    ts.add_argument("--seed", type=_seed, help="default: SEED")
    ts.add_argument("--n-jobs", type=_n_jobs, help="worker processes, -1 = all cores (default: N_JOBS)")
    ts.add_argument("--out", default="results/toolkit", help="output folder (results/toolkit)")
    ts.add_argument("--quiet", action="store_true", help="no progress bar")

    rp = sub.add_parser(
        "replay",
        help="regenerate one bootstrapped dataset of a run and recompute its estimate and every interval",
        description="Regenerates dataset I of a scenario from its stream (bit for bit), writes it as CSV "
        "beside its intervals, and prints them: to inspect a failure or a surprising replicate.",
    )
    rp.add_argument("results", help="results folder of a coverage run")
    rp.add_argument("--scenario", required=True, help="the scenario's key (as in coverage.parquet)")
    rp.add_argument("--replicate", required=True, type=_seed,
                    help="the dataset's index among the scenario's bootstrapped datasets (0-based)")
    rp.add_argument("--statistic", help="one of the run's statistics (default: its first)")
    rp.add_argument("--study", help="the study file, when the run's provenance names none that loads")
    rp.add_argument("--out", help="folder for the CSV files (default RESULTS/replay)")

    for name, what in (("plot", "redraw the figures"), ("summary", "print the summary")):
        p = sub.add_parser(name, help=f"{what} of an existing results folder")
        p.add_argument("results", help="results folder (holding coverage.parquet)")
        if name == "plot":
            p.add_argument("--kind", choices=("standard", "panels", "nested-loop", "lolly", "zip"),
                           default="standard",
                           help="standard: the run's figures (nested_loop_coverage, nested_loop_mean_width, "
                           "endpoints); panels: coverage, endpoints and widths, one panel per case; "
                           "nested-loop: every "
                           "scenario on one axis in nested-loop order, the factors drawn below; lolly: one "
                           "scenario's methods with Monte Carlo intervals; zip: one scenario's every interval, "
                           "ranked, from replicates.parquet (run --replicates) (default standard)")
            p.add_argument("--measure", default="coverage",
                           help="the measure of a nested-loop or lolly plot: a column of coverage.parquet with its "
                           "MCSE beside it (coverage, bias, empirical_se, mean_width, ...; default coverage)")
            p.add_argument("--scenario", help="the scenario key of a lolly or zip plot (needed when there are "
                           "several)")
            p.add_argument("--statistic", help="the statistic of a zip plot (default: the scenario's first)")

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    terminated = []

    def on_sigterm(signum, frame):  # what SLURM, Kubernetes and `timeout` send: stop as on Ctrl-C
        terminated.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm) if _main_thread() else None
    config_env, skip_env = os.environ.get(CONFIG_ENV_VAR), os.environ.get(SKIP_RESOURCE_ENV)
    if args.skip_resource_check:
        os.environ[SKIP_RESOURCE_ENV] = "1"
    try:
        settings = _settings(args)
        # what the command's own layers read as settings is this command's: the same file, or none
        defaults = settings.source == Settings().source
        os.environ[CONFIG_ENV_VAR] = "off" if defaults else str(Path(settings.source).resolve())
        from simulation.cli import commands  # deferred: a command loads its layers when it runs, not for --help

        return getattr(commands, args.command.replace("-", "_"))(args, settings)
    except (CliError, ValueError, TypeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full, read-only or vanished disk: no traceback, and what to do
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: cannot write or read{where}: {exc.strerror or exc} (errno {exc.errno}); the blocks already "
              "written are intact: free space (or fix the folder's permissions, or choose another --out) and run "
              "again with --resume", file=sys.stderr)  # fmt: skip
        return 2
    except KeyboardInterrupt:
        _stop_workers()
        what = "terminated (SIGTERM)" if terminated else "interrupted"
        written = getattr(args, "tables_written", None)
        if written is not None:
            # the job's tables are complete: the stop cost only figures, so the job succeeded
            print(f"\n{what} after the tables were written: the tables and summary under {written[0]} are "
                  f"complete; to draw the figures, run {written[1]}", file=sys.stderr)  # fmt: skip
            return 0
        print(f"\n{what}: finished blocks are saved; run again with --resume to continue", file=sys.stderr)
        return 143 if terminated else 130
    finally:
        for name, value in ((CONFIG_ENV_VAR, config_env), (SKIP_RESOURCE_ENV, skip_env)):
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


#: The commands that read the settings (config.py); the others never execute it.
NEEDS_SETTINGS = frozenset({"run", "plan", "power", "analyze", "toolkit-study", "plot", "solve"})


def _settings(args: argparse.Namespace) -> Settings:
    """The command's settings: the config file for a command that needs settings (its path announced on
    the first line of the output, on standard error), else the packaged defaults."""
    if args.no_config and args.config:
        raise CliError("--config and --no-config exclude each other")
    if args.command not in NEEDS_SETTINGS or args.no_config:
        return Settings()
    settings = load_settings(args.config, announce=False)
    if settings.source != Settings().source:
        print(f"settings: {settings.source} (a Python file, executed; --no-config skips it)", file=sys.stderr)
    return settings


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _stop_workers() -> None:
    """End joblib's worker processes now (they would otherwise finish their blocks for nobody)."""
    try:
        # deferred: joblib loads only on the way out of an interrupted run
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True, kill_workers=True)
    except Exception:  # noqa: BLE001 - best effort on the way out
        pass
