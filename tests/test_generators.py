"""Data-generating processes, truth, and study files."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from simulation import spearman_rho_2d
from simulation.generators import (
    calibrate_rank_mixing,
    generate_bivariate_normal_batch,
    generate_cumulative_aluminum_batch,
    generate_rank_mixing_batch,
    tie_counts,
    x_values,
)
from simulation.scenarios import Scenario, load_study, scenario_seed

# Copied by hand from shared/reference/karwowski2018_tie_templates.csv.
REFERENCE_ROWS = [
    (73, 4, "even", (19, 18, 18, 18)),
    (80, 10, "heavy_center", (4, 6, 8, 11, 11, 11, 11, 8, 6, 4)),
    (81, 9, "heavy_tail", (13, 8, 7, 7, 7, 7, 7, 7, 18)),
    (82, 5, "heavy_center", (11, 16, 28, 16, 11)),
]


@pytest.mark.parametrize(("n", "k", "template", "expected"), REFERENCE_ROWS)
def test_tabulated_templates_are_exact(n, k, template, expected):
    assert tie_counts(n, k, template) == expected


@pytest.mark.parametrize("n", [10, 20, 37, 100, 500])
@pytest.mark.parametrize("k", [4, 7, 10])
@pytest.mark.parametrize("template", ["even", "heavy_tail", "heavy_center"])
def test_derived_templates_sum_to_n_with_every_value_present(n, k, template):
    counts = tie_counts(n, k, template)
    assert len(counts) == k and sum(counts) == n and min(counts) >= 1
    if template == "even":
        assert max(counts) - min(counts) <= 1


def test_derived_heavy_center_keeps_its_shape():
    counts = tie_counts(400, 5, "heavy_center")  # n = 80 shape 11 15 28 15 11, scaled by 5
    assert counts == (55, 75, 140, 75, 55)


def test_x_batch_shuffles_fixed_counts():
    x = generate_cumulative_aluminum_batch(50, 73, k=4, template="even", seed=3)
    assert x.shape == (50, 73)
    template = x_values((19, 18, 18, 18))
    assert template[0] == 1.43 and template[-1] == 3.55
    np.testing.assert_array_equal(np.sort(x, axis=1), np.tile(template, (50, 1)))
    assert not np.array_equal(x[0], x[1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 8, "k": 9, "template": "even"}, r"`k` must not exceed n = 8, got 9"),
        ({"n": 20, "k": 3, "template": "even"}, r"`k` must be an integer in 4..10"),
        ({"n": 20, "k": 4, "template": "lumpy"}, r"`template` must be one of"),
        ({"n": 12, "template": "custom", "counts": [5, 5, 3]}, r"summing to n = 12, got \[5, 5, 3\]"),
        ({"n": -5, "k": 4}, r"`n` must be an integer >= 2, got -5"),
        ({"n": 9, "k": 4, "template": "heavy_tail"}, r"`n` must be >= 10 for named templates, got 9"),
    ],
)
def test_tie_count_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tie_counts(**kwargs)


def test_rank_mixing_calibration_hits_target_on_fresh_data():
    """Fresh datasets (another seed) have mean Spearman = target within 4.5 combined MCSEs (FA ~ 7e-6)."""
    counts = tie_counts(80, 4, "heavy_center")
    rho_c, achieved, mcse = calibrate_rank_mixing(-0.13, counts)
    assert achieved == pytest.approx(-0.13, abs=1e-6)
    x, y = generate_rank_mixing_batch(20000, counts, rho_c, seed=99)
    r = spearman_rho_2d(x, y)
    fresh_mcse = r.std(ddof=1) / math.sqrt(r.size)
    assert abs(r.mean() + 0.13) < 4.5 * math.hypot(mcse, fresh_mcse)


def test_calibration_runs_the_generation_path():
    counts = (3, 3, 3, 3)
    rho_c, achieved, _ = calibrate_rank_mixing(0.3, counts, n_cal=500, seed=4)
    x, y = generate_rank_mixing_batch(500, counts, rho_c, seed=4)
    assert np.mean(spearman_rho_2d(x, y)) == achieved


def test_bivariate_normal_mean_spearman_matches_moran():
    """E[r_s] = (6/pi)[(n-2)/(n+1) asin(rho/2) + asin(rho)/(n+1)] (Moran 1948, Biometrika 35:203)."""
    n, rho_s = 20, 0.5
    x, y = generate_bivariate_normal_batch(40000, n, rho_s, seed=5)
    r = spearman_rho_2d(x, y)
    rho = 2 * math.sin(math.pi * rho_s / 6)
    expected = 6 / math.pi * ((n - 2) / (n + 1) * math.asin(rho / 2) + math.asin(rho) / (n + 1))
    assert abs(r.mean() - expected) < 4.5 * r.std(ddof=1) / math.sqrt(r.size)


def test_builtin_studies_load():
    assert len(load_study("karwowski2018")) == 88
    assert len(load_study("validation")) == 20
    smoke = load_study("smoke")
    keys = [s.key for s in smoke]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+", k) for k in keys)
    assert len(set(keys)) == len(keys)


def test_scenario_generate_is_reproducible_and_seeded_by_identity():
    smoke = load_study("smoke")
    s = smoke[0]
    a = s.generate(30, scenario_seed(7, s))
    b = s.generate(30, scenario_seed(7, s))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert scenario_seed(7, s).entropy == scenario_seed(7, load_study("smoke")[0]).entropy
    assert scenario_seed(7, smoke[0]).entropy != scenario_seed(7, smoke[1]).entropy
    assert s.rho_true == -0.2 and 0 < s.rho_true_mcse < 0.01
    assert smoke[3].rho_true_mcse == 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rho": 1.0}, r"`rho` must be in \(-1, 1\), got 1.0"),
        ({"n": -3}, r"`n` must be an integer >= 4, got -3"),
        ({"generator": "copula"}, r"`generator` must be one of"),
        ({"k": 11, "template": "even"}, r"`k` must be an integer in 4..10"),
    ],
)
def test_scenario_field_errors(kwargs, match):
    fields = {"case": "t", "generator": "rank_mixing", "n": 20, "rho": 0.1, "k": 4, "template": "even"} | kwargs
    with pytest.raises(ValueError, match=match):
        Scenario(**fields)


def test_study_file_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown study 'nope'"):
        load_study("nope")
    bad = tmp_path / "bad.csv"
    bad.write_text("case,generator,n,k,template,counts,rho\nx,rank_mixing,30,4,even,,1.5\n")
    with pytest.raises(ValueError, match=r"row 2: `rho` must be in \(-1, 1\), got 1.5"):
        load_study(bad)
    bad.write_text("case,generator,n,rho\nx,rank_mixing,ten,0.1\n")
    with pytest.raises(ValueError, match="row 2: field `n` must be an integer, got 'ten'"):
        load_study(bad)
    bad.write_text("case,n,rho\nx,10,0.1\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['generator'\]"):
        load_study(bad)


def test_remaining_generator_errors(tmp_path):
    with pytest.raises(ValueError, match="`counts` is required with template='custom'"):
        tie_counts(12, template="custom")
    with pytest.raises(ValueError, match=r"`rho_s` must be in \(-1, 1\), got 1.0"):
        generate_bivariate_normal_batch(2, 10, 1.0, seed=0)
    with pytest.raises(ValueError, match=r"`target` must be in \(-1, 1\), got -1.0"):
        calibrate_rank_mixing(-1.0, (3, 3, 3, 3))
    with pytest.raises(ValueError, match=r"`rho_c` must be in \(-1, 1\), got 1.0"):
        generate_rank_mixing_batch(2, (3, 3, 3, 3), 1.0, seed=0)
    with pytest.raises(
        ValueError, match="`template` must be 'all_distinct' with no `k` for generator 'bivariate_normal'"
    ):
        Scenario(case="t", generator="bivariate_normal", n=20, rho=0.1, k=4, template="even")
    dup = tmp_path / "dup.csv"
    dup.write_text("case,generator,n,rho\nx,bivariate_normal,10,0.1\nx,bivariate_normal,10,0.1\n")
    with pytest.raises(ValueError, match=r"repeats scenario\(s\)"):
        load_study(dup)
    empty = tmp_path / "empty.csv"
    empty.write_text("case,generator,n,rho\n")
    with pytest.raises(ValueError, match="holds no scenarios"):
        load_study(empty)
