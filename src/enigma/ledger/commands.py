"""`enigma ledger ...`: serve the embedded chain, deploy the contracts, inspect the ledger."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from .client import Deployment, Ledger, LedgerParams
from .devchain import start_devchain


@click.group("ledger")
def ledger() -> None:
    """The public ledger: an Ethereum chain with Enigma's contracts."""


@ledger.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8545, show_default=True, type=int, help="0 picks a free port.")
@click.option("--accounts", default=10, show_default=True, type=int, help="Funded dev accounts.")
def serve(host: str, port: int, accounts: int) -> None:
    """Serve the embedded chain (py-evm) over JSON-RPC until SIGTERM or Ctrl-C."""
    server = start_devchain(host=host, port=port, accounts=accounts)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"ledger: embedded chain at {server.url}")
    click.echo("ledger: funded dev accounts (unlocked on this node):")
    for address in server.accounts:
        click.echo(f"  {address}")
    while not stop.wait(0.5):
        pass
    server.stop()
    click.echo("ledger: stopped")


@ledger.command()
@click.option("--rpc", default="http://127.0.0.1:8545", show_default=True, help="JSON-RPC URL.")
@click.option("--account", required=True, help="Unlocked address that pays for deployment.")
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("deployment.json"), show_default=True
)
def deploy(rpc: str, account: str, out: Path) -> None:
    """Deploy the registry, datasets and jobs contracts; write their addresses to --out."""
    deployment = Ledger.connect(rpc, account).deploy(LedgerParams())
    deployment.save(out)
    click.echo(f"ledger: deployed on chain {deployment.chain_id}; addresses in {out}")


@ledger.command()
@click.option("--rpc", default="http://127.0.0.1:8545", show_default=True, help="JSON-RPC URL.")
@click.option(
    "--deployment",
    "deployment_file",
    type=click.Path(path_type=Path),
    default=Path("deployment.json"),
    show_default=True,
)
def nodes(rpc: str, deployment_file: Path) -> None:
    """List the active nodes with their deposits and endpoints."""
    deployment = Deployment.load(deployment_file)
    reader = Ledger.connect(rpc, None, deployment)
    for address in reader.active_nodes():
        info = reader.node(address)
        click.echo(f"{address}  deposit={info.deposit}  endpoint={info.endpoint}")


if __name__ == "__main__":
    ledger()
