"""The leak checker: types a script against a schema and refuses every path out for a private value.

Labels flow like this (Denning's lattice PUBLIC <= PRIVATE, as in Jif or
FlowCaml, restricted to what an MPC compiler can run):

1. columns carry the schema's label; constants, `len(data)`, loop counters of
   public ranges are public; an operation's result is the join of its inputs;
2. an unannotated variable takes the label of its latest value; a variable
   annotated `public` refuses a private value; `private` raises the value;
3. an `if` on a private condition is an oblivious Select (both branches run,
   values are chosen by the condition), so its branches may only assign;
   what they assign becomes private (the implicit flow);
4. public control flow (if, while, loop bounds), indices, slices, list
   lengths, dict keys, print(), assert and function parameters or returns
   annotated public must receive public values; `reveal(x)` is the only output.

Loops are typed to a fixed point (labels and kinds only rise; ranges that
change between iterations are dropped). Functions are typed at each call for
the argument types given (the compiler inlines them), so they may be generic.
"""

from __future__ import annotations

import ast
import difflib
import math
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import ScriptError
from .schema import Column, Schema
from .syntax import (
    BOOL,
    INT,
    PRIVATE,
    PUBLIC,
    ROWS,
    Assert,
    Assign,
    BinOp,
    BoolOp,
    Break,
    Call,
    ColumnRef,
    Compare,
    Const,
    Continue,
    DictExpr,
    DictType,
    Expr,
    For,
    FuncCall,
    Function,
    If,
    IfExp,
    Index,
    Kind,
    Label,
    ListComp,
    ListExpr,
    ListType,
    NoneType,
    Output,
    Param,
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
    TupleType,
    Type,
    UnaryOp,
    ValueType,
    Var,
    Where,
    While,
    fixed,
    label_of,
    parse_script,
    raise_label,
    refuse,
)

LIBRARY = ("count", "sum", "mean", "variance", "std", "min", "max", "median", "percentile",
           "histogram", "group_by", "where", "select", "cov", "corr", "linreg", "kmeans", "ttest",
           "chi2", "sqrt", "exp", "log", "abs", "len")
"""Functions a script may call, besides its own: the analytics library (docs/language.md)."""
STATEMENTS = ("reveal", "print", "range")
_MAX_LOOP_PASSES = 8


def check(source: str, schema: Schema, filename: str = "<script>") -> Script:
    """Type `source` against `schema` and return its typed AST, or raise ScriptError."""
    tree = parse_script(source, filename)
    return _Checker(schema, filename, tree).script(tree)


def check_file(path: str | Path, schema: Schema) -> Script:
    return check(Path(path).read_text(), schema, str(path))


@dataclass(frozen=True)
class _Binding:
    type: Type
    declared: Label | None
    line: int
    maybe: bool = False
    """Assigned on some paths only: reading it is refused."""


@dataclass
class _Ctx:
    env: dict[str, _Binding]
    pc: Label = PUBLIC
    loops: int = 0
    function: str | None = None
    declared_return: Label | None = None
    returns: list[Type] | None = None

    def child(self, **changes) -> _Ctx:
        return replace(self, env=dict(self.env), **changes)


class _Mismatch(Exception):
    pass


def _column_type(col: Column) -> ValueType:
    label = PRIVATE if col.private else PUBLIC
    kind = {"int": INT, "bool": BOOL, "fixed": fixed(col.frac_bits)}.get(col.kind)
    if kind is None:
        kind = Kind("category", levels=col.levels)
    lo, hi = (0, 1) if col.kind == "bool" else (col.lo, col.hi)
    return ValueType(label, kind, (ROWS,), lo, hi)


def _join_kind(a: Kind, b: Kind) -> Kind:
    if a == b:
        return a
    if a.name == b.name == "str":
        return Kind("str", levels=tuple(sorted(set(a.levels) | set(b.levels))))
    if {a.name, b.name} <= {"int", "bool"}:
        return INT
    if a.numeric and b.numeric:
        return fixed(max(a.frac_bits, b.frac_bits, 16 if "fixed" not in (a.name, b.name) else 0))
    raise _Mismatch(f"a {a} and a {b}")


def _shape_name(shape: tuple) -> str:
    if not shape:
        return "a scalar"
    if shape == (ROWS,):
        return "a column"
    return "a vector of " + " x ".join(str(d) for d in shape)


def _broadcast(a: tuple, b: tuple) -> tuple:
    if a == b or not b:
        return a
    if not a:
        return b
    raise _Mismatch(f"{_shape_name(a)} and {_shape_name(b)}, which do not match")


def _join(a: Type, b: Type, broadcast: bool = False, widen: bool = False) -> Type:
    """The least type holding both: labels join, kinds widen, shapes must agree."""
    if isinstance(a, ValueType) and isinstance(b, ValueType):
        shape = _broadcast(a.shape, b.shape) if broadcast else a.shape
        if not broadcast and a.shape != b.shape:
            raise _Mismatch(f"{_shape_name(a.shape)} and {_shape_name(b.shape)}")
        same = (a.lo, a.hi) == (b.lo, b.hi)
        known = None not in (a.lo, a.hi, b.lo, b.hi) and not (widen and not same)
        lo = min(a.lo, b.lo) if known else None  # type: ignore[type-var]
        hi = max(a.hi, b.hi) if known else None  # type: ignore[type-var]
        return ValueType(a.label.join(b.label), _join_kind(a.kind, b.kind), shape, lo, hi,
                         a.filtered or b.filtered)
    if isinstance(a, ListType) and isinstance(b, ListType):
        return ListType(_join(a.element, b.element, broadcast, widen),
                        a.length if a.length == b.length else None)
    if isinstance(a, TupleType) and isinstance(b, TupleType) and len(a.items) == len(b.items):
        return TupleType(tuple(_join(x, y, broadcast, widen) for x, y in zip(a.items, b.items,
                                                                             strict=True)))
    if isinstance(a, DictType) and isinstance(b, DictType):
        # keys are public: a key set on one path only is simply absent on the other
        entries = dict(a.entries)
        for k, y in b.entries:
            entries[k] = _join(entries[k], y, broadcast, widen) if k in entries else y
        return DictType(tuple(entries.items()))
    if a == b:
        return a
    raise _Mismatch(f"{a} and {b}")


def _structure_differs(a: Type, b: Type) -> str | None:
    """Why a private condition could not choose between a and b without showing through.

    The structure of a container (length, keys) and texts are public; if the
    two branches of a Select leave different ones, the condition shows.
    """
    if isinstance(a, ValueType) and isinstance(b, ValueType):
        if "str" in (a.kind.name, b.kind.name):
            return "is a text, and texts are public"
        return None
    if isinstance(a, ListType) and isinstance(b, ListType):
        if a.length is None or a.length != b.length:
            return "is a list whose length would depend on the condition"
        return _structure_differs(a.element, b.element)
    if isinstance(a, TupleType) and isinstance(b, TupleType) and len(a.items) == len(b.items):
        return next((r for x, y in zip(a.items, b.items, strict=True)
                     if (r := _structure_differs(x, y))), None)
    if isinstance(a, DictType) and isinstance(b, DictType):
        if [k for k, _ in a.entries] != [k for k, _ in b.entries]:
            return "is a dict whose keys would depend on the condition"
        return next((r for (_, x), (_, y) in zip(a.entries, b.entries, strict=True)
                     if (r := _structure_differs(x, y))), None)
    return "has a different structure on the two paths"


