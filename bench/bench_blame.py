"""Identifiable abort on 3 real processes: the fault matrix at the MPC layer, and what blame
mode costs (docs/blame.md).

`matrix` runs one job per fault kind (a product of two inputs and a comparison, openings
through kings) and prints one JSON line per kind: whether the run aborted, whom the honest
side named and how, the evidence's size and whether it verifies with public keys, the
seconds to run and to identify. `overhead` times the same workloads inside the parties with
and without blame mode (the insecure test dealer, made before the clock is not used here:
both modes pay the same preprocessing, so the difference is the signing channel).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from enigma.field import Field
from enigma.mpc import comparison as cmp
from enigma.mpc.blame import verify_evidence
from enigma.mpc.faults import ENGINE_KINDS, Fault
from enigma.mpc.runner import run_blamed, run_local
from enigma.prep.dealer import DealerFactory

F = Field()
DEALER = DealerFactory(b"bench-blame-seed-0123456789abcde", insecure=True)
# where each kind bites in `job` (the culprit's sending call or triples request)
AT = {"bitflip": 2, "wrong-mac": 0, "bad-preprocessing": 0, "dropout": 4, "stall": 4,
      "garbage": 3, "equivocate": 0, "replay": 3, "wrong-recipient": 2}


def job(e, n: int):
    """x * y + (x < y), x from party 0 and y from party 1, output to party 2."""
    rng = np.random.default_rng(7)
    xs, ys = rng.integers(-1000, 1000, n), rng.integers(-1000, 1000, n)
    x = e.input(0, F.from_int64(xs) if e.party == 0 else None, n)
    y = e.input(1, F.from_int64(ys) if e.party == 1 else None, n)
    return e.output(x * y + cmp.ltz(e, x - y, bits=16), 2)


def expected(n: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    xs, ys = rng.integers(-1000, 1000, n), rng.integers(-1000, 1000, n)
    return xs * ys + (xs < ys)


def timed(e, workload: str, n: int) -> float:
    rng = np.random.default_rng(1)
    xs, ys = rng.integers(-1000, 1000, n), rng.integers(-1000, 1000, n)
    x = e.input(0, F.from_int64(xs) if e.party == 0 else None, n)
    y = e.input(1, F.from_int64(ys) if e.party == 1 else None, n)
    e.check()
    t = time.perf_counter()
    if workload == "multiplication":
        e.output(x * y, 2)
    else:
        e.output(cmp.ltz(e, x - y, bits=16), 2)
    return time.perf_counter() - t


def matrix(n: int, timeout: float) -> None:
    kings = {"king_threshold": max(3, n)}
    for kind in ENGINE_KINDS:  # the app-layer kinds need a network job: test_app_faults
        culprit = ENGINE_KINDS.index(kind) % 3
        fault = Fault(kind, culprit, at=AT[kind], stall=timeout + 2.0)
        t = time.perf_counter()
        run = run_blamed(job, args=(n,), provider_factory=DEALER, fault=fault, insecure=True,
                         timeout=timeout, engine_kwargs=kings)
        ran = time.perf_counter() - t
        t = time.perf_counter()
        verdict = run.verdict()
        identified = time.perf_counter() - t
        evidence = verdict.evidence.get(culprit, b"")
        verifies = bool(evidence) and verify_evidence(evidence, run.program,
                                                      run.public_keys) == culprit
        wrong = any(v is not None and not (F.to_int64(v) == expected(n)).all()
                    for p, v in run.outputs.items() if p != culprit)
        print(json.dumps({
            "bench": "blame", "kind": kind, "culprit": culprit, "n": n,
            "detected": run.aborted, "named": sorted(verdict.culprits),
            "identified": set(verdict.culprits) == {culprit},
            "how": verdict.culprits.get(culprit), "evidence_bytes": len(evidence),
            "evidence_verifies": verifies, "wrong_result": wrong,
            "run_seconds": round(ran, 2), "identify_seconds": round(identified, 3),
        }), flush=True)


def overhead(n: int, repeat: int) -> None:
    for workload in ("multiplication", "comparison"):
        plain, blamed = [], []
        for _ in range(repeat):  # interleaved, so both modes see the same load
            plain.append(max(run_local(timed, args=(workload, n), provider_factory=DEALER)))
            blamed.append(max(run_blamed(timed, args=(workload, n),
                                         provider_factory=DEALER).outputs.values()))
        print(json.dumps({
            "bench": "blame-overhead", "workload": workload, "n": n,
            "plain_seconds": round(float(np.median(plain)), 4),
            "blame_seconds": round(float(np.median(blamed)), 4),
        }), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("parts", nargs="*", default=["matrix", "overhead"])
    ap.add_argument("--n", type=int, default=100, help="elements per job in the matrix")
    ap.add_argument("--overhead-n", type=int, default=10**5)
    ap.add_argument("--timeout", type=float, default=3.0, help="seconds before a peer is absent")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if "matrix" in args.parts:
        matrix(args.n, args.timeout)
    if "overhead" in args.parts:
        overhead(args.overhead_n, args.repeat)


if __name__ == "__main__":
    main()
