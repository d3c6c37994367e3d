"""Reciprocal, division, square roots, exp and log between 3 real processes, against numpy.

Each function is checked against its documented bound: |error| <= A ulp + R |result|
(ulp = 2^-16), on edge values (1 ulp, powers of two and their neighbours, the
largest 64-bit encodings, out-of-domain inputs) and on random values spread
over the whole range.
"""

import math

import numpy as np
import pytest

from enigma.field import Field
from enigma.mpc import functions as fn
from enigma.mpc.runner import run_local
from enigma.prep.dealer import DealerFactory

F = Field()
DEALER = DealerFactory(b"functions-test-seed-0123456789abc", insecure=True)
f = 16
ULP = 2.0**-f
TOP = (1 << 63) - 1


def _input(e, codes):
    codes = np.asarray(codes, dtype=np.int64)
    return e.input(0, F.from_int64(codes) if e.party == 0 else None, codes.shape)


def program(e, pos, signed, num, den, small, powers):
    x, s, a, b = _input(e, pos), _input(e, signed), _input(e, num), _input(e, den)
    z, p = _input(e, small), _input(e, powers)
    out = dict(reciprocal=fn.reciprocal(e, s), reciprocal32=fn.reciprocal(e, s, out_frac=32),
               reciprocal_narrow=fn.reciprocal(e, z, bits=24), divide=fn.divide(e, a, b),
               sqrt=fn.sqrt(e, x), rsqrt=fn.rsqrt(e, x), sqrt_signed=fn.sqrt(e, s),
               log2=fn.log2(e, x), log=fn.log(e, x), log10=fn.log(e, x, base=10),
               log2_signed=fn.log2(e, s),
               reciprocal_f20=fn.reciprocal(e, s, f=20), sqrt_f20=fn.sqrt(e, x, f=20),
               log2_f20=fn.log2(e, x, f=20), exp2_f20=fn.exp2(e, p, f=20),
               sqrt_f36=fn.sqrt(e, x, f=36), rsqrt_f36=fn.rsqrt(e, x, f=36),
               exp2=fn.exp2(e, p), exp=fn.exp(e, p))
    for name, (lo, hi) in BOUNDED_EXP.items():  # public bounds: clip and blocks narrowed
        out[name] = fn.exp(e, _input(e, _bounded(lo, hi)), bounds=(lo, hi))
    t = _input(e, np.arange(1, 8))  # inputs of 3 bits: one block, nothing to shift
    out.update(counts_reciprocal=fn.reciprocal(e, t, 0, bits=3, out_frac=32),
               counts_reciprocal_2=fn.reciprocal(e, t, 0, bits=3, out_frac=2),
               tiny_sqrt=fn.sqrt(e, t, bits=3), tiny_log2=fn.log2(e, t, bits=3),
               tiny_divide=fn.divide(e, t, t[::-1], bits=3))
    values = {name: F.to_float(e.reveal(v)) for name, v in out.items()}
    return values, too_wide(e)


BOUNDED_EXP = {"exp_rr": (0.0, 0.7), "exp_low": (-30.0, -5.0), "exp_mid": (-3.2, 9.7),
               "exp_wide": (-40.0, 40.0), "exp_point": (2.5, 2.5)}
"""exp with public bounds on x: inside the clip range (no clip), across its low end, across
both, one value; block edges of x log2 e inside each (`_bounded`)."""


def _bounded(lo, hi):
    """Codes in [lo, hi]: both ends, the block edges of t = x log2 e between them (t =
    -17 + 8i and its neighbours), and random values."""
    rng = np.random.default_rng(int(abs(lo * 7 + hi * 13)))
    ends = [math.ceil(lo * 2**f), math.floor(hi * 2**f)]
    edges = [round((-17 + 8 * i) * math.log(2) * 2**f) + d for i in range(9) for d in (-1, 0, 1)]
    inside = [c for c in edges if ends[0] <= c <= ends[1]]
    return np.array(ends + inside + list(rng.integers(ends[0], ends[1] + 1, 40)),
                    dtype=np.int64)


def too_wide(e):
    try:
        fn.reciprocal(e, _input(e, [1]), bits=90)
    except ValueError as exc:
        return str(exc)
    return "accepted"


def _spread(rng, count, top_bits):
    """Positive encodings whose bit lengths are uniform over 1..top_bits."""
    return (2.0 ** rng.uniform(0, top_bits, count)).astype(np.int64).clip(1, TOP)


def _inputs():
    rng = np.random.default_rng(17)
    pos = np.concatenate([[1, 2, 3, 2**16 - 1, 2**16, 2**16 + 1, 2**31, 2**32 - 1, 2**47,
                           2**48 + 5, 2**62, TOP], _spread(rng, 60, 63)])
    signed = np.concatenate([[0, -1, -(2**16), -TOP, -(2**40) - 3], pos,
                             -_spread(rng, 30, 63)])
    num = np.concatenate([[0, 0, 2**16, -(2**40), 2**40, 1, -1, 2**49, -(2**62), TOP],
                          rng.choice([-1, 1], 60) * _spread(rng, 60, 63)])
    den = np.concatenate([[7, 0, 3 * 2**16, 2**10, -(2**20), 2**40, -1, 2**50, 2**20, -TOP],
                          rng.choice([-1, 1], 60) * _spread(rng, 60, 63)])
    den[np.abs(num / np.where(den == 0, 1, den)) >= 2.0**45] = 2**40  # |a/b| < 2^(62 - f)
    small = np.concatenate([[1, -1, 2**23 - 1, -(2**23)], rng.integers(-(2**23), 2**23, 30)])
    small[small == 0] = 5
    powers = np.concatenate([[0, 1, -1, 2**16, -(2**16), -17 * 2**16, -18 * 2**16, -(2**62),
                              2**62, 46 * 2**16, 47 * 2**16, -12 * 2**16, 31 * 2**16,
                              32 * 2**16], rng.integers(-20 * 2**16, 48 * 2**16, 60)])
    return pos, signed, num, den, small, powers


