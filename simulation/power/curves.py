"""Tests of H0: rho_s = 0, Monte Carlo power curves, and the minimum detectable correlation.

Tests
-----
``permutation``
    Spearman's rho against its permutation distribution with the data's ties
    kept exactly (randomly re-pairing x and y).  When y is continuous, its
    ranks are a uniform random permutation under H0 whatever x is, so the
    null depends only on n and the tie counts of x: it is drawn once per
    tie structure (:func:`permutation_null`, 100,000 permutations by default)
    and shared by every dataset and generator with that structure.  When y is
    tied (``empirical`` pools) each dataset gets its own null
    (:func:`permutation_pvalues`), unless every dataset holds the same y
    values (a pool of exactly n values, as ``analyze`` builds): then one
    null of ``n_perm`` permutations is shared.  p-values are ``(1 + #{null at least as
    extreme}) / (M + 1)`` (Phipson & Smyth 2010, Stat. Appl. Genet. Mol.
    Biol. 9:39), valid at any number of permutations M.
``t_approx``
    ``t = r sqrt((n - 2) / (1 - r^2))`` against Student's t with n - 2 df
    (the usual large-sample approximation; Zar 1972, JASA 67:578-580,
    compares it with exact tables): it ignores the discreteness of rho
    under heavy ties, so its size can be off; it is reported for
    comparison, not recommended.
``asymptotic`` (power only, no simulation)
    Power of the t approximation with the t statistic taken as noncentral t,
    df = n - 2, noncentrality ``rho sqrt(n - 2) / sqrt(1 - rho^2)``.  No tie
    adjustment is made: Spearman's rho computed as Pearson's correlation of
    midranks has null variance exactly ``1/(n - 1)`` whatever the ties (the
    permutation variance of a correlation of two fixed non-constant
    vectors, from the moments of ``sum_i a_i b_pi(i)`` in Wald & Wolfowitz
    1944, Ann. Math. Statist. 15:358-372; the tests check it by
    enumeration), so ties change the null only through its shape, which the
    permutation test handles.

Power and the minimum detectable correlation
--------------------------------------------
For one scenario, every grid point uses the same datasets' random numbers
(common random numbers): only the generator's coefficient changes, so the
curve is smooth and differences along it are precise.  The minimum
detectable ``|rho|`` at a target power is the first crossing of the target on
the grid, linearly interpolated between the two bracketing grid points; its
Monte Carlo SE is by the delta method, ``sqrt(P (1 - P) / n_reps) / slope``
with the slope of the curve between those points.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import ndtri

from simulation.core.settings import resolve_seed
from simulation.core.validation import check_n_jobs, check_paired_data, check_positive_int, check_seed
from simulation.core.version import __version__
from simulation.engine import _kernels
from simulation.engine.pvalues import check_alternative as _check_alternative
from simulation.engine.pvalues import pvalues_from_null, pvalues_rowwise
from simulation.engine.ranks import midranks, spearman_rho_2d
from simulation.engine.seeding import child_keys, child_seed
from simulation.inference.bootstrap import resample_keys
from simulation.infra.parallel import check_backend, parallel_map
from simulation.infra.resources import check_resources
from simulation.infra.storage import (
    BlockStore,
    hold_folder,
    now,
    prepare_output,
    provenance_record,
    settings_seal,
    write_parquet,
    write_text,
)
from simulation.models import generators
from simulation.models.generators import CALIBRATION_VERSION
from simulation.models.scenarios import Scenario, check_scenarios, scenario_seed
from simulation.present.report import power_summary_markdown
from simulation.statistics import kendall
from simulation.statistics.registry import (
    check_statistics,
    identity_statistics,
    portable,
    statistic_digests,
    unit_key,
    validate_statistics,
)
from simulation.statistics.statistic import Statistic, get_statistic
from simulation.study.columns import MIN_DETECTABLE, POWER
from simulation.study.columns import names as column_names
from simulation.study.runner import calibration_memory

TESTS = ("permutation", "t_approx")
DIRECTIONS = ("observed", "positive", "negative", "both")
#: Permutations of a shared null (continuous y) and of a per-dataset null (tied y).
DEFAULT_N_PERM = 100_000
DEFAULT_N_PERM_TIED_Y = 999
#: Child stream of a power curve's seed for the shared null of datasets that all hold the same y values
#: (below the per-dataset nulls' streams, which start at 10).
FIXED_Y_NULL_STREAM = 9
#: Default grid of ``|rho|``: 0 to 0.6 in steps of 0.02.
DEFAULT_GRID = tuple(round(0.02 * i, 2) for i in range(31))


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be a number in (0, 1), got {alpha!r}")
    return float(alpha)


def check_target_power(target: float) -> float:
    """Validate a target power in (0, 1)."""
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target < 1:
        raise ValueError(f"`target_power` must be a number in (0, 1), got {target!r}")
    return float(target)


def check_grid(grid: Sequence[float]) -> tuple[float, ...]:
    """Validate a grid of ``|rho|`` values: non-empty, in [0, 1), increasing."""
    values = tuple(float(v) for v in grid)
    if len(values) < 2:
        raise ValueError(f"`grid` must hold at least two correlations, got {list(values)}")
    if any(not 0 <= v < 1 for v in values) or any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise ValueError(f"`grid` must be increasing values of |rho| in [0, 1), got {list(values)}")
    return values


# --------------------------------------------------------------------------
# Null distributions and p-values
# --------------------------------------------------------------------------
def _deviations(ranks: np.ndarray) -> np.ndarray:
    """Twice the midrank deviations from the mean rank (exact integers as floats)."""
    return 2 * ranks - (ranks.shape[-1] + 1)


@functools.lru_cache(maxsize=256)
def permutation_null(counts: tuple[int, ...], n_perm: int = DEFAULT_N_PERM, seed: int = 0) -> np.ndarray:
    """Sorted null sample of Spearman's rho for x with tie ``counts`` and continuous y.

    The stream derives from ``seed`` and the counts themselves, so every
    scenario with this tie structure shares one null.
    """
    counts = tuple(int(c) for c in counts)
    n = sum(counts)
    digest = hashlib.sha256(" ".join(map(str, counts)).encode()).digest()
    ss = np.random.SeedSequence([int(seed), *np.frombuffer(digest[:8], dtype=np.uint32).tolist()])
    ax = _deviations(generators._template_midranks(counts))[None, :]
    ay = (2 * np.arange(n, dtype=np.float64) + 1 - n)[None, :]
    null = np.sort(_kernels.permutation_null_rows(ax, ay, resample_keys([ss]), n_perm)[0])
    null.setflags(write=False)
    return null


def permutation_pvalues(
    x: np.ndarray, y: np.ndarray, *, n_perm: int = 9999, seed: int = 0, alternative: str = "two-sided"
) -> np.ndarray:
    """Permutation p-values of H0: rho_s = 0 for each row of ``(m, n)`` arrays, ties in x and y kept.

    Each row gets its own null of ``n_perm`` re-pairings (row ``r`` from
    ``child_seed(seed, r)``).
    """
    x, y = check_paired_data(np.atleast_2d(x), np.atleast_2d(y), ndim=2)
    n_perm = check_positive_int(n_perm, "n_perm")
    _check_alternative(alternative)
    keys = child_keys(seed, 0, x.shape[0])
    ax, ay = _deviations(midranks(x)), _deviations(midranks(y))
    nulls = _kernels.permutation_null_rows(ax, ay, keys, n_perm)
    with np.errstate(invalid="ignore", divide="ignore"):
        r_obs = (ax * ay).sum(axis=1) / np.sqrt((ax * ax).sum(axis=1) * (ay * ay).sum(axis=1))
    return pvalues_rowwise(r_obs, nulls, alternative)


def t_approx_pvalues(r: np.ndarray, n: int, alternative: str = "two-sided") -> np.ndarray:
    """p-values of ``t = r sqrt((n - 2) / (1 - r^2))`` against t with n - 2 df (unreliable under heavy ties)."""
    _check_alternative(alternative)
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt((n - 2) / (1 - r * r))
    if alternative == "greater":
        return stats.t.sf(t, n - 2)
    if alternative == "less":
        return stats.t.cdf(t, n - 2)
    return np.minimum(1.0, 2 * stats.t.sf(np.abs(t), n - 2))


def _t_approx_reject(r: np.ndarray, n: int, alpha: float, alternative: str) -> np.ndarray:
    """``t_approx_pvalues(r) <= alpha`` without evaluating p-values: t is increasing in r, so compare
    r with ``t_c / sqrt(n - 2 + t_c^2)`` for the critical t ``t_c``."""
    tail = alpha / 2 if alternative == "two-sided" else alpha
    t_c = stats.t.isf(tail, n - 2)
    r_c = t_c / math.sqrt(n - 2 + t_c * t_c)
    if alternative == "greater":
        return r >= r_c
    if alternative == "less":
        return r <= -r_c
    return np.abs(r) >= r_c


def asymptotic_power(rho: float | np.ndarray, n: int, alpha: float = 0.05, alternative: str = "two-sided"):
    """Power of the t approximation at Spearman ``rho`` from the noncentral t (df n - 2; see module docstring)."""
    _check_alternative(alternative)
    alpha = _check_alpha(alpha)
    rho = np.asarray(rho, dtype=np.float64)
    if np.any(np.abs(rho) >= 1):
        raise ValueError(f"`rho` must lie in (-1, 1), got {rho!r}")
    df = n - 2
    delta = rho * math.sqrt(df) / np.sqrt(1 - rho * rho)
    # P(T <= -c | delta) is computed as P(T >= c | -delta) (T -> -T): SciPy's nct.cdf returns NaN deep in
    # the lower tail for a large noncentrality (|rho| >= 0.88 at n = 30), its sf does not.
    if alternative == "two-sided":
        crit = stats.t.ppf(1 - alpha / 2, df)
        return stats.nct.sf(crit, df, delta) + stats.nct.sf(crit, df, -delta)
    crit = stats.t.ppf(1 - alpha, df)
    return stats.nct.sf(crit, df, delta) if alternative == "greater" else stats.nct.sf(crit, df, -delta)


# --------------------------------------------------------------------------
# Power curves
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PowerSettings:
    """What defines a power study's numbers."""

    n_reps: int = 10_000
    grid: tuple[float, ...] = DEFAULT_GRID
    alpha: float = 0.05
    alternative: str = "two-sided"
    direction: str = "observed"
    target_power: float = 0.8
    n_perm: int = DEFAULT_N_PERM
    n_perm_tied_y: int = DEFAULT_N_PERM_TIED_Y
    #: None: ``SEED`` of the settings (20180201), as on the command line.
    seed: int | None = None
    #: Deprecated name of ``n_reps`` (renamed in 0.1.0; removed in the next release).
    n_sims: dataclasses.InitVar[int | None] = None

    def __post_init__(self, n_sims: int | None) -> None:
        if n_sims is not None:
            warnings.warn(
                "PowerSettings(n_sims=...) is deprecated; use n_reps= (the same datasets per grid point); the old "
                "name will be removed in the next release", FutureWarning, stacklevel=3,
            )  # fmt: skip
            if self.n_reps not in (10_000, n_sims):
                raise ValueError(f"give `n_reps` or its deprecated name `n_sims`, not both ({self.n_reps}, {n_sims})")
            object.__setattr__(self, "n_reps", n_sims)
        object.__setattr__(self, "seed", resolve_seed(self.seed))
        check_positive_int(self.n_reps, "n_reps", minimum=10)
        object.__setattr__(self, "grid", check_grid(self.grid))
        _check_alpha(self.alpha)
        _check_alternative(self.alternative)
        if self.direction not in DIRECTIONS:
            raise ValueError(f"`direction` must be one of {list(DIRECTIONS)}, got {self.direction!r}")
        check_target_power(self.target_power)
        check_positive_int(self.n_perm, "n_perm")
        check_positive_int(self.n_perm_tied_y, "n_perm_tied_y")
        check_seed(self.seed)

    def signs(self, scenario: Scenario) -> tuple[int, ...]:
        """Directions searched for this scenario: +1, -1 or both."""
        if self.direction == "both" or (self.direction == "observed" and scenario.rho == 0):
            return (1, -1)
        if self.direction == "observed":
            return (1 if scenario.rho > 0 else -1,)
        return (1,) if self.direction == "positive" else (-1,)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"grid": list(self.grid)}


