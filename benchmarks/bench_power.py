"""Minimum detectable correlation for all 88 default scenarios at 10,000 datasets per grid point.

Grid |rho| = 0, 0.02, ..., 0.6 (31 points) in the direction of each case's
observed correlation, permutation and t-approximation tests, two-sided
alpha = 0.05, target power 0.8.  Compilation is excluded (one small warm-up
study first); calibration caches are cleared before each timed run.  Target:
<= 60 s on 2 cores.  The predecessor needed 5-12 minutes on 4 cores.

Run: ``python benchmarks/bench_power.py``
"""

from __future__ import annotations

import time

from simulation.models import generators
from simulation.models.scenarios import load_study
from simulation.power import curves as power
from simulation.power.curves import PowerSettings, run_power_study


def _timed(scenarios, settings, n_jobs: int) -> float:
    generators.calibrate_tied.cache_clear()
    generators._calibration_draws.cache_clear()
    power.permutation_null.cache_clear()
    t0 = time.perf_counter()
    run_power_study(scenarios, settings, n_jobs=n_jobs)
    return time.perf_counter() - t0


def main() -> None:
    scenarios = load_study("karwowski2018")
    run_power_study(scenarios[:2], PowerSettings(n_reps=100, grid=(0.0, 0.1)), n_jobs=1)  # compile
    settings = PowerSettings(n_reps=10_000, seed=20180201)
    one = _timed(scenarios, settings, 1)
    many = _timed(scenarios, settings, -1)
    sims = len(scenarios) * len(settings.grid) * settings.n_reps
    grid = len(settings.grid)
    print(f"{len(scenarios)} scenarios x {grid} grid points x {settings.n_reps} datasets ({sims / 1e6:.1f} M)")
    print(f"  n_jobs=1  (threads): {one:.1f} s")
    print(f"  n_jobs=-1 (processes, cold start): {many:.1f} s")
    print(f"best {min(one, many):.1f} s (target <= 60 s)")


if __name__ == "__main__":
    main()
