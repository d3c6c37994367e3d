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
must not reveal, through its noise, the plaintext it multiplied by. SEAL 4
encrypts zero at the key level and divides by the special prime (fresh noise
at most N/2 + 2), and scales a plaintext m to round(Q m / t) exactly; so after
ciphertext x plaintext the noise is at most V = N t (N/2 + 3), about 2^87.
The returned ciphertext is flooded with uniform noise on 2^40 N V, which
makes it 2^-40-close to one whose noise does not depend on the multiplier
(noise flooding, Damgard et al., SPDZ, CRYPTO 2012, section 6). Decryption
stays correct while the noise is below Delta / 2 = Q / 2t: N = 16384 with
Q = 4 x 55 bits holds it for up to 2^16 parties, N = 8192 (Q <= 218 bits at
128-bit security, special prime included) cannot. At start-up, one product is
measured against V, so a SEAL that behaves otherwise is refused. See
docs/preprocessing.md for the numbers and the security level.
"""

from __future__ import annotations

import math
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
            acc = _mulmod_const(acc, w, w_shoup, q) + chunks[k, j]
            if acc >= q:
                acc -= q
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
                d = digits[k, j] % t
                v = v - d if v >= d else v + t - d
                v = _mulmod_const(v, inv[i, k], inv_shoup[i, k], t)
            digits[i, j] = v


def shoup(w: int, q: int) -> int:
    return (w << 64) // q


def reduce_mod(chunks: list[np.ndarray], q: int) -> np.ndarray:
    """sum_k chunks[k] 2^(48 k) mod q for a modulus 2^48 <= q < 2^62, as uint64."""
    stacked = np.ascontiguousarray(np.stack(chunks))
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


def reduce_chunks(chunks: list[np.ndarray], field: Field) -> np.ndarray:
    """sum_k chunks[k] 2^(48 k) mod field.p, by Horner's rule with the field's kernels.

    Every chunk must be below field.p, which holds for 48-bit chunks and moduli
    of 49 bits or more.
    """
    shift = field.const(1 << _CHUNK)
    acc = np.zeros((*chunks[-1].shape, 2), dtype=np.uint64)
    acc[..., 0] = chunks[-1]
    term = np.zeros_like(acc)
    for chunk in reversed(chunks[:-1]):
        term[..., 0] = chunk
        acc = field.muladd(acc, np.broadcast_to(shift, acc.shape).copy(), term)
    return acc


def random_chunks(count: int, bits: int, prg: PRG) -> list[np.ndarray]:
    """A uniform integer on `bits` bits per element, as 48-bit chunks (low first)."""
    n_chunks = -(-bits // _CHUNK)
    words = prg.words(count * n_chunks).reshape(n_chunks, count) & _CHUNK_MASK
    top = bits - _CHUNK * (n_chunks - 1)
    words[-1] &= np.uint64((1 << top) - 1)
    return list(words)


@dataclass(frozen=True)
class Bounds:
    """What the parameters guarantee for a quorum of `parties` over F_p (all in bits)."""

    mask_bits: int
    flood_bits: int
    noise_bits: float
    plain_bits: float
    ciphertext_bits: int


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

    def encode(self, residues: np.ndarray) -> seal.Plaintext:
        """Residues mod t (uint64, length N) as a batched plaintext."""
        return self.encoder.encode(np.ascontiguousarray(residues, dtype=np.uint64))

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

    def _check_noise(self, mask_bits: int, plain_needed: int) -> Bounds:
        """Flooding size, and a proof (by worst-case bounds) that decryption stays exact.

        1. Fresh: zero encrypted at the key level has noise <= 21 (2N + 1); dividing
           by the special prime p_s with rounding leaves <= that / p_s + 1/2 + N/2.
        2. Product by a plaintext with coefficients < t: the rounding of
           round(Q m / t) (<= 1/2) and the fresh noise are multiplied by at most N t.
        3. Flood with 2^40 N V; the decrypting party sums q - 1 such ciphertexts.
        """
        n = POLY_DEGREE
        t = max(s.t for s in self.instances)
        key_level = NOISE_BOUND * (2 * n + 1)
        fresh = -(-key_level >> SPECIAL_PRIME_BITS) + n // 2 + 1
        after_mul = n * t * (fresh + 1)
        flood_bits = math.ceil(math.log2(n * after_mul)) + STAT_BITS
        total = (self.parties - 1) * ((1 << flood_bits) + after_mul + fresh + 1)
        delta = min(s.delta for s in self.instances)
        if 2 * total >= delta:
            raise HEParameterError(
                f"BFV noise {math.log2(total):.1f} bits would exceed half of Delta "
                f"({math.log2(delta) - 1:.1f} bits) for {self.parties} parties: use fewer "
                "parties per quorum or a larger ciphertext modulus")
        self._check_library(after_mul)
        return Bounds(mask_bits, flood_bits, math.log2(total), math.log2(plain_needed),
                      sum(DATA_PRIME_BITS) + SPECIAL_PRIME_BITS)

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

    def _garner_constants(self) -> None:
        """inv[i, j] = t_j^-1 mod t_i for j < i (mixed-radix CRT, Garner 1959)."""
        r = len(self.instances)
        self._moduli = np.array([s.t for s in self.instances], dtype=np.uint64)
        self._inv = np.zeros((r, r), dtype=np.uint64)
        self._inv_shoup = np.zeros((r, r), dtype=np.uint64)
        for i, si in enumerate(self.instances):
            for j, sj in enumerate(self.instances[:i]):
                w = pow(sj.t, -1, si.t)
                self._inv[i, j], self._inv_shoup[i, j] = w, shoup(w, si.t)

    # ------------------------------------------------------------------ conversions

    def residues(self, chunks: list[np.ndarray]) -> list[np.ndarray]:
        """An integer given as 48-bit chunks, reduced mod every t_i (uint64 arrays)."""
        return [reduce_mod(chunks, s.t) for s in self.instances]

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

    def encrypt(self, i: int, plain: seal.Plaintext) -> seal.Ciphertext:
        """Encrypt under my own secret key (what I send for others to multiply).

        Secret-key RLWE encryption hides as well as the public-key form, has less
        noise (|e| <= 21) and costs about half (measured 5.5 ms against 9.8 ms).
        """
        return self._encryptors[i].encrypt_symmetric(plain)

    def public_bytes(self) -> list[bytes]:
        return [pk.to_string() for pk in self.public]

    def decrypt(self, i: int, ct: seal.Ciphertext) -> np.ndarray:
        return self.bfv.instances[i].decode(self._decryptors[i].decrypt(ct))

    def noise_budget(self, i: int, ct: seal.Ciphertext) -> int:
        """Bits of noise budget left: for tests and measurements, never sent anywhere."""
        return self._decryptors[i].invariant_noise_budget(ct)


class PeerKeys:
    """Another party's public keys: encrypt to it and check what it sends."""

    def __init__(self, bfv: BFV, frames: list[bytes], who: int) -> None:
        if len(frames) != len(bfv.instances):
            raise HEParameterError(f"party {who} sent {len(frames)} public keys, expected "
                                   f"{len(bfv.instances)}: it runs other HE parameters")
        self.bfv = bfv
        self.encryptors = []
        for s, raw in zip(bfv.instances, frames, strict=True):
            try:
                pk = s.context.from_public_str(bytes(raw))
            except Exception as exc:  # SEAL raises several types for a malformed key
                raise HEParameterError(f"party {who} sent a public key that does not fit the "
                                       f"BFV parameters: {exc}") from exc
            self.encryptors.append(seal.Encryptor(s.context, pk))


