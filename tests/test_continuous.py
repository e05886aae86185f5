"""Continuous models with known population Spearman: truth formulas and samplers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulation import spearman_rho_2d
from simulation.models.continuous import (
    bivariate_normal_spearman,
    bivariate_t_kendall,
    bivariate_t_rho_for,
    bivariate_t_spearman,
    generate_bivariate_normal_batch,
    generate_bivariate_t_batch,
    generate_plackett_batch,
    plackett_conditional_inverse,
    plackett_spearman,
    plackett_theta_for,
)
from tests.reference import kendall_tau_rows, plackett_cdf

# Tolerances: 4.5 Monte Carlo standard errors, a two-sided false-alarm rate of
# 7e-6 per check under normality of the mean.
Z = 4.5


def test_t_quadrature_reduces_to_the_normal_closed_form():
    for rho in (-0.7, 0.2, 0.5, 0.9):
        assert bivariate_t_spearman(rho, df=1e6) == pytest.approx(bivariate_normal_spearman(rho), abs=2e-6)


def test_t_truth_is_odd_increasing_and_inverts():
    values = [bivariate_t_spearman(r, 4.0) for r in np.linspace(-0.95, 0.95, 39)]
    assert np.all(np.diff(values) > 0)
    assert bivariate_t_spearman(-0.4, 4.0) == pytest.approx(-bivariate_t_spearman(0.4, 4.0), abs=1e-12)
    for rho_s in (0.3, 0.5, 0.8):
        assert bivariate_t_spearman(bivariate_t_rho_for(rho_s, 4.0), 4.0) == pytest.approx(rho_s, abs=1e-10)


@pytest.mark.parametrize(
    ("name", "generate", "tau"),
    [
        ("normal", generate_bivariate_normal_batch, lambda rs: 2 / math.pi * math.asin(2 * math.sin(math.pi * rs / 6))),
        ("t4", generate_bivariate_t_batch, lambda rs: bivariate_t_kendall(bivariate_t_rho_for(rs, 4.0))),
        ("plackett", generate_plackett_batch, None),
    ],
)
@pytest.mark.parametrize("rho_s", [0.3, 0.8])
def test_sample_spearman_has_the_exact_finite_n_mean(name, generate, tau, rho_s):
    """E[r_s] = ((n-2) rho_s + 3 tau) / (n+1) for continuous data (Kruskal 1958, JASA 53, §5; Moran 1948).

    Where tau has no closed form (Plackett) the unbiased sample tau of the same
    dataset stands in: E[r_s - 3 tau_hat/(n+1)] = (n-2)/(n+1) rho_s.  Either way
    the check is exact at finite n, so any error in the truth formula or the
    sampler larger than ~0.003 fails it.
    """
    n, reps = 30, 20000
    x, y = generate(reps, n, rho_s, seed=11)
    r = spearman_rho_2d(x, y)
    if tau is None:
        d = r - 3 * kendall_tau_rows(x, y) / (n + 1)
        expected = (n - 2) / (n + 1) * rho_s
    else:
        d = r
        expected = ((n - 2) * rho_s + 3 * tau(rho_s)) / (n + 1)
    assert abs(d.mean() - expected) < Z * d.std(ddof=1) / math.sqrt(reps)


def test_plackett_series_matches_closed_form_where_both_are_accurate():
    """Around |log theta| = 0.05 the closed form loses < 1e-13 and the series errs < 1e-14."""
    for h in (0.0499, -0.0499, 0.0501, 0.08):
        theta = math.exp(h)
        closed = (theta + 1) / (theta - 1) - 2 * theta * h / (theta - 1) ** 2
        assert plackett_spearman(theta) == pytest.approx(closed, abs=1e-12)
    assert plackett_spearman(1.0) == 0.0
    assert plackett_theta_for(0.0) == 1.0
    for rho_s in (-0.6, 0.01, 0.3, 0.8):
        assert plackett_spearman(plackett_theta_for(rho_s)) == pytest.approx(rho_s, abs=1e-12)


def test_plackett_sampler_inverts_the_conditional_distribution():
    """dC(u, v)/du at the sampled v equals the uniform t (central differences of the copula itself)."""
    rng = np.random.default_rng(3)
    u = rng.uniform(0.01, 0.99, 200)
    t = rng.uniform(0.01, 0.99, 200)
    for theta in (0.2, 3.0, 24.0):
        v = plackett_conditional_inverse(u, t, theta)
        h = 1e-6
        dcdu = (plackett_cdf(u + h, v, theta) - plackett_cdf(u - h, v, theta)) / (2 * h)
        np.testing.assert_allclose(dcdu, t, atol=1e-6)


@pytest.mark.parametrize(
    "generate", [generate_bivariate_normal_batch, generate_bivariate_t_batch, generate_plackett_batch]
)
def test_datasets_do_not_depend_on_batch_size(generate):
    x5, y5 = generate(5, 12, 0.5, seed=2)
    x2, y2 = generate(2, 12, 0.5, seed=2)
    np.testing.assert_array_equal(x5[:2], x2)
    np.testing.assert_array_equal(y5[:2], y2)


def test_plackett_margins_are_standard_exponential():
    x, y = generate_plackett_batch(200, 100, 0.5, seed=1)
    for v in (x, y):  # mean 1 and variance 1; 4.5 MCSE with the exponential's fourth moment 9
        assert abs(v.mean() - 1) < Z * 1 / math.sqrt(v.size)
        assert abs(v.var() - 1) < Z * math.sqrt(8) / math.sqrt(v.size)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: bivariate_t_spearman(0.5, df=2), r"`df` must be a number in \(2, 1e6\] \(finite variance\), got 2"),
        (lambda: bivariate_t_spearman(1.0), r"`rho` must be a number in \(-1, 1\), got 1.0"),
        (lambda: plackett_spearman(0.0), "`theta` must be a positive finite number, got 0.0"),
        (lambda: generate_plackett_batch(2, 10, -1.0, seed=0), r"`rho_s` must be a number in \(-1, 1\), got -1.0"),
        (lambda: generate_bivariate_t_batch(0, 10, 0.1, seed=0), "`n_reps` must be"),
    ],
)
def test_errors_name_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()
