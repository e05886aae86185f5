"""Subcommands of ``python -m simulation`` (``run``, ``plan``, ``power``, ``analyze``, ``plot``, ``summary``).

Each takes the parsed arguments and the settings, prints what a researcher
needs, and returns the exit status; input problems raise ``ValueError`` (the
CLI turns it into one message and exit status 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from simulation.core.settings import Settings
from simulation.infra import cache as user_cache
from simulation.infra import storage
from simulation.infra.storage import write_text
from simulation.models.generators import load_values
from simulation.models.scenarios import load_study, study_aims, study_statistics
from simulation.present.ademp import ademp_html
from simulation.present.figures import PANEL_FIGURES, plot_all, plot_lolly, plot_nested_loop, plot_power, plot_zip
from simulation.present.report import label_statistics, label_tests, markdown_table, method_overview, summary_markdown
from simulation.study.columns import TOOLKIT_STUDY, in_order
from simulation.study.plan import (  # noqa: F401 - PRECISION_TIERS, plain_reps: re-exported, their home was here
    PRECISION_TIERS,
    TIER_N_BOOT,
    Pilot,
    plain_reps,
    plan_tier,
    plan_tiers,
    run_pilot,
)
from simulation.study.replay import replay as replay_one
from simulation.study.runner import (
    COVERAGE_FILE,
    REPLICATES_FILE,
    REPORT_FILE,
    REPORT_HTML,
    TARGET_MARGIN,
    RunError,
    TargetNotMetWarning,
    default_cheap_ratio,
    read_provenance,
    run_all_ci_scenarios,
    shortfall_message,
    two_phase_allocation,  # noqa: F401 - re-exported: its home was this module
)


def _study_name(study: str) -> str:
    """A study's name for its default results folder: a built-in's name, or a file's stem (with or without a
    suffix, wherever the file is), so that the default output is always a folder inside ``results/``."""
    return _folder_name(Path(study).stem)


def _folder_name(name: str) -> str:
    """``name`` as one folder name: characters other than letters, digits, ``.``, ``_`` and ``-`` become
    ``_``, and ``.``/``..`` (or nothing) become ``study``."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return "study" if safe.strip(".") == "" else safe


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
    written = [out / COVERAGE_FILE, out / "summary.md", out / REPORT_FILE]
    if args.replicates:
        written.append(out / REPLICATES_FILE)
    figures = _timed(lambda: [] if args.no_plots else plot_all(result.coverage, out, n_jobs=opts["n_jobs"]))
    written.append(_write_report_html(out, result.provenance, figures[0]))
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
        reference_method=args.reference_method,
        statistics=args.statistic or study_statistics(name),
        out=out,
        aims=study_aims(args.study),
        resume=args.resume,
        overwrite=args.overwrite,
        allow_code_change=args.allow_code_change,
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
    if args.scenario is not None and args.kind not in ("lolly", "zip"):
        raise RunError(f"--scenario applies only to --kind lolly or zip, not {args.kind}")
    if args.statistic is not None and args.kind != "zip":
        raise RunError(f"--statistic applies only to --kind zip, not {args.kind}")
    if args.kind in ("standard", "panels", "zip") and args.measure != "coverage":
        raise RunError(f"--measure applies only to --kind nested-loop or lolly (the {args.kind} figures are fixed)")
    if args.kind == "zip":  # an unknown scenario or statistic: ValueError, nothing written
        path = Path(args.results) / REPLICATES_FILE
        if not path.is_file():
            raise RunError(f"`{args.results}` holds no {REPLICATES_FILE}: a zip plot draws every interval, which a run "
                           "keeps with --replicates (rerun with it, or with --resume --replicates)")  # fmt: skip
        for written in plot_zip(pq.read_table(path).to_pandas(), coverage, args.results, args.scenario, args.statistic):
            print(written)
        return 0
    if args.kind == "panels":
        for path in plot_all(coverage, args.results, PANEL_FIGURES, n_jobs=settings.N_JOBS):
            print(path)
        return 0
    if args.kind != "standard":  # an unknown measure or scenario: ValueError, nothing written
        draw = plot_nested_loop if args.kind == "nested-loop" else plot_lolly
        extra = {} if args.kind == "nested-loop" else {"scenario": args.scenario}
        for path in draw(coverage, args.results, args.measure, **extra):
            print(path)
        return 0
    figures = plot_all(coverage, args.results, n_jobs=settings.N_JOBS)
    for path in figures:
        print(path)
    provenance = read_provenance(Path(args.results) / COVERAGE_FILE)
    if "ademp" in provenance:
        print(_write_report_html(Path(args.results), provenance, figures))
    else:
        print(f"(no {REPORT_HTML}: this folder's tables were written before the ADEMP report existed; rerun the "
              "study to get one)", file=sys.stderr)  # fmt: skip
    return 0


