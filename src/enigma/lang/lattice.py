"""The type lattice of the checker: joins of labels, kinds, shapes and ranges, and constants.

Labels join to PRIVATE if either is; kinds widen (bool < int < fixed, texts
gather their possible values); shapes must agree or broadcast a scalar; value
ranges are unioned (or dropped when widening a loop). A public scalar whose
range is one point is a constant the checker knows.
"""

from __future__ import annotations

from .schema import Column
from .syntax import (
    BOOL,
    INT,
    PRIVATE,
    PUBLIC,
    ROWS,
    Axis,
    DictType,
    Expr,
    Kind,
    ListType,
    TupleType,
    Type,
    ValueType,
    fixed,
)


class Mismatch(Exception):
    """Two types with no common type; the checker turns it into a ScriptError at its node."""


def column_type(col: Column) -> ValueType:
    """What `data.<col>` is: the schema's label and kind, a column shape, the schema's range."""
    label = PRIVATE if col.private else PUBLIC
    kind = {"int": INT, "bool": BOOL, "fixed": fixed(col.frac_bits)}.get(col.kind)
    if kind is None:
        kind = Kind("category", levels=col.levels)
    lo, hi = (0, 1) if col.kind == "bool" else (col.lo, col.hi)
    return ValueType(label, kind, (ROWS,), lo, hi)


def join_kind(a: Kind, b: Kind) -> Kind:
    if a == b:
        return a
    if a.name == b.name == "str":
        return Kind("str", levels=tuple(sorted(set(a.levels) | set(b.levels))))
    if {a.name, b.name} <= {"int", "bool"}:
        return INT
    if a.numeric and b.numeric:
        return fixed(max(a.frac_bits, b.frac_bits, 16 if "fixed" not in (a.name, b.name) else 0))
    raise Mismatch(f"a {a} and a {b}")


def shape_name(shape: tuple) -> str:
    if not shape:
        return "a scalar"
    if shape == (ROWS,):
        return "a column"
    return "a vector of " + " x ".join(str(d) for d in shape)


def broadcast_shapes(a: tuple, b: tuple) -> tuple:
    if a == b or not b:
        return a
    if not a:
        return b
    raise Mismatch(f"{shape_name(a)} and {shape_name(b)}, which do not match")


def common_axes(shape: tuple, *types: ValueType) -> tuple[Axis, ...]:
    """The names along `shape` that every operand of that shape agrees on, else none: a
    sum of two group-bys by the same key keeps its levels; one by two keys keeps nothing."""
    named = {t.axes for t in types if t.shape == shape}
    return named.pop() if len(named) == 1 else ()


def join(a: Type, b: Type, broadcast: bool = False, widen: bool = False) -> Type:
    """The least type holding both: labels join, kinds widen, shapes must agree."""
    if isinstance(a, ValueType) and isinstance(b, ValueType):
        shape = broadcast_shapes(a.shape, b.shape) if broadcast else a.shape
        if not broadcast and a.shape != b.shape:
            raise Mismatch(f"{shape_name(a.shape)} and {shape_name(b.shape)}")
        same = (a.lo, a.hi) == (b.lo, b.hi)
        known = None not in (a.lo, a.hi, b.lo, b.hi) and not (widen and not same)
        lo = min(a.lo, b.lo) if known else None
        hi = max(a.hi, b.hi) if known else None
        return ValueType(a.label.join(b.label), join_kind(a.kind, b.kind), shape, lo, hi,
                         a.filtered or b.filtered, common_axes(shape, a, b))
    if isinstance(a, ListType) and isinstance(b, ListType):
        return ListType(join(a.element, b.element, broadcast, widen),
                        a.length if a.length == b.length else None)
    if isinstance(a, TupleType) and isinstance(b, TupleType) and len(a.items) == len(b.items):
        return TupleType(tuple(join(x, y, broadcast, widen) for x, y in zip(a.items, b.items,
                                                                             strict=True)))
    if isinstance(a, DictType) and isinstance(b, DictType):
        # keys are public: a key set on one path only is simply absent on the other
        entries = dict(a.entries)
        for k, y in b.entries:
            entries[k] = join(entries[k], y, broadcast, widen) if k in entries else y
        return DictType(tuple(entries.items()))
    if a == b:
        return a
    raise Mismatch(f"{a} and {b}")


def structure_differs(a: Type, b: Type) -> str | None:
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
        return structure_differs(a.element, b.element)
    if isinstance(a, TupleType) and isinstance(b, TupleType) and len(a.items) == len(b.items):
        return next((r for x, y in zip(a.items, b.items, strict=True)
                     if (r := structure_differs(x, y))), None)
    if isinstance(a, DictType) and isinstance(b, DictType):
        if [k for k, _ in a.entries] != [k for k, _ in b.entries]:
            return "is a dict whose keys would depend on the condition"
        return next((r for (_, x), (_, y) in zip(a.entries, b.entries, strict=True)
                     if (r := structure_differs(x, y))), None)
    return "has a different structure on the two paths"


def const_value(e: Expr) -> int | float | str | None:
    """The value of a public expression the checker knows exactly, else None."""
    t = e.type
    if not isinstance(t, ValueType) or t.label is PRIVATE or not t.scalar:
        return None
    if t.kind.name == "str":
        return t.kind.levels[0] if len(t.kind.levels) == 1 else None
    if t.lo is not None and t.lo == t.hi:
        return int(t.lo) if t.kind.name in ("int", "bool") else t.lo
    return None


def possible_keys(e: Expr) -> list[str | int]:
    """The constant keys a public index may take: one constant, or the texts it can hold."""
    k = const_value(e)
    if k is not None:
        return [k]
    t = e.type
    if isinstance(t, ValueType) and t.kind.name == "str":
        return list(t.kind.levels)
    return []


def interval(op: str, a: ValueType, b: ValueType) -> tuple[float | None, float | None]:
    if None in (a.lo, a.hi, b.lo, b.hi):
        return None, None
    if op in ("+", "-", "*"):
        if op == "+":
            return a.lo + b.lo, a.hi + b.hi
        if op == "-":
            return a.lo - b.hi, a.hi - b.lo
        ends = [x * y for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
        return min(ends), max(ends)
    if op == "/" and b.lo == b.hi and b.lo != 0:
        ends = [a.lo / b.lo, a.hi / b.lo]
        return min(ends), max(ends)
    if op in ("//", "%") and b.lo == b.hi and b.lo > 0:
        if op == "//":
            return a.lo // b.lo, a.hi // b.lo
        if a.lo == a.hi:
            return a.lo % b.lo, a.lo % b.lo
        return 0, b.lo - 1
    return None, None

