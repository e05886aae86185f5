"""Slow, obvious reference implementations the fast code is tested against."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.special import ndtr, ndtri

from simulation.engine._kernels import RESAMPLE_OMEGA  # a setting (the frequency), not a formula


def spearman_scipy(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho by SciPy (NaN for constant input, warning suppressed)."""
    if np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def bootstrap_distribution(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Spearman of every resample ``x[idx[b]], y[idx[b]]`` via SciPy."""
    return np.array([spearman_scipy(x[i], y[i]) for i in idx])


def jackknife(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Leave-one-pair-out Spearman values via SciPy."""
    keep = ~np.eye(x.shape[0], dtype=bool)
    return np.array([spearman_scipy(x[k], y[k]) for k in keep])


def bca_parts(theta: np.ndarray, theta_hat: float, jack: np.ndarray) -> tuple[float, float]:
    """z0 (ties counted half) and acceleration, written out as in Efron & Tibshirani (1993) §14.3."""
    valid = theta[~np.isnan(theta)]
    p = (np.sum(valid < theta_hat) + 0.5 * np.sum(valid == theta_hat)) / valid.size
    d = jack.mean() - jack
    return float(ndtri(p)), float(np.sum(d**3) / (6 * np.sum(d**2) ** 1.5))


def studentized_interval(theta: np.ndarray, theta_hat: float, n: int, confidence_level: float) -> tuple[float, float]:
    """Bootstrap-t on the Fisher-z scale, written out with the sample size kept in the SE.

    t* = (atanh r* - atanh r) / se(r*), se(r) = sqrt((1 + r^2 / 2) / (n - 3)) (Bonett & Wright
    2000); interval tanh(z - t*_(1 - a/2) se(r)), tanh(z - t*_(a/2) se(r)) (Davison & Hinkley
    1997, eq. 5.7), quantiles by np.percentile after sorting t*.
    """
    valid = theta[~np.isnan(theta)]
    alpha = 1 - confidence_level

    def se(r):
        return np.sqrt((1 + r * r / 2) / (n - 3))

    with np.errstate(divide="ignore"):
        t = np.sort((np.arctanh(valid) - np.arctanh(theta_hat)) / se(valid))
    t_lo, t_hi = np.percentile(t, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    z = np.arctanh(theta_hat)
    return float(np.tanh(z - t_hi * se(theta_hat))), float(np.tanh(z - t_lo * se(theta_hat)))


def intervals_numpy(
    theta: np.ndarray, theta_hat: float, jack: np.ndarray, confidence_level: float
) -> dict[str, tuple[float, float]]:
    """The five bootstrap intervals with np.percentile and plain formulas (n = the jackknife's length)."""
    valid = theta[~np.isnan(theta)]
    alpha = 1 - confidence_level
    lo, hi = np.percentile(valid, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    z0, a = bca_parts(theta, theta_hat, jack)
    zl, zh = ndtri(alpha / 2), ndtri(1 - alpha / 2)
    a1 = ndtr(z0 + (z0 + zl) / (1 - a * (z0 + zl)))
    a2 = ndtr(z0 + (z0 + zh) / (1 - a * (z0 + zh)))
    blo, bhi = np.percentile(valid, [100 * a1, 100 * a2])
    se = np.std(valid, ddof=1)
    return {
        "percentile": (lo, hi),
        "basic": (2 * theta_hat - hi, 2 * theta_hat - lo),
        "bca": (blo, bhi),
        "normal": (theta_hat - zh * se, theta_hat + zh * se),
        "studentized": studentized_interval(theta, theta_hat, jack.shape[0], confidence_level),
    }


def spearman_vectorized(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman's rho along ``axis`` for ``scipy.stats.bootstrap(vectorized=True)``."""
    rx = stats.rankdata(x, axis=axis)
    ry = stats.rankdata(y, axis=axis)
    rx = rx - rx.mean(axis=axis, keepdims=True)
    ry = ry - ry.mean(axis=axis, keepdims=True)
    return (rx * ry).sum(axis=axis) / np.sqrt((rx**2).sum(axis=axis) * (ry**2).sum(axis=axis))


def tied_x(rng: np.random.Generator, counts: list[int]) -> np.ndarray:
    """x with the given tie counts over equally spaced values, positions shuffled."""
    values = np.repeat(np.linspace(1.43, 3.55, len(counts)), counts)
    return rng.permutation(values)


def kendall_tau_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-a of each row by counting all pairs (continuous data: no ties)."""
    i, j = np.triu_indices(x.shape[1], k=1)
    concordance = np.sign(x[:, i] - x[:, j]) * np.sign(y[:, i] - y[:, j])
    return concordance.mean(axis=1)


def plackett_cdf(u, v, theta: float):
    """Plackett's copula C(u, v), written out from Plackett (1965) / Nelsen (2006) eq. 3.3.3."""
    s = 1 + (theta - 1) * (u + v)
    return (s - np.sqrt(s**2 - 4 * u * v * theta * (theta - 1))) / (2 * (theta - 1))


def bca_lower_bound_reference(scores, run_id: str, n_resamples: int = 1000, tail: float = 0.025) -> float:
    """compute_lower_bound_95 written out step by step (Efron & Tibshirani 1993, §14.3), loops instead of arrays."""
    import math

    x = [float(s) for s in scores]
    n = len(x)
    mean = sum(x) / n
    rng = np.random.default_rng(int(run_id[:8], 16))
    idx = rng.integers(0, n, size=(n_resamples, n))
    means = np.array([sum(x[i] for i in row) / n for row in idx])
    below = sum(1 for m in means if mean - m > 1e-12) / n_resamples  # exact-arithmetic "<" (rounding ties)
    z0 = float(ndtri(below))
    jack = [(sum(x) - xi) / (n - 1) for xi in x]
    jbar = sum(jack) / n
    num = sum((jbar - j) ** 3 for j in jack)
    den = 6 * sum((jbar - j) ** 2 for j in jack) ** 1.5
    a = num / den
    z = float(ndtri(tail))
    level = float(ndtr(z0 + (z0 + z) / (1 - a * (z0 + z))))
    ordered = sorted(means)
    h = (n_resamples - 1) * level
    lo = math.floor(h)
    return ordered[lo] + (h - lo) * (ordered[min(lo + 1, n_resamples - 1)] - ordered[lo])


def resample_controls_reference(
    x: np.ndarray, y: np.ndarray, idx: np.ndarray, jack: np.ndarray | None = None
) -> np.ndarray:
    """The eight resample controls of one dataset from its resample indices ``(n_boot, n)``, written out:
    ``mean_b He_k(T_b) - E He_k(T)`` with ``T = sum_j ell_{idx_j} / sqrt(n mu_2)``, ``ell`` the centred
    ``mean(jack) - jack_i``, and ``E He_3 = mu_3 / (sqrt(n) mu_2^1.5)``, ``E He_4 = (mu_4 / mu_2^2 - 3) / n``;
    then the same for ``sin(w T)``, ``cos(w T)``, ``sin(2 w T)``, ``cos(2 w T)``, with ``E exp(i v T)`` the
    ``n``-th power of the mean of ``exp(i v ell_i / sqrt(n mu_2))`` (complex arithmetic), each less
    ``exp(-v^2 / 2)`` times its Hermite terms of degree 1-4 (``v He_1 - v^3 He_3 / 6`` for the sine,
    ``-v^2 He_2 / 2 + v^4 He_4 / 24`` for the cosine) of the centred Hermite controls.
    ``jack``: the statistic's jackknife values (default: Spearman's, by SciPy)."""
    n = len(x)
    ell = jackknife(x, y) if jack is None else np.asarray(jack, dtype=np.float64)
    ell = ell.mean() - ell
    ell -= ell.mean()
    mu2, mu3, mu4 = (np.mean(ell**k) for k in (2, 3, 4))
    t = ell[idx].sum(axis=1) / np.sqrt(n * mu2)
    he = np.stack([t, t**2 - 1, t**3 - 3 * t, t**4 - 6 * t**2 + 3], axis=-1)
    hermite = he.mean(axis=0) - [0.0, 0.0, mu3 / (np.sqrt(n) * mu2**1.5), (mu4 / mu2**2 - 3) / n]
    trig = []
    for k in (1, 2):
        v = k * RESAMPLE_OMEGA
        expect = np.mean(np.exp(1j * v * ell / np.sqrt(n * mu2))) ** n
        g = np.exp(-(v**2) / 2)  # less the Hermite expansion's terms of degree 1-4, on the centred controls
        trig += [np.sin(v * t).mean() - expect.imag - g * (v * hermite[0] - v**3 / 6 * hermite[2]),
                 np.cos(v * t).mean() - expect.real - g * (-(v**2) / 2 * hermite[1] + v**4 / 24 * hermite[3])]
    return np.concatenate([hermite, trig])


def crossfit_reference(
    x_folds: list[np.ndarray],
    y_folds: list[np.ndarray],
    x_cheap: np.ndarray,
    e_folds: list[np.ndarray] | None = None,
    u_cheap: np.ndarray | None = None,
    ridge: float | tuple[float, ...] = 0.0,
) -> tuple[float, float]:
    """Cross-fitted two-phase regression estimate and its MCSE, written out with np.linalg.lstsq.

    Each fold's mean corrected by the coefficients fitted on all the other folds; weights m_k / m;
    variance sum_k w_k^2 var(y_k - x_k beta_(-k)) / m_k + beta_bar' cov(x_cheap) beta_bar / N.
    ``e_folds``: exact controls of the folds (known mean 0), regressed on with the others;
    ``u_cheap``: exact controls of the cheap phase (known mean 0): the cheap means of x are
    ``mean(x) - Gamma mean(u)`` and cov(x_cheap) the covariance of the residuals of x on u.
    ``ridge``: the coefficients minimize ``|y_c - Z b|^2 + sum_j ridge_j b_j^2`` with ``Z`` the centred
    regressors scaled to unit sum of squares (solved as least squares on rows augmented with
    ``diag(sqrt(ridge))``; one penalty for all, or one per regressor), ``beta = b / scale``; regressors
    without variance get 0 (and their penalties are dropped with them).
    """
    m = sum(len(y) for y in y_folds)
    if e_folds is not None:
        x_folds = [np.column_stack([x, e]) for x, e in zip(x_folds, e_folds, strict=True)]
    k = x_cheap.shape[1]

    def slope(x, y):
        xc, yc = x - x.mean(axis=0), y - y.mean()
        scale = np.sqrt((xc**2).sum(axis=0))
        keep = scale > 1e-12 * max(1.0, scale.max())
        z = xc[:, keep] / scale[keep]
        p = z.shape[1]
        penalty = np.broadcast_to(np.asarray(ridge, dtype=float), keep.shape)[keep]
        design = np.vstack([z, np.diag(np.sqrt(penalty))])
        b = np.linalg.lstsq(design, np.concatenate([yc, np.zeros(p)]), rcond=None)[0]
        beta = np.zeros(x.shape[1])
        beta[keep] = b / scale[keep]
        return beta

    betas = [
        slope(
            np.vstack([x for j, x in enumerate(x_folds) if j != i]),
            np.concatenate([y for j, y in enumerate(y_folds) if j != i]),
        )
        for i in range(len(x_folds))
    ]
    mean_cheap, resid = x_cheap.mean(axis=0), x_cheap
    if u_cheap is not None:
        design = np.column_stack([np.ones(len(u_cheap)), u_cheap])
        coef = np.linalg.lstsq(design, x_cheap, rcond=None)[0]
        mean_cheap = mean_cheap - u_cheap.mean(axis=0) @ np.atleast_2d(coef[1:])
        resid = x_cheap - design @ coef
    target = np.concatenate([mean_cheap, np.zeros(x_folds[0].shape[1] - k)])
    estimate, variance, beta_bar = 0.0, 0.0, 0.0
    for x, y, beta in zip(x_folds, y_folds, betas, strict=True):
        w = len(y) / m
        estimate += w * (y.mean() - beta @ (x.mean(axis=0) - target))
        variance += w * w * np.var(y - x @ beta, ddof=1) / len(y)
        beta_bar = beta_bar + w * beta
    beta_x = beta_bar[:k]
    variance += beta_x @ np.atleast_2d(np.cov(resid, rowvar=False)) @ beta_x / len(x_cheap)
    return float(estimate), float(np.sqrt(variance))


# --------------------------------------------------------------------------
# Resample index stream, written out in plain Python integers
# --------------------------------------------------------------------------
def philox4x32_10(counter: tuple[int, int, int, int], key: tuple[int, int]) -> tuple[int, int, int, int]:
    """Philox4x32-10 (Salmon et al. 2011, SC'11, Figure 2 and Table 2), in Python integers."""
    m0, m1, w0, w1, mask = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85, 0xFFFFFFFF
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for round_ in range(10):
        if round_:
            k0, k1 = (k0 + w0) & mask, (k1 + w1) & mask
        hi0, lo0 = divmod(m0 * c0, 1 << 32)
        hi1, lo1 = divmod(m1 * c2, 1 << 32)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def resample_draws(key: tuple[int, int], b: int, n: int, stream: int = 0) -> list[int]:
    """Resample ``b`` of a replicate with Philox key ``key``: words from counters ``(j, b, stream, 0)``,
    j = 0, 1, ...; for n <= 2^16 each 32-bit word is two 16-bit words (low half first), otherwise
    whole words; Lemire's (2019) multiply-shift with rejection of ``x n mod 2^L < 2^L mod n``."""
    bits = 16 if n <= 1 << 16 else 32
    threshold = (1 << bits) % n
    out: list[int] = []
    j = 0
    while len(out) < n:
        words = philox4x32_10((j, b, stream, 0), key)
        j += 1
        if bits == 16:
            words = tuple(w for word in words for w in (word & 0xFFFF, word >> 16))
        for w in words:
            product = w * n
            if len(out) < n and product % (1 << bits) >= threshold:
                out.append(product >> bits)
    return out


# --------------------------------------------------------------------------
# Kendall's tau-b, written out
# --------------------------------------------------------------------------
def kendall_s_k(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``s_k = sum_j sign(x_k - x_j) sign(y_k - y_j)``, O(n^2)."""
    return (np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])).sum(axis=1)


def kendall_ase_table(x: np.ndarray, y: np.ndarray) -> float:
    """The ASE of tau-b from the contingency-table form (Agresti 2010, *Analysis of Ordinal Categorical
    Data*, §7.1; Brown & Benedetti 1977): cells ``n_ij`` of the cross-table of x's and y's distinct values,
    ``A_ij``/``D_ij`` the units concordant/discordant with a unit of cell ij, ``v_ij = n_i. w_c + n_.j w_r``:
    ``ASE^2 = (sum n_ij (2 w (A_ij - D_ij) + tau v_ij)^2 - n^3 tau^2 (w_r + w_c)^2) / w^4``."""
    _, xi = np.unique(x, return_inverse=True)
    _, yi = np.unique(y, return_inverse=True)
    table = np.zeros((xi.max() + 1, yi.max() + 1))
    np.add.at(table, (xi, yi), 1)
    n = table.sum()
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    wr, wc = n * n - np.sum(rows**2), n * n - np.sum(cols**2)
    w = math.sqrt(wr * wc)
    n_i, n_j = table.shape
    a = np.zeros_like(table)
    d = np.zeros_like(table)
    for i in range(n_i):
        for j in range(n_j):
            a[i, j] = table[:i, :j].sum() + table[i + 1 :, j + 1 :].sum()
            d[i, j] = table[:i, j + 1 :].sum() + table[i + 1 :, :j].sum()
    tau = float(np.sum(table * (a - d)) / w)
    v = rows[:, None] * wc + cols[None, :] * wr
    return math.sqrt((np.sum(table * (2 * w * (a - d) + tau * v) ** 2) - n**3 * tau**2 * (wr + wc) ** 2) / w**4)
