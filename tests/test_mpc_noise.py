"""Jointly drawn discrete Laplace noise between 3 real processes: its law, each party's view,
tampering, and the stated distance (exactly, from the public plan).

One run of 3 processes draws the 20,000 samples that the law and the view tests share
(spawning processes costs more than the protocol). The dealer is seeded, so the samples,
and with them the chi-square statistics, are the same on every run.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from enigma.field import Field
from enigma.mpc.comparison import less_than_public
from enigma.mpc.noise import PRECISION, Noise, discrete_laplace, plan
from enigma.mpc.runner import PartyFailed, run_local
from enigma.prep.dealer import DealerFactory

F = Field()
DEALER = DealerFactory(b"noise-test-seed-0123456789abcdef", insecure=True)
SAMPLES = 20_000
SCALE = 1.5
TEST_PRECISION = 16
"""Thresholds of 16 bits keep the 20,000-sample run to seconds; a sample's stated distance
(below 2^-12) is far under what 20,000 samples can see, and the exact-law test covers it."""


# ---------------------------------------------------------------------- programs (per party)


def draw(e, n: int, scale: float, precision: int):
    """The opened samples (test only), this party's share words, the stated distance."""
    noise = discrete_laplace(e, n, scale, precision=precision)
    assert isinstance(noise, Noise) and noise.value.shape == (n,)
    share = noise.value.share.value.copy()
    return F.to_int64(e.reveal(noise.value)), share, noise.tv_distance


def supports(e, scales: tuple[float, ...]):
    """Samples of several scales, the refusals' messages, the rounds of a draw for two sizes,
    and the bitwise comparison with public bounds that the draw is made of."""
    out = {s: F.to_int64(e.reveal(discrete_laplace(e, 200, s).value)) for s in scales}
    rounds = []
    for n in (10, 40):  # both below the king threshold: one round per opening
        e.check()
        before = e.stats.rounds
        discrete_laplace(e, n, 3.0)
        rounds.append(e.stats.rounds - before)
    bits, bounds = compare_case()
    shared = e.input(0, F.from_int64(bits) if e.party == 0 else None, bits.shape)
    less = F.to_int64(e.reveal(less_than_public(e, shared, bounds)))
    errors = []
    for bad in (0.0, -1.0, math.nan, math.inf, 1e30):
        try:
            discrete_laplace(e, 4, bad)
        except ValueError as exc:
            errors.append(str(exc))
    return out, errors, rounds, less


def compare_case():
    """Bits (least significant first) of 0 .. 2^7 - 1 against every bound around them (an
    odd width: the top base-4 digit has one bit)."""
    r = np.repeat(np.arange(128), 5)
    c = np.clip(r + np.tile([-2, -1, 0, 1, 2], 128), 0, 127)
    return ((r[:, None] >> np.arange(7)) & 1), c


def tamper(e, where: str):
    """Party 1 alters one share; the noised output must never reach the owner."""
    noise = discrete_laplace(e, 50, 2.0, precision=12)
    if e.party == 1 and where in ("noise-value", "noise-mac"):
        target = noise.value.share.value if where == "noise-value" else noise.value.share.mac
        target[7, 0] ^= np.uint64(1)
    return e.output(noise.value, 0)


