"""Storage: atomic files, Parquet with provenance, results folders, manifests and block stores.

Everything the package writes goes through here, and only the parent
process writes:

* :func:`atomic_write` writes a temporary file beside the target and renames
  it into place, so a run killed at any moment leaves whole files or none;
* :func:`write_parquet` stores a table with its provenance (settings, seed,
  versions, git commit, times) as JSON in the Parquet schema metadata, and
  :func:`read_provenance` reads it back;
* :func:`prepare_output` guards a results folder: it refuses to mix results
  of other settings (named in the message) or to replace results unless told,
  and records the settings that define the numbers in ``manifest.json``;
* :class:`BlockStore` keeps a run's units of work (``blocks/<scenario>/``)
  on disk, or in memory when there is no folder.  Each stored unit is sealed:
  its Parquet metadata holds the digest of the settings that made it and of
  its own content, both checked whenever it is read, so a unit edited after
  it was written, or left by a run with other settings, is computed again
  (with a warning naming it) instead of being published.

The runner, the power study and the reports all use this module; it uses
none of them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import filelock
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simulation.core.validation import RunError
from simulation.core.version import __version__

MANIFEST = "manifest.json"
BLOCKS_DIR = "blocks"
#: Key of the provenance JSON in the Parquet schema metadata.
METADATA_KEY = b"simulation"
#: Key of a stored unit's seal (the digests of its settings and of its content) in its Parquet metadata.
SEAL_KEY = b"simulation.seal"
#: Packages whose versions are recorded in every provenance.
VERSIONED_PACKAGES = ("numpy", "numba", "scipy", "pandas", "pyarrow", "joblib")

__all__ = [
    "BLOCKS_DIR",
    "MANIFEST",
    "BlockStore",
    "RunError",
    "atomic_write",
    "content_digest",
    "git_commit",
    "now",
    "prepare_output",
    "provenance_record",
    "read_json",
    "read_provenance",
    "settings_seal",
    "source_digest",
    "versions",
    "write_json",
    "write_parquet",
    "write_text",
]


# --------------------------------------------------------------------------
# Atomic files
# --------------------------------------------------------------------------
def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through ``write(tmp)`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> None:
    """Atomically write ``text`` to ``path``."""
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, value: Any) -> None:
    """Atomically write ``value`` as indented, key-sorted JSON (floats round-trip exactly)."""
    write_text(path, json.dumps(value, indent=1, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None when it is missing or unreadable (callers recompute)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError):  # a nesting too deep for the parser is unreadable too
        return None


def write_parquet(
    path: Path, table: pd.DataFrame, provenance: dict[str, Any] | None = None, *, seal: str | None = None
) -> None:
    """Atomically write ``table`` to Parquet, with ``provenance`` as JSON in the schema metadata; ``seal``
    (a stored unit's: the digest of the settings that made it) is written with the digest of the table's
    content (:func:`content_digest`), which :class:`BlockStore` checks on every read."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    meta = dict(arrow.schema.metadata or {})
    if provenance is not None:
        meta[METADATA_KEY] = json.dumps(provenance, sort_keys=True, default=str).encode()
    if seal is not None:
        meta[SEAL_KEY] = json.dumps({"settings": seal, "content": content_digest(arrow)}).encode()
    if provenance is not None or seal is not None:
        arrow = arrow.replace_schema_metadata(meta)
    # page checksums: a flipped bit in stored data is caught when read (BlockStore.get)
    atomic_write(Path(path), lambda tmp: pq.write_table(arrow, tmp, write_page_checksum=True))


def content_digest(arrow: pa.Table) -> str:
    """SHA-256 of a table's column names and values, in column order (numbers as their float64 or int64
    bytes, nulls as NaN; anything else as JSON): the same for a table and its Parquet round trip, different
    after any edit of a value or name."""
    h = hashlib.sha256()
    for name, column in zip(arrow.column_names, arrow.columns, strict=True):
        h.update(f"{name}\0{len(column)}\0".encode())
        kind = column.type
        if pa.types.is_integer(kind) and column.null_count == 0:
            h.update(b"i" + column.to_numpy().astype("<i8").tobytes())
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            h.update(b"f" + column.to_numpy().astype("<f8").tobytes())
        else:
            h.update(b"j" + json.dumps(column.to_pylist(), default=str).encode())
    return h.hexdigest()


def settings_seal(identity: dict[str, Any]) -> str:
    """The digest of a run's identity (the settings that define its numbers) that seals its stored units."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def read_provenance(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The provenance stored in a Parquet file written by this package."""
    meta = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in meta:
        raise RunError(f"`{path}` carries no simulation provenance (not written by this package?)")
    return json.loads(meta[METADATA_KEY])


# --------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------
def _git(*arguments: str) -> str | None:
    """The output of ``git ARGUMENTS`` in the package's folder, or None outside a git checkout (or without git)."""
    try:
        result = subprocess.run(["git", *arguments], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                                text=True, timeout=5, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


@functools.cache
def git_commit() -> str | None:
    """The commit of the package's checkout, or None outside a git checkout (asked once per process)."""
    out = _git("rev-parse", "HEAD")
    return out.strip() or None if out is not None else None


@functools.cache
def git_modified() -> bool | None:
    """Whether the package's checkout has uncommitted changes to tracked files in the package (None outside a
    git checkout; asked once per process)."""
    out = _git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return bool(out.strip()) if out is not None else None


@functools.cache
def source_digest() -> str:
    """SHA-256 (first 12 hex digits) of the whole package's ``.py`` files (every subpackage) and data
    tables, in path order: the code that computed a table, whether or not it is a git checkout."""
    return tree_digest(Path(__file__).resolve().parents[1])


def tree_digest(root: Path) -> str:
    """:func:`source_digest` of the package tree at ``root``: its ``.py`` files, ``data/*.csv`` and
    ``studies/*.csv``, each by its path and bytes."""
    digest = hashlib.sha256()
    for path in sorted([*root.rglob("*.py"), *root.glob("data/*.csv"), *root.glob("studies/*.csv")]):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def versions() -> dict[str, str]:
    """Python's, this package's and the core dependencies' versions (read once per process)."""
    return dict(_versions())


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    out = {"python": platform.python_version(), "simulation": __version__}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - core dependencies
            out[name] = "unknown"
    return tuple(out.items())


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


#: Version of the tables' layout (columns and provenance), in every table's provenance (``table_format``):
#: raised when a column is renamed or removed (the CHANGELOG lists each).
TABLE_FORMAT = 2


def provenance_record(study: str | None, identity: dict[str, Any], started_at: str, **extra: Any) -> dict[str, Any]:
    """The provenance every results table carries: study, identity, versions, commit, times, and ``extra``."""
    return {
        "table_format": TABLE_FORMAT,
        "study": study,
        "identity": identity,
        **extra,
        "versions": versions(),
        "source_digest": source_digest(),
        "git_commit": git_commit(),
        "git_modified": git_modified(),
        "started_at": started_at,
        "finished_at": now(),
    }


# --------------------------------------------------------------------------
# Results folders
# --------------------------------------------------------------------------
def prepare_output(
    out: Path,
    identity: dict[str, Any],
    *,
    resume: bool,
    overwrite: bool,
    owned: tuple[str, ...],
    allow_code_change: bool = False,
) -> list[dict[str, Any]]:
    """Prepare the results folder ``out``: refuse to mix or overwrite results unless told; write the manifest.

    ``identity`` holds the settings that define the numbers; ``owned`` are the
    files a run writes (the first is its main table), which ``overwrite``
    deletes together with ``blocks/``.  The manifest also records the code
    (:func:`code_record`): ``resume`` with another package source is refused
    unless ``allow_code_change``, and then the change is recorded in the
    manifest.  A folder that holds files but no results is refused unless
    ``overwrite`` (which then deletes nothing of them).  Temporary files left
    by a killed run are deleted only under the run's own names, where the run
    writes them.

    Returns
    -------
    list of dict
        The code changes recorded in the manifest (``from``, ``to``, ``at``),
        for the tables' provenance; empty for a run of one code.

    Raises
    ------
    RunError
        ``out`` is a file; it holds results and neither ``resume`` nor
        ``overwrite`` is set; ``resume`` with other settings (each named,
        old and new value) or other code; an unreadable manifest; an
        unwritable folder; a folder of other files.
    """
    manifest = out / MANIFEST
    main_file = out / owned[0]
    if out.exists() and not out.is_dir():
        raise RunError(f"output folder `{out}` exists and is not a folder")
    changes: list[dict[str, Any]] = []
    if manifest.exists():
        if overwrite:
            _remove_blocks(out / BLOCKS_DIR)
            for name in (*owned, MANIFEST):
                (out / name).unlink(missing_ok=True)
        elif not resume:
            raise RunError(
                f"`{out}` already holds results; pass --resume (resume=True in Python) to reuse and extend them, "
                "--overwrite (overwrite=True) to replace them, or choose another --out (out=)"
            )
        else:
            changes = _check_manifest(manifest, out, identity, allow_code_change)
    elif main_file.exists() and not overwrite:
        raise RunError(
            f"`{out}` holds {owned[0]} without a manifest; use --overwrite (overwrite=True) or another --out (out=)"
        )
    elif not overwrite and (others := _foreign_entries(out, owned)):
        raise RunError(
            f"`{out}` is not empty and holds no results ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); "
            "choose another --out (out=), or pass --overwrite (overwrite=True) to write the results beside those "
            "files (none of them is deleted)"
        )  # fmt: skip
    try:
        (out / BLOCKS_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create output folder `{out}`: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise RunError(f"output folder `{out}` is not writable")
    _sweep_temporary(out, owned)
    if not manifest.exists() or changes:
        body = {"identity": identity, "code": code_record()} | ({"code_changes": changes} if changes else {})
        write_text(manifest, json.dumps(body, indent=2, sort_keys=True) + "\n")
    return changes


def code_record() -> dict[str, Any]:
    """The code that computes: this package's version, source digest (:func:`source_digest`), git commit and
    whether the checkout had uncommitted changes."""
    return {"version": __version__, "source": source_digest(), "git_commit": git_commit(),
            "git_modified": git_modified()}  # fmt: skip


#: What a results folder holds besides the files a run names: its lock (taken before the folder is
#: prepared), figures and other files the commands write beside the tables.
_RESULTS_ENTRIES = (MANIFEST, BLOCKS_DIR, ".lock", ".lock-holder.json")


def _foreign_entries(out: Path, owned: tuple[str, ...]) -> list[str]:
    """The entries of ``out`` that no run of this package wrote (a folder of someone else's files)."""
    if not out.is_dir():
        return []
    return sorted(p.name for p in out.iterdir() if p.name not in (*_RESULTS_ENTRIES, *owned))


def _sweep_temporary(out: Path, owned: tuple[str, ...]) -> None:
    """Delete the temporary files a killed run left (:func:`atomic_write`'s ``.<name>.<random>.tmp``), only
    under the names this run writes: its own files and manifest in ``out``, its units in ``blocks/*/``.  A
    user's temporary files, and another run's in a nested results folder, are never touched."""
    for name in (*owned, MANIFEST):
        for stale in out.glob(f".{glob_escape(name)}.*.tmp"):
            stale.unlink(missing_ok=True)
    blocks = out / BLOCKS_DIR
    if blocks.is_dir():
        for stale in blocks.glob("*/.*.parquet.*.tmp"):
            stale.unlink(missing_ok=True)


def glob_escape(name: str) -> str:
    """``name`` with the glob pattern characters ``*?[`` made literal."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _remove_blocks(blocks: Path) -> None:
    """Delete a results folder's stored units for ``--overwrite``.  A ``blocks`` folder that is a link (to a
    scratch disk) is kept, and only the units inside it are deleted (``<scenario>/<unit>.parquet`` and their
    temporary files; nothing else, and no further link is followed).  What cannot be deleted stops the run
    with an error naming it: old units are never left to be merged into a table of other settings."""
    try:
        if not blocks.is_symlink():
            if blocks.exists():
                shutil.rmtree(blocks)
            return
        for folder in blocks.iterdir():
            if folder.is_symlink() or not folder.is_dir():
                continue
            for unit in folder.iterdir():
                if unit.name.endswith((".parquet", ".tmp")) and not unit.is_dir():
                    unit.unlink()
            with contextlib.suppress(OSError):  # a folder holding files of someone else's stays
                folder.rmdir()
    except OSError as exc:
        raise RunError(f"--overwrite cannot delete the old blocks in `{blocks}` ({exc}); delete them yourself "
                       "or choose another --out") from None  # fmt: skip


def _check_manifest(manifest: Path, out: Path, identity: dict[str, Any], allow_code_change: bool) -> list[dict]:
    """Refuse to resume with other settings or other code; the code changes recorded (one added when
    ``allow_code_change`` lets another source resume)."""
    try:
        body = json.loads(manifest.read_text())
        old = body["identity"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise RunError(
            f"cannot read `{manifest}` ({exc}); use --overwrite (overwrite=True) or another --out (out=)"
        ) from None
    changed = {k: (old.get(k), v) for k, v in identity.items() if old.get(k) != v}
    changed |= {k: (v, None) for k, v in old.items() if k not in identity}
    if changed:
        what = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
        raise RunError(
            f"`{out}` holds results computed with other settings ({what}); rerun with the old "
            "settings to resume, or use --overwrite (overwrite=True) or another --out (out=)"
        )
    changes = list(body.get("code_changes", []))
    before = (body.get("code") or {}).get("source")
    now_source = source_digest()
    if before == now_source:
        return changes
    was = f"source {before}" if before else "a version that did not record its source"
    if not allow_code_change:
        raise RunError(
            f"`{out}` holds results computed by other code ({was}; this is source {now_source}): blocks from both "
            "would be merged into one table. Resume with the code that started the run, or pass "
            "--allow-code-change (allow_code_change=True) if the change cannot alter the numbers (it is recorded "
            "in the manifest and the tables), or use --overwrite or another --out"
        )  # fmt: skip
    changes.append({"from": before, "to": now_source, "at": now()})
    warnings.warn(f"resuming `{out}` with other code ({was} -> source {now_source}), as --allow-code-change asks; "
                  "recorded in its manifest and tables", UserWarning, stacklevel=3)  # fmt: skip
    return changes


LOCK_FILE = ".lock"
HOLDER_FILE = ".lock-holder.json"


@contextlib.contextmanager
def hold_folder(out: Path | None, wait: float | None = 0.0) -> Iterator[None]:
    """Hold the results folder ``out`` for a whole run: one writer per folder.

    An advisory lock (``filelock``: ``flock`` on POSIX, released by the
    operating system when its process dies) on ``<out>/.lock``, and
    ``<out>/.lock-holder.json`` saying who holds it (host, process id, since
    when).  ``wait``: seconds to wait for another run to finish (None: as long
    as it takes; 0: refuse at once).  A holder file left by a process that
    died (its lock is free) is taken over with a warning.  Nothing to hold for
    ``out`` None (in memory).

    Raises
    ------
    RunError
        The folder is held by another run (named) and ``wait`` ran out.
    """
    if out is None:
        yield
        return
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunError(f"output folder `{out}` exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create output folder `{out}`: {exc.strerror}") from None
    lock = filelock.FileLock(str(out / LOCK_FILE))
    try:
        lock.acquire(timeout=-1 if wait is None else wait)
    except filelock.Timeout:
        holder = read_json(out / HOLDER_FILE) or {}
        who = (f"host {holder.get('host', '?')}, process {holder.get('pid', '?')}, since {holder.get('since', '?')}"
               if holder else "a process that has not said who it is")  # fmt: skip
        waited = f" after waiting {wait:g} s" if wait else ""
        raise RunError(
            f"results folder `{out}` is in use by another run ({who}){waited}; wait for it to finish, pass "
            "--wait-for-lock SECONDS (wait_for_lock=), or choose another --out (out=)"
        ) from None
    try:
        stale = read_json(out / HOLDER_FILE)
        if stale:
            warnings.warn(
                f"results folder `{out}` was held by a run that ended without releasing it (host "
                f"{stale.get('host', '?')}, process {stale.get('pid', '?')}, since {stale.get('since', '?')}); "
                "taking it over", UserWarning, stacklevel=3,
            )  # fmt: skip
        write_json(out / HOLDER_FILE, {"host": socket.gethostname(), "pid": os.getpid(), "since": now()})
        yield
    finally:
        (out / HOLDER_FILE).unlink(missing_ok=True)
        lock.release()


#: At most this many bytes of units written by a run are kept in memory until it reads them (BlockStore.put).
REMEMBER_BYTES = 256 * 2**20
#: A remembered unit's memory, counted as this many times its file's bytes: its numbers are Python
#: floats in nested lists (24 bytes each and an 8-byte pointer) where the file holds 8 bytes each.
#: (Pandas' ``memory_usage(deep=True)`` measures it exactly but took a third of the parent's time
#: storing units.)
REMEMBERED_PER_FILE_BYTE = 4


def remembered_bytes(data: bytes) -> int:
    """The memory a remembered unit whose file holds ``data`` is counted for (against :data:`REMEMBER_BYTES`)."""
    return REMEMBERED_PER_FILE_BYTE * len(data)


class CorruptBlock(RunError):
    """A stored unit that does not verify: truncated, a page's checksum fails, or its seal does not match
    (edited after it was written, written with other settings, or by a version that did not seal units)."""

    def __init__(self, message: str, reason: str = "damaged"):
        super().__init__(message)
        self.reason = reason


def _read_verified(path: Path, seal: str | None = None) -> tuple[pd.DataFrame, str]:
    try:
        data = Path(path).read_bytes()
        arrow = pq.read_table(pa.BufferReader(data), page_checksum_verification=True)
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise CorruptBlock(f"the stored block {path} is damaged ({exc}); run again with --resume to compute it "
                           "again") from None  # fmt: skip
    if seal is not None:
        reason = _seal_problem(arrow, seal)
        if reason is not None:
            raise CorruptBlock(f"the stored block {path} was {reason}; run again with --resume to compute it again",
                               reason)  # fmt: skip
    return arrow.to_pandas(), hashlib.sha256(data).hexdigest()


def _seal_problem(arrow: pa.Table, seal: str) -> str | None:
    """Why a unit read back does not belong to the run sealed ``seal`` (None: it does)."""
    try:
        stored = json.loads((arrow.schema.metadata or {})[SEAL_KEY])
        settings, content = stored["settings"], stored["content"]
    except (KeyError, ValueError, TypeError, RecursionError):
        return "not sealed (written by an earlier version, or rewritten by another program)"
    if settings != seal:
        return "written with other settings"
    if content != content_digest(arrow):
        return "changed after it was written (its content does not match its digest)"
    return None


class BlockStore:
    """A run's finished units of work, as Parquet tables under ``<out>/blocks/<scenario>/`` (or in memory).

    A unit is named by its scenario key and a file stem that encodes what it
    holds (e.g. ``b000003_m500``); names are pure functions of a unit's
    identity, so a resumed run finds exactly the units it would compute.
    Writes are atomic (:func:`atomic_write`).
    """

    def __init__(self, out: Path | None, seal: str | None = None):
        self.root = None if out is None else Path(out) / BLOCKS_DIR
        #: The run's :func:`settings_seal`: written into every unit, and required of every unit read (None:
        #: units are neither sealed nor checked, for tools that read a store outside a run).
        self.seal = seal
        self._memory: dict[tuple[str, str], pd.DataFrame] = {}
        self._digests: dict[tuple[str, str], str] = {}
        # units written by this process and not read yet, with their file's SHA-256 (see put's `remember`)
        self._written: dict[tuple[str, str], tuple[pd.DataFrame, str]] = {}
        self._written_bytes = 0

    def path(self, scenario: str, name: str) -> Path:
        assert self.root is not None
        return self.root / scenario / f"{name}.parquet"

    def has(self, scenario: str, name: str) -> bool:
        if self.root is None:
            return (scenario, name) in self._memory
        return self.path(scenario, name).exists()

    def put(self, scenario: str, name: str, table: pd.DataFrame, *, remember: bool = False) -> None:
        """Store a unit.  ``remember``: also keep the table in memory (up to :data:`REMEMBER_BYTES` in all),
        so that the first :meth:`get` of it in this process does not read the file back; its digest is
        that of the file written."""
        if self.root is None:
            self._memory[scenario, name] = table
            return
        path = self.path(scenario, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_parquet(path, table, seal=self.seal)
        earlier = self._written.pop((scenario, name), None)  # a unit written again: only the new one counts
        if earlier is not None:
            self._written_bytes -= earlier[2]
        if remember:
            data = path.read_bytes()
            size = remembered_bytes(data)
            if self._written_bytes + size <= REMEMBER_BYTES:
                self._written[scenario, name] = (table, hashlib.sha256(data).hexdigest(), size)
                self._written_bytes += size

    def get(self, scenario: str, name: str) -> pd.DataFrame:
        """A stored unit, verified (its Parquet footer and every page's checksum); its SHA-256 is kept for
        :meth:`digest`.  A unit that fails raises :class:`CorruptBlock` naming its file."""
        if self.root is None:
            return self._memory[scenario, name]
        if (scenario, name) in self._written:
            table, digest, size = self._written.pop((scenario, name))
            self._written_bytes -= size
            self._digests[scenario, name] = digest
            return table
        path = self.path(scenario, name)
        table, digest = _read_verified(path, self.seal)
        self._digests[scenario, name] = digest
        return table

    def peek(self, scenario: str, name: str) -> pd.DataFrame:
        """A stored unit, verified like :meth:`get`, but not counted among those a table was built from
        (:meth:`digest`): for a unit that is only the start of another."""
        if self.root is None:
            return self._memory[scenario, name]
        if (scenario, name) in self._written:
            table, _, size = self._written.pop((scenario, name))
            self._written_bytes -= size
            return table
        return _read_verified(self.path(scenario, name), self.seal)[0]

    def check(self, path: Path) -> bool:
        """Whether the stored unit at ``path`` verifies (footer, page checksums and seal)."""
        return self.problem(path) is None

    def problem(self, path: Path) -> str | None:
        """Why the stored unit at ``path`` does not verify (footer, page checksums and seal), or None."""
        try:
            _read_verified(path, self.seal)
        except CorruptBlock as exc:
            return exc.reason
        return None

    def drop_corrupt(self) -> list[Path]:
        """Delete every stored unit that does not verify (so that it is computed again): damaged, edited
        after it was written, or from other settings; one warning per kind, naming the units.  The list of
        those deleted."""
        if self.root is None or not self.root.exists():
            return []
        bad: dict[str, list[Path]] = {}
        for path in sorted(self.root.glob("*/*.parquet")):
            reason = self.problem(path)
            if reason is not None:
                bad.setdefault(reason, []).append(path)
        for reason, paths in bad.items():
            for path in paths:
                path.unlink(missing_ok=True)
            warnings.warn(
                f"{len(paths)} stored block(s) were {reason} and will be computed again: "
                + ", ".join(str(p) for p in paths), UserWarning, stacklevel=2,
            )  # fmt: skip
        return [p for paths in bad.values() for p in paths]

    def digest(self) -> str:
        """SHA-256 over the names and contents of every unit read so far (in name order): what a table was
        built from."""
        h = hashlib.sha256()
        for (scenario, name), digest in sorted(self._digests.items()):
            h.update(f"{scenario}/{name}:{digest}\n".encode())
        return h.hexdigest()

    def get_all(self, scenario: str, names: Iterable[str]) -> pd.DataFrame:
        """The units ``names`` of one scenario, concatenated in the order given."""
        return pd.concat([self.get(scenario, name) for name in names], ignore_index=True)

    def disk_bytes(self) -> int:
        """Bytes the stored units take on disk (0 in memory)."""
        if self.root is None or not self.root.exists():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*.parquet"))
