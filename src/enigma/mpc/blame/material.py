"""What a party commits to before a blamed run, and the set-up that makes its run replayable.

Each party commits (BLAKE3, with a nonce) to its `Material`: its MAC key share, the seed of
its own coins (MAC-check seeds and commitment nonces), a digest naming its preprocessing and
one of its private inputs. The commitment is its first message on every channel
(`open_session`), so a replay (replay.py) and anyone checking evidence (evidence.py) can
tell whether revealed material is the material the party ran on. The engine draws its coins
from `coins(seed)`, which is what makes an honest party's messages reproducible.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import blake3

from ..engine import Engine, ProtocolError
from .codec import Reader, lv


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
        return (struct.pack("<HH", self.party, self.parties) + lv(self.alpha) + lv(self.seed)
                + lv(self.prep) + lv(self.inputs) + lv(self.nonce))

    @classmethod
    def decode(cls, raw: bytes) -> Material:
        r = Reader(raw)
        party, parties = r.unpack("<HH")
        material = cls(party, parties, r.lv(), r.lv(), r.lv(), r.lv(), r.lv())
        r.end()
        return material

    def commitment(self) -> bytes:
        return blake3.blake3(b"enigma-blame material" + self.encode()).digest()



def prep_digest(factory: Any, party: int) -> bytes:
    """The digest naming `party`'s preprocessing, from a factory that can be replayed."""
    method = getattr(factory, "prep_digest", None)
    if method is None:
        raise ValueError("this preprocessing cannot be replayed for blame: its factory has no "
                         "prep_digest (the test dealer and a served HE slice have one; see "
                         "docs/blame.md)")
    return method(party)



def open_session(channel: Any, material: Material) -> dict[int, bytes]:
    """Broadcast this party's material commitment; return every peer's (32 bytes each)."""
    got = channel.broadcast(material.commitment())
    out = {}
    for j, frames in got.items():
        if len(frames) != 1 or len(frames[0]) != 32:
            raise ProtocolError(f"party {j} sent a malformed material commitment")
        out[j] = bytes(frames[0])
    return out



def bind_provider(provider: Any, engine: Engine) -> None:
    """Hand the engine to a provider that builds some material on it (a served HE slice
    makes its digit masks' products there), so that those messages are signed and replayed."""
    bind = getattr(provider, "bind", None)
    if bind is not None:
        bind(engine)

