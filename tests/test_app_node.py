"""Node daemons in their own processes, a ledger, a DHT and an owner: sharing,
collecting, resuming, repairing and expiring data.

One network for the module (a chain in this process, node processes beside it), in the
order the scenarios need: tests that stop a node come last, so that earlier ones do not
wait on dead DHT contacts, and the test that kills a holder runs last of all.
"""

import csv
import json
import os
import shutil
import stat
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner

from enigma.app.cli import main
from enigma.app.home import store_name
from enigma.app.localnet import _launch, cluster
from enigma.app.node import drop_old_results, drop_unsealed
from enigma.app.service import Connection, ServiceError, decode, encode
from enigma.app.upload import UploadError
from enigma.lang.schema import Schema
from enigma.ledger.devchain import advance_time
from enigma.net.identity import Identity
from enigma.storage.store import ShareStore

pytestmark = pytest.mark.slow

SCHEMA = Schema.from_dict({"name": "people", "columns": [
    {"name": "age", "type": "int", "min": 0, "max": 130},
    {"name": "income", "type": "fixed", "min": 0, "max": 1.0e6},
    {"name": "smoker", "type": "bool", "true_text": "yes", "false_text": "no"},
]})
ROWS, CHUNK = 2500, 1000


def _write(path: Path, seed: int, bad_row: int | None = None,
           rows: int = ROWS) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    table = {"age": rng.integers(0, 131, rows), "income": rng.uniform(0, 1e6, rows).round(2),
             "smoker": rng.choice(np.array(["yes", "no"]), rows)}
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(table))
        for i in range(rows):
            w.writerow([table[c][i] for c in table] if i != bad_row else [7, "lots", "no"])
    return table


def _check(got: dict[str, np.ndarray], table: dict[str, np.ndarray]) -> None:
    assert (got["age"] == table["age"]).all()
    assert np.abs(got["income"] - table["income"]).max() <= 2.0**-17
    assert (got["smoker"] == (table["smoker"] == "yes")).all()


def test_abandoned_unsealed_uploads_are_dropped_and_sealed_data_kept(tmp_path):
    with ShareStore(tmp_path / "shares") as store:
        share = np.zeros((4, 2), np.uint64)
        for name in ("abandoned", "in-progress", "sealed"):
            store.put(name, 0, "age", share)
        store.write_manifest("sealed", bytes(32), expires_at=4e9, chunk_count=1)
        old = time.time() - 7200
        for name in ("abandoned", "sealed"):
            for path in [store.root / name, *(store.root / name).iterdir()]:
                os.utime(path, (old, old))
        assert drop_unsealed(store, older_than=3600) == ["abandoned"]
        assert store.datasets() == ["in-progress", "sealed"]


def test_sealed_results_are_kept_for_their_window_then_dropped(tmp_path):
    folder = tmp_path / "results"
    assert drop_old_results(folder, older_than=3600) == []  # no folder yet: nothing to do
    folder.mkdir()
    for name in ("job1.sealed", "job2.sealed", "notes.txt"):
        (folder / name).write_bytes(b"x")
    old = time.time() - 7200
    for name in ("job1.sealed", "notes.txt"):
        os.utime(folder / name, (old, old))
    assert drop_old_results(folder, older_than=3600) == [folder / "job1.sealed"]
    assert sorted(p.name for p in folder.iterdir()) == ["job2.sealed", "notes.txt"]


@pytest.mark.parametrize("child, says", [
    ("print('loading', flush=True); time.sleep(30)",
     "was not ready after 1 s: its last output: loading"),
    ("time.sleep(30)", "was not ready after 1 s: it printed nothing and its log is empty"),
    ("sys.stderr.write('no chain at 127.0.0.1:1'); sys.exit(3)",
     "exited with code 3: no chain at 127.0.0.1:1"),
    ("print('bad --bind', flush=True); sys.exit(2)", "exited with code 2: its last output: bad"),
])
def test_a_node_that_does_not_start_is_reported_with_a_reason(tmp_path, child, says):
    cmd = [sys.executable, "-c", f"import sys, time; {child}"]
    with pytest.raises(RuntimeError) as err:
        _launch(cmd, tmp_path, None, timeout=1.0)
    assert says in str(err.value)


