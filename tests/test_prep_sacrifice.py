"""A node that corrupts its share of a product is caught before any triple is used.

Party 1 runs the real provider but adds an error to its share of the cross
terms of the products (not of the MACs, which it then computes honestly on the
wrong c): every MAC check passes, so only the sacrifice can notice.
"""

import pytest

from enigma.field import Field
from enigma.mpc.runner import PartyFailed, run_local
from enigma.prep.provider import HEProvider

F = Field()


class CorruptingFactory:
    """Party `liar` adds `error` to element `index` of its product share (real HE otherwise)."""

    needs_channel = True

    def __init__(self, liar: int, index: int, error: int) -> None:
        self.liar, self.index, self.error = liar, index, error

    def __call__(self, field, party, parties, *, channel):
        provider = HEProvider(field, party, parties, channel)
        if party == self.liar:
            honest = provider.pairwise.cross
            n = provider.batch

            def cross(encrypted, v):
                share = honest(encrypted, v)
                if v.shape[0] == 2 * n:  # the products c and c', not a MAC
                    share[self.index] = field.add(share[self.index], field.const(self.error))
                return share

            provider.pairwise.cross = cross
        return provider


def take_triples(e, n: int):
    t = e.provider.triples(n)
    (c,) = e.open(e.secret(t.c))
    e.check()
    return c


@pytest.mark.parametrize("index, error", [(0, 1), (16383, -(2**100))])
def test_a_corrupted_product_is_caught_by_the_sacrifice(index, error):
    with pytest.raises(PartyFailed) as info:
        run_local(take_triples, args=(10,), provider_factory=CorruptingFactory(1, index, error),
                  timeout=240, deadline=400)
    assert info.value.kinds() == {"SacrificeError"}
    assert set(info.value.errors) == {0, 1, 2}
    assert all(f"index {index}" in msg for _, msg in info.value.errors.values())

