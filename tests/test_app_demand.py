"""The dry run that sizes a blame-mode job's HE slice (`app/demand.py`): what it counts is
exactly what the served provider then hands out, it scales with the public sizes, and a
failing party fails it with its own error instead of hanging the others."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from enigma.app.demand import job_demand
from enigma.app.faults import SCHEMA
from enigma.app.job_facts import HE_DIGIT_BITS
from enigma.app.member import compute
from enigma.field import Field
from enigma.lang.checker import check
from enigma.lang.errors import ScriptError
from enigma.lang.plain import referenced_columns
from enigma.lang.schema import Schema
from enigma.lang.simulation import ThreadChannel, Wires
from enigma.mpc.engine import Engine
from enigma.prep.dealer import TrustedDealer
from enigma.prep.served import ServedProvider, take_slice
from enigma.sharing import tags

F = Field()
SCHEMA_ = Schema.from_dict(SCHEMA)
# sums, a variance (truncation masks) and comparisons (digit masks with their products)
SOURCE = ("reveal(sum(data.a), 'total')\nreveal(variance(data.b), 'spread')\n"
          "reveal(sum(data.a > 50), 'over')\n")


def _program(source: str) -> Any:
    script = check(source, SCHEMA_, "<s>")

    def run(e: Engine, shares: dict, point: int, rows: int, key: np.ndarray) -> Any:
        return compute(e, script, SCHEMA_, shares, point, rows, key, "<s>")

    read = list(referenced_columns(script))
    return run, read + [tags.column(c) for c in read]  # what a member reads: values, tags


def test_the_served_slice_is_used_up_exactly() -> None:
    """Every party runs the job from a slice of exactly the dry run's demand (taken from
    the dealer here, as `take_slice` takes it from HE): no request is refused, and nothing
    is left over."""
    program, columns = _program(SOURCE)
    rows, parties = 12, 3
    demand = job_demand(program, SCHEMA_, columns, rows, parties, F, digit_bits=HE_DIGIT_BITS)
    assert demand.triples > 0 and demand.bits > 0 and all(n > 0 for n in demand.inputs)
    wires, used, errors = Wires(parties), {}, {}
    # every party holds the table itself (a constant polynomial); tag key 1, so tags = values
    data = {c: F.from_int64(np.arange(rows, dtype=np.int64) % 100) for c in columns}

    def party(i: int) -> None:
        try:
            dealer = TrustedDealer(F, i, parties, b"demand test", insecure=True, quiet=True)
            served = ServedProvider(F, take_slice(dealer, demand))
            e = Engine(ThreadChannel(wires, i), served, digit_bits=HE_DIGIT_BITS)
            served.bind(e)
            program(e, dict(data), i + 1, rows, F.from_ints([0, 1]) if i == 0 else F.zeros(2))
            used[i] = (dict(served._used), list(served._inputs_used))
        except BaseException as exc:
            errors[i] = exc
            wires.failed.set()

    threads = [threading.Thread(target=party, args=(i,)) for i in range(parties)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i in range(parties):
        assert used[i] == ({"triples": demand.triples, "bits": demand.bits},
                           list(demand.inputs))


def test_the_demand_follows_the_public_sizes() -> None:
    program, columns = _program(SOURCE)
    small = job_demand(program, SCHEMA_, columns, 8, 3, F, digit_bits=HE_DIGIT_BITS)
    large = job_demand(program, SCHEMA_, columns, 16, 3, F, digit_bits=HE_DIGIT_BITS)
    pair = job_demand(program, SCHEMA_, columns, 8, 2, F, digit_bits=HE_DIGIT_BITS)
    assert large.triples > small.triples and large.bits > small.bits
    # one mask per input share, and one contribution per compared row (prep.bounded)
    assert large.inputs[0] - small.inputs[0] == 8 * len(columns) + 8
    assert len(pair.inputs) == 2 and len(small.inputs) == 3


def test_a_failing_party_fails_the_dry_run_with_its_own_error() -> None:
    program, columns = _program(SOURCE)

    def refuse_at_one(e: Engine, *args: Any) -> Any:
        if e.party == 1:
            raise ScriptError("refused here", 1, 1, "")
        return program(e, *args)

    with pytest.raises(ScriptError, match="refused here"):
        job_demand(refuse_at_one, SCHEMA_, columns, 8, 3, F, digit_bits=HE_DIGIT_BITS)
