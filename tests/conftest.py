"""Shared fixtures: every random test input comes from a fixed seed."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from simulation.core.settings import CONFIG_ENV_VAR
from tests.reference import tied_x

# The repository's config.py named explicitly (as SIMULATION_CONFIG), before any test module is collected (some
# build settings at import), so that library calls read the same settings as from the repository's root without
# the warning for a config.py picked up from the working folder (tests of that warning clear the variable).
os.environ.setdefault(CONFIG_ENV_VAR, str(Path(__file__).resolve().parents[1] / "config.py"))


@pytest.fixture
def tied_pair() -> tuple[np.ndarray, np.ndarray]:
    """n = 30 with 4 tied x values and y rounded to create ties in y as well."""
    rng = np.random.default_rng(20240601)
    x = tied_x(rng, [9, 7, 8, 6])
    y = np.round(0.4 * x + rng.normal(size=30), 1)
    return x, y


@pytest.fixture
def tied_batch() -> tuple[np.ndarray, np.ndarray]:
    """12 replicates of n = 25: heavy ties in x (3-5 values) and in y."""
    rng = np.random.default_rng(7)
    xs, ys = [], []
    for r in range(12):
        counts = [[10, 8, 7], [5, 5, 5, 5, 5], [12, 4, 5, 4]][r % 3]
        x = tied_x(rng, counts)
        xs.append(x)
        ys.append(np.round(x * 0.3 + rng.normal(size=25), 0))
    return np.array(xs), np.array(ys)


_CACHE_BEFORE: list[str | None] = []


def pytest_configure(config: pytest.Config) -> None:
    """In the main process, before any test or worker process starts: one calibration cache of the tests' own
    (never the user's ~/.cache), which the workers of ``pytest -n`` and every command a test runs inherit and
    share (its entries are written atomically, so concurrent writers are safe)."""
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the main process made it
        return
    from simulation.infra import cache

    _CACHE_BEFORE.append(os.environ.get(cache.ENV))
    os.environ[cache.ENV] = tempfile.mkdtemp(prefix="simulation-tests-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not _CACHE_BEFORE:
        return
    from simulation.infra import cache

    shutil.rmtree(os.environ[cache.ENV], ignore_errors=True)
    before = _CACHE_BEFORE.pop()
    if before is None:
        os.environ.pop(cache.ENV, None)
    else:
        os.environ[cache.ENV] = before


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full-size",
        action="store_true",
        default=False,
        help="run the slow statistical checks at full size (5x the datasets and runs; CI runs them reduced)",
    )


@pytest.fixture(scope="session")
def size_factor(request: pytest.FixtureRequest) -> int:
    """How many times the reduced size a ``slow`` test runs: 1 by default (CI), 5 with ``--full-size``.
    Each slow test derives its tolerance from the size it runs at, so its stated false-alarm rate holds
    at both sizes."""
    return 5 if request.config.getoption("--full-size") else 1
