"""A study's units of work and their compact records: bootstrap blocks and cheap units.

Bootstrap block ``b`` of a scenario holds datasets ``500 b ... 500 b + m_b - 1``
of the bootstrap phase: their datasets come from ``child_seed(child_seed(root,
0), b)`` and their resamples from ``child_seed(child_seed(root, 1), b)``.  It
stores the mergeable moments (:class:`~simulation.engine.moments.Moments`) of each
dataset's controls and, per bootstrap method, its interval measures
(:func:`~simulation.study.estimators.interval_measures`), plus failure counts;
with ``keep_replicates`` also every replicate's intervals (all methods).

Cheap unit ``u`` holds :data:`CHEAP_UNIT_BLOCKS` blocks of the cheap phase
(datasets of the same process drawn on their own streams,
``child_seed(child_seed(root, 3), block)``): the moments of the controls and of
the asymptotic intervals' measures.

``root = scenario_seed(seed, scenario)``; every unit is a pure function of
``(identity, scenario, index, size)``, so a run's tables do not depend on
``n_jobs``, order, backend or resumption; the first ``k`` datasets of a
block are those of any longer block.  Records merge in index order.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numba
import numpy as np
import pandas as pd
from scipy.special import ndtri

from simulation.engine import _kernels
from simulation.engine.intervals import (
    BOOTSTRAP_METHODS,
    DROPPED_RESAMPLES_THRESHOLD,
    FISHER_Z_VARIANCES,
    STATUS_BCA_ACCEL,
    STATUS_BCA_BIAS,
    STATUS_CONSTANT,
    STATUS_NAN_ESTIMATE,
    STATUS_OK,
    STATUS_RAISED,
    STATUS_STUDENTIZED_INFINITE,
    STATUS_TOO_FEW,
    STATUS_UNDEFINED_SE,
    RowIntervals,
    fisher_z_ci,
    out_of_range,
)
from simulation.engine.moments import Moments
from simulation.engine.seeding import child_seed
from simulation.inference.bootstrap import concat_rows, default_chunk_size, long_replicates, row_intervals
from simulation.models.generators import Calibration, Truth
from simulation.models.scenarios import Scenario, scenario_seed
from simulation.statistics.statistic import SPEARMAN, Statistic, get_statistic
from simulation.study.columns import REPLICATES
from simulation.study.columns import names as column_names
from simulation.study.estimators import BOOT_CONTROLS, CHEAP_CONTROLS, CROSSFIT_FOLDS, controls, interval_measures

#: Datasets per block (bootstrap blocks, and the blocks that make up cheap units).
BLOCK_REPS = 500
assert BLOCK_REPS % CROSSFIT_FOLDS == 0  # folds by index residue: every block starts on fold 0
#: Datasets per slice of a bootstrap block: a block's moments are its slices' merged in order, so that a
#: block grown by whole slices continues from its smaller size (:func:`run_boot_block`).
SLICE_REPS = 100
assert BLOCK_REPS % SLICE_REPS == 0 and SLICE_REPS % CROSSFIT_FOLDS == 0
#: Blocks per cheap unit (one unit of work: 20,000 datasets, about 0.1 s).
CHEAP_UNIT_BLOCKS = 40
#: Memory one group of a cheap unit's blocks may hold (its datasets' rank inputs or values, about
#: :data:`CHEAP_BYTES_PER_OBSERVATION` per observation): the blocks are drawn and computed a group at a time,
#: so that a worker's memory grows like n, not like the unit's 20,000 datasets times n.  Each dataset's values
#: depend on its block's stream alone, so the grouping changes no number.
CHEAP_GROUP_BYTES = 256 * 2**20
#: Bytes per observation of one dataset in the cheap phase (its rank inputs or values, temporaries included: 74
#: measured for Kendall's tau-b on untied x at n = 1,000 and 4,000, `benchmarks/bench_memory.py`).
CHEAP_BYTES_PER_OBSERVATION = 80
#: Asymptotic interval methods, one per Fisher-z variance.
ASYMPTOTIC_METHODS = tuple(f"fisher_z_{name}" for name in FISHER_Z_VARIANCES)
#: Every interval method, in table order.
ALL_METHODS = (*BOOTSTRAP_METHODS, *ASYMPTOTIC_METHODS)
#: Status of an asymptotic interval whose estimate is NaN (constant x or y).
#: Stream indices under a scenario's root: datasets, resamples, (2: power), cheap phase.
STREAM_DATA, STREAM_RESAMPLES, STREAM_CHEAP = 0, 1, 3
#: Columns of the moments: controls (a bootstrap block's followed by its exact resample controls, a
#: cheap unit's by its exact mixing control), then 4 stored measures per bootstrap (asymptotic) method, then
#: the model SEs' squares (Morris, White & Crowther 2019, Table 6): a bootstrap block's one, the bootstrap
#: variance ``SD*^2`` (0 where the normal interval failed); a cheap unit's one per asymptotic method (0 where
#: its interval failed or its SE is not finite), then ``atanh(estimate)`` (0 where ``|estimate| >= 1``).
#: The bootstrap variance's column (:func:`boot_variance`), the last.
BOOT_VARIANCE = BOOT_CONTROLS + 4 * len(BOOTSTRAP_METHODS)
BOOT_DIM = BOOT_VARIANCE + 1


def cheap_dim(n_methods: int) -> int:
    """Columns of a cheap unit's moments for a statistic with ``n_methods`` asymptotic methods."""
    return CHEAP_CONTROLS + 5 * n_methods + 1


