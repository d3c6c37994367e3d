"""Identifiable abort: after a failed check, name who cheated, with evidence anyone can check.

SPDZ with one global MAC key says *that* someone cheated, never *who*: no party's share is
authenticated on its own. This module adds what attribution needs without touching the
engine's normal path (the protocol and its arguments are in docs/blame.md):

* Before the run, each party commits (BLAKE3, with a nonce) to its `Material`: its MAC key
  share, the seed of its own coins (MAC-check seeds and commitment nonces), a digest naming
  its preprocessing and one of its private inputs. The commitment is its first message on
  every channel.
* During the run (`SignedChannel`, between the engine and the mesh), every message is
  followed on the same channel by a signed `Statement`: the sender's message counts and
  BLAKE3 chain heads, in both directions, with every peer. So each message is attributable
  the moment it arrives (no cooperation is needed after an abort), and each statement is
  also the sender's signed receipt of everything it had received.
* After an abort, each party hands over a `Package` (its material, the frames it sent and
  received, the statements it holds, a signed `AbortRecord`); in a deployment it goes sealed
  to the job's owner, who may see its own data's intermediate values (docs/blame.md says
  why the quorum must not see them). `identify` replays each party's program from its
  material and the inputs it signed for, and compares the messages the replay produces with
  the ones the party signed. A party whose signed message differs from its replay has
  deviated; `prove` packs that into evidence holding only the culprit's material and view,
  and `verify_evidence` checks it with the public keys alone.

Why replay and not a check per message: the engine's messages are deterministic functions
of a party's material and what it received, so replay attributes every deviation (a wrong
share, a wrong MAC-check value, corrupted preprocessing, garbage, equivocation, a replayed
or misdirected message) with one mechanism, and an honest party's replay reproduces its
messages exactly, so it can never be blamed.

A party that stops (drop-out, stall) deviates in time, not in content: nothing it signed is
wrong. It is named `absent` from the signed abort records of the parties that waited for it,
unless its own replay shows it was itself waiting: an attestation, not a proof.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import blake3

from enigma.field import Field
from enigma.net.errors import AuthenticationError, NetError, PeerTimeout
from enigma.net.identity import Identity, verify_signature
from enigma.net.transcript import message_digest
from enigma.sharing import MacCheckError

from .engine import Engine, ProtocolError

_STATEMENT = b"enigma-blame statement v1"
_ABORT = b"enigma-blame abort v1"
_EVIDENCE = b"enigma-blame evidence v1"
_PACKAGE = b"enigma-blame package v1"
#: Abort reasons that name a peer who did not deliver a valid, signed message in time.
ABSENCE = ("timeout", "disconnect", "unsigned")


class EvidenceError(ValueError):
    """Evidence that does not prove what it claims (bad signature, chain, commitment, replay)."""


class UnsignedMessage(ProtocolError):
    """A peer's message came without a valid statement: unattributable, so treated as absence.

    Nothing the peer signed covers it, so it cannot be proved against the peer; the receiver
    stops and signs an abort record naming the peer, as for a timeout.
    """

    def __init__(self, message: str, party: int) -> None:
        super().__init__(message)
        self.party = party


# ---------------------------------------------------------------------------------- material


def _chain_start(sid: bytes, sender: int, receiver: int) -> bytes:
    label = b"enigma-blame chain" + sid + struct.pack("<HH", sender, receiver)
    return blake3.blake3(label).digest()


def _chain_next(chain: bytes, digest: bytes) -> bytes:
    return blake3.blake3(chain + digest).digest()


def chain_of(sid: bytes, sender: int, receiver: int, messages: Sequence[Sequence[bytes]]) -> bytes:
    """The head after `messages` on the data chain sender -> receiver."""
    head = _chain_start(sid, sender, receiver)
    for frames in messages:
        head = _chain_next(head, message_digest(frames))
    return head


def coins(seed: bytes) -> Callable[[int], bytes]:
    """A party's reproducible coins: BLAKE3 in counter mode under its committed seed."""
    counter = 0

    def draw(n: int) -> bytes:
        nonlocal counter
        counter += 1
        return blake3.blake3(b"enigma-blame coins" + seed + counter.to_bytes(8, "little")
                             ).digest(length=n)

    return draw


