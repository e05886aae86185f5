"""Your own statistic through the engine: the kernels and the glue behind
:meth:`Statistic.from_numba <simulation.statistics.statistic.Statistic.from_numba>` and
:meth:`Statistic.from_callable <simulation.statistics.statistic.Statistic.from_callable>`.

Fast path
---------
A user statistic is a numba function of one resample::

    @numba.njit(cache=True)
    def stat(x, y, counts):  # float64[::1], float64[::1], int64[::1] -> float
        ...

``counts[i]`` is how often pair ``i`` was drawn (0 for the pairs left out;
all ones for the data themselves), so a resample is never materialized.  The
engine's kernels below take it as a **first-class function** in an explicit
signature (``numba.types.FunctionType``): each kernel is compiled once for
every statistic, cached on disk (``cache=True``), and calls the statistic
through a function pointer.  The alternative, passing the dispatcher as an
ordinary argument, specializes (recompiles) every kernel for every statistic
and never caches that on disk; the indirect call costs nothing measurable
next to an O(n) statistic (``benchmarks/bench_custom.py`` times a user
Spearman against the built-in kernel side by side).

The resample indices are the engine's (:func:`simulation.inference.bootstrap.resample_indices`),
so a user statistic sees the same resamples as the built-in ones for the same
seed; its leave-one-out values come from ``counts`` with one zero (n calls),
unless it supplies its own; the exact resample controls of the two-phase
estimator need only those values (:func:`simulation.engine._kernels.resample_controls_rows`).

Slow path
---------
Any Python callable ``stat(x, y, axis=-1)`` vectorized like SciPy's: called
on ``(n_boot, n)`` batches of resampled arrays.  It gives the same numbers as
the fast path for the same statistic (same resample indices), measured many
times slower; :func:`validate` says by how much, in a warning.

Optional parts
--------------
``se`` (same signature as the statistic: its standard error on its own
scale) enables the studentized interval and a ``fisher_z_se`` / ``wald_se``
asymptotic interval; ``z_variances`` (``name -> (estimate, n) -> variance of
atanh(estimate)``) add Fisher-z intervals ``fisher_z_<name>``; ``transform``
(``fisher_z`` for correlations, ``identity`` otherwise) is the scale of the
studentized and asymptotic intervals; ``prepare`` (``(x, y) -> (x, y)`` on
``(m, n)`` arrays) is applied once per dataset before any resampling (ranks,
logs: whatever the statistic would otherwise recompute every resample);
``truth`` (``scenario -> float or None``) a closed form of the estimand (else
the expected sample statistic is measured, :func:`measured_truth`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import math
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numba
import numpy as np
from numba import njit, prange, types
from numba.core.registry import CPUDispatcher

from simulation.core.validation import writable
from simulation.engine import _kernels
from simulation.engine.ranks import group_ids
from simulation.engine.seeding import child_seed
from simulation.models.generators import Truth, draws_at

#: The signature of a fast-path statistic (and of its ``se``): ``(x, y, counts) -> float``.
SIGNATURE = types.float64(types.float64[::1], types.float64[::1], types.int64[::1])
_FN = types.FunctionType(SIGNATURE)
_JACK_FN = types.FunctionType(types.float64[::1](types.float64[::1], types.float64[::1]))
_ROWS = types.float64[:, ::1]
_KEYS = types.uint64[:, ::1]

TRANSFORMS = ("fisher_z", "identity")
TESTS = ("permutation", "t_test")


# --------------------------------------------------------------------------
# Kernels (explicit signatures: compiled once, cached, any statistic)
# --------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _finite(v: float) -> float:
    return v if np.isfinite(v) else np.nan


@njit(types.float64[::1](_ROWS, _ROWS, _FN), cache=True, parallel=True)
def estimate_rows(x, y, stat):
    """The statistic of each row ``(m,)`` (every count 1); non-finite values become NaN."""
    m, n = x.shape
    out = np.empty(m, np.float64)
    for r in prange(m):
        out[r] = _finite(stat(x[r], y[r], np.ones(n, np.int64)))
    return out


@njit(_ROWS(_ROWS, _ROWS, _FN), cache=True, parallel=True)
def jackknife_rows(x, y, stat):
    """Leave-one-pair-out values ``(m, n)``: pair ``i``'s count set to 0."""
    m, n = x.shape
    out = np.empty((m, n), np.float64)
    for r in prange(m):
        w = np.ones(n, np.int64)
        for i in range(n):
            w[i] = 0
            out[r, i] = _finite(stat(x[r], y[r], w))
            w[i] = 1
    return out


