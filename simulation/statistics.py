"""The statistic as a dimension: one object per rank correlation, and a registry by name.

A :class:`Statistic` bundles what the bootstrap engine needs from a
statistic (its estimate, exact jackknife and paired-bootstrap replicates,
all computed from tie-group ids by numba kernels) and which interval methods
it defines.  The engine (:mod:`simulation.bootstrap`) takes one and never
names a statistic itself; Spearman's entries are today's kernels unchanged,
so its numbers stay bit-identical.  Every statistic sees the same resample
indices for the same seed (the statistic is not part of the stream), so two
statistics on one dataset are a paired comparison.

Status of the wider framework: the study runner, its two phases, power and
``analyze`` still compute Spearman only; :data:`STATISTICS` is the seam they
will take.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from simulation import _kernels, kendall
from simulation.intervals import BOOTSTRAP_METHODS, FISHER_Z_VARIANCES, fisher_z_ci


@dataclasses.dataclass(frozen=True)
class Statistic:
    """A rank correlation as the engine sees it.

    Attributes
    ----------
    name : str
        Registry name (``spearman``, ``kendall_b``).
    label : str
        For tables and figures.
    estimate_rows, jackknife_rows : callable
        ``(gx, n_gx, gy, n_gy) -> (m,)`` and ``-> (m, n)`` from tie-group ids.
    bootstrap_rows : callable
        ``(gx, n_gx, gy, n_gy, keys, n_boot, jack, with_controls) -> (theta (m, n_boot), controls (m, 4),
        t_star)``, resample ``b`` of row ``r`` drawn from Philox key ``keys[r]`` as
        :func:`simulation.bootstrap.resample_indices` draws it; ``t_star`` the bootstrap-t statistics on
        Fisher's z ``(m, n_boot)`` with the resample's own SE, or None where the interval code derives them
        from ``theta`` (Spearman: the Bonett-Wright SE is a function of r).
    z_se_rows : callable or None
        ``(gx, n_gx, gy, n_gy) -> (m,)``: the SE of ``atanh(estimate)`` that scales the studentized
        interval when ``bootstrap_rows`` gives ``t_star``.
    asymptotic_methods : tuple of str
        Its asymptotic interval methods (a name that means the same idea for
        two statistics is shared: ``fisher_z_fieller`` uses each statistic's
        own Fieller-Hartley-Pearson constant).
    cheap_rows : callable
        ``RankInputs -> (estimate, jackknife SE, extra)``, ``(m,)`` each:
        what the study's controls and asymptotic intervals need of a dataset
        (``extra``: Kendall's ASE; unused for Spearman).
    asymptotic_ci : callable
        ``(method, estimate, extra, n, confidence_level) -> (lower, upper)``.
    control_variance : tuple of float or None
        ``(constant, offset)``: the variance ``constant / (n - offset)`` of
        ``atanh`` of the estimate with which the study's indicator controls
        standardize it (thresholds at +-z need the statistic's own scale, or
        they almost never fire); None for Spearman's ``1 / (n - 3)``, with
        which its thresholds were measured (:func:`simulation.estimators.controls`).
    bootstrap_methods : tuple of str
        The bootstrap interval methods it defines (the studentized interval
        needs a standard error of the statistic on the Fisher-z scale).
    resample_controls : bool
        Whether ``bootstrap_rows`` computes the exact resample controls of
        the two-phase estimator.
    """

    name: str
    label: str
    estimate_rows: Callable[..., np.ndarray]
    jackknife_rows: Callable[..., np.ndarray]
    bootstrap_rows: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray | None]]
    bootstrap_methods: tuple[str, ...]
    resample_controls: bool = True
    z_se_rows: Callable[..., np.ndarray] | None = None
    asymptotic_methods: tuple[str, ...] = ()
    cheap_rows: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray | None]] | None = None
    asymptotic_ci: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None
    control_variance: tuple[float, float] | None = None

    def control_scale(self, n: int) -> float | None:
        """``1 / sqrt(Var atanh(estimate))`` at sample size ``n`` for the controls (None: Spearman's default)."""
        if self.control_variance is None:
            return None
        constant, offset = self.control_variance
        return math.sqrt((n - offset) / constant)

    @property
    def studentized(self) -> bool:
        return "studentized" in self.bootstrap_methods


def _spearman_bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, jack, with_controls):
    theta, controls = _kernels.bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, jack, with_controls)
    return theta, controls, None  # t* follows from r* (Bonett-Wright SE) inside the interval code


