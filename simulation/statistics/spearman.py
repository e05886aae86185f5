"""Spearman's rho as a statistic: its estimand for a scenario.

Spearman's kernels are the engine's (:mod:`simulation.engine._kernels`, :mod:`simulation.engine.ranks`); its
:class:`~simulation.statistics.statistic.Statistic` is ``SPEARMAN`` in :mod:`simulation.statistics.statistic`.
"""

from __future__ import annotations

from simulation.models import generators
from simulation.models.scenarios import DEFAULT_TRUTH_MCSE


def truth(scenario, target_mcse: float = DEFAULT_TRUTH_MCSE, *, calibration=None) -> generators.Truth:
    """Spearman's estimand for ``scenario`` and its Monte Carlo error: what coverage and bias are measured
    against.

    ``population``: ``rho`` itself, exact.  ``expected_sample``: the mean sample Spearman of datasets
    generated at the calibrated coefficient, measured with a control variate of known mean until its MCSE is
    at most ``target_mcse`` (:func:`simulation.models.generators.expected_sample_spearman`), on a stream of
    its own derived from the scenario's key (so it depends on the scenario and ``target_mcse`` only, not on a
    run's seed).  ``calibration``: the scenario's calibration when already at hand.
    """
    if scenario.estimand == "population":
        return generators.Truth(float(scenario.rho), 0.0, 0)
    coefficient = (calibration or scenario.calibration()).coefficient
    return generators.expected_sample_spearman(
        scenario.generator, scenario.counts, coefficient, scenario._truth_seed(), target_mcse=target_mcse,
        pool=scenario.pool,
    )  # fmt: skip
