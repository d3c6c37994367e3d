"""The script language's syntax: the Python subset, its types, and the typed AST the checker builds.

Scripts are parsed with `ast` and never executed by Python. `parse_script`
refuses every construct outside the subset (imports, classes, exceptions,
comprehensions other than one-generator list comprehensions, recursion, ...)
before any typing happens, so the checker sees only what it can type.

The typed AST is what the compiler consumes. Every expression node carries a
`type`: for values a `ValueType` with

- `label`: PUBLIC (the nodes may see it) or PRIVATE (it stays shared);
- `kind`: int, fixed (with fractional bits), bool, category (with levels), or
  str (public texts only: column names, levels, reveal names);
- `shape`: () a scalar, (ROWS,) a column of the table's row count, (n,) or
  (k, d) a vector or matrix of a size fixed by the program;
- `lo`, `hi`: a bound on the values when the schema and the operations give one.

Containers (lists, tuples, dicts) have public structure: their length and keys
are known to every node; only their elements may be private.
"""

from __future__ import annotations

import ast
import enum
import threading
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import ScriptError

ROWS = "rows"
"""The symbolic dimension of a column: the table's row count, public but known only at run time."""


class Label(enum.Enum):
    PUBLIC = "public"
    PRIVATE = "private"

    def join(self, other: Label) -> Label:
        return Label.PRIVATE if Label.PRIVATE in (self, other) else Label.PUBLIC


PUBLIC, PRIVATE = Label.PUBLIC, Label.PRIVATE


@dataclass(frozen=True)
class Kind:
    """What a value is: int, fixed (frac_bits), bool, category (levels), str (possible texts)."""

    name: str
    frac_bits: int = 0
    levels: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.name == "fixed":
            return f"fixed{self.frac_bits}"
        if self.name == "category":
            return f"category{list(self.levels)}"
        return self.name

    @property
    def numeric(self) -> bool:
        return self.name in ("int", "fixed", "bool")


INT, BOOL, STR = Kind("int"), Kind("bool"), Kind("str")


def fixed(frac_bits: int = 16) -> Kind:
    return Kind("fixed", frac_bits)


