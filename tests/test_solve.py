"""Solving a design for n (simulation.power.solve) against independent references: the exact power of
Pearson's t test by numerical integration of r's density, and a brute-force grid of a tied design."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from simulation.cli.parser import main
from simulation.models.scenarios import Scenario
from simulation.power.curves import PowerSettings, power_curve
from simulation.power.solve import (
    SolveError,
    bonett_wright_n,
    design_at,
    fit_probit,
    fit_wls,
    solve_interval_n,
    solve_n,
)
from simulation.study.runner import run_all_ci_scenarios
from tests.userstats import LOG_PEARSON

#: Spearman's rho of the bivariate normal whose Pearson correlation is 0.3 (r = 2 sin(pi rho_s / 6)).
RHO_S_OF_R03 = 6 / math.pi * math.asin(0.15)


def _r_density(r: float, rho: float, n: int) -> float:
    """The exact density of Pearson's r in bivariate normal samples (Hotelling 1953, JRSS B 15:193, eq. 1.8;
    Fisher 1915), through the Gauss hypergeometric function."""
    log_c = math.lgamma(n - 1) - math.lgamma(n - 0.5)
    return ((n - 2) * math.exp(log_c) * (1 - rho * rho) ** ((n - 1) / 2) * (1 - r * r) ** ((n - 4) / 2)
            / (math.sqrt(2 * math.pi) * (1 - rho * r) ** (n - 1.5))
            * special.hyp2f1(0.5, 0.5, n - 0.5, (1 + rho * r) / 2))  # fmt: skip


def exact_t_test_power(rho: float, n: int, alpha: float = 0.05) -> float:
    """P(|r| >= r_c) with r_c the two-sided t test's critical r, by quadrature of the density."""
    t_c = stats.t.ppf(1 - alpha / 2, n - 2)
    r_c = t_c / math.sqrt(n - 2 + t_c * t_c)
    upper = integrate.quad(_r_density, r_c, 1, args=(rho, n), epsabs=1e-13, epsrel=1e-11, limit=200)[0]
    lower = integrate.quad(_r_density, -1, -r_c, args=(rho, n), epsabs=1e-13, epsrel=1e-11, limit=200)[0]
    return upper + lower


def test_the_exact_power_reference_is_a_density_with_the_right_size():
    assert integrate.quad(_r_density, -1, 1, args=(0.3, 40))[0] == pytest.approx(1, abs=1e-9)
    assert exact_t_test_power(0.0, 30) == pytest.approx(0.05, abs=1e-12)


def _exact_root(target=0.9, rho=0.3) -> float:
    """The continuous crossing of the exact power (linear between the integers around it)."""
    n = 10
    while exact_t_test_power(rho, n + 1) < target:
        n += 1
    lo, hi = exact_t_test_power(rho, n), exact_t_test_power(rho, n + 1)
    return n + (target - lo) / (hi - lo)


def test_pearson_t_test_n_for_power_09_matches_the_exact_root_over_independent_seeds():
    """Pearson's t test, r = 0.3, alpha 0.05 two-sided, power 0.9, bivariate normal: the exact smallest n is
    112 (root 111.69; Fisher's z gives 113).  Over 20 seeds the solve's 95% interval must cover the exact root
    at least 16 times: for an interval that covers 95% of the time, fewer than 16 happens with probability
    0.016 (binomial).  (Over 200 seeds: 0.955, the roots' mean 111.71 and SD 0.89 against a mean reported SE
    of 0.90.)"""
    root = _exact_root()
    assert 111 < root < 112
    design = Scenario("plan", "bivariate_normal", 80, rho=RHO_S_OF_R03)
    covered, answers = 0, []
    for seed in range(20):
        result = solve_n(design, target_power=0.9, statistic="pearson", test="t_test", n_range=(20, 400),
                         seed=500 + seed, confirm_reps=50)  # fmt: skip
        covered += result.root_lower <= root <= result.root_upper
        answers.append(result.answer)
        assert result.rho_true == pytest.approx(0.3, abs=1e-12)
        assert result.analytic == (113, "Fisher's z")
    assert covered >= 16, (covered, answers)
    assert 110 <= np.median(answers) <= 113


