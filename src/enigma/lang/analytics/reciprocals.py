"""Reciprocals, floors and square roots of standardised secrets with G = 36 fractional bits.

The models (regression, t-test) standardise their statistics to magnitudes of
a few units and then need 1/p and sqrt(v) with more precision than the
f-bit `enigma.mpc.functions` give: `inverse` adds one Newton step at G bits
to `functions.reciprocal`, `sqrt_g` scales its argument by a power of 4 so
that `functions.sqrt` returns more fractional bits. `floor_at` is the one
comparison that keeps a divisor away from zero, so that a bound can hold.
"""

from __future__ import annotations

import numpy as np

from enigma.mpc import functions
from enigma.mpc.engine import Engine
from enigma.mpc.fixed import trunc_many
from enigma.mpc.secret import Secret
from enigma.mpc.select import lt

from .precision import MASK_BITS, PrecisionError, bits_of, require

G = 36
"""Fractional bits of the standardised quantities of a regression (all of magnitude <= 2)."""

RECIPROCAL_FIRST = 26
"""Fractional bits of the first reciprocal of a pivot, before one Newton step at G bits."""


def floor_at(e: Engine, x: Secret, floor_code: int, bits: int) -> Secret:
    """max(x, floor) for public floor (one comparison, one round)."""
    low = lt(e, x, e.field.const(floor_code), bits)
    return x + e.mul(low, (-x) + floor_code)


def inverse_error(top: float) -> float:
    """The relative error of `inverse` for arguments at most `top`.

    r_0 is off by a relative 2^-(g-3) (g = min(40, 84 - (G + 26 - 1))) plus 2 units of
    2^-26, relative 2^-25 top; Newton squares that. The truncation of p r_0 adds
    r_0 2^-G, relative (1 + rho_0) 2^-G; the last one 2^-G, relative p 2^-G <= top 2^-G.
    """
    rho0 = _first_error(top)
    return rho0**2 + 2.0**-G * (1 + rho0 + top)


def _first_error(top: float) -> float:
    g = min(functions.G, 84 - (G + RECIPROCAL_FIRST - 1))
    return 2.0 ** -(g - 3) + 2 * 2.0**-RECIPROCAL_FIRST * top


def inverse(e: Engine, p: Secret, floor: float, top: float) -> tuple[Secret, float]:
    """1 / p with G fractional bits for G-bit p in [floor, top] (floored before).

    1. r_0 = reciprocal(p) with 26 bits (`functions.reciprocal`), lifted to G bits.
    2. One Newton step, written r = r_0 + r_0 (1 - p r_0) so that the second product
       is small (1 - p r_0 is about 2^-20): two products and truncations.
    Returns r and its relative error against 1/p (`inverse_error(top)`).
    """
    r0 = functions.reciprocal(e, p, G, bits=bits_of(int(top * 2**G) + 1),
                              out_frac=RECIPROCAL_FIRST)
    r0 = r0 * (1 << (G - RECIPROCAL_FIRST))
    # r_0 <= 2^G (1 + rho_0) / floor and |1 - p r_0| <= rho_0 + 2^-G, so the correction
    # product stays below 2^(2G) 2 rho_0 / floor
    require("a reciprocal", "the Newton correction",
            int(2 ** (2 * G) / floor * 2 * (_first_error(top) + 2.0**-G)) + 1, MASK_BITS)
    (pr,) = trunc_many(e, [e.mul(p, r0)], [G])
    (step,) = trunc_many(e, [e.mul(r0, (-pr) + (1 << G))], [G])
    rho = inverse_error(top)
    return r0 + step, rho


SQRT_RESULT_BITS = 43
"""Roots with G + a few bits stay below 2^43, so that their products with other G-bit values
stay within the 85 bits that truncation masks."""


def sqrt_g(e: Engine, v: Secret, top: float) -> Secret:
    """sqrt of a G-bit value in [0, top] as a G-bit value.

    `functions.sqrt` with f = 16 reads v 4^t (exact) as the real v 2^(G - 16 + 2t); its
    root, with 16 fractional bits, is sqrt(v) with 16 + (G - 16) / 2 + t bits; t is the
    largest that keeps that root below 2^43. The root is then truncated (or, for a large
    `top`, shifted up exactly) to G bits. Error: `sqrt_g_error`.
    """
    t = _sqrt_shift(top)
    root = functions.sqrt(e, v * (1 << (2 * t)), 16,
                          bits=bits_of(int(top * 2 ** (G + 2 * t)) + 1))
    have = SQRT_BASE + t
    if have <= G:
        return root * (1 << (G - have))
    (out,) = trunc_many(e, [root], [have - G])
    return out


SQRT_BASE = 16 + (G - 16) // 2
"""Fractional bits of `functions.sqrt`'s root of a G-bit value read as a 16-bit one."""


def _sqrt_shift(top: float) -> int:
    t = SQRT_RESULT_BITS - SQRT_BASE - bits_of(int(np.sqrt(top)) + 1)
    if t < 0:
        raise PrecisionError(f"sqrt_g: a value up to {top:.3g} has a root beyond the 2^43 "
                             "that functions.sqrt returns with enough fractional bits")
    return t


def sqrt_g_error(top: float) -> float:
    """2 units of the root's last place + a relative 2^-36 + 1 unit of 2^-G (truncation)."""
    return 2 * 2.0 ** -(SQRT_BASE + _sqrt_shift(top)) + 2.0**-36 * np.sqrt(top) + 2.0**-G
