"""`enigma dht ...` and `enigma store ...`: run a discovery node, inspect a share store."""

from __future__ import annotations

import json
import signal
import tempfile
import threading
import time
from pathlib import Path

import click
import numpy as np

from .dht import DhtNode
from .records import DhtError
from .store import ShareStore


def _endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"{text!r} is not HOST:PORT")
    return host, int(port)


@click.group("dht")
def dht() -> None:
    """Discovery: the Kademlia DHT that maps datasets and chunks to their holders."""


@dht.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=0, show_default=True, type=int, help="UDP port; 0 picks one.")
@click.option("--bootstrap", multiple=True, help="HOST:PORT of a known DHT node (repeatable).")
@click.option("--service", multiple=True,
              help="NAME=PORT this node serves, published in its node record (repeatable).")
def serve(host: str, port: int, bootstrap: tuple[str, ...], service: tuple[str, ...]) -> None:
    """Run a DHT node until SIGTERM or Ctrl-C, announcing its endpoint record."""
    ports = {}
    for item in service:
        name, sep, value = item.partition("=")
        if not sep or not value.isdigit():
            raise click.BadParameter(f"--service {item!r} is not NAME=PORT")
        ports[name] = int(value)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        node = DhtNode.start(host, port, [_endpoint(b) for b in bootstrap])
    except (DhtError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    with node:
        node.publish_endpoint(ports)
        click.echo(f"dht: listening on {node.host}:{node.port} as {node.node_id.hex()}",
                   nl=True)
        while not stop.wait(0.2):
            pass
    click.echo("dht: stopped")


@dht.command()
@click.argument("kind", type=click.Choice(["dataset", "chunk", "node"]))
@click.argument("name")
@click.option("--writer", help="Writer's public key (hex); defaults to NAME for node records.")
@click.option("--bootstrap", multiple=True, required=True, help="HOST:PORT of a DHT node.")
def get(kind: str, name: str, writer: str | None, bootstrap: tuple[str, ...]) -> None:
    """Look up a record through a short-lived node and print its body as JSON."""
    if writer is None and kind != "node":
        raise click.UsageError("--writer is required for dataset and chunk records")
    try:
        with DhtNode.start(bootstrap=[_endpoint(b) for b in bootstrap],
                           client=True) as node:
            record = node.get(kind, name, bytes.fromhex(writer or name))
    except DhtError as exc:
        raise click.ClickException(str(exc)) from exc
    if record is None:
        raise click.ClickException(f"no {kind} record {name!r} by that writer in the DHT")
    click.echo(json.dumps({"seq": record.seq, "body": record.body}, sort_keys=True))


@click.group("store")
def store() -> None:
    """The local share store of a node."""


@store.command("ls")
@click.argument("root", type=click.Path(path_type=Path, exists=True, file_okay=False))
def list_store(root: Path) -> None:
    """List datasets with their chunk counts, expiry and column names (never their values)."""
    with ShareStore(root) as s:
        for dataset in s.datasets():
            chunks = s.chunks(dataset)
            manifest = s.manifest(dataset)
            expiry = (time.strftime("%Y-%m-%d %H:%M", time.gmtime(manifest.expires_at))
                      if manifest else "unsealed")
            columns = s.columns(dataset, chunks[0]) if chunks else []
            click.echo(f"{dataset}\t{len(chunks)} chunks\texpires {expiry}\t{','.join(columns)}")


@store.command()
@click.argument("root", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--dataset", help="Only this dataset.")
def verify(root: Path, dataset: str | None) -> None:
    """Read every stored column and check its checksums; exit 1 if any fails."""
    with ShareStore(root) as s:
        bad = list(s.scrub(dataset))
    for err in bad:
        click.echo(str(err), err=True)
    if bad:
        raise SystemExit(1)
    click.echo("store: every column passed its checks")


@store.command()
@click.argument("root", type=click.Path(path_type=Path, exists=True, file_okay=False))
def purge(root: Path) -> None:
    """Delete the datasets whose paid storage period has ended."""
    with ShareStore(root) as s:
        gone = s.purge_expired()
    click.echo(f"store: purged {len(gone)} expired datasets {gone}")


@store.command()
@click.option("--rows", default=1_000_000, show_default=True, type=int,
              help="Rows of each share column written.")
@click.option("--columns", default=5, show_default=True, type=int,
              help="Share columns written and read back.")
@click.option("--dir", "where", type=click.Path(path_type=Path, file_okay=False),
              help="Where to write (a temporary directory inside it); default: system temp.")
def bench(rows: int, columns: int, where: Path | None) -> None:
    """Time durable writes and checked reads of random (rows, 2) uint64 share columns."""
    data = [np.random.default_rng(i).integers(0, 2**64, size=(rows, 2), dtype=np.uint64)
            for i in range(columns)]
    mb = data[0].nbytes / 1e6
    with tempfile.TemporaryDirectory(dir=where) as tmp, ShareStore(tmp) as s:
        t0 = time.perf_counter()
        for i, col in enumerate(data):
            s.put("bench", 0, f"c{i}", col)
        t1 = time.perf_counter()
        for i in range(columns):
            int(s.get("bench", 0, f"c{i}")[-1, 1])
        t2 = time.perf_counter()
    click.echo(f"store: {columns} columns of {rows} x 2 uint64 ({mb:.1f} MB each): "
               f"write {columns * mb / (t1 - t0):.0f} MB/s, "
               f"read+check {columns * mb / (t2 - t1):.0f} MB/s")
