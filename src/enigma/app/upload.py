"""From a table (CSV, Parquet, DataFrame) to encoded, Shamir-shared chunks of rows.

The owner's pipeline before anything leaves the machine: read the rows in blocks,
check every value against the schema, encode it into the field, cut the rows into
chunks of `chunk_rows`, and share each chunk t-of-n. Each step is vectorized over whole
columns; measured on 10^6 rows x 5 columns (bench/bench_share.py, docs/node.md).

Why pyarrow's CSV reader: it parses in C++ with several threads at hundreds of MB/s,
streams in blocks (a table larger than memory never has to be loaded), converts each
column straight to its type, and gives Parquet with the same API. `np.loadtxt` is about
30x slower here, and Python's `csv` module about 10x. pyarrow's errors name the column
but not the row, so on a parse error the file is scanned again with the `csv` module
(only then, and only up to the bad line) to say which line and column are wrong.

The schema is `enigma.lang.schema.Schema` (the analyst's checker reads the same file):
each column gives its kind, range or levels, missing-value rule and field encoding. The
fast path here applies the same rules as `Schema.validate` (which reads cell by cell
with the `csv` module, too slow for 10^6 rows); on a malformed file it defers to
`Schema.validate` for the row and column to report.
"""

from __future__ import annotations

import csv
import math
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from enigma.field import PRG, EncodingError, Field
from enigma.lang.errors import SchemaError
from enigma.lang.schema import Column, Schema
from enigma.sharing import shamir, tags


class UploadError(ValueError):
    """Input that cannot be shared as it is; says where (file, row, line, column) and why."""

    def __init__(self, message: str, row: int | None = None, column: str | None = None) -> None:
        super().__init__(message)
        self.row = row
        self.column = column


@dataclass
class Timings:
    """Seconds spent in each phase of an upload (what the benchmark reports)."""

    parse: float = 0.0
    encode: float = 0.0
    share: float = 0.0
    tags: float = 0.0
    """Of `share`: making and sharing the tags (authenticated inputs, `sharing.tags`)."""
    send: float = 0.0
    ledger: float = 0.0
    dht: float = 0.0
    seal: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        out = {k: round(v, 4) for k, v in vars(self).items() if isinstance(v, float)}
        out.update({k: round(v, 4) for k, v in self.extra.items()})
        return out


@dataclass(frozen=True)
class EncodedChunk:
    """Rows first_row .. first_row + rows - 1 of the table, encoded: column -> (rows, 2)."""

    index: int
    first_row: int
    rows: int
    columns: dict[str, np.ndarray]


# -- reading ------------------------------------------------------------------------------------

def _arrow_type(column: Column) -> pa.DataType:
    """Reals parse in C++; booleans and categories come as dictionaries of their texts."""
    if column.kind == "int":
        return pa.string()  # "60000.0" is an integer too; see `_integer_column`
    if column.kind == "fixed":
        return pa.float64()
    return pa.dictionary(pa.int32(), pa.string())


def _csv_header(path: Path, delimiter: str) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # as the schema reads it
            return next(csv.reader(f, delimiter=delimiter), [])
    except OSError as exc:
        raise UploadError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise _not_utf8(path) from None


def _not_utf8(path: Path) -> UploadError:
    """An UploadError naming the first row of `path` that is not UTF-8 text (the header is
    row 0), read in blocks so a large file costs no more memory than one block."""
    row, tail = 0, b""
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            lines = (tail + block).split(b"\n")
            tail = lines.pop()
            for line in lines:
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return UploadError(f"{path}: row {row} is not UTF-8 text (byte "
                                       f"{line[exc.start]:#04x} at position {exc.start + 1} of "
                                       "the line); save the file as UTF-8", row)
                row += 1
    return UploadError(f"{path}: row {row} is not UTF-8 text; save the file as UTF-8", row)


def _check_header(where: str, header: Sequence[str], schema: Schema) -> None:
    twice = sorted(n for n, times in Counter(header).items() if times > 1)
    if twice:
        raise UploadError(f"{where}: the header names column {twice[0]!r} more than once; "
                          "give every column one name", row=0, column=twice[0])
    missing = [n for n in schema.names if n not in header]
    extra = [n for n in header if n not in schema.names and n not in schema.ignored]
    if missing or extra:
        raise UploadError(
            f"{where}: the columns do not match the schema: missing {missing}, not in the "
            f"schema {extra}; rename the columns, describe them in the schema, or list "
            "those to leave out under its `ignore:`",
            row=0, column=(missing or extra)[0])