def _const(e: Expr) -> int | float | str | None:
    """The value of a public expression the checker knows exactly, else None."""
    t = e.type
    if not isinstance(t, ValueType) or t.label is PRIVATE or not t.scalar:
        return None
    if t.kind.name == "str":
        return t.kind.levels[0] if len(t.kind.levels) == 1 else None
    if t.lo is not None and t.lo == t.hi:
        return int(t.lo) if t.kind.name in ("int", "bool") else t.lo
    return None


def _possible_keys(e: Expr) -> list[str | int]:
    """The constant keys a public index may take: one constant, or the texts it can hold."""
    k = _const(e)
    if k is not None:
        return [k]  # type: ignore[list-item]
    t = e.type
    if isinstance(t, ValueType) and t.kind.name == "str":
        return list(t.kind.levels)
    return []


def _interval(op: str, a: ValueType, b: ValueType) -> tuple[float | None, float | None]:
    if None in (a.lo, a.hi, b.lo, b.hi):
        return None, None
    if op in ("+", "-", "*"):
        if op == "+":
            return a.lo + b.lo, a.hi + b.hi  # type: ignore[operator]
        if op == "-":
            return a.lo - b.hi, a.hi - b.lo  # type: ignore[operator]
        ends = [x * y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]  # type: ignore[operator]
        return min(ends), max(ends)
    if op == "/" and b.lo == b.hi and b.lo != 0:
        ends = [a.lo / b.lo, a.hi / b.lo]  # type: ignore[operator]
        return min(ends), max(ends)
    return None, None


