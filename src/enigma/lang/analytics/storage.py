"""What storing the owner's values on the fixed-point grid adds to each result's error bound.

The owner writes x (a CSV cell, a DataFrame value); the network holds round(x 2^f) / 2^f,
off by at most delta = 2^-(f+1) per value (0 for integers, booleans and category codes,
which are stored exactly). Every analytics bound of this package is relative to the
*stored* values; the functions here bound how far the exact result on the stored values
can lie from the exact result on the written ones, from delta and public metadata alone
(ranges, row counts, the floors the library divides by). The bound a script reveals is the
sum of the two, so that |revealed - f(written data)| <= the revealed bound.

Why separate from the computation's error: the library reads a computation error of 0 as
"a column of the data" (moments, tests and regression start from exact integer sums of
codes), and storage rounding does not change that; it only moves the exact result, by the
amounts below. Every rule is worst case over all data in the ranges:

- linear aggregates: a sum moves by at most n delta, a mean (of any selection) by delta;
- order statistics (min, max, percentiles with linear interpolation) are 1-Lipschitz in
  the largest per-value change: delta;
- a standard deviation is a norm of the centred values, so by the triangle inequality it
  moves by at most |d - mean(d)| / sqrt(n - ddof) <= delta sqrt(n / (n - ddof)) (d the
  per-value changes); a variance by 2 cov(x, d) + var(d) <= 2 (W/2) delta + delta^2
  (Popoviciu: sd(x) <= W/2 for the range width W), times n / (n - ddof);
- a covariance by delta_x h_y + h_x delta_y + delta_x delta_y (h the half-widths), times
  n / (n - ddof);
- a correlation with floored spreads: each standardised vector moves by at most
  2 delta / floor, so r moves by at most 2 delta_x / floor_x + 2 delta_y / floor_y;
- t statistics: each (floored) spread moves relatively by at most rho =
  sqrt(2) delta / spread, the standard error likewise, the difference of means by
  2 delta (one sample: delta), so t moves by at most diff / se_min + t_top rho; Welch's
  dof, a ratio of two forms of degree 4 in the spreads, relatively by ((1+rho)/(1-rho))^4 - 1;
  the revealed difference of means by 2 delta and its standard error by at most
  delta sqrt(sum_g 1/(n_g - 1)) (`se_shift`), which the owner's bound of t uses;
- eta^2 = SSB / SST with SST floored at n spread^2: sqrt(SSB) and sqrt(SST) move by at
  most sqrt(n) delta, so eta^2 moves by at most 4 delta / spread;
- least squares (`least_squares_shift`): an exact identity of errors in the variables,
  b_w - b = (A_w + r)^-1 E' res + Z_w^+ (f - E b), bounds the move of the standardised
  coefficients by eps |res| / kappa_w + (rho_y + eps |b|) / sqrt(kappa_w) (eps the
  features' rounding over their scales, kappa_w the written data's eigenvalue floor):
  nothing grows with n, and the stored fit's own |res|, |b| and kappa (worst case, or
  what the owner reads from the revealed values) make it tight.

Decisions (comparisons, filters, histogram bins, k-means assignments) are taken on the
stored values: a written value within delta of a threshold or bin edge may fall on the
other side. When the edges are on the grid and the written values have few decimals
(d <= 4 places at f = 16, so that two distinct values are more than 2 delta apart), no
value can cross, and such results are exact; otherwise they are exact for data within
delta of the written data (docs/analytics.md, "Storage rounding").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SQRT2 = math.sqrt(2.0)


def storage_rounding(f: int, integer: bool) -> float:
    """The largest |stored - written| of one value of a column with f fractional bits."""
    return 0.0 if integer or f <= 0 else 2.0 ** -(f + 1)


def type_rounding(types: Sequence[Any]) -> list[float]:
    """`storage_rounding` of each column as its checked type says (its kind's frac_bits;
    only a fixed kind is rounded): what the owner and the checker know of a fit's columns."""
    return [storage_rounding(t.kind.frac_bits, t.kind.name != "fixed") for t in types]


def ddof_factor(n: int, ddof: int) -> float:
    """n / (n - ddof), the most a ddof correction multiplies by (2 when n - ddof may be 1)."""
    return n / (n - ddof) if n > ddof + 1 else 2.0


def sum_shift(n: int, delta: float) -> float:
    """A sum of at most n stored values against the written ones."""
    return n * delta


def variance_shift(width: float, delta: float, factor: float = 1.0) -> float:
    """A variance of values in a range of this width (factor: the ddof correction)."""
    return factor * (width * delta + delta * delta)


def std_shift(delta: float, factor: float = 1.0) -> float:
    """A standard deviation (factor: the ddof correction of the variance)."""
    return math.sqrt(factor) * delta


def cov_shift(half_x: float, delta_x: float, half_y: float, delta_y: float,
              factor: float = 1.0) -> float:
    """A covariance of two columns with these half-widths (factor: the ddof correction)."""
    return factor * (delta_x * half_y + half_x * delta_y + delta_x * delta_y)


