"""k-means clustering and Welch's two-sample t-test (linear regression: `regression`).

Both reduce the rows to a few exact sums first (fused dot products, one
round whatever n) and then spend their rounds on a handful of secret
divisions. Where a result divides by a data-dependent spread or pivot, that
divisor is floored at a public value (one comparison): no worst-case error
bound can hold for a divisor near zero, and with the floor the bound holds
for every input in the ranges; when the data are above the floor, as real
data are, the floor changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from enigma.mpc import functions
from enigma.mpc.comparison import eqz
from enigma.mpc.engine import Engine
from enigma.mpc.fixed import FRAC, encode, trunc_many
from enigma.mpc.secret import Secret
from enigma.mpc.select import argmin, clip, join, lt

from .precision import (
    DEFAULT_SPREAD,
    MASK_BITS,
    VALUE_BITS,
    Bounded,
    Range,
    as_range,
    bits_of,
    centered,
    columns,
    divide_by_count,
    require,
    scale_public,
)
from .reciprocals import (
    G,
    floor_at,
    inverse,
    inverse_error,
    sqrt_g,
    sqrt_g_error,
)

# ---------------------------------------------------------------------- k-means


@dataclass
class Clusters:
    """Centroids (k, d) and cluster sizes (k,) after the last Lloyd iteration."""

    centroids: Bounded
    sizes: Bounded


TIES = ("first", "last")
"""Tie rules of k-means: a row equidistant from several centroids joins the one of the lowest
(first) or highest (last) index."""


def kmeans(e: Engine, x: Secret, ranges: Sequence[Range], init: np.ndarray | Secret,
           iterations: int, f: int = FRAC, ties: str = "first") -> Clusters:
    """Lloyd's algorithm with public k, a public number of iterations and given centroids.

    `init` is (k, d): public reals, or a Secret of fixed-point encodings (clipped into the
    ranges, one comparison). Per iteration, with
    x' = x - m (m the integer midpoints of the ranges' codes, w their largest half-width):
    1. D_ij = sum_t (x'_it - c'_jt)^2 for every row i and centroid j: one fused dot over
       (n, k, d) (one round), exact integers at 2f bits.
    2. H = one-hot of argmin_j D_ij (a tournament over k: ceil(log2 k) levels and as many
       rounds to expand the one-hot); `ties` "first": a tie goes to the lower index, as
       numpy's argmin; "last": to the higher (the tournament on the reversed centroids).
    3. size_j = sum_i H_ij (local); S'_j = sum_i H_ij x'_i (one fused dot).
    4. c'_j = round(S'_j / size_j), half up, exactly (`nearest_quotient`); an empty cluster
       keeps its centroid (one equality test, one selection).
    |x' - c'| <= w + r per column, r the largest |c'| of a public start (at least w: later
    centroids are means of rows, or kept); the comparisons of step 2 take their bits from
    d (w + r)^2. Every step is exact on the codes, so the result is a function of the input
    codes alone: runs agree bit for bit, and `plain.lloyd` computes the same centroids.
    Error: the centroids of the last iteration are the means of the clusters that iteration
    assigned, rounded to the nearest code (at most 1/2 ulp off).

    Steps 1-3 (`KMeansRows.sums`) and step 4 (`kmeans_update`) are apart so that network
    reduction runs 1-3 on every chunk quorum and 4 on the reducing quorum (sizes and sums
    are exact integers and add over chunks): the same arithmetic either way.
    """
    x, rs, _ = columns(x, ranges)
    n, d = x.shape
    if iterations < 1:
        raise ValueError(f"kmeans: needs at least one iteration, got {iterations}")
    if not isinstance(init, Secret):
        init = np.asarray(init, dtype=np.float64)
    if len(init.shape) != 2 or init.shape[1] != d:
        raise ValueError(f"kmeans: initial centroids must be (k, {d}), got {init.shape}")
    k = init.shape[0]
    rows = KMeansRows(e, x, rs, k, f, None if isinstance(init, Secret) else init, ties)
    c: Secret | np.ndarray
    if isinstance(init, Secret):
        mu = init - np.ascontiguousarray(np.broadcast_to(e.field.from_ints(rows.mids),
                                                         (k, d, 2)))
        # clip into the ranges (one comparison per column): the distance bound relies on
        # it; any 64-bit encoding compares correctly on 66 bits
        widths = [r.center(f)[1] for r in rs]
        c = join([clip(e, mu[:, t], -widths[t], widths[t], VALUE_BITS + 3).reshape(k, 1)
                  for t in range(d)], axis=1)
    else:
        c = centre(init, rows.mids, f)
    err = 0.0
    for _ in range(iterations):  # public iteration count
        sizes, sums = rows.sums(c)
        c, err = kmeans_update(e, sizes, sums, c, rows.width, n, f)
    lo, hi = min(r.lo for r in rs), max(r.hi for r in rs)
    return Clusters(Bounded(rows.uncentre(c), err, Range(lo, hi), f),
                    Bounded(sizes * (1 << f), 0.0, Range(0, n), f))


class KMeansRows:
    """The rows of a k-means: centred codes x' (n, d), and the per-cluster statistics of
    one assignment step against given centroids (steps 1-3 of `kmeans`)."""

    def __init__(self, e: Engine, x: Secret, ranges: Sequence[Range], k: int, f: int,
                 start: np.ndarray | None = None, ties: str = "first") -> None:
        """`start`: public first centroids, which may lie outside the ranges (the distance
        bound then reaches them); None: centroids within the ranges. `ties`: one of TIES."""
        if ties not in TIES:
            raise ValueError(f"kmeans: ties must be one of {TIES}, got {ties!r}")
        self.e, self.f, self.k, self.ties = e, f, k, ties
        self.n, self.d = x.shape
        self.mids, self.width = kmeans_frame(ranges, f)
        reach = self.width
        if start is not None:
            reach = max(reach, int(np.max(np.abs(centre(start, self.mids, f)))))
        bound = self.d * (self.width + reach) ** 2
        require("kmeans", "a squared distance of the encodings", bound, MASK_BITS - 1)
        self.bits = bits_of(bound) + 1
        n, d = self.n, self.d
        xc = x - np.ascontiguousarray(np.broadcast_to(e.field.from_ints(self.mids), (n, d, 2)))
        self.wide_x = xc.reshape(n, 1, d).broadcast_to(n, k, d)

    def sums(self, c: Secret | np.ndarray) -> tuple[Secret, Secret]:
        """sizes (k,) and S' (k, d) of the rows nearest each centred centroid c' (public
        centred codes or a Secret)."""
        e, n, k, d, f = self.e, self.n, self.k, self.d, self.f
        if isinstance(c, np.ndarray):
            cen = encode(e.field, c / 2.0**f, f)
            diff = self.wide_x - np.ascontiguousarray(np.broadcast_to(cen, (n, k, d, 2)))
        else:
            diff = self.wide_x - c.reshape(1, k, d).broadcast_to(n, k, d)
        dist = e.dot(diff, diff, axis=2)  # (n, k), exact
        if self.ties == "last":  # the first of the reversed centroids is the last one
            hot = argmin(e, dist[:, ::-1], axis=1, one_hot=True, bits=self.bits)[:, ::-1]
        else:
            hot = argmin(e, dist, axis=1, one_hot=True, bits=self.bits)
        sizes = hot.sum(axis=0)  # (k,)
        sums = e.dot(hot.reshape(n, k, 1).broadcast_to(n, k, d), self.wide_x, axis=0)  # (k, d)
        return sizes, sums

    def uncentre(self, c: Secret) -> Secret:
        """Centroids from centred ones: c' + m."""
        return c + np.ascontiguousarray(np.broadcast_to(self.e.field.from_ints(self.mids),
                                                        (self.k, self.d, 2)))


