"""Deprecated path of :mod:`simulation.present.report` (kept for one release)."""

from simulation._moved import forward

__getattr__, __dir__ = forward(__name__, "simulation.present.report")