class _CurveData:
    """The draws of one scenario's ``n_reps`` datasets, shared by every grid point (common random numbers)."""

    def __init__(self, scenario: Scenario, n_reps: int, seed) -> None:
        self.scenario = scenario
        n = scenario.n
        self.y_tied = scenario.model.y_tied
        self.general = not scenario.tied and scenario.model.mixing_parts is None
        self.seed = seed
        self.n_reps = n_reps
        if self.general:
            return
        if scenario.tied:
            parts = generators._tied_parts(scenario.generator, n_reps, scenario.counts, seed, scenario.pool)
            self.sample = generators.MixingSample.from_parts(parts)
        else:
            a, b = scenario.model.mixing_parts(n_reps, n, seed, scenario.df)
            self.sample = generators.MixingSample(a, b, midranks(a))

    def coefficients(self, rhos: Sequence[float]) -> list[float]:
        """The generator coefficient at each target rho (calibrated on the generator's own CRN)."""
        s = self.scenario
        if s.tied and s.estimand == "expected_sample":
            return [c.coefficient for c in generators.calibrate_tied_grid(s.generator, rhos, s.counts, pool=s.pool)]
        if self.general:
            return [math.nan] * len(rhos)  # unused: these datasets are drawn whole at each grid point
        return [s.model.latent(r, s.df) for r in rhos]  # elliptical continuous models, the untied Gaussian copula

    def sample_r(self, rho: float, coefficient: float) -> np.ndarray:
        """Spearman's rho of every dataset at this grid point."""
        if self.general:
            x, y = dataclasses.replace(self.scenario, rho=rho).generate(self.n_reps, self.seed)
            return spearman_rho_2d(x, y)
        return self.sample.sample_r(coefficient)


