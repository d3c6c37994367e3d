"""Count, sum, mean, variance, standard deviation, covariance and correlation.

Every moment is computed from exact integer sums of the centred encodings
x' = round(x 2^f) - m (m the integer midpoint of the column's range): the sums
S = sum x' and the scatter N_ij = n sum x'_i x'_j - S_i S_j are exact in the
field, all pairs in one fused dot product (one round, whatever n and d).
Rounding enters only where a sum is divided: by the public n (one TruncPr
with a public multiplier, `precision.scale_public`), by a secret (the
reciprocal of `enigma.mpc.functions`) or under a square root.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from enigma.mpc import functions
from enigma.mpc.comparison import trunc
from enigma.mpc.engine import Engine
from enigma.mpc.fixed import FRAC
from enigma.mpc.secret import Secret
from enigma.mpc.select import join, lt

from .precision import (
    DEFAULT_SPREAD,
    TRUNC_BITS,
    Approx,
    Bounded,
    Range,
    as_range,
    bits_of,
    centered,
    columns,
    require,
    scale_public,
)

SQRT_RESULT_BITS = 44
"""Roots are kept below 2^44 (as encodings): two of them multiply in `corr` and the
product must stay within the 85 bits that truncation masks (with room for the scaling)."""

CORR_RECIPROCAL = 42
"""Fractional bits of 1 / (sd_i sd_j K) in `corr`: relative error 2^-24, absolute 2^-41."""

SQRT_EXTRA = 8
"""Extra fractional bits of a variance under a square root: sqrt of an error of 2^-(f+16)
is 2^-(f/2+8), one ulp at f = 16 rather than 256."""


def _result(x: Secret, single: bool) -> Secret:
    return x.reshape() if single else x


def count(e: Engine, mask: Secret, f: int = FRAC) -> Bounded:
    """How many rows a secret 0/1 mask selects (a `where` filter), as an exact fixed-point count.

    The row count of a whole table is public (n); this is the count of a
    private subset. Exact: error 0.
    """
    if len(mask.shape) != 1:
        raise ValueError(f"count: the mask must be a column (n,), got shape {mask.shape}")
    n = mask.shape[0]
    return Bounded(mask.sum() * (1 << f), 0.0, Range(0, n), f)


def sum(e: Engine, x: Secret, ranges: Range | Sequence[Range], f: int = FRAC) -> Bounded:
    """Column sums (local, exact: error 0). Refuses when n max|x| 2^f could reach 2^63."""
    x, rs, single = columns(x, ranges)
    n = x.shape[0]
    for r in rs:
        require("sum", "the sum of a column", n * max(abs(c) for c in r.codes(f)))
    mag = max(n * r.magnitude for r in rs)
    return Bounded(_result(x.sum(axis=0), single), 0.0, as_range(mag), f)


def mean(e: Engine, x: Secret, ranges: Range | Sequence[Range], f: int = FRAC) -> Bounded:
    """Column means for the public row count n.

    1. x' = x - m per column (local), S = sum x' (local).
    2. mean' = S / n by `scale_public` (one round), mean = mean' + m.
    Error: one ulp per limb of the multiplier (`scale_public`; one limb while
    n w < 2^38, w = max |x'|) + n w 2^-(P+1) ulp with P = bits(n w) + 8: below 1.004 ulp.
    """
    x, rs, single = columns(x, ranges)
    n = x.shape[0]
    xc, mids, widths = centered(e, x, rs, f)
    w = max(widths)
    out, err = scale_public(e, xc.sum(axis=0), n * w, 1, n, 0, "mean", "the column sum")
    mids_f = e.field.from_ints(mids)
    lo, hi = min(r.lo for r in rs), max(r.hi for r in rs)
    return Bounded(_result(out + mids_f, single), err * 2.0**-f, Range(lo, hi), f)


def _scatter(e: Engine, xc: Secret, left: np.ndarray, right: np.ndarray) -> Secret:
    """N_p = n sum_r x'_{r,i} x'_{r,j} - S_i S_j for pairs p = (left[p], right[p]), one round.

    One fused dot over n + 1 rows: the rows (x'_i, n x'_j) and a last row (S_i, -S_j).
    """
    n = xc.shape[0]
    s = xc.sum(axis=0)
    P = len(left)
    a = join([xc[:, left], s[left].reshape(1, P)], axis=0)
    b = join([xc[:, right] * n, (-s[right]).reshape(1, P)], axis=0)
    return e.dot(a, b, axis=0)


def _variances(e: Engine, x: Secret, rs: list[Range], ddof: int, extra: int, f: int,
               func: str) -> tuple[Secret, float, list[int]]:
    """Variances with f + extra fractional bits; their error in those units; the bounds |x'|."""
    n = x.shape[0]
    if n - ddof <= 0:
        raise ValueError(f"{func}: {n} rows leave no degrees of freedom with ddof={ddof}")
    xc, _, widths = centered(e, x, rs, f)
    idx = np.arange(len(rs))
    N = _scatter(e, xc, idx, idx)
    w = max(widths)
    require(func, "n^2 times the squared half-range of the codes", n * n * w * w, TRUNC_BITS - 1)
    v, err = scale_public(e, N, n * n * w * w, 1, n * (n - ddof), f - extra, func,
                          "the scatter n sum x^2 - (sum x)^2")
    return v, err, widths


def variance(e: Engine, x: Secret, ranges: Range | Sequence[Range], ddof: int = 0,
             f: int = FRAC) -> Bounded:
    """Column variances sum (x - mean)^2 / (n - ddof), numpy's `var` (ddof = 0 by default).

    1. N = n sum x'^2 - (sum x')^2, exact (one fused dot, one round).
    2. var = N / (n (n - ddof) 2^f) by `scale_public` (one round).
    Error: one ulp per limb of the multiplier (`scale_public`: 2 or 3 for
    n^2 w^2 near 2^60) + 2^-8 ulp. Needs n^2 w^2 < 2^80 (w = max |x'|).
    """
    x, rs, single = columns(x, ranges)
    v, err, widths = _variances(e, x, rs, ddof, 0, f, "variance")
    n = x.shape[0]
    top = max(widths) ** 2 * 2.0 ** (-2 * f) * n / (n - ddof)
    return Bounded(_result(v, single), err * 2.0**-f, Range(0, top), f)


def _sqrt_extra(e: Engine, top: float, f: int) -> int:
    """Extra bits of a variance of at most `top` under a square root (see SQRT_EXTRA)."""
    extra = SQRT_EXTRA
    while extra > 0 and (bits_of(int(np.sqrt(top) * 2 ** (f + extra))) > SQRT_RESULT_BITS
                         or bits_of(int(top * 2 ** (f + 2 * extra))) > 62):
        extra -= 1
    return extra


def _roots(e: Engine, v: Secret, top: float, extra: int, f: int, func: str) -> Secret:
    """sqrt of variances with f + 2 extra bits, as encodings with f + extra bits.

    `functions.sqrt` reads v as an f-bit encoding of var 2^(2 extra) and returns
    sqrt(var) 2^extra with f bits: sqrt(var) with f + extra bits.
    """
    bits = bits_of(int(top * 2 ** (f + 2 * extra)) + 1)
    require(func, "the root of the variance", int(np.sqrt(top) * 2 ** (f + extra)) + 1,
            SQRT_RESULT_BITS)
    return functions.sqrt(e, v, f, bits=bits)


def std(e: Engine, x: Secret, ranges: Range | Sequence[Range], ddof: int = 0,
        f: int = FRAC) -> Bounded:
    """Column standard deviations, numpy's `std`.

    1. Variances with f + 2t fractional bits, t <= 8 (two rounds, as `variance`).
    2. `functions.sqrt` on them read as f-bit numbers: sqrt(var) with f + t bits.
    3. TruncPr by t (one round).
    Error: sqrt(e_v) for the variance's error e_v (about 3 units of 2^-(f+2t)), plus
    `functions.sqrt`'s 2 units of 2^-(f+t) + a relative 2^-36, plus 1 ulp (step 3):
    below 2.8 ulp at f = 16, t = 8.
    """
    x, rs, single = columns(x, ranges)
    n = x.shape[0]
    top = max(r.width for r in rs) ** 2 / 4 * n / max(n - ddof, 1) + 2.0**-f
    extra = _sqrt_extra(e, top, f)
    v, err, _ = _variances(e, x, rs, ddof, 2 * extra, f, "std")
    root = _roots(e, v, top, extra, f, "std")
    out = trunc(e, root, extra, bits=TRUNC_BITS) if extra else root
    var = Approx(top, err * 2.0 ** -(f + 2 * extra))
    sd = var.sqrt().plus(2 * 2.0 ** -(f + extra) + 2.0**-36 * np.sqrt(top)).plus(2.0**-f)
    return Bounded(_result(out, single), sd.err, Range(0, np.sqrt(top)), f)


def _pairs(d: int) -> tuple[np.ndarray, np.ndarray]:
    left, right = np.triu_indices(d)
    return left, right


def _square(e: Engine, values: Secret, d: int) -> Secret:
    """A symmetric (d, d) secret from its upper triangle (pairs in `_pairs` order)."""
    left, right = _pairs(d)
    where = np.zeros((d, d), dtype=np.int64)
    where[left, right] = np.arange(len(left))
    where[right, left] = np.arange(len(left))
    return values[where]


def cov(e: Engine, x: Secret, ranges: Sequence[Range], ddof: int = 1,
        f: int = FRAC) -> Bounded:
    """The (d, d) covariance matrix of the columns of x (n, d), numpy's `cov(x.T)` (ddof = 1).

    1. N_ij = n sum x'_i x'_j - S_i S_j for i <= j, exact (one fused dot).
    2. cov = N / (n (n - ddof) 2^f) by `scale_public` (one round).
    Error: one ulp per limb of the multiplier (2 or 3) + 2^-8 ulp.
    """
    x, rs, _ = columns(x, ranges)
    n, d = x.shape
    if n - ddof <= 0:
        raise ValueError(f"cov: {n} rows leave no degrees of freedom with ddof={ddof}")
    xc, _, widths = centered(e, x, rs, f)
    left, right = _pairs(d)
    return _cov(e, _scatter(e, xc, left, right), n, rs, list(widths), ddof, f)


def scatter_sums(e: Engine, x: Secret, ranges: Sequence[Range], f: int = FRAC) -> Secret:
    """Exact sums of some rows that add over chunks: S_i = sum x'_i, then Q_p = sum x'_i x'_j
    for the pairs of `_pairs(d)` (one fused dot). `cov_from_sums` and `corr_from_sums`
    finish on the sums of all chunks (network reduction)."""
    x, rs, _ = columns(x, ranges)
    xc, _, _ = centered(e, x, rs, f)
    left, right = _pairs(x.shape[1])
    s = xc.sum(axis=0)
    return join([s, e.dot(xc[:, left], xc[:, right], axis=0)], axis=0)


def _scatter_from_sums(e: Engine, sums: Secret, n: int, d: int) -> Secret:
    """N_p = n Q_p - S_i S_j (one product, exact) from `scatter_sums` of n rows."""
    left, right = _pairs(d)
    if sums.shape != (d + len(left),):
        raise ValueError(f"scatter sums of shape {sums.shape} for {d} columns")
    S, Q = sums[:d], sums[d:]
    return Q * n - e.mul(S[left], S[right])


def cov_from_sums(e: Engine, sums: Secret, n: int, ranges: Sequence[Range], ddof: int = 1,
                  f: int = FRAC) -> Bounded:
    """`cov` of n rows from their `scatter_sums` (added over chunks)."""
    rs = list(ranges)
    if n - ddof <= 0:
        raise ValueError(f"cov: {n} rows leave no degrees of freedom with ddof={ddof}")
    widths = [r.center(f)[1] for r in rs]
    return _cov(e, _scatter_from_sums(e, sums, n, len(rs)), n, rs, widths, ddof, f)


def corr_from_sums(e: Engine, sums: Secret, n: int, ranges: Sequence[Range],
                   min_std: float | Sequence[float] | None = None, f: int = FRAC) -> Bounded:
    """`corr` of n rows from their `scatter_sums` (added over chunks)."""
    rs = list(ranges)
    widths = [r.center(f)[1] for r in rs]
    N = _scatter_from_sums(e, sums, n, len(rs))
    return _corr(e, N, n, rs, widths, _floors(rs, min_std), f)


def _cov(e: Engine, N: Secret, n: int, rs: list[Range], widths: list[int], ddof: int,
         f: int) -> Bounded:
    """Step 2 of `cov` from the exact scatter N."""
    d = len(rs)
    w = max(widths)
    require("cov", "n^2 times the squared half-range of the codes", n * n * w * w,
            TRUNC_BITS - 1)
    c, err = scale_public(e, N, n * n * w * w, 1, n * (n - ddof), f, "cov", "the scatter")
    top = max(r.width for r in rs) ** 2 / 4 * n / (n - ddof)
    return Bounded(_square(e, c, d), err * 2.0**-f, as_range(top), f)


def corr(e: Engine, x: Secret, ranges: Sequence[Range], min_std: float | Sequence[float] | None
         = None, f: int = FRAC) -> Bounded:
    """The (d, d) correlation matrix, numpy's `corrcoef(x.T)`.

    A correlation divides by standard deviations, and no error bound holds for
    a spread near zero; each column's standard deviation is therefore floored
    at a public `min_std` (default: its range width / 256). Above the floor
    the result is the correlation; a column below it is treated as if its
    spread were the floor (its correlations shrink towards 0).
    1. N_ij for i <= j, exact (one fused dot).
    2. Variances with f + 2t bits (one round).
    3. var_i = max(var_i, min_std_i^2) (one comparison, one round).
    4. sd_i = sqrt(var_i) with f + t bits (`functions.sqrt`).
    5. With K_ij = 1 / (min_std_i min_std_j): c_ij = cov_ij K_ij and
       b_ij = sd_i sd_j K_ij >= 1 with f bits (two rounds).
    6. corr_ij = c_ij / b_ij: `functions.reciprocal` with 42 bits, one product; the
       diagonal is 1.
    Error: relative errors of the floored sds and of b add up (worst case over the
    ranges and floors), plus the reciprocal's 2 units of 2^-42 + relative 2^-24.
    """
    x, rs, _ = columns(x, ranges)
    n, d = x.shape
    floors = _floors(rs, min_std)
    xc, _, widths = centered(e, x, rs, f)
    left, right = _pairs(d)
    return _corr(e, _scatter(e, xc, left, right), n, rs, list(widths), floors, f)


def _corr(e: Engine, N: Secret, n: int, rs: list[Range], widths: list[int],
          floors: list[float], f: int) -> Bounded:
    """Steps 2-6 of `corr` from the exact scatter N."""
    d = len(rs)
    left, right = _pairs(d)
    w = max(widths)
    require("corr", "n^2 times the squared half-range of the codes", n * n * w * w,
            TRUNC_BITS - 1)
    top = max(r.width for r in rs) ** 2 / 4 + 2.0**-f
    extra = _sqrt_extra(e, top, f)
    diag = np.flatnonzero(left == right)
    off = np.flatnonzero(left != right)
    v, v_err = scale_public(e, N[diag], [n * n * wi * wi for wi in widths], 1, n * n,
                            f - 2 * extra, "corr", "the scatter")
    floor_codes = e.field.from_ints([round(fl * fl * 2 ** (f + 2 * extra)) for fl in floors])
    widest = max(top, *(fl * fl for fl in floors)) * 2 ** (f + 2 * extra)
    low = lt(e, v, floor_codes, bits=bits_of(int(widest) + 1))
    v = v + e.mul(low, (-v) + floor_codes)
    sd = _roots(e, v, top, extra, f, "corr")  # f + extra bits
    if not len(off):
        return Bounded(_square(e, _ones(e, 1, f), 1), 0.0, Range(-1, 1), f)
    # normalise every pair by K = 1 / (floor_i floor_j): the denominator is then >= 1
    K = [1.0 / (floors[i] * floors[j]) for i, j in zip(left[off], right[off], strict=True)]
    sd_top = [max(col.width / 2, fl) for col, fl in zip(rs, floors, strict=True)]
    tops = [sd_top[i] * sd_top[j] * k for i, j, k in zip(left[off], right[off], K,
                                                           strict=True)]
    pair_w = [widths[i] * widths[j] * n * n for i, j in zip(left[off], right[off], strict=True)]
    c, c_err = scale_public(e, N[off], pair_w, K, n * n, f, "corr", "the scatter")
    sd_prod = e.mul(sd[left[off]], sd[right[off]])
    sd_tops = [int(sd_top[i] * sd_top[j] * 2 ** (2 * f + 2 * extra)) + 1
               for i, j in zip(left[off], right[off], strict=True)]
    b, b_err = scale_public(e, sd_prod, sd_tops, K, 1, f + 2 * extra, "corr",
                            "the product of two standard deviations")
    b_top = int(max(tops) * 2**f) + 1
    r = functions.reciprocal(e, b, f, bits=bits_of(b_top), out_frac=CORR_RECIPROCAL)
    require("corr", "a normalised covariance times a reciprocal",
            b_top << (CORR_RECIPROCAL + 1), TRUNC_BITS - 1)
    q = trunc(e, e.mul(c, r), CORR_RECIPROCAL, bits=TRUNC_BITS)
    sds = [_sd_bound(top_i, err_i * 2.0 ** -(f + 2 * extra), fl, f, extra)
           for top_i, err_i, fl in zip(sd_top, v_err, floors, strict=True)]
    g = min(functions.G, 84 - (f + CORR_RECIPROCAL - 1))
    errs = []
    for p, (i, j) in enumerate(zip(left[off], right[off], strict=True)):
        # b = sd_i sd_j K >= 1: relative errors of the floored sds add up (worst case)
        rel_b = ((1 + sds[i].err / floors[i]) * (1 + sds[j].err / floors[j]) - 1
                 + b_err[p] * 2.0**-f)
        delta_a = c_err[p] * 2.0**-f
        ratio = (delta_a + rel_b) / (1 - rel_b)  # |a'/b' - a/b| with |a/b| <= 1, b >= 1
        recip = (tops[p] + delta_a) * 2 * 2.0**-CORR_RECIPROCAL + (1 + ratio) * 2.0 ** -(g - 3)
        errs.append(ratio + recip + 2.0**-f)
    err = np.zeros((d, d))
    err[left[off], right[off]] = errs
    err[right[off], left[off]] = errs
    full = join([_ones(e, 1, f), q], axis=0)
    order = np.zeros(len(left), dtype=np.int64)
    order[off] = np.arange(1, len(off) + 1)
    return Bounded(_square(e, full[order], d), err, Range(-1, 1), f)


def _sd_bound(top_sd: float, var_err: float, floor: float, f: int, extra: int) -> Approx:
    """A floored standard deviation: the variance's error under `functions.sqrt` (2 units of
    2^-(f+extra) + a relative 2^-36)."""
    root = Approx(top_sd**2, var_err).sqrt(floor**2)
    return Approx(top_sd, root.err + 2 * 2.0 ** -(f + extra) + 2.0**-36 * top_sd)


def _ones(e: Engine, count: int, f: int) -> Secret:
    return e.constant(e.field.from_ints([1 << f] * count))


def _floors(rs: list[Range], min_std: float | Sequence[float] | None) -> list[float]:
    if min_std is None:
        floors = [r.width * DEFAULT_SPREAD for r in rs]
    elif isinstance(min_std, int | float):
        floors = [float(min_std)] * len(rs)
    else:
        floors = [float(s) for s in min_std]
    if len(floors) != len(rs) or any(not fl > 0 for fl in floors):
        raise ValueError(f"min_std must be positive, one per column ({len(rs)}), got {min_std}")
    return floors
