"""What a job will take from the preprocessing, known before it starts (blame mode on HE).

Why: a blame-mode job on the HE preprocessing takes its whole slice out of the quorum's
stock before the online phase (`prep.served`, docs/blame.md), so its members must know
the demand in advance. The engine's requests depend only on public facts: the script,
the schema, the row count, the quorum size and the engine options. The quorum never sees
a revealed value (results are sealed to the owner), and only public columns are opened.
So a dry run of the member's own program (`compute`) on synthetic values, with every
party simulated in threads of this process on the insecure test dealer (made-up data:
nothing secret passes through it), counts exactly what the real run will ask for, except
for a script whose demand depends on the values of public columns: there the real run may
ask for more, and then fails with `PreprocessingExhausted` rather than running on.

Why threads and not processes: the dry run is a few engine calls per row on the fast
dealer; starting q processes would cost more than the run itself (`lang.simulation`, the
same in-process quorum as the cost estimate's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from enigma.field import Field
from enigma.lang.plain import synthetic_table
from enigma.lang.schema import Schema
from enigma.lang.simulation import ThreadChannel, Wires, run_threads
from enigma.mpc.engine import Engine
from enigma.prep.dealer import TrustedDealer
from enigma.prep.served import Demand, DemandCounter
from enigma.sharing import tags

_DEALER_SEED = b"enigma blame demand dry run, synthetic data only"


def job_demand(program: Callable[..., Any], schema: Schema, columns: list[str], rows: int,
               parties: int, field: Field, **engine_kwargs: Any) -> Demand:
    """Run `program(engine, shares, point, rows, key_share)` for every party on synthetic
    values and return what party 0 took from the primitives (every party takes the same).

    Each simulated party holds the encoded table itself as its "Shamir share" at points
    1..q: a constant polynomial, whose Lagrange recombination is the table.
    """
    values: dict[str, np.ndarray] = {}
    data = [c for c in columns if not tags.is_tag(c)]
    for c in data:
        try:
            values.update(synthetic_table(schema, rows, [c], seed=len(values)))
        except ValueError:  # a public column without a range: its values are opened as they
            values[c] = np.zeros(rows, dtype=np.int64)  # are; any will do for the sizes
    shares = {c: field.from_int64(np.asarray(schema.column(c).encoding.to_integers(values[c]),
                                             dtype=np.int64)) for c in data}
    # the tag key is 1 below (party 0 holds all of it), so each tag is its value
    shares.update({c: shares[c.removesuffix(tags.SUFFIX)] for c in columns if tags.is_tag(c)})
    wires = Wires(parties)
    counters: dict[int, DemandCounter] = {}
    errors: dict[int, BaseException] = {}

    def party(i: int) -> None:
        try:
            dealer = TrustedDealer(field, i, parties, _DEALER_SEED, insecure=True, quiet=True)
            counter = DemandCounter(dealer)
            engine = Engine(ThreadChannel(wires, i), counter, **engine_kwargs)
            counter.bind(engine)
            counters[i] = counter
            program(engine, {c: shares[c] for c in columns}, i + 1, rows,
                    field.zeros(2) if i else field.from_ints([1, 1]))
        except BaseException as exc:  # reported below; the others stop waiting for it
            errors[i] = exc
            wires.failed.set()

    run_threads(party, parties, errors)
    demands = {c.demand() for c in counters.values()}
    if len(demands) != 1:
        raise RuntimeError("the dry run's parties took different amounts of preprocessing")
    return demands.pop()
