"""The statistic as a dimension: one object per rank correlation, and a registry by name.

A :class:`Statistic` bundles what the bootstrap engine needs from a
statistic (its estimate, exact jackknife and paired-bootstrap replicates,
all computed from tie-group ids by numba kernels) and which interval methods
it defines.  The engine (:mod:`simulation.inference.bootstrap`) takes one and never
names a statistic itself; Spearman's entries are today's kernels unchanged,
so its numbers stay bit-identical.  Every statistic sees the same resample
indices for the same seed (the statistic is not part of the stream), so two
statistics on one dataset are a paired comparison.

A statistic a user writes enters through the same object:
:meth:`Statistic.from_numba` (a numba function of one resample's counts, called
inside the engine's kernels) or :meth:`Statistic.from_callable` (any
vectorized Python function, the slow path); see :mod:`simulation.statistics.custom`.
Pearson's r (:data:`PEARSON`) is built that way.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.special import ndtri

from simulation.core.validation import check_confidence_level
from simulation.engine import _kernels
from simulation.engine.intervals import BOOTSTRAP_METHODS, FISHER_Z_VARIANCES, fisher_z_ci
from simulation.engine.ranks import group_ids
from simulation.models.generators import rank_statistics
from simulation.statistics import custom, kendall, pearson, spearman


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
        ``(gx, n_gx, gy, n_gy, keys, n_boot, jack, with_controls, estimate) -> (theta (m, n_boot), controls
        (m, 4), t_star)`` (``estimate``: ``estimate_rows``' values, which the bootstrap-t is centred on),
        resample ``b`` of row ``r`` drawn from Philox key ``keys[r]`` as
        :func:`simulation.inference.bootstrap.resample_indices` draws it; ``t_star`` the bootstrap-t statistics on
        Fisher's z ``(m, n_boot)`` with the resample's own SE, or None where the interval code derives them
        from ``theta`` (Spearman: the Bonett-Wright SE is a function of r).
    z_se_rows : callable or None
        ``(gx, n_gx, gy, n_gy) -> (m,)``: the SE of ``atanh(estimate)`` that scales the studentized
        interval when ``bootstrap_rows`` gives ``t_star``.
    fixed_rows : callable or None
        ``(gx, n_gx, gy, n_gy) -> (estimate, jackknife, z_se)``: the three above from one pass, where a
        statistic's share their work (Kendall's ``s_k``), equal to them bit for bit; None: each on its own.
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
        which its thresholds were measured (:func:`simulation.study.estimators.controls`).
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
    fixed_rows: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
    asymptotic_methods: tuple[str, ...] = ()
    cheap_rows: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray | None]] | None = None
    asymptotic_ci: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None
    control_variance: tuple[float, float] | None = None
    #: Scale of the studentized and asymptotic intervals: ``fisher_z`` (correlations) or ``identity``.
    transform: str = "fisher_z"
    #: The parts of a statistic a user wrote (:mod:`simulation.statistics.custom`); None for the built-in kernels.
    user: custom.UserParts | None = None
    #: The smallest n at which its intervals are defined (Kendall's ASE needs 5 pairs).
    min_n: int = 2
    #: How reports write its estimate (``r_s``, ``tau_b``, ``r``); empty: its name.
    symbol: str = ""
    #: ``(scenario, truth_mcse, calibration) -> Truth``: a built-in statistic's estimand (see :meth:`truth`).
    truth_of: Callable[..., Any] | None = None
    #: ``(*inputs, keys, n_perm) -> (m, n_perm)``: a built-in's permutation null on its :meth:`inputs`
    #: (see :meth:`permutation_rows`).
    permutation_of: Callable[..., np.ndarray] | None = None
    #: Whether the generators' calibration aims at this statistic's expected sample value (Spearman's): its
    #: truth and a scenario's calibration then measure the same mean, which checks a cached pair.
    calibrated: bool = False
    #: ``(method, estimate, extra, n) -> (se, scale)``: a built-in's model SE (see :meth:`model_se`).
    model_se_of: Callable[..., tuple[np.ndarray, str]] | None = None

    @property
    def bounds(self) -> tuple[float, float]:
        """The range of the statistic: a user statistic's declared ``bounds``; else ``(-1, 1)`` for a
        correlation (a statistic on the Fisher-z scale), unbounded otherwise.  A bootstrap interval that
        leaves it is kept as its formula gives it and counted (``n_out_of_range``, status ``out_of_range``)."""
        if self.user is not None and self.user.bounds is not None:
            return self.user.bounds
        return (-1.0, 1.0) if self.transform == "fisher_z" else (-math.inf, math.inf)

    @property
    def values(self) -> bool:
        """Whether its kernels take the data's values ``(x, y)`` (a user statistic) rather than tie groups."""
        return self.user is not None

    def inputs(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """What its row functions take for validated rows ``x, y (m, n)``: the tie-group ids
        ``(gx, n_gx, gy, n_gy)`` for the built-in kernels, the prepared values ``(x, y)`` for a user's."""
        if self.user is not None:
            return self.user.prepared(x, y)
        return group_ids(x, y)

    def truth(self, scenario, truth_mcse: float, calibration=None):
        """The statistic's estimand for ``scenario`` (a :class:`~simulation.models.generators.Truth`): the
        built-ins' own (:func:`~simulation.statistics.spearman.truth`,
        :func:`~simulation.statistics.kendall.truth`); for one built from parts, its closed form or the expected
        sample value (:func:`simulation.statistics.custom.truth`)."""
        if self.user is not None:
            return custom.truth(self, scenario, scenario._truth_seed(), truth_mcse, calibration=calibration)
        return self.truth_of(scenario, truth_mcse, calibration)

    def closed_truth(self, scenario) -> float | None:
        """The estimand at ``scenario`` in closed form where the statistic declares one (a user statistic's
        ``truth=``; Pearson's population r), else None: the caller measures it."""
        if self.user is None or self.user.truth is None:
            return None
        value = self.user.truth(scenario)
        return None if value is None else float(value)

    def model_se(self, method: str, estimate: np.ndarray, extra: np.ndarray | None, n: int) -> tuple[np.ndarray, str]:
        """The model SE of asymptotic interval ``method`` for each dataset, and its scale.

        The SE the interval is built from (Morris, White & Crowther 2019, *Stat. Med.* 38:2074, section 5.2,
        "model SE"): on Fisher's z scale (``scale == "fisher_z"``, the SE of ``atanh(estimate)``) for a
        ``fisher_z_*`` method, on the estimate's own scale (``"estimate"``) for a Wald interval.  ``extra``:
        what :attr:`cheap_rows` returns beside the estimate (Kendall's ASE, a user statistic's SE).
        """
        estimate = np.asarray(estimate, dtype=np.float64)
        if self.user is not None:
            return _user_model_se(self.user, method, estimate, extra, n)
        return self.model_se_of(method, estimate, extra, n)

    def permutation_rows(self, inputs: tuple[np.ndarray, ...], keys: np.ndarray, n_perm: int) -> np.ndarray:
        """The statistic under ``n_perm`` random re-pairings of x and y per row, both variables' ties kept:
        ``(m, n_perm)`` for its :meth:`inputs` ``inputs``.  Re-pairing ``p`` of row ``r`` comes from key
        ``keys[r]`` (:func:`simulation.engine._kernels._permute`), the same permutations for every statistic,
        so tests of several statistics on the same keys are paired."""
        if self.user is not None:
            return self.user.permutation_rows(*inputs, keys, n_perm)
        return self.permutation_of(*inputs, keys, n_perm)

    def dataset_rows(self, x: np.ndarray, y: np.ndarray, inputs) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:attr:`cheap_rows` of datasets ``x, y (m, n)`` whose rank representation is ``inputs``
        (:class:`~simulation.models.generators.RankInputs`): the built-in kernels read ``inputs``, a user's the
        values."""
        return self.cheap_rows(*self.inputs(x, y)) if self.user is not None else self.cheap_rows(inputs)

    @property
    def tests(self) -> tuple[str, ...]:
        """A user statistic's tests of independence in power curves (the built-ins': :mod:`simulation.power.curves`)."""
        return self.user.tests if self.user is not None else ()

    def required_modules(self) -> tuple[str, ...]:
        """The modules a Dask worker must import to compute this statistic: none for a built-in, the
        modules of a user statistic's parts (:meth:`simulation.statistics.custom.UserParts.modules`)."""
        return () if self.user is None else tuple(self.user.modules())

    @property
    def digest(self) -> str | None:
        """SHA-256 of a user statistic's name and sources (None for the built-in kernels)."""
        return self.user.digest if self.user is not None else None

    def part_digests(self, *, imported_only: bool = False) -> dict[str, str]:
        """SHA-256 of the source of each part of a user statistic (none for a built-in, whose code is the
        package's, checked by its source digest); ``imported_only``: the parts this process runs from its own
        copy of their module (:meth:`simulation.statistics.custom.UserParts.part_digests`).  A Dask worker
        reports these to prove that it computes with the client's code."""
        if self.user is None or self.name in BUILTIN:  # a user's cannot take a built-in's name (register)
            return {}
        return self.user.part_digests(imported_only=imported_only)

    @classmethod
    def from_numba(
        cls,
        func: Callable[..., float],
        *,
        name: str | None = None,
        label: str | None = None,
        se: Callable[..., float] | None = None,
        jackknife: Callable[..., np.ndarray] | None = None,
        prepare: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None,
        transform: str = "fisher_z",
        bounds: tuple[float, float] | None = (-1.0, 1.0),
        truth: Callable[..., float | None] | None = None,
        z_variances: Mapping[str, Callable[..., np.ndarray]] | None = None,
        tests: Sequence[str] = ("permutation",),
        odd_symmetric: bool = False,
    ) -> Statistic:
        """A statistic from a numba function of one resample, called inside the engine's kernels.

        Parameters
        ----------
        func : numba.njit function
            ``func(x, y, counts) -> float``: ``x, y`` float64 ``(n,)`` (after
            ``prepare``), ``counts`` int64 ``(n,)`` how often each pair was
            drawn (0 = left out).  A non-finite value marks the resample (or
            dataset) as undefined, like a constant column for Spearman.
        name, label : str, optional
            Registry name (default ``func.__name__``) and table label.
        se : numba.njit function, optional
            Its standard error, same signature: enables the ``studentized``
            bootstrap interval and an asymptotic ``fisher_z_se`` (or
            ``wald_se``) interval.  Without it those are not offered.
        jackknife : numba.njit function, optional
            ``jackknife(x, y) -> (n,)`` exact leave-one-out values (else ``func``
            with each count set to 0 in turn: n calls).
        prepare : callable, optional
            ``prepare(x, y) -> (x, y)`` on ``(m, n)`` arrays, once per dataset
            (e.g. :func:`simulation.statistics.custom.dense_ranks` for rank statistics).
        transform : {"fisher_z", "identity"}
            The scale of the studentized and asymptotic intervals.
        bounds : (float, float) or None
            Its range, checked on the validation dataset; ``(-1, 1)`` for
            ``fisher_z``.
        truth : callable, optional
            ``truth(scenario) -> float or None``: a closed form of the
            estimand.  Without one (or where it returns None) the truth that
            coverage and bias are scored against is the **expected sample
            statistic at the scenario's n and tie structure**, measured
            (:func:`simulation.statistics.custom.measured_truth`; the table's ``estimand``
            says ``expected_sample``), not a population value: for a
            hand-written Spearman on a bivariate normal at n = 30 and rho_s =
            0.5 that is E[r_s] = 0.486, not 0.5.
        odd_symmetric : bool, default False
            Declare that the statistic changes sign when y is reflected
            (``stat(x, -y) = -stat(x, y)``) and averages 0 over the
            permutations of y, as Pearson's, Spearman's and Kendall's do.
            Its expectation is then exactly 0 at ``rho = 0`` under every
            generator (x and y independent, or the bivariate t, symmetric in
            y), so its truth there is exactly 0, not measured.
        z_variances : mapping, optional
            ``{name: variance(estimate, n)}`` of ``atanh(estimate)``: each an
            asymptotic interval ``fisher_z_<name>``.
        tests : sequence of str
            Power tests: ``permutation`` (always) and ``t_test`` (Student's t
            of a correlation, ``r sqrt((n - 2) / (1 - r^2))`` on n - 2 df).
        """
        return _user_statistic(
            func, fast=True, name=name, label=label, se=se, jackknife=jackknife, prepare=prepare,
            transform=transform, bounds=bounds, truth=truth, z_variances=z_variances, tests=tests,
            odd_symmetric=odd_symmetric,
        )  # fmt: skip

    @classmethod
    def from_callable(
        cls,
        func: Callable[..., np.ndarray],
        *,
        name: str | None = None,
        label: str | None = None,
        se: Callable[..., np.ndarray] | None = None,
        prepare: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None,
        transform: str = "fisher_z",
        bounds: tuple[float, float] | None = (-1.0, 1.0),
        truth: Callable[..., float | None] | None = None,
        z_variances: Mapping[str, Callable[..., np.ndarray]] | None = None,
        tests: Sequence[str] = ("permutation",),
        odd_symmetric: bool = False,
    ) -> Statistic:
        """A statistic from any Python function ``func(x, y, axis=-1)`` vectorized like SciPy's (the slow
        path: called on ``(n_boot, n)`` batches of resampled arrays; validation warns how much slower it
        measured).  The other parts as in :meth:`from_numba` (``se`` with the same signature as ``func``)."""
        return _user_statistic(
            func, fast=False, name=name, label=label, se=se, jackknife=None, prepare=prepare,
            transform=transform, bounds=bounds, truth=truth, z_variances=z_variances, tests=tests,
            odd_symmetric=odd_symmetric,
        )  # fmt: skip

    def control_scale(self, n: int) -> float | None:
        """``1 / sqrt(Var atanh(estimate))`` at sample size ``n`` for the controls (None: Spearman's default)."""
        if self.control_variance is None:
            return None
        constant, offset = self.control_variance
        return math.sqrt((n - offset) / constant)

    @property
    def source(self) -> str | None:
        """Where a user statistic was loaded from (``package.module:attribute``); None for one built in
        Python or a built-in."""
        return None if self.user is None else self.user.spec

    @property
    def compiled(self) -> bool:
        """Whether its kernels are compiled (the built-ins, and a user's numba functions); False for a Python
        callable (:meth:`from_callable`, the slow path)."""
        return self.user is None or self.user.fast

    @property
    def has_se(self) -> bool:
        """Whether it supplies a standard error (the built-ins do; a user's when given ``se=``)."""
        return self.user is None or self.user.se is not None

    @property
    def studentized(self) -> bool:
        return "studentized" in self.bootstrap_methods