@dataclass(frozen=True)
class Axis:
    """The public names along one dimension of a result: a group-by's levels, a histogram's
    bins, a regression's terms. `name` says what they are (the key column, "term")."""

    name: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class ValueType:
    """A scalar, column, vector or matrix of one kind, with its label and known value range."""

    label: Label
    kind: Kind
    shape: tuple[int | str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    filtered: bool = False
    """A column restricted by a private row mask (from `where(x, mask)`): its length is private."""
    axes: tuple[Axis, ...] = ()
    """Names along every dimension, or () where the program does not say them. They come
    from the schema and the script alone (public), so the owner labels a result without
    trusting anything a node sends."""

    def __post_init__(self) -> None:
        # Why drop rather than fail: an operation that reshapes a value (indexing, a loop
        # over it, broadcasting) keeps the other fields by `replace`; names that no longer
        # fit its dimensions would sit on the wrong numbers, so they go.
        if self.axes and (len(self.axes) != len(self.shape) or any(
                len(a.labels) != d for a, d in zip(self.axes, self.shape, strict=True))):
            object.__setattr__(self, "axes", ())

    def __str__(self) -> str:
        shape = {(): "scalar", (ROWS,): "column"}.get(self.shape, f"shape {self.shape}")
        rng = f" in [{self.lo:g}, {self.hi:g}]" if self.lo is not None and self.hi is not None \
            else ""
        return f"{self.label.value} {self.kind} {shape}{' (filtered)' if self.filtered else ''}" \
               f"{rng}"

    @property
    def scalar(self) -> bool:
        return self.shape == ()

    @property
    def column(self) -> bool:
        return self.shape == (ROWS,)

    def with_label(self, label: Label) -> ValueType:
        return replace(self, label=self.label.join(label))


@dataclass(frozen=True)
class ListType:
    """A list of public length (None: known only at run time) whose elements share one type."""

    element: Type
    length: int | None

    def __str__(self) -> str:
        return f"list[{self.element}] of length {'?' if self.length is None else self.length}"


@dataclass(frozen=True)
class TupleType:
    items: tuple[Type, ...]

    def __str__(self) -> str:
        return "tuple(" + ", ".join(str(t) for t in self.items) + ")"


@dataclass(frozen=True)
class DictType:
    """A dict with public constant keys, each with its own value type."""

    entries: tuple[tuple[str | int, Type], ...]

    def get(self, key: str | int) -> Type | None:
        return dict(self.entries).get(key)

    def __str__(self) -> str:
        return "dict{" + ", ".join(f"{k!r}: {t}" for k, t in self.entries) + "}"


@dataclass(frozen=True)
class NoneType:
    """What reveal(), print() and functions without return give: not a value."""

    def __str__(self) -> str:
        return "nothing"


Type = ValueType | ListType | TupleType | DictType | NoneType


def label_of(t: Type) -> Label:
    """PRIVATE if any part of the value is private: what leak rules test."""
    if isinstance(t, ValueType):
        return PRIVATE if t.filtered else t.label
    if isinstance(t, ListType):
        return label_of(t.element)
    if isinstance(t, TupleType):
        return PRIVATE if any(label_of(i) is PRIVATE for i in t.items) else PUBLIC
    if isinstance(t, DictType):
        return PRIVATE if any(label_of(v) is PRIVATE for _, v in t.entries) else PUBLIC
    return PUBLIC


def raise_label(t: Type, label: Label) -> Type:
    """The same type with every element at least `label` (an assignment under a private if)."""
    if label is PUBLIC:
        return t
    if isinstance(t, ValueType):
        if t.kind.name == "str":
            return t
        return t.with_label(label)
    if isinstance(t, ListType):
        return ListType(raise_label(t.element, label), t.length)
    if isinstance(t, TupleType):
        return TupleType(tuple(raise_label(i, label) for i in t.items))
    if isinstance(t, DictType):
        return DictType(tuple((k, raise_label(v, label)) for k, v in t.entries))
    return t


# ---------------------------------------------------------------- typed AST


@dataclass(frozen=True, kw_only=True)
class Node:
    line: int
    col: int


@dataclass(frozen=True, kw_only=True)
class Expr(Node):
    type: Type


@dataclass(frozen=True, kw_only=True)
class Const(Expr):
    value: int | float | bool | str


@dataclass(frozen=True, kw_only=True)
class Var(Expr):
    name: str


@dataclass(frozen=True, kw_only=True)
class ColumnRef(Expr):
    """data.<name> or data[key]; `names` lists every column the public key may select."""

    key: Expr
    names: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Rows(Expr):
    """len(data) or data.rows: the public row count."""


@dataclass(frozen=True, kw_only=True)
class BinOp(Expr):
    op: str  # + - * / // % **
    left: Expr
    right: Expr


@dataclass(frozen=True, kw_only=True)
class UnaryOp(Expr):
    op: str  # - + not
    operand: Expr


@dataclass(frozen=True, kw_only=True)
class BoolOp(Expr):
    """`and`/`or`; on private operands both sides are always evaluated (no short circuit)."""

    op: str
    values: tuple[Expr, ...]


@dataclass(frozen=True, kw_only=True)
class Compare(Expr):
    """One comparison; Python's chains a < b < c arrive as BoolOp('and') of Compares."""

    op: str  # == != < <= > >=
    left: Expr
    right: Expr


@dataclass(frozen=True, kw_only=True)
class Where(Expr):
    """Oblivious element-wise selection cond ? a : b (where(), select(), or `a if c else b`)."""

    cond: Expr
    then: Expr
    orelse: Expr


@dataclass(frozen=True, kw_only=True)
class IfExp(Expr):
    """`a if c else b` with a public condition: only the chosen side is evaluated."""

    cond: Expr
    then: Expr
    orelse: Expr


@dataclass(frozen=True, kw_only=True)
class Call(Expr):
    """A call into the analytics library; keyword arguments kept by name."""

    func: str
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, Expr], ...] = ()


@dataclass(frozen=True, kw_only=True)
class FuncCall(Expr):
    """A call of a script function, bound to the body checked for these argument types."""

    func: Function
    args: tuple[Expr, ...]


@dataclass(frozen=True, kw_only=True)
class Index(Expr):
    value: Expr
    index: Expr


@dataclass(frozen=True, kw_only=True)
class Slice(Expr):
    value: Expr
    lower: Expr | None
    upper: Expr | None
    step: Expr | None


@dataclass(frozen=True, kw_only=True)
class Range(Expr):
    """range(start, stop, step) with public integer bounds: a public list."""

    start: Expr
    stop: Expr
    step: Expr


