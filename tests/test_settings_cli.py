"""Settings resolution and the command line."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from simulation import Settings, load_settings
from simulation.cli.parser import main


def test_packaged_defaults_when_no_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SIMULATION_CONFIG", raising=False)
    assert load_settings() == Settings()
    assert load_settings().source == "packaged defaults"


def test_config_in_working_directory_and_env_var(tmp_path, monkeypatch):
    monkeypatch.delenv("SIMULATION_CONFIG", raising=False)
    (tmp_path / "config.py").write_text("N_BOOT = 77\nSEED = 3\n")
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match=r"settings read from .*config\.py \(config\.py in the working folder"):
        s = load_settings()
    assert (s.N_BOOT, s.SEED, s.N_REPS) == (77, 3, Settings().N_REPS)
    assert load_settings().N_BOOT == 77  # announced once per process and file (filterwarnings: error)
    other = tmp_path / "other.py"
    other.write_text("N_REPS = 5\n")
    monkeypatch.setenv("SIMULATION_CONFIG", str(other))
    assert load_settings().N_REPS == 5
    monkeypatch.setenv("SIMULATION_CONFIG", "off")
    assert load_settings() == Settings()  # skipped: the packaged defaults


def test_repository_config_equals_packaged_defaults():
    assert load_settings("config.py") == Settings()


@pytest.mark.parametrize(
    ("text", "exc", "match"),
    [
        ("N_BOTS = 10\n", ValueError, r"unknown setting\(s\) \['N_BOTS'\]"),
        ("N_BOOT = 0\n", ValueError, r"`N_BOOT` must be an integer >= 1, got 0"),
        ("CONFIDENCE_LEVEL = 1.5\n", ValueError, r"`CONFIDENCE_LEVEL` must be in \(0, 1\), got 1.5"),
        ("BATCH_CI_BOOTSTRAP = 'yes'\n", TypeError, r"`BATCH_CI_BOOTSTRAP` must be True or False"),
        ("N_JOBS = 0\n", ValueError, r"`N_JOBS` must be a non-zero integer"),
    ],
)
def test_invalid_config_is_rejected(tmp_path, text, exc, match):
    path = tmp_path / "config.py"
    path.write_text(text)
    with pytest.raises(exc, match=match):
        load_settings(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("N_REPS = 10\nN_BOOT = (\n", r"config file `.*config.py` line 2: '\(' was never closed"),
        ("N_REPS = 10\n\nN_BOOT = 1 / 0\n", r"config file `.*config.py` line 3: ZeroDivisionError: division by zero"),
        ("N_REPS = 10\nimport no_such_module_xyz\n", r"config file `.*config.py` line 2: ModuleNotFoundError"),
    ],
)
def test_config_that_does_not_run_names_file_and_line(tmp_path, text, match):
    path = tmp_path / "config.py"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_settings(path)


def test_cli_config_syntax_error_exits_2_without_traceback(tmp_path, monkeypatch):
    """The config.py in the working directory is read by path: a syntax error there is one line, exit 2."""
    (tmp_path / "config.py").write_text("N_BOOT = 100\nSEED = [\n")
    env = {k: v for k, v in os.environ.items() if k != "SIMULATION_CONFIG"}
    out = subprocess.run(
        [sys.executable, "-m", "simulation", "run", "smoke", "--quiet"], cwd=tmp_path, env=env,
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip() == "error: config file `config.py` line 2: '[' was never closed"
    assert not (tmp_path / "results").exists()


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file `.*nope.py` does not exist"):
        load_settings(tmp_path / "nope.py")


def test_module_help_runs():
    out = subprocess.run([sys.executable, "-m", "simulation", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert all(command in out.stdout for command in ("run", "plan", "power", "plot", "summary"))
    assert "demo" not in out.stdout  # superseded by `run` (e.g. `run smoke`)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["run", "--n-boot", "0"], "--n-boot: expected an integer >= 2 \\(an interval needs two resamples\\), got '0'"),
        (["run", "--confidence-level", "2"], r"--confidence-level: expected a number in \(0, 1\)"),
        (["run", "--seed", "-1"], "--seed: expected a non-negative integer"),
        (["demo"], "invalid choice: 'demo'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_cli_bad_arguments_exit_2(argv, match, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert pytest.importorskip("re").search(match, capsys.readouterr().err)


def test_cli_bad_config_and_unwritable_output_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("N_REPS = -4\n")
    assert main(["--config", str(bad), "run", "smoke"]) == 2
    assert "`N_REPS` must be an integer >= 1, got -4" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "smoke", "--n-reps", "2", "--n-boot", "5", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert "cannot create output folder" in err and "Traceback" not in err


SMALL_RUN = ["--n-reps", "12", "--n-boot", "30", "--n-jobs", "1", "--quiet"]


def test_run_plot_summary_commands(tmp_path, capsys):
    out = tmp_path / "smoke"
    assert main(["run", "smoke", *SMALL_RUN, "--out", str(out), "--methods", "percentile,bca"]) == 0
    printed = capsys.readouterr().out
    assert "percentile" in printed and "coverage.parquet" in printed
    for name in ("nested_loop_coverage", "nested_loop_mean_width", "endpoints"):
        assert (out / f"{name}.png").stat().st_size > 1000 and (out / f"{name}.pdf").stat().st_size > 1000
    assert not (out / "coverage.png").exists()  # the panels by case are drawn on request only
    (out / "nested_loop_coverage.png").unlink()
    assert main(["plot", str(out)]) == 0
    assert (out / "nested_loop_coverage.png").exists()
    assert main(["plot", str(out), "--kind", "panels"]) == 0
    for name in ("coverage", "endpoints", "widths"):
        assert (out / f"{name}.png").stat().st_size > 1000 and (out / f"{name}.pdf").stat().st_size > 1000
    assert main(["summary", str(out)]) == 0
    assert "# Coverage study: smoke" in capsys.readouterr().out


def test_plan_reports_replicates_for_each_target(capsys):
    argv = ["plan", "smoke", "--pilot-reps", "20", "--n-boot", "30", "--n-jobs", "1", "--target", "endpoints=0.005"]
    assert main([*argv, "--target", "coverage=0.01", "--workers", "16"]) == 0
    text = capsys.readouterr().out
    for column in ("plain n_reps", "CV n_reps", "CV n_reps_cheap", "speed-up", "disk", "CV on 16 cores",
                   "95% half-width"):  # fmt: skip
        assert column in text
    assert "Allocation: each scenario's own (Cochran 1977, §12.6)" in text and "Cost per dataset and core" in text
    # one row per target, each with its 95% half-width (1.96 MCSE)
    assert "endpoints=0.005" in text and "±0.0098" in text and "coverage=0.01" in text and "±0.0196" in text


def test_plan_for_both_statistics(capsys):
    argv = ["plan", "smoke", "--pilot-reps", "20", "--n-boot", "30", "--n-jobs", "1", "--target", "coverage=0.01"]
    assert main([*argv, "--statistic", "spearman,kendall_b"]) == 0
    text = capsys.readouterr().out
    assert "statistics spearman, kendall_b" in text and "coverage=0.01" in text
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--statistic", "kendal"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "expected distinct names from spearman,kendall_b,pearson or package.module:function" in err


def test_two_phase_allocation_is_the_lagrange_optimum():
    """(m, N) meets the plain variance and no other split of the same budget does better."""
    from simulation.cli.commands import two_phase_allocation

    n_plain, c_b, c_c = 10_000, 300e-6, 4e-6
    for a, b in ((1 / 40, 1 - 1 / 40), (0.006, 0.02)):
        m, big_n = two_phase_allocation(n_plain, a, b, c_b, c_c)
        # rounded up to whole datasets: at most the plain variance, which one dataset fewer of each exceeds
        assert a / m + b / big_n <= 1 / n_plain < a / (m - 1) + b / (big_n - 1)
        cost = m * c_b + big_n * c_c
        for shift in (0.8, 0.9, 1.1, 1.25):  # other m on the same variance need a larger budget
            m2 = m * shift
            if a / m2 >= 1 / n_plain:
                continue  # no cheap phase can reach the variance with so few bootstrapped datasets
            n2 = b / (1 / n_plain - a / m2)
            assert m2 * c_b + n2 * c_c > cost


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["run", "nope", *SMALL_RUN], "unknown study 'nope'"),
        (["run", "smoke", "--methods", "wald"], "--methods: expected a comma-separated subset"),
        (["run", "smoke", "--target-mcse", "0"], r"--target-mcse: expected a number in \(0, 0.5\)"),
        (["run", "smoke", "--n-jobs", "0"], "--n-jobs: expected a non-zero integer"),
        (["plot", "no/such/folder"], "holds no coverage.parquet"),
    ],
)
def test_run_family_bad_input_exits_2_without_traceback(argv, match, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse-level errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert pytest.importorskip("re").search(match, err) and "Traceback" not in err


def test_run_refuses_to_overwrite_and_rejects_malformed_study(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "smoke", *SMALL_RUN, "--out", str(out), "--no-plots"]) == 0
    before = (out / "coverage.parquet").read_bytes()
    assert main(["run", "smoke", *SMALL_RUN, "--out", str(out), "--no-plots"]) == 2
    assert "already holds results" in capsys.readouterr().err
    assert (out / "coverage.parquet").read_bytes() == before
    bad = tmp_path / "bad.csv"
    bad.write_text("case,generator,n,k,template,rho\nx,rank_mixing,80,12,even,0.1\n")
    assert main(["run", str(bad), *SMALL_RUN, "--out", str(tmp_path / "b")]) == 2
    assert "row 2: `k` must be an integer in 4..10" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "smoke", *SMALL_RUN, "--out", str(blocker)]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def test_power_command_writes_tables_and_figures(tmp_path, capsys):
    out = tmp_path / "p"
    argv = ["power", "smoke", "--n-reps", "100", "--grid-max", "0.4", "--grid-step", "0.1", "--n-perm", "999"]
    assert main([*argv, "--n-jobs", "1", "--quiet", "--out", str(out)]) == 0
    assert "minimum detectable |rho|" in capsys.readouterr().out
    mdc = pd.read_parquet(out / "min_detectable.parquet")
    assert {"rho_star", "rho_star_se", "status", "search_lo", "search_hi"} <= set(mdc.columns)
    assert (out / "power_curves.pdf").exists() and (out / "min_detectable.png").exists()
    with pytest.raises(SystemExit) as info:
        main([*argv, "--target-power", "1.5"])
    assert info.value.code == 2
    assert main([*argv, "--n-jobs", "1", "--quiet", "--out", str(out)]) == 2
    assert "already holds results" in capsys.readouterr().err


def test_plan_without_targets_covers_the_study_tiers(capsys):
    assert main(["plan", "smoke", "--pilot-reps", "10", "--n-jobs", "1"]) == 0
    text = capsys.readouterr().out
    for tier, reps in (("±0.01", "1300"), ("±0.002", "32500"), ("±0.001", "129700")):
        assert tier in text and reps in text
    assert "x 500 resamples" in text and "Cost per dataset and core" in text


def test_power_grid_step_larger_than_grid_end_exits_2(capsys):
    assert main(["power", "smoke", "--grid-max", "0.1", "--grid-step", "0.2", "--n-jobs", "1", "--quiet"]) == 2
    assert "--grid-step 0.2 must not exceed --grid-max 0.1" in capsys.readouterr().err


def test_renamed_power_option_and_keyword_still_work_with_a_warning(tmp_path, capsys):
    """``power --n-sims`` and ``PowerSettings(n_sims=)`` (renamed to n_reps in 0.1.0) keep working for a release."""
    import pandas as pd

    from simulation.power.curves import PowerSettings

    out = tmp_path / "p"
    argv = ["power", "smoke", "--grid-max", "0.2", "--grid-step", "0.1", "--n-perm", "200", "--n-jobs", "1",
            "--quiet", "--no-plots"]  # fmt: skip
    assert main([*argv, "--n-sims", "30", "--out", str(out)]) == 0
    assert "--n-sims is deprecated and will be removed in the next release; use --n-reps" in capsys.readouterr().err
    assert main([*argv, "--n-reps", "30", "--out", str(tmp_path / "q")]) == 0
    new = pd.read_parquet(tmp_path / "q" / "power.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(out / "power.parquet"), new)
    with pytest.warns(FutureWarning, match=r"PowerSettings\(n_sims=\.\.\.\) is deprecated; use n_reps="):
        old = PowerSettings(n_sims=500)
    assert old == PowerSettings(n_reps=500)
    with pytest.raises(ValueError, match="not both"), pytest.warns(FutureWarning):
        PowerSettings(n_reps=400, n_sims=500)
