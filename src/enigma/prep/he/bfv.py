"""The r BFV instances of one quorum, their CRT, and one party's keys.

Why several plaintext primes: BFV plaintext moduli are at most 60 bits here
(Microsoft SEAL through seal-python), but the pairwise products of the
preprocessing live in F_p with p = 2^127 - 1. A product u v of two field
elements plus a hiding mask is an integer below (p-1)^2 + 2^(2 bits(p) + 40),
so each party computes it modulo r NTT-friendly primes t_1..t_r whose product
T exceeds that integer times the number of summed terms; the Chinese
remainder theorem gives the integer back, and reducing it mod p gives the
share. For p = 2^127 - 1 and up to 32 parties, r = 5; products with a MAC key
share (below 2^64) need only the first 4 (`BFV.mac_primes`).

The keys encrypt with SEAL's secret-key encryption, sent seeded and in NTT form
(`Keys.encrypt_seeded`); what parties send each other is read back in frames.py.
"""

from __future__ import annotations

import math
import os
import threading

import numpy as np
import seal

from enigma.field import PRG, Field

from .chunks import as_elements, chunks_of_field, reduce_mod, stack_chunks
from .encryption import SEED_BYTES, data_level_key, expand_uniform, small_error
from .flooding import rerandomise_at
from .instance import PlainSlot
from .kernels import garner_kernel, minus_as_kernel, scale_kernel, shoup
from .params import (
    DATA_PRIME_BITS,
    MAC_KEY_BITS,
    NOISE_BOUND,
    PLAIN_PRIME_BITS,
    POLY_DEGREE,
    SPECIAL_PRIME_BITS,
    STAT_BITS,
    Bounds,
    HEParameterError,
)


