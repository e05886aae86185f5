"""Data-generating processes: tie templates and pools, the tied-x and continuous generators, their
calibration, and :class:`~simulation.models.scenarios.Scenario` with the study files.

A new generator goes here. Imports :mod:`simulation.engine` and below.
"""
