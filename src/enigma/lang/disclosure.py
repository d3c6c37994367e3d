"""Disclosure control of a run: what each revealed value is computed over, and what may go out.

`Tracked` wraps a backend (plain or MPC) for a run under a `release.Release`. It passes
every operation through and keeps, beside each private value, a `Disclosure`:

- `supports`: the row counts the value is computed over, each broadcast to the value's
  shape (public numbers, e.g. the table's row count, or private values of the backend,
  e.g. a filter's or a group-by cell's count). A value passes the n_min rule where every
  support is at least n_min (a derived value takes the smallest support of its parts).
- `why`: set when the rules cannot judge the value (a value of single rows, an order
  statistic, a k-means centroid): under a policy its reveal is refused, naming why.
- `mechanism`: set when the value IS one aggregate (count, sum, mean, histogram,
  group_by, or a cell of one): what differential privacy needs to noise it (kind,
  L1 sensitivity from the schema's ranges, the count of a mean). Derived values have
  none and are refused under DP (release the aggregates; ratios of noisy values are
  post-processing, free of budget).

At `finish` it splits the job's ε over the released outputs, asks the backend for the
noise (`backend.noise`, drawn inside the MPC on the engine), computes every cell's pass
bit (`backend.open_bits`: only those bits are opened) and hands each value to
`backend.release_value` with the cells it may let out. The backend never opens or seals
a suppressed cell. Why a wrapper: the rules are the same for the plain reference and the
MPC run, so they live once, here, and the backends only supply the primitives.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import ScriptError
from .interpreter import Revealed, _leaves
from .release import Release
from .syntax import Call, Expr, Node, Reveal, ValueType

FEW_ROWS = "suppressed: fewer than n_min rows"
DOMINANCE = "suppressed: dominance (its top k contributors hold more than p % of it)"
SMALL_OR_DOMINANT = "suppressed: fewer than n_min rows or dominance (top k over p %)"
"""One bit per cell is opened for both rules together, so a withheld cell whose row count
is private does not say which rule withheld it."""
ROW_VALUES = "it is a value of single rows, not an aggregate"
ROWS_OF_AGGREGATES = ("it is computed per row from an aggregate: an aggregate of it would let "
                      "the inner aggregate out over every row, unjudged; reveal the aggregates "
                      "themselves")
ROWWISE = frozenset({"where", "select", "clip", "sqrt", "exp", "log", "abs"})
"""Library functions that keep rows as rows (their result is another column)."""
ORDER = frozenset({"min", "max", "median", "percentile"})
WHOLE = frozenset({"cov", "corr", "linreg", "ols", "logit", "ttest", "ttest_1samp", "ttest_rel",
                   "chi2", "chisquare", "pearsonr", "anova"})
"""Statistics of whole columns: their support is the table's (public) row count."""
CONFIDENCE = 0.95
"""The probability of the error bound a noised value states."""


@dataclass(frozen=True)
class Mechanism:
    """How differential privacy noises one aggregate (a value or a vector of disjoint cells)."""

    kind: str
    """count, sum or mean (a mean is a noisy sum over a noisy count, or over a public n)."""
    sensitivity: float | None
    """L1 change of the count or sum when one row is added or removed; None: unbounded."""
    cells: bool = False
    """True for a histogram or group-by: one row is in one cell, so the vector is one output."""
    count: Any = None
    """A mean's row count: a public number or a private value (per cell)."""
    total: Callable[[], Any] | None = None
    """A mean's sum over the same rows, computed only when it is noised."""
    bound: float = 0.0
    """A mean's largest |value| (the schema's range), for its error bound."""
    span: tuple[float, float] | None = None
    """A mean's range [lo, hi] (the schema's, after narrowing): a noised mean is clamped to
    it."""
    integer: bool = True
    """Whether the aggregate is a whole number (its noise is on the grid of 1, else 2^-16)."""


