"""Schemas: the public description of a private table, and the only thing an analyst sees.

A schema names each column, its kind (int, fixed, bool, category), its label
(private by default: the values never leave the shares; public: the nodes may
see them), its range or levels, and what an empty cell means. The ranges are
public, so `inference.infer_schema` rounds them outward: a draft must not publish the
exact minimum and maximum of the owner's data.

The checker types scripts from a schema; the owner's client validates and
encodes a CSV file with it, every column through its layer-1 encoding.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from enigma.field.encoding import (
    BoolEncoding,
    CategoryEncoding,
    Encoding,
    EncodingError,
    FixedEncoding,
    IntEncoding,
)

from .errors import DataError, SchemaError, Violation

KINDS = ("int", "fixed", "bool", "category")
MISSING = ("refuse", "zero", "fill")
DEFAULT_FRAC_BITS = 16
_BLOCK = 4096
"""Cells checked per encoder call when collecting violations: bounds the rework per bad cell."""

_COLUMN_KEYS = {"name", "type", "label", "min", "max", "frac_bits", "levels", "true_text",
                "false_text", "missing", "fill"}
_SCHEMA_KEYS = {"name", "rows", "missing", "delimiter", "ignore", "columns"}


@dataclass(frozen=True)
class Column:
    """One column: its kind, label, public range or levels, and its missing-value rule."""

    name: str
    kind: str
    private: bool = True
    lo: float | None = None
    hi: float | None = None
    frac_bits: int = DEFAULT_FRAC_BITS
    levels: tuple[str, ...] = ()
    true_text: str = "true"
    false_text: str = "false"
    missing: str = "refuse"
    fill: str | None = None
    """The text an empty cell is read as, when `missing` is zero or fill."""

    @property
    def encoding(self) -> Encoding:
        """The layer-1 encoding of this column's values."""
        if self.kind == "int":
            kw = {k: int(v) for k, v in (("lo", self.lo), ("hi", self.hi)) if v is not None}
            return IntEncoding(**kw)
        if self.kind == "fixed":
            kw = {k: float(v) for k, v in (("lo", self.lo), ("hi", self.hi)) if v is not None}
            return FixedEncoding(self.frac_bits, **kw)
        if self.kind == "bool":
            return BoolEncoding()
        return CategoryEncoding(self.levels)

    def parse(self, texts: Sequence[str]) -> tuple[np.ndarray, list[Violation]]:
        """Read the cells of this column into values its encoding accepts, with every violation.

        Rows of the returned violations count from 1. Cells that are refused are
        replaced in the returned array by a valid placeholder, so callers must
        not use the values when the list is not empty.
        """
        arr = np.strings.strip(np.asarray(texts, dtype=str))
        violations: list[Violation] = []
        empty = arr == ""
        if empty.any():
            if self.missing == "refuse":
                violations += [Violation(int(i) + 1, self.name,
                                         "empty cell, and the schema says `missing: refuse` "
                                         "(set `missing: zero` or `missing: fill` to accept it)")
                               for i in np.flatnonzero(empty)]
                arr = np.where(empty, self._placeholder(), arr)
            else:
                arr = np.where(empty, str(self.fill), arr)
        values, bad = self._convert(arr)
        violations += [Violation(int(i) + 1, self.name, f"{str(arr[i])!r} is {self._expected()}")
                       for i in np.flatnonzero(bad & ~empty)]
        violations += self._encoding_violations(values, bad | (empty & (self.missing == "refuse")))
        violations.sort(key=lambda v: v.row)
        if self.kind == "int" and values.dtype.kind == "f" and not violations:
            values = values.astype(np.int64)  # "60000.0" is a whole number: give it as one
        return values, violations

    def _expected(self) -> str:
        if self.kind in ("int", "fixed"):
            return "not a number"
        return f"neither {self.true_text!r} nor {self.false_text!r}"

    def _placeholder(self) -> str:
        if self.kind == "category":
            return self.levels[0]
        if self.kind == "bool":
            return self.false_text
        return str(self.lo if self.lo is not None else 0)

    def _convert(self, arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Texts to numbers/booleans/levels; the mask marks texts that are not even of the kind."""
        bad = np.zeros(arr.shape, dtype=bool)
        if self.kind == "category":
            return arr.astype(object), bad
        if self.kind == "bool":
            yes, no = arr == self.true_text, arr == self.false_text
            bad = ~(yes | no)
            return yes, bad
        for dtype in ((np.int64,) if self.kind == "int" else ()) + (np.float64,):
            try:
                return arr.astype(dtype), bad
            except (ValueError, OverflowError):
                continue
        bad = np.fromiter((not is_number(t) for t in arr), dtype=bool, count=arr.size)
        return np.where(bad, self._placeholder(), arr).astype(np.float64), bad

    def _encoding_violations(self, values: np.ndarray, skip: np.ndarray) -> list[Violation]:
        """Every cell the encoding refuses, in the encoding's own words plus row and column.

        The encoder stops at its first bad value (and checks in phases: an
        earlier cell may fail a later phase), so after each refusal we replace
        the refused cell by a valid placeholder and run the block again. Blocks
        of _BLOCK cells keep the cost linear in the rows plus _BLOCK per violation.
        """
        enc = self.encoding
        found: list[Violation] = []
        values = values.copy()
        good = self._convert(np.asarray([self._placeholder()]))[0][0]
        values[skip] = good
        for start in range(0, values.size, _BLOCK):
            block = values[start:start + _BLOCK]
            while True:
                try:
                    enc.to_integers(block)
                    break
                except EncodingError as exc:
                    if exc.index is None:
                        return [Violation(0, self.name, str(exc))]
                    text = str(exc).replace(f" at index {exc.index}", "")
                    found.append(Violation(start + exc.index + 1, self.name, text))
                    block[exc.index] = good
        return found

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.kind,
                               "label": "private" if self.private else "public"}
        if self.kind in ("int", "fixed"):
            if self.lo is not None:
                out["min"] = self.lo
            if self.hi is not None:
                out["max"] = self.hi
        if self.kind == "fixed":
            out["frac_bits"] = self.frac_bits
        if self.kind == "category":
            out["levels"] = list(self.levels)
        if self.kind == "bool":
            out["true_text"], out["false_text"] = self.true_text, self.false_text
        out["missing"] = self.missing
        if self.missing == "fill":
            out["fill"] = self.fill
        return out


@dataclass(frozen=True)
class Schema:
    """A dataset's name, its public row count if known, and its columns in file order.

    `delimiter` is the CSV file's field separator, and `ignored` names columns of the file
    that are not part of the dataset (an identifier, a date): like a bool column's
    `true_text`, both say how the owner's file is spelled, so that `schema infer` writes
    them once and every reader of the file (validate, share) follows without a flag. An
    ignored column is never read, encoded or shared; only its name is in the schema.
    """

    name: str
    columns: tuple[Column, ...]
    rows: int | None = None
    source: str = field(default="<schema>", compare=False)
    delimiter: str = ","
    ignored: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise SchemaError(f"{self.source}: column(s) {dup} are described twice")
        both = sorted(set(names) & set(self.ignored))
        if both:
            raise SchemaError(f"{self.source}: column(s) {both} are both described and under "
                              "`ignore`; keep each in one place")
        if len(self.delimiter) != 1 or self.delimiter in "\"\r\n":
            raise SchemaError(f"{self.source}: `delimiter` must be one character other than a "
                              f"quote or a line break, got {self.delimiter!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """The column called `name`; the error suggests the closest names."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(self.unknown_column(name))

    def unknown_column(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names, n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return f"no column {name!r} in schema {self.name!r}{hint}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.rows is not None:
            out["rows"] = self.rows
        if self.delimiter != ",":
            out["delimiter"] = self.delimiter
        if self.ignored:
            out["ignore"] = list(self.ignored)
        out["columns"] = [c.to_dict() for c in self.columns]
        return out

    def dumps(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form: the schema hash the ledger records."""
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        path = Path(path)
        try:
            doc = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise SchemaError(f"cannot read schema {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise SchemaError(f"{path}: not valid YAML: {exc}") from exc
        return cls.from_dict(doc, str(path))

    @classmethod
    def from_dict(cls, doc: Any, source: str = "<schema>") -> Schema:
        if not isinstance(doc, dict):
            raise SchemaError(f"{source}: a schema is a mapping with `name` and `columns`")
        _no_unknown_keys(doc, _SCHEMA_KEYS, source)
        cols = doc.get("columns")
        if not isinstance(cols, list) or not cols:
            raise SchemaError(f"{source}: `columns` must be a non-empty list of column mappings")
        default_missing = doc.get("missing", "refuse")
        columns = tuple(_column(c, i, default_missing, source) for i, c in enumerate(cols))
        rows = doc.get("rows")
        if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or rows < 0):
            raise SchemaError(f"{source}: `rows` must be a non-negative integer, got {rows!r}")
        ignored = doc.get("ignore", [])
        if not isinstance(ignored, list) or not all(isinstance(c, str) for c in ignored):
            raise SchemaError(f"{source}: `ignore` must be a list of column names, got "
                              f"{ignored!r}")
        delimiter = doc.get("delimiter", ",")
        if not isinstance(delimiter, str):
            raise SchemaError(f"{source}: `delimiter` must be a quoted character, got "
                              f"{delimiter!r}")
        return cls(str(doc.get("name", Path(source).stem)), columns, rows, source, delimiter,
                   tuple(ignored))

    def validate(self, path: str | Path) -> list[Violation]:
        """Every cell of the CSV file that this schema refuses (empty list: the file is valid)."""
        return self._read(path)[1]

    def read_csv(self, path: str | Path) -> dict[str, np.ndarray]:
        """The file's columns as values ready for `column.encoding`; refuses any violation."""
        values, violations = self._read(path)
        if violations:
            raise DataError(str(path), violations)
        return values

    def _read(self, path: str | Path) -> tuple[dict[str, np.ndarray], list[Violation]]:
        header, cells, violations = read_cells(path, self.delimiter)
        for name in header:
            if name not in self.names and name not in self.ignored:
                violations.append(Violation(0, name, "column is not in the schema; describe it "
                                                     "in the schema or remove it from the file"))
        values: dict[str, np.ndarray] = {}
        for col in self.columns:
            if col.name not in header:
                violations.append(Violation(0, col.name, "column of the schema is missing "
                                                         "from the file's header"))
                continue
            values[col.name], found = col.parse(cells[col.name])
            violations += found
        if self.rows is not None and header and len(next(iter(cells.values()))) != self.rows:
            n = len(next(iter(cells.values())))
            violations.append(Violation(0, "*", f"the file has {n} rows; the schema says "
                                                f"rows: {self.rows}"))
        violations.sort(key=lambda v: (v.row, header.index(v.column) if v.column in header else 0))
        return values, violations


def _no_unknown_keys(doc: dict, known: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in doc if k not in known)
    if unknown:
        raise SchemaError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")


def _column(doc: Any, i: int, default_missing: str, source: str) -> Column:
    if not isinstance(doc, dict) or "name" not in doc:
        raise SchemaError(f"{source}: column #{i + 1} must be a mapping with at least `name` "
                          "and `type`")
    name = str(doc["name"])
    where = f"{source}: column {name!r}"
    _no_unknown_keys(doc, _COLUMN_KEYS, where)
    kind = doc.get("type")
    if kind not in KINDS:
        raise SchemaError(f"{where}: `type` must be one of {list(KINDS)}, got {kind!r}")
    label = doc.get("label", "private")
    if label not in ("private", "public"):
        raise SchemaError(f"{where}: `label` must be private or public, got {label!r}")
    missing = doc.get("missing", default_missing)
    if missing not in MISSING:
        raise SchemaError(f"{where}: `missing` must be one of {list(MISSING)}, got {missing!r}")
    lo, hi = doc.get("min"), doc.get("max")
    for key, v in (("min", lo), ("max", hi)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise SchemaError(f"{where}: `{key}` must be a number, got {v!r}")
    frac_bits = doc.get("frac_bits", DEFAULT_FRAC_BITS)
    levels = tuple(_level(v, where) for v in doc.get("levels", ()))
    true_text = _text(doc.get("true_text", "true"), where, "true_text")
    false_text = _text(doc.get("false_text", "false"), where, "false_text")
    fill: str | None = None
    if missing == "zero":
        if kind == "category":
            raise SchemaError(f"{where}: `missing: zero` is for numbers and booleans; for a "
                              "category use `missing: fill` with `fill:` one of its levels")
        fill = false_text if kind == "bool" else "0"
    elif missing == "fill":
        if "fill" not in doc:
            raise SchemaError(f"{where}: `missing: fill` needs a `fill:` value")
        raw = doc["fill"]
        fill = (true_text if raw else false_text) if isinstance(raw, bool) else str(raw)
    try:
        col = Column(name, kind, label == "private", lo, hi, int(frac_bits), levels, true_text,
                     false_text, missing, fill)
        col.encoding  # noqa: B018 -- builds the encoding now so that a bad range fails at load
    except ValueError as exc:
        raise SchemaError(f"{where}: {exc}") from exc
    if kind == "category" and not levels:
        raise SchemaError(f"{where}: a category needs `levels`")
    if fill is not None:
        _, bad = col.parse([fill])
        if bad:
            raise SchemaError(f"{where}: the fill value {fill!r} is not valid for the column "
                              f"({bad[0].message})")
    return col


def _level(v: Any, where: str) -> str:
    if isinstance(v, bool):
        raise SchemaError(f"{where}: level {v!r} was read by YAML as a boolean; quote it "
                          "(write 'yes' or 'no' in quotes)")
    return str(v)


def _text(v: Any, where: str, key: str) -> str:
    if not isinstance(v, str):
        raise SchemaError(f"{where}: `{key}` must be a quoted text, got {v!r} (YAML reads "
                          "unquoted yes/no/true/false as booleans)")
    return v


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_cells(path: str | Path, delimiter: str = ","
               ) -> tuple[list[str], dict[str, Sequence[str]], list[Violation]]:
    """The header and each column's cells of a CSV file; short or long rows become
    violations."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:  # -sig: spreadsheets' BOM
            reader = csv.reader(fh, delimiter=delimiter)
            header = next(reader, [])
            rows = list(reader)
    except OSError as exc:
        raise SchemaError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SchemaError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 "
                          "CSV") from exc
    while rows and not rows[-1]:
        rows.pop()  # blank lines at the end of the file are not rows
    width = len(header)
    ragged = [i for i, r in enumerate(rows) if len(r) != width]
    violations = [Violation(i + 1, "*", f"the row has {len(rows[i])} cells, the header {width}")
                  for i in ragged]
    seen: set[str] = set()
    for name in header:
        if name in seen:
            violations.append(Violation(0, name, "the header names this column twice"))
        seen.add(name)
    for i in ragged:
        rows[i] = rows[i][:width] + [""] * (width - len(rows[i]))
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    cells: dict[str, Sequence[str]] = {}
    for name, column in zip(header, columns, strict=True):
        cells.setdefault(name, column)  # a repeated name is reported above; keep the first
    return header, cells, violations
