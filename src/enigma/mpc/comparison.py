"""Comparison, equality and truncation of secret k-bit integers.

All three open x + r for a mask r = r_low + 2^m r_high that statistically hides
x (kappa = 40 bits of slack: k + kappa + 1 <= log2 p), reduce the public
opening modulo 2^m, and correct for the wrap-around with a comparison of
public digits against the secret digits of r_low (Catrina and de Hoogh,
"Improved primitives for secure multiparty integer computation", SCN 2010,
Mod2m and LTZ; Catrina and Saxena, FC 2010, TruncPr).

The digit comparison is ours: r_low comes from the preprocessing as base-2^b
digits in thermometer code t[d, v] = [r_d >= v], so for a public digit c
[r_d > c] = t[d, c + 1] and [r_d == c] = t[d, c] - t[d, c + 1] are linear.
Digits are then combined pairwise in a tree, most significant first:
(lt, eq) = (lt_H + eq_H lt_L, eq_H eq_L), two products per node, all products
of a tree level in one round.

The digit size b is chosen per operation by cost (`digit_bits`): the thermometer
of a digit takes 2^b - b - 1 products (preprocessing), the tree about two per
digit (online). For m = 63, b = 2 takes 32 + 61 products (6 rounds with the
opening), b = 4 takes 176 + 29 (5 rounds); for a one-hot over L levels the tree
runs once per level, so wider digits win there. `at_least_many` compares one secret with
many public thresholds the same way: one opening, one thermometer, a tree per threshold.
"""

from __future__ import annotations

import numpy as np

from enigma.sharing import AuthShare

from . import kernels as mk
from .chunking import digit_row_bytes, rowwise
from .engine import MUL_ROW_BYTES, Engine
from .preprocessing import KAPPA
from .secret import Secret


def low_bits(F, c: np.ndarray, m: int) -> np.ndarray:
    """Public field elements mod 2^m, as uint64 pairs of (lo, hi) words."""
    out = c.reshape(-1, 2).copy()
    if m < 64:
        out[:, 0] &= np.uint64((1 << m) - 1)
        out[:, 1] = 0
    else:
        out[:, 1] &= np.uint64((1 << (m - 64)) - 1)
    return out


