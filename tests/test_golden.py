"""Every golden output (``tests/golden.py``) recomputed and compared: a move of code changes no number.

On the host that froze them the frames must be equal bit for bit, and the block stores' digests and the
run identities (what ``--resume`` compares with an existing results folder) equal; elsewhere the frames
are compared to a relative 1e-9 (numba compiles for the host CPU) and the identities still exactly.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests import golden


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    return golden.compute(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def same_host() -> bool:
    meta = json.loads((golden.GOLDEN / "meta.json").read_text())
    return meta["host"] == golden.host()


def test_every_frame_is_as_frozen(computed, same_host):
    frames, _ = computed
    meta = json.loads((golden.GOLDEN / "meta.json").read_text())
    assert sorted(frames) == meta["frames"]
    for name, frame in frames.items():
        frozen = pd.read_parquet(golden.GOLDEN / f"{name}.parquet")
        got = golden.normal(frame)
        if same_host:
            pd.testing.assert_frame_equal(got, frozen, check_exact=True, obj=name)
        else:
            pd.testing.assert_frame_equal(got, frozen, check_exact=False, rtol=1e-9, atol=1e-12, obj=name)


def test_identities_and_values_are_as_frozen(computed, same_host):
    _, values = computed
    frozen = json.loads((golden.GOLDEN / "values.json").read_text())
    assert sorted(values) == sorted(frozen)
    for key, value in values.items():
        if key.startswith(("identity_", "manifest_")):
            assert value == frozen[key], key  # old results folders still resume
        elif same_host:
            assert value == frozen[key], key
