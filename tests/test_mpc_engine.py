"""The SPDZ online phase between 3 real processes: results against plaintext, tampering,
drop-outs, and what one party sees."""

import time

import numpy as np
import pytest

from enigma.field import Field
from enigma.mpc.runner import PartyFailed, run_local
from enigma.prep.dealer import DealerFactory, InsecureDealerError, TrustedDealer

from . import mpc_programs as prog

F = Field()
DEALER = DealerFactory(b"test-seed-0123456789abcdef012345", insecure=True)


@pytest.mark.parametrize("king_threshold", [1 << 30, 1], ids=["broadcast", "king"])
def test_arithmetic_matches_plaintext_and_output_goes_to_one_party(king_threshold):
    rng = np.random.default_rng(7)
    xs = np.concatenate([[0, 1, -1, 2**31, -(2**31)], rng.integers(-(2**31), 2**31, 95)])
    ys = np.concatenate([[0, -1, 1, -(2**31), 2**31 - 1], rng.integers(-(2**31), 2**31, 95)])
    results = run_local(prog.arithmetic, args=(xs, ys), provider_factory=DEALER,
                        engine_kwargs={"king_threshold": king_threshold})
    assert all(v is None for r in results[:2] for v in r.values())
    got = {k: F.to_int64(v) for k, v in results[2].items()}
    assert got["prod"].tolist() == (xs * ys).tolist()
    assert got["lin"].tolist() == (xs * 3 - ys + 7).tolist()
    assert got["square"].tolist() == (xs * xs).tolist()
    assert int(got["dot"]) == int(np.dot(xs.astype(object), ys.astype(object)))
    assert int(got["sum"]) == int(xs.sum() + ys.sum())


@pytest.mark.parametrize("bits", [64, 20])
def test_comparison_equality_truncation_against_plaintext(bits):
    half = 1 << (bits - 1)
    rng = np.random.default_rng(bits)
    edges = [0, 1, -1, 2, -2, half - 1, -half, half // 2, -half // 2, 255, 256, -256]
    xs = np.concatenate([edges, rng.integers(-half, half, 200)]).astype(np.int64)
    out = run_local(prog.comparisons, args=(xs, bits), provider_factory=DEALER)[0]
    assert F.to_int64(out["ltz"]).tolist() == (xs < 0).astype(int).tolist()
    assert F.to_int64(out["eqz"]).tolist() == (xs == 0).astype(int).tolist()
    err = F.to_int64(out["trunc"]) - (xs >> 8)  # floor division by 2^8
    assert set(np.unique(err).tolist()) <= {0, 1}


def test_one_hot_histogram_of_a_category():
    cats = np.random.default_rng(3).integers(0, 10, 300)
    hist = run_local(prog.categories, args=(cats, 10), provider_factory=DEALER)[1]
    assert F.to_int64(hist).tolist() == np.bincount(cats, minlength=10).tolist()


@pytest.mark.parametrize("part", ["value", "mac"])
@pytest.mark.parametrize("where", ["input", "product"])
@pytest.mark.parametrize("king_threshold", [1 << 30, 1], ids=["broadcast", "king"])
def test_a_flipped_bit_aborts_with_a_mac_check_error(part, where, king_threshold):
    with pytest.raises(PartyFailed) as info:
        run_local(prog.tamper, args=(part, where), provider_factory=DEALER,
                  engine_kwargs={"king_threshold": king_threshold})
    # every party aborts, and the honest ones say why
    assert set(info.value.errors) == {0, 1, 2}
    assert info.value.kinds() == {"MacCheckError"}


def test_a_party_that_drops_out_stops_the_others_quickly():
    t = time.monotonic()
    with pytest.raises(PartyFailed) as info:
        run_local(prog.drop_out, provider_factory=DEALER, timeout=3.0)
    assert time.monotonic() - t < 30
    honest = {p: e for p, e in info.value.errors.items() if p != 2}
    assert honest and all(kind in {"PeerDisconnected", "PeerTimeout"}
                          for kind, _ in honest.values())
    assert any("party 2" in msg for _, msg in honest.values())


def test_a_party_view_does_not_depend_on_the_secret():
    """Party 1's received bytes are uniform for a zero input and for a large one."""
    n = 4000
    for secret in (0, 123456789):
        view = run_local(prog.view_of_party_1, args=(secret, n), provider_factory=DEALER)[1]
        # the 127-bit elements leave the top bit of every 16th byte at 0: skip those bytes
        data = np.frombuffer(view, dtype=np.uint8).reshape(-1, 16)[:, :15].ravel()
        counts = np.bincount(data, minlength=256)
        chi2 = float(((counts - data.size / 256) ** 2 / (data.size / 256)).sum())
        assert chi2 < 400, f"party 1's view is not uniform for secret {secret}: chi2={chi2:.0f}"


def test_the_dealer_refuses_without_the_insecure_flag_and_warns(capfd):
    with pytest.raises(InsecureDealerError, match="insecure=True"):
        TrustedDealer(F, 0, 3, b"s" * 32)
    with pytest.raises(InsecureDealerError):
        DealerFactory(b"s" * 32)
    TrustedDealer(F, 0, 3, b"s" * 32, insecure=True)
    assert "INSECURE test dealer" in capfd.readouterr().err


@pytest.mark.parametrize("cheat", ["none", "share", "key"])
def test_owner_outside_the_quorum_checks_its_result(cheat):
    from enigma.mpc import client

    xs = np.arange(-20, 20)
    key, key_shares = client.owner_key_shares(F, 3)
    shares = run_local(prog.owner_output, args=(key_shares, xs, cheat), provider_factory=DEALER)
    if cheat == "none":
        assert F.to_int64(client.open_output(F, key, shares)).tolist() == (xs * xs).tolist()
    else:
        with pytest.raises(client.OutputCheckError, match="fail the owner's check"):
            client.open_output(F, key, shares)
