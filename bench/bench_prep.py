"""The HE preprocessing on q real processes over the encrypted mesh: MAC'd, sacrificed triples.

Each party sets up its keys and Enc(alpha) (timed apart, as `setup_seconds`),
the parties synchronise with a MAC-checked opening, then produce `batches`
batches of 16384 triples each (keys, products, MACs, sacrifice, all included).
`seconds` is the slowest party's production time, `cpu_seconds_per_party` each
party's CPU time for it (the steadier figure while other work shares the cores).
Then random bits the same way (`bits_per_second`; `triples_spent` shows that they
take nothing from the triple stock), and the BFV operations one pairwise
product is made of (one process).

Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import seal

from enigma.field import PRG, Field
from enigma.mpc.runner import run_local
from enigma.prep import he
from enigma.prep.commands import HEProviderFactory

F = Field()


def produce(e, batches: int, bits: int, digit_bits: tuple[int, ...]) -> dict:
    p = e.provider
    e.open(e.constant(F.zeros(1)))  # every party has finished its setup
    e.check()
    out = {}
    start, cpu = time.perf_counter(), time.process_time()
    p.reserve(triples=batches * p.batch)
    out["triples_seconds"] = time.perf_counter() - start
    out["triples_cpu_seconds"] = time.process_time() - cpu
    if bits:
        stock = p.in_stock["triples"]
        start, cpu = time.perf_counter(), time.process_time()
        p.reserve(bits=bits)
        out["bits_seconds"] = time.perf_counter() - start
        out["bits_cpu_seconds"] = time.process_time() - cpu
        out["bits_triples_spent"] = stock - p.in_stock["triples"]
    for b in digit_bits:
        before = p.produced["triples"] - p.in_stock["triples"]
        start = time.perf_counter()
        p.digit_masks(200, 63, 64, b)
        out[f"digits{b}_seconds"] = time.perf_counter() - start
        out[f"digits{b}_triples"] = p.produced["triples"] - p.in_stock["triples"] - before
    return out


def bench_protocol(parties: int, batches: int, bits: int, digit_bits: tuple[int, ...]) -> None:
    start = time.perf_counter()
    results = run_local(produce, parties=parties, args=(batches, bits, digit_bits),
                        provider_factory=HEProviderFactory(), timeout=600, deadline=3600)
    total = time.perf_counter() - start
    triples = batches * he.POLY_DEGREE
    seconds = max(r["triples_seconds"] for r in results)
    print(json.dumps({"bench": "prep_triples", "parties": parties, "triples": triples,
                      "seconds": round(seconds, 3),
                      "triples_per_second": round(triples / seconds, 1),
                      "cpu_seconds_per_party": [round(r["triples_cpu_seconds"], 3)
                                                for r in results],
                      "wall_seconds_with_setup": round(total, 3)}), flush=True)
    if bits:
        s = max(r["bits_seconds"] for r in results)
        print(json.dumps({"bench": "prep_bits", "parties": parties, "bits": bits,
                          "seconds": round(s, 3), "bits_per_second": round(bits / s, 1),
                          "cpu_seconds_per_party": [round(r["bits_cpu_seconds"], 3)
                                                    for r in results],
                          "triples_spent": results[0]["bits_triples_spent"]}), flush=True)
    for b in digit_bits:
        s = max(r[f"digits{b}_seconds"] for r in results)
        print(json.dumps({"bench": "prep_digit_masks", "parties": parties, "digit_bits": b,
                          "masks": 200, "m": 63, "triples_used": results[0][f"digits{b}_triples"],
                          "seconds": round(s, 3)}), flush=True)


def bench_ops(repeat: int) -> None:
    """The BFV operations of one pairwise product, per ciphertext of 16384 slots."""
    bfv = he.BFV(F, 3)
    b = bfv.bounds
    print(json.dumps({"bench": "prep_params", "parties": 3, "poly_degree": he.POLY_DEGREE,
                      "plaintext_primes": len(bfv.instances), "mask_bits": b.mask_bits,
                      "flood_bits": b.flood_bits, "noise_bits": round(b.noise_bits, 1),
                      "plain_bits_needed": round(b.plain_bits, 1),
                      "ciphertext_modulus_bits": b.ciphertext_bits,
                      "return_primes": b.return_limbs,
                      "return_noise_bits": round(b.return_noise_bits, 1)}), flush=True)
    keys = bfv.keygen()
    inst = bfv.instances[0]
    ev = inst.evaluator
    x = bfv.field_residues(F.random(he.POLY_DEGREE))[0]
    plain = inst.encode(x)
    ct = keys.encrypt(0, plain)
    peer = he.PeerKeys(bfv, keys.public_bytes(), who=1)
    seal_pk = seal.Encryptor(inst.context, keys.public[0])
    product = ev.multiply_plain(ct, plain)
    ct_ntt = ev.transform_to_ntt(ct)
    plain_ntt = inst.encode(x)
    ev.transform_to_ntt_inplace(plain_ntt, ct.parms_id())
    product_ntt = ev.multiply_plain(ct_ntt, plain_ntt)
    prg = PRG()
    u_ntt = he.ternary_ntt(bfv, 1, prg)[0]
    coeffs = inst.coefficients(x)
    seeded = keys.encrypt_seeded([(0, coeffs)], prg)[0]
    ops = {
        "encrypt_own_secret_key_seal": lambda: keys.encrypt(0, plain),
        "encrypt_own_seeded_ntt_x2": lambda: keys.encrypt_seeded([(0, coeffs), (1, coeffs)], prg),
        "load_seeded": lambda: he.load_seeded(bfv, 0, seeded, 1),
        "encrypt_seal_public_key": lambda: seal_pk.encrypt(plain),
        "ternary_lift_5_primes": lambda: he.ternary_ntt(bfv, 5, prg),
        "encrypt_zero_data_level": lambda: he.encrypt_zero_ntt(inst, peer.public_ntt[0], u_ntt),
        "lift_plain_to_ntt": lambda: ev.transform_to_ntt(plain, ct.parms_id()),
        "ct_to_ntt": lambda: ev.transform_to_ntt(ct),
        "multiply_plain": lambda: ev.multiply_plain(ct, plain),
        "multiply_plain_ntt": lambda: ev.multiply_plain(ct_ntt, plain_ntt),
        "rerandomise_flood_switch": lambda: he.rerandomise(bfv, 0, peer.public_ntt[0],
                                                           product_ntt, plain, u_ntt, prg),
        "decrypt_full_level": lambda: keys.decrypt(0, product),
        "decrypt_return_level": lambda: keys.decrypt(0, low),
        "serialize": lambda: product.to_string(seal.compr_mode_type.none),
        "flood_switch": lambda: he.flood(bfv, 0, product, prg),
        "load_return_level": lambda: he.load_ciphertext(bfv, 0, low_raw, 1, returned=True),
        "crt_5_primes": lambda: bfv.reconstruct([x] * len(bfv.instances)),
    }
    low_raw = he.flood(bfv, 0, product, prg)
    low = he.load_ciphertext(bfv, 0, low_raw, 1, returned=True)
    for name, op in ops.items():
        op()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            op()
            times.append(time.perf_counter() - start)
        print(json.dumps({"bench": "prep_bfv_op", "op": name, "slots": he.POLY_DEGREE,
                          "ms": round(1000 * float(np.median(times)), 3)}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parties", type=int, nargs="+", default=[3])
    ap.add_argument("--batches", type=int, default=2, help="batches of 16384 triples")
    ap.add_argument("--bits", type=int, default=2 * he.POLY_DEGREE,
                    help="random bits to produce (0: skip)")
    ap.add_argument("--digit-bits", type=int, nargs="*", default=[],
                    help="also time 200 digit masks of 63 bits with these digit sizes")
    ap.add_argument("--ops", type=int, default=5, help="repeats of each BFV operation (0: skip)")
    args = ap.parse_args()
    if args.ops:
        bench_ops(args.ops)
    for q in args.parties:
        bench_protocol(q, args.batches, args.bits, tuple(args.digit_bits))


if __name__ == "__main__":
    main()