def _null_for(scenario: Scenario, settings: PowerSettings) -> np.ndarray:
    counts = scenario.counts if scenario.tied else (1,) * scenario.n
    return permutation_null(tuple(counts), settings.n_perm, settings.seed)


def power_memory(settings: PowerSettings, n: int, n_jobs: int) -> float:
    """Bytes a power study needs at most (nothing is allocated): each worker holds one grid point's datasets
    (their draws, x, y's order and ranks, the merge's sorted noise: ten arrays of ``n_reps x n``; 64-70 bytes
    per observation of a dataset measured at n = 1,000,000), their permutation nulls (``n_reps x
    n_perm_tied_y``, and sorted copies) and the shared null (``n_perm``), or a tied scenario's calibration
    (:func:`simulation.study.runner.calibration_memory`), whichever is larger."""
    workers = (os.cpu_count() or 1) if n_jobs < 0 else n_jobs
    curve = settings.n_reps * 8.0 * (10 * n + 2 * settings.n_perm_tied_y) + 16.0 * settings.n_perm
    return workers * max(curve, calibration_memory(n))


def power_curve(scenario: Scenario, settings: PowerSettings, statistic: str | Statistic = "spearman") -> pd.DataFrame:
    """Monte Carlo power of each test over the grid, in each searched direction.

    ``statistic="kendall_b"``: the tests of Kendall's tau-b on the same
    datasets (:func:`_kendall_curve`); a statistic built from parts (Pearson's,
    a user's): its permutation test and, where it declares one, Student's t
    (:func:`_default_curve`).

    Returns
    -------
    pandas.DataFrame
        ``scenario``, ``rho_true`` (the signed true correlation of the grid
        point: the scenario's estimand at that strength), ``test``
        (``permutation``, ``t_approx``, ``asymptotic``), ``power``,
        ``power_mcse`` (binomial, 0 for ``asymptotic``), ``rejections``,
        ``n_reps`` (datasets per grid point).
    """
    seed = child_seed(scenario_seed(settings.seed, scenario), 2)  # 0, 1: the interval study's streams
    stat = get_statistic(statistic)
    return CURVES.get(stat.name, _default_curve)(scenario, settings, stat, seed)


