"""k-means and linear regression on secret columns: the two library models the engine runs.

Both work on fixed-point encodings centred on the public midpoint of each
column's range (as the analytics library does), which keeps every
intermediate small enough to be exact where it can be.
"""

from __future__ import annotations

import math

import numpy as np

from enigma.mpc import functions
from enigma.mpc import select as sel
from enigma.mpc.comparison import eqz
from enigma.mpc.engine import Engine
from enigma.mpc.fixed import encode, mul_fixed_many
from enigma.mpc.secret import Secret

from .analytics import moments
from .analytics.precision import PrecisionError, Range, bits_of, divide_by_count

SOLVE_FRAC = 20
"""Fractional bits of the normal equations' solve: slopes as small as 1e-3 keep 3 digits."""
SATURATION = 2.0 ** (62 - SOLVE_FRAC)
"""`functions.divide` saturates quotients here; a coefficient beyond it is not representable."""


def _table(cols: list[Secret]) -> Secret:
    """Columns (n,) as one (n, d) secret."""
    e = cols[0].engine
    value = np.ascontiguousarray(np.stack([c.share.value for c in cols], axis=1))
    mac = np.ascontiguousarray(np.stack([c.share.mac for c in cols], axis=1))
    return Secret(e, type(cols[0].share)(value, mac))


def kmeans(e: Engine, cols: list[Secret], ranges: list[Range], start: np.ndarray, iters: int,
           f: int) -> tuple[Secret, float]:
    """Lloyd's k-means from public starting centroids; returns centroids (k, d) and their error.

    Per iteration, with x' = x - m (m the midpoints of the ranges, codes with f bits):
    1. D_ij = sum_t (x'_it - c'_jt)^2, exact at 2f bits (one fused dot, one round).
    2. H = one-hot of argmin_j D_ij (a tournament over k, ties to the first, as numpy).
    3. counts_j = sum_i H_ij (local), S'_j = sum_i H_ij x'_i (one fused dot).
    4. c'_j = S'_j / counts_j (`divide_by_count`); an empty cluster keeps its centroid
       (one equality test, one selection).
    Assignments are exact for the centroids of the previous iteration as computed; the
    error returned is that of the last division (the centroids' distance from the exact
    means of the final assignment).
    """
    n, d, k = cols[0].shape[0], len(cols), start.shape[0]
    mids, widths = zip(*(r.center(f) for r in ranges), strict=True)
    x = _table(cols) - np.ascontiguousarray(np.broadcast_to(e.field.from_ints(list(mids)),
                                                             (n, d, 2)))
    w = max(widths)
    if d * (2 * w) ** 2 >= 1 << 84:
        raise PrecisionError("kmeans: squared distances of the encodings could reach "
                             f"2^{math.log2(d * 4 * w * w):.1f}; narrow the column ranges")
    centred = np.rint(start * 2.0**f) - np.array(mids, dtype=np.float64)
    c: Secret | None = None
    err = 0.0
    wide_x = x.reshape(n, 1, d).broadcast_to(n, k, d)
    for _ in range(iters):
        if c is None:
            cen = encode(e.field, centred / 2.0**f, f)
            diff = wide_x - np.ascontiguousarray(np.broadcast_to(cen, (n, k, d, 2)))
        else:
            diff = wide_x - c.reshape(1, k, d).broadcast_to(n, k, d)
        dist = e.dot(diff, diff, axis=2)  # (n, k), exact
        hot = sel.argmin(e, dist, axis=1, one_hot=True, bits=bits_of(d * 4 * w * w) + 1)
        counts = hot.sum(axis=0)  # (k,)
        sums = e.dot(hot.reshape(n, k, 1).broadcast_to(n, k, d), wide_x, axis=0)  # (k, d)
        q, unit_err = divide_by_count(e, sums, counts.reshape(k, 1).broadcast_to(k, d), w, n,
                                      "kmeans")
        empty = eqz(e, counts, bits_of(n) + 1).reshape(k, 1).broadcast_to(k, d)
        old = c if c is not None else e.constant(encode(e.field, centred / 2.0**f, f)
                                                 .reshape(k, d, 2))
        c = q + e.mul(empty, old - q)
        err = unit_err * 2.0**-f
    assert c is not None
    out = c + np.ascontiguousarray(np.broadcast_to(e.field.from_ints(list(mids)), (k, d, 2)))
    return out, err


def linreg(e: Engine, y: Secret, cols: list[Secret], ranges: list[Range], y_range: Range,
           f: int) -> Secret:
    """Least-squares coefficients [intercept, slopes...] of y on the columns, with f bits.

    1. The (d + 1) x (d + 1) covariance matrix of (x_1 .. x_d, y) (`moments.cov`,
       exact scatter, one truncation) and the means (`moments.mean`).
    2. Solve cov_xx b = cov_xy by Gaussian elimination without pivoting (a
       covariance matrix is positive semi-definite): each step one secret
       division per row below (`functions.divide`), then one product round.
    3. Back substitution, then intercept = mean_y - sum_j b_j mean_j.
    No worst-case error bound exists without a public bound on the conditioning of
    cov_xx (it is private); coefficients beyond 2^(62 - f) saturate.
    """
    d = len(cols)
    table = _table([*cols, y])
    rs = [*ranges, y_range]
    C = moments.cov(e, table, rs, ddof=0, f=f).value  # (d + 1, d + 1)
    means = moments.mean(e, table, rs, f).value  # (d + 1,)
    bits = max(bits_of(int(max(r.width for r in rs) ** 2 / 4 * 2**f) + 1), 2) + 1
    A = [[C[i, j].reshape(1) for j in range(d + 1)] for i in range(d)]
    for i in range(d):
        rows = list(range(i + 1, d))
        if not rows:
            break
        num = _join([A[r][i] for r in rows])
        den = _join([A[i][i]] * len(rows))
        factors = functions.divide(e, num, den, f, bits=min(bits + 16, 63))
        pairs = [(factors[t].reshape(1), A[i][j]) for t, _ in enumerate(rows)
                 for j in range(i, d + 1)]
        prods = iter(mul_fixed_many(e, pairs, f))
        for r in rows:
            for j in range(i, d + 1):
                A[r][j] = A[r][j] - next(prods)
    beta: list[Secret | None] = [None] * d
    for i in reversed(range(d)):
        rhs = A[i][d]
        later = [(A[i][j], beta[j]) for j in range(i + 1, d)]
        for p in mul_fixed_many(e, later, f) if later else []:
            rhs = rhs - p
        beta[i] = functions.divide(e, rhs, A[i][i], f, bits=min(bits + 16, 63))
    terms = mul_fixed_many(e, [(b, means[j].reshape(1)) for j, b in enumerate(beta)], f)
    intercept = means[d].reshape(1)
    for t in terms:
        intercept = intercept - t
    return _join([intercept, *beta])  # type: ignore[list-item]


def _join(parts: list[Secret]) -> Secret:
    return sel.join([p.reshape(p.size) for p in parts], axis=0)
