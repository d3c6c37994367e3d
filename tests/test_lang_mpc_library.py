"""Library calls compiled onto the engine (`lang/mpc_library.py`), against scipy in the clear.

The secure runs use the first ROWS rows of data/benefits.csv through 3 processes; the
references are scipy on the same rows as the owner encodes them (fixed point rounded
to 2^-16), computed here independently of the interpreter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from enigma.lang.runner import run_mpc
from enigma.lang.schema import Schema
from enigma.prep.dealer import DealerFactory

ROOT = Path(__file__).resolve().parents[1]
ROWS = 240
DEALER = DealerFactory(b"test_lang_mpc_library dealer seed", insecure=True)

TTEST = """
reveal(ttest(where(data.rr, data.ui), where(data.rr, not data.ui)), "rr_by_ui")
reveal(ttest(data.age, data.tenure), "age_vs_tenure")
"""


def test_ttest_is_welchs_t_from_secure_moments_within_its_bound() -> None:
    """Two filtered samples of one column (secret group sizes) and two whole columns of
    different ranges (public sizes, one range over both): each t within its own bound
    of scipy's Welch test, and the bound tight enough to read the statistic."""
    schema = Schema.load(ROOT / "examples" / "benefits.yaml")
    values = {k: v[:ROWS] for k, v in schema.read_csv(ROOT / "data" / "benefits.csv").items()}
    got = run_mpc(TTEST, schema, values, provider_factory=DEALER, filename="ttest.py").results
    rr = schema.column("rr").encoding.to_integers(values["rr"]) / 2.0**16
    ui = values["ui"].astype(bool)
    age, tenure = values["age"].astype(float), values["tenure"].astype(float)
    want = {"rr_by_ui": stats.ttest_ind(rr[ui], rr[~ui], equal_var=False),
            "age_vs_tenure": stats.ttest_ind(age, tenure, equal_var=False)}
    samples = {"rr_by_ui": (rr[ui], rr[~ui]), "age_vs_tenure": (age, tenure)}
    for name, w in want.items():
        r = got[name]
        a, b = samples[name]
        se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
        exact = np.array([w.statistic, w.df, 0.0, a.mean() - b.mean(), se])
        assert np.all(np.abs(r.value - exact) <= r.error), (name, r.value, exact, r.error)
        col = (0.0, 0.7) if name == "rr_by_ui" else None  # rr's range; age, tenure: integers
        assert r.error[0] < 1e-2 * max(1.0, abs(w.statistic)) + stored_t(col, ROWS, 2), \
            (name, r.error)
        # the owner's t = diff / se: its bound reads the statistic even on rr, where the
        # worst case at the floor (storage rounding over a spread of 0.7/256) is about 10
        d = r.detail
        assert abs(d["statistic"] - w.statistic) <= d["statistic_error"], (name, d)
        assert d["statistic_error"] < 5e-3 * abs(w.statistic), (name, d)


def stored_t(col: tuple[float, float] | None, n: int, samples: int) -> float:
    """The worst case storage rounding adds to a t of a fixed column with this range
    (`analytics.storage.t_shift`, docs/analytics.md "Storage rounding"): the computation's
    own bound is what must stay tight; this part is public and at its worst at the spread
    floors. |t| <= sqrt(2 n) h / spread for two samples of up to n values each (their
    counts add up to 2 n at most), 2 sqrt(n + 2) h / spread for one (h the half-width,
    `models._ttest_bounds`), with 5% of margin for the engine's rounding."""
    if col is None:
        return 0.0
    from enigma.lang.analytics.precision import DEFAULT_SPREAD
    from enigma.lang.analytics.storage import t_shift

    spread = (col[1] - col[0]) * DEFAULT_SPREAD
    reach = np.sqrt(2 * n) if samples == 2 else 2 * np.sqrt(n + 2)
    t_top = 1.05 * reach * (col[1] - col[0]) / 2 / spread
    return t_shift(2.0**-17, spread, n, t_top, samples)


GROUPS = """
old = data.age > 45
reveal(group_by(data.sex, where(data.tenure, old), "sum"), "tenure_old")
reveal(group_by(where(data.sex, data.ui), data.age, "mean"), "age_ui")
reveal(group_by(where(data.sex, old)), "n_old")
reveal(group_by(data.sex, where(data.age, old), "count"), "n_old_by_values")
"""


