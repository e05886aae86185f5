"""Scenarios and studies: a study is a CSV file of scenarios, one per row.

Columns: ``case`` (label), ``generator`` (``rank_mixing`` or
``bivariate_normal``), ``n``, ``k`` (empty for ``all_distinct`` and the
continuous generators), ``template``, ``counts`` (space-separated, only for
``custom``), ``rho`` (the target Spearman).  Built-in studies live in
``scenarios/`` at the repository root; :func:`load_study` also takes a path,
so a user adds a study as a file without touching code.

Truth (what coverage is measured against)
-----------------------------------------
* ``bivariate_normal``: the population Spearman, exactly ``rho``.
* ``rank_mixing``: the expected *sample* Spearman at this n and tie
  structure, which calibration sets to ``rho``; ``rho_true_mcse`` records
  the Monte Carlo error of that calibration (4000 datasets).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from simulation import generators
from simulation.seeding import as_seed_sequence

GENERATORS = ("rank_mixing", "bivariate_normal")
STUDY_COLUMNS = ("case", "generator", "n", "k", "template", "counts", "rho")
BUILTIN_DIR = Path(__file__).resolve().parents[1] / "scenarios"


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One data-generating configuration; frozen, with a stable filename-safe ``key``."""

    case: str
    generator: str
    n: int
    rho: float
    k: int | None = None
    template: str = "all_distinct"
    counts: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.generator not in GENERATORS:
            raise ValueError(f"`generator` must be one of {list(GENERATORS)}, got {self.generator!r}")
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 4:
            raise ValueError(f"`n` must be an integer >= 4, got {self.n!r}")
        if not (isinstance(self.rho, float | int) and -1 < self.rho < 1):
            raise ValueError(f"`rho` must be in (-1, 1), got {self.rho!r}")
        if self.generator == "rank_mixing":
            counts = generators.tie_counts(self.n, self.k, self.template, self.counts or None)
            object.__setattr__(self, "counts", counts)
        elif self.template != "all_distinct" or self.k is not None:
            raise ValueError(
                f"`template` must be 'all_distinct' with no `k` for generator {self.generator!r}, "
                f"got template={self.template!r}, k={self.k!r}"
            )

    @property
    def key(self) -> str:
        """Stable, filename-safe identity, e.g. ``case1_rank_mixing_n80_k4_heavy_center_rho-0.13``."""
        k = f"_k{self.k}" if self.k is not None else ""
        extra = ""
        if self.template == "custom":
            extra = "_" + hashlib.sha256(" ".join(map(str, self.counts)).encode()).hexdigest()[:8]
        safe_case = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in self.case)
        return f"{safe_case}_{self.generator}_n{self.n}{k}_{self.template}{extra}_rho{self.rho:g}"

    def calibration(self) -> tuple[float, float, float]:
        """``(rho_c, achieved, mcse)`` of the rank-mixing calibration (cached per tie structure)."""
        return generators.calibrate_rank_mixing(float(self.rho), self.counts)

    @property
    def rho_true(self) -> float:
        """The estimand coverage is measured against (see module docstring)."""
        return float(self.rho)

    @property
    def rho_true_mcse(self) -> float:
        """Monte Carlo error of ``rho_true``: 0 when exact."""
        return self.calibration()[2] if self.generator == "rank_mixing" else 0.0

    def generate(self, n_reps: int, seed: int | np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` datasets, each ``(n_reps, n)``; depends only on ``(self, n_reps, seed)``."""
        seed = as_seed_sequence(seed)
        if self.generator == "rank_mixing":
            return generators.generate_rank_mixing_batch(n_reps, self.counts, self.calibration()[0], seed)
        return generators.generate_bivariate_normal_batch(n_reps, self.n, float(self.rho), seed)


def _parse_row(row: dict[str, str], where: str) -> Scenario:
    def need(name: str) -> str:
        value = (row.get(name) or "").strip()
        if not value:
            raise ValueError(f"{where}: field `{name}` is required")
        return value

    try:
        n = int(need("n"))
    except ValueError as exc:
        raise ValueError(f"{where}: field `n` must be an integer, got {row.get('n')!r}") from exc
    k_text = (row.get("k") or "").strip()
    try:
        k = int(k_text) if k_text else None
        rho = float(need("rho"))
        counts = tuple(int(c) for c in (row.get("counts") or "").split())
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    try:
        return Scenario(
            case=need("case"),
            generator=need("generator"),
            n=n,
            rho=rho,
            k=k,
            template=(row.get("template") or "all_distinct").strip(),
            counts=counts,
        )
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def load_study(name_or_path: str | Path) -> list[Scenario]:
    """Scenarios of a built-in study (``karwowski2018``, ``validation``, ``smoke``) or a CSV file.

    Raises
    ------
    ValueError
        Unknown study name, missing columns, or an invalid row (the message
        names the file, the row and the field).
    """
    path = Path(name_or_path)
    if not path.is_file():
        builtin = BUILTIN_DIR / f"{name_or_path}.csv"
        if not builtin.is_file():
            known = sorted(p.stem for p in BUILTIN_DIR.glob("*.csv"))
            raise ValueError(f"unknown study {str(name_or_path)!r}: not a file and not one of {known}")
        path = builtin
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("case", "generator", "n", "rho") if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"study file `{path}` lacks column(s) {missing}; columns: {list(STUDY_COLUMNS)}")
        scenarios = [_parse_row(row, f"study file `{path}`, row {i}") for i, row in enumerate(reader, start=2)]
    keys = [s.key for s in scenarios]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ValueError(f"study file `{path}` repeats scenario(s) {dupes}")
    if not scenarios:
        raise ValueError(f"study file `{path}` holds no scenarios")
    return scenarios


def scenario_seed(base_seed: int, scenario: Scenario) -> np.random.SeedSequence:
    """Stream of a scenario: from the base seed and a SHA-256 hash of its key (never its position)."""
    digest = hashlib.sha256(scenario.key.encode()).digest()
    return np.random.SeedSequence([int(base_seed), *np.frombuffer(digest[:16], dtype=np.uint32).tolist()])
