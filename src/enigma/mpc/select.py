"""Comparisons, oblivious selection and tree reductions of secret integers.

Everything here is built on `comparison.ltz` and `comparison.eqz` (one masked
opening plus a digit tree each, 5 rounds whatever the batch size; `clip` on
`comparison.at_least_many`, one opening for both bounds) and on Beaver products.
Operands are `Secret`s or public values (Python ints or field arrays from
`Field.from_int64`); a comparison needs at least one secret side.

Range rule: a comparison of a and b looks at the sign of a - b, so it is
exact while |a - b| < 2^(bits - 1); `bits` defaults to the engine's k = 64
and may be raised up to log2(p) - 41 = 86 (the masking headroom) for wider
intermediate values.

Reductions (min, max, argmin, argmax) pair neighbours in a tree: a level
compares all its pairs in one batched comparison and selects values and
indices in one round, so n elements take ceil(log2 n) levels of 7 rounds (2-bit digits). The
pairing keeps the lower index on the left and moves right only on a strict
win, so ties go to the first index, as in numpy.
"""

from __future__ import annotations

import numpy as np

from enigma.sharing import AuthShare

from .comparison import at_least_many, eqz, ltz
from .engine import Engine
from .secret import Secret

Operand = Secret | int | np.ndarray


def _diff(e: Engine, a: Operand, b: Operand) -> Secret:
    """a - b as a Secret; refuses two public operands (compare those in the clear)."""
    if isinstance(a, Secret):
        return a - b
    if isinstance(b, Secret):
        return (-b) + a
    raise TypeError("a secure comparison needs at least one Secret operand; compare public "
                    "values with numpy")


def lt(e: Engine, a: Operand, b: Operand, bits: int | None = None) -> Secret:
    """[a < b] as 0/1, exact for |a - b| < 2^(bits - 1)."""
    return ltz(e, _diff(e, a, b), bits)


def gt(e: Engine, a: Operand, b: Operand, bits: int | None = None) -> Secret:
    """[a > b] as 0/1."""
    return ltz(e, _diff(e, b, a), bits)


def le(e: Engine, a: Operand, b: Operand, bits: int | None = None) -> Secret:
    """[a <= b] = 1 - [b < a]."""
    return 1 - gt(e, a, b, bits)


def ge(e: Engine, a: Operand, b: Operand, bits: int | None = None) -> Secret:
    """[a >= b] = 1 - [a < b]."""
    return 1 - lt(e, a, b, bits)


def eq(e: Engine, a: Operand, b: Operand, bits: int | None = None) -> Secret:
    """[a == b] as 0/1."""
    return eqz(e, _diff(e, a, b), bits)


def ne(e: Engine, a: Operand, b: Operand, bits: int | None = None) -> Secret:
    """[a != b] = 1 - [a == b]."""
    return 1 - eq(e, a, b, bits)


def select(e: Engine, c: Secret, a: Operand, b: Operand) -> Secret:
    """Oblivious a if c else b, for a secret bit c: b + c (a - b).

    One round when a or b is secret; free (local) when both are public.
    """
    if isinstance(a, Secret) or isinstance(b, Secret):
        return e.mul(c, _diff(e, a, b)) + b
    F = e.field
    pa = a if isinstance(a, np.ndarray) else F.const(int(a))
    pb = b if isinstance(b, np.ndarray) else F.const(int(b))
    if pa.shape == (2,) and pb.shape == (2,):
        return c * F.sub(pa.reshape(1, 2), pb.reshape(1, 2))[0] + pb
    shape = (*c.shape, 2)
    pa, pb = np.broadcast_to(pa, shape), np.broadcast_to(pb, shape)
    return c * F.sub(np.ascontiguousarray(pa), np.ascontiguousarray(pb)) + np.ascontiguousarray(pb)


def min_max(e: Engine, a: Secret, b: Secret, bits: int | None = None) -> tuple[Secret, Secret]:
    """Elementwise (minimum, maximum) of two secret arrays, sharing one comparison.

    1. c = [b < a] (one batched comparison).
    2. d = c (b - a) (one round).
    3. min = a + d, max = b - d (local).
    """
    c = lt(e, b, a, bits)
    d = e.mul(c, b - a)
    return a + d, b - d


