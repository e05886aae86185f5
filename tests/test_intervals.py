"""Fisher-z intervals against hand computation, and their errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulation import fisher_z_ci


@pytest.mark.parametrize(
    ("variance", "var_of"),
    [
        ("fieller", lambda r, n: 1.06 / (n - 3)),
        ("bonett_wright", lambda r, n: (1 + r * r / 2) / (n - 3)),
        ("pearson", lambda r, n: 1 / (n - 3)),
    ],
)
def test_fisher_z_matches_hand_computation(variance, var_of):
    r, n = -0.13, 80
    # 1.959963984540054 = Phi^{-1}(0.975), from tables (Abramowitz & Stegun 26.2.23 gives 1.96).
    c = 1.959963984540054
    z = 0.5 * math.log((1 + r) / (1 - r))
    se = math.sqrt(var_of(r, n))
    lo, hi = fisher_z_ci(r, n, variance=variance)
    assert float(lo) == pytest.approx(math.tanh(z - c * se), abs=1e-14)
    assert float(hi) == pytest.approx(math.tanh(z + c * se), abs=1e-14)


def test_fisher_z_vectorized_and_edge_values():
    lo, hi = fisher_z_ci(np.array([0.0, 1.0, np.nan, -0.2]), np.array([10, 10, 10, 50]), confidence_level=0.9)
    assert lo.shape == (4,)
    assert lo[0] == pytest.approx(-hi[0], abs=1e-15)
    assert lo[1] == hi[1] == 1.0
    assert np.isnan(lo[2]) and np.isnan(hi[2])
    assert lo[3] < -0.2 < hi[3]


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((0.1, 3), {}, r"`n` must be integer\(s\) >= 4"),
        ((0.1, 10.5), {}, r"`n` must be integer\(s\) >= 4"),
        ((1.2, 10), {}, r"`rho_hat` must lie in \[-1, 1\]"),
        (
            (0.1, 10),
            {"variance": "bonett-wright"},
            r"`variance` must be one of \['bonett_wright', 'fieller', 'pearson'\]",
        ),
        ((0.1, 10), {"confidence_level": 95}, r"`confidence_level` must be in \(0, 1\)"),
    ],
)
def test_fisher_z_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fisher_z_ci(*args, **kwargs)