@dataclass(frozen=True, kw_only=True)
class ListExpr(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True, kw_only=True)
class Repeat(Expr):
    """[a, b] * n with a public n: a list of public length."""

    items: tuple[Expr, ...]
    times: Expr


@dataclass(frozen=True, kw_only=True)
class TupleExpr(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True, kw_only=True)
class DictExpr(Expr):
    keys: tuple[str | int, ...]
    values: tuple[Expr, ...]


@dataclass(frozen=True, kw_only=True)
class ListComp(Expr):
    """[element for target in iter]: one generator over a public-length iterable."""

    target: Target
    iter: Expr
    element: Expr


@dataclass(frozen=True, kw_only=True)
class Target(Node):
    """Where an assignment stores: a name, a tuple of targets, or container[index]."""

    name: str | None = None
    items: tuple[Target, ...] = ()
    container: str | None = None
    index: Expr | None = None


@dataclass(frozen=True, kw_only=True)
class Stmt(Node):
    pass


@dataclass(frozen=True, kw_only=True)
class Assign(Stmt):
    """target = value; `declared` is the annotation (x: private = ...) if any."""

    target: Target
    value: Expr
    declared: Label | None = None


@dataclass(frozen=True, kw_only=True)
class If(Stmt):
    """An if on a public condition: only one branch runs."""

    cond: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]


@dataclass(frozen=True, kw_only=True)
class Select(Stmt):
    """An if on a private condition, made oblivious.

    Both branches run; they contain only assignments (and nested ifs of
    assignments). Afterwards each name in `outputs` holds
    where(cond, value after body, value after orelse), where a branch that does
    not assign a name leaves the value it had before the if. `outputs` gives
    each name's merged (private) type.
    """

    cond: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]
    outputs: tuple[tuple[str, Type], ...]


@dataclass(frozen=True, kw_only=True)
class For(Stmt):
    target: Target
    iter: Expr
    body: tuple[Stmt, ...]


@dataclass(frozen=True, kw_only=True)
class While(Stmt):
    cond: Expr
    body: tuple[Stmt, ...]


@dataclass(frozen=True, kw_only=True)
class Break(Stmt):
    pass


@dataclass(frozen=True, kw_only=True)
class Continue(Stmt):
    pass


@dataclass(frozen=True, kw_only=True)
class Return(Stmt):
    value: Expr | None


@dataclass(frozen=True, kw_only=True)
class Reveal(Stmt):
    """The one way out: `value` goes, encrypted, to the data owner under `name`."""

    value: Expr
    name: str


@dataclass(frozen=True, kw_only=True)
class Print(Stmt):
    """print() of public values only: what every node may see anyway."""

    args: tuple[Expr, ...]


@dataclass(frozen=True, kw_only=True)
class Assert(Stmt):
    """assert on a public condition: a failure aborts the job for everyone, which is public."""

    cond: Expr
    message: Expr | None


@dataclass(frozen=True, kw_only=True)
class Param:
    name: str
    declared: Label | None
    type: Type


@dataclass(frozen=True, kw_only=True)
class Function(Node):
    """One script function checked for one tuple of argument types (a specialisation)."""

    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...] = field(compare=False)
    returns: Type
    declared_return: Label | None


@dataclass(frozen=True, kw_only=True)
class Output:
    name: str
    type: Type
    line: int


@dataclass(frozen=True, kw_only=True)
class Script:
    """A checked script: its statements, its functions' specialisations, and its outputs."""

    filename: str
    schema: str
    body: tuple[Stmt, ...]
    functions: tuple[Function, ...]
    outputs: tuple[Output, ...]


# ---------------------------------------------------------------- the subset

