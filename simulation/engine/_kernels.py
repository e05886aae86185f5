"""Numba kernels: every ``@njit`` function of the package lives here.

Contract shared by all kernels: inputs are C-contiguous, already validated
(finite, matching shapes); kernels read no mutable globals; randomness comes
only from the per-row keys passed in (counter-based, see ``philox4x32_10``);
each output row depends on the matching input row only, so chunking and
thread count cannot change a result.
``fastmath`` is never enabled: it would break NaN tests and exact tie
comparisons.

Spearman's rho is Pearson's correlation of midranks (Kendall & Gibbons 1990,
Rank Correlation Methods, 5th ed., eq. 3.9, with average ranks for ties).
All kernels compute it from *weights*: observation ``i`` counted ``w[i]``
times (1 for the data, 0 or 1 for the jackknife, the draw counts for a
bootstrap resample).  With tie groups ``g`` sorted by value, total weight
``c_g`` and cumulative weight ``C_g`` below ``g``, the midrank of group ``g``
is ``C_g + (c_g + 1) / 2`` and its deviation from the mean rank
``(N + 1) / 2`` is ``A_g / 2`` with the integer ``A_g = 2 C_g + c_g - N``.
Hence ``rho = sum_i w_i Ax_i Ay_i / sqrt(sum_g c_g Ax_g^2 * sum_g c_g Ay_g^2)``
with every sum an exact integer: a resample costs O(n) and needs no sort.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, njit, prange

# --------------------------------------------------------------------------
# Random resample indices: Philox4x32-10 + Lemire's bounded integers
# --------------------------------------------------------------------------
# Philox4x32-10 (Salmon, Moraes, Dror & Shaw 2011, "Parallel random numbers:
# as easy as 1, 2, 3", SC'11) is a counter-based generator: block ``ctr`` under
# key ``key`` is a pure function of both, so any resample of any replicate can
# be drawn on any thread in any order.  Keys come from NumPy's SeedSequence
# (one per replicate); the counter is (block, resample, stream, 0).  Known-answer
# vectors from Random123 are in tests/test_kernels.py.  Drawing in the kernel
# instead of with numpy.random.Generator.integers into a buffer runs on every
# core and needs no index buffer: on the 2-core CI machine the headline
# benchmark (benchmarks/bench_bootstrap.py) went from 2.0x to 1.6x the
# single-threaded NumPy floor.
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_MASK16 = np.uint64(0xFFFF)
_SHIFT16 = np.uint64(16)

#: Counter word 2: which use a replicate's stream serves.
STREAM_BOOTSTRAP = 0


@njit(cache=True, inline="always")
def _philox_round(c0, c1, c2, c3, k0, k1):
    """One round of Philox4x32: two 32 x 32 -> 64-bit products, their halves crossed and keyed."""
    p0 = _M0 * c0
    p1 = _M1 * c2
    return (p1 >> _SHIFT32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _SHIFT32) ^ c3 ^ k1, p0 & _MASK32


@njit(cache=True)
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """One Philox4x32-10 block: counter ``c0..c3``, key ``k0, k1`` (uint64 holding uint32) -> 4 words."""
    for rnd in range(10):
        if rnd > 0:
            k0 = (k0 + _W0) & _MASK32
            k1 = (k1 + _W1) & _MASK32
        c0, c1, c2, c3 = _philox_round(c0, c1, c2, c3, k0, k1)
    return c0, c1, c2, c3


@njit(cache=True, inline="always")
def _philox_pair(j, c1, c2, c3, k0, k1):
    """Philox4x32-10 blocks ``j`` and ``j + 1`` (counter words 1-3 shared) -> 8 words, the first block's
    first: the same words as two calls of :func:`philox4x32_10`, with the two rounds' chains interleaved
    (each round waits on its multiplications; two independent chains keep the multiplier busy)."""
    a0, a1, a2, a3 = j, c1, c2, c3
    b0, b1, b2, b3 = j + np.uint64(1), c1, c2, c3
    for rnd in range(10):
        if rnd > 0:
            k0 = (k0 + _W0) & _MASK32
            k1 = (k1 + _W1) & _MASK32
        a0, a1, a2, a3 = _philox_round(a0, a1, a2, a3, k0, k1)
        b0, b1, b2, b3 = _philox_round(b0, b1, b2, b3, k0, k1)
    return a0, a1, a2, a3, b0, b1, b2, b3


@njit(cache=True, inline="always")
def _accept_halves(word, nn, threshold, draws, i) -> int:
    """:func:`_lemire_accept` of a 32-bit word's two 16-bit halves, low half first."""
    i = _lemire_accept(word & _MASK16, nn, threshold, draws, i, _MASK16, _SHIFT16)
    return _lemire_accept(word >> _SHIFT16, nn, threshold, draws, i, _MASK16, _SHIFT16)


@njit(cache=True, inline="always")
def _accept_halves_of_pair(words, nn, threshold, draws, i) -> int:
    """:func:`_accept_halves` of the 8 words of :func:`_philox_pair`, in order."""
    w0, w1, w2, w3, w4, w5, w6, w7 = words
    i = _accept_halves(w0, nn, threshold, draws, i)
    i = _accept_halves(w1, nn, threshold, draws, i)
    i = _accept_halves(w2, nn, threshold, draws, i)
    i = _accept_halves(w3, nn, threshold, draws, i)
    i = _accept_halves(w4, nn, threshold, draws, i)
    i = _accept_halves(w5, nn, threshold, draws, i)
    i = _accept_halves(w6, nn, threshold, draws, i)
    return _accept_halves(w7, nn, threshold, draws, i)


@njit(cache=True, inline="always")
def _draw_resample(k0, k1, b, stream, draws) -> None:
    """Fill ``draws`` with uniform integers in [0, len(draws)) for resample ``b`` of key ``(k0, k1)``.

    Lemire (2019), "Fast random integer generation in an interval", ACM TOMACS
    29(1):3: ``x * n >> L`` for an ``L``-bit word ``x``, rejecting words whose
    low product bits are below ``2^L mod n``, so every value is exactly
    equally likely.  Words come in order from blocks 0, 1, 2, ... of counter
    ``(block, b, stream, 0)``.  For ``n <= 2^16`` each 32-bit word gives two
    16-bit words (low half first), which halves the Philox work per index;
    the rejection probability stays below ``n / 2^16`` (about 0.1% at
    n = 80).  Larger ``n`` uses whole 32-bit words.
    """
    n = draws.shape[0]
    nn = np.uint64(n)
    bb = np.uint64(b)
    st = np.uint64(stream)
    zero = np.uint64(0)
    j = np.uint64(0)
    i = 0
    if n <= 65536:
        threshold = ((_MASK16 + np.uint64(1)) - nn) % nn
        # two blocks at a time while more than one block's 8 indices are missing (a block's words
        # left over once ``draws`` is full are dropped either way, so the indices are the same)
        while n - i > 8:
            i = _accept_halves_of_pair(_philox_pair(j, bb, st, zero, k0, k1), nn, threshold, draws, i)
            j += np.uint64(2)
        while i < n:
            w0, w1, w2, w3 = philox4x32_10(j, bb, st, zero, k0, k1)
            j += np.uint64(1)
            i = _accept_halves(w0, nn, threshold, draws, i)
            i = _accept_halves(w1, nn, threshold, draws, i)
            i = _accept_halves(w2, nn, threshold, draws, i)
            i = _accept_halves(w3, nn, threshold, draws, i)
        return
    threshold = ((_MASK32 + np.uint64(1)) - nn) % nn
    while i < n:
        w0, w1, w2, w3 = philox4x32_10(j, bb, st, zero, k0, k1)
        j += np.uint64(1)
        i = _lemire_accept(w0, nn, threshold, draws, i, _MASK32, _SHIFT32)
        i = _lemire_accept(w1, nn, threshold, draws, i, _MASK32, _SHIFT32)
        i = _lemire_accept(w2, nn, threshold, draws, i, _MASK32, _SHIFT32)
        i = _lemire_accept(w3, nn, threshold, draws, i, _MASK32, _SHIFT32)


@njit(cache=True, inline="always")
def _lemire_accept(word, nn, threshold, draws, i, mask, shift) -> int:
    """Store ``word * n >> shift`` at ``draws[i]`` unless rejected or full; return the next free slot."""
    m = word * nn
    if i < draws.shape[0] and (m & mask) >= threshold:
        draws[i] = m >> shift
        return i + 1
    return i


@njit(cache=True, inline="always")
def _resample_counts(k0, k1, b, draws, w) -> None:
    """Draw resample ``b`` of key ``(k0, k1)`` into ``draws`` and count how often each pair was drawn in ``w``."""
    _draw_resample(k0, k1, b, STREAM_BOOTSTRAP, draws)
    for j in range(w.shape[0]):
        w[j] = 0
    for j in range(draws.shape[0]):
        w[draws[j]] += 1


#: Above this n a resample's counts are bytes (:func:`_place_counts`); up to it int32, whose arrays stay in a
#: core's cache anyway (bytes measured 5-10% slower per resample at n = 80).
BYTE_COUNTS_ABOVE = 65_536


#: Indices a resample counted in bytes draws at a time (:func:`_place_counts`): int32, in a core's L1 cache.
DRAW_CHUNK = 4096


@njit(cache=True, inline="always")
def _draw_chunk(k0, k1, bb, st, nn, threshold, j, buf) -> tuple[int, np.uint64]:
    """The next indices of a resample (:func:`_draw_resample`: its words in the same order, 16-bit halves
    for ``n <= 2^16``) into ``buf[:i]``, from Philox block ``j`` on, two blocks at a time while ``i <
    len(buf) - 15`` (so every index of the two blocks finds room); returns ``i`` and the next block."""
    zero = np.uint64(0)
    i = 0
    while i < buf.shape[0] - 15:
        pair = _philox_pair(j, bb, st, zero, k0, k1)
        j += np.uint64(2)
        if nn <= np.uint64(65536):
            i = _accept_halves_of_pair(pair, nn, threshold, buf, i)
        else:
            w0, w1, w2, w3, w4, w5, w6, w7 = pair
            i = _lemire_accept(w0, nn, threshold, buf, i, _MASK32, _SHIFT32)
            i = _lemire_accept(w1, nn, threshold, buf, i, _MASK32, _SHIFT32)
            i = _lemire_accept(w2, nn, threshold, buf, i, _MASK32, _SHIFT32)
            i = _lemire_accept(w3, nn, threshold, buf, i, _MASK32, _SHIFT32)
            i = _lemire_accept(w4, nn, threshold, buf, i, _MASK32, _SHIFT32)
            i = _lemire_accept(w5, nn, threshold, buf, i, _MASK32, _SHIFT32)
            i = _lemire_accept(w6, nn, threshold, buf, i, _MASK32, _SHIFT32)
            i = _lemire_accept(w7, nn, threshold, buf, i, _MASK32, _SHIFT32)
    return i, j


@njit(cache=True)
def draw_buffer(chunk: int = DRAW_CHUNK) -> np.ndarray:
    """A buffer for :func:`_place_counts`: ``chunk`` indices and the room a chunk's last two blocks need."""
    return np.empty(chunk + 15, np.int32)