@dataclass(frozen=True)
class Material:
    """What a party commits to before the run and reveals after an abort.

    `alpha` is its MAC key share (16 bytes), `seed` keys its coins, `prep` names its
    preprocessing (for the test dealer: a digest of the dealer seed and the party; for the
    HE preprocessing: the digest of the party's whole slice for the job), `inputs`
    is a digest of its private inputs (empty when the program carries them), `nonce` hides
    the commitment. Revealing it after an abort is harmless: the MAC key and the
    preprocessing of an aborted job are never used again (docs/blame.md).
    """

    party: int
    parties: int
    alpha: bytes
    seed: bytes
    prep: bytes
    inputs: bytes
    nonce: bytes

    @classmethod
    def create(cls, party: int, parties: int, alpha: bytes, prep: bytes,
               inputs: bytes = b"") -> Material:
        return cls(party, parties, alpha, os.urandom(32), prep, inputs, os.urandom(32))

    def __repr__(self) -> str:  # never the key share or the seed (they are secrets until revealed)
        return f"Material(party={self.party}, commitment={self.commitment().hex()[:16]}...)"

    def encode(self) -> bytes:
        return (struct.pack("<HH", self.party, self.parties) + _lv(self.alpha) + _lv(self.seed)
                + _lv(self.prep) + _lv(self.inputs) + _lv(self.nonce))

    @classmethod
    def decode(cls, raw: bytes) -> Material:
        r = _Reader(raw)
        party, parties = r.unpack("<HH")
        material = cls(party, parties, r.lv(), r.lv(), r.lv(), r.lv(), r.lv())
        r.end()
        return material

    def commitment(self) -> bytes:
        return blake3.blake3(b"enigma-blame material" + self.encode()).digest()


# ---------------------------------------------------------------------------------- statements


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
        r = _Reader(raw)
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
        parts = [_PACKAGE, struct.pack("<H", self.party), _lv(self.material.encode()),
                 struct.pack("<H", len(peers))]
        for j in peers:
            parts += [struct.pack("<H", j), _encode_msgs(self.sent.get(j, [])),
                      _encode_msgs(self.received.get(j, []))]
        parts.append(struct.pack("<H", len(self.statements)))
        for j in sorted(self.statements):
            parts += [struct.pack("<H", j), _lv(self.statements[j].encode())]
        parts.append(_lv(self.own.encode() if self.own else b""))
        parts.append(_lv(encode_abort(self.abort) if self.abort else b""))
        return b"".join(parts)

    @classmethod
    def decode(cls, raw: bytes) -> Package:
        """The inverse of `encode`; ValueError (or struct.error) on malformed bytes."""
        r = _Reader(raw)
        if r.take(len(_PACKAGE)) != _PACKAGE:
            raise ValueError("not a blame package")
        (party,) = r.unpack("<H")
        material = Material.decode(r.lv())
        sent, received = {}, {}
        (n,) = r.unpack("<H")
        for _ in range(n):
            (j,) = r.unpack("<H")
            sent[j] = [tuple(m) for m in _decode_msgs(r)]
            received[j] = [tuple(m) for m in _decode_msgs(r)]
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


# ---------------------------------------------------------------------------------- the channel


