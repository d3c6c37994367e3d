"""Replay: re-run one party's program honestly from its material and what it received.

The engine's messages are deterministic functions of a party's material and what it
received, so an honest replay reproduces an honest party's messages exactly, and the first
message a party signed that its replay does not produce is a deviation (a wrong share, a
wrong MAC-check value, corrupted preprocessing, garbage, equivocation, a replayed or
misdirected message). `ReplayChannel` feeds the replayed engine the recorded messages and
compares what it sends with the record; `replay` says where the two part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from enigma.field import Field
from enigma.net.transcript import message_digest

from ..engine import Engine
from .material import Material, bind_provider, coins, open_session, prep_digest


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
    bind_provider(provider, engine)
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

