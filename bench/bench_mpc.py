"""The SPDZ online phase on 3 real processes over the encrypted mesh, against numpy.

Each workload runs 1 + repeat times in every party: the first run records what
it asks of the preprocessing and warms the compiled kernels, the allocator and
the TCP windows (a node that serves jobs is warm); then the (insecure, test)
dealer produces everything ahead of time, and each timed run starts with the
parties synchronised. `seconds` is the median timed run: the online phase
alone, with its MAC checks and the private output to the owner.
`plain_seconds` is the same computation in numpy in the parent process.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from enigma.field import Field
from enigma.mpc import comparison as cmp
from enigma.mpc import functions
from enigma.mpc.runner import run_local
from enigma.mpc.secret import concat
from enigma.prep.dealer import DealerFactory

F = Field()
FRAC = 16


def _inputs(e, n: int, seed: int, scale: float = 1000.0, cols: int = 1):
    """Party 0 inputs x, party 1 inputs y: fixed-point reals in [-scale, scale]."""
    rng = np.random.default_rng(seed)
    x = np.rint(rng.uniform(-scale, scale, (n, cols)) * 2**FRAC).astype(np.int64)
    y = np.rint(rng.uniform(-scale, scale, (n, cols)) * 2**FRAC).astype(np.int64)
    sx = e.input(0, F.from_int64(x) if e.party == 0 else None, (n, cols))
    sy = e.input(1, F.from_int64(y) if e.party == 1 else None, (n, cols))
    return sx, sy


def _mean(e, total, n: int, bits: int = 86):
    """total / n for public n, in fixed point: multiply by round(2^s / n), truncate by s."""
    s = 50
    return cmp.trunc(e, total * round(2**s / n), s, bits=bits)


def w_multiplication(e, n):
    x, y = _inputs(e, n, 1)
    return lambda: (e.mul(x, y), e.check())


def w_comparison(e, n):
    x, y = _inputs(e, n, 2)
    return lambda: e.output(cmp.ltz(e, x - y, bits=64), 0)


def w_sum_mean(e, n):
    x, _ = _inputs(e, n, 3)
    return lambda: e.output(_mean(e, x.sum(), n), 0)


def w_dot_product(e, n):
    x, y = _inputs(e, n, 4)
    return lambda: e.output(e.dot(x.reshape(n), y.reshape(n)), 0)


def w_variance(e, n):
    x, _ = _inputs(e, n, 5)

    def run():
        flat = x.reshape(n)
        mean = _mean(e, flat.sum(), n)                      # scale 2^f
        ex2 = _mean(e, e.dot(flat, flat), n)                # scale 2^2f
        var = ex2 - e.mul(mean, mean)                       # scale 2^2f
        return e.output(cmp.trunc(e, var, FRAC, bits=86), 0)
    return run


def w_histogram(e, n):
    rng = np.random.default_rng(6)
    cats = rng.integers(0, 10, n)
    c = e.input(0, F.from_int64(cats) if e.party == 0 else None, n)
    return lambda: e.output(cmp.one_hot(e, c, 10).sum(axis=0), 0)


def w_kmeans(e, n):
    """One Lloyd iteration, k = 3, 2-D points: assign each point to its nearest centroid,
    then the new centroids are the per-cluster sums divided by the counts (a secret
    division); the owner receives the new centroids."""
    pts, _ = _inputs(e, n, 7, scale=100.0, cols=2)
    start = np.rint(np.array([[-50, -50], [0, 50], [50, 0]]) * 2**FRAC).astype(np.int64)
    cen = e.input(0, F.from_int64(start) if e.party == 0 else None, (3, 2))

    def run():
        diffs = [pts - cen[j].broadcast_to(n, 2) for j in range(3)]
        dist = [s.sum(axis=1) for s in e.mul_many([(d, d) for d in diffs])]  # < 2^50
        # nearest of three: d0 <= d1 picks the first winner, which then meets d2
        le01 = 1 - cmp.ltz(e, dist[1] - dist[0], bits=56)
        (pick,) = e.mul_many([(le01, dist[0] - dist[1])])
        le2 = 1 - cmp.ltz(e, dist[2] - (pick + dist[1]), bits=56)
        a0, a1 = e.mul_many([(le2, le01), (le2, 1 - le01)])
        onehot = concat([a0, a1, 1 - le2]).reshape(3, n)
        counts = (onehot.sum(axis=1) * (1 << FRAC)).reshape(3, 1).broadcast_to(3, 2)
        sums = e.dot(onehot.reshape(3, n, 1).broadcast_to(3, n, 2), pts.broadcast_to(3, n, 2),
                     axis=1)
        bits = (n << FRAC).bit_length() + 1
        return e.output(functions.divide(e, sums, counts, bits=bits), 0)
    return run


WORKLOADS = {
    "multiplication": w_multiplication, "comparison": w_comparison, "sum_mean": w_sum_mean,
    "dot_product": w_dot_product, "variance": w_variance, "histogram": w_histogram,
    "kmeans_iteration": w_kmeans,
}


def party(e, name: str, n: int, repeat: int):
    run = WORKLOADS[name](e, n)
    e.check()
    start = len(e.provider.requests)
    run()                                   # warm-up: records the preprocessing plan
    plan = e.provider.requests[start:]
    e.provider.make(plan * repeat)
    times = []
    for _ in range(repeat):
        e.channel.broadcast(b"ready")       # everyone starts the clock together
        before = (e.stats.bytes_sent, e.stats.rounds)
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return times, e.stats.bytes_sent - before[0], e.stats.rounds - before[1]


def plain(name: str, n: int) -> float:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1000, 1000, n), rng.uniform(-1000, 1000, n)
    t = time.perf_counter()
    if name == "multiplication":
        x * y
    elif name == "comparison":
        np.less(x, y)
    elif name == "sum_mean":
        x.mean()
    elif name == "dot_product":
        x @ y
    elif name == "variance":
        x.var()
    elif name == "histogram":
        np.bincount(rng.integers(0, 10, n), minlength=10)
    else:
        pts, cen = rng.uniform(-100, 100, (n, 2)), np.array([[-50, -50], [0, 50], [50, 0.0]])
        t = time.perf_counter()
        lab = ((pts[:, None, :] - cen[None]) ** 2).sum(-1).argmin(1)
        [pts[lab == j].mean(0) for j in range(3)]
    return time.perf_counter() - t


DEFAULT_N = {"multiplication": 10**6, "comparison": 10**5, "sum_mean": 10**6,
             "dot_product": 10**6, "variance": 10**6, "histogram": 10**6,
             "kmeans_iteration": 10**5}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("workloads", nargs="*", default=list(WORKLOADS))
    ap.add_argument("--n", type=int, help="override the size of every workload")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs; the median is reported")
    args = ap.parse_args()
    factory = DealerFactory(b"bench-mpc-seed-0123456789abcdef!", insecure=True, stockpile=True)
    for name in args.workloads:
        n = args.n or DEFAULT_N[name]
        res = run_local(party, args=(name, n, args.repeat), provider_factory=factory,
                        timeout=120)
        seconds = float(np.median([max(r[0][i] for r in res) for i in range(args.repeat)]))
        plain_s = min(plain(name, n) for _ in range(5))
        print(json.dumps({
            "bench": "mpc", "workload": name, "n": n, "parties": 3,
            "preprocessing": "insecure test dealer, made before the clock",
            "seconds": round(seconds, 4), "plain_seconds": round(plain_s, 6),
            "ratio": round(seconds / plain_s, 1),
            "bytes_per_party": max(r[1] for r in res), "rounds": max(r[2] for r in res),
            "ops_per_second": round(n / seconds),
        }), flush=True)


if __name__ == "__main__":
    main()
