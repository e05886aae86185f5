"""Golden outputs: small runs of every public path, frozen so that a change of layout changes no number.

``python -m tests.golden freeze`` writes them under ``tests/golden/`` (frames as Parquet, the rest as JSON,
with the host they were computed on); ``tests/test_golden.py`` recomputes them and compares. Only public
names of :mod:`simulation` are used here, so the same script serves before and after code moves.

On the host that froze them the comparison is exact (every bit, and the block store's digest). On another
CPU, compiled kernels may round differently in the last bit (numba compiles for the host), so there the
frames are compared to a relative 1e-9 and the digests are not compared.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import simulation
from simulation import (
    PowerSettings,
    bootstrap_ci,
    bootstrap_ci_single,
    load_study,
    lower_bound_95,
    regression_check,
    run_all_ci_scenarios,
    run_power_study,
    slo_compliance,
)

GOLDEN = Path(__file__).with_name("golden")
SEED = 20261206
USER = "tests.userstats:USER_SPEARMAN"
FOUR = ["spearman", "kendall_b", "pearson", USER]
#: Provenance entries that change from run to run (times, versions, paths), left out of the comparison.
VOLATILE = {"started_at", "finished_at", "versions", "git_commit", "elapsed_seconds", "settings", "blocks_digest",
            "source_digest", "git_modified", "code", "code_changes"}


def host() -> dict[str, str]:
    """What decides the last bit of a compiled kernel's result."""
    import llvmlite.binding as llvm
    import numba

    return {
        "cpu": llvm.get_host_cpu_name(),
        "features": llvm.get_host_cpu_features().flatten(),
        "machine": platform.machine(),
        "numba": numba.__version__,
        "numpy": np.__version__,
    }


def _study(name: str, every: int = 1) -> list:
    return load_study(name)[::every]


def compute(tmp: Path) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Every golden output: ``(frames, values)``."""
    frames: dict[str, pd.DataFrame] = {}
    values: dict[str, Any] = {}
    for name, every in (("smoke", 1), ("tie_sweep", 17)):
        run = run_all_ci_scenarios(
            _study(name, every), n_reps=20, n_boot=50, seed=SEED, n_jobs=1, statistics=FOUR,
            out=tmp / name, truth_mcse=0.01, study=name,
        )  # fmt: skip
        frames[f"coverage_{name}"] = run.coverage
        values[f"identity_{name}"] = run.provenance["identity"]
        values[f"blocks_digest_{name}"] = run.provenance["blocks_digest"]
        manifest = json.loads((tmp / name / "manifest.json").read_text())
        values[f"manifest_{name}"] = {k: v for k, v in manifest.items() if k not in VOLATILE}
    power = run_power_study(
        _study("smoke"), PowerSettings(n_reps=60, grid=(0.0, 0.3, 0.6), n_perm=400, n_perm_tied_y=200, seed=SEED),
        n_jobs=1, statistics=FOUR,
    )  # fmt: skip
    frames["power"] = power.power
    frames["min_detectable"] = power.min_detectable
    from simulation.analyze import (  # public, outside simulation.__all__
        AnalysisSettings,
        analyze,
        example_pairs,
    )

    pairs = example_pairs()
    a = analyze(
        pairs["dose"], pairs["level"], plots=False, n_jobs=1,
        settings=AnalysisSettings(n_boot=200, n_perm=400, design_n_reps=20, design_n_boot=50, power_n_reps=40,
                                  grow_design=False, seed=SEED, statistics=("spearman", "kendall_b"),
                                  **({"plan": False} if "plan" in AnalysisSettings.__dataclass_fields__ else {})),
    )  # fmt: skip
    for part in ("intervals", "tests", "design", "coverage", "power", "min_detectable"):
        frames[f"analyze_{part}"] = getattr(a, part)
    values["analyze_recommendation"] = {k: v for k, v in a.recommendation.items() if k != "evidence"}
    frames["analyze_evidence"] = a.recommendation["evidence"]
    tau = a.result("kendall_b").estimate if hasattr(a, "result") else a.tau_hat  # (before Analysis.results)
    values["analyze_rho_tau"] = [a.rho_hat, tau]
    x = np.repeat(np.arange(5.0), 6)
    y = np.random.default_rng(SEED).normal(size=30) + 0.3 * x
    frames["bootstrap_ci_single"] = bootstrap_ci_single(x, y, n_boot=300, seed=SEED).intervals
    samples = np.random.default_rng(SEED + 1).lognormal(size=40)
    values["toolkit_bootstrap_ci"] = repr(bootstrap_ci(samples, seed=SEED))
    values["toolkit_lower_bound_95"] = repr(lower_bound_95(samples / samples.max(), run_id="20261206abcdef"))
    values["toolkit_slo"] = repr(slo_compliance(samples, 5.0, n_resamples=500, seed=SEED))
    values["toolkit_regression"] = repr(regression_check(samples[:20], samples[20:], n_permutations=500, seed=SEED))
    return frames, json.loads(json.dumps(values, default=repr))


def normal(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its index as columns (Parquet keeps no named or string index reliably)."""
    return frame.reset_index(drop=isinstance(frame.index, pd.RangeIndex))


def freeze() -> None:
    """Compute and write the golden outputs (run from the repository root)."""
    GOLDEN.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        frames, values = compute(Path(tmp))
    for name, frame in frames.items():
        normal(frame).to_parquet(GOLDEN / f"{name}.parquet")
    meta = {"host": host(), "simulation_version": simulation.__version__, "frames": sorted(frames)}
    (GOLDEN / "values.json").write_text(json.dumps(values, indent=1, sort_keys=True) + "\n")
    (GOLDEN / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["freeze"]:
        sys.exit("usage: python -m tests.golden freeze")
    freeze()
