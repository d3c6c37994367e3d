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
  4. listener -> dialer  VERDICT = 1 byte: 1 accepted, 0 rejected (so a rejected dialer
                                  learns it at once instead of at its first recv)

  th = BLAKE3("enigma-net handshake" || HELLO || REPLY without its signature)
  keys = HKDF-SHA256(X25519(eph_D, eph_L), salt=th): 32 bytes dialer->listener, then
         32 bytes listener->dialer, each an AES-256-GCM key for one direction.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

import blake3
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import AuthenticationError, PeerDisconnected
from .identity import Identity, verify_signature

MAGIC = b"ENIGMA-NET/1\x00\x00\x00\x00"
_HELLO = struct.Struct("<16s32sHH32s")
HELLO_SIZE = _HELLO.size
REPLY_SIZE = HELLO_SIZE + 64
FINISH_SIZE = 64
VERDICT_SIZE = 1


@dataclass(frozen=True)
class ChannelKeys:
    """The result of a handshake: who is on the other end and the two direction keys."""

    peer: int
    send_key: bytes
    recv_key: bytes


def _recv_exact(sock: socket.socket, n: int, peer: int | None) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            who = f"party {peer}" if peer is not None else "the connecting peer"
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
    sock: socket.socket, me: int, peer: int, identity: Identity, peer_key: bytes, sid: bytes
) -> ChannelKeys:
    """Run the dialer's side on a connected socket; raise AuthenticationError on any failure."""
    eph = X25519PrivateKey.generate()
    hello = _HELLO.pack(MAGIC, sid, me, peer, eph.public_key().public_bytes_raw())
    sock.sendall(hello)
    reply = _recv_exact(sock, REPLY_SIZE, peer)
    fields = _HELLO.unpack_from(reply)
    _check_hello(fields, sid, peer, me, f"handshake with party {peer}")
    th = blake3.blake3(b"enigma-net handshake" + hello + reply[:HELLO_SIZE]).digest()
    verify_signature(peer_key, reply[HELLO_SIZE:], b"listener" + th, peer)
    sock.sendall(identity.sign(b"dialer" + th))
    verdict = _recv_exact(sock, VERDICT_SIZE, peer)
    if verdict != b"\x01":
        raise AuthenticationError(
            f"party {peer} rejected our handshake: its peer list does not hold our public key "
            f"{identity.public_key.hex()[:16]}... for party {me}, or we are not in its quorum",
            peer,
        )
    shared = eph.exchange(X25519PublicKey.from_public_bytes(fields[4]))
    to_peer, from_peer = _derive(shared, th)
    return ChannelKeys(peer, to_peer, from_peer)


def accept(
    sock: socket.socket,
    me: int,
    identity: Identity,
    key_of: Callable[[int], bytes | None],
    sid: bytes,
) -> ChannelKeys:
    """Run the listener's side; `key_of(party)` is the public key we expect, None if unknown.

    Raises AuthenticationError (with `party` set to the party the dialer claimed to be)
    when the dialer is a stranger, uses a wrong key or another session.
    """
    hello = _recv_exact(sock, HELLO_SIZE, None)
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
    finish = _recv_exact(sock, FINISH_SIZE, claimed)
    public_key = key_of(claimed)
    try:
        if public_key is None:
            raise AuthenticationError(
                f"a peer claiming to be party {claimed} is not expected to dial party {me}",
                claimed,
            )
        verify_signature(public_key, finish, b"dialer" + th, claimed)
    except AuthenticationError:
        sock.sendall(b"\x00")
        raise
    sock.sendall(b"\x01")
    shared = eph.exchange(X25519PublicKey.from_public_bytes(fields[4]))
    from_peer, to_peer = _derive(shared, th)
    return ChannelKeys(claimed, to_peer, from_peer)
