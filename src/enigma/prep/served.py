"""A job's whole preprocessing made before its online phase, and a provider that serves it.

Why: blame mode (docs/blame.md) names a cheater by replaying its engine from its committed
material. The HE preprocessing is a protocol with fresh randomness on every party, so a
replay cannot regenerate a party's share of it from a public seed, as it can the test
dealer's. Instead each party takes, on the plain mesh and before the online phase starts,
everything the job will consume (its `Slice`: the MAC key share, triples, random bits and
input masks), commits to `Slice.digest()` as the `prep` of its blame material, and the
engine runs from a `ServedProvider` that hands out exactly that slice, in order. A replay
rebuilds the same provider from the slice once its digest matches the commitment.

The online phase never talks to the HE producer again: truncation masks are composed from
the slice's bits locally, and comparison digit masks take their thermometer products on
the online engine itself (`bind`), from the slice's triples, so those messages are signed
and replayed like every other. What the job will ask for comes from a dry run
(`DemandCounter` over any provider, e.g. the test dealer on synthetic data): the counts
of the primitives, with masks accounted as the served provider builds them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from enigma.field import Field
from enigma.mpc.engine import Engine
from enigma.mpc.preprocessing import InputMasks, Triples
from enigma.sharing import AuthShare

from .provider import MaskComposer, PreprocessingError

_MAGIC = int.from_bytes(b"ENGSLC01", "little")
_DIGEST = b"enigma.prep.slice v1"


class PreprocessingExhausted(PreprocessingError):
    """The online phase asked for more than the dry run reserved: the job fails, clearly."""


@dataclass(frozen=True)
class Demand:
    """What a job consumes from the primitives: triples, random bits, input masks per owner."""

    triples: int
    bits: int
    inputs: tuple[int, ...]

    def encode(self) -> bytes:
        """Canonical bytes, for the members to check they reserve the same amounts."""
        return np.array([self.triples, self.bits, len(self.inputs), *self.inputs],
                        dtype="<u8").tobytes()


class _Composed(MaskComposer):
    """Masks built as the HE provider builds them, but with the thermometer's products on
    the engine that runs the job (`bind`)."""

    def bind(self, engine: Engine) -> None:
        """The engine whose triples and openings make the digit masks' products, counted
        as preprocessing work: the HE provider does them on its own engine, so that a
        job's counted online work (what the ledger charges) is the same in blame mode as
        outside it."""
        self.engine = engine
        self.preprocessing_work = {"rounds": 0, "triples": 0}


class DemandCounter(_Composed):
    """Any provider, counted: a dry run through it says what a job takes from the primitives."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.field, self.party, self.parties = inner.field, inner.party, inner.parties
        self.triples_taken = 0
        self.bits_taken = 0
        self.inputs_taken = [0] * inner.parties

    def demand(self) -> Demand:
        return Demand(self.triples_taken, self.bits_taken, tuple(self.inputs_taken))

    def mac_key_share(self) -> np.ndarray:
        return self.inner.mac_key_share()

    def triples(self, n: int) -> Triples:
        self.triples_taken += n
        return self.inner.triples(n)

    def random_bits(self, n: int) -> AuthShare:
        self.bits_taken += n
        return self.inner.random_bits(n)

    def input_masks(self, owner: int, n: int) -> InputMasks:
        self.inputs_taken[owner] += n
        return self.inner.input_masks(owner, n)


