"""Before the run: each reveal's stated error bound, and a warning where it cannot be small.

Every bound the engine states is a public function of the schema, the script and the row
count: the worst case over all data in the ranges (docs/analytics.md). So it is known
before any real data is touched, by running the script once on synthetic data at the
real row count (3 engines in threads, the test dealer: `simulation.thread_quorum`), and
reading the bounds the run states. Where a bound is large, the owner should hear it now,
with what makes it large and what would shrink it, not with the result.

**Rule.** A statistic read on its own scale (a test's statistic: t, r, chi-square, eta^2;
a correlation) is flagged when its stated bound is at least `STATISTIC_LIMIT` (0.01: two
decimals of t or r are what gets reported). Any other value is flagged when its bound is at
least `RELATIVE_LIMIT` (10^-3) of the largest magnitude its range analysis allows (the
checker's [lo, hi] of the result; for a value the checker gives no range, such as a quotient
of two private values, its magnitude on the synthetic data, as an indication);
least squares by element: R^2 as a statistic, coefficients and standard errors against
the slope that moves y over its half-range along x's half-range.

**Causes**, tried in this order for a flagged reveal:
1. Storage rounding of a fixed column: each value is stored within 2^-(f+1) of what the
   owner wrote, and bounds that divide by a spread floor (1/256 of the range width) carry
   that over the floor; a narrow range makes it large. The remedy is to store the column
   scaled by a power of ten k (a t, r or eta^2 does not change; a mean scales by k), and
   the advice *measures* it: the same script on a schema with that column's range times k.
   It is named only if the measured bound at least halves.
2. A secret divisor whose range reaches 0 (or comes within 10^-3 of its magnitude): the
   quotient's bound divides by the smallest divisor the range allows; narrow the range.
3. For t-tests, the spread floor itself: the statistic's stated bound is the worst case at
   the floor over every sample and grows with the rows; the owner's bound, from the revealed
   mean difference and standard error (`pvalues.t_quotient`), holds for the data as they
   are and is reported at the synthetic data's spread.
4. Otherwise a wide range: the value can be as large as its range says; narrow the schema
   ranges of the columns it reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .checker import check
from .errors import ScriptError
from .interpreter import Revealed
from .plain import referenced_columns, synthetic_table
from .pvalues import TESTS
from .runner import run_mpc
from .schema import Schema
from .simulation import thread_quorum
from .syntax import (
    BinOp,
    Call,
    Label,
    Script,
    ValueType,
    Var,
    nodes_of,
    reveals_and_assignments,
)

STATISTIC_LIMIT = 1e-2
"""A statistic's bound (absolute) from which it is flagged."""
RELATIVE_LIMIT = 1e-3
"""Any other value's bound, as a fraction of its largest possible magnitude, to be flagged."""
STATISTICS = frozenset({"ttest", "ttest_1samp", "ttest_rel", "pearsonr", "anova", "corr"})
"""Calls whose first revealed element is a statistic of order 1, read on its own scale.
(chi-square statistics grow with the rows and are judged by their range, like values;
a proportion's counts are exact.)"""
T_TESTS = frozenset({"ttest", "ttest_1samp", "ttest_rel"})
ENCODING_BITS = 47
"""A fixed column's values times 2^f must stay below 2^47 (the encoder's limit): the most a
suggested rescaling may reach."""
SEED = b"enigma bounds advice, synthetic!"
FEATURE_SCALE = 100
"""The scale of a fixed-point feature stored as an integer in the measured suggestion (two
decimals); the advice says to use 10^d for the data's d decimals."""


@dataclass(frozen=True)
class Element:
    """One judged element of a reveal: its label, stated bound and the scale it is judged
    on (None: a statistic, judged absolutely)."""

    label: str
    bound: float
    scale: float | None
    synthetic: bool = False
    """The scale is the synthetic run's value (the range analysis gives the value none)."""

    @property
    def limit(self) -> float:
        return STATISTIC_LIMIT if self.scale is None else RELATIVE_LIMIT * self.scale

    @property
    def ratio(self) -> float:
        """The bound over its limit: at least 1 is large."""
        return self.bound / self.limit if self.limit > 0 else 0.0


