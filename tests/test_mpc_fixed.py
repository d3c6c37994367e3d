"""Fixed-point arithmetic between 3 real processes, against float64 (and encoding properties)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enigma.field import Field
from enigma.mpc import fixed as X
from enigma.mpc.runner import run_local
from enigma.prep.dealer import DealerFactory

F = Field()
DEALER = DealerFactory(b"fixed-test-seed-0123456789abcdef0", insecure=True)
ULP = 2.0**-X.FRAC


@given(st.floats(min_value=-(2.0**60), max_value=2.0**60, allow_nan=False),
       st.integers(min_value=0, max_value=24))
def test_encode_then_decode_rounds_to_nearest(value, f):
    got = X.decode(F, X.encode(F, value, f), f)
    if abs(value) * 2.0**f < 2.0**53:  # float64 represents the encoding exactly
        assert abs(got - value) <= 2.0 ** -(f + 1)
    else:
        assert got == pytest.approx(value, rel=2.0**-52)


def test_encode_refuses_what_the_masking_cannot_hold():
    X.encode(F, 2.0**68, 16)
    with pytest.raises(ValueError, match="index 1 does not fit"):
        X.encode(F, [1.0, 2.0**70], 16)
    with pytest.raises(ValueError, match="index 0"):
        X.encode(F, [float("nan")], 16)


def _input(e, owner, reals):
    codes = X.encode(F, reals)
    return e.input(owner, codes if e.party == owner else None, codes.shape[:-1])


def arithmetic(e, a, b, c, shifts):
    x, y = _input(e, 0, a), _input(e, 1, b)
    many = X.mul_fixed_many(e, [(x, y), (x, x)])
    ints = e.input(0, F.from_int64(np.arange(-3, 4)) if e.party == 0 else None, 7)
    out = dict(mul=X.mul_fixed(e, x, y), mul_many_0=many[0], mul_many_1=many[1],
               scale=X.scale(e, x, 0.3), scale_precise=X.scale(e, x, 1 / 3, precision=40),
               scale_vector=X.scale(e, x, c), up=X.rescale(e, x, 16, 30),
               down=X.rescale(e, x, 16, 4), from_int=X.from_int(ints))
    raw = e.input(0, F.from_int64(np.full(len(shifts), 1000003)) if e.party == 0 else None,
                  len(shifts))
    parts = X.trunc_many(e, [raw[i:i + 1] for i in range(len(shifts))], shifts)
    out.update({f"shift_{m}": p for m, p in zip(shifts, parts, strict=True)})
    return {k: F.to_float(e.reveal(v)) for k, v in out.items()}


def rounding(e, value, count):
    x = _input(e, 0, np.full(count, value))
    y = _input(e, 1, np.full(count, 1.0 / 3))
    return F.to_float(e.reveal(X.mul_fixed(e, x, y)))


def program(e, a, b, c, shifts, value, count):
    """Everything in one run of 3 processes: spawning them costs more than the protocols."""
    return dict(arithmetic=arithmetic(e, a, b, c, shifts), rounding=rounding(e, value, count))


RNG = np.random.default_rng(11)
EDGES = [0.0, 1.0, -1.0, ULP, -ULP, 2.0**26 - 1, -(2.0**26), 1.5, -0.75]
A = np.concatenate([EDGES, RNG.uniform(-1000, 1000, 50), RNG.uniform(-1, 1, 20)])
B = np.concatenate([[5.0, -3.0, 2.0, 7.0, 1.0, 2.0**26, 2.0**26, -1.5, 0.75],
                    RNG.uniform(-1000, 1000, 50), RNG.uniform(-1, 1, 20)])
C = RNG.uniform(-10, 10, A.size)
SHIFTS = [1, 7, 16, 20, 63, 70]
VALUE, COUNT = 0.7, 4000


@pytest.fixture(scope="module")
def results():
    return run_local(program, args=(A, B, C, SHIFTS, VALUE, COUNT), provider_factory=DEALER)[0]


def test_products_and_scaling_are_within_one_ulp(results):
    got = results["arithmetic"]
    ea, eb = X.decode(F, X.encode(F, A)), X.decode(F, X.encode(F, B))  # what was input

    def ulps(name, want, scale=X.FRAC):
        return np.abs(got[name] / 2.0**scale - want) / ULP

    assert ulps("mul", ea * eb).max() < 1
    assert ulps("mul_many_0", ea * eb).max() < 1
    assert ulps("mul_many_1", ea * ea).max() < 1
    assert (ulps("scale", ea * 0.3) < 1 + np.abs(ea) * 2.0**-17 / ULP).all()
    assert (ulps("scale_precise", ea / 3) < 1 + np.abs(ea) * 2.0**-41 / ULP).all()
    assert (ulps("scale_vector", ea * C) < 1 + np.abs(ea) * 2.0**-17 / ULP).all()
    assert ulps("up", ea, 30).max() == 0
    assert ulps("down", ea, 4).max() < 2.0**12  # one unit of 2^-4
    assert got["from_int"].tolist() == [v * 2.0**16 for v in range(-3, 4)]
    for m in SHIFTS:
        assert got[f"shift_{m}"][0] - np.floor(1000003 / 2.0**m) in (0, 1)


def test_truncation_rounds_without_bias(results):
    """x * 1/3 at f = 16 drops a fraction of the last place; on average it is kept."""
    got = results["rounding"]
    exact = X.decode(F, X.encode(F, VALUE)) * X.decode(F, X.encode(F, 1 / 3)) * 2.0**16
    assert set(np.unique(got - np.floor(exact)).tolist()) == {0.0, 1.0}
    # P(round up) equals the dropped fraction; 4000 draws: 5 standard deviations
    frac = exact - np.floor(exact)
    assert abs((got - np.floor(exact)).mean() - frac) < 5 * np.sqrt(frac * (1 - frac) / COUNT)
