"""Errors of the language layer, shaped for the person who has to fix the script or the schema.

A refusal always carries a place (file, line, column for scripts; file, row,
column name for data) and two texts: a one-line message, and an explanation in
plain language of why Enigma refuses and what to do instead. The one-line form
`file:line:col: message` is what editors and CI parsers understand.
"""

from __future__ import annotations

from dataclasses import dataclass


class SchemaError(ValueError):
    """A schema file that cannot be used as written; the message names the file and the key."""


class ScriptError(Exception):
    """A script the checker refuses: a leak of a private value, or a construct outside the language.

    `line` is 1-based and `col` 1-based (Python's `ast` counts columns from 0;
    we add one so the position matches what editors show).
    """

    def __init__(self, message: str, line: int, col: int, explanation: str = "",
                 filename: str = "<script>") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col
        self.explanation = explanation
        self.filename = filename

    def located(self) -> str:
        """The `file:line:col: message` line."""
        return f"{self.filename}:{self.line}:{self.col}: {self.message}"

    def __str__(self) -> str:
        if not self.explanation:
            return self.located()
        return f"{self.located()}\n    {self.explanation}"


@dataclass(frozen=True)
class Violation:
    """One cell of a CSV file that the schema refuses (row 1-based, header excluded; 0 = header)."""

    row: int
    column: str
    message: str

    def __str__(self) -> str:
        where = "header" if self.row == 0 else f"row {self.row}"
        return f"{where}, column {self.column!r}: {self.message}"


class DataError(ValueError):
    """A table that does not match its schema; carries every violation found."""

    def __init__(self, source: str, violations: list[Violation]) -> None:
        shown = "\n".join(f"  {v}" for v in violations[:20])
        more = f"\n  ... and {len(violations) - 20} more" if len(violations) > 20 else ""
        super().__init__(f"{source}: {len(violations)} cell(s) do not match the schema "
                         f"(run `enigma schema validate` for the full list):\n{shown}{more}")
        self.violations = violations
