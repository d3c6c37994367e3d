"""Programs the blame tests run in every party's process (spawned, so they must be importable)."""

from __future__ import annotations

import numpy as np

from enigma.field import Field

F = Field()
N = 6


def products(e, xs: np.ndarray, ys: np.ndarray):
    """Two inputs, two rounds of products (through kings when N >= king_threshold), an output."""
    x = e.input(0, F.from_int64(xs) if e.party == 0 else None, N)
    y = e.input(1, F.from_int64(ys) if e.party == 1 else None, N)
    z = x * y
    w = z * x + y
    return e.output(w, 2)


def unsigned(e, xs: np.ndarray, ys: np.ndarray):
    """Party 1 slips party 0 a message with no valid statement, below the signing layer."""
    if e.party == 1:
        e.channel.mesh.send(0, bytes(16 * N))
        e.channel.mesh.send(0, b"no statement")
    return products(e, xs, ys)