def _spearman_bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, jack, with_controls, estimate):
    theta, controls = _kernels.bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, jack, with_controls)
    return theta, controls, None  # t* follows from r* (Bonett-Wright SE) inside the interval code


def _kendall_bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, jack, with_controls, estimate):
    theta, t_star = kendall.bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, True, estimate)
    if with_controls:
        controls = _kernels.resample_controls_rows(keys, n_boot, jack)
    else:
        controls = np.zeros((gx.shape[0], _kernels.N_RESAMPLE_CONTROLS))
    return theta, controls, t_star


def _spearman_truth(scenario, truth_mcse, calibration):
    return spearman.truth(scenario, truth_mcse, calibration=calibration)


def _kendall_truth(scenario, truth_mcse, calibration):
    return kendall.truth(scenario, truth_mcse, calibration=calibration)


def _spearman_permutation_rows(gx, n_gx, gy, n_gy, keys, n_perm):
    """Spearman's null from tie groups: twice the midrank deviations of each group, then
    :func:`simulation.engine._kernels.permutation_null_rows`."""
    return _kernels.permutation_null_rows(_twice_deviations(gx, n_gx), _twice_deviations(gy, n_gy), keys, n_perm)


def _twice_deviations(g: np.ndarray, n_g: np.ndarray) -> np.ndarray:
    """``2 * midrank - (n + 1)`` of each observation from its tie group id (groups in sorted order)."""
    m, n = g.shape
    out = np.empty((m, n), np.float64)
    for r in range(m):
        counts = np.bincount(g[r], minlength=int(n_g[r]))
        midrank = np.cumsum(counts) - (counts - 1) / 2.0
        out[r] = (2 * midrank - (n + 1))[g[r]]
    return out


