"""Nothing the tool did not understand is accepted, and nothing it fell short of passes without a word.

One test per finding, written from its reproduction: misspelled study columns, unmet precision targets,
rows whose coverage and misses disagree, read-only arrays, degenerate intervals, analyze's verdict at a
knife edge, one meaning of "target", a user statistic's truth, the slow-path ratio, and the small ones.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulation import (
    STATISTICS,
    Scenario,
    Statistic,
    TargetNotMetWarning,
    bootstrap_ci_single,
    load_study,
    run_all_ci_scenarios,
)
from simulation.analyze.analysis import against, recommend
from simulation.cli.parser import main
from simulation.models.scenarios import STUDY_COLUMNS
from simulation.statistics import kendall
from tests.userstats import ODD_SPEARMAN, PLAIN_SPEARMAN, SOMETIMES_NAN

HEADER = "case,generator,n,k,template,counts,rho"


def _study(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.csv"
    path.write_text(text)
    return path


# --------------------------------------------------------------------------
# 1. Every input is understood or refused
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "row", "closest"),
    [
        ("case,generator,n,rho,dof", "t,bivariate_t,20,0.3,8", "df"),
        ("case,generator,n,k,rho,Template", "t,rank_mixing,30,4,0.3,even", "template"),
        ("case,generator,n,k,template,rho,count", "t,rank_mixing,30,4,custom,0.3,10 20", "counts"),
    ],
)
def test_a_misspelled_study_column_is_refused_naming_the_closest(tmp_path, header, row, closest):
    path = _study(tmp_path, f"{header}\n{row}\n")
    with pytest.raises(ValueError, match=rf"unknown column .*did you mean `{closest}`"):
        load_study(path)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ_0123456789 ", min_size=1, max_size=12))
def test_any_unknown_column_name_is_refused(tmp_path_factory, name):
    if name in STUDY_COLUMNS:
        return
    folder = tmp_path_factory.mktemp("cols")
    path = _study(folder, f"{HEADER},{name}\nt,rank_mixing,30,4,even,,0.3,\n")
    with pytest.raises(ValueError, match="column"):
        load_study(path)


def test_a_row_with_more_fields_than_the_header_is_refused(tmp_path):
    path = _study(tmp_path, f"{HEADER}\nt,rank_mixing,30,4,even,,0.3,8\n")
    with pytest.raises(ValueError, match="more field"):
        load_study(path)


def test_k_with_an_all_distinct_template_is_refused(tmp_path):
    # the reproduction: k = 4 ran 30 distinct x values under a table column that said 4
    with pytest.raises(ValueError, match="`k` .* does not apply to template 'all_distinct'"):
        Scenario(case="t", generator="rank_mixing", n=30, rho=0.3, k=4)
    with pytest.raises(ValueError, match="`k`"):
        load_study(_study(tmp_path, f"{HEADER}\nt,rank_mixing,30,4,all_distinct,,0.3\n"))


def test_counts_that_disagree_with_a_named_template_are_refused():
    with pytest.raises(ValueError, match="disagree with template 'even'"):
        Scenario(case="t", generator="rank_mixing", n=20, rho=0.3, k=4, template="even", counts=(2, 3, 5, 10))
    # a named template's own counts (what dataclasses.replace hands back) are accepted
    s = Scenario(case="t", generator="rank_mixing", n=20, rho=0.3, k=4, template="even")
    again = Scenario(case="t", generator="rank_mixing", n=20, rho=0.1, k=4, template="even", counts=s.counts)
    assert again.counts == s.counts


def test_cli_refuses_an_unknown_column_with_status_2_and_writes_nothing(tmp_path, capsys):
    path = _study(tmp_path, "case,generator,n,rho,dof\nt,bivariate_t,20,0.3,8\n")
    out = tmp_path / "out"
    assert main(["run", str(path), "--n-reps", "10", "--n-boot", "20", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unknown column 'dof'" in err and "`df`" in err and "Traceback" not in err
    assert not out.exists()


# --------------------------------------------------------------------------
# 2. What was asked and not reached is a status
# --------------------------------------------------------------------------
SMALL = [
    Scenario(case="a", generator="rank_mixing", n=20, k=4, template="heavy_center", rho=-0.2),
    Scenario(case="b", generator="bivariate_normal", n=15, rho=0.5),
]


def test_an_unmet_target_is_a_status_a_warning_a_summary_line_and_provenance(tmp_path):
    with pytest.warns(TargetNotMetWarning, match=r"row\(s\) did not reach their precision target"):
        res = run_all_ci_scenarios(SMALL, n_reps=40, n_boot=50, targets="coverage=0.001", max_reps=40, n_jobs=1,
                                   out=tmp_path / "r")  # fmt: skip
    cov = res.coverage
    short = cov["coverage_mcse"] > 0.001
    assert short.any()
    assert (cov.loc[short, "status"].str.contains("target_not_met")).all()
    assert not cov.loc[~short, "status"].str.contains("target_not_met").any()
    record = res.provenance["settings"]["targets_not_met"]
    assert record["rows"] == int(short.sum())
    worst = cov.loc[(cov["coverage_mcse"]).idxmax()]
    assert record["worst"]["mcse"] == pytest.approx(worst["coverage_mcse"], rel=0, abs=0)
    assert res.provenance["settings"]["max_reps"] == 40 and res.provenance["settings"]["max_rounds"] >= 1
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "targets not met" in summary and "target_not_met" in summary


def test_a_met_target_flags_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error", TargetNotMetWarning)
        res = run_all_ci_scenarios(SMALL[:1], n_reps=40, n_boot=50, targets="coverage=0.45", n_jobs=1)
    assert not res.coverage["status"].str.contains("target_not_met").any()
    assert res.provenance["settings"]["targets_not_met"] == {"rows": 0}


def test_cli_says_which_targets_were_not_met(tmp_path, capsys):
    argv = ["run", "smoke", "--n-reps", "40", "--n-boot", "50", "--target", "coverage=0.001", "--max-reps", "40",
            "--out", str(tmp_path / "r"), "--quiet", "--no-plots", "--n-jobs", "1"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "target_not_met" in captured.out and "did not reach their precision target" in captured.err


# --------------------------------------------------------------------------
# 3. Each row is self-consistent
# --------------------------------------------------------------------------
def test_coverage_equals_one_minus_the_misses_in_every_row_of_a_run_with_both_statistics():
    res = run_all_ci_scenarios(load_study("smoke"), n_reps=60, n_boot=200, n_jobs=1,
                               statistics="spearman,kendall_b")  # fmt: skip
    t = res.coverage
    gap = (t["coverage"] - (1 - t["miss_below"] - t["miss_above"])).abs()
    assert gap.max() < 1e-12, t.loc[gap.idxmax(), ["scenario", "statistic", "method", "coverage", "miss_below"]]
    np.testing.assert_allclose(t["coverage_lower_bound"], 1 - t["miss_above"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(t["coverage_upper_bound"], 1 - t["miss_below"], rtol=0, atol=1e-12)
    plain = t["coverage_plain"] - (1 - t["miss_below_plain"] - t["miss_above_plain"])
    assert plain.abs().max() < 1e-12
    # the reproduction's row now agrees with itself, with control variates on its misses too
    row = t[(t["statistic"] == "kendall_b") & (t["method"] == "normal") & t["scenario"].str.contains("rank_mixing_n20")]
    assert len(row) == 1 and set(t["estimator"]) <= {"control_variates", "plain"}


# --------------------------------------------------------------------------
# 4. Arrays as users hold them
# --------------------------------------------------------------------------
def _readonly(a):
    a = np.array(a, dtype=float)
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("statistic", ["spearman", "kendall_b", "pearson", PLAIN_SPEARMAN])
def test_read_only_arrays_series_and_lists_work_for_every_statistic(statistic):
    x = np.repeat([1.0, 2.0, 3.0, 4.0], 5)
    y = np.arange(20.0) % 7 + x
    expected = bootstrap_ci_single(x, y, n_boot=100, seed=3, statistic=statistic)
    series = pd.Series(y)
    for xs, ys in ((_readonly(x), _readonly(y)), (pd.Series(x), series), (x.tolist(), y.tolist()),
                   (pd.Series(x).to_numpy(), series.to_numpy())):  # fmt: skip
        got = bootstrap_ci_single(xs, ys, n_boot=100, seed=3, statistic=statistic)
        assert got.rho_hat == expected.rho_hat
        pd.testing.assert_frame_equal(got.intervals, expected.intervals)


def test_an_error_on_the_users_data_says_so(tmp_path):
    from tests.userstats import wrong_signature

    stat = Statistic.from_numba(wrong_signature, name="wrong_signature_here")
    with pytest.raises(ValueError, match="on your data") as exc:
        bootstrap_ci_single(np.arange(20.0), np.arange(20.0)[::-1], n_boot=50, statistic=stat)
    assert "generated dataset" not in str(exc.value)


# --------------------------------------------------------------------------
# 5. Degenerate results are labelled
# --------------------------------------------------------------------------
def test_intervals_that_leave_the_range_are_kept_and_flagged():
    res = bootstrap_ci_single(np.arange(4.0), np.array([1.0, 2.0, 4.0, 3.0]), n_boot=200, seed=1)
    iv = res.intervals
    for method in ("basic", "normal"):
        lo, hi = iv.loc[method, ["ci_lower", "ci_upper"]]
        assert hi > 1 and iv.loc[method, "status"] == "ok" and "out_of_range" in iv.loc[method, "flags"]
    assert iv.loc["percentile", "flags"] == ""


def test_dropped_resamples_are_flagged_for_one_dataset():
    x = np.r_[np.ones(19), 2.0]
    res = bootstrap_ci_single(x, np.arange(20.0), n_boot=1000, seed=1)
    dropped = 1000 - res.n_boot_valid
    # P(the one x = 2 is not drawn) = 0.95^20 = 0.358: about 358 of 1000 resamples have constant x
    assert abs(dropped - 358) < 4 * math.sqrt(1000 * 0.358 * 0.642)
    ok = res.intervals["status"] == "ok"
    assert ok.any() and res.intervals.loc[ok, "flags"].str.contains("resamples_dropped").all()


def test_a_run_counts_out_of_range_intervals_and_dropped_resamples():
    s = Scenario(case="t", generator="bivariate_normal", n=20, rho=0.7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the user statistic is validated (no slow-path warning: it is numba)
        res = run_all_ci_scenarios([s], n_reps=60, n_boot=200, n_jobs=1, statistics=["spearman", SOMETIMES_NAN])
    t = res.coverage.set_index(["statistic", "method"])
    assert t.loc[("spearman", "normal"), "n_out_of_range"] > 0
    assert "out_of_range" in t.loc[("spearman", "normal"), "status"]
    assert (t.xs("spearman")["n_resamples_dropped"] == 0).all()
    boot = t.xs("sometimes_nan")
    boot = boot[boot["method_kind"] == "bootstrap"]
    # 7.55% of 60 x 200 resamples: 906, SD 29
    assert (abs(boot["n_resamples_dropped"] - 906) < 5 * 29).all()
    assert (boot["n_reps_resamples_dropped"] > 30).all() and boot["status"].str.contains("resamples_dropped").all()


def test_n_boot_below_two_is_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="`n_boot` must be an integer >= 2"):
        run_all_ci_scenarios(SMALL[:1], n_reps=20, n_boot=1, n_jobs=1)
    with pytest.raises(ValueError, match="`n_boot` must be an integer >= 2"):
        bootstrap_ci_single(np.arange(10.0), np.arange(10.0), n_boot=1)
    with pytest.raises(SystemExit) as exc:
        main(["run", "smoke", "--n-boot", "1", "--out", str(tmp_path / "r")])
    assert exc.value.code == 2 and "--n-boot" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------
# 6. analyze decides on unrounded numbers
# --------------------------------------------------------------------------
def test_printed_coverage_never_contradicts_the_verdict():
    assert against(0.94497, 0.945) == "0.94497"
    assert against(0.9450, 0.945) == "0.9450"
    assert against(0.9449999999, 0.945) == "0.9449999999"
    assert against(0.96123, 0.945) == "0.9612"


def _design(rows):
    return pd.DataFrame([
        {"method": m, "coverage": c, "coverage_mcse": e, "rho": 0.1 * i, "rho_true": 0.1 * i,
         "generator": "rank_mixing", "mean_width": 0.4, "mean_width_mcse": 0.001, "miss_below": 0.02,
         "miss_above": 0.03}
        for m, pairs in rows.items() for i, (c, e) in enumerate(pairs)
    ])  # fmt: skip


def test_borderline_is_about_the_worst_scenario_and_imprecise_is_said_apart():
    table = _design({
        "near": [(0.9460, 0.002), (0.99, 0.001)],  # worst within 2 MCSE of 0.945
        "far": [(0.9600, 0.001), (0.97, 0.02)],  # worst far; another scenario noisy, not the worst
        "knife": [(0.94497, 0.0048), (0.99, 0.001)],  # below the threshold by 3e-5
    })  # fmt: skip
    rec = recommend(table, 0.95)
    ev = rec["evidence"].set_index("method")
    assert bool(ev.loc["near", "borderline"]) and not bool(ev.loc["far", "borderline"])
    assert not bool(ev.loc["knife", "qualifies"])
    assert "Worst coverage within 2 MCSE" in rec["text"] and "near" in rec["text"]
    assert "Imprecise" in rec["text"]  # far's MCSE 0.02 > 0.0025
    only_knife = recommend(_design({"knife": [(0.94497, 0.0048), (0.99, 0.001)]}), 0.95)
    assert "No method reaches 0.945" in only_knife["text"] and "0.94497" in only_knife["text"]


# --------------------------------------------------------------------------
# 7. One meaning of "target"
# --------------------------------------------------------------------------
def test_plan_takes_the_runs_targets_and_prints_the_half_width(capsys):
    argv = ["plan", "smoke", "--pilot-reps", "20", "--n-boot", "30", "--n-jobs", "1", "--target", "coverage=0.01"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "coverage=0.01" in out and "±0.0196" in out and "95% half-width" in out


def test_plan_reads_a_bare_number_as_a_half_width_with_a_deprecation_warning(capsys):
    argv = ["plan", "smoke", "--pilot-reps", "20", "--n-boot", "30", "--n-jobs", "1", "--target", "0.01"]
    with pytest.warns(FutureWarning, match="deprecated: write `--target endpoints=0.005102`"):
        assert main(argv) == 0
    assert "endpoints=0.005102" in capsys.readouterr().out


# --------------------------------------------------------------------------
# 8. A user statistic's estimand is stated
# --------------------------------------------------------------------------
def test_a_user_statistic_without_truth_is_scored_against_the_expected_sample_value():
    s = Scenario(case="t", generator="bivariate_normal", n=30, rho=0.5)
    res = run_all_ci_scenarios([s], n_reps=20, n_boot=50, n_jobs=1, statistics=["spearman", PLAIN_SPEARMAN])
    t = res.coverage.drop_duplicates("statistic").set_index("statistic")
    assert t.loc["spearman", "estimand"] == "population" and t.loc["spearman", "rho_true"] == 0.5
    assert t.loc["plain_spearman", "estimand"] == "expected_sample"
    # E[r_s] = (6 / pi) [asin(r / 2) + (n - 2) asin(r / 2)] / (n + 1) for the bivariate normal (Moran 1948),
    # with the latent r = 2 sin(pi / 12): 0.4859 at n = 30
    r = 2 * math.sin(math.pi * 0.5 / 6)
    expected = 6 / math.pi / (30 + 1) * (math.asin(r) + (30 - 2) * math.asin(r / 2))
    truth, mcse = t.loc["plain_spearman", ["rho_true", "rho_true_mcse"]]
    assert abs(truth - expected) < 4 * mcse + 1e-4


@pytest.mark.parametrize("generator", ["rank_mixing", "gaussian_copula", "bivariate_normal", "bivariate_t", "plackett"])
def test_odd_symmetric_statistics_have_truth_exactly_zero_at_rho_zero(generator):
    tied = generator in ("rank_mixing", "gaussian_copula")
    s = Scenario(case="t", generator=generator, n=20, rho=0.0, **({"k": 4, "template": "even"} if tied else {}))
    pearson, odd, plain = (STATISTICS["pearson"].truth(s, 0.0005), ODD_SPEARMAN.truth(s, 0.0005),
                           PLAIN_SPEARMAN.truth(s, 0.01))  # fmt: skip
    for truth in (pearson, odd):
        assert truth.value == 0.0 and truth.mcse == 0.0 and not math.copysign(1, truth.value) < 0
    assert plain.n_reps > 0  # without the declaration it is measured


# --------------------------------------------------------------------------
# 9. The slow-path warning's ratio excludes a first call's set-up
# --------------------------------------------------------------------------
def test_slow_path_ratio_is_measured_after_a_warm_up():
    calls = []

    def slow_first(x, y, axis=-1):
        if not calls and np.shape(x)[0] >= 100:  # the first batch of resamples: a first call's set-up (a cache,
            import time  # a compilation for the new shape)

            time.sleep(0.5)
            calls.append(1)
        return np.mean((x - x.mean(axis=axis, keepdims=True)) * (y - y.mean(axis=axis, keepdims=True)), axis=axis)

    stat = Statistic.from_callable(slow_first, name="slow_first", transform="identity", bounds=None)
    with pytest.warns(UserWarning, match="slow path") as record:
        bootstrap_ci_single(np.arange(20.0), np.arange(20.0) % 5, n_boot=20, statistic=stat)
    message = str(record[0].message)
    micro = float(re.search(r"\(([0-9.]+) vs", message).group(1))
    assert micro < 2_000, message  # 0.5 s over 200 resamples would read 2,500 us or more


# --------------------------------------------------------------------------
# 10. The small ones
# --------------------------------------------------------------------------
def test_kendall_intervals_refuse_impossible_inputs_alike():
    for bad in ((3.0, 0.1), (1.5, 0.1)):
        with pytest.raises(ValueError, match="`tau` must lie in"):
            kendall.ase_ci(*bad)
    with pytest.raises(ValueError, match="`se` must be >= 0"):
        kendall.ase_ci(0.3, -0.1)
    for tau in (1.5, 1.2, -1.01):
        with pytest.raises(ValueError, match="`tau` must lie in"):
            kendall.fisher_z_ci(tau, 30)
    lo, hi = kendall.fisher_z_ci(np.nan, 30)
    assert np.isnan(lo) and np.isnan(hi)


def test_methods_error_lists_each_method_once(capsys):
    with pytest.raises(SystemExit):
        main(["run", "smoke", "--methods", "nonsense"])
    err = capsys.readouterr().err
    listed = err.split("subset of ")[1].split(",")
    names = [m.strip().split(" ")[0] for m in listed]
    assert names.count("fisher_z_se") == 1


def test_power_table_has_no_negative_zero():
    from simulation.power.curves import PowerSettings, run_power_study

    res = run_power_study(SMALL[:1], PowerSettings(n_reps=40, n_perm=40, grid=(0.0, 0.3), seed=1), n_jobs=1)
    assert not np.signbit(res.power.loc[res.power["rho_true"] == 0, "rho_true"]).any()


def test_plan_durations_under_a_second_are_not_zero():
    from simulation.cli.commands import _duration

    assert _duration(0.3) == "0.3 s" and _duration(0.01) == "< 0.1 s" and _duration(65) == "65 s"


def test_a_stop_after_the_tables_are_written_exits_0(tmp_path, monkeypatch, capsys):
    import simulation.cli.commands as commands

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "plot_all", interrupted)
    out = tmp_path / "r"
    argv = ["run", "smoke", "--n-reps", "20", "--n-boot", "20", "--out", str(out), "--quiet", "--n-jobs", "1"]
    assert main(argv) == 0
    assert (out / "coverage.parquet").is_file() and (out / "summary.md").is_file()
    assert "after the tables were written" in capsys.readouterr().err


def test_analyze_flags_the_datas_intervals_that_leave_the_range():
    import simulation.analyze.analysis as an

    pairs = an.complete_pairs(list(range(10)), [1, 2, 4, 3, 6, 5, 7, 9, 8, 10])
    rho, table = an.data_intervals(pairs, an.AnalysisSettings(n_boot=500))
    table = table.set_index("method")
    outside = (table["ci_upper"] > 1) | (table["ci_lower"] < -1)
    assert outside.any()  # r_s = 0.964 at n = 10: the basic and normal intervals reach past 1
    assert (table.loc[outside, "flags"] == "out_of_range").all() and (table.loc[~outside, "flags"] == "").all()


def test_a_header_with_an_empty_or_repeated_column_is_refused(tmp_path):
    with pytest.raises(ValueError, match="empty column name"):
        load_study(_study(tmp_path, f"{HEADER},\nt,rank_mixing,30,4,even,,0.3,\n"))
    with pytest.raises(ValueError, match=r"repeats column\(s\) \['rho'\]"):
        load_study(_study(tmp_path, f"{HEADER},rho\nt,rank_mixing,30,4,even,,0.3,0.3\n"))


def test_odd_symmetric_must_be_a_bool():
    from tests.userstats import spearman_counts

    with pytest.raises(TypeError, match="`odd_symmetric` must be True or False, got 'yes'"):
        Statistic.from_numba(spearman_counts, name="odd_typo", odd_symmetric="yes")


def test_scenario_kendall_truth_is_deprecated_and_gives_the_same_numbers():
    from simulation.statistics import kendall

    s = load_study("smoke")[0]
    with pytest.warns(DeprecationWarning, match="kendall.truth"):
        old = s.kendall_truth(0.01)
    assert old == kendall.truth(s, 0.01)
