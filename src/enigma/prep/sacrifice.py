"""Check triples against spare ones before use, so that a wrong triple never reaches a computation.

Without zero-knowledge proofs, a malicious node can make a pairwise product
come out as a b + e for an error e of its choice (it encrypts something else,
or returns another ciphertext). The sacrifice (SPDZ, Damgard et al. 2012,
section 2; SPDZ-2, Damgard et al. 2013, section 4) spends a second triple
(a', b, c') with the same b to catch any such error: for a public challenge s
chosen after the triples are fixed, s c - c' - (s a - a') b is zero exactly
when s e = e', which a node that fixed e and e' beforehand hits with
probability 1/p per element. The openings are MAC-checked, so the node cannot
lie about them either.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from enigma.field import PRG, Field, FieldError
from enigma.mpc.engine import Channel, Engine
from enigma.mpc.preprocessing import Triples
from enigma.sharing import AuthShare, commit, spdz


class SacrificeError(RuntimeError):
    """A triple failed its check: some node corrupted its contribution. Abort."""


def toss_coins(channel: Channel, label: bytes) -> PRG:
    """A public random generator no coalition short of all parties can bias.

    1. Each party commits to 32 random bytes and broadcasts the commitment.
    2. Each party broadcasts its bytes and nonce; all verify every commitment.
    3. The generator is seeded with the hash of all bytes in party order.
    """
    mine = os.urandom(32)
    com, nonce = commit.commit(mine)
    commitments = {p: bytes(f[0]) for p, f in channel.broadcast(com).items()}
    openings = channel.broadcast(nonce, mine)
    seeds = []
    for p in range(channel.parties):
        if p == channel.party:
            seeds.append(mine)
            continue
        frames = openings[p]
        if len(frames) != 2:
            raise SacrificeError(f"party {p} sent {len(frames)} frames for its coin, not 2")
        try:
            commit.verify(commitments[p], bytes(frames[1]), bytes(frames[0]), who=f"party {p}")
        except commit.CommitmentError as exc:
            raise SacrificeError(f"coin tossing failed: {exc}") from exc
        seeds.append(bytes(frames[1]))
    return PRG(hashlib.sha256(label + b"".join(seeds)).digest())


def sacrifice(engine: Engine, triples: Triples, spare_a: AuthShare, spare_c: AuthShare) -> None:
    """Check (a, b, c) against (a', b, c'); raise SacrificeError unless every c = a b.

    1. Toss coins for a public random challenge s per triple.
    2. Open rho = s a - a'.
    3. Compute sigma = s c - c' - rho b locally; open sigma.
    4. MAC-check every opening (raises MacCheckError on a lie).
    5. Abort unless every sigma is zero.
    """
    F: Field = engine.field
    n = triples.a.value.shape[0]
    s = F.random(n, toss_coins(engine.channel, b"enigma.sacrifice"))
    rho_share = spdz.sub(F, spdz.scale(F, triples.a, s), spare_a)
    (rho,) = engine.open(engine.secret(rho_share))
    sigma_share = spdz.sub(F, spdz.sub(F, spdz.scale(F, triples.c, s), spare_c),
                           spdz.scale(F, triples.b, rho))
    _require_zero(engine, sigma_share, "triples failed the sacrifice check",
                  "a product; the preprocessing is aborted and no triple of this batch is used")


def _require_zero(engine: Engine, sigma_share: AuthShare, what: str, corrupted: str) -> None:
    """Open sigma, MAC-check every opening, raise SacrificeError naming the first nonzero."""
    (sigma,) = engine.open(engine.secret(sigma_share))
    engine.check()
    bad = np.flatnonzero(np.any(sigma != 0, axis=-1))
    if bad.size:
        raise SacrificeError(
            f"{bad.size} of {sigma.shape[0]} {what} (first at index {int(bad[0])}): a node "
            f"corrupted its share of {corrupted}")


def open_unchecked(engine: Engine, share: np.ndarray) -> np.ndarray:
    """Sum of every party's share of a value without a MAC, in one broadcast.

    Only for a value whose correctness a later check proves (`check_squares`): a
    party may lie here, and then that check fails.
    """
    F: Field = engine.field
    total = share.copy()
    for peer, frames in engine.channel.broadcast(F.to_bytes(share)).items():
        try:
            if len(frames) != 1:
                raise FieldError(f"{len(frames)} frames, not 1")
            F.add(total, F.from_bytes(frames[0], shape=share.shape[0]), out=total)
        except FieldError as exc:
            raise SacrificeError(f"party {peer} opened a malformed share: {exc}") from exc
    return total


def check_squares(engine: Engine, a: AuthShare, square: np.ndarray, spare_a: AuthShare,
                  spare_square: AuthShare) -> None:
    """Check a public `square` against [a] with a spare ([a'], [A']); raise unless square = a^2.

    The square pair's version of `sacrifice` (docs/preprocessing.md, "Random bits"):
    1. Toss coins for a public random challenge s per element.
    2. Open rho = s a - a' (MAC-checked).
    3. sigma = s^2 y - A' - rho (s a + a') locally (y = `square`, public); open sigma.
    4. MAC-check every opening; abort unless every sigma is zero.
    sigma = s^2 (y - a^2) - (A' - a'^2): with y and the MAC'd a, a', A' fixed before
    s, it is zero for y != a^2 only if s^2 hits one value, probability <= 2/p.
    """
    F: Field = engine.field
    n = a.value.shape[0]
    s = F.random(n, toss_coins(engine.channel, b"enigma.squares"))
    rho_share = spdz.sub(F, spdz.scale(F, a, s), spare_a)
    (rho,) = engine.open(engine.secret(rho_share))
    linear = spdz.add(F, spare_square,
                      spdz.scale(F, spdz.add(F, spdz.scale(F, a, s), spare_a), rho))
    sigma_share = spdz.add_public(F, spdz.scale(F, linear, F.const(-1)),
                                  F.mul(F.mul(s, s), square), engine.alpha, engine.party)
    _require_zero(engine, sigma_share, "random values failed the square check",
                  "a square; the preprocessing is aborted and no bit of this batch is used")
