"""Mutual authentication and key agreement on a fresh TCP connection (SIGMA-style).

Why our own handshake over TCP and not CurveZMQ or TLS: the record layer needs raw
sockets for speed (see docs/transport.md: CurveZMQ moved 0.26-0.39 GB/s, plain pyzmq
0.6-1.1 GB/s, a raw socket 3 GB/s here), and the quorum's identities are Ed25519 keys on
the ledger, not certificates. The handshake is small and fixed-size, so it is easy to
audit: ephemeral X25519 for forward secrecy, Ed25519 signatures over the whole handshake
transcript for authentication (SIGMA, Krawczyk 2003; the "sign both ephemerals and both
identities" variant as in TLS 1.3).

The higher-numbered party dials, the lower one listens. Messages, in order:

  1. dialer -> listener  HELLO  = MAGIC | session_id | u16 dialer | u16 listener | eph_D
  2. listener -> dialer  REPLY  = MAGIC | session_id | u16 listener | u16 dialer | eph_L
                                  | sign_L("listener" || th)
  3. dialer -> listener  FINISH = sign_D("dialer" || th)
  4. listener -> dialer  VERDICT = 1 byte: 1 accepted, 0 rejected (bad signature, wrong
                                  or malformed key), 2 not admitted (the key is proven but
                                  the listener's `admit` policy refuses it), so a refused
                                  dialer learns it at once instead of at its first recv

  th = BLAKE3("enigma-net handshake" || HELLO || REPLY without its signature)
  keys = HKDF-SHA256(X25519(eph_D, eph_L), salt=th): 32 bytes dialer->listener, then
         32 bytes listener->dialer, each an AES-256-GCM key for one direction.

Strangers cost nothing: every read has a `deadline` for the whole handshake (a peer that
trickles one byte at a time is cut off when it passes, not after a timeout per byte);
malformed keys (off the curve, small order such as all zeros) and degenerate ephemeral
keys are refused with a MalformedKey / AuthenticationError, never a stray ValueError;
and the listener allocates nothing beyond these fixed-size messages before `admit` has
said yes.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import blake3
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import AuthenticationError, NotAdmitted, PeerDisconnected, PeerTimeout
from .identity import Identity, check_key, verify_signature

MAGIC = b"ENIGMA-NET/1\x00\x00\x00\x00"
_HELLO = struct.Struct("<16s32sHH32s")
HELLO_SIZE = _HELLO.size
REPLY_SIZE = HELLO_SIZE + 64
FINISH_SIZE = 64
VERDICT_SIZE = 1
ACCEPTED, REJECTED, NOT_ADMITTED = b"\x01", b"\x00", b"\x02"


@dataclass(frozen=True)
class ChannelKeys:
    """The result of a handshake: who is on the other end and the two direction keys."""

    peer: int
    send_key: bytes
    recv_key: bytes


def recv_exact(sock: socket.socket, n: int, peer: int | None, deadline: float | None) -> bytes:
    """n bytes, all before `deadline` (time.monotonic()); None keeps the socket's timeout."""
    who = f"party {peer}" if peer is not None else "the connecting peer"
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PeerTimeout(
                    f"{who} sent {got} of {n} handshake bytes before the deadline: too slow",
                    peer,
                )
            sock.settimeout(remaining)
        try:
            k = sock.recv_into(view[got:])
        except TimeoutError:
            if deadline is None:
                raise
            continue
        if k == 0:
            raise PeerDisconnected(
                f"{who} closed the connection during the handshake after {got} of {n} bytes",
                peer,
            )
        got += k
    return bytes(buf)


def _derive(shared: bytes, th: bytes) -> tuple[bytes, bytes]:
    okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=th, info=b"enigma-net keys").derive(
        shared
    )
    return okm[:32], okm[32:]


def _exchange(eph: X25519PrivateKey, theirs: bytes, party: int) -> bytes:
    try:
        return eph.exchange(X25519PublicKey.from_public_bytes(theirs))
    except ValueError:  # a small-order point such as all zeros: no shared secret
        raise AuthenticationError(
            f"party {party} sent a degenerate ephemeral key {theirs.hex()[:16]}...; "
            "it is not a working enigma-net v1 peer",
            party,
        ) from None


