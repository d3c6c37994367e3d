"""`enigma net ...`: make and inspect node keys (the public key is what the ledger registers)."""

from __future__ import annotations

from pathlib import Path

import click

from .errors import KeyFileError
from .identity import Identity


@click.group("net")
def net() -> None:
    """Transport: node keys for the authenticated, encrypted mesh between quorum members."""


@net.command("keygen")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace an existing key file (its key is lost).")
def keygen(path: Path, force: bool) -> None:
    """Create a node key file at PATH (mode 0600) and print its public key in hex."""
    if path.exists() and not force:
        raise click.ClickException(
            f"{path} already exists; pass --force to replace it (the old key is then lost)"
        )
    identity = Identity.generate()
    identity.save(path)
    click.echo(identity.public_key.hex())


@net.command("pubkey")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def pubkey(path: Path) -> None:
    """Check the key file at PATH and print its public key in hex."""
    try:
        identity = Identity.load(path)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(identity.public_key.hex())
