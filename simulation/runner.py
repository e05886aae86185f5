"""Study runner: scenarios x replicate blocks across cores, resumable, coverage tables in Parquet.

Units of work
-------------
A scenario's replicates are cut into blocks of :data:`BLOCK_REPS`.  Block
``b`` of scenario ``s`` draws its datasets from
``child_seed(child_seed(root, 0), b)`` and its bootstrap resamples from
``child_seed(child_seed(root, 1), b)``, with ``root = scenario_seed(seed, s)``
(a hash of the scenario's key, never its position).  A block therefore
depends on nothing but ``(seed, scenario, b)`` and the result-defining
settings, so tables are bit-identical for any ``n_jobs``, any order, with
scenarios added or removed, and after a resume.  Datasets never depend on
``n_boot`` (the bootstrap has its own stream), and, because generators draw
dataset by dataset, the first ``m`` replicates of a run are those of any
longer run: raising ``n_reps`` (or ``--target-mcse``) only adds replicates.

Parallelism and storage
-----------------------
Blocks fan out over joblib worker processes (one numba thread each, so
workers and numba threads never oversubscribe the cores); with one job the
parent runs every block with numba threads on all cores.  Workers only
compute; the parent writes each finished block atomically (a temporary file
renamed into place) under ``<out>/blocks/``, then assembles the tables from
the raw replicate results of each scenario (never by averaging summaries).
A run killed at any moment leaves only whole block files, so a rerun with
``resume=True`` computes only the missing blocks and ends with the same
tables as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simulation import __version__, bootstrap
from simulation._validation import check_confidence_level, check_n_jobs, check_positive_int, check_seed
from simulation.bootstrap import bootstrap_ci_averaged, default_chunk_size
from simulation.generators import Calibration
from simulation.intervals import BOOTSTRAP_METHODS, FISHER_Z_VARIANCES, STATUS_OK, fisher_z_ci
from simulation.metrics import performance_from_arrays, reps_for_coverage_mcse
from simulation.scenarios import Scenario, scenario_seed
from simulation.seeding import child_seed

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

MANIFEST = "manifest.json"
COVERAGE_FILE = "coverage.parquet"
REPLICATES_FILE = "replicates.parquet"
SUMMARY_FILE = "summary.md"
CALIBRATIONS_FILE = "calibrations.json"
BLOCKS_DIR = "blocks"
METADATA_KEY = b"simulation"

REPLICATE_COLUMNS = ("scenario", *bootstrap.REPLICATE_COLUMNS)

SCENARIO_COLUMNS = (
    "scenario", "case", "generator", "n", "k", "template", "rho", "estimand", "rho_true", "rho_true_mcse"
)  # fmt: skip


class RunError(ValueError):
    """A problem with the run's inputs or its output folder; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class RunIdentity:
    """The settings that define a run's numbers: results with different identities never mix."""

    n_boot: int
    confidence_level: float
    seed: int
    block_reps: int = BLOCK_REPS
    format_version: int = FORMAT_VERSION
    package_version: str = __version__

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
# Files
# --------------------------------------------------------------------------
def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through ``write(tmp)`` to a temporary file beside ``path``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda tmp: tmp.write_text(text))


def write_parquet(path: Path, table: pd.DataFrame, provenance: dict[str, Any] | None = None) -> None:
    """Atomically write ``table`` to Parquet, with ``provenance`` as JSON in the schema metadata."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    if provenance is not None:
        meta = dict(arrow.schema.metadata or {})
        meta[METADATA_KEY] = json.dumps(provenance, sort_keys=True, default=str).encode()
        arrow = arrow.replace_schema_metadata(meta)
    _atomic_write(path, lambda tmp: pq.write_table(arrow, tmp))


def read_provenance(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The provenance stored in a Parquet file written by the runner."""
    meta = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in meta:
        raise RunError(f"`{path}` carries no simulation provenance (not written by this package?)")
    return json.loads(meta[METADATA_KEY])


def _block_path(out: Path, scenario: Scenario, block: int, n_block: int) -> Path:
    return out / BLOCKS_DIR / scenario.key / f"b{block:06d}_m{n_block}.parquet"