class SignedChannel:
    """The engine's channel in blame mode: the mesh, with a signed statement after each message.

    Costs per message: one Ed25519 signature (~50 µs) and, at the receiver, one verification
    (~110 µs) and a copy of the frames into the log. That is why it is an option: the normal
    engine path talks to the mesh directly. Memory: the log holds the job's traffic of this
    party (replay starts from the job's first message; see docs/blame.md).
    """

    def __init__(self, mesh: Any, identity: Identity, public_keys: Sequence[bytes],
                 material: Material) -> None:
        self.mesh = mesh
        self.party: int = mesh.party
        self.parties: int = mesh.parties
        self.others = [j for j in range(self.parties) if j != self.party]
        self.session_id: bytes = mesh.session_id
        self.material = material
        self._identity = identity
        self._keys = list(public_keys)
        sid = self.session_id
        self.sent: dict[int, list[tuple[bytes, ...]]] = {j: [] for j in self.others}
        self.received: dict[int, list[tuple[bytes, ...]]] = {j: [] for j in self.others}
        self._sent_heads = {j: [_chain_start(sid, self.party, j)] for j in self.others}
        self._recv_head = {j: _chain_start(sid, j, self.party) for j in self.others}
        self.statements: dict[int, Statement] = {}
        self.own: Statement | None = None
        self._seq = 0

    def open(self) -> dict[int, bytes]:
        """Exchange material commitments: message 0 on every channel."""
        return open_session(self, self.material)

    def _statement(self) -> Statement:
        heads = tuple(Head(j, len(self.sent[j]), self._sent_heads[j][-1],
                           len(self.received[j]), self._recv_head[j]) for j in self.others)
        st = Statement(self.session_id, self.party, self._seq, heads)
        return Statement(st.session_id, st.party, st.seq, st.heads,
                         self._identity.sign(st.body()))

    def send(self, to: int, *buffers: Any) -> None:
        frames = tuple(bytes(memoryview(b).cast("B")) for b in buffers)
        self.mesh.send(to, *frames)
        self.sent[to].append(frames)
        self._sent_heads[to].append(_chain_next(self._sent_heads[to][-1],
                                                message_digest(frames)))
        self._seq += 1
        self.own = self._statement()
        self.mesh.send(to, self.own.encode())

    def recv(self, frm: int) -> list[memoryview]:
        frames = self.mesh.recv(frm)
        raw = self.mesh.recv(frm)
        if len(raw) != 1:
            raise UnsignedMessage(f"party {frm} sent {len(raw)} frames where its statement was due",
                                  frm)
        try:
            st = Statement.decode(bytes(raw[0]))
            st.verify(self._keys[frm])
            head = st.head(self.party)
        except (ValueError, struct.error, AuthenticationError) as exc:
            raise UnsignedMessage(f"party {frm} sent an invalid signed statement: {exc}",
                                  frm) from exc
        copy = tuple(bytes(f) for f in frames)
        chain = _chain_next(self._recv_head[frm], message_digest(copy))
        count = len(self.received[frm]) + 1
        if st.party != frm or st.session_id != self.session_id:
            raise UnsignedMessage(f"party {frm} signed a statement for another party or session",
                                  frm)
        if head.sent != count or head.sent_chain != chain:
            raise UnsignedMessage(f"party {frm} signed a statement that disagrees with what it "
                                  "sent", frm)
        if not (head.received < len(self._sent_heads[frm])
                and head.received_chain == self._sent_heads[frm][head.received]):
            raise UnsignedMessage(f"party {frm} signed a receipt for messages it was never sent",
                                  frm)
        self.received[frm].append(copy)
        self._recv_head[frm] = chain
        self.statements[frm] = st
        return frames

    def broadcast(self, *buffers: Any) -> dict[int, list[memoryview]]:
        for j in self.others:
            self.send(j, *buffers)
        return {j: self.recv(j) for j in self.others}

    def abort(self, exc: BaseException, reason: str | None = None) -> AbortRecord:
        """Sign why this party stopped (for the absence analysis of `identify`); `reason`,
        when the caller knows better (a budget limit, a cancel), names no peer."""
        peer = getattr(exc, "party", None)
        if reason is not None:
            peer = None
        elif isinstance(exc, UnsignedMessage):
            reason = "unsigned"
        elif isinstance(exc, PeerTimeout):  # PeerDisconnected is a PeerTimeout
            reason = "disconnect" if type(exc).__name__ == "PeerDisconnected" else "timeout"
        elif isinstance(exc, MacCheckError):
            reason, peer = "mac", None
        elif isinstance(exc, ProtocolError | NetError):
            reason = "protocol"
        else:
            reason, peer = "error", None
        if peer is None or peer == self.party or peer not in self.received:
            peer, index = -1, -1
        else:
            index = len(self.received[peer])
        rec = AbortRecord(self.session_id, self.party, reason, peer, index,
                          f"{type(exc).__name__}: {exc}"[:300])
        return AbortRecord(rec.session_id, rec.party, rec.reason, rec.peer, rec.index,
                           rec.detail, self._identity.sign(rec.body()))

    def package(self, abort: AbortRecord | None) -> Package:
        """The hand-over, with a closing statement: signed now, it also covers the messages
        received after this party's last send (the last round's openings), so a replay of
        its view can run to the end (`replay_output`)."""
        if self.others:
            self.own = self._statement()
        return Package(self.party, self.material, self.sent, self.received, dict(self.statements),
                       self.own, abort)


