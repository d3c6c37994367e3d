"""Network reduction at the language level: which scripts split, and split runs agree with numpy.

`plan` is checked on its own (no engine). The split run here uses three real processes
(the test dealer): the quorum computes the map phase of each chunk, adds the chunks'
exact statistics and runs the reduce phase, so the statistics and the finishing steps
are checked against numpy without the ledger or the hand-over between quorums (those are
in tests/test_app_e2e.py).
"""

from pathlib import Path

import numpy as np
import pytest

from enigma.field import Field
from enigma.lang.checker import check
from enigma.lang.interpreter import run
from enigma.lang.mpc_backend import MpcBackend
from enigma.lang.plain import referenced_columns, run_plain
from enigma.lang.reduction import (
    NotSplittable,
    SplitBackend,
    accept_handover,
    batch_statistics,
    handover_shares,
    plan,
    statistics_size,
)
from enigma.lang.runner import encode_table
from enigma.lang.schema import Schema
from enigma.mpc import client
from enigma.mpc.engine import Engine
from enigma.mpc.runner import run_local
from enigma.mpc.secret import Secret, concat
from enigma.prep.dealer import DealerFactory

ROOT = Path(__file__).resolve().parents[1]


def _schema() -> Schema:
    body = Schema.load(ROOT / "examples" / "benefits.yaml").to_dict()
    body.pop("rows", None)
    return Schema.from_dict(body)


@pytest.mark.parametrize("source, layout", [
    ("reveal(mean(data.age), 'm')\nreveal(variance(data.age), 'v')\n",
     [("mean", False), ("variance", False)]),
    ("reveal(count(data.age, where=data.ui), 'c')\nreveal(std(data.rr, where=data.age > 40)"
     ", 's')\n", [("count", True), ("std", True)]),
    ("reveal(count(data.age), 'n')\nreveal(sum(data.tenure * 2 + 1), 's')\n", [("sum", False)]),
    ("reveal(group_by(data.sex, data.age, 'mean'), 'g')\nreveal(histogram(data.state), 'h')\n",
     [("group_by", False), ("histogram", False)]),
    ("b = linreg(data.rr, [data.age, data.tenure])\nreveal(b[1] * 10, 'slope')\n",
     [("linreg", False)]),
    ("reveal(ols(data.rr, [data.age], intercept=False, ridge=0.01), 'fit')\n",
     [("ols", False)]),
    ("reveal(count(data.ui), 'c')\nreveal(kmeans([data.age, data.tenure], 2, 3), 'x')\n"
     "reveal(sum(data.age), 's')\n",
     [("count", True)] + [("kmeans", False)] * 3 + [("sum", False)]),
])
def test_plan_lists_the_aggregates_in_order(source, layout):
    schema = _schema()
    got = plan(check(source, schema), schema, 1000)
    assert [(a["func"], a["counted"]) for a in got] == layout


def test_kmeans_statistics_are_the_counts_and_sums_of_every_iteration():
    schema = _schema()
    got = plan(check("reveal(kmeans([data.age, data.tenure, data.rr], k=3, iters=4), 'c')\n",
                     schema), schema, 1000)
    assert [a["iteration"] for a in got] == [0, 1, 2, 3]
    assert statistics_size(got) == [3 + 3 * 3] * 4


def test_kmeans_with_given_centres_and_tie_rule_splits_alike():
    schema = _schema()
    source = ("reveal(kmeans([data.age, data.tenure], k=2, iters=2, init=[[30, 5], [60, 20]], "
              "ties='last'), 'c')\n")
    got = plan(check(source, schema), schema, 1000)
    assert [(a["func"], a["iteration"]) for a in got] == [("kmeans", 0), ("kmeans", 1)]


def _handover_party(e: Engine, value: np.ndarray, key: np.ndarray, tamper: int) -> np.ndarray:
    """One quorum plays both sides: (c, k c) handed over by `handover_shares`, re-input and
    checked by `accept_handover`; party 0 adds `tamper` to its part of c on the way."""
    F = e.field
    [k] = [e.input(0, key if e.party == 0 else None, 1)]
    c = e.input(0, value if e.party == 0 else None, value.shape[0])
    cs, zs = handover_shares(e, c, k)
    if e.party == 0 and tamper:
        cs = F.add(cs, F.from_int64(np.full(cs.shape[0], tamper, dtype=np.int64)))
    got = accept_handover(e, cs, zs, k, (value.shape[0],))
    return e.open(got)[0]


