"""The per-quorum stock files of a node (app/stock.py), without a network.

A stock is written by `prep.commands.save_stock` exactly as a node writes it; these tests
check the naming, the check-out (read and delete, durably), the refusal of a damaged or
foreign file, and the wait for a top-up in progress. The protocol around them (digests,
discard, top-up) runs through real nodes in tests/test_app_e2e.py.
"""

import threading
import time
from pathlib import Path

import numpy as np

from enigma.app.stock import QuorumStocks, quorum_id
from enigma.field import Field
from enigma.mpc.engine import Engine
from enigma.prep.commands import save_stock
from enigma.prep.provider import Stock

MEMBERS = ["0xAbC0000000000000000000000000000000000001",
           "0x00000000000000000000000000000000000000b2",
           "0x00000000000000000000000000000000000000C3"]


def _stock(field: Field, triples: int, bits: int) -> Stock:
    return Stock(b"\x07" * 32, np.array([5, 0], dtype=np.uint64),
                 tuple(field.random(triples) for _ in range(6)),
                 tuple(field.random(bits) for _ in range(2)))


def test_a_quorum_has_one_id_whatever_the_order_or_case_of_its_members():
    p = Field().p
    qid = quorum_id(MEMBERS, p)
    assert qid == quorum_id(list(reversed(MEMBERS)), p)
    assert qid == quorum_id([a.lower() for a in MEMBERS], p)
    assert qid != quorum_id(MEMBERS[:2], p)
    assert qid != quorum_id(MEMBERS, 2**61 - 1)


def test_a_stock_is_checked_out_once(tmp_path: Path):
    field = Field()
    stocks = QuorumStocks(tmp_path, field)
    qid = quorum_id(MEMBERS, field.p)
    assert stocks.take(qid, 1, 3, wait=0) is None and stocks.counts(qid) == {"triples": 0,
                                                                            "bits": 0,
                                                                            "inputs": 0}
    stocks.dir.mkdir()
    stock = _stock(field, 10, 4)
    save_stock(stock, stocks.path(qid), field, 1, 3, qid)
    assert stocks.counts(qid) == {"triples": 10, "bits": 4, "inputs": 0}
    got = stocks.take(qid, 1, 3, wait=0)
    assert got is not None and got.stock_id == stock.stock_id
    assert all(np.array_equal(a, b) for a, b in zip(got.triples, stock.triples, strict=True))
    assert not stocks.path(qid).exists()  # nobody can hand these triples out again
    assert stocks.take(qid, 1, 3, wait=0) is None


def test_a_damaged_or_foreign_stock_file_is_dropped(tmp_path: Path):
    field = Field()
    stocks = QuorumStocks(tmp_path, field)
    stocks.dir.mkdir()
    qid = quorum_id(MEMBERS, field.p)
    save_stock(_stock(field, 3, 0), stocks.path(qid), field, 0, 3, qid)
    assert stocks.take(qid, 1, 3, wait=0) is None  # party 0's file, not party 1's
    assert not stocks.path(qid).exists()
    save_stock(_stock(field, 3, 0), stocks.path(qid), field, 1, 3, qid)
    raw = bytearray(stocks.path(qid).read_bytes())
    raw[-40] ^= 1
    stocks.path(qid).write_bytes(bytes(raw))
    assert stocks.take(qid, 1, 3, wait=0) is None  # checksum
    assert not stocks.path(qid).exists()


def test_a_check_out_waits_for_a_top_up_of_the_same_quorum(tmp_path: Path):
    field = Field()
    stocks = QuorumStocks(tmp_path, field)
    stocks.dir.mkdir()
    qid = quorum_id(MEMBERS, field.p)
    stocks.busy(qid)
    assert stocks.take(qid, 1, 3, wait=0.05) is None  # gave up: still producing

    def top_up() -> None:
        time.sleep(0.2)
        save_stock(_stock(field, 8, 0), stocks.path(qid), field, 1, 3, qid)
        stocks.release(qid)

    thread = threading.Thread(target=top_up)
    thread.start()
    got = stocks.take(qid, 1, 3, wait=10)
    thread.join()
    assert got is not None and got.triples[0].shape[0] == 8


# ------------------------------------------------------ input masks in stock, per member


def _session(e: Engine, root: str, members: list[str], fill: int) -> dict:
    """One member's HE session of `members` (mesh party i is members[i]) on its own stock
    folder: with `fill`, make that many input masks per member and save; else input one
    value per member from the stock and open them."""
    from enigma.app.stock import open_session

    stocks = QuorumStocks(Path(root) / members[e.party].lower(), e.field)
    session = open_session(stocks, e.channel, members, e.party, wait=0)
    if fill:
        session.provider.reserve(inputs=fill)
        session.save()
        return {"in_stock": session.provider.in_stock}
    engine = Engine(e.channel, session.provider)
    F = e.field
    secrets = [engine.input(j, F.from_int64(np.array([1000 + j])) if e.party == j else None, 1)
               for j in range(e.parties)]
    opened = [int(F.to_int64(engine.reveal(x))[0]) for x in secrets]
    return {"opened": opened, "produced": session.provider.produced["input_masks"],
            "in_stock": session.provider.in_stock}


def test_input_masks_in_stock_serve_each_member_in_any_job_order(tmp_path: Path):
    """A session in sorted order makes input masks for every member and saves them; a job
    that draws the members in another order inputs from the stock, each member masking with
    its own masks (a mix-up would open wrong values), and produces none."""
    from enigma.mpc.runner import run_local
    from enigma.prep.dealer import DealerFactory

    factory = DealerFactory(b"only for the runner's own engine", insecure=True)
    ordered = sorted(a.lower() for a in MEMBERS[:2])
    made = run_local(_session, parties=2, args=(str(tmp_path), ordered, 16384),
                     provider_factory=factory, timeout=120)
    assert [m["in_stock"]["inputs"] for m in made] == [16384] * 2
    drawn = [ordered[1], ordered[0]]
    used = run_local(_session, parties=2, args=(str(tmp_path), drawn, 0),
                     provider_factory=factory, timeout=120)
    for member in used:
        assert member["opened"] == [1000, 1001]
        assert member["produced"] == 0 and member["in_stock"]["inputs"] == 16383
