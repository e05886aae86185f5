"""Cost against n: per resample and fixed per dataset, for every built-in statistic, tied and untied x.

For each statistic (Spearman's rho, Kendall's tau-b, Pearson's r) and each x (4 equal tie groups; all
distinct), n from 80 in steps of x4, one dataset (y normal, correlated 0.3 with x's rank) is bootstrapped
with :func:`simulation.inference.bootstrap.bootstrap_ci_single` (every interval) at ``B1`` and ``B2``
resamples, the fastest of fifteen and of five calls, taken in turn (the noise of a shared machine only adds
time).
Below n = 81,920 a call bootstraps ``81,920 / n`` datasets
(:func:`~simulation.inference.bootstrap.bootstrap_ci_averaged`, the batch path of a study) and its time is
divided by them, so that the call's own overhead (about 0.3 ms: validation, settings, the result's table)
is shared.  The per-resample cost is the slope ``(t(B2) - t(B1)) / (B2 - B1)``; the fixed cost per dataset
(ranking, the jackknife, interval assembly) is ``t(B1) - B1 x`` that slope.  The script prints both per n
with the log-log slope between consecutive sizes, and the fixed cost in resamples' worth.  A size whose
fixed cost, extrapolated from the previous size with the growth measured so far, would exceed ``--budget``
seconds is skipped and said so.  With ``--rounds R`` every size is measured R times, one pass over the
sizes after another (the same data), and each keeps its fastest calls: a noisy minute on a shared machine,
which can add 20-30% to one size's fixed cost at n = 1,310,720, then rarely falls on every round of it.

Run: ``python benchmarks/bench_scaling.py [--min-n 80] [--max-n 2000000] [--budget 120] [--rounds 1]
[--statistics spearman kendall_b pearson]`` (a few minutes to ``--max-n 131072``).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from simulation.inference.bootstrap import bootstrap_ci_averaged, bootstrap_ci_single

B1, B2 = 4, 220  # B1 small: the fixed cost is t(B1) less only a few resamples, whose slope is uncertain
REPEATS = 5
#: Calls at ``B1`` per call at ``B2``: the fixed cost is the fastest of 15, so that a noisy minute on a
#: shared machine (20-30% on one call at n = 1,310,720) moves it less; they cost little beside ``B2``'s.
B1_CALLS = 3


#: Below this n a measurement bootstraps ``BATCH_OBSERVATIONS // n`` datasets in one call and divides.
BATCH_OBSERVATIONS = 81_920


def _call(x: np.ndarray, y: np.ndarray, n_boot: int, statistic: str) -> float:
    """Seconds per dataset of one call: ``bootstrap_ci_single``, or for rows ``(m, n)``
    ``bootstrap_ci_averaged`` (the study's batch path) divided by ``m``."""
    t0 = time.perf_counter()
    if x.ndim == 1:
        bootstrap_ci_single(x, y, n_boot=n_boot, confidence_level=0.95, seed=1, statistic=statistic)
        return time.perf_counter() - t0
    bootstrap_ci_averaged(x, y, n_boot=n_boot, confidence_level=0.95, seed=1, statistic=statistic)
    return (time.perf_counter() - t0) / x.shape[0]


def _time(x: np.ndarray, y: np.ndarray, statistic: str) -> tuple[float, float]:
    """The fastest of ``B1_CALLS x REPEATS`` calls at ``B1`` and of ``REPEATS`` calls at ``B2`` resamples,
    taken in turn (after one call that touches the new data's memory)."""
    _call(x, y, B1, statistic)
    t1, t2 = [], []
    for _ in range(REPEATS):
        t1 += [_call(x, y, B1, statistic) for _ in range(B1_CALLS)]
        t2.append(_call(x, y, B2, statistic))
    return min(t1), min(t2)


def _data(n: int, tied: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = np.repeat(np.arange(4.0), -(-n // 4))[:n] if tied else rng.standard_normal(n)
    x = rng.permutation(x)
    score = (np.argsort(np.argsort(x, kind="stable")) + 0.5) / n
    y = 0.3 * (score - 0.5) * math.sqrt(12) + math.sqrt(1 - 0.09) * rng.standard_normal(n)
    return x, y


def _dataset(n: int, tied: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One dataset of n pairs, or below :data:`BATCH_OBSERVATIONS` rows ``(m, n)`` of ``81,920 / n``."""
    if n >= BATCH_OBSERVATIONS:
        return _data(n, tied, rng)
    rows = [_data(n, tied, rng) for _ in range(BATCH_OBSERVATIONS // n)]  # the call's own overhead shared
    return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])


def _fixed_and_per(t1: float, t2: float) -> tuple[float, float]:
    per = max((t2 - t1) / (B2 - B1), 1e-12)
    return max(t1 - B1 * per, 1e-9), per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-n", type=int, default=2_000_000)
    parser.add_argument("--min-n", type=int, default=80)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds one measurement may take")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every size this many times, one pass over the sizes after another, "
                             "and keep each size's fastest calls")  # fmt: skip
    parser.add_argument("--statistics", nargs="+", default=["spearman", "kendall_b", "pearson"],
                        choices=["spearman", "kendall_b", "pearson"])  # fmt: skip
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    sizes = [80 * 4**k for k in range(20) if args.min_n <= 80 * 4**k <= args.max_n]
    rng = np.random.default_rng(2026)
    bootstrap_ci_single(*_data(80, True, rng), n_boot=B1, seed=1)  # compile
    print(f"per resample (ns per observation) and fixed cost per dataset; B = {B1}, {B2}; fastest of "
          f"{B1_CALLS * REPEATS * args.rounds} and {REPEATS * args.rounds} calls in {args.rounds} round(s)")
    for statistic in args.statistics:
        bootstrap_ci_single(*_data(80, True, rng), n_boot=B1, seed=1, statistic=statistic)  # compile
        for tied in (True, False):
            label = f"{statistic}, x {'in 4 groups' if tied else 'all distinct'}"
            print(f"\n{label}\n{'n':>9} {'per resample':>14} {'slope':>6} {'fixed':>11} {'slope':>6} "
                  f"{'in resamples':>13}")  # fmt: skip
            data, best, skipped = {}, {}, None
            for n in sizes:  # the first round: each size unless its extrapolated cost is past the budget
                if best:
                    n0 = max(best)
                    fixed0 = _fixed_and_per(*best[n0])[0]
                    growth = 2.0
                    if len(best) > 1:
                        n00 = sorted(best)[-2]
                        growth = max(math.log(fixed0 / _fixed_and_per(*best[n00])[0]) / math.log(n0 / n00), 1.0)
                    if REPEATS * args.rounds * (fixed0 * 4**growth + B2 * 1e-8 * n) > args.budget:
                        skipped = f"{n:>9} skipped: about {fixed0 * 4 ** growth:.0f} s per dataset extrapolated"
                        break
                data[n] = _dataset(n, tied, rng)
                best[n] = _time(*data[n], statistic)
            for _ in range(args.rounds - 1):  # later rounds: the same data again, after all the others
                for n in data:
                    t1, t2 = _time(*data[n], statistic)
                    best[n] = (min(best[n][0], t1), min(best[n][1], t2))
            previous = None
            for n in data:
                fixed, per = _fixed_and_per(*best[n])
                slopes = ("", "")
                if previous is not None:
                    n0, fixed0, per0 = previous
                    slopes = (f"{math.log(per / per0) / math.log(n / n0):6.2f}",
                              f"{math.log(fixed / fixed0) / math.log(n / n0):6.2f}")  # fmt: skip
                print(f"{n:>9} {per / n * 1e9:11.2f} ns {slopes[0]:>6} {fixed * 1e3:8.2f} ms {slopes[1]:>6} "
                      f"{fixed / per:13.0f}")  # fmt: skip
                previous = (n, fixed, per)
            if skipped:
                print(skipped)


if __name__ == "__main__":
    main()
