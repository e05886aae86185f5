"""Dask backend: a LocalCluster on loopback gives the tables of a local run, bit for bit."""

from __future__ import annotations

import pandas as pd
import pytest

from simulation.models.scenarios import load_study
from simulation.power.curves import PowerSettings, run_power_study
from simulation.study.runner import BLOCK_REPS, RunError, run_all_ci_scenarios

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
    settings = PowerSettings(n_reps=100, grid=(0.0, 0.3), n_perm=999, seed=4)
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
    from simulation.infra import parallel

    monkeypatch.setattr(parallel, "SCHEDULER_TIMEOUT_S", 1)
    with pytest.raises(RunError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        run_all_ci_scenarios(SMOKE[:1], n_reps=5, n_boot=10, n_jobs=1, backend="dask", scheduler="tcp://127.0.0.1:9")


def test_workers_with_other_versions_are_refused(scheduler, monkeypatch, tmp_path):
    """The client pretends its source differs; the workers (other processes) report the real digest."""
    from simulation.infra import parallel

    monkeypatch.setattr(parallel, "_source_digest", lambda: "000000000000")
    out = tmp_path / "r"
    with pytest.raises(RunError, match=r"Dask workers differ from this client.*simulation source [0-9a-f]{12} "
                       r"\(client 000000000000\)"):  # fmt: skip
        run_all_ci_scenarios(SMOKE[:1], n_reps=5, n_boot=10, backend="dask", scheduler=scheduler, out=out)
    assert not (out / "coverage.parquet").exists()


def test_check_workers_names_each_mismatch():
    from simulation.infra.parallel import check_workers, environment_fingerprint

    local = environment_fingerprint()
    assert set(local) == {"numpy", "numba", "scipy", "simulation", "simulation source"}
    check_workers({"tcp://a:1": dict(local)}, local)  # identical: accepted
    other = dict(local, numpy="1.0.0")
    with pytest.raises(RunError, match=rf"tcp://b:2: numpy 1.0.0 \(client {local['numpy']}\)"):
        check_workers({"tcp://a:1": dict(local), "tcp://b:2": other}, local)
    with pytest.raises(RunError, match=r"tcp://c:3: cannot report its versions \(ModuleNotFoundError"):
        check_workers({"tcp://c:3": ModuleNotFoundError("No module named 'simulation'")}, local)


def test_pearson_on_dask_equals_local(scheduler, tmp_path):
    """Pearson's r travels to the workers as a pickled Statistic (its numba functions included)."""
    scenarios = [SMOKE[0], SMOKE[8]]
    opts = {"n_reps": 40, "n_boot": 50, "seed": 5, "statistics": "spearman,pearson"}
    local = run_all_ci_scenarios(scenarios, n_jobs=1, **opts)
    remote = run_all_ci_scenarios(scenarios, backend="dask", scheduler=scheduler, out=tmp_path / "r", **opts)
    pd.testing.assert_frame_equal(local.coverage, remote.coverage, check_exact=True)


def test_workers_that_cannot_import_a_user_statistic_are_refused(scheduler, tmp_path, monkeypatch):
    """A module only the client can import (written after the workers started, on the client's path):
    refused at connection, naming each worker and the module; nothing written."""
    (tmp_path / "only_here_stats.py").write_text(
        "from numba import njit\n"
        "from simulation.statistics.pearson import pearson_r\n"
        "@njit(cache=False)\n"
        "def my_r(x, y, counts):\n"
        "    return pearson_r(x, y, counts)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "r"
    with pytest.raises(RunError, match=r"Dask workers cannot import the statistic's code.*tcp://127\.0\.0\.1:\d+: "
                                       r"cannot import only_here_stats \(ModuleNotFoundError"):  # fmt: skip
        run_all_ci_scenarios(SMOKE[:1], n_reps=5, n_boot=10, backend="dask", scheduler=scheduler, out=out,
                             statistics="only_here_stats:my_r")  # fmt: skip
    assert not (out / "coverage.parquet").exists()


def test_a_target_run_on_dask_equals_local(scheduler, tmp_path):
    """The allocation is computed from the tables alone (a fixed cost ratio, no timing): the same on Dask."""
    opts = {"n_reps": 60, "n_boot": 40, "seed": 2, "targets": {"endpoints": 0.01}, "max_reps": 600}
    local = run_all_ci_scenarios(SMOKE[:2], n_jobs=1, **opts)
    remote = run_all_ci_scenarios(SMOKE[:2], backend="dask", scheduler=scheduler, out=tmp_path / "r", **opts)
    pd.testing.assert_frame_equal(local.coverage, remote.coverage, check_exact=True)
    allocation = local.provenance["settings"]["allocation"]
    assert allocation == remote.provenance["settings"]["allocation"]
    assert max(m for m, _ in allocation.values()) > 60  # it grew


def test_a_worker_killed_mid_run_loses_nothing(scheduler, tmp_path):
    """A Dask worker killed (SIGKILL) while the run is under way: its blocks are computed again elsewhere
    (the scheduler reschedules them; the nanny restarts the worker) and the table equals a local run's bit
    for bit."""
    import os
    import signal
    import threading
    import time

    scenarios = SMOKE[:3]
    opts = {"n_reps": 4 * BLOCK_REPS, "n_boot": 400, "seed": 9}
    local = run_all_ci_scenarios(scenarios, n_jobs=1, **opts)
    out = tmp_path / "r"
    killed = []

    def kill_one_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any((out / "blocks").rglob("b*.parquet")):
            time.sleep(0.05)
        with distributed.Client(scheduler, timeout=30) as client:
            pids = client.run(os.getpid)
        os.kill(sorted(pids.values())[0], signal.SIGKILL)
        killed.append(len(list((out / "blocks").rglob("*.parquet"))))

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    remote = run_all_ci_scenarios(scenarios, backend="dask", scheduler=scheduler, out=out, **opts)
    killer.join()
    assert killed, "no worker was killed"
    assert killed[0] < len(list((out / "blocks").rglob("*.parquet"))), "the run had finished before the kill"
    pd.testing.assert_frame_equal(local.coverage, remote.coverage, check_exact=True)


def test_a_worker_with_another_copy_of_a_users_statistic_is_refused(scheduler, tmp_path, monkeypatch):
    """The client imports `twin_stats` from one folder, the workers from another whose function differs
    (it returns -r). A Python function travels by reference (each worker would run its own copy): every
    worker is refused by name, since the table records the client's digest; nothing is written. A numba
    function travels by value (the workers run the client's code): accepted, and the numbers are the local
    run's."""
    import sys

    source = ("import numpy as np\nfrom numba import njit\nfrom simulation.statistics.pearson import pearson_r\n"
              "@njit(cache=False)\ndef twin_numba(x, y, counts):\n    return {sign}pearson_r(x, y, counts)\n"
              "def twin_py(x, y, axis=-1):\n    xm = x - x.mean(axis=axis, keepdims=True)\n"
              "    ym = y - y.mean(axis=axis, keepdims=True)\n"
              "    return {sign}(xm * ym).sum(axis) / np.sqrt((xm * xm).sum(axis) * (ym * ym).sum(axis))\n"
              )  # fmt: skip
    client_dir, worker_dir = tmp_path / "client", tmp_path / "worker"
    client_dir.mkdir()
    worker_dir.mkdir()
    (client_dir / "twin_stats.py").write_text(source.format(sign=""))
    (worker_dir / "twin_stats.py").write_text(source.format(sign="-"))
    monkeypatch.syspath_prepend(str(client_dir))

    def add_path(path):
        sys.path.insert(0, path)

    def drop(path):
        sys.path.remove(path)
        sys.modules.pop("twin_stats", None)

    opts = {"n_reps": 5, "n_boot": 10, "seed": 3}
    with distributed.Client(scheduler) as client:
        client.run(add_path, str(worker_dir))
        try:
            out = tmp_path / "r"
            refused = r"Dask workers would compute with other code .*tcp://127\.0\.0\.1:\d+: twin_py's func has source"
            with pytest.raises(RunError, match=refused), pytest.warns(UserWarning, match="slower"):
                run_all_ci_scenarios(SMOKE[:1], backend="dask", scheduler=scheduler, out=out,
                                     statistics="twin_stats:twin_py", **opts)  # fmt: skip
            assert not (out / "coverage.parquet").exists()
            remote = run_all_ci_scenarios(SMOKE[:1], backend="dask", scheduler=scheduler,
                                          statistics="twin_stats:twin_numba", **opts)  # fmt: skip
            local = run_all_ci_scenarios(SMOKE[:1], n_jobs=1, statistics="twin_stats:twin_numba", **opts)
            pd.testing.assert_frame_equal(local.coverage, remote.coverage, check_exact=True)
        finally:
            client.run(drop, str(worker_dir))
    sys.modules.pop("twin_stats", None)
