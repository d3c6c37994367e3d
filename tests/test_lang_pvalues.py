"""Statistical tests: the statistic in MPC or in the clear, the p-value on the owner's side.

Each test of the library against scipy: in the plain interpreter on both shipped datasets
(to 1e-9), on the engine (3 parties in threads, the test dealer) within each statistic's
own stated bound, and the owner's p-values and intervals (`lang.pvalues`) against
scipy's; then the edge cases (equal samples, a sample of 2, no spread at all) in both
backends alike. The 3-process runs are tests/test_lang_stats_examples.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from enigma.lang.checker import check
from enigma.lang.plain import run_plain
from enigma.lang.pvalues import TESTS, detail, reveals_of_tests, t_quotient
from enigma.lang.runner import run_mpc
from enigma.lang.schema import Schema
from enigma.lang.simulation import thread_quorum
from enigma.lang.syntax import reveals_and_assignments
from enigma.prep.dealer import DealerFactory

ROOT = Path(__file__).resolve().parents[1]
DEALER = DealerFactory(b"test_lang_pvalues dealer seed!", insecure=True)
SMALL = Schema.from_dict({"name": "small", "rows": 40, "columns": [
    {"name": "x", "type": "fixed", "min": 0.0, "max": 10.0},
    {"name": "y", "type": "fixed", "min": 0.0, "max": 10.0},
    {"name": "z", "type": "fixed", "min": 0.0, "max": 10.0},
    {"name": "g", "type": "category", "levels": ["a", "b", "c"]},
    {"name": "flag", "type": "bool"},
    {"name": "pair", "type": "bool"}]})


def _secure(source: str, schema: Schema, values: dict) -> dict:
    return run_mpc(source, schema, values, provider_factory=DEALER, filename="t.py",
                   quorum=thread_quorum).results


def _plain(source: str, schema: Schema, values: dict) -> dict:
    return run_plain(check(source, schema, "t.py"), schema, values).results


def _small(seed: int = 5, n: int = 40) -> dict:
    rng = np.random.default_rng(seed)
    flag = np.zeros(n, bool)
    flag[: n // 2] = True
    pair = np.zeros(n, bool)
    pair[[3, 30]] = True  # a sample of exactly two rows
    return {"x": np.round(rng.uniform(0, 10, n), 3), "y": np.round(rng.uniform(0, 10, n), 3),
            "z": np.full(n, 3.0), "g": np.array(["a", "b", "c"] * (n // 3) + ["a"] * (n % 3)),
            "flag": flag, "pair": pair}


def _encoded(schema: Schema, values: dict, name: str) -> np.ndarray:
    col = schema.column(name)
    if col.kind == "fixed":
        return col.encoding.to_integers(values[name]) / float(1 << col.frac_bits)
    if col.kind == "category":
        return col.encoding.to_integers(values[name])
    return np.asarray(values[name], dtype=np.float64)


# ------------------------------------------------------------- the owner's side


@pytest.mark.parametrize("stat, df", [(2.5, 10.0), (-0.3, 3.5), (40.0, 200.0)])
def test_t_pvalue_is_scipys(stat: float, df: float) -> None:
    se = 0.25
    d = detail("ttest", np.array([stat, df, 0.0, stat * se, se]), np.zeros(5))
    assert d["pvalue"] == pytest.approx(2 * stats.t.sf(abs(stat), df), rel=1e-12)
    assert d["pvalue_error"] == 0.0
    q = stats.t.ppf(0.975, df)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((stat * se - q * se, stat * se + q * se))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(diff=st.floats(-5, 5), se=st.floats(1e-3, 10), rel_d=st.floats(0, 1e-2),
       rel_s=st.floats(0, 0.5), pull=st.tuples(st.floats(-1, 1), st.floats(-1, 1)))
def test_owners_t_bound_holds_for_every_numerator_and_se_within_theirs(
        diff: float, se: float, rel_d: float, rel_s: float, pull: tuple[float, float]) -> None:
    """t = diff / se from revealed values off by at most their bounds: the exact quotient
    lies within the stated bound of the owner's, wherever the exact values are."""
    e_d, e_s = rel_d * (abs(diff) + 1e-3), rel_s * se
    exact_d, exact_s = diff + pull[0] * e_d, se + pull[1] * e_s
    if exact_s <= 0:
        return
    t, bound = t_quotient(diff, e_d, se, e_s)
    assert abs(t - exact_d / exact_s) <= bound * (1 + 1e-12) + 1e-15
    assert t_quotient(diff, e_d, 1e-3, 2e-3)[1] == math.inf  # se may be 0: no bound


