"""The owner's pipeline before the network: read, validate, encode, chunk, share, decode."""

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enigma.app.upload import (
    UploadError,
    collected_table,
    decode_columns,
    read_chunks,
    share_chunk,
    write_collected,
)
from enigma.field import Field
from enigma.lang.schema import Schema
from enigma.sharing import shamir, tags

F = Field()
SCHEMA = Schema.from_dict({"name": "people", "columns": [
    {"name": "age", "type": "int", "min": 0, "max": 130},
    {"name": "income", "type": "fixed", "min": -1.0e6, "max": 1.0e6, "frac_bits": 16},
    {"name": "smoker", "type": "bool", "true_text": "yes", "false_text": "no"},
    {"name": "region", "type": "category", "levels": ["north", "south", "east"]},
]})


def _table(rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "age": rng.integers(0, 131, rows),
        "income": rng.normal(0, 1e5, rows).round(2),
        "smoker": rng.choice(np.array(["yes", "no"]), rows),
        "region": rng.choice(np.array(["north", "south", "east"]), rows),
    }


def _write_csv(path: Path, table: dict[str, np.ndarray], override=None) -> Path:
    names = list(table)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for i in range(len(table[names[0]])):
            row = [str(table[n][i]) for n in names]
            if override and i in override:
                row = override[i]
            w.writerow(row)
    return path


def _roundtrip(chunks, t=1, n=3) -> dict[str, np.ndarray]:
    """Share every chunk, reconstruct from t + 1 holders, decode: what `collect` does."""
    parts: dict[str, list[np.ndarray]] = {c: [] for c in SCHEMA.names}
    for chunk in chunks:
        key = F.random(1)
        shares = share_chunk(F, chunk, t, n, key)
        for name in SCHEMA.names:
            held = {j + 1: shares[j][name] for j in range(t + 1)}
            parts[name].append(shamir.reconstruct(F, held, t))
            tag = shamir.reconstruct(F, {j + 1: shares[j][tags.column(name)]
                                         for j in range(t + 1)}, t)
            assert np.array_equal(tag, tags.tag(F, parts[name][-1], key))  # tag = kappa x
            assert not np.array_equal(shares[0][tags.column(name)],   # not kappa times the
                                      tags.tag(F, shares[0][name], key))  # value's shares
    return decode_columns(F, SCHEMA, {c: np.concatenate(v) for c, v in parts.items()})


def _expected(table):
    return {"age": table["age"], "income": table["income"],
            "smoker": table["smoker"] == "yes", "region": table["region"]}


def _assert_equal(got, table):
    want = _expected(table)
    assert (got["age"] == want["age"]).all()
    assert np.abs(got["income"] - want["income"]).max() <= 2.0**-17
    assert (got["smoker"] == want["smoker"]).all()
    assert list(got["region"]) == list(want["region"])


@given(rows=st.integers(1, 300), chunk_rows=st.integers(1, 128), seed=st.integers(0, 2**16))
def test_tables_in_memory_roundtrip_through_chunks_and_shares(rows, chunk_rows, seed):
    table = _table(rows, seed)
    chunks = list(read_chunks(table, SCHEMA, F, chunk_rows))
    assert [c.rows for c in chunks][:-1] == [chunk_rows] * (len(chunks) - 1)
    assert sum(c.rows for c in chunks) == rows
    assert [c.first_row for c in chunks] == [i * chunk_rows for i in range(len(chunks))]
    _assert_equal(_roundtrip(chunks), table)


def test_csv_parquet_and_arrow_give_the_same_encoding(tmp_path):
    table = _table(2500, seed=3)
    csv_path = _write_csv(tmp_path / "t.csv", table)
    pq_path = tmp_path / "t.parquet"
    pq.write_table(pa.table(table), pq_path)
    runs = [list(read_chunks(src, SCHEMA, F, 1000))
            for src in (csv_path, pq_path, pa.table(table), table)]
    for other in runs[1:]:
        assert len(other) == len(runs[0]) == 3
        for a, b in zip(runs[0], other, strict=True):
            for name in SCHEMA.names:
                assert (a.columns[name] == b.columns[name]).all()
    _assert_equal(_roundtrip(runs[0], t=2, n=5), table)


def test_a_pandas_dataframe_is_shared_like_its_csv(tmp_path):
    table = _table(1200, seed=5)
    frame = pd.DataFrame(table)
    frame["smoker"] = frame["smoker"] == "yes"          # real booleans
    frame["region"] = frame["region"].astype("category")  # a pandas categorical
    from_frame = list(read_chunks(frame, SCHEMA, F, 500))
    from_csv = list(read_chunks(_write_csv(tmp_path / "f.csv", table), SCHEMA, F, 500))
    for a, b in zip(from_frame, from_csv, strict=True):
        for name in SCHEMA.names:
            assert (a.columns[name] == b.columns[name]).all(), name


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("dtypes", ["default", "string[python]", "string[pyarrow]", "pyarrow",
                                    "category"])
def test_pandas_3_text_dtypes_are_shared_like_the_csv(dtypes):
    """acs12 has `missing: fill` categories: a filled word must not be read as a number,
    whatever Arrow type pandas hands its texts over as (`str` is large_string in pandas 3)."""
    path = ROOT / "data" / "acs12.csv"
    schema = Schema.load(ROOT / "examples" / "acs12.yaml")
    frame = pd.read_csv(path, dtype_backend="pyarrow") if dtypes == "pyarrow" else \
        pd.read_csv(path)
    texts = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    assert texts and frame[texts].isna().any().any()  # the fill rule is exercised
    if dtypes not in ("default", "pyarrow"):
        frame = frame.astype(dict.fromkeys(texts, dtypes))
    from_frame = list(read_chunks(frame, schema, F, 700))
    for a, b in zip(from_frame, read_chunks(path, schema, F, 700), strict=True):
        for name in schema.names:
            assert (a.columns[name] == b.columns[name]).all(), name


