"""Logistic regression (`logit`): the plain interpreter and MPC against statsmodels' Logit.

The engine's result is certified a posteriori (analytics/logistic.py): the owner's
`logit_table` bounds the distance of the revealed point to the maximum-likelihood estimate
from the gradient and Hessian revealed with it. These tests check that every stated bound
holds against statsmodels' converged fit on the data as written, also for fits stopped
before convergence and for perturbed certificates, and that separable data (no MLE) are
flagged, never reported as a number.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st

from enigma.lang.analytics.logistic import (
    LogitTable,
    certificate_at,
    logit_table,
    max_features,
    newton_plain,
)
from enigma.lang.analytics.precision import Range
from enigma.lang.checker import check
from enigma.lang.errors import ScriptError
from enigma.lang.plain import dry_run, run_plain
from enigma.lang.runner import run_mpc
from enigma.lang.schema import Schema
from enigma.prep.dealer import DealerFactory

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = Schema.load(ROOT / "examples" / "benefits.yaml")
VALUES = SCHEMA.read_csv(ROOT / "data" / "benefits.csv")
SOURCE = (ROOT / "examples" / "logit.py").read_text()
FEATURES = ["age", "tenure", "stateur"]
RANGES = [Range(20, 70), Range(0, 50), Range(0, 20)]
STORAGE = [0.0, 0.0, 2.0**-17]  # stateur is a fixed column: rounded to 2^-16 when shared
DEALER = DealerFactory(b"test_lang_logit dealer seed!!!!!", insecure=True)
ROWS = 300


def _x(values: dict[str, np.ndarray], encoded: bool) -> np.ndarray:
    """The features as written (the CSV's numbers) or as stored (on the 2^-16 grid)."""
    cols = []
    for name in FEATURES:
        v = np.asarray(values[name], dtype=np.float64)
        cols.append(np.rint(v * 2.0**16) / 2.0**16 if encoded else v)
    return np.column_stack(cols)


def _mle(x: np.ndarray, y: np.ndarray, intercept: bool = True):
    exog = sm.add_constant(x, has_constant="add") if intercept else x
    return sm.Logit(y, exog).fit(method="newton", tol=1e-13, maxiter=200, disp=0)


def _within(table: LogitTable, ref, slack: float = 0.0) -> dict[str, float]:
    """Every value of the table within its bound of statsmodels; the errors measured."""
    measured = {}
    for name, err in (("params", table.params_error), ("bse", table.bse_error),
                      ("tvalues", table.tvalues_error), ("pvalues", table.pvalues_error)):
        got, want = getattr(table, name), np.asarray(getattr(ref, name))
        off = np.abs(got - want)
        assert np.all(off <= err + slack), (name, got, want, err)
        measured[name] = float(off.max())
    assert abs(table.llf - ref.llf) <= table.llf_error + slack, (table.llf, ref.llf)
    # statsmodels fits llnull numerically (to about 1e-9); the closed form is exact
    assert abs(table.llnull - ref.llnull) <= 1e-8 * abs(ref.llnull)
    assert abs(table.prsquared - (1 - ref.llf / table.llnull)) <= table.prsquared_error + slack
    measured["llf"] = abs(table.llf - ref.llf)
    return measured


def test_example_checks_and_dry_runs() -> None:
    script = check(SOURCE, SCHEMA, "examples/logit.py")
    outcome = dry_run(script, SCHEMA, rows=200)
    assert outcome.synthetic
    assert outcome.results["logit"].value.shape == (2 * 4 + 10 + 3,)


def test_plain_interpreter_is_statsmodels_on_all_rows() -> None:
    """Float64 Newton with the engine's steps, on all 4,877 rows: to 1e-6 of statsmodels
    (on the stored values, which the interpreter reads), and within the certified bounds."""
    got = run_plain(check(SOURCE, SCHEMA), SCHEMA, VALUES).results["logit"]
    y = VALUES["ui"].astype(np.float64)
    ref = _mle(_x(VALUES, encoded=True), y)
    table = logit_table(got.value, got.error, RANGES)
    assert table.certified, table.reason
    for name in ("params", "bse", "tvalues"):
        np.testing.assert_allclose(getattr(table, name), getattr(ref, name), rtol=1e-6)
    np.testing.assert_allclose(table.pvalues, ref.pvalues, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(table.llf, ref.llf, rtol=1e-9)
    np.testing.assert_allclose(table.prsquared, ref.prsquared, rtol=1e-6)
    _within(table, ref, 1e-12)
    # the data as written: the storage term widens the bounds, which still hold
    written = logit_table(got.value, got.error, RANGES, True, STORAGE)
    _within(written, _mle(_x(VALUES, encoded=False), y), 1e-12)


@pytest.mark.slow
def test_mpc_example_within_its_bounds_of_statsmodels() -> None:
    """examples/logit.py through 3 engines (threads, test dealer) on 300 rows: the owner's
    table within its stated bounds of statsmodels' MLE on the CSV's values."""
    values = {k: v[:ROWS] for k, v in VALUES.items()}
    start = time.perf_counter()
    got = run_mpc(SOURCE, SCHEMA, values, provider_factory=DEALER,
                  filename="examples/logit.py").results["logit"]
    seconds = time.perf_counter() - start
    y = values["ui"].astype(np.float64)
    # the engine's own bounds: gradient, Hessian and llf at its revealed point, exactly
    exact = certificate_at(_x(values, encoded=True), y, got.value[:4], RANGES)
    assert np.all(np.abs(got.value - exact) <= got.error + 1e-12 * np.abs(exact))
    table = logit_table(got.value, got.error, RANGES, True, STORAGE)
    assert table.certified, table.reason
    measured = _within(table, _mle(_x(values, encoded=False), y))
    plain = run_plain(check(SOURCE, SCHEMA), SCHEMA, values).results["logit"].value
    print(f"\nlogit MPC {seconds:.1f} s; |mpc - plain| {np.abs(got.value - plain).max():.2e}; "
          f"measured {measured}; bounds params {table.params_error.max():.2e} bse "
          f"{table.bse_error.max():.2e} z {table.tvalues_error.max():.2e} llf "
          f"{table.llf_error:.2e}; distance {table.distance:.2e}")


def _problem(seed: int, n: int, d: int, scale: float) -> tuple[np.ndarray, np.ndarray,
                                                               list[Range], np.ndarray]:
    """Features on random ranges (the last one with decimals: stored rounded), y drawn
    from a logistic model."""
    rng = np.random.default_rng(seed)
    lo = rng.integers(-50, 50, d).astype(float)
    hi = lo + rng.integers(2, 60, d)
    x = rng.integers(lo, hi + 1, (n, d)).astype(float)
    x[:, -1] = np.round(rng.uniform(lo[-1], hi[-1], n), 3)
    z = (x - (lo + hi) / 2) / ((hi - lo) / 2)
    beta = rng.normal(0, scale, d + 1)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(beta[0] + z @ beta[1:])))).astype(float)
    return x, y, [Range(a, b) for a, b in zip(lo, hi, strict=True)], \
        np.array([0.0] * (d - 1) + [2.0**-17])


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), n=st.integers(40, 150), d=st.integers(1, 3),
       iterations=st.integers(2, 8), scale=st.floats(0.2, 2.5),
       noise=st.sampled_from([0.0, 1e-9, 1e-6]))
