"""Comparisons, selection and tree reductions between 3 real processes, against numpy.

One run of 3 processes computes everything (spawning them costs more than the
protocols); each test checks its part of the results.
"""

import numpy as np
import pytest

from enigma.field import Field
from enigma.mpc import select as S
from enigma.mpc.runner import run_local
from enigma.prep.dealer import DealerFactory

F = Field()
DEALER = DealerFactory(b"select-test-seed-0123456789abcdef", insecure=True)
WIDTHS = (64, 20)
SIZES = (2, 5, 64)


def _input(e, owner, values):
    values = np.asarray(values, dtype=np.int64)
    return e.input(owner, F.from_int64(values) if e.party == owner else None, values.shape)


def _reveal(e, secrets: dict):
    return {name: F.to_int64(e.reveal(s)) for name, s in secrets.items()}


def pairwise(e, a, b, bits):
    x, y = _input(e, 0, a), _input(e, 1, b)
    c = S.lt(e, x, y, bits)
    lo, hi = S.min_max(e, x, y, bits)
    return _reveal(e, dict(
        lt=c, le=S.le(e, x, y, bits), gt=S.gt(e, x, y, bits), ge=S.ge(e, x, y, bits),
        eq=S.eq(e, x, y, bits), ne=S.ne(e, x, y, bits),
        lt_public=S.lt(e, x, 5, bits), gt_public_left=S.gt(e, -5, y, bits),
        select=S.select(e, c, x, y), select_public=S.select(e, c, 10, -20),
        select_mixed=S.select(e, c, x, 7), minimum=S.minimum(e, x, y, bits),
        select_arrays=S.select(e, c, F.from_int64(np.arange(a.size)),
                               F.from_int64(-np.arange(a.size))),
        maximum=S.maximum(e, x, y, bits), lo=lo, hi=hi,
        clip=S.clip(e, x, -100, 100, bits)))


def reductions(e, m):
    x = _input(e, 0, m)
    return _reveal(e, dict(
        max=S.max(e, x), min=S.min(e, x, axis=0), argmax=S.argmax(e, x),
        argmin=S.argmin(e, x, axis=0), argmax_hot=S.argmax(e, x, axis=1, one_hot=True),
        argmin_hot=S.argmin(e, x, axis=0, one_hot=True), flat_max=S.max(e, x.reshape(x.size)),
        single=S.argmax(e, x[:, :1], one_hot=True)))


def rounds_of_max(e, n):
    x = _input(e, 0, np.arange(n))
    before = e.stats.rounds
    S.max(e, x)
    return e.stats.rounds - before


def public_only(e):
    try:
        S.lt(e, 1, 2)
    except TypeError as exc:
        return str(exc)
    return "no error"


def program(e, pairs, m):
    return dict(pairwise=[pairwise(e, a, b, bits) for a, b, bits in pairs],
                reductions=reductions(e, m), rounds=[rounds_of_max(e, n) for n in SIZES],
                public_only=public_only(e))


def _pairs():
    out = []
    for bits in WIDTHS:
        half = 1 << (bits - 2)  # |a - b| < 2^(bits - 1)
        rng = np.random.default_rng(bits)
        edges_a = [0, 0, 1, -1, 5, -5, half - 1, -half, half - 1, 7, 100, -100, 101, -101]
        edges_b = [0, 1, 0, -1, 5, -5, -half, half - 1, half - 1, 7, 100, -100, -101, 101]
        a = np.concatenate([edges_a, rng.integers(-half, half, 60), rng.integers(-9, 9, 30)])
        b = np.concatenate([edges_b, rng.integers(-half, half, 60), rng.integers(-9, 9, 30)])
        out.append((a, b, bits))
    return out


def _matrix():
    rng = np.random.default_rng(5)
    m = rng.integers(-1000, 1000, (6, 11))
    m[0] = 3  # all equal: the first index wins
    m[1, [2, 9]] = m[1].max() + 1  # a tie for the maximum
    m[2, [0, 10]] = m[2].min() - 1  # a tie for the minimum at both ends
    m[3, 4] = -(1 << 61)
    m[4, 7] = (1 << 61) - 1
    return m


@pytest.fixture(scope="module")
def results():
    return run_local(program, args=(_pairs(), _matrix()), provider_factory=DEALER)[2]


def test_pairwise_comparisons_select_and_clip_match_numpy(results):
    for (a, b, bits), got in zip(_pairs(), results["pairwise"], strict=True):
        want = dict(lt=a < b, le=a <= b, gt=a > b, ge=a >= b, eq=a == b, ne=a != b,
                    lt_public=a < 5, gt_public_left=b < -5, select=np.where(a < b, a, b),
                    select_public=np.where(a < b, 10, -20), select_mixed=np.where(a < b, a, 7),
                    select_arrays=np.where(a < b, np.arange(a.size), -np.arange(a.size)),
                    minimum=np.minimum(a, b), maximum=np.maximum(a, b), lo=np.minimum(a, b),
                    hi=np.maximum(a, b), clip=np.clip(a, -100, 100))
        for name, expected in want.items():
            assert got[name].tolist() == expected.astype(np.int64).tolist(), (name, bits)


def test_tree_reductions_match_numpy_including_ties_and_odd_lengths(results):
    m, got = _matrix(), results["reductions"]
    assert got["max"].tolist() == m.max(axis=1).tolist()
    assert got["min"].tolist() == m.min(axis=0).tolist()
    assert got["argmax"].tolist() == m.argmax(axis=1).tolist()
    assert got["argmin"].tolist() == m.argmin(axis=0).tolist()
    assert got["argmax_hot"].tolist() == np.eye(11, dtype=int)[m.argmax(axis=1)].tolist()
    assert got["argmin_hot"].tolist() == np.eye(6, dtype=int)[m.argmin(axis=0)].tolist()
    assert int(got["flat_max"]) == m.max()
    assert got["single"].tolist() == [[1]] * 6


def test_a_reduction_takes_log_n_levels_of_seven_rounds(results):
    """Per level: the masked opening, the digit tree of a 64-bit comparison in 2-bit digits
    (32 digits, 5 levels: the digit size with the fewest products) and the selection."""
    assert results["rounds"] == [7 * int(np.ceil(np.log2(n))) for n in SIZES]


def test_comparing_two_public_values_is_refused(results):
    assert "at least one Secret" in results["public_only"]
