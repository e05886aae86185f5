"""replay: one dataset of a finished run, regenerated and recomputed bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simulation.cli.parser import main
from simulation.models.scenarios import load_study
from simulation.study.blocks import BLOCK_REPS
from simulation.study.replay import replay
from simulation.study.runner import RunError, run_all_ci_scenarios

SMOKE = load_study("smoke")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run across two blocks with its replicates kept (the reference), Spearman and Kendall."""
    out = tmp_path_factory.mktemp("replay") / "r"
    run_all_ci_scenarios(SMOKE[:2], n_reps=BLOCK_REPS + 20, n_boot=40, seed=4, n_jobs=1, out=out,
                         keep_replicates=True, statistics="spearman,kendall_b", study="smoke")  # fmt: skip
    return out, pd.read_parquet(out / "replicates.parquet")


@pytest.mark.parametrize(("which", "rep", "statistic"), [(0, 3, None), (1, BLOCK_REPS + 11, "kendall_b")])
def test_a_replayed_dataset_has_the_runs_estimate_and_intervals_bit_for_bit(run, which, rep, statistic):
    out, replicates = run
    key = SMOKE[which].key
    result = replay(out, key, rep, statistic=statistic)
    expected = replicates[(replicates["scenario"] == key) & (replicates["rep"] == rep)
                          & (replicates["statistic"] == (statistic or "spearman"))].reset_index(drop=True)  # fmt: skip
    pd.testing.assert_frame_equal(result.intervals, expected, check_exact=True)
    # the data are the dataset those intervals were computed on: its statistic is the replicates' estimate
    x, y = result.data["x"].to_numpy(), result.data["y"].to_numpy()
    scipy_stat = stats.spearmanr if statistic is None else stats.kendalltau
    np.testing.assert_allclose(scipy_stat(x, y).statistic, expected["rho_hat"].iloc[0], rtol=0, atol=1e-12)
    assert len(x) == SMOKE[which].n


def test_replay_refuses_what_the_run_does_not_hold(run):
    out, _ = run
    with pytest.raises(RunError, match=r"`replicate` must be an integer in \[0, 520\)"):
        replay(out, SMOKE[0].key, 520)
    with pytest.raises(RunError, match=r"`statistic` must be one of the run's \['spearman', 'kendall_b'\]"):
        replay(out, SMOKE[0].key, 0, statistic="pearson")
    with pytest.raises(RunError, match=r"`scenario` must be one of the study's 9 scenario keys"):
        replay(out, "nowhere", 0)


def test_the_replay_command_writes_the_dataset_and_its_intervals(run, tmp_path, capsys):
    out, replicates = run
    key = SMOKE[0].key
    assert main(["replay", str(out), "--scenario", key, "--replicate", "5", "--out", str(tmp_path)]) == 0
    data = pd.read_csv(tmp_path / f"{key}_spearman_5.csv")
    intervals = pd.read_csv(tmp_path / f"{key}_spearman_5_intervals.csv")
    expected = replicates[(replicates["scenario"] == key) & (replicates["rep"] == 5)
                          & (replicates["statistic"] == "spearman")]  # fmt: skip
    np.testing.assert_array_equal(intervals["ci_lower"].to_numpy(), expected["ci_lower"].to_numpy())  # %.17g
    assert list(data.columns) == ["x", "y"] and len(data) == SMOKE[0].n
    capsys.readouterr()
    assert main(["replay", str(out), "--scenario", key, "--replicate", "9999"]) == 2
    assert "`replicate` must be an integer in [0, 520)" in capsys.readouterr().err


def test_replay_needs_a_results_folder_and_a_study_it_can_load(run, tmp_path):
    with pytest.raises(RunError, match=r"is not a results folder of a coverage run"):
        replay(tmp_path, SMOKE[0].key, 0)
    out, _ = run
    with pytest.raises(RunError, match=r"cannot load the run's study 'nowhere\.csv'.*pass the study file"):
        replay(out, SMOKE[0].key, 0, study="nowhere.csv")
    api = tmp_path / "api"  # a Python run that named no study
    run_all_ci_scenarios(SMOKE[:1], n_reps=20, n_boot=30, seed=4, n_jobs=1, out=api)
    with pytest.raises(RunError, match=r"the run's provenance names no study; pass the study file"):
        replay(api, SMOKE[0].key, 0)
    assert replay(api, SMOKE[0].key, 0, study="smoke").replicate == 0
