"""The command line: `enigma --help` loads no command module, and the lazy listing says what
the commands themselves say."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from click.testing import CliRunner

from enigma.app.cli import COMMANDS, load_command, main

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
HEAVY = ("eth_account", "web3", "eth", "seal", "numba", "enigma.field", "enigma.ledger",
         "enigma.mpc", "enigma.prep", "enigma.lang", "enigma.storage", "enigma.net")
"""Modules of the ledger client, the HE library, the compiled kernels and every layer below
the app: none of them is needed to list the commands."""

PROBE = """
import json, sys
from enigma.app.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after(code: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=60, check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_help_imports_no_heavy_module() -> None:
    loaded = _modules_after(PROBE)
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == []
    assert "click" in loaded  # the probe did run the command line


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_listed_summary_is_the_commands_own(name: str) -> None:
    target, summary = COMMANDS[name]
    command = load_command(target)
    assert command.name == name
    own = command.short_help or (command.help or "").split("\n\n")[0]
    assert " ".join(own.split()) == summary


def test_help_lists_every_command_and_a_command_still_runs() -> None:
    runner = CliRunner()
    listing = runner.invoke(main, ["--help"])
    assert listing.exit_code == 0
    listed = [line.split()[0] for line in listing.output.split("Commands:")[1].splitlines()
              if line.strip()]
    assert listed == sorted(COMMANDS)
    sub = runner.invoke(main, ["script", "--help"])
    assert sub.exit_code == 0 and "estimate" in sub.output
    assert runner.invoke(main, ["no-such-command"]).exit_code == 2
