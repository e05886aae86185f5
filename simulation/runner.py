"""Study runner: what to compute for an interval-coverage study, and how the tables are assembled.

Units of work
-------------
A scenario's replicates are cut into blocks of :data:`BLOCK_REPS`.  Block
``b`` of scenario ``s`` draws its datasets from
``child_seed(child_seed(root, 0), b)`` and its bootstrap resamples from
``child_seed(child_seed(root, 1), b)``, with ``root = scenario_seed(seed, s)``
(a hash of the scenario's key, never its position).  A block therefore
depends on nothing but ``(seed, scenario, b)`` and the result-defining
settings (:class:`RunIdentity`), so tables are bit-identical for any
``n_jobs``, any order, with scenarios added or removed, and after a resume.
Datasets never depend on ``n_boot`` (the bootstrap has its own stream), and,
because generators draw dataset by dataset, the first ``m`` replicates of a
run are those of any longer run: raising ``n_reps`` (or ``--target-mcse``)
only adds replicates.

Three concerns, three homes: this module decides *what* to compute (blocks,
rounds for ``target_mcse``) and assembles the tables from the raw replicate
results of each scenario (never by averaging summaries);
:mod:`simulation.parallel` decides *where* it runs (this process, worker
processes, a Dask cluster); :mod:`simulation.storage` keeps *what exists*
(block files written atomically by the parent, the manifest, Parquet with
provenance).  A run killed at any moment leaves only whole block files, so a
rerun with ``resume=True`` computes only the missing blocks and ends with the
same tables as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulation import __version__, bootstrap
from simulation._validation import (
    RunError,
    check_confidence_level,
    check_n_jobs,
    check_positive_int,
    check_seed,
)
from simulation.bootstrap import bootstrap_ci_averaged, default_chunk_size
from simulation.generators import Calibration
from simulation.intervals import BOOTSTRAP_METHODS, FISHER_Z_VARIANCES, STATUS_OK, fisher_z_ci
from simulation.metrics import performance_from_arrays, reps_for_coverage_mcse
from simulation.parallel import check_backend, parallel_map
from simulation.report import summary_markdown
from simulation.scenarios import Scenario, check_scenarios, scenario_seed
from simulation.seeding import child_seed
from simulation.storage import (
    BlockStore,
    now,
    prepare_output,
    provenance_record,
    read_json,
    read_provenance,
    write_json,
    write_parquet,
    write_text,
)

__all__ = [
    "ALL_METHODS",
    "ASYMPTOTIC_METHODS",
    "BLOCK_REPS",
    "Execution",
    "RunError",
    "RunIdentity",
    "StudyResult",
    "check_methods",
    "coverage_table",
    "read_provenance",
    "run_all_ci_scenarios",
    "run_block",
]

#: Replicates per block: part of a run's identity (it fixes which stream each dataset uses).
BLOCK_REPS = 500
#: Asymptotic interval methods, one per Fisher-z variance.
ASYMPTOTIC_METHODS = tuple(f"fisher_z_{name}" for name in FISHER_Z_VARIANCES)
#: Every interval method, in table order.
ALL_METHODS = (*BOOTSTRAP_METHODS, *ASYMPTOTIC_METHODS)
#: Status of an asymptotic interval whose estimate is NaN (constant x or y).
STATUS_NAN_ESTIMATE = "nan_estimate"
#: Version of the on-disk layout (manifest, blocks).
FORMAT_VERSION = 1
#: Default cap on replicates per scenario for ``target_mcse``.
DEFAULT_MAX_REPS = 20_000
#: Rounds of ``target_mcse`` growth at most.
MAX_ROUNDS = 8

COVERAGE_FILE = "coverage.parquet"
REPLICATES_FILE = "replicates.parquet"
SUMMARY_FILE = "summary.md"
CALIBRATIONS_FILE = "calibrations.json"
OWNED_FILES = (COVERAGE_FILE, REPLICATES_FILE, SUMMARY_FILE, CALIBRATIONS_FILE)

REPLICATE_COLUMNS = ("scenario", *bootstrap.REPLICATE_COLUMNS)


@dataclasses.dataclass(frozen=True)
class RunIdentity:
    """The settings that define a run's numbers: results with different identities never mix."""

    n_boot: int
    confidence_level: float
    seed: int
    block_reps: int = BLOCK_REPS
    format_version: int = FORMAT_VERSION
    package_version: str = __version__

    def __post_init__(self) -> None:
        check_positive_int(self.n_boot, "n_boot")
        check_confidence_level(self.confidence_level)
        check_seed(self.seed)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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


