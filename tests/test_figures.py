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
    assert "--scenario applies only to --kind lolly or zip" in capsys.readouterr().err
    assert main(["plot", str(out), "--measure", "bias"]) == 2
    assert "--measure applies only to --kind nested-loop or lolly" in capsys.readouterr().err


def test_the_zip_plot_ranks_intervals_by_their_distance_from_the_truth():
    from simulation.present.figures import zip_order

    lower = np.array([0.0, 0.4, -0.2, 0.25, 0.3])
    upper = np.array([0.2, 0.6, 0.6, 0.25, 0.3])
    distance, centile = zip_order(lower, upper, 0.3)
    # |0.3 - midpoint| / half-width, written out: misses above 1, covers at most 1; a point interval away
    # from the truth is infinitely far, one at the truth at 0
    np.testing.assert_allclose(distance, [2.0, 2.0, 0.25, np.inf, 0.0])
    assert list(centile) == [50.0, 70.0, 30.0, 90.0, 10.0]  # 100 (rank - 0.5) / 5, ties by index
    covers = (lower <= 0.3) & (0.3 <= upper)
    assert (covers == (distance <= 1)).all()


def test_plot_zip_draws_every_interval_from_the_replicates_and_refuses_what_it_cannot_draw(tmp_path, capsys):
    import pyarrow.parquet as pq

    from simulation.models.scenarios import load_study
    from simulation.study.runner import run_all_ci_scenarios

    out = tmp_path / "r"
    run_all_ci_scenarios(load_study("smoke")[:2], n_reps=40, n_boot=30, seed=1, n_jobs=1, out=out,
                         keep_replicates=True, statistics=["spearman", "kendall_b"])  # fmt: skip
    key = load_study("smoke")[1].key
    capsys.readouterr()
    assert main(["plot", str(out), "--kind", "zip", "--scenario", key, "--statistic", "kendall_b"]) == 0
    assert (out / "zip.png").stat().st_size > 0 and (out / "zip.pdf").stat().st_size > 0
    from simulation.present.figures import zip_figure

    reps = pq.read_table(out / "replicates.parquet").to_pandas()
    coverage = pq.read_table(out / "coverage.parquet").to_pandas()
    fig = zip_figure(reps, coverage, key, "kendall_b")
    mine = reps[(reps.scenario == key) & (reps.statistic == "kendall_b")]
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert len(panels) == mine.method.nunique()
    for ax in panels:
        method = ax.get_title().split("\n")[0].replace(" ", "_")
        ok = mine[(mine.method == method) & (mine.status == "ok")]
        drawn = sum(len(c.get_segments()) for c in ax.collections)
        assert drawn == len(ok)  # every ok interval, covering or not
        truth = coverage[(coverage.scenario == key) & (coverage.statistic == "kendall_b")].rho_true.iloc[0]
        p = np.mean((ok.ci_lower <= truth) & (truth <= ok.ci_upper))
        assert f"{p:.3f}" in ax.get_title()
    import matplotlib.pyplot as plt

    plt.close(fig)
    for args, message in [
        (["--scenario", "nowhere"], "`scenario` must be one of the replicate table's 2 scenario keys"),
        (["--scenario", key, "--statistic", "pearson"], "`statistic` must be one of ['spearman', 'kendall_b']"),
        (["--scenario", key, "--measure", "bias"], "--measure applies only to --kind nested-loop or lolly"),
    ]:
        (out / "zip.png").unlink(missing_ok=True)
        assert main(["plot", str(out), "--kind", "zip", *args]) == 2
        assert message in capsys.readouterr().err
        assert not (out / "zip.png").exists()
    (out / "replicates.parquet").unlink()
    assert main(["plot", str(out), "--kind", "zip", "--scenario", key]) == 2
    assert "holds no replicates.parquet" in capsys.readouterr().err
    assert main(["plot", str(out), "--statistic", "spearman"]) == 2
    assert "--statistic applies only to --kind zip" in capsys.readouterr().err


def test_the_standard_figures_are_the_nested_loop_plots_and_the_endpoints(tmp_path):
    from simulation.models.scenarios import load_study
    from simulation.study.runner import run_all_ci_scenarios

    out = tmp_path / "r"
    run_all_ci_scenarios(load_study("smoke")[:3], n_reps=20, n_boot=30, seed=1, n_jobs=1, out=out)
    assert main(["plot", str(out)]) == 0
    for name in ("nested_loop_coverage", "nested_loop_mean_width", "endpoints"):
        assert (out / f"{name}.png").stat().st_size > 0 and (out / f"{name}.pdf").stat().st_size > 0
    assert (out / "report.html").read_text().count('src="data:image/png;base64,') == 3  # all three embedded