def cheap_flags(n_methods: int) -> int:
    """Counters of a cheap unit's ``flags``: per asymptotic method its datasets with a model SE, the datasets
    with ``|estimate| < 1``, then per method its intervals that contain the expected estimate."""
    return 2 * n_methods + 1


CHEAP_DIM = cheap_dim(len(ASYMPTOTIC_METHODS))

#: ``replicates.parquet``'s columns (meanings in :data:`simulation.study.columns.REPLICATES`).
REPLICATE_COLUMNS = column_names(REPLICATES)


@dataclasses.dataclass(frozen=True)
class UnitContext:
    """What a unit needs besides its index: settings and the scenario's calibration and truth."""

    n_boot: int
    confidence_level: float
    seed: int
    calibration: Calibration
    truth: Truth
    batch_bootstrap: bool = True
    chunk_bytes: int = 64 * 2**20
    keep_replicates: bool = False
    #: Compute the exact resample controls (zeros without: a plain run does not pay for them).
    control_variates: bool = True
    #: The statistic (:data:`simulation.statistics.statistic.STATISTICS`); it does not enter the streams, so every
    #: statistic sees the same datasets and resamples.  A statistic built from user parts travels as the
    #: object itself (pickled with its numba functions), so workers need no registry.
    statistic: str | Statistic = "spearman"


#: Counters of a bootstrap block's ``flags`` after the per-method out-of-range counts; then, per method, its
#: intervals that contain the expected estimate (:attr:`Truth.expected_estimate`: bias-eliminated coverage).
BOOT_FLAG_RESAMPLES_DROPPED, BOOT_FLAG_REPS_DROPPED = 0, 1
N_BOOT_EXTRA_FLAGS = 2
BOOT_FLAG_CENTRE = len(BOOTSTRAP_METHODS) + N_BOOT_EXTRA_FLAGS


@dataclasses.dataclass(frozen=True)
class Record:
    """The compact content of a unit: datasets drawn, NaN estimates, failures per method, and moments.

    ``flags`` are further counts, over the datasets with a finite estimate: for bootstrap blocks, per
    bootstrap method the ok intervals that leave the statistic's range (:attr:`Statistic.bounds`), then
    the resamples dropped in all, then the datasets that dropped more than
    :data:`DROPPED_RESAMPLES_THRESHOLD` of theirs; for cheap units, per asymptotic method the datasets with
    a model SE (its stored square is not 0 by omission), then the datasets with ``|estimate| < 1`` (whose
    ``atanh`` is stored).

    ``parts`` holds the moments of the datasets with a finite estimate: for
    bootstrap blocks :data:`~simulation.study.estimators.CROSSFIT_FOLDS`, over the
    datasets of each index residue (the folds that cross-fitting needs,
    :mod:`simulation.study.estimators`); for cheap units one.
    """

    n_reps: int
    n_nan: int
    failed: tuple[int, ...]
    parts: tuple[Moments, ...]
    flags: tuple[int, ...] = ()
    #: The failure ledger: ``(replicate, method, reason)`` of every dataset that did not give a usable result,
    #: ``replicate`` its index among the scenario's datasets of the phase, ``method`` an index into the
    #: phase's methods (-1: the estimate itself), ``reason`` an index into :data:`LEDGER_REASONS`.
    ledger: tuple[tuple[int, int, int], ...] = ()

    @property
    def moments(self) -> Moments:
        """The moments of all its datasets (the parts merged)."""
        out = self.parts[0]
        for part in self.parts[1:]:
            out = out.merge(part)
        return out

    def merge(self, other: Record) -> Record:
        failed = tuple(a + b for a, b in zip(self.failed, other.failed, strict=True))
        parts = tuple(a.merge(b) for a, b in zip(self.parts, other.parts, strict=True))
        flags = tuple(a + b for a, b in zip(self.flags, other.flags, strict=True))
        return Record(self.n_reps + other.n_reps, self.n_nan + other.n_nan, failed, parts, flags,
                      self.ledger + other.ledger)  # fmt: skip

    def to_frame(self) -> pd.DataFrame:
        records = [p.to_record() for p in self.parts]
        frame = pd.DataFrame(
            {
                "n_reps": [self.n_reps],
                "n_nan": [self.n_nan],
                "failed": [list(self.failed)],
                "flags": [list(self.flags)],
                "n": [[r["n"] for r in records]],
                "mean": [[r["mean"] for r in records]],
                "m2": [[r["m2"] for r in records]],
            }
        )
        if self.ledger:  # a unit without failures stores no ledger column (the layout of earlier units)
            frame["ledger"] = [[v for entry in self.ledger for v in entry]]
        return frame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Record:
        row = frame.iloc[0]
        parts = tuple(
            Moments.from_record({"n": n, "mean": list(mean), "m2": list(m2)})
            for n, mean, m2 in zip(row["n"], row["mean"], row["m2"], strict=True)
        )
        flags = tuple(int(v) for v in row["flags"])
        flat = [int(v) for v in row["ledger"]] if "ledger" in frame else []
        ledger = tuple(tuple(flat[i : i + 3]) for i in range(0, len(flat), 3))
        return cls(int(row["n_reps"]), int(row["n_nan"]), tuple(int(v) for v in row["failed"]), parts, flags,
                   ledger)  # fmt: skip


