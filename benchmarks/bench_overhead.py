"""Where a default run's time goes: inside the two phases' units of work, and everything else.

Goal (issue 20): everything else (calibrations and truths, table assembly,
provenance, writing) at most 10 ms per scenario on the default study at its
default settings (200 x 1,000, all methods), on a second run whose
calibrations are in the user cache (:mod:`simulation.infra.cache`).  The script
runs the default study three times into fresh folders, side by side in one
process: a warm-up (compilation, worker start, and it fills a temporary
cache), a cold run (cache emptied) and a cached run; the time inside the
units is measured around :func:`simulation.study.runner._compute_units`.

Run: ``python benchmarks/bench_overhead.py`` (about 1 minute on 2 cores).
"""

from __future__ import annotations

import os
import tempfile
import time

from simulation.infra import cache
from simulation.models.scenarios import load_study
from simulation.study import runner


def main() -> None:
    study = load_study("karwowski2018")
    inside = []
    original = runner._compute_units

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            inside.append(time.perf_counter() - t0)

    runner._compute_units = timed
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[cache.ENV] = f"{tmp}/cache"
        for label in ("warm-up", "cold (no cache)", "cached"):
            if label == "cold (no cache)":
                cache.clear()
            inside.clear()
            t0 = time.perf_counter()
            runner.run_all_ci_scenarios(study, n_reps=200, n_boot=1000, out=f"{tmp}/{label[:4]}")
            total = time.perf_counter() - t0
            units = sum(inside)
            rest = total - units
            print(f"{label:16s} total {total:6.2f} s | units of work {units:6.2f} s | everything else {rest:5.2f} s "
                  f"= {1e3 * rest / len(study):5.1f} ms per scenario (goal <= 10 ms, cached run)")


if __name__ == "__main__":
    main()
