"""Mutation check of the statistical core: does the test suite catch small, plausible bugs?

Each mutant below is one edit that a tired author could make (a sign, a
convention, a stream index, a label), applied alone to a copy of the
checkout; the tests named for it then run (``-x``: the first failure kills
it).  A mutant the tests do not kill *survives*: either a test is missing, or
the mutant is equivalent (no input tells it apart) and says why.

Run on demand (not in CI; about 5 minutes on 2 cores)::

    python tools/mutation.py                   # every mutant, its own test files
    python tools/mutation.py --whole-suite     # every mutant against the whole suite (slower)
    python tools/mutation.py --rev REV         # the code and tests of another commit (a before/after score)
    python tools/mutation.py --only bias_sign,lemire_rejection

Exit status 1 when a mutant that is not marked equivalent survives.  The
list is curated rather than generated: a generic tool (mutmut, cosmic-ray)
mutates every operator, and on this code base most of its mutants are either
killed by compilation (numba typing) or equivalent (dtype spellings, guards),
which buries the few that matter; the mutants here are the bugs an audit
found plausible, and each new test of a statistical property should add one.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    #: Why no test can kill it (then its survival is not a failure).
    equivalent: str = ""


MUTANTS: tuple[Mutant, ...] = (
    Mutant("cheap_units_share_streams", "simulation/study/blocks.py",
           "    first_block = unit * CHEAP_UNIT_BLOCKS", "    first_block = 0",
           ("tests/test_columns.py", "tests/test_runner.py", "tests/test_twophase.py")),
    Mutant("lower_bound_is_upper_bound", "simulation/study/estimators.py",
           '    "coverage_lower_bound": ((0, 0, 0, -1), 1.0, "indicators"),',
           '    "coverage_lower_bound": ((0, 0, -1, 0), 1.0, "indicators"),',
           ("tests/test_columns.py", "tests/test_runner.py", "tests/test_twophase.py")),
    Mutant("misses_swapped", "simulation/study/estimators.py",
           "    return np.column_stack([lo, hi, below, above])", "    return np.column_stack([lo, hi, above, below])",
           ("tests/test_columns.py", "tests/test_runner.py", "tests/test_twophase.py")),
    Mutant("proportion_mcse_n_minus_1", "simulation/study/estimators.py",
           "        mcse = math.sqrt(p * (1 - p) / n_ok)", "        mcse = math.sqrt(p * (1 - p) / max(n_ok - 1, 1))",
           ("tests/test_columns.py", "tests/test_runner.py", "tests/test_twophase.py")),
    Mutant("bias_sign", "simulation/study/runner.py",
           '        "bias": mean - rho_true,', '        "bias": rho_true - mean,',
           ("tests/test_columns.py", "tests/test_runner.py")),
    Mutant("bias_mcse_without_truth", "simulation/study/runner.py",
           "math.sqrt(se * se / n + rho_true_mcse**2)", "math.sqrt(se * se / n)",
           ("tests/test_columns.py", "tests/test_runner.py")),
    Mutant("empirical_se_mcse_factor", "simulation/study/runner.py",
           '"empirical_se_mcse": se / math.sqrt(2 * (n - 1))', '"empirical_se_mcse": se / math.sqrt(n - 1)',
           ("tests/test_columns.py", "tests/test_runner.py")),
    Mutant("coverage_interval_z", "simulation/study/runner.py",
           '        half = Z95 * perf["coverage_mcse"]', '        half = 1.645 * perf["coverage_mcse"]',
           ("tests/test_columns.py", "tests/test_runner.py")),
    Mutant("truth_correction_sign", "simulation/models/generators.py",
           "estimate = float(moments.mean[0] - beta * moments.mean[1])",
           "estimate = float(moments.mean[0] + beta * moments.mean[1])",
           ("tests/test_twophase.py", "tests/test_generators.py")),
    Mutant("largest_remainder_of_raised_counts", "simulation/models/generators.py",
           "    order = np.argsort(-(share - base), kind=\"stable\")",
           "    order = np.argsort(-(share - np.floor(share)), kind=\"stable\")",
           ("tests/test_generators.py",)),
    Mutant("permutation_p_strict_rowwise", "simulation/engine/pvalues.py",
           "count = np.count_nonzero(np.abs(nulls) >= np.abs(r) - tol, axis=1)",
           "count = np.count_nonzero(np.abs(nulls) > np.abs(r) + tol, axis=1)",
           ("tests/test_power.py", "tests/test_analyze.py")),
    Mutant("permutation_p_strict_shared_null", "simulation/engine/pvalues.py",
           '        count = m - np.searchsorted(abs_sorted, np.abs(r) - tol, side="left")',
           '        count = m - np.searchsorted(abs_sorted, np.abs(r) + tol, side="right")',
           ("tests/test_power.py", "tests/test_columns.py")),
    Mutant("power_rejects_strictly_below_alpha", "simulation/power/curves.py",
           '("permutation", p_perm <= settings.alpha)', '("permutation", p_perm < settings.alpha)',
           ("tests/test_power.py", "tests/test_columns.py")),
    Mutant("min_detectable_se_without_slope", "simulation/power/curves.py",
           "math.sqrt(target * (1 - target) / settings.n_reps) / slope",
           "math.sqrt(target * (1 - target) / settings.n_reps)",
           ("tests/test_power.py", "tests/test_columns.py")),
    Mutant("lemire_rejection_removed", "simulation/engine/_kernels.py",
           "    if i < draws.shape[0] and (m & mask) >= threshold:", "    if i < draws.shape[0]:",
           ("tests/test_kernels.py",)),
    Mutant("bonett_wright_quarter", "simulation/engine/intervals.py",
           "    return (1 + r**2 / 2) / (n - 3)", "    return (1 + r**2 / 4) / (n - 3)",
           ("tests/test_intervals.py",)),
    Mutant("fieller_constant", "simulation/engine/intervals.py",
           "    return 1.06 / (n - 3)", "    return 1.0 / (n - 3)",
           ("tests/test_intervals.py",)),
    Mutant("bca_z0_sign", "simulation/engine/intervals.py",
           "    z0 = ndtri(prop_below)", "    z0 = -ndtri(prop_below)",
           ("tests/test_bootstrap.py",)),
    Mutant("bca_acceleration_sign", "simulation/engine/intervals.py",
           "        bca_lo = ndtr(z0 + (z0 + z_lo) / (1 - accel * (z0 + z_lo)))",
           "        bca_lo = ndtr(z0 + (z0 + z_lo) / (1 + accel * (z0 + z_lo)))",
           ("tests/test_bootstrap.py",)),
    Mutant("slo_level", "simulation/toolkit/slo.py",
           "    alpha = 1 - confidence_level\n    lower, upper",
           "    alpha = 2 * (1 - confidence_level)\n    lower, upper",
           ("tests/test_toolkit.py",)),
    Mutant("wilson_one_sided_z", "simulation/study/metrics.py",
           "    z = float(ndtri(1 - (1 - level) / 2))", "    z = float(ndtri(1 - (1 - level)))",
           ("tests/test_runner.py", "tests/test_columns.py")),
    Mutant("recommendation_tolerance", "simulation/analyze/analysis.py",
           "                \"qualifies\": defined and bool(np.all(cov >= threshold)),",
           "                \"qualifies\": defined and bool(np.all(cov >= threshold - delta)),",
           ("tests/test_analyze.py",)),
    Mutant("midrank_off_by_one", "simulation/engine/_kernels.py",
           "            rank = 0.5 * (start + 1 + stop)", "            rank = 0.5 * (start + stop)",
           ("tests/test_kernels.py",)),
    Mutant("replicates_asymptotic_variance", "simulation/statistics/statistic.py",
           'variance=method.removeprefix("fisher_z_"))', 'variance="fieller")',
           ("tests/test_columns.py",)),
    # Kendall's tau-b
    Mutant("kendall_ase_weights_swapped", "simulation/statistics/kendall.py",
           "        d = 2.0 * ww * sk[k] + tau * (tsize[gx[k]] * wc + usize[gy[k]] * wr)",
           "        d = 2.0 * ww * sk[k] + tau * (tsize[gx[k]] * wr + usize[gy[k]] * wc)",
           ("tests/test_kendall.py",)),
    Mutant("kendall_one_pass_sk_untied_y", "simulation/statistics/kendall.py",
           "            out[i] = 2 * f", "            out[i] = f",
           ("tests/test_kendall.py",)),
    Mutant("kendall_one_pass_sk_larger_y_share", "simulation/statistics/kendall.py",
           "        tree[g] = earlier - 2 * prefix - seen[g]", "        tree[g] = earlier - prefix - seen[g]",
           ("tests/test_kendall.py",)),
    Mutant("kendall_jackknife_tie_total", "simulation/statistics/kendall.py",
           "tx - (tsize[gx[r, k]] - 1), ty - (usize[gy[r, k]] - 1), n - 1)",
           "tx - tsize[gx[r, k]], ty - (usize[gy[r, k]] - 1), n - 1)",
           ("tests/test_kendall.py",)),
    Mutant("kendall_null_variance_third_term", "simulation/statistics/kendall.py",
           "/ (9 * n * (n - 1) * (n - 2))", "/ (18 * n * (n - 1) * (n - 2))",
           ("tests/test_kendall.py",)),
    Mutant("kendall_fhp_constant", "simulation/statistics/kendall.py",
           "FHP_KENDALL = 0.437", "FHP_KENDALL = 0.5",
           ("tests/test_kendall.py",)),
    Mutant("kendall_controls_on_spearmans_scale", "simulation/statistics/statistic.py",
           "    control_variance=(kendall.FHP_KENDALL, 4.0),", "    control_variance=None,",
           ("tests/test_kendall.py",)),
    Mutant("pearson_se_cross_moment_sign", "simulation/statistics/pearson.py",
           "m22 - r * (m31 + m13)) / sw", "m22 + r * (m31 + m13)) / sw",
           ("tests/test_custom.py",)),
    Mutant("user_jackknife_keeps_the_pair", "simulation/statistics/custom.py",
           "            w[i] = 0\n            out[r, i] = _finite(stat(x[r], y[r], w))",
           "            w[i] = 1\n            out[r, i] = _finite(stat(x[r], y[r], w))",
           ("tests/test_custom.py",)),
    Mutant("user_t_star_without_the_jacobian", "simulation/statistics/statistic.py",
           "/ (se_star * parts.g_prime(theta))", "/ se_star",
           ("tests/test_custom.py",)),
    Mutant("kendall_asymptotic_power_one_tail", "simulation/power/curves.py",
           "        power = stats.norm.sf((crit - tau) / sd0) + stats.norm.sf((crit + tau) / sd0)",
           "        power = stats.norm.sf((crit - tau) / sd0)",
           ("tests/test_columns.py", "tests/test_kendall.py")),
    Mutant("target_allocation_ignores_the_margin", "simulation/study/runner.py",
           "n_plain = TARGET_MARGIN * plain**2", "n_plain = plain**2",
           ("tests/test_targets.py",)),
    Mutant("out_of_range_ignores_the_upper_end", "simulation/engine/intervals.py",
           "(np.asarray(lower) < bounds[0] - RANGE_TOLERANCE) | (np.asarray(upper) > bounds[1] + RANGE_TOLERANCE)",
           "(np.asarray(lower) < bounds[0] - RANGE_TOLERANCE)",
           ("tests/test_no_silent.py", "tests/test_columns.py")),
    Mutant("dropped_resamples_threshold_ignored", "simulation/study/blocks.py",
           "dropped > DROPPED_RESAMPLES_THRESHOLD * ctx.n_boot", "dropped > ctx.n_boot",
           ("tests/test_no_silent.py", "tests/test_columns.py")),
    Mutant("target_shortfall_read_loosely", "simulation/study/runner.py",
           "            if ratio > 1 and (worst is None", "            if ratio > 2 and (worst is None",
           ("tests/test_no_silent.py", "tests/test_targets.py")),
    Mutant("misses_plain_beside_cv_coverage", "simulation/study/estimators.py",
           "        out[name] = fit.estimate if fit is not None else mean",
           "        out[name] = fit.estimate if fit is not None and name not in ONE_SIDED else mean",
           ("tests/test_no_silent.py", "tests/test_columns.py")),
    Mutant("spearman_alone_identity_gains_statistics", "simulation/statistics/registry.py",
           '    return {} if tuple(names) == (DEFAULT,) else {"statistics": list(names)}',
           '    return {"statistics": list(names)}',
           ("tests/test_analyze.py", "tests/test_golden.py")),
    Mutant("t_latent_is_the_normals", "simulation/models/registry.py",
           "latent=_t_latent", "latent=_normal_latent",
           ("tests/test_golden.py",)),
    Mutant("block_content_digest_unchecked", "simulation/infra/storage.py",
           "    if content != content_digest(arrow):", "    if False:",
           ("tests/test_integrity.py",)),
    Mutant("block_settings_seal_unchecked", "simulation/infra/storage.py",
           "    if settings != seal:", "    if False:",
           ("tests/test_integrity.py",)),
    Mutant("cached_truth_not_checked_against_calibration", "simulation/study/runner.py",
           "        if gap > PLAUSIBLE_SE * se + 1e-12:", "        if gap > 1e6:",
           ("tests/test_integrity.py",)),
    Mutant("temporary_sweep_everywhere", "simulation/infra/storage.py",
           '        for stale in out.glob(f".{glob_escape(name)}.*.tmp"):',
           '        for stale in out.rglob(".*.tmp"):',
           ("tests/test_integrity.py",)),
    Mutant("ledger_forgets_out_of_range", "simulation/study/blocks.py",
           "        entries += ledger_entries(kept, outside[m], LEDGER_OUT_OF_RANGE, m)\n", "",
           ("tests/test_failures.py",)),
    Mutant("nested_loop_most_levels_outermost", "simulation/present/figures.py",
           "    factors.sort(key=lambda f: first[f].nunique(dropna=False))",
           "    factors.sort(key=lambda f: -first[f].nunique(dropna=False))",
           ("tests/test_figures.py",)),
)  # fmt: skip


def _copy_checkout(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src = ROOT / name
        if src.is_file() and not src.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
        elif src.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(src), dest / name)


def _export(rev: str, dest: Path) -> None:
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def _run_tests(work: Path, tests: list[str], env: dict[str, str]) -> tuple[int, float]:
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *tests]
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return rc, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--whole-suite", action="store_true", help="run the whole suite for every mutant")
    parser.add_argument("--rev", metavar="REV", help="mutate this commit (code and tests), not the working tree")
    parser.add_argument("--only", metavar="NAMES", help="comma-separated mutant names")
    args = parser.parse_args(argv)
    mutants = MUTANTS
    if args.only:
        wanted = {n.strip() for n in args.only.split(",")}
        unknown = wanted - {m.name for m in MUTANTS}
        if unknown:
            parser.error(f"--only: unknown mutants {sorted(unknown)}; known: {[m.name for m in MUTANTS]}")
        mutants = tuple(m for m in MUTANTS if m.name in wanted)
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        work = Path(tmp) / "checkout"
        if args.rev:
            _export(args.rev, work)
        else:
            _copy_checkout(work)
        env = os.environ | {"NUMBA_CACHE_DIR": str(Path(tmp) / "numba"), "PYTHONDONTWRITEBYTECODE": "1"}
        env["PYTHONPATH"] = str(work)  # the copy, not an installed checkout, is imported
        # the unmutated tests must pass first (this also fills numba's cache for the mutants)
        every = sorted({t for m in mutants for t in m.tests if (work / t).exists()})
        rc, seconds = _run_tests(work, ["tests"] if args.whole_suite else every, env)
        if rc != 0:
            print(f"the unmutated tests fail (exit {rc}): fix them first", file=sys.stderr)
            return 2
        print(f"unmutated tests pass ({seconds:.0f} s)")
        killed, bad = 0, []
        print(f"{'mutant':40s} {'result':10s} {'seconds':>7s}")
        for m in mutants:
            target = work / m.path
            original = target.read_bytes()
            stat = target.stat()
            text = original.decode()
            if text.count(m.old) != 1:
                print(f"{m.name:40s} {'stale':10s}  (its text occurs {text.count(m.old)} times in {m.path})")
                bad.append(m.name)
                continue
            tests = ["tests"] if args.whole_suite else [t for t in m.tests if (work / t).exists()]
            try:
                target.write_text(text.replace(m.old, m.new))
                rc, seconds = _run_tests(work, tests, env) if tests else (0, 0.0)
            finally:
                target.write_bytes(original)
                os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # keeps numba's cache valid
            if rc == 1:
                killed += 1
                result = "killed"
            elif rc == 0:
                result = "equivalent" if m.equivalent else "SURVIVED"
                if not m.equivalent:
                    bad.append(m.name)
            else:
                result = f"error {rc}"
                bad.append(m.name)
            print(f"{m.name:40s} {result:10s} {seconds:7.1f}")
        print(f"\nscore: {killed} of {len(mutants)} killed" + (f"; not killed: {', '.join(bad)}" if bad else ""))
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
