"""The context: which network the commands and the API talk to when no flag says so.

Why one file: after `enigma up`, `share`, `sign`, `run` and `collect` defaulted to
`127.0.0.1:8545` and `./deployment.json` while `up` had started its chain on a random port
and written `.enigma-net/deployment.json`, and the CLI, `api.connect_local` and
`api.connect` each kept the owner's key somewhere else. `up` (or `enigma context set`, for
a network someone else runs) now writes the chain URL, the deployment, the accounts, the
DHT bootstrap and the owner's home into one JSON file; every command and the API read
their defaults from it, and an explicit flag or argument still wins.

Where it is found, first match:
1. the file named by the environment variable ENIGMA_CONTEXT;
2. `.enigma-net/context.json` in the working directory or the nearest parent that has one
   (so a command run from a subfolder of the project finds the network started above it).

This module imports nothing heavy: the option defaults of every command read it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from enigma.files import write_atomic

ENV = "ENIGMA_CONTEXT"
DIR = ".enigma-net"
FILE = "context.json"
VERSION = 1
DEFAULT_OWNER_HOME = Path(".enigma-owner")
"""The owner's home without a context: the same for the CLI and the API (one identity)."""

ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class ContextError(ValueError):
    """A context file that is missing where one is required, or damaged."""


@dataclass
class Context:
    """One network as seen by its owner and analyst; `path` is where it was read from."""

    rpc: str
    deployment: str
    owner_account: str | None = None
    analyst_account: str | None = None
    node_accounts: list[str] = field(default_factory=list)
    bootstrap: list[str] = field(default_factory=list)
    owner_home: str = str(DEFAULT_OWNER_HOME)
    network_home: str | None = None
    path: Path | None = field(default=None, compare=False)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        return {"version": VERSION, **data}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, [json.dumps(self.as_json(), indent=1).encode() + b"\n"])
        self.path = path

    @classmethod
    def load(cls, path: Path) -> Context:
        """Read and check a context file; a damaged one is named with what to do."""
        fix = f"rewrite it with `enigma up` or `enigma context set`, or delete {path}"
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ContextError(f"no context file at {path}; start a network with `enigma up` "
                               "or write one with `enigma context set`") from None
        except (OSError, ValueError) as exc:
            raise ContextError(f"context file {path} is unreadable ({exc}); {fix}") from None
        problem = _problem(data)
        if problem:
            raise ContextError(f"context file {path} is damaged: {problem}; {fix}")
        data.pop("version")
        return cls(**data, path=Path(path))

    @classmethod
    def find(cls, start: Path | None = None) -> Context | None:
        """The context in force (module docstring), or None where there is none."""
        path = locate(start)
        return None if path is None else cls.load(path)


def locate(start: Path | None = None) -> Path | None:
    """The context file in force: ENIGMA_CONTEXT, else the nearest `.enigma-net/context.json`."""
    named = os.environ.get(ENV)
    if named:
        return Path(named)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / DIR / FILE
        if candidate.is_file():
            return candidate
    return None


FIELDS: dict[str, tuple[type, ...]] = {
    "rpc": (str,), "deployment": (str,), "owner_account": (str, type(None)),
    "analyst_account": (str, type(None)), "node_accounts": (list,), "bootstrap": (list,),
    "owner_home": (str,), "network_home": (str, type(None)),
}


def _problem(data: Any) -> str | None:
    """What is wrong with a parsed context file, or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if data.get("version") != VERSION:
        return f"version {data.get('version')!r}, expected {VERSION}"
    unknown = sorted(set(data) - set(FIELDS) - {"version"})
    if unknown:
        return f"unknown fields {unknown}"
    for name, types in FIELDS.items():
        if name in ("rpc", "deployment") and name not in data:
            return f"no {name!r}"
        if name in data and not isinstance(data[name], types):
            return f"{name!r} is {type(data[name]).__name__}"
    accounts = [data.get("owner_account"), data.get("analyst_account"),
                *data.get("node_accounts", [])]
    bad = [a for a in accounts if a is not None and not (isinstance(a, str)
                                                         and ADDRESS.fullmatch(a))]
    if bad:
        return f"{bad[0]!r} is not an account address"
    return None


def default(name: str, fallback: Any = None) -> Any:
    """A field of the context in force for an option's default, else `fallback`."""
    context = Context.find()
    value = None if context is None else getattr(context, name)
    return fallback if value is None else value