def test_a_tied_design_agrees_with_a_brute_force_grid():
    """Spearman's t approximation at a design with x in 4 groups: the solve's root against the crossing of a
    grid of powers at every n from 22 to 31 (40,000 datasets each, MCSE 0.002), within the two errors
    combined (3 SDs: false alarm 0.3%)."""
    design = Scenario("plan", "rank_mixing", 80, k=4, template="even", rho=0.5)
    result = solve_n(design, target_power=0.8, statistic="spearman", test="t_approx", n_range=(10, 200), seed=3,
                     confirm_reps=1000)  # fmt: skip
    powers = {}
    for n in range(22, 32):
        settings = PowerSettings(n_reps=40_000, grid=(0.0, 0.5), direction="positive", seed=900 + n, n_perm=1,
                                 n_perm_tied_y=1)  # fmt: skip
        curve = power_curve(design_at(design, n), settings, "spearman")
        powers[n] = float(curve[curve["test"] == "t_approx"]["power"].iloc[-1])
    below = max(n for n, p in powers.items() if p < 0.8)
    slope = powers[below + 1] - powers[below]
    brute = below + (0.8 - powers[below]) / slope
    brute_se = math.sqrt(2) * math.sqrt(0.8 * 0.2 / 40_000) / slope
    solve_se = (result.root_upper - result.root_lower) / (2 * 1.96)
    assert abs(result.root - brute) <= 3 * math.hypot(brute_se, solve_se), (result.root, brute)
    assert result.answer == math.ceil(result.root - 1e-9)


def test_a_custom_design_keeps_its_proportions_at_every_n():
    design = Scenario("plan", "rank_mixing", 60, template="custom", counts=(24, 18, 10, 5, 3), rho=0.3)
    assert design_at(design, 60).counts == (24, 18, 10, 5, 3)
    assert design_at(design, 30).counts == (12, 9, 5, 3, 1)  # 12, 9, 5, 2.5, 1.5: the first half goes up
    for n in (7, 31, 200):
        counts = design_at(design, n).counts
        assert sum(counts) == n and len(counts) == 5 and min(counts) >= 1
    assert design_at(Scenario("p", "rank_mixing", 80, k=5, template="even", rho=0.3), 40).counts == (8,) * 5


def test_the_probit_fit_recovers_known_coefficients():
    """Binomial counts drawn from probit(p) = -2 + 0.3 sqrt(n): the IRLS fit against SciPy's maximizer of the
    same likelihood."""
    from scipy import optimize

    rng = np.random.default_rng(5)
    n = np.array([20, 40, 80, 120, 200, 300], float)
    reps = np.full(n.size, 2000.0)
    k = rng.binomial(2000, stats.norm.cdf(-2 + 0.3 * np.sqrt(n))).astype(float)
    beta, cov = fit_probit(np.sqrt(n), k, reps)

    def nll(b):
        p = np.clip(stats.norm.cdf(b[0] + b[1] * np.sqrt(n)), 1e-15, 1 - 1e-15)
        return -np.sum(k * np.log(p) + (reps - k) * np.log(1 - p))

    ref = optimize.minimize(nll, [0.0, 0.1], method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12,
                                                                          "maxiter": 20_000}).x  # fmt: skip
    np.testing.assert_allclose(beta, ref, atol=1e-5)
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_a_solve_is_a_pure_function_of_its_arguments():
    design = Scenario("plan", "rank_mixing", 80, k=5, template="even", rho=0.4)
    a = solve_n(design, statistic="spearman", test="t_approx", n_range=(10, 150), seed=8, confirm_reps=100)
    b = solve_n(design, statistic="spearman", test="t_approx", n_range=(10, 150), seed=8, confirm_reps=100)
    assert a.evaluations.equals(b.evaluations) and a.answer == b.answer and a.root == b.root


def test_targets_the_range_cannot_reach_and_bad_arguments_are_refused():
    design = Scenario("plan", "rank_mixing", 80, k=5, template="even", rho=0.2)
    with pytest.raises(SolveError, match=r"power 0.8 is not reached in n = 20-40: the power at n = 20 is .*, at "
                                         r"n = 40 "):  # fmt: skip
        solve_n(design, statistic="spearman", test="t_approx", n_range=(20, 40), seed=1)
    with pytest.raises(SolveError, match=r"already exceeded at the range's lower end"):
        solve_n(Scenario("plan", "rank_mixing", 80, k=5, template="even", rho=0.8), statistic="spearman",
                test="t_approx", n_range=(200, 400), seed=1)  # fmt: skip
    with pytest.raises(SolveError, match=r"`test` must be one of \['permutation', 't_approx'\] for spearman"):
        solve_n(design, test="wald")
    with pytest.raises(ValueError, match=r"`target_power` must be a number in \(0, 1\), got 1.2"):
        solve_n(design, target_power=1.2)
    with pytest.raises(SolveError, match=r"`n_range` must be lo < hi with lo >= 10"):
        solve_n(design, n_range=(8, 100))
    with pytest.raises(SolveError, match=r"a power target needs a correlation"):
        solve_n(Scenario("plan", "rank_mixing", 80, k=5, template="even", rho=0.0))