# --------------------------------------------------------------------------
# One block (runs in a worker)
# --------------------------------------------------------------------------
def run_block(
    scenario: Scenario,
    block: int,
    n_block: int,
    identity: RunIdentity,
    *,
    batch_bootstrap: bool = True,
    chunk_bytes: int = 64 * 2**20,
    calibration: Calibration | None = None,
) -> pd.DataFrame:
    """Replicate results (all methods) of block ``block``: its first ``n_block`` replicates.

    ``calibration`` is the scenario's (computed once by the parent's run, so
    that workers do not each recalibrate); ``None`` computes it here.

    Returns
    -------
    pandas.DataFrame
        :data:`REPLICATE_COLUMNS`, replicate-major, methods in :data:`ALL_METHODS` order;
        ``rep`` is the replicate's index within the scenario.
    """
    root = scenario_seed(identity.seed, scenario)
    x, y = scenario.generate(n_block, child_seed(child_seed(root, 0), block), calibration=calibration)
    boot = bootstrap_ci_averaged(
        x,
        y,
        n_boot=identity.n_boot,
        confidence_level=identity.confidence_level,
        seed=child_seed(child_seed(root, 1), block),
        batch_bootstrap=batch_bootstrap,
        chunk_size=default_chunk_size(identity.n_boot, scenario.n, chunk_bytes),
        summarize=False,
    )
    table = boot.replicates
    n_boot_methods = len(BOOTSTRAP_METHODS)
    rho_hat = table["rho_hat"].to_numpy()[::n_boot_methods]
    asymptotic = []
    for name in FISHER_Z_VARIANCES:
        lower, upper = fisher_z_ci(
            rho_hat, scenario.n, confidence_level=identity.confidence_level, variance=name
        )
        asymptotic.append((f"fisher_z_{name}", lower, upper))
    n_methods = len(ALL_METHODS)
    first = block * identity.block_reps
    status_boot = table["status"].to_numpy().reshape(n_block, n_boot_methods)
    status_asym = np.where(np.isnan(rho_hat), STATUS_NAN_ESTIMATE, STATUS_OK)

    def grid(boot_values: np.ndarray, asym_values: list[np.ndarray]) -> np.ndarray:
        return np.column_stack([boot_values.reshape(n_block, n_boot_methods), *asym_values]).ravel()

    nan = np.full(n_block, np.nan)
    return pd.DataFrame(
        {
            "scenario": scenario.key,
            "rep": np.repeat(np.arange(first, first + n_block), n_methods),
            "method": np.tile(np.array(ALL_METHODS), n_block),
            "rho_hat": np.repeat(rho_hat, n_methods),
            "ci_lower": grid(table["ci_lower"].to_numpy(), [a[1] for a in asymptotic]),
            "ci_upper": grid(table["ci_upper"].to_numpy(), [a[2] for a in asymptotic]),
            "status": np.column_stack([status_boot, *[status_asym] * len(asymptotic)]).ravel(),
            "n_boot_valid": grid(
                table["n_boot_valid"].to_numpy().astype(np.float64), [nan] * len(asymptotic)
            ),
            "z0": grid(table["z0"].to_numpy(), [nan] * len(asymptotic)),
            "acceleration": grid(table["acceleration"].to_numpy(), [nan] * len(asymptotic)),
        }
    )


# --------------------------------------------------------------------------
# Calibrations (computed once, cached beside the results)
# --------------------------------------------------------------------------
def _calibrate_one(scenario: Scenario) -> Calibration:
    return scenario.calibration()