@pytest.mark.parametrize("region", ["east", "east, far"])
def test_a_collected_csv_holds_each_value_as_written_and_reads_back_alike(tmp_path, region):
    """`dataset collect`: 30.3 comes back as 30.3, not as the binary expansion of its
    encoding; texts are quoted only where a level needs it; the file reads back to the
    same encoding; in memory, the table keeps the schema's types."""
    doc = SCHEMA.to_dict()
    doc["columns"][3]["levels"] = ["north", "south", region]
    schema = Schema.from_dict(doc)
    table = _table(400, seed=9)
    table["income"][:2] = [30.3, -0.1]
    table["region"] = np.where(table["region"] == "east", region, table["region"])
    [chunk] = read_chunks(table, schema, F, 400)
    out = tmp_path / "back.csv"
    write_collected(schema, decode_columns(F, schema, chunk.columns), out)
    lines = out.read_text().splitlines()
    assert lines[0].replace('"', "") == "age,income,smoker,region"
    assert [line.split(",")[1] for line in lines[1:3]] == ["30.3", "-0.1"]
    assert ('"' in out.read_text()) == ("," in region)
    [again] = read_chunks(out, schema, F, 400)
    for name in schema.names:
        assert (again.columns[name] == chunk.columns[name]).all(), name
    frame = collected_table(schema, decode_columns(F, schema, chunk.columns)).to_pandas()
    assert frame["age"].dtype == np.int64 and frame["smoker"].dtype == bool
    assert list(frame["region"].cat.categories) == ["north", "south", region]


@pytest.mark.parametrize("override, row, column, text", [
    ({41: ["12", "1.5", "yes"]}, 42, None, "cells"),                       # a short row
    ({7: ["12", "abc", "no", "east"]}, 8, "income", "not a number"),      # not a number
    ({1500: ["200", "1.0", "no", "east"]}, 1501, "age", "outside the range"),   # range
    ({999: ["20", "1.0", "maybe", "east"]}, 1000, "smoker", "neither 'yes' nor 'no'"),
    ({3: ["20", "1.0", "no", "west"]}, 4, "region", "not one of the levels"),
    ({2000: ["", "1.0", "no", "east"]}, 2001, "age", "empty cell"),
    ({1200: ["1e23", "1.0", "no", "east"]}, 1201, "age", r"value 1e\+23 is outside the range"),
])
def test_bad_cells_are_reported_with_row_and_column(tmp_path, override, row, column, text):
    path = _write_csv(tmp_path / "bad.csv", _table(2500, seed=1), override)
    with pytest.raises(UploadError, match=text) as err:
        list(read_chunks(path, SCHEMA, F, 1000))
    assert err.value.row == row
    assert err.value.column == column
    assert f"row {row}" in str(err.value)


def test_a_column_named_twice_in_the_header_is_refused(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("age,income,smoker,region,age\n20,1.0,no,east,21\n")
    with pytest.raises(UploadError, match="names column 'age' more than once") as err:
        list(read_chunks(path, SCHEMA, F))
    assert err.value.column == "age"


@pytest.mark.parametrize("where, row", [("header", 0), ("body", 1201)])
def test_a_file_that_is_not_utf8_is_refused_naming_the_row(tmp_path, where, row):
    path = _write_csv(tmp_path / "latin1.csv", _table(2500, seed=2))
    lines = path.read_bytes().split(b"\n")
    lines[row] = lines[row].replace(b"e", b"\xe9", 1) if where == "header" else \
        lines[row].replace(b",no,", b",n\xf6,").replace(b",yes,", b",y\xe9s,")
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(UploadError, match=f"row {row} is not UTF-8 text") as err:
        list(read_chunks(path, SCHEMA, F, 1000))
    assert err.value.row == row


def test_header_mismatch_names_the_columns(tmp_path):
    table = _table(10)
    table["ssn"] = np.arange(10)
    del table["age"]
    with pytest.raises(UploadError, match=r"missing \['age'\], not in the schema \['ssn'\]"):
        list(read_chunks(_write_csv(tmp_path / "h.csv", table), SCHEMA, F))


def test_missing_values_follow_the_schema_rule(tmp_path):
    schema = Schema.from_dict({"name": "m", "rows": 3, "columns": [
        {"name": "a", "type": "int", "min": 0, "max": 9, "missing": "zero"},
        {"name": "b", "type": "category", "levels": ["x", "y"], "missing": "fill", "fill": "y"},
    ]})
    path = tmp_path / "m.csv"
    path.write_text("a,b\n1,x\n,\n3,y\n")
    (chunk,) = read_chunks(path, schema, F)
    got = decode_columns(F, schema, chunk.columns)
    assert list(got["a"]) == [1, 0, 3] and list(got["b"]) == ["x", "y", "y"]
    path.write_text("a,b\n1,x\n")
    with pytest.raises(UploadError, match="has 1 rows; the schema says rows: 3"):
        list(read_chunks(path, schema, F))


@pytest.mark.parametrize("name", ["benefits", "acs12"])
def test_the_fast_reader_agrees_with_the_schema_reference_on_the_shipped_data(name):
    root = Path(__file__).resolve().parent.parent
    schema = Schema.load(root / "examples" / f"{name}.yaml")
    data = root / "data" / f"{name}.csv"
    reference = schema.read_csv(data)  # the language layer's cell-by-cell reader
    (chunk,) = read_chunks(data, schema, F, chunk_rows=1 << 16)
    for col in schema.columns:
        want = col.encoding.encode(F, reference[col.name])
        assert (chunk.columns[col.name] == want).all(), col.name