def _check_hello(fields: tuple, sid: bytes, sender: int, receiver: int, what: str) -> None:
    magic, their_sid, s, r, _eph = fields
    if magic != MAGIC:
        raise AuthenticationError(
            f"{what}: not an enigma-net v1 peer (bad magic {magic!r}); check host and port",
            sender,
        )
    if their_sid != sid:
        raise AuthenticationError(
            f"{what}: party {s} is in another session (session id {their_sid.hex()[:16]}... "
            f"!= ours {sid.hex()[:16]}...); all parties must be given the same session",
            s,
        )
    if (s, r) != (sender, receiver):
        raise AuthenticationError(
            f"{what}: expected party {sender} talking to party {receiver}, "
            f"the peer says it is party {s} talking to party {r}",
            s,
        )


def dial(
    sock: socket.socket,
    me: int,
    peer: int,
    identity: Identity,
    peer_key: bytes,
    sid: bytes,
    deadline: float | None = None,
) -> ChannelKeys:
    """Run the dialer's side on a connected socket; raise AuthenticationError on any failure
    (NotAdmitted when the listener proved our key and its policy refuses it)."""
    check_key(peer_key, f"party {peer}'s", peer)
    eph = X25519PrivateKey.generate()
    hello = _HELLO.pack(MAGIC, sid, me, peer, eph.public_key().public_bytes_raw())
    sock.sendall(hello)
    reply = recv_exact(sock, REPLY_SIZE, peer, deadline)
    fields = _HELLO.unpack_from(reply)
    _check_hello(fields, sid, peer, me, f"handshake with party {peer}")
    th = blake3.blake3(b"enigma-net handshake" + hello + reply[:HELLO_SIZE]).digest()
    verify_signature(peer_key, reply[HELLO_SIZE:], b"listener" + th, peer)
    sock.sendall(identity.sign(b"dialer" + th))
    verdict = recv_exact(sock, VERDICT_SIZE, peer, deadline)
    if verdict == NOT_ADMITTED:
        raise NotAdmitted(
            f"party {peer} verified our key {identity.public_key.hex()[:16]}... and does not "
            "admit it",
            peer,
        )
    if verdict != ACCEPTED:
        raise AuthenticationError(
            f"party {peer} rejected our handshake: its peer list does not hold our public key "
            f"{identity.public_key.hex()[:16]}... for party {me}, or we are not in its quorum",
            peer,
        )
    to_peer, from_peer = _derive(_exchange(eph, fields[4], peer), th)
    return ChannelKeys(peer, to_peer, from_peer)


def accept(
    sock: socket.socket,
    me: int,
    identity: Identity,
    key_of: Callable[[int], bytes | None],
    sid: bytes,
    deadline: float | None = None,
    admit: Callable[[bytes], bool] | None = None,
) -> ChannelKeys:
    """Run the listener's side; `key_of(party)` is the public key we expect, None if unknown.

    Raises AuthenticationError (with `party` set to the party the dialer claimed to be)
    when the dialer is a stranger, uses a wrong or malformed key (MalformedKey) or another
    session; NotAdmitted when its signature is good but `admit(key)` is False (the caller's
    policy, e.g. "registered nodes and owners only"), PeerTimeout past `deadline`.
    """
    hello = recv_exact(sock, HELLO_SIZE, None, deadline)
    fields = _HELLO.unpack(hello)
    claimed = fields[2]
    if fields[0] != MAGIC:
        _check_hello(fields, sid, claimed, me, "incoming handshake")
    eph = X25519PrivateKey.generate()
    head = _HELLO.pack(MAGIC, sid, me, claimed, eph.public_key().public_bytes_raw())
    th = blake3.blake3(b"enigma-net handshake" + hello + head).digest()
    # Reply even to a dialer we will reject, so that it learns why from its own checks.
    sock.sendall(head + identity.sign(b"listener" + th))
    _check_hello(fields, sid, claimed, me, "incoming handshake")
    finish = recv_exact(sock, FINISH_SIZE, claimed, deadline)
    public_key = key_of(claimed)
    try:
        if public_key is None:
            raise AuthenticationError(
                f"a peer claiming to be party {claimed} is not expected to dial party {me}",
                claimed,
            )
        check_key(public_key, f"party {claimed}'s", claimed)
        verify_signature(public_key, finish, b"dialer" + th, claimed)
        shared = _exchange(eph, fields[4], claimed)
    except AuthenticationError:
        sock.sendall(REJECTED)
        raise
    if admit is not None and not admit(public_key):
        sock.sendall(NOT_ADMITTED)
        raise NotAdmitted(
            f"party {claimed} proved its key {public_key.hex()[:16]}..., which is not admitted",
            claimed,
        )
    sock.sendall(ACCEPTED)
    from_peer, to_peer = _derive(shared, th)
    return ChannelKeys(claimed, to_peer, from_peer)