def kmeans_frame(ranges: Sequence[Range], f: int) -> tuple[list[int], int]:
    """The public frame of a k-means: the codes' midpoints m and the largest half-width w;
    refuses ranges whose squared distances would not stay exact below the masking bits.
    Public, so every quorum of a split run derives it."""
    mids = [r.center(f)[0] for r in ranges]
    w = max(r.center(f)[1] for r in ranges)
    require("kmeans", "a squared distance of the encodings", len(ranges) * (2 * w) ** 2,
            MASK_BITS - 1)
    return mids, int(w)


def centre(start: np.ndarray, mids: list[int], f: int) -> np.ndarray:
    """Public centroids (k, d) as centred codes, round(c 2^f) - m."""
    return np.rint(start * 2.0**f) - np.array(mids, dtype=np.float64)


def kmeans_update(e: Engine, sizes: Secret, sums: Secret, old: Secret | np.ndarray,
                  width: int, n: int, f: int) -> tuple[Secret, float]:
    """Step 4 of `kmeans`: new centred centroids round(S'_j / size_j), an empty cluster
    keeping `old` (public centred codes or a Secret); sizes and sums may be totals over
    chunks of n rows. Returns the centroids and their error bound in real units (1/2 ulp:
    the rounding to the nearest code, which is exact)."""
    k, d = sums.shape
    counts = sizes.reshape(k, 1).broadcast_to(k, d)
    q, unit_err = divide_by_count(e, sums, counts, width, n, "kmeans")
    q = nearest_quotient(e, sums, counts, q, unit_err, n)
    empty = eqz(e, sizes, bits_of(n) + 1).reshape(k, 1).broadcast_to(k, d)
    before = e.constant(encode(e.field, old / 2.0**f, f).reshape(k, d, 2)) \
        if isinstance(old, np.ndarray) else old
    return q + e.mul(empty, before - q), 0.5 * 2.0**-f


