"""`comparison.at_least_many`: one secret against many public thresholds in one masked opening.

Equal to plaintext at the edges (x on a threshold, x - t at the limits of the bit bound,
thresholds outside x's range, negative, zero, repeated), against numpy on random data
(hypothesis), with one mask per element whatever the number of thresholds, in chunks of a
memory budget, and with a lying member caught. The parties run in threads on the composer
path of `test_prep_bounded` (contributed masks below 26 bits, bits above)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enigma.field import Field
from enigma.lang.simulation import thread_quorum
from enigma.mpc import comparison as cmp
from enigma.prep import bounded
from enigma.prep.dealer import DealerFactory
from enigma.sharing import AuthShare, MacCheckError

from .test_prep_bounded import run

F = Field()
DEALER = DealerFactory(b"test_mpc_thresholds dealer seed", insecure=True)


def bits_for(xs, ts) -> int:
    """The smallest k with -2^(k-1) <= x - t < 2^(k-1) for every pair (at least 2)."""
    d = np.subtract.outer(np.asarray(xs, dtype=object), np.asarray(ts, dtype=object))
    lo, hi = int(d.min()), int(d.max())
    return max(2, (-lo - 1).bit_length() + 1, hi.bit_length() + 1)


def plain(xs, ts) -> list[list[int]]:
    return [[int(x >= t) for t in ts] for x in xs]


def many(e, x, ts, k, tamper=None):
    if tamper and e.party == 1:  # a lying member: its share of x (or its MAC) in the opening
        value, mac = x.share.value.copy(), x.share.mac.copy()
        part = value if tamper == "value" else mac
        part[0] = F.add(part[0], F.const(1))
        x = type(x)(e, AuthShare(value, mac))
    return {"ge": cmp.at_least_many(e, x, ts, k)}


@pytest.mark.parametrize(("lo", "hi"), [(0, 100), (-128, 127), (-(2**40), 2**40), (7, 7)])
def test_edges_of_the_range_and_thresholds_outside_it(lo: int, hi: int) -> None:
    xs = [lo, hi, 0 if lo <= 0 <= hi else lo, (lo + hi) // 2, min(lo + 1, hi), max(hi - 1, lo)]
    ts = [lo, hi, lo - 1, hi + 1, 0, -1, -5, lo, hi, (lo + hi) // 2, lo - 1000, hi + 1000]
    k = bits_for(xs, ts)
    out = run(lambda e, x: many(e, x, ts, k), np.array(xs, dtype=np.int64))
    assert out["ge"].tolist() == plain(xs, ts)


@pytest.mark.parametrize("k", [2, 10, 25, 26, 63, 64])
def test_differences_at_the_limits_of_the_bit_bound(k: int) -> None:
    """x - t = -2^(k-1) and 2^(k-1) - 1 exactly, from the x side and from the t side."""
    half = 1 << (k - 1)
    xs = [-half, half - 1, 0, -1, 1, -half + 1, half - 2]
    out = run(lambda e, x: many(e, x, [0], k), np.array(xs, dtype=np.int64))
    assert out["ge"].tolist() == plain(xs, [0])
    ts = [half, -(half - 1), 0, 1, -1, half - 1, half]
    out = run(lambda e, x: many(e, x, ts, k), np.array([0], dtype=np.int64))
    assert out["ge"].tolist() == plain([0], ts)


def test_a_one_bit_sign_is_compared_as_a_two_bit_one() -> None:
    """ltz and at_least_many of inputs that fit 1 bit (-1 and 0): r_low then needs a digit."""
    xs = [-1, 0, 0, -1]
    out = run(lambda e, x: {"neg": cmp.ltz(e, x, 1), "ge": cmp.at_least_many(e, x, [0], 1)},
              np.array(xs, dtype=np.int64))
    assert out["neg"].tolist() == [1, 0, 0, 1]
    assert out["ge"].tolist() == plain(xs, [0])


@settings(max_examples=12, deadline=None, derandomize=True)
@given(xs=st.lists(st.integers(-(2**30), 2**30), min_size=1, max_size=12),
       ts=st.lists(st.integers(-(2**31), 2**31), min_size=1, max_size=8),
       spread=st.sampled_from([0, 8, 40, 60]))
def test_equal_to_numpy_on_random_data(xs: list[int], ts: list[int], spread: int) -> None:
    """Random values shifted by up to 2^spread (values and thresholds of 11 to 64 bits)."""
    xs = [x << spread >> 10 for x in xs]
    ts = [t << spread >> 10 for t in ts]
    k = bits_for(xs, ts)
    got = thread_quorum(lambda e: e.output(cmp.at_least_many(
        e, e.input(0, F.from_ints(xs) if e.party == 0 else None, len(xs)), ts, k), 0),
        provider_factory=DEALER)[0]
    want = np.greater_equal.outer(np.array(xs, dtype=object), np.array(ts, dtype=object))
    assert F.to_int64(got).tolist() == want.astype(int).tolist()


@pytest.mark.parametrize("k", [8, 40])
def test_one_mask_per_element_whatever_the_thresholds(k: int) -> None:
    """L thresholds take the bits of one `ltz` per element (not L) and L digit trees."""
    n, ts = 32, [-3, 0, 5, 17, 60, 61, 100]
    xs = np.arange(n, dtype=np.int64) * 3 - 10
    single = run(lambda e, x: {"lt": cmp.ltz(e, x, k)}, xs)["taken"]
    both = run(lambda e, x: many(e, x, ts, k), xs)
    assert both["ge"].tolist() == plain(xs.tolist(), ts)
    triples, bits, contributed = both["taken"]
    assert bits == single[1] and contributed == single[2]
    separate = run(lambda e, x: {"lt": cmp.ltz(e, x.reshape(n, 1).broadcast_to(n, len(ts))
                                                - F.from_ints([ts] * n), k)}, xs)["taken"]
    assert separate[1] == len(ts) * bits
    assert triples < separate[0]


def test_in_chunks_of_a_memory_budget_the_same_answer() -> None:
    xs = list(range(-40, 40, 3))
    ts = [-50, -7, 0, 0, 13, 39, 80]
    k = bits_for(xs, ts)

    def prog(e):
        x = e.input(0, F.from_ints(xs) if e.party == 0 else None, len(xs))
        out = e.output(cmp.at_least_many(e, x, ts, k), 0)
        return out, e.stats.rounds

    (whole, r1), = thread_quorum(prog, provider_factory=DEALER)[:1]
    (chunked, r2), = thread_quorum(prog, provider_factory=DEALER,
                                   engine_kwargs={"memory_budget": 60_000})[:1]
    assert r2 > r1  # it did run in chunks
    for got in (whole, chunked):
        assert F.to_int64(got).tolist() == plain(xs, ts)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="no thresholds"):
        thread_quorum(lambda e: cmp.at_least_many(e, e.input(0, F.zeros(2) if e.party == 0
                                                             else None, 2), [], 8),
                      provider_factory=DEALER)
    with pytest.raises(ValueError, match="cannot be masked"):
        thread_quorum(lambda e: cmp.at_least_many(e, e.input(0, F.zeros(2) if e.party == 0
                                                             else None, 2), [0], 200),
                      provider_factory=DEALER)


@pytest.mark.parametrize("part", ["value", "mac"])
def test_a_wrong_share_in_the_opening_is_caught(part: str) -> None:
    xs = np.array([0, 5, -5, 99], dtype=np.int64)
    with pytest.raises(MacCheckError):
        run(lambda e, x: many(e, x, [0, 5, 6], 10, tamper=part), xs)


@pytest.mark.parametrize("k", [10, 64])
def test_a_wrong_mac_on_a_mask_bit_is_caught(k: int) -> None:
    xs = np.array([0, 1, -1, 7], dtype=np.int64)
    with pytest.raises(MacCheckError):
        run(lambda e, x: many(e, x, [-1, 0, 1], k), xs, tamper=(1, "bit-mac"))


def test_a_contribution_out_of_range_is_caught_by_the_range_proof() -> None:
    xs = np.array([0, 1, -1, 7], dtype=np.int64)
    assert bounded.fits(F, 9, 10, 3)
    with pytest.raises(bounded.RangeProofError, match="party 1's contribution"):
        run(lambda e, x: many(e, x, [-1, 0, 1], 10), xs, tamper=(1, "contribution"))
