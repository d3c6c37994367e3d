"""One authenticated, encrypted connection to one peer: the record layer.

Wire format after the handshake: a stream of records, each

    header (16 bytes) = u64 seq | u32 length | u8 kind | 3 zero bytes     (plaintext, AAD)
    ciphertext (length bytes) | tag (16 bytes)                             (AES-256-GCM)

with nonce = u64 seq | 4 zero bytes under the key of this direction. `seq` counts records
per direction from 0, so a record that is dropped, swapped, replayed, cut or altered
cannot authenticate at the receiver's position. Because seq and length travel in clear
(authenticated, not hidden), the receiver can say which of these happened: a record
that authenticates under its own, wrong seq is a replay (seq too low) or out of order
(seq too high); one that authenticates under no seq was altered.

A message is a HEAD record (plaintext: frame count and lengths, `transcript.encode_head`,
then, if head and frames together take at most INLINE bytes, all the frames' bytes),
followed, for larger messages, by DATA records, each frame cut into chunks of at most
CHUNK bytes. A small message thus costs one record: one encryption, one decryption. A
CHECKPOINT record carries a signed `transcript.Checkpoint`.

Why these choices (numbers in docs/transport.md): AES-GCM through `cryptography` runs at
11.8 GB/s into a warm buffer here (AES-NI/VAES) but 1.5 GB/s when it allocates its output,
so the sender encrypts each chunk into one reused buffer and the receiver decrypts from
a reused buffer straight into the frame it returns (one write per byte). Chunks of 1 MiB
keep that buffer in cache; small messages travel inside their HEAD record.

No threads: the socket is non-blocking and the owner (`Mesh`) drives it. `pump()` reads
whatever has arrived, without blocking, through a small state machine (header, then
body), and queues complete messages; `send()` calls back into the owner whenever the
socket is full, and the owner pumps every channel while it waits, so two parties that
send large messages to each other at once never deadlock. This replaced a reader thread
per peer, which cost a thread hand-off per message: a 3-party round of small messages
took 0.40-0.48 ms of CPU with the threads and 0.31 ms without (docs/transport.md).
"""

from __future__ import annotations

import collections
import socket
import struct
import time
from collections.abc import Callable, Sequence

import blake3
import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import (
    NetError,
    PeerDisconnected,
    ProtocolError,
    ReorderedFrame,
    ReplayedFrame,
    TamperedFrame,
    TranscriptMismatch,
    TruncatedFrame,
)
from .handshake import ChannelKeys
from .identity import Identity
from .transcript import (
    ChannelTranscript,
    Checkpoint,
    chain_next,
    chain_start,
    encode_head,
    split_head,
    statement,
)

HEADER = struct.Struct("<QIB3x")
TAG_SIZE = 16
RECORD_OVERHEAD = HEADER.size + TAG_SIZE
CHUNK = 1 << 20
#: Messages up to this many bytes (head included) travel inside their HEAD record.
INLINE = 1 << 16
#: Frames one message may hold (its head is then at most 128 KiB). A head announcing more
#: is refused before anything is allocated; real messages hold a few frames (the service's
#: largest, `put`, one per column).
MAX_FRAMES = 1 << 14
KIND_HEAD, KIND_DATA, KIND_CHECKPOINT = 1, 2, 3
_CHECKPOINT = struct.Struct("<Q32s64s")
_OUT_BUFFER = CHUNK + (1 << 16)
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


def _nonce(seq: int) -> bytes:
    return struct.pack("<Q4x", seq)