def nearest_quotient(e: Engine, sums: Secret, counts: Secret, q: Secret, err: float,
                     n: int) -> Secret:
    """round(sums / counts), half up, exactly, from a q with |sums / counts - q| <= err.

    The approximate quotient carries the random rounding of its truncations; Lloyd's
    comparisons of the next iteration would inherit it, and a row equidistant from two
    centroids would join either from run to run. With t = 2 sums + counts - 2 q counts and
    tau = t / (2 counts) in [-B, B] (B = err + 1/2), round(sums / counts) = q + floor(tau):
    1. t (one product q counts, local otherwise).
    2. c_j = [t - 2 j counts < 0] for j = -(ceil(B) - 1) .. floor(B), one batched
       comparison of |t| + 2 |j| counts <= 2 (2 B + 1) n.
    3. floor(tau) = floor(B) - sum_j c_j (the j above tau are counted; local).
    A count of 0 gives t = 0 and a meaningless quotient, which the caller replaces.
    """
    t = sums * 2 + counts - e.mul(q, counts) * 2
    up, down = int(np.floor(err + 0.5)), int(np.ceil(err + 0.5))
    steps = range(-(down - 1), up + 1)
    bits = bits_of(int(2 * (2 * (err + 0.5) + 1) * n) + 1) + 1
    shape = t.shape
    below = lt(e, join([(t - counts * (2 * j)).reshape(1, *shape) for j in steps], axis=0),
               0, bits)
    return q + up - below.sum(axis=0)


# ---------------------------------------------------------------------- t-test


@dataclass
class TTest:
    """Welch's t statistic and its degrees of freedom (Welch-Satterthwaite)."""

    t: Bounded
    dof: Bounded
    floored: Secret | None = None
    """How many variances were below the floor, plus how many samples had fewer than 2
    values (exact): t is then the floored statistic, not the sample's, and the owner is
    told so (`lang.pvalues`)."""
    diff: Bounded | None = None
    """The difference of the means (one sample: mean - popmean), in the data's units."""
    se: Bounded | None = None
    """Its (floored) standard error, in the data's units: t = diff / se. t's own bound is the
    worst case at the spread floor; the owner divides the revealed diff by the revealed se
    and bounds that quotient by their bounds, which is tight where se is far above the
    floor, as in real data (`lang.pvalues`)."""


