"""The DHT over real UDP sockets on 127.0.0.1: five nodes in-process, and one in its own process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from kademlia.node import Node

from enigma.storage.dht import DhtNode, VerifyingStorage, _routing_id
from enigma.storage.records import (
    MAX_RECORD_BYTES,
    DhtError,
    InvalidRecordError,
    RecordTooLargeError,
    record_key,
    sign_record,
)

OWNER = Ed25519PrivateKey.from_private_bytes(b"\x11" * 32)
OWNER_ID = OWNER.public_key().public_bytes_raw()


@pytest.fixture
def network() -> Iterator[list[DhtNode]]:
    nodes = [DhtNode.start(rpc_timeout=1.0, timeout=20)]
    for i in range(1, 5):
        # each joins through the one before it, so routing has to spread the contacts
        nodes.append(DhtNode.start(bootstrap=[nodes[i - 1].address], rpc_timeout=1.0,
                                   timeout=20))
    yield nodes
    for node in nodes:
        node.stop()


def _held_by(nodes: list[DhtNode], key: bytes) -> list[int]:
    routing = _routing_id(key)
    return [i for i, n in enumerate(nodes) if n._server.storage.get(routing) is not None]


def test_endpoint_published_on_one_node_is_found_from_another(network: list[DhtNode]) -> None:
    assert network[1].publish_endpoint({"mpc": 7001, "store": 7002}) >= 1
    endpoint = network[4].find_endpoint(network[1].node_id)
    assert endpoint is not None
    assert (endpoint.host, endpoint.ports) == ("127.0.0.1", {"mpc": 7001, "store": 7002})
    assert endpoint.transport_key == network[1].node_id
    assert network[4].find_endpoint(network[2].node_id) is None


def test_lookup_crawls_to_the_few_nodes_that_hold_the_record(network: list[DhtNode]) -> None:
    owner = DhtNode.start(bootstrap=[network[0].address], signing_key=OWNER, rpc_timeout=1.0)
    network.append(owner)
    owner.publish_chunk("ds-7/3", [network[1].node_id, network[2].node_id])
    key = record_key("chunk", "ds-7/3", OWNER_ID)
    # keep the record on two nodes only, as when k is far below the network size
    for node in [network[0], network[1], network[4], owner]:
        node._server.storage.data.pop(_routing_id(key))
    assert _held_by(network, key) == [2, 3]
    holders = network[0].find_chunk_holders("ds-7/3", OWNER_ID)
    assert holders == [network[1].node_id, network[2].node_id]


def test_dataset_pointer_round_trip_and_newest_version_wins(network: list[DhtNode]) -> None:
    owner = DhtNode.start(bootstrap=[network[0].address], signing_key=OWNER, rpc_timeout=1.0)
    network.append(owner)
    holders = [n.node_id for n in network[:3]]
    owner.publish_dataset("ds-9", ["ds-9/0", "ds-9/1"], holders)
    pointer = network[3].find_dataset("ds-9", OWNER_ID)
    assert pointer is not None
    assert pointer.chunk_ids == ["ds-9/0", "ds-9/1"] and pointer.holders == holders
    owner.set("dataset", "ds-9", {"chunks": ["ds-9/0"], "holders": []}, seq=2**62)
    owner.set("dataset", "ds-9", {"chunks": ["old"], "holders": []}, seq=5)  # a replay
    assert network[2].get("dataset", "ds-9", OWNER_ID).body["chunks"] == ["ds-9/0"]
    assert network[2].find_dataset("ds-9", network[0].node_id) is None


def test_tampered_copies_are_rejected_with_a_clear_error(network: list[DhtNode]) -> None:
    owner = DhtNode.start(bootstrap=[network[0].address], signing_key=OWNER, rpc_timeout=1.0)
    network.append(owner)
    owner.publish_chunk("ds-1/0", [network[1].node_id])
    key = record_key("chunk", "ds-1/0", OWNER_ID)
    routing = _routing_id(key)
    assert _held_by(network, key) == [0, 1, 2, 3, 4, 5]
    fields = json.loads(network[0]._server.storage.get(routing))
    fields["body"]["holders"] = ["ee" * 32]
    tampered = json.dumps(fields)

    def serve_tampered(nodes: list[DhtNode]) -> None:
        # lying nodes alter the copy they serve, bypassing their own admission check
        for node in nodes:
            node._server.storage.data[routing] = (time.monotonic(), tampered)

    reader = network[4]
    reader._server.storage.data.pop(routing)
    serve_tampered([*network[:3], owner])
    # one honest copy (node 3) is enough: the lookup crawls past the lies
    assert reader.find_chunk_holders("ds-1/0", OWNER_ID) == [network[1].node_id]
    # (the lookup also repaired a lying node's copy, as Kademlia caches a found value)
    reader._server.storage.data.pop(routing, None)
    serve_tampered([*network[:4], owner])
    with pytest.raises(InvalidRecordError, match=r"ds-1/0.*rejected.*does not verify"):
        reader.find_chunk_holders("ds-1/0", OWNER_ID)


def test_strangers_cannot_plant_unsigned_or_misfiled_records(network: list[DhtNode]) -> None:
    owner = DhtNode.start(bootstrap=[network[0].address], signing_key=OWNER, rpc_timeout=1.0)
    network.append(owner)
    owner.publish_chunk("ds-2/0", [network[3].node_id])
    key = record_key("chunk", "ds-2/0", OWNER_ID)
    routing = _routing_id(key)
    stranger = network[4]
    fields = json.loads(sign_record(OWNER, "chunk", "ds-2/0", {"holders": []}, 2**62).encode())
    del fields["sig"]
    unsigned = json.dumps(fields)
    misfiled = sign_record(Ed25519PrivateKey.generate(), "chunk", "ds-2/0",
                           {"holders": []}, 2**62).encode()
    for target in network[:4]:
        for value in (unsigned, misfiled):
            assert not stranger._call(
                stranger._server.protocol.call_store(
                    Node(target._server.node.id, *target.address), routing, value),
                "planting")[1]
    assert network[0].find_chunk_holders("ds-2/0", OWNER_ID) == [network[3].node_id]
    # An unsigned value that slipped into a table is refused on read, by name.
    for node in network:
        node._server.storage.data.pop(routing, None)
    network[2]._server.storage.data[routing] = (0.0, unsigned)
    with pytest.raises(InvalidRecordError, match="unsigned"):
        network[2].find_chunk_holders("ds-2/0", OWNER_ID)


def test_largest_record_travels_and_oversize_is_refused(network: list[DhtNode]) -> None:
    def record_of(pad: int) -> dict[str, str]:
        return {"pad": "x" * pad}

    base = len(sign_record(OWNER, "dataset", "big", record_of(0), 1).encode().encode())
    exact = record_of(MAX_RECORD_BYTES - base)
    assert len(sign_record(OWNER, "dataset", "big", exact, 1).encode()) == MAX_RECORD_BYTES
    owner = DhtNode.start(bootstrap=[network[0].address], signing_key=OWNER, rpc_timeout=1.0)
    network.append(owner)
    assert owner.set("dataset", "big", exact, seq=1) >= 4
    assert network[3].get("dataset", "big", OWNER_ID).body == exact
    with pytest.raises(RecordTooLargeError, match=f"{MAX_RECORD_BYTES + 1} bytes"):
        owner.set("dataset", "big", record_of(MAX_RECORD_BYTES - base + 1), seq=2)


def test_stop_is_clean_and_the_rest_carries_on(network: list[DhtNode]) -> None:
    network[0].publish_endpoint({"mpc": 1})
    stopped = network[3]
    stopped.stop()
    stopped.stop()
    assert not stopped._thread.is_alive()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", stopped.port))  # the port was released
    assert network[4].find_endpoint(network[0].node_id).ports == {"mpc": 1}


def test_busy_port_is_a_clear_error(network: list[DhtNode]) -> None:
    with pytest.raises(DhtError, match=f"cannot listen on UDP 127.0.0.1:{network[0].port}"):
        DhtNode.start(port=network[0].port)


def test_bootstrap_that_nobody_answers_is_a_clear_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        with pytest.raises(DhtError, match=f"127.0.0.1:{port}.*UDP reaches them"):
            DhtNode.start(bootstrap=[("localhost", port)], rpc_timeout=0.3)


def test_node_in_another_process_finds_and_is_found(network: list[DhtNode]) -> None:
    code = "from enigma.storage.commands import dht; dht()"
    server = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--bootstrap", f"127.0.0.1:{network[0].port}",
         "--service", "mpc=7100"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("dht: listening on 127.0.0.1:"), line + server.stderr.read()
        remote_id = bytes.fromhex(line.split(" as ")[1].strip())
        # its endpoint record, published from the other process, is found here
        endpoint = network[3].find_endpoint(remote_id)
        assert endpoint is not None and endpoint.ports == {"mpc": 7100}
        # and a record published here is found by a client in a third process
        owner = DhtNode.start(bootstrap=[network[0].address], signing_key=OWNER,
                              rpc_timeout=1.0)
        network.append(owner)
        owner.publish_chunk("ds-5/0", [remote_id])
        remote_port = line.split(" as ")[0].rsplit(":", 1)[1]
        found = subprocess.run(
            [sys.executable, "-c", code, "get", "chunk", "ds-5/0", "--writer", OWNER_ID.hex(),
             "--bootstrap", f"127.0.0.1:{remote_port}"],
            capture_output=True, text=True, timeout=60,
        )
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["body"] == {"holders": [remote_id.hex()]}
    finally:
        server.terminate()
        out, err = server.communicate(timeout=20)
    assert server.returncode == 0, err
    assert "dht: stopped" in out


def test_node_tables_keep_the_newest_valid_version_and_renew_its_age() -> None:
    table = VerifyingStorage()
    v1 = sign_record(OWNER, "chunk", "c", {"holders": []}, 1).encode()
    v2 = sign_record(OWNER, "chunk", "c", {"holders": ["ab" * 32]}, 2).encode()
    routing = _routing_id(record_key("chunk", "c", OWNER_ID))
    assert table.admit(routing, v2)
    assert not table.admit(routing, v1)  # a replay of an older version
    assert not table.admit(_routing_id(b"elsewhere"), v2)  # filed under another key
    born = table.data[routing][0]
    assert table.admit(routing, v2)  # republished: same value, renewed age
    assert table.data[routing][0] > born
    assert table.get(routing) == v2
    table.data[routing] = (born, v2.replace('"c"', '"d"'))  # rotted in memory
    assert table.admit(routing, v1)
    assert table.get(routing) == v1


def _contacts(node: DhtNode) -> set[tuple[str, int]]:
    """Every contact in a node's routing table, replacement caches included."""
    router = node._server.protocol.router
    return {(n.ip, n.port) for b in router.buckets
            for n in [*b.nodes.values(), *b.replacement_nodes.values()]}


