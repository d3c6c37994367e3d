"""The node service protocol: requests and replies over one authenticated, encrypted channel.

An owner (uploading, collecting, coordinating a recovery) or another node (sending its
part of a reshare) talks to a node's service port. Why not a quorum `Mesh`: a mesh is a
fixed set of parties known in advance, each listening on its own port for one session;
a storage node serves any number of clients, one after another and at once, on one port,
and learns who the client is from the connection itself.

A connection, in order:

  1. the TLS 1.3 handshake of `enigma.net.handshake` (node = party 0, dialer = party 1) in
     the session `SERVICE_SESSION`: the dialer announces its certificate in the preface
     and proves it holds that key, the node proves it holds the key the ledger
     registered for it (pinned, no CA); the node's `admit` policy then says yes or no
  2. dialer -> node   request  = frames [JSON header, array payloads...]
  3. node -> dialer   reply    = frames [JSON header, array payloads...]; 2-3 repeat

A header is `{"op": ..., fields..., "arrays": [{"dtype", "shape"}, ...]}`; a reply is
`{"ok": true, ...}` or `{"ok": false, "error": kind, "message": text}`. Arrays travel as
raw little-endian bytes (numeric dtypes only; never pickle), checked against their
declared shape before use. The announced certificate is only a claim: the handshake
fails unless the dialer signs it with that key, so after step 1 the node knows the key of
who it talks to, and authorizes each request by that key.

Strangers cost little: the node's `admit(key)` policy (`app.admission`) runs right after
the handshake and a refused key gets the NOT_ADMITTED verdict (the client's error says
so in one line) before the node allocates the channel's buffers; step 1 must finish
within `HANDSHAKE_TIMEOUT` as a whole, so a client trickling bytes is cut off; the
channel caps frames per message (`net.channel.MAX_FRAMES`) and bytes per message
(`MAX_MESSAGE`, lowered per client by the node) before allocating, and allocates frames
as bytes arrive.
"""

from __future__ import annotations

import contextvars
import json
import math
import select
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from enigma.net import handshake
from enigma.net.channel import Channel
from enigma.net.errors import (
    AuthenticationError,
    NetError,
    NotAdmitted,
    PeerDisconnected,
    PeerTimeout,
)
from enigma.net.identity import Identity
from enigma.net.transcript import session_id

SERVICE_SESSION = session_id(b"enigma.node.service.v1")
NODE_PARTY, CLIENT_PARTY = 0, 1
#: Largest request or reply (bytes); a header announcing more is refused unallocated.
MAX_MESSAGE = 1 << 31
#: Seconds a client has for the whole handshake.
HANDSHAKE_TIMEOUT = 10.0
#: Longest single wait of a link: a thread waiting on a link that another thread closed
#: (the owner closes every member's connection once it stops waiting) notices within it.
POLL_SLICE = 1.0
_DTYPES = {"<u8", "<i8", "<f8", "|u1", "|b1"}

Arrays = list[np.ndarray]
Handler = Callable[[bytes, dict[str, Any], Arrays], tuple[dict[str, Any], Sequence[np.ndarray]]]


class ServiceError(Exception):
    """A request the node refused or could not serve; `kind` is machine-readable."""

    def __init__(self, kind: str, message: str, abort: bytes = b"") -> None:
        super().__init__(message)
        self.kind = kind
        self.abort = abort
        """A job member's signed record of why it stopped (`app.failures`), or empty."""


def encode(header: Mapping[str, Any], arrays: Sequence[np.ndarray] = ()) -> list[Any]:
    """Frames of one message: the JSON header (describing the arrays), then their bytes."""
    arrays = [np.ascontiguousarray(a) for a in arrays]
    body = dict(header)
    body["arrays"] = [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays]
    return [json.dumps(body, separators=(",", ":")).encode(), *arrays]


def decode(frames: Sequence[memoryview], who: str) -> tuple[dict[str, Any], Arrays]:
    """The header and arrays of one message, refusing anything that does not match its header."""
    try:
        header = json.loads(bytes(frames[0]))
        specs = header.pop("arrays")
        if not isinstance(header, dict) or not isinstance(specs, list):
            raise ValueError("header is not an object with an 'arrays' list")
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        raise ServiceError("malformed", f"{who} sent a malformed message header: {exc}") from exc
    if len(specs) != len(frames) - 1:
        raise ServiceError("malformed", f"{who} announced {len(specs)} arrays and sent "
                                        f"{len(frames) - 1}")
    arrays = []
    for i, (spec, frame) in enumerate(zip(specs, frames[1:], strict=True)):
        dtype, shape = spec.get("dtype"), spec.get("shape")
        if dtype not in _DTYPES or not isinstance(shape, list) or not all(
                isinstance(s, int) and s >= 0 for s in shape):
            raise ServiceError("malformed", f"{who}: array {i} has dtype {dtype!r} and shape "
                                            f"{shape!r}; only plain numeric arrays are accepted")
        dt = np.dtype(dtype)
        if int(np.prod(shape, dtype=np.int64)) * dt.itemsize != len(frame):
            raise ServiceError("malformed", f"{who}: array {i} should be {shape} of {dtype}, "
                                            f"got {len(frame)} bytes")
        arrays.append(np.frombuffer(frame, dtype=dt).reshape(shape))
    return header, arrays


