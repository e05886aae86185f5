"""The measurement toolkit: seeds' ``bootstrap_ci``, the BCa lower bound, SLO and regression checks
and their self-check study.

Imports study and below (it uses row metrics and the fan-out).
"""

from simulation.toolkit.bootstrap import (
    BCA_CONVENTIONS,
    STATUS_BCA_BIAS_UNDEFINED,
    TOOLKIT_METHODS,
    WARN_NO_SPREAD,
    WARN_ONE,
    WARN_TWO,
    BootstrapResult,
    LowerBound,
    aggregate_campaign_results,
    bootstrap_ci,
    compute_lower_bound_95,
    compute_metric_ci,
    log,
    lower_bound_95,
)

__all__ = [
    "log",
    "TOOLKIT_METHODS",
    "WARN_ONE",
    "WARN_TWO",
    "WARN_NO_SPREAD",
    "BootstrapResult",
    "bootstrap_ci",
    "compute_metric_ci",
    "aggregate_campaign_results",
    "BCA_CONVENTIONS",
    "STATUS_BCA_BIAS_UNDEFINED",
    "LowerBound",
    "compute_lower_bound_95",
    "lower_bound_95",
]
