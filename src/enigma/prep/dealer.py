"""The test dealer: every party derives its preprocessing from one shared seed.

INSECURE BY DESIGN. Whoever knows the seed knows every mask, every triple and
the MAC key, so it can read every input and forge every MAC. It exists so that
the online phase can be tested and measured before (and independently of) the
homomorphic-encryption preprocessing. It refuses to start without
`insecure=True` and warns on stderr every time it starts.

Cost: party i > 0 draws its shares from its own stream (one PRG call per
share); party 0 regenerates the others' streams and takes the differences, so
the shares sum to the right values: the same trick as pseudo-random secret
sharing, which makes the dealer fast enough to benchmark the online phase.
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np

from enigma.field import PRG, Field
from enigma.mpc.preprocessing import (
    KAPPA,
    DigitMasks,
    InputMasks,
    Triples,
    TruncMasks,
)
from enigma.sharing import AuthShare

WARNING = ("WARNING: using the INSECURE test dealer for preprocessing: whoever knows its seed "
           "can read every input. Never use it with real data.")


def _compose(digits: np.ndarray, b: int) -> np.ndarray:
    """sum_d digits[:, d] 2^(b d) as field elements (< 2^127), from base-2^b digits."""
    out = np.zeros((digits.shape[0], 2), dtype=np.uint64)
    for d in range(digits.shape[1]):  # over digit positions, not elements
        v, s = digits[:, d], b * d
        if s < 64:
            out[:, 0] |= v << np.uint64(s)
            if s + b > 64:
                out[:, 1] |= v >> np.uint64(64 - s)
        else:
            out[:, 1] |= v << np.uint64(s - 64)
    return out


class InsecureDealerError(RuntimeError):
    """The dealer was asked for without the explicit insecure flag."""


class TrustedDealer:
    """Preprocessing for one party, derived from a seed shared by all parties."""

    def __init__(self, field: Field, party: int, parties: int, seed: bytes, *,
                 insecure: bool = False, quiet: bool = False) -> None:
        if insecure is not True:
            raise InsecureDealerError(
                "the test dealer sees every secret; pass insecure=True (tests and benchmarks "
                "only) or use the homomorphic-encryption preprocessing")
        if not 0 <= party < parties:
            raise ValueError(f"party {party} is not in 0..{parties - 1}")
        if not quiet:
            print(WARNING, file=sys.stderr, flush=True)
        self.field = field
        self.party = party
        self.parties = parties
        self._seed = hashlib.sha256(b"enigma.dealer.v1" + seed).digest()
        self._calls = 0
        root = self._prg(b"alpha")
        self._alpha = field.random(1, root)
        shares = [field.random(1, self._prg(b"alpha", i)) for i in range(1, parties)]
        if party == 0:
            self._alpha_share = field.sub(self._alpha, self._sum(shares))
        else:
            self._alpha_share = shares[party - 1]

    def mac_key_share(self) -> np.ndarray:
        return self._alpha_share.reshape(2)

    # ------------------------------------------------------------ generic machinery

    def _prg(self, label: bytes, who: int = -1) -> PRG:
        return PRG(self._seed + label + who.to_bytes(4, "little", signed=True))

    def _sum(self, arrays: list[np.ndarray]) -> np.ndarray:
        total = arrays[0].copy()
        for a in arrays[1:]:
            self.field.add(total, a, out=total)
        return total

    def _next(self, label: bytes) -> bytes:
        """A fresh tag; every party calls it in the same order, so the tags agree."""
        self._calls += 1
        return label + self._calls.to_bytes(8, "little")

    def _share(self, label: bytes, values: np.ndarray | None, shape: tuple[int, ...]) -> AuthShare:
        """This party's authenticated share of `values` (known to party 0 only).

        Parties 1.. draw value and MAC shares from their own streams; party 0 gets
        values - sum(others) and alpha * values - sum(other MACs).
        """
        F = self.field
        tag = self._next(label)
        if self.party != 0:
            prg = self._prg(tag, self.party)
            return AuthShare(F.random(shape, prg), F.random(shape, prg))
        assert values is not None
        others_v, others_m = [], []
        for i in range(1, self.parties):
            prg = self._prg(tag, i)
            others_v.append(F.random(shape, prg))
            others_m.append(F.random(shape, prg))
        mac = F.mul(values, self._alpha.reshape(2))
        if others_v:
            return AuthShare(F.sub(values, self._sum(others_v)), F.sub(mac, self._sum(others_m)))
        return AuthShare(values, mac)

    def _secret(self, label: bytes, shape: tuple[int, ...]) -> np.ndarray | None:
        """Uniform secret values, known to party 0 (who distributes them) only."""
        tag = self._next(label)
        if self.party != 0:
            return None
        return self.field.random(shape, self._prg(tag))

    def _bits_value(self, label: bytes, shape: tuple[int, ...], bits: int) -> np.ndarray | None:
        """Uniform integers on `bits` bits (< 127) as field elements, at party 0 only."""
        tag = self._next(label)
        if self.party != 0:
            return None
        prg = self._prg(tag)
        count = int(np.prod(shape, dtype=np.int64))
        words = prg.words(2 * count).reshape(*shape, 2)
        lo_bits, hi_bits = min(bits, 64), max(bits - 64, 0)
        words[..., 0] &= np.uint64((1 << lo_bits) - 1) if lo_bits < 64 else np.uint64(2**64 - 1)
        words[..., 1] &= np.uint64((1 << hi_bits) - 1)
        return words

    # ------------------------------------------------------------ what the engine asks for

    def triples(self, n: int) -> Triples:
        F = self.field
        a, b = self._secret(b"ta", (n,)), self._secret(b"tb", (n,))
        c = F.mul(a, b) if a is not None else None
        return Triples(self._share(b"a", a, (n,)), self._share(b"b", b, (n,)),
                       self._share(b"c", c, (n,)))

    def input_masks(self, owner: int, n: int) -> InputMasks:
        r = self.field.random(n, self._prg(self._next(b"in")))
        share = self._share(b"inr", r if self.party == 0 else None, (n,))
        return InputMasks(share, r if self.party == owner else None)

    def random_bits(self, n: int) -> AuthShare:
        bits = self._bits_value(b"bit", (n,), 1)
        return self._share(b"bits", bits, (n,))

    def trunc_masks(self, n: int, m: int, k: int) -> TruncMasks:
        low = self._bits_value(b"lo", (n,), m)
        high = self._bits_value(b"hi", (n,), k + KAPPA - m)
        return TruncMasks(self._share(b"low", low, (n,)), self._share(b"high", high, (n,)))

    def digit_masks(self, n: int, m: int, k: int, digit_bits: int) -> DigitMasks:
        F = self.field
        digits = -(-m // digit_bits)
        levels = (1 << digit_bits) - 1
        therm = low = None
        tag = self._next(b"dg")
        if self.party == 0:
            prg = self._prg(tag)
            widths = np.array([min(digit_bits, m - d * digit_bits) for d in range(digits)])
            raw = prg.words(n * digits).reshape(n, digits)
            vals = (raw & ((np.uint64(1) << widths.astype(np.uint64)) - np.uint64(1))
                    ).astype(np.int64)
            code = (vals[:, :, None] >= np.arange(1, levels + 1)[None, None, :]).astype(np.int64)
            therm = F.from_int64(code)
            low = _compose(vals.astype(np.uint64), digit_bits)
        high = self._bits_value(b"dh", (n,), k + KAPPA - m)
        return DigitMasks(self._share(b"therm", therm, (n, digits, levels)),
                          self._share(b"dlow", low, (n,)),
                          self._share(b"dhigh", high, (n,)), digit_bits)


class DealerFactory:
    """Makes each party's dealer in its own process (picklable, for `run_local`)."""

    def __init__(self, seed: bytes, *, insecure: bool = False, stockpile: bool = False,
                 synthetic: bool = False) -> None:
        """`synthetic`: only made-up data will pass through (the cost estimate's measurement
        on synthetic rows), so no banner: a secure job's user must not read that its data
        went through the dealer."""
        if insecure is not True:
            raise InsecureDealerError(
                "the test dealer sees every secret; pass insecure=True (tests and benchmarks "
                "only) or use the homomorphic-encryption preprocessing")
        self.seed = seed
        self.stockpile = stockpile
        self.synthetic = synthetic

    def prep_digest(self, party: int) -> bytes:
        """What a party commits to as its preprocessing for blame (enigma.mpc.blame).

        The dealer's output for `party` is a function of the seed and the party, so a digest
        of both names it, and a replay regenerates it from the (test-only, public) seed.
        """
        return hashlib.sha256(b"enigma.dealer.prep" + self.seed + party.to_bytes(4, "little")
                              ).digest()

    def replay_provider(self, field: Field, party: int, parties: int) -> TrustedDealer:
        """The honest dealer of `party`, for a blame replay (no banner: the run printed it)."""
        return TrustedDealer(field, party, parties, self.seed, insecure=True, quiet=True)

    def __call__(self, field: Field, party: int, parties: int):
        dealer = TrustedDealer(field, party, parties, self.seed, insecure=True,
                               quiet=self.synthetic or party != 0)
        if self.stockpile:
            from .stockpile import Stockpile
            return Stockpile(dealer)
        return dealer
