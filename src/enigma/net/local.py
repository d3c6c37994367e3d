"""A quorum on one machine: free ports, fresh identities, the peer list they share.

Why ports are found by binding to port 0 and closing: each party binds its own listener
later, in its own process, so the helper can only reserve by probing. Another process may
take the port in between; the Mesh then fails with a clear "cannot listen" error. Tests
and benchmarks accept that small race.
"""

from __future__ import annotations

import socket

from .identity import Identity, PeerInfo


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct TCP ports that were free on `host` a moment ago."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def local_quorum(
    parties: int = 3, host: str = "127.0.0.1"
) -> tuple[list[Identity], list[PeerInfo]]:
    """Fresh identities for `parties` parties and the peer list that names them all."""
    identities = [Identity.generate() for _ in range(parties)]
    ports = free_ports(parties, host)
    peers = [
        PeerInfo(i, host, port, ident.public_key)
        for i, (ident, port) in enumerate(zip(identities, ports, strict=True))
    ]
    return identities, peers


def free_port_in(host: str, low: int, high: int) -> int:
    """A TCP port of `low..high` free on `host` a moment ago; (0, 0) means any free port.

    Why a range: a node behind a firewall opens only the ports its administrator listed
    (docs/node.md), so every job's mesh must listen on one of them.
    """
    if (low, high) == (0, 0):
        return free_ports(1, host)[0]
    for port in range(low, high + 1):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free TCP port in {low}-{high} on {host}: every one is in use "
                  "(jobs running at once take one each); widen job_ports")
