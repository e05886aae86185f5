"""Integrity and trust: what a table publishes is what this code computed with these settings.

One fault injected per test (an edited block, an edited cache entry, a symlinked ``blocks/`` with
``--overwrite``, ...): the run either computes the right numbers (equal, bit for bit, to a run that never saw
the fault) or stops with a message and exit status 2.
"""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from simulation.models.scenarios import Scenario, load_study
from simulation.study.runner import run_all_ci_scenarios

SMOKE = load_study("smoke")
OPTS = {"n_reps": 40, "n_boot": 30, "seed": 1, "n_jobs": 1}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The tables of an untouched run, and its folder (copied by tests that damage it)."""
    out = tmp_path_factory.mktemp("clean") / "r"
    return run_all_ci_scenarios(SMOKE[:2], out=out, **OPTS), out


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst, symlinks=True)
    return dst


@pytest.mark.parametrize("how", ["pyarrow", "pandas"])
def test_a_block_edited_and_rewritten_as_valid_parquet_is_recomputed_with_a_warning(clean, tmp_path, how):
    """A block whose numbers were changed and written back as valid Parquet (with page checksums): keeping
    the package's metadata (pyarrow) its content digest no longer matches; through pandas the seal is gone.
    Either way --resume names it, computes it again and the table equals the untouched run's."""
    first, src = clean
    out = _copy(src, tmp_path / "r")
    victim = sorted((out / "blocks").rglob("b*.parquet"))[0]
    arrow = pq.read_table(victim)
    table = arrow.to_pandas()
    table["mean"] = [[[float(v) + 0.5 for v in row] for row in table.at[0, "mean"]]]  # every moment's mean
    if how == "pyarrow":
        import pyarrow as pa

        edited = pa.Table.from_pandas(table, preserve_index=False).replace_schema_metadata(arrow.schema.metadata)
        pq.write_table(edited, victim, write_page_checksum=True)
        reason = r"changed after it was written"
    else:
        table.to_parquet(victim, index=False)
        reason = r"not sealed"
    with pytest.warns(UserWarning, match=rf"1 stored block\(s\) were {reason}.*{victim.name}"):
        again = run_all_ci_scenarios(SMOKE[:2], out=out, resume=True, **OPTS)
    assert again.provenance["blocks_computed"] == 1
    pd.testing.assert_frame_equal(first.coverage, again.coverage, check_exact=True)


