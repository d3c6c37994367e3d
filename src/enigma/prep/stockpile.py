"""Preprocessing made ahead of demand and consumed in order.

SPDZ's online phase is fast because the expensive randomness exists before the
inputs do. A `Stockpile` wraps any provider: `make(plan)` produces, in one go,
everything a program will ask for (the plan is the list of requests, which
depends only on public sizes, so a dry run of the program records it), and
the engine's later requests are served from the stock without touching the
producer. A request that does not match the head of the stock is produced on
demand, so a wrong plan costs time, never correctness.

The stock holds at most `budget` bytes: a plan for 10^6 comparisons is many GB
of thermometer tables. What does not fit is produced, in the plan's order, as
soon as what is ahead of it has been served.
"""

from __future__ import annotations

from collections import deque
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np

from enigma.mpc.preprocessing import DigitMasks, InputMasks, Provider, Triples, TruncMasks
from enigma.sharing import AuthShare

Request = tuple[str, tuple[Any, ...]]

STOCK_BUDGET = 512 << 20
"""Bytes of pre-made preprocessing a `Stockpile` holds at once."""


def nbytes(item: Any) -> int:
    """Bytes of the shares in a provider's answer (dataclasses of arrays and shares).

    An input mask's `clear` (held by the input's owner alone) is left out: every party must
    count the same bytes, so that all refill at the same point (production may be a protocol).
    """
    if isinstance(item, np.ndarray):
        return item.nbytes
    if is_dataclass(item):
        return sum(nbytes(getattr(item, f.name)) for f in fields(item) if f.name != "clear")
    return 0


class Stockpile:
    """A provider that serves requests from pre-made stock, recording what it is asked."""

    def __init__(self, inner: Provider, budget: int = STOCK_BUDGET) -> None:
        self.inner = inner
        self.budget = budget
        self.field = inner.field
        self.party = inner.party
        self.parties = inner.parties
        self.requests: list[Request] = []
        self._stock: deque[tuple[Request, Any, int]] = deque()
        self._planned: deque[Request] = deque()
        self._held = 0
        self.served = 0
        self.produced_on_demand = 0

    def mac_key_share(self) -> np.ndarray:
        return self.inner.mac_key_share()

    def make(self, plan: list[Request]) -> None:
        """Produce `plan` in order: now as far as the budget holds, the rest as it is served."""
        self._planned.extend(plan)
        self._fill()

    def _fill(self) -> None:
        """Produce planned requests while the stock is within its budget (at least one)."""
        while self._planned and (not self._stock or self._held < self.budget):
            kind, args = self._planned.popleft()
            item = getattr(self.inner, kind)(*args)
            size = nbytes(item)
            self._stock.append(((kind, args), item, size))
            self._held += size

    def _get(self, kind: str, *args: Any) -> Any:
        request = (kind, args)
        self.requests.append(request)
        if self._stock and self._stock[0][0] == request:
            self.served += 1
            _, item, size = self._stock.popleft()
            self._held -= size
            self._fill()
            return item
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