@pytest.mark.parametrize("tamper", [0, 1])
def test_a_re_shared_value_arrives_intact_or_its_check_fails(tamper):
    F = Field()
    value = F.from_int64(np.array([5, -7, 1 << 40, 0], dtype=np.int64))
    key = F.random(1)
    factory = DealerFactory(b"h" * 32, insecure=True)
    if not tamper:
        out = run_local(_handover_party, parties=3, args=(value, key, 0),
                        provider_factory=factory)
        assert all(np.array_equal(o, value) for o in out)
        return
    with pytest.raises(Exception, match="failed its check"):
        run_local(_handover_party, parties=3, args=(value, key, tamper),
                  provider_factory=factory)


@pytest.mark.parametrize("source, reason", [
    ("reveal(mean(data.age - mean(data.age)), 'x')\n", "meets an aggregate"),
    ("reveal(median(data.age), 'x')\n", "does not add over chunks"),
    ("reveal(percentile(data.age, 90), 'x')\n", "does not add over chunks"),
    ("reveal(histogram(data.age, bins=4, where=data.ui), 'x')\n", "filtered numeric"),
    ("reveal(data.age[0] + 1, 'x')\n", "indexing rows"),
    ("reveal(1 + 2, 'x')\n", "aggregates no rows"),
])
def test_plan_refuses_what_does_not_split(source, reason):
    schema = _schema()
    with pytest.raises(NotSplittable, match=reason):
        plan(check(source, schema), schema, 1000)


SOURCE = """\
old = data.age > 45
reveal(mean(data.age), 'mean_age')
reveal(variance(data.tenure), 'var_tenure')
reveal(std(data.age, where=old), 'sd_old')
reveal(variance(data.rr, where=data.ui), 'var_rr_ui')
reveal(count(data.ui), 'claimed')
reveal(sum(data.tenure, where=old), 'tenure_old')
reveal(mean(data.rr) * 100 - 1, 'rr_pct')
reveal(histogram(data.sex, where=old), 'sex_old')
reveal(group_by(data.sex, data.tenure, 'sum'), 'tenure_by_sex')
reveal(group_by(data.sex, data.age, 'mean'), 'age_by_sex')
reveal(group_by(data.sex, where(data.tenure, old), 'sum'), 'tenure_by_sex_old')
reveal(group_by(where(data.sex, data.ui), data.age, 'mean'), 'age_by_sex_ui')
reveal(linreg(data.rr, [data.age, data.tenure]), 'fit')
reveal(ols(data.rr, [data.tenure], intercept=False), 'ols_through_origin')
reveal(cov(data.age, data.tenure), 'cov_age_tenure')
reveal(corr(data.age, data.rr), 'corr_age_rr')
reveal(histogram(data.tenure, bins=5), 'tenure_bins')
reveal(histogram(data.age, bins=[20, 30, 45, 61]), 'age_bins')
reveal(max(data.tenure), 'longest')
reveal(min(data.rr, where=data.ui), 'lowest_rr_ui')
"""


def _split_party(e: Engine, source: str, schema_body: dict, chunks: list[np.ndarray],
                 meta: list, key: np.ndarray, rows: int) -> tuple:
    """Map each chunk, add the statistics, reduce; the sealed results for the owner."""
    schema = Schema.from_dict(schema_body)
    script = check(source, schema)
    F = e.field
    [k] = [e.input(0, key if e.party == 0 else None, 1)]
    vectors: list[Secret] = []
    layout = None
    for codes in chunks:
        n = codes.shape[0]
        flat = F.from_int64(codes.T.reshape(-1)) if e.party == 0 else None
        table = e.input(0, flat, codes.size)
        columns = {name: (table[j * n:(j + 1) * n], m) for j, (name, m) in enumerate(meta)}
        split = SplitBackend("map", schema, script, rows,
                             mpc=MpcBackend(e, columns, {}, n, k))
        run(script, split)
        vectors.append(concat([s.reshape(s.size) for s in split.partials]))
        layout = split.layout
    assert layout is not None
    per_chunk = concat([v.reshape(1, v.size) for v in vectors])  # as the reducers hold them
    stats = batch_statistics(per_chunk, layout)
    mpc = MpcBackend(e, {}, {}, rows, k)
    run(script, SplitBackend("reduce", schema, script, rows, mpc=mpc, stats=stats,
                             layout=layout))
    return mpc.sealed, [(name, shape, f, err) for name, shape, f, err, *_ in mpc.layout]


