"""Fixed-point arithmetic on secret integers: a real x is the integer round(x * 2^f).

Sums are free, a product of two fixed-point numbers carries 2f fractional
bits and is brought back to f with the probabilistic truncation of
`comparison.trunc` (Catrina and Saxena, "Secure computation with fixed-point
numbers", FC 2010, section 3): the result is off by less than one unit in the
last place (2^-f) and rounds up with probability equal to the dropped fraction,
so the rounding is unbiased.

Why truncate with `wide_bits` rather than the engine's k = 64: the product of
two 64-bit encodings has up to 126 bits, but the truncation only needs the
value to be below 2^(bits - 1) and its cost does not depend on `bits`; the
field leaves room for bits = log2(p) - kappa - 1 = 86, so products up to
2^85 (two reals whose product is below 2^53 at f = 16) truncate correctly.
The result must come back below 2^63 to be used by 64-bit comparisons.
"""

from __future__ import annotations

import numpy as np

from enigma.field import Field

from .comparison import trunc
from .engine import MUL_ROW_BYTES, Engine
from .preprocessing import KAPPA
from .secret import Secret, concat

FRAC = 16
"""Default number of fractional bits, as in `field.FixedEncoding`."""


def wide_bits(e: Engine) -> int:
    """The widest value (in bits, sign included) that truncation and comparison can mask."""
    return _wide(e.field)


def _wide(field: Field) -> int:
    return field.bits - KAPPA - 1


def encode(field: Field, values, f: int = FRAC) -> np.ndarray:
    """Public reals (scalar or array) as field elements round(x * 2^f).

    Refuses values whose encoding does not fit the masking headroom, naming the first one.
    """
    arr = np.asarray(values, dtype=np.float64)
    scaled = np.rint(arr * float(1 << f))
    limit = float(1 << (_wide(field) - 1))
    bad = ~np.isfinite(scaled) | (np.abs(scaled) >= limit)
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise ValueError(f"public value {arr.ravel()[i]!r} at index {i} does not fit a "
                         f"fixed-point encoding with {f} fractional bits")
    # |scaled| < 2^85 is an exact float64 integer; split it into two int64 halves.
    F = field
    high = np.floor(scaled / 2.0**42)
    low = scaled - high * 2.0**42
    out = F.add(F.mul(F.from_int64(high.astype(np.int64)).reshape(-1, 2), 1 << 42),
                F.from_int64(low.astype(np.int64)).reshape(-1, 2))
    return out.reshape(*arr.shape, 2)


def decode(field: Field, elements: np.ndarray, f: int = FRAC) -> np.ndarray:
    """Opened field elements back to float64 reals."""
    return field.to_float(elements) / float(1 << f)


def mul_fixed(e: Engine, x: Secret, y: Secret, f: int = FRAC) -> Secret:
    """x * y for fixed-point secrets with f fractional bits.

    1. [z] = [x][y] by a Beaver product (one round): 2f fractional bits.
    2. [z / 2^f] by TruncPr (one round): error below 2^-f, unbiased.
    Needs |x y| < 2^(85 - 2f) (2^53 at f = 16).
    """
    return mul_fixed_many(e, [(x, y)], f)[0]


def mul_fixed_many(e: Engine, pairs: list[tuple[Secret, Secret]], f: int = FRAC) -> list[Secret]:
    """Several independent fixed-point products in two rounds: one Beaver round, one truncation."""
    prods = e.mul_many(pairs)
    return trunc_many(e, prods, [f] * len(prods))


