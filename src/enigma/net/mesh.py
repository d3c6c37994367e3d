"""The full mesh of secure channels between the q parties of one session.

Usage, in each party's own process (see `enigma.net.local` for a local quorum):

    with Mesh(me, identity, peers, session=b"job-42") as mesh:   # connects to all, or raises
        mesh.send(1, header_bytes, array)            # one message of two frames to party 1
        frames = mesh.recv(1)                        # list[memoryview], in order
        x = np.frombuffer(frames[1], np.uint64).reshape(-1, 2)   # zero copy
        replies = mesh.exchange({j: [a_j] for j in mesh.others})  # one round, all-to-all
        replies = mesh.broadcast(a)                  # the same frames to all, one back from each
        signed = mesh.checkpoint()                   # signed transcript heads from every peer
        evidence = mesh.transcript()                 # what the blame layer keeps
        mesh.bytes_sent, mesh.bytes_received         # frame bytes, for cost accounting

A frame is any C-contiguous buffer (bytes, bytearray, memoryview, numpy array); it is
sent without copies other than the encryption itself, and received frames are fresh,
writable uint8 buffers owned by the caller. Nothing is ever pickled.

Connection setup: the higher-numbered party of each pair dials, the lower one listens
on its PeerInfo port. Dialing retries until the deadline (peers may start in any order);
the listener rejects strangers, wrong keys and other sessions and keeps waiting for the
real party. After the deadline the error names the missing party and, if it tried with
a wrong key, says so.

I/O model: no threads. Sockets are non-blocking; whichever call is waiting (recv for a
message, send for room in a socket buffer) polls all channels and lets each take what has
arrived, so peers never block on us while we send. A Mesh is used by one thread.

Failure model: every error is a `NetError` subclass naming the peer (see `errors`). A
peer that sends nothing for `timeout` seconds makes recv raise PeerTimeout; one that
disconnects makes it raise PeerDisconnected (a PeerTimeout) at once. After any error
but a PeerTimeout from recv (which may be retried), the channel is dead: the session must
abort (MPC with abort semantics).
"""

from __future__ import annotations

import math
import select
import socket
import time
from collections.abc import Callable, Mapping, Sequence

from . import handshake
from .channel import Buffer, Channel
from .errors import AuthenticationError, NetError, PeerTimeout, ProtocolError, SetupStopped
from .identity import Identity, PeerInfo
from .transcript import ChannelTranscript, Checkpoint, session_id

#: Longest a listener waits for one whole incoming handshake, so a silent or trickling
#: stranger cannot stall setup (a deadline, not a timeout per read).
HANDSHAKE_TIMEOUT = 5.0
_RETRY_DELAY = 0.05
#: Longest wait between looks at a setup's `stop` (a cancelled job's member answers in it).
_STOP_POLL = 0.25