@njit(_ROWS(_ROWS, _ROWS, _JACK_FN), cache=True, parallel=True)
def own_jackknife_rows(x, y, jack):
    """Leave-one-pair-out values ``(m, n)`` from the statistic's own ``jackknife(x, y) -> (n,)``."""
    m, n = x.shape
    out = np.empty((m, n), np.float64)
    for r in prange(m):
        v = jack(x[r], y[r])
        for i in range(n):
            out[r, i] = _finite(v[i])
    return out


@njit(_ROWS(_ROWS, _ROWS, _KEYS, types.int64, _FN), cache=True, parallel=True)
def bootstrap_rows(x, y, keys, n_boot, stat):
    """The statistic of ``n_boot`` paired resamples per row ``(m, n_boot)``; resample ``b`` of row ``r``
    counts the pairs :func:`simulation.engine._kernels._draw_resample` draws for key ``keys[r]`` (the engine's
    indices).  With fewer rows than threads a row's resamples are split across them
    (:func:`simulation.engine._kernels.resample_parts`); each resample is computed whole by one thread, so no
    value depends on the split."""
    m, n = x.shape
    out = np.empty((m, n_boot), np.float64)
    parts = _kernels.resample_parts(m, n_boot)  # fewer rows than threads: a row's resamples in parts
    for task in prange(m * parts):
        r, part = task // parts, task % parts
        lo, hi = _kernels._part_bounds(part, parts, n_boot)
        w = np.zeros(n, np.int64)
        draws = np.empty(n, np.int64)
        for b in range(lo, hi):
            _kernels._resample_counts(keys[r, 0], keys[r, 1], b, draws, w)
            out[r, b] = _finite(stat(x[r], y[r], w))
    return out


@njit(types.UniTuple(_ROWS, 2)(_ROWS, _ROWS, _KEYS, types.int64, _FN, _FN), cache=True, parallel=True)
def bootstrap_se_rows(x, y, keys, n_boot, stat, se):
    """As :func:`bootstrap_rows`, and each resample's standard error from ``se`` ``(m, n_boot)`` each."""
    m, n = x.shape
    out = np.empty((m, n_boot), np.float64)
    out_se = np.empty((m, n_boot), np.float64)
    parts = _kernels.resample_parts(m, n_boot)
    for task in prange(m * parts):
        r, part = task // parts, task % parts
        lo, hi = _kernels._part_bounds(part, parts, n_boot)
        w = np.zeros(n, np.int64)
        draws = np.empty(n, np.int64)
        for b in range(lo, hi):
            _kernels._resample_counts(keys[r, 0], keys[r, 1], b, draws, w)
            out[r, b] = _finite(stat(x[r], y[r], w))
            out_se[r, b] = _finite(se(x[r], y[r], w))
    return out, out_se


@njit(_ROWS(_ROWS, _ROWS, _KEYS, types.int64, _FN), cache=True, parallel=True)
def permutation_rows(x, y, keys, n_perm, stat):
    """The statistic of ``n_perm`` random re-pairings of each row ``(m, n_perm)``: x of pair ``perm[j]``
    with y of pair ``j``, ``perm`` from :func:`simulation.engine._kernels._permute` with key ``keys[r]`` (the
    permutations the built-in statistics' nulls use for the same keys)."""
    m, n = x.shape
    out = np.empty((m, n_perm), np.float64)
    for r in range(m):
        for p in prange(n_perm):
            perm = np.empty(n, np.int64)
            _kernels._permute(keys[r, 0], keys[r, 1], p, _kernels.STREAM_PERMUTATION, perm)
            xp = np.empty(n, np.float64)
            for j in range(n):
                xp[j] = x[r, perm[j]]
            out[r, p] = _finite(stat(xp, y[r], np.ones(n, np.int64)))
    return out