def _diagnose_csv(path: Path, schema: Schema, exc: Exception) -> UploadError:
    """The first cell that `Schema.validate` refuses, for a file pyarrow could not read."""
    try:
        violations = schema.validate(path)
    except SchemaError as err:
        if isinstance(err.__cause__, UnicodeDecodeError):
            return _not_utf8(path)
        raise
    if not violations:
        return UploadError(f"{path}: {exc}")
    first = violations[0]
    more = f" ({len(violations) - 1} more: run `enigma schema validate`)" if len(
        violations) > 1 else ""
    return UploadError(f"{path}: {first}{more}", first.row,
                       None if first.column == "*" else first.column)


def _batches(source: Any, schema: Schema, chunk_rows: int
             ) -> tuple[str, Iterator[pa.RecordBatch], Path | None]:
    """Record batches of the schema's columns from a path or an in-memory table."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise UploadError(f"{path}: no such file")
        if path.suffix.lower() in (".parquet", ".pq"):
            pf = pq.ParquetFile(path)
            _check_header(str(path), pf.schema_arrow.names, schema)
            return str(path), pf.iter_batches(batch_size=chunk_rows,
                                              columns=list(schema.names)), None
        _check_header(str(path), _csv_header(path, schema.delimiter), schema)
        convert = pacsv.ConvertOptions(
            column_types={c.name: _arrow_type(c) for c in schema.columns},
            include_columns=list(schema.names), null_values=[""], strings_can_be_null=True,
            quoted_strings_can_be_null=False)
        try:
            reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=8 << 20),
                                    parse_options=pacsv.ParseOptions(delimiter=schema.delimiter),
                                    convert_options=convert)
        except pa.ArrowInvalid as exc:
            raise _diagnose_csv(path, schema, exc) from exc
        return str(path), iter(reader), path
    try:
        table = source if isinstance(source, pa.Table) else pa.table(source)
    except (TypeError, ValueError, pa.ArrowException) as exc:
        raise UploadError(f"cannot read a table from {type(source).__name__}: {exc}; pass a CSV "
                          "or Parquet path, a pandas DataFrame, a pyarrow Table or a dict of "
                          "arrays") from exc
    _check_header("the table", table.column_names, schema)
    return "the table", iter(table.select(list(schema.names)).to_batches(chunk_rows)), None


def _fill_missing(col: Column, array: pa.Array, where: str, first_row: int) -> pa.Array:
    """Apply the column's missing-value rule to empty cells (refuse: name the first)."""
    if not array.null_count:
        return array
    if col.missing == "refuse":
        i = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        row = first_row + i + 1
        raise UploadError(f"{where}: row {row}, column {col.name!r}: empty cell, and the schema "
                          "says `missing: refuse` (fill the cell, or set `missing: zero` or "
                          "`missing: fill`)", row, col.name)
    if pa.types.is_dictionary(array.type):
        array = array.cast(pa.string())
    if pa.types.is_string(array.type):
        return array.fill_null(str(col.fill))
    return array.fill_null(pa.scalar(float(col.fill or 0)).cast(array.type))


def _words_to_codes(col: Column, array: pa.Array, codes: dict[str, int], expected: str,
                    where: str, first_row: int) -> np.ndarray:
    """Dictionary-encoded texts to integers via a table of the few distinct words."""
    if not pa.types.is_dictionary(array.type):
        array = array.cast(pa.string()).dictionary_encode()
    words = [str(w).strip() for w in array.dictionary.to_pylist()]
    table = np.array([codes.get(w, -1) for w in words], dtype=np.int64)
    ints = table[array.indices.to_numpy(zero_copy_only=False)]
    bad = np.flatnonzero(ints < 0)
    if bad.size:
        i = int(bad[0])
        row = first_row + i + 1
        raise UploadError(f"{where}: row {row}, column {col.name!r}: {array[i].as_py()!r} is "
                          f"{expected}; fix the value or the schema", row, col.name)
    return ints


