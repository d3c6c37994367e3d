"""`schema infer` on the tables owners have: Parquet, other delimiters, columns to drop, and
identifier, date and free-text columns, which are left out with a note instead of stopping the
draft. Each draft is then read by the owner's upload path, as `enigma share` reads it."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from enigma.app.cli import main
from enigma.app.upload import UploadError, decode_columns, read_chunks
from enigma.field import Field
from enigma.lang.errors import SchemaError
from enigma.lang.inference import infer_schema
from enigma.lang.schema import Schema

F = Field()
ROWS = 120


def _people(rng: np.random.Generator) -> dict[str, list]:
    """An owner's table: an id, a date of visit, a free-text comment, and columns to analyse."""
    start = datetime.date(2020, 1, 1)
    return {
        "id": [f"P{i:05d}" for i in range(ROWS)],
        "visit": [(start + datetime.timedelta(days=3 * i)).isoformat() for i in range(ROWS)],
        "age": rng.integers(18, 90, ROWS).tolist(),
        "income": np.round(rng.uniform(0, 9e4, ROWS), 2).tolist(),
        "smoker": rng.choice(["yes", "no"], ROWS).tolist(),
        "region": rng.choice(["north", "south", "east"], ROWS).tolist(),
        "comment": [f"note {i % 97}" for i in range(ROWS)],
    }


