"""Typing rules of the analytics library: what each call accepts and the type it gives.

Each rule checks its arguments (kinds, shapes, which must be public
constants because they size the result) and returns a `Call` node whose type
carries the result's label, kind, shape and value range. Which names exist, their
parameters and which rule types each come from `library.LIBRARY`, the table the
interpreters and the docs share.
"""

from __future__ import annotations

import ast
import math
from dataclasses import replace
from typing import TYPE_CHECKING

from . import axes
from .analytics import logistic
from .analytics.precision import PrecisionError, Range
from .analytics.regression import DEFAULT_MIN_EIG, check_fit, max_features
from .analytics.storage import type_rounding
from .errors import ScriptError
from .lattice import const_value, join_kind
from .library import LIBRARY, bind
from .syntax import (
    INT,
    PRIVATE,
    PUBLIC,
    ROWS,
    Axis,
    Call,
    ColumnRef,
    DictType,
    Expr,
    Label,
    ListExpr,
    ListType,
    TupleExpr,
    TupleType,
    ValueType,
    fixed,
    label_of,
)

if TYPE_CHECKING:
    from .expressions import Expressions

class Library:
    """Typing rules of the analytics library: argument checks, result kind, shape and range."""

    def __init__(self, checker: Expressions, node: ast.Call, name: str, pos: dict) -> None:
        self.c, self.node, self.name, self.pos = checker, node, name, pos
        self.rows = checker.schema.rows

    def err(self, message: str, why: str = "", node: ast.AST | None = None) -> ScriptError:
        return self.c.err(node or self.node, message, why)

    def bind(self, args: tuple[Expr, ...], kwargs: dict[str, Expr]) -> dict[str, Expr]:
        spec = LIBRARY[self.name]
        names, required = list(spec.params), spec.required
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

    def arg_node(self, param: str) -> ast.expr | None:
        """The script's text of an argument (for the names of a result's axes)."""
        return bind(self.name, list(self.node.args),
                    {k.arg: k.value for k in self.node.keywords}).get(param)

    def bool_words(self, e: Expr) -> tuple[str, str]:
        """A boolean schema column's words for false and true; else `false`, `true`."""
        if isinstance(e, ColumnRef) and len(e.names) == 1:
            col = self.c.schema.column(e.names[0])
            if col.kind == "bool":
                return col.false_text, col.true_text
        return axes.BOOL_LEVELS

    def err_at(self, e: Expr, message: str, why: str = "") -> ScriptError:
        return ScriptError(message, e.line, e.col, why, self.c.filename)

    def public_const(self, e: Expr, what: str) -> int | float | str:
        if label_of(e.type) is PRIVATE:
            raise self.err_at(e, f"private value used as {what}",
                              f"{what} decides the shape or the steps of the computation, "
                              "which every node sees; it must be public")
        k = const_value(e)
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
                elem = self.c.joined(self.node, elem, other)
            n = t.length if isinstance(t, ListType) else len(t.items)
            if not isinstance(elem, ValueType) or not elem.scalar or n is None:
                raise self.err(f"{self.name}() needs a column, a vector or a list of numbers")
            t = replace(elem, shape=(n,))
        if not isinstance(t, ValueType) or t.scalar:
            raise self.err(f"{self.name}() needs a column, a vector or a list, not {t}",
                           "it reduces many values to one; min(a, b) and max(a, b) compare "
                           "two values")
        if what and not t.kind.numeric:
            self.c.numeric(self.node, e, f"{self.name}()")
        return t

    def n(self, t: ValueType) -> int | None:
        return self.rows if t.shape and t.shape[0] == ROWS else \
            (t.shape[0] if t.shape else 1)

    def result(self, args: tuple[Expr, ...], kwargs: dict[str, Expr], t: ValueType) -> Call:
        return Call(**self.pos, func=self.name, args=args, kwargs=tuple(kwargs.items()), type=t)

    def type(self, args: tuple[Expr, ...], kwargs: dict[str, Expr]) -> Expr:
        handler = getattr(self, LIBRARY[self.name].rule)
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
        b = self.bind(args, kwargs)
        x = self.values(b["x"])
        label = label_of(b["x"].type).join(self.mask(b, x))
        n = self.n(x)
        if x.kind.name != "bool" and not x.filtered and "where" not in b:
            label = PUBLIC
        return self.result(args, kwargs, ValueType(label, INT, (), 0, n))

    def reduce(self, args, kwargs) -> Call:
        b = self.bind(args, kwargs)
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
                lo, hi = min(0, n * lo), max(0, n * hi)
        elif self.name in ("variance", "std"):
            kind = fixed(frac)
            ddof = self.public_const(b["ddof"], "ddof") if "ddof" in b else 0
            if not isinstance(ddof, int) or ddof < 0:
                raise self.err_at(b["ddof"], f"{self.name}() ddof must be a whole number >= 0, "
                                  f"not {ddof!r}", "ddof=0 is numpy's default, ddof=1 pandas'")
            if n is not None and not x.filtered and "where" not in b and n <= ddof:
                raise self.err(f"{self.name}() of {n} values with ddof={ddof} has no degrees "
                               "of freedom", "use a smaller ddof")
            if None not in (lo, hi):
                # the largest variance of values in [lo, hi]: half at each end; with ddof,
                # c / (c - ddof) times it for c values, worst at the smallest c > ddof
                known = n is not None and not x.filtered and "where" not in b
                spread = (hi - lo) / 2
                top = spread * spread * (n / (n - ddof) if known else ddof + 1)
                lo, hi = 0, top if self.name == "variance" else math.sqrt(top)
        else:
            kind = fixed(frac)
        return self.result(args, kwargs, ValueType(label, kind, (), lo, hi))

    def minmax(self, args, kwargs) -> Call:
        if len(args) >= 2 and not kwargs:
            types = [self.c.numeric(self.node, a, f"{self.name}()") for a in args]
            lows, highs = [t.lo for t in types], [t.hi for t in types]
            # any operand's top bounds a min (its bottom needs all), and conversely for max:
            # min(q, 8) is at most 8 whatever q is, which is what clamps in scripts rely on
            if self.name == "min":
                lo = None if None in lows else min(lows)
                hi = min((h for h in highs if h is not None), default=None)
            else:
                lo = max((v for v in lows if v is not None), default=None)
                hi = None if None in highs else max(highs)
            kind = types[0].kind
            for t in types[1:]:
                kind = join_kind(kind, t.kind)
            label = PRIVATE if any(label_of(t) is PRIVATE for t in types) else PUBLIC
            return self.result(args, kwargs, ValueType(label, kind, self.c.shape(
                self.node, *types), lo, hi, any(t.filtered for t in types)))
        b = self.bind(args, kwargs)
        x = self.values(b["x"], "numbers")
        label = label_of(b["x"].type).join(self.mask(b, x))
        return self.result(args, kwargs, ValueType(label, x.kind, (), x.lo, x.hi))

    def clip(self, args, kwargs) -> Call:
        """clip(x, lo, hi) = min(max(x, lo), hi), element-wise, with public bounds: the
        result's range is x's narrowed to [lo, hi] (a division's quotient, whose range is
        wide, becomes usable in products again)."""
        b = self.bind(args, kwargs)
        x = self.c.numeric(self.node, b["x"], "clip()")
        bounds = []
        for key in ("lo", "hi"):
            e = b[key]
            t = self.c.numeric(self.node, e, "clip()")
            if t.label is PRIVATE:
                raise self.err_at(e, "private value used as a clip bound",
                                  "clip's bounds are public; for a private bound write "
                                  "min(max(x, lo), hi)")
            if not t.scalar or None in (t.lo, t.hi):
                raise self.err_at(e, "a clip bound must be a public number with a known "
                                     "range, such as a constant")
            bounds.append(t)
        lo, hi = bounds
        if lo.lo > hi.hi:
            raise self.err(f"clip bounds are reversed: {lo.lo} > {hi.hi}")
        kind = x.kind
        for t in bounds:
            kind = join_kind(kind, t.kind)
        kind = INT if kind.name == "bool" else kind
        low = min(lo.lo if x.lo is None else max(x.lo, lo.lo), hi.lo)
        high = hi.hi if x.hi is None else min(max(x.hi, lo.hi), hi.hi)
        return self.result(args, kwargs, ValueType(x.label, kind, x.shape, low, high,
                                                   x.filtered, x.axes))

    def bins_of(self, x: ValueType, b: dict[str, Expr]) -> Axis:
        """The bins of a histogram, named: a category's levels or the intervals."""
        if x.kind.name in ("category", "bool"):
            if "bins" in b or "range" in b:
                raise self.err("a histogram of a category counts each level; drop bins/range")
            return axes.level_axis(x, self.arg_node("x"), self.bool_words(b["x"]))
        if not x.kind.numeric:
            raise self.err(f"histogram() needs numbers or a category, not {x}")
        bins = b.get("bins")
        if bins is not None and isinstance(bins.type, ListType | TupleType):
            edges = bins.items if isinstance(bins, ListExpr | TupleExpr) else ()
            if not edges:
                raise self.err("histogram edges must be written as a list of constants")
            values = [self.public_const(e, "a histogram edge") for e in edges]
            if not all(isinstance(v, int | float) for v in values):
                raise self.err("histogram edges must be numbers")
            return axes.bin_axis(self.arg_node("x"), values)
        k = self.public_const(bins, "the number of bins") if bins is not None else 10
        if not isinstance(k, int) or k < 1:
            raise self.err("the number of bins must be a positive integer")
        if "range" in b:
            rng = b["range"]
            items = rng.items if isinstance(rng, TupleExpr | ListExpr) else ()
            if len(items) != 2:
                raise self.err("range= must be a pair of constants (lo, hi)")
            lo, hi = (self.public_const(e, "a histogram range") for e in items)
        elif x.lo is None or x.hi is None:
            raise self.err("histogram() needs a range: the schema gives none for these values",
                           "pass range=(lo, hi) with public constants")
        else:
            lo, hi = x.lo, x.hi
        return axes.bin_axis(self.arg_node("x"), axes.even_edges(lo, hi, k))

    def histogram(self, args, kwargs) -> Call:
        b = self.bind(args, kwargs)
        x = self.values(b["x"])
        bins = self.bins_of(x, b)
        label = label_of(b["x"].type).join(self.mask(b, x))
        return self.result(args, kwargs, ValueType(label, INT, (len(bins.labels),), 0,
                                                   self.n(x), axes=(bins,)))

    def group_by(self, args, kwargs) -> Call:
        b = self.bind(args, kwargs)
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
                    lo, hi = min(0, self.rows * v.lo), max(0, self.rows * v.hi)
        groups = axes.level_axis(key, self.arg_node("key"), self.bool_words(b["key"]))
        return self.result(args, kwargs, ValueType(label, kind, (len(groups.labels),), lo, hi,
                                                   axes=(groups,)))

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
        b = self.bind(args, kwargs)
        x, y = self.values(b["x"], "numbers"), self.values(b["y"], "numbers")
        if x.shape != y.shape:
            raise self.err(f"{self.name}() needs two columns of the same length")
        label = label_of(b["x"].type).join(label_of(b["y"].type))
        lo, hi = (-1, 1) if self.name == "corr" else (None, None)
        return self.result(args, kwargs, ValueType(label, fixed(), (), lo, hi))

    def chi2(self, args, kwargs) -> Call:
        b = self.bind(args, kwargs)
        x, y = self.values(b["x"]), self.values(b["y"])
        for t in (x, y):
            if t.kind.name not in ("category", "bool") or not t.column:
                raise self.err(f"chi2() tests two category or boolean columns, not {t}")
        label = label_of(b["x"].type).join(label_of(b["y"].type))
        return self.result(args, kwargs, ValueType(label, fixed(), (2,), 0, None))

    def stat_test(self, args, kwargs) -> Call:
        """A test's revealed vector (`lang.pvalues.TESTS`): the statistic and what its
        distribution needs; its p-value is the owner's (lang/pvalues.py)."""
        b = self.bind(args, kwargs)
        name = self.name
        label = PUBLIC
        for p in ("x", "y", "where"):
            if p in b:
                label = label.join(label_of(b[p].type))
        if name == "proportion":
            x = self.values(b["x"])
            if x.kind.name != "bool":
                raise self.err("proportion() counts the true values of a boolean column",
                               "compare a column to make one, e.g. proportion(data.age > 40)")
            label = label.join(self.mask(b, x))
            return self.result(args, kwargs, ValueType(label, INT, (2,), 0, self.n(x)))
        if name == "chisquare":
            x = self.values(b["x"])
            if x.kind.name not in ("category", "bool") or not x.column:
                raise self.err(f"chisquare() tests a category or boolean column, not {x}")
            if "p" in b:
                self.proportions(b["p"], len(x.kind.levels) if x.kind.name == "category" else 2)
            return self.result(args, kwargs, ValueType(label, fixed(), (2,), 0, None))
        x = self.values(b["x"], "numbers")
        if x.lo is None or x.hi is None:
            raise self.err(f"{name}() needs the value range of its columns",
                           "use columns straight from the schema (it gives min and max)")
        if name == "anova":
            g = self.values(b["group"])
            label = label.join(label_of(b["group"].type))
            if g.kind.name not in ("category", "bool") or not g.column or not x.column \
                    or x.filtered or g.filtered:
                raise self.err("anova(x, group) compares a numeric column between the levels "
                               "of a category or boolean column (both unfiltered)")
            return self.result(args, kwargs, ValueType(label, fixed(), (4,)))
        if name == "ttest_1samp":
            mu = self.public_const(b["popmean"], "the population mean")
            if not isinstance(mu, int | float) or not x.lo <= mu <= x.hi:
                raise self.err_at(b["popmean"], f"ttest_1samp() popmean must be a number within "
                                  f"the column's range [{x.lo}, {x.hi}], not {mu!r}",
                                  "a mean outside the range is rejected by every sample")
        elif name in ("ttest", "ttest_rel", "pearsonr"):
            y = self.values(b["y"], "numbers")
            if y.lo is None or y.hi is None:
                raise self.err(f"{name}() needs the value range of its columns",
                               "use columns straight from the schema (it gives min and max)")
            if name != "ttest" and (x.shape != y.shape or x.filtered or y.filtered):
                raise self.err(f"{name}() needs two unfiltered columns of the same length",
                               "it pairs row i of one with row i of the other")
            if "equal_var" in b:
                ev = self.public_const(b["equal_var"], "equal_var")
                if ev not in (0, 1, True, False):
                    raise self.err("ttest() equal_var must be True or False")
        # [stat, df, floored], and a t-test's mean difference and its standard error
        return self.result(args, kwargs,
                           ValueType(label, fixed(), (3 if name == "pearsonr" else 5,)))

    def proportions(self, e: Expr, k: int) -> None:
        """chisquare()'s p: k public positive constants, the expected share of each level."""
        items = e.items if isinstance(e, ListExpr | TupleExpr) else None
        if items is None or len(items) != k:
            raise self.err_at(e, f"chisquare() p must be a list of {k} constants, one "
                                 "expected proportion per level")
        values = [self.public_const(i, "an expected proportion") for i in items]
        if any(not isinstance(v, int | float) or v <= 0 for v in values):
            raise self.err_at(e, "chisquare() p needs positive numbers")
        if abs(sum(values) - 1) > 1e-6:
            raise self.err_at(e, f"chisquare() p must add up to 1, not {sum(values):g}")

    def columns(self, e: Expr) -> list[ValueType]:
        t = e.type
        items = [t] if isinstance(t, ValueType) else \
            list(t.items) if isinstance(t, TupleType) else \
            [t.element] if isinstance(t, ListType) and t.length else []
        if not items or not all(isinstance(i, ValueType) and i.column and i.kind.numeric
                                for i in items):
            raise self.err(f"{self.name}() needs a numeric column or a list of them")
        return items

    def linreg(self, args, kwargs) -> Call:
        b = self.bind(args, kwargs)
        y = self.values(b["y"], "numbers")
        xs = self.columns(b["x"])
        d = len(xs) if not isinstance(b["x"].type, ListType) else b["x"].type.length
        if not y.column:
            raise self.err(f"{self.name}() regresses a column on columns")
        intercept = self.public_const(b["intercept"], "intercept") if "intercept" in b else True
        ridge = self.public_const(b["ridge"], "the ridge penalty") if "ridge" in b else 0.0
        if intercept not in (True, False) or not isinstance(ridge, int | float):
            raise self.err(f"{self.name}() takes intercept=True or False and a number ridge")
        intercept = bool(intercept)
        try:
            each = [*axes.column_types(b["x"], d), y]  # each feature's own type, then y's
            ranges = None if any(t.lo is None or t.hi is None for t in each) else \
                [Range(float(t.lo), float(t.hi)) for t in each]
            check_fit(d, self.rows, intercept, float(ridge), DEFAULT_MIN_EIG, ranges,
                      storage=type_rounding(each))
        except PrecisionError as exc:
            most = max_features(intercept, float(ridge), DEFAULT_MIN_EIG)
            raise self.err(f"{self.name}() of {d} features does not fit the fixed-point "
                           f"precision: at most {most} with ridge={float(ridge):g}",
                           f"{exc}; regress on fewer features or pass a larger ridge") from None
        except ValueError as exc:
            raise self.err(f"{self.name}(): {exc}") from None
        label = label_of(b["y"].type).join(label_of(b["x"].type))
        k = d + intercept
        terms = axes.term_axis(self.arg_node("x"), d, intercept)
        if self.name == "linreg":
            return self.result(args, kwargs, ValueType(label, fixed(), (k,), axes=(terms,)))
        return self.result(args, kwargs, ValueType(label, fixed(), (2 * k + 4,), axes=(
            axes.fit_axis(terms),)))

    def logit(self, args, kwargs) -> Call:
        """`logit(y, x, intercept=True, iterations=7)`: y a boolean (or 0/1) column, x columns
        with ranges; refused here, before any run, when the fit cannot fit the precision."""
        b = self.bind(args, kwargs)
        y = self.values(b["y"], "0/1 values")
        xs = self.columns(b["x"])
        d = len(xs) if not isinstance(b["x"].type, ListType) else b["x"].type.length
        if not y.column or not (y.kind.name == "bool" or (
                y.kind.name == "int" and y.lo is not None and y.hi is not None
                and y.lo >= 0 and y.hi <= 1)):
            raise self.err("logit() needs y a boolean column (or an integer column in [0, 1])")
        intercept = self.public_const(b["intercept"], "intercept") if "intercept" in b else True
        iters = self.public_const(b["iterations"], "the number of iterations") \
            if "iterations" in b else logistic.DEFAULT_ITERATIONS
        if intercept not in (True, False) or not isinstance(iters, int) or \
                not 1 <= iters <= logistic.MAX_ITERATIONS:
            raise self.err("logit() takes intercept=True or False and an integer iterations in "
                           f"1..{logistic.MAX_ITERATIONS}")
        if any(t.lo is None or t.hi is None for t in xs):
            raise self.err("logit() needs the value range of every feature",
                           "features are standardised by their public ranges; use schema "
                           "columns")
        ranges = [Range(float(t.lo), float(t.hi)) for t in (xs if len(xs) == d else xs * d)]
        try:
            logistic.layout(ranges, bool(intercept), self.rows or d + 2)
        except PrecisionError as exc:
            most = logistic.max_features(bool(intercept))
            raise self.err(f"logit() of {d} features does not fit the fixed-point precision "
                           f"(at most {most})", f"{exc}") from None
        except ValueError as exc:
            raise self.err(f"logit(): {exc}") from None
        label = label_of(b["y"].type).join(label_of(b["x"].type))
        terms = axes.term_axis(self.arg_node("x"), d, bool(intercept))
        k = d + bool(intercept)
        return self.result(args, kwargs, ValueType(label, fixed(), (logistic.output_size(k),),
                                                   axes=(axes.logit_axis(terms),)))

    def kmeans(self, args, kwargs) -> Call:
        b = self.bind(args, kwargs)
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
        if "init" in b:
            self.kmeans_init(b["init"], k, xs if len(xs) == d else xs * d)
        ties = self.public_const(b["ties"], "the tie rule") if "ties" in b else "first"
        if ties not in ("first", "last"):
            raise self.err(f"kmeans() ties must be 'first' or 'last', not {ties!r}",
                           "a row equidistant from two centres joins the lower-index one "
                           "('first') or the higher-index one ('last')")
        lo, hi = min(t.lo for t in xs), max(t.hi for t in xs)
        label = label_of(b["x"].type)
        return self.result(args, kwargs, ValueType(label, fixed(), (k, d), lo, hi,
                                                   axes=axes.cluster_axes(self.arg_node("x"), k,
                                                                          d)))

    def kmeans_init(self, init: Expr, k: int, xs: list[ValueType]) -> None:
        """init= is k public points written in the script, each within the columns' ranges:
        the distance bounds of the engine's comparisons assume centres in the ranges."""
        d = len(xs)
        shape = f"a list of k = {k} centres, each a list of d = {d} constants"
        points = init.items if isinstance(init, ListExpr | TupleExpr) else None
        if points is None or len(points) != k:
            raise self.err_at(init, f"kmeans() init must be {shape}",
                              "the first centres are public and fix the shape of the result")
        for j, p in enumerate(points):
            coords = p.items if isinstance(p, ListExpr | TupleExpr) else None
            if coords is None or len(coords) != d:
                raise self.err_at(p, f"kmeans() init centre {j} must be a list of d = {d} "
                                     "constants, one per column")
            for c, (v, t) in enumerate(zip(coords, xs, strict=True)):
                value = self.public_const(v, "an initial centre")
                if not isinstance(value, int | float):
                    raise self.err_at(v, f"kmeans() init centre {j} needs numbers, not "
                                         f"{value!r}")
                if not t.lo <= value <= t.hi:
                    raise self.err_at(v, f"kmeans() init centre {j} has {value} in column {c}, "
                                         f"outside its range [{t.lo}, {t.hi}]",
                                      "place the first centres within the columns' ranges")

    def elementwise(self, args, kwargs) -> Call:
        b = self.bind(args, kwargs)
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
        b = self.bind(args, kwargs)
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