class BitTamperingDealer:
    """The test dealer, except that party 1 adds one to its share of one random bit: what a
    member that lies about its preprocessed bits would do."""

    def __init__(self, inner: DealerFactory) -> None:
        self.inner = inner

    def __call__(self, field, party, parties):
        provider = self.inner(field, party, parties)
        if party == 1:
            draw_bits = provider.random_bits

            def random_bits(n: int):
                share = draw_bits(n)
                one = field.from_int64(np.array([1], dtype=np.int64))
                share.value[n // 2:n // 2 + 1] = field.add(share.value[n // 2:n // 2 + 1], one)
                return share

            provider.random_bits = random_bits
        return provider


# ---------------------------------------------------------------------- helpers


def laplace_pmf(z: np.ndarray, scale: float) -> np.ndarray:
    q = math.exp(-1.0 / scale)
    return (1 - q) / (1 + q) * q ** np.abs(z)


def chi_square_p(samples: np.ndarray, scale: float) -> float:
    """Goodness of fit to the discrete Laplace of `scale`, tails pooled where expected < 5."""
    n = samples.size
    K = 0
    while n * laplace_pmf(np.array([K + 1]), scale)[0] >= 5:
        K += 1
    inner = np.arange(-K, K + 1)
    observed = np.concatenate([[np.sum(samples < -K)],
                               np.bincount(samples[np.abs(samples) <= K] + K, minlength=2 * K + 1),
                               [np.sum(samples > K)]])
    p_inner = laplace_pmf(inner, scale)
    tail = (1 - p_inner.sum()) / 2
    expected = n * np.concatenate([[tail], p_inner, [tail]])
    return float(stats.chisquare(observed, expected).pvalue)


def exact_tv(scale: float, precision: int) -> tuple[float, int]:
    """The exact total-variation distance of the drawn law (from the plan's thresholds) to the
    ideal discrete Laplace, and the drawn law's largest |z|."""
    pl = plan(scale, precision)
    m = pl.digits
    g = np.ones(1)
    for j, t in enumerate(pl.thresholds):  # the law of G': independent digits, j < m
        p = t / 2 ** precision
        shifted = np.zeros(2 ** (j + 1))
        shifted[:g.size] += g * (1 - p)
        shifted[1 << j:(1 << j) + g.size] += g * p
        g = shifted
    g = np.pad(g, (0, (1 << m) - g.size))
    z_law = np.convolve(g, g[::-1])  # Z' = G1' - G2', z from -(2^m - 1) to 2^m - 1
    z = np.arange(-(1 << m) + 1, 1 << m)
    ideal = laplace_pmf(z, scale)
    outside = 2 * math.exp(-1.0 / scale) ** (1 << m) / (1 + math.exp(-1.0 / scale))
    support = int(np.abs(z[z_law > 0]).max()) if z_law.size else 0
    return 0.5 * (np.abs(z_law - ideal).sum() + outside), support


# ---------------------------------------------------------------------- the shared run


@pytest.fixture(scope="module")
def drawn():
    results = run_local(draw, args=(SAMPLES, SCALE, TEST_PRECISION), provider_factory=DEALER)
    values = results[0][0]
    for other, _, tv in results[1:]:
        assert np.array_equal(other, values) and tv == results[0][2]
    shares = [share for _, share, _ in results]
    return values, shares, results[0][2]


def test_the_samples_follow_the_discrete_laplace_law(drawn):
    values, _, tv = drawn
    # the stated distance is for the 20,000 samples together: 20,000 times one sample's
    assert plan(SCALE, TEST_PRECISION).tv_distance < 2 ** -12
    assert tv == min(1.0, math.nextafter(SAMPLES * plan(SCALE, TEST_PRECISION).tv_distance,
                                         math.inf))
    assert chi_square_p(values, SCALE) > 1e-3
    # moments, as a second and independent look: Var = 2q / (1 - q)^2
    q = math.exp(-1 / SCALE)
    assert abs(values.mean()) < 4 * math.sqrt(2 * q / (1 - q) ** 2 / SAMPLES)
    assert values.var() == pytest.approx(2 * q / (1 - q) ** 2, rel=0.05)


@pytest.mark.parametrize("wrong", [SCALE * 1.15, SCALE / 1.15])
def test_the_fit_rejects_a_wrong_scale(drawn, wrong):
    values, _, _ = drawn
    assert chi_square_p(values, wrong) < 1e-3


def test_a_party_share_says_nothing_about_the_noise(drawn):
    values, shares, _ = drawn
    for share in shares:
        # both 64-bit words of a share as numbers in [0, 1) (p = 2^127 - 1: the top word is
        # below 2^63): uniform, and uncorrelated with the noise and with its magnitude
        for word, top in ((share[:, 0], 2.0 ** 64), (share[:, 1], 2.0 ** 63)):
            u = word.astype(np.float64) / top
            assert abs(np.corrcoef(u, values)[0, 1]) < 0.04
            assert abs(np.corrcoef(u, np.abs(values))[0, 1]) < 0.04
            assert stats.kstest(u, "uniform").pvalue > 1e-3
        assert not np.any(np.all(share == F.from_int64(values), axis=1))
    # the shares do add up to the noise (so the view test looks at the real thing)
    total = F.add(F.add(shares[0], shares[1]), shares[2])
    assert np.array_equal(F.to_int64(total), values)


def test_every_sample_lies_in_the_stated_support_and_bad_scales_are_refused():
    scales = (0.01, 0.7, 3.0, 1000.0)
    out, errors, rounds, less = run_local(supports, args=(scales,), provider_factory=DEALER)[0]
    bits, bounds = compare_case()
    assert less.tolist() == ((bits << np.arange(7)).sum(axis=1) < bounds).astype(int).tolist()
    # the stated cost: 1 + ceil(log2(k / 2)) rounds for the whole batch, whatever its size
    assert rounds[0] == rounds[1] == 1 + math.ceil(math.log2(PRECISION / 2))
    for s in scales:
        assert np.all(np.abs(out[s]) < plan(s).bound)
    assert np.all(out[0.01] == 0)  # q = e^-100: every digit's threshold rounds to 0
    assert np.abs(out[1000.0]).max() > 1000  # a wide scale does spread
    assert len(errors) == 5
    assert all("scale" in msg for msg in errors)
    assert "beyond the engine's signed 64-bit values" in errors[-1]


@pytest.mark.parametrize("where", ["bit", "noise-value", "noise-mac"])
def test_a_member_that_alters_a_bit_or_its_noise_share_is_caught(where):
    factory = BitTamperingDealer(DEALER) if where == "bit" else DEALER
    with pytest.raises(PartyFailed) as info:
        run_local(tamper, args=(where,), provider_factory=factory)
    assert set(info.value.errors) == {0, 1, 2}
    assert info.value.kinds() == {"MacCheckError"}


def test_an_honest_run_of_the_tamper_program_succeeds():
    """The tamper test's program itself works when no one lies (so its failure is the lie)."""
    out = run_local(tamper, args=("none",), provider_factory=DEALER)
    assert out[0] is not None and out[1] is None and out[2] is None
    assert np.all(np.abs(F.to_int64(out[0])) < plan(2.0, 12).bound)


@given(scale=st.floats(min_value=0.02, max_value=24.0), precision=st.integers(6, 30))
def test_the_stated_distance_bounds_the_exact_one(scale, precision):
    pl = plan(scale, precision)
    tv, support = exact_tv(scale, precision)
    assert tv <= pl.tv_distance + 1e-14  # exact_tv sums in floats: 1 - P(0) loses ~1e-16
    assert support < pl.bound
    # the bound is what the docstring says: rounding plus truncation, nothing more
    assert pl.tv_distance <= 2 * (pl.digits * 2.0 ** -(precision + 1) + 2.0 ** -60) * (1 + 1e-9)
    assert math.exp(-1 / scale) ** (2 ** pl.digits) < 2.0 ** -60
    assert pl.digits == 0 or math.exp(-1 / scale) ** (2 ** (pl.digits - 1)) >= 2.0 ** -60 * 0.999


@given(scale=st.floats(min_value=1e-3, max_value=2.0 ** 55))
def test_the_default_precision_keeps_the_distance_below_2_to_minus_42(scale):
    pl = plan(scale)
    assert pl.precision == PRECISION
    assert pl.tv_distance < 2.0 ** -42
    assert all(0 <= t <= 1 << (PRECISION - 1) for t in pl.thresholds)
