"""Resharing a chunk to new holders: the secret survives, shares change, misuse is refused."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enigma.field import Field
from enigma.sharing import shamir
from enigma.storage.recovery import RecoveryError, combine_chunk, plan, reshare_chunk

F = Field()


def _chunk(seed: int, rows: int = 50) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"a": F.from_int64(rng.integers(-(2**62), 2**62, rows)),
            "b": F.from_int64(rng.integers(0, 100, rows))}


def _share(secret: dict[str, np.ndarray], t: int, n: int) -> dict[int, dict[str, np.ndarray]]:
    per_column = {name: shamir.share(F, x, t, n) for name, x in secret.items()}
    return {j: {name: s[j - 1] for name, s in per_column.items()} for j in range(1, n + 1)}


def _run(held: dict[int, dict[str, np.ndarray]], participants: list[int], new_points: list[int],
         t: int) -> dict[int, dict[str, np.ndarray]]:
    inbox: dict[int, dict[int, dict[str, np.ndarray]]] = {j: {} for j in new_points}
    for i in participants:
        for j, msg in reshare_chunk(F, held[i], i, participants, new_points, t).items():
            inbox[j][i] = msg
    return {j: combine_chunk(F, inbox[j], participants) for j in new_points}


def _open(shares: dict[int, dict[str, np.ndarray]], t: int) -> dict[str, np.ndarray]:
    names = next(iter(shares.values())).keys()
    return {c: shamir.reconstruct(F, {j: s[c] for j, s in shares.items()}, t) for c in names}


@given(seed=st.integers(0, 2**32), t=st.integers(1, 3), extra=st.integers(0, 2),
       lost=st.integers(0, 5))
def test_recovery_replaces_a_lost_holder_and_keeps_the_secret(seed, t, extra, lost):
    n = t + 1 + extra
    lost_point = lost % n + 1
    secret = _chunk(seed)
    held = _share(secret, t, n)
    holders = {j: f"node{j}" for j in range(1, n + 1)}
    if n - 1 < t + 1:
        with pytest.raises(RecoveryError, match="cannot be recovered"):
            plan(holders, [f"node{lost_point}"], ["fresh"], t)
        return
    p = plan(holders, [f"node{lost_point}"], ["fresh"], t)
    assert p.holders[lost_point] == "fresh" and lost_point not in p.participants
    new = _run(held, p.participants, sorted(p.holders), t)
    # all n new shares lie on one degree-t polynomial (reconstruct checks the extras)
    for name, x in _open(new, t).items():
        assert F.equal(x, secret[name]).all()
    # every share changed: the old and new generations do not mix
    for j in new:
        assert not F.equal(new[j]["a"], held[j]["a"]).any()


def test_refresh_rerandomizes_and_mixing_generations_is_detected():
    t, n = 1, 3
    secret = _chunk(7, rows=200)
    held = _share(secret, t, n)
    p = plan({1: "x", 2: "y", 3: "z"}, [], [], t)
    assert p.participants == [1, 2] and p.holders == {1: "x", 2: "y", 3: "z"}
    new = _run(held, p.participants, [1, 2, 3], t)
    for name, x in _open(new, t).items():
        assert F.equal(x, secret[name]).all()
    mixed = {1: held[1], 2: new[2], 3: new[3]}
    with pytest.raises(shamir.ShamirError, match="disagrees"):
        _open(mixed, t)


def test_unusable_holders_receive_but_do_not_send():
    p = plan({1: "x", 2: "y", 3: "z"}, [], [], 1, unusable=["x"])
    assert p.participants == [2, 3] and p.holders[1] == "x"
    with pytest.raises(RecoveryError, match="only 1 usable"):
        plan({1: "x", 2: "y", 3: "z"}, ["y"], ["w"], 1, unusable=["x"])


def test_plans_that_cannot_work_are_refused_with_reasons():
    holders = {1: "x", 2: "y", 3: "z"}
    with pytest.raises(RecoveryError, match="need as many replacements"):
        plan(holders, ["x"], [], 1)
    with pytest.raises(RecoveryError, match="not holders"):
        plan(holders, ["q"], ["w"], 1)
    with pytest.raises(RecoveryError, match="must not already hold"):
        plan(holders, ["x"], ["y"], 1)


def test_combining_needs_every_participant_and_matching_columns():
    held = _share(_chunk(3), 1, 3)
    msgs = {i: reshare_chunk(F, held[i], i, [1, 2], [1, 2, 3], 1)[3] for i in (1, 2)}
    with pytest.raises(RecoveryError, match="missing \\[2\\]"):
        combine_chunk(F, {1: msgs[1]}, [1, 2])
    bad = {1: msgs[1], 2: {"a": msgs[2]["a"]}}
    with pytest.raises(RecoveryError, match="has columns"):
        combine_chunk(F, bad, [1, 2])
    with pytest.raises(RecoveryError, match="not among the participants"):
        reshare_chunk(F, held[3], 3, [1, 2], [1, 2, 3], 1)
