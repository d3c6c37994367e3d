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

The modules follow those parts: `params` (the parameters and their bounds), `kernels` (the
compiled loops), `chunks` (wide integers as 48-bit limbs), `instance` (one plaintext prime's
SEAL context), `encryption` (sampling, seeded and data-level encryption), `flooding`
(re-randomising and flooding a returned product), `bfv` (the quorum's instances, CRT, keys)
and `frames` (what parties send each other); `memory` tunes the allocator for the batches.
The triple protocol built on them is prep/pairwise.py.
"""

from .bfv import BFV, Keys, ternary_ntt
from .chunks import chunks_of_field, random_chunks, reduce_chunks, reduce_mod
from .encryption import SEED_BYTES, data_level_key, encrypt_zero_ntt, small_error, uniform_mod
from .frames import PeerKeys, flood, load_ciphertext, load_seeded, rerandomise
from .instance import PlainSlot
from .memory import keep_freed_memory
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

__all__ = [
    "BFV",
    "DATA_PRIME_BITS",
    "MAC_KEY_BITS",
    "NOISE_BOUND",
    "PLAIN_PRIME_BITS",
    "POLY_DEGREE",
    "SEED_BYTES",
    "SPECIAL_PRIME_BITS",
    "STAT_BITS",
    "Bounds",
    "HEParameterError",
    "Keys",
    "PeerKeys",
    "PlainSlot",
    "chunks_of_field",
    "data_level_key",
    "encrypt_zero_ntt",
    "flood",
    "keep_freed_memory",
    "load_ciphertext",
    "load_seeded",
    "random_chunks",
    "reduce_chunks",
    "reduce_mod",
    "rerandomise",
    "small_error",
    "ternary_ntt",
    "uniform_mod",
]