def empty_record(n_methods: int, dim: int, n_parts: int, n_flags: int = 0) -> Record:
    """A :class:`Record` of no datasets (zero counts, empty moments): the identity of :meth:`Record.merge`."""
    return Record(0, 0, (0,) * n_methods, tuple(Moments.empty(dim) for _ in range(n_parts)), (0,) * n_flags)


#: Why a dataset did not give a usable result (the failure ledger, :attr:`Record.ledger`): its estimate is
#: not finite; then an interval's status other than ``ok`` (:mod:`simulation.engine.intervals`); an ok
#: interval that leaves the statistic's range (kept as computed); more than
#: :data:`DROPPED_RESAMPLES_THRESHOLD` of its resamples without a finite statistic; a user statistic that
#: raised on the dataset (:func:`guarded_rows`).  Stored records hold indices: new reasons go at the end.
LEDGER_REASONS = (
    STATUS_NAN_ESTIMATE, STATUS_TOO_FEW, STATUS_CONSTANT, STATUS_BCA_BIAS, STATUS_BCA_ACCEL,
    STATUS_STUDENTIZED_INFINITE, STATUS_UNDEFINED_SE, "undefined", "out_of_range", "resamples_dropped",
    STATUS_RAISED,
)  # fmt: skip
LEDGER_NAN, LEDGER_OUT_OF_RANGE, LEDGER_DROPPED = 0, LEDGER_REASONS.index("out_of_range"), LEDGER_REASONS.index(
    "resamples_dropped")  # fmt: skip
LEDGER_RAISED = LEDGER_REASONS.index(STATUS_RAISED)


def guarded_rows(stat: Statistic, n_rows: int, compute, raised_value):
    """``compute(lo, hi)`` (the results of datasets ``lo:hi``, a tuple of arrays with one row per dataset) for
    every dataset, and which datasets' computation raised.

    A built-in statistic is computed in one call and an exception propagates (a bug, not a dataset's
    property).  A user statistic that raises on the whole batch is computed again one dataset at a time; a
    dataset on which it raises gets ``raised_value()`` (one row: NaN estimate) and is counted in the failure
    ledger as ``statistic_raised``, and the run goes on.  Every dataset's values depend on that dataset alone
    (the engine's batch and one-row paths are bit-identical), so the other datasets' values are those of the
    batch."""
    none = np.zeros(n_rows, bool)
    try:
        return compute(0, n_rows), none
    except Exception:  # noqa: BLE001 - any exception of the user's code is the dataset's failure
        if stat.user is None:
            raise
        parts, raised = [], none.copy()
        for r in range(n_rows):
            try:
                parts.append(compute(r, r + 1))
            except Exception:  # noqa: BLE001
                parts.append(raised_value())
                raised[r] = True
        return parts, raised


def raised_intervals(stat: Statistic) -> RowIntervals:
    """The one-dataset :class:`RowIntervals` of a dataset on which a user statistic raised."""
    nan = np.full(1, np.nan)
    status = np.array([STATUS_RAISED])
    return RowIntervals(
        rho_hat=nan, intervals={m: (nan, nan, status) for m in stat.bootstrap_methods}, n_boot_valid=np.zeros(1),
        z0=nan, acceleration=nan, resample_controls=np.zeros((1, _kernels.N_RESAMPLE_CONTROLS)),
    )  # fmt: skip


def ledger_entries(replicates: np.ndarray, failures: np.ndarray, reasons: np.ndarray, method: int = -1) -> tuple:
    """``(replicate, method, reason)`` of the rows of ``replicates`` where ``failures`` holds (``reasons``: one
    :data:`LEDGER_REASONS` index per row, or one for all)."""
    where = np.flatnonzero(failures)
    codes = np.broadcast_to(np.asarray(reasons), failures.shape)[where]
    return tuple((int(replicates[i]), method, int(c)) for i, c in zip(where, codes, strict=True))


