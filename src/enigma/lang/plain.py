"""The plaintext backend: private values as numpy float64, for the dry run and as a reference.

A dry run must exercise the same interpreter paths as a real run, so private
values are wrapped (`Plain`) and never reach Python control flow: a script
that would branch on a private value fails here exactly as it would on the
engine. The library functions below are also what the MPC backend uses for
library calls whose arguments are all public.

Synthetic data (`synthetic_table`) is drawn uniformly from the schema's
ranges and levels with a fixed seed: the dry run shows that a script runs,
what it reveals and what it costs, never anything about real data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .analytics.logistic import DEFAULT_ITERATIONS, newton_plain
from .analytics.precision import DEFAULT_SPREAD, Range
from .analytics.regression import DEFAULT_MIN_EIG
from .axes import column_types
from .budget import Budget
from .disclosure import track
from .errors import ScriptError
from .interpreter import Outcome, Revealed, run
from .library import bind
from .pvalues import finish_outcome
from .release import Release
from .schema import Column, Schema
from .syntax import (
    Call,
    ColumnRef,
    Expr,
    Node,
    Reveal,
    Script,
    ValueType,
    nodes_of,
)


@dataclass
class Plain:
    """A private value in the clear: `v` (numpy), and the row mask of a filtered column."""

    v: np.ndarray
    mask: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.v.shape


def column_range(col: Column) -> tuple[float, float]:
    """The public range of a column's values (categories as level codes)."""
    if col.kind == "bool":
        return 0.0, 1.0
    if col.kind == "category":
        return 0.0, float(len(col.levels) - 1)
    if col.lo is None or col.hi is None:
        raise ValueError(f"column {col.name!r} has no min/max in the schema; computing on it "
                         "needs a public range: add min and max to the schema")
    return float(col.lo), float(col.hi)


def synthetic_table(schema: Schema, rows: int, names: list[str], seed: int = 0
                    ) -> dict[str, np.ndarray]:
    """Made-up values for `names`, uniform within the schema, as `Schema.read_csv` gives them.

    Integers and fixed-point values are uniform in [min, max] (fixed point on
    its grid), booleans fair coins, categories uniform over their levels.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name in names:
        col = schema.column(name)
        lo, hi = column_range(col)
        if col.kind == "fixed":
            step = 2.0 ** -col.frac_bits
            out[name] = np.clip(np.rint(rng.uniform(lo, hi, rows) / step) * step, lo, hi)
        elif col.kind == "bool":
            out[name] = rng.integers(0, 2, rows).astype(bool)
        elif col.kind == "category":
            out[name] = np.asarray(col.levels, dtype=object)[rng.integers(0, len(col.levels),
                                                                          rows)]
        else:
            out[name] = rng.integers(int(lo), int(hi) + 1, rows)
    return out


def table_values(schema: Schema, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Columns read by `Schema.read_csv` as float64 numbers (categories as level codes)."""
    out = {}
    for name, values in raw.items():
        col = schema.column(name)
        if col.kind == "category":
            out[name] = col.encoding.to_integers(values).astype(np.float64)
        elif col.kind == "fixed":
            out[name] = col.encoding.to_integers(values) / float(1 << col.frac_bits)
        else:
            out[name] = np.asarray(values, dtype=np.float64)
    return out


def referenced_columns(node: Any) -> list[str]:
    """Every column a script (or any AST node) may read, in first-use order."""
    found: list[str] = []
    for ref in nodes_of(node, ColumnRef):
        found.extend(n for n in ref.names if n not in found)
    return found


def dry_run(script: Script, schema: Schema, rows: int | None = None, seed: int = 0,
            echo: Callable[[str], None] | None = None, budget: Budget | None = None,
            release: Release | None = None, backend: Any = None) -> Outcome:
    """Run a checked script on synthetic data in the clear: does it run, what does it reveal.

    The result is labelled `synthetic`: its values come from made-up data.
    `rows` defaults to the schema's row count (1000 when the schema gives none). The run
    stops at `budget` (the defaults when None): a runaway script is refused here, before
    anything is posted or paid for. `backend` replaces the synthetic one under `release`
    (a review passes its own tracker over `synthetic_backend`, to read its verdicts).
    """
    if backend is None:
        backend = track(synthetic_backend(script, schema, rows, seed), release)
    outcome = run(script, backend, echo, budget)
    outcome.synthetic = True
    return finish_outcome(script, outcome, backend.n)


