"""The dominance rule (k, p) of a release policy, enforced on shares (issue 21).

A sum's or mean's cell is withheld when its k largest contributions hold more than p % of
it. The table is built so that each cell tests one case: one contributor at 90 % (withheld
under (1, 80)), one at 50 % (kept), exactly 80 % (kept: the rule is "more than"), two
tied at the top, and a negative contributor (counted by its size). The plain path is
checked against numpy's own sort, and the MPC run on a thread quorum must withhold exactly
the plain path's cells and seal none of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from enigma.lang.checker import check
from enigma.lang.disclosure import DOMINANCE, SMALL_OR_DOMINANT
from enigma.lang.plain import run_plain
from enigma.lang.release import Release, ReleasePolicy
from enigma.lang.review import review
from enigma.lang.runner import run_mpc
from enigma.lang.schema import Schema
from enigma.lang.simulation import thread_quorum
from enigma.prep.dealer import DealerFactory

DEALER = DealerFactory(b"test_lang_dominance dealer seed.", insecure=True)
LEVELS = ["big90", "half", "exact80", "tied", "negative"]
SCHEMA = Schema.from_dict({"name": "dominance", "columns": [
    {"name": "g", "type": "category", "label": "private", "levels": LEVELS},
    {"name": "v", "type": "int", "label": "private", "min": -1000, "max": 1000},
]})
CELLS = {  # the contributions of each cell (each sums to 1000 in size)
    "big90": [900] + [10] * 10,
    "half": [500] + [50] * 10,
    "exact80": [800] + [20] * 10,
    "tied": [300, 300, 300] + [10] * 10,
    "negative": [-900] + [10] * 10,
}
VALUES = {"g": np.array([g for g, vs in CELLS.items() for _ in vs], dtype=object),
          "v": np.array([v for vs in CELLS.values() for v in vs], dtype=np.int64)}
SOURCE = """
reveal(group_by(data.g, data.v, "sum"), "sums")
reveal(group_by(data.g, data.v, "mean"), "means")
reveal(sum(data.v, where=data.g == "big90"), "big")
reveal(sum(data.v, where=data.g == "half"), "half")
reveal(sum(data.v), "all")
reveal(group_by(data.g), "n")
"""


def _dominated(k: int, p: float) -> np.ndarray:
    """numpy's verdict per cell: the k largest |values| hold more than p % of Σ|values|."""
    out = []
    for vs in CELLS.values():
        size = np.sort(np.abs(np.array(vs, dtype=float)))[::-1]
        out.append(100 * size[:k].sum() > p * size.sum())
    return np.array(out)


def _plain(policy: ReleasePolicy) -> dict[str, Any]:
    return run_plain(check(SOURCE, SCHEMA), SCHEMA, VALUES, Release(policy)).results


@pytest.mark.parametrize("k, p, withheld", [
    (1, 80.0, ["big90", "negative"]),  # 90 % and |-900| withheld; 50 %, exactly 80 % kept
    (2, 80.0, ["big90", "exact80", "negative"]),  # 800 + 20 is 82 %; the tied 60 % kept
    (3, 80.0, ["big90", "exact80", "tied", "negative"]),  # the three tied: 90 %
    (1, 29.0, LEVELS),
])
def test_plain_path_withholds_exactly_the_dominated_cells(k: int, p: float,
                                                          withheld: list[str]) -> None:
    want = _dominated(k, p)
    assert [g for g, d in zip(LEVELS, want, strict=True) if d] == withheld
    got = _plain(ReleasePolicy(n_min=3, dominance_k=k, dominance_p=p))
    free = run_plain(check(SOURCE, SCHEMA), SCHEMA, VALUES).results
    for name in ("sums", "means"):
        assert np.array_equal(np.isnan(got[name].value), want), (name, got[name].value)
        assert np.array_equal(got[name].value[~want], free[name].value[~want])
        assert list(got[name].suppressed) == [SMALL_OR_DOMINANT if d else "" for d in want]
    assert bool(np.isnan(got["big"].value)) == want[0]
    assert bool(np.isnan(got["half"].value)) == want[1]
    assert np.array_equal(got["n"].value, free["n"].value)  # counts have no dominance
    whole = 100 * np.sort(np.abs(VALUES["v"]))[::-1][:k].sum() > p * np.abs(VALUES["v"]).sum()
    assert bool(np.isnan(got["all"].value)) == whole
    if whole:  # the whole table's rows are public: the reason is the rule itself
        assert got["all"].suppressed.item() == DOMINANCE


