"""Outputs to a client outside the quorum (the data owner), checkable by the client alone.

The SPDZ MAC key alpha must never leave the quorum, so the owner cannot check
SPDZ MACs. Instead the owner picks its own secret key k and gives the quorum
additive shares of it (each node receives k_i encrypted to it). The nodes
turn these into an authenticated [k] by inputting them, compute [z] = [k][x]
next to the result [x], run the MAC check among themselves, and send the owner
their plain additive shares of x and z. The owner recombines both and accepts
only if z = k x: a coalition that shifts x by d must shift z by k d without
knowing k, which succeeds with probability 1/p per element. A node that
inputs a wrong k_i makes the check fail too: detection, never a wrong result.
This is the idea of a MAC under a key held by the receiver (as in the
client-output protocols of Damgard, Damgard, Nielsen, Nordholt, Toft,
"Confidential benchmarking based on multiparty computation", FC 2016).
"""

from __future__ import annotations

import numpy as np

from enigma.field import PRG, Field
from enigma.sharing import additive

from .engine import Engine
from .secret import Secret


class OutputCheckError(RuntimeError):
    """The result shares received by the owner fail the owner's own MAC check."""


def owner_key_shares(field: Field, parties: int,
                     prg: PRG | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """The owner's key k (one element) and its additive shares, one per quorum member."""
    k = field.random(1, prg)
    return k, additive.split(field, k, parties, prg)


def key_from_shares(e: Engine, my_key_share: np.ndarray) -> Secret:
    """[k] from every member's share k_i: each member inputs its share, the inputs are summed."""
    total = None
    for member in range(e.parties):
        mine = my_key_share.reshape(1, 2) if member == e.party else None
        part = e.input(member, mine, 1)
        total = part if total is None else total + part
    return total


def seal_output(e: Engine, x: Secret, key: Secret) -> tuple[np.ndarray, np.ndarray]:
    """This member's additive shares of (x, k x), after the quorum's MAC check.

    1. [z] = [k] [x] (one round; k is broadcast over x's shape).
    2. MAC check of everything opened so far (3 rounds).
    3. Return the value shares of x and z, to be encrypted to the owner.
    """
    z = e.mul(key.reshape(1).broadcast_to(*x.shape), x)
    e.check()
    return x.share.value.copy(), z.share.value.copy()


def open_output(field: Field, key: np.ndarray, shares: list[tuple[np.ndarray, np.ndarray]]
                ) -> np.ndarray:
    """The owner's side: recombine (x, z) from every member and check z = k x."""
    if not shares:
        raise OutputCheckError("no result shares received")
    x = additive.combine(field, [s[0] for s in shares])
    z = additive.combine(field, [s[1] for s in shares])
    expected = field.mul(x.reshape(-1, 2), key.reshape(2)).reshape(x.shape)
    bad = ~field.equal(expected, z)
    if bad.any():
        raise OutputCheckError(
            f"{int(bad.sum())} of {bad.size} result elements fail the owner's check: a node "
            "changed its result share or its key share; the result is refused")
    return x
