"""Errors, not tracebacks (issue 18): each ordinary mistake is one line naming the problem
and the fix, exit 2 for usage and 1 for a failure; `enigma --debug` shows the traceback.

The commands run through the top-level group (app/cli.py), where the one-line messages
are made (app/errors.py); a ledger is an embedded chain in this process, on a free port.
"""

import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from enigma.app.cli import main
from enigma.app.context import ENV
from enigma.app.errors import explain
from enigma.app.upload import UploadError

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "by_state.py"
SCHEMA = ROOT / "examples" / "benefits.yaml"
UNFUNDED = "0x" + "0" * 39 + "1"


@pytest.fixture
def ledger(deployed_chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A working folder whose context names the chain; the chain's accounts."""
    url, accounts, deployment = deployed_chain
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    _ok(_cli("context", "set", "--rpc", url, "--deployment", str(deployment),
             "--owner-account", accounts[0], "--analyst-account", accounts[1]))
    return accounts


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _ok(out: Result) -> Result:
    assert out.exit_code == 0, out.output
    return out


def _one_line(out: Result, code: int, *words: str) -> str:
    """The error line, checked: the exit code, no traceback, the words it must hold."""
    assert out.exit_code == code, out.output
    assert "Traceback" not in out.output
    errors = [line for line in out.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and errors[0] == out.output.rstrip().splitlines()[-1], out.output
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def _signature(accounts: list[str]) -> str:
    signed = _ok(_cli("sign", SCRIPT)).output
    assert signed.startswith(f"author={accounts[1]} ")
    return signed.split("signature=")[1].strip()


def test_an_unknown_dataset(ledger: list[str]) -> None:
    out = _cli("run", SCRIPT, "--dataset", "nosuch", "--author", ledger[1],
               "--signature", _signature(ledger))
    _one_line(out, 1, "no dataset 'nosuch'", "share it first")


def test_debug_shows_the_traceback(ledger: list[str]) -> None:
    out = _cli("--debug", "run", SCRIPT, "--dataset", "nosuch", "--author", ledger[1],
               "--signature", _signature(ledger))
    assert isinstance(out.exception, UploadError)  # raised through, not turned into a line


@pytest.mark.parametrize("signature", ["deadbeef", "zz"])
def test_a_signature_that_is_not_one(ledger: list[str], signature: str) -> None:
    out = _cli("run", SCRIPT, "--dataset", "benefits", "--author", ledger[1],
               "--signature", signature)
    _one_line(out, 2, f"'{signature}' is not a signature", "enigma sign")


def test_a_chain_that_is_down(ledger: list[str]) -> None:
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = _cli("sign", SCRIPT, "--rpc", f"http://127.0.0.1:{port}")
    line = _one_line(out, 1, f"no Ethereum JSON-RPC node answers at http://127.0.0.1:{port}",
                     "Connection refused")
    assert len(line) < 250  # the reason, not urllib3's pool repr


def test_a_chain_from_the_context_that_is_down_says_how_to_resume_it(ledger, tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = tmp_path / ".enigma-net" / "context.json"
    context.write_text(context.read_text().replace(
        '"network_home": null', f'"network_home": "{tmp_path / "net"}"'))
    _ok(_cli("context", "set", "--rpc", f"http://127.0.0.1:{port}"))
    _one_line(_cli("sign", SCRIPT), 1, "Connection refused",
              f"enigma up --home {tmp_path / 'net'}")


@pytest.mark.parametrize("command", ["share", "run"])
def test_an_account_that_is_not_an_address(ledger: list[str], command: str) -> None:
    args = {"share": ["share", ROOT / "data" / "benefits.csv", "--schema", SCHEMA],
            "run": ["run", SCRIPT, "--dataset", "benefits", "--author", ledger[1],
                    "--signature", "00" * 65]}[command]
    _one_line(_cli(*args, "--account", "0xzz"), 2, "'0xzz' is not a ledger address",
              "enigma context")


def test_an_unfunded_account(ledger: list[str]) -> None:
    out = _cli("job", "settle", "99", "--account", UNFUNDED)
    _one_line(out, 1, f"account {UNFUNDED} has too little ether", "fund it")


def test_a_key_variable_that_holds_no_key(ledger: list[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    data = ROOT / "data" / "benefits.csv"
    _one_line(_cli("share", data, "--schema", SCHEMA, "--key-env", "NO_SUCH_KEY"), 2,
              "--key-env NO_SUCH_KEY", "unset")
    monkeypatch.setenv("NO_SUCH_KEY", "0x1234")
    _one_line(_cli("share", data, "--schema", SCHEMA, "--key-env", "NO_SUCH_KEY"), 2,
              "not one")


def test_a_negative_row_count() -> None:
    out = _cli("script", "dry-run", SCRIPT, "--schema", SCHEMA, "--rows", "-5")
    _one_line(out, 2, "--rows", "-5")


def test_a_network_that_is_not_running(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    _one_line(_cli("status"), 1, "no network is running", "enigma up")


def test_an_unexpected_error_is_one_line_that_asks_for_a_report() -> None:
    line = explain(KeyError("holders"))
    assert "internal error (KeyError: 'holders')" in line and "enigma --debug" in line
    assert "\n" not in line


def test_a_reader_that_goes_away_is_not_a_chain_failure(tmp_path: Path) -> None:
    """`enigma ... | head`: the pipe closes under the command; it stops quietly (exit 1), and
    no message blames the chain or shows a traceback."""
    import subprocess
    import sys

    data = tmp_path / "wide.csv"  # its schema is far more than a pipe's buffer
    columns = [f"measure_{i}" for i in range(600)]
    rows = [",".join(str((i + j) % 9) for j in range(600)) for i in range(30)]
    data.write_text("\n".join([",".join(columns), *rows]) + "\n")
    env = {**os.environ, "ENIGMA_NO_AGENT": "1"}
    child = subprocess.Popen([sys.executable, "-m", "enigma.app.cli", "schema", "infer",
                              str(data)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env)
    child.stdout.close()  # before the child writes a byte
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) in (0, 1)
    assert "chain" not in err and "Traceback" not in err, err
