"""The RLWE pieces of one instance: error and uniform sampling, keys at the data level.

SEAL's encryption with two shortcuts the preprocessing relies on: a secret-key encryption
whose c1 is sent as its 32-byte seed (`expand_uniform`), and an encryption of zero under a
peer's public key computed at the data level, without the special prime
(`encrypt_zero_ntt`). Both keep SEAL 4's noise bounds (params.py).
"""

from __future__ import annotations

import numpy as np
import seal

from enigma.field import PRG

from .instance import PlainSlot
from .params import POLY_DEGREE, HEParameterError


def small_error(n: int, prg: PRG) -> np.ndarray:
    """Centred binomial errors on 2 x 21 bits (|e| <= 21, sigma 3.24), as SEAL 4 samples."""
    w = prg.words(n)
    m = np.uint64((1 << 21) - 1)
    return (np.bitwise_count(w & m).astype(np.int64)
            - np.bitwise_count((w >> np.uint64(21)) & m).astype(np.int64))


def uniform_mod(q: int, count: int, prg: PRG) -> np.ndarray:
    """`count` integers uniform on [0, q), by rejection from words of q's bit length."""
    mask = np.uint64((1 << q.bit_length()) - 1)
    out = prg.words(count) & mask
    bad = np.flatnonzero(out >= np.uint64(q))
    while bad.size:
        out[bad] = prg.words(bad.size) & mask
        bad = bad[out[bad] >= np.uint64(q)]
    return out


SEED_BYTES = 32


def expand_uniform(inst: PlainSlot, seed: bytes) -> np.ndarray:
    """c1 of a seeded encryption: uniform mod every data prime, from a 32-byte seed."""
    prg = PRG(b"enigma.prep.seeded-c1" + seed)
    return np.stack([uniform_mod(q, POLY_DEGREE, prg) for q in inst.q_limbs])


def data_level_key(inst: PlainSlot, pk: seal.PublicKey) -> seal.Ciphertext:
    """pk = (-a s + e, a) mod every prime of the key level, in NTT form (SEAL keeps it so):
    its first L limbs are the same pair mod the L data primes, an encryption of zero
    at the data level, kept as a ciphertext in NTT form."""
    raw = pk.to_string()
    n, limbs = POLY_DEGREE, len(inst.q_limbs)
    key_limbs = limbs + 1  # the special prime
    if len(raw) < 2 * key_limbs * n * 8:
        raise HEParameterError("a public key is shorter than the key level needs")
    data = np.frombuffer(raw, dtype="<u8", count=2 * key_limbs * n,
                         offset=len(raw) - 2 * key_limbs * n * 8).reshape(2, key_limbs, n)
    ct = seal.Ciphertext()
    ct.load_bytes(inst.context, inst.ntt_header + np.ascontiguousarray(data[:, :limbs]).tobytes())
    if not ct.is_ntt_form() or ct.parms_id() != inst.context.first_parms_id():
        raise HEParameterError("a public key did not give an NTT-form key at the data level")
    return ct


def encrypt_zero_ntt(inst: PlainSlot, public_ntt: seal.Ciphertext,
                     u_ntt: seal.Plaintext) -> seal.Ciphertext:
    """(pk_0 u, pk_1 u) for a ternary u (`ternary_ntt`), in NTT form at the data level.

    With c1's error e_1 (added by `flood`) this is SEAL's public-key encryption
    of zero without the special prime: c0 + c1 s = e u + e_1 s, at most
    2 * 21 * N. c0 gets no small error of its own: the flooding is its error.
    """
    return inst.evaluator.multiply_plain(public_ntt, u_ntt)