def test_overwrite_with_a_symlinked_blocks_folder_never_merges_the_old_blocks(tmp_path):
    """``blocks/`` a link to a scratch disk (kept): --overwrite with another n_boot deletes the old units
    inside it, and the table equals a fresh run's with the new settings (it held the old numbers)."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "notes.txt").write_text("the user's own file")
    out = tmp_path / "r"
    out.mkdir()
    (out / "blocks").symlink_to(scratch, target_is_directory=True)
    run_all_ci_scenarios(SMOKE[:1], out=out, **OPTS)
    assert any(scratch.rglob("*.parquet"))
    new = {**OPTS, "n_boot": 60}
    again = run_all_ci_scenarios(SMOKE[:1], out=out, overwrite=True, **new)
    fresh = run_all_ci_scenarios(SMOKE[:1], out=tmp_path / "fresh", **new)
    pd.testing.assert_frame_equal(fresh.coverage, again.coverage, check_exact=True)
    assert (out / "blocks").is_symlink() and (scratch / "notes.txt").read_text() == "the user's own file"


def test_blocks_left_by_other_settings_are_never_merged(clean, tmp_path):
    """A folder whose manifest was deleted (so nothing says its blocks are of n_boot 30): a run with
    n_boot 60 warns that they were written with other settings and computes them again."""
    _, src = clean
    out = _copy(src, tmp_path / "r")
    for name in ("manifest.json", "coverage.parquet", "summary.md", "calibrations.json", "endpoints.png"):
        (out / name).unlink(missing_ok=True)
    new = {**OPTS, "n_boot": 60}
    with pytest.warns(UserWarning, match=r"stored block\(s\) were written with other settings"):
        again = run_all_ci_scenarios(SMOKE[:2], out=out, **new)
    fresh = run_all_ci_scenarios(SMOKE[:2], **new)
    pd.testing.assert_frame_equal(fresh.coverage, again.coverage, check_exact=True)


# --------------------------------------------------------------------------
# Cached calibrations and truths
# --------------------------------------------------------------------------
def _rewrite(path, edit):
    import json

    value = json.loads(path.read_text())
    edit(value)
    path.write_text(json.dumps(value))


def test_a_truth_edited_in_calibrations_json_is_refused_and_recomputed(tmp_path, monkeypatch):
    """The folder's calibrations.json with one truth changed to another number: its digest no longer
    matches; the warning names the scenario, the truth is measured again and the table is the right one."""
    from simulation.infra import cache

    monkeypatch.setenv(cache.ENV, "off")
    out = tmp_path / "r"
    first = run_all_ci_scenarios(SMOKE[:1], out=out, **OPTS)
    key = SMOKE[0].key

    def edit(value):
        value["scenarios"][key]["truth"][0] += 0.05

    _rewrite(out / "calibrations.json", edit)
    with pytest.warns(UserWarning, match=rf"1 cached calibration\(s\) or truth\(s\) did not verify .*{key} .*digest"):
        again = run_all_ci_scenarios(SMOKE[:1], out=out, resume=True, **OPTS)
    pd.testing.assert_frame_equal(first.coverage, again.coverage, check_exact=True)


def test_an_implausible_cache_entry_with_a_matching_digest_is_refused(tmp_path, monkeypatch):
    """A user-cache entry whose truth was moved 0.02 (40 of its MCSEs) from the calibration's achieved
    value, with its digest recomputed to match: the plausibility check refuses it, naming the distance."""
    from simulation.infra import cache
    from simulation.study import runner

    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    first = run_all_ci_scenarios(SMOKE[:1], **OPTS)
    (entry,) = (tmp_path / "cache").rglob("*.json")
    job = runner.Job(SMOKE[0])

    def edit(value):
        value["truth"][0] += 0.02
        value["digest"] = runner._entry_digest(job, value["calibration"], value["truth"], value["truth_mcse"])

    _rewrite(entry, edit)
    with pytest.warns(UserWarning, match=r"in the user's cache \(its truth .* from the calibration's .* more than 6 "
                                         r"MCSEs"):  # fmt: skip
        again = run_all_ci_scenarios(SMOKE[:1], **OPTS)
    pd.testing.assert_frame_equal(first.coverage, again.coverage, check_exact=True)


@pytest.mark.parametrize("truth", [[float("nan"), 0.0, 0], [0.3, -0.001, 100], [0.3, 0.0, 500], [1.5, 0.0004, 10]])
def test_impossible_cached_numbers_are_refused(truth):
    """A non-finite truth, a negative MCSE, a measured-looking truth with no error, a truth out of range."""
    from simulation.models.generators import CALIBRATION_VERSION
    from simulation.study import runner

    job = runner.Job(SMOKE[0])
    calibration = [0.2, 0.3, 0.0001]
    entry = {"calibration": calibration, "truth": truth, "truth_mcse": 0.0005,
             "calibration_version": CALIBRATION_VERSION,
             "digest": runner._entry_digest(job, calibration, truth, 0.0005)}  # fmt: skip
    pair, reason = runner._verified(entry, job, 0.0005)
    assert pair is None and reason
    good = [0.3002, 0.0004, 20000]
    entry |= {"truth": good, "digest": runner._entry_digest(job, calibration, good, 0.0005)}
    assert runner._verified(entry, job, 0.0005)[0] is not None  # the same entry with possible numbers passes


# --------------------------------------------------------------------------
# The code that computed
# --------------------------------------------------------------------------
def test_resume_with_another_source_is_refused_unless_allowed_and_then_recorded(tmp_path, monkeypatch, capsys):
    """The manifest and every table name the package's source digest (and whether the checkout was
    modified); --resume under another source (here: a source digest that differs, as after an edit of any
    module) is refused with exit 2 and nothing changed; --allow-code-change resumes, warns and records it."""
    from simulation.cli.parser import main
    from simulation.infra import storage

    out = tmp_path / "r"
    argv = ["run", "smoke", "--n-reps", "20", "--n-boot", "30", "--n-jobs", "1", "--quiet", "--no-plots",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    table = pq.read_table(out / "coverage.parquet")
    provenance = storage.read_provenance(out / "coverage.parquet")
    assert provenance["source_digest"] == storage.source_digest() and "git_modified" in provenance
    before = (out / "manifest.json").read_text()
    monkeypatch.setattr(storage, "source_digest", lambda: "0123456789ab")
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "holds results computed by other code" in err and "0123456789ab" in err and "Traceback" not in err
    assert (out / "manifest.json").read_text() == before
    assert pq.read_table(out / "coverage.parquet").equals(table)
    with pytest.warns(UserWarning, match="resuming .* with other code"):
        assert main([*argv, "--resume", "--allow-code-change"]) == 0
    (change,) = storage.read_provenance(out / "coverage.parquet")["code_changes"]
    assert change["to"] == "0123456789ab" and change["from"] != change["to"]
    import json

    assert json.loads((out / "manifest.json").read_text())["code_changes"] == [change]


# --------------------------------------------------------------------------
# The config file is explicit
# --------------------------------------------------------------------------
CONFIG_MARKER = "import pathlib\npathlib.Path('config-ran').write_text('yes')\nN_BOOT = 40\n"


@pytest.mark.parametrize("command", [["cache"], ["summary", "nowhere"], ["regression", "a.csv", "b.csv"]])
def test_commands_that_need_no_settings_never_execute_config_py(command, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SIMULATION_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.py").write_text(CONFIG_MARKER)
    from simulation.cli.parser import main

    main(command)
    assert not (tmp_path / "config-ran").exists()
    assert "settings:" not in capsys.readouterr().err


def test_a_command_that_reads_config_py_says_so_first_and_no_config_skips_it(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SIMULATION_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.py").write_text(CONFIG_MARKER)
    from simulation.cli.parser import main

    argv = ["plan", "smoke", "--pilot-reps", "20", "--workers", "2"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "settings: config.py (a Python file, executed; --no-config skips it)"
    assert (tmp_path / "config-ran").exists()
    (tmp_path / "config-ran").unlink()
    assert main(["--no-config", *argv]) == 0
    assert not (tmp_path / "config-ran").exists() and "settings:" not in capsys.readouterr().err
    assert main(["--no-config", "--config", "config.py", *argv]) == 2
    import os

    assert "SIMULATION_CONFIG" not in os.environ  # the command's own setting does not outlive it


# --------------------------------------------------------------------------
# Own only your files
# --------------------------------------------------------------------------
def test_cache_clear_deletes_only_its_entries_and_never_through_a_link(tmp_path, monkeypatch, capsys):
    from simulation.cli.parser import main
    from simulation.infra import cache

    root = tmp_path / "cache"
    monkeypatch.setenv(cache.ENV, str(root))
    run_all_ci_scenarios(SMOKE[:1], **OPTS)
    truths = root / "truths"
    (truths / "README.txt").write_text("mine")
    (truths / "notes").mkdir()
    assert main(["cache", "--clear"]) == 0
    assert sorted(p.name for p in truths.iterdir()) == ["README.txt", "notes"]
    # a truths/ that is a link: refused, and what it points to is untouched
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ("0" * 64 + ".json")).write_text("{}")
    monkeypatch.setenv(cache.ENV, str(tmp_path / "linked"))
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "truths").symlink_to(elsewhere, target_is_directory=True)
    capsys.readouterr()
    assert main(["cache", "--clear"]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert (elsewhere / ("0" * 64 + ".json")).exists()


def test_the_temporary_file_sweep_touches_only_the_runs_own_names(tmp_path):
    out = tmp_path / "r"
    run_all_ci_scenarios(SMOKE[:1], out=out, **OPTS)
    mine = out / ".my-notes.txt.tmp"
    mine.write_text("a user's temporary file")
    nested = out / "other-run" / "blocks" / "x"
    nested.mkdir(parents=True)
    in_progress = nested / ".b000000_m40.parquet.abcd1234.tmp"
    in_progress.write_text("another run, still writing")
    stale = out / ".coverage.parquet.k2j3h4.tmp"
    stale.write_text("left by a killed run")
    stale_block = next((out / "blocks").iterdir()) / ".b000000_m40.parquet.zz9.tmp"
    stale_block.write_text("left by a killed run")
    run_all_ci_scenarios(SMOKE[:1], out=out, resume=True, **OPTS)
    assert mine.exists() and in_progress.exists()
    assert not stale.exists() and not stale_block.exists()


def test_a_folder_of_other_files_is_refused_as_out(tmp_path, capsys):
    from simulation.cli.parser import main

    out = tmp_path / "papers"
    out.mkdir()
    (out / "draft.tex").write_text("a user's file")
    argv = ["run", "smoke", "--n-reps", "20", "--n-boot", "30", "--n-jobs", "1", "--quiet", "--no-plots",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 2
    assert "is not empty and holds no results (draft.tex)" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".lock")) == ["draft.tex"]
    assert main([*argv, "--overwrite"]) == 0  # asked: written beside it, nothing of the user's deleted
    assert (out / "draft.tex").read_text() == "a user's file" and (out / "coverage.parquet").exists()


# --------------------------------------------------------------------------
# Sizes refused up front; malformed input is an input error
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["run", "smoke", "--n-reps", "1000000000000", "--n-boot", "50"],
        ["run", "smoke", "--n-reps", "20", "--n-boot", "1000000000000"],
        ["power", "smoke", "--n-reps", "1000000000000"],
        ["slo", "{data}", "--target", "5", "--n-resamples", "1000000000000"],
        ["regression", "{data}", "{data}", "--n-permutations", "1000000000000"],
    ],
    ids=["n_reps", "n_boot", "power", "slo", "regression"],
)
def test_sizes_beyond_the_machine_are_refused_before_anything_is_written(argv, tmp_path, capsys):
    """Each was a bare MemoryError traceback (one after writing a manifest): now exit 2, the estimate and
    what the machine has, and no results folder."""
    from simulation.cli.parser import main

    data = tmp_path / "m.csv"
    data.write_text("ms\n" + "\n".join(str(10 + i % 7) for i in range(30)) + "\n")
    out = tmp_path / "r"
    argv = [a.format(data=data) for a in argv] + (["--out", str(out), "--quiet"] if argv[0] in ("run", "power")
                                                  else [])  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "would need about" in err and "--skip-resource-check" in err and "Traceback" not in err
    assert not out.exists()


def test_the_resource_check_can_be_skipped(monkeypatch):
    from simulation.core.validation import RunError
    from simulation.infra import resources

    with pytest.raises(RunError, match=r"a test would need about 8\.0 EiB|a test would need about .* of memory"):
        resources.check_resources("a test", 2.0**63)
    monkeypatch.setenv(resources.SKIP_ENV, "1")
    resources.check_resources("a test", 2.0**63)  # told: no check


def test_malformed_inputs_are_input_errors(tmp_path, capsys, monkeypatch):
    """A 200 kB CSV field, a deeply nested JSON cache entry, a 300-character case name, a study path
    without suffix outside the working folder: each a message (exit 2) or a warning and a recomputation,
    never a traceback, and default output always under results/."""
    from simulation.cli.parser import main
    from simulation.infra import cache

    big = tmp_path / "big.csv"
    big.write_text("case,generator,n,rho\n" + "x" * 200_000 + ",bivariate_normal,20,0.3\n")
    assert main(["run", str(big), "--n-reps", "20", "--n-boot", "30", "--quiet"]) == 2
    assert "is not a readable CSV file: field larger than field limit" in capsys.readouterr().err
    long = tmp_path / "long.csv"
    long.write_text("case,generator,n,rho\n" + "c" * 300 + ",bivariate_normal,20,0.3\n")
    assert main(["run", str(long), "--n-reps", "20", "--n-boot", "30", "--quiet"]) == 2
    assert "shorten `case` (now 300 characters)" in capsys.readouterr().err
    # a cache entry nested too deep for the JSON parser: warned about as corrupt, recomputed, every time
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    first = run_all_ci_scenarios(SMOKE[:1], **OPTS)
    (entry,) = (tmp_path / "cache").rglob("*.json")
    entry.write_text("[" * 100_000 + "]" * 100_000)
    cache._warned.clear()
    with pytest.warns(UserWarning, match="is corrupt"):
        again = run_all_ci_scenarios(SMOKE[:1], **OPTS)
    pd.testing.assert_frame_equal(first.coverage, again.coverage, check_exact=True)
    # `run ../study` (no suffix) from a sub-folder: results/study, not ../study
    (tmp_path / "nosuffix").write_text("case,generator,n,rho\nx,bivariate_normal,20,0.3\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["run", "../nosuffix", "--n-reps", "20", "--n-boot", "30", "--quiet", "--no-plots",
                 "--n-jobs", "1"]) == 0  # fmt: skip
    assert (work / "results" / "nosuffix" / "coverage.parquet").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["big.csv", "long.csv", "cache", "nosuffix", "work"])


def test_the_source_digest_changes_with_any_edit_of_the_package(tmp_path):
    """What --resume compares: a copy of the package tree has the installed one's digest; editing one
    character of one module (or a packaged study) changes it."""
    import shutil
    from pathlib import Path

    from simulation.infra import storage

    package = Path(storage.__file__).resolve().parents[1]
    copy = tmp_path / "simulation"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    assert storage.tree_digest(copy) == storage.source_digest()
    module = copy / "engine" / "intervals.py"
    module.write_text(module.read_text().replace("def ", "def  ", 1))
    edited = storage.tree_digest(copy)
    assert edited != storage.source_digest()
    study = next((copy / "studies").glob("*.csv"))
    study.write_text(study.read_text() + "\n")
    assert storage.tree_digest(copy) not in (edited, storage.source_digest())


def test_block_store_check_keeps_its_meaning_and_problem_says_why(clean, tmp_path):
    """``check(path)`` is True for a unit that verifies (as before seals existed); ``problem`` names why not."""
    from simulation.infra.storage import BlockStore, settings_seal

    _, src = clean
    out = _copy(src, tmp_path / "r")
    import json

    identity = json.loads((out / "manifest.json").read_text())["identity"]
    store = BlockStore(out, settings_seal(identity))
    unit = sorted((out / "blocks").rglob("b*.parquet"))[0]
    assert store.check(unit) is True and store.problem(unit) is None
    other = BlockStore(out, settings_seal({**identity, "n_boot": 999}))
    assert other.check(unit) is False and other.problem(unit) == "written with other settings"


def test_a_study_at_large_n_is_refused_for_its_memory_before_anything_is_written(tmp_path, capsys):
    """At n = 1,000,000 a cheap unit's block holds 500 datasets of n pairs (about 40 GB): the run is refused
    up front with the estimate, at a bootstrap size (50 resamples, 400 MB per dataset) the estimate used to be
    made of alone.  The calibration's term is that of DEFAULT_N_CAL datasets up to n = 2,000 and of as many
    pairs in fewer datasets above (it was 640 GB at n = 1,000,000)."""
    from simulation.cli.parser import main
    from simulation.models.generators import DEFAULT_N_CAL, draws_at
    from simulation.study.runner import CALIBRATION_BYTES_PER_OBSERVATION, Execution, plan_run, resource_estimate

    study = tmp_path / "big.csv"
    study.write_text("case,generator,n,k,template,counts,rho\nbig,rank_mixing,1000000,4,even,,0.3\n")
    out = tmp_path / "r"
    assert main(["run", str(study), "--n-reps", "20", "--n-boot", "50", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "would need about" in err and "Traceback" not in err and not out.exists()
    for n in (1_000, 4_000):
        scenario = Scenario(case="big", generator="rank_mixing", n=n, rho=0.3, template="even", k=4)
        identity, plan = plan_run([scenario], n_reps=20, n_boot=50, confidence_level=0.95, methods=None, seed=1,
                                  keep_replicates=False, target_mcse=None, max_reps=20, n_reps_cheap=None,
                                  control_variates=True, truth_mcse=None, scenario_sizes=None, statistics=None,
                                  targets=None)  # fmt: skip
        memory, _ = resource_estimate(identity, plan, Execution(1, "local", None, True, 64 * 2**20, False))
        assert memory >= draws_at(DEFAULT_N_CAL, n) * n * CALIBRATION_BYTES_PER_OBSERVATION
    assert draws_at(DEFAULT_N_CAL, 1_000) == DEFAULT_N_CAL and draws_at(DEFAULT_N_CAL, 2_000) == DEFAULT_N_CAL
    for n in (2_001, 4_000, 1_000_000):
        held = draws_at(DEFAULT_N_CAL, n) * n
        assert 2_000 * DEFAULT_N_CAL <= held < 2_000 * DEFAULT_N_CAL + n  # as many pairs as at n = 2,000
    assert draws_at(DEFAULT_N_CAL, 2_000_000) == 10  # at least 10 datasets