def _spearman_curve(scenario: Scenario, settings: PowerSettings, stat: Statistic, seed) -> pd.DataFrame:
    """Spearman's fused path: every grid point remixes the same draws (common random numbers), its
    permutation null per tie structure, the t approximation and the asymptotic power."""
    data = _CurveData(scenario, settings.n_reps, seed)
    null = None if data.y_tied else _null_for(scenario, settings)
    per_dataset_nulls = data.y_tied
    if data.y_tied and np.all(data.sample.ay == data.sample.ay[0]):
        # every dataset has the same y values (a pool of exactly n values): one shared null, as for untied y
        keys = child_keys(seed, FIXED_Y_NULL_STREAM, FIXED_Y_NULL_STREAM + 1)
        ax, ay = data.sample.ax[:1], data.sample.ay[:1]
        null = np.sort(_kernels.permutation_null_rows(ax, ay, keys, settings.n_perm)[0])
        per_dataset_nulls = False
    null_abs = None if null is None else np.sort(np.abs(null))
    rows = []
    for sign in settings.signs(scenario):
        rhos = [sign * g for g in settings.grid]
        coefficients = data.coefficients(rhos)
        if not data.general:
            data.sample.order = None  # restart the warm sort for this direction
        tied_nulls = None
        for rho, c in zip(rhos, coefficients, strict=True):
            r = data.sample_r(rho, c)
            if per_dataset_nulls:
                if tied_nulls is None:  # per-dataset nulls: y's ties do not change along the grid
                    keys = child_keys(seed, 10, 10 + settings.n_reps)
                    tied_nulls = _kernels.permutation_null_rows(
                        data.sample.ax, data.sample.ay, keys, settings.n_perm_tied_y
                    )
                p_perm = pvalues_rowwise(r, tied_nulls, settings.alternative)
            else:
                p_perm = pvalues_from_null(r, null, settings.alternative, abs_sorted=null_abs)
            # t_approx rejects iff its p-value <= alpha, i.e. iff r is beyond the critical r
            reject_t = _t_approx_reject(r, scenario.n, settings.alpha, settings.alternative)
            for test, reject in (("permutation", p_perm <= settings.alpha), ("t_approx", reject_t)):
                k = int(np.count_nonzero(reject))
                power = k / settings.n_reps
                rows.append((scenario.key, rho, test, power, math.sqrt(power * (1 - power) / settings.n_reps), k))
            asym = float(asymptotic_power(rho, scenario.n, settings.alpha, settings.alternative))
            rows.append((scenario.key, rho, "asymptotic", asym, 0.0, -1))
    table = pd.DataFrame(rows, columns=["scenario", "rho_true", "test", "power", "power_mcse", "rejections"])
    table["n_reps"] = np.where(table["test"] == "asymptotic", 0, settings.n_reps)
    return table


def _kendall_curve(scenario: Scenario, settings: PowerSettings, stat: Statistic, seed) -> pd.DataFrame:
    """Power of Kendall's tau-b tests over the grid, on the datasets of Spearman's curve (common random numbers).

    Tests: ``permutation`` (both variables' ties kept: one shared null per tie structure when y is untied,
    a null per dataset for tied y, as for Spearman) and ``normal_approx`` (``S / sqrt(Var0(S))`` with the
    exact tie-corrected null variance, Kendall 1970, eq. 4.4: what SciPy and R report); and
    ``asymptotic``, no simulation: the normal approximation's power with tau-b taken as normal around the
    grid point's tau with its null SD ``sd0 = sqrt(Var0(S)) / sqrt((n0 - Tx)(n0 - Ty))`` (Noether 1987,
    JASA 82:645-647, the local-alternative approximation behind his sample-size formula for Kendall's
    test, here with the tie-corrected variance): two-sided ``Phi((tau - c) / sd0) + Phi((-tau - c) / sd0)``
    with ``c`` the critical tau-b (:func:`simulation.statistics.kendall.normal_critical_tau`), averaged over the
    datasets' y tie structures when y is tied.  ``rho_true`` is tau's estimand at the grid point: the
    population tau of the
    continuous models ((2/pi) asin of the latent correlation; Plackett by quadrature), and for the tied-x
    generators the expected sample tau-b measured on the curve's own datasets with the mixing control
    variate (MCSE about 0.0002 at 10,000 datasets).
    """
    data = _CurveData(scenario, settings.n_reps, seed)
    s, n, alpha, alt = scenario, scenario.n, settings.alpha, settings.alternative
    rows = []
    fixed_groups = None
    if not data.general:
        gx, n_gx = _kernels.group_ids_rows(np.ascontiguousarray(data.sample.ax))
        gys, n_gys = _kernels.group_ids_rows(np.ascontiguousarray(data.sample.ay))
        fixed_groups = (gx, n_gx, gys, n_gys)
    x_counts = s.counts if s.tied else (1,) * n
    shared = None
    if not data.y_tied:
        digest = hashlib.sha256(("kendall_b " + " ".join(map(str, x_counts))).encode()).digest()
        ss = np.random.SeedSequence([int(settings.seed), *np.frombuffer(digest[:8], dtype=np.uint32).tolist()])
        tgx = np.repeat(np.arange(len(x_counts)), x_counts)[None, :].astype(np.int64)
        tgy = np.arange(n, dtype=np.int64)[None, :]
        null = kendall.permutation_null_rows(tgx, np.array([len(x_counts)]), tgy, np.array([n]),
                                             resample_keys([ss]), settings.n_perm)[0]  # fmt: skip
        shared = (np.sort(null), np.sort(np.abs(null)))
        crit = kendall.normal_critical_tau(x_counts, (1,) * n, alpha, alt)
    else:
        keys = child_keys(seed, 10, 10 + settings.n_reps)
        nulls = kendall.permutation_null_rows(*fixed_groups, keys, settings.n_perm_tied_y)
        crit = np.array([kendall.normal_critical_tau(x_counts, np.bincount(g), alpha, alt) for g in gys])
    sd0 = crit / stats.norm.isf(alpha / 2 if alt == "two-sided" else alpha)
    for sign in settings.signs(s):
        rhos = [sign * g for g in settings.grid]
        for rho, c in zip(rhos, data.coefficients(rhos), strict=True):
            if data.general:
                x, y = dataclasses.replace(s, rho=rho).generate(settings.n_reps, data.seed)
                tau = kendall.tau_b(x, y)
            else:
                order = np.ascontiguousarray(np.argsort(generators._mix(c, data.sample.a, data.sample.b), axis=1))
                tau = kendall.ordered_tau_rows(gx, n_gx, order, gys, n_gys)
            if s.estimand == "population":
                truth = kendall.truth(dataclasses.replace(s, rho=rho)).value
            else:
                truth = generators.control_variate_mean(tau, data.sample.u)[0] if rho != 0 else 0.0
            if shared is not None:
                p_perm = pvalues_from_null(tau, shared[0], alt, abs_sorted=shared[1])
            else:
                p_perm = pvalues_rowwise(tau, nulls, alt)
            stat = tau if alt == "greater" else (-tau if alt == "less" else np.abs(tau))
            reject_normal = stat >= crit - 1e-12
            for test, reject in (("permutation", p_perm <= alpha), ("normal_approx", reject_normal)):
                k = int(np.count_nonzero(reject))
                power = k / settings.n_reps
                rows.append((s.key, truth, test, power, math.sqrt(power * (1 - power) / settings.n_reps), k))
            rows.append((s.key, truth, "asymptotic", kendall_asymptotic_power(truth, crit, sd0, alt), 0.0, -1))
    table = pd.DataFrame(rows, columns=["scenario", "rho_true", "test", "power", "power_mcse", "rejections"])
    table["n_reps"] = np.where(table["test"] == "asymptotic", 0, settings.n_reps)
    return table