def calibrate_all(
    scenarios: Sequence[Scenario], execution: Execution, out: Path | None
) -> dict[str, Calibration]:
    """Each scenario's calibration, computed once (in parallel) and kept in ``<out>/calibrations.json``.

    The file is the on-disk calibration cache: a resumed run reads it instead
    of recalibrating.  Values round-trip exactly through JSON (``repr`` floats);
    an unreadable cache is recomputed (calibration is deterministic).
    """
    path = out / CALIBRATIONS_FILE if out is not None else None
    known: dict[str, Calibration] = {}
    cached = read_json(path) if path is not None and path.exists() else None
    try:
        known = {k: Calibration(*v) for k, v in (cached or {}).get("calibrations", {}).items()}
    except (AttributeError, TypeError):
        known = {}
    missing = [s for s in scenarios if s.key not in known]

    def keep(i: int, cal: Calibration) -> None:
        known[missing[i].key] = Calibration(*cal)

    n_jobs = execution.n_jobs if execution.backend == "local" else 1
    parallel_map(_calibrate_one, [((s,), {}) for s in missing], n_jobs=n_jobs, progress=False, on_result=keep)
    if path is not None and missing:
        write_json(path, {"calibrations": {k: list(v) for k, v in sorted(known.items())}})
    return known


# --------------------------------------------------------------------------
# Blocks: which exist, which to compute
# --------------------------------------------------------------------------
def _n_blocks(n_reps: int, block_reps: int) -> list[int]:
    """Replicates in each block of a scenario with ``n_reps`` replicates."""
    full, rest = divmod(n_reps, block_reps)
    return [block_reps] * full + ([rest] if rest else [])


def _block_name(block: int, n_block: int) -> str:
    return f"b{block:06d}_m{n_block}"


def _blocks_of(n_reps: int, identity: RunIdentity) -> list[tuple[int, int]]:
    return list(enumerate(_n_blocks(n_reps, identity.block_reps)))


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel of a block in the parent before workers start."""
    tiny = Scenario(case="warmup", generator="rank_mixing", n=12, rho=0.2, template="custom", counts=(3, 3, 3, 3))
    run_block(tiny, 0, 2, RunIdentity(n_boot=20, confidence_level=0.9, seed=0))


def _compute_blocks(
    todo: list[tuple[Scenario, int, int]],
    identity: RunIdentity,
    calibrations: dict[str, Calibration],
    execution: Execution,
    store: BlockStore,
) -> None:
    """Run the ``todo`` blocks; the parent stores each result as it finishes."""
    options = {"batch_bootstrap": execution.batch_bootstrap, "chunk_bytes": execution.chunk_bytes}
    calls = [((s, b, m, identity), options | {"calibration": calibrations[s.key]}) for s, b, m in todo]

    def keep(i: int, table: pd.DataFrame) -> None:
        scenario, block, n_block = todo[i]
        store.put(scenario.key, _block_name(block, n_block), table)

    parallel_map(
        run_block,
        calls,
        n_jobs=execution.n_jobs,
        progress=execution.progress,
        on_result=keep,
        backend=execution.backend,
        scheduler=execution.scheduler,
        warm_up=warm_up,
    )


def _load(store: BlockStore, scenario: Scenario, n_reps: int, identity: RunIdentity) -> pd.DataFrame:
    """A scenario's first ``n_reps`` replicate results, merged from its blocks in block order."""
    return store.get_all(scenario.key, [_block_name(b, m) for b, m in _blocks_of(n_reps, identity)])


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------
def _scenario_row(s: Scenario, calibration: Calibration) -> dict[str, Any]:
    return {
        "scenario": s.key,
        "case": s.case,
        "generator": s.generator,
        "n": s.n,
        "k": s.k if s.k is not None else (len(s.counts) if s.counts else s.n),
        "template": s.template,
        "rho": float(s.rho),
        "estimand": s.estimand,
        "rho_true": s.rho_true,
        "rho_true_mcse": calibration.mcse,
    }