def test_short_lived_clients_leave_no_dead_contacts_and_publishing_stays_fast() -> None:
    servers = [DhtNode.start(rpc_timeout=0.5, timeout=20)]
    for i in range(1, 3):
        servers.append(DhtNode.start(bootstrap=[servers[i - 1].address], rpc_timeout=0.5,
                                     timeout=20))
    try:
        for i in range(25):  # CLI commands: join, look up, publish, exit
            with DhtNode.start(bootstrap=[servers[i % 3].address], signing_key=OWNER,
                               rpc_timeout=0.5, client=True) as command:
                assert command.find_endpoint(servers[0].node_id) is None
                assert command.publish_chunk(f"ds-9/{i}", [servers[1].node_id]) >= 1
        alive = {s.address for s in servers}
        for server in servers:
            assert _contacts(server) <= alive, "a client was kept as a routing contact"
        with DhtNode.start(bootstrap=[servers[0].address], signing_key=OWNER,
                           rpc_timeout=0.5, client=True) as owner:
            t0 = time.perf_counter()
            for i in range(25):
                owner.publish_chunk(f"ds-9/{i}", [servers[2].node_id])
            assert time.perf_counter() - t0 < 2.0  # one dead contact would cost 0.5 s here
            assert owner.find_chunk_holders("ds-9/24", OWNER_ID) == [servers[2].node_id]
            assert _contacts(owner) == alive  # the client itself routes through the servers
    finally:
        for server in servers:
            server.stop()
