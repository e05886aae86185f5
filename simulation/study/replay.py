"""Replay one dataset of a finished run: regenerate it from its stream and recompute every interval.

A bootstrapped dataset is identified by its scenario and its index ``r`` among the scenario's bootstrapped
datasets: it is dataset ``r mod BLOCK_REPS`` of block ``r // BLOCK_REPS``, drawn from the block's data stream
(the first ``m`` datasets of a block are the same whatever its size) and resampled from its own stream.
:func:`replay` runs that block's code path (:func:`~simulation.study.blocks.run_boot_block`, with the
replicates kept) on the block's first ``i + 1`` datasets with the run's settings (read from its manifest) and
calibration (its ``calibrations.json``, verified), so the estimate and each interval are the run's, bit for bit:
a failure, or any surprising replicate, can be inspected.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd

from simulation.core.validation import RunError
from simulation.engine.intervals import STATUS_RAISED
from simulation.engine.seeding import child_seed
from simulation.inference.bootstrap import row_intervals
from simulation.infra.storage import MANIFEST, read_provenance
from simulation.models.scenarios import Scenario, load_study, scenario_seed
from simulation.statistics.registry import DEFAULT
from simulation.statistics.statistic import get_statistic
from simulation.study.blocks import BLOCK_REPS, STREAM_DATA, STREAM_RESAMPLES, UnitContext, run_boot_block
from simulation.study.runner import COVERAGE_FILE, Execution, Job, calibrate_all


@dataclasses.dataclass(frozen=True)
class Replay:
    """One replayed dataset: the data (``x``, ``y``), and its estimate and every interval (one row per
    method, the columns of ``replicates.parquet``)."""

    scenario: Scenario
    statistic: str
    replicate: int
    data: pd.DataFrame
    intervals: pd.DataFrame
    #: The exception a user statistic raised on this dataset or its resamples (``type: message``; the
    #: intervals' status is then ``statistic_raised``), else None.
    error: str | None = None


def replay(
    results: str | Path,
    scenario: str,
    replicate: int,
    *,
    statistic: str | None = None,
    study: str | Path | None = None,
) -> Replay:
    """Regenerate bootstrapped dataset ``replicate`` of ``scenario`` (its key) in the run at ``results`` and
    recompute its estimate and intervals with the run's settings.

    Parameters
    ----------
    results : path
        A results folder of :func:`~simulation.study.runner.run_all_ci_scenarios` (its manifest and
        ``coverage.parquet``).
    scenario : str
        A scenario key of the run.
    replicate : int
        The dataset's index among the scenario's bootstrapped datasets, ``0 <= replicate < n_reps``.
    statistic : str, optional
        One of the run's statistics (a user's as ``package.module:attribute``); default: the run's first.
    study : str or path, optional
        The study file, when the run's provenance names none that can be loaded.

    Raises
    ------
    RunError
        Not a results folder, an unknown scenario, statistic or replicate index (each named, with what is
        allowed), or a study that does not hold the scenario.
    """
    out = Path(results)
    if not (out / MANIFEST).is_file() or not (out / COVERAGE_FILE).is_file():
        raise RunError(f"`{out}` is not a results folder of a coverage run (no {MANIFEST} and {COVERAGE_FILE})")
    identity = json.loads((out / MANIFEST).read_text())["identity"]
    provenance = read_provenance(out / COVERAGE_FILE)
    names = list(identity.get("statistics", [DEFAULT]))
    stat = get_statistic(statistic) if statistic is not None and ":" in statistic else None
    name = stat.name if stat is not None else (statistic or names[0])
    if name not in names:
        raise RunError(f"`statistic` must be one of the run's {names}, got {statistic!r}")
    found = _scenario(provenance.get("study") if study is None else study, scenario)
    coverage = pd.read_parquet(out / COVERAGE_FILE, columns=["scenario", "statistic", "method_kind", "n_reps"])
    rows = coverage[(coverage["scenario"] == scenario) & (coverage["method_kind"] == "bootstrap")]
    n_reps = int(rows["n_reps"].max()) if len(rows) else 0
    if isinstance(replicate, bool) or not isinstance(replicate, int) or not 0 <= replicate < n_reps:
        raise RunError(f"`replicate` must be an integer in [0, {n_reps}) (the scenario's bootstrapped datasets), "
                       f"got {replicate!r}")  # fmt: skip
    job = Job(found, name)
    execution = Execution(n_jobs=1)
    calibration, truth = calibrate_all([job], execution, out, float(identity["truth_mcse"]))[job.key]
    ctx = UnitContext(int(identity["n_boot"]), float(identity["confidence_level"]), int(identity["seed"]),
                      calibration, truth, keep_replicates=True, control_variates=bool(identity["control_variates"]),
                      statistic=stat or name)  # fmt: skip
    block, index = divmod(replicate, BLOCK_REPS)
    _, replicates = run_boot_block(found, block, index + 1, ctx)
    intervals = replicates[replicates["rep"] == replicate].reset_index(drop=True)
    data_seed = child_seed(child_seed(scenario_seed(ctx.seed, found), STREAM_DATA), block)  # as run_boot_block's
    x, y, _ = found.sample(index + 1, data_seed, calibration=calibration)
    error = None
    if (intervals["status"] == STATUS_RAISED).any():  # the user's exception, raised again on this dataset alone
        statistic_ = get_statistic(ctx.statistic)
        try:
            statistic_.cheap_rows(*statistic_.inputs(x[index : index + 1], y[index : index + 1]))
            row_intervals(x[index : index + 1], y[index : index + 1], n_boot=ctx.n_boot,
                          confidence_level=ctx.confidence_level, batch_bootstrap=True, chunk_size=1,
                          seed=child_seed(child_seed(scenario_seed(ctx.seed, found), STREAM_RESAMPLES), block),
                          statistic=statistic_, first=index)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - shown to the user, whatever it is
            error = f"{type(exc).__name__}: {exc}"
    return Replay(found, name, replicate, pd.DataFrame({"x": x[index], "y": y[index]}), intervals, error)


def _scenario(study: str | Path | None, key: str) -> Scenario:
    if study is None:
        raise RunError("the run's provenance names no study; pass the study file (--study, study=)")
    try:
        scenarios = load_study(study)
    except ValueError as exc:
        raise RunError(f"cannot load the run's study {str(study)!r} ({exc}); pass the study file (--study, study=)"
                       ) from None  # fmt: skip
    by_key = {s.key: s for s in scenarios}
    if key not in by_key:
        shown = ", ".join(list(by_key)[:4]) + (", ..." if len(by_key) > 4 else "")
        raise RunError(f"`scenario` must be one of the study's {len(by_key)} scenario keys ({shown}), got {key!r}")
    return by_key[key]
