"""Long vectors run in chunks of the engine's memory budget: the same results, more rounds,
and a working memory that does not grow with the rows."""

import numpy as np

from enigma.field import Field
from enigma.mpc.runner import run_local
from enigma.prep.dealer import DealerFactory

from . import mpc_programs as prog

F = Field()
DEALER = DealerFactory(b"test-seed-0123456789abcdef012345", insecure=True)
TINY = {"memory_budget": 1_000_000}
"""Room for 30 elements of a 64-bit comparison (10 chunks of the 300 below)."""


def test_comparisons_in_chunks_match_plaintext():
    rng = np.random.default_rng(11)
    half = 1 << 63
    edges = [0, 1, -1, 2, -2, half - 1, -half, 255, 256, -256]
    xs = np.concatenate([edges, rng.integers(-half, half, 290, dtype=np.int64)])
    out = run_local(prog.comparisons, args=(xs, 64), provider_factory=DEALER,
                    engine_kwargs=TINY)[0]
    assert F.to_int64(out["ltz"]).tolist() == (xs < 0).astype(int).tolist()
    assert F.to_int64(out["eqz"]).tolist() == (xs == 0).astype(int).tolist()
    assert set(np.unique(F.to_int64(out["trunc"]) - (xs >> 8)).tolist()) <= {0, 1}


def test_one_hot_in_chunks_counts_every_category():
    cats = np.random.default_rng(3).integers(0, 10, 500)
    hist = run_local(prog.categories, args=(cats, 10), provider_factory=DEALER,
                     engine_kwargs={"memory_budget": 60_000})[1]
    assert F.to_int64(hist).tolist() == np.bincount(cats, minlength=10).tolist()


def test_products_and_dot_products_in_chunks_match_plaintext():
    rng = np.random.default_rng(5)
    n = 200
    xs, ys = (rng.integers(-(2**20), 2**20, (3, n, 2)) for _ in range(2))
    whole, chunked = run_local(prog.chunked_products, args=(xs, ys, 20_000),
                               provider_factory=DEALER)[0]
    assert chunked[0] > whole[0]  # it did run in chunks
    for got in (whole[1], chunked[1]):
        assert F.to_int64(got["prod"]).tolist() == (xs * ys).tolist()
        assert F.to_int64(got["square"]).tolist() == (xs[0] * xs[0]).tolist()
        assert F.to_int64(got["along"]).tolist() == (xs * ys).sum(axis=1).tolist()
        assert F.to_int64(got["across"]).tolist() == (xs * ys).sum(axis=2).tolist()


def test_a_long_comparison_stays_within_its_memory_budget():
    """25,000 64-bit comparisons at once grow a party by about 400 MB (measured: 241 MB for
    15,000); in chunks of an 8 MB budget the peak grows by a small multiple of the budget
    (measured: about 2x), whatever the rows."""
    budget_mb = 8
    xs = np.random.default_rng(2).integers(-(2**40), 2**40, 25_000)
    results = run_local(prog.peak_growth, args=(xs, 64), provider_factory=DEALER,
                        engine_kwargs={"memory_budget": budget_mb << 20}, timeout=60)
    assert F.to_int64(results[0][1]).tolist() == (xs < 0).astype(int).tolist()
    growth = max(r[0] for r in results)
    assert growth < 8 * budget_mb + 40, f"peak RSS grew by {growth:.0f} MB"
