"""Preprocessing ahead of demand, and `enigma prep` to try it on a local quorum.

`pregenerate` is what a node runs between jobs: it fills the HE provider's
stock (the slow part, a few seconds per 16384 triples) and, given the plan a
dry run of the next program recorded, lays out its exact requests in a
`Stockpile`, so the online phase never waits for homomorphic encryption.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import click
import numpy as np

from enigma.field import Field
from enigma.files import write_atomic
from enigma.mpc.engine import Channel, Engine
from enigma.mpc.runner import run_local
from enigma.options import Renamed
from enigma.progress import Progress

from .provider import HEProvider, Stock
from .stockpile import Request, Stockpile

_MAGIC = b"ENIGMA-PREP-STOCK-1\n"


class StockFileError(ValueError):
    """A stock file that does not belong here or was damaged."""


class HEProviderFactory:
    """Makes each party's provider in its own process, on that party's mesh (for `run_local`).

    With `stock_dir`, party i resumes from `stock_dir/party-i.stock` when it exists.
    """

    needs_channel = True

    def __init__(self, reserve_triples: int = 0, stock_dir: str | None = None,
                 quorum: str = "local") -> None:
        self.reserve_triples = reserve_triples
        self.stock_dir = stock_dir
        self.quorum = quorum

    def __call__(self, field: Field, party: int, parties: int, *,
                 channel: Channel) -> HEProvider:
        stock = None
        if self.stock_dir is not None:
            path = stock_path(self.stock_dir, party)
            if path.exists():
                stock = load_stock(path, field, party, parties, self.quorum)
        provider = HEProvider(field, party, parties, channel, stock=stock)
        if self.reserve_triples:
            provider.reserve(triples=self.reserve_triples)
        return provider


def stock_path(stock_dir: str | Path, party: int) -> Path:
    return Path(stock_dir) / f"party-{party}.stock"


def save_stock(stock: Stock, path: str | Path, field: Field, party: int, parties: int,
               quorum: str) -> None:
    """Write a party's stock atomically: temporary file, fsync, rename, fsync the folder.

    Layout: magic, 4-byte header length, JSON header (field, party, parties,
    quorum, stock id, counts; `inputs`: input masks per owner party, absent in files
    from before they were kept), the arrays as little-endian uint64, and a
    SHA-256 of everything before it. The file holds alpha_i and shares: it is
    created readable and writable by its owner only.
    """
    path = Path(path)
    header = json.dumps({"p": str(field.p), "party": party, "parties": parties,
                         "quorum": quorum, "stock_id": stock.stock_id.hex(),
                         "triples": int(stock.triples[0].shape[0]),
                         "bits": int(stock.bits[0].shape[0]),
                         "inputs": [int(m[0].shape[0]) for m in stock.inputs]}).encode()
    masks = [a for owner in stock.inputs for a in owner]
    body = b"".join([_MAGIC, len(header).to_bytes(4, "little"), header,
                     np.ascontiguousarray(stock.alpha, dtype="<u8").tobytes(),
                     *(np.ascontiguousarray(a, dtype="<u8").tobytes()
                       for a in (*stock.triples, *stock.bits, *masks))])
    write_atomic(path, [body, hashlib.sha256(body).digest()])


def load_stock(path: str | Path, field: Field, party: int, parties: int, quorum: str) -> Stock:
    """Read and check a stock file written by `save_stock` for this party of this quorum."""
    path = Path(path)
    raw = path.read_bytes()
    where = f"stock file {path}"
    if len(raw) < len(_MAGIC) + 36 or not raw.startswith(_MAGIC):
        raise StockFileError(f"{where} is not an Enigma preprocessing stock; delete it to "
                             "start fresh")
    body, digest = raw[:-32], raw[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise StockFileError(f"{where} is corrupt (checksum mismatch); delete it on every "
                             "party of the quorum to start fresh")
    start = len(_MAGIC) + 4
    size = int.from_bytes(body[len(_MAGIC):start], "little")
    header = json.loads(body[start:start + size])
    expected = {"p": str(field.p), "party": party, "parties": parties, "quorum": quorum}
    for key, value in expected.items():
        if header.get(key) != value:
            raise StockFileError(f"{where} belongs to {key}={header.get(key)}, not {value}: "
                                 "it was saved by another party, quorum or field")
    words = np.frombuffer(body, dtype="<u8", offset=start + size)
    t, b, m = header["triples"], header["bits"], [int(n) for n in header.get("inputs", [])]
    if m and len(m) != parties:
        raise StockFileError(f"{where} holds input masks for {len(m)} parties, not {parties}")
    if words.size != 2 + 12 * t + 4 * b + 6 * sum(m):
        raise StockFileError(f"{where} holds {words.size} words, its header announces "
                             f"{2 + 12 * t + 4 * b + 6 * sum(m)}")
    sizes = [2] + [2 * t] * 6 + [2 * b] * 2 + [2 * n for n in m for _ in range(3)]
    arrays = np.split(words.copy(), np.cumsum(sizes))
    elements = [a.reshape(-1, 2) for a in arrays[1:-1]]
    for a in (arrays[0].reshape(1, 2), *elements):
        try:
            field.check(a)
        except ValueError as exc:
            raise StockFileError(f"{where}: {exc}") from exc
    inputs = tuple(tuple(elements[8 + 3 * o:11 + 3 * o]) for o in range(len(m)))
    return Stock(bytes.fromhex(header["stock_id"]), arrays[0].reshape(2),
                 tuple(elements[:6]), tuple(elements[6:8]), inputs)


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
@click.option("--quorum", "parties", cls=Renamed, old=("--parties",), default=3,
              show_default=True, help="Members of the local quorum.")
@click.option("--triples", default=16384, show_default=True,
              help="MAC'd, sacrificed triples to pre-generate (rounded up to 16384).")
@click.option("--bits", default=0, show_default=True, help="Random bits to pre-generate.")
def local(parties: int, triples: int, bits: int) -> None:
    """Pre-generate on a local quorum of real processes and report the rate (JSON)."""
    if parties < 2:
        raise click.BadParameter("a quorum needs at least 2 parties", param_hint="--quorum")
    with Progress("prep local") as progress:
        progress.phase(f"pre-generating {triples:,} triples and {bits:,} bits on a local "
                       f"quorum of {parties}")
        results = run_local(_local_run, parties=parties, args=(triples, bits),
                            provider_factory=HEProviderFactory(), modulus=Field().p,
                            timeout=600, deadline=24 * 3600)
    seconds = max(r["seconds"] for r in results)
    made = results[0]["produced"]
    click.echo(json.dumps({"parties": parties, "triples": made["triples"], "bits": made["bits"],
                           "seconds": round(seconds, 3),
                           "triples_per_second": round(made["triples"] / seconds, 1)
                           if made["triples"] else 0.0}))