#: Counters in a bootstrap block's ``flags``.
BOOT_FLAGS = BOOT_FLAG_CENTRE + len(BOOTSTRAP_METHODS)


# --------------------------------------------------------------------------
# Names and sizes
# --------------------------------------------------------------------------
def block_sizes(n_reps: int) -> list[int]:
    """Datasets in each block of a phase with ``n_reps`` datasets."""
    full, rest = divmod(n_reps, BLOCK_REPS)
    return [BLOCK_REPS] * full + ([rest] if rest else [])


def boot_units(n_reps: int) -> list[tuple[int, int]]:
    """``(block, datasets)`` of the bootstrap phase."""
    return list(enumerate(block_sizes(n_reps)))


def cheap_units(n_reps: int) -> list[tuple[int, int]]:
    """``(unit, datasets)`` of the cheap phase."""
    per_unit = CHEAP_UNIT_BLOCKS * BLOCK_REPS
    full, rest = divmod(n_reps, per_unit)
    return [(u, per_unit) for u in range(full)] + ([(full, rest)] if rest else [])


def boot_name(block: int, n_block: int) -> str:
    """The file stem of bootstrap block ``block`` holding ``n_block`` datasets."""
    return f"b{block:06d}_m{n_block}"


def cheap_name(unit: int, n_unit: int) -> str:
    """The file stem of cheap-phase unit ``unit`` holding ``n_unit`` datasets."""
    return f"c{unit:05d}_n{n_unit}"


def replicates_name(block: int, n_block: int) -> str:
    """The file stem of a bootstrap block's kept replicates (``--replicates``)."""
    return f"{boot_name(block, n_block)}.replicates"


# --------------------------------------------------------------------------
# The units (run in workers)
# --------------------------------------------------------------------------
def _controls_and_finite(
    scenario: Scenario, rho: np.ndarray, se: np.ndarray, ctx: UnitContext
) -> tuple[np.ndarray, np.ndarray]:
    finite = np.isfinite(rho)
    stat = get_statistic(ctx.statistic)
    x = controls(
        rho[finite], se[finite], scenario.n, ctx.truth.value, ctx.confidence_level, stat.control_scale(scenario.n),
        transform=stat.transform,
    )  # fmt: skip
    return finite, x



