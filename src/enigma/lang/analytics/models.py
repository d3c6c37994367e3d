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
from enigma.mpc.engine import Engine
from enigma.mpc.fixed import FRAC, trunc_many
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


def kmeans(e: Engine, x: Secret, ranges: Sequence[Range], init: np.ndarray | Secret,
           iterations: int, f: int = FRAC) -> Clusters:
    """Lloyd's algorithm with public k, a public number of iterations and given centroids.

    `init` is (k, d): public reals within the ranges, or a Secret of fixed-point
    encodings (clipped into the ranges, one comparison). One iteration:
    1. D_jr = sum_c (x_rc - mu_jc)^2 for every centroid j and row r: one fused
       dot over (k, n, d) (one round), exact integers at 2f bits.
    2. H = one-hot of argmin_j D_jr (tournament over k: ceil(log2 k) levels and
       as many rounds to expand the one-hot); ties go to the first centroid.
    3. size_j = sum_r H_rj (local); S_j = sum_r H_rj x'_r (one fused dot).
    4. mu_j = S_j / size_j + m (`divide_by_count`); an empty cluster keeps its
       centroid (one equality test and one select).
    Error: the centroids of the last iteration are the means of the clusters
    that iteration assigned, off by at most 1 + 2 n w 2^-F + w 2^-(g-3) ulp.
    Assignments compare exact distances to the computed centroids; a point almost
    equidistant to two of them may go to either (as rounding does in numpy).
    """
    x, rs, _ = columns(x, ranges)
    n, d = x.shape
    if iterations < 1:
        raise ValueError(f"kmeans: needs at least one iteration, got {iterations}")
    xc, mids, widths = centered(e, x, rs, f)
    mid_pub = e.field.from_ints(mids)
    if isinstance(init, Secret):
        if len(init.shape) != 2 or init.shape[1] != d:
            raise ValueError(f"kmeans: initial centroids must be (k, {d}), got {init.shape}")
        k = init.shape[0]
        mu = init - np.ascontiguousarray(np.broadcast_to(mid_pub, (k, d, 2)))
        # clip into the ranges (one comparison per column): the distance bound below
        # relies on it; any 64-bit encoding compares correctly on 66 bits
        mu = join([clip(e, mu[:, c], -widths[c], widths[c], VALUE_BITS + 3).reshape(k, 1)
                   for c in range(d)], axis=1)
    else:
        init = np.asarray(init, dtype=np.float64)
        if init.ndim != 2 or init.shape[1] != d:
            raise ValueError(f"kmeans: initial centroids must be (k, {d}), got {init.shape}")
        outside = [(j, c) for j in range(init.shape[0]) for c in range(d)
                   if not rs[c].lo <= init[j, c] <= rs[c].hi]
        if outside:
            j, c = outside[0]
            raise ValueError(f"kmeans: initial centroid {j} has {init[j, c]} in column {c}, "
                             f"outside its range [{rs[c].lo}, {rs[c].hi}]")
        k = init.shape[0]
        codes = np.rint(init * 2**f).astype(np.int64) - np.array(mids)
        mu = e.constant(e.field.from_int64(codes))
    w = max(widths)
    # distances: centroids stay within the ranges, so |x' - mu| <= 2w
    dist_bound = d * (2 * w) ** 2
    require("kmeans", "a squared distance", dist_bound, MASK_BITS - 1)
    dist_bits = bits_of(dist_bound)
    err = 0.0
    sizes = None
    for _ in range(iterations):  # public iteration count
        diff = (xc.reshape(1, n, d).broadcast_to(k, n, d)
                - mu.reshape(k, 1, d).broadcast_to(k, n, d))
        dist = e.dot(diff, diff, axis=2)  # (k, n)
        hot = argmin(e, dist, axis=0, one_hot=True, bits=dist_bits)  # (n, k)
        sizes = hot.sum(axis=0)
        sums = e.dot(hot.reshape(n, k, 1).broadcast_to(n, k, d),
                     xc.reshape(n, 1, d).broadcast_to(n, k, d), axis=0)  # (k, d)
        size_cols = join([sizes.reshape(k, 1)] * d, axis=1)
        new, units = divide_by_count(e, sums, size_cols, w, n, "kmeans")
        empty = 1 - lt(e, 0, sizes, bits_of(n))  # [size <= 0]
        keep = join([empty.reshape(k, 1)] * d, axis=1)
        mu = new + e.mul(keep, mu - new)
        err = units * 2.0**-f
    centroids = mu + np.ascontiguousarray(np.broadcast_to(mid_pub, (k, d, 2)))
    lo, hi = min(r.lo for r in rs), max(r.hi for r in rs)
    return Clusters(Bounded(centroids, err, Range(min(lo, 0), max(hi, 0)), f),
                    Bounded(sizes * (1 << f), 0.0, Range(0, n), f))


