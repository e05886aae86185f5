"""Choosing the statistics of a run: names checked and loaded, what a worker needs, what the identity records.

One rule lives here for every layer above: :data:`DEFAULT` (Spearman's rho, the statistic of every run
before statistics became a dimension) keeps the layout it had, so that results folders from then resume:
its blocks are stored under the bare key (:func:`unit_key`) and a run of it alone has no ``statistics``
entry in its identity (:func:`identity_statistics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simulation.core.validation import RunError
from simulation.models.scenarios import Scenario
from simulation.statistics import custom
from simulation.statistics.statistic import (
    BUILTIN,
    STATISTICS,
    Statistic,
    check_user_statistic,
    get_statistic,
    register,
)

#: The statistic of a run that names none.
DEFAULT = "spearman"


def unit_key(key: str, statistic: str) -> str:
    """Where a unit's blocks live: ``key`` for :data:`DEFAULT`, ``<key>__<statistic>`` for any other."""
    return key if statistic == DEFAULT else f"{key}__{statistic}"


def identity_statistics(names: Sequence[str]) -> dict[str, Any]:
    """The identity's ``statistics`` entry: none for :data:`DEFAULT` alone, else the names in order."""
    return {} if tuple(names) == (DEFAULT,) else {"statistics": list(names)}


def check_statistics(statistics: str | Statistic | Sequence[str | Statistic] | None) -> tuple[str, ...]:
    """Validate the statistics of a run and return their names; None = Spearman alone.

    Each is a built-in name, ``"package.module:function"`` (a statistic of
    your own, loaded and registered under its name) or a
    :class:`~simulation.statistics.statistic.Statistic`; a string may be comma-separated.
    """
    if statistics is None:
        return (DEFAULT,)
    if isinstance(statistics, str):
        statistics = [v.strip() for v in statistics.split(",")]
    elif isinstance(statistics, Statistic):
        statistics = [statistics]
    items = list(statistics)
    names = []
    for item in items:
        if isinstance(item, Statistic):
            try:
                names.append(register(item).name)
            except ValueError as exc:
                raise RunError(str(exc)) from None
        elif isinstance(item, str) and (item in STATISTICS or ":" in item):
            try:
                names.append(get_statistic(item).name)
            except (ValueError, TypeError) as exc:
                raise RunError(str(exc)) from None
        else:
            names.append(None)
    if not items or None in names or len(set(names)) != len(names):
        raise RunError(
            f"`statistics` must be a non-empty list of distinct statistics: names from {list(BUILTIN)} or "
            f"'package.module:function' (your own), got {[getattr(v, 'name', v) for v in items]}"
        )
    return tuple(names)


def statistic_digests(names: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``(name, digest)`` of the statistics built through :mod:`simulation.statistics.custom` among ``names``."""
    return tuple((name, get_statistic(name).digest) for name in names if get_statistic(name).digest is not None)


def portable(name: str) -> str | Statistic:
    """What a worker process needs to find a statistic: the name of a built-in, the object itself (pickled
    with its numba functions) for one built from user parts."""
    stat = get_statistic(name)
    return stat if stat.digest is not None and name not in BUILTIN else name


def validate_statistics(names: Sequence[str], scenario: Scenario, n_max: int | None = None) -> None:
    """Run every user statistic once, serially, on one dataset of ``scenario`` (before any parallel work or
    anything is written): a clear error naming it otherwise (:func:`simulation.statistics.custom.validate`);
    a :class:`~simulation.statistics.custom.JackknifeCostWarning` for one without ``jackknife=`` where the
    largest n of the run, ``n_max`` (default the scenario's), is above its budget."""
    for name in names:
        stat = get_statistic(name)
        if stat.user is not None:
            custom.warn_jackknife_cost(stat.user, scenario.n if n_max is None else n_max)
            x, y = scenario.generate(1, 0)
            try:
                check_user_statistic(stat, x[0], y[0])
            except (ValueError, TypeError) as exc:
                raise RunError(str(exc)) from None