def test_messages_carry_only_plain_arrays_that_match_their_headers():
    arrays = [np.arange(12, dtype=np.uint64).reshape(6, 2), np.array([1.5, -2.0])]
    frames = [memoryview(bytes(f)) if isinstance(f, bytes) else memoryview(f.tobytes())
              for f in encode({"op": "put", "chunk": 3}, arrays)]
    header, back = decode(frames, "test")
    assert header == {"op": "put", "chunk": 3}
    assert all((a == b).all() and a.dtype == b.dtype for a, b in zip(arrays, back, strict=True))
    with pytest.raises(ServiceError, match="should be \\[6, 2\\] of <u8, got 88 bytes"):
        decode([frames[0], frames[1][:88], frames[2]], "test")
    with pytest.raises(ServiceError, match="announced 2 arrays and sent 1"):
        decode(frames[:2], "test")
    pickled = json.dumps({"op": "x", "arrays": [{"dtype": "|O", "shape": [1]}]}).encode()
    with pytest.raises(ServiceError, match="only plain numeric arrays"):
        decode([memoryview(pickled), memoryview(b"12345678")], "test")
    with pytest.raises(ServiceError, match="malformed message header"):
        decode([memoryview(b"not json")], "test")


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """Four nodes; two spare accounts for the nodes a test starts itself."""
    with cluster(tmp_path_factory.mktemp("net"), 4, spare=2) as net:
        yield net


@pytest.fixture(scope="module")
def ledger(net):
    """The owner's account on a ledger client of its own."""
    return net.ledger(net.owner_account)


def _holders(net, first=0):
    return [n.address for n in net.nodes[first:first + 3]]


def _files(net, node_index: int, name: str, gen: int) -> Path:
    owner_key = net.owner.identity.public_key
    return net.nodes[node_index].home / "shares" / store_name(name, owner_key, gen)


def test_upload_collect_and_what_the_network_records(net, tmp_path, ledger):
    owner, nodes = net.owner, net.nodes
    table = _write(tmp_path / "people.csv", seed=1)
    result = owner.share(tmp_path / "people.csv", SCHEMA, "people", chunk_rows=CHUNK,
                         holders=_holders(net), t=1, weak=True)  # recovered from 2 below
    assert (result.rows, result.chunks, result.sent_chunks) == (ROWS, 3, 3)
    _check(owner.collect("people"), table)
    record = ledger.dataset(result.ledger_id)
    assert record.holders == _holders(net) and bytes.fromhex(SCHEMA.digest()) == record.schema_hash
    pointer = owner.dht.find_dataset("people", owner.identity.public_key)
    assert pointer.holders == [n.node_id for n in nodes[:3]] and len(pointer.chunk_ids) == 3
    assert owner.dht.find_chunk_holders(pointer.chunk_ids[0], owner.identity.public_key) == [
        n.node_id for n in nodes[:3]]
    # each node keeps its key private, and its shares alone are not the data
    key_file = nodes[0].home / "node.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with open(_files(net, 0, "people", 0) / "00000000" / "age.share", "rb") as f:
        assert np.int64(table["age"][0]).tobytes() not in f.read()
    health = json.load(urllib.request.urlopen(f"http://127.0.0.1:{nodes[0].metrics_port}/health"))
    assert health["status"] == "ok" and health["node"] == nodes[0].node_id.hex()
    metrics = urllib.request.urlopen(
        f"http://127.0.0.1:{nodes[0].metrics_port}/metrics").read().decode()
    assert 'enigma_node_requests_total{op="put",outcome="ok"} 3.0' in metrics
    # another key (a stranger, or another owner) reaches only its own namespace
    stranger = Identity.generate()
    with Connection.open("127.0.0.1", nodes[0].port, stranger, nodes[0].node_id) as conn:
        assert conn.request("have", dataset="people", gen=0)[0]["chunks"] == {}
        with pytest.raises(ServiceError, match="not sealed"):
            conn.request("get", dataset="people", gen=0, chunk=0)
    # and a client that talks to the wrong key is refused in the handshake
    with pytest.raises(ServiceError, match="handshake"):
        Connection.open("127.0.0.1", nodes[0].port, owner.identity, nodes[1].node_id)
    received = next(line for line in metrics.splitlines()
                    if line.startswith("enigma_node_share_received_bytes_total"))
    assert float(received.split()[1]) == ROWS * 3 * 2 * 16  # 3 columns and their tags, 16 B each