class Link:
    """Drives one non-blocking `Channel` for a single-threaded request/response user.

    The transport's channel has no thread of its own: its owner must pump incoming bytes
    while it waits, and must wait for room when a send fills the socket. A `Mesh` does
    that for a quorum; a Link does it for the one peer of a service connection.
    """

    def __init__(self, link: handshake.Link, me: int, identity: Identity,
                 timeout: float) -> None:
        self.timeout = timeout
        self._sock = link.sock
        self.channel = Channel(link.sock, link.party, me, SERVICE_SESSION, identity,
                               link.public_key, MAX_MESSAGE, self._wait_writable)

    def peer_gone(self) -> bool:
        """Whether the other end hung up; reads nothing (a peek), so another thread may ask
        while this link's owner is busy with a request (`CLIENT_GONE`)."""
        try:
            # the TCP socket under TLS: a FIN shows there whatever OpenSSL holds
            return socket.socket.recv(self._sock, 1,
                                      socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    def _poll(self, write: bool, timeout: float) -> bool:
        """Wait up to `timeout` s (at most POLL_SLICE: another thread may close the link,
        and its descriptor number then means nothing); pump what arrived; True if the
        socket can take bytes."""
        ch = self.channel
        if ch.closed:  # by another thread: its descriptor number may be another socket's
            raise ch.recv_error or PeerDisconnected("the connection was closed", ch.peer)
        if ch.buffered:  # decrypted bytes that the socket no longer shows
            ch.pump()
            timeout = 0.0
        if not ch.readable and not write:
            return False
        mask = (select.POLLIN if ch.readable else 0) | (select.POLLOUT if write else 0)
        poller = select.poll()
        poller.register(ch.fd, mask)
        writable = False
        for _fd, event in poller.poll(math.ceil(min(max(timeout, 0.0), POLL_SLICE) * 1000)):
            if event & select.POLLNVAL:  # closed under us: nothing more will come
                raise PeerDisconnected("the connection was closed while waiting on it",
                                       ch.peer)
            if event & (select.POLLIN | select.POLLHUP | select.POLLERR) and ch.readable:
                ch.pump()
            if event & (select.POLLOUT | select.POLLHUP | select.POLLERR):
                writable = True
        return writable

    def _wait_writable(self, ch: Channel) -> None:
        deadline = time.monotonic() + self.timeout
        while (remaining := deadline - time.monotonic()) > 0:
            if self._poll(True, remaining):
                return
        raise PeerTimeout(f"the peer accepted no data for {self.timeout:g} s: it stalled or "
                          "the network to it is down", ch.peer)

    def send(self, frames: Sequence[Any]) -> None:
        self.channel.send(frames)

    def recv(self, timeout: float) -> list[memoryview] | None:
        """The next message; None if nothing came within `timeout` s (NetError if gone)."""
        ch = self.channel
        deadline = time.monotonic() + timeout
        while not ch.has_item() and ch.readable:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._poll(False, remaining)
        item = ch.next_item()
        return item if isinstance(item, list) else None

    def close(self, grace: float = 0.5) -> None:
        """Say goodbye, take what the peer still sends for up to `grace` s, disconnect."""
        ch = self.channel
        ch.shutdown_send()
        deadline = time.monotonic() + grace
        while ch.readable and (remaining := deadline - time.monotonic()) > 0:
            self._poll(False, remaining)
        ch.close()


class Connection:
    """A client's connection to one node's service port."""

    def __init__(self, link: Link, node_key: bytes, where: str, timeout: float) -> None:
        self._link = link
        self.node_key = node_key
        self.where = where
        self.timeout = timeout

    @classmethod
    def open(cls, host: str, port: int, identity: Identity, node_key: bytes,
             timeout: float = 60.0) -> Connection:
        """Dial a node and authenticate both ways (steps 1-2 of the module docstring)."""
        where = f"node {node_key.hex()[:16]}... at {host}:{port}"
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            why = exc.strerror or exc
            raise ServiceError("unreachable", f"cannot connect to {where}: {why}; "
                                              "is the node running?") from exc
        try:
            link = handshake.dial(sock, CLIENT_PARTY, NODE_PARTY, identity, node_key,
                                  SERVICE_SESSION, time.monotonic() + timeout)
        except NotAdmitted as exc:
            sock.close()
            raise ServiceError("not-admitted", f"{where} does not admit our key "
                                               f"{identity.public_key.hex()[:16]}...: it serves "
                                               "registered nodes, owners of data it holds and "
                                               "uploaders within their quota (used up, or too "
                                               "many guests now)") from exc
        except (NetError, OSError) as exc:
            sock.close()
            raise ServiceError("handshake", f"handshake with {where} failed: {exc}") from exc
        return cls(Link(link, CLIENT_PARTY, identity, timeout), node_key, where, timeout)

    def request(self, op: str, arrays: Sequence[np.ndarray] = (),
                **fields: Any) -> tuple[dict[str, Any], Arrays]:
        """Send one request and wait for its reply; ServiceError if the node refused it."""
        try:
            self._link.send(encode({"op": op, **fields}, arrays))
            frames = self._link.recv(self.timeout)
        except NetError as exc:
            raise ServiceError("connection", f"{op} to {self.where}: {exc}") from exc
        if frames is None:
            raise ServiceError("timeout", f"{self.where} did not answer {op} within "
                                          f"{self.timeout:g} s")
        header, out = decode(frames, self.where)
        if not header.get("ok"):
            try:
                abort = bytes.fromhex(str(header.get("abort", "")))
            except ValueError:
                abort = b""  # not a record: the owner judges it as no record at all
            raise ServiceError(str(header.get("error", "refused")),
                               f"{self.where} refused {op}: {header.get('message', '')}", abort)
        return header, out

    def close(self, grace: float = 0.5) -> None:
        """Say goodbye and disconnect (`Link.close`); grace 0 from a thread other than the
        one waiting in `request`, which must be left the only reader of the channel."""
        self._link.close(grace)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def accept(sock: socket.socket, identity: Identity, timeout: float,
           admit: Callable[[bytes], bool] | None = None,
           handshake_timeout: float = HANDSHAKE_TIMEOUT) -> tuple[Link, bytes]:
    """The node's side of step 1: the link and the client's proven public key.

    NetError: NotAdmitted when `admit` refuses the proven key, MalformedKey for a key
    that is no Ed25519 key, PeerTimeout past `handshake_timeout`, AuthenticationError
    for anything else (not our protocol, a client claiming to be the node).
    """
    deadline = time.monotonic() + handshake_timeout
    link = handshake.accept(sock, NODE_PARTY, identity, None, SERVICE_SESSION, deadline, admit)
    if link.party != CLIENT_PARTY:
        link.sock.close()
        raise AuthenticationError(f"a client dialed as party {link.party}, not as a client "
                                  f"(party {CLIENT_PARTY})", link.party)
    return Link(link, NODE_PARTY, identity, timeout), link.public_key


CLIENT_GONE: contextvars.ContextVar[Callable[[], bool]] = contextvars.ContextVar(
    "client_gone", default=lambda: False)
"""While `serve` handles a request: whether its client hung up (`Link.peer_gone`). A long
request (a job) learns it without the handler's signature carrying the link."""


def serve(link: Link, client: bytes, handler: Handler, stopping: Callable[[], bool],
          idle: float = 600.0, poll: float = 0.5) -> None:
    """Answer requests on one channel until the client leaves, idles or the node stops.

    A request being handled when the node is told to stop is finished and answered
    first: stopping is checked only between requests.
    """
    who = f"client {client.hex()[:16]}..."
    waited = 0.0
    try:
        while not stopping() and waited < idle:
            frames = link.recv(poll)
            if frames is None:
                waited += poll
                continue
            waited = 0.0
            try:
                header, arrays = decode(frames, who)
                token = CLIENT_GONE.set(link.peer_gone)
                try:
                    reply, out = handler(client, header, arrays)
                finally:
                    CLIENT_GONE.reset(token)
                reply = {"ok": True, **reply}
            except ServiceError as exc:
                reply, out = {"ok": False, "error": exc.kind, "message": str(exc)}, []
                if exc.abort:
                    reply["abort"] = exc.abort.hex()
            link.send(encode(reply, out))
    except NetError:
        return
    finally:
        link.close()


def format_endpoint(host: str, port: int, dht_port: int | None) -> str:
    """What a node registers on the ledger: its service address and, if any, its DHT port."""
    return f"{host}:{port}" + (f" dht={dht_port}" if dht_port else "")


def parse_endpoint(text: str) -> tuple[str, int, int | None]:
    """(host, service port, DHT port or None) from a ledger endpoint string."""
    addr, _, rest = text.strip().partition(" ")
    host, sep, port = addr.rpartition(":")
    dht = rest.removeprefix("dht=") if rest.startswith("dht=") else ""
    if not sep or not port.isdigit() or (rest and not dht.isdigit()):
        raise ServiceError("endpoint", f"endpoint {text!r} is not 'HOST:PORT' or "
                                       "'HOST:PORT dht=PORT'")
    return host, int(port), int(dht) if dht else None
