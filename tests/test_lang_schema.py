"""Schemas: loading, inference, validation of every cell, missing values, and the CLI."""

import csv
import pathlib

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from enigma.app.cli import main
from enigma.field import Field
from enigma.field.encoding import (
    BoolEncoding,
    CategoryEncoding,
    FixedEncoding,
    IntEncoding,
)
from enigma.lang.errors import DataError, SchemaError
from enigma.lang.inference import infer_schema, round_out
from enigma.lang.schema import Schema

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
EXAMPLES = ROOT / "examples"


def _csv(path: pathlib.Path, header: list[str], rows: list[list[str]]) -> pathlib.Path:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    return path


def _schema(columns: list[dict], **extra) -> Schema:
    return Schema.from_dict({"name": "t", "columns": columns, **extra}, "test.yaml")


@pytest.mark.parametrize("name", ["benefits", "acs12"])
def test_shipped_schemas_match_their_data(name: str) -> None:
    schema = Schema.load(EXAMPLES / f"{name}.yaml")
    assert schema.validate(DATA / f"{name}.csv") == []
    values = schema.read_csv(DATA / f"{name}.csv")
    with open(DATA / f"{name}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert schema.rows == len(rows)
    for col in schema.columns:
        assert len(values[col.name]) == len(rows)
        col.encoding.to_integers(values[col.name])  # every value encodes
        if col.kind == "int":
            assert values[col.name].dtype == np.int64


def test_columns_produce_their_encodings() -> None:
    schema = Schema.load(EXAMPLES / "benefits.yaml")
    assert schema.column("age").encoding == IntEncoding(20, 70)
    assert schema.column("rr").encoding == FixedEncoding(16, 0.0, 0.7)
    assert schema.column("ui").encoding == BoolEncoding()
    assert isinstance(schema.column("state").encoding, CategoryEncoding)
    assert len(schema.column("state").levels) == 51
    assert all(c.private for c in schema.columns)


def test_read_values_round_trip_through_the_field() -> None:
    schema = Schema.load(EXAMPLES / "benefits.yaml")
    values = schema.read_csv(DATA / "benefits.csv")
    field = Field()
    with open(DATA / "benefits.csv", newline="") as fh:
        raw = list(csv.DictReader(fh))
    for name in ("age", "rr", "ui", "joblost"):
        enc = schema.column(name).encoding
        back = enc.decode(field, enc.encode(field, values[name]))
        if name == "rr":
            expect = np.array([float(r[name]) for r in raw])
            assert np.max(np.abs(back - expect)) <= enc.error
        elif name == "ui":
            assert list(back) == [r[name] == "yes" for r in raw]
        else:
            assert [str(v) for v in back] == [r[name] for r in raw]


def test_unknown_column_suggests_the_closest() -> None:
    schema = Schema.load(EXAMPLES / "benefits.yaml")
    with pytest.raises(KeyError, match="did you mean 'age'"):
        schema.column("agee")


def test_infer_drafts_kinds_ranges_and_private_labels() -> None:
    drafted, notes = infer_schema(DATA / "benefits.csv")
    kinds = {c.name: c.kind for c in drafted.columns}
    assert kinds["age"] == "int" and kinds["rr"] == "fixed" and kinds["stateur"] == "fixed"
    assert kinds["ui"] == "bool" and kinds["bluecol"] == "bool"
    assert kinds["joblost"] == "category" and kinds["sex"] == "category"
    assert all(c.private for c in drafted.columns)
    assert notes == []
    assert drafted.validate(DATA / "benefits.csv") == []
    with open(DATA / "benefits.csv", newline="") as fh:
        ages = [int(r["age"]) for r in csv.DictReader(fh)]
    age = drafted.column("age")
    assert age.lo <= min(ages) and age.hi >= max(ages)
    assert (age.lo, age.hi) != (min(ages), max(ages))  # the exact extremes stay hidden


def test_infer_notes_empty_cells_and_refuses_them_until_the_owner_decides() -> None:
    drafted, notes = infer_schema(DATA / "acs12.csv")
    assert any("'income' has 377 empty" in n for n in notes)
    violations = drafted.validate(DATA / "acs12.csv")
    assert violations and all("empty cell" in v.message for v in violations)
    assert {v.column for v in violations} == {"income", "employment", "hrs_work",
                                              "time_to_work", "lang", "edu"}


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e9, 1e9), st.floats(0, 1e9))
def test_round_out_contains_the_range_and_is_coarse(lo: float, width: float) -> None:
    hi = lo + width
    a, b = round_out(lo, hi)
    assert a <= lo and b >= hi
    m = max(abs(lo), abs(hi))
    if m >= 1:
        step = 10.0 ** np.floor(np.log10(m))
        assert a / step == pytest.approx(round(a / step)) and b / step == pytest.approx(
            round(b / step))


