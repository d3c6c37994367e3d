"""The context (app/context.py): one file names the network, every command and the API
default to it, flags override it, and the CLI and the API act as one owner.

Issue 18: after `enigma up`, `sign`, `run`, `share` defaulted to 127.0.0.1:8545 and
./deployment.json, and the CLI, `api.connect_local` and `api.connect` used three owner
homes. (That `enigma up` writes the context is checked on a running network in
test_app_network.py.)
"""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from enigma.app import api
from enigma.app.cli import main
from enigma.app.context import ENV, Context, ContextError, locate

SCRIPT = "reveal(sum(data.age), 'total_age')\n"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with no context above it and no ENIGMA_CONTEXT."""
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _set(chain, *extra: str) -> None:
    url, accounts, deployment = chain
    out = CliRunner().invoke(main, ["context", "set", "--rpc", url, "--deployment",
                                    str(deployment), "--owner-account", accounts[0],
                                    "--analyst-account", accounts[1], *extra])
    assert out.exit_code == 0, out.output


def test_the_context_is_found_from_a_subfolder_and_the_variable_wins(here: Path,
                                                                     monkeypatch) -> None:
    saved = Context(rpc="http://127.0.0.1:1", deployment=str(here / "d.json"),
                    owner_account="0x" + "a" * 40, bootstrap=["127.0.0.1:4001"])
    saved.save(here / ".enigma-net" / "context.json")
    deep = here / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert Context.find() == saved
    other = Context(rpc="http://127.0.0.1:2", deployment="x.json")
    other.save(here / "other.json")
    monkeypatch.setenv(ENV, str(here / "other.json"))
    assert locate() == here / "other.json" and Context.find() == other


@pytest.mark.parametrize("text", ["{not json", json.dumps({"version": 1, "rpc": 5}),
                                  json.dumps({"version": 1, "rpc": "u", "deployment": "d",
                                              "owner_account": "0xzz"})])
def test_a_damaged_context_is_named_in_one_line(here: Path, text: str) -> None:
    path = here / ".enigma-net" / "context.json"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(ContextError, match="enigma up"):
        Context.load(path)
    out = CliRunner().invoke(main, ["context"])
    assert out.exit_code == 1
    assert out.output.strip().splitlines() == [out.output.strip()]
    assert str(path) in out.output and "Traceback" not in out.output


def test_no_context_says_how_to_get_one(here: Path) -> None:
    out = CliRunner().invoke(main, ["context"])
    assert out.exit_code == 1 and "enigma up" in out.output


def test_commands_default_to_the_context_and_flags_override_it(here: Path,
                                                               deployed_chain) -> None:
    url, accounts, deployment = deployed_chain
    _set(deployed_chain)
    shown = json.loads(CliRunner().invoke(main, ["context", "--json"]).output)
    assert shown["rpc"] == url and shown["analyst_account"] == accounts[1]
    assert shown["deployment"] == str(deployment.resolve())
    (here / "s.py").write_text(SCRIPT)
    signed = CliRunner().invoke(main, ["sign", "s.py"])  # no --rpc, --deployment, --account
    assert signed.exit_code == 0, signed.output
    assert signed.output.startswith(f"author={accounts[1]} ")
    other = CliRunner().invoke(main, ["sign", "s.py", "--account", accounts[2]])
    assert other.output.startswith(f"author={accounts[2]} ")
    down = CliRunner().invoke(main, ["sign", "s.py", "--rpc", "http://127.0.0.1:9"])
    assert down.exit_code == 1 and "http://127.0.0.1:9" in down.output


def test_a_key_in_a_variable_acts_instead_of_the_contexts_account(
        here: Path, deployed_chain, monkeypatch: pytest.MonkeyPatch) -> None:
    """For a chain that holds no keys: the account of `--key-env`'s key signs, over the
    context's default; with an explicit --account too, or a variable that holds no key, the
    command refuses in one line."""
    from eth_account import Account

    _set(deployed_chain)
    (here / "s.py").write_text(SCRIPT)
    key = bytes(range(1, 33))
    monkeypatch.setenv("ANALYST_KEY", key.hex())
    monkeypatch.setenv("NOT_A_KEY", "0x1234")
    signed = CliRunner().invoke(main, ["sign", "s.py", "--key-env", "ANALYST_KEY"])
    assert signed.exit_code == 0, signed.output
    assert signed.output.startswith(f"author={Account.from_key(key).address} ")
    both = CliRunner().invoke(main, ["sign", "s.py", "--key-env", "ANALYST_KEY",
                                     "--account", deployed_chain[1][2]])
    assert both.exit_code == 2 and "exactly one of --account" in both.output
    for name, says in (("NOT_A_KEY", "it is not one"), ("UNSET_KEY", "it is unset")):
        bad = CliRunner().invoke(main, ["sign", "s.py", "--key-env", name])
        assert bad.exit_code == 2 and f"--key-env {name}" in bad.output and says in bad.output


def test_the_api_and_the_cli_act_as_one_owner(here: Path, deployed_chain) -> None:
    _set(deployed_chain, "--owner-home", "owner-home")
    with api.connect() as net:
        assert net.owner.home == here / "owner-home"
        assert net.analyst().address == deployed_chain[1][1]
        key = (here / "owner-home" / "owner.key").read_bytes()
    out = CliRunner().invoke(main, ["dataset", "collect", "nosuch", "--out", "x.csv"])
    assert out.exit_code == 1
    assert f"this owner ({here / 'owner-home'}) has no dataset 'nosuch'" in out.output
    assert (here / "owner-home" / "owner.key").read_bytes() == key  # the same identity


def test_the_api_without_a_context_names_what_is_missing(here: Path) -> None:
    with pytest.raises(ContextError, match="give rpc, deployment, account"):
        api.connect()
