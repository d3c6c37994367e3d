"""One connection to one peer: messages of frames over TLS 1.3, and their attribution.

TLS (`handshake.py`) gives the stream its secrecy, integrity and order: a record that is
altered, replayed, reordered, dropped or forged on the way fails TLS's authentication
and ends the connection with an alert (here a TamperedFrame); a stream cut short
without TLS's own close is a TruncatedFrame if it stops inside a message. What TLS does
not give is evidence: its records are authenticated with keys both ends hold, so a
receiver could forge them. Attribution is ours, as before: every message is hashed into
a chain that its sender signs at checkpoints (`transcript.py`).

Wire format inside the TLS stream, items one after another:

    header (8 bytes) = u8 kind | 3 zero bytes | u32 n
    MESSAGE (kind 1):     n frame lengths (u64 each), then the frames' bytes in order
    CHECKPOINT (kind 2):  n = 0; u64 count | 32-byte chain head | 64-byte signature

The message's digest (`transcript.message_digest`) covers the u32 n, the lengths and
the frames, exactly the bytes after the kind: sender and receiver hash what travels.

Why these choices (numbers in docs/transport.md): a message of at most INLINE bytes goes
in one TLS write (one record, one syscall); larger frames are written in CHUNK pieces
and hashed in CHUNK pieces (hashing 1 MiB spans is faster than 16 KiB records). Frames
are received straight into the buffers handed to the caller (OpenSSL decrypts into its
own record buffer and copies once). A frame is allocated only once its first bytes have
arrived, so a message costs memory in proportion to what its sender really sent.

No threads: the socket is non-blocking and the owner (`Mesh`, the service's `Link`)
drives it. `pump()` takes whatever has arrived, without blocking; `send()` calls back into
the owner whenever the socket is full, and the owner pumps every channel while it waits,
so two parties that send large messages to each other at once never deadlock. OpenSSL
may hold decrypted bytes that the socket no longer shows (`buffered`): the owner pumps
those channels without waiting for the socket.
"""

from __future__ import annotations

import collections
import socket
import ssl
import struct
import time
from collections.abc import Callable, Sequence

import blake3
import numpy as np

from .errors import (
    NetError,
    PeerDisconnected,
    ProtocolError,
    TamperedFrame,
    TranscriptMismatch,
    TruncatedFrame,
)
from .identity import Identity
from .transcript import (
    ChannelTranscript,
    Checkpoint,
    chain_next,
    chain_start,
    encode_head,
    statement,
)

HEADER = struct.Struct("<B3xI")
KIND_MESSAGE, KIND_CHECKPOINT = 1, 2
#: Messages up to this many bytes (header included) go in one TLS write.
INLINE = 1 << 16
#: Bytes per TLS write of a large frame, and per hash update when receiving one.
CHUNK = 1 << 20
#: Frames one message may hold (its lengths are then at most 128 KiB). A header announcing
#: more is refused before anything is allocated; real messages hold a few frames (the
#: service's largest, `put`, one per column).
MAX_FRAMES = 1 << 14
_CHECKPOINT = struct.Struct("<Q32s64s")
#: Bytes one pump() may take from one peer before it lets the owner serve the others.
_PUMP_BUDGET = 8 * CHUNK

Buffer = bytes | bytearray | memoryview | np.ndarray


def as_byte_view(buf: Buffer, index: int) -> memoryview:
    """A flat byte view of one frame, without copying; refuses what would need a copy."""
    if isinstance(buf, np.ndarray):
        if not buf.flags.c_contiguous:
            raise ValueError(
                f"frame {index} is a non-contiguous numpy array; pass np.ascontiguousarray(x)"
            )
        return memoryview(buf.reshape(-1).view(np.uint8))
    view = memoryview(buf)
    if not view.c_contiguous:
        raise ValueError(f"frame {index} is not C-contiguous; copy it into a contiguous buffer")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


