"""Signed DHT records: who holds which dataset and chunk, and where each node listens.

Any Kademlia node can store anything under any key, so a record carries its writer's
Ed25519 public key and signature, and its DHT key is bound to that writer:

    key = SHA-256("<kind>:<name>@<writer public key, hex>")

A reader always knows whose record it wants (the dataset owner from the ledger; for a
node record the node id *is* the public key), so it computes the key, and a record under
that key is accepted only if it names the same kind, name and writer and its signature
verifies. A stranger can neither overwrite the pointer (its own records land under other
keys) nor alter it (the signature breaks), and cannot squat a name before the owner.

Why the writer in the key and not first-writer-wins or last-writer-wins on a bare name:
first-writer-wins lets a stranger squat an id before its owner publishes; last-writer-wins
lets a stranger replace a good pointer with its own validly signed one, which the reader
then rejects, losing the pointer. Binding the key to the writer has neither problem.

Wire form, UTF-8 JSON with sorted keys and no spaces (`sig` covers all other fields,
prefixed by a domain tag):

    {"body": {...}, "kind": "dataset"|"chunk"|"node", "name": str, "seq": int,
     "sig": hex(64 bytes), "v": 1, "writer": hex(32 bytes)}

`seq` (the writer's clock in ns by default) orders a writer's versions of one record:
DHT nodes keep the highest and refuse replays of older ones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

KINDS = ("dataset", "chunk", "node")
# rpcudp refuses requests whose msgpack form exceeds 8192 bytes; a STORE request adds the
# method name, two 20-byte ids and framing (55 bytes) to the record.
MAX_RECORD_BYTES = 8100
_DOMAIN = b"enigma.dht.record.v1\0"


class DhtError(Exception):
    """A DHT operation that could not be completed."""


class InvalidRecordError(DhtError):
    """A record that is unsigned, altered, malformed or stored under the wrong key."""


class RecordTooLargeError(DhtError):
    """A record that does not fit in one UDP request of the DHT."""


def record_key(kind: str, name: str, writer: bytes) -> bytes:
    """The 32-byte DHT key of `writer`'s record about `kind`:`name`."""
    _check_kind(kind)
    return hashlib.sha256(f"{kind}:{name}@{writer.hex()}".encode()).digest()


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"record kind {kind!r} is not one of {KINDS}")


@dataclass(frozen=True)
class Record:
    """A verified (or freshly signed) DHT record."""

    kind: str
    name: str
    writer: bytes
    seq: int
    body: dict[str, Any]
    signature: bytes

    @property
    def key(self) -> bytes:
        return record_key(self.kind, self.name, self.writer)

    def _unsigned(self) -> dict[str, Any]:
        return {"v": 1, "kind": self.kind, "name": self.name, "writer": self.writer.hex(),
                "seq": self.seq, "body": self.body}

    def signed_bytes(self) -> bytes:
        return _DOMAIN + _canonical(self._unsigned()).encode()

    def encode(self) -> str:
        """The wire form; RecordTooLargeError if it exceeds MAX_RECORD_BYTES."""
        text = _canonical({**self._unsigned(), "sig": self.signature.hex()})
        size = len(text.encode())
        if size > MAX_RECORD_BYTES:
            raise RecordTooLargeError(
                f"the {self.kind} record {self.name!r} is {size} bytes; a DHT record holds at "
                f"most {MAX_RECORD_BYTES} (one UDP request). Store pointers, not data: split "
                "long holder lists into per-chunk records."
            )
        return text


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sign_record(
    key: Ed25519PrivateKey, kind: str, name: str, body: dict[str, Any], seq: int
) -> Record:
    """Sign `body` as `kind`:`name`, checking the size and node-record rules up front."""
    _check_kind(kind)
    writer = key.public_key().public_bytes_raw()
    if kind == "node" and name != writer.hex():
        raise ValueError("a node record's name must be its writer's public key in hex")
    unsigned = Record(kind, name, writer, seq, dict(body), b"")
    record = Record(kind, name, writer, seq, unsigned.body, key.sign(unsigned.signed_bytes()))
    record.encode()
    return record


def claimed_key(text: object) -> bytes:
    """The key a record says it belongs under (unverified: for routing it, not trusting it)."""
    try:
        fields = json.loads(text)  # type: ignore[arg-type]
        return record_key(str(fields["kind"]), str(fields["name"]),
                          bytes.fromhex(fields["writer"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidRecordError(f"a DHT value is not a record: {exc}") from exc


def verify_record(text: object, key: bytes) -> Record:
    """Parse and check a record found under DHT `key`; InvalidRecordError says what is wrong.

    1. it must be JSON of the wire form with every field of the right type;
    2. its kind, name and writer must hash to `key` (it is about what was asked for);
    3. a node record must be written by the node it names;
    4. its signature must verify under the writer's key.
    """
    where = f"record under DHT key {key.hex()[:16]}..."
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        raise InvalidRecordError(f"{where} is a {type(text).__name__}, not a JSON record")
    try:
        fields = json.loads(text)
        if fields.get("v") != 1:
            raise ValueError(f"version {fields.get('v')!r}, expected 1")
        if "sig" not in fields:
            raise InvalidRecordError(f"{where} is unsigned: it has no 'sig' field")
        record = Record(
            kind=str(fields["kind"]), name=str(fields["name"]),
            writer=bytes.fromhex(fields["writer"]), seq=int(fields["seq"]),
            body=dict(fields["body"]), signature=bytes.fromhex(fields["sig"]),
        )
    except InvalidRecordError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidRecordError(f"{where} is malformed: {exc}") from exc
    if record.kind not in KINDS or len(record.writer) != 32 or record.key != key:
        raise InvalidRecordError(
            f"{where} claims to be {record.kind}:{record.name!r} by "
            f"{record.writer.hex()[:16]}..., which is not what that key names: "
            "a record moved to another key"
        )
    if record.kind == "node" and record.name != record.writer.hex():
        raise InvalidRecordError(f"{where}: node record for {record.name[:16]}... is not "
                                 "written by that node")
    try:
        Ed25519PublicKey.from_public_bytes(record.writer).verify(
            record.signature, record.signed_bytes())
    except (InvalidSignature, ValueError) as exc:
        raise InvalidRecordError(
            f"{where} ({record.kind}:{record.name!r}) has a signature that does not verify "
            f"under its writer {record.writer.hex()[:16]}...: altered in storage or transit"
        ) from exc
    return record
