"""Scenarios and studies: a study is a CSV file of scenarios, one per row.

A study file may open with ``#`` lines stating its aims (:func:`study_aims`, for the ADEMP report).
Columns: ``case`` (label), ``generator``, ``n``, ``k`` (empty for
``all_distinct`` and the continuous generators), ``template``, ``counts``
(space-separated, only for ``custom``), ``rho`` (the target Spearman), and,
where a generator needs them, ``df`` (``bivariate_t``, default 4),
``y_median`` and ``y_iqr`` (``log_linear``), ``pool`` (``empirical``: a
CSV/Parquet path relative to the study file, or ``example``).  Built-in
studies ship with the package (``simulation/studies/``, found with
:mod:`importlib.resources`, so they work from an installed wheel); the
repository's top-level ``scenarios/`` is a link to that folder, one copy of
each file.  :func:`load_study` also takes a path, so a user adds a study as a
file without touching code.

Generators
----------
Tied x (template ``k``/``template``/``counts``): ``rank_mixing``,
``gaussian_copula``, ``log_linear``, ``empirical`` (see
:func:`simulation.models.generators.generate_tied_batch`).  Continuous, no ties:
``bivariate_normal``, ``bivariate_t``, ``plackett`` (see
:mod:`simulation.models.continuous`).

Truth (what coverage is measured against): ``Scenario.estimand``
-----------------------------------------------------------------
* ``population``: the population Spearman, exactly ``rho``.  The continuous
  generators, and ``gaussian_copula`` with untied x (latent Pearson
  ``2 sin(pi rho / 6)``).
* ``expected_sample``: the expected *sample* Spearman at this n and tie
  structure, which calibration sets to ``rho`` (the tied-x generators: a
  population Spearman of a fixed-count design with ties is not the quantity
  a study of n = 80 estimates; the two differ by up to about 0.005 at
  n = 80).  Calibration (8000 datasets with the mixing control variate)
  meets the target to an MCSE of about 0.00015; the truth is then measured
  on streams of its own (:func:`simulation.statistics.spearman.truth`), and that measurement's
  MCSE is ``rho_true_mcse`` in the tables.  At ``rho`` 0 the coefficient is
  exactly 0 and the data exactly independent, so the truth is exactly 0.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import hashlib
import warnings
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from simulation.core.validation import RunError, check_max_sample_size
from simulation.engine.seeding import as_seed_sequence
from simulation.models import continuous, generators, registry

GENERATORS = tuple(registry.GENERATORS)
#: Default precision (MCSE) of a measured ``expected_sample`` truth.
DEFAULT_TRUTH_MCSE = 0.0005
#: The longest scenario key, in bytes: it names a folder (with ``__<statistic>`` after it), and file systems
#: allow 255 bytes per name.
MAX_KEY_BYTES = 180
#: First entropy word of the truth streams (a scenario's key hash follows).
TRUTH_ENTROPY = 0x7275_7468
STUDY_COLUMNS = ("case", "generator", "n", "k", "template", "counts", "rho", "df", "y_median", "y_iqr", "pool")


#: Built-in studies whose command-line runs compute more than Spearman's rho by default.
STUDY_STATISTICS: dict[str, tuple[str, ...]] = {"tie_sweep": ("spearman", "kendall_b")}


def study_statistics(name: str) -> tuple[str, ...]:
    """The statistics a study runs when none are asked for (``spearman`` except where listed)."""
    return STUDY_STATISTICS.get(name, ("spearman",))


def builtin_studies() -> dict[str, Path]:
    """The packaged studies by name (``simulation/studies/<name>.csv``)."""
    folder = resources.files("simulation").joinpath("studies")
    return {
        entry.name[: -len(".csv")]: Path(str(entry))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".csv")
    }


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
    df: float | None = None
    y_median: float | None = None
    y_iqr: float | None = None
    pool: str | None = None
    #: First 8 hex digits of the SHA-256 of the pool's values (``empirical``), set on construction.
    pool_digest: str | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # NumPy scalars are numbers: np.int64(30) is an n, np.float32(0.4) a rho
        for name in ("n", "k"):
            value = getattr(self, name)
            if isinstance(value, np.integer):
                object.__setattr__(self, name, int(value))
        for name in ("rho", "df", "y_median", "y_iqr"):
            value = getattr(self, name)
            if isinstance(value, np.floating | np.integer) and not isinstance(value, bool):
                object.__setattr__(self, name, float(value))
        if self.generator not in GENERATORS:
            raise ValueError(f"`generator` must be one of {list(GENERATORS)}, got {self.generator!r}")
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 4:
            raise ValueError(f"`n` must be an integer >= 4, got {self.n!r}")
        check_max_sample_size(self.n, "`n`")
        if isinstance(self.rho, bool) or not (isinstance(self.rho, float | int) and -1 < self.rho < 1):
            raise ValueError(f"`rho` must be in (-1, 1), got {self.rho!r}")
        self._check_extras()
        if self.tied:
            self._check_ties()
            counts = generators.tie_counts(self.n, self.k, self.template, self.counts or None)
            object.__setattr__(self, "counts", counts)
            if "pool" in self.model.fields:
                pool = generators.load_pool(self.pool)
                if pool.size < self.n:
                    raise ValueError(f"`pool` {self.pool!r} holds {pool.size} values, fewer than n = {self.n}")
                digest = hashlib.sha256(pool.astype("<f8").tobytes()).hexdigest()[:8]
                object.__setattr__(self, "pool_digest", digest)
                if self.pool != generators.EXAMPLE_POOL:
                    # absolute: worker processes started before the caller changed folder read the same file
                    object.__setattr__(self, "pool", str(Path(self.pool).resolve()))
        elif self.template != "all_distinct" or self.k is not None or self.counts:
            raise ValueError(
                f"`template` must be 'all_distinct' with no `k` or `counts` for generator {self.generator!r}, "
                f"got template={self.template!r}, k={self.k!r}"
            )
        if len(self.key.encode()) > MAX_KEY_BYTES:
            raise ValueError(
                f"scenario key {self.key[:60]!r}... is {len(self.key.encode())} bytes; a key names the scenario's "
                f"folder of blocks, at most {MAX_KEY_BYTES} bytes: shorten `case` (now {len(str(self.case))} "
                "characters)"
            )  # fmt: skip

    def _check_ties(self) -> None:
        """``k``, ``template`` and ``counts`` must describe one tie structure: a field that the template
        does not use is refused, never ignored (``k=4`` with ``all_distinct`` would run 30 distinct values
        under a table column that says 4)."""
        if self.template == "all_distinct" and self.k is not None:
            raise ValueError(
                f"`k` ({self.k!r}) does not apply to template 'all_distinct' (every x value distinct); "
                "leave `k` empty, or name a template ('even', 'heavy_tail', 'heavy_center') or counts ('custom')"
            )
        if self.template != "custom" and self.counts:
            # a named template's own counts (what a Scenario holds after construction, and what
            # dataclasses.replace passes back) agree with it; any other counts are refused
            derived = generators.tie_counts(self.n, self.k, self.template)
            if tuple(int(c) for c in self.counts) != derived:
                raise ValueError(
                    f"`counts` ({' '.join(map(str, self.counts))}) disagree with template {self.template!r} "
                    f"(k={self.k!r}, n={self.n}: counts {' '.join(map(str, derived))}); leave `counts` empty, "
                    "or set template='custom' to use your counts"
                )

    def _check_extras(self) -> None:
        """The optional fields: those the generator reads (:attr:`Generator.fields`) checked, required ones
        present, any other refused."""
        model = self.model
        for name in registry.OPTIONAL_FIELDS:
            if getattr(self, name) is not None and name not in model.fields:
                raise ValueError(f"field `{name}` does not apply to generator {self.generator!r}; leave it empty")
        if "df" in model.fields:
            df = continuous.DEFAULT_T_DF if self.df is None else self.df
            object.__setattr__(self, "df", continuous._check_df(df))
        if any(getattr(self, name) in (None, "") for name in model.required):
            if model.required == ("pool",):
                raise ValueError(f"field `pool` is required for generator {self.generator!r} (a CSV/Parquet path "
                                 "or 'example')")  # fmt: skip
            raise ValueError(f"fields {' and '.join(f'`{m}`' for m in model.required)} are required for generator "
                             f"{self.generator!r}")  # fmt: skip
        if "y_median" in model.fields:
            generators.lognormal_parameters(self.y_median, self.y_iqr)

    @property
    def model(self) -> registry.Generator:
        """The generator's entry in the registry (:data:`simulation.models.registry.GENERATORS`)."""
        return registry.GENERATORS[self.generator]

    @property
    def tied(self) -> bool:
        """Whether x follows a tie template (the tied-x generators)."""
        return self.model.tied

    @property
    def key(self) -> str:
        """Stable, filename-safe identity, e.g. ``case1_rank_mixing_n80_k4_heavy_center_rho-0.13``.

        Every field that changes the data is in it; an empirical pool enters by
        its file stem and a hash of its values (``_pool-<stem>-<sha256[:8]>``).
        """
        k = f"_k{self.k}" if self.k is not None else ""
        extra = ""
        if self.template == "custom":
            extra = "_" + hashlib.sha256(" ".join(map(str, self.counts)).encode()).hexdigest()[:8]
        if self.df is not None:
            extra += f"_df{self.df:g}"
        if self.y_median is not None:
            extra += f"_median{self.y_median:g}_iqr{self.y_iqr:g}"
        if self.pool is not None:
            # the stem for readability, the content's hash for identity: two pools named alike in
            # different folders get different keys (hence seeds), the same values the same key
            extra += f"_pool-{_safe(Path(self.pool).stem)}-{self.pool_digest}"
        return f"{_safe(self.case)}_{self.generator}_n{self.n}{k}_{self.template}{extra}_rho{self.rho:g}"

    @property
    def estimand(self) -> str:
        """``population`` or ``expected_sample``: what ``rho_true`` is (see module docstring)."""
        untied_copula = self.model.untied_population and self.template == "all_distinct"
        return "population" if not self.tied or untied_copula else "expected_sample"

    def calibration(self) -> generators.Calibration:
        """``(coefficient, achieved, mcse)`` of the generator (cached per tie structure).

        Exact for ``population`` estimands (``mcse`` 0): the latent Pearson of
        the untied Gaussian copula, or the target itself for the continuous
        generators (whose parameters their own generators compute).
        """
        if self.estimand == "population":
            coefficient = self.model.latent(self.rho, self.df) if self.tied else float(self.rho)
            return generators.Calibration(coefficient, float(self.rho), 0.0)
        return generators.calibrate_tied(self.generator, float(self.rho), self.counts, pool=self.pool)

    @property
    def rho_true(self) -> float:
        """The target ``rho``: exactly the estimand for ``population``; for ``expected_sample`` the
        value calibration aims at, which :func:`simulation.statistics.spearman.truth` measures to a stated
        precision."""
        return float(self.rho)

    @property
    def rho_true_mcse(self) -> float:
        """Monte Carlo error of the calibration's achieved mean (0 when exact)."""
        return self.calibration().mcse

    def _truth_seed(self) -> np.random.SeedSequence:
        digest = hashlib.sha256(self.key.encode()).digest()
        return np.random.SeedSequence([TRUTH_ENTROPY, *np.frombuffer(digest[:16], dtype=np.uint32).tolist()])

    def kendall_truth(self, target_mcse: float = DEFAULT_TRUTH_MCSE, *, calibration=None) -> generators.Truth:
        """Deprecated: Kendall's tau-b estimand now lives with the statistic,
        :func:`simulation.statistics.kendall.truth` (``truth(scenario, target_mcse, calibration=...)``), the
        same numbers."""

        # deprecated method, removed in the next release: the package's one upward import (allowed by name
        # in the layers contract and the circle test)
        from simulation.statistics import kendall

        warnings.warn("Scenario.kendall_truth() is deprecated; use simulation.statistics.kendall.truth(scenario, "
                      "...) (the same numbers); it will be removed in the next release", DeprecationWarning,
                      stacklevel=2)  # fmt: skip
        return kendall.truth(self, target_mcse, calibration=calibration)

    def truth(self, target_mcse: float = DEFAULT_TRUTH_MCSE, *, calibration=None) -> generators.Truth:
        """Deprecated: Spearman's estimand now lives with the statistic,
        :func:`simulation.statistics.spearman.truth` (``truth(scenario, target_mcse, calibration=...)``), the
        same numbers; a scenario holds no statistic's truth."""

        # deprecated method, removed in the next release: an upward import allowed by name in the layers
        # contract and the circle test
        from simulation.statistics import spearman

        warnings.warn("Scenario.truth() is deprecated; use simulation.statistics.spearman.truth(scenario, ...) "
                      "(the same numbers); it will be removed in the next release", DeprecationWarning,
                      stacklevel=2)  # fmt: skip
        return spearman.truth(self, target_mcse, calibration=calibration)

    def _coefficient(self, calibration) -> float:
        return (calibration or self.calibration()).coefficient

    def sample(
        self, n_reps: int, seed: int | np.random.SeedSequence, *, calibration: generators.Calibration | None = None
    ) -> tuple[np.ndarray, np.ndarray, generators.RankInputs]:
        """``(x, y)`` datasets, each ``(n_reps, n)``, and their :class:`~simulation.models.generators.RankInputs`.

        The datasets are those of :meth:`generate`; the inputs give their
        Spearman's rho and jackknife without re-ranking x and y.
        """
        seed = as_seed_sequence(seed)
        if self.tied:
            parts = generators._tied_parts(self.generator, n_reps, self.counts, seed, self.pool)
            c = self._coefficient(calibration)
            y = generators._tied_y(self.generator, parts, c, self.y_median, self.y_iqr)
            return parts.x, y, generators.tied_rank_inputs(self.generator, parts, c)
        x_score, y_score = continuous.continuous_scores(self.generator, n_reps, self.n, float(self.rho), seed, self.df)
        x, y = continuous.data_from_scores(self.generator, x_score, y_score)
        return x, y, generators.score_rank_inputs(x_score, y_score)

    def cheap_inputs(
        self,
        n_reps: int | Sequence[tuple[int, np.random.SeedSequence]],
        seed: int | np.random.SeedSequence | None = None,
        *,
        calibration: generators.Calibration | None = None,
        truth_control: bool = False,
    ) -> generators.RankInputs:
        """:class:`~simulation.models.generators.RankInputs` of ``n_reps`` datasets with the distribution of
        :meth:`generate`'s, drawn the cheapest exact way (see :func:`~simulation.models.generators.tied_cheap_inputs`).

        ``n_reps`` may be a list of ``(datasets, seed)`` blocks, stacked in order (``seed`` unused).
        ``truth_control``: also the mixing draws' exact control (tied-x models; None otherwise).
        """
        blocks = [(n_reps, as_seed_sequence(seed))] if isinstance(n_reps, int) else list(n_reps)
        if self.tied:
            c = self._coefficient(calibration)
            return generators.tied_cheap_inputs(
                self.generator, blocks, self.counts, c, pool=self.pool, truth_control=truth_control
            )
        rho = float(self.rho)
        scores = [continuous.continuous_scores(self.generator, m, self.n, rho, s, self.df) for m, s in blocks]
        return generators.score_rank_inputs(
            np.concatenate([x for x, _ in scores]), np.concatenate([y for _, y in scores])
        )

    def cheap_statistics(
        self, blocks: Sequence[tuple[int, np.random.SeedSequence]], *, calibration: generators.Calibration | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Spearman's rho, jackknife SE and an exact control of the datasets of :meth:`cheap_inputs` (the
        fastest path).  The control has expectation exactly 0: the mixing draws' ``u`` for tied-x models
        (:class:`~simulation.models.generators.RankInputs`), zeros (no control) for the continuous ones."""
        if self.tied:
            c = self._coefficient(calibration)
            return generators.tied_cheap_statistics(self.generator, blocks, self.counts, c, self.pool)
        rho, se = generators.rank_statistics(self.cheap_inputs(blocks))
        return rho, se, np.zeros_like(rho)

    def generate(
        self, n_reps: int, seed: int | np.random.SeedSequence, *, calibration: generators.Calibration | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` datasets, each ``(n_reps, n)``; depends only on ``(self, n_reps, seed)``.

        ``calibration``: this scenario's :meth:`calibration`, when already at
        hand (e.g. computed in another process), to skip recomputing it.
        """
        seed = as_seed_sequence(seed)
        if self.tied:
            return generators.generate_tied_batch(
                self.generator,
                n_reps,
                self.counts,
                self._coefficient(calibration),
                seed,
                pool=self.pool,
                y_median=self.y_median,
                y_iqr=self.y_iqr,
            )
        return self.model.generate(n_reps, self.n, float(self.rho), seed, self.df)


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in text)