def synthetic_backend(script: Script, schema: Schema, rows: int | None = None,
                      seed: int = 0) -> PlainBackend:
    """A plain backend on synthetic data for `script` (what a dry run runs on)."""
    n = rows if rows is not None else (schema.rows or 1000)
    table = table_values(schema, synthetic_table(schema, n, referenced_columns(script), seed))
    return PlainBackend(schema, table, n, script.filename, synthetic=True, noise_seed=seed)


def run_plain(script: Script, schema: Schema, values: dict[str, np.ndarray],
              release: Release | None = None, noise_seed: int | None = None) -> Outcome:
    """Run a checked script on real values in the clear: the reference a secure run must match.
    Under `release`, the same rules as the MPC run (docs/disclosure.md); the noise is drawn
    here, from `noise_seed` (fresh entropy when None)."""
    names = referenced_columns(script)
    n = len(values[names[0]]) if names else (schema.rows or 0)
    table = table_values(schema, {k: values[k] for k in names})
    backend = PlainBackend(schema, table, n, script.filename, noise_seed=noise_seed)
    return finish_outcome(script, run(script, track(backend, release)), n)


class PlainBackend:
    """Private values in the clear (float64); see the module docstring."""

    def __init__(self, schema: Schema, table: dict[str, np.ndarray], rows: int,
                 filename: str = "<script>", synthetic: bool = False,
                 noise_seed: int | None = None) -> None:
        self.schema = schema
        self.rng = np.random.default_rng(noise_seed)
        """The noise of differential privacy: fresh entropy unless a test fixes the seed."""
        self.table = table
        self.n = rows
        self.filename = filename
        self.synthetic = synthetic
        self.revealed: dict[str, Revealed] = {}

    def err(self, node: Node, message: str, why: str = "") -> ScriptError:
        return ScriptError(message, node.line, node.col, why, self.filename)

    def rows(self) -> int:
        return self.n

    def column(self, name: str, node: ColumnRef) -> Any:
        values = np.asarray(self.table[name], dtype=np.float64)
        return Plain(values) if self.schema.column(name).private else values

    def is_private(self, value: Any) -> bool:
        return isinstance(value, Plain)

    def binop(self, op: str, a: Any, b: Any, node: Expr) -> Plain:
        x, y = _v(a), _v(b)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": _div,
                   "//": np.floor_divide, "%": np.mod, "**": np.power}[op](x, y)
        return Plain(np.asarray(out, dtype=np.float64), _mask(a, b))

    def negate(self, a: Any, node: Expr) -> Plain:
        return Plain(-_v(a), _mask(a))

    def compare(self, op: str, a: Any, b: Any, node: Expr) -> Plain:
        fn = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
              ">": np.greater, ">=": np.greater_equal}[op]
        return Plain(fn(_v(a), _v(b)).astype(np.float64), _mask(a, b))

    def logic(self, op: str, values: list[Any], node: Expr) -> Plain:
        if op == "not":
            return Plain(1.0 - _v(values[0]), _mask(values[0]))
        out = _v(values[0]) != 0
        for v in values[1:]:
            out = (out & (_v(v) != 0)) if op == "and" else (out | (_v(v) != 0))
        return Plain(out.astype(np.float64), _mask(*values))

    def where(self, cond: Any, a: Any, b: Any, node: Node) -> Plain:
        return Plain(np.where(_v(cond) != 0, _v(a), _v(b)).astype(np.float64),
                     _mask(cond, a, b))

    def take(self, value: Any, index: int | slice, node: Expr) -> Plain:
        return Plain(np.asarray(_v(value)[index], dtype=np.float64))

    def stack(self, items: list[Any], node: Node) -> Plain:
        return Plain(np.stack([np.asarray(_v(i), dtype=np.float64) for i in items]))

    def set_item(self, value: Any, index: int, item: Any, node: Node) -> Plain:
        arr = np.array(_v(value), dtype=np.float64)
        arr[index] = _v(item)
        return Plain(arr)

    def call(self, name: str, args: list[Any], kwargs: dict[str, Any], node: Call) -> Any:
        private = any(isinstance(a, Plain) for a in _flat(args + list(kwargs.values())))
        try:
            out = library(name, args, kwargs, node)
        except ValueError as exc:
            raise self.err(node, f"{name}(): {exc}") from exc
        if isinstance(out, Plain) or not private:
            return out
        return Plain(np.asarray(out, dtype=np.float64))

    def reveal(self, name: str, value: Any, node: Reveal) -> None:
        self.release_value(name, value, node, None)

    def release_value(self, name: str, value: Any, node: Reveal,
                      info: dict[str, Any] | None) -> None:
        """A revealed value, with the cells a release policy withholds as NaN (`info`, from
        `disclosure.Tracked`: kept cells, reasons, noise scale and bound)."""
        v = np.array(_v(self.stack(value, node) if isinstance(value, list | tuple) else value),
                     dtype=np.float64)
        t = node.value.type
        r = Revealed(v, 0.0, axes=t.axes if isinstance(t, ValueType) else ())
        if info is not None:
            r.value = np.where(info["kept"], v, np.nan)
            r.suppressed, r.noise, r.noise_bound = info["reasons"], info["scale"], info["bound"]
            r.delta = info["delta"] if info["scale"] is not None else None
        self.revealed[name] = r

    # ------------------------------------------------ primitives of disclosure control

    def selected(self, x: Any, where: Any, node: Call) -> Any:
        """How many rows an aggregate of x counts: private when a filter or where= chose."""
        _, w = _selection(x, where)
        if (isinstance(x, Plain) and x.mask is not None) or isinstance(where, Plain):
            return Plain(np.asarray(float(w.sum())))
        return float(w.sum())

    def dominance(self, x: Any, where: Any, key: Any, levels: int, k: int,
                  ratio: tuple[int, int], node: Call) -> Plain:
        """Per cell, 1 where the k largest contributions |x_r| hold at most p = a / b % of
        the cell's total Σ|x_r| (100 b top_k <= a total), else 0; the plain reference of
        `MpcBackend.dominance`. Cells: one (a sum or mean, rows chosen by its filter and
        where=), or the levels of `key` (a group_by, rows chosen by key's and x's filters)."""
        if key is None:
            v, w = _selection(x, where)
            member = w[:, None]
        else:
            v, w = _v(x), _selection(key, _mask(x))[1]
            codes = _v(key).astype(np.int64)
            member = (codes[:, None] == np.arange(levels)[None, :]) & w[:, None]
        table = member.T * np.abs(v)[None, :]  # (cells, n): a row's |value| in its cell
        top = -np.sort(-table, axis=1)[:, :k].sum(axis=1)
        a, b = ratio
        passed = (100 * b * top <= a * table.sum(axis=1)).astype(np.float64)
        return Plain(passed.reshape(()) if key is None else passed)

    def noise(self, value: Any, scale: float, integer: bool) -> tuple[Plain, float]:
        """Discrete Laplace noise of `scale` on the grid of 1 (integers) or 2^-16, the
        difference of two geometric draws (the plain reference of `mpc.noise`)."""
        unit = self.noise_unit(value, integer)
        p = -np.expm1(-unit / scale)
        shape = np.shape(_v(value))
        k = self.rng.geometric(p, shape) - self.rng.geometric(p, shape)
        return Plain(np.asarray(k * unit, dtype=np.float64)), unit

    def noise_unit(self, value: Any, integer: bool) -> float:
        """The grid of the noise `noise` draws for a value: 1 or 2^-16."""
        return 1.0 if integer else 2.0**-16

    def open_bits(self, bits: list[Any]) -> list[np.ndarray]:
        return [_v(b) != 0 for b in bits]

    def finish(self) -> dict[str, Revealed]:
        return self.revealed