def _spearman_cheap_rows(inputs):
    rho, se = rank_statistics(inputs)
    return rho, se, None


def _spearman_model_se(method, estimate, extra, n):
    """``sqrt(variance(r_s, n))`` of the Fisher-z variance the method names (:data:`FISHER_Z_VARIANCES`)."""
    return np.sqrt(FISHER_Z_VARIANCES[method.removeprefix("fisher_z_")](estimate, float(n))), "fisher_z"


def _kendall_model_se(method, tau, ase, n):
    """Fieller's ``sqrt(0.437 / (n - 4))`` and ``ASE / (1 - tau^2)`` on z's scale, the ASE on tau-b's
    (:func:`simulation.statistics.kendall.fisher_z_ci`, :func:`simulation.statistics.kendall.ase_ci`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "fisher_z_fieller":
            return np.full(tau.shape, math.sqrt(kendall.FHP_KENDALL / (n - 4))), "fisher_z"
        if method == "fisher_z_ase":
            return np.asarray(ase, np.float64) / (1 - tau * tau), "fisher_z"
    return np.asarray(ase, np.float64), "estimate"


def _user_model_se(parts, method, t, se, n):
    """The SE each of :func:`_user_asymptotic_ci`'s intervals is built from."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "wald_se":
            return np.asarray(se, np.float64), "estimate"
        if method == "fisher_z_se":
            return np.asarray(se, np.float64) / (1 - t * t), "fisher_z"
        variance = parts.z_variances[method.removeprefix("fisher_z_")](t, n)
        return np.sqrt(np.broadcast_to(np.asarray(variance, np.float64), t.shape)), "fisher_z"