def _closest_column(name: str) -> str:
    """`` (did you mean `x`?)`` for the valid column closest to ``name`` (case-insensitive), or ``""``."""
    lowered = {c.lower(): c for c in STUDY_COLUMNS}
    key = name.strip().lower()
    if key in lowered:
        return f" (did you mean `{lowered[key]}`?)"
    aliases = {"dof": "df", "degrees_of_freedom": "df", "distinct": "k", "template_name": "template"}
    if key in aliases:
        return f" (did you mean `{aliases[key]}`?)"
    close = difflib.get_close_matches(key, list(lowered), n=1, cutoff=0.5)
    return f" (did you mean `{lowered[close[0]]}`?)" if close else ""


def check_study_columns(columns: Sequence[str | None], where: str) -> None:
    """Refuse a study file whose header has a column it would not read.

    A misspelled column (``dof`` for ``df``, ``Template`` for ``template``) would otherwise be
    ignored and another design run under the same table columns; the message names the column and
    the closest valid name.

    Raises
    ------
    ValueError
        Unknown, empty or repeated column names.
    """
    names = list(columns)
    for name in names:
        if name is None or not str(name).strip():
            raise ValueError(f"{where} has an empty column name in its header; the columns are {list(STUDY_COLUMNS)}")
    unknown = [c for c in names if c not in STUDY_COLUMNS]
    if unknown:
        first = unknown[0]
        raise ValueError(
            f"{where} has unknown column {first!r}{_closest_column(first)}"
            + (f" (and {unknown[1:]})" if len(unknown) > 1 else "")
            + f"; a study file's columns are {list(STUDY_COLUMNS)} (names are case-sensitive)"
        )
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise ValueError(f"{where} repeats column(s) {repeated}")