class _Incoming:
    """A message being received: its frames and the cursor (frame, offset) still to fill.

    A frame is allocated when its first byte arrives, not when the head announces it, so
    a message costs memory in proportion to the bytes its sender has really sent: a head
    that announces gigabytes and then stalls or hangs up costs nothing.
    """

    def __init__(self, index: int, lengths: list[int]) -> None:
        self.index = index
        self.lengths = lengths
        self.frames: list[memoryview] = []
        self.frame = 0
        self.offset = 0
        self.digest = blake3.blake3()
        self._skip_empty()

    def _current(self) -> memoryview:
        if len(self.frames) == self.frame:
            self.frames.append(memoryview(np.empty(self.lengths[self.frame], np.uint8)))
        return self.frames[self.frame]

    def _skip_empty(self) -> None:
        while self.frame < len(self.lengths) and self.offset == self.lengths[self.frame]:
            self._current()
            self.frame += 1
            self.offset = 0

    @property
    def done(self) -> bool:
        return self.frame == len(self.lengths)

    def target(self, n: int) -> memoryview | None:
        """Where the next n bytes go if they lie within the current frame, else None."""
        if self.done or self.offset + n > self.lengths[self.frame]:
            return None
        return self._current()[self.offset : self.offset + n]

    def advance(self, n: int) -> None:
        self.offset += n
        self._skip_empty()

    def fill(self, data: memoryview) -> None:
        """Copy inline bytes across as many frames as they span."""
        pos = 0
        while pos < len(data):
            room = self.lengths[self.frame] - self.offset
            k = min(room, len(data) - pos)
            self._current()[self.offset : self.offset + k] = data[pos : pos + k]
            pos += k
            self.advance(k)

    def where(self) -> str:
        if self.done:
            return f"message {self.index}"
        return f"message {self.index}, frame {self.frame}, from byte {self.offset}"


