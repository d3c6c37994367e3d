"""A job's preprocessing taken whole before its online phase (`prep.served`), for blame mode
on HE: the slice's canonical form and digest, serving in order, refusing more than was
reserved, and a real HE slice computing correctly (products, comparisons, truncation)."""

from __future__ import annotations

import numpy as np
import pytest

from enigma.field import Field
from enigma.mpc import comparison as cmp
from enigma.mpc.engine import Engine
from enigma.mpc.runner import run_local
from enigma.prep import bounded
from enigma.prep.commands import HEProviderFactory
from enigma.prep.dealer import TrustedDealer
from enigma.prep.served import (
    Demand,
    PreprocessingExhausted,
    ServedProvider,
    Slice,
    SliceFactory,
    slice_digest,
    take_slice,
)

F = Field()
XS = np.array([0, 1, -1, 2, -2, 255, 256, -256, 524287, -524288, 1000, -77], dtype=np.int64)
YS = np.array([3, -5, 7, 0, 2**20, -(2**20), 9, 11, -13, 17, 1, 1], dtype=np.int64)


def _dealer_slice(party: int, demand: Demand, parties: int = 3) -> Slice:
    dealer = TrustedDealer(F, party, parties, b"served test", insecure=True, quiet=True)
    return take_slice(dealer, demand)


def test_a_slice_round_trips_and_its_digest_names_it() -> None:
    for party in range(3):
        piece = _dealer_slice(party, Demand(5, 7, (3, 4, 0)))
        raw = piece.encode()
        back = Slice.decode(raw, F)
        assert back.encode() == raw and (back.party, back.parties) == (party, 3)
        assert [a.shape[0] for a in back.inputs[party]] == [(3, 4, 0)[party]] * 3
        flipped = bytearray(raw)
        flipped[-1] ^= 1
        assert slice_digest(bytes(flipped)) != piece.digest() == slice_digest(raw)
    with pytest.raises(ValueError):
        Slice.decode(raw[:-16], F)
    with pytest.raises(ValueError):
        Slice.decode(b"\0" * len(raw), F)


def test_the_served_provider_serves_in_order_and_refuses_more() -> None:
    piece = _dealer_slice(1, Demand(5, 7, (3, 4, 0)))
    served = SliceFactory({1: piece.encode()}).replay_provider(F, 1, 3)
    assert served.mac_key_share().tolist() == piece.alpha.reshape(2).tolist()
    first, second = served.triples(3), served.triples(2)
    assert np.array_equal(np.concatenate([first.c.mac, second.c.mac]), piece.triples[5])
    with pytest.raises(PreprocessingExhausted, match="asked for 6 triples"):
        served.triples(1)
    mine, theirs = served.input_masks(1, 4), served.input_masks(0, 3)
    assert mine.clear is not None and theirs.clear is None
    with pytest.raises(PreprocessingExhausted):
        served.input_masks(0, 1)
    with pytest.raises(PreprocessingExhausted):
        served.random_bits(8)
    assert SliceFactory({1: piece.encode()}).prep_digest(0) == b""  # no slice, no replay


def served_run(e: Engine, xs: np.ndarray, ys: np.ndarray) -> dict:
    """Take a slice from the HE provider on the plain mesh, then compute from it alone."""
    n = xs.size
    # masks: x at party 0 and three outputs to party 0; y at party 2; and each party's
    # contributions to the two comparisons' r_high (prep.bounded: n values, ROWS proofs)
    mine = 2 * (n + bounded.ROWS)
    piece = take_slice(e.provider, Demand(4000, 6000, (4 * n + mine, mine, n + mine)))
    served = ServedProvider(F, Slice.decode(piece.encode(), F))
    online = Engine(e.channel, served, digit_bits=2)
    served.bind(online)
    x = online.input(0, F.from_int64(xs) if e.party == 0 else None, n)
    y = online.input(2, F.from_int64(ys) if e.party == 2 else None, n)
    out = {"prod": online.output(x * y, 0), "ltz": online.output(cmp.ltz(online, x, bits=21), 0),
           "eqz": online.output(cmp.eqz(online, x, bits=21), 0),
           "used": dict(served._used), "alpha": served.mac_key_share().tolist(),
           "he_alpha": e.provider.mac_key_share().tolist()}
    online.check()
    work = served.preprocessing_work or {}
    out["served_work"] = (online.stats.rounds - work["rounds"],
                          online.stats.triples - work["triples"])
    # the same computation on the HE provider's own path, for the charged work
    before = (e.stats.rounds, e.stats.triples)
    x = e.input(0, F.from_int64(xs) if e.party == 0 else None, n)
    y = e.input(2, F.from_int64(ys) if e.party == 2 else None, n)
    e.output(x * y, 0), e.output(cmp.ltz(e, x, bits=21), 0), e.output(cmp.eqz(e, x, bits=21), 0)
    out["he_work"] = (e.stats.rounds - before[0], e.stats.triples - before[1])
    return out


def test_an_he_slice_computes_correctly_on_its_own() -> None:
    runs = run_local(served_run, args=(XS, YS), provider_factory=HEProviderFactory(),
                     timeout=240, deadline=400, engine_kwargs={"digit_bits": 2})
    r = runs[0]
    assert F.to_int64(r["prod"]).tolist() == (XS * YS).tolist()
    assert F.to_int64(r["ltz"]).tolist() == (XS < 0).astype(int).tolist()
    assert F.to_int64(r["eqz"]).tolist() == (XS == 0).astype(int).tolist()
    for run in runs:  # the slice carries the HE session's MAC key share, and was drawn on
        assert run["alpha"] == run["he_alpha"]
        assert run["used"]["triples"] > 0 and run["used"]["bits"] > 0
        # the digit masks' products count as preprocessing: the online work charged is the
        # HE provider's, whose own engine makes them outside blame mode
        assert run["served_work"] == run["he_work"] and run["he_work"][1] > 0
