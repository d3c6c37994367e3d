"""A script's budget: runaway loops, huge lists and cancellation stop at a step, named."""

from __future__ import annotations

import threading
import time

import pytest

from enigma.lang.budget import Budget, ScriptLimitError
from enigma.lang.checker import check
from enigma.lang.plain import dry_run
from enigma.lang.schema import Schema

SCHEMA = Schema.from_dict({"name": "toy", "rows": 50, "columns": [
    {"name": "a", "type": "int", "min": 0, "max": 100}]})

NESTED = """\
total = 0
for i in range(100000):
    for j in range(100000):
        total = total + 1
reveal(sum(data.a) + total, "n")
"""


def _run(source: str, budget: Budget | None = None) -> int:
    return dry_run(check(source, SCHEMA), SCHEMA, budget=budget).steps


def test_nested_loops_stop_at_the_step_budget_on_the_line_that_runs() -> None:
    t0 = time.perf_counter()
    with pytest.raises(ScriptLimitError, match="budget of 200,000 steps") as err:
        _run(NESTED, Budget(steps=200_000))
    assert err.value.limit == "steps" and err.value.line in (3, 4)
    assert time.perf_counter() - t0 < 10


def test_the_default_budget_stops_a_runaway_script_too() -> None:
    with pytest.raises(ScriptLimitError) as err:
        _run(NESTED)
    assert err.value.limit == "steps"


@pytest.mark.parametrize("source", [
    'xs = [0.0] * 10000000000\nreveal(sum(data.a), "s")\n',
    'for i in range(10**12):\n    pass\nreveal(sum(data.a), "s")\n',
])
def test_huge_public_lists_are_refused_before_they_are_allocated(source: str) -> None:
    with pytest.raises(ScriptLimitError, match="over the budget of 1,000,000") as err:
        _run(source)
    assert err.value.limit == "elements" and err.value.line == 1


def test_a_normal_script_counts_its_steps_and_runs_within_any_sane_budget() -> None:
    source = 'n = 0\nfor i in range(10):\n    n = n + i\nreveal(sum(data.a) + n, "s")\n'
    steps = _run(source)
    assert 20 <= steps <= 40
    assert _run(source, Budget(steps=steps)) == steps
    with pytest.raises(ScriptLimitError):
        _run(source, Budget(steps=steps - 1))


def test_time_limit_and_stop_flag_end_the_run_at_the_next_step() -> None:
    with pytest.raises(ScriptLimitError) as err:
        _run(NESTED, Budget(deadline=time.monotonic() + 0.3))
    assert err.value.limit == "time"
    budget = Budget()
    threading.Timer(0.3, budget.halt, args=("cancelled by the owner",)).start()
    with pytest.raises(ScriptLimitError, match="cancelled by the owner") as err:
        _run(NESTED, budget)
    assert err.value.limit == "stopped"
