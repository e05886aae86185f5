"""Bootstrap engine benchmark: the headline scenario, timed side by side in one run.

Scenario: the default study's headline, n = 73, x with 4 tied values (counts
19/18/18/18, rank mixing at rho = -0.13), 200 datasets x 1000 resamples, all
five bootstrap methods.  Compared against

(a) the per-replicate fallback (``batch_bootstrap=False``),
(b) ``scipy.stats.bootstrap`` (paired, BCa) with a vectorized Spearman statistic,
(c) the floor: drawing the same number of bootstrap indices with
    ``numpy.random.Generator.integers`` (one call per dataset, default dtype).

Each contender runs ``--repeats`` times, interleaved, and the median is kept
(these machines are noisy; only the ratios are meaningful).  Numba
compilation is excluded (a warm-up call) and reported separately.

Run: ``python benchmarks/bench_bootstrap.py``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import numpy as np
from scipy import stats

from simulation import bootstrap_ci_averaged
from simulation.engine.seeding import child_seed, rng_from
from simulation.models.scenarios import load_study


def spearman_vectorized(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman along ``axis`` (rankdata + Pearson), as a user of scipy.stats.bootstrap would write it."""
    rx = stats.rankdata(x, axis=axis)
    ry = stats.rankdata(y, axis=axis)
    rx = rx - rx.mean(axis=axis, keepdims=True)
    ry = ry - ry.mean(axis=axis, keepdims=True)
    return (rx * ry).sum(axis=axis) / np.sqrt((rx**2).sum(axis=axis) * (ry**2).sum(axis=axis))


HEADLINE = "case3-B-Al_rank_mixing_n73_k4_even_rho-0.13"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-reps", type=int, default=200)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scipy-reps", type=int, default=50, help="datasets timed for scipy (scaled up)")
    args = parser.parse_args()
    n_reps, n_boot = args.n_reps, args.n_boot
    (headline,) = [s for s in load_study("karwowski2018") if s.key == HEADLINE]
    x, y = headline.generate(n_reps, seed=1)
    n = x.shape[1]

    t0 = time.perf_counter()
    bootstrap_ci_averaged(x[:2], y[:2], n_boot=10, seed=0)
    compile_s = time.perf_counter() - t0

    def batch():
        bootstrap_ci_averaged(x, y, n_boot=n_boot, seed=5, batch_bootstrap=True)

    def fallback():
        bootstrap_ci_averaged(x, y, n_boot=n_boot, seed=5, batch_bootstrap=False)

    def floor():
        for r in range(n_reps):
            rng_from(child_seed(5, r)).integers(0, n, size=(n_boot, n))

    def scipy_bca():
        rng = np.random.default_rng(5)
        for r in range(args.scipy_reps):
            stats.bootstrap(
                (x[r], y[r]),
                spearman_vectorized,
                paired=True,
                vectorized=True,
                n_resamples=n_boot,
                method="BCa",
                rng=rng,
            )

    timers = {"batch (ours)": batch, "fallback (a)": fallback, "scipy BCa (b)": scipy_bca, "floor (c)": floor}
    times: dict[str, list[float]] = {k: [] for k in timers}
    for _ in range(args.repeats):
        for name, fn in timers.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    med["scipy BCa (b)"] *= n_reps / args.scipy_reps

    print(f"scenario: n = {n}, x counts 19/18/18/18, {n_reps} datasets x {n_boot} resamples, 5 bootstrap methods")
    print(f"numba threads: {numba.get_num_threads()}; compilation/cache load (excluded): {compile_s:.2f} s")
    print(f"medians of {args.repeats} interleaved runs (scipy timed on {args.scipy_reps} datasets, scaled):")
    for name, value in med.items():
        print(f"  {name:<15} {value:8.4f} s")
    ours = med["batch (ours)"]
    print("ratios:")
    print(f"  fallback / batch        {med['fallback (a)'] / ours:7.1f}x")
    print(f"  scipy BCa / batch       {med['scipy BCa (b)'] / ours:7.1f}x   (target >= 30x)")
    print(f"  batch / floor           {ours / med['floor (c)']:7.2f}x   (target <= 2x)")
    print(f"  resamples per second    {n_reps * n_boot / ours:,.0f}")


if __name__ == "__main__":
    main()
