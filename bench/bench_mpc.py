"""The SPDZ engine on 3 real processes over the encrypted mesh, against numpy.

By default each workload runs as a user runs it: every party sets up its HE
preprocessing (keys, Enc(alpha)), inputs its values and runs the workload once,
producing triples, bits and masks as the computation asks for them. The kernels
are compiled once per machine (numba's cache), so no warm-up run is made.
`offline_seconds` is the slowest party's time making preprocessing (set-up
included), `online_seconds` the rest of its time, `seconds` their sum: the figure a
user waits for. `triples` and `bits` are what the HE provider produced for the run
(the bits' own triples included in `triples`), `online_triples` the workload's
Beaver products, `peak_rss_mb` the largest party's peak resident memory.

`--dealer` runs the old online measurement instead: the INSECURE test dealer makes
the plan before the clock (as much as the stockpile's memory budget holds, the rest
as it is served), after a warm-up run, and `seconds` is the median of `--repeat`
timed runs. Its rows say so; no user ever runs that
dealer. `plain_seconds` is the same computation in numpy in the parent process.
For comparisons, `spu_ratio` divides `seconds` by SPU's semi-honest time for as
many comparisons on this machine (10^6 in 2.6 s, measured when issue 16 was filed).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from enigma.field import Field
from enigma.mpc import comparison as cmp
from enigma.mpc import functions
from enigma.mpc.noise import discrete_laplace
from enigma.mpc.runner import run_local
from enigma.mpc.secret import concat
from enigma.prep.commands import HEProviderFactory
from enigma.prep.dealer import DealerFactory

F = Field()
FRAC = 16
SPU_COMPARISON_SECONDS = 2.6e-6
"""SPU's semi-honest seconds per comparison on this machine (10^6 in 2.6 s)."""


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


def w_comparison_10bit(e, n):
    """x > 500 for integers x known to lie in [0, 1000]: x - 501 fits 11 signed bits."""
    x = np.random.default_rng(8).integers(0, 1001, n)
    sx = e.input(0, F.from_int64(x) if e.party == 0 else None, n)
    return lambda: e.output(cmp.ltz(e, 500 - sx, bits=11), 0)


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


DP_CELLS = 10
DP_EPSILON = 1.0
"""The DP group-by's privacy budget: each row moves one cell's sum by at most |x| <= 1000."""
_TIMED: dict[str, float] = {}
"""Seconds of a workload's named parts in this party's process (each party is a process)."""


def w_dp_groupby(e, n):
    """Sum of x per category (L = 10 cells, a secret one-hot) plus discrete Laplace noise of
    scale sensitivity / epsilon per cell, drawn jointly; the owner receives the noised sums.
    `noise_seconds` is the noise's share of the time (its random bits made as it asks)."""
    x, _ = _inputs(e, n, 9)
    cats = np.random.default_rng(10).integers(0, DP_CELLS, n)
    c = e.input(0, F.from_int64(cats) if e.party == 0 else None, n)
    scale = 1000.0 * 2**FRAC / DP_EPSILON  # fixed-point units: the sum's sensitivity / epsilon

    def run():
        hot = cmp.one_hot(e, c, DP_CELLS)                                  # (n, L)
        sums = e.dot(hot, x.broadcast_to(n, DP_CELLS), axis=0)             # (L,)
        t = time.perf_counter()
        noise = discrete_laplace(e, DP_CELLS, scale)
        _TIMED["noise"] = _TIMED.get("noise", 0.0) + time.perf_counter() - t
        return e.output(sums + noise.value, 0)
    return run


