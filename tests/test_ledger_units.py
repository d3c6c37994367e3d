"""The ledger's parts that need no contract: artifacts, errors, the draw, signatures,
the embedded chain's JSON-RPC server and the `enigma ledger` commands."""

from __future__ import annotations

import json
import re
import signal
import socket
import struct
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_account import Account
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from enigma.ledger import (
    Deployment,
    Ledger,
    LedgerError,
    anvil,
    artifacts,
    draw_quorum,
    errors,
    personal_sign,
    recover_signer,
    spawn_devchain,
    start_devchain,
)
from enigma.ledger.anvil import AnvilUnavailable, anvil_binary, free_port
from enigma.ledger.commands import ledger as ledger_group
from enigma.ledger.devchain import to_wire

# ---------------------------------------------------------------------- artifacts


@pytest.mark.parametrize("name", artifacts.CONTRACT_NAMES)
def test_cached_artifact_matches_its_source(name: str) -> None:
    cached = json.loads((artifacts.BUILD_DIR / f"{name}.json").read_text())
    assert cached["source_sha256"] == artifacts.source_digest(name), (
        f"contracts/build/{name}.json is stale: load the contract once and commit the artifact"
    )
    fresh = artifacts.compile_source(name)
    assert (cached["bytecode"], cached["abi"]) == (fresh.bytecode, fresh.abi)
    assert cached["vyper_version"] == fresh.vyper_version


def test_stale_artifact_is_recompiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the committed artifact with another digest (one compile, load's, not two)
    cached = json.loads((artifacts.BUILD_DIR / "registry.json").read_text())
    monkeypatch.setattr(artifacts, "BUILD_DIR", tmp_path)
    stale = cached | {"source_sha256": "0" * 64}
    (tmp_path / "registry.json").write_text(json.dumps(stale))
    loaded = artifacts.load("registry")
    assert loaded.source_sha256 == artifacts.source_digest("registry")
    rewritten = json.loads((tmp_path / "registry.json").read_text())
    assert rewritten["source_sha256"] == loaded.source_sha256
    with pytest.raises(KeyError, match="unknown contract"):
        artifacts.load("token")


# ---------------------------------------------------------------------- errors


def test_revert_reasons_become_named_exceptions() -> None:
    exc = errors.revert_from_reason(
        "execution reverted: NotOwner: only the owner may", "datasets.renew"
    )
    assert isinstance(exc, errors.NotOwner) and isinstance(exc, LedgerError)
    assert (exc.kind, exc.detail, exc.where) == ("NotOwner", "only the owner may", "datasets.renew")
    assert str(exc) == "datasets.renew reverted (NotOwner): only the owner may"
    generic = errors.revert_from_reason("execution reverted: BadQuorum: 2..16", "jobs.post_job")
    assert type(generic) is errors.ContractRevert and generic.kind == "BadQuorum"
    bare = errors.revert_from_reason("execution reverted", "x.y")
    assert bare.kind == "Revert"


def test_every_exception_class_names_a_contract_rule() -> None:
    sources = "".join(
        (artifacts.CONTRACTS_DIR / f"{n}.vy").read_text() for n in artifacts.CONTRACT_NAMES
    )
    kinds = set(re.findall(r'"([A-Z][A-Za-z]+): ', sources))
    assert set(errors.KINDS) <= kinds, set(errors.KINDS) - kinds


# ---------------------------------------------------------------------- quorum draw

weights = st.lists(st.integers(min_value=0, max_value=10**20), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), ws=weights, size=st.integers(1, 12))
def test_draw_is_distinct_deterministic_and_skips_zero_weight(
    seed: bytes, ws: list[int], size: int
) -> None:
    candidates = [(f"n{i}", w) for i, w in enumerate(ws)]
    eligible = sum(1 for w in ws if w > 0)
    if size > eligible:
        with pytest.raises(ValueError, match="not enough staked"):
            draw_quorum(seed, candidates, size)
        return
    drawn = draw_quorum(seed, candidates, size)
    assert drawn == draw_quorum(seed, candidates, size)
    assert len(drawn) == len(set(drawn)) == size
    assert all(dict(candidates)[n] > 0 for n in drawn)


