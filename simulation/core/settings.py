"""Study settings: packaged defaults, overridden by a ``config.py`` read by path.

Resolution order for :func:`load_settings` with no argument:

1. the file named by the environment variable ``SIMULATION_CONFIG``
   (``off``: none, the packaged defaults);
2. ``config.py`` in the current working directory;
3. the packaged defaults (the field defaults of :class:`Settings`).

A config file is plain Python; its UPPER_CASE names are the settings.  It is
**executed** (:func:`runpy.run_path`, never imported through ``sys.path``),
as pytest executes a ``conftest.py``: whoever can write it runs code as you.
A ``config.py`` picked up from the working folder is announced: the command
line prints its path on the first line of its output (``--no-config`` skips
it), the Python API warns once per process and file.
"""

from __future__ import annotations

import dataclasses
import os
import runpy
import traceback
import warnings
from pathlib import Path
from typing import Any

from simulation.core.validation import (
    check_bool,
    check_confidence_level,
    check_n_jobs,
    check_positive_int,
    check_seed,
)

CONFIG_ENV_VAR = "SIMULATION_CONFIG"
#: Values of ``SIMULATION_CONFIG`` that mean "no config file": the packaged defaults.
CONFIG_OFF = ("off", "none", "0")
#: Config files picked up from the working folder and announced already in this process.
_ANNOUNCED: set[Path] = set()


@dataclasses.dataclass(frozen=True)
class Settings:
    """Validated study settings (names as in ``config.py``).

    Attributes
    ----------
    N_REPS : int
        Outer Monte Carlo count: simulated datasets per scenario.
    N_BOOT : int
        Inner bootstrap count: resamples per dataset.
    CONFIDENCE_LEVEL : float
        Two-sided confidence level of every interval, in (0, 1).
    SEED : int
        Base seed; every random stream derives from it.
    N_JOBS : int
        Worker processes for the study runner (-1: all cores).
    BATCH_CI_BOOTSTRAP : bool
        True: bootstrap all replicates of a chunk in one kernel call.
        False: the per-replicate fallback (``bootstrap_ci_single`` in a loop).
        Both give bit-identical results.
    CHUNK_BYTES : int
        Memory budget for the bootstrap index buffer of one chunk, in bytes.
    """

    N_REPS: int = 200
    N_BOOT: int = 1000
    CONFIDENCE_LEVEL: float = 0.95
    SEED: int = 20180201
    N_JOBS: int = -1
    BATCH_CI_BOOTSTRAP: bool = True
    CHUNK_BYTES: int = 64 * 2**20
    source: str = dataclasses.field(default="packaged defaults", compare=False)

    def __post_init__(self) -> None:
        check_positive_int(self.N_REPS, "N_REPS")
        check_positive_int(self.N_BOOT, "N_BOOT")
        check_confidence_level(self.CONFIDENCE_LEVEL, "CONFIDENCE_LEVEL")
        check_seed(self.SEED, "SEED")
        check_n_jobs(self.N_JOBS, "N_JOBS")
        check_bool(self.BATCH_CI_BOOTSTRAP, "BATCH_CI_BOOTSTRAP")
        check_positive_int(self.CHUNK_BYTES, "CHUNK_BYTES")

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (for provenance metadata)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _run_config(file: Path) -> dict[str, Any]:
    """Execute a config file; a syntax error or exception becomes one ValueError naming file and line."""
    try:
        return runpy.run_path(str(file))
    except SyntaxError as exc:
        raise ValueError(f"config file `{file}` line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == file.resolve()]
        where = f" line {frames[-1].lineno}" if frames else ""
        raise ValueError(f"config file `{file}`{where}: {type(exc).__name__}: {exc}") from None


_SETTING_NAMES = tuple(f.name for f in dataclasses.fields(Settings) if f.name.isupper())


def load_settings(path: str | os.PathLike[str] | None = None, *, announce: bool = True) -> Settings:
    """Read study settings from a ``config.py`` file (executed as Python).

    Parameters
    ----------
    path : path-like, optional
        Config file to read.  Default: ``$SIMULATION_CONFIG`` if set (``off``:
        the packaged defaults), else ``./config.py`` if it exists, else the
        packaged defaults.
    announce : bool, default True
        Warn (once per process and file) when ``./config.py`` is picked up
        from the working folder; the command line announces it itself.

    Returns
    -------
    Settings
        Defaults overridden by the file's UPPER_CASE names; ``source`` names the file.

    Raises
    ------
    FileNotFoundError
        If an explicitly named file does not exist.
    ValueError
        If the file does not run (a syntax error or an exception: the message
        gives the file, the line and the error), sets an unknown name, or
        sets an invalid value.
    """
    if path is None:
        env = os.environ.get(CONFIG_ENV_VAR)
        if env and env.strip().lower() in CONFIG_OFF:
            return Settings()
        if env:
            path = env
        elif Path("config.py").is_file():
            path = "config.py"
            if announce and Path(path).resolve() not in _ANNOUNCED:
                _ANNOUNCED.add(Path(path).resolve())
                warnings.warn(f"settings read from {Path(path).resolve()} (config.py in the working folder, executed "
                              f"as Python); name a file with {CONFIG_ENV_VAR}=<path>, or skip it with "
                              f"{CONFIG_ENV_VAR}=off", UserWarning, stacklevel=2)  # fmt: skip
        else:
            return Settings()
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"config file `{file}` does not exist")
    namespace = _run_config(file)
    values = {k: v for k, v in namespace.items() if k.isupper()}
    unknown = sorted(set(values) - set(_SETTING_NAMES))
    if unknown:
        raise ValueError(f"config file `{file}` sets unknown setting(s) {unknown}; allowed: {list(_SETTING_NAMES)}")
    return Settings(**values, source=str(file))


def resolve_seed(seed: int | None) -> int:
    """``seed``, or ``SEED`` from the settings (:func:`load_settings`) when it is None: the one default seed
    of the command line and the Python API alike."""
    return load_settings().SEED if seed is None else seed
