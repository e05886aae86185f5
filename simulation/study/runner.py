"""Study runner: what an interval-coverage study computes, in two phases, and how its tables are assembled.

Two phases per scenario
-----------------------
* **Bootstrap phase**: ``n_reps`` datasets, every interval computed, cut into
  blocks of :data:`~simulation.study.blocks.BLOCK_REPS` (see :mod:`simulation.study.blocks`
  for the streams).
* **Cheap phase**: ``n_reps_cheap`` datasets of the same process on their own
  streams, with only Spearman's rho and its jackknife SE (a few
  microseconds each): the asymptotic intervals, the estimate's bias and SE,
  and the controls' means for the control-variate estimators of the
  bootstrap methods (:mod:`simulation.study.estimators`).

Blocks store mergeable moments, not replicates (unless asked), and merge in
block order, so tables are bit-identical for any ``n_jobs``, order, backend
and after a resume; raising ``n_reps`` or ``n_reps_cheap`` (or
``--target-mcse``) only adds datasets.  The truth of an ``expected_sample``
scenario is measured first, to a quarter of the run's target precision
(:func:`simulation.statistics.spearman.truth`).

Three concerns, three homes: this module decides *what* to compute and
assembles the tables; :mod:`simulation.infra.parallel` decides *where* it runs;
:mod:`simulation.infra.storage` keeps *what exists* (block files written
atomically by the parent, the manifest, Parquet with provenance).  A run
killed at any moment leaves only whole block files, so a rerun with
``resume=True`` computes only what is missing and ends with the same tables
as an uninterrupted run.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulation.core.settings import load_settings, resolve_seed
from simulation.core.validation import (
    RunError,
    check_bool,
    check_confidence_level,
    check_n_jobs,
    check_positive_int,
    check_seed,
)
from simulation.core.version import __version__
from simulation.engine._kernels import N_RESAMPLE_CONTROLS
from simulation.engine.intervals import BOOTSTRAP_METHODS, MIN_N_BOOT
from simulation.engine.seeding import child_seed
from simulation.infra import cache
from simulation.infra.parallel import check_backend, parallel_map
from simulation.infra.resources import check_resources
from simulation.infra.storage import (
    BlockStore,
    CorruptBlock,
    hold_folder,
    now,
    prepare_output,
    provenance_record,
    read_json,
    read_provenance,
    settings_seal,
    source_digest,
    write_json,
    write_parquet,
    write_text,
)
from simulation.models.generators import (
    CALIBRATION_VERSION,
    DEFAULT_N_CAL,
    TRUTH_MAX_REPS,
    Calibration,
    Truth,
    draws_at,
)
from simulation.models.scenarios import DEFAULT_TRUTH_MCSE, Scenario, check_scenarios
from simulation.present.ademp import ademp, ademp_markdown
from simulation.present.report import summary_markdown
from simulation.statistics.custom import TRUTH_BATCH, measured_truth
from simulation.statistics.registry import (
    check_statistics,
    identity_statistics,
    portable,
    statistic_digests,
    unit_key,
    validate_statistics,
)
from simulation.statistics.statistic import Statistic, get_statistic
from simulation.study.blocks import (
    ALL_METHODS,
    ASYMPTOTIC_METHODS,
    BLOCK_REPS,
    BOOT_DIM,
    BOOT_FLAG_CENTRE,
    BOOT_FLAG_REPS_DROPPED,
    BOOT_FLAG_RESAMPLES_DROPPED,
    BOOT_FLAGS,
    BOOT_VARIANCE,
    CHEAP_BYTES_PER_OBSERVATION,
    CHEAP_GROUP_BYTES,
    CHEAP_UNIT_BLOCKS,
    LEDGER_REASONS,
    SLICE_REPS,
    Record,
    UnitContext,
    boot_name,
    boot_units,
    cheap_dim,
    cheap_flags,
    cheap_name,
    cheap_units,
    empty_record,
    replicates_name,
    run_boot_block,
    run_cheap_unit,
)
from simulation.study.columns import COVERAGE, FAILURES, in_order
from simulation.study.columns import names as column_names
from simulation.study.estimators import (
    BOOT_CONTROLS,
    CHEAP_CONTROLS,
    CROSSFIT_FOLDS,
    method_performance,
)
from simulation.study.metrics import (
    ROW_ALL_FAILED,
    ROW_OUT_OF_RANGE,
    ROW_RESAMPLES_DROPPED,
    ROW_SOME_FAILED,
    ROW_TARGET_NOT_MET,
    add_flag,
    model_se_measures,
    mse_measures,
    relative_width,
    row_status,
    wilson_interval,
)

__all__ = [
    "ALL_METHODS",
    "ASYMPTOTIC_METHODS",
    "BLOCK_REPS",
    "Execution",
    "RunError",
    "RunIdentity",
    "StudyResult",
    "TargetNotMetWarning",
    "check_methods",
    "default_cheap_ratio",
    "read_provenance",
    "run_all_ci_scenarios",
]

#: Version of the on-disk layout (manifest, blocks): 2 = compact blocks and a cheap phase; 3 = exact
#: controls in both (resample controls in bootstrap blocks, the mixing control in cheap units); 4 = four
#: cross-fitting folds per bootstrap block (was two halves), twelve indicator controls and eight resample
#: controls (was four); 5 = flag counts in bootstrap blocks (intervals out of range, dropped resamples); 6 = the
#: model SEs' squares (a bootstrap block's bootstrap variance; a cheap unit's per asymptotic method, and
#: ``atanh`` of the estimate) after the measures, and a cheap unit's counts of them.
FORMAT_VERSION = 7
#: Version of the control set (:mod:`simulation.study.estimators`): part of a run's identity.
CONTROLS_VERSION = "jackknife-se+indicators12-ridge+resample-hermite-trig+mixing-u+4-folds-v4"
#: The method each row's ``relative_width`` and ``relative_precision`` compare with, unless the run names one.
DEFAULT_REFERENCE_METHOD = "percentile"
#: Default cap on bootstrapped datasets per scenario for ``target_mcse``.
DEFAULT_MAX_REPS = 20_000
#: Rounds of ``target_mcse`` growth at most, and the largest growth of one round.
MAX_ROUNDS = 10
MAX_GROWTH = 4.0
#: Rounding of the bootstrap phase's size in an uncapped ``target_mcse`` round.
FINAL_GROWTH_STEP = SLICE_REPS
#: Median shares of the coverage estimators' variance over the default study (the residual's and the
#: cheap phase's, ``residual_share_coverage`` and ``cheap_share_coverage``; measured, see
#: :mod:`simulation.study.estimators`), and the cost of bootstrapping a dataset relative to its cheap
#: phase, per resample (measured with ``benchmarks/bench_tier.py``): they set the default
#: cheap-phase size.
COVERAGE_RESIDUAL_SHARE = 0.16
COVERAGE_CHEAP_SHARE = 0.79
COST_RATIO_PER_RESAMPLE = 0.15
#: Status of an asymptotic interval whose estimate is NaN (constant x or y).

COVERAGE_FILE = "coverage.parquet"
REPLICATES_FILE = "replicates.parquet"
SUMMARY_FILE = "summary.md"
#: The ADEMP report (:mod:`simulation.present.ademp`); ``report.html`` beside it once figures are drawn.
REPORT_FILE, REPORT_HTML = "report.md", "report.html"
#: The failure ledger (:data:`simulation.study.columns.FAILURES`).
FAILURES_FILE = "failures.parquet"
CALIBRATIONS_FILE = "calibrations.json"
OWNED_FILES = (COVERAGE_FILE, REPLICATES_FILE, SUMMARY_FILE, CALIBRATIONS_FILE, REPORT_FILE, REPORT_HTML,
               FAILURES_FILE)
Z95 = 1.959963984540054


def default_cheap_ratio(
    n_boot: int, residual: float = COVERAGE_RESIDUAL_SHARE, cheap: float = COVERAGE_CHEAP_SHARE
) -> float:
    """Cheap-phase datasets per bootstrapped dataset: Cochran's optimal allocation for double sampling.

    For an estimator with variance ``sigma^2 (a / m + b / N)`` (``a`` the
    residual share, ``b`` the cheap phase's share, :mod:`simulation.study.estimators`)
    and costs ``c_boot``, ``c_cheap`` per dataset, the cheapest split has
    ``N / m = sqrt(b c_boot / (a c_cheap))`` (Cochran 1977, *Sampling
    Techniques*, §12.6, eq. 12.54, where ``a = 1 - rho^2`` and ``b = rho^2``),
    with ``c_boot / c_cheap = COST_RATIO_PER_RESAMPLE * n_boot``.  At least 1.
    """
    return max(1.0, math.sqrt(cheap / residual * COST_RATIO_PER_RESAMPLE * n_boot))


@dataclasses.dataclass(frozen=True)
class RunIdentity:
    """The settings that define a run's numbers: results with different identities never mix."""

    n_boot: int
    confidence_level: float
    seed: int
    control_variates: bool = True
    truth_mcse: float = DEFAULT_TRUTH_MCSE
    block_reps: int = BLOCK_REPS
    slice_reps: int = SLICE_REPS
    cheap_unit_blocks: int = CHEAP_UNIT_BLOCKS
    controls: str = CONTROLS_VERSION
    calibration: str = CALIBRATION_VERSION
    format_version: int = FORMAT_VERSION
    package_version: str = __version__
    #: The statistics computed (Spearman's alone unless asked; a folder without the entry means that).
    statistics: tuple[str, ...] = ("spearman",)
    #: ``(name, digest)`` of each statistic built through :mod:`simulation.statistics.custom` (Pearson's and a
    #: user's): a changed statistic under the same name is a different run.
    statistic_digests: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        check_positive_int(self.n_boot, "n_boot")
        check_confidence_level(self.confidence_level)
        check_seed(self.seed)
        check_bool(self.control_variates, "control_variates")

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        del out["statistics"]
        out |= identity_statistics(self.statistics)
        if self.statistic_digests:
            out["statistic_digests"] = dict(self.statistic_digests)
        else:
            del out["statistic_digests"]
        return out


@dataclasses.dataclass(frozen=True)
class Job:
    """One scenario under one statistic: its own blocks (under :attr:`key`), truth and rows; the same
    datasets and resamples as the scenario under any other statistic (the statistic is not in the streams)."""

    scenario: Scenario
    statistic: str = "spearman"

    @property
    def key(self) -> str:
        """Where its blocks live (:func:`~simulation.statistics.registry.unit_key`)."""
        return unit_key(self.scenario.key, self.statistic)


@dataclasses.dataclass(frozen=True)
class Execution:
    """How and where a run computes; none of these change a number."""

    n_jobs: int = -1
    backend: str = "local"
    scheduler: str | None = None
    batch_bootstrap: bool = True
    chunk_bytes: int = 64 * 2**20
    progress: bool = False

    def __post_init__(self) -> None:
        check_n_jobs(self.n_jobs)
        check_backend(self.backend, self.scheduler)
        check_positive_int(self.chunk_bytes, "chunk_bytes")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class StudyResult:
    """Tables of a finished run."""

    coverage: pd.DataFrame
    replicates: pd.DataFrame | None
    provenance: dict[str, Any]
    out: Path | None
    #: The failure ledger (``failures.parquet``): every dataset, method and reason without a usable result.
    failures: pd.DataFrame | None = None


# --------------------------------------------------------------------------
# Calibrations and truths (computed once, cached beside the results)
# --------------------------------------------------------------------------
#: The stream (a child of the scenario's truth seed) on which a population estimand's expected estimate is
#: measured.
STREAM_CENTRE = 11


def _calibrate_one(
    scenario: Scenario, truth_mcse: float, statistic: str | Statistic = "spearman"
) -> tuple[Calibration, Truth]:
    """The scenario's calibration and the statistic's truth; for an exact ``population`` truth, also the
    expected estimate at the scenario's n (:attr:`Truth.centre`, the centre of bias-eliminated coverage),
    measured to ``truth_mcse`` (:func:`simulation.statistics.custom.measured_truth`), or exactly the truth
    at rho = 0 for an odd-symmetric statistic (every built-in; a user's declared so)."""
    calibration = scenario.calibration()
    stat = get_statistic(statistic)
    truth = stat.truth(scenario, truth_mcse, calibration)
    if truth.n_reps == 0 and scenario.estimand == "population":
        if float(scenario.rho) == 0.0 and (stat.user is None or stat.user.odd_symmetric):
            truth = truth._replace(centre=truth.value, centre_mcse=0.0)
        else:
            seed = child_seed(scenario._truth_seed(), STREAM_CENTRE)
            centre = measured_truth(stat, scenario, seed, truth_mcse, calibration=calibration)
            truth = truth._replace(centre=centre.value, centre_mcse=centre.mcse)
    return calibration, truth


def calibrate_all(
    scenarios: Sequence[Scenario | Job], execution: Execution, out: Path | None, truth_mcse: float
) -> dict[str, tuple[Calibration, Truth]]:
    """Each scenario's (or job's: scenario and statistic) calibration and measured truth, computed once (in
    parallel), cached in ``<out>/calibrations.json`` under the job's key and in the user's cache shared by
    every results folder (:mod:`simulation.infra.cache`; floats round-trip exactly through JSON; an unreadable
    cache is recomputed, as both are deterministic).  A cached entry is used only if it verifies
    (:func:`_verified`: its digest, and its numbers against their own MCSEs); one that does not is computed
    again, with one warning naming it."""
    jobs = [s if isinstance(s, Job) else Job(s) for s in scenarios]
    path = out / CALIBRATIONS_FILE if out is not None else None
    cached = (read_json(path) if path is not None and path.exists() else None) or {}
    folder = cached.get("scenarios", {}) if isinstance(cached, dict) else {}
    known: dict[str, tuple[Calibration, Truth]] = {}
    refused: list[str] = []
    user_keys = {j.key: _cache_key(j, truth_mcse) for j in jobs}
    from_user_cache = []
    for j in jobs:
        entry = folder.get(j.key) if isinstance(folder, dict) else None
        if entry is not None:
            pair, reason = _verified(entry, j, truth_mcse)
            if pair is not None:
                known[j.key] = pair
                continue
            refused.append(f"{j.key} in {path} ({reason})")
        entry = cache.get(user_keys[j.key])  # then the user's cache, shared by every results folder
        if entry is not None:
            pair, reason = _verified(entry, j, truth_mcse)
            if pair is not None:
                known[j.key] = pair
                from_user_cache.append(j)
            else:
                refused.append(f"{j.key} in the user's cache ({reason})")
    if refused:
        warnings.warn(f"{len(refused)} cached calibration(s) or truth(s) did not verify and are computed again: "
                      + "; ".join(refused), UserWarning, stacklevel=2)  # fmt: skip
    missing = [j for j in jobs if j.key not in known]

    def keep(i: int, result: tuple[Calibration, Truth]) -> None:
        known[missing[i].key] = pair = (Calibration(*result[0]), Truth(*result[1]))
        cache.put(user_keys[missing[i].key], _entry(missing[i], pair, truth_mcse))

    n_jobs = execution.n_jobs if execution.backend == "local" else 1
    calls = [((j.scenario, truth_mcse, portable(j.statistic)), {}) for j in missing]
    parallel_map(_calibrate_one, calls, n_jobs=n_jobs, progress=False, on_result=keep, desc="calibrations")
    missing += from_user_cache  # written to the folder's calibrations.json below
    if path is not None and (missing or refused):
        by_key = {j.key: j for j in jobs}
        body = dict(folder) if isinstance(folder, dict) else {}  # other scenarios' entries are kept as they are
        body |= {key: _entry(by_key[key], pair, truth_mcse) for key, pair in known.items()}
        write_json(path, {"scenarios": dict(sorted(body.items()))})
    return known


def _entry(job: Job, pair: tuple[Calibration, Truth], truth_mcse: float) -> dict[str, Any]:
    """A cached calibration and truth with the digest that seals them (:func:`_entry_digest`)."""
    calibration, truth = list(pair[0]), list(pair[1])
    return {"calibration": calibration, "truth": truth, "truth_mcse": truth_mcse,
            "calibration_version": CALIBRATION_VERSION,
            "digest": _entry_digest(job, calibration, truth, truth_mcse)}  # fmt: skip


def _entry_digest(job: Job, calibration: list, truth: list, truth_mcse: float) -> str:
    """SHA-256 of what a cached entry claims: whose it is (scenario, statistic and its digest), the numbers,
    the truth's precision and the calibration's version."""
    stat = get_statistic(job.statistic)
    claim = [job.scenario.key, stat.name, stat.digest, calibration, truth, truth_mcse, CALIBRATION_VERSION]
    return hashlib.sha256(json.dumps(claim).encode()).hexdigest()


#: A cached truth farther than this many combined MCSEs from its calibration's achieved value (for the
#: statistic the calibration aims at) is refused: a false alarm about once in 500 million entries.
PLAUSIBLE_SE = 6.0


def _verified(entry: Any, job: Job, truth_mcse: float) -> tuple[tuple[Calibration, Truth] | None, str]:
    """The cached ``(calibration, truth)`` of ``entry`` if it verifies, else ``(None, why)``.

    Checked: its shape, settings (truth precision, calibration version) and digest (:func:`_entry_digest`);
    then its numbers, each against its own Monte Carlo error: finite, non-negative MCSEs, a measured truth
    (``n_reps`` > 0) exactly when its MCSE is not 0, measured to the precision asked (``truth_mcse``, unless
    it hit the measurement's cap), within the statistic's range; and for the statistic whose expected sample
    value the calibration aims at (:attr:`~simulation.statistics.statistic.Statistic.calibrated`), within
    :data:`PLAUSIBLE_SE` combined MCSEs of the calibration's achieved value (the two measure the same mean on
    independent streams; exactly equal when both are exact)."""
    try:
        if entry.get("truth_mcse") != truth_mcse or entry.get("calibration_version") != CALIBRATION_VERSION:
            return None, "other settings"
        calibration, truth = Calibration(*entry["calibration"]), Truth(*entry["truth"])
        if "digest" not in entry:
            return None, "no digest: written by an earlier version"
        if entry.get("digest") != _entry_digest(job, list(entry["calibration"]), list(entry["truth"]), truth_mcse):
            return None, "its digest does not match its content"
    except (AttributeError, TypeError, KeyError):
        return None, "not an entry of this version"
    stat = get_statistic(job.statistic)
    low, high = stat.bounds
    if truth.n_reps == 0 and job.scenario.estimand == "population" and not math.isfinite(truth.centre):
        return None, "no expected estimate beside its population truth: written by an earlier version"
    numbers = [*calibration, truth.value, truth.mcse, truth.centre_mcse]
    finite = all(isinstance(v, int | float) and math.isfinite(v) for v in numbers)
    if not finite or min(truth.mcse, calibration.mcse) < 0:
        return None, "a number is not finite or an MCSE is negative"
    if (truth.mcse > 0) != (truth.n_reps > 0) or not low <= truth.value <= high:
        return None, f"truth {truth.value!r} with MCSE {truth.mcse!r} from {truth.n_reps!r} datasets is not possible"
    if truth.mcse > truth_mcse and truth.n_reps < TRUTH_MAX_REPS:
        return None, f"its truth's MCSE {truth.mcse!r} is above the precision asked, {truth_mcse!r}"
    if stat.calibrated:
        gap, se = abs(truth.value - calibration.achieved), math.hypot(truth.mcse, calibration.mcse)
        if gap > PLAUSIBLE_SE * se + 1e-12:
            return None, (f"its truth {truth.value!r} is {gap:.3g} from the calibration's {calibration.achieved!r}, "
                          f"more than {PLAUSIBLE_SE:g} MCSEs ({se:.3g})")  # fmt: skip
    return (calibration, truth), ""


def _cache_key(job: Job, truth_mcse: float) -> str:
    """What identifies a job's calibration and truth in the user's cache (:mod:`simulation.infra.cache`)."""

    stat = get_statistic(job.statistic)
    return cache.entry_key(
        scenario=job.scenario.key, statistic=stat.name, digest=stat.digest, truth_mcse=truth_mcse,
        calibration=CALIBRATION_VERSION, source=source_digest(), version=__version__,
    )  # fmt: skip


# --------------------------------------------------------------------------
# Units of work
# --------------------------------------------------------------------------
def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel of both phases in the parent before workers start."""
    tiny = Scenario(case="warmup", generator="rank_mixing", n=12, rho=0.2, template="custom", counts=(3, 3, 3, 3))
    ctx = UnitContext(20, 0.9, 0, tiny.calibration(), Truth(0.2, 0.0, 0))
    run_boot_block(tiny, 0, 2, ctx)
    run_cheap_unit(tiny, 0, 2, ctx)


def _run_unit(kind: str, scenario: Scenario, index: int, size: int, ctx: UnitContext, start: Record | None = None):
    if kind == "boot":
        return run_boot_block(scenario, index, size, ctx, start)
    return run_cheap_unit(scenario, index, size, ctx, start), None


def _unit_start(store: BlockStore, key: str, kind: str, index: int, size: int) -> Record | None:
    """The record of the largest smaller size of this unit already stored that the unit can continue from
    (a round before grew its phase): whole slices of a bootstrap block (:func:`run_boot_block`), whole
    blocks of a cheap unit (:func:`run_cheap_unit`); None if there is none."""
    step, name = (SLICE_REPS, boot_name) if kind == "boot" else (BLOCK_REPS, cheap_name)
    for smaller in range((size - 1) // step * step, 0, -step):
        if store.has(key, name(index, smaller)):
            try:
                return Record.from_frame(store.peek(key, name(index, smaller)))
            except CorruptBlock:
                return None  # computed from scratch; the damaged file is never a unit of this run's tables
    return None


def _unit_names(kind: str, index: int, size: int, keep_replicates: bool) -> list[str]:
    if kind == "cheap":
        return [cheap_name(index, size)]
    return [boot_name(index, size)] + ([replicates_name(index, size)] if keep_replicates else [])


def _compute_units(
    todo: list[tuple[str, Job, int, int]],
    contexts: dict[str, UnitContext],
    execution: Execution,
    store: BlockStore,
    on_job_done: Callable[[Job], Any] | None = None,
) -> None:
    """Run the ``todo`` units; the parent stores each result as it finishes.  ``on_job_done(job)``: called
    in the parent as soon as the last of a job's units is stored, while the workers go on with the others
    (the job's rows are estimated then instead of after the round, when the workers would wait)."""
    calls = [
        ((kind, j.scenario, index, size, contexts[j.key],
          None if contexts[j.key].keep_replicates else _unit_start(store, j.key, kind, index, size)), {})
        for kind, j, index, size in todo
    ]  # fmt: skip
    left = collections.Counter(j.key for _, j, _, _ in todo)

    def keep(i: int, result: tuple[Record, pd.DataFrame | None]) -> None:
        kind, job, index, size = todo[i]
        record, replicates = result
        name = boot_name(index, size) if kind == "boot" else cheap_name(index, size)
        if replicates is not None:
            store.put(job.key, replicates_name(index, size), replicates)
        store.put(job.key, name, record.to_frame(), remember=True)  # the tables read it back at once
        left[job.key] -= 1
        if left[job.key] == 0 and on_job_done is not None:
            on_job_done(job)

    parallel_map(
        _run_unit,
        calls,
        n_jobs=execution.n_jobs,
        progress=execution.progress,
        on_result=keep,
        desc="blocks",
        backend=execution.backend,
        scheduler=execution.scheduler,
        warm_up=warm_up,
        work_seconds=_work_seconds(todo, contexts),
    )


#: Seconds per observation of one bootstrap resample, and per observation of one cheap-phase dataset, on one
#: core: generous bounds (Kendall's tau-b, the slowest built-in, costs about 60 ns per observation per
#: resample; benchmarks/bench_bootstrap.py), used only to run a tiny run without worker processes.
RESAMPLE_OBSERVATION_SECONDS = 1e-7
CHEAP_OBSERVATION_SECONDS = 1e-5


def _work_seconds(todo: list[tuple[str, Job, int, int]], contexts: dict[str, UnitContext]) -> float | None:
    """An estimate of the units' work on one core, generous for compiled statistics; None with a statistic
    on the slow path (a Python callable: its cost is unknown)."""
    if not all(get_statistic(contexts[j.key].statistic).compiled for _, j, _, _ in todo):
        return None
    total = 0.0
    for kind, j, _, size in todo:
        n = j.scenario.n
        boot = contexts[j.key].n_boot * RESAMPLE_OBSERVATION_SECONDS
        total += size * n * (boot if kind == "boot" else CHEAP_OBSERVATION_SECONDS)
    return total


def _merge_prefix(
    store: BlockStore, key: str, names: list[str], start: Record, memo: dict | None, memo_key: tuple
) -> Record:
    """``start`` merged with the units ``names`` in order (a left fold, in block order), resuming from
    the longest prefix of ``names`` already merged under ``memo_key`` in ``memo``: a round that grows a
    phase merges only its new units, with the very operations a merge from scratch would do."""
    done, out = 0, start
    if memo is not None and memo_key in memo:
        merged_names, merged = memo[memo_key]
        if merged_names == names[: len(merged_names)]:
            done, out = len(merged_names), merged
    for name in names[done:]:
        out = out.merge(Record.from_frame(store.get(key, name)))
    if memo is not None:
        memo[memo_key] = (names, out)
    return out


def _merged(
    store: BlockStore, job: Scenario | Job, n_reps: int, n_reps_cheap: int, memo: dict | None = None
) -> tuple[Record, Record]:
    """A job's bootstrap and cheap records, merged in block (unit) order.  ``memo``: a dict kept across
    calls (the rounds of one run), so that units merged before are not read and merged again."""
    stat = get_statistic(job.statistic if isinstance(job, Job) else "spearman")
    n_asym = len(stat.asymptotic_methods)
    boot_names = [boot_name(b, m) for b, m in boot_units(n_reps)]
    cheap_names = [cheap_name(u, m) for u, m in cheap_units(n_reps_cheap)]
    return (
        _merge_prefix(store, job.key, boot_names,
                      empty_record(len(BOOTSTRAP_METHODS), BOOT_DIM, CROSSFIT_FOLDS, BOOT_FLAGS),
                      memo, (job.key, "boot")),
        _merge_prefix(store, job.key, cheap_names, empty_record(n_asym, cheap_dim(n_asym), 1, cheap_flags(n_asym)),
                      memo, (job.key, "cheap")),
    )  # fmt: skip


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------
def _scenario_row(s: Scenario, calibration: Calibration, truth: Truth, statistic: str) -> dict[str, Any]:
    return {
        "scenario": s.key,
        "statistic": statistic,
        "case": s.case,
        "generator": s.generator,
        "n": s.n,
        "k": s.k if s.k is not None else (len(s.counts) if s.counts else s.n),
        "template": s.template,
        "rho": float(s.rho),
        # a measured truth is an expected sample value, whatever the scenario's own estimand (a user
        # statistic without a closed form on a continuous model)
        "estimand": "expected_sample" if truth.n_reps > 0 else s.estimand,
        "rho_true": truth.value,
        "rho_true_mcse": truth.mcse,
        "rho_true_n_reps": truth.n_reps,
        "coefficient": calibration.coefficient,
        "calibration_achieved": calibration.achieved,
        "calibration_mcse": calibration.mcse,
    }


def scenario_rows(
    scenario: Scenario,
    boot: Record,
    cheap: Record,
    identity: RunIdentity,
    methods: Sequence[str],
    calibration: Calibration,
    truth: Truth,
    statistic: str = "spearman",
    reference_method: str = DEFAULT_REFERENCE_METHOD,
) -> list[dict[str, Any]]:
    """One row per method of one scenario (under one statistic) from its merged records (see
    :mod:`simulation.study.estimators`); ``methods`` are the statistic's; ``reference_method``: the method
    the relative widths and precisions compare each with."""
    stat = get_statistic(statistic)
    asymptotic = stat.asymptotic_methods
    base = _scenario_row(scenario, calibration, truth, stat.name)
    cheap_controls = cheap.moments.select(np.arange(CHEAP_CONTROLS))
    estimates = _estimate_summary(cheap, truth.value, truth.mcse)
    table6 = _Table6(stat, boot, cheap, truth, reference_method, estimates, base["estimand"])
    rows = []
    shared: dict = {}  # what the methods' estimates share (see method_performance)
    for method in methods:
        if method in BOOTSTRAP_METHODS:
            j = BOOTSTRAP_METHODS.index(method)
            record, kind, n_boot, folds = boot, "bootstrap", identity.n_boot, boot.parts
            control_variates, n_controls = identity.control_variates, BOOT_CONTROLS
        else:
            j = asymptotic.index(method)
            record, kind, n_boot = cheap, "asymptotic", 0
            folds = (cheap.parts[0],)
            # every cheap-phase dataset, with its exact control only (plain where it has none)
            control_variates, n_controls = identity.control_variates, CHEAP_CONTROLS
        n_ok = record.moments.n - record.failed[j]
        n_failed = record.n_nan + record.failed[j]
        if kind == "bootstrap":
            n_out = boot.flags[j]
            n_dropped = boot.flags[len(BOOTSTRAP_METHODS) + BOOT_FLAG_RESAMPLES_DROPPED]
            n_reps_dropped = boot.flags[len(BOOTSTRAP_METHODS) + BOOT_FLAG_REPS_DROPPED]
        else:
            n_out = n_dropped = n_reps_dropped = 0
        flags = [ROW_ALL_FAILED if n_ok == 0 else ROW_SOME_FAILED] if n_failed else []
        flags += [ROW_OUT_OF_RANGE] if n_out else []
        flags += [ROW_RESAMPLES_DROPPED] if n_reps_dropped else []
        perf = method_performance(
            folds, cheap_controls, j, n_ok, n_controls=n_controls, control_variates=control_variates,
            confidence_level=identity.confidence_level, single_phase=kind == "asymptotic", cache=shared,
        )  # fmt: skip
        w_lo, w_hi = wilson_interval(np.array(round(perf["coverage_plain"] * n_ok) if n_ok else 0), np.array(n_ok))
        half = Z95 * perf["coverage_mcse"]
        rows.append(
            base
            | {
                "method": method,
                "method_kind": kind,
                "confidence_level": identity.confidence_level,
                "n_boot": n_boot,
                "n_reps": record.n_reps,
                "n_reps_cheap": cheap.n_reps,
                "n_failed": n_failed,
            }
            | perf
            | {
                "coverage_lower95": max(0.0, perf["coverage"] - half),
                "coverage_upper95": min(1.0, perf["coverage"] + half),
                "coverage_wilson_lower": float(w_lo),
                "coverage_wilson_upper": float(w_hi),
            }
            | estimates
            | table6.row(method, perf)
            | {
                "n_out_of_range": n_out,
                "n_resamples_dropped": n_dropped,
                "n_reps_resamples_dropped": n_reps_dropped,
                "status": row_status(flags),
            }
        )
    return rows


class _Table6:
    """The measures of Morris, White & Crowther (2019, Table 6) beyond the coverage columns, for one scenario
    under one statistic, from its merged records (:mod:`simulation.study.metrics` has the formulas)."""

    def __init__(self, stat: Statistic, boot: Record, cheap: Record, truth: Truth, reference: str,
                 estimates: Mapping[str, float], estimand: str) -> None:  # fmt: skip
        self.stat, self.boot, self.cheap, self.truth, self.reference = stat, boot, cheap, truth, reference
        self.estimand = estimand
        self.phases = {"bootstrap": boot.moments, "cheap": cheap.moments}
        self.sums = {k: m.mean * m.n for k, m in self.phases.items()}
        self.cov = {k: m.covariance() for k, m in self.phases.items()}
        self.estimates = estimates
        c = cheap.moments
        theta, n = truth.value, c.n
        if n:
            mean_sq = float(c.mean[1] - 2 * theta * c.mean[0] + theta * theta)
            cv = self.cov["cheap"]
            var_sq = float(cv[1, 1] - 4 * theta * cv[0, 1] + 4 * theta * theta * cv[0, 0]) if n > 1 else math.nan
        else:
            mean_sq = var_sq = math.nan
        self.mse = mse_measures(mean_sq, var_sq, n, estimates["bias"], truth.mcse)
        n_asym = len(stat.asymptotic_methods)
        self.z_column, self.z_n = CHEAP_CONTROLS + 5 * n_asym, cheap.flags[n_asym] if cheap.flags else 0
        self.z_se = math.sqrt(self._mean_var("cheap", self.z_column, self.z_n)[1])

    def _mean_var(self, phase: str, column: int, k: int) -> tuple[float, float]:
        """Mean and sample variance of a column over the ``k`` datasets where it is not 0 by omission (it is 0
        on the others): ``sum / k`` and ``(m2 + n mean^2 (1 - n / k)) / (k - 1)`` from the phase's centred
        ``m2``, so that a column without omissions gets its variance with no cancellation."""
        m = self.phases[phase]
        if k < 1:
            return math.nan, math.nan
        mean_all = float(m.mean[column])
        mean = m.n * mean_all / k
        if k < 2:
            return mean, math.nan
        return mean, max(float(m.m2[column, column]) + m.n * mean_all**2 * (1 - m.n / k), 0.0) / (k - 1)

    def _width(self, method: str):
        """``(phase, width vector, datasets ok)`` of ``method``, or None where the statistic lacks it."""
        if method in self.stat.bootstrap_methods:
            phase, first, j, record = "bootstrap", BOOT_CONTROLS, BOOTSTRAP_METHODS.index(method), self.boot
        elif method in self.stat.asymptotic_methods:
            phase, first, j = "cheap", CHEAP_CONTROLS, self.stat.asymptotic_methods.index(method)
            record = self.cheap
        else:
            return None
        a = np.zeros(self.phases[phase].dim)
        a[first + 4 * j], a[first + 4 * j + 1] = -1.0, 1.0
        return phase, a, self.phases[phase].n - record.failed[j]

    def row(self, method: str, perf: Mapping[str, Any]) -> dict[str, Any]:
        nan = math.nan
        if method in BOOTSTRAP_METHODS:  # the bootstrap SE, from the normal interval's width
            scale, column = "estimate", BOOT_VARIANCE
            k = self.boot.moments.n - self.boot.failed[BOOTSTRAP_METHODS.index("normal")]
            phase = "bootstrap"
        else:
            j = self.stat.asymptotic_methods.index(method)
            scale = "fisher_z" if method.startswith("fisher_z") else "estimate"
            column, k, phase = CHEAP_CONTROLS + 4 * len(self.stat.asymptotic_methods) + j, self.cheap.flags[j], "cheap"
        if scale == "fisher_z":
            emp_se, n_emp = self.z_se, self.z_n
        else:
            emp_se, n_emp = self.estimates["empirical_se"], self.cheap.moments.n
        model = model_se_measures(*self._mean_var(phase, column, k), k, emp_se, n_emp)
        out = {
            "model_se_scale": scale,
            "model_se": model["model_se"],
            "model_se_mcse": model["model_se_mcse"],
            "model_se_n_reps": int(k),
            "empirical_se_model_scale": emp_se,
            "empirical_se_model_scale_mcse": emp_se / math.sqrt(2 * (n_emp - 1)) if n_emp > 1 else nan,
            "relative_error_model_se": model["relative_error_model_se"],
            "relative_error_model_se_mcse": model["relative_error_model_se_mcse"],
        } | self.mse
        # the expected estimate is the truth itself for an expected-sample estimand: the coverage's own
        # estimate; else the plain share of the ok intervals that contain the measured expected estimate
        if not math.isfinite(self.truth.centre):
            out["coverage_bias_eliminated"] = perf["coverage"]
            out["coverage_bias_eliminated_mcse"] = perf["coverage_mcse"]
        else:
            if method in BOOTSTRAP_METHODS:
                j = BOOTSTRAP_METHODS.index(method)
                phase, record, covering = "bootstrap", self.boot, self.boot.flags[BOOT_FLAG_CENTRE + j]
            else:
                j = self.stat.asymptotic_methods.index(method)
                phase, record = "cheap", self.cheap
                covering = self.cheap.flags[len(self.stat.asymptotic_methods) + 1 + j]
            n_ok = self.phases[phase].n - record.failed[j]
            p = covering / n_ok if n_ok > 0 else nan
            out["coverage_bias_eliminated"] = p
            out["coverage_bias_eliminated_mcse"] = math.sqrt(p * (1 - p) / n_ok) if n_ok > 0 else nan
        out["coverage_centre"] = self.truth.expected_estimate
        out["coverage_centre_mcse"] = self.truth.centre_mcse if math.isfinite(self.truth.centre) else self.truth.mcse
        out["reference_method"] = self.reference
        mine, ref = self._width(method), self._width(self.reference)
        if mine is None or ref is None:
            rel = relative_width((nan, nan), (0, 0), nan)
        else:
            (p1, a1, k1), (p2, a2, k2) = mine, ref
            s1, s2 = float(a1 @ self.sums[p1]), float(a2 @ self.sums[p2])
            n1, n2 = self.phases[p1].n, self.phases[p2].n
            var_log = nan
            if s1 > 0 and s2 > 0 and n1 > 1 and n2 > 1:
                if p1 == p2:  # shared datasets: one variance of the combined width (their covariance in it)
                    d = a1 / s1 - a2 / s2
                    var_log = n1 * float(d @ self.cov[p1] @ d)
                else:
                    var_log = n1 * float(a1 @ self.cov[p1] @ a1) / s1**2 + n2 * float(a2 @ self.cov[p2] @ a2) / s2**2
            rel = relative_width((s1, s2), (k1, k2), var_log)
        return out | rel


def _estimate_summary(cheap: Record, rho_true: float, rho_true_mcse: float = 0.0) -> dict[str, float]:
    """Mean, bias and empirical SE of ``rho_hat`` over the cheap phase, with MCSEs (Morris et al. 2019,
    Table 6); plain estimators (no controls).

    ``bias = mean_rho_hat - rho_true`` is a difference of two independent Monte Carlo estimates when the
    truth is measured (``expected_sample``, on streams of its own), so its MCSE is
    ``sqrt(SE^2 / N + rho_true_mcse^2)`` (variance of a difference of independent estimates); for an
    exact truth ``rho_true_mcse`` is 0 and this is Morris et al.'s ``SE / sqrt(N)``.  For
    ``expected_sample`` scenarios the bias is 0 by construction (the truth *is* the expected estimate), so
    the column is a check of the truth's measurement there.  Coverage needs no such term: the truth's
    error (at most 0.0005 by default) moves the target by far less than an interval's width, and changes
    each miss rate by at most about ``phi(z) rho_true_mcse / SE`` (the two moves nearly cancel in the
    coverage): 0.0003 at n = 80 (SE about 0.11) with the default 0.0005.
    """
    n = cheap.moments.n
    mean = float(cheap.moments.mean[0]) if n else math.nan
    se = math.sqrt(cheap.moments.m2[0, 0] / (n - 1)) if n > 1 else math.nan
    return {
        "mean_rho_hat": mean,
        "bias": mean - rho_true,
        "bias_mcse": math.sqrt(se * se / n + rho_true_mcse**2) if n > 1 else math.nan,
        "empirical_se": se,
        "empirical_se_mcse": se / math.sqrt(2 * (n - 1)) if n > 1 else math.nan,
    }


#: The coverage table's columns, in order: scenario and truth, method and sizes, then each measure of
#: :data:`simulation.study.estimators.MEASURES` (headline, its MCSE, plain, plain MCSE), the variance ratios
#: and variance shares, the spread of the endpoints, the estimator, the coverage intervals, the estimate's
#: summary and the status.  The table is built in this order and ``tests/test_columns.py`` checks each
#: column by name, so a column added without a check fails there.
#: Names, meanings and units are listed once, in :data:`simulation.study.columns.COVERAGE`.
COVERAGE_COLUMNS: tuple[str, ...] = column_names(COVERAGE)


def _coverage_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    if rows and list(table.columns) != list(COVERAGE_COLUMNS):
        raise RuntimeError(f"coverage rows have columns {list(table.columns)}, expected {list(COVERAGE_COLUMNS)}")
    table = table.reindex(columns=list(COVERAGE_COLUMNS))
    ints = ("k", "n", "n_reps", "n_reps_cheap", "n_failed", "n_boot", "rho_true_n_reps")
    return table.astype({c: np.int64 for c in ints})


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------
def statistic_methods(statistic: str) -> tuple[str, ...]:
    """Every interval method a statistic defines, in table order (its bootstrap methods, then its
    asymptotic ones)."""
    stat = get_statistic(statistic)
    asymptotic = stat.asymptotic_methods
    return (*stat.bootstrap_methods, *asymptotic)


def check_statistic_methods(
    methods: Sequence[str] | None, statistics: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """The methods of each statistic of a run: all it defines (``methods`` None), or those of ``methods``
    it defines; every method must be defined by some statistic, every statistic must keep one."""
    if methods is None:
        return {stat: statistic_methods(stat) for stat in statistics}
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",")]
    wanted = tuple(methods)
    allowed = list(dict.fromkeys(m for stat in statistics for m in statistic_methods(stat)))
    unknown = [m for m in wanted if m not in allowed]
    if unknown or not wanted:
        raise RunError(
            f"`methods` must be a non-empty subset of {allowed} (the methods of {list(statistics)}), got "
            f"{list(wanted)}{_missing_se_note(statistics, wanted)}"
        )
    out = {stat: tuple(m for m in statistic_methods(stat) if m in wanted) for stat in statistics}
    empty = [stat for stat, ms in out.items() if not ms]
    if empty:
        raise RunError(
            f"`methods` {list(wanted)} include none that {empty[0]} defines "
            f"(it defines {list(statistic_methods(empty[0]))}){_missing_se_note([empty[0]], wanted)}"
        )
    return out


#: Methods that need a statistic's standard error.
SE_METHODS = ("studentized", "fisher_z_se", "wald_se")


def _missing_se_note(statistics: Sequence[str], wanted: Sequence[str]) -> str:
    """Why a user statistic lacks a method that needs a standard error (empty when that is not the cause)."""
    lacking = [s for s in statistics if not get_statistic(s).has_se]
    asked = [m for m in wanted if m in SE_METHODS]
    if not lacking or not asked:
        return ""
    return (f"; {', '.join(asked)} need the statistic's standard error, which {', '.join(lacking)} does not "
            "supply: give it one with Statistic.from_numba(..., se=...)")  # fmt: skip


def check_reference_method(method: str, statistics: Sequence[str]) -> str:
    """``method`` if one of ``statistics`` defines it (the method the relative widths compare with); a
    RunError naming the methods allowed otherwise."""
    allowed = list(dict.fromkeys(m for stat in statistics for m in statistic_methods(stat)))
    if not isinstance(method, str) or method not in allowed:
        raise RunError(f"`reference_method` must be an interval method of the run's statistics, one of {allowed}; "
                       f"got {method!r}")  # fmt: skip
    return method


def check_methods(methods: Sequence[str] | None) -> tuple[str, ...]:
    """Validate a method list (``None`` = all; a string is one method or a comma-separated list)."""
    if methods is None:
        return ALL_METHODS
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",")]
    methods = tuple(methods)
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown or not methods:
        raise RunError(f"`methods` must be a non-empty subset of {list(ALL_METHODS)}, got {list(methods)}")
    return tuple(m for m in ALL_METHODS if m in methods)


