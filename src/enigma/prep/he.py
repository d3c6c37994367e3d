"""BFV over several plaintext primes, and the bounds that make its products exact and private.

Why several plaintext primes: BFV plaintext moduli are at most 60 bits here
(Microsoft SEAL through seal-python), but the pairwise products of the
preprocessing live in F_p with p = 2^127 - 1. A product u v of two field
elements plus a hiding mask is an integer below (p-1)^2 + 2^(2 bits(p) + 40),
so each party computes it modulo r NTT-friendly primes t_1..t_r whose product
T exceeds that integer times the number of summed terms; the Chinese
remainder theorem gives the integer back, and reducing it mod p gives the
share. For p = 2^127 - 1 and up to 32 parties, r = 5; products with a MAC key
share (below 2^64) need only the first 4 (`BFV.mac_primes`).

Why N = 16384 and a 220-bit ciphertext modulus: the ciphertext a node returns
must not reveal, through its noise, the plaintext it multiplied by. A fresh
ciphertext has noise at most N/2 + 2 (SEAL 4's public-key bound, which also
covers the seeded symmetric encryption here), and plaintexts are scaled to
round(Q m / t) exactly; so after ciphertext x plaintext the noise is at most
V = N t (N/2 + 3), about 2^87. The returned ciphertext is re-randomised with
an encryption of zero under the owner's key at the data level
(`encrypt_zero_ntt`), flooded with uniform noise on about 2^40 N V, which makes
it 2^-40-close to one whose noise does not depend on the multiplier (noise
flooding, Damgard et al., SPDZ, CRYPTO 2012, section 6), and then switched down
to 2 of the 4 data primes (`flood`), a public function of the flooded
ciphertext. Decryption stays correct while the noise is below Delta / 2 =
Q / 2t, and after switching below Q' / 2t: N = 16384 with Q = 4 x 55 bits holds
it for up to 2^15 parties, N = 8192 (Q <= 218 bits at 128-bit security,
special prime included) cannot. At start-up, one product is measured against
V and a returned product is decrypted on every prime, so a SEAL that behaves
otherwise is refused. See docs/preprocessing.md for the numbers and the
security level.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
from dataclasses import dataclass

import numpy as np
import seal
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from enigma.field import PRG, Field

POLY_DEGREE = 16384
DATA_PRIME_BITS = (55, 55, 55, 55)
SPECIAL_PRIME_BITS = 30
PLAIN_PRIME_BITS = 60
STAT_BITS = 40
"""Statistical security of masks and of noise flooding, in bits."""

MAC_KEY_BITS = 64
"""A party's MAC key share alpha_i is uniform on [0, 2^64): its products need one prime fewer."""

NOISE_BOUND = 21
"""|e| of SEAL's errors: centred binomial on 42 bits (|e| <= 21), or normal clipped at 19.2."""

_CHUNK = 48
_CHUNK_MASK = np.uint64((1 << _CHUNK) - 1)


MALLOC_MMAP_THRESHOLD = 32 << 20
"""Allocations below this come from the heap, not mmap (glibc's largest allowed value)."""

MALLOC_TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Let glibc reuse freed blocks of a few MB instead of unmapping them (once per process).

    A batch makes and drops hundreds of 0.5-1 MB buffers (serialised ciphertexts,
    their numpy views, seeds expanded to c1). Above glibc's mmap threshold each is
    a fresh mmap, so every page is faulted in and zeroed again, and munmap on free:
    measured, about 6 % of a party's CPU and a third of its system time. Raising
    the mmap and trim thresholds keeps such blocks in the heap (the process keeps
    up to MALLOC_TRIM_THRESHOLD of freed memory). False where mallopt is missing
    (not glibc), which changes nothing but speed.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, MALLOC_MMAP_THRESHOLD)
                and mallopt(m_trim_threshold, MALLOC_TRIM_THRESHOLD))


class HEParameterError(ValueError):
    """The BFV parameters cannot hold the computation asked of them."""


@intrinsic
def _mulhi(typingctx, a, b):
    """The high 64 bits of the 128-bit product of two uint64 (one `mul` instruction)."""
    i128 = ir.IntType(128)

    def codegen(context, builder, signature, args):
        wide = builder.mul(builder.zext(args[0], i128), builder.zext(args[1], i128))
        return builder.trunc(builder.lshr(wide, ir.Constant(i128, 64)), ir.IntType(64))

    return types.uint64(types.uint64, types.uint64), codegen