_REFUSED: dict[type, tuple[str, str]] = {
    ast.Import: ("import is not allowed",
                 "scripts run inside the MPC engine, not in Python; everything they can use is "
                 "built in (see the analytics library in docs/language.md)"),
    ast.ImportFrom: ("import is not allowed",
                     "scripts run inside the MPC engine, not in Python; everything they can use "
                     "is built in (see the analytics library in docs/language.md)"),
    ast.ClassDef: ("class definitions are not part of the language",
                   "use functions, lists, tuples and dicts"),
    ast.Lambda: ("lambda is not part of the language", "define a function with def"),
    ast.AsyncFunctionDef: ("async functions are not part of the language", ""),
    ast.Await: ("await is not part of the language", ""),
    ast.AsyncFor: ("async for is not part of the language", ""),
    ast.AsyncWith: ("async with is not part of the language", ""),
    ast.Yield: ("generators are not part of the language", "return a list instead"),
    ast.YieldFrom: ("generators are not part of the language", "return a list instead"),
    ast.Global: ("global is not part of the language",
                 "functions see only their parameters; pass values as arguments"),
    ast.Nonlocal: ("nonlocal is not part of the language", ""),
    ast.Try: ("try/except is not part of the language",
              "an exception raised by a private value would tell everyone something about it; "
              "errors in a job abort it"),
    ast.With: ("with is not part of the language", "scripts cannot open files or resources"),
    ast.Delete: ("del is not part of the language", "assign a new value instead"),
    ast.Set: ("sets are not part of the language",
              "a set's size would depend on the values in it; use a list"),
    ast.SetComp: ("set comprehensions are not part of the language", "use a list"),
    ast.DictComp: ("dict comprehensions are not part of the language",
                   "write the dict with constant keys"),
    ast.GeneratorExp: ("generator expressions are not part of the language",
                       "use a list comprehension [ ... for x in ... ]"),
    ast.NamedExpr: ("the walrus operator := is not part of the language",
                    "assign in a statement"),
    ast.Starred: ("starred expressions are not part of the language", "pass arguments one by one"),
    ast.JoinedStr: ("f-strings are not part of the language",
                    "print public values as separate arguments: print(\"n =\", n)"),
    ast.Match: ("match is not part of the language", "use if/elif/else"),
    ast.Raise: ("raise is not part of the language",
                "use assert with a public condition to stop a job"),
}
_FORBIDDEN_CALLS = {"exec", "eval", "compile", "__import__", "open", "getattr", "setattr",
                    "delattr", "globals", "locals", "vars", "input", "breakpoint"}


def refuse(node: ast.AST, message: str, explanation: str = "",
           filename: str = "<script>") -> ScriptError:
    return ScriptError(message, getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1,
                       explanation, filename)


_PARSING = threading.Lock()
"""One `ast.parse` at a time in a process: CPython 3.11's parser keeps its recursion depth
in per-interpreter state, and parses in two threads at once (the engines of
`lang.simulation.thread_quorum` each check the script) can fail with "SystemError: AST
constructor recursion depth mismatch" (seen once in test_lang_bounds_hold)."""


def parse_script(source: str, filename: str = "<script>") -> ast.Module:
    """Parse a script and refuse anything outside the language, before any typing.

    Steps: 1. parse with `ast` (Python syntax errors keep their position);
    2. refuse constructs the language does not have; 3. refuse recursion
    between top-level functions, since the compiler unrolls every call.
    """
    try:
        with _PARSING:
            tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise ScriptError(f"syntax error: {exc.msg}", exc.lineno or 1, exc.offset or 1,
                          "the script must be valid Python syntax", filename) from exc
    for node in ast.walk(tree):
        _check_node(node, filename)
    for stmt in tree.body:
        for inner in ast.walk(stmt):
            if inner is not stmt and isinstance(inner, ast.FunctionDef):
                raise refuse(inner, "functions must be defined at the top level of the script",
                             "move the def out of the block it is in", filename)
    _check_recursion(tree, filename)
    return tree


def _check_node(node: ast.AST, filename: str) -> None:
    if type(node) in _REFUSED:
        msg, why = _REFUSED[type(node)]
        raise refuse(node, msg, why, filename)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in _FORBIDDEN_CALLS:
        raise refuse(node, f"{node.func.id}() is not allowed",
                     "scripts cannot run code they build at run time, open files or inspect "
                     "names; everything the script does must be visible to the checker", filename)
    if isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name)
                                                and node.value.id == "data"):
        raise refuse(node, "attribute access is limited to data.<column>",
                     "methods and attributes of values are not part of the language; use the "
                     "library functions (mean(x), not x.mean())", filename)
    if isinstance(node, ast.FunctionDef):
        args = node.args
        if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs or args.defaults:
            raise refuse(node, f"function {node.name}: only plain parameters are allowed",
                         "no *args, **kwargs, keyword-only parameters or defaults", filename)
        if node.decorator_list:
            raise refuse(node.decorator_list[0], "decorators are not part of the language", "",
                         filename)
    if isinstance(node, ast.comprehension) and (node.ifs or node.is_async):
        raise refuse(node.target, "list comprehensions cannot filter with if",
                     "a filtered list would have a length that depends on the values; use "
                     "where(cond, a, b) in the element instead", filename)
    if isinstance(node, ast.ListComp) and len(node.generators) != 1:
        raise refuse(node, "list comprehensions take one `for`", "nest two comprehensions",
                     filename)