def _kendall_bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, jack, with_controls):
    theta, t_star = kendall.bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, True)
    if with_controls:
        controls = _kernels.resample_controls_rows(keys, n_boot, jack)
    else:
        controls = np.zeros((gx.shape[0], _kernels.N_RESAMPLE_CONTROLS))
    return theta, controls, t_star


def _spearman_cheap_rows(inputs):
    from simulation.generators import rank_statistics

    rho, se = rank_statistics(inputs)
    return rho, se, None


def _spearman_asymptotic_ci(method, estimate, extra, n, confidence_level):
    return fisher_z_ci(estimate, n, confidence_level=confidence_level, variance=method.removeprefix("fisher_z_"))


def _kendall_asymptotic_ci(method, estimate, ase, n, confidence_level):
    if method == "fisher_z_fieller":
        return kendall.fisher_z_ci(estimate, n, confidence_level=confidence_level)
    if method == "fisher_z_ase":
        return kendall.fisher_z_ci(estimate, n, confidence_level=confidence_level, se=ase)
    return kendall.ase_ci(estimate, ase, confidence_level=confidence_level)


def _kendall_z_se(gx, n_gx, gy, n_gy):
    tau = kendall.tau_b_rows(gx, n_gx, gy, n_gy)
    with np.errstate(divide="ignore", invalid="ignore"):
        return kendall.ase_rows(gx, n_gx, gy, n_gy) / (1 - tau * tau)


SPEARMAN = Statistic(
    name="spearman",
    label="Spearman's rho",
    estimate_rows=_kernels.spearman_rows,
    jackknife_rows=_kernels.jackknife_rows,
    bootstrap_rows=_spearman_bootstrap_rows,
    bootstrap_methods=BOOTSTRAP_METHODS,
    asymptotic_methods=tuple(f"fisher_z_{name}" for name in FISHER_Z_VARIANCES),
    cheap_rows=_spearman_cheap_rows,
    asymptotic_ci=_spearman_asymptotic_ci,
)
KENDALL_B = Statistic(
    name="kendall_b",
    label="Kendall's tau-b",
    estimate_rows=kendall.tau_b_rows,
    jackknife_rows=kendall.jackknife_rows,
    bootstrap_rows=_kendall_bootstrap_rows,
    bootstrap_methods=BOOTSTRAP_METHODS,
    z_se_rows=_kendall_z_se,
    #: Fieller's Fisher z (0.437 / (n - 4)); Fisher's z with the delta-method ASE; tau-b +- z ASE
    asymptotic_methods=("fisher_z_fieller", "fisher_z_ase", "wald_ase"),
    cheap_rows=kendall.cheap_rows,
    asymptotic_ci=_kendall_asymptotic_ci,
    control_variance=(kendall.FHP_KENDALL, 4.0),
)
#: Statistics by name.
STATISTICS: dict[str, Statistic] = {s.name: s for s in (SPEARMAN, KENDALL_B)}


def get_statistic(statistic: str | Statistic) -> Statistic:
    """The :class:`Statistic` named ``statistic`` (or ``statistic`` itself), with a clear error otherwise."""
    if isinstance(statistic, Statistic):
        return statistic
    if isinstance(statistic, str) and statistic in STATISTICS:
        return STATISTICS[statistic]
    raise ValueError(f"`statistic` must be one of {list(STATISTICS)}, got {statistic!r}")
