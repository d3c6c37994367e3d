"""The record layer against an attacker on the wire: any change to the stream is caught.

Two channels talk through a "network" that this test controls: it takes the sender's
bytes, cuts them into records by their clear headers (all an attacker sees), drops,
duplicates, swaps, flips or cuts them, and delivers the result. Whatever it does, the
receiver delivers only a prefix of what was sent, and anything but a clean cut raises
a FrameError or ProtocolError naming the sender.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from enigma.net import FrameError, Identity, PeerDisconnected, ProtocolError
from enigma.net.channel import CHUNK, HEADER, TAG_SIZE, Channel
from enigma.net.handshake import ChannelKeys
from enigma.net.transcript import session_id

SID = session_id(b"channel test")
SENDER, RECEIVER = Identity.generate(), Identity.generate()


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        a = socket.create_connection(server.getsockname())
        b, _ = server.accept()
    return a, b


def _wait(ch: Channel) -> None:
    select.select([], [ch.fd], [], 5)


def _records(stream: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(stream):
        _seq, n, _kind = HEADER.unpack_from(stream, pos)
        end = pos + HEADER.size + n + TAG_SIZE
        out.append(stream[pos:end])
        pos = end
    return out


def _transmit(messages: list[list[bytes]], tamper) -> tuple[list[list[bytes]], Exception, bool]:
    """Send `messages`, let `tamper(records)` rewrite the stream, return what arrived."""
    key_out, key_back = os.urandom(32), os.urandom(32)
    s_send, net_in = _tcp_pair()
    net_out, s_recv = _tcp_pair()
    sender = Channel(s_send, ChannelKeys(1, key_out, key_back), 0, SID, SENDER,
                     RECEIVER.public_key, 1 << 30, _wait)
    receiver = Channel(s_recv, ChannelKeys(0, key_back, key_out), 1, SID, RECEIVER,
                       SENDER.public_key, 1 << 30, _wait)
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
            select.select([s_recv], [], [], 0.05)
            receiver.pump()
            while receiver.has_item():
                delivered.append([bytes(f) for f in receiver.next_item()])
        # The receiver stopped reading: hang up, or the network's sendall of the rest of
        # a large stream would wait for a reader forever.
        s_recv.close()
        network.join(timeout=10)
        assert not network.is_alive(), "the network thread is stuck delivering"
        return delivered, receiver.recv_error, clean_cut
    finally:
        for s in (s_send, net_in, net_out, s_recv):
            s.close()


frames = st.lists(st.sampled_from([b"", b"abc", bytes(range(256)) * 200, b"\x07" * (CHUNK + 5)]),
                  max_size=3)
messages = st.lists(frames, min_size=1, max_size=4)


def test_an_untouched_stream_delivers_every_message():
    sent = [[b"x"], [], [b"", b"\x07" * (CHUNK + 5)], [bytes(range(256)) * 300]]
    delivered, error, _ = _transmit(sent, lambda records: records)
    assert delivered == sent
    assert isinstance(error, PeerDisconnected) and error.party == 0


@settings(max_examples=40)
@given(sent=messages, data=st.data())
def test_any_change_to_the_stream_is_caught(sent, data):
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
            return [*records[:i], bytes(flipped), *records[i + 1 :]]
        wire = b"".join(records)
        return [wire[: data.draw(st.integers(0, len(wire) - 1))]]

    delivered, error, clean_cut = _transmit(sent, tamper)
    assert delivered == sent[: len(delivered)]  # never a wrong message, only a prefix
    assert len(delivered) < len(sent) or isinstance(error, FrameError)
    assert error is not None and error.party == 0
    if not clean_cut:
        assert isinstance(error, FrameError | ProtocolError), error
