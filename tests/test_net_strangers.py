"""Strangers cost nothing at the transport: malformed keys, degenerate ephemerals, trickled
handshakes, refused keys and hostile message heads (docs/transport.md, section 7).

An attacker here is a raw socket that writes the handshake and the records itself, so it
can send what no honest `dial` or `Channel.send` would: an all-zero key with an all-zero
signature, an all-zero ephemeral key, one byte at a time, a head announcing 131,000
frames of 16 KiB.
"""

from __future__ import annotations

import concurrent.futures
import os
import select
import socket
import struct
import time
import tracemalloc

import blake3
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from enigma.net import (
    AuthenticationError,
    Identity,
    Mesh,
    PeerTimeout,
    ProtocolError,
    local_quorum,
)
from enigma.net import handshake as hs
from enigma.net.channel import HEADER, KIND_HEAD, MAX_FRAMES, Channel
from enigma.net.errors import MalformedKey, NotAdmitted
from enigma.net.handshake import ChannelKeys
from enigma.net.identity import key_defect
from enigma.net.transcript import encode_head, session_id

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


def _pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        a = socket.create_connection(server.getsockname())
        b, _ = server.accept()
    return a, b


def _listen(sock: socket.socket, key: bytes, **kw: object) -> ChannelKeys | Exception:
    try:
        return hs.accept(sock, 0, LISTENER, lambda p: key if p == 1 else None, SID, **kw)
    except Exception as exc:  # the test inspects what the listener raised
        return exc


def _raw_dial(sock: socket.socket, eph: bytes) -> bytes:
    """Dial as party 1 by hand, "signing" with an all-zero signature; the verdict."""
    sock.sendall(struct.pack("<16s32sHH32s", hs.MAGIC, SID, 1, 0, eph))
    hs.recv_exact(sock, hs.REPLY_SIZE, 0, time.monotonic() + 5)
    sock.sendall(bytes(64))
    return hs.recv_exact(sock, hs.VERDICT_SIZE, 0, time.monotonic() + 5)


def test_small_order_and_off_curve_keys_are_malformed_real_keys_are_not():
    for key in SMALL_ORDER:
        assert "small order" in key_defect(key), key.hex()
    assert "y >= p" in key_defect(b"\xff" * 32)
    assert "32" in key_defect(bytes(31))
    assert all(key_defect(Identity.generate().public_key) is None for _ in range(50))


def test_an_all_zero_key_never_completes_the_handshake_and_is_one_line():
    """Before: OpenSSL accepts an all-zero signature under the all-zero key for about a
    quarter of all transcripts, so a key nobody holds got in by retrying."""
    eph = X25519PrivateKey.generate().public_key().public_bytes_raw()
    for _ in range(16):  # P(all 16 rejected by a verifier that accepts 1/4) = 1%
        dialer, listener = _pair()
        with dialer, listener, concurrent.futures.ThreadPoolExecutor(1) as pool:
            result = pool.submit(_listen, listener, bytes(32))
            assert _raw_dial(dialer, eph) == hs.REJECTED
            error = result.result(5)
        assert isinstance(error, MalformedKey), error
        assert "malformed" in str(error) and "small order" in str(error)
        assert "\n" not in str(error)


def test_an_all_zero_ephemeral_key_is_an_authentication_error_not_a_crash():
    dialer_identity = Identity.generate()
    dialer, listener = _pair()
    with dialer, listener, concurrent.futures.ThreadPoolExecutor(1) as pool:
        result = pool.submit(_listen, listener, dialer_identity.public_key)
        hello = struct.pack("<16s32sHH32s", hs.MAGIC, SID, 1, 0, bytes(32))
        dialer.sendall(hello)
        reply = hs.recv_exact(dialer, hs.REPLY_SIZE, 0, time.monotonic() + 5)
        th = blake3.blake3(b"enigma-net handshake" + hello + reply[:hs.HELLO_SIZE]).digest()
        dialer.sendall(dialer_identity.sign(b"dialer" + th))
        assert hs.recv_exact(dialer, 1, 0, time.monotonic() + 5) == hs.REJECTED
        error = result.result(5)
    assert type(error) is AuthenticationError and "degenerate ephemeral key" in str(error)


def test_a_trickled_handshake_is_cut_off_at_its_deadline():
    """Before: a timeout per read, so one byte every 0.2 s kept the listener forever."""
    dialer, listener = _pair()
    hello = struct.pack("<16s32sHH32s", hs.MAGIC, SID, 1, 0, bytes(32))
    with dialer, listener, trickling(dialer, hello, 0.2):
        start = time.monotonic()
        error = _listen(listener, Identity.generate().public_key,
                        deadline=time.monotonic() + 1.0)
        elapsed = time.monotonic() - start
    assert isinstance(error, PeerTimeout) and "too slow" in str(error), error
    assert 0.9 < elapsed < 3.0  # the hello alone would take 14 s


def test_a_proven_key_the_policy_refuses_is_told_so_in_one_line():
    dialer_identity = Identity.generate()
    seen: list[bytes] = []

    def admit(key: bytes) -> bool:
        seen.append(key)
        return False

    dialer, listener = _pair()
    with dialer, listener, concurrent.futures.ThreadPoolExecutor(1) as pool:
        result = pool.submit(_listen, listener, dialer_identity.public_key, admit=admit)
        with pytest.raises(NotAdmitted, match="does not admit it") as err:
            hs.dial(dialer, 1, 0, dialer_identity, LISTENER.public_key, SID)
        assert isinstance(result.result(5), NotAdmitted)
    assert seen == [dialer_identity.public_key] and "\n" not in str(err.value)


def test_a_dialer_refuses_a_malformed_key_for_its_peer():
    dialer, listener = _pair()
    with dialer, listener, pytest.raises(MalformedKey, match="party 0's public key 0000"):
        hs.dial(dialer, 1, 0, Identity.generate(), bytes(32), SID)


# ---- hostile message heads -----------------------------------------------------------------


def _hostile_head(lengths_count: int, frame_size: int) -> tuple[Channel, socket.socket, bytes]:
    """A receiving channel, the attacker's socket, and a genuine HEAD record (seq 0) that
    announces `lengths_count` frames of `frame_size` bytes (the attacker holds the key)."""
    key = os.urandom(32)
    attacker, sock = _pair()
    receiver = Channel(sock, ChannelKeys(1, os.urandom(32), key), 0, SID, LISTENER,
                       Identity.generate().public_key, 1 << 31, lambda ch: None)
    head = encode_head([frame_size] * lengths_count)
    header = HEADER.pack(0, len(head), KIND_HEAD)
    record = header + AESGCM(key).encrypt(struct.pack("<Q4x", 0), head, header)
    return receiver, attacker, record


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
    head, kept after the connection closed)."""
    tracemalloc.start()
    try:
        receiver, attacker, record = _hostile_head(count, size)
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        attacker.sendall(record)
        if refused is None:
            attacker.sendall(b"\x00" * 1000)  # a few bytes of the next record, then hang up
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
        Channel(attacker, ChannelKeys(0, os.urandom(32), os.urandom(32)), 1, SID, LISTENER,
                LISTENER.public_key, 1 << 20, lambda ch: None).send([b""] * (MAX_FRAMES + 1))
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
