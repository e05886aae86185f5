"""Where work runs: this process, joblib worker processes, or a Dask cluster.

:func:`parallel_map` is the one way the package fans out (interval blocks,
calibrations, power curves, toolkit checks).  Each call is a pure function of
its arguments and results are handed back in any order, so a caller that
stores results by index gets the same tables whatever the backend, the
number of jobs or the order in which work finishes.

Before a Dask run starts, every worker's environment is compared with the
client's (:func:`environment_fingerprint`): the versions of NumPy, numba,
SciPy and this package, and a digest of this package's source and data
files.  A mismatch could silently change numbers, so it is refused with a
message naming the worker and what differs.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from simulation.core.validation import RunError
from simulation.core.version import __version__
from simulation.infra.storage import source_digest as _source_digest

BACKENDS = ("local", "dask")
#: Seconds to wait for a Dask scheduler before giving up.
SCHEDULER_TIMEOUT_S = 30
#: Packages whose versions must agree between a Dask client and its workers.
CHECKED_PACKAGES = ("numpy", "numba", "scipy")

Call = tuple[tuple, dict]


def check_backend(backend: str, scheduler: str | None) -> None:
    """Validate the execution backend (``local`` or ``dask`` with a scheduler address)."""
    if backend not in BACKENDS:
        raise RunError(f"`backend` must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "dask" and not scheduler:
        raise RunError("the dask backend needs a scheduler address (--scheduler tcp://HOST:8786)")
    if backend == "local" and scheduler:
        raise RunError("--scheduler applies only with --backend dask")


#: Below this many seconds of estimated work, ``n_jobs < 0`` ("all cores") runs in this process: starting
#: worker processes (each imports the package and loads numba's cache) costs about 2 s on 2 cores.
SERIAL_BELOW_SECONDS = 2.0


def effective_jobs(n_jobs: int, n_units: int, work_seconds: float | None = None) -> int:
    """Worker processes for ``n_units`` calls: joblib's convention (-1 = all cores), at most one per unit;
    one (this process) for ``n_jobs < 0`` when the caller's estimate of the work on one core,
    ``work_seconds``, is under :data:`SERIAL_BELOW_SECONDS`. An explicit ``n_jobs`` is always obeyed."""
    cores = os.cpu_count() or 1
    if n_jobs < 0 and work_seconds is not None and work_seconds < SERIAL_BELOW_SECONDS:
        return 1
    jobs = cores + 1 + n_jobs if n_jobs < 0 else n_jobs
    return max(1, min(jobs, cores, n_units))


def parallel_map(
    fn: Callable[..., Any],
    calls: Sequence[Call],
    *,
    n_jobs: int,
    progress: bool,
    on_result: Callable[[int, Any], None],
    desc: str = "blocks",
    backend: str = "local",
    scheduler: str | None = None,
    warm_up: Callable[[], None] | None = None,
    work_seconds: float | None = None,
) -> None:
    """Run ``fn(*args, **kwargs)`` for each call; hand ``(index, result)`` to ``on_result`` in the parent.

    ``backend="local"``, one job: in this process, numba threads on every
    core.  More jobs: joblib worker processes, each task run with numba
    limited to ``cores // jobs`` threads (so workers and threads never
    oversubscribe); ``warm_up`` runs first in the parent, so that numba's
    on-disk cache is written once before workers load it (workers compiling
    into one cache at the same moment is a known source of crashes).
    ``backend="dask"``: joblib's Dask backend on the distributed scheduler at
    ``scheduler`` (every worker thread runs one task with one numba thread),
    after :func:`check_workers`.  Results are handed over as they finish, in
    any order: callers must not depend on it.  ``work_seconds``: the caller's estimate of the whole work on
    one core, with which ``n_jobs < 0`` runs a small job in this process (:func:`effective_jobs`); the
    results are the same either way.
    """
    if not calls:
        return
    from tqdm.auto import tqdm  # deferred: tqdm loads only when a progress bar is asked for

    check_backend(backend, scheduler)
    jobs = effective_jobs(n_jobs, len(calls), work_seconds)
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
        from joblib import Parallel, delayed  # deferred: joblib loads only when work fans out

        if warm_up is not None:
            warm_up()
        threads = max(1, (os.cpu_count() or 1) // jobs)
        tasks = (delayed(_indexed)(fn, i, args, kwargs, threads) for i, (args, kwargs) in enumerate(calls))
        for i, result in Parallel(n_jobs=jobs, return_as="generator_unordered")(tasks):
            on_result(i, result)
            bar.update()
    finally:
        bar.close()


def _indexed(fn, i, args, kwargs, numba_threads: int):
    """Run one call in a worker with numba limited to ``numba_threads`` threads (thread-local setting)."""
    import numba  # deferred: numba loads only when threads are set

    numba.set_num_threads(numba_threads)
    return i, fn(*args, **kwargs)


# --------------------------------------------------------------------------
# Dask
# --------------------------------------------------------------------------
def environment_fingerprint() -> dict[str, str]:
    """What must agree between a Dask client and its workers for identical numbers."""
    out = {name: metadata.version(name) for name in CHECKED_PACKAGES}
    return out | {"simulation": __version__, "simulation source": _source_digest()}


def check_workers(fingerprints: dict[str, dict[str, str] | Exception], local: dict[str, str]) -> None:
    """Refuse workers whose environment differs from ``local`` (the client's); the message names each."""
    problems = []
    for worker, theirs in sorted(fingerprints.items()):
        if isinstance(theirs, Exception):
            problems.append(f"{worker}: cannot report its versions ({type(theirs).__name__}: {theirs})")
            continue
        diff = [f"{k} {theirs.get(k)!s} (client {v})" for k, v in local.items() if theirs.get(k) != v]
        if diff:
            problems.append(f"{worker}: " + ", ".join(diff))
    if problems:
        raise RunError(
            "Dask workers differ from this client, which could change the numbers; install the same versions "
            "everywhere (pip install -e '.[cluster]' from the same checkout): " + "; ".join(problems)
        )


def statistics_in(calls: Sequence[Call]) -> list[Any]:
    """The statistic objects among the calls' arguments (directly, or in a dataclass or tuple argument such as
    a unit's context): each object with a ``required_modules()`` method (a
    :class:`~simulation.statistics.statistic.Statistic`), once per name."""
    found: dict[str, Any] = {}

    def visit(value: Any, depth: int) -> None:
        if callable(getattr(value, "required_modules", None)) and not isinstance(value, type):
            found.setdefault(getattr(value, "name", repr(value)), value)
        elif depth < 3 and isinstance(value, tuple | list):
            for item in value:
                visit(item, depth + 1)
        elif depth < 3 and dataclasses.is_dataclass(value) and not isinstance(value, type):
            for field in dataclasses.fields(value):
                visit(getattr(value, field.name), depth + 1)

    for args, kwargs in calls:
        visit(tuple(args) + tuple(kwargs.values()), 0)
    return list(found.values())


def required_modules(calls: Sequence[Call]) -> tuple[str, ...]:
    """The modules of the user statistics among the calls' arguments, which every worker must import: what
    each statistic object (:func:`statistics_in`) names."""
    return tuple(sorted({m for stat in statistics_in(calls) for m in stat.required_modules()}))


def code_digests(statistics: Sequence[Any]) -> dict[str, dict[str, str]]:
    """Run on each worker, after the statistics were unpickled there: the source digest of each part that
    the worker runs from its own copy of the part's module (what travelled by reference; a numba function
    travels by value, as the client's code)."""
    return {stat.name: stat.part_digests(imported_only=True) for stat in statistics}


def check_worker_statistics(
    reports: dict[str, dict[str, dict[str, str]] | Exception], local: dict[str, dict[str, str]]
) -> None:
    """Refuse workers whose copy of a user statistic's module differs from the client's (whose digest the
    tables record): each part a worker runs from its own module (:func:`code_digests`) must have the
    client's source; the message names each worker, statistic and part."""
    problems = []
    for worker, theirs in sorted(reports.items()):
        if isinstance(theirs, Exception):
            problems.append(f"{worker}: cannot report its statistics' code ({type(theirs).__name__}: {theirs})")
            continue
        for name, parts in sorted(theirs.items()):
            ours = local.get(name, {})
            problems += [f"{worker}: {name}'s {part} has source {digest[:12]}... "
                         f"(client {ours.get(part, 'none')[:12]}...)"
                         for part, digest in sorted(parts.items()) if ours.get(part) != digest]  # fmt: skip
    if problems:
        raise RunError(
            "Dask workers would compute with other code for a statistic than the one this client records (a "
            "different copy of its module): " + "; ".join(problems) + "; install the same file on every worker"
        )


def importable(modules: Sequence[str]) -> list[str]:
    """Of ``modules``, those this process cannot import, each as ``"module (error)"`` (run on each worker)."""

    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any failure means the statistic cannot run there
            failed.append(f"{name} ({type(exc).__name__}: {exc})")
    return failed


def check_worker_imports(reports: dict[str, list[str] | Exception]) -> None:
    """Refuse workers that cannot import a user statistic's modules; the message names each worker."""
    problems = []
    for worker, failed in sorted(reports.items()):
        if isinstance(failed, Exception):
            problems.append(f"{worker}: cannot check ({type(failed).__name__}: {failed})")
        elif failed:
            problems.append(f"{worker}: cannot import " + ", ".join(failed))
    if problems:
        raise RunError(
            "Dask workers cannot import the statistic's code; install or copy its module on every worker (or "
            "put it on their PYTHONPATH): " + "; ".join(problems)
        )


def _dask_map(fn, calls, on_result, bar, scheduler: str) -> None:
    try:
        from dask.distributed import Client  # deferred: Dask is optional (the `cluster` extra)
    except ImportError:
        raise RunError("the dask backend needs dask.distributed: pip install -e '.[cluster]'") from None
    from joblib import Parallel, delayed, parallel_config  # deferred: joblib loads only when work fans out

    try:
        client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
    except OSError as exc:
        raise RunError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
    try:
        try:
            reported = client.run(environment_fingerprint, on_error="return")
        except Exception as exc:  # any failure to ask is reported, not raised raw
            raise RunError(f"cannot ask the Dask workers at {scheduler!r} for their versions: {exc}") from None
        check_workers(reported, environment_fingerprint())
        if modules := required_modules(calls):
            check_worker_imports(client.run(importable, modules, on_error="return"))
        if statistics := statistics_in(calls):
            # each worker unpickles the statistics with its own modules and recomputes their digests
            check_worker_statistics(client.run(code_digests, statistics, on_error="return"),
                                    {stat.name: stat.part_digests() for stat in statistics})  # fmt: skip
        tasks = (delayed(_indexed)(fn, i, args, kwargs, 1) for i, (args, kwargs) in enumerate(calls))
        with parallel_config(backend="dask"):
            for i, result in Parallel(n_jobs=-1, return_as="generator_unordered")(tasks):
                on_result(i, result)
                bar.update()
    finally:
        client.close()
