"""The HE provider between 3 real processes: what it hands out is opened and checked.

One run produces everything (keys, a triple batch, a bit batch, masks) and an
online computation on top, because each batch is 16384 slots of real BFV
work; the tests then check the opened values against numpy and Python ints.
"""

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enigma.field import Field
from enigma.mpc import comparison as cmp
from enigma.mpc.runner import PartyFailed, run_local
from enigma.prep import bounded
from enigma.prep.commands import HEProviderFactory
from enigma.prep.provider import is_probable_prime, mac_key_share

pytestmark = pytest.mark.slow  # real processes and real BFV batches

F = Field()
XS = np.array([0, 1, -1, 2, -2, 255, 256, -256, 524287, -524288, 1000, -77], dtype=np.int64)
YS = np.array([3, -5, 7, 0, 2**20, -(2**20), 9, 11, -13, 17, 1, 1], dtype=np.int64)


def _open(e, share):
    (value,) = e.open(e.secret(share))
    return value


def everything(e, xs: np.ndarray, ys: np.ndarray) -> dict:
    """Open what the provider makes, then compute with it; MAC-check every opening."""
    p = e.provider
    setup, started = p.seconds, time.perf_counter()
    t = p.triples(1000)
    out = {"a": _open(e, t.a), "b": _open(e, t.b), "c": _open(e, t.c)}
    out["bits"] = _open(e, p.random_bits(500))
    masks = p.input_masks(1, 40)
    out["mask"], out["mask_clear"] = _open(e, masks.r), masks.clear
    d = p.digit_masks(6, 7, 20, 2)
    out["therm"], out["dlow"], out["dhigh"] = _open(e, d.thermometer), _open(e, d.low), \
        _open(e, d.high)
    d4 = p.digit_masks(3, 9, 20, 4)
    out["therm4"], out["dlow4"] = _open(e, d4.thermometer), _open(e, d4.low)
    tm = p.trunc_masks(6, 5, 20)
    out["tlow"], out["thigh"] = _open(e, tm.low), _open(e, tm.high)
    e.check()
    x = e.input(0, F.from_int64(xs) if e.party == 0 else None, xs.size)
    y = e.input(2, F.from_int64(ys) if e.party == 2 else None, ys.size)
    out["prod"] = e.output(x * y, 0)
    out["ltz"] = e.output(cmp.ltz(e, x, bits=21), 0)
    out["eqz"] = e.output(cmp.eqz(e, x, bits=21), 0)
    out["produced"] = dict(p.produced)
    out["seconds"] = (setup, p.seconds, time.perf_counter() - started)
    out["empty"] = [p.triples(0).c.mac.shape, p.random_bits(0).value.shape,
                    p.input_masks(2, 0).r.value.shape]
    return out


@pytest.fixture(scope="module")
def runs():
    return run_local(everything, args=(XS, YS), provider_factory=HEProviderFactory(),
                     timeout=240, deadline=400, engine_kwargs={"digit_bits": 2})


def test_triples_satisfy_c_equals_ab_and_their_macs_check(runs):
    r = runs[0]
    a, b, c = (F.to_ints(r[k]) for k in "abc")
    assert all(int(ci) == int(ai) * int(bi) % F.p for ai, bi, ci in zip(a, b, c, strict=True))
    assert len(set(a.tolist())) == 1000  # uniform field elements do not repeat
    assert all(np.array_equal(runs[0][k], other[k]) for other in runs[1:] for k in "abc")


def test_random_bits_are_bits_and_both_values_occur(runs):
    bits = F.to_int64(runs[0]["bits"])
    assert set(bits.tolist()) == {0, 1}
    assert 150 < int(bits.sum()) < 350  # 500 fair bits: 250 +- 4.5 sigma


def test_input_mask_is_known_to_its_owner_only(runs):
    assert runs[0]["mask_clear"] is None and runs[2]["mask_clear"] is None
    assert np.array_equal(runs[1]["mask"], runs[1]["mask_clear"])