def test_bound_holds_on_random_problems(seed: int, n: int, d: int, iterations: int,
                                        scale: float, noise: float) -> None:
    """Whatever the data and the number of steps, the stated bounds hold against
    statsmodels' MLE on the written data, also when the revealed gradient and Hessian are
    off by up to their stated errors (adversarially signed); or nothing is certified."""
    x, y, ranges, storage = _problem(seed, n, d, scale)
    stored = np.rint(x * 2.0**16) / 2.0**16
    exact = newton_plain(stored, y, ranges, True, iterations)
    k = d + 1
    error = np.zeros_like(exact)
    error[k:-2] = noise
    signs = np.random.default_rng(seed + 1).choice([-1.0, 1.0], size=exact.size)
    table = logit_table(exact + signs * error, error, ranges, True, storage)
    if not table.certified:
        assert "no certified" in table.reason
        return
    ref = _mle(x, y)
    assert ref.mle_retvals["converged"]
    _within(table, ref, 1e-10)


@pytest.mark.slow
def test_separable_data_are_flagged_not_reported() -> None:
    """y = [age > 40]: the likelihood has no maximum; after any number of steps the owner
    is told so (one line), in the plain interpreter and through the engine."""
    values = {k: v[:40] for k, v in VALUES.items()}
    values["ui"] = values["age"] > 40
    source = "reveal(logit(data.ui, [data.age, data.tenure]), 'fit')\n"
    plain = run_plain(check(source, SCHEMA), SCHEMA, values).results["fit"]
    ranges = RANGES[:2]
    table = logit_table(plain.value, plain.error, ranges)
    assert not table.certified
    assert "separable" in table.reason and "\n" not in table.reason
    assert np.all(np.isnan(table.bse)) and np.all(np.isinf(table.params_error))
    got = run_mpc(source, SCHEMA, values, provider_factory=DEALER).results["fit"]
    table = logit_table(got.value, got.error, ranges)
    assert not table.certified and "separable" in table.reason