WORKLOADS = {
    "multiplication": w_multiplication, "comparison": w_comparison,
    "comparison_10bit": w_comparison_10bit, "sum_mean": w_sum_mean,
    "dot_product": w_dot_product, "variance": w_variance, "histogram": w_histogram,
    "kmeans_iteration": w_kmeans, "dp_groupby": w_dp_groupby,
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def party_dealer(e, name: str, n: int, repeat: int):
    """The online phase alone, median of `repeat` runs, the dealer's stock made before."""
    run = WORKLOADS[name](e, n)
    e.check()
    start = len(e.provider.requests)
    run()                                   # warm-up: records the preprocessing plan
    plan = e.provider.requests[start:]
    e.provider.make(plan * repeat)
    times = []
    for _ in range(repeat):
        e.channel.broadcast(b"ready")       # everyone starts the clock together
        before = (e.stats.bytes_sent, e.stats.rounds, e.stats.triples)
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return {"times": times, "noise": _TIMED.get("noise", 0.0) / (repeat + 1),
            "bytes": e.stats.bytes_sent - before[0],
            "rounds": e.stats.rounds - before[1], "online_triples": e.stats.triples - before[2],
            "peak_rss_mb": _peak_rss_mb()}


def party_he(e, name: str, n: int):
    """Set-up (already done by the factory), inputs and the run, preprocessing as it comes."""
    p = e.provider
    setup = p.seconds
    t = time.perf_counter()
    run = WORKLOADS[name](e, n)
    run()
    total = setup + time.perf_counter() - t
    return {"seconds": total, "offline": p.seconds, "noise": _TIMED.get("noise", 0.0),
            "bytes": e.stats.bytes_sent,
            "rounds": e.stats.rounds, "online_triples": e.stats.triples,
            "triples": p.produced["triples"], "bits": p.produced["bits"],
            "peak_rss_mb": _peak_rss_mb()}


def plain(name: str, n: int) -> float:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1000, 1000, n), rng.uniform(-1000, 1000, n)
    t = time.perf_counter()
    if name == "multiplication":
        x * y
    elif name == "comparison":
        np.less(x, y)
    elif name == "comparison_10bit":
        np.greater(rng.integers(0, 1001, n), 500)
    elif name == "sum_mean":
        x.mean()
    elif name == "dot_product":
        x @ y
    elif name == "variance":
        x.var()
    elif name == "histogram":
        np.bincount(rng.integers(0, 10, n), minlength=10)
    elif name == "dp_groupby":
        cats = rng.integers(0, DP_CELLS, n)
        q = np.exp(-DP_EPSILON / 1000.0)
        t = time.perf_counter()
        noise = rng.geometric(1 - q, DP_CELLS) - rng.geometric(1 - q, DP_CELLS)
        np.bincount(cats, weights=x, minlength=DP_CELLS) + noise
    else:
        pts, cen = rng.uniform(-100, 100, (n, 2)), np.array([[-50, -50], [0, 50], [50, 0.0]])
        t = time.perf_counter()
        lab = ((pts[:, None, :] - cen[None]) ** 2).sum(-1).argmin(1)
        [pts[lab == j].mean(0) for j in range(3)]
    return time.perf_counter() - t


DEFAULT_N = {"multiplication": 10**5, "comparison": 10**3, "comparison_10bit": 10**4,
             "sum_mean": 10**5, "dot_product": 10**5, "variance": 10**5, "histogram": 10**4,
             "kmeans_iteration": 10**3, "dp_groupby": 10**4}
"""Sizes for the secure path on a 2-core machine (minutes, not hours); `--n` overrides."""
DEALER_N = {"multiplication": 10**6, "comparison": 10**5, "comparison_10bit": 10**5,
            "sum_mean": 10**6, "dot_product": 10**6, "variance": 10**6, "histogram": 10**6,
            "kmeans_iteration": 10**5, "dp_groupby": 10**6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workloads", nargs="*", default=list(WORKLOADS))
    ap.add_argument("--n", type=int, help="override the size of every workload")
    ap.add_argument("--dealer", action="store_true",
                    help="online phase only, on the INSECURE test dealer (never a user's path)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="with --dealer: timed runs, the median is reported")
    args = ap.parse_args()
    for name in args.workloads:
        if name not in WORKLOADS:
            ap.error(f"unknown workload {name!r}; one of {', '.join(WORKLOADS)}")
    for name in args.workloads:
        n = args.n or (DEALER_N if args.dealer else DEFAULT_N)[name]
        line = {"bench": "mpc", "workload": name, "n": n, "parties": 3}
        if args.dealer:
            factory = DealerFactory(b"bench-mpc-seed-0123456789abcdef!", insecure=True,
                                    stockpile=True)
            res = run_local(party_dealer, args=(name, n, args.repeat), provider_factory=factory,
                            timeout=120)
            seconds = float(np.median([max(r["times"][i] for r in res)
                                       for i in range(args.repeat)]))
            line.update(preprocessing="INSECURE test dealer, made before the clock up to the "
                        "stockpile's memory budget, the rest during the run (not what a user "
                        "waits for)", seconds=round(seconds, 4))
        else:
            res = run_local(party_he, args=(name, n), provider_factory=HEProviderFactory(),
                            timeout=600, deadline=6 * 3600)
            slowest = max(res, key=lambda r: r["seconds"])
            seconds = slowest["seconds"]
            line.update(preprocessing="he (no trusted party), counted",
                        offline_seconds=round(slowest["offline"], 3),
                        online_seconds=round(seconds - slowest["offline"], 3),
                        seconds=round(seconds, 3), triples=res[0]["triples"],
                        bits=res[0]["bits"])
        plain_s = min(plain(name, n) for _ in range(5))
        line.update(plain_seconds=round(plain_s, 6), ratio=round(seconds / plain_s, 1),
                    online_triples=res[0]["online_triples"],
                    bytes_per_party=max(r["bytes"] for r in res),
                    rounds=max(r["rounds"] for r in res), ops_per_second=round(n / seconds),
                    peak_rss_mb=round(max(r["peak_rss_mb"] for r in res), 1))
        if name == "dp_groupby":
            line.update(noise_seconds=round(max(r["noise"] for r in res), 3),
                        cells=DP_CELLS, epsilon=DP_EPSILON)
        if name.startswith("comparison"):
            line["spu_ratio"] = round(seconds / (n * SPU_COMPARISON_SECONDS), 1)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
