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
        frame = he.flood(bfv, i, product)
        flooded = he.load_ciphertext(bfv, i, frame, who=1, returned=True)
        assert flooded.coeff_modulus_size() == bfv.bounds.return_limbs == 2
        assert len(frame) < 0.51 * len(product.to_string(seal.compr_mode_type.none))
        after = keys.noise_budget(i, flooded)
        # the noise now is about 2^flood_bits Q'/Q, whatever it was before
        log_q = math.log2(math.prod(inst.q_limbs))
        log_low = math.log2(math.prod(inst.q_limbs[:2]))
        expected = bfv.bounds.flood_bits - (log_q - log_low)
        assert abs((log_low - math.log2(inst.t) - after) - expected) < 3
        assert before - after > 50
        residues.append(keys.decrypt(i, flooded))
    assert np.array_equal(bfv.reconstruct(residues), F.mul(x, y))


def _shifts(ours: bytes, theirs: bytes, inst) -> np.ndarray:
    """(ours - theirs) per polynomial and coefficient as an integer, the same mod every kept
    prime (else None): what flooding and c1's error changed after switching down."""
    n, keep = he.POLY_DEGREE, inst.return_limbs
    a, b = (np.frombuffer(x, dtype="<u8", offset=len(x) - 2 * keep * n * 8).reshape(2, keep, n)
            for x in (ours, theirs))
    out = []
    for i in range(keep):
        q = inst.q_limbs[i]
        d = (a[:, i].astype(object) - b[:, i].astype(object)) % q
        out.append(np.where(d > q // 2, d - q, d))
    assert all((o == out[0]).all() for o in out)
    return out[0]


def test_switching_down_is_seal_switching_plus_an_integer_flood(bfv, keys):
    inst = bfv.instances[3]
    ct = keys.encrypt(3, inst.encode(bfv.field_residues(F.random(he.POLY_DEGREE))[3]))
    ours = bytes(he.flood(bfv, 3, ct))
    theirs = inst.evaluator.mod_switch_to(ct, inst.return_parms_id).to_string(
        seal.compr_mode_type.none)
    assert ours[:113] == theirs[:113]  # SEAL's own header for the lower level
    shift = _shifts(ours, theirs, inst)
    half = 1 << (inst.flood_extra_bits(bfv.bounds.flood_bits) - 1)  # E - 2^(k-1), plus carry
    assert abs(shift[0]).max() <= half + 1 and shift[0].min() < -half // 2 < half // 2 < \
        shift[0].max()
    assert set(np.unique(shift[1]).tolist()) <= {-1, 0, 1}  # c1: (c1 + e) / Q_drop rounded


def test_the_start_up_check_refuses_a_return_level_that_is_not_exact(bfv):
    bfv._check_return(bfv.instances[0], bfv.bounds.flood_bits)
    with pytest.raises(he.HEParameterError, match="does not decrypt exactly"):
        bfv._check_return(bfv.instances[0], 160)  # flooding that swamps Delta' = Q' / t


def test_garbage_and_foreign_ciphertexts_are_refused_with_the_sender_named(bfv, keys):
    with pytest.raises(he.HEParameterError, match="party 2"):
        he.load_ciphertext(bfv, 0, b"\x00" * 100, who=2)
    inst = bfv.instances[1]
    ct = keys.encrypt(1, inst.encode(np.zeros(he.POLY_DEGREE, np.uint64)))
    with pytest.raises(he.HEParameterError, match="party 1"):  # made for another prime
        he.load_ciphertext(bfv, 0, ct.to_string(seal.compr_mode_type.none), who=1)


def test_ciphertexts_at_the_wrong_level_are_refused(bfv, keys):
    inst = bfv.instances[0]
    ct = keys.encrypt(0, inst.encode(np.ones(he.POLY_DEGREE, np.uint64)))
    full = ct.to_string(seal.compr_mode_type.none)
    low = he.flood(bfv, 0, ct)
    with pytest.raises(he.HEParameterError, match=r"party 2 .* level of 4 primes; expected 2"):
        he.load_ciphertext(bfv, 0, full, who=2, returned=True)
    with pytest.raises(he.HEParameterError, match=r"party 1 .* level of 2 primes; expected 4"):
        he.load_ciphertext(bfv, 0, low, who=1)
    mid = inst.evaluator.mod_switch_to_next(ct).to_string(seal.compr_mode_type.none)
    with pytest.raises(he.HEParameterError, match="level of 3 primes"):
        he.load_ciphertext(bfv, 0, mid, who=1, returned=True)


def test_truncated_and_tampered_returned_frames_are_refused(bfv, keys):
    inst = bfv.instances[2]
    ct = keys.encrypt(2, inst.encode(np.ones(he.POLY_DEGREE, np.uint64)))
    frame = he.flood(bfv, 2, ct)
    he.load_ciphertext(bfv, 2, frame, who=1, returned=True)
    with pytest.raises(he.HEParameterError, match="party 1"):
        he.load_ciphertext(bfv, 2, frame[:-8], who=1, returned=True)
    with pytest.raises(he.HEParameterError, match="party 1"):
        he.load_ciphertext(bfv, 2, frame + b"\x00" * 8, who=1, returned=True)
    unreduced = bytearray(frame)
    unreduced[-8:] = (inst.q_limbs[1]).to_bytes(8, "little")  # a coefficient equal to q
    with pytest.raises(he.HEParameterError, match="party 2"):
        he.load_ciphertext(bfv, 2, unreduced, who=2, returned=True)
    foreign = bytearray(frame)
    foreign[16:48] = bytes(32)  # a parms_id this context does not know
    with pytest.raises(he.HEParameterError, match="party 2"):
        he.load_ciphertext(bfv, 2, foreign, who=2, returned=True)


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


def test_data_level_encryptions_of_zero_are_fresh_and_small(bfv, keys):
    inst = bfv.instances[4]
    peer = he.PeerKeys(bfv, keys.public_bytes(), who=1)
    prg = PRG()
    zs = [inst.evaluator.transform_from_ntt(
        he.encrypt_zero_ntt(inst, peer.public_ntt[4], he.ternary_ntt(bfv, 5, prg)[4]))
        for _ in range(2)]
    assert zs[0].to_string(seal.compr_mode_type.none) != zs[1].to_string(
        seal.compr_mode_type.none)
    bound = math.log2(2 * he.NOISE_BOUND * he.POLY_DEGREE)  # e u + e_1 s, e_1 not yet added
    for z in zs:
        assert not keys.decrypt(4, z).any()
        assert keys.noise_budget(4, z) >= math.floor(math.log2(inst.delta) - 1 - bound) - 1


def test_a_returned_product_decrypts_to_the_masked_product(bfv, keys):
    inst = bfv.instances[1]
    peer = he.PeerKeys(bfv, keys.public_bytes(), who=1)
    n, t = he.POLY_DEGREE, inst.t
    words = PRG().words(3 * n) % np.uint64(t)
    x, y, r = words[:n], words[n:2 * n], words[2 * n:]
    ct = inst.evaluator.transform_to_ntt(keys.encrypt(1, inst.encode(x)))
    plain = inst.encode(y)
    inst.evaluator.transform_to_ntt_inplace(plain, ct.parms_id())
    prg = PRG()
    frame = he.rerandomise(bfv, 1, peer.public_ntt[1], inst.evaluator.multiply_plain(ct, plain),
                           inst.encode(r), he.ternary_ntt(bfv, 2, prg)[1], prg)
    got = keys.decrypt(1, he.load_ciphertext(bfv, 1, frame, who=2, returned=True))
    assert got.tolist() == [(int(a) * int(b) + int(c)) % t for a, b, c in zip(x, y, r,
                                                                              strict=True)]


def test_seeded_encryptions_decrypt_and_are_half_a_ciphertext(bfv, keys):
    n = he.POLY_DEGREE
    x = F.random(n)
    res = bfv.field_residues(x)
    items = [(i, inst.coefficients(res[i])) for i, inst in enumerate(bfv.instances)]
    prg = PRG()
    frames = keys.encrypt_seeded(items, prg)
    again = keys.encrypt_seeded(items[:1], prg)[0]
    assert again[:he.SEED_BYTES] != frames[0][:he.SEED_BYTES] and again[32:] != frames[0][32:]
    full = keys.encrypt(0, bfv.instances[0].encode(res[0])).to_string(seal.compr_mode_type.none)
    assert len(frames[0]) < 0.51 * len(full)
    for i, inst in enumerate(bfv.instances):
        ct = he.load_seeded(bfv, i, frames[i], who=1)
        assert ct.is_ntt_form() and ct.parms_id() == inst.context.first_parms_id()
        plain = inst.evaluator.transform_from_ntt(ct)
        assert np.array_equal(keys.decrypt(i, plain), res[i])
        reference = keys.encrypt(i, inst.encode(res[i]))  # SEAL's own symmetric encryption
        assert abs(keys.noise_budget(i, plain) - keys.noise_budget(i, reference)) <= 1


def test_truncated_and_tampered_seeded_frames_are_refused(bfv, keys):
    inst = bfv.instances[0]
    m = inst.coefficients(np.arange(he.POLY_DEGREE, dtype=np.uint64))
    frame = keys.encrypt_seeded([(0, m)], PRG())[0]
    with pytest.raises(he.HEParameterError, match=r"party 2 .* bytes; expected"):
        he.load_seeded(bfv, 0, frame[:-8], who=2)
    with pytest.raises(he.HEParameterError, match=r"party 2 .* bytes; expected"):
        he.load_seeded(bfv, 0, frame + b"\x00", who=2)
    unreduced = bytearray(frame)
    unreduced[he.SEED_BYTES:he.SEED_BYTES + 8] = inst.q_limbs[0].to_bytes(8, "little")
    with pytest.raises(he.HEParameterError, match=r"party 1 .* does not fit"):
        he.load_seeded(bfv, 0, bytes(unreduced), who=1)
    other = bytearray(frame)
    other[0] ^= 1  # another seed: another c1, so decryption gives noise, not m
    ct = inst.evaluator.transform_from_ntt(he.load_seeded(bfv, 0, bytes(other), who=1))
    assert not np.array_equal(keys.decrypt(0, ct), np.arange(he.POLY_DEGREE))


@pytest.mark.parametrize("bits", [40, 96, 144, 192, 231, 294])
def test_masks_of_every_size_reduce_mod_p_and_mod_the_primes(bfv, bits):
    chunks = he.random_chunks(64, bits, PRG())
    ints = [sum(int(c[j]) << (48 * k) for k, c in enumerate(chunks)) for j in range(64)]
    assert he.reduce_chunks(chunks, F).tolist() == F.from_ints(ints).tolist()
    for inst, r in zip(bfv.instances, bfv.residues(chunks), strict=True):
        assert r.tolist() == [v % inst.t for v in ints]


def test_freed_buffers_stay_in_the_heap_under_glibc():
    import platform

    assert he.keep_freed_memory() is (platform.libc_ver()[0] == "glibc")