def _check_fraction(value: float | None, name: str, upper: float) -> float | None:
    if value is not None and not (
        isinstance(value, float | int) and not isinstance(value, bool) and 0 < value < upper
    ):
        raise RunError(f"`{name}` must be a number in (0, {upper:g}), got {value!r}")
    return None if value is None else float(value)


def _check_sizes(n_reps: int, n_reps_cheap: int | None, n_boot: int, control_variates: bool) -> tuple[int, int]:
    """``(n_reps, n_reps_cheap)``: the cheap phase defaults to Cochran's allocation (1:1 without controls)."""
    n_reps = check_positive_int(n_reps, "n_reps")
    if n_reps_cheap is None:
        ratio = default_cheap_ratio(n_boot) if control_variates else 1.0
        return n_reps, math.ceil(n_reps * ratio)
    n_reps_cheap = check_positive_int(n_reps_cheap, "n_reps_cheap")
    if n_reps_cheap < n_reps:
        raise RunError(
            f"`n_reps_cheap` (--n-reps-cheap) must be at least `n_reps` = {n_reps} (the cheap phase is the larger "
            f"one), got {n_reps_cheap}"
        )
    return n_reps, n_reps_cheap


def _check_scenario_sizes(
    scenario_sizes: Mapping[str, tuple[int, int]] | None,
    scenarios: Sequence[Scenario],
    n_boot: int,
    control_variates: bool,
) -> dict[str, tuple[int, int]]:
    """Validated per-scenario ``(n_reps, n_reps_cheap)``; keys must name scenarios of the study."""
    if scenario_sizes is None:
        return {}
    if not isinstance(scenario_sizes, Mapping):
        raise RunError(f"`scenario_sizes` must map scenario keys to (n_reps, n_reps_cheap), got {scenario_sizes!r}")
    keys = {s.key for s in scenarios}
    out = {}
    for key, value in scenario_sizes.items():
        if key not in keys:
            raise RunError(f"`scenario_sizes` names {key!r}, which is not a scenario of this study")
        if not isinstance(value, Sequence) or len(value) != 2:
            raise RunError(f"`scenario_sizes[{key!r}]` must be (n_reps, n_reps_cheap), got {value!r}")
        out[key] = _check_sizes(value[0], value[1], n_boot, control_variates)
    return out


