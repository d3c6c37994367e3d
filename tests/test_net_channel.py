"""Messages over TLS against an attacker on the wire: any change to the stream is caught.

Two channels talk through a "network" that this test controls: the handshake passes
untouched, then the network takes the sender's bytes, cuts them into TLS records by
their clear headers (all an attacker sees), drops, duplicates, swaps, flips or cuts
them, and delivers the result. Whatever it does, the receiver delivers only a prefix of
what was sent, and anything but a clean cut raises a FrameError naming the sender; a
change to a record's length field may also look like the stream ending early
(PeerDisconnected), since TLS then waits for bytes that never come.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from enigma.net import FrameError, Identity, PeerDisconnected, ProtocolError
from enigma.net.channel import CHUNK, Channel
from enigma.net.transcript import session_id

from .links import tcp_pair, tls_pair

SID = session_id(b"channel test")
SENDER, RECEIVER = Identity.generate(), Identity.generate()


def _wait(ch: Channel) -> None:
    select.select([], [ch.fd], [], 5)


def _records(stream: bytes) -> list[bytes]:
    """The TLS records of a stream: 5-byte header (type, version, length), then the body."""
    out, pos = [], 0
    while pos < len(stream):
        (n,) = struct.unpack_from(">H", stream, pos + 3)
        out.append(stream[pos : pos + 5 + n])
        pos += 5 + n
    return out


def _forward(src: socket.socket, dst: socket.socket, stop: threading.Event) -> None:
    while not stop.is_set():
        if select.select([src], [], [], 0.02)[0]:
            data = src.recv(1 << 16)
            if not data:
                return
            dst.sendall(data)


def _transmit(messages: list[list[bytes]], tamper) -> tuple[list[list[bytes]], Exception, bool]:
    """Send `messages`, let `tamper(records)` rewrite the stream, return what arrived.

    The sender is the TLS server (party 0), the receiver the client (party 1); each talks
    to its own end of the test's network, which forwards the handshake both ways.
    """
    s_send, net_in = tcp_pair()
    s_recv, net_out = tcp_pair()
    stop = threading.Event()
    forwarders = [threading.Thread(target=_forward, args=(*pair, stop))
                  for pair in ((net_in, net_out), (net_out, net_in))]
    for f in forwarders:
        f.start()
    try:
        dialed, accepted = tls_pair(RECEIVER, SENDER, SID, socks=(s_recv, s_send))
    finally:
        stop.set()
        for f in forwarders:
            f.join()
    sender = Channel(accepted.sock, 1, 0, SID, SENDER, RECEIVER.public_key, 1 << 30, _wait)
    receiver = Channel(dialed.sock, 0, 1, SID, RECEIVER, SENDER.public_key, 1 << 30, _wait)
    stream = bytearray()
    try:
        for m in messages:
            sender.send(m)
            while True:  # drain the sender's socket as a network would
                ready, _, _ = select.select([net_in], [], [], 0.05)
                if not ready:
                    break
                stream += net_in.recv(1 << 20)
        records = _records(bytes(stream))
        wire = b"".join(tamper(records))
        clean_cut = bytes(stream).startswith(wire)

        def deliver() -> None:
            with contextlib.suppress(OSError):  # the receiver may hang up first
                net_out.sendall(wire)
                net_out.shutdown(socket.SHUT_WR)

        network = threading.Thread(target=deliver)
        network.start()
        delivered = []
        while receiver.readable:
            select.select([receiver.fd], [], [], 0.05)
            receiver.pump()
            while receiver.has_item():
                delivered.append([bytes(f) for f in receiver.next_item()])
        # The receiver stopped reading: hang up, or the network's sendall of the rest of
        # a large stream would wait for a reader forever.
        receiver.close()
        network.join(timeout=10)
        assert not network.is_alive(), "the network thread is stuck delivering"
        return delivered, receiver.recv_error, clean_cut
    finally:
        sender.close()
        receiver.close()
        for s in (net_in, net_out):
            s.close()


frames = st.lists(st.sampled_from([b"", b"abc", bytes(range(256)) * 200, b"\x07" * (CHUNK + 5)]),
                  max_size=3)
messages = st.lists(frames, min_size=1, max_size=4)


def test_an_untouched_stream_delivers_every_message():
    sent = [[b"x"], [], [b"", b"\x07" * (CHUNK + 5)], [bytes(range(256)) * 300]]
    delivered, error, _ = _transmit(sent, lambda records: records)
    assert delivered == sent
    assert isinstance(error, PeerDisconnected) and error.party == 0


@settings(max_examples=40, deadline=None)
@given(sent=messages, data=st.data())
def test_any_change_to_the_stream_is_caught(sent, data):
    lengths_changed = []

    def tamper(records: list[bytes]) -> list[bytes]:
        k = len(records)
        how = data.draw(st.sampled_from(["drop", "duplicate", "swap", "flip", "cut"]))
        i = data.draw(st.integers(0, k - 1))
        if how == "drop":
            return records[:i] + records[i + 1 :]
        if how == "duplicate":
            return records[: i + 1] + records[i:]
        if how == "swap":
            j = data.draw(st.integers(0, k - 1).filter(lambda j: records[j] != records[i]))
            out = list(records)
            out[i], out[j] = out[j], out[i]
            return out
        if how == "flip":
            bit = data.draw(st.integers(0, 8 * len(records[i]) - 1))
            flipped = bytearray(records[i])
            flipped[bit // 8] ^= 1 << (bit % 8)
            lengths_changed.append(bit // 8 in (3, 4))
            return [*records[:i], bytes(flipped), *records[i + 1 :]]
        wire = b"".join(records)
        return [wire[: data.draw(st.integers(0, len(wire) - 1))]]

    delivered, error, clean_cut = _transmit(sent, tamper)
    assert delivered == sent[: len(delivered)]  # never a wrong message, only a prefix
    assert len(delivered) < len(sent) or isinstance(error, FrameError)
    assert error is not None and error.party == 0
    if not clean_cut:
        allowed = (FrameError, ProtocolError) + ((PeerDisconnected,) if any(lengths_changed)
                                                 else ())
        assert isinstance(error, allowed), error
