"""Additive sharing: reconstruction, and one share's distribution is independent of the secret."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enigma.field import Field
from enigma.sharing import additive

F = Field()


@given(st.lists(st.integers(0, F.p - 1), max_size=20), st.integers(1, 6))
def test_split_then_combine_is_the_secret(xs, n):
    x = F.from_ints(xs)
    shares = additive.split(F, x, n)
    assert len(shares) == n
    assert np.array_equal(additive.combine(F, shares), x)


def test_fewer_than_all_shares_do_not_reconstruct():
    x = F.from_ints(list(range(1, 101)))
    shares = additive.split(F, x, 3)
    assert not F.equal(additive.combine(F, shares[:2]), x).any()


def test_resharing_keeps_the_secret_and_changes_every_share():
    x = F.random(50)
    old = additive.split(F, x, 3)
    messages = [additive.split(F, s, 3) for s in old]  # party i sends messages[i][j] to j
    new = [additive.combine(F, [messages[i][j] for i in range(3)]) for j in range(3)]
    assert np.array_equal(additive.combine(F, new), x)
    assert all(not F.equal(o, n).any() for o, n in zip(old, new, strict=True))


def test_one_share_does_not_depend_on_the_secret():
    """Chi-squared test on a small field: share 0's histogram is uniform whatever x is."""
    small = Field(257)
    for secret in (0, 1, 256):
        x = small.from_ints([secret] * 25700)
        s0 = small.to_ints(additive.split(small, x, 3)[0]).astype(np.int64)
        counts = np.bincount(s0, minlength=257)
        chi2 = float(((counts - 100) ** 2 / 100).sum())
        assert chi2 < 380, f"share 0 is not uniform for secret {secret}: chi2 = {chi2:.0f}"


def test_no_shares_is_an_error():
    with pytest.raises(ValueError, match="no shares"):
        additive.combine(F, [])
    with pytest.raises(ValueError, match="at least one"):
        additive.split(F, F.zeros(1), 0)
