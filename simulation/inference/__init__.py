"""Inference on one dataset for any statistic: the bootstrap engine and its public
:func:`~simulation.inference.bootstrap.bootstrap_ci_single` / ``bootstrap_ci_averaged``.

Imports statistics and below.
"""