def test_a_split_run_agrees_with_numpy_within_its_bounds():
    schema = _schema()
    values = schema.read_csv(ROOT / "data" / "benefits.csv")
    values = {k: v[:300] for k, v in values.items()}
    names = ["age", "tenure", "rr", "ui", "sex"]
    codes, meta, _ = encode_table(schema, values, names)
    F = Field()
    key = F.random(1)
    chunks = [codes[:100], codes[100:170], codes[170:]]
    results = run_local(_split_party, parties=3,
                        args=(SOURCE, schema.to_dict(), chunks, meta, key, 300),
                        provider_factory=DealerFactory(b"r" * 32, insecure=True))
    sealed = [r[0] for r in results]
    layout = results[0][1]
    opened = client.open_output(F, key, sealed)
    want = run_plain(check(SOURCE, schema), schema, values).results
    start = 0
    for name, shape, f, err in layout:
        size = int(np.prod(shape, dtype=np.int64))
        got = F.to_float(opened[start:start + size]) / float(1 << f)
        start += size
        exact = np.asarray(want[name].value, dtype=np.float64).reshape(-1)
        assert np.all(np.abs(got - exact) <= np.asarray(err) + 1e-9), (name, got, exact, err)
    assert start == opened.shape[0]


SPLIT_BOUNDS = """
reveal(sum(data.x), 'sum')
reveal(mean(data.x), 'mean')
reveal(mean(data.y, where=data.flag), 'mean_where')
reveal(variance(data.x), 'var')
reveal(std(data.y), 'std')
reveal(group_by(data.g, data.x, 'mean'), 'group_mean')
reveal(group_by(data.g, data.y, 'sum'), 'group_sum')
reveal(cov(data.x, data.y), 'cov')
reveal(corr(data.x, data.y), 'corr')
reveal(ols(data.y, [data.x, data.k]), 'ols')
reveal(min(data.x), 'min')
reveal(max(data.y), 'max')
"""


@pytest.mark.parametrize("shift, tilt", [(0.49, 0.0), (0.0, -0.49)])
def test_a_split_run_bounds_hold_against_the_data_as_written(shift: float, tilt: float):
    """Issue 17 on the split path: values off the grid by up to 0.49 ulp, biased or
    correlated with the value (as tests/test_lang_bounds_hold.py), three chunks; every
    finished aggregate within its bound of float64 on the written values."""
    from enigma.lang.simulation import thread_quorum
    from tests.test_lang_bounds_hold import SCHEMA, exact_results, written_table

    values = written_table(5, shift, tilt)
    names = ["x", "y", "k", "g", "flag"]
    codes, meta, _ = encode_table(SCHEMA, values, names)
    F = Field()
    key = F.random(1)
    n = codes.shape[0]
    chunks = [codes[:12], codes[12:25], codes[25:]]
    results = thread_quorum(_split_party, parties=3,
                            args=(SPLIT_BOUNDS, SCHEMA.to_dict(), chunks, meta, key, n),
                            provider_factory=DealerFactory(b"s" * 32, insecure=True))
    opened = client.open_output(F, key, [r[0] for r in results])
    want = exact_results(values)
    x, y = values["x"], values["y"]
    want.update(mean_where=y[values["flag"]].mean(), std=y.std(), min=x.min(), max=y.max())
    start, misses = 0, []
    for name, shape, f, err in results[0][1]:
        size = int(np.prod(shape, dtype=np.int64))
        got = F.to_float(opened[start:start + size]) / float(1 << f)
        start += size
        exact = np.atleast_1d(np.asarray(want[name], dtype=np.float64))
        used = min(exact.size, size)  # ols: [coef, se, R^2, adj R^2], then the condition
        bound = np.broadcast_to(np.asarray(err, dtype=np.float64), got.shape)[:used]
        if not np.all(np.abs(got[:used] - exact[:used]) <= bound):
            misses.append((name, np.abs(got[:used] - exact[:used]).tolist(), bound.tolist()))
    assert not misses, misses


RELEASED = """
old = data.age > 45
reveal(group_by(data.sex, data.tenure, 'sum'), 'tenure_by_sex')
reveal(group_by(data.state, data.age, 'mean'), 'age_by_state')
reveal(count(data.age, where=data.age > 60), 'over_60')
reveal(mean(data.rr, where=old), 'rr_old')
reveal(histogram(data.state, where=old), 'states_old')
"""


