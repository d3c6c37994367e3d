"""Batcher's network (in the clear, any length) and oblivious sorting between 3 processes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enigma.field import Field
from enigma.mpc import sorting
from enigma.mpc.runner import run_local
from enigma.prep.dealer import DealerFactory

F = Field()
DEALER = DealerFactory(b"sorting-test-seed-0123456789abcde", insecure=True)


def _apply(values: np.ndarray) -> np.ndarray:
    out = values.copy()
    for low, high in sorting.network(len(values)):
        a, b = out[low], out[high]
        out[low], out[high] = np.minimum(a, b), np.maximum(a, b)
    return out


@given(st.lists(st.integers(min_value=-5, max_value=5), max_size=70))
def test_the_network_sorts_any_length(values):
    arr = np.array(values, dtype=np.int64)
    assert _apply(arr).tolist() == sorted(values)


@given(st.integers(min_value=2, max_value=300))
def test_layers_are_disjoint_and_ordered(n):
    layers = sorting.network(n)
    for low, high in layers:
        touched = np.concatenate([low, high])
        assert np.unique(touched).size == touched.size  # one batch per layer is sound
        assert (low < high).all() and high.max() < n
    log = (n - 1).bit_length()
    assert len(layers) <= log * (log + 1) // 2


def test_comparator_count_matches_batchers_formula():
    assert sorting.comparators(2) == 1
    for p in range(2, 11):  # Knuth, TAOCP 5.3.4: (p^2 - p + 4) 2^(p-2) - 1 for n = 2^p
        assert sorting.comparators(1 << p) == (p * p - p + 4) * (1 << (p - 2)) - 1


def program(e, cases, rows):
    """Everything in one run of 3 processes: spawning them costs more than the protocols."""
    return [one_sort(e, keys, payload) for keys, payload in cases], shuffled(e, rows)


def one_sort(e, keys, payload):
    k = e.input(0, F.from_int64(keys) if e.party == 0 else None, keys.shape)
    p = e.input(1, F.from_int64(payload) if e.party == 1 else None, payload.shape)
    before = e.stats.rounds
    up, moved = sorting.sort(e, k, p)
    rounds = e.stats.rounds - before
    down, single = sorting.sort(e, k, p[:, 0], descending=True)
    bare, none = sorting.sort(e, k)
    stable_up, stable_moved = sorting.sort(e, k, p, stable=True)
    stable_down, stable_single = sorting.sort(e, k, p[:, 0], descending=True, stable=True)
    return dict(up=F.to_int64(e.reveal(up)), moved=F.to_int64(e.reveal(moved)),
                down=F.to_int64(e.reveal(down)), single=F.to_int64(e.reveal(single)),
                bare=F.to_int64(e.reveal(bare)), none=none, rounds=rounds,
                stable_up=F.to_int64(e.reveal(stable_up)),
                stable_moved=F.to_int64(e.reveal(stable_moved)),
                stable_down=F.to_int64(e.reveal(stable_down)),
                stable_single=F.to_int64(e.reveal(stable_single)))


def _cases():
    rng = np.random.default_rng(9)
    cases = []
    for n in (1, 2, 7, 33):
        keys = rng.integers(-50, 50, n)
        keys[: min(n, 3)] = [(1 << 61) - 1, -(1 << 61), 0][: min(n, 3)]
        payload = np.stack([np.arange(n) * 10, keys * 3], axis=1)  # row id, a function of the key
        cases.append((keys, payload))
    return cases


ROWS = np.stack([np.arange(40), np.arange(40) * 7], axis=1)


@pytest.fixture(scope="module")
def results():
    return run_local(program, args=(_cases(), ROWS), provider_factory=DEALER)[0]


def test_secret_sort_with_payload_matches_numpy(results):
    cases = _cases()
    for (keys, payload), got in zip(cases, results[0], strict=True):
        n = keys.size
        assert got["up"].tolist() == sorted(keys.tolist())
        assert got["bare"].tolist() == sorted(keys.tolist())
        assert got["down"].tolist() == sorted(keys.tolist(), reverse=True)
        assert got["none"] is None
        # each payload row travelled with its own key (ties may swap equal keys' rows)
        assert (got["moved"][:, 1] == got["up"] * 3).all()
        assert sorted(got["moved"][:, 0].tolist()) == (np.arange(n) * 10).tolist()
        ids = got["moved"][:, 0] // 10
        assert (keys[ids] == got["up"]).all()
        assert (keys[got["single"] // 10] == got["down"]).all()
        assert got["rounds"] == 7 * len(sorting.network(n))  # 6 for the 2-bit-digit comparison
        order = np.argsort(keys, kind="stable")  # numpy's stable order, ties by index
        assert got["stable_up"].tolist() == keys[order].tolist()
        assert got["stable_moved"].tolist() == payload[order].tolist()
        down = np.argsort(-keys, kind="stable")
        assert got["stable_down"].tolist() == keys[down].tolist()
        assert got["stable_single"].tolist() == payload[down, 0].tolist()


def shuffled(e, rows):
    x = e.input(0, F.from_int64(rows) if e.party == 0 else None, rows.shape)
    return [F.to_int64(e.reveal(sorting.shuffle(e, x))) for _ in range(3)]


def test_shuffle_permutes_rows_differently_each_time(results):
    outs = results[1]
    for out in outs:
        assert sorted(map(tuple, out.tolist())) == sorted(map(tuple, ROWS.tolist()))
        assert (out[:, 1] == out[:, 0] * 7).all()  # rows stay whole
    orders = {tuple(out[:, 0].tolist()) for out in outs}
    assert len(orders) == 3 and tuple(range(40)) not in orders
