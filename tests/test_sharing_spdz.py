"""SPDZ MACs: honest openings pass the check, any tampered value or MAC share is caught."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enigma.field import Field
from enigma.sharing import additive, spdz
from enigma.sharing.spdz import MacCheckError

F = Field()
N = 3


def setup(xs):
    alpha, alpha_shares = spdz.share_mac_key(F, N)
    x = F.from_ints(xs)
    return x, alpha, alpha_shares, spdz.authenticate(F, x, alpha, N)


def open_and_check(shares, alpha_shares, coeffs=None):
    opened = additive.combine(F, [s.value for s in shares])
    coeffs = F.random(opened.shape[:-1]) if coeffs is None else coeffs
    residues = [spdz.mac_residue(F, opened, s.mac, a, coeffs)
                for s, a in zip(shares, alpha_shares, strict=True)]
    spdz.check_residues(F, residues)
    return opened


@given(st.lists(st.integers(0, F.p - 1), min_size=1, max_size=20))
def test_honest_opening_passes(xs):
    x, _, alpha_shares, shares = setup(xs)
    assert np.array_equal(open_and_check(shares, alpha_shares), x)


def test_linear_operations_keep_macs_valid():
    x, _, a_sh, xs = setup(list(range(10)))
    y, _, _, _ = setup(list(range(100, 110)))
    # authenticate y under the same key
    alpha = additive.combine(F, a_sh)
    ys = spdz.authenticate(F, y, alpha, N)
    c = F.const(7)
    z = [spdz.add_public(F, spdz.scale(F, spdz.sub(F, spdz.add(F, a, b), b), 3), c, k, i)
         for i, (a, b, k) in enumerate(zip(xs, ys, a_sh, strict=True))]
    expected = F.add(F.mul(x, 3), c)
    assert np.array_equal(open_and_check(z, a_sh), expected)


@pytest.mark.parametrize("part", ["value", "mac"])
@given(party=st.integers(0, N - 1), index=st.integers(0, 9), bit=st.integers(0, 126))
def test_one_flipped_bit_is_caught(part, party, index, bit):
    _, _, alpha_shares, shares = setup(list(range(10)))
    target = getattr(shares[party], part)
    word, pos = divmod(bit, 64)
    target[index, word] ^= np.uint64(1 << pos)
    with pytest.raises(MacCheckError, match="MAC check failed"):
        open_and_check(shares, alpha_shares)


def test_an_additive_error_consistent_with_a_guessed_key_is_still_caught():
    """A cheater adds d to a value and d * guess to its MAC: caught unless guess = alpha."""
    _, alpha, alpha_shares, shares = setup([5, 6, 7])
    d = F.const(12345)
    guess = F.add(alpha.reshape(2), F.const(1))
    shares[1].value[0] = F.add(shares[1].value[0:1], d)[0]
    shares[1].mac[0] = F.add(shares[1].mac[0:1], F.mul(d.reshape(1, 2), guess))[0]
    with pytest.raises(MacCheckError):
        open_and_check(shares, alpha_shares)