def local_context(home: Path, rpc: str, deployment: Path, accounts: Sequence[str], nodes: int,
                  bootstrap: Sequence[tuple[str, int]]) -> Context:
    """The context of a network `enigma up` started from `home` (dev account roles: 0 owns
    data, 1..nodes are the nodes, nodes + 1 is an analyst)."""
    return Context(rpc=rpc, deployment=str(deployment), owner_account=accounts[0],
                   analyst_account=accounts[nodes + 1], node_accounts=list(accounts[1:nodes + 1]),
                   bootstrap=[f"{h}:{p}" for h, p in bootstrap],
                   owner_home=str(home / "owner"), network_home=str(home))


SUMMARY = ("Show the network every command uses by default: chain, deployment, accounts, "
           "owner home.")


@click.group("context", invoke_without_command=True, help=SUMMARY)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def context_command(ctx: click.Context, as_json: bool) -> None:
    if ctx.invoked_subcommand is not None:
        return
    path = locate()
    if path is None:
        raise click.ClickException(f"no context here (no {DIR}/{FILE} in this folder or "
                                   f"above, no {ENV}); start a network with `enigma up` or "
                                   "write one with `enigma context set`")
    found = Context.load(path)
    if as_json:
        click.echo(json.dumps({"path": str(path), **found.as_json()}, indent=1))
        return
    click.echo(f"context {path}")
    for name, value in found.as_json().items():
        if name != "version":
            shown = ", ".join(value) if isinstance(value, list) else value
            click.echo(f"  {name.replace('_', ' ')}: {shown if shown else '-'}")


@context_command.command("set")
@click.option("--rpc", help="The chain's JSON-RPC URL.")
@click.option("--deployment", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="The contracts' addresses (`enigma ledger deploy` wrote it).")
@click.option("--owner-account", help="The data owner's ledger account.")
@click.option("--analyst-account", help="The analyst's ledger account.")
@click.option("--bootstrap", multiple=True, help="HOST:PORT of a DHT node (repeat).")
@click.option("--owner-home", type=click.Path(path_type=Path, file_okay=False),
              help="The owner's key and progress files.")
@click.option("--file", "target", type=click.Path(path_type=Path, dir_okay=False),
              help=f"The context file [default: ${ENV}, else {DIR}/{FILE} here].")
def set_command(rpc: str | None, deployment: Path | None, owner_account: str | None,
                analyst_account: str | None, bootstrap: tuple[str, ...],
                owner_home: Path | None, target: Path | None) -> None:
    """Write or update the context for a network you did not start with `enigma up`."""
    target = target or Path(os.environ.get(ENV) or Path(DIR) / FILE)
    current = Context.load(target) if target.exists() else None
    if current is None and (rpc is None or deployment is None):
        raise click.UsageError(f"{target} does not exist yet: give --rpc and --deployment")
    data = current.as_json() if current else {"version": VERSION}
    given = {"rpc": rpc, "deployment": deployment and str(deployment.resolve()),
             "owner_account": owner_account, "analyst_account": analyst_account,
             "bootstrap": list(bootstrap) or None,
             "owner_home": owner_home and str(owner_home.resolve())}
    data.update({k: v for k, v in given.items() if v is not None})
    problem = _problem(data)
    if problem:
        raise click.UsageError(problem)
    data.pop("version")
    Context(**data).save(target)
    click.echo(f"context: {target} written")