def kendall_asymptotic_power(tau: float, crit, sd0, alternative: str = "two-sided") -> float:
    """Noether's (1987) approximate power of Kendall's normal-approximation test at true tau-b ``tau``: tau-b
    normal with mean ``tau`` and its null SD ``sd0``, rejecting beyond the critical tau-b ``crit`` (arrays:
    averaged, one per y tie structure)."""
    crit, sd0 = np.asarray(crit, dtype=np.float64), np.asarray(sd0, dtype=np.float64)
    if alternative == "greater":
        power = stats.norm.sf((crit - tau) / sd0)
    elif alternative == "less":
        power = stats.norm.sf((crit + tau) / sd0)
    else:
        power = stats.norm.sf((crit - tau) / sd0) + stats.norm.sf((crit + tau) / sd0)
    return float(np.mean(power))


def _default_curve(scenario: Scenario, settings: PowerSettings, stat: Statistic, seed) -> pd.DataFrame:
    """Power of any statistic over the grid, through its protocol (the default; Pearson's r and a user's
    statistic use it, Spearman's and Kendall's have fused overrides in :data:`CURVES`).

    The datasets are drawn whole at every grid point from the same seed (common random numbers: only
    the generator's coefficient changes; the datasets of Spearman's curve for the continuous models, the
    same draws remixed for the tied ones).  Tests: ``permutation`` (the statistic's own null, a random
    re-pairing of x and y per dataset, :attr:`PowerSettings.n_perm_tied_y` of them on the keys Spearman's
    per-dataset nulls use, p-values as for Spearman) and, where the statistic declares it, ``t_test``
    (``t = r sqrt((n - 2) / (1 - r^2))`` on n - 2 df: Student's exact test of Pearson's r under bivariate
    normality, Fisher 1915).  ``rho_true`` is the statistic's closed-form truth at the grid point where
    it has one (:meth:`~simulation.statistics.statistic.Statistic.closed_truth`), else the mean of the
    statistic over the curve's datasets (MCSE about SD / sqrt(n_reps), about 0.001 at n = 80 and 10,000
    datasets).
    """
    n, alpha, alt = scenario.n, settings.alpha, settings.alternative
    keys = child_keys(seed, 10, 10 + settings.n_reps)
    rhos_by_sign = [[sign * g for g in settings.grid] for sign in settings.signs(scenario)]
    tied_grid = scenario.tied and scenario.estimand == "expected_sample"
    rows = []
    for rhos in rhos_by_sign:
        coefficients = (
            list(generators.calibrate_tied_grid(scenario.generator, rhos, scenario.counts, pool=scenario.pool))
            if tied_grid else [None] * len(rhos)
        )  # fmt: skip
        for rho, calibration in zip(rhos, coefficients, strict=True):
            point = dataclasses.replace(scenario, rho=rho)
            x, y = point.generate(settings.n_reps, seed, calibration=calibration)
            inputs = stat.inputs(x, y)
            estimate = stat.estimate_rows(*inputs)
            closed = stat.closed_truth(point)
            truth = closed if closed is not None else float(np.nanmean(estimate))
            nulls = stat.permutation_rows(inputs, keys, settings.n_perm_tied_y)
            tests = [("permutation", pvalues_rowwise(estimate, nulls, alt) <= alpha)]
            if "t_test" in stat.tests:
                tests.append(("t_test", _t_approx_reject(estimate, n, alpha, alt)))
            for test, reject in tests:
                k = int(np.count_nonzero(reject))
                power = k / settings.n_reps
                rows.append((scenario.key, truth, test, power, math.sqrt(power * (1 - power) / settings.n_reps), k))
    table = pd.DataFrame(rows, columns=["scenario", "rho_true", "test", "power", "power_mcse", "rejections"])
    table["n_reps"] = settings.n_reps
    return table


