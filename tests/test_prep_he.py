"""BFV over several plaintext primes: residues, CRT, flooding, and what a peer may send."""

import math

import numpy as np
import pytest
import seal
from hypothesis import given
from hypothesis import strategies as st

from enigma.field import PRG, Field
from enigma.prep import he

F = Field()


@pytest.fixture(scope="module")
def bfv():
    return he.BFV(F, 3)


@pytest.fixture(scope="module")
def keys(bfv):
    return bfv.keygen()


def test_plaintext_primes_cover_the_largest_masked_sum(bfv):
    bound = 2 * ((F.p - 1) ** 2 + (1 << (2 * 127 + 40)))
    assert bfv.plain_product > bound
    assert all(s.t % (2 * he.POLY_DEGREE) == 1 and s.t < 2**60 for s in bfv.instances)
    assert len({s.t for s in bfv.instances}) == len(bfv.instances) == 5
    assert len(bfv.instances[0].q_limbs) == 4 and bfv.bounds.ciphertext_bits <= 305  # 192-bit


@given(st.lists(st.integers(0, F.p - 1), min_size=1, max_size=40))
def test_field_residues_match_python_integers(bfv, values):
    residues = bfv.field_residues(F.from_ints(values))
    for inst, r in zip(bfv.instances, residues, strict=True):
        assert r.tolist() == [v % inst.t for v in values]


@given(st.lists(st.integers(0, 2**296), min_size=1, max_size=40))
def test_crt_reconstructs_the_integer_mod_p(bfv, values):
    residues = [np.array([v % s.t for v in values], dtype=np.uint64) for s in bfv.instances]
    got = F.to_ints(bfv.reconstruct(residues)).tolist()
    assert got == [v % F.p for v in values]


def test_random_chunks_and_reduce_agree_with_python(bfv):
    chunks = he.random_chunks(50, 294, PRG(b"0123456789abcdef"))
    ints = [sum(int(c[j]) << (48 * k) for k, c in enumerate(chunks)) for j in range(50)]
    assert max(ints) < 2**294 and max(ints) > 2**290
    assert he.reduce_chunks(chunks, F).tolist() == F.from_ints(ints).tolist()
    t = bfv.instances[2].t
    assert he.reduce_mod(chunks, t).tolist() == [v % t for v in ints]


def test_flooding_keeps_the_product_and_spends_the_predicted_noise(bfv, keys):
    n = he.POLY_DEGREE
    x, y = F.random(n), F.random(n)
    rx, ry = bfv.field_residues(x), bfv.field_residues(y)
    residues = []
    for i, inst in enumerate(bfv.instances):
        ct = keys.encrypt(i, inst.encode(rx[i]))
        product = inst.evaluator.multiply_plain(ct, inst.encode(ry[i]))
        before = keys.noise_budget(i, product)
        flooded = he.load_ciphertext(bfv, i, he.flood(bfv, i, product), who=1)
        after = keys.noise_budget(i, flooded)
        # the noise now is about 2^flood_bits, whatever it was before
        log_q = math.log2(math.prod(inst.q_limbs))
        assert abs((log_q - math.log2(inst.t) - after) - bfv.bounds.flood_bits) < 3
        assert before - after > 50
        residues.append(keys.decrypt(i, flooded))
    assert np.array_equal(bfv.reconstruct(residues), F.mul(x, y))


def test_garbage_and_foreign_ciphertexts_are_refused_with_the_sender_named(bfv, keys):
    with pytest.raises(he.HEParameterError, match="party 2"):
        he.load_ciphertext(bfv, 0, b"\x00" * 100, who=2)
    inst = bfv.instances[1]
    ct = keys.encrypt(1, inst.encode(np.zeros(he.POLY_DEGREE, np.uint64)))
    with pytest.raises(he.HEParameterError, match="party 1"):  # made for another prime
        he.load_ciphertext(bfv, 0, ct.to_string(seal.compr_mode_type.none), who=1)


def test_public_keys_of_the_wrong_shape_are_refused(bfv, keys):
    with pytest.raises(he.HEParameterError, match="party 1 sent 4 public keys"):
        he.PeerKeys(bfv, keys.public_bytes()[:4], who=1)
    with pytest.raises(he.HEParameterError, match="party 2"):
        he.PeerKeys(bfv, [b"junk"] * 5, who=2)


def test_a_quorum_too_large_for_the_noise_budget_is_refused():
    with pytest.raises(he.HEParameterError, match="fewer parties"):
        he.BFV(F, 1 << 26)


def test_a_seal_noisier_than_the_bound_is_refused(bfv):
    bfv._check_library(after_mul=1 << 88)  # about the real bound: SEAL stays below it
    with pytest.raises(he.HEParameterError, match=r"seal-python==4\.4\.0"):
        bfv._check_library(after_mul=1 << 40)  # a bound SEAL's real noise (2^73) exceeds


@pytest.mark.parametrize("parties", [2, 3, 32])
def test_mac_key_products_fit_in_one_prime_fewer(parties):
    bfv = he.BFV(F, parties)
    assert bfv.mac_primes == len(bfv.instances) - 1 == 4
    for primes, mask_bits in bfv.mask_bits_by_primes.items():
        u_bits = he.MAC_KEY_BITS if primes == bfv.mac_primes else F.bits
        assert mask_bits >= u_bits + F.bits + he.STAT_BITS
        largest = (parties - 1) * ((1 << (u_bits + F.bits)) + (1 << mask_bits))
        assert math.prod(s.t for s in bfv.instances[:primes]) > largest


def test_a_largest_mac_key_product_is_exact_from_four_primes(bfv):
    alpha = (1 << he.MAC_KEY_BITS) - 1
    x = [F.p - 1, 1, 12345]
    mask = (1 << bfv.mask_bits_by_primes[bfv.mac_primes]) - 1
    ints = [2 * (alpha * v + mask) for v in x]  # two peers' masked products, summed
    residues = [np.array([v % s.t for v in ints], dtype=np.uint64)
                for s in bfv.instances[:bfv.mac_primes]]
    assert F.to_ints(bfv.reconstruct(residues)).tolist() == [v % F.p for v in ints]
