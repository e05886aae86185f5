"""Wall time of a solve for n against a brute-force grid of the same precision, side by side in one run,
for each kind of target: the power of a test, the mean width of an interval, and an interval's coverage.

- **power**: Spearman's permutation test, power 0.8, rank mixing with x in 5 even groups, rho_s = 0.3,
  n in 20-400 (:func:`simulation.power.solve.solve_n` with its defaults, confirmation included).  The grid
  evaluates the power at every n from the range's start with as many datasets as the solve's last refining
  round (3,200: power MCSE about 0.007 at 0.8) and stops at the first n whose power reaches the target.
- **width**: Spearman's percentile interval, mean width 0.35, the same design, n in 20-400
  (:func:`simulation.power.solve.solve_interval_n`, 1,000 resamples, confirmation included).
- **coverage**: Spearman's basic interval at x in 4 groups (heavy centre), rho_s = -0.2, the n at which its
  coverage reaches Bradley's band (0.925), n in 10-400.

For the interval targets a grid point is a coverage study of 1,600 bootstrapped datasets (the solve's last
round); walking the grid to the answer would take hours, so the grid's time is the sum over its n of the
time of one point, measured at six n spread over the range and interpolated linearly in n (the cost of a
point grows about linearly in n).  The script prints each wall time, both answers where the grid is walked,
and the ratio grid / solve.  Goal: a power solve at most 60 s on 2 cores.

Run: ``python benchmarks/bench_solve.py`` (about 6 minutes on 2 cores), or ``--target power|width|coverage``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from simulation.models.scenarios import Scenario
from simulation.power.curves import PowerSettings, power_curve
from simulation.power.solve import ROUNDS, design_at, solve_interval_n, solve_n
from simulation.study.runner import run_all_ci_scenarios

DESIGN = Scenario("plan", "rank_mixing", 80, k=5, template="even", rho=0.3)
TIED_COVERAGE = Scenario("plan", "rank_mixing", 80, k=4, template="heavy_center", rho=-0.2)
LO, HI, TARGET, GRID_REPS = 20, 400, 0.8, 3200
INTERVAL_REPS, N_BOOT, WIDTH = 200, 1000, 0.35
N_JOBS = min(2, os.cpu_count() or 1)


def power() -> None:
    solve_n(DESIGN, test="t_approx", n_range=(LO, HI), reps=50, confirm_reps=50)  # compile and warm up
    t0 = time.perf_counter()
    result = solve_n(DESIGN, target_power=TARGET, test="permutation", n_range=(LO, HI), seed=1)
    solve_wall = time.perf_counter() - t0
    datasets = int(result.evaluations["reps"].sum())
    print(f"power solve: n = {result.answer} (root {result.root:.1f}, 95% interval {result.root_lower:.1f}-"
          f"{result.root_upper:.1f}), {datasets} datasets, {solve_wall:.1f} s (goal <= 60 s)")  # fmt: skip
    t0 = time.perf_counter()
    answer = None
    for n in range(LO, HI + 1):
        settings = PowerSettings(n_reps=GRID_REPS, grid=(0.0, DESIGN.rho), direction="positive", seed=7 + n)
        curve = power_curve(design_at(DESIGN, n), settings, "spearman")
        if float(curve[curve["test"] == "permutation"]["power"].iloc[-1]) >= TARGET:
            answer = n
            break
    grid_wall = time.perf_counter() - t0
    evaluated = (answer or HI) - LO + 1
    print(f"power grid: first n with power >= {TARGET} is {answer}, {evaluated} values of n x {GRID_REPS} "
          f"datasets, {grid_wall:.1f} s (stopped at the answer; the whole range would take about "
          f"{grid_wall * (HI - LO + 1) / evaluated:.0f} s)")  # fmt: skip
    print(f"power: grid / solve wall time {grid_wall / solve_wall:.1f} (stopped grid), "
          f"{grid_wall * (HI - LO + 1) / evaluated / solve_wall:.0f} (whole range)")


def _interval(name: str, design: Scenario, lo: int, method: str, **target) -> None:
    solve_interval_n(design, method=method, n_range=(lo, HI), reps=50, n_boot=100, confirm_reps=50,
                     n_jobs=N_JOBS, **target)  # compile and warm up  # fmt: skip
    t0 = time.perf_counter()
    result = solve_interval_n(design, method=method, n_range=(lo, HI), reps=INTERVAL_REPS, n_boot=N_BOOT, seed=1,
                              n_jobs=N_JOBS, **target)  # fmt: skip
    solve_wall = time.perf_counter() - t0
    datasets = int(result.evaluations["reps"].sum())
    print(f"{name} solve: n = {result.answer} (root {result.root:.1f}, 95% interval {result.root_lower:.1f}-"
          f"{result.root_upper:.1f}), {datasets} bootstrapped datasets, {solve_wall:.1f} s")  # fmt: skip
    grid_reps = INTERVAL_REPS * 2**ROUNDS
    points = np.unique(np.round(np.linspace(lo, HI, 6)).astype(int))
    seconds = []
    for i, n in enumerate(points):
        t0 = time.perf_counter()
        run_all_ci_scenarios([design_at(design, int(n))], n_reps=grid_reps, n_boot=N_BOOT, methods=[method],
                             seed=100 + i, n_jobs=N_JOBS)  # fmt: skip
        seconds.append(time.perf_counter() - t0)
    per_n = np.interp(np.arange(lo, HI + 1), points, seconds)
    to_answer = float(per_n[: result.answer - lo + 1].sum())
    whole = float(per_n.sum())
    print(f"{name} grid: one point of {grid_reps} datasets takes "
          + ", ".join(f"{s:.1f} s at n = {n}" for n, s in zip(points, seconds, strict=True))
          + f"; walking n = {lo}-{result.answer} would take about {to_answer:.0f} s, the whole range "
          f"{whole:.0f} s")  # fmt: skip
    print(f"{name}: grid / solve wall time {to_answer / solve_wall:.0f} (grid to the answer), "
          f"{whole / solve_wall:.0f} (whole range)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=("power", "width", "coverage", "all"), default="all")
    target = parser.parse_args().target
    if target in ("power", "all"):
        power()
    if target in ("width", "all"):
        _interval("width", DESIGN, LO, "percentile", width=WIDTH)
    if target in ("coverage", "all"):
        _interval("coverage", TIED_COVERAGE, 10, "basic", coverage=True)


if __name__ == "__main__":
    main()
