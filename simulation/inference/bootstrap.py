"""Bootstrap confidence intervals for a rank correlation (Spearman's rho by default, or any
:class:`~simulation.statistics.statistic.Statistic`, e.g. Kendall's tau-b): one dataset or a batch.

Two paths compute the same numbers:

* **batch** (``batch_bootstrap=True``): the replicates of a chunk are
  bootstrapped together; one kernel call runs the loop over ``n_boot``
  resamples for every replicate of the chunk, in parallel over replicates.
* **fallback** (``batch_bootstrap=False``): a Python loop over the
  replicates, one row per kernel call (the path of :func:`bootstrap_ci_single`).

Replicate ``r`` draws its resample indices from its own stream,
``child_seed(seed, r)`` (see :mod:`simulation.engine.seeding`), and every kernel
computes row ``r`` from row ``r`` alone, so both paths, any chunk size and any
thread count give bit-identical replicate tables.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from simulation.core.settings import load_settings
from simulation.core.validation import (
    check_bool,
    check_confidence_level,
    check_paired_data,
    check_positive_int,
    check_seed,
)
from simulation.engine import _kernels
from simulation.engine.intervals import MIN_N_BOOT, STATUS_OK, RowIntervals, bootstrap_intervals, interval_flags
from simulation.engine.seeding import as_seed_sequence, child_keys, child_seed
from simulation.statistics.statistic import SPEARMAN, Statistic, check_user_statistic, get_statistic

REPLICATE_COLUMNS = (
    "rep",
    "method",
    "rho_hat",
    "ci_lower",
    "ci_upper",
    "status",
    "n_boot_valid",
    "z0",
    "acceleration",
)


@dataclasses.dataclass(frozen=True)
class SingleBootstrapResult:
    """Bootstrap intervals for one dataset.

    Attributes
    ----------
    rho_hat : float
        Spearman's rho of the data (NaN if x or y is constant).
    intervals : pandas.DataFrame
        Indexed by method (``percentile``, ``basic``, ``bca``, ``normal``, ``studentized``);
        columns ``ci_lower``, ``ci_upper``, ``status`` (``ok`` or why the interval failed) and ``flags``
        (for a computed interval: ``""``, or ``out_of_range`` when it leaves the statistic's range, kept
        as its formula gives it, and ``resamples_dropped`` when more than 5% of the resamples had no
        finite statistic, joined by ``+``).  Basic and normal intervals can leave [-1, 1] (Davison &
        Hinkley 1997, §5.2-5.3: they are not transformation-respecting); they are reported unclipped so
        that their width and coverage are those of the published formulas, and flagged.
    n_boot : int
        Resamples drawn.
    n_boot_valid : int
        Resamples with a Spearman value (the others had constant x or y and
        were dropped).
    z0, acceleration : float
        BCa bias correction and jackknife acceleration (NaN where undefined).
    confidence_level : float
    statistic : str
        Which statistic ``rho_hat`` and the intervals are of (``spearman`` or ``kendall_b``).
    """

    rho_hat: float
    intervals: pd.DataFrame
    n_boot: int
    n_boot_valid: int
    z0: float
    acceleration: float
    confidence_level: float
    statistic: str = "spearman"


@dataclasses.dataclass(frozen=True)
class AveragedBootstrapResult:
    """Bootstrap intervals for a batch of datasets and their averages.

    Attributes
    ----------
    replicates : pandas.DataFrame
        One row per replicate and method: ``rep``, ``method``, ``rho_hat``,
        ``ci_lower``, ``ci_upper``, ``status``, ``n_boot_valid``, ``z0``,
        ``acceleration``.
    summary : pandas.DataFrame or None
        One row per method (see :func:`summarize_replicates`); None when
        asked not to summarize.
    n_boot : int
    confidence_level : float
    """

    replicates: pd.DataFrame
    summary: pd.DataFrame | None
    n_boot: int
    confidence_level: float


def resample_keys(seeds: list[int | np.random.SeedSequence]) -> np.ndarray:
    """Philox keys ``(m, 2)`` (uint32 values held in uint64) of the replicates' streams."""
    states = [as_seed_sequence(s).generate_state(2, np.uint32) for s in seeds]
    return np.array(states, dtype=np.uint64).reshape(len(seeds), 2)


def resample_indices(seeds: list[int | np.random.SeedSequence], n_boot: int, n: int) -> np.ndarray:
    """The resample indices ``(len(seeds), n_boot, n)`` the engine draws (for checks and references)."""
    return _kernels.resample_indices(resample_keys(seeds), n_boot, n)


