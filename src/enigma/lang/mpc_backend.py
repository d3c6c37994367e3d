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
  functions: their documented bounds), against the data as the owner wrote it:
  `Fx.stored` carries what storing the values on the grid moved (a column of
  f fractional bits: 2^-(f+1) per value, `analytics.storage`) apart from `err`.

The operators here queue their products and comparisons (`batching.Batcher`:
rounds equal multiplicative depth); library calls on private values run in
`mpc_library.CompiledLibrary`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from enigma.mpc import client, functions
from enigma.mpc.comparison import mod2m, one_hot
from enigma.mpc.engine import Engine
from enigma.mpc.fixed import encode
from enigma.mpc.secret import Secret, concat

from .analytics.precision import PrecisionError
from .analytics.storage import storage_rounding
from .batching import DIVIDE_BITS, FRAC, MASK_LIMIT, VALUE_LIMIT, Batcher, Fx, size_of
from .errors import ScriptError
from .mpc_library import CompiledLibrary
from .plain import Plain, _flat, library
from .syntax import Call, Expr, Node, Reveal


class MpcBackend(Batcher):
    """Private values as `Fx` on one party's engine; the same program runs on every party."""

    def __init__(self, engine: Engine, columns: dict[str, tuple[Secret, tuple]],
                 public: dict[str, np.ndarray], rows: int, owner_key: Secret,
                 filename: str = "<script>") -> None:
        super().__init__(engine)
        self.F = engine.field
        self.inputs = columns
        self.public = public
        self.n = rows
        self.key = owner_key
        self.filename = filename
        self.reveals: list[tuple[str, Fx]] = []
        self.sealed: tuple[np.ndarray, np.ndarray] | None = None
        self.layout: list[tuple[str, tuple[int, ...], int, Any, float, float]] = []
        """Per sealed value: name, shape, scale bits, error bound, range [lo, hi]."""
        self.exact: dict[str, np.ndarray] = {}
        self.released: dict[str, dict[str, Any]] = {}
        """Per revealed name under a policy: kept cells, reasons, noise scale and bound."""
        self.hots: dict[int, tuple[Fx, Secret]] = {}
        self.library = CompiledLibrary(self)

    def err(self, node: Node, message: str, why: str = "") -> ScriptError:
        return ScriptError(message, node.line, node.col, why, self.filename)

    # ------------------------------------------------------------ values

    def rows(self) -> int:
        return self.n

    def column(self, name: str, node: Node) -> Any:
        if name in self.public:
            return self.public[name]
        secret, (f, lo, hi, integer) = self.inputs[name]
        return Fx(self, [secret], f, lo, hi, 0.0, integer, secret.shape,
                  stored=storage_rounding(f, integer))

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
                           integer=a.integer and b.integer, shape=shape, mask=_mask(a, b),
                           stored=a.stored + b.stored)

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
        # the same rule between the written and the stored operands (`analytics.storage`)
        stored = a.mag * b.stored + (b.mag + b.stored) * a.stored
        return self.product(self.widen(a, shape), self.widen(b, shape), None, shift, f=f,
                            lo=lo, hi=hi, err=err, integer=a.integer and b.integer,
                            shape=shape, mask=_mask(a, b), stored=stored)

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
                a, lo=lo, hi=hi, err=a.err * cmax, shape=shape, stored=a.stored * cmax))
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
        err = 2.0**-f + (a.mag + a.stored) * rounding + a.err * cmax
        self.require(max(abs(lo), abs(hi)) * 2.0**f, VALUE_LIMIT, node, "this product")
        return self.product(x, None, code, a.f + p - f, **self.fields(
            a, f=f, lo=lo, hi=hi, err=err, integer=False, shape=shape, stored=a.stored * cmax))

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
        # |a'/b' - a/b| <= (|a' - a| + |a/b| |b' - b|) / |b'|, |b'| >= bmin - b.stored
        stored = (a.stored + q * b.stored) / max(bmin - b.stored, 2.0**-FRAC) \
            if a.stored or b.stored else 0.0
        out = functions.divide(self.e, x.secret, y.secret, FRAC, bits=bits)
        return Fx(self, [out], FRAC, -q, q, err, False, shape, _mask(a, b), stored=stored)

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
                       err=max(p.err for p in parts), integer=all(p.integer for p in parts),
                       stored=max(p.stored for p in parts))

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
                           shape=(len(parts), *shape), stored=max(p.stored for p in parts))

    def set_item(self, value: Any, index: int, item: Any, node: Node) -> Fx:
        v = self.fx(value)
        n = v.shape[0]
        index %= n
        items = [self.take(v, i, node) if i != index else item for i in range(n)]
        return self.stack(items, node)

    # ------------------------------------------------------------ output

    def reveal(self, name: str, value: Any, node: Reveal) -> None:
        self.release_value(name, value, node, None)

    def release_value(self, name: str, value: Any, node: Reveal,
                      info: dict[str, Any] | None) -> None:
        """Keep a revealed value for sealing; under a release policy `info` (from
        `disclosure.Tracked`) says which cells may go out: only those are sealed."""
        if isinstance(value, list | tuple):
            value = self.stack(list(value), node) if any(isinstance(v, Fx) for v in
                                                         _flat(list(value))) else \
                np.asarray(value, dtype=np.float64)
        if isinstance(value, Fx):
            self.reveals.append((name, value))
            if info is not None:
                self.released[name] = info
        else:
            self.exact[name] = np.asarray(value, dtype=np.float64)

    # ------------------------------------------------ primitives of disclosure control

    def selected(self, x: Any, where: Any, node: Call) -> Any:
        """How many rows an aggregate of x counts: the table's (public) unless a filter or
        where= chose, then the sum of the selection (local, not opened)."""
        w = self.selection(x, where, node) if isinstance(x, Fx) else where
        if w is None:
            return float(self.n)
        if not isinstance(w, Fx):
            return float(np.sum(np.asarray(w) != 0))
        return self.linear(lambda s: s.sum(), [w], f=0, lo=0.0, hi=float(w.shape[0]), err=0.0,
                           integer=True, shape=())

    def dominance(self, x: Any, where: Any, key: Fx | None, levels: int, k: int,
                  ratio: tuple[int, int], node: Call) -> Fx:
        """Per cell, the secret bit [100 b top_k <= a total] of the dominance rule (p = a / b
        %), on shares; `PlainBackend.dominance` is the reference.

        1. contributions c_r = |x_r| as codes (x itself when its range is non-negative, else
           one comparison and one product per row): the rule bounds what the k largest
           contributors hold of the cell's gross magnitude, so a negative value counts by
           its size, never against the others;
        2. membership M (n, cells): the selection (a sum or mean) or the group_by's weighted
           one-hot (`group_rows`);
        3. top_k per cell and the total Σ_r M_rl c_r by `mpc.dominance.top_sums`;
        4. a total - 100 b top_k >= 0: one comparison per cell (integers, exact).
        Nothing is opened here: the caller opens this bit, combined with the n_min bit.
        """
        from enigma.mpc.dominance import top_sums

        x = self.fx(x)
        n = x.shape[0]
        if len(x.shape) != 1:
            raise self.err(node, "the dominance rule needs the values of a column")
        if key is not None:
            member = self.library.group_rows(key, x, levels, node)
            shape: tuple[int, ...] = (levels,)
        else:
            w = self.selection(x, where, node)
            member = w.secret.reshape(n, 1) if w is not None else None
            shape = ()
        bare = replace(x, mask=None)
        if bare.hi <= 0:
            bare = self.negate(bare, node)
        elif bare.lo < 0:
            bare = self.where(self.compare("<", bare, 0.0, node), self.negate(bare, node),
                              bare, node)
        bits = max(math.ceil(bare.mag * 2.0**bare.f).bit_length(), 1)
        code = bare.secret
        top, total = top_sums(self.e, code, member, k, bits)
        a, b = ratio
        top_hi = n * bare.mag
        d = Fx(self, [(total * a - top * (100 * b)).reshape(*shape)], bare.f,
               -100.0 * b * top_hi, float(a) * top_hi, 0.0, bare.f == 0, shape)
        return self.compare(">=", d, 0.0, node)

    def noise(self, value: Any, scale: float, integer: bool) -> tuple[Fx, float]:
        """Discrete Laplace noise of `scale` (value units) on the grid of the value's code,
        drawn jointly by the quorum (`mpc.noise.discrete_laplace`): no party knows it."""
        from enigma.mpc.noise import discrete_laplace

        x = self.fx(value)
        shape = tuple(x.shape)
        unit = 2.0**-x.f
        drawn = discrete_laplace(self.e, size_of(shape), scale / unit)
        tail = drawn.plan.bound * unit  # every sample lies strictly within
        return Fx(self, [drawn.value.reshape(*shape)], x.f, -tail, tail, 0.0, x.integer,
                  shape), unit

    def noise_unit(self, value: Any, integer: bool) -> float:
        """The grid of the noise `noise` draws for a value: one unit of its code, 2^-f."""
        return 2.0 ** -self.fx(value).f

    def open_bits(self, bits: list[Fx]) -> list[np.ndarray]:
        """Open 0/1 values (a policy's pass bits) in one round, MAC-checked: nothing else."""
        if not bits:
            return []
        flat = concat([b.secret.reshape(size_of(b.shape)) for b in bits])
        opened = self.F.to_int64(self.e.reveal(flat)) != 0
        out, start = [], 0
        for b in bits:
            size = size_of(b.shape)
            out.append(opened[start:start + size].reshape(b.shape))
            start += size
        return out

    def finish(self) -> dict:
        """Seal every revealed value for the owner in one batch: one product, one MAC check.

        Public results (computed from public values only) are exact and need no sealing.
        The sealed shares and the layout stay on the backend for the runner to send.
        """
        self.flush()
        parts = [self.kept(name, v) for name, v in self.reveals]
        parts = [p for p in parts if p.size]
        if parts:
            self.sealed = client.seal_output(self.e, concat(parts), self.key)
        else:
            self.e.check()
        self.layout = [(name, v.shape, v.f, bound_of(v), v.lo, v.hi,
                        *self.release_facts(name)) for name, v in self.reveals]
        return {}

    def kept(self, name: str, v: Fx) -> Secret:
        """The cells of a revealed value that are sealed: all, or those its policy keeps."""
        flat = v.secret.reshape(v.secret.size)
        info = self.released.get(name)
        if info is None:
            return flat
        return flat[np.flatnonzero(np.asarray(info["kept"]).reshape(-1))]

    def release_facts(self, name: str) -> list[dict[str, Any]]:
        """The public facts of a released value for the owner (none without a policy):
        which cells were kept, why the others were not, the noise's scale and 95% bound."""
        info = self.released.get(name)
        if info is None:
            return []
        def flat(a: Any) -> Any:
            return None if a is None else np.asarray(a).reshape(-1).tolist()
        return [dict(kept=flat(info["kept"]), reasons=flat(info["reasons"]),
                     scale=flat(info["scale"]), bound=flat(info["bound"]),
                     epsilon=float(info["epsilon"]), delta=float(info["delta"]))]

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
        return self.library.call(name, args, kwargs, node)

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

    def one_hot(self, key: Fx, levels: int) -> Secret:
        """The (n, levels) one-hot of a key column, made once per key and kept for later calls."""
        cached = self.hots.get(id(key.cell))
        if cached is None:
            cached = (key, one_hot(self.e, key.secret.reshape(size_of(key.shape)), levels))
            self.hots[id(key.cell)] = cached  # holding the key keeps its id unique
        return cached[1]

    def model_columns(self, xs: Any, node: Call, f: int) -> tuple[list[Fx], list[Secret]]:
        cols = [self.fx(c) for c in (xs if isinstance(xs, list | tuple) else [xs])]
        if any(c.shape != (self.n,) for c in cols):
            raise self.err(node, f"{node.func}() takes columns of the table")
        return cols, [self.up(c, f).secret for c in cols]



def bound_of(v: Fx) -> Any:
    """A revealed value's error bound against the owner's data as written: the computation's
    (per element when the library gives one) plus the storage rounding it carries."""
    return v.err + v.stored if v.errs is None else v.errs + v.stored


def _as_bool(x: Any) -> Any:
    if isinstance(x, Fx):
        return replace(x, lo=0.0, hi=1.0, integer=True)
    return x


def _mask(*xs: Any) -> Fx | None:
    masks = [x.mask for x in xs if isinstance(x, Fx) and x.mask is not None]
    return masks[0] if masks else None
