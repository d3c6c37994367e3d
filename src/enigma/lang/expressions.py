"""Typing of expressions: every node gets its label, kind, shape and value range.

`Expressions` is the half of the checker that types what computes a value;
the statement half (`checker._Checker`) derives from it and provides the
hooks expressions need from statements: `store` (a comprehension binds its
target) and `call_function` (script functions are checked at their calls).
"""

from __future__ import annotations

import ast
import difflib
import math
import operator
from dataclasses import dataclass, replace

from .errors import ScriptError
from .lattice import (
    Mismatch,
    broadcast_shapes,
    column_type,
    common_axes,
    const_value,
    interval,
    join,
    join_kind,
    possible_keys,
)
from .library import LIBRARY
from .schema import Schema
from .signatures import Library
from .syntax import (
    BOOL,
    INT,
    PRIVATE,
    PUBLIC,
    ROWS,
    BinOp,
    BoolOp,
    ColumnRef,
    Compare,
    Const,
    DictExpr,
    DictType,
    Expr,
    IfExp,
    Index,
    Kind,
    Label,
    ListComp,
    ListExpr,
    ListType,
    Range,
    Repeat,
    Rows,
    Slice,
    TupleExpr,
    TupleType,
    Type,
    UnaryOp,
    ValueType,
    Var,
    Where,
    fixed,
    label_of,
    refuse,
)

STATEMENTS = ("reveal", "print", "range")

BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
           ast.Mod: "%", ast.Pow: "**"}
_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}
CMPOPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


@dataclass(frozen=True)
class Binding:
    type: Type
    declared: Label | None
    line: int
    maybe: bool = False
    """Assigned on some paths only: reading it is refused."""


@dataclass
class Context:
    env: dict[str, Binding]
    pc: Label = PUBLIC
    loops: int = 0
    function: str | None = None
    declared_return: Label | None = None
    returns: list[Type] | None = None
    exits: list[dict[str, Binding]] | None = None
    """The environments at the break and continue statements of the innermost loop: each is
    a way to the loop's next pass or past its end, which the loop's types must cover."""

    def child(self, **changes) -> Context:
        return replace(self, env=dict(self.env), **changes)



