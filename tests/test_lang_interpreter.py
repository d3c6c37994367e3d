"""The interpreter on both backends: plain results against numpy, MPC results against plain.

MPC tests run real processes (`run_local`); the party functions live at module
level so that spawned processes can import them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enigma.field import Field
from enigma.lang.checker import check
from enigma.lang.errors import ScriptError
from enigma.lang.interpreter import Interpreter, run
from enigma.lang.mpc_backend import MpcBackend
from enigma.lang.plain import Plain, PlainBackend, dry_run, run_plain
from enigma.lang.runner import run_mpc
from enigma.lang.schema import Schema
from enigma.mpc.fixed import FRAC
from enigma.mpc.runner import run_local
from enigma.prep.dealer import DealerFactory

SCHEMA = Schema.from_dict({
    "name": "toy", "rows": 40,
    "columns": [
        {"name": "a", "type": "int", "min": -50, "max": 50},
        {"name": "b", "type": "int", "min": 0, "max": 100},
        {"name": "x", "type": "fixed", "min": -4.0, "max": 4.0},
        {"name": "y", "type": "fixed", "min": 0.5, "max": 8.0},
        {"name": "big", "type": "int", "min": 0, "max": 1 << 22},
        {"name": "flag", "type": "bool"},
        {"name": "color", "type": "category", "levels": ["red", "green", "blue"]},
    ]})
DEALER = DealerFactory(b"test_lang_interpreter dealer seed", insecure=True)


def _plain(source: str, table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    script = check(source, SCHEMA)
    n = len(next(iter(table.values())))
    return {k: v.value for k, v in run(script, PlainBackend(SCHEMA, table, n)).results.items()}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(-50, 50), st.integers(0, 100)), min_size=1, max_size=30),
       st.integers(-50, 50))
def test_plain_backend_matches_numpy(rows, t) -> None:
    a = np.array([r[0] for r in rows], dtype=np.float64)
    b = np.array([r[1] for r in rows], dtype=np.float64)
    source = f"""
def scaled(v, k):
    return v * k

s = 0
for i in range(3):
    s = s + sum(scaled(data.a, i))
big = data.a > {t}
m = 0
if sum(data.a) > {t}:
    m = mean(data.b)
else:
    m = mean(data.a)
