"""Solve a design for its sample size: the smallest n whose test reaches a stated power, under the design's ties.

The power of a test at ``n`` is known only by simulation when x is tied, so
the root of ``power(n) = target`` is found by stochastic root-finding, as
SimDesign's ``SimSolve`` does (Chalmers 2024, *Psychological Methods*, doi
10.1037/met0000689): evaluations of the power at chosen ``n`` with growing
numbers of datasets, a binomial GLM fitted to every evaluation, and the root
read off the fitted curve with its interval.

The method
----------
1. **Bracket.** The power at :data:`BRACKET_POINTS` values of n spread
   evenly on log n over the search range, ``reps`` datasets each.  A target
   the range cannot reach (power at the upper end below it, or at the lower
   end above it, each by more than two MCSEs) is refused with both powers.
2. **Refine** (:data:`ROUNDS` rounds).  A probit regression of the
   rejections on ``sqrt(n)`` (binomial GLM with the probit link, fitted by
   iteratively reweighted least squares; McCullagh & Nelder 1989, *Generalized
   Linear Models*, 2nd ed., §4.4) over the evaluations near the current root
   gives the root ``n* = ((Phi^-1(target) - a) / b)^2``.  The model is the
   power of an asymptotically normal test, ``Phi(delta sqrt(n) - z)`` (Lehmann
   1999, *Elements of Large-Sample Theory*, §3.3): on the exact power of
   Pearson's t test (ρ = 0.3, power 0.9) fitted through n = 97, 111, 128 it
   puts the root at 111.70 where the exact root is 111.69 (a logit in log n:
   111.01).  The next round
   evaluates n* and n* times and divided by :data:`SPREAD`, with twice the
   previous round's datasets (a sequential design that spends the datasets
   where the root is: the idea of SimSolve's final stage, without its
   probabilistic bisection).
3. **Answer.** The last fit, over the evaluations within a factor
   :data:`WINDOW` of the root (the model need only hold locally), gives
   ``n*`` and a 95% interval for it by the delta method on
   ``g = (Phi^-1(target) - a) / b = sqrt(n*)`` (``Var(g) = grad' Sigma grad``, ``Sigma`` the
   GLM's covariance; the inverse-prediction interval of Finney 1971, *Probit
   Analysis*, §4.6, in its delta-method form).  Power grows with n, so the
   answer is the smallest integer at or above ``n*``, with ``P(root <=
   answer)`` from the same normal approximation.
4. **Confirm.** A run of :data:`CONFIRM_REPS` fresh datasets at the answer:
   its power and binomial MCSE.

Every evaluation is on streams of its own (the power curve's, with a seed
derived from the solve's seed and the evaluation's index), so a solve is a
pure function of its arguments, and the evaluations are independent (the
GLM's binomial likelihood holds).  The analytic answer is printed beside it
where one exists: Fisher's z for Pearson's r (``n = ((z_(1-alpha/2) +
z_power) / atanh r)^2 + 3``; Cohen 1988, §3.4), and for Spearman's rho the
smallest n whose t-approximation power (no ties; :func:`asymptotic_power`)
reaches the target; for Kendall's tau-b Noether's (1987, *JASA* 82:645)
normal approximation with the null variance corrected for x's ties
(:func:`analytic_n`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats
from scipy.special import ndtr, ndtri

from simulation.core.validation import check_confidence_level, check_positive_int
from simulation.engine.intervals import MIN_N_BOOT
from simulation.infra.storage import atomic_write
from simulation.models.generators import reachable_range, tie_counts
from simulation.models.scenarios import Scenario
from simulation.power.curves import (
    PowerSettings,
    _check_alpha,
    _check_alternative,
    asymptotic_power,
    check_target_power,
    kendall_asymptotic_power,
    minimum_detectable,
    power_curve,
)
from simulation.present.figures import write_figure
from simulation.statistics import kendall
from simulation.statistics.statistic import Statistic, get_statistic
from simulation.study.runner import run_all_ci_scenarios

#: Evaluations of the bracketing stage, evenly spread on log n.
BRACKET_POINTS = 5
#: Refining rounds after the bracket.
ROUNDS = 3
#: A refining round evaluates the current root and the root times and divided by this factor.
SPREAD = 1.15
#: The final fit uses the evaluations within this factor of the root (all, when fewer than 3 distinct n).
WINDOW = 2.0
#: Datasets of the confirmation run at the answer.
CONFIRM_REPS = 4000
#: The built-in statistics' tests that a solve can target (the power curves' names); a user statistic's are
#: its own (:attr:`~simulation.statistics.statistic.Statistic.tests`: its permutation test, and Student's t
#: where it declares it).
SOLVE_TESTS = {"spearman": ("permutation", "t_approx"), "kendall_b": ("permutation", "normal_approx"),
               "pearson": ("permutation", "t_test")}  # fmt: skip


class SolveError(ValueError):
    """A target the search cannot meet, or arguments it cannot use: the message says which and what is allowed."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class _RootFound:
    """What a solve for n found, whatever its target (:class:`SolveResult`, :class:`IntervalSolveResult`)."""

    design: Scenario
    statistic: str
    evaluations: pd.DataFrame
    answer: int
    root: float
    root_lower: float
    root_upper: float
    p_root_at_most_answer: float
    coefficients: tuple[float, float]
    covariance: tuple[tuple[float, float], tuple[float, float]]
    confirmation: dict
    analytic: tuple[int, str] | None
    rho_true: float
    #: The solve's arguments, as its stored evaluations record them (``store`` of :func:`solve_n`).
    identity: dict = dataclasses.field(default_factory=dict)

    def _answer_lines(self) -> list[str]:
        return [f"  n = {self.answer} (fitted root {self.root:.1f}, 95% interval {self.root_lower:.1f}-"
                f"{self.root_upper:.1f}; P(root <= {self.answer}) = {self.p_root_at_most_answer:.2f})"]

    def _closing_lines(self, what: str) -> list[str]:
        lines = [f"  {len(self.evaluations)} evaluations, {int(self.evaluations['reps'].sum())} {what}"]
        if self.analytic is not None:
            lines.append(f"  without ties ({self.analytic[1]}): n = {self.analytic[0]}")
        return lines


@dataclasses.dataclass(frozen=True, kw_only=True)
class SolveResult(_RootFound):
    """What :func:`solve_n` found.

    ``evaluations``: one row per evaluation (``n``, ``reps``, ``rejections``, ``power``, ``power_mcse``,
    ``stage``, ``seed``); ``answer``: the smallest n whose fitted power reaches the target; ``root`` and
    ``root_lower`` / ``root_upper``: the fitted curve's crossing and its 95% interval; ``p_root_at_most_answer``:
    how sure it is that the true root is at most the answer; ``coefficients`` and ``covariance``: the final
    GLM (``Phi^-1(power) = a + b sqrt(n)``); ``confirmation``: ``n``, ``reps``, ``power``, ``power_mcse`` at the
    answer; ``analytic``: the closed-form answer without ties and its name, or None.
    """

    test: str
    target_power: float
    alpha: float
    alternative: str

    def summary(self) -> str:
        """The answer in a few lines."""
        c = self.confirmation
        lines = [
            f"{self.statistic} {self.test} test, power {self.target_power:g} at alpha {self.alpha:g} "
            f"({self.alternative}), true correlation {self.rho_true:.4f} ({self.design.generator}, "
            f"{_ties(self.design)}):",
            *self._answer_lines(),
            f"  confirmation at n = {c['n']}: power {c['power']:.3f} (MCSE {c['power_mcse']:.3f}, "
            f"{c['reps']} datasets)",
            *self._closing_lines("datasets"),
        ]
        return "\n".join(lines)


