"""`enigma net keygen/pubkey`: keys made from the command line load in the library."""

from __future__ import annotations

import stat

from click.testing import CliRunner

from enigma.net import Identity
from enigma.net.commands import net


def test_keygen_then_pubkey(tmp_path):
    path = tmp_path / "node.key"
    runner = CliRunner()
    made = runner.invoke(net, ["keygen", str(path)])
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert made.output.strip() == Identity.load(path).public_key.hex()
    shown = runner.invoke(net, ["pubkey", str(path)])
    assert shown.exit_code == 0 and shown.output == made.output
    again = runner.invoke(net, ["keygen", str(path)])
    assert again.exit_code != 0 and "--force" in again.output
    assert runner.invoke(net, ["keygen", "--force", str(path)]).output != made.output


def test_pubkey_refuses_a_corrupted_file(tmp_path):
    path = tmp_path / "node.key"
    Identity.generate().save(path)
    lines = path.read_text().split("\n")
    lines[1] = ("1" if lines[1][0] == "0" else "0") + lines[1][1:]  # one digit of the secret
    path.write_text("\n".join(lines))
    shown = CliRunner().invoke(net, ["pubkey", str(path)])
    assert shown.exit_code != 0 and "corrupted" in shown.output