class _Checker:
    def __init__(self, schema: Schema, filename: str, tree: ast.Module) -> None:
        self.schema = schema
        self.filename = filename
        self.defs = {s.name: s for s in tree.body if isinstance(s, ast.FunctionDef)}
        self.defined: set[str] = set()
        self.specs: dict[tuple, Function] = {}
        self.outputs: list[Output] = []

    def err(self, node: ast.AST, message: str, why: str = "") -> ScriptError:
        return refuse(node, message, why, self.filename)

    def script(self, tree: ast.Module) -> Script:
        ctx = _Ctx(env={})
        body = self.block(tree.body, ctx)
        called = {fn.name for fn in self.specs.values()}
        for name, fdef in self.defs.items():
            if name not in called:
                raise self.err(fdef, f"function {name} is defined but never called",
                               "functions are typed at their calls, so an unused one would go "
                               "unchecked; remove it or call it")
        return Script(filename=self.filename, schema=self.schema.name, body=body,
                      functions=tuple(self.specs.values()), outputs=tuple(self.outputs))

    # ------------------------------------------------------------ statements

    def block(self, stmts: list[ast.stmt], ctx: _Ctx) -> tuple[Stmt, ...]:
        out: list[Stmt] = []
        for i, s in enumerate(stmts):
            if i == 0 and isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) \
                    and isinstance(s.value.value, str):
                continue  # a docstring
            out += self.stmt(s, ctx)
        return tuple(out)

    def stmt(self, s: ast.stmt, ctx: _Ctx) -> list[Stmt]:
        pos = {"line": s.lineno, "col": s.col_offset + 1}
        if isinstance(s, ast.FunctionDef):
            self.defined.add(s.name)
            return []
        if isinstance(s, ast.Pass):
            return []
        if isinstance(s, ast.Assign):
            if len(s.targets) != 1:
                raise self.err(s, "chained assignment a = b = ... is not part of the language",
                               "assign each name in its own statement")
            value = self.expr(s.value, ctx)
            return [Assign(**pos, target=self.store(s.targets[0], value.type, ctx, None),
                           value=value)]
        if isinstance(s, ast.AnnAssign):
            declared = self.annotation(s.annotation)
            if not isinstance(s.target, ast.Name) or s.value is None:
                raise self.err(s, "annotate a plain name with its value: x: private = ...")
            value = self.expr(s.value, ctx)
            target = self.store(s.target, value.type, ctx, declared)
            return [Assign(**pos, target=target, value=value, declared=declared)]
        if isinstance(s, ast.AugAssign):
            load = ast.copy_location(_as_load(s.target), s.target)
            binop = ast.copy_location(ast.BinOp(left=load, op=s.op, right=s.value), s)
            value = self.expr(binop, ctx)
            return [Assign(**pos, target=self.store(s.target, value.type, ctx, None),
                           value=value)]
        if isinstance(s, ast.If):
            return [self.if_(s, ctx)]
        if isinstance(s, ast.For):
            return [self.for_(s, ctx)]
        if isinstance(s, ast.While):
            return [self.while_(s, ctx)]
        if isinstance(s, ast.Break | ast.Continue):
            if not ctx.loops:
                raise self.err(s, f"{type(s).__name__.lower()} outside a loop")
            return [Break(**pos) if isinstance(s, ast.Break) else Continue(**pos)]
        if isinstance(s, ast.Return):
            return [self.return_(s, ctx)]
        if isinstance(s, ast.Assert):
            return [self.assertion(s, ctx)]
        if isinstance(s, ast.Expr):
            call = s.value
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name):
                if call.func.id == "reveal":
                    return [self.reveal(call, ctx)]
                if call.func.id == "print":
                    return [self.print_(call, ctx)]
            raise self.err(s, "the value of this expression is not used",
                           "a script's only output is reveal(x); assign the value to a name or "
                           "reveal it")
        raise self.err(s, f"{type(s).__name__} statements are not part of the language")

    def annotation(self, node: ast.expr | None) -> Label | None:
        if node is None:
            return None
        if isinstance(node, ast.Name) and node.id in ("private", "public"):
            return Label(node.id)
        raise self.err(node, f"unknown annotation {ast.unparse(node)!r}",
                       "annotations say who may see a value: `private` or `public`; kinds "
                       "(int, fixed, bool, category) come from the schema and the operations")

    def store(self, t: ast.expr, vtype: Type, ctx: _Ctx, declared: Label | None) -> Target:
        pos = {"line": t.lineno, "col": t.col_offset + 1}
        if isinstance(vtype, NoneType):
            raise self.err(t, "the right-hand side gives no value",
                           "reveal(), print() and functions without return produce nothing")
        if isinstance(t, ast.Name):
            self.bind(t, vtype, ctx, declared)
            return Target(**pos, name=t.id)
        if isinstance(t, ast.Tuple | ast.List):
            items = self.unpack(t, vtype, len(t.elts))
            return Target(**pos, items=tuple(self.store(e, it, ctx, None)
                                             for e, it in zip(t.elts, items, strict=True)))
        if isinstance(t, ast.Subscript):
            if ctx.pc is PRIVATE:
                raise self.err(t, "only plain names can be assigned in an if on a private "
                                  "condition", "assign the whole list or dict instead")
            return self.store_item(t, vtype, ctx, pos)
        raise self.err(t, f"cannot assign to {ast.unparse(t)}")

    def unpack(self, t: ast.expr, vtype: Type, n: int) -> tuple[Type, ...]:
        if isinstance(vtype, TupleType) and len(vtype.items) == n:
            return vtype.items
        if isinstance(vtype, ListType) and vtype.length == n:
            return (vtype.element,) * n
        if isinstance(vtype, ValueType) and len(vtype.shape) >= 1 and vtype.shape[0] == n:
            return (replace(vtype, shape=vtype.shape[1:]),) * n
        raise self.err(t, f"cannot unpack {vtype} into {n} names")

    def bind(self, t: ast.Name, vtype: Type, ctx: _Ctx, declared: Label | None) -> None:
        name = t.id
        if name == "data" or name in LIBRARY or name in STATEMENTS or name in self.defs \
                or name in ("private", "public"):
            raise self.err(t, f"{name!r} is a reserved name", "choose another variable name")
        old = ctx.env.get(name)
        if declared is not None and old is not None and old.declared not in (None, declared):
            raise self.err(t, f"{name!r} was declared {old.declared.value} at line {old.line}",
                           "a variable keeps the label it is declared with")
        declared = declared or (old.declared if old else None)
        vtype = raise_label(vtype, ctx.pc)
        if declared is PUBLIC and label_of(vtype) is PRIVATE:
            if ctx.pc is PRIVATE:
                raise self.err(t, f"{name!r} is declared public but is assigned under a private "
                                  "condition",
                               "which branch ran depends on private data, so the value would "
                               "tell it; drop the public annotation")
            raise self.err(t, f"{name!r} is declared public but receives a private value",
                           "a public value is visible to every node; drop the annotation (the "
                           "variable becomes private) or compute it from public values only")
        if declared is PRIVATE:
            vtype = raise_label(vtype, PRIVATE)
        ctx.env[name] = _Binding(vtype, declared, t.lineno)

    def store_item(self, t: ast.Subscript, vtype: Type, ctx: _Ctx, pos: dict) -> Target:
        if not isinstance(t.value, ast.Name) or t.value.id not in ctx.env:
            raise self.err(t, "assign items only of a list or dict held in a variable")
        b = self.lookup(t.value, ctx)
        index = self.expr(t.slice, ctx)
        self.public_index(index, t.slice, b.type)
        cur = b.type
        if isinstance(cur, DictType):
            keys = _possible_keys(index)
            if not keys:
                raise self.err(t.slice, "dict keys must be constants, or texts from a constant "
                                        "list (a loop over [\"age\", \"tenure\"])")
            entries = dict(cur.entries)
            for key in keys:
                entries[key] = vtype if key not in entries else self.joined(t, entries[key],
                                                                            vtype)
            new: Type = DictType(tuple(entries.items()))
        elif isinstance(cur, ListType):
            new = ListType(self.joined(t, cur.element, vtype), cur.length)
        elif isinstance(cur, ValueType) and cur.shape and cur.shape[0] != ROWS:
            item = replace(cur, shape=cur.shape[1:])
            new = replace(self.joined(t, item, vtype), shape=cur.shape)  # type: ignore[arg-type]
        else:
            raise self.err(t, f"cannot assign items of {cur}")
        self.bind(t.value, new, ctx, None)
        return Target(**pos, container=t.value.id, index=index)

    def joined(self, node: ast.AST, a: Type, b: Type, broadcast: bool = False) -> Type:
        try:
            return _join(a, b, broadcast)
        except _Mismatch as exc:
            raise self.err(node, f"this holds {exc} on different paths",
                           "a name must keep one kind and shape; use two names") from exc

    def merge(self, node: ast.AST, a: dict[str, _Binding], b: dict[str, _Binding],
              widen: bool = False) -> dict[str, _Binding]:
        out = {}
        for name in a.keys() | b.keys():
            x, y = a.get(name), b.get(name)
            if x is None or y is None:
                z = x or y
                out[name] = replace(z, maybe=True)  # type: ignore[arg-type]
                continue
            try:
                t = _join(x.type, y.type, widen=widen)
            except _Mismatch as exc:
                raise self.err(node, f"{name!r} holds {exc} on different paths",
                               "a name keeps one kind and shape: use two names, or start it "
                               "with the final shape (a column accumulator as 0 * data.age)"
                               ) from exc
            out[name] = _Binding(t, x.declared or y.declared, x.line, x.maybe or y.maybe)
        return out

    def condition(self, node: ast.expr, ctx: _Ctx) -> Expr:
        cond = self.expr(node, ctx)
        t = cond.type
        if not isinstance(t, ValueType) or t.kind.name not in ("bool", "int"):
            raise self.err(node, f"a condition must be a boolean, not {t}",
                           "compare values to get a boolean")
        return cond

    def if_(self, s: ast.If, ctx: _Ctx) -> Stmt:
        pos = {"line": s.lineno, "col": s.col_offset + 1}
        cond = self.condition(s.test, ctx)
        if label_of(cond.type) is PRIVATE:
            return self.select(s, cond, ctx, pos)
        if not cond.type.scalar:  # type: ignore[union-attr]
            raise self.err(s.test, "an if needs a single value; this condition is a column",
                           "use where(cond, a, b) to choose element by element")
        then, other = ctx.child(), ctx.child()
        body = self.block(s.body, then)
        orelse = self.block(s.orelse, other)
        ctx.env = self.merge(s, then.env, other.env)
        return If(**pos, cond=cond, body=body, orelse=orelse)

    def select(self, s: ast.If, cond: Expr, ctx: _Ctx, pos: dict) -> Select:
        for inner in _statements(s.body + s.orelse):
            if not isinstance(inner, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.If |
                              ast.Pass):
                what = _describe(inner)
                raise self.err(s.test, "if on a private condition cannot be made oblivious: "
                                       f"line {inner.lineno} is {what}, not an assignment",
                               "both branches of an if on private data always run and the "
                               "condition only chooses the values assigned; move everything "
                               "else out of the if, or reveal the condition's inputs first")
        then, other = ctx.child(pc=PRIVATE), ctx.child(pc=PRIVATE)
        body = self.block(s.body, then)
        orelse = self.block(s.orelse, other)
        outputs = []
        assigned = sorted({n.id for st in s.body + s.orelse for n in ast.walk(st)
                           if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)})
        cshape = cond.type.shape  # type: ignore[union-attr]
        for name in assigned:
            x, y = then.env.get(name), other.env.get(name)
            if x is None or y is None or x.maybe or y.maybe:
                raise self.err(s, f"{name!r} is assigned in only one branch of an if on a "
                                  "private condition and has no value before it",
                               "give it a value before the if, so that the other branch can "
                               "keep that value")
            why = _structure_differs(x.type, y.type)
            if why:
                raise self.err(s.test, "if on a private condition cannot be made oblivious: "
                                       f"{name!r} {why}",
                               "a Select can choose between values, not between list lengths, "
                               "dict keys or texts; give both branches the same structure")
            t = raise_label(self.joined(s, x.type, y.type, broadcast=True), PRIVATE)
            if isinstance(t, ValueType):
                try:
                    t = replace(t, shape=_broadcast(t.shape, cshape))
                except _Mismatch as exc:
                    raise self.err(s.test, f"the condition and {name!r}: {exc}") from exc
            ctx.env[name] = _Binding(t, x.declared, x.line)
            outputs.append((name, t))
        return Select(**pos, cond=cond, body=body, orelse=orelse, outputs=tuple(outputs))

    def iterable(self, node: ast.expr, ctx: _Ctx) -> tuple[Expr, Type, bool]:
        """The iterated expression, the element type, and whether it surely runs once."""
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "range":
            r = self.range_(node, ctx)
            return r, r.type.element, bool(r.type.length)  # type: ignore[union-attr]
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
            return it, ValueType(PUBLIC, INT, (), min(keys), max(keys)), True  # type: ignore
        if isinstance(t, ValueType) and t.shape and t.shape[0] == ROWS:
            raise self.err(node, "a loop over the rows of a column is not allowed",
                           "it would run once per row; write the computation on whole columns "
                           "(data.age * 2, sum(x), where(cond, a, b))")
        if isinstance(t, ValueType) and t.shape:
            return it, replace(t, shape=t.shape[1:]), bool(t.shape[0])
        raise self.err(node, f"cannot loop over {t}",
                       "loop over range(n) with a public n, or over a list, tuple or dict")

    def range_(self, node: ast.Call, ctx: _Ctx) -> Range:
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
        consts = [_const(e) for e in (start, stop, step)]
        length = len(range(*consts)) if None not in consts and consts[2] != 0 else None  # type: ignore
        st, sp = start.type, stop.type
        lo = hi = None
        if _const(step) is not None and _const(step) > 0 and None not in (st.lo, sp.hi):  # type: ignore
            lo, hi = st.lo, sp.hi - 1  # type: ignore
        elem = ValueType(PUBLIC, INT, (), lo, hi)
        return Range(line=node.lineno, col=node.col_offset + 1, start=start, stop=stop,
                     step=step, type=ListType(elem, length))

    def loop(self, node: ast.stmt, ctx: _Ctx, head) -> tuple:
        """Type a loop body until the variables' types stop changing; returns head's results."""
        entry = dict(ctx.env)
        env = dict(entry)
        for _ in range(_MAX_LOOP_PASSES):
            inner = ctx.child(loops=ctx.loops + 1)
            inner.env = dict(env)
            result = head(inner)
            new = self.merge(node, env, inner.env, widen=True)
            new = {k: (replace(v, maybe=True) if k not in entry else v) for k, v in new.items()}
            if new == env:
                break
            env = new
        else:
            raise self.err(node, "the types of this loop's variables do not settle")
        ctx.env = env
        return result

    def for_(self, s: ast.For, ctx: _Ctx) -> For:
        if s.orelse:
            raise self.err(s, "for ... else is not part of the language")
        it, elem, surely = self.iterable(s.iter, ctx)

        def head(inner: _Ctx) -> tuple:
            target = self.store(s.target, elem, inner, None)
            return target, self.block(s.body, inner)

        target, body = self.loop(s, ctx, head)
        if surely:
            ctx.env = {k: replace(v, maybe=False) if _assigned_in(k, s) else v
                       for k, v in ctx.env.items()}
        return For(line=s.lineno, col=s.col_offset + 1, target=target, iter=it, body=body)

    def while_(self, s: ast.While, ctx: _Ctx) -> While:
        if s.orelse:
            raise self.err(s, "while ... else is not part of the language")

        def head(inner: _Ctx) -> tuple:
            cond = self.condition(s.test, inner)
            if label_of(cond.type) is PRIVATE:
                raise self.err(s.test, "while condition is private",
                               "how many times a loop runs is visible to every node; bound the "
                               "loop with a public count and use where(...) inside it")
            if not cond.type.scalar:  # type: ignore[union-attr]
                raise self.err(s.test, "a while condition must be a single value")
            return cond, self.block(s.body, inner)

        cond, body = self.loop(s, ctx, head)
        return While(line=s.lineno, col=s.col_offset + 1, cond=cond, body=body)

    def return_(self, s: ast.Return, ctx: _Ctx) -> Return:
        pos = {"line": s.lineno, "col": s.col_offset + 1}
        if ctx.function is None:
            raise self.err(s, "return outside a function",
                           "results leave a script only through reveal(x), to the data owner")
        value = self.expr(s.value, ctx) if s.value is not None else None
        t: Type = value.type if value is not None else NoneType()
        if ctx.declared_return is PUBLIC and label_of(t) is PRIVATE:
            raise self.err(s, f"{ctx.function} is declared to return public but returns a "
                              "private value",
                           "drop `-> public`, or return a value computed from public inputs")
        if ctx.declared_return is PRIVATE:
            t = raise_label(t, PRIVATE)
        ctx.returns.append(t)  # type: ignore[union-attr]
        return Return(**pos, value=value)

    def assertion(self, s: ast.Assert, ctx: _Ctx) -> Assert:
        cond = self.condition(s.test, ctx)
        if label_of(cond.type) is PRIVATE:
            raise self.err(s.test, "assert on a private condition",
                           "whether the assertion fails would tell every node something about "
                           "private data; check it with where(...) or reveal a count instead")
        msg = self.expr(s.msg, ctx) if s.msg is not None else None
        if msg is not None and label_of(msg.type) is PRIVATE:
            raise self.err(s.msg, "assert message contains a private value",  # type: ignore
                           "an error message is shown to every node")
        return Assert(line=s.lineno, col=s.col_offset + 1, cond=cond, message=msg)

    def reveal(self, call: ast.Call, ctx: _Ctx) -> Reveal:
        pos = {"line": call.lineno, "col": call.col_offset + 1}
        if ctx.function is not None:
            raise self.err(call, "reveal() inside a function",
                           "return the value and reveal it at the top level of the script")
        if ctx.loops:
            raise self.err(call, "reveal() inside a loop",
                           "collect the values in a list and reveal the list after the loop")
        args = list(call.args)
        kw = {k.arg: k.value for k in call.keywords}
        if "name" in kw:
            args.append(kw.pop("name"))
        if kw or not 1 <= len(args) <= 2:
            raise self.err(call, "reveal takes a value and an optional name: reveal(x, \"x\")")
        value = self.expr(args[0], ctx)
        if isinstance(value.type, NoneType):
            raise self.err(args[0], "there is no value to reveal")
        if len(args) == 2:
            name = _const(self.expr(args[1], ctx))
            if not isinstance(name, str):
                raise self.err(args[1], "the name of a reveal must be a constant text")
        else:
            name = ast.unparse(args[0])
        for out in self.outputs:
            if out.name == name:
                raise self.err(call, f"a result named {name!r} is already revealed at line "
                                     f"{out.line}", "give each reveal its own name")
        self.outputs.append(Output(name=name, type=value.type, line=call.lineno))
        return Reveal(**pos, value=value, name=name)

    def print_(self, call: ast.Call, ctx: _Ctx) -> Print:
        if call.keywords:
            raise self.err(call, "print() takes only positional arguments")
        args = tuple(self.expr(a, ctx) for a in call.args)
        for a, n in zip(args, call.args, strict=True):
            if label_of(a.type) is PRIVATE:
                raise self.err(n, "print() of a private value",
                               "print shows its arguments to every node; send results to the "
                               "data owner with reveal(x)")
        return Print(line=call.lineno, col=call.col_offset + 1, args=args)

    # ------------------------------------------------------------ expressions

    def lookup(self, node: ast.Name, ctx: _Ctx) -> _Binding:
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

    def expr(self, node: ast.expr, ctx: _Ctx) -> Expr:
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
            if not cond.type.scalar:  # type: ignore[union-attr]
                raise self.err(node.test, "a condition must be a single value; use where()")
            return IfExp(**pos, cond=cond, then=a, orelse=b, type=self.joined(node, a.type,
                                                                              b.type))
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
            length = it.type.length if isinstance(it.type, ListType) else None
            if isinstance(it.type, TupleType):
                length = len(it.type.items)
            return ListComp(**pos, target=target, iter=it, element=element,
                            type=ListType(element.type, length))
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
        n = self.schema.rows
        return Rows(**pos, type=ValueType(PUBLIC, INT, (), n if n is not None else 0, n))

    def column(self, node: ast.expr, key: Expr) -> ColumnRef:
        t = key.type
        if not (isinstance(t, ValueType) and t.kind.name == "str" and t.kind.levels):
            raise self.err(node, "a column is named by a constant text: data[\"age\"]")
        names = t.kind.levels
        types = []
        for name in names:
            try:
                types.append(_column_type(self.schema.column(name)))
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

    def subscript(self, node: ast.Subscript, ctx: _Ctx, pos: dict) -> Expr:
        value = self.expr(node.value, ctx)
        t = value.type
        if isinstance(node.slice, ast.Slice):
            return self.slice_(node, value, ctx, pos)
        index = self.expr(node.slice, ctx)
        self.public_index(index, node.slice, t)
        it = index.type
        k = _const(index)
        if isinstance(t, DictType):
            keys = _possible_keys(index)
            if not keys:
                raise self.err(node.slice, "dict keys must be known constants")
            found = [t.get(key) for key in keys]
            if any(f is None for f in found):
                missing = keys[found.index(None)]
                raise self.err(node.slice, f"no key {missing!r} in this dict",
                               f"its keys are {[key for key, _ in t.entries]}")
            rt = found[0]
            for other in found[1:]:
                rt = self.joined(node, rt, other)  # type: ignore[arg-type]
            return Index(**pos, value=value, index=index, type=rt)  # type: ignore[arg-type]
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
                         type=replace(t, shape=t.shape[1:], filtered=False))
        raise self.err(node, f"cannot index {t}")

    def slice_(self, node: ast.Subscript, value: Expr, ctx: _Ctx, pos: dict) -> Slice:
        s = node.slice
        assert isinstance(s, ast.Slice)
        parts = [self.expr(p, ctx) if p is not None else None for p in (s.lower, s.upper, s.step)]
        for p, n in zip(parts, (s.lower, s.upper, s.step), strict=True):
            if p is not None and label_of(p.type) is PRIVATE:
                raise self.err(n, "private value used as a slice bound",  # type: ignore[arg-type]
                               "the length of the slice would show the value")
        t = value.type
        consts = [None if p is None else _const(p) for p in parts]
        known = all(c is not None or p is None for c, p in zip(consts, parts, strict=True))
        if isinstance(t, ListType):
            n = len(range(t.length)[slice(*consts)]) if known and t.length is not None else None
            return Slice(**pos, value=value, lower=parts[0], upper=parts[1], step=parts[2],
                         type=ListType(t.element, n))
        if isinstance(t, ValueType) and t.shape and t.shape[0] != ROWS:
            if not known:
                raise self.err(s, "slice bounds of a vector must be constants")
            n = len(range(t.shape[0])[slice(*consts)])  # type: ignore[arg-type]
            return Slice(**pos, value=value, lower=parts[0], upper=parts[1], step=parts[2],
                         type=replace(t, shape=(n, *t.shape[1:])))
        if isinstance(t, ValueType) and t.column:
            raise self.err(node, "columns cannot be sliced",
                           "select rows with where(x, mask), e.g. where(data.age, data.ui)")
        raise self.err(node, f"cannot slice {t}")

    def dict_(self, node: ast.Dict, ctx: _Ctx, pos: dict) -> DictExpr:
        keys, values = [], []
        for kn, vn in zip(node.keys, node.values, strict=True):
            if kn is None:
                raise self.err(vn, "**mapping in a dict is not part of the language")
            key = self.expr(kn, ctx)
            if label_of(key.type) is PRIVATE:
                raise self.err(kn, "private value used as a dict key",
                               "the keys of a dict are visible to every node")
            k = _const(key)
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

    def binop(self, node: ast.BinOp, ctx: _Ctx, pos: dict) -> Expr:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise self.err(node, f"operator {type(node.op).__name__} is not part of the language")
        a, b = self.expr(node.left, ctx), self.expr(node.right, ctx)
        ta, tb = a.type, b.type
        if op == "+" and isinstance(ta, ListType) and isinstance(tb, ListType):
            n = None if None in (ta.length, tb.length) else ta.length + tb.length  # type: ignore
            return BinOp(**pos, op=op, left=a, right=b,
                         type=ListType(self.joined(node, ta.element, tb.element), n))
        if op == "+" and isinstance(ta, TupleType) and isinstance(tb, TupleType):
            return BinOp(**pos, op=op, left=a, right=b, type=TupleType(ta.items + tb.items))
        if op == "*" and isinstance(ta, ListType) and isinstance(a, ListExpr):
            if label_of(tb) is PRIVATE:
                raise self.err(node.right, "private value used as a list length",
                               "the length of a list is visible to every node")
            k = _const(b)
            if not (isinstance(tb, ValueType) and tb.scalar and tb.kind.name == "int"):
                raise self.err(node.right, "a list is repeated by a public integer")
            n = None if k is None else ta.length * max(k, 0)  # type: ignore[operator]
            return Repeat(**pos, items=a.items, times=b, type=ListType(ta.element, n))
        if isinstance(ta, ValueType) and isinstance(tb, ValueType) and \
                ta.kind.name == tb.kind.name == "str" and op == "+" and _const(a) and _const(b):
            text = str(_const(a)) + str(_const(b))
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
            k = _const(b)
            if label is PRIVATE and not (isinstance(k, int) and 0 <= k <= 64):
                raise self.err(node.right, "the exponent of a private value must be a "
                                           "constant integer between 0 and 64",
                               "use exp(y * log(x)) for other powers")
            kind = _join_kind(ta.kind, INT) if ta.kind.name == "bool" else ta.kind
        else:
            kind = _join_kind(_join_kind(ta.kind, INT) if ta.kind.name == "bool" else ta.kind,
                              _join_kind(tb.kind, INT) if tb.kind.name == "bool" else tb.kind)
        shape = self.shape(node, ta, tb)
        lo, hi = _interval(op, ta, tb)
        if op == "**":
            k = _const(b)
            if isinstance(k, int) and None not in (ta.lo, ta.hi):
                ends = [ta.lo ** k, ta.hi ** k] + ([0] if ta.lo <= 0 <= ta.hi else [])  # type: ignore
                lo, hi = min(ends), max(ends)
        t = ValueType(label, kind, shape, lo, hi, ta.filtered or tb.filtered)
        return BinOp(**pos, op=op, left=a, right=b, type=t)

    def shape(self, node: ast.AST, *types: ValueType) -> tuple:
        shape: tuple = ()
        for t in types:
            try:
                shape = _broadcast(shape, t.shape)
            except _Mismatch as exc:
                raise self.err(node, f"{exc}",
                               "operations combine values of the same shape, or a scalar with "
                               "anything") from exc
        return shape

    def unary(self, node: ast.UnaryOp, ctx: _Ctx, pos: dict) -> Expr:
        v = self.expr(node.operand, ctx)
        if isinstance(node.op, ast.Not):
            t = self.numeric(node.operand, v, "not")
            return UnaryOp(**pos, op="not", operand=v, type=replace(t, kind=BOOL, lo=0, hi=1))
        if isinstance(node.op, ast.Invert):
            raise self.err(node, "~ is not part of the language", "use not")
        t = self.numeric(node.operand, v, "arithmetic")
        kind = INT if t.kind.name == "bool" else t.kind
        if isinstance(node.op, ast.USub):
            lo = -t.hi if t.hi is not None else None
            hi = -t.lo if t.lo is not None else None
            return UnaryOp(**pos, op="-", operand=v, type=replace(t, kind=kind, lo=lo, hi=hi))
        return UnaryOp(**pos, op="+", operand=v, type=replace(t, kind=kind))

    def boolop(self, node: ast.BoolOp, ctx: _Ctx, pos: dict) -> Expr:
        op = "and" if isinstance(node.op, ast.And) else "or"
        values = tuple(self.expr(v, ctx) for v in node.values)
        types = []
        for e, n in zip(values, node.values, strict=True):
            t = e.type
            if not (isinstance(t, ValueType) and t.kind.name == "bool"):
                raise self.err(n, f"`{op}` takes booleans (comparisons), not {t}")
            types.append(t)
        label = PRIVATE if any(t.label is PRIVATE for t in types) else PUBLIC
        return BoolOp(**pos, op=op, values=values, type=ValueType(
            label, BOOL, self.shape(node, *types), 0, 1, any(t.filtered for t in types)))

    def compare(self, node: ast.Compare, ctx: _Ctx, pos: dict) -> Expr:
        left = self.expr(node.left, ctx)
        parts = []
        for op_node, right_node in zip(node.ops, node.comparators, strict=True):
            op = _CMPOPS.get(type(op_node))
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
            label, BOOL, self.shape(node, *types), 0, 1))  # type: ignore[arg-type]

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
        return Compare(**pos, op=op, left=a, right=b, type=ValueType(
            label, BOOL, self.shape(node, ta, tb), 0, 1, ta.filtered or tb.filtered))

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

    # ------------------------------------------------------------ calls

    def call(self, node: ast.Call, ctx: _Ctx, pos: dict) -> Expr:
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
            close = difflib.get_close_matches(name, LIBRARY + tuple(self.defs), n=2)
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
        return _Library(self, node, name, pos).type(args, kwargs)

    def call_function(self, node: ast.Call, ctx: _Ctx, pos: dict) -> FuncCall:
        name = node.func.id  # type: ignore[attr-defined]
        fdef = self.defs[name]
        if ctx.function is None and name not in self.defined:
            raise self.err(node, f"{name} is called before its def at line {fdef.lineno}")
        params = [a.arg for a in fdef.args.args]
        given: dict[str, tuple[Expr, ast.expr]] = {}
        if len(node.args) > len(params):
            raise self.err(node, f"{name} takes {len(params)} argument(s), got {len(node.args)}")
        for p, a in zip(params, node.args, strict=False):
            given[p] = (self.expr(a, ctx), a)
        for k in node.keywords:
            if k.arg not in params or k.arg in given:
                raise self.err(k.value, f"{name} has no parameter {k.arg!r} left to set")
            given[k.arg] = (self.expr(k.value, ctx), k.value)
        missing = [p for p in params if p not in given]
        if missing:
            raise self.err(node, f"{name} needs the argument(s) {missing}")
        typed = []
        for a in fdef.args.args:
            arg, arg_node = given[a.arg]
            declared = self.annotation(a.annotation)
            t = arg.type
            if isinstance(t, NoneType):
                raise self.err(arg_node, "this argument gives no value")
            if declared is PUBLIC and label_of(t) is PRIVATE:
                raise self.err(arg_node, f"parameter {a.arg!r} of {name} is declared public but "
                                         "receives a private value",
                               "pass a public value, or drop the public annotation")
            if declared is PRIVATE:
                t = raise_label(t, PRIVATE)
            typed.append(Param(name=a.arg, declared=declared, type=t))
        key = (name, tuple(p.type for p in typed))
        fn = self.specs.get(key)
        if fn is None:
            fn = self.specialise(fdef, tuple(typed))
            self.specs[key] = fn
        if isinstance(fn.returns, NoneType):
            raise self.err(node, f"{name} returns no value",
                           "a function's result must be used; give it a return statement")
        return FuncCall(**pos, func=fn, args=tuple(given[p][0] for p in params),
                        type=fn.returns)

    def specialise(self, fdef: ast.FunctionDef, params: tuple[Param, ...]) -> Function:
        declared_return = self.annotation(fdef.returns)
        env = {p.name: _Binding(p.type, p.declared, fdef.lineno) for p in params}
        fctx = _Ctx(env=env, function=fdef.name, declared_return=declared_return, returns=[])
        body = self.block(fdef.body, fctx)
        returns: Type = NoneType()
        if fctx.returns:
            if not _always_returns(fdef.body):
                raise self.err(fdef, f"{fdef.name} does not return a value on every path",
                               "end the function with a return statement")
            returns = fctx.returns[0]
            for t in fctx.returns[1:]:
                returns = self.joined(fdef, returns, t)
        return Function(line=fdef.lineno, col=fdef.col_offset + 1, name=fdef.name, params=params,
                        body=body, returns=returns, declared_return=declared_return)


