"""`enigma script ...`: dry-run a script, estimate its cost, run it on a local quorum.

    enigma script dry-run  SCRIPT --schema S [--rows N]
    enigma script estimate SCRIPT --schema S [--rows N]
    enigma script run      SCRIPT --schema S --data CSV [--rows N] [--insecure-dealer]

`run` is the whole job on one machine: 3 node processes over authenticated
channels, the owner outside the quorum, results sealed to the owner. Its
preprocessing is the homomorphic-encryption provider unless
--insecure-dealer is given (fast, for trying things on data that is not
private; every such run says so).
"""

from __future__ import annotations

import os
from pathlib import Path

import click
import numpy as np

from enigma.options import Renamed
from enigma.progress import Progress

from .checker import check
from .cost import MARGIN, size_text
from .cost import estimate as estimate_cost
from .cost import time_limit as limit_of
from .errors import DataError, SchemaError, ScriptError
from .interpreter import Outcome
from .plain import dry_run as plain_dry_run
from .runner import run_mpc
from .schema import Schema


def _load(script_path: str, schema_path: str) -> tuple[str, Schema]:
    try:
        return Path(script_path).read_text(), Schema.load(schema_path)
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from exc


def show_outcome(outcome: Outcome) -> None:
    """Each revealed value with its error bound, then what the script printed."""
    for name, r in outcome.results.items():
        if r.detail:
            click.echo(f"  {name} ({r.test}): " + ", ".join(
                f"{k} = {v:.6g}" for k, v in r.detail.items()))
            continue
        if r.value.shape == ():
            click.echo(f"  {name} = {r.value.item():.6g}  (error <= {r.error.item():.2g})")
            continue
        click.echo(f"  {name} {r.value.shape}: largest error bound {float(r.error.max()):.2g}")
        with np.printoptions(precision=6, suppress=True, linewidth=100):
            click.echo("    " + str(r.value).replace("\n", "\n    "))
    for line in outcome.printed:
        click.echo(f"  print: {line}")


@click.group("script")
def script() -> None:
    """Analysis scripts: dry run on synthetic data, cost estimate, run on a local quorum."""


_SCRIPT = click.argument("script_path", metavar="SCRIPT",
                         type=click.Path(exists=True, dir_okay=False))
_SCHEMA = click.option("--schema", "schema_path", required=True,
                       type=click.Path(exists=True, dir_okay=False),
                       help="The dataset's YAML schema.")
_ROWS = click.option("--rows", type=click.IntRange(min=1),
                     help="Row count (default: the schema's).")


@script.command("dry-run")
@_SCRIPT
@_SCHEMA
@_ROWS
def dry_run(script_path: str, schema_path: str, rows: int | None) -> None:
    """Run SCRIPT in the clear on SYNTHETIC data from the schema: does it run, what comes out."""
    source, schema = _load(script_path, schema_path)
    try:
        outcome = plain_dry_run(check(source, schema, script_path), schema, rows)
    except ScriptError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{script_path}: dry run on SYNTHETIC data (the values mean nothing):")
    show_outcome(outcome)


@script.command()
@_SCRIPT
@_SCHEMA
@_ROWS
def estimate(script_path: str, schema_path: str, rows: int | None) -> None:
    """Estimate rounds, triples, masks and bytes of SCRIPT on the engine (measured at 2 sizes)."""
    source, schema = _load(script_path, schema_path)
    try:
        with Progress("estimate") as progress:
            result = estimate_cost(source, schema, rows, filename=script_path,
                                   on_phase=lambda text, took: progress.phase(
                                       text, expected=took))
    except (ScriptError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{script_path}: {result}")


@script.command()
@_SCRIPT
@_SCHEMA
@click.option("--data", "csv_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The owner's CSV file.")
@_ROWS
@click.option("--quorum", "parties", cls=Renamed, old=("--parties",), default=3,
              show_default=True, help="Members of the local quorum.")
@click.option("--insecure-dealer", is_flag=True,
              help="Use the INSECURE test dealer for preprocessing (never with private data).")
@click.option("--time-limit", type=click.FloatRange(min=1.0),
              help="Seconds the run may take [default: the cost estimate's expected time "
                   "times 4, at least 120].")
def run(script_path: str, schema_path: str, csv_path: str, rows: int | None, parties: int,
        insecure_dealer: bool, time_limit: float | None) -> None:
    """Run SCRIPT on CSV through a local quorum; the owner receives the revealed values."""
    source, schema = _load(script_path, schema_path)
    try:
        values = schema.read_csv(csv_path)
    except (SchemaError, DataError) as exc:
        raise click.ClickException(str(exc)) from exc
    if rows is not None:
        values = {k: v[:rows] for k, v in values.items()}
    # imported here: the HE library and the engine's kernels are not needed to estimate
    from enigma.mpc.runner import PartyFailed
    from enigma.prep.commands import HEProviderFactory
    from enigma.prep.dealer import DealerFactory

    if insecure_dealer:
        click.echo("preprocessing: INSECURE test dealer (never use it with private data)")
        factory = DealerFactory(os.urandom(32), insecure=True)
    else:
        click.echo("preprocessing: homomorphic encryption among the nodes")
        factory = HEProviderFactory()
    n = len(next(iter(values.values()))) if values else (schema.rows or 1)
    if time_limit is None:
        try:
            cost = estimate_cost(source, schema, max(n, 1), filename=script_path).cost
        except (ScriptError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
        time_limit = limit_of(cost, secure=not insecure_dealer)
        click.echo(f"time limit: {time_limit:,.0f} s (the cost estimate at {n:,} rows, "
                   f"{cost}, times {MARGIN:g}; --time-limit sets it)")
    try:
        with Progress("script run") as progress:
            progress.phase(f"running on a local quorum of {parties}")
            outcome = run_mpc(source, schema, values, provider_factory=factory,
                              parties=parties, filename=script_path, deadline=time_limit)
    except ScriptError as exc:
        raise click.ClickException(str(exc)) from exc
    except PartyFailed as exc:
        if all(kind == "Timeout" for kind, _ in exc.errors.values()):
            raise click.ClickException(f"the run did not finish within its time limit of "
                                       f"{time_limit:,.0f} s; give it more with --time-limit"
                                       ) from exc
        raise
    s = outcome.stats
    click.echo(f"{script_path}: {len(outcome.results)} result(s) for the owner "
               f"({s['rounds']} rounds, {s['triples']:,} triples, "
               f"{size_text(s['bytes_sent'])} sent by node 0):")
    show_outcome(outcome)