def load_ciphertext(bfv: BFV, i: int, raw: bytes | memoryview, who: int) -> seal.Ciphertext:
    """A peer's ciphertext, validated by SEAL against instance i (size, level, coefficients)."""
    ct = seal.Ciphertext()
    try:
        ct.load_bytes(bfv.instances[i].context, bytes(raw))
    except Exception as exc:  # SEAL raises several types for malformed data
        raise HEParameterError(f"party {who} sent a ciphertext for plaintext prime {i} that "
                               f"does not fit the BFV parameters: {exc}") from exc
    if ct.size() != 2 or ct.is_ntt_form():
        raise HEParameterError(f"party {who} sent a ciphertext of size {ct.size()} "
                               f"(NTT form: {ct.is_ntt_form()}); expected a fresh size-2 one")
    return ct


def flood(bfv: BFV, i: int, ct: seal.Ciphertext, prg: PRG | None = None) -> bytearray:
    """Serialize ct with uniform noise of `flood_bits` added to its first polynomial.

    SEAL serializes a ciphertext (compression off) as a header followed by its
    coefficients: polynomial-major, then RNS limb, then coefficient. Adding the
    same integer noise e (reduced mod every limb q_l) to c0 changes the
    decrypted noise by e and nothing else.
    """
    inst = bfv.instances[i]
    if ct.size() != 2 or ct.is_ntt_form():
        raise ValueError("only size-2 ciphertexts in coefficient form can be flooded")
    raw = bytearray(ct.to_string(seal.compr_mode_type.none))
    n, limbs = POLY_DEGREE, len(inst.q_limbs)
    data_bytes = 2 * limbs * n * 8
    offset = len(raw) - data_bytes
    c0 = np.frombuffer(raw, dtype="<u8", count=limbs * n, offset=offset).reshape(limbs, n)
    bits = bfv.bounds.flood_bits
    words = np.stack(random_chunks(n, bits + 1, prg or PRG()))  # uniform in [0, 2^(bits+1))
    qs = np.array(inst.q_limbs, dtype=np.uint64)
    w = [(1 << _CHUNK) % q for q in inst.q_limbs]
    _flood_kernel(words, qs, np.array(w, dtype=np.uint64),
                  np.array([shoup(x, q) for x, q in zip(w, inst.q_limbs, strict=True)],
                           dtype=np.uint64),
                  np.array([q - (1 << bits) % q for q in inst.q_limbs], dtype=np.uint64), c0)
    return raw


@njit(cache=True, nogil=True)
def _flood_kernel(chunks, qs, w, w_shoup, centre, c0):
    """c0[l, j] += (sum_k chunks[k, j] 2^(48 k) - 2^bits) mod q_l, in one pass over j.

    centre[l] = q_l - 2^bits mod q_l; chunks below 2^48 <= q_l.
    """
    count, n = chunks.shape
    for j in range(n):
        for limb in range(qs.shape[0]):
            q = qs[limb]
            acc = chunks[count - 1, j]
            for k in range(count - 2, -1, -1):
                acc = _mulmod_const(acc, w[limb], w_shoup[limb], q) + chunks[k, j]
                if acc >= q:
                    acc -= q
            acc += centre[limb]
            if acc >= q:
                acc -= q
            acc += c0[limb, j]
            if acc >= q:
                acc -= q
            c0[limb, j] = acc