def minimum(e: Engine, a: Secret, b: Secret, bits: int | None = None) -> Secret:
    """Elementwise minimum of two secret arrays (numpy's `minimum`)."""
    return min_max(e, a, b, bits)[0]


def maximum(e: Engine, a: Secret, b: Secret, bits: int | None = None) -> Secret:
    """Elementwise maximum of two secret arrays (numpy's `maximum`)."""
    return min_max(e, a, b, bits)[1]


def clip(e: Engine, x: Secret, lo: int, hi: int, bits: int | None = None) -> Secret:
    """numpy.clip with public bounds lo <= hi.

    1. [x >= lo] and [x >= hi + 1] = [hi < x] from one masked opening of x
       (`comparison.at_least_many`; the same bit bound as comparing x - lo and hi - x).
    2. In one round: x + [x < lo] (lo - x) + [hi < x] (hi - x).
    """
    if lo > hi:
        raise ValueError(f"clip bounds are reversed: lo={lo} > hi={hi}")
    n = x.size
    flat = x.reshape(n)
    at_least = at_least_many(e, flat, [lo, hi + 1], bits)
    below, above = 1 - at_least[:, 0], at_least[:, 1]
    up, down = e.mul_many([(below, (-flat) + lo), (above, (-flat) + hi)])
    return (flat + up + down).reshape(*x.shape)


# ---------------------------------------------------------------------- share plumbing


def join(parts: list[Secret], axis: int) -> Secret:
    """numpy.concatenate of secrets along a logical axis."""
    axis = axis % len(parts[0].shape)
    share = AuthShare(np.concatenate([p.share.value for p in parts], axis=axis),
                      np.concatenate([p.share.mac for p in parts], axis=axis))
    return Secret(parts[0].engine, share)


def interleave(left: Secret, right: Secret) -> Secret:
    """Columns l0, r0, l1, r1, ... of two (rows, m) secrets: the inverse of even/odd slicing."""
    rows, m = left.shape
    value = np.stack([left.share.value, right.share.value], axis=2).reshape(rows, 2 * m, 2)
    mac = np.stack([left.share.mac, right.share.mac], axis=2).reshape(rows, 2 * m, 2)
    return Secret(left.engine, AuthShare(value, mac))


def moveaxis_last(x: Secret, axis: int) -> Secret:
    """x with `axis` moved to the end, as a contiguous (rows, n) secret."""
    axis = axis % len(x.shape)
    value = np.ascontiguousarray(np.moveaxis(x.share.value, axis, -2))
    mac = np.ascontiguousarray(np.moveaxis(x.share.mac, axis, -2))
    n = value.shape[-2]
    return Secret(x.engine, AuthShare(value.reshape(-1, n, 2), mac.reshape(-1, n, 2)))


# ---------------------------------------------------------------------- tree reductions


def _tree(e: Engine, x: Secret, axis: int, largest: bool, bits: int | None,
          with_index: bool) -> tuple[Secret, Secret | None, list[Secret], tuple[int, ...]]:
    """Tournament over `axis`: (winner, its index, the move-right bits of each level, shape).

    One level, for pairs (L, R) of neighbours:
    1. c = [L < R] for max (or [R < L] for min), all pairs in one comparison.
    2. In one round: value = L + c (R - L), index = iL + c (iR - iL).
    An odd last element waits at the end of the row for the next level.
    """
    F = e.field
    shape = tuple(np.delete(np.array(x.shape), axis % len(x.shape)))
    vals = moveaxis_last(x, axis)
    rows, n = vals.shape
    if n == 0:
        raise ValueError("cannot reduce an empty axis")
    idx = None
    if with_index:
        ids = np.broadcast_to(np.arange(n, dtype=np.int64), (rows, n))
        idx = e.constant(F.from_int64(np.ascontiguousarray(ids)))
    levels: list[Secret] = []
    while vals.shape[1] > 1:
        m = vals.shape[1]
        p = m // 2
        left, right = vals[:, 0:2 * p:2], vals[:, 1:2 * p:2]
        c = lt(e, left, right, bits) if largest else lt(e, right, left, bits)
        pairs = [(c, right - left)]
        if idx is not None:
            pairs.append((c, idx[:, 1:2 * p:2] - idx[:, 0:2 * p:2]))
        prods = e.mul_many(pairs)
        new_vals = left + prods[0]
        new_idx = idx[:, 0:2 * p:2] + prods[1] if idx is not None else None
        if m % 2:
            new_vals = join([new_vals, vals[:, m - 1:m]], axis=1)
            if idx is not None:
                new_idx = join([new_idx, idx[:, m - 1:m]], axis=1)
        levels.append(c)
        vals, idx = new_vals, new_idx
    winner = vals[:, 0].reshape(*shape) if shape else vals[:, 0].reshape(1)[0]
    index = None
    if idx is not None:
        index = idx[:, 0].reshape(*shape) if shape else idx[:, 0].reshape(1)[0]
    return winner, index, levels, shape