@njit(cache=True, inline="always")
def _place_counts(key, b, place, buf, w, ell, sums) -> bool:
    """Draw resample ``b`` of ``key`` and count the draws at each place in ``w`` (``place[i]``: observation
    ``i``'s place in the row's order; ``w`` int32, or bytes above :data:`BYTE_COUNTS_ABOVE`); return
    whether every count fit.

    The indices come :data:`DRAW_CHUNK` at a time into ``buf`` (:func:`draw_buffer`): a chunk's places,
    then its counts (two passes, whose independent loads overlap, where one pass chains each count on a
    load: twice as fast at n = 10^6).  They are :func:`_draw_resample`'s indices in the same order (the
    words an n-long array has no room for are dropped there, and here the chunk past ``n`` is cut), and
    no n-long array of draws is written: at n = 1,310,720 on two threads it would have been 10 MB of a
    32 MB L3 that the passes after it read from.

    Bytes are a quarter of the memory that the counts and the passes reading them touch at random (at
    n = 10^6 they stay in a core's cache).  A count wraps only past 255, so only when n > 255, and then
    each wrap takes 256 from the counts' total: a total short of n says so, and the caller counts that
    resample again in int32.

    With a non-empty ``ell`` (values by place) also :func:`_resample_t`'s four partial sums into
    ``sums``: draw ``g`` adds to sum ``g % 4``, and the last ``n % 4`` draws to sum 0, each sum in draw
    order, so ``((sums[0] + sums[1]) + (sums[2] + sums[3])) / scale`` is that function's value bit for bit."""
    n = place.shape[0]
    whole = n - n % 4
    sums[:] = 0.0
    nn = np.uint64(n)
    threshold = (((_MASK16 if n <= 65536 else _MASK32) + np.uint64(1)) - nn) % nn
    bb = np.uint64(b)
    st = np.uint64(STREAM_BOOTSTRAP)
    j = np.uint64(0)
    w[:] = 0
    done = 0
    while done < n:
        got, j = _draw_chunk(key[0], key[1], bb, st, nn, threshold, j, buf)
        m = min(got, n - done)
        for t in range(m):
            buf[t] = place[buf[t]]
        if ell.shape[0] > 0:
            for t in range(m):
                g = done + t
                sums[g & 3 if g < whole else 0] += ell[buf[t]]
        if w.itemsize > 1:
            for t in range(m):
                w[buf[t]] += 1
        else:
            for t in range(m):  # the wrap written out: the same bytes when run as plain Python, without a warning
                w[buf[t]] = np.uint8((np.int64(w[buf[t]]) + 1) & 0xFF)
        done += m
    if w.itemsize > 1:
        return True
    total = 0
    for k in range(n):
        total += np.int64(w[k])
    return total == n


@njit(cache=True, parallel=True)
def resample_indices(keys, n_boot, n) -> np.ndarray:
    """The indices ``(m, n_boot, n)`` that :func:`bootstrap_rows` draws for keys ``(m, 2)``."""
    m = keys.shape[0]
    out = np.empty((m, n_boot, n), np.int64)
    for r in prange(m):
        for b in range(n_boot):
            _draw_resample(keys[r, 0], keys[r, 1], b, STREAM_BOOTSTRAP, out[r, b])
    return out


@njit(cache=True)
def _group_ids_1d(a: np.ndarray, gid: np.ndarray) -> int:
    """Write the tie-group index of each ``a[i]`` (0 = smallest value) into ``gid``; return the group count."""
    return _group_ids_of_order(a, np.argsort(a, kind="mergesort"), gid, np.empty(a.shape[0], np.uint8))


@njit(cache=True)
def _group_ids_of_order(a, order, gid, new) -> int:
    """:func:`_group_ids_1d` given ``order``, which sorts ``a`` ascending (whatever the order of tied
    values: they get one group), with ``new`` (n bytes) as scratch.

    Whether each value in sorted order starts a group is found first, in a pass of independent loads, and
    written to ``new``; then the groups are numbered and written at their places: one pass doing both waits
    on the memory twice per value once the arrays outgrow the caches (two rows of 1,310,720 on 2 threads:
    12.8 -> 6.5 ms; the same at 327,680).  A byte per value, where the values themselves gathered into n
    floats are eight: less memory to fault in and to pass over."""
    n = a.shape[0]
    prev = a[order[0]]
    for j in range(1, n):
        v = a[order[j]]
        new[j] = v != prev
        prev = v
    g = 0
    gid[order[0]] = 0
    for j in range(1, n):
        g += np.int64(new[j])
        gid[order[j]] = g
    return g + 1


@njit(cache=True, parallel=True)
def group_ids_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tie-group ids ``(m, n)`` and group counts ``(m,)`` of each row of ``a``."""
    m, n = a.shape
    gid = np.empty((m, n), np.int64)
    n_groups = np.empty(m, np.int64)
    for r in prange(m):
        n_groups[r] = _group_ids_1d(a[r], gid[r])
    return gid, n_groups


@njit(cache=True)
def group_ids_of_order(a: np.ndarray, order: np.ndarray, gid: np.ndarray, new: np.ndarray) -> int:
    """:func:`_group_ids_of_order` for one row ``(n,)`` into ``gid`` (``new``: n bytes of scratch); returns
    the group count."""
    return _group_ids_of_order(a, order, gid, new)


@njit(cache=True, parallel=True)
def group_ids_of_order_rows(
    x: np.ndarray, y: np.ndarray, ox: np.ndarray, oy: np.ndarray, gid: np.ndarray, n_groups: np.ndarray,
    new: np.ndarray,
) -> None:
    """:func:`group_ids_rows` of the rows of ``x (m, n)`` and then of ``y (m, n)`` (not joined into one
    array: a copy of both), given their ascending orders ``ox`` and ``oy`` ``(m, n)`` from any sort (the
    same ids), into ``gid (2 m, n)`` and ``n_groups (2 m,)``, with ``new (2 m, n)`` bytes of scratch.  The
    caller allocates them: NumPy asks for large pages for a large array, which the ids, written at random
    places, fill with fewer page faults (one dataset's ranking at n = 1,310,720, 2-4 ms of about 40-60 ms
    less than into an array allocated in this kernel)."""
    m = x.shape[0]
    for r in prange(2 * m):
        if r < m:
            n_groups[r] = _group_ids_of_order(x[r], ox[r], gid[r], new[r])
        else:
            n_groups[r] = _group_ids_of_order(y[r - m], oy[r - m], gid[r], new[r])


@njit(cache=True, parallel=True)
def midranks_rows(a: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) of each row, as ``scipy.stats.rankdata(method="average")``."""
    m, n = a.shape
    out = np.empty((m, n), np.float64)
    for r in prange(m):
        order = np.argsort(a[r], kind="mergesort")
        start = 0
        while start < n:
            stop = start + 1
            while stop < n and a[r, order[stop]] == a[r, order[start]]:
                stop += 1
            # ranks start+1 .. stop share their mean (start + 1 + stop) / 2
            rank = 0.5 * (start + 1 + stop)
            for j in range(start, stop):
                out[r, order[j]] = rank
            start = stop
    return out


@njit(cache=True)
def _grouped_order(gid, n_groups, order, starts) -> None:
    """Counting sort by group id: ``order[starts[g]:starts[g + 1]]`` lists the members of group ``g``."""
    n = gid.shape[0]
    starts[: n_groups + 1] = 0
    for i in range(n):
        starts[gid[i] + 1] += 1
    for g in range(n_groups):
        starts[g + 1] += starts[g]
    # fill from the back with starts[g + 1] as the cursor, which ends at starts[g]'s old value...
    for i in range(n - 1, -1, -1):
        g = gid[i] + 1
        starts[g] -= 1
        order[starts[g]] = i
    # ...so starts[g + 1] now holds the start of group g: shift back by one
    for g in range(n_groups):
        starts[g] = starts[g + 1]
    starts[n_groups] = n


#: Up to this many x groups :func:`_rho_grouped` totals the groups in one pass along y, in
#: ``COUNTER_SETS`` interleaved sets of counters, instead of reading each group's places.
FEW_X_GROUPS = 16
COUNTER_SETS = 4


@njit(cache=True)
def _rho_grouped(w, total, xp, xs, n_gx, gxy, ys, n_gy, ax) -> float:
    """Spearman's rho of the multiset with weights ``w`` (sum ``total``); NaN if x or y is constant.

    The observations are in y order (:func:`_row_layout`): ``w[k]`` weighs
    the observation at place ``k``, ``gxy[k]`` is its x group, y group ``q``
    holds places ``ys[q]:ys[q + 1]``, and ``xp[xs[g]:xs[g + 1]]`` lists the
    places of x group ``g``'s members in increasing order.  So the pass along
    y reads ``w`` in order, and the pass over x reads each group's weights in
    increasing places; with at most :data:`FEW_X_GROUPS` groups their totals
    come from one pass along y instead, into interleaved counters (one set
    would chain each add on the last store to the same counter).  The
    doubled deviation ``Ax`` of group ``g`` goes to ``ax[g]`` (``ax`` has
    :func:`_deviation_slots` slots), and ``sum_i w_i Ax_i Ay_i = sum_q Ay_q
    sum_{i in q} w_i Ax_i`` over y groups.  All sums are exact integers, so
    the order of summation cannot change the result.
    """
    few = n_gx <= FEW_X_GROUPS
    if few:
        for g in range(COUNTER_SETS * n_gx):
            ax[g] = 0
        for k in range(w.shape[0]):
            ax[(k & (COUNTER_SETS - 1)) * n_gx + gxy[k]] += w[k]
    cum = 0
    sxx = 0
    untied_x = n_gx == w.shape[0]
    if untied_x:  # one member per group, no inner loop; its deviation goes to its place (read in order below)
        for g in range(n_gx):
            p = xp[g]
            c = np.int64(w[p])
            a = 2 * cum + c - total
            ax[p] = a
            sxx += c * a * a
            cum += c
    for g in range(n_gx if n_gx < w.shape[0] else 0):  # x tied: each group's members, or its counters
        c = 0
        if few:
            for h in range(COUNTER_SETS):
                c += ax[h * n_gx + g]
        else:
            for k in range(xs[g], xs[g + 1]):
                c += np.int64(w[xp[k]])
        a = 2 * cum + c - total
        ax[g] = a
        sxx += c * a * a
        cum += c
    cum = 0
    syy = 0
    sxy = 0
    if n_gy == w.shape[0] and untied_x:  # both untied (the usual case): every array read in order
        for k in range(n_gy):
            c = np.int64(w[k])
            a = 2 * cum + c - total
            syy += c * a * a
            sxy += a * c * ax[k]
            cum += c
    elif n_gy == w.shape[0]:  # y untied: one member per group, no inner loop
        for k in range(n_gy):
            c = np.int64(w[k])
            a = 2 * cum + c - total
            syy += c * a * a
            sxy += a * c * ax[gxy[k]]
            cum += c
    else:
        for q in range(n_gy):
            c = 0
            t = 0
            for k in range(ys[q], ys[q + 1]):
                wk = np.int64(w[k])
                c += wk
                t += wk * ax[k if untied_x else gxy[k]]
            a = 2 * cum + c - total
            syy += c * a * a
            sxy += a * t
            cum += c
    if sxx == 0 or syy == 0:
        return np.nan
    return sxy / np.sqrt(float(sxx) * float(syy))


@njit(cache=True)
def _deviation_slots(n_gx) -> int:
    """Slots of :func:`_rho_grouped`'s ``ax`` buffer for ``n_gx`` x groups."""
    return COUNTER_SETS * n_gx if n_gx <= FEW_X_GROUPS else n_gx


