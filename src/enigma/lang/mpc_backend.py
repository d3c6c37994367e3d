"""The MPC backend: private values as secret shares on an `Engine`, with what the public knows.

Every private value is an `Fx`: a secret fixed-point encoding round(x 2^f)
(f = 0 for integers, booleans and category codes), the public interval
[lo, hi] that the exact value lies in, and a worst-case bound `err` on how far
the computed value may be from the exact one. Ranges come from the schema
and propagate by interval arithmetic through every operation; they are
public (they depend on the schema and the script, never on the data), so
every node derives the same ones. They decide

- the bit bound of each comparison (|a - b| 2^f < 2^(bits - 1)),
- whether a product or a sum could leave the 63-bit value range or the
  85-bit masking range of truncation: the script is then refused, naming the
  expression (file:line:col), before anything is opened;
- the error bound of each revealed value (truncation: < 1 ulp each; library
  functions: their documented bounds).

Batching. A product of two secrets is not computed when the script reaches
it: it is queued, and the queue is flushed, with ONE `Engine.mul_many` for all
queued products and ONE `trunc_many` for those that need rescaling, when a
queued value is first needed. Straight-line code therefore costs rounds equal
to its multiplicative depth: `a*b; c*d; e*f` is one round.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from enigma.mpc import client, functions
from enigma.mpc.comparison import eqz, ltz, mod2m, one_hot
from enigma.mpc.engine import Engine
from enigma.mpc.fixed import encode, trunc_many
from enigma.mpc.secret import Secret, concat

from . import models
from .analytics import categorical, moments, order, regression
from .analytics.precision import Bounded, PrecisionError, Range, divide_by_count
from .errors import ScriptError
from .plain import PARAMS, Plain, _flat, kmeans_start, library
from .syntax import Call, Expr, Node, Reveal, ValueType

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

    owner: MpcBackend
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

    @property
    def secret(self) -> Secret:
        return self.owner.value(self)

    @property
    def mag(self) -> float:
        return max(abs(self.lo), abs(self.hi))


class MpcBackend:
    """Private values as `Fx` on one party's engine; the same program runs on every party."""

    def __init__(self, engine: Engine, columns: dict[str, tuple[Secret, tuple]],
                 public: dict[str, np.ndarray], rows: int, owner_key: Secret,
                 filename: str = "<script>") -> None:
        self.e = engine
        self.F = engine.field
        self.inputs = columns
        self.public = public
        self.n = rows
        self.key = owner_key
        self.filename = filename
        self.queue: list[Fx] = []
        self.reveals: list[tuple[str, Fx]] = []
        self.sealed: tuple[np.ndarray, np.ndarray] | None = None
        self.layout: list[tuple[str, tuple[int, ...], int, Any, float, float]] = []
        """Per sealed value: name, shape, scale bits, error bound, range [lo, hi]."""
        self.exact: dict[str, np.ndarray] = {}
        self.hots: dict[int, tuple[Fx, Secret]] = {}

    # ------------------------------------------------------------ lazy evaluation

    def err(self, node: Node, message: str, why: str = "") -> ScriptError:
        return ScriptError(message, node.line, node.col, why, self.filename)

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
            flat = concat([self.value(x.pending[1]).reshape(_size(x.shape)) for x in batch])
            out = test(self.e, flat, max(x.pending[3] for x in batch))
            start = 0
            for x in batch:
                size = _size(x.shape)
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
        3. All their truncations in one `trunc_many` (one round), each with its shift.
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
            outs = trunc_many(self.e, [z for _, z in cut], [x.pending[4] for x, _ in cut])
            for (x, _), z in zip(cut, outs, strict=True):
                x.cell[0] = z
        for x, z in zip(ready, products, strict=True):
            if not x.pending[4]:
                x.cell[0] = z

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
                   mask=x.mask)
        out.update(changes)
        return out

    # ------------------------------------------------------------ values

    def rows(self) -> int:
        return self.n

    def column(self, name: str, node: Node) -> Any:
        if name in self.public:
            return self.public[name]
        secret, (f, lo, hi, integer) = self.inputs[name]
        return Fx(self, [secret], f, lo, hi, 0.0, integer, secret.shape)

    def is_private(self, value: Any) -> bool:
        return isinstance(value, Fx)

    def fx(self, value: Any, f: int = 0) -> Fx:
        """A public value as a (trivially shared) Fx, encoded with f fractional bits."""
        if isinstance(value, Fx):
            return value
        arr = np.asarray(value, dtype=np.float64)
        integer = bool(np.all(arr == np.rint(arr)))
        g = f if integer else max(f, FRAC)
        code = encode(self.F, arr, g)
        err = float(np.max(np.abs(arr - np.rint(arr * 2.0**g) / 2.0**g))) if arr.size else 0.0
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        return Fx(self, [self.e.constant(code)], g, lo, hi, err, integer, arr.shape)

    def up(self, x: Fx, f: int) -> Fx:
        """x with f >= x.f fractional bits (exact, local)."""
        if f <= x.f:
            return x
        self.require(x.mag * 2.0**f, VALUE_LIMIT, None, "the value")
        k = 1 << (f - x.f)
        return self.linear(lambda s: s * k, [x], **self.fields(x, f=f))

    def widen(self, x: Fx, shape: tuple[int, ...]) -> Fx:
        if x.shape == shape:
            return x
        return self.linear(lambda s: s.broadcast_to(*shape), [x],
                           **self.fields(x, shape=shape))

    def require(self, bound: float, limit: int, node: Node | None, what: str) -> None:
        if bound < limit:
            return
        if node is not None:
            raise self.err(node, f"{what} could reach 2^{math.log2(bound):.1f}, beyond the "
                                 f"2^{int(math.log2(limit))} of the fixed-point encoding",
                           "the ranges of the schema bound every intermediate value; narrow "
                           "the column ranges, scale the values down before multiplying, or "
                           "split the computation")
        raise PrecisionError(f"{what} could reach 2^{math.log2(bound):.1f}")

    # ------------------------------------------------------------ arithmetic

    def binop(self, op: str, a: Any, b: Any, node: Expr) -> Fx:
        if op == "+":
            return self.add(a, b, node)
        if op == "-":
            return self.add(a, self.negate(b, node), node)
        if op == "*":
            return self.mul(a, b, node)
        if op == "/":
            return self.div(a, b, node)
        if op == "**":
            return self.power(a, int(b), node)
        return self.floor_division(op, a, b, node)

    def floor_division(self, op: str, a: Fx, b: Any, node: Expr) -> Fx:
        """a // d and a % d (Python's: floor, remainder >= 0) for a public power of two d.

        1. B = the smallest multiple of d with a + B >= 0 (public, from a's range).
        2. r = (a + B) mod 2^m = a mod d, exactly (`comparison.mod2m`: one masked
           opening and a digit tree).
        3. a // d = (a - r) / 2^m, an exact division in the field (local).
        """
        d = np.asarray(b)
        if isinstance(b, Fx) or d.shape != () or not a.integer or a.f:
            raise self.err(node, f"{op} of private values takes a private integer and a "
                                 "public integer divisor")
        d = int(d)
        if d <= 0 or d & (d - 1):
            raise self.err(node, f"{op} of a private value by {d} is not compiled",
                           "the engine divides private integers exactly by powers of two only; "
                           "use / (fixed point) for other divisors")
        if d == 1:
            return a if op == "//" else self.mul_public(a, np.zeros(()), node)
        m = d.bit_length() - 1
        offset = -(-max(0, -math.floor(a.lo)) // d) * d
        bits = int(a.hi + offset).bit_length() + 1
        r = mod2m(self.e, a.secret, m, offset=offset, bits=bits).reshape(*a.shape)
        if op == "%":
            return Fx(self, [r], 0, 0.0, float(d - 1), 0.0, True, a.shape, a.mask)
        inv = self.F.inverse(self.F.const(d).reshape(1, 2))[0]
        return Fx(self, [(a.secret - r) * inv], 0, float(math.floor(a.lo / d)),
                  float(math.floor(a.hi / d)), 0.0, True, a.shape, a.mask)

    def negate(self, a: Any, node: Node) -> Any:
        if not isinstance(a, Fx):
            return -np.asarray(a, dtype=np.float64)
        return self.linear(lambda s: -s, [a], **self.fields(a, lo=-a.hi, hi=-a.lo))

    def add(self, a: Any, b: Any, node: Node) -> Fx:
        if not isinstance(a, Fx):
            a, b = b, a
        if not isinstance(b, Fx):
            b = self.fx(b, a.f)
        f = max(a.f, b.f)
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        x, y = self.widen(self.up(a, f), shape), self.widen(self.up(b, f), shape)
        lo, hi = a.lo + b.lo, a.hi + b.hi
        self.require(max(abs(lo), abs(hi)) * 2.0**f, VALUE_LIMIT, node, "this sum")
        return self.linear(lambda s, t: s + t, [x, y], f=f, lo=lo, hi=hi, err=a.err + b.err,
                           integer=a.integer and b.integer, shape=shape, mask=_mask(a, b))

    def mul(self, a: Any, b: Any, node: Node) -> Fx:
        """a b; two secrets: a queued Beaver product, truncated when both are fixed-point."""
        if not isinstance(a, Fx):
            a, b = b, a
        if not isinstance(b, Fx):
            return self.mul_public(a, np.asarray(b, dtype=np.float64), node)
        f = max(a.f, b.f)
        shift = a.f + b.f - f
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        ends = [x * y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
        lo, hi = min(ends), max(ends)
        self.require(a.mag * b.mag * 2.0 ** (a.f + b.f), MASK_LIMIT, node, "this product")
        self.require(max(abs(lo), abs(hi)) * 2.0**f, VALUE_LIMIT, node, "this product")
        err = a.mag * b.err + (b.mag + b.err) * a.err + (2.0**-f if shift else 0.0)
        return self.product(self.widen(a, shape), self.widen(b, shape), None, shift, f=f,
                            lo=lo, hi=hi, err=err, integer=a.integer and b.integer,
                            shape=shape, mask=_mask(a, b))

    def mul_public(self, a: Fx, c: np.ndarray, node: Node) -> Fx:
        """a c for public c: exact and local for integers, one truncation otherwise."""
        shape = tuple(np.broadcast_shapes(a.shape, c.shape))
        x = self.widen(a, shape)
        cmax = float(np.max(np.abs(c))) if c.size else 0.0
        ends = [a.lo * float(c.min()), a.lo * float(c.max()), a.hi * float(c.min()),
                a.hi * float(c.max())] if c.size else [0.0]
        lo, hi = min(ends), max(ends)
        if np.all(c == np.rint(c)):
            self.require(max(abs(lo), abs(hi)) * 2.0**a.f, VALUE_LIMIT, node, "this product")
            code = self.F.from_int64(np.broadcast_to(c, shape).astype(np.int64)) if c.shape \
                else int(c)
            return self.linear(lambda s: s * code, [x], **self.fields(
                a, lo=lo, hi=hi, err=a.err * cmax, shape=shape))
        f = max(a.f, FRAC)
        top = a.mag * 2.0**a.f * max(cmax, 2.0**-FRAC)
        p = min(40, 84 - math.ceil(math.log2(top + 1)))
        if p + a.f < f:
            raise self.err(node, "this product by a public constant leaves no precision",
                           "the value's range is too wide for its fractional bits")
        code = encode(self.F, c, p)
        if code.shape != (2,):
            code = np.ascontiguousarray(np.broadcast_to(code, (*shape, 2)))
        rounding = float(np.max(np.abs(c - np.rint(c * 2.0**p) / 2.0**p)))
        err = 2.0**-f + a.mag * rounding + a.err * cmax
        self.require(max(abs(lo), abs(hi)) * 2.0**f, VALUE_LIMIT, node, "this product")
        return self.product(x, None, code, a.f + p - f, **self.fields(
            a, f=f, lo=lo, hi=hi, err=err, integer=False, shape=shape))

    def div(self, a: Any, b: Any, node: Node) -> Fx:
        """a / b: by a public b, a product with 1/b; by a secret b, `functions.divide`."""
        if not isinstance(b, Fx):
            c = np.asarray(b, dtype=np.float64)
            if np.any(c == 0):
                raise self.err(node, "division by zero (a public value)")
            return self.mul_public(a, 1.0 / c, node)
        a = self.fx(a, FRAC)
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        x = self.widen(self.up(a, FRAC), shape)
        y = self.widen(self.up(b, FRAC), shape)
        top = max(a.mag, b.mag) * 2.0**FRAC
        self.require(top, 1 << DIVIDE_BITS, node, "an operand of this division")
        bits = max(int(top).bit_length() + 1, 2)
        if b.lo > 0 or b.hi < 0:
            bmin = min(abs(b.lo), abs(b.hi))
        else:
            bmin = 1.0 if b.integer else 2.0**-FRAC
        q = min(a.mag / bmin, 2.0 ** (62 - FRAC))
        err = 2.0**-FRAC + q * 2.0**-36 + (a.err + q * b.err) / bmin
        out = functions.divide(self.e, x.secret, y.secret, FRAC, bits=bits)
        return Fx(self, [out], FRAC, -q, q, err, False, shape, _mask(a, b))

    def power(self, a: Fx, k: int, node: Node) -> Any:
        """a^k by repeated squaring: ceil(log2 k) + popcount rounds at most."""
        if k == 0:
            return np.ones(a.shape)
        result, base = None, a
        while k:
            if k & 1:
                result = base if result is None else self.mul(result, base, node)
            k >>= 1
            if k:
                base = self.mul(base, base, node)
        return result

    # ------------------------------------------------------------ comparisons and selection

    def compare(self, op: str, a: Any, b: Any, node: Expr) -> Fx:
        d = self.add(a, self.negate(b, node), node)
        if op in (">", "<="):
            d = self.negate(d, node)
        bits = math.ceil(d.mag * 2.0**d.f).bit_length() + 2
        self.require(2.0**bits, MASK_LIMIT * 2, node, "this comparison's difference")
        # == is [d == 0]; < and > are [d < 0] (d negated for >); != <= >= flip the result
        kind = "eqz" if op in ("==", "!=") else "ltz"
        flip = op in ("!=", "<=", ">=")
        x = Fx(self, [None], 0, 0.0, 1.0, 0.0, True, d.shape, d.mask,
               pending=("cmp", d, kind, bits, flip))
        self.queue.append(x)
        return x

    def logic(self, op: str, values: list[Any], node: Expr) -> Fx:
        if op == "not":
            v = values[0]
            return self.add(self.negate(v, node), 1, node)
        out = values[0]
        for v in values[1:]:
            both = self.mul(out, v, node) if isinstance(out, Fx) else self.mul(v, out, node)
            out = both if op == "and" else self.add(self.add(out, v, node),
                                                    self.negate(both, node), node)
        return _as_bool(out)

    def where(self, cond: Any, a: Any, b: Any, node: Node) -> Any:
        """b + cond (a - b): one product, exact (cond is 0/1), so the error is the larger one's."""
        if not any(isinstance(v, Fx) for v in (cond, a, b)):
            return np.where(cond, a, b)
        if isinstance(a, Fx) or isinstance(b, Fx):
            diff = self.add(a, self.negate(b, node), node)
        else:
            diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
        out = self.add(self.mul(cond, diff, node), b, node)
        parts = [self.fx(v) for v in (a, b)]
        return replace(out, lo=min(p.lo for p in parts), hi=max(p.hi for p in parts),
                       err=max(p.err for p in parts), integer=all(p.integer for p in parts))

    # ------------------------------------------------------------ containers

    def take(self, value: Fx, index: int | slice, node: Expr) -> Fx:
        shape = tuple(np.empty(value.shape, dtype=np.int8)[index].shape)
        return self.linear(lambda s: s[index], [value], **self.fields(value, shape=shape,
                                                                       mask=None))

    def stack(self, items: list[Any], node: Node) -> Fx:
        parts = [self.fx(i) for i in items]
        f = max(p.f for p in parts)
        parts = [self.up(p, f) for p in parts]
        shape = parts[0].shape
        return self.linear(lambda *ss: concat([s.reshape(1, *shape) for s in ss]), parts,
                           f=f, lo=min(p.lo for p in parts), hi=max(p.hi for p in parts),
                           err=max(p.err for p in parts), integer=all(p.integer for p in parts),
                           shape=(len(parts), *shape))

    def set_item(self, value: Any, index: int, item: Any, node: Node) -> Fx:
        v = self.fx(value)
        n = v.shape[0]
        index %= n
        items = [self.take(v, i, node) if i != index else item for i in range(n)]
        return self.stack(items, node)

    # ------------------------------------------------------------ output

    def reveal(self, name: str, value: Any, node: Reveal) -> None:
        if isinstance(value, list | tuple):
            value = self.stack(list(value), node) if any(isinstance(v, Fx) for v in
                                                         _flat(list(value))) else \
                np.asarray(value, dtype=np.float64)
        if isinstance(value, Fx):
            self.reveals.append((name, value))
        else:
            self.exact[name] = np.asarray(value, dtype=np.float64)

    def finish(self) -> dict:
        """Seal every revealed value for the owner in one batch: one product, one MAC check.

        Public results (computed from public values only) are exact and need no sealing.
        The sealed shares and the layout stay on the backend for the runner to send.
        """
        self.flush()
        if self.reveals:
            flat = concat([v.secret.reshape(v.secret.size) for _, v in self.reveals])
            self.sealed = client.seal_output(self.e, flat, self.key)
            self.layout = [(name, v.shape, v.f, v.err if v.errs is None else v.errs, v.lo,
                            v.hi) for name, v in self.reveals]
        else:
            self.e.check()
        return {}

    # ------------------------------------------------------------ the library

    def call(self, name: str, args: list[Any], kwargs: dict[str, Any], node: Call) -> Any:
        if not any(isinstance(a, Fx) for a in _flat(args + list(kwargs.values()))):
            try:
                out = library(name, args, kwargs, node)
            except ValueError as exc:
                raise self.err(node, f"{name}(): {exc}") from exc
            if isinstance(out, Plain):
                raise self.err(node, f"internal: {name} gave a private value from public ones")
            return out
        if name in ("min", "max") and len(args) >= 2:
            return self.elementwise_extreme(args, node, name == "max")
        fn = getattr(self, "lib_" + name, None)
        if fn is None:
            raise self.err(node, f"{name}() on private values is not compiled yet",
                           "run it in a dry run (plaintext), or see docs/compiler.md for the "
                           "functions the engine runs")
        try:
            return fn(dict(zip(PARAMS[name], args, strict=False)) | kwargs, node)
        except PrecisionError as exc:
            raise self.err(node, f"{name}(): {exc}") from exc

    def bounded(self, b: Bounded, shape: tuple[int, ...], extra_err: float = 0.0) -> Fx:
        return Fx(self, [b.value], b.f, b.range.lo, b.range.hi,
                  float(np.max(b.error)) + extra_err, False, shape)

    def selection(self, x: Fx, where: Any, node: Node) -> Fx | None:
        """The 0/1 weights of the rows a reduction counts: the filter of x and where=."""
        w = x.mask
        if where is not None:
            where = self.fx(where)
            w = where if w is None else self.mul(w, where, node)
        return w

    def plain_column(self, x: Any, node: Call, func: str) -> Fx:
        if not isinstance(x, Fx):
            x = self.fx(x)
        if len(x.shape) != 1:
            raise self.err(node, f"{func}() of a private value needs a column or a vector")
        return x

    def lib_count(self, a: dict, node: Call) -> Any:
        x = a["x"]
        t = node.args[0].type
        w = self.selection(x, a.get("where"), node) if isinstance(x, Fx) else a.get("where")
        if isinstance(t, ValueType) and t.kind.name == "bool":
            w = x if w is None else self.mul(w, x, node)
        if w is None:
            return self.n
        total = w.secret.sum()
        return Fx(self, [total], 0, 0.0, float(w.shape[0]), 0.0, True, ())

    def lib_sum(self, a: dict, node: Call) -> Fx:
        x = self.plain_column(a["x"], node, "sum")
        w = self.selection(x, a.get("where"), node)
        if w is not None:
            x = self.mul(w, replace(x, mask=None), node)
        n = x.shape[0]
        lo, hi = n * min(x.lo, 0.0), n * max(x.hi, 0.0)
        self.require(max(-lo, hi) * 2.0**x.f, VALUE_LIMIT, node, "this sum")
        return Fx(self, [x.secret.sum()], x.f, lo, hi, n * x.err, x.integer, ())

    def lib_mean(self, a: dict, node: Call) -> Fx:
        x = self.plain_column(a["x"], node, "mean")
        w = self.selection(x, a.get("where"), node)
        r = Range(x.lo, x.hi)
        if w is None:
            b = moments.mean(self.e, self.up(x, FRAC).secret, r, FRAC)
            return self.bounded(b, (), x.err)
        n = x.shape[0]
        mid, width = r.center(FRAC)
        xc = self.up(x, FRAC).secret - mid
        sums = self.e.dot(w.secret, xc)
        count = w.secret.sum()
        q, err = divide_by_count(self.e, sums.reshape(1), count.reshape(1), width, n, "mean")
        out = q.reshape() + mid
        return Fx(self, [out], FRAC, min(x.lo, 0.0), max(x.hi, 0.0),
                  err * 2.0**-FRAC + x.err, False, ())

    def _moment(self, a: dict, node: Call, fn) -> Fx:
        x = self.plain_column(a["x"], node, node.func)
        if x.err:
            raise self.err(node, f"{node.func}() of a computed column with rounding is not "
                                 "compiled yet", "apply it to a column of the data")
        w = self.selection(x, a.get("where"), node)
        if w is None:
            return self.bounded(fn(self.e, self.up(x, FRAC).secret, Range(x.lo, x.hi), 0,
                                   FRAC), ())
        try:
            var, err, top = self.filtered_variance(x, w)
        except PrecisionError as exc:
            raise self.err(node, f"{node.func}(): {exc}") from exc
        if fn is moments.variance:
            return Fx(self, [var], FRAC, 0.0, top, err, False, ())
        bits = max(int(top * 2**FRAC).bit_length() + 1, 2)
        root = functions.sqrt(self.e, var, FRAC, bits=bits)
        hi = math.sqrt(top)
        return Fx(self, [root], FRAC, 0.0, hi, 2 * 2.0**-FRAC + hi * 2.0**-36 + math.sqrt(err),
                  False, ())

    def lib_variance(self, a: dict, node: Call) -> Fx:
        return self._moment(a, node, moments.variance)

    def lib_std(self, a: dict, node: Call) -> Fx:
        return self._moment(a, node, moments.std)

    def filtered_variance(self, x: Fx, w: Fx) -> tuple[Secret, float, float]:
        """Population variance of the selected rows: (value with FRAC bits, error, range top).

        With x' = x - m (codes, m the range's midpoint), W the 0/1 selection:
        1. Wx' (one round); S1 = sum Wx', S2 = sum Wx' x' (one fused dot), c = sum W.
        2. q1 = S1 / c, q2 = S2 / c (`divide_by_count`, twice).
        3. var = (q2 - q1^2) / 2^f (one product, one truncation).
        Error: e2 2^-2f + (2 w e1 + e1^2) 2^-2f + 2^-f (e1, e2 the divisions' errors in
        units, w the half-width of the codes). Empty selection: 0.
        """
        e, n, f = self.e, self.n, FRAC
        mid, width = Range(x.lo, x.hi).center(f)
        xc = self.up(x, f).secret - mid
        wx = e.mul(w.secret, xc)
        s1, s2, c = wx.sum().reshape(1), e.dot(wx, xc).reshape(1), w.secret.sum().reshape(1)
        q1, e1 = divide_by_count(e, s1, c, width, n, "variance")
        q2, e2 = divide_by_count(e, s2, c, width * width, n, "variance")
        self.require(float(width) ** 2 * 2, MASK_LIMIT, None, "a squared mean")
        (var,) = trunc_many(e, [q2 - e.mul(q1, q1)], [f])
        err = (e2 + 2 * width * e1 + e1 * e1) * 2.0 ** (-2 * f) + 2.0**-f
        top = (width * 2.0**-f) ** 2
        return var.reshape(), err, top

    def _order(self, a: dict, node: Call, fn, *extra) -> Fx:
        x = self.plain_column(a["x"], node, node.func)
        if self.selection(x, a.get("where"), node) is not None:
            raise self.err(node, f"{node.func}() of a filtered column is not compiled yet",
                           "apply it to a whole column")
        return self.bounded(fn(self.e, self.up(x, FRAC).secret, Range(x.lo, x.hi), *extra,
                               FRAC), (), x.err)

    def lib_median(self, a: dict, node: Call) -> Fx:
        return self._order(a, node, order.median)

    def lib_percentile(self, a: dict, node: Call) -> Fx:
        return self._order(a, node, order.percentile, float(a["q"]))

    def lib_min(self, a: dict, node: Call) -> Fx:
        return self._extreme(a, node, False)

    def lib_max(self, a: dict, node: Call) -> Fx:
        return self._extreme(a, node, True)

    def _extreme(self, a: dict, node: Call, largest: bool) -> Fx:
        """min/max of a column; of a filtered one, unselected rows first become the range's
        other end (one selection), so an empty selection gives that end."""
        x = self.plain_column(a["x"], node, node.func)
        w = self.selection(x, a.get("where"), node)
        if w is not None:
            x = self.where(w, replace(x, mask=None), x.lo if largest else x.hi, node)
            a = {"x": x}
        return self._order(a, node, order.max if largest else order.min)

    def elementwise_extreme(self, items: list[Any], node: Call, largest: bool) -> Any:
        """min(a, b, ...) / max(a, b, ...): a comparison and a selection per extra operand."""
        out = items[0]
        for other in items[1:]:
            better = self.compare(">" if largest else "<", other, out, node)
            out = self.where(better, other, out, node)
        return out

    def lib_histogram(self, a: dict, node: Call) -> Fx:
        x = self.plain_column(a["x"], node, "histogram")
        w = self.selection(x, a.get("where"), node)
        t = node.args[0].type
        if isinstance(t, ValueType) and t.kind.name in ("category", "bool"):
            levels = len(t.kind.levels) if t.kind.name == "category" else 2
            hot = self.one_hot(x, levels)
            if w is None:
                counts = hot.sum(axis=0)
            else:  # rows weighted by the selection: one fused dot
                n = _size(x.shape)
                weights = w.secret.reshape(n, 1).broadcast_to(n, levels)
                counts = self.e.dot(weights, hot, axis=0)
            return Fx(self, [counts], 0, 0.0, float(x.shape[0]), 0.0, True, (levels,))
        if w is not None:
            raise self.err(node, "histogram() of a filtered numeric column is not compiled yet",
                           "count the rows of each bin with count(x, where=...)")
        bins = a.get("bins", 10)
        rng = a.get("range", (x.lo, x.hi))
        edges = list(bins) if isinstance(bins, list | tuple) else \
            list(np.linspace(float(rng[0]), float(rng[1]), int(bins) + 1))
        b = categorical.histogram_bins(self.e, self.up(x, FRAC).secret, Range(x.lo, x.hi),
                                       edges, FRAC)
        return self.bounded(b, (len(edges) - 1,))

    def one_hot(self, key: Fx, levels: int) -> Secret:
        """The (n, levels) one-hot of a key column, made once per key and kept for later calls."""
        cached = self.hots.get(id(key.cell))
        if cached is None:
            cached = (key, one_hot(self.e, key.secret.reshape(_size(key.shape)), levels))
            self.hots[id(key.cell)] = cached  # holding the key keeps its id unique
        return cached[1]

    def lib_group_by(self, a: dict, node: Call) -> Fx:
        """Count, sum or mean per level, from one shared one-hot of the key (as
        `analytics.categorical.group_by`, which makes its own one-hot per call):
        1. H = one-hot of the key (one opening, once per key column).
        2. count = column sums of H (local); S = sum_r H_rl x_r for centred x (one fused dot).
        3. sum = S + count m (exact); mean = S / count + m by `divide_by_count`.
        """
        key = a["key"]
        t = node.args[0].type
        levels = len(t.kind.levels) if t.kind.name == "category" else 2  # type: ignore
        if not isinstance(key, Fx) or key.shape != (self.n,):
            raise self.err(node, "group_by() of a private key needs a column of the table")
        hot = self.one_hot(key, levels)
        n = self.n
        counts = hot.sum(axis=0)
        agg = a.get("agg", "count")
        if agg == "count":
            return Fx(self, [counts], 0, 0.0, float(n), 0.0, True, (levels,))
        x = self.plain_column(a["values"], node, "group_by")
        f = FRAC if agg == "mean" else x.f
        mid, width = Range(x.lo, x.hi).center(f)
        self.require(n * max(abs(x.lo), abs(x.hi)) * 2.0**f, VALUE_LIMIT, node,
                     "a group's sum")
        xc = self.up(x, f).secret - mid
        wide = Secret(self.e, type(xc.share)(
            np.ascontiguousarray(np.broadcast_to(xc.share.value[:, None], (n, levels, 2))),
            np.ascontiguousarray(np.broadcast_to(xc.share.mac[:, None], (n, levels, 2)))))
        sums_c = self.e.dot(hot, wide, axis=0)
        if agg == "sum":
            lo, hi = n * min(x.lo, 0.0), n * max(x.hi, 0.0)
            return Fx(self, [sums_c + counts * mid], f, lo, hi, n * x.err, x.integer,
                      (levels,))
        try:
            q, err = divide_by_count(self.e, sums_c, counts, width, n, "group_by")
        except PrecisionError as exc:
            raise self.err(node, str(exc)) from exc
        return Fx(self, [q + mid], FRAC, min(x.lo, 0.0), max(x.hi, 0.0),
                  err * 2.0**-FRAC + x.err, False, (levels,))

    def lib_chi2(self, a: dict, node: Call) -> Fx:
        """Pearson's chi-squared statistic of two category (or boolean) columns
        (`analytics.categorical.chi2`: scipy's chi2_contingency without correction)."""
        x, y = self.fx(a["x"]), self.fx(a["y"])
        levels = [len(t.kind.levels) if t.kind.name == "category" else 2  # type: ignore
                  for t in (node.args[0].type, node.args[1].type)]
        if x.mask is not None or y.mask is not None:
            raise self.err(node, "chi2() of filtered columns is not compiled yet")
        out = categorical.chi2(self.e, x.secret, levels[0], y.secret, levels[1], FRAC)
        return self.bounded(out.statistic, ())

    def lib_where(self, a: dict, node: Call) -> Fx:
        x, m = a["x"], a["mask"]
        x = self.fx(x)
        mask = m if x.mask is None else self.mul(x.mask, m, node)
        return replace(x, mask=self.fx(mask))

    def _pair(self, a: dict, node: Call, fn, **kw) -> Fx:
        x, y = self.plain_column(a["x"], node, node.func), self.plain_column(a["y"], node,
                                                                            node.func)
        if x.err or y.err:
            raise self.err(node, f"{node.func}() of computed columns is not compiled yet",
                           "apply it to columns of the data")
        both = concat([self.up(x, FRAC).secret.reshape(1, -1),
                       self.up(y, FRAC).secret.reshape(1, -1)])
        cols = both.reshape(2, x.shape[0])
        table = Secret(self.e, type(cols.share)(
            np.ascontiguousarray(np.moveaxis(cols.share.value, 0, 1)),
            np.ascontiguousarray(np.moveaxis(cols.share.mac, 0, 1))))
        b = fn(self.e, table, [Range(x.lo, x.hi), Range(y.lo, y.hi)], f=FRAC, **kw)
        err = b.error[0, 1] if np.ndim(b.error) else b.error
        return Fx(self, [b.value[0, 1]], b.f, b.range.lo, b.range.hi, float(err), False, ())

    def lib_cov(self, a: dict, node: Call) -> Fx:
        return self._pair(a, node, moments.cov, ddof=1)

    def lib_corr(self, a: dict, node: Call) -> Fx:
        return self._pair(a, node, moments.corr)

    def lib_sqrt(self, a: dict, node: Call) -> Fx:
        x = self.up(self.fx(a["x"]), FRAC)
        bits = int(x.mag * 2.0**FRAC).bit_length() + 1
        out = functions.sqrt(self.e, x.secret, FRAC, bits=max(bits, 2))
        hi = math.sqrt(max(x.hi, 0.0))
        err = 2 * 2.0**-FRAC + hi * 2.0**-36 + math.sqrt(x.err)
        return Fx(self, [out], FRAC, 0.0, hi, err, False, x.shape)

    def lib_exp(self, a: dict, node: Call) -> Fx:
        x = self.up(self.fx(a["x"]), FRAC)
        hi = math.exp(x.hi)
        self.require(hi * 2.0**FRAC, VALUE_LIMIT, node, "exp() of this value")
        out = functions.exp(self.e, x.secret, FRAC)
        err = 2.0**-FRAC + hi * 2.0**-34 + hi * (math.exp(x.err) - 1)
        return Fx(self, [out], FRAC, math.exp(x.lo), hi, err, False, x.shape)

    def lib_log(self, a: dict, node: Call) -> Fx:
        x = self.up(self.fx(a["x"]), FRAC)
        bits = int(x.mag * 2.0**FRAC).bit_length() + 1
        out = functions.log(self.e, x.secret, FRAC, bits=max(bits, 2))
        floor = max(x.lo, 2.0**-FRAC)
        lo, hi = math.log(floor), math.log(max(x.hi, floor))
        err = 2.0**-FRAC + 2.0**-34 + x.err / floor
        return Fx(self, [out], FRAC, lo, hi, err, False, x.shape)

    def lib_abs(self, a: dict, node: Call) -> Fx:
        x = self.fx(a["x"])
        neg = self.compare("<", x, 0, node)
        out = self.where(neg, self.negate(x, node), x, node)
        top = x.mag
        low = 0.0 if x.lo <= 0 <= x.hi else min(abs(x.lo), abs(x.hi))
        return replace(out, lo=low, hi=top)


    def model_columns(self, xs: Any, node: Call, f: int) -> tuple[list[Fx], list[Secret]]:
        cols = [self.fx(c) for c in (xs if isinstance(xs, list | tuple) else [xs])]
        if any(c.shape != (self.n,) for c in cols):
            raise self.err(node, f"{node.func}() takes columns of the table")
        return cols, [self.up(c, f).secret for c in cols]

    def lib_kmeans(self, a: dict, node: Call) -> Fx:
        cols, secrets = self.model_columns(a["x"], node, FRAC)
        k, iters = int(a["k"]), int(a.get("iters", 10))
        start = kmeans_start(node, k, len(cols))
        out, err = models.kmeans(self.e, secrets, [Range(c.lo, c.hi) for c in cols], start,
                                 iters, FRAC)
        return Fx(self, [out], FRAC, min(c.lo for c in cols), max(c.hi for c in cols),
                  err + max(c.err for c in cols), False, (k, len(cols)))

    def lib_linreg(self, a: dict, node: Call) -> Fx:
        """[intercept, slopes...] by the library's ridge regression on standardised features
        (`analytics.regression`, penalty DEFAULT_RIDGE), with its worst-case bounds."""
        cols, secrets = self.model_columns(a["x"], node, FRAC)
        (y,), (ys,) = self.model_columns(a["y"], node, FRAC)
        if y.err or any(c.err for c in cols):
            raise self.err(node, "linreg() of computed columns with rounding is not compiled yet",
                           "regress columns of the data, or exact (integer) functions of them")
        fit = regression.linear_regression(self.e, models.table(secrets), ys,
                                           [Range(c.lo, c.hi) for c in cols],
                                           Range(y.lo, y.hi), f=FRAC)
        return regression_fx(self, fit, len(cols))


def regression_fx(owner: MpcBackend, fit: regression.Regression, d: int) -> Fx:
    """A fitted regression as one value: the intercept then the d coefficients, each with
    its own error bound (one quorum and the reducing quorum of a split job alike)."""
    value = concat([fit.intercept.value.reshape(1), fit.coef.value.reshape(d)])
    errs = np.concatenate([[float(fit.intercept.error)], np.broadcast_to(fit.coef.error, (d,))])
    top = max(fit.coef.range.magnitude, fit.intercept.range.magnitude)
    return Fx(owner, [value], FRAC, -top, top, float(errs.max()), False, (d + 1,), errs=errs)


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _operands(x: Fx) -> list[Fx]:
    """The values a queued product or comparison needs before it can run."""
    p = x.pending
    if p[0] == "mul":
        return [o for o in p[1:3] if o is not None]
    return [p[1]]


def _as_bool(x: Any) -> Any:
    if isinstance(x, Fx):
        return replace(x, lo=0.0, hi=1.0, integer=True)
    return x


def _mask(*xs: Any) -> Fx | None:
    masks = [x.mask for x in xs if isinstance(x, Fx) and x.mask is not None]
    return masks[0] if masks else None
