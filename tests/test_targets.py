"""Precision targets for any measure (``run --target MEASURE=MCSE``): each scenario's own allocation."""

from __future__ import annotations

import dataclasses
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from simulation import read_provenance
from simulation.cli.parser import main
from simulation.models.scenarios import load_study
from simulation.statistics import spearman
from simulation.study.blocks import BLOCK_REPS, SLICE_REPS, Record, UnitContext, run_boot_block, run_cheap_unit
from simulation.study.runner import (
    SHARE_DECAY,
    TARGET_MARGIN,
    RunError,
    TargetNotMetWarning,
    check_targets,
    run_all_ci_scenarios,
    target_allocation,
    two_phase_allocation,
)

SMOKE = load_study("smoke")
SMALL = [SMOKE[0], SMOKE[4], SMOKE[8]]  # tied rank mixing, tied Gaussian copula, continuous Plackett


def test_check_targets_parses_and_expands():
    assert check_targets(["coverage=0.002", "endpoints=0.001"]) == {
        "mean_ci_lower": 0.001, "mean_ci_upper": 0.001, "coverage": 0.002,
    }  # fmt: skip
    assert check_targets("miss_below=0.01,mean_width=0.003") == {"mean_width": 0.003, "miss_below": 0.01}
    assert check_targets({"endpoints": 0.001, "mean_ci_lower": 0.001}) == {"mean_ci_lower": 0.001,
                                                                          "mean_ci_upper": 0.001}  # fmt: skip
    assert check_targets(None) == {}


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (["cover=0.01"], r"unknown measure 'cover'; expected one of \['coverage', 'mean_ci_lower'"),
        (["coverage=0.7"], r"the MCSE of 'coverage' must be a number in \(0, 0.5\), got 0.7"),
        (["coverage=0"], r"must be a number in \(0, 0.5\)"),
        (["coverage"], r"expected MEASURE=MCSE \(e.g. coverage=0.002\), got 'coverage'"),
        (["coverage=abc"], r"the MCSE of 'coverage' must be a number, got 'abc'"),
        ({"endpoints": 0.001, "mean_ci_lower": 0.002}, r"'mean_ci_lower' is given two targets"),
    ],
)
def test_bad_targets_are_named(targets, message):
    with pytest.raises(RunError, match=message):
        check_targets(targets)


def test_target_allocation_is_cochrans_for_shared_measures_and_proportional_otherwise():
    """A bootstrap method with shares gets two_phase_allocation of the plain datasets its SD needs (with the
    margin), its residual share carried to the size it asks for (a fixed point of a(m') = a (1 + k/m') /
    (1 + k/m)); a measure without shares grows both phases by (mcse / target)^2; an asymptotic method only
    the cheap phase; met targets ask nothing."""
    row = {"method_kind": "bootstrap", "n_reps": 400, "mean_ci_lower_mcse": 0.002, "mean_ci_lower_plain_mcse": 0.01,
           "residual_share_mean_ci_lower": 0.05, "cheap_share_mean_ci_lower": 0.5,
           "mean_width_mcse": 0.004, "mean_width_plain_mcse": 0.004}  # fmt: skip
    rows = pd.DataFrame([row])
    ratio = 60.0
    n_plain = TARGET_MARGIN * 0.01**2 * 400 / 0.001**2
    a, b = 0.05, 0.5
    m = math.ceil(n_plain * (a + math.sqrt(a * b / ratio)))
    big_n = math.ceil(n_plain * (b + math.sqrt(a * b * ratio)))
    assert (m, big_n) == two_phase_allocation(n_plain, a, b, ratio, 1.0)
    got = target_allocation(rows, 400, 4000, {"mean_ci_lower": 0.001}, ratio)
    k = SHARE_DECAY["mean_ci_lower"]
    assert k > 0 and got == two_phase_allocation(n_plain, a * (1 + k / got[0]) / (1 + k / 400), b, ratio, 1.0)
    assert got[0] < m  # the share measured at 400 datasets overstates the one at more
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(SHARE_DECAY, "mean_ci_lower", 0.0)
        assert target_allocation(rows, 400, 4000, {"mean_ci_lower": 0.001}, ratio) == (m, big_n)
    growth = TARGET_MARGIN * (0.004 / 0.002) ** 2
    assert target_allocation(rows, 400, 4000, {"mean_width": 0.002}, ratio) == (math.ceil(400 * growth),
                                                                                math.ceil(4000 * growth))  # fmt: skip
    asym = pd.DataFrame([row | {"method_kind": "asymptotic"}])
    assert target_allocation(asym, 400, 4000, {"mean_width": 0.002}, ratio) == (400, math.ceil(4000 * growth))
    assert target_allocation(rows, 400, 4000, {"mean_ci_lower": 0.003, "mean_width": 0.005}, ratio) is None


