"""Mergeable moments: count, mean vector and centred cross-product matrix of rows of numbers.

A study's compact blocks store these instead of every replicate: means,
variances, covariances and least-squares coefficients all follow from them,
and two blocks merge exactly into the moments of their union (Chan, Golub &
LeVeque 1979, "Updating formulae and a pairwise algorithm for computing
sample variances", eq. 2.1, in its multivariate form).  Merging is done in a
fixed order (block order), and each block's moments come from a kernel with
a fixed summation order, so merged tables are bit-identical however the
blocks were computed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from simulation.engine import _kernels


@dataclasses.dataclass(frozen=True)
class Moments:
    """``n`` rows, their ``mean`` ``(d,)`` and ``m2 = sum (v - mean)(v - mean)'`` ``(d, d)``."""

    n: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, d: int) -> Moments:
        return cls(0, np.zeros(d), np.zeros((d, d)))

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        """Moments of the rows of ``values (n, d)`` (a pure function of the data; no BLAS)."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        n, d = values.shape
        mean, m2 = np.empty(d), np.empty((d, d))
        _kernels.column_moments(values, mean, m2)
        return cls(n, mean, m2)

    def merge(self, other: Moments) -> Moments:
        """The moments of the union of both sets of rows (Chan et al. 1979)."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        m2 = self.m2 + other.m2 + np.outer(delta, delta) * (self.n * other.n / n)
        return Moments(n, mean, m2)

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    def covariance(self) -> np.ndarray:
        """Sample covariance matrix (ddof = 1); NaN with fewer than two rows."""
        return self.m2 / (self.n - 1) if self.n > 1 else np.full_like(self.m2, np.nan)

    def select(self, index) -> Moments:
        """The moments of a subset (or reordering) of the columns."""
        index = np.asarray(index)
        return Moments(self.n, self.mean[index], self.m2[np.ix_(index, index)])

    def linear(self, matrix: np.ndarray, offset: np.ndarray | None = None) -> Moments:
        """The moments of ``matrix @ v + offset`` for every row ``v`` (exact)."""
        mean = matrix @ self.mean + (0 if offset is None else offset)
        return Moments(self.n, mean, matrix @ self.m2 @ matrix.T)

    def sums(self) -> tuple[np.ndarray, np.ndarray]:
        """Raw sums ``sum v`` and ``sum v v'`` (for merging with sums kept elsewhere)."""
        return self.mean * self.n, self.m2 + np.outer(self.mean, self.mean) * self.n

    def to_record(self) -> dict:
        """A JSON/Parquet-ready record."""
        return {"n": int(self.n), "mean": self.mean.tolist(), "m2": self.m2.ravel().tolist()}

    @classmethod
    def from_record(cls, record: dict) -> Moments:
        mean = np.asarray(record["mean"], dtype=np.float64)
        d = mean.shape[0]
        return cls(int(record["n"]), mean, np.asarray(record["m2"], dtype=np.float64).reshape(d, d))


def merge_all(parts: list[Moments], d: int) -> Moments:
    """Merge in the order given (block order)."""
    out = Moments.empty(d)
    for part in parts:
        out = out.merge(part)
    return out