def _div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x / y with x / 0 = 0, as the engine's division gives."""
    y = np.asarray(y, dtype=np.float64)
    safe = np.where(y == 0, 1.0, y)
    return np.where(y == 0, 0.0, np.asarray(x, dtype=np.float64) / safe)


def _v(x: Any) -> np.ndarray:
    if isinstance(x, Plain):
        return x.v
    if isinstance(x, list | tuple):
        return np.stack([np.asarray(_v(i), dtype=np.float64) for i in x])
    return np.asarray(x, dtype=np.float64)


def _mask(*xs: Any) -> np.ndarray | None:
    masks = [x.mask for x in xs if isinstance(x, Plain) and x.mask is not None]
    if not masks:
        return None
    out = masks[0]
    for m in masks[1:]:
        out = out & m
    return out


def _flat(xs: list[Any]) -> list[Any]:
    out: list[Any] = []
    for x in xs:
        if isinstance(x, list | tuple):
            out += _flat(list(x))
        else:
            out.append(x)
    return out


# ---------------------------------------------------------------- the library in numpy


def _selection(x: Any, where: Any) -> tuple[np.ndarray, np.ndarray]:
    """Values and the 0/1 weights of the rows they count with (filter and where=)."""
    v = _v(x)
    w = np.ones(v.shape[0] if v.ndim else 1, dtype=bool)
    if isinstance(x, Plain) and x.mask is not None:
        w &= x.mask
    if where is not None:
        w &= _v(where) != 0
    return v, w


