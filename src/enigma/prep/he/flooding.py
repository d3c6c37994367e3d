"""Noise flooding of a returned product, and its switch down to the return level.

A party returns Enc(u v + r) to the key's owner. Its noise depends on v, so before it
leaves, the product is re-randomised with an encryption of zero and flooded with uniform
noise 2^40 times larger than the noise bound, which makes it 2^-40-close to a ciphertext
whose noise does not depend on v (noise flooding: Damgard et al., SPDZ, CRYPTO 2012,
section 6). It is then switched down to fewer data primes, a public function of the
flooded ciphertext. params.py gives the bounds.
"""

from __future__ import annotations

import numpy as np
import seal

from enigma.field import PRG

from .encryption import encrypt_zero_ntt, small_error, uniform_mod
from .instance import PlainSlot
from .kernels import flood_kernel
from .params import POLY_DEGREE


def rerandomise_at(inst: PlainSlot, public_ntt: seal.Ciphertext,
                    product: seal.Ciphertext | None, mask: seal.Plaintext,
                    u_ntt: seal.Plaintext, flood_bits: int, prg: PRG) -> bytearray:
    out = encrypt_zero_ntt(inst, public_ntt, u_ntt)
    if product is not None:
        inst.evaluator.add_inplace(out, product)
    inst.evaluator.transform_from_ntt_inplace(out)
    inst.evaluator.add_plain_inplace(out, mask)
    return flood_raw(inst, out, flood_bits, prg)


def flood_raw(inst: PlainSlot, ct: seal.Ciphertext, bits: int, prg: PRG) -> bytearray:
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
    flood_kernel(src, dst, digits, extra, centre, small_error(n, prg), inst._qs,
                  inst._garner, inst._garner_shoup, inst._radix, inst._radix_shoup,
                  inst._drop_inv, inst._drop_inv_shoup, inst._half_digits)
    return out