def _spearman_asymptotic_ci(method, estimate, extra, n, confidence_level):
    return fisher_z_ci(estimate, n, confidence_level=confidence_level, variance=method.removeprefix("fisher_z_"))


def _kendall_asymptotic_ci(method, estimate, ase, n, confidence_level):
    if method == "fisher_z_fieller":
        return kendall.fisher_z_ci(estimate, n, confidence_level=confidence_level)
    if method == "fisher_z_ase":
        return kendall.fisher_z_ci(estimate, n, confidence_level=confidence_level, se=ase)
    return kendall.ase_ci(estimate, ase, confidence_level=confidence_level)


SPEARMAN = Statistic(
    name="spearman",
    label="Spearman's rho",
    symbol="r_s",
    estimate_rows=_kernels.spearman_rows,
    jackknife_rows=_kernels.jackknife_rows,
    bootstrap_rows=_spearman_bootstrap_rows,
    bootstrap_methods=BOOTSTRAP_METHODS,
    asymptotic_methods=tuple(f"fisher_z_{name}" for name in FISHER_Z_VARIANCES),
    cheap_rows=_spearman_cheap_rows,
    asymptotic_ci=_spearman_asymptotic_ci,
    truth_of=_spearman_truth,
    permutation_of=_spearman_permutation_rows,
    calibrated=True,
    model_se_of=_spearman_model_se,
)
KENDALL_B = Statistic(
    name="kendall_b",
    label="Kendall's tau-b",
    min_n=5,
    symbol="tau_b",
    estimate_rows=kendall.tau_b_rows,
    jackknife_rows=kendall.jackknife_rows,
    bootstrap_rows=_kendall_bootstrap_rows,
    bootstrap_methods=BOOTSTRAP_METHODS,
    z_se_rows=kendall.z_se_rows,
    fixed_rows=kendall.fixed_rows,
    #: Fieller's Fisher z (0.437 / (n - 4)); Fisher's z with the delta-method ASE; tau-b +- z ASE
    asymptotic_methods=("fisher_z_fieller", "fisher_z_ase", "wald_ase"),
    cheap_rows=kendall.cheap_rows,
    asymptotic_ci=_kendall_asymptotic_ci,
    control_variance=(kendall.FHP_KENDALL, 4.0),
    truth_of=_kendall_truth,
    permutation_of=kendall.permutation_null_rows,
    model_se_of=_kendall_model_se,
)