def open_session(channel: Any, material: Material) -> dict[int, bytes]:
    """Broadcast this party's material commitment; return every peer's (32 bytes each)."""
    got = channel.broadcast(material.commitment())
    out = {}
    for j, frames in got.items():
        if len(frames) != 1 or len(frames[0]) != 32:
            raise ProtocolError(f"party {j} sent a malformed material commitment")
        out[j] = bytes(frames[0])
    return out


def blame_mode(mesh: Any, identity: Identity, public_keys: Sequence[bytes], provider: Any,
               factory: Any, *, inputs: bytes = b"", wrap: Callable[[Any], Any] | None = None,
               **engine_kwargs: Any) -> tuple[Engine, SignedChannel]:
    """An engine in blame mode on `mesh`: commit to the material, sign every message.

    What a node daemon calls instead of `Engine(mesh, provider)` when a job asks for
    identifiable abort. `wrap` puts something between the engine and the signing channel
    (`faults.FaultyChannel` in tests). On an abort, call `channel.abort(exc)` and hand
    `channel.package(record)` to whoever identifies (the job's owner).
    """
    fld = provider.field
    alpha = bytes(fld.to_bytes(provider.mac_key_share().reshape(1, 2)))
    material = Material.create(mesh.party, mesh.parties, alpha, prep_digest(factory, mesh.party),
                               inputs)
    channel = SignedChannel(mesh, identity, public_keys, material)
    channel.open()
    inner = channel if wrap is None else wrap(channel)
    engine = Engine(inner, provider, randomness=coins(material.seed), **engine_kwargs)
    _bind(provider, engine)
    return engine, channel


def _bind(provider: Any, engine: Engine) -> None:
    """Hand the engine to a provider that builds some material on it (a served HE slice
    makes its digit masks' products there), so that those messages are signed and replayed."""
    bind = getattr(provider, "bind", None)
    if bind is not None:
        bind(engine)


# ---------------------------------------------------------------------------------- replay


@dataclass(frozen=True)
class Program:
    """The public job a replay re-runs: fn(engine, *args) with this preprocessing and engine."""

    fn: Callable[..., Any]
    args: tuple
    factory: Callable[..., Any]
    parties: int
    modulus: int
    engine_kwargs: Mapping[str, Any] = field(default_factory=dict)


class _Stop(Exception):
    """Control flow out of the replayed program (not an error of the program)."""

    def __init__(self, peer: int, index: int) -> None:
        super().__init__(peer, index)
        self.peer, self.index = peer, index


class _Deviated(_Stop):
    pass


class _Blocked(_Stop):
    pass


class _Beyond(_Stop):
    pass


@dataclass(frozen=True)
class Outcome:
    """How a replay ended: `deviated` (peer, index of the first differing message), `blocked`
    (waiting for message index from peer), `beyond` (would send message index to peer, past
    the record), `aborted` (the program raised, as an honest party does on a failed check),
    `finished`, or `bad-material` (the material is not the job's)."""

    status: str
    peer: int = -1
    index: int = -1
    produced: Mapping[int, int] = field(default_factory=dict)


class ReplayChannel:
    """Feeds a replayed party the messages it received; compares what it sends with the record.

    `expected[peer]` holds the digests of the messages the party sent; None means "explore":
    accept any message and count it (the absence analysis asks how far the party could go).
    """

    def __init__(self, party: int, parties: int, inputs: Mapping[int, Sequence[Sequence[bytes]]],
                 expected: Mapping[int, Sequence[bytes]] | None) -> None:
        self.party, self.parties = party, parties
        self.others = [j for j in range(parties) if j != party]
        self._inputs = inputs
        self._expected = expected
        self.sent_count = dict.fromkeys(self.others, 0)
        self.recv_count = dict.fromkeys(self.others, 0)

    def send(self, to: int, *buffers: Any) -> None:
        idx = self.sent_count[to]
        if self._expected is not None:
            record = self._expected[to]
            if idx >= len(record):
                raise _Beyond(to, idx)
            frames = [memoryview(b).cast("B") for b in buffers]
            if message_digest(frames) != record[idx]:
                raise _Deviated(to, idx)
        self.sent_count[to] = idx + 1

    def recv(self, frm: int) -> list[memoryview]:
        idx = self.recv_count[frm]
        got = self._inputs.get(frm, ())
        if idx >= len(got):
            raise _Blocked(frm, idx)
        self.recv_count[frm] = idx + 1
        return [memoryview(bytearray(f)) for f in got[idx]]

    def broadcast(self, *buffers: Any) -> dict[int, list[memoryview]]:
        for j in self.others:
            self.send(j, *buffers)
        return {j: self.recv(j) for j in self.others}


