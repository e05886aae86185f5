"""Monte Carlo checks of the measurement toolkit: how well do its intervals and tests really work?

Each row of :data:`TOOLKIT_STUDY` is one check with a known truth; a row's
replicates draw from ``child_seed(SeedSequence([seed, sha256(row key)]), rep)``,
so rows are independent of one another, of their order and of ``n_jobs``.

* ``p95_interval``: the 95% percentile-bootstrap interval of the 95th
  percentile (:func:`simulation.toolkit.slo.slo_compliance`) for exponential
  latencies; truth ``ln 20`` (scale 1).
* ``mean_interval``: the 95% percentile-bootstrap interval of the mean
  (:func:`simulation.toolkit.bootstrap.bootstrap_ci`) for exponential data; truth 1.
* ``bca_lower_bound``: :func:`simulation.toolkit.bootstrap.compute_lower_bound_95` for
  Beta(2, 5) scores (mean 2/7) with the specified tail 0.025 (a one-sided
  97.5% bound) and tail 0.05 (one-sided 95%); coverage = P(bound <= mean).
* ``regression_size`` / ``regression_power``: rejection rate of the
  permutation test of :func:`simulation.toolkit.slo.regression_check` at alpha 0.05,
  exponential samples of equal scale (size) or scale 1.5 (power).

Coverage and rejection rates come with binomial MCSEs and Wilson intervals
(:mod:`simulation.study.metrics`).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import pandas as pd

from simulation.core.settings import resolve_seed
from simulation.core.validation import check_positive_int
from simulation.engine.seeding import child_seed, rng_from
from simulation.infra.parallel import parallel_map
from simulation.study.metrics import wilson_interval
from simulation.toolkit.bootstrap import bootstrap_ci, compute_lower_bound_95
from simulation.toolkit.slo import regression_check, slo_compliance

#: (check, n, parameter): parameter is the tail for the BCa bound, the scale ratio for regression.
#:
#: :meta hide-value:
TOOLKIT_STUDY: tuple[tuple[str, int, float], ...] = (
    *(("p95_interval", n, 0.95) for n in (50, 500)),
    *(("mean_interval", n, 0.95) for n in (3, 5, 10, 30)),
    *(("bca_lower_bound", n, tail) for tail in (0.025, 0.05) for n in (5, 10, 30)),
    *(("regression_size", n, 1.0) for n in (20, 100)),
    *(("regression_power", n, 1.5) for n in (20, 100)),
)
BETA_A, BETA_B = 2.0, 5.0


def _row_key(check: str, n: int, parameter: float) -> str:
    return f"{check}_n{n}_{parameter:g}"


def _row_seed(seed: int, key: str) -> np.random.SeedSequence:
    digest = hashlib.sha256(key.encode()).digest()
    return np.random.SeedSequence([int(seed), *np.frombuffer(digest[:16], dtype=np.uint32).tolist()])


def run_check(check: str, n: int, parameter: float, n_reps: int, seed: int) -> dict[str, Any]:
    """Run one check for ``n_reps`` replicates; return its row."""
    key = _row_key(check, n, parameter)
    root = _row_seed(seed, key)
    hits = 0
    nominal = parameter
    truth = math.nan
    for rep in range(n_reps):
        rng = rng_from(child_seed(root, rep))
        rep_seed = int(rng.integers(0, 2**31))
        if check == "p95_interval":
            truth = math.log(20.0)
            r = slo_compliance(rng.exponential(1.0, n), 1.0, confidence_level=0.95, n_resamples=2000, seed=rep_seed)
            hits += r.ci_lower <= truth <= r.ci_upper
        elif check == "mean_interval":
            truth = 1.0
            r = bootstrap_ci(rng.exponential(1.0, n), n_resamples=2000, seed=rep_seed)
            hits += r.ci_lower <= truth <= r.ci_upper
        elif check == "bca_lower_bound":
            truth = BETA_A / (BETA_A + BETA_B)
            nominal = 1 - parameter
            scores = rng.beta(BETA_A, BETA_B, n)
            hits += compute_lower_bound_95(scores, run_id=f"{rep_seed:08x}", tail=parameter) <= truth
        else:  # regression_size / regression_power
            nominal = 0.05 if check == "regression_size" else math.nan
            base = rng.exponential(1.0, n)
            cur = rng.exponential(parameter, n)
            r = regression_check(base, cur, n_permutations=2000, seed=rep_seed)
            hits += r.permutation_pvalue <= 0.05
    rate = hits / n_reps
    lo, hi = wilson_interval(np.array(hits), np.array(n_reps))
    return {
        "check": check,
        "n": n,
        "parameter": parameter,
        "truth": truth,
        "nominal": nominal,
        "estimate": rate,
        "mcse": math.sqrt(rate * (1 - rate) / n_reps),
        "wilson_lower": float(lo),
        "wilson_upper": float(hi),
        "n_reps": n_reps,
    }


def run_toolkit_study(
    n_reps: int = 2000, *, seed: int | None = None, n_jobs: int = -1, progress: bool = False
) -> pd.DataFrame:
    """All checks of :data:`TOOLKIT_STUDY`; one row each (order of the table, whatever ``n_jobs``)."""

    n_reps = check_positive_int(n_reps, "n_reps", minimum=10)
    rows: list[dict[str, Any] | None] = [None] * len(TOOLKIT_STUDY)

    def keep(i: int, row: dict[str, Any]) -> None:
        rows[i] = row

    seed = resolve_seed(seed)
    calls = [((check, n, p, n_reps, seed), {}) for check, n, p in TOOLKIT_STUDY]
    parallel_map(run_check, calls, n_jobs=n_jobs, progress=progress, on_result=keep, desc="checks")
    return pd.DataFrame(rows)
