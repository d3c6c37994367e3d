"""Minimum, maximum, median and percentiles of secret columns.

min and max are tournaments (`enigma.mpc.select`): ceil(log2 n) levels of one
batched comparison and one round of products. Percentiles sort the column
with Batcher's network (`enigma.mpc.sorting`) and take public positions of
the sorted column; numpy's default linear interpolation between the two
neighbours of a fractional position is a product with public weights.
Comparisons look at differences of encodings, which lie within the column's
range: their bit bound comes from the range, not from the engine's 64 bits. They
compare the codes at the column's own scale `f_in` (0 for an int column: an age
in [20, 61] compares on 7 bits, not 23) and lift the result to `f` afterwards,
exactly (a public power of two).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from enigma.mpc import select
from enigma.mpc.comparison import at_least_many, eqz
from enigma.mpc.engine import Engine
from enigma.mpc.fixed import FRAC
from enigma.mpc.secret import Secret
from enigma.mpc.select import join
from enigma.mpc.sorting import sort

from .precision import Bounded, Range, bits_of, columns, scale_public

WEIGHT_BITS = 40
"""Fractional bits of the public interpolation weights of a percentile."""


def _compare_bits(rs: list[Range], f: int) -> int:
    """Bits of the difference of two encodings of the same column (sign included)."""
    return bits_of(builtins.max(hi - lo for lo, hi in (r.codes(f) for r in rs)) + 1)


def _lift(x: Secret, f_in: int | None, f: int) -> Secret:
    """Codes at scale f_in as codes at scale f >= f_in (local and exact)."""
    if f_in is None or f_in == f:
        return x
    if f_in > f:
        raise ValueError(f"cannot lift codes of {f_in} fractional bits to {f}")
    return x * (1 << (f - f_in))


def _extreme(e: Engine, x: Secret, ranges: Range | Sequence[Range], largest: bool,
             f: int, f_in: int | None) -> Bounded:
    x, rs, single = columns(x, ranges)
    bits = _compare_bits(rs, f if f_in is None else f_in)
    reduce = select.max if largest else select.min
    out = _lift(reduce(e, x, axis=0, bits=bits), f_in, f)
    lo, hi = builtins.min(r.lo for r in rs), builtins.max(r.hi for r in rs)
    return Bounded(out.reshape() if single else out, 0.0, Range(lo, hi), f)


def min(e: Engine, x: Secret, ranges: Range | Sequence[Range], f: int = FRAC,
        f_in: int | None = None) -> Bounded:
    """Column minima (exact: error 0); ceil(log2 n) levels of 6 rounds. x's codes have
    `f_in` fractional bits (default f), the result f."""
    return _extreme(e, x, ranges, False, f, f_in)


def max(e: Engine, x: Secret, ranges: Range | Sequence[Range], f: int = FRAC,
        f_in: int | None = None) -> Bounded:
    """Column maxima (exact: error 0); as `min`."""
    return _extreme(e, x, ranges, True, f, f_in)


def percentile(e: Engine, x: Secret, col: Range, q: float | Sequence[float],
               f: int = FRAC, f_in: int | None = None) -> Bounded:
    """numpy's `percentile(x, q)` (linear method) of one column, for one or several q.

    1. Sort x with Batcher's odd-even merge network (log2 n (log2 n + 1) / 2
       layers of 6 rounds; comparisons on bits(range width) bits at x's own scale
       `f_in`, default f), then lift the keys to f.
    2. For each q: position p = q/100 (n - 1), i = floor(p), t = p - i (public).
    3. Result = x_(i) + t (x_(i+1) - x_(i)): one TruncPr of the difference times
       round(t 2^40), all q in one round.
    Error: 0 when every t is 0, else below 1 ulp + width 2^-41.
    """
    if len(x.shape) != 1:
        raise ValueError(f"percentile: takes one column (n,), got shape {x.shape}")
    qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
    if np.any((qs < 0) | (qs > 100)) or not np.all(np.isfinite(qs)):
        raise ValueError(f"percentile: q must lie in [0, 100], got {q}")
    n = x.shape[0]
    keys, _ = sort(e, x, bits=_compare_bits([col], f if f_in is None else f_in))
    keys = _lift(keys, f_in, f)
    pos = qs / 100 * (n - 1)
    low = np.floor(pos).astype(np.int64)
    frac = pos - low
    high = np.minimum(low + 1, n - 1)
    base = keys[low]
    error = 0.0
    if np.any(frac > 0):
        lo, hi = col.codes(f)
        weights = [round(t * 2**WEIGHT_BITS) for t in frac]
        step, err = scale_public(e, keys[high] - base, hi - lo, weights, 1 << WEIGHT_BITS, 0,
                                 "percentile", "the gap between neighbours")
        base = base + step
        weight_err = (hi - lo) * 2.0 ** -(WEIGHT_BITS + 1)
        error = float(np.max(err) + weight_err) * 2.0**-f
    out = base.reshape() if np.ndim(q) == 0 else base
    return Bounded(out, error, col, f)


def percentile_selected(e: Engine, x: Secret, w: Secret, col: Range, q: float,
                        f: int = FRAC, f_in: int | None = None) -> Bounded:
    """numpy's `percentile(x[w], q)` (linear) for a secret 0/1 selection w: the sample's
    size m = Σ w stays secret, and so does where its percentile sits.

    1. Unselected rows become the range's top (one product per row): every one of them
       sorts after, or ties with, every selected value, so the first m sorted keys are the
       sorted sample. Sort as `percentile`.
    2. q/100 = a/D exactly (q read as the decimal it is written as); the position
       (m - 1) a / D has integer part i = Σ_j T_j with T_j = [m >= 1 + ceil(j D / a)]
       (one batched comparison of the count against the public thresholds that m can
       reach), so the one-hot of i is T_j - T_(j+1) (local) and the two neighbours
       s_i, s_(i+1) are one fused dot with the sorted keys.
    3. The result s_i + r (s_(i+1) - s_i) / D with r = (m - 1) a - D i in [0, D): one
       product and one public scaling.
    4. An empty selection gives the middle of the range, as the mean of no values
       (`plain._empty`): one equality test of m, then a public shift (local).
    Error: the scaling's (about 1 ulp); 0 where the position is whole.
    """
    if len(x.shape) != 1 or w.shape != x.shape:
        raise ValueError(f"percentile: takes one column (n,) and its selection, got shapes "
                         f"{x.shape} and {w.shape}")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile: q must lie in [0, 100], got {q}")
    F = e.field
    n = x.shape[0]
    scale_in = f if f_in is None else f_in
    top_in = col.codes(scale_in)[1]
    keys, _ = sort(e, e.mul(w, x - top_in) + top_in, bits=_compare_bits([col], scale_in))
    keys = _lift(keys, f_in, f)
    m = w.sum()
    ratio = Fraction(str(q)) / 100
    a, D = ratio.numerator, ratio.denominator
    lo, hi = col.codes(f)
    top = top_in << (f - scale_in)
    if a == 0:  # the 0th percentile: the first key
        base, error = keys[np.zeros(1, dtype=np.int64)].reshape(), 0.0
    else:
        c = np.array([1 + -(-j * D // a) for j in range(1, n)], dtype=object)
        c = c[c <= n].astype(np.int64)  # thresholds the count can reach
        J = len(c)
        if J:
            # [m >= c_j]: one masked opening of m serves every threshold; |m - c_j| <= n
            at_least = at_least_many(e, m.reshape(1), c.tolist(), bits_of(n + 1) + 1).reshape(J)
            i = at_least.sum()
            ends = e.constant(F.from_int64(np.array([1, 0], dtype=np.int64)))
            t = join([ends[0:1], at_least, ends[1:2]], axis=0)  # T_0 = 1, T_(J+1) = 0
            hot = t[:-1] - t[1:]  # (J + 1,): position i
            idx = np.arange(J + 1)
            pair = join([keys[idx].reshape(J + 1, 1),
                         keys[np.minimum(idx + 1, n - 1)].reshape(J + 1, 1)], axis=1)
            both = e.dot(hot.reshape(J + 1, 1).broadcast_to(J + 1, 2), pair, axis=0)
            here, after = both[0], both[1]
        else:  # only m = n could move it, and it cannot: position 0 throughout
            i = e.constant(F.zeros(1)).reshape()
            here, after = keys[0], keys[min(1, n - 1)]
        r = (m - 1) * a - i * D
        step, err = scale_public(e, e.mul(r, after - here), D * (hi - lo), 1, D, 0,
                                 "percentile", "the gap between neighbours")
        base, error = here + step, float(np.max(err)) * 2.0**-f
    mid = col.center(f)[0]
    base = base + eqz(e, m.reshape(1), bits_of(n) + 1).reshape() * (mid - top)
    return Bounded(base, error, col, f)


def median(e: Engine, x: Secret, col: Range, f: int = FRAC, f_in: int | None = None
           ) -> Bounded:
    """numpy's `median`: the 50th percentile (the mean of the two middle values for even n)."""
    return percentile(e, x, col, 50.0, f, f_in)