class _Incoming:
    """A message being received: its frames, the cursor (frame, offset) and what is hashed."""

    def __init__(self, index: int, lengths: list[int], head: bytes) -> None:
        self.index = index
        self.lengths = lengths
        self.frames: list[memoryview] = []
        self.frame = 0
        self.offset = 0
        self.hashed = 0
        self.digest = blake3.blake3(head)
        self._skip_empty()

    def _skip_empty(self) -> None:
        while self.frame < len(self.lengths) and self.offset == self.lengths[self.frame]:
            if len(self.frames) == self.frame:
                self.frames.append(memoryview(np.empty(self.lengths[self.frame], np.uint8)))
            current = self.frames[self.frame]
            self.digest.update(current[self.hashed :])
            self.frame += 1
            self.offset = self.hashed = 0

    @property
    def done(self) -> bool:
        return self.frame == len(self.lengths)

    @property
    def allocated(self) -> bool:
        """Whether the current frame has its buffer (it gets one when its first bytes come)."""
        return len(self.frames) > self.frame

    def rest(self) -> int:
        return self.lengths[self.frame] - self.offset

    def target(self) -> memoryview:
        """The unfilled rest of the current frame, allocating it."""
        if not self.allocated:
            self.frames.append(memoryview(np.empty(self.lengths[self.frame], np.uint8)))
        return self.frames[self.frame][self.offset :]

    def advance(self, n: int) -> None:
        self.offset += n
        if self.offset - self.hashed >= CHUNK and self.offset < self.lengths[self.frame]:
            self.digest.update(self.frames[self.frame][self.hashed : self.offset])
            self.hashed = self.offset
        self._skip_empty()

    def where(self) -> str:
        if self.done:
            return f"message {self.index}"
        return f"message {self.index}, frame {self.frame}, from byte {self.offset}"