def test_a_bad_row_leaves_nothing_visible(net, tmp_path, ledger):
    owner, node = net.owner, net.nodes[0]
    before = ledger.call("datasets", "dataset_count")
    _write(tmp_path / "bad.csv", seed=2, bad_row=2200)
    with pytest.raises(UploadError, match=r"row 2201, column 'income'") as err:
        owner.share(tmp_path / "bad.csv", SCHEMA, "broken", chunk_rows=CHUNK,
                    holders=_holders(net))
    assert (err.value.row, err.value.column) == (2201, "income")
    # an in-memory table streams chunk by chunk: two chunks go out before row 2201 fails
    table = _write(tmp_path / "ok.csv", seed=2)
    table["age"] = table["age"].copy()
    table["age"][2200] = 131
    with pytest.raises(UploadError, match=r"row 2201, column 'age': value 131 is outside"):
        owner.share(table, SCHEMA, "half", chunk_rows=CHUNK, holders=_holders(net))
    assert ledger.call("datasets", "dataset_count") == before
    with Connection.open("127.0.0.1", node.port, owner.identity, node.node_id) as conn:
        have = conn.request("have", dataset="half", gen=0)[0]
        assert have["sealed"] is False and sorted(have["chunks"]) == ["0", "1"]
        for name in ("half", "broken"):
            with pytest.raises(ServiceError, match="not sealed") as refused:
                conn.request("get", dataset=name, gen=0, chunk=0)
            assert refused.value.kind == "state"