def _ties(s: Scenario) -> str:
    if not s.tied:
        return "x untied"
    if s.template == "all_distinct":
        return "all x distinct"
    return f"x in {len(s.counts)} groups, template {s.template}"


def design_at(design: Scenario, n: int) -> Scenario:
    """The design at sample size ``n``: a template's counts for n (the same number of groups), a custom
    design's counts scaled to n by largest remainders (each group at least 1), everything else kept."""
    if not design.tied or design.template == "all_distinct":
        return dataclasses.replace(design, n=n)
    if design.template != "custom":
        return dataclasses.replace(design, n=n, counts=None)
    shares = np.asarray(design.counts, dtype=np.float64) / sum(design.counts)
    if n < len(shares):
        raise SolveError(f"n = {n} is fewer than the design's {len(shares)} groups of x")
    raw = shares * n
    counts = np.maximum(np.floor(raw).astype(int), 1)
    for i in np.argsort(-(raw - np.floor(raw)), kind="stable"):
        if counts.sum() >= n:
            break
        counts[i] += 1
    while counts.sum() > n:  # the minimum of 1 per group overshot: take from the largest
        counts[np.argmax(counts)] -= 1
    return dataclasses.replace(design, n=n, counts=tuple(int(c) for c in counts))


def fit_probit(sqrt_n: np.ndarray, rejections: np.ndarray, reps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood ``(a, b)`` of ``Phi^-1(p) = a + b sqrt(n)`` for binomial counts, and their covariance
    (the inverse Fisher information), by iteratively reweighted least squares (McCullagh & Nelder 1989, §4.4:
    working weights ``m phi(eta)^2 / (p (1 - p))``, working response ``eta + (y / m - p) / phi(eta)``)."""
    x = np.column_stack([np.ones_like(sqrt_n), sqrt_n])
    p_obs = (rejections + 0.5) / (reps + 1.0)  # start: the empirical probits, kept off 0 and 1
    beta = np.linalg.lstsq(x, ndtri(p_obs), rcond=None)[0]

    def weights(eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = np.clip(ndtr(eta), 1e-15, 1 - 1e-15)
        density = np.exp(-0.5 * eta * eta) / math.sqrt(2 * math.pi)
        return p, reps * density * density / (p * (1 - p)), density

    for _ in range(100):
        eta = x @ beta
        p, w, density = weights(eta)
        z = eta + (rejections / reps - p) / np.maximum(density, 1e-300)
        new = np.linalg.solve(x.T @ (w[:, None] * x), x.T @ (w * z))
        done = np.max(np.abs(new - beta)) < 1e-12
        beta = new
        if done:
            break
    _, w, _ = weights(x @ beta)
    return beta, np.linalg.inv(x.T @ (w[:, None] * x))


def _root(beta: np.ndarray, cov: np.ndarray, target: float) -> tuple[float, float]:
    """``g = sqrt(n*)`` where the fitted power is ``target``, and its SE (delta method)."""
    a, b = beta
    q = float(ndtri(target))
    g = (q - a) / b
    grad = np.array([-1 / b, -(q - a) / b**2])
    return float(g), float(math.sqrt(max(grad @ cov @ grad, 0.0)))


def analytic_n(
    statistic: str, rho: float, target: float, alpha: float, alternative: str, design: Scenario | None = None
) -> tuple[int, str] | None:
    """The approximate n without simulation, where one exists (see the module docstring), else None.

    Kendall's tau-b: the smallest n whose power by Noether's (1987) normal approximation
    (:func:`~simulation.power.curves.kendall_asymptotic_power`) reaches the target, with the null variance
    corrected for the ties of x at each n (``design``'s, scaled by :func:`design_at`; y untied), at the true
    tau-b ``rho``."""
    tails = 2 if alternative == "two-sided" else 1
    if statistic == "kendall_b" and design is not None and not design.model.y_tied:
        z = stats.norm.isf(alpha / tails)
        start = max(5, len(design.counts) if design.tied and design.counts else 0)
        for n in range(start, 100_000):
            try:
                counts = design_at(design, n).counts if design.tied and design.counts else (1,) * n
            except (SolveError, ValueError):
                continue  # a template that does not reach this n
            crit = kendall.normal_critical_tau(counts, (1,) * n, alpha, alternative)
            if kendall_asymptotic_power(abs(rho) if alternative != "less" else -abs(rho), crit, crit / z,
                                        alternative) >= target:  # fmt: skip
                return n, "normal approximation, tie-corrected"
        return None
    if statistic == "pearson":
        z = (stats.norm.isf(alpha / tails) + stats.norm.ppf(target)) / math.atanh(abs(rho))
        return math.ceil(z * z + 3), "Fisher's z"
    if statistic == "spearman":
        sign_rho = rho if alternative != "less" else -abs(rho)
        for n in range(5, 100_000):
            if float(asymptotic_power(sign_rho, n, alpha, alternative)) >= target:
                return n, "t approximation"
    return None


def _power_target(target_power: float, alpha: float, alternative: str, statistic, test: str):
    """A power target's arguments checked: ``(target, alpha, statistic)``, or a message naming the bad one."""
    target = check_target_power(target_power)
    alpha = _check_alpha(alpha)
    _check_alternative(alternative)
    stat = get_statistic(statistic)
    tests = SOLVE_TESTS.get(stat.name, stat.tests)
    if test not in tests:
        raise SolveError(f"`test` must be one of {list(tests)} for {stat.name}, got {test!r}")
    return target, alpha, stat


def _nulls(test: str) -> dict[str, int]:
    """The permutation settings of a power curve for ``test``: a test other than the permutation test needs no
    permutation null (one permutation, unused)."""
    return {} if test == "permutation" else {"n_perm": 1, "n_perm_tied_y": 1}


def _power_point(design: Scenario, stat: Statistic, test: str, m: int, alpha: float, alternative: str,
                 seed: int) -> dict:
    """The power of ``test`` at the design's correlation, from ``m`` datasets on ``seed``'s streams: ``reps``,
    ``rejections``, ``power``, its binomial ``power_mcse``, ``seed`` and the statistic's truth there."""
    settings = PowerSettings(n_reps=m, grid=(0.0, abs(design.rho)), alpha=alpha, alternative=alternative,
                             direction="positive" if design.rho > 0 else "negative", seed=seed,
                             **_nulls(test))  # fmt: skip
    curve = power_curve(design, settings, stat)
    row = curve[curve["test"] == test].iloc[-1]  # the grid's last point: |rho|
    k = int(row["rejections"])
    return {"reps": m, "rejections": k, "power": k / m, "power_mcse": math.sqrt(k / m * (1 - k / m) / m),
            "seed": seed, "rho_true": float(row["rho_true"])}


def solve_n(
    design: Scenario,
    *,
    target_power: float = 0.8,
    statistic: str | Statistic = "spearman",
    test: str = "permutation",
    alpha: float = 0.05,
    alternative: str = "two-sided",
    n_range: Sequence[int] = (20, 400),
    reps: int = 400,
    seed: int = 0,
    confirm_reps: int = CONFIRM_REPS,
    store: str | Path | None = None,
) -> SolveResult:
    """The smallest n at which ``test`` of ``statistic`` reaches ``target_power`` under ``design``.

    Parameters
    ----------
    design : Scenario
        The data-generating process, its correlation (``rho``, the generator's target Spearman correlation)
        and its tie structure; its ``n`` is replaced by the search (:func:`design_at` scales the ties).
    target_power : float
        In (0, 1).
    statistic : str or Statistic
        ``spearman``, ``kendall_b``, ``pearson``, or a user statistic (a :class:`Statistic`, a registered
        name or ``"package.module:function"``).
    test : str
        One of the statistic's tests (:data:`SOLVE_TESTS`; a user statistic's :attr:`Statistic.tests`).
    alpha, alternative
        The test's level and alternative.
    n_range : (int, int)
        The search range, ``lo < hi``, ``lo`` at least 5 and at least the design's number of x groups.
    reps : int
        Datasets per evaluation of the bracketing stage; each refining round doubles them.
    seed : int
        Every evaluation's streams derive from it: the same arguments give the same answer.
    confirm_reps : int
        Datasets of the confirmation run at the answer.
    store : path, optional
        A Parquet file that keeps every evaluation as it is made, with the solve's arguments in its metadata:
        a solve stopped part-way and started again with the same arguments takes the stored evaluations
        instead of computing them again (each is a pure function of its index), so it gives the same answer.
        A file that holds a solve with other arguments is refused.

    Returns
    -------
    SolveResult

    Raises
    ------
    SolveError
        A bad argument, or a target the range cannot reach (with the power at each end).
    """
    target, alpha, stat = _power_target(target_power, alpha, alternative, statistic, test)
    if design.rho == 0:
        raise SolveError("a power target needs a correlation: the design's `rho` is 0 (power there is the size)")
    reps = check_positive_int(reps, "reps", minimum=50)
    confirm_reps = check_positive_int(confirm_reps, "confirm_reps", minimum=50)
    lo, hi = _check_range(n_range, design, stat)
    rows: list[dict] = []
    identity = {"design": design.key, "statistic": stat.name, "statistic_digest": stat.digest, "test": test,
                "target_power": target, "alpha": alpha, "alternative": alternative, "n_range": [lo, hi],
                "reps": reps, "seed": int(seed), "confirm_reps": confirm_reps, "format": SOLVE_FORMAT}  # fmt: skip
    stored = _stored(store, identity)
    keeping = []  # set once the bracket shows the target reachable: a refused solve writes nothing

    def evaluate(n: int, m: int, stage: str) -> dict:
        index = len(rows)
        point_seed = int(np.random.SeedSequence([int(seed), 39, index]).generate_state(1, np.uint32)[0])
        if index < len(stored) and (stored[index]["n"], stored[index]["reps"], stored[index]["seed"]) == (
                n, m, point_seed):  # fmt: skip
            rows.append(stored[index])
            return stored[index]
        out = {"n": n, **_power_point(design_at(design, n), stat, test, m, alpha, alternative, point_seed),
               "stage": stage}  # fmt: skip
        rows.append(out)
        if store is not None and keeping:
            _keep(store, rows, identity)
        return out

    for n in sorted(set(np.unique(np.round(np.exp(np.linspace(math.log(lo), math.log(hi), BRACKET_POINTS)))))):
        evaluate(int(n), reps, "bracket")
    first, last = rows[0], rows[-1]
    if last["power"] + 2 * last["power_mcse"] < target:
        raise SolveError(f"power {target:g} is not reached in n = {lo}-{hi}: the power at n = {lo} is "
                         f"{first['power']:.3f}, at n = {hi} {last['power']:.3f} (raise the range's upper end)")
    if first["power"] - 2 * first["power_mcse"] > target:
        raise SolveError(f"power {target:g} is already exceeded at the range's lower end: the power at n = {lo} is "
                         f"{first['power']:.3f}, at n = {hi} {last['power']:.3f} (lower the range's lower end)")
    if store is not None:
        keeping.append(True)
        _keep(store, rows, identity)
    m = reps
    for _ in range(ROUNDS):
        beta, cov, _ = _fit(rows, target)
        g, _ = _root(beta, cov, target)
        centre = min(max(g * g, lo), hi)
        m *= 2
        for n in sorted({int(round(min(max(centre * f, lo), hi))) for f in (1 / SPREAD, 1.0, SPREAD)}):
            evaluate(n, m, "refine")
    beta, cov, window = _fit(rows, target)
    g, se = _root(beta, cov, target)
    z = stats.norm.ppf(0.975)
    root = g * g
    if not lo <= root <= hi:  # the bracket's powers allowed it within their noise; the fit says otherwise
        raise SolveError(f"the fitted root n = {root:.1f} lies outside the search range {lo}-{hi} (the power at "
                         f"n = {lo} is {first['power']:.3f}, at n = {hi} {last['power']:.3f}): "
                         "widen the range")  # fmt: skip
    answer = math.ceil(root - 1e-9)
    confirm = evaluate(answer, confirm_reps, "confirm")
    evaluations = pd.DataFrame(rows)
    evaluations["in_fit"] = evaluations.index.isin(window) & (evaluations["stage"] != "confirm")
    return SolveResult(
        design=design, statistic=stat.name, test=test, target_power=target, alpha=alpha, alternative=alternative,
        evaluations=evaluations, answer=answer, root=root, root_lower=max(g - z * se, 0.0) ** 2,
        root_upper=(g + z * se) ** 2,
        p_root_at_most_answer=float(stats.norm.cdf((math.sqrt(answer) - g) / se)) if se > 0 else float(root <= answer),
        coefficients=(float(beta[0]), float(beta[1])),
        covariance=((float(cov[0, 0]), float(cov[0, 1])), (float(cov[1, 0]), float(cov[1, 1]))),
        confirmation={k: confirm[k] for k in ("n", "reps", "power", "power_mcse")},
        analytic=analytic_n(stat.name, confirm["rho_true"], target, alpha, alternative, design),
        rho_true=confirm["rho_true"], identity=identity,
    )  # fmt: skip


#: Version of a solve's stored evaluations (part of their identity).
SOLVE_FORMAT = 1
_IDENTITY_KEY = b"simulation.solve"


def _stored(store: str | Path | None, identity: dict) -> list[dict]:
    """The evaluations a store holds for a solve with these arguments (none without a store or file)."""
    if store is None or not Path(store).is_file():
        return []
    try:
        table = pq.read_table(store)
        kept = json.loads((table.schema.metadata or {}).get(_IDENTITY_KEY, b"null"))
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise SolveError(f"cannot read the stored evaluations `{store}`: {exc}") from None
    asked = json.loads(json.dumps(identity))
    if kept != asked:
        kept = kept if isinstance(kept, dict) else {}
        differ = {k: (kept.get(k), v) for k, v in asked.items() if kept.get(k) != v}
        raise SolveError(f"`{store}` holds the evaluations of a solve with other arguments (stored, asked: {differ}); "
                         "use another folder, or remove it")  # fmt: skip
    return [{k: v for k, v in row.items() if k != "in_fit"} for row in table.to_pylist()]


def _keep(store: str | Path, rows: list[dict], identity: dict) -> None:
    """Write every evaluation so far into ``store`` (atomically), the solve's arguments in its metadata."""
    table = pa.Table.from_pylist(rows)
    table = table.replace_schema_metadata({_IDENTITY_KEY: json.dumps(identity).encode()})
    Path(store).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(Path(store), lambda tmp: pq.write_table(table, tmp))


def _fit(rows: list[dict], target: float) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The GLM over every evaluation, then again over those within :data:`WINDOW` of its root when they
    hold at least three distinct n (with the indices of the evaluations used)."""
    table = pd.DataFrame(rows)
    table = table[table["stage"] != "confirm"]
    arrays = (np.sqrt(table["n"].to_numpy(float)), table["rejections"].to_numpy(float), table["reps"].to_numpy(float))
    beta, cov = fit_probit(*arrays)
    used = list(table.index)
    if beta[1] <= 0:
        raise SolveError("the power does not grow with n over the evaluations (the fitted slope is not positive): "
                         "check the design's correlation and the test's direction")  # fmt: skip
    g, _ = _root(beta, cov, target)
    near = (arrays[0] >= g / math.sqrt(WINDOW)) & (arrays[0] <= g * math.sqrt(WINDOW))
    if np.unique(arrays[0][near]).size >= 3:
        local_beta, local_cov = fit_probit(*(a[near] for a in arrays))
        if local_beta[1] > 0:
            beta, cov, used = local_beta, local_cov, list(table.index[near])
    return beta, cov, used


def _check_range(n_range: Sequence[int], design: Scenario, stat: Statistic) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in n_range)
    except (TypeError, ValueError):
        raise SolveError(f"`n_range` must be two integers (lo, hi), got {n_range!r}") from None
    smallest = max(5, stat.min_n, len(design.counts) if design.tied and design.counts else 0)
    if design.tied and design.template not in ("custom", "all_distinct"):
        smallest = max(smallest, _template_minimum(design))
    if not smallest <= lo < hi:
        raise SolveError(f"`n_range` must be lo < hi with lo >= {smallest} (the design's groups of x and the "
                         f"statistic allow no fewer), got {lo}-{hi}")  # fmt: skip
    if hi - lo < 2:
        raise SolveError(f"`n_range` {lo}-{hi} holds fewer than three values of n")
    return lo, hi


def _template_minimum(design: Scenario) -> int:
    """The smallest n a template with the design's number of groups accepts."""
    for n in range(design.k or 2, 10_000):
        try:
            tie_counts(n, design.k, design.template)
            return n
        except ValueError:
            continue
    return 10_000


def _evaluations_figure(result: _RootFound, value: str, mcse: str, target: float, fitted, label: str,
                        ylabel: str, grid_over_fit: bool):
    """The evaluations of a solve for n as points (area by their datasets, ±2 MCSE bars) by stage, the fitted
    curve ``fitted(n)`` (over the evaluations of the final fit where ``grid_over_fit``), the target, the answer
    and its 95% interval."""
    import matplotlib  # deferred: matplotlib loads only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib loads only when a figure is drawn

    e = result.evaluations
    fig, ax = plt.subplots(figsize=(3.35, 2.6), layout="constrained")
    span = e.loc[e["in_fit"], "n"] if grid_over_fit else e["n"]
    grid = np.linspace(span.min(), span.max(), 400)
    ax.plot(grid, fitted(grid), color="#0072B2", lw=1, label=label)
    for stage, colour, marker in (("bracket", "0.5", "o"), ("refine", "#000000", "o"), ("confirm", "#D55E00", "D")):
        part = e[e["stage"] == stage]
        ax.errorbar(part["n"], part[value], yerr=2 * part[mcse], fmt="none", ecolor=colour, lw=0.6)
        ax.scatter(part["n"], part[value], s=4 + 16 * part["reps"] / e["reps"].max(), color=colour, marker=marker,
                   label=stage, zorder=3)  # fmt: skip
    ax.axhline(target, color="0.3", ls=":", lw=0.8)
    ax.axvspan(result.root_lower, min(result.root_upper, e["n"].max()), color="#56B4E9", alpha=0.3, lw=0)
    ax.axvline(result.answer, color="#D55E00", lw=0.8, ls="--")
    ax.set_xscale("log")
    ticks = sorted({int(v) for v in e.loc[e["stage"] == "bracket", "n"]})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel(f"n (answer {result.answer}; shaded: 95% interval of the root)", fontsize=7)
    ax.set_ylabel(ylabel, fontsize=7)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6, frameon=False, loc="best")
    ax.set_title(textwrap.fill(f"{result.statistic}, {result.design.generator}, {_ties(result.design)}", 52),
                 fontsize=7)  # fmt: skip
    return fig, ax


def solve_figure(result: SolveResult):
    """The fitted power curve with every evaluation as a point (area by its datasets, ±2 MCSE bars), the
    target, the answer with its 95% interval, and the confirmation run."""
    a, b = result.coefficients
    fig, _ = _evaluations_figure(result, "power", "power_mcse", result.target_power,
                                 lambda n: ndtr(a + b * np.sqrt(n)), "fitted (probit in sqrt n)",
                                 f"power ({result.test}, alpha {result.alpha:g})", grid_over_fit=False)  # fmt: skip
    return fig


#: Files a solve writes into its folder.
SOLVE_EVALUATIONS, SOLVE_JSON = "solve_evaluations.parquet", "solve.json"


def write_solve(result: SolveResult | IntervalSolveResult, out: str | Path) -> list[Path]:
    """Write the evaluations (Parquet, the solve's arguments in its metadata, so that the same solve into the
    same folder takes them instead of computing them again), the answer (JSON) and the figure (PNG, PDF)
    into ``out``."""

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(result, IntervalSolveResult):
        return _write(result, out, _interval_record(result), interval_solve_figure(result))
    record = {
        "design": dataclasses.asdict(result.design) | {"key": result.design.key},
        "statistic": result.statistic, "test": result.test, "target_power": result.target_power,
        "alpha": result.alpha, "alternative": result.alternative, "rho_true": result.rho_true,
        "answer": result.answer, "root": result.root, "root_lower": result.root_lower,
        "root_upper": result.root_upper, "p_root_at_most_answer": result.p_root_at_most_answer,
        "model": "probit(power) = a + b sqrt(n)", "coefficients": list(result.coefficients),
        "covariance": [list(r) for r in result.covariance], "confirmation": result.confirmation,
        "analytic": None if result.analytic is None else {"n": result.analytic[0], "method": result.analytic[1]},
    }  # fmt: skip
    return _write(result, out, record, solve_figure(result))


def _write(result, out: Path, record: dict, fig) -> list[Path]:
    written = [out / SOLVE_EVALUATIONS, out / SOLVE_JSON]
    table = pa.Table.from_pandas(result.evaluations, preserve_index=False)
    table = table.replace_schema_metadata({_IDENTITY_KEY: json.dumps(result.identity).encode()})
    atomic_write(written[0], lambda tmp: pq.write_table(table, tmp))
    atomic_write(written[1], lambda tmp: tmp.write_text(json.dumps(record, indent=2, default=str) + "\n"))
    return written + write_figure(fig, out, "solve")


def _interval_record(result: IntervalSolveResult) -> dict:
    model = "log(mean_width) = a + b log(n)" if result.measure == "mean_width" else "coverage = a + b / n"
    return {
        "design": dataclasses.asdict(result.design) | {"key": result.design.key},
        "statistic": result.statistic, "method": result.method, "measure": result.measure, "target": result.target,
        "confidence_level": result.confidence_level, "rho_true": result.rho_true, "answer": result.answer,
        "root": result.root, "root_lower": result.root_lower, "root_upper": result.root_upper,
        "p_root_at_most_answer": result.p_root_at_most_answer, "model": model,
        "coefficients": list(result.coefficients), "covariance": [list(r) for r in result.covariance],
        "confirmation": result.confirmation,
        "analytic": None if result.analytic is None else {"n": result.analytic[0], "method": result.analytic[1]},
    }  # fmt: skip


def interval_solve_figure(result: IntervalSolveResult):
    """The fitted mean width (or coverage) against n with every evaluation as a point (±2 MCSE bars), the
    target, the answer with its 95% interval, and the confirmation run."""
    a, b = result.coefficients
    width = result.measure == "mean_width"
    fitted = (lambda n: np.exp(a + b * np.log(n))) if width else (lambda n: a + b / n)
    fig, ax = _evaluations_figure(
        result, "value", "mcse", result.target, fitted,
        f"fitted ({'power law in n' if width else 'linear in 1/n'}), near the root",
        f"{result.measure.replace('_', ' ')} ({result.method}, ±2 MCSE)", grid_over_fit=True,
    )  # fmt: skip
    if not width:
        ax.axhline(result.confidence_level, color="0.6", ls="--", lw=0.6)
    return fig


# --------------------------------------------------------------------------
# Interval targets: the n at which an interval reaches a width, or honest coverage
# --------------------------------------------------------------------------
#: Bootstrapped datasets of the confirmation run of an interval target.
CONFIRM_REPS_INTERVAL = 1000
#: An asymptotic method's evaluations use this many times ``reps`` datasets (of the cheap phase alone: no
#: resampling), about what the runner's allocation gives the cheap phase beside a bootstrap phase.
ASYMPTOTIC_REPS = 25
#: The token bootstrap phase of an evaluation of an asymptotic method (its measures come from the cheap phase).
MIN_BOOT_REPS = 50
#: The interval measures a solve can target, with the model of the measure against n fitted to the
#: evaluations (by weighted least squares, the weights the evaluations' inverse squared MCSEs):
#: ``mean_width``: ``log W = a + b log n`` (the width of a Wald-type interval falls as ``n^(-1/2)`` to first
#: order; the power law lets the exponent be fitted); ``coverage``: ``C = a + b / n`` (a two-sided interval's
#: coverage error is of order ``1/n``; Hall 1992, *The Bootstrap and Edgeworth Expansion*, §3.5).
INTERVAL_MEASURES = ("mean_width", "coverage")


@dataclasses.dataclass(frozen=True, kw_only=True)
class IntervalSolveResult(_RootFound):
    """What :func:`solve_interval_n` found: the smallest n at which ``method``'s mean width is at most
    ``target`` (``measure == "mean_width"``) or its coverage enters Bradley's liberal band
    (``measure == "coverage"``; ``target`` the band's edge it crosses).

    ``evaluations``: one row per evaluation (``n``, ``reps``: the datasets behind the value, bootstrapped or,
    for an asymptotic method, of the cheap phase; ``reps_cheap``, ``value``, ``mcse``, ``stage``, ``seed``,
    ``rho_true``); ``answer``, ``root``, ``root_lower``/``root_upper`` (95% interval) and
    ``p_root_at_most_answer`` as in :class:`SolveResult`; ``coefficients``/``covariance``: the final fit of
    the model in :data:`INTERVAL_MEASURES`; ``confirmation``: ``n``, ``reps``, ``value``, ``mcse`` at the answer;
    ``analytic``: the closed-form answer without ties (Bonett & Wright 2000 for a width) and its name, or None.
    """

    method: str
    measure: str
    target: float
    confidence_level: float

    def summary(self) -> str:
        """The answer in a few lines."""
        c = self.confirmation
        what = (f"mean width at most {self.target:g}" if self.measure == "mean_width" else
                f"coverage within Bradley's liberal band (crossing {self.target:g})")  # fmt: skip
        lines = [
            f"{self.statistic} {self.method} interval ({self.confidence_level:g}), {what}, true correlation "
            f"{self.rho_true:.4f} ({self.design.generator}, {_ties(self.design)}):",
            *self._answer_lines(),
            f"  confirmation at n = {c['n']}: {self.measure.replace('_', ' ')} {c['value']:.4f} (MCSE {c['mcse']:.4f}, "
            f"{c['reps']} datasets)",
            *self._closing_lines("datasets"),
        ]
        return "\n".join(lines)


def fit_wls(x: np.ndarray, y: np.ndarray, se: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares ``y = a + b x`` with weights ``1 / se^2``, and the covariance of ``(a, b)``
    scaled by the dispersion ``max(1, chi^2 / (k - 2))`` where the points scatter more than their errors
    say (McCullagh & Nelder 1989, §4.5; with k = 2 points the fit is exact and unscaled)."""
    w = 1.0 / np.maximum(se, 1e-300) ** 2
    design = np.column_stack([np.ones_like(x), x])
    info = design.T @ (design * w[:, None])
    cov = np.linalg.inv(info)
    beta = cov @ (design.T @ (w * y))
    if len(x) > 2:
        chi2 = float(np.sum(w * (y - design @ beta) ** 2))
        cov = cov * max(1.0, chi2 / (len(x) - 2))
    return beta, cov


def _interval_model(measure: str, target: float):
    """``(x(n), y(value), y's SE, root in x -> n, n -> x)`` of a measure's model (:data:`INTERVAL_MEASURES`)."""
    if measure == "mean_width":
        return (np.log, np.log, lambda v, s: s / v, math.exp, math.log), math.log(target)
    return (lambda n: 1.0 / n, lambda v: v, lambda v, s: s, lambda g: 1.0 / g, lambda n: 1.0 / n), target


def bonett_wright_n(statistic: str, rho: float, width: float, confidence_level: float) -> tuple[int, str] | None:
    """The sample size for a Fisher-z interval of expected width ``width`` without ties, by the two-stage
    formula of Bonett & Wright (2000, *Psychometrika* 65:23, eq. 7 and the correction after it): a first
    ``n0 = 4 c (1 - rho^2)^2 (z / w)^2 + b``, then ``n = (n0 - b) (w0 / w)^2 + b`` with ``w0`` the width of the
    interval at ``rho`` and ``n0``.  Variance ``c / (n - b)`` of atanh: Spearman's ``(1 + rho^2 / 2) / (n - 3)``
    (Bonett & Wright), Kendall's ``0.437 / (n - 4)`` (Fieller et al. 1957), Pearson's ``1 / (n - 3)``."""
    constants = {"spearman": (1 + rho * rho / 2, 3, "Bonett-Wright"), "kendall_b": (0.437, 4, "Fieller"),
                 "pearson": (1.0, 3, "Fisher's z")}  # fmt: skip
    if statistic not in constants or not abs(rho) < 1:
        return None
    c, b, name = constants[statistic]
    z = float(ndtri(1 - (1 - confidence_level) / 2))
    n0 = math.ceil(4 * c * (1 - rho * rho) ** 2 * (z / width) ** 2 + b)
    half = z * math.sqrt(c / (n0 - b))
    w0 = math.tanh(math.atanh(rho) + half) - math.tanh(math.atanh(rho) - half)
    return math.ceil((n0 - b) * (w0 / width) ** 2 + b), name


def solve_interval_n(
    design: Scenario,
    *,
    method: str,
    width: float | None = None,
    coverage: bool = False,
    statistic: str | Statistic = "spearman",
    confidence_level: float = 0.95,
    n_range: Sequence[int] = (20, 400),
    reps: int = 200,
    n_boot: int = 1000,
    seed: int = 0,
    confirm_reps: int = CONFIRM_REPS_INTERVAL,
    n_jobs: int = 1,
    store: str | Path | None = None,
) -> IntervalSolveResult:
    """The smallest n at which ``method``'s interval under ``design`` has a mean width of at most ``width``,
    or (``coverage=True``) a coverage within Bradley's liberal band (``level -+ (1 - level) / 2``).

    Each evaluation is a coverage study of the design at one n (:func:`~simulation.study.runner.run_all_ci_scenarios`:
    the cheap phase and the control variates make its mean width and coverage several times more precise
    than plain means of its datasets), on a seed of its own.  The search is that of :func:`solve_n`
    (a bracket of :data:`BRACKET_POINTS` values on log n, :data:`ROUNDS` refining rounds at the current root
    and a factor :data:`SPREAD` either side with twice the datasets, a final fit within :data:`WINDOW` of the
    root), with the measure's model of :data:`INTERVAL_MEASURES` fitted by :func:`fit_wls`; the root's 95%
    interval by the delta method on the model's scale.  The answer is the smallest integer at or above the
    root, confirmed by a run of ``confirm_reps`` bootstrapped datasets.

    Parameters
    ----------
    design : Scenario
        The data-generating process and its tie structure; its ``n`` is replaced (:func:`design_at`).
    method : str
        One of the statistic's interval methods.
    width : float, optional
        The target mean width, in (0, 2); exactly one of ``width`` and ``coverage``.
    coverage : bool
        Solve for the n at which the coverage enters the band from below (or from above, for a method that
        over-covers at the range's lower end).
    statistic, confidence_level, n_range, seed, store
        As in :func:`solve_n` (``store`` keeps every evaluation; a solve started again resumes).
    reps : int
        Bootstrapped datasets per evaluation of the bracket (at least 50); each refining round doubles them.
        For an asymptotic method, :data:`ASYMPTOTIC_REPS` times as many datasets, of the cheap phase
        (``confirm_reps`` likewise).
    n_boot : int
        Bootstrap resamples per dataset.
    n_jobs : int
        Worker processes of each evaluation (the results do not depend on it).

    Raises
    ------
    SolveError
        A bad argument, an unknown method, or a target the range cannot reach (with the value at each end).
    """
    stat = get_statistic(statistic)
    methods = (*stat.bootstrap_methods, *stat.asymptotic_methods)
    if method not in methods:
        raise SolveError(f"`method` must be one of {list(methods)} for {stat.name}, got {method!r}")
    if (width is None) == (not coverage):
        raise SolveError("give exactly one target: `width` (a mean width) or `coverage=True` (Bradley's band)")
    if width is not None and not (isinstance(width, int | float) and 0 < width < 2):
        raise SolveError(f"`width` must be in (0, 2) (a correlation's interval), got {width!r}")
    confidence_level = check_confidence_level(confidence_level)
    reps = check_positive_int(reps, "reps", minimum=50)
    confirm_reps = check_positive_int(confirm_reps, "confirm_reps", minimum=50)
    n_boot = check_positive_int(n_boot, "n_boot", minimum=50)
    lo, hi = _check_range(n_range, design, stat)
    measure = "coverage" if coverage else "mean_width"
    asymptotic = method in stat.asymptotic_methods
    if asymptotic:  # the datasets of the cheap phase: as many as a bootstrap phase's cost would buy
        reps, confirm_reps = reps * ASYMPTOTIC_REPS, confirm_reps * ASYMPTOTIC_REPS
    tolerance = 0.5 * (1 - confidence_level)  # Bradley's liberal criterion
    band = (confidence_level - tolerance, confidence_level + tolerance)
    identity = {"design": design.key, "statistic": stat.name, "statistic_digest": stat.digest, "method": method,
                "measure": measure, "width": width, "confidence_level": confidence_level, "n_range": [lo, hi],
                "reps": reps, "n_boot": n_boot, "seed": int(seed), "confirm_reps": confirm_reps,
                "format": SOLVE_FORMAT}  # fmt: skip
    stored = _stored(store, identity)
    rows: list[dict] = []
    keeping = []

    def evaluate(n: int, m: int, stage: str) -> dict:
        index = len(rows)
        point_seed = int(np.random.SeedSequence([int(seed), 39, 1, index]).generate_state(1, np.uint32)[0])
        if index < len(stored) and (stored[index]["n"], stored[index]["reps"], stored[index]["seed"]) == (
                n, m, point_seed):  # fmt: skip
            rows.append(stored[index])
            return stored[index]
        if asymptotic:  # the cheap phase alone carries the measure: a token bootstrap phase
            sizes = {"n_reps": MIN_BOOT_REPS, "n_boot": MIN_N_BOOT, "n_reps_cheap": m}
        else:
            sizes = {"n_reps": m, "n_boot": n_boot}
        study = run_all_ci_scenarios([design_at(design, n)], **sizes, confidence_level=confidence_level,
                                     methods=[method], statistics=[stat], seed=point_seed, n_jobs=n_jobs)  # fmt: skip
        row = study.coverage.iloc[0]
        out = {"n": n, "reps": m, "reps_cheap": int(row["n_reps_cheap"]), "value": float(row[measure]),
               "mcse": float(row[f"{measure}_mcse"]), "stage": stage, "seed": point_seed,
               "rho_true": float(row["rho_true"])}  # fmt: skip
        rows.append(out)
        if store is not None and keeping:
            _keep(store, rows, identity)
        return out

    for n in sorted(set(np.unique(np.round(np.exp(np.linspace(math.log(lo), math.log(hi), BRACKET_POINTS)))))):
        evaluate(int(n), reps, "bracket")
    first, last = rows[0], rows[-1]
    ends = f"{measure.replace('_', ' ')} at n = {lo} is {first['value']:.4f}, at n = {hi} {last['value']:.4f}"
    if measure == "mean_width":
        target = float(width)
        if last["value"] - 2 * last["mcse"] > target:
            raise SolveError(f"a mean width of {target:g} is not reached in n = {lo}-{hi}: the {ends} (raise the "
                             "range's upper end)")  # fmt: skip
        if first["value"] + 2 * first["mcse"] < target:
            raise SolveError(f"a mean width of {target:g} is already met at the range's lower end: the {ends} "
                             "(lower the range's lower end)")  # fmt: skip
    else:
        if band[0] <= first["value"] <= band[1]:
            raise SolveError(f"the coverage is already within Bradley's band {band[0]:g}-{band[1]:g} at the range's "
                             f"lower end: the {ends} (lower the range's lower end)")  # fmt: skip
        target = band[0] if first["value"] < band[0] else band[1]
        beyond = last["value"] + 2 * last["mcse"] < target if target == band[0] else (
            last["value"] - 2 * last["mcse"] > target)  # fmt: skip
        if beyond:
            raise SolveError(f"the coverage does not reach Bradley's band {band[0]:g}-{band[1]:g} in n = {lo}-{hi}: "
                             f"the {ends} (raise the range's upper end, or choose another method)")  # fmt: skip
    (fx, fy, fse, back, forth), y_target = _interval_model(measure, target)

    def fit(window: bool) -> tuple[np.ndarray, np.ndarray, float, float, list[int]]:
        table = pd.DataFrame(rows)
        table = table[table["stage"] != "confirm"]
        n_, v_, s_ = (table[c].to_numpy(float) for c in ("n", "value", "mcse"))
        x, y, se = fx(n_), fy(v_), fse(v_, s_)
        beta, cov = fit_wls(x, y, se)
        used = list(table.index)
        if window and beta[1] != 0:
            g = (y_target - beta[0]) / beta[1]
            if g > 0 or measure == "mean_width":
                root = back(g)
                near = (n_ >= root / WINDOW) & (n_ <= root * WINDOW)
                if np.unique(n_[near]).size >= 3:
                    beta, cov = fit_wls(x[near], y[near], se[near])
                    used = list(table.index[near])
        if beta[1] == 0:
            raise SolveError(f"the {measure.replace('_', ' ')} does not change with n over the evaluations")
        g = (y_target - beta[0]) / beta[1]
        grad = np.array([-1.0 / beta[1], -g / beta[1]])
        return beta, cov, g, float(math.sqrt(max(grad @ cov @ grad, 0.0))), used

    m = reps
    for _ in range(ROUNDS):
        _, _, g, _, _ = fit(window=False)
        centre = min(max(back(g), lo), hi) if (measure == "mean_width" or g > 0) else hi
        m *= 2
        for n in sorted({int(round(min(max(centre * f, lo), hi))) for f in (1 / SPREAD, 1.0, SPREAD)}):
            evaluate(n, m, "refine")
    beta, cov, g, se, window = fit(window=True)
    if measure == "coverage" and g <= 0:
        raise SolveError(f"the fitted coverage never reaches {target:g} (its limit in n is {beta[0]:.4f}): the "
                         f"{ends}")  # fmt: skip
    root = back(g)
    if not lo <= root <= hi:
        raise SolveError(f"the fitted root n = {root:.1f} lies outside the search range {lo}-{hi} (the {ends}): "
                         "widen the range")  # fmt: skip
    z = float(ndtri(0.975))
    ends_g = sorted(back(v) if (measure == "mean_width" or v > 0) else math.inf for v in (g - z * se, g + z * se))
    answer = math.ceil(root - 1e-9)
    # P(root <= answer): on the model's scale x(n), decreasing in n for the coverage's 1/n
    side = (forth(answer) - g) / se if se > 0 else math.copysign(math.inf, forth(answer) - g)
    p_at_most = float(ndtr(side if measure == "mean_width" else -side))
    confirm = evaluate(answer, confirm_reps, "confirm")
    evaluations = pd.DataFrame(rows)
    evaluations["in_fit"] = evaluations.index.isin(window) & (evaluations["stage"] != "confirm")
    return IntervalSolveResult(
        design=design, statistic=stat.name, method=method, measure=measure, target=target,
        confidence_level=confidence_level, evaluations=evaluations, answer=answer, root=root,
        root_lower=ends_g[0], root_upper=ends_g[1], p_root_at_most_answer=p_at_most,
        coefficients=(float(beta[0]), float(beta[1])),
        covariance=((float(cov[0, 0]), float(cov[0, 1])), (float(cov[1, 0]), float(cov[1, 1]))),
        confirmation={"n": answer, "reps": confirm_reps, "value": confirm["value"], "mcse": confirm["mcse"]},
        analytic=bonett_wright_n(stat.name, confirm["rho_true"], target, confidence_level)
        if measure == "mean_width" else None,
        rho_true=confirm["rho_true"], identity=identity,
    )  # fmt: skip


# --------------------------------------------------------------------------
# The other unknown: the correlation a design of fixed n detects
# --------------------------------------------------------------------------
#: Grid step (in the generator's target correlation) of :func:`solve_rho`'s first curve, and its finer second.
RHO_STEP, RHO_FINE_POINTS = 0.05, 5
#: The largest target correlation :func:`solve_rho` searches (and at most this share of a tied design's reach).
RHO_MAX, RHO_REACH_SHARE = 0.9, 0.97


@dataclasses.dataclass(frozen=True)
class RhoSolveResult:
    """What :func:`solve_rho` found: the smallest absolute correlation at which ``test`` reaches
    ``target_power`` at the design's n (the minimum detectable correlation).

    ``rho_star`` in the statistic's own units (its truth at the design), with ``rho_star_se`` and the 95%
    interval ``rho_star_lower``/``rho_star_upper``; ``design_rho``: the generator's target correlation there
    (the design's ``rho`` to use); ``estimate``: how the crossing was read (:func:`~simulation.power.curves.
    minimum_detectable`); ``evaluations``: both curves (``stage`` ``coarse``, ``fine``); ``confirmation``:
    ``reps``, ``power``, ``power_mcse`` at ``design_rho``; ``analytic``: the test's approximation without
    simulation where the statistic has one (Spearman's noncentral t, Kendall's normal approximation)."""

    design: Scenario
    statistic: str
    test: str
    target_power: float
    alpha: float
    alternative: str
    rho_star: float
    rho_star_se: float
    rho_star_lower: float
    rho_star_upper: float
    design_rho: float
    estimate: str
    evaluations: pd.DataFrame
    confirmation: dict
    analytic: float | None

    def summary(self) -> str:
        c = self.confirmation
        lines = [
            f"{self.statistic} {self.test} test, power {self.target_power:g} at alpha {self.alpha:g} "
            f"({self.alternative}), n = {self.design.n} ({self.design.generator}, {_ties(self.design)}):",
            f"  minimum detectable |{self.statistic}| = {self.rho_star:.4f} (95% interval {self.rho_star_lower:.4f}-"
            f"{self.rho_star_upper:.4f}; {self.estimate}); the generator's target there: {self.design_rho:.4f}",
            f"  confirmation there: power {c['power']:.3f} (MCSE {c['power_mcse']:.3f}, {c['reps']} datasets)",
        ]
        if self.analytic is not None:
            lines.append(f"  approximation without simulation: {self.analytic:.4f}")
        return "\n".join(lines)


def solve_rho(
    design: Scenario,
    *,
    target_power: float = 0.8,
    statistic: str | Statistic = "spearman",
    test: str = "permutation",
    alpha: float = 0.05,
    alternative: str = "two-sided",
    reps: int = 1000,
    seed: int = 0,
    confirm_reps: int = CONFIRM_REPS,
) -> RhoSolveResult:
    """The minimum detectable correlation of ``test`` at the design's n and ties: the smallest absolute
    correlation at which it reaches ``target_power``, in the direction of the design's ``rho`` (positive
    when 0).

    A power curve with common random numbers over the generator's targets 0, :data:`RHO_STEP`, ... (up to
    :data:`RHO_MAX`, and within a tied design's reach), ``reps`` datasets per point; then a curve of
    :data:`RHO_FINE_POINTS` points a quarter step apart around its crossing, on fresh streams with four
    times the datasets; the crossing of the second read off a probit curve in ``atanh |rho|``
    (:func:`~simulation.power.curves.probit_crossing`), with its delta-method SE; a confirmation run of
    ``confirm_reps`` datasets at the generator's target there.  Raises :class:`SolveError` when the target
    is not reached below the search's end (with the power there) or already at its start."""
    target, alpha, stat = _power_target(target_power, alpha, alternative, statistic, test)
    reps = check_positive_int(reps, "reps", minimum=50)
    confirm_reps = check_positive_int(confirm_reps, "confirm_reps", minimum=50)
    direction = "negative" if design.rho < 0 else "positive"
    top = RHO_MAX
    if design.tied and design.template != "all_distinct":
        counts = design.counts if design.counts else tie_counts(design.n, design.k, design.template)
        top = min(top, RHO_REACH_SHARE * reachable_range(design.generator, tuple(counts), pool=design.pool)[1])
    nulls = _nulls(test)

    def curve(grid: Sequence[float], m: int, stream: int) -> pd.DataFrame:
        point_seed = int(np.random.SeedSequence([int(seed), 39, 2, stream]).generate_state(1, np.uint32)[0])
        settings = PowerSettings(n_reps=m, grid=tuple(grid), alpha=alpha, alternative=alternative,
                                 direction=direction, seed=point_seed, target_power=target, **nulls)  # fmt: skip
        table = power_curve(design, settings, stat)
        return table, settings

    coarse_grid = [round(RHO_STEP * i, 10) for i in range(int(top / RHO_STEP) + 1)]
    first, settings = curve(coarse_grid, reps, 0)
    star = minimum_detectable(first, design, settings, stat.name)
    star = star[star["test"] == test].iloc[0]
    if star["status"] == "not_reached":
        raise SolveError(f"power {target:g} is not reached below the search's end: the power at the generator's "
                         f"target {coarse_grid[-1]:g} is {star['power_at_search_hi']:.3f} (n = {design.n}: a larger "
                         "n, or a lower target power)")  # fmt: skip
    if star["status"] == "at_grid_start":
        raise SolveError(f"power {target:g} is reached at the search's start ({coarse_grid[0]:g})")
    rows = first[first["test"] == test]  # one row per grid point, in the grid's order
    centre = float(np.interp(star["rho_star"], rows["rho_true"].abs(), coarse_grid))
    fine_grid = sorted({round(min(max(centre + RHO_STEP / 4 * (j - RHO_FINE_POINTS // 2), RHO_STEP / 4), top), 10)
                        for j in range(RHO_FINE_POINTS)})  # fmt: skip
    second, settings = curve(fine_grid, 4 * reps, 1)
    found = minimum_detectable(second, design, settings, stat.name)
    found = found[found["test"] == test].iloc[0]
    if found["status"] != "ok":  # the finer curve's crossing left its range: the coarse answer stands
        found = star
    fine_rows = second[second["test"] == test]
    design_rho = float(np.interp(found["rho_star"], fine_rows["rho_true"].abs(), np.asarray(fine_grid)))
    design_rho = math.copysign(design_rho, -1.0 if direction == "negative" else 1.0)
    confirm, _ = curve([0.0, abs(design_rho)], confirm_reps, 2)
    at = confirm[confirm["test"] == test].iloc[-1]
    analytic = None
    if "asymptotic" in set(first["test"]):
        approx = minimum_detectable(first, design, settings, stat.name)
        approx = approx[approx["test"] == "asymptotic"]
        if len(approx) and approx["status"].iloc[0] == "ok":
            analytic = float(approx["rho_star"].iloc[0])
    se = float(found["rho_star_se"])
    evaluations = pd.concat([first.assign(stage="coarse"), second.assign(stage="fine")], ignore_index=True)
    return RhoSolveResult(
        design=design, statistic=stat.name, test=test, target_power=target, alpha=alpha, alternative=alternative,
        rho_star=float(found["rho_star"]), rho_star_se=se, rho_star_lower=float(found["rho_star"]) - 1.959964 * se,
        rho_star_upper=float(found["rho_star"]) + 1.959964 * se, design_rho=design_rho,
        estimate=str(found["estimate"]), evaluations=evaluations,
        confirmation={"reps": confirm_reps, "power": float(at["power"]), "power_mcse": float(at["power_mcse"])},
        analytic=analytic,
    )  # fmt: skip


# --------------------------------------------------------------------------
# The third unknown: how many distinct x values a design of fixed n needs
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class KSolveResult:
    """What :func:`solve_k` found: the smallest number of distinct x values ``k`` (the design's tie template
    at its n) at which ``test`` reaches ``target_power``.  ``evaluations``: ``k``, ``reps``, ``rejections``,
    ``power``, ``power_mcse`` for every k the template allows at n; ``answer`` (None when no k reaches
    the target); ``p_answer_reaches``: P(the power at ``answer`` is at least the target) and
    ``p_below_falls_short``: P(the power at the k before it is below the target), each from the normal
    approximation to its binomial count."""

    design: Scenario
    statistic: str
    test: str
    target_power: float
    alpha: float
    alternative: str
    evaluations: pd.DataFrame
    answer: int | None
    p_answer_reaches: float
    p_below_falls_short: float

    def summary(self) -> str:
        head = (f"{self.statistic} {self.test} test, power {self.target_power:g} at alpha {self.alpha:g} "
                f"({self.alternative}), n = {self.design.n}, rho = {self.design.rho:g}, template "
                f"{self.design.template}:")  # fmt: skip
        table = ", ".join(f"k = {r.k}: {r.power:.3f}" for r in self.evaluations.itertuples())
        if self.answer is None:
            return f"{head}\n  no k reaches it ({table})"
        return (f"{head}\n  k = {self.answer} (P(its power >= {self.target_power:g}) = {self.p_answer_reaches:.2f}; "
                f"P(k = {self.answer - 1} falls short) = {self.p_below_falls_short:.2f})\n  {table}")


def solve_k(
    design: Scenario,
    *,
    target_power: float = 0.8,
    statistic: str | Statistic = "spearman",
    test: str = "permutation",
    alpha: float = 0.05,
    alternative: str = "two-sided",
    reps: int = 2000,
    seed: int = 0,
) -> KSolveResult:
    """The smallest number of distinct x values at which ``test`` reaches ``target_power`` under ``design``
    (its tie template, n and correlation; ``k`` is replaced): every k the template allows at n is evaluated
    with ``reps`` datasets (k takes few values, so all of them are; power need not grow with k under every
    template), and the answer is the smallest k whose power estimate reaches the target, with how sure that
    is.  A design without a tie template (custom counts, all distinct, untied) is refused."""
    target, alpha, stat = _power_target(target_power, alpha, alternative, statistic, test)
    if not design.tied or design.template in ("custom", "all_distinct"):
        raise SolveError(f"solving for k needs a design with a tie template (even, heavy_tail, heavy_center, ...), "
                         f"got template {design.template!r}")  # fmt: skip
    if design.rho == 0:
        raise SolveError("a power target needs a correlation: the design's `rho` is 0 (power there is the size)")
    reps = check_positive_int(reps, "reps", minimum=50)
    ks = []
    for k in range(2, min(design.n, 200) + 1):
        try:
            tie_counts(design.n, k, design.template)
        except ValueError:
            continue
        ks.append(k)
    rows = []
    for k in ks:
        point_seed = int(np.random.SeedSequence([int(seed), 39, 3, k]).generate_state(1, np.uint32)[0])
        point = _power_point(dataclasses.replace(design, k=k, counts=None), stat, test, reps, alpha, alternative,
                             point_seed)  # fmt: skip
        rows.append({"k": k, **{c: point[c] for c in ("reps", "rejections", "power", "power_mcse", "seed")}})
    table = pd.DataFrame(rows)
    reached = table[table["power"] >= target]
    if reached.empty:
        return KSolveResult(design, stat.name, test, target, alpha, alternative, table, None, math.nan, math.nan)

    def p_at_least(r) -> float:
        se = max(math.sqrt(target * (1 - target) / r["reps"]), 1e-12)
        return float(ndtr((r["power"] - target) / se))

    i = int(reached.index[0])
    below = 1 - p_at_least(table.loc[i - 1]) if i > 0 else 1.0
    return KSolveResult(design, stat.name, test, target, alpha, alternative, table, int(table.loc[i, "k"]),
                        p_at_least(table.loc[i]), below)