@njit(cache=True)
def _row_layout(gx, n_gx, gy, n_gy):
    """Work arrays of one row in y order (members of each y group in index order, groups ascending), 32-bit
    (n <= MAX_SAMPLE_SIZE < 2^31: half the bytes a resample's passes read): ``pos[i]`` the place of
    observation ``i``, ``gxy[k]`` the x group at place ``k``, ``xp[xs[g]:xs[g + 1]]`` the places of x group
    ``g``'s members in increasing order, and ``ys`` the y groups' bounds (:func:`_rho_grouped`).  Where
    :func:`_rho_grouped` does not read them they are left empty: ``ys`` with y untied (one pair per y
    group), ``xp`` with at most :data:`FEW_X_GROUPS` x groups (their totals come from counters); at
    n = 1,310,720 that is 15.7 MB and two passes less per dataset."""
    n = gx.shape[0]
    untied_y = n_gy == n
    untied_x = n_gx == n
    ys = np.empty(0 if untied_y else n + 1, np.int64)
    pos = np.empty(n, np.int32)
    gxy = np.empty(n, np.int32)
    with_xp = untied_x or n_gx > FEW_X_GROUPS
    xp = np.empty(n if with_xp else 0, np.int32)
    # x untied: every x group has one member, so xs is 0 .. n and xp the inverse of gxy, written in the pass
    # that places the pairs (one random write more per pair, where counting the groups and placing their
    # members take two passes with random reads and writes)
    xs = np.zeros(n_gx + 1, np.int64)
    if untied_y:  # its group ids are its ranks, so observation i's place is gy[i] (no sort)
        for i in range(n):
            pos[i] = gy[i]
            gxy[gy[i]] = gx[i]
            if untied_x:
                xp[gx[i]] = gy[i]
            else:
                xs[gx[i] + 1] += 1
    else:
        yo = np.empty(n, np.int64)
        _grouped_order(gy, n_gy, yo, ys)
        for k in range(n):
            pos[yo[k]] = k
            g = gx[yo[k]]
            gxy[k] = g
            if untied_x:
                xp[g] = k
            else:
                xs[g + 1] += 1
    if untied_x:
        for g in range(n + 1):
            xs[g] = g
        return pos, gxy, xp, xs, ys
    for g in range(n_gx):
        xs[g + 1] += xs[g]
    if not with_xp:
        return pos, gxy, xp, xs, ys
    cursor = xs[:n_gx].copy()
    for k in range(n):  # places in increasing order within each x group
        g = gxy[k]
        xp[cursor[g]] = k
        cursor[g] += 1
    return pos, gxy, xp, xs, ys


@njit(cache=True, parallel=True)
def spearman_rows(gx, n_gx, gy, n_gy) -> np.ndarray:
    """Spearman's rho ``(m,)`` of each row, from tie-group ids (all weights 1)."""
    m, n = gx.shape
    out = np.empty(m, np.float64)
    for r in prange(m):
        if n_gy[r] == n:
            out[r] = _rho_untied_y(gx[r], n_gx[r], gy[r])
        else:
            pos, gxy, xp, xs, ys = _row_layout(gx[r], n_gx[r], gy[r], n_gy[r])
            ax = np.empty(_deviation_slots(n_gx[r]), np.int64)
            out[r] = _rho_grouped(np.ones(n, np.int64), n, xp, xs, n_gx[r], gxy, ys, n_gy[r], ax)
    return out


@njit(cache=True)
def _rho_untied_y(gx, n_gx, y_rank) -> float:
    """Spearman's rho of one row with untied y from its 0-based y ranks: the exact integers of
    :func:`_rho_grouped` (``Ay_i = 2 rank_i + 1 - n``, ``Syy = (n^3 - n) / 3``), so the same value, in two
    passes in observation order without ordering y; with x untied too one pass, x's terms in the same
    closed form (``Ax_i = 2 rank_i + 1 - n``, ``Sxx = Syy``)."""
    n = gx.shape[0]
    syy = (n * n * n - n) // 3
    if n_gx == n:
        sxy = 0
        for i in range(n):
            sxy += (2 * y_rank[i] + 1 - n) * (2 * gx[i] + 1 - n)
        return np.nan if syy == 0 else sxy / np.sqrt(float(syy) * float(syy))
    cx = np.zeros(n_gx, np.int64)
    for i in range(n):
        cx[gx[i]] += 1
    ax = np.empty(n_gx, np.int64)
    sxx = 0
    run = 0
    for g in range(n_gx):
        d = 2 * run + cx[g] - n
        ax[g] = d
        sxx += cx[g] * d * d
        run += cx[g]
    sxy = 0
    for i in range(n):
        sxy += (2 * y_rank[i] + 1 - n) * ax[gx[i]]
    if sxx == 0 or syy == 0:
        return np.nan
    return sxy / np.sqrt(float(sxx) * float(syy))


#: Scratch int64 slots per observation that :func:`_rank_statistics` needs (times n + 1).
RANK_WORK = 18
#: One dataset of more pairs than this is worked in arrays from NumPy (:func:`jackknife_rows`,
#: :func:`simulation.statistics.kendall.fixed_rows`), which asks the system for large pages for a large
#: array: the passes write these arrays at random places, and each fresh small page costs a fault
#: (Kendall's fixed cost at n = 1,310,720, about 92 -> 77 ms here; no change at 327,680).  The numbers are
#: the same either way.
NUMPY_WORK_ABOVE = 65_536
#: Rows that share one scratch allocation in the row-statistics kernels (allocation per row
#: serialises threads on the allocator; results do not depend on it).
ROWS_PER_CHUNK = 64


@njit(cache=True)
def _group_deviations(counts, n_groups, n, cum, dev, prefix) -> int:
    """Doubled deviations ``dev[g] = 2 C_g + c_g - n`` of tie groups, ``prefix[g] = sum_{h<g} c_h dev[h]``;
    returns ``sum_g c_g dev[g]^2``."""
    total = 0
    run = 0
    acc = 0
    for g in range(n_groups):
        cum[g] = run
        d = 2 * run + counts[g] - n
        dev[g] = d
        prefix[g] = acc
        acc += counts[g] * d
        total += counts[g] * d * d
        run += counts[g]
    return total


#: Groups per block of a tree over many groups (:func:`_tree_below`): 16 counts, one or two cache lines.
TREE_BLOCK_SHIFT = 4
#: Above this many groups the tree is over blocks of ``2**TREE_BLOCK_SHIFT`` groups; up to it, over the
#: groups themselves (a Fenwick tree of that many entries stays in a core's cache, and needs no scan).
TREE_BLOCKS_ABOVE = 65_536


@njit(cache=True, inline="always")
def _tree_shift(n_groups) -> int:
    """log2 of the groups per leaf of a tree over ``n_groups`` groups (:data:`TREE_BLOCKS_ABOVE`)."""
    return TREE_BLOCK_SHIFT if n_groups > TREE_BLOCKS_ABOVE else 0


@njit(cache=True, inline="always")
def _block_add(tree, n_groups, g, value) -> None:
    """Add ``value`` at the leaf of group ``g`` in a Fenwick tree (Fenwick 1994, *Software: Practice and
    Experience* 24:327; ``tree[1 .. n_leaves]``, ``tree[0]`` unused) whose leaves are the groups, or above
    :data:`TREE_BLOCKS_ABOVE` groups blocks of ``2**TREE_BLOCK_SHIFT`` of them; the group's own count is
    the caller's, beside it (:func:`_tree_below`)."""
    shift = _tree_shift(n_groups)
    n_leaves = ((n_groups - 1) >> shift) + 1
    i = (g >> shift) + 1
    while i <= n_leaves:
        tree[i] += value
        i += i & (-i)


@njit(cache=True, inline="always")
def _tree_below(tree, counts, n_groups, g) -> int:
    """The total of groups ``0 .. g - 1``: the leaves below ``g``'s from the tree (:func:`_block_add`), then
    (leaves of blocks) the groups before ``g`` in its block from their own ``counts``.  Over blocks of 16, a
    query reads about log2(n / 16) entries of a tree 16 times smaller than the groups and one or two lines
    of ``counts``, where a Fenwick tree over the groups reads log2(n) entries of an n-long array: with
    many groups, one cache miss instead of about ten at n = 10^6."""
    shift = _tree_shift(n_groups)
    b = g >> shift
    total = 0
    i = b
    while i > 0:
        total += tree[i]
        i -= i & (-i)
    for h in range(b << shift, g):
        total += np.int64(counts[h])
    return total


@njit(cache=True, inline="always")
def _tree_slots(n_groups) -> int:
    """Entries of a tree over ``n_groups`` groups (:func:`_block_add`)."""
    return ((n_groups - 1) >> _tree_shift(n_groups)) + 2


#: Columns of :func:`_x_group_terms`: one x group's terms side by side, so that the leave-one-out pass
#: reads one cache line per pair where separate arrays cost one each (many x groups: a random group).
X_GROUP_TERMS = 3


@njit(cache=True)
def _x_group_terms(cx, ax, px, vx, pvx, n_gx, n, sxx, out):
    """Per x group ``g`` (rows of ``out`` viewed ``(n_gx, 3)``): ``Ax_g``, ``Sxx(-i)`` for a pair ``i`` of
    the group and ``2 V_<g + V_g`` (:func:`_rank_statistics_untied_y`)."""
    grp = out[: X_GROUP_TERMS * n_gx].reshape((n_gx, X_GROUP_TERMS))
    for g in range(n_gx):
        grp[g, 0] = ax[g]
        grp[g, 1] = sxx + 2 * (2 * px[g] + cx[g] * ax[g]) + (n - cx[g]) - ax[g] * ax[g]
        grp[g, 2] = 2 * pvx[g] + vx[g]
    return grp