class Mesh:
    """This party's end of the mesh; one per party per session.

    `me` is this party's index in `peers` (PeerInfo of parties 0..q-1, the same list at
    every party), `identity` must hold the key `peers[me]` names, and `session` is any
    bytes all parties agree on (a job id): channels and checkpoints are bound to it, so a
    message of one job cannot be passed off in another. `timeout` bounds every wait for a
    peer; `connect_timeout` (default: `timeout`) bounds the whole setup. `max_message`
    bounds the bytes of one incoming message, because frames are allocated as announced.
    `bind` is the address to listen on when it is not the one the peers dial (a node
    behind NAT, or one bound to every interface: 0.0.0.0); default `peers[me].host`.
    `stop`, polled during setup, ends it early with SetupStopped (a cancelled job's member
    then says at once whom it was still waiting for, instead of after `connect_timeout`).
    """

    def __init__(
        self,
        me: int,
        identity: Identity,
        peers: Sequence[PeerInfo],
        session: bytes,
        timeout: float = 30.0,
        connect_timeout: float | None = None,
        max_message: int = 1 << 33,
        bind: str | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        if len(peers) < 2:
            raise ValueError(f"a mesh needs at least 2 parties, got {len(peers)}")
        for i, p in enumerate(peers):
            if p.party != i:
                raise ValueError(f"peers[{i}] describes party {p.party}; list them in order 0..q-1")
        if not 0 <= me < len(peers):
            raise ValueError(f"me={me} is not a party of this {len(peers)}-party quorum")
        if identity.public_key != peers[me].public_key:
            raise ValueError(
                f"this identity's public key {identity.public_key.hex()[:16]}... is not the one "
                f"the peer list gives for party {me}; load the right key file"
            )
        self.party = me
        self.parties = len(peers)
        self.others = [j for j in range(self.parties) if j != me]
        self.timeout = timeout
        self.max_message = max_message
        self.session_id = session_id(session)
        #: Handshakes refused during setup (strangers, wrong keys), for the operator and blame.
        self.rejected: list[NetError] = []
        self._identity = identity
        self._peers = list(peers)
        self._channels: dict[int, Channel] = {}
        self._poll = select.poll()
        self._masks: dict[int, int] = {}
        self._by_fd: dict[int, Channel] = {}
        self._closed = False
        wait = timeout if connect_timeout is None else connect_timeout
        host = peers[me].host if bind is None else bind
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            listener = socket.create_server(
                (host, peers[me].port), family=family, backlog=self.parties
            )
        except OSError as exc:
            raise NetError(
                f"party {me} cannot listen on {host}:{peers[me].port}: {exc.strerror};"
                " is another process using that port?",
                me,
            ) from exc
        self._stop = stop
        self._setup_start = time.monotonic()
        try:
            deadline = self._setup_start + wait
            for j in range(me):
                self._dial(j, deadline, wait)
            self._accept_all(listener, deadline, wait)
        except BaseException:
            self.close(grace=0.0)
            raise
        finally:
            listener.close()

    # ---- setup ---------------------------------------------------------------------------

    def _open_channel(self, link: handshake.Link) -> None:
        ch = Channel(
            link.sock, link.party, self.party, self.session_id, self._identity,
            link.public_key, self.max_message, self._wait_writable,
        )
        self._channels[link.party] = ch
        self._by_fd[ch.fd] = ch
        self._want(ch, write=False)

    def _dial(self, j: int, deadline: float, wait: float) -> None:
        peer = self._peers[j]
        last = "no attempt"
        while (remaining := deadline - time.monotonic()) > 0:
            self._check_stop({j, *range(self.party + 1, self.parties)})
            try:
                sock = socket.create_connection((peer.host, peer.port), timeout=min(remaining, 1))
            except OSError as exc:
                last = exc.strerror or str(exc)
                time.sleep(_RETRY_DELAY)
                continue
            # with a stop to poll, one attempt gets HANDSHAKE_TIMEOUT: a peer that takes the
            # connection and never answers must not keep a cancelled member from saying so
            attempt = deadline if self._stop is None else \
                min(deadline, time.monotonic() + HANDSHAKE_TIMEOUT)
            try:
                link = handshake.dial(sock, self.party, j, self._identity, peer.public_key,
                                      self.session_id, attempt)
            except PeerTimeout:
                sock.close()
                last = "the handshake got no answer"
                continue
            except BaseException:
                sock.close()
                raise
            self._open_channel(link)
            return
        raise PeerTimeout(
            f"party {self.party} could not reach party {j} at {peer.host}:{peer.port} within "
            f"{wait:g} s (last: {last}); is it running, and are host and port right?",
            j,
        )

    def _accept_all(self, listener: socket.socket, deadline: float, wait: float) -> None:
        missing = set(range(self.party + 1, self.parties))

        def key_of(claimed: int) -> bytes | None:
            return self._peers[claimed].public_key if claimed in missing else None

        while missing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._raise_missing(missing, wait)
            self._check_stop(missing)
            listener.settimeout(remaining if self._stop is None else min(remaining, _STOP_POLL))
            try:
                sock, _addr = listener.accept()
            except TimeoutError:
                continue
            try:
                link = handshake.accept(
                    sock, self.party, self._identity, key_of, self.session_id,
                    deadline=time.monotonic() + min(remaining, HANDSHAKE_TIMEOUT),
                )
            except NetError as exc:
                sock.close()
                self.rejected.append(exc)
                continue
            except OSError as exc:
                sock.close()
                self.rejected.append(NetError(f"an incoming handshake failed: {exc}"))
                continue
            missing.discard(link.party)
            self._open_channel(link)

    def _check_stop(self, missing: set[int]) -> None:
        """SetupStopped naming the first missing party once `stop` says so."""
        if self._stop is None or not self._stop():
            return
        j, waited = min(missing), time.monotonic() - self._setup_start
        raise SetupStopped(
            f"party {j} had not connected with party {self.party} after {waited:.1f} s, when "
            f"the setup was stopped (still missing: {sorted(missing)})",
            j, waited >= self.timeout,
        )

    def _raise_missing(self, missing: set[int], wait: float) -> None:
        j = min(missing)
        tried = [str(e) for e in self.rejected if e.party == j]
        if tried:
            raise AuthenticationError(
                f"party {j} did not complete a valid handshake with party {self.party} within "
                f"{wait:g} s; refused attempt(s): {'; '.join(tried)}",
                j,
            )
        raise PeerTimeout(
            f"party {j} did not connect to party {self.party} within {wait:g} s "
            f"(still missing: {sorted(missing)}); is it running with the same peer list?",
            j,
        )

    # ---- the event loop ------------------------------------------------------------------

    def _want(self, ch: Channel, write: bool) -> None:
        """Poll `ch` for what it can still use: incoming bytes, and room to send if `write`."""
        mask = (select.POLLIN if ch.readable else 0) | (select.POLLOUT if write else 0)
        old = self._masks.get(ch.fd, 0)
        if mask == old:
            return
        if not old:
            self._poll.register(ch.fd, mask)
        elif not mask:
            self._poll.unregister(ch.fd)
        else:
            self._poll.modify(ch.fd, mask)
        if mask:
            self._masks[ch.fd] = mask
        else:
            del self._masks[ch.fd]

    def _serve(self, timeout: float) -> set[int]:
        """Wait up to `timeout` s for events; let readable channels take their bytes.

        Returns the descriptors that can take more outgoing bytes (or have failed, which
        the next send reports).
        """
        writable = set()
        buffered = [ch for ch in self._channels.values() if ch.buffered]
        for ch in buffered:  # decrypted bytes that the socket no longer shows
            ch.pump()
            if not ch.readable:
                self._want(ch, write=bool(self._masks.get(ch.fd, 0) & select.POLLOUT))
        if buffered:
            timeout = 0.0
        for fd, event in self._poll.poll(math.ceil(max(timeout, 0.0) * 1000)):
            ch = self._by_fd[fd]
            if event & (select.POLLIN | select.POLLHUP | select.POLLERR) and ch.readable:
                ch.pump()
                if not ch.readable:
                    self._want(ch, write=bool(self._masks.get(fd, 0) & select.POLLOUT))
            if event & (select.POLLOUT | select.POLLHUP | select.POLLERR):
                writable.add(fd)
        return writable

    def _wait_writable(self, ch: Channel) -> None:
        """Called by a channel whose socket is full: serve everyone until it has room."""
        self._want(ch, write=True)
        try:
            deadline = time.monotonic() + self.timeout
            while (remaining := deadline - time.monotonic()) > 0:
                if ch.fd in self._serve(remaining):
                    return
            raise PeerTimeout(
                f"party {ch.peer} accepted no data for {self.timeout:g} s: it stalled or the"
                " network to it is down",
                ch.peer,
            )
        finally:
            self._want(ch, write=False)

    def _next(self, frm: int) -> list[memoryview] | Checkpoint:
        """The next message or checkpoint from `frm`, serving all channels while waiting."""
        ch = self._channel(frm)
        start = time.monotonic()
        while not ch.has_item() and ch.readable:
            remaining = max(start, ch.last_progress) + self.timeout - time.monotonic()
            if remaining <= 0:
                raise PeerTimeout(
                    f"party {frm} sent nothing for {self.timeout:g} s: it stalled, crashed or"
                    " is at another step of the protocol",
                    frm,
                )
            self._serve(remaining)
        return ch.next_item()

    # ---- messages ------------------------------------------------------------------------

    def _channel(self, j: int) -> Channel:
        if self._closed:
            raise NetError(f"party {self.party}'s mesh is closed")
        try:
            return self._channels[j]
        except KeyError:
            raise ValueError(
                f"party {j} is not a peer of party {self.party} (peers: {self.others})"
            ) from None

    def send(self, to: int, *buffers: Buffer) -> None:
        """Send one message made of `buffers` (frames) to party `to`."""
        self._channel(to).send(buffers)

    def recv(self, frm: int) -> list[memoryview]:
        """The frames of the next message from party `frm`; PeerTimeout after `timeout` s."""
        item = self._next(frm)
        if isinstance(item, Checkpoint):
            raise ProtocolError(
                f"party {frm} sent a checkpoint where party {self.party} expected a message: "
                "the parties are at different steps of the protocol",
                frm,
            )
        return item

    def exchange(self, outgoing: Mapping[int, Sequence[Buffer]]) -> dict[int, list[memoryview]]:
        """One round: send each listed party its frames, then receive one message from each."""
        for to in sorted(outgoing):
            self.send(to, *outgoing[to])
        return {frm: self.recv(frm) for frm in sorted(outgoing)}

    def broadcast(self, *buffers: Buffer) -> dict[int, list[memoryview]]:
        """Send the same frames to every other party and receive one message from each."""
        return self.exchange(dict.fromkeys(self.others, buffers))

    def checkpoint(self) -> dict[int, Checkpoint]:
        """Exchange signed transcript heads with every peer (all parties call it together).

        Steps: 1. sign (session, me, peer, sent count, sent chain) for each peer and send it;
        2. receive each peer's checkpoint; 3. check its signature and that it matches what we
        received (else AuthenticationError / TranscriptMismatch); 4. return them, keyed by
        peer. They stay in `transcript()` as evidence of what each peer sent.
        """
        for j in self.others:
            self._channel(j).send_checkpoint()
        result = {}
        for j in self.others:
            item = self._next(j)
            if not isinstance(item, Checkpoint):
                raise ProtocolError(
                    f"party {j} sent a message where party {self.party} expected its checkpoint:"
                    " the parties are at different steps of the protocol",
                    j,
                )
            result[j] = item
        return result

    @property
    def bytes_sent(self) -> int:
        """Frame bytes this party has sent to all peers (without record overhead)."""
        return sum(ch.bytes_sent for ch in self._channels.values())

    @property
    def bytes_received(self) -> int:
        """Frame bytes this party has received from all peers (complete messages only)."""
        return sum(ch.bytes_received for ch in self._channels.values())

    def transcript(self) -> dict[int, ChannelTranscript]:
        """Per peer: sent/received chain heads, received digests and the peer's last checkpoint."""
        return {j: ch.transcript() for j, ch in sorted(self._channels.items())}

    # ---- closing -------------------------------------------------------------------------

    def close(self, grace: float = 2.0) -> None:
        """Say goodbye to every peer, give them `grace` s to say it back, then disconnect."""
        if self._closed:
            return
        self._closed = True
        for ch in self._channels.values():
            ch.shutdown_send()
            self._want(ch, write=False)
        deadline = time.monotonic() + grace
        while any(ch.readable for ch in self._channels.values()) and (
            remaining := deadline - time.monotonic()
        ) > 0:
            self._serve(remaining)
        for ch in self._channels.values():
            ch.close()

    def __enter__(self) -> Mesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
