"""Kendall's tau-b bootstrap against Spearman's and against SciPy, timed side by side in one run.

Goals (issue 18): at n = 80 a tau-b resample costs at most 2x a Spearman
resample when x has 4 tied values and at most 4x with all-distinct x; the
bootstrap of the headline scenario (n = 73, x in 4 groups, 1,000 resamples)
at least 300x faster than ``scipy.stats.bootstrap`` with
``scipy.stats.kendalltau`` as its statistic (not vectorizable: SciPy calls it
once per resample).  The last line uses every core, as the product does; SciPy's
loop over ``kendalltau`` runs on one.

The per-resample comparison times the two replicate kernels alone
(``_kernels.bootstrap_rows`` without controls, ``kendall.bootstrap_rows``
without and with the studentized interval's per-resample ASE) on the same
keys, one numba thread, medians of ``--repeats`` interleaved runs;
compilation excluded.  Only the ratios are meaningful on a noisy machine.

Run: ``python benchmarks/bench_kendall.py``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import numpy as np
from scipy import stats

from simulation import bootstrap_ci_averaged, bootstrap_ci_single
from simulation.engine import _kernels
from simulation.engine.seeding import child_seed
from simulation.inference.bootstrap import resample_keys
from simulation.models.scenarios import load_study
from simulation.statistics import kendall

HEADLINE = "case3-B-Al_rank_mixing_n73_k4_even_rho-0.13"


def _per_resample(x: np.ndarray, y: np.ndarray, n_boot: int, repeats: int) -> tuple[float, float]:
    gx, n_gx = _kernels.group_ids_rows(x)
    gy, n_gy = _kernels.group_ids_rows(y)
    keys = resample_keys([child_seed(1, r) for r in range(x.shape[0])])
    jack = _kernels.jackknife_rows(gx, n_gx, gy, n_gy)
    _kernels.bootstrap_rows(gx, n_gx, gy, n_gy, keys[:1], 2, jack[:1], False)
    kendall.bootstrap_rows(gx, n_gx, gy, n_gy, keys[:1], 2, True)
    spear, tau, tau_t = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _kernels.bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, jack, False)
        spear.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        kendall.bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, False)
        tau.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        kendall.bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, True)
        tau_t.append(time.perf_counter() - t0)
    per = x.shape[0] * n_boot
    return statistics.median(spear) / per, statistics.median(tau) / per, statistics.median(tau_t) / per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-reps", type=int, default=50, help="datasets in the per-resample comparison")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scipy-datasets", type=int, default=3)
    parser.add_argument("--batch-datasets", type=int, default=200)
    args = parser.parse_args()
    numba.set_num_threads(1)
    rng = np.random.default_rng(5)
    n = 80
    print(f"per resample, n = {n}, {args.n_reps} datasets x {args.n_boot} resamples, one thread:")
    for label, x in (
        ("x in 4 tied groups", np.tile(np.repeat(np.arange(4.0), 20), (args.n_reps, 1))),
        ("x all distinct", rng.normal(size=(args.n_reps, n))),
    ):
        x = np.array([rng.permutation(row) for row in x])
        y = 0.3 * x + rng.normal(size=x.shape)
        s, t, tt = _per_resample(x, y, args.n_boot, args.repeats)
        print(f"  {label:20s} Spearman {1e6 * s:5.2f} us  tau-b {1e6 * t:5.2f} us ({t / s:4.2f}x)"
              f"  with its studentized t* {1e6 * tt:5.2f} us ({tt / s:4.2f}x)")  # fmt: skip

    (headline,) = [s for s in load_study("karwowski2018") if s.key == HEADLINE]
    x, y = headline.generate(args.scipy_datasets, seed=1)
    bootstrap_ci_single(x[0], y[0], n_boot=20, seed=0, statistic="kendall_b")
    ours, theirs = [], []
    for r in range(args.scipy_datasets):
        t0 = time.perf_counter()
        bootstrap_ci_single(x[r], y[r], n_boot=args.n_boot, seed=r, statistic="kendall_b")
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        stats.bootstrap(
            (x[r], y[r]), lambda a, b: stats.kendalltau(a, b).statistic, paired=True, vectorized=False,
            n_resamples=args.n_boot, method="BCa", rng=np.random.default_rng(r),
        )  # fmt: skip
        theirs.append(time.perf_counter() - t0)
    o, s = statistics.median(ours), statistics.median(theirs)
    print(f"headline (n = {x.shape[1]}, {args.n_boot} resamples, all five methods), per dataset, one thread:")
    print(f"  ours, one call per dataset {1e3 * o:7.2f} ms   scipy.stats.bootstrap + kendalltau {1e3 * s:8.1f} ms"
          f"   {s / o:5.0f}x faster")  # fmt: skip
    xb, yb = headline.generate(args.batch_datasets, seed=2)

    def per_dataset() -> float:
        """Median seconds per dataset of the whole batch in one call."""
        batch = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            bootstrap_ci_averaged(xb, yb, n_boot=args.n_boot, seed=3, statistic="kendall_b", summarize=False)
            batch.append((time.perf_counter() - t0) / args.batch_datasets)
        return statistics.median(batch)

    b = per_dataset()
    print(f"  ours, {args.batch_datasets} datasets in one call {1e3 * b:7.2f} ms per dataset   {s / b:5.0f}x faster")
    # what the product does on this machine: every core (SciPy's loop over kendalltau has one)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    b = per_dataset()
    print(f"  ours, the same on all {numba.get_num_threads()} cores {1e3 * b:7.2f} ms per dataset   "
          f"{s / b:5.0f}x faster")  # fmt: skip


if __name__ == "__main__":
    main()
