"""Data-generating processes: batch generators returning ``(n_reps, n)`` arrays.

Tied x (cumulative vaccine aluminum)
    ``n`` observations over ``k`` equally spaced values in 1.43-3.55 mg with
    counts from a named template.  Counts stay fixed; each dataset shuffles
    the positions (x is a design variable of the study, as in the
    predecessor's simulation).
y given tied x: one family, "order y like ``c a + sqrt(1 - c^2) b``"
    * ``rank_mixing``: bivariate Iman-Conover on standardized midranks
      (Iman & Conover 1982, Commun. Statist. B 11:311-334): ``a`` the
      standardized midranks of x, ``b`` standardized normal noise.
      Continuous noise matters: with standardized *ranks* as noise, every
      dataset shares one lattice of values, ranks swap at the same ``c`` in
      all datasets, and the expected Spearman is a step function of ``c``
      that cannot hit most targets.
    * ``gaussian_copula``: a latent bivariate normal with Pearson ``c``; x
      takes the template's values in the order of the latent x.  With untied
      x the population Spearman is ``(6/pi) arcsin(c/2)`` exactly, so ``c =
      2 sin(pi rho_s / 6)``; with ties ``c`` is calibrated.
    * ``log_linear``: ``log y = mu + sigma (c z_x + sqrt(1 - c^2) e)``, a
      linear model on log y with a log-normal margin fitted to a median and
      IQR (:func:`lognormal_parameters`).
    * ``empirical``: y drawn from a user's pool, placed by the rank-mixing
      score (Iman-Conover with an empirical margin, ties of the pool kept).

    ``c`` is calibrated by :func:`calibrate_tied` (the exact generation
    path, common random numbers) so that the expected sample Spearman equals
    the target.
Continuous models with exactly known truth
    In :mod:`simulation.models.continuous` (bivariate normal, bivariate t, Plackett).

Random numbers are drawn dataset by dataset (row-major), so the first ``m``
datasets of a batch equal the batch of ``m``: a dataset never depends on
``n_reps``, and never on anything the bootstrap does.
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.optimize import brentq
from scipy.special import erf, ndtri

from simulation.core.validation import check_positive_int
from simulation.engine import _kernels
from simulation.engine.moments import Moments
from simulation.engine.ranks import midranks
from simulation.engine.seeding import child_seed, rng_from
from simulation.models import continuous

X_RANGE_MG = (1.43, 3.55)
NAMED_TEMPLATES = ("even", "heavy_tail", "heavy_center")
TEMPLATES = (*NAMED_TEMPLATES, "all_distinct", "custom")
#: The sample sizes whose named templates are tabulated (shared/reference).
TABULATED_N = (73, 80, 81, 82)
#: Template proportions for other n are taken from this tabulated n.
SHAPE_SOURCE_N = 80


@functools.cache
def _tabulated_counts() -> dict[tuple[int, int, str], tuple[int, ...]]:
    text = resources.files("simulation.data").joinpath("karwowski2018_tie_templates.csv").read_text()
    table = {}
    for row in csv.DictReader(text.splitlines()):
        table[int(row["n"]), int(row["k"]), row["template"]] = tuple(int(c) for c in row["counts"].split())
    return table


def _largest_remainder(weights: np.ndarray, n: int) -> tuple[int, ...]:
    """Integers proportional to ``weights`` summing to ``n``, each >= 1.

    Hamilton's largest-remainder method (Balinski & Young 2001, *Fair
    Representation*, ch. 2) with a minimum of 1: floor of each exact share,
    raised to 1 where the share is below 1, then the leftover units to the
    largest remainders ``share - base`` (ties: the smaller x value first; a
    raised count's remainder is negative, so it gets no unit before any
    other).  When the raised counts overshoot ``n``, the units are taken back
    from the largest count.
    """
    share = weights / weights.sum() * n
    base = np.maximum(np.floor(share).astype(int), 1)
    rest = n - int(base.sum())
    order = np.argsort(-(share - base), kind="stable")
    base[order[: max(rest, 0)]] += 1
    for _ in range(-rest):
        base[int(np.argmax(base))] -= 1
    return tuple(int(c) for c in base)


def tie_counts(n: int, k: int | None = None, template: str = "even", counts=None) -> tuple[int, ...]:
    """Counts of each distinct x value, smallest value first.

    Parameters
    ----------
    n : int
        Sample size (>= 10 unless ``template`` is ``custom`` or ``all_distinct``).
    k : int
        Number of distinct values, 4-10 for the named templates.
    template : {"even", "heavy_tail", "heavy_center", "all_distinct", "custom"}
        For n in 73, 80, 81, 82 the named templates are exactly those of
        ``karwowski2018_tie_templates.csv``.  For any other n they are derived
        by one rule: the proportions of the n = 80 template with the same k,
        scaled to n by the largest-remainder method with every count >= 1
        (``even`` uses exactly equal proportions).  ``all_distinct``: n values
        once each.  ``custom``: ``counts`` as given.
    counts : sequence of int, optional
        Only with ``template="custom"``.

    Returns
    -------
    tuple of int
        Sums to ``n``.
    """
    n = check_positive_int(n, "n", minimum=2)
    if template not in TEMPLATES:
        raise ValueError(f"`template` must be one of {list(TEMPLATES)}, got {template!r}")
    if template == "all_distinct":
        return (1,) * n
    if template == "custom":
        if counts is None:
            raise ValueError("`counts` is required with template='custom'")
        out = tuple(int(c) for c in counts)
        if len(out) < 2 or min(out) < 1 or sum(out) != n:
            raise ValueError(f"`counts` must be >= 2 positive integers summing to n = {n}, got {list(out)}")
        if k is not None and k != len(out):
            raise ValueError(
                f"`k` must equal the number of `counts` ({len(out)}) or be left out, "
                f"got k={k!r} with counts {list(out)}"
            )
        return out
    if k is None or isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 4 <= k <= 10:
        raise ValueError(f"`k` must be an integer in 4..10 for template {template!r}, got {k!r}")
    if k > n:
        raise ValueError(f"`k` must not exceed n = {n}, got {k}")
    table = _tabulated_counts()
    if (n, k, template) in table:
        return table[n, k, template]
    if n < 10:
        raise ValueError(f"`n` must be >= 10 for named templates, got {n}")
    weights = np.ones(k) if template == "even" else np.array(table[SHAPE_SOURCE_N, k, template], float)
    return _largest_remainder(weights, n)


def x_values(counts: tuple[int, ...]) -> np.ndarray:
    """The sorted template: ``len(counts)`` equally spaced values over 1.43-3.55 mg, repeated by count."""
    return np.repeat(np.linspace(*X_RANGE_MG, len(counts)), counts)


def generate_cumulative_aluminum_batch(
    n_reps: int, n: int, *, k: int | None = None, template: str = "heavy_center", counts=None, seed=0
) -> np.ndarray:
    """Tied x for ``n_reps`` datasets: the template's values in a fresh random order per row.

    Returns
    -------
    numpy.ndarray, shape (n_reps, n)
    """
    n_reps = check_positive_int(n_reps, "n_reps")
    counts = tie_counts(n, k, template, counts)
    return x_values(counts)[_x_order(n_reps, sum(counts), seed)]


def _x_order(n_reps: int, n: int, seed) -> np.ndarray:
    """Position ``(r, i)`` -> index into the sorted template: each row an independent uniform permutation."""
    return rng_from(seed).permuted(np.tile(np.arange(n), (n_reps, 1)), axis=1)


def _template_midranks(counts: tuple[int, ...]) -> np.ndarray:
    """Midranks of the sorted template (group ``g`` holds ranks ``C_g + 1 .. C_g + c_g``)."""
    c = np.asarray(counts)
    return np.repeat(np.cumsum(c) - c + (c + 1) / 2, c)


def _standardize_rows(a: np.ndarray) -> np.ndarray:
    centred = a - a.mean(axis=1, keepdims=True)
    return centred / np.sqrt((centred**2).mean(axis=1, keepdims=True))


def _check_rho(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not -1 < value < 1:
        raise ValueError(f"`{name}` must be a number in (-1, 1), got {value!r}")
    return float(value)


def _mix(c: float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return c * a + math.sqrt(1 - c * c) * b


def rank_mixing_y(x: np.ndarray, rho_c: float, seed) -> np.ndarray:
    """y for each row of ``x`` by rank mixing with coefficient ``rho_c`` (see module docstring)."""
    _check_rho(rho_c, "rho_c")
    return _mix(rho_c, *_mixing_parts(x, seed))


def _mixing_parts(x: np.ndarray, seed) -> tuple[np.ndarray, np.ndarray]:
    """Standardized midranks of x and standardized normal noise drawn from ``seed``."""
    noise = rng_from(seed).standard_normal(x.shape)
    return _standardize_rows(midranks(x)), _standardize_rows(noise)


# --------------------------------------------------------------------------
# Empirical pools
# --------------------------------------------------------------------------
EXAMPLE_POOL = "example"


def _pool_path(pool: str | Path) -> Path:
    if str(pool) == EXAMPLE_POOL:
        return Path(str(resources.files("simulation.data").joinpath("example_pool.csv")))
    return Path(pool)


def _read_parquet_column(path: str, name: str) -> np.ndarray:
    import pyarrow.parquet as pq  # deferred: pyarrow loads only for a Parquet pool
    import pyarrow.types as pat  # deferred: pyarrow loads only for a Parquet pool

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise ValueError(f"`{name}` file {path!r} is not a readable Parquet file: {exc}") from exc
    if table.num_columns != 1:
        raise ValueError(f"`{name}` file {path!r} must have exactly one column, got {table.column_names}")
    column, name = table.column(0), table.column_names[0]
    if not (pat.is_integer(column.type) or pat.is_floating(column.type)):
        raise ValueError(f"`{name}` file {path!r}: column {name!r} is {column.type}, not numeric")
    if column.null_count:
        raise ValueError(f"`{name}` file {path!r}: column {name!r} has {column.null_count} missing value(s)")
    return column.to_numpy().astype(np.float64)


def _read_csv_column(path: str, name: str) -> np.ndarray:
    lines = [(i, line.strip()) for i, line in enumerate(Path(path).read_text().splitlines(), start=1)]
    lines = [(i, text) for i, text in lines if text]
    if lines and "," in lines[0][1]:
        raise ValueError(f"`{name}` file {path!r} must have exactly one column, got {lines[0][1]!r} on line 1")
    try:
        float(lines[0][1])
    except (IndexError, ValueError):
        lines = lines[1:]  # a header line (or an empty file)
    values = np.empty(len(lines))
    for j, (i, text) in enumerate(lines):
        try:
            values[j] = float(text)
        except ValueError:
            raise ValueError(f"`{name}` file {path!r}, line {i}: {text!r} is not a number") from None
    return values


@functools.lru_cache(maxsize=32)
def _load_values_cached(path: str, mtime_ns: int, size: int, name: str) -> np.ndarray:
    reader = _read_parquet_column if path.lower().endswith(".parquet") else _read_csv_column
    values = reader(path, name)
    if values.size == 0:
        raise ValueError(f"`{name}` file {path!r} holds no values")
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise ValueError(f"`{name}` file {path!r} holds {bad} NaN or infinite value(s); remove them first")
    values.setflags(write=False)
    return values


def load_values(path: str | Path, name: str = "values") -> np.ndarray:
    """Finite numbers from a one-column CSV (optional header) or Parquet file (one numeric column).

    Raises
    ------
    ValueError
        Missing file, more than one column, non-numeric, NaN or infinite
        values, or no values; the message starts with `` `name` file``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"`{name}` file {str(path)!r} does not exist (give a CSV or Parquet path)")
    stat = path.stat()
    return _load_values_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size, name)


