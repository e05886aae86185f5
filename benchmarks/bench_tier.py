"""The ±0.001 precision tier of the default study, in full, with control variates, against brute force.

The tier is the precision that 129,700 plain datasets x 500 resamples give on
every method's mean interval endpoints, in each of the 88 default scenarios.
This script

1. times brute force on a representative fraction (one scenario per case,
   k = 7, heavy centre, x 10,000 plain datasets x 500 resamples, control
   variates off) and extrapolates linearly to 88 x 129,700, as before;
2. runs a short pilot (those 4 scenarios, 2,000 bootstrapped datasets) for
   the cost per dataset of each phase and the smallest variance ratio of a
   mean endpoint over the bootstrap methods, and allocates the two phases
   (:func:`simulation.commands.two_phase_allocation`, with a 15% margin on
   the ratio);
3. runs the whole tier for all 88 scenarios, in full, into a temporary
   results folder with the default worker processes, and checks every
   bootstrap method's mean-endpoint MCSE against the brute-force one
   (``sd / sqrt(129,700)``, the SD from the same run);
4. times ``--target-mcse 0.002`` on coverage for the 88 scenarios at the
   default 1,000 resamples.

Prints wall times, the ratio to brute force, the achieved MCSEs and the disk
used.  Goals: the tier in <= 2 minutes on 2 cores (>= 14x faster than brute
force at equal or better MCSE), blocks <= 50 MB; the coverage target in <= 3
minutes.  Compilation and worker start-up are excluded (a warm-up run).

Run: ``python benchmarks/bench_tier.py`` (about 8 minutes on 2 cores), or
``--skip-target`` for the tier alone.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time

import numpy as np

from simulation.blocks import UnitContext, phase_costs
from simulation.commands import two_phase_allocation
from simulation.runner import residual_share, run_all_ci_scenarios
from simulation.scenarios import load_study

TIER_REPS, TIER_BOOT = 129_700, 500
BRUTE_SAMPLE_REPS = 10_000
PILOT_REPS = 2_000
MARGIN = 0.85


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
        run_all_ci_scenarios(sample, n_reps=200, n_boot=TIER_BOOT, seed=1, out=f"{tmp}/warm")

        # 1. brute force on a fraction
        _, brute_s = _timed(
            scenarios=sample, n_reps=BRUTE_SAMPLE_REPS, n_boot=TIER_BOOT, seed=2, control_variates=False,
            out=f"{tmp}/brute",
        )  # fmt: skip
        brute_full = brute_s * (len(study) * TIER_REPS) / (len(sample) * BRUTE_SAMPLE_REPS)

        # 2. pilot: costs (one block and one unit per scenario, one thread) and variance ratios
        t0 = time.perf_counter()
        contexts = [UnitContext(TIER_BOOT, 0.95, 3, s.calibration(), s.truth()) for s in sample]
        c_boot, c_cheap = phase_costs(sample, contexts, boot_reps=200, cheap_reps=10_000)
        cheap_reps = 40 * PILOT_REPS
        pilot = run_all_ci_scenarios(sample, n_reps=PILOT_REPS, n_boot=TIER_BOOT, seed=3, n_reps_cheap=cheap_reps)
        cov = pilot.coverage
        boot_rows = cov[cov["method_kind"] == "bootstrap"]
        reported = float(boot_rows[["variance_ratio_mean_ci_lower", "variance_ratio_mean_ci_upper"]].min().min())
        ratio = 1 / residual_share(reported, PILOT_REPS, cheap_reps)  # without the pilot's cheap-phase term
        m, big_n = two_phase_allocation(TIER_REPS, ratio * MARGIN, c_boot, c_cheap)
        pilot_s = time.perf_counter() - t0

        # 3. the tier, in full
        tier, tier_s = _timed(
            scenarios=study, n_reps=m, n_boot=TIER_BOOT, seed=4, n_reps_cheap=big_n, truth_mcse=0.0001,
            out=f"{tmp}/tier",
        )  # fmt: skip
        tc = tier.coverage
        boots = tc[tc["method_kind"] == "bootstrap"]
        worst = 0.0
        for end in ("lower", "upper"):
            brute_mcse = boots[f"sd_ci_{end}"] / math.sqrt(TIER_REPS)
            worst = max(worst, float((boots[f"mean_ci_{end}_mcse"] / brute_mcse).max()))
        asym = tc[tc["method_kind"] == "asymptotic"]
        worst_asym = max(
            float((asym[f"mean_ci_{e}_mcse"] / (asym[f"sd_ci_{e}"] / math.sqrt(TIER_REPS))).max())
            for e in ("lower", "upper")
        )
        disk_mb = tier.provenance["block_bytes"] / 1e6
        print(f"brute force: {len(sample)} scenarios x {BRUTE_SAMPLE_REPS} x {TIER_BOOT} in {brute_s:.1f} s -> "
              f"88 x {TIER_REPS} x {TIER_BOOT} extrapolated {brute_full / 60:.1f} min on {cores} cores")
        print(f"pilot ({pilot_s:.0f} s): per dataset and core, bootstrap {c_boot * 1e6:.0f} us, cheap phase "
              f"{c_cheap * 1e6:.1f} us (ratio {c_boot / c_cheap:.0f}); smallest endpoint variance ratio {ratio:.1f} "
              f"(x {MARGIN} margin) -> n_reps {m}, n_reps_cheap {big_n} per scenario")
        print(f"tier with control variates, all 88 scenarios in full: {tier_s:.1f} s = {tier_s / 60:.2f} min "
              f"(goal <= 2 min); {brute_full / tier_s:.1f}x faster than brute force (goal >= 14x)")
        ends = ["variance_ratio_mean_ci_lower", "variance_ratio_mean_ci_upper"]
        four = boots[boots["method"] != "studentized"]
        share = np.vectorize(residual_share)
        print(f"achieved: largest (MCSE / brute-force MCSE) of a mean endpoint over bootstrap methods and scenarios "
              f"{worst:.3f} (<= 1 means equal or better), asymptotic methods {worst_asym:.3f}")
        print(f"variance ratios (medians over scenarios and methods; the four classic methods in brackets): mean "
              f"endpoints {np.nanmedian(boots[ends]):.1f} [{np.nanmedian(four[ends]):.1f}], coverage "
              f"{boots['variance_ratio_coverage'].median():.1f} [{four['variance_ratio_coverage'].median():.1f}]; "
              f"without the cheap phase's term (the controls' own): endpoints "
              f"{np.nanmedian(1 / share(four[ends].to_numpy(), m, big_n)):.1f}, coverage "
              f"{np.nanmedian(1 / share(four['variance_ratio_coverage'].to_numpy(), m, big_n)):.1f}")
        print(f"truth MCSE of expected-sample scenarios <= {tc['rho_true_mcse'].max():.5f}; blocks on disk "
              f"{disk_mb:.1f} MB (goal <= 50 MB; brute force's replicate blocks were about 2.7 GB)")

        if not args.skip_target:
            target, target_s = _timed(scenarios=study, n_reps=200, n_boot=1000, seed=5, target_mcse=0.002,
                                      out=f"{tmp}/target")  # fmt: skip
            t = target.coverage
            b = t[t["method_kind"] == "bootstrap"]
            print(f"--target-mcse 0.002 on coverage (1000 resamples): {target_s:.1f} s = {target_s / 60:.2f} min "
                  f"(goal <= 3 min); largest coverage MCSE {t['coverage_mcse'].max():.4f}; bootstrapped datasets per "
                  f"scenario {b['n_reps'].min()}-{b['n_reps'].max()}, cheap {b['n_reps_cheap'].min()}-"
                  f"{b['n_reps_cheap'].max()}; plain would need "
                  f"{math.ceil(0.95 * 0.05 / 0.002**2)} bootstrapped datasets per scenario")


if __name__ == "__main__":
    main()