def test_validate_reports_every_violation_with_row_and_column(tmp_path) -> None:
    schema = _schema([
        {"name": "age", "type": "int", "min": 0, "max": 100},
        {"name": "rate", "type": "fixed", "min": 0, "max": 1},
        {"name": "ok", "type": "bool", "true_text": "yes", "false_text": "no"},
        {"name": "kind", "type": "category", "levels": ["a", "b"]},
    ])
    path = _csv(tmp_path / "t.csv", ["age", "rate", "ok", "kind"], [
        ["10", "0.5", "yes", "a"],
        ["101", "0.2", "no", "c"],
        ["4.5", "x", "maybe", "b"],
        ["", "2", "yes", "a"],
        ["-1", "0.1", "no", "b"],
    ])
    found = [(v.row, v.column) for v in schema.validate(path)]
    assert found == [(2, "age"), (2, "kind"), (3, "age"), (3, "rate"), (3, "ok"), (4, "age"),
                     (4, "rate"), (5, "age")]
    text = [str(v) for v in schema.validate(path)]
    assert "row 2, column 'age': value 101 is outside the range [0, 100]" in text
    assert "row 3, column 'age': value 4.5 is not an integer" in text
    assert any("'c' is not one of the levels ['a', 'b']" in t for t in text)
    assert all("index" not in t for t in text)
    with pytest.raises(DataError, match="8 cell"):
        schema.read_csv(path)


def test_header_problems_are_violations(tmp_path) -> None:
    schema = _schema([{"name": "a", "type": "int"}, {"name": "b", "type": "int"}], rows=2)
    path = _csv(tmp_path / "t.csv", ["a", "c"], [["1", "2"], ["3"]])
    text = [str(v) for v in schema.validate(path)]
    assert "header, column 'c': column is not in the schema; describe it in the schema or " \
           "remove it from the file" in text
    assert any("column 'b': column of the schema is missing" in t for t in text)
    assert any("row 2, column '*': the row has 1 cells, the header 2" in t for t in text)


def test_bom_trailing_blank_lines_and_repeated_header_names(tmp_path) -> None:
    schema = _schema([{"name": "a", "type": "int"}])
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbfa\r\n1\r\n2\r\n\r\n\r\n")
    assert schema.validate(path) == []
    assert schema.read_csv(path)["a"].tolist() == [1, 2]
    path.write_text("a,a\n1,2\n")
    assert [str(v) for v in schema.validate(path)] == [
        "header, column 'a': the header names this column twice"]
    path.write_bytes(b"a\n\xff\n")
    with pytest.raises(SchemaError, match="not UTF-8"):
        schema.validate(path)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-50, 150), min_size=1, max_size=300))
def test_every_out_of_range_row_is_reported(tmp_path_factory, ages: list[int]) -> None:
    path = _csv(tmp_path_factory.mktemp("p") / "t.csv", ["age"], [[str(a)] for a in ages])
    schema = _schema([{"name": "age", "type": "int", "min": 0, "max": 100}])
    rows = [v.row for v in schema.validate(path)]
    expect = (np.flatnonzero((np.array(ages) < 0) | (np.array(ages) > 100)) + 1).tolist()
    assert rows == expect


def test_violations_beyond_one_block_are_all_found(tmp_path) -> None:
    ages = ["200" if i % 997 == 0 else "30" for i in range(10_000)]
    path = _csv(tmp_path / "t.csv", ["age"], [[a] for a in ages])
    schema = _schema([{"name": "age", "type": "int", "min": 0, "max": 100}])
    assert [v.row for v in schema.validate(path)] == [i + 1 for i in range(0, 10_000, 997)]


@pytest.mark.parametrize(("rule", "expect"), [
    ({"missing": "zero"}, [0, 7]),
    ({"missing": "fill", "fill": 5}, [5, 7]),
])
def test_missing_values_zero_or_fill(tmp_path, rule: dict, expect: list[int]) -> None:
    path = _csv(tmp_path / "t.csv", ["n"], [[""], ["7"]])
    schema = _schema([{"name": "n", "type": "int", "min": 0, "max": 9, **rule}])
    assert schema.read_csv(path)["n"].tolist() == expect


def test_missing_values_refused_by_default(tmp_path) -> None:
    path = _csv(tmp_path / "t.csv", ["n"], [[""], ["7"], [" "]])
    schema = _schema([{"name": "n", "type": "int"}])
    assert [(v.row, "missing: refuse" in v.message) for v in schema.validate(path)] == [
        (1, True), (3, True)]


def test_category_fill_must_be_a_level() -> None:
    with pytest.raises(SchemaError, match="fill value 'x' is not valid"):
        _schema([{"name": "k", "type": "category", "levels": ["a"], "missing": "fill",
                  "fill": "x"}])
    with pytest.raises(SchemaError, match="missing: zero` is for numbers"):
        _schema([{"name": "k", "type": "category", "levels": ["a"], "missing": "zero"}])


