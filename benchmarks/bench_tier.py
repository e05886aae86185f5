"""The ±0.001 precision tier (129,700 datasets x 500 resamples for each of 88 scenarios), extrapolated.

A full run is 5.7 billion Spearman resamples; this script measures a
representative fraction instead and extrapolates linearly, and says so: one
scenario per case (k = 7, heavy_center: the study's most plausible shape)
x 10,000 datasets x 500 resamples, written to a temporary results folder as
a real run would, with the default worker processes.  Compilation and worker
start-up are excluded (a small warm-up run first).  Also reports throughput
in resamples per second per core and the peak resident memory of the parent
and of the workers.  Target for the full tier: <= 30 minutes on 2 cores.

Run: ``python benchmarks/bench_tier.py``
"""

from __future__ import annotations

import os
import resource
import tempfile
import time

from simulation.runner import run_all_ci_scenarios
from simulation.scenarios import load_study

TIER_REPS, TIER_BOOT, N_SCENARIOS = 129_700, 500, 88
SAMPLE_REPS = 10_000


def main() -> None:
    study = load_study("karwowski2018")
    sample = [s for s in study if s.k == 7 and s.template == "heavy_center"]
    with tempfile.TemporaryDirectory() as tmp:
        run_all_ci_scenarios(sample, n_reps=200, n_boot=TIER_BOOT, seed=1, out=f"{tmp}/warm")
        t0 = time.perf_counter()
        run_all_ci_scenarios(sample, n_reps=SAMPLE_REPS, n_boot=TIER_BOOT, seed=2, out=f"{tmp}/tier")
        seconds = time.perf_counter() - t0
    cores = os.cpu_count() or 1
    resamples = len(sample) * SAMPLE_REPS * TIER_BOOT
    rate = resamples / seconds
    full = N_SCENARIOS * TIER_REPS * TIER_BOOT
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"measured: {len(sample)} scenarios x {SAMPLE_REPS} x {TIER_BOOT} = {resamples / 1e6:.1f} M resamples "
          f"in {seconds:.1f} s on {cores} cores")
    print(f"throughput: {rate / 1e6:.2f} M resamples/s, {rate / cores / 1e6:.2f} M resamples/s per core")
    print(f"extrapolated ±0.001 tier ({full / 1e9:.2f} G resamples): {full / rate / 60:.1f} min (target <= 30 min)")
    print(f"peak resident memory: parent {parent:.0f} MiB, largest worker {children:.0f} MiB")


if __name__ == "__main__":
    main()
