"""The analytics library as scripts call it: one table of names, parameters and typing rules.

Every reader of a library call takes its facts from `LIBRARY`, so a function
is offered in one place or not at all: the checker accepts exactly these
names, binds arguments by `params` and types the call with the rule of
`signatures.Library` named by `rule`; the plain interpreter (`plain.py`) and
the compiler (`mpc_backend.py`, `mpc_library.py`) bind arguments by the same
`params`; docs/language.md lists these names, no more and no fewer
(tests/test_lang_library.py reads one against the other).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Function:
    """One library function: its parameters in call order, how many are required, its rule."""

    params: tuple[str, ...]
    required: int
    rule: str
    """The `signatures.Library` method that types a call (several functions share one)."""


LIBRARY: dict[str, Function] = {
    "count": Function(("x", "where"), 1, "count"),
    "sum": Function(("x", "where"), 1, "reduce"),
    "mean": Function(("x", "where"), 1, "reduce"),
    "variance": Function(("x", "where", "ddof"), 1, "reduce"),
    "std": Function(("x", "where", "ddof"), 1, "reduce"),
    "min": Function(("x", "where"), 1, "minmax"),
    "max": Function(("x", "where"), 1, "minmax"),
    "median": Function(("x", "where"), 1, "reduce"),
    "percentile": Function(("x", "q", "where"), 2, "reduce"),
    "histogram": Function(("x", "bins", "range", "where"), 1, "histogram"),
    "group_by": Function(("key", "values", "agg"), 1, "group_by"),
    "where": Function(("x", "mask"), 2, "where"),
    "select": Function(("cond", "a", "b"), 3, "where"),
    "cov": Function(("x", "y"), 2, "pair"),
    "corr": Function(("x", "y"), 2, "pair"),
    "linreg": Function(("y", "x", "intercept", "ridge"), 2, "linreg"),
    "ols": Function(("y", "x", "intercept", "ridge"), 2, "linreg"),
    "logit": Function(("y", "x", "intercept", "iterations"), 2, "logit"),
    "kmeans": Function(("x", "k", "iters", "init", "ties"), 2, "kmeans"),
    "ttest": Function(("x", "y", "equal_var"), 2, "stat_test"),
    "ttest_1samp": Function(("x", "popmean"), 2, "stat_test"),
    "ttest_rel": Function(("x", "y"), 2, "stat_test"),
    "chi2": Function(("x", "y"), 2, "chi2"),
    "chisquare": Function(("x", "p"), 1, "stat_test"),
    "pearsonr": Function(("x", "y"), 2, "stat_test"),
    "proportion": Function(("x", "where"), 1, "stat_test"),
    "anova": Function(("x", "group"), 2, "stat_test"),
    "sqrt": Function(("x",), 1, "elementwise"),
    "exp": Function(("x",), 1, "elementwise"),
    "log": Function(("x",), 1, "elementwise"),
    "abs": Function(("x",), 1, "elementwise"),
    "clip": Function(("x", "lo", "hi"), 3, "clip"),
    "len": Function(("x",), 1, "len_"),
}
"""Functions a script may call besides its own, in the order the docs list them."""


def bind(name: str, args: list, kwargs: dict) -> dict:
    """A call's arguments by parameter name (the checker has refused any that do not fit)."""
    return dict(zip(LIBRARY[name].params, args, strict=False)) | kwargs
