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

from simulation.cli import main

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
    """A stand-in for ``tempfile`` inside :mod:`simulation.storage`: the ``fail_at``-th atomic write raises
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
           "--power-reps", "20", "--no-grow-design", "--quiet"]  # fmt: skip


def _writes(argv, out, monkeypatch) -> int:
    from simulation import storage

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
    from simulation import storage

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
