"""Strangers cost nothing at a node (docs/node.md, app/admission.py): who the service admits, what a
guest may upload, hostile heads, malformed keys, slow and idle clients, and the HTTP
servers (node metrics, embedded chain).

One real node in this process (ledger on an embedded chain, DHT, share store), so that
tracemalloc sees what the node allocates for a stranger's connection.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
import tracemalloc
import urllib.request

import numpy as np
import pytest

from enigma.app.home import store_name
from enigma.app.host import NodeConfig
from enigma.app.localnet import deploy
from enigma.app.metrics import MetricsServer, NodeMetrics
from enigma.app.node import Node
from enigma.app.service import (
    CLIENT_PARTY,
    NODE_PARTY,
    SERVICE_SESSION,
    Connection,
    ServiceError,
)
from enigma.ledger import Ledger, start_devchain
from enigma.ledger import devchain as devchain_module
from enigma.net import handshake as hs
from enigma.net.channel import HEADER, KIND_MESSAGE
from enigma.net.identity import Identity

from .links import preface, zero_key_certificate
from .trickle import trickling

QUOTA = 100_000


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = tmp_path_factory.mktemp("admission")
    chain = start_devchain(accounts=4)
    deploy(chain.url, chain.accounts[0], root / "deployment.json")
    config = NodeConfig(home=root / "node", rpc=chain.url, deployment=root / "deployment.json",
                        account=chain.accounts[1], upload_quota=QUOTA, handshake_timeout=1.0,
                        connection_idle=2.0, housekeeping=3600.0)
    n = Node(config)
    n.start()
    n.chain = chain
    yield n
    n.stop(grace=1.0)
    chain.stop()


def _open(node: Node, identity: Identity) -> Connection:
    return Connection.open("127.0.0.1", node.port, identity, node.node_id, timeout=10.0)


def _put(conn: Connection, chunk: int, rows: int) -> None:
    conn.request("put", [np.zeros((rows, 2), np.uint64)], dataset="people", gen=0, chunk=chunk,
                 rows=rows, t=1, point=1, columns=["age"])


def _raw_handshake(node: Node, identity: Identity) -> socket.socket:
    """A TLS link to the node's service that the test then writes to by hand (blocking)."""
    sock = socket.create_connection(("127.0.0.1", node.port))
    link = hs.dial(sock, CLIENT_PARTY, NODE_PARTY, identity, node.node_id, SERVICE_SESSION,
                   time.monotonic() + 10)
    link.sock.setblocking(True)
    return link.sock


