"""Private values of the MPC backend, and the batching that makes rounds equal depth.

A product of two secrets is not computed when the script reaches it: it is
queued, and the queue is flushed, with ONE `Engine.mul_many` for all queued
products and ONE `trunc_many` for those that need rescaling, when a queued
value is first needed. Comparisons queue alike and run as one `ltz` or `eqz`
per batch. Straight-line code therefore costs rounds equal to its
multiplicative depth: `a*b; c*d; e*f` is one round. The operators that queue
the work are `mpc_backend.MpcBackend`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from enigma.mpc.comparison import eqz, ltz
from enigma.mpc.engine import Engine
from enigma.mpc.fixed import trunc_many, wide_bits
from enigma.mpc.secret import Secret, concat

FRAC = 16
"""Fractional bits of fixed-point results (the schema's default)."""
VALUE_LIMIT = 1 << 63
"""Encodings of values must stay below this: comparisons and outputs are 64-bit."""
MASK_LIMIT = 1 << 85
"""A product before truncation must stay below this (masking headroom, p = 2^127 - 1)."""
DIVIDE_BITS = 63
"""Operands of a secret division: encodings below 2^63."""
MAX_CHAIN = 200
"""Longest chain of pending local steps before it is computed (Python's recursion limit)."""

@dataclass(eq=False)
class Fx:
    """A private value on the engine (see the module docstring); `mask` marks a filtered column.

    `cell[0]` holds the Secret once computed. Until then `pending` says how to
    get it: ("lin", fn, operands) for a local function of other values,
    ("mul", x, y, code, shift) for a queued product x y (or x code for a
    public code) truncated by `shift` bits, or ("cmp", d, "ltz" | "eqz", bits,
    flip) for a queued test [d < 0] or [d == 0] (1 minus it when flip).
    """

    owner: Batcher
    cell: list
    f: int
    lo: float
    hi: float
    err: float
    integer: bool
    shape: tuple[int, ...]
    mask: Fx | None = None
    pending: tuple | None = None
    errs: np.ndarray | None = None
    """Per-element error bounds of a library result, finer than `err` (its maximum)."""
    chain: int = 0
    """Pending local steps between this value and computed ones (bounds recursion)."""
    stored: float = 0.0
    """How far the exact value on the stored data may lie from the exact value on the data as
    the owner wrote it (storage rounding, `analytics.storage`), apart from `err`, the
    computation's error against the former: the library reads err == 0 as "a column of the
    data", which storage rounding does not change. A revealed value's bound is the sum."""

    @property
    def secret(self) -> Secret:
        return self.owner.value(self)

    @property
    def mag(self) -> float:
        return max(abs(self.lo), abs(self.hi))



class Batcher:
    """The queue of one party's pending products and comparisons, run in batched rounds."""

    def __init__(self, engine: Engine) -> None:
        self.e = engine
        self.queue: list[Fx] = []

    def value(self, x: Fx) -> Secret:
        """x's Secret, running as many rounds of queued products as it depends on."""
        while x.cell[0] is None:
            p = x.pending
            if p is not None and p[0] == "lin" and all(self._ready(o) for o in p[2]):
                x.cell[0] = p[1](*[self.value(o) for o in p[2]])
            else:
                self._step()
        return x.cell[0]

    def _step(self) -> None:
        """One batch of queued work: products first (cheap), else comparisons."""
        ready = [x for x in self.queue if all(self._ready(o) for o in _operands(x))]
        products = [x for x in ready if x.pending[0] == "mul"]
        if products:
            self._round(products)
        elif ready:
            self._compare_round(ready)
        else:
            raise RuntimeError("internal: queued operations wait on each other")
        self.queue = [x for x in self.queue if x.cell[0] is None]

    def _compare_round(self, ready: list[Fx]) -> None:
        """Every queued comparison whose difference is known, in one batch per kind.

        1. Concatenate the differences d of all ready comparisons of a kind
           (sign tests and zero tests), each flattened.
        2. One `ltz` (or `eqz`) on the whole vector, with the largest bit bound
           among them (a wider bound is still exact for the narrower ones):
           the rounds of one comparison for all of them.
        3. Split, reshape, and flip where the operator asks for 1 - result.
        """
        for kind, test in (("ltz", ltz), ("eqz", eqz)):
            batch = [x for x in ready if x.pending[2] == kind]
            if not batch:
                continue
            flat = concat([self.value(x.pending[1]).reshape(size_of(x.shape)) for x in batch])
            out = test(self.e, flat, max(x.pending[3] for x in batch))
            start = 0
            for x in batch:
                size = size_of(x.shape)
                r = out[start:start + size].reshape(*x.shape)
                x.cell[0] = 1 - r if x.pending[4] else r
                start += size

    def _ready(self, x: Fx) -> bool:
        """Whether x can be computed locally, without a round of products."""
        if x.cell[0] is not None:
            return True
        p = x.pending
        return p is not None and p[0] == "lin" and all(self._ready(o) for o in p[2])

    def _round(self, ready: list[Fx]) -> None:
        """Every queued product whose operands are known: one mul_many, one trunc_many.

        1. Take the queued products whose operands need nothing still queued.
        2. All their Beaver products in one `Engine.mul_many` (one round).
        3. All their truncations in one `trunc_many` (one round), each with its shift
           and the bit bound its operands' ranges prove (`_product_bits`).
        """
        pairs, products = [], []
        for x in ready:
            _, a, b, code, _ = x.pending
            if b is not None:
                pairs.append((self.value(a), self.value(b)))
        made = iter(self.e.mul_many(pairs)) if pairs else iter(())
        for x in ready:
            _, a, b, code, _ = x.pending
            products.append(next(made) if b is not None else self.value(a) * code)
        cut = [(x, z) for x, z in zip(ready, products, strict=True) if x.pending[4]]
        if cut:
            outs = trunc_many(self.e, [z for _, z in cut], [x.pending[4] for x, _ in cut],
                              [self._product_bits(x) for x, _ in cut])
            for (x, _), z in zip(cut, outs, strict=True):
                x.cell[0] = z
        for x, z in zip(ready, products, strict=True):
            if not x.pending[4]:
                x.cell[0] = z

    def _product_bits(self, x: Fx) -> int:
        """Bits (sign included) of a queued product before its truncation, from its operands.

        Why: a truncation's mask costs bits in proportion to this bound, and the ranges
        prove a far smaller one than the masking limit for most products. An operand's
        code is at most (mag + err) 2^f in magnitude; a public factor's code is read off.
        Two bits of margin cover the float arithmetic; never below shift + 1 (`trunc_many`).
        """
        _, a, b, code, shift = x.pending
        top = (a.mag + a.err) * 2.0**a.f
        if b is not None:
            top *= (b.mag + b.err) * 2.0**b.f
        else:
            top *= float(np.max(np.abs(self.e.field.to_float(np.asarray(code)))))
        wide = wide_bits(self.e)
        if not math.isfinite(top) or top >= 2.0**wide:
            return wide
        return min(wide, max(math.ceil(math.log2(top + 2)) + 2, shift + 1))

    def linear(self, fn, operands: list[Fx], **fields) -> Fx:
        """A local function of other values: computed now if they are, else when needed.

        A chain of pending local steps longer than MAX_CHAIN (an accumulation
        in a long loop) is computed at once, which bounds the recursion of
        `value`; it costs at most the rounds its pending products need anyway.
        """
        if all(o.cell[0] is not None for o in operands):
            return Fx(self, [fn(*[o.cell[0] for o in operands])], **fields)
        chain = 1 + max(o.chain if o.cell[0] is None else 0 for o in operands)
        x = Fx(self, [None], pending=("lin", fn, operands), chain=chain, **fields)
        if chain > MAX_CHAIN:
            self.value(x)
        return x

    def product(self, a: Fx, b: Fx | None, code: Any, shift: int, **fields) -> Fx:
        x = Fx(self, [None], pending=("mul", a, b, code, shift), **fields)
        self.queue.append(x)
        return x

    def flush(self) -> None:
        while self.queue:
            self._step()

    @staticmethod
    def fields(x: Fx, **changes) -> dict:
        out = dict(f=x.f, lo=x.lo, hi=x.hi, err=x.err, integer=x.integer, shape=x.shape,
                   mask=x.mask, stored=x.stored)
        out.update(changes)
        return out


def size_of(shape: tuple[int, ...]) -> int:
    """Elements of an array of this shape."""
    return int(np.prod(shape, dtype=np.int64))


def _operands(x: Fx) -> list[Fx]:
    """The values a queued product or comparison needs before it can run."""
    p = x.pending
    if p[0] == "mul":
        return [o for o in p[1:3] if o is not None]
    return [p[1]]