@pytest.fixture(scope="module")
def results():
    """One run of 3 processes computes everything: spawning them costs more than the protocols."""
    return run_local(program, args=_inputs(), provider_factory=DEALER)[0]


def test_every_function_is_within_its_documented_error(results):
    got = results[0]
    pos, signed, num, den, small, powers = _inputs()
    x, s, z, p = pos * ULP, signed * ULP, small * ULP, powers * ULP
    with np.errstate(divide="ignore", invalid="ignore"):
        recip = np.where(s != 0, 1 / s, 0.0)
        quotient = np.where(den != 0, num / den, 0.0)
    e_lo = math.ceil(-17 * math.log(2) * 2**f) * ULP
    e_hi = (math.floor(47 * math.log(2) * 2**f) - 1) * ULP
    cases = {  # name: (expected, absolute bound in ulp, relative bound)
        "reciprocal": (recip, 2, 2.0**-37),
        "reciprocal32": (recip * 2.0**16, 2, 2.0**-34),  # in units of 2^-32
        "reciprocal_narrow": (1 / z, 2, 2.0**-37),
        "divide": (quotient, 1, 2.0**-36),
        "sqrt": (np.sqrt(x), 2, 2.0**-36),
        "rsqrt": (1 / np.sqrt(x), 2, 2.0**-36),
        "sqrt_signed": (np.sqrt(np.maximum(s, 0)), 2, 2.0**-36),
        "log2": (np.log2(x), 1 + 2.0**-34 / ULP, 0),
        "log": (np.log(x), 1 + 2.0**-33 / ULP, 0),
        "log10": (np.log10(x), 1 + 2.0**-33 / ULP, 0),
        "log2_signed": (np.log2(np.maximum(s, ULP)), 1 + 2.0**-34 / ULP, 0),
        "exp2": (np.exp2(np.clip(p, -17, 47 - ULP)), 1, 2.0**-35),
        "exp": (np.exp(np.clip(p, e_lo, e_hi)), 1, 2.0**-34),
        **{name: (np.exp(np.clip(_bounded(lo, hi) * ULP, e_lo, e_hi)), 1, 2.0**-34)
           for name, (lo, hi) in BOUNDED_EXP.items()},
    }
    # the same encodings read with f = 20 fractional bits
    u20 = 2.0**-20
    x20, s20, p20 = pos * u20, signed * u20, powers * u20
    with np.errstate(divide="ignore"):
        recip20 = np.where(s20 != 0, 1 / s20, 0.0)
    cases20 = {
        "reciprocal_f20": (recip20, 2, 2.0**-37),
        "sqrt_f20": (np.sqrt(x20), 2, 2.0**-36),
        "log2_f20": (np.log2(x20), 1 + 2.0**-34 / u20, 0),
        "exp2_f20": (np.exp2(np.clip(p20, -21, 43 - u20)), 1, 2.0**-35),
    }
    u36, x36 = 2.0**-36, pos * 2.0**-36
    cases36 = {  # the relative term loses drop + C/2 bits at large f (`_scale_back`)
        "sqrt_f36": (np.sqrt(x36), 2, 2.0**-23),
        "rsqrt_f36": (1 / np.sqrt(x36), 2, 2.0**-18),
    }
    for name, (want, absolute, relative), unit in (
            [(k, v, ULP) for k, v in cases.items()] + [(k, v, u20) for k, v in cases20.items()]
            + [(k, v, u36) for k, v in cases36.items()]):
        err = np.abs(got[name] * unit - want) / unit
        bound = absolute + relative * np.abs(want) / unit
        worst = int(np.argmax(err - bound))
        assert (err <= bound).all(), (f"{name}: error {err[worst]:.3g} ulp > bound "
                                      f"{np.broadcast_to(bound, err.shape)[worst]:.3g} at "
                                      f"input index {worst}")


def test_an_input_bound_beyond_the_masking_headroom_is_refused(results):
    assert "cannot be normalised" in results[1]


def test_inputs_narrower_than_one_block(results):
    got, t = results[0], np.arange(1, 8)
    assert np.abs(got["counts_reciprocal"] - 2.0**32 / t).max() <= 1  # 1/n for counts
    assert np.abs(got["counts_reciprocal_2"] - 2.0**2 / t).max() <= 2  # f + F below C
    assert np.abs(got["tiny_sqrt"] - np.sqrt(t * ULP) / ULP).max() <= 1
    assert np.abs(got["tiny_log2"] - np.log2(t * ULP) / ULP).max() <= 1
    assert np.abs(got["tiny_divide"] - t / t[::-1] / ULP).max() <= 1
