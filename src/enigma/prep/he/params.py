"""The BFV parameters of the pairwise products, and the bounds they are checked against.

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

from dataclasses import dataclass


class HEParameterError(ValueError):
    """The BFV parameters cannot hold the computation asked of them."""


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
