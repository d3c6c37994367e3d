"""Setting up one link: a preface, a TLS 1.3 handshake with pinned keys, a verdict.

Why TLS and not our own protocol: a link needs mutual authentication by the keys the
ledger registers, forward secrecy and an authenticated, encrypted record stream; TLS 1.3
gives all three, reviewed and implemented by OpenSSL (docs/transport.md for what it
cost). What is ours is only how the keys are pinned (`tls.py`) and the binding to a
session. The higher-numbered party dials, the lower one listens. In order:

  1. dialer -> listener  PREFACE = MAGIC | u16 dialer | u16 listener | u16 n | certificate
                         (n bytes, the dialer's self-signed certificate, `tls.certificate`)
     The listener refuses (closes) unless the certificate's key is the one it expects for
     that party (`key_of`; any key if `key_of` is None, the node service, where `admit`
     decides), and is a sound Ed25519 key (`identity.check_key`).
  2. the TLS 1.3 handshake, sent right behind the preface (no round trip of its own):
     the listener requires exactly that certificate; the dialer asks for the server
     name `tls.session_name(session, dialer, listener)`, which the handshake
     authenticates. The dialer then checks the listener's certificate key against its pin.
  3. dialer -> listener  CONFIRM (1 byte, in TLS): the dialer accepts the listener.
  4. listener -> dialer  VERDICT (1 byte, in TLS): 1 accepted, 2 not admitted (the key is
                         proven and the listener's `admit` policy refuses it), 3 another
                         session (the server name is not the listener's own).

Round trips: as the handshake this replaced (TCP, then ClientHello -> server flight,
then client Finished + CONFIRM -> VERDICT). A refusal in step 1 closes the connection
without a word (the dialer then reports that its certificate was refused).

Strangers cost little: the whole handshake has one `deadline` (a peer that trickles
bytes is cut off when it passes); the preface is at most 1 KiB and read before anything
else is allocated; OpenSSL sees only certificates whose key the listener expects or,
for the service, announced keys whose certificate parses.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import AuthenticationError, NotAdmitted, PeerDisconnected, PeerTimeout
from .identity import Identity, check_key
from .tls import MAX_CERT, certificate_key, credentials, session_name

MAGIC = b"ENIGMA-TLS/1\x00\x00\x00\x00"
_PREFACE = struct.Struct("<16sHHH")
PREFACE_SIZE = _PREFACE.size
T = TypeVar("T")
CONFIRMED = b"\x01"
ACCEPTED, NOT_ADMITTED, OTHER_SESSION = b"\x01", b"\x02", b"\x03"


@dataclass
class Link:
    """The outcome of a handshake: the peer, its proven key and the TLS socket to it."""

    party: int
    public_key: bytes
    sock: ssl.SSLSocket


def _who(peer: int | None) -> str:
    return f"party {peer}" if peer is not None else "the connecting peer"


def _wait(sock: socket.socket, event: int, deadline: float, peer: int | None) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise PeerTimeout(f"{_who(peer)} did not complete the handshake before the deadline: "
                          "too slow", peer)
    poller = select.poll()
    poller.register(sock, event)
    poller.poll(max(1, int(remaining * 1000)))


def _drive(op: Callable[[], T], sock: socket.socket, deadline: float,
              peer: int | None) -> T:
    """Run a non-blocking TLS operation to its end, waiting as it asks, until `deadline`."""
    while True:
        try:
            return op()
        except ssl.SSLWantReadError:
            _wait(sock, select.POLLIN, deadline, peer)
        except ssl.SSLWantWriteError:
            _wait(sock, select.POLLOUT, deadline, peer)


def recv_exact(sock: socket.socket, n: int, peer: int | None, deadline: float) -> bytes:
    """n bytes from a plain non-blocking socket, all before `deadline` (time.monotonic())."""
    buf = bytearray()
    while len(buf) < n:
        try:
            part = sock.recv(n - len(buf))
        except BlockingIOError:
            _wait(sock, select.POLLIN, deadline, peer)
            continue
        if not part:
            raise PeerDisconnected(f"{_who(peer)} closed the connection during the handshake "
                                   f"after {len(buf)} of {n} bytes", peer)
        buf += part
    return bytes(buf)


def _no_delay(sock: socket.socket) -> None:
    """Small writes go out at once. Why: the preface and the ClientHello, the Finished and
    the CONFIRM are two writes each; with Nagle's algorithm the second waits for the ACK
    of the first, which the peer delays (up to 40 ms on Linux): a mesh set-up took 2x."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _one_byte(tls_sock: ssl.SSLSocket, deadline: float, peer: int) -> bytes:
    try:
        return _drive(lambda: tls_sock.recv(1), tls_sock, deadline, peer)
    except (ssl.SSLEOFError, ConnectionError):
        return b""