def prep_digest(factory: Any, party: int) -> bytes:
    """The digest naming `party`'s preprocessing, from a factory that can be replayed."""
    method = getattr(factory, "prep_digest", None)
    if method is None:
        raise ValueError("this preprocessing cannot be replayed for blame: its factory has no "
                         "prep_digest (the test dealer and a served HE slice have one; see "
                         "docs/blame.md)")
    return method(party)


def replay(program: Program, material: Material,
           inputs: Mapping[int, Sequence[Sequence[bytes]]],
           expected: Mapping[int, Sequence[bytes]] | None) -> Outcome:
    """Re-run `material.party`'s program honestly and report where it parts from the record."""
    party = material.party
    if material.parties != program.parties or prep_digest(program.factory, party) != material.prep:
        return Outcome("bad-material")
    fld = Field(program.modulus)
    try:  # committed preprocessing that does not even parse is the committer's fault
        provider = _quiet(program.factory, fld, party, program.parties)
    except ValueError:
        return Outcome("bad-material")
    if bytes(fld.to_bytes(provider.mac_key_share().reshape(1, 2))) != material.alpha:
        return Outcome("bad-material")
    ch = ReplayChannel(party, program.parties, inputs, expected)
    engine = Engine(ch, provider, randomness=coins(material.seed), **dict(program.engine_kwargs))
    _bind(provider, engine)
    try:
        open_session(ch, material)
        program.fn(engine, *program.args)
    except _Stop as stop:
        status = {_Deviated: "deviated", _Blocked: "blocked", _Beyond: "beyond"}[type(stop)]
        return Outcome(status, stop.peer, stop.index, dict(ch.sent_count))
    except Exception:  # an honest party stops the same way when a check fails
        return Outcome("aborted", produced=dict(ch.sent_count))
    return Outcome("finished", produced=dict(ch.sent_count))


def _quiet(factory: Any, fld: Field, party: int, parties: int) -> Any:
    """The factory's provider for `party`; replays need no warning banner per call."""
    maker = getattr(factory, "replay_provider", None)
    return maker(fld, party, parties) if maker else factory(fld, party, parties)


# ---------------------------------------------------------------------------------- identify


@dataclass
class Verdict:
    """Who is named and why: `culprits[p]` is `deviation` (proved: `evidence[p]` checks with
    public keys), `absent` (attested by the signed abort records in `attested[p]`) or
    `withheld` (revealed no valid material after a failed check while all others replayed
    clean)."""

    culprits: dict[int, str]
    evidence: dict[int, bytes]
    attested: dict[int, list[AbortRecord]]
    notes: list[str]


def _statements(party: int, packages: Mapping[int, Package],
                public_keys: Sequence[bytes]) -> list[Statement]:
    """`party`'s latest statement as each package holds it, verified, latest first.

    Every holder's copy is tried, not just the one with the highest count: a culprit can
    sign a bogus statement for its own package, but not erase the ones its peers hold.
    """
    found: dict[bytes, Statement] = {}
    for pkg in packages.values():
        st = pkg.own if pkg.party == party else pkg.statements.get(party)
        if st is None or st.party != party:
            continue
        try:
            st.verify(public_keys[party])
        except AuthenticationError:
            continue
        found[st.signature] = st
    return sorted(found.values(), key=lambda s: (s.seq, sum(h.received for h in s.heads)),
                  reverse=True)


def _prefix(sid: bytes, sender: int, receiver: int, count: int, chain: bytes,
            candidates: list[list[tuple[bytes, ...]]]) -> list[tuple[bytes, ...]] | None:
    for msgs in candidates:
        if len(msgs) >= count and chain_of(sid, sender, receiver, msgs[:count]) == chain:
            return list(msgs[:count])
    return None