@njit(cache=True)
def _rank_statistics(gx, n_gx, gy, n_gy, jack, work) -> float:
    """Spearman's rho of one row from tie-group ids; its leave-one-out values into ``jack`` if non-empty.

    O(n log n_gx) integer arithmetic instead of n Spearman computations of
    O(n) each.  With doubled midrank deviations ``A`` (integers, see the
    module docstring) and ``s_ij = sign(x_i - x_j)``, leaving out pair ``i``
    shifts every other deviation by ``s_ij`` (its rank drops by 1, 1/2 or 0
    as ``x_j`` lies above, in or below ``x_i``'s group, and the mean rank by
    1/2).  With ``p``, ``q`` the x and y groups of pair ``i``, ``c`` group
    counts and ``P_p = sum_{g<p} c_g Ax_g``::

        Sxx(-i) = Sxx + 2 (2 P_p + c_p Ax_p) + (n - c_p) - Ax_p^2      (likewise Syy)
        Sxy(-i) = Sxy - Ax_p Ay_q + (2 W_<q + W_q) + (2 V_<p + V_p) + K_i

    where ``W_q`` sums ``Ax`` over y group ``q`` (``sum_j Ax_j sy_ij``),
    ``V_p`` sums ``Ay`` over x group ``p``, and ``K_i = sum_j sx_ij sy_ij`` is
    pair ``i``'s concordance count, accumulated along the y groups: with ``B_g`` the pairs of x group
    ``g`` in lower y groups and ``I_g`` those in y group ``q``, ``d_g = 2 B_g + I_g - c_g`` and
    ``K_i = sum_{g<p} d_g - sum_{g>p} d_g = 2 D_<p - D + d_p``, the partial sums ``D_<p`` read from
    trees over blocks of x groups of ``B`` and ``I`` (:func:`_tree_below`) in O(log n_gx).  Every
    quantity is an exact integer, so each value equals the direct leave-one-out computation bit for bit.
    ``work``: int64 scratch of length ``RANK_WORK * (n + 1)``.
    """
    n = gx.shape[0]
    w = n + 1
    cx, cumx, ax, px = work[0:w], work[w : 2 * w], work[2 * w : 3 * w], work[3 * w : 4 * w]
    cy, cumy, ay, py = work[4 * w : 5 * w], work[5 * w : 6 * w], work[6 * w : 7 * w], work[7 * w : 8 * w]
    vx, pvx, wy, pwy = work[8 * w : 9 * w], work[9 * w : 10 * w], work[10 * w : 11 * w], work[11 * w : 12 * w]
    yo, ys, below, inq = work[12 * w : 13 * w], work[13 * w : 14 * w], work[14 * w : 15 * w], work[15 * w : 16 * w]
    below_tree, inq_tree = work[16 * w : 17 * w], work[17 * w : 18 * w]  # trees of below and inq (blocks)
    cx[:n_gx] = 0
    for i in range(n):
        cx[gx[i]] += 1
    _grouped_order(gy, n_gy, yo, ys)
    for q in range(n_gy):
        cy[q] = ys[q + 1] - ys[q]
    sxx = _group_deviations(cx, n_gx, n, cumx, ax, px)
    syy = _group_deviations(cy, n_gy, n, cumy, ay, py)
    sxy = 0
    vx[:n_gx] = 0
    for q in range(n_gy):
        t = 0
        for k in range(ys[q], ys[q + 1]):
            i = yo[k]
            t += ax[gx[i]]
            vx[gx[i]] += ay[q]
        wy[q] = t
        sxy += ay[q] * t
    rho = np.nan if sxx == 0 or syy == 0 else sxy / np.sqrt(float(sxx) * float(syy))
    if jack.shape[0] == 0:
        return rho
    acc = 0
    for g in range(n_gx):
        pvx[g] = acc
        acc += vx[g]
    acc = 0
    for q in range(n_gy):
        pwy[q] = acc
        acc += wy[q]
    below[:n_gx] = 0
    below_tree[: _tree_slots(n_gx)] = 0
    inq[:n_gx] = 0
    inq_tree[: _tree_slots(n_gx)] = 0
    for q in range(n_gy):
        for k in range(ys[q], ys[q + 1]):
            inq[gx[yo[k]]] += 1
            _block_add(inq_tree, n_gx, gx[yo[k]], 1)
        total = 2 * ys[q] + cy[q] - n  # D: sum of d_g over every x group
        syy_i = syy + 2 * (2 * py[q] + cy[q] * ay[q]) + (n - cy[q]) - ay[q] * ay[q]
        u = 2 * pwy[q] + wy[q]
        for k in range(ys[q], ys[q + 1]):
            i = yo[k]
            p = gx[i]
            sxx_i = sxx + 2 * (2 * px[p] + cx[p] * ax[p]) + (n - cx[p]) - ax[p] * ax[p]
            # pairs of x group g below y group q count +-1, those above -+1 (sign of x_i - x_j)
            d_lt = 2 * _tree_below(below_tree, below, n_gx, p) + _tree_below(inq_tree, inq, n_gx, p) - cumx[p]
            conc = 2 * d_lt - total + (2 * below[p] + inq[p] - cx[p])
            num = sxy - ax[p] * ay[q] + u + 2 * pvx[p] + vx[p] + conc
            jack[i] = np.nan if sxx_i == 0 or syy_i == 0 else num / np.sqrt(float(sxx_i) * float(syy_i))
        for k in range(ys[q], ys[q + 1]):
            g = gx[yo[k]]
            below[g] += 1
            _block_add(below_tree, n_gx, g, 1)
            inq[g] -= 1
            _block_add(inq_tree, n_gx, g, -1)
    return rho


@njit(cache=True)
def _rank_statistics_untied_y(gx, n_gx, y_rank, jack, work) -> float:
    """:func:`_rank_statistics` for untied y given each observation's 0-based y rank: the same numbers
    (bit for bit), with y's group sums in closed form (``Ay_q = 2 q + 1 - n``, ``sum_{q'<q} Ay_q' =
    q (q - n)``, ``Syy = (n^3 - n) / 3``) and no sort of y."""
    n = gx.shape[0]
    w = n + 1
    cx, cumx, ax, px = work[0:w], work[w : 2 * w], work[2 * w : 3 * w], work[3 * w : 4 * w]
    vx, pvx, yo, below = work[4 * w : 5 * w], work[5 * w : 6 * w], work[6 * w : 7 * w], work[7 * w : 8 * w]
    below_tree = work[8 * w : 9 * w]  # tree over blocks of x groups of below
    syy = (n * n * n - n) // 3
    sxy = 0
    if n_gx == n:  # x untied too: its terms in closed form as y's (Ax_p = 2 p + 1 - n, Sxx = Syy)
        for i in range(n):
            p = gx[i]
            a = 2 * y_rank[i] + 1 - n
            sxy += a * (2 * p + 1 - n)
            vx[p] = a
        rho = np.nan if syy == 0 else sxy / np.sqrt(float(syy) * float(syy))
        if jack.shape[0] > 0:
            for i in range(n):  # a loop of its own, one random write per pair (3.7 -> 3.0 ns at n = 1,310,720)
                yo[y_rank[i]] = (i << 32) | gx[i]  # the pair and its x group in one word (both < 2^31)
            _leave_one_out_untied(yo, vx, n, syy, syy, sxy, jack, pvx, below)
        return rho
    cx[:n_gx] = 0
    vx[:n_gx] = 0
    for i in range(n):
        cx[gx[i]] += 1
        yo[y_rank[i]] = (i << 32) | gx[i]
    sxx = _group_deviations(cx, n_gx, n, cumx, ax, px)
    for i in range(n):
        a = 2 * y_rank[i] + 1 - n
        sxy += a * ax[gx[i]]
        vx[gx[i]] += a
    rho = np.nan if sxx == 0 or syy == 0 else sxy / np.sqrt(float(sxx) * float(syy))
    if jack.shape[0] == 0:
        return rho
    acc = 0
    for g in range(n_gx):
        pvx[g] = acc
        acc += vx[g]
    below[:n_gx] = 0
    below_tree[: _tree_slots(n_gx)] = 0
    grp = _x_group_terms(cx, ax, px, vx, pvx, n_gx, n, sxx, work[9 * w : (9 + X_GROUP_TERMS) * w])
    pwy = 0  # sum of Ax over the pairs below in y
    for q in range(n):
        i = yo[q] >> 32
        p = yo[q] & 0xFFFFFFFF
        axp = grp[p, 0]
        ay = 2 * q + 1 - n
        conc = 4 * _tree_below(below_tree, below, n_gx, p) + 2 * below[p] - 2 * q - axp
        syy_i = syy + 2 * (2 * (q * q - q * n) + ay) + (n - 1) - ay * ay
        sxx_i = grp[p, 1]
        num = sxy - axp * ay + 2 * pwy + axp + grp[p, 2] + conc
        jack[i] = np.nan if sxx_i == 0 or syy_i == 0 else num / np.sqrt(float(sxx_i) * float(syy_i))
        below[p] += 1
        _block_add(below_tree, n_gx, p, 1)
        pwy += axp
    return rho


_POP1 = np.uint64(0x5555555555555555)
_POP2 = np.uint64(0x3333333333333333)
_POP4 = np.uint64(0x0F0F0F0F0F0F0F0F)


@njit(cache=True, inline="always")
def _popcount(word) -> int:
    """Set bits of a uint64 (Warren 2012, *Hacker's Delight*, 2nd ed., §5-1: bit counts of 2, 4 and 8 bits
    side by side, then the bytes' counts added by shifts; no product, so no wrap in plain Python)."""
    word = word - ((word >> np.uint64(1)) & _POP1)
    word = (word & _POP2) + ((word >> np.uint64(2)) & _POP2)
    word = (word + (word >> np.uint64(4))) & _POP4
    word = word + (word >> np.uint64(8))
    word = word + (word >> np.uint64(16))
    word = word + (word >> np.uint64(32))
    return np.int64(word & np.uint64(0x7F))


@njit(cache=True)
def _count_below(yo, n, below) -> None:
    """``below[q]``: how many pairs lie below pair ``q`` in y and in x (``yo[q] & (2^32 - 1)``: its x rank,
    x and y untied, n < 2^24), in one pass along y that marks each x rank once seen.

    A count is the sum of four numbers read side by side: the marks in earlier superblocks (of 2^18
    ranks), in earlier blocks (of 2^12) of the superblock, in earlier words (of 64) of the block, and the
    set bits below the rank in its word (:func:`_popcount`); a mark adds 1 to the later entries of each
    level, 64 of them at each, every one (a comparison, no branch, in vector lanes).  At n = 1,310,720 the
    arrays are about 210 KB; the pass measured 8 ns per pair at 327,680 and 1,310,720, where a Fenwick tree over
    the words took 16 (its loops' lengths vary with the rank: a mispredicted branch or two per pair)."""
    n_words = (n >> 6) + 1
    n_blocks = (n_words >> 6) + 1
    bits = np.zeros(n_words, np.uint64)
    in_block = np.zeros(n_blocks << 6, np.int16)  # marks in the block's earlier words: < 2^12
    in_super = np.zeros(((n_blocks >> 6) + 1) << 6, np.int32)  # marks in the superblock's earlier blocks
    before = np.zeros(64, np.int32)  # marks in earlier superblocks (64 of 2^18 ranks: n < 2^24)
    one = np.uint64(1)
    for q in range(n):
        p = yo[q] & 0xFFFFFFFF
        k = p >> 6
        b = k >> 6
        sb = b >> 6
        bit = one << np.uint64(p & 63)
        word = bits[k]
        below[q] = before[sb] + in_super[b] + in_block[k] + _popcount(word & (bit - one))
        bits[k] = word | bit
        base, at = b << 6, k & 63
        for t in range(64):
            in_block[base + t] += t > at
        base, at = sb << 6, b & 63
        for t in range(64):
            in_super[base + t] += t > at
        for t in range(64):
            before[t] += t > sb


@njit(cache=True)
def _leave_one_out_untied(yo, vx, n, sxx, syy, sxy, jack, pv, below) -> None:
    """:func:`_rank_statistics_untied_y`'s leave-one-out values where x is untied too (x rank ``p`` its
    group): the same numbers bit for bit, with x's terms in closed form as y's (``Ax_p = 2 p + 1 - n``,
    ``P_p = p (p - n)``, so ``Sxx(-i)`` as ``Syy(-i)``), only ``2 V_<p + V_p`` kept (in ``pv``), and the
    pairs below in y and in x counted first (:func:`_count_below`; no pair of its own group is ever below
    it), so that pass alone stays in the cache.  The values' pass along y reads ``pv`` gathered into y
    order by a loop before it: a loop of random reads and one of random writes took 6.5 ms at n =
    1,310,720 where one loop doing both took 15.8 (the writes' misses held up the reads).  ``yo[q]``: the
    pair at y rank ``q`` and its x rank (:func:`_rank_statistics_untied_y`); ``vx[p]`` the Ay of x rank
    ``p``'s pair (overwritten); ``below`` scratch."""
    acc = 0
    for p in range(n):
        pv[p] = 2 * acc + vx[p]
        acc += vx[p]
    _count_below(yo, n, below)
    pv_y = vx  # vx is spent: 2 V_<p + V_p of each pair read into y order first, in a loop of reads alone
    for q in range(n):
        pv_y[q] = pv[yo[q] & 0xFFFFFFFF]
    pwy = 0  # sum of Ax over the pairs below in y
    for q in range(n):  # then the values, whose one random access is the write
        i = yo[q] >> 32
        p = yo[q] & 0xFFFFFFFF
        axp = 2 * p + 1 - n
        ay = 2 * q + 1 - n
        conc = 4 * below[q] - 2 * q - axp
        syy_i = syy + 2 * (2 * (q * q - q * n) + ay) + (n - 1) - ay * ay
        sxx_i = sxx + 2 * (2 * (p * p - p * n) + axp) + (n - 1) - axp * axp
        num = sxy - axp * ay + 2 * pwy + axp + pv_y[q] + conc
        jack[i] = np.nan if sxx_i == 0 or syy_i == 0 else num / np.sqrt(float(sxx_i) * float(syy_i))
        pwy += axp


