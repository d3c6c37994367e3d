"""One vocabulary on the command line: every option says what it is for, a thing has one flag
name on every command (docs/cli.md), and the spellings it replaced still parse for a release."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from enigma.app.cli import COMMANDS, load_command, main
from enigma.options import Renamed

RETIRED = {"--parties": "--quorum", "--output": "--out", "--dataset-id": "--dataset"}
"""Old spelling -> the vocabulary's word; the old one may only survive as a hidden alias."""


def _commands() -> Iterator[tuple[str, click.Command]]:
    """Every command and group under `enigma`, by its full name."""
    todo = [(name, load_command(target)) for name, (target, _) in sorted(COMMANDS.items())]
    while todo:
        path, command = todo.pop()
        yield path, command
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            todo += [(f"{path} {n}", command.get_command(ctx, n))
                     for n in command.list_commands(ctx)]


def _shown(option: click.Option) -> list[str]:
    hidden = option.old if isinstance(option, Renamed) else ()
    return [o for o in option.opts + option.secondary_opts if o not in hidden]


def test_every_option_of_every_command_has_help() -> None:
    bare = [f"enigma {path} {'/'.join(p.opts)}" for path, command in _commands()
            for p in command.params
            if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip()]
    assert bare == []


def test_no_command_shows_a_retired_spelling() -> None:
    found = [f"enigma {path} {spelling} (say {RETIRED[spelling]})"
             for path, command in _commands() for p in command.params
             if isinstance(p, click.Option) for spelling in _shown(p) if spelling in RETIRED]
    assert found == []


def test_a_flag_name_means_one_type_everywhere() -> None:
    """`--quorum` is a count on every command, `--out` a path: the same word, the same thing."""
    kinds: dict[str, set[str]] = {}
    for _, command in _commands():
        for p in command.params:
            if isinstance(p, click.Option) and not p.is_flag:
                for spelling in _shown(p):
                    kinds.setdefault(spelling, set()).add(type(p.type).__name__)
    assert kinds["--quorum"] == {"IntParamType"}
    assert kinds["--out"] == {"Path"}
    assert kinds["--nodes"] == {"IntParamType"}


def test_a_renamed_option_parses_its_old_spelling_but_hides_it() -> None:
    @click.command()
    @click.option("--quorum", "size", cls=Renamed, old=("--parties",), default=3, type=int,
                  help="Members of the quorum.")
    def probe(size: int) -> None:
        click.echo(f"size={size}")

    runner = CliRunner()
    assert runner.invoke(probe, ["--quorum", "4"]).output == "size=4\n"
    assert runner.invoke(probe, ["--parties", "5"]).output == "size=5\n"
    shown = runner.invoke(probe, ["--help"]).output
    assert "--quorum" in shown and "--parties" not in shown


@pytest.mark.parametrize("old", ["--output", "-o"])
def test_schema_infer_writes_to_the_old_and_new_spelling(tmp_path, old: str) -> None:
    table = tmp_path / "t.csv"
    table.write_text("age\n30\n41\n")
    out = tmp_path / "t.yaml"
    result = CliRunner().invoke(main, ["schema", "infer", str(table), old, str(out)])
    assert result.exit_code == 0, result.output
    assert "name: age" in out.read_text()
