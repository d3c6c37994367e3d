"""The statistical-test examples against scipy on the same rows, through 3 processes.

The three examples (t-tests, tables of counts, association) read data/benefits.csv; one
secure run of all three together (3 processes, the test dealer) on the first ROWS rows,
as the owner encodes them (fixed point rounded to 2^-16). Each revealed statistic must
lie within its own stated bound of scipy's, the degrees of freedom and counts must be
exact, and the owner's p-value within its stated worst case of scipy's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from enigma.lang.checker import check
from enigma.lang.plain import dry_run
from enigma.lang.pvalues import reveals_of_tests
from enigma.lang.runner import run_mpc
from enigma.lang.schema import Schema
from enigma.prep.dealer import DealerFactory
from tests.test_lang_mpc_library import stored_t

ROOT = Path(__file__).resolve().parents[1]
ROWS = 300
DEALER = DealerFactory(b"test_lang_stats_examples seed!!!", insecure=True)
EXAMPLES = ("ttests", "tables", "association")
SCHEMA = Schema.load(ROOT / "examples" / "benefits.yaml")


@pytest.fixture(scope="module")
def secure():
    """All three examples as one script, run once through 3 processes."""
    values = {k: v[:ROWS] for k, v in SCHEMA.read_csv(ROOT / "data" / "benefits.csv").items()}
    source = "\n".join((ROOT / "examples" / f"{e}.py").read_text().split(
        "# schema: benefits.yaml\n", 1)[1] for e in EXAMPLES)
    out = run_mpc(source, SCHEMA, values, provider_factory=DEALER, filename="examples.py")
    return out.results, values


def _matches(r, statistic: float, df: float, pvalue: float) -> None:
    d = r.detail
    assert "error" not in d, d
    assert abs(d["statistic"] - statistic) <= d["statistic_error"] + 1e-9, (d, statistic)
    assert abs(d["df"] - df) <= d.get("df_error", 0.0) + 1e-9, (d, df)
    assert abs(d["pvalue"] - pvalue) <= d["pvalue_error"] + 1e-9, (d, pvalue)


def _codes(values: dict, name: str) -> np.ndarray:
    return SCHEMA.column(name).encoding.to_integers(values[name])


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_checks_and_dry_runs_with_labelled_tests(example: str) -> None:
    script = check((ROOT / "examples" / f"{example}.py").read_text(), SCHEMA, example)
    outcome = dry_run(script, SCHEMA, rows=200)
    assert set(reveals_of_tests(script)) == set(outcome.results)
    assert all(r.detail for r in outcome.results.values())


def test_ttests_match_scipy(secure) -> None:
    got, values = secure
    rr = _codes(values, "rr") / 2.0**16
    ui = values["ui"].astype(bool)
    age, tenure = values["age"].astype(float), values["tenure"].astype(float)
    welch = stats.ttest_ind(rr[ui], rr[~ui], equal_var=False)
    student = stats.ttest_ind(rr[ui], rr[~ui], equal_var=True)
    one = stats.ttest_1samp(age, 35)
    paired = stats.ttest_rel(age, tenure)
    for name, want in [("rr_by_ui_welch", welch), ("rr_by_ui_student", student),
                       ("age_is_35", one), ("age_vs_tenure", paired)]:
        _matches(got[name], want.statistic, want.df, want.pvalue)
        # the owner's t = diff / se: rr is a fixed column in [0, 0.7] whose worst case at
        # the spread floors is about 10 (docs/analytics.md, "Storage rounding"); the bound
        # from the revealed se reads the statistic to 3 digits
        d = got[name].detail
        assert d["statistic_error"] < 5e-3 * max(1.0, abs(want.statistic)), (name, d)
        assert got[name].error[0] < 1e-2 + stored_t((0.0, 0.7) if name.startswith("rr")
                                                    else None, ROWS, 2), name
        ci = want.confidence_interval()
        shift = 35.0 if name == "age_is_35" else 0.0  # scipy's one-sample interval: the mean
        assert abs(d["ci_low"] - (ci.low - shift)) <= d["ci_error"], (name, d, ci)
        assert abs(d["ci_high"] - (ci.high - shift)) <= d["ci_error"], (name, d, ci)
    assert got["rr_by_ui_student"].detail["df_error"] == 0.0


def test_tables_match_scipy(secure) -> None:
    got, values = secure
    ui, married = values["ui"].astype(int), values["married"].astype(bool)
    table = np.zeros((2, 2))
    np.add.at(table, (ui, _codes(values, "sex")), 1)
    want = stats.chi2_contingency(table, correction=False)
    _matches(got["ui_by_sex"], want.statistic, want.dof, want.pvalue)
    gof = stats.chisquare(np.bincount(_codes(values, "joblost"), minlength=4))
    _matches(got["reasons_even"], gof.statistic, 3, gof.pvalue)
    claimed = got["claimed"].detail
    assert (claimed["count"], claimed["n"]) == (int(ui.sum()), ROWS)
    k, n = int(ui[married].sum()), int(married.sum())
    both = got["married_who_claimed"].detail
    assert (both["count"], both["n"]) == (k, n)
    ci = stats.binomtest(k, n).proportion_ci(method="wilson")
    assert (both["ci_low"], both["ci_high"]) == pytest.approx((ci.low, ci.high))


def test_association_matches_scipy(secure) -> None:
    got, values = secure
    age, tenure = values["age"].astype(float), values["tenure"].astype(float)
    r = stats.pearsonr(age, tenure)
    _matches(got["tenure_with_age"], r.statistic, ROWS - 2, r.pvalue)
    ci = r.confidence_interval()
    d = got["tenure_with_age"].detail
    assert abs(d["ci_low"] - ci.low) < 1e-3 and abs(d["ci_high"] - ci.high) < 1e-3
    rr, reason = _codes(values, "rr") / 2.0**16, _codes(values, "joblost")
    groups = [rr[reason == g] for g in np.unique(reason)]
    f = stats.f_oneway(*groups)
    _matches(got["rr_by_reason"], f.statistic, len(groups) - 1, f.pvalue)
    assert got["rr_by_reason"].detail["df_within"] == ROWS - len(groups)