def _empty(t: Any) -> float:
    """The mean or percentile of no values: the middle of the range, as the engine's
    library gives it."""
    if not isinstance(t, ValueType) or t.lo is None or t.hi is None:
        return 0.0
    mid, _ = Range(float(t.lo), float(t.hi)).center(16)
    return mid / 2.0**16


def kmeans_start(node: Call, k: int, d: int, init: Any = None) -> np.ndarray:
    """The first centroids: the script's `init` (k public points, which the checker has
    placed within the ranges), else spread on the diagonal of the columns' public ranges
    (data-independent), c_j = lo + (j + 1/2) / k (hi - lo) per column.

    Both backends start here, on the engine's fixed-point grid, so the engine and the
    plaintext reference run the same Lloyd iterations.
    """
    grid = 2.0**16
    if init is not None:
        return np.rint(np.asarray(init, dtype=np.float64).reshape(k, d) * grid) / grid
    arg = node.args[0] if node.args else dict(node.kwargs)["x"]
    bounds = column_ranges(arg, d, "kmeans needs public ranges of its columns to place the "
                                   "first centroids")
    lo = np.array([r.lo for r in bounds])
    hi = np.array([r.hi for r in bounds])
    steps = (np.arange(k) + 0.5) / k
    return np.rint((lo + steps[:, None] * (hi - lo)) * grid) / grid


def regression_scales(arg: Expr, d: int, intercept: bool) -> np.ndarray:
    """The public scale of each feature, as the engine's library standardises it: the
    half-width of the range's codes with an intercept, their largest magnitude without."""
    bounds = column_ranges(arg, d, "linreg needs public ranges of its columns to standardise "
                                   "them")
    return np.array([(r.center(16)[1] + (0 if intercept else abs(r.center(16)[0]))) / 2.0**16
                     for r in bounds])


def column_ranges(arg: Expr, d: int, need: str) -> list[Range]:
    """The public range of each of the d columns a model's argument names (a list of columns,
    a tuple, or one column); `need` says why, when one is unknown."""
    out = []
    for t in column_types(arg, d):
        if not isinstance(t, ValueType) or t.lo is None or t.hi is None:
            raise ValueError(f"{need}; use columns straight from the schema")
        out.append(Range(float(t.lo), float(t.hi)))
    return out


