"""Ranges and worst-case error bounds of fixed-point analytics.

Every analytics function knows, from the schema, the public range [lo, hi] of
each input column and the public row count n. From them it derives, before
touching a share, (a) the largest integer every intermediate can reach, hence
the bit bounds of comparisons, truncations and divisions, (b) whether an
intermediate could leave the 64-bit value range or the 85-bit masking range of
truncation (`PrecisionError` then names the function and the quantity), and
(c) a worst-case absolute error of each result, propagated with `Approx`.

Errors are measured against the exact function of the *encoded* inputs
round(x 2^f); what that encoding moves each result, against the data as the owner
wrote it, is `storage`'s, which the compiled library adds to every revealed bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from enigma.mpc import functions
from enigma.mpc.engine import Engine
from enigma.mpc.fixed import FRAC, trunc_many
from enigma.mpc.secret import Secret
from enigma.mpc.select import join

VALUE_BITS = 63
"""Results and compared values must stay below 2^63 in magnitude (signed 64-bit)."""

MASK_BITS = 85
"""Truncated values must stay below 2^85: log2(p) - kappa - 2 for p = 2^127 - 1."""

TRUNC_BITS = MASK_BITS + 1
"""The `bits` argument of truncations of values below 2^85."""


DEFAULT_SPREAD = 1 / 256
"""Default floor of a standard deviation, as a fraction of the column's range width: where a
result divides by a spread (corr, R^2, the t-test), the spread is floored at this."""

MIN_LIMB = 4
"""The fewest bits of a multiplier limb in `scale_public` (fewer limbs, fewer truncations)."""


class PrecisionError(ValueError):
    """An intermediate value of an analytics function could overflow its bit bound."""


@dataclass(frozen=True)
class Range:
    """The public interval [lo, hi] in which every value of a column lies (from the schema)."""

    lo: float
    hi: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo <= self.hi):
            raise ValueError(f"a range needs finite lo <= hi, got [{self.lo}, {self.hi}]")

    @property
    def magnitude(self) -> float:
        return max(abs(self.lo), abs(self.hi))

    @property
    def width(self) -> float:
        return self.hi - self.lo

    def codes(self, f: int = FRAC) -> tuple[int, int]:
        """The smallest and largest encoding round(x 2^f) of a value in the range."""
        return math.floor(self.lo * 2**f), math.ceil(self.hi * 2**f)

    def center(self, f: int = FRAC) -> tuple[int, int]:
        """(m, w): an integer midpoint m of the encodings and w = max |code - m|.

        Analytics subtract m first (exactly, locally): the centred codes are
        smaller, which leaves more bits for precision in every later step.
        """
        lo, hi = self.codes(f)
        m = (lo + hi) // 2
        return m, max(hi - m, m - lo, 1)


@dataclass
class Bounded:
    """A secret result with what the public knows about it.

    `value` holds fixed-point encodings with `f` fractional bits; `error` is a
    worst-case bound on |decoded value - exact value| (a float, or an array
    shaped like the value); `range` bounds the exact value.
    """

    value: Secret
    error: float | np.ndarray
    range: Range
    f: int = FRAC


@dataclass(frozen=True)
class Approx:
    """A real quantity known up to an error: |exact| <= mag and |computed - exact| <= err.

    The rules below are worst-case (no first-order shortcuts), so a bound
    built from them holds for every input within the ranges.
    """

    mag: float
    err: float = 0.0

    def __add__(self, other: Approx) -> Approx:
        return Approx(self.mag + other.mag, self.err + other.err)

    __sub__ = __add__

    def __mul__(self, other: Approx | float) -> Approx:
        if not isinstance(other, Approx):
            return Approx(self.mag * abs(other), self.err * abs(other))
        # |x'y' - xy| <= |x| |y' - y| + |y'| |x' - x|
        return Approx(self.mag * other.mag,
                      self.mag * other.err + (other.mag + other.err) * self.err)

    def plus(self, rounding: float) -> Approx:
        """The same quantity after a rounding step of at most `rounding`."""
        return Approx(self.mag, self.err + rounding)

    def over(self, other: Approx, floor: float, bound: float | None = None) -> Approx:
        """self / other for |other| >= floor (exact and computed); `bound` caps |quotient|.

        |a'/b' - a/b| <= (|a' - a| + |a/b| |b' - b|) / |b'|.
        """
        q = self.mag / floor if bound is None else bound
        return Approx(q, (self.err + q * other.err) / floor)

    def sqrt(self, floor: float = 0.0) -> Approx:
        """sqrt of a non-negative quantity, exact and computed both >= floor.

        |sqrt(a') - sqrt(a)| = |a' - a| / (sqrt(a') + sqrt(a)), and never more than
        sqrt(|a' - a|).
        """
        err = math.sqrt(self.err)
        if floor > 0:
            err = min(err, self.err / (2 * math.sqrt(floor)))
        return Approx(math.sqrt(self.mag), err)


# ---------------------------------------------------------------------- bit bounds


def bits_of(bound: int) -> int:
    """Bits of a signed integer of magnitude <= bound, sign included."""
    return int(bound).bit_length() + 1


def require(func: str, quantity: str, bound: int, limit: int = VALUE_BITS) -> None:
    """Refuse when an intermediate of magnitude up to `bound` could reach 2^limit."""
    if bound >= 1 << limit:
        raise PrecisionError(
            f"{func}: {quantity} can reach 2^{math.log2(bound):.1f}, beyond the 2^{limit} "
            f"that fixed-point arithmetic allows here; narrow the column ranges in the schema, "
            f"use fewer fractional bits, or split the rows into chunks and combine the results")


def columns(x: Secret, ranges: Range | Sequence[Range]) -> tuple[Secret, list[Range], bool]:
    """x as (n, d) with one range per column; whether the caller passed a single column."""
    single = len(x.shape) == 1
    if single:
        x = x.reshape(x.shape[0], 1)
    if len(x.shape) != 2:
        raise ValueError(f"analytics take a column (n,) or a table (n, d), got shape {x.shape}")
    rs = [ranges] if isinstance(ranges, Range) else list(ranges)
    if len(rs) != x.shape[1]:
        raise ValueError(f"{x.shape[1]} columns but {len(rs)} ranges: give one Range per column")
    return x, rs, single


def table(cols: Sequence[Secret]) -> Secret:
    """Columns (n,) side by side as one (n, d) table (local)."""
    n = cols[0].shape[0]
    return join([c.reshape(n, 1) for c in cols], axis=1)


def centered(e: Engine, x: Secret, ranges: list[Range], f: int) -> tuple[Secret, list[int],
                                                                         list[int]]:
    """x minus the integer midpoint of each column (local): (x', midpoints, bounds of |x'|)."""
    mids, widths = zip(*(r.center(f) for r in ranges), strict=True)
    n, d = x.shape
    offsets = np.ascontiguousarray(np.broadcast_to(e.field.from_ints(list(mids)), (n, d, 2)))
    return x - offsets, list(mids), list(widths)


def scale_public(e: Engine, x: Secret, bound: int | Sequence[int],
                 num: int | float | Fraction | Sequence, den: int, shift: int, func: str,
                 quantity: str) -> tuple[Secret, float | np.ndarray]:
    """x num / (den 2^shift) for secret integers |x| <= bound and public positive num, den.

    `bound` and `num` are scalars or one per element of the vector x. A single
    multiplier would need as many bits as x and the result together (a 63-bit
    scatter scaled to a 47-bit variance needs 110), beyond the 85 that
    truncation masks; so the multiplier is split into limbs of L bits with
    bound 2^L < 2^85, and each limb's product is truncated on its own:
    1. C = round(num 2^P / (den 2^shift)), P = bits(bound) + 8; C = sum_k c_k 2^(k L).
    2. TruncPr(x c_k, P - k L) for every limb, all in one opening (`trunc_many`);
       a limb whose shift reaches 86 bits contributes less than 1/2 and is left out.
    3. The sum of the limbs' results.
    Returns the result and its worst-case error in units of the result: one per
    truncated limb + bound 2^-(P+1) (the rounding of C) + the limbs left out, per element.
    """
    many = (list, tuple, np.ndarray)
    vector = isinstance(bound, many) or isinstance(num, many)
    bounds = [int(b) for b in bound] if isinstance(bound, many) else None
    nums = list(num) if isinstance(num, many) else None
    size = len(bounds or nums or [0])
    bounds = bounds or [bound] * size
    ratios = [Fraction(k) / den / 2**shift for k in (nums or [num] * size)]
    plan = plan_scale(bounds, ratios, func, quantity)
    parts, shifts, exact = [], [], None
    for digits, m in plan.limbs:
        mult = e.field.from_ints(digits) if vector else int(digits[0])
        if m > 0:
            parts.append(x * mult)
            shifts.append(m)
        else:
            term = x * mult * (1 << -m)
            exact = term if exact is None else exact + term
    out = None
    for t in trunc_many(e, parts, shifts) if parts else []:
        out = t if out is None else out + t
    if exact is not None:
        out = exact if out is None else out + exact
    if out is None:  # every factor is 0
        out = x * 0
    return out, (plan.errors if vector else float(plan.errors[0]))


@dataclass(frozen=True)
class ScalePlan:
    """How `scale_public` multiplies: limbs (digits per element, shift) and the error bound.

    x r is computed as sum over limbs of TruncPr(x digit, shift) (a shift <= 0 is an
    exact product with 2^-shift); `errors` bounds |result - x r| per element.
    """

    limbs: list[tuple[list[int], int]]
    errors: np.ndarray


def plan_scale(bounds: list[int], ratios: list[Fraction], func: str = "scale",
               quantity: str = "a value") -> ScalePlan:
    """The limbs of x r for |x| <= bound and ratios r >= 0 (public; see `scale_public`)."""
    if any(r < 0 for r in ratios):
        raise ValueError(f"{func}: a public scale factor must not be negative")
    top = max(b * r for b, r in zip(bounds, ratios, strict=True))
    require(func, quantity, math.ceil(top))
    widest = max(bounds)
    require(func, quantity, widest, MASK_BITS - 1 - MIN_LIMB)
    P = widest.bit_length() + 8
    L = MASK_BITS - 1 - widest.bit_length()
    codes = [round(r * 2**P) for r in ratios]
    limbs = max(1, -(-max(codes).bit_length() // L))
    kept: list[tuple[list[int], int]] = []
    dropped = np.zeros(len(bounds))
    for k in range(limbs):
        digits = [(c >> (k * L)) & ((1 << L) - 1) for c in codes]
        m = P - k * L
        if m >= MASK_BITS:
            # TruncPr needs a shift below its 86-bit mask; this limb adds less than 1/2
            dropped += np.array([b * dk * 2.0**-m for b, dk in zip(bounds, digits, strict=True)])
        elif any(digits):
            kept.append((digits, m))
    truncated = sum(1 for _, m in kept if m > 0)
    errors = np.array([truncated + b * 2.0 ** -(P + 1) for b in bounds]) + dropped
    return ScalePlan(kept, errors)


def as_range(mag: float) -> Range:
    return Range(-mag, mag)


def divide_by_count(e: Engine, sums: Secret, counts: Secret, row_bound: int, n: int,
                    func: str) -> tuple[Secret, float]:
    """sums / counts for secret integer counts 0 <= c <= n and |sums| <= c row_bound.

    1. r = 1 / c with F fractional bits (`functions.reciprocal` on integers; 1/0 = 0).
    2. TruncPr(sums r, F) (one round).
    r is off by at most 2 units of 2^-F plus a relative 2^-(g-3), g = min(40, 85 - F), so
    the quotient is off by at most 1 + 2 n row_bound 2^-F + row_bound 2^-(g-3) units;
    F is the one that minimises this bound subject to n row_bound 2^F < 2^84.
    `sums` and `counts` must have the same shape; returns (quotient, error in units of sums).
    """
    sum_bound = n * row_bound
    limit = MASK_BITS - 1 - sum_bound.bit_length()
    if limit < 8:
        raise PrecisionError(f"{func}: sums up to 2^{sum_bound.bit_length()} leave no bits for "
                             "the reciprocal of a count; narrow the ranges or split the rows")

    def bound(F: int) -> float:
        g = min(functions.G, 85 - F)
        return 1.0 + 2 * sum_bound * 2.0**-F + row_bound * 2.0 ** -(g - 3)

    F = min(range(8, limit + 1), key=bound)
    r = functions.reciprocal(e, counts, 0, bits=bits_of(n), out_frac=F)
    (q,) = trunc_many(e, [e.mul(sums, r)], [F])
    return q, bound(F)
