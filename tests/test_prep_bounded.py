"""Contributed bounded masks (`prep.bounded`) and the cheaper comparisons built on them:
equal to plaintext on edge values, and tampered correlations caught.

The parties run in threads on the composer path (`DemandCounter` over the test dealer:
masks built from bits, input masks and products as the HE provider builds them)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enigma.field import Field
from enigma.lang.simulation import ThreadChannel, Wires, run_threads
from enigma.mpc import comparison as cmp
from enigma.mpc.engine import Engine
from enigma.mpc.fixed import trunc_many
from enigma.mpc.preprocessing import InputMasks
from enigma.prep import bounded
from enigma.prep.dealer import TrustedDealer
from enigma.prep.served import DemandCounter
from enigma.sharing import AuthShare, MacCheckError

F = Field()


class _Tampered(DemandCounter):
    """Party `who`'s provider with one correlation changed, as a cheating node would."""

    def __init__(self, inner, how: str) -> None:
        super().__init__(inner)
        self.how = how

    def input_masks(self, owner: int, n: int) -> InputMasks:
        masks = super().input_masks(owner, n)
        if self.how == "contribution" and masks.clear is not None and n:
            clear = masks.clear.copy()  # claims another r: its contribution leaves the range
            clear[0] = F.add(clear[0], F.const(1 << 110))
            return InputMasks(masks.r, clear)
        if self.how == "mask-share" and owner != self.party and n:
            value = masks.r.value.copy()  # adds to its share of another's contribution
            value[0] = F.add(value[0], F.const(1 << 100))
            return InputMasks(AuthShare(value, masks.r.mac), masks.clear)
        return masks

    def random_bits(self, n: int) -> AuthShare:
        bits = super().random_bits(n)
        if self.how == "bit-mac" and n:
            mac = bits.mac.copy()
            mac[0] = F.add(mac[0], F.const(1))
            return AuthShare(bits.value, mac)
        return bits


def run(program, xs: np.ndarray, *args, parties: int = 3, tamper: tuple[int, str] | None = None):
    """program(engine, x, *args) on every party; party 0's opened outputs (a dict)."""
    wires = Wires(parties)
    results: dict[int, dict] = {}
    errors: dict[int, BaseException] = {}

    def party(i: int) -> None:
        try:
            dealer = TrustedDealer(F, i, parties, b"bounded test", insecure=True, quiet=True)
            counter = _Tampered(dealer, tamper[1]) if tamper and tamper[0] == i \
                else DemandCounter(dealer)
            e = Engine(ThreadChannel(wires, i), counter)
            counter.bind(e)
            x = e.input(0, F.from_int64(xs) if i == 0 else None, xs.size)
            before = counter.demand()
            out = program(e, x, *args)
            taken = counter.demand()
            opened = {k: e.output(v, 0) for k, v in out.items()}
            results[i] = {k: F.to_int64(v) for k, v in opened.items() if v is not None}
            results[i]["taken"] = (taken.triples - before.triples, taken.bits - before.bits,
                                   sum(taken.inputs) - sum(before.inputs))
        except BaseException as exc:
            errors[i] = exc
            wires.failed.set()

    run_threads(party, parties, errors)
    return results[0]


def everything(e: Engine, x, k: int) -> dict:
    return {"ltz": cmp.ltz(e, x, bits=k), "eqz": cmp.eqz(e, x, bits=k),
            "mod": cmp.mod2m(e, x, 3, offset=1 << (k - 1), bits=k + 1),
            "trunc": trunc_many(e, [x], [2], bits=max(k, 3))[0]}


def edges(k: int) -> list[int]:
    half = 1 << (k - 1)
    return [0, 1, -1, half - 1, -half, half - 2, -half + 1, half // 2, -(half // 2)]


@settings(max_examples=6, deadline=None)
@given(k=st.integers(2, 25), extra=st.lists(st.integers(0, 2**64), max_size=6))
def test_contributed_masks_compare_like_plaintext_at_the_edges(k: int, extra: list[int]) -> None:
    half = 1 << (k - 1)
    xs = np.array(edges(k) + [v % (2 * half) - half for v in extra], dtype=np.int64)
    assert bounded.fits(F, k - 1, k, 3)  # this path: r_high contributed, not made of bits
    out = run(everything, xs, k)
    assert out["ltz"].tolist() == (xs < 0).astype(int).tolist()
    assert out["eqz"].tolist() == (xs == 0).astype(int).tolist()
    assert out["mod"].tolist() == ((xs + half) % 8).tolist()
    assert set((out["trunc"] - (xs >> 2)).tolist()) <= {0, 1}


@pytest.mark.parametrize("k", [40, 64])
def test_wide_values_fall_back_to_bits_and_stay_exact(k: int) -> None:
    assert not bounded.fits(F, k - 1, k, 3)
    xs = np.array(edges(k), dtype=np.int64)
    out = run(everything, xs, k)
    assert out["ltz"].tolist() == (xs < 0).astype(int).tolist()
    assert out["eqz"].tolist() == (xs == 0).astype(int).tolist()


def test_a_contribution_out_of_range_is_caught_by_the_range_proof() -> None:
    xs = np.array(edges(10), dtype=np.int64)
    with pytest.raises(bounded.RangeProofError, match="party 1's contribution"):
        run(everything, xs, 10, tamper=(1, "contribution"))


def test_a_wrong_share_of_another_partys_contribution_aborts() -> None:
    xs = np.array(edges(10), dtype=np.int64)
    with pytest.raises((bounded.RangeProofError, MacCheckError)):
        run(everything, xs, 10, tamper=(2, "mask-share"))


@pytest.mark.parametrize("k", [10, 64])
def test_a_wrong_mac_on_a_mask_bit_is_caught(k: int) -> None:
    xs = np.array(edges(k), dtype=np.int64)
    with pytest.raises(MacCheckError):
        run(everything, xs, k, tamper=(1, "bit-mac"))


def test_the_field_has_room_for_the_slack_up_to_about_25_bits() -> None:
    assert bounded.fits(F, 24, 25, 3) and not bounded.fits(F, 26, 27, 3)
    assert bounded.fits(F, 16, 24, 3) and not bounded.fits(F, 16, 40, 3)
    small = Field((1 << 61) - 1)
    assert not bounded.fits(small, 5, 10, 3)  # a small field keeps the bits


@pytest.mark.parametrize(("op", "k", "triples", "bits"), [
    ("ltz", 10, 12, 9), ("eqz", 10, 9, 10), ("ltz", 64, 93, 104), ("eqz", 64, 63, 105)])
def test_correlations_per_comparison(op: str, k: int, triples: int, bits: int) -> None:
    """docs/design.md's table: before, a 10-bit ltz took 36 triples and 50 bits (64-bit:
    205 and 104); r_high is now contributed below 26 bits, and digits are 2 bits wide."""
    n = 64
    xs = np.array((edges(k) * 8)[:n], dtype=np.int64)
    test = getattr(cmp, op)
    out = run(lambda e, x: {op: test(e, x, bits=k)}, xs)
    assert out["taken"][:2] == (triples * n, bits * n)
    contributed = out["taken"][2]  # each party contributes a value per mask, plus proofs
    assert contributed == (3 * (n + bounded.ROWS) if k < 26 else 0)
