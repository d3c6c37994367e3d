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
import dataclasses
from dataclasses import replace
from pathlib import Path

from .expressions import STATEMENTS, Binding, Context, Expressions
from .lattice import Mismatch, broadcast_shapes, const_value, join, possible_keys, structure_differs
from .library import LIBRARY
from .schema import Schema
from .syntax import (
    PRIVATE,
    PUBLIC,
    ROWS,
    Assert,
    Assign,
    Break,
    Continue,
    DictType,
    Expr,
    For,
    FuncCall,
    Function,
    If,
    Label,
    ListType,
    NoneType,
    Output,
    Param,
    Print,
    Return,
    Reveal,
    Script,
    Select,
    Stmt,
    Target,
    TupleType,
    Type,
    ValueType,
    While,
    label_of,
    parse_script,
    raise_label,
)

_MAX_LOOP_PASSES = 8


def check(source: str, schema: Schema, filename: str = "<script>") -> Script:
    """Type `source` against `schema` and return its typed AST, or raise ScriptError."""
    tree = parse_script(source, filename)
    return _Checker(schema, filename, tree).script(tree)


def check_file(path: str | Path, schema: Schema) -> Script:
    return check(Path(path).read_text(), schema, str(path))


class _Checker(Expressions):
    """The statement half of the checker: scopes, control flow, leaks, functions, outputs."""

    def __init__(self, schema: Schema, filename: str, tree: ast.Module) -> None:
        self.schema = schema
        self.filename = filename
        self.defs = {s.name: s for s in tree.body if isinstance(s, ast.FunctionDef)}
        self.defined: set[str] = set()
        self.specs: dict[tuple, Function] = {}
        self.outputs: list[Output] = []

    def script(self, tree: ast.Module) -> Script:
        ctx = Context(env={})
        body = self.block(tree.body, ctx)
        called = {fn.name for fn in self.specs.values()}
        for name, fdef in self.defs.items():
            if name not in called:
                raise self.err(fdef, f"function {name} is defined but never called",
                               "functions are typed at their calls, so an unused one would go "
                               "unchecked; remove it or call it")
        return Script(filename=self.filename, schema=self.schema.name, body=body,
                      functions=_reachable(body), outputs=tuple(self.outputs))

    def block(self, stmts: list[ast.stmt], ctx: Context) -> tuple[Stmt, ...]:
        out: list[Stmt] = []
        for i, s in enumerate(stmts):
            if i == 0 and isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) \
                    and isinstance(s.value.value, str):
                continue  # a docstring
            out += self.stmt(s, ctx)
        return tuple(out)

    def stmt(self, s: ast.stmt, ctx: Context) -> list[Stmt]:
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
            ctx.exits.append(dict(ctx.env))  # type: ignore[union-attr]
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

    def store(self, t: ast.expr, vtype: Type, ctx: Context, declared: Label | None) -> Target:
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

    def bind(self, t: ast.Name, vtype: Type, ctx: Context, declared: Label | None) -> None:
        name = t.id
        if _reserved(name, self.defs):
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
        ctx.env[name] = Binding(vtype, declared, t.lineno)

    def store_item(self, t: ast.Subscript, vtype: Type, ctx: Context, pos: dict) -> Target:
        if not isinstance(t.value, ast.Name) or t.value.id not in ctx.env:
            raise self.err(t, "assign items only of a list or dict held in a variable")
        b = self.lookup(t.value, ctx)
        index = self.expr(t.slice, ctx)
        self.public_index(index, t.slice, b.type)
        cur = b.type
        if isinstance(cur, DictType):
            keys = possible_keys(index)
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
            new = replace(self.joined(t, item, vtype), shape=cur.shape)
        else:
            raise self.err(t, f"cannot assign items of {cur}")
        self.bind(t.value, new, ctx, None)
        return Target(**pos, container=t.value.id, index=index)

    def merge(self, node: ast.AST, a: dict[str, Binding], b: dict[str, Binding],
              widen: bool = False) -> dict[str, Binding]:
        out = {}
        for name in a.keys() | b.keys():
            x, y = a.get(name), b.get(name)
            if x is None or y is None:
                z = x or y
                out[name] = replace(z, maybe=True)
                continue
            try:
                t = join(x.type, y.type, widen=widen)
            except Mismatch as exc:
                raise self.err(node, f"{name!r} holds {exc} on different paths",
                               "a name keeps one kind and shape: use two names, or start it "
                               "with the final shape (a column accumulator as 0 * data.age)"
                               ) from exc
            out[name] = Binding(t, x.declared or y.declared, x.line, x.maybe or y.maybe)
        return out

    def if_(self, s: ast.If, ctx: Context) -> Stmt:
        pos = {"line": s.lineno, "col": s.col_offset + 1}
        cond = self.condition(s.test, ctx)
        if label_of(cond.type) is PRIVATE:
            return self.select(s, cond, ctx, pos)
        if not cond.type.scalar:
            raise self.err(s.test, "an if needs a single value; this condition is a column",
                           "use where(cond, a, b) to choose element by element")
        then, other = ctx.child(), ctx.child()
        body = self.block(s.body, then)
        orelse = self.block(s.orelse, other)
        known = const_value(cond)
        if known is None:
            ctx.env = self.merge(s, then.env, other.env)
        else:  # both branches are checked, only the one that will run gives the types after
            ctx.env = then.env if known else other.env
        return If(**pos, cond=cond, body=body, orelse=orelse)

    def select(self, s: ast.If, cond: Expr, ctx: Context, pos: dict) -> Select:
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
        cshape = cond.type.shape
        for name in assigned:
            x, y = then.env.get(name), other.env.get(name)
            if x is None or y is None or x.maybe or y.maybe:
                raise self.err(s, f"{name!r} is assigned in only one branch of an if on a "
                                  "private condition and has no value before it",
                               "give it a value before the if, so that the other branch can "
                               "keep that value")
            why = structure_differs(x.type, y.type)
            if why:
                raise self.err(s.test, "if on a private condition cannot be made oblivious: "
                                       f"{name!r} {why}",
                               "a Select can choose between values, not between list lengths, "
                               "dict keys or texts; give both branches the same structure")
            t = raise_label(self.joined(s, x.type, y.type, broadcast=True), PRIVATE)
            if isinstance(t, ValueType):
                try:
                    t = replace(t, shape=broadcast_shapes(t.shape, cshape))
                except Mismatch as exc:
                    raise self.err(s.test, f"the condition and {name!r}: {exc}") from exc
            ctx.env[name] = Binding(t, x.declared, x.line)
            outputs.append((name, t))
        return Select(**pos, cond=cond, body=body, orelse=orelse, outputs=tuple(outputs))

    def loop(self, node: ast.stmt, ctx: Context, head) -> tuple:
        """Type a loop body until the variables' types stop changing; returns head's results."""
        entry = dict(ctx.env)
        env = dict(entry)
        for _ in range(_MAX_LOOP_PASSES):
            inner = ctx.child(loops=ctx.loops + 1, exits=[])
            inner.env = dict(env)
            result = head(inner)
            new = self.merge(node, env, inner.env, widen=True)
            for exit_env in inner.exits:  # what break and continue carry out of the body
                new = self.merge(node, new, exit_env, widen=True)
            new = {k: (replace(v, maybe=True) if k not in entry else v) for k, v in new.items()}
            if new == env:
                break
            env = new
        else:
            raise self.err(node, "the types of this loop's variables do not settle")
        ctx.env = env
        return result

    def for_(self, s: ast.For, ctx: Context) -> For:
        if s.orelse:
            raise self.err(s, "for ... else is not part of the language")
        it, elem, surely = self.iterable(s.iter, ctx)

        def head(inner: Context) -> tuple:
            target = self.store(s.target, elem, inner, None)
            return target, self.block(s.body, inner)

        target, body = self.loop(s, ctx, head)
        if surely and not _breaks(s.body):
            ctx.env = {k: replace(v, maybe=False) if _assigned_in(k, s) else v
                       for k, v in ctx.env.items()}
        return For(line=s.lineno, col=s.col_offset + 1, target=target, iter=it, body=body)

    def while_(self, s: ast.While, ctx: Context) -> While:
        if s.orelse:
            raise self.err(s, "while ... else is not part of the language")

        def head(inner: Context) -> tuple:
            cond = self.condition(s.test, inner)
            if label_of(cond.type) is PRIVATE:
                raise self.err(s.test, "while condition is private",
                               "how many times a loop runs is visible to every node; bound the "
                               "loop with a public count and use where(...) inside it")
            if not cond.type.scalar:
                raise self.err(s.test, "a while condition must be a single value")
            return cond, self.block(s.body, inner)

        cond, body = self.loop(s, ctx, head)
        return While(line=s.lineno, col=s.col_offset + 1, cond=cond, body=body)

    def return_(self, s: ast.Return, ctx: Context) -> Return:
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
        ctx.returns.append(t)
        return Return(**pos, value=value)

    def assertion(self, s: ast.Assert, ctx: Context) -> Assert:
        cond = self.condition(s.test, ctx)
        if label_of(cond.type) is PRIVATE:
            raise self.err(s.test, "assert on a private condition",
                           "whether the assertion fails would tell every node something about "
                           "private data; check it with where(...) or reveal a count instead")
        msg = self.expr(s.msg, ctx) if s.msg is not None else None
        if msg is not None and label_of(msg.type) is PRIVATE:
            raise self.err(s.msg, "assert message contains a private value",
                           "an error message is shown to every node")
        return Assert(line=s.lineno, col=s.col_offset + 1, cond=cond, message=msg)

    def reveal(self, call: ast.Call, ctx: Context) -> Reveal:
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
            name = const_value(self.expr(args[1], ctx))
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

    def print_(self, call: ast.Call, ctx: Context) -> Print:
        if call.keywords:
            raise self.err(call, "print() takes only positional arguments")
        args = tuple(self.expr(a, ctx) for a in call.args)
        for a, n in zip(args, call.args, strict=True):
            if label_of(a.type) is PRIVATE:
                raise self.err(n, "print() of a private value",
                               "print shows its arguments to every node; send results to the "
                               "data owner with reveal(x)")
        return Print(line=call.lineno, col=call.col_offset + 1, args=args)

    def call_function(self, node: ast.Call, ctx: Context, pos: dict) -> FuncCall:
        name = node.func.id
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
        for a in fdef.args.args:
            if _reserved(a.arg, self.defs):
                raise self.err(a, f"{a.arg!r} is a reserved name", "choose another parameter name")
        env = {p.name: Binding(p.type, p.declared, fdef.lineno) for p in params}
        fctx = Context(env=env, function=fdef.name, declared_return=declared_return, returns=[])
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


