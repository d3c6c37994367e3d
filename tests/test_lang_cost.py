"""Cost estimates: the extrapolation rule, and a prediction checked against a real run."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from enigma.lang.cost import (
    DEALER,
    HE_BATCH,
    MARGIN,
    MIN_LIMIT,
    SECURE,
    Cost,
    estimate,
    extrapolate,
    measure,
    time_limit,
)
from enigma.lang.schema import Schema
from enigma.mpc.runner import run_local

SCHEMA = Schema.from_dict({
    "name": "toy", "rows": 160,
    "columns": [{"name": "a", "type": "int", "min": 0, "max": 100},
                {"name": "x", "type": "fixed", "min": -2.0, "max": 2.0},
                {"name": "g", "type": "category", "levels": ["p", "q", "r"]}]})
SCRIPT = """
big = data.a > 50
reveal(mean(data.x, where=big), "m")
reveal(sum(data.x * data.x), "s")
reveal(histogram(data.g), "h")
"""


@given(st.integers(0, 10**6), st.integers(0, 10**4), st.integers(1, 200), st.integers(0, 30),
       st.sampled_from([(16, 32), (32, 128), (64, 256)]), st.integers(1, 10**6))
def test_extrapolation_reproduces_linear_volume_and_logarithmic_rounds(
        fixed, per_row, base, per_level, sizes, target) -> None:
    def cost(n: int) -> Cost:
        volume = fixed + per_row * n
        return Cost(n, base + round(per_level * math.log2(n)), volume, volume, volume, volume)

    got = extrapolate(cost(sizes[0]), cost(sizes[1]), target)
    want = cost(target)
    assert (got.triples, got.masks, got.opened, got.bytes_per_party) == \
        (want.triples, want.masks, want.opened, want.bytes_per_party)
    assert abs(got.rounds - want.rounds) <= 1  # both sides round a + b log2 n


@given(st.integers(0, 10**8), st.integers(0, 10**8), st.integers(0, 10**4),
       st.integers(0, 10**10))
def test_time_limit_is_the_expected_time_times_the_margin(triples, masks, rounds, size) -> None:
    """The limit grows with every counter, never falls below MIN_LIMIT, and the secure path
    (HE preprocessing) is given more than the dealer for the same work."""
    cost = Cost(1000, rounds, triples, masks, 0, size)
    secure, dealer = time_limit(cost), time_limit(cost, secure=False)
    assert secure == max(MIN_LIMIT, MARGIN * SECURE.seconds(cost))
    assert dealer == max(MIN_LIMIT, MARGIN * DEALER.seconds(cost))
    assert secure >= dealer >= MIN_LIMIT
    more = Cost(1000, rounds + 1, triples + HE_BATCH, masks, 0, size)  # a batch more
    assert time_limit(more) >= secure + (MARGIN if secure > MIN_LIMIT else 0.0)
    # the HE preprocessing makes whole batches: one triple or mask costs as much as a batch
    one, full = (Cost(1000, rounds, t, masks, 0, size) for t in (1, HE_BATCH))
    assert SECURE.seconds(one) == SECURE.seconds(full) > DEALER.seconds(one)


def test_the_he_batch_is_the_preprocessings() -> None:
    from enigma.prep.he.params import POLY_DEGREE

    assert HE_BATCH == POLY_DEGREE


def test_estimate_in_threads_predicts_a_run_in_processes_eight_times_larger() -> None:
    """The estimate's quorum is 3 threads; what it counts is what 3 processes over the
    authenticated mesh count, at the same rows exactly and at 8x the rows within 10%."""
    predicted = estimate(SCRIPT, SCHEMA, 160, sizes=(20, 40)).cost
    actual = measure(SCRIPT, SCHEMA, 160, quorum=run_local)
    assert measure(SCRIPT, SCHEMA, 160) == actual
    assert abs(predicted.rounds - actual.rounds) <= 2
    for name in ("triples", "masks", "opened", "bytes_per_party"):
        want, got = getattr(actual, name), getattr(predicted, name)
        assert abs(got - want) <= 0.1 * want, (name, got, want)


def test_the_estimate_on_synthetic_rows_prints_no_dealer_banner(capfd) -> None:
    """The estimate measures on made-up rows through the test dealer; a user running a
    secure job must not be told that its data went through the dealer."""
    estimate(SCRIPT, SCHEMA, 160, sizes=(20, 40))
    assert "INSECURE" not in capfd.readouterr().err