def coverage_table(
    replicates_by_scenario: Iterable[tuple[Scenario, pd.DataFrame]],
    identity: RunIdentity,
    methods: Sequence[str] = ALL_METHODS,
    calibrations: dict[str, Calibration] | None = None,
) -> pd.DataFrame:
    """One row per scenario x method from raw replicate results (:func:`~simulation.metrics.interval_performance`)."""
    rows = []
    for scenario, reps in replicates_by_scenario:
        cal = calibrations[scenario.key] if calibrations is not None else scenario.calibration()
        base = _scenario_row(scenario, cal)
        method_of = reps["method"].to_numpy()
        rho_hat, lower, upper = (reps[c].to_numpy() for c in ("rho_hat", "ci_lower", "ci_upper"))
        ok = reps["status"].to_numpy() == STATUS_OK
        for method in methods:
            sel = method_of == method
            rows.append(
                base
                | {
                    "method": method,
                    "method_kind": "bootstrap" if method in BOOTSTRAP_METHODS else "asymptotic",
                    "confidence_level": identity.confidence_level,
                    "n_boot": identity.n_boot if method in BOOTSTRAP_METHODS else 0,
                }
                | performance_from_arrays(rho_hat[sel], lower[sel], upper[sel], ok[sel], scenario.rho_true)
            )
    table = pd.DataFrame(rows)
    return table.astype({"k": np.int64, "n": np.int64, "n_reps": np.int64, "n_failed": np.int64, "n_boot": np.int64})


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------
def check_methods(methods: Sequence[str] | None) -> tuple[str, ...]:
    """Validate a method list (``None`` = all)."""
    if methods is None:
        return ALL_METHODS
    methods = tuple(methods)
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown or not methods:
        raise RunError(f"`methods` must be a non-empty subset of {list(ALL_METHODS)}, got {list(methods)}")
    return tuple(m for m in ALL_METHODS if m in methods)


def _check_target_mcse(target_mcse: float | None) -> float | None:
    if target_mcse is not None and not (
        isinstance(target_mcse, float | int) and not isinstance(target_mcse, bool) and 0 < target_mcse < 0.5
    ):
        raise RunError(f"`target_mcse` must be a number in (0, 0.5), got {target_mcse!r}")
    return target_mcse


