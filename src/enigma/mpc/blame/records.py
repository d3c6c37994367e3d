"""The signed records of a blamed run: statements, abort records, and a party's package.

After each message a party signs a `Statement`: its message counts and BLAKE3 chain heads
with every peer, in both directions. So each message is attributable the moment it arrives
(no cooperation is needed after an abort), and each statement is also the sender's signed
receipt of everything it had received. A party that stops signs an `AbortRecord` naming
whom it waited for; after an abort it hands over a `Package` (its material, the frames it
sent and received, the statements it holds, its abort record), sealed to the job's owner in
a deployment (docs/blame.md says why the quorum must not see it).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import blake3

from enigma.net.identity import verify_signature
from enigma.net.transcript import message_digest

from .codec import Reader, decode_msgs, encode_msgs, lv
from .material import Material

_STATEMENT = b"enigma-blame statement v1"
_ABORT = b"enigma-blame abort v1"
_PACKAGE = b"enigma-blame package v1"
#: Abort reasons that name a peer who did not deliver a valid, signed message in time.
ABSENCE = ("timeout", "disconnect", "unsigned")


def chain_start(sid: bytes, sender: int, receiver: int) -> bytes:
    label = b"enigma-blame chain" + sid + struct.pack("<HH", sender, receiver)
    return blake3.blake3(label).digest()


def chain_next(chain: bytes, digest: bytes) -> bytes:
    return blake3.blake3(chain + digest).digest()


def chain_of(sid: bytes, sender: int, receiver: int, messages: Sequence[Sequence[bytes]]) -> bytes:
    """The head after `messages` on the data chain sender -> receiver."""
    head = chain_start(sid, sender, receiver)
    for frames in messages:
        head = chain_next(head, message_digest(frames))
    return head



@dataclass(frozen=True)
class Head:
    """One channel as a statement's signer saw it: counts and chain heads both ways."""

    peer: int
    sent: int
    sent_chain: bytes
    received: int
    received_chain: bytes


@dataclass(frozen=True)
class Statement:
    """Signed by `party` after its `seq`-th message: its heads with every peer."""

    session_id: bytes
    party: int
    seq: int
    heads: tuple[Head, ...]
    signature: bytes = b""

    def body(self) -> bytes:
        out = [_STATEMENT, self.session_id, struct.pack("<HQH", self.party, self.seq,
                                                        len(self.heads))]
        for h in self.heads:
            out += [struct.pack("<HQ", h.peer, h.sent), h.sent_chain,
                    struct.pack("<Q", h.received), h.received_chain]
        return b"".join(out)

    def encode(self) -> bytes:
        return self.body() + self.signature

    @classmethod
    def decode(cls, raw: bytes) -> Statement:
        r = Reader(raw)
        if r.take(len(_STATEMENT)) != _STATEMENT:
            raise ValueError("not a blame statement")
        sid = r.take(32)
        party, seq, n = r.unpack("<HQH")
        heads = []
        for _ in range(n):
            peer, sent = r.unpack("<HQ")
            sent_chain = r.take(32)
            (received,) = r.unpack("<Q")
            heads.append(Head(peer, sent, sent_chain, received, r.take(32)))
        signature = r.take(64)
        r.end()
        return cls(sid, party, seq, tuple(heads), signature)

    def head(self, peer: int) -> Head:
        for h in self.heads:
            if h.peer == peer:
                return h
        raise ValueError(f"party {self.party}'s statement has no head for party {peer}")

    def verify(self, public_key: bytes) -> None:
        verify_signature(public_key, self.signature, self.body(), self.party)


@dataclass(frozen=True)
class AbortRecord:
    """Signed by `party`: why it stopped; for a timeout or disconnect, whom it waited for.

    `index` is the position of the message it was waiting for from `peer` (its count of
    messages received from `peer` so far), -1 when no peer is concerned.
    """

    session_id: bytes
    party: int
    reason: str
    peer: int
    index: int
    detail: str
    signature: bytes = b""

    def body(self) -> bytes:
        return (_ABORT + self.session_id + struct.pack("<Hqq", self.party, self.peer, self.index)
                + self.reason.encode())

    def verify(self, public_key: bytes) -> None:
        verify_signature(public_key, self.signature, self.body(), self.party)


