"""Linear (ridge) regression, k-means clustering and Welch's two-sample t-test.

All three reduce the rows to a few exact sums first (fused dot products, one
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
from enigma.mpc.select import argmin, join, lt

from .moments import _pairs, _scatter
from .precision import (
    MASK_BITS,
    Approx,
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

G = 36
"""Fractional bits of the standardised quantities of a regression (all of magnitude <= 2)."""

RECIPROCAL_FIRST = 26
"""Fractional bits of the first reciprocal of a pivot, before one Newton step at G bits."""

DEFAULT_PIVOT_FLOOR = 2.0**-8
"""Floor of the pivots of a standardised normal matrix (entries cov_ij / (h_i h_j), h the
half-width of a column's range)."""

DEFAULT_SPREAD = 1 / 256
"""Default floor of a standard deviation, as a fraction of the column's range width."""


# ---------------------------------------------------------------------- shared steps


def _floor(e: Engine, x: Secret, floor_code: int, bits: int) -> Secret:
    """max(x, floor) for public floor (one comparison, one round)."""
    low = lt(e, x, e.field.const(floor_code), bits)
    return x + e.mul(low, (-x) + floor_code)


def _inverse(e: Engine, p: Secret, floor: float, top: float) -> tuple[Secret, Approx]:
    """1 / p with G fractional bits for G-bit p in [floor, top] (floored before).

    1. r_0 = reciprocal(p) with 26 bits (`functions.reciprocal`), lifted to G bits.
    2. One Newton step, written r = r_0 + r_0 (1 - p r_0) so that the second product
       is small (1 - p r_0 is about 2^-20): two products and truncations.
    Returns r and Approx(1/floor, relative error of r against 1/p).
    """
    r0 = functions.reciprocal(e, p, G, bits=bits_of(int(top * 2**G) + 1),
                              out_frac=RECIPROCAL_FIRST)
    r0 = r0 * (1 << (G - RECIPROCAL_FIRST))
    g = min(functions.G, 84 - (G + RECIPROCAL_FIRST - 1))
    rho0 = 2.0 ** -(g - 3) + 2 * 2.0**-RECIPROCAL_FIRST * top
    require("a reciprocal", "the Newton correction", int(2 ** (2 * G) / floor * 4 * rho0),
            MASK_BITS)
    (pr,) = trunc_many(e, [e.mul(p, r0)], [G])
    (step,) = trunc_many(e, [e.mul(r0, (-pr) + (1 << G))], [G])
    # r0 (1 - p r0) exactly would leave rho0^2; the two truncations add 2^-G each,
    # the first one multiplied by r0 <= (1 + rho0) / floor
    rho = rho0**2 + 2.0**-G * ((1 + rho0) / floor + 1) * top
    return r0 + step, Approx(1 / floor, rho)


# ---------------------------------------------------------------------- regression


@dataclass
class Regression:
    """Coefficients (d,), intercept and R^2 of a fitted linear model."""

    coef: Bounded
    intercept: Bounded
    r2: Bounded


def linear_regression(e: Engine, x: Secret, y: Secret, x_ranges: Range | Sequence[Range],
                      y_range: Range, ridge: float = 1.0,
                      pivot_floor: float = DEFAULT_PIVOT_FLOOR,
                      min_std: float | None = None, f: int = FRAC) -> Regression:
    """Least squares y ~ x b + c with an L2 penalty `ridge` on b: scikit-learn's `Ridge(ridge)`.

    1. Scatter N_ij = n sum z_i z_j - S_i S_j of the centred columns z = (x, y),
       exact, all pairs in one fused dot.
    2. Standardise: A_ij = N_ij / (n^2 h_i h_j) (h = half-widths of the ranges)
       plus ridge / (n h_i^2) on the diagonal, a = A_iy; G = 36 bits (one round).
    3. Solve A b~ = a by Gaussian elimination (A is symmetric positive definite,
       no pivoting): for each k, floor the pivot at `pivot_floor` (one
       comparison), invert it (`_inverse`), eliminate below it (two rounds);
       then back-substitute (four rounds per k).
    4. b_i = b~_i h_y / h_i; c = m_y + h_y (z_y - sum_i b~_i (m_i / h_i + z_i)) with
       z the standardised means (one round each).
    5. R^2 = (2 b~.a - b~' A b~) / A_yy (unpenalised A; A_yy floored at
       (min_std / h_y)^2), scikit-learn's `score` on the training rows.
    The error bounds are propagated with `Approx` through every step, worst case over
    the ranges and floors (they grow with 1 / pivot_floor^2; see docs/analytics.md).
    """
    x, rs, _ = columns(x, x_ranges)
    n, d = x.shape
    if d > 5:
        raise ValueError(f"linear_regression: at most 5 features, got {d}")
    if ridge < 0 or not pivot_floor > 0:
        raise ValueError("linear_regression: ridge must be >= 0 and pivot_floor > 0")
    spread = y_range.width * DEFAULT_SPREAD if min_std is None else min_std
    z = join([x, y.reshape(n, 1)], axis=1)
    zc, mids, widths = centered(e, z, [*rs, y_range], f)
    left, right = _pairs(d + 1)
    N = _scatter(e, zc, left, right)
    w = widths
    bounds = [n * n * w[i] * w[j] for i, j in zip(left, right, strict=True)]
    nums = [Fraction(1 << G, w[i] * w[j]) for i, j in zip(left, right, strict=True)]
    std, std_units = scale_public(e, N, bounds, nums, n * n, 0, "linear_regression",
                                  "the scatter")
    sums = zc.sum(axis=0)
    means, mean_units = scale_public(e, sums, [n * wi for wi in w],
                                     [Fraction(1 << G, wi) for wi in w], n, 0,
                                     "linear_regression", "a column sum")
    unit = 2.0**-G
    entry_err = float(np.max(std_units)) * unit
    where = {(int(i), int(j)): p for p, (i, j) in enumerate(zip(left, right, strict=True))}

    def entry(i: int, j: int) -> Secret:
        return std[where[min(i, j), max(i, j)]:where[min(i, j), max(i, j)] + 1]

    h = [wi * 2.0**-f for wi in w]
    penalties = [ridge / (n * h[i] ** 2) for i in range(d)]
    amax = 1.0 + max(penalties) + pivot_floor
    rows = []
    for i in range(d):
        rows.append(join([entry(i, j) for j in range(d)], axis=0).reshape(1, d))
    A = join(rows, axis=0)
    pen = e.field.from_ints([[round(penalties[i] * 2**G) if i == j else 0 for j in range(d)]
                             for i in range(d)])
    A = A + pen
    a = join([entry(i, d) for i in range(d)], axis=0)
    a_plain = a
    A_err = entry_err + unit / 2  # the penalty's rounding
    beta, beta_apx = _solve(e, A, a, d, amax, pivot_floor, Approx(1.0, A_err),
                            Approx(1.0, entry_err))
    # coefficients in the columns' units
    coef, coef_units = scale_public(e, beta, [int(beta_apx.mag * 2**G) + 1] * d,
                                    [Fraction(w[d], w[i]) for i in range(d)], 1, G - f,
                                    "linear_regression", "a coefficient")
    coef_err = [beta_apx.err * h[d] / h[i] + float(np.max(coef_units)) * 2.0**-f
                for i in range(d)]
    # intercept
    shifts = e.field.from_ints([round(mids[i] / w[i] * 2**G) for i in range(d)])
    shift_mag = max(abs(mids[i] / w[i]) for i in range(d))
    zx = means[:d] + shifts
    (inner,) = trunc_many(e, [e.dot(beta, zx)], [G])
    inner = means[d] - inner
    mean_apx = Approx(1.0 + shift_mag, float(np.max(mean_units)) * unit + unit / 2)
    inner_apx = (Approx(1.0, float(np.max(mean_units)) * unit)
                 + (beta_apx * mean_apx) * d).plus(unit)
    inner_bound = int(inner_apx.mag * 2**G) + 1
    icpt, icpt_units = scale_public(e, inner, inner_bound, w[d], 1, G, "linear_regression",
                                    "the intercept")
    icpt = icpt + e.field.const(mids[d])
    icpt_err = inner_apx.err * h[d] + icpt_units * 2.0**-f
    # R^2 on the unpenalised matrix
    A_plain = A - pen
    (Ab,) = trunc_many(e, [e.dot(A_plain, beta.reshape(1, d).broadcast_to(d, d), axis=1)], [G])
    (quad,) = trunc_many(e, [e.dot(beta, Ab * 1 + a_plain * (-2))], [G])
    explained = -quad
    yy = entry(d, d)
    floor_y = (spread / h[d]) ** 2
    yy = _floor(e, yy, round(floor_y * 2**G), bits_of(int(2 ** (G + 1))))
    r_yy, r_apx = _inverse(e, yy.reshape(1), floor_y, 1.0)
    (r2,) = trunc_many(e, [e.mul(explained.reshape(1), r_yy)], [G])
    r2, r2_units = scale_public(e, r2, int(2 ** (G + 1)), 1 << f, 1, G, "linear_regression",
                                "R^2")
    bt = beta_apx * 1.0
    ab = (Approx(1.0, entry_err) * bt) * d
    quad_apx = ((ab + Approx(2.0, 2 * entry_err)) * bt * d).plus(2 * unit)
    yy_apx = Approx(1.0, entry_err)
    yinv = Approx(1 / floor_y, yy_apx.err / floor_y**2 + r_apx.err / floor_y)
    r2_apx = (quad_apx * yinv).plus(unit)
    r2_err = r2_apx.err + r2_units * 2.0**-f
    lo, hi = y_range.lo, y_range.hi
    return Regression(
        Bounded(coef, np.array(coef_err), as_range(beta_apx.mag * max(h[d] / hi_ for hi_ in h[:d])),
                f),
        Bounded(icpt.reshape(), icpt_err, as_range(max(abs(lo), abs(hi)) + h[d] * inner_apx.mag),
                f),
        Bounded(r2.reshape(), r2_err, Range(0, 1), f))


def _solve(e: Engine, A: Secret, b: Secret, d: int, amax: float, floor: float,
           A_apx: Approx, b_apx: Approx) -> tuple[Secret, Approx]:
    """Solve A x = b (d x d, symmetric positive definite, G bits) by Gaussian elimination.

    Elimination step k (vectorised over the trailing block):
    1. p = max(A_kk, floor) (one comparison, one round); r = 1/p (`_inverse`).
    2. l_i = A_ik r for i > k (one round, one truncation).
    3. A_ij -= l_i A_kj and b_i -= l_i b_k for i, j > k (one round, one truncation).
    Back substitution, k = d-1 .. 0: x_k = (b_k - sum_(j>k) A_kj x_j) r_k (four rounds).
    Entries of the trailing blocks stay within amax (Schur complements of a positive
    definite matrix), multipliers within sqrt(amax / floor); errors are propagated with
    `Approx`, worst case. Returns x and Approx(max |x|, max error).
    """
    unit = 2.0**-G
    bits = bits_of(int(amax * 2**G) + 1)
    recips, recip_apx, rows, ys = [], [], [], []
    A_cur, b_cur = A, b
    a_apx, bb = A_apx, b_apx
    lmax = float(np.sqrt(amax / floor))
    for k in range(d):
        m = d - k - 1
        piv = _floor(e, A_cur[0:1, 0].reshape(1), round(floor * 2**G), bits)
        r, rho = _inverse(e, piv, floor, amax)
        # |1/p' - 1/p| <= |p' - p| / floor^2, plus the relative error of r
        r_apx = Approx(1 / floor, a_apx.err / floor**2 + rho.err / floor)
        recips.append(r)
        recip_apx.append(r_apx)
        rows.append(A_cur[0, 1:])
        ys.append(b_cur[0:1])
        if m == 0:
            break
        col = A_cur[1:, 0]
        (lk,) = trunc_many(e, [e.mul(col, r.broadcast_to(m))], [G])
        l_apx = Approx(lmax, (a_apx * r_apx).plus(unit).err)
        top = A_cur[0, 1:]
        outer, lb = e.mul_many([(lk.reshape(m, 1).broadcast_to(m, m),
                                 top.reshape(1, m).broadcast_to(m, m)),
                                (lk, b_cur[0:1].broadcast_to(m))])
        outer, lb = trunc_many(e, [outer, lb], [G, G])
        A_cur = A_cur[1:, 1:] - outer
        b_cur = b_cur[1:] - lb
        a_apx = Approx(amax, (a_apx + (l_apx * a_apx).plus(unit)).err)
        bb = (bb + (l_apx * bb).plus(unit))
    # back substitution
    xs: list[Secret] = []
    x_apx = Approx(0.0, 0.0)
    row_apx = Approx(amax, a_apx.err)
    for k in reversed(range(d)):
        y = ys[k]
        if xs:
            known = join(list(reversed(xs)), axis=0)
            (s,) = trunc_many(e, [e.dot(rows[k], known)], [G])
            y = y - s.reshape(1)
            y_apx = bb + (row_apx * x_apx) * len(xs)
        else:
            y_apx = bb
        (xk,) = trunc_many(e, [e.mul(y, recips[k])], [G])
        xk_apx = (y_apx * recip_apx[k]).plus(unit)
        xs.append(xk)
        x_apx = Approx(max(x_apx.mag, xk_apx.mag), max(x_apx.err, xk_apx.err))
    return join(list(reversed(xs)), axis=0), x_apx


# ---------------------------------------------------------------------- k-means


@dataclass
class Clusters:
    """Centroids (k, d) and cluster sizes (k,) after the last Lloyd iteration."""

    centroids: Bounded
    sizes: Bounded


def kmeans(e: Engine, x: Secret, ranges: Sequence[Range], init: np.ndarray | Secret,
           iterations: int, f: int = FRAC) -> Clusters:
    """Lloyd's algorithm with public k, a public number of iterations and given centroids.

    `init` is (k, d): public reals, or a Secret of fixed-point encodings. One iteration:
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
        k = init.shape[0]
        mu = init - np.ascontiguousarray(np.broadcast_to(mid_pub, (k, d, 2)))
    else:
        init = np.asarray(init, dtype=np.float64)
        k = init.shape[0]
        codes = np.rint(init * 2**f).astype(np.int64) - np.array(mids)
        mu = e.constant(e.field.from_int64(codes))
    if mu.shape != (k, d):
        raise ValueError(f"kmeans: initial centroids must be (k, {d}), got {mu.shape}")
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
    var = _floor(e, var, round(floor_v * 2**G), bits_of(n << (G + 1)))
    # 4. t, with U_g = B u_g for B = 2^b >= n (b even): truncated with b more bits
    b = _boost(n)
    (U,) = trunc_many(e, [e.mul(var, inv_n)], [COUNT_RECIPROCAL - b])
    se2 = U[0:1] + U[1:2]
    se = _sqrt_g(e, se2, 2.0 * (1 << b))
    inv_se, _ = _inverse(e, se, bounds["se_low"], float(np.sqrt(2.0 * (1 << b))))
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
    den = _floor(e, den, round(bounds["den_low"] * 2**G), bits_of(2 << G))
    inv_den, den_rho = _inverse(e, den, bounds["den_low"], 1.0)
    dof_out, dof_units = scale_public(e, inv_den, int(2**G / bounds["den_low"]) + 1, 1 << f, 1,
                                      G, "ttest", "dof")
    dof_err = bounds["dof_err"] + den_rho.err / bounds["den_low"] + dof_units * 2.0**-f
    return TTest(Bounded(t_out.reshape(), bounds["t_err"] + t_units * 2.0**-f,
                         as_range(bounds["t_top"]), f),
                 Bounded(dof_out.reshape(), dof_err, Range(1, 2 * (n + 1)), f))


COUNT_RECIPROCAL = 44
"""Fractional bits of 1/n_g in `ttest`: a product with a value of at most n_g 2^G stays
below 2^(G + 45), and the reciprocal keeps g = 40 bits of relative precision."""

SQRT_RESULT_BITS = 43
"""`functions.sqrt` must return encodings below 2^44 (see moments.SQRT_RESULT_BITS)."""


def _boost(n: int) -> int:
    """The even b with 2^b >= n of `ttest`'s step 4."""
    b = max(1, n - 1).bit_length()
    return b + b % 2


def _sqrt_g(e: Engine, v: Secret, top: float) -> Secret:
    """sqrt of a G-bit value in [0, top] as a G-bit value.

    `functions.sqrt` with f = 16 reads v 4^t (exact) as the real v 2^(G - 16 + 2t); its
    root, with 16 fractional bits, is sqrt(v) with 16 + (G - 16) / 2 + t bits; t is the
    largest that keeps that root below 2^43. Error: 2 units of its last place + a
    relative 2^-36 + 1 unit of 2^-G (the final truncation).
    """
    base = 16 + (G - 16) // 2
    t = SQRT_RESULT_BITS - base - bits_of(int(np.sqrt(top)) + 1)
    root = functions.sqrt(e, v * (1 << (2 * t)), 16,
                          bits=bits_of(int(top * 2 ** (G + 2 * t)) + 1))
    (out,) = trunc_many(e, [root], [base + t - G])
    return out


def _sqrt_g_error(top: float) -> float:
    base = 16 + (G - 16) // 2
    t = SQRT_RESULT_BITS - base - bits_of(int(np.sqrt(top)) + 1)
    return 2 * 2.0 ** -(base + t) + 2.0**-36 * np.sqrt(top) + 2.0**-G


def _ttest_bounds(n: int, s_err: float, q_err: float, floor_v: float) -> dict[str, float]:
    """Worst-case errors of `ttest`, maximised over the group sizes 2 <= c <= n + 2.

    Standardised, |S~| <= c, |Q~| <= c, |mean| <= 1, v in [floor_v, c / (c - 1)], and
    d(c) = 2^(1-F) + 2^-37 / c bounds the error of a reciprocal of c with F = 44 bits.
    Absolute errors, u = 2^-G: mean c d(c) + s_err (1/c + d) + 2^-F; S~ mean
    c e_mean + s_err (1 + e_mean) + u; v c d(c-1) + (q_err + e_sm)(1/(c-1) + d) + 2^-F;
    U = B v / c: B (2 d(c) + e_v (1/c + d)) + u. Then relative errors: U >= B floor_v / c,
    se'^2 = U_1 + U_0 >= 4 B floor_v / (n + 2); se' from `_sqrt_g`; 1/se' from `_inverse`;
    t = 2^(b/2) diff / se'; a_g = U_g / se'^2 in [0, 1]; den = sum a_g^2 / (c_g - 1) >=
    1 / (2 (n + 1)) (a_1 + a_0 = 1); dof = 1 / den.
    """
    unit = 2.0**-G
    F = 2.0**-COUNT_RECIPROCAL
    c = np.arange(2, n + 3, dtype=np.float64)
    g = min(functions.G, 84 - (COUNT_RECIPROCAL - 1))

    def d(k: np.ndarray) -> np.ndarray:
        return 2 * F + 2.0 ** -(g - 3) / k

    e_mean = c * d(c) + s_err * (1 / c + d(c)) + F
    e_sm = c * e_mean + s_err * (1 + e_mean) + unit
    e_var = c * d(c - 1) + (q_err + e_sm) * (1 / (c - 1) + d(c - 1)) + F
    B = 2.0 ** _boost(n)
    e_U = B * (2 * d(c) + e_var * (1 / c + d(c))) + unit
    rel_U = float(np.max(e_U / (B * floor_v / c)))
    se2_low = 4 * B * floor_v / (n + 2)
    rel_se2 = rel_U
    se_low = float(np.sqrt(se2_low * (1 - rel_se2))) - _sqrt_g_error(2 * B)
    rel_se = rel_se2 / 2 + _sqrt_g_error(2 * B) / se_low
    # _inverse's relative error with floor se_low and top sqrt(2n)
    g_r = min(functions.G, 84 - (G + RECIPROCAL_FIRST - 1))
    top = float(np.sqrt(2 * B))
    rho0 = 2.0 ** -(g_r - 3) + 2 * 2.0**-RECIPROCAL_FIRST * top
    rho = rho0**2 + unit * ((1 + rho0) / se_low + 1) * top
    rel_inv = rel_se + rho + rel_se * rho
    diff_err = 2 * float(np.max(e_mean))
    root_b = float(np.sqrt(B))
    t_top = root_b * 2 / se_low
    t_err = root_b * (diff_err / se_low + 2 / se_low * rel_inv) + unit
    # dof
    inv_top = 1 / se_low
    rel_a = rel_U + 2 * rel_inv + rel_inv**2
    abs_a = unit * inv_top * (1 + rel_inv) + unit
    rel_den = 2 * rel_a + rel_a**2 + float(np.max(d(c - 1) * (c - 1)))
    abs_den = 2 * (2 * abs_a + abs_a**2 + unit + F)
    den_low = 1 / (2 * (n + 1))
    if rel_den >= 0.5 or abs_den >= den_low / 2:
        raise ValueError(f"ttest: the variance floor {floor_v:.3g} (standardised) is too small "
                         f"for {n} rows to bound the error; raise min_std")
    den_low_computed = den_low * (1 - rel_den) - abs_den
    dof_err = (2 * (n + 1)) * (rel_den / (1 - rel_den)) + abs_den / (den_low * den_low_computed)
    return {"t_err": t_err, "t_top": t_top, "se_low": se_low, "den_low": den_low_computed,
            "dof_err": dof_err}
