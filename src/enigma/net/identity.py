"""Who a node is: its Ed25519 signing key, and the public facts others hold about it.

Why one Ed25519 key per node and no static encryption key: the node's TLS certificate is
self-signed with this key (`enigma.net.tls`) and TLS 1.3 derives fresh channel keys from
ephemeral ones, so the one key that the ledger registers is also the key that signs
transcript checkpoints, which the blame layer needs anyway.

A key file is text, so an operator can see what it is:

    enigma-node-key v1
    <private key, 64 hex digits>
    <public key, 64 hex digits>
    <BLAKE3 checksum of the two lines above, 64 hex digits>

It is written atomically (temporary file, fsync, rename) with mode 0600, and refused on
read if it is readable by group or others, if the checksum fails, or if the public key
does not belong to the private key.
"""

from __future__ import annotations

import os
import pathlib
import stat
from dataclasses import dataclass

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from enigma.files import write_atomic

from .errors import AuthenticationError, KeyFileError, MalformedKey

KEY_FILE_HEADER = "enigma-node-key v1"

# Ed25519 (RFC 8032 §5.1): the prime, the curve constant d, and a square root of -1.
_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


@dataclass(frozen=True)
class PeerInfo:
    """Where a quorum member listens and the Ed25519 public key it proves itself with."""

    party: int
    host: str
    port: int
    public_key: bytes

    def __post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise ValueError(
                f"PeerInfo for party {self.party}: public_key must be 32 raw Ed25519 bytes, "
                f"got {len(self.public_key)}"
            )
        if not 0 < self.port < 65536:
            raise ValueError(f"PeerInfo for party {self.party}: port {self.port} is not 1..65535")


def _edwards_add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """Affine addition on -x^2 + y^2 = 1 + d x^2 y^2 (complete: d is not a square)."""
    (x1, y1), (x2, y2) = a, b
    t = _D * x1 * x2 * y1 * y2 % _P
    x3 = (x1 * y2 + y1 * x2) * pow(1 + t, _P - 2, _P) % _P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, _P - 2, _P) % _P
    return x3, y3


def key_defect(public_key: bytes) -> str | None:
    """Why `public_key` cannot be anyone's Ed25519 key, or None if it can.

    Why check at all: OpenSSL verifies against any 32 bytes, and a small-order key (the
    all-zero key among them) has signatures that verify for a quarter of all messages
    without any private key (`0 = R + h*A` holds when A and R have order 4 and h = 0 mod
    4). So a key must decode canonically (RFC 8032 §5.1.3) to a point of large order.
    """
    if len(public_key) != 32:
        return f"{len(public_key)} bytes, not 32"
    y = int.from_bytes(public_key, "little") & ((1 << 255) - 1)
    sign = public_key[31] >> 7
    if y >= _P:
        return "not canonically encoded (y >= p)"
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    if v * x * x % _P == (-u) % _P:
        x = x * _SQRT_M1 % _P
    if v * x * x % _P != u:
        return "not a point of the curve"
    if x == 0 and sign:
        return "not canonically encoded (negative zero x)"
    point = (_P - x if (x & 1) != sign else x, y)
    for _ in range(3):
        point = _edwards_add(point, point)
    if point == (0, 1):
        return "a point of small order (a key without a private key, e.g. all zeros)"
    return None


def check_key(public_key: bytes, whose: str, party: int | None = None) -> None:
    """Raise MalformedKey naming `whose` key if it cannot be a real Ed25519 key."""
    defect = key_defect(public_key)
    if defect is not None:
        raise MalformedKey(
            f"{whose} public key {public_key.hex()[:16]}... is malformed: {defect}", party
        )


def verify_signature(public_key: bytes, signature: bytes, data: bytes, party: int) -> None:
    """Raise AuthenticationError naming `party` unless `signature` is its signature on `data`."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError) as exc:
        raise AuthenticationError(
            f"signature of party {party} does not verify under its registered public key "
            f"{public_key.hex()[:16]}...: a stranger, a wrong key in the peer list,"
            " or altered data",
            party,
        ) from exc


class Identity:
    """This node's secret signing key. Never printed: repr shows the public key only."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key: bytes = private_key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls) -> Identity:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> Identity:
        """Rebuild from the 32 secret bytes, e.g. handed to a child process over a pipe."""
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        return self._key.private_bytes_raw()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"Identity(public_key={self.public_key.hex()})"

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key file atomically with mode 0600 (see the module docstring)."""
        path = pathlib.Path(path)
        secret = self.private_bytes().hex()
        public = self.public_key.hex()
        body = f"{KEY_FILE_HEADER}\n{secret}\n{public}\n"
        text = body + blake3.blake3(body.encode()).hexdigest() + "\n"
        write_atomic(path, [text.encode()])

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Identity:
        """Read and check a key file written by `save`; KeyFileError says what is wrong."""
        path = pathlib.Path(path)
        try:
            mode = path.stat().st_mode
            text = path.read_text()
        except OSError as exc:
            raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(
                f"key file {path} is accessible by group or others (mode {stat.filemode(mode)});"
                f" run `chmod 600 {path}` and consider the key compromised if others could read it"
            )
        lines = text.split("\n")
        if len(lines) != 5 or lines[0] != KEY_FILE_HEADER or lines[4] != "":
            raise KeyFileError(
                f"key file {path} is not an '{KEY_FILE_HEADER}' file of 4 lines;"
                " restore it from a backup or generate a new identity and register it"
            )
        body = "\n".join(lines[:3]) + "\n"
        if blake3.blake3(body.encode()).hexdigest() != lines[3]:
            raise KeyFileError(
                f"key file {path} is corrupted (checksum mismatch);"
                " restore it from a backup or generate a new identity and register it"
            )
        try:
            identity = cls.from_private_bytes(bytes.fromhex(lines[1]))
            public = bytes.fromhex(lines[2])
        except ValueError as exc:
            raise KeyFileError(f"key file {path} holds a malformed key: {exc}") from exc
        if identity.public_key != public:
            raise KeyFileError(
                f"key file {path}: the public key does not belong to the private key;"
                " the file was edited or mixed up with another one"
            )
        return identity