def test_digit_masks_are_thermometer_codes_of_the_low_bits(runs):
    r = runs[0]
    therm = F.to_int64(r["therm"])  # (6, 4 digits, 3 levels)
    low = F.to_int64(r["dlow"])
    assert therm.shape == (6, 4, 3)
    assert np.all(np.diff(therm, axis=-1) <= 0) and set(np.unique(therm)) <= {0, 1}
    digits = therm.sum(axis=-1)
    assert np.array_equal((digits * (4 ** np.arange(4))).sum(axis=1), low)
    assert np.all(low < 2**7) and np.all(digits[:, 3] <= 1)  # 7 bits: the top digit has one
    # r_high is contributed (prep.bounded): bounded, and spread over more than 2^L values
    high = F.to_ints(r["dhigh"])
    assert all(0 < int(h) < bounded.contribution_bound(20 + 40 - 7, 3) for h in high)
    assert len(set(high.tolist())) == 6


def test_four_bit_digits_are_thermometer_codes_too(runs):
    therm, low = F.to_int64(runs[0]["therm4"]), F.to_int64(runs[0]["dlow4"])
    assert therm.shape == (3, 3, 15)  # 9 bits: digits of 4, 4 and 1 bits
    assert np.all(np.diff(therm, axis=-1) <= 0) and set(np.unique(therm)) <= {0, 1}
    digits = therm.sum(axis=-1)
    assert np.array_equal((digits * (16 ** np.arange(3))).sum(axis=1), low)
    assert np.all(digits[:, 2] <= 1)


def test_trunc_masks_lie_in_their_ranges(runs):
    low, high = F.to_int64(runs[0]["tlow"]), F.to_ints(runs[0]["thigh"])
    assert np.all((low >= 0) & (low < 32))
    assert all(0 < int(h) < bounded.contribution_bound(20 + 40 - 5, 3) for h in high)


def test_the_engine_computes_correctly_with_this_provider(runs):
    r = runs[0]
    assert F.to_int64(r["prod"]).tolist() == (XS * YS).tolist()
    assert F.to_int64(r["ltz"]).tolist() == (XS < 0).astype(int).tolist()
    assert F.to_int64(r["eqz"]).tolist() == (XS == 0).astype(int).tolist()
    assert r["produced"]["triples"] % 16384 == 0 and r["produced"]["bits"] >= 16384


def test_offline_seconds_count_the_set_up_and_each_production_once(runs):
    for r in runs:
        setup, offline, wall = r["seconds"]
        assert 0 < setup < offline <= setup + wall


def test_empty_requests_are_served_without_production(runs):
    assert runs[1]["empty"] == [(0, 2)] * 3


@given(st.integers(0, 5000))
def test_primality_matches_trial_division(n):
    assert is_probable_prime(n) == (n > 1 and all(n % d for d in range(2, int(n**0.5) + 1)))


def test_carmichael_numbers_and_products_of_large_primes_are_composite():
    assert not any(is_probable_prime(n) for n in (561, 41041, 825265, 321197185))
    assert not is_probable_prime((2**61 - 1) * (2**65 + 1))
    assert is_probable_prime(F.p) and is_probable_prime(2**89 - 1)


def ask_for_bits(e):
    return e.provider.random_bits(4)


def test_bits_are_refused_in_a_ring_with_zero_divisors():
    composite = (2**61 - 1) * (2**65 + 1)  # 3 mod 4, so only primality can refuse it
    with pytest.raises(PartyFailed) as info:
        run_local(ask_for_bits, parties=2, provider_factory=HEProviderFactory(),
                  modulus=composite, timeout=120, deadline=300)
    assert info.value.kinds() == {"PreprocessingError"}
    assert "composite" in str(info.value)


def test_mac_key_shares_lie_below_2_64_and_vary():
    shares = np.concatenate([mac_key_share(F) for _ in range(64)])
    assert not shares[:, 1].any() and len({int(w) for w in shares[:, 0]}) == 64
    assert int(shares[:, 0].max()) >= 1 << 60  # uniform on 64 bits, not fewer
    small = Field(2**61 - 1)
    assert all(small.to_ints(mac_key_share(small))[0] < small.p for _ in range(8))