def _integer_column(col: Column, texts: pa.Array, where: str, first_row: int) -> pa.Array:
    """Integer cells as int64, or as float64 when some are written like "60000.0".

    The schema's reference reader accepts any number with an integral value in an int
    column; the encoding then refuses fractional ones. Casting the texts in C++ keeps
    that rule at full speed; only a cell that is no number at all needs a closer look.
    """
    texts = pc.utf8_trim_whitespace(texts)
    try:
        return texts.cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        return texts.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        _, violations = col.parse(texts.to_pylist())
        first = violations[0]
        row = first_row + first.row
        raise UploadError(f"{where}: row {row}, column {col.name!r}: {first.message}", row,
                          col.name) from None


def _one_text_type(array: pa.Array) -> pa.Array:
    """Texts as `string`: pandas 3's `str` columns reach Arrow as `large_string` (others as
    `string_view`), and the rules below (fill a missing cell with a word, parse integers)
    must not take them for numbers."""
    if pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type):
        return array.cast(pa.string())
    return array


def _to_integers(col: Column, array: pa.Array, where: str, first_row: int) -> np.ndarray:
    """The column as the int64 integers of its encoding; UploadError names the row if not."""
    array = _fill_missing(col, _one_text_type(array), where, first_row)
    if col.kind == "category":
        return _words_to_codes(col, array, {v: k for k, v in enumerate(col.levels)},
                               f"not one of the levels {list(col.levels)}", where, first_row)
    if col.kind == "bool" and pa.types.is_boolean(array.type):  # a DataFrame's own booleans
        return array.to_numpy(zero_copy_only=False).astype(np.int64)
    if col.kind == "bool":
        return _words_to_codes(col, array, {col.false_text: 0, col.true_text: 1},
                               f"neither {col.true_text!r} nor {col.false_text!r}", where,
                               first_row)
    try:
        if col.kind == "int" and pa.types.is_string(array.type):
            array = _integer_column(col, array, where, first_row)
        return col.encoding.to_integers(array.to_numpy(zero_copy_only=False))
    except EncodingError as exc:
        row = first_row + (exc.index or 0) + 1
        why = str(exc).replace(f" at index {exc.index}", "")
        raise UploadError(f"{where}: row {row}, column {col.name!r}: {why}; fix the value or "
                          "widen the schema's range", row, col.name) from exc


def read_chunks(source: Any, schema: Schema, field: Field, chunk_rows: int = 1 << 16,
                timings: Timings | None = None) -> Iterator[EncodedChunk]:
    """Validated, encoded chunks of `chunk_rows` rows (the last may be shorter).

    Rows are numbered from 1 (the header excluded), as `enigma schema validate` does. A
    schema that states `rows:` must match the table's row count.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    timings = timings or Timings()
    where, batches, csv_path = _batches(source, schema, chunk_rows)
    pending: dict[str, list[np.ndarray]] = {c.name: [] for c in schema.columns}
    held, first_row, index = 0, 0, 0
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(batches, None)
        except pa.ArrowInvalid as exc:
            if csv_path is not None:
                raise _diagnose_csv(csv_path, schema, exc) from exc
            raise UploadError(f"{where}: {exc}") from exc
        timings.parse += time.perf_counter() - t0
        if batch is not None:
            t0 = time.perf_counter()
            for col in schema.columns:
                pending[col.name].append(_to_integers(
                    col, batch.column(batch.schema.get_field_index(col.name)), where,
                    first_row + held))
            held += batch.num_rows
            timings.encode += time.perf_counter() - t0
        while held >= chunk_rows or (batch is None and held > 0):
            t0 = time.perf_counter()
            take = min(held, chunk_rows)
            columns = {}
            for name, parts in pending.items():
                joined = np.concatenate(parts) if len(parts) > 1 else parts[0]
                columns[name] = field.from_int64(joined[:take])
                pending[name] = [joined[take:]] if take < held else []
            held -= take
            timings.encode += time.perf_counter() - t0
            yield EncodedChunk(index, first_row, take, columns)
            first_row += take
            index += 1
        if batch is None:
            if schema.rows is not None and first_row != schema.rows:
                raise UploadError(f"{where} has {first_row} rows; the schema says rows: "
                                  f"{schema.rows}", row=first_row)
            return


def share_chunk(field: Field, chunk: EncodedChunk, t: int, n: int, key: np.ndarray,
                prg: PRG | None = None, timings: Timings | None = None
                ) -> list[dict[str, np.ndarray]]:
    """Shamir shares of every column of a chunk and of its tags under the owner's `key`
    (`sharing.tags`, independent randomness); element j-1 goes to the holder at point j."""
    prg = prg or PRG()
    per_column = {}
    for name, x in chunk.columns.items():
        per_column[name] = shamir.share(field, x, t, n, prg)
        t0 = time.perf_counter()
        per_column[tags.column(name)] = shamir.share(field, tags.tag(field, x, key), t, n, prg)
        if timings is not None:
            timings.tags += time.perf_counter() - t0
    return [{name: s[j] for name, s in per_column.items()} for j in range(n)]


def decode_columns(field: Field, schema: Schema,
                   columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Reconstructed field columns back to values, as the schema's encodings say."""
    return {c.name: c.encoding.decode(field, columns[c.name]) for c in schema.columns}


