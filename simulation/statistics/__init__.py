"""The statistics: one :class:`~simulation.statistics.statistic.Statistic` per statistic behind one
interface, the registry (:func:`~simulation.statistics.statistic.get_statistic`), Kendall's tau-b
and Pearson's r (their kernels beside them), and a user's statistic built from parts (custom).

A new statistic goes here, plus its line in the registry. Imports models, engine and below.
"""

from simulation.statistics.statistic import (
    BUILTIN,
    KENDALL_B,
    PEARSON,
    SPEARMAN,
    STATISTICS,
    Statistic,
    check_user_statistic,
    get_statistic,
    jackknife_se,
    load,
    register,
)

__all__ = [
    "Statistic",
    "SPEARMAN",
    "KENDALL_B",
    "jackknife_se",
    "PEARSON",
    "STATISTICS",
    "BUILTIN",
    "load",
    "get_statistic",
    "register",
    "check_user_statistic",
]
