"""A statistic of your own through the engine, timed side by side with the built-in kernel in one run.

Goals (issue 19): a user statistic that computes Spearman from the counts
(``tests/userstats.py``: midranks from weighted tie-group counts, on data
prepared once per dataset as tie-group ids) costs at most 1.5x the built-in
Spearman per resample; the second process start loads the engine's kernels and
the statistic from numba's on-disk cache instead of compiling them.

Also measured, to explain the design of :mod:`simulation.statistics.custom`:

* the alternative way of passing a function into a kernel, as a plain argument
  (numba specializes the whole kernel on the dispatcher's type): it must be
  compiled again for every statistic and is not cached on disk, while the
  first-class function kernels are compiled once for any statistic;
* the slow path (a vectorized SciPy Pearson) against the numba Pearson.

Run: ``python benchmarks/bench_custom.py`` (one numba thread; medians of
``--repeats`` interleaved runs; compilation excluded from per-resample times;
only the ratios are meaningful on a noisy machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange
from scipy import stats

from simulation.engine import _kernels
from simulation.engine.seeding import child_seed
from simulation.inference.bootstrap import resample_keys
from simulation.statistics import custom, pearson
from simulation.statistics.statistic import PEARSON, Statistic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests import userstats  # noqa: E402  (the user statistic the tests check against the built-in)


@njit(parallel=True)
def _dispatcher_argument_rows(x, y, keys, n_boot, stat):
    """The alternative: the statistic as a plain argument (the kernel is specialized on its type)."""
    m, n = x.shape
    out = np.empty((m, n_boot))
    for r in prange(m):
        w = np.zeros(n, np.int64)
        draws = np.empty(n, np.int64)
        for b in range(n_boot):
            _kernels._resample_counts(keys[r, 0], keys[r, 1], b, draws, w)
            out[r, b] = stat(x[r], y[r], w)
    return out


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _compare(x: np.ndarray, y: np.ndarray, n_boot: int, repeats: int) -> dict[str, float]:
    """Seconds per resample of the built-in Spearman kernel and of the user statistics, interleaved."""
    n_reps = x.shape[0]
    keys = resample_keys([child_seed(1, r) for r in range(n_reps)])
    groups = (*_kernels.group_ids_rows(x), *_kernels.group_ids_rows(y))
    jack = _kernels.jackknife_rows(*groups)
    ux, uy = userstats.USER_SPEARMAN.inputs(x, y)
    px, py = PEARSON.inputs(x, y)
    kernels = {
        "builtin": lambda b: _kernels.bootstrap_rows(*groups, keys, b, jack, False),
        "user": lambda b: custom.bootstrap_rows(ux, uy, keys, b, userstats.spearman_counts),
        "argument": lambda b: _dispatcher_argument_rows(ux, uy, keys, b, userstats.spearman_counts),
        "pearson": lambda b: custom.bootstrap_rows(px, py, keys, b, pearson.pearson_r),
    }
    for fn in kernels.values():
        fn(2)  # compile (or load) first
    times: dict[str, list[float]] = {name: [] for name in kernels}
    for _ in range(repeats):
        for name, fn in kernels.items():
            t0 = time.perf_counter()
            fn(n_boot)
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) / (n_reps * n_boot) for k, v in times.items()}


def per_resample(n_reps: int, n_boot: int, repeats: int) -> None:
    rng = np.random.default_rng(5)
    n = 80
    print(f"per resample, n = {n}, {n_reps} datasets x {n_boot} resamples, one thread:")
    for label, x in (
        ("x in 4 tied groups", np.tile(np.repeat(np.arange(4.0), 20), (n_reps, 1))),
        ("x all distinct", rng.normal(size=(n_reps, n))),
    ):
        x = np.array([rng.permutation(row) for row in x])
        y = 0.3 * x + rng.normal(size=x.shape)
        per = _compare(x, y, n_boot, repeats)
        b = per["builtin"]
        print(f"  {label:20s} built-in Spearman {1e6 * b:5.2f} us | user Spearman (first-class function) "
              f"{1e6 * per['user']:5.2f} us ({per['user'] / b:4.2f}x) | user Spearman (dispatcher argument) "
              f"{1e6 * per['argument']:5.2f} us ({per['argument'] / b:4.2f}x) | Pearson {1e6 * per['pearson']:5.2f} us "
              f"({per['pearson'] / b:4.2f}x)")  # fmt: skip


_START = textwrap.dedent(
    """
    import time
    t0 = time.perf_counter()
    import numpy as np
    from simulation.statistics import custom
    from simulation.inference.bootstrap import resample_keys
    from tests import userstats
    x = np.tile(np.repeat(np.arange(4.0), 20), (2, 1)); y = x[:, ::-1].copy()
    ux, uy = userstats.USER_SPEARMAN.inputs(x, y)
    keys = resample_keys([1, 2])
    t1 = time.perf_counter()
    custom.bootstrap_rows(ux, uy, keys, 10, userstats.spearman_counts)
    custom.jackknife_rows(ux, uy, userstats.spearman_counts)
    t2 = time.perf_counter()
    {extra}
    t3 = time.perf_counter()
    print(f"{{t1 - t0:.3f}} {{t2 - t1:.3f}} {{t3 - t2:.3f}}")
    """
)
_ARGUMENT = textwrap.dedent(
    """
    from benchmarks.bench_custom import _dispatcher_argument_rows
    _dispatcher_argument_rows(ux, uy, keys, 10, userstats.spearman_counts)
    """
).replace("\n", "; ").strip("; ")


def process_starts() -> None:
    """Two fresh processes on an empty numba cache: the first compiles, the second should load."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        print("process starts (fresh NUMBA_CACHE_DIR; seconds: import, first bootstrap + jackknife call with the "
              "user statistic, first call of the dispatcher-argument kernel):")  # fmt: skip
        for start in ("first (compiles)", "second (cache)"):
            out = subprocess.run(
                [sys.executable, "-c", _START.format(extra=_ARGUMENT)], env=env, cwd=ROOT, capture_output=True,
                text=True, check=True,
            ).stdout.split()  # fmt: skip
            print(f"  {start:18s} import {out[0]} s | first-class kernels {out[1]} s | dispatcher argument {out[2]} s")


def slow_path(repeats: int) -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(1, 80))
    y = x + rng.normal(size=(1, 80))
    slow = Statistic.from_callable(lambda a, b, axis=-1: stats.pearsonr(a, b, axis=axis).statistic, name="slow")
    keys = resample_keys([1])
    px, py = PEARSON.inputs(x, y)
    n_boot = 2000
    custom.bootstrap_rows(px, py, keys, 2, pearson.pearson_r)
    fast_t = _median_time(lambda: custom.bootstrap_rows(px, py, keys, n_boot, pearson.pearson_r), repeats)
    slow_t = _median_time(lambda: slow.user.bootstrap_rows(px, py, keys, n_boot, False), repeats)
    print(f"slow path, n = 80, per resample: numba Pearson {1e6 * fast_t / n_boot:6.2f} us, vectorized SciPy "
          f"Pearson {1e6 * slow_t / n_boot:6.2f} us ({slow_t / fast_t:5.0f}x)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-reps", type=int, default=40, help="datasets in the per-resample comparison")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    numba.set_num_threads(1)
    per_resample(args.n_reps, args.n_boot, args.repeats)
    slow_path(args.repeats)
    process_starts()


if __name__ == "__main__":
    main()
