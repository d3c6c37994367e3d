"""Field arithmetic throughput at n = 10^6, against numpy float64 in the same run.

Prints one JSON object per line. Times are the best of several repetitions
after a warm-up call (which also triggers the JIT compilation or cache load).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from enigma.field import Field


def best_of(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10**6)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    n, rep = args.n, args.repeat
    F = Field()
    a, b = F.random(n), F.random(n)
    out = np.empty_like(a)
    nonzero = F.add(a, F.const(1)) if F.equal(a, F.const(F.p - 1)).any() else a
    raw = bytes(F.to_bytes(a))
    x, y = np.random.default_rng(0).random(n), np.random.default_rng(1).random(n)
    ops = {
        "add": lambda: F.add(a, b),
        "add_into": lambda: F.add(a, b, out=out),
        "sub": lambda: F.sub(a, b),
        "mul": lambda: F.mul(a, b),
        "mul_into": lambda: F.mul(a, b, out=out),
        "muladd": lambda: F.muladd(a, b, a),
        "dot": lambda: F.dot(a, b),
        "inverse": lambda: F.inverse(nonzero),
        "random": lambda: F.random(n),
        "serialize": lambda: bytes(F.to_bytes(a)),
        "deserialize": lambda: F.from_bytes(raw),
        "numpy_float64_mul": lambda: x * y,
        "numpy_float64_add": lambda: x + y,
    }
    base = best_of(ops["numpy_float64_mul"], rep)
    for name, fn in ops.items():
        sec = best_of(fn, rep if name != "inverse" else max(3, rep // 3))
        print(json.dumps({
            "bench": "field", "op": name, "n": n, "modulus": "2^127-1",
            "seconds": round(sec, 6), "ns_per_element": round(sec / n * 1e9, 3),
            "ratio_to_numpy_float64_mul": round(sec / base, 2),
        }), flush=True)


if __name__ == "__main__":
    main()
