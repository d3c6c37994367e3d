"""A TLS link between two identities over a real TCP connection, for channel-level tests."""

from __future__ import annotations

import concurrent.futures
import socket
import time

from enigma.net import handshake as hs
from enigma.net.identity import Identity


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Two ends of one loopback TCP connection: (dialing end, accepted end)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        a = socket.create_connection(server.getsockname())
        b, _ = server.accept()
    return a, b


def tls_pair(dialer: Identity, listener: Identity, sid: bytes,
             socks: tuple[socket.socket, socket.socket] | None = None) -> tuple[hs.Link, hs.Link]:
    """Run the real handshake (dialer = party 1, listener = party 0) on `socks` (default a
    fresh TCP pair); the two links, dialer's first."""
    a, b = socks or tcp_pair()
    deadline = time.monotonic() + 10
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        accepted = pool.submit(hs.accept, b, 0, listener,
                               lambda p: dialer.public_key if p == 1 else None, sid, deadline)
        dialed = hs.dial(a, 1, 0, dialer, listener.public_key, sid, deadline)
        return dialed, accepted.result(10)
