"""Pre-generation: the stock serves a planned program, and `enigma prep local` reports a rate."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from enigma.app.cli import main
from enigma.field import Field
from enigma.mpc.runner import PartyFailed, run_local
from enigma.prep.commands import (
    HEProviderFactory,
    StockFileError,
    load_stock,
    pregenerate,
    save_stock,
    stock_path,
)
from enigma.prep.provider import PreprocessingError, Stock

pytestmark = pytest.mark.slow  # real processes and real BFV batches

F = Field()
PLAN = [("triples", (10,)), ("input_masks", (1, 4))]


def planned(e, folder: str):
    """Pre-generate, serve a plan, then save what is left for the next session."""
    stock = pregenerate(e.provider, 100, plan=PLAN)
    made = e.provider.produced["triples"]
    t = stock.triples(10)
    masks = stock.input_masks(1, 4)
    a, b, c, r = e.open(*(e.secret(s) for s in (t.a, t.b, t.c, masks.r)))
    e.check()
    save_stock(e.provider.export_stock(), stock_path(folder, e.party), F, e.party, e.parties,
               "q1")
    return dict(served=stock.served, on_demand=stock.produced_on_demand, made=made,
                after=e.provider.produced["triples"], ok=bool(np.array_equal(F.mul(a, b), c)),
                mask_ok=masks.clear is None or bool(np.array_equal(masks.clear, r)),
                left=e.provider.in_stock["triples"])


@pytest.fixture(scope="module")
def first_session(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stock")
    return folder, run_local(planned, parties=2, args=(str(folder),),
                             provider_factory=HEProviderFactory(), timeout=240, deadline=400)


def test_pregenerated_stock_serves_the_plan_without_new_production(first_session):
    for r in first_session[1]:
        assert r["served"] == 2 and r["on_demand"] == 0
        assert r["made"] == r["after"] == 16384
        assert r["ok"] and r["mask_ok"] and r["left"] == 16384 - 10


def use_restored(e):
    """Serve from the restored stock (no HE keys needed), then past it: the keys made at
    that first production work with the restored MAC key shares."""
    p = e.provider
    t = p.triples(100)
    a, b, c = e.open(e.secret(t.a), e.secret(t.b), e.secret(t.c))
    e.check()
    served = (p.produced["triples"], p.in_stock["triples"], p.keyed,
              bool(np.array_equal(F.mul(a, b), c)))
    t = p.triples(16384 - 110 + 5)
    a, b, c = e.open(*(e.secret(s[-5:]) for s in (t.a, t.b, t.c)))
    e.check()
    return (*served, p.keyed, p.produced["triples"], bool(np.array_equal(F.mul(a, b), c)))


def test_stock_survives_a_restart_and_serves_without_new_keys(first_session):
    folder = first_session[0]
    assert all(oct(stock_path(folder, i).stat().st_mode & 0o777) == "0o600" for i in (0, 1))
    factory = HEProviderFactory(stock_dir=str(folder), quorum="q1")
    for r in run_local(use_restored, parties=2, provider_factory=factory, timeout=240,
                       deadline=400):
        produced, in_stock, keyed, ok, keyed_after, produced_after, ok_after = r
        assert produced == 0 and in_stock == 16384 - 110 and not keyed and ok
        assert keyed_after and produced_after == 16384 and ok_after


def test_prep_local_command_reports_json_without_secrets():
    result = CliRunner().invoke(main, ["prep", "local", "--quorum", "2", "--triples", "0"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["parties"] == 2 and report["triples"] == 0 and report["seconds"] >= 0
    assert set(report) == {"parties", "triples", "bits", "seconds", "triples_per_second"}


def test_prep_local_refuses_a_quorum_of_one():
    result = CliRunner().invoke(main, ["prep", "local", "--quorum", "1"])
    assert result.exit_code != 0 and "at least 2 parties" in result.output


def test_a_party_resuming_alone_is_refused(tmp_path):
    prg_stock = Stock(b"x" * 32, F.random(1).reshape(2), tuple(F.random(3) for _ in range(6)),
                      tuple(F.random(2) for _ in range(2)))
    save_stock(prg_stock, stock_path(tmp_path, 1), F, 1, 2, "local")
    with pytest.raises(PartyFailed) as info:
        run_local(use_restored, parties=2, timeout=120, deadline=300,
                  provider_factory=HEProviderFactory(stock_dir=str(tmp_path)))
    assert info.value.kinds() == {PreprocessingError.__name__}
    assert "every party of a quorum must restore" in str(info.value)


def test_a_damaged_or_foreign_stock_file_is_refused(tmp_path):
    stock = Stock(bytes(range(32)), F.random(1).reshape(2),
                  tuple(F.random(5) for _ in range(6)), tuple(F.random(4) for _ in range(2)))
    path = tmp_path / "s.stock"
    save_stock(stock, path, F, 0, 3, "q")
    back = load_stock(path, F, 0, 3, "q")
    assert back.stock_id == stock.stock_id and np.array_equal(back.alpha, stock.alpha)
    assert all(np.array_equal(x, y) for x, y in zip(back.triples, stock.triples, strict=True))
    assert all(np.array_equal(x, y) for x, y in zip(back.bits, stock.bits, strict=True))
    with pytest.raises(StockFileError, match="party=0, not 1"):
        load_stock(path, F, 1, 3, "q")
    with pytest.raises(StockFileError, match="quorum=q, not other"):
        load_stock(path, F, 0, 3, "other")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(StockFileError, match="corrupt"):
        load_stock(path, F, 0, 3, "q")


def test_a_stock_with_a_full_size_mac_key_share_is_refused(tmp_path):
    for party in range(2):  # as saved before MAC key shares were drawn below 2^64
        alpha = F.from_ints([(1 << 100) + party]).reshape(2)
        stock = Stock(b"y" * 32, alpha, tuple(F.random(3) for _ in range(6)),
                      tuple(F.random(2) for _ in range(2)))
        save_stock(stock, stock_path(tmp_path, party), F, party, 2, "local")
    with pytest.raises(PartyFailed) as info:
        run_local(use_restored, parties=2, timeout=120, deadline=300,
                  provider_factory=HEProviderFactory(stock_dir=str(tmp_path)))
    assert info.value.kinds() == {PreprocessingError.__name__}
    assert "older version" in str(info.value)