def _parse_row(row: dict[str, str], where: str, base_dir: Path) -> Scenario:
    def text(name: str) -> str:
        return (row.get(name) or "").strip()

    def need(name: str) -> str:
        if not text(name):
            raise ValueError(f"field `{name}` is required")
        return text(name)

    def number(name: str, kind: type, required: bool = False):
        value = need(name) if required else text(name)
        if not value:
            return None
        try:
            return kind(value)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise ValueError(f"field `{name}` must be {what}, got {value!r}") from None

    try:
        try:
            counts = tuple(int(c) for c in text("counts").split())
        except ValueError:
            raise ValueError(f"field `counts` must be space-separated integers, got {text('counts')!r}") from None
        pool = text("pool") or None
        if pool is not None and pool != generators.EXAMPLE_POOL and not Path(pool).is_absolute():
            pool = str(base_dir / pool)
        return Scenario(
            case=need("case"),
            generator=need("generator"),
            n=number("n", int, required=True),
            rho=number("rho", float, required=True),
            k=number("k", int),
            template=text("template") or "all_distinct",
            counts=counts,
            df=number("df", float),
            y_median=number("y_median", float),
            y_iqr=number("y_iqr", float),
            pool=pool,
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
    path = _study_path(name_or_path)
    try:
        return _read_study(path)
    except csv.Error as exc:  # a malformed file (a field over the csv module's limit, a NUL byte)
        raise ValueError(f"study file `{path}` is not a readable CSV file: {exc}") from None


def _study_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if not path.is_file():
        builtin = builtin_studies()
        if str(name_or_path) not in builtin:
            raise ValueError(f"unknown study {str(name_or_path)!r}: not a file and not one of {sorted(builtin)}")
        path = builtin[str(name_or_path)]
    return path


def study_aims(name_or_path: str | Path) -> str | None:
    """The aims a study file states in ``#`` lines at its top (joined; None without any): what the study is
    for, for the ADEMP report (:mod:`simulation.present.ademp`)."""
    lines = []
    with _study_path(name_or_path).open() as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            lines.append(line[1:].strip())
    text = " ".join(t for t in lines if t)
    return text.removeprefix("aims:").strip() or None


def _read_study(path: Path) -> list[Scenario]:
    with path.open(newline="") as fh:
        comments = 0
        lines = fh.readlines()
        while comments < len(lines) and lines[comments].startswith("#"):  # the study's aims (study_aims)
            comments += 1
        reader = csv.DictReader(lines[comments:])
        missing = [c for c in ("case", "generator", "n", "rho") if c not in (reader.fieldnames or [])]
        if missing:
            hints = "".join(
                f"; {c!r}{_closest_column(c)}" for c in reader.fieldnames or [] if c and c not in STUDY_COLUMNS
            )
            raise ValueError(
                f"study file `{path}` lacks column(s) {missing}; it has {list(reader.fieldnames or [])}{hints} "
                f"(a study file needs case, generator, n, rho, and may have "
                f"{[c for c in STUDY_COLUMNS if c not in ('case', 'generator', 'n', 'rho')]}; "
                "comma-separated)"
            )
        check_study_columns(reader.fieldnames or [], f"study file `{path}`")
        scenarios = []
        for i, row in enumerate(reader, start=2 + comments):
            if None in row:  # more fields than the header names
                raise ValueError(
                    f"study file `{path}`, row {i}: {len(row[None])} more field(s) than the header's "
                    f"{len(reader.fieldnames or [])} columns ({row[None]!r})"
                )
            scenarios.append(_parse_row(row, f"study file `{path}`, row {i}", path.parent))
    keys = [s.key for s in scenarios]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ValueError(f"study file `{path}` repeats scenario(s) {dupes}")
    if not scenarios:
        raise ValueError(f"study file `{path}` holds no scenarios")
    return scenarios


def check_scenarios(scenarios: Scenario | Iterable[Scenario]) -> list[Scenario]:
    """A non-empty list of scenarios with unique keys (what a run needs); one Scenario is a list of one."""
    if isinstance(scenarios, Scenario):
        return [scenarios]
    try:
        scenarios = list(scenarios)
    except TypeError:
        raise RunError(
            f"`scenarios` must be a Scenario or a list of them (e.g. load_study(...)), got {type(scenarios).__name__}"
        ) from None
    wrong = [s for s in scenarios if not isinstance(s, Scenario)]
    if wrong:
        raise RunError(f"`scenarios` must hold Scenario objects, got {type(wrong[0]).__name__} {wrong[0]!r}")
    if not scenarios:
        raise RunError("the study holds no scenarios")
    keys = [s.key for s in scenarios]
    if len(set(keys)) != len(keys):
        raise RunError("scenario keys must be unique within a run")
    return scenarios


def scenario_seed(base_seed: int, scenario: Scenario) -> np.random.SeedSequence:
    """Stream of a scenario: from the base seed and a SHA-256 hash of its key (never its position)."""
    digest = hashlib.sha256(scenario.key.encode()).digest()
    return np.random.SeedSequence([int(base_seed), *np.frombuffer(digest[:16], dtype=np.uint32).tolist()])
