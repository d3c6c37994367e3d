"""The public side of the analytics' precision: ranges, error propagation, scaling plans.

No MPC here: these properties are about the bounds themselves, checked with exact
rational arithmetic on values and perturbations drawn anywhere within the bounds.
"""

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enigma.lang.analytics.precision import (
    MASK_BITS,
    Approx,
    PrecisionError,
    Range,
    plan_scale,
    require,
)

mags = st.floats(0.0, 1e6)
fractions = st.floats(-1.0, 1.0)


@st.composite
def approx_and_sample(draw):
    """An Approx and an (exact, computed) pair that it describes."""
    mag, err = draw(mags), draw(st.floats(0.0, 1e3))
    exact = draw(fractions) * mag
    return Approx(mag, err), exact, exact + draw(fractions) * err


@given(approx_and_sample(), approx_and_sample())
def test_sums_and_products_stay_within_their_bounds(a, b):
    (pa, xa, ya), (pb, xb, yb) = a, b
    for bound, exact, computed in ((pa + pb, xa + xb, ya + yb), (pa - pb, xa - xb, ya - yb),
                                   (pa * pb, xa * xb, ya * yb)):
        assert abs(exact) <= bound.mag * (1 + 1e-12) + 1e-12
        assert abs(computed - exact) <= bound.err * (1 + 1e-12) + 1e-9


@given(approx_and_sample(), st.floats(0.01, 100.0), st.floats(0.0, 1.0), st.floats(0.0, 0.9),
       fractions)
def test_quotients_stay_within_their_bounds(a, floor, t, shrink, sign):
    pa, xa, ya = a
    b_exact = floor * (1 + 10 * t)
    b_err = floor * shrink * 0.1
    b_computed = b_exact + sign * b_err
    if b_computed < floor - b_err:
        return
    q = pa.over(Approx(b_exact, b_err), floor - b_err)
    assert abs(ya / b_computed - xa / b_exact) <= q.err * (1 + 1e-9) + 1e-12


@given(st.floats(0.0, 1e6), st.floats(0.0, 1.0), st.floats(-1.0, 1.0), st.floats(0.0, 1e3))
def test_square_roots_stay_within_their_bounds(v, u, s, err):
    floor = v * u
    computed = max(v + s * err, floor)  # floored, as the analytics floor before a root
    bound = Approx(v, err).sqrt(floor)
    assert abs(math.sqrt(computed) - math.sqrt(v)) <= bound.err * (1 + 1e-9) + 1e-12


@given(st.floats(-1e6, 1e6), st.floats(0.0, 1e6), st.integers(0, 24))
def test_range_centre_covers_every_code(lo, width, f):
    r = Range(lo, lo + width)
    mid, half = r.center(f)
    lo_code, hi_code = r.codes(f)
    assert mid - half <= lo_code and hi_code <= mid + half and half >= 1


@given(st.data())
def test_scaling_plans_are_within_their_error_whatever_truncation_rounds(data):
    """x r from the plan's limbs, each TruncPr rounding down or up as it likes, is within
    the plan's error of the exact x r."""
    bits = data.draw(st.integers(1, MASK_BITS - 6))
    bound = data.draw(st.integers(1, (1 << bits) - 1))
    num = data.draw(st.integers(1, 1 << 40))
    den = data.draw(st.integers(1, 1 << 60))
    shift = data.draw(st.integers(0, 60))
    ratio = Fraction(num, den) / 2**shift
    if bound * ratio >= 2**63:
        with pytest.raises(PrecisionError):
            plan_scale([bound], [ratio])
        return
    plan = plan_scale([bound], [ratio])
    x = data.draw(st.integers(-bound, bound))
    total = Fraction(0)
    for digits, m in plan.limbs:
        product = x * digits[0]
        assert abs(product) < 2**MASK_BITS  # what TruncPr can mask
        if m > 0:
            assert m < MASK_BITS
            total += product // 2**m + data.draw(st.integers(0, 1))
        else:
            total += product * 2**-m
    assert abs(total - x * ratio) <= Fraction(plan.errors[0]) + Fraction(1, 10**9)


def test_refusals_name_the_function_and_the_quantity():
    with pytest.raises(PrecisionError, match=r"^mean: the column sum can reach 2\^70\.0"):
        require("mean", "the column sum", 1 << 70)
    require("mean", "the column sum", (1 << 63) - 1)
    with pytest.raises(ValueError, match="finite lo <= hi"):
        Range(2.0, 1.0)