@dataclass(frozen=True)
class Disclosure:
    """What the release rules know of one private value (see the module docstring)."""

    supports: tuple[Any, ...] = ()
    why: str | None = None
    mechanism: Mechanism | None = None
    row: bool = False
    passes: tuple[Callable[[], Any], ...] = ()
    """The dominance rule's pass bits (0/1 per cell, private or public), computed only when
    the value is released: a sum's or mean's cell passes where its top k contributions
    are at most p % of the cell's total (`backend.dominance`)."""
    statistic: str | None = None
    """The magnitude statistic (variance, std, cov, a test, ...) the value depends on, whose
    dominance is not computed: a dominance policy refuses the value, naming it."""


ROW = Disclosure(why=ROW_VALUES, row=True)


@dataclass
class Output:
    """One reveal under a policy, held until the end of the run."""

    name: str
    value: Any
    node: Reveal
    disclosure: Disclosure | None
    epsilon: float = 0.0
    scale: np.ndarray | None = None
    bound: np.ndarray | None = None
    bits: list[Any] = field(default_factory=list)
    delta: float = 0.0
    """What this output's noise adds to the job's δ (`Tracked.delta`)."""
    refused: str | None = None
    """Why the policy does not let it out (a review collects these instead of stopping)."""


def sensitivity(t: Any) -> float | None:
    """One row's largest contribution to a sum of a value of type `t`: max(|lo|, |hi|) of its
    public range (after the checker's clip/min/max narrowing), None when unbounded."""
    if not isinstance(t, ValueType):
        return None
    if t.kind.name == "bool":
        return 1.0
    if t.lo is None or t.hi is None or not (math.isfinite(t.lo) and math.isfinite(t.hi)):
        return None
    return float(max(abs(t.lo), abs(t.hi)))


def laplace_bound(scale: float, unit: float, confidence: float = CONFIDENCE) -> float:
    """The smallest m (a multiple of `unit`) with P(|noise| > m) <= 1 - confidence for
    discrete Laplace noise of `scale` on the grid `unit`: P(|k| > j) = 2 q^(j+1) / (1 + q),
    q = exp(-unit / scale)."""
    if scale <= 0:
        return 0.0
    q = math.exp(-unit / scale)
    j = math.ceil(math.log((1 - confidence) * (1 + q) / 2) / math.log(q)) - 1
    return max(j, 0) * unit