@dataclass
class Package:
    """What one party hands over after an abort (sealed to the owner in a deployment)."""

    party: int
    material: Material
    sent: dict[int, list[tuple[bytes, ...]]]
    received: dict[int, list[tuple[bytes, ...]]]
    statements: dict[int, Statement]
    own: Statement | None
    abort: AbortRecord | None

    def __repr__(self) -> str:  # a summary: the material and the frames are shares
        counts = {j: (len(self.sent.get(j, ())), len(m)) for j, m in self.received.items()}
        reason = self.abort.reason if self.abort else None
        return f"Package(party={self.party}, sent/received={counts}, abort={reason!r})"

    def encode(self) -> bytes:
        """Bytes to seal to the owner (a node hands its package over a service channel)."""
        peers = sorted(set(self.sent) | set(self.received))
        parts = [_PACKAGE, struct.pack("<H", self.party), lv(self.material.encode()),
                 struct.pack("<H", len(peers))]
        for j in peers:
            parts += [struct.pack("<H", j), encode_msgs(self.sent.get(j, [])),
                      encode_msgs(self.received.get(j, []))]
        parts.append(struct.pack("<H", len(self.statements)))
        for j in sorted(self.statements):
            parts += [struct.pack("<H", j), lv(self.statements[j].encode())]
        parts.append(lv(self.own.encode() if self.own else b""))
        parts.append(lv(encode_abort(self.abort) if self.abort else b""))
        return b"".join(parts)

    @classmethod
    def decode(cls, raw: bytes) -> Package:
        """The inverse of `encode`; ValueError (or struct.error) on malformed bytes."""
        r = Reader(raw)
        if r.take(len(_PACKAGE)) != _PACKAGE:
            raise ValueError("not a blame package")
        (party,) = r.unpack("<H")
        material = Material.decode(r.lv())
        sent, received = {}, {}
        (n,) = r.unpack("<H")
        for _ in range(n):
            (j,) = r.unpack("<H")
            sent[j] = [tuple(m) for m in decode_msgs(r)]
            received[j] = [tuple(m) for m in decode_msgs(r)]
        statements = {}
        (n,) = r.unpack("<H")
        for _ in range(n):
            (j,) = r.unpack("<H")
            statements[j] = Statement.decode(r.lv())
        own_raw, abort_raw = r.lv(), r.lv()
        r.end()
        return cls(party, material, sent, received, statements,
                   Statement.decode(own_raw) if own_raw else None,
                   _decode_abort(abort_raw) if abort_raw else None)



def encode_abort(rec: AbortRecord) -> bytes:
    """A signed abort record as bytes (what an absence report publishes)."""
    return (struct.pack("<Hqq", rec.party, rec.peer, rec.index) + lv(rec.session_id)
            + lv(rec.reason.encode()) + lv(rec.detail.encode()) + lv(rec.signature))


def _read_abort(r: Reader) -> AbortRecord:
    party, peer, index = r.unpack("<Hqq")
    sid, reason, detail, sig = r.lv(), r.lv().decode(), r.lv().decode(), r.lv()
    return AbortRecord(sid, party, reason, peer, index, detail, sig)


def _decode_abort(raw: bytes) -> AbortRecord:
    r = Reader(raw)
    rec = _read_abort(r)
    r.end()
    return rec


def decode_aborts(raw: bytes) -> list[AbortRecord]:
    """Abort records encoded back to back by `encode_abort`; ValueError if malformed."""
    r, out = Reader(raw), []
    try:
        while r.pos < len(raw):
            out.append(_read_abort(r))
    except struct.error as exc:
        raise ValueError(f"malformed abort record: {exc}") from exc
    return out