def test_owners_t_bound_replaces_the_worst_case_only_where_tighter() -> None:
    worst = np.array([12.0, 0.0, 0.0, 1e-5, 1e-5])
    d = detail("ttest", np.array([2.0, 50.0, 0.0, 0.02, 0.01]), worst)
    assert d["statistic"] == pytest.approx(2.0)
    assert d["statistic_error"] == pytest.approx((1e-5 + 2 * 1e-5) / (0.01 - 1e-5))
    loose = detail("ttest", np.array([2.0, 50.0, 0.0, 0.02, 0.01]),
                   np.array([1e-4, 0.0, 0.0, 1e-3, 9e-3]))
    assert loose["statistic_error"] == pytest.approx(1e-4)  # the engine's, tighter here


def test_pvalue_error_covers_the_statistics_error() -> None:
    d = detail("chi2", np.array([3.0, 2.0]), np.array([0.1, 0.0]))
    ends = [stats.chi2.sf(s, 2) for s in (2.9, 3.1)]
    assert max(abs(p - d["pvalue"]) for p in ends) <= d["pvalue_error"] + 1e-15
    assert d["pvalue_error"] > 0


def test_anova_f_and_its_error_come_from_eta2() -> None:
    eta2, k, n = 0.2, 3, 63
    d = detail("anova", np.array([eta2, k - 1, n - k, 0.0]), np.array([1e-4, 0, 0, 0]))
    F = eta2 / (1 - eta2) * (n - k) / (k - 1)
    assert d["statistic"] == pytest.approx(F)
    assert d["pvalue"] == pytest.approx(stats.f.sf(F, k - 1, n - k))
    assert d["statistic_error"] >= abs((eta2 + 1e-4) / (1 - eta2 - 1e-4) * 30 - F) - 1e-12


def test_reveals_of_tests_follow_the_script_not_the_nodes() -> None:
    script = check("t = ttest(data.x, data.y)\n"
                   "u = ttest(data.x, data.y)\n"
                   "u = mean(data.x)\n"
                   "reveal(t, 'direct_name')\n"
                   "reveal(u, 'reassigned')\n"
                   "reveal(chi2(data.g, data.flag), 'call')\n"
                   "reveal(mean(data.x), 'not_a_test')\n", SMALL)
    assert reveals_of_tests(script) == {"direct_name": "ttest", "call": "chi2"}


def test_the_script_walk_reaches_loops_branches_and_functions() -> None:
    """`reveals_and_assignments` (pvalues' tests and the advice read it): the assignments in
    both branches of an if inside a loop and in a function's body; a name assigned a call of
    a script function is not a test, and an item assignment names its container only."""
    script = check("def f(a):\n"
                   "    s = ttest(a, data.y)\n"
                   "    return s\n"
                   "\n"
                   "v = [mean(data.x), mean(data.y)]\n"
                   "for i in range(2):\n"
                   "    if i == 0:\n"
                   "        w = ttest(data.x, data.y)\n"
                   "    else:\n"
                   "        w = ttest(data.z, data.y)\n"
                   "v[0] = 1.0\n"
                   "t = f(data.x)\n"
                   "reveal(w, 'loop')\n"
                   "reveal(t, 'from_function')\n"
                   "reveal(v, 'list')\n", SMALL)
    reveals, assigned = reveals_and_assignments(script)
    assert [r.name for r in reveals] == ["loop", "from_function", "list"]
    assert {name: len(items) for name, items in assigned.items()} == {"v": 1, "w": 2, "t": 1,
                                                                     "s": 1}
    assert reveals_of_tests(script) == {"loop": "ttest"}


def test_every_test_has_a_label_per_revealed_value() -> None:
    for name, labels in TESTS.items():
        source = {"ttest": "ttest(data.x, data.y)", "ttest_1samp": "ttest_1samp(data.x, 5)",
                  "ttest_rel": "ttest_rel(data.x, data.y)", "chi2": "chi2(data.g, data.flag)",
                  "chisquare": "chisquare(data.g)", "pearsonr": "pearsonr(data.x, data.y)",
                  "proportion": "proportion(data.flag)", "anova": "anova(data.x, data.g)"}[name]
        got = _plain(f"reveal({source}, 'r')", SMALL, _small())["r"]
        assert got.value.shape == (len(labels),), name
        assert (got.test == name and "pvalue" in got.detail) or name == "proportion"


# ------------------------------------------------------- the statistics vs scipy

