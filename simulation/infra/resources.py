"""Sizes refused up front: the memory and disk a computation asks for, checked against the machine before
anything is written.

Each command estimates what its sizes need (a conservative upper bound: the parent's bookkeeping per unit
of work, each worker's largest array, the blocks on disk) and :func:`check_resources` compares it with the
memory available now and the free space where the results go.  ``--skip-resource-check`` on the command line,
or ``SIMULATION_SKIP_RESOURCE_CHECK=1``, lets someone who knows better go ahead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from simulation.core.validation import RunError

#: Environment variable that turns the check off (``1``, ``true`` or ``yes``).
SKIP_ENV = "SIMULATION_SKIP_RESOURCE_CHECK"
#: The share of the available memory a computation may plan to use.
MEMORY_SHARE = 0.8


def available_memory() -> int | None:
    """Bytes of memory available to a new computation: Linux's ``MemAvailable``, else the physical memory
    (None where neither is known)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def free_disk(path: Path | None) -> int | None:
    """Free bytes on the file system that holds ``path`` (or its nearest existing parent); None without one."""
    if path is None:
        return None
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def skipped() -> bool:
    """Whether the check is turned off (:data:`SKIP_ENV`)."""
    return os.environ.get(SKIP_ENV, "").strip().lower() in ("1", "true", "yes")


def check_resources(what: str, memory: float, disk: float = 0.0, out: Path | None = None) -> None:
    """Refuse, before anything is written, a computation whose estimated ``memory`` (bytes, all processes)
    exceeds :data:`MEMORY_SHARE` of the memory available, or whose ``disk`` (bytes under ``out``) exceeds
    the free space there.  ``what`` names the sizes in the message.

    Raises
    ------
    RunError
        Naming the sizes, the estimate, what the machine has, and the override.
    """
    if skipped():
        return
    problems = []
    have = available_memory()
    if have is not None and memory > MEMORY_SHARE * have:
        problems.append(f"about {_size(memory)} of memory (this machine has {_size(have)} available)")
    free = free_disk(out)
    if free is not None and disk > free:
        problems.append(f"about {_size(disk)} of disk under {out} ({_size(free)} free)")
    if problems:
        raise RunError(
            f"{what} would need " + " and ".join(problems) + "; ask for smaller sizes (or another --out), or pass "
            f"--skip-resource-check ({SKIP_ENV}=1) if you know the estimate is wrong for your machine"
        )
