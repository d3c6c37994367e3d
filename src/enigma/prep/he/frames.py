"""What parties send each other: public keys, encrypted vectors, returned products.

Every frame from a peer is validated against the BFV parameters before use (SEAL checks
sizes, levels and coefficients), and a frame that does not fit names the peer who sent it.
The returned product is built here from an instance's flooding (flooding.py).
"""

from __future__ import annotations

import seal

from enigma.field import PRG

from .bfv import BFV
from .encryption import SEED_BYTES, data_level_key, expand_uniform
from .flooding import flood_raw, rerandomise_at
from .params import POLY_DEGREE, HEParameterError


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


def rerandomise(bfv: BFV, i: int, public_ntt: seal.Ciphertext, product: seal.Ciphertext | None,
                mask: seal.Plaintext, u_ntt: seal.Plaintext, prg: PRG) -> bytearray:
    """The frame returned to the key's owner: Enc(u v + r) = product + Enc_pk(0) + r, flooded.

    `product` is Enc(u) * v in NTT form at the data level (None for v = 0).
    1. Add an encryption of zero under the owner's key (`encrypt_zero_ntt`), in NTT form.
    2. Back to coefficient form (one inverse NTT for both), add the mask r scaled as
       round(Q r / t) (SEAL's add_plain, as its encryption does).
    3. `flood`: c1 gets its small error, c0 the flooding noise; switch down; serialise.
    """
    return rerandomise_at(bfv.instances[i], public_ntt, product, mask, u_ntt,
                           bfv.bounds.flood_bits, prg)


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
    return flood_raw(bfv.instances[i], ct, bfv.bounds.flood_bits, prg or PRG())