def jackknife_rows(gx, n_gx, gy, n_gy) -> np.ndarray:
    """Leave-one-pair-out Spearman values ``(m, n)``: entry ``[r, i]`` omits pair ``i`` of row ``r``
    (:func:`_rank_statistics`, O(n log n_gx) per row; with y untied :func:`_rank_statistics_untied_y`, whose
    y ranks are y's group ids, the same numbers without sorting y).  One row of more than
    :data:`NUMPY_WORK_ABOVE` pairs is worked in arrays from NumPy (see there)."""
    m, n = gx.shape
    if m != 1 or n <= NUMPY_WORK_ABOVE:
        return _jackknife_rows(gx, n_gx, gy, n_gy)
    out = np.empty((1, n), np.float64)
    _jackknife_row(gx[0], n_gx[0], gy[0], n_gy[0], out[0], np.empty(RANK_WORK * (n + 1), np.int64))
    return out


@njit(cache=True, parallel=True)
def _jackknife_rows(gx, n_gx, gy, n_gy) -> np.ndarray:
    """:func:`jackknife_rows` of a batch: a chunk of rows per thread, one scratch array per chunk."""
    m, n = gx.shape
    out = np.empty((m, n), np.float64)
    n_chunks = (m + ROWS_PER_CHUNK - 1) // ROWS_PER_CHUNK
    for c in prange(n_chunks):
        work = np.empty(RANK_WORK * (n + 1), np.int64)  # scratch reused by the chunk's rows
        for r in range(c * ROWS_PER_CHUNK, min((c + 1) * ROWS_PER_CHUNK, m)):
            _jackknife_row(gx[r], n_gx[r], gy[r], n_gy[r], out[r], work)
    return out


@njit(cache=True)
def _jackknife_row(gx, n_gx, gy, n_gy, out, work) -> None:
    if n_gy == gx.shape[0]:
        _rank_statistics_untied_y(gx, n_gx, gy, out, work)
    else:
        _rank_statistics(gx, n_gx, gy, n_gy, out, work)


@njit(cache=True)
def jackknife_se(jack) -> float:
    """Jackknife standard error ``sqrt((n - 1) / n * sum (jack_i - mean)^2)`` (Efron & Tibshirani 1993,
    eq. 11.5); NaN when a value is undefined."""
    n = jack.shape[0]
    total = 0.0
    for i in range(n):
        total += jack[i]
    mean = total / n
    ss = 0.0
    for i in range(n):
        d = jack[i] - mean
        ss += d * d
    return np.sqrt((n - 1) / n * ss)


@njit(cache=True)
def _score_ranks(scores, ranks) -> bool:
    """0-based ranks of ``scores`` by counting smaller values: O(n^2) compares that vectorize, about
    5x faster than a sort at n = 80 (measured: 0.7 vs 3.5 us per row).  Returns False if two
    scores tie (the counts then collide; the caller sorts instead)."""
    n = scores.shape[0]
    total = 0
    for i in range(n):
        v = scores[i]
        c = 0
        for j in range(n):
            c += scores[j] < v
        ranks[i] = c
        total += c
    return total == n * (n - 1) // 2


#: Above this n, ranks come from a sort rather than counting.
COUNT_RANKS_MAX_N = 192


@njit(cache=True)
def _ranks_of(scores, ranks) -> None:
    """0-based ranks of ``scores``, ties (if any) broken by position: a permutation of 0..n-1."""
    n = scores.shape[0]
    if n <= COUNT_RANKS_MAX_N and _score_ranks(scores, ranks):
        return
    order = np.argsort(scores, kind="mergesort")  # stable: ties keep their positions' order
    for j in range(n):
        ranks[order[j]] = j


@njit(cache=True, parallel=True)
def score_ranks_rows(scores) -> np.ndarray:
    """0-based ranks ``(m, n)`` of each row of continuous scores (ties, if any, broken by position)."""
    m, n = scores.shape
    out = np.empty((m, n), np.int64)
    for r in prange(m):
        _ranks_of(scores[r], out[r])
    return out


@njit(cache=True, parallel=True)
def cheap_statistics_rows(gx, n_gx, y_scores, y_group_of_rank, n_gy, want_se) -> tuple[np.ndarray, np.ndarray]:
    """Spearman's rho and its jackknife SE ``(m,)`` each, for x tie groups ``gx`` and y ordered like ``y_scores``.

    The y value of observation ``i`` is the ``rank_i``-th smallest of the
    row's y values (``y_scores`` continuous: the generators' mixed scores),
    in tie group ``y_group_of_rank[r, rank_i]`` (``n_gy[r]`` groups; 0..n-1
    when y is untied).  So rho and the jackknife follow without building x
    or y: the cheap phase of a study, a few microseconds per dataset.
    Without ``want_se`` the jackknife is skipped and ``se`` is NaN.
    """
    m, n = gx.shape
    rho = np.empty(m, np.float64)
    se = np.empty(m, np.float64)
    n_chunks = (m + ROWS_PER_CHUNK - 1) // ROWS_PER_CHUNK
    for c in prange(n_chunks):
        ranks = np.empty(n, np.int64)
        gy = np.empty(n, np.int64)
        work = np.empty(RANK_WORK * (n + 1), np.int64)
        jack = np.empty(n if want_se else 0, np.float64)
        for r in range(c * ROWS_PER_CHUNK, min((c + 1) * ROWS_PER_CHUNK, m)):
            _ranks_of(y_scores[r], ranks)
            if n_gy[r] == n:
                rho[r] = _rank_statistics_untied_y(gx[r], n_gx[r], ranks, jack, work)
            else:
                for i in range(n):
                    gy[i] = y_group_of_rank[r, ranks[i]]
                rho[r] = _rank_statistics(gx[r], n_gx[r], gy, n_gy[r], jack, work)
            se[r] = jackknife_se(jack) if want_se else np.nan
    return rho, se


@njit(cache=True, parallel=True)
def template_statistics_rows(gx, n_gx, a, noise, c, standardize) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spearman's rho, jackknife SE and mixing control ``(m,)`` of datasets pairing the sorted template with noise.

    Observation ``i`` has x group ``gx[i]`` and y ordered like ``c a[i] +
    sqrt(1 - c^2) b[r, i]``, with ``b`` the row of ``noise`` (standardized to
    mean 0 and SD 1 over the row when ``standardize``): the cheap phase of the
    rank-mixing and log-linear models in one pass, with nothing stored per
    dataset but its three numbers.  The third is ``u = mean_i a_i erf(b_i /
    sqrt 2)``, odd in ``b`` and so of expectation exactly 0 (the generators'
    truth control, :func:`simulation.models.generators.expected_sample_spearman`).
    """
    m, n = noise.shape
    s = np.sqrt(1.0 - c * c)
    rho = np.empty(m, np.float64)
    se = np.empty(m, np.float64)
    u = np.empty(m, np.float64)
    root_half = np.sqrt(0.5)
    n_chunks = (m + ROWS_PER_CHUNK - 1) // ROWS_PER_CHUNK
    for ch in prange(n_chunks):
        score = np.empty(n, np.float64)
        ranks = np.empty(n, np.int64)
        work = np.empty(RANK_WORK * (n + 1), np.int64)
        jack = np.empty(n, np.float64)
        for r in range(ch * ROWS_PER_CHUNK, min((ch + 1) * ROWS_PER_CHUNK, m)):
            shift, scale = 0.0, 1.0
            if standardize:
                total = 0.0
                for i in range(n):
                    total += noise[r, i]
                shift = total / n
                ss = 0.0
                for i in range(n):
                    d = noise[r, i] - shift
                    ss += d * d
                scale = np.sqrt(ss / n)
            control = 0.0
            for i in range(n):
                b = (noise[r, i] - shift) / scale
                score[i] = c * a[i] + s * b
                control += a[i] * math.erf(b * root_half)
            u[r] = control / n
            _ranks_of(score, ranks)
            rho[r] = _rank_statistics_untied_y(gx, n_gx, ranks, jack, work)
            se[r] = jackknife_se(jack)
    return rho, se, u


#: Resample controls per row: Hermite polynomials 1-4 of the standardized linear approximation ``T``,
#: then ``sin(w T)``, ``cos(w T)``, ``sin(2 w T)``, ``cos(2 w T)`` with ``w = RESAMPLE_OMEGA``.
N_RESAMPLE_CONTROLS = 8
#: Angular frequency of the trigonometric resample controls (measured: see :mod:`simulation.study.estimators`).
RESAMPLE_OMEGA = 0.6


@njit(cache=True)
def _influence_moments(jack, ell, expect) -> float:
    """Centred empirical influence values ``ell`` of a row from its jackknife values, and the exact
    expectation of each resample control for a resample's ``T`` (see :func:`bootstrap_rows`) in
    ``expect``; returns ``scale = sqrt(n mu_2)``, or 0 when undefined."""
    n = jack.shape[0]
    total = 0.0
    for i in range(n):
        total += jack[i]
    mean = total / n
    centre = 0.0
    for i in range(n):
        ell[i] = mean - jack[i]
        centre += ell[i]
    centre /= n
    mu2, mu3, mu4 = 0.0, 0.0, 0.0
    for i in range(n):
        d = ell[i] - centre
        ell[i] = d
        mu2 += d * d
        mu3 += d * d * d
        mu4 += d * d * d * d
    mu2, mu3, mu4 = mu2 / n, mu3 / n, mu4 / n
    expect[:] = 0.0
    if not (np.isfinite(mu2) and mu2 > 0.0 and np.isfinite(mu4)):
        return 0.0
    scale = np.sqrt(n * mu2)
    expect[2] = mu3 / (np.sqrt(n) * mu2**1.5)
    expect[3] = (mu4 / (mu2 * mu2) - 3.0) / n
    for k in range(2):
        # E exp(i v T) = phi(v / scale)^n, phi the characteristic function of one draw from ell
        v = (k + 1) * RESAMPLE_OMEGA / scale
        re, im = 0.0, 0.0
        for i in range(n):
            re += np.cos(v * ell[i])
            im += np.sin(v * ell[i])
        modulus = np.hypot(re / n, im / n) ** n
        angle = n * np.arctan2(im, re)
        expect[4 + 2 * k] = modulus * np.sin(angle)
        expect[5 + 2 * k] = modulus * np.cos(angle)
    return scale


@njit(cache=True, inline="always")
def _resample_t(ell, draws, scale) -> float:
    """A resample's standardized linear approximation ``sum_j ell[draw_j] / scale`` (see :func:`bootstrap_rows`):
    four partial sums in a fixed order (no long dependency chain, the same result on any thread)."""
    n = draws.shape[0]
    s0, s1, s2, s3 = 0.0, 0.0, 0.0, 0.0
    j = 0
    while j + 4 <= n:
        s0 += ell[draws[j]]
        s1 += ell[draws[j + 1]]
        s2 += ell[draws[j + 2]]
        s3 += ell[draws[j + 3]]
        j += 4
    while j < n:
        s0 += ell[draws[j]]
        j += 1
    return ((s0 + s1) + (s2 + s3)) / scale


@njit(cache=True, inline="always")
def _add_controls(h, t) -> None:
    """Add ``He_1..He_4(t)``, ``sin(w t)``, ``cos(w t)``, ``sin(2 w t)``, ``cos(2 w t)`` to the running sums ``h``."""
    t2 = t * t
    h[0] += t
    h[1] += t2 - 1.0
    h[2] += t * (t2 - 3.0)
    h[3] += t2 * (t2 - 6.0) + 3.0
    s1 = np.sin(RESAMPLE_OMEGA * t)
    c1 = np.cos(RESAMPLE_OMEGA * t)
    h[4] += s1
    h[5] += c1
    h[6] += 2.0 * s1 * c1
    h[7] += 1.0 - 2.0 * s1 * s1


@njit(cache=True, inline="always")
def _finish_controls(out, h, n_boot, expect) -> None:
    """The controls ``mean_b g_k(T_b) - E g_k(T)`` from the sums over ``n_boot`` resamples; the
    trigonometric ones less their Hermite expansion's terms of degree 1-4 (see :func:`bootstrap_rows`)."""
    for k in range(N_RESAMPLE_CONTROLS):
        out[k] = h[k] / n_boot - expect[k]
    for j in range(2):
        v = (j + 1) * RESAMPLE_OMEGA
        g = np.exp(-0.5 * v * v)
        out[4 + 2 * j] -= g * (v * out[0] - v**3 / 6.0 * out[2])
        out[5 + 2 * j] -= g * (-(v**2) / 2.0 * out[1] + v**4 / 24.0 * out[3])