@pytest.mark.parametrize(("doc", "message"), [
    ("name: t\ncolumns:\n- {name: a, type: float}\n", "`type` must be one of"),
    ("name: t\ncolumns:\n- {name: a, type: int, maxx: 3}\n", "unknown key\\(s\\) \\['maxx'\\]"),
    ("name: t\ncolumns:\n- {name: a, type: category, levels: [yes, no]}\n",
     "read by YAML as a boolean; quote it"),
    ("name: t\ncolumns:\n- {name: a, type: bool, true_text: yes}\n", "must be a quoted text"),
    ("name: t\ncolumns:\n- {name: a, type: int, min: 5, max: 1}\n", "integer range \\[5, 1\\]"),
    ("name: t\ncolumns:\n- {name: a, type: int}\n- {name: a, type: int}\n", "described twice"),
    ("name: t\ncolumns: []\n", "non-empty list"),
    ("name: t\ncolumns:\n- {name: a, type: int, label: secret}\n", "private or public"),
    ("[1, 2]\n", "a schema is a mapping"),
])
def test_schema_errors_name_the_file_and_the_key(tmp_path, doc: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(doc)
    with pytest.raises(SchemaError, match=message) as info:
        Schema.load(path)
    assert str(path) in str(info.value)


def test_dump_and_load_round_trip_and_digest() -> None:
    schema = Schema.load(EXAMPLES / "acs12.yaml")
    again = Schema.from_dict(yaml.safe_load(schema.dumps()))
    assert again == schema
    assert again.digest() == schema.digest()
    changed = Schema.from_dict({**schema.to_dict(), "rows": 1999})
    assert changed.digest() != schema.digest()


def test_cli_infer_then_validate(tmp_path) -> None:
    runner = CliRunner()
    out = tmp_path / "b.yaml"
    result = runner.invoke(main, ["schema", "infer", str(DATA / "benefits.csv"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["schema", "validate", str(out), str(DATA / "benefits.csv")])
    assert result.exit_code == 0 and "matches" in result.output


def test_cli_validate_lists_violations_and_fails(tmp_path) -> None:
    path = _csv(tmp_path / "t.csv", ["age"], [["30"], ["300"], ["x"]])
    spec = tmp_path / "s.yaml"
    spec.write_text("name: t\ncolumns:\n- {name: age, type: int, min: 0, max: 100}\n")
    result = CliRunner().invoke(main, ["schema", "validate", str(spec), str(path)])
    assert result.exit_code == 1
    assert f"{path}: row 2, column 'age': value 300 is outside the range [0, 100]" in result.output
    assert f"{path}: row 3, column 'age': 'x' is not a number" in result.output


_TEXT = st.text(alphabet="abcdefgh xyz_", min_size=1, max_size=6).map(str.strip).filter(bool)


@st.composite
def _table(draw) -> dict[str, list[str]]:
    """A random CSV table: integer, real, yes/no and text columns (some cells maybe empty)."""
    rows = draw(st.integers(1, 40))
    table: dict[str, list[str]] = {}
    for j in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["int", "fixed", "bool", "category"]))
        if kind == "int":
            cells = [str(v) for v in draw(st.lists(st.integers(-10**6, 10**6), min_size=rows,
                                                   max_size=rows))]
        elif kind == "fixed":
            cells = [repr(v) for v in draw(st.lists(st.floats(-1e4, 1e4).map(lambda x: round(
                x, 3)), min_size=rows, max_size=rows))]
            cells[0] = "0.5"  # at least one value that is not whole
        elif kind == "bool":
            cells = draw(st.lists(st.sampled_from(["yes", "no"]), min_size=rows, max_size=rows))
        else:
            cells = draw(st.lists(_TEXT, min_size=rows, max_size=rows))
        table[f"c{j}_{kind}"] = cells
    return table


@settings(max_examples=40, deadline=None)
@given(_table())
def test_an_inferred_schema_accepts_its_own_table_and_reads_it_back(tmp_path_factory,
                                                                  table) -> None:
    names = list(table)
    rows = list(zip(*table.values(), strict=True))
    path = _csv(tmp_path_factory.mktemp("t") / "t.csv", names, [list(r) for r in rows])
    drafted, _ = infer_schema(path)
    assert drafted.validate(path) == []
    values = drafted.read_csv(path)
    for name, cells in table.items():
        col = drafted.column(name)
        got = values[name]
        if col.kind in ("int", "fixed"):
            assert np.allclose(got.astype(float), [float(c) for c in cells])
            assert col.lo <= min(float(c) for c in cells) and col.hi >= max(float(c)
                                                                            for c in cells)
        elif col.kind == "bool":
            assert got.tolist() == [c == col.true_text for c in cells]
        else:
            assert got.tolist() == cells
