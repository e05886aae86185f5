"""Planning a study: how many datasets a precision target needs, and what they cost, from a pilot run.

A pilot (a small run of the study) gives each scenario x statistic its endpoints' SDs and the variance
shares of the control-variate estimators; timing one bootstrap block and one cheap unit per scenario (the
first four, one thread, compilation excluded) gives the cost per dataset of each phase. Each row's
allocation for a target is the one ``run --target`` gives it after the same first round
(:func:`simulation.study.runner.target_allocation`, the same code, with the measured cost ratio);
plain runs need ``sigma^2 / target^2`` datasets (Morris, White & Crowther 2019, Table 6).
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from simulation.models.generators import Truth
from simulation.models.scenarios import Scenario
from simulation.statistics.registry import portable
from simulation.study.blocks import BLOCK_REPS, CHEAP_UNIT_BLOCKS, UnitContext, phase_costs
from simulation.study.runner import TARGET_MARGIN, check_targets, run_all_ci_scenarios, target_allocation

#: The original study's precision tiers: (half-width of the 95% Monte Carlo interval of a mean
#: interval endpoint, n_reps it specifies), all at TIER_N_BOOT resamples.
PRECISION_TIERS = ((0.01, 1_300), (0.002, 32_500), (0.001, 129_700))
TIER_N_BOOT = 500
Z95 = 1.959963984540054


@dataclasses.dataclass(frozen=True)
class Pilot:
    """What a pilot run measured."""

    coverage: pd.DataFrame
    n_reps: int
    n_boot: int
    #: Seconds per dataset and core of each phase, ``(bootstrap, cheap)``, by statistic.
    costs: dict[str, tuple[float, float]]
    #: Bytes of the largest bootstrap block and cheap unit.
    block_bytes: tuple[int, int]

    @property
    def costs_per_dataset(self) -> tuple[float, float]:
        """Both phases' cost of a dataset of the run, which computes every statistic."""
        return sum(c[0] for c in self.costs.values()), sum(c[1] for c in self.costs.values())

    @property
    def sd_endpoint(self) -> float:
        return float(max(self.coverage["sd_ci_lower"].max(), self.coverage["sd_ci_upper"].max()))

    @property
    def cheap_first(self) -> int:
        cov = self.coverage
        return int(cov.loc[cov["method_kind"] == "bootstrap", "n_reps_cheap"].max())


def run_pilot(
    scenarios: Sequence[Scenario], statistics, *, n_reps: int, n_boot: int, confidence_level: float, seed: int,
    n_jobs: int, batch_bootstrap: bool, chunk_bytes: int, backend: str, scheduler: str | None,
) -> Pilot:  # fmt: skip
    """Run the pilot (in a temporary folder) and time each statistic's phases on the first four scenarios."""
    with tempfile.TemporaryDirectory() as tmp:
        result = run_all_ci_scenarios(
            scenarios, n_reps=n_reps, n_boot=n_boot, confidence_level=confidence_level, seed=seed, n_jobs=n_jobs,
            batch_bootstrap=batch_bootstrap, chunk_bytes=chunk_bytes, backend=backend, scheduler=scheduler,
            statistics=statistics, out=Path(tmp) / "pilot",
        )  # fmt: skip
        files = list((Path(tmp) / "pilot" / "blocks").rglob("*.parquet"))
        per_boot_block = max((f.stat().st_size for f in files if f.name.startswith("b")), default=0)
        per_cheap_unit = max((f.stat().st_size for f in files if f.name.startswith("c")), default=0)
    pilot = result.coverage
    timed = scenarios[:4]
    costs = {}
    for statistic in dict.fromkeys(pilot["statistic"]):
        contexts = []
        for s in timed:
            truth = pilot.loc[(pilot["scenario"] == s.key) & (pilot["statistic"] == statistic), "rho_true"].iloc[0]
            contexts.append(UnitContext(n_boot, confidence_level, seed, s.calibration(), Truth(float(truth), 0.0, 0),
                                        statistic=portable(statistic)))  # fmt: skip
        costs[statistic] = phase_costs(timed, contexts)
    return Pilot(pilot, n_reps, n_boot, costs, (per_boot_block, per_cheap_unit))


