"""BFV over several plaintext primes, and the bounds that make its products exact and private.

BFV plaintext moduli are at most 60 bits here (Microsoft SEAL through seal-python), but the
pairwise products of the preprocessing live in F_p with p = 2^127 - 1; so each product is
computed modulo several plaintext primes and put together by the CRT (bfv.py says why and
how many). The ciphertext a node returns must not reveal, through its noise, the plaintext
it multiplied by; so it is flooded with noise (Damgard et al., SPDZ, CRYPTO 2012, section 6)
on parameters whose bounds params.py proves. docs/preprocessing.md gives the numbers and
the security level.

The modules: `params` (the parameters and their bounds), `kernels` (the
compiled loops), `chunks` (wide integers as 48-bit limbs), `instance` (one plaintext prime's
SEAL context), `encryption` (sampling, seeded and data-level encryption), `flooding`
(re-randomising and flooding a returned product), `bfv` (the quorum's instances, CRT, keys)
and `frames` (what parties send each other); `memory` tunes the allocator for the batches.
The triple protocol built on them is prep/pairwise.py.
"""

from .bfv import BFV, Keys, shared_bfv, ternary_ntt
from .chunks import random_chunks, reduce_chunks, reduce_mod
from .encryption import SEED_BYTES, encrypt_zero_ntt
from .frames import PeerKeys, flood, load_ciphertext, load_seeded, rerandomise
from .memory import keep_freed_memory
from .params import MAC_KEY_BITS, NOISE_BOUND, POLY_DEGREE, STAT_BITS, HEParameterError

__all__ = [
    "BFV",
    "MAC_KEY_BITS",
    "NOISE_BOUND",
    "POLY_DEGREE",
    "SEED_BYTES",
    "STAT_BITS",
    "HEParameterError",
    "Keys",
    "PeerKeys",
    "encrypt_zero_ntt",
    "flood",
    "keep_freed_memory",
    "load_ciphertext",
    "load_seeded",
    "random_chunks",
    "reduce_chunks",
    "reduce_mod",
    "rerandomise",
    "shared_bfv",
    "ternary_ntt",
]