def least_squares(x: np.ndarray, y: np.ndarray, scales: np.ndarray, intercept: bool = True,
                  penalty: float = 0.0, min_eig: float = DEFAULT_MIN_EIG
                  ) -> dict[str, np.ndarray]:
    """The library's linear model in float64: coef ([intercept,] slopes), se, r2, adj_r2,
    and condition = (penalty + min_eig) trace of the inverse matrix (the engine's test of
    its eigenvalue floor, `regression._condition`).

    On standardised features z = x / scales: (Z'Z / n + penalty I) b~ = Z'y / n with Z, y
    centred when there is an intercept; b = b~ / scales. Standard errors as statsmodels'
    OLS (sigma^2 = RSS / (n - k) times the diagonal of (X'X)^-1, the penalised matrix when
    there is a penalty); R^2 centred with an intercept, uncentred without.
    """
    n, d = x.shape
    z = x / scales
    zc, yc = (z - z.mean(axis=0), y - y.mean()) if intercept else (z, y)
    inv = np.linalg.inv(zc.T @ zc / n + penalty * np.eye(d))
    bt = inv @ (zc.T @ yc / n)
    coef = bt / scales
    rss = float(np.sum((yc - zc @ bt) ** 2))
    dof = n - d - intercept
    r2 = 1 - rss / float(yc @ yc)
    s2 = rss / dof
    se = np.sqrt(s2 / n * np.diag(inv)) / scales
    if intercept:
        zbar = z.mean(axis=0)
        coef = np.concatenate([[y.mean() - coef @ x.mean(axis=0)], coef])
        se = np.concatenate([[np.sqrt(s2 / n * (1 + zbar @ inv @ zbar))], se])
    return {"coef": coef, "se": se, "r2": np.float64(r2),
            "adj_r2": np.float64(1 - (1 - r2) * (n - intercept) / dof),
            "condition": np.float64((penalty + min_eig) * np.trace(inv)),
            "rss": np.float64(rss)}