def shortest_decimals(values: np.ndarray, frac_bits: int) -> np.ndarray:
    """Each fixed-point value k / 2^f as the decimal with the fewest places that encodes
    back to k: -0.1 for -6554 / 2^16 (-0.100006...), which is what the owner wrote.

    ceil(f log10 2) places always suffice (a step of 10^-d <= 2^-f), so one numpy pass per
    place count from 0 up to that settles every value.
    """
    scale = float(1 << frac_bits)
    k = np.rint(values * scale)
    out = np.round(values, math.ceil(frac_bits * math.log10(2)))
    open_ = np.ones(values.shape, dtype=bool)
    for places in range(math.ceil(frac_bits * math.log10(2))):
        candidate = np.round(values, places)
        fits = open_ & (np.rint(candidate * scale) == k)
        out[fits] = candidate[fits]
        open_ &= ~fits
    return out


def collected_table(schema: Schema, values: Mapping[str, np.ndarray], *,
                    words: bool = False) -> pa.Table:
    """Decoded columns as a typed table at the schema's precision.

    Why rounded: a fixed-point value is k / 2^f, whose exact binary expansion prints as
    `30.300003051757812` for the owner's `30.3`; as the shortest decimal with the same
    encoding (`shortest_decimals`) it prints as written and is shared back to the same k.
    Integers stay integers, categories are dictionaries over the schema's levels (pandas
    categoricals with every level, in the schema's order), booleans are booleans, or the
    file's own words with `words` (so that the schema reads a written CSV back).
    """
    arrays = {}
    for col in schema.columns:
        v = np.asarray(values[col.name])
        if col.kind == "fixed":
            arrays[col.name] = pa.array(shortest_decimals(v.astype(np.float64), col.frac_bits))
        elif col.kind == "int":
            arrays[col.name] = pa.array(v.astype(np.int64))
        elif col.kind == "bool" and words:
            arrays[col.name] = pa.array(np.where(v, col.true_text, col.false_text))
        elif col.kind == "bool":
            arrays[col.name] = pa.array(v.astype(bool))
        else:
            levels = np.asarray(col.levels)
            order = np.argsort(levels)
            codes = order[np.searchsorted(levels[order], v.astype(levels.dtype))]
            arrays[col.name] = pa.DictionaryArray.from_arrays(
                pa.array(codes.astype(np.int32)), pa.array(col.levels))
    return pa.table(arrays)


def write_collected(schema: Schema, values: Mapping[str, np.ndarray], path: Path) -> None:
    """Write decoded columns as a CSV the schema reads back: each column at its precision
    (`collected_table`), texts quoted only where one of the schema's words needs quotes
    (every text written is a column name, a level or a boolean's word: the schema decides)."""
    words = [*schema.names] + [w for c in schema.columns
                               for w in (c.levels if c.kind == "category" else
                                         (c.true_text, c.false_text) if c.kind == "bool"
                                         else ())]
    quoting = "needed" if any(ch in w for w in words for ch in ',"\r\n') else "none"
    pacsv.write_csv(collected_table(schema, values, words=True), path,
                    pacsv.WriteOptions(quoting_style=quoting, quoting_header=quoting))
