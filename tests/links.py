"""A TLS link between two identities over a real TCP connection, for channel-level tests."""

from __future__ import annotations

import concurrent.futures
import datetime
import socket
import struct
import time

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.x509.oid import NameOID

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


def certificate_for(subject_key, signing_key, sign_hash=None) -> bytes:
    """A certificate (DER) naming `subject_key`, signed by `signing_key`: what a stranger
    can make for a key it does not hold, e.g. the all-zero Ed25519 key."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stranger")])
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(subject_key).serial_number(7).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(signing_key, sign_hash).public_bytes(serialization.Encoding.DER))


def zero_key_certificate() -> bytes:
    return certificate_for(Ed25519PublicKey.from_public_bytes(bytes(32)),
                           Ed25519PrivateKey.generate())


def preface(cert: bytes, claimed: int = 1, listener: int = 0) -> bytes:
    """The bytes a dialer sends before TLS, announcing `cert` (`handshake.py`, step 1)."""
    return struct.pack("<16sHHH", hs.MAGIC, claimed, listener, len(cert)) + cert
