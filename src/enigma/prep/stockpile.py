"""Preprocessing made ahead of demand and consumed in order.

SPDZ's online phase is fast because the expensive randomness exists before the
inputs do. A `Stockpile` wraps any provider: `make(plan)` produces, in one go,
everything a program will ask for (the plan is the list of requests, which
depends only on public sizes, so a dry run of the program records it), and
the engine's later requests are served from the stock without touching the
producer. A request that does not match the head of the stock is produced on
demand, so a wrong plan costs time, never correctness.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from enigma.mpc.preprocessing import DigitMasks, InputMasks, Provider, Triples, TruncMasks
from enigma.sharing import AuthShare

Request = tuple[str, tuple[Any, ...]]


class Stockpile:
    """A provider that serves requests from pre-made stock, recording what it is asked."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.field = inner.field
        self.party = inner.party
        self.parties = inner.parties
        self.requests: list[Request] = []
        self._stock: deque[tuple[Request, Any]] = deque()
        self.served = 0
        self.produced_on_demand = 0

    def mac_key_share(self) -> np.ndarray:
        return self.inner.mac_key_share()

    def make(self, plan: list[Request]) -> None:
        """Produce everything in `plan` now, in order."""
        for kind, args in plan:
            self._stock.append(((kind, args), getattr(self.inner, kind)(*args)))

    def _get(self, kind: str, *args: Any) -> Any:
        request = (kind, args)
        self.requests.append(request)
        if self._stock and self._stock[0][0] == request:
            self.served += 1
            return self._stock.popleft()[1]
        self.produced_on_demand += 1
        return getattr(self.inner, kind)(*args)

    def triples(self, n: int) -> Triples:
        return self._get("triples", n)

    def input_masks(self, owner: int, n: int) -> InputMasks:
        return self._get("input_masks", owner, n)

    def random_bits(self, n: int) -> AuthShare:
        return self._get("random_bits", n)

    def trunc_masks(self, n: int, m: int, k: int) -> TruncMasks:
        return self._get("trunc_masks", n, m, k)

    def digit_masks(self, n: int, m: int, k: int, digit_bits: int) -> DigitMasks:
        return self._get("digit_masks", n, m, k, digit_bits)
