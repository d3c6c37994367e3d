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

import json
import os
from pathlib import Path
from typing import Any

import click

from enigma.options import Renamed
from enigma.progress import Progress

from . import results
from .advice import Bound, report, review
from .checker import check
from .cost import MARGIN, size_text
from .cost import estimate as estimate_cost
from .cost import time_limit as limit_of
from .errors import DataError, SchemaError, ScriptError
from .interpreter import Outcome
from .plain import dry_run as plain_dry_run
from .release import PolicyError, Release
from .review import release_of
from .runner import run_mpc
from .schema import Schema


def _load(script_path: str, schema_path: str) -> tuple[str, Schema]:
    try:
        return Path(script_path).read_text(), Schema.load(schema_path)
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from exc


def show_outcome(outcome: Outcome, as_json: bool = False, **facts: Any) -> None:
    """Each revealed value with its labels and error bound, then what the script printed;
    with `as_json`, one JSON object holding those and the `facts` of the run."""
    if as_json:
        click.echo(json.dumps({**facts, "results": {n: results.as_json(r) for n, r in
                                                    outcome.results.items()},
                               "printed": outcome.printed}))
        return
    for name, r in outcome.results.items():
        click.echo("  " + results.text(name, r).replace("\n", "\n  "))
    for line in outcome.printed:
        click.echo(f"  print: {line}")


JSON = click.option("--json", "as_json", is_flag=True,
                    help="Print one JSON object: each result's value, error bound and labels.")