@dataclass
class Slice:
    """One party's preprocessing for one job: secret (alpha_i and shares) until an abort.

    `triples` is (a, a_mac, b, b_mac, c, c_mac), `bits` (value, mac); `inputs[o]` is
    (value, mac, clear) for the masks of owner o, `clear` holding r at o only (empty
    elsewhere).
    """

    party: int
    parties: int
    alpha: np.ndarray
    triples: tuple[np.ndarray, ...]
    bits: tuple[np.ndarray, ...]
    inputs: tuple[tuple[np.ndarray, ...], ...]

    def __repr__(self) -> str:  # counts only: the arrays are shares
        return (f"Slice(party={self.party}, triples={self.triples[0].shape[0]}, "
                f"bits={self.bits[0].shape[0]})")

    def words(self) -> np.ndarray:
        """The canonical serialisation: little-endian u64 words, (-1, 2) like field elements.

        Header (padded to an even count): magic, party, parties, triples, bits, then per
        owner its mask count; then alpha_i, the triple arrays, the bit arrays, and per owner
        value, mac and (at that owner only) clear.
        """
        counts = [int(a[0].shape[0]) for a in self.inputs]
        head = [_MAGIC, self.party, self.parties, int(self.triples[0].shape[0]),
                int(self.bits[0].shape[0]), *counts]
        if len(head) % 2:
            head.append(0)
        parts = [np.array(head, dtype="<u8"), self.alpha.reshape(-1)]
        parts += [a.reshape(-1) for a in (*self.triples, *self.bits)]
        for owner, arrays in enumerate(self.inputs):
            parts += [a.reshape(-1) for a in (arrays if owner == self.party else arrays[:2])]
        return np.concatenate([np.ascontiguousarray(p, dtype="<u8") for p in parts]
                              ).reshape(-1, 2)

    def encode(self) -> bytes:
        return self.words().tobytes()

    def digest(self) -> bytes:
        return slice_digest(self.encode())

    @classmethod
    def decode(cls, raw: bytes | np.ndarray, field: Field) -> Slice:
        """Parse and check a serialised slice (ValueError on anything malformed)."""
        words = np.frombuffer(raw, dtype="<u8") if isinstance(raw, bytes) \
            else np.ascontiguousarray(raw, dtype="<u8").reshape(-1)
        if words.size < 6 or int(words[0]) != _MAGIC:
            raise ValueError("not a preprocessing slice")
        party, parties, t, b = (int(w) for w in words[1:5])
        if not 0 <= party < parties <= 1 << 16 or words.size < 5 + parties:
            raise ValueError("a preprocessing slice with a malformed header")
        counts = [int(w) for w in words[5:5 + parties]]
        pos = 5 + parties + (5 + parties) % 2
        sizes = [2] + [2 * t] * 6 + [2 * b] * 2
        for owner, n in enumerate(counts):
            sizes += [2 * n] * (3 if owner == party else 2)
        if words.size != pos + sum(sizes):
            raise ValueError(f"a preprocessing slice of {words.size} words announces "
                             f"{pos + sum(sizes)}")
        arrays = [a.reshape(-1, 2).copy()
                  for a in np.split(words[pos:], np.cumsum(sizes)[:-1])]
        for a in arrays:
            field.check(a)
        inputs, rest = [], arrays[9:]
        for owner, n in enumerate(counts):
            if owner == party:
                inputs.append(tuple(rest[:3]))
                rest = rest[3:]
            else:
                inputs.append((rest[0], rest[1], np.zeros((0, 2), np.uint64)))
                rest = rest[2:]
            del n
        return cls(party, parties, arrays[0].reshape(1, 2), tuple(arrays[1:7]),
                   tuple(arrays[7:9]), tuple(inputs))


def slice_digest(raw: bytes) -> bytes:
    """What a party's blame material commits to as its preprocessing (`Material.prep`)."""
    return hashlib.sha256(_DIGEST + raw).digest()