#: Power-curve overrides by statistic: Spearman's and Kendall's fused paths on common random numbers; any
#: other statistic (Pearson's, a user's) gets the default, :func:`_default_curve`. A new override is a function
#: ``(scenario, settings, statistic, seed) -> curve`` and a line here.
CURVES: dict[str, Callable[[Scenario, PowerSettings, Statistic, Any], pd.DataFrame]] = {
    "spearman": _spearman_curve,
    "kendall_b": _kendall_curve,
}


def _asymptotic_star(sign: int, lo: float, hi: float, n: int, settings: PowerSettings) -> dict:
    """Root of the noncentral-t power = target on [lo, hi] (Brent).  No Monte Carlo error, but an
    approximation of the t test's power (about 0.01 off in power at n = 30, untied normal data), so its
    error is unknown: ``rho_star_se`` is NaN, never 0, and the row is labelled ``approximation``."""

    def f(m: float) -> float:
        return float(asymptotic_power(sign * m, n, settings.alpha, settings.alternative)) - settings.target_power

    if f(hi) < 0:
        return {"rho_star": math.nan, "rho_star_se": math.nan, "status": "not_reached"}
    if f(lo) >= 0:
        return {"rho_star": float(lo), "rho_star_se": math.nan, "status": "at_grid_start"}
    return {"rho_star": float(optimize.brentq(f, lo, hi, xtol=1e-12)), "rho_star_se": math.nan, "status": "ok"}


#: Minimum detectable correlations of the asymptotic test in closed form, by statistic (Spearman's: the
#: noncentral-t approximation inverted); any other statistic's asymptotic row is searched on its Monte Carlo
#: curve like the other tests' (:data:`KENDALL_APPROXIMATION`).
CLOSED_FORM_STARS: dict[str, Callable[..., dict]] = {"spearman": _asymptotic_star}


def probit_crossing(mag: np.ndarray, power: np.ndarray, i: int, target: float) -> tuple[float, float] | None:
    """Where a curve ``Phi^-1(power) = a + b atanh(|rho|)`` through the grid points around the crossing reaches
    ``target``, and the curve's slope d power / d|rho| there; None where it cannot be fitted.

    ``i`` is the first grid point at or above the target; the fit takes up to two points either side (those
    with a power strictly inside (0, 1)) and needs three, by least squares on the probit scale.  The power
    of an asymptotically normal test is ``Phi(delta(rho) sqrt(n) - z)`` with ``delta`` close to linear in
    atanh rho (Fisher's z; Lehmann 1999, §3.3), so the curve follows the power's bend between grid points
    where a straight line cuts the corner (on the exact power of Pearson's t test at n = 40 and a grid step
    of 0.1 the line misses the crossing by 6.3e-3, the probit curve by 5.6e-4; ``tests/test_power.py``).  The
    grid's powers share their datasets (common random numbers), so the fit's own residual variance says
    nothing about the answer's Monte Carlo error: the caller keeps the binomial error at the target over the
    slope."""
    window = np.arange(max(i - 2, 0), min(i + 2, len(mag)))
    window = window[(power[window] > 0) & (power[window] < 1) & (mag[window] < 1)]
    if window.size < 3:
        return None
    x, y = np.arctanh(mag[window]), ndtri(power[window])
    b, a = np.polyfit(x, y, 1)
    if not b > 0:
        return None
    g = (ndtri(target) - a) / b
    rho_star = math.tanh(g)
    if not mag[i - 1] <= rho_star <= mag[i]:  # the curve must cross where the grid does
        return None
    slope = math.exp(-0.5 * ndtri(target) ** 2) / math.sqrt(2 * math.pi) * b / (1 - rho_star * rho_star)
    return rho_star, slope


