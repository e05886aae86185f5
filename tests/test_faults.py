"""Faults of long runs: SIGTERM, full or read-only disks, corrupt blocks, two runs at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from simulation.cli.parser import main

REPO = Path(__file__).resolve().parents[1]


def _wait_for(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")
def test_sigterm_stops_like_ctrl_c_ends_the_workers_and_resume_completes(tmp_path):
    """SIGTERM to the CLI (what SLURM and `timeout` send): exit 143 with the Ctrl-C message, no worker
    process left in its process group, and --resume gives the uninterrupted table."""
    out = tmp_path / "r"
    argv = [sys.executable, "-m", "simulation", "run", "smoke", "--n-reps", "3000", "--n-boot", "200",
            "--n-jobs", "2", "--quiet", "--no-plots", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    blocks = out / "blocks"
    assert _wait_for(lambda: blocks.exists() and any(blocks.rglob("b*.parquet")), 120), proc.stderr
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM): finished blocks are saved; run again with --resume to continue" in err
    assert "Traceback" not in err
    assert _wait_for(lambda: not _group_alive(proc.pid), 10), "worker processes outlived the run"
    assert not (out / "coverage.parquet").exists()
    assert main(argv[3:] + ["--resume"]) == 0
    whole = tmp_path / "whole"
    assert main([*argv[3:-1], str(whole)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out / "coverage.parquet"),
                                  pd.read_parquet(whole / "coverage.parquet"), check_exact=True)  # fmt: skip


class _FullDisk:
    """A stand-in for ``tempfile`` inside :mod:`simulation.infra.storage`: the ``fail_at``-th atomic write raises
    ``errno`` (every file the package writes goes through ``storage.atomic_write``)."""

    def __init__(self, fail_at: int | None, errno_: int):
        import tempfile

        self.real, self.fail_at, self.errno, self.count = tempfile, fail_at, errno_, 0

    def mkstemp(self, *args, **kwargs):
        self.count += 1
        if self.count == self.fail_at:
            raise OSError(self.errno, os.strerror(self.errno), kwargs.get("dir"))
        return self.real.mkstemp(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


RUN = ["run", "smoke", "--n-reps", "40", "--n-boot", "30", "--n-jobs", "1", "--quiet"]
ANALYZE = ["analyze", "example", "--n-boot", "100", "--n-perm", "200", "--design-reps", "30", "--design-boot", "30",
           "--power-reps", "20", "--no-grow-design", "--no-plan", "--quiet"]  # fmt: skip


def _writes(argv, out, monkeypatch) -> int:
    from simulation.infra import storage

    disk = _FullDisk(None, 0)
    monkeypatch.setattr(storage, "tempfile", disk)
    assert main([*argv, "--out", str(out)]) == 0
    monkeypatch.undo()
    return disk.count


@pytest.mark.parametrize(
    ("argv", "errno_", "where"),
    [(RUN, 28, "all"), (RUN, 30, "first"), (ANALYZE, 28, "all")],
    ids=["run-ENOSPC", "run-EROFS", "analyze-ENOSPC"],
)
def test_a_full_or_read_only_disk_is_a_clear_error_and_resume_completes(
    argv, errno_, where, tmp_path, monkeypatch, capsys
):
    """The k-th write fails (early: a block; middle; last: a table, summary or figure): exit 2, no traceback,
    a message naming the cause and what to do; every file already written intact (and no temporary file
    left); then --resume gives the uninterrupted results."""
    from simulation.infra import storage

    whole = tmp_path / "whole"
    total = _writes(argv, whole, monkeypatch)
    for k in sorted({2, total // 2, total}) if where == "all" else [2]:
        out = tmp_path / f"k{k}"
        monkeypatch.setattr(storage, "tempfile", _FullDisk(k, errno_))
        code = main([*argv, "--out", str(out)])
        monkeypatch.undo()
        err = capsys.readouterr().err
        assert code == 2, (k, err)
        assert os.strerror(errno_) in err and "run again with --resume" in err and "Traceback" not in err
        assert not list(out.rglob("*.tmp"))
        for path in out.rglob("*.parquet"):
            pd.read_parquet(path)  # intact
        assert main([*argv, "--out", str(out), "--resume"]) == 0
        tables = ["coverage.parquet"] if argv[0] == "run" else ["data_intervals.parquet", "design/coverage.parquet",
                                                                "power/min_detectable.parquet"]  # fmt: skip
        for table in tables:
            pd.testing.assert_frame_equal(pd.read_parquet(out / table), pd.read_parquet(whole / table),
                                          check_exact=True)  # fmt: skip


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_block_is_recomputed_on_resume_with_one_warning(damage, tmp_path):
    """A block cut short (a crash, a copy cut short) or with a flipped bit in its data (caught by the
    Parquet page checksums): --resume warns once naming it, computes it again, and the table equals the
    undamaged one; the tables carry the digest of the blocks they were built from."""
    from simulation.models.scenarios import load_study
    from simulation.study.runner import run_all_ci_scenarios

    scenarios = load_study("smoke")[:2]
    opts = {"n_reps": 40, "n_boot": 30, "seed": 1, "n_jobs": 1}
    first = run_all_ci_scenarios(scenarios, out=tmp_path / "r", **opts)
    victim = sorted((tmp_path / "r" / "blocks").rglob("b*.parquet"))[0]
    data = bytearray(victim.read_bytes())
    if damage == "truncate":
        victim.write_bytes(bytes(data[: len(data) // 2]))
    else:
        data[len(data) // 3] ^= 0x40  # inside a data page
        victim.write_bytes(bytes(data))
    damaged = rf"1 stored block\(s\) were damaged and will be computed again: .*{victim.name}"
    with pytest.warns(UserWarning, match=damaged):
        again = run_all_ci_scenarios(scenarios, out=tmp_path / "r", resume=True, **opts)
    assert again.provenance["blocks_computed"] == 1
    pd.testing.assert_frame_equal(first.coverage, again.coverage, check_exact=True)
    assert first.provenance["blocks_digest"] == again.provenance["blocks_digest"]
    assert len(first.provenance["blocks_digest"]) == 64


def test_one_writer_per_folder_refuses_waits_and_takes_over_a_dead_holder(tmp_path):
    """A folder held by another run is refused at once, naming the holder (host, process, since), or waited
    for; a holder file left by a run that died is taken over with a warning."""
    import json
    import socket
    import threading

    from simulation.infra.storage import HOLDER_FILE, hold_folder
    from simulation.models.scenarios import load_study
    from simulation.study.runner import RunError, run_all_ci_scenarios

    scenarios = load_study("smoke")[:1]
    opts = {"n_reps": 20, "n_boot": 20, "seed": 1, "n_jobs": 1}
    out = tmp_path / "r"
    with hold_folder(out):
        holder = json.loads((out / HOLDER_FILE).read_text())
        assert holder["host"] == socket.gethostname() and holder["pid"] == os.getpid()
        with pytest.raises(RunError, match=rf"is in use by another run \(host {socket.gethostname()}, process "
                                           rf"{os.getpid()}, since .*\) after waiting 0.2 s; .*--wait-for-lock"):
            run_all_ci_scenarios(scenarios, out=out, wait_for_lock=0.2, **opts)
    assert not (out / "manifest.json").exists()  # the refused run wrote nothing

    release = threading.Event()

    def hold_for_a_while():
        with hold_folder(out):
            release.set()
            time.sleep(1.0)

    thread = threading.Thread(target=hold_for_a_while)
    thread.start()
    release.wait()
    res = run_all_ci_scenarios(scenarios, out=out, wait_for_lock=60, **opts)  # waits, then runs
    thread.join()
    assert (out / "coverage.parquet").exists() and not (out / HOLDER_FILE).exists()

    (out / HOLDER_FILE).write_text(json.dumps({"host": "gone", "pid": 999999, "since": "yesterday"}))
    with pytest.warns(UserWarning, match=r"held by a run that ended without releasing it \(host gone, process "
                                         r"999999, since yesterday\); taking it over"):
        again = run_all_ci_scenarios(scenarios, out=out, resume=True, **opts)
    pd.testing.assert_frame_equal(res.coverage, again.coverage, check_exact=True)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_second_cli_run_on_a_held_folder_exits_2_naming_the_first(tmp_path):
    out = tmp_path / "r"
    argv = [sys.executable, "-m", "simulation", "run", "smoke", "--n-reps", "3000", "--n-boot", "200", "--n-jobs",
            "1", "--quiet", "--no-plots", "--out", str(out)]  # fmt: skip
    first = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(lambda: (out / ".lock-holder.json").exists(), 60)
        second = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        import socket

        assert f"is in use by another run (host {socket.gethostname()}, process {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)


def test_units_remembered_in_memory_read_back_as_the_file_does(tmp_path):
    """``BlockStore.put(remember=True)`` keeps the unit for the first ``get``: the same table and the same
    digest as reading the file (so the provenance's ``blocks_digest`` does not depend on it); a unit written
    again is remembered as its new self, and a later ``get`` reads the file."""
    from simulation.infra.storage import BlockStore, remembered_bytes

    first = pd.DataFrame({"n": [1], "values": [[0.25, 0.5]]})
    second = pd.DataFrame({"n": [2], "values": [[0.75, 1.0]]})
    store = BlockStore(tmp_path)
    store.put("s", "b0", first, remember=True)
    store.put("s", "b0", second, remember=True)
    assert store._written_bytes == remembered_bytes(store.path("s", "b0").read_bytes())  # the second alone
    got = store.get("s", "b0")
    assert got is second and store._written_bytes == 0
    from_disk = BlockStore(tmp_path)
    pd.testing.assert_frame_equal(from_disk.get("s", "b0"), second)
    assert from_disk.digest() == store.digest()
    pd.testing.assert_frame_equal(store.get("s", "b0"), second)  # not remembered any more: the file
