"""Compile the engine's kernels into numba's on-disk cache before the tests start in several processes.

Each process that calls a kernel first compiles it (a minute and more for all of them on two cores) or,
once one process has written it to the cache, loads it in milliseconds.  Without this step the test
workers, and the commands the documentation tests run, compile the same kernels at the same time.
"""

from __future__ import annotations

import tempfile
import time
import warnings


def compile_kernels() -> float:
    """Run every statistic through both phases of a study, its power curve and its tests on the data, at
    the smallest sizes, in this process; the seconds it took."""
    from simulation.models.scenarios import Scenario
    from simulation.power.curves import PowerSettings, power_curve
    from simulation.study.runner import run_all_ci_scenarios

    started = time.perf_counter()
    tiny = Scenario(case="warmup", generator="rank_mixing", n=12, rho=0.2, template="custom", counts=(3, 3, 3, 3))
    statistics = ("spearman", "kendall_b", "pearson")
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as out:
        warnings.simplefilter("ignore")
        run_all_ci_scenarios([tiny], n_reps=4, n_reps_cheap=40, n_boot=20, n_jobs=1, statistics=statistics,
                             out=out, truth_mcse=0.05)  # fmt: skip
        for statistic in statistics:
            power_curve(tiny, PowerSettings(n_reps=10, grid=(0.0, 0.2), n_perm=20), statistic=statistic)
    return time.perf_counter() - started
