"""Reciprocal, division, square root, exp and log of secret fixed-point numbers.

All of them follow one recipe (Catrina and Saxena, "Secure computation with
fixed-point numbers", FC 2010, for the reciprocal; Aly and Smart,
"Benchmarking privacy preserving scientific operations", ACNS 2019, for the
others):

1. Normalise: find the position j of the leading bit of the secret integer X
   without opening anything, as a one-hot vector, and scale X into
   [2^(T-1), 2^T), i.e. a real a = X / 2^(j+1) in [0.5, 1). The one-hot is
   built in two stages: comparisons against 2^s for every block start s
   (blocks of C = 8 bits) say which block holds the leading bit; X is
   scaled so that this block lands at the top, its C bits are cut out
   exactly (`mod2m`), and C - 1 comparisons of these small numbers say
   where. That is bits/8 wide comparisons, one shift and 7 narrow
   comparisons instead of one wide comparison per bit.
2. Approximate the function on [0.5, 1) (or [0, 1) for exp): Goldschmidt
   iterations from a linear first guess, or a Chebyshev
   expansion whose degree is chosen at run time for the accuracy wanted.
   Chebyshev polynomials T_0..T_d come from T_(m+n) = 2 T_m T_n - T_(m-n) in
   ceil(log2 d) rounds, as many as powers by repeated doubling would take;
   all of them stay in [-1, 1] whatever the function, so the weighted sum
   is bounded by the coefficients alone and no term needs more bits.
3. Undo the normalisation with public weights of j (2^-j, 2^(j/2), j),
   which are linear in the one-hot vector.

Internally values carry G = 40 fractional bits (products of two such values
need 2G + 2 bits, within the 85 that truncation masks). Inputs are fixed-point
numbers with f fractional bits (default 16) whose encodings satisfy
|x * 2^f| < 2^bits, bits = 63 unless given. Results are fixed-point with f
fractional bits; the error bounds are stated per function in ulp = 2^-f.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .comparison import at_least_many, ltz, mod2m
from .engine import Engine
from .fixed import FRAC, encode, trunc_many, wide_bits
from .secret import Secret
from .select import clip, join

G = 40
"""Fractional bits of intermediate values."""

C = 8
"""Bits per block of the two-stage normalisation: bits/C wide comparisons plus C - 1 narrow
ones per input. Measured on 1000 reciprocals of 63-bit inputs (3 processes): C = 4, 8, 12, 16
take 318, 218, 221, 240 triples per element in the same rounds (docs/mpc-functions.md)."""

EXP_BLOCK = 8
"""Integers per block in the two-stage split of a number into integer and fraction
(exp, and the exponent of a quotient)."""

RECIPROCAL_FIRST_GUESS = (2.9142, 2.0)
"""y0 = 2.9142 - 2a approximates 1/a on [0.5, 1) to within 8.6% (Catrina and Saxena, FC 2010)."""


# ---------------------------------------------------------------------- helpers


def _frac_within(f: int) -> int:
    """G, after checking that f fractional bits fit in it (exp and log shift f up to G)."""
    if not 0 <= f <= G:
        raise ValueError(f"exp and log take 0 to {G} fractional bits, got f = {f}")
    return G


def _bits(e: Engine, bits: int | None) -> int:
    k = e.k - 1 if bits is None else bits
    if not 1 <= k <= wide_bits(e) - C - 1:
        raise ValueError(f"inputs bounded by 2^{k} cannot be normalised: use 1 <= bits <= "
                         f"{wide_bits(e) - C - 1}")
    return k


def _at_least(e: Engine, x: Secret, thresholds: list[int], bits: int) -> Secret:
    """[x >= v] for every public v, shape (n, len(thresholds)): one masked opening of
    each element serves every threshold (`comparison.at_least_many`)."""
    return at_least_many(e, x.reshape(x.size), thresholds, bits)


def _one_hot(therm: Secret) -> Secret:
    """h_i = t_i - t_(i+1) of a thermometer t (1s then 0s along axis 1)."""
    L = therm.shape[1]
    if L == 1:
        return therm
    return join([therm[:, :L - 1] - therm[:, 1:], therm[:, L - 1:]], axis=1)


def _weigh(e: Engine, hot: Secret, weights: list[int]) -> Secret:
    """sum_i hot_i w_i for public integer weights (local)."""
    F = e.field
    n, L = hot.shape
    w = np.ascontiguousarray(np.broadcast_to(F.from_ints(weights), (n, L, 2)))
    return hot.dot_public(w, axis=1)


def _flat(x: Secret) -> Secret:
    return x.reshape(x.size)


@dataclass
class _Norm:
    """X = a 2^(j+1) with a = value / 2^top in [0.5, 1); j = starts[block] + position."""

    value: Secret
    top: int
    starts: list[int]
    block: Secret
    position: Secret


def _normalize(e: Engine, X: Secret, bits: int, *, align: int = 0,
               limit: int | None = None) -> _Norm:
    """Two-stage normalisation of secret integers |X| < 2^bits (X <= 0 gives all zeros).

    1. t_i = [X >= 2^(s_i)] for block starts s_i (0, align, align + C, ...
       below `limit`, plus a sentinel at `limit`): one batched comparison.
    2. Block one-hot h_i = t_i - t_(i+1); Y = X * sum_i h_i 2^(top - C - s_i)
       puts the leading block at the top of [2^(top-C), 2^top) (one round).
    3. H = floor(Y / 2^(top - C)) in [1, 2^C) exactly (`mod2m`, one comparison
       tree), then u_q = [H >= 2^q], q = 1..C-1: one batch of (C+2)-bit
       comparisons: 3 digits each instead of the 17 of comparing Y itself.
    4. Position one-hot from (t_0, u); N = Y * sum_q h_q 2^(C-1-q) (one round).
    An X at or above 2^limit gets no block: N = 0 and every block weight is 0.
    """
    top_limit = bits if limit is None else min(bits, limit)
    first = align if align else C
    starts = [0, *range(first, top_limit, C)]
    top = starts[-1] + C
    thresholds = [1 << s for s in starts]
    if limit is not None and limit < bits:
        thresholds.append(1 << limit)
    therm = _at_least(e, X, thresholds, bits + 2)  # |X - 2^s| < 2^(bits + 1)
    block = _one_hot(therm)[:, :len(starts)]
    Y = e.mul(X, _weigh(e, block, [1 << (top - C - s) for s in starts]))
    high = _shift_right(e, Y, top - C, top + 1)
    fine = _at_least(e, high, [1 << q for q in range(1, C)], C + 2)
    position = _one_hot(join([therm[:, :1], fine], axis=1))
    N = e.mul(Y, _weigh(e, position, [1 << (C - 1 - q) for q in range(C)]))
    return _Norm(N, top, starts, block, position)


def _shift_right(e: Engine, x: Secret, m: int, bits: int) -> Secret:
    """floor(x / 2^m), exactly, for 0 <= x < 2^bits: (x - (x mod 2^m)) / 2^m."""
    if m == 0:  # inputs of at most C bits sit in one block already
        return x
    F = e.field
    inv = F.inverse(F.const(1 << m).reshape(1, 2))[0]
    return (x - mod2m(e, x, m, bits=bits)) * inv


def _to_frac(e: Engine, norm: _Norm, g: int) -> Secret:
    """a = N / 2^top as a fixed-point number with g fractional bits."""
    if norm.top > g:
        return trunc_many(e, [norm.value], [norm.top - g])[0]
    return norm.value * (1 << (g - norm.top))


def _chebyshev_values(e: Engine, v: Secret, degree: int, g: int) -> list[Secret]:
    """T_0(v) .. T_degree(v) for v in [-1, 1] with g fractional bits.

    Level by level, m = 1, 2, 4, ...: for every m < k <= 2m at once,
    T_k = 2 T_m T_(k-m) - T_(2m-k): one Beaver round and one truncation.
    """
    one = 1 << g
    values: list[Secret | None] = [None, v]
    m = 1
    while m < degree:
        ks = list(range(m + 1, min(2 * m, degree) + 1))
        prods = e.mul_many([(values[m], values[k - m]) for k in ks])
        doubled = trunc_many(e, prods, [g - 1] * len(ks))
        for k, t in zip(ks, doubled, strict=True):
            j = 2 * m - k
            values.append(t - one if j == 0 else t - values[j])
        m *= 2
    return values


def _chebyshev_sum(e: Engine, v: Secret, coeffs: np.ndarray, g: int) -> Secret:
    """sum_k c_k T_k(v) with g fractional bits, for |v| <= 1 (g bits) and public c."""
    d = len(coeffs) - 1
    values = _chebyshev_values(e, v, d, g)
    F = e.field
    n = v.size
    stacked = join([t.reshape(n, 1) for t in values[1:]], axis=1)
    codes = encode(e.field, coeffs[1:], g)
    w = np.ascontiguousarray(np.broadcast_to(codes, (n, d, 2)))
    total = stacked.dot_public(w, axis=1)
    (out,) = trunc_many(e, [total], [g])
    return out + F.from_ints([round(float(coeffs[0]) * 2**g)]).reshape(2)


@lru_cache(maxsize=32)
def _fit(name: str, target_bits: int) -> np.ndarray:
    """Chebyshev coefficients on [-1, 1] of the named function, of the least degree whose
    worst error on a fine grid is below 2^-target_bits (fitted once per process)."""
    func = _TARGETS[name]
    grid = np.cos(np.linspace(0, np.pi, 4001))
    for degree in range(1, 40):
        coeffs = np.polynomial.chebyshev.chebinterpolate(func, degree)
        err = np.max(np.abs(np.polynomial.chebyshev.chebval(grid, coeffs) - func(grid)))
        if err < 2.0**-target_bits:
            return coeffs
    raise ValueError(f"no Chebyshev expansion of {name} below degree 40 reaches 2^-{target_bits}")


_TARGETS = {
    # 2^u for u = (v + 1) / 2 in [0, 1]
    "exp2": lambda v: np.exp2((v + 1) / 2),
    # log2(a) for a = (v + 3) / 4 in [0.5, 1]
    "log2": lambda v: np.log2((v + 3) / 4),
}


def _split_integer(e: Engine, t: Secret, lo: int, count: int,
                   first: int = 0) -> tuple[Secret, Secret]:
    """t = lo + 8 i + q as one-hots of i - first and q, for secret integers
    lo + 8 first <= t < lo + count (blocks before `first` are known empty).

    1. b_i = [t >= lo + 8i] for every block i >= first (one batch of narrow comparisons).
    2. rem = t - lo - 8 first - 8 sum_(i>first) b_i in [0, 8) (local).
    3. u_q = [rem >= q], q = 1..7 (one batch of 5-bit comparisons).
    """
    blocks = -(-count // EXP_BLOCK) - first
    therm = _at_least(e, t, [lo + EXP_BLOCK * (first + i) for i in range(blocks)],
                      (count + abs(lo)).bit_length() + 2)
    rem = t - _weigh(e, therm, [0] + [1] * (blocks - 1)) * EXP_BLOCK - lo - EXP_BLOCK * first
    fine = _at_least(e, rem, list(range(1, EXP_BLOCK)), 5)
    return _one_hot(therm), _one_hot(join([therm[:, :1], fine], axis=1))


def _times_power_of_two(e: Engine, p: Secret, block: Secret, position: Secret,
                        g: int, first: int = 0) -> Secret:
    """p 2^(8i + q - 1) / 2^g for the one-hots of `_split_integer` (8i + q < 64; block
    column j is i = first + j) and a secret p with g fractional bits, |p| < 2^(g + 13).

    1. W = 2^((8i mod 32) + q) <= 2^31 from the one-hots (1 round).
    2. z = p W (1 round).
    3. z / 2^(g + 1) and z / 2^(g + 1 - 32) in one opening; keep the second
       where 8i >= 32 (1 round each): no product ever exceeds 2^85.
    """
    index = range(first, first + block.shape[1])
    w_block = _weigh(e, block, [1 << ((EXP_BLOCK * i) % 32) for i in index])
    high = _weigh(e, block, [int(EXP_BLOCK * i >= 32) for i in index])
    W = e.mul(w_block, _weigh(e, position, [1 << q for q in range(EXP_BLOCK)]))
    z = e.mul(p, W)
    small, large = trunc_many(e, [z, z], [g + 1, g + 1 - 32])
    return e.mul(high, large - small) + small


# ---------------------------------------------------------------------- reciprocal, division


def _reciprocal_unit(e: Engine, a: Secret, g: int, start: Secret,
                     riders: list[Secret]) -> tuple[Secret, Secret]:
    """(1/a, start * riders[0] * riders[1] * ...) for a in [0.5, 1) with g fractional bits.

    Goldschmidt's iteration (Goldschmidt, MIT thesis 1964), whose two
    products per step are independent, unlike Newton's y (2 - a y):
    1. y = 2.9142 - 2a (local); eps = 1 - a y, |eps| < 0.086 (2 rounds).
    2. Four times, both products in one round: y <- y (1 + eps), eps <- eps^2
       (2 rounds each, the last step skips eps^2).
    Then y = (1/a)(1 - eps^16): 0.086^16 < 2^-56, so rounding dominates
    (about 8 truncations of 2^-g). 10 rounds, where Newton takes 16.
    Up to five riders are multiplied into `start`, one in each of these
    product rounds, so that they cost no round of their own.
    """
    guess, slope = RECIPROCAL_FIRST_GUESS
    y = (a * (-int(slope))) + round(guess * 2**g)
    product = start
    eps = None
    for step in range(5):
        if eps is None:
            pairs = [(a, y)]
        else:
            pairs = [(y, eps + (1 << g))] + ([(eps, eps)] if step < 4 else [])
        rider = step < len(riders)
        if rider:
            pairs.append((product, riders[step]))
        prods = e.mul_many(pairs)
        if rider:
            product = prods.pop()
        cut = trunc_many(e, prods, [g] * len(prods))
        if eps is None:
            eps = (-cut[0]) + (1 << g)
        else:
            y = cut[0]
            eps = cut[1] if step < 4 else eps
    return y, product


def reciprocal(e: Engine, x: Secret, f: int = FRAC, bits: int | None = None,
               out_frac: int | None = None) -> Secret:
    """1 / x for fixed-point x != 0 (Goldschmidt after normalisation); 1/0 gives 0.

    1. s = [x < 0], X = (1 - 2s) x (5 + 1 rounds).
    2. Normalise X = a 2^(j+1), a in [0.5, 1) (14 rounds here); a to g bits (1).
    3. y = 1/a by Goldschmidt from y_0 = 2.9142 - 2a (`_reciprocal_unit`, 10 rounds).
       Meanwhile W = (1 - 2s) 2^(P - j), P = f + F - 1, from the one-hots.
    4. 1/x = 2^(f + F) / X = W y with F = out_frac fractional bits (2 rounds).
    32 rounds in all (measured, small batches; the engine adds one to very large openings).
    Error: below 2 units of 2^-F plus a relative 2^-(g - 3), g = min(40, 84 - P).
    A result below 2^-F (x_enc >= 2^(P+1)) comes out as 0: still within 1 unit.
    """
    k = _bits(e, bits)
    F_out = f if out_frac is None else out_frac
    if f + F_out < C:  # the weights 2^(P - j) need P >= C - 1: compute wider, then cut
        wide = reciprocal(e, x, f, bits, out_frac=C - f)
        return trunc_many(e, [wide], [C - f - F_out])[0]
    P = f + F_out - 1
    g = min(G, 84 - P)
    xs = _flat(x)
    sign = 1 - ltz(e, xs, k + 1) * 2
    X = e.mul(sign, xs)
    norm = _normalize(e, X, k, align=(P + 1) % C, limit=P + 1)
    w_block = _weigh(e, norm.block, [1 << (P - s - C + 1) for s in norm.starts])
    w_position = _weigh(e, norm.position, [1 << (C - 1 - q) for q in range(C)])
    y, W = _reciprocal_unit(e, _to_frac(e, norm, g), g, sign, [w_block, w_position])
    (out,) = trunc_many(e, [e.mul(W, y)], [g])
    return out.reshape(*x.shape)


def divide(e: Engine, a: Secret, b: Secret, f: int = FRAC, bits: int | None = None) -> Secret:
    """a / b for fixed-point secrets of one shape (b != 0; a / 0 gives 0).

    Normalising both operands keeps the relative precision of the quotient
    whatever their sizes (a reciprocal of a large b has few significant bits):
    1. Signs of a and b in one comparison, magnitudes (5 + 1 rounds).
    2. Normalise both together: |a| = a' 2^(ja+1), |b| = b' 2^(jb+1),
       a', b' in [0.5, 1) with 40 fractional bits (15 + 1 rounds).
    3. y = 1/b' as in `reciprocal` (10 rounds); meanwhile the sign
       s = (+-1)(+-1) [b != 0] is applied to a'. m = s a' y in (-2, 2) (2 rounds).
    4. a / b 2^f = m 2^(ja - jb + f): clip the small integer e = ja - jb + f
       to [-1, 62], split it into one-hots (comparisons of 9-bit values), and
       scale m by 2^e (`_times_power_of_two`, 4 rounds).
    44 rounds in all (measured). Needs |a / b| < 2^(62 - f) (larger quotients
    saturate near 2^(63 - f)). Error: below 1 ulp + a relative 2^-36.
    For a cheaper quotient with an error that grows with |a| (about 220
    against 647 triples per element), multiply a by `reciprocal(b)` with `mul_fixed`.
    """
    if a.shape != b.shape:
        raise ValueError(f"divide needs operands of one shape, got {a.shape} and {b.shape}")
    k = _bits(e, bits)
    g = G
    n = a.size
    both = join([_flat(a), _flat(b)], axis=0)
    sign = 1 - ltz(e, both, k + 1) * 2
    norm = _normalize(e, e.mul(sign, both), k)
    frac = _to_frac(e, norm, g)
    lead = _weigh(e, norm.block, norm.starts) + _weigh(e, norm.position, list(range(C)))
    nonzero_b = norm.position[n:].sum(axis=1)
    top, bottom = frac[:n], frac[n:]
    y, signed = _reciprocal_unit(e, bottom, g, sign[:n], [sign[n:], nonzero_b, top])
    (m,) = trunc_many(e, [e.mul(signed, y)], [g])
    exponent = lead[:n] - lead[n:] + f
    span = 2 * (k + f)
    exponent = clip(e, exponent, -1, 62, bits=span.bit_length() + 1)
    block, position = _split_integer(e, exponent, -1, 64)
    return _times_power_of_two(e, m, block, position, g).reshape(*a.shape)


# ---------------------------------------------------------------------- square roots


def _sqrt_precision(f: int) -> int:
    """Fractional bits of the public weight 2^((q + 1 + f) / 2), q < C, that scales a square
    root back: as many as keep sqrt(a) (G + 1 bits) times the weight below 2^84."""
    return 84 - G - 1 - (C + f + 1) // 2


def _rsqrt_unit(e: Engine, a: Secret, g: int) -> tuple[Secret, Secret]:
    """(sqrt(a), 1/sqrt(a)) for a in [0.5, 1) with g fractional bits, by Goldschmidt.

    1. h = y_0 = alpha - beta a (least-squares line for 1/sqrt on [0.5, 1)), s = a h.
    2. Three times: r = (3 - s h) / 2; s <- s r, h <- h r (4 rounds each).
    s h -> 1 quadratically, so s -> sqrt(a) and h -> 1/sqrt(a).
    """
    grid = np.linspace(0.5, 1.0, 257)
    slope, intercept = np.polyfit(grid, 1 / np.sqrt(grid), 1)
    (h,) = trunc_many(e, [a * encode(e.field, slope, g)], [g])
    h = h + encode(e.field, intercept, g)
    (s,) = trunc_many(e, [e.mul(a, h)], [g])
    for _ in range(3):
        (sh,) = trunc_many(e, [e.mul(s, h)], [g + 1])
        r = (-sh) + (3 << (g - 1))
        s, h = trunc_many(e, e.mul_many([(s, r), (h, r)]), [g, g])
    return s, h


def _scale_back(e: Engine, y: Secret, g: int, w_block: Secret, w_position: Secret,
                precision: int, block_bits: int, position_bits: int) -> Secret:
    """y * W_block * W_position / 2^(g + precision) in two truncated steps.

    y < 2^(g + 1); W_position < 2^(position_bits + precision) carries `precision`
    fractional bits; W_block < 2^block_bits is an integer. The first step keeps
    g - drop fractional bits, drop = what the second product needs to stay
    below 2^84 (0 at f = 16; 9 bits for sqrt, 14 for rsqrt at f = 36). Where
    W_position is small (down to 2^-(C/2) of its largest value), z keeps C/2
    bits fewer.
    """
    drop = max(0, g + 1 + position_bits + block_bits - 84)
    (z,) = trunc_many(e, [e.mul(y, w_position)], [precision + drop])
    (out,) = trunc_many(e, [e.mul(z, w_block)], [g - drop])
    return out


def sqrt(e: Engine, x: Secret, f: int = FRAC, bits: int | None = None) -> Secret:
    """sqrt(x) for fixed-point x >= 0 (a negative x gives 0).

    1. Normalise x_enc = a 2^(j+1), a in [0.5, 1) (15 rounds, blocks start at
       even j so that 2^(s/2) is an integer), a to 40 bits (1 round).
    2. sqrt(a) by Goldschmidt (14 rounds).
    3. sqrt(x) 2^f = sqrt(a) 2^((j + 1 + f) / 2) = sqrt(a) 2^(s/2) 2^((q + 1 + f)/2)
       for j = s + q (4 rounds): 35 rounds in all (rsqrt alike).
    Error: below 2 ulp + a relative 2^-36 for f <= 17; above, up to
    2^-(36 - drop - C/2) (`_scale_back`): 2^-23 at f = 36, measured 1e-11.
    """
    k = _bits(e, bits)
    g = G
    norm = _normalize(e, _flat(x), k)
    a = _to_frac(e, norm, g)
    root, _ = _rsqrt_unit(e, a, g)
    w_block = _weigh(e, norm.block, [1 << (s // 2) for s in norm.starts])
    precision = _sqrt_precision(f)
    w_pos = _weigh(e, norm.position, [round(2.0 ** ((q + 1 + f) / 2 + precision))
                                      for q in range(C)])
    return _scale_back(e, root, g, w_block, w_pos, precision, norm.starts[-1] // 2 + 1,
                       (C + f + 1) // 2).reshape(*x.shape)


def rsqrt(e: Engine, x: Secret, f: int = FRAC, bits: int | None = None) -> Secret:
    """1 / sqrt(x) for fixed-point x > 0 (x <= 0 gives 0).

    As `sqrt`, with 2^f / sqrt(x) = (1/sqrt(a)) 2^((3f - 1 - j) / 2): blocks
    start at even j; blocks at or above E = the first even block start >= 3f
    give results below 2^-f and are cut to 0; the rest weigh 2^((E - s)/2) (an
    integer) times 2^((3f - 1 - E - q)/2) (a fraction, with 40 bits).
    Error: below 2 ulp + a relative 2^-36 for f <= 26; above, up to
    2^-(36 - drop - C/2) (`_scale_back`): 2^-18 at f = 36, measured 8e-7.
    """
    k = _bits(e, bits)
    g = G
    E = -(-3 * f // C) * C
    norm = _normalize(e, _flat(x), k, limit=E)
    a = _to_frac(e, norm, g)
    _, inv = _rsqrt_unit(e, a, g)
    w_block = _weigh(e, norm.block, [1 << ((E - s) // 2) for s in norm.starts])
    w_pos = _weigh(e, norm.position, [round(2.0 ** ((3 * f - 1 - E - q) / 2 + G))
                                      for q in range(C)])
    return _scale_back(e, inv, g, w_block, w_pos, G, E // 2 + 1, 0).reshape(*x.shape)


# ---------------------------------------------------------------------- exp and log


POLY_BITS = 36
"""Accuracy target (2^-36) of the Chebyshev expansions of 2^u and log2(a)."""


def _exp2_clipped(e: Engine, t: Secret, f: int, g: int,
                  span: tuple[float, float] | None = None) -> Secret:
    """2^t with f fractional bits out, for t (g fractional bits) in [-(f+1), 63 - f).

    1. u = t mod 1 exactly (`mod2m`, offset 2^6 to make t positive) and
       floor(t) = t - u = -(f + 1) + 8 i + q as one-hots (`_split_integer`), over the
       blocks of 8 integers that `span` (public bounds on t, if known) reaches.
    2. p = 2^u by a Chebyshev expansion of degree 8 (7 rounds).
    3. 2^(floor(t) + f) p = p 2^(8i + q - 1) (`_times_power_of_two`, 4 rounds).
    """
    base, count = -(f + 1), 63 + 1
    first, last = 0, -(-count // EXP_BLOCK) - 1
    if span is not None:  # only the blocks floor(t) can reach (one integer of slack)
        first = max(first, (math.floor(span[0]) - 1 - base) // EXP_BLOCK)
        last = min(last, (math.floor(span[1]) + 1 - base) // EXP_BLOCK)
    frac = mod2m(e, t, g, offset=1 << (g + 6), bits=g + 7)
    whole = (t - frac) * e.field.inverse(e.field.const(1 << g).reshape(1, 2))[0]
    block, position = _split_integer(e, whole, base, EXP_BLOCK * (last + 1), first)
    p = _chebyshev_sum(e, frac * 2 - (1 << g), _fit("exp2", POLY_BITS), g)
    return _times_power_of_two(e, p, block, position, g, first)


def exp2(e: Engine, x: Secret, f: int = FRAC) -> Secret:
    """2^x for fixed-point x; 0 below -(f + 1), saturates at 2^(63 - f) - 1 ulp above.

    1. Clip x to [-(f + 1), 63 - f) (6 rounds), shift to 40 fractional bits (local).
    2. `_exp2_clipped` (19 rounds): 25 rounds in all.
    Error: below 1 ulp + a relative 2^-35.
    """
    g = _frac_within(f)
    lo, hi = -(f + 1) << f, ((63 - f) << f) - 1
    xc = clip(e, _flat(x), lo, hi)
    return _exp2_clipped(e, xc * (1 << (g - f)), f, g).reshape(*x.shape)


EXP_PRECISION = 60
"""Fractional bits of the public constant log2(e) in exp (fewer for large f, see `exp`)."""


def exp(e: Engine, x: Secret, f: int = FRAC,
        bounds: tuple[float, float] | None = None) -> Secret:
    """e^x = 2^(x log2 e) for fixed-point x; 0 below about -11.8, saturates above 31.4 (f = 16).

    1. Clip x so that x log2 e lies in [-(f + 1), 63 - f) (6 rounds; two comparisons at the
       engine's width), unless public `bounds` (lo, hi) on x already keep it there.
    2. t = x log2 e with 40 fractional bits (1 round; log2 e carries 60 bits,
       or as many as keep the product below 2^84 for large f: 42 at f = 36).
    3. 2^t as in `exp2` (19 rounds): 26 rounds in all; with `bounds`, the integer part of t
       is split over the blocks of 8 that they reach, not all 8 blocks.
    Error: below 1 ulp + a relative 2^-34, the same with or without `bounds` (which must
    hold: a value outside them gives garbage, as an input beyond any stated bound does).
    """
    g = _frac_within(f)
    log2e = 1 / math.log(2)
    lo = math.ceil(-(f + 1) / log2e * 2**f)
    hi = math.floor((63 - f) / log2e * 2**f) - 1
    precision = min(EXP_PRECISION, 84 - 1 - max(-lo, hi).bit_length())
    xc = _flat(x)
    span = None
    if bounds is None:
        xc = clip(e, xc, lo, hi)
    else:
        x_lo, x_hi = math.floor(bounds[0] * 2**f), math.ceil(bounds[1] * 2**f)
        if x_lo < lo or x_hi > hi:  # compared on the bits the bounds need, not the engine's
            xc = clip(e, xc, lo, hi, (2 * max(-x_lo, x_hi, -lo, hi)).bit_length() + 1)
        span = (max(bounds[0], lo / 2**f) * log2e, min(bounds[1], hi / 2**f) * log2e)
    (t,) = trunc_many(e, [xc * encode(e.field, log2e, precision)], [f + precision - g])
    return _exp2_clipped(e, t, f, g, span).reshape(*x.shape)


def _log2_parts(e: Engine, x: Secret, f: int, bits: int | None, g: int) -> Secret:
    """log2(x) with g fractional bits for fixed-point x > 0; log2(2^-f) = -f for x <= 0.

    1. Normalise x_enc = a 2^(j+1) (15 rounds), a to g bits (1 round).
       For x <= 0 the normalisation gives a = 0 and no position; a is set to
       1/2 there (locally: the position one-hot sums to [x > 0]), so that the
       Chebyshev values stay in [-1, 1] and every truncation stays in range.
    2. log2(a) by a Chebyshev expansion of degree 13 in v = 4a - 3 (9 rounds).
    3. log2(x) = log2(a) + j + 1 - f, j linear in the one-hots (local).
    """
    k = _bits(e, bits)
    norm = _normalize(e, _flat(x), k)
    positive = norm.position.sum(axis=1)
    a = _to_frac(e, norm, g) + ((-positive) + 1) * (1 << (g - 1))
    la = _chebyshev_sum(e, a * 4 - (3 << g), _fit("log2", POLY_BITS), g)
    j = (_weigh(e, norm.block, norm.starts) + _weigh(e, norm.position, list(range(C))))
    return la + j * (1 << g) + (1 - f) * (1 << g)


def log2(e: Engine, x: Secret, f: int = FRAC, bits: int | None = None) -> Secret:
    """log2(x) for fixed-point x > 0 (x <= 0 gives -f, the log of the smallest positive value).

    `_log2_parts` (25 rounds), then one truncation to f bits: 26 rounds.
    Error: below 1 ulp + 2^-34.
    """
    g = _frac_within(f)
    (out,) = trunc_many(e, [_log2_parts(e, x, f, bits, g)], [g - f])
    return out.reshape(*x.shape)


LOG_PRECISION = 36
"""Fractional bits of the public constant ln 2 (or log10 2) multiplying log2."""


def log(e: Engine, x: Secret, f: int = FRAC, bits: int | None = None,
        base: float = math.e) -> Secret:
    """log_base(x) = log2(x) / log2(base) for fixed-point x > 0 (default: natural log).

    As with `log2`, x <= 0 is treated as the smallest positive value 2^-f.

    `_log2_parts`, then one product with the public 1/log2(base) folded into
    the final truncation. Error: below 1 ulp + 2^-33.
    """
    g = _frac_within(f)
    factor = encode(e.field, 1 / math.log2(base), LOG_PRECISION)
    (out,) = trunc_many(e, [_log2_parts(e, x, f, bits, g) * factor], [g + LOG_PRECISION - f])
    return out.reshape(*x.shape)