def replay(args: argparse.Namespace, settings: Settings) -> int:
    """``replay``: one bootstrapped dataset of a run, regenerated, written as CSV with its intervals."""
    result = replay_one(args.results, args.scenario, args.replicate, statistic=args.statistic, study=args.study)
    out = Path(args.out) if args.out else Path(args.results) / "replay"
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{_folder_name(args.scenario)}_{result.statistic}_{args.replicate}"
    data, intervals = out / f"{stem}.csv", out / f"{stem}_intervals.csv"
    write_text(data, result.data.to_csv(index=False, float_format="%.17g"))
    write_text(intervals, result.intervals.to_csv(index=False, float_format="%.17g"))
    shown = result.intervals[["method", "rho_hat", "ci_lower", "ci_upper", "status"]]
    print(f"dataset {args.replicate} of {args.scenario} ({result.statistic}, n = {len(result.data)}):")
    print(shown.to_string(index=False))
    if result.error is not None:
        print(f"the statistic raised on this dataset: {result.error}")
    print(f"wrote:\n  {data}\n  {intervals}")
    return 0


def _write_report_html(out: Path, provenance: dict, figures: list[Path]) -> Path:
    """``report.html``: the ADEMP report with the run's figures (PNG) embedded."""
    pngs = {p.stem: p.read_bytes() for p in figures if p.suffix == ".png"}
    write_text(out / REPORT_HTML, ademp_html(provenance["ademp"], pngs))
    return out / REPORT_HTML


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
    """``plan``: datasets per target precision and the runtime, with and without control variates
    (:mod:`simulation.study.plan` computes; this prints)."""
    scenarios = load_study(args.study)
    statistics = args.statistic or study_statistics(_study_name(args.study))
    opts = _resolved(args, settings)
    n_boot = args.n_boot or (TIER_N_BOOT if not args.target else settings.N_BOOT)
    pilot = run_pilot(
        scenarios, statistics, n_reps=args.pilot_reps, n_boot=n_boot, confidence_level=opts["confidence_level"],
        seed=opts["seed"], n_jobs=opts["n_jobs"], batch_bootstrap=settings.BATCH_CI_BOOTSTRAP,
        chunk_bytes=settings.CHUNK_BYTES, backend=args.backend, scheduler=args.scheduler,
    )  # fmt: skip
    cores = os.cpu_count() or 1
    workers = sorted(set(args.workers or []))
    rows = []
    for tier in plan_tiers(args.target):
        p = plan_tier(pilot, tier, cores)
        row = {"target (MCSE)": p.name, "95% half-width": p.half_widths, "plain n_reps": p.plain_reps,
               "plain runtime": _duration(p.plain_seconds)}  # fmt: skip
        row |= {"CV n_reps": f"{min(p.reps)}-{max(p.reps)}",
                "CV n_reps_cheap": f"{min(p.reps_cheap)}-{max(p.reps_cheap)}",
                "CV runtime": _duration(p.cv_seconds), "speed-up": f"{p.plain_seconds / p.cv_seconds:.1f}x",
                "disk": f"{p.disk_bytes / 1e6:.0f} MB"}  # fmt: skip
        for w in workers:
            row[f"CV on {w} cores"] = _duration(p.cv_seconds * cores / w)
        rows.append(row)
    print(_plan_preamble(pilot, len(scenarios)))
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


