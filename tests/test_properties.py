"""Bad input at scale (hypothesis): generated malformed study files, data files and arguments give a clear
error (ValueError at the API, exit 2 at the command line), never a traceback, never a partly written folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulation.analyze.analysis import complete_pairs, read_pairs
from simulation.cli.parser import main
from simulation.models.scenarios import STUDY_COLUMNS, load_study

CELLS = st.one_of(
    st.sampled_from(["", "0", "-1", "0.3", "1.5", "nan", "inf", "80", "rank_mixing", "bivariate_normal",
                     "empirical", "heavy_center", "even", "1;2;3", "10;10", "population", "expected_sample", "x"]),
    st.text(min_size=0, max_size=8),
)  # fmt: skip
HEADERS = st.lists(st.one_of(st.sampled_from(list(STUDY_COLUMNS)), st.text(min_size=1, max_size=6)),
                   min_size=1, max_size=9)  # fmt: skip
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _csv(header: list[str], rows: list[list[str]]) -> str:
    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"'

    return "\n".join(",".join(cell(v) for v in line) for line in [header, *rows]) + "\n"


@FAST
@given(header=HEADERS, rows=st.lists(st.lists(CELLS, min_size=0, max_size=10), max_size=4))
def test_a_malformed_study_file_is_a_value_error(header, rows):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "study.csv"
        path.write_text(_csv(header, rows))
        try:
            scenarios = load_study(path)
        except ValueError as exc:
            assert str(exc)  # a message, naming the problem
        else:
            assert scenarios and all(s.key for s in scenarios)


@FAST
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_as_a_study_file_are_a_value_error(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "study.csv"
        path.write_bytes(raw)
        with pytest.raises(ValueError):
            load_study(path)


@FAST
@given(header=HEADERS, rows=st.lists(st.lists(CELLS, min_size=1, max_size=6), min_size=1, max_size=3))
def test_the_cli_refuses_a_malformed_study_with_exit_2_and_writes_nothing(header, rows):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "study.csv"
        path.write_text(_csv(header, rows))
        try:
            load_study(path)
        except ValueError:
            out = Path(tmp) / "out"
            code = main(["run", str(path), "--n-reps", "5", "--n-boot", "5", "--out", str(out), "--quiet",
                         "--no-plots"])  # fmt: skip
            assert code == 2
            assert not out.exists()


@FAST
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)),
       sep=st.sampled_from([",", ";", "\t"]))  # fmt: skip
def test_a_malformed_data_file_is_a_value_error(raw, sep):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        path.write_bytes(raw)
        try:
            frame, _ = read_pairs(path, "dose", "level", sep=sep)
            complete_pairs(frame["dose"], frame["level"])
        except ValueError as exc:
            assert str(exc)


NUMERIC_OPTIONS = ["--n-reps", "--n-boot", "--confidence-level", "--seed", "--n-jobs", "--max-reps",
                   "--n-reps-cheap", "--truth-mcse", "--target-mcse", "--wait-for-lock"]  # fmt: skip


WORDS = st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Po", "Zs")), min_size=1, max_size=6)


@FAST
@given(option=st.sampled_from(NUMERIC_OPTIONS), value=WORDS)
def test_a_non_numeric_value_of_a_numeric_option_exits_2(option, value):
    import contextlib
    import io

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        stderr = io.StringIO()
        with pytest.raises(SystemExit) as exc, contextlib.redirect_stderr(stderr):
            main(["run", "smoke", option, value, "--out", str(out), "--quiet", "--no-plots"])
        assert exc.value.code == 2
        err = stderr.getvalue()
        assert option in err and "Traceback" not in err
        assert not out.exists()