def test_draw_follows_the_deposits() -> None:
    candidates = [("small", 1 * 10**18), ("none", 0), ("large", 9 * 10**18)]
    first = Counter(
        draw_quorum(keccak(i.to_bytes(4, "big")), candidates, 1)[0] for i in range(2000)
    )
    assert first["none"] == 0
    assert 0.85 < first["large"] / 2000 < 0.95  # expected 0.9; 2000 fixed seeds
    with pytest.raises(ValueError, match="32 bytes"):
        draw_quorum(b"short", candidates, 1)


# ---------------------------------------------------------------------- signatures


SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@settings(max_examples=20, deadline=None)
@given(
    secret=st.integers(min_value=1, max_value=SECP256K1_ORDER - 1),
    digest=st.binary(min_size=32, max_size=32),
)
def test_personal_sign_recovers_to_the_signer(secret: int, digest: bytes) -> None:
    key = secret.to_bytes(32, "big")
    signature = personal_sign(key, digest)
    assert len(signature) == 65
    assert recover_signer(digest, signature) == Account.from_key(key).address
    assert recover_signer(keccak(digest), signature) != Account.from_key(key).address


@settings(max_examples=20, deadline=None)
@given(
    secret=st.integers(min_value=1, max_value=SECP256K1_ORDER - 1),
    digest=st.binary(min_size=32, max_size=32),
)
def test_signatures_run_on_libsecp256k1_and_match_the_reference(secret: int,
                                                                 digest: bytes) -> None:
    """eth-keys signs and recovers with coincurve (libsecp256k1), which the chain does three
    or more times a transaction; its signatures and recoveries are the pure-Python
    reference's, bit for bit (RFC 6979 nonces), and a tampered digest recovers another key."""
    from eth_keys import KeyAPI
    from eth_keys.backends import CoinCurveECCBackend, NativeECCBackend

    assert isinstance(KeyAPI().backend, CoinCurveECCBackend)
    fast, reference = KeyAPI(CoinCurveECCBackend()), KeyAPI(NativeECCBackend())
    key = fast.PrivateKey(secret.to_bytes(32, "big"))
    signature = fast.ecdsa_sign(digest, key)
    assert signature == reference.ecdsa_sign(digest, reference.PrivateKey(key.to_bytes()))
    assert fast.ecdsa_recover(digest, signature) == key.public_key
    assert reference.ecdsa_recover(digest, signature) == key.public_key
    assert fast.ecdsa_recover(keccak(digest), signature) != key.public_key


def test_personal_sign_wants_a_digest() -> None:
    with pytest.raises(ValueError, match="32-byte digest"):
        personal_sign(keccak(b"k"), b"not a digest")


# ---------------------------------------------------------------------- embedded chain


def test_to_wire_encodes_like_json_rpc() -> None:
    value = {"n": 255, "ok": True, "none": None, "b": b"\x01\xff", "l": [0, "0xab"]}
    assert to_wire(value) == {
        "n": "0xff",
        "ok": True,
        "none": None,
        "b": "0x01ff",
        "l": ["0x0", "0xab"],
    }
    with pytest.raises(TypeError, match="cannot encode"):
        to_wire(object())


def _post(url: str, payload: object) -> object:
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_devchain_answers_json_rpc_and_batches() -> None:
    with start_devchain() as server:
        one = _post(
            server.url, {"jsonrpc": "2.0", "id": 7, "method": "eth_blockNumber", "params": []}
        )
        assert one == {"jsonrpc": "2.0", "id": 7, "result": "0x0"}
        batch = _post(
            server.url,
            [
                {"jsonrpc": "2.0", "id": 1, "method": "eth_accounts", "params": []},
                {"jsonrpc": "2.0", "id": 2, "method": "eth_noSuchThing", "params": []},
            ],
        )
        assert isinstance(batch, list)
        assert batch[0]["result"] == server.accounts
        assert (
            batch[1]["error"]["code"] == -32000
            and "eth_noSuchThing" in batch[1]["error"]["message"]
        )
        signed = _post(
            server.url,
            {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "eth_sign",
                "params": [server.accounts[1], "0x" + "11" * 32],
            },
        )
        assert isinstance(signed, dict)
        sig = bytes.fromhex(signed["result"][2:])
        assert recover_signer(b"\x11" * 32, sig) == server.accounts[1]