@njit(inline="always")
def _mulmod_const(a, w, w_shoup, q):
    """a w mod q for a constant w < q < 2^62 with w_shoup = floor(w 2^64 / q) (Shoup)."""
    r = a * w - _mulhi(a, w_shoup) * q
    return r - q if r >= q else r


@njit(cache=True, nogil=True)
def _horner_kernel(chunks, q, w, w_shoup, out):
    """out[j] = sum_k chunks[k, j] 2^(48 k) mod q, for chunks below 2^48 <= q."""
    count, n = chunks.shape
    for j in range(n):
        acc = chunks[count - 1, j]
        for k in range(count - 2, -1, -1):
            acc = _csub(_mulmod_nb(acc, w, w_shoup, q) + chunks[k, j], q)
        out[j] = acc


@njit(cache=True, nogil=True)
def _garner_kernel(residues, moduli, inv, inv_shoup, digits):
    """Mixed-radix digits: digits[i] = (x_i - v_0 - t_0 v_1 - ...) / (t_0 ... t_(i-1)) mod t_i."""
    r, n = residues.shape
    for j in range(n):
        for i in range(r):
            t = moduli[i]
            v = residues[i, j]
            for k in range(i):
                d = _csub(digits[k, j], t)  # t_k < 2 t_i (checked in _garner_constants)
                v = _mulmod_nb(_csub(v + t - d, t), inv[i, k], inv_shoup[i, k], t)
            digits[i, j] = v


def shoup(w: int, q: int) -> int:
    return (w << 64) // q


def _stacked(chunks: list[np.ndarray] | np.ndarray) -> np.ndarray:
    if isinstance(chunks, np.ndarray) and chunks.ndim == 2 and chunks.flags.c_contiguous:
        return chunks
    return np.ascontiguousarray(np.stack(chunks))


def reduce_mod(chunks: list[np.ndarray] | np.ndarray, q: int) -> np.ndarray:
    """sum_k chunks[k] 2^(48 k) mod q for a modulus 2^48 <= q < 2^62, as uint64."""
    stacked = _stacked(chunks)
    out = np.empty(stacked.shape[1], dtype=np.uint64)
    w = (1 << _CHUNK) % q
    _horner_kernel(stacked, np.uint64(q), np.uint64(w), np.uint64(shoup(w, q)), out)
    return out


def _as_elements(x: np.ndarray) -> np.ndarray:
    """uint64 values below the modulus as field elements (high word zero)."""
    out = np.zeros((x.shape[0], 2), dtype=np.uint64)
    out[:, 0] = x
    return out


def chunks_of_field(x: np.ndarray) -> list[np.ndarray]:
    """Split field elements (< 2^128) into 48-bit limbs, low first, each as a uint64 array."""
    lo, hi = x[..., 0], x[..., 1]
    return [lo & _CHUNK_MASK,
            (lo >> np.uint64(_CHUNK)) | ((hi & np.uint64(0xFFFFFFFF)) << np.uint64(16)),
            hi >> np.uint64(32)]


def reduce_chunks(chunks: list[np.ndarray] | np.ndarray, field: Field) -> np.ndarray:
    """sum_k chunks[k] 2^(48 k) mod field.p, by Horner's rule with the field's kernels.

    Every chunk must be below field.p, which holds for 48-bit chunks and moduli
    of 49 bits or more.
    """
    chunks = list(chunks)
    if field.bits > 2 * _CHUNK and len(chunks) > 2:
        # pairs of chunks are 96-bit field elements: half the Horner steps
        if len(chunks) % 2:
            chunks.append(np.zeros_like(chunks[0]))
        pairs = []
        for lo, hi in zip(chunks[0::2], chunks[1::2], strict=True):
            el = np.empty((*lo.shape, 2), dtype=np.uint64)
            el[..., 0] = lo | (hi << np.uint64(_CHUNK))
            el[..., 1] = hi >> np.uint64(64 - _CHUNK)
            pairs.append(el)
        shift = np.broadcast_to(field.const(1 << (2 * _CHUNK)), pairs[0].shape).copy()
        acc = pairs[-1]
        for el in reversed(pairs[:-1]):
            acc = field.muladd(acc, shift, el)
        return acc
    shift = field.const(1 << _CHUNK)
    acc = np.zeros((*chunks[-1].shape, 2), dtype=np.uint64)
    acc[..., 0] = chunks[-1]
    term = np.zeros_like(acc)
    for chunk in reversed(chunks[:-1]):
        term[..., 0] = chunk
        acc = field.muladd(acc, np.broadcast_to(shift, acc.shape).copy(), term)
    return acc


