"""Oblivious sorting of a secret vector by Batcher's odd-even merge sort.

A sorting network fixes, before seeing any data, which pairs of positions it
compares: the parties learn nothing from the schedule, and every layer's
compare-exchanges are independent, so a layer costs one batched comparison
(6 rounds at 64 bits, 2-bit digits) and one round of products, whatever its width. Batcher's network
(Batcher, "Sorting networks and their applications", AFIPS 1968; layout as
in Knuth, TAOCP vol. 3, §5.3.4) has log2(n) (log2(n) + 1) / 2 layers and
about n log2(n)^2 / 4 comparators.

Why odd-even merge rather than bitonic: every comparator of the odd-even
network puts the minimum at the lower position, so a length that is not a
power of two is handled by imagining +infinity at the missing positions and
dropping every comparator that touches one (they would never swap). The
bitonic network sorts half its runs downwards and would need real padding
values, which must be compared like any other. Odd-even merge also uses
fewer comparators (n = 1024: 24,063 against 28,160).

The network is not stable; `sort(..., stable=True)` sorts by key and index.

`shuffle` permutes rows obliviously by sorting them under secret random keys
drawn from the preprocessing: no party knows the permutation, and it is
uniform unless two keys collide (probability below n^2 / 2^65).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from enigma.sharing import AuthShare

from .engine import Engine
from .secret import Secret
from .select import join, lt


@lru_cache(maxsize=64)
def network(n: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The layers of Batcher's odd-even merge sort on n positions: (low, high) index arrays.

    Built for the next power of two N; a layer (p, k) compares t with t + k
    for every t with (t - k mod p) mod 2k < k inside one 2p-aligned run.
    Comparators reaching n or beyond are dropped.
    """
    if n < 2:
        return ()
    N = 1 << (n - 1).bit_length()
    t = np.arange(N)
    layers = []
    p = 1
    while p < N:
        k = p
        while k >= 1:
            offset = t - k % p
            keep = ((offset >= 0) & (offset % (2 * k) < k) & (t // (2 * p) == (t + k) // (2 * p))
                    & (t + k < n))
            low = t[keep]
            if low.size:
                layers.append((low, low + k))
            k //= 2
        p *= 2
    return tuple(layers)


def comparators(n: int) -> int:
    """How many compare-exchanges sorting n elements takes (for cost estimates)."""
    return sum(low.size for low, _ in network(n))


def _take(x: Secret, idx: np.ndarray) -> Secret:
    return Secret(x.engine, AuthShare(x.share.value[idx], x.share.mac[idx]))


def _put(x: Secret, idx: np.ndarray, part: Secret) -> None:
    x.share.value[idx] = part.share.value
    x.share.mac[idx] = part.share.mac


def sort(e: Engine, keys: Secret, payload: Secret | None = None, descending: bool = False,
         bits: int | None = None, stable: bool = False) -> tuple[Secret, Secret | None]:
    """Sort secret keys (shape (n,)) and move payload rows (shape (n,) or (n, m)) with them.

    One layer of the network, for comparator pairs (lo, hi):
    1. c = [key_hi < key_lo] (or [key_lo < key_hi] when descending): one comparison.
    2. In one round: d = c (key_hi - key_lo) and d_p = c (pay_hi - pay_lo).
    3. key_lo += d, key_hi -= d, and the same for the payload (local).
    Keys must differ by less than 2^(bits - 1) (default: the engine's k).
    stable=True keeps equal keys in their input order: the network sorts
    key 2^w + i (descending: key 2^w + n - 1 - i), w = bits of n - 1, with
    bits + w bits, and the original keys travel as a payload column (one
    more product per comparator).
    """
    if len(keys.shape) != 1:
        raise ValueError(f"sort keys must be a vector, got shape {keys.shape}")
    n = keys.shape[0]
    if payload is not None and payload.shape[0] != n:
        raise ValueError(f"payload has {payload.shape[0]} rows but there are {n} keys")
    if stable and n > 1:
        order = np.arange(n)[::-1] if descending else np.arange(n)
        width = (n - 1).bit_length()
        tagged = keys * (1 << width) + e.field.from_int64(np.ascontiguousarray(order))
        columns = [keys.reshape(n, 1)] + ([] if payload is None else [payload.reshape(n, -1)])
        _, moved = sort(e, tagged, join(columns, axis=1), descending,
                        (e.k if bits is None else bits) + width)
        rest = None if payload is None else moved[:, 1:].reshape(*payload.shape)
        return moved[:, 0], rest
    keys = keys.copy()
    payload = payload.copy() if payload is not None else None
    for low, high in network(n):
        k_lo, k_hi = _take(keys, low), _take(keys, high)
        c = lt(e, k_lo, k_hi, bits) if descending else lt(e, k_hi, k_lo, bits)
        pairs = [(c, k_hi - k_lo)]
        if payload is not None:
            p_lo, p_hi = _take(payload, low), _take(payload, high)
            wide_c = c if payload.shape == keys.shape else _repeat_columns(c, payload.shape[1:])
            pairs.append((wide_c, p_hi - p_lo))
        prods = e.mul_many(pairs)
        _put(keys, low, k_lo + prods[0])
        _put(keys, high, k_hi - prods[0])
        if payload is not None:
            _put(payload, low, p_lo + prods[1])
            _put(payload, high, p_hi - prods[1])
    return keys, payload


def _repeat_columns(c: Secret, shape: tuple[int, ...]) -> Secret:
    """A per-row bit repeated over the payload's trailing shape."""
    full = (c.shape[0], *shape, 2)
    extra = (slice(None),) + (None,) * len(shape)
    return Secret(c.engine, AuthShare(
        np.ascontiguousarray(np.broadcast_to(c.share.value[extra], full)),
        np.ascontiguousarray(np.broadcast_to(c.share.mac[extra], full))))


SHUFFLE_KEY_BITS = 64
"""Bits of the random sort keys of `shuffle`."""


def shuffle(e: Engine, rows: Secret) -> Secret:
    """A uniformly random permutation of the rows of `rows` (axis 0), unknown to every party.

    1. Take 64 shared random bits per row from the preprocessing; key = sum_i 2^i b_i (local).
    2. Sort the rows by these keys (`sort`).
    Costs as much as a sort of len(rows) keys with the rows as payload.
    """
    n = rows.shape[0]
    bits = Secret(e, e.provider.random_bits(n * SHUFFLE_KEY_BITS))
    weights = e.field.from_ints([[1 << i for i in range(SHUFFLE_KEY_BITS)]] * n)
    keys = bits.reshape(n, SHUFFLE_KEY_BITS).dot_public(weights, axis=1)
    _, out = sort(e, keys, rows, bits=SHUFFLE_KEY_BITS + 1)
    return out