def dial(sock: socket.socket, me: int, peer: int, identity: Identity, peer_key: bytes,
         sid: bytes, deadline: float) -> Link:
    """Run the dialer's side on a connected socket; AuthenticationError on any failure
    (NotAdmitted when the listener proved our key and its policy refuses it)."""
    check_key(peer_key, f"party {peer}'s", peer)
    creds = credentials(identity)
    _no_delay(sock)
    sock.settimeout(max(deadline - time.monotonic(), 0.001))
    sock.sendall(_PREFACE.pack(MAGIC, me, peer, len(creds.cert)) + creds.cert)
    sock.setblocking(False)
    tls_sock = creds.client.wrap_socket(sock, server_hostname=session_name(sid, me, peer),
                                        do_handshake_on_connect=False,
                                        suppress_ragged_eofs=False)
    try:
        return _dial_tls(tls_sock, me, peer, identity, peer_key, deadline)
    except BaseException:
        tls_sock.close()  # the caller's socket is detached now: close what wraps it
        raise


def _dial_tls(tls_sock: ssl.SSLSocket, me: int, peer: int, identity: Identity,
              peer_key: bytes, deadline: float) -> Link:
    ours = identity.public_key.hex()[:16]
    try:
        _drive(tls_sock.do_handshake, tls_sock, deadline, peer)
    except (ssl.SSLError, ConnectionError) as exc:
        raise AuthenticationError(
            f"party {peer} refused our certificate (key {ours}...): its peer list does not "
            f"hold our key for party {me}, or we are not in its quorum ({exc})", peer) from None
    theirs = certificate_key(tls_sock.getpeercert(binary_form=True) or b"")
    if theirs != peer_key:
        shown = theirs.hex()[:16] if theirs else "none"
        raise AuthenticationError(
            f"party {peer} proved key {shown}..., not its registered key "
            f"{peer_key.hex()[:16]}...: a stranger, or a wrong key in the peer list", peer)
    _drive(lambda: tls_sock.send(CONFIRMED), tls_sock, deadline, peer)
    verdict = _one_byte(tls_sock, deadline, peer)
    if verdict == ACCEPTED:
        return Link(peer, peer_key, tls_sock)
    if verdict == NOT_ADMITTED:
        raise NotAdmitted(f"party {peer} verified our key {ours}... and does not admit it",
                          peer)
    if verdict == OTHER_SESSION:
        raise AuthenticationError(
            f"party {peer} is in another session (or is not party {peer}); all parties "
            "must be given the same session and peer list", peer)
    raise AuthenticationError(f"party {peer} rejected our handshake after TLS", peer)


def _read_preface(sock: socket.socket, deadline: float) -> tuple[int, int, bytes]:
    head = recv_exact(sock, PREFACE_SIZE, None, deadline)
    magic, claimed, listener, n = _PREFACE.unpack(head)
    if magic != MAGIC:
        raise AuthenticationError(
            f"incoming handshake: not an enigma-net TLS peer (bad magic {magic!r}); check "
            "host and port")
    if not 0 < n <= MAX_CERT:
        raise AuthenticationError(f"party {claimed} announced a certificate of {n} bytes "
                                  f"(at most {MAX_CERT})", claimed)
    return claimed, listener, recv_exact(sock, n, claimed, deadline)