def ttest(e: Engine, x: Secret, group: Secret, col: Range, min_std: float | None = None,
          f: int = FRAC) -> TTest:
    """Welch's two-sample t-test of x between the rows with group = 1 and group = 0.

    scipy's `ttest_ind(x[g == 1], x[g == 0], equal_var=False)`: t = (m_1 - m_0) / se,
    se^2 = u_1 + u_0 with u_g = v_g / n_g (v the sample variances), and
    dof = se^4 / (u_1^2 / (n_1 - 1) + u_0^2 / (n_0 - 1)).
    1. x'^2 (one round); S_1 = sum g x', Q_1 = sum g x'^2 in one fused dot;
       S_0 = S - S_1, Q_0 = Q - Q_1, n_1 = sum g, n_0 = n - n_1 (local).
    2.-5. `_welch`, from these secure moments.
    """
    n = x.shape[0]
    if group.shape != (n,):
        raise ValueError(f"ttest: the group column must be (n,) = ({n},), got {group.shape}")
    if n < 4:
        raise ValueError(f"ttest: needs at least 4 rows, got {n}")
    xs, _, widths = centered(e, x.reshape(n, 1), [col], f)
    xc = xs.reshape(n)
    w = widths[0]
    require("ttest", "the sum of squares of the centred codes", n * w * w, MASK_BITS - 1)
    sq = e.mul(xc, xc)
    both = e.dot(join([group.reshape(n, 1)] * 2, axis=1),
                 join([xc.reshape(n, 1), sq.reshape(n, 1)], axis=1), axis=0)
    sums = join([both[0:1], xc.sum().reshape(1) - both[0:1]], axis=0)
    squares = join([both[1:2], sq.sum().reshape(1) - both[1:2]], axis=0)
    n1 = group.sum().reshape(1)
    counts = join([n1, (-n1) + n], axis=0)
    return _welch(e, sums, squares, counts, n, w, _spread(col, min_std), f, total=n + 2)


def ttest_samples(e: Engine, x: Secret, wx: Secret | None, y: Secret, wy: Secret | None,
                  col: Range, min_std: float | None = None, f: int = FRAC,
                  pooled: bool = False) -> TTest:
    """Welch's t-test of the values of x selected by wx against those of y selected by wy
    (Student's, with the pooled variance and dof n_1 + n_0 - 2, when `pooled`).

    scipy's `ttest_ind(x[wx == 1], y[wy == 1], equal_var=pooled)`; wx, wy are secret 0/1
    weights of the vectors x and y (None: every value counts), `col` a range of both.
    1. x'^2 and y'^2 (one round); w x' and w x'^2 of each weighted sample (one round);
       S = sum w x', Q = sum w x'^2, n_g = sum w (local); an unweighted sample sums its
       values and squares, n_g its public length.
    2.-5. `_welch`, from these secure moments; n is the longer vector's length.
    """
    lengths = (x.shape[0], y.shape[0])
    if len(x.shape) != 1 or len(y.shape) != 1 or min(lengths) < 2:
        raise ValueError(f"ttest: needs two vectors of at least 2 values, got {x.shape} and "
                         f"{y.shape}")
    n = max(lengths)
    mid, w = col.center(f)
    require("ttest", "the sum of squares of the centred codes", n * w * w, MASK_BITS - 1)
    samples = [(x - mid, wx), (y - mid, wy)]
    squares = e.mul_many([(c, c) for c, _ in samples])
    pairs = [(weight, v) for (c, weight), sq in zip(samples, squares, strict=True)
             if weight is not None for v in (c, sq)]
    weighted = iter(e.mul_many(pairs) if pairs else [])
    moments = []
    for (c, weight), sq in zip(samples, squares, strict=True):
        if weight is None:
            count = e.constant(e.field.from_int64(np.array([c.shape[0]], dtype=np.int64)))
            moments.append((c.sum(), sq.sum(), count))
        else:
            moments.append((next(weighted).sum(), next(weighted).sum(), weight.sum()))
    sums, sq_sums, counts = (join([m[i].reshape(1) for m in moments], axis=0)
                             for i in range(3))
    return _welch(e, sums, sq_sums, counts, n, w, _spread(col, min_std), f, pooled,
                  total=sum(lengths))


