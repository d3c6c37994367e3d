"""`enigma schema ...` and `enigma check ...`: describe a dataset, and check a script against it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .checker import check_file
from .errors import SchemaError, ScriptError
from .schema import Schema, infer_schema
from .syntax import format_tree


@click.group("schema")
def schema() -> None:
    """Schemas: the public description of a private table (kinds, ranges, levels, labels)."""


@schema.command()
@click.argument("csv_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", help="Dataset name (default: the file's stem).")
@click.option("--max-levels", default=60, show_default=True,
              help="Texts with at most this many distinct values become categories.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the draft here instead of standard output.")
def infer(csv_path: str, name: str | None, max_levels: int, output: str | None) -> None:
    """Draft a YAML schema from CSV_PATH: every column private, ranges rounded outward."""
    try:
        drafted, notes = infer_schema(csv_path, name, max_levels)
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
@click.argument("schema_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("csv_path", type=click.Path(exists=True, dir_okay=False))
def validate(schema_path: str, csv_path: str) -> None:
    """Report every cell of CSV_PATH that SCHEMA_PATH refuses; exit 1 if there is any."""
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


@click.command("check")
@click.argument("scripts", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False))
@click.option("--schema", "schema_path", required=True,
              type=click.Path(exists=True, dir_okay=False), help="The dataset's YAML schema.")
@click.option("--ast", "show_ast", is_flag=True, help="Print each script's typed AST.")
def check(scripts: tuple[str, ...], schema_path: str, show_ast: bool) -> None:
    """Check analysis SCRIPTS against a schema: refuse any private value that could leak."""
    try:
        described = Schema.load(schema_path)
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from exc
    failed = 0
    for path in scripts:
        try:
            checked = check_file(path, described)
        except ScriptError as exc:
            click.echo(str(exc), err=True)
            failed += 1
            continue
        click.echo(f"{path}: ok, {len(checked.outputs)} result(s) for the owner")
        for out in checked.outputs:
            click.echo(f"  reveal {out.name!r}: {out.type}")
        if show_ast:
            click.echo(format_tree(checked))
    if failed:
        sys.exit(1)
