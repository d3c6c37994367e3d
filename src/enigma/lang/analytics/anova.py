"""One-way analysis of variance: the share of a column's variance that its groups explain.

The engine computes eta^2 = SSB / SST (between-group over total sum of squares), a number
in [0, 1] whose error bound stays small at every scale, and counts the groups that
occur; F = eta^2 / (1 - eta^2) (N - k) / (k - 1) and its p-value are public functions of
these, computed by the owner (`lang.pvalues`). Revealing eta^2 rather than F reveals
nothing more (each is a function of the other and the public N, k) and keeps the division
the engine does bounded: SST is floored like every spread the library divides by.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from enigma.mpc.comparison import eqz
from enigma.mpc.engine import Engine
from enigma.mpc.fixed import FRAC, trunc_many
from enigma.mpc.secret import Secret
from enigma.mpc.select import join, lt

from .precision import (
    DEFAULT_SPREAD,
    MASK_BITS,
    TRUNC_BITS,
    Approx,
    Bounded,
    Range,
    bits_of,
    divide_by_count,
    require,
    scale_public,
)
from .reciprocals import G, inverse

MEAN_BITS = 24
"""Extra fractional bits of the group means in `anova` (fewer when the sums are wide)."""
ETA_BITS = 32
"""Fractional bits of the revealed eta^2: F = eta^2 / (1 - eta^2) (n - k) / (k - 1) multiplies
its error by about n / k, so 16 bits would cost F its third digit on a few hundred rows."""


@dataclass
class Anova:
    """eta^2 (bounded), the number of groups that occur, and whether SST was floored."""

    eta2: Bounded
    groups: Secret
    floored: Secret


def anova(e: Engine, x: Secret, hot: Secret, col: Range, f: int = FRAC,
          out_frac: int = ETA_BITS) -> Anova:
    """eta^2 of the column x (n,) (f-bit codes) between the k groups of the one-hot `hot`
    (n, k), with `out_frac` fractional bits.

    scipy's `f_oneway(*groups)` is F = eta^2 / (1 - eta^2) (n - k') / (k' - 1) for the k'
    groups that occur. With x' = code - m (|x'| <= w):
    1. S_g = sum_r H_rg x'_r and Q = sum x'^2 in one fused dot; c_g = column sums of H.
    2. q_g = 2^E S_g / c_g (`divide_by_count`, e1 units; E <= 24 extra bits, as many as
       the sums leave); empty groups by one equality test.
    3. T = sum_g S_g q_g (one fused dot), off by at most n w e1 from 2^E sum S_g^2 / c_g.
    4. num = n T - 2^E S^2, den = n Q - S^2 (one product: S^2, exact), scaled by
       2^G / (2^E n^2 w^2) and 2^G / (n^2 w^2) (`scale_public`, one round): a, b in [0, 1].
    5. b floored at 4 DEFAULT_SPREAD^2 (a standard deviation of 1/256 of the range; one
       comparison), 1/b by `inverse` (G bits, relative error rho).
    6. eta^2 = a / b, truncated to out_frac bits.
    Error: (delta_a + delta_b) / floor (1 + rho) + rho + 2^-out_frac, delta_a = e1 / (2^E w) +
    units of step 4, delta_b its units, both in 2^-G: about 2^-16 for the usual ranges.
    """
    n, k = hot.shape
    if x.shape != (n,):
        raise ValueError(f"anova: values of shape {x.shape} for {n} rows")
    if n < 3:
        raise ValueError(f"anova: needs at least 3 rows, got {n}")
    mid, w = col.center(f)
    top = n * n * w * w
    require("anova", "n^2 times the squared half-range of the codes", top, TRUNC_BITS - 1)
    xc = x - mid
    both = e.dot(join([hot, xc.reshape(n, 1)], axis=1),
                 join([xc.reshape(n, 1)] * (k + 1), axis=1), axis=0)
    sums, squares = both[:k], both[k:]
    counts = hot.sum(axis=0)
    # the means with E extra bits: rounded to whole codes they would move T by n w; the
    # reciprocal's error grows as (n w 2^E)^2 2^-84, so half the masked bits go to the sums
    E = max(0, min(MEAN_BITS, TRUNC_BITS - 3 - top.bit_length(),
                   (MASK_BITS - 1) // 2 - (n * w).bit_length()))
    q, e1 = divide_by_count(e, sums * (1 << E), counts, w << E, n, "anova")
    empty = eqz(e, counts, bits_of(n))
    T = e.dot(sums, q).reshape(1)
    S = sums.sum().reshape(1)
    S2 = e.mul(S, S)
    num_err = n * n * w * e1
    num, units = scale_public(e, join([T * n - S2 * (1 << E), squares * n - S2], axis=0),
                              [int((top << E) + num_err) + 1, top],
                              [Fraction(1 << G, top << E), Fraction(1 << G, top)], 1, 0,
                              "anova", "a sum of squares")
    floor = 4 * DEFAULT_SPREAD**2
    floor_code = round(floor * 2**G)
    a, b = num[0:1], num[1:2]
    low = lt(e, b, e.field.const(floor_code), bits_of(2 << G))
    b = b + e.mul(low, (-b) + floor_code)
    inv, rho = inverse(e, b, floor, 1.0)
    (eta,) = trunc_many(e, [e.mul(a, inv)], [2 * G - out_frac])
    delta_a = num_err / (top << E) + float(units[0]) * 2.0**-G
    delta_b = float(units[1]) * 2.0**-G
    ratio = Approx(1.0, delta_a).over(Approx(1.0, delta_b), floor, bound=1.0)
    err = ratio.err * (1 + rho) + rho + 2.0**-out_frac
    groups = (-empty.sum()) + k
    return Anova(Bounded(eta.reshape(), err, Range(0, 1), out_frac), groups, low.sum())