def test_the_solve_command_writes_the_answer_and_refuses_bad_input(tmp_path, capsys):
    study = tmp_path / "design.csv"
    study.write_text("case,generator,n,k,template,counts,rho\nplan,rank_mixing,80,5,even,,0.45\n")
    out = tmp_path / "s"
    assert main(["--no-config", "solve", str(study), "--test", "t_approx", "--n-range", "10,150", "--seed", "2",
                 "--out", str(out)]) == 0  # fmt: skip
    record = json.loads((out / "solve.json").read_text())
    shown = capsys.readouterr().out
    assert f"n = {record['answer']} (fitted root" in shown
    assert record["root_lower"] <= record["root"] <= record["root_upper"]
    assert (out / "solve.png").stat().st_size > 0 and (out / "solve_evaluations.parquet").stat().st_size > 0
    # the same solve into the same folder takes the stored evaluations and gives the same answer
    assert main(["--no-config", "solve", str(study), "--test", "t_approx", "--n-range", "10,150", "--seed", "2",
                 "--out", str(out)]) == 0  # fmt: skip
    again = capsys.readouterr().out
    assert "evaluation(s) taken from" in again and json.loads((out / "solve.json").read_text()) == record
    bad = tmp_path / "bad"
    for args, message in [(["--n-range", "30"], "`n_range` must be two integers"),
                          (["--test", "t_test"], "`test` must be one of"),
                          (["--n-range", "10,20", "--test", "t_approx"], "is not reached in n = 10-20"),
                          (["--scenario", "nope"], "--scenario 'nope' is not in the study")]:  # fmt: skip
        assert main(["--no-config", "solve", str(study), "--out", str(bad), *args]) == 2
        assert message in capsys.readouterr().err
        assert not bad.exists()


def test_kendalls_analytic_answer_without_ties_is_noethers():
    """Without ties, the normal approximation's n against Noether's (1987) condition written out: the
    smallest n with ``(z_(1-alpha/2) + z_power) sd0(n) <= tau``, ``sd0^2 = 2 (2n + 5) / (9 n (n - 1))`` the
    exact null variance of tau (Kendall 1970, eq. 4.3); the far tail of a two-sided test adds nothing at
    this n (below 1e-6), so the two agree exactly.  (Its large-n form ``4 / (9 n)`` gives 87.2.)"""
    from simulation.power.solve import analytic_n

    design = Scenario("plan", "bivariate_normal", 80, rho=0.3)
    tau = 0.2
    n, name = analytic_n("kendall_b", tau, 0.8, 0.05, "two-sided", design)
    z = stats.norm.isf(0.025) + stats.norm.ppf(0.8)
    reference = next(m for m in range(5, 1000) if z * math.sqrt(2 * (2 * m + 5) / (9 * m * (m - 1))) <= tau)
    assert name == "normal approximation, tie-corrected"
    assert n == reference
    # ties in x lower the null variance's denominator: a tied design needs more pairs at the same tau-b
    tied = Scenario("plan", "rank_mixing", 80, k=4, template="even", rho=0.3)
    assert analytic_n("kendall_b", tau, 0.8, 0.05, "two-sided", tied)[0] > n


def test_a_user_statistic_is_solved_through_its_own_permutation_test():
    from tests.userstats import USER_SPEARMAN

    design = Scenario("plan", "rank_mixing", 80, k=4, template="even", rho=0.5)
    result = solve_n(design, statistic=USER_SPEARMAN, test="permutation", n_range=(10, 120), reps=100, seed=4,
                     confirm_reps=400)  # fmt: skip
    builtin = solve_n(design, statistic="spearman", test="permutation", n_range=(10, 120), reps=100, seed=4,
                      confirm_reps=400)  # fmt: skip
    # the same test of the same statistic on other datasets: the roots agree within their errors (3 SDs)
    se = math.hypot(*((r.root_upper - r.root_lower) / 3.92 for r in (result, builtin)))
    assert result.statistic == USER_SPEARMAN.name and abs(result.root - builtin.root) <= 3 * se
    with pytest.raises(SolveError, match=r"`test` must be one of \['permutation'\]"):
        solve_n(design, statistic=USER_SPEARMAN, test="t_approx")


