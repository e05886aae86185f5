"""Boundary checks shared by public functions, settings and the CLI.

Every message names the parameter in backticks, shows the value and says
what is allowed.
"""

from __future__ import annotations

import numbers

import numpy as np

MIN_SAMPLE_SIZE = 4


class RunError(ValueError):
    """A problem with a run's inputs or its output folder; the message says what to do."""


def check_positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as int if it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_confidence_level(value: object, name: str = "confidence_level") -> float:
    """Return ``value`` as float if it lies strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number in (0, 1), got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"`{name}` must be in (0, 1), got {value!r}")
    return float(value)


def check_seed(value: object, name: str = "seed") -> int | np.random.SeedSequence:
    """Accept a non-negative integer or a :class:`numpy.random.SeedSequence`."""
    if isinstance(value, np.random.SeedSequence):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be a non-negative integer or a numpy.random.SeedSequence, got {value!r}")
    if value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}")
    return int(value)


def check_n_jobs(value: object, name: str = "n_jobs") -> int:
    """Accept a positive integer or a negative one in joblib's sense (-1: all cores)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value == 0:
        raise ValueError(f"`{name}` must be a non-zero integer (-1: all cores), got {value!r}")
    return int(value)


def check_bool(value: object, name: str) -> bool:
    """Accept only a real bool (not 0/1 or strings)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {value!r}")
    return bool(value)


def writable(value: object) -> np.ndarray:
    """``value`` as a C-contiguous, writeable float64 array: a read-only array (a pandas 3 Series'
    ``to_numpy()``, a memory map) is copied, since numba compiles separate, mismatching signatures for
    read-only arrays."""
    arr = np.ascontiguousarray(value, dtype=np.float64)
    return arr if arr.flags.writeable else arr.copy()


def check_paired_data(
    x: object, y: object, *, ndim: int, min_n: int = MIN_SAMPLE_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """Convert paired data to C-contiguous float64 arrays and check them.

    ``ndim`` is 1 for one dataset ``(n,)`` and 2 for a batch ``(n_reps, n)``.
    """
    shape_words = "(n,)" if ndim == 1 else "(n_reps, n)"
    arrays = []
    for name, value in (("x", x), ("y", y)):
        try:
            arr = writable(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"`{name}` must be numeric array-like, got {type(value).__name__}") from exc
        if arr.ndim != ndim:
            raise ValueError(f"`{name}` must have shape {shape_words}, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"`{name}` contains NaN or infinite values; only finite values are allowed")
        arrays.append(arr)
    xa, ya = arrays
    if xa.shape != ya.shape:
        raise ValueError(f"`x` and `y` must have the same shape, got {xa.shape} and {ya.shape}")
    if ndim == 2 and xa.shape[0] < 1:
        raise ValueError("`x` and `y` must hold at least one replicate (n_reps >= 1), got 0")
    n = xa.shape[-1]
    if n < min_n:
        raise ValueError(f"sample size n must be >= {min_n} (length of `x`, `y`), got {n}")
    check_max_sample_size(n)
    return xa, ya


#: Largest sample size: the rank kernels sum doubled midrank deviations exactly in int64, and
#: ``(n^3 - n) / 3`` (the sum of squares of untied ranks' deviations, times 4) overflows it from
#: n = 2,097,152 on; numba wraps silently, so larger samples are refused at the boundary.
MAX_SAMPLE_SIZE = 2_000_000


def check_max_sample_size(n: int, name: str = "sample size n") -> int:
    """``n`` if at most :data:`MAX_SAMPLE_SIZE`, else a ValueError naming the limit and why."""
    if n > MAX_SAMPLE_SIZE:
        raise ValueError(
            f"{name} must be at most {MAX_SAMPLE_SIZE:,} (the exact integer rank sums would overflow), got {n:,}"
        )
    return n