def _breaks(stmts: list[ast.stmt]) -> bool:
    """Whether a loop body has a break of its own (not of a loop nested in it)."""
    for s in stmts:
        if isinstance(s, ast.Break):
            return True
        if isinstance(s, ast.If) and _breaks(s.body + s.orelse):
            return True
    return False


def _always_returns(stmts: list[ast.stmt]) -> bool:
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, ast.Return):
        return True
    if isinstance(last, ast.If):
        return _always_returns(last.body) and _always_returns(last.orelse)
    return False


def _reserved(name: str, defs: dict[str, ast.FunctionDef]) -> bool:
    """Names a script may not rebind: the dataset, the library, statements, its functions."""
    return name in ("data", "private", "public") or name in LIBRARY or name in STATEMENTS \
        or name in defs


def _reachable(body: tuple[Stmt, ...]) -> tuple[Function, ...]:
    """The specialisations the final typed AST calls (loop passes may have made others)."""
    found: dict[int, Function] = {}

    def walk(node: object) -> None:
        if isinstance(node, tuple):
            for item in node:
                walk(item)
        elif isinstance(node, FuncCall):
            if id(node.func) not in found:
                found[id(node.func)] = node.func
                walk(node.func.body)
            walk(node.args)
        elif dataclasses.is_dataclass(node) and not isinstance(node, type):
            for f in dataclasses.fields(node):
                if f.name != "type":
                    walk(getattr(node, f.name))

    walk(body)
    return tuple(found.values())