@njit(cache=True, parallel=True)
def resample_controls_rows(keys, n_boot, jack) -> np.ndarray:
    """The exact resample controls of :func:`bootstrap_rows` ``(m, N_RESAMPLE_CONTROLS)`` for any statistic
    whose jackknife values are ``jack``: they depend only on the resample indices (drawn here again, the
    same for the same keys) and the influence values, never on the statistic's replicates."""
    m, n = jack.shape
    controls = np.zeros((m, N_RESAMPLE_CONTROLS), np.float64)
    for r in prange(m):
        draws = np.empty(n, np.int64)
        ell = np.empty(n, np.float64)
        expect = np.zeros(N_RESAMPLE_CONTROLS, np.float64)
        scale = _influence_moments(jack[r], ell, expect)
        if scale <= 0.0:
            continue
        h = np.zeros(N_RESAMPLE_CONTROLS, np.float64)
        for b in range(n_boot):
            _draw_resample(keys[r, 0], keys[r, 1], b, STREAM_BOOTSTRAP, draws)
            _add_controls(h, _resample_t(ell, draws, scale))
        _finish_controls(controls[r], h, n_boot, expect)
    return controls


#: Tasks a bootstrap kernel's rows are split into at least (:func:`resample_parts`): a machine's threads.
RESAMPLE_TASKS = 16


@njit(cache=True)
def resample_parts(m: int, n_boot: int, threads: int = RESAMPLE_TASKS) -> int:
    """Parts each row's resamples are split into, so that fewer rows than threads (one dataset on the data)
    still keep every thread busy: ``RESAMPLE_TASKS // m``, at most ``threads`` (the threads the kernel runs
    on) and ``n_boot``, at least 1.  Each resample is computed whole by one thread and written to its own
    place, so no result depends on the parts.

    A part takes its own work arrays, which for a large dataset the system maps afresh and faults in page
    by page (glibc hands allocations past its threshold straight to mmap); as many parts as threads take
    them once per thread.  Kendall's tau-b with the bootstrap-t at n = 1,310,720 with all-distinct x, 4
    resamples on 2 threads: about 117 -> 103 ms against 16 parts."""
    return max(1, min(n_boot, RESAMPLE_TASKS // max(m, 1), threads))


@njit(cache=True)
def _part_bounds(part: int, parts: int, n_total: int) -> tuple[int, int]:
    """Resamples ``[lo, hi)`` of part ``part`` of ``parts``."""
    return part * n_total // parts, (part + 1) * n_total // parts


@njit(cache=True)
def _resample_setup(gx, n_gx, gy, n_gy, jack, with_controls):
    """What every resample of one row reads (:func:`bootstrap_rows`): its y-order layout (:func:`_row_layout`),
    and for the controls the influence values in y order, their moments' expectations and scale."""
    n = gx.shape[0]
    pos, gxy, xp, xs, ys = _row_layout(gx, n_gx, gy, n_gy)
    ell = np.empty(n if with_controls else 0, np.float64)  # an unused n-long array measured 3-4 ms at n = 327,680
    expect = np.zeros(N_RESAMPLE_CONTROLS, np.float64)
    scale = _influence_moments(jack, ell, expect) if with_controls else 0.0
    ell_y = np.empty(n if scale > 0.0 else 0, np.float64)
    if scale > 0.0:
        for i in range(n):
            ell_y[pos[i]] = ell[i]
    return pos, gxy, xp, xs, ys, ell_y, expect, scale


@njit(cache=True)
def _resample_range(key, lo, hi, n_gx, n_gy, setup, out, t) -> None:
    """Resamples ``lo .. hi - 1`` of one row: rho into ``out[b]``, the standardized linear approximation
    into ``t[b]`` (where the controls are asked)."""
    place, gxy, xp, xs, ys, ell_y, _, scale = setup
    n = place.shape[0]
    if n > BYTE_COUNTS_ABOVE:
        _resample_counted(key, lo, hi, n_gx, n_gy, setup, out, t, np.zeros(n, np.uint8))
        return
    w = np.zeros(n, np.int32)
    draws = np.empty(n, np.int32)
    ax = np.empty(_deviation_slots(n_gx), np.int32)  # |Ax| <= n
    for b in range(lo, hi):
        _draw_resample(key[0], key[1], b, STREAM_BOOTSTRAP, draws)
        # each draw's place in y order, then the counts: two passes, whose independent loads overlap,
        # where one pass chains each count on a load (twice as fast at n = 10^6)
        for j in range(n):
            draws[j] = place[draws[j]]
        w[:] = 0
        for j in range(n):
            w[draws[j]] += 1
        out[b] = _rho_grouped(w, n, xp, xs, n_gx, gxy, ys, n_gy, ax)
        if scale > 0.0:
            t[b] = _resample_t(ell_y, draws, scale)  # ell_y[place of i] = ell[i]: the same sum


@njit(cache=True)
def _resample_counted(key, lo, hi, n_gx, n_gy, setup, out, t, w) -> None:
    """:func:`_resample_range` with the counts in ``w`` (int32 or bytes: :func:`_place_counts`)."""
    place, gxy, xp, xs, ys, ell_y, _, scale = setup
    n = place.shape[0]
    buf = draw_buffer()
    sums = np.empty(4, np.float64)
    ax = np.empty(_deviation_slots(n_gx), np.int32)  # |Ax| <= n
    for b in range(lo, hi):
        # ell_y[place of i] = ell[i]: the controls' sum of _resample_t
        if _place_counts(key, b, place, buf, w, ell_y, sums):
            out[b] = _rho_grouped(w, n, xp, xs, n_gx, gxy, ys, n_gy, ax)
        else:
            out[b] = _rho_wide(key, b, n_gx, n_gy, setup, ax)
        if scale > 0.0:
            t[b] = ((sums[0] + sums[1]) + (sums[2] + sums[3])) / scale


@njit(cache=True)
def _rho_wide(key, b, n_gx, n_gy, setup, ax) -> float:
    """rho of resample ``b`` counted again in int32: the path of a resample where a byte count passed 255."""
    place, gxy, xp, xs, ys = setup[:5]
    n = place.shape[0]
    wide = np.empty(n, np.int32)
    _place_counts(key, b, place, draw_buffer(), wide, setup[5][:0], np.empty(4))
    return _rho_grouped(wide, n, xp, xs, n_gx, gxy, ys, n_gy, ax)


@njit(cache=True)
def _row_controls(t, setup, out) -> None:
    """A row's resample controls from its resamples' ``t`` (summed in resample order); 0 without controls."""
    expect, scale = setup[6], setup[7]
    if scale > 0.0:
        h = np.zeros(N_RESAMPLE_CONTROLS, np.float64)
        for b in range(t.shape[0]):
            _add_controls(h, t[b])
        _finish_controls(out, h, t.shape[0], expect)


def bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, jack, with_controls) -> tuple[np.ndarray, np.ndarray]:
    """Spearman's rho of ``n_boot`` paired resamples per row -> ``(m, n_boot)``, and resample controls.

    Resample ``b`` of row ``r`` counts the pairs drawn by
    ``_draw_resample(keys[r], b)`` (the same as :func:`resample_indices`);
    NaN where the resample has constant x or constant y.

    The controls ``(m, N_RESAMPLE_CONTROLS)`` are exact control variates for
    the resampling noise (Davison, Hinkley & Schechtman 1986, "Efficient
    bootstrap simulation", Biometrika 73:555-566; Davison & Hinkley 1997,
    *Bootstrap Methods and their Application*, §9.3): with ``ell_i`` the
    centred empirical influence values from the jackknife values ``jack``
    (Efron & Tibshirani 1993, eq. 21.32: ``ell_i`` proportional to ``mean -
    jack_i``), a resample's linear approximation ``S = sum_i w_i ell_i`` is a
    sum of ``n`` independent draws from ``{ell_i}``, so its moments are known
    exactly: ``E S = 0``, ``E S^2 = n mu_2``, ``E S^3 = n mu_3``, ``E S^4 = n
    mu_4 + 3 n (n - 1) mu_2^2`` (cumulants add; ``mu_k`` the moments of
    ``ell``).  With ``T = S / sqrt(n mu_2)``, column ``k - 1`` holds
    ``mean_b He_k(T_b) - E He_k(T)`` over all ``n_boot`` resamples (Hermite
    polynomials ``He_1 = T``, ``He_2 = T^2 - 1``, ``He_3 = T^3 - 3T``, ``He_4
    = T^4 - 6T^2 + 3``; ``E He_1 = E He_2 = 0``, ``E He_3 = mu_3 / (sqrt(n)
    mu_2^1.5)``, ``E He_4 = (mu_4 / mu_2^2 - 3) / n``), and columns 4-7 the
    same for ``sin(w T)``, ``cos(w T)``, ``sin(2 w T)``, ``cos(2 w T)`` (``w =``
    :data:`RESAMPLE_OMEGA`), whose expectations are exact too: ``E exp(i v T)
    = phi(v / sqrt(n mu_2))^n`` with ``phi(t) = mean_i exp(i t ell_i)`` the
    characteristic function of one draw (a sum of independent draws has the
    product of their characteristic functions: Billingsley 1995, *Probability
    and Measure*, 3rd ed., §26).  Each is stored less the terms of degree 1-4
    of its Hermite expansion, ``exp(i v T) = exp(-v^2 / 2) sum_k (i v)^k
    He_k(T) / k!`` (the generating function ``exp(x z - z^2 / 2) = sum_k
    He_k(x) z^k / k!`` at ``z = i v``; Abramowitz & Stegun 1964, §22.9), applied to the
    first four controls (a linear combination of controls with exact
    expectations, so the expectation stays exact and the regression's span is
    the same): what is left is nearly uncorrelated with the Hermite controls,
    so the regression stays well conditioned.  Bounded and periodic, they
    follow the step functions that polynomials of low degree cannot: BCa's
    bias correction counts the resamples below the estimate.  Given the data each
    has expectation exactly 0, so it has mean 0 over datasets too; 0 where
    the jackknife is undefined, and everywhere without ``with_controls``.
    The resample's ``S`` is summed over its draws, ``sum_j ell_{draw_j}``.

    A few rows' resamples are split into at most one part per thread (:func:`resample_parts`).
    """
    return _bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, jack, with_controls, get_num_threads())


