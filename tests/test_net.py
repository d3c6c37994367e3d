"""The mesh between real OS processes: round trips, strangers, wrong keys, a tampering relay,
peers that crash or stall.

The test process is party 0 where it helps (so hypothesis can drive many messages through
one running quorum); the other parties are spawned processes running the functions below.
Attacks on the stream are made by a relay between two parties that holds no keys: it sees
only the plaintext record headers, exactly what an attacker on the network sees.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import multiprocessing as mp
import os
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enigma.net import (
    AuthenticationError,
    Identity,
    Mesh,
    PeerDisconnected,
    PeerInfo,
    PeerTimeout,
    ProtocolError,
    TamperedFrame,
    TruncatedFrame,
    local_quorum,
)
from enigma.net.channel import CHUNK, INLINE
from enigma.net.errors import SetupStopped
from enigma.net.handshake import PREFACE_SIZE

CTX = mp.get_context("spawn")


# ---- what the spawned parties do -----------------------------------------------------------


def _echo(mesh: Mesh) -> int:
    """Send every message from party 0 back to it until an empty message arrives."""
    count = 0
    while frames := mesh.recv(0):
        mesh.send(0, *frames)
        count += 1
    return count


def _array(party: int, n: int) -> np.ndarray:
    """The test data party `party` sends in a round of n elements, reproducible anywhere."""
    return np.random.default_rng([party, n]).integers(0, 2**64, size=(n, 2), dtype=np.uint64)


def _all_to_all(mesh: Mesh, sizes: list[int]) -> dict[int, list[str]]:
    """One broadcast per size; returns, per sender, the SHA-256 of every received frame."""
    got: dict[int, list[str]] = {j: [] for j in mesh.others}
    for n in sizes:
        for j, frames in mesh.broadcast(_array(mesh.party, n), struct.pack("<Q", n)).items():
            assert bytes(frames[1]) == struct.pack("<Q", n)
            got[j].append(hashlib.sha256(frames[0]).hexdigest())
    return got


def _send_three(mesh: Mesh) -> None:
    for i in range(3):
        mesh.send(0, bytes([i]) * 100)
    time.sleep(3)


def _send_long(mesh: Mesh) -> None:
    """A small message, then one of 40,000 bytes: one TLS write, three TLS records."""
    mesh.send(0, bytes([0]) * 100)
    mesh.send(0, bytes([1]) * 40_000)
    time.sleep(3)


def _send_big(mesh: Mesh) -> None:
    mesh.send(0, bytes(600), bytes(600))
    time.sleep(2)


def _stall(mesh: Mesh) -> None:
    time.sleep(6)


def _crash(mesh: Mesh) -> None:
    os._exit(3)


def _party(
    role: Callable, me: int, secret: bytes, peers: list[PeerInfo], session: bytes,
    args: tuple, results: mp.Queue, timeout: float = 20.0, ready: Any = None,
) -> None:
    if ready is not None:
        ready.set()
    try:
        with Mesh(me, Identity.from_private_bytes(secret), peers, session, timeout=timeout) as m:
            results.put((me, "ok", role(m, *args)))
    except Exception as exc:
        results.put((me, type(exc).__name__, (str(exc), getattr(exc, "party", None))))


def _start(role: Callable, me: int, identities, peers, session: bytes, *args,
           results: mp.Queue, timeout: float = 20.0) -> mp.Process:
    """Party `me` in its own process, returned once that process has imported everything and
    is about to join: the short connect timeouts of the tests below then measure the
    protocol, not how long a spawned interpreter takes to start on a loaded machine."""
    ready = CTX.Event()
    p = CTX.Process(
        target=_party, daemon=True,
        args=(role, me, identities[me].private_bytes(), peers, session, args, results, timeout,
              ready),
    )
    p.start()
    if not ready.wait(120):
        raise RuntimeError(f"party {me}'s process did not start within 120 s")
    return p


def _join(procs: list[mp.Process]) -> None:
    for p in procs:
        p.join(15)
        if p.is_alive():
            p.kill()
            p.join()


# ---- round trips ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_quorum():
    """Party 0 here, parties 1 and 2 echo in their own processes."""
    identities, peers = local_quorum(3)
    results = CTX.Queue()
    # The echoing parties outlive the tests that use them, so they wait long for party 0.
    procs = [_start(_echo, j, identities, peers, b"echo", results=results, timeout=300)
             for j in (1, 2)]
    mesh = Mesh(0, identities[0], peers, b"echo", timeout=20)
    yield mesh
    for j in (1, 2):
        mesh.send(j)
    replies = sorted(results.get(timeout=20) for _ in procs)
    mesh.close()
    _join(procs)
    assert [status for _, status, _ in replies] == ["ok", "ok"], replies


frame_sizes = st.lists(
    st.sampled_from([0, 1, 2, 7, 1000, INLINE // 16, INLINE // 16 + 1,
                     CHUNK // 16 - 1, CHUNK // 16, CHUNK // 16 + 1, 200_000]),
    min_size=1, max_size=4,
)


@settings(max_examples=25)
@given(sizes=frame_sizes, seed=st.integers(0, 2**32 - 1))
def test_arrays_round_trip_to_two_peers(echo_quorum: Mesh, sizes: list[int], seed: int):
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 2**64, size=(n, 2), dtype=np.uint64) for n in sizes]
    for j in (1, 2):
        echo_quorum.send(j, *arrays)
    for j in (1, 2):
        frames = echo_quorum.recv(j)
        assert len(frames) == len(arrays)
        for got, sent in zip(frames, arrays, strict=True):
            assert np.array_equal(np.frombuffer(got, np.uint64).reshape(-1, 2), sent)


def test_buffers_of_every_kind_round_trip(echo_quorum: Mesh):
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    echo_quorum.send(1, b"bytes", bytearray(b"ba"), memoryview(b"mv"), a, b"")
    frames = echo_quorum.recv(1)
    assert [bytes(f) for f in frames[:3]] == [b"bytes", b"ba", b"mv"]
    assert np.array_equal(np.frombuffer(frames[3], np.int32).reshape(3, 4), a)
    assert len(frames[4]) == 0
    with pytest.raises(ValueError, match="non-contiguous"):
        echo_quorum.send(1, a[:, ::2])


def test_messages_of_many_frames_round_trip_up_to_the_limit(echo_quorum: Mesh):
    frames = [bytes([i % 251]) * (i % 3) for i in range(9000)]  # head alone > INLINE
    echo_quorum.send(1, *frames)
    assert [bytes(f) for f in echo_quorum.recv(1)] == frames
    with pytest.raises(ValueError, match="at most"):
        echo_quorum.send(1, *([b""] * (CHUNK // 8)))


def test_sending_to_oneself_is_refused_and_bytes_are_counted(echo_quorum: Mesh):
    with pytest.raises(ValueError, match="not a peer"):
        echo_quorum.send(0, b"to myself")
    sent, received = echo_quorum.bytes_sent, echo_quorum.bytes_received
    echo_quorum.send(2, b"x", bytes(5000))
    assert [len(f) for f in echo_quorum.recv(2)] == [1, 5000]
    assert (echo_quorum.bytes_sent - sent, echo_quorum.bytes_received - received) == (5001, 5001)


@pytest.mark.parametrize("parties", [2, 3])
def test_all_to_all_rounds_deliver_every_array(parties: int):
    # 16 MiB each way at once is more than the socket buffers hold: no deadlock allowed.
    sizes = [0, 1, 5000, CHUNK // 16 + 3, 1 << 20]
    identities, peers = local_quorum(parties)
    results = CTX.Queue()
    procs = [_start(_all_to_all, i, identities, peers, b"a2a", sizes, results=results)
             for i in range(parties)]
    replies = sorted(results.get(timeout=60) for _ in procs)
    _join(procs)
    for me, status, got in replies:
        assert status == "ok", got
        for j, hashes in got.items():
            assert hashes == [hashlib.sha256(_array(j, n)).hexdigest() for n in sizes], (me, j)


def test_a_message_larger_than_max_message_is_refused():
    identities, peers = local_quorum(2)
    results = CTX.Queue()
    procs = [_start(_send_big, 1, identities, peers, b"big", results=results)]
    with Mesh(0, identities[0], peers, b"big", timeout=10, max_message=1000) as mesh:
        with pytest.raises(ProtocolError, match="1200 bytes, more than the 1000") as err:
            mesh.recv(1)
        assert err.value.party == 1
    _join(procs)


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_a_quorum_over_ipv6():
    identities, peers = local_quorum(2, host="::1")
    results = CTX.Queue()
    procs = [_start(_all_to_all, i, identities, peers, b"v6", [3], results=results)
             for i in range(2)]
    replies = sorted(results.get(timeout=60) for _ in procs)
    _join(procs)
    assert [(me, status) for me, status, _ in replies] == [(0, "ok"), (1, "ok")], replies


# ---- who may connect -----------------------------------------------------------------------


def test_a_stranger_is_refused_and_the_real_party_still_gets_in():
    identities, peers = local_quorum(2)
    stranger = Identity.generate()
    # The stranger claims to be party 1, presenting its own key.
    its_view = [peers[0], PeerInfo(1, peers[1].host, peers[1].port, stranger.public_key)]
    results = CTX.Queue()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(Mesh, 0, identities[0], peers, b"s", 20.0)
        procs = [_start(_echo, 1, [None, stranger], its_view, b"s", results=results)]
        who, kind, (message, party) = results.get(timeout=30)
        assert (who, kind, party) == (1, "AuthenticationError", 0)
        assert "refused our certificate" in message
        procs.append(_start(_echo, 1, identities, peers, b"s", results=results))
        mesh = future.result(timeout=30)
    with mesh:
        assert [e.party for e in mesh.rejected] == [1]
        assert isinstance(mesh.rejected[0], AuthenticationError)
        mesh.send(1, b"hello")
        assert bytes(mesh.recv(1)[0]) == b"hello"
        mesh.send(1)
        assert results.get(timeout=20) == (1, "ok", 1)
    _join(procs)


def test_garbage_and_silence_on_the_port_do_not_stop_the_real_party():
    identities, peers = local_quorum(2)
    results = CTX.Queue()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(Mesh, 0, identities[0], peers, b"g", 20.0)
        address = (peers[0].host, peers[0].port)
        for _ in range(100):  # until party 0 listens
            try:
                garbage = socket.create_connection(address)
                break
            except ConnectionRefusedError:
                time.sleep(0.05)
        garbage.sendall(b"GET / HTTP/1.1\r\n" * 6)
        silent = socket.create_connection(address)  # says nothing, then hangs up
        silent.close()
        procs = [_start(_echo, 1, identities, peers, b"g", results=results)]
        mesh = future.result(timeout=30)
        garbage.close()
    with mesh:
        reasons = [str(e) for e in mesh.rejected]
        assert any("not an enigma-net TLS peer" in r for r in reasons), reasons
        mesh.send(1, b"ok")
        assert bytes(mesh.recv(1)[0]) == b"ok"
        mesh.send(1)
        assert results.get(timeout=20) == (1, "ok", 1)
    _join(procs)


def test_a_wrong_key_for_a_known_party_is_rejected_on_both_sides():
    identities, peers = local_quorum(2)
    wrong = Identity.generate().public_key
    results = CTX.Queue()
    # Party 0 expects another key for party 1: party 1 is told it was rejected.
    zero_view = [peers[0], PeerInfo(1, peers[1].host, peers[1].port, wrong)]
    procs = [_start(_echo, 1, identities, peers, b"w", results=results)]
    with pytest.raises(AuthenticationError, match="party 1 did not complete") as err:
        Mesh(0, identities[0], zero_view, b"w", connect_timeout=3.0)
    assert err.value.party == 1
    who, kind, (message, party) = results.get(timeout=20)
    assert (who, kind, party) == (1, "AuthenticationError", 0)
    assert "refused our certificate" in message
    # Party 1 expects another key for party 0: it refuses party 0's certificate itself.
    one_view = [PeerInfo(0, peers[0].host, peers[0].port, wrong), peers[1]]
    procs.append(_start(_echo, 1, identities, one_view, b"w", results=results))
    with pytest.raises(AuthenticationError, match="party 1") as err:
        Mesh(0, identities[0], peers, b"w", connect_timeout=3.0)
    assert "does not accept our key" in str(err.value)
    _who, kind, (message, party) = results.get(timeout=20)
    assert (kind, party) == ("AuthenticationError", 0) and "not its registered key" in message
    _join(procs)


def test_a_party_of_another_session_is_refused():
    identities, peers = local_quorum(2)
    results = CTX.Queue()
    procs = [_start(_echo, 1, identities, peers, b"session B", results=results)]
    with pytest.raises(AuthenticationError):
        Mesh(0, identities[0], peers, b"session A", connect_timeout=3.0)
    who, kind, (message, party) = results.get(timeout=20)
    assert (who, kind, party) == (1, "AuthenticationError", 0) and "another session" in message
    _join(procs)


def test_a_missing_party_is_named_after_the_connect_timeout():
    identities, peers = local_quorum(3)
    start = time.monotonic()
    with pytest.raises(PeerTimeout, match="party 1 did not connect") as err:
        Mesh(0, identities[0], peers, b"m", connect_timeout=1.0)
    assert err.value.party == 1 and time.monotonic() - start < 3
    with pytest.raises(PeerTimeout, match="could not reach party 0") as err:
        Mesh(2, identities[2], peers, b"m", connect_timeout=1.0)
    assert err.value.party == 0


def test_a_stopped_setup_names_whom_it_waited_for_and_whether_that_was_a_whole_timeout():
    identities, peers = local_quorum(3)
    for waited, first_hand in ((0.0, False), (0.6, True)):
        start = time.monotonic()
        with pytest.raises(SetupStopped, match="party 1 had not connected") as err:
            Mesh(0, identities[0], peers, b"m", timeout=0.5, connect_timeout=30.0,
                 stop=lambda w=waited, s=start: time.monotonic() - s >= w)
        assert err.value.party == 1 and err.value.first_hand is first_hand
        assert time.monotonic() - start < waited + 1.0  # not the 30 s of connect_timeout
    with pytest.raises(SetupStopped, match="party 0 had not connected") as err:  # dialing
        Mesh(2, identities[2], peers, b"m", timeout=0.5, connect_timeout=30.0,
             stop=lambda: True)
    assert err.value.party == 0 and not err.value.first_hand


# ---- a relay that attacks the stream -------------------------------------------------------


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        part = sock.recv(n - len(data))
        if not part:
            raise ConnectionError("closed")
        data += part
    return data


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(1 << 16):
            dst.sendall(data)
    except OSError:
        pass


#: A TLS record carrying one of `_send_three`'s messages: 100 bytes, our 16-byte header,
#: TLS 1.3's content type byte and 16-byte tag.
MESSAGE_RECORD = 100 + 16 + 1 + 16


def _connect_when_listening(target: tuple[str, int], wait: float = 120.0) -> socket.socket:
    """The child can reach the relay before party 0 (this process) has bound its own port:
    the relay then waits for it, instead of dying and leaving the child's connection open
    and unanswered until every connect timeout has run out (a flake under load)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return socket.create_connection(target)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _relay(listener: socket.socket, target: tuple[str, int], attack: str) -> None:
    """Forward party 1 -> party 0 TLS record by record, attacking party 1's messages.

    The preface and the handshake pass untouched. From the first record that carries a
    message (application data of MESSAGE_RECORD bytes) on, the relay holds what party 1
    sends until it goes quiet (2 s: a loaded machine can pause a sender between two
    messages for longer than the trickle's 0.5 s), then delivers it changed by `attack`.
    """
    a, _ = listener.accept()
    b = _connect_when_listening(target)
    threading.Thread(target=_pump, args=(b, a), daemon=True).start()
    try:
        preface = _read(a, PREFACE_SIZE)
        b.sendall(preface + _read(a, struct.unpack_from("<H", preface, PREFACE_SIZE - 2)[0]))
        records: list[bytes] = []
        while True:
            if records:
                a.settimeout(0.5 if attack == "trickle" else 2.0)
            try:
                header = _read(a, 5)
            except (TimeoutError, ConnectionError):
                break
            record = header + _read(a, struct.unpack_from(">H", header, 3)[0])
            if records or (record[0] == 0x17 and len(record) == 5 + MESSAGE_RECORD):
                records.append(record)
            else:
                b.sendall(record)
        if attack == "replay":
            order = [records[0], records[0]]
        elif attack == "reorder":
            order = [records[0], records[2], records[1]]
        elif attack == "truncate":  # the second message, cut after its first TLS record
            order = [records[0], records[1]]
        elif attack == "trickle":  # message 2 one byte per 0.25 s: bytes, but no record
            b.sendall(records[0])
            for byte in records[1][:12]:
                time.sleep(0.25)
                b.sendall(bytes([byte]))
            order = []
        else:  # tamper: flip one ciphertext bit of message 2
            bad = bytearray(records[1])
            bad[5 + 10] ^= 1
            order = [records[0], bytes(bad)]
        b.sendall(b"".join(order))
        time.sleep(0.3)
    finally:
        for s in (b, a):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@pytest.mark.parametrize(
    ("attack", "error", "timeout"),
    [("replay", TamperedFrame, 10.0), ("reorder", TamperedFrame, 10.0),
     ("truncate", TruncatedFrame, 10.0), ("tamper", TamperedFrame, 10.0),
     ("trickle", PeerTimeout, 1.0)],
)
def test_a_relay_cannot_replay_reorder_truncate_alter_or_trickle(
    attack: str, error: type, timeout: float
):
    """TLS tells no replay from a reordering or an alteration: each is a record that fails
    its authentication (TamperedFrame). A stream cut inside a message is a TruncatedFrame."""
    identities, peers = local_quorum(2)
    listener = socket.create_server(("127.0.0.1", 0))
    via_relay = [PeerInfo(0, "127.0.0.1", listener.getsockname()[1], peers[0].public_key),
                 peers[1]]
    relay = threading.Thread(
        target=_relay, args=(listener, (peers[0].host, peers[0].port), attack), daemon=True
    )
    relay.start()
    results = CTX.Queue()
    role = _send_long if attack == "truncate" else _send_three
    procs = [_start(role, 1, identities, via_relay, b"r", results=results)]
    # connect_timeout bounds the child's handshake through the relay, which a loaded
    # machine can hold up for seconds beside a fault matrix on the other worker
    with Mesh(0, identities[0], peers, b"r", timeout=timeout, connect_timeout=60) as mesh:
        assert bytes(mesh.recv(1)[0]) == bytes([0]) * 100
        start = time.monotonic()
        with pytest.raises(error) as err:
            mesh.recv(1)
        assert time.monotonic() - start < 2 * timeout
        assert err.value.party == 1 and "party 1" in str(err.value)
        with pytest.raises(error):  # the channel stays dead
            mesh.recv(1)
    relay.join(10)
    listener.close()
    _join(procs)


