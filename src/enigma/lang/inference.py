"""Drafting a schema from the owner's table (`enigma schema infer`): a start to edit, not a verdict.

Why a draft never stops at a column: a real table has columns no Enigma kind describes, an
identifier (every value differs), a date, a free text with hundreds of distinct values. The
owner wants the rest described; so such a column is left out of the draft, listed under
`ignore:` (validate and share then skip it in the file), and a note says why and how to keep
it. Stopping at the first such column with "raise --max-levels" sent owners to make a
category of 10^5 ids or dates.

Ranges are public, so they are rounded outward: a draft must not publish the exact minimum
and maximum of the owner's data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import SchemaError
from .schema import Column, Schema, is_number, read_cells

BOOL_PAIRS = (("yes", "no"), ("true", "false"), ("y", "n"), ("t", "f"))
PARQUET_SUFFIXES = (".parquet", ".pq")
DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?"
                  r"|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}")
"""ISO dates and times (2021-03-04, 2021-03-04T10:30:00Z) and day/month/year or month/day/year
with slashes or dots: what spreadsheets write."""


def infer_schema(path: str | Path, name: str | None = None, max_levels: int = 60,
                 delimiter: str = ",", drop: Sequence[str] = ()) -> tuple[Schema, list[str]]:
    """Draft a schema from a CSV or Parquet file, everything private; also notes for the owner.

    Numbers become int (all values whole) or fixed with ranges rounded outward; texts that
    are all one of a yes/no-style pair become bool; other texts with at most `max_levels`
    distinct values become categories. Columns in `drop`, and columns no kind describes
    (empty, identifiers, dates, too many distinct texts), go under `ignore:` with a note.
    Columns with empty cells get `missing: refuse` and a note: the owner must decide.
    """
    header, cells = _read_table(Path(path), delimiter)
    unknown = sorted(set(drop) - set(header))
    if unknown:
        raise SchemaError(f"{path}: no column(s) {unknown} to drop; the file has {header}")
    notes: list[str] = []
    columns, ignored = [], list(drop)
    for col_name in header:
        if col_name in drop:
            continue
        texts = [t.strip() for t in cells[col_name]]
        present = [t for t in texts if t]
        column, why = _infer_column(col_name, present, max_levels)
        if column is None:
            ignored.append(col_name)
            notes.append(f"column {col_name!r} is left out of the draft (under `ignore:`): {why}")
            continue
        empty = len(texts) - len(present)
        if empty:
            notes.append(f"column {col_name!r} has {empty} empty cell(s); the draft says "
                         "`missing: refuse` -- choose `zero` or `fill` if that is what they mean")
        columns.append(column)
    if not columns:
        raise SchemaError(f"{path}: no column is left to describe ({len(ignored)} left out); "
                          "a dataset needs at least one number, boolean or category column")
    rows = len(next(iter(cells.values()), []))
    return Schema(name or Path(path).stem, tuple(columns), rows, str(path), delimiter,
                  tuple(ignored)), notes


def _read_table(path: Path, delimiter: str) -> tuple[list[str], dict[str, Sequence[str]]]:
    """Header and each column's cells as texts ("" when empty), from CSV or Parquet alike
    (Parquet's dates and times become ISO texts, as a CSV file spells them)."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return _read_parquet(path)
    header, cells, violations = read_cells(path, delimiter)
    if violations:
        hint = "" if len(header) > 1 or delimiter != "," else (
            "; if its fields are not separated by commas, give --delimiter")
        raise SchemaError(f"{path}: {violations[0]}; fix the file before inferring a "
                          f"schema{hint}")
    if len(header) == 1 and delimiter == "," and any(d in header[0] for d in ";\t|"):
        raise SchemaError(f"{path}: the header {header[0]!r} reads as one column; give "
                          "--delimiter with the file's field separator (e.g. ';')")
    return header, cells


def _read_parquet(path: Path) -> tuple[list[str], dict[str, Sequence[str]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise SchemaError(f"cannot read {path} as Parquet: {exc}") from exc
    cells: dict[str, Sequence[str]] = {}
    for name, chunked in zip(table.column_names, table.columns, strict=True):
        array = chunked.combine_chunks()
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        try:
            texts = array.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise SchemaError(f"{path}: column {name!r} has type {array.type}, which no Enigma "
                              "kind describes; drop it with --drop") from None
        cells[name] = texts.fill_null("").to_pylist()
    return list(table.column_names), cells


def _infer_column(name: str, texts: list[str], max_levels: int
                  ) -> tuple[Column | None, str]:
    """The column's draft, or None and why it is left out."""
    if not texts:
        return None, "every cell is empty"
    if all(is_number(t) for t in texts):
        nums = np.asarray(texts, dtype=np.float64)
        if not np.all(np.isfinite(nums)):
            return None, ("some values are infinite or not a number; write them as empty "
                          "cells and infer again")
        lo, hi = round_out(float(nums.min()), float(nums.max()))
        if np.all(nums == np.round(nums)):
            return Column(name, "int", lo=int(lo), hi=int(hi)), ""
        return Column(name, "fixed", lo=lo, hi=hi), ""
    distinct = sorted(set(texts))
    lowered = {t.lower() for t in distinct}
    for yes, no in BOOL_PAIRS:
        if lowered <= {yes, no}:
            spelled = {t.lower(): t for t in distinct}
            return Column(name, "bool", true_text=spelled.get(yes, yes),
                          false_text=spelled.get(no, no)), ""
    if len(distinct) <= max_levels:
        return Column(name, "category", levels=tuple(distinct)), ""
    if all(DATE.fullmatch(t) for t in distinct):
        return None, (f"it holds {len(distinct)} distinct dates, too many for a category; to "
                      "analyse it, write it in the file as a number (the year, or days since "
                      "1970-01-01) and infer again")
    if len(distinct) == len(texts):
        return None, ("every value differs, as in an identifier, which no analysis computes "
                      "on; if it is a number in disguise, write it as one")
    return None, (f"{len(distinct)} distinct texts, more than --max-levels {max_levels}; to "
                  f"keep it as a category, infer again with --max-levels {len(distinct)}")


def round_out(lo: float, hi: float) -> tuple[float, float]:
    """Widen [lo, hi] to multiples of the leading decimal digit's place: hides exact extremes."""
    m = max(abs(lo), abs(hi))
    if m == 0:
        return 0.0, 1.0
    place = max(math.floor(math.log10(m)), -6)  # finer than 2^-16 means nothing to fixed16
    step, digits = 10.0 ** place, max(0, -place)
    a = round(math.floor(lo / step) * step, digits)
    b = round(math.ceil(hi / step) * step, digits)
    return (a - step if a > lo else a), (b + step if b < hi else b)  # float rounding's last word