@pytest.mark.parametrize("source, words", [
    ("reveal(logit(data.rr, [data.age]), 'b')\n", "boolean column"),
    ("reveal(logit(data.ui, [data.age], iterations=0), 'b')\n", "iterations in 1..50"),
    ("reveal(logit(data.ui, [data.age], intercept='no'), 'b')\n", "intercept=True or False"),
    (f"reveal(logit(data.ui, [data.age] * {max_features() + 1}), 'b')\n", "at most"),
])
def test_the_checker_refuses_with_one_clear_line(source: str, words: str) -> None:
    with pytest.raises(ScriptError) as info:
        check(source, SCHEMA)
    assert words in str(info.value)
    assert "Traceback" not in str(info.value)


def test_without_an_intercept_as_statsmodels() -> None:
    values = {k: v[:500] for k, v in VALUES.items()}
    source = "reveal(logit(data.ui, [data.age, data.tenure], intercept=False), 'fit')\n"
    got = run_plain(check(source, SCHEMA), SCHEMA, values).results["fit"]
    y = values["ui"].astype(np.float64)
    ref = _mle(_x(values, True)[:, :2], y, intercept=False)
    table = logit_table(got.value, got.error, RANGES[:2], False)
    assert table.certified, table.reason
    np.testing.assert_allclose(table.params, ref.params, rtol=1e-6)
    np.testing.assert_allclose(table.bse, ref.bse, rtol=1e-6)


def test_the_owner_reads_the_table_in_the_result_detail() -> None:
    """`enigma script run` prints `Revealed.detail`: the owner's table (with the storage
    rounding of the schema's fixed columns), read from the owner's own checked script."""
    values = {k: v[:ROWS] for k, v in VALUES.items()}
    source = "fit = logit(data.ui, [data.age, data.tenure, data.stateur])\nreveal(fit, 'f')\n"
    got = run_plain(check(source, SCHEMA), SCHEMA, values).results["f"]
    table = logit_table(got.value, got.error, RANGES, True, STORAGE)
    assert got.test == "logit"
    assert got.detail["coef[age]"] == table.params[1]
    assert got.detail["se_error[stateur]"] == table.bse_error[3]
    assert got.detail["p[intercept]"] == table.pvalues[0]
    assert got.detail["prsquared"] == table.prsquared
    values["ui"] = values["age"] > 40
    flagged = run_plain(check(source, SCHEMA), SCHEMA, values).results["f"]
    assert set(flagged.detail) == {"error"} and "separable" in flagged.detail["error"]


@pytest.mark.parametrize("features", ["[data.rr * 2]", "[data.age, data.rr + data.stateur]"])
def test_a_feature_carrying_more_rounding_than_its_type_says_is_refused(features: str) -> None:
    """The owner's certificate takes each feature's storage rounding from its type; a
    computed feature with more (rr * 2 carries 2 x 2^-17) would understate it: refused."""
    values = {k: v[:40] for k, v in SCHEMA.read_csv(ROOT / "data" / "benefits.csv").items()}
    source = f"reveal(logit(data.ui, {features}), 'fit')\n"
    with pytest.raises(Exception) as info:
        run_mpc(source, SCHEMA, values, provider_factory=DEALER)
    assert "computed columns with rounding" in str(info.value)
