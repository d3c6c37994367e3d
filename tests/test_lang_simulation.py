"""The in-process quorum of the cost estimate: the engine's protocols run in it, and one
failing party stops the others instead of leaving them waiting."""

from __future__ import annotations

import numpy as np
import pytest

from enigma.lang.simulation import thread_quorum
from enigma.mpc.engine import Engine
from enigma.prep.dealer import DealerFactory

FACTORY = DealerFactory(b"enigma simulation test, synthetic", insecure=True)


def _product(e: Engine, a: int, b: int) -> tuple[int, int]:
    F = e.field
    x = e.input(0, F.from_int64(np.array([a])) if e.party == 0 else None, 1)
    y = e.input(1, F.from_int64(np.array([b])) if e.party == 1 else None, 1)
    return int(F.to_int64(e.reveal(x * y))[0]), e.stats.triples


def _fails_at_party_one(e: Engine) -> None:
    if e.party == 1:
        raise ValueError("party one gives up")
    e.channel.recv(1)  # waits for a message that never comes


def test_a_product_in_threads() -> None:
    assert thread_quorum(_product, args=(-7, 6), provider_factory=FACTORY) == [(-42, 1)] * 3


def test_a_failing_party_stops_the_others() -> None:
    with pytest.raises(ValueError, match="party one gives up"):  # the cause, not an echo
        thread_quorum(_fails_at_party_one, provider_factory=FACTORY, timeout=60.0)