BENEFITS = """
reveal(ttest(where(data.rr, data.ui), where(data.rr, not data.ui)), "welch")
reveal(ttest(where(data.rr, data.ui), where(data.rr, not data.ui), equal_var=True), "student")
reveal(ttest(data.age, data.tenure), "welch_columns")
reveal(ttest_1samp(data.rr, 0.45), "one")
reveal(ttest_rel(data.age, data.tenure), "paired")
reveal(chi2(data.joblost, data.sex), "chi2")
reveal(chisquare(data.joblost, [0.4, 0.2, 0.2, 0.2]), "gof")
reveal(pearsonr(data.stateur, data.rr), "r")
reveal(anova(data.age, data.joblost), "anova")
reveal(proportion(data.ui, where=data.sex == "female"), "prop")
reveal(variance(data.age, ddof=1), "var1")
reveal(std(data.tenure, ddof=1), "std1")
reveal(variance(data.age, where=data.ui, ddof=1), "var1_filtered")
"""


def _scipy_benefits(schema: Schema, values: dict) -> dict:
    v = {c: _encoded(schema, values, c) for c in
         ("rr", "age", "tenure", "stateur", "joblost", "sex")}
    ui = np.asarray(values["ui"], bool)
    female = v["sex"] == schema.column("sex").levels.index("female")
    table = np.zeros((4, 2))
    np.add.at(table, (v["joblost"].astype(int), v["sex"].astype(int)), 1)
    counts = np.bincount(v["joblost"].astype(int), minlength=4)
    groups = [v["age"][v["joblost"] == g] for g in range(4)]
    return {
        "welch": stats.ttest_ind(v["rr"][ui], v["rr"][~ui], equal_var=False),
        "student": stats.ttest_ind(v["rr"][ui], v["rr"][~ui], equal_var=True),
        "welch_columns": stats.ttest_ind(v["age"], v["tenure"], equal_var=False),
        "one": stats.ttest_1samp(v["rr"], 0.45),
        "paired": stats.ttest_rel(v["age"], v["tenure"]),
        "chi2": stats.chi2_contingency(table, correction=False),
        "gof": stats.chisquare(counts, counts.sum() * np.array([0.4, 0.2, 0.2, 0.2])),
        "r": stats.pearsonr(v["stateur"], v["rr"]),
        "anova": stats.f_oneway(*groups),
        "prop": (int(ui[female].sum()), int(female.sum())),
        "var1": np.var(v["age"], ddof=1), "std1": np.std(v["tenure"], ddof=1),
        "var1_filtered": np.var(v["age"][ui], ddof=1),
    }


def _df(name: str, want) -> float:
    if name == "chi2":
        return want.dof
    if name == "gof":
        return 3
    if name == "anova":
        return 3
    if name == "r":
        return np.nan
    return want.df


def _compare(got: dict, want: dict, tolerance: float | None) -> None:
    """tolerance None: within each stated bound (the engine); else to that (plain)."""
    for name, w in want.items():
        r = got[name]
        slack = (lambda b: b + 1e-9) if tolerance is None else (lambda b: tolerance)
        if name == "prop":
            assert (r.detail["count"], r.detail["n"]) == w
            continue
        if name.startswith(("var", "std")):
            assert abs(float(r.value) - w) <= slack(float(r.error)) * max(1, abs(w)), name
            continue
        d = r.detail
        assert "error" not in d, (name, d)
        assert abs(d["statistic"] - w.statistic) <= slack(d["statistic_error"]) * max(
            1, abs(w.statistic)), (name, d, w)
        df = _df(name, w)
        if not np.isnan(df):
            assert abs(d["df"] - df) <= slack(d.get("df_error", 0.0)) * df, (name, d, df)
        assert abs(d["pvalue"] - w.pvalue) <= slack(d["pvalue_error"]) + 1e-12, (name, d, w)
        if name in POPMEAN:  # t-tests: the interval of the mean difference, as scipy's
            ci = w.confidence_interval()
            for mine, theirs in ((d["ci_low"], ci.low), (d["ci_high"], ci.high)):
                assert abs(mine - (theirs - POPMEAN[name])) <= slack(d["ci_error"]), (name, d)


POPMEAN = {"welch": 0.0, "student": 0.0, "welch_columns": 0.0, "one": 0.45, "paired": 0.0}
"""The t-tests of BENEFITS and what scipy's interval is of (one sample: of the mean, so the
difference's interval is scipy's minus popmean)."""


def test_plain_matches_scipy_on_benefits() -> None:
    schema = Schema.load(ROOT / "examples" / "benefits.yaml")
    values = schema.read_csv(ROOT / "data" / "benefits.csv")
    _compare(_plain(BENEFITS, schema, values), _scipy_benefits(schema, values), 1e-9)