def random_chunks(count: int, bits: int, prg: PRG) -> np.ndarray:
    """A uniform integer on `bits` bits per element, as 48-bit chunks (rows, low first)."""
    n_chunks = -(-bits // _CHUNK)
    words = prg.words(count * n_chunks).reshape(n_chunks, count) & _CHUNK_MASK
    top = bits - _CHUNK * (n_chunks - 1)
    words[-1] &= np.uint64((1 << top) - 1)
    return words


@dataclass(frozen=True)
class Bounds:
    """What the parameters guarantee for a quorum of `parties` over F_p (all in bits)."""

    mask_bits: int
    flood_bits: int
    noise_bits: float
    plain_bits: float
    ciphertext_bits: int
    return_limbs: int
    """RNS limbs of the ciphertexts a party returns (modulus-switched down after flooding)."""
    return_noise_bits: float
    """Worst-case noise of the sum a party decrypts, at the return level."""


class PlainSlot:
    """One BFV instance: plaintext prime t and its SEAL objects."""

    def __init__(self, t: seal.Modulus, coeff: list[seal.Modulus]) -> None:
        parms = seal.EncryptionParameters(seal.scheme_type.bfv)
        parms.set_poly_modulus_degree(POLY_DEGREE)
        parms.set_coeff_modulus(coeff)
        parms.set_plain_modulus(t)
        self.context = seal.SEALContext(parms, True, seal.sec_level_type.tc192)
        if not self.context.parameters_set():
            raise HEParameterError(f"SEAL refused the BFV parameters: "
                                   f"{self.context.parameter_error_message()}")
        self.t = t.value()
        self.encoder = seal.BatchEncoder(self.context)
        self.evaluator = seal.Evaluator(self.context)
        data = self.context.first_context_data()
        self.q_limbs = [m.value() for m in data.parms().coeff_modulus()]
        q_total = math.prod(self.q_limbs)
        self.delta = q_total // self.t
        self.return_limbs = len(self.q_limbs)
        self.return_parms_id = data.parms_id()
        self.return_header = b""
        self.flood_split: dict[int, tuple[int, np.ndarray]] = {}
        self.ntt_header = b""
        self.coeff_header = b""
        self.plain_header = b""
        self.plain_ntt_header = b""

    def parms_id_at(self, limbs: int) -> list[int]:
        """The parms_id of the level of SEAL's modulus chain with `limbs` data primes."""
        data = self.context.first_context_data()
        while len(data.parms().coeff_modulus()) > limbs:
            data = data.next_context_data()
        if len(data.parms().coeff_modulus()) != limbs:
            raise HEParameterError(f"SEAL's modulus chain has no level with {limbs} primes")
        return data.parms_id()

    def set_return_level(self, limbs: int, template: seal.Ciphertext) -> None:
        """Ciphertexts returned to their key's owner are switched down to `limbs` primes.

        `template` is any size-2 ciphertext of this instance: SEAL's own
        mod_switch_to gives the serialisation header of the lower level, which
        `flood` puts in front of the data area it writes.
        """
        self.return_limbs = limbs
        self.return_parms_id = self.parms_id_at(limbs)
        self.flood_split = {}
        low = self.evaluator.mod_switch_to(template, self.return_parms_id)
        raw = low.to_string(seal.compr_mode_type.none)
        self.return_header = bytes(raw[:len(raw) - 2 * limbs * POLY_DEGREE * 8])
        raw = template.to_string(seal.compr_mode_type.none)
        self.coeff_header = bytes(raw[:len(raw) - 2 * len(self.q_limbs) * POLY_DEGREE * 8])
        ntt = self.evaluator.transform_to_ntt(template)
        raw = ntt.to_string(seal.compr_mode_type.none)
        self.ntt_header = bytes(raw[:len(raw) - 2 * len(self.q_limbs) * POLY_DEGREE * 8])
        raw = self.encode(np.zeros(POLY_DEGREE, dtype=np.uint64)).to_bytes(
            seal.compr_mode_type.none)
        self.plain_header = bytes(raw[:len(raw) - POLY_DEGREE * 8])
        plain = self.encode(np.ones(POLY_DEGREE, dtype=np.uint64))
        self.evaluator.transform_to_ntt_inplace(plain, self.context.first_parms_id())
        raw = plain.to_bytes(seal.compr_mode_type.none)
        self.plain_ntt_header = bytes(raw[:len(raw) - len(self.q_limbs) * POLY_DEGREE * 8])
        qs = self.q_limbs
        L = len(qs)
        if not 0 < limbs < L:
            raise HEParameterError(f"returned ciphertexts must drop at least one of the {L} "
                                   f"data primes (asked to keep {limbs})")
        if max(qs) >= 2 * min(qs) or max(qs) >= 1 << 62:
            raise HEParameterError("the switching kernel reduces a residue mod one data prime "
                                   "by another with one subtraction: the data primes must lie "
                                   "within a factor 2 of each other, below 2^62")
        kept, dropped = qs[:limbs], qs[limbs:]
        q_drop = math.prod(dropped)
        self.q_drop = q_drop
        u64 = np.uint64
        # mixed radix over the dropped primes: x mod Q_drop = sum_m k_m P_m, P_m = q_K ... q_(m-1)
        self._garner = np.zeros((L, L), dtype=u64)
        self._garner_shoup = np.zeros((L, L), dtype=u64)
        for m in range(limbs, L):
            for j in range(limbs, m):
                w = pow(qs[j], -1, qs[m])
                self._garner[m, j], self._garner_shoup[m, j] = w, shoup(w, qs[m])
        self._radix = np.zeros((L, limbs), dtype=u64)  # P_m mod q_i
        self._radix_shoup = np.zeros((L, limbs), dtype=u64)
        for m in range(limbs, L):
            radix = math.prod(qs[limbs:m])
            for i, q in enumerate(kept):
                self._radix[m, i], self._radix_shoup[m, i] = radix % q, shoup(radix % q, q)
        self._drop_inv = np.array([pow(q_drop, -1, q) for q in kept], dtype=u64)
        self._drop_inv_shoup = np.array([shoup(pow(q_drop, -1, q), q) for q in kept], dtype=u64)
        half, digits = q_drop // 2, []
        for q in dropped:
            digits.append(half % q)
            half //= q
        self._half_digits = np.array(digits, dtype=u64)
        self._qs = np.array(qs, dtype=u64)
        # round(Q m / t) = floor(Q / t) m + floor(((Q mod t) m + (t + 1) / 2) / t), as SEAL
        q_total, t = math.prod(qs), self.t
        self._scale = np.array([(q_total // t) % q for q in qs], dtype=u64)
        self._scale_shoup = np.array([shoup((q_total // t) % q, q) for q in qs], dtype=u64)
        self._one_shoup = np.array([shoup(1, q) for q in qs], dtype=u64)
        self._q_mod_t = u64(q_total % t)
        self._q_mod_t_barrett = u64(((q_total % t) << 64) // t)

    def flood_extra_bits(self, bits: int) -> int:
        """k with 2^k Q_drop >= 2^(bits+1): flooding uniform on 2^k Q_drop integers covers
        [-2^bits, 2^bits]. k must stay below every kept prime's size (one limb, no carry)."""
        k = max(1, (((1 << (bits + 1)) - 1) // self.q_drop).bit_length())
        if k >= min(self.q_limbs[:self.return_limbs]).bit_length() - 1:
            raise HEParameterError(f"flooding of {bits} bits cannot be split over the "
                                   f"{len(self.q_limbs) - self.return_limbs} dropped primes")
        return k

    def encode(self, residues: np.ndarray) -> seal.Plaintext:
        """Residues mod t (uint64, length N) as a batched plaintext."""
        return self.encoder.encode(np.ascontiguousarray(residues, dtype=np.uint64))

    def coefficients(self, residues: np.ndarray) -> np.ndarray:
        """The batched plaintext of `residues` as its N polynomial coefficients (mod t)."""
        raw = self.encode(residues).to_bytes(seal.compr_mode_type.none)
        out = np.zeros(POLY_DEGREE, dtype=np.uint64)
        count = (len(raw) - len(self.plain_header)) // 8
        out[:count] = np.frombuffer(raw, dtype="<u8", offset=len(raw) - 8 * count)
        return out

    def decode(self, plain: seal.Plaintext) -> np.ndarray:
        return self.encoder.decode_uint64(plain).astype(np.uint64)


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
        # `_flood_raw` floods uniformly on W < 2^(flood_bits + 2) integers, |F| <= W / 2
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
        raw = _rerandomise_at(inst, public_ntt, product, inst.encode(r), u_ntt, flood_bits, prg)
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
        stacked = _stacked(chunks)
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
        _garner_kernel(np.ascontiguousarray(np.stack(residues)), self._moduli[:r],
                       np.ascontiguousarray(self._inv[:r, :r]),
                       np.ascontiguousarray(self._inv_shoup[:r, :r]), digits)
        P = self.field
        acc = _as_elements(digits[-1])
        for i in range(r - 2, -1, -1):
            acc = P.muladd(acc, np.repeat(P.const(self.instances[i].t)[None], acc.shape[0], 0),
                           _as_elements(digits[i]))
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
            _scale_kernel(np.ascontiguousarray(residues, dtype=np.uint64), small_error(n, prg),
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
                _minus_as_kernel(ntt[h], a, secret, secret_shoup, bfv.instances[i]._qs, c0)
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


SEED_BYTES = 32


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


def expand_uniform(inst: PlainSlot, seed: bytes) -> np.ndarray:
    """c1 of a seeded encryption: uniform mod every data prime, from a 32-byte seed."""
    prg = PRG(b"enigma.prep.seeded-c1" + seed)
    return np.stack([uniform_mod(q, POLY_DEGREE, prg) for q in inst.q_limbs])


def load_seeded(bfv: BFV, i: int, raw: bytes | memoryview, who: int) -> seal.Ciphertext:
    """A peer's seeded encryption (`Keys.encrypt_seeded`) as an NTT-form ciphertext at the
    data level, validated by SEAL (every coefficient below its prime)."""
    inst = bfv.instances[i]
    size = SEED_BYTES + len(inst.q_limbs) * POLY_DEGREE * 8
    if len(raw) != size:
        raise HEParameterError(f"party {who} sent an encrypted vector for plaintext prime {i} "
                               f"of {len(raw)} bytes; expected {size} (a seed and c0)")
    view = memoryview(raw).cast("B")
    a = expand_uniform(inst, bytes(view[:SEED_BYTES]))
    ct = seal.Ciphertext()
    try:  # one copy of the frame: the header, c0 and the expanded c1 joined
        ct.load_bytes(inst.context, b"".join([inst.ntt_header, view[SEED_BYTES:], a]))
    except Exception as exc:  # SEAL raises several types for malformed data
        raise HEParameterError(f"party {who} sent an encrypted vector for plaintext prime {i} "
                               f"that does not fit the BFV parameters: {exc}") from exc
    return ct


@njit(cache=True, nogil=True)
def _scale_kernel(m, error, qs, scale, scale_shoup, one_shoup, t, q_mod_t, barrett, out):
    """out[l, j] = floor(Q / t) m_j + floor(((Q mod t) m_j + (t + 1) / 2) / t) + e_j mod q_l.

    The fix term is found with 64-bit words only: est = mulhi(m, floor(2^64 (Q mod t) / t))
    is at most 2 below it, and the remainder (Q mod t) m + (t + 1) / 2 - t est < 3t < 2^64
    is exact in wrapping arithmetic. No branches on data (`_csub`).
    """
    n = m.shape[0]
    half = (t + np.uint64(1)) >> np.uint64(1)
    one = np.uint64(1)
    for j in range(n):
        x = m[j]
        est = _mulhi(x, barrett)
        rem = q_mod_t * x + half - t * est  # in [0, 3t): at most two corrections
        for _ in range(2):
            ge = one - ((np.uint64(np.int64(rem - t) >> np.int64(63))) & one)
            est += ge
            rem -= t * ge
        e = np.uint64(error[j] + np.int64(0))
        for limb in range(qs.shape[0]):
            q = qs[limb]
            # Shoup's product is right for any 64-bit multiplicand, so m needs no reduction
            v = _mulmod_nb(x, scale[limb], scale_shoup[limb], q)
            v = _csub(v + _mulmod_nb(est, one, one_shoup[limb], q), q)
            v = _csub(_csub(v + e + q, q), q)  # + e mod q, |e| <= 21 (e wraps as uint64)
            out[limb, j] = v


@njit(cache=True, nogil=True)
def _minus_as_kernel(ntt, a, secret, secret_shoup, qs, out):
    """out = ntt - a s mod q_l, pointwise (NTT domain); s fixed, with Shoup constants."""
    limbs, n = ntt.shape
    for limb in range(limbs):
        q = qs[limb]
        for j in range(n):
            p = _mulmod_const(a[limb, j], secret[limb, j], secret_shoup[limb, j], q)
            v = ntt[limb, j]
            out[limb, j] = v - p if v >= p else v + q - p


class PeerKeys:
    """Another party's public keys, at the data level in NTT form: encrypt zero to it."""

    def __init__(self, bfv: BFV, frames: list[bytes], who: int) -> None:
        if len(frames) != len(bfv.instances):
            raise HEParameterError(f"party {who} sent {len(frames)} public keys, expected "
                                   f"{len(bfv.instances)}: it runs other HE parameters")
        self.bfv = bfv
        self.public_ntt = []
        for s, raw in zip(bfv.instances, frames, strict=True):
            try:
                pk = s.context.from_public_str(bytes(raw))
            except Exception as exc:  # SEAL raises several types for a malformed key
                raise HEParameterError(f"party {who} sent a public key that does not fit the "
                                       f"BFV parameters: {exc}") from exc
            self.public_ntt.append(data_level_key(s, pk))


def data_level_key(inst: PlainSlot, pk: seal.PublicKey) -> seal.Ciphertext:
    """pk = (-a s + e, a) mod every prime of the key level, in NTT form (SEAL keeps it so):
    its first L limbs are the same pair mod the L data primes, an encryption of zero
    at the data level, kept as a ciphertext in NTT form."""
    raw = pk.to_string()
    n, limbs = POLY_DEGREE, len(inst.q_limbs)
    key_limbs = limbs + 1  # the special prime
    if len(raw) < 2 * key_limbs * n * 8:
        raise HEParameterError("a public key is shorter than the key level needs")
    data = np.frombuffer(raw, dtype="<u8", count=2 * key_limbs * n,
                         offset=len(raw) - 2 * key_limbs * n * 8).reshape(2, key_limbs, n)
    ct = seal.Ciphertext()
    ct.load_bytes(inst.context, inst.ntt_header + np.ascontiguousarray(data[:, :limbs]).tobytes())
    if not ct.is_ntt_form() or ct.parms_id() != inst.context.first_parms_id():
        raise HEParameterError("a public key did not give an NTT-form key at the data level")
    return ct


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


def encrypt_zero_ntt(inst: PlainSlot, public_ntt: seal.Ciphertext,
                     u_ntt: seal.Plaintext) -> seal.Ciphertext:
    """(pk_0 u, pk_1 u) for a ternary u (`ternary_ntt`), in NTT form at the data level.

    With c1's error e_1 (added by `flood`) this is SEAL's public-key encryption
    of zero without the special prime: c0 + c1 s = e u + e_1 s, at most
    2 * 21 * N. c0 gets no small error of its own: the flooding is its error.
    """
    return inst.evaluator.multiply_plain(public_ntt, u_ntt)


def rerandomise(bfv: BFV, i: int, public_ntt: seal.Ciphertext, product: seal.Ciphertext | None,
                mask: seal.Plaintext, u_ntt: seal.Plaintext, prg: PRG) -> bytearray:
    """The frame returned to the key's owner: Enc(u v + r) = product + Enc_pk(0) + r, flooded.

    `product` is Enc(u) * v in NTT form at the data level (None for v = 0).
    1. Add an encryption of zero under the owner's key (`encrypt_zero_ntt`), in NTT form.
    2. Back to coefficient form (one inverse NTT for both), add the mask r scaled as
       round(Q r / t) (SEAL's add_plain, as its encryption does).
    3. `flood`: c1 gets its small error, c0 the flooding noise; switch down; serialise.
    """
    return _rerandomise_at(bfv.instances[i], public_ntt, product, mask, u_ntt,
                           bfv.bounds.flood_bits, prg)


def _rerandomise_at(inst: PlainSlot, public_ntt: seal.Ciphertext,
                    product: seal.Ciphertext | None, mask: seal.Plaintext,
                    u_ntt: seal.Plaintext, flood_bits: int, prg: PRG) -> bytearray:
    out = encrypt_zero_ntt(inst, public_ntt, u_ntt)
    if product is not None:
        inst.evaluator.add_inplace(out, product)
    inst.evaluator.transform_from_ntt_inplace(out)
    inst.evaluator.add_plain_inplace(out, mask)
    return _flood_raw(inst, out, flood_bits, prg)


def load_ciphertext(bfv: BFV, i: int, raw: bytes | memoryview, who: int, *,
                    returned: bool = False) -> seal.Ciphertext:
    """A peer's ciphertext, validated by SEAL against instance i (size, level, coefficients).

    A vector a peer encrypted must be at the first data level; a product a peer
    `returned` (flooded and switched down) at `bounds.return_limbs` primes.
    """
    inst = bfv.instances[i]
    ct = seal.Ciphertext()
    try:
        ct.load_bytes(inst.context, bytes(raw))
    except Exception as exc:  # SEAL raises several types for malformed data
        raise HEParameterError(f"party {who} sent a ciphertext for plaintext prime {i} that "
                               f"does not fit the BFV parameters: {exc}") from exc
    if ct.save_size(seal.compr_mode_type.none) != len(raw):
        raise HEParameterError(f"party {who} sent a ciphertext for plaintext prime {i} with "
                               f"{len(raw) - ct.save_size(seal.compr_mode_type.none)} bytes "
                               "after its end")
    if ct.size() != 2 or ct.is_ntt_form():
        raise HEParameterError(f"party {who} sent a ciphertext of size {ct.size()} "
                               f"(NTT form: {ct.is_ntt_form()}); expected a fresh size-2 one")
    want = inst.return_parms_id if returned else inst.context.first_parms_id()
    if ct.parms_id() != want:
        raise HEParameterError(
            f"party {who} sent a ciphertext for plaintext prime {i} at the level of "
            f"{ct.coeff_modulus_size()} primes; expected "
            f"{inst.return_limbs if returned else len(inst.q_limbs)} "
            f"({'a returned product' if returned else 'an encrypted vector'})")
    return ct


def flood(bfv: BFV, i: int, ct: seal.Ciphertext, prg: PRG | None = None) -> bytearray:
    """ct with uniform noise of `flood_bits` added to c0, switched down, serialised for SEAL.

    SEAL serializes a ciphertext (compression off) as a header followed by its
    coefficients: polynomial-major, then RNS limb, then coefficient. Adding the
    same integer noise e (reduced mod every limb q_l) to c0 changes the
    decrypted noise by e and nothing else. Then both polynomials are divided
    by the dropped primes with rounding (SEAL's divide_and_round_q_last, one
    prime at a time), and the result is written after the header of SEAL's
    serialisation at the return level: a public, deterministic function of the
    flooded ciphertext.
    """
    if ct.size() != 2 or ct.is_ntt_form():
        raise ValueError("only size-2 ciphertexts in coefficient form can be flooded")
    return _flood_raw(bfv.instances[i], ct, bfv.bounds.flood_bits, prg or PRG())


def small_error(n: int, prg: PRG) -> np.ndarray:
    """Centred binomial errors on 2 x 21 bits (|e| <= 21, sigma 3.24), as SEAL 4 samples."""
    w = prg.words(n)
    m = np.uint64((1 << 21) - 1)
    return (np.bitwise_count(w & m).astype(np.int64)
            - np.bitwise_count((w >> np.uint64(21)) & m).astype(np.int64))


def uniform_mod(q: int, count: int, prg: PRG) -> np.ndarray:
    """`count` integers uniform on [0, q), by rejection from words of q's bit length."""
    mask = np.uint64((1 << q.bit_length()) - 1)
    out = prg.words(count) & mask
    bad = np.flatnonzero(out >= np.uint64(q))
    while bad.size:
        out[bad] = prg.words(bad.size) & mask
        bad = bad[out[bad] >= np.uint64(q)]
    return out


def _flood_raw(inst: PlainSlot, ct: seal.Ciphertext, bits: int, prg: PRG) -> bytearray:
    """Flood c0, add c1's error, switch down to the return level, serialise (see `flood`).

    The flooding F is uniform on W = 2^k Q_drop >= 2^(bits+1) integers, written
    F = f + Q_drop (E - 2^(k-1)) with f uniform on [0, Q_drop) (its mixed-radix digits
    are uniform mod each dropped prime, independent) and E uniform on [0, 2^k).
    Switching x -> floor(x / Q_drop) then gives floor((c0 + f) / Q_drop) + E - 2^(k-1):
    the kernel never reduces F mod a prime; c1 is rounded, round(c1 / Q_drop).
    """
    raw = ct.to_string(seal.compr_mode_type.none)
    n, limbs, keep = POLY_DEGREE, len(inst.q_limbs), inst.return_limbs
    src = np.frombuffer(raw, dtype="<u8", count=2 * limbs * n,
                        offset=len(raw) - 2 * limbs * n * 8).reshape(2, limbs, n)
    header = inst.return_header
    out = bytearray(len(header) + 2 * keep * n * 8)
    out[:len(header)] = header
    dst = np.frombuffer(out, dtype="<u8", offset=len(header)).reshape(2, keep, n)
    digits = np.stack([uniform_mod(q, n, prg) for q in inst.q_limbs[keep:]])
    if bits not in inst.flood_split:
        k = inst.flood_extra_bits(bits)
        inst.flood_split[bits] = (k, np.array([q - (1 << (k - 1)) for q in inst.q_limbs[:keep]],
                                              dtype=np.uint64))
    k, centre = inst.flood_split[bits]
    extra = prg.words(n) & np.uint64((1 << k) - 1)
    _flood_kernel(src, dst, digits, extra, centre, small_error(n, prg), inst._qs,
                  inst._garner, inst._garner_shoup, inst._radix, inst._radix_shoup,
                  inst._drop_inv, inst._drop_inv_shoup, inst._half_digits)
    return out


@njit(inline="always")
def _csub(a, q):
    """a - q if a >= q else a, for a < 2q < 2^63, without a comparison (no branch to mispredict)."""
    d = a - q
    return d + (q & np.uint64(np.int64(d) >> np.int64(63)))


@njit(inline="always")
def _mulmod_nb(a, w, w_shoup, q):
    """_mulmod_const with a branch-free final subtraction."""
    return _csub(a * w - _mulhi(a, w_shoup) * q, q)


@njit(cache=True, nogil=True)
def _flood_kernel(src, dst, digits, extra, centre, error, qs, garner, garner_shoup, radix,
                  radix_shoup, drop_inv, drop_inv_shoup, half_digits):
    """dst = (floor((c0 + f) / Q_drop) + E - 2^(k-1), round((c1 + e) / Q_drop)) mod kept q_i.

    Per coefficient j and polynomial: add the error e_j to c1 (|e| <= 21); the
    mixed-radix digits k_m of x mod Q_drop (Garner over the dropped primes:
    garner[m, b] = q_b^-1 mod q_m); the carry of x mod Q_drop plus f (c0, digits
    f_m = digits[., j]) or plus floor(Q_drop / 2) (c1, half_digits), digit by digit;
    then for each kept prime q_i: (x - sum_m k_m P_m) Q_drop^-1 + carry, with
    radix[m, i] = P_m mod q_i, drop_inv[i] = Q_drop^-1 mod q_i; and for c0 + E - 2^(k-1)
    (centre[i] = q_i - 2^(k-1)).

    Each step is one loop over the coefficients (independent iterations), and every
    conditional subtraction is arithmetic (`_csub`): the comparisons have random
    outcomes, and mispredicted branches made the kernel about 25 % slower.
    """
    limbs = qs.shape[0]
    keep = dst.shape[1]
    n = src.shape[2]
    x = np.empty((limbs, n), dtype=np.uint64)
    k = np.empty((limbs, n), dtype=np.uint64)
    carry = np.empty(n, dtype=np.uint64)
    for poly in range(2):
        for limb in range(limbs):
            q = qs[limb]
            for j in range(n):
                v = src[poly, limb, j]
                if poly == 1:
                    # + e mod q with |e| <= 21: v + e + q < 2q + 21, two subtractions
                    v = _csub(_csub(v + np.uint64(error[j] + np.int64(q)), q), q)
                x[limb, j] = v
        for m in range(keep, limbs):
            q = qs[m]
            for j in range(n):
                v = x[m, j]
                for b in range(keep, m):
                    v = _csub(v + q - _csub(k[b, j], q), q)
                    v = _mulmod_nb(v, garner[m, b], garner_shoup[m, b], q)
                k[m, j] = v
        for j in range(n):
            c = np.uint64(0)
            for m in range(keep, limbs):
                add = digits[m - keep, j] if poly == 0 else half_digits[m - keep]
                # carry out of k_m + add + c (< 2 q_m): 1 iff it is >= q_m
                c = np.uint64(1) - (np.uint64(np.int64(k[m, j] + add + c - qs[m]) >> np.int64(63))
                                    & np.uint64(1))
            carry[j] = c
        for i in range(keep):
            q = qs[i]
            for j in range(n):
                rem = _csub(k[keep, j], q)
                for m in range(keep + 1, limbs):
                    rem = _csub(rem + _mulmod_nb(_csub(k[m, j], q), radix[m, i],
                                                 radix_shoup[m, i], q), q)
                v = _csub(x[i, j] + q - rem, q)
                v = _csub(_mulmod_nb(v, drop_inv[i], drop_inv_shoup[i], q) + carry[j], q)
                if poly == 0:
                    v = _csub(_csub(v + extra[j], q) + centre[i], q)
                dst[poly, i, j] = v