def _plan_preamble(pilot: Pilot, n_scenarios: int) -> str:
    c_b, c_c = pilot.costs_per_dataset
    boot = pilot.coverage[pilot.coverage["method_kind"] == "bootstrap"]
    medians = boot.groupby(["statistic", "method"])[["residual_share_mean_ci_lower", "cheap_share_mean_ci_lower",
                                                      "residual_share_coverage", "cheap_share_coverage"]].median()
    n_boot = pilot.n_boot
    return (
        f"Pilot: {n_scenarios} scenarios x {pilot.n_reps} bootstrapped datasets x {n_boot} resamples (and the "
        f"default cheap phase), statistics {', '.join(pilot.costs)}; largest SD of an interval endpoint across "
        f"datasets: {pilot.sd_endpoint:.4f}.\n"
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
        design_max_reps=args.design_max_reps,
        statistics=args.statistic or ("spearman",),
        plan=not args.no_plan,
        plan_width=args.plan_width,
        scale_above=args.scale_above or None,
    )
    out = Path(args.out) if args.out else Path("results", "analyze", _folder_name(name))
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TargetNotMetWarning)
        result = analyze(
            frame[x_col].to_numpy(), frame[y_col].to_numpy(), settings=analysis_settings, out=out, name=name,
            columns=(x_col, y_col), n_jobs=args.n_jobs or settings.N_JOBS, resume=args.resume,
            overwrite=args.overwrite, progress=not args.quiet, plots=not args.no_plots,
            wait_for_lock=args.wait_for_lock, allow_code_change=args.allow_code_change,
        )  # fmt: skip
    for w in caught:  # said once, in words of this command
        if issubclass(w.category, TargetNotMetWarning):
            print(f"warning: the design study {str(w.message).split('; raise')[0]}; raise --design-max-reps "
                  f"({analysis_settings.design_max_reps}) to reach it", file=sys.stderr)  # fmt: skip
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    rec = result.recommendation
    iv = result.intervals.set_index("method")
    chosen = rec["method"] or rec["closest"]
    dropped = len(result.dropped_rows)
    first = result.results[0]
    print(f"{name}: n = {result.n_used} complete pairs ({dropped} dropped), {first.symbol} = {first.estimate:.4f}")
    if chosen is not None:
        print(f"{'recommended' if rec['method'] else 'closest (none qualifies)'}: {chosen} "
              f"({iv.loc[chosen, 'ci_lower']:.4f}, {iv.loc[chosen, 'ci_upper']:.4f})")  # fmt: skip
    if result.scaled_text:
        print(f"note: {result.scaled_text}")
    seconds = result.provenance.get("phase_seconds", {})
    print(f"report: {out / 'report.md'} ({time.perf_counter() - t0:.1f} s: "
          + ", ".join(f"{phase} {t:.1f}" for phase, t in seconds.items()) + ")")  # fmt: skip
    return 0


