"""What the online phase consumes, and the interface of whoever produces it.

SPDZ splits a computation into an input-independent offline phase, which makes
correlated randomness, and a cheap online phase that consumes it. Every party
calls the provider in the same order with the same arguments (the program is
the same on all parties), so a provider can hand out matching shares without
talking, as the test dealer does, or by running a protocol, as the homomorphic
preprocessing does.

Masks for comparison and truncation are (r_low, r_high) with
r = r_low + 2^m r_high: r_low uniform on m bits, r_high uniform on
k + kappa - m bits, so that r statistically hides a k-bit value up to 2^-kappa
(Catrina and Saxena, "Secure computation with fixed-point numbers", FC 2010,
section 3). For comparisons r_low also comes in base-2^b digits, each digit d
as a thermometer code t[d, v] = [digit_d >= v] for v = 1 .. 2^b - 1: then
[digit < c] and [digit == c] for a public c are linear in the code, which
makes a comparison cost one multiplication per digit in a tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from enigma.field import Field
from enigma.sharing import AuthShare

KAPPA = 40
"""Statistical security parameter of masking, in bits."""


@dataclass
class Triples:
    """Beaver triples: c = a * b elementwise."""

    a: AuthShare
    b: AuthShare
    c: AuthShare


@dataclass
class InputMasks:
    """Random r shared among all; `clear` holds r at the input's owner only."""

    r: AuthShare
    clear: np.ndarray | None


@dataclass
class TruncMasks:
    """r_low on m bits and r_high on k + kappa - m bits, both shared."""

    low: AuthShare
    high: AuthShare


@dataclass
class DigitMasks:
    """r_low, its thermometer-coded base-2^b digits (shape (n, digits, 2^b - 1)), and r_high.

    `low` equals sum_d 2^(b d) sum_v thermometer[d, v]; providers hand it over
    because it is a local linear function of the code that costs the online
    phase a pass over the largest array it holds.
    """

    thermometer: AuthShare
    low: AuthShare
    high: AuthShare
    digit_bits: int


class Provider(Protocol):
    """Correlated randomness for one party of one quorum."""

    field: Field
    party: int
    parties: int

    def mac_key_share(self) -> np.ndarray: ...

    def triples(self, n: int) -> Triples: ...

    def input_masks(self, owner: int, n: int) -> InputMasks: ...

    def random_bits(self, n: int) -> AuthShare: ...

    def trunc_masks(self, n: int, m: int, k: int) -> TruncMasks: ...

    def digit_masks(self, n: int, m: int, k: int, digit_bits: int) -> DigitMasks: ...
