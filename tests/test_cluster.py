"""Dask backend: a LocalCluster on loopback gives the tables of a local run, bit for bit."""

from __future__ import annotations

import pandas as pd
import pytest

from simulation.power import PowerSettings, run_power_study
from simulation.runner import BLOCK_REPS, RunError, run_all_ci_scenarios
from simulation.scenarios import load_study

distributed = pytest.importorskip("dask.distributed")

SMOKE = load_study("smoke")


@pytest.fixture(scope="module")
def scheduler():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True
    ) as cluster:
        yield cluster.scheduler_address


def test_dask_run_equals_local_run(scheduler, tmp_path):
    scenarios = [SMOKE[0], SMOKE[4], SMOKE[8]]
    opts = {"n_reps": BLOCK_REPS + 30, "n_boot": 60, "seed": 11}
    local = run_all_ci_scenarios(scenarios, n_jobs=1, **opts)
    remote = run_all_ci_scenarios(scenarios, backend="dask", scheduler=scheduler, out=tmp_path / "r", **opts)
    pd.testing.assert_frame_equal(local.coverage, remote.coverage, check_exact=True)
    settings = PowerSettings(n_sims=100, grid=(0.0, 0.3), n_perm=999, seed=4)
    p_local = run_power_study(scenarios, settings, n_jobs=1)
    p_remote = run_power_study(scenarios, settings, backend="dask", scheduler=scheduler)
    pd.testing.assert_frame_equal(p_local.power, p_remote.power, check_exact=True)


def test_backend_errors():
    with pytest.raises(RunError, match="needs a scheduler address"):
        run_all_ci_scenarios(SMOKE[:1], n_reps=5, n_boot=10, backend="dask")
    with pytest.raises(RunError, match="`backend` must be one of"):
        run_all_ci_scenarios(SMOKE[:1], n_reps=5, n_boot=10, backend="ray")
    with pytest.raises(RunError, match="--scheduler applies only with --backend dask"):
        run_all_ci_scenarios(SMOKE[:1], n_reps=5, n_boot=10, scheduler="tcp://127.0.0.1:1")


def test_unreachable_scheduler_is_a_clear_error(monkeypatch):
    from simulation import parallel

    monkeypatch.setattr(parallel, "SCHEDULER_TIMEOUT_S", 1)
    with pytest.raises(RunError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        run_all_ci_scenarios(SMOKE[:1], n_reps=5, n_boot=10, n_jobs=1, backend="dask", scheduler="tcp://127.0.0.1:9")