def _view(accused: int, st: Statement, packages: Mapping[int, Package]
          ) -> tuple[dict[int, list], dict[int, list]] | None:
    """The accused's messages both ways on every channel, as far as its statement covers."""
    own = packages.get(accused)
    outs, ins = {}, {}
    for h in st.heads:
        j = h.peer
        peer = packages.get(j)
        out_c = [c for c in ((peer.received.get(accused) if peer else None),
                             (own.sent.get(j) if own else None)) if c is not None]
        in_c = [c for c in ((own.received.get(j) if own else None),
                            (peer.sent.get(accused) if peer else None)) if c is not None]
        out = _prefix(st.session_id, accused, j, h.sent, h.sent_chain, out_c)
        inn = _prefix(st.session_id, j, accused, h.received, h.received_chain, in_c)
        if out is None or inn is None:
            return None
        outs[j], ins[j] = out, inn
    return outs, ins


def _judge(program: Program, material: Material, st: Statement, outs: Mapping[int, list],
           ins: Mapping[int, list]) -> Outcome | None:
    """Replay against the signed view; the outcome if it proves a deviation, else None."""
    if not _view_opens(material, outs):
        return None  # the material does not open the commitment the accused signed
    expected = {j: [message_digest(m) for m in msgs] for j, msgs in outs.items()}
    out = replay(program, material, ins, expected)
    if out.status == "deviated":
        return out
    if out.status == "blocked" and any(out.produced.get(j, 0) < len(m) for j, m in outs.items()):
        # It signed messages its honest program could not yet have computed: sent too early.
        return out
    return None


def prove(program: Program, packages: Mapping[int, Package], public_keys: Sequence[bytes],
          accused: int) -> bytes | None:
    """Evidence that `accused` deviated, or None if the packages do not show a deviation."""
    own = packages.get(accused)
    if own is None:
        return None
    for st in _statements(accused, packages, public_keys):
        view = _view(accused, st, packages)
        if view is None:
            continue
        outs, ins = view
        if _judge(program, own.material, st, outs, ins) is not None:
            return _encode_evidence(own.material, st, outs, ins)
    return None


def view_evidence(packages: Mapping[int, Package], public_keys: Sequence[bytes],
                  accused: int) -> bytes | None:
    """`accused`'s signed view (material, latest statement, messages both ways), as evidence
    bytes, whether or not a message deviates: for a deviation the messages do not show, such
    as a result share that differs from what the party's committed run produces
    (`replay_output`). None if the packages do not hold a complete signed view."""
    own = packages.get(accused)
    if own is None:
        return None
    for st in _statements(accused, packages, public_keys):
        view = _view(accused, st, packages)
        if view is not None:
            return _encode_evidence(own.material, st, *view)
    return None


def replay_output(evidence: bytes, program: Program, public_keys: Sequence[bytes]
                  ) -> tuple[int, Any]:
    """Check a signed view (steps 1-3 of `verify_evidence`) and replay it to the end.

    Returns (party, what program.fn returned) when the replay reproduces every message the
    party signed and finishes; the caller compares that value with what the party claimed
    elsewhere (a node's result commitment, signed on the ledger). EvidenceError otherwise.
    """
    material, st, outs, ins = _checked_view(evidence, public_keys)
    _opens_its_commitment(material, outs)
    expected = {j: [message_digest(m) for m in msgs] for j, msgs in outs.items()}
    value: list[Any] = []

    def keep(engine: Engine, *args: Any) -> None:
        value.append(program.fn(engine, *args))

    out = replay(Program(keep, program.args, program.factory, program.parties, program.modulus,
                         program.engine_kwargs), material, ins, expected)
    if out.status != "finished" or not value:
        raise EvidenceError(f"step 4: the replay of party {st.party} did not finish "
                            f"({out.status})")
    return st.party, value[0]


def signed_material(evidence: bytes, public_keys: Sequence[bytes]) -> tuple[int, Material]:
    """(party, its material) from a signed view, after steps 1-3 of `verify_evidence`: the
    statement verifies under the party's key, the chains hold, and the material opens the
    commitment the party sent first to every peer. So the party cannot deny the material,
    and its `inputs` digest, which is what a claim about its committed inputs rests on."""
    material, st, outs, _ = _checked_view(evidence, public_keys)
    _opens_its_commitment(material, outs)
    return st.party, material


def _opens_its_commitment(material: Material, outs: Mapping[int, list]) -> None:
    """Step 3, or EvidenceError: the material opens the commitment the party sent first to
    every peer."""
    if not _view_opens(material, outs):
        raise EvidenceError("step 3: the material does not open the commitment it sent")