class BFV:
    """The r BFV instances of one quorum, and the bounds they are checked against."""

    def __init__(self, field: Field, parties: int) -> None:
        if parties < 2:
            raise HEParameterError("pairwise products need at least 2 parties")
        self.field = field
        self.parties = parties
        self.slots = POLY_DEGREE
        coeff = seal.CoeffModulus.Create(POLY_DEGREE, [*DATA_PRIME_BITS, SPECIAL_PRIME_BITS])
        product_bound = (field.p - 1) ** 2
        mask_bits = 2 * field.bits + STAT_BITS
        plain_needed = (parties - 1) * (product_bound + (1 << mask_bits))
        count = 1
        while True:
            primes = seal.PlainModulus.Batching(POLY_DEGREE, [PLAIN_PRIME_BITS] * count)
            if math.prod(m.value() for m in primes) > plain_needed:
                break
            count += 1
        self.instances = [PlainSlot(t, coeff) for t in primes]
        self.plain_product = math.prod(s.t for s in self.instances)
        # Products u v with u < 2^u_bits need masks of u_bits + bits(p) + 40 bits and
        # fewer primes when u is small (the MAC key share): mask bits by prime count.
        self.mask_bits_by_primes: dict[int, int] = {}
        for u_bits in (min(MAC_KEY_BITS, field.bits), field.bits):
            mask = u_bits + field.bits + STAT_BITS
            need = (parties - 1) * ((1 << (u_bits + field.bits)) + (1 << mask))
            r = next(k for k in range(1, count + 1)
                     if math.prod(s.t for s in self.instances[:k]) > need)
            self.mask_bits_by_primes[r] = max(mask, self.mask_bits_by_primes.get(r, 0))
        self.mac_primes = min(self.mask_bits_by_primes)
        self.bounds = self._check_noise(mask_bits, plain_needed)
        self._garner_constants()
        for inst in self.instances:
            self._check_return(inst, self.bounds.flood_bits)

    def _check_noise(self, mask_bits: int, plain_needed: int) -> Bounds:
        """Flooding size, and a proof (by worst-case bounds) that decryption stays exact.

        1. Fresh: a peer's vector, encrypted with its secret key at the data level,
           has noise <= 21; SEAL's public-key encryption (zero at the key level, noise
           <= 21 (2N + 1), divided by the special prime p_s with rounding) <= that / p_s
           + 1/2 + N/2. The larger of the two bounds both.
        2. Product by a plaintext with coefficients < t: the rounding of
           round(Q m / t) (<= 1/2) and the fresh noise are multiplied by at most N t.
        3. Re-randomisation (`rerandomise`): (pk_0 u, pk_1 u + e_1) with pk's error e and
           e_1 below 21 and u ternary adds e u + e_1 s <= 2 * 21 * N, the mask's
           scaling round(Q r / t) 1/2 more.
        4. Flood with 2^40 N V; the decrypting party sums q - 1 such ciphertexts.
        5. Each returned ciphertext is switched down to the first k data primes
           (Q' = q_1 ... q_k): c -> round(c Q' / Q), one prime at a time. The
           noise becomes v Q' / Q plus the rounding eps_0 + eps_1 s, at most
           (N + 1) / 2 per step with a ternary s, below N / 2 + 1 over all steps.
           k is the fewest primes that keep the sum below Delta' / 2 = Q' / 2t.
        """
        n = POLY_DEGREE
        t = max(s.t for s in self.instances)
        key_level = NOISE_BOUND * (2 * n + 1)
        fresh = -(-key_level >> SPECIAL_PRIME_BITS) + n // 2 + 1
        after_mul = n * t * (fresh + 1)
        flood_bits = math.ceil(math.log2(n * after_mul)) + STAT_BITS
        # `flood_raw` floods uniformly on W < 2^(flood_bits + 2) integers, |F| <= W / 2
        per_ct = (1 << (flood_bits + 1)) + after_mul + 2 * NOISE_BOUND * n + 1
        total = (self.parties - 1) * per_ct
        delta = min(s.delta for s in self.instances)
        if 2 * total >= delta:
            raise HEParameterError(
                f"BFV noise {math.log2(total):.1f} bits would exceed half of Delta "
                f"({math.log2(delta) - 1:.1f} bits) for {self.parties} parties: use fewer "
                "parties per quorum or a larger ciphertext modulus")
        self._check_library(after_mul)
        q_limbs = self.instances[0].q_limbs  # every instance has the same data primes
        q_total = math.prod(q_limbs)
        for limbs in range(1, len(q_limbs) + 1):
            q_low = math.prod(q_limbs[:limbs])
            low = (self.parties - 1) * (-(-per_ct * q_low // q_total) + n // 2 + 1)
            if 2 * low * t < q_low:
                break
        for inst in self.instances:
            gen = seal.KeyGenerator(inst.context)
            template = seal.Encryptor(inst.context, gen.secret_key()).encrypt_symmetric(
                inst.encode(np.zeros(n, dtype=np.uint64)))
            inst.set_return_level(limbs, template)
        return Bounds(mask_bits, flood_bits, math.log2(total), math.log2(plain_needed),
                      sum(DATA_PRIME_BITS) + SPECIAL_PRIME_BITS, limbs, math.log2(low))

    def _check_library(self, after_mul: int) -> None:
        """Measure one product's noise; refuse a SEAL whose noise exceeds the bound above."""
        inst = self.instances[0]
        gen = seal.KeyGenerator(inst.context)
        encryptor = seal.Encryptor(inst.context, gen.create_public_key())
        decryptor = seal.Decryptor(inst.context, gen.secret_key())
        words = PRG().words(2 * POLY_DEGREE) % np.uint64(inst.t)
        ct = encryptor.encrypt(inst.encode(words[:POLY_DEGREE]))
        product = inst.evaluator.multiply_plain(ct, inst.encode(words[POLY_DEGREE:]))
        # budget = log2(Q / t) - log2(noise) - 1, up to rounding
        least = math.floor(math.log2(inst.delta) - 1 - math.log2(after_mul)) - 1
        budget = decryptor.invariant_noise_budget(product)
        if budget < least:
            raise HEParameterError(
                f"the installed SEAL leaves {budget} bits of noise budget after a product, "
                f"fewer than the {least} the noise bound assumes: it is not the SEAL 4 this "
                "code was written for (seal-python==4.4.0); the flooding would not hide")

    def _check_return(self, inst: PlainSlot, flood_bits: int) -> None:
        """A returned product (`rerandomise`, flooded, switched down) must decrypt exactly.

        This runs the code path of every returned ciphertext (data-level key, ternary
        lift, serialisation layout `flood` writes into, switching arithmetic) on the
        installed library, and checks the noise left at the return level, before
        any real data is sent.
        """
        n = POLY_DEGREE
        gen = seal.KeyGenerator(inst.context)
        encryptor = seal.Encryptor(inst.context, gen.secret_key())
        decryptor = seal.Decryptor(inst.context, gen.secret_key())
        public_ntt = data_level_key(inst, gen.create_public_key())
        prg = PRG()
        words = prg.words(3 * n) % np.uint64(inst.t)
        x, y, r = words[:n], words[n:2 * n], words[2 * n:]
        ct = inst.evaluator.transform_to_ntt(encryptor.encrypt_symmetric(inst.encode(x)))
        plain = inst.encode(y)
        inst.evaluator.transform_to_ntt_inplace(plain, ct.parms_id())
        product = inst.evaluator.multiply_plain(ct, plain)
        index = self.instances.index(inst)
        u_ntt = ternary_ntt(self, index + 1, prg)[index]
        raw = rerandomise_at(inst, public_ntt, product, inst.encode(r), u_ntt, flood_bits, prg)
        low = seal.Ciphertext()
        low.load_bytes(inst.context, bytes(raw))
        got = inst.decode(decryptor.decrypt(low))
        want = ((x.astype(object) * y.astype(object) + r.astype(object)) % inst.t)
        q_low = math.prod(inst.q_limbs[:inst.return_limbs])
        left = math.log2(q_low / inst.t) - 1 - (flood_bits + math.log2(q_low)
                                                 - math.log2(math.prod(inst.q_limbs)))
        budget = decryptor.invariant_noise_budget(low)
        if (low.parms_id() != inst.return_parms_id or got.tolist() != want.tolist()
                or budget < math.floor(left) - 2):
            raise HEParameterError(
                f"a product re-randomised, flooded with {flood_bits} bits and switched to "
                f"{inst.return_limbs} primes does not decrypt exactly (noise budget {budget} "
                f"bits, expected about {left:.0f}): the installed SEAL does not match "
                "seal-python==4.4.0's serialisation or the noise bound")

    def _garner_constants(self) -> None:
        """inv[i, j] = t_j^-1 mod t_i for j < i (mixed-radix CRT, Garner 1959)."""
        r = len(self.instances)
        ts = [s.t for s in self.instances]
        if max(ts) >= 2 * min(ts) or max(ts) >= 1 << 62:
            raise HEParameterError("the CRT kernel reduces a digit mod one plaintext prime by "
                                   "another with one subtraction: the primes must lie within "
                                   "a factor 2 of each other, below 2^62")
        self._moduli = np.array(ts, dtype=np.uint64)
        self._inv = np.zeros((r, r), dtype=np.uint64)
        self._inv_shoup = np.zeros((r, r), dtype=np.uint64)
        for i, si in enumerate(self.instances):
            for j, sj in enumerate(self.instances[:i]):
                w = pow(sj.t, -1, si.t)
                self._inv[i, j], self._inv_shoup[i, j] = w, shoup(w, si.t)

    # ------------------------------------------------------------------ conversions

    def residues(self, chunks: list[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        """An integer given as 48-bit chunks, reduced mod every t_i (uint64 arrays)."""
        stacked = stack_chunks(chunks)
        return [reduce_mod(stacked, s.t) for s in self.instances]

    def field_residues(self, x: np.ndarray) -> list[np.ndarray]:
        """Field elements (n, 2) reduced mod every t_i."""
        return self.residues(chunks_of_field(x))

    def reconstruct(self, residues: list[np.ndarray]) -> np.ndarray:
        """The integer X < t_0 ... t_(r-1) with X = residues[i] mod t_i, reduced mod p (Garner).

        1. v_0 = x_0; v_i = (x_i - v_0 - t_0 v_1 - ...) / (t_0 ... t_(i-1)) mod t_i.
        2. X = v_0 + t_0 (v_1 + t_1 (v_2 + ...)), evaluated in F_p by Horner's rule.
        """
        r = len(residues)  # the first r primes: fewer for products with a MAC key share
        digits = np.empty((r, residues[0].shape[0]), dtype=np.uint64)
        garner_kernel(np.ascontiguousarray(np.stack(residues)), self._moduli[:r],
                       np.ascontiguousarray(self._inv[:r, :r]),
                       np.ascontiguousarray(self._inv_shoup[:r, :r]), digits)
        P = self.field
        acc = as_elements(digits[-1])
        for i in range(r - 2, -1, -1):
            acc = P.muladd(acc, np.repeat(P.const(self.instances[i].t)[None], acc.shape[0], 0),
                           as_elements(digits[i]))
        return acc

    # ------------------------------------------------------------------ keys

    def keygen(self) -> Keys:
        return Keys(self)


class Keys:
    """One party's BFV key pairs (one per plaintext prime). The secret keys never leave memory."""

    def __init__(self, bfv: BFV) -> None:
        self.bfv = bfv
        gens = [seal.KeyGenerator(s.context) for s in bfv.instances]
        self.public = [g.create_public_key() for g in gens]
        self._decryptors = [seal.Decryptor(s.context, g.secret_key())
                            for s, g in zip(bfv.instances, gens, strict=True)]
        self._encryptors = [seal.Encryptor(s.context, pk, g.secret_key())
                            for s, pk, g in zip(bfv.instances, self.public, gens, strict=True)]
        self._secret_ntt = [_secret_ntt(s, g.secret_key())
                            for s, g in zip(bfv.instances, gens, strict=True)]

    def encrypt_seeded(self, items: list[tuple[int, np.ndarray]], prg: PRG) -> list[bytes]:
        """Seeded secret-key encryptions in NTT form: one frame per (prime i, residues mod t_i).

        c1 = a is uniform in the NTT domain (as uniform as in the coefficient domain,
        the NTT being a bijection) and expanded from a fresh 32-byte seed; c0 =
        NTT(round(Q m / t) + e) - a s with e centred binomial (|e| <= 21), so
        c0 + c1 s = round(Q m / t) + e: SEAL's symmetric encryption, with c1 sent
        as its seed (as SEAL's own seeded serialisation does). The frame is the
        seed and c0: half the bytes of a full ciphertext, and the receiver needs
        no NTT before multiplying.
        """
        bfv, n = self.bfv, POLY_DEGREE
        limbs = len(bfv.instances[0].q_limbs)
        coeffs = []
        for i, residues in items:
            inst = bfv.instances[i]
            out = np.empty((limbs, n), dtype=np.uint64)
            scale_kernel(np.ascontiguousarray(residues, dtype=np.uint64), small_error(n, prg),
                          inst._qs, inst._scale, inst._scale_shoup, inst._one_shoup,
                          np.uint64(inst.t), inst._q_mod_t, inst._q_mod_t_barrett, out)
            coeffs.append(out)
        frames = []
        for k in range(0, len(items), 2):  # one SEAL transform takes two polynomials
            pair = coeffs[k:k + 2]
            inst = bfv.instances[items[k][0]]
            ct = seal.Ciphertext()
            ct.load_bytes(inst.context, inst.coeff_header + pair[0].tobytes()
                          + pair[-1].tobytes())
            inst.evaluator.transform_to_ntt_inplace(ct)
            raw = ct.to_string(seal.compr_mode_type.none)
            ntt = np.frombuffer(raw, dtype="<u8", count=2 * limbs * n,
                                offset=len(raw) - 2 * limbs * n * 8).reshape(2, limbs, n)
            for h in range(len(pair)):
                i = items[k + h][0]
                seed = os.urandom(SEED_BYTES)
                a = expand_uniform(bfv.instances[i], seed)
                frame = bytearray(SEED_BYTES + limbs * n * 8)
                frame[:SEED_BYTES] = seed
                c0 = np.frombuffer(frame, dtype="<u8", offset=SEED_BYTES).reshape(limbs, n)
                secret, secret_shoup = self._secret_ntt[i]
                minus_as_kernel(ntt[h], a, secret, secret_shoup, bfv.instances[i]._qs, c0)
                frames.append(bytes(frame))
        return frames

    def encrypt(self, i: int, plain: seal.Plaintext) -> seal.Ciphertext:
        """SEAL's own secret-key encryption, in coefficient form (for tests and the bench).

        The protocol sends `encrypt_seeded` instead: the same RLWE encryption with c1
        as a seed, in NTT form. Secret-key encryption hides as well as the public-key
        form, has less noise (|e| <= 21) and costs less.
        """
        return self._encryptors[i].encrypt_symmetric(plain)

    def public_bytes(self) -> list[bytes]:
        return [pk.to_string() for pk in self.public]

    def decrypt(self, i: int, ct: seal.Ciphertext) -> np.ndarray:
        return self.bfv.instances[i].decode(self._decryptors[i].decrypt(ct))

    def noise_budget(self, i: int, ct: seal.Ciphertext) -> int:
        """Bits of noise budget left: for tests and measurements, never sent anywhere."""
        return self._decryptors[i].invariant_noise_budget(ct)


_SHARED: dict[tuple[int, int], BFV] = {}
_SHARED_LOCK = threading.Lock()


def shared_bfv(field: Field, parties: int) -> BFV:
    """The quorum's BFV instances for (p, parties), built once per process.

    Why: building them (SEAL contexts for r primes, the noise and return checks on the
    installed library) takes 0.7-1.5 s here, and a node paid it in every job. They hold
    public parameters only and do not change once built (the flooding split they cache is
    a function of the parameters), so one node's jobs can share them; every session
    still draws its own keys (`BFV.keygen`).
    """
    with _SHARED_LOCK:
        key = (field.p, parties)
        if key not in _SHARED:
            _SHARED[key] = BFV(field, parties)
        return _SHARED[key]


def _secret_ntt(inst: PlainSlot, sk: seal.SecretKey) -> tuple[np.ndarray, np.ndarray]:
    """s mod the data primes in NTT form (SEAL keeps it so, at the key level), with the
    Shoup constants of every coefficient. Secret: only `Keys` holds it."""
    raw = sk.to_string()
    n, limbs = POLY_DEGREE, len(inst.q_limbs)
    key_limbs = limbs + 1
    data = np.frombuffer(raw, dtype="<u8", count=key_limbs * n,
                         offset=len(raw) - key_limbs * n * 8).reshape(key_limbs, n)[:limbs].copy()
    qs = np.array(inst.q_limbs, dtype=object)[:, None]
    shoups = ((data.astype(object) << 64) // qs).astype(np.uint64)
    return data, shoups


def ternary_ntt(bfv: BFV, primes: int, prg: PRG) -> list[seal.Plaintext]:
    """One uniform ternary polynomial u, in NTT form at the data level of the first `primes`
    instances (one plaintext each: SEAL ties a plaintext to its instance's parms_id).

    -1 is written t - 1, which SEAL's transform_to_ntt lifts back to -1 mod every data
    prime (BFV plaintext lifting). The NTT depends only on the data primes, which all
    instances share, so u is lifted once and its NTT values loaded into the others.
    """
    first = bfv.instances[0]
    w = prg.words(POLY_DEGREE) % np.uint64(3)  # bias 2^-64 per coefficient
    u = np.where(w == 2, np.uint64(first.t - 1), w)
    plain = seal.Plaintext()
    plain.load_bytes(first.context, first.plain_header + u.tobytes())
    first.evaluator.transform_to_ntt_inplace(plain, first.context.first_parms_id())
    out = [plain]
    if primes > 1:
        raw = plain.to_bytes(seal.compr_mode_type.none)
        data = raw[len(first.plain_ntt_header):]
        for inst in bfv.instances[1:primes]:
            other = seal.Plaintext()
            other.load_bytes(inst.context, inst.plain_ntt_header + data)
            out.append(other)
    return out
