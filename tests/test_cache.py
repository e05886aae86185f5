"""The user cache of calibrations and truths: no run measures them twice; faults fall back to computing."""

from __future__ import annotations

import pandas as pd
import pytest

from simulation.cli.parser import main
from simulation.infra import cache
from simulation.models.scenarios import load_study
from simulation.study import runner
from simulation.study.runner import run_all_ci_scenarios

SMOKE = load_study("smoke")
OPTS = {"n_reps": 30, "n_boot": 30, "seed": 3, "n_jobs": 1}


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """A fresh cache folder, and a count of calibrations computed."""
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    calls = []
    original = runner._calibrate_one

    def counting(*args, **kwargs):
        calls.append(args[0].key)
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "_calibrate_one", counting)
    return calls


def test_a_second_results_folder_reuses_the_calibrations(counted, tmp_path):
    scenarios = SMOKE[:3]
    first = run_all_ci_scenarios(scenarios, out=tmp_path / "a", statistics="spearman,kendall_b", **OPTS)
    assert len(counted) == 6  # 3 scenarios x 2 statistics
    second = run_all_ci_scenarios(scenarios, out=tmp_path / "b", statistics="spearman,kendall_b", **OPTS)
    assert len(counted) == 6  # nothing measured again
    pd.testing.assert_frame_equal(first.coverage, second.coverage, check_exact=True)
    assert (tmp_path / "b" / "calibrations.json").exists()  # the folder still records its own
    # another precision is another entry
    run_all_ci_scenarios(scenarios[:1], truth_mcse=0.001, **OPTS)
    assert len(counted) == 7
    assert cache.info()[1] == 7


def test_a_corrupt_entry_is_warned_about_and_recomputed(counted, tmp_path):
    first = run_all_ci_scenarios(SMOKE[:1], **OPTS)
    (entry,) = (tmp_path / "cache").rglob("*.json")
    entry.write_text("{not json")
    cache._warned.clear()
    with pytest.warns(UserWarning, match="is corrupt"):
        again = run_all_ci_scenarios(SMOKE[:1], **OPTS)
    assert len(counted) == 2
    pd.testing.assert_frame_equal(first.coverage, again.coverage, check_exact=True)


def test_an_unwritable_cache_is_warned_about_and_skipped(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(cache.ENV, str(blocker))
    cache._warned.clear()
    with pytest.warns(UserWarning, match="cannot write the calibration cache"):
        res = run_all_ci_scenarios(SMOKE[:1], **OPTS)
    assert res.coverage["coverage"].notna().any()


def test_off_disables_the_cache(monkeypatch, tmp_path, counted):
    monkeypatch.setenv(cache.ENV, "off")
    run_all_ci_scenarios(SMOKE[:1], **OPTS)
    run_all_ci_scenarios(SMOKE[:1], **OPTS)
    assert len(counted) == 2 and cache.cache_dir() is None


def test_the_cache_command_reports_and_clears(counted, capsys, tmp_path):
    run_all_ci_scenarios(SMOKE[:2], **OPTS)
    assert main(["cache"]) == 0
    assert "2 entries" in capsys.readouterr().out
    assert main(["cache", "--clear"]) == 0
    assert "deleted 2 entries" in capsys.readouterr().out
    assert cache.info()[1] == 0