def _bootstrap_rows(
    x: np.ndarray,
    y: np.ndarray,
    keys: np.ndarray,
    n_boot: int,
    confidence_level: float,
    resample_controls: bool = False,
    statistic: Statistic = SPEARMAN,
) -> RowIntervals:
    """Intervals for validated rows ``x, y (m, n)``; row ``r`` resampled with Philox key ``keys[r]``; with
    ``resample_controls`` also the exact controls of the resampling noise (else zeros).  The statistic's
    kernels give the estimate, the jackknife and the replicates; the interval formulas are shared."""
    args = statistic.inputs(x, y)  # tie groups (built-in kernels) or prepared values (a user's statistic)
    if statistic.fixed_rows is not None:  # estimate, jackknife and z's SE from one pass (Kendall's s_k)
        theta_hat, jack, z_se = statistic.fixed_rows(*args)
    else:
        theta_hat = statistic.estimate_rows(*args)
        jack = statistic.jackknife_rows(*args)
        z_se = None
    theta, controls, t_star = statistic.bootstrap_rows(*args, keys, n_boot, jack, resample_controls, theta_hat)
    if t_star is None:
        z_se = None
    elif z_se is None:
        z_se = statistic.z_se_rows(*args)
    rows = bootstrap_intervals(
        theta, theta_hat, jack, confidence_level, studentized=statistic.studentized, t_star=t_star, z_se=z_se,
        transform=statistic.transform,
    )  # fmt: skip
    return dataclasses.replace(rows, resample_controls=controls)


def _resolve(n_boot, confidence_level, seed):
    """Fill unset arguments from the settings and validate all three."""
    if n_boot is None or confidence_level is None or seed is None:
        settings = load_settings()
        n_boot = settings.N_BOOT if n_boot is None else n_boot
        confidence_level = settings.CONFIDENCE_LEVEL if confidence_level is None else confidence_level
        seed = settings.SEED if seed is None else seed
    return (
        check_positive_int(n_boot, "n_boot", minimum=MIN_N_BOOT),
        check_confidence_level(confidence_level),
        check_seed(seed),
    )


def bootstrap_ci_single(
    x: ArrayLike,
    y: ArrayLike,
    *,
    n_boot: int | None = None,
    confidence_level: float | None = None,
    seed: int | np.random.SeedSequence | None = None,
    statistic: str | Statistic = "spearman",
) -> SingleBootstrapResult:
    """Bootstrap confidence intervals for Spearman's rho (or another rank correlation) of one paired dataset.

    Pairs ``(x_i, y_i)`` are resampled with replacement (the paired bootstrap,
    Efron & Tibshirani 1993, §9.5); see :mod:`simulation.engine.intervals` for the
    five methods and the degenerate-case policy.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        Paired finite observations, n >= 4; ties allowed in both.
    n_boot : int, optional
        Bootstrap resamples (>= 1).  Default: ``N_BOOT`` of the settings (1000 in the shipped ``config.py``).
    confidence_level : float, optional
        Two-sided level in (0, 1).  Default: ``CONFIDENCE_LEVEL`` of the settings (0.95).
    seed : int or numpy.random.SeedSequence, optional
        Seed of the resampling stream.  Default: ``SEED`` of the settings (20180201).
    statistic : {"spearman", "kendall_b"}, default "spearman"
        The statistic (:data:`simulation.statistics.statistic.STATISTICS`).  The same
        seed draws the same resamples for every statistic.

    Returns
    -------
    SingleBootstrapResult

    Examples
    --------
    >>> import numpy as np
    >>> from simulation import bootstrap_ci_single
    >>> x = np.repeat([1.0, 2.0, 3.0, 4.0], 5)
    >>> y = np.arange(20.0)
    >>> res = bootstrap_ci_single(x, y, n_boot=200, seed=1)
    >>> round(res.rho_hat, 4)
    0.9487
    >>> list(res.intervals.index)
    ['percentile', 'basic', 'bca', 'normal', 'studentized']
    """
    stat = get_statistic(statistic)
    xa, ya = check_paired_data(x, y, ndim=1)
    check_user_statistic(stat, xa, ya, data="your data")
    n_boot, confidence_level, seed = _resolve(n_boot, confidence_level, seed)
    rows = _bootstrap_rows(xa[None, :], ya[None, :], resample_keys([seed]), n_boot, confidence_level, statistic=stat)
    methods = list(rows.intervals)
    table = pd.DataFrame(
        {
            "ci_lower": [rows.intervals[m][0][0] for m in methods],
            "ci_upper": [rows.intervals[m][1][0] for m in methods],
            "status": [rows.intervals[m][2][0] for m in methods],
            "flags": [
                interval_flags(rows.intervals[m][0][0], rows.intervals[m][1][0], stat.bounds,
                               int(rows.n_boot_valid[0]), n_boot)
                if rows.intervals[m][2][0] == STATUS_OK else ""
                for m in methods
            ],
        },
        index=pd.Index(methods, name="method"),
    )  # fmt: skip
    return SingleBootstrapResult(
        rho_hat=float(rows.rho_hat[0]),
        intervals=table,
        n_boot=n_boot,
        n_boot_valid=int(rows.n_boot_valid[0]),
        z0=float(rows.z0[0]),
        acceleration=float(rows.acceleration[0]),
        confidence_level=confidence_level,
        statistic=stat.name,
    )