class Channel:
    """The secure stream to one peer; `Mesh` owns one per peer and is the public face.

    `sock` is the TLS socket of a finished handshake (`handshake.Link.sock`).
    `wait_writable(channel)` is the owner's callback for a full socket: it must return
    once the socket can take more bytes (serving other channels meanwhile) or raise.
    """

    def __init__(
        self,
        sock: ssl.SSLSocket,
        peer: int,
        me: int,
        sid: bytes,
        identity: Identity,
        peer_key: bytes,
        max_message: int,
        wait_writable: Callable[[Channel], None],
    ) -> None:
        self.peer = peer
        self._me = me
        self._sid = sid
        self._identity = identity
        self._peer_key = peer_key
        #: Bytes one incoming message may announce; the owner may lower it per peer.
        self.max_message = max_message
        self._wait_writable = wait_writable
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self._sock = sock
        self.fd = sock.fileno()
        # sending
        self._send_error: NetError | None = None
        self.sent_count = 0
        #: Frame bytes sent and received (payload only, for cost accounting).
        self.bytes_sent = 0
        self.bytes_received = 0
        self.sent_chain = chain_start(sid, me, self.peer)
        self._closing = False
        # receiving: header, then lengths or a checkpoint, then frames
        self._header = memoryview(bytearray(HEADER.size))
        self._scratch = memoryview(np.empty(CHUNK, np.uint8))
        self._want: memoryview | None = self._header
        self._got = 0
        self._state = "header"
        self._count = 0
        self._message: _Incoming | None = None
        self._received_digests: list[bytes] = []
        self._received_chain = chain_start(sid, self.peer, me)
        self.checkpoint: Checkpoint | None = None
        self._inbox: collections.deque[list[memoryview] | Checkpoint] = collections.deque()
        #: Set once the incoming stream is over (peer gone, or broken); raised after the inbox.
        self.recv_error: NetError | None = None
        #: time.monotonic() of the last TLS record from the peer, for "sent nothing for t s".
        #: TLS hands over only whole records, so a peer cannot hold us by trickling bytes.
        self.last_progress = time.monotonic()

    # ---- sending -------------------------------------------------------------------------

    def send(self, buffers: Sequence[Buffer]) -> None:
        """Send one message of frames; its digest joins the sent chain."""
        views = [as_byte_view(b, i) for i, b in enumerate(buffers)]
        if len(views) > MAX_FRAMES:
            raise ValueError(f"a message holds at most {MAX_FRAMES} frames, not {len(views)}")
        head = encode_head([v.nbytes for v in views])
        self._check_send()
        total = sum(v.nbytes for v in views)
        kind = bytes([KIND_MESSAGE, 0, 0, 0])
        try:
            if HEADER.size + len(head) + total <= INLINE:
                payload = b"".join([kind, head, *views])
                digest = blake3.blake3(memoryview(payload)[4:])
                self._write(payload)
            else:
                digest = blake3.blake3(head)
                self._write(kind + head)
                for v in views:
                    for off in range(0, v.nbytes, CHUNK):
                        chunk = v[off : off + CHUNK]
                        digest.update(chunk)
                        self._write(chunk)
        except NetError as exc:
            self._send_error = exc
            raise
        self.sent_count += 1
        self.bytes_sent += total
        self.sent_chain = chain_next(self.sent_chain, digest.digest())

    def send_checkpoint(self) -> None:
        """Sign the sent chain's head and send it as a CHECKPOINT (not a message)."""
        self._check_send()
        stmt = statement(self._sid, self._me, self.peer, self.sent_count, self.sent_chain)
        payload = HEADER.pack(KIND_CHECKPOINT, 0) + _CHECKPOINT.pack(
            self.sent_count, self.sent_chain, self._identity.sign(stmt))
        try:
            self._write(payload)
        except NetError as exc:
            self._send_error = exc
            raise

    def _check_send(self) -> None:
        if self._send_error is not None:
            raise self._send_error
        if self._closing:
            raise NetError(f"the channel to party {self.peer} is closed", self.peer)

    def _write(self, data: bytes | memoryview) -> None:
        """One TLS write of all of `data`, waiting for room as often as it takes."""
        while True:
            try:
                self._sock.send(data)  # all or nothing: OpenSSL's writes are not partial
                return
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                self._wait_writable(self)
            except (ssl.SSLError, OSError) as exc:
                raise PeerDisconnected(
                    f"sending to party {self.peer} failed: {exc.strerror or exc}; it has gone"
                    " away",
                    self.peer,
                ) from exc

    # ---- receiving -----------------------------------------------------------------------

    def has_item(self) -> bool:
        return bool(self._inbox)

    def next_item(self) -> list[memoryview] | Checkpoint:
        """The next complete message (its frames) or checkpoint; call when has_item()."""
        if self._inbox:
            item = self._inbox.popleft()
            if isinstance(item, Checkpoint):
                self.checkpoint = item
            return item
        assert self.recv_error is not None, "next_item() without an item or an error"
        raise self.recv_error

    @property
    def readable(self) -> bool:
        """Whether the incoming stream may still deliver bytes."""
        return self.recv_error is None

    @property
    def closed(self) -> bool:
        """Whether `close` ran (maybe on another thread): `fd` may name another file now."""
        return self._sock.fileno() < 0

    @property
    def buffered(self) -> bool:
        """Whether OpenSSL holds decrypted bytes that a poll of the socket would not show."""
        return self.recv_error is None and self._sock.pending() > 0

    def pump(self) -> bool:
        """Take whatever the peer has sent so far, without blocking; True if bytes came.

        Steps: 1. recv into the current target (header, lengths, checkpoint, or a frame);
        2. when a target is full, act on it (`_on_full`) and aim at the next; 3. stop when
        TLS has nothing more, the stream ended, or `_PUMP_BUDGET` bytes were taken.
        """
        if self.recv_error is not None:
            return False
        taken = 0
        try:
            while taken < _PUMP_BUDGET:
                target, direct = self._target()
                try:
                    k = self._sock.recv_into(target)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                except ssl.SSLEOFError:
                    k = 0
                if k == 0:
                    self._on_eof()
                    break
                taken += k
                self.last_progress = time.monotonic()
                self._took(target, k, direct)
        except NetError as exc:
            # Without its traceback: the traceback's frames hold this channel (a cycle that
            # would keep the message being read until the next GC).
            self.recv_error = exc.with_traceback(None)
        except ssl.SSLError as exc:
            self.recv_error = TamperedFrame(
                f"the TLS stream from party {self.peer} broke in {self._where()} "
                f"({exc.reason or exc}): a record was altered, replayed, reordered or forged "
                "on the way",
                self.peer,
            )
        except OSError as exc:
            self.recv_error = PeerDisconnected(
                f"the connection to party {self.peer} broke: {exc.strerror or exc}", self.peer
            )
        return taken > 0

    def _target(self) -> tuple[memoryview, bool]:
        """Where the next bytes go, and whether that is the caller's frame itself."""
        if self._want is not None:
            return self._want[self._got :], False
        message = self._message
        assert message is not None
        if message.allocated:
            return message.target(), True
        return self._scratch[: min(CHUNK, message.rest())], False  # first bytes of a frame

    def _took(self, target: memoryview, k: int, direct: bool) -> None:
        message = self._message
        if self._want is None:
            assert message is not None
            if not direct:
                message.target()[:k] = target[:k]
            message.advance(k)
            if message.done:
                self._finish_message()
            return
        self._got += k
        if self._got == len(self._want):
            self._got = 0
            self._on_full()

    def _where(self) -> str:
        return self._message.where() if self._message is not None else "the next message"

    def _on_eof(self) -> None:
        if self._state == "header" and self._got == 0:
            why = "we closed the channel" if self._closing else "it closed the connection"
            raise PeerDisconnected(f"party {self.peer} is gone: {why}", self.peer)
        raise TruncatedFrame(
            f"the stream from party {self.peer} ended inside {self._where()} "
            f"(reading its {self._state}): the connection was cut or the peer crashed",
            self.peer,
        )

    def _on_full(self) -> None:
        """Act on a complete header, list of lengths or checkpoint."""
        if self._state == "header":
            kind, n = HEADER.unpack(self._header)
            if any(self._header[1:4]) or kind not in (KIND_MESSAGE, KIND_CHECKPOINT):
                raise ProtocolError(
                    f"party {self.peer} sent an item header {bytes(self._header).hex()} in "
                    f"{self._where()}: its sender does not follow this protocol version",
                    self.peer,
                )
            if kind == KIND_CHECKPOINT:
                self._state, self._want = "checkpoint", memoryview(bytearray(_CHECKPOINT.size))
            elif n > MAX_FRAMES:
                raise ProtocolError(
                    f"party {self.peer} announced a message of {n} frames, more than the"
                    f" {MAX_FRAMES} a message may hold",
                    self.peer,
                )
            else:
                self._count = n
                self._state, self._want = "lengths", memoryview(bytearray(8 * n))
                if n == 0:
                    self._on_full()
        elif self._state == "checkpoint":
            self._inbox.append(self._accept_checkpoint(bytes(self._want or b"")))
            self._state, self._want = "header", self._header
        else:
            self._start_message(bytes(self._want or b""))

    def _start_message(self, raw: bytes) -> None:
        """Check the announced lengths against the cap before taking any frame."""
        lengths = list(struct.unpack(f"<{self._count}Q", raw))
        total = sum(lengths)
        if total > self.max_message:
            raise ProtocolError(
                f"party {self.peer} announced a message of {total} bytes, more than the"
                f" {self.max_message} this channel accepts from it",
                self.peer,
            )
        self._message = _Incoming(len(self._received_digests), lengths,
                                  struct.pack("<I", self._count) + raw)
        self._state, self._want = "frames", None
        if self._message.done:
            self._finish_message()

    def _finish_message(self) -> None:
        message, self._message = self._message, None
        assert message is not None
        d = message.digest.digest()
        self._received_digests.append(d)
        self.bytes_received += sum(len(f) for f in message.frames)
        self._received_chain = chain_next(self._received_chain, d)
        self._inbox.append(message.frames)
        self._state, self._want = "header", self._header

    def _accept_checkpoint(self, payload: bytes) -> Checkpoint:
        count, chain, signature = _CHECKPOINT.unpack(payload)
        cp = Checkpoint(self._sid, self.peer, self._me, count, chain, signature)
        cp.verify(self._peer_key)
        if count != len(self._received_digests) or chain != self._received_chain:
            raise TranscriptMismatch(
                f"party {self.peer} signed a checkpoint over {count} messages that does not match"
                f" the {len(self._received_digests)} messages we received from it",
                self.peer,
            )
        return cp

    def transcript(self) -> ChannelTranscript:
        return ChannelTranscript(
            self.peer, self.sent_count, self.sent_chain, tuple(self._received_digests),
            self._received_chain, self.checkpoint,
        )

    # ---- closing -------------------------------------------------------------------------

    def shutdown_send(self) -> None:
        """Tell the peer we are done (a TCP FIN at a message boundary) while still taking
        what it sends us. Not TLS's close_notify: messages delimit themselves, so a FIN
        between them is a clean end and one inside a message is a TruncatedFrame."""
        self._closing = True
        try:
            socket.socket.shutdown(self._sock, socket.SHUT_WR)  # not SSLSocket's: keep TLS
        except OSError:
            self.recv_error = self.recv_error or PeerDisconnected(
                f"party {self.peer} is gone", self.peer
            )

    def close(self) -> None:
        """Close the socket and let go of the buffers at once: the owner's `wait_writable`
        callback makes a reference cycle, which only the GC would break. A reader still
        waiting on it (another thread) finds it unreadable and stops."""
        self._closing = True
        self.recv_error = self.recv_error or PeerDisconnected(
            f"party {self.peer} is gone: we closed the channel", self.peer)
        self._sock.close()
        self._scratch = memoryview(b"")
        self._message = None
        self._inbox.clear()