#: Measures a precision target may name (``--target MEASURE=MCSE``), and shorthands for several.
TARGET_MEASURES = ("coverage", "mean_ci_lower", "mean_ci_upper", "mean_width", "miss_below", "miss_above")
TARGET_SHORTHANDS = {"endpoints": ("mean_ci_lower", "mean_ci_upper")}
#: Measures whose estimators report their variance shares (``residual_share_*``, ``cheap_share_*``), so
#: that a target on them gets Cochran's allocation of the two phases; the others grow both in proportion.
SHARED_MEASURES = ("coverage", "mean_ci_lower", "mean_ci_upper")
#: Measures judged against the truth: a target on them also sets the truth's precision (a quarter of it).
TRUTH_MEASURES = ("coverage", "miss_below", "miss_above")
#: Variance margin of a target's allocation (the shares and SDs are estimated from the round before): 1,
#: none.  A grown unit continues from its smaller size (:func:`_unit_start`), so a scenario that falls
#: short costs one short round for what it lacks, while a margin is paid by every scenario: with 1.15,
#: ``--target coverage=0.002`` on the default study ended with a median largest coverage MCSE of 0.87 of the
#: target (1.0: 0.94) and 13% more bootstrapped datasets (``benchmarks/bench_tier.py``).  0.9 was tried:
#: it asks some scenarios for less than they need, which then grow by short steps; the fall of the shares
#: with more datasets is corrected by :data:`SHARE_DECAY` instead.
TARGET_MARGIN = 1.0
#: ``k`` of each shared measure's residual share ``a(m) = a_inf (1 + k / m)`` at ``m`` bootstrapped
#: datasets (:func:`shared_allocation`).  Measured on the default study (88 scenarios x 5 bootstrap
#: methods, 1,000 resamples, seed 77; medians over methods of the per-scenario median ratio of the
#: share at 1,000 to that at 3,000 datasets): coverage 1.05-1.12 (median of all 1.10), k about 100, far above
#: the ``p / n`` of Gaussian regressors (twelve rare indicators); mean endpoints 1.01-1.03, k about 30.
SHARE_DECAY = {"coverage": 100.0, "mean_ci_lower": 30.0, "mean_ci_upper": 30.0}