def _grow_for_target(
    scenarios: Sequence[Scenario],
    reps: dict[str, int],
    coverage_of: Any,
    identity: RunIdentity,
    target_mcse: float,
    max_reps: int,
) -> bool:
    """Raise ``reps`` (in whole blocks, up to ``max_reps``) of every scenario whose worst coverage MCSE
    exceeds ``target_mcse``; True when any grew."""
    grown = False
    for s in scenarios:
        table = coverage_of(s)
        worst = float(np.nanmax(table["coverage_mcse"].to_numpy(), initial=0.0))
        if worst > target_mcse and reps[s.key] < max_reps:
            p = table["coverage"].to_numpy()
            # the largest p (1 - p) over methods sets the replicates needed (Morris et al. 2019, eq. 5)
            p_worst = float(p[np.nanargmax(p * (1 - p))])
            need = max(reps_for_coverage_mcse(target_mcse, p_worst), reps[s.key] + 1)
            whole_blocks = -(-need // identity.block_reps) * identity.block_reps
            reps[s.key] = min(whole_blocks, max_reps)
            grown = True
    return grown


def run_all_ci_scenarios(
    scenarios: Sequence[Scenario],
    *,
    n_reps: int,
    n_boot: int,
    confidence_level: float = 0.95,
    methods: Sequence[str] | None = None,
    n_jobs: int = -1,
    seed: int = 0,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    keep_replicates: bool = False,
    target_mcse: float | None = None,
    max_reps: int = DEFAULT_MAX_REPS,
    batch_bootstrap: bool = True,
    chunk_bytes: int = 64 * 2**20,
    progress: bool = False,
    study: str | None = None,
    settings_extra: dict[str, Any] | None = None,
    backend: str = "local",
    scheduler: str | None = None,
) -> StudyResult:
    """Run an interval-coverage study: every scenario, ``n_reps`` datasets, all interval methods.

    Parameters
    ----------
    scenarios : sequence of Scenario
        The study (:func:`simulation.scenarios.load_study`); keys must be unique.
    n_reps, n_boot : int
        Datasets per scenario and bootstrap resamples per dataset.
    confidence_level : float
        Two-sided level of every interval.
    methods : sequence of str, optional
        Subset of :data:`ALL_METHODS` for the coverage table (all are computed).
    n_jobs : int
        Worker processes (joblib convention: -1 = all cores).  Does not change results.
    seed : int
        Base seed; each scenario's stream derives from it and the scenario key.
    out : path, optional
        Results folder: ``coverage.parquet``, ``summary.md``, ``manifest.json``,
        ``blocks/`` (raw replicate results, which make resuming possible) and,
        with ``keep_replicates``, ``replicates.parquet``.  ``None``: nothing is written.
    resume : bool
        Reuse the blocks already in ``out`` (same settings required) and compute only the rest.
    overwrite : bool
        Delete earlier results in ``out`` first.
    keep_replicates : bool
        Also return (and write) every replicate's intervals.
    target_mcse : float, optional
        Add replicate blocks to each scenario until the coverage MCSE of
        every method is below this (estimated from the coverage so far), up
        to ``max_reps`` replicates.  Deterministic: blocks are seeded by index.
    batch_bootstrap, chunk_bytes : optional
        Engine path and memory bound (do not change results).
    progress : bool
        Show a progress bar with ETA on stderr.
    study, settings_extra : optional
        Recorded in the provenance.
    backend, scheduler : optional
        ``"dask"`` and a scheduler address run the blocks on a Dask cluster
        (results identical to a local run); see :func:`simulation.parallel.parallel_map`.

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
    scenarios = check_scenarios(scenarios)
    n_reps = check_positive_int(n_reps, "n_reps")
    max_reps = check_positive_int(max_reps, "max_reps")
    identity = RunIdentity(
        n_boot=check_positive_int(n_boot, "n_boot"),
        confidence_level=check_confidence_level(confidence_level),
        seed=int(check_seed(seed)),
    )
    methods = check_methods(methods)
    execution = Execution(n_jobs, backend, scheduler, batch_bootstrap, chunk_bytes, progress)
    target_mcse = _check_target_mcse(target_mcse)
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        prepare_output(out_path, identity.as_dict(), resume=resume, overwrite=overwrite, owned=OWNED_FILES)
    store = BlockStore(out_path)
    calibrations = calibrate_all(scenarios, execution, out_path)

    def coverage_of(s: Scenario) -> pd.DataFrame:
        return coverage_table([(s, _load(store, s, reps[s.key], identity))], identity, methods, calibrations)

    reps = {s.key: n_reps for s in scenarios}
    computed = 0
    for _round in range(MAX_ROUNDS):
        todo = [
            (s, b, m)
            for s in scenarios
            for b, m in _blocks_of(reps[s.key], identity)
            if not store.has(s.key, _block_name(b, m))
        ]
        _compute_blocks(todo, identity, calibrations, execution, store)
        computed += len(todo)
        if target_mcse is None or not _grow_for_target(scenarios, reps, coverage_of, identity, target_mcse, max_reps):
            break

    # one scenario's replicates in memory at a time (unless they are to be kept)
    parts, kept = [], []
    for s in scenarios:
        table = _load(store, s, reps[s.key], identity)
        parts.append(coverage_table([(s, table)], identity, methods, calibrations))
        if keep_replicates:
            kept.append(table)
    coverage = pd.concat(parts, ignore_index=True)
    replicates = pd.concat(kept, ignore_index=True) if keep_replicates else None
    settings = {"n_reps": n_reps, "methods": list(methods), "target_mcse": target_mcse, "max_reps": max_reps}
    provenance = provenance_record(
        study,
        identity.as_dict(),
        started,
        settings=settings | execution.as_dict() | (settings_extra or {}),
        n_scenarios=len(scenarios),
        blocks_computed=computed,
    )
    if out_path is not None:
        write_parquet(out_path / COVERAGE_FILE, coverage, provenance)
        if replicates is not None:
            write_parquet(out_path / REPLICATES_FILE, replicates, provenance)
        write_text(out_path / SUMMARY_FILE, summary_markdown(coverage, provenance))
    return StudyResult(coverage=coverage, replicates=replicates, provenance=provenance, out=out_path)
