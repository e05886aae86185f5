"""Numerical engine: numba kernels, counter-based seeding, mergeable moments, midranks and tie groups,
interval formulas and p-values from null samples. Arrays in, arrays out: no statistic object, no model,
no file.

Imports :mod:`simulation.core` only.
"""
