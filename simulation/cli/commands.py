"""Subcommands of ``python -m simulation`` (``run``, ``plan``, ``power``, ``analyze``, ``plot``, ``summary``).

Each takes the parsed arguments and the settings, prints what a researcher
needs, and returns the exit status; input problems raise ``ValueError`` (the
CLI turns it into one message and exit status 2).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from simulation.core.settings import Settings
from simulation.infra import cache as user_cache
from simulation.infra import storage
from simulation.models.generators import Truth, load_values
from simulation.models.scenarios import load_study, study_statistics
from simulation.present.figures import plot_all, plot_power
from simulation.present.report import label_statistics, label_tests, markdown_table, method_overview, summary_markdown
from simulation.statistics.registry import portable
from simulation.study.blocks import BLOCK_REPS, CHEAP_UNIT_BLOCKS, UnitContext, phase_costs
from simulation.study.columns import TOOLKIT_STUDY, in_order
from simulation.study.runner import (
    COVERAGE_FILE,
    TARGET_MARGIN,
    RunError,
    TargetNotMetWarning,
    check_targets,
    default_cheap_ratio,
    read_provenance,
    run_all_ci_scenarios,
    shortfall_message,
    target_allocation,
    two_phase_allocation,  # noqa: F401 - re-exported: its home was this module
)

#: The original study's precision tiers: (half-width of the 95% Monte Carlo interval of a mean
#: interval endpoint, n_reps it specifies), all at TIER_N_BOOT resamples.
PRECISION_TIERS = ((0.01, 1_300), (0.002, 32_500), (0.001, 129_700))
TIER_N_BOOT = 500
Z95 = 1.959963984540054


def _study_name(study: str) -> str:
    return Path(study).stem if Path(study).suffix else study


def _resolved(args: argparse.Namespace, settings: Settings) -> dict:
    return {
        "n_reps": args.n_reps or settings.N_REPS,
        "n_boot": args.n_boot or settings.N_BOOT,
        "confidence_level": args.confidence_level or settings.CONFIDENCE_LEVEL,
        "seed": settings.SEED if args.seed is None else args.seed,
        "n_jobs": args.n_jobs or settings.N_JOBS,
    }


def _study_and_out(args: argparse.Namespace, *subfolder: str) -> tuple[list, str, Path]:
    """The study's scenarios, its name, and the output folder (``--out`` or ``results/<name>/...``)."""
    scenarios = load_study(args.study)
    if args.resume and args.overwrite:
        raise RunError("--resume and --overwrite exclude each other")
    name = _study_name(args.study)
    return scenarios, name, Path(args.out) if args.out else Path("results", name, *subfolder)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``run``: the whole study, tables, summary and figures."""
    scenarios, name, out = _study_and_out(args)
    opts = _resolved(args, settings)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # said once, below the table, in words of the command line
        warnings.simplefilter("ignore", TargetNotMetWarning)
        result = _run_study(args, settings, scenarios, name, out, opts)
    args.tables_written = (out, f"python -m simulation plot {out}")  # from here a stop loses only figures
    elapsed = time.perf_counter() - t0
    written = [out / COVERAGE_FILE, out / "summary.md"]
    if args.replicates:
        written.append(out / "replicates.parquet")
    figures = _timed(lambda: [] if args.no_plots else plot_all(result.coverage, out, n_jobs=opts["n_jobs"]))
    print(method_overview(label_statistics(result.coverage)).to_string(index=False))
    allocation = result.provenance["settings"].get("allocation") or {}
    if allocation:
        ms, ns = [v[0] for v in allocation.values()], [v[1] for v in allocation.values()]
        sizes = (f"{min(ms)}-{max(ms)} bootstrapped datasets x {opts['n_boot']} resamples + {min(ns)}-{max(ns)} "
                 "cheap-phase datasets per scenario (each its own allocation for the targets)")  # fmt: skip
    else:
        sizes = (f"{opts['n_reps']} bootstrapped datasets x {opts['n_boot']} resamples + "
                 f"{result.provenance['settings']['n_reps_cheap']} cheap-phase datasets")  # fmt: skip
    print(
        f"\n{len(scenarios)} scenarios x {sizes} ({result.provenance['blocks_computed']} blocks computed) in "
        f"{elapsed:.1f} s{figures[1]}; wrote:"
    )
    written += figures[0]
    for path in written:
        print(f"  {path}")
    flagged = result.coverage[result.coverage["status"] != "ok"]
    if len(flagged):
        counts = flagged["status"].str.split("+").explode().value_counts()
        print(f"\n{len(flagged)} row(s) flagged in `status`: "
              + ", ".join(f"{flag} {n}" for flag, n in counts.items()) + " (see summary.md)")  # fmt: skip
    short = shortfall_message(result.provenance["settings"].get("targets_not_met") or {})
    if short:
        print(f"\nwarning: {short}", file=sys.stderr)
    return 0


def _run_study(args: argparse.Namespace, settings: Settings, scenarios, name: str, out: Path, opts: dict):
    return run_all_ci_scenarios(
        scenarios,
        **opts,
        methods=args.methods,
        statistics=args.statistic or study_statistics(name),
        out=out,
        resume=args.resume,
        overwrite=args.overwrite,
        keep_replicates=args.replicates,
        target_mcse=args.target_mcse,
        targets=args.target,
        wait_for_lock=args.wait_for_lock,
        max_reps=args.max_reps,
        n_reps_cheap=args.n_reps_cheap,
        control_variates=not args.no_control_variates,
        truth_mcse=args.truth_mcse,
        batch_bootstrap=settings.BATCH_CI_BOOTSTRAP,
        chunk_bytes=settings.CHUNK_BYTES,
        progress=not args.quiet,
        study=name,
        settings_extra={"settings_source": settings.source},
        backend=args.backend,
        scheduler=args.scheduler,
    )


def _timed(draw) -> tuple[list[Path], str]:
    """Run ``draw()`` (which returns the figures written) and say how long it took, for the summary line."""
    t0 = time.perf_counter()
    written = draw()
    return written, (f", figures in {time.perf_counter() - t0:.1f} s" if written else "")


def _coverage_of(folder: str) -> tuple[pd.DataFrame, dict]:
    path = Path(folder) / COVERAGE_FILE
    if not path.is_file():
        raise RunError(f"`{folder}` holds no {COVERAGE_FILE} (run `python -m simulation run` first)")
    try:
        table = pq.read_table(path).to_pandas()
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise RunError(f"cannot read `{path}`: {exc}") from None
    return table, read_provenance(path)


def plot(args: argparse.Namespace, settings: Settings) -> int:
    """``plot``: redraw the figures of a results folder."""
    coverage, _ = _coverage_of(args.results)
    for path in plot_all(coverage, args.results, n_jobs=settings.N_JOBS):
        print(path)
    return 0


def summary(args: argparse.Namespace, settings: Settings) -> int:
    """``summary``: print the Markdown summary of a results folder."""
    coverage, provenance = _coverage_of(args.results)
    print(summary_markdown(coverage, provenance))
    return 0


def cache(args: argparse.Namespace, settings: Settings) -> int:
    """``cache``: where the calibration cache is and how much it holds; ``--clear`` empties it."""

    if args.clear:
        print(f"deleted {user_cache.clear()} entries from {user_cache.cache_dir()}")
        return 0
    folder, entries, size = user_cache.info()
    if folder is None:
        print(f"the cache is off ({user_cache.ENV}=off)")
    else:
        print(f"{folder}: {entries} entries, {size / 1e3:.1f} kB")
    return 0


def plan(args: argparse.Namespace, settings: Settings) -> int:
    """``plan``: datasets per target precision and the runtime, with and without control variates.

    Without ``--target`` it plans the original study's precision tiers
    (:data:`PRECISION_TIERS`).  A pilot run (``--pilot-reps`` bootstrapped
    datasets per scenario, its default cheap phase) gives each scenario's
    endpoint SDs and variance shares; timing one bootstrap block and one cheap
    unit per scenario (first four scenarios, one thread, compilation
    excluded) gives the cost per dataset of each phase.  Each scenario's
    allocation for a tier is the one ``run --target endpoints=MCSE`` gives it
    after the same first round (:func:`simulation.study.runner.target_allocation`,
    the same code, with the measured cost ratio), summed over the study.
    """

    scenarios = load_study(args.study)
    statistics = args.statistic or study_statistics(_study_name(args.study))
    opts = _resolved(args, settings)
    n_boot = args.n_boot or (TIER_N_BOOT if not args.target else settings.N_BOOT)
    level = opts["confidence_level"]
    with tempfile.TemporaryDirectory() as tmp:
        pilot_result = run_all_ci_scenarios(
            scenarios, n_reps=args.pilot_reps, n_boot=n_boot, confidence_level=level, seed=opts["seed"],
            n_jobs=opts["n_jobs"], batch_bootstrap=settings.BATCH_CI_BOOTSTRAP, chunk_bytes=settings.CHUNK_BYTES,
            backend=args.backend, scheduler=args.scheduler, statistics=statistics, out=Path(tmp) / "pilot",
        )  # fmt: skip
        files = list((Path(tmp) / "pilot" / "blocks").rglob("*.parquet"))
        boot_files = [f for f in files if f.name.startswith("b")]
        cheap_files = [f for f in files if f.name.startswith("c")]
        per_boot_block = max((f.stat().st_size for f in boot_files), default=0)
        per_cheap_unit = max((f.stat().st_size for f in cheap_files), default=0)
    pilot = pilot_result.coverage
    names = list(dict.fromkeys(pilot["statistic"]))
    timed = scenarios[:4]
    costs = {}
    for statistic in names:
        contexts = []
        for s in timed:
            truth = pilot.loc[(pilot["scenario"] == s.key) & (pilot["statistic"] == statistic), "rho_true"].iloc[0]
            contexts.append(UnitContext(n_boot, level, opts["seed"], s.calibration(), Truth(float(truth), 0.0, 0),
                                        statistic=portable(statistic)))  # fmt: skip
        costs[statistic] = phase_costs(timed, contexts)
    c_b = sum(c[0] for c in costs.values())  # a dataset of the run computes every statistic
    c_c = sum(c[1] for c in costs.values())
    boot = pilot[pilot["method_kind"] == "bootstrap"]
    sd_endpoint = float(max(pilot["sd_ci_lower"].max(), pilot["sd_ci_upper"].max()))
    cheap_first = int(pilot.loc[pilot["method_kind"] == "bootstrap", "n_reps_cheap"].max())
    cores = os.cpu_count() or 1
    workers = sorted(set(args.workers or []))
    tiers = plan_tiers(args.target)
    groups = list(pilot.groupby(["scenario", "statistic"], sort=False))
    rows = []
    for name, targets, tier_reps in tiers:
        plain_s = cv_s = 0.0
        ms, ns, n_plains, disk = [], [], [], 0
        for (_, statistic), g in groups:
            cb, cc = costs[statistic]
            first = (args.pilot_reps, cheap_first)
            m, big_n = target_allocation(g, *first, targets, cb / cc) or first
            n_plain = tier_reps or plain_reps(g, targets)
            ms.append(m)
            ns.append(big_n)
            n_plains.append(n_plain)
            plain_s += n_plain * cb / cores
            cv_s += (m * cb + big_n * cc) / cores
            disk += -(-m // BLOCK_REPS) * per_boot_block
            disk += -(-big_n // (BLOCK_REPS * CHEAP_UNIT_BLOCKS)) * per_cheap_unit
        half = ", ".join(f"±{Z95 * v:.3g}" for v in dict.fromkeys(targets.values()))
        row = {"target (MCSE)": name, "95% half-width": half, "plain n_reps": max(n_plains),
               "plain runtime": _duration(plain_s)}  # fmt: skip
        row |= {"CV n_reps": f"{min(ms)}-{max(ms)}", "CV n_reps_cheap": f"{min(ns)}-{max(ns)}",
                "CV runtime": _duration(cv_s), "speed-up": f"{plain_s / cv_s:.1f}x", "disk": f"{disk / 1e6:.0f} MB"}
        for w in workers:
            row[f"CV on {w} cores"] = _duration(cv_s * cores / w)
        rows.append(row)
    medians = boot.groupby(["statistic", "method"])[["residual_share_mean_ci_lower", "cheap_share_mean_ci_lower",
                                                      "residual_share_coverage", "cheap_share_coverage"]].median()
    print(
        f"Pilot: {len(scenarios)} scenarios x {args.pilot_reps} bootstrapped datasets x {n_boot} resamples (and the "
        f"default cheap phase), statistics {', '.join(names)}; largest SD of an interval endpoint across "
        f"datasets: {sd_endpoint:.4f}.\n"
        f"Cost per dataset and core: bootstrap {c_b * 1e6:.0f} us, cheap phase {c_c * 1e6:.1f} us "
        f"(ratio {c_b / c_c:.0f}). Variance of the control-variate estimators as shares of the plain one "
        f"(a: the bootstrapped datasets' residual, b: the cheap phase's; medians over methods and scenarios): "
        f"mean endpoints a = {medians['residual_share_mean_ci_lower'].median():.4f}, "
        f"b = {medians['cheap_share_mean_ci_lower'].median():.4f}; coverage a = "
        f"{medians['residual_share_coverage'].median():.3f}, b = {medians['cheap_share_coverage'].median():.3f}.\n"
        f"Allocation: each scenario's own (Cochran 1977, §12.6), as `run --target endpoints=MCSE` makes it after a "
        f"first round like this pilot, with {f'a {TARGET_MARGIN:g}' if TARGET_MARGIN != 1 else 'no'} margin on the "
        "variance (ranges over scenarios; a scenario that falls short grows again in a short round); "
        f"the runner's default cheap ratio for coverage at {n_boot} resamples is {default_cheap_ratio(n_boot):.0f}.\n"
        "Targets are MCSEs, as for `run --target` (the 95% half-width, 1.96 MCSE, beside them). Plain: n_reps = "
        "(plain MCSE x sqrt(pilot n_reps) / target)^2 datasets for the worst method and measure (Morris et al. "
        "2019); the study tiers keep their published n_reps. CV: the two-phase datasets with that MCSE for every "
        "method, allocated as `run --target` allocates them. Runtimes scale the measured costs linearly "
        "over this machine's cores; 'on N cores' assumes N cores as fast as these (e.g. a Dask cluster). Disk: the "
        "blocks of a results folder, from the pilot's block sizes.\n"
    )
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


def plan_tiers(given: list[str] | None) -> list[tuple[str, dict[str, float], int | None]]:
    """``(label, {measure: MCSE}, published n_reps or None)`` per row of ``plan``: the study's tiers (95%
    half-widths of the mean endpoints) by default; ``MEASURE=MCSE`` targets as ``run --target`` reads them;
    a bare number, deprecated, as a 95% half-width of the mean endpoints (its MCSE is half-width / 1.96)."""

    if not given:
        return [(f"endpoints={h / Z95:.3g}", {"mean_ci_lower": h / Z95, "mean_ci_upper": h / Z95}, reps)
                for h, reps in PRECISION_TIERS]  # fmt: skip
    tiers = []
    for text in given:
        if "=" in text:
            targets = check_targets([text])
            tiers.append((text.strip(), targets, None))
            continue
        half = float(text)
        mcse = half / Z95
        warnings.warn(
            f"`plan --target {text}` reads {text} as a 95% half-width of the mean endpoints (MCSE {mcse:.4g}); "
            f"this form is deprecated: write `--target endpoints={mcse:.4g}`, an MCSE as `run --target` takes it",
            FutureWarning, stacklevel=2,
        )  # fmt: skip
        tiers.append((f"endpoints={mcse:.4g}", {"mean_ci_lower": mcse, "mean_ci_upper": mcse}, None))
    return tiers


def plain_reps(rows: pd.DataFrame, targets: dict[str, float]) -> int:
    """Plain datasets for every targeted measure of every row to reach its MCSE: ``sigma^2 / target^2`` with
    ``sigma^2 = plain_mcse^2 n_reps`` measured in the pilot (Morris et al. 2019, Table 6)."""
    need = 1
    for measure, target in targets.items():
        sigma2 = rows[f"{measure}_plain_mcse"] ** 2 * rows["n_reps"]
        need = max(need, math.ceil(TARGET_MARGIN * float(sigma2.max()) / target**2))
    return need


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s" if seconds >= 0.1 else "< 0.1 s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if math.isfinite(seconds) else "n/a"


def analyze(args: argparse.Namespace, settings: Settings) -> int:
    """``analyze``: one dataset's intervals and tests, and coverage and power at its design."""
    # deferred: `analyze` loads only for its command
    from simulation.analyze.analysis import EXAMPLE, EXAMPLE_COLUMNS, AnalysisSettings, analyze, read_pairs

    x_col, y_col = args.x, args.y
    if args.data == EXAMPLE:
        x_col, y_col = x_col or EXAMPLE_COLUMNS[0], y_col or EXAMPLE_COLUMNS[1]
    if not x_col or not y_col:
        raise RunError("--x and --y (the two columns to correlate) are required")
    if args.resume and args.overwrite:
        raise RunError("--resume and --overwrite exclude each other")
    frame, name = read_pairs(args.data, x_col, y_col, sep=args.sep)
    analysis_settings = AnalysisSettings(
        confidence_level=args.confidence_level or settings.CONFIDENCE_LEVEL,
        n_boot=args.n_boot,
        n_perm=args.n_perm,
        design_n_reps=args.design_reps,
        design_n_boot=args.design_boot,
        power_n_reps=args.power_reps,
        seed=settings.SEED if args.seed is None else args.seed,
        criterion=args.criterion,
        grow_design=not args.no_grow_design,
        statistics=args.statistic or ("spearman",),
    )
    out = Path(args.out) if args.out else Path("results", "analyze", name)
    t0 = time.perf_counter()
    result = analyze(
        frame[x_col].to_numpy(), frame[y_col].to_numpy(), settings=analysis_settings, out=out, name=name,
        columns=(x_col, y_col), n_jobs=args.n_jobs or settings.N_JOBS, resume=args.resume,
        overwrite=args.overwrite, progress=not args.quiet, plots=not args.no_plots, wait_for_lock=args.wait_for_lock,
    )  # fmt: skip
    rec = result.recommendation
    iv = result.intervals.set_index("method")
    chosen = rec["method"] or rec["closest"]
    dropped = len(result.dropped_rows)
    first = result.results[0]
    print(f"{name}: n = {result.n_used} complete pairs ({dropped} dropped), {first.symbol} = {first.estimate:.4f}")
    if chosen is not None:
        print(f"{'recommended' if rec['method'] else 'closest (none qualifies)'}: {chosen} "
              f"({iv.loc[chosen, 'ci_lower']:.4f}, {iv.loc[chosen, 'ci_upper']:.4f})")  # fmt: skip
    print(f"report: {out / 'report.md'} ({time.perf_counter() - t0:.1f} s)")
    return 0


