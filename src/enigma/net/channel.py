"""One authenticated, encrypted connection to one peer: the record layer and its reader thread.

Wire format after the handshake: a stream of records, each

    header (16 bytes) = u64 seq | u32 length | u8 kind | 3 zero bytes     (plaintext, AAD)
    ciphertext (length bytes) | tag (16 bytes)                             (AES-256-GCM)

with nonce = u64 seq | 4 zero bytes under the key of this direction. `seq` counts records
per direction from 0, so a record that is dropped, swapped, replayed, cut or altered
cannot authenticate at the receiver's position. Because seq and length travel in clear
(authenticated, not hidden), the receiver can say which of these happened: a record
that authenticates under its own, wrong seq is a replay (seq too low) or out of order
(seq too high); one that authenticates under no seq was altered.

A message is a HEAD record (plaintext: frame count and lengths, `transcript.encode_head`)
followed by DATA records, each frame cut into chunks of at most CHUNK bytes. A CHECKPOINT
record carries a signed `transcript.Checkpoint`.

Why these choices (numbers in docs/transport.md): AES-GCM through `cryptography` runs at
11.8 GB/s into a warm buffer here (AES-NI/VAES) but 1.5 GB/s when it allocates its output,
so the sender encrypts each chunk into one reused buffer and the receiver decrypts from
a reused buffer straight into the frame it returns (one write per byte). Chunks of 1 MiB
keep that buffer in cache and let small records of one message share one `sendall`.

Threads: a reader thread per peer drains the socket into a queue as fast as records
arrive, so two parties that send large messages to each other at once never deadlock on
full socket buffers; the caller's thread encrypts and sends.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import struct
import threading
from collections.abc import Sequence

import blake3
import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import (
    NetError,
    PeerDisconnected,
    PeerTimeout,
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
    decode_head,
    encode_head,
    statement,
)

HEADER = struct.Struct("<QIB3x")
TAG_SIZE = 16
RECORD_OVERHEAD = HEADER.size + TAG_SIZE
CHUNK = 1 << 20
KIND_HEAD, KIND_DATA, KIND_CHECKPOINT = 1, 2, 3
_CHECKPOINT = struct.Struct("<Q32s64s")
_READ_BUFFER = 1 << 18
_OUT_BUFFER = CHUNK + (1 << 16)

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


class Channel:
    """The secure stream to one peer; `Mesh` owns one per peer and is the public face."""

    def __init__(
        self,
        sock: socket.socket,
        keys: ChannelKeys,
        me: int,
        sid: bytes,
        identity: Identity,
        peer_key: bytes,
        timeout: float,
        max_message: int,
    ) -> None:
        self.peer = keys.peer
        self._max_message = max_message
        self._me = me
        self._sid = sid
        self._identity = identity
        self._peer_key = peer_key
        self._timeout = timeout
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        whole, frac = divmod(timeout, 1.0)
        sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", int(whole), int(frac * 1e6))
        )
        self._sock = sock
        self._rfile = sock.makefile("rb", buffering=_READ_BUFFER)
        self._seal = AESGCM(keys.send_key)
        self._open = AESGCM(keys.recv_key)
        self._send_lock = threading.Lock()
        self._send_seq = 0
        self._out = memoryview(np.empty(_OUT_BUFFER, np.uint8))
        self._fill = 0
        self._send_error: NetError | None = None
        self.sent_count = 0
        self.sent_chain = chain_start(sid, me, self.peer)
        self._recv_seq = 0
        self._scratch = memoryview(np.empty(CHUNK + TAG_SIZE, np.uint8))
        self._received_digests: list[bytes] = []
        self._received_chain = chain_start(sid, self.peer, me)
        self.checkpoint: Checkpoint | None = None
        self._inbox: queue.SimpleQueue[list[memoryview] | Checkpoint | NetError] = (
            queue.SimpleQueue()
        )
        self._recv_error: NetError | None = None
        self._closing = False
        self._reader = threading.Thread(
            target=self._read_loop, name=f"enigma-net-from-{self.peer}", daemon=True
        )
        self._reader.start()

    # ---- sending -------------------------------------------------------------------------

    def send(self, buffers: Sequence[Buffer]) -> None:
        """Encrypt and send one message of frames; its digest joins the sent chain."""
        views = [as_byte_view(b, i) for i, b in enumerate(buffers)]
        head = encode_head([v.nbytes for v in views])
        if len(head) > CHUNK:
            raise ValueError(f"a message holds at most {(CHUNK - 4) // 8} frames")
        digest = blake3.blake3(head)
        with self._send_lock:
            self._check_send()
            try:
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
            self.sent_chain = chain_next(self.sent_chain, digest.digest())

    def send_checkpoint(self) -> None:
        """Sign the sent chain's head and send it as a CHECKPOINT record (not a message)."""
        with self._send_lock:
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
        try:
            self._sock.sendall(self._out[: self._fill])
        except (BlockingIOError, TimeoutError) as exc:
            raise PeerTimeout(
                f"party {self.peer} accepted no data for {self._timeout:g} s: it stalled or the"
                " network to it is down",
                self.peer,
            ) from exc
        except OSError as exc:
            raise PeerDisconnected(
                f"sending to party {self.peer} failed: {exc.strerror or exc}; it has gone away",
                self.peer,
            ) from exc
        finally:
            self._fill = 0

    # ---- receiving -----------------------------------------------------------------------

    def next_item(self, timeout: float) -> list[memoryview] | Checkpoint:
        """The next message (its frames) or checkpoint from the peer, in order."""
        if self._recv_error is not None:
            raise self._recv_error
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            raise PeerTimeout(
                f"party {self.peer} sent nothing for {timeout:g} s: it stalled, crashed or is"
                " at another step of the protocol",
                self.peer,
            ) from None
        if isinstance(item, NetError):
            self._recv_error = item
            raise item
        if isinstance(item, Checkpoint):
            self.checkpoint = item
        return item

    def transcript(self) -> ChannelTranscript:
        with self._send_lock:
            sent = (self.sent_count, self.sent_chain)
        return ChannelTranscript(
            self.peer, sent[0], sent[1], tuple(self._received_digests),
            self._received_chain, self.checkpoint,
        )

    def _read_loop(self) -> None:
        try:
            while True:
                self._inbox.put(self._read_item())
        except NetError as exc:
            self._inbox.put(exc)
        except (OSError, ValueError) as exc:  # ValueError: file closed under us by close()
            self._inbox.put(
                PeerDisconnected(f"the connection to party {self.peer} broke: {exc}", self.peer)
            )
        except Exception as exc:  # e.g. MemoryError: never let the reader die unreported
            self._inbox.put(
                NetError(f"receiving from party {self.peer} failed: {exc!r}", self.peer)
            )

    def _read_exact(self, view: memoryview, where: str, boundary: bool = False) -> None:
        got = self._rfile.readinto(view)
        if got == len(view):
            return
        if boundary and got == 0:
            why = "we closed the channel" if self._closing else "it closed the connection"
            raise PeerDisconnected(f"party {self.peer} is gone: {why}", self.peer)
        raise TruncatedFrame(
            f"the stream from party {self.peer} ended inside {where} "
            f"({got} of {len(view)} bytes): the connection was cut or the peer crashed",
            self.peer,
        )

    def _read_record(
        self, kinds: tuple[int, ...], out: memoryview | None, where: str, boundary: bool = False
    ) -> tuple[int, memoryview]:
        """Read, authenticate and decrypt the next record into `out` (or scratch)."""
        header = bytearray(HEADER.size)
        self._read_exact(memoryview(header), f"the header of {where}", boundary)
        seq, n, kind = HEADER.unpack(header)
        if n > CHUNK:
            raise TamperedFrame(
                f"party {self.peer} sent a record header claiming {n} bytes (> {CHUNK}) in "
                f"{where}: the stream was altered",
                self.peer,
            )
        sealed = self._scratch[: n + TAG_SIZE]
        self._read_exact(sealed, where)
        target = out if out is not None else memoryview(bytearray(n))
        if seq != self._recv_seq:
            self._classify(seq, sealed, bytes(header), where)
        try:
            self._open.decrypt_into(_nonce(seq), sealed, bytes(header), target)
        except InvalidTag:
            raise TamperedFrame(
                f"record {seq} from party {self.peer} ({where}) does not authenticate: it was"
                " altered on the way or forged",
                self.peer,
            ) from None
        self._recv_seq += 1
        if kind not in kinds or (out is not None and n != len(out)):
            raise ProtocolError(
                f"party {self.peer} sent a record of kind {kind} and {n} bytes as {where}: "
                "its sender does not follow this protocol version",
                self.peer,
            )
        return kind, target

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

    def _read_item(self) -> list[memoryview] | Checkpoint:
        kind, plain = self._read_record(
            (KIND_HEAD, KIND_CHECKPOINT), None, "the next message", boundary=True
        )
        if kind == KIND_CHECKPOINT:
            return self._accept_checkpoint(bytes(plain))
        try:
            lengths = decode_head(plain)
        except (ValueError, struct.error) as exc:
            raise ProtocolError(
                f"party {self.peer} sent a malformed message head: {exc}", self.peer
            ) from exc
        if sum(lengths) > self._max_message:
            raise ProtocolError(
                f"party {self.peer} announced a message of {sum(lengths)} bytes, more than the"
                f" {self._max_message} this mesh accepts (raise max_message if that is intended)",
                self.peer,
            )
        digest = blake3.blake3(plain)
        frames = [np.empty(length, np.uint8) for length in lengths]
        views = [memoryview(f) for f in frames]
        message = len(self._received_digests)
        for i, view in enumerate(views):
            for off in range(0, len(view), CHUNK):
                chunk = view[off : off + CHUNK]
                where = f"message {message}, frame {i}, bytes {off}..{off + len(chunk)}"
                self._read_record((KIND_DATA,), chunk, where)
                digest.update(chunk)
        d = digest.digest()
        self._received_digests.append(d)
        self._received_chain = chain_next(self._received_chain, d)
        return views

    def _accept_checkpoint(self, payload: bytes) -> Checkpoint:
        if len(payload) != _CHECKPOINT.size:
            raise ProtocolError(f"party {self.peer} sent a checkpoint of {len(payload)} bytes")
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

    # ---- closing -------------------------------------------------------------------------

    def shutdown_send(self) -> None:
        """Tell the peer we are done (FIN) while still draining what it sends us."""
        self._closing = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    def close(self, grace: float) -> None:
        """Wait up to `grace` s for the peer to finish too, then drop the connection."""
        self.shutdown_send()
        self._reader.join(grace)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._reader.join(grace)
        self._rfile.close()
        self._sock.close()