def take_slice(provider: Any, demand: Demand) -> Slice:
    """Take `demand` out of an HE provider (producing what its stock lacks): a protocol.

    Every party of the quorum must call it at the same point with the same demand, reserved
    in one call (`HEProvider.reserve`). A provider without `reserve` (the test dealer) is
    simply asked.
    """
    reserve = getattr(provider, "reserve", None)
    if reserve is not None:
        reserve(triples=demand.triples, bits=demand.bits)
    triples = provider.triples(demand.triples)
    bits = provider.random_bits(demand.bits)
    inputs = []
    for owner, n in enumerate(demand.inputs):
        masks = provider.input_masks(owner, n)
        clear = masks.clear if masks.clear is not None else np.zeros((0, 2), np.uint64)
        inputs.append((masks.r.value, masks.r.mac, clear))
    return Slice(provider.party, provider.parties, provider.mac_key_share().reshape(1, 2).copy(),
                 (triples.a.value, triples.a.mac, triples.b.value, triples.b.mac,
                  triples.c.value, triples.c.mac), (bits.value, bits.mac), tuple(inputs))


class ServedProvider(_Composed):
    """Serves one `Slice` in order; asking for more than it holds fails the job clearly."""

    def __init__(self, field: Field, piece: Slice) -> None:
        self.field = field
        self.party = piece.party
        self.parties = piece.parties
        self._alpha = piece.alpha.reshape(2)
        self._triples = piece.triples
        self._bits = piece.bits
        self._inputs = piece.inputs
        self._used = {"triples": 0, "bits": 0}
        self._inputs_used = [0] * piece.parties

    def mac_key_share(self) -> np.ndarray:
        return self._alpha

    def _take(self, kind: str, arrays: Sequence[np.ndarray], n: int) -> list[np.ndarray]:
        start = self._used[kind]
        if start + n > arrays[0].shape[0]:
            raise PreprocessingExhausted(
                f"the online phase asked for {start + n} {kind}, the dry run reserved "
                f"{arrays[0].shape[0]}: this script's demand depends on more than the public "
                "sizes; run it without blame mode (docs/blame.md)")
        self._used[kind] = start + n
        return [a[start:start + n] for a in arrays]

    def triples(self, n: int) -> Triples:
        av, am, bv, bm, cv, cm = self._take("triples", self._triples, n)
        return Triples(AuthShare(av, am), AuthShare(bv, bm), AuthShare(cv, cm))

    def random_bits(self, n: int) -> AuthShare:
        value, mac = self._take("bits", self._bits, n)
        return AuthShare(value, mac)

    def input_masks(self, owner: int, n: int) -> InputMasks:
        if not 0 <= owner < self.parties:
            raise ValueError(f"input owner {owner} is not a party of this quorum")
        value, mac, clear = self._inputs[owner]
        start = self._inputs_used[owner]
        if start + n > value.shape[0]:
            raise PreprocessingExhausted(
                f"the online phase asked for {start + n} input masks of party {owner}, the "
                f"dry run reserved {value.shape[0]} (docs/blame.md)")
        self._inputs_used[owner] = start + n
        share = AuthShare(value[start:start + n], mac[start:start + n])
        return InputMasks(share, clear[start:start + n] if owner == self.party else None)


class SliceFactory:
    """The preprocessing of a blame-mode job on HE, as a replay rebuilds it from slices.

    `slices` maps a party to its serialised slice (what its package or an evidence file
    carries). `prep_digest` is what that party's material must commit to; a party without
    a slice here gets an empty digest, which no material matches, so it cannot be replayed.
    """

    def __init__(self, slices: Mapping[int, bytes]) -> None:
        self.slices = dict(slices)

    def prep_digest(self, party: int) -> bytes:
        raw = self.slices.get(party)
        return b"" if raw is None else slice_digest(raw)

    def replay_provider(self, field: Field, party: int, parties: int) -> ServedProvider:
        piece = Slice.decode(self.slices[party], field)
        if (piece.party, piece.parties) != (party, parties):
            raise ValueError(f"the slice is party {piece.party} of {piece.parties}'s, not "
                             f"party {party} of {parties}'s")
        return ServedProvider(field, piece)

    def __call__(self, field: Field, party: int, parties: int) -> ServedProvider:
        return self.replay_provider(field, party, parties)
