"""Shamir t-of-n: every qualifying subset reconstructs, fewer learn nothing, resharing works."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enigma.field import Field
from enigma.sharing import additive, shamir
from enigma.sharing.shamir import ShamirError

F = Field()


@given(st.integers(1, 6).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))),
       st.lists(st.integers(0, F.p - 1), min_size=1, max_size=10))
def test_every_qualifying_subset_reconstructs(nt, xs):
    n, t = nt
    x = F.from_ints(xs)
    shares = shamir.share(F, x, t, n)
    for size in range(t + 1, n + 1):
        for subset in itertools.combinations(range(1, n + 1), size):
            got = shamir.reconstruct(F, {j: shares[j - 1] for j in subset}, t)
            assert np.array_equal(got, x)


def test_fewer_than_t_plus_one_is_refused():
    shares = shamir.share(F, F.random(4), 2, 5)
    with pytest.raises(ShamirError, match="at least t \\+ 1 = 3"):
        shamir.reconstruct(F, {1: shares[0], 4: shares[3]}, 2)


def test_t_shares_do_not_determine_the_secret():
    """With t = 1, one share is uniform whatever the secret (chi-squared on a small field)."""
    small = Field(257)
    for secret in (0, 200):
        s = small.to_ints(shamir.share(small, small.from_ints([secret] * 25700), 1, 3)[1])
        counts = np.bincount(s.astype(np.int64), minlength=257)
        assert float(((counts - 100) ** 2 / 100).sum()) < 380


def test_a_corrupt_extra_share_is_detected():
    x = F.random(5)
    shares = shamir.share(F, x, 1, 3)
    shares[2][3, 0] ^= np.uint64(1)
    with pytest.raises(ShamirError, match="point 3 disagrees"):
        shamir.reconstruct(F, {1: shares[0], 2: shares[1], 3: shares[2]}, 1)


@pytest.mark.parametrize("points", [[1, 2], [1, 3], [2, 3], [1, 2, 3]])
def test_lagrange_turns_shamir_into_additive_shares(points):
    x = F.random(20)
    t = len(points) - 1
    shares = shamir.share(F, x, min(t, 1), 3)
    adds = [shamir.to_additive(F, shares[j - 1], j, points) for j in points]
    assert np.array_equal(additive.combine(F, adds), x)


def test_resharing_to_a_new_holder_without_reconstructing():
    t, x = 1, F.random(30)
    shares = shamir.share(F, x, t, 3)
    # holder 2 is lost; holders 1 and 3 re-share to points 1, 3 and a replacement at 4
    senders, new_points = [1, 3], [1, 3, 4]
    msgs = {j: shamir.reshare_messages(F, shares[j - 1], j, senders, new_points, t)
            for j in senders}
    new = {k: additive.combine(F, [msgs[j][k] for j in senders]) for k in new_points}
    assert np.array_equal(shamir.reconstruct(F, new, t), x)
    assert not F.equal(new[1], shares[0]).any()  # refreshed, not copied


def test_bad_parameters_are_refused():
    with pytest.raises(ShamirError, match="0 <= t < n"):
        shamir.share(F, F.zeros(1), 3, 3)
    with pytest.raises(ShamirError, match="duplicate"):
        shamir.lagrange(F, [1, 1])
    with pytest.raises(ShamirError, match="not among"):
        shamir.to_additive(F, F.zeros(1), 5, [1, 2])