def _check_recursion(tree: ast.Module, filename: str) -> None:
    defs = {s.name: s for s in tree.body if isinstance(s, ast.FunctionDef)}
    calls: dict[str, list[ast.Call]] = {
        name: [c for c in ast.walk(d) if isinstance(c, ast.Call)
               and isinstance(c.func, ast.Name) and c.func.id in defs]
        for name, d in defs.items()}

    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in done:
            return
        for call in calls[name]:
            callee = call.func.id
            if callee in path:
                cycle = " -> ".join([*path[path.index(callee):], callee])
                raise refuse(call, f"recursion is not allowed ({cycle})",
                             "the compiler unrolls every call into a program of fixed size; "
                             "write the repetition as a for loop over range(public bound)",
                             filename)
            visit(callee, [*path, callee])
        done.add(name)

    for name in defs:
        visit(name, [name])


def nodes_of(x: Any, kind: type | tuple[type, ...]) -> list[Any]:
    """Every AST node of `kind` under x (x included), in pre-order: through every field of
    a node or a dataclass (a Script, a type), and every item of a tuple or list."""
    found: list[Any] = []

    def walk(v: Any) -> None:
        if isinstance(v, kind):
            found.append(v)
        if hasattr(v, "__dataclass_fields__"):
            for name in v.__dataclass_fields__:
                walk(getattr(v, name))
        elif isinstance(v, tuple | list):
            for item in v:
                walk(item)

    walk(x)
    return found


def reveals_and_assignments(script: Script) -> tuple[list[Reveal], dict[str, list[Assign]]]:
    """The script's reveals in order, and by name every assignment of that name as a whole
    (`target.name`: an item's `v[i] = ...` names a container, and a tuple target is not
    followed), from its body and its functions' (nested blocks included, in pre-order): what
    the owner reads of its own checked script to know what each revealed value came from
    (`pvalues`, `advice`), never what a node says."""
    reveals: list[Reveal] = []
    assigned: dict[str, list[Assign]] = {}

    def walk(items: tuple[Stmt, ...]) -> None:
        for s in items:
            if isinstance(s, Reveal):
                reveals.append(s)
            elif isinstance(s, Assign) and s.target.name:
                assigned.setdefault(s.target.name, []).append(s)
            for name in ("body", "orelse"):
                walk(getattr(s, name, ()) or ())

    walk(script.body)
    for fn in script.functions:
        walk(fn.body)
    return reveals, assigned


def format_tree(script: Script) -> str:
    """The typed AST as indented text, one node a line with its position and type (for reading)."""
    lines: list[str] = []

    def visit(node: object, depth: int, role: str) -> None:
        if isinstance(node, tuple):
            for item in node:
                visit(item, depth, role)
            return
        if not isinstance(node, Node):
            return
        plain = [f"{f.name}={getattr(node, f.name)!r}" for f in fields(node)
                 if f.name not in ("line", "col", "type", "name" if isinstance(node, Function)
                                   else "")
                 and isinstance(getattr(node, f.name), str | int | float | bool)]
        if isinstance(node, FuncCall):
            plain.append(f"func={node.func.name}")
        if isinstance(node, Function):
            plain = [f"name={node.name!r}", "params=" + ", ".join(
                f"{p.name}: {p.type}" for p in node.params), f"returns={node.returns}"]
        typed = f" : {node.type}" if isinstance(node, Expr) else ""
        lines.append(f"{'  ' * depth}{role}{type(node).__name__}({', '.join(plain)}) "
                     f"@{node.line}:{node.col}{typed}")
        if isinstance(node, Select):
            for name, t in node.outputs:
                lines.append(f"{'  ' * (depth + 1)}output {name} : {t}")
        for f in fields(node):
            value = getattr(node, f.name)
            if f.name != "func" and isinstance(value, Node | tuple):
                visit(value, depth + 1, f"{f.name}: ")

    for fn in script.functions:
        visit(fn, 0, "")
    for stmt in script.body:
        visit(stmt, 0, "")
    return "\n".join(lines)
