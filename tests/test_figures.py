"""The nested-loop plot (Rücker & Schwarzer 2014): scenario order, the figure and its command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulation.cli.parser import main
from simulation.present.figures import measures_of, nested_loop_figure, nested_loop_order


def _table() -> pd.DataFrame:
    """A 2 x 3 x 2 factorial (template x k x rho) with one constant field (n), listed out of order, and two
    methods whose coverage is known."""
    rows = []
    for rho in (0.5, 0.0):
        for k in (7, 4, 10):
            for template in ("heavy_tail", "even"):
                key = f"{template}_k{k}_rho{rho:g}"
                for method, cov in (("percentile", 0.9), ("fisher_z_fieller", 0.95)):
                    rows.append({"scenario": key, "statistic": "spearman", "case": "c", "generator": "rank_mixing",
                                 "n": 80, "k": k, "template": template, "rho": rho, "method": method,
                                 "confidence_level": 0.95, "coverage": cov, "coverage_mcse": 0.01,
                                 "bias": rho / 10, "bias_mcse": 0.001, "sd_ci_lower": 0.1})  # fmt: skip
    return pd.DataFrame(rows)


def test_nested_loop_order_is_the_factorial_with_the_fewest_levels_outermost():
    order, factors = nested_loop_order(_table())
    assert factors == ["template", "rho", "k"]  # n is constant; 2, 2, 3 levels; ties in FACTORS' order
    expected = [(t, r, k) for t in ("heavy_tail", "even") for r in (0.0, 0.5) for k in (4, 7, 10)]
    assert list(order[["template", "rho", "k"]].itertuples(index=False, name=None)) == expected
    assert order["scenario"].is_unique and len(order) == 12


def test_the_measures_are_the_columns_with_an_mcse_and_others_are_refused():
    table = _table()
    assert measures_of(table) == ["coverage", "bias"]
    with pytest.raises(ValueError, match=r"`measure` must be one of \['coverage', 'bias'\].*got 'sd_ci_lower'"):
        nested_loop_figure(table, "sd_ci_lower")


def test_the_figure_draws_each_method_per_scenario_and_a_measure_of_the_estimate_once():
    import matplotlib.pyplot as plt

    table = _table()
    fig = nested_loop_figure(table, "coverage")
    data = fig.axes[0]
    lines = {line.get_label(): line for line in data.get_lines() if not line.get_label().startswith("_")}
    assert set(lines) == {"percentile", "fisher_z_fieller"}
    np.testing.assert_allclose(lines["percentile"].get_ydata(), 0.9)
    assert len(lines["percentile"].get_xdata()) == 12
    assert any(np.allclose(line.get_ydata(), 0.95) for line in data.get_lines() if line.get_linestyle() == "--")
    plt.close(fig)
    fig = nested_loop_figure(table, "bias")
    labels = [line.get_label() for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")]
    assert labels == ["estimate (every method)"]  # bias is the estimate's: one line, not one per method
    plt.close(fig)


def test_plot_nested_loop_command_writes_png_and_pdf_and_refuses_an_unknown_measure(tmp_path, capsys):
    from simulation.models.scenarios import load_study
    from simulation.study.runner import run_all_ci_scenarios

    out = tmp_path / "r"
    run_all_ci_scenarios(load_study("smoke")[:3], n_reps=20, n_boot=30, seed=1, n_jobs=1, out=out)
    assert main(["plot", str(out), "--kind", "nested-loop", "--measure", "empirical_se"]) == 0
    assert (out / "nested_loop_empirical_se.png").stat().st_size > 0
    assert (out / "nested_loop_empirical_se.pdf").stat().st_size > 0
    capsys.readouterr()
    assert main(["plot", str(out), "--kind", "nested-loop", "--measure", "nope"]) == 2
    err = capsys.readouterr().err
    assert "`measure` must be one of" in err and "'nope'" in err and "Traceback" not in err
    assert not (out / "nested_loop_nope.png").exists()


def test_the_lolly_plot_draws_one_scenarios_methods_and_refuses_an_unknown_scenario():
    import matplotlib.pyplot as plt

    from simulation.present.figures import lolly_figure

    table = _table()
    with pytest.raises(ValueError, match=r"`scenario` must be one of the table's 12 scenario keys .* got None"):
        lolly_figure(table, "coverage")
    with pytest.raises(ValueError, match=r"got 'nowhere'"):
        lolly_figure(table, "coverage", "nowhere")
    fig = lolly_figure(table, "coverage", "even_k4_rho0")
    (ax,) = fig.axes
    offsets = ax.collections[-1].get_offsets()  # the dots: (value, row) per method
    assert sorted(np.asarray(offsets)[:, 0]) == [0.9, 0.95]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["percentile", "fisher z fieller"]
    plt.close(fig)


def test_plot_options_that_do_not_apply_are_refused(tmp_path, capsys):
    from simulation.models.scenarios import load_study
    from simulation.study.runner import run_all_ci_scenarios

    out = tmp_path / "r"
    run_all_ci_scenarios(load_study("smoke")[:2], n_reps=20, n_boot=30, seed=1, n_jobs=1, out=out)
    key = load_study("smoke")[1].key
    assert main(["plot", str(out), "--kind", "lolly", "--measure", "mean_width", "--scenario", key]) == 0
    assert (out / "lolly_mean_width.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["plot", str(out), "--scenario", key]) == 2
    assert "--scenario applies only to --kind lolly" in capsys.readouterr().err
    assert main(["plot", str(out), "--measure", "bias"]) == 2
    assert "--measure applies only to --kind nested-loop or lolly" in capsys.readouterr().err
