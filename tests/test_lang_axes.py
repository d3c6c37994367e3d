"""The names the checker puts on a result's dimensions (lang/axes.py), checked against pandas
and numpy on the real data: each name must sit on the number it names."""

import pathlib

import numpy as np
import pandas as pd
import pytest

from enigma.lang.checker import check
from enigma.lang.plain import run_plain
from enigma.lang.schema import Schema

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCHEMA = Schema.load(ROOT / "examples" / "benefits.yaml")
DATA = ROOT / "data" / "benefits.csv"


@pytest.fixture(scope="module")
def table() -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    return SCHEMA.read_csv(DATA), pd.read_csv(DATA)


def _run(source: str, table) -> dict:
    script = check(source, SCHEMA)
    out = run_plain(script, SCHEMA, table[0]).results
    return {o.name: (o.type.axes, out[o.name].value) for o in script.outputs}


def test_group_by_levels_name_each_group_as_pandas_groups_it(table) -> None:
    got = _run('reveal(group_by(data.joblost, data.rr, "mean"), "rate")\n'
               'reveal(group_by(data.sex), "n")\n', table)
    axes, value = got["rate"]
    assert axes[0].name == "joblost"
    expected = table[1].groupby("joblost")["rr"].mean()
    by_label = dict(zip(axes[0].labels, value, strict=True))
    for level, mean in expected.items():
        assert by_label[level] == pytest.approx(mean, abs=1e-4)
    axes, value = got["n"]
    counts = table[1]["sex"].value_counts()
    assert dict(zip(axes[0].labels, value, strict=True)) == {k: counts[k] for k in axes[0].labels}


def test_histogram_bins_are_numpy_intervals(table) -> None:
    got = _run("reveal(histogram(data.age, bins=4), \"ages\")\n"
               "reveal(histogram(data.tenure, bins=[0, 5, 45]), \"tenure\")\n", table)
    axes, value = got["ages"]
    lo, hi = SCHEMA.column("age").lo, SCHEMA.column("age").hi
    counts, edges = np.histogram(table[1]["age"], bins=4, range=(lo, hi))
    assert axes[0].labels[0] == f"[{edges[0]:g}, {edges[1]:g})"
    assert axes[0].labels[-1] == f"[{edges[-2]:g}, {edges[-1]:g}]"
    assert value.tolist() == counts.tolist()
    assert got["tenure"][0][0].labels == ("[0, 5)", "[5, 45]")


def test_a_sum_of_two_group_bys_by_one_key_keeps_the_levels_an_index_drops_them(table) -> None:
    got = _run("a = group_by(data.ui)\nb = group_by(data.ui, data.age, \"sum\")\n"
               "reveal(b / a, \"mean_age\")\nreveal(a[1], \"claimed\")\n"
               "reveal(a[1:], \"tail\")\nreveal(a + group_by(data.sex), \"mixed\")\n"
               "reveal(group_by(data.age > 60), \"older\")\n", table)
    assert got["mean_age"][0][0].labels == ("no", "yes")  # the schema's words for ui
    assert got["older"][0][0].labels == ("false", "true")  # a computed boolean has none
    assert got["claimed"][0] == ()
    assert got["tail"][0][0].labels == ("yes",)
    assert got["mixed"][0] == ()  # two keys: the names of neither fit the sum


def test_regression_terms_and_cluster_features_say_what_each_number_is(table) -> None:
    script = check("coef = linreg(data.rr, [data.age, data.tenure])\nreveal(coef, \"c\")\n"
                   "f = [data.age, data.tenure]\nreveal(kmeans(f, k=2, iters=1), \"k\")\n"
                   "reveal(kmeans([data.age, data.rr * 100], k=2, iters=1), \"k2\")\n", SCHEMA)
    axes = {o.name: o.type.axes for o in script.outputs}
    assert axes["c"][0].labels == ("intercept", "age", "tenure")
    fits = check("reveal(linreg(data.rr, [data.age], intercept=False), \"b\")\n"
                 "reveal(ols(data.rr, [data.age, data.tenure]), \"o\")\n", SCHEMA).outputs
    assert fits[0].type.axes[0].labels == ("age",)
    assert fits[1].type.axes[0].labels == ("intercept", "age", "tenure", "se(intercept)",
                                           "se(age)", "se(tenure)", "r2", "adjusted_r2",
                                           "condition", "floored")
    assert [a.labels for a in axes["k"]] == [("0", "1"), ("f[0]", "f[1]")]
    assert axes["k2"][1].labels == ("age", "rr * 100")