parts = [sum(data.a * data.b), count(data.a, where=big), sum(where(big, data.a, 0))]
reveal(s, "s")
reveal(m, "m")
reveal(parts, "parts")
reveal(max(data.a, data.b), "elementwise")
"""
    got = _plain(source, {"a": a, "b": b})
    assert got["s"] == pytest.approx(3 * a.sum())
    assert got["m"] == pytest.approx(b.mean() if a.sum() > t else a.mean())
    np.testing.assert_allclose(got["parts"], [(a * b).sum(), (a > t).sum(),
                                              np.where(a > t, a, 0).sum()])
    np.testing.assert_allclose(got["elementwise"], np.maximum(a, b))


def test_dry_run_is_synthetic_reproducible_and_within_the_schema() -> None:
    script = check("reveal(min(data.a), 'lo')\nreveal(max(data.a), 'hi')\n"
                   "reveal(histogram(data.color), 'colors')", SCHEMA)
    first, second = dry_run(script, SCHEMA, rows=200), dry_run(script, SCHEMA, rows=200)
    assert first.synthetic
    assert {k: v.value.tolist() for k, v in first.results.items()} == \
        {k: v.value.tolist() for k, v in second.results.items()}
    assert -50 <= first.results["lo"].value <= first.results["hi"].value <= 50
    assert first.results["colors"].value.sum() == 200


def test_a_public_loop_bound_runs_at_run_time() -> None:
    got = _plain("n = 0\nwhile n * n < len(data):\n    n = n + 1\nreveal(sum(data.a) * n, 'r')",
                 {"a": np.arange(10.0), "b": np.zeros(10)})
    assert got["r"] == pytest.approx(45 * 4)


def test_lists_and_dicts_are_values_so_another_name_keeps_the_old_one() -> None:
    """A write through one name used to change every name of the list, and the checker,
    which types names, let `print(l[0])` show a private value (found by
    tests/test_lang_noninterference.py): a write now makes a new list or dict."""
    source = ("def put(xs, v):\n    xs[0] = v\n    return xs\n"
              "l = [1, 2]\nm = l\nm[0] = mean(data.a)\nd = {'u': 1}\ne = d\n"
              "e['u'] = sum(data.a)\nk = put(l, sum(data.b))\nprint(l[0], d['u'])\n"
              "reveal([m[0], k[0], e['u']], 'r')\n")
    script = check(source, SCHEMA)
    table = {"a": np.arange(4.0), "b": np.ones(4)}
    out = run(script, PlainBackend(SCHEMA, table, 4))
    assert out.printed == ["1 1"]
    assert list(out.results["r"].value) == [1.5, 4.0, 6.0]


def test_an_index_outside_a_list_or_a_missing_key_is_one_clear_line() -> None:
    script = check("l = [1, 2]\nd = {'u': 1}\nif len(data) > 9:\n    d['v'] = 2\n"
                   "print(d['v'])\n", SCHEMA)
    with pytest.raises(ScriptError, match=r"no key 'v' in this dict \(it has \['u'\]\)"):
        run(script, PlainBackend(SCHEMA, {"a": np.ones(3)}, 3))
    for source in ("l = [1, 2]\nprint(l[2])\n", "l = [1, 2]\nl[-3] = 1\n",
                   "v = histogram(data.a, bins=2)\nx = v[5]\n"):
        with pytest.raises(ScriptError, match="outside this value of length 2"):
            run(check(source, SCHEMA), PlainBackend(SCHEMA, {"a": np.ones(3)}, 3))


def test_a_private_value_that_reaches_print_stops_the_run() -> None:
    """Defence in depth behind the checker: print shows every node what it gets."""
    script = check("n = len(data)\nprint(n)\n", SCHEMA)
    leaked = dataclasses.replace(script.body[1], args=(script.body[1].args[0],))
    interp = Interpreter(script, PlainBackend(SCHEMA, {"a": np.ones(3)}, 3))
    with pytest.raises(ScriptError, match="internal: print\\(\\) of a private value"):
        interp.block((leaked,), {"n": Plain(np.ones(()))})


# ---------------------------------------------------------------- MPC: rounds and refusals

F = Field()
ROUNDS = {
    "one product": ("p = data.a * data.b\n", 1),
    "three independent products": ("p = data.a * data.b\nq = data.b * data.b\n"
                                   "r = data.a * data.a\n", 1),
    "sums of products stay one round": ("p = data.a * data.b + data.b * data.b\n"
                                        "q = p + data.a * data.a\n", 1),
    "depth two": ("p = data.a * data.b\nq = p * data.a\nr = data.b * data.b\n", 2),
    "fixed-point products truncate in one more round": ("p = data.x * data.y\n"
                                                        "q = data.y * data.y\n", 2),
    "a long accumulation forces every MAX_CHAIN steps": (
        "acc = 0 * data.a\nfor i in range(1000):\n    acc = acc + data.a * data.b\n", 5),
    "oblivious if": ("r = 0\nif data.flag:\n    r = data.a * data.b\nelse:\n    r = data.b\n",
                     2),
}
COMPARISONS = {
    "one comparison": "p = data.a > 3\n",
    "three independent comparisons": "p = data.a > 3\nq = data.b <= 40\nr = data.a < 20\n",
}
OVERFLOW = "c = data.big * data.big\nd = c * data.big\nreveal(sum(d), 'd')\n"


def _columns(e, table: dict[str, np.ndarray]) -> dict:
    """Party 0 inputs the columns (the owner flow is `runner`'s; this tests the backend)."""
    meta = {"a": (0, -50, 50, True), "b": (0, 0, 100, True), "x": (FRAC, -4, 4, False),
            "y": (FRAC, 0.5, 8, False), "big": (0, 0, 1 << 22, True), "flag": (0, 0, 1, True)}
    out = {}
    for name, m in meta.items():
        codes = np.rint(table[name] * 2.0 ** m[0]).astype(np.int64)
        out[name] = (e.input(0, F.from_int64(codes) if e.party == 0 else None, codes.size), m)
    return out


def rounds_party(e, table: dict[str, np.ndarray]) -> dict:
    columns = _columns(e, table)
    key = e.input(0, F.from_int64(np.array([1])) if e.party == 0 else None, 1)
    rounds = {}
    programs = {name: source for name, (source, _) in ROUNDS.items()} | COMPARISONS
    for name, source in programs.items():
        backend = MpcBackend(e, columns, {}, 8, key)
        script = check(source, SCHEMA)
        before = e.stats.rounds
        Interpreter(script, backend).block(script.body, {})
        backend.flush()
        rounds[name] = e.stats.rounds - before
    try:
        run(check(OVERFLOW, SCHEMA, "overflow.py"),
            MpcBackend(e, columns, {}, 8, key, "overflow.py"))
        refused = None
    except ScriptError as exc:
        refused = exc.located()
    return {"rounds": rounds, "refused": refused}


@pytest.fixture(scope="module")
def rounds_run() -> dict:
    rng = np.random.default_rng(1)
    table = {"a": rng.integers(-50, 51, 8).astype(float), "b": rng.integers(0, 101, 8) * 1.0,
             "x": rng.uniform(-4, 4, 8), "y": rng.uniform(0.5, 8, 8),
             "big": rng.integers(0, 1 << 22, 8) * 1.0, "flag": rng.integers(0, 2, 8) * 1.0}
    return run_local(rounds_party, args=(table,), provider_factory=DEALER)[0]


@pytest.mark.parametrize("name", list(ROUNDS))
def test_rounds_equal_multiplicative_depth(rounds_run, name: str) -> None:
    """Straight-line products cost rounds equal to their depth (no output, no MAC check)."""
    assert rounds_run["rounds"][name] == ROUNDS[name][1]


def test_independent_comparisons_share_their_rounds(rounds_run) -> None:
    """Independent sign tests of one statement block run as one batched test."""
    rounds = rounds_run["rounds"]
    assert rounds["three independent comparisons"] == rounds["one comparison"] > 0


def test_a_product_that_could_overflow_is_refused_with_its_place(rounds_run) -> None:
    assert rounds_run["refused"].startswith("overflow.py:2:5: this product could reach 2^66")


# ---------------------------------------------------------------- MPC against plain

BROAD = """
def clipped(v):
    return min(max(v, 0), 40)

ratio = data.b / data.y
scaled = data.x * 0.3 + 1.5
best = 0
if data.flag:
    best = data.a
else:
    best = -data.a
acc = 0
for k in range(3):
    acc = acc + sum(where(data.a > k * 10, data.b, 0))
reveal(sum(ratio), "sum_ratio")
reveal(mean(scaled), "mean_scaled")
reveal(sum(best), "select")
reveal(acc, "loop")
reveal([sum(clipped(data.a)), count(data.a, where=data.a == 7)], "list")
reveal(mean(data.x, where=data.flag), "filtered_mean")
reveal(variance(data.b), "variance")
reveal(std(data.x), "std")
reveal(sqrt(mean(data.y)), "sqrt")
reveal(sum(abs(data.x)), "abs")
reveal(histogram(data.color), "colors")
reveal(histogram(data.b, bins=4), "b_bins")
reveal(corr(data.a, data.b), "corr")
reveal(sum(data.a) / 7, "public_divisor")
reveal(count(data.color == "green"), "greens")
reveal(chi2(data.color, data.flag), "chi2")
reveal([variance(data.b, where=data.flag), std(where(data.x, data.a > 0))], "filtered_spread")
reveal([min(data.b, where=data.flag), max(where(data.x, data.a > 0))], "filtered_extremes")
reveal(histogram(data.color, where=data.flag), "filtered_colors")
reveal(max(data.b, where=data.b > 1000), "empty_max")
reveal([sum(data.a // 4), sum(data.a % 8), sum(data.b // 1)], "floor_division")
"""


def test_mpc_matches_plain_within_error_bounds() -> None:
    rng = np.random.default_rng(7)
    n = 40
    values = {"a": rng.integers(-50, 51, n), "b": rng.integers(0, 101, n),
              "x": np.round(rng.uniform(-4, 4, n), 4), "y": np.round(rng.uniform(0.5, 8, n), 4),
              "big": rng.integers(0, 1 << 22, n), "flag": rng.integers(0, 2, n).astype(bool),
              "color": np.array(["red", "green", "blue"], dtype=object)[rng.integers(0, 3, n)]}
    values["a"][:3] = 7
    secure = run_mpc(BROAD, SCHEMA, values, provider_factory=DEALER, filename="broad.py")
    plain = run_plain(check(BROAD, SCHEMA), SCHEMA, values)
    assert list(secure.results) == list(plain.results)
    for name, r in secure.results.items():
        want = plain.results[name].value
        assert np.all(np.isfinite(r.error)), name
        assert np.all(np.abs(r.value - want) <= r.error + 1e-9), (name, r.value, want, r.error)
    assert secure.stats["rounds"] > 0 and secure.stats["triples"] > 0


CLAMPED = """
m1 = mean(data.x)
m2 = mean(data.y)
a = [[1.0, m1, m2],
     [m1, mean(data.x * data.x), mean(data.x * data.y)],
     [m2, mean(data.x * data.y), mean(data.y * data.y)]]
b = [mean(data.a), mean(data.x * data.a), mean(data.y * data.a)]
for k in range(3):
    pivot = max(a[k][k], 0.01)
    for i in range(k + 1, 3):
        f = clip(a[i][k] / pivot, -8, 8)
        row = a[i]
        for j in range(3):
            row[j] = row[j] - f * a[k][j]
        a[i] = row
        b[i] = b[i] - f * b[k]
coef = [0.0, 0.0, 0.0]
for k in range(2, -1, -1):
    acc = b[k]
    for j in range(k + 1, 3):
        acc = acc - a[k][j] * coef[j]
    coef[k] = min(max(acc / max(a[k][k], 0.01), -100), 100)
reveal(coef, "elimination")
m = mean(data.x * data.x) + 0.25
r = 1.0
for step in range(5):
    r = clip(r - (r * r - m) / (2 * max(r, 0.25)), 0.25, 5)
reveal(r, "newton")
"""


def test_clamped_elimination_and_newton_steps_run_on_the_engine() -> None:
    """Least squares by Gaussian elimination and a square root by Newton steps, written in a
    script: the quotients' ranges are wide, and the clamps (max of the pivot, clip and
    min/max of the quotient) narrow them, so the products after them fit (issue 17: such
    scripts were refused: "this sum could reach 2^63.0", "product could reach 2^91.9")."""
    rng = np.random.default_rng(3)
    n = 40
    x, y = np.round(rng.uniform(-4, 4, n), 4), np.round(rng.uniform(0.5, 8, n), 4)
    a = np.clip(np.rint(3 + 2 * x - 4 * y + rng.normal(0, 3, n)), -50, 50).astype(np.int64)
    values = {"a": a, "x": x, "y": y}
    secure = run_mpc(CLAMPED, SCHEMA, values, provider_factory=DEALER, filename="clamped.py")
    plain = run_plain(check(CLAMPED, SCHEMA), SCHEMA, values)
    design = np.column_stack([np.ones(n), x, y])
    want = {"elimination": np.linalg.lstsq(design, a, rcond=None)[0],
            "newton": np.sqrt(np.mean(x * x) + 0.25)}
    for name, r in secure.results.items():
        assert np.allclose(plain.results[name].value, want[name], atol=1e-9), name
        assert np.all(np.abs(r.value - want[name]) <= r.error), (name, r.value, r.error)
        assert np.allclose(r.value, want[name], atol=1e-3), (name, r.value, want[name])
    assert secure.results["newton"].error <= 5  # at most the clip's width (not 3e13)


def test_clip_and_min_max_narrow_the_checked_range() -> None:
    script = check("q = data.a / data.y\nc = clip(q, -8, 8)\nm = min(q, 3)\n"
                   "n = max(data.b, 10)\nk = clip(data.b, 20, 30)\n", SCHEMA)
    ranges = [(s.value.type.lo, s.value.type.hi) for s in script.body]
    assert ranges[0] == (None, None)  # a private divisor: no range
    assert ranges[1:] == [(-8, 8), (None, 3), (10, 100), (20, 30)]
    with pytest.raises(ScriptError, match="private value used as a clip bound"):
        check("c = clip(data.a, 0, mean(data.b))\n", SCHEMA)
    with pytest.raises(ScriptError, match="clip bounds are reversed"):
        check("c = clip(data.a, 3, 2)\n", SCHEMA)


def test_plain_chi2_is_scipys_without_correction() -> None:
    from scipy.stats import chi2_contingency

    rng = np.random.default_rng(3)
    color, flag = rng.integers(0, 3, 60).astype(float), rng.integers(0, 2, 60).astype(float)
    got = _plain("reveal(chi2(data.color, data.flag), 'c')", {"color": color, "flag": flag})
    table = np.zeros((3, 2))
    np.add.at(table, (color.astype(int), flag.astype(int)), 1)
    want = chi2_contingency(table, correction=False)
    assert got["c"] == pytest.approx([want.statistic, want.dof])


def test_plain_ttest_is_welchs_on_the_selected_rows() -> None:
    from scipy.stats import ttest_ind

    rng = np.random.default_rng(4)
    x, flag = rng.uniform(-4, 4, 60), rng.integers(0, 2, 60).astype(float)
    got = _plain("reveal(ttest(where(data.x, data.flag), where(data.x, not data.flag)), 't')",
                 {"x": x, "flag": flag})
    on = flag == 1
    want = ttest_ind(x[on], x[~on], equal_var=False)
    a, b = x[on], x[~on]
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert got["t"] == pytest.approx([want.statistic, want.df, 0.0, a.mean() - b.mean(), se])