def test_a_stopped_solve_resumes_from_its_stored_evaluations(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    import simulation.power.solve as solve_module

    design = Scenario("plan", "rank_mixing", 80, k=5, template="even", rho=0.4)
    store = tmp_path / "evaluations.parquet"
    args = dict(statistic="spearman", test="t_approx", n_range=(10, 150), seed=8, confirm_reps=100)
    full = solve_n(design, store=store, **args)
    # a solve stopped after 7 evaluations: its store holds those (with the arguments in its metadata)
    table = pq.read_table(store)
    pq.write_table(table.slice(0, 7), store)
    calls = []
    real = solve_module.power_curve
    monkeypatch.setattr(solve_module, "power_curve", lambda *a, **k: calls.append(1) or real(*a, **k))
    resumed = solve_n(design, store=store, **args)
    assert len(calls) == len(full.evaluations) - 7  # only the missing evaluations were computed
    assert resumed.evaluations.equals(full.evaluations) and resumed.answer == full.answer
    assert resumed.root == full.root and resumed.root_upper == full.root_upper
    with pytest.raises(SolveError, match=r"holds the evaluations of a solve with other arguments .*'seed': \(8, 9\)"):
        solve_n(design, store=store, **(args | {"seed": 9}))


def test_a_fitted_root_outside_the_range_is_refused_not_clipped(monkeypatch):
    """The bracket admits a target within two MCSEs of the range's end; if the fit then puts the root beyond
    it, the answer would be the range's end, which the search never showed to reach the target: refused."""
    import simulation.power.solve as solve_module

    real = solve_module._root
    calls = []

    def beyond(beta, cov, target):
        g, se = real(beta, cov, target)
        calls.append(g)
        return (g, se) if len(calls) <= solve_module.ROUNDS * 2 else (math.sqrt(151.0), se)

    monkeypatch.setattr(solve_module, "_root", beyond)
    design = Scenario("plan", "rank_mixing", 80, k=5, template="even", rho=0.4)
    with pytest.raises(SolveError, match=r"the fitted root n = 151.0 lies outside the search range 10-150 \(the "
                                         r"power at n = 10 is .*widen the range"):  # fmt: skip
        solve_n(design, statistic="spearman", test="t_approx", n_range=(10, 150), seed=8, confirm_reps=100)


def test_an_unknown_reference_method_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["--no-config", "run", "smoke", "--n-reps", "20", "--n-boot", "30", "--reference-method", "nope",
                 "--out", str(out), "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "`reference_method` must be an interval method of the run's statistics, one of ['percentile'" in err
    assert "got 'nope'" in err and not out.exists()


# --------------------------------------------------------------------------
# Interval targets: a width, honest coverage
# --------------------------------------------------------------------------
def _fisher_z_width(r: float, n: int, z: float = stats.norm.isf(0.025)) -> float:
    half = z / math.sqrt(n - 3)
    return math.tanh(math.atanh(r) + half) - math.tanh(math.atanh(r) - half)


def exact_expected_width(rho: float, n: int) -> float:
    """E(width) of Pearson's Fisher-z interval, tanh(atanh r -+ z / sqrt(n - 3)), by quadrature of r's exact
    density (bivariate normal)."""
    return integrate.quad(lambda r: _fisher_z_width(r, n) * _r_density(r, rho, n), -1, 1, epsabs=1e-12,
                          epsrel=1e-10, limit=200)[0]  # fmt: skip


def test_pearson_fisher_z_width_matches_the_exact_expected_width_root():
    """Pearson's Fisher-z interval at r = 0.3, bivariate normal, mean width 0.3: the exact root of E(width) = 0.3
    (quadrature, linear between the integers around it) is 140.87.  Each of two seeds' roots is within 3.29
    of its SEs (on log n, from its 95% interval) of it: a false alarm 0.1% each.  (Over 60 seeds at these
    sizes the 95% interval covered the exact root 58 times, 96.7%; the z-scores' SD was 0.87.)"""
    n = 140
    assert exact_expected_width(0.3, n) > 0.3 > exact_expected_width(0.3, n + 1)
    a, b = exact_expected_width(0.3, n), exact_expected_width(0.3, n + 1)
    root = n + (a - 0.3) / (a - b)
    design = Scenario("plan", "bivariate_normal", 80, rho=RHO_S_OF_R03)
    for seed in range(2):
        result = solve_interval_n(design, method="fisher_z_pearson", width=0.3, statistic="pearson",
                                  n_range=(40, 400), reps=50, confirm_reps=50, seed=seed)  # fmt: skip
        se = (math.log(result.root_upper) - math.log(result.root_lower)) / (2 * stats.norm.isf(0.025))
        assert abs(math.log(result.root) - math.log(root)) <= 3.29 * se, (seed, result.root, root, se)
        assert result.answer == math.ceil(result.root) and result.evaluations["reps"].min() == 50 * 25
        assert result.analytic == (143, "Fisher's z")


def test_bonett_wright_two_stage_n_is_the_root_of_its_width_equation():
    """The two-stage formula against the smallest n at which the Fisher-z interval's width at rho (variance
    (1 + rho^2 / 2) / (n - 3) for Spearman; 1 / (n - 3) for Pearson) is at most the target, found by
    scanning n: the second stage corrects the first to within one."""
    z = stats.norm.isf(0.025)
    for statistic, c in (("spearman", lambda r: 1 + r * r / 2), ("pearson", lambda r: 1.0)):
        for rho, w in ((0.3, 0.3), (0.5, 0.2), (0.1, 0.4), (0.7, 0.15)):
            def width(n, rho=rho, c=c):
                half = z * math.sqrt(c(rho) / (n - 3))
                return math.tanh(math.atanh(rho) + half) - math.tanh(math.atanh(rho) - half)

            scanned = next(n for n in range(5, 100_000) if width(n) <= w)
            n, _ = bonett_wright_n(statistic, rho, w, 0.95)
            assert abs(n - scanned) <= 1, (statistic, rho, w, n, scanned)


def test_spearman_width_without_ties_is_near_bonett_wright():
    """Spearman's Bonett-Wright interval without ties: the n at which its mean width is 0.3 (r_s = 0.3) next to
    Bonett & Wright's planning formula, which solves the width at r_s = rho instead of the mean width: the
    two differ by the curvature of the width in r (about 1%), not more than 3%."""
    design = Scenario("plan", "bivariate_normal", 80, rho=0.3)
    result = solve_interval_n(design, method="fisher_z_bonett_wright", width=0.3, n_range=(40, 400), reps=50,
                              confirm_reps=50, seed=1)  # fmt: skip
    assert result.analytic[1] == "Bonett-Wright"
    assert abs(result.answer - result.analytic[0]) <= 0.03 * result.analytic[0], (result.answer, result.analytic)
    assert result.root_lower < result.root < result.root_upper


def test_a_tied_designs_coverage_target_agrees_with_a_brute_force_grid():
    """Spearman's basic interval with x in 4 groups (heavy centre) under-covers at small n: the n at which its
    coverage reaches Bradley's band (0.925) against the crossing of a straight line fitted to a brute-force
    grid of coverages at n = 36-68 (3,000 datasets each), within three SDs of the two errors combined
    (false alarm 0.3%)."""
    design = Scenario("plan", "rank_mixing", 80, k=4, template="heavy_center", rho=-0.2)
    result = solve_interval_n(design, method="basic", coverage=True, n_range=(10, 400), n_boot=200, seed=4,
                              confirm_reps=200)  # fmt: skip
    assert result.measure == "coverage" and result.target == pytest.approx(0.925)
    grid = np.arange(36, 69, 4)
    values, errors = [], []
    for i, n in enumerate(grid):
        row = run_all_ci_scenarios([design_at(design, int(n))], n_reps=3000, n_boot=200, methods=["basic"],
                                   seed=900 + i, n_jobs=1).coverage.iloc[0]  # fmt: skip
        values.append(row["coverage"])
        errors.append(row["coverage_mcse"])
    (a, b), cov = fit_wls(grid.astype(float), np.array(values), np.array(errors))
    crossing = (0.925 - a) / b
    grad = np.array([-1 / b, -crossing / b])
    grid_se = math.sqrt(grad @ cov @ grad)
    solve_se = (result.root_upper - result.root_lower) / (2 * stats.norm.isf(0.025))
    assert abs(result.root - crossing) <= 3 * math.hypot(grid_se, solve_se), (result.root, crossing, grid_se,
                                                                              solve_se)  # fmt: skip


def test_interval_targets_the_range_cannot_reach_and_bad_arguments_are_refused():
    design = Scenario("plan", "rank_mixing", 80, k=5, template="even", rho=0.3)
    with pytest.raises(SolveError, match=r"a mean width of 0.05 is not reached in n = 20-100: the mean width at "
                                         r"n = 20 is 0\.\d+, at n = 100 0\.\d+"):  # fmt: skip
        solve_interval_n(design, method="fisher_z_fieller", width=0.05, n_range=(20, 100), reps=50)
    with pytest.raises(SolveError, match=r"already met at the range's lower end"):
        solve_interval_n(design, method="fisher_z_fieller", width=0.9, n_range=(20, 100), reps=50)
    with pytest.raises(SolveError, match=r"already within Bradley's band 0.925-0.975 at the range's lower end"):
        solve_interval_n(design, method="fisher_z_fieller", coverage=True, n_range=(60, 200), reps=50)
    with pytest.raises(SolveError, match=r"`method` must be one of \['percentile', .*\] for spearman, got 'wald'"):
        solve_interval_n(design, method="wald", width=0.3)
    with pytest.raises(SolveError, match=r"give exactly one target"):
        solve_interval_n(design, method="bca", width=0.3, coverage=True)
    with pytest.raises(SolveError, match=r"give exactly one target"):
        solve_interval_n(design, method="bca")
    with pytest.raises(SolveError, match=r"`width` must be in \(0, 2\)"):
        solve_interval_n(design, method="bca", width=2.5)


def test_the_solve_command_solves_a_width_and_refuses_mixed_targets(tmp_path, capsys):
    study = tmp_path / "design.csv"
    study.write_text("case,generator,n,k,template,counts,rho\nplan,rank_mixing,80,5,even,,0.3\n")
    out = tmp_path / "w"
    args = ["--no-config", "solve", str(study), "--width", "0.4", "--method", "fisher_z_fieller", "--n-range",
            "20,300", "--reps", "50", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    record = json.loads((out / "solve.json").read_text())
    assert record["measure"] == "mean_width" and record["model"] == "log(mean_width) = a + b log(n)"
    assert f"n = {record['answer']} (fitted root" in capsys.readouterr().out
    assert main(args) == 0 and "evaluation(s) taken from" in capsys.readouterr().out
    assert json.loads((out / "solve.json").read_text()) == record
    bad = tmp_path / "bad"
    for extra, message in [(["--width", "0.3", "--coverage", "--method", "bca"], "give one target"),
                           (["--width", "0.3"], "need --method"),
                           (["--coverage", "--method", "bca", "--power", "0.8"], "--power and --test belong"),
                           (["--method", "bca"], "--method applies only to --width or --coverage")]:  # fmt: skip
        assert main(["--no-config", "solve", str(study), "--out", str(bad), *extra]) == 2
        assert message in capsys.readouterr().err
        assert not bad.exists()


def test_the_minimum_detectable_correlation_of_pearsons_t_test_matches_the_exact_root():
    """At n = 40, power 0.8, alpha 0.05 two-sided, bivariate normal: the exact power by quadrature crosses 0.8
    at r = 0.42568; each of two seeds' answers is within 3.29 of its SEs of it (false alarm 0.1% each), and the
    confirmation run at the generator's target there has a power within 4 MCSEs of 0.8."""
    from scipy import optimize

    from simulation.power.solve import solve_rho

    exact = optimize.brentq(lambda r: exact_t_test_power(r, 40) - 0.8, 0.1, 0.9, xtol=1e-12)
    design = Scenario("plan", "bivariate_normal", 40, rho=0.3)
    for seed in range(2):
        found = solve_rho(design, statistic="pearson", test="t_test", reps=1000, seed=seed, confirm_reps=2000)
        assert abs(found.rho_star - exact) <= 3.29 * found.rho_star_se, (seed, found.rho_star, exact)
        assert found.estimate == "monte_carlo_probit" and found.rho_star_lower < found.rho_star < found.rho_star_upper
        c = found.confirmation
        assert abs(c["power"] - 0.8) <= 4 * c["power_mcse"]
        # the generator's target is Spearman's rho_s: Pearson's r there is 2 sin(pi rho_s / 6), read between
        # fine grid points 0.0125 apart (linear interpolation of it errs by at most |f''| h^2 / 8 = 4.5e-6)
        assert 2 * math.sin(math.pi * found.design_rho / 6) == pytest.approx(found.rho_star, abs=5e-6)


def test_solving_for_rho_refuses_what_it_cannot_reach(tmp_path, capsys):
    from simulation.power.solve import solve_rho

    with pytest.raises(SolveError, match=r"power 0.999 is not reached below the search.s end"):
        solve_rho(Scenario("plan", "bivariate_normal", 8, rho=0.3), target_power=0.999, statistic="pearson",
                  test="t_test", reps=100)  # fmt: skip
    with pytest.raises(SolveError, match=r"`test` must be one of"):
        solve_rho(Scenario("plan", "bivariate_normal", 40, rho=0.3), test="wald")
    study = tmp_path / "design.csv"
    study.write_text("case,generator,n,k,template,counts,rho\nplan,rank_mixing,50,5,even,,0.3\n")
    out = tmp_path / "r"
    assert main(["--no-config", "solve", str(study), "--unknown", "rho", "--test", "t_approx", "--reps", "200",
                 "--out", str(out)]) == 0  # fmt: skip
    record = json.loads((out / "solve_rho.json").read_text())
    assert f"minimum detectable |spearman| = {record['rho_star']:.4f}" in capsys.readouterr().out
    for extra, message in [(["--width", "0.3", "--method", "bca"], "--unknown rho solves a power target"),
                           (["--n-range", "10,30"], "--n-range applies to --unknown n")]:  # fmt: skip
        assert main(["--no-config", "solve", str(study), "--unknown", "rho", "--out", str(tmp_path / "bad"),
                     *extra]) == 2  # fmt: skip
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()


def test_solving_for_k_evaluates_every_k_the_template_allows():
    """Every k the template allows at n (even: 4-10 at n = 40) with its own stream; each power is that of a
    power curve of the design at that k with the same seed; the answer is the smallest k whose power reaches
    the target, and how sure that is written out from the normal approximation at the target."""
    from simulation.power.solve import solve_k

    design = Scenario("plan", "rank_mixing", 40, k=5, template="even", rho=0.45)
    found = solve_k(design, test="t_approx", reps=400, seed=2)
    e = found.evaluations
    assert list(e["k"]) == list(range(4, 11))
    for row in e.iloc[[0, -1]].itertuples():
        settings = PowerSettings(n_reps=400, grid=(0.0, 0.45), seed=row.seed, n_perm=1, n_perm_tied_y=1)
        curve = power_curve(Scenario("plan", "rank_mixing", 40, k=row.k, template="even", rho=0.45), settings)
        assert curve[curve["test"] == "t_approx"].iloc[-1]["rejections"] == row.rejections
    reached = e[e["power"] >= 0.8]
    assert found.answer == (None if reached.empty else int(reached["k"].iloc[0]))
    if found.answer is not None:
        i = int(reached.index[0])
        se = math.sqrt(0.8 * 0.2 / 400)
        assert found.p_answer_reaches == pytest.approx(stats.norm.cdf((e.loc[i, "power"] - 0.8) / se), rel=1e-12)
    with pytest.raises(SolveError, match=r"needs a design with a tie template"):
        solve_k(Scenario("plan", "rank_mixing", 40, template="custom", counts=(10, 10, 20), rho=0.3))
    with pytest.raises(SolveError, match=r"needs a design with a tie template"):
        solve_k(Scenario("plan", "bivariate_normal", 40, rho=0.3))


def test_the_solve_command_solves_for_k(tmp_path, capsys):
    study = tmp_path / "design.csv"
    study.write_text("case,generator,n,k,template,counts,rho\nplan,rank_mixing,40,5,even,,0.45\n")
    assert main(["--no-config", "solve", str(study), "--unknown", "k", "--test", "t_approx", "--reps", "200",
                 "--out", str(tmp_path / "k")]) == 0  # fmt: skip
    record = json.loads((tmp_path / "k" / "solve_k.json").read_text())
    assert [r["k"] for r in record["evaluations"]] == list(range(4, 11))
    assert "k = 4: " in capsys.readouterr().out


# --------------------------------------------------------------------------
# An exact reference with tied x: Pearson's t test of x and log y under the log-linear generator
# --------------------------------------------------------------------------
#: x in 4 groups (heavy centre), log y linear in x with normal errors (``log_linear``).
LOG_DESIGN = Scenario("plan", "log_linear", 80, k=4, template="heavy_center", rho=0.3, y_median=15, y_iqr=10)


def exact_log_linear_power(design: Scenario, alpha: float = 0.05) -> float:
    """The exact power of Student's t test of Pearson's r between x and log y under ``log_linear``.

    There log y = mu + sigma (c a + sqrt(1 - c^2) e) with ``a`` the standardized x values (sum of squares n
    about their mean) and ``e`` standard normal, and r's t statistic is the least-squares slope's t, so it
    is noncentral t on n - 2 df with noncentrality c sqrt(n) / sqrt(1 - c^2) (e.g. Scheffe 1959, *The
    Analysis of Variance*, sec. 2.9), whatever the ties in x.  ``c``: the generator's coefficient at the
    design's n and ties, calibrated on the same grid (0, rho) the power curves use."""
    from simulation.models import generators

    n = design.n
    c = generators.calibrate_tied_grid("log_linear", [0.0, design.rho], design.counts)[1].coefficient
    delta = c * math.sqrt(n) / math.sqrt(1 - c * c)
    t_c = stats.t.ppf(1 - alpha / 2, n - 2)
    return float(stats.nct.sf(t_c, n - 2, delta) + stats.nct.cdf(-t_c, n - 2, delta))


def test_a_tied_designs_solve_covers_the_exact_root_over_independent_seeds():
    """A user statistic at a tied design with an exact answer: x in 4 groups, power 0.8, the exact power
    (noncentral t) crosses 0.8 between n = 77 and 78.  Over 12 seeds the solve's 95% interval must cover the
    exact root at least 10 times: fewer happens with probability 0.020 for an interval that covers 95% of
    the time (binomial).  (Over 100 seeds: 94 covered it; the roots' mean 77.63 against the exact 77.56,
    their SD 0.61 against a mean reported SE of 0.58.)"""
    n = 60
    while exact_log_linear_power(design_at(LOG_DESIGN, n + 1)) < 0.8:
        n += 1
    lo, hi = exact_log_linear_power(design_at(LOG_DESIGN, n)), exact_log_linear_power(design_at(LOG_DESIGN, n + 1))
    root = n + (0.8 - lo) / (hi - lo)
    covered, answers = 0, []
    for seed in range(12):
        result = solve_n(LOG_DESIGN, target_power=0.8, statistic=LOG_PEARSON, test="t_test", n_range=(20, 400),
                         seed=700 + seed, confirm_reps=50)  # fmt: skip
        covered += result.root_lower <= root <= result.root_upper
        answers.append(result.answer)
        assert result.analytic is None  # no closed form is offered for a user statistic
    assert covered >= 10, (root, covered, answers)
    assert abs(np.median(answers) - math.ceil(root)) <= 1


def test_a_user_statistics_minimum_detectable_correlation_matches_the_exact_root():
    """solve_rho with the user statistic at the tied design's n = 80: the generator's target it returns
    against the root of the exact power in the generator's target (the coefficient calibrated at each),
    within 3.29 of the answer's SEs (false alarm 0.1%), the SE carried to the generator's scale by the fine
    curve's slope."""
    from scipy import optimize

    from simulation.models import generators
    from simulation.power.solve import solve_rho

    def exact(rho_s: float) -> float:
        return exact_log_linear_power(Scenario(**{**_fields(LOG_DESIGN), "rho": rho_s}))

    rho_s_star = optimize.brentq(lambda r: exact(r) - 0.8, 0.1, 0.6, xtol=1e-10)
    found = solve_rho(LOG_DESIGN, statistic=LOG_PEARSON, test="t_test", reps=1000, seed=4, confirm_reps=2000)
    # the statistic's truth is about the coefficient c (Pearson's r of a and c a + sqrt(1 - c^2) e is c):
    # d(generator's target)/dc by a central difference of the calibration
    coefficient = [generators.calibrate_tied_grid("log_linear", [0.0, r], LOG_DESIGN.counts)[1].coefficient
                   for r in (rho_s_star - 0.01, rho_s_star + 0.01)]  # fmt: skip
    slope = 0.02 / (coefficient[1] - coefficient[0])
    assert abs(found.design_rho - rho_s_star) <= 3.29 * found.rho_star_se * slope, (found.design_rho, rho_s_star)
    assert found.analytic is None


def test_solving_k_for_a_user_statistic_matches_the_exact_power_at_every_k():
    """solve_k with the user statistic at n = 40 (even template, k = 4-10): every k's power against the
    exact noncentral-t power at that k, each within 3.29 binomial SEs (false alarm 0.1% each, 0.7% for the
    seven), and the answer the smallest k whose estimate reaches the target."""
    from simulation.models import generators
    from simulation.power.solve import solve_k

    design = Scenario("plan", "log_linear", 40, k=5, template="even", rho=0.42, y_median=15, y_iqr=10)
    found = solve_k(design, statistic=LOG_PEARSON, test="t_test", reps=2000, seed=5)
    e = found.evaluations
    assert list(e["k"]) == list(range(4, 11))
    for row in e.itertuples():
        counts = generators.tie_counts(40, row.k, "even")
        p = exact_log_linear_power(Scenario(**{**_fields(design), "k": row.k, "counts": counts}))
        assert abs(row.power - p) <= 3.29 * math.sqrt(p * (1 - p) / row.reps), (row.k, row.power, p)
    reached = e[e["power"] >= 0.8]
    assert found.answer == (None if reached.empty else int(reached["k"].iloc[0]))


def _fields(design: Scenario) -> dict:
    return {f: getattr(design, f) for f in ("case", "generator", "n", "rho", "k", "template", "counts", "df",
                                           "y_median", "y_iqr", "pool")}  # fmt: skip


def test_the_confirmation_size_is_an_option_of_the_solve_command(tmp_path, capsys):
    """``--confirm-reps`` sets the confirmation run's datasets (the record says so); ``--unknown k`` has no
    confirmation and refuses it, writing nothing."""
    study = tmp_path / "design.csv"
    study.write_text("case,generator,n,k,template,counts,rho\nplan,rank_mixing,80,5,even,,0.3\n")
    assert main(["--no-config", "solve", str(study), "--test", "t_approx", "--reps", "100", "--confirm-reps", "120",
                 "--out", str(tmp_path / "n")]) == 0  # fmt: skip
    assert json.loads((tmp_path / "n" / "solve.json").read_text())["confirmation"]["reps"] == 120
    assert main(["--no-config", "solve", str(study), "--unknown", "k", "--confirm-reps", "100",
                 "--out", str(tmp_path / "k")]) == 2  # fmt: skip
    assert "--confirm-reps does not apply to --unknown k" in capsys.readouterr().err
    assert not (tmp_path / "k").exists()
    with pytest.raises(SystemExit) as stop:
        main(["--no-config", "solve", str(study), "--confirm-reps", "10", "--out", str(tmp_path / "x")])
    assert stop.value.code == 2 and "--confirm-reps: expected an integer >= 50" in capsys.readouterr().err