def corr_shift(delta_x: float, floor_x: float, delta_y: float, floor_y: float) -> float:
    """A correlation whose standard deviations are floored at floor_x, floor_y (at most 2)."""
    if not (delta_x or delta_y):
        return 0.0
    return min(2.0, 2 * delta_x / floor_x + 2 * delta_y / floor_y)


def t_shift(delta: float, spread: float, n: int, t_top: float, samples: int = 2) -> float:
    """A t statistic (Welch, Student or one sample) of groups of at most n values whose
    standard deviations are floored at `spread`, |t| <= t_top."""
    if not delta:
        return 0.0
    rho = SQRT2 * delta / spread
    se_min = spread * math.sqrt((2.0 if samples == 2 else 1.0) / n)
    return samples * delta / se_min + t_top * rho


def difference_shift(delta: float, samples: int = 2) -> float:
    """A difference of two means (one sample: a mean minus a public constant)."""
    return samples * delta


def se_shift(delta: float, sizes: tuple[int | None, ...], pooled: bool = False) -> float:
    """The standard error of a t-test's numerator (the `se` a t-test reveals), for samples
    of these sizes (None: private, at least 2). Welch: r_g = s_g / sqrt(n_g) moves by at
    most delta / sqrt(n_g - 1) (s_g, a norm of centred values over sqrt(n_g - 1), by at most
    delta sqrt(n_g / (n_g - 1))), so se = |(r_1, r_0)| by at most delta sqrt(sum 1/(n_g - 1));
    Student: the pooled spread by delta sqrt(N / (N - 2)), times sqrt(1/n_1 + 1/n_0); one
    sample: delta / sqrt(n - 1). Flooring a spread is 1-Lipschitz and changes none of it."""
    if not delta:
        return 0.0
    n = [2 if s is None else max(int(s), 2) for s in sizes]
    if len(n) == 1:
        return delta / math.sqrt(n[0] - 1)
    if not pooled:
        return delta * math.sqrt(sum(1 / (k - 1) for k in n))
    total = sum(n) if None not in sizes else 4  # N / (N - 2) is largest at N = 4
    return delta * math.sqrt(total / (total - 2)) * math.sqrt(sum(1 / k for k in n))


def dof_shift(delta: float, spread: float, dof_top: float) -> float:
    """Welch's degrees of freedom (at most dof_top) from spreads floored at `spread`."""
    if not delta:
        return 0.0
    rho = SQRT2 * delta / spread
    if rho >= 1:
        return dof_top
    return min(dof_top, dof_top * (((1 + rho) / (1 - rho)) ** 4 - 1))


def eta2_shift(delta: float, spread: float) -> float:
    """eta^2 = SSB / SST with SST floored at n spread^2 (at most 1)."""
    return min(1.0, 4 * delta / spread) if delta else 0.0


@dataclass(frozen=True)
class FitShift:
    """How far a least-squares fit on the stored data may lie from the fit on the written
    data, in standardised units (`least_squares_shift`); inf where nothing is bounded."""

    coef: float
    """|b~_w - b~|_2 of the standardised slopes b~_i = coef_i s_i / s_y."""
    intercept: float
    """|c_w - c| / s_y of the intercept (0 without one)."""
    resid: float
    """|u_w - u|, u = sqrt(R~) the residual norm over sqrt(n) s_y."""
    r2: float
    """|R^2_w - R^2| (at most 1)."""
    se_abs: float
    """Slope j's standard error moves by at most fact_j G_j se_abs + se_rel se_j, with
    fact_j = (s_y / s_j) / sqrt(dof), G_j >= sqrt(((A + r)^-1)_jj) and se_j the stored
    data's exact standard error."""
    se_rel: float
    se0: float
    """The intercept's standard error moves by at most h_y se0 / sqrt(dof)."""


