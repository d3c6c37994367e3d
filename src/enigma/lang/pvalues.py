"""The owner's half of a statistical test: p-values and intervals from what was revealed.

A test call of a script (`ttest`, `ttest_1samp`, `ttest_rel`, `chi2`, `chisquare`,
`pearsonr`, `anova`, `proportion`) reveals a short vector computed in MPC: the
statistic and what its distribution needs (degrees of freedom, counts). Everything
after that is a public function of the revealed vector, so it runs where the
result is read, on the owner's side, with scipy (imported only here, only when a
result has a test): nodes never see it, and no p-value costs a round.

Which revealed names are tests the owner reads from its own checked script (a
`reveal` of a test call, directly or through a name assigned from one), never
from what a node states. Each such result gets `Revealed.detail`: the labelled
statistic, degrees of freedom, p-value (two-sided; the upper tail for chi-square and F)
and, where it has one, a 95% confidence interval; or, for a t-test whose sample had
(next to) no spread, an `error` saying so instead of a p-value. The stated error bound of
the statistic is carried into `statistic_error`, and the p-value's worst case over
the statistic's error interval into `pvalue_error`, so a result near a threshold
shows that it is.

A t-test also reveals its numerator (the mean difference) and standard error: the owner's
t is their quotient, bounded by their bounds (`t_quotient`), far tighter than the engine's
worst case at the spread floor wherever the sample has spread; they also give the 95%
interval of the mean difference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .analytics.precision import Range
from .axes import column_types
from .interpreter import Outcome, Revealed
from .lattice import const_value
from .syntax import Call, ColumnRef, Script, Var, nodes_of, reveals_and_assignments

LEVEL = 0.95
"""Confidence level of every interval."""

T_VECTOR = ("statistic", "df", "floored", "mean_difference", "se")
"""A t-test's vector: t, its df, the count of floored spreads, and t's numerator (the
difference of the means; one sample: mean - popmean, paired: the mean of x - y) with its
standard error, t = mean_difference / se."""

TESTS: dict[str, tuple[str, ...]] = {
    "ttest": T_VECTOR,
    "ttest_1samp": T_VECTOR,
    "ttest_rel": T_VECTOR,
    "chi2": ("statistic", "df"),
    "chisquare": ("statistic", "df"),
    "pearsonr": ("statistic", "df", "floored"),
    "proportion": ("count", "n"),
    "anova": ("eta_squared", "df", "df_within", "floored"),
}
"""Test functions of the library and the labels of the vector each reveals, in order."""


def _t_p(t: float, df: float) -> float:
    from scipy import stats

    return float(2 * stats.t.sf(abs(t), df))


def _chi2_p(x: float, df: float) -> float:
    from scipy import stats

    return float(stats.chi2.sf(x, df))


def _pearson_p(r: float, df: float) -> float:
    from scipy import stats

    r = min(max(r, -1.0), 1.0)
    if abs(r) == 1.0:
        return 0.0
    return float(2 * stats.t.sf(abs(r) * math.sqrt(df / (1 - r * r)), df))


def _worst(p: Callable[[float], float], x: float, err: float) -> float:
    """How far p can move while the statistic moves within [x - err, x + err] (p is
    monotone in |x| for every test here, so the ends and 0 cover the extremes)."""
    if not err:
        return 0.0
    points = [x - err, x + err] + ([0.0] if x - err < 0 < x + err else [])
    here = p(x)
    return max(abs(p(v) - here) for v in points)


def _pearson_ci(r: float, n: float) -> tuple[float, float]:
    """Fisher's z interval, as scipy's `PearsonRResult.confidence_interval()`."""
    from scipy import stats

    if n <= 3 or abs(r) >= 1:
        return (r, r) if abs(r) >= 1 else (-1.0, 1.0)
    z = math.atanh(r)
    h = stats.norm.ppf((1 + LEVEL) / 2) / math.sqrt(n - 3)
    return math.tanh(z - h), math.tanh(z + h)


def detail(test: str, value: np.ndarray, error: np.ndarray) -> dict[str, float]:
    """The labelled result of one test from its revealed vector and error bounds."""
    v = [float(a) for a in np.asarray(value).reshape(-1)]
    e = [float(a) for a in np.asarray(error).reshape(-1)]
    if len(v) != len(TESTS[test]):
        raise ValueError(f"{test}: expected {len(TESTS[test])} revealed values, got {len(v)}")
    if test == "proportion":
        from scipy import stats

        k, n = round(v[0]), round(v[1])
        if n <= 0:
            return {"count": k, "n": n, "proportion": float("nan")}
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=LEVEL, method="wilson")
        return {"count": k, "n": n, "proportion": k / n, "ci_low": float(ci.low),
                "ci_high": float(ci.high)}
    if test == "anova":
        return _anova(v, e)
    stat, df = v[:2]
    out = {"statistic": stat, "statistic_error": e[0], "df": df, "df_error": e[1]}
    if len(v) > 2 and round(v[2]):
        what = "r of a column" if test == "pearsonr" else "t of a sample of fewer than 2 " \
            "values or"
        out["error"] = (f"{round(v[2])} spread(s) below the floor (min_std = 1/256 of the "
                        f"range) or sample(s) too small: {what} without spread is undefined, "
                        "and the value shown is that of the floored spread; no p-value")
        return out
    if test in ("chi2", "chisquare"):
        out["pvalue"] = _chi2_p(stat, df)
        out["pvalue_error"] = _worst(lambda s: _chi2_p(max(s, 0.0), df), stat, e[0])
    elif test == "pearsonr":
        out["pvalue"] = _pearson_p(stat, df)
        out["pvalue_error"] = _worst(lambda s: _pearson_p(s, df), stat, e[0])
        out["ci_low"], out["ci_high"] = _pearson_ci(stat, df + 2)
    else:
        _t_parts(out, v, e)
        stat, err = out["statistic"], out["statistic_error"]
        out["pvalue"] = _t_p(stat, df)
        # the df's own error moves p far less than the statistic's; both ends count
        out["pvalue_error"] = max(_worst(lambda s, d=d: _t_p(s, d), stat, err)
                                  + abs(_t_p(stat, d) - out["pvalue"])
                                  for d in (max(df - e[1], 1.0), df + e[1]))
    return out


def t_quotient(diff: float, diff_err: float, se: float, se_err: float) -> tuple[float, float]:
    """t = diff / se from the revealed numerator and standard error, and its bound:
    |diff'/se' - D/S| <= (|diff' - D| + |diff'/se'| |se' - S|) / S with S >= se' - se_err
    (inf where se' - se_err <= 0: no bound from this route). Sound whatever the data, and
    tight where se is far above its error, as in real samples: the MPC t's own bound is
    the worst case at the spread floor, where se is smallest."""
    if se - se_err <= 0:
        return (diff / se if se > 0 else 0.0), math.inf
    t = diff / se
    return t, (diff_err + abs(t) * se_err) / (se - se_err)


def _t_parts(out: dict[str, float], v: list[float], e: list[float]) -> None:
    """The owner's half of a t-test: t from diff / se where that is bounded tighter than the
    engine's t (it always is above the floor), and the 95% interval of the mean difference,
    diff -+ q se with q the t quantile at df (scipy's `confidence_interval()`; one sample:
    of mean - popmean). `ci_error` bounds how far either end can move: the errors of diff
    and q se, and q's move while df moves within its bound."""
    from scipy import stats

    diff, se = v[3], v[4]
    t, err = t_quotient(diff, e[3], se, e[4])
    if err < out["statistic_error"]:
        out["statistic"], out["statistic_error"] = t, err
    out["mean_difference"], out["mean_difference_error"] = diff, e[3]
    out["se"], out["se_error"] = se, e[4]
    df = max(out["df"], 1.0)
    q = float(stats.t.ppf((1 + LEVEL) / 2, df))
    q_move = max(abs(float(stats.t.ppf((1 + LEVEL) / 2, d)) - q)
                 for d in (max(df - e[1], 1.0), df + e[1]))
    out["ci_low"], out["ci_high"] = diff - q * se, diff + q * se
    out["ci_error"] = e[3] + q * e[4] + q_move * (se + e[4])


def _f_of(eta2: float, between: float, within: float) -> float:
    eta2 = min(max(eta2, 0.0), 1.0)
    return math.inf if eta2 >= 1 else eta2 / (1 - eta2) * within / between


def _anova(v: list[float], e: list[float]) -> dict[str, float]:
    """F and its upper-tail p-value from eta^2 and the group counts (see analytics/anova.py);
    F's error is its largest move while eta^2 moves within its bound."""
    from scipy import stats

    eta2, between, within, floored = v
    out = {"eta_squared": eta2, "eta_squared_error": e[0], "df": between, "df_within": within}
    if round(floored):
        out["error"] = ("the column's variance is below the floor (min_std = 1/256 of its "
                        "range): F of values without spread is undefined; no p-value")
        return out
    if between < 1 or within < 1:
        rows = round(between + within + 1)
        out["error"] = (f"{round(between) + 1} group(s) with values among {rows} rows: F "
                        "needs at least 2 groups and more rows than groups")
        return out
    F = _f_of(eta2, between, within)
    ends = [_f_of(eta2 + s * e[0], between, within) for s in (-1, 1)]
    out["statistic"] = F
    out["statistic_error"] = max(abs(x - F) for x in ends)
    out["pvalue"] = float(stats.f.sf(F, between, within))
    out["pvalue_error"] = max(abs(float(stats.f.sf(x, between, within)) - out["pvalue"])
                              for x in ends)
    return out


def _reveal_calls(script: Script) -> dict[str, list[Call | None]]:
    """Reveal name -> the calls its value comes from, read from the owner's script: the
    revealed call itself, or every assignment of the revealed name (None: not a call)."""
    reveals, assigns = reveals_and_assignments(script)
    assigned = {name: [a.value if isinstance(a.value, Call) else None for a in items]
                for name, items in assigns.items()}
    return {r.name: [r.value] if isinstance(r.value, Call) else
            assigned.get(r.value.name, []) if isinstance(r.value, Var) else []
            for r in reveals}


def reveals_of_tests(script: Script) -> dict[str, str]:
    """Reveal name -> test function, for every `reveal` of a test call in the script: the
    call itself, or a name whose every assignment in the script is a call of that test."""
    out = {}
    for name, calls in _reveal_calls(script).items():
        funcs = {c.func if c is not None else "" for c in calls}
        if len(funcs) == 1 and (func := next(iter(funcs))) in TESTS:
            out[name] = func
    return out


def finish(script: Script, results: dict[str, Revealed],
           rows: int | None = None) -> dict[str, Revealed]:
    """Attach each test's labelled detail to its revealed result (in place; returned), a
    logistic regression's table (`analytics.logistic.logit_table`) and, given the job's
    public row count, a least-squares table (`analytics.regression.ols_table`)."""
    for name, func in reveals_of_tests(script).items():
        if name in results:
            r = results[name]
            r.test = func
            r.detail = detail(func, r.value, r.error)
    for name, calls in _reveal_calls(script).items():
        if name in results and len(calls) == 1 and calls[0] is not None \
                and calls[0].func == "logit":
            r = results[name]
            r.test, r.detail = "logit", logit_detail(calls[0], r)
        elif name in results and rows and len(calls) == 1 and calls[0] is not None \
                and calls[0].func == "ols":
            r = results[name]
            r.test, r.detail = "ols", ols_detail(calls[0], r, rows)
    return results


def _term_rows(terms: list[str], stat: str, values: tuple, errors: tuple) -> dict[str, Any]:
    """A regression table's rows by term: coef[t], se[t], <stat>[t], p[t] and their
    *_error, from (coef, se, statistic, p) and their bounds."""
    out: dict[str, Any] = {}
    names = ("coef", "se", stat, "p")
    for i, t in enumerate(terms):
        for name, v, e in zip(names, values, errors, strict=True):
            out[f"{name}[{t}]"] = float(v[i])
            out[f"{name}_error[{t}]"] = float(e[i])
    return out


def ols_detail(call: Call, r: Revealed, rows: int) -> dict[str, Any]:
    """statsmodels' OLS table from a revealed `ols` vector of `rows` rows: coef, se, t, p per
    term, R^2 and adjusted R^2, each with the owner's bound against the fit on the data as
    written (`regression.ols_table`: the engine's worst-case storage terms replaced by what
    the revealed values prove). The ranges, intercept, ridge and storage rounding come from
    the owner's own checked call."""
    from .analytics.regression import ols_table

    a = _fit_call(call, (np.asarray(r.value).size - 3) // 2)  # 2 k + 3 values
    if a["storage"] is None:
        return {"note": "no owner's table: a feature or y is computed from a fixed-point "
                        "column, whose storage rounding the owner's call does not show; the "
                        "engine's bounds stand (regress on the columns themselves)"}
    types = column_types(a["x"], a["d"])
    ranges = [Range(float(t.lo), float(t.hi)) for t in types]
    y = a["y"].type
    table = ols_table(r.value, r.error, ranges, Range(float(y.lo), float(y.hi)), rows,
                      a["intercept"], a["ridge"], storage=[*a["storage"]])
    k = table.coef.size
    terms = list(r.axes[0].labels[:k]) if r.axes else [f"b{i}" for i in range(k)]
    if not table.certified:
        return {"error": table.reason}
    out = _term_rows(terms, "t", (table.coef, table.se, table.t, table.p),
                     (table.coef_error, table.se_error, table.t_error, table.p_error))
    out |= {"r2": table.r2, "r2_error": table.r2_error, "adjusted_r2": table.adj_r2,
            "adjusted_r2_error": table.adj_r2_error, "df_resid": table.dof}
    if table.reason:
        out["note"] = table.reason
    return out


def _fit_call(call: Call, k: int) -> dict[str, Any]:
    """The public parameters of a checked `ols` call of k coefficients: y, x, d, intercept,
    ridge and the storage rounding of each column of x, then y: the schema's, where each is a
    column of the data or an expression of exact (not fixed-point) columns (None otherwise:
    an expression of a fixed column, x * 3, carries a multiple of its rounding, which only
    the engine's range analysis tracks)."""
    from .analytics.storage import type_rounding
    from .library import bind

    a = bind(call.func, list(call.args), dict(call.kwargs))
    x = a["x"]
    intercept = bool(const_value(a["intercept"])) if "intercept" in a else True
    d = k - intercept
    types = column_types(x, d)
    y = a["y"].type
    nodes = [*(x.items if hasattr(x, "items") else [x]), a["y"]]
    known = all(isinstance(v, ColumnRef) or (not _fixed(v.type) and not any(
        _fixed(c.type) for c in nodes_of(v, ColumnRef))) for v in nodes)
    return {"y": a["y"], "x": x, "d": d, "intercept": intercept,
            "ridge": float(const_value(a["ridge"])) if "ridge" in a else 0.0,
            "storage": type_rounding([*types, y]) if known else None}


def _fixed(t: Any) -> bool:
    """A fixed-point value (or a list or tuple holding one): stored rounded."""
    items = getattr(t, "items", None) or [getattr(t, "element", t)]
    return any(getattr(getattr(i, "kind", None), "name", "fixed") == "fixed" for i in items)


def logit_detail(call: Call, r: Revealed) -> dict[str, Any]:
    """statsmodels' Logit table from a revealed `logit` vector: the ranges, the intercept and
    the storage rounding of the features from the owner's checked call (`logit_table`)."""
    from .analytics.logistic import logit_table
    from .analytics.storage import type_rounding
    from .library import bind

    a = bind("logit", list(call.args), dict(call.kwargs))
    intercept = bool(const_value(a["intercept"])) if "intercept" in a else True
    size = np.asarray(r.value).size
    k = next(k for k in range(1, size) if 2 * k + k * (k + 1) // 2 + 3 == size)
    d = k - intercept
    types = column_types(a["x"], d)  # the checker refused features without ranges
    storage = type_rounding(types)
    table = logit_table(r.value, r.error, [Range(float(t.lo), float(t.hi)) for t in types],
                        intercept, storage)
    terms = list(r.axes[0].labels[:k]) if r.axes else [f"b{i}" for i in range(k)]
    if not table.certified:
        return {"error": table.reason}
    out = _term_rows(terms, "z", (table.params, table.bse, table.tvalues, table.pvalues),
                     (table.params_error, table.bse_error, table.tvalues_error,
                      table.pvalues_error))
    return out | {"llf": table.llf, "llf_error": table.llf_error, "llnull": table.llnull,
                  "prsquared": table.prsquared, "prsquared_error": table.prsquared_error}


def finish_outcome(script: Script, outcome: Outcome, rows: int | None = None) -> Outcome:
    finish(script, outcome.results, rows)
    return outcome
