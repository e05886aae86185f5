"""Calibrate and generate all 88 scenarios of the default study (200 datasets each).

Numba compilation is excluded (one warm-up scenario, then the calibration
cache is cleared).  Target: <= 2 s on 2 cores.

Run: ``python benchmarks/bench_generators.py``
"""

from __future__ import annotations

import time

from simulation.models.generators import _calibration_draws, calibrate_tied
from simulation.models.scenarios import load_study, scenario_seed


def main() -> None:
    scenarios = load_study("karwowski2018")
    scenarios[0].generate(2, scenario_seed(0, scenarios[0]))  # compile kernels
    calibrate_tied.cache_clear()
    _calibration_draws.cache_clear()
    t0 = time.perf_counter()
    for s in scenarios:
        s.calibration()
    t1 = time.perf_counter()
    for s in scenarios:
        s.generate(200, scenario_seed(1, s))
    t2 = time.perf_counter()
    print(f"{len(scenarios)} scenarios: calibration {t1 - t0:.2f} s, generation of 200 datasets each {t2 - t1:.2f} s")
    print(f"total {t2 - t0:.2f} s (target <= 2 s)")


if __name__ == "__main__":
    main()