def test_the_table_exercises_every_case() -> None:
    """The cases the cells were built for, by numpy (a guard on the table itself)."""
    assert _dominated(1, 80.0).tolist() == [True, False, False, False, True]
    assert _dominated(2, 55.0).tolist() == [True, False, True, True, True]
    exact, half = CELLS["exact80"], sorted(CELLS["half"])[::-1]
    assert 100 * max(exact) == 80 * sum(exact)  # at the threshold under (1, 80): kept
    assert 100 * sum(half[:2]) == 55 * sum(half)  # and under (2, 55)


def test_mpc_withholds_the_same_cells_and_seals_none_of_them() -> None:
    """k = 2 (a tournament pass, its one-hot removal, and a second pass), p = 55: the
    opened bits are the plain path's verdicts, and the sealed vector holds only the kept
    cells."""
    policy = ReleasePolicy(n_min=3, dominance_k=2, dominance_p=55.0)
    source = ('reveal(group_by(data.g, data.v, "sum"), "sums")\n'
              'reveal(group_by(data.g, data.v, "mean"), "means")\n'
              'reveal(sum(data.v, where=data.g == "half"), "half")\n')
    replies: list[dict] = []

    def quorum(*args: Any, **kwargs: Any) -> list:
        replies[:] = thread_quorum(*args, **kwargs)
        return replies

    got = run_mpc(source, SCHEMA, VALUES, provider_factory=DEALER, quorum=quorum,
                  release=Release(policy)).results
    want = run_plain(check(source, SCHEMA), SCHEMA, VALUES, Release(policy)).results
    dominated = _dominated(2, 55.0)
    assert dominated.tolist() == [True, False, True, True, True]
    for name, r in want.items():
        assert np.array_equal(np.isnan(got[name].value), np.isnan(r.value)), name
        keep = ~np.isnan(r.value)
        assert np.all(np.abs(got[name].value[keep] - r.value[keep]) <= got[name].error[keep]
                      + 1e-9), name
        assert np.array_equal(got[name].suppressed, r.suppressed), name
    assert np.array_equal(np.isnan(got["sums"].value), dominated)
    kept = sum(int(np.sum(entry[6]["kept"])) for entry in replies[0]["layout"])
    assert kept == 1 + 1 + 1  # the "half" cell of the sums and of the means, the half sum
    for reply in replies:
        assert reply["sealed"][0].shape[0] == kept


def test_statistics_whose_dominance_is_not_computed_are_refused() -> None:
    policy = ReleasePolicy(n_min=3, dominance_k=1, dominance_p=80.0)
    source = ('reveal(variance(data.v), "var")\nreveal(sum(data.v) / 2, "half_sum")\n'
              'reveal(count(data.v), "c")\n')
    _, verdicts = review(check(source, SCHEMA), SCHEMA, Release(policy))
    by = {v.name: v for v in verdicts}
    assert "dominance of variance() is not computed" in by["var"].refused
    assert by["half_sum"].refused is None and by["c"].refused is None
    assert by["half_sum"].dominance and not by["c"].dominance
    assert "dominance: decided on shares" in by["half_sum"].line()


def test_a_member_that_flips_its_share_of_a_pass_bit_is_caught(monkeypatch) -> None:
    """Member 1 adds 1 to its share of the first cell's pass bit before the opening (to let a
    dominated cell out): the opening's MAC check fails and nothing is sealed."""
    from enigma.lang.mpc_backend import MpcBackend

    honest = MpcBackend.open_bits

    def lying(self: MpcBackend, bits: list) -> list:
        if bits and self.e.party == 1:
            share = bits[0].secret.share
            one = self.F.from_int64(np.array([1], dtype=np.int64))
            share.value[0:1] = self.F.add(share.value.reshape(-1, 2)[0:1], one).reshape(
                share.value[0:1].shape)
        return honest(self, bits)

    monkeypatch.setattr(MpcBackend, "open_bits", lying)
    policy = ReleasePolicy(n_min=3, dominance_k=1, dominance_p=80.0)
    with pytest.raises(Exception) as info:
        run_mpc('reveal(group_by(data.g, data.v, "sum"), "sums")\n', SCHEMA, VALUES,
                provider_factory=DEALER, quorum=thread_quorum, release=Release(policy))
    assert "MacCheckError" in repr(info.value), repr(info.value)
