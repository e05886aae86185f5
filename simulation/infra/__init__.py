"""Infrastructure: results folders and atomic writes (storage), the one fan-out point over cores or
Dask (parallel) and the user's calibration cache.

Imports :mod:`simulation.core` only.
"""
