"""One BFV instance: a plaintext prime t, its SEAL objects, and its level switching.

The quorum's products are computed modulo several plaintext primes (bfv.py); each prime is
one SEAL context sharing the same data primes. Besides SEAL's objects, an instance holds the
serialisation headers and the constants the compiled kernels need to write ciphertexts
directly (scaling, flooding, switching down to the return level).
"""

from __future__ import annotations

import math

import numpy as np
import seal

from .kernels import shoup
from .params import POLY_DEGREE, HEParameterError


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