def minimum_detectable(
    curve: pd.DataFrame, scenario: Scenario, settings: PowerSettings, statistic: str = "spearman"
) -> pd.DataFrame:
    """Minimum detectable ``|rho|`` per test and direction, from a :func:`power_curve` table.

    ``status``: ``ok``; ``not_reached`` (power stays below the target on the
    whole grid: ``rho_star`` NaN, raise the grid's end); ``at_grid_start``
    (the first grid point already has the target power).  ``estimate``:
    ``monte_carlo`` (interpolated on the simulated power curve, SE by the
    delta method), ``noncentral_t_approximation`` (Spearman's asymptotic test,
    solved by Brent with no Monte Carlo error but an approximation's, so SE
    NaN) or ``normal_approximation`` (Kendall's, Noether 1987: interpolated
    on its curve of approximate power, SE NaN; in units of tau-b).
    """
    rows = []
    target = settings.target_power
    for sign in settings.signs(scenario):
        for test in curve["test"].unique():
            g = curve[(curve["test"] == test) & (np.sign(curve["rho_true"]) * sign >= 0)].copy()
            g = g.assign(mag=g["rho_true"].abs()).sort_values("mag").drop_duplicates("mag")
            mag, power = g["mag"].to_numpy(), g["power"].to_numpy()
            base = {
                "scenario": scenario.key,
                "test": test,
                "direction": "positive" if sign > 0 else "negative",
                "target_power": target,
                "alpha": settings.alpha,
                "alternative": settings.alternative,
                "search_lo": float(mag[0]),
                "search_hi": float(mag[-1]),
                "power_at_search_hi": float(power[-1]),
                "n_reps": 0 if test == "asymptotic" else settings.n_reps,
                "estimate": "monte_carlo",
            }
            if test == "asymptotic" and statistic in CLOSED_FORM_STARS:
                base["estimate"] = APPROXIMATION
                rows.append(base | CLOSED_FORM_STARS[statistic](sign, mag[0], mag[-1], scenario.n, settings))
                continue
            if test == "asymptotic":
                base["estimate"] = KENDALL_APPROXIMATION
            above = np.nonzero(power >= target)[0]
            if above.size == 0:
                rows.append(base | {"rho_star": math.nan, "rho_star_se": math.nan, "status": "not_reached"})
                continue
            i = int(above[0])
            if i == 0:
                rows.append(base | {"rho_star": float(mag[0]), "rho_star_se": math.nan, "status": "at_grid_start"})
                continue
            slope = (power[i] - power[i - 1]) / (mag[i] - mag[i - 1])
            rho_star = mag[i - 1] + (target - power[i - 1]) / slope
            fitted = None if test == "asymptotic" else probit_crossing(mag, power, i, target)
            if fitted is not None:
                rho_star, slope = fitted
                base["estimate"] = PROBIT_FIT
            se = math.nan if test == "asymptotic" else math.sqrt(target * (1 - target) / settings.n_reps) / slope
            rows.append(base | {"rho_star": float(rho_star), "rho_star_se": float(se), "status": "ok"})
    return pd.DataFrame(rows)


#: ``estimate`` of the asymptotic test's minimum detectable correlation (Spearman's; Kendall's).
APPROXIMATION = "noncentral_t_approximation"
#: ``estimate`` of a Monte Carlo minimum detectable correlation read off a probit curve fitted near the
#: crossing (:func:`probit_crossing`); ``monte_carlo`` where it was interpolated between two grid points.
PROBIT_FIT = "monte_carlo_probit"
KENDALL_APPROXIMATION = "normal_approximation"


# --------------------------------------------------------------------------
# Power study over scenarios (same guarantees as the interval study)
# --------------------------------------------------------------------------
POWER_FILE = "power.parquet"
MIN_DETECTABLE_FILE = "min_detectable.parquet"
POWER_SUMMARY_FILE = "power_summary.md"
_SCENARIO_COLUMNS = ("scenario", "statistic", "case", "generator", "n", "k", "template", "rho", "estimand")
#: Columns of ``power.parquet`` and ``min_detectable.parquet``, in order (each is checked by name in
#: ``tests/test_columns.py``: a new column without a check fails there).
#: Names, meanings and units are listed once, in :mod:`simulation.study.columns`.
POWER_COLUMNS = column_names(POWER)
MIN_DETECTABLE_COLUMNS = column_names(MIN_DETECTABLE)
#: Name of a scenario's power curve in the block store (one unit of work per scenario).
CURVE_BLOCK = "curve"


def _warm_up() -> None:
    """Compile the kernels of a power curve in the parent before workers start (see ``parallel_map``)."""
    tiny = Scenario(case="warmup", generator="rank_mixing", n=12, rho=0.2, template="custom", counts=(3, 3, 3, 3))
    power_curve(tiny, PowerSettings(n_reps=10, grid=(0.0, 0.2), n_perm=20))


@dataclasses.dataclass(frozen=True)
class PowerResult:
    """Tables of a finished power study."""

    power: pd.DataFrame
    min_detectable: pd.DataFrame
    provenance: dict
    out: object


@dataclasses.dataclass(frozen=True)
class _PowerIdentity:
    settings: PowerSettings
    format_version: int = 2
    statistics: tuple[str, ...] = ("spearman",)
    statistic_digests: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict:
        extra = identity_statistics(self.statistics)
        if self.statistic_digests:
            extra["statistic_digests"] = dict(self.statistic_digests)
        return self.settings.as_dict() | {"format_version": self.format_version, "package_version": __version__,
                                          "calibration": CALIBRATION_VERSION} | extra  # fmt: skip