def test_devchain_is_quiet_when_a_client_hangs_up_mid_request(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A node killed mid-call resets its connection: no traceback on the server's stderr,
    and the server goes on answering."""
    with start_devchain() as server:
        host, port = server.httpd.server_address[:2]
        for _ in range(3):
            with socket.create_connection((host, port)) as s:
                s.sendall(b"POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{")
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        time.sleep(0.3)  # the handler threads meet the reset
        one = _post(server.url, {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber",
                                 "params": []})
        assert one == {"jsonrpc": "2.0", "id": 1, "result": "0x0"}
    assert "Traceback" not in capsys.readouterr().err


def test_connect_and_deployment_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="enigma ledger serve"):
        Ledger.connect(f"http://127.0.0.1:{free_port()}", "0x" + "00" * 20, timeout=2)
    with pytest.raises(LedgerError, match="enigma ledger deploy"):
        Deployment.load(tmp_path / "missing.json")
    with start_devchain() as server:
        wrong = Deployment(
            chain_id=1, registry="0x" + "00" * 20, datasets="0x" + "00" * 20, jobs="0x" + "00" * 20
        )
        with pytest.raises(LedgerError, match="deploy the contracts on this chain"):
            Ledger.connect(server.url, server.accounts[0], wrong)
        with pytest.raises(LedgerError, match="no contracts chosen"):
            Ledger.connect(server.url, server.accounts[0]).active_nodes()


# ---------------------------------------------------------------------- commands


def test_cli_deploys_and_lists_nodes(tmp_path: Path) -> None:
    runner = CliRunner()
    out, other = tmp_path / "deployment.json", tmp_path / "by-key.json"
    with start_devchain() as server:
        result = runner.invoke(
            ledger_group,
            [
                "deploy",
                "--rpc",
                server.url,
                "--account",
                server.accounts[0],
                "--out",
                str(out),
                "--job-timeout",
                "77",
            ],
        )
        assert result.exit_code == 0, result.output
        deployment = Deployment.load(out)
        params = Ledger.connect(server.url, None, deployment).params()
        assert params.job_timeout == 77 and params.min_deposit == 10**18
        no_payer = runner.invoke(ledger_group, ["deploy", "--rpc", server.url])
        assert no_payer.exit_code == 2 and "exactly one of --account" in no_payer.output
        bad_key = runner.invoke(
            ledger_group,
            ["deploy", "--rpc", server.url, "--key-env", "ENIGMA_TEST_KEY"],
            env={"ENIGMA_TEST_KEY": "0x1234"},
        )
        assert bad_key.exit_code == 2
        assert "must hold a private key (64 hex digits)" in bad_key.output
        key = keccak(b"deployer on a real chain")
        w3 = Ledger.connect(server.url, server.accounts[0]).w3
        fund = {"from": server.accounts[0], "to": Account.from_key(key).address, "value": 10**18}
        w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(fund))  # type: ignore[arg-type]
        by_key = runner.invoke(
            ledger_group,
            ["deploy", "--rpc", server.url, "--key-env", "ENIGMA_TEST_KEY", "--out", str(other)],
            env={"ENIGMA_TEST_KEY": key.hex()},
        )
        assert by_key.exit_code == 0, by_key.output
        assert key.hex() not in by_key.output
        assert Deployment.load(other).registry != deployment.registry
        node = Ledger.connect(server.url, server.accounts[1], deployment)
        node.register_node("tcp://10.0.0.1:5000", keccak(b"t"), 10**18)
        listed = runner.invoke(
            ledger_group, ["nodes", "--rpc", server.url, "--deployment", str(out)]
        )
        assert listed.exit_code == 0, listed.output
        assert (
            f"{server.accounts[1]}  deposit={10**18}  endpoint=tcp://10.0.0.1:5000" in listed.output
        )


def test_serve_runs_in_a_child_process_until_sigterm() -> None:
    with spawn_devchain() as chain:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", chain.url)
        assert len(chain.accounts) == 10
        assert all(re.fullmatch(r"0x[0-9a-fA-F]{40}", a) for a in chain.accounts)
        request = {"jsonrpc": "2.0", "id": 1, "method": "eth_accounts", "params": []}
        answer = _post(chain.url, request)
        assert isinstance(answer, dict) and answer["result"] == chain.accounts
        chain.process.send_signal(signal.SIGTERM)
        rest, _ = chain.process.communicate(timeout=20)
        assert chain.process.returncode == 0
        assert rest.strip() == "ledger: stopped"


def test_missing_anvil_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AnvilUnavailable, match="npm install --prefix"):
        anvil_binary(tmp_path, install=False)
    monkeypatch.setattr(anvil.shutil, "which", lambda _: None)
    with pytest.raises(AnvilUnavailable, match="npm is not on PATH"):
        anvil_binary(tmp_path)