def check_targets(targets: Mapping[str, float] | Sequence[str] | str | None) -> dict[str, float]:
    """Validate precision targets: ``{measure: mcse}``, or ``"measure=mcse"`` strings (comma-separated or a
    list); ``endpoints`` stands for both mean endpoints.  Returns ``{measure: mcse}`` in
    :data:`TARGET_MEASURES` order; a measure named twice must get the same value."""
    if targets is None:
        return {}
    if isinstance(targets, str):
        targets = [t for t in targets.split(",") if t.strip()]
    pairs: list[tuple[Any, Any]] = []
    if isinstance(targets, Mapping):
        pairs = list(targets.items())
    else:
        for item in targets:
            name, sep, value = str(item).partition("=")
            if not sep:
                raise RunError(f"`targets`: expected MEASURE=MCSE (e.g. coverage=0.002), got {item!r}")
            try:
                pairs.append((name.strip(), float(value)))
            except ValueError:
                raise RunError(f"`targets`: the MCSE of {name.strip()!r} must be a number, got {value!r}") from None
    allowed = [*TARGET_MEASURES, *TARGET_SHORTHANDS]
    out: dict[str, float] = {}
    for name, value in pairs:
        if name not in allowed:
            raise RunError(f"`targets`: unknown measure {name!r}; expected one of {allowed}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 0.5:
            raise RunError(f"`targets`: the MCSE of {name!r} must be a number in (0, 0.5), got {value!r}")
        for measure in TARGET_SHORTHANDS.get(name, (name,)):
            if measure in out and out[measure] != float(value):
                raise RunError(f"`targets`: {measure!r} is given two targets, {out[measure]} and {float(value)}")
            out[measure] = float(value)
    return {m: out[m] for m in TARGET_MEASURES if m in out}


def two_phase_allocation(
    n_plain: int, residual: float, cheap: float, c_boot: float, c_cheap: float
) -> tuple[int, int]:
    """Cheapest ``(m, N)`` whose two-phase variance ``a/m + b/N`` equals the plain ``1/n_plain``.

    ``a = residual`` and ``b = cheap`` are the estimator's shares of the
    plain variance (``residual_share_*`` and ``cheap_share_*`` of a run's
    table).  Minimizing ``m c_boot + N c_cheap`` subject to ``a/m + b/N =
    1/n_plain`` gives ``m = n_plain (a + sqrt(a b c_cheap / c_boot))`` and
    ``N = n_plain (b + sqrt(a b c_boot / c_cheap))`` (Lagrange; Cochran 1977,
    §12.6); ``N`` at least ``m``.
    """
    a = min(max(residual, 1e-6), 1.0)
    b = max(cheap, 0.0)
    m = math.ceil(n_plain * (a + math.sqrt(a * b * c_cheap / c_boot)))
    big_n = max(m, math.ceil(n_plain * (b + math.sqrt(a * b * c_boot / c_cheap))))
    return m, big_n


def shared_allocation(
    n_plain: float, residual: float, cheap: float, m: int, cost_ratio: float, measure: str
) -> tuple[int, int]:
    """:func:`two_phase_allocation` with the residual share ``residual``, measured at ``m`` bootstrapped
    datasets, carried to the size the allocation asks for: ``a(m') = a(m) (1 + k/m') / (1 + k/m)``, with
    ``k`` = :data:`SHARE_DECAY` of the measure (a fixed point in ``m'``).

    A cross-fitted residual is out of sample: its coefficients are fitted on three quarters of the
    datasets, and the prediction error of a regression fitted on ``n`` rows exceeds the irreducible one by
    a factor of about ``1 + p / n`` (Breiman & Freedman 1983, JASA 78:131-136, for ``p`` Gaussian
    regressors), so the share measured on fewer datasets overstates the share at more."""
    decay = SHARE_DECAY.get(measure, 0.0)
    alloc = two_phase_allocation(n_plain, residual, cheap, cost_ratio, 1.0)
    for _ in range(20):
        share = residual * (1 + decay / alloc[0]) / (1 + decay / m)
        again = two_phase_allocation(n_plain, share, cheap, cost_ratio, 1.0)
        if again == alloc:
            break
        alloc = again
    return alloc


def target_allocation(
    rows: pd.DataFrame | Sequence[Mapping[str, Any]],
    m: int,
    big_n: int,
    targets: Mapping[str, float],
    cost_ratio: float,
) -> tuple[int, int] | None:
    """The phases one job needs for every targeted MCSE of every method in ``rows`` (its coverage rows
    at sizes ``(m, big_n)``, a table or a list of row mappings), or None when every target is met.

    A bootstrap method's measure with variance shares: the plain estimator's per-dataset variance
    ``sigma^2 = plain_mcse^2 m`` gives the plain datasets ``n_plain = sigma^2 / target^2`` it would need;
    the two-phase estimator with shares ``a`` (residual) and ``b`` (cheap phase) reaches that variance most
    cheaply at ``m' = n_plain (a + sqrt(a b / R))``, ``N' = n_plain (b + sqrt(a b R))`` with ``R =
    cost_ratio`` the cost of a bootstrapped dataset over a cheap one (:func:`two_phase_allocation`;
    the runner uses ``COST_RATIO_PER_RESAMPLE * n_boot``, measured and fixed so that the allocation is
    deterministic; ``plan`` its own measurement), with :data:`TARGET_MARGIN` on the variance and ``a``
    carried to the size asked for (:func:`shared_allocation`).  Other
    measures and the asymptotic methods (cheap phase only): both phases, or the cheap one, in proportion
    ``(mcse / target)^2`` times the margin.  Never smaller than now.
    """
    need_m, need_n = m, big_n
    met = True
    for row in rows.to_dict("records") if isinstance(rows, pd.DataFrame) else rows:
        boot = row["method_kind"] == "bootstrap"
        for measure, target in targets.items():
            mcse = float(row[f"{measure}_mcse"])
            if not math.isfinite(mcse) or mcse <= target:
                continue
            met = False
            plain = float(row[f"{measure}_plain_mcse"])
            a = float(row.get(f"residual_share_{measure}", math.nan)) if measure in SHARED_MEASURES else math.nan
            b = float(row.get(f"cheap_share_{measure}", math.nan)) if measure in SHARED_MEASURES else math.nan
            if boot and all(math.isfinite(v) for v in (plain, a, b)) and plain > 0:
                n_plain = TARGET_MARGIN * plain**2 * row["n_reps"] / target**2
                alloc_m, alloc_n = shared_allocation(n_plain, a, b, int(row["n_reps"]), cost_ratio, measure)
                need_m, need_n = max(need_m, alloc_m), max(need_n, alloc_n)
            else:
                growth = TARGET_MARGIN * (mcse / target) ** 2
                need_n = max(need_n, math.ceil(big_n * growth))
                if boot:
                    need_m = max(need_m, math.ceil(m * growth))
    return None if met else (need_m, max(need_n, need_m))


class TargetNotMetWarning(UserWarning):
    """A run's precision targets were not all reached: ``max_reps`` or the rounds (:data:`MAX_ROUNDS`) stopped
    it.  The rows in question have ``target_not_met`` in their ``status``."""


def target_shortfalls(
    rows: Sequence[Mapping[str, Any]], targets: Mapping[str, float]
) -> list[tuple[Mapping[str, Any], str, float, float]]:
    """``(row, measure, mcse, target)`` for every row with a targeted MCSE above its target or undefined (a
    row whose datasets all failed has none): one entry per row, its measure furthest from its target."""
    out = []
    for row in rows:
        worst = None
        for measure, target in targets.items():
            mcse = float(row[f"{measure}_mcse"])
            ratio = mcse / target if math.isfinite(mcse) else math.inf
            if ratio > 1 and (worst is None or ratio > worst[0]):
                worst = (ratio, measure, mcse, target)
        if worst is not None:
            out.append((row, *worst[1:]))
    return out


def _shortfall_record(short: Sequence[tuple[Mapping[str, Any], str, float, float]]) -> dict[str, Any]:
    """What the provenance records of the targets not met: how many rows, and the worst one."""
    if not short:
        return {"rows": 0}
    row, measure, mcse, target = max(short, key=lambda s: s[2] / s[3] if math.isfinite(s[2]) else math.inf)
    return {
        "rows": len(short),
        "worst": {"scenario": row["scenario"], "statistic": row["statistic"], "method": row["method"],
                  "measure": measure, "mcse": mcse if math.isfinite(mcse) else None, "target": target},
    }  # fmt: skip


def shortfall_message(record: Mapping[str, Any]) -> str:
    """One sentence on the targets not met (the provenance's ``targets_not_met``), or ``""``."""
    if not record or not record.get("rows"):
        return ""
    w = record["worst"]
    mcse = "undefined" if w["mcse"] is None else f"{w['mcse']:.4g}"
    return (
        f"{record['rows']} row(s) did not reach their precision target (status `target_not_met`); the worst: "
        f"{w['measure']} MCSE {mcse} against the target {w['target']:g} ({w['scenario']}, {w['statistic']}, "
        f"{w['method']}); raise `max_reps` (--max-reps) to reach it"
    )


def _whole_blocks(n: int) -> int:
    """``n`` rounded up to whole blocks of :data:`BLOCK_REPS` datasets."""
    return -(-n // BLOCK_REPS) * BLOCK_REPS


def _grow_for_targets(
    jobs: Sequence[Job],
    sizes: dict[str, tuple[int, int]],
    coverage_of,
    targets: Mapping[str, float],
    max_reps: int,
    n_boot: int,
) -> bool:
    """Give every job whose targeted MCSEs are not met the allocation :func:`target_allocation` asks, at most
    :data:`MAX_GROWTH` times its bootstrap phase per round (a small first round's shares are noisy: the next
    round re-estimates them from more) and ``max_reps``; the cheap phase keeps its allocated ratio.  True if
    any grew."""
    grown = False
    for j in jobs:
        m, big_n = sizes[j.key]
        need = target_allocation(coverage_of(j), m, big_n, targets, COST_RATIO_PER_RESAMPLE * n_boot)
        if need is None or m >= max_reps and big_n >= need[1]:
            continue
        if need[0] <= m and need[1] <= big_n:  # unmet, yet asking for nothing more (rounding): one step more
            need = (m + FINAL_GROWTH_STEP, big_n)
        new_m = min(need[0], math.ceil(MAX_GROWTH * m), max_reps)
        # a capped round will grow again: whole blocks; the last one only what it needs
        step = BLOCK_REPS if need[0] > new_m else FINAL_GROWTH_STEP
        new_m = min(max(-(-new_m // step) * step, m), max_reps)
        scale = new_m / need[0] if need[0] > 0 else 1.0
        new_n = max(big_n, _whole_blocks(max(math.ceil(need[1] * min(scale, 1.0)), new_m)))
        if (new_m, new_n) != (m, big_n):
            sizes[j.key] = (new_m, new_n)
            grown = True
    return grown


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What a run computes besides its identity: the units (scenario x statistic), their sizes, the methods
    and the precision targets (all checked; :func:`plan_run`)."""

    scenarios: tuple[Scenario, ...]
    jobs: tuple[Job, ...]
    n_reps: int
    n_reps_cheap: int
    #: Each scenario's first-round ``(n_reps, n_reps_cheap)`` (``scenario_sizes`` overrides the run's).
    per_scenario: dict[str, tuple[int, int]]
    #: The interval methods of each statistic.
    methods_of: dict[str, tuple[str, ...]]
    targets: dict[str, float]
    target_mcse: float | None
    max_reps: int
    keep_replicates: bool
    scenario_sizes: Mapping[str, tuple[int, int]] | None
    #: The method the relative widths and precisions compare with.
    reference_method: str = DEFAULT_REFERENCE_METHOD


def plan_run(
    scenarios: Sequence[Scenario],
    *,
    n_reps: int,
    n_boot: int,
    confidence_level: float,
    methods: Sequence[str] | None,
    seed: int | None,
    keep_replicates: bool,
    target_mcse: float | None,
    max_reps: int,
    n_reps_cheap: int | None,
    control_variates: bool,
    truth_mcse: float | None,
    scenario_sizes: Mapping[str, tuple[int, int]] | None,
    statistics: str | Statistic | Sequence[str | Statistic] | None,
    targets: Mapping[str, float] | Sequence[str] | str | None,
    reference_method: str = DEFAULT_REFERENCE_METHOD,
) -> tuple[RunIdentity, RunPlan]:
    """Check a run's arguments (as :func:`run_all_ci_scenarios` takes them) before anything is computed or
    written: what defines its numbers (:class:`RunIdentity`) and what it computes (:class:`RunPlan`)."""
    scenarios = check_scenarios(scenarios)
    max_reps = check_positive_int(max_reps, "max_reps")
    target_mcse = _check_fraction(target_mcse, "target_mcse", 0.5)
    targets = check_targets(targets)
    if target_mcse is not None:
        if targets.get("coverage", target_mcse) != target_mcse:
            raise RunError(f"`target_mcse` {target_mcse} and the coverage target {targets['coverage']} differ")
        targets = check_targets({**targets, "coverage": target_mcse})
    if targets and n_reps > max_reps:
        raise RunError(f"`n_reps` {n_reps} (the first round) exceeds `max_reps` {max_reps}: the targets could only "
                       "be met by shrinking; raise `max_reps` or lower `n_reps`")  # fmt: skip
    truth_mcse = _check_fraction(truth_mcse, "truth_mcse", 0.5)
    if truth_mcse is None:
        # only the measures judged against the truth ask for a more precise one
        against_truth = [v for k, v in targets.items() if k in TRUTH_MEASURES]
        truth_mcse = min(DEFAULT_TRUTH_MCSE, min(against_truth) / 4) if against_truth else DEFAULT_TRUTH_MCSE
    identity = RunIdentity(
        n_boot=check_positive_int(n_boot, "n_boot", minimum=MIN_N_BOOT),
        confidence_level=check_confidence_level(confidence_level),
        seed=int(check_seed(resolve_seed(seed))),
        control_variates=check_bool(control_variates, "control_variates"),
        truth_mcse=truth_mcse,
        statistics=(names := check_statistics(statistics)),
        statistic_digests=statistic_digests(names),
    )
    if targets and n_reps_cheap is None and identity.control_variates:
        # the first round's cheap phase in whole blocks, so that growing it continues its last unit
        # (_cheap_start) instead of computing it again
        n_reps_cheap = _whole_blocks(math.ceil(n_reps * default_cheap_ratio(identity.n_boot)))
    n_reps, n_reps_cheap = _check_sizes(n_reps, n_reps_cheap, identity.n_boot, identity.control_variates)
    methods_of = check_statistic_methods(methods, identity.statistics)
    reference_method = check_reference_method(reference_method, identity.statistics)
    small = min(scenarios, key=lambda s: s.n)
    for stat in map(get_statistic, identity.statistics):
        if small.n < stat.min_n:
            raise RunError(f"{stat.label} intervals need n >= {stat.min_n}; scenario {small.key!r} has n = {small.n}")
    validate_statistics(identity.statistics, scenarios[0], n_max=max(s.n for s in scenarios))
    per_scenario = {s.key: (n_reps, n_reps_cheap) for s in scenarios} | _check_scenario_sizes(
        scenario_sizes, scenarios, identity.n_boot, identity.control_variates
    )
    plan = RunPlan(
        scenarios=tuple(scenarios), jobs=tuple(Job(s, stat) for s in scenarios for stat in identity.statistics),
        n_reps=n_reps, n_reps_cheap=n_reps_cheap, per_scenario=per_scenario, methods_of=methods_of, targets=targets,
        target_mcse=target_mcse, max_reps=max_reps, keep_replicates=check_bool(keep_replicates, "keep_replicates"),
        scenario_sizes=scenario_sizes, reference_method=reference_method,
    )  # fmt: skip
    return identity, plan


#: What the parent holds per unit of work (its task, record and bookkeeping), in bytes: an upper bound.
PARENT_BYTES_PER_UNIT = 4096
#: A stored bootstrap block and cheap unit on disk, and one replicate row (``--replicates``), in bytes:
#: upper bounds of what the runs measured (about 20 KB, 6 KB and 230 bytes).
BOOT_BLOCK_BYTES, CHEAP_UNIT_BYTES, REPLICATE_ROW_BYTES = 32_768, 12_288, 300


#: Bytes per observation of one calibration dataset (:func:`~simulation.models.generators.calibrate_tied_grid`
#: holds its ``DEFAULT_N_CAL`` datasets at once: 70-74 measured at n = 1,000 and 4,000).
CALIBRATION_BYTES_PER_OBSERVATION = 80
#: Bytes per observation of one dataset of a measured truth's batch
#: (:data:`~simulation.statistics.custom.TRUTH_BATCH` datasets at once: 43 measured for Pearson at n = 1,000).
TRUTH_BYTES_PER_OBSERVATION = 48


def calibration_memory(n: int) -> float:
    """Bytes a tied scenario's calibration at ``n`` holds at most (its datasets:
    :func:`~simulation.models.generators.draws_at`)."""
    return draws_at(DEFAULT_N_CAL, n) * n * CALIBRATION_BYTES_PER_OBSERVATION


def block_memory(n_datasets: int, n: int) -> float:
    """Bytes one block of a phase with ``n_datasets`` datasets of ``n`` pairs holds (at most
    :data:`BLOCK_REPS` datasets, drawn at once: x, y and their rank inputs)."""
    return min(BLOCK_REPS, n_datasets) * n * CHEAP_BYTES_PER_OBSERVATION


def resource_estimate(identity: RunIdentity, plan: RunPlan, execution: Execution) -> tuple[float, float]:
    """``(memory, disk)`` in bytes that a run with these sizes needs at most, computed from the sizes alone
    (nothing is allocated): the parent's bookkeeping per unit of work, and per worker the largest of a
    bootstrap of one dataset (its resample indices, ``n_boot x n``, and replicates with their controls,
    ``n_boot x 10``) or its chunk budget, a block's datasets (at most ``BLOCK_REPS``), a cheap unit's group of
    blocks (one block at least), a tied scenario's calibration (``DEFAULT_N_CAL`` datasets) and a measured truth's
    batch (Kendall's, Pearson's or a user's: ``TRUTH_BATCH`` datasets), both in fewer datasets of as many pairs
    above n = 2,000 (:func:`~simulation.models.generators.draws_at`); the blocks on disk, and the replicate
    rows with ``keep_replicates``."""
    units = disk = 0.0
    cheap = False
    block_data = 0.0  # a block's datasets (x, y and their rank inputs), in either phase
    for job in plan.jobs:
        n_reps, n_cheap = plan.per_scenario[job.scenario.key]
        boot, cheap_units = math.ceil(n_reps / BLOCK_REPS), math.ceil((n_cheap or 0) / (CHEAP_UNIT_BLOCKS * BLOCK_REPS))
        cheap = cheap or cheap_units > 0
        block_data = max(block_data, block_memory(max(n_reps, n_cheap or 0), job.scenario.n))
        units += boot + cheap_units
        disk += boot * BOOT_BLOCK_BYTES + cheap_units * CHEAP_UNIT_BYTES
        if plan.keep_replicates:
            disk += n_reps * len(plan.methods_of.get(job.statistic, ALL_METHODS)) * REPLICATE_ROW_BYTES
    n_max = max(s.n for s in plan.scenarios)
    per_dataset = identity.n_boot * 8.0 * (n_max + 2 + N_RESAMPLE_CONTROLS)
    workers = (os.cpu_count() or 1) if execution.n_jobs < 0 else execution.n_jobs
    per_worker = max(per_dataset, min(execution.chunk_bytes, per_dataset * BLOCK_REPS), block_data)
    if cheap:  # a group holds one block at least
        per_worker = max(per_worker, min(CHEAP_GROUP_BYTES, CHEAP_UNIT_BLOCKS * block_data))
    n_tied = max((s.n for s in plan.scenarios if s.tied), default=0)
    per_worker = max(per_worker, calibration_memory(n_tied))
    if any(job.statistic != "spearman" for job in plan.jobs):
        per_worker = max(per_worker, draws_at(TRUTH_BATCH, n_max) * n_max * TRUTH_BYTES_PER_OBSERVATION)
    return units * PARENT_BYTES_PER_UNIT + workers * per_worker, disk


class _Run:
    """One run in progress: its block store, each job's calibration, truth and work-unit context, its sizes
    (grown round by round for targets) and its rows (memoized per size)."""

    def __init__(self, identity: RunIdentity, plan: RunPlan, execution: Execution, store: BlockStore,
                 out: Path | None) -> None:  # fmt: skip
        self.identity, self.plan, self.execution, self.store, self.out = identity, plan, execution, store, out
        self.known = calibrate_all(plan.jobs, execution, out, identity.truth_mcse)
        self.contexts = {
            j.key: UnitContext(
                identity.n_boot, identity.confidence_level, identity.seed, *self.known[j.key],
                batch_bootstrap=execution.batch_bootstrap, chunk_bytes=execution.chunk_bytes,
                keep_replicates=plan.keep_replicates, control_variates=identity.control_variates,
                statistic=portable(j.statistic),
            )
            for j in plan.jobs
        }  # fmt: skip
        self.sizes = {j.key: plan.per_scenario[j.scenario.key] for j in plan.jobs}
        self.computed = 0
        #: Code changes a resume was allowed across (:func:`~simulation.infra.storage.prepare_output`).
        self.code_changes: list[dict[str, Any]] = []
        #: The study's aims, for the ADEMP report (:func:`~simulation.models.scenarios.study_aims`).
        self.aims: str | None = None
        self._merged: dict = {}  # each job's records merged so far (see _merged)
        self._rows_at: dict[str, tuple[tuple[int, int], list[dict[str, Any]]]] = {}  # each job's rows, at its sizes

    def rows_of(self, j: Job) -> list[dict[str, Any]]:
        """A job's rows at its current sizes; computed again only when they change (rows are a pure
        function of the units, so a job met in an earlier round is not estimated again)."""
        if j.key in self._rows_at and self._rows_at[j.key][0] == self.sizes[j.key]:
            return self._rows_at[j.key][1]
        boot, cheap = _merged(self.store, j, *self.sizes[j.key], memo=self._merged)
        rows = scenario_rows(j.scenario, boot, cheap, self.identity, self.plan.methods_of[j.statistic],
                             *self.known[j.key], j.statistic, self.plan.reference_method)  # fmt: skip
        self._rows_at[j.key] = (self.sizes[j.key], rows)
        return rows

    def compute(self) -> None:
        """Every unit not yet stored; then, with targets, more datasets where a target is not met (at most
        :data:`MAX_ROUNDS` rounds, each job within ``max_reps``)."""
        jobs, store, keep = self.plan.jobs, self.store, self.plan.keep_replicates
        for _round in range(MAX_ROUNDS):
            todo = [("boot", j, b, m) for j in jobs for b, m in boot_units(self.sizes[j.key][0])]
            todo += [("cheap", j, u, m) for j in jobs for u, m in cheap_units(self.sizes[j.key][1])]
            todo = [
                (kind, j, index, size)
                for kind, j, index, size in todo
                if not all(store.has(j.key, name) for name in _unit_names(kind, index, size, keep))
            ]
            _compute_units(todo, self.contexts, self.execution, store, on_job_done=self.rows_of)
            self.computed += len(todo)
            if not self.plan.targets or not _grow_for_targets(
                jobs, self.sizes, self.rows_of, self.plan.targets, self.plan.max_reps, self.identity.n_boot
            ):
                break

    def settings(self, short: list) -> dict[str, Any]:
        """The provenance's ``settings``: what was asked and what the targets made of it."""
        plan, identity, jobs = self.plan, self.identity, self.plan.jobs
        methods = list(dict.fromkeys(m for stat in identity.statistics for m in plan.methods_of[stat]))
        return {
            "n_reps": plan.n_reps,
            "n_reps_cheap": plan.n_reps_cheap,
            "methods": list(methods),
            "reference_method": plan.reference_method,
            "target_mcse": plan.target_mcse,
            "targets": plan.targets,
            "max_reps": plan.max_reps,
            "max_rounds": MAX_ROUNDS,
            "allocation": {j.key: list(self.sizes[j.key]) for j in jobs} if plan.targets else {},
            "targets_not_met": _shortfall_record(short),
            "scenario_sizes": {key: list(plan.per_scenario[key]) for key in plan.scenario_sizes or {}},
            "keep_replicates": plan.keep_replicates,
            # where each user statistic was loaded from (its digest is in the identity)
            "statistic_sources": {
                name: get_statistic(name).source for name in identity.statistics if get_statistic(name).source
            },
        }

    def failures(self) -> pd.DataFrame:
        """The failure ledger of every job at its sizes (:data:`~simulation.study.columns.FAILURES`): one row
        per dataset, method and reason, from the units' records, in job and dataset order."""
        rows = []
        for j in self.plan.jobs:
            boot, cheap = _merged(self.store, j, *self.sizes[j.key], memo=self._merged)
            methods = {"bootstrap": BOOTSTRAP_METHODS, "cheap": get_statistic(j.statistic).asymptotic_methods}
            asked = set(self.plan.methods_of[j.statistic])  # the run's methods (--methods), as in its table
            for phase, record in (("bootstrap", boot), ("cheap", cheap)):
                rows += [(j.scenario.key, j.statistic, "estimate" if m < 0 else methods[phase][m], rep, phase,
                          LEDGER_REASONS[reason]) for rep, m, reason in record.ledger
                         if m < 0 or methods[phase][m] in asked]  # fmt: skip
        table = pd.DataFrame(rows, columns=list(column_names(FAILURES)))
        return in_order(table.astype({"replicate": np.int64}), FAILURES, FAILURES_FILE)

    def finish(self, study: str | None, started: str, settings_extra: dict[str, Any] | None) -> StudyResult:
        """The tables, their provenance and the summary, written to the results folder (if any)."""
        jobs, store = self.plan.jobs, self.store
        all_rows = [row for j in jobs for row in self.rows_of(j)]
        short = target_shortfalls(all_rows, self.plan.targets)
        if short:
            marked = {id(row) for row, *_ in short}
            all_rows = [row | {"status": add_flag(row["status"], ROW_TARGET_NOT_MET)} if id(row) in marked else row
                        for row in all_rows]  # fmt: skip
        coverage = _coverage_frame(all_rows)
        replicates = None
        if self.plan.keep_replicates:
            replicates = pd.concat(
                [store.get(j.key, replicates_name(b, m)) for j in jobs for b, m in boot_units(self.sizes[j.key][0])],
                ignore_index=True,
            )
        provenance = provenance_record(
            study,
            self.identity.as_dict(),
            started,
            settings=self.settings(short) | self.execution.as_dict() | (settings_extra or {}),
            n_scenarios=len(self.plan.scenarios),
            blocks_computed=self.computed,
            block_bytes=store.disk_bytes(),
            blocks_digest=store.digest(),
            **({"code_changes": self.code_changes} if self.code_changes else {}),
            **({"aims": self.aims} if self.aims else {}),
        )
        failures = self.failures()
        provenance["ademp"] = ademp(coverage, provenance, failures)  # the report's content, in every table's
        if short:
            warnings.warn(TargetNotMetWarning(shortfall_message(provenance["settings"]["targets_not_met"])),
                          stacklevel=3)  # fmt: skip
        if self.out is not None:
            write_parquet(self.out / COVERAGE_FILE, coverage, provenance)
            write_parquet(self.out / FAILURES_FILE, failures, provenance)
            if replicates is not None:
                write_parquet(self.out / REPLICATES_FILE, replicates, provenance)
            write_text(self.out / SUMMARY_FILE, summary_markdown(coverage, provenance))
            write_text(self.out / REPORT_FILE, ademp_markdown(provenance["ademp"]))
        return StudyResult(coverage=coverage, replicates=replicates, provenance=provenance, out=self.out,
                           failures=failures)  # fmt: skip


def run_all_ci_scenarios(
    scenarios: Sequence[Scenario],
    *,
    n_reps: int | None = None,
    n_boot: int | None = None,
    confidence_level: float | None = None,
    methods: Sequence[str] | None = None,
    n_jobs: int = -1,
    seed: int | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    allow_code_change: bool = False,
    keep_replicates: bool = False,
    target_mcse: float | None = None,
    max_reps: int = DEFAULT_MAX_REPS,
    n_reps_cheap: int | None = None,
    control_variates: bool = True,
    truth_mcse: float | None = None,
    scenario_sizes: Mapping[str, tuple[int, int]] | None = None,
    batch_bootstrap: bool = True,
    chunk_bytes: int = 64 * 2**20,
    progress: bool = False,
    study: str | None = None,
    aims: str | None = None,
    settings_extra: dict[str, Any] | None = None,
    backend: str = "local",
    scheduler: str | None = None,
    statistics: str | Statistic | Sequence[str | Statistic] | None = None,
    targets: Mapping[str, float] | Sequence[str] | str | None = None,
    wait_for_lock: float | None = 0.0,
    reference_method: str = DEFAULT_REFERENCE_METHOD,
) -> StudyResult:
    """Run an interval-coverage study: every scenario, both phases, all interval methods.

    Parameters
    ----------
    scenarios : sequence of Scenario
        The study (:func:`simulation.models.scenarios.load_study`); keys must be unique.
    n_reps : int, optional
        Bootstrapped datasets per scenario (every interval computed).  Default: ``N_REPS`` of the settings
        (200 in the shipped ``config.py``).
    n_boot : int, optional
        Bootstrap resamples per dataset.  Default: ``N_BOOT`` of the settings (1000).
    confidence_level : float, optional
        Two-sided level of every interval.  Default: ``CONFIDENCE_LEVEL`` of the settings (0.95).
    methods : sequence of str, optional
        Methods for the coverage table (all are computed): a subset of those
        the statistics define (:func:`statistic_methods`; :data:`ALL_METHODS`
        for Spearman).
    n_jobs : int
        Worker processes (joblib convention: -1 = all cores).  Does not change results.
    seed : int, optional
        Base seed; each scenario's streams derive from it and the scenario key.  Default: ``SEED`` of the
        settings (20180201).
    out : path, optional
        Results folder: ``coverage.parquet``, ``summary.md``, ``manifest.json``,
        ``calibrations.json`` and ``blocks/`` (compact records that make
        resuming possible) and, with ``keep_replicates``, ``replicates.parquet``.
        ``None``: nothing is written.
    resume : bool
        Reuse the blocks already in ``out`` (same settings required) and compute only the rest.
    overwrite : bool
        Delete earlier results in ``out`` first.
    keep_replicates : bool
        Also return (and write) every bootstrapped dataset's intervals.
    target_mcse : float, optional
        The coverage target: the same as ``targets={"coverage": target_mcse}``.
    targets : mapping or sequence of "measure=mcse", optional
        Precision targets (:data:`TARGET_MEASURES`; ``endpoints`` = both mean
        endpoints).  After a first round (``n_reps``, ``n_reps_cheap``), each
        scenario gets its own allocation of both phases
        (:func:`target_allocation`), growing round by round until the MCSE
        of every targeted measure of every selected method (as reported:
        control-variate where used) is at most its target, or ``max_reps``
        bootstrapped datasets are reached.  A target on coverage or a miss
        rate also sets the truth's precision to a quarter of it (the
        endpoints and width do not depend on the truth).  Deterministic and resumable;
        each scenario's allocation is in its rows (``n_reps``,
        ``n_reps_cheap``) and in the provenance (``allocation``).
    n_reps_cheap : int, optional
        Cheap-phase datasets per scenario (>= ``n_reps``).  Default: ``n_reps``
        times :func:`default_cheap_ratio` (``n_reps`` with ``control_variates``
        off).
    control_variates : bool
        Headline estimates of the bootstrap methods by the two-phase
        control-variate estimator (:mod:`simulation.study.estimators`); off: plain
        means.  The plain estimates are always in the table too.
    truth_mcse : float, optional
        Precision of a measured (``expected_sample``) truth.  Default 0.0005,
        or a quarter of ``target_mcse`` when smaller.
    batch_bootstrap, chunk_bytes : optional
        Engine path and memory bound (do not change results).
    progress : bool
        Show a progress bar with ETA on stderr.
    study, settings_extra : optional
        Recorded in the provenance.
    aims : str, optional
        What the study is for (:func:`simulation.models.scenarios.study_aims` reads it from a study file's
        ``#`` lines): the Aims of the ADEMP report, ``report.md``, which every run with ``out`` writes beside
        the tables (and whose content every table's provenance holds as ``ademp``).
    backend, scheduler : optional
        ``"dask"`` and a scheduler address run the units on a Dask cluster
        (results identical to a local run); see :func:`simulation.infra.parallel.parallel_map`.
    statistics : str or sequence of str, optional
        ``spearman`` (the default), ``kendall_b``, or both (a list, or
        ``"spearman,kendall_b"``): a scenario x statistic x method is one row,
        with a ``statistic`` column.  Every statistic sees the same datasets
        and resamples (a paired comparison); the generators stay calibrated
        on their Spearman target, and each statistic has its own truth
        (:meth:`simulation.statistics.statistic.Statistic.truth`).

    wait_for_lock : float or None
        Seconds to wait when another run holds ``out`` (one writer per
        folder, :func:`simulation.infra.storage.hold_folder`); 0 (default): refuse
        at once, naming the holder; None: wait as long as it takes.
    allow_code_change : bool
        Let ``resume`` continue a folder whose results were computed by another package source (its
        manifest records the source digest): only for a change that cannot alter the numbers; the change
        is recorded in the manifest and the tables' provenance (``code_changes``).  Without it such a
        resume is refused.
    reference_method : str, default "percentile"
        The interval method each row's ``relative_width`` and ``relative_precision`` compare with (one of the
        run's statistics' methods; a row whose statistic lacks it gets NaN there).  It changes no block: a
        resume with another reference rewrites the tables from the stored blocks.

    Returns
    -------
    StudyResult

    Raises
    ------
    RunError
        Bad arguments, an output folder holding results from other settings
        (or any results, without ``resume``/``overwrite``), or an unwritable folder.
    """
    started = now()
    if n_reps is None or n_boot is None or confidence_level is None:
        settings = load_settings()
        n_reps = settings.N_REPS if n_reps is None else n_reps
        n_boot = settings.N_BOOT if n_boot is None else n_boot
        confidence_level = settings.CONFIDENCE_LEVEL if confidence_level is None else confidence_level
    identity, plan = plan_run(
        scenarios, n_reps=n_reps, n_boot=n_boot, confidence_level=confidence_level, methods=methods, seed=seed,
        keep_replicates=keep_replicates, target_mcse=target_mcse, max_reps=max_reps, n_reps_cheap=n_reps_cheap,
        control_variates=control_variates, truth_mcse=truth_mcse, scenario_sizes=scenario_sizes,
        statistics=statistics, targets=targets, reference_method=reference_method,
    )  # fmt: skip
    execution = Execution(n_jobs, backend, scheduler, batch_bootstrap, chunk_bytes, progress)
    out_path = Path(out) if out is not None else None
    check_resources(f"a run of {identity.n_boot} resamples x {plan.n_reps} datasets x {len(plan.jobs)} scenario(s) "
                    "and statistic(s)", *resource_estimate(identity, plan, execution), out_path)  # fmt: skip
    with hold_folder(out_path, wait_for_lock):
        changes = []
        if out_path is not None:
            changes = prepare_output(out_path, identity.as_dict(), resume=resume, overwrite=overwrite,
                                     owned=OWNED_FILES, allow_code_change=allow_code_change)  # fmt: skip
        run = _Run(identity, plan, execution, BlockStore(out_path, settings_seal(identity.as_dict())), out_path)
        run.code_changes, run.aims = changes, aims
        # a damaged block (a crash, a copy cut short), one edited after it was written, or one left by other
        # settings (a folder whose manifest was removed) is computed again, with a warning naming it
        run.store.drop_corrupt()
        run.compute()
        return run.finish(study, started, settings_extra)
