"""The one table of library functions (`lang/library.py`) and everything that reads it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from enigma.lang.checker import check
from enigma.lang.errors import ScriptError
from enigma.lang.library import LIBRARY
from enigma.lang.mpc_library import CompiledLibrary
from enigma.lang.schema import Schema
from enigma.lang.signatures import Library

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = Schema.from_dict({"name": "t", "rows": 10, "columns": [
    {"name": "x", "type": "fixed", "min": 0.0, "max": 1.0},
    {"name": "y", "type": "fixed", "min": 0.0, "max": 1.0}]})


def _documented() -> set[str]:
    """Function names in the first column of docs/language.md's library table."""
    text = (ROOT / "docs" / "language.md").read_text()
    section = text.split("### The analytics library", 1)[1].split("\n### ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in rows for name in re.findall(r"`(\w+)(?:\(|`)", cell)}


def test_the_docs_list_exactly_the_library() -> None:
    assert _documented() == set(LIBRARY)


def test_the_analytics_page_costs_and_bounds_every_function() -> None:
    """docs/analytics.md has one row per function: its parameters, cost and bound."""
    text = (ROOT / "docs" / "analytics.md").read_text()
    section = text.split("## Every script function", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| `")]
    named = [re.findall(r"`(\w+)\(", cells[1]) for cells in rows]
    assert {n for names in named for n in names} == set(LIBRARY)
    for cells in rows:
        assert len(cells) == 8 and all(c.strip() for c in cells[1:7]), cells


def test_every_function_has_a_typing_rule_and_binds_its_parameters() -> None:
    for name, spec in LIBRARY.items():
        assert callable(getattr(Library, spec.rule, None)), name
        assert 0 < spec.required <= len(spec.params), name


def test_every_call_that_reaches_the_engine_is_compiled() -> None:
    """select and where(cond, a, b) become an oblivious choice, len is public: every
    other function of a private value runs on the engine."""
    never_a_call = {"select", "len"}
    missing = [n for n in LIBRARY if n not in never_a_call
               and not callable(getattr(CompiledLibrary, f"lib_{n}", None))]
    assert missing == []


@pytest.mark.parametrize("source, message", [
    ("reveal(ttest(data.x), 't')", "ttest() needs the argument(s) ['y']"),
    ("reveal(kmeans([data.x], 2, 3, [[0], [1]], 'first', 6), 'k')",
     "kmeans() takes at most 5 argument(s)"),
    ("reveal(mean(data.x, weights=data.y), 'm')", "mean() has no parameter 'weights'"),
])
def test_the_checker_binds_arguments_by_the_table(source: str, message: str) -> None:
    with pytest.raises(ScriptError, match=re.escape(message)):
        check(source, SCHEMA)