def test_an_interrupted_upload_resumes_without_resending(net, tmp_path):
    owner = net.owner
    table = _write(tmp_path / "resume.csv", seed=3)

    def crash_after_first_chunk(rows: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        owner.share(tmp_path / "resume.csv", SCHEMA, "resume", chunk_rows=CHUNK,
                    holders=_holders(net), progress=crash_after_first_chunk)
    result = owner.share(tmp_path / "resume.csv", SCHEMA, "resume", chunk_rows=CHUNK,
                         holders=_holders(net))
    assert result.sent_chunks == 2 and result.chunks == 3
    _check(owner.collect("resume"), table)


def test_a_share_that_failed_on_a_stopped_holder_resumes_where_every_holder_acked(net, tmp_path):
    owner, nodes = net.owner, net.nodes
    table = _write(tmp_path / "long.csv", seed=10, rows=20 * CHUNK)
    victim = nodes[2]
    arrived = _files(net, 2, "long", 0)

    def stop_the_holder_midway(rows: int) -> None:
        if victim.process.poll() is None and len(list(arrived.glob("0*"))) >= 4:
            assert victim.terminate() == 0

    with pytest.raises(ServiceError) as failed:
        owner.share(tmp_path / "long.csv", SCHEMA, "long", chunk_rows=CHUNK,
                    holders=_holders(net), progress=stop_the_holder_midway)
    assert victim.node_id.hex()[:16] in str(failed.value)
    progress = json.loads((owner.home / "datasets" / "long.json").read_text())
    acked = set.intersection(*(set(c) for c in progress["chunks"].values()))
    assert 4 <= len(acked) < 20 and progress["source"]  # written although the upload failed
    net.respawn(2, extra=["--port", str(victim.port), "--dht-port", str(victim.dht_port)])
    result = owner.share(tmp_path / "long.csv", SCHEMA, "long", chunk_rows=CHUNK,
                         holders=_holders(net))
    assert (result.chunks, result.sent_chunks) == (20, 20 - len(acked))
    _check(owner.collect("long"), table)


def test_a_corrupt_file_is_detected_on_read_and_repaired(net, tmp_path):
    owner = net.owner
    table = _write(tmp_path / "rot.csv", seed=4)
    owner.share(tmp_path / "rot.csv", SCHEMA, "rot", chunk_rows=CHUNK, holders=_holders(net),
                t=1, weak=True)  # the two healthy holders read and repair it
    target = _files(net, 1, "rot", 0) / "00000001" / "income.share"
    raw = bytearray(target.read_bytes())
    raw[-5] ^= 0x40
    target.write_bytes(bytes(raw))
    node = net.nodes[1]
    with Connection.open("127.0.0.1", node.port, owner.identity, node.node_id) as conn:
        with pytest.raises(ServiceError, match="payload checksum mismatch") as err:
            conn.request("get", dataset="rot", gen=0, chunk=1)
        assert err.value.kind == "corrupt"
    got = owner.collect("rot")  # the two healthy holders suffice, and the third is named
    _check(got, table)
    [warning] = got.warnings
    assert warning.startswith(f"holder {node.address} skipped for chunk 1: ")
    assert "payload checksum mismatch" in warning
    chain = net.chain
    shown = CliRunner().invoke(main, [
        "dataset", "collect", "rot", "--out", str(tmp_path / "rot-back.csv"), "--home",
        str(owner.home), "--rpc", chain.url, "--deployment", str(net.deployment),
        "--account", chain.accounts[0], "--bootstrap", f"127.0.0.1:{net.nodes[0].dht_port}"])
    assert shown.exit_code == 0, shown.output
    assert f"WARNING: holder {node.address} skipped for chunk 1: " in shown.stderr
    report = owner.repair("rot")
    assert report.repaired == [node.address] and report.gen == 1 and report.left is None
    assert report.lines()[0].startswith(f"holder {node.address} chunk 1 column 'income': "
                                        "corrupt (payload checksum mismatch")
    assert owner.state("rot").gen == 1 and owner.repair("rot").lines() == [
        "every holder is healthy"]
    assert owner.collect("rot").warnings == []
    assert not _files(net, 1, "rot", 0).exists()  # the old generation is gone once sealed


def test_a_holder_whose_whole_store_was_deleted_is_named_and_repaired(net, tmp_path):
    owner, nodes, chain = net.owner, net.nodes, net.chain
    table = _write(tmp_path / "lost.csv", seed=11)
    holders = [n.address for n in nodes[1:4]]  # the only dataset on nodes[3] so far
    owner.share(tmp_path / "lost.csv", SCHEMA, "lost", chunk_rows=CHUNK, holders=holders,
                t=1, weak=True)
    shutil.rmtree(nodes[3].home / "shares")  # the node's whole store, deleted under it
    repaired = CliRunner().invoke(main, [
        "dataset", "repair", "lost", "--home", str(owner.home), "--rpc", chain.url,
        "--deployment", str(net.deployment), "--account", chain.accounts[0],
        "--bootstrap", f"127.0.0.1:{nodes[0].dht_port}"])
    assert repaired.exit_code == 0, repaired.output
    assert repaired.stdout.splitlines() == [
        f"dataset: holder {nodes[3].address} the whole generation: missing (this store "
        f"({nodes[3].home / 'shares'}) holds no file of "
        f"{store_name('lost', owner.identity.public_key, 0)})",
        f"dataset: repaired ['{nodes[3].address}']: generation 1 holds fresh shares of every "
        "chunk on every holder"]
    got = owner.collect("lost")
    _check(got, table)
    assert got.warnings == [] and owner.repair("lost").healthy


def test_the_command_line_shares_and_collects(net, tmp_path):
    nodes, chain = net.nodes, net.chain
    table = _write(tmp_path / "cli.csv", seed=8)
    (tmp_path / "cli.yaml").write_text(SCHEMA.dumps())
    common = ["--home", str(tmp_path / "owner"), "--rpc", chain.url, "--deployment",
              str(net.deployment), "--account", chain.accounts[5]]  # DHT via the ledger
    holders = [arg for n in nodes[:3] for arg in ("--holder", n.address)]
    runner = CliRunner()
    done = runner.invoke(main, ["share", str(tmp_path / "cli.csv"), "--json", "--schema",
                                str(tmp_path / "cli.yaml"), "--chunk-rows", "1000",
                                *holders, *common])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["dataset"], summary["rows"], summary["chunks"]) == ("cli", ROWS, 3)
    # quorums of 3 by default: t = 2, and n = 3 from the holders named (no node may be lost)
    assert summary["threshold"] == {"t": 2, "n": 3, "quorum": 3, "weak": False}
    assert "no node may be lost" in done.stderr
    cli_owner = Identity.load(tmp_path / "owner" / "owner.key").public_key
    pointer = net.owner.dht.find_dataset("cli", cli_owner)
    assert pointer is not None and pointer.holders == [n.node_id for n in nodes[:3]]
    back = runner.invoke(main, ["dataset", "collect", "cli", "--out", str(tmp_path / "b.csv"),
                                *common])
    assert back.exit_code == 0, back.output
    assert SCHEMA.validate(tmp_path / "b.csv") == []  # the schema reads what collect wrote
    got = {k: np.asarray(v) for k, v in pacsv.read_csv(tmp_path / "b.csv").to_pydict().items()}
    _check({**got, "smoker": got["smoker"] == "yes"}, table)
    _write(tmp_path / "clibad.csv", seed=9, bad_row=10)
    bad = runner.invoke(main, ["share", str(tmp_path / "clibad.csv"), "--schema",
                               str(tmp_path / "cli.yaml"), *holders, *common])
    assert bad.exit_code == 1 and "row 11, column 'income'" in bad.output


