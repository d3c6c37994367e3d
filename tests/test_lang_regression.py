"""Regression without an engine: the public refusals, the plain model and the owner's table.

The secure runs are in tests/test_lang_examples.py (examples regression.py, ols.py,
3 processes) and tests/test_lang_analytics.py (the ridge); here everything the
checker, the plain interpreter and the owner compute, against statsmodels and
scikit-learn on the shipped data.
"""

from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
from sklearn.linear_model import Ridge

from enigma.lang.analytics.precision import PrecisionError, Range
from enigma.lang.analytics.regression import (
    DEFAULT_MIN_EIG,
    check_fit,
    coefficient_table,
    condition_limit,
    max_features,
)
from enigma.lang.checker import check
from enigma.lang.errors import ScriptError
from enigma.lang.plain import least_squares, run_plain
from enigma.lang.runner import run_mpc
from enigma.lang.schema import Schema
from enigma.prep.dealer import DealerFactory

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = Schema.load(ROOT / "examples" / "benefits.yaml")
VALUES = SCHEMA.read_csv(ROOT / "data" / "benefits.csv")
SIX = ["age", "tenure", "stateur", "statemb", "yrdispl", "school12"]


def _column(name: str) -> np.ndarray:
    """A column as the interpreters see it: fixed-point ones rounded to their 2^-16 grid."""
    col = SCHEMA.column(name)
    if col.kind != "fixed":
        return np.asarray(VALUES[name], dtype=float)
    return col.encoding.to_integers(VALUES[name]) / float(1 << col.frac_bits)


def _x(names: list[str]) -> np.ndarray:
    return np.column_stack([_column(c) for c in names])


def test_six_features_pass_the_checker_and_run_as_statsmodels() -> None:
    """The issue's case: six features passed `check` and then crashed the engine."""
    source = f"reveal(ols(data.rr, [{', '.join('data.' + c for c in SIX)}]), 'fit')\n"
    got = run_plain(check(source, SCHEMA), SCHEMA, VALUES).results["fit"].value
    ref = sm.OLS(_column("rr"), sm.add_constant(_x(SIX))).fit()
    z = _x(SIX) / np.array([25.0, 25.0, 10.0, 150.0, 4.5, 0.5])  # the ranges' half-widths
    condition = DEFAULT_MIN_EIG * np.trace(np.linalg.inv(np.cov(z.T, bias=True)))
    np.testing.assert_allclose(got, np.concatenate([ref.params, ref.bse,
                                                    [ref.rsquared, ref.rsquared_adj,
                                                     condition]]),
                               rtol=1e-9, atol=1e-12)
    assert condition < condition_limit(6, 0.0, DEFAULT_MIN_EIG)  # real data meet the floor


@pytest.mark.parametrize("intercept", [True, False])
def test_plain_least_squares_is_statsmodels_ols(intercept: bool) -> None:
    x, y = _x(SIX[:4]), _column("rr")
    fit = least_squares(x, y, np.array([25.0, 25.0, 10.0, 150.0]), intercept)
    ref = sm.OLS(y, sm.add_constant(x) if intercept else x).fit()
    for got, want in ((fit["coef"], ref.params), (fit["se"], ref.bse),
                      (fit["r2"], ref.rsquared), (fit["adj_r2"], ref.rsquared_adj)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_a_ridge_only_when_asked_and_then_scikit_learns() -> None:
    x, y = _x(["age", "tenure"]), _column("rr")
    h = np.array([25.0, 25.0])
    fit = least_squares(x, y, h, True, penalty=1e-3)
    ref = Ridge(alpha=1e-3 * len(y)).fit(x / h, y)
    np.testing.assert_allclose(fit["coef"], np.concatenate([[ref.intercept_], ref.coef_ / h]),
                               rtol=1e-9)
    script = check("reveal(linreg(data.rr, [data.age, data.tenure]), 'b')\n", SCHEMA)
    plain = run_plain(script, SCHEMA, VALUES).results["b"].value
    np.testing.assert_allclose(plain, sm.OLS(y, sm.add_constant(x)).fit().params, rtol=1e-9)


def test_the_limits_are_public_and_named() -> None:
    most = max_features()
    check_fit(most, 10**4, True, 0.0, 1e-3)
    with pytest.raises(PrecisionError, match="features"):
        check_fit(most + 1, 10**4, True, 0.0, 1e-3)
    assert max_features(ridge=1e-3) > most  # a ridge raises the eigenvalue floor
    with pytest.raises(ValueError, match="more rows than coefficients"):
        check_fit(3, 4, True, 0.0, 1e-3)
    with pytest.raises(PrecisionError, match="the scatter"):  # n^2 w^2 beyond the masks
        check_fit(1, 10**6, True, 0.0, 1e-3, [Range(0, 1e6), Range(0, 1)])


@pytest.mark.parametrize("source, words", [
    ("reveal(linreg(data.rr, [data.age], ridge=2), 'b')\n", "must lie in [0, 1]"),
    ("reveal(linreg(data.rr, [data.age], intercept='yes'), 'b')\n", "intercept=True or False"),
    ("reveal(ols(data.rr, [data.age] * 200), 'b')\n", "at most 129"),
])
def test_the_checker_refuses_with_one_clear_line(source: str, words: str) -> None:
    with pytest.raises(ScriptError) as info:
        check(source, SCHEMA)
    assert words in str(info.value)
    assert "Traceback" not in str(info.value)


def test_owner_table_matches_statsmodels_t_and_p() -> None:
    x, y = _x(["age", "tenure", "stateur"]), _column("rr")
    ref = sm.OLS(y, sm.add_constant(x)).fit()
    exact = coefficient_table(ref.params, 0.0, ref.bse, 0.0, int(ref.df_resid))
    np.testing.assert_allclose(exact.t, ref.tvalues, rtol=1e-12)
    np.testing.assert_allclose(exact.p, ref.pvalues, rtol=1e-9, atol=1e-300)
    # perturbed within stated bounds, the exact t and p stay within the table's bounds
    err_b, err_se = 1e-5, 2e-6
    noisy = coefficient_table(ref.params + err_b, err_b, ref.bse - err_se, err_se,
                              int(ref.df_resid))
    assert np.all(np.abs(noisy.t - ref.tvalues) <= noisy.t_error)
    assert np.all(np.abs(noisy.p - ref.pvalues) <= noisy.p_error + 1e-15)


def test_collinear_features_run_and_are_caught_by_the_condition() -> None:
    """Data that break the eigenvalue floor (a column twice): the engine floors the pivots
    and finishes (no traceback, no overflow), and the revealed condition exceeds its limit,
    so the owner knows the bounds do not hold."""
    values = {k: v[:40] for k, v in VALUES.items()}
    source = "reveal(ols(data.rr, [data.tenure, data.tenure]), 'fit')\n"
    got = run_mpc(source, SCHEMA, values, provider_factory=DealerFactory(
        b"test_lang_regression dealer seed", insecure=True)).results["fit"]
    assert got.value[-1] - got.error[-1] > condition_limit(2, 0.0, DEFAULT_MIN_EIG)
