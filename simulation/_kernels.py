"""Deprecated path of :mod:`simulation.engine._kernels` (kept for one release)."""

from simulation._moved import forward

__getattr__, __dir__ = forward(__name__, "simulation.engine._kernels")
