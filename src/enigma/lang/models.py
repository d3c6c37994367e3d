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

    Steps 1-3 (`KMeansRows.sums`) and step 4 (`kmeans_update`) are separate so that network
    reduction runs 1-3 on every chunk quorum and 4 on the reducing quorum (the counts and
    sums are exact integers and add over chunks): the same arithmetic either way.
    """
    rows = KMeansRows(e, cols, ranges, start, f)
    c: Secret | None = None
    err = 0.0
    for _ in range(iters):
        counts, sums = rows.sums(c)
        c, err = kmeans_update(e, counts, sums, c, rows.start, rows.width, rows.n, f)
    assert c is not None
    return rows.uncentre(c), err


class KMeansRows:
    """The rows of a k-means: centred codes x' (n, d), and the per-cluster statistics of
    one assignment step against given centroids (steps 1-3 of `kmeans`)."""

    def __init__(self, e: Engine, cols: list[Secret], ranges: list[Range], start: np.ndarray,
                 f: int) -> None:
        self.e, self.f = e, f
        self.n, self.d, self.k = cols[0].shape[0], len(cols), start.shape[0]
        self.mids, self.width, self.start = kmeans_frame(ranges, start, f)
        n, d, k = self.n, self.d, self.k
        x = table(cols) - np.ascontiguousarray(np.broadcast_to(e.field.from_ints(self.mids),
                                                               (n, d, 2)))
        self.wide_x = x.reshape(n, 1, d).broadcast_to(n, k, d)

    def sums(self, c: Secret | None) -> tuple[Secret, Secret]:
        """counts (k,) and S' (k, d) of the rows nearest each centroid c' (None: the start)."""
        e, n, k, d, f = self.e, self.n, self.k, self.d, self.f
        if c is None:
            cen = encode(e.field, self.start / 2.0**f, f)
            diff = self.wide_x - np.ascontiguousarray(np.broadcast_to(cen, (n, k, d, 2)))
        else:
            diff = self.wide_x - c.reshape(1, k, d).broadcast_to(n, k, d)
        dist = e.dot(diff, diff, axis=2)  # (n, k), exact
        hot = sel.argmin(e, dist, axis=1, one_hot=True,
                         bits=bits_of(d * 4 * self.width * self.width) + 1)
        counts = hot.sum(axis=0)  # (k,)
        sums = e.dot(hot.reshape(n, k, 1).broadcast_to(n, k, d), self.wide_x, axis=0)  # (k, d)
        return counts, sums

    def uncentre(self, c: Secret) -> Secret:
        k, d = self.k, self.d
        return c + np.ascontiguousarray(np.broadcast_to(self.e.field.from_ints(self.mids),
                                                        (k, d, 2)))


def kmeans_frame(ranges: list[Range], start: np.ndarray, f: int
                 ) -> tuple[list[int], int, np.ndarray]:
    """The public frame of a k-means: the codes' midpoints m, the largest half-width w and
    the first centroids as centred codes; refuses ranges whose squared distances would not
    stay exact below the masking bits. Public, so every quorum of a split run derives it."""
    mids = [r.center(f)[0] for r in ranges]
    w = max(r.center(f)[1] for r in ranges)
    d = len(ranges)
    if d * (2 * w) ** 2 >= 1 << 84:
        raise PrecisionError("kmeans: squared distances of the encodings could reach "
                             f"2^{math.log2(d * 4 * w * w):.1f}; narrow the column ranges")
    return mids, int(w), np.rint(start * 2.0**f) - np.array(mids, dtype=np.float64)


def kmeans_update(e: Engine, counts: Secret, sums: Secret, old: Secret | None,
                  start: np.ndarray, width: int, n: int, f: int) -> tuple[Secret, float]:
    """Step 4 of `kmeans`: new centred centroids S'_j / counts_j, an empty cluster keeping
    `old` (None: the public `start`); counts and sums may be totals over chunks of n rows."""
    k, d = start.shape
    q, unit_err = divide_by_count(e, sums, counts.reshape(k, 1).broadcast_to(k, d), width, n,
                                  "kmeans")
    empty = eqz(e, counts, bits_of(n) + 1).reshape(k, 1).broadcast_to(k, d)
    before = old if old is not None else e.constant(encode(e.field, start / 2.0**f, f)
                                                    .reshape(k, d, 2))
    return q + e.mul(empty, before - q), unit_err * 2.0**-f