@dataclass(frozen=True)
class Rescaling:
    """A measured suggestion: store `columns` times `factor` (as integers if `integer`);
    the flagged element's stated bound is then `measured`."""

    columns: tuple[str, ...]
    factor: int
    integer: bool
    measured: float

    def schema(self, schema: Schema) -> Schema:
        """`schema` with the suggestion applied (the owner also scales its data)."""
        doc = schema.to_dict()
        for c in doc["columns"]:
            if c["name"] in self.columns:
                c["min"], c["max"] = c["min"] * self.factor, c["max"] * self.factor
                if self.integer:
                    c["type"] = "int"
                    c["min"], c["max"] = math.floor(c["min"]), math.ceil(c["max"])
                    c.pop("frac_bits", None)
        return Schema.from_dict(doc)


@dataclass(frozen=True)
class Bound:
    """One reveal's stated bound before the run, and the warning when it is large."""

    name: str
    bound: float
    """The largest stated bound over the reveal's elements."""
    worst: Element | None
    """The element whose bound is largest against its limit (None: nothing is judged)."""
    owner: float | None = None
    """t-tests: the owner's bound from the revealed mean difference and se, on the synthetic
    data's spread; `ols`: the owner's table's bound of the judged element (`pvalues.
    ols_detail`), from the synthetic fit's own eigenvalues and residual (data-dependent, so
    an indication only)."""
    warning: str | None = None
    """Why the bound is large and what would shrink it (None: not large)."""
    rescaling: Rescaling | None = None
    """The storage the warning suggests, where it is a rescaling (measured)."""
    owner_from: str = "its mean difference and se"
    """What the owner's bound is computed from (a t-test's, or an `ols` fit's)."""

    def line(self) -> str:
        w = self.worst
        if w is None:
            return f"bound {self.name!r}: {self.bound:.2g} (not judged: no range, value 0)"
        text = f"bound {self.name!r}: {w.bound:.2g}"
        if w.label != "value":
            text += f" on {w.label}"
        of = "the synthetic run's value" if w.synthetic else "a magnitude"
        text += f" (the limit {w.limit:.2g}" + (f": {RELATIVE_LIMIT:g} of {of} "
                                                 f"{w.scale:.3g})" if w.scale else ")")
        if w.bound < self.bound:
            text += f"; largest element {self.bound:.2g}"
        if self.owner is not None:
            text += f"; the owner's from {self.owner_from}: {self.owner:.2g}"
        return text

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "bound": self.bound,
                "element": None if self.worst is None else self.worst.label,
                "scale": None if self.worst is None else self.worst.scale,
                "owner": self.owner, "warning": self.warning,
                "rescaling": None if self.rescaling is None else {
                    "columns": list(self.rescaling.columns), "factor": self.rescaling.factor,
                    "integer": self.rescaling.integer, "measured": self.rescaling.measured}}


def synthetic_results(source: str, schema: Schema, rows: int, filename: str = "<script>",
                      seed: int = 0, script: Script | None = None) -> dict[str, Revealed]:
    """The script's revealed values and stated bounds on `rows` synthetic rows (3 engines in
    threads, the synthetic test dealer): the bounds are those of any run at `rows` rows.
    `script`: the caller's `check(source, schema, filename)`, if it has one (not repeated)."""
    from enigma.prep.dealer import DealerFactory

    script = script if script is not None else check(source, schema, filename)
    values = synthetic_table(schema, rows, referenced_columns(script), seed)
    factory = DealerFactory(SEED, insecure=True, synthetic=True)
    return run_mpc(source, schema, values, provider_factory=factory, filename=filename,
                   quorum=thread_quorum, script=script).results