def _write_csv(path: Path, table: dict[str, list], delimiter: str = ",") -> Path:
    lines = [delimiter.join(table)]
    lines += [delimiter.join(str(v) for v in row) for row in zip(*table.values(), strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _read_back(source: Path, schema: Schema) -> dict[str, np.ndarray]:
    """The table as `enigma share` encodes it, decoded again."""
    chunks = list(read_chunks(source, schema, F))
    return decode_columns(F, schema, {n: np.concatenate([c.columns[n] for c in chunks])
                                      for n in schema.names})


def _note(notes: list[str], column: str) -> str:
    found = [n for n in notes if f"column {column!r}" in n]
    assert len(found) == 1, notes
    return found[0]


def test_ids_dates_and_free_text_are_left_out_with_a_note_and_share_skips_them(tmp_path):
    table = _people(np.random.default_rng(1))
    path = _write_csv(tmp_path / "people.csv", table)
    drafted, notes = infer_schema(path)
    assert drafted.names == ("age", "income", "smoker", "region")
    assert drafted.ignored == ("id", "visit", "comment")
    assert "identifier" in _note(notes, "id")
    assert "dates" in _note(notes, "visit") and "days since 1970-01-01" in _note(notes, "visit")
    assert "--max-levels 97" in _note(notes, "comment")
    assert drafted.validate(path) == []
    back = _read_back(path, drafted)
    assert back["age"].tolist() == table["age"]
    assert np.allclose(back["income"].astype(float), table["income"], atol=1e-4)


def test_raising_max_levels_keeps_the_free_text_as_a_category(tmp_path):
    path = _write_csv(tmp_path / "people.csv", _people(np.random.default_rng(2)))
    drafted, _ = infer_schema(path, max_levels=97)
    assert drafted.column("comment").kind == "category"
    assert "id" in drafted.ignored  # an identifier stays out: 120 distinct values > 97


def test_few_distinct_dates_make_a_category_to_group_by(tmp_path):
    path = _write_csv(tmp_path / "w.csv", {"wave": ["2021-03-01", "2021-09-01"] * 5,
                                           "score": list(range(10))})
    drafted, notes = infer_schema(path)
    assert drafted.column("wave").levels == ("2021-03-01", "2021-09-01") and notes == []


def test_drop_leaves_columns_out_and_an_unknown_one_is_named(tmp_path):
    path = _write_csv(tmp_path / "people.csv", _people(np.random.default_rng(3)))
    drafted, _ = infer_schema(path, drop=["region", "smoker"])
    assert drafted.names == ("age", "income")
    assert set(drafted.ignored) == {"region", "smoker", "id", "visit", "comment"}
    assert drafted.validate(path) == []
    with pytest.raises(SchemaError, match=r"no column\(s\) \['regoin'\] to drop; the file has"):
        infer_schema(path, drop=["regoin"])
    with pytest.raises(SchemaError, match="no column is left to describe"):
        infer_schema(path, drop=["age", "income", "smoker", "region"])


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_delimiter_is_recorded_in_the_draft_and_followed_by_share(tmp_path, delimiter):
    table = _people(np.random.default_rng(4))
    path = _write_csv(tmp_path / "people.csv", table, delimiter)
    drafted, _ = infer_schema(path, delimiter=delimiter)
    assert drafted.names == ("age", "income", "smoker", "region")
    again = Schema.from_dict(yaml.safe_load(drafted.dumps()))
    assert again.delimiter == delimiter and again.ignored == drafted.ignored
    assert again.validate(path) == []
    assert _read_back(path, again)["age"].tolist() == table["age"]


def test_a_semicolon_file_read_with_commas_says_to_give_the_delimiter(tmp_path):
    path = _write_csv(tmp_path / "people.csv", _people(np.random.default_rng(5)), ";")
    with pytest.raises(SchemaError, match="reads as one column; give --delimiter"):
        infer_schema(path)


def test_parquet_is_read_with_its_own_types(tmp_path):
    rng = np.random.default_rng(6)
    table = _people(rng)
    income = [None if i in (3, 7) else v for i, v in enumerate(table["income"])]  # null
    arrow = pa.table({
        "id": table["id"],
        "visit": pa.array([datetime.date.fromisoformat(d) for d in table["visit"]]),
        "age": pa.array(table["age"], pa.int64()),
        "income": pa.array(income, pa.float64()),
        "smoker": pa.array([s == "yes" for s in table["smoker"]]),
        "region": pa.array(table["region"]).dictionary_encode(),
        "comment": pa.array(table["comment"], pa.large_string()),
    })
    path = tmp_path / "people.parquet"
    pq.write_table(arrow, path)
    drafted, notes = infer_schema(path)
    kinds = {c.name: c.kind for c in drafted.columns}
    assert kinds == {"age": "int", "income": "fixed", "smoker": "bool", "region": "category"}
    assert drafted.ignored == ("id", "visit", "comment")
    assert "2 empty cell(s)" in _note(notes, "income")
    assert drafted.rows == ROWS
    filled = Schema.from_dict({**drafted.to_dict(), "columns": [
        {**c.to_dict(), "missing": "zero"} if c.name == "income" else c.to_dict()
        for c in drafted.columns]})
    back = _read_back(path, filled)
    assert back["smoker"].tolist() == [s == "yes" for s in table["smoker"]]
    assert back["age"].tolist() == table["age"]


def test_a_file_with_a_column_the_schema_neither_describes_nor_ignores_is_refused(tmp_path):
    path = _write_csv(tmp_path / "people.csv", _people(np.random.default_rng(7)))
    drafted, _ = infer_schema(path)
    strict = Schema.from_dict({k: v for k, v in drafted.to_dict().items() if k != "ignore"})
    with pytest.raises(UploadError, match="list those to leave out under its `ignore:`"):
        list(read_chunks(path, strict, F))
    assert {v.column for v in strict.validate(path)} == {"id", "visit", "comment"}


def test_schema_keys_for_the_file_are_checked_and_absent_by_default(tmp_path):
    base = {"name": "t", "columns": [{"name": "a", "type": "int", "min": 0, "max": 9}]}
    assert set(Schema.from_dict(base).to_dict()) == {"name", "columns"}  # digests unchanged
    with pytest.raises(SchemaError, match="both described and under `ignore`"):
        Schema.from_dict({**base, "ignore": ["a"]})
    with pytest.raises(SchemaError, match="`delimiter` must be one character"):
        Schema.from_dict({**base, "delimiter": ";;"})
    with pytest.raises(SchemaError, match="`ignore` must be a list of column names"):
        Schema.from_dict({**base, "ignore": "a"})


def test_cli_infer_takes_parquet_a_tab_and_drops(tmp_path):
    table = _people(np.random.default_rng(8))
    tsv = _write_csv(tmp_path / "people.tsv", table, "\t")
    out = tmp_path / "people.yaml"
    runner = CliRunner()
    got = runner.invoke(main, ["schema", "infer", str(tsv), "--delimiter", "tab", "--drop",
                               "region", "-o", str(out)])
    assert got.exit_code == 0, got.output
    assert "column 'id' is left out of the draft" in got.stderr
    assert runner.invoke(main, ["schema", "validate", str(out), str(tsv)]).exit_code == 0
    pq.write_table(pa.table({"age": table["age"]}), tmp_path / "ages.parquet")
    got = runner.invoke(main, ["schema", "infer", str(tmp_path / "ages.parquet")])
    assert got.exit_code == 0 and "type: int" in got.stdout
    bad = runner.invoke(main, ["schema", "infer", str(tsv), "--delimiter", ";;"])
    assert bad.exit_code == 2 and "is not one character" in bad.output


def test_an_empty_column_and_one_of_nan_are_left_out_with_a_note(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"age": [30, 41, 52], "blank": pa.array([None] * 3, pa.string()),
                             "ratio": [0.5, float("nan"), 0.25]}), path)
    drafted, notes = infer_schema(path)
    assert drafted.names == ("age",) and drafted.ignored == ("blank", "ratio")
    assert "every cell is empty" in _note(notes, "blank")
    assert "not a number; write them as empty cells" in _note(notes, "ratio")
