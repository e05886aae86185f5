"""Monte Carlo studies of bootstrap and asymptotic inference for rank and other correlations with tied x.

The package is built by layer; each folder's first docstring says what it holds and what it may import:
``core`` (validation, settings), ``engine`` (kernels, seeding, interval formulas), ``infra`` (storage,
parallel, cache), ``models`` (generators, scenarios), ``present`` (report, figures), ``statistics``
(one object per statistic, the registry), ``inference`` (the bootstrap on one dataset), ``study``
(coverage studies), ``power``, ``analyze``, ``toolkit`` and ``cli``.

The names below load on first use (PEP 562), so ``import simulation`` and the command line's help start
without compiling anything.
"""

from __future__ import annotations

import importlib
from typing import Any

from simulation.core.version import __version__ as __version__

#: Each public name and the module that defines it.
_HOMES = {
    "PEARSON": "simulation.statistics.statistic",
    "STATISTICS": "simulation.statistics.statistic",
    "Statistic": "simulation.statistics.statistic",
    "dense_ranks": "simulation.statistics.custom",
    "get_statistic": "simulation.statistics.statistic",
    "BootstrapResult": "simulation.toolkit.bootstrap",
    "aggregate_campaign_results": "simulation.toolkit.bootstrap",
    "bootstrap_ci": "simulation.toolkit.bootstrap",
    "compliance_report": "simulation.toolkit.slo",
    "compute_lower_bound_95": "simulation.toolkit.bootstrap",
    "lower_bound_95": "simulation.toolkit.bootstrap",
    "compute_metric_ci": "simulation.toolkit.bootstrap",
    "regression_check": "simulation.toolkit.slo",
    "slo_compliance": "simulation.toolkit.slo",
    "threshold_compliance": "simulation.toolkit.slo",
    "ALL_METHODS": "simulation.study.blocks",
    "PowerSettings": "simulation.power.curves",
    "asymptotic_power": "simulation.power.curves",
    "permutation_null": "simulation.power.curves",
    "permutation_pvalues": "simulation.power.curves",
    "power_curve": "simulation.power.curves",
    "read_provenance": "simulation.study.runner",
    "run_all_ci_scenarios": "simulation.study.runner",
    "TargetNotMetWarning": "simulation.study.runner",
    "run_power_study": "simulation.power.curves",
    "BOOTSTRAP_METHODS": "simulation.engine.intervals",
    "FISHER_Z_VARIANCES": "simulation.engine.intervals",
    "AveragedBootstrapResult": "simulation.inference.bootstrap",
    "Calibration": "simulation.models.generators",
    "Scenario": "simulation.models.scenarios",
    "Settings": "simulation.core.settings",
    "SingleBootstrapResult": "simulation.inference.bootstrap",
    "bootstrap_ci_averaged": "simulation.inference.bootstrap",
    "bootstrap_ci_single": "simulation.inference.bootstrap",
    "bivariate_normal_spearman": "simulation.models.continuous",
    "bivariate_t_spearman": "simulation.models.continuous",
    "calibrate_rank_mixing": "simulation.models.generators",
    "calibrate_tied": "simulation.models.generators",
    "calibrate_tied_grid": "simulation.models.generators",
    "generate_bivariate_normal_batch": "simulation.models.continuous",
    "generate_bivariate_t_batch": "simulation.models.continuous",
    "generate_cumulative_aluminum_batch": "simulation.models.generators",
    "generate_plackett_batch": "simulation.models.continuous",
    "generate_rank_mixing_batch": "simulation.models.generators",
    "generate_tied_batch": "simulation.models.generators",
    "load_pool": "simulation.models.generators",
    "lognormal_parameters": "simulation.models.generators",
    "plackett_spearman": "simulation.models.continuous",
    "load_study": "simulation.models.scenarios",
    "scenario_seed": "simulation.models.scenarios",
    "tie_counts": "simulation.models.generators",
    "child_seed": "simulation.engine.seeding",
    "fisher_z_ci": "simulation.engine.intervals",
    "load_settings": "simulation.core.settings",
    "midranks": "simulation.engine.ranks",
    "spearman_rho_2d": "simulation.engine.ranks",
    "summarize_replicates": "simulation.inference.bootstrap",
}

__all__ = list(_HOMES)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    try:  # a submodule or subpackage: ``simulation.runner`` after ``import simulation``
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