def _digits(c_low: np.ndarray, m: int, b: int) -> np.ndarray:
    """Base-2^b digits (least significant first) of public m-bit values, shape (n, D)."""
    D = -(-m // b)
    out = np.empty((c_low.shape[0], D), dtype=np.int64)
    mask = np.uint64((1 << b) - 1)
    for d in range(D):  # loop over digit positions (at most 64), not over elements
        shift = d * b
        if shift >= 64:
            word = c_low[:, 1] >> np.uint64(shift - 64)
        elif shift + b > 64:
            word = (c_low[:, 0] >> np.uint64(shift)) | (c_low[:, 1] << np.uint64(64 - shift))
        else:
            word = c_low[:, 0] >> np.uint64(shift)
        out[:, d] = (word & mask).astype(np.int64)
    return out


def _thermometer_lookup(e: Engine, therm: AuthShare, digits: np.ndarray,
                        rows: np.ndarray | None = None) -> tuple[Secret, Secret]:
    """[r_d > c_d] and [r_d == c_d] for public digits c (m, D) and thermometer (n, D, V).

    With t[v] = [r_d >= v] stored at position v - 1: [r_d > c] = t[c + 1] (0 when
    c = V), and [r_d == c] = t[c] - t[c + 1] with t[0] = 1. Row i of `digits` is
    compared with thermometer row rows[i] (default: row i).
    """
    F = e.field
    m, D = digits.shape
    rows = np.arange(m) if rows is None else rows
    one = e.constant(F.const(1).reshape(1, 2)).share
    digits = np.ascontiguousarray(digits, dtype=np.int64)
    parts = []
    for table, unit in ((therm.value, one.value[0]), (therm.mac, one.mac[0])):
        gt = np.empty((m, D, 2), dtype=np.uint64)
        eq = np.empty((m, D, 2), dtype=np.uint64)
        mk.lookup_kernel(np.ascontiguousarray(table), digits, rows, unit, gt, eq, F.params)
        parts.append((gt, eq))
    (gt_v, eq_v), (gt_m, eq_m) = parts
    return Secret(e, AuthShare(gt_v, gt_m)), Secret(e, AuthShare(eq_v, eq_m))


def _tree_less(e: Engine, lt: Secret, eq: Secret) -> Secret:
    """[c < r] from per-digit (lt, eq), digits along axis 1, least significant first."""
    while lt.shape[1] > 1:
        D = lt.shape[1]
        pairs = D // 2
        lo_lt, hi_lt = lt[:, 0:2 * pairs:2], lt[:, 1:2 * pairs:2]
        lo_eq, hi_eq = eq[:, 0:2 * pairs:2], eq[:, 1:2 * pairs:2]
        if pairs > 1 or D % 2:
            prod_lt, prod_eq = e.mul_many([(hi_eq, lo_lt), (hi_eq, lo_eq)])
        else:
            (prod_lt,) = e.mul_many([(hi_eq, lo_lt)])
            prod_eq = prod_lt  # the root needs no equality
        new_lt, new_eq = hi_lt + prod_lt, prod_eq
        if D % 2:  # the top digit has no partner at this level: carry it up unchanged
            new_lt = _append(new_lt, lt[:, D - 1:D])
            new_eq = _append(new_eq, eq[:, D - 1:D])
        lt, eq = new_lt, new_eq
    return lt[:, 0]


def less_than_public(e: Engine, bits: Secret, c: np.ndarray) -> Secret:
    """[r < c] for secret r = sum_i 2^i bits[:, i] (shared 0/1, least significant first) and
    public c in [0, 2^k) (int64, one per row): no opening, 1 + ceil(log2 ceil(k / 2)) rounds.

    Why no mask: r already comes in shared bits (random bits from the preprocessing), so
    the masked opening of `ltz` has nothing to hide. Pairs of bits make base-4 digits in
    thermometer code, t1 = b0 + b1 - b0 b1, t2 = b1, t3 = b0 b1 (one product per digit,
    one round), and the digit tree of `ltz` compares them with c - 1: [r < c] = 1 - [c - 1 < r].
    Against bits compared one by one (t_i linear, a tree over k digits: 93 products at
    k = 48) this takes 24 + 45 = 69 at the same number of rounds. The bits must be 0/1; this
    function does not check it.
    """
    F = e.field
    n, k = bits.shape
    c = np.asarray(c, dtype=np.int64).reshape(n)
    if (c < 0).any() or (k < 63 and (c >= (1 << k)).any()):
        raise ValueError(f"public bounds must lie in [0, 2^{k}) to compare with {k}-bit values")
    if k % 2:  # a public 0 on top: digits of two bits each
        bits = _append(bits, e.constant(F.zeros(n).reshape(n, 1, 2)))
    low, high = bits[:, 0::2], bits[:, 1::2]
    both = e.mul(low, high)
    D = high.shape[1]
    value = np.stack([(low + high - both).share.value, high.share.value, both.share.value], 2)
    mac = np.stack([(low + high - both).share.mac, high.share.mac, both.share.mac], 2)
    below = np.maximum(c - 1, 0)  # c = 0: [r < 0] is 0, set below by the public factor
    digits = (below[:, None] >> (2 * np.arange(D, dtype=np.int64))[None, :]) & 3
    gt, eq = _thermometer_lookup(e, AuthShare(value, mac), digits)
    at_least = _tree_less(e, gt, eq)  # [c - 1 < r]
    return (1 - at_least) * F.from_int64((c > 0).astype(np.int64))


def _tree_equal(e: Engine, eq: Secret) -> Secret:
    """Product of the per-digit equalities along axis 1."""
    while eq.shape[1] > 1:
        D = eq.shape[1]
        pairs = D // 2
        prod = e.mul(eq[:, 0:2 * pairs:2], eq[:, 1:2 * pairs:2])
        eq = _append(prod, eq[:, D - 1:D]) if D % 2 else prod
    return eq[:, 0]


def _append(a: Secret, b: Secret) -> Secret:
    return Secret(a.engine, AuthShare(np.concatenate([a.share.value, b.share.value], axis=1),
                                      np.concatenate([a.share.mac, b.share.mac], axis=1)))


def _bound(e: Engine, bits: int | None) -> int:
    """The bit bound k of the inputs; masking needs k + kappa + 1 <= log2 p."""
    k = e.k if bits is None else bits
    if not 1 <= k <= e.field.bits - KAPPA - 1:
        raise ValueError(f"inputs of {k} bits cannot be masked with {KAPPA} bits of statistical "
                         f"security in a {e.field.bits}-bit field")
    return k


MAX_DIGIT_BITS = 4
"""Widest digit: a thermometer holds 2^b - 1 entries per digit, memory grows with them."""


def _less_tree_products(D: int) -> int:
    """Products `_tree_less` takes for D digits."""
    total = 0
    while D > 1:
        pairs = D // 2
        total += 2 * pairs if pairs > 1 or D % 2 else 1
        D = pairs + D % 2
    return total


def digit_bits(e: Engine, m: int, kind: str, levels: int = 1) -> int:
    """The digit size b with the fewest products for an m-bit r_low: thermometer plus tree.

    `kind` is "less" (`_tree_less`) or "equal" (`_tree_equal`), the tree run `levels`
    times per value (one-hot's levels, `at_least_many`'s thresholds). Ties go to the
    wider digit (fewer online rounds). An engine made with an explicit `digit_bits`
    keeps it.
    """
    if e.digit_bits is not None:
        return e.digit_bits

    def cost(b: int) -> int:
        D = -(-m // b)
        tree = levels * (_less_tree_products(D) if kind == "less" else D - 1)
        return D * ((1 << b) - b - 1) + tree

    return min(range(MAX_DIGIT_BITS, 0, -1), key=cost)


def _masked_open(e: Engine, x: Secret, m: int, k: int, offset: int, b: int):
    """Open c = x + offset + r_low + 2^m r_high; return (c mod 2^m, digits of c, masks)."""
    F = e.field
    n = x.size
    masks = e.provider.digit_masks(n, m, k, b)
    therm = Secret(e, masks.thermometer)
    r_low = Secret(e, masks.low)
    r = r_low + Secret(e, masks.high) * (1 << m)
    (c,) = e.open(x.reshape(n) + r + offset)
    c_low = low_bits(F, c, m)
    return c_low, _digits(c_low, m, masks.digit_bits), therm, r_low


@rowwise(lambda e, m, **_: digit_row_bytes(m, digit_bits(e, m, "less")), keep_shape=False)
def mod2m(e: Engine, x: Secret, m: int, offset: int = 0, bits: int | None = None) -> Secret:
    """[(x + offset) mod 2^m] for 0 <= x + offset < 2^bits (default: the engine's k)."""
    k = _bound(e, bits)
    c_low, digits, therm, r_low = _masked_open(e, x, m, k, offset, digit_bits(e, m, "less"))
    gt, eq = _thermometer_lookup(e, therm.share, digits)
    wrap = _tree_less(e, gt, eq)  # [c_low < r_low]
    return wrap * (1 << m) - r_low + c_low


def _sign_bound(e: Engine, bits: int | None) -> int:
    """`ltz`'s k: at least 2, since its r_low has k - 1 bits and needs one digit (a 1-bit
    input, -1 or 0, is also a 2-bit one)."""
    return max(2, _bound(e, bits))


@rowwise(lambda e, bits, **_: digit_row_bytes(_sign_bound(e, bits) - 1,
                                               digit_bits(e, _sign_bound(e, bits) - 1, "less")))
def ltz(e: Engine, x: Secret, bits: int | None = None) -> Secret:
    """[x < 0] for -2^(k-1) <= x < 2^(k-1), k = bits (default: the engine's), as 0/1."""
    F = e.field
    k = _sign_bound(e, bits)
    m = k - 1
    shape = x.shape
    y_mod = mod2m(e, x, m, offset=1 << m, bits=k)  # (x + 2^(k-1)) mod 2^(k-1)
    # top bit of y = x + 2^(k-1): (y - y mod 2^m) / 2^m; x < 0 iff it is 0
    top = (x.reshape(x.size) + (1 << m) - y_mod) * F.inverse(F.const(1 << m).reshape(1, 2))[0]
    return (1 - top).reshape(*shape)


@rowwise(lambda e, bits, **_: digit_row_bytes(_bound(e, bits),
                                               digit_bits(e, _bound(e, bits), "equal")))
def eqz(e: Engine, x: Secret, bits: int | None = None) -> Secret:
    """[x == 0] for -2^(k-1) <= x < 2^(k-1), k = bits (default: the engine's), as 0/1."""
    k = _bound(e, bits)
    shape = x.shape
    # x + 2^k lies in [2^(k-1), 2^k + 2^(k-1)): k + 1 bits to mask, zero mod 2^k iff x is
    _, digits, therm, _ = _masked_open(e, x, k, _bound(e, k + 1), 1 << k,
                                       digit_bits(e, k, "equal"))
    _, eq = _thermometer_lookup(e, therm.share, digits)
    return _tree_equal(e, eq).reshape(*shape)


@rowwise(lambda e, levels, **_: digit_row_bytes(
    max(1, (levels - 1).bit_length()),
    digit_bits(e, max(1, (levels - 1).bit_length()), "equal", levels), levels), keep_shape=False)
def one_hot(e: Engine, x: Secret, levels: int) -> Secret:
    """[x == j] for j = 0 .. levels - 1 (shape (n, levels)), for 0 <= x < levels.

    One opening of x + r serves every level: (x - j + r_low) mod 2^k is the
    public (c - j) mod 2^k, compared digit by digit with r_low; when k fits in
    one digit the comparison is linear and the whole one-hot costs one round.
    """
    k = max(1, (levels - 1).bit_length())
    n = x.size
    b = digit_bits(e, k, "equal", levels)
    c_low, _, therm, _ = _masked_open(e, x, k, _bound(e, k + 1), 0, b)
    lo = c_low[:, 0].astype(np.int64)
    shifted = (lo[:, None] - np.arange(levels)[None, :]) % (1 << k)  # (n, levels)
    D = therm.shape[1]
    digits = np.stack([(shifted >> (b * d)) & ((1 << b) - 1) for d in range(D)], axis=-1)
    rows = np.repeat(np.arange(n), levels)
    _, eq = _thermometer_lookup(e, therm.share, digits.reshape(n * levels, D), rows)
    return _tree_equal(e, eq).reshape(n, levels)


def _shift_low(c_low: np.ndarray, shifts: list[int], m: int) -> np.ndarray:
    """(c + s_j) mod 2^m for public m-bit values c ((n, 2) words) and integer shifts s (L,):
    shape (n * L, 2), row i * L + j for (c_i, s_j). Two-word addition modulo 2^128 (the
    shifts in two's complement), then the low m <= 127 bits."""
    s = np.array([v % (1 << 128) for v in shifts], dtype=object)
    s_lo = (s & ((1 << 64) - 1)).astype(np.uint64)[None, :]
    s_hi = (s >> 64).astype(np.uint64)[None, :]
    lo = c_low[:, 0:1] + s_lo  # wraps modulo 2^64
    hi = c_low[:, 1:2] + s_hi + (lo < s_lo).astype(np.uint64)
    return low_bits(None, np.stack([lo, hi], axis=-1).reshape(-1, 2), m)


def _many_bits(e: Engine, thresholds, bits: int | None) -> tuple[int, int, int]:
    """(k, m, b) of `at_least_many`: the bound, r_low's bits, the digit size."""
    k = _sign_bound(e, bits)
    return k, k - 1, digit_bits(e, k - 1, "less", max(1, len(thresholds)))


@rowwise(lambda e, thresholds, bits, **_: digit_row_bytes(
    *_many_bits(e, thresholds, bits)[1:], max(1, len(thresholds))), keep_shape=False)
def at_least_many(e: Engine, x: Secret, thresholds, bits: int | None = None) -> Secret:
    """[x >= t_j] for secret x (n,) and public integers t (L,), shape (n, L), as 0/1, for
    -2^(k-1) <= x - t_j < 2^(k-1) for every j, k = bits (default: the engine's).

    `ltz` of each x - t_j opens L masked values per element; here one opening serves every
    threshold. Open c = y_0 + r with y_j = x - t_j + 2^m (m = k - 1, y_j in [0, 2^k)) and
    r = r_low + 2^m r_high hiding y_0 as in `ltz`. Since the t_j are public, so is
    c_j = c + t_0 - t_j = y_j + r (an integer below p, no wrap), and as in `mod2m`
    y_j mod 2^m = c_j mod 2^m - r_low + 2^m [c_j mod 2^m < r_low], the bracket compared
    digit by digit against r_low's one thermometer (the rows repeated, as `one_hot` does).
    [x >= t_j] is y_j's top bit: (y_j - y_j mod 2^m) / 2^m. One mask (its bits, r_high and
    thermometer) per element; each threshold adds only its digit tree (online products,
    the rounds of one `ltz`).
    """
    F = e.field
    t = [int(v) for v in thresholds]
    if not t:
        raise ValueError("at_least_many: no thresholds to compare with")
    k, m, b = _many_bits(e, t, bits)
    n, L = x.size, len(t)
    c_low, _, therm, r_low = _masked_open(e, x, m, k, (1 << m) - t[0], b)
    shifted = _shift_low(c_low, [t[0] - v for v in t], m)  # c_j mod 2^m, (n L, 2)
    rows = np.repeat(np.arange(n), L)
    gt, eq = _thermometer_lookup(e, therm.share, _digits(shifted, m, b), rows)
    wrap = _tree_less(e, gt, eq).reshape(n, L)  # [c_j mod 2^m < r_low]
    # y_j - y_j mod 2^m = (x + r_low) + (2^m - t_j - c_j mod 2^m) - 2^m wrap_j
    public = F.sub(np.ascontiguousarray(np.broadcast_to(F.from_ints([(1 << m) - v for v in t]),
                                                        (n, L, 2))),
                   shifted.reshape(n, L, 2))
    base = (x.reshape(n) + r_low).reshape(n, 1).broadcast_to(n, L)
    inv = F.inverse(F.const(1 << m).reshape(1, 2))[0]
    return (base + public) * inv - wrap


@rowwise(lambda **_: MUL_ROW_BYTES)
def trunc(e: Engine, x: Secret, m: int, bits: int | None = None) -> Secret:
    """Probabilistic x / 2^m rounded to a neighbouring integer (TruncPr), one round.

    For |x| < 2^(k-1), k = bits (default: the engine's): the result is
    floor(x / 2^m) or that plus one, the latter with probability
    (x mod 2^m) / 2^m, so the error is below one unit.
    """
    F = e.field
    k = _bound(e, bits)
    shape, n = x.shape, x.size
    masks = e.provider.trunc_masks(n, m, k)
    low, high = Secret(e, masks.low), Secret(e, masks.high)
    (c,) = e.open(x.reshape(n) + (1 << (k - 1)) + low + high * (1 << m))
    c_low = low_bits(F, c, m)
    inv = F.inverse(F.const(1 << m).reshape(1, 2))[0]
    return ((x.reshape(n) - c_low + low) * inv).reshape(*shape)
