"""Deprecated path of :mod:`simulation.cli.commands` (kept for one release)."""

from simulation._moved import forward

__getattr__, __dir__ = forward(__name__, "simulation.cli.commands")