class Expressions:
    """Types expressions against a schema; see the module docstring for the hooks it needs."""

    schema: Schema
    filename: str
    defs: dict[str, ast.FunctionDef]

    def err(self, node: ast.AST, message: str, why: str = "") -> ScriptError:
        return refuse(node, message, why, self.filename)

    def joined(self, node: ast.AST, a: Type, b: Type, broadcast: bool = False) -> Type:
        try:
            return join(a, b, broadcast)
        except Mismatch as exc:
            raise self.err(node, f"this holds {exc} on different paths",
                           "a name must keep one kind and shape; use two names") from exc

    def condition(self, node: ast.expr, ctx: Context) -> Expr:
        cond = self.expr(node, ctx)
        t = cond.type
        if not isinstance(t, ValueType) or t.kind.name not in ("bool", "int"):
            raise self.err(node, f"a condition must be a boolean, not {t}",
                           "compare values to get a boolean")
        if t.kind.name == "int" and t.label is PRIVATE:
            raise self.err(node, "a private condition must be a boolean",
                           "write the test out (x != 0): the engine selects with 0/1 values")
        return cond

    def iterable(self, node: ast.expr, ctx: Context) -> tuple[Expr, Type, bool]:
        """The iterated expression, the element type, and whether it surely runs once."""
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "range":
            r = self.range_(node, ctx)
            return r, r.type.element, bool(r.type.length)
        it = self.expr(node, ctx)
        t = it.type
        if isinstance(t, ListType):
            return it, t.element, bool(t.length)
        if isinstance(t, TupleType) and t.items:
            elem = t.items[0]
            for other in t.items[1:]:
                elem = self.joined(node, elem, other)
            return it, elem, True
        if isinstance(t, DictType) and t.entries:
            keys = [k for k, _ in t.entries]
            if all(isinstance(k, str) for k in keys):
                return it, ValueType(PUBLIC, Kind("str", levels=tuple(sorted(keys)))), True
            return it, ValueType(PUBLIC, INT, (), min(keys), max(keys)), True
        if isinstance(t, ValueType) and t.shape and t.shape[0] == ROWS:
            raise self.err(node, "a loop over the rows of a column is not allowed",
                           "it would run once per row; write the computation on whole columns "
                           "(data.age * 2, sum(x), where(cond, a, b))")
        if isinstance(t, ValueType) and t.shape:
            return it, replace(t, shape=t.shape[1:]), bool(t.shape[0])
        raise self.err(node, f"cannot loop over {t}",
                       "loop over range(n) with a public n, or over a list, tuple or dict")

    def range_(self, node: ast.Call, ctx: Context) -> Range:
        if node.keywords or not 1 <= len(node.args) <= 3:
            raise self.err(node, "range() takes 1 to 3 positional bounds")
        args = [self.expr(a, ctx) for a in node.args]
        for a, n in zip(args, node.args, strict=True):
            t = a.type
            if label_of(t) is PRIVATE:
                raise self.err(n, "range() bound is private",
                               "the number of iterations is visible to every node; a loop "
                               "bound must be public (a constant, len(data), a public variable)")
            if not (isinstance(t, ValueType) and t.scalar and t.kind.name in ("int", "bool")):
                raise self.err(n, f"range() bounds must be public integers, not {t}")
        one = Const(line=node.lineno, col=node.col_offset + 1, value=1,
                    type=ValueType(PUBLIC, INT, (), 1, 1))
        zero = replace(one, value=0, type=ValueType(PUBLIC, INT, (), 0, 0))
        start, stop, step = (zero, args[0], one) if len(args) == 1 else \
            (args[0], args[1], args[2] if len(args) == 3 else one)
        consts = [const_value(e) for e in (start, stop, step)]
        length = len(range(*consts)) if None not in consts and consts[2] != 0 else None
        st, sp = start.type, stop.type
        lo = hi = None
        if const_value(step) is not None and const_value(step) > 0 and None not in (st.lo, sp.hi):
            lo, hi = st.lo, sp.hi - 1
        elem = ValueType(PUBLIC, INT, (), lo, hi)
        return Range(line=node.lineno, col=node.col_offset + 1, start=start, stop=stop,
                     step=step, type=ListType(elem, length))

    def lookup(self, node: ast.Name, ctx: Context) -> Binding:
        b = ctx.env.get(node.id)
        if b is None:
            hint = ""
            if ctx.function is not None:
                hint = "; functions see only their parameters and local variables"
            close = difflib.get_close_matches(node.id, list(ctx.env), n=1)
            if close:
                hint = f"; did you mean {close[0]!r}?" + hint
            raise self.err(node, f"name {node.id!r} is not defined{hint}")
        if b.maybe:
            raise self.err(node, f"{node.id!r} may have no value here",
                           f"it is assigned (line {b.line}) only on some paths, e.g. inside an "
                           "if or a loop that may not run; give it a value before")
        return b

    def expr(self, node: ast.expr, ctx: Context) -> Expr:
        pos = {"line": node.lineno, "col": node.col_offset + 1}
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool):
                return Const(**pos, value=v, type=ValueType(PUBLIC, BOOL, (), int(v), int(v)))
            if isinstance(v, int):
                if not -(1 << 63) <= v < (1 << 63):
                    raise self.err(node, f"the constant {v} does not fit in 64 bits")
                return Const(**pos, value=v, type=ValueType(PUBLIC, INT, (), v, v))
            if isinstance(v, float):
                return Const(**pos, value=v, type=ValueType(PUBLIC, fixed(), (), v, v))
            if isinstance(v, str):
                return Const(**pos, value=v, type=ValueType(PUBLIC, Kind("str", levels=(v,))))
            raise self.err(node, f"the constant {v!r} is not a value of the language",
                           "values are numbers, booleans and texts")
        if isinstance(node, ast.Name):
            if node.id == "data":
                raise self.err(node, "data can only be used as data.<column>, data[\"column\"], "
                                     "len(data) or data.rows")
            if node.id in LIBRARY or node.id in STATEMENTS or node.id in self.defs:
                raise self.err(node, f"{node.id} is a function; call it")
            b = self.lookup(node, ctx)
            return Var(**pos, name=node.id, type=b.type)
        if isinstance(node, ast.Attribute):
            if node.attr == "rows":
                return self.rows(pos)
            key = Const(**pos, value=node.attr, type=ValueType(PUBLIC, Kind("str", levels=(
                node.attr,))))
            return self.column(node, key)
        if isinstance(node, ast.Subscript):
            if isinstance(node.value, ast.Name) and node.value.id == "data":
                key = self.expr(node.slice, ctx)
                if label_of(key.type) is PRIVATE:
                    raise self.err(node.slice, "private value used as a column name")
                return self.column(node, key)
            return self.subscript(node, ctx, pos)
        if isinstance(node, ast.BinOp):
            return self.binop(node, ctx, pos)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node, ctx, pos)
        if isinstance(node, ast.BoolOp):
            return self.boolop(node, ctx, pos)
        if isinstance(node, ast.Compare):
            return self.compare(node, ctx, pos)
        if isinstance(node, ast.IfExp):
            cond = self.condition(node.test, ctx)
            a, b = self.expr(node.body, ctx), self.expr(node.orelse, ctx)
            if label_of(cond.type) is PRIVATE:
                return self.where(node, cond, a, b, pos)
            if not cond.type.scalar:
                raise self.err(node.test, "a condition must be a single value; use where()")
            known = const_value(cond)
            t = self.joined(node, a.type, b.type) if known is None else (a if known else b).type
            return IfExp(**pos, cond=cond, then=a, orelse=b, type=t)
        if isinstance(node, ast.Call):
            return self.call(node, ctx, pos)
        if isinstance(node, ast.List | ast.Tuple):
            items = tuple(self.expr(e, ctx) for e in node.elts)
            if isinstance(node, ast.Tuple):
                return TupleExpr(**pos, items=items, type=TupleType(tuple(i.type for i in items)))
            return ListExpr(**pos, items=items, type=ListType(self.element(node, items),
                                                              len(items)))
        if isinstance(node, ast.Dict):
            return self.dict_(node, ctx, pos)
        if isinstance(node, ast.ListComp):
            gen = node.generators[0]
            inner = ctx.child()
            it, elem, _ = self.iterable(gen.iter, inner)
            target = self.store(gen.target, elem, inner, None)
            element = self.expr(node.elt, inner)
            return ListComp(**pos, target=target, iter=it, element=element,
                            type=ListType(element.type, _length(it.type)))
        raise self.err(node, f"{type(node).__name__} expressions are not part of the language")

    def element(self, node: ast.AST, items: tuple[Expr, ...]) -> Type:
        if not items:
            raise self.err(node, "an empty list has no element type",
                           "start from [0.0] * n, or build the list with a comprehension")
        t = items[0].type
        for i in items[1:]:
            t = self.joined(node, t, i.type)
        return t

    def rows(self, pos: dict) -> Rows:
        """The row count: public, at most the schema's `rows:`, but never a constant.

        A job may run on a part of the table (a chunk, a dry run on fewer
        synthetic rows), so folding `if len(data) > 1000` at check time could
        type a branch that does not run.
        """
        return Rows(**pos, type=ValueType(PUBLIC, INT, (), 0, self.schema.rows))

    def column(self, node: ast.expr, key: Expr) -> ColumnRef:
        t = key.type
        if not (isinstance(t, ValueType) and t.kind.name == "str" and t.kind.levels):
            raise self.err(node, "a column is named by a constant text: data[\"age\"]")
        names = t.kind.levels
        types = []
        for name in names:
            try:
                types.append(column_type(self.schema.column(name)))
            except KeyError as exc:
                raise self.err(node, exc.args[0],
                               "scripts can use only the columns the schema describes") from exc
        ct = types[0]
        for other in types[1:]:
            ct = self.joined(node, ct, other)
        return ColumnRef(line=node.lineno, col=node.col_offset + 1, key=key, names=names,
                         type=ct)

    def public_index(self, index: Expr, node: ast.AST, container: Type) -> None:
        if label_of(index.type) is PRIVATE:
            if isinstance(container, DictType):
                raise self.err(node, "private value used as a dict key",
                               "which entry is read would show the value; dict keys must be "
                               "public")
            raise self.err(node, "private value used as an index",
                           "the position read would show the value; use where(...) to choose "
                           "between values, or a public index")

    def subscript(self, node: ast.Subscript, ctx: Context, pos: dict) -> Expr:
        value = self.expr(node.value, ctx)
        t = value.type
        if isinstance(node.slice, ast.Slice):
            return self.slice_(node, value, ctx, pos)
        index = self.expr(node.slice, ctx)
        self.public_index(index, node.slice, t)
        it = index.type
        k = const_value(index)
        if isinstance(t, DictType):
            keys = possible_keys(index)
            if not keys:
                raise self.err(node.slice, "dict keys must be known constants")
            found = [t.get(key) for key in keys]
            if any(f is None for f in found):
                missing = keys[found.index(None)]
                raise self.err(node.slice, f"no key {missing!r} in this dict",
                               f"its keys are {[key for key, _ in t.entries]}")
            rt = found[0]
            for other in found[1:]:
                rt = self.joined(node, rt, other)
            return Index(**pos, value=value, index=index, type=rt)
        if not (isinstance(it, ValueType) and it.scalar and it.kind.name in ("int", "bool")):
            raise self.err(node.slice, f"an index must be a public integer, not {it}")
        if isinstance(t, TupleType):
            if isinstance(k, int) and -len(t.items) <= k < len(t.items):
                return Index(**pos, value=value, index=index, type=t.items[k])
            if k is not None:
                raise self.err(node.slice, f"index {k} is outside the tuple of {len(t.items)}")
            rt = t.items[0]
            for other in t.items[1:]:
                rt = self.joined(node, rt, other)
            return Index(**pos, value=value, index=index, type=rt)
        if isinstance(t, ListType):
            return Index(**pos, value=value, index=index, type=t.element)
        if isinstance(t, ValueType) and t.filtered:
            raise self.err(node, "rows of a filtered column cannot be addressed",
                           "its length is private, so whether row i exists would show it; "
                           "reduce it (mean, sum, count) instead")
        if isinstance(t, ValueType) and t.shape:
            return Index(**pos, value=value, index=index,
                         type=replace(t, shape=t.shape[1:], filtered=False, axes=t.axes[1:]))
        raise self.err(node, f"cannot index {t}")

    def slice_(self, node: ast.Subscript, value: Expr, ctx: Context, pos: dict) -> Slice:
        s = node.slice
        assert isinstance(s, ast.Slice)
        parts = [self.expr(p, ctx) if p is not None else None for p in (s.lower, s.upper, s.step)]
        for p, n in zip(parts, (s.lower, s.upper, s.step), strict=True):
            if p is not None and label_of(p.type) is PRIVATE:
                raise self.err(n, "private value used as a slice bound",
                               "the length of the slice would show the value")
        t = value.type
        consts = [None if p is None else const_value(p) for p in parts]
        known = all(c is not None or p is None for c, p in zip(consts, parts, strict=True))
        if isinstance(t, ListType):
            n = len(range(t.length)[slice(*consts)]) if known and t.length is not None else None
            return Slice(**pos, value=value, lower=parts[0], upper=parts[1], step=parts[2],
                         type=ListType(t.element, n))
        if isinstance(t, ValueType) and t.shape and t.shape[0] != ROWS:
            if not known:
                raise self.err(s, "slice bounds of a vector must be constants")
            n = len(range(t.shape[0])[slice(*consts)])
            axes = t.axes and (replace(t.axes[0], labels=t.axes[0].labels[slice(*consts)]),
                               *t.axes[1:])
            return Slice(**pos, value=value, lower=parts[0], upper=parts[1], step=parts[2],
                         type=replace(t, shape=(n, *t.shape[1:]), axes=axes))
        if isinstance(t, ValueType) and t.column:
            raise self.err(node, "columns cannot be sliced",
                           "select rows with where(x, mask), e.g. where(data.age, data.ui)")
        raise self.err(node, f"cannot slice {t}")

    def dict_(self, node: ast.Dict, ctx: Context, pos: dict) -> DictExpr:
        keys, values = [], []
        for kn, vn in zip(node.keys, node.values, strict=True):
            if kn is None:
                raise self.err(vn, "**mapping in a dict is not part of the language")
            key = self.expr(kn, ctx)
            if label_of(key.type) is PRIVATE:
                raise self.err(kn, "private value used as a dict key",
                               "the keys of a dict are visible to every node")
            k = const_value(key)
            if not isinstance(k, str | int):
                raise self.err(kn, "dict keys must be constant texts or integers")
            keys.append(k)
            values.append(self.expr(vn, ctx))
        if len(set(keys)) != len(keys):
            raise self.err(node, "a key appears twice in this dict")
        return DictExpr(**pos, keys=tuple(keys), values=tuple(values),
                        type=DictType(tuple(zip(keys, (v.type for v in values), strict=True))))

    def numeric(self, node: ast.AST, e: Expr, what: str) -> ValueType:
        t = e.type
        if not isinstance(t, ValueType) or not t.kind.numeric:
            if isinstance(t, ValueType) and t.kind.name == "category":
                raise self.err(node, f"{what} of a category has no meaning",
                               "compare a category with one of its levels: data.sex == \"male\"")
            raise self.err(node, f"{what} needs numbers, not {t}")
        return t

    def binop(self, node: ast.BinOp, ctx: Context, pos: dict) -> Expr:
        op = BINOPS.get(type(node.op))
        if op is None:
            raise self.err(node, f"operator {type(node.op).__name__} is not part of the language")
        a, b = self.expr(node.left, ctx), self.expr(node.right, ctx)
        ta, tb = a.type, b.type
        if op == "+" and isinstance(ta, ListType) and isinstance(tb, ListType):
            n = None if None in (ta.length, tb.length) else ta.length + tb.length
            return BinOp(**pos, op=op, left=a, right=b,
                         type=ListType(self.joined(node, ta.element, tb.element), n))
        if op == "+" and isinstance(ta, TupleType) and isinstance(tb, TupleType):
            return BinOp(**pos, op=op, left=a, right=b, type=TupleType(ta.items + tb.items))
        if op == "*" and isinstance(ta, ListType) and isinstance(a, ListExpr):
            if label_of(tb) is PRIVATE:
                raise self.err(node.right, "private value used as a list length",
                               "the length of a list is visible to every node")
            k = const_value(b)
            if not (isinstance(tb, ValueType) and tb.scalar and tb.kind.name == "int"):
                raise self.err(node.right, "a list is repeated by a public integer")
            n = None if k is None else ta.length * max(k, 0)
            return Repeat(**pos, items=a.items, times=b, type=ListType(ta.element, n))
        if isinstance(ta, ValueType) and isinstance(tb, ValueType) and op == "+" and \
                ta.kind.name == tb.kind.name == "str" and const_value(a) and const_value(b):
            text = str(const_value(a)) + str(const_value(b))
            return BinOp(**pos, op=op, left=a, right=b, type=ValueType(PUBLIC, Kind(
                "str", levels=(text,))))
        ta = self.numeric(node.left, a, f"arithmetic ({op})")
        tb = self.numeric(node.right, b, f"arithmetic ({op})")
        label = ta.label.join(tb.label)
        if op == "/":
            kind = fixed(max(ta.kind.frac_bits, tb.kind.frac_bits, 16))
        elif op in ("//", "%"):
            if "fixed" in (ta.kind.name, tb.kind.name):
                raise self.err(node, f"{op} takes integers", "use / for real division")
            if tb.label is PRIVATE:
                raise self.err(node.right, f"{op} needs a public divisor",
                               "divide by a private value with /, which gives a fixed-point "
                               "result")
            kind = INT
        elif op == "**":
            k = const_value(b)
            if label is PRIVATE and not (isinstance(k, int) and 0 <= k <= 64):
                raise self.err(node.right, "the exponent of a private value must be a "
                                           "constant integer between 0 and 64",
                               "use exp(y * log(x)) for other powers")
            kind = join_kind(ta.kind, INT) if ta.kind.name == "bool" else ta.kind
            if kind.name == "int" and not (isinstance(k, int) and k >= 0):
                kind = fixed()  # 2 ** -1 is 0.5, as numpy computes it (not an integer)
        else:
            kind = join_kind(join_kind(ta.kind, INT) if ta.kind.name == "bool" else ta.kind,
                              join_kind(tb.kind, INT) if tb.kind.name == "bool" else tb.kind)
        shape = self.shape(node, ta, tb)
        lo, hi = interval(op, ta, tb)
        if op == "**":
            k = const_value(b)
            lo = hi = None
            top = max(abs(ta.lo), abs(ta.hi)) if None not in (ta.lo, ta.hi) else 0
            if isinstance(k, int) and top > 1 and k * math.log2(top) > 1100:
                # past 64-bit integers and past floats alike: no range (and no hour-long
                # power of a Python integer in the checker)
                if ta.kind.name != "fixed" and label is PUBLIC and const_value(a) is not None:
                    raise self.err(node, "this power does not fit in 64 bits",
                                   "integers are 64-bit values; use smaller numbers")
            elif isinstance(k, int) and None not in (ta.lo, ta.hi) and \
                    (k >= 0 or not ta.lo <= 0 <= ta.hi):
                try:
                    ends = [ta.lo ** k, ta.hi ** k] + ([0] if ta.lo <= 0 <= ta.hi else [])
                    lo, hi = min(ends), max(ends)
                except OverflowError:  # a float past 2^1024: numpy gives inf, no range here
                    pass
        t = self.in_int64(node, ValueType(label, kind, shape, lo, hi, ta.filtered or tb.filtered,
                                          common_axes(shape, ta, tb)))
        return BinOp(**pos, op=op, left=a, right=b, type=t)

    def in_int64(self, node: ast.AST, t: ValueType) -> ValueType:
        """t, whose integer range must fit the 64 bits the values are computed in.

        The checker computes ranges with Python's unbounded integers while a run wraps
        around at 2^63; a constant folded past that edge would let the checker type the
        branch of an `if` that the run does not take (found by the non-interference test:
        `if 2 ** 63 > 0` is true here and false in numpy). A public constant past the edge
        is refused; any other range past it is dropped.
        """
        if t.kind.name not in ("int", "bool") or None in (t.lo, t.hi):
            return t
        if t.lo >= -(1 << 63) and t.hi < (1 << 63):
            return t
        if t.label is PUBLIC and t.lo == t.hi:
            shown = t.lo if abs(t.lo) < 1 << 80 else f"about 2^{t.lo.bit_length()}"
            raise self.err(node, f"this integer is {shown}, which does not fit in 64 bits",
                           "integers are 64-bit values; use smaller numbers, or floats (2.0 ** 70)")
        return replace(t, lo=None, hi=None)

    def shape(self, node: ast.AST, *types: ValueType) -> tuple:
        shape: tuple = ()
        for t in types:
            try:
                shape = broadcast_shapes(shape, t.shape)
            except Mismatch as exc:
                raise self.err(node, f"{exc}",
                               "operations combine values of the same shape, or a scalar with "
                               "anything") from exc
        return shape

    def unary(self, node: ast.UnaryOp, ctx: Context, pos: dict) -> Expr:
        v = self.expr(node.operand, ctx)
        if isinstance(node.op, ast.Not):
            t = self.numeric(node.operand, v, "not")
            k = const_value(v)
            lo, hi = (0, 1) if k is None else (int(not k), int(not k))
            return UnaryOp(**pos, op="not", operand=v, type=replace(t, kind=BOOL, lo=lo, hi=hi))
        if isinstance(node.op, ast.Invert):
            raise self.err(node, "~ is not part of the language", "use not")
        t = self.numeric(node.operand, v, "arithmetic")
        kind = INT if t.kind.name == "bool" else t.kind
        if isinstance(node.op, ast.USub):
            lo = -t.hi if t.hi is not None else None
            hi = -t.lo if t.lo is not None else None
            return UnaryOp(**pos, op="-", operand=v, type=self.in_int64(
                node, replace(t, kind=kind, lo=lo, hi=hi)))
        return UnaryOp(**pos, op="+", operand=v, type=replace(t, kind=kind))

    def boolop(self, node: ast.BoolOp, ctx: Context, pos: dict) -> Expr:
        op = "and" if isinstance(node.op, ast.And) else "or"
        values = tuple(self.expr(v, ctx) for v in node.values)
        types = []
        for e, n in zip(values, node.values, strict=True):
            t = e.type
            if not (isinstance(t, ValueType) and t.kind.name == "bool"):
                raise self.err(n, f"`{op}` takes booleans (comparisons), not {t}")
            types.append(t)
        label = PRIVATE if any(t.label is PRIVATE for t in types) else PUBLIC
        known = [const_value(e) for e in values]
        lo, hi = 0, 1
        if None not in known:
            lo = hi = int(all(known) if op == "and" else any(known))
        return BoolOp(**pos, op=op, values=values, type=ValueType(
            label, BOOL, self.shape(node, *types), lo, hi, any(t.filtered for t in types)))

    def compare(self, node: ast.Compare, ctx: Context, pos: dict) -> Expr:
        left = self.expr(node.left, ctx)
        parts = []
        for op_node, right_node in zip(node.ops, node.comparators, strict=True):
            op = CMPOPS.get(type(op_node))
            if op is None:
                raise self.err(node, f"{type(op_node).__name__} comparisons are not part of the "
                                     "language", "compare with ==, !=, <, <=, > or >=")
            right = self.expr(right_node, ctx)
            parts.append(self.compare_pair(node, op, left, right, pos))
            left = right
        if len(parts) == 1:
            return parts[0]
        types = [p.type for p in parts]
        label = PRIVATE if any(label_of(t) is PRIVATE for t in types) else PUBLIC
        return BoolOp(**pos, op="and", values=tuple(parts), type=ValueType(
            label, BOOL, self.shape(node, *types), 0, 1))

    def compare_pair(self, node: ast.AST, op: str, a: Expr, b: Expr, pos: dict) -> Compare:
        ta, tb = a.type, b.type
        if not (isinstance(ta, ValueType) and isinstance(tb, ValueType)):
            raise self.err(node, f"cannot compare {ta} with {tb}")
        cat = [t for t in (ta, tb) if t.kind.name == "category"]
        txt = [t for t in (ta, tb) if t.kind.name == "str"]
        if cat:
            if op not in ("==", "!="):
                raise self.err(node, "categories have no order", "compare them with == or !=")
            levels = cat[0].kind.levels
            if txt:
                for level in txt[0].kind.levels:
                    if level not in levels:
                        raise self.err(node, f"{level!r} is not a level of this category",
                                       f"its levels are {list(levels)}")
            elif len(cat) != 2 or cat[0].kind != cat[1].kind:
                raise self.err(node, f"cannot compare {ta} with {tb}",
                               "compare a category with one of its levels, as a text")
        elif len(txt) == 2:
            if op not in ("==", "!="):
                raise self.err(node, "texts compare only with == and !=")
        elif txt or not (ta.kind.numeric and tb.kind.numeric):
            raise self.err(node, f"cannot compare {ta} with {tb}")
        label = ta.label.join(tb.label)
        lo, hi = 0, 1
        ka, kb = const_value(a), const_value(b)
        if ka is not None and kb is not None:  # public constants: fold, so that sizes stay known
            lo = hi = int(_COMPARE[op](ka, kb))
        return Compare(**pos, op=op, left=a, right=b, type=ValueType(
            label, BOOL, self.shape(node, ta, tb), lo, hi, ta.filtered or tb.filtered))

    def where(self, node: ast.AST, cond: Expr, a: Expr, b: Expr, pos: dict) -> Where:
        ct = cond.type
        if not (isinstance(ct, ValueType) and ct.kind.name == "bool"):
            raise self.err(node, f"the condition of a selection must be a boolean, not {ct}")
        t = self.joined(node, a.type, b.type, broadcast=True)
        if not isinstance(t, ValueType) or t.kind.name == "str":
            raise self.err(node, "a private condition chooses between values, not between "
                                 "containers or texts",
                           "texts and the structure of lists and dicts are public")
        t = replace(t, label=t.label.join(ct.label), shape=self.shape(node, t, ct),
                    filtered=t.filtered or ct.filtered)
        return Where(**pos, cond=cond, then=a, orelse=b, type=t)

    def call(self, node: ast.Call, ctx: Context, pos: dict) -> Expr:
        if not isinstance(node.func, ast.Name):
            raise self.err(node, "only functions can be called",
                           "call library functions by name: mean(data.age)")
        name = node.func.id
        if name in ("reveal", "print"):
            raise self.err(node, f"{name}() is a statement and gives no value")
        if name == "range":
            raise self.err(node, "range() can only be used in for loops and comprehensions")
        if name in self.defs:
            return self.call_function(node, ctx, pos)
        if name not in LIBRARY:
            close = difflib.get_close_matches(name, [*LIBRARY, *self.defs], n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise self.err(node, f"unknown function {name!r}{hint}",
                           "scripts can call their own functions and the analytics library "
                           f"({', '.join(LIBRARY)})")
        if name in ("len", "count") and len(node.args) == 1 and isinstance(node.args[0], ast.Name) \
                and node.args[0].id == "data" and not node.keywords:
            return self.rows(pos)
        args = tuple(self.expr(a, ctx) for a in node.args)
        kwargs = {}
        for k in node.keywords:
            if k.arg is None:
                raise self.err(k.value, "**kwargs is not part of the language")
            kwargs[k.arg] = self.expr(k.value, ctx)
        return Library(self, node, name, pos).type(args, kwargs)


def _length(t: Type) -> int | None:
    """How many times a loop over a value of type t runs, when the checker knows it."""
    if isinstance(t, ListType):
        return t.length
    if isinstance(t, TupleType):
        return len(t.items)
    if isinstance(t, DictType):
        return len(t.entries)
    if isinstance(t, ValueType) and t.shape and t.shape[0] != ROWS:
        return int(t.shape[0])
    return None
