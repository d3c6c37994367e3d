"""Network reduction: one script, split into per-chunk partial aggregates and a finishing step.

The analyst writes a script once. When its private row values (columns and row-wise
expressions of them) reach only *associative* aggregates, each chunk of rows can run on
its own quorum, which computes exact partial sums (`map`); a reducing quorum adds the
partials of all chunks and runs the rest of the script on them (`reduce`). Anything else
runs on one quorum, as before (`plan` says which, and why).

Why a wrapper over the existing backends rather than a second compiler: the same
interpreter walks the same typed AST in every phase, so public control flow, the order
of aggregate calls and every public range are identical in the trace, on every chunk
quorum and on the reducing quorum by construction; `SplitBackend` only decides, per
operation, which world a value lives in:

- a `Row` is a value with one entry per row (a column or a row-wise function of
  columns). Row operations run on the chunk's `MpcBackend` (map) and on a tiny
  synthetic `PlainBackend` "shadow" (8 rows) that gives shapes and filters in every mode;
- an aggregate of rows (count, sum, mean, variance, std, histograms, group_by, cov,
  corr, linreg's normal equations, min, max) is where the phases meet: the map phase computes
  its *sufficient statistics*, exact field integers (counts, sums of centred codes, sums
  of squares and cross-products),
  and returns the shadow's value so the rest of the script can run without cost;
  the reduce phase receives the summed statistics and finishes the aggregate
  (divisions, square roots) on its engine;
- everything computed from aggregates (post-processing, reveals) runs on the shadow in
  the map phase (thrown away) and on the reducing quorum's engine in the reduce phase.

`kmeans` is iterative: every Lloyd iteration's assignment statistics (per-cluster counts
and sums of centred codes, exact integers) come from the chunks, and the reducing quorum's
new centroids (secret) go back to every chunk quorum for the next iteration. The backends
reach the other quorums through an `Exchange` (the application's transport): the map
phase hands over the statistics gathered so far at every iteration (a *batch*) and
receives the centroids, checked with the owner's key k (`accept_handover`); the reduce
phase takes the statistics batch by batch and re-shares its centroids with k-MACs
(`handover_shares`).

A row value that meets an aggregate (`x - mean(x)`), a reveal of rows, indexing rows,
a public column, or any other library function of rows (median, percentiles,
filtered numeric histograms, chi2, ttest) raises `NotSplittable`: the job then runs on
one quorum.

Statistics are exact integers, so adding them over chunks loses nothing: x' = code - m
for the integer midpoint m of the codes of the row expression's public range (the same
on every chunk: ranges come from the schema). For a column of integers in [0, 1000]
at 10^6 rows, N = n S2 - S1^2 < n^2 w^2 = 2^58 (w = 500), where the single-quorum
variance, which centres codes with 16 fractional bits, needs n^2 (w 2^16)^2 < 2^85 and
refuses beyond about 3 10^4 rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from enigma.mpc import functions
from enigma.mpc.fixed import trunc_many
from enigma.mpc.secret import Secret, concat

from .analytics import categorical, models, moments, order, regression, storage
from .analytics.precision import PrecisionError, Range, divide_by_count, scale_public, table
from .batching import FRAC, VALUE_LIMIT, Fx
from .disclosure import track
from .errors import ScriptError
from .interpreter import Revealed, run
from .library import bind
from .mpc_backend import MpcBackend
from .mpc_library import pair_shift, regression_fx
from .plain import (
    Plain,
    PlainBackend,
    _flat,
    kmeans_start,
    referenced_columns,
    synthetic_table,
    table_values,
)
from .release import Release
from .schema import Schema
from .syntax import Call, Node, Reveal, Script, ValueType

REDUCIBLE = frozenset({"count", "sum", "mean", "variance", "std", "histogram", "group_by",
                       "linreg", "ols", "cov", "corr", "min", "max"})
"""Aggregates whose statistics combine over chunks (by sums; min/max by their extreme)."""
PER_CHUNK = frozenset({"min", "max"})
"""Aggregates the reducer receives one value per chunk job of (not summed)."""
ROWWISE = frozenset({"where", "abs", "sqrt", "exp", "log", "clip"})
"""Library functions that act row by row (a row value in, a row value out)."""
SHADOW_ROWS = 8
"""Rows of the synthetic shadow table: shapes and filters only, never results."""
CHECK_NAME = "__reduction_check"
"""The sealed check vector k P - Z of the reducing quorum (zero unless a partial was changed);
later batches of an iterative script seal theirs as CHECK_NAME + batch number."""
ITERATIVE = frozenset({"kmeans"})
"""Aggregates whose chunk statistics depend on a secret the reducing quorum computes."""


class NotSplittable(Exception):
    """The script cannot be split into chunk aggregates; the message says where and why."""


class HandoverError(RuntimeError):
    """A value re-shared between quorums failed its k-MAC check (k c - z != 0)."""


class Exchange(Protocol):
    """How the quorums of a split run meet in the middle of a script (iterative aggregates).

    Map side: `handover` sends the statistics gathered since the last hand-over (one batch)
    to the reducing quorum; `receive` waits for a secret the reducing quorum re-shares.
    Reduce side: `next_batch` waits for the chunk quorums' next batch, returned as one
    statistic per aggregate of `layout` (summed over chunks, per chunk for PER_CHUNK);
    `reshare` sends a secret to every chunk quorum.
    """

    def handover(self, partials: list[Secret], layout: list[dict[str, Any]]) -> None: ...

    def receive(self, shape: tuple[int, ...]) -> Secret: ...

    def next_batch(self) -> tuple[list[Secret], list[dict[str, Any]]]: ...

    def reshare(self, value: Secret) -> None: ...


def input_sum(e: Any, flat: np.ndarray) -> Secret:
    """The MAC'd sum of every member's additive vector: one SPDZ input per member."""
    total: Secret | None = None
    for member in range(e.parties):
        part = e.input(member, flat if member == e.party else None, flat.shape[0])
        total = part if total is None else total + part
    assert total is not None
    return total


def handover_shares(e: Any, value: Secret, key: Secret) -> tuple[np.ndarray, np.ndarray]:
    """This member's shares of (v, k v) for a hand-over to another quorum, after the MAC
    check of everything this quorum opened (nothing leaves a quorum before it).

    Why k v: the receiving quorum re-authenticates the parts by SPDZ input, which strips
    this quorum's MACs; k (the owner's output key, shared to every quorum independently)
    lets it check that the parts still sum to v without anyone learning v or k.
    """
    flat = value.reshape(value.size)
    z = e.mul(key.reshape(1).broadcast_to(flat.size), flat)
    e.check()
    return flat.share.value.copy(), z.share.value.copy()


def accept_handover(e: Any, c_part: np.ndarray, z_part: np.ndarray, key: Secret,
                    shape: tuple[int, ...]) -> Secret:
    """Re-authenticate a value another quorum handed over, and check it: returns [c].

    1. every member inputs the sum of the parts it received ([c], [z]: one input each);
    2. open k c - z and require it zero (then the MAC check of that opening). A sender
       that changed its parts by (d, d') makes it k d - d', zero only with probability
       1/p since k is hidden; when honest it is 0 and reveals nothing about c.
    """
    size = c_part.shape[0]
    total = input_sum(e, np.concatenate([c_part, z_part]))
    c, z = total[:size], total[size:]
    (opened,) = e.open(e.mul(key.reshape(1).broadcast_to(size), c) - z)
    e.check()
    if np.any(opened != 0):
        raise HandoverError("a value re-shared by the reducing quorum failed its check "
                            "(k c - z != 0): it was changed on its way")
    return c.reshape(*shape)


def batch_statistics(per_chunk: Secret, layout: list[dict[str, Any]]) -> list[Secret]:
    """The reducing quorum's statistics of one batch from its per-chunk-job vectors
    (chunks, m): additive ones summed over chunks (local), PER_CHUNK ones kept apart."""
    summed = per_chunk.sum(axis=0)
    stats, start = [], 0
    for meta, size in zip(layout, statistics_size(layout), strict=True):
        stats.append(per_chunk[:, start:start + size] if meta["func"] in PER_CHUNK
                     else summed[start:start + size])
        start += size
    return stats


@dataclass(eq=False)
class Row:
    """A value with one entry per row: its shadow (synthetic) and, in the map phase, its shares."""

    shadow: Any
    real: Fx | None
    rows: int

    @property
    def shape(self) -> tuple[int, ...]:
        """The total row count first, so `len()` in a script sees the whole table."""
        return (self.rows, *tuple(getattr(self.shadow, "shape", ()))[1:])


def _where(node: Node | None) -> str:
    return f" at line {node.line}" if node is not None else ""


def _is_row(v: Any) -> bool:
    return isinstance(v, Row)


class SplitBackend:
    """The interpreter's backend for one phase of a split job (`mode`: trace, map or reduce).

    trace: no engine; records the aggregates (owner's check before posting);
    map:   `mpc` holds the chunk's columns; `partials` collects the statistics, `layout`
           what the reducing quorum needs to finish each aggregate (public: ranges, scales);
    reduce: `mpc` has no columns; `stats` are the summed statistics (Secrets, in the
           order of `layout`), consumed by the aggregates as the script reaches them.
    """

    def __init__(self, mode: str, schema: Schema, script: Script, rows: int,
                 mpc: MpcBackend | None = None, stats: list[Secret] | None = None,
                 layout: list[dict[str, Any]] | None = None,
                 exchange: Exchange | None = None) -> None:
        if mode not in ("trace", "map", "reduce"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode, self.schema, self.total = mode, schema, rows
        self.filename = script.filename
        names = referenced_columns(script)
        table = table_values(schema, synthetic_table(schema, SHADOW_ROWS, names, 0))
        self.shadow = PlainBackend(schema, table, SHADOW_ROWS, script.filename, synthetic=True)
        self.mpc = mpc
        self.world: Any = mpc if mode == "reduce" else self.shadow
        self.partials: list[Secret] = []
        self.layout: list[dict[str, Any]] = [] if layout is None else list(layout)
        self.stats = list(stats or [])
        self.used = 0
        self.exchange = exchange
        self.batches = 0
        """Hand-overs so far (map: batches sent; reduce: batches taken after the first)."""

    # ------------------------------------------------------------ dispatch

    def _lift(self, node: Node | None, fn: str, *args: Any, **kwargs: Any) -> Any:
        """Apply backend method `fn` in the right world: rows (shadow + chunk) or aggregates."""
        flat = _flat(list(args) + list(kwargs.values()))
        if not any(_is_row(v) for v in flat):
            return getattr(self.world, fn)(*args, **kwargs)
        if any(not _is_row(v) and self.world.is_private(v) for v in flat):
            raise NotSplittable(f"a value of the rows meets an aggregate{_where(node)}; "
                                "the script runs on one quorum")
        shadow = getattr(self.shadow, fn)(*_part(args, "shadow"), **_part(kwargs, "shadow"))
        real = None
        if self.mode == "map":
            assert self.mpc is not None
            real = getattr(self.mpc, fn)(*_part(args, "real"), **_part(kwargs, "real"))
        return Row(shadow, real, self.total)

    def rows(self) -> int:
        return self.total

    def column(self, name: str, node: Any) -> Any:
        if not self.schema.column(name).private:
            raise NotSplittable(f"public column {name!r}{_where(node)}: public row values are "
                                "not split (yet)")
        real = self.mpc.column(name, node) if self.mode == "map" and self.mpc else None
        return Row(self.shadow.column(name, node), real, self.total)

    def is_private(self, value: Any) -> bool:
        return _is_row(value) or self.world.is_private(value)

    def binop(self, op: str, a: Any, b: Any, node: Any) -> Any:
        return self._lift(node, "binop", op, a, b, node)

    def negate(self, a: Any, node: Any) -> Any:
        return self._lift(node, "negate", a, node)

    def compare(self, op: str, a: Any, b: Any, node: Any) -> Any:
        return self._lift(node, "compare", op, a, b, node)

    def logic(self, op: str, values: list[Any], node: Any) -> Any:
        return self._lift(node, "logic", op, values, node)

    def where(self, cond: Any, a: Any, b: Any, node: Node) -> Any:
        return self._lift(node, "where", cond, a, b, node)

    def take(self, value: Any, index: int | slice, node: Any) -> Any:
        if _is_row(value):
            raise NotSplittable(f"indexing rows{_where(node)}")
        return self.world.take(value, index, node)

    def stack(self, items: list[Any], node: Node) -> Any:
        if any(_is_row(v) for v in _flat(items)):
            raise NotSplittable(f"a list of row values{_where(node)}")
        return self.world.stack(items, node)

    def set_item(self, value: Any, index: int, item: Any, node: Node) -> Any:
        if _is_row(value) or _is_row(item):
            raise NotSplittable(f"assigning into rows{_where(node)}")
        return self.world.set_item(value, index, item, node)

    def reveal(self, name: str, value: Any, node: Reveal) -> None:
        self.release_value(name, value, node, None)

    def call(self, name: str, args: list[Any], kwargs: dict[str, Any], node: Call) -> Any:
        flat = _flat(args + list(kwargs.values()))
        if not any(_is_row(v) for v in flat):
            return self.world.call(name, args, kwargs, node)
        if name in ROWWISE or (name in ("min", "max") and len(args) >= 2):
            return self._lift(node, "call", name, args, kwargs, node)
        if name in ITERATIVE:
            if any(not _is_row(v) and self.world.is_private(v) for v in flat):
                raise NotSplittable(f"{name}(){_where(node)} mixes rows and aggregates")
            return self._kmeans(args, kwargs, node)
        if name not in REDUCIBLE:
            raise NotSplittable(f"{name}() of row values{_where(node)} does not add over chunks")
        if name in ("variance", "std") and bind(name, args, kwargs).get("ddof", 0):
            raise NotSplittable(f"{name}(ddof=...){_where(node)} runs on one quorum")
        if any(not _is_row(v) and self.world.is_private(v) for v in flat):
            raise NotSplittable(f"{name}(){_where(node)} mixes rows and aggregates")
        return self._aggregate(name, args, kwargs, node)

    # ------------------------------------------------ primitives of disclosure control

    def selected(self, x: Any, where: Any, node: Call) -> Any:
        """How many rows an aggregate of x counts: the public total, or (a filter or where=)
        one more aggregate, the count of the selection: exact sums on the chunks, added by
        the reducing quorum like any count (`disclosure.Tracked` asks for it)."""
        w = _part(where, "shadow")
        filtered = (_is_row(x) and x.shadow.mask is not None) or where is not None
        if not filtered:
            return float(self.total)
        spec: dict[str, Any] = {"func": "count", "counted": True}
        if self.mode == "reduce":
            return self._finish(spec, node)
        shadow = self.shadow.selected(_part(x, "shadow"), w, node)
        if self.mode == "map":
            m = self.mpc
            assert m is not None
            real = m.selection(m.fx(x.real if _is_row(x) else x), _part(where, "real"), node)
            assert real is not None
            self.partials.append(real.secret.sum().reshape(1))
            self.layout.append(dict(spec))
        else:
            self.layout.append(spec)
        return shadow

    def dominance(self, x: Any, where: Any, key: Any, levels: int, k: int,
                  ratio: tuple[int, int], node: Call) -> Any:
        raise NotSplittable(f"the dominance rule{_where(node)} needs the rows themselves; the "
                            "job runs on one quorum")

    def noise(self, value: Any, scale: float, integer: bool) -> tuple[Any, float]:
        return self.world.noise(value, scale, integer)

    def noise_unit(self, value: Any, integer: bool) -> float:
        return self.world.noise_unit(value, integer)

    def open_bits(self, bits: list[Any]) -> list[np.ndarray]:
        return self.world.open_bits(bits)

    def release_value(self, name: str, value: Any, node: Reveal,
                      info: dict[str, Any] | None) -> None:
        if any(_is_row(v) for v in _flat([value])):
            raise NotSplittable(f"reveal of row values{_where(node)}")
        if name.startswith(CHECK_NAME):
            raise ScriptError(f"names starting {CHECK_NAME!r} are reserved", node.line,
                              node.col)
        self.world.release_value(name, value, node, info)

    def finish(self) -> dict[str, Revealed]:
        if self.mode == "reduce":
            assert self.mpc is not None
            if self.used != len(self.layout):
                raise ScriptError(f"the reducing quorum used {self.used} of "
                                  f"{len(self.layout)} partial aggregates", 0, 0)
            return self.mpc.finish()
        if self.mode == "map":
            assert self.mpc is not None
            self.mpc.flush()
        return {}

    # ------------------------------------------------------------ aggregates

    def _aggregate(self, name: str, args: list[Any], kwargs: dict[str, Any], node: Call) -> Any:
        a = bind(name, args, kwargs)
        spec = self._spec(name, a, node)
        if spec is None:  # count of a whole column: the public row count
            return self.total
        if self.mode == "reduce":
            return self._finish(spec, node)
        shadow = self.shadow.call(name, *_part([args, kwargs], "shadow"), node)
        if self.mode == "map":
            stats, meta = self._statistics(spec, a, node)
            self.partials.append(stats)
            self.layout.append(meta)
        else:
            self.layout.append(spec)
        return shadow

    def _spec(self, name: str, a: dict[str, Any], node: Call) -> dict[str, Any] | None:
        """What kind of statistics an aggregate needs (public: from the script and schema)."""
        first = a.get("x", a.get("key"))
        sel = (_is_row(first) and first.shadow.mask is not None) or a.get("where") is not None
        t = node.args[0].type
        kind = t.kind.name if isinstance(t, ValueType) else ""
        spec: dict[str, Any] = {"func": name, "counted": bool(sel)}
        if name == "count":
            if not sel and kind != "bool":
                return None
            spec["counted"] = True
        elif name == "histogram":
            if kind in ("category", "bool"):
                spec["levels"] = len(t.kind.levels) if kind == "category" else 2  # type: ignore
            else:
                if sel:
                    raise NotSplittable(f"histogram() of a filtered numeric column"
                                        f"{_where(node)}")
                bins = a.get("bins", 10)
                spec["levels"] = len(bins) - 1 if isinstance(bins, list | tuple) else int(bins)
                spec["numeric"] = True
        elif name in ("linreg", "ols"):
            xs = a.get("x")
            spec["d"] = len(xs) if isinstance(xs, list | tuple) else 1
            spec["intercept"] = bool(a.get("intercept", True))
            spec["ridge"] = float(a.get("ridge", 0.0))
        elif name == "group_by":
            if kind not in ("category", "bool"):
                raise NotSplittable(f"group_by() on a non-category key{_where(node)}")
            spec["levels"] = len(t.kind.levels) if kind == "category" else 2  # type: ignore
            spec["agg"] = str(a.get("agg", "count"))
            if spec["agg"] not in ("count", "sum", "mean"):
                raise NotSplittable(f"group_by(agg={spec['agg']!r}){_where(node)}")
            if spec["agg"] != "count" and not _is_row(a.get("values")):
                raise NotSplittable(f"group_by() of values that are not rows{_where(node)}")
        return spec

    def _statistics(self, spec: dict[str, Any], a: dict[str, Any], node: Call
                    ) -> tuple[Secret, dict[str, Any]]:
        """The chunk's exact statistics for one aggregate, and its public layout."""
        m = self.mpc
        assert m is not None
        e, func = m.e, spec["func"]
        meta = dict(spec)

        def real(v: Any) -> Any:
            return v.real if _is_row(v) else v

        def weights(x: Fx) -> Fx | None:
            return m.selection(x, real(a.get("where")), node)

        if func == "count":
            x = m.fx(real(a["x"]))
            w = weights(x)
            t = node.args[0].type
            if isinstance(t, ValueType) and t.kind.name == "bool":
                w = x if w is None else m.mul(w, replace(x, mask=None), node)
            assert w is not None
            return w.secret.sum().reshape(1), meta
        if func in PER_CHUNK:
            x = m.plain_column(real(a["x"]), node, func)
            w = weights(x)
            largest = func == "max"
            if w is not None:  # unselected rows become the other end: they never win
                x = m.where(w, replace(x, mask=None), x.lo if largest else x.hi, node)
            f_out = max(FRAC, x.f)  # compared at x.f; the partials and the finish at f_out
            b = (order.max if largest else order.min)(e, x.secret, Range(x.lo, x.hi), f_out,
                                                      x.f)
            meta.update(_meta(x, 0, 0), f=f_out)
            return b.value.reshape(1), meta
        if func in ("cov", "corr"):
            x, y = m.plain_column(real(a["x"]), node, func), m.plain_column(real(a["y"]), node,
                                                                          func)
            if x.err or y.err:
                raise ScriptError(f"{func}() of computed columns is not compiled yet",
                                  node.line, node.col, "apply it to columns of the data")
            meta.update(ranges=[[x.lo, x.hi], [y.lo, y.hi]], stored=[x.stored, y.stored])
            both = table([m.up(x, FRAC).secret, m.up(y, FRAC).secret])
            return moments.scatter_sums(e, both, [Range(x.lo, x.hi), Range(y.lo, y.hi)],
                                        FRAC), meta
        if func in ("linreg", "ols"):
            xs = a["x"] if isinstance(a["x"], list | tuple) else [a["x"]]
            cols, secrets = m.model_columns([real(c) for c in xs], node, FRAC)
            (y,), (ys,) = m.model_columns(real(a["y"]), node, FRAC)
            if y.err or any(c.err for c in cols):
                raise ScriptError(f"{func}() of computed columns with rounding is not compiled "
                                  "yet", node.line, node.col, "regress columns of the data")
            meta.update(ranges=[[c.lo, c.hi] for c in cols], y=[y.lo, y.hi],
                        stored=[c.stored for c in [*cols, y]])
            stats = regression.regression_sums(e, table(secrets), ys,
                                               [Range(c.lo, c.hi) for c in cols],
                                               Range(y.lo, y.hi), FRAC)
            return stats, meta
        if func == "histogram" and spec.get("numeric"):
            x = m.plain_column(real(a["x"]), node, "histogram")
            bins = a.get("bins", 10)
            rng = a.get("range", (x.lo, x.hi))
            edges = list(bins) if isinstance(bins, list | tuple) else \
                list(np.linspace(float(rng[0]), float(rng[1]), int(bins) + 1))
            b = categorical.histogram_bins(e, x.secret, Range(x.lo, x.hi), edges, x.f)
            return b.value, meta  # integer counts: they add over chunks
        if func in ("histogram", "group_by"):
            key = m.fx(real(a["x"] if func == "histogram" else a["key"]))
            levels = spec["levels"]
            if func == "group_by":  # the rows a filtered key and filtered values keep
                hot = m.library.group_rows(key, real(a.get("values")), levels, node)
                counts = hot.sum(axis=0)
            else:
                hot = m.one_hot(key, levels)
                n = hot.shape[0]
                w = weights(key)
                counts = hot.sum(axis=0) if w is None else \
                    e.dot(w.secret.reshape(n, 1).broadcast_to(n, levels), hot, axis=0)
            if func == "histogram" or spec["agg"] == "count":
                return counts, meta
            n = hot.shape[0]
            x = replace(m.fx(real(a["values"])), mask=None)
            self._check_scale(x, node, func)
            mid, width = Range(x.lo, x.hi).center(x.f)
            xc = x.secret - mid
            wide = xc.reshape(n, 1).broadcast_to(n, levels)
            sums = e.dot(hot, wide, axis=0)
            meta.update(_meta(x, mid, width))
            return concat([counts, sums]), meta
        x = m.fx(real(a["x"]))
        w = weights(x)
        if func == "sum":
            if w is not None:
                x = m.mul(w, replace(x, mask=None), node)
            meta.update(_meta(x, 0, 0))
            return x.secret.sum().reshape(1), meta
        self._check_scale(x, node, func)
        if func != "mean" and x.err:
            raise ScriptError(f"{func}() of a computed column with rounding is not compiled "
                              "yet", node.line, node.col, "apply it to a column of the data")
        mid, width = Range(x.lo, x.hi).center(x.f)
        xc = x.secret - mid
        meta.update(_meta(x, mid, width))
        parts = []
        if w is not None:
            parts.append(w.secret.sum().reshape(1))
            wx = e.mul(w.secret, xc) if func != "mean" else None
            parts.append((e.dot(w.secret, xc) if wx is None else wx.sum()).reshape(1))
            if wx is not None:
                parts.append(e.dot(wx, xc).reshape(1))
        else:
            parts.append(xc.sum().reshape(1))
            if func != "mean":
                parts.append(e.dot(xc, xc).reshape(1))
        return concat(parts), meta

    @staticmethod
    def _check_scale(x: Fx, node: Call, func: str) -> None:
        if x.f > FRAC:
            raise ScriptError(f"{func}() of values with {x.f} fractional bits is not split",
                              node.line, node.col, f"at most {FRAC} bits")

    def _kmeans(self, args: list[Any], kwargs: dict[str, Any], node: Call) -> Any:
        """Lloyd's iterations across quorums (`models.kmeans`, split between them).

        Per iteration i: every chunk quorum computes the exact counts and sums of its rows
        nearest the current centroids (`KMeansRows.sums`) and hands them over (closing a
        batch); the reducing quorum sums them over chunks, updates the centroids
        (`kmeans_update`) and, but for the last iteration, re-shares them to every chunk
        quorum with k-MACs. The first centroids are public (`kmeans_start`); ties are broken in
        the map (`KMeansRows`), the exact rounding in the reduce (`kmeans_update`). The result
        lives in the aggregate world: the reducing quorum's centroids.
        """
        a = bind("kmeans", args, kwargs)
        xs = a["x"] if isinstance(a["x"], list | tuple) else [a["x"]]
        if not all(_is_row(x) for x in xs):
            raise NotSplittable(f"kmeans() of values that are not rows{_where(node)}")
        k, iters, d = int(a["k"]), int(a.get("iters", 10)), len(xs)
        start = kmeans_start(node, k, d, a.get("init"))
        spec = {"func": "kmeans", "counted": False, "k": k, "d": d}
        if self.mode == "reduce":
            return self._kmeans_reduce(spec, start, iters, node)
        shadow = self.shadow.call("kmeans", *_part([args, kwargs], "shadow"), node)
        if self.mode == "trace":
            self.layout.extend(dict(spec, iteration=i) for i in range(iters))
            return shadow
        m = self.mpc
        assert m is not None and self.exchange is not None
        cols, secrets = m.model_columns([x.real for x in xs], node, FRAC)
        ranges = [[c.lo, c.hi] for c in cols]
        try:
            rows = models.KMeansRows(m.e, table(secrets), [Range(lo, hi) for lo, hi in ranges],
                                     k, FRAC, start, str(a.get("ties", "first")))
        except (PrecisionError, ValueError) as exc:
            raise ScriptError(f"kmeans(): {exc}", node.line, node.col) from exc
        c: Secret | np.ndarray = models.centre(start, rows.mids, FRAC)
        for i in range(iters):
            counts, sums = rows.sums(c)
            self.partials.append(concat([counts, sums.reshape(k * d)]))
            self.layout.append(dict(spec, iteration=i, ranges=ranges,
                                    err=max(col.err + col.stored for col in cols)))
            self._handover()
            if i < iters - 1:
                c = self.exchange.receive((k, d))
        return shadow

    def _handover(self) -> None:
        """Map: send the statistics gathered since the last hand-over as one batch."""
        assert self.mpc is not None and self.exchange is not None
        self.mpc.flush()
        self.exchange.handover(self.partials, self.layout)
        self.partials, self.layout = [], []
        self.batches += 1

    def _kmeans_reduce(self, spec: dict[str, Any], start: np.ndarray, iters: int,
                       node: Call) -> Fx:
        m = self.mpc
        assert m is not None
        k, d, e, n = spec["k"], spec["d"], m.e, self.total
        c: Secret | np.ndarray | None = None
        err, meta = 0.0, spec
        for i in range(iters):
            meta, s = self._next(dict(spec, iteration=i), node)
            if self.used != len(self.layout):
                raise ScriptError("a k-means iteration's statistics must close their batch",
                                  node.line, node.col)
            ranges = [Range(lo, hi) for lo, hi in meta["ranges"]]
            try:
                mids, width = models.kmeans_frame(ranges, FRAC)
                if c is None:
                    c = models.centre(start, mids, FRAC)
                c, err = models.kmeans_update(e, s[:k], s[k:].reshape(k, d), c, width, n, FRAC)
            except (PrecisionError, ValueError) as exc:
                raise ScriptError(f"kmeans(): {exc}", node.line, node.col) from exc
            if i < iters - 1:
                if self.exchange is None:
                    raise ScriptError("kmeans() needs an exchange with the chunk quorums",
                                      node.line, node.col)
                self.exchange.reshare(c)
        assert isinstance(c, Secret)
        out = c + np.ascontiguousarray(np.broadcast_to(e.field.from_ints(mids), (k, d, 2)))
        lo = min(lo for lo, _ in meta["ranges"])
        hi = max(hi for _, hi in meta["ranges"])
        return Fx(m, [out], FRAC, lo, hi, err + float(meta["err"]), False, (k, d))

    def _next(self, spec: dict[str, Any], node: Call) -> tuple[dict[str, Any], Secret]:
        """Reduce: the next aggregate's layout entry and statistics, taking the next batch
        from the exchange when this one is used up; it must be the aggregate the script
        reaches here (the same interpreter walks the same script on every quorum)."""
        if self.used >= len(self.layout) and self.exchange is not None:
            self.stats, self.layout = self.exchange.next_batch()
            self.used = 0
            self.batches += 1
        if self.used >= len(self.layout):
            raise ScriptError("the script reached more aggregates than the chunk quorums sent",
                              node.line, node.col)
        meta, s = self.layout[self.used], self.stats[self.used]
        self.used += 1
        if meta["func"] != spec["func"] or meta["counted"] != spec["counted"] or \
                meta.get("iteration") != spec.get("iteration"):
            raise ScriptError(f"partial aggregate {self.used} is a {meta['func']}, the script "
                              f"reaches {spec['func']}() here", node.line, node.col)
        return meta, s

    def _finish(self, spec: dict[str, Any], node: Call) -> Fx:
        """The reducing quorum's aggregate from the summed statistics (`stats[used]`)."""
        m = self.mpc
        assert m is not None
        meta, s = self._next(spec, node)
        e, n, func = m.e, self.total, spec["func"]
        try:
            return self._finish_one(m, e, n, func, meta, s, node)
        except (PrecisionError, ValueError) as exc:
            raise ScriptError(f"{func}(): {exc}", node.line, node.col) from exc

    def _finish_one(self, m: MpcBackend, e: Any, n: int, func: str, meta: dict[str, Any],
                    s: Secret, node: Call) -> Fx:
        if func == "count":
            return Fx(m, [s.reshape()], 0, 0.0, float(n), 0.0, True, ())
        if func in PER_CHUNK:
            chunks = s.reshape(s.shape[0])  # (chunk jobs,) extremes, meta["f"] bits
            lo, hi, f = float(meta["lo"]), float(meta["hi"]), int(meta["f"])
            pick = order.max if func == "max" else order.min
            b = pick(e, chunks, Range(lo, hi), f)
            return Fx(m, [b.value], f, lo, hi, float(meta["err"]) + float(meta["stored"]),
                      False, ())
        if func in ("cov", "corr"):
            ranges = [Range(lo, hi) for lo, hi in meta["ranges"]]
            b = (moments.cov_from_sums(e, s, n, ranges, ddof=1, f=FRAC) if func == "cov"
                 else moments.corr_from_sums(e, s, n, ranges, f=FRAC))
            err = b.error[0, 1] if np.ndim(b.error) else b.error
            shift = pair_shift(func == "cov", meta["ranges"], meta["stored"], n)
            return Fx(m, [b.value[0, 1]], b.f, b.range.lo, b.range.hi, float(err) + shift,
                      False, ())
        if func in ("linreg", "ols"):
            fit = regression.linear_regression_from_sums(
                e, s, n, [Range(lo, hi) for lo, hi in meta["ranges"]], Range(*meta["y"]),
                intercept=bool(meta.get("intercept", True)), ridge=float(meta.get("ridge", 0.0)),
                f=FRAC, storage=[float(d) for d in meta["stored"]])
            return regression_fx(m, fit, func)
        if func == "histogram" and meta.get("numeric"):
            return Fx(m, [s], 0, 0.0, float(n), 0.0, True, (int(meta["levels"]),))
        if func in ("histogram", "group_by"):
            levels = int(meta["levels"])
            counts = s[:levels]
            if func == "histogram" or meta["agg"] == "count":
                return Fx(m, [counts], 0, 0.0, float(n), 0.0, True, (levels,))
            f, mid, width, lo, hi = (meta[k] for k in ("f", "mid", "width", "lo", "hi"))
            sums_c = s[levels:]
            if meta["agg"] == "sum":
                m.require(n * max(abs(lo), abs(hi)) * 2.0**f, VALUE_LIMIT, node, "a group's sum")
                return Fx(m, [sums_c + counts * mid], f, n * min(lo, 0.0), n * max(hi, 0.0),
                          n * meta["err"] + storage.sum_shift(n, meta["stored"]),
                          meta["integer"], (levels,))
            up = 1 << (FRAC - f)
            q, err = divide_by_count(e, sums_c * up, counts, width * up, n, "group_by")
            return Fx(m, [q + mid * up], FRAC, min(lo, 0.0), max(hi, 0.0),
                      err * 2.0**-FRAC + meta["err"] + meta["stored"], False, (levels,))
        f, lo, hi = meta["f"], meta["lo"], meta["hi"]
        if func == "sum":
            lo2, hi2 = n * min(lo, 0.0), n * max(hi, 0.0)
            m.require(max(-lo2, hi2) * 2.0**f, VALUE_LIMIT, node, "this sum")
            return Fx(m, [s.reshape()], f, lo2, hi2,
                      n * meta["err"] + storage.sum_shift(n, meta["stored"]), meta["integer"], ())
        mid, width, up = meta["mid"], meta["width"], 1 << (FRAC - f)
        if meta["counted"]:
            c, s1 = s[0:1], s[1:2] * up
            q1, e1 = divide_by_count(e, s1, c, width * up, n, func)
            if func == "mean":
                return Fx(m, [q1.reshape() + mid * up], FRAC, min(lo, 0.0), max(hi, 0.0),
                          e1 * 2.0**-FRAC + meta["err"] + meta["stored"], False, ())
            s2 = s[2:3] * (up * up)
            wf = width * up
            q2, e2 = divide_by_count(e, s2, c, wf * wf, n, func)
            m.require(float(wf) ** 2 * 2, 1 << 85, node, "a squared mean")
            (var,) = trunc_many(e, [q2 - e.mul(q1, q1)], [FRAC])
            err = (e2 + 2 * wf * e1 + e1 * e1) * 2.0 ** (-2 * FRAC) + 2.0**-FRAC
        else:
            s1 = s[0:1]
            if func == "mean":
                q, err = scale_public(e, s1, n * width, up, n, 0, "mean", "the column sum")
                return Fx(m, [q.reshape() + mid * up], FRAC, lo, hi,
                          float(np.max(err)) * 2.0**-FRAC + meta["err"] + meta["stored"], False,
                          ())
            scatter = s[1:2] * n - e.mul(s1, s1)  # n S2 - S1^2, exact
            var, err_u = scale_public(e, scatter, n * n * width * width, 1 << FRAC, n * n,
                                      2 * f, func, "the scatter n sum x^2 - (sum x)^2")
            err = float(np.max(err_u)) * 2.0**-FRAC
        top = (width * 2.0**-f) ** 2
        var = var.reshape()
        if func == "variance":  # ddof 0 (a ddof runs on one quorum)
            return Fx(m, [var], FRAC, 0.0, top,
                      err + storage.variance_shift(hi - lo, meta["stored"]), False, ())
        bits = max(int(top * 2**FRAC).bit_length() + 1, 2)
        root = functions.sqrt(e, var, FRAC, bits=bits)
        hi_root = float(np.sqrt(top))
        return Fx(m, [root], FRAC, 0.0, hi_root,
                  2 * 2.0**-FRAC + hi_root * 2.0**-36 + float(np.sqrt(err))
                  + storage.std_shift(meta["stored"]), False, ())


def _meta(x: Fx, mid: int, width: int) -> dict[str, Any]:
    return {"f": int(x.f), "lo": float(x.lo), "hi": float(x.hi), "err": float(x.err),
            "stored": float(x.stored),
            "integer": bool(x.integer), "mid": int(mid), "width": int(width)}


def _part(value: Any, which: str) -> Any:
    """The same structure with every Row replaced by its shadow or its shares."""
    if isinstance(value, Row):
        return getattr(value, which)
    if isinstance(value, list):
        return [_part(v, which) for v in value]
    if isinstance(value, tuple):
        return tuple(_part(v, which) for v in value)
    if isinstance(value, dict):
        return {k: _part(v, which) for k, v in value.items()}
    return value


def plan(script: Script, schema: Schema, rows: int, release: Release | None = None
         ) -> list[dict[str, Any]]:
    """The aggregates a split run computes, in order; raises NotSplittable (with the reason).

    Runs the script once on the shadow (8 synthetic rows, no engine): cheap, and it
    takes exactly the path the chunk and reducing quorums will take.

    Under a release policy the trace runs under `disclosure.Tracked` as the quorums will:
    the row counts the n_min rule needs (a filter's, a group's) are more aggregates of the
    layout, and the mean's sums under DP too. A dominance rule does not split (it needs the
    rows themselves, which no reducing quorum holds): NotSplittable, one quorum.
    """
    backend = SplitBackend("trace", schema, script, rows)
    run(script, track(backend, release))
    if not backend.layout:
        raise NotSplittable("the script aggregates no rows")
    return backend.layout


def statistics_size(layout: list[dict[str, Any]]) -> list[int]:
    """Field elements of each aggregate's statistics (the same formula on every party)."""
    sizes = []
    for meta in layout:
        func = meta["func"]
        if func == "count":
            sizes.append(1)
        elif func in ("cov", "corr"):
            sizes.append(5)
        elif func in PER_CHUNK:
            sizes.append(1)
        elif func in ("linreg", "ols"):
            d = int(meta["d"]) + 1
            sizes.append(d + d * (d + 1) // 2)
        elif func in ("histogram", "group_by"):
            levels = int(meta["levels"])
            sizes.append(levels if func == "histogram" or meta["agg"] == "count" else 2 * levels)
        elif func == "sum":
            sizes.append(1)
        elif func == "kmeans":
            k, d = int(meta["k"]), int(meta["d"])
            sizes.append(k + k * d)
        elif func == "mean":
            sizes.append(1 + int(meta["counted"]))
        else:
            sizes.append(2 + int(meta["counted"]))
    return sizes


__all__ = ["CHECK_NAME", "ITERATIVE", "PER_CHUNK", "Exchange", "HandoverError",
           "NotSplittable", "Plain", "Row", "SplitBackend", "accept_handover",
           "batch_statistics", "handover_shares", "input_sum", "plan", "statistics_size"]
