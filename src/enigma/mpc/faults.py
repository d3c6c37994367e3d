"""Fault injection for tests: make one party of a quorum misbehave in a named way.

Refused unless the caller passes `insecure=True`: a party built with a fault deviates from
the protocol on purpose, which only a test or a fault report may want. The faults sit where
a real cheater sits: above the signing layer (`blame.SignedChannel`), so the culprit signs
what it sends, as a real node's software would, and inside its preprocessing provider.

Kinds (`KINDS`), `at` counting the culprit's engine calls that send (a broadcast is one
call) or, for the preprocessing kinds, its requests for triples:

| kind | what the culprit does at call `at` |
|---|---|
| bitflip | flips the lowest bit of the first byte of the message, for every recipient |
| wrong-mac | its MAC share of a triple is off by one: its MAC-check value is wrong |
| bad-preprocessing | its value share of a triple's product is off by one |
| dropout | leaves: its process ends without a word (the mesh says goodbye) |
| stall | sleeps `stall` seconds, then carries on |
| garbage | sends 1-64 random bytes instead of the message |
| equivocate | in a broadcast, adds one (mod p) to the first element sent to one peer only |
| replay | re-sends its previous message to each recipient instead of the current one |
| wrong-recipient | swaps the recipients of two consecutive point-to-point messages |
| input-shift | adds 1 to its additive share of the first stored value it inputs |
| tag-shift | adds 1 to its additive share of the first stored tag it inputs |
| key-share-shift | adds 1 to its share of the dataset's tag key |
| metadata-lie | states the first result's scale one bit higher, and commits to that |
| exact-lie | states the first exact (public) result plus one, and commits to that |
| stored-shift | its stored share of the first value read is one more, its file rewritten to match |

wrong-recipient is only partly meaningful here: a broadcast carries the same frames to
everyone, so swapping its recipients changes nothing; it bites on the openings through kings
(different slices per king). Sending a result share to the wrong party is an app-layer fault
(the result is sealed to the owner there). Faults below the record layer (a TLS record
replayed or garbled on the wire) are refused by the channel (`TamperedFrame`) and cannot
be attributed by signatures: TLS's record keys are shared by both ends.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from enigma.field import Field, FieldError

from .preprocessing import Triples

#: Kinds that a job member commits above the engine (`enigma.app.member`): it changes what it
#: inputs from storage (its additive share of the first value, of the first tag, or its
#: share of the tag key), or what it states about the result (a scale in the layout, an
#: exact value) and commits to that on the ledger.
#: stored-shift: the member's stored share itself was rewritten after sealing (checksums and
#: all, as an attacker on its disk would), and it inputs and commits to that share.
INPUT_KINDS = ("input-shift", "tag-shift", "key-share-shift")
REPLY_KINDS = ("metadata-lie", "exact-lie")
STORE_KINDS = ("stored-shift",)
#: release-lie: the member runs a job under a looser release than the ledger's (every cell
#: released, less noise) while it connects under the job's (its session names that one).
RELEASE_KINDS = ("release-lie",)
KINDS = ("bitflip", "wrong-mac", "bad-preprocessing", "dropout", "stall", "garbage",
         "equivocate", "replay", "wrong-recipient", *INPUT_KINDS, *REPLY_KINDS, *STORE_KINDS,
         *RELEASE_KINDS)
#: Kinds the engine itself meets: a member's channel or its preprocessing lies.
ENGINE_KINDS = tuple(k for k in KINDS
                     if k not in INPUT_KINDS + REPLY_KINDS + STORE_KINDS + RELEASE_KINDS)
PROVIDER_KINDS = ("wrong-mac", "bad-preprocessing")
CHANNEL_KINDS = tuple(k for k in ENGINE_KINDS if k not in PROVIDER_KINDS)


class FaultInjectionRefused(RuntimeError):
    """A fault was asked for without the explicit insecure flag."""


class DroppedOut(Exception):
    """Raised in the culprit to end its participation (kind `dropout`)."""


@dataclass(frozen=True)
class Fault:
    """Party `party` misbehaves as `kind` at its `at`-th sending call (or triples request)."""

    kind: str
    party: int
    at: int = 0
    stall: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(KINDS)}")
        if self.at < 0:
            raise ValueError("a fault's position `at` cannot be negative")


def require_insecure(fault: Fault | None, insecure: bool) -> None:
    """Refuse a fault unless the caller said, explicitly, that this is a test."""
    if fault is not None and insecure is not True:
        raise FaultInjectionRefused(
            f"fault injection ({fault.kind}) makes a party cheat on purpose; pass "
            "insecure=True (tests and fault reports only)")


class _Culprit:
    """What both places a fault is injected share: the test flag, the kinds injected here,
    the wrapped party, and a count of its calls (a fault fires at call `at`)."""

    kinds: tuple[str, ...] = ()
    elsewhere = ""

    def __init__(self, inner: Any, fault: Fault, *, insecure: bool = False) -> None:
        require_insecure(fault, insecure)
        if fault.kind not in self.kinds:
            raise ValueError(f"{fault.kind} is injected in {self.elsewhere}")
        self.inner = inner
        self.fault = fault
        self.party: int = inner.party
        self.parties: int = inner.parties
        self._calls = 0


class FaultyChannel(_Culprit):
    """The culprit's channel: the engine talks to it; it misbehaves once, then forwards."""

    kinds = CHANNEL_KINDS
    elsewhere = "the preprocessing, not the channel"

    def __init__(self, inner: Any, fault: Fault, *, insecure: bool = False) -> None:
        super().__init__(inner, fault, insecure=insecure)
        self.others = [j for j in range(self.parties) if j != self.party]
        self._done = False
        self._last: dict[int, tuple[bytes, ...]] = {}
        self._held: tuple[int, tuple[bytes, ...]] | None = None
        self._field = Field()

    def _armed(self) -> bool:
        return not self._done and self._calls >= self.fault.at

    def _deliver(self, to: int, frames: tuple[bytes, ...]) -> None:
        self.inner.send(to, *frames)
        self._last[to] = frames

    def _sending(self, targets: list[int], frames: tuple[bytes, ...]) -> None:
        """One engine call that sends `frames` to `targets`; misbehave if armed."""
        kind = self.fault.kind
        armed = self._armed()
        self._calls += 1
        if self._held is not None:
            (held_to, held), self._held = self._held, None
            if len(targets) == 1 and targets[0] != held_to and frames != held:
                self._deliver(held_to, frames)
                self._deliver(targets[0], held)
                self._done = True
                return
            # no partner, or the same frames for both (a swap would change nothing): deliver
            # as addressed and try again with the next pair
            self._deliver(held_to, held)
        if not armed:
            for to in targets:
                self._deliver(to, frames)
            return
        if kind == "dropout":
            raise DroppedOut(f"party {self.party} drops out (fault injection)")
        if kind == "stall":
            time.sleep(self.fault.stall)
            self._done = True
        elif kind == "bitflip" and frames and frames[0]:
            first = bytearray(frames[0])
            first[0] ^= 1
            frames = (bytes(first), *frames[1:])
            self._done = True
        elif kind == "garbage":
            frames = (os.urandom(1 + os.urandom(1)[0] % 64),)
            self._done = True
        elif kind == "replay" and all(to in self._last for to in targets):
            for to in targets:
                self.inner.send(to, *self._last[to])
            self._done = True
            return
        elif kind == "equivocate" and len(targets) > 1 and frames and len(frames[0]) >= 16:
            changed = self._plus_one(frames)
            self._deliver(targets[0], changed)
            for to in targets[1:]:
                self._deliver(to, frames)
            self._done = True
            return
        elif kind == "wrong-recipient" and len(targets) == 1:
            self._held = (targets[0], frames)
            return
        for to in targets:
            self._deliver(to, frames)

    def _plus_one(self, frames: tuple[bytes, ...]) -> tuple[bytes, ...]:
        F = self._field
        try:
            first = F.from_bytes(frames[0][:16], shape=1)
        except FieldError:  # not a field element (a commitment, a seed): change a bit
            changed = bytes([frames[0][0] ^ 1]) + frames[0][1:]
        else:
            one = F.from_int64(np.array([1], dtype=np.int64))
            changed = bytes(F.to_bytes(F.add(first, one))) + frames[0][16:]
        return (changed, *frames[1:])

    def send(self, to: int, *buffers: Any) -> None:
        self._sending([to], tuple(bytes(memoryview(b).cast("B")) for b in buffers))

    def recv(self, frm: int) -> list[memoryview]:
        return self.inner.recv(frm)

    def broadcast(self, *buffers: Any) -> dict[int, list[memoryview]]:
        self._sending(self.others, tuple(bytes(memoryview(b).cast("B")) for b in buffers))
        return {j: self.inner.recv(j) for j in self.others}


class FaultyProvider(_Culprit):
    """The culprit's preprocessing: one triple of its `at`-th request is off by one."""

    kinds = PROVIDER_KINDS
    elsewhere = "the channel, not the preprocessing"

    def __init__(self, inner: Any, fault: Fault, *, insecure: bool = False) -> None:
        super().__init__(inner, fault, insecure=insecure)
        self.field: Field = inner.field

    def triples(self, n: int) -> Triples:
        t = self.inner.triples(n)
        if self._calls == self.fault.at and n:
            F = self.field
            one = F.from_int64(np.array([1], dtype=np.int64))
            target = t.c.mac if self.fault.kind == "wrong-mac" else t.c.value
            target[:1] = F.add(target[:1], one)
        self._calls += 1
        return t

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