# --------------------------------------------------------------------------
# A user's statistic (simulation.statistics.custom): the row functions over its parts
# --------------------------------------------------------------------------
def _user_statistic(
    func, *, fast, name, label, se, jackknife, prepare, transform, bounds, truth, z_variances, tests, odd_symmetric
):
    if name is None:
        name = getattr(getattr(func, "py_func", func), "__name__", None)
    z_variances = {} if z_variances is None else z_variances
    custom.check_parts(
        name, func, fast=fast, se=se, jackknife=jackknife, prepare=prepare, transform=transform, bounds=bounds,
        truth=truth, z_variances=z_variances, tests=tests,
    )  # fmt: skip
    bounds = None if bounds is None else (float(bounds[0]), float(bounds[1]))
    tests = tuple(tests)
    if not isinstance(odd_symmetric, bool | np.bool_):
        raise TypeError(f"`odd_symmetric` must be True or False, got {odd_symmetric!r}")
    parts = custom.UserParts(
        func=func, fast=fast, se=se, jackknife=jackknife, prepare=prepare, transform=transform, bounds=bounds,
        truth=truth, z_variances=dict(z_variances), tests=tests, odd_symmetric=bool(odd_symmetric),
    )  # fmt: skip
    parts = dataclasses.replace(parts, digest=parts.parts_digest(name), name=name)
    asymptotic = tuple(f"fisher_z_{v}" for v in z_variances)
    if se is not None:
        asymptotic += ("fisher_z_se" if transform == "fisher_z" else "wald_se",)
    return Statistic(
        name=name,
        label=label or name,
        estimate_rows=functools.partial(_user_estimate, parts),
        jackknife_rows=functools.partial(_user_jackknife, parts),
        bootstrap_rows=functools.partial(_user_bootstrap, parts),
        bootstrap_methods=tuple(m for m in BOOTSTRAP_METHODS if se is not None or m != "studentized"),
        z_se_rows=functools.partial(_user_z_se, parts) if se is not None else None,
        asymptotic_methods=asymptotic,
        cheap_rows=functools.partial(_user_cheap, parts),
        asymptotic_ci=functools.partial(_user_asymptotic_ci, parts),
        transform=transform,
        user=parts,
    )


