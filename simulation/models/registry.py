"""The generators by name: what each data-generating process is, declared once.

Every layer above asks a generator's entry (:data:`GENERATORS`) what it needs to know, instead of
switching on its name: which study fields it reads, whether x is tied, whether y can tie, its population
copula and the latent correlation behind it, how to draw its datasets. A new generator is its functions
(in :mod:`simulation.models.generators` for tied x, :mod:`simulation.models.continuous` otherwise) plus
one entry here.

Facts declared here, with their sources:

* The bivariate normal and the untied Gaussian copula have latent Pearson correlation
  ``2 sin(pi rho_s / 6)`` at population Spearman ``rho_s`` (Pearson 1907; the inverse of Kruskal 1958,
  eq. 5.4). The bivariate t's shape parameter is found numerically
  (:func:`~simulation.models.continuous.bivariate_t_rho_for`). All three are elliptical copulas.
* Plackett's copula is not elliptical; its parameter theta at ``rho_s`` is
  :func:`~simulation.models.continuous.plackett_theta_for` (Plackett 1965).
* The normal's and the t's data are themselves elliptical (their margins are not transformed), so
  Pearson's population correlation is the latent correlation; the copula models with other margins
  (Plackett's exponential margins) have no closed-form Pearson correlation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from simulation.models import continuous


def _normal_latent(rho_s: float, df: float | None) -> float:
    return 2 * math.sin(math.pi * rho_s / 6)


def _t_latent(rho_s: float, df: float | None) -> float:
    return continuous.bivariate_t_rho_for(rho_s, continuous.DEFAULT_T_DF if df is None else df)


@dataclasses.dataclass(frozen=True)
class Generator:
    """One data-generating process, as the rest of the package sees it."""

    name: str
    #: x follows a tie template (else x is continuous: every value distinct).
    tied: bool
    #: Optional study fields the generator reads; any other optional field is refused for it.
    fields: tuple[str, ...] = ()
    #: Of :attr:`fields`, those a scenario must give (``df`` has a default, 4).
    required: tuple[str, ...] = ()
    #: y can hold ties (values drawn from a finite pool).
    y_tied: bool = False
    #: With template ``all_distinct``, the process is continuous and its estimand the population value.
    untied_population: bool = False
    #: The population copula's family: ``"elliptical"`` (its latent correlation is :attr:`latent`),
    #: ``"plackett"``, or None (tied x: the estimand is the expected sample statistic).
    copula: str | None = None
    #: The latent (shape) correlation at target Spearman ``rho_s`` and ``df``, for elliptical copulas.
    latent: Callable[[float, float | None], float] | None = None
    #: The data themselves are elliptical (margins untransformed): Pearson's correlation is :attr:`latent`.
    elliptical_data: bool = False
    #: ``(n_reps, n, seed, df) -> (a, b)``: the common random numbers of a continuous model whose datasets
    #: at any correlation are a remix of the same draws (power curves); None: drawn whole at each point.
    mixing_parts: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None
    #: ``(n_reps, n, rho_s, seed, df) -> (x, y)``: a continuous model's datasets (tied ones go through
    #: :func:`~simulation.models.generators.generate_tied_batch`).
    generate: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None

    def plackett_theta(self, rho_s: float) -> float:
        """Plackett's parameter at target Spearman ``rho_s`` (its copula is ``"plackett"``)."""
        return continuous.plackett_theta_for(rho_s)


GENERATORS: dict[str, Generator] = {
    g.name: g
    for g in (
        Generator("rank_mixing", tied=True),
        Generator("gaussian_copula", tied=True, untied_population=True, copula="elliptical", latent=_normal_latent),
        Generator("log_linear", tied=True, fields=("y_median", "y_iqr"), required=("y_median", "y_iqr")),
        Generator("empirical", tied=True, fields=("pool",), required=("pool",), y_tied=True),
        Generator(
            "bivariate_normal", tied=False, copula="elliptical", latent=_normal_latent, elliptical_data=True,
            mixing_parts=lambda n_reps, n, seed, df: continuous.bivariate_normal_parts(n_reps, n, seed),
            generate=lambda n_reps, n, rho, seed, df: continuous.generate_bivariate_normal_batch(n_reps, n, rho, seed),
        ),
        Generator(
            "bivariate_t", tied=False, fields=("df",), copula="elliptical", latent=_t_latent, elliptical_data=True,
            mixing_parts=lambda n_reps, n, seed, df: continuous.bivariate_t_parts(n_reps, n, seed, df),
            generate=lambda n_reps, n, rho, seed, df: continuous.generate_bivariate_t_batch(n_reps, n, rho, seed, df),
        ),
        Generator(
            "plackett", tied=False, copula="plackett",
            generate=lambda n_reps, n, rho, seed, df: continuous.generate_plackett_batch(n_reps, n, rho, seed),
        ),
    )
}  # fmt: skip
#: Optional study fields some generator reads.
OPTIONAL_FIELDS = ("df", "y_median", "y_iqr", "pool")


def generator(name: str) -> Generator:
    """The entry of generator ``name``; a ValueError naming the known ones otherwise."""
    if name not in GENERATORS:
        raise ValueError(f"`generator` must be one of {list(GENERATORS)}, got {name!r}")
    return GENERATORS[name]
