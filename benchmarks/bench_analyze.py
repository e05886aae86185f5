"""Wall time of ``analyze`` at its default precision for n = 30, 80 and 300 pairs with a tied x
(and 500, the largest n the goal covers).

Datasets from :func:`simulation.analyze.analysis.example_pairs` (6 dose levels, heavy
centre; y log-normal rounded to 0.1, so y has ties too).  A first call on a
tiny dataset compiles the kernels (reported once: the cost of a first run on
a fresh install); then each size runs warm, into a temporary folder, with
all cores; the script prints each wall time.  Goal: <= 60 s per
dataset with n <= 500 on 2 cores.

Run: ``python benchmarks/bench_analyze.py`` (about 4 minutes on 2 cores).
"""

from __future__ import annotations

import os
import tempfile
import time

from simulation.analyze.analysis import AnalysisSettings, analyze, example_pairs


def main() -> None:
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        tiny = example_pairs(n=20, seed=1)
        small = AnalysisSettings(n_boot=200, n_perm=500, design_n_reps=100, design_n_boot=100, power_n_reps=50)
        analyze(tiny["dose"], tiny["level"], settings=small, out=f"{tmp}/warm")
        first = time.perf_counter() - t0
        print(f"first call (compilation, cached on disk afterwards, and worker start-up): {first:.1f} s")
        for n in (30, 80, 300, 500):
            data = example_pairs(n=n, seed=n)
            t0 = time.perf_counter()
            result = analyze(data["dose"], data["level"], out=f"{tmp}/n{n}")
            wall = time.perf_counter() - t0
            rec = result.recommendation
            print(
                f"n = {n:3d}: {wall:5.1f} s on {cores} cores (goal <= 60 s); r_s = {result.rho_hat:.3f}; "
                f"recommended {rec['method'] or '(none; closest ' + str(rec['closest']) + ')'}; "
                f"max coverage MCSE {result.coverage['coverage_mcse'].max():.4f}"
            )


if __name__ == "__main__":
    main()
