"""The names along a library result's dimensions, from the schema and the script alone.

Why the checker names them: a group-by revealed as `[4823.87, 4884.93, ...]` leaves the
owner to remember which level came first. The levels, bins and terms are public (the
schema's levels, the script's constants and its text), so the checker, which the owner
runs on its own machine before any job, attaches them to the result's type
(`ValueType.axes`); the owner labels what it decrypts with them and nothing a node sends
can change a label. Reveal names are the script's own; these say what each element is.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from .syntax import Axis, ListExpr, ListType, TupleExpr, TupleType, ValueType

DATA_PREFIX = re.compile(r"\bdata\.")
BOOL_LEVELS = ("false", "true")
"""A boolean key's two groups, in the order of its codes (0, 1)."""


def source_name(node: ast.expr | None, fallback: str) -> str:
    """How the script wrote an argument, without `data.`: `data.rr * 100` -> `rr * 100`."""
    return fallback if node is None else DATA_PREFIX.sub("", ast.unparse(node))


def level_axis(key: ValueType, node: ast.expr | None,
               words: tuple[str, str] = BOOL_LEVELS) -> Axis:
    """The groups of a category or boolean column: its levels in code order; a boolean
    column's own words (`words`: false, true as the schema writes them) where it has them."""
    labels = key.kind.levels if key.kind.name == "category" else words
    return Axis(source_name(node, "group"), tuple(labels))


def bin_axis(node: ast.expr | None, edges: Sequence[float]) -> Axis:
    """A histogram's bins as intervals: each half-open but the last (numpy's rule, which
    the interpreters follow)."""
    last = len(edges) - 2
    labels = tuple(f"[{lo:g}, {hi:g}{']' if i == last else ')'}"
                   for i, (lo, hi) in enumerate(itertools.pairwise(edges)))
    return Axis(source_name(node, "x"), labels)


def even_edges(lo: float, hi: float, bins: int) -> list[float]:
    """The edges of `bins` equal bins over [lo, hi], as the interpreters compute them."""
    return [float(e) for e in np.linspace(float(lo), float(hi), bins + 1)]


def feature_names(node: ast.expr | None, d: int) -> tuple[str, ...]:
    """One name per feature column: as written in a list literal, else `features[i]`
    (a variable holding the list)."""
    if isinstance(node, ast.List | ast.Tuple) and len(node.elts) == d:
        return tuple(source_name(e, f"x{i}") for i, e in enumerate(node.elts))
    base = source_name(node, "x")
    return (base,) if d == 1 else tuple(f"{base}[{i}]" for i in range(d))


def term_axis(node: ast.expr | None, d: int, intercept: bool = True) -> Axis:
    """A linear regression's coefficients: the intercept (if fitted), then one per feature."""
    return Axis("term", ("intercept",) * intercept + feature_names(node, d))


FIT_STATISTICS = ("r2", "adjusted_r2", "condition", "floored")


def fit_axis(terms: Axis) -> Axis:
    """`ols`: the coefficients, their standard errors, then the fit's statistics."""
    return Axis("statistic", (*terms.labels, *(f"se({t})" for t in terms.labels),
                              *FIT_STATISTICS))


def logit_axis(terms: Axis) -> Axis:
    """`logit`: the point, the gradient and the Hessian (upper triangle) that certify it,
    the log-likelihood, the count of y = 1 and the rows (`analytics.logistic`)."""
    t = terms.labels
    return Axis("statistic", (*t, *(f"grad({a})" for a in t),
                              *(f"H({a},{b})" for i, a in enumerate(t) for b in t[i:]),
                              "llf", "count(y)", "n"))


def cluster_axes(node: ast.expr | None, k: int, d: int) -> tuple[Axis, Axis]:
    """k-means centres: one row per cluster, one column per feature."""
    return (Axis("cluster", tuple(str(j) for j in range(k))),
            Axis("feature", feature_names(node, d)))


def column_types(arg: Any, d: int) -> list[Any]:
    """The type of each of the d columns a model's argument names (a list of columns, a
    tuple, or one column): where its ranges and kinds are read."""
    t = arg.type
    if isinstance(arg, ListExpr | TupleExpr):
        return [i.type for i in arg.items]
    if isinstance(t, TupleType):
        return list(t.items)
    if isinstance(t, ListType):
        return [t.element] * d
    return [t] * d