def test_target_allocation_puts_its_margin_on_the_variance():
    """With a margin c, the plain datasets a shared measure needs are c sigma^2 / target^2 (so the two-phase
    allocation is that of c times as many), and a measure without shares grows by c (mcse / target)^2."""
    from simulation.study import runner

    row = {"method_kind": "bootstrap", "n_reps": 400, "mean_ci_lower_mcse": 0.002, "mean_ci_lower_plain_mcse": 0.01,
           "residual_share_mean_ci_lower": 0.05, "cheap_share_mean_ci_lower": 0.5,
           "mean_width_mcse": 0.004, "mean_width_plain_mcse": 0.004}  # fmt: skip
    rows = pd.DataFrame([row])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "TARGET_MARGIN", 1.5)
        mp.setitem(SHARE_DECAY, "mean_ci_lower", 0.0)
        n_plain = 1.5 * 0.01**2 * 400 / 0.001**2
        assert target_allocation(rows, 400, 4000, {"mean_ci_lower": 0.001}, 60.0) == two_phase_allocation(
            n_plain, 0.05, 0.5, 60.0, 1.0)  # fmt: skip
        growth = 1.5 * (0.004 / 0.002) ** 2
        want = (math.ceil(400 * growth), math.ceil(4000 * growth))
        assert target_allocation(rows, 400, 4000, {"mean_width": 0.002}, 60.0) == want