def review(source: str, schema: Schema, rows: int | None = None, *,
           filename: str = "<script>") -> list[Bound]:
    """Every reveal's stated bound at `rows` rows (default: the schema's), flagged by the
    module's rule with a cause and a suggestion; in the script's reveal order."""
    n = rows if rows is not None else schema.rows
    if n is None:
        raise ValueError(f"schema {schema.name!r} gives no row count; pass rows=")
    script = check(source, schema, filename)
    results = synthetic_results(source, schema, n, filename, script=script)
    advisor = _Advisor(source, schema, n, filename, script)
    return [advisor.judge(o.name, results) for o in script.outputs if o.name in results]


class _Script:
    """What the advice reads of a checked script: each reveal's expression and the
    expressions assigned to every name (`syntax.reveals_and_assignments`, the walk `pvalues`
    reads its tests with), and from them the library call each reveal shows."""

    def __init__(self, script: Script) -> None:
        self.outputs = {o.name: o.type for o in script.outputs}
        reveals, assigns = reveals_and_assignments(script)
        self.reveals: dict[str, Any] = {r.name: r.value for r in reveals}
        self.assigned: dict[str, list[Any]] = {
            name: [a.value for a in items] for name, items in assigns.items()}

    def call(self, name: str) -> Call | None:
        """The library call a reveal shows: itself, or the one call every assignment of the
        name it shows makes."""
        v = self.reveals.get(name)
        if isinstance(v, Var):
            calls = [a for a in self.assigned.get(v.name, []) if isinstance(a, Call)]
            funcs = {c.func for c in calls}
            return calls[0] if len(funcs) == 1 and len(calls) == len(
                self.assigned.get(v.name, [])) else None
        return v if isinstance(v, Call) else None

    def resolve(self, expr: Any, seen: set[str] | None = None) -> list[Any]:
        """The expression and, through every variable it reads, the expressions assigned."""
        seen = set() if seen is None else seen
        out = [expr]
        for v in nodes_of(expr, Var):
            if v.name not in seen:
                seen.add(v.name)
                for value in self.assigned.get(v.name, []):
                    out.extend(self.resolve(value, seen))
        return out

    def columns(self, expr: Any) -> list[str]:
        found: list[str] = []
        for e in self.resolve(expr):
            found.extend(c for c in referenced_columns(e) if c not in found)
        return found

    def elements(self, name: str, r: Revealed) -> list[Element]:
        """The judged elements of a revealed value (see the module's rule)."""
        err = np.atleast_1d(np.asarray(r.error, dtype=np.float64)).reshape(-1)
        call = self.call(name)
        func = call.func if call is not None else None
        if func in STATISTICS:
            label = TESTS[func][0] if func in TESTS else func
            return [Element(f"{func}'s {label}", float(err[0]), None)]
        t = self.outputs.get(name)
        if func in ("ols", "linreg") and call is not None:
            return _fit_elements(call, t, err)
        if not err.size:
            return []
        if isinstance(t, ValueType) and t.lo is not None and t.hi is not None:
            return [Element("value", float(err.max()), max(abs(t.lo), abs(t.hi)))]
        size = float(np.max(np.abs(np.nan_to_num(np.asarray(r.value, dtype=np.float64)))))
        return [Element("value", float(err.max()), size, synthetic=True)] if size > 0 else []


