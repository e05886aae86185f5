"""Deprecated path of :mod:`simulation.infra.cache` (kept for one release)."""

from simulation._moved import forward

__getattr__, __dir__ = forward(__name__, "simulation.infra.cache")