def _capped_run(scenarios, **opts):
    """A target run that may reach ``max_reps``: it warns exactly when some row did not meet its target,
    and those rows (only those) say ``target_not_met``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TargetNotMetWarning)
        res = run_all_ci_scenarios(scenarios, **opts)
    targets = check_targets(opts.get("targets"))
    cov = res.coverage
    unmet = np.zeros(len(cov), bool)
    for measure, target in targets.items():
        unmet |= ~(cov[f"{measure}_mcse"] <= target).to_numpy()
    flagged = cov["status"].str.contains("target_not_met").to_numpy()
    assert (flagged == unmet).all()
    assert bool([w for w in caught if issubclass(w.category, TargetNotMetWarning)]) == bool(unmet.any())
    assert res.provenance["settings"]["targets_not_met"]["rows"] == int(unmet.sum())
    return res


def test_targets_are_met_per_scenario_deterministic_and_resumable(tmp_path):
    """Every targeted MCSE of every method holds (or the scenario reached max_reps); each scenario's
    allocation is in its rows and the provenance; a rerun is identical and a resumed run computes nothing."""
    targets = {"endpoints": 0.004, "coverage": 0.012}
    opts = {"n_reps": 100, "n_boot": 60, "seed": 5, "n_jobs": 1, "max_reps": 3000, "targets": targets}
    res = _capped_run(SMALL, out=tmp_path / "t", **opts)
    cov = res.coverage
    allocation = res.provenance["settings"]["allocation"]
    for key, g in cov.groupby("scenario"):
        boot = g[g["method_kind"] == "bootstrap"]
        m, big_n = allocation[key]
        assert (boot["n_reps"] == m).all() and (g["n_reps_cheap"] == big_n).all()
        met = all((g[f"{k}_mcse"] <= v).all() for k, v in check_targets(targets).items())
        assert met or m == 3000, key
        assert m > 100  # the first round alone met nothing here: each scenario grew
    assert len({tuple(v) for v in allocation.values()}) == len(SMALL)  # each its own allocation
    again = _capped_run(SMALL, **opts)
    pd.testing.assert_frame_equal(cov, again.coverage, check_exact=True)
    resumed = _capped_run(SMALL, out=tmp_path / "t", resume=True, **opts)
    pd.testing.assert_frame_equal(cov, resumed.coverage, check_exact=True)
    assert resumed.provenance["blocks_computed"] == 0
    assert read_provenance(tmp_path / "t" / "coverage.parquet")["settings"]["targets"] == check_targets(targets)


@pytest.mark.parametrize("statistic", ["spearman", "kendall_b", "pearson"])
def test_a_grown_cheap_unit_continues_bit_identically(statistic):
    """A cheap unit grown from a whole number of blocks continues from the smaller unit's record: the same
    record, bit for bit, as the unit computed from scratch (Spearman's fused path, Kendall's rank inputs,
    a statistic of the values)."""
    scenario = SMALL[1]
    ctx = UnitContext(40, 0.95, 7, scenario.calibration(), spearman.truth(scenario), statistic=statistic)
    whole = run_cheap_unit(scenario, 1, 1700, ctx)
    start = Record.from_frame(run_cheap_unit(scenario, 1, 2 * BLOCK_REPS, ctx).to_frame())  # as stored
    grown = run_cheap_unit(scenario, 1, 1700, ctx, start)
    pd.testing.assert_frame_equal(grown.to_frame(), whole.to_frame(), check_exact=True)
    with pytest.raises(ValueError, match="whole blocks"):
        run_cheap_unit(scenario, 1, 1700, ctx, run_cheap_unit(scenario, 1, 700, ctx))


@pytest.mark.parametrize("statistic", ["spearman", "kendall_b", "pearson"])
@pytest.mark.parametrize("scenario", SMALL, ids=lambda s: s.generator)
def test_a_grown_bootstrap_block_continues_bit_identically(scenario, statistic):
    """A bootstrap block grown from a whole number of slices continues from the smaller block's record: the
    same record, bit for bit, as the block computed from scratch (a block's first datasets and each
    dataset's resamples do not depend on the block's size); the batch and the one-row paths agree."""
    ctx = UnitContext(40, 0.95, 7, scenario.calibration(), spearman.truth(scenario), statistic=statistic)
    whole, _ = run_boot_block(scenario, 2, 470, ctx)
    start = Record.from_frame(run_boot_block(scenario, 2, 3 * SLICE_REPS, ctx)[0].to_frame())  # as stored
    grown, _ = run_boot_block(scenario, 2, 470, ctx, start)
    pd.testing.assert_frame_equal(grown.to_frame(), whole.to_frame(), check_exact=True)
    one_row = dataclasses.replace(ctx, batch_bootstrap=False)
    pd.testing.assert_frame_equal(run_boot_block(scenario, 2, 470, one_row, start)[0].to_frame(),
                                  whole.to_frame(), check_exact=True)  # fmt: skip
    with pytest.raises(ValueError, match="whole slices"):
        run_boot_block(scenario, 2, 470, ctx, run_boot_block(scenario, 2, 150, ctx)[0])


def test_a_target_run_continues_grown_cheap_units_and_equals_one_at_its_final_sizes(monkeypatch):
    """Growth continues each scenario's last cheap unit from the round before (whole blocks), and the
    tables equal those of a run given the final allocation from the start (every unit from scratch)."""
    from simulation.study import runner

    starts = []

    def logged(kind, run):
        def unit(scenario, index, size, ctx, start=None):
            starts.append((kind, None) if start is None else (kind, (size, start.n_reps)))
            return run(scenario, index, size, ctx, start)

        return unit

    monkeypatch.setattr(runner, "run_cheap_unit", logged("cheap", run_cheap_unit))
    monkeypatch.setattr(runner, "run_boot_block", logged("boot", run_boot_block))
    opts = {"n_reps": 200, "n_boot": 60, "seed": 5, "n_jobs": 1}
    grown = _capped_run(SMALL, targets={"endpoints": 0.003}, max_reps=3000, **opts)
    allocation = grown.provenance["settings"]["allocation"]
    assert all(n % BLOCK_REPS == 0 for _, n in allocation.values())  # the cheap phase in whole blocks
    for kind, step in (("boot", SLICE_REPS), ("cheap", BLOCK_REPS)):
        continued = [s for k, s in starts if k == kind and s is not None]
        assert continued and all(m % step == 0 and m < n for n, m in continued), kind
    del starts[:]
    fresh = run_all_ci_scenarios(SMALL, scenario_sizes=allocation, **opts)
    assert starts and all(s is None for _, s in starts)  # the fresh run computed every unit from scratch
    # equal but for the flag that only a run with targets can set
    unflagged = grown.coverage.assign(status=grown.coverage["status"].str.replace(
        r"\+?target_not_met", "", regex=True).replace("", "ok"))  # fmt: skip
    pd.testing.assert_frame_equal(unflagged, fresh.coverage, check_exact=True)


def test_target_mcse_is_the_coverage_target():
    opts = {"n_reps": 100, "n_boot": 40, "seed": 2, "n_jobs": 1, "max_reps": 2000}
    a = run_all_ci_scenarios(SMALL[:1], target_mcse=0.01, **opts).coverage
    b = run_all_ci_scenarios(SMALL[:1], targets=["coverage=0.01"], **opts).coverage
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    with pytest.raises(RunError, match="`target_mcse` 0.01 and the coverage target 0.02 differ"):
        run_all_ci_scenarios(SMALL[:1], target_mcse=0.01, targets=["coverage=0.02"], **opts)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target", "cover=0.01"], "unknown measure 'cover'"),
        (["--target", "coverage=0.7"], r"must be a number in \(0, 0.5\)"),
        (["--target", "coverage"], "expected MEASURE=MCSE"),
    ],
)
def test_cli_rejects_bad_targets_with_exit_2(extra, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["run", "smoke", "--out", str(tmp_path / "r"), *extra])
    assert exc.value.code == 2

    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "r").exists()


def test_cli_rejects_a_first_round_above_the_cap(capsys, tmp_path):
    out = tmp_path / "r"
    code = main(["run", "smoke", "--n-reps", "500", "--max-reps", "100", "--target", "coverage=0.01", "--out",
                 str(out), "--quiet", "--no-plots"])  # fmt: skip
    assert code == 2
    assert "`n_reps` 500 (the first round) exceeds `max_reps` 100" in capsys.readouterr().err
    assert not out.exists()


def test_cli_target_run_prints_the_allocation(capsys, tmp_path):
    out = tmp_path / "r"
    code = main(["run", "smoke", "--n-reps", "40", "--n-boot", "30", "--n-jobs", "1", "--target", "endpoints=0.02",
                 "--max-reps", "400", "--out", str(out), "--quiet", "--no-plots"])  # fmt: skip
    assert code == 0
    assert "cheap-phase datasets per scenario (each its own allocation for the targets)" in capsys.readouterr().out
