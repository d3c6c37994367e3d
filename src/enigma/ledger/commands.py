"""`enigma ledger ...`: serve the embedded chain, deploy the contracts, inspect the ledger."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import click

from .client import Ledger
from .errors import LedgerError
from .records import Deployment, LedgerParams


@click.group("ledger")
def ledger() -> None:
    """The public ledger: an Ethereum chain with Enigma's contracts."""


@ledger.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8545, show_default=True, type=int, help="0 picks a free port.")
@click.option("--accounts", default=10, show_default=True, type=int, help="Funded dev accounts.")
@click.option("--state", type=click.Path(path_type=Path, file_okay=False),
              help="Folder that keeps the chain across restarts (resumed if it has one); "
                   "default: in memory only.")
def serve(host: str, port: int, accounts: int, state: Path | None) -> None:
    """Serve the embedded chain (py-evm) over JSON-RPC until SIGTERM or Ctrl-C."""
    # here, not at the top: every node and command imports this module (for `payer`), and
    # py-evm costs them 0.2 s that only this command needs
    from .devchain import start_devchain

    try:
        server = start_devchain(host=host, port=port, accounts=accounts, state=state)
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"ledger: embedded chain at {server.url}")
    click.echo("ledger: funded dev accounts (unlocked on this node):")
    for address in server.accounts:
        click.echo(f"  {address}")
    chain = server.chain
    if state is not None:
        click.echo(f"ledger: state in {state}: resumed {chain.resumed} blocks")
    if chain.dropped_bytes:
        click.echo(f"ledger: cut off a torn last record of {chain.dropped_bytes} bytes (a "
                   "crash mid-write; its block was never acknowledged)")
    while not stop.wait(0.5):
        pass
    server.stop()
    click.echo("ledger: stopped")


PRIVATE_KEY_BYTES = 32


def payer(account: str | None, key_env: str | None) -> str | bytes:
    """Who pays on the ledger, as a command line names it: an address the chain has
    unlocked (--account), or the private key held in the environment variable --key-env
    names (so that it never shows in `ps` or a shell history)."""
    if (account is None) == (key_env is None):
        raise click.UsageError("give exactly one of --account ADDRESS or --key-env VARIABLE")
    if account is not None:
        return account
    try:
        key = bytes.fromhex(os.environ.get(key_env or "", "").removeprefix("0x"))
    except ValueError:
        key = b""
    if len(key) != PRIVATE_KEY_BYTES:
        raise click.UsageError(f"--key-env {key_env}: the variable must hold a private key "
                               f"({2 * PRIVATE_KEY_BYTES} hex digits); it is "
                               + ("unset" if key_env not in os.environ else "not one"))
    return key


_DEFAULTS = LedgerParams()


@ledger.command()
@click.option("--rpc", default="http://127.0.0.1:8545", show_default=True, help="JSON-RPC URL.")
@click.option("--account", help="Address the node has unlocked (dev chains) that pays.")
@click.option(
    "--key-env",
    help="Name of an environment variable holding the payer's hex private key (real chains).",
)
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), default=Path("deployment.json"),
    show_default=True, help="Where to write the contracts' addresses (the deployment file).")
@click.option("--min-deposit", type=int, default=_DEFAULTS.min_deposit, show_default=True,
              help="Wei a node must stake to join.")
@click.option("--unbonding-period", type=int, default=_DEFAULTS.unbonding_period, show_default=True,
              help="Seconds a leaving node's deposit stays slashable before it is paid back.")
@click.option("--storage-price", type=int, default=_DEFAULTS.storage_price, show_default=True,
              help="Wei per holder per second of storage that an owner pays.")
@click.option("--price-per-round", type=int, default=_DEFAULTS.price_per_round, show_default=True,
              help="Wei a job pays per communication round of its work budget.")
@click.option(
    "--price-per-multiplication",
    type=int,
    default=_DEFAULTS.price_per_multiplication,
    show_default=True,
    help="Wei a job pays per multiplication of its work budget.",
)
@click.option("--job-timeout", type=int, default=_DEFAULTS.job_timeout, show_default=True,
              help="Seconds after which anyone may close an unfinished job and refund it.")
@click.option("--challenge-period", type=int, default=_DEFAULTS.challenge_period,
              show_default=True, help="Seconds an accused node has to dispute.")
@click.option("--voting-period", type=int, default=_DEFAULTS.voting_period,
              show_default=True, help="Seconds a dispute's committee has to vote.")
@click.option("--accusation-bond", type=int, default=_DEFAULTS.accusation_bond,
              show_default=True, help="Wei an accuser locks (paid to a node it fails to convict).")
@click.option("--committee-size", type=int, default=_DEFAULTS.committee_size,
              show_default=True, help="Nodes drawn to judge a disputed accusation.")
def deploy(rpc: str, account: str | None, key_env: str | None, out: Path, **params: int) -> None:
    """Deploy the registry, datasets and jobs contracts; write their addresses to --out."""
    deployment = Ledger.connect(rpc, payer(account, key_env)).deploy(LedgerParams(**params))
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
    help="The contracts' addresses (`enigma ledger deploy` wrote it).",
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