class Channel:
    """The secure stream to one peer; `Mesh` owns one per peer and is the public face.

    `wait_writable(channel)` is the owner's callback for a full socket: it must return
    once the socket can take more bytes (serving other channels meanwhile) or raise.
    """

    def __init__(
        self,
        sock: socket.socket,
        keys: ChannelKeys,
        me: int,
        sid: bytes,
        identity: Identity,
        peer_key: bytes,
        max_message: int,
        wait_writable: Callable[[Channel], None],
    ) -> None:
        self.peer = keys.peer
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
        self._seal = AESGCM(keys.send_key)
        self._open = AESGCM(keys.recv_key)
        # sending
        self._send_seq = 0
        self._out = memoryview(np.empty(_OUT_BUFFER, np.uint8))
        self._fill = 0
        self._send_error: NetError | None = None
        self.sent_count = 0
        #: Frame bytes sent and received (payload only, for cost accounting).
        self.bytes_sent = 0
        self.bytes_received = 0
        self.sent_chain = chain_start(sid, me, self.peer)
        self._closing = False
        # receiving: a record is read as header, then body into scratch
        self._recv_seq = 0
        self._header = memoryview(bytearray(HEADER.size))
        self._scratch = memoryview(np.empty(CHUNK + TAG_SIZE, np.uint8))
        self._want = self._header
        self._got = 0
        self._record: tuple[int, int, int] | None = None
        self._message: _Incoming | None = None
        self._received_digests: list[bytes] = []
        self._received_chain = chain_start(sid, self.peer, me)
        self.checkpoint: Checkpoint | None = None
        self._inbox: collections.deque[list[memoryview] | Checkpoint] = collections.deque()
        #: Set once the incoming stream is over (peer gone, or broken); raised after the inbox.
        self.recv_error: NetError | None = None
        #: time.monotonic() of the last complete record from the peer, for "sent nothing for
        #: t s". Counting records, not bytes, means a peer cannot hold us by trickling bytes:
        #: it must deliver a whole record (at most 1 MiB) per timeout.
        self.last_progress = time.monotonic()

    # ---- sending -------------------------------------------------------------------------

    def send(self, buffers: Sequence[Buffer]) -> None:
        """Encrypt and send one message of frames; its digest joins the sent chain."""
        views = [as_byte_view(b, i) for i, b in enumerate(buffers)]
        if len(views) > MAX_FRAMES:
            raise ValueError(f"a message holds at most {MAX_FRAMES} frames, not {len(views)}")
        head = encode_head([v.nbytes for v in views])
        self._check_send()
        total = sum(v.nbytes for v in views)
        try:
            if len(head) + total <= INLINE:
                payload = b"".join([head, *views])
                digest = blake3.blake3(payload)
                self._put(KIND_HEAD, payload)
            else:
                digest = blake3.blake3(head)
                self._put(KIND_HEAD, head)
                for v in views:
                    for off in range(0, v.nbytes, CHUNK):
                        chunk = v[off : off + CHUNK]
                        digest.update(chunk)
                        self._put(KIND_DATA, chunk)
            self._flush()
        except NetError as exc:
            self._send_error = exc
            raise
        self.sent_count += 1
        self.bytes_sent += total
        self.sent_chain = chain_next(self.sent_chain, digest.digest())

    def send_checkpoint(self) -> None:
        """Sign the sent chain's head and send it as a CHECKPOINT record (not a message)."""
        self._check_send()
        stmt = statement(self._sid, self._me, self.peer, self.sent_count, self.sent_chain)
        payload = _CHECKPOINT.pack(self.sent_count, self.sent_chain, self._identity.sign(stmt))
        try:
            self._put(KIND_CHECKPOINT, payload)
            self._flush()
        except NetError as exc:
            self._send_error = exc
            raise

    def _check_send(self) -> None:
        if self._send_error is not None:
            raise self._send_error
        if self._closing:
            raise NetError(f"the channel to party {self.peer} is closed", self.peer)

    def _put(self, kind: int, payload: memoryview | bytes) -> None:
        n = len(payload)
        if self._fill + n + RECORD_OVERHEAD > len(self._out):
            self._flush()
        header = HEADER.pack(self._send_seq, n, kind)
        o = self._fill
        self._out[o : o + HEADER.size] = header
        body = self._out[o + HEADER.size : o + RECORD_OVERHEAD + n]
        self._seal.encrypt_into(_nonce(self._send_seq), payload, header, body)
        self._fill = o + RECORD_OVERHEAD + n
        self._send_seq += 1

    def _flush(self) -> None:
        data = self._out[: self._fill]
        self._fill = 0
        sent = 0
        while sent < len(data):
            try:
                sent += self._sock.send(data[sent:])
            except BlockingIOError:
                self._wait_writable(self)
            except OSError as exc:
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

    def pump(self) -> bool:
        """Take whatever the peer has sent so far, without blocking; True if bytes came.

        Steps: 1. recv into the current target (record header, or sealed body in scratch);
        2. when a header is complete, check its length and aim at the body; 3. when a body
        is complete, authenticate and decrypt it (`_on_record`); 4. stop when the socket
        is empty, the stream ended, or `_PUMP_BUDGET` bytes were taken.
        """
        if self.recv_error is not None:
            return False
        taken = 0
        try:
            while taken < _PUMP_BUDGET:
                try:
                    k = self._sock.recv_into(self._want[self._got :])
                except BlockingIOError:
                    break
                if k == 0:
                    self._on_eof()
                    break
                taken += k
                self._got += k
                if self._got < len(self._want):
                    continue
                self._got = 0
                if self._record is None:
                    seq, n, kind = HEADER.unpack(self._header)
                    if any(self._header[HEADER.size - 3 :]):
                        # The AEAD binds the packed header, whose padding is zero: a
                        # changed pad byte would otherwise pass unseen.
                        raise TamperedFrame(
                            f"party {self.peer} sent a record header with non-zero padding "
                            f"in {self._where()}: the stream was altered",
                            self.peer,
                        )
                    if n > CHUNK:
                        raise TamperedFrame(
                            f"party {self.peer} sent a record header claiming {n} bytes "
                            f"(> {CHUNK}) in {self._where()}: the stream was altered",
                            self.peer,
                        )
                    self._record = (seq, n, kind)
                    self._want = self._scratch[: n + TAG_SIZE]
                else:
                    record, self._record = self._record, None
                    self._want = self._header
                    self.last_progress = time.monotonic()
                    self._on_record(*record)
        except NetError as exc:
            # Without its traceback: the traceback's frames hold this channel (a cycle that
            # would keep the record being read, up to CHUNK bytes, until the next GC).
            self.recv_error = exc.with_traceback(None)
        except OSError as exc:
            self.recv_error = PeerDisconnected(
                f"the connection to party {self.peer} broke: {exc.strerror or exc}", self.peer
            )
        return taken > 0

    def _where(self) -> str:
        return self._message.where() if self._message is not None else "the next message"

    def _on_eof(self) -> None:
        if self._record is None and self._got == 0 and self._message is None:
            why = "we closed the channel" if self._closing else "it closed the connection"
            raise PeerDisconnected(f"party {self.peer} is gone: {why}", self.peer)
        part = "a record header" if self._record is None else "a record body"
        raise TruncatedFrame(
            f"the stream from party {self.peer} ended inside {part} of {self._where()} "
            f"({self._got} of {len(self._want)} bytes): the connection was cut or the peer"
            " crashed",
            self.peer,
        )

    def _on_record(self, seq: int, n: int, kind: int) -> None:
        header = HEADER.pack(seq, n, kind)
        sealed = self._scratch[: n + TAG_SIZE]
        where = self._where()
        if seq != self._recv_seq:
            self._classify(seq, sealed, header, where)
        message = self._message
        expected = (KIND_DATA,) if message is not None else (KIND_HEAD, KIND_CHECKPOINT)
        direct = message.target(n) if message is not None and kind == KIND_DATA else None
        target = direct if direct is not None else memoryview(bytearray(n))
        try:
            self._open.decrypt_into(_nonce(seq), sealed, header, target)
        except InvalidTag:
            raise TamperedFrame(
                f"record {seq} from party {self.peer} ({where}) does not authenticate: it was"
                " altered on the way or forged",
                self.peer,
            ) from None
        self._recv_seq += 1
        if kind not in expected or (message is not None and direct is None):
            raise ProtocolError(
                f"party {self.peer} sent a record of kind {kind} and {n} bytes in {where}: "
                "its sender does not follow this protocol version",
                self.peer,
            )
        if kind == KIND_CHECKPOINT:
            self._inbox.append(self._accept_checkpoint(bytes(target)))
        elif kind == KIND_HEAD:
            self._start_message(target)
        else:
            assert message is not None
            message.digest.update(target)
            message.advance(n)
        if self._message is not None and self._message.done:
            self._finish_message()

    def _start_message(self, payload: memoryview) -> None:
        """Check a HEAD record against the caps (frame count, total bytes) before taking it."""
        try:
            (count,) = struct.unpack_from("<I", payload)
            if count > MAX_FRAMES:
                raise ProtocolError(
                    f"party {self.peer} announced a message of {count} frames, more than the"
                    f" {MAX_FRAMES} a message may hold",
                    self.peer,
                )
            lengths, size = split_head(payload)
        except (ValueError, struct.error) as exc:
            raise ProtocolError(
                f"party {self.peer} sent a malformed message head: {exc}", self.peer
            ) from exc
        total = sum(lengths)
        if total > self.max_message:
            raise ProtocolError(
                f"party {self.peer} announced a message of {total} bytes, more than the"
                f" {self.max_message} this channel accepts from it",
                self.peer,
            )
        inline = len(payload) - size
        if inline not in (0, total):
            raise ProtocolError(
                f"party {self.peer} sent {inline} of the {total} bytes of a message inline:"
                " a message travels either all inline or not at all",
                self.peer,
            )
        message = _Incoming(len(self._received_digests), lengths)
        message.digest.update(payload)
        message.fill(payload[size:])
        self._message = message

    def _finish_message(self) -> None:
        message, self._message = self._message, None
        assert message is not None
        d = message.digest.digest()
        self._received_digests.append(d)
        self.bytes_received += sum(len(f) for f in message.frames)
        self._received_chain = chain_next(self._received_chain, d)
        self._inbox.append(message.frames)

    def _classify(self, seq: int, sealed: memoryview, header: bytes, where: str) -> None:
        """A record with the wrong seq: tell a genuine replay or reordering from a forgery."""
        try:
            self._open.decrypt(_nonce(seq), bytes(sealed), header)
        except InvalidTag:
            raise TamperedFrame(
                f"record claiming seq {seq} from party {self.peer} ({where}, expected seq "
                f"{self._recv_seq}) does not authenticate: it was altered or forged",
                self.peer,
            ) from None
        if seq < self._recv_seq:
            raise ReplayedFrame(
                f"party {self.peer}'s record {seq} arrived again at position {self._recv_seq} "
                f"({where}): the stream was replayed",
                self.peer,
            )
        raise ReorderedFrame(
            f"party {self.peer}'s record {seq} arrived at position {self._recv_seq} "
            f"({where}): records were dropped or reordered on the way",
            self.peer,
        )

    def _accept_checkpoint(self, payload: bytes) -> Checkpoint:
        if len(payload) != _CHECKPOINT.size:
            raise ProtocolError(
                f"party {self.peer} sent a checkpoint of {len(payload)} bytes", self.peer
            )
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
        """Tell the peer we are done (FIN) while still taking what it sends us."""
        self._closing = True
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.recv_error = self.recv_error or PeerDisconnected(
                f"party {self.peer} is gone", self.peer
            )

    def close(self) -> None:
        """Close the socket and let go of the buffers at once: the owner's `wait_writable`
        callback makes a reference cycle, which only the GC would break."""
        self._closing = True
        self._sock.close()
        self._out = self._scratch = memoryview(b"")
        self._message = None
        self._inbox.clear()
