"""The failure ledger: every dataset, method and reason that did not give a usable result."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from simulation.infra.storage import read_provenance
from simulation.models.scenarios import load_study
from simulation.study.columns import FAILURES, names
from simulation.study.runner import run_all_ci_scenarios

SMOKE = load_study("smoke")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ledger") / "r"
    result = run_all_ci_scenarios(SMOKE, n_reps=120, n_boot=40, seed=1, n_jobs=1, out=out, keep_replicates=True,
                                  statistics="spearman,kendall_b")  # fmt: skip
    return result, out


def test_the_ledger_is_the_replicates_that_failed_or_left_the_range(run):
    """Written out from replicates.parquet: every interval whose status is not ok is in the ledger with that
    status as its reason, every ok interval outside [-1, 1] as out_of_range, and nothing else (bootstrap
    phase; no estimate was undefined in this run)."""
    result, _ = run
    reps = result.replicates
    boot = reps[reps["method"].isin(["percentile", "basic", "bca", "normal", "studentized"])]
    failed = boot[boot["status"] != "ok"].assign(reason=lambda t: t["status"])
    outside = boot[(boot["status"] == "ok") & ((boot["ci_lower"] < -1) | (boot["ci_upper"] > 1))].assign(
        reason="out_of_range")  # fmt: skip
    expected = pd.concat([failed, outside])[["scenario", "statistic", "method", "rep", "reason"]]
    ledger = result.failures[result.failures["phase"] == "bootstrap"]
    assert (ledger["method"] != "estimate").all() and len(ledger) > 0
    key = ["scenario", "statistic", "method", "replicate", "reason"]
    got = ledger[key].sort_values(key).reset_index(drop=True)
    want = expected.rename(columns={"rep": "replicate"})[key].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert set(result.failures["reason"]) >= {"out_of_range"}


def test_the_ledger_agrees_with_the_tables_counts(run):
    result, _ = run
    cov, f = result.coverage.set_index(["scenario", "statistic", "method"]), result.failures
    out = f[f["reason"] == "out_of_range"].groupby(["scenario", "statistic", "method"]).size()
    table = cov["n_out_of_range"][cov["n_out_of_range"] > 0]
    assert out.sort_index().to_dict() == table.sort_index().to_dict()
    usable = ~f["reason"].isin(["out_of_range", "resamples_dropped"]) & (f["method"] != "estimate")
    failed = f[usable].groupby(["scenario", "statistic", "method"])["replicate"].nunique()
    table = cov["n_failed"][cov["n_failed"] > 0]
    assert failed.sort_index().to_dict() == table.sort_index().to_dict()


def test_failures_parquet_and_the_reports_rates(run):
    result, out = run
    table = pd.read_parquet(out / "failures.parquet")
    assert list(table.columns) == list(names(FAILURES))
    pd.testing.assert_frame_equal(table, result.failures)
    report = read_provenance(out / "failures.parquet")["ademp"]["failures"]
    rates = result.failures.groupby(["scenario", "statistic", "method"])["replicate"].nunique() / 120
    above = sorted(k for k, v in rates.items() if v > 0.01)
    assert sorted(tuple(c[:3]) for c in report["cells_above_rate"]) == above
    assert dict(report["by_reason"]) == result.failures["reason"].value_counts().to_dict()
    assert np.isclose(report["flag_rate"], 0.01)


def test_the_ledger_holds_only_the_methods_the_run_asked_for(tmp_path):
    """--methods percentile,fisher_z_fieller: the ledger (and the report's rates) list no other method."""
    result = run_all_ci_scenarios(SMOKE[:4], n_reps=60, n_boot=30, seed=2, n_jobs=1, out=tmp_path / "r",
                                  methods=["basic", "fisher_z_fieller"])  # fmt: skip
    assert set(result.failures["method"]) <= {"basic", "fisher_z_fieller", "estimate"}
    assert (result.failures["method"] == "basic").any()  # basic intervals leave [-1, 1] at n = 12-20
    cells = result.provenance["ademp"]["failures"]["cells_above_rate"]
    assert {c[2] for c in cells} <= {"basic", "fisher_z_fieller"}


def _pearson(x, y, axis=-1):
    xc, yc = x - x.mean(axis=axis, keepdims=True), y - y.mean(axis=axis, keepdims=True)
    return (xc * yc).sum(axis=axis) / np.sqrt((xc * xc).sum(axis=axis) * (yc * yc).sum(axis=axis))


def _bad(y, axis=-1):
    """Whether a dataset holds a value the statistics below refuse: a y above 1.9 (true of a resample only
    where it is of its dataset, so a dataset fails or not as a whole)."""
    return (y > 1.9).any(axis=axis)


def _raising(x, y, axis=-1):
    if _bad(y, axis).any():
        raise ZeroDivisionError("a value this statistic cannot take")
    return _pearson(x, y, axis)


def _nan_instead(x, y, axis=-1):
    return np.where(_bad(y, axis), np.nan, _pearson(x, y, axis))


def test_a_user_statistic_that_raises_is_a_dataset_in_the_ledger_and_the_run_goes_on(tmp_path):
    """A user statistic that raises on some datasets: the run finishes, each such dataset is one ledger entry
    ``statistic_raised`` (method ``estimate``) in both phases, and every number equals a run of the same
    statistic returning NaN on those datasets instead (whose entries read ``nan_estimate``): the datasets that
    raised are exactly the ones without an estimate, and the others' values are the batch's, bit for bit."""
    from simulation.statistics.statistic import Statistic
    from simulation.study.replay import replay

    study = tmp_path / "study.csv"
    study.write_text("case,generator,n,k,template,counts,rho\nt,bivariate_normal,15,,all_distinct,,0.5\n")
    (scenario,) = load_study(study)
    runs = {}
    for name, func in (("p_raises", _raising), ("p_nan", _nan_instead)):
        stat = Statistic.from_callable(func, name=name, truth=lambda s: s.rho)
        with pytest.warns(UserWarning, match="slower per resample"):
            runs[name] = run_all_ci_scenarios([scenario], n_reps=60, n_boot=30, seed=5, n_jobs=1, statistics=[stat],
                                              n_reps_cheap=400, keep_replicates=True, out=tmp_path / name,
                                              truth_mcse=0.01)  # fmt: skip
    raised, nan = runs["p_raises"], runs["p_nan"]
    ledger = raised.failures[raised.failures["reason"] == "statistic_raised"]
    assert set(ledger["phase"]) == {"bootstrap", "cheap"} and (ledger["method"] == "estimate").all()
    assert 5 <= (ledger["phase"] == "bootstrap").sum() <= 40  # P(max of 15 normals > 1.9) = 0.36
    other = nan.failures.assign(reason=nan.failures["reason"].replace("nan_estimate", "statistic_raised"))
    pd.testing.assert_frame_equal(raised.failures.drop(columns="statistic"), other.drop(columns="statistic"))
    threw = (raised.replicates["status"] == "statistic_raised").to_numpy()
    assert threw.any() and (nan.replicates["status"][threw] == "nan_estimate").all()
    # the datasets that raised have no resamples (n_boot_valid 0, no BCa constants); every other value is equal
    same = ["scenario", "rep", "method", "rho_hat", "ci_lower", "ci_upper"]
    pd.testing.assert_frame_equal(raised.replicates[same], nan.replicates[same])
    pd.testing.assert_frame_equal(raised.replicates[~threw].drop(columns="statistic"),
                                  nan.replicates[~threw].drop(columns="statistic"))  # fmt: skip
    # replay shows the exception of a dataset that raised
    rep = int(ledger[ledger["phase"] == "bootstrap"]["replicate"].iloc[0])
    again = replay(tmp_path / "p_raises", scenario.key, rep, statistic="p_raises", study=study)
    assert again.error == "ZeroDivisionError: a value this statistic cannot take"
    assert (again.intervals["status"] == "statistic_raised").all() and (again.data["y"] > 1.9).any()
    fine = int(raised.replicates.loc[~threw, "rep"].iloc[0])
    assert replay(tmp_path / "p_raises", scenario.key, fine, statistic="p_raises", study=study).error is None
    skip = ["statistic", "statistic_label"]
    pd.testing.assert_frame_equal(raised.coverage.drop(columns=skip, errors="ignore"),
                                  nan.coverage.drop(columns=skip, errors="ignore"), check_exact=True)  # fmt: skip


def test_a_cheap_unit_computed_in_groups_of_blocks_gives_the_same_tables(tmp_path, monkeypatch):
    """A cheap unit's blocks are drawn and computed a group at a time (CHEAP_GROUP_BYTES), so that a worker's
    memory grows like n and not like the unit's 20,000 datasets times n; every dataset's values depend on its
    block's stream alone, so one block per group gives the tables of one group per unit, bit for bit, for
    every statistic, and for a user's statistic that raises on some datasets the same ledger."""
    from simulation.statistics.statistic import Statistic
    from simulation.study import blocks

    study = tmp_path / "study.csv"
    study.write_text("case,generator,n,k,template,counts,rho\nt,bivariate_normal,15,,all_distinct,,0.5\n")
    (untied,) = load_study(study)
    raising = Statistic.from_callable(_raising, name="p_raises_grouped", truth=lambda s: s.rho)
    runs = []
    for group_bytes in (blocks.CHEAP_GROUP_BYTES, 1):
        monkeypatch.setattr(blocks, "CHEAP_GROUP_BYTES", group_bytes)
        assert len(blocks.cheap_groups([(500, None)] * 3, 80)) == (1 if group_bytes > 1 else 3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the slow path's timing, once per process
            runs.append([
                run_all_ci_scenarios([SMOKE[0], SMOKE[4]], n_reps=20, n_boot=30, n_jobs=1, n_reps_cheap=1500,
                                     statistics=("spearman", "kendall_b", "pearson"), truth_mcse=0.01),
                run_all_ci_scenarios([untied], n_reps=20, n_boot=30, seed=5, n_jobs=1, statistics=[raising],
                                     n_reps_cheap=1500, truth_mcse=0.01),
            ])  # fmt: skip
    for whole, grouped in zip(*runs, strict=True):
        pd.testing.assert_frame_equal(whole.coverage, grouped.coverage, check_exact=True)
        pd.testing.assert_frame_equal(whole.failures, grouped.failures, check_exact=True)
    assert (runs[1][1].failures["reason"] == "statistic_raised").any()