class _Library:
    """Typing rules of the analytics library: argument checks, result kind, shape and range."""

    def __init__(self, checker: _Checker, node: ast.Call, name: str, pos: dict) -> None:
        self.c, self.node, self.name, self.pos = checker, node, name, pos
        self.rows = checker.schema.rows

    def err(self, message: str, why: str = "", node: ast.AST | None = None) -> ScriptError:
        return self.c.err(node or self.node, message, why)

    def bind(self, args: tuple[Expr, ...], kwargs: dict[str, Expr], names: list[str],
             required: int) -> dict[str, Expr]:
        if len(args) > len(names):
            raise self.err(f"{self.name}() takes at most {len(names)} argument(s)")
        bound = dict(zip(names, args, strict=False))
        for k, v in kwargs.items():
            if k not in names or k in bound:
                raise self.err(f"{self.name}() has no parameter {k!r} left to set",
                               f"its parameters are {names}")
            bound[k] = v
        missing = [n for n in names[:required] if n not in bound]
        if missing:
            raise self.err(f"{self.name}() needs the argument(s) {missing}")
        return bound

    def err_at(self, e: Expr, message: str, why: str = "") -> ScriptError:
        return ScriptError(message, e.line, e.col, why, self.c.filename)

    def public_const(self, e: Expr, what: str) -> int | float | str:
        if label_of(e.type) is PRIVATE:
            raise self.err_at(e, f"private value used as {what}",
                              f"{what} decides the shape or the steps of the computation, "
                              "which every node sees; it must be public")
        k = _const(e)
        if k is None:
            raise self.err_at(e, f"{what} must be a constant",
                              "the size of every result must be known before the job runs")
        return k

    def values(self, e: Expr, what: str = "") -> ValueType:
        """A column, vector or list of scalars, as one ValueType."""
        t = e.type
        if isinstance(t, ListType | TupleType):
            items = (t.element,) if isinstance(t, ListType) else t.items
            elem = items[0] if items else None
            for other in items[1:]:
                elem = self.c.joined(self.node, elem, other)  # type: ignore[arg-type]
            n = t.length if isinstance(t, ListType) else len(t.items)
            if not isinstance(elem, ValueType) or not elem.scalar or n is None:
                raise self.err(f"{self.name}() needs a column, a vector or a list of numbers")
            t = replace(elem, shape=(n,))
        if not isinstance(t, ValueType):
            raise self.err(f"{self.name}() needs a column or a vector, not {t}")
        if what and not t.kind.numeric:
            self.c.numeric(self.node, e, f"{self.name}()")
        return t

    def n(self, t: ValueType) -> int | None:
        return self.rows if t.shape and t.shape[0] == ROWS else \
            (t.shape[0] if t.shape else 1)  # type: ignore[return-value]

    def result(self, args: tuple[Expr, ...], kwargs: dict[str, Expr], t: ValueType) -> Call:
        return Call(**self.pos, func=self.name, args=args, kwargs=tuple(kwargs.items()), type=t)

    def type(self, args: tuple[Expr, ...], kwargs: dict[str, Expr]) -> Expr:
        handler = {
            "count": self.count, "sum": self.reduce, "mean": self.reduce,
            "variance": self.reduce, "std": self.reduce, "median": self.reduce,
            "min": self.minmax, "max": self.minmax, "percentile": self.reduce,
            "histogram": self.histogram, "group_by": self.group_by, "where": self.where,
            "select": self.where, "cov": self.pair, "corr": self.pair, "ttest": self.pair,
            "chi2": self.chi2, "linreg": self.linreg, "kmeans": self.kmeans,
            "sqrt": self.elementwise, "exp": self.elementwise, "log": self.elementwise,
            "abs": self.elementwise, "len": self.len_,
        }[self.name]
        return handler(args, kwargs)

    def mask(self, b: dict[str, Expr], x: ValueType) -> Label:
        m = b.get("where")
        if m is None:
            return PUBLIC
        t = m.type
        if not (isinstance(t, ValueType) and t.kind.name == "bool" and t.shape == x.shape):
            raise self.err(f"where= must be a boolean of the same shape as the values, not {t}")
        return label_of(t)

    def count(self, args, kwargs) -> Call:
        b = self.bind(args, kwargs, ["x", "where"], 1)
        x = self.values(b["x"])
        label = label_of(b["x"].type).join(self.mask(b, x))
        n = self.n(x)
        if x.kind.name != "bool" and not x.filtered and "where" not in b:
            label = PUBLIC
        return self.result(args, kwargs, ValueType(label, INT, (), 0, n))

    def reduce(self, args, kwargs) -> Call:
        names = ["x", "q", "where"] if self.name == "percentile" else ["x", "where"]
        b = self.bind(args, kwargs, names, len(names) - 1)
        x = self.values(b["x"], "numbers")
        label = label_of(b["x"].type).join(self.mask(b, x))
        n = self.n(x)
        lo, hi = x.lo, x.hi
        frac = max(x.kind.frac_bits, 16)
        if self.name == "percentile":
            q = self.public_const(b["q"], "the percentile q")
            if not isinstance(q, int | float) or not 0 <= q <= 100:
                raise self.err("the percentile q must be a number between 0 and 100")
        if self.name == "sum":
            kind = fixed(x.kind.frac_bits) if x.kind.name == "fixed" else INT
            if None in (lo, hi, n):
                lo = hi = None
            else:
                lo, hi = min(0, n * lo), max(0, n * hi)  # type: ignore[operator]
        elif self.name in ("variance", "std"):
            kind = fixed(frac)
            if None not in (lo, hi):
                spread = (hi - lo) / 2  # type: ignore[operator]
                lo, hi = 0, spread * spread if self.name == "variance" else spread
        else:
            kind = fixed(frac)
        return self.result(args, kwargs, ValueType(label, kind, (), lo, hi))

    def minmax(self, args, kwargs) -> Call:
        if len(args) >= 2 and not kwargs:
            types = [self.c.numeric(self.node, a, f"{self.name}()") for a in args]
            lo = None if any(t.lo is None for t in types) else \
                (min if self.name == "min" else max)(t.lo for t in types)  # type: ignore
            hi = None if any(t.hi is None for t in types) else \
                (min if self.name == "min" else max)(t.hi for t in types)  # type: ignore
            kind = types[0].kind
            for t in types[1:]:
                kind = _join_kind(kind, t.kind)
            label = PRIVATE if any(label_of(t) is PRIVATE for t in types) else PUBLIC
            return self.result(args, kwargs, ValueType(label, kind, self.c.shape(
                self.node, *types), lo, hi, any(t.filtered for t in types)))
        b = self.bind(args, kwargs, ["x", "where"], 1)
        x = self.values(b["x"], "numbers")
        label = label_of(b["x"].type).join(self.mask(b, x))
        return self.result(args, kwargs, ValueType(label, x.kind, (), x.lo, x.hi))

    def bins_of(self, x: ValueType, b: dict[str, Expr]) -> int:
        if x.kind.name in ("category", "bool"):
            if "bins" in b or "range" in b:
                raise self.err("a histogram of a category counts each level; drop bins/range")
            return len(x.kind.levels) if x.kind.name == "category" else 2
        if not x.kind.numeric:
            raise self.err(f"histogram() needs numbers or a category, not {x}")
        bins = b.get("bins")
        if bins is not None and isinstance(bins.type, ListType | TupleType):
            edges = bins.items if isinstance(bins, ListExpr | TupleExpr) else ()
            if not edges:
                raise self.err("histogram edges must be written as a list of constants")
            for e in edges:
                self.public_const(e, "a histogram edge")
            return len(edges) - 1
        k = self.public_const(bins, "the number of bins") if bins is not None else 10
        if not isinstance(k, int) or k < 1:
            raise self.err("the number of bins must be a positive integer")
        if "range" in b:
            rng = b["range"]
            items = rng.items if isinstance(rng, TupleExpr | ListExpr) else ()
            if len(items) != 2:
                raise self.err("range= must be a pair of constants (lo, hi)")
            for e in items:
                self.public_const(e, "a histogram range")
        elif x.lo is None or x.hi is None:
            raise self.err("histogram() needs a range: the schema gives none for these values",
                           "pass range=(lo, hi) with public constants")
        return k

    def histogram(self, args, kwargs) -> Call:
        b = self.bind(args, kwargs, ["x", "bins", "range", "where"], 1)
        x = self.values(b["x"])
        k = self.bins_of(x, b)
        label = label_of(b["x"].type).join(self.mask(b, x))
        return self.result(args, kwargs, ValueType(label, INT, (k,), 0, self.n(x)))

    def group_by(self, args, kwargs) -> Call:
        b = self.bind(args, kwargs, ["key", "values", "agg"], 1)
        key = self.values(b["key"])
        if key.kind.name not in ("category", "bool") or not key.column:
            raise self.err(f"group_by() groups by a category or boolean column, not {key}")
        agg = self.public_const(b["agg"], "the aggregate") if "agg" in b else "count"
        if agg not in ("count", "sum", "mean"):
            raise self.err(f"group_by() aggregates with count, sum or mean, not {agg!r}")
        label = label_of(b["key"].type)
        kind, lo, hi = INT, 0, self.rows
        if agg != "count":
            if "values" not in b:
                raise self.err(f"group_by(..., agg={agg!r}) needs the values to aggregate")
            v = self.values(b["values"], "numbers")
            if v.shape != key.shape:
                raise self.err("group_by() values must be a column like the key")
            label = label.join(label_of(b["values"].type))
            if agg == "mean":
                kind, lo, hi = fixed(max(v.kind.frac_bits, 16)), v.lo, v.hi
            else:
                kind = fixed(v.kind.frac_bits) if v.kind.name == "fixed" else INT
                lo = hi = None
                if None not in (v.lo, v.hi, self.rows):
                    lo, hi = min(0, self.rows * v.lo), max(0, self.rows * v.hi)  # type: ignore
        n = len(key.kind.levels) if key.kind.name == "category" else 2
        return self.result(args, kwargs, ValueType(label, kind, (n,), lo, hi))

    def where(self, args, kwargs) -> Expr:
        if kwargs:
            raise self.err(f"{self.name}() takes positional arguments")
        if len(args) == 3:
            return self.c.where(self.node, args[0], args[1], args[2], self.pos)
        if len(args) == 2 and self.name == "where":
            x, m = self.values(args[0]), args[1].type
            if not x.column or not (isinstance(m, ValueType) and m.kind.name == "bool"
                                    and m.column):
                raise self.err("where(x, mask) keeps the rows of column x where the boolean "
                               "column mask is true")
            label = x.label.join(m.label)
            return self.result(args, kwargs, replace(x, label=label,
                                                     filtered=label is PRIVATE or x.filtered))
        raise self.err(f"{self.name}() takes (cond, a, b)" +
                       (" or (column, mask)" if self.name == "where" else ""))

    def pair(self, args, kwargs) -> Call:
        b = self.bind(args, kwargs, ["x", "y"], 2)
        x, y = self.values(b["x"], "numbers"), self.values(b["y"], "numbers")
        if self.name != "ttest" and x.shape != y.shape:
            raise self.err(f"{self.name}() needs two columns of the same length")
        label = label_of(b["x"].type).join(label_of(b["y"].type))
        lo, hi = (-1, 1) if self.name == "corr" else (None, None)
        return self.result(args, kwargs, ValueType(label, fixed(), (), lo, hi))

    def chi2(self, args, kwargs) -> Call:
        b = self.bind(args, kwargs, ["x", "y"], 2)
        x, y = self.values(b["x"]), self.values(b["y"])
        for t in (x, y):
            if t.kind.name not in ("category", "bool") or not t.column:
                raise self.err(f"chi2() tests two category or boolean columns, not {t}")
        label = label_of(b["x"].type).join(label_of(b["y"].type))
        return self.result(args, kwargs, ValueType(label, fixed(), (), 0, None))

    def columns(self, e: Expr) -> list[ValueType]:
        t = e.type
        items = [t] if isinstance(t, ValueType) else \
            list(t.items) if isinstance(t, TupleType) else \
            [t.element] if isinstance(t, ListType) and t.length else []
        if not items or not all(isinstance(i, ValueType) and i.column and i.kind.numeric
                                for i in items):
            raise self.err(f"{self.name}() needs a numeric column or a list of them")
        return items  # type: ignore[return-value]

    def linreg(self, args, kwargs) -> Call:
        b = self.bind(args, kwargs, ["y", "x"], 2)
        y = self.values(b["y"], "numbers")
        xs = self.columns(b["x"])
        d = len(xs) if not isinstance(b["x"].type, ListType) else b["x"].type.length
        if not y.column:
            raise self.err("linreg() regresses a column on columns")
        label = label_of(b["y"].type).join(label_of(b["x"].type))
        return self.result(args, kwargs, ValueType(label, fixed(), (d + 1,)))  # type: ignore

    def kmeans(self, args, kwargs) -> Call:
        b = self.bind(args, kwargs, ["x", "k", "iters"], 2)
        xs = self.columns(b["x"])
        d = len(xs) if not isinstance(b["x"].type, ListType) else b["x"].type.length
        k = self.public_const(b["k"], "the number of clusters")
        iters = self.public_const(b["iters"], "the number of iterations") if "iters" in b else 10
        if not isinstance(k, int) or k < 1 or not isinstance(iters, int) or iters < 1:
            raise self.err("kmeans() needs positive integers k and iters")
        if any(t.lo is None or t.hi is None for t in xs):
            raise self.err("kmeans() needs the value range of every column",
                           "the first centres are placed within the public ranges; use schema "
                           "columns or range-preserving operations ((data.age - 20) / 50, not "
                           "division by a private std)")
        lo, hi = min(t.lo for t in xs), max(t.hi for t in xs)
        label = label_of(b["x"].type)
        return self.result(args, kwargs, ValueType(label, fixed(), (k, d), lo, hi))  # type: ignore

    def elementwise(self, args, kwargs) -> Call:
        b = self.bind(args, kwargs, ["x"], 1)
        t = self.c.numeric(self.node, b["x"], f"{self.name}()")
        lo, hi = t.lo, t.hi
        kind = t.kind if self.name == "abs" and t.kind.name != "bool" else fixed(
            max(t.kind.frac_bits, 16))
        if self.name == "abs":
            kind = INT if t.kind.name == "bool" else t.kind
            if None not in (lo, hi):
                lo, hi = (0 if lo <= 0 <= hi else min(abs(lo), abs(hi))), max(abs(lo), abs(hi))
        elif self.name == "sqrt":
            lo, hi = (math.sqrt(max(lo, 0)), math.sqrt(max(hi, 0))) if None not in (lo, hi) \
                else (0, None)
        elif self.name == "exp":
            lo, hi = (math.exp(lo), math.exp(hi)) if None not in (lo, hi) and hi < 40 \
                else (0, None)
        else:
            lo, hi = (math.log(lo), math.log(hi)) if None not in (lo, hi) and lo > 0 \
                else (None, None)
        return self.result(args, kwargs, replace(t, kind=kind, lo=lo, hi=hi))

    def len_(self, args, kwargs) -> Call:
        b = self.bind(args, kwargs, ["x"], 1)
        t = b["x"].type
        n: int | None
        if isinstance(t, ListType):
            n = t.length
        elif isinstance(t, TupleType | DictType):
            n = len(t.items) if isinstance(t, TupleType) else len(t.entries)
        elif isinstance(t, ValueType) and t.shape:
            if t.filtered:
                raise self.err("the length of a filtered column is private",
                               "count its rows with count(x), which gives a private count")
            n = self.n(t)
        else:
            raise self.err(f"len() of {t}")
        return self.result(args, kwargs, ValueType(PUBLIC, INT, (), n if n is not None else 0, n))


