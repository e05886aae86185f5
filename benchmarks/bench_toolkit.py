"""Speed of the SLO and regression checks, side by side with SciPy doing the same job.

* SLO: p95 bootstrap interval, 10,000 resamples of 500 measurements
  (target <= 50 ms); SciPy: ``scipy.stats.bootstrap`` with a vectorized
  ``np.percentile`` statistic, percentile method.
* Regression: permutation test of the difference in means, 10,000
  permutations of 2 x 500 measurements, plus Mann-Whitney (target <= 50 ms);
  SciPy: ``scipy.stats.permutation_test``.

Medians of 7 interleaved runs after a warm-up (compilation excluded).
Run: ``python benchmarks/bench_toolkit.py``
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from scipy import stats

from simulation.toolkit.slo import regression_check, slo_compliance


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    rng = np.random.default_rng(1)
    lat = rng.exponential(50, 500)
    base, cur = rng.exponential(50, 500), rng.exponential(52, 500)
    jobs = {
        "slo (ours)": lambda: slo_compliance(lat, 200.0, n_resamples=10_000),
        "slo (scipy.stats.bootstrap)": lambda: stats.bootstrap(
            (lat,), lambda a, axis: np.percentile(a, 95, axis=axis), n_resamples=10_000,
            confidence_level=0.999, method="percentile", random_state=0,
        ),
        "regression (ours)": lambda: regression_check(base, cur, n_permutations=10_000),
        "regression (scipy.stats.permutation_test)": lambda: stats.permutation_test(
            (base, cur), lambda u, v, axis: v.mean(axis=axis) - u.mean(axis=axis), n_resamples=10_000,
            random_state=0,
        ),
    }  # fmt: skip
    for fn in jobs.values():
        fn()
    times = {name: [] for name in jobs}
    for _ in range(7):
        for name, fn in jobs.items():
            times[name].append(_time(fn))
    med = {name: statistics.median(t) for name, t in times.items()}
    for name, t in med.items():
        print(f"  {name:44s} {t * 1000:7.1f} ms")
    print(f"slo: {med['slo (ours)'] * 1000:.1f} ms (target <= 50 ms), "
          f"{med['slo (scipy.stats.bootstrap)'] / med['slo (ours)']:.1f}x faster than SciPy")
    print(f"regression: {med['regression (ours)'] * 1000:.1f} ms (target <= 50 ms), "
          f"{med['regression (scipy.stats.permutation_test)'] / med['regression (ours)']:.1f}x faster than SciPy")


if __name__ == "__main__":
    main()