def test_group_by_honours_a_filter_on_its_key_or_values_in_both_backends() -> None:
    """`where(x, mask)` as group_by's key or values keeps only the masked rows in every
    cell (it was silently dropped once): numpy's per-group counts, sums and means of the
    kept rows, the plain path equal to them, the MPC run within its bounds."""
    from enigma.lang.checker import check
    from enigma.lang.plain import run_plain
    from enigma.lang.simulation import thread_quorum

    schema = Schema.load(ROOT / "examples" / "benefits.yaml")
    values = {k: v[:ROWS] for k, v in schema.read_csv(ROOT / "data" / "benefits.csv").items()}
    sex = schema.column("sex").encoding.to_integers(values["sex"])
    age, tenure = values["age"].astype(float), values["tenure"].astype(float)
    old, ui = age > 45, values["ui"].astype(bool)

    def per(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(sex[mask], None if weights is None else weights[mask], minlength=2)

    want = {"tenure_old": per(old, tenure), "age_ui": per(ui, age) / per(ui),
            "n_old": per(old), "n_old_by_values": per(old)}
    assert not np.array_equal(want["n_old"], per(np.ones_like(old)))  # the filter matters
    plain = run_plain(check(GROUPS, schema), schema, values).results
    got = run_mpc(GROUPS, schema, values, provider_factory=DEALER, filename="groups.py",
                  quorum=thread_quorum).results
    for name, exact in want.items():
        assert np.allclose(plain[name].value, exact), (name, plain[name].value, exact)
        r = got[name]
        assert np.all(np.abs(r.value - exact) <= r.error + 1e-9), (name, r.value, exact)


ORDER = """
reveal(median(data.age), "median_age")
reveal(percentile(data.tenure, 35), "p35_tenure")
reveal(max(data.age), "max_age")
reveal(min(data.tenure, where=data.ui), "min_tenure_ui")
reveal(histogram(data.age, bins=7), "ages")
reveal(median(data.rr), "median_rr")
reveal(histogram(data.age, bins=5, where=data.ui), "ages_ui")
reveal(histogram(where(data.rr, data.age > 40), bins=[0, 0.2, 0.5, 0.7]), "rr_older")
reveal(median(data.age, where=data.ui), "median_age_ui")
reveal(percentile(where(data.rr, data.age > 40), 90), "p90_rr_older")
reveal(percentile(data.tenure, 33.3, where=data.ui), "p33_tenure_ui")
reveal(median(data.age, where=data.age > 65), "median_none")
"""


def test_order_statistics_and_bins_of_int_columns_compare_on_the_ranges_bits() -> None:
    """Int columns are compared at their own scale (integers, not codes of 16 more bits)
    and lifted afterwards: a median of an even count still has its .5, a percentile its
    interpolation, bins their numpy intervals; a fixed column is unchanged; a filtered
    column's bins count the rows the filter keeps, its median and percentiles are numpy's
    of those rows (their count secret), the middle of the range when none is kept. The
    estimate shows the cost that buys: a median of ages takes a fifth of the triples it
    did."""
    from enigma.lang.cost import estimate

    schema = Schema.load(ROOT / "examples" / "benefits.yaml")
    rows = 270  # an even count whose two middle ages differ
    values = {k: v[:rows] for k, v in schema.read_csv(ROOT / "data" / "benefits.csv").items()}
    got = run_mpc(ORDER, schema, values, provider_factory=DEALER, filename="order.py").results
    age, tenure = values["age"].astype(float), values["tenure"].astype(float)
    rr = schema.column("rr").encoding.to_integers(values["rr"]) / 2.0**16
    ui = values["ui"].astype(bool)
    col = schema.column("age")
    want = {"median_age": np.median(age), "p35_tenure": np.percentile(tenure, 35),
            "max_age": age.max(), "min_tenure_ui": tenure[ui].min(),
            "ages": np.histogram(age, bins=7, range=(col.lo, col.hi))[0],
            "median_rr": np.median(rr),
            "ages_ui": np.histogram(age[ui], bins=5, range=(col.lo, col.hi))[0],
            "rr_older": np.histogram(rr[age > 40], bins=[0, 0.2, 0.5, 0.7])[0],
            "median_age_ui": np.median(age[ui]),
            "p90_rr_older": np.percentile(rr[age > 40], 90),
            "p33_tenure_ui": np.percentile(tenure[ui], 33.3),
            "median_none": (col.lo + col.hi) / 2}  # no row: the middle of the range
    assert not (age > 65).any()
    assert np.median(age) % 1 == 0.5
    for name, w in want.items():
        r = got[name]
        assert np.all(np.abs(np.asarray(r.value, dtype=float) - w) <= r.error + 1e-12), \
            (name, r.value, w, r.error)
    cost = estimate("reveal(median(data.age), 'm')\n", schema, 4877).cost
    assert cost.triples < 400_000, cost  # 1,663,324 when ages were compared as 23-bit codes


def test_order_statistics_of_a_column_finer_than_16_bits_keep_its_scale() -> None:
    """A fixed column of 20 fractional bits: compared and returned at its own scale (the
    result at 16 bits would have to round it); it crashed the engine before."""
    schema = Schema.from_dict({"name": "fine", "rows": 40, "columns": [
        {"name": "x", "type": "fixed", "frac_bits": 20, "min": -2.0, "max": 2.0},
        {"name": "k", "type": "bool"}]})
    rng = np.random.default_rng(5)
    x = np.round(rng.uniform(-2, 2, 40) * 2**20) / 2**20
    values = {"x": x, "k": rng.integers(0, 2, 40).astype(bool)}
    script = ('reveal(min(data.x), "lo")\nreveal(max(data.x, where=data.k), "hi")\n'
              'reveal(median(data.x), "mid")\nreveal(percentile(data.x, 70, where=data.k), '
              '"p70")\n')
    got = run_mpc(script, schema, values, provider_factory=DEALER, filename="fine.py").results
    k = values["k"]
    want = {"lo": x.min(), "hi": x[k].max(), "mid": np.median(x),
            "p70": np.percentile(x[k], 70)}
    for name, w in want.items():
        r = got[name]
        assert abs(float(r.value) - w) <= float(r.error) + 1e-12, (name, r.value, w, r.error)
    assert got["lo"].value == x.min()  # exact at 2^-20, not rounded to 2^-16