def accept(sock: socket.socket, me: int, identity: Identity,
           key_of: Callable[[int], bytes | None] | None, sid: bytes, deadline: float,
           admit: Callable[[bytes], bool] | None = None) -> Link:
    """Run the listener's side; `key_of(party)` is the key we expect, None if unknown
    (`key_of` None: any key, for `admit` to judge).

    Raises AuthenticationError (with `party` set to the party the dialer claimed to be)
    when the dialer is a stranger, uses a wrong or malformed key (MalformedKey) or another
    session; NotAdmitted when it proved its key and `admit(key)` is False; PeerTimeout
    past `deadline`. The caller closes the socket on an error.
    """
    _no_delay(sock)
    sock.setblocking(False)
    claimed, listener, cert = _read_preface(sock, deadline)
    if listener != me or claimed == me:
        raise AuthenticationError(f"party {claimed} dialed party {listener}, and this is party "
                                  f"{me}; check the peer list's hosts and ports", claimed)
    announced = certificate_key(cert)
    if announced is None:
        raise AuthenticationError(f"party {claimed} sent no Ed25519 certificate", claimed)
    check_key(announced, f"party {claimed}'s", claimed)
    if key_of is not None:
        expected = key_of(claimed)
        if expected is None:
            raise AuthenticationError(
                f"a peer claiming to be party {claimed} is not expected to dial party {me}",
                claimed)
        if announced != expected:
            raise AuthenticationError(
                f"a peer claiming to be party {claimed} has key {announced.hex()[:16]}..., not "
                f"its registered key {expected.hex()[:16]}...: a stranger, or a wrong key in "
                "a peer list", claimed)
    ctx = credentials(identity).server_for(cert)
    tls_sock = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False,
                               suppress_ragged_eofs=False)
    try:
        return _accept_tls(tls_sock, me, identity, sid, claimed, announced, deadline, admit)
    except BaseException:
        tls_sock.close()  # the caller's socket is detached now: close what wraps it
        raise


def _accept_tls(tls_sock: ssl.SSLSocket, me: int, identity: Identity, sid: bytes,
                claimed: int, announced: bytes, deadline: float,
                admit: Callable[[bytes], bool] | None) -> Link:
    try:
        _drive(tls_sock.do_handshake, tls_sock, deadline, claimed)
    except (ssl.SSLError, ConnectionError) as exc:
        raise AuthenticationError(f"the TLS handshake with party {claimed} failed: {exc}",
                                  claimed) from None
    if certificate_key(tls_sock.getpeercert(binary_form=True) or b"") != announced:
        raise AuthenticationError(f"party {claimed} presented another certificate than it "
                                  "announced", claimed)
    if getattr(tls_sock, "enigma_server_name", None) != session_name(sid, claimed, me):
        _drive(lambda: tls_sock.send(OTHER_SESSION), tls_sock, deadline, claimed)
        raise AuthenticationError(
            f"party {claimed} is in another session (it asked for "
            f"{getattr(tls_sock, 'enigma_server_name', None)!r}); all parties must be given "
            "the same session", claimed)
    if _one_byte(tls_sock, deadline, claimed) != CONFIRMED:
        raise AuthenticationError(f"party {claimed} hung up after the TLS handshake: it does "
                                  f"not accept our key {identity.public_key.hex()[:16]}... for "
                                  f"party {me}", claimed)
    if admit is not None and not admit(announced):
        _drive(lambda: tls_sock.send(NOT_ADMITTED), tls_sock, deadline, claimed)
        raise NotAdmitted(f"party {claimed} proved its key {announced.hex()[:16]}..., which "
                          "is not admitted", claimed)
    _drive(lambda: tls_sock.send(ACCEPTED), tls_sock, deadline, claimed)
    return Link(claimed, announced, tls_sock)
