"""Strangers cost nothing at the transport: malformed keys, foreign certificates, trickled
handshakes, refused keys and hostile message headers (docs/transport.md).

An attacker here is a raw socket that writes the preface itself, or a TLS peer that
writes our framing itself, so it can send what no honest `dial` or `Channel.send` would:
a certificate for the all-zero key, someone else's certificate, one byte at a time, a
header announcing 131,000 frames of 16 KiB.
"""

from __future__ import annotations

import concurrent.futures
import select
import socket
import struct
import time
import tracemalloc

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from enigma.net import (
    AuthenticationError,
    Identity,
    Mesh,
    PeerTimeout,
    ProtocolError,
    local_quorum,
    tls,
)
from enigma.net import handshake as hs
from enigma.net.channel import HEADER, KIND_MESSAGE, MAX_FRAMES, Channel
from enigma.net.errors import MalformedKey, NotAdmitted
from enigma.net.identity import key_defect
from enigma.net.transcript import session_id

from .links import certificate_for, preface, tcp_pair, tls_pair, zero_key_certificate
from .trickle import trickling

SID = session_id(b"strangers")
LISTENER = Identity.generate()
#: The eight points of order dividing 8 (RFC 8032 encodings; libsodium's blocklist).
SMALL_ORDER = [bytes(32), b"\x01" + bytes(31), bytes(31) + b"\x80",
               bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
               bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
               bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
               bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
               bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa")]


def _listen(sock: socket.socket, key: bytes | None, **kw: object) -> hs.Link | Exception:
    """Party 0's side, expecting `key` for party 1 (None: any key, as the node service)."""
    key_of = None if key is None else (lambda p: key if p == 1 else None)
    kw.setdefault("deadline", time.monotonic() + 5)
    try:
        return hs.accept(sock, 0, LISTENER, key_of, SID, **kw)
    except Exception as exc:  # the test inspects what the listener raised
        return exc


def _closed(sock: socket.socket) -> bool:
    """Whether the peer hung up on us (without a word)."""
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_small_order_and_off_curve_keys_are_malformed_real_keys_are_not():
    for key in SMALL_ORDER:
        assert "small order" in key_defect(key), key.hex()
    assert "y >= p" in key_defect(b"\xff" * 32)
    assert "32" in key_defect(bytes(31))
    assert all(key_defect(Identity.generate().public_key) is None for _ in range(50))


@pytest.mark.parametrize("expected", [bytes(32), None], ids=["mesh", "service"])
def test_a_certificate_for_the_all_zero_key_is_refused_in_one_line(expected):
    """Why it matters: OpenSSL accepts an all-zero signature under the all-zero key for
    about a quarter of all messages, so a key nobody holds could get in by retrying."""
    cert = zero_key_certificate()
    dialer, listener = tcp_pair()
    with dialer, listener, concurrent.futures.ThreadPoolExecutor(1) as pool:
        result = pool.submit(_listen, listener, expected)
        dialer.sendall(preface(cert))
        error = result.result(5)
        listener.close()
        assert _closed(dialer)
    assert isinstance(error, MalformedKey), error
    assert "malformed" in str(error) and "small order" in str(error)
    assert "\n" not in str(error)


def test_a_certificate_that_is_not_ed25519_or_too_long_is_refused():
    p256 = ec.generate_private_key(ec.SECP256R1())
    for payload, why in [(preface(certificate_for(p256.public_key(), p256, hashes.SHA256())),
                          "no Ed25519 certificate"),
                         (struct.pack("<16sHHH", hs.MAGIC, 1, 0, 0xFFFF), "at most 1024"),
                         (b"GET / HTTP/1.1\r\n\r\n" + bytes(8), "not an enigma-net TLS peer")]:
        dialer, listener = tcp_pair()
        with dialer, listener, concurrent.futures.ThreadPoolExecutor(1) as pool:
            result = pool.submit(_listen, listener, None)
            dialer.sendall(payload)
            error = result.result(5)
        assert isinstance(error, AuthenticationError) and why in str(error), error


def test_someone_else_s_certificate_does_not_get_a_stranger_in():
    """Certificates travel in clear: a stranger may announce party 1's. TLS then makes it
    prove that key, and it holds only its own (the listener refuses the handshake)."""
    victim, stranger = Identity.generate(), Identity.generate()
    dialer, listener = tcp_pair()
    with dialer, listener, concurrent.futures.ThreadPoolExecutor(1) as pool:
        result = pool.submit(_listen, listener, victim.public_key)
        dialer.sendall(preface(tls.certificate(victim)))
        conn = tls.credentials(stranger).client.wrap_socket(
            dialer, server_hostname=tls.session_name(SID, 1, 0))
        try:  # TLS 1.3: the client is done first, then the server's alert comes
            conn.sendall(hs.CONFIRMED)
            reply: bytes | OSError = conn.recv(1)
        except OSError as exc:
            reply = exc
        error = result.result(5)
    assert isinstance(reply, OSError), reply  # the listener's alert, or its hang-up
    assert isinstance(error, AuthenticationError), error
    assert "TLS handshake with party 1 failed" in str(error)


def test_a_trickled_handshake_is_cut_off_at_its_deadline():
    """Before: a timeout per read, so one byte every 0.2 s kept the listener forever."""
    dialer, listener = tcp_pair()
    hello = preface(tls.certificate(Identity.generate()))
    with dialer, listener, trickling(dialer, hello, 0.2):
        start = time.monotonic()
        error = _listen(listener, Identity.generate().public_key,
                        deadline=time.monotonic() + 1.0)
        elapsed = time.monotonic() - start
    assert isinstance(error, PeerTimeout) and "too slow" in str(error), error
    assert 0.9 < elapsed < 3.0  # the preface alone would take a minute


def test_a_proven_key_the_policy_refuses_is_told_so_in_one_line():
    dialer_identity = Identity.generate()
    seen: list[bytes] = []

    def admit(key: bytes) -> bool:
        seen.append(key)
        return False

    dialer, listener = tcp_pair()
    with dialer, listener, concurrent.futures.ThreadPoolExecutor(1) as pool:
        result = pool.submit(_listen, listener, dialer_identity.public_key, admit=admit)
        with pytest.raises(NotAdmitted, match="does not admit it") as err:
            hs.dial(dialer, 1, 0, dialer_identity, LISTENER.public_key, SID,
                    time.monotonic() + 5)
        assert isinstance(result.result(5), NotAdmitted)
    assert seen == [dialer_identity.public_key] and "\n" not in str(err.value)


def test_a_dialer_refuses_a_malformed_key_for_its_peer():
    dialer, listener = tcp_pair()
    with dialer, listener, pytest.raises(MalformedKey, match="party 0's public key 0000"):
        hs.dial(dialer, 1, 0, Identity.generate(), bytes(32), SID, time.monotonic() + 5)


# ---- hostile message heads -----------------------------------------------------------------


def _hostile_head(lengths_count: int, frame_size: int) -> tuple[Channel, object, bytes]:
    """A receiving channel, the attacker's TLS socket (an authenticated peer), and a message
    header announcing `lengths_count` frames of `frame_size` bytes."""
    attacker = Identity.generate()
    dialed, accepted = tls_pair(attacker, LISTENER, SID)
    receiver = Channel(accepted.sock, 1, 0, SID, LISTENER, attacker.public_key, 1 << 31,
                       lambda ch: None)
    header = HEADER.pack(KIND_MESSAGE, lengths_count) + struct.pack(
        f"<{lengths_count}Q", *([frame_size] * lengths_count))
    return receiver, dialed.sock, header


def _drive(receiver: Channel, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while receiver.readable and time.monotonic() < deadline:
        select.select([receiver.fd], [], [], 0.05)
        receiver.pump()


@pytest.mark.parametrize(("count", "size", "refused"), [
    (131_000, 16 << 10, "131000 frames, more than the 16384"),  # a 2 GiB head
    (MAX_FRAMES, 16 << 10, None),  # 256 MiB announced within the caps, then nothing sent
])
def test_a_hostile_head_allocates_nothing_and_nothing_stays(count, size, refused):
    """Before: every announced frame was allocated at once (587 MiB RSS for the first
    header, kept after the connection closed). Frames are allocated as their bytes come."""
    tracemalloc.start()
    try:
        receiver, attacker, header = _hostile_head(count, size)
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        attacker.sendall(header)
        if refused is None:
            attacker.sendall(b"\x00" * 1000)  # a few bytes of the first frame, then hang up
            attacker.close()
        _drive(receiver)
        peak = tracemalloc.get_traced_memory()[1]
        error = receiver.recv_error
        what = (type(error), str(error), getattr(error, "party", None))
        receiver.close()
        attacker.close()
        del receiver, error  # the error's traceback holds the record it stopped at
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    if refused is not None:
        assert issubclass(what[0], ProtocolError) and refused in what[1]
    else:
        assert what[2] == 1, what
    assert peak - before < 8 << 20, f"peak {peak - before} bytes for a hostile head"
    assert after - before < 1 << 20, f"{after - before} bytes kept after the close"


def test_a_message_of_more_frames_than_the_cap_is_not_sent():
    receiver, attacker, _ = _hostile_head(1, 1)
    with pytest.raises(ValueError, match=f"at most {MAX_FRAMES} frames"):
        Channel(attacker, 0, 1, SID, LISTENER, LISTENER.public_key, 1 << 20,
                lambda ch: None).send([b""] * (MAX_FRAMES + 1))
    receiver.close()


# ---- a trickling stranger does not keep a quorum member out --------------------------------


def test_a_trickling_stranger_does_not_keep_the_real_party_out(monkeypatch):
    """Before: the listener gave each read its own timeout, so a stranger sending a byte
    every 0.3 s held the (one-at-a-time) accept loop past the whole connect timeout."""
    monkeypatch.setattr("enigma.net.mesh.HANDSHAKE_TIMEOUT", 1.0)
    identities, peers = local_quorum(2)

    def party_0() -> tuple[bytes, list[str]]:
        with Mesh(0, identities[0], peers, b"t", connect_timeout=4.0) as mesh:
            return bytes(mesh.recv(1)[0]), [str(e) for e in mesh.rejected]

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(party_0)
        for _ in range(100):  # until party 0 listens
            try:
                stranger = socket.create_connection((peers[0].host, peers[0].port))
                break
            except ConnectionRefusedError:
                time.sleep(0.02)
        with stranger, trickling(stranger, hs.MAGIC, 0.3):
            time.sleep(0.3)  # the real party comes after the stranger
            with Mesh(1, identities[1], peers, b"t", connect_timeout=6.0) as mesh:
                mesh.send(0, b"in")
                got, rejected = future.result(10)
    assert got == b"in"
    assert any("too slow" in r for r in rejected), rejected