def _check_out(
    out: Path,
    identity: RunIdentity,
    *,
    resume: bool,
    overwrite: bool,
    owned: tuple[str, ...] = (COVERAGE_FILE, REPLICATES_FILE, SUMMARY_FILE, CALIBRATIONS_FILE),
) -> None:
    """Prepare ``out``: refuse to mix or overwrite results unless told; write the manifest.

    ``identity`` needs ``as_dict()``; ``owned`` are the files an overwrite deletes (with ``blocks/``).
    """
    manifest = out / MANIFEST
    main_file = out / owned[0]
    if out.exists() and not out.is_dir():
        raise RunError(f"output folder `{out}` exists and is not a folder")
    if manifest.exists():
        if overwrite:
            shutil.rmtree(out / BLOCKS_DIR, ignore_errors=True)
            for name in (*owned, MANIFEST):
                (out / name).unlink(missing_ok=True)
        elif not resume:
            raise RunError(
                f"`{out}` already holds results; pass --resume to reuse and extend them, "
                "--overwrite to replace them, or choose another --out"
            )
        else:
            try:
                old = json.loads(manifest.read_text())["identity"]
            except (OSError, ValueError, KeyError) as exc:
                raise RunError(f"cannot read `{manifest}` ({exc}); use --overwrite or another --out") from None
            new = identity.as_dict()
            changed = {k: (old.get(k), v) for k, v in new.items() if old.get(k) != v}
            if changed:
                what = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
                raise RunError(
                    f"`{out}` holds results computed with other settings ({what}); rerun with the old "
                    "settings to resume, or use --overwrite or another --out"
                )
    elif main_file.exists() and not overwrite:
        raise RunError(f"`{out}` holds {owned[0]} without a manifest; use --overwrite or another --out")
    try:
        (out / BLOCKS_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create output folder `{out}`: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise RunError(f"output folder `{out}` is not writable")
    for stale in out.rglob(".*.tmp"):  # left by a killed run; never a complete file
        stale.unlink(missing_ok=True)
    if not manifest.exists():
        _write_text(manifest, json.dumps({"identity": identity.as_dict()}, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------
def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "simulation": __version__}
    for name in ("numpy", "numba", "scipy", "pandas", "pyarrow", "joblib"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - core dependencies
            out[name] = "unknown"
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------
def _n_blocks(n_reps: int, block_reps: int) -> list[int]:
    """Replicates in each block of a scenario with ``n_reps`` replicates."""
    full, rest = divmod(n_reps, block_reps)
    return [block_reps] * full + ([rest] if rest else [])


def _effective_jobs(n_jobs: int, n_units: int) -> int:
    cores = os.cpu_count() or 1
    jobs = cores + 1 + n_jobs if n_jobs < 0 else n_jobs
    return max(1, min(jobs, cores, n_units))


def _warm_up() -> None:
    """Compile (or load from numba's cache) every kernel in the parent before workers start."""
    tiny = Scenario(case="warmup", generator="rank_mixing", n=12, rho=0.2, template="custom", counts=(3, 3, 3, 3))
    run_block(tiny, 0, 2, RunIdentity(n_boot=20, confidence_level=0.9, seed=0))


def _calibrate_one(scenario: Scenario) -> Calibration:
    return scenario.calibration()


def _calibrate_all(
    scenarios: Sequence[Scenario], n_jobs: int, out: Path | None
) -> dict[str, Calibration]:
    """Each scenario's calibration, computed once (in parallel) and kept in ``<out>/calibrations.json``.

    The file is the on-disk calibration cache: a resumed run reads it instead
    of recalibrating.  Values round-trip exactly through JSON (``repr`` floats).
    """
    path = out / CALIBRATIONS_FILE if out is not None else None
    known: dict[str, Calibration] = {}
    if path is not None and path.exists():
        try:
            known = {k: Calibration(*v) for k, v in json.loads(path.read_text())["calibrations"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            known = {}  # unreadable cache: recompute (calibration is deterministic)
    missing = [s for s in scenarios if s.key not in known]

    def keep(i: int, cal: Calibration) -> None:
        known[missing[i].key] = Calibration(*cal)

    parallel_map(_calibrate_one, [((s,), {}) for s in missing], n_jobs=n_jobs, progress=False, on_result=keep)
    if path is not None and missing:
        body = {"calibrations": {k: list(v) for k, v in sorted(known.items())}}
        _write_text(path, json.dumps(body, indent=1) + "\n")
    return known


def parallel_map(
    fn: Callable[..., Any],
    calls: list[tuple[tuple, dict]],
    *,
    n_jobs: int,
    progress: bool,
    on_result: Callable[[int, Any], None],
    desc: str = "blocks",
    backend: str = "local",
    scheduler: str | None = None,
) -> None:
    """Run ``fn(*args, **kwargs)`` for each call; hand ``(index, result)`` to ``on_result`` in the parent.

    ``backend="local"``, one job: in this process, numba threads on every
    core.  More jobs: joblib worker processes, each task run with numba
    limited to ``cores // jobs`` threads (so workers and threads never
    oversubscribe).
    ``backend="dask"``: joblib's Dask backend on the distributed scheduler at
    ``scheduler`` (every worker thread runs one task with one numba thread).
    Results are handed over as they finish, in any order: callers must not
    depend on it, and the runner's callers do not (each result is a pure
    function of its call).
    """
    if not calls:
        return
    from tqdm.auto import tqdm

    check_backend(backend, scheduler)
    jobs = _effective_jobs(n_jobs, len(calls))
    bar = tqdm(total=len(calls), desc=desc, unit=desc.rstrip("s"), disable=not progress, smoothing=0.05)
    try:
        if backend == "dask":
            _dask_map(fn, calls, on_result, bar, scheduler)
            return
        if jobs == 1:
            for i, (args, kwargs) in enumerate(calls):
                on_result(i, fn(*args, **kwargs))
                bar.update()
            return
        from joblib import Parallel, delayed

        _warm_up()
        threads = max(1, (os.cpu_count() or 1) // jobs)
        tasks = (
            delayed(_indexed)(fn, i, args, kwargs, threads) for i, (args, kwargs) in enumerate(calls)
        )
        for i, result in Parallel(n_jobs=jobs, return_as="generator_unordered")(tasks):
            on_result(i, result)
            bar.update()
    finally:
        bar.close()


def _indexed(fn, i, args, kwargs, numba_threads: int):
    """Run one call in a worker with numba limited to ``numba_threads`` threads (thread-local setting)."""
    import numba

    numba.set_num_threads(numba_threads)
    return i, fn(*args, **kwargs)


BACKENDS = ("local", "dask")
#: Seconds to wait for a Dask scheduler before giving up.
SCHEDULER_TIMEOUT_S = 30


def check_backend(backend: str, scheduler: str | None) -> None:
    """Validate the execution backend (``local`` or ``dask`` with a scheduler address)."""
    if backend not in BACKENDS:
        raise RunError(f"`backend` must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "dask" and not scheduler:
        raise RunError("the dask backend needs a scheduler address (--scheduler tcp://HOST:8786)")
    if backend == "local" and scheduler:
        raise RunError("--scheduler applies only with --backend dask")


def _dask_map(fn, calls, on_result, bar, scheduler: str) -> None:
    try:
        from dask.distributed import Client
    except ImportError:
        raise RunError("the dask backend needs dask.distributed: pip install -e '.[cluster]'") from None
    from joblib import Parallel, delayed, parallel_config

    try:
        client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
    except OSError as exc:
        raise RunError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
    try:
        tasks = (
            delayed(_indexed)(fn, i, args, kwargs, 1) for i, (args, kwargs) in enumerate(calls)
        )
        with parallel_config(backend="dask"):
            for i, result in Parallel(n_jobs=-1, return_as="generator_unordered")(tasks):
                on_result(i, result)
                bar.update()
    finally:
        client.close()


def _compute_blocks(
    todo: list[tuple[Scenario, int, int]],
    identity: RunIdentity,
    *,
    calibrations: dict[str, Calibration],
    n_jobs: int,
    batch_bootstrap: bool,
    chunk_bytes: int,
    progress: bool,
    store: Callable[[Scenario, int, int, pd.DataFrame], None],
    backend: str = "local",
    scheduler: str | None = None,
) -> None:
    """Run ``todo`` blocks and hand each result to ``store`` in the parent as it finishes."""
    calls = [
        (
            (s, b, m, identity),
            {"batch_bootstrap": batch_bootstrap, "chunk_bytes": chunk_bytes, "calibration": calibrations[s.key]},
        )
        for s, b, m in todo
    ]
    parallel_map(
        run_block,
        calls,
        n_jobs=n_jobs,
        progress=progress,
        on_result=lambda i, table: store(*todo[i], table),
        backend=backend,
        scheduler=scheduler,
    )


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


def check_methods(methods: Sequence[str] | None) -> tuple[str, ...]:
    """Validate a method list (``None`` = all)."""
    if methods is None:
        return ALL_METHODS
    methods = tuple(methods)
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown or not methods:
        raise RunError(f"`methods` must be a non-empty subset of {list(ALL_METHODS)}, got {list(methods)}")
    return tuple(m for m in ALL_METHODS if m in methods)


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
        (results identical to a local run); see :func:`parallel_map`.

    Returns
    -------
    StudyResult

    Raises
    ------
    RunError
        Bad arguments, an output folder holding results from other settings
        (or any results, without ``resume``/``overwrite``), or an unwritable folder.
    """
    started = _now()
    scenarios = list(scenarios)
    if not scenarios:
        raise RunError("the study holds no scenarios")
    keys = [s.key for s in scenarios]
    if len(set(keys)) != len(keys):
        raise RunError("scenario keys must be unique within a run")
    n_reps = check_positive_int(n_reps, "n_reps")
    max_reps = check_positive_int(max_reps, "max_reps")
    identity = RunIdentity(
        n_boot=check_positive_int(n_boot, "n_boot"),
        confidence_level=check_confidence_level(confidence_level),
        seed=int(check_seed(seed)),
    )
    methods = check_methods(methods)
    n_jobs = check_n_jobs(n_jobs)
    check_backend(backend, scheduler)
    if target_mcse is not None and not (isinstance(target_mcse, float | int) and 0 < target_mcse < 0.5):
        raise RunError(f"`target_mcse` must be a number in (0, 0.5), got {target_mcse!r}")
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        _check_out(out_path, identity, resume=resume, overwrite=overwrite)

    memory: dict[tuple[str, int, int], pd.DataFrame] = {}

    def store(scenario: Scenario, block: int, m: int, table: pd.DataFrame) -> None:
        if out_path is None:
            memory[scenario.key, block, m] = table
        else:
            path = _block_path(out_path, scenario, block, m)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_parquet(path, table)

    def have(scenario: Scenario, block: int, m: int) -> bool:
        if out_path is None:
            return (scenario.key, block, m) in memory
        return _block_path(out_path, scenario, block, m).exists()

    def load(scenario: Scenario, reps: int) -> pd.DataFrame:
        parts = []
        for b, m in enumerate(_n_blocks(reps, identity.block_reps)):
            if out_path is None:
                parts.append(memory[scenario.key, b, m])
            else:
                parts.append(pq.read_table(_block_path(out_path, scenario, b, m)).to_pandas())
        return pd.concat(parts, ignore_index=True)

    calibrations = _calibrate_all(scenarios, n_jobs if backend == "local" else 1, out_path)
    reps_per_scenario = dict.fromkeys(keys, n_reps)
    computed = 0
    for _round in range(8):
        todo = [
            (s, b, m)
            for s in scenarios
            for b, m in enumerate(_n_blocks(reps_per_scenario[s.key], identity.block_reps))
            if not have(s, b, m)
        ]
        _compute_blocks(
            todo,
            identity,
            calibrations=calibrations,
            n_jobs=n_jobs,
            batch_bootstrap=batch_bootstrap,
            chunk_bytes=chunk_bytes,
            progress=progress,
            store=store,
            backend=backend,
            scheduler=scheduler,
        )
        computed += len(todo)
        if target_mcse is None:
            break
        grown = False
        for s in scenarios:
            table = coverage_table([(s, load(s, reps_per_scenario[s.key]))], identity, methods, calibrations)
            worst = float(np.nanmax(table["coverage_mcse"].to_numpy(), initial=0.0))
            if worst > target_mcse and reps_per_scenario[s.key] < max_reps:
                p = table["coverage"].to_numpy()
                # the largest p (1 - p) over methods sets the replicates needed (Morris et al. 2019, eq. 5)
                p_worst = float(p[np.nanargmax(p * (1 - p))])
                need = max(reps_for_coverage_mcse(target_mcse, p_worst), reps_per_scenario[s.key] + 1)
                whole_blocks = -(-need // identity.block_reps) * identity.block_reps
                reps_per_scenario[s.key] = min(whole_blocks, max_reps)
                grown = True
        if not grown:
            break

    # one scenario's replicates in memory at a time (unless they are to be kept)
    parts, kept = [], []
    for s in scenarios:
        reps = load(s, reps_per_scenario[s.key])
        parts.append(coverage_table([(s, reps)], identity, methods, calibrations))
        if keep_replicates:
            kept.append(reps)
    coverage = pd.concat(parts, ignore_index=True)
    replicates = pd.concat(kept, ignore_index=True) if keep_replicates else None
    provenance = {
        "study": study,
        "identity": identity.as_dict(),
        "settings": {
            "n_reps": n_reps,
            "methods": list(methods),
            "target_mcse": target_mcse,
            "max_reps": max_reps,
            "n_jobs": n_jobs,
            "backend": backend,
            "scheduler": scheduler,
            "batch_bootstrap": batch_bootstrap,
            "chunk_bytes": chunk_bytes,
        }
        | (settings_extra or {}),
        "n_scenarios": len(scenarios),
        "blocks_computed": computed,
        "versions": _versions(),
        "git_commit": _git_commit(),
        "started_at": started,
        "finished_at": _now(),
    }
    if out_path is not None:
        write_parquet(out_path / COVERAGE_FILE, coverage, provenance)
        if replicates is not None:
            write_parquet(out_path / REPLICATES_FILE, replicates, provenance)
        from simulation.report import summary_markdown

        _write_text(out_path / SUMMARY_FILE, summary_markdown(coverage, provenance))
    return StudyResult(coverage=coverage, replicates=replicates, provenance=provenance, out=out_path)
