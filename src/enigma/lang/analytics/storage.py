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
- least squares: the standardised normal equations' entries move by at most
  rho_i + rho_j + rho_i rho_j (rho = delta / scale), which the solver's backward-error
  analysis takes as more error in its inputs (`regression`).

Decisions (comparisons, filters, histogram bins, k-means assignments) are taken on the
stored values: a written value within delta of a threshold or bin edge may fall on the
other side. When the edges are on the grid and the written values have few decimals
(d <= 4 places at f = 16, so that two distinct values are more than 2 delta apart), no
value can cross, and such results are exact; otherwise they are exact for data within
delta of the written data (docs/analytics.md, "Storage rounding").
"""

from __future__ import annotations

import math

SQRT2 = math.sqrt(2.0)


def storage_rounding(f: int, integer: bool) -> float:
    """The largest |stored - written| of one value of a column with f fractional bits."""
    return 0.0 if integer or f <= 0 else 2.0 ** -(f + 1)


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


def normal_equations_shift(deltas: list[float], scales: list[float]) -> tuple[float, float]:
    """(entries, means): how far the standardised normal equations A_ij = cov_ij / (s_i s_j)
    (or second moments over s_i s_j without an intercept) and the standardised means
    mean_i / s_i move, for columns with storage roundings `deltas` and scales `scales`
    (half-widths with an intercept, magnitudes without; in the columns' units)."""
    rho = [d / s for d, s in zip(deltas, scales, strict=True)]
    top = max(rho) if rho else 0.0
    return 2 * top + top * top, top
