"""Deprecated path of :mod:`simulation.toolkit.slo` (kept for one release)."""

from simulation._moved import forward

__getattr__, __dir__ = forward(__name__, "simulation.toolkit.slo")