# ---- peers that go away --------------------------------------------------------------------


def test_a_crashed_peer_fails_fast_and_a_stalled_one_times_out():
    identities, peers = local_quorum(3)
    results = CTX.Queue()
    procs = [_start(_stall, 1, identities, peers, b"d", results=results),
             _start(_crash, 2, identities, peers, b"d", results=results)]
    with Mesh(0, identities[0], peers, b"d", timeout=1.0, connect_timeout=20) as mesh:
        start = time.monotonic()
        with pytest.raises(PeerDisconnected, match="party 2") as err:
            mesh.recv(2)
        assert isinstance(err.value, PeerTimeout) and err.value.party == 2
        assert time.monotonic() - start < 1.0
        start = time.monotonic()
        with pytest.raises(PeerTimeout, match="party 1 sent nothing for 1 s"):
            mesh.recv(1)
        assert 0.9 < time.monotonic() - start < 2.0
        start = time.monotonic()  # more than the socket buffers hold, to a peer that never reads
        with pytest.raises(PeerTimeout, match="party 1 accepted no data for 1 s"):
            mesh.send(1, np.zeros(64 << 20, np.uint8))
        assert 0.9 < time.monotonic() - start < 2.5
    _join(procs)
    with pytest.raises(queue.Empty):  # party 2 died before it could report anything
        while True:
            assert results.get(timeout=0.5)[0] != 2
