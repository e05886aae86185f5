"""Monte Carlo studies of bootstrap and asymptotic inference for Spearman's rho."""

__version__ = "0.1.0"  # first, so that submodules can import it

from simulation.bootstrap import (
    AveragedBootstrapResult,
    SingleBootstrapResult,
    bootstrap_ci_averaged,
    bootstrap_ci_single,
    summarize_replicates,
)
from simulation.continuous import (
    bivariate_normal_spearman,
    bivariate_t_spearman,
    generate_bivariate_normal_batch,
    generate_bivariate_t_batch,
    generate_plackett_batch,
    plackett_spearman,
)
from simulation.custom import dense_ranks
from simulation.generators import (
    Calibration,
    calibrate_rank_mixing,
    calibrate_tied,
    calibrate_tied_grid,
    generate_cumulative_aluminum_batch,
    generate_rank_mixing_batch,
    generate_tied_batch,
    load_pool,
    lognormal_parameters,
    tie_counts,
)
from simulation.intervals import BOOTSTRAP_METHODS, FISHER_Z_VARIANCES, fisher_z_ci
from simulation.power import (
    PowerSettings,
    asymptotic_power,
    permutation_null,
    permutation_pvalues,
    power_curve,
    run_power_study,
)
from simulation.runner import ALL_METHODS, TargetNotMetWarning, read_provenance, run_all_ci_scenarios
from simulation.scenarios import Scenario, load_study, scenario_seed
from simulation.seeding import child_seed
from simulation.settings import Settings, load_settings
from simulation.slo import compliance_report, regression_check, slo_compliance, threshold_compliance
from simulation.spearman import midranks, spearman_rho_2d
from simulation.statistics import PEARSON, STATISTICS, Statistic, get_statistic
from simulation.toolkit import (
    BootstrapResult,
    aggregate_campaign_results,
    bootstrap_ci,
    compute_lower_bound_95,
    compute_metric_ci,
    lower_bound_95,
)

__all__ = [
    "PEARSON",
    "STATISTICS",
    "Statistic",
    "dense_ranks",
    "get_statistic",
    "BootstrapResult",
    "aggregate_campaign_results",
    "bootstrap_ci",
    "compliance_report",
    "compute_lower_bound_95",
    "lower_bound_95",
    "compute_metric_ci",
    "regression_check",
    "slo_compliance",
    "threshold_compliance",
    "ALL_METHODS",
    "PowerSettings",
    "asymptotic_power",
    "permutation_null",
    "permutation_pvalues",
    "power_curve",
    "read_provenance",
    "run_all_ci_scenarios",
    "TargetNotMetWarning",
    "run_power_study",
    "BOOTSTRAP_METHODS",
    "FISHER_Z_VARIANCES",
    "AveragedBootstrapResult",
    "Calibration",
    "Scenario",
    "Settings",
    "SingleBootstrapResult",
    "bootstrap_ci_averaged",
    "bootstrap_ci_single",
    "bivariate_normal_spearman",
    "bivariate_t_spearman",
    "calibrate_rank_mixing",
    "calibrate_tied",
    "calibrate_tied_grid",
    "generate_bivariate_normal_batch",
    "generate_bivariate_t_batch",
    "generate_cumulative_aluminum_batch",
    "generate_plackett_batch",
    "generate_rank_mixing_batch",
    "generate_tied_batch",
    "load_pool",
    "lognormal_parameters",
    "plackett_spearman",
    "load_study",
    "scenario_seed",
    "tie_counts",
    "child_seed",
    "fisher_z_ci",
    "load_settings",
    "midranks",
    "spearman_rho_2d",
    "summarize_replicates",
]
