"""Additive n-of-n sharing: x = x_1 + ... + x_n, any n - 1 shares are uniform.

The computation shares of SPDZ. Resharing (re-randomizing without opening)
is splitting one's own share and summing what one receives, so `split` and
`combine` are the two halves of it as well as sharing and reconstruction.
"""

from __future__ import annotations

import numpy as np

from enigma.field import PRG, Field


def split(field: Field, x: np.ndarray, n: int, prg: PRG | None = None) -> list[np.ndarray]:
    """n shares of x: n - 1 uniform arrays and the difference."""
    if n < 1:
        raise ValueError(f"need at least one share, got n={n}")
    prg = prg or PRG()
    shares = [field.random(x.shape[:-1], prg) for _ in range(n - 1)]
    last = x.copy()
    for s in shares:
        field.sub(last, s, out=last)
    shares.append(last)
    return shares


def combine(field: Field, shares: list[np.ndarray]) -> np.ndarray:
    """The sum of the shares: the secret, or one party's new share after a reshare."""
    if not shares:
        raise ValueError("no shares to combine")
    total = shares[0].copy()
    for s in shares[1:]:
        field.add(total, s, out=total)
    return total