def _fit_elements(call: Call, t: Any, err: np.ndarray) -> list[Element]:
    """ols/linreg, by the labels of their vector: R^2 and adjusted R^2 as statistics; the
    intercept and its se against y's magnitude; slope i and its se against h_y / h_i (the
    slope that moves y over its half-range along x_i's half-range); the condition and the
    residual's floor flag not judged (they are checks, not estimates)."""
    labels = t.axes[0].labels if isinstance(t, ValueType) and t.axes else ()
    y = call.args[0].type
    xs = call.args[1].items if len(call.args) > 1 and hasattr(call.args[1], "items") else ()
    if len(labels) != err.size or not isinstance(y, ValueType) or y.lo is None:
        return []
    h_y = (y.hi - y.lo) / 2
    slopes = []
    for x in xs:
        tx = x.type
        ok = isinstance(tx, ValueType) and tx.lo is not None and tx.hi > tx.lo
        slopes.append(h_y / ((tx.hi - tx.lo) / 2) if ok else None)
    out = []
    terms = [lb for lb in labels if not lb.startswith("se(") and lb not in (
        "intercept", "r2", "adjusted_r2", "condition", "floored")]
    for label, e in zip(labels, err, strict=True):
        bare = label[3:-1] if label.startswith("se(") else label
        if label in ("r2", "adjusted_r2"):
            out.append(Element(label, float(e), None))
        elif bare == "intercept":
            out.append(Element(label, float(e), max(abs(y.lo), abs(y.hi))))
        elif label not in ("condition", "floored"):
            k = terms.index(bare)
            if k < len(slopes) and slopes[k]:
                out.append(Element(label, float(e), slopes[k]))
    return out


def _fit_owner(detail: dict, label: str) -> float | None:
    """The owner's table's bound (`pvalues.ols_detail`) of one element of an `ols` vector,
    by its label (None where the table certifies nothing, or for the condition)."""
    if not detail or "error" in detail:
        return None
    if label in ("r2", "adjusted_r2"):
        key = f"{label}_error"
        return float(detail[key]) if key in detail else None
    key = f"se_error[{label[3:-1]}]" if label.startswith("se(") else f"coef_error[{label}]"
    return float(detail[key]) if key in detail else None


