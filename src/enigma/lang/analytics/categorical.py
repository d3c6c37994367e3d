"""Histograms, group-by aggregates and the chi-squared test of independence.

A category column holds secret integer codes 0 .. levels - 1 (the schema
lists the levels; the owner's encoder maps labels to codes). Everything here
starts from its one-hot matrix H (n, levels), made in one opening by
`comparison.one_hot`: counts are column sums of H (local), per-group sums are
one fused dot product of H with the values, and a contingency table is one
fused dot product of two one-hot matrices. A code outside 0 .. levels - 1
(which the owner's encoder never produces) would be counted nowhere.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from enigma.mpc import functions
from enigma.mpc.comparison import at_least_many, eqz, one_hot
from enigma.mpc.engine import Engine
from enigma.mpc.fixed import FRAC
from enigma.mpc.secret import Secret
from enigma.mpc.select import join

from .precision import (
    Bounded,
    Range,
    bits_of,
    centered,
    columns,
    divide_by_count,
    require,
    scale_public,
)


def _levels(func: str, levels: int) -> None:
    if levels < 1:
        raise ValueError(f"{func}: a category needs at least one level, got {levels}")


def histogram(e: Engine, codes: Secret, levels: int, f: int = FRAC) -> Bounded:
    """How many rows hold each level of a category column: counts (levels,), exact.

    1. H = one_hot(codes, levels) (one opening; one round when levels <= 16).
    2. counts = sum over rows of H (local).
    """
    _levels("histogram", levels)
    n = codes.shape[0]
    hot = one_hot(e, codes.reshape(n), levels)
    return Bounded(hot.sum(axis=0) * (1 << f), 0.0, Range(0, n), f)


def histogram_bins(e: Engine, x: Secret, col: Range, edges: Sequence[float],
                   f: int = FRAC, weights: Secret | None = None) -> Bounded:
    """numpy's `histogram(x, bins=edges)` of a numeric column: counts per bin, exact
    (integers, f = 0). `f` is the scale of x's codes: compare at the column's own scale
    (an int column's f = 0), and the comparisons take the range's bits, not f more.

    Bins are [e_0, e_1), ..., [e_(k-1), e_k] (the last one closed); values
    outside [e_0, e_k] are not counted.
    1. t_j = [x >= e_j] for the k left edges and u = [x > e_k]: one masked opening
       of each x serves all k + 1 public thresholds (`at_least_many`; bits from the
       range and the edges).
    2. count_j = sum over rows of t_j - t_(j+1) (t_k = u) (local); with 0/1 `weights`
       (n,) (a filter's selection) the sums are one fused dot of the weights with t.
    """
    edges = [float(v) for v in edges]
    if len(edges) < 2 or any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValueError(f"histogram_bins: edges must be at least two increasing values, "
                         f"got {edges}")
    n = x.shape[0]
    # x >= e iff code >= ceil(e 2^f); x > e_k iff code >= floor(e_k 2^f) + 1
    thresholds = [math.ceil(v * 2**f) for v in edges[:-1]] + [math.floor(edges[-1] * 2**f) + 1]
    lo, hi = col.codes(f)
    bits = bits_of(max(abs(hi - min(thresholds)), abs(max(thresholds) - lo)) + 1)
    k = len(thresholds)
    above = at_least_many(e, x.reshape(n), thresholds, bits)  # (n, k): [x >= threshold]
    totals = above.sum(axis=0) if weights is None else \
        e.dot(weights.reshape(n, 1).broadcast_to(n, k), above, axis=0)
    counts = totals[:k - 1] - totals[1:]
    return Bounded(counts, 0.0, Range(0, n), 0)


@dataclass
class Groups:
    """Per-level aggregates: count (levels,); sum and mean (levels,) or (levels, d)."""

    count: Bounded
    sum: Bounded
    mean: Bounded


def group_by(e: Engine, codes: Secret, levels: int, x: Secret,
             ranges: Range | Sequence[Range], f: int = FRAC) -> Groups:
    """Count, sum and mean of value columns per level of a category column.

    1. H = one_hot(codes, levels) (one opening).
    2. count_l = sum_r H_rl (local); S'_l = sum_r H_rl x'_r for the centred
       x' = x - m: one fused dot over (n, levels, d) (one round).
    3. sum_l = S'_l + count_l m (local, exact).
    4. mean_l = S'_l / count_l + m by `precision.divide_by_count` (about 40 rounds).
    Errors: counts and sums exact; means below 1 + 2 n w 2^-F + w 2^-(g-3) ulp
    (w = max |x'|; F chosen by `divide_by_count`), about 1 ulp for n w < 2^40.
    An empty group has count 0, sum 0 and mean m (the middle of the range).
    """
    _levels("group_by", levels)
    x, rs, single = columns(x, ranges)
    n, d = x.shape
    hot = one_hot(e, codes.reshape(n), levels)
    xc, mids, widths = centered(e, x, rs, f)
    for r in rs:
        require("group_by", "the sum of a column", n * max(abs(c) for c in r.codes(f)))
    counts = hot.sum(axis=0)
    wide_hot = hot.reshape(n, levels, 1).broadcast_to(n, levels, d)
    wide_x = _repeat_middle(xc, levels)
    sums_c = e.dot(wide_hot, wide_x, axis=0)  # (levels, d)
    mid_pub = np.ascontiguousarray(np.broadcast_to(e.field.from_ints(mids), (levels, d, 2)))
    count_cols = _repeat_last(counts, d)
    sums = sums_c + _times_public(count_cols, mid_pub)
    w = max(widths)
    means_c, err = divide_by_count(e, sums_c, count_cols, w, n, "group_by")
    means = means_c + mid_pub
    lo, hi = min(r.lo for r in rs), max(r.hi for r in rs)
    mag = n * max(r.magnitude for r in rs)

    def shaped(v: Secret) -> Secret:
        return v.reshape(levels) if single else v

    return Groups(Bounded(counts * (1 << f), 0.0, Range(0, n), f),
                  Bounded(shaped(sums), 0.0, Range(-mag, mag), f),
                  Bounded(shaped(means), err * 2.0**-f, Range(min(lo, 0), max(hi, 0)), f))


def _repeat_middle(x: Secret, levels: int) -> Secret:
    """(n, d) -> (n, levels, d): every row repeated for every level."""
    n, d = x.shape
    return join([x.reshape(n, 1, d)] * levels, axis=1)


def _repeat_last(x: Secret, d: int) -> Secret:
    """(L,) -> (L, d)."""
    L = x.shape[0]
    return join([x.reshape(L, 1)] * d, axis=1)


def _times_public(x: Secret, c: np.ndarray) -> Secret:
    """Elementwise product with a public field array of the same shape (local)."""
    return x * np.ascontiguousarray(c)


CHI2_RECIPROCAL = 32
"""Fractional bits of the reciprocals of the margins in `chi2`: their products (64 bits, summed
over the table) stay below 2^85 for tables of up to 2^20 cells."""


@dataclass
class Chi2:
    """The chi-squared statistic (secret) and its degrees of freedom."""

    statistic: Bounded
    dof: int
    """(La - 1)(Lb - 1): the degrees of freedom when every level occurs."""
    df: Secret
    """(La' - 1)(Lb' - 1) for the La', Lb' levels that occur (exact, secret): scipy's, since
    empty levels drop out of the statistic."""


def chi2(e: Engine, a: Secret, a_levels: int, b: Secret, b_levels: int,
         f: int = FRAC) -> Chi2:
    """Pearson's chi-squared statistic of the contingency table of two category columns.

    scipy's `chi2_contingency(table, correction=False)`: chi2 = sum (O - E)^2 / E
    with E_ij = R_i C_j / n, rewritten as n (sum_ij O_ij^2 / (R_i C_j) - 1).
    1. A = one_hot(a), B = one_hot(b) (two openings).
    2. O = sum over rows of A_ri B_rj (one fused dot over (n, La, Lb)); margins
       R, C are column sums of A and B (local).
    3. 1/R_i and 1/C_j with F = 32 bits, all margins in one `reciprocal`.
    4. t = O_ij / R_i and u = O_ij / C_j (one round, exact products).
    5. sum_ij t_ij u_ij (one fused dot), times n and scaled to f bits
       (`scale_public`, one round); minus n.
    The p-value is a public function of the statistic and dof (the owner
    computes it from the revealed statistic). Empty levels (R_i = 0 or
    C_j = 0) drop out, as if the table had no such row or column.
    Error: n (2 n 2^(1-F) + 2 max(La, Lb) 2^-(g-3) + La Lb eps^2) + units of the
    scaling, g = min(40, 85 - F); about 10^-4 for n = 10^3.
    """
    _levels("chi2", a_levels)
    _levels("chi2", b_levels)
    n = a.shape[0]
    if b.shape[0] != n:
        raise ValueError(f"chi2: the two columns have {n} and {b.shape[0]} rows")
    F = CHI2_RECIPROCAL
    La, Lb = a_levels, b_levels
    ha = one_hot(e, a.reshape(n), La)
    hb = one_hot(e, b.reshape(n), Lb)
    table = e.dot(join([ha.reshape(n, La, 1)] * Lb, axis=2),
                  join([hb.reshape(n, 1, Lb)] * La, axis=1), axis=0)  # (La, Lb)
    margins = join([ha.sum(axis=0), hb.sum(axis=0)], axis=0)
    recip = functions.reciprocal(e, margins, 0, bits=bits_of(n), out_frac=F)
    empty = eqz(e, margins, bits_of(n))
    present = [(-empty[:La].sum()) + (La - 1), (-empty[La:].sum()) + (Lb - 1)]
    rr = join([recip[:La].reshape(La, 1)] * Lb, axis=1)
    rc = join([recip[La:].reshape(1, Lb)] * La, axis=0)
    t, u, df = e.mul_many([(table, rr), (table, rc), (present[0], present[1])])
    cells = La * Lb
    total = e.dot(t.reshape(cells), u.reshape(cells))  # 2F fractional bits
    bound = min(La, Lb) << (2 * F)
    bound = int(bound * 1.01) + 1
    scaled, units = scale_public(e, total, bound, n, 1, 2 * F - f, "chi2", "sum O^2 / (R C)")
    stat = scaled - n * (1 << f)
    g = min(functions.G, 85 - F)
    eps = n * 2.0 ** (1 - F) + 2.0 ** -(g - 3)
    err = n * (2 * n * 2.0 ** (1 - F) + 2 * max(La, Lb) * 2.0 ** -(g - 3) + cells * eps**2)
    err += units * 2.0**-f
    return Chi2(Bounded(stat, err, Range(0, n * (min(La, Lb) - 1)), f), (La - 1) * (Lb - 1),
                df)