_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
           ast.Mod: "%", ast.Pow: "**"}
_CMPOPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def _as_load(t: ast.expr) -> ast.expr:
    if isinstance(t, ast.Name):
        return ast.Name(id=t.id, ctx=ast.Load())
    if isinstance(t, ast.Subscript):
        return ast.Subscript(value=_as_load(t.value), slice=t.slice, ctx=ast.Load())
    return t


def _statements(stmts: list[ast.stmt]):
    """Every statement, descending into if blocks (what an oblivious branch may contain)."""
    for s in stmts:
        yield s
        if isinstance(s, ast.If):
            yield from _statements(s.body + s.orelse)


def _describe(s: ast.stmt) -> str:
    if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) \
            and isinstance(s.value.func, ast.Name):
        return f"a call to {s.value.func.id}()"
    return {ast.For: "a for loop", ast.While: "a while loop", ast.Return: "a return",
            ast.Break: "a break", ast.Continue: "a continue", ast.Assert: "an assert"}.get(
        type(s), f"a {type(s).__name__} statement")


def _assigned_in(name: str, loop: ast.For) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
               for n in ast.walk(loop))


def _always_returns(stmts: list[ast.stmt]) -> bool:
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, ast.Return):
        return True
    if isinstance(last, ast.If):
        return _always_returns(last.body) and _always_returns(last.orelse)
    return False