def ttest_one(e: Engine, x: Secret, col: Range, popmean: float, min_std: float | None = None,
              f: int = FRAC) -> TTest:
    """One-sample t-test of the column x against the public mean `popmean` (in `col`).

    scipy's `ttest_1samp(x, popmean)`: t = (m - popmean) / sqrt(v / n), dof = n - 1; the
    paired test (`ttest_rel`) is this on the differences of two columns with popmean 0.
    1. x'^2 (one round); S = sum x', Q = sum x'^2 (local).
    2.-4. As `_welch` for one group: standardised moments, the variance floored at
       (min_std / h)^2, U = B v / n, se' = sqrt(U), t = 2^(b/2) (m - mu~) / se'.
    Error bound: `_ttest_bounds` with one group (the difference of one mean and an exact
    public one; se'^2 >= B floor / (n + 2)). dof is exact.
    """
    if len(x.shape) != 1 or x.shape[0] < 2:
        raise ValueError(f"ttest: needs a column of at least 2 values, got shape {x.shape}")
    if not col.lo <= popmean <= col.hi:
        raise ValueError(f"ttest: popmean {popmean} lies outside the range [{col.lo}, "
                         f"{col.hi}]")
    n = x.shape[0]
    mid, w = col.center(f)
    require("ttest", "the sum of squares of the centred codes", n * w * w, MASK_BITS - 1)
    c = x - mid
    sq = e.mul(c, c)
    counts = e.constant(e.field.from_int64(np.array([n], dtype=np.int64)))
    mu = round((popmean * 2**f - mid) * 2**G / w)
    return _welch(e, c.sum().reshape(1), sq.sum().reshape(1), counts, n, w,
                  _spread(col, min_std), f, popmean_std=mu)


def _spread(col: Range, min_std: float | None) -> float:
    """The floor of a group's standard deviation (default: the range's width / 256)."""
    return col.width * DEFAULT_SPREAD if min_std is None else min_std