def power(args: argparse.Namespace, settings: Settings) -> int:
    """``power``: power curves and minimum detectable correlations."""
    from simulation.power.curves import PowerSettings, run_power_study  # deferred: power loads only for its command

    scenarios, name, out = _study_and_out(args, "power")
    steps = int(math.floor(args.grid_max / args.grid_step + 1e-9))
    if steps < 1:
        raise RunError(f"--grid-step {args.grid_step} must not exceed --grid-max {args.grid_max}")
    grid = tuple(round(i * args.grid_step, 10) for i in range(steps + 1))
    power_settings = PowerSettings(
        n_reps=args.n_reps,
        grid=grid,
        alpha=args.alpha,
        alternative=args.alternative,
        direction=args.direction,
        target_power=args.target_power,
        n_perm=args.n_perm,
        seed=settings.SEED if args.seed is None else args.seed,
    )
    t0 = time.perf_counter()
    result = run_power_study(
        scenarios,
        power_settings,
        n_jobs=args.n_jobs or settings.N_JOBS,
        out=out,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.quiet,
        study=name,
        backend=args.backend,
        scheduler=args.scheduler,
        statistics=args.statistic or study_statistics(name),
        wait_for_lock=args.wait_for_lock,
    )
    elapsed = time.perf_counter() - t0
    written = [out / "power.parquet", out / "min_detectable.parquet", out / "power_summary.md"]
    n_jobs = args.n_jobs or settings.N_JOBS
    mdc = result.min_detectable
    args.tables_written = (out, "the same `power` command with --resume (it computes nothing again)")
    figures = _timed(lambda: [] if args.no_plots else plot_power(result.power, mdc, out, n_jobs=n_jobs))
    written += figures[0]
    brief = label_tests(mdc).pivot_table(index="case", columns="test", values="rho_star", aggfunc=["min", "max"])
    print("minimum detectable |rho| across scenarios (min, max):")
    print(brief.round(3).to_string())
    print(
        f"\n{len(scenarios)} scenarios x {len(grid)} grid points x {args.n_reps} datasets in {elapsed:.1f} s"
        f"{figures[1]}; wrote:"
    )
    for path in written:
        print(f"  {path}")
    return 0


