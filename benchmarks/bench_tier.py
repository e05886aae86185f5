"""The ±0.001 precision tier of the default study, in full, with control variates, against brute force.

The tier is the precision that 129,700 plain datasets x 500 resamples give on
every method's mean interval endpoints, in each of the 88 default scenarios.
This script

1. times brute force on a representative fraction (one scenario per case,
   k = 7, heavy centre, x 10,000 plain datasets x 500 resamples, control
   variates off) and extrapolates linearly to 88 x 129,700, as before;
2. times each phase's cost per dataset (one block and one unit of those 4
   scenarios, one thread);
3. runs the whole tier for all 88 scenarios, in full, into a temporary
   results folder with the default worker processes, with the product's own
   command: ``run --target endpoints=0.0003 --n-boot 500`` restricted to the
   five bootstrap methods (:func:`simulation.study.runner.run_all_ci_scenarios`
   with ``targets``: a first round, then each scenario's own allocation of
   both phases, growing until every method's mean-endpoint MCSE holds).
   Then it checks every method's mean-endpoint MCSE against the brute-force
   one (``sd / sqrt(129,700)``, the SD from the same run);
4. times ``--target coverage=0.002`` for the 88 scenarios at the default
   1,000 resamples.

Prints wall times, the ratio to brute force, the achieved MCSEs and the disk
used.  Goals (issue 20): the tier in <= 45 s on 2 cores, >= 50x faster than
brute force; blocks <= 50 MB; the coverage target in <= 2 minutes.
Compilation and worker start-up are excluded (a warm-up run).

Run: ``python benchmarks/bench_tier.py`` (about 6 minutes on 2 cores), or
``--skip-target`` for the tier alone.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time

import numpy as np

from simulation.engine.intervals import BOOTSTRAP_METHODS
from simulation.infra import cache
from simulation.models.scenarios import load_study
from simulation.statistics import spearman
from simulation.study.blocks import UnitContext, phase_costs
from simulation.study.runner import run_all_ci_scenarios

TIER_REPS, TIER_BOOT = 129_700, 500
BRUTE_SAMPLE_REPS = 10_000
FIRST_REPS = 1_000
#: The mean-endpoint MCSE of the tier: 129,700 plain datasets give sd / 360, about 0.0003 at the default
#: study's endpoint SDs (0.10-0.12).
TIER_TARGET = 0.0003


def _timed(**kwargs):
    t0 = time.perf_counter()
    result = run_all_ci_scenarios(**kwargs)
    return result, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-target", action="store_true", help="skip the --target-mcse 0.002 run")
    args = parser.parse_args()
    study = load_study("karwowski2018")
    sample = [s for s in study if s.k == 7 and s.template == "heavy_center"]
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[cache.ENV] = f"{tmp}/cache"  # cold: no calibration measured by an earlier run is reused
        run_all_ci_scenarios(sample, n_reps=200, n_boot=TIER_BOOT, seed=1, out=f"{tmp}/warm")

        # 1. brute force on a fraction
        _, brute_s = _timed(
            scenarios=sample, n_reps=BRUTE_SAMPLE_REPS, n_boot=TIER_BOOT, seed=2, control_variates=False,
            out=f"{tmp}/brute",
        )  # fmt: skip
        brute_full = brute_s * (len(study) * TIER_REPS) / (len(sample) * BRUTE_SAMPLE_REPS)

        # 2. the cost of each phase per dataset and core
        contexts = [UnitContext(TIER_BOOT, 0.95, 3, s.calibration(), spearman.truth(s)) for s in sample]
        c_boot, c_cheap = phase_costs(sample, contexts, boot_reps=200, cheap_reps=10_000)

        # 3. the tier, in full, by the product's command
        tier, tier_s = _timed(
            scenarios=study, n_reps=FIRST_REPS, n_boot=TIER_BOOT, seed=4, targets={"endpoints": TIER_TARGET},
            methods=list(BOOTSTRAP_METHODS), out=f"{tmp}/tier",
        )  # fmt: skip
        allocation = tier.provenance["settings"]["allocation"]
        ms = np.array([v[0] for v in allocation.values()])
        ns = np.array([v[1] for v in allocation.values()])
        tc = tier.coverage
        boots = tc[tc["method_kind"] == "bootstrap"]
        worst = 0.0
        for end in ("lower", "upper"):
            brute_mcse = boots[f"sd_ci_{end}"] / math.sqrt(TIER_REPS)
            worst = max(worst, float((boots[f"mean_ci_{end}_mcse"] / brute_mcse).max()))
        disk_mb = tier.provenance["block_bytes"] / 1e6
        print(f"brute force: {len(sample)} scenarios x {BRUTE_SAMPLE_REPS} x {TIER_BOOT} in {brute_s:.1f} s -> "
              f"88 x {TIER_REPS} x {TIER_BOOT} extrapolated {brute_full / 60:.1f} min on {cores} cores")
        print(f"cost per dataset and core: bootstrap {c_boot * 1e6:.0f} us, cheap phase {c_cheap * 1e6:.1f} us "
              f"(ratio {c_boot / c_cheap:.0f})")
        print(f"allocation per scenario (run --target endpoints={TIER_TARGET}): n_reps {ms.min()}-{ms.max()} "
              f"(median {np.median(ms):.0f}), n_reps_cheap {ns.min()}-{ns.max()} (median {np.median(ns):.0f})")
        print(f"tier with control variates, all 88 scenarios in full: {tier_s:.1f} s = {tier_s / 60:.2f} min "
              f"(goal <= 45 s); {brute_full / tier_s:.1f}x faster than brute force (goal >= 50x)")
        ends = ["variance_ratio_mean_ci_lower", "variance_ratio_mean_ci_upper"]
        four = boots[boots["method"] != "studentized"]
        own = ["residual_share_mean_ci_lower", "residual_share_mean_ci_upper"]
        cheap_own = ["cheap_share_mean_ci_lower", "cheap_share_mean_ci_upper"]
        print(f"achieved: largest (MCSE / brute-force MCSE) of a mean endpoint over bootstrap methods and scenarios "
              f"{worst:.3f} (<= 1 means equal or better)")
        print(f"variance ratios (medians over scenarios and methods; the four classic methods in brackets): mean "
              f"endpoints {np.nanmedian(boots[ends]):.1f} [{np.nanmedian(four[ends]):.1f}], coverage "
              f"{boots['variance_ratio_coverage'].median():.1f} [{four['variance_ratio_coverage'].median():.1f}]; "
              f"the bootstrapped datasets' own (1 / residual share): endpoints "
              f"{np.nanmedian(1 / four[own].to_numpy()):.1f}, coverage "
              f"{np.nanmedian(1 / four['residual_share_coverage']):.1f}; cheap phase's share of the plain variance: "
              f"endpoints {np.nanmedian(four[cheap_own]):.4f}, coverage {four['cheap_share_coverage'].median():.3f}")
        print(f"truth MCSE of expected-sample scenarios <= {tc['rho_true_mcse'].max():.5f}; blocks on disk "
              f"{disk_mb:.1f} MB (goal <= 50 MB; brute force's replicate blocks were about 2.7 GB)")

        if not args.skip_target:
            target, target_s = _timed(scenarios=study, n_reps=200, n_boot=1000, seed=5, targets={"coverage": 0.002},
                                      out=f"{tmp}/target")  # fmt: skip
            t = target.coverage
            b = t[t["method_kind"] == "bootstrap"]
            print(f"--target coverage=0.002 (1000 resamples): {target_s:.1f} s = {target_s / 60:.2f} min "
                  f"(goal <= 2 min); largest coverage MCSE {t['coverage_mcse'].max():.4f}; bootstrapped datasets per "
                  f"scenario {b['n_reps'].min()}-{b['n_reps'].max()}, cheap {b['n_reps_cheap'].min()}-"
                  f"{b['n_reps_cheap'].max()}; plain would need "
                  f"{math.ceil(0.95 * 0.05 / 0.002**2)} bootstrapped datasets per scenario")


if __name__ == "__main__":
    main()
