"""Encodings: exact round trips where they should be, the documented bound otherwise."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enigma.field import (
    BoolEncoding,
    CategoryEncoding,
    EncodingError,
    Field,
    FixedEncoding,
    IntEncoding,
)

F = Field()


@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50))
def test_int_round_trip_is_exact(xs):
    enc = IntEncoding()
    assert enc.decode(F, enc.encode(F, np.array(xs, dtype=np.int64))).tolist() == xs


def test_int_range_error_names_value_and_limit():
    enc = IntEncoding(0, 120)
    with pytest.raises(EncodingError, match=r"130 at index 2 is outside the range \[0, 120\]"):
        enc.encode(F, [1, 5, 130])
    with pytest.raises(EncodingError, match="not an integer"):
        enc.encode(F, [1.5])
    with pytest.raises(EncodingError, match="above"):
        IntEncoding().encode(F, np.array([2**64 - 1], dtype=np.uint64))


@pytest.mark.parametrize("value", [1e23, -1e23, 2.0**63])
def test_an_integral_float_beyond_64_bits_is_named_as_it_is(value):
    """Compared before the cast to int64, which would wrap it to -2^63."""
    with pytest.raises(EncodingError, match=re.escape(f"value {value:g} at index 1 is outside")):
        IntEncoding().encode(F, np.array([1.0, value]))
    with pytest.raises(EncodingError, match=re.escape(f"value {value:g} at index 0 is outside")):
        IntEncoding(0, 100).encode(F, np.array([value]))


@given(st.integers(0, 30), st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=50))
def test_fixed_point_error_is_within_the_bound(f, xs):
    enc = FixedEncoding(frac_bits=f, lo=-1e6, hi=1e6)
    back = enc.decode(F, enc.encode(F, xs))
    assert np.all(np.abs(back - np.array(xs)) <= enc.error)


@given(st.lists(st.integers(-(2**40), 2**40), max_size=50))
def test_fixed_point_is_exact_on_its_grid(ks):
    enc = FixedEncoding(frac_bits=16)
    xs = np.array(ks, dtype=np.float64) / 2**16
    assert enc.decode(F, enc.encode(F, xs)).tolist() == xs.tolist()


def test_fixed_point_refuses_non_finite_and_out_of_range():
    enc = FixedEncoding(frac_bits=16, lo=0, hi=150)
    with pytest.raises(EncodingError, match=r"value nan at index 1 is not a finite number"):
        enc.encode(F, [1.0, float("nan")])
    with pytest.raises(EncodingError, match=r"value 151.0 at index 0 is outside"):
        enc.encode(F, [151.0])
    with pytest.raises(ValueError, match="must lie within"):
        FixedEncoding(frac_bits=16, lo=0, hi=2.0**48)


def test_bool_and_category_round_trips_and_errors():
    b = BoolEncoding()
    assert b.decode(F, b.encode(F, [True, False, 1, 0])).tolist() == [True, False, True, False]
    with pytest.raises(EncodingError, match="not a boolean"):
        b.encode(F, [0, 2])
    c = CategoryEncoding(("north", "south", "east", "west"))
    vals = ["west", "north", "east", "west"]
    assert c.decode(F, c.encode(F, vals)).tolist() == vals
    with pytest.raises(EncodingError, match=r"'centre' at index 1 is not one of the levels"):
        c.encode(F, ["north", "centre"])
    with pytest.raises(EncodingError, match="outside the 4 levels"):
        c.decode(F, F.from_ints([7]))
    with pytest.raises(ValueError, match="distinct"):
        CategoryEncoding(("a", "a"))


def test_a_field_too_small_for_64_bit_values_is_refused():
    with pytest.raises(EncodingError, match="too small"):
        IntEncoding().encode(Field((1 << 61) - 1), [1])