class _Advisor:
    def __init__(self, source: str, schema: Schema, rows: int, filename: str,
                 script: Script) -> None:
        self.source, self.schema, self.rows, self.filename = source, schema, rows, filename
        self.script = _Script(script)
        self.scaled: dict[tuple[tuple[str, ...], int, bool], tuple[_Script, dict] | str] = {}
        self.suggested: Rescaling | None = None
        """The measured rescaling of the warning `cause` made last, if it made one."""

    def judge(self, name: str, results: dict[str, Revealed]) -> Bound:
        r = results[name]
        elements = self.script.elements(name, r)
        err = np.atleast_1d(np.asarray(r.error, dtype=np.float64))
        worst = max(elements, key=lambda el: el.ratio, default=None)
        call = self.script.call(name)
        func = call.func if call is not None else None
        owner = float(r.detail["statistic_error"]) if func in T_TESTS and \
            "statistic_error" in r.detail and "error" not in r.detail else None
        if func == "ols" and worst is not None:
            owner = _fit_owner(r.detail, worst.label)
        self.suggested = None
        warning = self.cause(name, func, worst, owner) if worst and worst.ratio >= 1 else None
        if warning and func == "ols" and owner is not None:
            verdict = "below" if owner < worst.limit else "still at or above"
            warning += (f"; the owner's table bounds it from the revealed fit (coef, se, R^2 "
                        f"and condition: the data's own eigenvalues and residual, not the "
                        f"floors) by {owner:.2g} on the synthetic data, {verdict} the limit, "
                        f"and that bound holds for the data as they are")
        return Bound(name, float(err.max()) if err.size else 0.0, worst, owner, warning,
                     self.suggested, *(["the revealed fit"] if func == "ols" else []))

    # ------------------------------------------------------------ causes

    def cause(self, name: str, func: str | None, worst: Element, owner: float | None) -> str:
        where = "" if worst.label == "value" else f" on {worst.label}"
        against = f"{STATISTIC_LIMIT:g}" if worst.scale is None else \
            f"{RELATIVE_LIMIT:g} of its {'synthetic value' if worst.synthetic else 'magnitude'}" \
            f" {worst.scale:.3g}"
        head = f"{name!r}: bound {worst.bound:.2g}{where} is large (at least {against})"
        expr = self.script.reveals.get(name)
        fixed = [c for c in self.script.columns(expr) if self.schema.column(c).kind == "fixed"]
        call = self.script.call(name)
        if func in ("ols", "linreg") and call is not None and len(call.args) > 1:
            features = [c for c in self.script.columns(call.args[1]) if c in fixed]
            advice = self._exact_features(name, worst, features) if features else None
            if advice:
                return f"{head}: {advice}"
        if fixed:
            advice = self._rescale(name, worst, fixed, func, owner)
            if advice:
                return f"{head}: {advice}"
        divisor = self._small_divisor(expr)
        if divisor is not None:
            line, lo, hi, cols = divisor
            names = ", ".join(cols) if cols else "its operands"
            low = 0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))
            return (f"{head}: the divisor on line {line} can be as small as {low:.3g} (its "
                    f"range [{lo:.3g}, {hi:.3g}]); narrow the schema range of {names} away "
                    f"from 0")
        if func in T_TESTS:
            return f"{head}: {self._floor(owner)}"
        wide = self._ranges(expr)
        if worst.scale is None:
            return (f"{head}: the floors the statistic divides by (spreads at 1/256 of the "
                    f"range, eigenvalues at min_eig) at {self.rows:,} rows; a narrower schema "
                    f"range raises them relative to the data" + (f" ({wide})" if wide else ""))
        return (f"{head}: values as large as the ranges allow; narrow the schema ranges of the "
                f"columns it reads to what the data hold" + (f" ({wide})" if wide else ""))

    def _floor(self, owner: float | None) -> str:
        tail = f" ({owner:.2g} on the synthetic data)" if owner is not None else ""
        return (f"t's worst case at the spread floor (min_std = 1/256 of the range), which "
                f"grows with the rows ({self.rows:,} here); read the owner's bound from the "
                f"revealed mean difference and se{tail}, which holds for the data as they are")

    def _ranges(self, expr: Any) -> str:
        return "; ".join(f"{c} in [{self.schema.column(c).lo:g}, {self.schema.column(c).hi:g}]"
                         for c in self.script.columns(expr)
                         if self.schema.column(c).kind in ("int", "fixed"))

    def _rescale(self, name: str, worst: Element, fixed: list[str], func: str | None,
                 owner: float | None) -> str | None:
        """Storage rounding as the cause, measured: the bound with the fixed columns stored
        times k, for the k that should bring it below half its limit (a storage term shrinks
        as 1/k); where what is left is not storage (it did not shrink as much), the smallest
        k that brings the storage part down to it."""
        k = self._factor(worst.ratio * 2, fixed)
        after = self._measure(name, worst.label, tuple(fixed), k) if k else None
        if after is None or after.ratio > worst.ratio / 2:
            return None
        if after.ratio >= 1:  # the rest is not storage: scale only as far as it matters
            storage = max(worst.bound - after.bound, 0.0)
            smaller = self._factor(storage / max(after.bound, 1e-300), fixed)
            if smaller and smaller < k:
                again = self._measure(name, worst.label, tuple(fixed), smaller)
                if again is not None and again.bound <= 2 * after.bound:
                    k, after = smaller, again
        self.suggested = Rescaling(tuple(fixed), k, False, after.bound)
        cols = ", ".join(fixed)
        ranges = "; ".join(
            f"{c} in [{self.schema.column(c).lo * k:g}, {self.schema.column(c).hi * k:g}]"
            for c in fixed)
        widths = ", ".join(f"{c}'s width {self._width(c):.3g}" for c in fixed)
        bits = self.schema.column(fixed[0]).frac_bits + 1
        scales = "" if after.scale is None else f" against a magnitude of {after.scale:.3g}"
        text = (f"storage rounding of {cols} (each value within 2^-{bits} of what was "
                f"written) against a narrow range ({widths}); store {cols} times {k:g} "
                f"(schema: {ranges}): measured {after.bound:.2g}{scales}")
        if after.ratio >= 1 and func in T_TESTS:
            text += f"; the rest is {self._floor(owner)}"
        return text

    def _exact_features(self, name: str, worst: Element, features: list[str]) -> str | None:
        """Rounded features as the cause of a fit's bound, measured: the fit with those
        columns stored as integers (times FEATURE_SCALE), whose rounding is then none and
        whose bound is the exact-feature one (docs/analytics.md, "Storage rounding")."""
        after = self._measure(name, worst.label, tuple(features), FEATURE_SCALE, integer=True)
        if after is None or after.ratio > worst.ratio / 2:
            return None
        self.suggested = Rescaling(tuple(features), FEATURE_SCALE, True, after.bound)
        cols = ", ".join(features)
        ranges = "; ".join(
            f"{c} int in [{round(self.schema.column(c).lo * FEATURE_SCALE)}, "
            f"{round(self.schema.column(c).hi * FEATURE_SCALE)}]" for c in features)
        return (f"the fit's features {cols} are fixed-point, so their storage rounding "
                f"(errors in the variables) enters the worst case at the eigenvalue floor "
                f"min_eig; store them as integers, scaled by 10^d for d decimals (e.g. "
                f"{ranges}): measured {after.bound:.2g}")

    def _width(self, c: str) -> float:
        col = self.schema.column(c)
        return float(col.hi) - float(col.lo)

    def _factor(self, ratio: float, cols: list[str]) -> int | None:
        """The power of ten (at least 10) that divides a term `ratio` times too large below
        its limit, if the scaled columns still fit the encoding."""
        k = 10 ** max(1, math.ceil(math.log10(max(ratio, 1.0))))
        for c in cols:
            col = self.schema.column(c)
            if max(abs(col.lo), abs(col.hi)) * k * 2.0**col.frac_bits >= 2.0**ENCODING_BITS:
                return None
        return k

    def _measure(self, name: str, label: str, cols: tuple[str, ...], k: int,
                 integer: bool = False) -> Element | None:
        """The element's stated bound (and scale) with `cols` stored times k, as integers if
        `integer` (None: the scaled script does not run, e.g. a constant no longer lies in a
        column's range)."""
        key = (cols, k, integer)
        if key not in self.scaled:
            scaled = Rescaling(cols, k, integer, math.nan).schema(self.schema)
            try:
                checked = check(self.source, scaled, self.filename)
                self.scaled[key] = (
                    _Script(checked),
                    synthetic_results(self.source, scaled, self.rows, self.filename,
                                      script=checked))
            except (ScriptError, ValueError) as exc:
                self.scaled[key] = str(exc)
        got = self.scaled[key]
        if isinstance(got, str) or name not in got[1]:
            return None
        script, results = got
        return next((el for el in script.elements(name, results[name]) if el.label == label),
                    None)

    def _small_divisor(self, expr: Any) -> tuple[int, float, float, list[str]] | None:
        """A secret division whose divisor's range reaches 0 or comes within 10^-3 of its
        magnitude: (line, lo, hi, columns of the divisor)."""
        for e in self.script.resolve(expr):
            for d in nodes_of(e, BinOp):
                t = d.right.type
                if d.op != "/" or not isinstance(t, ValueType) or t.label is not \
                        Label.PRIVATE or t.lo is None or t.hi is None:
                    continue
                low = 0.0 if t.lo <= 0 <= t.hi else min(abs(t.lo), abs(t.hi))
                if low <= RELATIVE_LIMIT * max(abs(t.lo), abs(t.hi)):
                    return d.line, float(t.lo), float(t.hi), self.script.columns(d.right)
        return None


def report(bounds: list[Bound], rows: int) -> list[str]:
    """The lines `enigma check` and `enigma script estimate` print: one per reveal, then one
    warning line per large bound."""
    lines = [f"error bounds at {rows:,} rows (stated before the run: the worst case over all "
             f"data in the schema's ranges):"]
    lines += ["  " + b.line() for b in bounds]
    lines += [f"  warning: {b.warning}" for b in bounds if b.warning]
    return lines