# --------------------------------------------------------------------------
# The user's parts
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class UserParts:
    """What a user statistic is made of (see the module docstring); built by
    :meth:`Statistic.from_numba <simulation.statistics.statistic.Statistic.from_numba>` and
    :meth:`~simulation.statistics.statistic.Statistic.from_callable`."""

    func: Callable[..., Any]
    fast: bool
    se: Callable[..., Any] | None = None
    jackknife: Callable[..., Any] | None = None
    prepare: Callable[..., Any] | None = None
    transform: str = "fisher_z"
    bounds: tuple[float, float] | None = None
    truth: Callable[..., float | None] | None = None
    z_variances: Mapping[str, Callable[..., Any]] = dataclasses.field(default_factory=dict)
    tests: tuple[str, ...] = ("permutation",)
    #: Declared odd-symmetric: its truth at ``rho = 0`` is exactly 0 (see :meth:`Statistic.from_numba`).
    odd_symmetric: bool = False
    #: ``module:attribute`` it was loaded from (None when given as an object).
    spec: str | None = None
    #: Its registry name (for messages).
    name: str = ""
    #: SHA-256 of the name and the source of every part: part of a run's identity.
    digest: str = ""

    def parts_digest(self, name: str) -> str:
        """The :attr:`digest` of these parts under ``name``, from their source as this process reads it (a
        Dask worker recomputes it to prove it runs the client's code)."""
        settings = f"{self.fast} {self.transform} {self.bounds} {self.tests} {sorted(self.z_variances)}"
        settings += " odd" if self.odd_symmetric else ""
        return digest(f"{name} {settings}", self.func, self.se, self.jackknife, self.prepare, self.truth,
                      *self.z_variances.values())  # fmt: skip

    def part_digests(self, *, imported_only: bool = False) -> dict[str, str]:
        """SHA-256 of each part's source, by part (``func``, ``se``, ..., ``z_variance:<name>``).
        ``imported_only``: only the parts that are the very objects of a module this process imported (on a
        Dask worker: the parts that travelled by reference and run from the worker's own copy of the module;
        a numba function travels by value, as the client's code, and is left out)."""
        named = {"func": self.func, "se": self.se, "jackknife": self.jackknife, "prepare": self.prepare,
                 "truth": self.truth, **{f"z_variance:{k}": v for k, v in self.z_variances.items()}}  # fmt: skip
        return {label: hashlib.sha256(_source(part).encode()).hexdigest() for label, part in named.items()
                if part is not None and (not imported_only or _imported(part))}  # fmt: skip

    def modules(self) -> tuple[str, ...]:
        """The modules its parts come from, which every Dask worker must be able to import (not this
        package's, whose version is checked anyway, nor ``__main__``, whose functions travel by value)."""
        parts = (self.func, self.se, self.jackknife, self.prepare, self.truth, *self.z_variances.values())
        names = {getattr(getattr(p, "py_func", p), "__module__", None) for p in parts if p is not None}
        if self.spec is not None:
            names.add(self.spec.partition(":")[0])
        return tuple(sorted(m for m in names if m and m != "__main__" and m.split(".")[0] != "simulation"))

    def prepared(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` after :attr:`prepare`, C-contiguous float64 ``(m, n)``."""
        if self.prepare is not None:
            x, y = self.prepare(x, y)
        return writable(x), writable(y)

    # -- rows ---------------------------------------------------------------
    def estimate_rows(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.fast:
            return estimate_rows(x, y, self.func)
        return _finite_array(self.func(x, y, axis=-1), x.shape[0], "the data")

    def jackknife_rows(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.jackknife is None:
            warn_jackknife_cost(self, x.shape[-1])
        if self.jackknife is not None and self.fast:
            return own_jackknife_rows(x, y, self.jackknife)
        if self.fast:
            return jackknife_rows(x, y, self.func)
        m, n = x.shape
        keep = ~np.eye(n, dtype=bool)
        out = np.empty((m, n))
        for r in range(m):  # (n, n - 1): row i leaves pair i out
            xs = x[r][None, :].repeat(n, 0)[keep].reshape(n, n - 1)
            ys = y[r][None, :].repeat(n, 0)[keep].reshape(n, n - 1)
            out[r] = _finite_array(self.func(xs, ys, axis=-1), n, "the leave-one-out datasets")
        return out

    def se_rows(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.fast:
            return estimate_rows(x, y, self.se)
        return _finite_array(self.se(x, y, axis=-1), x.shape[0], "the data")

    def bootstrap_rows(self, x, y, keys, n_boot, with_se: bool) -> tuple[np.ndarray, np.ndarray | None]:
        if self.fast:
            if with_se:
                return bootstrap_se_rows(x, y, keys, n_boot, self.func, self.se)
            return bootstrap_rows(x, y, keys, n_boot, self.func), None
        m, n = x.shape
        theta = np.empty((m, n_boot))
        se = np.empty((m, n_boot)) if with_se else None
        for r in range(m):
            idx = _kernels.resample_indices(keys[r : r + 1], n_boot, n)[0]
            xb, yb = x[r][idx], y[r][idx]
            theta[r] = _finite_array(self.func(xb, yb, axis=-1), n_boot, "the resamples")
            if with_se:
                se[r] = _finite_array(self.se(xb, yb, axis=-1), n_boot, "the resamples")
        return theta, se

    def permutation_rows(self, x, y, keys, n_perm) -> np.ndarray:
        if self.fast:
            return permutation_rows(x, y, keys, n_perm, self.func)
        m, n = x.shape
        out = np.empty((m, n_perm))
        for r in range(m):
            perms = _permutations(keys[r], n_perm, n)
            out[r] = _finite_array(self.func(x[r][perms], np.broadcast_to(y[r], perms.shape), axis=-1), n_perm, "")
        return out

    # -- transform ----------------------------------------------------------
    def g(self, theta: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.arctanh(theta) if self.transform == "fisher_z" else np.asarray(theta, dtype=np.float64)

    def g_prime(self, theta: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1.0 / (1.0 - theta * theta) if self.transform == "fisher_z" else np.ones_like(theta)


def _finite_array(values: Any, size: int, what: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64).reshape(-1)
    if out.shape[0] != size:
        raise ValueError(f"the statistic returned {out.shape[0]} values for {size} datasets ({what}); "
                         "a Python statistic must reduce along `axis` (stat(x, y, axis=-1) -> one value per row)")
    return np.where(np.isfinite(out), out, np.nan)


@njit(cache=True)
def _permutations_kernel(k0, k1, n_perm, n):
    out = np.empty((n_perm, n), np.int64)
    for p in range(n_perm):
        _kernels._permute(k0, k1, p, _kernels.STREAM_PERMUTATION, out[p])
    return out


def _permutations(key: np.ndarray, n_perm: int, n: int) -> np.ndarray:
    return _permutations_kernel(key[0], key[1], n_perm, n)


# --------------------------------------------------------------------------
# Building and loading
# --------------------------------------------------------------------------
def _imported(part: Any) -> bool:
    """Whether ``part`` is the object its module (imported in this process) holds under its name."""
    target = getattr(part, "py_func", part)
    module = sys.modules.get(getattr(target, "__module__", None) or "")
    obj: Any = module
    for name in getattr(target, "__qualname__", "<none>").split("."):
        obj = getattr(obj, name, None)
    return obj is not None and (obj is part or getattr(obj, "py_func", obj) is target)


def _source(obj: Any) -> str:
    if obj is None:
        return ""
    target = getattr(obj, "py_func", obj)
    try:
        return inspect.getsource(target)
    except (OSError, TypeError):
        return repr(target)


def digest(name: str, *parts: Any) -> str:
    """SHA-256 of ``name`` and the source of each part (what a run's identity records of a user statistic)."""
    h = hashlib.sha256(name.encode())
    for part in parts:
        h.update(b"\0" + _source(part).encode())
    return h.hexdigest()


def is_numba(func: Any) -> bool:
    """Whether ``func`` is a numba CPU dispatcher (``numba.njit``); with ``NUMBA_DISABLE_JIT=1`` (kernels run
    as plain Python, for coverage and debugging) ``njit`` returns the function itself, which then counts."""
    return isinstance(func, CPUDispatcher) or (bool(numba.config.DISABLE_JIT) and callable(func))


#: The n above which a user statistic without ``jackknife=`` is warned (once per statistic and process, a
#: :class:`JackknifeCostWarning`): its leave-one-out values are then n evaluations of the statistic on the
#: whole dataset, n^2 pair visits per dataset, as much work as n bootstrap resamples; at n = 10,000 that is
#: ten times the resamples of the default bootstrap (1,000), and it grows as n^2 where the bootstrap grows as n.
JACKKNIFE_BUDGET_N = 10_000

_JACKKNIFE_WARNED: set[str] = set()


class JackknifeCostWarning(UserWarning):
    """A user statistic without ``jackknife=`` is used at an n above :data:`JACKKNIFE_BUDGET_N`: its
    leave-one-out values (BCa's acceleration, the jackknife SE) cost n evaluations of the statistic per
    dataset.  Give :meth:`Statistic.from_numba <simulation.statistics.statistic.Statistic.from_numba>` a
    ``jackknife(x, y) -> (n,)`` that computes them in O(n) or O(n log n)."""


def warn_jackknife_cost(parts: UserParts, n: int) -> bool:
    """Warn once per statistic (by its digest) and process when ``parts`` has no ``jackknife`` and ``n``
    exceeds :data:`JACKKNIFE_BUDGET_N`; whether it warned."""
    if parts.jackknife is not None or n <= JACKKNIFE_BUDGET_N or parts.digest in _JACKKNIFE_WARNED:
        return False
    _JACKKNIFE_WARNED.add(parts.digest)
    how = ("give Statistic.from_numba(..., jackknife=) a function (x, y) -> (n,) leave-one-out values"
           if parts.fast else "the slow path (Statistic.from_callable) also holds n x (n - 1) arrays per dataset; "
           "write it with numba and give Statistic.from_numba(..., jackknife=)")
    warnings.warn(JackknifeCostWarning(
        f"statistic {parts.name or getattr(parts.func, '__name__', '?')!r} has no `jackknife`: at n = {n:,} its "
        f"leave-one-out values cost n = {n:,} evaluations of the statistic per dataset (n^2 = {float(n) * n:.1e} "
        f"pair visits, above the budget of n = {JACKKNIFE_BUDGET_N:,}); {how} (docs: guide, custom statistics)"
    ), stacklevel=3)
    return True


#: The longest statistic name, in bytes (a scenario's key, ``__`` and the name make a folder name: 255 at most).
MAX_NAME_BYTES = 64


def check_parts(
    name: Any,
    func: Any,
    *,
    fast: bool,
    se: Any,
    jackknife: Any,
    prepare: Any,
    transform: Any,
    bounds: Any,
    truth: Any,
    z_variances: Any,
    tests: Any,
) -> None:
    """Validate a user statistic's declaration (before anything is compiled or run)."""
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-." for c in name):
        raise ValueError(f"`name` of a statistic must be a non-empty string of letters, digits, '_', '-', '.', "
                         f"got {name!r}")
    if len(name.encode()) > MAX_NAME_BYTES:  # it names folders of blocks, after the scenario's key
        raise ValueError(f"`name` of a statistic must be at most {MAX_NAME_BYTES} bytes, got {len(name.encode())} "
                         f"({name[:40]!r}...)")  # fmt: skip
    what = f"statistic {name!r}"
    if not callable(func):
        raise TypeError(f"{what}: expected a callable (a numba.njit function stat(x, y, counts) -> float, or a "
                        f"Python function stat(x, y, axis=-1)), got {type(func).__name__}")
    if fast and not is_numba(func):
        raise TypeError(f"{what}: Statistic.from_numba needs a numba.njit function stat(x, y, counts) -> float, "
                        f"got {type(func).__name__} (use Statistic.from_callable for a Python function)")
    for part, value in (("se", se), ("jackknife", jackknife)):
        if value is not None and fast and not is_numba(value):
            raise TypeError(f"{what}: `{part}` must be a numba.njit function like the statistic, got "
                            f"{type(value).__name__}")
        if value is not None and not callable(value):
            raise TypeError(f"{what}: `{part}` must be callable, got {type(value).__name__}")
    if jackknife is not None and not fast:
        raise TypeError(f"{what}: `jackknife` is for the fast path (a numba function (x, y) -> (n,) values); "
                        "the slow path leaves each pair out and calls the statistic")
    if prepare is not None and not callable(prepare):
        raise TypeError(f"{what}: `prepare` must be callable (x, y) -> (x, y), got {type(prepare).__name__}")
    if truth is not None and not callable(truth):
        raise TypeError(f"{what}: `truth` must be callable scenario -> float or None, got {type(truth).__name__}")
    if transform not in TRANSFORMS:
        raise ValueError(f"{what}: `transform` must be one of {list(TRANSFORMS)}, got {transform!r}")
    if bounds is not None:
        ok = isinstance(bounds, tuple | list) and len(bounds) == 2 and all(
            isinstance(b, int | float) and not isinstance(b, bool) for b in bounds
        )
        if not ok or not bounds[0] < bounds[1]:
            raise ValueError(f"{what}: `bounds` must be (lower, upper) with lower < upper, got {bounds!r}")
    if transform == "fisher_z" and (bounds is None or tuple(bounds) != (-1.0, 1.0)):
        raise ValueError(f"{what}: the `fisher_z` transform is for correlations: `bounds` must be (-1, 1), got "
                         f"{bounds!r} (use transform='identity' otherwise)")
    if not isinstance(z_variances, Mapping) or not all(
        isinstance(k, str) and k.isidentifier() and callable(v) for k, v in z_variances.items()
    ):
        raise TypeError(f"{what}: `z_variances` must map names to functions (estimate, n) -> variance, "
                        f"got {z_variances!r}")
    if z_variances and transform != "fisher_z":
        raise ValueError(f"{what}: `z_variances` give Fisher-z intervals; they need transform='fisher_z'")
    bad = [t for t in tests] if isinstance(tests, str) or not isinstance(tests, tuple | list) else [
        t for t in tests if t not in TESTS
    ]
    if bad or "permutation" not in tests:
        raise ValueError(f"{what}: `tests` must be a list from {list(TESTS)} that includes 'permutation', "
                         f"got {tests!r}")


# --------------------------------------------------------------------------
# Validation: once, serially, before any parallel work
# --------------------------------------------------------------------------
def validate(stat, x: np.ndarray, y: np.ndarray, data: str = "a generated dataset") -> None:
    """Compile and run a user statistic's parts on one dataset ``x, y (n,)``, serially (errors inside
    numba's parallel loops are lost or turn into others); a clear ``ValueError`` naming the statistic,
    the exception and the dataset's shape otherwise.  The slow path also warns how much slower it
    measured than the built-in Spearman kernel on this dataset.  ``data`` names the dataset in messages."""
    parts = stat.user
    n = x.shape[-1]
    where = f"statistic {stat.name!r} on {data} of n = {n} pairs"
    try:
        xp, yp = parts.prepared(x.reshape(1, n), y.reshape(1, n))
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{where}: `prepare` raised {type(exc).__name__}: {exc}") from None
    if xp.shape != (1, n) or yp.shape != (1, n):
        raise ValueError(f"{where}: `prepare` must return x and y of shape (m, n) as given, got "
                         f"{xp.shape} and {yp.shape}")
    checks = [("the statistic", parts.func)] + ([("`se`", parts.se)] if parts.se is not None else [])
    for label, f in checks:
        try:
            if parts.fast:
                value = f(xp[0], yp[0], np.ones(n, np.int64))
            else:
                value = np.asarray(f(xp, yp, axis=-1))
                if value.shape not in ((1,), ()):
                    raise ValueError(f"returned shape {value.shape} for one dataset of shape {xp.shape}: "
                                     "it must reduce along `axis`")
                value = value.reshape(-1)[0]
        except Exception as exc:  # noqa: BLE001
            kind = "stat(x, y, counts) -> float" if parts.fast else "stat(x, y, axis=-1)"
            raise ValueError(f"{where}: {label} raised {type(exc).__name__}: {exc} (expected {kind})") from None
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.floating | np.integer):
            raise ValueError(f"{where}: {label} returned a {type(value).__name__}, expected a float")
        if label == "the statistic" and parts.bounds is not None and np.isfinite(value):
            lo, hi = parts.bounds
            if not lo <= value <= hi:
                raise ValueError(f"{where}: the statistic returned {value!r}, outside its bounds {parts.bounds}")
    try:  # the engine's own kernels, with the statistic as a first-class function
        stat.estimate_rows(xp, yp)
        stat.jackknife_rows(xp, yp)
        if parts.fast:
            bootstrap_rows(xp, yp, np.zeros((1, 2), np.uint64), 2, parts.func)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{where}: the engine cannot call it ({type(exc).__name__}: {exc}); a numba statistic "
                         "must accept (float64[::1] x, float64[::1] y, int64[::1] counts) and return a float: "
                         "declare it with numba.njit and no signature, or that one") from None
    if not parts.fast:
        _warn_slow(stat, x, y)


def _warn_slow(stat, x: np.ndarray, y: np.ndarray) -> None:
    """Time the Python statistic per resample against the built-in Spearman kernel on the same data."""

    n = x.shape[-1]
    xr, yr = np.ascontiguousarray(x.reshape(1, n), dtype=np.float64), np.ascontiguousarray(y.reshape(1, n))
    keys = np.array([[1, 2]], np.uint64)
    groups = group_ids(xr, yr)
    jack = _kernels.jackknife_rows(*groups)
    n_boot = 200
    _kernels.bootstrap_rows(*groups, keys, 2, jack, False)
    t0 = time.perf_counter()
    _kernels.bootstrap_rows(*groups, keys, n_boot * 10, jack, False)
    builtin = (time.perf_counter() - t0) / (n_boot * 10)
    xp, yp = stat.user.prepared(xr, yr)
    # warmed up like the kernel: the first call pays imports, caches and compilation inside the user's
    # function (once read 397,690x slower on the first run after install, 7-12x after)
    stat.user.bootstrap_rows(xp, yp, keys, n_boot, False)  # the same shapes as the timed call
    t0 = time.perf_counter()
    stat.user.bootstrap_rows(xp, yp, keys, n_boot, False)
    slow = (time.perf_counter() - t0) / n_boot
    ratio = slow / max(builtin, 1e-9)
    warnings.warn(
        f"statistic {stat.name!r} is a Python callable (slow path): measured {ratio:.0f}x slower per resample "
        f"than the built-in Spearman kernel at n = {n} ({slow * 1e6:.1f} vs {builtin * 1e6:.2f} microseconds); "
        "declare it with numba.njit as stat(x, y, counts) for the fast path",
        UserWarning,
        stacklevel=3,
    )


# --------------------------------------------------------------------------
# Truth: a closed form, or the expected sample statistic measured
# --------------------------------------------------------------------------
#: Datasets per batch of a measured truth (in fewer datasets of as many pairs above n = 2,000:
#: :func:`~simulation.models.generators.draws_at`).
TRUTH_BATCH = 20_000
TRUTH_MAX = 2_000_000


def measured_truth(stat, scenario, seed, target_mcse: float, *, calibration=None):
    """The expected sample statistic of ``scenario``'s datasets (any statistic's), measured in batches of
    :data:`TRUTH_BATCH` on ``seed``'s children until its MCSE (SD / sqrt(N)) is at most ``target_mcse``
    or :data:`TRUTH_MAX` datasets were used (the MCSE reached is reported either way).  Datasets where the
    statistic is undefined, or where a user statistic raises (as the run leaves them out), are left out."""

    total = total_sq = 0.0
    count = used = 0
    batch = 0
    size = draws_at(TRUTH_BATCH, scenario.n)
    while True:
        x, y = scenario.generate(size, child_seed(seed, batch), calibration=calibration)
        values = _estimates_or_nan(stat, x, y)
        values = values[np.isfinite(values)]
        total += float(values.sum())
        total_sq += float(np.square(values).sum())
        count += values.shape[0]
        used += size
        batch += 1
        if count > 1:
            mean = total / count
            var = max(total_sq / count - mean * mean, 0.0) * count / (count - 1)
            mcse = math.sqrt(var / count)
            if mcse <= target_mcse or used >= TRUTH_MAX:
                return Truth(mean, mcse, count)
        elif used >= TRUTH_MAX:
            raise ValueError(f"statistic {stat.name!r} is undefined on every dataset of scenario {scenario.key!r}")


def _estimates_or_nan(stat, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The statistic of each dataset ``x, y (m, n)``; a user statistic that raises on the batch is computed one
    dataset at a time, NaN where it raises (a built-in's exception propagates)."""
    try:
        return stat.estimate_rows(*stat.inputs(x, y))
    except Exception:  # noqa: BLE001 - the user's code failed on some dataset of the batch
        if stat.user is None:
            raise
    out = np.full(x.shape[0], np.nan)
    for i in range(x.shape[0]):
        try:
            out[i] = stat.estimate_rows(*stat.inputs(x[i : i + 1], y[i : i + 1]))[0]
        except Exception:  # noqa: BLE001 - left out, as the run leaves the dataset out
            continue
    return out


def truth(stat, scenario, seed, target_mcse: float, *, calibration=None):
    """A user statistic's estimand for ``scenario``: its closed form where ``truth(scenario)`` gives one;
    exactly 0 at ``rho = 0`` for a statistic declared ``odd_symmetric`` (at rho 0 every generator's x and
    y are independent, or, for the bivariate t, symmetric under y -> -y, and such a statistic's expectation
    is then 0); else the expected sample statistic at the scenario's n, :func:`measured_truth`."""

    if stat.user.truth is not None:
        value = stat.user.truth(scenario)
        if value is not None:
            return Truth(float(value), 0.0, 0)
    if stat.user.odd_symmetric and float(scenario.rho) == 0.0:
        return Truth(0.0, 0.0, 0)
    return measured_truth(stat, scenario, seed, target_mcse, calibration=calibration)


# --------------------------------------------------------------------------
# Helpers a user may pass as parts
# --------------------------------------------------------------------------
def dense_ranks(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A ``prepare`` for rank statistics: each row's values replaced by their tie-group ids 0, 1, ...
    (ascending; ties share an id), as float64.  Any statistic of the ranks is unchanged by it, and it
    saves sorting every resample."""
    gx, _ = _kernels.group_ids_rows(np.ascontiguousarray(x, dtype=np.float64))
    gy, _ = _kernels.group_ids_rows(np.ascontiguousarray(y, dtype=np.float64))
    return gx.astype(np.float64), gy.astype(np.float64)
