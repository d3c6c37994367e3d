"""One evaluator of checked scripts, parameterised by where private values live.

The checker (`checker.check`) gives a typed AST; this module walks it once,
statement by statement, and hands every operation that touches a private
value to a `Backend`:

- `backends.PlainBackend` keeps private values as numpy float64 arrays: the
  dry run on synthetic data drawn from the schema, and the plaintext
  reference of the tests;
- `backends.MpcBackend` keeps them as secret shares on an `Engine`, with their
  fixed-point scale, public range and error bound.

Public values are plain Python and numpy values in both cases, and public
control flow (if, for, while, function calls) runs here, at run time, the
same way on every node: the nodes see the same public values, so they take
the same path. Columns stay whole vectors; an `if` on a private condition (a
`Select`) runs both branches and merges every assigned name with `where`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .budget import Budget, ScriptLimitError
from .errors import ScriptError
from .syntax import (
    PUBLIC,
    Assert,
    Assign,
    Axis,
    BinOp,
    BoolOp,
    Break,
    Call,
    ColumnRef,
    Compare,
    Const,
    Continue,
    DictExpr,
    Expr,
    For,
    FuncCall,
    If,
    IfExp,
    Index,
    ListComp,
    ListExpr,
    Node,
    Print,
    Range,
    Repeat,
    Return,
    Reveal,
    Rows,
    Script,
    Select,
    Slice,
    Stmt,
    Target,
    TupleExpr,
    UnaryOp,
    ValueType,
    Var,
    Where,
    While,
)


@dataclass
class Revealed:
    """One result for the owner: the value and a worst-case bound on its absolute error.

    `error` is measured against the exact computation on the data as the owner
    wrote it: the engine's own errors plus what storing each value on the
    fixed-point grid can move the result (`analytics.storage`). For the plain
    backend it is 0: float64 is the reference.
    """

    value: np.ndarray
    error: np.ndarray
    test: str | None = None
    """The library test that gave this value (`lang.pvalues`), read from the owner's script."""
    detail: dict[str, float] = field(default_factory=dict)
    """A test's labelled statistic, degrees of freedom, p-value and interval (the owner's)."""
    axes: tuple[Axis, ...] = ()
    """The names along each dimension, from the owner's own check of the script (lang/axes.py)."""
    suppressed: np.ndarray | None = None
    """Under a release policy: per cell, why it was withheld ("" where it was released); a
    withheld cell's value is NaN (it was never opened)."""
    noise: np.ndarray | None = None
    """Under differential privacy: the scale of the noise in each cell (in value units)."""
    noise_bound: np.ndarray | None = None
    """Under differential privacy: |noise| stays below this with probability 95%."""
    delta: float | None = None
    """Under differential privacy: what this value's noise adds to the job's δ (the joint
    draw's distance from the exact law; the job's δ is the sum over its values)."""

    def __post_init__(self) -> None:
        self.value = np.asarray(self.value, dtype=np.float64)
        self.error = np.broadcast_to(np.asarray(self.error, dtype=np.float64),
                                     self.value.shape).copy()


@dataclass
class Outcome:
    """What a run gives the owner: results by reveal name, and what the script printed."""

    results: dict[str, Revealed]
    printed: list[str] = field(default_factory=list)
    synthetic: bool = False
    """True for a dry run: the values come from made-up data and mean nothing."""
    stats: dict[str, int] = field(default_factory=dict)
    """Public cost counters of the run (rounds, bytes, triples, masks), when it had any."""
    steps: int = 0
    """Statements executed and loop iterations begun (`budget`)."""


