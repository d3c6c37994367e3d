"""Labelled results (lang/results.py): frames, tables, JSON and text carry the names and
bounds the owner's check put on them, and a result whose shape a node changed is refused."""

import json
import pathlib

import numpy as np
import pandas as pd
import pytest

from enigma.lang import results
from enigma.lang.checker import check
from enigma.lang.interpreter import Revealed
from enigma.lang.plain import run_plain
from enigma.lang.schema import Schema

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCHEMA = Schema.load(ROOT / "examples" / "benefits.yaml")
BY_STATE = (ROOT / "examples" / "by_state.py").read_text()


@pytest.fixture(scope="module")
def by_state() -> dict[str, Revealed]:
    script = check(BY_STATE, SCHEMA)
    out = run_plain(script, SCHEMA, SCHEMA.read_csv(ROOT / "data" / "benefits.csv")).results
    bounds = {n: Revealed(r.value, np.full(r.value.shape, 1e-5)) for n, r in out.items()}
    return results.labelled(script, bounds)  # as the owner does with what it decrypted


def test_a_group_by_table_is_indexed_by_state_with_each_bound_beside_its_value(by_state):
    frame = results.table(by_state)
    assert frame.index.name == "state"
    assert list(frame.columns) == ["workers", "workers_error", "claimed_ui", "claimed_ui_error",
                                   "mean_replacement_rate", "mean_replacement_rate_error"]
    data = pd.read_csv(ROOT / "data" / "benefits.csv", dtype={"state": str})
    want = data.groupby("state")["rr"].mean()
    got = frame["mean_replacement_rate"]
    assert np.allclose(got.loc[want.index], want.to_numpy(), atol=1e-4)
    assert (frame["workers_error"] == 1e-5).all()


def test_a_frame_of_a_matrix_has_both_names_and_scalars_gather_by_name() -> None:
    script = check("reveal(kmeans([data.age, data.tenure], k=2, iters=1), \"c\")\n"
                   "reveal(mean(data.age), \"m\")\nreveal(count(data.age), \"n\")\n", SCHEMA)
    out = results.labelled(script, run_plain(script, SCHEMA, SCHEMA.read_csv(
        ROOT / "data" / "benefits.csv")).results)
    frame = results.frame(out["c"], "c")
    assert frame.index.names == ["cluster", "feature"]
    assert frame.loc[("1", "tenure"), "c"] == out["c"].value[1, 1]
    scalars = results.table(out, ["m", "n"])
    assert list(scalars.index) == ["m", "n"] and list(scalars.columns) == ["value", "error"]
    with pytest.raises(ValueError, match="differ in shape"):
        results.table(out)
    with pytest.raises(KeyError, match="no result named 'x'"):
        results.table(out, ["x"])


def test_json_and_text_name_every_group(by_state):
    record = json.loads(json.dumps(results.as_json(by_state["workers"])))
    assert record["axes"][0]["name"] == "state"
    assert len(record["axes"][0]["labels"]) == len(record["value"]) == len(record["error"])
    text = results.text("workers", by_state["workers"])
    assert text.startswith("workers by state (largest error 1e-05):")
    first = by_state["workers"].axes[0].labels[0]
    assert any(line.split()[0] == first for line in text.splitlines()[3:])


def test_a_result_whose_shape_a_node_changed_is_refused(by_state):
    script = check(BY_STATE, SCHEMA)
    lying = dict(by_state, workers=Revealed(np.zeros(50), 0.0))
    with pytest.raises(results.ResultShapeError, match="shape \\(50,\\)"):
        results.labelled(script, lying)
