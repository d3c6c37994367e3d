"""examples/notebook.py, run as a user runs it (from a folder with the checkout's `examples/`
and `data/`): it starts a local network, shares a pandas DataFrame, runs a group-by and
gets back a DataFrame labelled by the group's levels, each value beside its bound, which
must agree with pandas' own group-by of the same file."""

import os
import runpy
from pathlib import Path

import pandas as pd
import pytest

from enigma.app import api
from enigma.lang.schema import Schema

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_notebook_gets_a_labelled_group_by_that_pandas_agrees_with(tmp_path, monkeypatch
                                                                       ) -> None:
    for folder in ("examples", "data"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENIGMA_CONTEXT", raising=False)
    try:
        cells = runpy.run_path(str(ROOT / "examples" / "notebook.py"))
    finally:
        if (tmp_path / ".enigma-net" / "network.json").exists():  # the notebook failed
            api.stop_local(tmp_path / ".enigma-net")
    assert not (tmp_path / ".enigma-net" / "network.json").exists()  # its last cell ran
    table = cells["table"]
    levels = Schema.load(ROOT / "examples" / "acs12.yaml").column("edu").levels
    assert table.index.name == "edu" and list(table.index) == list(levels)
    assert list(table.columns) == ["mean_income", "mean_income_error", "people",
                                   "people_error"]
    people = pd.read_csv(ROOT / "data" / "acs12.csv")  # as the schema reads empty cells:
    people["income"] = people["income"].fillna(0)       # no income is 0, no edu "unknown"
    people["edu"] = people["edu"].fillna("unknown")
    want = people.groupby("edu")["income"]
    for level in levels:
        assert table.loc[level, "people"] == want.size().get(level, 0)
        assert abs(table.loc[level, "mean_income"] - want.mean().get(level, 0.0)) <= \
            table.loc[level, "mean_income_error"] + 1e-6
    assert os.path.isdir(tmp_path / ".enigma-net" / "owner")  # the CLI's owner home