class Backend(Protocol):
    """Where private values live and how operations on them run.

    Every method that receives operands is called only when at least one of
    them is private; `node` is the AST node, for the place in error messages.
    """

    def rows(self) -> int: ...

    def column(self, name: str, node: ColumnRef) -> Any: ...

    def is_private(self, value: Any) -> bool: ...

    def binop(self, op: str, a: Any, b: Any, node: Expr) -> Any: ...

    def negate(self, a: Any, node: Expr) -> Any: ...

    def compare(self, op: str, a: Any, b: Any, node: Expr) -> Any: ...

    def logic(self, op: str, values: list[Any], node: Expr) -> Any: ...

    def where(self, cond: Any, a: Any, b: Any, node: Node) -> Any: ...

    def call(self, name: str, args: list[Any], kwargs: dict[str, Any], node: Call) -> Any: ...

    def take(self, value: Any, index: int | slice, node: Expr) -> Any: ...

    def stack(self, items: list[Any], node: Node) -> Any: ...

    def set_item(self, value: Any, index: int, item: Any, node: Node) -> Any: ...

    def reveal(self, name: str, value: Any, node: Reveal) -> None: ...

    def finish(self) -> dict[str, Revealed]: ...


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


MAX_WHILE_STEPS = 1_000_000
"""A public while loop that runs longer than this is stopped: it would never finish a job."""


def run(script: Script, backend: Backend, echo: Callable[[str], None] | None = None,
        budget: Budget | None = None) -> Outcome:
    """Run a checked script on `backend` within `budget` (the defaults when None); returns
    the revealed results, what was printed and the steps taken. ScriptLimitError past it."""
    interp = Interpreter(script, backend, echo, budget)
    interp.block(script.body, {})
    return Outcome(backend.finish(), interp.printed, steps=interp.budget.steps_taken)