class Tracked:
    """A backend under a release policy (see the module docstring)."""

    def __init__(self, inner: Any, release: Release, strict: bool = True) -> None:
        self.b = inner
        self.release = release
        self.strict = strict
        """False for a review (`enigma check`): a refused output is noted, the run goes on."""
        self.known: dict[int, tuple[weakref.ref[Any], Disclosure]] = {}
        """Disclosures by value id. Weak: a row-level intermediate that carries an aggregate
        is marked too, and holding it here would keep every such column alive to the end."""
        self.outputs: list[Output] = []
        self.withheld: list[Output] = []
        self.delta_spent = 0.0
        """The job's δ from its noise (the sum over outputs), known before any draw."""
        self.delta_refused: str | None = None
        """A review's note that the job states less δ than its noise needs."""

    # ------------------------------------------------------------ bookkeeping

    def of(self, value: Any) -> Disclosure | None:
        """The disclosure of a value: None for public values, ROW for untracked private ones
        (columns and what is computed from rows)."""
        if not self.b.is_private(value):
            return None
        held = self.known.get(id(value))
        return held[1] if held is not None and held[0]() is value else ROW

    def mark(self, value: Any, d: Disclosure) -> Any:
        if self.b.is_private(value):
            key, known = id(value), self.known

            def forget(ref: weakref.ref[Any]) -> None:  # before the id can be reused
                if known.get(key, (None,))[0] is ref:
                    del known[key]

            known[key] = (weakref.ref(value, forget), d)
        return value

    def widen(self, part: Any, shape: tuple[int, ...], node: Node) -> Any:
        """A support part broadcast to `shape` (public: numpy; private: the backend's add)."""
        if not self.b.is_private(part):
            return np.broadcast_to(np.asarray(part, dtype=np.float64), shape)
        if tuple(part.shape) == tuple(shape):
            return part
        return self.b.binop("+", part, np.zeros(shape), node)

    def combine(self, out: Any, operands: list[Any], node: Node) -> Any:
        """`out` computed from `operands`: rows if any is rows, else the union of supports."""
        if not self.b.is_private(out):
            return out
        ds = [d for d in (self.of(v) for v in _leaves(list(operands))) if d is not None]
        rows = [d for d in ds if d.row]
        if rows:  # rows stay rows; rows that carry an aggregate say so, whatever follows
            carried = next((d for d in rows if d is not ROW), None)
            if carried is None and len(rows) < len(ds):
                carried = Disclosure(why=ROWS_OF_AGGREGATES, row=True)
            return self.mark(out, carried or ROW)
        whys = [d.why for d in ds if d.why]
        if whys:
            return self.mark(out, Disclosure(why=whys[0]))
        parts: list[Any] = []
        passes: list[Callable[[], Any]] = []
        for d in ds:
            for p in d.supports:
                if not any(p is q for q in parts):
                    parts.append(p)
            passes += [f for f in d.passes if f not in passes]
        shape = tuple(out.shape)
        return self.mark(out, Disclosure(
            tuple(self.widen(p, shape, node) for p in parts),
            passes=tuple(once(lambda f=f: self.widen(f(), shape, node)) for f in passes),
            statistic=next((d.statistic for d in ds if d.statistic), None)))

    # ------------------------------------------------------------ the Backend protocol

    def rows(self) -> int:
        return self.b.rows()

    def column(self, name: str, node: Any) -> Any:
        return self.b.column(name, node)

    @property
    def n(self) -> int:
        """The rows of the backend it tracks."""
        return int(self.b.n)

    def is_private(self, value: Any) -> bool:
        return self.b.is_private(value)

    def binop(self, op: str, a: Any, b: Any, node: Expr) -> Any:
        return self.combine(self.b.binop(op, a, b, node), [a, b], node)

    def negate(self, a: Any, node: Expr) -> Any:
        return self.combine(self.b.negate(a, node), [a], node)

    def compare(self, op: str, a: Any, b: Any, node: Expr) -> Any:
        return self.combine(self.b.compare(op, a, b, node), [a, b], node)

    def logic(self, op: str, values: list[Any], node: Expr) -> Any:
        return self.combine(self.b.logic(op, values, node), values, node)

    def where(self, cond: Any, a: Any, b: Any, node: Node) -> Any:
        return self.combine(self.b.where(cond, a, b, node), [cond, a, b], node)

    def set_item(self, value: Any, index: int, item: Any, node: Node) -> Any:
        return self.combine(self.b.set_item(value, index, item, node), [value, item], node)

    def take(self, value: Any, index: int | slice, node: Expr) -> Any:
        out = self.b.take(value, index, node)
        d = self.of(value)
        if d is None or d.row or d.why:
            return self.mark(out, d) if d is not None else out

        def pick(p: Any) -> Any:
            return self.b.take(p, index, node) if self.b.is_private(p) else np.asarray(p)[index]

        m = d.mechanism
        if m is not None:
            total = m.total
            m = replace(m, cells=m.cells and len(out.shape) > 0,
                        count=m.count if np.ndim(m.count) == 0 and not
                        self.b.is_private(m.count) else pick(m.count),
                        total=None if total is None else once(lambda: pick(total())))
        return self.mark(out, Disclosure(tuple(pick(p) for p in d.supports), mechanism=m,
                                         passes=tuple(once(lambda f=f: pick(f()))
                                                      for f in d.passes),
                                         statistic=d.statistic))

    def stack(self, items: list[Any], node: Node) -> Any:
        out = self.b.stack(items, node)
        ds = [self.of(i) for i in items]
        if any(d is not None and (d.row or d.why) for d in ds):
            return self.combine(out, items, node)
        shape = tuple(out.shape[1:])
        width = max((len(d.supports) for d in ds if d is not None), default=0)
        floor = float(self.release.policy.n_min)
        parts = []
        for j in range(width):  # part j of each item; a shorter list repeats its first
            column = [self.widen(d.supports[min(j, len(d.supports) - 1)], shape, node)
                      if d is not None and d.supports else np.full(shape, floor) for d in ds]
            parts.append(self.b.stack(column, node) if any(self.b.is_private(c) for c in column)
                         else np.stack(column))
        passes = []
        for j in range(max((len(d.passes) for d in ds if d is not None), default=0)):
            fs = [d.passes[min(j, len(d.passes) - 1)] if d is not None and d.passes else None
                  for d in ds]

            def stacked(fs: list[Any] = fs) -> Any:
                column = [self.widen(f(), shape, node) if f is not None else np.ones(shape)
                          for f in fs]
                return self.b.stack(column, node) if any(self.b.is_private(c) for c in column) \
                    else np.stack(column)
            passes.append(once(stacked))
        return self.mark(out, Disclosure(tuple(parts), passes=tuple(passes), statistic=next(
            (d.statistic for d in ds if d is not None and d.statistic), None)))

    def call(self, name: str, args: list[Any], kwargs: dict[str, Any], node: Call) -> Any:
        out = self.b.call(name, args, kwargs, node)
        if not self.b.is_private(out):
            return out
        operands = _leaves(list(args) + list(kwargs.values()))
        ds = [self.of(v) for v in operands]
        if not any(d is not None and d.row for d in ds) or name in ROWWISE or \
                (name in ("min", "max") and len(args) >= 2):
            return self.combine(out, operands, node)
        carried = next((d for d in ds if d is not None and d.row and d is not ROW), None)
        if carried is not None:
            return self.mark(out, Disclosure(why=carried.why))
        return self.mark(out, self.aggregate(name, args, kwargs, node, out))

    def aggregate(self, name: str, args: list[Any], kwargs: dict[str, Any], node: Call,
                  out: Any) -> Disclosure:
        """The disclosure of a library aggregate of rows (see docs/disclosure.md)."""
        from .library import bind

        a = bind(name, args, kwargs)
        shape = tuple(out.shape)
        if name == "count":  # over the whole table: the public row count (the MPC's view)
            whole = not self.b.is_private(self.b.selected(a["x"], a.get("where"), node)) and \
                not _is_bool(node.args[0].type)
            return Disclosure((np.full(shape, float(self.b.rows())) if whole else out,),
                              mechanism=Mechanism("count", 1.0))
        if name == "histogram":
            return Disclosure((out,), mechanism=Mechanism("count", 1.0, cells=True))
        if name in ("sum", "mean", "variance", "std"):
            rows = self.b.selected(a["x"], a.get("where"), node)
            passes = self.dominance(a["x"], a.get("where"), None, 0, node)
            if name == "sum":
                return Disclosure((self.widen(rows, shape, node),), mechanism=Mechanism(
                    "sum", sensitivity(node.args[0].type),
                    integer=_integer(node.args[0].type)), passes=passes)
            if name == "mean":
                s = sensitivity(node.args[0].type)
                return Disclosure((self.widen(rows, shape, node),), mechanism=Mechanism(
                    "mean", s, count=rows, bound=s or 0.0, integer=_integer(node.args[0].type),
                    total=once(lambda: self.b.call("sum", args, kwargs, node)),
                    span=_span(node.args[0].type)), passes=passes)
            return Disclosure((self.widen(rows, shape, node),), statistic=name)
        if name == "group_by":
            agg = a.get("agg", "count")
            counts = out if agg == "count" else self.b.call(  # the rows the values keep
                "group_by", [a["key"], a["values"]], {"agg": "count"}, node)
            if agg == "count":
                return Disclosure((counts,), mechanism=Mechanism("count", 1.0, cells=True))
            t = bind(name, list(node.args), dict(node.kwargs))["values"].type
            s = sensitivity(t)
            levels = shape[0]
            passes = self.dominance(a["values"], None, a["key"], levels, node)
            if agg == "sum":
                return Disclosure((counts,), mechanism=Mechanism("sum", s, cells=True,
                                                                 integer=_integer(t)),
                                  passes=passes)
            return Disclosure((counts,), mechanism=Mechanism(
                "mean", s, cells=True, count=counts, bound=s or 0.0, integer=_integer(t),
                total=once(lambda: self.b.call("group_by", [a["key"], a["values"]],
                                               {"agg": "sum"}, node)), span=_span(t)),
                passes=passes)
        if name in ORDER:
            return Disclosure(why=f"{name}() reveals one row's value (an order statistic)")
        if name == "kmeans":
            return Disclosure(why="a k-means centroid is the mean of a cluster whose size is "
                                  "not tracked")
        if name in WHOLE or name == "proportion":
            filtered = a.get("where") is not None or any(
                getattr(v, "mask", None) is not None for v in _leaves(list(args)))
            if filtered:
                return Disclosure(why=f"{name}() of a filtered selection: its row count is "
                                      "not tracked")
            return Disclosure((np.full(shape, float(self.b.rows())),),
                              statistic=name)
        return Disclosure(why=f"{name}() has no known row count")

    def dominance(self, x: Any, where: Any, key: Any, levels: int, node: Call
                  ) -> tuple[Callable[[], Any], ...]:
        """The dominance pass bits of a sum or mean (per cell of a group_by), computed by the
        backend on first use only, and only under a policy with the rule."""
        policy = self.release.policy
        if policy.dominance_k is None:
            return ()
        k, ratio = policy.dominance_k, policy.dominance_ratio
        return (once(lambda: self.b.dominance(x, where, key, levels, k, ratio, node)),)

    # ------------------------------------------------------------ output

    def reveal(self, name: str, value: Any, node: Reveal) -> None:
        if isinstance(value, list | tuple):
            value = self.stack(list(value), node) if any(
                self.b.is_private(v) for v in _leaves(list(value))) else value
        d = self.of(value)
        refusal = None if d is None else self.refusal(name, d)
        if refusal is not None and self.strict:
            raise self.err(node, *refusal)
        self.outputs.append(Output(name, value, node, d,
                                   refused=None if refusal is None else refusal[0]))

    def refusal(self, name: str, d: Disclosure) -> tuple[str, str] | None:
        """Why the policy cannot let a private value out, and what to do; None if it can."""
        if d.why:
            return (f"{name!r} cannot be released under the dataset's policy: {d.why}",
                    "the policy judges counts, sums, means, histograms, group-bys and "
                    "statistics of whole columns (docs/disclosure.md)")
        m = d.mechanism
        if self.release.policy.dominance_k is not None and d.statistic:
            return (f"{name!r} cannot be released under the dataset's dominance rule: the "
                    f"dominance of {d.statistic}() is not computed", "the run decides "
                    "dominance for counts, sums, means and group_by cells (docs/disclosure.md)")
        if self.release.epsilon is None:
            return None
        if m is None and d.statistic in ("variance", "std"):
            return (f"{name!r} cannot be released under differential privacy: "
                    f"{d.statistic}() has no noise mechanism here", "release count(x), "
                    "sum(x) and sum(x * x) of a clipped x and compute it from the noisy values "
                    "(docs/disclosure.md)")
        if m is None:
            return (f"{name!r} cannot be released under differential privacy: it is "
                    "computed from aggregates, not one", "release the count, sum, mean or "
                    "group_by itself and compute from the noisy values")
        if m.sensitivity is None:
            return (f"{name!r} has unbounded sensitivity under differential privacy: its "
                    "argument has no public range", "clip it first, e.g. clip(x, lo, hi)")
        return None

    def err(self, node: Node, message: str, why: str = "") -> ScriptError:
        return ScriptError(message, node.line, node.col, why, self.b.filename)

    def finish(self) -> dict[str, Revealed]:
        """Noise, pass bits (opened, nothing else), then each value with its kept cells."""
        self.withheld = [o for o in self.outputs if o.refused is not None]
        self.outputs = [o for o in self.outputs if o.refused is None]
        private = [o for o in self.outputs if o.disclosure is not None]
        if self.release.epsilon is not None and private:
            share = self.release.epsilon / len(private)
            for o in private:
                o.delta = self.delta(o, share)
            self.check_delta(private)
            for o in private:
                self.noise(o, share)
        policy = self.release.policy
        dominance: dict[int, list[Any]] = {}
        for o in private:
            d = o.disclosure
            assert d is not None
            o.bits = [self.b.compare(">=", p, float(policy.n_min), o.node)
                      for p in d.supports if self.b.is_private(p)]
            dominance[id(o)] = [f() for f in d.passes]
            hidden = [b for b in dominance[id(o)] if self.b.is_private(b)]
            if hidden:  # one bit per cell for both rules: which one failed stays hidden
                o.bits = [self.b.logic("and", o.bits + hidden, o.node)
                          if o.bits or len(hidden) > 1 else hidden[0]]
        opened = iter(self.b.open_bits([b for o in private for b in o.bits]))
        for o in self.outputs:
            if o.disclosure is None:
                self.b.release_value(o.name, o.value, o.node, None)
                continue
            shape = tuple(np.shape(o.value)) if not self.b.is_private(o.value) else \
                tuple(o.value.shape)
            kept, small = np.ones(shape, dtype=bool), np.zeros(shape, dtype=bool)
            for p in o.disclosure.supports:
                if not self.b.is_private(p):
                    small |= (np.asarray(p) < policy.n_min).reshape(shape)
            public_pass = np.ones(shape, dtype=bool)
            for b in dominance[id(o)]:
                if not self.b.is_private(b):
                    public_pass &= np.asarray(b, dtype=bool).reshape(shape)
            for _ in o.bits:
                kept &= np.asarray(next(opened)).reshape(shape)
            hidden = any(self.b.is_private(b) for b in dominance[id(o)])
            secret_rows = any(self.b.is_private(p) for p in o.disclosure.supports)
            failed = SMALL_OR_DOMINANT if hidden and secret_rows else \
                DOMINANCE if hidden else FEW_ROWS
            reasons = np.where(small, FEW_ROWS, np.where(~public_pass, DOMINANCE, failed))
            kept &= ~small & public_pass
            if self.release.sizing:  # a dry run sizing the preprocessing: seal every cell,
                kept[...] = True  # the most a run on the real data can (Release.sizing)
            reasons = np.where(kept, "", reasons).astype(object)
            self.b.release_value(o.name, o.value, o.node, dict(
                kept=kept, reasons=reasons, scale=o.scale, bound=o.bound, epsilon=o.epsilon,
                delta=o.delta))
        return self.b.finish()

    def check_delta(self, private: list[Output]) -> None:
        """Refuse, before any noise is drawn, a job whose noise needs more δ than it states."""
        needed = sum(o.delta for o in private)
        self.delta_spent = needed
        if needed <= self.release.delta:
            return
        message = (f"this job's noise needs δ ≥ {needed:.3g} (the joint draw's distance from "
                   f"the exact law), more than the δ = {self.release.delta:g} it states")
        why = "state a larger δ (--delta, within the dataset's δ budget; docs/disclosure.md)"
        if self.strict:
            raise self.err(private[0].node, message, why)
        self.delta_refused = message

    def noise(self, o: Output, epsilon: float) -> None:
        """Discrete Laplace noise of scale sensitivity / ε on `o`'s value, drawn by the
        backend; a mean with a private count is (sum + noise) / max(count + noise, 1), each
        with half of ε. A noised mean is then clamped to its schema range on shares
        (post-processing: free of budget), and its bound is at most that range's width."""
        m = o.disclosure.mechanism  # type: ignore[union-attr]
        assert m is not None and m.sensitivity is not None
        o.epsilon = epsilon
        shape = tuple(o.value.shape)
        draws = self.draws(o, epsilon)
        noises = [self.b.noise(value, scale, integer)[0] for value, scale, integer, _ in draws]
        if len(draws) == 1:
            (_, scale, _, _), (noise,) = draws[0], noises
            o.value = self.b.binop("+", o.value, noise, o.node)
            o.scale = np.full(shape, scale)
            o.bound = np.full(shape, laplace_bound(scale, self.b.noise_unit(
                draws[0][0], draws[0][2])))
        else:
            (total, s_scale, s_int, _), (count, c_scale, _, _) = draws
            top = self.b.binop("+", total, noises[0], o.node)
            bottom = self.b.call("max", [self.b.binop("+", count, noises[1], o.node), 1.0], {},
                                 o.node)
            o.value = self.b.binop("/", top, bottom, o.node)
            o.scale = np.full(shape, s_scale)
            # each part within its 97.5% bound; the count is at least n_min where released
            half = 1 - (1 - CONFIDENCE) / 2
            bs = laplace_bound(s_scale, self.b.noise_unit(total, s_int), half)
            bc = laplace_bound(c_scale, 1.0, half)
            floor = max(self.release.policy.n_min - bc, 1.0)
            o.bound = np.full(shape, (bs + m.bound * bc) / floor)
        if m.kind == "mean" and m.span is not None:
            lo, hi = m.span
            o.value = self.b.call("clip", [o.value, lo, hi], {}, o.node)
            o.bound = np.minimum(o.bound, hi - lo)  # both the mean and the clamped value lie in it

    def draws(self, o: Output, epsilon: float) -> list[tuple[Any, float, bool, float]]:
        """The noise draws `o` needs: (the value noised, scale, integer grid, its ε)."""
        m = o.disclosure.mechanism  # type: ignore[union-attr]
        assert m is not None and m.sensitivity is not None
        if m.kind in ("count", "sum") or not self.b.is_private(m.count):
            count = 1.0 if m.kind != "mean" else float(np.min(m.count))
            return [(o.value, m.sensitivity / count / epsilon, m.integer and m.kind != "mean",
                     epsilon)]
        total = m.total()  # type: ignore[misc]
        return [(total, 2 * m.sensitivity / epsilon, m.integer, epsilon / 2),
                (m.count, 2 / epsilon, True, epsilon / 2)]

    def delta(self, o: Output, epsilon: float) -> float:
        """What `o`'s noise adds to the job's δ: a draw whose law is within total variation
        t of the exact ε'-DP one is (ε', (1 + e^ε') t)-DP, and a vector of c draws is within
        c t; the draws' t come from their public plans (`mpc.noise.plan`)."""
        from enigma.mpc.noise import plan

        total = 0.0
        for value, scale, integer, eps in self.draws(o, epsilon):
            unit = self.b.noise_unit(value, integer)
            cells = int(np.prod(np.shape(value) if not self.b.is_private(value)
                                else value.shape, dtype=np.int64))
            total += (1 + math.exp(eps)) * cells * plan(scale / unit).tv_distance
        return total


def once(f: Callable[[], Any]) -> Callable[[], Any]:
    """f, computed on the first call only (a pass bit costs a secure top-k: once per value)."""
    held: list[Any] = []

    def value() -> Any:
        if not held:
            held.append(f())
        return held[0]
    return value


def _span(t: Any) -> tuple[float, float] | None:
    """The public range [lo, hi] of a value type, None when either end is open."""
    if not isinstance(t, ValueType):
        return None
    if t.kind.name == "bool":
        return (0.0, 1.0)
    if t.lo is None or t.hi is None or not (math.isfinite(t.lo) and math.isfinite(t.hi)):
        return None
    return (float(t.lo), float(t.hi))


def _is_bool(t: Any) -> bool:
    return isinstance(t, ValueType) and t.kind.name == "bool"


def _integer(t: Any) -> bool:
    return isinstance(t, ValueType) and t.kind.name in ("int", "bool", "category")


def track(backend: Any, release: Release | None) -> Any:
    """The backend to run a script on: itself without a policy, else under `Tracked`."""
    return backend if release is None else Tracked(backend, release)
