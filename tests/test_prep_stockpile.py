"""A Stockpile serves a plan in order while holding no more than its budget."""

from dataclasses import fields, is_dataclass

import numpy as np

from enigma.field import Field
from enigma.prep.dealer import TrustedDealer
from enigma.prep.stockpile import Stockpile, nbytes

F = Field()
SEED = b"test-seed-0123456789abcdef012345"
PLAN = [("triples", (1000,)), ("digit_masks", (200, 20, 21, 4)), ("input_masks", (0, 500)),
        ("trunc_masks", (300, 8, 64)), ("triples", (2000,)), ("digit_masks", (200, 20, 21, 4)),
        ("random_bits", (700,))]


def _served(budget: int) -> tuple[list, Stockpile, list[int]]:
    pile = Stockpile(TrustedDealer(F, 0, 3, SEED, insecure=True, quiet=True), budget=budget)
    pile.make(PLAN)
    held = [pile._held]
    out = []
    for kind, args in PLAN:
        out.append(getattr(pile, kind)(*args))
        held.append(pile._held)
    return out, pile, held


def _arrays(item) -> list[np.ndarray]:
    if isinstance(item, np.ndarray):
        return [item]
    if is_dataclass(item):
        return [a for f in fields(item) for a in _arrays(getattr(item, f.name))]
    return []


def test_a_small_budget_serves_the_same_plan_holding_one_item_at_a_time():
    whole, pile, _ = _served(1 << 40)
    assert pile.served == len(PLAN) and pile.produced_on_demand == 0
    bounded, pile, held = _served(1)
    assert pile.served == len(PLAN) and pile.produced_on_demand == 0
    largest = max(nbytes(item) for item in whole)
    assert max(held) <= largest  # one item ahead at most, never the whole plan
    assert sum(nbytes(item) for item in whole) > 2 * largest
    for a, b in zip(whole, bounded, strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(_arrays(a), _arrays(b), strict=True))