def least_squares_shift(eps: float, rho_y: float, kappa: float, ridge: float = 0.0, *,
                        resid: float = 1.0, norm_b: float | None = None,
                        norm_y: float = 1.0, lever: float | None = None,
                        q_top: float | None = None, r2_spread: float = 0.5,
                        d: int = 1) -> FitShift:
    """Least squares (or ridge) on standardised columns, written data against stored data.

    Z (n x d) the features over their scales s_j and y over s_y (centred with an intercept),
    both over sqrt(n), so that A = Z'Z. The owner wrote Z + E and y + f, every value within
    its storage rounding delta: |E|_2 <= |E|_F <= eps = sqrt(sum_j (delta_j / s_j)^2) and
    |f| <= rho_y = delta_y / s_y (centring is a projection: it shrinks both).

    What the caller proves (worst case from public facts, or a posteriori from revealed
    values): kappa <= lambda_min(A + ridge I); `resid` >= u = |y - Z b~| (<= 1 always);
    `norm_b` >= |b~| (default 1 / sqrt(kappa): kappa |b~|^2 <= b~'(A + r) b~ <= |y|^2 <= 1);
    `norm_y` <= |y| = sqrt(A_yy) (a lower bound, for R^2); with an intercept `lever` >=
    |z-bar| (the standardised means of the stored features) and optionally `q_top` >= 1 + q,
    q = z-bar' (A + r)^-1 z-bar (else 1 + (lever + eps)^2 / kappa_w). Without an intercept
    pass lever=None.

    1. kappa_w = ridge + (sqrt(kappa - ridge) - eps)^2 <= lambda_min(A_w + r): Weyl on the
       singular values of Z.
    2. (A_w + r)(b_w - b) = Z_w'(y_w - Z_w b) - r b = E' res + Z_w'(f - E b), an exact
       identity since Z' res = r b. |(A_w + r)^-1 Z_w'| <= 1 / sqrt(kappa_w), so
       |b_w - b| <= eps u / kappa_w + (rho_y + eps |b|) / sqrt(kappa_w).
    3. The intercept is the first coefficient of the same identity on [1, Z_raw], whose
       first column is exact: row 0 of its inverse is (1 + q, -(A + r)^-1 z-bar), so
       |c~_w - c~| <= eps u sqrt(q_w / kappa_w) + sqrt(1 + q_w) (rho_y + eps |b|).
    4. u (the least residual; with a ridge also |Z| |b_w - b| <= sqrt(d) |b_w - b|) moves by
       at most rho_y + eps |b_w|. R^2 of least squares is cos^2 theta, theta the angle
       between y and the span of Z: y + f is within asin(rho_y / norm_y) of y, and every
       unit vector Z v / |Z v| of the span within asin(eps / sqrt(kappa)) of the written
       span (|E v| / |Z v| <= eps / sqrt(lambda_min)); angles to a set are 1-Lipschitz, so
       theta moves by at most phi, their sum, and cos^2 by phi (|sin 2 theta| + phi),
       |sin 2 theta| = 2 sqrt(R^2 (1 - R^2)) <= 2 `r2_spread`. With a ridge (b not the
       least squares fit) R^2 = 1 - (u / |y|)^2, u <= |y|: 2 (du + rho_y) / (norm_y -
       rho_y). Both capped at 1.
    5. se_j = fact_j u / g_j with g_j^2 = min_(v_j = 1) v'(A + r) v, whose minimiser has
       |v*| <= g_j / sqrt(kappa): g_j moves relatively by at most tau = eps / sqrt(kappa_w),
       so se_j by fact_j (du (1 + tau) + u tau) / g_j. The intercept's: g_0 = 1 /
       sqrt(1 + q) is the same minimum on [1, Z_raw] with v_0 = 1, the rest of v* of norm
       sqrt(q / kappa) / (1 + q) <= 1 / (2 sqrt(kappa)): g_0 moves by a = eps / (2
       sqrt(kappa_w)), and se_0 / (h_y / sqrt(dof)) = u / g_0 by du sqrt(1 + q_w) +
       u a sqrt((1 + q)(1 + q_w)).
    """
    inf = math.inf
    if not (eps or rho_y):
        return FitShift(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    kappa_w = ridge + max(math.sqrt(max(kappa - ridge, 0.0)) - eps, 0.0) ** 2
    if kappa_w <= 0 or kappa <= 0:
        return FitShift(inf, inf, inf, 1.0, inf, inf, inf)
    nb = 1 / math.sqrt(kappa) if norm_b is None else norm_b
    root = math.sqrt(kappa_w)
    db = eps * resid / kappa_w + (rho_y + eps * nb) / root
    du = rho_y + eps * (nb + db) + (math.sqrt(d) * db if ridge else 0.0)
    if ridge:
        r2 = min(1.0, 2 * (du + rho_y) / (norm_y - rho_y)) if norm_y > rho_y else 1.0
    else:
        phi = (math.asin(min(1.0, rho_y / norm_y)) if norm_y > 0 else math.pi / 2) \
            + math.asin(min(1.0, eps / math.sqrt(kappa)))
        r2 = min(1.0, phi * (2 * r2_spread + phi))
    tau = eps / root
    if lever is None:
        return FitShift(db, 0.0, du, r2, du * (1 + tau), tau, 0.0)
    a = eps / (2 * root)
    q_s = 1 + (lever + eps) ** 2 / kappa_w  # 1 + q, public (written and stored alike)
    q_w = q_s
    if q_top is not None and q_top < q_s:
        q_s = q_top
        g_w = 1 / math.sqrt(q_s) - a  # g_0 of the written data, at least
        q_w = min(q_w, 1 / g_w**2) if g_w > 0 else q_w
    icpt = eps * resid * math.sqrt((q_w - 1) / kappa_w) + math.sqrt(q_w) * (rho_y + eps * nb)
    se0 = du * math.sqrt(q_w) + resid * a * math.sqrt(q_s * q_w)
    return FitShift(db, icpt, du, r2, du * (1 + tau), tau, se0)
