"""`Secret`: a party's handle on a secret-shared array, with numpy-like operators.

Linear operations (+, -, negation, multiplication by public values) are local
and free; `x * y` of two secrets costs one round of Beaver multiplication. To
batch several independent products into one round, use `Engine.mul_many`.
Public operands are Python ints or field arrays (uint64, trailing axis 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from enigma.sharing import AuthShare, spdz

if TYPE_CHECKING:
    from .engine import Engine


class Secret:
    """A secret-shared array of field elements (this party's authenticated share)."""

    __slots__ = ("engine", "share")

    def __init__(self, engine: Engine, share: AuthShare) -> None:
        self.engine = engine
        self.share = share

    def __repr__(self) -> str:  # never the share itself
        return f"Secret(shape={self.shape})"

    @property
    def shape(self) -> tuple[int, ...]:
        return self.share.value.shape[:-1]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> Secret:
        return Secret(self.engine, AuthShare(self.share.value[index], self.share.mac[index]))

    def reshape(self, *shape: int) -> Secret:
        return Secret(self.engine, AuthShare(self.share.value.reshape(*shape, 2),
                                             self.share.mac.reshape(*shape, 2)))

    def broadcast_to(self, *shape: int) -> Secret:
        """Repeat along new leading axes (numpy broadcasting rules), as a contiguous copy."""
        return Secret(self.engine, AuthShare(
            np.ascontiguousarray(np.broadcast_to(self.share.value, (*shape, 2))),
            np.ascontiguousarray(np.broadcast_to(self.share.mac, (*shape, 2)))))

    def copy(self) -> Secret:
        return Secret(self.engine, AuthShare(self.share.value.copy(), self.share.mac.copy()))

    # ---------------------------------------------------------------- arithmetic

    def _public(self, other) -> np.ndarray:
        F = self.engine.field
        if isinstance(other, int | np.integer):
            return F.const(int(other))
        if isinstance(other, np.ndarray) and other.dtype == np.uint64 and other.shape[-1:] == (2,):
            return other
        raise TypeError(f"cannot combine a Secret with {type(other).__name__}; use ints or "
                        "field arrays (Field.from_int64) for public values")

    def __add__(self, other) -> Secret:
        F, e = self.engine.field, self.engine
        if isinstance(other, Secret):
            return Secret(e, spdz.add(F, self.share, other.share))
        return Secret(e, spdz.add_public(F, self.share, self._public(other), e.alpha, e.party))

    __radd__ = __add__

    def __neg__(self) -> Secret:
        F = self.engine.field
        return Secret(self.engine, AuthShare(F.neg(self.share.value), F.neg(self.share.mac)))

    def __sub__(self, other) -> Secret:
        if isinstance(other, Secret):
            return Secret(self.engine, spdz.sub(self.engine.field, self.share, other.share))
        return self + Secret._negate_public(self.engine.field, self._public(other))

    def __rsub__(self, other) -> Secret:
        return (-self) + other

    def __mul__(self, other) -> Secret:
        if isinstance(other, Secret):
            return self.engine.mul(self, other)
        return Secret(self.engine, spdz.scale(self.engine.field, self.share, self._public(other)))

    __rmul__ = __mul__

    @staticmethod
    def _negate_public(F, c: np.ndarray) -> np.ndarray:
        return F.neg(c.reshape(-1, 2)).reshape(c.shape)

    # ---------------------------------------------------------------- reductions

    def sum(self, axis: int | None = None) -> Secret:
        F = self.engine.field
        return Secret(self.engine, AuthShare(F.sum(self.share.value, axis),
                                             F.sum(self.share.mac, axis)))

    def dot_public(self, weights: np.ndarray, axis: int | None = None) -> Secret:
        """Sum of x * w over an axis for public field weights w of the same shape."""
        F = self.engine.field
        return Secret(self.engine, AuthShare(F.dot(self.share.value, weights, axis),
                                             F.dot(self.share.mac, weights, axis)))


def concat(parts: list[Secret]) -> Secret:
    """Join secrets along the first axis."""
    if not parts:
        raise ValueError("nothing to concatenate")
    share = AuthShare(np.concatenate([p.share.value for p in parts]),
                      np.concatenate([p.share.mac for p in parts]))
    return Secret(parts[0].engine, share)
