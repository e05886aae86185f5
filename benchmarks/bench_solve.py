"""Wall time of one solve for n (power 0.8 of Spearman's permutation test at a tied design, n in 20-400)
against a brute-force grid of the same precision, side by side in one run.

The design: rank mixing, x in 5 even groups, rho_s = 0.3.  The solve runs with its defaults
(:func:`simulation.power.solve.solve_n`, confirmation included).  The grid evaluates the power at every
n of the range with as many datasets as the solve's last refining round (3,200: power MCSE about 0.007 at
0.8), and reads the answer as the first n whose power reaches the target.  The script prints both wall
times, both answers and their ratio.  Goal: the solve at most 60 s on 2 cores.

Run: ``python benchmarks/bench_solve.py`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import time

from simulation.models.scenarios import Scenario
from simulation.power.curves import PowerSettings, power_curve
from simulation.power.solve import design_at, solve_n

DESIGN = Scenario("plan", "rank_mixing", 80, k=5, template="even", rho=0.3)
LO, HI, TARGET, GRID_REPS = 20, 400, 0.8, 3200


def main() -> None:
    solve_n(DESIGN, test="t_approx", n_range=(LO, HI), reps=50, confirm_reps=50)  # compile and warm up
    t0 = time.perf_counter()
    result = solve_n(DESIGN, target_power=TARGET, test="permutation", n_range=(LO, HI), seed=1)
    solve_wall = time.perf_counter() - t0
    datasets = int(result.evaluations["reps"].sum())
    print(f"solve: n = {result.answer} (root {result.root:.1f}, 95% interval {result.root_lower:.1f}-"
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
    print(f"grid: first n with power >= {TARGET} is {answer}, {evaluated} values of n x {GRID_REPS} datasets, "
          f"{grid_wall:.1f} s (stopped at the answer; the whole range would take about "
          f"{grid_wall * (HI - LO + 1) / evaluated:.0f} s)")  # fmt: skip
    print(f"grid / solve wall time: {grid_wall / solve_wall:.1f} (stopped grid), "
          f"{grid_wall * (HI - LO + 1) / evaluated / solve_wall:.0f} (whole range)")


if __name__ == "__main__":
    main()
