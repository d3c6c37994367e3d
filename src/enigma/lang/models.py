"""k-means on secret columns, from a public start that both backends share.

It works on fixed-point encodings centred on the public midpoint of each
column's range (as the analytics library does), which keeps every
intermediate small enough to be exact where it can be.
"""

from __future__ import annotations

import math

import numpy as np

from enigma.mpc import select as sel
from enigma.mpc.comparison import eqz
from enigma.mpc.engine import Engine
from enigma.mpc.fixed import encode
from enigma.mpc.secret import Secret

from .analytics.precision import PrecisionError, Range, bits_of, divide_by_count


def table(cols: list[Secret]) -> Secret:
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
    x = table(cols) - np.ascontiguousarray(np.broadcast_to(e.field.from_ints(list(mids)),
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
