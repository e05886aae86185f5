"""A cache of calibrations and measured truths shared by every run and results folder of this user.

A scenario's calibration (the generator's coefficient) and its measured truth
depend only on the scenario, the statistic, the truth's precision and the code
that computes them, never on a run's seed or sizes, so a second study of the
same scenarios (another results folder, a larger run, ``analyze`` of similar
data) need not measure them again.  One small JSON file per entry, named by
the SHA-256 of everything that identifies it (the scenario's key, the
statistic and its digest, the truth's MCSE, the calibration version and the
package's source digest, so any change of code starts afresh), written
atomically (a temporary file, then ``os.replace``): two processes writing the
same entry write the same bytes, and a reader sees a whole file or none.

Where: ``$SPEARMAN_SIM_CACHE`` if set (``off`` disables the cache), else
``$XDG_CACHE_HOME/spearman-tied-sim`` or ``~/.cache/spearman-tied-sim``.
``python -m simulation cache`` says where and how much; ``--clear`` empties
it.  A folder that cannot be written, or an entry that cannot be read, gives
a warning and the run computes without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

#: Environment variable naming the cache folder (``off``: no cache).
ENV = "SPEARMAN_SIM_CACHE"
_SUBFOLDER = "truths"
#: An entry's file name (:func:`entry_key`) and a temporary file of :func:`put`.
_ENTRY = re.compile(r"[0-9a-f]{64}\.json")
_TEMPORARY = re.compile(r"\.tmp-[A-Za-z0-9_]+\.json")
_warned: set[str] = set()


def cache_dir() -> Path | None:
    """The cache folder, or None when disabled."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in ("off", "0", "none", "") else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spearman-tied-sim"


def entry_key(**parts: Any) -> str:
    """The SHA-256 of ``parts`` (JSON, sorted keys): an entry's file name."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _warn(kind: str, message: str) -> None:
    if kind not in _warned:  # once per process and kind: a run does not print it for every scenario
        _warned.add(kind)
        warnings.warn(message, UserWarning, stacklevel=3)


def get(key: str) -> dict[str, Any] | None:
    """The entry ``key``, or None (absent, disabled, or unreadable: warned, and treated as absent)."""
    folder = cache_dir()
    if folder is None:
        return None
    path = folder / _SUBFOLDER / f"{key}.json"
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None  # absent (a folder that cannot hold it is warned about when writing)
    except OSError as exc:
        _warn("read", f"cannot read the calibration cache entry {path} ({exc}); computing without it")
        return None
    try:
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError("not an object")
    except (ValueError, RecursionError) as exc:
        _warn("corrupt", f"the calibration cache entry {path} is corrupt ({exc}); computing it again "
                         f"(`python -m simulation cache --clear` empties the cache)")  # fmt: skip
        return None
    return value


def put(key: str, value: dict[str, Any]) -> None:
    """Write the entry ``key`` atomically; an unwritable cache is warned about once and skipped."""
    folder = cache_dir()
    if folder is None:
        return
    target = folder / _SUBFOLDER
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(value, handle)
            os.replace(tmp, target / f"{key}.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        _warn("write", f"cannot write the calibration cache in {folder} ({exc}); continuing without it "
                       f"(set {ENV} to another folder, or to 'off')")  # fmt: skip


def _entries(folder: Path) -> list[Path]:
    """The cache's own files in ``folder``: entries (``<sha256>.json``) and temporary files left by a killed
    write (``.tmp-*.json``); nothing else, and nothing in a folder reached through a link."""
    if folder.is_symlink() or not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if (_ENTRY.fullmatch(p.name) or _TEMPORARY.fullmatch(p.name))
            and not p.is_dir()]  # fmt: skip


def info() -> tuple[Path | None, int, int]:
    """The folder, its number of entries and their bytes."""
    folder = cache_dir()
    if folder is None:
        return folder, 0, 0
    files = [p for p in _entries(folder / _SUBFOLDER) if _ENTRY.fullmatch(p.name)]
    return folder, len(files), sum(f.stat().st_size for f in files)


def clear() -> int:
    """Delete the cache's own entries (never another file, never through a link); the number deleted.

    Raises
    ------
    ValueError
        The entries' folder is a symbolic link: it is not followed (delete what it points to yourself).
    """
    folder = cache_dir()
    if folder is None:
        return 0
    target = folder / _SUBFOLDER
    if target.is_symlink():
        raise ValueError(f"the cache folder {target} is a symbolic link (to {os.readlink(target)}); `cache --clear` "
                         "does not delete through links: delete its entries yourself")  # fmt: skip
    count = 0
    for path in _entries(target):
        path.unlink(missing_ok=True)  # a link among the entries is removed itself, never what it points to
        count += 1
    return count
