"""The full default study end to end: 88 scenarios x 200 datasets x 1000 resamples, all 7 methods.

Times, in one process and side by side:

* compilation: the first call of every kernel (numba's on-disk cache is
  cleared first, so this is a true compile);
* the study with ``n_jobs=1``: one process, numba threads on every core;
* the study with ``n_jobs=-1``: one joblib worker process per core, one numba
  thread each (the default), cold (workers start, load the kernels, calibrate)
  and warm (a second run reusing the workers).

Every timed run starts with empty calibration caches and includes
calibration, data generation, bootstrap, Fisher-z intervals and the coverage
table; no files are written (``out=None``) and no figures are drawn.
Target: <= 6 s on 2 cores excluding compilation.

Run: ``python benchmarks/bench_study.py``
"""

from __future__ import annotations

import time
from pathlib import Path

from simulation.models import generators
from simulation.models.scenarios import load_study
from simulation.study.runner import run_all_ci_scenarios, warm_up

SETTINGS = {"n_reps": 200, "n_boot": 1000, "confidence_level": 0.95, "seed": 20180201}


def _timed(scenarios, n_jobs: int) -> float:
    generators.calibrate_tied.cache_clear()
    generators._calibration_draws.cache_clear()
    t0 = time.perf_counter()
    run_all_ci_scenarios(scenarios, n_jobs=n_jobs, **SETTINGS)
    return time.perf_counter() - t0


def main() -> None:
    cache = Path(generators.__file__).parent / "__pycache__"
    for f in cache.glob("*.nb[ic]"):
        f.unlink()
    t0 = time.perf_counter()
    warm_up()
    compile_s = time.perf_counter() - t0
    scenarios = load_study("karwowski2018")
    threads = _timed(scenarios, 1)
    cold = _timed(scenarios, -1)
    warm = _timed(scenarios, -1)
    threads2 = _timed(scenarios, 1)
    resamples = len(scenarios) * SETTINGS["n_reps"] * SETTINGS["n_boot"]
    print(f"compilation (first call of every kernel): {compile_s:.1f} s")
    print(f"{len(scenarios)} scenarios x 200 x 1000 ({resamples / 1e6:.1f} M resamples), all methods:")
    print(f"  n_jobs=1  (threads, 1 process): {threads:.2f} s, again {threads2:.2f} s")
    print(f"  n_jobs=-1 (processes), cold:    {cold:.2f} s (worker start-up included)")
    print(f"  n_jobs=-1 (processes), warm:    {warm:.2f} s")
    best = min(threads, threads2, warm)
    print(f"best {best:.2f} s (target <= 6 s); {resamples / best / 1e6:.2f} M resamples/s end to end")


if __name__ == "__main__":
    main()