def test_plain_matches_scipy_on_acs12() -> None:
    schema = Schema.load(ROOT / "examples" / "acs12.yaml")
    values = schema.read_csv(ROOT / "data" / "acs12.csv")
    got = _plain("""
reveal(ttest(where(data.hrs_work, data.married), where(data.hrs_work, not data.married)), "t")
reveal(chi2(data.edu, data.gender), "c")
reveal(chisquare(data.birth_qrtr), "q")
reveal(pearsonr(data.age, data.hrs_work), "r")
reveal(anova(data.hrs_work, data.race), "f")
""", schema, values)
    v = {c: _encoded(schema, values, c) for c in ("hrs_work", "edu", "gender", "birth_qrtr",
                                                   "age", "race")}
    married = np.asarray(values["married"], bool)
    table = np.zeros((4, 2))
    np.add.at(table, (v["edu"].astype(int), v["gender"].astype(int)), 1)
    table = table[table.sum(axis=1) > 0]
    want = {"t": stats.ttest_ind(v["hrs_work"][married], v["hrs_work"][~married],
                                 equal_var=False).pvalue,
            "c": stats.chi2_contingency(table, correction=False).pvalue,
            "q": stats.chisquare(np.bincount(v["birth_qrtr"], minlength=4)).pvalue,
            "r": stats.pearsonr(v["age"], v["hrs_work"]).pvalue,
            "f": stats.f_oneway(*[v["hrs_work"][v["race"] == g]
                                  for g in np.unique(v["race"])]).pvalue}
    for name, p in want.items():
        assert got[name].detail["pvalue"] == pytest.approx(p, rel=1e-9, abs=1e-300), name


def test_engine_matches_scipy_within_its_bounds() -> None:
    """Every test on 240 rows of data/benefits.csv on the engine: each statistic within
    its own bound of scipy's, each df exact or within its bound, each p-value within the
    owner's worst case."""
    schema = Schema.load(ROOT / "examples" / "benefits.yaml")
    values = {k: v[:240] for k, v in schema.read_csv(ROOT / "data" / "benefits.csv").items()}
    got = _secure(BENEFITS, schema, values)
    _compare(got, _scipy_benefits(schema, values), None)
    assert got["anova"].detail["eta_squared_error"] < 1e-4
    # the computation's part of each t's bound; the storage rounding of rr (a fixed column
    # in [0, 0.7]) adds its public worst case (docs/analytics.md, "Storage rounding")
    from tests.test_lang_mpc_library import stored_t

    for name, samples in (("welch", 2), ("student", 2), ("one", 1)):
        assert got[name].detail["statistic_error"] < 1e-2 + stored_t((0.0, 0.7), 240, samples)


# ------------------------------------------------------------------ edge cases

EDGES = """
reveal(ttest(data.x, data.x), "equal")
reveal(ttest(where(data.x, data.pair), where(data.y, not data.pair)), "two_rows")
reveal(ttest(where(data.x, data.pair), where(data.y, not data.pair), equal_var=True),
       "two_rows_student")
reveal(ttest_1samp(data.z, 2), "no_spread")
reveal(ttest(data.z, data.z), "no_spread_two")
reveal(pearsonr(data.z, data.x), "no_spread_r")
reveal(anova(data.z, data.g), "no_spread_f")
reveal(anova(data.x, data.g), "groups")
reveal(ttest(where(data.x, data.flag and data.pair), where(data.y, data.flag)), "one_row")
reveal(anova(x=data.x, group=data.g), "groups_by_name")
reveal(chi2(y=data.flag, x=data.g), "chi2_by_name")
reveal(chisquare(p=[0.5, 0.25, 0.25], x=data.g), "gof_by_name")
"""


@pytest.fixture(scope="module")
def edges() -> tuple[dict, dict, dict]:
    values = _small()
    return _plain(EDGES, SMALL, values), _secure(EDGES, SMALL, values), values


@pytest.mark.parametrize("backend", [0, 1])
def test_equal_samples_give_t_zero_and_p_one(edges, backend: int) -> None:
    d = edges[backend]["equal"].detail
    assert abs(d["statistic"]) <= d["statistic_error"] + 1e-12
    assert d["pvalue"] == pytest.approx(1.0, abs=d["pvalue_error"] + 1e-9)