def _view_opens(material: Material, outs: Mapping[int, list]) -> bool:
    """Whether the material opens the commitment the party sent first to every peer (in a
    signed view; `_opens` asks the same of the packages)."""
    return all(msgs and msgs[0] == (material.commitment(),) for msgs in outs.values())


def _checked_view(evidence: bytes, public_keys: Sequence[bytes]
                  ) -> tuple[Material, Statement, dict, dict]:
    """Decode evidence and check steps 1-2: the signature and the chains, both ways."""
    try:
        material, st, outs, ins = _decode_evidence(evidence)
    except (ValueError, struct.error) as exc:
        raise EvidenceError(f"malformed evidence: {exc}") from exc
    accused = st.party
    if material.party != accused or not 0 <= accused < len(public_keys):
        raise EvidenceError("the material and the statement name different parties")
    try:
        st.verify(public_keys[accused])
    except AuthenticationError as exc:
        raise EvidenceError(f"step 1: {exc}") from exc
    if sorted(outs) != sorted(h.peer for h in st.heads):
        raise EvidenceError("step 2: the evidence does not cover every channel of the statement")
    for h in st.heads:
        if (len(outs[h.peer]) != h.sent or len(ins[h.peer]) != h.received
                or chain_of(st.session_id, accused, h.peer, outs[h.peer]) != h.sent_chain
                or chain_of(st.session_id, h.peer, accused, ins[h.peer]) != h.received_chain):
            raise EvidenceError(f"step 2: the messages with party {h.peer} do not chain to the "
                                f"heads party {accused} signed")
    return material, st, outs, ins


def verify_evidence(evidence: bytes, program: Program, public_keys: Sequence[bytes]) -> int:
    """Check evidence with the public keys (and the public program); return the culprit.

    Steps: 1. the accused's statement verifies under its key; 2. the frames chain to the
    heads it signed, both ways, on every channel; 3. its first message on every channel is the
    commitment its material opens; 4. its honest replay on the inputs it signed for parts
    from a message it signed. Raises EvidenceError naming the step that failed.
    """
    material, st, outs, ins = _checked_view(evidence, public_keys)
    accused = st.party
    if _judge(program, material, st, outs, ins) is None:
        raise EvidenceError(f"steps 3-4: party {accused}'s committed material reproduces every "
                            "message it signed: no deviation")
    return accused


def identify(program: Program, packages: Mapping[int, Package],
             public_keys: Sequence[bytes]) -> Verdict:
    """Name the culprits of an aborted run from the parties' packages.

    1. Every party with a package is replayed against what it signed: a deviation is proved
       (evidence). 2. Only if nobody deviated: parties that others' signed abort records name
       as timed out or disconnected are `absent`, unless their own replay shows they were
       waiting for someone else before the awaited message. 3. If still nobody is named,
       parties without a valid package are `withheld`. An honest party's replay reproduces its
       messages, and it always sends what it can, so steps 1 and 2 never name it.
    """
    verdict = Verdict({}, {}, {}, [])
    for p in range(program.parties):
        if p in packages:
            ev = prove(program, packages, public_keys, p)
            if ev is not None:
                verdict.culprits[p] = "deviation"
                verdict.evidence[p] = ev
    if verdict.culprits:
        return verdict
    records: dict[int, list[AbortRecord]] = {}
    for pkg in packages.values():
        rec = pkg.abort
        if rec is None or rec.party != pkg.party or rec.reason not in ABSENCE:
            continue
        try:
            rec.verify(public_keys[pkg.party])
        except AuthenticationError:
            continue
        records.setdefault(rec.peer, []).append(rec)
    for accused, recs in sorted(records.items()):
        if not _excused(program, packages.get(accused), recs):
            verdict.culprits[accused] = "absent"
            verdict.attested[accused] = recs
    if verdict.culprits:
        return verdict
    for p in range(program.parties):
        if not _opens(p, packages):
            verdict.culprits[p] = "withheld"
    if not verdict.culprits:
        verdict.notes.append("no party deviated, stopped or withheld: nothing to blame")
    return verdict


