"""Bounded random values from the parties' own contributions, with a batched range proof.

Why: the high part r_high of a comparison or truncation mask (`mpc.preprocessing`) only
has to be bounded, so that x + r does not wrap modulo p, and to hide x statistically.
Made of MAC'd random bits it costs k + kappa - m bits (about 41), each a Beaver product
of the square-root trick, per mask. Here every party contributes one value of its own
instead, and a batched proof with slack (in the style of the amortised proofs of
plaintext knowledge of SPDZ, Damgard et al. 2012, section 5, and Cramer and Damgard,
"On the amortized complexity of zero-knowledge protocols", CRYPTO 2009) shows that every
contribution is bounded; one honest party's contribution alone hides x.

The protocol (`contributed`), for n values of L bits, chunks of C = 2^12 values:

1. Every party i takes n + ROWS ceil(n / C) of its input masks [r] (i knows r). It
   splits each r = lo + 2^w hi with lo = r mod 2^w (w = L for values, w = L + SLACK for
   the proof's masks y) and broadcasts d = r - lo; all set [rho_i] = [r] - d. d reveals
   nothing of lo but a 2^w / p bias.
2. Coins are tossed (after every d is fixed) for a 0/1 matrix M of ROWS rows per chunk.
3. All open z = y_j + sum_l M[j, l] rho_i[l] for every party i, chunk and row j.
4. Abort unless every z lies in [0, 2^(L + SLACK) + C 2^L): then every contribution is
   below 2^(L + SLACK + 1) in absolute value except with probability 2^-ROWS, since for
   a larger rho_i[l] at most one of the two values of M[j, l] passes row j. An honest
   party's z is within statistical distance 2^-(SLACK - 12) of y_j alone, so the
   openings leak at most ROWS 2^-(SLACK - 12) < 2^-40 per chunk.
5. [R] = sum_i ([rho_i] + 2^(L + SLACK + 1)): 0 < R < q 2^(L + SLACK + 2) for a malicious
   coalition, uniform on 2^L shifted by the others' values when one party is honest.
"""

from __future__ import annotations

import numpy as np

from enigma.field import Field
from enigma.mpc.comparison import low_bits
from enigma.mpc.engine import Engine, ProtocolError
from enigma.mpc.preprocessing import KAPPA
from enigma.sharing import AuthShare, spdz

CHUNK_BITS = 12
"""log2 of the values one row of the proof weighs together."""
ROWS = KAPPA
"""Rows of the proof per chunk: soundness 2^-ROWS."""
SLACK = CHUNK_BITS + KAPPA + 6
"""Extra bits of the proof's masks over L: hide a chunk's sum up to 2^-(KAPPA + 6) per row."""


class RangeProofError(RuntimeError):
    """A party's contribution to a bounded random value failed its range proof: abort."""


def contribution_bound(L: int, parties: int) -> int:
    """The largest R that `contributed(..., L)` can return, even with malicious parties."""
    return parties << (L + SLACK + 2)


def fits(field: Field, m: int, k: int, parties: int) -> bool:
    """Whether a k-bit value plus an m-bit r_low plus 2^m R (R of `contributed` for
    L = k + KAPPA - m bits) stays below p, so that the opening never wraps."""
    L = k + KAPPA - m
    return (1 << k) + (1 << m) + (contribution_bound(L, parties) << m) < field.p


def contributed(engine: Engine, provider, n: int, L: int) -> AuthShare:
    """[R] for n values: steps 1-5 of the module docstring, on `engine` (a protocol).

    `provider` hands out the input masks (`input_masks(owner, count)`); every party must
    call this at the same point with the same n and L.
    """
    F = engine.field
    q, me = engine.parties, engine.party
    chunks = -(-n // (1 << CHUNK_BITS))
    width = chunks << CHUNK_BITS
    extra = ROWS * chunks
    masks = [provider.input_masks(owner, n + extra) for owner in range(q)]
    mine = masks[me].clear
    lows = np.concatenate([low_bits(F, mine[:n], L), low_bits(F, mine[n:], L + SLACK)])
    sent = F.sub(mine, lows)
    received = engine.channel.broadcast(F.to_bytes(sent))
    engine.stats.rounds += 1
    engine.stats.bytes_sent += sent.nbytes * (q - 1)
    values, proofs = [], []
    for owner in range(q):
        if owner == me:
            d = sent
        else:
            frames = received[owner]
            try:
                if len(frames) != 1:
                    raise ValueError(f"{len(frames)} frames")
                d = F.from_bytes(frames[0], shape=n + extra)
            except ValueError as exc:
                raise ProtocolError(f"party {owner} sent a malformed contribution: {exc}") \
                    from exc
        share = spdz.add_public(F, masks[owner].r, F.neg(d), engine.alpha, me)
        values.append(AuthShare(share.value[:n], share.mac[:n]))
        proofs.append(AuthShare(share.value[n:], share.mac[n:]))
    coins = engine.public_coins(b"enigma.bounded")
    words = coins.words(q * ROWS * width // 64 + 1)
    choice = np.unpackbits(words.view(np.uint8), bitorder="little")[:q * ROWS * width]
    choice = choice.reshape(q, ROWS, chunks, 1 << CHUNK_BITS)
    opened_v, opened_m = [], []
    for owner in range(q):
        rho = values[owner]
        padded = [np.concatenate([a, F.zeros(width - n)]).reshape(chunks, 1 << CHUNK_BITS, 2)
                  for a in (rho.value, rho.mac)]
        y = proofs[owner]
        for j in range(ROWS):
            weights = F.zeros((chunks, 1 << CHUNK_BITS))
            weights[..., 0] = choice[owner, j]
            rows = slice(j * chunks, (j + 1) * chunks)
            opened_v.append(F.add(y.value[rows], F.dot(padded[0], weights, axis=1)))
            opened_m.append(F.add(y.mac[rows], F.dot(padded[1], weights, axis=1)))
    (z,) = engine.open(engine.secret(AuthShare(np.concatenate(opened_v),
                                               np.concatenate(opened_m))))
    limit = (1 << (L + SLACK)) + (1 << (L + CHUNK_BITS))
    big = F.to_ints(z) >= limit
    if np.any(big):
        engine.check()  # a wrong opening is a MAC failure, not a range failure
        owner = int(np.flatnonzero(big)[0]) // (ROWS * chunks)
        raise RangeProofError(
            f"the range proof of party {owner}'s contribution to the masks failed: a party "
            "deviated (its contribution, or its share of another's); the job is aborted")
    total = AuthShare(F.zeros(n), F.zeros(n))
    for rho in values:
        total = spdz.add(F, total, rho)
    offset = np.repeat(F.const(q << (L + SLACK + 1))[None], n, axis=0)
    return spdz.add_public(F, total, offset, engine.alpha, me)
