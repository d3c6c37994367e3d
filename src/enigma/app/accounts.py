"""Command-line arguments every long-running role shares: who pays, and where the DHT starts.

A node and an owner both act on the ledger from an account (unlocked on a dev chain, or
a private key handed over in an environment variable so it never shows in `ps`) and both
join the DHT through known peers; one parser keeps their rules and messages the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from enigma.ledger.commands import payer

from . import context
from .context import ADDRESS


class Account(click.ParamType):
    """A ledger address (0x and 40 hex digits), checked where the flag is read so that a
    typo is a usage error naming the flag, not a traceback from the ledger client."""

    name = "ADDRESS"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        if isinstance(value, str) and ADDRESS.fullmatch(value):
            return value
        self.fail(f"{value!r} is not a ledger address (0x and 40 hex digits); "
                  "`enigma context` lists this network's accounts", param, ctx)


ACCOUNT = Account()


def bootstrap_peers(items: tuple[str, ...]) -> list[tuple[str, int]]:
    """HOST:PORT items as (host, port); a malformed one is named."""
    peers = []
    for item in items:
        h, sep, p = item.rpartition(":")
        if not sep or not p.isdigit():
            raise click.BadParameter(f"--bootstrap {item!r} is not HOST:PORT")
        peers.append((h, int(p)))
    return peers


Command = Callable[..., Any]


def ledger_options(account_help: str | None = None, role: str | None = None
                   ) -> Callable[[Command], Command]:
    """`--rpc` and `--deployment` (where the ledger is), and with `account_help` who acts on
    it, the same for every command that talks to the ledger.

    Each defaults from the context (app/context.py) when one is found; `role` names the
    context's account that `--account` defaults to ("owner_account", "analyst_account").
    Who acts is `--account` (unlocked on the chain) or `--key-env` (a private key in an
    environment variable, for a chain that holds no keys); the command receives one
    `account` argument, an address or the key's bytes (`payer`)."""
    options = [
        click.option("--rpc", default=lambda: context.default("rpc", "http://127.0.0.1:8545"),
                     show_default="the context's, else http://127.0.0.1:8545",
                     help="The chain's JSON-RPC URL."),
        click.option("--deployment",
                     default=lambda: context.default("deployment", "deployment.json"),
                     show_default="the context's, else deployment.json",
                     type=click.Path(path_type=Path, dir_okay=False, exists=True),
                     help="The contracts' addresses (`enigma up` or `enigma ledger deploy` "
                          "wrote it)."),
    ]
    if account_help is not None:
        options += [
            click.option("--account", type=ACCOUNT, help=account_help,
                         default=None if role is None else lambda: context.default(role),
                         show_default=None if role is None
                         else f"the context's {role.replace('_', ' ')}, unless --key-env"),
            click.option("--key-env", metavar="VARIABLE",
                         help="Environment variable holding the account's hex private key "
                              "(instead of --account)."),
        ]

    def apply(fn: Command) -> Command:
        if account_help is not None:
            fn = _paying(fn)
        for option in reversed(options):
            fn = option(fn)
        return fn

    return apply


def _paying(fn: Command) -> Command:
    """`fn` with `--account`/`--key-env` turned into one `account` (`payer`): a key named by
    --key-env wins over the context's default account, never over one given on the line."""
    @functools.wraps(fn)
    def wrapper(*args: Any, account: str | None, key_env: str | None, **kwargs: Any) -> Any:
        given = click.get_current_context().get_parameter_source("account")
        if key_env is not None and given is not ParameterSource.COMMANDLINE:
            account = None
        if account is None and key_env is None:
            raise click.UsageError("give --account ADDRESS or --key-env VARIABLE (no context "
                                   "names an account for this command)")
        return fn(*args, account=payer(account, key_env), **kwargs)

    return wrapper
