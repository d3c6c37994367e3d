"""Random bits from square pairs: the check catches a wrong square, the pairs cover every pair.

The construction (`HEProvider._produce_bits`): shared a and a' with their squares
from one pairwise product per pair of parties, y = a^2 opened without a MAC,
`check_squares` against the spare (a', a'^2), bits ([a] / sqrt(y) + 1) / 2.
A party that corrupts its share of a square, its opening of y, or a MAC makes
every party abort; correctness of honest bits is tested in test_prep_provider.
"""

import pytest

from enigma.field import Field
from enigma.mpc.runner import PartyFailed, run_local
from enigma.prep import provider as provider_module
from enigma.prep.dealer import DealerFactory
from enigma.prep.pairwise import square_partners
from enigma.prep.provider import HEProvider
from enigma.prep.sacrifice import SacrificeError, check_squares

F = Field()
DEALER = DealerFactory(b"test-seed-squares-0123456789abcd", insecure=True)


@pytest.mark.parametrize("parties", [2, 3, 4, 5, 6, 7])
def test_square_partners_cover_every_pair_of_parties_once(parties):
    covered = []
    for i in range(parties):
        to, frm = square_partners(i, parties)
        covered += [frozenset((i, j)) for j in to]
        assert all(i in square_partners(j, parties)[0] for j in frm)
    assert sorted(covered, key=sorted) == sorted(
        {frozenset((i, j)) for i in range(parties) for j in range(i)}, key=sorted)
    loads = [len(square_partners(i, parties)[0]) for i in range(parties)]
    assert max(loads) - min(loads) <= 1


CASES = [
    ({}, None),                   # true squares pass
    ({0: 0}, 0),                  # y + 1
    ({99: 4}, 99),                # 4 y: still a square, so only the check can see it
    ({5: -1, 70: 9}, 5),          # - y and 9 y
]


def squares_checked(e, n: int) -> list[str]:
    """Square pairs from the dealer's triples (a, a^2 by the engine), y with each case's errors."""
    outcomes = []
    for wrong, _ in CASES:
        t, spare = e.provider.triples(n), e.provider.triples(n)
        a, a2 = e.secret(t.a), e.secret(spare.a)
        (y,) = e.open(a * a)
        e.check()
        for index, factor in wrong.items():
            y[index] = F.mul(y[index], F.const(factor)) if factor else \
                F.add(y[index], F.const(1))
        try:
            check_squares(e, t.a, y, spare.a, (a2 * a2).share)
            outcomes.append("passed")
        except SacrificeError as exc:
            outcomes.append(str(exc))
    return outcomes


def test_check_squares_passes_true_squares_and_catches_every_wrong_one():
    by_party = run_local(squares_checked, args=(100,), provider_factory=DEALER)
    for outcomes in by_party:
        for (wrong, index), outcome in zip(CASES, outcomes, strict=True):
            if index is None:
                assert outcome == "passed"
            else:
                assert f"{len(wrong)} of 100 random values failed the square check (first " \
                    f"at index {index})" in outcome


class CheatingSquares:
    """Party 1 runs the real provider but corrupts one thing while making bits."""

    needs_channel = True

    def __init__(self, what: str) -> None:
        self.what = what

    def __call__(self, field, party, parties, *, channel):
        provider = HEProvider(field, party, parties, channel)
        if party != 1:
            return provider
        n, honest = provider.batch, provider.pairwise.cross
        what = self.what

        def cross(encrypted, v, returns=None):
            share = honest(encrypted, v, returns)
            square_round = returns is not None
            if (what == "square" and square_round) or \
                    (what == "mac" and v.shape[0] == 3 * n and not square_round):
                share[7] = field.add(share[7], field.const(2**90))
            return share

        provider.pairwise.cross = cross
        if what == "opening":
            honest_open = provider_module.open_unchecked

            def open_unchecked(engine, share):
                share = share.copy()
                share[7] = field.add(share[7], field.const(1))
                return honest_open(engine, share)

            provider_module.open_unchecked = open_unchecked
        return provider


def take_bits(e, n: int):
    (bits,) = e.open(e.secret(e.provider.random_bits(n)))
    e.check()
    return bits


@pytest.mark.slow
@pytest.mark.parametrize("what, kinds", [
    ("square", {"SacrificeError"}),   # a wrong a^2 (its share of a cross term)
    ("opening", {"SacrificeError"}),  # a wrong share of y = a^2 when it is opened
    ("mac", {"MacCheckError"}),       # a wrong MAC share (of a, a' or a'^2)
])
def test_a_party_that_corrupts_a_square_pair_makes_every_party_abort(what, kinds):
    with pytest.raises(PartyFailed) as info:
        run_local(take_bits, args=(10,), provider_factory=CheatingSquares(what),
                  timeout=240, deadline=400)
    assert set(info.value.errors) == {0, 1, 2}
    assert info.value.kinds() == kinds
    if what != "mac":
        assert all("index 7" in msg or "not a square" in msg
                   for _, msg in info.value.errors.values())