def solve(args: argparse.Namespace, settings: Settings) -> int:
    """``solve``: the smallest n that reaches a power, or an interval's width or honest coverage, under a
    design's ties."""
    from simulation.power.solve import (  # deferred: loads only for its command
        SOLVE_EVALUATIONS,
        solve_interval_n,
        solve_k,
        solve_n,
        solve_rho,
        write_solve,
    )

    scenarios = load_study(args.study)
    keys = [s.key for s in scenarios]
    if args.scenario is None and len(keys) > 1:
        raise RunError(f"the study holds {len(keys)} scenarios: name the design with --scenario (one of "
                       f"{', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''})")  # fmt: skip
    if args.scenario is not None and args.scenario not in keys:
        raise RunError(f"--scenario {args.scenario!r} is not in the study; its keys: {', '.join(keys[:5])}"
                       f"{', ...' if len(keys) > 5 else ''}")  # fmt: skip
    design = scenarios[0] if args.scenario is None else scenarios[keys.index(args.scenario)]
    try:
        n_range = tuple(int(v) for v in args.n_range.split(","))
    except ValueError:
        raise RunError(f"--n-range must be two integers lo,hi, got {args.n_range!r}") from None
    out = Path(args.out) if args.out else Path("results", _study_name(args.study), "solve")
    store = out / SOLVE_EVALUATIONS
    interval = args.width is not None or args.coverage
    if args.width is not None and args.coverage:
        raise RunError("give one target: --width or --coverage (or --power)")
    if interval and (args.power is not None or args.test is not None):
        raise RunError("--power and --test belong to a power target; --width and --coverage to an interval's")
    if interval and args.method is None:
        raise RunError("--width and --coverage need --method (the interval method to solve for)")
    if not interval and args.method is not None:
        raise RunError("--method applies only to --width or --coverage")
    seed = settings.SEED if args.seed is None else args.seed
    if args.unknown in ("rho", "k"):
        if interval:
            raise RunError(f"--unknown {args.unknown} solves a power target: --width and --coverage solve for n")
        if args.n_range != "20,400":
            raise RunError(f"--n-range applies to --unknown n ({args.unknown} is solved at the design's n)")
        if args.unknown == "k" and args.confirm_reps is not None:
            raise RunError("--confirm-reps does not apply to --unknown k (every k is evaluated, none confirmed)")
        solver = solve_rho if args.unknown == "rho" else solve_k
        confirm = {} if args.confirm_reps is None else {"confirm_reps": args.confirm_reps}
        found = solver(design, target_power=0.8 if args.power is None else args.power, statistic=args.statistic,
                       test=args.test or "permutation", alpha=args.alpha, alternative=args.alternative,
                       reps=args.reps or (1000 if args.unknown == "rho" else 2000), seed=seed, **confirm)  # fmt: skip
        print(f"design {design.key} (its {'k' if args.unknown == 'k' else 'n'} is replaced by the search; n = "
              f"{design.n})")  # fmt: skip
        print(found.summary())
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"solve_{args.unknown}.json"
        record = {k: v for k, v in dataclasses.asdict(found).items() if k not in ("design", "evaluations")}
        if args.unknown == "k":
            record["evaluations"] = found.evaluations.to_dict("records")
        write_text(path, json.dumps(record | {"design": design.key}, indent=2, default=str) + "\n")
        print(f"  {path}")
        return 0
    before = len(pq.read_table(store)) if store.is_file() else 0
    confirm = {} if args.confirm_reps is None else {"confirm_reps": args.confirm_reps}
    if interval:
        result = solve_interval_n(design, method=args.method, width=args.width, coverage=args.coverage,
                                  statistic=args.statistic, confidence_level=args.confidence_level, n_range=n_range,
                                  reps=args.reps or 200, n_boot=args.n_boot, seed=seed, store=store,
                                  n_jobs=settings.N_JOBS, **confirm)  # fmt: skip
    else:
        result = solve_n(design, target_power=0.8 if args.power is None else args.power, statistic=args.statistic,
                         test=args.test or "permutation", alpha=args.alpha, alternative=args.alternative,
                         n_range=n_range, reps=args.reps or 400, seed=seed, store=store, **confirm)  # fmt: skip
    print(f"design {design.key} (its n = {design.n} is replaced by the search)")
    if before:
        print(f"{min(before, len(result.evaluations))} evaluation(s) taken from {store}")
    print(result.summary())
    for path in write_solve(result, out):
        print(f"  {path}")
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
        allow_code_change=args.allow_code_change,
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