@dataclasses.dataclass(frozen=True)
class TierPlan:
    """One row of a plan: a target's datasets and costs, plain and with control variates."""

    name: str
    half_widths: str
    plain_reps: int
    plain_seconds: float
    #: Each scenario x statistic's two-phase allocation.
    reps: list[int]
    reps_cheap: list[int]
    cv_seconds: float
    disk_bytes: int


def plan_tier(pilot: Pilot, tier: tuple[str, dict[str, float], int | None], cores: int) -> TierPlan:
    """The datasets and runtime (on ``cores`` cores) of one target: ``(label, {measure: MCSE}, published
    n_reps or None)``, as :func:`plan_tiers` gives them."""
    name, targets, tier_reps = tier
    plain_s = cv_s = 0.0
    ms, ns, n_plains, disk = [], [], [], 0
    per_boot_block, per_cheap_unit = pilot.block_bytes
    for (_, statistic), g in pilot.coverage.groupby(["scenario", "statistic"], sort=False):
        cb, cc = pilot.costs[statistic]
        first = (pilot.n_reps, pilot.cheap_first)
        m, big_n = target_allocation(g, *first, targets, cb / cc) or first
        n_plain = tier_reps or plain_reps(g, targets)
        ms.append(m)
        ns.append(big_n)
        n_plains.append(n_plain)
        plain_s += n_plain * cb / cores
        cv_s += (m * cb + big_n * cc) / cores
        disk += -(-m // BLOCK_REPS) * per_boot_block
        disk += -(-big_n // (BLOCK_REPS * CHEAP_UNIT_BLOCKS)) * per_cheap_unit
    half = ", ".join(f"±{Z95 * v:.3g}" for v in dict.fromkeys(targets.values()))
    return TierPlan(name, half, max(n_plains), plain_s, ms, ns, cv_s, disk)


def plan_tiers(given: list[str] | None) -> list[tuple[str, dict[str, float], int | None]]:
    """``(label, {measure: MCSE}, published n_reps or None)`` per row of ``plan``: the study's tiers (95%
    half-widths of the mean endpoints) by default; ``MEASURE=MCSE`` targets as ``run --target`` reads them;
    a bare number, deprecated, as a 95% half-width of the mean endpoints (its MCSE is half-width / 1.96)."""

    if not given:
        return [(f"endpoints={h / Z95:.3g}", {"mean_ci_lower": h / Z95, "mean_ci_upper": h / Z95}, reps)
                for h, reps in PRECISION_TIERS]  # fmt: skip
    tiers = []
    for text in given:
        if "=" in text:
            targets = check_targets([text])
            tiers.append((text.strip(), targets, None))
            continue
        half = float(text)
        mcse = half / Z95
        warnings.warn(
            f"`plan --target {text}` reads {text} as a 95% half-width of the mean endpoints (MCSE {mcse:.4g}); "
            f"this form is deprecated: write `--target endpoints={mcse:.4g}`, an MCSE as `run --target` takes it",
            FutureWarning, stacklevel=2,
        )  # fmt: skip
        tiers.append((f"endpoints={mcse:.4g}", {"mean_ci_lower": mcse, "mean_ci_upper": mcse}, None))
    return tiers


def plain_reps(rows: pd.DataFrame, targets: dict[str, float]) -> int:
    """Plain datasets for every targeted measure of every row to reach its MCSE: ``sigma^2 / target^2`` with
    ``sigma^2 = plain_mcse^2 n_reps`` measured in the pilot (Morris et al. 2019, Table 6)."""
    need = 1
    for measure, target in targets.items():
        sigma2 = rows[f"{measure}_plain_mcse"] ** 2 * rows["n_reps"]
        need = max(need, math.ceil(TARGET_MARGIN * float(sigma2.max()) / target**2))
    return need
