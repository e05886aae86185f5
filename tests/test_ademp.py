"""The ADEMP report (Morris, White & Crowther 2019; the ADEMP-PreReg headings): generated from the tables."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from simulation.models.scenarios import load_study, study_aims
from simulation.present.ademp import CRITERIA, ademp, ademp_html, ademp_markdown
from tests.test_figures import _table


def _provenance() -> dict:
    return {"study": "t", "identity": {"n_boot": 200, "seed": 5, "truth_mcse": 0.0005}, "settings": {},
            "versions": {"numpy": "2"}, "source_digest": "abc", "git_commit": None, "git_modified": None}  # fmt: skip


def _with_columns(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(method_kind="bootstrap", n_reps=500, n_reps_cheap=20000, n_failed=0, n_out_of_range=0,
                        status="ok", estimand="population", rho_true_mcse=0.0)  # fmt: skip


def test_the_design_type_and_factors_are_read_from_the_scenarios():
    full = _with_columns(_table())
    report = ademp(full, _provenance())["data_generating_mechanisms"]
    assert report["conditions"] == 12 and report["design"] == "fully factorial"
    assert report["factors"] == [["template", ["heavy_tail", "even"]], ["rho", [0.0, 0.5]], ["k", [4, 7, 10]]]
    assert report["fixed"] == [["case", "c"], ["generator", "rank_mixing"], ["n", 80]]
    base = full[full["scenario"].isin(["even_k4_rho0", "even_k7_rho0", "heavy_tail_k4_rho0", "even_k4_rho0.5"])]
    assert ademp(base, _provenance())["data_generating_mechanisms"]["design"] == "one factor at a time"
    part = full[full["scenario"] != "even_k4_rho0"]
    assert ademp(part, _provenance())["data_generating_mechanisms"]["design"] == (
        "partly factorial (11 of the 12 combinations of the levels)")


def test_the_findings_count_scenarios_inside_bradleys_liberal_band_and_name_the_farthest():
    table = _with_columns(_table())
    # percentile: 0.9 everywhere (outside 0.925-0.975); fisher_z_fieller 0.95 but 0.97 and 0.98 in two scenarios
    table.loc[(table["method"] == "fisher_z_fieller") & (table["scenario"] == "even_k4_rho0"), "coverage"] = 0.98
    table.loc[(table["method"] == "fisher_z_fieller") & (table["scenario"] == "even_k7_rho0"), "coverage"] = 0.97
    (sentence,) = ademp(table, _provenance())["findings"]
    inside = sum(abs(c - 0.95) <= CRITERIA["liberal"] * 0.05 for c in table.loc[table["method"] == "fisher_z_fieller",
                                                                                  "coverage"])  # fmt: skip
    assert inside == 11
    assert f"the most, {inside}, fisher_z_fieller" in sentence and "0.925–0.975" in sentence
    assert "The farthest from 0.95: percentile at 0.900 (MCSE 0.010)" in sentence


def test_the_report_is_json_markdown_and_a_self_contained_page():
    report = ademp(_with_columns(_table()), _provenance())
    assert json.loads(json.dumps(report)) == report
    text = ademp_markdown(report)
    for heading in ("Findings", "Aims", "Data-generating mechanisms", "Estimands", "Methods", "Performance measures",
                    "Number of replications", "Handling of failures", "Software and reproducibility"):
        assert f"## {heading}" in text
    page = ademp_html(report, {"coverage": b"\x89PNG fake"})
    assert page.startswith("<!DOCTYPE html>") and 'src="data:image/png;base64,' in page
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")  # nothing fetched


def test_a_study_file_states_its_aims_in_comment_lines(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("# aims: Which interval covers\n# at n = 20.\ncase,generator,n,rho\nx,bivariate_normal,20,0.3\n"
                    "y,bivariate_normal,20,x\n")  # fmt: skip
    assert study_aims(path) == "Which interval covers at n = 20."
    with pytest.raises(ValueError, match=r"row 5"):  # rows counted as in the file, comment lines included
        load_study(path)
    assert study_aims("smoke").startswith("A quick check")


def test_every_run_writes_the_report_and_its_content_in_the_provenance(tmp_path, capsys):
    from simulation.cli.parser import main
    from simulation.infra.storage import read_provenance

    out = tmp_path / "r"
    assert main(["run", "smoke", "--n-reps", "20", "--n-boot", "30", "--n-jobs", "1", "--quiet", "--out",
                 str(out)]) == 0  # fmt: skip
    provenance = read_provenance(out / "coverage.parquet")
    report = provenance["ademp"]
    assert report["aims"] == study_aims("smoke")
    assert (out / "report.md").read_text() == ademp_markdown(report)  # the same report, after its JSON round trip
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3  # nested_loop_coverage, nested_loop_mean_width, endpoints
    assert report["software"]["reproduce"].startswith("python -m simulation run smoke --n-reps 20 --n-boot 30")


def test_the_findings_name_the_largest_relative_error_in_a_model_se():
    table = _with_columns(_table())
    asym = table["method"] == "fisher_z_fieller"
    table = table.assign(model_se_scale="estimate", model_se=0.1, relative_error_model_se=2.0,
                         relative_error_model_se_mcse=1.0)  # fmt: skip
    table.loc[asym, "method_kind"] = "asymptotic"
    table.loc[asym, "model_se"] = 0.12
    table.loc[asym & (table["scenario"] == "even_k7_rho0"), "relative_error_model_se"] = -14.25
    (sentence,) = ademp(table, _provenance())["findings"]
    assert sentence.endswith("The largest relative error in a model SE: fisher_z_fieller's SE, -14.2% (MCSE 1.0) "
                             "in even_k7_rho0.")  # fmt: skip
    # tables written before the column: no such sentence
    (older,) = ademp(_with_columns(_table()), _provenance())["findings"]
    assert "model SE" not in older