def _welch(e: Engine, sums: Secret, squares: Secret, counts: Secret, n: int, w: int,
           spread: float, f: int, pooled: bool = False, popmean_std: int | None = None,
           total: int | None = None) -> TTest:
    """Welch's t and dof from the exact moments of two groups of at most n values each.

    With `pooled`, Student's: both groups take the pooled variance
    (SS_1 + SS_0) / (n_1 + n_0 - 2) in step 3 (one more reciprocal), and dof is that
    count, exact. With `popmean_std` (standardised, G bits) there is one group, tested
    against that public mean: step 4 with U_1 alone, dof = n_1 - 1, exact.

    `sums` (2,) = S_g = sum x', `squares` (2,) = Q_g = sum x'^2 of the centred codes
    x' = code - m (|x'| <= w), `counts` (2,) = n_g. Values are standardised, x~ = x' / w,
    so that every intermediate is at most n; t and dof do not depend on the scale.
    2. Counts floored at 2 (one comparison); 1/n_g and 1/(n_g - 1) with 44 bits
       (one `reciprocal` of four values).
    3. m_g = S~_g / n_g; v_g = (Q~_g - S~_g m_g) / (n_g - 1), floored at
       (spread / h)^2 (h = w 2^-f, the half-width of the range).
    4. U_g = B v_g / n_g with B = 2^b >= n, b even (B u_g: larger, so its truncation
       costs fewer relative bits); se' = sqrt(U_1 + U_0) = 2^(b/2) se (`sqrt_g`);
       1/se' (`inverse`); t = 2^(b/2) (m_1 - m_0) / se'.
    5. a_g = U_g / se'^2 (two products by 1/se'), dof = 1 / sum_g a_g^2 / (n_g - 1).
    Also diff = m_1 - m_0 (or m - mu~) and se = se' 2^-(b/2), both times the half-width h
    (one `scale_public`, one round): the owner's tight bound of t (`TTest.se`).
    Error bounds: worst case over every group size 2 <= n_g <= n (the two counts adding up
    to at most `total`, default 2 n), the range and the floor (`_ttest_bounds`).
    """
    # 2. counts floored at 2, reciprocals
    groups = counts.shape[0]
    small = lt(e, counts, 2, bits_of(n + 2))
    counts = counts + e.mul(small, (-counts) + 2)
    dens = [counts, counts - 1] + ([(counts.sum() - 2).reshape(1)] if pooled else [])
    rec = functions.reciprocal(e, join(dens, axis=0), 0, bits=bits_of(2 * n + 4),
                               out_frac=COUNT_RECIPROCAL)
    inv_n, inv_n1 = rec[0:groups], rec[groups:2 * groups]
    # 3. standardised sums, means, variances
    s_std, s_units = scale_public(e, sums, n * w, Fraction(1 << G, w), 1, 0, "ttest",
                                  "a group sum")
    q_std, q_units = scale_public(e, squares, n * w * w, Fraction(1 << G, w * w), 1, 0,
                                  "ttest", "a group sum of squares")
    floor_v = (spread / (w * 2.0**-f)) ** 2
    bounds = _ttest_bounds(n, s_units * 2.0**-G, q_units * 2.0**-G, floor_v, groups, pooled,
                           total)
    (mean,) = trunc_many(e, [e.mul(s_std, inv_n)], [COUNT_RECIPROCAL])
    (sm,) = trunc_many(e, [e.mul(s_std, mean)], [G])
    if pooled:
        ss = q_std - sm
        (var,) = trunc_many(e, [e.mul((ss[0:1] + ss[1:2]), rec[4:5])], [COUNT_RECIPROCAL])
        var = var.broadcast_to(2)
    else:
        (var,) = trunc_many(e, [e.mul(q_std - sm, inv_n1)], [COUNT_RECIPROCAL])
    floor_code = round(floor_v * 2**G)
    low = lt(e, var, e.field.const(floor_code), bits_of(n << (G + 1)))
    var = var + e.mul(low, (-var) + floor_code)
    floored = low.sum() + small.sum()  # a sample of fewer than 2 values counts too
    # 4. t, with U_g = B u_g for B = 2^b >= n (b even): truncated with b more bits
    b = _boost(n)
    (U,) = trunc_many(e, [e.mul(var, inv_n)], [COUNT_RECIPROCAL - b])
    se2 = U.sum().reshape(1)
    se = sqrt_g(e, se2, 2.0 * (1 << b))
    inv_se, _ = inverse(e, se, bounds["se_low"], float(np.sqrt(2.0 * (1 << b))))
    diff = mean[0:1] - mean[1:2] if popmean_std is None else mean - popmean_std
    (t,) = trunc_many(e, [e.mul(diff, inv_se)], [G - b // 2])
    out = _out_frac(f, max(bounds["t_top"], 2.0 * (n + 1), 2 * w * 2.0**-f))
    t_out, t_units = scale_public(e, t, int(bounds["t_top"] * 2**G) + 1, 1 << out, 1, G,
                                  "ttest", "t")
    t_bounded = Bounded(t_out.reshape(), bounds["t_err"] + t_units * 2.0**-out,
                        as_range(bounds["t_top"]), out)
    diff_out, se_out = _in_units(e, diff, se, w, b, f, out, bounds)
    if pooled or popmean_std is not None:  # dof counts values: exact
        dof = (counts.sum() - groups) * (1 << out)
        return TTest(t_bounded, Bounded(dof.reshape(), 0.0, Range(1, 2 * n), out), floored,
                     diff_out, se_out)
    # 5. dof
    (ub,) = trunc_many(e, [e.mul(U, inv_se.broadcast_to(2))], [G])
    (a,) = trunc_many(e, [e.mul(ub, inv_se.broadcast_to(2))], [G])
    (a2,) = trunc_many(e, [e.mul(a, a)], [G])
    (terms,) = trunc_many(e, [e.mul(a2, inv_n1)], [COUNT_RECIPROCAL])
    den = terms[0:1] + terms[1:2]
    den = floor_at(e, den, round(bounds["den_low"] * 2**G), bits_of(2 << G))
    inv_den, den_rho = inverse(e, den, bounds["den_low"], 1.0)
    dof_out, dof_units = scale_public(e, inv_den, int(2**G / bounds["den_low"]) + 1,
                                      1 << out, 1, G, "ttest", "dof")
    dof_err = bounds["dof_err"] + den_rho / bounds["den_low"] + dof_units * 2.0**-out
    return TTest(t_bounded, Bounded(dof_out.reshape(), dof_err, Range(1, 2 * (n + 1)), out),
                 floored, diff_out, se_out)


OUT_EXTRA = 16
"""More fractional bits of a t-test's outputs than the data's (where they fit): the owner's
t = diff / se is off by the outputs' rounding over se, and at f bits that was the larger part
of its bound on a narrow column (rr of benefits: 2^-16 on an se of 0.012)."""


def _out_frac(f: int, top: float) -> int:
    """Fractional bits of a t-test's outputs, whose magnitudes are at most `top`: f + 16,
    or f where that would not leave 2^60 of room (3 bits for errors and sums)."""
    return f + OUT_EXTRA if top * 2.0 ** (f + OUT_EXTRA) < 2.0**60 else f


def _in_units(e: Engine, diff: Secret, se: Secret, w: int, b: int, f: int, out: int,
              bounds: dict[str, float]) -> tuple[Bounded, Bounded]:
    """The standardised difference of means (G bits) and se' = 2^(b/2) se (G bits) in the
    data's units with `out` fractional bits: diff h and se' h 2^-(b/2), h = w 2^-f (w the
    half-width of the f-bit codes), by one `scale_public` of both (one round). Errors: the
    standardised ones times their scale, plus the scaling's units."""
    half = w * 2.0**-f
    top_diff = int((2 + bounds["diff_err"]) * 2**G) + 1  # |m_g| <= 1 standardised
    top_se = int((np.sqrt(2.0 * (1 << b)) + bounds["se_err"]) * 2**G) + 1
    up = out - f
    both, units = scale_public(e, join([diff.reshape(1), se.reshape(1)], axis=0),
                               [top_diff, top_se], [w << (b // 2 + up), w << up], 1,
                               G + b // 2, "ttest", "the mean difference and its standard error")
    unit = 2.0**-out
    diff_err = bounds["diff_err"] * half + float(units[0]) * unit
    se_err = bounds["se_err"] * half * 2.0 ** -(b // 2) + float(units[1]) * unit
    return (Bounded(both[0:1].reshape(), diff_err, Range(-2 * half, 2 * half), out),
            Bounded(both[1:2].reshape(), se_err, Range(0.0, np.sqrt(2.0) * half), out))


COUNT_RECIPROCAL = 44
"""Fractional bits of 1/n_g in `ttest`: a product with a value of at most n_g 2^G stays
below 2^(G + 45), and the reciprocal keeps g = 40 bits of relative precision."""

def _boost(n: int) -> int:
    """The even b with 2^b >= n of `ttest`'s step 4."""
    b = max(1, n - 1).bit_length()
    return b + b % 2


def _ttest_bounds(n: int, s_err: float, q_err: float, floor_v: float, groups: int = 2,
                  pooled: bool = False, total: int | None = None) -> dict[str, float]:
    """Worst-case errors of `ttest`, maximised over the group sizes 2 <= c <= n + 2.

    Two groups whose counts add up to at most `total` (default 2 n: two samples of up to n
    values each) have 1/c_1 + 1/c_0 >= 4 / total, so se'^2 >= 4 B floor_v / total.
    Also `diff_err` (the difference of means, standardised) and `se_err` (se', absolute:
    se'^2 is off by at most the sum of the groups' e_U, and |sqrt a' - sqrt a| <=
    |a' - a| / (sqrt a' + sqrt a) at the floor), for `_in_units`.

    One group (`ttest_one`): se'^2 = U >= B floor_v / (n + 2), the difference's error is one
    mean's (the public mean is rounded by half a unit), and there is no dof to bound.
    Pooled (Student): every group's variance is (SS_1 + SS_0) / C with C = c_1 + c_0 - 2 in
    [2, 2n + 2], |SS_1 + SS_0| <= C + 2 and c_g <= C, so its error is
    (C + 2) d(C) + 2 (q_err + M(C))(1/C + d(C)) + u with M(C) the largest e_sm(c), c <= C,
    maximised over C.

    Standardised, |S~| <= c, |Q~| <= c, |mean| <= 1, v in [floor_v, c / (c - 1)], and
    d(c) = 2^(1-F) + 2^-37 / c bounds the error of a reciprocal of c with F = 44 bits.
    Absolute errors, u = 2^-G: mean c d(c) + s_err (1/c + d) + u; S~ mean
    c e_mean + s_err (1 + e_mean) + u; v c d(c-1) + (q_err + e_sm)(1/(c-1) + d) + u;
    U = B v / c: B (2 d(c) + e_v (1/c + d)) + u. Then relative errors: U >= B floor_v / c,
    se'^2 = U_1 + U_0 >= 4 B floor_v / (n + 2); se' from `sqrt_g`; 1/se' from `inverse`;
    t = 2^(b/2) diff / se'; a_g = U_g / se'^2 in [0, 1]; den = sum a_g^2 / (c_g - 1) >=
    1 / (2 (n + 1)) (a_1 + a_0 = 1); dof = 1 / den.
    """
    unit = 2.0**-G
    F = 2.0**-COUNT_RECIPROCAL
    c = np.arange(2, n + 3, dtype=np.float64)
    g = min(functions.G, 84 - (COUNT_RECIPROCAL - 1))

    def d(k: np.ndarray) -> np.ndarray:
        return 2 * F + 2.0 ** -(g - 3) / k

    e_mean = c * d(c) + s_err * (1 / c + d(c)) + unit
    e_sm = c * e_mean + s_err * (1 + e_mean) + unit
    e_var = c * d(c - 1) + (q_err + e_sm) * (1 / (c - 1) + d(c - 1)) + unit
    if pooled:  # c_0 >= 2, so each c_g <= C: the sums of squares err by at most M(C) each
        C = np.arange(2, 2 * n + 3, dtype=np.float64)
        M = np.maximum.accumulate(e_sm)[np.minimum(C, n + 2).astype(np.int64) - 2]
        e_pool = (C + 2) * d(C) + 2 * (q_err + M) * (1 / C + d(C)) + unit
        e_var = np.full_like(c, float(np.max(e_pool)))
    B = 2.0 ** _boost(n)
    e_U = B * (2 * d(c) + e_var * (1 / c + d(c))) + unit
    rel_U = float(np.max(e_U / (B * floor_v / c)))
    se2_low = (4 * B * floor_v / (total or 2 * n) if groups == 2 else B * floor_v / (n + 2))
    rel_se2 = rel_U
    se_low = float(np.sqrt(se2_low * (1 - rel_se2))) - sqrt_g_error(2 * B)
    # |sqrt(1 + x) - 1| <= |x| / (1 + sqrt(1 - |x|)), plus the root's own error
    rel_se = rel_se2 / (1 + np.sqrt(1 - rel_se2)) + sqrt_g_error(2 * B) / se_low
    rho = inverse_error(float(np.sqrt(2 * B)))
    rel_inv = (1 + rel_se / (1 - rel_se)) * (1 + rho) - 1  # 1 / (se (1 + x)), then r
    diff_err = 2 * float(np.max(e_mean)) if groups == 2 else float(np.max(e_mean)) + unit
    root_b = float(np.sqrt(B))
    t_top = root_b * 2 / se_low
    t_err = root_b * (diff_err * (1 + rho) / se_low + 2 / se_low * rel_inv) + unit
    e_se2 = groups * float(np.max(e_U))
    se_err = e_se2 / (np.sqrt(se2_low) + np.sqrt(max(se2_low - e_se2, 0.0))) \
        + sqrt_g_error(2 * B)
    out = {"t_err": t_err, "t_top": t_top, "se_low": se_low, "diff_err": diff_err,
           "se_err": float(se_err)}
    if groups == 1 or pooled:
        return out
    # dof
    inv_top = 1 / se_low
    rel_a = (1 + rel_U) * (1 + rel_inv) ** 2 - 1
    abs_a = unit * inv_top * (1 + rel_inv) + unit
    rel_den = (1 + rel_a) ** 2 * (1 + float(np.max(d(c - 1) * (c - 1)))) - 1
    abs_den = 2 * (2 * abs_a + abs_a**2 + 2 * unit)
    den_low = 1 / (2 * (n + 1))
    if rel_den >= 0.5 or abs_den >= den_low / 2:
        raise ValueError(f"ttest: the variance floor {floor_v:.3g} (standardised) is too small "
                         f"for {n} rows to bound the error; raise min_std")
    den_low_computed = den_low * (1 - rel_den) - abs_den
    dof_err = (2 * (n + 1)) * (rel_den / (1 - rel_den)) + abs_den / (den_low * den_low_computed)
    return {**out, "den_low": den_low_computed, "dof_err": dof_err}
