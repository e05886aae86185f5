"""Data-generating processes: batch generators returning ``(n_reps, n)`` arrays.

Tied x (cumulative vaccine aluminum)
    ``n`` observations over ``k`` equally spaced values in 1.43-3.55 mg with
    counts from a named template.  Counts stay fixed; each dataset shuffles
    the positions (x is a design variable of the study, as in the
    predecessor's simulation).
y given x
    * ``rank_mixing``: bivariate Iman-Conover on standardized midranks
      (Iman & Conover 1982, Commun. Statist. B 11:311-334):
      ``y = rho_c * s_x + sqrt(1 - rho_c^2) * s_noise`` with ``s_x`` the
      standardized midranks of x and ``s_noise`` independent standard normal
      noise, standardized per dataset.  Continuous noise matters: with
      standardized *ranks* as noise, every dataset shares one lattice of
      values, ranks swap at the same ``rho_c`` in all datasets, and the
      expected Spearman is a step function of ``rho_c`` that cannot hit most
      targets.  ``rho_c`` is calibrated (see :func:`calibrate_rank_mixing`).
    * ``bivariate_normal``: continuous, no ties, exactly known population
      Spearman ``(6/pi) arcsin(rho/2)`` (Pearson 1907; Kruskal 1958, JASA
      53:814-861, eq. 5.4).
"""

from __future__ import annotations

import csv
import functools
import math
from importlib import resources

import numpy as np
from scipy.optimize import brentq

from simulation import _kernels
from simulation._validation import check_positive_int
from simulation.seeding import as_seed_sequence, child_seed, rng_from
from simulation.spearman import midranks

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

    Hamilton's largest-remainder method: floor of each exact share, then the
    leftover units to the largest remainders (ties: the smaller x value
    first).  A share below 1 is raised to 1, taking the unit back from the
    largest count.
    """
    share = weights / weights.sum() * n
    base = np.maximum(np.floor(share).astype(int), 1)
    rest = n - int(base.sum())
    order = np.argsort(-(share - np.floor(share)), kind="stable")
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
    values = x_values(tie_counts(n, k, template, counts))
    return rng_from(seed).permuted(np.tile(values, (n_reps, 1)), axis=1)


def _standardize_rows(a: np.ndarray) -> np.ndarray:
    centred = a - a.mean(axis=1, keepdims=True)
    return centred / np.sqrt((centred**2).mean(axis=1, keepdims=True))


def rank_mixing_y(x: np.ndarray, rho_c: float, seed) -> np.ndarray:
    """y for each row of ``x`` by rank mixing with coefficient ``rho_c`` (see module docstring)."""
    if not -1 < rho_c < 1:
        raise ValueError(f"`rho_c` must be in (-1, 1), got {rho_c!r}")
    s_x, s_noise = _mixing_parts(x, seed)
    return rho_c * s_x + math.sqrt(1 - rho_c**2) * s_noise


def _mixing_parts(x: np.ndarray, seed) -> tuple[np.ndarray, np.ndarray]:
    """Standardized midranks of x and standardized normal noise drawn from ``seed``."""
    noise = rng_from(seed).standard_normal(x.shape)
    return _standardize_rows(midranks(x)), _standardize_rows(noise)


def generate_rank_mixing_batch(
    n_reps: int, counts: tuple[int, ...], rho_c: float, seed
) -> tuple[np.ndarray, np.ndarray]:
    """The exact generation path of the rank-mixing scenarios: ``(x, y)``, each ``(n_reps, n)``."""
    x = generate_cumulative_aluminum_batch(
        n_reps, sum(counts), template="custom", counts=counts, seed=child_seed(seed, 0)
    )
    return x, rank_mixing_y(x, rho_c, child_seed(seed, 1))


@functools.lru_cache(maxsize=1024)
def calibrate_rank_mixing(
    target: float, counts: tuple[int, ...], *, n_cal: int = 4000, seed: int = 0
) -> tuple[float, float, float]:
    """Mixing coefficient whose expected sample Spearman equals ``target``.

    Solves ``mean_r(rho_c) = target`` by Brent's method, where ``mean_r`` is
    the mean sample Spearman of ``n_cal`` datasets drawn by
    :func:`generate_rank_mixing_batch` (the exact generation path) with
    common random numbers, so ``mean_r`` is a smooth, increasing function.

    Returns
    -------
    (rho_c, achieved, mcse)
        The coefficient, the mean sample Spearman it achieves on the
        calibration datasets, and that mean's Monte Carlo standard error
        ``sd(r) / sqrt(n_cal)``: the precision of the declared truth.
    """
    if not -1 < target < 1:
        raise ValueError(f"`target` must be in (-1, 1), got {target!r}")
    # exactly what generate_rank_mixing_batch(n_cal, counts, rho_c, seed) draws
    x = generate_cumulative_aluminum_batch(
        n_cal, sum(counts), template="custom", counts=counts, seed=child_seed(seed, 0)
    )
    s_x, s_noise = _mixing_parts(x, child_seed(seed, 1))

    gx, n_gx = _kernels.group_ids_rows(x)

    def sample_r(rho_c: float) -> np.ndarray:
        gy, n_gy = _kernels.group_ids_rows(rho_c * s_x + math.sqrt(1 - rho_c**2) * s_noise)
        return _kernels.spearman_rows(gx, n_gx, gy, n_gy)

    # xtol 1e-7 on rho_c moves the mean by < 1e-7, far below the calibration MCSE (~2e-3)
    rho_c = brentq(lambda c: float(np.mean(sample_r(c))) - target, -0.999, 0.999, xtol=1e-7)
    r = sample_r(rho_c)
    return rho_c, float(np.mean(r)), float(np.std(r, ddof=1) / math.sqrt(n_cal))


def bivariate_normal_spearman(rho: float) -> float:
    """Population Spearman of a bivariate normal with Pearson ``rho``: ``(6/pi) arcsin(rho/2)``."""
    return 6 / math.pi * math.asin(rho / 2)


def generate_bivariate_normal_batch(n_reps: int, n: int, rho_s: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """Bivariate normal pairs whose population Spearman is exactly ``rho_s``.

    Pearson ``rho = 2 sin(pi rho_s / 6)``, the inverse of Kruskal's (1958) eq. 5.4.
    """
    if not -1 < rho_s < 1:
        raise ValueError(f"`rho_s` must be in (-1, 1), got {rho_s!r}")
    rho = 2 * math.sin(math.pi * rho_s / 6)
    rng = rng_from(as_seed_sequence(seed))
    z1 = rng.standard_normal((n_reps, n))
    z2 = rng.standard_normal((n_reps, n))
    return z1, rho * z1 + math.sqrt(1 - rho**2) * z2
