"""Regression without an engine: the public refusals, the plain model and the owner's table.

The secure runs are in tests/test_lang_examples.py (examples regression.py, ols.py,
3 processes) and tests/test_lang_analytics.py (the ridge); here everything the
checker, the plain interpreter and the owner compute, against statsmodels and
scikit-learn on the shipped data.
"""

import math
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import Ridge

from enigma.lang.analytics.precision import PrecisionError, Range
from enigma.lang.analytics.regression import (
    DEFAULT_MIN_EIG,
    check_fit,
    coefficient_table,
    condition_limit,
    max_features,
)
from enigma.lang.analytics.storage import least_squares_shift
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
                                                     condition, 0.0]]),  # not floored
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
    assert got.value[-2] - got.error[-2] > condition_limit(2, 0.0, DEFAULT_MIN_EIG)
    # the owner's table certifies nothing then, and says why in one line
    assert list(got.detail) == ["error"] and "exceeds its limit" in got.detail["error"]


def test_the_owners_table_in_plain_holds_for_the_csv_values() -> None:
    """The plain interpreter fits the stored values exactly (float64), so the owner's table
    states the storage terms alone, at what the fit proves: they hold against statsmodels on
    the CSV's own values and are far below the output grid of a secure run."""
    source = "reveal(ols(data.rr, [data.age, data.tenure, data.stateur]), 'fit')\n"
    got = run_plain(check(source, SCHEMA), SCHEMA, VALUES).results["fit"]
    raw = np.column_stack([VALUES[c].astype(float) for c in ("age", "tenure", "stateur")])
    ref = sm.OLS(VALUES["rr"].astype(float), sm.add_constant(raw)).fit()
    d = got.detail
    terms = ["intercept", "age", "tenure", "stateur"]
    for i, t in enumerate(terms):
        assert abs(d[f"coef[{t}]"] - ref.params[i]) <= d[f"coef_error[{t}]"]
        assert abs(d[f"se[{t}]"] - ref.bse[i]) <= d[f"se_error[{t}]"]
        assert abs(d[f"t[{t}]"] - ref.tvalues[i]) <= d[f"t_error[{t}]"]
    assert abs(d["r2"] - ref.rsquared) <= d["r2_error"] < 1e-4
    assert abs(d["adjusted_r2"] - ref.rsquared_adj) <= d["adjusted_r2_error"] < 1e-4
    assert max(d[f"coef_error[{t}]"] for t in terms) < 1e-4


# ---------------------------------------------------------------- storage rounding of a fit
# `storage.least_squares_shift` bounds how far the exact fit on the stored data lies from the
# exact fit on the data as written. The identity behind it is scale-free, so a coarse grid
# (2^-4) makes the rounding large against float64's own error: every move is visible.

GRID = 2.0**-4


def _standardised_fit(x: np.ndarray, y: np.ndarray, s: np.ndarray, s_y: float,
                      intercept: bool, ridge: float) -> dict:
    """The engine's quantities in exact float64: standardised slopes b~, intercept / s_y,
    residual norm u, |y|, R^2, se (intercept first), kappa = lambda_min(A + r), 1 + q, the
    standardised means and sqrt(((A + r)^-1)_jj)."""
    n, d = x.shape
    if intercept:
        Z = (x - x.mean(axis=0)) / s / math.sqrt(n)
        yv = (y - y.mean()) / s_y / math.sqrt(n)
    else:
        Z, yv = x / s / math.sqrt(n), y / s_y / math.sqrt(n)
    M = Z.T @ Z + ridge * np.eye(d)
    inv = np.linalg.inv(M)
    b = inv @ (Z.T @ yv)
    u = float(np.linalg.norm(yv - Z @ b))
    norm_y = float(np.linalg.norm(yv))
    zbar = x.mean(axis=0) / s
    q1 = 1 + float(zbar @ inv @ zbar)
    dof = n - d - intercept
    se = s_y / s * u * np.sqrt(np.diag(inv) / dof)
    if intercept:
        se = np.concatenate([[s_y * u * math.sqrt(q1 / dof)], se])
    return {"b": b, "c": y.mean() / s_y - zbar @ b if intercept else 0.0, "u": u,
            "norm_y": norm_y, "r2": 1 - (u / norm_y) ** 2, "se": se, "dof": dof,
            "kappa": float(np.linalg.eigvalsh(M)[0]), "q1": q1, "zbar": zbar,
            "g": np.sqrt(np.diag(inv))}


