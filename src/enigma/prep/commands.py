"""Preprocessing ahead of demand, and `enigma prep` to try it on a local quorum.

`pregenerate` is what a node runs between jobs: it fills the HE provider's
stock (the slow part, a few seconds per 16384 triples) and, given the plan a
dry run of the next program recorded, lays out its exact requests in a
`Stockpile`, so the online phase never waits for homomorphic encryption.
"""

from __future__ import annotations

import json
import time

import click

from enigma.field import Field
from enigma.mpc.engine import Engine
from enigma.mpc.runner import run_local

from .provider import HEProvider, HEProviderFactory
from .stockpile import Request, Stockpile


def pregenerate(provider: HEProvider, triples: int, bits: int = 0,
                plan: list[Request] | None = None) -> Stockpile:
    """Fill `provider` with at least `triples` triples and `bits` bits, then make `plan`.

    Every party of the quorum must call it with the same arguments at the same
    point: production is a protocol.
    """
    if triples < 0 or bits < 0:
        raise ValueError(f"cannot pre-generate a negative amount (triples={triples}, "
                         f"bits={bits})")
    provider.reserve(triples=triples, bits=bits)
    stock = Stockpile(provider)
    if plan:
        stock.make(plan)
    return stock


def _local_run(engine: Engine, triples: int, bits: int) -> dict:
    start = time.perf_counter()
    pregenerate(engine.provider, triples, bits)
    return {"seconds": time.perf_counter() - start, "produced": dict(engine.provider.produced)}


@click.group()
def prep() -> None:
    """Preprocessing by homomorphic encryption (no trusted dealer)."""


@prep.command("local")
@click.option("--parties", default=3, show_default=True, help="nodes in the local quorum")
@click.option("--triples", default=16384, show_default=True,
              help="MAC'd, sacrificed triples to pre-generate (rounded up to 16384)")
@click.option("--bits", default=0, show_default=True, help="random bits to pre-generate")
def local(parties: int, triples: int, bits: int) -> None:
    """Pre-generate on a local quorum of real processes and report the rate (JSON)."""
    if parties < 2:
        raise click.BadParameter("a quorum needs at least 2 parties", param_hint="--parties")
    results = run_local(_local_run, parties=parties, args=(triples, bits),
                        provider_factory=HEProviderFactory(), modulus=Field().p,
                        timeout=600, deadline=24 * 3600)
    seconds = max(r["seconds"] for r in results)
    made = results[0]["produced"]
    click.echo(json.dumps({"parties": parties, "triples": made["triples"], "bits": made["bits"],
                           "seconds": round(seconds, 3),
                           "triples_per_second": round(made["triples"] / seconds, 1)}))
