"""Evidence of a deviation: a party's signed view that anyone can check with public keys.

`prove` packs what shows a deviation into evidence holding only the culprit's material and
its signed view (its latest statement, the messages both ways on every channel);
`verify_evidence` checks it with the public keys and the public program alone, in four
steps (signature, chains, commitment, replay). The same signed view also supports claims
the messages do not show (`replay_output`, `signed_material`).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from enigma.net.errors import AuthenticationError
from enigma.net.transcript import message_digest

from ..engine import Engine
from .codec import Reader, decode_msgs, encode_msgs, lv
from .material import Material
from .records import Package, Statement, chain_of
from .replay import Outcome, Program, replay

_EVIDENCE = b"enigma-blame evidence v1"


class EvidenceError(ValueError):
    """Evidence that does not prove what it claims (bad signature, chain, commitment, replay)."""


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
    signed view; the verdict asks the same of the packages)."""
    return all(msgs and msgs[0] == (material.commitment(),) for msgs in outs.values())


def _checked_view(evidence: bytes, public_keys: Sequence[bytes]
                  ) -> tuple[Material, Statement, dict, dict]:
    """Decode evidence and check steps 1-2: the signature and the chains, both ways."""
    try:
        material, st, outs, ins = decode_evidence(evidence)
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



def evidence_material(evidence: bytes) -> Material:
    """The accused's material inside evidence bytes (its `inputs` digest binds its inputs)."""
    try:
        return decode_evidence(evidence)[0]
    except (ValueError, struct.error) as exc:
        raise EvidenceError(f"malformed evidence: {exc}") from exc


def _encode_evidence(material: Material, st: Statement, outs: Mapping[int, list],
                     ins: Mapping[int, list]) -> bytes:
    parts = [_EVIDENCE, lv(material.encode()), lv(st.encode()),
             struct.pack("<H", len(outs))]
    for j in sorted(outs):
        parts += [struct.pack("<H", j), encode_msgs(outs[j]), encode_msgs(ins[j])]
    return b"".join(parts)


def decode_evidence(raw: bytes) -> tuple[Material, Statement, dict, dict]:
    r = Reader(raw)
    if r.take(len(_EVIDENCE)) != _EVIDENCE:
        raise ValueError("not blame evidence")
    material = Material.decode(r.lv())
    st = Statement.decode(r.lv())
    (n,) = r.unpack("<H")
    outs, ins = {}, {}
    for _ in range(n):
        (j,) = r.unpack("<H")
        outs[j] = decode_msgs(r)
        ins[j] = decode_msgs(r)
    r.end()
    return material, st, outs, ins