class Interpreter:
    """Walks the typed AST; public values are computed here, private ones by the backend."""

    def __init__(self, script: Script, backend: Backend,
                 echo: Callable[[str], None] | None = None, budget: Budget | None = None
                 ) -> None:
        self.script = script
        self.b = backend
        self.echo = echo
        self.budget = Budget() if budget is None else budget
        self.printed: list[str] = []
        self.columns: dict[str, Any] = {}

    def err(self, node: Node, message: str, why: str = "") -> ScriptError:
        return ScriptError(message, node.line, node.col, why, self.script.filename)

    def step(self, node: Node) -> None:
        """Count a step against the budget; ScriptLimitError at the first limit crossed."""
        limit = self.budget.check_step()
        if limit is not None:
            message, why = self.budget.message(limit)
            raise ScriptLimitError(limit, message, node.line, node.col, why,
                                   self.script.filename)

    def sized(self, node: Node, n: int) -> int:
        """`n` elements for a public list or range, refused before allocating past the budget."""
        if not self.budget.check_elements(n):
            raise ScriptLimitError("elements", f"this would build a list of {n:,} elements, "
                                   f"over the budget of {self.budget.elements:,}",
                                   node.line, node.col, "public lists are for small things "
                                   "(bins, groups, coefficients); columns are vectors already",
                                   self.script.filename)
        return n

    # ------------------------------------------------------------ statements

    def block(self, stmts: tuple[Stmt, ...], env: dict[str, Any]) -> None:
        for s in stmts:
            self.stmt(s, env)

    def stmt(self, s: Stmt, env: dict[str, Any]) -> None:
        self.step(s)
        if isinstance(s, Assign):
            self.assign(s.target, self.expr(s.value, env), env)
        elif isinstance(s, If):
            self.block(s.body if self.truth(self.expr(s.cond, env), s) else s.orelse, env)
        elif isinstance(s, Select):
            self.select(s, env)
        elif isinstance(s, For):
            self.for_(s, env)
        elif isinstance(s, While):
            steps = 0
            while self.truth(self.expr(s.cond, env), s):
                self.step(s)
                steps += 1
                if steps > MAX_WHILE_STEPS:
                    raise self.err(s, f"this while loop ran {MAX_WHILE_STEPS} times",
                                   "loops must end; bound it with for ... in range(n)")
                try:
                    self.block(s.body, env)
                except _Break:
                    break
                except _Continue:
                    continue
        elif isinstance(s, Break):
            raise _Break()
        elif isinstance(s, Continue):
            raise _Continue()
        elif isinstance(s, Return):
            raise _Return(None if s.value is None else self.expr(s.value, env))
        elif isinstance(s, Reveal):
            self.b.reveal(s.name, self.expr(s.value, env), s)
        elif isinstance(s, Print):
            shown = [self.expr(a, env) for a in s.args]
            if any(self.b.is_private(x) for x in _leaves(shown)):
                raise self.err(s, "internal: print() of a private value reached the run")
            text = " ".join(_show(x) for x in shown)
            self.printed.append(text)
            if self.echo is not None:
                self.echo(text)
        elif isinstance(s, Assert):
            if not self.truth(self.expr(s.cond, env), s):
                shown = None if s.message is None else self.expr(s.message, env)
                if any(self.b.is_private(x) for x in _leaves([shown])):
                    raise self.err(s, "internal: an assert message with a private value "
                                      "reached the run")
                msg = "" if shown is None else f": {_show(shown)}"
                raise self.err(s, f"assertion failed{msg}")
        else:
            raise self.err(s, f"{type(s).__name__} statements cannot be run")

    def truth(self, value: Any, node: Node) -> bool:
        """A public condition's value (the checker guarantees it is public and scalar)."""
        if self.b.is_private(value):
            raise self.err(node, "internal: a private condition reached public control flow")
        return bool(np.asarray(value))

    def select(self, s: Select, env: dict[str, Any]) -> None:
        """Both branches run on copies of the environment; each output merges with where."""
        cond = self.expr(s.cond, env)
        then, other = dict(env), dict(env)
        self.block(s.body, then)
        self.block(s.orelse, other)
        for name, _ in s.outputs:
            env[name] = self.merge(cond, then[name], other[name], s)

    def merge(self, cond: Any, a: Any, b: Any, node: Node) -> Any:
        if isinstance(a, list | tuple):
            merged = [self.merge(cond, x, y, node) for x, y in zip(a, b, strict=True)]
            return merged if isinstance(a, list) else tuple(merged)
        if isinstance(a, dict):
            return {k: self.merge(cond, a[k], b[k], node) for k in a}
        if a is b:
            return a
        return self.b.where(cond, a, b, node)

    def for_(self, s: For, env: dict[str, Any]) -> None:
        for item in self.items(self.expr(s.iter, env), s):
            self.step(s)
            self.assign(s.target, item, env)
            try:
                self.block(s.body, env)
            except _Break:
                break
            except _Continue:
                continue

    def items(self, value: Any, node: Expr | Stmt) -> list[Any]:
        if isinstance(value, list | tuple):
            return list(value)
        if isinstance(value, dict):
            return list(value)
        if self.b.is_private(value):
            shape = _shape(self, value)
            return [self.b.take(value, i, node) for i in range(shape[0])]  # type: ignore[arg-type]
        return list(np.asarray(value))

    def assign(self, t: Target, value: Any, env: dict[str, Any]) -> None:
        if t.name is not None:
            env[t.name] = value
        elif t.items:
            parts = self.items(value, t)  # type: ignore[arg-type]
            for sub, part in zip(t.items, parts, strict=True):
                self.assign(sub, part, env)
        else:  # lists and dicts are values: a write makes a new one (another name for the
            # old one keeps it, as the checker types it; found by the non-interference test)
            container = env[t.container]  # type: ignore[index]
            key = self.expr(t.index, env)  # type: ignore[arg-type]
            if isinstance(container, list):
                container = list(container)
                if not -len(container) <= int(key) < len(container):
                    raise self.missing(t, container, key)
                container[int(key)] = value
                env[t.container] = container  # type: ignore[index]
            elif isinstance(container, dict):
                env[t.container] = {**container, key: value}  # type: ignore[index]
            elif self.b.is_private(container) or self.b.is_private(value):
                env[t.container] = self.b.set_item(container, int(key), value, t)  # type: ignore
            else:
                arr = np.array(container, dtype=np.float64)
                arr[int(key)] = value
                env[t.container] = arr  # type: ignore[index]

    # ------------------------------------------------------------ expressions

    def expr(self, e: Expr, env: dict[str, Any]) -> Any:
        if isinstance(e, Const):
            return e.value
        if isinstance(e, Var):
            return env[e.name]
        if isinstance(e, ColumnRef):
            name = self.expr(e.key, env)
            if name not in self.columns:
                self.columns[name] = self.b.column(name, e)
            return self.columns[name]
        if isinstance(e, Rows):
            return self.b.rows()
        if isinstance(e, BinOp):
            return self.binop(e, self.expr(e.left, env), self.expr(e.right, env))
        if isinstance(e, UnaryOp):
            v = self.expr(e.operand, env)
            if e.op == "not":
                return self.b.logic("not", [v], e) if self.b.is_private(v) else \
                    _public(np.logical_not(v))
            if e.op == "-":
                return self.b.negate(v, e) if self.b.is_private(v) else _public(np.negative(v))
            return v
        if isinstance(e, BoolOp):
            return self.boolop(e, env)
        if isinstance(e, Compare):
            a, b = self.expr(e.left, env), self.expr(e.right, env)
            a, b = self.levels(e.left, a, e.right, b)
            if self.b.is_private(a) or self.b.is_private(b):
                return self.b.compare(e.op, a, b, e)
            return _public(_COMPARE[e.op](np.asarray(a), np.asarray(b)))
        if isinstance(e, Where):
            c, a, b = (self.expr(x, env) for x in (e.cond, e.then, e.orelse))
            if any(self.b.is_private(x) for x in (c, a, b)):
                return self.b.where(c, a, b, e)
            return _public(np.where(c, a, b))
        if isinstance(e, IfExp):
            return self.expr(e.then if self.truth(self.expr(e.cond, env), e) else e.orelse, env)
        if isinstance(e, Call):
            return self.call(e, env)
        if isinstance(e, FuncCall):
            inner = {p.name: self.expr(a, env) for p, a in zip(e.func.params, e.args,
                                                               strict=True)}
            try:
                self.block(e.func.body, inner)
            except _Return as ret:
                return ret.value
            raise self.err(e, f"{e.func.name} ended without returning a value")
        if isinstance(e, Index):
            return self.index(e, self.expr(e.value, env), self.expr(e.index, env))
        if isinstance(e, Slice):
            value = self.expr(e.value, env)
            bounds = [None if p is None else int(self.expr(p, env))
                      for p in (e.lower, e.upper, e.step)]
            sl = slice(*bounds)
            if self.b.is_private(value):
                return self.b.take(value, sl, e)
            return value[sl]
        if isinstance(e, Range):
            r = range(int(self.expr(e.start, env)), int(self.expr(e.stop, env)),
                      int(self.expr(e.step, env)))
            self.sized(e, len(r))
            return list(r)
        if isinstance(e, ListExpr):
            return [self.expr(i, env) for i in e.items]
        if isinstance(e, Repeat):
            items = [self.expr(i, env) for i in e.items]
            times = max(int(self.expr(e.times, env)), 0)
            self.sized(e, len(items) * times)
            return items * times
        if isinstance(e, TupleExpr):
            return tuple(self.expr(i, env) for i in e.items)
        if isinstance(e, DictExpr):
            return {k: self.expr(v, env) for k, v in zip(e.keys, e.values, strict=True)}
        if isinstance(e, ListComp):
            out = []
            inner = dict(env)
            for item in self.items(self.expr(e.iter, env), e):
                self.step(e)
                self.assign(e.target, item, inner)
                out.append(self.expr(e.element, inner))
            return out
        raise self.err(e, f"{type(e).__name__} expressions cannot be run")

    def levels(self, ea: Expr, a: Any, eb: Expr, b: Any) -> tuple[Any, Any]:
        """Category texts as level codes: data.sex == "male" compares codes."""
        for e, other in ((ea, eb), (eb, ea)):
            t = e.type
            if isinstance(t, ValueType) and t.kind.name == "category":
                ot = other.type
                if isinstance(ot, ValueType) and ot.kind.name == "str":
                    code = t.kind.levels.index(b if other is eb else a)
                    return (a, code) if other is eb else (code, b)
        return a, b

    def binop(self, e: BinOp, a: Any, b: Any) -> Any:
        if isinstance(a, list | tuple | str):
            return a + b
        if self.b.is_private(a) or self.b.is_private(b):
            return self.b.binop(e.op, a, b, e)
        if e.op in ("/", "//", "%") and np.any(np.asarray(b) == 0):
            raise self.err(e, "division by zero (a public value)")
        x, y = np.asarray(a), np.asarray(b)
        if e.op == "/":
            return _public(x / y)
        if e.op == "**":
            return _public(np.power(x.astype(np.float64) if np.any(y < 0) else x, y))
        return _public(_ARITH[e.op](x, y))

    def boolop(self, e: BoolOp, env: dict[str, Any]) -> Any:
        t = e.type
        if isinstance(t, ValueType) and t.label is PUBLIC and t.scalar:
            # public scalars: Python's short circuit
            result = e.op == "and"
            for v in e.values:
                result = bool(self.expr(v, env))
                if result != (e.op == "and"):
                    return result
            return result
        values = [self.expr(v, env) for v in e.values]
        if any(self.b.is_private(v) for v in values):
            return self.b.logic(e.op, values, e)
        fn = np.logical_and if e.op == "and" else np.logical_or
        out = np.asarray(values[0])
        for v in values[1:]:
            out = fn(out, v)
        return _public(out)

    def index(self, e: Index, value: Any, key: Any) -> Any:
        try:
            if isinstance(value, dict):
                return value[key]
            if isinstance(value, list | tuple):
                return value[int(key)]
            if self.b.is_private(value):
                return self.b.take(value, int(key), e)
            return _public(np.asarray(value)[int(key)])
        except (IndexError, KeyError):
            raise self.missing(e, value, key) from None

    def missing(self, node: Node, value: Any, key: Any) -> ScriptError:
        """An index past the end or a dict key set on another path only: one line, no
        traceback (lengths and keys are public, so the message shows nothing private)."""
        if isinstance(value, dict):
            return self.err(node, f"no key {key!r} in this dict (it has {list(value)})",
                            "the key was set on another path of an if or a loop; give the "
                            "dict every key before")
        size = len(value) if isinstance(value, list | tuple) else _shape(self, value)[0]
        return self.err(node, f"index {key} is outside this value of length {size}",
                        "indices run from 0 to the length - 1 (or -length to -1)")

    def call(self, e: Call, env: dict[str, Any]) -> Any:
        args = [self.expr(a, env) for a in e.args]
        kwargs = {k: self.expr(v, env) for k, v in e.kwargs}
        if e.func == "len":
            x = args[0]
            if isinstance(x, list | tuple | dict):
                return len(x)
            return _shape(self, x)[0]
        return self.b.call(e.func, args, kwargs, e)


def _shape(interp: Interpreter, value: Any) -> tuple[int, ...]:
    shape = getattr(value, "shape", None)
    if shape is None:
        return np.shape(value)
    return tuple(shape)


def _leaves(values: Any) -> list[Any]:
    """The values inside lists, tuples and dicts (what a print shows)."""
    if isinstance(values, list | tuple):
        return [leaf for v in values for leaf in _leaves(v)]
    if isinstance(values, dict):
        return _leaves(list(values.values()))
    return [values]


def _public(x: Any) -> Any:
    """numpy scalars back to Python numbers: public scalars print and compare as Python's."""
    arr = np.asarray(x)
    if arr.shape == ():
        return arr.item()
    return arr


def _show(v: Any) -> str:
    if isinstance(v, float) and math.isfinite(v):
        return f"{v:g}"
    return str(v)


_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply, "//": np.floor_divide, "%": np.mod}
_COMPARE = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
            ">": np.greater, ">=": np.greater_equal}