def _written_and_stored(seed: int, n: int, d: int, shift: float, tilt: float
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features in [0, 10] and y in [-5, 5] on the grid, and the values as written: off the
    grid by a common shift plus a tilt times the centred value (|offset| < 1/2 a step), the
    most a rounding can bias a fit; y follows the features so that the fit means something."""
    rng = np.random.default_rng(seed)
    xs = np.round(rng.uniform(0, 10, (n, d)) / GRID) * GRID
    ys = np.clip(np.round((xs @ rng.uniform(-0.5, 0.5, d) - 1 + rng.normal(0, 1, n)) / GRID)
                 * GRID, -5, 5)

    def off(v: np.ndarray, mid: float, half: float) -> np.ndarray:
        o = shift + tilt * (v - mid) / half + rng.uniform(-0.02, 0.02, v.shape)
        return v + np.clip(o, -0.49, 0.49) * GRID

    return off(xs, 5.0, 5.0), off(ys, 0.0, 5.0), xs, ys


def _storage_misses(seed: int, n: int, d: int, intercept: bool, ridge: float, shift: float,
                    tilt: float, y_exact: bool = False, ignore_features: bool = False) -> list:
    """Every element whose written-data value lies beyond `least_squares_shift`'s bound from
    the stored-data value, the bound taken with the stored fit's exact facts (the tightest
    inputs the function admits). `ignore_features`: a deliberately wrong bound that treats
    the features as exact (the rule for integer features), which must fail. `y_exact`: y
    written on the grid (an integer column), so that the features' rounding is all there is."""
    xw, yw, xs, ys = _written_and_stored(seed, n, d, shift, tilt)
    yw = ys if y_exact else yw
    half = np.full(d, 5.0)
    s = half if intercept else half + 5.0  # half-widths, or magnitudes without an intercept
    s_y = 5.0
    sf = _standardised_fit(xs, ys, s, s_y, intercept, ridge)
    wr = _standardised_fit(xw, yw, s, s_y, intercept, ridge)
    delta = GRID / 2
    eps = 0.0 if ignore_features else math.sqrt(d) * delta / s[0]
    sh = least_squares_shift(
        eps, 0.0 if y_exact else delta / s_y, sf["kappa"], ridge, resid=sf["u"],
        norm_b=float(np.linalg.norm(sf["b"])),
        norm_y=sf["norm_y"], lever=float(np.linalg.norm(sf["zbar"])) if intercept else None,
        q_top=sf["q1"] if intercept else None,
        r2_spread=math.sqrt(max(sf["r2"] * (1 - sf["r2"]), 0.0)), d=d)
    slack = 1e-9
    misses = []
    if np.linalg.norm(wr["b"] - sf["b"]) > sh.coef * (1 + slack) + 1e-12:
        misses.append(("coef", np.linalg.norm(wr["b"] - sf["b"]), sh.coef))
    if abs(wr["c"] - sf["c"]) > sh.intercept * (1 + slack) + 1e-12:
        misses.append(("intercept", abs(wr["c"] - sf["c"]), sh.intercept))
    if abs(wr["r2"] - sf["r2"]) > sh.r2 * (1 + slack) + 1e-12:
        misses.append(("r2", abs(wr["r2"] - sf["r2"]), sh.r2))
    dof = sf["dof"]
    fact = s_y / s / math.sqrt(dof)
    se_s, se_w = sf["se"][intercept:], wr["se"][intercept:]
    bound = fact * sf["g"] * sh.se_abs + sh.se_rel * se_s
    if np.any(np.abs(se_w - se_s) > bound * (1 + slack) + 1e-12):
        misses.append(("se", np.abs(se_w - se_s).tolist(), bound.tolist()))
    if intercept and abs(wr["se"][0] - sf["se"][0]) > \
            s_y * sh.se0 / math.sqrt(dof) * (1 + slack) + 1e-12:
        misses.append(("se0", abs(wr["se"][0] - sf["se"][0]), s_y * sh.se0 / math.sqrt(dof)))
    return misses


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**20), n=st.integers(6, 60), d=st.integers(1, 3),
       intercept=st.booleans(), ridge=st.sampled_from([0.0, 0.0, 1e-3, 0.05]),
       shift=st.sampled_from([-0.49, 0.0, 0.3, 0.49]), tilt=st.floats(-0.49, 0.49),
       y_exact=st.booleans())
def test_the_fits_storage_bound_holds_on_fixed_point_features(
        seed: int, n: int, d: int, intercept: bool, ridge: float, shift: float,
        tilt: float, y_exact: bool) -> None:
    """|fit on the written data - fit on the stored data| <= least_squares_shift, for the
    coefficients, intercept, R^2 and every standard error, with features and y off the grid."""
    assume(n > d + intercept + 1)
    assert not _storage_misses(seed, n, d, intercept, ridge, shift, tilt, y_exact)