@pytest.mark.parametrize("backend", [0, 1])
def test_a_sample_of_two_rows_is_scipys(edges, backend: int) -> None:
    values = edges[2]
    x, y, pair = _encoded(SMALL, values, "x"), _encoded(SMALL, values, "y"), values["pair"]
    for name, equal in (("two_rows", False), ("two_rows_student", True)):
        want = stats.ttest_ind(x[pair], y[~pair], equal_var=equal)
        d = edges[backend][name].detail
        assert abs(d["statistic"] - want.statistic) <= d["statistic_error"] + 1e-9, name
        assert abs(d["df"] - want.df) <= d["df_error"] + 1e-9, name


@pytest.mark.parametrize("backend", [0, 1])
@pytest.mark.parametrize("name", ["no_spread", "no_spread_two", "no_spread_r", "no_spread_f",
                                  "one_row"])
def test_no_spread_is_a_clear_error_not_nan(edges, backend: int, name: str) -> None:
    d = edges[backend][name].detail
    assert "below the floor" in d["error"] and "pvalue" not in d
    assert all(np.isfinite(v) for v in d.values() if isinstance(v, float))


def test_both_backends_agree_on_the_groups_present(edges) -> None:
    plain, secure, values = edges
    x = _encoded(SMALL, values, "x")
    groups = [x[values["g"] == g] for g in ("a", "b", "c")]
    want = stats.f_oneway(*groups)
    for got in (plain, secure):
        d = got["groups"].detail
        assert (d["df"], d["df_within"]) == (2, 37)
        assert abs(d["statistic"] - want.statistic) <= d["statistic_error"] + 1e-9


@pytest.mark.parametrize("backend", [0, 1])
def test_arguments_by_name_are_arguments_by_position(edges, backend: int) -> None:
    got, values = edges[backend], edges[2]
    a, b = got["groups_by_name"].detail, got["groups"].detail  # TruncPr rounds at random
    assert (a["df"], a["df_within"]) == (b["df"], b["df_within"])
    assert abs(a["eta_squared"] - b["eta_squared"]) <= 2 * a["eta_squared_error"] + 1e-12
    g = SMALL.column("g").encoding.to_integers(values["g"])
    table = np.zeros((3, 2))
    np.add.at(table, (g, values["flag"].astype(int)), 1)
    want = stats.chi2_contingency(table, correction=False)
    d = got["chi2_by_name"].detail
    assert abs(d["statistic"] - want.statistic) <= d["statistic_error"] + 1e-9
    assert d["df"] == want.dof
    counts = np.bincount(g, minlength=3)
    gof = stats.chisquare(counts, counts.sum() * np.array([0.5, 0.25, 0.25]))
    d = got["gof_by_name"].detail
    assert abs(d["statistic"] - gof.statistic) <= d["statistic_error"] + 1e-9


@pytest.mark.parametrize("element", [-1, -2, -3, -4])
def test_a_member_that_hides_no_spread_or_shifts_df_is_caught(element: int) -> None:
    """The attack on what a test adds: a member adds to its sealed share of the se or the
    mean difference (to shrink the owner's bound of t or move it), of the floored count (to
    hide "no spread") or of df (to move the p-value). The owner's check z = k x refuses the
    whole result; it never reaches `pvalues.detail`."""
    from enigma.field import Field
    from enigma.mpc.client import OutputCheckError

    F = Field()

    def lying(fn, **kw):
        outs = thread_quorum(fn, **kw)
        value, tag = outs[1]["sealed"]
        value = value.copy()
        value[element] = F.add(value[element], F.const(1))
        outs[1]["sealed"] = (value, tag)
        return outs

    with pytest.raises(OutputCheckError, match="fail the owner's check"):
        run_mpc("reveal(ttest_1samp(data.z, 2), 't')", SMALL, _small(), provider_factory=DEALER,
                filename="t.py", quorum=lying)


def test_refusals_name_the_problem() -> None:
    for source, message in [
        ("reveal(ttest_1samp(data.x, 11), 't')", "within the column's range"),
        ("reveal(chisquare(data.g, [0.5, 0.5]), 'c')", "list of 3 constants"),
        ("reveal(chisquare(data.g, [0.5, 0.25, 0.5]), 'c')", "add up to 1"),
        ("reveal(proportion(data.x), 'p')", "boolean column"),
        ("reveal(anova(data.x, data.y), 'f')", "category or boolean"),
        ("reveal(variance(data.x, ddof=-1), 'v')", "ddof must be a whole number"),
        ("reveal(variance(data.x, ddof=40), 'v')", "no degrees of freedom"),
        ("reveal(ttest_rel(data.x, where(data.y, data.flag)), 't')", "unfiltered"),
    ]:
        with pytest.raises(Exception, match=message):
            check(source, SMALL, "t.py")
