"""The signed channel: the engine's channel in blame mode, between the engine and the mesh.

Every message a party sends is followed on the same channel by its signed `Statement`
(records.py), and every message it receives is checked against the sender's statement
before the engine sees it: a message without a valid statement is `UnsignedMessage`,
unattributable and so treated as absence. What the channel logs is what the party hands
over after an abort (`SignedChannel.package`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from enigma.net.errors import AuthenticationError, NetError, PeerTimeout
from enigma.net.identity import Identity
from enigma.net.transcript import message_digest
from enigma.sharing import MacCheckError

from ..engine import Engine, ProtocolError
from .material import Material, bind_provider, coins, open_session, prep_digest
from .records import AbortRecord, Head, Package, Statement, chain_next, chain_start


class UnsignedMessage(ProtocolError):
    """A peer's message came without a valid statement: unattributable, so treated as absence.

    Nothing the peer signed covers it, so it cannot be proved against the peer; the receiver
    stops and signs an abort record naming the peer, as for a timeout.
    """

    def __init__(self, message: str, party: int) -> None:
        super().__init__(message)
        self.party = party



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
        self._sent_heads = {j: [chain_start(sid, self.party, j)] for j in self.others}
        self._recv_head = {j: chain_start(sid, j, self.party) for j in self.others}
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
        self._sent_heads[to].append(chain_next(self._sent_heads[to][-1],
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
        chain = chain_next(self._recv_head[frm], message_digest(copy))
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
    bind_provider(provider, engine)
    return engine, channel