def _released_party(e: Engine, source: str, schema_body: dict, chunks: list[np.ndarray],
                    meta: list, key: np.ndarray, rows: int, release) -> tuple:
    """`_split_party` under a release policy: map and reduce both under `track`."""
    from enigma.lang.disclosure import track

    schema = Schema.from_dict(schema_body)
    script = check(source, schema)
    F = e.field
    [k] = [e.input(0, key if e.party == 0 else None, 1)]
    vectors, layout = [], None
    for codes in chunks:
        n = codes.shape[0]
        flat = F.from_int64(codes.T.reshape(-1)) if e.party == 0 else None
        table = e.input(0, flat, codes.size)
        columns = {name: (table[j * n:(j + 1) * n], m) for j, (name, m) in enumerate(meta)}
        split = SplitBackend("map", schema, script, rows, mpc=MpcBackend(e, columns, {}, n, k))
        run(script, track(split, release))
        vectors.append(concat([s.reshape(s.size) for s in split.partials]))
        layout = split.layout
    planned = plan(script, schema, rows, release)  # what the owner checks against
    assert [(m["func"], m["counted"]) for m in layout] == \
        [(m["func"], m["counted"]) for m in planned]
    stats = batch_statistics(concat([v.reshape(1, v.size) for v in vectors]), layout)
    mpc = MpcBackend(e, {}, {}, rows, k)
    run(script, track(SplitBackend("reduce", schema, script, rows, mpc=mpc, stats=stats,
                                   layout=layout), release))
    return mpc.sealed, {"layout": mpc.layout, "exact": mpc.exact}


def test_a_split_run_under_a_release_policy_withholds_what_one_quorum_withholds():
    """n_min on a split run: the row counts of filters and groups are reduced like the
    aggregates, the pass bits opened by the reducing quorum; the cells withheld, the
    reasons and the released values are the plain path's. Under DP the noise is drawn by
    the reducing quorum and stated as on one quorum."""
    from enigma.lang.program import decode_results
    from enigma.lang.release import Release, ReleasePolicy

    schema = _schema()
    values = {k: v[:300] for k, v in schema.read_csv(ROOT / "data" / "benefits.csv").items()}
    names = referenced_columns(check(RELEASED, schema))
    codes, meta, _ = encode_table(schema, values, names)
    F = Field()
    key = F.random(1)
    chunks = [codes[:100], codes[100:170], codes[170:]]
    for release in (Release(ReleasePolicy(n_min=25)),
                    Release(ReleasePolicy(n_min=25, epsilon_budget=10.0, delta_budget=1e-9),
                            epsilon=10.0, delta=1e-9)):
        out = run_local(_released_party, parties=3,
                        args=(RELEASED, schema.to_dict(), chunks, meta, key, 300, release),
                        provider_factory=DealerFactory(b"s" * 32, insecure=True))
        got = decode_results(F, key, [r[0] for r in out], out[0][1])
        want = run_plain(check(RELEASED, schema), schema, values, release, noise_seed=0).results
        for name, r in want.items():
            assert np.array_equal(np.isnan(got[name].value), np.isnan(r.value)), name
            assert np.array_equal(got[name].suppressed, r.suppressed), name
            if release.epsilon is None:
                keep = ~np.isnan(r.value)
                assert np.all(np.abs(got[name].value[keep] - r.value[keep])
                              <= got[name].error[keep] + 1e-9), name
            else:
                assert np.array_equal(got[name].noise, r.noise), name
                assert got[name].delta == pytest.approx(r.delta), name
        assert any(np.any(np.isnan(r.value)) for r in want.values())  # n_min bites
        assert any(np.any(~np.isnan(r.value)) for r in want.values())


def test_a_dominance_rule_does_not_split():
    """Dominance needs the rows; no reducing quorum holds them: the job runs on one quorum."""
    from enigma.lang.release import Release, ReleasePolicy

    script = check("reveal(group_by(data.sex, data.age, 'sum'), 'g')\n", _schema())
    assert plan(script, _schema(), 300, Release(ReleasePolicy(n_min=5)))
    with pytest.raises(NotSplittable, match="dominance rule"):
        plan(script, _schema(), 300, Release(ReleasePolicy(n_min=5, dominance_k=1,
                                                           dominance_p=80.0)))
