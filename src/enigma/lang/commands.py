"""`enigma schema ...` and `enigma check ...`: describe a dataset, and check a script against it.

A script names its dataset's schema in a comment line `# schema: FILE` (relative to the
script's folder), so that `enigma check script.py` needs nothing else; `--schema`
overrides it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from enigma.options import Renamed
from enigma.progress import Progress

from . import results
from .checker import check as check_script
from .cost import estimate as estimate_cost
from .errors import SchemaError, ScriptError
from .inference import infer_schema
from .plain import dry_run as plain_dry_run
from .review import review
from .schema import Schema
from .script_commands import (
    JSON,
    NO_BOUNDS,
    POLICY,
    release_option,
    show_bounds,
    show_outcome,
)
from .syntax import Output, ValueType, format_tree

SCHEMA_LINE = re.compile(r"^#\s*schema:\s*(\S+)\s*$", re.MULTILINE)


@click.group("schema")
def schema() -> None:
    """Schemas: the public description of a private table (kinds, ranges, levels, labels)."""


def _delimiter(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """`--delimiter` as one character; 'tab' and '\\t' spell a tab, which a shell mangles."""
    value = "\t" if value in ("tab", "\\t") else value
    if len(value) != 1 or value in "\"\r\n":
        raise click.BadParameter(f"{value!r} is not one character; give the separator itself "
                                 "(',', ';', '|') or 'tab'", ctx, param)
    return value


@schema.command()
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", help="Dataset name (default: the file's stem).")
@click.option("--max-levels", default=60, show_default=True,
              help="Texts with at most this many distinct values become categories.")
@click.option("--delimiter", default=",", show_default=True, callback=_delimiter,
              help="Field separator of a CSV file (';', '|', or 'tab'); the draft records it.")
@click.option("--drop", multiple=True, metavar="COLUMN",
              help="Leave this column of the file out of the dataset (repeatable); the draft "
                   "lists it under `ignore:`.")
@click.option("-o", "--out", "output", cls=Renamed, old=("--output",),
              type=click.Path(dir_okay=False),
              help="Write the draft here instead of standard output.")
def infer(data: str, name: str | None, max_levels: int, delimiter: str, drop: tuple[str, ...],
          output: str | None) -> None:
    """Draft a YAML schema from a CSV or Parquet file DATA: every column private, ranges
    rounded outward, columns no kind describes (ids, dates) left out with a note."""
    try:
        drafted, notes = infer_schema(data, name, max_levels, delimiter, drop)
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from exc
    text = drafted.dumps()
    if output:
        Path(output).write_text(text)
    else:
        click.echo(text, nl=False)
    for note in notes:
        click.echo(f"note: {note}", err=True)


@schema.command()
@click.argument("schema_path", metavar="SCHEMA", type=click.Path(exists=True, dir_okay=False))
@click.argument("csv_path", metavar="DATA", type=click.Path(exists=True, dir_okay=False))
def validate(schema_path: str, csv_path: str) -> None:
    """Report every cell of the CSV file DATA that SCHEMA refuses; exit 1 if there is any."""
    try:
        violations = Schema.load(schema_path).validate(csv_path)
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from exc
    for v in violations:
        click.echo(f"{csv_path}: {v}")
    if violations:
        click.echo(f"{csv_path}: {len(violations)} violation(s) of {schema_path}", err=True)
        sys.exit(1)
    click.echo(f"{csv_path}: matches {schema_path}")


def declared_schema(script_path: str, source: str) -> Path | None:
    """The schema file a script names in its `# schema: FILE` line, if it names one."""
    found = SCHEMA_LINE.search(source)
    return Path(script_path).parent / found.group(1) if found else None


def _schema_of(script_path: str, source: str, schema_path: str | None,
               cache: dict[Path, Schema]) -> Schema:
    path = Path(schema_path) if schema_path else declared_schema(script_path, source)
    if path is None:
        raise click.ClickException(
            f"{script_path}: no schema: give --schema FILE or write a line '# schema: FILE' "
            "in the script")
    if path not in cache:
        try:
            cache[path] = Schema.load(path)
        except (SchemaError, OSError) as exc:
            raise click.ClickException(f"{script_path}: schema {path}: {exc}") from exc
    return cache[path]


@click.command("check")
@click.argument("scripts", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False))
@click.option("--schema", "schema_path", type=click.Path(exists=True, dir_okay=False),
              help="The dataset's YAML schema (default: the script's '# schema:' line).")
@click.option("--ast", "show_ast", is_flag=True, help="Print each script's typed AST.")
@click.option("--no-run", is_flag=True,
              help="Only check: skip the dry run and the cost estimate (measured in 3 processes).")
@NO_BOUNDS
@POLICY
@JSON
def check(scripts: tuple[str, ...], schema_path: str | None, show_ast: bool,
          no_run: bool, no_bounds: bool, policy_path: str | None, n_min: int | None,
          dominance: tuple[int, float] | None, epsilon: float | None, delta: float,
          as_json: bool) -> None:
    """Check analysis SCRIPTS against a schema: refuse any private value that could leak.

    A script that passes is then dry-run in the clear on synthetic data drawn from the
    schema, and its cost on the engine is estimated, unless --no-run is given. With --json,
    one JSON object per script: its results' types and names, the dry run, the cost, or
    the error. With a release policy (--policy, or --n-min / --dominance / --epsilon), the
    dry run runs under it and each output's sensitivity and verdict are reported.
    """
    release = release_option(policy_path, n_min, dominance, epsilon, delta)
    schemas: dict[Path, Schema] = {}
    failed = 0
    say = (lambda _: None) if as_json else click.echo
    for path in scripts:
        source = Path(path).read_text()
        described = _schema_of(path, source, schema_path, schemas)
        report: dict[str, Any] = {"script": path}
        prefix = ""  # errors of the checker name the script; those of the run do not
        try:
            checked = check_script(source, described, path)
            say(f"{path}: ok, {len(checked.outputs)} result(s) for the owner")
            for out in checked.outputs:
                say(f"  reveal {out.name!r}: {out.type}")
            report["outputs"] = [_output_json(out) for out in checked.outputs]
            if show_ast:
                say(format_tree(checked))
            prefix = f"{path}: "
            if release is not None:  # the review is a dry run: cheap, even with --no-run
                outcome, verdicts = review(checked, described, release)
                for v in verdicts:
                    say(v.line())
                report["policy"] = [v.as_json() for v in verdicts]
                if any(v.refused for v in verdicts):
                    failed += 1
            if not no_run:
                if release is None:
                    outcome = plain_dry_run(checked, described)
                say(f"{path}: dry run on SYNTHETIC data (the values mean nothing):")
                if not as_json:
                    show_outcome(outcome)
                report["dry_run"] = {n: results.as_json(r) for n, r in outcome.results.items()}
                with Progress(f"{path}: cost") as progress:
                    cost = estimate_cost(source, described, filename=path,
                                         on_phase=lambda text, took, p=progress: p.phase(
                                             text, expected=took))
                say(f"{path}: cost {cost}")
                report["cost"] = dataclasses.asdict(cost)
                if not no_bounds:
                    bounds = show_bounds(source, described, cost.cost.rows, path, say)
                    report["bounds"] = [b.as_json() for b in bounds]
        except (ScriptError, ValueError) as exc:
            text = f"{prefix}{exc}"
            if not as_json:
                click.echo(text, err=True)
            report["error"] = text
            failed += 1
        if as_json:
            click.echo(json.dumps(report))
    if failed:
        sys.exit(1)


def _output_json(out: Output) -> dict[str, Any]:
    """A result as `check --json` describes it: name, type, line, and its dimensions' names."""
    axes = out.type.axes if isinstance(out.type, ValueType) else ()
    return {"name": out.name, "type": str(out.type), "line": out.line,
            "axes": [{"name": a.name, "labels": list(a.labels)} for a in axes]}