def run_boot_block(
    scenario: Scenario, block: int, n_block: int, ctx: UnitContext, start: Record | None = None
) -> tuple[Record, pd.DataFrame | None]:
    """Bootstrap block ``block`` (its first ``n_block`` datasets): the record, and the replicates if kept.

    The record is the merge, in order, of the records of the block's slices
    of :data:`SLICE_REPS` datasets.  ``start``: the record of the same
    block's first ``start.n_reps`` datasets, a whole number of slices (a
    smaller size of this block computed before): only the datasets after
    them are bootstrapped, and their slices merged onto it, so the record is
    bit-identical to one computed from scratch (a block's first datasets are
    the same whatever its size, and each dataset's resamples come from its
    own stream).  Not with ``keep_replicates``.
    """
    stat = get_statistic(ctx.statistic)
    root = scenario_seed(ctx.seed, scenario)
    first = 0 if start is None else start.n_reps
    if start is not None and (first % SLICE_REPS or not 0 < first < n_block or ctx.keep_replicates):
        raise ValueError(f"`start` must hold whole slices of {SLICE_REPS} datasets, fewer than the block's "
                         f"{n_block}, without kept replicates; it holds {first}")  # fmt: skip
    data_seed = child_seed(child_seed(root, STREAM_DATA), block)
    x, y, inputs = scenario.sample(n_block, data_seed, calibration=ctx.calibration)
    def intervals(lo: int, hi: int) -> RowIntervals:
        return row_intervals(
            x[first + lo : first + hi],
            y[first + lo : first + hi],
            n_boot=ctx.n_boot,
            confidence_level=ctx.confidence_level,
            seed=child_seed(child_seed(root, STREAM_RESAMPLES), block),
            batch_bootstrap=ctx.batch_bootstrap,
            chunk_size=default_chunk_size(ctx.n_boot, scenario.n, ctx.chunk_bytes),
            resample_controls=ctx.control_variates and stat.resample_controls,
            statistic=stat,
            first=first + lo,
        )

    rows, raised = guarded_rows(stat, n_block - first, intervals, lambda: raised_intervals(stat))
    rows = concat_rows(rows) if isinstance(rows, list) else rows
    try:
        rho, se, extra = stat.dataset_rows(x, y, inputs)
        rho, se, extra = rho[first:], se[first:], None if extra is None else extra[first:]
    except Exception:  # noqa: BLE001 - a user statistic's exception is the dataset's failure
        if stat.user is None:
            raise
        rho, se, extra = _guarded_cheap(stat, x[first:], y[first:], raised)
    if raised.any():  # raised on the dataset or its resamples: no estimate
        rho, se = np.where(raised, np.nan, rho), np.where(raised, np.nan, se)
        rows = dataclasses.replace(rows, rho_hat=np.where(raised, np.nan, rows.rho_hat))
    finite, controls_x = _controls_and_finite(scenario, rho, se, ctx)
    # exact controls of the resampling noise, scaled to the endpoints' units by the jackknife SE
    exact = rows.resample_controls[finite] * np.nan_to_num(se[finite], nan=0.0)[:, None]
    measures, oks, outside = [], [], []
    for method in BOOTSTRAP_METHODS:  # a fixed layout: a method the statistic lacks is stored as never ok
        lower, upper, status = rows.intervals.get(method, (rho, rho, np.full(rho.shape[0], "undefined")))
        ok = (status == STATUS_OK)[finite]
        oks.append(ok)
        outside.append(ok & out_of_range(lower[finite], upper[finite], stat.bounds))
        measures.append(interval_measures(lower[finite], upper[finite], ok, ctx.truth.value))
    normal = BOOTSTRAP_METHODS.index("normal")
    centre = [covers(m, ok, ctx.truth.expected_estimate) for m, ok in zip(measures, oks, strict=True)]
    values = np.hstack([controls_x, exact, *measures, boot_variance(measures[normal], oks[normal],
                                                                   ctx.confidence_level)[:, None]])  # fmt: skip
    not_ok = ~np.column_stack(oks)
    dropped = (ctx.n_boot - np.asarray(rows.n_boot_valid, dtype=np.int64))[finite]
    flag_counts = np.column_stack(
        [*outside, dropped, dropped > DROPPED_RESAMPLES_THRESHOLD * ctx.n_boot, *centre]
    ).astype(np.int64)
    # slice starts are multiples of CROSSFIT_FOLDS: a dataset's index in the block has its global residue
    fold = (np.arange(first, n_block) % CROSSFIT_FOLDS)[finite]
    record = empty_record(len(BOOTSTRAP_METHODS), BOOT_DIM, CROSSFIT_FOLDS, BOOT_FLAGS) if start is None else start
    bounds = np.concatenate([[0], np.cumsum(finite)])  # finite rows before each of the new datasets
    ledger = _boot_ledger(block * BLOCK_REPS + np.arange(first, n_block), finite, rows, stat, outside, dropped,
                          ctx.n_boot, raised)  # fmt: skip
    for lo in range(first, n_block, SLICE_REPS):
        hi = min(lo + SLICE_REPS, n_block)
        a, b = int(bounds[lo - first]), int(bounds[hi - first])
        reps = (block * BLOCK_REPS + lo, block * BLOCK_REPS + hi)
        part = Record(
            hi - lo, (hi - lo) - (b - a), tuple(int(v) for v in not_ok[a:b].sum(axis=0)),
            tuple(Moments.of(values[a:b][fold[a:b] == k]) for k in range(CROSSFIT_FOLDS)),
            tuple(int(v) for v in flag_counts[a:b].sum(axis=0)),
            tuple(entry for entry in ledger if reps[0] <= entry[0] < reps[1]),
        )  # fmt: skip
        record = record.merge(part)
    replicates = _replicate_table(scenario, block, n_block, rows, ctx, extra) if ctx.keep_replicates else None
    return record, replicates


def covers(measures: np.ndarray, ok: np.ndarray, centre: float) -> np.ndarray:
    """1 where an ok interval (its stored measures, :func:`~simulation.study.estimators.interval_measures`)
    contains ``centre``, else 0."""
    return (ok & (measures[:, 0] <= centre) & (measures[:, 1] >= centre)).astype(np.float64)


def boot_variance(normal: np.ndarray, ok: np.ndarray, confidence_level: float) -> np.ndarray:
    """The bootstrap variance ``SD*^2`` of each dataset from its normal interval's stored measures
    (``estimate -+ z SD*``, :func:`simulation.engine.intervals.bootstrap_intervals`): ``((upper - lower) / 2z)^2``,
    0 where the interval failed."""
    z = float(ndtri(1 - (1 - confidence_level) / 2))
    return np.where(ok, ((normal[:, 1] - normal[:, 0]) / (2 * z)) ** 2, 0.0)