def test_refresh_changes_every_share_and_keeps_the_data(net, tmp_path):
    owner = net.owner
    table = _write(tmp_path / "people.csv", seed=1)
    before = (_files(net, 0, "people", 0) / "00000000" / "age.share").read_bytes()
    state = owner.refresh("people")
    assert state.gen == 1
    after = (_files(net, 0, "people", 1) / "00000000" / "age.share").read_bytes()
    assert before[-4096:] != after[-4096:]
    _check(owner.collect("people"), table)


def test_a_lost_tag_key_still_lets_the_owner_collect_and_a_damaged_one_is_named(net, tmp_path):
    owner = net.owner
    table = _write(tmp_path / "people.csv", seed=1)
    path = owner.home / "keys" / "people.tagkey"
    kept = path.read_bytes()
    try:
        path.write_bytes(kept[:-1] + bytes([kept[-1] ^ 1]))
        with pytest.raises(UploadError, match=r"tag key .* is damaged"):
            owner.tag_key("people")
        path.unlink()
        _check(owner.collect("people"), table)  # its own data, without the tag check
    finally:
        path.write_bytes(kept)
    assert owner.tag_key("people").any()  # restored, checked on read again


def test_an_unregistered_node_cannot_hold_or_join(net, tmp_path):
    owner, nodes = net.owner, net.nodes
    stranger = net.spawn(net.root / "stranger", net.spare_accounts[0], register=False)
    try:
        assert stranger.registered is False
        _write(tmp_path / "s.csv", seed=5)
        with pytest.raises(UploadError, match="not an active registered node"):
            owner.share(tmp_path / "s.csv", SCHEMA, "strange", chunk_rows=CHUNK,
                        holders=[nodes[0].address, nodes[1].address, stranger.address])
        with pytest.raises(UploadError, match="not an active registered node"):
            owner.recover("people", [nodes[2].address], [stranger.address])
        # a registered node refuses to take shares from it in a reshare
        with Connection.open("127.0.0.1", nodes[3].port, owner.identity,
                             nodes[3].node_id) as conn, pytest.raises(ServiceError) as err:
            conn.request("expect", dataset="people", gen=1, t=1, point=3, chunk_count=3,
                         participants={"1": nodes[0].node_id.hex(),
                                       "2": stranger.node_id.hex()})
        assert err.value.kind == "not-registered"
    finally:
        assert stranger.terminate() == 0
    with ShareStore(stranger.home / "shares") as store:
        assert store.datasets() == []