def default_chunk_size(n_boot: int, n: int, chunk_bytes: int) -> int:
    """Replicates per chunk so that the chunk's float64 work arrays fit ``chunk_bytes``."""
    per_rep = 8 * (n_boot + 2 * n)
    return max(1, chunk_bytes // per_rep)


def bootstrap_ci_averaged(
    x_all: ArrayLike,
    y_all: ArrayLike,
    *,
    n_boot: int | None = None,
    confidence_level: float | None = None,
    seed: int | np.random.SeedSequence | None = None,
    batch_bootstrap: bool | None = None,
    chunk_size: int | None = None,
    summarize: bool = True,
    statistic: str | Statistic = "spearman",
) -> AveragedBootstrapResult:
    """Bootstrap intervals for each of ``n_reps`` datasets, and their averages.

    Parameters
    ----------
    x_all, y_all : array_like, shape (n_reps, n)
        One simulated dataset per row; n >= 4.
    n_boot : int, optional
        Resamples per dataset.  Default: ``N_BOOT`` of the settings (1000 in the shipped ``config.py``).
    confidence_level : float, optional
        Default: ``CONFIDENCE_LEVEL`` of the settings (0.95).
    seed : int or numpy.random.SeedSequence, optional
        Base seed; replicate ``r`` is resampled from ``child_seed(seed, r)``.
        Default: ``SEED`` of the settings (20180201).
    batch_bootstrap : bool, optional
        True: chunked batch kernel; False: per-replicate loop over
        :func:`bootstrap_ci_single`.  Default: ``BATCH_CI_BOOTSTRAP`` of the settings (True).
        Both give bit-identical tables.
    chunk_size : int, optional
        Replicates per chunk in the batch path.  Default: as many as fit
        ``CHUNK_BYTES`` (64 MiB) of work arrays.  Does not change results.
    summarize : bool, default True
        False skips the summary table (``summary`` is then None), for
        callers that aggregate the replicate table themselves.
    statistic : {"spearman", "kendall_b"}, default "spearman"
        The statistic (see :func:`bootstrap_ci_single`); ``rho_hat`` in the
        tables is then its estimate.

    Returns
    -------
    AveragedBootstrapResult

    Notes
    -----
    Working memory is bounded independently of ``n_reps``: resample indices
    are drawn inside the kernel (O(n) per thread, no index buffer), and a
    chunk holds ``chunk_size * (n_boot + 2 n)`` float64 values of bootstrap
    and jackknife estimates, at most ``CHUNK_BYTES`` (or one replicate).  The
    returned replicate table itself has ``5 * n_reps`` rows (one per method).
    """
    stat = get_statistic(statistic)
    xa, ya = check_paired_data(x_all, y_all, ndim=2)
    check_user_statistic(stat, xa[0], ya[0], data="your data (its first row)")
    n_boot, confidence_level, seed = _resolve(n_boot, confidence_level, seed)
    if batch_bootstrap is None or chunk_size is None:
        settings = load_settings()
        if batch_bootstrap is None:
            batch_bootstrap = settings.BATCH_CI_BOOTSTRAP
        if chunk_size is None:
            chunk_size = default_chunk_size(n_boot, xa.shape[1], settings.CHUNK_BYTES)
    rows = row_intervals(
        xa,
        ya,
        n_boot=n_boot,
        confidence_level=confidence_level,
        seed=seed,
        batch_bootstrap=check_bool(batch_bootstrap, "batch_bootstrap"),
        chunk_size=check_positive_int(chunk_size, "chunk_size"),
        statistic=stat,
    )
    replicates = _replicate_table(rows)
    return AveragedBootstrapResult(
        replicates=replicates,
        summary=summarize_replicates(replicates) if summarize else None,
        n_boot=n_boot,
        confidence_level=confidence_level,
    )


def row_intervals(
    xa: np.ndarray,
    ya: np.ndarray,
    *,
    n_boot: int,
    confidence_level: float,
    seed: int | np.random.SeedSequence,
    batch_bootstrap: bool,
    chunk_size: int,
    resample_controls: bool = False,
    statistic: Statistic = SPEARMAN,
    first: int = 0,
) -> RowIntervals:
    """Intervals of every row of validated ``(n_reps, n)`` arrays as arrays (no table): the engine's core.

    Replicate ``r`` is resampled from ``child_seed(seed, first + r)`` (``first``: the index of the first
    row among the replicates of ``seed``, when these rows continue earlier ones); the batch path
    runs chunks of ``chunk_size`` rows through the kernels, the fallback
    loops over the rows one at a time (as :func:`bootstrap_ci_single` does); both give identical arrays,
    the resample controls (computed with ``resample_controls``, else zeros) included.
    """
    n_reps = xa.shape[0]
    if batch_bootstrap:
        parts = []
        for start in range(0, n_reps, chunk_size):
            stop = min(start + chunk_size, n_reps)
            keys = child_keys(seed, first + start, first + stop)  # = resample_keys([child_seed(seed, r) ...])
            parts.append(
                _bootstrap_rows(
                    xa[start:stop], ya[start:stop], keys, n_boot, confidence_level, resample_controls, statistic
                )
            )
        return concat_rows(parts)
    keys = [resample_keys([child_seed(seed, first + r)]) for r in range(n_reps)]
    return concat_rows(
        [
            _bootstrap_rows(
                xa[r : r + 1], ya[r : r + 1], keys[r], n_boot, confidence_level, resample_controls, statistic
            )
            for r in range(n_reps)
        ]
    )


def concat_rows(parts: list[RowIntervals]) -> RowIntervals:
    """One :class:`RowIntervals` from row chunks (each with the same methods), in order."""
    if len(parts) == 1:
        return parts[0]
    return RowIntervals(
        rho_hat=np.concatenate([p.rho_hat for p in parts]),
        intervals={
            m: tuple(np.concatenate([p.intervals[m][i] for p in parts]) for i in range(3)) for m in parts[0].intervals
        },
        n_boot_valid=np.concatenate([p.n_boot_valid for p in parts]),
        z0=np.concatenate([p.z0 for p in parts]),
        acceleration=np.concatenate([p.acceleration for p in parts]),
        resample_controls=np.concatenate([p.resample_controls for p in parts]),
    )


def long_replicates(
    reps: np.ndarray, methods: Sequence[str], columns: Mapping[str, np.ndarray | list[np.ndarray]]
) -> pd.DataFrame:
    """The long replicate table: one row per replicate and method, replicate-major, methods in ``methods``'
    order.  ``columns`` in their order: an array is one value per replicate (repeated for each method), a
    list of arrays one array per method (the replicates' values under that method)."""
    n_methods = len(methods)
    table = {"rep": np.repeat(reps, n_methods), "method": np.tile(np.array(methods), len(reps))}
    for name, values in columns.items():
        table[name] = np.column_stack(values).ravel() if isinstance(values, list) else np.repeat(values, n_methods)
    return pd.DataFrame(table)


def _replicate_table(rows: RowIntervals) -> pd.DataFrame:
    """Long replicate table (rep-major, methods in registry order)."""
    methods = list(rows.intervals)

    def each(i: int) -> list[np.ndarray]:
        return [rows.intervals[m][i] for m in methods]

    return long_replicates(np.arange(rows.rho_hat.shape[0]), methods, {
        "rho_hat": rows.rho_hat,
        "ci_lower": each(0),
        "ci_upper": each(1),
        "status": [st.astype(str) for st in each(2)],
        "n_boot_valid": rows.n_boot_valid.astype(np.int64),
        "z0": rows.z0,
        "acceleration": rows.acceleration,
    })  # fmt: skip


def summarize_replicates(replicates: pd.DataFrame) -> pd.DataFrame:
    """Average the per-replicate intervals of each method.

    Parameters
    ----------
    replicates : pandas.DataFrame
        Columns ``method``, ``rho_hat``, ``ci_lower``, ``ci_upper``, ``status``.

    Returns
    -------
    pandas.DataFrame
        Indexed by method: ``n_reps``, ``n_failed`` (replicates whose status
        is not ``ok``), ``mean_ci_lower``, ``sd_ci_lower``, ``mean_ci_upper``,
        ``sd_ci_upper``, ``mean_width``, ``mean_rho_hat`` -- interval
        statistics over the ``ok`` replicates only (SD with ddof = 1); NaN
        only when no replicate of the method is ``ok``, and then ``n_failed``
        equals ``n_reps``.
    """
    out = []
    for method, group in replicates.groupby("method", sort=False):
        ok = group[group["status"] == STATUS_OK]
        out.append(
            {
                "method": method,
                "n_reps": len(group),
                "n_failed": int((group["status"] != STATUS_OK).sum()),
                "mean_ci_lower": ok["ci_lower"].mean(),
                "sd_ci_lower": ok["ci_lower"].std(ddof=1),
                "mean_ci_upper": ok["ci_upper"].mean(),
                "sd_ci_upper": ok["ci_upper"].std(ddof=1),
                "mean_width": (ok["ci_upper"] - ok["ci_lower"]).mean(),
                "mean_rho_hat": ok["rho_hat"].mean(),
            }
        )
    return pd.DataFrame(out).set_index("method")
