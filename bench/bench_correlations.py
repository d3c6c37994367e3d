"""Correlations per operation: triples, random bits and input masks one comparison, equality,
truncation or one-hot takes from the preprocessing, counted by a `DemandCounter`.

The parties run in threads of this process on the test dealer (the counts depend on the
protocol, not on the provider): `DemandCounter` counts what the HE preprocessing would be
asked for, with the masks composed as the HE provider composes them (their products on
the engine, counted as triples). Prints one JSON line per operation and bit bound.

    ./run bench correlations [--n 2000]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from enigma.field import Field
from enigma.lang.simulation import ThreadChannel, Wires, run_threads
from enigma.mpc import comparison as cmp
from enigma.mpc.engine import Engine
from enigma.mpc.fixed import trunc_many
from enigma.prep.dealer import TrustedDealer
from enigma.prep.served import DemandCounter

F = Field()
OPS = {
    "ltz": lambda e, x, k: cmp.ltz(e, x, bits=k),
    "eqz": lambda e, x, k: cmp.eqz(e, x, bits=k),
    "trunc16": lambda e, x, k: trunc_many(e, [x], [16], bits=k)[0],
    # a 10-bin histogram's 11 edges per row: 11 comparisons, or one opening for all 11
    "ltz11": lambda e, x, k: cmp.ltz(e, x.reshape(x.size, 1).broadcast_to(x.size, len(EDGES))
                                     - F.from_ints([EDGES] * x.size), bits=k),
    "at_least11": lambda e, x, k: cmp.at_least_many(e, x, EDGES, bits=k),
}
BOUNDS = {"ltz": (10, 64), "eqz": (10, 64), "trunc16": (24, 86), "ltz11": (10, 64),
          "at_least11": (10, 64)}
"""Bit bounds measured: 86 is the widest truncation (the old default for every product)."""
EDGES = list(range(-5, 6))
"""Public thresholds of the 11-edge rows (per row: the counts depend on their number only)."""


def count(op: str, bits: int, n: int, parties: int = 3) -> dict:
    """What party 0 took for `n` operations of kind `op` on `bits`-bit inputs, per operation."""
    wires = Wires(parties)
    taken: dict[int, dict] = {}
    errors: dict[int, BaseException] = {}

    def party(i: int) -> None:
        try:
            dealer = TrustedDealer(F, i, parties, b"correlations", insecure=True, quiet=True)
            counter = DemandCounter(dealer)
            e = Engine(ThreadChannel(wires, i), counter)
            counter.bind(e)
            half = 1 << (min(bits, 64) - 2)  # int64 samples; the count depends on bits only
            xs = np.random.default_rng(1).integers(-half, half, n)
            x = e.input(0, F.from_int64(xs) if i == 0 else None, n)
            before = counter.demand()
            OPS[op](e, x, bits)
            after = counter.demand()
            taken[i] = {"triples": after.triples - before.triples,
                        "random_bits": after.bits - before.bits,
                        "input_masks": sum(after.inputs) - sum(before.inputs)}
        except BaseException as exc:
            errors[i] = exc
            wires.failed.set()

    run_threads(party, parties, errors)
    return {key: round(v / n, 2) for key, v in taken[0].items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="operations per measurement")
    args = ap.parse_args()
    for op in OPS:
        for bits in BOUNDS[op]:
            print(json.dumps({"bench": "correlations", "op": op, "bits": bits,
                              **count(op, bits, args.n)}), flush=True)


if __name__ == "__main__":
    main()