# ---------------------------------------------------------------------- t-test


@dataclass
class TTest:
    """Welch's t statistic and its degrees of freedom (Welch-Satterthwaite)."""

    t: Bounded
    dof: Bounded


def ttest(e: Engine, x: Secret, group: Secret, col: Range, min_std: float | None = None,
          f: int = FRAC) -> TTest:
    """Welch's two-sample t-test of x between the rows with group = 1 and group = 0.

    scipy's `ttest_ind(x[g == 1], x[g == 0], equal_var=False)`: t = (m_1 - m_0) / se,
    se^2 = u_1 + u_0 with u_g = v_g / n_g (v the sample variances), and
    dof = se^4 / (u_1^2 / (n_1 - 1) + u_0^2 / (n_0 - 1)).
    Values are standardised, x~ = (x - m) / h (h the half-width of the range), so that
    every intermediate is at most n; t and dof do not depend on the scale.
    1. x'^2 (one round); S_1 = sum g x', Q_1 = sum g x'^2 in one fused dot;
       S_0 = S - S_1, Q_0 = Q - Q_1, n_1 = sum g, n_0 = n - n_1 (local).
    2. Counts floored at 2 (one comparison); 1/n_g and 1/(n_g - 1) with 44 bits
       (one `reciprocal` of four values).
    3. m_g = S~_g / n_g; v_g = (Q~_g - S~_g m_g) / (n_g - 1), floored at
       (min_std / h)^2 (default min_std: range width / 256).
    4. U_g = B v_g / n_g with B = 2^b >= n, b even (B u_g: larger, so its truncation
       costs fewer relative bits); se' = sqrt(U_1 + U_0) = 2^(b/2) se (`functions.sqrt`);
       1/se' (`_inverse`); t = 2^(b/2) (m_1 - m_0) / se'.
    5. a_g = U_g / se'^2 (two products by 1/se'), dof = 1 / sum_g a_g^2 / (n_g - 1).
    Error bounds: worst case over every group size 2 <= n_g <= n, the range and the floor
    (`_ttest_bounds`).
    """
    n = x.shape[0]
    if group.shape != (n,):
        raise ValueError(f"ttest: the group column must be (n,) = ({n},), got {group.shape}")
    if n < 4:
        raise ValueError(f"ttest: needs at least 4 rows, got {n}")
    spread = col.width * DEFAULT_SPREAD if min_std is None else min_std
    xs, _, widths = centered(e, x.reshape(n, 1), [col], f)
    xc = xs.reshape(n)
    w = widths[0]
    require("ttest", "the sum of squares of the centred codes", n * w * w, MASK_BITS - 1)
    # 1. group sums
    sq = e.mul(xc, xc)
    both = e.dot(join([group.reshape(n, 1)] * 2, axis=1),
                 join([xc.reshape(n, 1), sq.reshape(n, 1)], axis=1), axis=0)
    sums = join([both[0:1], xc.sum().reshape(1) - both[0:1]], axis=0)
    squares = join([both[1:2], sq.sum().reshape(1) - both[1:2]], axis=0)
    n1 = group.sum().reshape(1)
    counts = join([n1, (-n1) + n], axis=0)
    # 2. counts floored at 2, reciprocals
    small = lt(e, counts, 2, bits_of(n + 2))
    counts = counts + e.mul(small, (-counts) + 2)
    rec = functions.reciprocal(e, join([counts, counts - 1], axis=0), 0, bits=bits_of(n + 2),
                               out_frac=COUNT_RECIPROCAL)
    inv_n, inv_n1 = rec[0:2], rec[2:4]
    # 3. standardised sums, means, variances
    s_std, s_units = scale_public(e, sums, n * w, Fraction(1 << G, w), 1, 0, "ttest",
                                  "a group sum")
    q_std, q_units = scale_public(e, squares, n * w * w, Fraction(1 << G, w * w), 1, 0,
                                  "ttest", "a group sum of squares")
    floor_v = (spread / (w * 2.0**-f)) ** 2
    bounds = _ttest_bounds(n, s_units * 2.0**-G, q_units * 2.0**-G, floor_v)
    (mean,) = trunc_many(e, [e.mul(s_std, inv_n)], [COUNT_RECIPROCAL])
    (sm,) = trunc_many(e, [e.mul(s_std, mean)], [G])
    (var,) = trunc_many(e, [e.mul(q_std - sm, inv_n1)], [COUNT_RECIPROCAL])
    var = floor_at(e, var, round(floor_v * 2**G), bits_of(n << (G + 1)))
    # 4. t, with U_g = B u_g for B = 2^b >= n (b even): truncated with b more bits
    b = _boost(n)
    (U,) = trunc_many(e, [e.mul(var, inv_n)], [COUNT_RECIPROCAL - b])
    se2 = U[0:1] + U[1:2]
    se = sqrt_g(e, se2, 2.0 * (1 << b))
    inv_se, _ = inverse(e, se, bounds["se_low"], float(np.sqrt(2.0 * (1 << b))))
    diff = mean[0:1] - mean[1:2]
    (t,) = trunc_many(e, [e.mul(diff, inv_se)], [G - b // 2])
    t_out, t_units = scale_public(e, t, int(bounds["t_top"] * 2**G) + 1, 1 << f, 1, G,
                                  "ttest", "t")
    # 5. dof
    (ub,) = trunc_many(e, [e.mul(U, inv_se.broadcast_to(2))], [G])
    (a,) = trunc_many(e, [e.mul(ub, inv_se.broadcast_to(2))], [G])
    (a2,) = trunc_many(e, [e.mul(a, a)], [G])
    (terms,) = trunc_many(e, [e.mul(a2, inv_n1)], [COUNT_RECIPROCAL])
    den = terms[0:1] + terms[1:2]
    den = floor_at(e, den, round(bounds["den_low"] * 2**G), bits_of(2 << G))
    inv_den, den_rho = inverse(e, den, bounds["den_low"], 1.0)
    dof_out, dof_units = scale_public(e, inv_den, int(2**G / bounds["den_low"]) + 1, 1 << f, 1,
                                      G, "ttest", "dof")
    dof_err = bounds["dof_err"] + den_rho / bounds["den_low"] + dof_units * 2.0**-f
    return TTest(Bounded(t_out.reshape(), bounds["t_err"] + t_units * 2.0**-f,
                         as_range(bounds["t_top"]), f),
                 Bounded(dof_out.reshape(), dof_err, Range(1, 2 * (n + 1)), f))


COUNT_RECIPROCAL = 44
"""Fractional bits of 1/n_g in `ttest`: a product with a value of at most n_g 2^G stays
below 2^(G + 45), and the reciprocal keeps g = 40 bits of relative precision."""

def _boost(n: int) -> int:
    """The even b with 2^b >= n of `ttest`'s step 4."""
    b = max(1, n - 1).bit_length()
    return b + b % 2


def _ttest_bounds(n: int, s_err: float, q_err: float, floor_v: float) -> dict[str, float]:
    """Worst-case errors of `ttest`, maximised over the group sizes 2 <= c <= n + 2.

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
    B = 2.0 ** _boost(n)
    e_U = B * (2 * d(c) + e_var * (1 / c + d(c))) + unit
    rel_U = float(np.max(e_U / (B * floor_v / c)))
    se2_low = 4 * B * floor_v / (n + 2)
    rel_se2 = rel_U
    se_low = float(np.sqrt(se2_low * (1 - rel_se2))) - sqrt_g_error(2 * B)
    # |sqrt(1 + x) - 1| <= |x| / (1 + sqrt(1 - |x|)), plus the root's own error
    rel_se = rel_se2 / (1 + np.sqrt(1 - rel_se2)) + sqrt_g_error(2 * B) / se_low
    rho = inverse_error(float(np.sqrt(2 * B)))
    rel_inv = (1 + rel_se / (1 - rel_se)) * (1 + rho) - 1  # 1 / (se (1 + x)), then r
    diff_err = 2 * float(np.max(e_mean))
    root_b = float(np.sqrt(B))
    t_top = root_b * 2 / se_low
    t_err = root_b * (diff_err * (1 + rho) / se_low + 2 / se_low * rel_inv) + unit
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
    return {"t_err": t_err, "t_top": t_top, "se_low": se_low, "den_low": den_low_computed,
            "dof_err": dof_err}