def lloyd(x: np.ndarray, start: np.ndarray, iters: int, ties: str = "first",
          f: int = 16) -> np.ndarray:
    """Lloyd's k-means from given centroids, on the fixed-point codes as the engine runs it
    (`analytics.models.kmeans`): exact integer squared distances, ties to the first (or
    last) centroid, each centroid the mean of its codes rounded half up to a code, an empty
    cluster keeping its centroid. Python integers where int64 could overflow."""
    codes = np.rint(np.asarray(x, dtype=np.float64) * 2.0**f)
    c = np.rint(np.asarray(start, dtype=np.float64) * 2.0**f)
    top = float(np.max(np.abs(codes), initial=0.0)) + float(np.max(np.abs(c), initial=0.0))
    wide = codes.shape[1] * top * top >= 2.0**62
    codes, c = (a.astype(object if wide else np.int64) for a in (codes, c))
    k = c.shape[0]
    for _ in range(iters):
        dist = ((codes[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)
        near = np.argmin(dist, axis=1) if ties == "first" else \
            k - 1 - np.argmin(dist[:, ::-1], axis=1)
        for j in range(k):  # public k
            members = codes[near == j]
            if len(members):
                c[j] = (2 * members.sum(axis=0) + len(members)) // (2 * len(members))
    return c.astype(np.float64) / 2.0**f


def _sample(x: Any) -> np.ndarray:
    v, w = _selection(x, None)
    return v[w]


def arg_type(node: Call, name: str) -> Any:
    """The checker's type of a library call's argument, given by position or by name."""
    return bind(node.func, list(node.args), dict(node.kwargs))[name].type


def levels_of(node: Call, name: str) -> int:
    """How many levels a category (or boolean) argument of a call has."""
    t = arg_type(node, name)
    return len(t.kind.levels) if t.kind.name == "category" else 2


def _arg_range(node: Call, name: str) -> Range:
    """The public range of a call's argument, as the checker typed it."""
    t = arg_type(node, name)
    return Range(float(t.lo), float(t.hi))


def _floor(width: float) -> float:
    """The variance floor of the engine's t-tests: (min_std)^2, min_std = width / 256."""
    return (width * DEFAULT_SPREAD) ** 2


def _ttest(a: dict, node: Call) -> list[float]:
    """[t, df, floored, diff, se] of scipy's ttest_ind(x, y, equal_var): Welch by default,
    Student if asked; each variance floored as the engine floors it (`floored` counts them);
    diff the difference of the means, se its standard error (t = diff / se)."""
    x, y = _sample(a["x"]), _sample(a["y"])
    nx, ny = x.size, y.size
    if min(nx, ny) < 2:  # a filtered sample's size is private: flagged, as the engine does
        return [0.0, 1.0, float((nx < 2) + (ny < 2)), 0.0, 0.0]
    rx, ry = _arg_range(node, "x"), _arg_range(node, "y")
    floor = _floor(max(rx.hi, ry.hi) - min(rx.lo, ry.lo))
    vx, vy = x.var(ddof=1), y.var(ddof=1)
    diff = float(x.mean() - y.mean())
    if bool(a.get("equal_var", False)):
        df = nx + ny - 2.0
        pooled = ((nx - 1) * vx + (ny - 1) * vy) / df
        low = 2.0 * (pooled < floor)
        se = float(np.sqrt(max(pooled, floor) * (1 / nx + 1 / ny)))
        return [diff / se, df, low, diff, se]
    low = float(vx < floor) + float(vy < floor)
    ux, uy = max(vx, floor) / nx, max(vy, floor) / ny
    dof = (ux + uy) ** 2 / (ux**2 / (nx - 1) + uy**2 / (ny - 1))
    se = float(np.sqrt(ux + uy))
    return [diff / se, float(dof), low, diff, se]


def _one_sample(d: np.ndarray, mu: float, width: float) -> list[float]:
    if d.size < 2:
        raise ValueError(f"needs at least 2 values, got {d.size}")
    v, floor = d.var(ddof=1), _floor(width)
    diff, se = float(d.mean() - mu), float(np.sqrt(max(v, floor) / d.size))
    return [diff / se, d.size - 1.0, float(v < floor), diff, se]


def _ttest_1samp(a: dict, node: Call) -> list[float]:
    return _one_sample(_v(a["x"]), float(a["popmean"]), _arg_range(node, "x").width)


def _ttest_rel(a: dict, node: Call) -> list[float]:
    width = _arg_range(node, "x").width + _arg_range(node, "y").width
    return _one_sample(_v(a["x"]) - _v(a["y"]), 0.0, width)


def _chi2(a: dict, node: Call) -> list[float]:
    """[statistic, df] of scipy's chi2_contingency(table, correction=False); a level no row
    has drops out of the table and of df, as it must for the statistic to be defined."""
    x, y = _v(a["x"]).astype(np.int64), _v(a["y"]).astype(np.int64)
    table = np.zeros((levels_of(node, "x"), levels_of(node, "y")))
    np.add.at(table, (x, y), 1.0)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    df = (table.shape[0] - 1) * (table.shape[1] - 1)
    return [float(np.sum((table - expected) ** 2 / expected)) if df else 0.0, float(df)]


def _chisquare(a: dict, node: Call) -> list[float]:
    """[statistic, df] of scipy's chisquare(counts, n p): goodness of fit to public p."""
    k = levels_of(node, "x")
    counts = np.bincount(_v(a["x"]).astype(np.int64), minlength=k).astype(np.float64)
    p = np.asarray(a.get("p", [1.0 / k] * k), dtype=np.float64)
    expected = counts.sum() * p
    return [float(np.sum((counts - expected) ** 2 / expected)), k - 1.0]


def _pearsonr(a: dict, node: Call) -> list[float]:
    """[r, n - 2, floored]: each spread floored at corr's min_std (1/256 of the range), as
    the engine's `corr` floors it; `floored` counts the spreads below the floor."""
    x, y = _v(a["x"]), _v(a["y"])
    if x.size < 3:
        raise ValueError(f"needs at least 3 pairs, got {x.size}")
    floors = [_arg_range(node, p).width * DEFAULT_SPREAD for p in ("x", "y")]
    sds = [x.std(), y.std()]
    cov = float(np.mean((x - x.mean()) * (y - y.mean())))
    r = cov / (max(sds[0], floors[0]) * max(sds[1], floors[1]))
    return [r, x.size - 2.0, float(sum(s < fl for s, fl in zip(sds, floors, strict=True)))]


def _proportion(a: dict, node: Call) -> list[float]:
    v, w = _selection(a["x"], a.get("where"))
    return [float((w & (v != 0)).sum()), float(w.sum())]


def _anova(a: dict, node: Call) -> list[float]:
    """[eta^2, k' - 1, n - k', floored] for the k' groups that occur: scipy's f_oneway is
    F = eta^2 / (1 - eta^2) (n - k') / (k' - 1). SST is floored as the engine floors it."""
    x, g = _v(a["x"]), _v(a["group"]).astype(np.int64)
    n = x.size
    counts = np.bincount(g, minlength=levels_of(node, "group")).astype(np.float64)
    sums = np.bincount(g, weights=x - x.mean(), minlength=counts.size)
    ssb = float(np.sum(sums[counts > 0] ** 2 / counts[counts > 0]))
    var, floor = x.var(), _floor(_arg_range(node, "x").width)
    k = int(np.count_nonzero(counts))
    return [ssb / (n * max(var, floor)), k - 1.0, float(n - k), float(var < floor)]


TEST_STATISTICS: dict[str, Callable[[dict, Call], list[float]]] = {
    "ttest": _ttest,
    "ttest_1samp": _ttest_1samp,
    "ttest_rel": _ttest_rel,
    "chi2": _chi2,
    "chisquare": _chisquare,
    "pearsonr": _pearsonr,
    "proportion": _proportion,
    "anova": _anova,
}
"""The revealed vector of each test (`lang.pvalues.TESTS`) in float64: the reference."""


def library(name: str, args: list[Any], kwargs: dict[str, Any], node: Call) -> Any:
    """The analytics library on plain values (numpy semantics, population variance)."""
    a = bind(name, args, kwargs)
    where = a.get("where")
    if name == "count":
        v, w = _selection(a["x"], where)
        x = a["x"]
        is_bool = isinstance(node.args[0].type, ValueType) and \
            node.args[0].type.kind.name == "bool"
        return float((w & (v != 0)).sum()) if is_bool else float(w.sum())
    if name in ("sum", "mean", "variance", "std", "median", "percentile"):
        v, w = _selection(a["x"], where)
        v = v[w] if v.ndim else v
        if name == "sum":
            return float(v.sum())
        if v.size == 0:  # a mean or percentile of no values: the middle of the range
            return _empty(node.args[0].type) if name in ("mean", "median", "percentile") \
                else 0.0
        if name == "mean":
            return float(v.mean())
        if name in ("variance", "std"):
            ddof = int(a.get("ddof", 0))
            if v.size <= ddof:  # the engine floors the count the same way
                return 0.0
            return float(v.var(ddof=ddof) if name == "variance" else v.std(ddof=ddof))
        if name == "median":
            return float(np.median(v))
        return float(np.percentile(v, float(a["q"])))
    if name in ("min", "max"):
        if len(args) >= 2:
            fn = np.minimum if name == "min" else np.maximum
            out = _v(args[0])
            for other in args[1:]:
                out = fn(out, _v(other))
            return out
        v, w = _selection(a["x"], where)
        v = v[w]
        if v.size:
            return float(v.min() if name == "min" else v.max())
        t = node.args[0].type  # no row: the other end of the range, as the engine gives
        return float((t.hi if name == "min" else t.lo) or 0.0)  # type: ignore[union-attr]
    if name == "histogram":
        v, w = _selection(a["x"], where)
        t = node.args[0].type
        if isinstance(t, ValueType) and t.kind.name in ("category", "bool"):
            levels = len(t.kind.levels) if t.kind.name == "category" else 2
            return np.bincount(v[w].astype(np.int64), minlength=levels).astype(np.float64)
        bins = a.get("bins", 10)
        rng = a.get("range")
        if rng is None and isinstance(bins, int):
            rng = (t.lo, t.hi)  # type: ignore[union-attr]
        edges = np.asarray(bins, dtype=np.float64) if isinstance(bins, list | tuple) else \
            np.linspace(float(rng[0]), float(rng[1]), int(bins) + 1)
        return np.histogram(v[w], bins=edges)[0].astype(np.float64)
    if name == "group_by":
        t = node.args[0].type
        levels = len(t.kind.levels) if t.kind.name == "category" else 2  # type: ignore
        agg = a.get("agg", "count")
        values = a.get("values")
        # the rows both a filtered key and filtered values keep (where(x, mask) filters)
        _, w = _selection(a["key"], _mask(values) if values is not None else None)
        key = _v(a["key"]).astype(np.int64)[w]
        counts = np.bincount(key, minlength=levels).astype(np.float64)
        if agg == "count":
            return counts
        sums = np.bincount(key, weights=_v(values)[w], minlength=levels)
        if agg == "sum":
            return sums
        return np.where(counts > 0, _div(sums, counts), _empty(node.args[1].type))
    if name == "where":
        v, m = _v(args[0]), _v(args[1]) != 0
        if isinstance(args[0], Plain) or isinstance(args[1], Plain):
            base = args[0].mask if isinstance(args[0], Plain) and args[0].mask is not None \
                else np.ones(v.shape, dtype=bool)
            return Plain(v, base & m)
        return v[m]
    if name in ("cov", "corr"):
        x, y = _v(a["x"]), _v(a["y"])
        if name == "cov":
            return float(np.cov(x, y)[0, 1])
        return float(np.corrcoef(x, y)[0, 1])
    if name in ("linreg", "ols"):
        xs = a["x"] if isinstance(a["x"], list | tuple) else [a["x"]]
        intercept = bool(a.get("intercept", True))
        fit = least_squares(np.column_stack([_v(c) for c in xs]), _v(a["y"]),
                            regression_scales(node.args[1] if len(node.args) > 1
                                              else dict(node.kwargs)["x"], len(xs), intercept),
                            intercept, float(a.get("ridge", 0.0)))
        if name == "linreg":
            return fit["coef"]
        spread = _arg_range(node, "y").width * DEFAULT_SPREAD
        floored = float(fit["rss"] / len(_v(a["y"])) < spread**2)  # as the engine floors R~
        return np.concatenate([fit["coef"], fit["se"],
                               [fit["r2"], fit["adj_r2"], fit["condition"], floored]])
    if name == "logit":
        xs = a["x"] if isinstance(a["x"], list | tuple) else [a["x"]]
        arg = node.args[1] if len(node.args) > 1 else dict(node.kwargs)["x"]
        return newton_plain(np.column_stack([_v(c) for c in xs]), _v(a["y"]),
                            column_ranges(arg, len(xs), "logit needs public ranges of its "
                                                        "columns to standardise them"),
                            bool(a.get("intercept", True)),
                            int(a.get("iterations", DEFAULT_ITERATIONS)))
    if name == "kmeans":
        xs = a["x"] if isinstance(a["x"], list | tuple) else [a["x"]]
        x = np.column_stack([_v(c) for c in xs])
        k, iters = int(a["k"]), int(a.get("iters", 10))
        return lloyd(x, kmeans_start(node, k, x.shape[1], a.get("init")), iters,
                     str(a.get("ties", "first")))
    if name in TEST_STATISTICS:
        return TEST_STATISTICS[name](a, node)
    if name == "clip":
        return np.clip(_v(a["x"]), float(a["lo"]), float(a["hi"]))
    if name in ("sqrt", "exp", "log", "abs"):
        with np.errstate(divide="ignore", invalid="ignore"):
            return {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "abs": np.abs}[name](
                _v(a["x"]))
    raise ValueError(f"{name} is not in the library")