def _one_hot_down(e: Engine, levels: list[Secret], rows: int, n: int) -> Secret:
    """Expand the tournament bits top-down into a one-hot of the winner, one round per level.

    The root has weight 1; a node of weight w whose right child won gives
    w c to the right child and w - w c to the left one.
    """
    F = e.field
    sizes = [n]
    for _ in levels:
        sizes.append(sizes[-1] // 2 + sizes[-1] % 2)
    w = e.constant(F.from_int64(np.ones((rows, 1), dtype=np.int64)))
    for c, m in zip(reversed(levels), reversed(sizes[:-1]), strict=True):
        p = m // 2
        right = e.mul(w[:, :p], c)
        below = interleave(w[:, :p] - right, right)
        w = join([below, w[:, p:p + 1]], axis=1) if m % 2 else below
    return w


def _reduce(e: Engine, x: Secret, axis: int, largest: bool, bits: int | None) -> Secret:
    return _tree(e, x, axis, largest, bits, with_index=False)[0]


def max(e: Engine, x: Secret, axis: int = -1, bits: int | None = None) -> Secret:
    """Largest element along `axis`, in ceil(log2 n) levels of 7 rounds (2-bit digits)."""
    return _reduce(e, x, axis, True, bits)


def min(e: Engine, x: Secret, axis: int = -1, bits: int | None = None) -> Secret:
    """Smallest element along `axis`."""
    return _reduce(e, x, axis, False, bits)


def _winner_one_hot(e: Engine, x: Secret, axis: int, largest: bool,
                    bits: int | None) -> tuple[Secret, Secret]:
    """(winner, one-hot of the first winner, moved last) from one tournament."""
    winner, _, levels, shape = _tree(e, x, axis, largest, bits, with_index=False)
    n = x.shape[axis % len(x.shape)]
    rows = int(np.prod(shape, dtype=np.int64))
    return winner, _one_hot_down(e, levels, rows, n).reshape(*shape, n)


def _arg(e: Engine, x: Secret, axis: int, largest: bool, one_hot: bool,
         bits: int | None) -> Secret:
    if one_hot:
        return _winner_one_hot(e, x, axis, largest, bits)[1]
    return _tree(e, x, axis, largest, bits, with_index=True)[1]


def max_one_hot(e: Engine, x: Secret, axis: int = -1,
                bits: int | None = None) -> tuple[Secret, Secret]:
    """(largest element, one-hot of the first largest) along `axis` from one tournament.

    The one-hot marks exactly one element even among ties (the tournament's first index),
    which is what removing "the" maximum needs; the value costs nothing beyond `argmax`.
    """
    return _winner_one_hot(e, x, axis, True, bits)


def argmax(e: Engine, x: Secret, axis: int = -1, one_hot: bool = False,
           bits: int | None = None) -> Secret:
    """Index of the first largest element along `axis` (secret integer).

    With one_hot=True: a 0/1 vector over that axis (moved last) marking it,
    made from the tournament bits in ceil(log2 n) more rounds, n - 1 products.
    """
    return _arg(e, x, axis, True, one_hot, bits)


def argmin(e: Engine, x: Secret, axis: int = -1, one_hot: bool = False,
           bits: int | None = None) -> Secret:
    """Index (or one-hot) of the first smallest element along `axis`."""
    return _arg(e, x, axis, False, one_hot, bits)