def slo(args: argparse.Namespace, settings: Settings) -> int:
    """``slo``: percentile SLO verdict for a measurements file (exit 0 either way; 2 on bad input)."""

    from simulation.toolkit.slo import slo_compliance  # deferred: the toolkit loads only for its commands

    result = slo_compliance(
        load_values(args.measurements, "measurements"),
        args.target,
        percentile=args.percentile,
        confidence_level=args.confidence_level,
        n_resamples=args.n_resamples,
        seed=args.seed,
    )
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.verdict())
    return 0


def regression(args: argparse.Namespace, settings: Settings) -> int:
    """``regression``: baseline vs current verdict."""

    from simulation.toolkit.slo import regression_check  # deferred: the toolkit loads only for its commands

    result = regression_check(
        load_values(args.baseline, "baseline"),
        load_values(args.current, "current"),
        n_permutations=args.n_permutations,
        alpha=args.alpha,
        lower_is_better=not args.higher_is_better,
        seed=args.seed,
    )
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.summary())
    return 0


def toolkit_study(args: argparse.Namespace, settings: Settings) -> int:
    """``toolkit-study``: Monte Carlo checks of the measurement toolkit."""
    from simulation.toolkit.study import run_toolkit_study  # deferred: the toolkit loads only for its commands

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create output folder `{out}`: {exc.strerror}") from None
    seed = settings.SEED if args.seed is None else args.seed
    started = storage.now()
    table = run_toolkit_study(args.n_reps, seed=seed, n_jobs=args.n_jobs or settings.N_JOBS, progress=not args.quiet)
    provenance = storage.provenance_record("toolkit", {"n_reps": args.n_reps, "seed": seed}, started)
    table = in_order(table, TOOLKIT_STUDY, "toolkit_study.parquet")
    storage.write_parquet(out / "toolkit_study.parquet", table, provenance)
    shown = table.assign(
        estimate=[f"{e:.3f} ± {m:.3f}" for e, m in zip(table["estimate"], table["mcse"], strict=True)]
    )[["check", "n", "parameter", "nominal", "estimate", "wilson_lower", "wilson_upper"]].round(3)
    text = f"# Toolkit checks ({args.n_reps} replicates each, seed {seed})\n\n" + markdown_table(shown) + "\n"
    storage.write_text(out / "toolkit_study.md", text)
    print(text)
    print(f"wrote {out / 'toolkit_study.parquet'} and {out / 'toolkit_study.md'}")
    return 0