def test_paid_storage_expires_and_sigterm_leaves_no_half_written_file(net, tmp_path, ledger):
    owner, nodes = net.owner, net.nodes
    extra = net.spawn(net.root / "extra", net.spare_accounts[1], housekeeping=0.2)
    holders = [nodes[0].address, nodes[1].address, extra.address]
    try:
        _write(tmp_path / "brief.csv", seed=6)
        owner.share(tmp_path / "brief.csv", SCHEMA, "brief", chunk_rows=CHUNK,
                    holders=holders, duration=2)
        stored = extra.home / "shares" / store_name("brief", owner.identity.public_key, 0)
        time.sleep(0.5)
        assert stored.exists(), "purged before the ledger's clock passed the paid time"
        advance_time(ledger.w3, 5)
        deadline = time.monotonic() + 30
        while stored.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not stored.exists(), "the node kept shares whose paid storage ended"
        # SIGTERM to a holder in the middle of an upload (slowed down to make room for it)
        rng = np.random.default_rng(7)
        big = {"age": rng.integers(0, 131, 60_000), "income": rng.uniform(0, 1e6, 60_000),
               "smoker": np.where(rng.random(60_000) < 0.5, "yes", "no")}
        errors: list[BaseException] = []

        def upload() -> None:
            try:
                owner.share(big, SCHEMA, "big", chunk_rows=2000, holders=holders,
                            progress=lambda rows: time.sleep(0.1))
            except BaseException as exc:
                errors.append(exc)

        uploader = threading.Thread(target=upload)
        uploader.start()
        chunks = stored.with_name(store_name("big", owner.identity.public_key, 0))
        deadline = time.monotonic() + 30
        while len(list(chunks.glob("0*"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert extra.terminate() == 0
        uploader.join(60)
        assert errors and isinstance(errors[0], ServiceError), errors
        assert extra.address in str(errors[0]) or extra.node_id.hex()[:16] in str(errors[0])
    finally:
        extra.terminate()
    with ShareStore(extra.home / "shares") as store:
        assert store.swept == 0  # no temporary file was left behind
        assert list(store.scrub()) == []  # every file there is complete and checks out
        name = store_name("big", owner.identity.public_key, 0)
        assert 3 <= len(store.chunks(name)) < 30 and store.manifest(name) is None


def test_a_killed_holder_is_replaced_by_resharing(net, tmp_path, ledger):
    owner, nodes = net.owner, net.nodes
    table = _write(tmp_path / "people.csv", seed=1)
    nodes[2].kill()
    _check(owner.collect("people"), table)  # t + 1 = 2 of 3 holders suffice
    down = owner.repair("people")  # the dead holder is named, not taken for healthy
    assert down.repaired == [] and down.left is not None and "recover" in down.left
    assert [h.address for h in down.holders if not h.healthy] == [nodes[2].address]
    assert down.lines()[0].startswith(f"holder {nodes[2].address} could not be checked: ")
    state = owner.recover("people", [nodes[2].address], [nodes[3].address])
    assert [h.address for h in state.holders] == [nodes[0].address, nodes[1].address,
                                                  nodes[3].address]
    record = ledger.dataset(state.ledger_id)
    assert record.holders == [h.address for h in state.holders]
    _check(owner.collect("people"), table)
    # the replacement's new share is consistent with the others (collect checks all three)
    manifest = json.loads((_files(net, 3, "people", state.gen) / "manifest.json").read_text())
    assert manifest["body"]["chunk_count"] == 3
    for node in nodes[:2]:
        assert node.terminate() == 0
        assert "node: stopped" in node.process.stdout.read()
        with ShareStore(node.home / "shares") as store:
            assert store.swept == 0 and list(store.scrub()) == []