def model_variances(
    stat: Statistic, method: str, estimate: np.ndarray, extra: np.ndarray | None, n: int, ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Squared model SE of asymptotic ``method`` (:meth:`Statistic.model_se`) per dataset, 0 where its interval
    failed or the SE is not finite (on Fisher's z: ``|estimate| = 1``), and where it is kept."""
    se, scale = stat.model_se(method, estimate, extra, n)
    with np.errstate(invalid="ignore"):
        kept = ok & np.isfinite(se) & ((np.abs(estimate) < 1) if scale == "fisher_z" else True)
    return np.where(kept, se * se, 0.0), kept


def fisher_z_column(estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``atanh(estimate)``, 0 where ``|estimate| >= 1`` (infinite or undefined), and where it is kept."""
    kept = np.abs(estimate) < 1
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(kept, np.arctanh(np.where(kept, estimate, 0.0)), 0.0), kept


def cheap_groups(blocks: Sequence[tuple[int, object]], n: int) -> list[list[tuple[int, object]]]:
    """``blocks`` (``(datasets, seed)`` each) in consecutive groups of at most :data:`CHEAP_GROUP_BYTES` of data
    at ``n`` observations per dataset (one block at least per group)."""
    per_block = CHEAP_BYTES_PER_OBSERVATION * n
    groups: list[list[tuple[int, object]]] = []
    held = 0.0
    for block in blocks:
        size = block[0] * per_block
        if not groups or held + size > CHEAP_GROUP_BYTES:
            groups.append([])
            held = 0.0
        groups[-1].append(block)
        held += size
    return groups


def _joined(parts) -> tuple:
    """The per-dataset arrays of consecutive groups, joined in order (None where every group has None; NaN rows
    for a group without the values another group has)."""
    parts = list(parts)
    out = []
    for i in range(len(parts[0])):
        column = [p[i] for p in parts]
        if all(c is None for c in column):
            out.append(None)
            continue
        like = next(c for c in column if c is not None)
        out.append(np.concatenate([c if c is not None else np.full((len(p[0]), *like.shape[1:]), np.nan)
                                   for c, p in zip(column, parts, strict=True)]))  # fmt: skip
    return tuple(out)


def _guarded_cheap(stat: Statistic, x: np.ndarray, y: np.ndarray, raised: np.ndarray):
    """A user statistic's :meth:`Statistic.cheap_rows` of datasets ``x, y (m, n)``, one dataset at a time, each
    as in the batch: NaN where ``raised`` already holds, and where it raises (which ``raised`` then records)."""
    rho, se = np.full(len(raised), np.nan), np.full(len(raised), np.nan)
    extra = None
    for r in np.flatnonzero(~raised):
        try:
            values = stat.cheap_rows(*stat.inputs(x[r : r + 1], y[r : r + 1]))
        except Exception:  # noqa: BLE001 - the user's code failed on this dataset
            raised[r] = True
            continue
        rho[r], se[r] = values[0][0], values[1][0]
        if values[2] is not None:
            extra = np.full((len(raised), *values[2].shape[1:]), np.nan) if extra is None else extra
            extra[r] = values[2][0]
    return rho, se, extra


def _boot_ledger(reps, finite, rows, stat, outside, dropped, n_boot, raised=None) -> tuple:
    """The failure ledger of a bootstrap block's new datasets ``reps``: a non-finite estimate (or a user
    statistic that raised: ``raised``); per bootstrap method the statistic has, an interval status other than
    ok, or an ok interval out of range; more than :data:`DROPPED_RESAMPLES_THRESHOLD` of the resamples
    dropped.  In dataset order, then method order."""
    raised = np.zeros(len(reps), bool) if raised is None else raised
    entries = list(ledger_entries(reps, ~finite & ~raised, LEDGER_NAN))
    entries += ledger_entries(reps, raised, LEDGER_RAISED)
    kept = reps[finite]
    for m, method in enumerate(BOOTSTRAP_METHODS):
        if method not in stat.bootstrap_methods:
            continue  # a method the statistic lacks is no failure of a dataset
        status = rows.intervals[method][2][finite]
        bad = status != STATUS_OK
        codes = np.zeros(status.shape, np.int64)  # only the failed datasets' statuses are looked up
        codes[bad] = [LEDGER_REASONS.index(v) if v in LEDGER_REASONS else LEDGER_REASONS.index("undefined")
                      for v in status[bad]]  # fmt: skip
        entries += ledger_entries(kept, bad, codes, m)
        entries += ledger_entries(kept, outside[m], LEDGER_OUT_OF_RANGE, m)
    entries += ledger_entries(kept, dropped > DROPPED_RESAMPLES_THRESHOLD * n_boot, LEDGER_DROPPED)
    return tuple(sorted(entries))


def run_cheap_unit(
    scenario: Scenario, unit: int, n_unit: int, ctx: UnitContext, start: Record | None = None
) -> Record:
    """Cheap unit ``unit`` (its first ``n_unit`` datasets): controls and asymptotic intervals' measures.

    The unit's blocks (each on its own stream) are drawn and computed together
    (fewer, larger array operations); their moments are formed block by block
    and merged in order.  ``start``: the record of the same unit's first
    ``start.n_reps`` datasets, a whole number of blocks (a smaller size of
    this unit computed before): only the blocks after them are computed, and
    merged onto it in the same order, so the record is bit-identical to one
    computed from scratch (every dataset's values depend on its block's
    stream alone).
    """
    stat = get_statistic(ctx.statistic)
    root = scenario_seed(ctx.seed, scenario)
    cheap_root = child_seed(root, STREAM_CHEAP)
    first_block = unit * CHEAP_UNIT_BLOCKS
    sizes = block_sizes(n_unit)
    skip = 0
    if start is not None:
        skip, rest = divmod(start.n_reps, BLOCK_REPS)
        if rest or not 0 < start.n_reps < n_unit:
            raise ValueError(f"`start` must hold whole blocks, fewer than the unit's {n_unit} datasets; "
                             f"it holds {start.n_reps}")  # fmt: skip
    blocks = [(size, child_seed(cheap_root, first_block + i)) for i, size in enumerate(sizes)][skip:]
    sizes = sizes[skip:]
    measures, variances, kept = [], [], []
    raised = None  # which datasets a user statistic raised on (:func:`guarded_rows`)
    n_methods = len(stat.asymptotic_methods)
    bad = None  # (finite datasets, methods): interval not ok (never for Spearman's Fisher z)
    if stat is SPEARMAN:
        rho, se, exact = _joined(scenario.cheap_statistics(group, calibration=ctx.calibration)
                                 for group in cheap_groups(blocks, scenario.n))  # fmt: skip
        if rho.shape[0] != sum(size for size, _ in blocks):  # the groups joined are the unit's datasets, once each
            raise AssertionError(f"a cheap unit computed {rho.shape[0]} datasets for {sum(s for s, _ in blocks)}")
        finite, controls_x = _controls_and_finite(scenario, rho, se, ctx)
        for name in FISHER_Z_VARIANCES:
            lower, upper = fisher_z_ci(rho[finite], scenario.n, confidence_level=ctx.confidence_level, variance=name)
            ok = np.ones(lower.shape, bool)
            measures.append(interval_measures(lower, upper, ok, ctx.truth.value))
            v, k = model_variances(stat, f"fisher_z_{name}", rho[finite], None, scenario.n, ok)
            variances.append(v)
            kept.append(k)
    else:
        if stat.values:
            # a statistic of the values (Pearson's, a user's): the blocks' datasets drawn whole, on the
            # cheap streams (not the rank-only datasets of Spearman's cheap phase); no exact control
            parts, failed, guarded = [], [], False
            for group in cheap_groups(blocks, scenario.n):
                data = [scenario.generate(size, seed, calibration=ctx.calibration) for size, seed in group]
                x, y = np.concatenate([d[0] for d in data]), np.concatenate([d[1] for d in data])
                group_raised = np.zeros(x.shape[0], bool)
                try:
                    parts.append(stat.cheap_rows(*stat.inputs(x, y)))
                except Exception:  # noqa: BLE001 - a user statistic's exception is the dataset's failure
                    if stat.user is None:
                        raise
                    parts.append(_guarded_cheap(stat, x, y, group_raised))
                    guarded = True
                failed.append(group_raised)
            rho, se, extra = _joined(parts)
            raised = np.concatenate(failed) if guarded else None
            exact = np.zeros_like(rho)
        else:
            # the same datasets as Spearman's cheap phase, through RankInputs (no fused kernel)
            parts = []
            for group in cheap_groups(blocks, scenario.n):
                inputs = scenario.cheap_inputs(group, calibration=ctx.calibration, truth_control=True)
                rho, se, extra = stat.cheap_rows(inputs)
                parts.append((rho, se, extra, inputs.truth_control if inputs.truth_control is not None
                              else np.zeros_like(rho)))  # fmt: skip
            rho, se, extra, exact = _joined(parts)
        if rho.shape[0] != sum(size for size, _ in blocks):  # the groups joined are the unit's datasets, once each
            raise AssertionError(f"a cheap unit computed {rho.shape[0]} datasets for {sum(s for s, _ in blocks)}")
        finite, controls_x = _controls_and_finite(scenario, rho, se, ctx)
        oks = []
        for method in stat.asymptotic_methods:
            lower, upper = stat.asymptotic_ci(method, rho[finite], extra[finite], scenario.n, ctx.confidence_level)
            ok = np.isfinite(lower) & np.isfinite(upper)
            oks.append(ok)
            measures.append(interval_measures(lower, upper, ok, ctx.truth.value))
            v, k = model_variances(stat, method, rho[finite], None if extra is None else extra[finite], scenario.n,
                                   ok)  # fmt: skip
            variances.append(v)
            kept.append(k)
        bad = ~np.column_stack(oks) if oks else np.zeros((int(np.count_nonzero(finite)), 0), bool)
    z, z_kept = fisher_z_column(rho[finite])
    oks = [np.ones(len(z), bool) if bad is None else ~bad[:, j] for j in range(n_methods)]
    centre = [covers(m, ok, ctx.truth.expected_estimate) for m, ok in zip(measures, oks, strict=True)]
    values = np.hstack([controls_x, exact[finite][:, None], *measures, *(v[:, None] for v in variances), z[:, None]])
    counts = np.column_stack([*kept, z_kept, *centre]).astype(np.int64)
    # rows of ``values`` are the finite datasets; locate each block's among them
    ends = np.cumsum(finite)[np.cumsum(sizes) - 1]
    record = empty_record(n_methods, cheap_dim(n_methods), 1, cheap_flags(n_methods)) if start is None else start
    first_row = 0
    rep = (first_block + skip) * BLOCK_REPS  # the phase's index of the unit's first new dataset
    for size, end in zip(sizes, ends, strict=True):
        n_nan = size - int(end - first_row)
        failed = (0,) * n_methods if bad is None else tuple(int(v) for v in bad[first_row:end].sum(axis=0))
        reps = rep + np.arange(size)
        ok_rows = finite[rep - (first_block + skip) * BLOCK_REPS:][:size]
        threw = np.zeros(size, bool) if raised is None else raised[rep - (first_block + skip) * BLOCK_REPS:][:size]
        ledger = list(ledger_entries(reps, ~ok_rows & ~threw, LEDGER_NAN))
        ledger += ledger_entries(reps, threw, LEDGER_RAISED)
        undefined = LEDGER_REASONS.index(STATUS_UNDEFINED_SE)  # an asymptotic interval without a finite SE
        for m in range(n_methods if bad is not None else 0):
            ledger += ledger_entries(reps[ok_rows], bad[first_row:end, m], undefined, m)
        part = Record(size, n_nan, failed, (Moments.of(values[first_row:end]),),
                      tuple(int(v) for v in counts[first_row:end].sum(axis=0)), tuple(sorted(ledger)))  # fmt: skip
        record = record.merge(part)
        first_row = int(end)
        rep += size
    return record


def phase_costs(
    scenarios: Sequence[Scenario], contexts: Sequence[UnitContext], boot_reps: int = 100, cheap_reps: int = 5000
) -> tuple[float, float]:
    """Seconds per dataset and core of each phase: one bootstrap block and one cheap unit per scenario,
    timed in this process with one numba thread (run each once first: compilation excluded)."""

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    boot, cheap = 0.0, 0.0
    try:
        for scenario, ctx in zip(scenarios, contexts, strict=True):
            run_boot_block(scenario, 0, 2, ctx)
            run_cheap_unit(scenario, 0, 2, ctx)
            t0 = time.perf_counter()
            run_boot_block(scenario, 1, boot_reps, ctx)
            boot += time.perf_counter() - t0
            t0 = time.perf_counter()
            run_cheap_unit(scenario, 1, cheap_reps, ctx)
            cheap += time.perf_counter() - t0
    finally:
        numba.set_num_threads(threads)
    return boot / (len(scenarios) * boot_reps), cheap / (len(scenarios) * cheap_reps)


def _replicate_table(
    scenario: Scenario, block: int, n_block: int, rows, ctx: UnitContext, extra: np.ndarray | None = None
) -> pd.DataFrame:
    """Every replicate's intervals, all methods of the statistic (rep-major: its bootstrap methods, then its
    asymptotic ones; :data:`ALL_METHODS` for Spearman).  ``extra``: what the statistic's asymptotic
    intervals need besides the estimate (Kendall's ASE)."""
    stat = get_statistic(ctx.statistic)
    rho_hat = rows.rho_hat
    lowers, uppers, statuses = [], [], []
    boot_methods = stat.bootstrap_methods
    for method in boot_methods:
        lo, hi, st = rows.intervals[method]
        lowers.append(lo)
        uppers.append(hi)
        statuses.append(st.astype(str))
    asymptotic = stat.asymptotic_methods
    for method in asymptotic:
        lo, hi = stat.asymptotic_ci(method, rho_hat, extra, scenario.n, ctx.confidence_level)
        lowers.append(lo)
        uppers.append(hi)
        status = np.where(np.isfinite(lo) & np.isfinite(hi), STATUS_OK, STATUS_UNDEFINED_SE)
        statuses.append(np.where(np.isnan(rho_hat), STATUS_NAN_ESTIMATE, status))
    nan = [np.full(n_block, np.nan)] * len(asymptotic)
    n_boot = len(boot_methods)
    first = block * BLOCK_REPS
    table = long_replicates(np.arange(first, first + n_block), (*boot_methods, *asymptotic), {
        "rho_hat": rho_hat,
        "ci_lower": lowers,
        "ci_upper": uppers,
        "status": statuses,
        "n_boot_valid": [rows.n_boot_valid.astype(np.float64)] * n_boot + nan,
        "z0": [rows.z0] * n_boot + nan,
        "acceleration": [rows.acceleration] * n_boot + nan,
    })  # fmt: skip
    table.insert(0, "statistic", stat.name)
    table.insert(0, "scenario", scenario.key)
    return table