def _opens(party: int, packages: Mapping[int, Package]) -> bool:
    """Did `party` reveal material that opens the commitment it sent first (as peers got it)?"""
    pkg = packages.get(party)
    if pkg is None or pkg.material.party != party:
        return False
    want = (pkg.material.commitment(),)
    seen = [q.received[party][0] for q in packages.values()
            if q.party != party and q.received.get(party)]
    if not seen:
        seen = [msgs[0] for msgs in pkg.sent.values() if msgs]
    return bool(seen) and all(m == want for m in seen)


def _excused(program: Program, pkg: Package | None, recs: list[AbortRecord]) -> bool:
    """Was the accused itself waiting before every message the accusers waited for?"""
    if pkg is None:
        return False
    out = replay(program, pkg.material, pkg.received, None)
    if out.status == "bad-material":
        return False
    return all(out.produced.get(r.party, 0) <= r.index for r in recs)


# ---------------------------------------------------------------------------------- encoding


def _lv(b: bytes) -> bytes:
    return struct.pack("<I", len(b)) + b


class _Reader:
    def __init__(self, raw: bytes) -> None:
        self.raw, self.pos = raw, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.raw):
            raise ValueError("truncated")
        out = self.raw[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def lv(self) -> bytes:
        (n,) = self.unpack("<I")
        return self.take(n)

    def end(self) -> None:
        if self.pos != len(self.raw):
            raise ValueError("trailing bytes")


def _encode_msgs(msgs: Sequence[Sequence[bytes]]) -> bytes:
    out = [struct.pack("<I", len(msgs))]
    for frames in msgs:
        out.append(struct.pack("<I", len(frames)))
        out += [_lv(f) for f in frames]
    return b"".join(out)


def _decode_msgs(r: _Reader) -> list[tuple[bytes, ...]]:
    (n,) = r.unpack("<I")
    msgs = []
    for _ in range(n):
        (k,) = r.unpack("<I")
        msgs.append(tuple(r.lv() for _ in range(k)))
    return msgs


def encode_abort(rec: AbortRecord) -> bytes:
    """A signed abort record as bytes (what an absence report publishes)."""
    return (struct.pack("<Hqq", rec.party, rec.peer, rec.index) + _lv(rec.session_id)
            + _lv(rec.reason.encode()) + _lv(rec.detail.encode()) + _lv(rec.signature))


def _read_abort(r: _Reader) -> AbortRecord:
    party, peer, index = r.unpack("<Hqq")
    sid, reason, detail, sig = r.lv(), r.lv().decode(), r.lv().decode(), r.lv()
    return AbortRecord(sid, party, reason, peer, index, detail, sig)


def _decode_abort(raw: bytes) -> AbortRecord:
    r = _Reader(raw)
    rec = _read_abort(r)
    r.end()
    return rec


def decode_aborts(raw: bytes) -> list[AbortRecord]:
    """Abort records encoded back to back by `encode_abort`; ValueError if malformed."""
    r, out = _Reader(raw), []
    try:
        while r.pos < len(raw):
            out.append(_read_abort(r))
    except struct.error as exc:
        raise ValueError(f"malformed abort record: {exc}") from exc
    return out


def evidence_material(evidence: bytes) -> Material:
    """The accused's material inside evidence bytes (its `inputs` digest binds its inputs)."""
    try:
        return _decode_evidence(evidence)[0]
    except (ValueError, struct.error) as exc:
        raise EvidenceError(f"malformed evidence: {exc}") from exc


def _encode_evidence(material: Material, st: Statement, outs: Mapping[int, list],
                     ins: Mapping[int, list]) -> bytes:
    parts = [_EVIDENCE, _lv(material.encode()), _lv(st.encode()),
             struct.pack("<H", len(outs))]
    for j in sorted(outs):
        parts += [struct.pack("<H", j), _encode_msgs(outs[j]), _encode_msgs(ins[j])]
    return b"".join(parts)


def _decode_evidence(raw: bytes) -> tuple[Material, Statement, dict, dict]:
    r = _Reader(raw)
    if r.take(len(_EVIDENCE)) != _EVIDENCE:
        raise ValueError("not blame evidence")
    material = Material.decode(r.lv())
    st = Statement.decode(r.lv())
    (n,) = r.unpack("<H")
    outs, ins = {}, {}
    for _ in range(n):
        (j,) = r.unpack("<H")
        outs[j] = _decode_msgs(r)
        ins[j] = _decode_msgs(r)
    r.end()
    return material, st, outs, ins