@njit(cache=True, parallel=True)
def _bootstrap_rows(gx, n_gx, gy, n_gy, keys, n_boot, jack, with_controls, threads) -> tuple[np.ndarray, np.ndarray]:
    """:func:`bootstrap_rows` on ``threads`` threads (``numba.get_num_threads()`` in the kernel would keep
    numba from caching it)."""
    m, n = gx.shape
    out = np.empty((m, n_boot), np.float64)
    controls = np.zeros((m, N_RESAMPLE_CONTROLS), np.float64)
    parts = resample_parts(m, n_boot, threads)
    if parts == 1:  # at least as many rows as tasks: a row per task
        for r in prange(m):
            setup = _resample_setup(gx[r], n_gx[r], gy[r], n_gy[r], jack[r], with_controls)
            t = np.zeros(n_boot, np.float64)
            _resample_range(keys[r], 0, n_boot, n_gx[r], n_gy[r], setup, out[r], t)
            _row_controls(t, setup, controls[r])
    else:  # few rows: each row's setup once, its resamples in parts across the threads
        for r in range(m):
            setup = _resample_setup(gx[r], n_gx[r], gy[r], n_gy[r], jack[r], with_controls)
            t = np.zeros(n_boot, np.float64)
            for part in prange(parts):
                lo, hi = _part_bounds(part, parts, n_boot)
                _resample_range(keys[r], lo, hi, n_gx[r], n_gy[r], setup, out[r], t)
            _row_controls(t, setup, controls[r])  # the controls' sums in resample order, whatever the parts
    return out, controls


@njit(cache=True, parallel=True)
def summarize_rows(sorted_theta, theta_hat, jack):
    """Per-row bootstrap summaries from each row's values sorted ascending, NaNs last (``np.sort``).

    Returns ``n_valid`` (the values before the first NaN), the bootstrap SD
    (ddof=1), ``prop_below`` = (#{theta* < theta_hat} + #{theta* ==
    theta_hat} / 2) / n_valid (ties counted as half) and the jackknife
    acceleration ``sum d^3 / (6 (sum d^2)^1.5)`` with ``d = mean(jack) -
    jack_i`` (Efron & Tibshirani 1993, eq. 14.15); NaN where undefined.
    Sums run over the sorted values.  The sort is NumPy's (vectorised,
    about three times numba's on 1,000 values), outside this kernel.
    """
    m, n_boot = sorted_theta.shape
    n = jack.shape[1]
    n_valid = np.zeros(m, np.int64)
    sd = np.full(m, np.nan)
    prop_below = np.full(m, np.nan)
    accel = np.full(m, np.nan)
    for r in prange(m):
        k = 0
        while k < n_boot and not np.isnan(sorted_theta[r, k]):
            k += 1
        n_valid[r] = k
        if k > 0:
            total = 0.0
            below = 0.0
            for b in range(k):
                v = sorted_theta[r, b]
                total += v
                if v < theta_hat[r]:
                    below += 1.0
                elif v == theta_hat[r]:
                    below += 0.5
            prop_below[r] = below / k
            if k > 1:
                mean = total / k
                ss = 0.0
                for b in range(k):
                    d = sorted_theta[r, b] - mean
                    ss += d * d
                sd[r] = np.sqrt(ss / (k - 1))
        jsum = 0.0
        ok = True
        for i in range(n):
            if np.isnan(jack[r, i]):
                ok = False
            jsum += jack[r, i]
        if ok:
            jbar = jsum / n
            num = 0.0
            den = 0.0
            for i in range(n):
                d = jbar - jack[r, i]
                num += d * d * d
                den += d * d
            if den > 0.0:
                accel[r] = num / (6.0 * den**1.5)
    return n_valid, sd, prop_below, accel


@njit(cache=True, parallel=True)
def quantile_rows(sorted_theta, n_valid, probs) -> np.ndarray:
    """Linear-interpolation quantiles (Hyndman & Fan 1996 type 7, NumPy's default).

    ``probs (m, k)`` gives the probabilities for row ``r``; NaN probabilities
    or rows without valid values give NaN.
    """
    m, k = probs.shape
    out = np.full((m, k), np.nan)
    for r in prange(m):
        nv = n_valid[r]
        if nv == 0:
            continue
        for j in range(k):
            p = probs[r, j]
            if np.isnan(p):
                continue
            h = (nv - 1) * p
            lo = int(np.floor(h))
            if lo >= nv - 1:
                out[r, j] = sorted_theta[r, nv - 1]
            else:
                a = sorted_theta[r, lo]
                out[r, j] = a + (h - lo) * (sorted_theta[r, lo + 1] - a)
    return out


@njit(cache=True, parallel=True)
def studentized_quantile_rows(sorted_theta, n_valid, theta_hat, probs) -> np.ndarray:
    """Quantiles (type 7) of ``t* = (atanh r* - atanh r_hat) / sqrt(1 + r*^2 / 2)`` per row -> ``(m, k)``.

    ``sorted_theta`` holds each row's valid bootstrap values ascending
    (``np.sort``, NaNs last).  ``t*`` is usually increasing in ``r*``, so the
    sorted order carries over and no sort is needed; a row where it does not
    (``r_hat`` near -1 or 1) is sorted.  A resample with ``|r*| = 1`` gives
    ``t* = +-inf``, which keeps its place at an end of the order; a quantile
    that needs an infinite value is returned as +-inf (the caller flags it),
    never as a NaN from ``0 * inf``.
    """
    m, k = probs.shape
    out = np.full((m, k), np.nan)
    for r in prange(m):
        nv = n_valid[r]
        if nv == 0:
            continue
        z_hat = np.arctanh(theta_hat[r])
        t = np.empty(nv, np.float64)
        ordered = True
        for j in range(nv):
            v = sorted_theta[r, j]
            t[j] = (np.arctanh(v) - z_hat) / np.sqrt(1.0 + 0.5 * v * v)
            if j > 0 and not t[j] >= t[j - 1]:
                ordered = False
        if not ordered:
            t.sort()
        for j in range(k):
            h = (nv - 1) * probs[r, j]
            lo = min(int(np.floor(h)), nv - 1)
            frac = h - lo
            a = t[lo]
            b = t[min(lo + 1, nv - 1)]
            if frac == 0.0 or a == b or not np.isfinite(a):
                out[r, j] = a
            elif not np.isfinite(b):
                out[r, j] = b
            else:
                out[r, j] = a + frac * (b - a)
    return out


# --------------------------------------------------------------------------
# Calibration of mixing generators
# --------------------------------------------------------------------------
#: Shifts per observation an insertion sort of :func:`mixed_order_spearman_rows` may make before the row is
#: sorted afresh (a sort of n values costs about log2 n comparisons per value).
WARM_SHIFTS_PER_ELEMENT = 4


@njit(cache=True, parallel=True)
def mixed_order_spearman_rows(c, a, b, ax, ay_sorted, order, warm) -> np.ndarray:
    """Spearman's rho of rows whose y is ordered like ``c * a + sqrt(1 - c^2) * b``.

    ``ax[r, i]`` is twice the deviation of observation ``i``'s x midrank from
    the mean rank (an integer); ``ay_sorted[r, j]`` is the same for the
    ``j``-th smallest y of row ``r`` (``2 j + 1 - n`` when y is untied).  The
    y value placed at observation ``i`` is the ``j``-th smallest when the
    mixed score of ``i`` is the ``j``-th smallest, so rho is
    ``sum_j ax[order_j] ay_sorted[j] / sqrt(sum ax^2 sum ay^2)``: one sort per
    row and no rank arrays.  NaN for a row where x or y is constant.

    ``order`` (int64, like ``a``) receives each row's sorting permutation.
    With ``warm`` it must hold the permutation of a previous call and is
    re-sorted by insertion sort, O(n + inversions): root finding moves ``c``
    a little per step, so few pairs change order.  A step that moves more
    than :data:`WARM_SHIFTS_PER_ELEMENT` shifts per observation (from
    ``-C_MAX`` to ``C_MAX`` reverses the order: n^2 / 2 inversions) is
    abandoned and the row sorted afresh, so a call costs at most O(n log n)
    per row.  The mixed scores are
    continuous (no ties), so the permutation, hence rho, does not depend on
    where the sort started.
    """
    m, n = a.shape
    s = np.sqrt(1.0 - c * c)
    out = np.empty(m, np.float64)
    budget = WARM_SHIFTS_PER_ELEMENT * n
    for r in prange(m):
        mixed = c * a[r] + s * b[r]
        o = order[r]
        cold = not warm
        if warm:
            shifts = 0
            for j in range(1, n):
                item = o[j]
                key = mixed[item]
                i = j - 1
                while i >= 0 and mixed[o[i]] > key:
                    o[i + 1] = o[i]
                    i -= 1
                o[i + 1] = item
                shifts += j - 1 - i
                if shifts > budget:  # far from sorted (a large step in c): sorting afresh is O(n log n)
                    cold = True
                    break
        if cold:
            o[:] = np.argsort(mixed)
        sxy = 0.0
        sxx = 0.0
        syy = 0.0
        for j in range(n):
            sxy += ax[r, o[j]] * ay_sorted[r, j]
            sxx += ax[r, j] * ax[r, j]
            syy += ay_sorted[r, j] * ay_sorted[r, j]
        out[r] = sxy / np.sqrt(sxx * syy) if sxx > 0 and syy > 0 else np.nan
    return out


#: Most x tie groups :func:`merged_spearman_rows` merges (a linear scan of the groups' heads per
#: observation); more groups take :func:`mixed_order_spearman_rows`.
MERGE_MAX_GROUPS = 16


@njit(cache=True, parallel=True)
def group_sorted_noise(a, b, ax, ay_sorted, x_group, k):
    """What :func:`merged_spearman_rows` needs of rows whose score ``a`` and x deviation ``ax`` are constant
    within each of the ``k`` x tie groups ``x_group``: each row's ``b`` values sorted within each group
    (group ``g`` in ``bg[r, starts[r, g]:starts[r, g + 1]]``), each group's ``a`` and ``ax``, and the sums
    ``sum_i ax[r, i]^2`` and ``sum_j ay_sorted[r, j]^2`` in the order :func:`mixed_order_spearman_rows` adds
    them.  ``ok`` is False where some row's ``a`` or ``ax`` varies within a group (then nothing else is
    meaningful)."""
    m, n = b.shape
    bg = np.empty((m, n), np.float64)
    starts = np.zeros((m, k + 1), np.int64)
    a_group = np.zeros((m, k), np.float64)
    ax_group = np.zeros((m, k), np.float64)
    sxx = np.empty(m, np.float64)
    syy = np.empty(m, np.float64)
    bad = np.zeros(m, np.bool_)
    for r in prange(m):
        counts = np.zeros(k, np.int64)
        for i in range(n):
            g = x_group[r, i]
            if counts[g] == 0:
                a_group[r, g] = a[r, i]
                ax_group[r, g] = ax[r, i]
            elif a[r, i] != a_group[r, g] or ax[r, i] != ax_group[r, g]:
                bad[r] = True
            counts[g] += 1
        for g in range(k):
            starts[r, g + 1] = starts[r, g] + counts[g]
        fill = starts[r, :k].copy()
        for i in range(n):  # each group's noise together, then each group sorted
            g = x_group[r, i]
            bg[r, fill[g]] = b[r, i]
            fill[g] += 1
        for g in range(k):
            bg[r, starts[r, g]:starts[r, g + 1]].sort()
        xx = 0.0
        yy = 0.0
        for j in range(n):
            xx += ax[r, j] * ax[r, j]
            yy += ay_sorted[r, j] * ay_sorted[r, j]
        sxx[r] = xx
        syy[r] = yy
    return bg, starts, a_group, ax_group, sxx, syy, not np.any(bad)


