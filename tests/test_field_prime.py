"""Field arithmetic checked against Python integers, on random and edge values."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enigma.field import MERSENNE_127, PRG, Field, FieldError

PRIMES = [MERSENNE_127, (1 << 89) - 1, (1 << 61) - 1, 65537, 7]
# a composite ring modulus: the product of two 60-bit NTT-friendly primes
RINGS = [*PRIMES, 1152921504606584833 * 1152921504606830593]


def edge_values(p: int) -> list[int]:
    return sorted({0, 1, 2, p - 1, p - 2, p // 2, p // 2 + 1, (1 << 63) % p, (1 << 64) % p,
                   ((1 << 64) - 1) % p})


def elements(p: int):
    return st.lists(st.one_of(st.sampled_from(edge_values(p)), st.integers(0, p - 1)),
                    min_size=0, max_size=40)


@pytest.mark.parametrize("p", RINGS)
@given(data=st.data())
def test_ring_laws_match_python_integers(p, data):
    F = Field(p)
    xs = data.draw(elements(p))
    ys = data.draw(st.lists(st.integers(0, p - 1), min_size=len(xs), max_size=len(xs)))
    a, b = F.from_ints(xs), F.from_ints(ys)
    assert list(F.to_ints(F.add(a, b))) == [(x + y) % p for x, y in zip(xs, ys, strict=True)]
    assert list(F.to_ints(F.sub(a, b))) == [(x - y) % p for x, y in zip(xs, ys, strict=True)]
    assert list(F.to_ints(F.mul(a, b))) == [(x * y) % p for x, y in zip(xs, ys, strict=True)]
    assert list(F.to_ints(F.neg(a))) == [(-x) % p for x in xs]
    assert list(F.to_ints(F.muladd(a, b, a))) == [
        (x * y + x) % p for x, y in zip(xs, ys, strict=True)]
    assert int(F.to_ints(F.sum(a))) == sum(xs) % p
    assert int(F.to_ints(F.dot(a, b))) == sum(x * y for x, y in zip(xs, ys, strict=True)) % p


@pytest.mark.parametrize("p", RINGS)
def test_every_edge_pair(p):
    F = Field(p)
    e = edge_values(p)
    xs = [x for x in e for _ in e]
    ys = [y for _ in e for y in e]
    a, b = F.from_ints(xs), F.from_ints(ys)
    assert list(F.to_ints(F.mul(a, b))) == [(x * y) % p for x, y in zip(xs, ys, strict=True)]
    assert list(F.to_ints(F.add(a, b))) == [(x + y) % p for x, y in zip(xs, ys, strict=True)]
    assert list(F.to_ints(F.sub(a, b))) == [(x - y) % p for x, y in zip(xs, ys, strict=True)]


@pytest.mark.parametrize("p", RINGS)
@given(data=st.data())
def test_scalar_operands(p, data):
    F = Field(p)
    xs = data.draw(elements(p))
    c = data.draw(st.integers(-(1 << 130), 1 << 130))
    a = F.from_ints(xs)
    assert list(F.to_ints(F.mul(a, c))) == [(x * c) % p for x in xs]
    assert list(F.to_ints(F.add(a, F.const(c)))) == [(x + c) % p for x in xs]
    assert list(F.to_ints(F.rsub(a, F.const(c)))) == [(c - x) % p for x in xs]


@pytest.mark.parametrize("p", PRIMES)
@given(data=st.data())
def test_inverse_and_pow(p, data):
    F = Field(p)
    xs = data.draw(st.lists(st.integers(1, p - 1), min_size=1, max_size=30))
    e = data.draw(st.integers(0, (1 << 128) - 1))
    a = F.from_ints(xs)
    assert list(F.to_ints(F.inverse(a))) == [pow(x, -1, p) for x in xs]
    assert list(F.to_ints(F.pow(a, e))) == [pow(x, e, p) for x in xs]


def test_inverse_of_zero_names_the_element():
    F = Field()
    with pytest.raises(ZeroDivisionError, match="element 2 is zero"):
        F.inverse(F.from_ints([3, 4, 0, 5]))


def test_sum_and_dot_along_an_axis_match_python():
    F = Field()
    rng = np.random.default_rng(1)
    m = rng.integers(-1000, 1000, size=(4, 5))
    a = F.from_int64(m)
    assert F.to_int64(F.sum(a, axis=0)).tolist() == m.sum(axis=0).tolist()
    assert F.to_int64(F.sum(a, axis=1)).tolist() == m.sum(axis=1).tolist()
    assert F.to_int64(F.dot(a, a, axis=1)).tolist() == (m * m).sum(axis=1).tolist()
    b = rng.integers(-1000, 1000, size=(5, 3))
    assert F.to_int64(F.matmul(a, F.from_int64(b))).tolist() == (m @ b).tolist()


def test_signed_round_trip_at_the_int64_limits():
    F = Field()
    x = np.array([0, 1, -1, 2**63 - 1, -(2**63), 12345, -98765], dtype=np.int64)
    assert F.to_int64(F.from_int64(x)).tolist() == x.tolist()
    assert F.to_ints(F.from_int64(x)).tolist() == [v % F.p for v in x.tolist()]
    with pytest.raises(OverflowError, match="index"):
        F.to_int64(F.from_ints([1 << 64]))
    assert F.to_float(F.from_ints([-(1 << 70)])).tolist() == [-(2.0**70)]


def test_random_is_canonical_and_seeded_draws_repeat():
    for p in RINGS:
        F = Field(p)
        r = F.random(5000)
        F.check(r)
        assert F.to_ints(r).max() < p
    F = Field()
    assert np.array_equal(F.random(10, PRG(b"s" * 32)), F.random(10, PRG(b"s" * 32)))
    assert not np.array_equal(F.random(10), F.random(10))


def test_random_fills_the_whole_range():
    """The top and bottom halves of a small field are hit about equally."""
    F = Field(65537)
    v = F.to_int64(F.random(20000))
    assert v.min() < 0 < v.max()  # centered lift: both halves present
    assert abs(int((F.to_ints(F.random(20000)) < 32768).sum()) - 10000) < 500


def test_bytes_round_trip_and_rejection():
    F = Field()
    a = F.random(100)
    buf = bytes(F.to_bytes(a))
    assert len(buf) == 1600
    assert np.array_equal(F.from_bytes(buf), a)
    assert np.array_equal(F.from_bytes(buf, shape=(10, 10)), a.reshape(10, 10, 2))
    with pytest.raises(FieldError, match="whole number"):
        F.from_bytes(buf[:-1])
    bad = bytearray(buf)
    bad[16 * 7 + 15] = 0xFF  # element 7 above p
    with pytest.raises(FieldError, match="element 7"):
        F.from_bytes(bytes(bad))
    with pytest.raises(FieldError, match="expected"):
        F.from_bytes(buf, shape=3)


def test_to_bytes_is_zero_copy():
    F = Field()
    a = F.random(8)
    view = F.to_bytes(a)
    a[0, 0] ^= np.uint64(1)
    assert bytes(view[:8]) == a[0, 0].tobytes()


def test_bad_moduli_and_shapes_are_refused():
    with pytest.raises(ValueError, match="odd"):
        Field(1 << 100)
    with pytest.raises(ValueError):
        Field(1 << 127)
    F = Field()
    with pytest.raises(FieldError, match="shape mismatch"):
        F.add(F.zeros(3), F.zeros(4))
    with pytest.raises(FieldError, match="uint64"):
        F.check(np.zeros(3))
