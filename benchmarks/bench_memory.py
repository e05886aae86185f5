"""Peak memory of the steps that hold many datasets at once, against n.

Each measurement runs in a fresh process (with the calibration cache off), which prints its peak resident
memory before and after the step: a tied scenario's calibration (``DEFAULT_N_CAL`` datasets), a measured
truth (``TRUTH_BATCH`` datasets; Pearson's r on tied x) and a run's cheap phase (Kendall's tau-b, untied
x: one unit of 20,000 datasets, computed in groups of blocks).  The script prints the datasets held at once,
the growth and the bytes per pair held, which the runner's and ``analyze``'s memory estimates use
(``CALIBRATION_BYTES_PER_OBSERVATION``, ``TRUTH_BYTES_PER_OBSERVATION``, ``CHEAP_BYTES_PER_OBSERVATION``).

Run: ``python benchmarks/bench_memory.py [--sizes 1000 4000] [--steps calibration truth cheap]`` (about
three minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from simulation.models.generators import DEFAULT_N_CAL, draws_at
from simulation.statistics.custom import TRUTH_BATCH
from simulation.study.blocks import BLOCK_REPS, CHEAP_UNIT_BLOCKS, cheap_groups

STEP = r"""
import json, resource, sys, time
from simulation import Scenario
from simulation.statistics.statistic import get_statistic
from simulation.models.generators import Calibration, Truth
from simulation.study.blocks import UnitContext, run_cheap_unit

step, n = sys.argv[1], int(sys.argv[2])
if step == "cheap":  # untied x: no calibration
    scenario = Scenario(case="memory", generator="bivariate_normal", n=n, rho=0.3, template="all_distinct")
else:
    scenario = Scenario(case="memory", generator="rank_mixing", n=n, rho=0.3, template="even", k=4)
calibration = None if step != "truth" else scenario.calibration()
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0
before, started = peak(), time.perf_counter()
if step == "calibration":
    scenario.calibration()
elif step == "truth":
    get_statistic("pearson").truth(scenario, 0.01, calibration=calibration)
else:  # one cheap unit of 20,000 datasets, as a worker computes it
    run_cheap_unit(scenario, 0, 20_000, UnitContext(20, 0.95, 0, Calibration(0.0, 0.0, 0.0),
                                                   Truth(0.2, 0.0, 0), statistic="kendall_b"))
print(json.dumps({"before": before, "after": peak(), "seconds": time.perf_counter() - started}))
"""
#: Datasets each step holds at once (as many pairs as at n = 2,000 above it: :func:`draws_at`; the cheap
#: phase: its group of blocks, :func:`cheap_groups`).
HELD = {"calibration": lambda n: draws_at(DEFAULT_N_CAL, n), "truth": lambda n: draws_at(TRUTH_BATCH, n),
        "cheap": lambda n: sum(size for size, _ in cheap_groups([(BLOCK_REPS, None)] * CHEAP_UNIT_BLOCKS, n)[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 4_000])
    parser.add_argument("--steps", nargs="+", choices=list(HELD), default=list(HELD))
    args = parser.parse_args()
    env = dict(os.environ, SPEARMAN_SIM_CACHE="off", SIMULATION_CONFIG="off")
    print(f"{'step':<12} {'n':>7} {'held':>7} {'growth':>10} {'bytes/pair':>11} {'seconds':>8}")
    for step in args.steps:
        for n in args.sizes:
            done = subprocess.run([sys.executable, "-c", STEP, step, str(n)], capture_output=True, text=True,
                                  env=env, check=True)  # fmt: skip
            m = json.loads(done.stdout.strip().splitlines()[-1])
            grown = m["after"] - m["before"]
            held = HELD[step](n)
            print(f"{step:<12} {n:>7} {held:>7} {grown / 2**20:8.0f} MB {grown / (held * n):11.1f} {m['seconds']:8.1f}")


if __name__ == "__main__":
    main()