def test_a_bound_that_ignores_the_features_rounding_is_caught() -> None:
    """The same check with the features treated as exact (eps = 0, the integer-feature rule)
    fails on every draw: the property test tells a bound that is too tight."""
    for seed in range(5):
        for intercept in (True, False):
            caught = _storage_misses(seed, 30, 2, intercept, 0.0, 0.3, 0.3, y_exact=True,
                                     ignore_features=True)
            assert {"coef", "r2", "se"} <= {name for name, *_ in caught}, caught
            assert not _storage_misses(seed, 30, 2, intercept, 0.0, 0.3, 0.3, y_exact=True)


def test_features_rounded_beyond_the_eigenvalue_floor_are_refused_before_the_run() -> None:
    """A fixed feature whose range is narrow against its storage rounding (2^-17 of a range
    of 10^-4: 0.125 of its half-width, beyond sqrt(min_eig)) leaves no bound for the data
    as written: the checker says so in one line, naming the remedies; a ridge is a floor
    that no rounding removes, and an integer feature has no rounding."""
    schema = Schema.from_dict({"name": "narrow", "rows": 50, "columns": [
        {"name": "x", "type": "fixed", "min": 0.0, "max": 0.0001},
        {"name": "z", "type": "int", "min": 0, "max": 10},
        {"name": "y", "type": "fixed", "min": -1.0, "max": 1.0}]})
    with pytest.raises(ScriptError) as info:
        check("reveal(ols(data.y, [data.z, data.x]), 'f')\n", schema)
    assert "storage rounding (0.125 of their scales) is not below sqrt(ridge + min_eig)" \
        in str(info.value)
    assert "store them as integers" in str(info.value) and "Traceback" not in str(info.value)
    check("reveal(ols(data.y, [data.z, data.x], ridge=0.01), 'f')\n", schema)
    check("reveal(ols(data.x, [data.z]), 'f')\n", schema)


def test_no_owners_table_where_the_call_does_not_show_the_rounding() -> None:
    """stateur * 3 carries three times stateur's storage rounding, which only the engine's
    range analysis tracks: the owner's table is not computed from the schema's (it would be
    too tight), and the detail says why; an exact expression (age * 2) keeps its table."""
    computed = "reveal(ols(data.rr, [data.age, data.stateur * 3]), 'fit')\n"
    got = run_plain(check(computed, SCHEMA), SCHEMA, VALUES).results["fit"].detail
    assert list(got) == ["note"] and "no owner's table" in got["note"]
    exact = "reveal(ols(data.rr, [data.age * 2, data.tenure]), 'fit')\n"
    got = run_plain(check(exact, SCHEMA), SCHEMA, VALUES).results["fit"].detail
    assert sum(k.startswith("coef_error[") for k in got) == 3 and "note" not in got


def test_a_nearly_exact_fit_says_its_standard_errors_are_the_floors() -> None:
    """y = 2x + 1 up to noise far below 1/256 of y's range: the engine raises the residual
    to its floor (its se are then the floor's, 0.027 off statsmodels' for the intercept),
    reveals that it did, and the owner's table gives the se no bound and says why, while
    the coefficients and R^2 keep theirs. The plain interpreter flags the same fit."""
    schema = Schema.from_dict({"name": "line", "rows": 60, "columns": [
        {"name": "x", "type": "fixed", "min": 0.0, "max": 10.0},
        {"name": "y", "type": "fixed", "min": 0.0, "max": 25.0}]})
    rng = np.random.default_rng(3)
    x = np.round(rng.uniform(0, 10, 60), 3)
    y = np.round(2 * x + 1 + rng.normal(0, 1e-3, 60), 3)
    source = "reveal(ols(data.y, [data.x]), 'fit')\n"
    ref = sm.OLS(y, sm.add_constant(x)).fit()
    plain = run_plain(check(source, schema), schema, {"x": x, "y": y}).results["fit"]
    got = run_mpc(source, schema, {"x": x, "y": y},
                  provider_factory=DealerFactory(b"nearly exact fit seed!!!!!!!!!!!", insecure=True)
                  ).results["fit"]
    for r in (plain, got):
        assert r.value[-1] == 1.0  # floored
        d = r.detail
        assert "below the floor" in d["note"] and "\n" not in d["note"]
        for i, t in enumerate(["intercept", "x"]):
            assert abs(d[f"coef[{t}]"] - ref.params[i]) <= d[f"coef_error[{t}]"]
            assert d[f"se_error[{t}]"] == np.inf
        assert abs(d["r2"] - ref.rsquared) <= d["r2_error"]
    ordinary = run_plain(check("reveal(ols(data.rr, [data.age]), 'f')\n", SCHEMA), SCHEMA,
                         VALUES).results["f"]
    assert ordinary.value[-1] == 0.0 and "note" not in ordinary.detail
