"""TLS 1.3 for the mesh and the node service: a certificate per node key, pinned, no CA.

A node's certificate is self-signed with its Ed25519 identity key (the key the ledger
registers), so the certificate proves nothing by itself: what matters is that its public
key is the one expected for that peer. Both ends check exactly that ("pinning"):

- the dialer (TLS client) does not verify a chain (CERT_NONE) and, once the handshake is
  done, compares the listener's certificate key with the key it expects; TLS 1.3 has
  already checked the listener's CertificateVerify signature over the handshake with
  that key, which OpenSSL does whatever the verify mode;
- the listener (TLS server) must request the dialer's certificate, and Python's `ssl`
  then verifies it against a trust store with no way to plug in a callback. So the
  dialer announces its certificate before the handshake (the preface, `handshake.py`),
  the listener checks the certificate's key against the expected key, and trusts exactly
  that one certificate for this one connection (`server_context`). OpenSSL then requires
  the dialer to present it and to sign the handshake with its key.

The session and the two parties travel as the TLS server name (`session_name`).

Why no CA: the ledger is the registry of node keys, and a CA would add a second
authority whose compromise would let it impersonate any node.

Key material reaches OpenSSL through an anonymous in-memory file (`memfd_create`, Linux):
`ssl` loads keys only from a path, and the identity key must never touch the disk
unencrypted outside its own key file.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import os
import ssl
import threading
from collections.abc import Iterator

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.x509.oid import NameOID

from .identity import Identity

#: Longest certificate a preface may carry; ours are ~300 bytes.
MAX_CERT = 1024
_EPOCH = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
_FOREVER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)


def certificate(identity: Identity) -> bytes:
    """The node's self-signed X.509 certificate (DER) for its Ed25519 key.

    The same key always gives the same certificate (Ed25519 signs deterministically and
    every field is fixed): no expiry to manage, since trust is the pinned key, and a key
    is replaced by registering a new one on the ledger.
    """
    key = Ed25519PrivateKey.from_private_bytes(identity.private_bytes())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                         f"enigma node {identity.public_key.hex()[:32]}")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(int.from_bytes(identity.public_key[:16], "big") >> 1 or 1)
            .not_valid_before(_EPOCH).not_valid_after(_FOREVER)
            .sign(key, None))
    return cert.public_bytes(serialization.Encoding.DER)


def certificate_key(der: bytes) -> bytes | None:
    """The raw Ed25519 public key of a DER certificate, None if it is not one."""
    try:
        key = x509.load_der_x509_certificate(der).public_key()
    except ValueError:
        return None
    if not isinstance(key, Ed25519PublicKey):
        return None
    return key.public_bytes_raw()


@contextlib.contextmanager
def _in_memory(data: bytes) -> Iterator[str]:
    """A path to `data` in an anonymous memory file, valid inside the block."""
    fd = os.memfd_create("enigma-tls", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def _context(side: int, identity: Identity, cert: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(side)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.options |= ssl.OP_NO_TICKET  # a link is set up once per job; no resumption
    # Our messages delimit themselves and a FIN between two is a clean end (`channel.py`):
    # without this, OpenSSL answers a FIN with a decode_error alert to a closing peer.
    ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    key = Ed25519PrivateKey.from_private_bytes(identity.private_bytes()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    pem = ssl.DER_cert_to_PEM_cert(cert).encode()
    with _in_memory(key + pem) as path:
        ctx.load_cert_chain(path)
    return ctx


def client_context(identity: Identity, cert: bytes) -> ssl.SSLContext:
    """The dialer's context: presents our certificate, verifies no chain (the caller pins)."""
    ctx = _context(ssl.PROTOCOL_TLS_CLIENT, identity, cert)
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def server_context(identity: Identity, cert: bytes) -> ssl.SSLContext:
    """The listener's context: requires a client certificate among those it was told to trust."""
    ctx = _context(ssl.PROTOCOL_TLS_SERVER, identity, cert)
    ctx.num_tickets = 0
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _note_server_name(sock: ssl.SSLSocket | ssl.SSLObject, name: str | None,
                      _ctx: ssl.SSLContext) -> None:
    """Keep the name the dialer asked for; the listener compares it after the handshake."""
    sock.enigma_server_name = name  # type: ignore[union-attr]


class Credentials:
    """One identity's certificate and TLS contexts, made once: loading a key into OpenSSL
    costs ~6 ms here (its decoders), a handshake well under 1 ms.

    The server context trusts each dialer certificate the listener has checked against
    the expected key (`trust`), and the listener checks the presented certificate's key
    again after the handshake, so a certificate trusted for one peer never stands for
    another. The trusted set is bounded: past MAX_TRUSTED certificates (a node's service
    sees every client's) the context is made afresh.
    """

    MAX_TRUSTED = 4096

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.cert = certificate(identity)
        self.client = client_context(identity, self.cert)
        self._server: ssl.SSLContext | None = None
        self._trusted: set[bytes] = set()
        self._lock = threading.Lock()

    def server_for(self, peer_cert: bytes) -> ssl.SSLContext:
        """The server context, trusting `peer_cert` (already checked by the caller)."""
        with self._lock:
            if self._server is None or len(self._trusted) >= self.MAX_TRUSTED:
                self._server, self._trusted = server_context(self.identity, self.cert), set()
                self._server.sni_callback = _note_server_name
            if peer_cert not in self._trusted:
                self._server.load_verify_locations(cadata=peer_cert)
                self._trusted.add(peer_cert)
            return self._server


_CACHE: collections.OrderedDict[bytes, Credentials] = collections.OrderedDict()
_CACHE_LOCK = threading.Lock()


def credentials(identity: Identity) -> Credentials:
    """The Credentials of `identity`, kept for the few identities a process uses (LRU of 16)."""
    key = identity.public_key
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
    made = Credentials(identity)
    with _CACHE_LOCK:
        _CACHE[key] = made
        while len(_CACHE) > 16:
            _CACHE.popitem(last=False)
    return made


def session_name(sid: bytes, dialer: int, listener: int) -> str:
    """The server name (SNI) that binds a connection to a session and two parties.

    Why SNI: the dialer sends it in its ClientHello, which the handshake authenticates,
    and it is set per connection (ALPN is set per context in Python's `ssl`, which the
    node's concurrent jobs share). The listener accepts only its own name: a relay that
    edits the preface cannot move a link into another job or between parties.
    """
    return f"s{sid[:16].hex()}.{sid[16:].hex()}.p{dialer}-{listener}.enigma"