@njit(cache=True, parallel=True)
def merged_spearman_rows(c, bg, starts, a_group, ax_group, ay_sorted, sxx, syy) -> np.ndarray:
    """Spearman's rho of rows whose y is ordered like ``c * a + sqrt(1 - c^2) * b``, where ``a`` and x are
    constant within each x tie group (the arrays of :func:`group_sorted_noise`).

    Within a group the scores are in the order of ``b`` (``sqrt(1 - c^2) > 0``), so the sorted scores of a
    row are the merge of its groups' sorted scores: O(n k) per row for k groups, reading every array in
    order, against a sort's O(n log n) with random access.  The scores are the same floating-point values
    as :func:`mixed_order_spearman_rows`'s and ``sxy`` is added in the same order, so rho is the same to the
    bit (two scores of different groups exactly equal, which a continuous ``b`` makes improbable, may be
    placed either way by a sort).
    """
    m, n = bg.shape
    k = a_group.shape[1]
    s = np.sqrt(1.0 - c * c)
    out = np.empty(m, np.float64)
    for r in prange(m):
        head = np.empty(k, np.int64)
        base = np.empty(k, np.float64)
        cur = np.empty(k, np.float64)
        for g in range(k):
            head[g] = starts[r, g]
            base[g] = c * a_group[r, g]
            cur[g] = base[g] + s * bg[r, head[g]] if head[g] < starts[r, g + 1] else np.inf
        sxy = 0.0
        for j in range(n):
            best = 0
            v = cur[0]
            for g in range(1, k):
                if cur[g] < v:
                    v = cur[g]
                    best = g
            sxy += ax_group[r, best] * ay_sorted[r, j]
            h = head[best] + 1
            head[best] = h
            cur[best] = base[best] + s * bg[r, h] if h < starts[r, best + 1] else np.inf
        out[r] = sxy / np.sqrt(sxx[r] * syy[r]) if sxx[r] > 0 and syy[r] > 0 else np.nan
    return out


# --------------------------------------------------------------------------
# Permutation nulls
# --------------------------------------------------------------------------
#: Counter word 2 of the permutation streams (resamples use STREAM_BOOTSTRAP = 0).
STREAM_PERMUTATION = 1


@njit(cache=True)
def _permute(k0, k1, p, stream, perm) -> None:
    """Fill ``perm`` with a uniform random permutation of 0..n-1 (permutation ``p`` of key ``(k0, k1)``).

    Fisher-Yates (Knuth 1997, TAOCP 2, Algorithm 3.4.2P) from the last
    position down; each swap index is drawn in [0, i] with Lemire's unbiased
    method on whole 32-bit Philox words of counter ``(block, p, stream, 0)``.
    """
    n = perm.shape[0]
    for i in range(n):
        perm[i] = i
    pp = np.uint64(p)
    st = np.uint64(stream)
    zero = np.uint64(0)
    j = np.uint64(0)
    w0 = w1 = w2 = w3 = zero
    used = 4
    i = n - 1
    while i > 0:
        if used == 4:
            w0, w1, w2, w3 = philox4x32_10(j, pp, st, zero, k0, k1)
            j += np.uint64(1)
            used = 0
        word = w0 if used == 0 else (w1 if used == 1 else (w2 if used == 2 else w3))
        used += 1
        bound = np.uint64(i + 1)
        m = word * bound
        if (m & _MASK32) < ((_MASK32 + np.uint64(1)) - bound) % bound:
            continue  # rejected: draw again for the same position
        k = np.int64(m >> _SHIFT32)
        tmp = perm[i]
        perm[i] = perm[k]
        perm[k] = tmp
        i -= 1


@njit(cache=True, parallel=True)
def permutation_null_rows(ax, ay, keys, n_perm) -> np.ndarray:
    """Spearman's rho of ``n_perm`` random re-pairings of each row -> ``(m, n_perm)``.

    Row ``r`` pairs ``ax[r, perm[j]]`` with ``ay[r, j]``, where ``ax`` and
    ``ay`` are twice the midrank deviations (integers) of x and y: the
    permutation distribution of Spearman's rho with the row's ties kept
    exactly.  Permutation ``p`` of row ``r`` comes from key ``keys[r]``
    (:func:`_permute`), so results do not depend on threads or chunking.
    """
    m, n = ax.shape
    out = np.empty((m, n_perm), np.float64)
    for r in range(m):
        sxx = 0.0
        syy = 0.0
        for j in range(n):
            sxx += ax[r, j] * ax[r, j]
            syy += ay[r, j] * ay[r, j]
        norm = np.sqrt(sxx * syy)
        for p in prange(n_perm):
            perm = np.empty(n, np.int64)
            _permute(keys[r, 0], keys[r, 1], p, STREAM_PERMUTATION, perm)
            sxy = 0.0
            for j in range(n):
                sxy += ax[r, perm[j]] * ay[r, j]
            out[r, p] = sxy / norm if norm > 0 else np.nan
    return out


# --------------------------------------------------------------------------
# Measurements: bootstrap quantiles and two-sample permutations
# --------------------------------------------------------------------------
@njit(cache=True, parallel=True)
def bootstrap_quantile(sorted_x, k0, k1, n_boot, prob) -> np.ndarray:
    """Quantile ``prob`` (linear interpolation, Hyndman & Fan 1996 type 7) of ``n_boot`` resamples.

    ``sorted_x`` is the data in increasing order.  Resample ``b`` draws its
    indices like :func:`bootstrap_rows` (Philox key ``(k0, k1)``); since the
    data are sorted, the resample's order statistics follow from the draw
    counts by one cumulative walk: O(n) per resample, no sort.
    """
    n = sorted_x.shape[0]
    h = (n - 1) * prob
    lo = int(np.floor(h))
    frac = h - lo
    hi = min(lo + 1, n - 1)
    out = np.empty(n_boot, np.float64)
    for b in prange(n_boot):
        draws = np.empty(n, np.int64)
        counts = np.zeros(n, np.int64)
        _draw_resample(k0, k1, b, STREAM_BOOTSTRAP, draws)
        for j in range(n):
            counts[draws[j]] += 1
        cum = 0
        v_lo = sorted_x[n - 1]
        v_hi = sorted_x[n - 1]
        found_lo = False
        for i in range(n):
            cum += counts[i]
            if not found_lo and cum > lo:
                v_lo = sorted_x[i]
                found_lo = True
            if cum > hi:
                v_hi = sorted_x[i]
                break
        out[b] = v_lo + frac * (v_hi - v_lo)
    return out


@njit(cache=True, parallel=True)
def permutation_mean_differences(values, n1, k0, k1, n_perm) -> np.ndarray:
    """``mean(group 2) - mean(group 1)`` after each of ``n_perm`` random relabellings.

    The first ``n1`` positions of permutation ``p`` (:func:`_permute`, Philox
    key ``(k0, k1)``, stream ``STREAM_PERMUTATION``) form group 1.
    """
    n = values.shape[0]
    n2 = n - n1
    total = 0.0
    for i in range(n):
        total += values[i]
    out = np.empty(n_perm, np.float64)
    for p in prange(n_perm):
        perm = np.empty(n, np.int64)
        _permute(k0, k1, p, STREAM_PERMUTATION, perm)
        s1 = 0.0
        for j in range(n1):
            s1 += values[perm[j]]
        out[p] = (total - s1) / n2 - s1 / n1
    return out


# --------------------------------------------------------------------------
# Mergeable moments (the compact blocks of a study)
# --------------------------------------------------------------------------
@njit(cache=True)
def column_moments(values, out_mean, out_m2) -> None:
    """Mean and centred cross-product matrix ``sum (v - mean)(v - mean)'`` of the rows of ``values (n, d)``.

    Two passes with a fixed summation order (row by row), so the result is a
    pure function of the data: no BLAS, whose reduction order may depend on
    its thread count.
    """
    n, d = values.shape
    out_mean[:] = 0.0
    for i in range(n):
        for a in range(d):
            out_mean[a] += values[i, a]
    if n > 0:
        for a in range(d):
            out_mean[a] /= n
    out_m2[:, :] = 0.0
    centred = np.empty(d, np.float64)
    for i in range(n):
        for a in range(d):
            centred[a] = values[i, a] - out_mean[a]
        for a in range(d):
            ca = centred[a]
            for b in range(a, d):
                out_m2[a, b] += ca * centred[b]
    for a in range(d):
        for b in range(a):
            out_m2[a, b] = out_m2[b, a]


# --------------------------------------------------------------------------
# SeedSequence children's Philox keys, many at once
# --------------------------------------------------------------------------
# numpy.random.SeedSequence (after O'Neill 2015, "Developing a seed_seq alternative", pcg-random.org):
# the entropy words are hashed into a pool (mix_entropy), and generate_state hashes the pool out.
# Constants as NumPy documents them; tests/test_kernels.py checks equality with NumPy on many seeds.
_SS_INIT_A = np.uint64(0x43B0D7E5)
_SS_MULT_A = np.uint64(0x931E8875)
_SS_INIT_B = np.uint64(0x8B51F9DD)
_SS_MULT_B = np.uint64(0x58F38DED)
_SS_MIX_L = np.uint64(0xCA01F9DD)
_SS_MIX_R = np.uint64(0x4973F715)
_SS_SHIFT = np.uint64(16)
_TWO32 = np.uint64(1 << 32)
# 32-bit arithmetic is done in uint64 and masked after every product and difference (numba would
# otherwise widen uint32 products)


@njit(cache=True, inline="always")
def _ss_hashmix(value, hash_const):
    value = value ^ hash_const
    hash_const = (hash_const * _SS_MULT_A) & _MASK32
    value = (value * hash_const) & _MASK32
    return value ^ (value >> _SS_SHIFT), hash_const


@njit(cache=True, inline="always")
def _ss_mix(x, y):
    # (L x - R y) mod 2^32, without a negative intermediate: every product fits in 64 bits
    result = (((_SS_MIX_L * x) & _MASK32) + _TWO32 - ((_SS_MIX_R * y) & _MASK32)) & _MASK32
    return result ^ (result >> _SS_SHIFT)


@njit(cache=True)
def seed_sequence_keys(prefix, last, pool_size) -> np.ndarray:
    """Philox keys ``(m, 2)`` (uint32 in uint64) of ``SeedSequence`` children: the first two words of
    ``generate_state`` of the sequence whose assembled entropy is ``prefix`` (uint32 words: run entropy,
    padded, and the spawn key so far) followed by the word ``last[r]``."""
    m = last.shape[0]
    p = prefix.shape[0]
    out = np.empty((m, 2), np.uint64)
    entropy = np.empty(p + 1, np.uint64)
    for i in range(p):
        entropy[i] = np.uint64(prefix[i])
    pool = np.empty(pool_size, np.uint64)
    zero = np.uint64(0)
    for r in range(m):
        entropy[p] = np.uint64(last[r])
        hash_const = _SS_INIT_A
        for i in range(pool_size):
            word = entropy[i] if i < p + 1 else zero
            pool[i], hash_const = _ss_hashmix(word, hash_const)
        for i_src in range(pool_size):
            for i_dst in range(pool_size):
                if i_src != i_dst:
                    h, hash_const = _ss_hashmix(pool[i_src], hash_const)
                    pool[i_dst] = _ss_mix(pool[i_dst], h)
        for i_src in range(pool_size, p + 1):
            for i_dst in range(pool_size):
                h, hash_const = _ss_hashmix(entropy[i_src], hash_const)
                pool[i_dst] = _ss_mix(pool[i_dst], h)
        hash_b = _SS_INIT_B
        for j in range(2):
            value = pool[j % pool_size] ^ hash_b
            hash_b = (hash_b * _SS_MULT_B) & _MASK32
            value = (value * hash_b) & _MASK32
            out[r, j] = value ^ (value >> _SS_SHIFT)
    return out
