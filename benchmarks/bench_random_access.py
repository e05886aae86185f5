"""The cost of one random access against n: the floor under the kernels' slopes at large n.

A resample's passes read and write arrays of n entries at random places (its counts at the draws' places,
each pair's x group in the pass along y). This script times the simplest such loop, a gather through a
random permutation (``out[k] = src[perm[k]]``: every load independent, so the processor overlaps as many
as it can), for bytes and int32 entries, n from 81,920 in steps of x4, one thread, the fastest of nine,
and prints the nanoseconds per element with the log-log slope between consecutive sizes. A loop that
does a fixed amount of work per element has slope 1 where the accesses hit the same level of cache; the
slope above 1 here is what a random access costs more as the array leaves a core's own cache.

Run: ``python benchmarks/bench_random_access.py [--max-n 2000000]`` (a few seconds).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from numba import njit


@njit(cache=True)
def _gather(out: np.ndarray, src: np.ndarray, perm: np.ndarray) -> None:
    for k in range(perm.shape[0]):
        out[k] = src[perm[k]]


def _fastest(out: np.ndarray, src: np.ndarray, perm: np.ndarray, repeats: int = 9) -> float:
    _gather(out, src, perm)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        _gather(out, src, perm)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-n", type=int, default=2_000_000)
    args = parser.parse_args()
    sizes = [81_920 * 4**k for k in range(8) if 81_920 * 4**k <= args.max_n]
    rng = np.random.default_rng(1)
    print("gather through a random permutation, one thread: ns per element (slope from the size before)")
    for dtype in (np.uint8, np.int32):
        previous = None
        for n in sizes:
            perm = rng.permutation(n).astype(np.int32)
            src = rng.integers(0, 100, n).astype(dtype)
            per = _fastest(np.empty(n, dtype), src, perm) / n
            slope = "" if previous is None else f"{1 + math.log(per / previous) / math.log(4):6.2f}"
            print(f"  {np.dtype(dtype).name:>5} n = {n:>9,}: {per * 1e9:5.2f} ns {slope}")
            previous = per


if __name__ == "__main__":
    main()
