"""Integers wider than a machine word, as 48-bit chunks: reduced mod a prime or into F_p.

The preprocessing's products and masks are integers of up to about 300 bits; they are held
as rows of 48-bit limbs (low first), so that reducing them modulo a plaintext prime below
2^62 (Horner's rule with Shoup's products) or into the field (the field's own kernels) needs
no Python integers.
"""

from __future__ import annotations

import numpy as np

from enigma.field import PRG, Field

from .kernels import horner_kernel, shoup

_CHUNK = 48
_CHUNK_MASK = np.uint64((1 << _CHUNK) - 1)


def stack_chunks(chunks: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """Chunks as one C-contiguous 2-D array (what the kernels take), copied only if needed."""
    if isinstance(chunks, np.ndarray) and chunks.ndim == 2 and chunks.flags.c_contiguous:
        return chunks
    return np.ascontiguousarray(np.stack(chunks))


def reduce_mod(chunks: list[np.ndarray] | np.ndarray, q: int) -> np.ndarray:
    """sum_k chunks[k] 2^(48 k) mod q for a modulus 2^48 <= q < 2^62, as uint64."""
    stacked = stack_chunks(chunks)
    out = np.empty(stacked.shape[1], dtype=np.uint64)
    w = (1 << _CHUNK) % q
    horner_kernel(stacked, np.uint64(q), np.uint64(w), np.uint64(shoup(w, q)), out)
    return out


def as_elements(x: np.ndarray) -> np.ndarray:
    """uint64 values below the modulus as field elements (high word zero)."""
    out = np.zeros((x.shape[0], 2), dtype=np.uint64)
    out[:, 0] = x
    return out


def chunks_of_field(x: np.ndarray) -> list[np.ndarray]:
    """Split field elements (< 2^128) into 48-bit limbs, low first, each as a uint64 array."""
    lo, hi = x[..., 0], x[..., 1]
    return [lo & _CHUNK_MASK,
            (lo >> np.uint64(_CHUNK)) | ((hi & np.uint64(0xFFFFFFFF)) << np.uint64(16)),
            hi >> np.uint64(32)]


def reduce_chunks(chunks: list[np.ndarray] | np.ndarray, field: Field) -> np.ndarray:
    """sum_k chunks[k] 2^(48 k) mod field.p, by Horner's rule with the field's kernels.

    Every chunk must be below field.p, which holds for 48-bit chunks and moduli
    of 49 bits or more.
    """
    chunks = list(chunks)
    if field.bits > 2 * _CHUNK and len(chunks) > 2:
        # pairs of chunks are 96-bit field elements: half the Horner steps
        if len(chunks) % 2:
            chunks.append(np.zeros_like(chunks[0]))
        pairs = []
        for lo, hi in zip(chunks[0::2], chunks[1::2], strict=True):
            el = np.empty((*lo.shape, 2), dtype=np.uint64)
            el[..., 0] = lo | (hi << np.uint64(_CHUNK))
            el[..., 1] = hi >> np.uint64(64 - _CHUNK)
            pairs.append(el)
        shift = np.broadcast_to(field.const(1 << (2 * _CHUNK)), pairs[0].shape).copy()
        acc = pairs[-1]
        for el in reversed(pairs[:-1]):
            acc = field.muladd(acc, shift, el)
        return acc
    shift = field.const(1 << _CHUNK)
    acc = np.zeros((*chunks[-1].shape, 2), dtype=np.uint64)
    acc[..., 0] = chunks[-1]
    term = np.zeros_like(acc)
    for chunk in reversed(chunks[:-1]):
        term[..., 0] = chunk
        acc = field.muladd(acc, np.broadcast_to(shift, acc.shape).copy(), term)
    return acc


def random_chunks(count: int, bits: int, prg: PRG) -> np.ndarray:
    """A uniform integer on `bits` bits per element, as 48-bit chunks (rows, low first)."""
    n_chunks = -(-bits // _CHUNK)
    words = prg.words(count * n_chunks).reshape(n_chunks, count) & _CHUNK_MASK
    top = bits - _CHUNK * (n_chunks - 1)
    words[-1] &= np.uint64((1 << top) - 1)
    return words
