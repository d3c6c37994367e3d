"""examples/notebook.py, run as a user runs it (from a folder with the checkout's `examples/`
and `data/`): it starts a local network, shares a pandas DataFrame, runs a group-by and
gets back a DataFrame labelled by the group's levels, each value beside its bound, which
must agree with pandas' own group-by of the same file."""

import os
import runpy
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from enigma.app import api
from enigma.lang.schema import Schema

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder():
    """A folder of its own: pytest's may be pruned by another pytest session on this
    machine while the network still runs in it."""
    path = Path(tempfile.mkdtemp(prefix="enigma-notebook-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_notebook_gets_a_labelled_group_by_that_pandas_agrees_with(folder, monkeypatch
                                                                       ) -> None:
    for shipped in ("examples", "data"):
        (folder / shipped).symlink_to(ROOT / shipped)
    monkeypatch.chdir(folder)
    monkeypatch.delenv("ENIGMA_CONTEXT", raising=False)
    try:
        cells = runpy.run_path(str(ROOT / "examples" / "notebook.py"))
    finally:
        if (folder / ".enigma-net" / "network.json").exists():  # the notebook failed
            api.stop_local(folder / ".enigma-net")
    assert not (folder / ".enigma-net" / "network.json").exists()  # its last cell ran
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
    assert os.path.isdir(folder / ".enigma-net" / "owner")  # the CLI's owner home
    back = cells["back"]  # collected: the values as the schema read them, typed
    assert back["income"].dtype == "int64" and back["income"].tolist() == \
        people["income"].astype("int64").tolist()
    assert list(back["edu"].cat.categories) == list(levels)
    assert back["edu"].astype(str).tolist() == people["edu"].tolist()