def _closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the peer closed `sock` (reading and dropping what it sends)."""
    start = time.monotonic()
    sock.settimeout(seconds)
    with sock:
        while sock.recv(1 << 16):
            pass
    return time.monotonic() - start


def test_a_guest_uploads_within_its_quota_then_is_refused_until_its_data_is_sealed(node):
    guest = Identity.generate()
    with _open(node, guest) as conn:
        _put(conn, 0, 2500)  # 40,000 bytes of shares
        with pytest.raises(ServiceError, match="over this node's quota of 100000") as err:
            _put(conn, 1, 4000)
        assert err.value.kind == "quota"
        with pytest.raises(ServiceError, match="'job-partial' is for registered nodes") as err:
            conn.request("job-partial", parent=1)
        assert err.value.kind == "not-admitted"
        used = node.admission.unsealed_bytes(guest.public_key)
        _put(conn, 1, (QUOTA - used) // 16)  # fills the quota (files have headers too)
    assert node.admission.unsealed_bytes(guest.public_key) >= QUOTA
    with pytest.raises(ServiceError) as err:
        _open(node, guest)
    assert err.value.kind == "not-admitted" and "does not admit our key" in str(err.value)
    assert "\n" not in str(err.value)
    # The ledger paid and the node sealed the generation: the owner is a member now.
    node.store.write_manifest(store_name("people", guest.public_key, 0), bytes(32), 4e9, 2)
    with _open(node, guest) as conn:
        assert conn.request("hello")[0]["node"] == node.node_id.hex()
        with pytest.raises(ServiceError) as err:
            conn.request("job-partial", parent=1)
        assert err.value.kind != "not-admitted"


def test_without_a_quota_only_ledger_nodes_get_past_the_handshake(node):
    node_key = Identity.generate()
    ledger = Ledger.connect(node.chain.url, node.chain.accounts[2], node.ledger.deployment)
    ledger.register_node("127.0.0.1:1", node_key.public_key, ledger.params().min_deposit)
    node.admission.quota = 0
    try:
        tracemalloc.start()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        with pytest.raises(ServiceError, match="does not admit our key") as err:
            _open(node, Identity.generate())
        time.sleep(0.2)  # let the node's thread finish with the refused connection
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert err.value.kind == "not-admitted"
        # refused before the channel's buffers (2 MiB) exist: only handshake-sized bytes
        assert peak - before < 512 << 10, peak - before
        with _open(node, node_key) as conn:
            assert conn.request("hello")[0]["node"] == node.node_id.hex()
    finally:
        node.admission.quota = QUOTA


@pytest.mark.parametrize(("count", "size"), [(131_000, 16 << 10), (16_384, 16 << 10)])
def test_a_hostile_head_costs_the_node_no_memory(node, count, size):
    """Before: 131,000 frames of 16 KiB were allocated as announced (RSS 233 -> 1,401 MiB,
    kept after the close). Now the first is refused by count, the second (within the
    caps) costs nothing until bytes come, and nothing stays."""
    tracemalloc.start()
    try:
        sock = _raw_handshake(node, Identity.generate())
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        head = HEADER.pack(KIND_MESSAGE, count) + struct.pack(f"<{count}Q", *[size] * count)
        with contextlib.suppress(OSError):  # refused by count, the node hangs up mid-way
            sock.sendall(head)
        del head
        if count <= 16_384:
            time.sleep(0.5)
            socket.socket.shutdown(sock, socket.SHUT_WR)  # announce, send nothing, hang up
        assert _closed_within(sock, 5.0) < 5.0
        time.sleep(0.2)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < 16 << 20, f"peak {peak - before} bytes"
    assert current - before < 1 << 20, f"{current - before} bytes kept after the close"
    with _open(node, Identity.generate()) as conn:  # and the node serves on
        conn.request("hello")


def test_an_all_zero_key_is_one_warning_line_and_no_traceback(node, caplog):
    crashes: list[threading.ExceptHookArgs] = []
    previous, threading.excepthook = threading.excepthook, crashes.append
    try:
        with caplog.at_level(logging.INFO, logger="enigma.app.node"):
            for _ in range(3):
                sock = socket.create_connection(("127.0.0.1", node.port))
                sock.sendall(preface(zero_key_certificate(), CLIENT_PARTY, NODE_PARTY))
                assert _closed_within(sock, 5.0) < 5.0  # refused before TLS, no word
            time.sleep(0.2)
    finally:
        threading.excepthook = previous
    assert not crashes, crashes
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all(r.exc_info is None for r in warnings)
    assert all("malformed" in r.getMessage() and "\n" not in r.getMessage() for r in warnings)


def test_slow_and_idle_service_clients_are_cut_off(node):
    """Before: a timeout per read of 30 s, so a byte every few seconds held a thread for
    as long as the client liked."""
    sock = socket.create_connection(("127.0.0.1", node.port))
    with trickling(sock, hs.MAGIC, 0.2):
        elapsed = _closed_within(sock, 5.0)
    assert 0.9 < elapsed < 3.0, elapsed  # handshake_timeout = 1 s
    idle = _raw_handshake(node, Identity.generate())
    assert 1.5 < _closed_within(idle, 8.0) < 6.0  # connection_idle = 2 s


# ---- HTTP --------------------------------------------------------------------------------


def test_slow_and_idle_metrics_clients_are_cut_off():
    server = MetricsServer(NodeMetrics(), lambda: (True, {}), timeout=0.5)
    try:
        silent = socket.create_connection(("127.0.0.1", server.port))
        assert _closed_within(silent, 5.0) < 3.0  # timeout = 0.5 s
        slow = socket.create_connection(("127.0.0.1", server.port))
        with trickling(slow, b"GET /metrics HTTP/1.0\r\nX-Slow: " + b"a" * 100, 0.1):
            elapsed = _closed_within(slow, 5.0)
        assert elapsed < 3.0, elapsed  # its request line would take 12 s
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health", timeout=5) as r:
            assert r.status == 200
    finally:
        server.stop()


def test_the_embedded_chain_lets_idle_clients_go_and_refuses_huge_bodies(monkeypatch):
    monkeypatch.setattr(devchain_module, "HTTP_TIMEOUT", 0.5)
    chain = start_devchain(accounts=1)
    try:
        host, port = chain.httpd.server_address[:2]
        idle = socket.create_connection((host, port))
        assert _closed_within(idle, 5.0) < 3.0  # HTTP_TIMEOUT = 0.5 s
        huge = socket.create_connection((host, port))
        huge.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n")
        huge.settimeout(5)
        assert huge.recv(100).startswith(b"HTTP/1.1 413")
        huge.close()
        assert Ledger.connect(chain.url, chain.accounts[0]).w3.eth.block_number >= 0
    finally:
        chain.stop()
