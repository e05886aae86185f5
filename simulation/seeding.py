"""Random streams: every stream is identified by where it is used, not by order.

A replicate's bootstrap resamples come from its own
:class:`numpy.random.SeedSequence`, spawned from the base seed with the
replicate index as spawn key (O'Neill 2015, PCG; NumPy's SeedSequence
documentation).  A replicate's numbers therefore depend only on
``(seed, replicate)``: not on chunk size, thread count, or which code path
(batch or per-replicate) computes them.
"""

from __future__ import annotations

import numpy as np

from simulation._validation import check_seed


def as_seed_sequence(seed: int | np.random.SeedSequence) -> np.random.SeedSequence:
    """Normalise an integer seed or a SeedSequence to a SeedSequence."""
    seed = check_seed(seed)
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return np.random.SeedSequence(seed)


def child_seed(seed: int | np.random.SeedSequence, index: int) -> np.random.SeedSequence:
    """The stream of child ``index`` of ``seed`` (e.g. replicate ``index``).

    Equal to ``SeedSequence(seed).spawn(index + 1)[index]`` but without
    spawning the preceding children, and independent of any earlier spawns.
    """
    parent = as_seed_sequence(seed)
    return np.random.SeedSequence(
        parent.entropy,
        spawn_key=(*parent.spawn_key, int(index)),
        pool_size=parent.pool_size,
    )


def rng_from(seed: int | np.random.SeedSequence) -> np.random.Generator:
    """A PCG64 :class:`numpy.random.Generator` for ``seed``."""
    return np.random.Generator(np.random.PCG64(as_seed_sequence(seed)))