def _user_estimate(parts: custom.UserParts, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return parts.estimate_rows(x, y)


def _user_jackknife(parts: custom.UserParts, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return parts.jackknife_rows(x, y)


def _user_bootstrap(parts: custom.UserParts, x, y, keys, n_boot, jack, with_controls, estimate):
    """Replicates, the exact resample controls (statistic-agnostic: indices and jackknife only) and, with an
    ``se``, the bootstrap-t statistics ``(g(theta*) - g(theta_hat)) / (se* g'(theta*))`` on the transform's
    scale (Davison & Hinkley 1997, eq. 5.7 with the delta method for ``g``)."""
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    with_se = parts.se is not None
    theta, se_star = parts.bootstrap_rows(x, y, keys, n_boot, with_se)
    if with_controls:
        controls = _kernels.resample_controls_rows(keys, n_boot, jack)
    else:
        controls = np.zeros((x.shape[0], _kernels.N_RESAMPLE_CONTROLS))
    t_star = None
    if with_se:
        with np.errstate(divide="ignore", invalid="ignore"):
            t_star = (parts.g(theta) - parts.g(estimate)[:, None]) / (se_star * parts.g_prime(theta))
    return theta, controls, t_star


def _user_z_se(parts: custom.UserParts, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return parts.se_rows(x, y) * parts.g_prime(parts.estimate_rows(x, y))


def jackknife_se(jack: np.ndarray) -> np.ndarray:
    """Jackknife SE of each row of leave-one-out values ``(m, n)``: ``sqrt((n - 1)/n sum (jack_i - mean)^2)``
    (Efron & Tibshirani 1993, eq. 11.5); NaN where a value is undefined."""
    n = jack.shape[1]
    return np.sqrt((n - 1) / n * np.square(jack - jack.mean(axis=1, keepdims=True)).sum(axis=1))


def _user_cheap(parts: custom.UserParts, x: np.ndarray, y: np.ndarray):
    """Estimate, jackknife SE and (with an ``se``) its SE ``(m,)`` each, of prepared rows ``x, y``."""
    estimate = parts.estimate_rows(x, y)
    se = jackknife_se(parts.jackknife_rows(x, y))
    return estimate, se, (parts.se_rows(x, y) if parts.se is not None else None)


def _user_asymptotic_ci(parts: custom.UserParts, method, estimate, se, n, confidence_level):
    """``fisher_z_<name>``: ``tanh(atanh(t) -+ c sqrt(variance(t, n)))``; ``fisher_z_se``: the same with
    ``se(atanh t) = se / (1 - t^2)`` (delta method); ``wald_se``: ``t -+ c se``."""
    c = ndtri(1 - (1 - check_confidence_level(confidence_level)) / 2)
    t = np.asarray(estimate, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "wald_se":
            return t - c * se, t + c * se
        z = np.arctanh(t)
        if method == "fisher_z_se":
            half = c * se / (1 - t * t)
        else:
            half = c * np.sqrt(parts.z_variances[method.removeprefix("fisher_z_")](t, n))
        return np.tanh(z - half), np.tanh(z + half)


#: Pearson's r, built as a user statistic would be (:mod:`simulation.statistics.pearson`): its delta-method SE, Fisher's
#: variance 1/(n - 3), the population value as truth, and the permutation and t tests.
#:
#: :meta hide-value:
PEARSON = Statistic.from_numba(
    pearson.pearson_r,
    name="pearson",
    label="Pearson's r",
    se=pearson.pearson_se,
    jackknife=pearson.jackknife,
    z_variances={"pearson": pearson.fisher_variance},
    truth=pearson.population_r,
    tests=("permutation", "t_test"),
    odd_symmetric=True,
)
#: Pearson's digest in run identities, fixed as a built-in's code is (by the package's version): the value its
#: parts' source gave before the package was split into layers, so that results folders with Pearson resume.
PEARSON_DIGEST = "2a33a9422a9f7aaa3dfae06e9b44182721f5e651f39cea8374a58446885a593c"
PEARSON = dataclasses.replace(PEARSON, user=dataclasses.replace(PEARSON.user, digest=PEARSON_DIGEST), symbol="r")
#: Statistics by name (built in; a user's are added by :func:`get_statistic` when first loaded).
#:
#: :meta hide-value:
STATISTICS: dict[str, Statistic] = {s.name: s for s in (SPEARMAN, KENDALL_B, PEARSON)}
#: The built-in names.
BUILTIN: tuple[str, ...] = tuple(STATISTICS)


def load(spec: str):
    """The statistic at ``module:attribute``: a :class:`~simulation.statistics.statistic.Statistic`, a numba function
    (made one with :meth:`~simulation.statistics.statistic.Statistic.from_numba`, named after the attribute) or a
    Python callable (:meth:`~simulation.statistics.statistic.Statistic.from_callable`, the slow path)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"`statistic` {spec!r} must be a built-in name or 'package.module:function'")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())  # `package.module` in the current folder, as `python -m` would find it
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's module's
        raise ValueError(f"`statistic` {spec!r}: cannot import module {module_name!r} "
                         f"({type(exc).__name__}: {exc})") from None
    obj = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"`statistic` {spec!r}: module {module_name!r} has no attribute {attribute!r}")
        obj = getattr(obj, part)
    if isinstance(obj, Statistic):
        stat = obj
    elif custom.is_numba(obj):
        stat = Statistic.from_numba(obj, name=attribute.rsplit(".", 1)[-1])
    elif callable(obj):
        stat = Statistic.from_callable(obj, name=attribute.rsplit(".", 1)[-1])
    else:
        raise ValueError(f"`statistic` {spec!r} is a {type(obj).__name__}, not a Statistic, a numba function "
                         "stat(x, y, counts) or a Python function stat(x, y, axis=-1)")
    if stat.user is not None and stat.user.spec is None:
        stat = dataclasses.replace(stat, user=dataclasses.replace(stat.user, spec=spec))
    return stat


def get_statistic(statistic: str | Statistic) -> Statistic:
    """The :class:`Statistic` named ``statistic`` (or ``statistic`` itself, or the one at
    ``"package.module:function"``, loaded and registered under its name), with a clear error otherwise."""
    if isinstance(statistic, Statistic):
        return statistic
    if isinstance(statistic, str) and statistic in STATISTICS:
        return STATISTICS[statistic]
    if isinstance(statistic, str) and ":" in statistic:
        stat = load(statistic)
        register(stat)
        STATISTICS.setdefault(statistic, stat)
        return stat
    raise ValueError(
        f"`statistic` must be one of {list(BUILTIN)} or 'package.module:function' (a statistic of your own), "
        f"got {statistic!r}"
    )


def register(stat: Statistic) -> Statistic:
    """Make a user statistic known by its name in this process; refuses a built-in's name or a different
    statistic under a name already taken."""
    known = STATISTICS.get(stat.name)
    if known is not None and known is not stat and (stat.name in BUILTIN or known.digest != stat.digest):
        what = "a built-in statistic" if stat.name in BUILTIN else "another statistic already loaded"
        raise ValueError(f"statistic name {stat.name!r} is taken by {what}; give yours another `name`")
    STATISTICS[stat.name] = stat
    return stat


_VALIDATED: set[str] = set()


def check_user_statistic(stat: Statistic, x: np.ndarray, y: np.ndarray, data: str = "a generated dataset") -> None:
    """Validate a user statistic once per process on one dataset ``x, y (n,)`` (serially, before any
    parallel kernel: :func:`simulation.statistics.custom.validate`); nothing for the built-in kernels.  ``data``
    names the dataset in error messages (``"your data"`` for data a caller passed)."""
    if stat.user is None or stat.digest in _VALIDATED:
        return
    custom.validate(stat, np.array(x, dtype=np.float64), np.array(y, dtype=np.float64), data=data)
    _VALIDATED.add(stat.digest)