def POLICY(fn: Any) -> Any:
    """The release-policy options (docs/disclosure.md), passed to the command as `release`."""
    options = [
        click.option("--policy", "policy_path", type=click.Path(exists=True, dir_okay=False),
                     help="A release policy file (TOML, YAML or JSON: n_min, dominance_k, "
                          "dominance_p, epsilon_budget, delta_budget)."),
        click.option("--n-min", type=click.IntRange(min=1),
                     help="Withhold any cell computed over fewer rows (overrides the file)."),
        click.option("--dominance", nargs=2, type=(click.IntRange(min=1), float),
                     metavar="K P", help="Withhold a sum's cell where the K largest "
                                         "contributors hold more than P percent."),
        click.option("--epsilon", type=click.FloatRange(min=0.0, min_open=True),
                     help="This job's ε under differential privacy (the budget too, "
                          "without a policy file)."),
        click.option("--delta", type=click.FloatRange(min=0.0, max=1.0, max_open=True),
                     default=0.0, show_default=True,
                     help="This job's δ: it must cover what the jointly drawn noise adds "
                          "(the check reports it, about 1e-12 an output)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def release_option(policy_path: str | None, n_min: int | None,
                   dominance: tuple[int, float] | None, epsilon: float | None,
                   delta: float = 0.0) -> Release | None:
    """The `Release` the policy options describe (None without any), or a usage error."""
    try:
        return release_of(policy_path, n_min, dominance, epsilon, delta)
    except (PolicyError, OSError, ValueError) as exc:
        raise click.ClickException(f"release policy: {exc}") from exc


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
@POLICY
@JSON
def dry_run(script_path: str, schema_path: str, rows: int | None, policy_path: str | None,
            n_min: int | None, dominance: tuple[int, float] | None, epsilon: float | None,
            delta: float, as_json: bool) -> None:
    """Run SCRIPT in the clear on SYNTHETIC data from the schema: does it run, what comes out
    (under a release policy: which synthetic cells it withholds)."""
    source, schema = _load(script_path, schema_path)
    release = release_option(policy_path, n_min, dominance, epsilon, delta)
    try:
        outcome = plain_dry_run(check(source, schema, script_path), schema, rows,
                                release=release)
    except ScriptError as exc:
        raise click.ClickException(str(exc)) from exc
    if not as_json:
        click.echo(f"{script_path}: dry run on SYNTHETIC data (the values mean nothing):")
    show_outcome(outcome, as_json, script=script_path, synthetic=True)


NO_BOUNDS = click.option(
    "--no-bounds", is_flag=True,
    help="Skip the error bounds (one more run on synthetic data at the full rows).")


@script.command()
@_SCRIPT
@_SCHEMA
@_ROWS
@NO_BOUNDS
def estimate(script_path: str, schema_path: str, rows: int | None, no_bounds: bool) -> None:
    """Estimate rounds, triples, masks and bytes of SCRIPT on the engine (measured at 2 sizes),
    and each result's error bound at the full rows, with a warning and a suggestion where
    a bound is large."""
    source, schema = _load(script_path, schema_path)
    try:
        with Progress("estimate") as progress:
            result = estimate_cost(source, schema, rows, filename=script_path,
                                   on_phase=lambda text, took: progress.phase(
                                       text, expected=took))
    except (ScriptError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{script_path}: {result}")
    if not no_bounds:
        try:
            show_bounds(source, schema, result.cost.rows, script_path)
        except (ScriptError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc


def show_bounds(source: str, schema: Schema, rows: int, script_path: str,
                say: Any = click.echo) -> list[Bound]:
    """Each reveal's stated error bound at `rows` rows, and a warning line per large one
    (`lang.advice`); returned for a JSON report."""
    with Progress(f"{script_path}: error bounds") as progress:
        progress.phase(f"running on {rows:,} synthetic rows")
        try:
            bounds = review(source, schema, rows, filename=script_path)
        except RuntimeError as exc:  # a party of the synthetic quorum failed: say it in a line
            why = " ".join(str(exc).split("\n", 2)[1:2]).strip() or str(exc)
            raise ValueError(f"the error bounds could not be computed ({why}); "
                             "--no-bounds skips them") from exc
    for line in report(bounds, rows):
        say(f"{script_path}: {line}" if not line.startswith(" ") else line)
    return bounds


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
@POLICY
@JSON
def run(script_path: str, schema_path: str, csv_path: str, rows: int | None, parties: int,
        insecure_dealer: bool, time_limit: float | None, policy_path: str | None,
        n_min: int | None, dominance: tuple[int, float] | None, epsilon: float | None,
        delta: float, as_json: bool) -> None:
    """Run SCRIPT on CSV through a local quorum; the owner receives the revealed values
    (under a release policy: only the cells it lets out, noised under DP)."""
    source, schema = _load(script_path, schema_path)
    release = release_option(policy_path, n_min, dominance, epsilon, delta)
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

    say = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    if insecure_dealer:
        say("preprocessing: INSECURE test dealer (never use it with private data)")
        factory = DealerFactory(os.urandom(32), insecure=True)
    else:
        say("preprocessing: homomorphic encryption among the nodes")
        factory = HEProviderFactory()
    n = len(next(iter(values.values()))) if values else (schema.rows or 1)
    if time_limit is None:
        try:
            cost = estimate_cost(source, schema, max(n, 1), filename=script_path).cost
        except (ScriptError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
        time_limit = limit_of(cost, secure=not insecure_dealer)
        say(f"time limit: {time_limit:,.0f} s (the cost estimate at {n:,} rows, "
            f"{cost}, times {MARGIN:g}; --time-limit sets it)")
    try:
        with Progress("script run") as progress:
            progress.phase(f"running on a local quorum of {parties}")
            outcome = run_mpc(source, schema, values, provider_factory=factory,
                              parties=parties, filename=script_path, deadline=time_limit,
                              release=release)
    except ScriptError as exc:
        raise click.ClickException(str(exc)) from exc
    except PartyFailed as exc:
        if all(kind == "Timeout" for kind, _ in exc.errors.values()):
            raise click.ClickException(f"the run did not finish within its time limit of "
                                       f"{time_limit:,.0f} s; give it more with --time-limit"
                                       ) from exc
        raise
    s = outcome.stats
    if not as_json:
        click.echo(f"{script_path}: {len(outcome.results)} result(s) for the owner "
                   f"({s['rounds']} rounds, {s['triples']:,} triples, "
                   f"{size_text(s['bytes_sent'])} sent by node 0):")
    show_outcome(outcome, as_json, script=script_path, insecure_dealer=insecure_dealer,
                 stats={k: s[k] for k in ("rounds", "triples", "bytes_sent")})
