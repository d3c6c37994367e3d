"""k-means as a script states it: given first centres, a tie rule, and results that do not
depend on the engine's random rounding.

The data hold exact ties. After the first Lloyd iteration, clusters A and B are mirror
images around the point P = (500, 500), so P is equidistant from their centroids, whose
means (thirds) are not on the fixed-point grid: the old engine rounded them at random
(TruncPr), so P joined A or B from run to run. The reference here is written from the
rule alone, in exact rationals: distances to the centroids, ties to the lower (or higher)
index, each centroid the cluster mean rounded half up to 2^-16.
"""

from __future__ import annotations

from fractions import Fraction
from math import floor

import numpy as np
import pytest

from enigma.lang.checker import check
from enigma.lang.errors import ScriptError
from enigma.lang.plain import run_plain
from enigma.lang.runner import run_mpc
from enigma.lang.schema import Schema
from enigma.lang.simulation import thread_quorum
from enigma.prep.dealer import DealerFactory

SCHEMA = Schema.from_dict({"name": "points", "rows": 10, "columns": [
    {"name": c, "type": "int", "label": "private", "min": 0, "max": 1000, "missing": "refuse"}
    for c in ("x", "y")]})
POINTS = np.array([[300, 500], [301, 500], [301, 501],    # A, mean (300 2/3, 500 1/3)
                   [700, 500], [699, 500], [699, 499],    # B, A mirrored around P
                   [500, 500],                            # P: with C first, then tied
                   [500, 1000], [500, 1000], [480, 990]])  # C
INIT = [[100, 500], [900, 500], [500, 600]]
SOURCE = "".join(f"reveal(kmeans([data.x, data.y], k=3, iters=3, init={INIT}, "
                 f"ties='{t}'), '{t}')\n" for t in ("first", "last"))


def _reference(points: np.ndarray, init: list[list[int]], iters: int, ties: str
               ) -> np.ndarray:
    """Lloyd's algorithm in exact rationals under the stated rule (independent of
    `plain.lloyd`, which works on integer codes)."""
    grid = 1 << 16
    rows = [[Fraction(int(v)) for v in p] for p in points]
    c = [[Fraction(v) for v in p] for p in init]
    for _ in range(iters):
        members: list[list[list[Fraction]]] = [[] for _ in c]
        for p in rows:
            dist = [sum((a - b) ** 2 for a, b in zip(p, q, strict=True)) for q in c]
            best = min(dist)
            j = dist.index(best) if ties == "first" else len(c) - 1 - dist[::-1].index(best)
            members[j].append(p)
        c = [[Fraction(floor(sum(col) / len(m) * grid + Fraction(1, 2)), grid)
              for col in zip(*m, strict=True)] if m else q for m, q in zip(members, c,
                                                                             strict=True)]
    return np.array([[float(v) for v in q] for q in c])


def test_the_tie_is_exact_in_the_data() -> None:
    """P is equidistant from the second iteration's (rounded) centroids of A and B, nearer
    to them than to C: the rule decides, not rounding."""
    a = _reference(POINTS, INIT, 1, "first")
    p = POINTS[6]
    d = [((Fraction(int(p[0])) - Fraction(q[0])) ** 2 + (Fraction(int(p[1])) - Fraction(q[1]))
          ** 2) for q in a]
    assert d[0] == d[1] < d[2]
    assert not np.array_equal(_reference(POINTS, INIT, 3, "first"),
                              _reference(POINTS, INIT, 3, "last"))


@pytest.mark.parametrize("ties", ["first", "last"])
def test_plain_kmeans_follows_the_rule(ties: str) -> None:
    got = run_plain(check(SOURCE, SCHEMA), SCHEMA, {"x": POINTS[:, 0], "y": POINTS[:, 1]})
    np.testing.assert_array_equal(got.results[ties].value, _reference(POINTS, INIT, 3, ties))


def test_mpc_kmeans_equals_the_plain_rule_run_after_run() -> None:
    """Two runs with different preprocessing randomness (so different truncation noise) give
    the plain interpreter's centroids exactly, with the documented bound of 1/2 ulp."""
    values = {"x": POINTS[:, 0], "y": POINTS[:, 1]}
    plain = run_plain(check(SOURCE, SCHEMA), SCHEMA, values).results
    runs = [run_mpc(SOURCE, SCHEMA, values, quorum=thread_quorum,
                    provider_factory=DealerFactory(seed, insecure=True)).results
            for seed in (b"kmeans ties dealer seed, run one", b"kmeans ties dealer seed, run two")]
    for ties in ("first", "last"):
        for run in runs:
            np.testing.assert_array_equal(run[ties].value, plain[ties].value)
            assert np.all(run[ties].error == 2.0**-17)


@pytest.mark.parametrize("init, message", [
    ("[[0, 0], [500, 500]]", "init must be a list of k = 3 centres, each a list of d = 2"),
    ("[[0, 0], [500, 500], [1000]]", "init centre 2 must be a list of d = 2 constants"),
    ("[[0, 0], [500, 500], [1000, data.x[0]]]", "private value used as an initial centre"),
    ("[[0, 0], [500, 500], [1000, mean(data.y)]]", "private value used as an initial centre"),
    ("[[0, 0], [500, 1200], [1000, 1000]]",
     "init centre 1 has 1200 in column 1, outside its range \\[0, 1000\\]"),
    ("[[0, 0], [-1, 500], [1000, 1000]]", "init centre 1 has -1 in column 0"),
    ("[['a', 'b'], ['c', 'd'], ['e', 'f']]", "init centre 0 needs numbers"),
    ("c", "init must be a list of k = 3 centres"),
])
def test_bad_init_is_refused_by_the_checker(init: str, message: str) -> None:
    source = (f"c = [[0, 0], [1, 1], [2, 2]]\n"
              f"reveal(kmeans([data.x, data.y], 3, init={init}), 'c')\n")
    with pytest.raises(ScriptError, match=message):
        check(source, SCHEMA)


def test_bad_tie_rule_is_refused_by_the_checker() -> None:
    with pytest.raises(ScriptError, match="ties must be 'first' or 'last', not 'random'"):
        check("reveal(kmeans([data.x, data.y], 2, ties='random'), 'c')\n", SCHEMA)