def load_pool(pool: str | Path) -> np.ndarray:
    """The values of an empirical y pool: a CSV (one column, optional header) or Parquet file (one numeric column).

    ``"example"`` is the packaged synthetic pool (``simulation/data/example_pool.csv``:
    200 log-normal values, median about 15, rounded to 0.1 so it has ties
    like real laboratory data; not the study's data, which are not public).

    Raises
    ------
    ValueError
        Missing file, more than one column, non-numeric, NaN or infinite values, empty pool.
    """
    path = _pool_path(pool)
    if not path.is_file():
        raise ValueError(f"`pool` file {str(pool)!r} does not exist (give a CSV or Parquet path, or {EXAMPLE_POOL!r})")
    return load_values(path, "pool")


# --------------------------------------------------------------------------
# y given tied x: the mixing family
# --------------------------------------------------------------------------
#: Generators of y given tied x, all of the form "order y like c * a + sqrt(1 - c^2) * b".
TIED_GENERATORS = ("rank_mixing", "gaussian_copula", "log_linear", "empirical")


def lognormal_parameters(median: float, iqr: float) -> tuple[float, float]:
    """``(mu, sigma)`` of the log-normal with this median and interquartile range.

    Median ``exp(mu)``; quartiles ``exp(mu -/+ z sigma)`` with ``z = Phi^-1(0.75)``
    (log-normal quantiles, Johnson, Kotz & Balakrishnan 1994, Continuous
    Univariate Distributions 1, ch. 14), so ``IQR = 2 median sinh(z sigma)``
    and ``sigma = asinh(IQR / (2 median)) / z``.
    """
    for name, value in (("y_median", median), ("y_iqr", iqr)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 < value < math.inf:
            raise ValueError(f"`{name}` must be a positive finite number, got {value!r}")
    return math.log(median), math.asinh(iqr / (2 * median)) / float(ndtri(0.75))


class _TiedParts(NamedTuple):
    x: np.ndarray
    a: np.ndarray
    b: np.ndarray
    #: Each row's y values in increasing order (``empirical``), else None.
    y_sorted: np.ndarray | None
    #: Midranks of x where already computed, else None.
    x_ranks: np.ndarray | None = None
    #: Tie group of x (0 = smallest value) at each position.
    x_group: np.ndarray | None = None


class RankInputs(NamedTuple):
    """What Spearman's rho and its jackknife need of a batch, without x or y themselves.

    Observation ``i`` of row ``r`` lies in x tie group ``x_group[r, i]``
    (``n_x_groups[r]`` groups, 0 = smallest), and its y value is the
    ``k``-th smallest of the row when ``y_score[r, i]`` is the ``k``-th
    smallest score, in y tie group ``y_group_of_rank[r, k]``.  Used by
    :func:`rank_statistics`: the study's controls and cheap phase.
    """

    x_group: np.ndarray
    n_x_groups: np.ndarray
    y_score: np.ndarray
    y_group_of_rank: np.ndarray
    n_y_groups: np.ndarray
    #: ``mean_i a_i erf(b_i / sqrt 2)`` of the mixing draws (``a`` the x score, ``b`` the noise);
    #: its expectation is exactly 0 (``b`` is symmetric and independent of ``a``), so it is a
    #: control variate for the expected sample Spearman (see :func:`expected_sample_spearman`).
    truth_control: np.ndarray | None = None


def rank_statistics(inputs: RankInputs, *, jackknife: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Spearman's rho and its jackknife standard error ``(m,)`` each (exact tie handling; the SE is
    NaN without ``jackknife``)."""
    return _kernels.cheap_statistics_rows(
        np.ascontiguousarray(inputs.x_group, dtype=np.int64),
        np.ascontiguousarray(inputs.n_x_groups, dtype=np.int64),
        np.ascontiguousarray(inputs.y_score, dtype=np.float64),
        np.ascontiguousarray(inputs.y_group_of_rank, dtype=np.int64),
        np.ascontiguousarray(inputs.n_y_groups, dtype=np.int64),
        jackknife,
    )


class Truth(NamedTuple):
    """A scenario's estimand as measured (:func:`expected_sample_spearman`), or exact (``mcse`` 0)."""

    value: float
    #: Monte Carlo standard error of ``value``.
    mcse: float
    #: Datasets it was measured on (0 when exact).
    n_reps: int
    #: The expected estimate at the scenario's n where it differs from ``value`` (a ``population`` estimand:
    #: measured, :func:`simulation.statistics.custom.measured_truth`), the centre of bias-eliminated
    #: coverage; NaN where it is ``value`` itself (an ``expected_sample`` estimand).
    centre: float = math.nan
    #: Monte Carlo standard error of ``centre`` (0 when exact or NaN).
    centre_mcse: float = 0.0

    @property
    def expected_estimate(self) -> float:
        """The expected estimate at the scenario's n: :attr:`centre` where measured, else :attr:`value`."""
        return self.centre if math.isfinite(self.centre) else self.value


#: Datasets per step of the truth measurement (in fewer datasets of as many pairs above n = 2,000:
#: :func:`draws_at`), and the most it draws.
TRUTH_CHUNK = 5000
TRUTH_MAX_REPS = 2_000_000


def expected_sample_spearman(
    model: str,
    counts: tuple[int, ...],
    coefficient: float,
    seed,
    *,
    target_mcse: float,
    pool=None,
    chunk: int | None = None,
    max_reps: int = TRUTH_MAX_REPS,
    estimates=None,
) -> Truth:
    """The expected sample Spearman of ``model`` at ``coefficient``, to a Monte Carlo error of ``target_mcse``.

    ``estimates``: another statistic of the same datasets, a function of their
    :class:`RankInputs` (e.g. Kendall's tau-b); the control ``u`` and the
    zero at ``coefficient`` 0 hold for any rank correlation whose expectation
    vanishes under independence.

    Draws datasets (:func:`tied_cheap_inputs`, ``chunk`` at a time from
    ``child_seed(seed, step)``) until the MCSE is at most ``target_mcse`` (or
    ``max_reps`` are drawn).  The estimate is the control-variate mean
    ``mean(r) - beta mean(u)`` with ``u`` the mixing draws' ``mean a erf(b /
    sqrt 2)``, whose expectation is exactly 0 because ``b`` is symmetric and
    independent of ``a``; ``beta`` is the least-squares slope, and the MCSE
    is the residual SD over ``sqrt(n)`` (Glasserman 2004, *Monte Carlo
    Methods in Financial Engineering*, §4.1.1, eqs. 4.2-4.5).  ``u`` removes
    98-99% of the variance of ``r`` at n = 73-82 (variance ratios 76-114,
    measured), so 0.0005 takes about 1,000 datasets and 0.0001 about 25,000.
    Deterministic: the stopping point depends only on the draws.

    At ``coefficient`` 0 the value is exact: y's order depends on the noise
    alone, independent of x, so ``E r = 0`` (x's positions are exchangeable)
    and ``Truth(0.0, 0.0, 0)`` is returned without drawing.
    """
    if isinstance(target_mcse, bool) or not isinstance(target_mcse, (int, float)) or not 0 < target_mcse < 1:
        raise ValueError(f"`truth_mcse` must be a number in (0, 1), got {target_mcse!r}")
    if coefficient == 0.0:
        return Truth(0.0, 0.0, 0)
    chunk = draws_at(TRUTH_CHUNK, int(sum(counts))) if chunk is None else chunk
    moments = Moments.empty(2)
    step = 0
    estimate, mcse = math.nan, math.inf
    while moments.n < max_reps:
        inputs = tied_cheap_inputs(model, chunk, counts, coefficient, child_seed(seed, step), pool, truth_control=True)
        r = rank_statistics(inputs, jackknife=False)[0] if estimates is None else estimates(inputs)
        moments = moments.merge(Moments.of(np.column_stack([r, inputs.truth_control])))
        step += 1
        m2 = moments.m2
        beta = m2[0, 1] / m2[1, 1] if m2[1, 1] > 0 else 0.0
        estimate = float(moments.mean[0] - beta * moments.mean[1])
        mcse = math.sqrt(max(m2[0, 0] - beta * m2[0, 1], 0.0) / (moments.n - 2) / moments.n)
        if mcse <= target_mcse:
            break
    return Truth(estimate, mcse, moments.n)




def untied_y_groups(m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``y_group_of_rank`` and ``n_y_groups`` for untied y (every value its own group)."""
    return np.broadcast_to(np.arange(n, dtype=np.int64), (m, n)), np.full(m, n, dtype=np.int64)


def tied_y_groups(y_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tie group of each rank for rows of sorted y values (a new group wherever the value changes)."""
    m = y_sorted.shape[0]
    step = np.concatenate([np.zeros((m, 1), np.int64), (np.diff(y_sorted, axis=1) != 0).astype(np.int64)], axis=1)
    groups = np.cumsum(step, axis=1)
    return groups, groups[:, -1] + 1


def _mixing_truth_control(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``mean_i a_i erf(b_i / sqrt 2)`` per row: odd in ``b``, so its expectation is exactly 0."""
    return np.mean(a * erf(b / math.sqrt(2.0)), axis=1)


class _Draws(NamedTuple):
    """The random numbers of a tied-x batch that do not depend on the tie counts."""

    #: Row ``r``: position ``i`` holds the ``order[r, i]``-th smallest template value.
    order: np.ndarray
    #: The copula's latent normal x (``gaussian_copula`` only), else None.
    latent: np.ndarray | None
    noise: np.ndarray


def _draws(copula: bool, n_reps: int, n: int, seed) -> _Draws:
    """Streams: child 0 of ``seed`` places x (a permutation, or the copula's latent normal), child 1 the noise."""
    noise = rng_from(child_seed(seed, 1)).standard_normal((n_reps, n))
    if copula:
        latent = rng_from(child_seed(seed, 0)).standard_normal((n_reps, n))
        # x takes the template's values in the order of the latent normal: counts stay fixed
        return _Draws(np.argsort(np.argsort(latent, axis=1), axis=1), latent, noise)
    return _Draws(_x_order(n_reps, n, child_seed(seed, 0)), None, noise)


@functools.lru_cache(maxsize=16)
def _calibration_draws(copula: bool, n_cal: int, n: int, seed: int) -> tuple[_Draws, np.ndarray]:
    """:func:`_draws` of a calibration (integer seed), and the standardized noise, shared by all
    scenarios with the same n: only the template differs between them."""
    draws = _draws(copula, n_cal, n, np.random.SeedSequence(seed))
    noise_std = _standardize_rows(draws.noise)
    for arr in (*[d for d in draws if d is not None], noise_std):
        arr.setflags(write=False)
    return draws, noise_std


def _tied_parts(
    model: str, n_reps: int, counts: tuple[int, ...], seed, pool, shared: tuple[_Draws, np.ndarray] | None = None
) -> _TiedParts:
    """Everything a dataset of ``model`` needs besides its coefficient.

    Streams: see :func:`_draws`; child 2 of ``seed`` draws the pool sample
    (``empirical`` only).  ``shared``: the draws and standardized noise when
    already at hand (calibration), identical to what ``seed`` gives.
    """
    n = sum(counts)
    draws, noise_std = shared if shared is not None else (_draws(model == "gaussian_copula", n_reps, n, seed), None)
    values = x_values(counts)
    x = values[draws.order]
    x_group = _group_of_position(counts)[draws.order]
    if model == "gaussian_copula":
        return _TiedParts(x, draws.latent, draws.noise, None, x_group=x_group)
    if model == "log_linear":
        return _TiedParts(x, _standard_values(counts)[draws.order], draws.noise, None, x_group=x_group)
    # x is a permutation of the template, so its midranks are the template's, permuted,
    # and every row has the same rank mean (n + 1) / 2 and SD
    x_ranks = _template_midranks(counts)[draws.order]
    a = _standard_ranks(counts)[draws.order]
    b = _standardize_rows(draws.noise) if noise_std is None else noise_std
    if model == "rank_mixing":
        return _TiedParts(x, a, b, None, x_ranks, x_group)
    values = _pool_values(pool, n)
    y_sorted = _sorted_pool_samples(
        values, n, n_reps, lambda: rng_from(child_seed(seed, 2)).random((n_reps, values.size)).argsort(axis=1)
    )
    return _TiedParts(x, a, b, y_sorted, x_ranks, x_group)


def _sorted_pool_samples(values: np.ndarray, n: int, n_reps: int, draw: Callable[[], np.ndarray]) -> np.ndarray:
    """Each row's sample of n pool ``values`` (without replacement), sorted: the first n of the row's random
    order of the pool (``draw()``, ``(n_reps, pool size)``).  A pool of exactly n values (analyze's design)
    is every row's sample, so its sorted values are the rows' without a draw (the stream is used for
    nothing else): the same arrays, without sorting ``n_reps`` permutations of n values."""
    if values.size == n:
        return np.tile(np.sort(values), (n_reps, 1))
    return np.sort(values[draw()[:, :n]], axis=1)


def _pool_values(pool, n: int) -> np.ndarray:
    values = load_pool(pool)
    if values.size < n:
        raise ValueError(
            f"`pool` {str(pool)!r} holds {values.size} values, fewer than n = {n} (drawn without replacement)"
        )
    return values


def _group_of_position(counts: tuple[int, ...]) -> np.ndarray:
    """Tie group of each position of the sorted template."""
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts)


def _standard_values(counts: tuple[int, ...]) -> np.ndarray:
    """The sorted template's values, standardized (the ``log_linear`` x score)."""
    values = x_values(counts)
    return (values - values.mean()) / values.std()


def _standard_ranks(counts: tuple[int, ...]) -> np.ndarray:
    """The sorted template's midranks, standardized (the rank-mixing x score)."""
    ranks = _template_midranks(counts)
    n = ranks.shape[0]
    return (ranks - (n + 1) / 2) / ranks.std()


def score_rank_inputs(x_score: np.ndarray, y_score: np.ndarray) -> RankInputs:
    """:class:`RankInputs` of continuous data given as scores (x's ranks are the x scores' ranks)."""
    m, n = x_score.shape
    groups, n_groups = untied_y_groups(m, n)
    x_group = _kernels.score_ranks_rows(np.ascontiguousarray(x_score, dtype=np.float64))
    return RankInputs(x_group, np.full(m, n, dtype=np.int64), y_score, groups, n_groups)


def tied_rank_inputs(
    model: str, parts: _TiedParts, coefficient: float, *, truth_control: bool = False
) -> RankInputs:
    """:class:`RankInputs` of generated tied-x datasets (the very datasets :func:`generate_tied_batch` returns).

    y's order is that of the mixed score ``c a + sqrt(1 - c^2) b`` for every
    model: ``log_linear`` applies an increasing transform to it and
    ``empirical`` places the sorted pool sample by it (its ties become y's tie
    groups).  ``truth_control``: also the mixing draws' control of known mean
    (for :func:`expected_sample_spearman`).
    """
    m, n = parts.a.shape
    if parts.y_sorted is None:
        groups, n_groups = untied_y_groups(m, n)
    else:
        groups, n_groups = tied_y_groups(parts.y_sorted)
    k = int(parts.x_group.max(initial=0)) + 1
    return RankInputs(
        parts.x_group,
        np.full(m, k, dtype=np.int64),
        _mix(coefficient, parts.a, parts.b),
        groups,
        n_groups,
        _mixing_truth_control(parts.a, parts.b) if truth_control else None,
    )


def tied_cheap_inputs(
    model: str,
    n_reps: int | Sequence[tuple[int, object]],
    counts: tuple[int, ...],
    coefficient: float,
    seed=None,
    pool=None,
    *,
    truth_control: bool = False,
) -> RankInputs:
    """:class:`RankInputs` of ``n_reps`` datasets of ``model`` drawn the cheap way (same distribution).

    Spearman's rho, its jackknife and every interval are functions of the
    multiset of pairs, and the positions that :func:`generate_tied_batch`
    shuffles carry independent, exchangeable noise; so pairing the sorted
    template with fresh noise gives datasets with exactly the distribution of
    generated ones, without drawing a permutation (about a third of the cost
    of a dataset at n = 80).  The Gaussian copula's x order comes from its
    latent normal and is drawn as in generation.  Streams: child 0 of ``seed``
    the copula's latent x, child 1 the noise, child 2 the pool sample.

    ``n_reps`` may instead be a list of ``(datasets, seed)`` blocks, each on
    its own seed: their datasets are stacked in order (one computation for
    many blocks; a block's datasets do not depend on the others).
    """
    counts = tuple(counts)
    n = sum(counts)
    blocks = [(check_positive_int(n_reps, "n_reps"), seed)] if isinstance(n_reps, int) else list(n_reps)
    n_reps = sum(size for size, _ in blocks)

    def stacked(stream: int, sample) -> np.ndarray:
        """``sample(rng, size)`` of every block on child ``stream`` of its seed, stacked in order."""
        return np.concatenate([sample(rng_from(child_seed(s, stream)), size) for size, s in blocks])

    noise = stacked_normals(blocks, 1, n)
    groups_of_position = _group_of_position(counts)
    if model == "gaussian_copula":
        latent = stacked_normals(blocks, 0, n)
        x_group = groups_of_position[_kernels.score_ranks_rows(latent)]
        parts = _TiedParts(None, latent, noise, None, x_group=x_group)
    else:
        x_group = np.broadcast_to(groups_of_position, (n_reps, n))
        if model == "log_linear":
            a = np.broadcast_to(_standard_values(counts), (n_reps, n))
            parts = _TiedParts(None, a, noise, None, x_group=x_group)
        else:
            a = np.broadcast_to(_standard_ranks(counts), (n_reps, n))
            y_sorted = None
            if model == "empirical":
                values = _pool_values(pool, n)
                # a uniform random n-subset of the pool per row (any uniform subset has the law of generation's)
                pool_index = np.arange(values.size)
                y_sorted = _sorted_pool_samples(values, n, n_reps, lambda: stacked(
                    2, lambda rng, size: rng.permuted(np.tile(pool_index, (size, 1)), axis=1)))  # fmt: skip
            parts = _TiedParts(None, a, _standardize_rows(noise), y_sorted, x_group=x_group)
    return tied_rank_inputs(model, parts, coefficient, truth_control=truth_control)


def stacked_normals(blocks: Sequence[tuple[int, object]], stream: int, n: int) -> np.ndarray:
    """Standard normals ``(sum of sizes, n)``: block ``(size, seed)``'s rows from child ``stream`` of its seed,
    in order; drawn straight into one array (the same values as drawing each block and stacking them,
    without the copy)."""
    out = np.empty((sum(size for size, _ in blocks), n))
    start = 0
    for size, seed in blocks:
        rng_from(child_seed(seed, stream)).standard_normal(out=out[start : start + size])
        start += size
    return out


def tied_cheap_statistics(
    model: str, blocks: Sequence[tuple[int, object]], counts: tuple[int, ...], coefficient: float, pool=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spearman's rho, jackknife SE and the mixing draws' control ``u`` (expectation exactly 0, see
    :class:`RankInputs`) of the cheap datasets of :func:`tied_cheap_inputs` (same blocks, same
    distribution): for rank mixing and the log-linear model computed in one kernel pass from the
    noise (:func:`simulation.engine._kernels.template_statistics_rows`), else through :class:`RankInputs`."""
    if model not in ("rank_mixing", "log_linear"):
        inputs = tied_cheap_inputs(model, blocks, counts, coefficient, pool=pool, truth_control=True)
        return (*rank_statistics(inputs), inputs.truth_control)
    counts = tuple(counts)
    n = sum(counts)
    noise = stacked_normals(blocks, 1, n)
    a = _standard_ranks(counts) if model == "rank_mixing" else _standard_values(counts)
    return _kernels.template_statistics_rows(
        _group_of_position(counts), len(counts), a, noise, float(coefficient), model == "rank_mixing"
    )


def _tied_y(model: str, parts: _TiedParts, c: float, y_median: float | None, y_iqr: float | None) -> np.ndarray:
    mixed = _mix(c, parts.a, parts.b)
    if model == "log_linear":
        mu, sigma = lognormal_parameters(y_median, y_iqr)
        return np.exp(mu + sigma * mixed)
    if model == "empirical":
        y = np.empty_like(mixed)
        np.put_along_axis(y, np.argsort(mixed, axis=1), parts.y_sorted, axis=1)
        return y
    return mixed


def _check_model(model: str, pool, y_median, y_iqr) -> None:
    if model not in TIED_GENERATORS:
        raise ValueError(f"`generator` must be one of {list(TIED_GENERATORS)}, got {model!r}")
    if model == "empirical" and pool is None:
        raise ValueError("`pool` is required for generator 'empirical' (a CSV/Parquet path or 'example')")
    if model == "log_linear":
        lognormal_parameters(y_median, y_iqr)


def generate_tied_batch(
    model: str,
    n_reps: int,
    counts: tuple[int, ...],
    coefficient: float,
    seed,
    *,
    pool: str | None = None,
    y_median: float | None = None,
    y_iqr: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``, each ``(n_reps, n)``, from a generator of y given tied x.

    Parameters
    ----------
    model : {"rank_mixing", "gaussian_copula", "log_linear", "empirical"}
        * ``rank_mixing``: y = c s_x + sqrt(1 - c^2) s_noise (standardized
          midranks and standardized noise; Iman & Conover 1982).
        * ``gaussian_copula``: latent bivariate normal (z, c z + sqrt(1 - c^2) e);
          x gets the template's values in the order of z, y is the latent normal.
        * ``log_linear``: log y = mu + sigma (c z_x + sqrt(1 - c^2) e), z_x the
          template-standardized x, ``(mu, sigma)`` from ``y_median`` and
          ``y_iqr`` (:func:`lognormal_parameters`); exactly E log y = mu and
          Var log y = sigma^2.
        * ``empirical``: n values drawn without replacement from ``pool``
          placed in the order of the rank-mixing score (Iman-Conover), so y
          has the pool's distribution and its ties.
    counts : tuple of int
        Tie counts of x (:func:`tie_counts`).
    coefficient : float
        The mixing coefficient ``c`` in (-1, 1), usually from :func:`calibrate_tied`.
    seed : int or numpy.random.SeedSequence
    """
    _check_model(model, pool, y_median, y_iqr)
    n_reps = check_positive_int(n_reps, "n_reps")
    parts = _tied_parts(model, n_reps, tuple(counts), seed, pool)
    return parts[0], _tied_y(model, parts, _check_rho(coefficient, "coefficient"), y_median, y_iqr)


def generate_rank_mixing_batch(
    n_reps: int, counts: tuple[int, ...], rho_c: float, seed
) -> tuple[np.ndarray, np.ndarray]:
    """The exact generation path of the rank-mixing scenarios: ``(x, y)``, each ``(n_reps, n)``."""
    return generate_tied_batch("rank_mixing", n_reps, counts, rho_c, seed)


class Calibration(NamedTuple):
    """Result of :func:`calibrate_tied`: the coefficient and the truth it implies."""

    coefficient: float
    #: Expected sample Spearman at ``coefficient`` as estimated on the calibration datasets: the
    #: control-variate mean (see :class:`MixingSample`); exactly 0 at coefficient 0.
    achieved: float
    #: Monte Carlo standard error of ``achieved`` (the control-variate residual SD over
    #: ``sqrt(n_cal)``); 0 when exact (target 0).
    mcse: float


#: Mixing coefficients are searched in [-C_MAX, C_MAX].
C_MAX = 0.9999
#: Calibration datasets: with the mixing control the calibration MCSE is at most 0.00016 over the
#: default study's 88 scenarios (n = 73-82), so every target is met to 0.0005 (3 MCSE).
DEFAULT_N_CAL = 8000
#: Above this n a calibration's and a truth's draws hold the pairs they hold at this n, in fewer datasets
#: (:func:`draws_at`): their precision depends on n times the datasets drawn (a sample correlation's variance
#: falls like 1/n), so it stays at least what it is at this n, while their memory and time stop growing
#: with n.  At and below it nothing changes.
FULL_DRAWS_MAX_N = 2000


def draws_at(datasets: int, n: int, minimum: int = 10) -> int:
    """The datasets a draw of ``datasets`` (its size at n <= :data:`FULL_DRAWS_MAX_N`) holds at ``n``: the
    same number up to that n, above it as many pairs as at that n (``ceil(datasets x 2000 / n)``, at least
    ``minimum``)."""
    if n <= FULL_DRAWS_MAX_N:
        return datasets
    return max(minimum, -(-datasets * FULL_DRAWS_MAX_N // n))
#: Generators whose expected sample Spearman is exactly odd in the mixing coefficient: ``-c`` is
#: ``c`` with the noise's sign flipped (the noise is symmetric and independent of x) and y's order
#: reversed, which negates Spearman exactly (untied y).  ``empirical`` is not: reversing the
#: order of a tied pool sample does not mirror its tie pattern.
ODD_GENERATORS = ("rank_mixing", "gaussian_copula", "log_linear")
#: Version of the calibration procedure: part of a run's identity and of the calibration cache.
#: 2 = the mixing control variate, coefficient exactly 0 at target 0, odd symmetry; 3 = derived tie
#: templates' largest remainders fixed (counts change for some n <= 19 with k >= 7), so a results folder
#: of such a design is refused on resume instead of mixed.
CALIBRATION_VERSION = "cv-mixing-u+exact-null+odd-v3"


def control_variate_mean(r: np.ndarray, u: np.ndarray) -> tuple[float, float]:
    """``(mean(r) - beta mean(u), MCSE)`` for a control ``u`` of known mean 0.

    ``beta`` is the least-squares slope of ``r`` on ``u`` and the MCSE the
    residual SD (``n - 2`` degrees of freedom) over ``sqrt(n)`` (Glasserman
    2004, *Monte Carlo Methods in Financial Engineering*, §4.1.1, eqs.
    4.2-4.5).  Non-finite ``r`` values (constant y) are left out with their ``u``.
    """
    keep = np.isfinite(r)
    r, u = r[keep], u[keep]
    m = r.size
    rc, uc = r - r.mean(), u - u.mean()
    suu = float(uc @ uc)
    beta = float(rc @ uc) / suu if suu > 0 else 0.0
    resid = float(rc @ rc) - beta * float(rc @ uc)
    return float(r.mean() - beta * u.mean()), math.sqrt(max(resid, 0.0) / (m - 2) / m)


#: Fewest pairs at which :class:`MixingSample` merges x's tie groups instead of re-sorting: the merge reads
#: every score once per group, the warm insertion sort about once when ``c`` moves little but sorts afresh
#: when a step moves more than a few places per observation, as the steps of a power grid do at large n.
#: Measured (20 coefficients, 8,000 datasets of 6 groups, 2 cores): at n = 2,000 the merge 2.4 s, the sort
#: 1.2 s for steps of 0.0001 and 10.4 s for steps of 0.02; at n = 80, 0.10 s against 0.04 s for small
#: steps; at n = 1,000,000 a calibration's evaluation 11 times faster.
MERGE_MIN_N = 2_000


class MixingSample:
    """Sample Spearman of ``m`` datasets whose y is ordered like ``c a + sqrt(1 - c^2) b``, for any ``c``.

    The draws ``a``, ``b`` and the (doubled) midrank deviations ``ax`` of x
    and ``ay`` of the sorted y values stay fixed (common random numbers), so
    ``sample_r`` is a smooth function of ``c`` up to rank swaps.  Used by
    calibration and by power curves.  :meth:`estimate` is the expected
    sample Spearman at ``c`` with the mixing control ``u = mean a erf(b /
    sqrt 2)`` (expectation exactly 0), which removes 98-99% of the variance
    of the plain mean at n = 30-80 (see :func:`expected_sample_spearman`).
    """

    def __init__(
        self,
        a: np.ndarray,
        b: np.ndarray,
        x_ranks: np.ndarray,
        y_sorted: np.ndarray | None = None,
        x_group: np.ndarray | None = None,
    ):
        self.a, self.b = np.ascontiguousarray(a), np.ascontiguousarray(b)
        m, n = self.a.shape
        self.ax = 2 * x_ranks - (n + 1)
        if y_sorted is None:  # untied y: the j-th smallest has rank j + 1
            self.ay = np.tile(2 * np.arange(n, dtype=np.float64) + 1 - n, (m, 1))
        else:
            self.ay = 2 * midranks(y_sorted) - (n + 1)
        self.order: np.ndarray | None = None
        self._u: np.ndarray | None = None
        self._x_group = x_group
        self._merge: tuple | None = None

    @classmethod
    def from_parts(cls, parts: _TiedParts) -> MixingSample:
        x_ranks = midranks(parts.x) if parts.x_ranks is None else parts.x_ranks
        return cls(parts.a, parts.b, x_ranks, parts.y_sorted, parts.x_group)

    def _merged(self) -> tuple | None:
        """The groups' sorted noise (:func:`simulation.engine._kernels.group_sorted_noise`) where x falls in at
        most :data:`~simulation.engine._kernels.MERGE_MAX_GROUPS` tie groups within which ``a`` is constant
        (the tied generators but the Gaussian copula's), built at the first call; else None."""
        if self._merge is None:
            self._merge = ()
            if self._x_group is not None and self.a.shape[1] >= MERGE_MIN_N:
                x_group = np.ascontiguousarray(self._x_group, dtype=np.int64)
                k = int(x_group.max(initial=0)) + 1
                if k <= _kernels.MERGE_MAX_GROUPS:
                    *arrays, ok = _kernels.group_sorted_noise(self.a, self.b, self.ax, self.ay, x_group, k)
                    if ok:
                        self._merge = tuple(arrays)
        return self._merge or None

    def sample_r(self, c: float) -> np.ndarray:
        """Spearman's rho of every dataset at coefficient ``c``: a merge of x's groups where the scores are
        sorted within them (:func:`simulation.engine._kernels.merged_spearman_rows`), else an insertion sort
        from the previous order; the same values either way."""
        if (merged := self._merged()) is not None:
            bg, starts, a_group, ax_group, sxx, syy = merged
            return _kernels.merged_spearman_rows(c, bg, starts, a_group, ax_group, self.ay, sxx, syy)
        if self.order is None:  # NumPy's vectorized sort is the fastest cold start
            self.order = np.ascontiguousarray(np.argsort(_mix(c, self.a, self.b), axis=1), dtype=np.int64)
        return _kernels.mixed_order_spearman_rows(c, self.a, self.b, self.ax, self.ay, self.order, True)

    @property
    def u(self) -> np.ndarray:
        """The mixing control of each dataset (computed once)."""
        if self._u is None:
            self._u = _mixing_truth_control(self.a, self.b)
        return self._u

    def estimate(self, c: float) -> tuple[float, float]:
        """The expected sample Spearman at ``c`` and its MCSE (:func:`control_variate_mean`)."""
        return control_variate_mean(self.sample_r(c), self.u)

    def mean_r(self, c: float) -> float:
        """The control-variate estimate of the expected sample Spearman at ``c`` (see :meth:`estimate`)."""
        return self.estimate(c)[0]


def _objective(model: str, counts: tuple[int, ...], n_cal: int, seed: int, pool) -> MixingSample:
    """The calibration datasets of ``model`` as a :class:`MixingSample` (the exact generation path)."""
    shared = _calibration_draws(model == "gaussian_copula", n_cal, sum(counts), seed)
    return MixingSample.from_parts(_tied_parts(model, n_cal, counts, np.random.SeedSequence(seed), pool, shared))


def calibrate_tied_grid(
    model: str,
    targets,
    counts: tuple[int, ...],
    *,
    pool: str | None = None,
    n_cal: int | None = None,
    seed: int = 0,
) -> list[Calibration]:
    """Multipoint calibration: one :class:`Calibration` per target, all on the same calibration datasets.

    For each target solves ``E r(c) = target``, where ``E r(c)`` is the
    expected sample Spearman of datasets drawn by :func:`generate_tied_batch`
    at coefficient ``c``, estimated on ``n_cal`` datasets with common random
    numbers (the exact generation path: the noise, pool draws and tie
    handling are those of the generated data, and the sample Spearman is
    computed with ties) and the mixing control variate
    (:meth:`MixingSample.estimate`), so the estimate is smooth and
    increasing in ``c`` and about ten times more precise than the plain
    mean: ``mcse`` at most 0.00016 at n = 73-82 and ``n_cal`` = 8000 (the default study).  ``n_cal`` left
    out: :data:`DEFAULT_N_CAL`, in fewer datasets of as many pairs above n = 2,000 (:func:`draws_at`).  The
    truth it declares is the *expected sample Spearman at this n and tie structure*.
    With common random numbers the targets of a grid differ by exactly what
    their coefficients change, which keeps power curves smooth.

    Exact where the model is: target 0 gives coefficient exactly 0 for every
    generator (y's order then depends on the noise alone, independent of x,
    so the data are independent and ``E r = 0`` exactly: ``achieved`` 0,
    ``mcse`` 0), and for :data:`ODD_GENERATORS` a negative target is the
    mirror of the positive one, ``c(-t) = -c(t)`` exactly.

    The root is located to ``|estimate(c) - target| < 1e-6`` (see
    :func:`_solve`), far below the calibration MCSE.

    Raises
    ------
    ValueError
        A target outside the range this tie structure can reach (the message
        gives the range), or bad arguments.
    """
    _check_model(model, pool, 1.0, 1.0)
    n_cal = draws_at(DEFAULT_N_CAL, int(sum(counts))) if n_cal is None else n_cal
    n_cal = check_positive_int(n_cal, "n_cal", minimum=10)
    targets = [_check_rho(float(t), "target") for t in np.atleast_1d(np.asarray(targets, dtype=float))]
    if not targets:
        raise ValueError("`targets` must hold at least one correlation")
    objective = _objective(model, tuple(counts), n_cal, seed, pool)
    out = []
    for target in targets:
        if target == 0.0:
            out.append(Calibration(0.0, 0.0, 0.0))
            continue
        sign = -1.0 if model in ODD_GENERATORS and target < 0 else 1.0
        c = _solve(objective, sign * target, model, counts, asked=target)
        achieved, mcse = objective.estimate(c)
        out.append(Calibration(sign * float(c), sign * achieved, mcse))
    return out


def _reach(objective: MixingSample, model: str) -> tuple[float, float]:
    """The estimated expected sample Spearman at ``-C_MAX`` and ``C_MAX`` (mirrored for odd models)."""
    hi = objective.mean_r(C_MAX)
    return (-hi if model in ODD_GENERATORS else objective.mean_r(-C_MAX)), hi


def _solve(objective: MixingSample, target: float, model: str, counts, asked: float | None = None) -> float:
    """Root of ``estimate(c) = target``: secant steps from ``c = target``, Brent's method as the safe fallback.

    The estimate is increasing and close to the identity for moderate
    targets, so the secant method usually converges in 2-4 evaluations.  It
    stops when ``|estimate(c) - target| < 1e-6``: at a finer scale the
    estimate is a step function (it changes when two scores of a calibration
    dataset swap order; steps of about 3e-7 at n = 80, n_cal = 4000), so a
    tolerance on ``c`` alone could chase steps.  A step that leaves
    [-C_MAX, C_MAX], or no convergence in 8 steps, falls back to Brent's
    method on the whole bracket, which also detects unreachable targets
    (``asked``: the target as the user gave it, for the message).
    """
    c0 = target
    f0 = objective.mean_r(c0) - target
    if abs(f0) < 1e-6:
        return c0
    c1 = c0 - f0  # slope-1 first step
    for _ in range(8):
        if not -C_MAX <= c1 <= C_MAX:
            break
        f1 = objective.mean_r(c1) - target
        if abs(f1) < 1e-6:
            return c1
        if f1 == f0:
            break
        c0, c1, f0 = c1, c1 - f1 * (c1 - c0) / (f1 - f0), f1
    lo, hi = _reach(objective, model)
    if not lo < target < hi:
        raise ValueError(
            f"target Spearman {target if asked is None else asked:g} cannot be reached by generator {model!r} "
            f"with tie counts {list(counts)}: the expected sample Spearman ranges over ({lo:.4f}, {hi:.4f})"
        )
    return brentq(lambda v: objective.mean_r(v) - target, -C_MAX, C_MAX, xtol=1e-7)


def reachable_range(
    model: str, counts: tuple[int, ...], *, pool: str | None = None, n_cal: int | None = None, seed: int = 0
) -> tuple[float, float]:
    """The expected sample Spearman at the mixing coefficients ``-C_MAX`` and ``C_MAX`` (exactly symmetric
    for :data:`ODD_GENERATORS`): the targets :func:`calibrate_tied_grid` can reach with this model and tie
    structure lie strictly between them."""
    _check_model(model, pool, 1.0, 1.0)
    n_cal = draws_at(DEFAULT_N_CAL, int(sum(counts))) if n_cal is None else n_cal
    objective = _objective(model, tuple(int(c) for c in counts), n_cal, seed, pool)
    return _reach(objective, model)


@functools.lru_cache(maxsize=4096)
def calibrate_tied(
    model: str,
    target: float,
    counts: tuple[int, ...],
    *,
    pool: str | None = None,
    n_cal: int | None = None,
    seed: int = 0,
) -> Calibration:
    """Single-point calibration (cached per model, target, tie structure and pool); see :func:`calibrate_tied_grid`."""
    return calibrate_tied_grid(model, [target], counts, pool=pool, n_cal=n_cal, seed=seed)[0]


def calibrate_rank_mixing(
    target: float, counts: tuple[int, ...], *, n_cal: int | None = None, seed: int = 0
) -> Calibration:
    """Mixing coefficient whose expected sample Spearman equals ``target`` (rank mixing).

    Returns
    -------
    Calibration
        ``(coefficient, achieved, mcse)``: the coefficient, the mean sample
        Spearman it achieves on the calibration datasets, and that mean's
        Monte Carlo standard error: the precision of the declared truth.
    """
    return calibrate_tied("rank_mixing", target, tuple(counts), n_cal=n_cal, seed=seed)


# Continuous models live in simulation.models.continuous; re-exported here for one import point.
bivariate_normal_spearman = continuous.bivariate_normal_spearman
generate_bivariate_normal_batch = continuous.generate_bivariate_normal_batch