def trunc_many(e: Engine, xs: list[Secret], shifts: list[int],
               bits: list[int] | int | None = None) -> list[Secret]:
    """x / 2^m (TruncPr) for several secrets, each with its own shift m, in one opening
    (one per chunk of the engine's memory budget: long secrets are cut into slices, which
    are packed into openings of at most a chunk each).

    `comparison.trunc` takes one shift per call; exp and the Newton iterations
    need several at once, and an extra opening per shift would cost a round.
    For each x (|x| < 2^(w - 1), w its entry of `bits`, default wide_bits):
    1. Take masks r = r_low + 2^m r_high (r_low on m bits, r_high on w + kappa - m).
    2. Open c = x + 2^(w - 1) + r, all secrets in one message.
    3. [x / 2^m] = ([x] - (c mod 2^m) + [r_low]) / 2^m: floor or floor + 1.
    Why the bound: r_high costs w + kappa - m bits (or a contribution, for small w), so a
    caller that knows |x| < 2^(w - 1) for a small w (the compiler's ranges) pays less.
    """
    wide = wide_bits(e)
    if bits is None or isinstance(bits, int):
        bits = [wide if bits is None else bits] * len(xs)
    step = e.chunk_rows(MUL_ROW_BYTES)
    if sum(x.size for x in xs) <= step:
        return _trunc_many(e, xs, shifts, bits)
    pieces = [(which, x.reshape(x.size)[start:start + step], m, w)
              for which, (x, m, w) in enumerate(zip(xs, shifts, bits, strict=True))
              for start in range(0, x.size, step)]
    done: list[list[Secret]] = [[] for _ in xs]
    batch: list[tuple[int, Secret, int, int]] = []
    for piece in [*pieces, None]:
        held = sum(p[1].size for p in batch)
        if batch and (piece is None or held + piece[1].size > step):
            outs = _trunc_many(e, [p[1] for p in batch], [p[2] for p in batch],
                               [p[3] for p in batch])
            for (which, *_), out in zip(batch, outs, strict=True):
                done[which].append(out)
            batch = []
        if piece is not None:
            batch.append(piece)
    return [concat(parts).reshape(*x.shape) if parts else x
            for parts, x in zip(done, xs, strict=True)]


def _trunc_many(e: Engine, xs: list[Secret], shifts: list[int], bits: list[int]) -> list[Secret]:
    F = e.field
    wide = wide_bits(e)
    masked, lows = [], []
    for x, m, w in zip(xs, shifts, bits, strict=True):
        if not m < w <= wide:
            raise ValueError(f"a truncation by {m} bits of a {w}-bit value cannot be masked "
                             f"(at most {wide} bits)")
        masks = e.provider.trunc_masks(x.size, m, w)
        low, high = Secret(e, masks.low), Secret(e, masks.high)
        masked.append(x.reshape(x.size) + (1 << (w - 1)) + low + high * (1 << m))
        lows.append(low)
    opened = e.open(*masked)
    out = []
    for x, m, c, low in zip(xs, shifts, opened, lows, strict=True):
        c_low = c.reshape(-1, 2).copy()
        if m < 64:
            c_low[:, 0] &= np.uint64((1 << m) - 1)
            c_low[:, 1] = 0
        else:
            c_low[:, 1] &= np.uint64((1 << (m - 64)) - 1)
        inv = F.inverse(F.const(1 << m).reshape(1, 2))[0]
        out.append(((x.reshape(x.size) - c_low + low) * inv).reshape(*x.shape))
    return out


def scale(e: Engine, x: Secret, c, f: int = FRAC, precision: int | None = None) -> Secret:
    """x * c for public reals c (a scalar or an array shaped like x); one truncation round.

    c is encoded with `precision` fractional bits (default f), the product is
    truncated by as many: the error is below 2^-f + |x| 2^-(precision + 1).
    Needs |x c| 2^(f + precision) < 2^85.
    """
    p = f if precision is None else precision
    code = encode(e.field, c, p)
    if code.shape != (2,):
        code = np.ascontiguousarray(np.broadcast_to(code, (*x.shape, 2)))
    return trunc(e, x * code, p, bits=wide_bits(e))


def rescale(e: Engine, x: Secret, f_from: int, f_to: int) -> Secret:
    """Change the number of fractional bits: exact (local) upwards, TruncPr downwards."""
    if f_to >= f_from:
        return x * (1 << (f_to - f_from))
    return trunc(e, x, f_from - f_to, bits=wide_bits(e))


def from_int(x: Secret, f: int = FRAC) -> Secret:
    """A secret integer as a fixed-point secret (local)."""
    return x * (1 << f)