def run_power_study(
    scenarios: Sequence[Scenario],
    settings: PowerSettings,
    *,
    n_jobs: int = -1,
    out=None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    study: str | None = None,
    backend: str = "local",
    scheduler: str | None = None,
    statistics: str | Sequence[str] | None = None,
    wait_for_lock: float | None = 0.0,
    allow_code_change: bool = False,
) -> PowerResult:
    """Power curves and minimum detectable correlations for every scenario (and statistic).

    One unit of work per scenario (its whole curve, for common random
    numbers), seeded from the base seed and the scenario key; the parent
    writes each finished curve atomically under ``<out>/blocks/``, so a rerun
    with ``resume=True`` computes only the missing scenarios, and tables are
    bit-identical for any ``n_jobs`` and order.

    Returns
    -------
    PowerResult
        ``power``: scenario fields (``rho`` is the scenario's own) x signed
        ``rho_true`` of the grid x test (``permutation``,
        ``t_approx``, ``asymptotic``): ``power``, ``power_mcse``,
        ``rejections``, ``n_reps``.  ``min_detectable``: scenario x test x
        direction: ``rho_star``, ``rho_star_se`` (delta method), the search
        range, the power at its end, ``status``.  Both tables have a
        ``statistic`` column: ``statistics`` (default ``spearman``; also
        ``kendall_b``, whose tests are ``permutation`` and ``normal_approx``
        and whose ``rho_true`` is tau's estimand, see :func:`_kendall_curve`)
        run on the same datasets.  ``wait_for_lock`` and ``allow_code_change``: as for
        :func:`simulation.study.runner.run_all_ci_scenarios` (one writer per folder; resuming across a
        change of the package's source, recorded).
    """

    started = now()
    scenarios = check_scenarios(scenarios)
    n_jobs = check_n_jobs(n_jobs)
    check_backend(backend, scheduler)
    out_path = Path(out) if out is not None else None
    stats_ = check_statistics(statistics)
    validate_statistics(stats_, scenarios[0])
    identity = _PowerIdentity(settings, statistics=stats_, statistic_digests=statistic_digests(stats_)).as_dict()
    check_resources(f"a power study of {settings.n_reps} datasets x {settings.n_perm_tied_y} permutations each",
                    power_memory(settings, max(s.n for s in scenarios), n_jobs), 0.0, out_path)  # fmt: skip
    with hold_folder(out_path, wait_for_lock):
        if out_path is not None:
            owned = (POWER_FILE, MIN_DETECTABLE_FILE, POWER_SUMMARY_FILE)
            changes = prepare_output(out_path, identity, resume=resume, overwrite=overwrite, owned=owned,
                                     allow_code_change=allow_code_change)  # fmt: skip
        store = BlockStore(out_path, settings_seal(identity))
        store.drop_corrupt()  # damaged, edited or foreign blocks are computed again, with a warning
        jobs = [(sc, stat) for sc in scenarios for stat in stats_]
        todo = _compute_curves(jobs, settings, store, n_jobs, progress, backend, scheduler)
        power, mdc = _power_tables(jobs, settings, {(sc.key, stat): store.get(sc.key, unit_key(CURVE_BLOCK, stat))
                                                    for sc, stat in jobs})  # fmt: skip
        provenance = provenance_record(
            study,
            identity,
            started,
            settings={"n_jobs": n_jobs, "backend": backend, "scheduler": scheduler},
            n_scenarios=len(scenarios),
            scenarios_computed=len({sc.key for sc, _ in todo}),
            blocks_digest=store.digest(),
            **({"code_changes": changes} if out_path is not None and changes else {}),
        )
        if out_path is not None:
            write_parquet(out_path / POWER_FILE, power, provenance)
            write_parquet(out_path / MIN_DETECTABLE_FILE, mdc, provenance)
            write_text(out_path / POWER_SUMMARY_FILE, power_summary_markdown(mdc, provenance))
        return PowerResult(power=power, min_detectable=mdc, provenance=provenance, out=out_path)


def _compute_curves(jobs, settings, store, n_jobs, progress, backend, scheduler) -> list:
    """Every (scenario, statistic) curve not yet stored, one unit of work each, stored as it finishes."""
    todo = [(sc, stat) for sc, stat in jobs if not store.has(sc.key, unit_key(CURVE_BLOCK, stat))]

    def keep(i: int, table: pd.DataFrame) -> None:
        store.put(todo[i][0].key, unit_key(CURVE_BLOCK, todo[i][1]), table)

    parallel_map(
        power_curve,
        [((sc, settings, portable(stat)), {}) for sc, stat in todo],
        n_jobs=n_jobs,
        progress=progress,
        on_result=keep,
        desc="scenarios",
        backend=backend,
        scheduler=scheduler,
        warm_up=_warm_up,
    )
    return todo


def _power_tables(jobs, settings: PowerSettings, curves: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The power and minimum-detectable tables: each curve and its search, with the scenario's fields."""
    info = pd.DataFrame(
        [
            {
                "scenario": sc.key,
                "statistic": stat,
                "case": sc.case,
                "generator": sc.generator,
                "n": sc.n,
                "k": len(sc.counts) if sc.tied else sc.n,
                "template": sc.template,
                "rho": float(sc.rho) + 0.0,
                "estimand": sc.estimand,
            }
            for sc, stat in jobs
        ]
    )
    power = info.merge(
        pd.concat([curves[sc.key, stat].assign(statistic=stat) for sc, stat in jobs], ignore_index=True),
        on=["scenario", "statistic"],
    )
    mdc = info.merge(
        pd.concat(
            [minimum_detectable(curves[sc.key, stat], sc, settings, stat).assign(statistic=stat) for sc, stat in jobs],
            ignore_index=True,
        ),
        on=["scenario", "statistic"],
    )
    # a grid point signed towards a negative target is -0.0 at 0: written as 0.0 (x + 0.0 is +0.0 for
    # x = -0.0 in IEEE 754; every other value is unchanged)
    power["rho_true"] = power["rho_true"] + 0.0
    for table, columns in ((power, POWER_COLUMNS), (mdc, MIN_DETECTABLE_COLUMNS)):
        if list(table.columns) != list(columns):
            raise RuntimeError(f"power table has columns {list(table.columns)}, expected {list(columns)}")
    return power, mdc
